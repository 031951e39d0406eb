"""Incidents and the incident report: grouping, the report against data-samples' ground truth,
determinism, hostile log content in HTML (in a real headless chromium) and Markdown, and the
``auditlens report`` / ``auditlens demo`` commands."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analysis.cli import main
from analysis.detect.base import Finding, run_detectors
from analysis.findings import save_run
from analysis.incidents import Link, correlate
from analysis.report.model import build_report, to_json
from analysis.report.render import md_escape, render
from analysis.scope import Scope
from tests.incidents import CURL, PYREQ, Org, day

ROOT = Path(__file__).resolve().parent.parent
FIXED = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--samples", str(ROOT / "data-samples"), "--out-dir", str(out)]) == 0
    return out


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser_or_skip() -> str:
    path = _chromium()
    if path is None:
        if os.environ.get("AUDITLENS_REQUIRE_BROWSER"):
            pytest.fail("chromium is missing: `make browser` installs it")
        pytest.skip("no chromium (make test installs it)")
    return path


def _open(html_file: Path) -> dict[str, Any]:
    """Load a report in headless chromium; what the page did and shows."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_browser_or_skip(),
                                    args=["--no-sandbox"])
        page = browser.new_page()
        problems: list[str] = []
        requests: list[str] = []
        dialogs: list[str] = []
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(html_file.resolve().as_uri())
        page.wait_for_function("document.querySelectorAll('div.chart').length === "
                               "document.querySelectorAll('div.chart svg.main-svg').length / 3"
                               " || document.querySelectorAll('div.chart').length === 0",
                               timeout=20_000)
        out = {
            "problems": problems, "dialogs": dialogs,
            "requests": [u for u in requests if u != html_file.resolve().as_uri()],
            "charts": page.eval_on_selector_all(
                "div.chart", "els => els.map(e => e.querySelectorAll('svg.main-svg').length)"),
            "broken": page.evaluate(
                "() => { const ids = new Set([...document.querySelectorAll('[id]')]"
                ".map(e => e.id)); return [...document.querySelectorAll('a[href]')]"
                ".map(a => a.getAttribute('href')).filter(h => !h.startsWith('#') || "
                "!ids.has(h.slice(1))); }"),
            "pwned": page.evaluate("() => window.__pwned === true"),
            "text": page.inner_text("body"),
            "all_text": page.evaluate("() => document.body.textContent"),
            "scripts": page.eval_on_selector_all("script", "els => els.length"),
            "images": page.eval_on_selector_all("img", "els => els.length"),
        }
        browser.close()
    return out


# -- incidents -------------------------------------------------------------------------


def test_incidents_group_by_shared_entities_and_say_why(demo: Path) -> None:
    store = demo / "demo-store"
    result = run_detectors(Scope(store))
    incidents = correlate(result.findings)
    by_id = {f.finding_id: f for f in result.findings}
    main_incident = incidents[0]
    assert main_incident.severity == "critical"
    assert main_incident.principals[0] == "anna.volkova"
    assert set(main_incident.addresses) == {"203.0.113.45", "198.51.100.23", "203.0.113.77"}
    assert len(main_incident.finding_ids) == 12
    shared = {(lk.entity_type, lk.entity) for lk in main_incident.links}
    assert ("ip", "203.0.113.77") in shared and ("principal", "anna.volkova") in shared
    for lk in main_incident.links:  # every link names an entity both findings have
        for fid in (lk.finding_a, lk.finding_b):
            f = by_id[fid]
            assert (lk.entity_type, lk.entity) in {(f.entity_type, f.entity), *f.entities}
    assert correlate(result.findings) == incidents  # deterministic


def _finding(entity: str, hour: int, severity: str = "high",
             others: tuple[tuple[str, str], ...] = ()) -> Finding:
    at = datetime(2026, 3, 1, hour, tzinfo=UTC)
    return Finding("risky_signin", "1", f"t {entity}", "d", severity, 0.5,  # type: ignore[arg-type]
                   "principal", entity, at, at, (f"uid-{entity}-{hour}",), entities=others)


def test_the_window_is_a_parameter_and_low_findings_never_join() -> None:
    a = _finding("alice", 1, others=(("ip", "198.51.100.9"),))
    b = _finding("bob", 11, others=(("ip", "198.51.100.9"),))
    low = _finding("carol", 2, "low", others=(("principal", "alice"), ("principal", "bob")))
    assert len(correlate([a, b, low])) == 2  # 10 hours apart: more than the default 6
    [joined] = correlate([a, b, low], window=timedelta(hours=12))
    assert joined.finding_ids == (a.finding_id, b.finding_id)
    assert joined.links == (Link(a.finding_id, b.finding_id, "ip", "198.51.100.9"),)
    assert joined.context_ids == (low.finding_id,)  # context, but it joined nothing


