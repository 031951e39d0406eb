"""OpenStack CADF audit events (Keystone notifications, keystonemiddleware audit).

A CADF event (DMTF DSP0262, as pyCADF writes it) has ``typeURI``, ``id``, ``eventType``
(activity / monitor / control), ``eventTime`` (``+0000`` or ``+00:00`` offsets), ``action``,
``outcome``, ``initiator{id, name, typeURI, project_id, host{address, agent}, credential}``,
``target{typeURI, id, name}``, ``observer`` and an optional ``reason{reasonCode,
reasonType}``. It comes bare, inside an oslo notification envelope (``event_type``,
``payload``, ``publisher_id``, ``timestamp``, ``message_id``), or inside the oslo.messaging
v2 wrapper ``{"oslo.version": "2.0", "oslo.message": "<envelope as a JSON string>"}``.

A counted record is one JSON value. keystonemiddleware emits two events per API call with
the same ``id`` (request ``pending``, response with the outcome), so the native id is
``id`` + ``eventTime`` + ``action`` + ``outcome``; a missing or placeholder ``id`` (``0``,
``-``, the zero UUID…, see :func:`~loaders.base.is_placeholder_id`) gives none, so the
``event_uid`` comes from the raw text and events sharing such an id are not merged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from loaders.base import Item, JsonLoader, Parsed, Reject, is_placeholder_id
from loaders.parsing.cloud_fields import text_or_none
from loaders.parsing.inputs import text_head
from loaders.parsing.jsonreader import JsonRecord
from loaders.parsing.timeutil import TimeError, parse_iso
from loaders.parsing.values import canonical_ip
from loaders.schema.extras import OPENSTACK_CADF

OUTCOMES: dict[str, str] = {"success": "success", "failure": "failure", "pending": "unknown",
                            "unknown": "unknown"}
# reasonCode (HTTP status) values that mean the policy refused the request
DENIED_CODES = frozenset({"401", "403"})

# Keystone / CADF resource kinds whose changes are access management (last typeURI parts,
# e.g. data/security/account/user, service/security/account/user, data/security/role)
IDENTITY_KINDS = frozenset({
    "user", "users", "role", "roles", "project", "projects", "domain", "domains", "group",
    "groups", "credential", "credentials", "trust", "trusts", "policy", "policies",
    "role_assignment", "application_credential", "application_credentials", "ec2",
    "ec2-credentials", "access_rule", "access_rules", "identity_provider", "mapping",
    "protocol", "service_provider", "consumer", "token", "tokens",
})
SENSITIVE_KINDS = frozenset({"secret", "secrets", "key", "keys", "keypair", "os-keypairs",
                             "credential", "credentials", "certificate", "certificates",
                             "containers", "key-manager"})
_READ = frozenset({"read", "list", "get"})
_CHANGE = frozenset({"create", "created", "update", "updated", "delete", "deleted", "add",
                     "remove", "enable", "disable", "undelete"})


def categorize(action: str, target_type: str) -> str:
    """Category from the CADF action and the target ``typeURI``, one rule per line.

    Example:
        >>> categorize("created.project", "data/security/project")
        'access_management'
    """
    verbs = frozenset(action.lower().replace(".", "/").split("/"))
    kinds = frozenset(target_type.lower().split("/"))
    if "authenticate" in verbs or "login" in verbs:
        return "authentication"
    if "logout" in verbs:
        return "session"
    if verbs & _READ and kinds & SENSITIVE_KINDS:
        return "data_access"
    if kinds & IDENTITY_KINDS and (verbs & _CHANGE or "security" in kinds):
        return "access_management"
    if "role_assignment" in verbs or verbs & {"assign", "revoke", "grant"}:
        return "access_management"
    if verbs & _READ:
        return "resource_read"
    return "resource_change"


def outcome(value: str | None, reason_code: str | None) -> str:
    """success / failure / denied / unknown; reason code 401 or 403 means denied."""
    if reason_code in DENIED_CODES:
        return "denied"
    return OUTCOMES.get((value or "").lower(), "unknown")


def _unwrap(value: Any) -> tuple[dict[str, Any] | None, dict[str, Any], str | None]:
    """The CADF event, its envelope (or {}), and why there is no event."""
    if isinstance(value, dict) and isinstance(value.get("oslo.message"), str):
        try:
            value = json.loads(value["oslo.message"])
        except json.JSONDecodeError as exc:
            return None, {}, f"oslo.message is not JSON: {exc}"
    if not isinstance(value, dict):
        return None, {}, f"not a CADF event ({type(value).__name__})"
    envelope: dict[str, Any] = {}
    if isinstance(value.get("payload"), dict):
        envelope, value = value, value["payload"]
        if "action" not in value and "eventType" not in value:
            return None, envelope, ("notification payload is not a CADF event (no action "
                                    "or eventType; Keystone writes CADF payloads only with "
                                    "notification_format = cadf)")
    if "action" not in value or not ("eventType" in value or "typeURI" in value):
        return None, envelope, "not a CADF event (no action and eventType/typeURI)"
    return value, envelope, None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class OpenStackCadfLoader(JsonLoader):
    name = "openstack_cadf"
    description = "OpenStack CADF audit events (Keystone, keystonemiddleware audit)"
    reads = ("CADF events as JSON / JSON Lines / arrays: bare, in oslo notification "
             "envelopes (payload), or oslo.messaging v2 {\"oslo.message\": \"...\"}")
    prefix = OPENSTACK_CADF.prefix
    extra_columns = OPENSTACK_CADF.columns

    def sniff(self, head: bytes, name: str) -> bool:
        text = text_head(head[:8192])
        if "schemas.dmtf.org/cloud/audit" in text:
            return True
        return '"eventType"' in text and '"initiator"' in text and '"action"' in text

    def from_json(self, value: Any, rec: JsonRecord) -> Iterator[Item]:
        ev, env, why = _unwrap(value)
        if ev is None:
            yield Reject(rec.line, why or "not a CADF event", rec.text)
            return
        yield self.event(ev, env, rec)

    def event(self, ev: dict[str, Any], env: dict[str, Any], rec: JsonRecord) -> Item:
        """Map one CADF event and its envelope to a :class:`Parsed` or a :class:`Reject`.

        Args:
            ev: the CADF event.
            env: the oslo notification envelope, or {} for a bare event.
            rec: the JSON value as read.

        Returns:
            The item; an event with neither a readable ``eventTime`` nor envelope
            ``timestamp`` is rejected.
        """
        warnings: list[str] = []
        ts = None
        for key, stamp in (("eventTime", ev.get("eventTime")),
                           ("timestamp", env.get("timestamp"))):
            if isinstance(stamp, str) and stamp.strip():
                try:
                    # eventTime is CADF's (zoned); the oslo envelope's is UTC without zone
                    ts = parse_iso(stamp, naive_is_utc=key == "timestamp")
                    break
                except TimeError as exc:
                    warnings.append(f"{key}: {exc}")
        if ts is None:
            return Reject(rec.line, "CADF event without a readable eventTime"
                          + (f" ({'; '.join(warnings)})" if warnings else ""), rec.text)
        initiator, target = _obj(ev.get("initiator")), _obj(ev.get("target"))
        observer, reason = _obj(ev.get("observer")), _obj(ev.get("reason"))
        host = _obj(initiator.get("host"))
        credential = _obj(initiator.get("credential"))
        ip, ip_warning = canonical_ip(host.get("address"))
        if ip_warning:
            warnings.append(ip_warning)
        action = text_or_none(ev.get("action")) or ""
        target_type = text_or_none(target.get("typeURI"))
        target_name = text_or_none(target.get("name")) or text_or_none(target.get("id"))
        reason_code = text_or_none(reason.get("reasonCode"))
        raw_outcome = text_or_none(ev.get("outcome"))
        user = text_or_none(initiator.get("name"))
        user_id = text_or_none(initiator.get("id"))
        publisher = text_or_none(env.get("publisher_id"))
        fields: dict[str, Any] = {
            "timestamp": ts,
            "category": categorize(action, target_type or ""),
            "action": action or None,
            "outcome": outcome(raw_outcome, reason_code),
            "user": user,
            "user_id": user_id,
            "src_ip": ip,
            "user_agent": text_or_none(host.get("agent")),
            # publisher_id is "<service>.<host>" (identity.host1234)
            "host": publisher.split(".", 1)[1] if publisher and "." in publisher else None,
            "target_type": target_type,
            "target": target_name,
            "message": (f"{user or user_id or '?'} {action or '?'} {target_type or ''} "
                        f"{target_name or ''} from {ip or '?'} -> {raw_outcome or '?'}"
                        + (f" ({reason_code})" if reason_code else "")).replace("  ", " "),
            "cadf_event_id": text_or_none(ev.get("id")),
            "cadf_event_type": text_or_none(ev.get("eventType")),
            "cadf_outcome": raw_outcome,
            "cadf_reason_code": reason_code,
            "cadf_reason_type": text_or_none(reason.get("reasonType")),
            "cadf_initiator_type": text_or_none(initiator.get("typeURI")),
            "cadf_project_id": text_or_none(initiator.get("project_id")),
            "cadf_domain_id": text_or_none(initiator.get("domain_id")),
            "cadf_identity_provider": text_or_none(credential.get("identity_provider")),
            "cadf_target_id": text_or_none(target.get("id")),
            "cadf_observer_id": text_or_none(observer.get("id")),
            "cadf_observer_type": text_or_none(observer.get("typeURI")),
            "cadf_request_path": text_or_none(ev.get("requestPath")),
            "cadf_correlation_id": _correlation(ev.get("tags")),
            "cadf_resource_info": text_or_none(ev.get("resource_info")),
            "cadf_notification_type": text_or_none(env.get("event_type")),
            "cadf_publisher_id": publisher,
            "cadf_message_id": text_or_none(env.get("message_id")),
        }
        event_id = fields["cadf_event_id"]
        native = (None if is_placeholder_id(event_id)
                  else f"{event_id}|{ev.get('eventTime')}|{action}|{raw_outcome}")
        return Parsed(rec.line, rec.text, fields, native_id=native, warnings=warnings or None)


def _correlation(tags: Any) -> str | None:
    """``correlation_id?value=<id>`` from the tags keystonemiddleware writes."""
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, str) and tag.startswith("correlation_id?value="):
                return tag.split("=", 1)[1] or None
    return None


LOADER = OpenStackCadfLoader()
