"""Vectorized EVTX mapping: a batch of evtx-rs JSON records to one Arrow table at once.

The per-record path (``json.loads``, :class:`~loaders.windows_events_model.WinEvent`,
:func:`~loaders.windows_events_map.to_fields`) costs ~100 µs a record, twenty times what the
Rust parser needs to produce it. Here a batch is parsed by ``pyarrow.json`` and mapped with
Arrow compute, for the records whose every value can be shown to map exactly as the
per-record path would map it: Sysmon events (the bulk of these logs) whose ``EventData`` is
a flat object of strings, integers, booleans and nulls, with ordinary timestamps, decimal
numbers and valid addresses. :func:`map_batch` returns a mask of those rows; every other
record goes through the per-record path, so values, warnings and rejects never differ
(``tests/test_windows_events_fast.py`` compares both paths on the real fixtures).

``win_event_data`` is rebuilt from the record's own JSON text: on compact serde_json output,
rewriting each ``"key":value`` pair (numbers and booleans quoted, ``", "``/``": "``
separators) gives exactly ``json.dumps`` of the normalized fields, without decoding them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from loaders.schema import TIMESTAMP
from loaders.windows_events_map import audit_outcome
from loaders.windows_events_model import canonical_ip
from loaders.windows_events_table import EVENT_TABLE, SYSMON, family

MIN_ROWS = 128  # below this the fixed cost (~150 Arrow calls, ~5 ms) exceeds the per-record path
_DETAIL_CHARS = 300  # as in windows_events_map._message

# JSON text of a string without escapes that json.loads + json.dumps(ensure_ascii=False)
# would rewrite (\u…, \/), an integer Python prints alike, and a literal.
# Escaped backslashes and quotes are masked first (control characters never occur raw in
# JSON text), so a string is then quote, no quote, quote.
_BS, _QUOTE = "\x03", "\x04"
_ED_KEY = ',"EventData":'
_STR = r'"(?:[^"\\\x00-\x02\x05-\x1f]|\\[bfnrt])*"'
_NUMBER = r'0|-?[1-9][0-9]{0,17}'
_VAL = rf'{_STR}|{_NUMBER}|true|false|null'
_FLAT = rf'^\{{(?:{_STR}:(?:{_VAL})(?:,{_STR}:(?:{_VAL}))*)?\}}$'
_BARE = rf'": ({_NUMBER}|true|false)([,}}])'
# keys event_data() skips or treats specially: leave those records to it
_ODD_KEY = r'[{,]"(?:@|#|xmlns"|[^"]*_attributes")'
# where the literal rewrites of _stringify could take a quote inside a key or value for
# a structural one (a text that starts or ends with ':' or ','): leave those records too
_AMBIGUOUS = r'[:{,]":|,"[,}:]'
_ISO_Z = r'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$'
_ISO_NAIVE = r'^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$'
_DECIMAL = r'^-?[0-9]{1,18}$'
_PY_SPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())  # str.strip()'s set
_EMPTY = ["", "-", "null", "n/a"]
# One thread per parse: batches are small, and the evtx parser's own threads and the other
# files of a run keep the cores busy; the thread pool hand-offs cost more than they give.
_SERIAL = pj.ReadOptions(use_threads=False, block_size=64 << 20)

_SYSTEM = pa.schema([("Event", pa.struct([("System", pa.struct([
    ("Provider", pa.struct([("#attributes", pa.struct([("Name", pa.string())]))])),
    ("EventID", pa.int64()),
    ("Keywords", pa.string()),
    ("TimeCreated", pa.struct([("#attributes", pa.struct([("SystemTime", pa.string())]))])),
    ("EventRecordID", pa.int64()),
    ("Channel", pa.string()),
    ("Computer", pa.string()),
    ("Security", pa.struct([("#attributes", pa.struct([("UserID", pa.string())]))])),
]))]))])

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
_SHAPES = ("process_create", "process", "process_access", "network", "dns", "file", "pipe",
           "registry", "image_load", "driver", "wmi", "generic")


def _ndjson(docs: pa.Array) -> pa.Buffer:
    """The strings of an array joined by newlines, as one buffer (no Python strings)."""
    lines = pc.binary_join_element_wise(docs, "", "\n")
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    return lines.buffers()[2].slice(start, end - start)


def _map_unique(arr: pa.Array, fn: Callable[[Any], Any], typ: pa.DataType) -> pa.Array:
    """Apply a Python function once per distinct value (few: channels, ports, addresses)."""
    uniq = pc.unique(arr)
    mapped = pa.array([fn(v) for v in uniq.to_pylist()], typ)
    return pc.take(mapped, pc.index_in(arr, value_set=uniq))


def _clean(arr: pa.Array) -> pa.Array:
    """``clean()``: stripped text, None for Windows placeholders (``-``, empty, ``n/a``)."""
    text = pc.utf8_trim(arr, _PY_SPACE)
    return pc.if_else(pc.is_in(pc.utf8_lower(text), pa.array(_EMPTY)),
                      pa.scalar(None, pa.string()), text)


def _true(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


class _Batch:
    """Columns of one batch and the mask of rows the fast path maps exactly."""

    def __init__(self, data: pa.Table, masked: pa.Array, n: int) -> None:
        self.n = n
        self.ok = pa.array([True] * n)
        self._lower: dict[str, list[str]] = {}
        for name in data.column_names:
            self._lower.setdefault(name.lower(), []).append(name)
        self._masked = masked
        self.null = pa.nulls(n, pa.string())
        # every column cleaned in one call (per-call overhead dominates small batches)
        names = data.column_names
        flat = _clean(pa.concat_arrays([data.column(x).combine_chunks() for x in names])) \
            if names else self.null
        self._clean = {x: flat.slice(i * n, n) for i, x in enumerate(names)}
        self._cache: dict[str, pa.Array] = {}

    def refuse(self, bad: pa.Array) -> None:
        self.ok = pc.and_(self.ok, pc.invert(_true(bad)))

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
                for x in names:  # "Name": occurs only as a key (quotes in values are masked)
                    if '"' in x or "\\" in x:
                        count = pa.array([2] * self.n, pa.int64())
                        break
                    seen = pc.match_substring(self._masked, f'"{x}":')
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


def _stringify(masked: pa.Array) -> pa.Array:
    """Flat compact JSON objects (escapes masked) to ``json.dumps`` of their values as text.

    With escaped backslashes and quotes masked, every remaining ``"`` is structural: ``":``
    ends a key and ``,"`` starts one (records where a key or value itself starts or ends
    with ``:`` or ``,`` are excluded by ``_AMBIGUOUS``), so literal replacements give
    json.dumps's separators.
    """
    out = pc.replace_substring(pc.replace_substring(masked, '":', '": '), ',"', ', "')
    out = pc.replace_substring_regex(out, _BARE, '": "\\1"\\2')  # 12 -> "12", true -> "true"
    return pc.replace_substring(pc.replace_substring(out, _BS, "\\\\"), _QUOTE, '\\"')


def _odd(text: str) -> bool:
    """A record whose System the fixed parse schema would refuse (EventID with
    Qualifiers) or whose data the per-record path merges (UserData). Python's substring
    search is several times faster here than Arrow's."""
    return (not text.startswith('{"Event":{') or '"EventID":{' in text
            or '"UserData"' in text)


