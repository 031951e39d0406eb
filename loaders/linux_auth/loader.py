"""Linux authentication logs (``/var/log/auth.log``, ``/var/log/secure``): one event per line.

Reads syslog lines with an RFC 3164 header (``Mar  1 10:00:01 host sshd[123]: …``, no year),
an ISO 8601 header (rsyslog high precision, ``2024-03-01T10:00:01.123456+03:00 host …``) or
an RFC 5424 header (``<38>1 2024-03-01T10:00:01Z host sshd 123 - - …``). The message is
interpreted by :mod:`loaders.linux_auth.messages` (sshd, sudo, su, PAM, shadow-utils,
systemd-logind); lines from other programs are kept as ``log`` events.

RFC 3164 lines carry no year and no zone. The year of the first line is ``LoadOptions.year``
when given, else the year of the file's modification time (a first line that would then be
later than the mtime belongs to the year before); afterwards a line whose month is earlier
than the previous line's means the year advanced (December → January). Times without a
zone are read in the file's zone (``--tz``, ``--tz-for``), else taken as UTC with a
``parse_warning`` (:mod:`loaders.parsing.timeutil`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from loaders.base import Item, LineLoader, Parsed, Reject, Source
from loaders.linux_auth.messages import interpret
from loaders.parsing.timeutil import TimeError, naive_to_utc, parse_iso
from loaders.parsing.values import canonical_ip
from loaders.schema.extras import LINUX_AUTH

_MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
_TAG = r"(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?:[ \t]?(?P<msg>.*)$"
_RFC3164 = re.compile(
    r"^(?:<\d{1,3}>)?(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +"
    r"(?P<day>\d{1,2}) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d{1,6}))? "
    r"(?P<host>\S+) " + _TAG)
_ISO = re.compile(
    r"^(?:<\d{1,3}>)?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?"
    r"(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) " + _TAG)
_RFC5424 = re.compile(
    r"^<\d{1,3}>1 (?P<ts>\S+) (?P<host>\S+) (?P<prog>\S+) (?P<pid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\"]|\"(?:[^\"\\]|\\.)*\")*\])+)(?: (?P<msg>.*))?$")
_PROGRAMS = frozenset({
    "sshd", "sshd-session", "sshd-auth", "sudo", "su", "useradd", "groupadd", "userdel",
    "usermod", "passwd", "chpasswd", "gpasswd", "login", "systemd-logind", "unix_chkpwd",
})
_SNIFF_3164 = re.compile(
    rb"(?m)^(?:<\d{1,3}>)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} "
    rb"\d\d:\d\d:\d\d(?:\.\d+)? \S+ ([^\s\[:]+)(?:\[\d+\])?:")
_SNIFF_ISO = re.compile(
    rb"(?m)^(?:<\d{1,3}>)?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? "
    rb"\S+ ([^\s\[:]+)(?:\[\d+\])?:")
_SNIFF_5424 = re.compile(rb"(?m)^<\d{1,3}>1 \S+ \S+ (\S+) \S+ \S+ ")
_FAR = timedelta(days=180)


class YearGuesser:
    """Years for RFC 3164 timestamps, line after line (see the module docstring).

    Args:
        year: the year of the first line, if known.
        mtime: the file's modification time (epoch seconds), used when ``year`` is None.
    """

    def __init__(self, year: int | None, mtime: float) -> None:
        self.year = year
        self.mtime = datetime.fromtimestamp(mtime, UTC)
        self.prev: datetime | None = None

    def resolve(self, month: int, day: int, h: int, m: int, s: int, micro: int) -> datetime:
        """The full timestamp of a line.

        Raises:
            ValueError: the date does not exist (e.g. Feb 29 in a non-leap year).
        """
        if self.year is None:
            guess = datetime(self.mtime.year, month, day, h, m, s, micro, UTC) \
                if (month, day) != (2, 29) else None
            # the last line is written before the file's mtime: a first line later than
            # the mtime (one day of slack for zones) is from the year before
            late = guess is None or guess > self.mtime + timedelta(days=1)
            self.year = self.mtime.year - 1 if late else self.mtime.year
        elif self.prev is not None and month < self.prev.month:
            candidate = datetime(self.year, month, day, h, m, s, micro, UTC) \
                if (month, day) != (2, 29) else None
            if candidate is None or self.prev - candidate > timedelta(days=1):
                self.year += 1  # December -> January
        ts = datetime(self.year, month, day, h, m, s, micro, UTC)
        if self.prev is not None and ts - self.prev > _FAR and month == 12 \
                and self.prev.month == 1:
            # a late-flushed December line just after the New Year: keep the year
            return _wall_clock(ts.replace(year=self.year - 1))
        self.prev = ts
        return _wall_clock(ts)


def _wall_clock(ts: datetime) -> datetime:
    """A header time (the year logic above works on the wall clock, labelled UTC) read in
    the file's zone: ``--tz`` / ``--tz-for``, else UTC, assumed and counted."""
    return naive_to_utc(ts.replace(tzinfo=None))


