"""Kubernetes cluster events (``kubectl get events -o json``, watch streams).

Reads core/v1 Events and events.k8s.io/v1 Events (``note``, ``regarding``,
``reportingController``, ``deprecatedCount`` …), alone, in an ``EventList`` (or any list
with ``items``), as watch-stream lines ``{"type": "ADDED", "object": {…}}`` from
``kubectl get events -o json --watch`` or the API, and as Cloud Logging entries whose
``jsonPayload`` is an Event (GKE event exporter).

Decisions:

- category ``system``: events are reports by cluster components (scheduler, kubelet,
  controllers) about objects, not operator actions; ``cluster_operation`` is kept for the
  managed-cluster operations of ``mks_cluster``.
- outcome: type ``Warning`` -> ``failure`` (failed scheduling, back-off, failed mount,
  unhealthy probe), ``Normal`` -> ``success``, anything else ``unknown``.
- time: the latest observation (``series.lastObservedTime``, ``lastTimestamp`` /
  ``deprecatedLastTimestamp``), else ``eventTime``, ``firstTimestamp``, and last
  ``metadata.creationTimestamp``; the first observation is kept in ``k8s_event_first_seen``.
- native id ``metadata.uid:resourceVersion``: the API server updates a repeating event in
  place (higher ``count``, new ``resourceVersion``), so each update is its own record on the
  timeline, while the same version listed in two exports (or ADDED/DELETED of one version in
  a watch) is stored once. Without a ``resourceVersion`` the native id is ``uid::count:time``
  (the updates still differ); a missing or placeholder ``uid``
  (:func:`~loaders.base.is_placeholder_id`) gives none: the ``event_uid`` comes from the raw
  text.
- watch ``BOOKMARK`` lines carry no event and are skipped; ``ERROR`` lines are rejected with
  the Status message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from loaders.base import Item, JsonLoader, Parsed, Reject, is_placeholder_id
from loaders.parsing.batch_items import batch_items
from loaders.parsing.batch_items import dig as _dig
from loaders.parsing.jsonreader import JsonRecord
from loaders.parsing.timeutil import TimeError, parse_iso
from loaders.schema.extras import K8S_EVENTS

_OUTCOME = {"Warning": "failure", "Normal": "success"}
_LAST = (("series", "lastObservedTime"), ("lastTimestamp",), ("deprecatedLastTimestamp",),
         ("eventTime",), ("firstTimestamp",), ("deprecatedFirstTimestamp",),
         ("metadata", "creationTimestamp"))
_FIRST = (("eventTime",), ("firstTimestamp",), ("deprecatedFirstTimestamp",))
_OBJECT_KEY = re.compile(rb'"(?:involvedObject|regarding)"\s*:\s*\{')
_WATCH_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED"})




def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and value != "" else None


def is_event(value: Any) -> bool:
    """Whether a JSON value is a core/v1 or events.k8s.io/v1 Event."""
    return isinstance(value, dict) and (
        isinstance(value.get("involvedObject"), dict) or isinstance(value.get("regarding"), dict)
        or (value.get("kind") == "Event" and "reason" in value))


def _first_time(ev: dict[str, Any], paths: tuple[tuple[str, ...], ...],
                warnings: list[str]) -> datetime | None:
    for path in paths:
        stamp = _dig(ev, path)
        if not isinstance(stamp, str) or not stamp:
            continue
        try:
            return parse_iso(stamp)
        except TimeError as exc:
            warnings.append(f"{'.'.join(path)}: {exc}")
    return None


class K8sEventsLoader(JsonLoader):
    name = "k8s_events"
    description = "Kubernetes cluster events"
    reads = ("kubectl get events -o json (core/v1 EventList, events.k8s.io/v1), watch streams "
             "({type, object} per line), GKE event-exporter jsonPayload entries")
    prefix = K8S_EVENTS.prefix
    record = "Event (a list counts each item)"
    extra_columns = K8S_EVENTS.columns

    def sniff(self, head: bytes, name: str) -> bool:
        text = head[:16384]
        if text.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"["):
            return False
        if b"auditID" in text or b"protoPayload" in text:
            return False  # an audit event may carry an Event as its requestObject
        return bool(_OBJECT_KEY.search(text)) and b'"reason"' in text

    def from_json(self, value: Any, rec: JsonRecord) -> Iterator[Item]:
        if isinstance(value, dict) and isinstance(value.get("items"), list):
            yield from batch_items(rec.text, rec.line, "items", value["items"],
                                   lambda item, line, raw: self.event(item, line, raw, None))
            return
        if isinstance(value, dict) and isinstance(value.get("object"), dict) and "type" in value:
            kind = value["type"]
            if kind == "BOOKMARK":
                return
            if kind == "ERROR":
                status = value["object"]
                yield Reject(rec.line, f"watch stream error: {status.get('message') or status}",
                             rec.text)
                return
            yield self.event(value["object"], rec.line, rec.text,
                             _text(kind) if kind in _WATCH_TYPES else None)
            return
        if isinstance(value, dict) and isinstance(value.get("jsonPayload"), dict):
            value = value["jsonPayload"]
        yield self.event(value, rec.line, rec.text, None)

    def event(self, ev: Any, line: int, raw: str, watch: str | None) -> Item:
        """Map one Event object to a Parsed item (or a Reject saying why not).

        Args:
            ev: the Event object.
            line: the line where its record starts.
            raw: its record's text.
            watch: the watch-stream change type, if it came from a watch stream.

        Returns:
            A :class:`Parsed` or a :class:`Reject`.
        """
        if not is_event(ev):
            return Reject(line, "not a Kubernetes Event (no involvedObject/regarding)", raw)
        warnings: list[str] = []
        ts = _first_time(ev, _LAST, warnings)
        if ts is None:
            return Reject(line, "event without a readable time (lastTimestamp, eventTime, "
                          "firstTimestamp, metadata.creationTimestamp)", raw)
        first = _first_time(ev, _FIRST, warnings)
        meta = ev.get("metadata") or {}
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        source = ev.get("source") or ev.get("deprecatedSource") or {}
        component = _text(source.get("component")) or _text(ev.get("reportingController")) \
            or _text(ev.get("reportingComponent"))
        host = _text(source.get("host")) or _text(ev.get("reportingInstance"))
        count = ev.get("count") or _dig(ev, ("series", "count")) or ev.get("deprecatedCount")
        count = count if isinstance(count, int) and not isinstance(count, bool) else None
        kind = _text(obj.get("kind"))
        namespace = _text(obj.get("namespace"))  # Node events sit in "default": not theirs
        name = _text(obj.get("name"))
        field_path = _text(obj.get("fieldPath"))
        reason = _text(ev.get("reason"))
        etype = _text(ev.get("type"))
        note = _text(ev.get("message")) or _text(ev.get("note"))
        target = "/".join(p for p in (namespace, name) if p) or None
        if field_path:
            target = f"{target or ''}:{field_path}"
        what = f"{kind or 'object'} {target or '?'}"
        times = f" (x{count})" if count and count > 1 else ""
        fields: dict[str, Any] = {
            "timestamp": ts,
            "category": "system",
            "action": reason,
            "outcome": _OUTCOME.get(etype or "", "unknown"),
            "host": host,
            "target_type": kind,
            "target": target,
            "k8s_namespace": namespace,
            "k8s_pod": name if kind == "Pod" else None,
            "message": f"{etype or 'Event'} {reason or '-'} {what}{times} by "
                       f"{component or '?'}: {note or ''}".rstrip(": "),
            "k8s_event_type": etype,
            "k8s_event_count": count,
            "k8s_event_source": component,
            "k8s_event_first_seen": first,
            "k8s_involved_kind": kind,
            "k8s_watch_type": watch,
            "k8s_name": name,
        }
        uid, version = _text(meta.get("uid")), _text(meta.get("resourceVersion"))
        native = None
        if not is_placeholder_id(uid):
            # without a resourceVersion (stripped by some exporters), the updates of one
            # event differ by their count and latest observation
            native = f"{uid}:{version}" if version else f"{uid}::{count}:{ts.isoformat()}"
        return Parsed(line, raw, fields, native_id=native, warnings=warnings or None)


LOADER = K8sEventsLoader()
