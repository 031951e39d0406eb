"""Detection: login analytics on constructed incidents, on data-samples against its ground
truth, the findings store, identities, and ``auditlens detect``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analysis.cli import main
from analysis.detect.base import Finding, registry_table, run_detectors, severity_rank
from analysis.findings import read_findings, read_runs, save_run
from analysis.identities import Identities, principal
from analysis.scope import EmptyStore, Scope
from tests.incidents import CURL, PYREQ, SAFARI_MAC, Org, day

ROOT = Path(__file__).resolve().parent.parent


def _at_least(findings: list[Finding], severity: str) -> set[tuple[str, str, str]]:
    return {(f.detector, f.entity, f.severity) for f in findings
            if severity_rank(f.severity) >= severity_rank(severity)}


# -- constructed incidents: an organisation with ordinary habits, one attack each -----------


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Brute force against one account; a spray that ends in a scripted success at night;
    a traveller with her usual browser; internet noise against sshd."""
    org = Org()
    for i in range(40):
        org.login(day(14, 3, 10, i * 13), "p.smirnov", "45.9.20.11", CURL, ok=False)
    for i, user in enumerate(["k.ivanova", "a.morozova", "t.belov", "e.zaitseva", "r.pavlov",
                              "admin", "test"]):
        org.login(day(16, 2, i * 2), user, "91.200.1.5", PYREQ, ok=False)
    org.login(day(16, 2, 30), "k.ivanova", "91.200.1.5", PYREQ)
    org.login(day(18, 10, 5), "a.morozova", "185.12.40.3", SAFARI_MAC)
    for i, user in enumerate(["oracle", "test", "ubuntu", "git", "postgres", "admin"]):
        org.ssh_fail(day(17, 4, 0, i * 5), user, "203.0.113.200", invalid=True)
    return org.store(tmp_path_factory.mktemp("attacked"))


def test_constructed_attacks_are_found_and_the_traveller_is_not(attacked: Path) -> None:
    result = run_detectors(Scope(attacked))
    assert all(d.status == "ok" for d in result.detectors), result.detectors
    assert _at_least(result.findings, "medium") == {
        ("brute_force", "p.smirnov", "medium"),
        ("password_spray", "91.200.1.5", "medium"),
        ("success_after_failures", "k.ivanova", "high"),
        ("risky_signin", "k.ivanova", "high"),
        ("new_user_agent", "k.ivanova", "medium"),
    }
    by = {(f.detector, f.entity): f for f in result.findings}
    brute = by[("brute_force", "p.smirnov")]
    assert brute.description.startswith(
        "40 failed sign-ins for p.smirnov from 1 address in 8 minutes (panel); its usual "
        "failure rate is ")
    assert len(brute.event_uids) == 40 and brute.attack == ("T1110.001",)
    spray = by[("password_spray", "91.200.1.5")]
    assert "7 failed sign-ins for 7 principals from 91.200.1.5 in 12 minutes (panel); 5 of " \
           "them are real accounts" in spray.description
    assert {v for _, v in spray.entities} >= {"admin", "test", "k.ivanova"}
    risky = by[("risky_signin", "k.ivanova")]
    assert "4 risk signals" in risky.description and "python-requests" in risky.description
    # the traveller: a new address alone is low; dictionary names against sshd are low
    assert by[("new_address", "a.morozova")].severity == "low"
    assert by[("password_spray", "203.0.113.200")].severity == "low"
    assert "0 of them are real accounts" in by[("password_spray", "203.0.113.200")].description


def test_evidence_resolves_and_ids_are_stable(attacked: Path) -> None:
    first = run_detectors(Scope(attacked))
    second = run_detectors(Scope(attacked))
    assert [f.finding_id for f in first.findings] == [f.finding_id for f in second.findings]
    uids = {u for f in first.findings for u in f.event_uids}
    con = duckdb.connect()
    stored = {r[0] for r in con.execute(
        "SELECT event_uid FROM read_parquet(?)",
        [str(attacked / "events" / "*" / "*" / "*.parquet")]).fetchall()}
    assert uids and uids <= stored


