"""What an auth-log message says: one table of (program, pattern) rules.

Each :class:`Rule` turns the message text of one syslog line from sshd, sudo, su, PAM,
shadow-utils or systemd-logind into an action, a category, an outcome and named fields.
The first rule whose program matches and whose pattern matches wins; a line no rule knows
is still an event (category ``log``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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