# -- the report on data-samples ----------------------------------------------------------


def test_incidents_are_stored_with_their_run(demo: Path) -> None:
    from analysis.findings import read_findings, read_incidents

    incidents = read_incidents(demo / "demo-store")
    findings = read_findings(demo / "demo-store")
    assert set(incidents["run_id"]) == set(findings["run_id"])
    first = incidents.iloc[0]
    assert first["severity"] == "critical" and first["principals"][0] == "anna.volkova"
    assert set(first["finding_ids"]) <= set(findings["finding_id"])
    assert first["window_hours"] == 6.0 and len(first["links"]) > 0


def test_report_tells_the_ground_truth(demo: Path) -> None:
    truth = json.loads((ROOT / "data-samples" / "ground-truth.json").read_text())
    report = json.loads((demo / "demo-report.json").read_text())
    assert report["schema_version"] == "1"
    first = report["incidents"][0]
    assert first["severity"] == "critical"
    assert first["principals"][0]["principal"] == "anna.volkova"
    aliases = {a["user"] for a in first["principals"][0]["aliases"]}
    assert {"anna.volkova", "NORDWIND\\anna.volkova"} <= aliases
    assert {a["ip"] for a in first["addresses"]} == set(truth["incident"]["attacker_ips"])
    # the incident's steps, in order: spray, takeover, API key, secret, kubeconfig, cluster
    # admin, secrets, privileged pod, volume deleted
    texts = [s["text"] for s in first["narrative"]]
    order = ["Password spraying from 203.0.113.45", "anna.volkova signed in after failures",
             "api_key.create sync-tmp", "secret.read prod/deploy-ssh-key",
             "kubeconfig.download prod-mks", "create clusterrolebindings",
             "list secrets", "create pods kube-system/pods/node-health-check-xk2p9",
             "volume.delete db-backup-01"]
    at = [next(i for i, t in enumerate(texts) if step in t) for step in order]
    assert at == sorted(at), list(zip(order, at, strict=True))
    times = [s["time"] for s in first["narrative"]]
    assert times == sorted(times)
    recs = " ".join(first["recommendations"])
    for expected in ["End all sessions of anna.volkova", "Revoke the API keys created: sync-tmp",
                     "prod/deploy-ssh-key", "clusterrolebindings/node-health-agent",
                     "db-backup-01", "Block the addresses"]:
        assert expected in recs, expected
    # evidence is traced to its input file, hash and line
    ev = first["findings"][0]["evidence"][0]
    inputs = {i["path"]: i["sha256"] for i in report["appendix"]["inputs"]}
    assert ev["sha256"] == inputs[ev["source_file"]] and ev["source_line"] >= 1
    # decoys are not incidents
    decoy_ips = {ip for d in truth["decoys"].values() for ip in d["ips"]}
    for s in report["incidents"]:
        assert not decoy_ips & {a["ip"] for a in s["addresses"]}, s["title"]
        assert not {"dmitry.orlov", "ivan.petrov", "svc-terraform"} & \
            {p["principal"] for p in s["principals"]}
    assert report["appendix"]["rejects_total"] == 3
    assert {i["path"].split("data-samples/")[-1] for i in report["appendix"]["inputs"]} >= {
        "cloud/audit/events.txt", "linux/app-01/auth.log"}


def test_reports_are_deterministic(demo: Path) -> None:
    store = demo / "demo-store"
    a = build_report(store, generated_at=FIXED)
    b = build_report(store, generated_at=FIXED)
    for fmt in ("json", "md", "html"):
        assert render(a, fmt) == render(b, fmt), fmt  # type: ignore[arg-type]
    today = render(build_report(store), "md").splitlines()
    fixed = render(a, "md").splitlines()
    assert len(today) == len(fixed)
    assert [i for i, (x, y) in enumerate(zip(today, fixed, strict=True)) if x != y] == [2]


def test_the_html_report_in_a_real_browser(demo: Path) -> None:
    page = _open(demo / "demo-report.html")
    assert page["problems"] == [] and page["dialogs"] == [] and page["requests"] == []
    assert page["charts"] == [3, 3]  # one plotly chart per incident, drawn
    assert page["broken"] == []  # every link is an anchor that exists
    assert "Password spraying from 203.0.113.45" in page["text"]
    size = (demo / "demo-report.html").stat().st_size
    assert size < 10_000_000


# -- hostile log content ---------------------------------------------------------------