def test_baselines_never_learn_from_later_events(attacked: Path, tmp_path: Path) -> None:
    """Judging the first 17 days gives the same findings whether or not later days exist."""
    cut = day(17, 0)
    full = run_detectors(Scope(attacked, end=cut))
    org = Org(days=17)
    for i in range(40):
        org.login(day(14, 3, 10, i * 13), "p.smirnov", "45.9.20.11", CURL, ok=False)
    for i, user in enumerate(["k.ivanova", "a.morozova", "t.belov", "e.zaitseva", "r.pavlov",
                              "admin", "test"]):
        org.login(day(16, 2, i * 2), user, "91.200.1.5", PYREQ, ok=False)
    org.login(day(16, 2, 30), "k.ivanova", "91.200.1.5", PYREQ)
    short = run_detectors(Scope(org.store(tmp_path)))
    assert [(f.finding_id, f.description) for f in full.findings] == \
        [(f.finding_id, f.description) for f in short.findings]


def test_a_window_judges_only_its_events_and_sources_narrow(attacked: Path) -> None:
    late = run_detectors(Scope(attacked, start=day(17, 0)))
    assert {f.detector for f in late.findings} >= {"password_spray"}
    assert not any(f.entity == "p.smirnov" and f.detector == "brute_force"
                   for f in late.findings)
    ssh_only = run_detectors(Scope(attacked, sources=["linux_auth"]))
    assert all(d.status == "ok" for d in ssh_only.detectors), ssh_only.detectors
    assert {(f.detector, f.entity) for f in ssh_only.findings} == {
        ("password_spray", "203.0.113.200")}
    with pytest.raises(EmptyStore, match="no events"):
        run_detectors(Scope(attacked, sources=["k8s_audit"]))


def test_the_baseline_can_start_later(attacked: Path) -> None:
    """Baselines from day 15 on only: a day of history cannot call the spray's success
    'new' (risky_signin stays quiet), but failures followed by a success still count."""
    result = run_detectors(Scope(attacked), baseline_start=day(15, 0))
    detectors = {f.detector for f in result.findings if f.entity == "k.ivanova"}
    assert "success_after_failures" in detectors
    assert not detectors & {"risky_signin", "new_address", "new_user_agent", "unusual_hour"}
    assert result.scope["baseline_start"] == "2026-03-17T00:00:00+00:00"


def test_too_little_history_is_judged_cautiously(tmp_path: Path) -> None:
    """Two days of data: nothing can be 'new' yet, and nothing is raised above low."""
    org = Org(days=2)
    org.login(day(1, 23, 30), "k.ivanova", "91.200.1.5", PYREQ)
    result = run_detectors(Scope(org.store(tmp_path)))
    assert _at_least(result.findings, "low") == set()


def test_dormant_account_and_thresholds_are_parameters(tmp_path: Path) -> None:
    org = Org(days=50)
    org.login(day(2, 9), "old.backup", "100.64.10.99", CURL)
    org.login(day(45, 9), "old.backup", "100.64.10.99", CURL)
    for i in range(8):  # below the default brute-force threshold of 10
        org.login(day(30, 3, i), "r.pavlov", "45.9.20.12", CURL, ok=False)
    store = org.store(tmp_path)
    result = run_detectors(Scope(store), only=["dormant_account", "brute_force"])
    assert [(f.detector, f.entity, f.severity) for f in result.findings] == [
        ("dormant_account", "old.backup", "medium")]
    assert "after 43 days without a sign-in (previous: 2026-03-04)" in \
        result.findings[0].description
    lower = run_detectors(Scope(store), only=["brute_force"],
                          params={"brute_force": {"min_failures": "8"}})
    assert [(f.entity, len(f.event_uids)) for f in lower.findings] == [("r.pavlov", 8)]
    assert lower.params == {"brute_force": {"min_failures": 8, "gap_minutes": 30.0}}
    with pytest.raises(KeyError, match="has no parameter 'nope'"):
        run_detectors(Scope(store), params={"brute_force": {"nope": 1}})
    with pytest.raises(ValueError, match=r"brute_force\.min_failures: 'many' is not an integer"):
        run_detectors(Scope(store), params={"brute_force": {"min_failures": "many"}})


# -- real recordings -------------------------------------------------------------------


def test_real_ssh_brute_force_on_an_azure_vm(tmp_path: Path) -> None:
    """msticpy's auditd sample (a real Ubuntu VM on Azure) holds an SSH brute force against
    root: 185 failed USER_AUTH records from 6 addresses in 27 minutes."""
    from loaders.base import LoadOptions
    from loaders.ingest.pipeline import ingest
    from loaders.store.store import Store

    ingest(Store(tmp_path), [ROOT / "tests/fixtures/linux-auditd/msticpy_auditd_log.txt"],
           options=LoadOptions())
    result = run_detectors(Scope(tmp_path))
    assert [(f.detector, f.entity, f.severity, len(f.event_uids)) for f in result.findings] \
        == [("brute_force", "root", "high", 185)]
    assert result.findings[0].description == (
        "185 failed sign-ins for root from 6 addresses in 27 minutes (ssh); it has no earlier "
        "history to compare with.")
    assert len([v for t, v in result.findings[0].entities if t == "ip"]) == 6


