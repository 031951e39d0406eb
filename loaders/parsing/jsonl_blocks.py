"""Blocks of JSON Lines for the vectorized loader paths (selectel_audit, k8s_audit).

A file is read in blocks of whole lines; a block whose lines are each one ``{…}`` object
(:func:`clean_lines`) is parsed by Arrow's JSON reader, anything else is handed to the
shared JSON reader (:func:`read_rest`) with the file's line numbers. Also the two Arrow
regular expressions both paths use to decide which time texts Arrow reads exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaders.base import Item, Reject, Source
from loaders.parsing.inputs import Line
from loaders.parsing.jsonreader import JsonReader
from loaders.parsing.lineblocks import whole_lines

# a text str.strip() leaves empty (RE2 syntax, for pc.match_substring_regex)
BLANK_TEXT = r"^[\t\n\x0b\x0c\r\x1c-\x1f\x85\p{Z}]*$"
# what cloud_fields.fast_iso gives the C parser and Arrow's cast reads the same way
ISO_TEXT = (r"^[12]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
            r"(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$")

MapValue = Callable[[Any, int, str], Iterator[Item]]

_POOL: list[ThreadPoolExecutor] = []


def reader_pool() -> ThreadPoolExecutor:
    """The one thread that parses the next block with Arrow while the current one is
    mapped (Arrow releases the GIL); shared by every file of the process, so a small file
    does not pay for starting and joining a thread."""
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(1, thread_name_prefix="auditlens-jsonl"))
    return _POOL[0]


class Blocks:
    """A file in blocks of whole lines (the last one may lack its newline), read
    ``block_bytes`` at a time (:attr:`loaders.base.Tuning.jsonl_block_bytes`), and in their
    place a text-less :class:`Line` for each line over ``max_line`` bytes
    (:attr:`loaders.base.Tuning.max_line_bytes`; :mod:`loaders.parsing.lineblocks`)."""

    def __init__(self, fh: BinaryIO, block_bytes: int, max_line: int) -> None:
        self._items = whole_lines(fh.read, max_line, block_bytes, count=False)

    def next(self) -> bytes | Line | None:
        item = next(self._items, None)
        return None if item is None else item[1]

    def rest(self) -> Iterator[bytes | Line]:
        """The blocks not read yet."""
        return (item for _, item in self._items)


Lines = tuple[np.ndarray, pa.Array]


def read_rest(src: Source, blocks: Iterable[bytes | Line], first_line: int,
              map_value: MapValue) -> Iterator[Item]:
    """The shared reader's items from ``blocks`` (whole lines from a line start of the file,
    over-long lines as text-less :class:`Line` objects), numbered from ``first_line``."""
    reader = JsonReader.of_lines(blocks, first_line, src.options.tuning.max_value_chars)
    for rec in reader:
        if src.stopped:
            return
        if rec.error is not None:
            yield Reject(rec.line, rec.error, rec.text)
        else:
            yield from map_value(rec.value, rec.line, rec.text)
    src.warnings.extend(reader.warnings)


def clean_lines(block: bytes) -> Lines | None:
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


@dataclass(frozen=True, slots=True)
class CleanBlock:
    """A block whose lines are each one ``{…}``: its bytes, the file line of its first
    line, its non-empty lines (:func:`clean_lines`) and Arrow's table of them (None when
    Arrow's strict reader refused the block)."""

    data: bytes
    line: int
    lines: Lines
    table: pa.Table | None


@dataclass(frozen=True, slots=True)
class Rest:
    """The rest of the file from a block that is not clean, for :func:`read_rest`."""

    blocks: Iterator[bytes | Line]
    line: int


