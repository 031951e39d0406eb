"""Reading the evidence store: events, manifest, rejects, and the store summary.

Queries run in DuckDB over the Parquet files: sources and dates prune whole partition
directories, time bounds and ``where`` are pushed into the Parquet scan, and only the
requested columns are read. Whatever mix of sources (and of older files lacking newer
columns) is stored, the result has the same columns and types.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypedDict

import pandas as pd
import pyarrow as pa

from loaders.schema import event_schema
from loaders.store.layout import MANIFEST_SCHEMA, REJECT_SCHEMA, UNKNOWN_DATE
from loaders.store.store import Store

TimeLike: TypeAlias = str | datetime | pd.Timestamp | None


def _utc(value: TimeLike) -> datetime | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def _store(store: str | os.PathLike[str] | Store) -> Store:
    s = store if isinstance(store, Store) else Store(store)
    s.recover_if_idle()
    return s


def _files(s: Store, sources: Sequence[str] | None, start: datetime | None,
           end: datetime | None) -> list[str]:
    out = []
    for part in s.part_files():
        src = part.parent.parent.name.removeprefix("source=")
        day = part.parent.name.removeprefix("date=")
        if sources is not None and src not in sources:
            continue
        if day != UNKNOWN_DATE and (start or end):
            d = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).date()
            if (start and d < start.date()) or (end and d > end.date()):
                continue
        elif day == UNKNOWN_DATE and (start or end):
            continue
        out.append(str(part))
    return out


def _frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(),
                                         pa.bool_(): pd.BooleanDtype()}.get)


def read_events(
    store: str | os.PathLike[str] | Store, *, sources: Sequence[str] | None = None,
    start: TimeLike = None, end: TimeLike = None, columns: Sequence[str] | None = None,
    where: str | None = None, limit: int | None = None,
) -> pd.DataFrame:
    """Events from the store as a DataFrame, filtered where the data lies.

    Args:
        store: the store directory.
        sources: only these sources (loader names).
        start: only events at or after this time (naive times are UTC).
        end: only events before this time.
        columns: only these columns (default: all registered columns).
        where: an extra SQL condition over the event columns, e.g. ``"user = 'alice'"``.
            It is the analyst's own SQL, run by DuckDB; never build it from log content.
        limit: at most this many rows.

    Returns:
        One row per event ordered by timestamp; timestamps are UTC; every requested
        column is present even when no stored file has it.

    Raises:
        KeyError: a requested column is not in the schema.

    Example:
        >>> df = read_events("auditlens-store", sources=["k8s_audit"],
        ...                  where="category = 'access_management'")  # doctest: +SKIP
    """
    import duckdb

    schema = event_schema()
    wanted = list(columns) if columns is not None else schema.names
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise KeyError(f"unknown columns {missing}; see docs/SCHEMA.md")
    out_schema = pa.schema([schema.field(c) for c in wanted])
    start_utc, end_utc = _utc(start), _utc(end)
    files = _files(_store(store), sources, start_utc, end_utc)
    if not files:
        return _frame(out_schema.empty_table())
    con = duckdb.connect(config={"threads": 2})
    try:
        con.execute("SET TimeZone='UTC'")
        rel = con.read_parquet(files, union_by_name=True)
        present = set(rel.columns)
        select = ", ".join(
            f'"{c}"' if c in present
            else f'CAST(NULL AS {_sql_type(schema.field(c).type)}) AS "{c}"'
            for c in wanted
        )
        conds: list[str] = []
        params: list[Any] = []
        if sources is not None:
            conds.append("source IN (SELECT unnest(?))")
            params.append(list(sources))
        if start_utc is not None:
            conds.append("timestamp >= ?")
            params.append(start_utc)
        if end_utc is not None:
            conds.append("timestamp < ?")
            params.append(end_utc)
        if where:
            conds.append(f"({where})")
        sql = f"SELECT {select} FROM read_parquet(?, union_by_name=true)"
        params.insert(0, files)
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        order = [c for c in ("timestamp", "source", "source_file", "source_line") if c in present]
        sql += " ORDER BY " + ", ".join(f'"{c}"' for c in order)
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        table = con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()
    return _frame(table.cast(out_schema))


def _sql_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_floating(t):
        return "DOUBLE"
    return "VARCHAR"


def read_manifest(store: str | os.PathLike[str] | Store) -> pd.DataFrame:
    """One row per ingested input file: path, sha256, loader, counts, time range."""
    return _frame(_store(store).read_manifest().cast(MANIFEST_SCHEMA))


def read_rejects(store: str | os.PathLike[str] | Store) -> pd.DataFrame:
    """Every rejected record: ingest_id, source, source_file, source_line, reason, excerpt."""
    s = _store(store)
    files = sorted(s.rejects_dir.glob("*.parquet")) if s.rejects_dir.is_dir() else []
    if not files:
        return _frame(REJECT_SCHEMA.empty_table())
    import pyarrow.parquet as pq

    tables = [pq.read_table(f).cast(REJECT_SCHEMA) for f in files]
    return _frame(pa.concat_tables(tables))


class StoreSummary(TypedDict):
    """What :func:`store_summary` returns (a dict, for ``auditlens info`` and notebooks).

    Attributes:
        events: events stored.
        first: the earliest event time (UTC), None in an empty store.
        last: the latest event time (UTC), None in an empty store.
        by_source_day: one row per source and UTC day (``unknown`` without a timestamp):
            source, date, events, first, last.
        files: the manifest (:func:`read_manifest`), one row per input file.
        rejects: rejected records stored.
        reject_reasons: source, reason, count, most frequent first.
    """

    events: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    by_source_day: pd.DataFrame
    files: pd.DataFrame
    rejects: int
    reject_reasons: pd.DataFrame


def store_summary(store: str | os.PathLike[str] | Store) -> StoreSummary:
    """Counts per source and day, the time range, files and rejects, for ``auditlens info``
    (see :class:`StoreSummary`)."""
    import duckdb

    s = _store(store)
    files = [str(p) for p in s.part_files()]
    manifest = read_manifest(s)
    rejects = read_rejects(s)
    by_day = pd.DataFrame(columns=["source", "date", "events", "first", "last"])
    if files:
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone='UTC'")
            by_day = con.execute(
                "SELECT source, coalesce(strftime(timestamp, '%Y-%m-%d'), 'unknown') AS date, "
                "count(*) AS events, min(timestamp) AS first, max(timestamp) AS last "
                "FROM read_parquet(?, union_by_name=true) GROUP BY ALL ORDER BY source, date",
                [files]).df()
        finally:
            con.close()
    reasons = (rejects.groupby(["source", "reason"]).size().rename("count").reset_index()
               .sort_values("count", ascending=False) if len(rejects) else
               pd.DataFrame(columns=["source", "reason", "count"]))
    return {
        "events": int(by_day["events"].sum()) if len(by_day) else 0,
        "first": by_day["first"].min() if len(by_day) else None,
        "last": by_day["last"].max() if len(by_day) else None,
        "by_source_day": by_day,
        "files": manifest,
        "rejects": len(rejects),
        "reject_reasons": reasons,
    }
