"""Column mapping of the vectorized ``k8s_audit`` path (see :mod:`loaders.k8s_audit.fast`).

Each column is computed with Arrow compute to exactly what :meth:`K8sAuditLoader.event` gives
a bare Event; rows it cannot match exactly are marked odd and left to that per-event path.
Categories and outcomes call the per-event functions once per distinct combination; the
request details follow :func:`~loaders.k8s_audit.details.request_details` with list kernels
(``tests/test_k8s_audit_fast.py`` compares both on pod specs and role bindings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaders.base import PLACEHOLDER_ID_RE2
from loaders.k8s_audit.details import _BINDINGS, _POD_SPEC_PATHS, KEY_SEP
from loaders.k8s_audit.loader import categorize, outcome
from loaders.parsing.jsonl_blocks import BLANK_TEXT, ISO_TEXT
from loaders.parsing.values import canonical_ips

# Python's decoder fails at a depth of ~1000 minus the caller's stack depth (Arrow has no
# limit): a row with more opening brackets than this may be too deep for it
MAX_OPENERS = 400
_S = pa.string()
_NULL = pa.scalar(None, _S)
_TIMESTAMP = pa.timestamp("us", tz="UTC")
# a character str.strip() removes, at either end (BLANK_TEXT is "^[…]*$")
_EDGE_BLANK = f"^{BLANK_TEXT[1:-2]}|{BLANK_TEXT[1:-2]}$"
_DETAIL_TYPES = {"k8s_privileged": pa.bool_(), "k8s_host_network": pa.bool_(),
                 "k8s_host_pid": pa.bool_(), "k8s_host_ipc": pa.bool_(), "k8s_host_mounts": _S,
                 "k8s_images": _S, "k8s_role_ref": _S, "k8s_subjects": _S}
_DECISION, _REASON = "authorization.k8s.io/decision", "authorization.k8s.io/reason"


def _struct(**fields: pa.DataType) -> pa.DataType:
    return pa.struct(list(fields.items()))


_CONTAINERS = pa.list_(_struct(image=_S, securityContext=_struct(privileged=pa.bool_())))
_POD_FIELDS = {"initContainers": _CONTAINERS, "containers": _CONTAINERS,
               "ephemeralContainers": _CONTAINERS, "hostNetwork": pa.bool_(),
               "hostPID": pa.bool_(), "hostIPC": pa.bool_(),
               "volumes": pa.list_(_struct(hostPath=_struct(path=_S)))}
_TEMPLATE = _struct(spec=_struct(**_POD_FIELDS))
_NAMED = _struct(name=_S)

SCHEMA = pa.schema([
    *((k, _S) for k in ("auditID", "verb", "stage", "level", "requestURI", "userAgent",
                        "requestReceivedTimestamp", "stageTimestamp", "timestamp")),
    ("metadata", _struct(creationTimestamp=_S)),
    ("user", _struct(username=_S, uid=_S, groups=pa.list_(_S))),
    ("impersonatedUser", _struct(username=_S)),
    ("sourceIPs", pa.list_(_S)),
    ("objectRef", _struct(resource=_S, subresource=_S, namespace=_S, name=_S, apiGroup=_S)),
    ("responseStatus", _struct(code=pa.int64())),
    ("annotations", pa.struct([(_DECISION, _S), (_REASON, _S)])),
    ("requestObject", _struct(
        metadata=_NAMED, roleRef=_struct(kind=_S, name=_S),
        subjects=pa.list_(_struct(kind=_S, namespace=_S, name=_S)),
        spec=_struct(**_POD_FIELDS, template=_TEMPLATE,
                     jobTemplate=_struct(spec=_struct(template=_TEMPLATE))))),
    ("responseObject", _struct(metadata=_NAMED)),
    # batches (unwrap reads these lists first): any value refuses the block
    *((k, pa.null()) for k in ("items", "records", "events")),
])
"""What Arrow reads of each line; a value of another type refuses the whole block."""


def _text(arr: pa.Array) -> pa.Array:
    """``k8s_audit._text`` of a string column: empty text is null."""
    return pc.if_else(pc.equal(arr, ""), _NULL, arr)


def _field(arr: pa.Array, *path: str) -> pa.Array:
    for name in path:
        arr = pc.struct_field(arr, name)
    return arr


def _mask(arr: pa.Array, null: bool = False) -> np.ndarray:
    return pc.fill_null(arr, null).to_numpy(zero_copy_only=False)


def _per_combination(fn: Callable[..., Any], type_: pa.DataType, *cols: pa.Array) -> pa.Array:
    """``fn`` of each row's values, called once per distinct combination."""
    key = np.zeros(len(cols[0]), np.int64)
    values = []
    for col in cols:
        enc = pc.dictionary_encode(col)
        distinct = [*enc.dictionary.to_pylist(), None]
        codes = pc.fill_null(enc.indices.cast(pa.int64()), len(distinct) - 1)
        key = key * len(distinct) + codes.to_numpy(zero_copy_only=False)
        values.append(distinct)
    uniq, inverse = np.unique(key, return_inverse=True)
    results = []
    for k in uniq.tolist():
        args = []
        for distinct in reversed(values):
            k, code = divmod(k, len(distinct))
            args.append(distinct[code])
        results.append(fn(*reversed(args)))
    return pc.take(pa.array(results, type_), pa.array(inverse.ravel()))


