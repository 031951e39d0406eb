"""The vectorized JSON Lines path of k8s_audit gives exactly what the per-event path gives.

Each case is a file read both ways (the per-event path forced by turning the fast path's head
check off); events (in order), rejects, counts, warnings and status must be identical, and
the fast path must really have produced tables where the input allows it. Stage merging
spans fast rows and per-event rows, so merger windows and block sizes are shrunk to put
stages of one request in different blocks and on both paths.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import loaders
import loaders.k8s_audit.fast as fast
from loaders.base import LoadOptions, ParsedTable, Tuning
from loaders.ingest.runner import FileRun
from loaders.parsing.inputs import input_file, read_head

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "k8s-audit").iterdir())
FALCO = Path(__file__).parent / "fixtures" / "k8s-audit" / "falco_trace_files_k8s_audit.jsonl"
BASE: dict[str, Any] = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
    "auditID": "a0", "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/default/pods", "verb": "create",
    "user": {"username": "alice@example.com", "uid": "u-1", "groups": ["dev", "system:auth"]},
    "sourceIPs": ["10.0.0.7", "10.0.0.8"], "userAgent": "kubectl/v1.30",
    "objectRef": {"resource": "pods", "namespace": "default", "name": "web-0",
                  "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 201},
    "requestObject": {"kind": "Pod", "metadata": {"name": "web-0"}, "spec": {
        "hostPID": True, "containers": [
            {"name": "a", "image": "nginx:1", "securityContext": {"privileged": True}},
            {"name": "b", "image": "busybox"}, {"name": "c", "image": "nginx:1"}],
        "volumes": [{"name": "h", "hostPath": {"path": "/etc"}}, {"name": "e", "emptyDir": {}}]}},
    "requestReceivedTimestamp": "2026-11-01T10:00:00.123456Z",
    "stageTimestamp": "2026-11-01T10:00:00.200000Z",
    "annotations": {"authorization.k8s.io/decision": "allow",
                    "authorization.k8s.io/reason": "RBAC: allowed"},
}


def ev(audit_id: str = "a0", **changes: Any) -> str:
    """BASE with changes: ``objectRef__name="x"`` sets objectRef.name; None deletes a key,
    ``NULL`` sets JSON null."""
    out = copy.deepcopy(BASE)
    out["auditID"] = audit_id
    for path, value in changes.items():
        *parents, key = path.split("__")
        obj = out
        for p in parents:
            obj = obj.setdefault(p, {})
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = None if value is NULL else value
    return json.dumps(out, ensure_ascii=False)


NULL = object()
POD_SPEC = {"initContainers": [{"image": "init"}, None, {"image": ""}],
            "containers": [{"image": "app", "securityContext": {"privileged": False}},
                           {"image": "init"}],
            "ephemeralContainers": [{"image": "dbg", "securityContext": {"privileged": True}}],
            "hostNetwork": True, "hostIPC": False,
            "volumes": [{"hostPath": {"path": "/"}}, {"hostPath": {}}, None, {"hostPath": None}]}

ROW_CASES = [
    ev("r1"), ev("r2", stage="RequestReceived"), ev("r2"), ev("r3", stage="ResponseStarted"),
    ev("r3", stage="RequestReceived"), ev("r3"), ev("r3"), ev("r3", stage="Panic"),
    ev("r4", stage="Panic"), ev("r5", stage=None), ev("r6", stage="Weird"), ev(""),
    ev("r7", stage=NULL), ev("r8", verb=None, stage=None), ev("r9", verb=None, stage=None,
                                                                requestURI=None),
    ev("r10", auditID=None), ev("r11", auditID=NULL),
    # the auditID of r3 reused by other requests: each its own event (request_key)
    ev("r3", verb="get"), ev("r3", requestURI="/api/v1/namespaces/other/pods"),
    ev("r3", user__username="bob"), ev("r3", user=None),
    ev("r3", impersonatedUser={"username": "system:admin"}),
    ev("r3", requestReceivedTimestamp="2026-11-01T10:00:01Z"),
    ev("r3", requestReceivedTimestamp=None), ev("r3", requestReceivedTimestamp=""),
    ev("r12", stage="RequestReceived", requestReceivedTimestamp=None,
       timestamp="2026-11-01T09:00:00Z"),
    ev("r12", requestReceivedTimestamp="", timestamp="2026-11-01T09:00:00Z"),
    # placeholder auditIDs: never merged, uid from the raw text
    ev("0", stage="RequestReceived"), ev("0"), ev("0"), ev("-"),
    ev("00000000-0000-0000-0000-000000000000", stage="ResponseStarted"),
    ev("00000000-0000-0000-0000-000000000000"), ev("NULL"), ev(" "),
    ev("t1", requestReceivedTimestamp="2026-11-01T10:00:00.123456789Z"),
    ev("t2", requestReceivedTimestamp="2026-11-01T10:00:00+03:00"),
    ev("t3", requestReceivedTimestamp="2026-11-01T10:00:00.5-05:30"),
    ev("t4", requestReceivedTimestamp="2026-11-01t10:00:00z"),
    ev("t5", requestReceivedTimestamp="2026-11-01 10:00:00Z"),
    ev("t6", requestReceivedTimestamp="garbage"), ev("t7", requestReceivedTimestamp=None),
    ev("t8", requestReceivedTimestamp=None, stageTimestamp=None,
       timestamp="2026-11-01T11:00:00Z"),
    ev("t9", requestReceivedTimestamp=None, stageTimestamp=None,
       metadata={"creationTimestamp": "2026-11-01T12:00:00Z"}),
    ev("t10", requestReceivedTimestamp=None, stageTimestamp=None),
    ev("t11", requestReceivedTimestamp="2026-11-01T23:59:60Z"),
    ev("t12", requestReceivedTimestamp=" 2026-11-01T10:00:00Z"),
    ev("o1", objectRef=None), ev("o2", objectRef={}), ev("o3", objectRef=NULL),
    ev("o4", objectRef__subresource="exec"), ev("o5", objectRef__name=None),
    ev("o6", objectRef__name="", requestObject__metadata__name=""),
    ev("o7", objectRef__name=None, responseObject={"metadata": {"name": "gen-x1"}}),
    ev("o8", objectRef__namespace=None, objectRef__resource="secrets", verb="list"),
    ev("o9", verb="", objectRef__resource=""), ev("o10", verb=" get"),
    ev("o11", objectRef__resource="pods\u3000"), ev("o12", verb="get", objectRef=None),
    ev("o13", objectRef__subresource="token", objectRef__resource="serviceaccounts"),
    ev("c1", responseStatus__code=403), ev("c2", responseStatus={}),
    ev("c3", responseStatus=None), ev("c4", responseStatus__code=500),
    ev("c5", annotations={"authorization.k8s.io/decision": "forbid"}),
    ev("c6", annotations=None), ev("c7", annotations={"other": {"x": 1}}),
    ev("c8", annotations={"authorization.k8s.io/decision": "",
                          "authorization.k8s.io/reason": ""}),
    ev("i1", impersonatedUser={"username": "system:admin"}), ev("i2", impersonatedUser={}),
    ev("i3", impersonatedUser={"username": ""}, user={"username": ""}),
    ev("u1", user=None), ev("u2", user__groups=["a", None]), ev("u3", user__groups=[]),
    ev("u4", sourceIPs=[]), ev("u5", sourceIPs=[None, "1.2.3.4"]), ev("u6", sourceIPs=[""]),
    ev("u7", sourceIPs=None, userAgent=""),
    ev("x1", user__username="\u00e9\U0001f600 \u2028"),
    '{"\\u0061uditID": "x2", "verb": "get", "requestReceivedTimestamp": '
    '"2026-11-01T10:00:00Z", "user": {"username": "\\u00e9\\ud83d\\ude00"}}',
    ev("p1", requestObject__spec=POD_SPEC), ev("p2", requestObject__spec=None),
    ev("p3", requestObject__spec=NULL), ev("p4", requestObject=None),
    ev("p5", requestObject__spec={}),
    ev("p6", objectRef__resource="deployments", requestObject={
        "spec": {"template": {"spec": POD_SPEC}}}),
    ev("p7", objectRef__resource="cronjobs", requestObject={"spec": {"jobTemplate": {
        "spec": {"template": {"spec": POD_SPEC}}}}}),
    ev("p8", objectRef__resource="deployments"), ev("p9", objectRef__resource="services"),
    ev("b1", objectRef__resource="rolebindings", requestObject={
        "roleRef": {"kind": "Role", "name": "edit"},
        "subjects": [{"kind": "User", "name": "bob"}, {}, None,
                     {"kind": "ServiceAccount", "namespace": "ns", "name": "sa"}]}),
    ev("b2", objectRef__resource="clusterrolebindings", requestObject={"roleRef": {}}),
    ev("b3", objectRef__resource="clusterrolebindings", requestObject={"subjects": []}),
    ev("d1", extra=[1, {"a": [None, 2.5, "x"]}], kind=None),
    ev("d2")[:-1] + ', "deep": ' + "[" * 1200 + "]" * 1200 + "}",
    json.dumps({"message": ev("w1")}), json.dumps({"log": json.loads(ev("w2"))}),
    json.dumps({"no": "event"}), "{}",
]
# one line each that makes Arrow refuse its whole block
BLOCK_CASES = [
    ev("k1", verb=5), ev("k2", user="alice"), ev("k3", requestObject=[{"op": "add"}]),
    ev("k4", responseStatus__code=403.0), ev("k5", responseStatus__code=True),
    ev("k6")[:-1] + ', "verb": "delete"}', ev("k7", kind="X").replace('"X"', '"\\ud800"'),
    ev("k8", responseStatus__code=1.5), ev("k9", items=[json.loads(ev("k9i"))], kind="x"),
    json.dumps({"kind": "EventList", "items": [json.loads(ev("k10"))]}),
    ev("k11", requestReceivedTimestamp="2026-02-30T00:00:00Z"),
    ev("k12", metadata="x"), ev("k13", sourceIPs=[1]), '{"auditID": "k14", "verb": "get", "',
    ev("k15") + ev("k16"), ev("k17", requestObject__spec__hostPID="true"),
    ev("k18", records=[]), ev("k19", stage=["x"]),
]


def _run(path: Path, use_fast: bool, monkeypatch: pytest.MonkeyPatch,
         options: LoadOptions | None = None) -> tuple[Any, ...]:
    with monkeypatch.context() as m:
        if not use_fast:
            m.setattr(fast, "jsonl_head", lambda head: False)
        loader = loaders.get_loader("k8s_audit")
        tables = 0
        parse = loader.parse

        def counting(src):  # type: ignore[no-untyped-def]
            nonlocal tables
            for item in parse(src):
                tables += isinstance(item, ParsedTable)
                yield item

        m.setattr(loader, "parse", counting)
        run = FileRun(loader, input_file(path), read_head(path), options or LoadOptions(), "t")
        out: dict[str, list[pa.Table]] = {"events": [], "rejects": []}
        for kind, table in run:
            out[kind].append(table)
    events = pa.concat_tables(out["events"]).drop_columns(["ingest_id"]) if out["events"] \
        else None
    rejects = [r for t in out["rejects"] for r in t.to_pylist()]
    c = run.counts
    return (events, rejects, (c.read, c.loaded, c.rejected, c.duplicate), run.warnings,
            (run.status, run.error), tables)


def _same_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch,
                    options: LoadOptions | None = None) -> int:
    got = _run(path, True, monkeypatch, options)
    want = _run(path, False, monkeypatch, options)
    assert want[5] == 0
    assert got[1:5] == want[1:5]
    assert (got[0] is None) == (want[0] is None)
    if got[0] is not None and want[0] is not None:
        assert got[0].column_names == want[0].column_names
        for name in want[0].column_names:
            assert got[0].column(name).to_pylist() == want[0].column(name).to_pylist(), name
    return int(got[5])


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_fixtures_match_the_per_event_path(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_both_ways(path, monkeypatch)


def _tuned(block: int, window: tuple[int, int] = (5000, 100_000)) -> LoadOptions:
    """Options with blocks of ``block`` bytes and a stage merger of (window, memory)."""
    return LoadOptions(tuning=Tuning(jsonl_block_bytes=block, k8s_stage_window=window[0],
                                     k8s_remembered_ids=window[1]))


@pytest.mark.parametrize("block", [1 << 20, 3000, 700])
@pytest.mark.parametrize("window", [(5000, 100_000), (3, 4), (1, 1)])
def test_row_level_cases_match_the_per_event_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int,
        window: tuple[int, int]) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(ev() + "\n" + "\n".join(ROW_CASES) + "\n\n\n" + ev("last"),
                    encoding="utf-8")
    assert _same_both_ways(path, monkeypatch, _tuned(block, window)) > 0


@pytest.mark.parametrize("line", BLOCK_CASES)
def test_block_level_cases_match_the_per_event_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str) -> None:
    path = tmp_path / "block.jsonl"
    path.write_text("\n".join([ev("s1", stage="RequestReceived"), ev("s2"), line,
                               ev("s1"), ev("s3")]) + "\n", encoding="utf-8")
    _same_both_ways(path, monkeypatch)


@pytest.mark.parametrize("window", [(5000, 100_000), (2, 3)])
def test_stages_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              window: tuple[int, int]) -> None:
    """RequestReceived / ResponseStarted in one block, their completion blocks later, with a
    refused block and per-event rows between them."""
    lines = []
    for i in range(40):
        lines.append(ev(f"m{i}", stage=("RequestReceived", "ResponseStarted")[i % 2]))
        if i >= 3:
            lines.append(ev(f"m{i - 3}"))
        if i % 7 == 0:
            lines.append(ev(f"m{i - 1}", stage="ResponseStarted"))
        if i % 11 == 0:
            lines.append(ev(f"m{i}", requestReceivedTimestamp="odd"))
        if i == 20:
            lines.append(ev("bad", verb=7))
    path = tmp_path / "stages.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _same_both_ways(path, monkeypatch, _tuned(2500, window)) > 1


@pytest.mark.parametrize("window", [(1, 100), (3, 5), (4, 100_000)])
def test_incomplete_stages_expire_among_table_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: tuple[int, int]) -> None:
    """Requests that never complete wait ``window`` records, then go out between rows."""
    lines = [ev(f"q{i}", stage="ResponseStarted" if i % 5 in (0, 3) else "ResponseComplete")
             for i in range(80)]
    lines[40:40] = [ev("q7"), ev("q0", stage="RequestReceived"), ev("q1")]  # late and repeats
    path = tmp_path / "expire.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert _same_both_ways(path, monkeypatch, _tuned(9000, window)) > 1


@pytest.mark.parametrize("text", [
    ev() + "\n" + ev("c2") + "\r\n" + ev("c3") + "\n",
    ev() + "\n\ufeff" + ev("c2") + "\n",
    ev() + "\n " + ev("s") + "\n",
    ev() + "\n" + json.dumps(BASE, indent=2) + "\n" + ev("z") + "\n",
    ev() + "\n" + ev("n1")[:-1] + "\n" + ev("n2") + "\n",
    ev() + "\n" + ev("n1")[:40] + "\n" + ev("n2") + "\n",
    ev() + "\n" + ev("n1") + "\n" + ev("n2")[:-1],
])
def test_lines_the_fast_path_leaves_to_the_shared_reader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(text, encoding="utf-8")
    _same_both_ways(path, monkeypatch, _tuned(1500))


def test_invalid_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes((ev() + "\n").encode() + b'{"auditID":"\xff","verb":"get"}\n'
                     + (ev("u") + "\n").encode())
    _same_both_ways(path, monkeypatch)


def test_a_stop_takes_effect_at_the_same_record(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [ev("g0")] + [json.dumps({"no": i}) for i in range(6)] + [ev("g1"), ev("g2")]
    path = tmp_path / "stop.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _same_both_ways(path, monkeypatch, LoadOptions(max_consecutive_rejects=4))
    path.write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")
    _same_both_ways(path, monkeypatch, LoadOptions(max_initial_rejects=3))


def test_the_falco_events_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fast.jsonl_head(FALCO.read_bytes()[:65536])
    assert _same_both_ways(FALCO, monkeypatch) > 0


def test_head_check() -> None:
    assert fast.jsonl_head(ev().encode() + b"\n")
    assert not fast.jsonl_head(b" " + ev().encode())
    assert not fast.jsonl_head(json.dumps({"message": ev()}).encode())
    assert not fast.jsonl_head(json.dumps({"kind": "EventList", "items": []}).encode())
    assert not fast.jsonl_head(ev().encode("utf-16"))
