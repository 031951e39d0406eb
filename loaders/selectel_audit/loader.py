"""Selectel cloud account audit log (audit-logs service: panel export, export script, API).

The event layout is the one documented at docs.selectel.ru (``audit-logs/events``): top-level
``event_id``, ``event_type``, ``event_time``, ``event_saved_time`` (ISO 8601 with zone;
milliseconds in exports, up to nanoseconds from the API), ``status``, ``error_code``,
``request_id``, ``source_type``, ``schema_version``, and three objects ``subject{}``,
``resource{}`` and ``request{}``. The older schema 1.0 writes the same data with prefixed keys
(``subject_id``, ``subject_is_authorized``, ``resource_changes_old_values``,
``request_remote_address`` …) inside those objects or beside them; both load to the same
columns (see :func:`selectel_audit_fields.flatten`).

Containers: a JSON array (manual export), JSON Lines (``events.txt`` of the export script),
API pages ``{"data": [...], "pagination": {"next_cursor": ...}}`` one per line or
concatenated, all read by the shared JSON reader; and a syslog capture where each line is
``<PRI>`` + the JSON event, optionally followed by NUL. A counted record is one event: a page
yields one item per element of ``data`` (its ``raw`` is the element re-serialized, its line
the page's first line). Plain JSON Lines of single events take a vectorized path
(:mod:`loaders.selectel_audit.fast`) that gives the same rows and leaves anything unusual to
:meth:`SelectelAuditLoader.event`.

The native id is ``event_id`` + ``event_saved_time`` in epoch milliseconds, so overlapping
exports, and API pages with nanosecond times, give the same ``event_uid`` for one event. A
missing or placeholder ``event_id`` (``0``, ``-``, the zero UUID…, see
:func:`~loaders.base.is_placeholder_id`) gives none: the ``event_uid`` comes from the raw
text, so events sharing such an id are not merged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from loaders.base import Item, Loader, Parsed, Reject, Source, is_placeholder_id
from loaders.parsing.cloud_fields import fast_iso, json_text, text_or_none
from loaders.parsing.inputs import text_head
from loaders.parsing.timeutil import TimeError, from_epoch
from loaders.parsing.values import canonical_ip
from loaders.schema.extras import SELECTEL_AUDIT
from loaders.selectel_audit.fast import jsonl_head, parse_jsonl
from loaders.selectel_audit.fields import categorize, flatten, outcome

# "<14>" syslog priority in front of the JSON event; a header may sit between it and "{"
_SYSLOG_PREFIX = re.compile(r"^<(\d{1,3})>")
_HEAD_SYSLOG = re.compile(r"\A[\s\x00]*<\d{1,3}>[^\n]*\{")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms_key(stamp: datetime) -> int:
    # The API gives up to nanoseconds and exports milliseconds: the dedupe key uses
    # epoch milliseconds so the same event from both gets the same event_uid.
    return (stamp - _EPOCH) // _MS


class SelectelAuditLoader(Loader):
    name = "selectel_audit"
    description = "Selectel cloud account audit log (audit-logs service)"
    reads = ("JSON array (panel export), JSON Lines (export script), API pages "
             '{"data":[...],"pagination":{...}}, syslog capture <14>{json} (+NUL); '
             "nested and schema 1.0 (prefixed keys) layouts")
    prefix = SELECTEL_AUDIT.prefix
    record = "event (an API page counts each event in data[])"
    extra_columns = SELECTEL_AUDIT.columns

    def sniff(self, head: bytes, name: str) -> bool:
        text = text_head(head[:8192])
        return '"event_id"' in text and '"event_saved_time"' in text

    def parse(self, src: Source) -> Iterator[Item]:
        if _HEAD_SYSLOG.match(text_head(src.head[:4096])):
            yield from self._parse_syslog(src)
            return
        if jsonl_head(src.head):
            yield from parse_jsonl(src, self._from_value)
            return
        for rec in src.json_records():
            if rec.error is not None:
                yield Reject(rec.line, rec.error, rec.text)
                continue
            yield from self._from_value(rec.value, rec.line, rec.text)

    def _parse_syslog(self, src: Source) -> Iterator[Item]:
        for line in src.lines():
            if line.text is None:
                yield Reject(line.number, line.warning or "unreadable line", "")
                continue
            body = line.text.rstrip("\x00 \t\r")
            if not body.strip():
                continue
            m = _SYSLOG_PREFIX.match(body)
            if m:  # the prefix is optional per line: a capture may mix relayed lines
                brace = body.find("{", m.end())
                if brace < 0:
                    yield Reject(line.number, "syslog message without a JSON event", line.text)
                    continue
                body = body[brace:]
            try:
                value = json.loads(body)
            except (json.JSONDecodeError, RecursionError) as exc:
                yield Reject(line.number, f"syslog message is not a JSON event: {exc}",
                             line.text)
                continue
            for item in self._from_value(value, line.number, line.raw or line.text):
                if isinstance(item, Parsed) and line.warning:
                    item.warnings = [*(item.warnings or []), line.warning]
                yield item

    def _from_value(self, value: Any, line: int, text: str) -> Iterator[Item]:
        """Items for one JSON value: an event, or an API page holding many."""
        if isinstance(value, dict) and isinstance(value.get("data"), list) \
                and "event_id" not in value:
            for ev in value["data"]:
                # a page element has no text of its own: keep it re-serialized
                raw = json.dumps(ev, ensure_ascii=False)
                yield self._safe_event(ev, line, raw)
            return
        yield self._safe_event(value, line, text)

    def _safe_event(self, ev: Any, line: int, raw: str) -> Item:
        if not isinstance(ev, dict) or not ("event_id" in ev or "event_type" in ev):
            kind = type(ev).__name__
            return Reject(line, f"not a Selectel audit event ({kind} without event_id or "
                                "event_type)", raw)
        try:
            return self.event(ev, line, raw)
        except Exception as exc:  # one bad event must not stop the file
            return Reject(line, f"cannot map event: {type(exc).__name__}: {exc}", raw)

    def event(self, ev: dict[str, Any], line: int, raw: str) -> Item:
        """Map one event (either layout) to a :class:`Parsed` or a :class:`Reject`.

        Args:
            ev: the event object.
            line: line where the event (or its page) starts.
            raw: the event's text.

        Returns:
            The item; events without a readable ``event_time`` and ``event_saved_time`` are
            rejected.
        """
        f = flatten(ev)
        warnings: list[str] = []
        times: dict[str, datetime | None] = {}
        for key in ("event_time", "event_saved_time"):
            stamp = f.get(key)
            times[key] = None
            try:
                if isinstance(stamp, str) and stamp.strip():
                    times[key] = fast_iso(stamp)
                elif isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
                    times[key] = from_epoch(stamp)  # not documented, but cheap to accept
            except TimeError as exc:
                warnings.append(f"{key}: {exc}")
        ts = times["event_time"] or times["event_saved_time"]
        if ts is None:
            why = "; ".join(warnings) or "no event_time"
            return Reject(line, f"audit event without a readable time ({why})", raw)
        ip, ip_warning = canonical_ip(f.get("request_remote_address"))
        if ip_warning:
            warnings.append(ip_warning)
        event_type = text_or_none(f.get("event_type"))
        status = text_or_none(f.get("status"))
        authorized = _bool(f.get("subject_is_authorized"))
        user = text_or_none(f.get("subject_name"))
        resource_type = text_or_none(f.get("resource_type"))
        target = text_or_none(f.get("resource_name")) or text_or_none(f.get("resource_id"))
        method = text_or_none(f.get("request_method"))
        result = outcome(status, authorized)
        fields: dict[str, Any] = {
            "timestamp": ts,
            "category": categorize(event_type, resource_type, method),
            "action": event_type,
            "outcome": result,
            "user": user,
            "user_id": text_or_none(f.get("subject_id")),
            "src_ip": ip,
            "user_agent": text_or_none(f.get("request_user_agent")),
            "target_type": resource_type,
            "target": target,
            "message": (f"{user or f.get('subject_id') or '?'} {event_type or '?'} "
                        f"{resource_type or ''} {target or ''} from {ip or '?'} -> "
                        f"{status or '?'}").replace("  ", " "),
            "selectel_status": status,
            "selectel_error_code": text_or_none(f.get("error_code")),
            "selectel_request_id": text_or_none(f.get("request_id")),
            "selectel_source_type": text_or_none(f.get("source_type")),
            "selectel_schema_version": text_or_none(f.get("schema_version")),
            "selectel_event_saved_time": times["event_saved_time"],
            "selectel_subject_type": text_or_none(f.get("subject_type")),
            "selectel_auth_provider": text_or_none(f.get("subject_auth_provider")),
            "selectel_is_authorized": authorized,
            "selectel_authorized_by": text_or_none(f.get("subject_authorized_by")),
            "selectel_credentials_fingerprint":
                text_or_none(f.get("subject_credentials_fingerprint")),
            "selectel_resource_id": text_or_none(f.get("resource_id")),
            "selectel_account_id": text_or_none(f.get("resource_account_id")),
            "selectel_project_id": text_or_none(f.get("resource_project_id")),
            "selectel_location": text_or_none(f.get("resource_location")),
            "selectel_details": json_text(f.get("resource_details")),
            "selectel_old_values": json_text(f.get("resource_old_values")),
            "selectel_new_values": json_text(f.get("resource_new_values")),
            "selectel_request_type": text_or_none(f.get("request_type")),
            "selectel_request_method": method,
            "selectel_request_path": text_or_none(f.get("request_path")),
            "selectel_request_parameters": text_or_none(f.get("request_parameters")),
        }
        event_id = text_or_none(f.get("event_id"))
        native = None
        if not is_placeholder_id(event_id):
            saved = times["event_saved_time"]
            native = f"{event_id}|{_ms_key(saved)}" if saved else event_id
        return Parsed(line, raw, fields, native_id=native, warnings=warnings or None)


def _bool(value: Any) -> bool | None:
    """``is_authorized`` as a bool; exports may write it as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


LOADER = SelectelAuditLoader()
