"""Vectorized EVTX mapping: a batch of evtx-rs JSON records to one Arrow table at once.

The per-record path (``json.loads``, :class:`~loaders.windows_events.model.WinEvent`,
:func:`~loaders.windows_events.map.to_fields`) costs ~100 µs a record, twenty times what the
Rust parser needs to produce it. Here a batch is parsed by ``pyarrow.json`` and mapped with
Arrow compute, for the records whose every value can be shown to map exactly as the
per-record path would map it: Sysmon events (the bulk of these logs) whose ``EventData`` is
a flat object of strings, integers, booleans and nulls, with ordinary timestamps, decimal
numbers and valid addresses. :func:`map_batch` returns a mask of those rows; every other
record goes through the per-record path, so values, warnings and rejects never differ
(``tests/test_windows_events_fast.py`` compares both paths on the real fixtures).

The records are split and read by :mod:`loaders.windows_events.fast_text`, which also
rebuilds ``win_event_data`` from each record's own JSON text.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from loaders.parsing.values import canonical_ip
from loaders.schema import TIMESTAMP
from loaders.windows_events.catalog import EVENT_TABLE, SYSMON, family
from loaders.windows_events.fast_text import read_batch
from loaders.windows_events.map import audit_outcome

_DETAIL_CHARS = 300  # as in windows_events_map._message

_ISO_Z = r'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$'
_ISO_NAIVE = r'^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$'
# six fraction digits, not all zero: "0{k}[1-9][0-9]{5-k}"
_SIX_DIGITS = r'^.{19}\.(?:' + "|".join(f"0{{{k}}}[1-9][0-9]{{{5 - k}}}" for k in range(6)) \
    + r')Z$'
_DECIMAL = r'^-?[0-9]{1,18}$'
_PY_SPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())  # str.strip()'s set
# the placeholders clean() drops ("", "-", "null", "n/a" once lower-cased), in every case:
# matching these spellings is one pass, lower-casing every value first was two (no other
# character lower-cases to an ASCII letter of these words)
_EMPTY = pa.array(sorted({"", "-", *(
    "".join(c.upper() if bit else c for c, bit in zip(word, bits, strict=True))
    for word in ("null", "n/a") for bits in itertools.product((0, 1), repeat=len(word)))}))
# EventData names the Sysmon shapes read (CaseFields matches them case-insensitively).
_NEEDED = frozenset(n.lower() for n in (
    "User", "SubjectUserName", "SubjectDomainName", "SubjectUserSid", "Image", "ProcessId",
    "CommandLine", "LogonId", "SubjectLogonId", "RuleName", "ProcessGuid", "Hashes",
    "ParentImage", "ParentProcessId", "ParentProcessGuid", "ParentCommandLine",
    "CurrentDirectory", "IntegrityLevel", "SourceImage", "SourceProcessId", "SourceUser",
    "SourceProcessGuid", "TargetProcessGuid", "GrantedAccess", "TargetImage", "SourceIp",
    "DestinationIp", "SourcePort", "DestinationPort", "DestinationHostname", "Protocol",
    "QueryStatus", "QueryName", "QueryResults", "TargetFilename", "Device", "PipeName",
    "TargetObject", "Details", "NewName", "EventType", "ImageLoaded", "Name", "Consumer",
    "Query", "Destination", "Filter"))


def _wanted(name: str) -> bool:
    return name.lower() in _NEEDED or name == "UtcTime"


_SHAPES = ("process_create", "process", "process_access", "network", "dns", "file", "pipe",
           "registry", "image_load", "driver", "wmi", "generic")


def _map_unique(arr: pa.Array, fn: Callable[[Any], Any], typ: pa.DataType) -> pa.Array:
    """Apply a Python function once per distinct value (few: channels, ports, addresses)."""
    uniq = pc.unique(arr)
    mapped = pa.array([fn(v) for v in uniq.to_pylist()], typ)
    return pc.take(mapped, pc.index_in(arr, value_set=uniq))


def _clean(arr: pa.Array) -> pa.Array:
    """``clean()``: stripped text, None for Windows placeholders (``-``, empty, ``n/a``)."""
    text = pc.utf8_trim(arr, _PY_SPACE)
    return pc.if_else(pc.is_in(text, _EMPTY),
                      pa.scalar(None, pa.string()), text)


def clean_all(arrays: list[pa.Array]) -> list[pa.Array]:
    """:func:`_clean` of several arrays of one length in one call (per-call overhead
    dominates small batches)."""
    if not arrays:
        return []
    n = len(arrays[0])
    flat = _clean(pa.concat_arrays(arrays))
    return [flat.slice(i * n, n) for i in range(len(arrays))]


def _true(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


class _Batch:
    """Columns of one batch and the mask of rows the fast path maps exactly."""

    def __init__(self, data: pa.Table, keys: pa.Array, n: int) -> None:
        self.n = n
        self._bad: list[pa.Array] = []
        self._lower: dict[str, list[str]] = {}
        for name in data.column_names:
            self._lower.setdefault(name.lower(), []).append(name)
        self._keys = keys
        self.null = pa.nulls(n, pa.string())
        # every column cleaned in one call (per-call overhead dominates small batches)
        names = data.column_names
        self._clean = dict(zip(names, clean_all([data.column(x).combine_chunks()
                                                 for x in names]), strict=True))
        self._cache: dict[str, pa.Array] = {}

    def refuse(self, bad: pa.Array) -> None:
        """Leave the rows where ``bad`` is true to the per-record path (null: keep)."""
        self._bad.append(bad)

    def ok(self) -> list[bool]:
        """Per row, whether no refusal hit it."""
        bad = self._bad[0] if self._bad else pa.array([False] * self.n)
        for more in self._bad[1:]:  # Kleene: true wins over null, so a null never refuses
            bad = pc.or_kleene(bad, more)
        return pc.invert(_true(bad)).to_pylist()

    def field(self, name: str) -> pa.Array:
        """The cleaned value of one field, case-insensitively (like CaseFields)."""
        low = name.lower()
        if low not in self._cache:
            names = self._lower.get(low, [])
            if not names:
                self._cache[low] = self.null
            elif len(names) == 1:
                self._cache[low] = self._clean[names[0]]
            else:  # the per-record path keeps the last spelling: leave rows with several
                count = pa.array([0] * self.n, pa.int64())
                for x in names:  # "Name": occurs only as a key (read_batch made sure)
                    if '"' in x or "\\" in x:
                        count = pa.array([2] * self.n, pa.int64())
                        break
                    seen = pc.match_substring(self._keys, f'"{x}":')
                    count = pc.add(count, pc.cast(seen, pa.int64()))
                self.refuse(pc.greater(count, 1))
                self._cache[low] = pc.coalesce(*(self._clean[x] for x in names))
        return self._cache[low]

    def get(self, *names: str) -> pa.Array:
        return pc.coalesce(*(self.field(n) for n in names)) if len(names) > 1 \
            else self.field(names[0])

    def to_int(self, arr: pa.Array) -> pa.Array:
        dec = _true(pc.match_substring_regex(arr, _DECIMAL))
        self.refuse(pc.and_(pc.is_valid(arr), pc.invert(dec)))
        return pc.cast(pc.if_else(dec, arr, self.null), pa.int64())

    def ip(self, arr: pa.Array) -> pa.Array:
        warn = _map_unique(arr, lambda v: canonical_ip(v)[1] is not None, pa.bool_())
        self.refuse(warn)
        return _map_unique(arr, lambda v: canonical_ip(v)[0], pa.string())

    def account(self, prefix: str) -> pa.Array:
        name, domain = self.get(prefix + "UserName"), self.get(prefix + "DomainName")
        both = pc.binary_join_element_wise(domain, name, "\\")
        return pc.if_else(pc.is_valid(domain), both, name)


def _join(*parts: Any) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def map_batch(texts: Sequence[str], lines: Sequence[int]) -> tuple[pa.Table, list[bool]] | None:
    """Map a batch of evtx-rs JSON records; None when the batch must go per record.

    Returns:
        (table with the schema columns, ``source_line``, ``raw`` and ``native_id``; per row,
        whether the table's row is exact — the others must be mapped one by one)
    """
    parsed = read_batch(texts, _wanted)
    if parsed is None:
        return None
    raw = pa.array(texts, pa.string())
    system, data = parsed.system, parsed.data
    b = _Batch(data, parsed.keys, len(texts))
    b.refuse(pc.invert(parsed.usable))
    channel, provider, computer, keywords, created, user_sid = clean_all(
        [system[x] for x in ("channel", "provider", "computer", "keywords", "time", "user_sid")])
    event_id, record_id = system["event_id"], system["record_id"]
    fam = _map_unique(pc.binary_join_element_wise(
        pc.fill_null(channel, ""), pc.fill_null(provider, ""), "\x1f"),
        lambda v: family(*(x or None for x in v.split("\x1f"))), pa.string())
    sysmon = _true(pc.equal(fam, SYSMON))
    rules = {eid: r for (f, eid), r in EVENT_TABLE.items() if f == SYSMON and r.shape in _SHAPES}
    known = pc.is_in(event_id, pa.array(list(rules), pa.int64()))
    b.refuse(pc.invert(_true(pc.and_(sysmon, known))))

    ids = pc.unique(event_id)
    where = pc.index_in(event_id, value_set=ids)
    found = [rules.get(e) for e in ids.to_pylist()]

    def per_rule(attr: str) -> pa.Array:  # _map_unique, the distinct ids looked up once
        return pc.take(pa.array([None if r is None else getattr(r, attr) for r in found],
                                 pa.string()), where)

    category, action, shape, fixed = (per_rule("category"), per_rule("action"),
                                      per_rule("shape"), per_rule("outcome"))

    # time: System/TimeCreated/@SystemTime; anything else (zero, odd text) goes per record
    iso = _true(pc.match_substring_regex(created, _ISO_Z))
    b.refuse(pc.invert(iso))
    try:
        ts = pc.cast(pc.if_else(iso, created, b.null), TIMESTAMP)
        # event_item reads UtcTime by its exact name, not case-insensitively
        utc_text = (_clean(data.column("UtcTime").combine_chunks())
                    if "UtcTime" in data.column_names else b.null)
        utc_ok = _true(pc.match_substring_regex(utc_text, _ISO_NAIVE))
        b.refuse(pc.and_(pc.is_valid(utc_text), pc.invert(utc_ok)))
        utc = pc.assume_timezone(pc.cast(pc.if_else(utc_ok, utc_text, b.null),
                                         pa.timestamp("us")), "UTC")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    b.refuse(pc.less_equal(pc.year(ts), 1601))
    b.refuse(pc.less_equal(pc.year(utc), 1601))

    logon = b.get("LogonId", "SubjectLogonId")
    out: dict[str, pa.Array] = {
        "timestamp": ts, "category": category, "action": action,
        "user": pc.coalesce(b.get("User"), b.account("Subject")),
        "user_id": b.get("SubjectUserSid"), "host": computer,
        "process_image": b.get("Image"), "process_pid": b.to_int(b.get("ProcessId")),
        "process_command_line": b.get("CommandLine"), "session_id": logon,
        "win_logon_id": logon, "win_event_id": event_id, "win_channel": channel,
        "win_provider": provider, "win_record_id": record_id,
        "win_user_sid": user_sid,
        "win_utc_time": utc, "win_rule_name": b.get("RuleName"),
        "win_process_guid": b.get("ProcessGuid"), "win_hashes": b.get("Hashes"),
        "win_event_data": parsed.event_data,
    }
    _apply_shapes(b, out, shape)
    # outcome: what the shape said, else the rule's, else the audit keywords, else success
    audit = _map_unique(keywords, audit_outcome, pa.string())
    out["outcome"] = pc.coalesce(out.get("outcome", b.null), fixed, audit, "success")
    out["message"] = _message(out, computer, b.null)
    # native id: (computer, channel, EventRecordID, time), as event_item builds it
    stamp = _stamp(created, ts)
    out["native_id"] = pc.binary_join_element_wise(
        _map_unique(computer, lambda v: v and v.casefold(), pa.string()),
        _map_unique(channel, lambda v: v and v.casefold(), pa.string()),
        pc.cast(record_id, pa.string()), _join(stamp, "+00:00"), "\x1f")
    out["source_line"] = pa.array(lines, pa.int64())
    out["raw"] = raw
    return pa.table(out), b.ok()


def _stamp(created: pa.Array, ts: pa.Array) -> pa.Array:
    """``ts.isoformat()`` without the offset. evtx-rs writes six fraction digits and ``Z``:
    that text less the ``Z`` is it, unless the fraction is zero (isoformat omits it)."""
    six = _true(pc.match_substring_regex(created, _SIX_DIGITS))
    if pc.all(pc.or_(six, pc.is_null(created))).as_py():
        return pc.utf8_slice_codeunits(created, 0, -1)
    return pc.replace_substring_regex(pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S"),
                                      r"\.000000$", "")


def _apply_shapes(b: _Batch, out: dict[str, pa.Array], shape: pa.Array) -> None:
    """The Sysmon shapes of windows_events_shapes, each applied where its rows are."""
    present = set(pc.unique(shape).to_pylist())

    def put(name: str, **cols: Any) -> None:
        if name not in present:
            return
        where = _true(pc.equal(shape, name))
        for col, value in cols.items():
            value = value() if callable(value) else value
            if isinstance(value, str):
                value = pa.scalar(value, pa.string())
            base = out.get(col)
            if base is None:
                base = pa.nulls(b.n, value.type)
            out[col] = pc.if_else(where, value, base)

    g = b.get
    put("process_create", parent_image=lambda: g("ParentImage"),
        process_ppid=lambda: b.to_int(g("ParentProcessId")), target_type="process",
        target=lambda: g("Image"), win_parent_process_guid=lambda: g("ParentProcessGuid"),
        win_parent_command_line=lambda: g("ParentCommandLine"),
        win_current_directory=lambda: g("CurrentDirectory"),
        win_integrity_level=lambda: g("IntegrityLevel"))
    put("process", target_type="process", target=lambda: g("Image"))
    put("process_access", process_image=lambda: g("SourceImage"),
        process_pid=lambda: b.to_int(g("SourceProcessId")),
        user=lambda: pc.coalesce(g("SourceUser"), out["user"]), target_type="process",
        target=lambda: g("TargetImage"), win_process_guid=lambda: g("SourceProcessGuid"),
        win_target_process_guid=lambda: g("TargetProcessGuid"),
        win_granted_access=lambda: g("GrantedAccess"))
    if "network" in present:
        dst_ip, dst_port = b.ip(g("DestinationIp")), b.to_int(g("DestinationPort"))
        host = pc.if_else(_true(pc.match_substring(dst_ip, ":")), _join("[", dst_ip, "]"),
                          dst_ip)
        endpoint = pc.if_else(pc.is_valid(dst_port),
                              _join(host, ":", pc.cast(dst_port, pa.string())), dst_ip)
        put("network", src_ip=lambda: b.ip(g("SourceIp")), win_dst_ip=dst_ip,
            win_src_port=lambda: b.to_int(g("SourcePort")), win_dst_port=dst_port,
            win_dst_hostname=lambda: g("DestinationHostname"), win_protocol=lambda: g("Protocol"),
            target_type="network_endpoint", target=endpoint)
    status = g("QueryStatus")
    failed = _true(pc.not_equal(status, "0"))
    put("dns", target_type="dns_query", target=lambda: g("QueryName"),
        win_query_results=lambda: g("QueryResults"),
        outcome=lambda: pc.if_else(pc.is_valid(status),
                                   pc.if_else(failed, "failure", "success"), b.null),
        win_status=lambda: pc.if_else(failed, status, b.null))
    put("file", target_type="file", target=lambda: g("TargetFilename", "Device"))
    put("pipe", target_type="pipe", target=lambda: g("PipeName"))
    put("registry", target_type="registry", target=lambda: g("TargetObject"),
        win_details=lambda: g("Details", "NewName"),
        action=lambda: pc.coalesce(g("EventType"), out["action"]))
    put("image_load", target_type="image", target=lambda: g("ImageLoaded"))
    put("driver", target_type="driver", target=lambda: g("ImageLoaded"))
    put("wmi", target_type="wmi", target=lambda: g("Name", "Consumer"),
        win_details=lambda: g("Query", "Destination", "Filter"))


def _message(out: dict[str, pa.Array], computer: pa.Array, null: pa.Array) -> pa.Array:
    """windows_events_map._message, column-wise."""
    cmd = out["process_command_line"]
    detail = pc.coalesce(pc.if_else(_true(pc.equal(out["category"], "process")), cmd, null),
                         out.get("target", null), out["process_image"])
    long = _true(pc.greater(pc.utf8_length(detail), _DETAIL_CHARS))
    detail = pc.if_else(long, _join(pc.utf8_slice_codeunits(detail, 0, _DETAIL_CHARS), "…"),
                        detail)
    text = _join(out["action"], " by ", pc.coalesce(out["user"], "?"))
    text = pc.if_else(pc.is_valid(detail), _join(text, ": ", detail), text)
    src = out.get("src_ip", null)
    text = pc.if_else(pc.is_valid(src), _join(text, " from ", src), text)
    return pc.if_else(pc.is_valid(computer), _join(text, " on ", computer), text)
