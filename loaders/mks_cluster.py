"""Managed Kubernetes cluster operations (Selectel MKS ``/v1/clusters/{id}/tasks``).

Reads the task list as the cluster API returns it — ``{"tasks": [...]}`` — one
``{"task": {...}}`` per line, bare task objects, or a JSON array of them. A task has ``id``,
``cluster_id``, optional ``nodegroup_id``, ``started_at``, ``updated_at``, ``status`` and
``type`` (field names as in selectel/mks-go ``pkg/v1/task``).

Decisions:

- the event time is ``started_at`` (when the operation began); ``updated_at`` is kept in
  ``mks_updated_at``, and for finished tasks the duration in ``mks_duration_seconds``;
- ``type`` is kept as given in ``action`` even when it is not one the API documents;
- outcome from ``status``: DONE -> success, ERROR -> failure, anything else (IN_PROGRESS,
  UNKNOWN, new values) -> unknown; the raw status is in ``mks_status``;
- native id ``id:status:updated_at``: one task listed at two moments (IN_PROGRESS, then DONE)
  is two records on the timeline, while the same state in overlapping exports is stored once;
  a missing or placeholder ``id`` (:func:`~loaders.base.is_placeholder_id`) gives no native
  id: the ``event_uid`` comes from the raw text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from loaders.base import Item, JsonLoader, Parsed, Reject, is_placeholder_id
from loaders.parsing.batch_items import batch_items
from loaders.parsing.jsonreader import JsonRecord
from loaders.parsing.timeutil import TimeError, parse_iso
from loaders.schema.extras import MKS_CLUSTER

# documented task types -> what they do (for the message); unknown types are kept as given
TASK_TYPES: dict[str, str] = {
    "CREATE_CLUSTER": "cluster created",
    "DELETE_CLUSTER": "cluster deleted",
    "ROTATE_CERTS": "cluster PKI certificates rotated",
    "NODE_GROUP_RESIZE": "node group resized",
    "NODE_REINSTALL": "node reinstalled",
    "CLUSTER_RESIZE": "node groups added or removed",
    "UPGRADE_PATCH_VERSION": "Kubernetes patch version upgraded",
    "UPGRADE_MINOR_VERSION": "Kubernetes minor version upgraded",
    "UPDATE_NODEGROUP_LABELS": "node group labels updated",
    "UPGRADE_MASTERS_CONFIGURATION": "control plane configuration upgraded",
    "UPGRADE_CLUSTER_CONFIGURATION": "cluster configuration upgraded",
}
STATUS_OUTCOME: dict[str, str] = {"DONE": "success", "ERROR": "failure", "IN_PROGRESS": "unknown"}


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and value != "" else None


def is_task(value: Any) -> bool:
    """Whether a JSON value is one cluster task object."""
    return isinstance(value, dict) and "cluster_id" in value and (
        "type" in value or "status" in value or "started_at" in value)


class MksClusterLoader(JsonLoader):
    name = "mks_cluster"
    description = "Managed Kubernetes cluster operations (Selectel MKS tasks)"
    reads = ('cluster tasks JSON: {"tasks": [...]}, one {"task": {...}} per line, bare task '
             "objects or an array of them")
    prefix = MKS_CLUSTER.prefix
    record = "task (a list counts each task)"
    extra_columns = MKS_CLUSTER.columns

    def sniff(self, head: bytes, name: str) -> bool:
        text = head[:8192]
        if text.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"["):
            return False
        return (b'"cluster_id"' in text and b'"started_at"' in text
                and (b'"task"' in text or b'"tasks"' in text or b'"type"' in text))

    def from_json(self, value: Any, rec: JsonRecord) -> Iterator[Item]:
        if isinstance(value, dict) and isinstance(value.get("tasks"), list):
            yield from batch_items(rec.text, rec.line, "tasks", value["tasks"], self.task)
            return
        if isinstance(value, dict) and isinstance(value.get("task"), dict):
            value = value["task"]
        yield self.task(value, rec.line, rec.text)

    def task(self, task: Any, line: int, raw: str) -> Item:
        """Map one task object to a Parsed item (or a Reject saying why not).

        Args:
            task: the task object.
            line: the line where its record starts.
            raw: its record's text.

        Returns:
            A :class:`Parsed` or a :class:`Reject`.
        """
        if not is_task(task):
            return Reject(line, "not a cluster task (no cluster_id with type/status)", raw)
        warnings: list[str] = []
        started = updated = None
        try:
            started = parse_iso(task["started_at"]) if isinstance(task.get("started_at"), str) \
                else None
        except TimeError as exc:
            warnings.append(f"started_at: {exc}")
        try:
            updated = parse_iso(task["updated_at"]) if isinstance(task.get("updated_at"), str) \
                else None
        except TimeError as exc:
            warnings.append(f"updated_at: {exc}")
        ts = started or updated
        if ts is None:
            return Reject(line, "task without a readable started_at/updated_at", raw)
        if started is None:
            warnings.append("no started_at: the event time is updated_at")
        task_id, cluster = _text(task.get("id")), _text(task.get("cluster_id"))
        nodegroup = _text(task.get("nodegroup_id"))
        status = _text(task.get("status"))
        kind = _text(task.get("type"))
        duration = None
        if started and updated and status in ("DONE", "ERROR"):
            duration = (updated - started).total_seconds()
        target = f"{cluster}/{nodegroup}" if nodegroup else cluster
        what = TASK_TYPES.get(kind or "", "operation")
        fields: dict[str, Any] = {
            "timestamp": ts,
            "category": "cluster_operation",
            "action": kind,
            "outcome": STATUS_OUTCOME.get(status or "", "unknown"),
            "host": cluster,
            "target_type": "nodegroup" if nodegroup else "cluster",
            "target": target,
            "message": f"{kind or 'task'} ({what}) on {'node group ' if nodegroup else 'cluster '}"
                       f"{target}: {status or 'no status'}"
                       + (f" after {duration:.0f}s" if duration is not None else ""),
            "mks_task_id": task_id,
            "mks_cluster_id": cluster,
            "mks_nodegroup_id": nodegroup,
            "mks_status": status,
            "mks_updated_at": updated,
            "mks_duration_seconds": duration,
        }
        native = (None if is_placeholder_id(task_id)
                  else f"{task_id}:{status}:{task.get('updated_at')}")
        return Parsed(line, raw, fields, native_id=native, warnings=warnings or None)


LOADER = MksClusterLoader()
