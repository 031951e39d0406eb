"""What an auth-log message says, shared by every source that reads syslog messages
(``linux_auth``; ``linux_syslog``'s text lines and journal records): one mapping, so the
same sshd, sudo or su message gives the same values whichever source stores it.

Each :class:`Rule` turns the message text of one syslog line from sshd, sudo, su, PAM,
shadow-utils or systemd-logind into an action, a category, an outcome and named fields.
The first rule whose program matches and whose pattern matches wins; a message no rule
knows is still an event (category ``log``). :func:`auth_fields` turns that into the stored
columns (core and ``auth_*``); :class:`SyslogMapper` maps whole syslog lines of one file
(header, year, rsyslog's ``message repeated N times: [ … ]``, BSD's ``last message
repeated N times``, the numbering of identical lines).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loaders.base import Item, Parsed, Reject
from loaders.parsing.syslog import Header, YearGuesser, parse_header, repeated
from loaders.parsing.values import canonical_ip

_USER = r"(?P<user>.*?)"
_FROM = r"(?P<ip>\S+) port (?P<port>\d+)"
_PRE = r"(?P<preauth> \[preauth\])?\s*$"
_WHO = r"(?:(?P<who>invalid|authenticating) user (?P<user>.*?) |user (?P<user2>\S+) )?"


@dataclass(frozen=True)
class Rule:
    """One kind of message.

    Attributes:
        programs: syslog program names it applies to (``*`` for any).
        pattern: regex over the message; its named groups become fields.
        action, category, outcome: what the event is.
    """

    programs: frozenset[str]
    pattern: re.Pattern[str]
    action: str
    category: str
    outcome: str


def _rule(programs: str, pattern: str, action: str, category: str, outcome: str) -> Rule:
    return Rule(frozenset(programs.split()), re.compile(pattern), action, category, outcome)


SSHD = "sshd sshd-session sshd-auth"
# (programs, message pattern, action, category, outcome) — first match wins
RULES: tuple[Rule, ...] = (
    _rule(SSHD, r"^Accepted (?P<method>\S+) for " + _USER + r" from " + _FROM +
          r"(?:\s+ssh2)?(?:: (?P<key>.*))?\s*$",
          "ssh_login", "authentication", "success"),
    _rule(SSHD, r"^Failed (?P<method>\S+) for (?P<invalid>invalid user )?" + _USER +
          r" from " + _FROM + r"(?:\s+ssh2)?(?:: (?P<key>.*))?\s*$",
          "ssh_login", "authentication", "failure"),
    _rule(SSHD, r"^Invalid user " + _USER + r" from (?P<ip>\S+)(?: port (?P<port>\d+))?" + _PRE,
          "ssh_invalid_user", "authentication", "failure"),
    _rule(SSHD, r"^error: maximum authentication attempts exceeded for "
          r"(?P<invalid>invalid user )?" + _USER + r" from " + _FROM + r"(?:\s+ssh2)?" + _PRE,
          "ssh_max_auth_attempts", "authentication", "failure"),
    _rule(SSHD, r"^Connection closed by " + _WHO + _FROM + _PRE,
          "ssh_connection_closed", "session", "unknown"),
    _rule(SSHD, r"^Connection reset by " + _WHO + _FROM + _PRE,
          "ssh_connection_reset", "session", "unknown"),
    _rule(SSHD, r"^Disconnected from " + _WHO + _FROM + _PRE,
          "ssh_disconnected", "session", "unknown"),
    _rule(SSHD, r"^Received disconnect from " + _FROM + r":\s*(?P<code>\d+): (?P<reason>.*?)"
          + _PRE, "ssh_disconnect_received", "session", "unknown"),
    _rule(SSHD, r"^Timeout before authentication for (?:connection from )?" + _FROM + _PRE,
          "ssh_preauth_timeout", "session", "failure"),
    _rule(SSHD, r"^Connection from " + _FROM + r"(?: on \S+ port \d+)?(?: rdomain \S*)?\s*$",
          "ssh_connection", "session", "unknown"),
    _rule(SSHD, r"^Server listening on (?P<ip>\S+) port (?P<port>\d+)\.?\s*$",
          "ssh_listen", "system", "success"),
    _rule("sudo", r"^\s*(?P<user>\S+) : (?P<detail>.*?)\bCOMMAND=(?P<command>.*)$",
          "sudo", "process", "success"),
    _rule("su", r"^(?:Successful su for (?P<target>\S+) by (?P<user>\S+)|"
          r"\(to (?P<target2>\S+)\) (?P<user2>\S+) on (?P<tty>\S+))\s*$",
          "su", "authentication", "success"),
    _rule("su", r"^FAILED (?:su for (?P<target>\S+) by (?P<user>\S+)|"
          r"SU \(to (?P<target2>\S+)\) (?P<user2>\S+) on (?P<tty>\S+))\s*$",
          "su", "authentication", "failure"),
    _rule("*", r"^pam_unix\((?P<service>[^:)]+):session\): session (?P<state>opened|closed) "
          r"for user (?P<user>[^\s(]+)(?:\(uid=\d+\))?(?: by (?P<by>[^\s(]*)"
          r"(?:\(uid=(?P<by_uid>\d+)\))?)?\s*$",
          "session", "session", "success"),
    _rule("*", r"^pam_unix\((?P<service>[^:)]+):auth\): authentication failure;"
          r"(?P<kv>.*)$", "pam_auth_failure", "authentication", "failure"),
    _rule("*", r"^PAM (?P<count>\d+) more authentication failures?;(?P<kv>.*)$",
          "pam_auth_failure", "authentication", "failure"),
    _rule("*", r"^pam_unix\((?P<service>[^:)]+):chauthtok\): password changed for "
          r"(?P<target>\S+)\s*$", "password_changed", "access_management", "success"),
    _rule("useradd", r"^new user: name=(?P<target>[^,]+), UID=(?P<uid>\d+), GID=\d+, "
          r"home=(?P<home>[^,]+), shell=(?P<shell>[^,]+)", "useradd",
          "access_management", "success"),
    _rule("useradd groupadd", r"^new group: name=(?P<target>[^,]+), GID=(?P<gid>\d+)",
          "groupadd", "access_management", "success"),
    _rule("userdel", r"^delete user '(?P<target>[^']+)'", "userdel", "access_management",
          "success"),
    _rule("usermod useradd gpasswd", r"^add '(?P<target>[^']+)' to (?:shadow )?group "
          r"'(?P<group>[^']+)'", "group_member_added", "access_management", "success"),
    _rule("passwd chpasswd", r"^password for '(?P<target>[^']+)' changed by '(?P<user>[^']+)'",
          "password_changed", "access_management", "success"),
    _rule("systemd-logind", r"^New session (?P<session>\S+) of user (?P<user>[^\s.]+)\.?\s*$",
          "session_new", "session", "success"),
    _rule("systemd-logind", r"^Removed session (?P<session>[^\s.]+)\.?\s*$",
          "session_removed", "session", "success"),
)
MAX_MESSAGE = 4096
_KV = re.compile(r"(\w+)=(\S*)")
_SUDO_FAILURES = {
    "incorrect password attempt": ("sudo_auth_failure", "authentication", "failure"),
    "NOT in sudoers": ("sudo_denied", "process", "denied"),
    "command not allowed": ("sudo_denied", "process", "denied"),
    "a password is required": ("sudo_auth_failure", "authentication", "failure"),
    "NOT allowed to run sudo": ("sudo_denied", "process", "denied"),
}


def interpret(program: str, message: str) -> tuple[str, str, str, dict[str, Any]] | None:
    """Match a message against :data:`RULES`.

    Args:
        program: the syslog program (tag) without pid, e.g. ``sshd``.
        message: the text after ``program[pid]: ``.

    Returns:
        (action, category, outcome, fields) or None when no rule matches. Fields use the
        names ``user``, ``ip``, ``port``, ``target``, ``method``, ``command``, ``tty``,
        ``cwd``, ``service``, ``by``, ``preauth``, ``invalid``, ``key``, ``session``…
    """
    if len(message) > MAX_MESSAGE:  # real messages are short; keeps the regexes linear
        return None
    for rule in RULES:
        if "*" not in rule.programs and program not in rule.programs:
            continue
        m = rule.pattern.match(message)
        if m is None:
            continue
        fields = {k: v for k, v in m.groupdict().items() if v is not None}
        for alias, name in (("user2", "user"), ("target2", "target")):
            if alias in fields:
                fields.setdefault(name, fields.pop(alias))
        action, category, outcome = rule.action, rule.category, rule.outcome
        if rule.action == "sudo":
            action, category, outcome = _sudo(fields, action, category, outcome)
        elif rule.action == "session":
            action = f"session_{fields['state']}"
        elif "kv" in fields:
            kv = dict(_KV.findall(fields.pop("kv")))
            # user= is the account authenticated as; ruser/logname is who asked
            fields.setdefault("user", kv.get("user") or kv.get("ruser") or None)
            if kv.get("ruser") or kv.get("logname"):
                fields["ruser"] = kv.get("ruser") or kv.get("logname")
            if kv.get("rhost"):
                fields["ip"] = kv["rhost"]
            if kv.get("tty"):
                fields["tty"] = kv["tty"]
        if fields.get("who") == "invalid":
            fields["invalid"] = True
        return action, category, outcome, fields
    return None


def _sudo(fields: dict[str, Any], action: str, category: str,
          outcome: str) -> tuple[str, str, str]:
    """sudo's ``user : [error ;] TTY=.. ; PWD=.. ; USER=.. ; COMMAND=..`` line."""
    for part in fields.pop("detail").split(" ; "):
        part = part.strip().rstrip(";").strip()
        key, sep, value = part.partition("=")
        if sep and key in ("TTY", "PWD", "USER", "GROUP"):
            fields[{"TTY": "tty", "PWD": "cwd", "USER": "target", "GROUP": "group"}[key]] = value
        elif part:
            fields["error"] = part
            for text, result in _SUDO_FAILURES.items():
                if text in part:
                    action, category, outcome = result
            if outcome == "success":  # an error sudo does not name: refused all the same
                action, category, outcome = "sudo_denied", "process", "denied"
    return action, category, outcome


