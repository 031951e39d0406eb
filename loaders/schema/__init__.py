"""The one event schema every loader writes and every reader sees.

The core columns (:mod:`loaders.schema.core`) and every source's own columns
(:mod:`loaders.schema.extras`) are declared here, in the schema layer, so the full schema is
known without importing any parser. :func:`event_schema` is that full schema: every Parquet
file in the store carries it.
"""

from __future__ import annotations

import functools

import pyarrow as pa

from loaders.schema.core import (
    CATEGORIES,
    CORE_COLUMNS,
    CORE_NAMES,
    OUTCOMES,
    TIMESTAMP,
    Column,
    SchemaError,
    core_schema,
)
from loaders.schema.extras import SOURCES, SourceColumns

__all__ = [
    "CATEGORIES", "CORE_COLUMNS", "CORE_NAMES", "OUTCOMES", "SOURCES", "TIMESTAMP", "Column",
    "SchemaError", "SourceColumns", "core_schema", "event_schema", "extra_columns",
    "source_columns", "validate",
]


def _extras(sources: tuple[SourceColumns, ...]) -> dict[str, Column]:
    """Extra column name -> Column, checked: each carries its source's prefix (or is a column
    of a source it shares, declared identically), none is a core column, and a name declared
    by two sources (the Kubernetes ones) has one type."""
    table: dict[str, Column] = {}
    by_name = {src.source: src for src in sources}
    for src in sources:
        shared = {c for name in src.shares for c in by_name[name].columns}
        for col in src.columns:
            if not col.name.startswith(src.prefix) and col not in shared:
                raise SchemaError(f"{src.source}: extra column {col.name!r} lacks prefix "
                                  f"{src.prefix!r}")
            if col.name in CORE_NAMES:
                raise SchemaError(f"{src.source}: extra column {col.name!r} is a core column")
            known = table.get(col.name)
            if known is not None and known.type != col.type:
                raise SchemaError(f"{src.source}: extra column {col.name!r} already declared "
                                  f"as {known.type}")
            table[col.name] = col
    return table


_EXTRAS: dict[str, Column] = _extras(SOURCES)
_BY_SOURCE: dict[str, SourceColumns] = {s.source: s for s in SOURCES}


def source_columns(source: str) -> SourceColumns:
    """One source's prefix and extra columns.

    Raises:
        KeyError: no source of that name.
    """
    return _BY_SOURCE[source]


def extra_columns() -> tuple[Column, ...]:
    """All extra columns, sorted by name."""
    return tuple(_EXTRAS[name] for name in sorted(_EXTRAS))


@functools.cache
def event_schema() -> pa.Schema:
    """The full schema: core columns, then every source's extras sorted by name."""
    return pa.schema([c.field() for c in CORE_COLUMNS] + [c.field() for c in extra_columns()])


def validate(batch: pa.RecordBatch | pa.Table, schema: pa.Schema | None = None) -> pa.Table:
    """Conform a batch to the full schema: add missing columns as nulls, order, cast types.

    Args:
        batch: what a loader produced.
        schema: target schema; the full registered schema by default.

    Returns:
        A table with exactly the schema's columns, in order.

    Raises:
        SchemaError: an unregistered column, a value that cannot be cast, a category or
            outcome outside the allowed sets, or an event without ``event_uid``/``source``.
    """
    schema = schema or event_schema()
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    present = set(table.column_names)  # column_names builds a new list on every call
    unknown = present - set(schema.names)
    if unknown:
        raise SchemaError(f"unregistered columns: {sorted(unknown)}")
    arrays = []
    for field in schema:
        if field.name in present:
            col = table.column(field.name)
            if col.type != field.type:
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaError(f"column {field.name!r}: {exc}") from exc
            arrays.append(col)
        else:
            arrays.append(pa.nulls(table.num_rows, field.type))
    out = pa.Table.from_arrays(arrays, schema=schema)
    _check_values(out)
    return out


def _check_values(table: pa.Table) -> None:
    import pyarrow.compute as pc

    for name in ("event_uid", "source"):
        if table.column(name).null_count:
            raise SchemaError(f"{table.column(name).null_count} events without {name}")
    for name, allowed in (("category", CATEGORIES), ("outcome", OUTCOMES)):
        values = pc.unique(table.column(name).drop_null()).to_pylist()
        bad = set(values) - allowed
        if bad:
            raise SchemaError(f"{name} values outside {sorted(allowed)}: {sorted(bad)}")
