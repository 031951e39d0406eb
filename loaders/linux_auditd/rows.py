"""Column-wise batches of mapped auditd events (the loader's :class:`ParsedTable` path).

Each mapped event is one tuple in :data:`ROW_COLUMNS` order. A batch of tuples is turned into
an Arrow table by transposing it once (``zip(*rows)``, at C speed) and converting each column
with its schema type: this skips building one dict per event and the runner's per-row
bookkeeping, which together cost about as much as mapping the event itself. The values are
exactly those of the per-event :class:`~loaders.base.Parsed` path
(:meth:`LinuxAuditdLoader.event`), which is kept for callers that map one event.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from loaders.schema import TIMESTAMP, event_schema

# schema columns of one mapped event, in tuple order (see LinuxAuditdLoader.row)
FIELD_COLUMNS: tuple[str, ...] = (
    "timestamp", "category", "action", "outcome", "user", "user_id", "src_ip",
    "session_id", "host", "target_type", "target", "process_pid", "process_ppid",
    "process_image", "process_command_line", "message", "audit_type", "audit_record_types",
    "audit_records", "audit_serial", "audit_incomplete", "audit_syscall", "audit_key",
    "audit_exit", "audit_auid", "audit_auid_name", "audit_uid", "audit_uid_name",
    "audit_euid", "audit_euid_name", "audit_tty", "audit_terminal", "audit_hostname",
    "audit_op", "audit_comm", "audit_cwd", "audit_args", "audit_proctitle", "audit_paths",
    "audit_sockaddr_family", "audit_sockaddr_address", "audit_sockaddr_port", "audit_avc",
    "audit_subj",
)
# ... followed by what the runner needs to fill in the rest (see loaders.base.ParsedTable)
ROW_COLUMNS: tuple[str, ...] = (*FIELD_COLUMNS, "source_line", "raw", "native_id",
                                "parse_warning")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def int64(value: int | None) -> int | None:
    """The value when it fits an int64 column, else None (hostile numbers must not break
    the conversion of a whole batch)."""
    if value is None or _INT64_MIN <= value <= _INT64_MAX:
        return value
    return None


class RowBatch:
    """Mapped events waiting to become one Arrow table."""

    def __init__(self) -> None:
        schema = event_schema()
        self._types = [schema.field(name).type if name != "native_id" else pa.string()
                       for name in ROW_COLUMNS]
        self._types[0] = pa.int64()
        self.rows: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def take(self) -> pa.Table:
        """The pending rows as a table (ROW_COLUMNS), and start a new batch."""
        rows, self.rows = self.rows, []
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(col, type=typ) for col, typ in zip(columns, self._types, strict=True)]
        arrays[0] = arrays[0].cast(TIMESTAMP)  # timestamps come as epoch microseconds
        return pa.Table.from_arrays(arrays, names=list(ROW_COLUMNS))
