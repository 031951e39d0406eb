"""Vectorized path of ``selectel_audit`` for JSON Lines (the export script's ``events.txt``).

The per-event path costs ~60 µs an event in Python (JSON decoding, flattening, ~35 columns
of small conversions). For JSON Lines in the current nested layout, blocks of lines are parsed
by Arrow's JSON reader against an explicit schema and mapped with Arrow compute to the same
column values, yielded as one :class:`~loaders.base.ParsedTable` per run of such events.

Exactness comes from refusing, never guessing:

- Arrow's reader is strict about the declared types: a number where text is declared, a
  string where a bool is, a duplicate key, invalid UTF-8, NaN … fail the whole block, which
  is then read by the shared JSON reader exactly as before. The schema 1.0 (prefixed) keys,
  ``data`` (an API page) and the ``changes_*`` aliases are declared with the null type, so
  any value in them fails the block too.
- A row whose times are not plain ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)``, that has no
  time or no ``event_id``/``event_type``, that may nest deeper than Python's decoder allows,
  or whose change sets Python's decoder refuses, is mapped by the per-event path (same line,
  same text), in input order.
- The change sets (kept as sorted JSON text) are the one part Arrow cannot give: rows that
  have any are decoded by Python's ``json`` as well.
- A block that is not one JSON object per line (pretty-printed values, leading spaces, CRLF,
  invalid UTF-8) hands the rest of the file to the shared reader.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from loaders.base import Item, ParsedTable, Reject, Source
from loaders.inputs import detect_encoding
from loaders.jsonreader import JsonReader
from loaders.selectel_audit_columns import CHANGE_SETS, columns
from loaders.selectel_audit_fields import _BESIDE, _OBJECT_KEYS

BLOCK_BYTES = 8 << 20
_ARROW_BLOCK = 1 << 20  # Arrow's own chunk: lines longer than this fail the block (fallback)

_TYPES: dict[str, pa.DataType] = {"is_authorized": pa.bool_(),
                                  "authorized_by": pa.list_(pa.string())}


def _object_type(name: str, keys: tuple[str, ...]) -> pa.DataType:
    fields = [pa.field(k, pa.struct([]) if k in CHANGE_SETS else _TYPES.get(k, pa.string()))
              for k in keys]
    # the schema 1.0 names inside the object, and the changes_* aliases: null only
    fields += [pa.field(f"{name}_{k}", pa.null()) for k in keys]
    if name == "resource":
        fields += [pa.field(f"{p}changes_{k}", pa.null()) for k in CHANGE_SETS
                   for p in ("", "resource_")]
    return pa.struct(fields)


_TOP = ("event_id", "event_type", "event_time", "event_saved_time", "status", "error_code",
        "request_id", "source_type", "schema_version")
SCHEMA = pa.schema(
    [pa.field(k, pa.string()) for k in _TOP]
    + [pa.field(obj, _object_type(obj, keys)) for obj, keys in _OBJECT_KEYS.items()]
    + [pa.field(k, pa.null()) for k in sorted(_BESIDE) if k not in _TOP] + [
        pa.field("data", pa.null())]
)
_PARSE = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
_READ = pj.ReadOptions(use_threads=True, block_size=_ARROW_BLOCK)

MapValue = Callable[[Any, int, str], Iterator[Item]]


def jsonl_head(head: bytes) -> bool:
    """Whether a file looks like plain JSON Lines of single events (worth the fast path)."""
    if detect_encoding(head) != "utf-8" or not head.startswith(b"{"):
        return False
    first = head.split(b"\n", 1)[0]
    try:
        value = json.loads(first)
    except ValueError:
        return False
    return isinstance(value, dict) and "event_id" in value and "data" not in value


def parse_jsonl(src: Source, map_value: MapValue) -> Iterator[Item]:
    """Items of a JSON Lines file: fast tables where possible, ``map_value`` elsewhere.

    Args:
        src: the input.
        map_value: the per-event path: ``(value, line, text) -> items``.

    Returns:
        Items in input order, the same as reading the file with the shared JSON reader and
        mapping each value with ``map_value``.
    """
    # Arrow parses the next block in a worker thread (it releases the GIL) while this one
    # is mapped and written.
    with src.binary() as fh, ThreadPoolExecutor(1) as pool:
        blocks = _Blocks(fh)
        line = 1
        block = blocks.next()
        ahead = pool.submit(_prepare, block) if block else None
        while ahead is not None and not src.stopped:
            block, lines, table = ahead.result()
            following = blocks.next()
            ahead = pool.submit(_prepare, following) if following else None
            if lines is None:
                rest = _Chain(block + (following or b"") + blocks.pending, fh)
                yield from _read(src, cast(BinaryIO, rest), line, map_value)
                return
            yield from _block(src, block, line, lines, table, map_value)
            line += block.count(b"\n")


class _Blocks:
    """A file in blocks of whole lines (the last one may lack its newline)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.pending = b""

    def next(self) -> bytes | None:
        while True:
            data = self.fh.read(BLOCK_BYTES)
            if not data:
                out, self.pending = self.pending, b""
                return out or None
            buf = self.pending + data
            cut = buf.rfind(b"\n") + 1
            self.pending = buf[cut:]
            if cut:
                return buf[:cut]