def columns(t: pa.Table, raw: pa.Array) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Schema columns of every row, and which rows must take the per-event path.

    Args:
        t: Arrow's table of the events (read with :data:`SCHEMA`), not empty, one chunk per
            column.
        raw: each event's text.

    Returns:
        Columns by schema name (plus ``native_id``), and a boolean mask of the rows to map
        with the per-event path instead.
    """
    col = {name: t.column(name).chunk(0) for name in t.column_names}
    ts, odd = _timestamp(col)
    odd |= _deep(raw)
    # a bare Event for unwrap: auditID and one of verb / stage / requestURI (as values: a
    # null one may or may not be a key, so the per-event path decides)
    odd |= _mask(pc.is_null(col["auditID"]), True)
    odd |= ~_mask(pc.or_kleene(pc.or_kleene(pc.is_valid(col["verb"]), pc.is_valid(
        col["stage"])), pc.is_valid(col["requestURI"])))
    groups = _field(col["user"], "groups")
    odd[_null_item_rows(groups)] = True  # the per-event path skips the null in the join
    src_ip, ip_warning = canonical_ips(_first_item(col["sourceIPs"]))
    odd |= _mask(pc.is_valid(ip_warning))  # the per-event path adds the warning
    ref = col["objectRef"]
    verb = pc.fill_null(col["verb"], "")
    resource = pc.fill_null(_field(ref, "resource"), "")
    odd |= _mask(pc.or_(pc.match_substring_regex(verb, _EDGE_BLANK),
                        pc.match_substring_regex(resource, _EDGE_BLANK)))
    cols = _event(col, verb, resource, src_ip)
    cols["timestamp"] = ts
    cols["k8s_groups"] = _text(pc.binary_join(groups, ","))
    cols.update(_details(col["requestObject"], resource))
    return cols, odd


def _timestamp(col: dict[str, pa.Array]) -> tuple[pa.Array, np.ndarray]:
    """The first stamp present, and the rows where it is not plain ISO (odd)."""
    first = pc.coalesce(col["requestReceivedTimestamp"], col["stageTimestamp"],
                        col["timestamp"], _field(col["metadata"], "creationTimestamp"))
    iso = pc.fill_null(pc.match_substring_regex(first, ISO_TEXT), False)
    return pc.cast(pc.if_else(iso, first, _NULL), _TIMESTAMP), ~_mask(iso)


def _null_item_rows(lists: pa.Array) -> np.ndarray:
    """Rows of a list column that hold a null item."""
    items = pc.list_flatten(lists)
    if not items.null_count:
        return np.zeros(0, np.int64)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    return parents[_mask(pc.is_null(items))]


def _first_item(lists: pa.Array) -> pa.Array:
    """Each list's first item (null for a null or empty list)."""
    offsets = lists.offsets.to_numpy(zero_copy_only=False)
    has = (np.diff(offsets) > 0) & _mask(pc.is_valid(lists))
    at = np.where(has, offsets[:-1], -1)
    return pc.take(lists.values, pa.array(at, mask=~has))


def _deep(raw: pa.Array) -> np.ndarray:
    """Rows with more than MAX_OPENERS ``{`` or ``[`` (in strings too)."""
    offsets = np.frombuffer(raw.buffers()[1], np.int32)[raw.offset:raw.offset + len(raw) + 1]
    data = raw.buffers()[2]
    if data is None:
        return np.zeros(len(raw), bool)
    folded = np.frombuffer(data, np.uint8) | 0x20  # "[" becomes "{"
    opening = np.flatnonzero(np.equal(folded, ord("{"), out=folded.view(bool)))
    return np.diff(np.searchsorted(opening, offsets)) > MAX_OPENERS