def _event_data(raw: pa.Array, odd: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """The masked ``EventData`` text of each record, whether it is a flat object, whether
    the record has the shape the System parse expects (or none at all), and the record
    without its EventData (what the System parse reads: half the bytes)."""
    # the separator appended to every record makes the split always give two parts
    parts = pc.split_pattern(_join(raw, _ED_KEY), _ED_KEY, max_splits=1)
    before, after = pc.list_element(parts, 0), pc.list_element(parts, 1)
    has_ed = pc.starts_with(after, "{")
    head = pc.if_else(has_ed, _join(before, "}}"), before)
    ed = pc.utf8_slice_codeunits(after, 0, -(len(_ED_KEY) + 2))  # text[i + 13:-2]
    # EventData that is not an object (null), or not the last element of Event
    hazard = pc.or_(odd, pc.and_(pc.not_equal(after, ""), pc.invert(has_ed)))
    hazard = pc.or_(hazard, pc.and_(has_ed, pc.invert(pc.ends_with(raw, "}}"))))
    # \\ then \" (left to right, so \\" stays an escaped backslash and a closing quote)
    masked = pc.replace_substring(pc.replace_substring(ed, "\\\\", _BS), '\\"', _QUOTE)
    flat = _true(pc.and_(has_ed, pc.and_(pc.match_substring_regex(masked, _FLAT),
                                         pc.invert(pc.match_substring_regex(
                                             masked, f"{_ODD_KEY}|{_AMBIGUOUS}")))))
    usable = pc.and_(pc.invert(_true(hazard)), pc.or_(flat, pc.invert(has_ed)))
    return masked, flat, usable, head


def _read(ndjson: pa.Buffer, schema: pa.Schema | None = None) -> pa.Table:
    """Newline-delimited JSON to a table: only ``schema``'s fields when given."""
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore") \
        if schema is not None else None
    return pj.read_json(pa.BufferReader(ndjson), read_options=_SERIAL, parse_options=options)


def _parse(raw: pa.Array, odd: pa.Array
           ) -> tuple[pa.Table, pa.Table, pa.Array, pa.Array, pa.Array] | None:
    """System fields, EventData fields (text), the masked EventData, ``win_event_data``, and
    which records the parses could read."""
    masked, flat, usable, head = _event_data(raw, odd)
    sys_docs = pc.if_else(usable, head, "{}")
    text = _stringify(pc.if_else(flat, masked, "{}"))
    try:
        system = _read(_ndjson(sys_docs), _SYSTEM)
        # all values are text now; Arrow may still guess timestamps from some, so read
        # again with a string schema when it did
        docs = _ndjson(text)
        data = _read(docs)
        names = [f.name for f in data.schema if f.name.lower() in _NEEDED or f.name == "UtcTime"]
        if any(data.schema.field(x).type not in (pa.string(), pa.null()) for x in names):
            data = _read(docs, pa.schema([(x, pa.string()) for x in names]))
        # a field null in every record of the batch reads as type null: make it text
        data = data.select(names).cast(pa.schema([(x, pa.string()) for x in names]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # something unexpected in the batch: all of it goes per record
    if system.num_rows != len(raw) or data.num_rows != len(raw):
        return None
    event_data = pc.if_else(pc.equal(text, "{}"), pa.scalar(None, pa.string()), text)
    return system, data, masked, event_data, usable


def _sys(system: pa.Table, *path: str) -> pa.Array:
    arr = system.column("Event").combine_chunks().field("System")
    for name in path:
        arr = arr.field(name)
    return arr


def map_batch(texts: Sequence[str], lines: Sequence[int]) -> tuple[pa.Table, list[bool]] | None:
    """Map a batch of evtx-rs JSON records; None when the batch must go per record.

    Returns:
        (table with the schema columns, ``source_line``, ``raw`` and ``native_id``; per row,
        whether the table's row is exact — the others must be mapped one by one)
    """
    raw = pa.array(texts, pa.string())
    parsed = _parse(raw, pa.array(list(map(_odd, texts)), pa.bool_()))
    if parsed is None:
        return None
    system, data, masked, event_data, usable = parsed
    b = _Batch(data, masked, len(texts))
    b.refuse(pc.invert(usable))
    channel, provider = _clean(_sys(system, "Channel")), _clean(
        _sys(system, "Provider", "#attributes", "Name"))
    computer = _clean(_sys(system, "Computer"))
    keywords = _clean(_sys(system, "Keywords"))
    event_id, record_id = _sys(system, "EventID"), _sys(system, "EventRecordID")
    fam = _map_unique(pc.binary_join_element_wise(
        pc.fill_null(channel, ""), pc.fill_null(provider, ""), "\x1f"),
        lambda v: family(*(x or None for x in v.split("\x1f"))), pa.string())
    sysmon = _true(pc.equal(fam, SYSMON))
    rules = {eid: r for (f, eid), r in EVENT_TABLE.items() if f == SYSMON and r.shape in _SHAPES}
    known = pc.is_in(event_id, pa.array(list(rules), pa.int64()))
    b.refuse(pc.invert(_true(pc.and_(sysmon, known))))

    def per_rule(attr: str) -> pa.Array:
        return _map_unique(event_id, lambda e: getattr(rules[e], attr) if e in rules else None,
                           pa.string())

    category, action, shape, fixed = (per_rule("category"), per_rule("action"),
                                      per_rule("shape"), per_rule("outcome"))

    # time: System/TimeCreated/@SystemTime; anything else (zero, odd text) goes per record
    created = _clean(_sys(system, "TimeCreated", "#attributes", "SystemTime"))
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
    b.refuse(_true(pc.less_equal(pc.year(ts), 1601)))
    b.refuse(_true(pc.less_equal(pc.year(utc), 1601)))

    logon = b.get("LogonId", "SubjectLogonId")
    out: dict[str, pa.Array] = {
        "timestamp": ts, "category": category, "action": action,
        "user": pc.coalesce(b.get("User"), b.account("Subject")),
        "user_id": b.get("SubjectUserSid"), "host": computer,
        "process_image": b.get("Image"), "process_pid": b.to_int(b.get("ProcessId")),
        "process_command_line": b.get("CommandLine"), "session_id": logon,
        "win_logon_id": logon, "win_event_id": event_id, "win_channel": channel,
        "win_provider": provider, "win_record_id": record_id,
        "win_user_sid": _clean(_sys(system, "Security", "#attributes", "UserID")),
        "win_utc_time": utc, "win_rule_name": b.get("RuleName"),
        "win_process_guid": b.get("ProcessGuid"), "win_hashes": b.get("Hashes"),
        "win_event_data": event_data,
    }
    _apply_shapes(b, out, shape)
    # outcome: what the shape said, else the rule's, else the audit keywords, else success
    audit = _map_unique(keywords, audit_outcome, pa.string())
    out["outcome"] = pc.coalesce(out.get("outcome", b.null), fixed, audit, "success")
    out["message"] = _message(out, computer, b.null)
    # native id: (computer, channel, EventRecordID, time), as event_item builds it
    stamp = pc.replace_substring_regex(pc.strftime(ts, format="%Y-%m-%dT%H:%M:%S"),
                                       r"\.000000$", "")
    out["native_id"] = pc.binary_join_element_wise(
        _map_unique(computer, lambda v: v and v.casefold(), pa.string()),
        _map_unique(channel, lambda v: v and v.casefold(), pa.string()),
        pc.cast(record_id, pa.string()), _join(stamp, "+00:00"), "\x1f")
    out["source_line"] = pa.array(lines, pa.int64())
    out["raw"] = raw
    return pa.table(out), b.ok.to_pylist()


def _apply_shapes(b: _Batch, out: dict[str, pa.Array], shape: pa.Array) -> None:
    """The Sysmon shapes of windows_events_shapes, each applied where its rows are."""
    def put(name: str, **cols: Any) -> None:
        where = _true(pc.equal(shape, name))
        if not pc.any(where).as_py():
            return
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
    if pc.any(_true(pc.equal(shape, "network"))).as_py():
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
