"""Kubernetes API server audit log (``audit.k8s.io`` v1 / v1beta1 Event objects).

Reads Events as JSON Lines, pretty-printed documents, arrays or ``EventList`` batches, with or
without ``apiVersion``, at every level (Metadata / Request / RequestResponse), and Events
wrapped by shippers and managed clouds (Filebeat/Logstash/CloudWatch/fluent-bit ``message`` or
``log`` strings, AKS ``kube-audit`` diagnostic records, GKE Cloud Logging entries); see
:mod:`loaders.k8s_audit.wrappers`. One event is kept per request (its most complete stage, see
:mod:`loaders.k8s_audit.details`); the other stages are counted as duplicates. A request is
``auditID`` + verb + requestURI + user + impersonated user + ``requestReceivedTimestamp``
(:func:`~loaders.k8s_audit.details.request_key`), the native id of its ``event_uid``: records
that only share an ``auditID`` are separate events, in one file and across files.

The event time is ``requestReceivedTimestamp`` (the same in every stage of a request, so the
kept stage does not move the event on the timeline), else ``stageTimestamp``, ``timestamp``
(v1beta1) or ``metadata.creationTimestamp``.

JSON Lines of bare Events take a vectorized path with the same output
(:mod:`loaders.k8s_audit.fast`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from loaders.base import Item, JsonLoader, Parsed, Reject, Source
from loaders.k8s_audit.details import StageMerger, request_details, request_key
from loaders.k8s_audit.wrappers import Unwrapped, unwrap
from loaders.parsing.batch_items import compact_json, element_spans
from loaders.parsing.jsonreader import JsonRecord
from loaders.parsing.timeutil import TimeError, parse_iso
from loaders.parsing.values import canonical_ip, join
from loaders.schema.extras import K8S_AUDIT

_SESSION_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
_ACCESS_RESOURCES = frozenset({"roles", "rolebindings", "clusterroles", "clusterrolebindings",
                               "serviceaccounts"})
_SECRET_RESOURCES = frozenset({"secrets", "configmaps"})
_READ_VERBS = frozenset({"get", "list", "watch"})
_STAMP_KEYS = ("requestReceivedTimestamp", "stageTimestamp", "timestamp")


def categorize(verb: str, resource: str, subresource: str) -> str:
    """Category of an API request, from its verb and object (one readable rule each).

    Args:
        verb: API verb (``get``, ``create`` …).
        resource: objectRef.resource.
        subresource: objectRef.subresource, or ``""``.

    Returns:
        ``session`` (exec/attach/portforward/proxy), ``data_access`` (reading secrets or
        configmaps), ``access_management`` (RBAC objects, service accounts and their
        tokens), ``resource_read`` (other reads) or ``resource_change``.

    Example:
        >>> categorize("create", "pods", "exec"), categorize("list", "secrets", "")
        ('session', 'data_access')
    """
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
    """success / failure / denied from the response code and the authorization decision.

    Args:
        code: responseStatus.code (HTTP), if any.
        decision: the ``authorization.k8s.io/decision`` annotation, if any.

    Returns:
        ``denied`` for 403 or decision ``forbid``; ``unknown`` without a code; else
        ``success`` below 400 and ``failure`` from 400.
    """
    if decision == "forbid" or code == 403:
        return "denied"
    if code is None:
        return "unknown"
    return "success" if code < 400 else "failure"


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


class K8sAuditLoader(JsonLoader):
    name = "k8s_audit"
    description = "Kubernetes API server audit log"
    reads = ("audit.k8s.io v1/v1beta1 Events (JSON Lines, pretty, arrays, EventList batches); "
             "Events in shipper message/log strings, AKS kube-audit records, GKE Cloud "
             "Logging entries")
    prefix = K8S_AUDIT.prefix
    record = "audit Event (a batch counts each Event)"
    extra_columns = K8S_AUDIT.columns

    def sniff(self, head: bytes, name: str) -> bool:
        text = head[:16384]
        if text.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] not in (b"{", b"["):
            return False
        if b"auditID" in text:
            return b"stage" in text or b"verb" in text or b"requestURI" in text
        return b'"protoPayload"' in text and (b'"k8s.io"' in text or b'"io.k8s.' in text)

    def parse(self, src: Source) -> Iterator[Item]:
        # imported here: the fast path's columns use categorize and outcome from this module
        from loaders.k8s_audit.fast import jsonl_head, parse_jsonl

        tuning = src.options.tuning
        window, memory = tuning.k8s_stage_window, tuning.k8s_remembered_ids
        if jsonl_head(src.head):
            yield from parse_jsonl(src, self._from_value, StageMerger(window, memory))
            return
        merger: StageMerger[Parsed] = StageMerger(window, memory)
        for rec in src.json_records():
            if rec.error is not None:
                yield from merger.push(Reject(rec.line, rec.error, rec.text))
                continue
            for item in self.from_json(rec.value, rec):
                yield from merger.push(item)
        yield from merger.flush()

    def _from_value(self, value: Any, line: int, text: str) -> Iterator[Item]:
        return self.from_json(value, JsonRecord(line, text, value))

    def from_json(self, value: Any, rec: JsonRecord) -> Iterator[Item]:
        """Map one JSON value (one Event, a wrapper or a batch) without stage merging."""
        spans: list[tuple[int, str]] | None = None
        for found in unwrap(value):
            line, raw = rec.line, rec.text
            if found.batch_key is not None:
                if found.index == 0:
                    spans = element_spans(rec.text, found.batch_key, found.count)
                if spans is not None:
                    offset, raw = spans[found.index]
                    line += offset
                else:  # not locatable: the element re-serialized, at the batch's line
                    raw = compact_json(found.item)
            try:
                yield self.event(found, line, raw)
            except Exception as exc:  # one bad record must not stop the file
                yield Reject(line, f"cannot map record: {type(exc).__name__}: {exc}", raw)

    def event(self, found: Unwrapped, line: int, raw: str) -> Item:
        """Map one unwrapped Event to a Parsed item, or a Reject saying why not.

        Args:
            found: the Event and its wrapper (see :func:`loaders.k8s_audit.wrappers.unwrap`).
            line: the line where its record starts.
            raw: its record's text.

        Returns:
            A :class:`Parsed` with core and ``k8s_`` columns, or a :class:`Reject`.
        """
        ev = found.event
        if ev is None:
            return Reject(line, found.error or "not an audit Event", raw)
        warnings: list[str] = []
        ts = None
        stamps = [ev.get(k) for k in _STAMP_KEYS] + [(ev.get("metadata") or {})
                                                     .get("creationTimestamp")]
        for stamp in stamps:
            if not isinstance(stamp, str):
                continue
            try:
                ts = parse_iso(stamp)
                break
            except TimeError as exc:
                warnings.append(f"timestamp: {exc}")
        if ts is None:
            return Reject(line, "audit event without a readable timestamp "
                          "(requestReceivedTimestamp / stageTimestamp)", raw)
        user = ev.get("user") or {}
        imp = ev.get("impersonatedUser") or {}
        ref = ev.get("objectRef") or {}
        annotations = ev.get("annotations") or {}
        code = (ev.get("responseStatus") or {}).get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        verb = str(ev.get("verb") or "")
        resource = str(ref.get("resource") or "")
        sub = str(ref.get("subresource") or "")
        decision = _text(annotations.get("authorization.k8s.io/decision"))
        ips = ev.get("sourceIPs") or []
        # the first is the client (X-Forwarded-For's first), the rest proxies on the way
        src_ip, ip_warning = canonical_ip(ips[0] if isinstance(ips, list) and ips else None)
        if ip_warning:
            warnings.append(ip_warning)
        username = _text(user.get("username"))
        name = _text(ref.get("name")) or _created_name(ev)
        target = "/".join(str(p) for p in (ref.get("namespace"), resource, name, sub) if p)
        action = f"{verb} {resource}/{sub}" if sub else f"{verb} {resource}".strip()
        result = outcome(code, decision)
        who = username or "?"
        if imp.get("username"):
            who += f" as {imp['username']}"
        fields: dict[str, Any] = {
            "timestamp": ts,
            "category": categorize(verb, resource, sub),
            "action": action or None,
            "outcome": result,
            "user": username,
            "user_id": _text(user.get("uid")),
            "src_ip": src_ip,
            "user_agent": _text(ev.get("userAgent")),
            "host": found.host,
            "target_type": resource or None,
            "target": target or None,
            "k8s_namespace": _text(ref.get("namespace")),
            "k8s_pod": name if resource == "pods" else None,
            "message": f"{who} {action} {target or '-'} from {src_ip or '?'}: "
                       f"{code if code is not None else 'no response'} ({result})",
            "k8s_verb": verb or None,
            "k8s_resource": resource or None,
            "k8s_subresource": sub or None,
            "k8s_api_group": _text(ref.get("apiGroup")),
            "k8s_name": name,
            "k8s_response_code": code,
            "k8s_stage": _text(ev.get("stage")),
            "k8s_audit_level": _text(ev.get("level")),
            "k8s_decision": decision,
            "k8s_reason": _text(annotations.get("authorization.k8s.io/reason")),
            "k8s_groups": join(groups if isinstance(groups := user.get("groups"), list)
                               else [groups]),
            "k8s_impersonated_user": _text(imp.get("username")),
            "k8s_request_uri": _text(ev.get("requestURI")),
            "k8s_wrapper": found.wrapper or None,
        }
        fields.update(request_details(resource, ev.get("requestObject")))
        audit_id = ev.get("auditID")
        received = ev.get("requestReceivedTimestamp")
        if received in (None, ""):
            received = ev.get("timestamp")
        key = request_key(str(audit_id) if audit_id else None, verb,
                          _text(ev.get("requestURI")) or "", username or "",
                          fields["k8s_impersonated_user"] or "", _text(received) or "")
        return Parsed(line, raw, fields, native_id=key, warnings=warnings or None)


def _created_name(ev: dict[str, Any]) -> str | None:
    # a create request has no objectRef.name: the name is in the object (generated names
    # only in the response)
    for key in ("responseObject", "requestObject"):
        meta = (ev.get(key) or {}).get("metadata") if isinstance(ev.get(key), dict) else None
        if isinstance(meta, dict) and _text(meta.get("name")):
            return _text(meta.get("name"))
    return None


LOADER = K8sAuditLoader()
