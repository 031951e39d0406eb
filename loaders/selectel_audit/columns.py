"""Column mapping of the vectorized ``selectel_audit`` path (see :mod:`selectel_audit_fast`).

Each column is computed with Arrow compute to exactly what :meth:`SelectelAuditLoader.event`
gives one event; what cannot be made exact is marked odd and left to that per-event path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaders.base import PLACEHOLDER_ID_RE2
from loaders.parsing.cloud_fields import CANONICAL_JSON, text_or_none
from loaders.parsing.jsonl_blocks import BLANK_TEXT, ISO_TEXT
from loaders.parsing.values import canonical_ip
from loaders.selectel_audit.fields import categorize, outcome

# Python's decoder fails at a depth of ~1000 minus the caller's stack depth; Arrow has no
# such limit. An event nesting 600 deep is over 1,200 bytes; such events with many
# brackets go to the per-event path, which rejects them as before.
DEEP_BYTES = 1200
MAX_BRACKETS = 200

# Python's str.isspace() (Zs, Zl, Zp and bidi WS/B/S), checked against every code point
# first UTF-8 byte of each character BLANK_TEXT matches
_BLANK_LEADS = np.zeros(256, dtype=bool)
_BLANK_LEADS[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0xC2, 0xE1, 0xE2,
              0xE3]] = True
_OBJECT_AFTER_KEY = re.compile(r"\s*:\s*\{")
_DECODER = json.JSONDecoder()
CHANGE_SETS = ("details", "old_values", "new_values")


def _blank_to_null(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """:func:`cloud_fields.text_or_none` of a text column: empty or blank text is null."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count == len(arr):
        return arr
    # Blank text is empty or starts with a blank character: look at the first bytes before
    # running the (exact but slower) regex over the column.
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    first = np.frombuffer(data, np.uint8) if data is not None and data.size else None
    may_be_blank = np.diff(offsets) == 0
    if first is not None:
        may_be_blank |= _BLANK_LEADS[first[np.minimum(offsets[:-1], len(first) - 1)]]
    may_be_blank &= arr.is_valid().to_numpy(zero_copy_only=False)
    if not may_be_blank.any():
        return arr
    blank = pc.match_substring_regex(arr, BLANK_TEXT)
    return pc.if_else(blank, pa.scalar(None, pa.string()), arr)


def _map_unique(arr: pa.Array, fn: Callable[[Any], Any], type_: pa.DataType) -> pa.Array:
    """``fn`` of each value (null included), computed once per distinct value."""
    enc = pc.dictionary_encode(arr)
    values = pa.array([fn(v) for v in enc.dictionary.to_pylist()], type_)
    return pc.fill_null(pc.take(values, enc.indices), pa.scalar(fn(None), type_))


def _deep(raw: pa.Array) -> np.ndarray:
    """Rows that may nest deeper than Python's decoder accepts (it rejects the record;
    Arrow does not): longer than DEEP_BYTES with over MAX_BRACKETS opening brackets."""
    offsets = np.frombuffer(raw.buffers()[1], np.int32)[raw.offset:raw.offset + len(raw) + 1]
    long = np.flatnonzero(np.diff(offsets) > DEEP_BYTES)
    odd = np.zeros(len(raw), dtype=bool)
    if len(long):
        texts = pc.take(raw, long)
        count = pc.add(pc.count_substring(texts, "{"), pc.count_substring(texts, "["))
        odd[long] = pc.greater(count, MAX_BRACKETS).to_numpy(zero_copy_only=False)
    return odd


def _codes(arr: pa.Array) -> tuple[np.ndarray, list[Any]]:
    """Integer code of each value and the distinct values (null is the last one)."""
    enc = pc.dictionary_encode(arr)
    values = [*enc.dictionary.to_pylist(), None]
    codes = pc.fill_null(enc.indices.cast(pa.int64()), len(values) - 1)
    return codes.to_numpy(zero_copy_only=False), values


