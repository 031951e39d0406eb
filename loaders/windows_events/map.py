"""Turn a :class:`WinEvent` into schema fields, through the table in windows_events_table.

Fields every event may have (user, image, pid, ProcessGuid, RuleName…) are read first for all
events, so an event id missing from the table still gets what can be known about it; then the
event's *shape* (:mod:`loaders.windows_events.shapes`) reads what its kind carries.
"""

from __future__ import annotations

import json
from datetime import datetime

from loaders.windows_events.catalog import EVENT_TABLE, SECURITY, SYSMON, Rule, family
from loaders.windows_events.model import CaseFields, WinEvent, to_int
from loaders.windows_events.shapes import SHAPES, Out, account

_AUDIT_SUCCESS, _AUDIT_FAILURE = 0x20000000000000, 0x10000000000000
_DETAIL_CHARS = 300


def audit_outcome(keywords: str | None) -> str | None:
    """success / failure from the Security audit keyword bits (or their names), else None."""
    if not keywords:
        return None
    low = keywords.lower()
    if "audit failure" in low:
        return "failure"
    if "audit success" in low:
        return "success"
    mask = to_int(keywords)
    if mask is None:
        return None
    mask &= 0xFFFFFFFFFFFFFFFF  # NXLog writes the mask as a signed decimal
    if mask & _AUDIT_FAILURE:
        return "failure"
    if mask & _AUDIT_SUCCESS:
        return "success"
    return None


def _message(out: Out, ev: WinEvent, rule: Rule | None) -> str:
    detail = None
    if out["category"] == "process" and out.get("process_command_line"):
        detail = out["process_command_line"]
    detail = detail or out.get("target") or out.get("process_image")
    if detail is None and ev.message:
        detail = ev.message.strip().splitlines()[0] if ev.message.strip() else None
    if detail and len(detail) > _DETAIL_CHARS:
        detail = detail[:_DETAIL_CHARS] + "…"
    text = f"{out['action']} by {out.get('user') or '?'}"
    if detail:
        text += f": {detail}"
    if out.get("src_ip"):
        text += f" from {out['src_ip']}"
    if ev.computer:
        text += f" on {ev.computer}"
    return text


def to_fields(ev: WinEvent, ts: datetime, utc_time: datetime | None) -> tuple[Out, list[str]]:
    """Schema fields (core and ``win_*``) of one event.

    Args:
        ev: the normalized event.
        ts: its resolved timestamp.
        utc_time: Sysmon ``UtcTime`` when present.

    Returns:
        (fields, warnings about damaged fields that were set to null)
    """
    f = CaseFields(ev.data)
    fam = family(ev.channel, ev.provider)
    rule = EVENT_TABLE.get((fam, ev.event_id)) if ev.event_id is not None else None
    warnings: list[str] = []
    logon_id = f.get("LogonId", "SubjectLogonId")
    out: Out = {
        "timestamp": ts,
        "category": rule.category if rule else "system",
        "action": rule.action if rule else f"{ev.provider or ev.channel or 'event'} "
                                           f"{'?' if ev.event_id is None else ev.event_id}",
        "user": f.get("User") or account(f, "Subject"),
        "user_id": f.get("SubjectUserSid") or (None if fam == SYSMON else ev.user_sid),
        "host": ev.computer,
        "process_image": f.get("Image"),
        "process_pid": to_int(f.get("ProcessId")),
        "process_command_line": f.get("CommandLine"),
        "session_id": logon_id,
        "win_logon_id": logon_id,
        "win_event_id": ev.event_id,
        "win_channel": ev.channel,
        "win_provider": ev.provider,
        "win_record_id": ev.record_id,
        "win_user_sid": ev.user_sid,
        "win_utc_time": utc_time,
        "win_rule_name": f.get("RuleName"),
        "win_process_guid": f.get("ProcessGuid"),
        "win_hashes": f.get("Hashes"),
        "win_event_data": json.dumps(ev.data, ensure_ascii=False, check_circular=False)
                           if ev.data else None,
    }
    SHAPES[rule.shape if rule else "generic"](f, out, ev, warnings)
    if out.get("user") is None and fam != SYSMON:
        out["user"] = ev.user_hint
    if out.get("outcome") is None:
        # Security says success/failure in its audit keywords; the other known events
        # (Sysmon, System, PowerShell, Task Scheduler) record something that happened.
        out["outcome"] = (rule.outcome if rule and rule.outcome else None) \
            or (audit_outcome(ev.keywords) if fam == SECURITY or ev.keywords else None) \
            or ("success" if rule and fam != SECURITY else None) \
            or (ev.outcome_hint if ev.outcome_hint in ("success", "failure") else None) \
            or "unknown"
    out["message"] = _message(out, ev, rule)
    return out, warnings