def blocks_ahead(src: Source, fh: BinaryIO, read_table: Callable[[bytes], pa.Table]
                 ) -> Iterator[CleanBlock | Reject | Rest]:
    """A JSON Lines file as clean blocks, each read by ``read_table`` in the reader thread
    one block ahead (Arrow releases the GIL, so it runs beside the mapping of the block
    before), and a :class:`Reject` for each line over the line bound, where it is. After a
    block that is not clean comes one :class:`Rest`, the last item. Blocks are
    ``src.options.tuning.jsonl_block_bytes`` long."""
    pool = reader_pool()
    tuning = src.options.tuning
    blocks = Blocks(fh, tuning.jsonl_block_bytes, tuning.max_line_bytes)
    line = 1
    ahead = _ahead(pool, blocks.next(), read_table)
    while ahead is not None and not src.stopped:
        if isinstance(ahead, Line):
            yield Reject(line, ahead.warning or "unreadable line", "")
            line += 1
            ahead = _ahead(pool, blocks.next(), read_table)
            continue
        block, lines, table = ahead.result()
        following = blocks.next()
        ahead = _ahead(pool, following, read_table)
        if lines is None:
            rest = [block] if following is None else [block, following]
            yield Rest(itertools.chain(rest, blocks.rest()), line)
            return
        yield CleanBlock(block, line, lines, table)
        line += _newlines(block, lines[0])


def _ahead(pool: ThreadPoolExecutor, block: bytes | Line | None,
           read_table: Callable[[bytes], pa.Table]
           ) -> Future[tuple[bytes, Lines | None, pa.Table | None]] | Line | None:
    if block is None or isinstance(block, Line):
        return block
    return pool.submit(_prepare, block, read_table)


def _newlines(block: bytes, index: np.ndarray) -> int:
    """How many newlines a clean block has (``index``: its non-empty lines), without
    scanning it again (``bytes.count`` costs ~3 ms per 8 MB, holding the GIL)."""
    if not len(index):
        return block.count(b"\n")
    trailing = 0  # the last non-empty line's newline, and the empty lines after it
    while trailing < len(block) and block[-1 - trailing] == 10:
        trailing += 1
    return int(index[-1]) + trailing


def _prepare(block: bytes, read_table: Callable[[bytes], pa.Table]
             ) -> tuple[bytes, Lines | None, pa.Table | None]:
    lines = clean_lines(block)
    if lines is None:
        return block, None, None
    try:
        return block, lines, read_table(block)
    except (pa.ArrowException, ValueError):
        return block, lines, None


Columns = Callable[[pa.Table, pa.Array], tuple[dict[str, pa.Array], np.ndarray]]


@dataclass(frozen=True, slots=True)
class MappedBlock:
    """A clean block mapped by a loader's Arrow ``columns``: the rows as schema columns plus
    ``source_line`` and ``raw``, which rows the per-record path must map instead (``odd``),
    and each row's file line."""

    table: pa.Table
    odd: np.ndarray
    numbers: np.ndarray


def map_block(item: CleanBlock, columns: Columns) -> MappedBlock | None:
    """Map a clean block with ``columns``; None when Arrow refused it or the mapping
    cannot take it: then the whole block goes to :func:`read_rest`, as before."""
    index, raw = item.lines
    try:
        if item.table is None or item.table.num_rows != len(raw):
            raise ValueError("Arrow refused the block, or its rows are not the lines")
        cols, odd = columns(item.table.combine_chunks(), raw)
    except (pa.ArrowException, ValueError, RecursionError):
        return None
    numbers = index + item.line
    cols["source_line"] = pa.array(numbers, pa.int64())
    cols["raw"] = raw
    return MappedBlock(pa.table(cols), odd, numbers)


def in_order(src: Source, mapped: MappedBlock, map_value: MapValue
             ) -> Iterator[tuple[int, int] | Iterator[Item]]:
    """A mapped block in input order: ``(start, end)`` for each run of rows Arrow mapped,
    and for each odd row the per-record path's items. Ends early if the file was stopped."""
    start, n = 0, mapped.table.num_rows
    raw = mapped.table.column("raw")
    for i in [*np.flatnonzero(mapped.odd).tolist(), n]:
        if i > start:
            yield start, i
        if i < n:
            text = raw[i].as_py().encode("utf-8")
            yield read_rest(src, [text], int(mapped.numbers[i]), map_value)
            if src.stopped:
                return
        start = i + 1
