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

from loaders.base import Item, Loader, Parsed, Reject, Source
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
from loaders.schema import Column

# Category of an event, keyed by its primary record type (UPPER CASE) or, for plain
# SYSCALL events, by the syscall name (lower case). Prefixes ending in "_" match a family.
CATEGORIES: dict[str, str] = {
    # authentication
    "USER_AUTH": "authentication", "USER_ACCT": "authentication",
    "USER_LOGIN": "authentication", "USER_ERR": "authentication",
    "CRED_ACQ": "authentication", "CRED_DISP": "authentication",
    "CRED_REFR": "authentication", "ANOM_LOGIN_FAILURES": "authentication",
    "ANOM_LOGIN_": "authentication", "GRP_AUTH": "authentication",
    # session
    "LOGIN": "session", "USER_START": "session", "USER_END": "session",
    "USER_LOGOUT": "session", "USER_TTY": "session", "TTY": "session",
    "CRYPTO_SESSION": "session", "CRYPTO_KEY_USER": "session",
    # process
    "USER_CMD": "process", "EXECVE": "process", "execve": "process", "execveat": "process",
    "fork": "process", "vfork": "process", "clone": "process", "clone3": "process",
    "kill": "process", "tkill": "process", "tgkill": "process", "ptrace": "process",
    # access management
    "ADD_USER": "access_management", "DEL_USER": "access_management",
    "ADD_GROUP": "access_management", "DEL_GROUP": "access_management",
    "USER_MGMT": "access_management", "GRP_MGMT": "access_management",
    "USER_CHAUTHTOK": "access_management", "GRP_CHAUTHTOK": "access_management",
    "ACCT_LOCK": "access_management", "ACCT_UNLOCK": "access_management",
    "USER_ROLE_CHANGE": "access_management", "ROLE_ASSIGN": "access_management",
    "ROLE_REMOVE": "access_management", "ROLE_MODIFY": "access_management",
    "ANOM_ADD_ACCT": "access_management", "ANOM_DEL_ACCT": "access_management",
    "ANOM_MOD_ACCT": "access_management", "ANOM_ROOT_TRANS": "access_management",
    "setuid": "access_management", "setreuid": "access_management",
    "setresuid": "access_management", "setgid": "access_management",
    # network (connect & co. only with a SOCKADDR; see _NETWORK_SYSCALLS)
    "SOCKADDR": "network", "NETFILTER_PKT": "network",
    # file
    "open": "file", "openat": "file", "openat2": "file", "creat": "file",
    "truncate": "file", "ftruncate": "file", "unlink": "file", "unlinkat": "file",
    "rename": "file", "renameat": "file", "renameat2": "file", "mkdir": "file",
    "mkdirat": "file", "rmdir": "file", "link": "file", "linkat": "file",
    "symlink": "file", "symlinkat": "file", "chmod": "file", "fchmod": "file",
    "fchmodat": "file", "chown": "file", "fchown": "file", "lchown": "file",
    "fchownat": "file", "setxattr": "file", "lsetxattr": "file", "fsetxattr": "file",
    "removexattr": "file", "lremovexattr": "file", "fremovexattr": "file",
    "mknod": "file", "mknodat": "file", "utimes": "file", "utimensat": "file",
    "FANOTIFY": "file",
    # system: audit configuration, daemon, services, time, MAC policy, anomalies
    "CONFIG_CHANGE": "system", "DAEMON_": "system", "SERVICE_START": "system",
    "SERVICE_STOP": "system", "SYSTEM_": "system", "USYS_CONFIG": "system",
    "NETFILTER_CFG": "system", "TIME_": "system", "KERN_MODULE": "system",
    "MAC_": "system", "AVC": "system", "SELINUX_ERR": "system", "USER_AVC": "system",
    "APPARMOR_": "system", "ANOM_": "system", "SECCOMP": "system",
    "BPRM_FCAPS": "system", "CAPSET": "system", "INTEGRITY_": "system",
    "FEATURE_CHANGE": "system", "KERNEL": "system", "BPF": "system",
}
# records that only complete another record (they never name the event)
_AUX_TYPES = frozenset({
    "SYSCALL", "EXECVE", "CWD", "PATH", "PROCTITLE", "SOCKADDR", "BPRM_FCAPS", "MMAP",
    "OBJ_PID", "FD_PAIR", "IPC", "CAPSET", "MQ_OPEN", "MQ_SENDRECV", "MQ_NOTIFY",
    "MQ_GETSETATTR", "EOE", "UNKNOWN",
})
_NEEDS_SYSCALL = frozenset({"EXECVE", "CWD", "PATH", "PROCTITLE", "SOCKADDR"})
_NETWORK_SYSCALLS = frozenset({
    "connect", "accept", "accept4", "bind", "listen", "sendto", "recvfrom", "sendmsg",
    "recvmsg", "socketcall",
})
_OUTCOMES = {
    "success": "success", "yes": "success", "1": "success",
    "failed": "failure", "failure": "failure", "no": "failure", "0": "failure",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SNIFF = re.compile(rb"(?m)^(?:node=\S+ )?type=[A-Z_0-9\[\]]+ msg=audit\(\d+\.\d+:\d+\)")


def categorize(kind: str, syscall: str | None, has_sockaddr: bool) -> str:
    """Category from the primary record type, or the syscall of a SYSCALL event."""
    if kind == "SYSCALL":
        if syscall in _NETWORK_SYSCALLS:
            return "network" if has_sockaddr else "system"
        return CATEGORIES.get(syscall or "", "system")
    if kind in CATEGORIES:
        return CATEGORIES[kind]
    for key, category in CATEGORIES.items():
        if key.endswith("_") and kind.startswith(key):
            return category
    return "system"


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
        return int(value) if value is not None else None
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
        assembler = Assembler()
        for line in src.lines():
            if line.text is None:
                yield Reject(line.number, line.warning or "unreadable line", "")
                continue
            text = line.text
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            rec = parse_record(text, line.number)
            if rec is None:
                yield Reject(line.number, _why_not(text), text)
                continue
            if line.warning:
                rec.warning = f"line {line.number}: {line.warning}"
                rec.text = line.raw or text
            for ev in assembler.add(rec):
                yield self._safe_event(ev)
        for ev in assembler.flush():
            yield self._safe_event(ev)

    def _safe_event(self, ev: Event) -> Item:
        try:
            return self.event(ev)
        except Exception as exc:  # one bad event must not stop the file
            return Reject(ev.first_line, f"cannot map audit event: {type(exc).__name__}: {exc}",
                          "\n".join(ev.lines))

    def event(self, ev: Event) -> Parsed:
        """Map one assembled event to schema fields.

        Args:
            ev: the event's records.

        Returns:
            The parsed event (native id node:time:serial).
        """
        recs = ev.records
        by_type: dict[str, list[Record]] = {}
        for rec in recs:
            by_type.setdefault(rec.type, []).append(rec)
        primary = next((r for r in recs if r.type not in _AUX_TYPES), None)
        syscall_rec = by_type.get("SYSCALL", [None])[0]
        head = primary or syscall_rec or (recs[0] if recs else None)
        kind = head.type if head else "EOE"
        # the fields of the naming record win over the SYSCALL's; other records (CWD, PATH,
        # EXECVE…) are read by type below. Dict unpacking keeps this at C speed.
        pfields = head.fields if head else {}
        merged: dict[str, str] = {}
        enriched: dict[str, str] = {}
        for rec in recs:
            if rec.type not in _AUX_TYPES and rec is not head:
                merged.update({k: v for k, v in rec.fields.items() if k not in merged})
        if syscall_rec is not None and syscall_rec is not head:
            merged = {**merged, **syscall_rec.fields, **pfields}
            enriched = {**syscall_rec.enriched, **(head.enriched if head else {})}
        else:
            merged = {**merged, **pfields}
            enriched = dict(head.enriched) if head else {}
        problems: list[str] = []
        if ev.fragment:
            problems.append("late records of an event already emitted")
        if syscall_rec is None and any(t in by_type for t in _NEEDS_SYSCALL):
            problems.append("SYSCALL record missing")

        syscall = enriched.get("SYSCALL") or syscall_name(merged.get("arch"),
                                                           merged.get("syscall"))
        args: list[str] | None = None
        if "EXECVE" in by_type:
            args, missing = assemble_argv(by_type["EXECVE"])
            problems.extend(missing)
        proctitle = decode_proctitle(by_type["PROCTITLE"][0].fields.get("proctitle")) \
            if "PROCTITLE" in by_type else None
        paths = path_items(by_type.get("PATH", []))
        items = _int(merged.get("items"))
        if items is not None and len(paths) < items:
            problems.append(f"{items - len(paths)} of {items} PATH records missing")
        family = address = None
        port: int | None = None
        if "SOCKADDR" in by_type:
            family, address, port = decode_sockaddr(by_type["SOCKADDR"][0].fields.get("saddr"))

        category = categorize(kind, syscall, family is not None)
        if kind == "SYSCALL" and category != "network" and args is not None:
            category = "process"
        action = (syscall or f"syscall {merged.get('syscall', '?')}") \
            if kind == "SYSCALL" else kind

        acct = decode_value("acct", pfields.get("acct") or merged.get("acct"))
        uid, auid = _id(merged.get("uid")), _id(merged.get("auid"))
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
            command = proctitle or decode_value("cmd", merged.get("cmd"))
        exe = decode_value("exe", merged.get("exe"))
        cwd = decode_value("cwd", by_type["CWD"][0].fields.get("cwd")) if "CWD" in by_type \
            else decode_value("cwd", merged.get("cwd"))
        src_ip = canonical_ip(merged.get("addr"))
        target_type, target = _target(category, kind, pfields, merged, acct, exe, paths,
                                      family, address, port)
        outcome = _outcome(pfields, merged)
        sec, frac = ev.key[1], ev.key[2]
        ts = _EPOCH + timedelta(seconds=int(sec), microseconds=int(frac[:6].ljust(6, "0")))
        avc = None
        if "avc_decision" in merged:
            avc = f"{merged['avc_decision']} {{ {merged.get('avc_permissions', '')} }}"
        elif "apparmor" in merged:
            avc = f"apparmor {decode_value('apparmor', merged['apparmor'])}"

        fields: dict[str, Any] = {
            "timestamp": ts,
            "category": category,
            "action": action,
            "outcome": outcome,
            "user": user,
            "user_id": user_id,
            "src_ip": src_ip,
            "session_id": _id(merged.get("ses")),
            "host": ev.key[0],
            "target_type": target_type,
            "target": target,
            "process_pid": _int(merged.get("pid")),
            "process_ppid": _int(merged.get("ppid")),
            "process_image": exe,
            "process_command_line": command,
            "message": _message(user, action, target, command, src_ip, outcome),
            "audit_type": kind,
            "audit_record_types": ",".join(r.type for r in recs) or None,
            "audit_records": len(recs),
            "audit_serial": int(ev.key[3]),
            "audit_incomplete": bool(problems),
            "audit_syscall": syscall,
            "audit_key": decode_key(merged.get("key")),
            "audit_exit": _int(merged.get("exit")),
            "audit_auid": auid,
            "audit_auid_name": _name(enriched, "AUID"),
            "audit_uid": uid,
            "audit_uid_name": _name(enriched, "UID"),
            "audit_euid": _id(merged.get("euid")),
            "audit_euid_name": _name(enriched, "EUID"),
            "audit_tty": decode_value("tty", merged.get("tty")),
            "audit_terminal": decode_value("terminal", merged.get("terminal")),
            "audit_hostname": decode_value("hostname", merged.get("hostname")),
            "audit_op": decode_value("op", merged.get("op")),
            "audit_comm": decode_value("comm", merged.get("comm")),
            "audit_cwd": cwd,
            "audit_args": to_json(args) if args is not None else None,
            "audit_proctitle": proctitle,
            "audit_paths": to_json(paths) if paths else None,
            "audit_sockaddr_family": family,
            "audit_sockaddr_address": address,
            "audit_sockaddr_port": port,
            "audit_avc": avc,
            "audit_subj": decode_value("subj", merged.get("subj")),
        }
        warnings = [f"incomplete event: {p}" for p in problems]
        warnings.extend(r.warning for r in recs if r.warning)
        return Parsed(ev.first_line, "\n".join(ev.lines), fields, native_id=ev.native_id(),
                      warnings=warnings or None)


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
