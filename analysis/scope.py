"""What an analysis looks at: a store, a time window, sources, and the analyst's own filter.

A :class:`Scope` is the only way analysis reads events. It opens a DuckDB connection with
two views over the store's Parquet files (nothing is loaded into memory):

- ``history``: every stored event of the scope's sources up to the end of the window — what
  baselines learn from (always only from events *before* the one judged);
- ``events``: the events inside the window (and matching ``where``) — what is judged.

Both views have every column of the event schema (a column no stored file has is null), so
SQL over them does not depend on which sources happen to be stored.

Example:
    >>> scope = Scope("auditlens-store", start="2026-11-10")      # doctest: +SKIP
    >>> con = scope.connect()                                      # doctest: +SKIP
    >>> con.sql("SELECT count(*) FROM events").fetchone()          # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from loaders.schema import event_schema
from loaders.store.layout import UNKNOWN_DATE
from loaders.store.store import Store

TimeLike: TypeAlias = str | datetime | pd.Timestamp | None


def utc(value: TimeLike) -> datetime | None:
    """A time as an aware UTC datetime (naive times are taken as UTC); None stays None."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def sql_type(t: Any) -> str:
    """The DuckDB type of an Arrow type of the event schema."""
    import pyarrow as pa

    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_floating(t):
        return "DOUBLE"
    return "VARCHAR"


class EmptyStore(ValueError):
    """The store has no events (in the scope's sources)."""


@dataclass(frozen=True)
class Scope:
    """A store, a time window ``[start, end)``, optional sources and an SQL condition.

    Args:
        store: the store directory.
        start: judge events at or after this time (naive = UTC); None: from the first.
        end: judge events before this time; None: to the last.
        sources: only these sources (loader names); None: all.
        where: the analyst's own SQL condition over event columns; it is never built from
            log content. It narrows ``events`` only, not ``history``.
    """

    store: Path
    start: datetime | None = None
    end: datetime | None = None
    sources: frozenset[str] | None = None
    where: str | None = None
    _files: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __init__(self, store: str | os.PathLike[str], start: TimeLike = None,
                 end: TimeLike = None, sources: Sequence[str] | None = None,
                 where: str | None = None) -> None:
        object.__setattr__(self, "store", Path(store))
        object.__setattr__(self, "start", utc(start))
        object.__setattr__(self, "end", utc(end))
        object.__setattr__(self, "sources", frozenset(sources) if sources else None)
        object.__setattr__(self, "where", where or None)
        object.__setattr__(self, "_files", ())
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"the window is empty: start {self.start} is not before end "
                             f"{self.end}")

    def files(self) -> list[str]:
        """The Parquet files ``history`` reads (every date up to the window's end)."""
        s = Store(self.store)
        s.recover_if_idle()
        out = []
        end_date = self.end.date() if self.end else None
        for part in s.part_files():
            source = part.parent.parent.name.removeprefix("source=")
            day = part.parent.name.removeprefix("date=")
            if self.sources is not None and source not in self.sources:
                continue
            if end_date and day != UNKNOWN_DATE and \
                    datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).date() > end_date:
                continue
            out.append(str(part))
        return out

    def describe(self) -> dict[str, Any]:
        """The scope as plain values (recorded with every detection run)."""
        return {"store": str(self.store),
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                "sources": sorted(self.sources) if self.sources else None,
                "where": self.where}

    def connect(self, threads: int = 2, memory_limit: str | None = None) -> Any:
        """A DuckDB connection with the ``history`` and ``events`` views.

        Raises:
            EmptyStore: nothing is stored in the scope's sources.
        """
        import duckdb

        files = self.files()
        if not files:
            raise EmptyStore(f"no events in {self.store}"
                             + (f" for sources {sorted(self.sources)}" if self.sources else "")
                             + "; ingest first: auditlens ingest <files> --store "
                             + str(self.store))
        config: dict[str, Any] = {"threads": threads}
        if memory_limit:
            config["memory_limit"] = memory_limit
        con = duckdb.connect(config=config)
        con.execute("SET TimeZone='UTC'")
        present = set(con.read_parquet(files, union_by_name=True).columns)
        schema = event_schema()
        select = ", ".join(
            f'"{f.name}"' if f.name in present
            else f'CAST(NULL AS {sql_type(f.type)}) AS "{f.name}"' for f in schema)
        listing = "[" + ", ".join(_quote(f) for f in files) + "]"
        conds = []
        if self.end is not None:
            conds.append(f"timestamp < TIMESTAMPTZ '{self.end.isoformat()}'")
        history = (f"SELECT {select} FROM read_parquet({listing}, union_by_name=true)"
                   + (" WHERE " + " AND ".join(conds) if conds else ""))
        if all(any(f"source={s}" in f for f in files) for s in ("linux_auth", "linux_syslog")):
            history = _without_syslog_twins(history)
        con.execute(f"CREATE VIEW history AS {history}")
        inner = ["timestamp IS NOT NULL"]
        if self.start is not None:
            inner.append(f"timestamp >= TIMESTAMPTZ '{self.start.isoformat()}'")
        if self.where:
            inner.append(f"({self.where})")
        con.execute("CREATE VIEW events AS SELECT * FROM history WHERE " + " AND ".join(inner))
        return con

    def events(self, columns: Sequence[str], limit: int | None = None) -> pd.DataFrame:
        """The events in the window as a DataFrame of the given columns (required: no
        ``SELECT *`` of 180 columns by accident), ordered by time."""
        if not columns:
            raise ValueError("name the columns you need (see docs/SCHEMA.md)")
        unknown = [c for c in columns if c not in event_schema().names]
        if unknown:
            raise KeyError(f"unknown columns {unknown}; see docs/SCHEMA.md")
        con = self.connect()
        try:
            cols = ", ".join(f'"{c}"' for c in columns)
            sql = f"SELECT {cols} FROM events ORDER BY timestamp, event_uid"
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            return con.sql(sql).df()
        finally:
            con.close()


def _quote(text: str) -> str:
    """A string literal for DuckDB (file paths and times we generate, never log content)."""
    return "'" + text.replace("'", "''") + "'"


def _without_syslog_twins(history: str) -> str:
    """``history`` less the ``linux_syslog`` copies of lines ``linux_auth`` holds too.

    rsyslog writes an sshd, sudo or su line both to ``auth.log`` (``secure``) and to
    ``syslog`` (``messages``); both files are evidence, the store keeps both (each source
    its own events), but analysis must count the attempt once: the syslog copy of a line
    with the same time, host and message as an auth-log line is left out of the views.
    """
    return (f"WITH h AS ({history}) SELECT * FROM h WHERE h.source <> 'linux_syslog' OR NOT "
            "EXISTS (SELECT 1 FROM h a WHERE a.source = 'linux_auth' AND a.timestamp = "
            "h.timestamp AND a.host IS NOT DISTINCT FROM h.host AND a.message IS NOT "
            "DISTINCT FROM h.message)")