def _joined(sep: str, *parts: pa.Array) -> pa.Array:
    """The non-null parts joined by ``sep``; null when all are null."""
    # (binary_join_element_wise's null_handling="skip" drops rows of nulls only)
    out = parts[0]
    for part in parts[1:]:
        out = pc.coalesce(pc.binary_join_element_wise(out, part, sep), out, part)
    return out


def _event(col: dict[str, pa.Array], verb: pa.Array, resource: pa.Array, src_ip: pa.Array
           ) -> dict[str, pa.Array]:
    """The columns of :meth:`K8sAuditLoader.event` but the time, groups and request details."""
    user, ref, annotations = col["user"], col["objectRef"], col["annotations"]
    sub = _text(_field(ref, "subresource"))
    verb_text, resource_text = _text(verb), _text(resource)
    code = _field(col["responseStatus"], "code")
    decision = _text(_field(annotations, _DECISION))
    username = _text(_field(user, "username"))
    name = pc.coalesce(_text(_field(ref, "name")),
                       _text(_field(col["responseObject"], "metadata", "name")),
                       _text(_field(col["requestObject"], "metadata", "name")))
    namespace = _text(_field(ref, "namespace"))
    target = _joined("/", namespace, resource_text, name, sub)
    # "verb resource/sub", else "verb resource" stripped (no blanks at the ends: odd rows)
    action = pc.coalesce(pc.binary_join_element_wise(verb, " ", resource, "/", sub, ""),
                         _joined(" ", verb_text, resource_text), pa.scalar(""))
    result = _per_combination(outcome, _S, code, decision)
    imp = _text(_field(col["impersonatedUser"], "username"))
    who = pc.coalesce(username, pa.scalar("?"))
    who = pc.coalesce(pc.binary_join_element_wise(who, imp, " as "), who)
    code_text = pc.coalesce(pc.cast(code, _S), pa.scalar("no response"))
    message = pc.binary_join_element_wise(
        who, " ", action, " ", pc.coalesce(target, pa.scalar("-")), " from ",
        pc.coalesce(_text(src_ip), pa.scalar("?")), ": ", code_text, " (", result, ")", "")
    is_pod = pc.equal(resource, "pods")
    return {
        "category": _per_combination(categorize, _S, verb, resource, pc.fill_null(sub, "")),
        "action": _text(action), "outcome": result, "user": username,
        "user_id": _text(_field(user, "uid")), "src_ip": src_ip,
        "user_agent": _text(col["userAgent"]), "host": pa.nulls(len(verb), _S),
        "target_type": resource_text, "target": target, "k8s_namespace": namespace,
        "k8s_pod": pc.if_else(is_pod, name, _NULL), "message": message,
        "k8s_verb": verb_text, "k8s_resource": resource_text, "k8s_subresource": sub,
        "k8s_api_group": _text(_field(ref, "apiGroup")), "k8s_name": name,
        "k8s_response_code": code, "k8s_stage": _text(col["stage"]),
        "k8s_audit_level": _text(col["level"]), "k8s_decision": decision,
        "k8s_reason": _text(_field(annotations, _REASON)),
        "k8s_impersonated_user": imp, "k8s_request_uri": _text(col["requestURI"]),
        "k8s_wrapper": pa.nulls(len(verb), _S), "native_id": _request_key(col, verb),
    }


def _request_key(col: dict[str, pa.Array], verb: pa.Array) -> pa.Array:
    """:func:`~loaders.k8s_audit.details.request_key` of every row (null for a missing or
    placeholder ``auditID``)."""
    audit_id = col["auditID"]
    received = pc.coalesce(_text(col["requestReceivedTimestamp"]), _text(col["timestamp"]),
                           pa.scalar(""))
    parts = [pc.fill_null(arr, "") for arr in (
        verb, col["requestURI"], _field(col["user"], "username"),
        _field(col["impersonatedUser"], "username"))]
    key = pc.binary_join_element_wise(audit_id, *parts, received, KEY_SEP)
    placeholder = pc.fill_null(pc.match_substring_regex(audit_id, PLACEHOLDER_ID_RE2), True)
    return pc.if_else(placeholder, _NULL, key)