def _categories(event_type: pa.Array, resource_type: pa.Array, method: pa.Array) -> pa.Array:
    """:func:`categorize` of each row, called once per distinct combination."""
    (ce, ve), (cr, vr), (cm, vm) = _codes(event_type), _codes(resource_type), _codes(method)
    key = (ce * len(vr) + cr) * len(vm) + cm
    uniq, inverse = np.unique(key, return_inverse=True)
    cats = [categorize(ve[k // (len(vr) * len(vm))], vr[k // len(vm) % len(vr)], vm[k % len(vm)])
            for k in uniq.tolist()]
    return pc.take(pa.array(cats, pa.string()), pa.array(inverse.ravel()))


def _joined(lists: pa.Array) -> pa.Array:
    """:func:`cloud_fields.text_or_none` of a list column: comma-joined, empty is null."""
    if pc.list_flatten(lists).null_count:  # join skips null items: Python does it
        return pa.array([text_or_none(v) for v in lists.to_pylist()], pa.string())
    joined = pc.binary_join(lists, ",")
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)


def columns(t: pa.Table, raw: pa.Array) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Schema columns of every row, and which rows must take the per-event path.

    Args:
        t: Arrow's table of the events (read with :data:`selectel_audit_fast.SCHEMA`), not
            empty, one chunk per column.
        raw: each event's text.

    Returns:
        Columns by schema name (plus ``native_id``), and a boolean mask of the rows to map
        with the per-event path instead.
    """
    subject, resource, request = (t.column(k).chunk(0) for k in ("subject", "resource",
                                                                    "request"))

    def top(name: str) -> pa.Array:
        return _blank_to_null(t.column(name))

    def sub(obj: pa.StructArray, name: str) -> pa.Array:
        # a missing object reads as null, so do its fields
        return _blank_to_null(pc.struct_field(obj, name))

    odd = _deep(raw)
    times = {}
    for key in ("event_time", "event_saved_time"):
        text = t.column(key).combine_chunks()
        blank = pc.fill_null(pc.match_substring_regex(text, BLANK_TEXT), True)
        iso = pc.fill_null(pc.match_substring_regex(text, ISO_TEXT), False)
        odd |= ~pc.or_(blank, iso).to_numpy(zero_copy_only=False)
        times[key] = pc.cast(pc.if_else(iso, text, pa.scalar(None, pa.string())),
                             pa.timestamp("us", tz="UTC"))
    ts = pc.coalesce(times["event_time"], times["event_saved_time"])
    odd |= pc.is_null(ts).to_numpy(zero_copy_only=False)
    event_id, event_type = top("event_id"), top("event_type")
    odd |= pc.and_(pc.is_null(t.column("event_id")),
                   pc.is_null(t.column("event_type"))).to_numpy(zero_copy_only=False)

    remote = pc.dictionary_encode(pc.struct_field(request, "remote_address"))
    ips = [canonical_ip(v) for v in [*remote.dictionary.to_pylist(), None]]
    codes = pc.fill_null(remote.indices, len(ips) - 1)
    ip = pc.take(pa.array([i for i, _ in ips], pa.string()), codes)
    ip_warning = pc.take(pa.array([w for _, w in ips], pa.string()), codes)
    status = top("status")
    authorized = pc.struct_field(subject, "is_authorized")
    result = pc.if_else(pc.fill_null(pc.equal(authorized, False), False), "denied",
                        _map_unique(status, lambda s: outcome(s, None), pa.string()))
    user, resource_type = sub(subject, "name"), sub(resource, "type")
    method = sub(request, "method")
    target = pc.coalesce(sub(resource, "name"), sub(resource, "id"))
    category = _categories(event_type, resource_type, method)
    raw_id = pc.struct_field(subject, "id")
    who = pc.coalesce(user, pc.if_else(pc.equal(raw_id, ""), pa.scalar(None, pa.string()),
                                       raw_id), pa.scalar("?"))
    message = pc.replace_substring(pc.binary_join_element_wise(
        who, pc.coalesce(event_type, pa.scalar("?")), pc.coalesce(resource_type, pa.scalar("")),
        pc.coalesce(target, pa.scalar("")), pa.scalar("from"), pc.coalesce(ip, pa.scalar("?")),
        pa.scalar("->"), pc.coalesce(status, pa.scalar("?")), " "), "  ", " ")
    authorized_by = _joined(pc.struct_field(subject, "authorized_by"))
    changes = _change_sets(resource, raw, odd)
    saved = times["event_saved_time"]
    ms = np.floor_divide(pc.fill_null(saved.cast(pa.int64()), 0).to_numpy(), 1000)
    keyed = pc.binary_join_element_wise(event_id, pa.array(ms).cast(pa.string()), "|")
    native = pc.if_else(pc.is_null(saved), event_id, keyed)
    placeholder = pc.fill_null(pc.match_substring_regex(event_id, PLACEHOLDER_ID_RE2), True)
    native = pc.if_else(placeholder, pa.scalar(None, pa.string()), native)
    cols: dict[str, pa.Array] = {
        "timestamp": ts, "category": category, "action": event_type, "outcome": result,
        "user": user, "user_id": sub(subject, "id"), "src_ip": ip,
        "user_agent": sub(request, "user_agent"), "target_type": resource_type,
        "target": target, "message": message,
        "selectel_status": status, "selectel_error_code": top("error_code"),
        "selectel_request_id": top("request_id"), "selectel_source_type": top("source_type"),
        "selectel_schema_version": top("schema_version"), "selectel_event_saved_time": saved,
        "selectel_subject_type": sub(subject, "type"),
        "selectel_auth_provider": sub(subject, "auth_provider"),
        "selectel_is_authorized": authorized, "selectel_authorized_by": authorized_by,
        "selectel_credentials_fingerprint": sub(subject, "credentials_fingerprint"),
        "selectel_resource_id": sub(resource, "id"),
        "selectel_account_id": sub(resource, "account_id"),
        "selectel_project_id": sub(resource, "project_id"),
        "selectel_location": sub(resource, "location"),
        "selectel_details": changes["details"], "selectel_old_values": changes["old_values"],
        "selectel_new_values": changes["new_values"],
        "selectel_request_type": sub(request, "type"), "selectel_request_method": method,
        "selectel_request_path": sub(request, "path"),
        "selectel_request_parameters": sub(request, "parameters"),
        "parse_warning": ip_warning, "native_id": native,
    }
    return cols, odd


def _resource(text: str) -> dict[str, Any]:
    """The ``resource`` object of an event's text, decoding only that object when its key
    is written once and plainly (no ``\\u`` escape anywhere could hide the real one)."""
    at = text.find('"resource"')
    if at >= 0 and text.find('"resource"', at + 1) < 0 and "\\u" not in text:
        m = _OBJECT_AFTER_KEY.match(text, at + 10)
        if m:
            value, _ = _DECODER.raw_decode(text, m.end() - 1)
            return cast(dict[str, Any], value)
    return cast(dict[str, Any], json.loads(text)["resource"])


def _change_sets(resource: pa.StructArray, raw: pa.Array, odd: np.ndarray
                 ) -> dict[str, pa.Array]:
    """details / old_values / new_values as :func:`cloud_fields.json_text`.

    Arrow only tells which are objects: rows with any are decoded by Python (the layout
    is known, so the values are ``resource.<key>``). A row Python's decoder refuses is
    marked odd (the per-event path rejects it the same way).
    """
    n = len(raw)
    present = [pc.is_valid(pc.struct_field(resource, k)) for k in CHANGE_SETS]
    maybe = pc.or_(pc.or_(present[0], present[1]), present[2]).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(maybe).tolist()
    # (a regex telling {} from filled objects costs more than decoding every such row)
    texts = raw.to_pylist() if len(rows) == n else pc.take(raw, rows).to_pylist()
    out: dict[str, list[str | None]] = {k: [None] * n for k in CHANGE_SETS}
    details, old, new = out["details"], out["old_values"], out["new_values"]
    encode = CANONICAL_JSON.encode
    for i, text in zip(rows, texts, strict=True):
        try:
            res = _resource(text)
        except (ValueError, RecursionError):
            odd[i] = True
            continue
        # Arrow checked these are objects or null: json_text is "sorted JSON unless empty"
        value = res.get("details")
        details[i] = encode(value) if value else None
        value = res.get("old_values")
        old[i] = encode(value) if value else None
        value = res.get("new_values")
        new[i] = encode(value) if value else None
    return {k: pa.array(v, pa.string()) for k, v in out.items()}
