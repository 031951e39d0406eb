"""No value fails a file: a value a loader cannot represent rejects its record (or is nulled
with a ``parse_warning``), and every other record loads.

Every loader's smallest real fixture (and every text fixture of ``windows_events``) gets ONE
record damaged — its middle timestamp set to year 0 or year 99999, a number set to ``1e400``,
a field grown to 10 MB — and must load all its other records. Then the specific cases: out
of range container log times on both container paths, an oversized CSV field, over-long lines
on the JSON Lines fast paths (identical to the per-record path), and two auditd values.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

import loaders
import loaders.k8s_audit.fast as k8s_fast
import loaders.selectel_audit.loader as selectel_audit_loader
from loaders.base import LoadOptions, ParsedTable, Tuning
from loaders.ingest.runner import FileRun
from loaders.parsing.inputs import input_file, iter_lines, read_head
from loaders.parsing.jsonreader import JsonReader
from loaders.parsing.lineblocks import whole_lines
from tests.conftest import provenance_rows
from tests.test_hostile import NAMES, fixture_of
from tests.test_selectel_audit_fast import BASE as SELECTEL_BASE

ROOT = Path(__file__).resolve().parent.parent
BIG = 10 * 1024 * 1024

# one fixture per loader, and every windows_events fixture that is text
CASES = sorted({*((n, fixture_of(n)) for n in NAMES),
                *((r["loader"], Path(r["path"])) for r in provenance_rows()
                  if r["loader"] == "windows_events" and not r["path"].endswith(".evtx"))})

_ISO = re.compile(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")
_AUDIT_TIME = re.compile(rb"(?<=audit\()\d+(?=\.\d+:)")
_SYSLOG_TIME = re.compile(rb"^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}", re.M)
_NUMBERS = [re.compile(p) for p in (rb'(?<=": )\d+(?=[,}\s])', rb'(?<=":)\d+(?=[,}\s])',
                                    rb'(?<==")\d+(?=")', rb"(?<=>)\d+(?=<)",
                                    rb"(?<==)\d+(?=[ \n])", rb"(?<=\[)\d+(?=\])")]
# where a field's value starts, by preference: a JSON string, a quoted key=value, XML text
_FIELD_STARTS = [re.compile(p) for p in (rb'": ?"', rb'="', rb">(?=[^<\s])")]


def _middle(matches: list[re.Match[bytes]]) -> re.Match[bytes] | None:
    return matches[len(matches) // 2] if matches else None


def _set_time(year: int) -> Callable[[bytes], bytes | None]:
    """The middle timestamp of the file set to ``year`` (ISO text, or the epoch seconds of
    an audit stamp, or an ISO text in place of a syslog time)."""
    iso = f"{year:04d}-01-01T00:00:00".encode()

    def damage(data: bytes) -> bytes | None:
        for pattern, new in ((_ISO, iso), (_SYSLOG_TIME, iso)):
            m = _middle(list(pattern.finditer(data)))
            if m:
                return data[:m.start()] + new + data[m.end():]
        m = _middle(list(_AUDIT_TIME.finditer(data)))
        if m:
            seconds = (year - 1970) * 31_556_952  # years of 365.2425 days
            return data[:m.start()] + str(seconds).encode() + data[m.end():]
        return None
    return damage


_QUOTED_NUMBER = re.compile(rb'(?<=": )"\d+"|(?<=":)"\d+"')


def _huge_number(data: bytes) -> bytes | None:
    """The middle number of the file set to 1e400 (a float overflow in every parser); in
    JSON without numbers, the middle number written as a string becomes 1e400."""
    for pattern in [*_NUMBERS, _QUOTED_NUMBER]:
        m = _middle(list(pattern.finditer(data)))
        if m:
            return data[:m.start()] + b"1e400" + data[m.end():]
    return None


def _huge_field(data: bytes) -> bytes | None:
    """10 MB inserted at the start of a value on the file's middle record line."""
    lines = data.split(b"\n")
    candidates = [i for i, line in enumerate(lines) if _ISO.search(line) or b"audit(" in line
                  or _SYSLOG_TIME.match(line)] or [i for i, line in enumerate(lines) if line]
    i = candidates[len(candidates) // 2]
    line = lines[i]
    for pattern in _FIELD_STARTS:
        m = pattern.search(line, len(line) // 3) or pattern.search(line)
        if m:
            lines[i] = line[:m.end()] + b"A" * BIG + line[m.end():]
            break
    else:
        lines[i] = line.rstrip(b"\r") + b" " + b"A" * BIG
    return b"\n".join(lines)


DAMAGE: dict[str, Callable[[bytes], bytes | None]] = {
    "year-0": _set_time(0),
    "year-99999": _set_time(99999),
    "1e400": _huge_number,
    "10mb-field": _huge_field,
}


def _damaged(data: bytes, how: str) -> bytes | None:
    """The damaged file; UTF-16 text is damaged as text and written back as UTF-16."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        out = DAMAGE[how](data.decode("utf-16").encode("utf-8"))
        return None if out is None else out.decode("utf-8").encode("utf-16")
    return DAMAGE[how](data)


def _checked(name: str, path: Path, options: LoadOptions | None = None) -> loaders.LoadResult:
    result = loaders.load(path, format=name, options=options)
    c = result.counts
    assert result.status != "failed", result.error
    assert "loader error" not in (result.error or ""), result.error
    assert c.read == c.loaded + c.rejected + c.duplicate, c
    assert len(result.events) == c.loaded and len(result.rejects) == c.rejected
    return result


@pytest.mark.parametrize("how", sorted(DAMAGE))
@pytest.mark.parametrize(("name", "fixture"), CASES, ids=[f"{n}-{p.name}" for n, p in CASES])
def test_one_unrepresentable_value_costs_at_most_its_record(
        name: str, fixture: Path, how: str, tmp_path: Path) -> None:
    data = fixture.read_bytes()
    damaged = _damaged(data, how)
    if damaged is None:
        pytest.skip(f"{fixture.name} has no value {how} applies to")
    assert damaged != data
    path = tmp_path / fixture.name
    path.write_bytes(damaged)
    original = loaders.load(fixture, format=name).counts
    got = _checked(name, path).counts
    assert got.loaded >= original.loaded - 1, (got, original)
    assert got.read <= original.read + 1, (got, original)


# --- container logs: one time out of range among good lines, on both paths --------------

GOOD_CRI = "2024-05-01T10:00:{:02d}.123456789Z stdout F line {}\n"
GOOD_DOCKER = '{{"log":"line {1}\\n","stream":"stdout","time":"2024-05-01T10:00:{0:02d}.5Z"}}\n'
BAD_TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00Z",
             "2024-13-01T00:00:00Z", "99999-01-01T00:00:00Z"]


def _container_lines(good: str, bad: str) -> str:
    lines = [good.format(i, i) for i in range(40)]
    if good is GOOD_CRI:
        lines[20] = f"{bad} stdout F bad\n"
    else:
        lines[20] = '{"log":"bad\\n","stream":"stdout","time":"' + bad + '"}\n'
    return "".join(lines)


def _k8s_container_run(path: Path, tuning: Tuning) -> tuple[loaders.LoadResult, int]:
    loader = loaders.get_loader("k8s_container")
    run = FileRun(loader, input_file(path), read_head(path), LoadOptions(tuning=tuning), "t")
    tables = 0
    for kind, _table in run:
        tables += kind == "events"
    result = loaders.load(path, format="k8s_container", options=LoadOptions(tuning=tuning))
    return result, tables


@pytest.mark.parametrize("bad", BAD_TIMES)
@pytest.mark.parametrize("form", ["cri", "docker"])
def test_container_time_out_of_range_rejects_one_line_on_both_paths(
        tmp_path: Path, form: str, bad: str) -> None:
    path = tmp_path / "0.log"
    path.write_text(_container_lines(GOOD_CRI if form == "cri" else GOOD_DOCKER, bad))
    seen = []
    # 1 KiB blocks: the vectorized path, many blocks; 16-byte reads of a 1-byte bound are
    # impossible, so the per-line path is the UTF-16 file below
    for tuning in (Tuning(), Tuning(container_block_bytes=1024),
                   Tuning(container_block_bytes=64)):
        result = _checked("k8s_container", path, LoadOptions(tuning=tuning))
        assert (result.counts.loaded, result.counts.rejected) == (39, 1)
        reject = result.rejects.iloc[0]
        assert reject["source_line"] == 21
        if form == "cri" and bad.startswith("99999"):  # not a CRI time at all
            assert reject["reason"].startswith("not a CRI log line")
        else:
            assert reject["reason"].startswith("log entry without a readable time: ")
            assert bad[:19] in reject["reason"]
        seen.append(result.events.drop(columns=["ingest_id"]))
    pd.testing.assert_frame_equal(seen[0], seen[1])
    pd.testing.assert_frame_equal(seen[0], seen[2])
    # the line-by-line reader (UTF-16 goes through it alone) gives the same
    utf16 = tmp_path / "1.log"
    utf16.write_bytes(path.read_text().encode("utf-16"))
    result = _checked("k8s_container", utf16)
    assert (result.counts.loaded, result.counts.rejected) == (39, 1)
    assert result.rejects.iloc[0]["source_line"] == 21


def test_container_fast_path_really_took_the_blocks(tmp_path: Path) -> None:
    """The vectorized path yields tables for the good lines around the bad one."""
    path = tmp_path / "0.log"
    path.write_text(_container_lines(GOOD_CRI, BAD_TIMES[0]))
    loader = loaders.get_loader("k8s_container")
    src_items = []
    run = FileRun(loader, input_file(path), read_head(path),
                  LoadOptions(tuning=Tuning(container_block_bytes=1024)), "t")
    parse = loader.parse

    def spy(src: Any) -> Any:
        for item in parse(src):
            src_items.append(type(item).__name__)
            yield item

    loader.parse = spy  # type: ignore[method-assign]
    try:
        list(run)
    finally:
        del loader.parse
    assert "ParsedTable" in src_items and src_items.count("Reject") == 1
    assert run.counts.loaded == 39 and run.counts.rejected == 1


# --- authorization-log CSV: one oversized field ------------------------------------------

def _auth_csv(field: str) -> str:
    rows = [f"2025-10-14 08:{i:02d}:00,user{i}@example.com,203.0.113.{i},Firefox,Success\n"
            for i in range(10)]
    rows[4] = f"2025-10-14 08:04:00,user4@example.com,203.0.113.4,{field},Success\n"
    return "Date,User,IP address,Browser,Result\n" + "".join(rows)


@pytest.mark.parametrize("quoted", [False, True])
def test_auth_csv_field_of_200_kib_rejects_its_row_only(tmp_path: Path, quoted: bool) -> None:
    big = "B" * (200 * 1024)
    path = tmp_path / "auth.csv"
    path.write_text(_auth_csv(f'"{big}"' if quoted else big))
    result = _checked("selectel_auth", path)
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (10, 9, 1)
    reject = result.rejects.iloc[0]
    assert reject["source_line"] == 6
    assert reject["reason"] == "unreadable CSV row: a field is longer than 131072 characters"
    assert sorted(result.events["user"]) == sorted(f"user{i}@example.com" for i in range(10)
                                                   if i != 4)
    # a field under the limit loads as it is
    path.write_text(_auth_csv("C" * 100_000))
    result = _checked("selectel_auth", path)
    assert (result.counts.loaded, result.counts.rejected) == (10, 0)
    assert result.events["user_agent"].str.len().max() == 100_000


def test_auth_csv_line_over_the_bound_is_rejected_by_its_number(tmp_path: Path) -> None:
    path = tmp_path / "auth.csv"
    path.write_text(_auth_csv("D" * 5000))
    result = _checked("selectel_auth", path,
                      LoadOptions(tuning=Tuning(max_line_bytes=1024)))
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (10, 9, 1)
    reject = result.rejects.iloc[0]
    assert reject["source_line"] == 6
    size = len("2025-10-14 08:04:00,user4@example.com,203.0.113.4,,Success\n") + 5000
    assert reject["reason"] == f"line too long ({size} characters > 1024)"


# --- JSON Lines fast paths: over-long lines, identical both ways -------------------------

def _k8s_event(i: int) -> dict[str, Any]:
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": f"id-{i}", "stage": "ResponseComplete", "verb": "get",
            "requestURI": f"/api/v1/namespaces/default/pods/p{i}",
            "user": {"username": "alice"}, "sourceIPs": ["10.0.0.1"],
            "objectRef": {"resource": "pods", "namespace": "default", "name": f"p{i}"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": f"2026-11-01T10:00:{i % 60:02d}.000000Z",
            "stageTimestamp": f"2026-11-01T10:00:{i % 60:02d}.100000Z"}


def _selectel_event(i: int) -> dict[str, Any]:
    out = copy.deepcopy(SELECTEL_BASE)
    out["event_id"] = f"e-{i}"
    out["event_time"] = f"2026-11-01T10:00:{i % 60:02d}.000Z"
    out["event_saved_time"] = f"2026-11-01T10:00:{i % 60:02d}.500Z"
    return out


MAKERS = {"k8s_audit": _k8s_event, "selectel_audit": _selectel_event}
MAX = 1024


def _long_lines_file(path: Path, name: str, long_at: dict[int, bytes], count: int = 30,
                     last_newline: bool = True) -> None:
    """``count`` events, one a line; the lines ``long_at`` (1-based) replaced."""
    lines = [json.dumps(MAKERS[name](i)).encode() for i in range(count)]
    for number, line in long_at.items():
        lines[number - 1] = line
    path.write_bytes(b"\n".join(lines) + (b"\n" if last_newline else b""))


def _valid_long(name: str, i: int, size: int) -> bytes:
    value = MAKERS[name](i)
    key = "userAgent" if name == "k8s_audit" else "error_code"
    value[key] = "x" * size
    return json.dumps(value).encode()


def _both_ways(name: str, path: Path, monkeypatch: pytest.MonkeyPatch, tuning: Tuning
               ) -> tuple[list[Any], list[Any]]:
    """(fast, per-record) results: events (without ingest ids), rejects, counts, warnings,
    status; and whether the fast path really yielded tables."""
    out = []
    module = k8s_fast if name == "k8s_audit" else selectel_audit_loader
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(module, "jsonl_head", lambda head: False)
            loader = loaders.get_loader(name)
            parse = loader.parse
            tables = 0

            def counting(src: Any, parse: Any = parse) -> Any:
                nonlocal tables
                for item in parse(src):
                    tables += isinstance(item, ParsedTable)
                    yield item

            m.setattr(loader, "parse", counting)
            run = FileRun(loader, input_file(path), read_head(path),
                          LoadOptions(tuning=tuning), "t")
            got: dict[str, list[pa.Table]] = {"events": [], "rejects": []}
            for kind, table in run:
                got[kind].append(table)
        events = pa.concat_tables(got["events"]).drop_columns(["ingest_id"]).to_pylist() \
            if got["events"] else []
        rejects = [r for t in got["rejects"] for r in t.to_pylist()]
        c = run.counts
        out.append([events, rejects, (c.read, c.loaded, c.rejected, c.duplicate),
                    run.warnings, run.status, tables])
    fast_result, slow_result = out
    assert slow_result[5] == 0
    assert fast_result[:5] == slow_result[:5]
    return fast_result, slow_result


@pytest.mark.parametrize("block", [256, 4096, 8 << 20])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_jsonl_over_long_lines_are_rejected_alike_both_ways(
        name: str, block: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    long_at = {
        1: _valid_long(name, 0, 3000),      # the first line: the fast path still starts
        7: _valid_long(name, 6, MAX),       # a valid event just over the bound
        12: b"{" + b"z" * 5000 + b"}",      # garbage that looks like one object
        13: _valid_long(name, 12, MAX - 100 - len(_valid_long(name, 12, 0))),  # loads
        20: b"q" * 3000,                    # garbage
    }
    _long_lines_file(path, name, long_at)
    tuning = Tuning(jsonl_block_bytes=block, max_line_bytes=MAX)
    fast, _ = _both_ways(name, path, monkeypatch, tuning)
    _events, rejects, counts, _warnings, status, tables = fast
    assert status == "ok" and tables > 0
    assert counts == (30, 26, 4, 0)
    sizes = {n: len(line) + 1 for n, line in long_at.items()}
    assert [(r["source_line"], r["reason"]) for r in rejects] == [
        (n, f"line too long ({sizes[n]} bytes > {MAX})") for n in (1, 7, 12, 20)]
    assert all(r["excerpt"] == "" for r in rejects)
    assert sorted(e["source_line"] for e in fast[0]) == [
        n for n in range(1, 31) if n not in (1, 7, 12, 20)]


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_jsonl_over_long_last_line_without_newline_and_a_line_at_the_bound(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    at_bound = _valid_long(name, 3, 0)
    at_bound = _valid_long(name, 3, MAX - len(at_bound))  # exactly MAX bytes: loads
    assert len(at_bound) == MAX
    last = _valid_long(name, 9, 2 * MAX)
    _long_lines_file(path, name, {4: at_bound, 10: last}, count=10, last_newline=False)
    fast, _ = _both_ways(name, path, monkeypatch,
                         Tuning(jsonl_block_bytes=300, max_line_bytes=MAX))
    assert fast[2] == (10, 9, 1, 0)
    assert [(r["source_line"], r["reason"]) for r in fast[1]] == [
        (10, f"line too long ({len(last)} bytes > {MAX})")]


def test_json_reader_over_long_line_inside_a_pretty_document(tmp_path: Path) -> None:
    """A line over the bound cuts the value it is in (rejected as incomplete) and is a
    record of its own; the values after it load."""
    import io
    docs = [json.dumps({"a": i, "b": "x"}, indent=2) for i in range(3)]
    lines = docs[1].split("\n")
    lines[2] = '  "b": "' + "y" * 2000 + '"'
    docs[1] = "\n".join(lines)
    data = ("\n".join(docs) + "\n").encode()
    records = list(JsonReader(io.BytesIO(data), data[:100], max_line=MAX))
    assert [(r.line, r.value, r.error) for r in records] == [
        (1, {"a": 0, "b": "x"}, None),
        (5, None, "invalid JSON: incomplete value (the next record starts at line 7)"),
        (7, None, f"line too long ({len(lines[2]) + 1} bytes > {MAX})"),
        (8, None, "invalid JSON: Expecting value (at line 8)"),
        (9, {"a": 2, "b": "x"}, None)]


def test_json_reader_utf16_over_long_line_is_counted_in_characters() -> None:
    import io
    text = '{"a": 1}\n{"a": "' + "\u00e9" * 2000 + '"}\n{"a": 3}\n'
    data = text.encode("utf-16")
    records = list(JsonReader(io.BytesIO(data), data[:100], max_line=MAX))
    assert [(r.line, r.value, r.error) for r in records] == [
        (1, {"a": 1}, None), (2, None, f"line too long (2010 characters > {MAX})"),
        (3, {"a": 3}, None)]


def test_block_lines_match_iter_lines_for_random_input() -> None:
    """:func:`whole_lines` (bytes and text) splits and bounds lines as ``iter_lines``."""
    import io
    import random
    rnd = random.Random(11)
    for _ in range(1500):
        parts = [bytes(rnd.choice(b"ab\r") for _ in range(rnd.choice([0, 1, 3, 9, 30])))
                 for _ in range(rnd.randint(0, 12))]
        data = b"\n".join(parts) + rnd.choice([b"", b"\n"])
        max_line, block = rnd.choice([4, 8, 16]), rnd.choice([1, 2, 5, 64])
        want = [(line.number, line.text, line.warning)
                for line in iter_lines(io.BytesIO(data), b"", max_line)]
        for stream in (io.BytesIO(data), io.StringIO(data.decode(), newline="")):
            got = []
            for first, piece in whole_lines(stream.read, max_line, block):
                if not isinstance(piece, (bytes, str)):
                    got.append((piece.number, None, piece.warning.replace(
                        "characters", "bytes") if piece.warning else None))
                    continue
                text = piece if isinstance(piece, str) else piece.decode()
                chunks = text.split("\n")
                if text.endswith("\n"):
                    chunks.pop()
                got += [(first + i, c.removesuffix("\r"), None) for i, c in enumerate(chunks)]
            assert got == want, (data, max_line, block)


@pytest.mark.parametrize("name", ["linux_auditd", "k8s_container", "linux_auth"])
def test_line_readers_honour_the_bound(name: str, tmp_path: Path) -> None:
    """The auditd and container block readers and Source.lines take Tuning.max_line_bytes."""
    good = {"linux_auditd": "type=USER_LOGIN msg=audit(1700000000.{:03d}:{}): pid=1 uid=0 "
                            "auid=0 ses=1 msg='op=login acct=\"root\" res=success'\n",
            "k8s_container": "2024-05-01T10:00:00.{:03d}Z stdout F line {}\n",
            "linux_auth": "Mar 11 19:26:{:02d} host sshd[{}]: Accepted password for root "
                          "from 10.0.0.1 port 22 ssh2\n"}[name]
    lines = [good.format(i, i + 1) for i in range(20)]
    lines[9] = lines[9].rstrip("\n") + " " + "L" * 3000 + "\n"
    path = tmp_path / "0.log"
    path.write_text("".join(lines))
    for tuning in (Tuning(max_line_bytes=MAX), Tuning(max_line_bytes=MAX, auditd_block_bytes=100,
                                                       container_block_bytes=100)):
        result = _checked(name, path, LoadOptions(tuning=tuning))
        assert (result.counts.loaded, result.counts.rejected) == (19, 1)
        reject = result.rejects.iloc[0]
        assert reject["source_line"] == 10
        assert reject["reason"] == f"line too long ({len(lines[9])} bytes > {MAX})"


# --- auditd -------------------------------------------------------------------------------

AUDIT_LOG = """\
type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e syscall=59 success=yes exit=0 pid=10 uid=0 comm="sh" exe="/bin/sh"
type=PROCTITLE msg=audit(1700000000.000:1): proctitle=2F62696E2F7368
type=SYSCALL msg=audit(1700000001.000:2): arch=c000003e syscall=59 success=yes exit=0 pid=11 uid=0 comm="cat" exe="/bin/cat"
type=PROCTITLE msg=audit(1700000001.000:2): proctitle=636174002F6574632F706173737764
type= msg=audit(1700000002.000:3): arch=c000003e syscall=59
type=SYSCALL msg=audit(1700000003.000:4): arch=c000003e syscall=59 success=yes exit=0 pid=12 uid=0 comm="id" exe="/usr/bin/id"
type=PROCTITLE msg=audit(1700000003.000:4): proctitle="id"
"""  # noqa: E501


@pytest.mark.parametrize("tuning", [Tuning(), Tuning(auditd_block_bytes=16),
                                    Tuning(auditd_offload_bytes=0, auditd_chunk_events=1)])
def test_auditd_proctitle_without_nul_and_empty_type(tmp_path: Path, tuning: Tuning) -> None:
    path = tmp_path / "audit.log"
    path.write_text(AUDIT_LOG)
    result = _checked("linux_auditd", path, LoadOptions(helpers=1, tuning=tuning))
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (4, 3, 1)
    events = result.events.sort_values("source_line")
    assert list(events["audit_proctitle"]) == ["/bin/sh", "cat /etc/passwd", "id"]
    assert list(events["process_command_line"]) == ["/bin/sh", "cat /etc/passwd", "id"]
    reject = result.rejects.iloc[0]
    assert (reject["source_line"], reject["reason"]) == (5, "record with an empty type=")


def test_auditd_empty_type_without_a_record_before_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text("type= msg=audit(1700000002.000:3): arch=c000003e\n"
                    + "\n".join(AUDIT_LOG.split("\n")[:4]) + "\n")
    result = _checked("linux_auditd", path)
    assert list(result.rejects["reason"]) == ["record with an empty type="]


# --- a real 300 MiB line, in a fresh process ---------------------------------------------

# the peak of this process's own memory: VmHWM belongs to the address space exec made
# (ru_maxrss may keep the peak of the pytest process the child was forked from)
_MEASURE = """\
import re, sys, time, loaders
start = time.monotonic()
r = loaders.load(sys.argv[1], format=sys.argv[2])
c = r.counts
assert c.read == c.loaded + c.rejected + c.duplicate
hwm = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(hwm // 1024, time.monotonic() - start,
      c.read, c.loaded, c.rejected, "|".join(r.rejects["reason"]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["valid", "garbage"])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_300mib_line_on_the_jsonl_fast_paths_in_bounded_memory(
        name: str, kind: str, tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    size = 300 << 20
    with path.open("wb") as fh:
        fh.write(json.dumps(MAKERS[name](0)).encode() + b"\n")
        if kind == "valid":
            value = MAKERS[name](1)
            value["userAgent" if name == "k8s_audit" else "error_code"] = "@BODY@"
            head, tail = json.dumps(value).encode().split(b'"@BODY@"', 1)
            fh.write(head + b'"')
            body = size - len(head) - len(tail) - 2
        else:
            tail, body = b"", size
        chunk = b"A" * (1 << 20)
        for _ in range(body // len(chunk)):
            fh.write(chunk)
        fh.write(b"A" * (body % len(chunk)))
        fh.write((b'"' + tail if kind == "valid" else b"") + b"\n")
        fh.write(json.dumps(MAKERS[name](2)).encode() + b"\n")
    assert path.stat().st_size > size
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(path), name], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    peak_mb, seconds, read, loaded, rejected, reasons = out.stdout.split(maxsplit=5)
    print(f"{name} {kind}: peak RSS {peak_mb} MB, {float(seconds):.1f} s "
          f"(wall {time.monotonic() - started:.1f} s)")
    assert (int(read), int(loaded), int(rejected)) == (3, 2, 1)
    assert reasons.strip() == f"line too long ({size + 1} bytes > {64 << 20})"
    assert int(peak_mb) < 600, f"{name}: peak RSS {peak_mb} MB on a 300 MiB line"