XSS = ["<script>window.__pwned=true</script>", "\"><img src=x onerror=window.__pwned=true>",
       "javascript:window.__pwned=true//"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spray whose user names carry markup, a success with a markup user agent, and a
    Kubernetes request from the attacker naming a resource with markup."""
    root = tmp_path_factory.mktemp("hostile")
    org = Org(days=8)
    for i, user in enumerate(["k.ivanova", "a.morozova", "t.belov", XSS[0], XSS[1],
                              "[x](javascript:alert(1))"]):
        org.login(day(6, 2, i), user, "91.200.1.9", CURL, ok=False)
    org.login(day(6, 2, 20), "k.ivanova", "91.200.1.9", XSS[1])
    org.write(root / "logs")
    event = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
             "auditID": "x-1", "stage": "ResponseComplete", "verb": "get",
             "requestURI": "/api/v1/namespaces/default/secrets/x",
             "user": {"username": "k.ivanova"}, "sourceIPs": ["91.200.1.9"],
             "userAgent": XSS[0],
             "objectRef": {"resource": "secrets", "namespace": "default", "name": XSS[2]},
             "responseStatus": {"code": 200},
             "requestReceivedTimestamp": f"{day(6, 2, 25):%Y-%m-%dT%H:%M:%S}.000000Z",
             "stageTimestamp": f"{day(6, 2, 25):%Y-%m-%dT%H:%M:%S}.000000Z"}
    (root / "logs" / "audit.jsonl").write_text(json.dumps(event) + "\n")
    from loaders.base import LoadOptions
    from loaders.ingest.pipeline import ingest
    from loaders.store.store import Store

    ingest(Store(root / "store"), [root / "logs"], options=LoadOptions(year=2026))
    save_run(root / "store", run_detectors(Scope(root / "store")))
    for fmt in ("html", "md", "json"):
        assert main(["report", "--store", str(root / "store"),
                     "--out", str(root / f"report.{fmt}")]) == 0
    return root


def test_hostile_content_shows_literally_and_never_runs(hostile: Path) -> None:
    report = json.loads((hostile / "report.json").read_text())
    assert report["incidents"], "the hostile spray must make an incident"
    page = _open(hostile / "report.html")
    assert page["pwned"] is False and page["dialogs"] == [] and page["problems"] == []
    assert page["requests"] == [] and page["images"] == 0
    assert page["scripts"] == 2 + len(report["incidents"])  # plotly, the loader, chart data
    for text in XSS:  # shown as text (raw records are in closed <details>)
        assert text in page["all_text"], text
    assert XSS[0] in page["text"]  # a spray target, named in the findings
    assert not [h for h in page["broken"] if h.lower().startswith("javascript")]


def test_markdown_escapes_hostile_content(hostile: Path) -> None:
    text = (hostile / "report.md").read_text()
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "&lt;script&gt;" in text
    assert "](javascript" not in text  # no link can be formed
    assert md_escape("[x](javascript:alert(1))") == "\\[x\\]\\(javascript:alert\\(1\\)\\)"
    assert md_escape("- not a list") == "\\- not a list"
    assert md_escape("a|b\nc") == "a\\|b c"


# -- the command -----------------------------------------------------------------------


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    org = Org(days=6)
    for i in range(12):
        org.login(day(5, 3, i), "r.pavlov", "45.9.20.13", PYREQ, ok=False)
    store = org.store(tmp_path)
    out = tmp_path / "r.md"
    assert main(["report", "--store", str(store), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "has no findings yet; running the detectors first" in captured.err
    assert re.search(r"report: 1 incidents; written to", captured.out)
    text = out.read_text()
    assert "Brute force: r\\.pavlov" in text or "Brute force: r.pavlov" in text
    report = json.loads(to_json(build_report(store, generated_at=FIXED)))
    assert report["notes"] == []  # the second time the findings exist
    incident = report["incidents"][0]["incident_id"]
    assert main(["report", "--store", str(store), "--incident", incident,
                 "--out", str(tmp_path / "one.json")]) == 0
    assert len(json.loads((tmp_path / "one.json").read_text())["incidents"]) == 1
    for args, message in [(["--incident", "INC-nope"], "no incident 'INC-nope'"),
                          (["--out", str(tmp_path / "r.txt")], "use .html, .md or .json")]:
        argv = ["report", "--store", str(store), *args]
        if "--out" not in args:
            argv += ["--out", str(tmp_path / "x.md")]
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert main(["report", "--store", str(tmp_path / "none"), "--out",
                 str(tmp_path / "x.md")]) == 1
    assert main(["report", "--store", str(store), "--principal", "nobody",
                 "--out", str(tmp_path / "none.json")]) == 0
    assert json.loads((tmp_path / "none.json").read_text())["incidents"] == []
