"""linux_auditd fast paths give exactly the values of the plain line-by-line path.

The fast paths: blocks of record lines with headers split by one regex
(:mod:`loaders.linux_auditd.read`), the plain-body tokenizer (:mod:`loaders.linux_auditd.split`),
the record cache (:class:`~loaders.linux_auditd.fields.RecordParser`) and the memos of
:mod:`loaders.linux_auditd.map`. Each test turns them off (every line read alone, every body
split by the general regex, nothing cached) and compares whole tables, on every fixture and
on hostile variants of them.
"""

from __future__ import annotations

import gzip
import io
import random
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from loaders.base import LoadOptions
from loaders.ingest.runner import FileRun
from loaders.linux_auditd import fields as linux_auditd_fields
from loaders.linux_auditd import map as linux_auditd_map
from loaders.linux_auditd import native
from loaders.linux_auditd import read as linux_auditd_read
from loaders.linux_auditd.fields import _split_general, split_fields
from loaders.linux_auditd.loader import LOADER
from loaders.linux_auditd.split import split_simple
from loaders.parsing.inputs import Line, decode_line, input_file, iter_lines, read_head
from loaders.parsing.lineblocks import whole_lines
from tests.conftest import FIXTURES

DIR = FIXTURES / "linux-auditd"
ALL = sorted(p for p in DIR.iterdir() if p.name != "PROVENANCE.tsv")


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.split(b"\n")


def _mutate(line: bytes, rnd: random.Random) -> bytes:
    out = bytearray(line)
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(out) + 1)
        if rnd.random() < 0.5:
            out[i:i] = rnd.choice([b" ", b"=", b'"', b"'", b"(", b")", b",", b"\x1d", b"\xff",
                                   b"\r", b"  ", b"msg='", b"avc:", b'OUID="x"', b"a1"])
        elif i < len(out):
            del out[i]
    return bytes(out)


def _variants(path: Path) -> Iterator[tuple[str, bytes]]:
    lines = _lines(path)
    rnd = random.Random(path.name)
    shuffled = lines[:]
    rnd.shuffle(shuffled)
    yield "as-is", b"\n".join(lines)
    yield "shuffled", b"\n".join(shuffled)
    yield "twice", b"\n".join(lines + lines)
    yield "crlf", b"\r\n".join(lines)
    yield "bom-blank-comment", b"\xef\xbb\xbf" + b"\n\n# c\n".join(lines)
    yield "fuzz", b"\n".join(_mutate(x, rnd) if x and rnd.random() < 0.3 else x for x in lines)


def _table(path: Path, options: LoadOptions) -> tuple[pa.Table | None, pa.Table | None, tuple]:
    file = input_file(path)
    run = FileRun(LOADER, file, read_head(file.path), options, "x")
    out: dict[str, list[pa.Table]] = {"events": [], "rejects": []}
    for kind, table in run:
        out[kind].append(table)
    events = pa.concat_tables(out["events"]).drop_columns(["ingest_id"]) if out["events"] \
        else None
    rejects = pa.concat_tables(out["rejects"]).drop_columns(["ingest_id"]) if out["rejects"] \
        else None
    c = run.counts
    return events, rejects, (c.read, c.loaded, c.rejected, c.duplicate, run.status, run.error)


# Compiled modules call each other directly: patching their attributes changes nothing, and
# their classes cannot be subclassed here. tests/test_native.py compares them with the source.
python_modules_only = pytest.mark.skipif(
    native.active(), reason="patches module internals, which compiled modules do not see; "
    "`make test` runs this file again with AUDITLENS_NATIVE=0")