# the PAM phase a ``prog(pam_unix)[pid]:`` message belongs to, from its first words: the
# older tag style drops the ``pam_unix(service:phase):`` prefix that the rules match on
_MODULE_PHASES = (("session ", "session"), ("authentication failure", "auth"),
                  ("check pass", "auth"), ("password changed", "chauthtok"))


def interpret_tagged(program: str, module: str | None,
                     message: str) -> tuple[str, str, str, dict[str, Any]] | None:
    """:func:`interpret`, for a message whose tag may name a PAM module (``sshd(pam_unix)``).

    ``sshd(pam_unix)[42]: session opened for user root by (uid=0)`` is read as
    ``sshd[42]: pam_unix(sshd:session): session opened for user root by (uid=0)`` is: the
    two spellings are the same event from two generations of PAM logging.
    """
    if module is not None:
        for start, phase in _MODULE_PHASES:
            if message.startswith(start):
                found = interpret(program, f"{module}({program}:{phase}): {message}")
                if found is not None:
                    return found
    return interpret(program, message)


def auth_fields(prog: str, msg: str, pid: str | None,
                module: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The stored columns of one syslog message (everything but time, host and repeats).

    Args:
        prog: the program (tag) without pid or module.
        msg: the message, stripped.
        pid: the pid as written, or None.
        module: the PAM module of a ``prog(module)[pid]:`` tag.

    Returns:
        (fields, warnings): core columns and the ``auth_*`` columns, and the damaged
        values set to null (an address that is not one).
    """
    found = interpret_tagged(prog, module, msg)
    warnings: list[str] = []
    f: dict[str, Any]
    if found is None:
        action, category, outcome, f = "message", "log", "unknown", {}
    else:
        action, category, outcome, f = found
    ip, ip_warning = canonical_ip(f.get("ip"))
    user = f.get("user") or None
    target = f.get("target")
    target_type = "account" if target else None
    if action == "ssh_listen":
        target_type, target = "listener", f"{f.get('ip')}:{f.get('port')}"
        ip = ip_warning = None
    if ip_warning:
        warnings.append(ip_warning)
    fields: dict[str, Any] = {
        "category": category,
        "action": action,
        "outcome": outcome,
        "user": user,
        "src_ip": ip,
        "session_id": f.get("session"),
        "target_type": target_type,
        "target": target,
        "process_pid": int(pid) if pid and pid.isdigit() else None,
        "process_command_line": f.get("command"),
        "message": msg,
        "auth_program": prog or None,  # a header with no tag names no program
        "auth_method": f.get("method"),
        "auth_port": int(f["port"]) if f.get("port") else None,
        "auth_tty": f.get("tty"),
        "auth_cwd": f.get("cwd"),
        "auth_service": f.get("service"),
        "auth_by_user": f.get("by") or f.get("by_uid") or f.get("ruser"),
        "auth_invalid_user": True if f.get("invalid") else None,
        "auth_preauth": True if f.get("preauth") else None,
        "auth_key": f.get("key"),
        "auth_error": f.get("error"),
        "auth_reason": f.get("reason"),
    }
    return fields, warnings


def message_fields(prog: str, msg: str, pid: str | None,
                   module: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """:func:`auth_fields` of a message that may be rsyslog's ``message repeated N times:
    [ inner ]``: the inner message is the event, ``repeat_count`` says how many times it
    occurred (null: once)."""
    msg = msg.lstrip("\ufeff").strip()
    times = repeated(msg)
    if times is None:
        fields, warnings = auth_fields(prog, msg, pid, module)
        fields["repeat_count"] = None
        return fields, warnings
    fields, warnings = auth_fields(prog, times[1].strip(), pid, module)
    fields["repeat_count"] = times[0]
    return fields, warnings


@dataclass
class SyslogMapper:
    """One file's syslog lines to events: per-file state and the mapping.

    Attributes:
        years: the year state of the file.
        last: the (time, line) of the previous event, to number identical lines.
        seen: how many identical lines in a row precede this one.
        previous: per host, the mapped fields of its last event (for ``last message
            repeated N times``, which repeats the previous line of the same host).
    """

    years: YearGuesser
    last: tuple[datetime, str] | None = None
    seen: int = 0
    previous: dict[str, tuple[dict[str, Any], list[str]]] = field(default_factory=dict)

    def line(self, text: str, number: int) -> tuple[Item, Header | None]:
        """Map one syslog line to an event (or reject it with the reason), and the header
        it was read from.

        Identical lines in the same second are separate events: their native ids are
        numbered so that they do not collapse into one.
        """
        header = parse_header(text, self.years)
        if isinstance(header, str):
            return Reject(number, header, text), None
        if header.last_repeated is not None:
            fields, warnings = self._last_repeated(header)
        else:
            fields, warnings = message_fields(header.prog, header.msg, header.pid,
                                              header.module)
            self.previous[header.host] = (fields, warnings)
            if len(self.previous) > 4096:  # hostile files with endless host names
                self.previous.pop(next(iter(self.previous)))
        fields = {"timestamp": header.ts, "host": header.host, **fields}
        item = Parsed(number, text, fields, warnings=list(warnings) or None)
        key = (header.ts, text)
        self.seen = self.seen + 1 if key == self.last else 0
        self.last = key
        item.native_id = f"{key[0].isoformat()}|{text}#{self.seen}"
        return item, header

    def _last_repeated(self, header: Header) -> tuple[dict[str, Any], list[str]]:
        """The fields of ``last message repeated N times``: the previous event of the host,
        N more times (its own time, line and raw). Without one in the file the record is
        a plain message that says what is missing."""
        times = header.last_repeated
        earlier = self.previous.get(header.host)
        if earlier is None:
            fields, warnings = auth_fields("", f"last message repeated {times} times", None)
            fields["auth_program"] = None
            warnings = [*warnings, "repeat_count: the repeated line is not in this file"]
        else:
            fields, warnings = dict(earlier[0]), earlier[1]
        fields["repeat_count"] = times
        return fields, warnings