Lines = tuple[np.ndarray, pa.Array]


def _prepare(block: bytes) -> tuple[bytes, Lines | None, pa.Table | None]:
    """A block, its clean lines (None: not clean), and Arrow's table (None: refused)."""
    lines = _clean_lines(block)
    if lines is None:
        return block, None, None
    try:
        table = pj.read_json(io.BytesIO(block), read_options=_READ, parse_options=_PARSE)
    except (pa.ArrowException, ValueError):
        return block, lines, None
    return block, lines, table


class _Chain:
    """Bytes already read, then the rest of the file."""

    def __init__(self, first: bytes, fh: BinaryIO) -> None:
        self._first, self._fh = first, fh

    def read(self, n: int = -1) -> bytes:
        if self._first:
            out, self._first = self._first[:n], self._first[n:]
            return out
        return self._fh.read(n)


def _read(src: Source, fh: BinaryIO, first_line: int, map_value: MapValue) -> Iterator[Item]:
    """The shared reader's items from ``fh``, which starts at a line start of the file."""
    # A leading newline keeps a U+FEFF at the start of fh from being taken for a BOM (it
    # is one only at the start of the file). The reader counts lines from the one before
    # first_line, so its records and its error messages carry the file's line numbers.
    reader = JsonReader(cast(BinaryIO, _Chain(b"\n", fh)), b"")
    reader._line = first_line - 1
    for rec in reader:
        if src.stopped:
            return
        if rec.error is not None:
            yield Reject(rec.line, rec.error, rec.text)
        else:
            yield from map_value(rec.value, rec.line, rec.text)
    src.warnings.extend(reader.warnings)


def _clean_lines(block: bytes) -> Lines | None:
    """The block's non-empty lines (0-based line indexes, and the lines as an Arrow string
    array, built on the block's bytes without a Python string per line) when each line is
    empty or one ``{…}`` with nothing around it; None otherwise."""
    buf = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(buf == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(block))
    # the lines without their newlines, back to back: line i loses the i newlines before it
    data = block.replace(b"\n", b"")
    offsets = np.concatenate([[0], ends - np.arange(len(ends))]).astype(np.int32)
    lines = pa.StringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        lines.validate(full=True)  # UTF-8
    except pa.ArrowInvalid:
        return None
    keep = pc.greater(pc.binary_length(lines), 0)
    raw = lines if pc.all(keep).as_py() else pc.filter(lines, keep)
    if len(raw) and not pc.all(pc.and_(pc.starts_with(raw, "{"),
                                       pc.ends_with(raw, "}"))).as_py():
        return None
    # every line ends with "}", so no line has "\r" or trailing blanks
    return np.flatnonzero(keep.to_numpy(zero_copy_only=False)), raw


def _block(src: Source, block: bytes, first_line: int, lines: Lines, table: pa.Table | None,
           map_value: MapValue) -> Iterator[Item]:
    """Items of one block of clean lines (see :func:`_clean_lines`), in input order."""
    index, raw = lines
    if not len(raw):
        return
    numbers = index + first_line
    try:
        if table is None or table.num_rows != len(raw):
            raise ValueError("Arrow refused the block, or its rows are not the lines")
        cols, odd = columns(table.combine_chunks(), raw)
    except (pa.ArrowException, ValueError, RecursionError):  # not for Arrow: as before
        yield from _read(src, io.BytesIO(block), first_line, map_value)
        return
    cols["source_line"] = pa.array(numbers, pa.int64())
    cols["raw"] = raw
    fast = pa.table(cols)
    start = 0
    for i in [*np.flatnonzero(odd).tolist(), len(raw)]:
        if i > start:
            yield ParsedTable(fast.slice(start, i - start))
        if i < len(raw):
            text = raw[i].as_py().encode("utf-8")
            yield from _read(src, io.BytesIO(text), int(numbers[i]), map_value)
        start = i + 1