def _details(request: pa.Array, resource: pa.Array) -> dict[str, pa.Array]:
    """The columns of :func:`~loaders.k8s_audit.details.request_details` (null where the
    row has no such details)."""
    out: dict[str, pa.Array] = {}
    for path in dict.fromkeys(_POD_SPEC_PATHS.values()):
        kinds = pa.array([k for k, p in _POD_SPEC_PATHS.items() if p == path])
        spec = _field(request, *path)
        rows = _mask(pc.and_(pc.is_in(resource, kinds), pc.is_valid(spec)))
        if rows.any():
            for key, value in _pod_spec(spec, rows).items():
                out[key] = pc.coalesce(out[key], value) if key in out else value
    rows = _mask(pc.and_(pc.is_in(resource, pa.array(sorted(_BINDINGS))),
                         pc.is_valid(request)))
    if rows.any():
        out.update(_binding(request, rows))
    n = len(request)
    return {key: out.get(key, pa.nulls(n, type_)) for key, type_ in _DETAIL_TYPES.items()}


def _binding(request: pa.Array, rows: np.ndarray) -> dict[str, pa.Array]:
    """``k8s_role_ref`` and ``k8s_subjects`` of the role bindings in ``rows``."""
    ref = _field(request, "roleRef")
    role_ref = _joined("/", _text(_field(ref, "kind")), _text(_field(ref, "name")))
    items, parents = _items(_field(request, "subjects"))
    names = pc.fill_null(_joined("/", *(_text(_field(items, k)) for k in (
        "kind", "namespace", "name"))), "")
    keep = _mask(pc.is_valid(items)) & rows[parents]
    return {"k8s_role_ref": pc.if_else(pc.and_(pa.array(rows), pc.is_valid(ref)), role_ref,
                                       _NULL),
            "k8s_subjects": _group_join(names.filter(keep), parents[keep], len(rows))}


def _items(lists: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The items of a list column, and the row each comes from."""
    items = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    if len(parents) != len(items):  # a null list over items: not what the reader makes
        raise ValueError("list items do not match their rows")
    return items, parents


def _group_join(values: pa.Array, parents: np.ndarray, n: int) -> pa.Array:
    """Per row, its values (``parents``: their rows, in order) joined by commas; empty is
    null."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(parents, minlength=n))])
    lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)
    return _text(pc.binary_join(lists, ","))


def _pod_spec(spec: pa.Array, rows: np.ndarray) -> dict[str, pa.Array]:
    """:func:`~loaders.k8s_audit.details.pod_spec_details` of the pod specs in ``rows``."""
    selected = pa.array(rows)
    out = {k: pc.if_else(selected, pc.fill_null(_field(spec, k), False), pa.scalar(None,
                                                                                pa.bool_()))
           for k in ("hostNetwork", "hostPID", "hostIPC")}
    images, image_rows, privileged = [], [], np.zeros(len(rows), bool)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        items, parents = _items(_field(spec, key))
        image = _text(_field(items, "image"))
        keep = rows[parents] & _mask(pc.is_valid(image))
        images.append(image.filter(keep))
        image_rows.append(parents[keep])
        flag = _mask(_field(items, "securityContext", "privileged")) & rows[parents]
        privileged[parents[flag]] = True
    image, parents = _first_of_each(pa.concat_arrays(images), np.concatenate(image_rows))
    volumes, parents_v = _items(_field(spec, "volumes"))
    host_path = _field(volumes, "hostPath")
    path = _text(_field(host_path, "path"))
    keep = rows[parents_v] & _mask(pc.is_valid(host_path)) & _mask(pc.is_valid(path))
    mounts = path.filter(keep)
    return {
        "k8s_privileged": pc.if_else(selected, pa.array(privileged), pa.scalar(None,
                                                                               pa.bool_())),
        "k8s_host_network": out["hostNetwork"], "k8s_host_pid": out["hostPID"],
        "k8s_host_ipc": out["hostIPC"],
        "k8s_host_mounts": _group_join(mounts, parents_v[keep], len(rows)),
        "k8s_images": _group_join(image, parents, len(rows)),
    }


def _first_of_each(values: pa.Array, parents: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """The values ordered by row (stable), without a row's repeats of a value."""
    order = np.argsort(parents, kind="stable")
    values, parents = values.take(order), parents[order]
    if not len(values):
        return values, parents
    codes = pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(parents * (int(codes.max()) + 1) + codes, return_index=True)
    keep = np.sort(first)
    return values.take(keep), parents[keep]
