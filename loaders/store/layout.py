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

import pyarrow as pa

COMPRESSION = "zstd"
UNKNOWN_DATE = "unknown"  # the date partition of events without a timestamp

MANIFEST_SCHEMA = pa.schema([
    ("ingest_id", pa.string()),
    ("file_seq", pa.int64()),
    ("path", pa.string()),
    ("size", pa.int64()),
    ("sha256", pa.string()),
    ("loader", pa.string()),
    ("status", pa.string()),
    ("message", pa.string()),
    ("records_read", pa.int64()),
    ("records_loaded", pa.int64()),
    ("records_rejected", pa.int64()),
    ("records_duplicate", pa.int64()),
    ("first_timestamp", pa.timestamp("us", tz="UTC")),
    ("last_timestamp", pa.timestamp("us", tz="UTC")),
    ("tool_version", pa.string()),
    ("started_at", pa.timestamp("us", tz="UTC")),
    ("finished_at", pa.timestamp("us", tz="UTC")),
    ("parts", pa.list_(pa.string())),
    ("rejects_file", pa.string()),
    ("parts_sha256", pa.list_(pa.string())),
    ("rejects_sha256", pa.string()),
])


def _conform_manifest(table: pa.Table) -> pa.Table:
    """A manifest table in the current schema (older stores lack newer columns)."""
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type) for f in MANIFEST_SCHEMA]
    return pa.Table.from_arrays(cols, schema=MANIFEST_SCHEMA)


def conform_manifest(table: pa.Table) -> pa.Table:
    """A manifest table in the current schema (older stores lack newer columns)."""
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type) for f in MANIFEST_SCHEMA]
    return pa.Table.from_arrays(cols, schema=MANIFEST_SCHEMA)


REJECT_SCHEMA = pa.schema([
    ("ingest_id", pa.string()),
    ("source", pa.string()),
    ("source_file", pa.string()),
    ("source_line", pa.int64()),
    ("reason", pa.string()),
    ("excerpt", pa.string()),
])
