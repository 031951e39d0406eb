"""Sigma v2 correlation rules over small stores of hand-written sshd lines: each type fires
exactly where its window holds, one finding per burst, and its SQL is pinned."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from analysis.detect.base import Finding
from analysis.detect.sigma.correlation import run_correlations
from analysis.detect.sigma.engine import RuleSet, findings_of, load_rules, run_rules
from analysis.scope import Scope
from loaders.ingest.pipeline import ingest
from loaders.store.store import Store

T0 = datetime(2024, 3, 1, 10, 0, 0)

FAILED = """\
title: ssh failed password
id: 0b6e3a4c-0000-4000-8000-000000000001
name: ssh_failed
logsource: {product: linux, service: sshd}
level: low
detection:
    keywords: ['Failed password']
    condition: keywords
"""
ACCEPTED = """\
title: ssh accepted password
id: 0b6e3a4c-0000-4000-8000-000000000002
name: ssh_accepted
logsource: {product: linux, service: sshd}
level: low
detection:
    keywords: ['Accepted password']
    condition: keywords
"""


def corr(body: str, generate: bool = False) -> str:
    return ("title: test correlation\nid: 0b6e3a4c-0000-4000-8000-0000000000c0\n"
            "level: high\ntags: [attack.t1110.001]\nauthor: tester\n"
            f"correlation:\n{body}" + ("    generate: true\n" if generate else ""))


def line(sec: int, host: str, text: str) -> str:
    ts = (T0 + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")
    return f"{ts} {host} sshd[{1000 + sec}]: {text}\n"


def fail(sec: int, user: str = "root", host: str = "web01", ip: str = "203.0.113.9") -> str:
    return line(sec, host, f"Failed password for {user} from {ip} port 40000 ssh2")


def ok(sec: int, user: str = "root", host: str = "web01") -> str:
    return line(sec, host, f"Accepted password for {user} from 203.0.113.9 port 40000 ssh2")


def run(tmp_path: Path, lines: Sequence[str], *docs: str) -> tuple[RuleSet, list[Finding]]:
    (tmp_path / "auth.log").write_text("".join(lines))
    store = Store(tmp_path / "store")
    assert ingest(store, [tmp_path / "auth.log"]).ok
    (tmp_path / "rules.yml").write_text("\n---\n".join(docs))
    rs = load_rules([tmp_path / "rules.yml"])
    con = Scope(store.root).connect()
    found = [f for rule, hits in run_rules(con, rs) if rule.rule_id not in rs.silent
             for f in findings_of(rule, hits)]
    return rs, found + run_correlations(con, rs.correlations)


EVENT_COUNT = corr("""\
    type: event_count
    rules: [ssh_failed]
    group-by: [host]
    timespan: 10m
    condition: {gte: 5}
""")


def test_event_count_fires_once_per_burst_and_not_for_four(tmp_path: Path) -> None:
    # burst 1: 6 failures in 5 minutes; 30 minutes later burst 2: 4 failures (no finding);
    # another host: 5 failures within 10 minutes (one finding)
    lines = ([fail(60 * i) for i in range(6)] + [fail(1800 + 60 * i) for i in range(4)]
             + [fail(30 * i, host="db01") for i in range(5)])
    rs, found = run(tmp_path, sorted(lines), FAILED, EVENT_COUNT)
    assert not rs.skipped and len(rs.correlations) == 1
    assert rs.silent == {"0b6e3a4c-0000-4000-8000-000000000001"}  # generate: false
    assert sorted((f.entity, len(f.event_uids)) for f in found) == [("db01", 5), ("web01", 6)]
    f = next(f for f in found if f.entity == "web01")
    assert (f.detector, f.severity, f.attack, f.entity_type) == (
        "sigma:0b6e3a4c-0000-4000-8000-0000000000c0", "high", ("T1110.001",), "host")
    assert f.first_seen.replace(tzinfo=None) == T0
    assert f.last_seen.replace(tzinfo=None) == T0 + timedelta(minutes=5)
    assert "tester" in f.description and "event_count" in f.description


def test_two_bursts_of_one_group_are_two_findings_and_generate_true_keeps_base(
        tmp_path: Path) -> None:
    lines = [fail(60 * i) for i in range(5)] + [fail(3600 + 10 * i) for i in range(7)]
    rs, found = run(tmp_path, lines, FAILED,
                    corr(EVENT_COUNT.split("correlation:\n")[1], generate=True))
    assert not rs.silent
    by = sorted((f.detector, len(f.event_uids)) for f in found)
    assert by == [("sigma:0b6e3a4c-0000-4000-8000-000000000001", 12),
                  ("sigma:0b6e3a4c-0000-4000-8000-0000000000c0", 5),
                  ("sigma:0b6e3a4c-0000-4000-8000-0000000000c0", 7)]


VALUE_COUNT = corr("""\
    type: value_count
    rules: [ssh_failed]
    group-by: [host]
    timespan: 10m
    condition: {gte: 3, field: user}
