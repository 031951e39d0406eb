"""Kubernetes API server audit log (``audit.k8s.io`` Event objects as JSON Lines)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from loaders.base import Item, JsonLoader, Parsed, Reject
from loaders.jsonreader import JsonRecord
from loaders.schema import Column
from loaders.timeutil import TimeError, parse_iso

_SESSION_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
_ACCESS_RESOURCES = frozenset({"roles", "rolebindings", "clusterroles", "clusterrolebindings",
                               "serviceaccounts"})
_SECRET_RESOURCES = frozenset({"secrets", "configmaps"})
_READ_VERBS = frozenset({"get", "list", "watch"})


def categorize(verb: str, resource: str, subresource: str) -> str:
    """Category of an API request, from its verb and object (one readable rule each)."""
    if subresource in _SESSION_SUBRESOURCES:
        return "session"
    if resource in _SECRET_RESOURCES and verb in _READ_VERBS:
        return "data_access"
    if resource in _ACCESS_RESOURCES or subresource == "token":
        return "access_management"
    if verb in _READ_VERBS:
        return "resource_read"
    return "resource_change"


def outcome(code: int | None, decision: str | None) -> str:
    """success / failure / denied from the response code and the authorization decision."""
    if decision == "forbid" or code == 403:
        return "denied"
    if code is None:
        return "unknown"
    return "success" if code < 400 else "failure"


class K8sAuditLoader(JsonLoader):
    name = "k8s_audit"
    description = "Kubernetes API server audit log"
    reads = "audit.k8s.io Event objects as JSON Lines"
    prefix = "k8s_"
    extra_columns = (
        Column("k8s_verb", pa.string(), "API verb (get, list, create, …)"),
        Column("k8s_resource", pa.string(), "objectRef.resource"),
        Column("k8s_subresource", pa.string(), "objectRef.subresource"),
        Column("k8s_api_group", pa.string(), "objectRef.apiGroup"),
        Column("k8s_response_code", pa.int64(), "responseStatus.code"),
        Column("k8s_stage", pa.string(), "audit stage of the kept record"),
        Column("k8s_decision", pa.string(), "authorization.k8s.io/decision annotation"),
        Column("k8s_reason", pa.string(), "authorization.k8s.io/reason annotation"),
        Column("k8s_groups", pa.string(), "user.groups, comma-separated"),
        Column("k8s_request_uri", pa.string(), "requestURI"),
    )

    def sniff(self, head: bytes, name: str) -> bool:
        text = head[:4096]
        return b'"auditID"' in text and (b'"stage"' in text or b'"verb"' in text)

    def from_json(self, value: Any, rec: JsonRecord) -> Iterator[Item]:
        if not isinstance(value, dict) or "auditID" not in value:
            yield Reject(rec.line, "not a Kubernetes audit Event (no auditID)", rec.text)
            return
        yield self.event(value, rec)

    def event(self, ev: dict[str, Any], rec: JsonRecord) -> Item:
        warnings: list[str] = []
        stamp = ev.get("stageTimestamp") or ev.get("requestReceivedTimestamp") \
            or ev.get("timestamp")
        try:
            ts = parse_iso(stamp) if isinstance(stamp, str) else None
        except TimeError as exc:
            ts = None
            warnings.append(f"timestamp: {exc}")
        if ts is None:
            return Reject(rec.line, "audit event without a readable timestamp", rec.text)
        user = ev.get("user") or {}
        ref = ev.get("objectRef") or {}
        annotations = ev.get("annotations") or {}
        code = (ev.get("responseStatus") or {}).get("code")
        verb = str(ev.get("verb") or "")
        resource = str(ref.get("resource") or "")
        sub = str(ref.get("subresource") or "")
        decision = annotations.get("authorization.k8s.io/decision")
        ips = ev.get("sourceIPs") or []
        username = user.get("username")
        target = "/".join(p for p in (ref.get("namespace"), resource, ref.get("name"), sub) if p)
        action = f"{verb} {resource}/{sub}" if sub else f"{verb} {resource}".strip()
        fields = {
            "timestamp": ts,
            "category": categorize(verb, resource, sub),
            "action": action,
            "outcome": outcome(code if isinstance(code, int) else None, decision),
            "user": username,
            "user_id": user.get("uid"),
            "src_ip": ips[0] if ips else None,
            "user_agent": ev.get("userAgent"),
            "target_type": resource or None,
            "target": target or None,
            "k8s_namespace": ref.get("namespace"),
            "k8s_pod": ref.get("name") if resource == "pods" else None,
            "message": f"{username} {action} {target or ''} from {ips[0] if ips else '?'}"
                       f" -> {code}",
            "k8s_verb": verb or None,
            "k8s_resource": resource or None,
            "k8s_subresource": sub or None,
            "k8s_api_group": ref.get("apiGroup"),
            "k8s_response_code": code if isinstance(code, int) else None,
            "k8s_stage": ev.get("stage"),
            "k8s_decision": decision,
            "k8s_reason": annotations.get("authorization.k8s.io/reason"),
            "k8s_groups": ",".join(user.get("groups") or []) or None,
            "k8s_request_uri": ev.get("requestURI"),
        }
        return Parsed(rec.line, rec.text, fields, native_id=str(ev["auditID"]),
                      warnings=warnings or None)


LOADER = K8sAuditLoader()
