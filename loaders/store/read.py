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
from pathlib import Path
from typing import Any, TypeAlias, TypedDict

import pandas as pd
import pyarrow as pa

from loaders.schema import event_schema
from loaders.store.layout import MANIFEST_SCHEMA, REJECT_SCHEMA, UNKNOWN_DATE
from loaders.store.store import Store, StoreDamaged

TimeLike: TypeAlias = str | datetime | pd.Timestamp | None


def _utc(value: TimeLike) -> datetime | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def _store(store: str | os.PathLike[str] | Store) -> Store:
    s = store if isinstance(store, Store) else Store(store)
    s.check_path()
    s.recover_if_idle()
    return s


def damaged_files(files: Sequence[str], columns: Sequence[str]) -> list[tuple[str, str]]:
    """The files among ``files`` whose ``columns`` cannot be read, and why (the slow check,
    run only after a query over them failed)."""
    import pyarrow.parquet as pq

    out = []
    for f in files:
        try:
            pf = pq.ParquetFile(f)
            names = [c for c in columns if c in pf.schema_arrow.names]
            for i in range(pf.num_row_groups):
                pf.read_row_group(i, columns=names)
        except Exception as exc:  # pyarrow raises several types for damaged files
            out.append((f, f"{type(exc).__name__}: {exc}"))
    return out


def _damage_error(s: Store, files: Sequence[str], columns: Sequence[str]) -> StoreDamaged | None:
    found = damaged_files(files, columns)
    if not found:
        return None
    path, why = found[0]
    error = s.damaged_part_error(Path(path), why)
    if len(found) > 1:
        error = StoreDamaged(f"{error} ({len(found) - 1} more stored files are damaged; "
                             "`auditlens info --verify` lists them)")
    return error


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
        StoreDamaged: a stored file it needs cannot be read (the message names it, the
            input it came from, and the repair command).

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
    s = _store(store)
    with s.snapshot():
        files = _files(s, sources, start_utc, end_utc)
    if not files:
        return _frame(out_schema.empty_table())
    con = duckdb.connect(config={"threads": 2})
    try:
        con.execute("SET TimeZone='UTC'")
        try:
            present = set(con.read_parquet(files, union_by_name=True).columns)
        except duckdb.Error as exc:
            damage = _damage_error(s, files, wanted)
            if damage is None:
                raise
            raise damage from exc
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
        try:
            table = con.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            damage = _damage_error(s, files, wanted)
            if damage is None:
                raise
            raise damage from exc
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
    with s.snapshot():
        files = sorted(s.rejects_dir.glob("*.parquet")) if s.rejects_dir.is_dir() else []
    damaged: list[tuple[str, str]] = []
    frame = _read_rejects(files, damaged)
    if damaged:
        raise s.damaged_part_error(Path(damaged[0][0]), damaged[0][1])
    return frame


def _read_rejects(files: Sequence[Path], damaged: list[tuple[str, str]]) -> pd.DataFrame:
    """The rejects files' rows; those that cannot be read are added to ``damaged``."""
    import pyarrow.parquet as pq

    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f).cast(REJECT_SCHEMA))
        except Exception as exc:  # pyarrow raises several types for damaged files
            damaged.append((str(f), f"{type(exc).__name__}: {exc}"))
    if not tables:
        return _frame(REJECT_SCHEMA.empty_table())
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
    damaged: list[tuple[str, str]]
    manifest_damaged: str


def store_summary(store: str | os.PathLike[str] | Store) -> StoreSummary:
    """Counts per source and day, the time range, files and rejects, for ``auditlens info``
    (see :class:`StoreSummary`). A damaged store is summarised all the same: stored files
    that cannot be read are left out and listed in ``damaged`` (relative path, why); a
    damaged manifest leaves ``files`` empty and says why in ``manifest_damaged``."""
    import duckdb

    s = _store(store)
    manifest_damaged = ""
    with s.snapshot():
        files = [str(p) for p in s.part_files()]
        try:
            manifest = _frame(s.read_manifest().cast(MANIFEST_SCHEMA))
        except StoreDamaged as exc:
            manifest_damaged = str(exc)
            manifest = _frame(MANIFEST_SCHEMA.empty_table())
        reject_files = sorted(s.rejects_dir.glob("*.parquet")) if s.rejects_dir.is_dir() else []
    damaged: list[tuple[str, str]] = []
    rejects = _read_rejects(reject_files, damaged)
    by_day = pd.DataFrame(columns=["source", "date", "events", "first", "last"])
    if files:
        query = ("SELECT source, coalesce(strftime(timestamp, '%Y-%m-%d'), 'unknown') AS date, "
                 "count(*) AS events, min(timestamp) AS first, max(timestamp) AS last "
                 "FROM read_parquet(?, union_by_name=true) GROUP BY ALL ORDER BY source, date")
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone='UTC'")
            try:
                by_day = con.execute(query, [files]).df()
            except duckdb.Error:
                bad = damaged_files(files, ["source", "timestamp"])
                if not bad:
                    raise
                damaged.extend(bad)
                left = [f for f in files if f not in {b for b, _ in bad}]
                if left:
                    by_day = con.execute(query, [left]).df()
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
        "damaged": [(s.relative(f), why) for f, why in damaged],
        "manifest_damaged": manifest_damaged,
    }