def test_real_recordings_raise_nothing_else_above_low(tmp_path: Path) -> None:
    """Every real fixture alone: what is raised at medium or above, exactly."""
    from loaders.base import LoadOptions
    from loaders.ingest.pipeline import ingest
    from loaders.store.store import Store
    from tests.conftest import provenance_rows

    loud: dict[str, set[tuple[str, str, str]]] = {}
    for row in provenance_rows():
        if "synthetic" in row["repo"]:
            continue
        store = tmp_path / row["file"]
        ingest(Store(store), [row["path"]], options=LoadOptions(year=2026))
        if not any((store / "events").glob("*/*/*.parquet")):
            continue
        result = run_detectors(Scope(store))
        assert not result.failed, (row["file"], result.failed)
        found = _at_least(result.findings, "medium")
        if found:
            loud[row["file"]] = found
    assert loud == {
        "msticpy_auditd_log.txt": {("brute_force", "root", "high")},
        # minikube-user's requests in 2018, then again in 2020: a dormant credential
        "falco_trace_files_k8s_audit.jsonl": {("dormant_account", "minikube-user", "medium")},
    }


# -- identities ------------------------------------------------------------------------


@pytest.mark.parametrize("user, expected", [
    ("anna.volkova", ("anna.volkova", "user")),
    ("NORDWIND\\Anna.Volkova", ("anna.volkova", "user")),
    ("anna.volkova@nordwind.example", ("anna.volkova", "user")),
    ("oidc:anna.volkova@nordwind.example", ("anna.volkova", "user")),
    ("https://issuer.example#anna.volkova", ("anna.volkova", "user")),
    ("NORDWIND\\WS-FIN-02$", ("ws-fin-02$", "machine")),
    ("system:serviceaccount:ci:deployer", ("system:serviceaccount:ci:deployer", "service")),
    ("system:node:worker-1", ("system:node:worker-1", "machine")),
    ("system:kube-scheduler", ("system:kube-scheduler", "system")),
    ("NT AUTHORITY\\SYSTEM", ("system", "system")),
    (" ", (None, None)),
    (None, (None, None)),
])
def test_principals_from_every_spelling(user: str | None, expected: tuple[str, str]) -> None:
    assert principal(user) == expected


def test_numeric_ids_need_their_host_and_the_alias_table_wins(tmp_path: Path) -> None:
    assert principal("1001", host="App-01") == ("uid:1001@app-01", "uid")
    assert principal("svc-backup", subject_type="service_user") == ("svc-backup", "service")
    csv_file = tmp_path / "aliases.csv"
    csv_file.write_text("alias,principal,kind\nadmin,ivan.petrov,\nuid:0@app-01,root,\n"
                        "ci-bot,ci,service\n")
    ids = Identities.load(csv_file)
    assert principal("ADMIN", identities=ids) == ("ivan.petrov", "user")
    assert principal("NORDWIND\\ci-bot", identities=ids) == ("ci", "service")
    toml_file = tmp_path / "aliases.toml"
    toml_file.write_text('[aliases]\n"a.v" = "anna.volkova"\n'
                         '"robot" = { principal = "ci", kind = "service" }\n')
    ids = Identities.load(toml_file)
    assert principal("A.V", identities=ids) == ("anna.volkova", "user")
    assert principal("robot", identities=ids) == ("ci", "service")
    bad = tmp_path / "bad.csv"
    bad.write_text("alias,principal,kind\nx,y,robot\n")
    with pytest.raises(ValueError, match="unknown kind 'robot'"):
        Identities.load(bad)


def test_aliases_merge_sign_ins_and_are_recorded(attacked: Path, tmp_path: Path) -> None:
    table = tmp_path / "aliases.csv"
    table.write_text("alias,principal\np.smirnov,pavel\n")
    result = run_detectors(Scope(attacked), only=["brute_force"],
                           identities=Identities.load(table))
    assert [f.entity for f in result.findings] == ["pavel"]
    assert result.params["identities"]["aliases"] == {"p.smirnov": ["pavel", None]}