@dataclass
class _AuthFile:
    """Per-file state: the year guesser and the last (time, line) seen."""

    years: YearGuesser
    last: tuple[datetime, str] | None = None
    seen: int = 0


class LinuxAuthLoader(LineLoader):
    name = "linux_auth"
    description = "Linux auth log: sshd, sudo, su, PAM, useradd/passwd, systemd-logind"
    reads = ("/var/log/auth.log, /var/log/secure; syslog RFC 3164 (year from --year or "
             "mtime), ISO 8601 (rsyslog high precision) and RFC 5424 headers; .gz")
    prefix = LINUX_AUTH.prefix
    record = "line"
    extra_columns = LINUX_AUTH.columns

    def sniff(self, head: bytes, name: str) -> bool:
        text = head[:16384]
        if b"<Event" in text:  # Sysmon for Linux events in syslog belong to windows_events
            return False
        for pattern in (_SNIFF_3164, _SNIFF_ISO, _SNIFF_5424):
            for m in pattern.finditer(text):
                # PAM lines (e.g. a head full of CRON sessions) are auth-log only
                if m.group(1).decode("ascii", "replace") in _PROGRAMS or b"pam_unix(" in text:
                    return True
        return False

    def file_state(self, src: Source) -> _AuthFile:
        return _AuthFile(YearGuesser(src.options.year, src.file.mtime))

    def from_line(self, text: str, number: int, state: _AuthFile) -> Item:
        """Map one syslog line to an event, or reject it with the reason.

        Identical lines in the same second are separate events: their native ids are
        numbered so that they do not collapse into one.
        """
        item = self._map(text, number, state.years)
        if isinstance(item, Parsed):
            key = (item.fields["timestamp"], text)
            state.seen = state.seen + 1 if key == state.last else 0
            state.last = key
            item.native_id = f"{key[0].isoformat()}|{text}#{state.seen}"
        return item

    def _map(self, text: str, number: int, years: YearGuesser) -> Item:
        """Map one syslog line to an event, or reject it with the reason.

        Args:
            text: the line.
            number: its line number.
            years: the year state of the file.

        Returns:
            :class:`Parsed` or :class:`Reject`.
        """
        header = self._header(text, number, years)
        if isinstance(header, Reject):
            return header
        ts, host, prog, pid, msg = header
        msg = msg.lstrip("\ufeff").strip()
        found = interpret(prog, msg)
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
        session = f.get("session")
        fields: dict[str, Any] = {
            "timestamp": ts,
            "category": category,
            "action": action,
            "outcome": outcome,
            "user": user,
            "src_ip": ip,
            "session_id": session,
            "host": host,
            "target_type": target_type,
            "target": target,
            "process_pid": int(pid) if pid and pid.isdigit() else None,
            "process_command_line": f.get("command"),
            "message": msg,
            "auth_program": prog,
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
        return Parsed(number, text, fields, warnings=warnings or None)

    def _header(self, text: str, number: int,
                years: YearGuesser) -> tuple[datetime, str, str, str | None, str] | Reject:
        m = _RFC3164.match(text)
        if m is not None:
            try:
                ts = years.resolve(_MONTHS[m["mon"]], int(m["day"]), int(m["h"]), int(m["m"]),
                                   int(m["s"]), int((m["frac"] or "0").ljust(6, "0")))
            except ValueError as exc:
                return Reject(number, f"impossible date in syslog header: {exc}", text)
            return ts, m["host"], m["prog"], m["pid"], m["msg"]
        m = _ISO.match(text) or _RFC5424.match(text)
        if m is None:
            return Reject(number, "no syslog header (expected `Mmm dd hh:mm:ss host prog[pid]: "
                                  "msg`, an ISO 8601 or an RFC 5424 header)", text)
        try:
            ts = parse_iso(m["ts"])
        except TimeError as exc:
            return Reject(number, f"syslog timestamp: {exc}", text)
        pid = m["pid"] if m["pid"] != "-" else None
        return ts, m["host"], m["prog"], pid, m["msg"] or ""


LOADER = LinuxAuthLoader()
