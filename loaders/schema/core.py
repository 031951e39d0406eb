"""The core columns of the event schema: the ones every source fills where it can."""

from __future__ import annotations

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
    Column("repeat_count", pa.int64(),
           "the record stands for this many occurrences (syslog `message repeated N times`); "
           "count it that many times: `coalesce(repeat_count, 1)`. Null: once",
           "", "count"),
    Column("event_uid", pa.string(), "deterministic id: the same record always gets the same id",
           "event.id", "metadata.uid"),
    Column("source_file", pa.string(), "input file as given (an archive member: archive!member; "
           "a second member of that name: archive!member (#2))", "log.file.path",
           "metadata.log_name"),
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


class SchemaError(ValueError):
    """A batch or an extra-column declaration does not fit the registered schema."""


def core_schema() -> pa.Schema:
    """The core columns only."""
    return _CORE_SCHEMA