# -- the findings store ----------------------------------------------------------------


def test_findings_are_stored_per_run_and_read_back(attacked: Path) -> None:
    result = run_detectors(Scope(attacked), only=["brute_force", "password_spray"])
    run_id = save_run(attacked, result)
    frame = read_findings(attacked)
    assert set(frame["run_id"]) == {run_id}
    assert list(frame["finding_id"]) == [f.finding_id for f in result.findings]
    assert frame.loc[frame["detector"] == "brute_force", "entity"].tolist() == ["p.smirnov"]
    runs = read_runs(attacked)
    last = runs.iloc[-1]
    assert last["run_id"] == run_id and last["findings"] == len(result.findings)
    detectors = json.loads(last["detectors"])
    assert [(d["name"], d["status"], d["findings"]) for d in detectors] == [
        ("brute_force", "ok", 1), ("password_spray", "ok", 2)]
    assert json.loads(last["parameters"])["password_spray"]["min_principals"] == 5
    # DuckDB reads them without auditlens
    n = duckdb.connect().execute(
        "SELECT count(*) FROM read_parquet(?) WHERE run_id = ?",
        [str(attacked / "findings" / "data" / "*.parquet"), run_id]).fetchall()[0][0]
    assert n == len(result.findings)
    with pytest.raises(KeyError, match="no committed detection run 'nope'"):
        read_findings(attacked, "nope")


def test_a_killed_detect_leaves_the_previous_findings(attacked: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    import shutil

    shutil.copytree(attacked, store)
    shutil.rmtree(store / "findings", ignore_errors=True)
    assert main(["detect", "--store", str(store), "--only", "brute_force"]) == 0
    before = read_findings(store)
    env = {**os.environ, "AUDITLENS_CRASH_AT": "findings-before-run-record"}
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "detect", "--store",
                           str(store)], cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert proc.returncode == 137
    assert len(list((store / "findings" / "data").glob("*.parquet"))) == 2  # one orphan
    pd.testing.assert_frame_equal(read_findings(store), before)
    assert main(["detect", "--store", str(store), "--only", "password_spray"]) == 0
    assert len(list((store / "findings" / "data").glob("*.parquet"))) == 2  # orphan removed
    assert len(read_runs(store)) == 2


# -- the command -----------------------------------------------------------------------


