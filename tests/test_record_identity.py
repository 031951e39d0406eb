"""Record identity (issue 17 item 5): records that only share a source id are separate events,
while a true repeat — the same record twice in one file, the same file twice, the same record
in two files — is still a duplicate. ``docs/SCHEMA.md`` ("Record identity and duplicates")
states each source's rule.

Kubernetes audit runs on both paths: the vectorized JSON Lines path (chosen by the file's
first line, :func:`loaders.k8s_audit.fast.jsonl_head`; no Tuning value selects it) and the
per-record path, taken by turning that head check off as ``tests/test_k8s_audit_fast.py``
does, and by a JSON array file, which always takes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
import loaders.k8s_audit.fast as k8s_fast
import loaders.selectel_audit.loader as selectel_loader
from analysis import read_events
from loaders.base import LoadOptions, ParsedTable, Tuning, is_placeholder_id
from loaders.ingest.pipeline import ingest
from loaders.store.store import Store
from tests.conftest import FIXTURES
from tests.test_k8s_audit_fast import ev

SMALL_BLOCKS = LoadOptions(tuning=Tuning(jsonl_block_bytes=1500, k8s_stage_window=3,
                                         k8s_remembered_ids=4))
RECEIVED = "2026-11-01T10:00:00.123456Z"


def _lines(*records: str) -> str:
    return "\n".join(records) + "\n"


# one auditID reused for four different requests (verb, URI, user, time), then one genuine
# request written in two stages
SHARED = [
    ev("shared", verb="get", requestURI="/api/v1/namespaces/default/pods/web-0"),
    ev("shared", verb="delete", requestURI="/api/v1/namespaces/default/pods/web-0"),
    ev("shared", verb="delete", requestURI="/api/v1/namespaces/default/pods/web-0",
       user__username="mallory"),
    ev("shared", verb="delete", requestURI="/api/v1/namespaces/default/pods/web-0",
       user__username="mallory", requestReceivedTimestamp="2026-11-01T10:05:00Z",
       stageTimestamp="2026-11-01T10:05:00.1Z"),
]
GENUINE = [
    ev("req-1", stage="RequestReceived", stageTimestamp=RECEIVED),
    ev("req-1", stage="ResponseComplete"),
]


@contextmanager
def k8s_path(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Force the k8s audit path: ``fast`` (vectorized) or ``slow`` (per record)."""
    with monkeypatch.context() as m:
        if kind == "slow":
            m.setattr(k8s_fast, "jsonl_head", lambda head: False)
        yield


def _tables(path: Path, options: LoadOptions | None = None) -> int:
    """ParsedTable items of the k8s audit loader over one file (the vectorized path's)."""
    from loaders.base import Source
    from loaders.parsing.inputs import input_file, read_head

    loader = loaders.get_loader("k8s_audit")
    src = Source(input_file(path), read_head(path), options or LoadOptions())
    return sum(isinstance(item, ParsedTable) for item in loader.parse(src))


def _counts(result: Any) -> tuple[int, int, int, int]:
    c = result.counts
    return (c.read, c.loaded, c.rejected, c.duplicate)


def _file_counts(report: Any) -> list[tuple[int, int, int, int]]:
    return [(f.read, f.loaded, f.rejected, f.duplicate) for f in report.files]


@pytest.mark.parametrize("options", [None, SMALL_BLOCKS], ids=["default", "small-blocks"])
@pytest.mark.parametrize("kind", ["fast", "slow"])
def test_k8s_shared_audit_id_is_not_a_duplicate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                kind: str, options: LoadOptions | None) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text(_lines(*SHARED, *GENUINE), encoding="utf-8")
    with k8s_path(kind, monkeypatch):
        assert (_tables(path, options) > 0) == (kind == "fast")
        result = loaders.load(path, options=options)
    # four requests sharing "shared", and the genuine request once (RequestReceived merged)
    assert _counts(result) == (6, 5, 0, 1)
    ev_ = result.events.sort_values("source_line")
    assert ev_["source_line"].tolist() == [1, 2, 3, 4, 6]
    assert ev_["action"].tolist() == ["get pods", "delete pods", "delete pods", "delete pods",
                                      "create pods"]
    assert ev_["user"].tolist() == ["alice@example.com", "alice@example.com", "mallory",
                                    "mallory", "alice@example.com"]
    assert ev_["event_uid"].nunique() == 5
    assert ev_.loc[ev_["source_line"] == 6, "k8s_stage"].item() == "ResponseComplete"


