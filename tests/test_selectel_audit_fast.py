"""The vectorized JSON Lines path of selectel_audit gives exactly what the per-event path gives.

Each case is a JSON Lines file read both ways (the per-event path forced by turning the fast
path's head check off); events, rejects, counts and warnings must be identical, and the fast
path must really have produced tables where the input allows it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import loaders
import loaders.selectel_audit.loader as sa
from loaders.base import LoadOptions, ParsedTable, Tuning
from loaders.ingest.runner import FileRun
from loaders.parsing.inputs import input_file, read_head

FIXTURE = Path(__file__).parent / "fixtures" / "selectel-audit" / "events.txt"
BASE: dict[str, Any] = {
    "event_id": "8939075e-5a25-490a-bba3-7c6e890fc797", "event_type": "volume.snapshot.create",
    "event_time": "2026-11-01T00:11:14.305Z", "event_saved_time": "2026-11-01T00:11:14.383Z",
    "status": "success", "request_id": "842fbc4a-f6da-4d12-a13f-f5d91e33eeb9",
    "subject": {"id": "su-8a1c64f3", "type": "service_user", "name": "svc-backup",
                "auth_provider": "keystone", "is_authorized": True,
                "authorized_by": ["role:member"], "credentials_fingerprint": "sha256:d3f5"},
    "resource": {"id": "b3df99ee", "type": "volume_snapshot", "name": "db-main-01-auto",
                 "account_id": "284913", "project_id": "7f3c9a2e", "location": "ru-9",
                 "details": {}, "old_values": {}, "new_values": {"volume": "db-main-01"}},
    "source_type": "api",
    "request": {"remote_address": "10.20.0.21", "user_agent": "openstacksdk/4.1.0",
                "type": "http", "path": "/volume/v3/snapshots", "method": "POST",
                "parameters": ""},
    "schema_version": "2.0",
}


def ev(**changes: Any) -> str:
    """BASE with changes: ``subject__name="x"`` sets subject.name; None as value deletes."""
    out = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, key = path.split("__")
        obj = out
        for p in parents:
            obj = obj.setdefault(p, {})
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return json.dumps(out, ensure_ascii=False)


# rows the fast path maps itself, or hands to the per-event path one by one
ROW_CASES = [
    ev(), ev(subject__name="   "), ev(subject__name="\u3000"), ev(subject__name="\x1c"),
    ev(subject__name=None, subject__id="  "), ev(subject__name=None, subject__id=""),
    ev(subject=None), ev(resource=None), ev(request=None), ev(event_id=None),
    ev(event_id=None, event_type=None), ev(event_time="2026-11-01T01:02:03.123456789Z"),
    ev(event_time="2026-11-01T01:02:03+03:00"), ev(event_time="2026-11-01T01:02:03.5-05:30"),
    ev(event_time="2026-11-01T01:02:03z"), ev(event_time=None),
    ev(event_time=None, event_saved_time=None), ev(event_time="  "), ev(event_time="garbage"),
    ev(event_saved_time="1969-12-31T23:59:59.9995Z"), ev(event_saved_time=None),
    ev(event_time="2026-11-01T23:59:60Z"), ev(request__remote_address="10.0.0.1:443"),
    ev(request__remote_address="[2001:DB8::1]:443"), ev(request__remote_address="not-an-ip"),
    ev(subject__is_authorized=False), ev(status="NA"), ev(status="weird"), ev(status=" "),
    ev(subject__authorized_by=[]), ev(subject__authorized_by=["a", None, "b"]),
    ev(resource__details={"b": 1, "a": [1, 2.5, {"z": None}]}),
    ev(resource__old_values={"a": {"details": {"x": 1}}}), ev(details={"top": 1}),
    ev(subject__details={"s": 1}), ev(resource__new_values={"ключ": "a\"b\\c"}),
    ev(resource__type="", resource__name="", resource__id=""), ev(event_type="session.login"),
    ev(extra=[1, {"a": 2}], extra2=1.5), ev(event_id="dup"), ev(event_id="dup"), "{}",
    '{"event_id":"e1","event_type":"x.create","event_time":"2026-11-01T00:00:00Z",'
    '"resource":{"det\\u0061ils":{"q":1}},"subject":{"details":{"w":2}}}',
    ev()[:-1] + ', "deep": ' + "[" * 1200 + "]" * 1200 + "}",
]
# one line each that makes Arrow refuse its whole block
BLOCK_CASES = [
    ev(event_type=5), ev(subject__is_authorized="false"), ev(subject__subject_id="x"),
    ev(subject_id="q"), json.dumps({"data": [BASE], "pagination": {}}),
    ev(resource__details=[1, 2]), ev()[:-1] + ', "status": "fail"}',
    '{"event_id": "x", "event_time": "2', ev() + ev(), ev(event_time="2026-02-30T00:00:00Z"),
]


def _run(path: Path, use_fast: bool, monkeypatch: pytest.MonkeyPatch,
         options: LoadOptions | None = None
         ) -> tuple[pa.Table | None, list[dict[str, Any]], tuple[int, ...], list[str], int]:
    with monkeypatch.context() as m:
        if not use_fast:
            m.setattr(sa, "jsonl_head", lambda head: False)
        loader = loaders.get_loader("selectel_audit")
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
    events = pa.concat_tables(out["events"]) if out["events"] else None
    rejects = [r for t in out["rejects"] for r in t.to_pylist()]
    c = run.counts
    return events, rejects, (c.read, c.loaded, c.rejected, c.duplicate), run.warnings, tables


def _same_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch,
                    options: LoadOptions | None = None) -> int:
    got = _run(path, True, monkeypatch, options)
    want = _run(path, False, monkeypatch, options)
    assert want[4] == 0
    assert got[1:4] == want[1:4]
    assert (got[0] is None) == (want[0] is None)
    if got[0] is not None and want[0] is not None:
        for name in want[0].column_names:
            assert got[0].column(name).to_pylist() == want[0].column(name).to_pylist(), name
    return got[4]


@pytest.mark.parametrize("block", [Tuning().jsonl_block_bytes, 3000, 500])
def test_row_level_cases_match_the_per_event_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(ROW_CASES) + "\n\n" + ev(event_id="last"))
    options = LoadOptions(tuning=Tuning(jsonl_block_bytes=block))
    assert _same_both_ways(path, monkeypatch, options) > 0


@pytest.mark.parametrize("line", BLOCK_CASES)
def test_block_level_cases_match_the_per_event_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str) -> None:
    path = tmp_path / "block.jsonl"
    path.write_text(ev() + "\n" + line + "\n" + ev(event_id="after") + "\n")
    _same_both_ways(path, monkeypatch)


@pytest.mark.parametrize("text", [
    ev() + "\n" + ev(event_id="c2") + "\r\n" + ev(event_id="c3") + "\n",
    ev() + "\n\ufeff" + ev(event_id="c2") + "\n",
    ev() + "\n " + ev(event_id="s") + "\n",
    ev() + "\n" + json.dumps(BASE, indent=2) + "\n" + ev(event_id="z") + "\n",
])
def test_lines_the_fast_path_leaves_to_the_shared_reader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(text)
    _same_both_ways(path, monkeypatch, LoadOptions(tuning=Tuning(jsonl_block_bytes=500)))


def test_invalid_utf8_and_the_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes((ev() + "\n").encode() + b'{"event_id":"\xff","event_time":"2026-11-01'
                     b'T00:00:00Z"}\n' + (ev(event_id="u") + "\n").encode())
    _same_both_ways(path, monkeypatch)
    _same_both_ways(FIXTURE, monkeypatch)  # its bad line sends its one block to the reader