def _both(path: Path, options: LoadOptions, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _table(path, options)
    with monkeypatch.context() as m:
        m.setattr(linux_auditd_read, "_block", lambda first, data: None)
        m.setattr(linux_auditd_fields, "split_simple", lambda body: None)
        m.setattr("loaders.linux_auditd.loader.RecordParser", _NoCache)
        m.setattr(linux_auditd_map, "_execve",
                  lambda by_type: linux_auditd_map._argv(by_type["EXECVE"]))
        m.setattr(linux_auditd_map, "_path_list",
                  lambda by_type: linux_auditd_map._paths(by_type["PATH"]))
        slow = _table(path, options)
    assert fast[2] == slow[2]
    for got, want in zip(fast[:2], slow[:2], strict=True):
        assert (got is None and want is None) or (got is not None and want is not None
                                                  and got.equals(want))


class _NoCache(linux_auditd_fields.RecordParser):
    """The record parser without its cache of bodies."""

    def parts(self, node: str | None, kind: str, sec: str, frac: str, serial: str,
              body: str, line: int, text: str) -> linux_auditd_fields.Record:
        return linux_auditd_fields.make_record(node, kind, sec, frac, serial, body, line, text)


@python_modules_only
@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_fast_and_plain_paths_give_equal_tables(path: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name, data in _variants(path):
        variant = tmp_path / f"{name}.log"
        variant.write_bytes(data)
        for options in (LoadOptions(), LoadOptions(batch_size=3, max_initial_rejects=3)):
            _both(variant, options, monkeypatch)


@python_modules_only
def test_fast_path_on_generated_log_with_moved_records(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # many events, records moved within and beyond the assembly window, a line in a
    # block that is not a record, a line too long for one read
    rnd = random.Random(5)
    lines = []
    for n in range(3000):
        stamp = f"msg=audit(1700000000.{n % 1000:03d}:{n})".encode()
        lines += [b"type=SYSCALL " + stamp + b": arch=c000003e syscall=59 success=yes exit=0 "
                  b'items=2 ppid=1 pid=%d auid=1000 uid=0 euid=0 tty=pts0 ses=3 comm="ls" '
                  b'exe="/bin/ls" key="k"' % n,
                  b"type=EXECVE " + stamp + b': argc=2 a0="ls" a1="-l"',
                  b"type=PATH " + stamp + b': item=0 name="/bin/ls" inode=1 mode=0100755',
                  b"type=PATH " + stamp + b': item=1 name="/lib/ld.so" inode=2 nametype=NORMAL'
                  + (b'\x1dOUID="root"' if n % 3 == 0 else b""),
                  b"type=PROCTITLE " + stamp + b": proctitle=6C73002D6C",
                  b"type=EOE " + stamp + b":",
                  b"type=USER_ACCT " + stamp + b": pid=%d uid=0 auid=4294967295 ses=4294967295 "
                  b"msg='op=PAM:accounting acct=\"root\" exe=\"/usr/sbin/cron\" hostname=? "
                  b"addr=? terminal=cron res=success'" % n]
    for _ in range(500):
        i = rnd.randrange(len(lines))
        lines.insert(min(len(lines), i + rnd.choice([2, 40, 1500, 4000])), lines.pop(i))
    lines.insert(9000, b"audit: backlog limit exceeded")
    lines.insert(12000, b"type=EXECVE msg=audit(1.000:1): argc=1 a0=" + b"41" * 700_000)
    path = tmp_path / "audit.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    _both(path, LoadOptions(), monkeypatch)


def test_plain_body_tokenizer_matches_the_general_one() -> None:
    rnd = random.Random(11)
    bodies = {line.partition(b"): ")[2].decode("utf-8", "replace").partition("\x1d")[0]
              for path in ALL for line in _lines(path)}
    for body in sorted(bodies):
        for text in [" " + body, *(" " + _mutate(body.encode(), rnd).decode("utf-8", "replace")
                                   for _ in range(5))]:
            fast = split_simple(text)
            if fast is not None:
                general = _split_general(text)
                assert fast == general and list(fast) == list(general), text
            assert split_fields(text) == _split_general(text) or "avc:" in text


def test_block_reader_splits_lines_as_iter_lines() -> None:
    rnd = random.Random(3)
    for _ in range(2000):
        parts = [bytes(rnd.choice(b"ab\r\xff") for _ in range(rnd.choice([0, 1, 3, 9, 30])))
                 for _ in range(rnd.randint(0, 12))]
        data = (rnd.choice([b"", b"\xef\xbb\xbf"]) + b"\n".join(parts)
                + rnd.choice([b"", b"\n"]))
        max_line = rnd.choice([4, 8, 16])
        block = rnd.choice([1, 2, 5, 64])
        want = list(iter_lines(io.BytesIO(data), data[:100], max_line))
        got: list[Line] = []
        for first, piece in whole_lines(io.BytesIO(data).read, max_line, block):
            if isinstance(piece, Line):
                got.append(piece)
                continue
            if first == 1:
                piece = piece.removeprefix(b"\xef\xbb\xbf")
            chunks = piece.split(b"\n")
            if piece.endswith(b"\n"):
                chunks.pop()
            got += [decode_line(first + i, c) for i, c in enumerate(chunks)]
        assert got == want, (data, max_line)
