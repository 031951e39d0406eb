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
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.json as pj

from loaders.base import Item, ParsedTable, Reject, Source
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
from loaders.selectel_audit.columns import CHANGE_SETS, columns
from loaders.selectel_audit.fields import _BESIDE, _OBJECT_KEYS

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
    with src.binary() as fh:
        for item in blocks_ahead(src, fh, _read_table):
            if isinstance(item, Rest):
                yield from read_rest(src, item.blocks, item.line, map_value)
                return
            if isinstance(item, Reject):  # a line too long to read
                yield item
                continue
            yield from _block(src, item, map_value)


def _read_table(block: bytes) -> pa.Table:
    return pj.read_json(io.BytesIO(block), read_options=_READ, parse_options=_PARSE)


def _block(src: Source, item: CleanBlock, map_value: MapValue) -> Iterator[Item]:
    """Items of one clean block, in input order."""
    if not len(item.lines[1]):
        return
    mapped = map_block(item, columns)
    if mapped is None:
        yield from read_rest(src, [item.data], item.line, map_value)
        return
    for part in in_order(src, mapped, map_value):
        if isinstance(part, tuple):
            yield ParsedTable(mapped.table.slice(part[0], part[1] - part[0]))
        else:
            yield from part