def test_detect_command(attacked: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", "--list"]) == 0
    listing = capsys.readouterr().out
    assert {r["name"] for r in registry_table()} <= set(listing.split())
    config = tmp_path / "detect.toml"
    config.write_text('[detect]\nonly = ["brute_force", "password_spray"]\n'
                      '[params.password_spray]\nmin_principals = 6\n')
    out = tmp_path / "findings.csv"
    assert main(["detect", "--store", str(attacked), "--config", str(config),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "findings of medium severity and above:" in text
    assert re.search(r"^password_spray +ok +0 +0 +1 +1 +0 ", text, re.M)
    frame = pd.read_csv(out)
    assert sorted(frame["entity"]) == ["203.0.113.200", "91.200.1.5", "p.smirnov"]
    for args, message in [
        (["--only", "nope"], "no detector 'nope'"),
        (["--param", "brute_force=3"], "DETECTOR.NAME=VALUE"),
        (["--param", "brute_force.min_failures=x"], "is not an integer"),
        (["--since", "2026-03-10", "--until", "2026-03-01"], "the window is empty"),
        (["--out", str(tmp_path / "f.xlsx")], "use .parquet, .json or .csv"),
    ]:
        assert main(["detect", "--store", str(attacked), *args]) == 2, args
        assert message in capsys.readouterr().err
    assert main(["detect", "--store", str(tmp_path / "none")]) == 1
    assert "no store at" in capsys.readouterr().err


def test_exports_neutralise_formulas_and_escape_nothing_away(tmp_path: Path) -> None:
    org = Org(days=6)
    for i in range(12):
        org.login(day(5, 2, i), "=HYPERLINK(\"http://x\")", "91.200.1.7", CURL, ok=False)
        org.login(day(5, 3, i), "@SUM(A1)", "91.200.1.8", CURL, ok=False)
    store = org.store(tmp_path)
    assert main(["detect", "--store", str(store), "--only", "brute_force",
                 "--out", str(tmp_path / "f.csv")]) == 0
    raw = (tmp_path / "f.csv").read_text()
    cells = [row.split(",") for row in raw.splitlines()]
    assert "'=hyperlink(\"\"http://x\"\")" in raw and "'@sum(a1)" in raw
    assert not [c for row in cells for c in row if c.startswith(("=", "+", "-", "@"))]
    assert main(["detect", "--store", str(store), "--only", "brute_force",
                 "--out", str(tmp_path / "f.json")]) == 0
    data = json.loads((tmp_path / "f.json").read_text())
    assert sorted(d["entity"] for d in data) == ['=hyperlink("http://x")', "@sum(a1)"]


# -- data-samples: the synthetic incident and its decoys -------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loaders.base import LoadOptions
    from loaders.ingest.pipeline import ingest
    from loaders.store.store import Store

    store = tmp_path_factory.mktemp("demo") / "store"
    ingest(Store(store), [ROOT / "data-samples"], options=LoadOptions(year=2026), jobs=2)
    return store


def _truth_uids(store: Path, events: list[dict[str, object]]) -> set[str]:
    con = duckdb.connect()
    rows = con.execute(
        "SELECT source_file, source_line, event_uid FROM read_parquet(?, union_by_name=true)",
        [str(store / "events" / "*" / "*" / "*.parquet")]).fetchall()
    where = {(f.split("data-samples/", 1)[-1], int(line)): uid for f, line, uid in rows}
    out = set()
    for e in events:
        for line in range(int(e["line"]), int(e["end_line"]) + 1):  # type: ignore[call-overload]
            uid = where.get((str(e["file"]), line))
            if uid:
                out.add(uid)
    return out


def test_data_samples_ground_truth(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = json.loads((ROOT / "data-samples" / "ground-truth.json").read_text())
    incident = _truth_uids(demo, truth["incident"]["events"])
    decoys = {name: _truth_uids(demo, d["events"]) for name, d in truth["decoys"].items()}
    result = run_detectors(Scope(demo))
    assert all(d.status == "ok" for d in result.detectors)
    stored = {r[0] for r in duckdb.connect().execute(
        "SELECT event_uid FROM read_parquet(?)",
        [str(demo / "events" / "*" / "*" / "*.parquet")]).fetchall()}
    assert {u for f in result.findings for u in f.event_uids} <= stored
    again = run_detectors(Scope(demo))
    assert [f.finding_id for f in again.findings] == [f.finding_id for f in result.findings]
    flagged = [f for f in result.findings if severity_rank(f.severity) >= 2]

    def names(f: Finding) -> set[str]:
        return {f.entity, *(v for _, v in f.entities)}

    # recall: every sign-in address of the attacker and the compromised account
    login_ips = truth["incident"]["attacker_ips"]
    wanted = [*login_ips, "anna.volkova"]
    found = {w for w in wanted for f in flagged if w in names(f) and incident & set(f.event_uids)}
    # precision: flagged findings whose evidence is the incident's
    true_pos = [f for f in flagged if incident & set(f.event_uids)]
    precision, recall = len(true_pos) / len(flagged), len(found) / len(wanted)
    with capsys.disabled():
        print(f"\ndata-samples: {len(flagged)} findings of medium or above, precision "
              f"{precision:.2f}, recall {recall:.2f} over {wanted}")
    assert found == set(wanted)
    assert precision == 1.0
    for name, uids in decoys.items():
        loud = [(f.detector, f.entity, f.severity) for f in result.findings
                if severity_rank(f.severity) >= 2 and uids & set(f.event_uids)]
        assert loud == [], name
        for ip in truth["decoys"][name]["ips"]:
            assert not [f for f in flagged if ip in names(f)], (name, ip)
    assert _at_least(result.findings, "high") == {
        ("success_after_failures", "anna.volkova", "critical"),
        ("success_after_failures", "admin", "critical"),
        ("success_after_failures", "deploy", "high"),
        ("success_after_failures", "system:serviceaccount:kube-system:node-health-agent",
         "high"),
        ("risky_signin", "anna.volkova", "high"),
        ("risky_signin", "admin", "high"),
        ("risky_signin", "deploy", "high"),
        ("shared_new_address", "203.0.113.77", "high"),
        ("first_seen_privileged", "system:serviceaccount:kube-system:node-health-agent",
         "high"),
    }
    assert ("first_seen_privileged", "sysupdate", "medium") in _at_least(result.findings,
                                                                         "medium")
    spray = {f.entity for f in flagged if f.detector == "password_spray"}
    assert spray == {"203.0.113.45", "198.51.100.23", "203.0.113.77"}
