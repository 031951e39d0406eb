"""Mapping one assembled auditd event to one row of schema values (the loader's hot path).

:func:`map_event` gives the tuple :class:`~loaders.linux_auditd.rows.RowBatch` turns into
Arrow columns. It is written for speed without changing a value:

- a one-record event (most user-space events) skips the merging of records;
- the parts computed from auxiliary records that repeat verbatim (EXECVE arguments, PATH
  items and their JSON) are computed once per distinct record: the
  :class:`~loaders.linux_auditd.fields.RecordParser` gives equal bodies one shared fields
  dict, and :class:`_ByIdentity` remembers results by that dict's identity;
- small helpers are inlined where they ran once per field of every event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from loaders.base import Item, ParsedTable, Reject
from loaders.linux_auditd.categories import categorize
from loaders.linux_auditd.events import Event, assemble_argv, path_items, path_target, to_json
from loaders.linux_auditd.fields import (
    UNSET_ID,
    Record,
    canonical_ip,
    decode_key,
    decode_proctitle,
    decode_sockaddr,
    decode_value,
)
from loaders.linux_auditd.rows import ROW_COLUMNS, RowBatch, int64
from loaders.linux_auditd.syscalls import syscall_name

# records that only complete another record (they never name the event)
AUX_TYPES = frozenset({
    "SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "SOCKADDR", "BPRM_FCAPS", "MMAP",
    "OBJ_PID", "FD_PAIR", "IPC", "CAPSET", "MQ_OPEN", "MQ_SENDRECV", "MQ_NOTIFY",
    "MQ_GETSETATTR", "EOE", "UNKNOWN",
})
_NEEDS_SYSCALL = frozenset({"EXECVE", "CWD", "PATH", "PROCTITLE", "SOCKADDR"})
_OUTCOMES = {
    "success": "success", "yes": "success", "1": "success",
    "failed": "failure", "failure": "failure", "no": "failure", "0": "failure",
}
_NO_ID = frozenset({UNSET_ID, "-1", "?"})
_NO_NAME = frozenset({"unset", "?", ""})
MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
_EMPTY: dict[str, str] = {}

V = TypeVar("V", bound=tuple[Any, ...])


class _ByFields(Generic[V]):
    """Results computed from records that depend only on their fields dicts, remembered by
    the dicts' identity (the record cache gives equal bodies one shared dict). An entry keeps
    its dicts alive, so an id cannot be reused by another dict while the entry exists.

    Args:
        fn: the computation, from the records.
        text_at: index in its result of the JSON text; a result whose text is longer than
            ``longest`` is not kept, so the memory held stays bounded.
        size: the most results kept.
    """

    def __init__(self, fn: Callable[[list[Record]], V], text_at: int, size: int = 4096,
                 longest: int = 4096) -> None:
        self._fn = fn
        self._text_at = text_at
        self._size = size
        self._longest = longest
        self._memo: dict[tuple[int, ...], tuple[tuple[dict[str, str], ...], V]] = {}

    def __call__(self, recs: list[Record]) -> V:
        fields = tuple([rec.fields for rec in recs])
        key = tuple(map(id, fields))
        hit = self._memo.get(key)
        if hit is not None:
            return hit[1]
        value = self._fn(recs)
        text = value[self._text_at]
        if text is None or len(text) <= self._longest:
            if len(self._memo) >= self._size:
                self._memo.clear()
            self._memo[key] = (fields, value)
        return value


def _argv(execve: list[Record]) -> tuple[list[str], list[str], str, str]:
    args, missing = assemble_argv(execve)
    return args, missing, to_json(args), " ".join(args)


def _paths(recs: list[Record]) -> tuple[list[dict[str, str | None]], str | None]:
    paths = path_items(recs)
    return paths, to_json(paths) if paths else None


_ARGV = _ByFields(_argv, 2)
_PATHS = _ByFields(_paths, 1)


def _merge(recs: list[Record]) -> tuple[
        dict[str, list[Record]], Record | None, Record | None, dict[str, str],
        dict[str, str], dict[str, str]]:
    """(by_type, syscall record, head record, head fields, merged fields, enriched) of an
    event of several records (or none)."""
    by_type: dict[str, list[Record]] = {}
    primary: Record | None = None
    for rec in recs:
        kind = rec.type
        group = by_type.get(kind)
        if group is None:
            by_type[kind] = [rec]
        else:
            group.append(rec)
        if primary is None and kind not in AUX_TYPES:
            primary = rec
    syscall_rec = by_type["SYSCALL"][0] if "SYSCALL" in by_type else None
    head = primary or syscall_rec or (recs[0] if recs else None)
    # the fields of the naming record win over the SYSCALL's; other records (CWD, PATH,
    # EXECVE…) are read by type. Dict unpacking keeps this at C speed.
    pfields = head.fields if head else _EMPTY
    merged: dict[str, str] = {}
    for rec in recs:
        if rec.type not in AUX_TYPES and rec is not head:
            merged.update({k: v for k, v in rec.fields.items() if k not in merged})
    if syscall_rec is not None and syscall_rec is not head:
        merged = {**merged, **syscall_rec.fields, **pfields}
        enriched = {**syscall_rec.enriched, **(head.enriched if head else _EMPTY)}
    else:
        merged = {**merged, **pfields} if merged else pfields
        enriched = head.enriched if head else _EMPTY
    return by_type, syscall_rec, head, pfields, merged, enriched


def _execve(by_type: dict[str, list[Record]]) -> tuple[list[str], list[str], str, str]:
    execve = by_type["EXECVE"]
    return _ARGV(execve) if len(execve) == 1 else _argv(execve)


def _path_list(by_type: dict[str, list[Record]]) -> tuple[list[dict[str, str | None]],
                                                           str | None]:
    recs = by_type["PATH"]
    if any(rec.enriched for rec in recs):
        return _paths(recs)
    return _PATHS(recs)


def map_event(ev: Event) -> tuple[Any, ...]:
    """Map one assembled event to one row, in ``ROW_COLUMNS`` order.

    Args:
        ev: the event's records.

    Returns:
        The schema values, then source line, raw text, native id and parse warning.
    """
    recs = ev.records
    head: Record | None
    if len(recs) == 1:
        head = recs[0]
        kind = head.type
        by_type = {kind: recs}
        syscall_rec = head if kind == "SYSCALL" else None
        merged = pfields = head.fields
        enriched = head.enriched
    else:
        by_type, syscall_rec, head, pfields, merged, enriched = _merge(recs)
        kind = head.type if head else "EOE"
    get = merged.get
    problems: list[str] = []
    if ev.fragment:
        problems.append("late records of an event already emitted")
    if syscall_rec is None and not _NEEDS_SYSCALL.isdisjoint(by_type):
        problems.append("SYSCALL record missing")

    arch = get("arch")
    syscall = (enriched.get("SYSCALL") if enriched else None) or (
        syscall_name(arch, get("syscall")) if arch else None)
    args: list[str] | None = None
    args_json = paths_json = command = None
    if "EXECVE" in by_type:
        args, missing, args_json, command = _execve(by_type)
        problems.extend(missing)
    proctitle = decode_proctitle(by_type["PROCTITLE"][0].fields.get("proctitle")) \
        if "PROCTITLE" in by_type else None
    paths: list[dict[str, str | None]] = []
    if "PATH" in by_type:
        paths, paths_json = _path_list(by_type)
    items = _int(get("items"))
    if items is not None and len(paths) < items:
        problems.append(f"{items - len(paths)} of {items} PATH records missing")
    family = address = None
    port: int | None = None
    if "SOCKADDR" in by_type:
        family, address, port = decode_sockaddr(by_type["SOCKADDR"][0].fields.get("saddr"))

    category = categorize(kind, syscall, family is not None)
    if kind == "SYSCALL" and category != "network" and args is not None:
        category = "process"
    action = (syscall or f"syscall {get('syscall', '?')}") if kind == "SYSCALL" else kind

    acct = decode_value("acct", pfields.get("acct") or get("acct"))
    uid = get("uid")
    auid = get("auid")
    uid = None if uid in _NO_ID else uid
    auid = None if auid in _NO_ID else auid
    euid = get("euid")
    uid_name = auid_name = euid_name = None
    if enriched:
        uid_name, auid_name, euid_name = (_name(enriched, "UID"), _name(enriched, "AUID"),
                                          _name(enriched, "EUID"))
    user: str | None
    user_id: str | None = None
    if acct:
        user = acct
    elif "id" in pfields and category in ("authentication", "session"):
        user, user_id = _name(enriched, "ID") or pfields["id"], pfields["id"]
    else:
        user = uid_name or auid_name or uid or auid
        user_id = uid

    if args is None:
        command = proctitle or decode_value("cmd", get("cmd"))
    exe = decode_value("exe", get("exe"))
    cwd = decode_value("cwd", by_type["CWD"][0].fields.get("cwd")) if "CWD" in by_type \
        else decode_value("cwd", get("cwd"))
    addr = get("addr")
    src_ip, ip_warning = canonical_ip(addr) if addr is not None else (None, None)
    target_type, target = _target(category, kind, pfields, merged, acct, exe, paths,
                                  family, address, port)
    outcome = _outcome(pfields, merged)
    node, sec, frac, serial = ev.key
    # the serial restarts at each boot and on each host: time + serial is unique on one host,
    # so without node= (which host) the native id also holds the event's text
    raw = "\n".join(ev.lines)
    # epoch microseconds: Arrow converts ints ~50x faster than datetimes
    seconds = int(sec)
    if seconds > MAX_SECONDS:
        raise OverflowError("date value out of range")
    ts = seconds * 1_000_000 + int(frac[:6].ljust(6, "0"))
    avc = None
    if "avc_decision" in merged:
        avc = f"{merged['avc_decision']} {{ {get('avc_permissions', '')} }}"
    elif "apparmor" in merged:
        avc = f"apparmor {decode_value('apparmor', merged['apparmor'])}"
    audit_serial = int64(int(serial))
    if audit_serial is None:
        raise ValueError(f"serial {serial} out of range")
    if ev.borrowed:  # not this record's serial
        audit_serial = None

    warnings = [f"incomplete event: {p}" for p in problems]
    warnings += [r.warning for r in recs if r.warning]
    if ip_warning:
        warnings.append(ip_warning)
    ses = get("ses")
    return (
        ts, category, action, outcome, user, user_id, src_ip,
        None if ses in _NO_ID else ses, node,
        target_type, target, _int(get("pid")), _int(get("ppid")), exe, command,
        _message(user, action, target, command, src_ip, outcome),
        kind, ",".join([r.type for r in recs]) or None, len(recs), audit_serial,
        bool(problems), syscall, decode_key(get("key")), _int(get("exit")),
        auid, auid_name, uid, uid_name, None if euid in _NO_ID else euid,
        euid_name, decode_value("tty", get("tty")),
        decode_value("terminal", get("terminal")), decode_value("hostname", get("hostname")),
        decode_value("op", get("op")), decode_value("comm", get("comm")), cwd,
        args_json, proctitle, paths_json, family, address, port, avc,
        decode_value("subj", get("subj")),
        ev.first_line, raw, ev.native_id() if node else f"{ev.native_id()}\x1f{raw}",
        "; ".join(warnings) if warnings else None,
    )


# a batch of mapped rows holds at most this much raw text (huge EXECVE records), so memory
# stays flat whatever the events' size
BATCH_CHARS = 8 << 20
_RAW = ROW_COLUMNS.index("raw")


class Rows:
    """Mapped events waiting to become tables, in input order.

    Args:
        size: the most events in one table (a table is also cut at :data:`BATCH_CHARS`).
    """

    def __init__(self, size: int) -> None:
        self.batch = RowBatch()
        self.size = size
        self.chars = 0  # raw text in the batch

    def add(self, events: Iterable[Event]) -> list[Item]:
        """Map events; the items to yield now: full tables, and the reject of an event that
        cannot be mapped, after the rows before it (one bad event must not stop the file)."""
        items: list[Item] = []
        rows = self.batch.rows
        for ev in events:
            try:
                row = map_event(ev)
            except Exception as exc:
                items += self.flush()
                rows = self.batch.rows
                items.append(map_failure(ev, exc))
                continue
            rows.append(row)
            self.chars += len(row[_RAW])
            if len(rows) >= self.size or self.chars >= BATCH_CHARS:
                items += self.flush()
                rows = self.batch.rows
        return items

    def flush(self) -> list[Item]:
        """The pending rows as one table item, if any."""
        self.chars = 0
        return [ParsedTable(self.batch.take())] if self.batch.rows else []


def map_failure(ev: Event, exc: Exception) -> Reject:
    """The reject of an event :func:`map_event` could not map (one bad event must not stop
    the file)."""
    return Reject(ev.first_line, f"cannot map audit event: {type(exc).__name__}: {exc}",
                  "\n".join(ev.lines))


def _outcome(primary: dict[str, str], merged: dict[str, str]) -> str:
    decision = primary.get("avc_decision") or primary.get("apparmor", "").strip('"')
    if decision:
        return "denied" if decision.lower() == "denied" else "success"
    value = primary.get("res")
    if value is None:
        value = merged.get("res")
        if value is None:
            value = merged.get("success")
            if value is None:
                return "unknown"
    outcome = _OUTCOMES.get(value)  # the usual spellings, as written
    return outcome or _OUTCOMES.get(value.strip("'\"").lower(), "unknown")


def _name(enriched: dict[str, str], key: str) -> str | None:
    value = enriched.get(key)
    return None if value is None or value in _NO_NAME else value


def _int(value: str | None) -> int | None:
    try:
        return int64(int(value)) if value is not None else None
    except ValueError:
        return None


def _target(
    category: str, kind: str, pfields: dict[str, str], merged: dict[str, str],
    acct: str | None, exe: str | None, paths: list[dict[str, str | None]],
    family: str | None, address: str | None, port: int | None,
) -> tuple[str | None, str | None]:
    """(target_type, target): what the event acted on, by category."""
    if category == "network" and family:
        if port is None:
            return "socket", address
        host = f"[{address}]" if family == "inet6" else address
        return "socket", f"{host}:{port}"
    if kind in ("AVC", "USER_AVC") or kind.startswith("APPARMOR"):
        name = decode_value("name", merged.get("name")) or decode_value("path", merged.get("path"))
        return decode_value("tclass", merged.get("tclass")) or "object", \
            name or path_target(paths)
    if category == "access_management" and kind != "SYSCALL":
        name = acct or decode_value("grp", pfields.get("grp")) or pfields.get("id")
        return ("account", name) if name else (None, None)
    if kind == "CONFIG_CHANGE":
        return "audit_config", decode_value("op", pfields.get("op")) or next(
            (k for k in pfields if k.startswith("audit_")), None)
    if category == "file":
        return "file", path_target(paths)
    if category == "process" and exe:
        return "executable", exe
    return None, None


def _message(user: str | None, action: str, target: str | None, command: str | None,
             src_ip: str | None, outcome: str) -> str:
    parts = [user or "?", action]
    if command:
        parts.append(command if len(command) <= 200 else command[:200] + "…")
    elif target:
        parts.append(target)
    if src_ip:
        parts.append(f"from {src_ip}")
    return " ".join(parts) + f" -> {outcome}"