def test_k8s_both_paths_give_the_same_events(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [*SHARED, *GENUINE,
             ev("imp", impersonatedUser={"username": "system:admin"}), ev("imp"),
             ev("late", stage="ResponseComplete"), ev("late", stage="RequestReceived"),
             ev("late", stage="RequestReceived", verb="patch")]
    path = tmp_path / "audit.jsonl"
    path.write_text(_lines(*lines), encoding="utf-8")
    got = {}
    for kind in ("fast", "slow"):
        with k8s_path(kind, monkeypatch):
            result = loaders.load(path, options=SMALL_BLOCKS)
        got[kind] = (_counts(result), result.events.drop(columns=["ingest_id"]))
    assert got["fast"][0] == got["slow"][0]
    pd.testing.assert_frame_equal(got["fast"][1], got["slow"][1])
    # impersonation makes another request; the late RequestReceived of "late" repeats it,
    # the patch with its auditID does not
    assert got["fast"][0] == (11, 9, 0, 2)
    array = tmp_path / "audit.json"  # a JSON array always takes the per-record path
    array.write_text("[" + ",\n".join(lines) + "]", encoding="utf-8")
    assert _tables(array) == 0
    result = loaders.load(array)
    assert _counts(result) == (11, 9, 0, 2)
    assert sorted(result.events["event_uid"]) == sorted(got["fast"][1]["event_uid"])


@pytest.mark.parametrize("kind", ["fast", "slow"])
def test_k8s_true_repeats_are_duplicates_in_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    first = tmp_path / "a.jsonl"
    first.write_text(_lines(*SHARED, *GENUINE), encoding="utf-8")
    again = tmp_path / "b.jsonl"  # the same records, and one file differing by a blank line
    again.write_text(_lines(*SHARED, *GENUINE) + "\n", encoding="utf-8")
    repeat_in_file = tmp_path / "c.jsonl"
    repeat_in_file.write_text(_lines(SHARED[0], SHARED[0], GENUINE[1], GENUINE[0],
                                     ev("shared", verb="list")), encoding="utf-8")
    store = Store(tmp_path / "store")
    with k8s_path(kind, monkeypatch):
        report = ingest(store, [first, again, repeat_in_file])
        twice = ingest(store, [first])
    assert _file_counts(report) == [(6, 5, 0, 1), (6, 0, 0, 6), (5, 1, 0, 4)]
    assert [f.status for f in twice.files] == ["skipped"]
    events = read_events(store.root)
    assert len(events) == 6 and events["event_uid"].is_unique
    assert sorted(events["action"]) == ["create pods", "delete pods", "delete pods",
                                        "delete pods", "get pods", "list pods"]


@pytest.mark.parametrize("kind", ["fast", "slow"])
def test_k8s_placeholder_audit_ids_are_never_merged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    zero = "00000000-0000-0000-0000-000000000000"
    path = tmp_path / "audit.jsonl"
    path.write_text(_lines(ev("0", stage="RequestReceived"), ev("0"), ev("0"), ev("-"),
                           ev(zero), ev(zero, verb="get")), encoding="utf-8")
    store = Store(tmp_path / "store")
    with k8s_path(kind, monkeypatch):
        result = loaders.load(path)
        report = ingest(store, [path])
    # no stage merging on a placeholder; only the identical line 3 repeats line 2
    assert _counts(result) == (6, 5, 0, 1)
    assert _file_counts(report) == [(6, 5, 0, 1)]
    assert result.events["k8s_stage"].fillna("-").tolist().count("RequestReceived") == 1


def test_k8s_real_fixtures_satisfy_the_time_rule() -> None:
    """Every later stage of a request in the real and synthetic fixtures repeats the first
    stage's requestReceivedTimestamp, and its stageTimestamp is not before it."""
    for name in ("falco_trace_files_k8s_audit.jsonl", "synthetic_multistage.jsonl"):
        seen: dict[tuple[Any, ...], str] = {}
        for line in (FIXTURES / "k8s-audit" / name).read_text().splitlines():
            value = json.loads(line)
            if "auditID" not in value:
                continue
            key = (value["auditID"], value["verb"], value["requestURI"],
                   value["user"]["username"])
            received = value["requestReceivedTimestamp"]
            assert seen.setdefault(key, received) == received
            assert value["stageTimestamp"] >= received  # same format within a file
    result = loaders.load(FIXTURES / "k8s-audit" / "synthetic_multistage.jsonl")
    assert _counts(result) == (8, 4, 0, 4)


def test_placeholder_ids() -> None:
    assert [is_placeholder_id(v) for v in (
        None, "", " ", "0", "-", "--", "00000000-0000-0000-0000-000000000000",
        "{00000000-0000-0000-0000-000000000000}", "null", "None", "N/A", "undefined", "-1",
    )] == [True] * 13
    assert [is_placeholder_id(v) for v in (
        "1", "10", "a0", "0x1", "e5000000-0000-4000-8000-00000000000a", "none1",
    )] == [False] * 6


def _ingest_pair(tmp_path: Path, name: str, first: str, second: str,
                 format: str | None = None) -> tuple[list[tuple[int, ...]], int]:
    """Ingest ``first``; ``second`` (the same records and more); ``first`` again under
    another name. Returns the per-file counts and the stored events."""
    a, b, c = tmp_path / f"a-{name}", tmp_path / f"b-{name}", tmp_path / f"c-{name}"
    a.write_text(first, encoding="utf-8")
    b.write_text(second, encoding="utf-8")
    c.write_text(first + "\n", encoding="utf-8")
    store = Store(tmp_path / "store")
    report = ingest(store, [a, b, c], format=format)
    assert [f.status for f in report.files] == ["ingested"] * 3, report.files
    return _file_counts(report), len(read_events(store.root))


def test_openstack_cadf_placeholder_id(tmp_path: Path) -> None:
    base = json.loads((FIXTURES / "openstack-cadf" / "cadf-bare.jsonl").read_text()
                      .splitlines()[0])
    records = []
    for event_id, user in (("00000000-0000-0000-0000-000000000000", "alice"),
                           ("00000000-0000-0000-0000-000000000000", "bob"),
                           ("0", "carol"), ("0", "dave")):
        rec = json.loads(json.dumps(base))
        rec["id"] = event_id
        rec["initiator"]["name"] = user
        records.append(json.dumps(rec))
    # same id, time, action and outcome, other initiators: four events; the file again and
    # its records in a second file: duplicates
    counts, stored = _ingest_pair(tmp_path, "cadf.jsonl", _lines(*records[:3]),
                                  _lines(*records))
    assert counts == [(3, 3, 0, 0), (4, 1, 0, 3), (3, 0, 0, 3)]
    assert stored == 4
    # a real id still merges two records of one event (same id, time, action, outcome)
    real = json.loads(json.dumps(base))
    real["initiator"]["name"] = "eve"
    assert loaders.load(tmp_path / "a-cadf.jsonl").counts.loaded == 3
    result = loaders.load(_write(tmp_path / "real.jsonl", _lines(json.dumps(base),
                                                               json.dumps(real))))
    assert result.events["event_uid"].nunique() == 1


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_mks_cluster_placeholder_task_id(tmp_path: Path) -> None:
    base = json.loads((FIXTURES / "mks-cluster" / "synthetic_task_per_line.jsonl").read_text()
                      .splitlines()[0])["task"]
    records = []
    for task_id, kind in (("00000000-0000-0000-0000-000000000000", "NODE_REINSTALL"),
                          ("00000000-0000-0000-0000-000000000000", "UPGRADE_PATCH_VERSION"),
                          ("-", "NODE_REINSTALL"), ("-", "NODEGROUP_RESIZE")):
        records.append(json.dumps({"task": {**base, "id": task_id, "type": kind}}))
    counts, stored = _ingest_pair(tmp_path, "tasks.jsonl", _lines(*records[:3]),
                                  _lines(*records), format="mks_cluster")
    assert counts == [(3, 3, 0, 0), (4, 1, 0, 3), (3, 0, 0, 3)]
    assert stored == 4


def test_k8s_events_without_resource_version_or_with_placeholder_uid(tmp_path: Path) -> None:
    line = (FIXTURES / "k8s-events" / "synthetic_watch_stream.jsonl").read_text().splitlines()[0]
    base = json.loads(line)
    records = []
    for uid, count, last in (("ev-1", 1, "2024-05-01T12:00:00Z"),  # one event updated twice,
                             ("ev-1", 2, "2024-05-01T12:00:10Z"),  # no resourceVersion
                             ("ev-1", 3, "2024-05-01T12:00:20Z"),
                             ("0", 1, "2024-05-01T12:00:00Z")):     # placeholder uid
        rec = json.loads(json.dumps(base))
        meta = rec["object"]["metadata"]
        meta.pop("resourceVersion")
        meta["uid"] = uid
        rec["object"].update(count=count, lastTimestamp=last)
        records.append(json.dumps(rec))
    counts, stored = _ingest_pair(tmp_path, "events.jsonl", _lines(*records[:3]),
                                  _lines(*records))
    assert counts == [(3, 3, 0, 0), (4, 1, 0, 3), (3, 0, 0, 3)]
    assert stored == 4
    # the same version in two exports (MODIFIED vs ADDED) is still one event
    versioned = json.loads(line)
    modified = {**versioned, "type": "MODIFIED"}
    store = Store(tmp_path / "store2")
    report = ingest(store, [_write(tmp_path / "v1.jsonl", _lines(json.dumps(versioned))),
                            _write(tmp_path / "v2.jsonl", _lines(json.dumps(modified)))])
    assert _file_counts(report) == [(1, 1, 0, 0), (1, 0, 0, 1)]


@pytest.mark.parametrize("kind", ["fast", "slow"])
def test_selectel_audit_placeholder_event_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             kind: str) -> None:
    base = json.loads((FIXTURES / "selectel-audit" / "events.txt").read_text()
                      .splitlines()[0])
    records = []
    for event_id, event_type in (("0", "iam.role.assign"), ("0", "iam.user.delete"),
                                 ("00000000-0000-0000-0000-000000000000", "iam.role.assign"),
                                 ("00000000-0000-0000-0000-000000000000", "iam.user.create")):
        records.append(json.dumps({**base, "event_id": event_id, "event_type": event_type}))
    with monkeypatch.context() as m:
        if kind == "slow":
            m.setattr(selectel_loader, "jsonl_head", lambda head: False)
        counts, stored = _ingest_pair(tmp_path, "events.txt", _lines(*records[:3]),
                                      _lines(*records), format="selectel_audit")
    assert counts == [(3, 3, 0, 0), (4, 1, 0, 3), (3, 0, 0, 3)]
    assert stored == 4


