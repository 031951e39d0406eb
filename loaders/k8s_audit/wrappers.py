"""Unwrapping Kubernetes audit events from the envelopes shippers and managed clouds add.

:func:`unwrap` turns one top-level JSON value into the audit Events it holds
(:class:`Unwrapped`: the Event, the name of the wrapper it came in, the cluster name the
wrapper gives, and for batch elements their position, so each keeps its own line and
text). The forms, in the order they are tried:

==================  ==========================================================================
wrapper             shape
==================  ==========================================================================
(none)              an ``audit.k8s.io`` Event (``auditID`` present; ``apiVersion`` optional)
``eventlist``       ``{"kind": "EventList", "items": [Event, …]}`` (webhook backend batches)
``records``         ``{"records": [record, …]}`` (Azure diagnostic-settings export)
``events``          ``{"events": [record, …]}`` (``aws logs filter-log-events`` output)
``aks``             ``{"category": "kube-audit…", "properties": {"log": "<Event JSON>"}}``
``gke``             Cloud Logging entry with ``protoPayload`` (``serviceName: k8s.io``); mapped
                    to an Event by :func:`gke_to_event`
``message``/``log`` a shipper record whose ``message`` / ``log`` string holds the Event JSON
                    (Filebeat, Logstash, CloudWatch, fluent-bit; ``log_s`` from Azure Log
                    Analytics ``AzureDiagnostics``)
==================  ==========================================================================

A batch element's wrapper name is the innermost one (an AKS record in ``records`` is ``aks``,
a CloudWatch message in ``events`` is ``message``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 4

# google.rpc.Code -> the HTTP status the API server would have answered (per google/rpc/code.proto)
_RPC_TO_HTTP: dict[int, int] = {
    0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400,
    10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
}
_VERSION = re.compile(r"^v\d+(?:(?:alpha|beta)\d+)?$")


class NotAuditEvent(ValueError):
    """A JSON value that neither is nor wraps a Kubernetes audit Event; the text says why."""


@dataclass(slots=True)
class Unwrapped:
    """One audit Event found in a JSON value, or why an element holds none.

    Attributes:
        event: the Event dict; None when ``error`` is set.
        wrapper: how it was wrapped (``""`` for a bare Event; see the module docstring).
        host: cluster name taken from the wrapper (AKS resourceId, GKE resource labels).
        item: the batch element it came from, when the value was a batch; None for a value
            that is one record.
        error: why this element is not an audit Event.
        batch_key: the key of the batch list (``items``, ``records``, ``events``), if any.
        index: the element's position in that list.
        count: the list's length.
    """

    event: dict[str, Any] | None
    wrapper: str = ""
    host: str | None = None
    item: Any = None
    error: str | None = None
    batch_key: str | None = None
    index: int = 0
    count: int = 0


def is_event(value: Any) -> bool:
    """Whether a JSON value is a bare audit Event."""
    return isinstance(value, dict) and "auditID" in value and (
        "verb" in value or "stage" in value or "requestURI" in value)


def unwrap(value: Any) -> Iterator[Unwrapped]:
    """The audit Events one top-level JSON value holds.

    A batch (EventList, ``records``, ``events``) yields one :class:`Unwrapped` per element,
    so one bad element is rejected alone.

    Args:
        value: a parsed top-level JSON value.

    Returns:
        An iterator of :class:`Unwrapped`.
    """
    if isinstance(value, dict):
        for key, wrapper in (("items", "eventlist"), ("records", "records"),
                             ("events", "events")):
            items = value.get(key)
            if isinstance(items, list) and (key != "items" or value.get("kind") == "EventList"):
                for index, item in enumerate(items):
                    found = Unwrapped(None, wrapper, item=item, batch_key=key, index=index,
                                      count=len(items))
                    try:
                        found.event, inner, found.host = unwrap_one(item, 1)
                    except NotAuditEvent as exc:
                        found.error = str(exc)
                    else:
                        found.wrapper = inner or wrapper
                    yield found
                return
    try:
        ev, wrapper, host = unwrap_one(value, 0)
    except NotAuditEvent as exc:
        yield Unwrapped(None, error=str(exc))
        return
    yield Unwrapped(ev, wrapper, host)


def unwrap_one(value: Any, depth: int) -> tuple[dict[str, Any], str, str | None]:
    """The one audit Event a record holds: (event, wrapper, host).

    Raises:
        NotAuditEvent: the record holds no audit Event; the text says why.
    """
    if depth > MAX_DEPTH:
        raise NotAuditEvent("audit event wrapped more deeply than expected")
    if not isinstance(value, dict):
        raise NotAuditEvent(f"a JSON {type(value).__name__}, not a Kubernetes audit Event")
    if is_event(value):
        return value, "", None
    category = value.get("category")
    props = value.get("properties")
    if isinstance(category, str) and category.startswith("kube-audit") and isinstance(props, dict):
        ev, _, _ = unwrap_one(_json_in(props.get("log"), "properties.log"), depth + 1)
        return ev, "aks", _aks_cluster(value.get("resourceId"))
    payload = value.get("protoPayload")
    if isinstance(payload, dict):
        return gke_to_event(value, payload), "gke", _gke_cluster(value)
    for key in ("message", "log", "log_s"):  # log_s: AzureDiagnostics in Log Analytics
        text = value.get(key)
        if isinstance(text, dict) or (isinstance(text, str) and text.lstrip().startswith("{")):
            ev, inner, host = unwrap_one(_json_in(text, key), depth + 1)
            return ev, inner or key, host
    raise NotAuditEvent("not a Kubernetes audit Event (no auditID) and no known wrapper "
                        "(EventList, AKS kube-audit, GKE protoPayload, message/log string)")


def _json_in(text: Any, where: str) -> Any:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str):
        raise NotAuditEvent(f"{where} is {type(text).__name__}, not an audit Event string")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise NotAuditEvent(f"{where} holds no audit Event: invalid JSON ({exc})") from None


def _aks_cluster(resource_id: Any) -> str | None:
    # /SUBSCRIPTIONS/<id>/RESOURCEGROUPS/<rg>/PROVIDERS/
    #   MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/<name>: the cluster is the last part
    if not isinstance(resource_id, str) or "/" not in resource_id:
        return None
    return resource_id.rstrip("/").rsplit("/", 1)[-1] or None


def _gke_cluster(entry: dict[str, Any]) -> str | None:
    labels = (entry.get("resource") or {}).get("labels") or {}
    name = labels.get("cluster_name")
    return str(name) if name else None


def parse_method(method: str) -> tuple[str | None, str, str, str]:
    """Split a GKE ``methodName`` into (apiGroup, resource, subresource, verb).

    Example:
        >>> parse_method("io.k8s.core.v1.pods.exec.create")
        (None, 'pods', 'exec', 'create')
        >>> parse_method("io.k8s.authorization.rbac.v1.clusterrolebindings.create")
        ('rbac.authorization.k8s.io', 'clusterrolebindings', '', 'create')
    """
    parts = method.split(".")
    if parts[:2] == ["io", "k8s"]:
        parts = parts[2:]
    at = next((i for i, p in enumerate(parts) if _VERSION.match(p)), None)
    if at is None or len(parts) - at < 3:
        return None, "", "", parts[-1] if parts else ""
    group_parts, rest = parts[:at], parts[at + 1:]
    if group_parts in ([], ["core"]):
        group = None
    else:
        # GKE writes k8s.io groups reversed without the suffix (rbac.authorization.k8s.io ->
        # authorization.rbac); single words (apps, batch) are the group itself.
        group = ".".join(reversed(group_parts)) + (".k8s.io" if len(group_parts) > 1 else "")
    verb = rest[-1]
    resource = rest[0]
    sub = rest[1] if len(rest) > 2 else ""
    return group, resource, sub, verb


def parse_resource_name(name: str, resource: str) -> dict[str, str]:
    """objectRef fields from a GKE ``resourceName`` (``core/v1/namespaces/ns/pods/p/exec``).

    Args:
        name: the resourceName.
        resource: the resource named by ``methodName`` (tells ``namespaces/x`` from a
            namespaced path).

    Returns:
        ``apiGroup``, ``namespace``, ``resource``, ``name``, ``subresource`` where present.
    """
    parts = [p for p in name.split("/") if p]
    out: dict[str, str] = {}
    if len(parts) < 3 or not _VERSION.match(parts[1]):
        return out
    if parts[0] != "core":
        out["apiGroup"] = parts[0]
    rest = parts[2:]
    if rest[0] == "namespaces" and len(rest) >= 3 and resource != "namespaces":
        out["namespace"] = rest[1]
        rest = rest[2:]
    for key, part in zip(("resource", "name", "subresource"), rest, strict=False):
        out[key] = part
    return out


def gke_to_event(entry: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Map a GKE Cloud Logging audit entry to the ``audit.k8s.io`` Event shape.

    ``status.code`` is a google.rpc code; it becomes the HTTP code the API server answered
    (7 PERMISSION_DENIED -> 403). A ``status`` without ``code`` is OK (proto3 omits zero).
    ``authorizationInfo[].granted == false`` on any entry makes the decision ``forbid``
    unless the entry's ``authorization.k8s.io/decision`` label says otherwise.

    Raises:
        NotAuditEvent: the entry is not a Kubernetes one (no ``io.k8s.`` method).
    """
    method = str(payload.get("methodName") or "")
    if payload.get("serviceName") != "k8s.io" and not method.startswith("io.k8s."):
        raise NotAuditEvent(f"Cloud Logging entry for {payload.get('serviceName')!r}, "
                            "not a GKE Kubernetes audit entry (serviceName k8s.io)")
    group, resource, sub, verb = parse_method(method)
    ref: dict[str, str] = {"resource": resource} if resource else {}
    if sub:
        ref["subresource"] = sub
    if group:
        ref["apiGroup"] = group
    ref.update(parse_resource_name(str(payload.get("resourceName") or ""), resource))
    auth = payload.get("authenticationInfo") or {}
    meta = payload.get("requestMetadata") or {}
    status = payload.get("status")
    code = None
    if isinstance(status, dict):
        rpc = status.get("code", 0)
        code = _RPC_TO_HTTP.get(rpc, 500) if isinstance(rpc, int) else None
    labels = entry.get("labels") or {}
    annotations = {k: v for k, v in labels.items() if k.startswith("authorization.k8s.io/")}
    grants = [a.get("granted") for a in payload.get("authorizationInfo") or []
              if isinstance(a, dict)]
    if "authorization.k8s.io/decision" not in annotations and grants:
        annotations["authorization.k8s.io/decision"] = (
            "forbid" if any(g is False for g in grants) else "allow")
    event: dict[str, Any] = {
        "auditID": entry.get("insertId") or (entry.get("operation") or {}).get("id"),
        "verb": verb,
        "user": {"username": auth.get("principalEmail") or auth.get("principalSubject")},
        "sourceIPs": [meta["callerIp"]] if meta.get("callerIp") else [],
        "userAgent": meta.get("callerSuppliedUserAgent"),
        "objectRef": ref,
        "requestReceivedTimestamp": entry.get("timestamp"),
        "annotations": annotations,
        "requestObject": payload.get("request"),
    }
    if code is not None:
        event["responseStatus"] = {"code": code}
    return event
