"""Vectorized path of ``k8s_audit`` for JSON Lines of bare ``audit.k8s.io`` Events.

The per-event path costs ~45 µs an event in Python (JSON decoding, ~30 columns of small
conversions, one row dict). For a UTF-8 file whose first line is a bare Event, blocks of
lines are parsed by Arrow's JSON reader against :data:`loaders.k8s_audit.columns.SCHEMA` and
mapped with Arrow compute to the same column values (:mod:`loaders.k8s_audit.columns`).

Exactness comes from refusing, never guessing (the reading machinery is that of
:mod:`loaders.selectel_audit.fast`):

- Arrow's reader is strict about the declared types: a number where text is declared, a
  request body that is not an object, a duplicate key, a lone surrogate, a batch key
  (``items``, ``records``, ``events``) … fail the whole block, which is then read by the
  shared JSON reader and mapped per event exactly as before.
- A row that is not plainly a bare Event, whose first timestamp is not plain ISO 8601, that
  may nest deeper than Python's decoder allows, or that has a value the per-event path would
  turn into ``"None"`` is mapped by the per-event path (same line, same text), in order.
- A block that is not one JSON object per line hands the rest of the file to the shared
  reader.

Every row, fast or not, passes through the same :class:`~loaders.k8s_audit.details.StageMerger`
in input order (fast rows as :class:`~loaders.k8s_audit.details.TableRow`), so stage merging,
duplicates and their messages are those of the per-event path. Runs of rows the merger lets
through are yielded as :class:`~loaders.base.ParsedTable` items.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from loaders.base import Duplicate, Item, Parsed, ParsedTable, Reject, Source
from loaders.k8s_audit.columns import SCHEMA, columns
from loaders.k8s_audit.details import StageMerger, TableRow, TableRows
from loaders.k8s_audit.wrappers import is_event
from loaders.parsing.inputs import detect_encoding
from loaders.parsing.jsonl_blocks import (
    CleanBlock,
    MapValue,
    Rest,
    blocks_ahead,
    in_order,
    map_block,
    read_rest,
)

_PARSE = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")

Merger = StageMerger[Parsed | TableRow]


def jsonl_head(head: bytes) -> bool:
    """Whether a file looks like plain JSON Lines of bare audit Events (worth the fast path)."""
    if detect_encoding(head) != "utf-8" or not head.startswith(b"{"):
        return False
    try:
        value = json.loads(head.split(b"\n", 1)[0])
    except ValueError:
        return False
    return is_event(value) and not any(k in value for k in ("items", "records", "events"))


def parse_jsonl(src: Source, map_value: MapValue, merger: Merger) -> Iterator[Item]:
    """Items of a JSON Lines file: fast tables where possible, ``map_value`` elsewhere.

    Args:
        src: the input.
        map_value: the per-event path without stage merging: ``(value, line, text) ->
            items``.
        merger: the stage merger every item passes through.

    Returns:
        The items of reading the file with the shared JSON reader, mapping each value with
        ``map_value`` and merging stages with ``merger`` (runs of events as tables).
    """
    out = _Output()
    with src.binary() as fh:
        for item in blocks_ahead(src, fh, _read_table):
            if isinstance(item, Rest):
                yield from out.add(_merged(merger, read_rest(src, item.blocks, item.line,
                                                         map_value)))
                break
            if isinstance(item, Reject):  # a line too long to read
                yield from out.add(merger.push(item))
                continue
            yield from _block(src, item, (map_value, merger), out)
            yield from out.flush()
    yield from out.add(merger.flush())
    yield from out.flush()


def _read_table(block: bytes) -> pa.Table:
    # one Arrow block (one chunk): this runs beside the mapping of the previous block
    read = pj.ReadOptions(use_threads=False, block_size=len(block) + 1)
    return pj.read_json(io.BytesIO(block), read_options=read, parse_options=_PARSE)


def _merged(merger: Merger, items: Iterable[Item]) -> Iterator[Item | TableRow]:
    for item in items:
        yield from merger.push(item)


def _block(src: Source, item: CleanBlock, how: tuple[MapValue, Merger], out: _Output
           ) -> Iterator[Item]:
    """Items of one clean block, in input order: rows Arrow mapped go to the merger as
    table rows, the others through the per-event path."""
    map_value, merger = how
    if not len(item.lines[1]):
        return
    mapped = map_block(item, columns)
    if mapped is None:
        yield from out.add(_merged(merger, read_rest(src, [item.data], item.line,
                                                     map_value)))
        return
    table = mapped.table
    rows = TableRows(table, mapped.numbers.tolist(), table.column("k8s_stage").to_pylist(),
                     table.column("native_id").to_pylist())
    out.block = rows
    for part in in_order(src, mapped, map_value):
        if isinstance(part, tuple):
            yield from out.add(merger.push_rows(rows, *part))
        else:
            yield from out.add(_merged(merger, part))


class _Output:
    """Items in order, with consecutive table rows gathered into one table.

    Attributes:
        block: the table whose rows are given by their index alone.
    """

    def __init__(self) -> None:
        self.block: TableRows | None = None
        self.rows: list[int | TableRow] = []

    def add(self, items: Iterable[int | Item | TableRow]) -> Iterator[Item]:
        """The items ready to go; table rows wait for :meth:`flush` or a record that is not
        one (a duplicate is only counted, so rows need not wait for it)."""
        for item in items:
            if isinstance(item, (int, TableRow)):
                self.rows.append(item)
                continue
            if not isinstance(item, Duplicate):
                yield from self.flush()
            yield item

    def flush(self) -> Iterator[ParsedTable]:
        """The waiting rows as one table."""
        if not self.rows:
            return
        rows, self.rows = self.rows, []
        where = np.empty(len(rows), np.int64)  # each row's place in `parts`
        others: dict[int, tuple[TableRows, list[int], list[int]]] = {}
        for pos, row in enumerate(rows):
            if isinstance(row, int):
                where[pos] = row
            elif row.block is self.block:
                where[pos] = row.index
            else:
                entry = others.setdefault(id(row.block), (row.block, [], []))
                entry[1].append(row.index)
                entry[2].append(pos)
        parts = [self.block.table] if self.block is not None else []
        size = len(parts[0]) if parts else 0
        for block, index, at in others.values():
            parts.append(block.table.take(index))
            where[at] = np.arange(size, size + len(index))
            size += len(index)
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        if not (np.diff(where) == 1).all():
            table = table.take(where)
        elif len(where) < len(table):
            table = table.slice(int(where[0]), len(where))
        yield ParsedTable(table)