""")


def test_value_count_counts_distinct_users_in_the_window(tmp_path: Path) -> None:
    # web01: root x5, alice, bob within 10 min -> 3 distinct (fires, 7 events);
    # db01: root x6 and alice -> 2 distinct (no); app01: 3 users but 20 minutes apart (no)
    lines = ([fail(10 * i) for i in range(5)] + [fail(100, "alice"), fail(200, "bob")]
             + [fail(10 * i, host="db01") for i in range(6)] + [fail(90, "alice", "db01")]
             + [fail(1200 * i, u, "app01") for i, u in enumerate(["a", "b", "c"])])
    _, found = run(tmp_path, sorted(lines), FAILED, VALUE_COUNT)
    assert [(f.entity, len(f.event_uids)) for f in found] == [("web01", 7)]
    assert {u for t, u in found[0].entities if t == "user"} == {"root", "alice", "bob"}


def temporal(kind: str) -> str:
    return corr(f"""\
    type: {kind}
    rules: [ssh_failed, ssh_accepted]
    group-by: [host]
    timespan: 5m
""")


def test_temporal_fires_within_the_window_only(tmp_path: Path) -> None:
    lines = [fail(0), ok(120),                              # web01: 2 minutes apart
             fail(0, host="db01"), ok(600, host="db01"),    # db01: 10 minutes apart
             ok(0, host="app01"), fail(60, host="app01")]   # app01: either order
    _, found = run(tmp_path, sorted(lines), FAILED, ACCEPTED, temporal("temporal"))
    assert sorted((f.entity, len(f.event_uids)) for f in found) == [("app01", 2),
                                                                   ("web01", 2)]


def test_temporal_ordered_fires_for_a_then_b_not_b_then_a(tmp_path: Path) -> None:
    lines = [fail(0), ok(120),                              # web01: A then B
             ok(0, host="app01"), fail(60, host="app01"),   # app01: B then A
             fail(0, host="db01"), ok(600, host="db01")]    # db01: too far apart
    _, found = run(tmp_path, sorted(lines), FAILED, ACCEPTED, temporal("temporal_ordered"))
    assert [(f.entity, len(f.event_uids)) for f in found] == [("web01", 2)]


def test_unmapped_group_by_is_skipped_with_the_reason(tmp_path: Path) -> None:
    bad = corr("""\
    type: event_count
    rules: [ssh_failed]
    group-by: [ssh_cipher]
    timespan: 10m
    condition: {gte: 5}