def test_linux_auditd_without_node_needs_the_text(tmp_path: Path) -> None:
    """Two hosts' logs without node=: the same time and serial are other events."""
    host_a = ("type=USER_LOGIN msg=audit(1700000000.123:42): pid=10 uid=0 auid=1000 ses=1 "
              "msg='op=login acct=\"alice\" exe=\"/usr/sbin/sshd\" hostname=? addr=10.0.0.1 "
              "terminal=sshd res=success'\n")
    host_b = host_a.replace("alice", "bob").replace("10.0.0.1", "10.0.0.2")
    with_node = "node=web-1 " + host_a
    store = Store(tmp_path / "store")
    files = [_write(tmp_path / "a.log", host_a), _write(tmp_path / "b.log", host_b),
             _write(tmp_path / "a-copy.log", host_a + "\n"),
             _write(tmp_path / "n1.log", with_node),
             _write(tmp_path / "n2.log", with_node.replace("alice", "alice2"))]
    report = ingest(store, files, format="linux_auditd")
    # with node=, node + time + serial identifies the event: the second file's record is a
    # repeat of the first (a re-read of the same host's log)
    assert _file_counts(report) == [(1, 1, 0, 0), (1, 1, 0, 0), (1, 0, 0, 1), (1, 1, 0, 0),
                                    (1, 0, 0, 1)]
    assert sorted(read_events(store.root)["user"].dropna()) == ["alice", "alice", "bob"]
