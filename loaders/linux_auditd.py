"""Linux audit daemon log (``audit.log``): one event per (node, time, serial).

The counted record is the EVENT, not the line: every record line sharing
``msg=audit(<time>:<serial>)`` (and ``node=``) is merged into one event, so ``read`` is the
number of distinct (node, time, serial) plus one reject per line that is not an audit
record. Blank lines and ``#`` comment lines are not records. Events are assembled in a
bounded window (see :mod:`loaders.linux_auditd_events`); an event whose records are
visibly incomplete (lost SYSCALL, missing EXECVE arguments or PATH items) is still loaded,
with ``audit_incomplete`` set and a ``parse_warning`` naming what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from loaders.base import Item, Loader, Parsed, ParsedTable, Reject, Source
from loaders.linux_auditd_categories import CATEGORIES as CATEGORIES  # re-exported
from loaders.linux_auditd_categories import categorize
from loaders.linux_auditd_events import (
    Assembler,
    Event,
    assemble_argv,
    path_items,
    path_target,
    to_json,
)
from loaders.linux_auditd_fields import (
    UNSET_ID,
    Record,
    canonical_ip,
    decode_key,
    decode_proctitle,
    decode_sockaddr,
    decode_value,
    parse_record,
)
from loaders.linux_auditd_syscalls import syscall_name
from loaders.linux_auditd_table import FIELD_COLUMNS, RowBatch, int64
from loaders.schema import Column

# records that only complete another record (they never name the event)
_AUX_TYPES = frozenset({
    "SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "SOCKADDR", "BPRM_FCAPS", "MMAP",
    "OBJ_PID", "FD_PAIR", "IPC", "CAPSET", "MQ_OPEN", "MQ_SENDRECV", "MQ_NOTIFY",
    "MQ_GETSETATTR", "EOE", "UNKNOWN",
})
_NEEDS_SYSCALL = frozenset({"EXECVE", "CWD", "PATH", "PROCTITLE", "SOCKADDR"})
_OUTCOMES = {
    "success": "success", "yes": "success", "1": "success",
    "failed": "failure", "failure": "failure", "no": "failure", "0": "failure",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SECONDS = int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH).total_seconds())
_SNIFF = re.compile(rb"(?m)^(?:node=\S+ )?type=[A-Z_0-9\[\]]+ msg=audit\(\d+\.\d+:\d+\)")


def _outcome(primary: dict[str, str], merged: dict[str, str]) -> str:
    decision = primary.get("avc_decision") or primary.get("apparmor", "").strip('"')
    if decision:
        return "denied" if decision.lower() == "denied" else "success"
    for value in (primary.get("res"), merged.get("res"), merged.get("success")):
        if value is not None:
            return _OUTCOMES.get(value.strip("'\"").lower(), "unknown")
    return "unknown"


def _id(value: str | None) -> str | None:
    return None if value in (None, UNSET_ID, "-1", "?") else value


def _name(enriched: dict[str, str], key: str) -> str | None:
    value = enriched.get(key)
    return None if value in (None, "unset", "?", "") else value


def _int(value: str | None) -> int | None:
    try:
        return int64(int(value)) if value is not None else None
    except ValueError:
        return None


class LinuxAuditdLoader(Loader):
    name = "linux_auditd"
    description = "Linux audit daemon log (audit.log), records merged into events"
    reads = ("raw and ENRICHED audit.log, node= prefix, rotated .gz; one event per "
             "(node, time, serial)")
    prefix = "audit_"
    record = "event (all records of one node+time+serial); unreadable lines count alone"
    extra_columns = (
        Column("audit_type", pa.string(), "primary record type (USER_LOGIN, SYSCALL, AVC…)"),
        Column("audit_record_types", pa.string(), "types of the merged records, in order"),
        Column("audit_records", pa.int64(), "number of records merged (EOE excluded)"),
        Column("audit_serial", pa.int64(), "event serial of msg=audit(time:serial)"),
        Column("audit_incomplete", pa.bool_(),
               "records of the event are visibly missing (see parse_warning)"),
        Column("audit_syscall", pa.string(), "syscall name (from SYSCALL=, or arch+number)"),
        Column("audit_key", pa.string(), "audit rule key(s), comma-separated"),
        Column("audit_exit", pa.int64(), "syscall exit value"),
        Column("audit_auid", pa.string(), "login uid (survives su/sudo); null when unset"),
        Column("audit_auid_name", pa.string(), "login user name (ENRICHED AUID=)"),
        Column("audit_uid", pa.string(), "uid of the process"),
        Column("audit_uid_name", pa.string(), "user name of uid (ENRICHED UID=)"),
        Column("audit_euid", pa.string(), "effective uid"),
        Column("audit_euid_name", pa.string(), "user name of euid (ENRICHED EUID=)"),
        Column("audit_tty", pa.string(), "tty of the process"),
        Column("audit_terminal", pa.string(), "terminal= of user-space messages"),
        Column("audit_hostname", pa.string(), "hostname= of user-space messages"),
        Column("audit_op", pa.string(), "op= of the event"),
        Column("audit_comm", pa.string(), "command name (comm=), decoded"),
        Column("audit_cwd", pa.string(), "working directory (CWD record or cwd=)"),
        Column("audit_args", pa.string(), "EXECVE argument vector, JSON list"),
        Column("audit_proctitle", pa.string(), "PROCTITLE decoded (NULs as spaces)"),
        Column("audit_paths", pa.string(), "PATH items, JSON list of objects"),
        Column("audit_sockaddr_family", pa.string(), "SOCKADDR family (inet, inet6, unix…)"),
        Column("audit_sockaddr_address", pa.string(), "SOCKADDR address or socket path"),
        Column("audit_sockaddr_port", pa.int64(), "SOCKADDR port"),
        Column("audit_avc", pa.string(), "AVC decision and permissions, e.g. denied { read }"),
        Column("audit_subj", pa.string(), "security context of the subject (subj=)"),
    )

    def sniff(self, head: bytes, name: str) -> bool:
        return _SNIFF.search(head[:16384]) is not None

    def parse(self, src: Source) -> Iterator[Item]:
        # mapped events are batched into Arrow tables (see linux_auditd_table); the batch is
        # flushed before any reject so that items stay in input order
        assembler = Assembler()
        batch = RowBatch()
        size = src.options.batch_size
        rows = batch.rows
        for line in src.lines():
            text = line.text
            if text is None:
                if rows:
                    yield ParsedTable(batch.take())
                    rows = batch.rows
                yield Reject(line.number, line.warning or "unreadable line", "")
                continue
            if text[:5] == "type=" or text[:5] == "node=":
                rec = parse_record(text, line.number)
            elif not text.strip() or text.lstrip().startswith("#"):
                continue
            else:
                rec = parse_record(text, line.number)
            if rec is None:
                if rows:
                    yield ParsedTable(batch.take())
                    rows = batch.rows
                yield Reject(line.number, _why_not(text), text)
                continue
            if line.warning:
                rec.warning = f"line {line.number}: {line.warning}"
                rec.text = line.raw or text
            for ev in assembler.add(rec):
                try:
                    rows.append(self.row(ev))
                except Exception as exc:  # one bad event must not stop the file
                    if rows:
                        yield ParsedTable(batch.take())
                        rows = batch.rows
                    yield _reject(ev, exc)
            if len(rows) >= size:
                yield ParsedTable(batch.take())
                rows = batch.rows
        for ev in assembler.flush():
            try:
                rows.append(self.row(ev))
            except Exception as exc:
                if rows:
                    yield ParsedTable(batch.take())
                    rows = batch.rows
                yield _reject(ev, exc)
        if rows:
            yield ParsedTable(batch.take())

    def event(self, ev: Event) -> Parsed:
        """Map one assembled event to schema fields.

        Args:
            ev: the event's records.

        Returns:
            The parsed event (native id node:time:serial).
        """
        values = self.row(ev)
        n = len(FIELD_COLUMNS)
        line, raw, native_id, warning = values[n:]
        fields = dict(zip(FIELD_COLUMNS, values[:n], strict=True))
        fields["timestamp"] = _EPOCH + timedelta(microseconds=fields["timestamp"])
        return Parsed(line, raw, fields, native_id=native_id,
                      warnings=warning.split("; ") if warning else None)

    def row(self, ev: Event) -> tuple[Any, ...]:
        """Map one assembled event to one row, in ``ROW_COLUMNS`` order.

        Args:
            ev: the event's records.

        Returns:
            The schema values, then source line, raw text, native id and parse warning.
        """
        recs = ev.records
        by_type: dict[str, list[Record]] = {}
        primary: Record | None = None
        for rec in recs:
            kind = rec.type
            group = by_type.get(kind)
            if group is None:
                by_type[kind] = [rec]
            else:
                group.append(rec)
            if primary is None and kind not in _AUX_TYPES:
                primary = rec
        syscall_rec = by_type["SYSCALL"][0] if "SYSCALL" in by_type else None
        head = primary or syscall_rec or (recs[0] if recs else None)
        kind = head.type if head else "EOE"
        # the fields of the naming record win over the SYSCALL's; other records (CWD, PATH,
        # EXECVE…) are read by type below. Dict unpacking keeps this at C speed.
        pfields = head.fields if head else {}
        merged: dict[str, str] = {}
        if len(by_type) > 1 or len(recs) > 1:
            for rec in recs:
                if rec.type not in _AUX_TYPES and rec is not head:
                    merged.update({k: v for k, v in rec.fields.items() if k not in merged})
        if syscall_rec is not None and syscall_rec is not head:
            merged = {**merged, **syscall_rec.fields, **pfields}
            enriched = {**syscall_rec.enriched, **(head.enriched if head else {})}
        else:
            merged = {**merged, **pfields} if merged else pfields
            enriched = head.enriched if head else {}
        get = merged.get
        problems: list[str] = []
        if ev.fragment:
            problems.append("late records of an event already emitted")
        if syscall_rec is None and not _NEEDS_SYSCALL.isdisjoint(by_type):
            problems.append("SYSCALL record missing")

        syscall = enriched.get("SYSCALL") or syscall_name(get("arch"), get("syscall"))
        args: list[str] | None = None
        if "EXECVE" in by_type:
            args, missing = assemble_argv(by_type["EXECVE"])
            problems.extend(missing)
        proctitle = decode_proctitle(by_type["PROCTITLE"][0].fields.get("proctitle")) \
            if "PROCTITLE" in by_type else None
        paths = path_items(by_type["PATH"]) if "PATH" in by_type else []
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
        uid, auid = _id(get("uid")), _id(get("auid"))
        user: str | None
        user_id: str | None = None
        if acct:
            user = acct
        elif "id" in pfields and category in ("authentication", "session"):
            user, user_id = _name(enriched, "ID") or pfields["id"], pfields["id"]
        else:
            user = _name(enriched, "UID") or _name(enriched, "AUID") or uid or auid
            user_id = uid

        command: str | None
        if args is not None:
            command = " ".join(args)
        else:
            command = proctitle or decode_value("cmd", get("cmd"))
        exe = decode_value("exe", get("exe"))
        cwd = decode_value("cwd", by_type["CWD"][0].fields.get("cwd")) if "CWD" in by_type \
            else decode_value("cwd", get("cwd"))
        addr = get("addr")
        src_ip = canonical_ip(addr) if addr is not None else None
        target_type, target = _target(category, kind, pfields, merged, acct, exe, paths,
                                      family, address, port)
        outcome = _outcome(pfields, merged)
        node, sec, frac, serial = ev.key
        # epoch microseconds: Arrow converts ints ~50x faster than datetimes
        seconds = int(sec)
        if seconds > _MAX_SECONDS:
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

        warnings = [f"incomplete event: {p}" for p in problems]
        warnings += [r.warning for r in recs if r.warning]
        return (
            ts, category, action, outcome, user, user_id, src_ip, _id(get("ses")), node,
            target_type, target, _int(get("pid")), _int(get("ppid")), exe, command,
            _message(user, action, target, command, src_ip, outcome),
            kind, ",".join([r.type for r in recs]) or None, len(recs), audit_serial,
            bool(problems), syscall, decode_key(get("key")), _int(get("exit")),
            auid, _name(enriched, "AUID"), uid, _name(enriched, "UID"), _id(get("euid")),
            _name(enriched, "EUID"), decode_value("tty", get("tty")),
            decode_value("terminal", get("terminal")), decode_value("hostname", get("hostname")),
            decode_value("op", get("op")), decode_value("comm", get("comm")), cwd,
            to_json(args) if args is not None else None, proctitle,
            to_json(paths) if paths else None, family, address, port, avc,
            decode_value("subj", get("subj")),
            ev.first_line, "\n".join(ev.lines), ev.native_id(),
            "; ".join(warnings) if warnings else None,
        )


def _reject(ev: Event, exc: Exception) -> Reject:
    return Reject(ev.first_line, f"cannot map audit event: {type(exc).__name__}: {exc}",
                  "\n".join(ev.lines))


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


def _why_not(text: str) -> str:
    if "type=" in text and "msg=" in text:
        return "audit record without a msg=audit(<time>:<serial>) stamp"
    return "not an audit record (expected `type=TYPE msg=audit(<time>:<serial>): …`)"


LOADER = LinuxAuditdLoader()
