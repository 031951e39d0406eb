"""The one event schema every loader writes and every reader sees.

Core columns are defined once here as a pyarrow schema. Each loader declares its own
source-specific columns (``extra_fields``) with a prefix; the registry in ``loaders/__init__.py``
adds them beside the core with :func:`register_extras`. :func:`event_schema` is the full
registered schema: every Parquet file in the store carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """One documented column: name, Arrow type, meaning and its ECS / OCSF equivalents."""

    name: str
    type: pa.DataType
    meaning: str
    ecs: str = ""
    ocsf: str = ""

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=True)


CORE_COLUMNS: tuple[Column, ...] = (
    Column("timestamp", TIMESTAMP, "when the event happened (source time, in UTC)",
           "@timestamp", "time"),
    Column("source", pa.string(), "the system that produced the event (loader name)",
           "event.module", "metadata.product.name"),
    Column("category", pa.string(), "normalized category (see CATEGORIES)",
           "event.category", "category_name"),
    Column("action", pa.string(), "the source's own action name", "event.action", "activity_name"),
    Column("outcome", pa.string(), "success, failure, denied or unknown",
           "event.outcome", "status"),
    Column("user", pa.string(), "acting principal as the source names it", "user.name",
           "actor.user.name"),
    Column("user_id", pa.string(), "id of the acting principal", "user.id", "actor.user.uid"),
    Column("src_ip", pa.string(), "client address, canonical text form", "source.ip",
           "src_endpoint.ip"),
    Column("user_agent", pa.string(), "client software", "user_agent.original",
           "http_request.user_agent"),
    Column("session_id", pa.string(), "the source's own session id",
           "(none; auditd: auditd.session)", "actor.session.uid"),
    Column("host", pa.string(), "host, node or cluster that recorded the event", "host.name",
           "device.hostname"),
    Column("target_type", pa.string(), "kind of object acted on", "", "resources[].type"),
    Column("target", pa.string(), "the object acted on", "", "resources[].name"),
    Column("process_pid", pa.int64(), "process id", "process.pid", "process.pid"),
    Column("process_ppid", pa.int64(), "parent process id", "process.parent.pid",
           "process.parent_process.pid"),
    Column("process_image", pa.string(), "executable path", "process.executable",
           "process.file.path"),
    Column("process_command_line", pa.string(), "full command line", "process.command_line",
           "process.cmd_line"),
    Column("parent_image", pa.string(), "parent executable path", "process.parent.executable",
           "process.parent_process.file.path"),
    Column("k8s_namespace", pa.string(), "Kubernetes namespace", "orchestrator.namespace",
           "k8s namespace (unmapped)"),
    Column("k8s_pod", pa.string(), "Kubernetes pod", "kubernetes.pod.name (beats)",
           "unmapped"),
    Column("k8s_container", pa.string(), "container name", "container.name",
           "container.name"),
    Column("message", pa.string(), "one readable line: who did what to what, from where",
           "message", "message"),
    Column("event_uid", pa.string(), "deterministic id: the same record always gets the same id",
           "event.id", "metadata.uid"),
    Column("source_file", pa.string(), "input file (archive members as archive!member)",
           "log.file.path", "metadata.log_name"),
    Column("source_line", pa.int64(), "line (text input) or record index (binary input)",
           "log.offset (approx.)", "unmapped"),
    Column("ingest_id", pa.string(), "which ingest run wrote the event", "", "unmapped"),
    Column("parse_warning", pa.string(),
           "set when a damaged field was nulled and the record kept", "event.reason (approx.)",
           "unmapped"),
    Column("raw", pa.string(), "the original record, byte-faithful where the input is text",
           "event.original", "raw_data"),
)

CATEGORIES: frozenset[str] = frozenset({
    "authentication", "session", "data_access", "access_management", "resource_change",
    "resource_read", "process", "network", "file", "registry", "system", "log",
    "cluster_operation",
})
OUTCOMES: frozenset[str] = frozenset({"success", "failure", "denied", "unknown"})

CORE_NAMES: frozenset[str] = frozenset(c.name for c in CORE_COLUMNS)
_CORE_SCHEMA = pa.schema([c.field() for c in CORE_COLUMNS])

# prefix -> owning loader; extra column name -> Column
_EXTRA_PREFIXES: dict[str, str] = {}
_EXTRAS: dict[str, Column] = {}


class SchemaError(ValueError):
    """A batch or an extra-column declaration does not fit the registered schema."""


def register_extras(loader: str, prefix: str, columns: Iterable[Column]) -> None:
    """Register a loader's source-specific columns beside the core ones.

    Args:
        loader: name of the loader declaring the columns.
        prefix: the prefix every column must start with, e.g. ``"k8s_"``. Several loaders
            may share a prefix (the Kubernetes loaders share ``k8s_``).
        columns: the columns.

    Raises:
        SchemaError: a name lacks the prefix, collides with a core column, or is already
            registered with a different type.
    """
    _EXTRA_PREFIXES.setdefault(prefix, loader)
    for col in columns:
        if not col.name.startswith(prefix):
            raise SchemaError(f"{loader}: extra column {col.name!r} lacks prefix {prefix!r}")
        if col.name in CORE_NAMES:
            raise SchemaError(f"{loader}: extra column {col.name!r} is a core column")
        known = _EXTRAS.get(col.name)
        if known is not None and known.type != col.type:
            raise SchemaError(
                f"{loader}: extra column {col.name!r} already registered as {known.type}"
            )
        _EXTRAS[col.name] = col


def extra_columns() -> tuple[Column, ...]:
    """All registered extra columns, sorted by name."""
    return tuple(_EXTRAS[name] for name in sorted(_EXTRAS))


def core_schema() -> pa.Schema:
    """The core columns only."""
    return _CORE_SCHEMA


def event_schema() -> pa.Schema:
    """The full registered schema: core columns, then every loader's extras sorted by name."""
    return pa.schema(list(_CORE_SCHEMA) + [c.field() for c in extra_columns()])


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
