"""The events of an ingest by host: the layout's host filled in where records name none,
and the counts and time spans per host for the ingest summary (:meth:`IngestReport.by_host`
in :mod:`loaders.ingest.pipeline`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loaders.ingest.runner import RunItem
from loaders.store.layout import ManifestRow
from loaders.store.store import Store

NO_HOST = "(none)"
"""How the summary by host names events that carry no host, from their records or from the
collection's layout."""

@dataclass
class HostEvents:
    """One host's events in one file: ``events`` staged (before de-duplication) until the
    file is committed, then loaded (what the store took); ``first``/``last`` are of those
    events (None when there are none). ``host`` is :data:`NO_HOST` for events without one."""

    host: str
    events: int
    first: datetime | None = None
    last: datetime | None = None


@dataclass
class HostSummary:
    """One line of the ingest summary by host (:meth:`IngestReport.by_host`)."""

    host: str
    files: int
    loaded: int
    sources: list[str]
    first: datetime | None
    last: datetime | None


def summarize(files: list[tuple[str, list[HostEvents]]]) -> list[HostSummary]:
    """The run by host from each file's (loader, events by host), as committed: per host,
    the files with events of it (all duplicates included: the file is that host's evidence
    all the same), the events the store took, the loaders, and the first and last of those
    events' times. Sorted by host, :data:`NO_HOST` last."""
    out: dict[str, HostSummary] = {}
    for loader, hosts in files:
        for h in hosts:
            s = out.get(h.host)
            if s is None:
                s = out[h.host] = HostSummary(h.host, 0, 0, [], None, None)
            s.files += 1
            s.loaded += h.events
            if loader and loader not in s.sources:
                s.sources.append(loader)
            if h.first is not None:
                s.first = h.first if s.first is None else min(s.first, h.first)
            if h.last is not None:
                s.last = h.last if s.last is None else max(s.last, h.last)
    for s in out.values():
        s.sources.sort()
    return sorted(out.values(), key=lambda s: (s.host == NO_HOST, s.host))


class HostTally:
    """A file's events by host as they are staged, with the layout's host filled in where a
    record has none (never over a host the record names: a collection can hold logs
    forwarded from other machines, whose records say so)."""

    def __init__(self, layout_host: str | None) -> None:
        self.layout_host = layout_host
        self.filled = 0  # events whose host came from the layout
        self._by_host: dict[str, HostEvents] = {}

    def fill(self, items: Iterator[RunItem]) -> Iterator[RunItem]:
        for kind, table in items:
            if kind == "events" and table.num_rows:
                table = self._fill(table)
                self._count(table)
            yield kind, table

    def _fill(self, table: pa.Table) -> pa.Table:
        col = table.column("host")
        if self.layout_host is None or not col.null_count:
            return table
        self.filled += col.null_count
        filled = pc.fill_null(col, pa.scalar(self.layout_host, pa.string()))
        return table.set_column(table.schema.get_field_index("host"), "host", filled)

    def _count(self, table: pa.Table) -> None:
        for host, times in by_host(table):
            add(self._by_host, host, times)

    def staged(self) -> list[HostEvents]:
        return list(self._by_host.values())


def by_host(table: pa.Table) -> Iterator[tuple[str, pa.ChunkedArray]]:
    """A table's event times by host (:data:`NO_HOST` for null or empty); one file is
    nearly always of one host, which costs one ``unique``."""
    hosts = table.column("host")
    ts = table.column("timestamp")
    values = hosts.unique()
    if hosts.null_count == 0 and len(values) == 1:
        yield values[0].as_py() or NO_HOST, ts
        return
    for value in values.to_pylist():
        mask = pc.is_null(hosts) if value is None else pc.fill_null(
            pc.equal(hosts, pa.scalar(value, pa.string())), False)
        yield value or NO_HOST, ts.filter(mask)


def add(by_host: dict[str, HostEvents], host: str, times: pa.ChunkedArray) -> None:
    n = len(times)
    mm = pc.min_max(times)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    h = by_host.get(host)
    if h is None:
        by_host[host] = HostEvents(host, n, lo, hi)
        return
    h.events += n
    if lo is not None:
        h.first = lo if h.first is None else min(h.first, lo)
        h.last = hi if h.last is None else max(h.last, hi)


def loaded_by_host(store: Store, staged: list[HostEvents], row: ManifestRow
                    ) -> list[HostEvents]:
    """The events by host the store took of a file: as staged when it took them all or none
    (the common cases, nothing to read), else counted from the parts it wrote (only those
    rows were kept; the host column of a small file's parts reads in a millisecond)."""
    kept = row["records_loaded"]
    if kept == sum(h.events for h in staged):
        return staged
    if kept == 0:
        return [HostEvents(h.host, 0) for h in staged]
    counts: dict[str, HostEvents] = {h.host: HostEvents(h.host, 0) for h in staged}
    for rel in row["parts"]:
        for host, times in by_host(pq.read_table(store.root / rel,
                                                 columns=["host", "timestamp"])):
            add(counts, host, times)
    return list(counts.values())