""")
    (tmp_path / "r.yml").write_text(FAILED + "\n---\n" + bad)
    rs = load_rules([tmp_path / "r.yml"])
    assert not rs.correlations
    assert [(s.rule_id, s.reason) for s in rs.skipped] == [(
        "0b6e3a4c-0000-4000-8000-0000000000c0",
        "correlation group-by field not mapped: field 'ssh_cipher' has no column in the "
        "store for this log source")]


BASE = ("SELECT * FROM (SELECT {r} AS r, event_uid, timestamp, host, \"user\", \"host\" AS g0"
        "{v} FROM events WHERE (source IN ('linux_auth', 'linux_syslog')) AND "
        "((\"message\" ILIKE '%{kw}%' ESCAPE '\\'))) WHERE true AND g0 IS NOT NULL")
WIN = ("(PARTITION BY g0 ORDER BY timestamp RANGE BETWEEN INTERVAL '{s} seconds' PRECEDING "
       "AND CURRENT ROW)")
V = ', "user" AS v'
COLS = "r, event_uid, timestamp, host, \"user\", g0"


@pytest.mark.parametrize("doc, want", [
    (EVENT_COUNT, f"WITH base AS ({BASE.format(r=0, v='', kw='Failed password')}) SELECT "
     f"{COLS}, count(*) OVER {WIN.format(s=600)} >= 5 AS hit FROM base "
     "ORDER BY g0, timestamp, event_uid"),
    (VALUE_COUNT, f"WITH base AS ({BASE.format(r=0, v=V, kw='Failed password')}"
     f") SELECT {COLS}, count(DISTINCT v) OVER {WIN.format(s=600)} >= 3 AS hit FROM base "
     "ORDER BY g0, timestamp, event_uid"),
    (temporal("temporal"), f"WITH base AS ({BASE.format(r=0, v='', kw='Failed password')} "
     f"UNION ALL {BASE.format(r=1, v='', kw='Accepted password')}) SELECT {COLS}, "
     f"count(DISTINCT r) OVER {WIN.format(s=300)} = 2 AS hit FROM base "
     "ORDER BY g0, timestamp, event_uid"),
    (temporal("temporal_ordered"), f"WITH base AS ({BASE.format(r=0, v='', kw='Failed password')}"
     f" UNION ALL {BASE.format(r=1, v='', kw='Accepted password')}), "
     "s0 AS (SELECT *, CASE WHEN r = 0 THEN timestamp END AS c0 FROM base), "
     f"s1 AS (SELECT *, CASE WHEN r = 1 THEN max(c0) OVER {WIN.format(s=300)} END AS c1 "
     f"FROM s0) SELECT {COLS}, COALESCE(r = 1 AND timestamp - c1 <= INTERVAL '300 seconds', "
     "false) AS hit FROM s1 ORDER BY g0, timestamp, event_uid"),
])
def test_sql_of_each_type(tmp_path: Path, doc: str, want: str) -> None:
    (tmp_path / "r.yml").write_text("\n---\n".join([FAILED, ACCEPTED, doc]))
    rs = load_rules([tmp_path / "r.yml"])
    assert [c.sql for c in rs.correlations] == [want]


def test_cli_detect_runs_correlations_and_keeps_generate_false_base_rules_back(
        tmp_path: Path) -> None:
    from analysis.cli import main
    from analysis.findings import read_findings

    (tmp_path / "auth.log").write_text("".join(fail(60 * i) for i in range(5)))
    (tmp_path / "rules.yml").write_text(FAILED + "\n---\n" + EVENT_COUNT)
    store = tmp_path / "store"
    assert main(["ingest", str(tmp_path / "auth.log"), "--store", str(store)]) == 0
    assert main(["detect", "--store", str(store), "--rules", str(tmp_path / "rules.yml")]) == 0
    found = read_findings(store)
    sigma = found[found["detector"].str.startswith("sigma:")]
    assert list(sigma["detector"]) == ["sigma:0b6e3a4c-0000-4000-8000-0000000000c0"]
    assert len(sigma.iloc[0]["event_uids"]) == 5


def test_rules_check_runs_correlations_against_an_empty_store(tmp_path: Path) -> None:
    from analysis.detect.sigma.engine import check_rules

    bad = EVENT_COUNT.replace("group-by: [host]", "group-by: [ssh_cipher]")
    (tmp_path / "r.yml").write_text("\n---\n".join([FAILED, ACCEPTED,
                                                     temporal("temporal_ordered")]))
    (tmp_path / "s.yml").write_text(FAILED + "\n---\n" + bad)
    rows = check_rules([tmp_path])
    assert [(r.title, r.parses, r.converts, r.runs) for r in rows] == [
        ("ssh failed password", True, True, True), ("ssh accepted password", True, True, True),
        ("test correlation", True, True, True),
        ("ssh failed password", True, True, True), ("test correlation", True, False, False)]


@pytest.mark.parametrize("kind", ["event_count", "value_count", "temporal",
                                  "temporal_ordered"])
def test_window_flags_agree_with_a_brute_force_count(kind: str) -> None:
    """Each row's ``hit`` against a direct count over the rows of its group within the
    timespan before it (random rows, ties in time included)."""
    import random

    import duckdb
    from sigma.correlations import SigmaCorrelationType

    from analysis.detect.sigma.correlation import correlation_sql

    rnd = random.Random(7)
    rows = [(rnd.randrange(3), f"e{i}", T0 + timedelta(seconds=rnd.randrange(0, 3600, 20)),
             rnd.choice("ab"), rnd.choice("uvwxy")) for i in range(400)]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (r INTEGER, event_uid VARCHAR, timestamp TIMESTAMP, "
                "g0 VARCHAR, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    union = ["SELECT r, event_uid, timestamp, NULL AS host, NULL AS \"user\", g0, v FROM t"]
    span, nrules = 300, 3
    got = {uid: hit for _, uid, *_, hit in con.execute(correlation_sql(
        SigmaCorrelationType[kind.upper()], union, 1, span, nrules, ">=", 4)).fetchall()}

    def want(row: tuple[int, str, datetime, str, str]) -> bool:
        win = [x for x in rows if x[3] == row[3]
               and row[2] - timedelta(seconds=span) <= x[2] <= row[2]]
        if kind == "event_count":
            return len(win) >= 4
        if kind == "value_count":
            return len({x[4] for x in win}) >= 4
        if kind == "temporal":
            return len({x[0] for x in win}) == nrules
        if row[0] != nrules - 1:  # ordered: r0 <= r1 <= r2 = this row, in time
            return False
        t1 = [x[2] for x in win if x[0] == 1]
        return any(a[2] <= b for a in win if a[0] == 0 for b in t1)

    assert got == {row[1]: want(row) for row in rows}
    assert 0 < sum(got.values()) < len(rows)


def test_a_correlation_may_reference_rules_of_another_file(tmp_path: Path) -> None:
    (tmp_path / "base.yml").write_text(FAILED)
    (tmp_path / "corr.yml").write_text(EVENT_COUNT)
    (tmp_path / "lost.yml").write_text(EVENT_COUNT.replace("[ssh_failed]", "[no_such_rule]")
                                       .replace("0000000000c0", "0000000000c1"))
    rs = load_rules([tmp_path])
    assert [c.rule_id for c in rs.correlations] == ["0b6e3a4c-0000-4000-8000-0000000000c0"]
    assert rs.silent == {"0b6e3a4c-0000-4000-8000-000000000001"}
    assert [(s.rule_id, s.reason.split(":")[0]) for s in rs.skipped] == [
        ("0b6e3a4c-0000-4000-8000-0000000000c1", "correlation base rule not found")]


def test_temporal_ordered_over_a_real_fixture_across_the_year_wrap(tmp_path: Path) -> None:
    """synthetic_dec_jan_wrap.log: web02 has two failed passwords on Dec 31 and the accepted
    one two seconds into Jan 1 (the loader infers the years), one burst of three events."""
    fixture = Path(__file__).parent / "fixtures" / "linux-auth" / "synthetic_dec_jan_wrap.log"
    store = Store(tmp_path / "store")
    assert ingest(store, [fixture]).ok
    (tmp_path / "rules.yml").write_text("\n---\n".join(
        [FAILED, ACCEPTED, temporal("temporal_ordered")]))
    rs = load_rules([tmp_path / "rules.yml"])
    found = run_correlations(Scope(store.root).connect(), rs.correlations)
    assert [(f.entity, len(f.event_uids)) for f in found] == [("web02", 3)]
    assert (found[0].last_seen - found[0].first_seen) == timedelta(seconds=3)
