"""The store's on-disk contract: where files go, and the schemas of what is not an event.

```
<store>/events/source=<name>/date=<YYYY-MM-DD>/part-<ingest_id>-<file_seq>-<k>.parquet
<store>/rejects/<ingest_id>-<file_seq>.parquet
<store>/manifest.parquet                    one row per input file (MANIFEST_SCHEMA)
<store>/manifest.d/<ingest_id>-<seq>.parquet   commit records not yet folded in
```

Events carry the full event schema (:func:`loaders.schema.event_schema`); events without a
timestamp are in ``date=unknown``. Any reader (pandas, DuckDB, Spark) can rely on this module
alone, with no part of auditlens that parses logs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict

import pyarrow as pa

COMPRESSION = "zstd"
UNKNOWN_DATE = "unknown"  # the date partition of events without a timestamp

MANIFEST_SCHEMA = pa.schema([
    ("ingest_id", pa.string()),
    ("file_seq", pa.int64()),
    ("path", pa.string()),
    ("resolved_path", pa.string()),
    ("member_path", pa.list_(pa.struct([("name", pa.string()), ("occurrence", pa.int64())]))),
    ("size", pa.int64()),
    ("sha256", pa.string()),
    ("loader", pa.string()),
    ("status", pa.string()),
    ("message", pa.string()),
    ("input_changed", pa.string()),
    ("records_read", pa.int64()),
    ("records_loaded", pa.int64()),
    ("records_rejected", pa.int64()),
    ("records_duplicate", pa.int64()),
    ("first_timestamp", pa.timestamp("us", tz="UTC")),
    ("last_timestamp", pa.timestamp("us", tz="UTC")),
    ("naive_times", pa.int64()),
    ("time_zone", pa.string()),
    ("tool_version", pa.string()),
    ("started_at", pa.timestamp("us", tz="UTC")),
    ("finished_at", pa.timestamp("us", tz="UTC")),
    ("parts", pa.list_(pa.string())),
    ("rejects_file", pa.string()),
    ("parts_sha256", pa.list_(pa.string())),
    ("rejects_sha256", pa.string()),
    # the host taken from a triage collection's layout (loaders.ingest.collections) and
    # filled into this file's events whose records name none; None when none needed it
    ("host_from_layout", pa.string()),
])


def conform_manifest(table: pa.Table) -> pa.Table:
    """A manifest table in the current schema (older stores lack newer columns)."""
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type) for f in MANIFEST_SCHEMA]
    return pa.Table.from_arrays(cols, schema=MANIFEST_SCHEMA)


FileStatus = Literal["ingested", "stopped", "failed"]
"""The manifest's ``status`` of a committed file: ``ingested`` (read to its end),
``stopped`` (read up to a damaged stream or a loader error; ``message`` says where; what was
read is kept) or ``failed`` (none of its records loaded: not this format, unreadable; its
rejects are kept and ``message`` says why). A file skipped (already stored, unrecognised) or
refused (an unsafe archive member) has no manifest row."""


class MemberStep(TypedDict):
    """One step of a manifest row's ``member_path``: a member of the archive the step before
    it names (the first step: of the file at ``resolved_path``).

    ``name`` is the member's name as its archive records it, which any string can be (a
    name can hold ``!`` or `` (#2)``), so it is never parsed out of a path; ``occurrence``
    tells members of the same name apart: 1 for the first member of that name in the
    archive, 2 for the second, counted in the order the ingest reads the members (every
    member, refused ones included; see :func:`loaders.ingest.archives.iter_archive`).
    """

    name: str
    occurrence: int


class StagedRow(TypedDict):
    """The manifest row of a parsed file before its commit (the ingest pipeline fills it;
    ``records_loaded`` and ``records_duplicate`` are then counted before the store's
    de-duplication, which :meth:`loaders.store.store.Store.commit` corrects)."""

    ingest_id: str
    file_seq: int
    path: str  # as shown: ``archive.zip!member`` (``archive.zip!member (#2)``: the 2nd of
    # that name) for an archive member; a display, never parsed (a file name can hold ``!``)
    # the file on disk, absolute and resolved at ingest: the input itself, or for an archive
    # member the outermost archive (no ``!``); None in older stores
    resolved_path: str | None
    # which member of that archive, from the outermost archive inward (a log in a tar in a
    # zip: two steps); [] for a plain file; None in older stores (verify then parses
    # ``resolved_path`` as ``archive!member``, one level, as those stores recorded it)
    member_path: list[MemberStep] | None
    size: int
    sha256: str
    loader: str
    status: FileStatus
    message: str | None
    # how the file changed while it was read (grew, shrank, was rewritten or replaced); the
    # sha256 and size are of the bytes parsed all the same. None when it did not change
    input_changed: str | None
    records_read: int
    records_loaded: int
    records_rejected: int
    records_duplicate: int
    first_timestamp: datetime | None
    last_timestamp: datetime | None
    # records whose time was written without a zone, and the zone they were read in
    # ("UTC (assumed: …)", "Europe/Moscow (--tz)"); 0 and None when every time had one
    naive_times: int
    time_zone: str | None
    tool_version: str
    started_at: datetime


class ManifestRow(StagedRow):
    """One row of the manifest (:data:`MANIFEST_SCHEMA`, in its column order): the staged
    row, with the counts after de-duplication and what the commit wrote. In a store written
    before part hashes were recorded, ``parts_sha256`` and ``rejects_sha256`` read as None."""

    finished_at: datetime
    parts: list[str]  # event files, relative to the store
    rejects_file: str | None
    parts_sha256: list[str] | None
    rejects_sha256: str | None
    # the host a triage collection's layout names, filled into the file's events whose
    # records name none (never over a record's own); None when none needed it, and in
    # stores written before collections were recognised
    host_from_layout: str | None


StoredTable = Literal["events", "rejects"]
"""The two kinds of table a file's parse gives (:class:`loaders.ingest.runner.FileRun`) and the
store keeps: events (the event schema) and rejects (:data:`REJECT_SCHEMA`)."""


REJECT_SCHEMA = pa.schema([
    ("ingest_id", pa.string()),
    ("source", pa.string()),
    ("source_file", pa.string()),
    ("source_line", pa.int64()),
    ("reason", pa.string()),
    ("excerpt", pa.string()),
])


class RejectRow(TypedDict):
    """One row of a rejects file (:data:`REJECT_SCHEMA`)."""

    ingest_id: str
    source: str
    source_file: str
    source_line: int
    reason: str
    excerpt: str
