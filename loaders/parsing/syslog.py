"""Syslog headers, shared by every source that reads syslog text (``linux_auth``,
``linux_syslog``): one parser, so the same line gives the same time, host, program and pid
whichever loader reads it.

Three header forms are read:

- RFC 3164 (``Mar  1 10:00:01 host sshd[123]: …``): no year and no zone. The year comes
  from :class:`YearGuesser`; the wall-clock time is read in the file's zone (``--tz``,
  ``--tz-for``), else taken as UTC with a ``parse_warning`` (:func:`wall_clock`).
- ISO 8601 (rsyslog high precision, ``journalctl -o short-iso``:
  ``2024-03-01T10:00:01.123456+03:00 host …``).
- RFC 5424 (``<38>1 2024-03-01T10:00:01Z host sshd 123 - - …``).

An optional ``<PRI>`` before the first two is kept (:attr:`Header.pri`). The tag is
``prog[pid]:``, or the older RHEL/SUSE ``prog(module)[pid]:`` (``sshd(pam_unix)[42]:``),
split into program and PAM module. ``host last message repeated N times`` (BSD syslogd,
syslog-ng), which has no tag at all, is recognised as a header of its own
(:attr:`Header.last_repeated`); rsyslog's in-tag form ``message repeated N times: [ … ]`` is
split by :func:`repeated`.

Every pattern is anchored and made of bounded or possessive-free single loops over disjoint
classes, so a hostile line costs linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loaders.parsing.timeutil import TimeError, naive_to_utc, parse_iso

MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
_TAG = r"(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?:[ \t]?(?P<msg>.*)$"
_LAST = r"(?:--- )?[Ll]ast message repeated (?P<times>\d{1,9}) times?(?: ---)?\s*$"
# syslog-ng's own line for the same: ``syslog-ng[pid]: Last message 'Failed passw' repeated
# 3 times, suppressed by syslog-ng on web1``
_LAST_NG = re.compile(r"^Last message '[^']{0,1024}' repeated (?P<times>\d{1,9}) times?"
                      r"(?:, suppressed by syslog-ng on \S{1,255})?\s*$")
_HEAD_3164 = (
    r"^(?:<(?P<pri>\d{1,3})>)?(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +"
    r"(?P<day>\d{1,2}) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d{1,6}))? "
    r"(?P<host>\S+) ")
_HEAD_ISO = (
    r"^(?:<(?P<pri>\d{1,3})>)?(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?"
    r"(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) ")
_RFC3164 = re.compile(_HEAD_3164 + _TAG)
_ISO = re.compile(_HEAD_ISO + _TAG)
_RFC3164_LAST = re.compile(_HEAD_3164 + _LAST)
_ISO_LAST = re.compile(_HEAD_ISO + _LAST)
# a header with no program tag (``Job `cron.daily' terminated``, kernel lines of some
# relays): the line is kept, its program unknown
_RFC3164_BARE = re.compile(_HEAD_3164 + r"(?P<msg>\S.*)$")
_ISO_BARE = re.compile(_HEAD_ISO + r"(?P<msg>\S.*)$")
_RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<prog>\S+) (?P<pid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\"]|\"(?:[^\"\\]|\\.)*\")*\])+)(?: (?P<msg>.*))?$")
# ``sshd(pam_unix)``: a program, then a PAM module in parentheses (older RHEL/SUSE syslog)
_MODULE_TAG = re.compile(r"^(?P<prog>[^\s()\[:]{1,256})\((?P<module>[\w.-]{1,64})\)$")
_REPEATED = re.compile(r"^message repeated (?P<times>\d{1,9}) times?: \[ ?(?P<msg>.*)\]\s*$")
_SNIFF_3164 = re.compile(
    rb"(?m)^(?:<\d{1,3}>)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} "
    rb"\d\d:\d\d:\d\d(?:\.\d+)? \S+ ([^\s\[:]+)(?:\[\d+\])?:")
_SNIFF_ISO = re.compile(
    rb"(?m)^(?:<\d{1,3}>)?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? "
    rb"\S+ ([^\s\[:]+)(?:\[\d+\])?:")
_SNIFF_5424 = re.compile(rb"(?m)^<\d{1,3}>1 \S+ \S+ (\S+) \S+ \S+ ")
SNIFF_PATTERNS = (_SNIFF_3164, _SNIFF_ISO, _SNIFF_5424)
NO_HEADER = ("no syslog header (expected `Mmm dd hh:mm:ss host prog[pid]: msg`, an ISO 8601 "
             "or an RFC 5424 header)")
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
              "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
              "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
_FAR = timedelta(days=180)


@dataclass(frozen=True, slots=True)
class Header:
    """What a syslog header says.

    Attributes:
        ts: the time, aware UTC.
        host: the host field as written.
        prog: the program (tag) without pid or module; empty for ``last message repeated``.
        pid: the pid as written, or None.
        msg: the message after the tag, as written (not stripped).
        pri: the ``<PRI>`` value, or None when the line has none.
        module: the PAM module of a ``prog(module)[pid]:`` tag, or None.
        last_repeated: N of a ``last message repeated N times`` line, else None.
        form: ``rfc3164``, ``iso8601`` or ``rfc5424``.
    """

    ts: datetime
    host: str
    prog: str
    pid: str | None
    msg: str
    pri: int | None = None
    module: str | None = None
    last_repeated: int | None = None
    form: str = "rfc3164"


class YearGuesser:
    """Years for RFC 3164 timestamps, line after line.

    The year of the first line is ``year`` when given (``--year``), else the year of the
    file's modification time (a first line that would then be later than the mtime belongs
    to the year before); afterwards a line whose month is earlier than the previous line's
    means the year advanced (December → January).

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
            return wall_clock(ts.replace(year=self.year - 1))
        self.prev = ts
        return wall_clock(ts)


def wall_clock(ts: datetime) -> datetime:
    """A header time (the year logic works on the wall clock, labelled UTC) read in the
    file's zone: ``--tz`` / ``--tz-for``, else UTC, assumed and counted."""
    return naive_to_utc(ts.replace(tzinfo=None))


def parse_header(text: str, years: YearGuesser) -> Header | str:
    """The header of one line, or the reason it has none a reader can use.

    Args:
        text: the line.
        years: the year state of the file (RFC 3164 lines advance it).

    Returns:
        :class:`Header`, or the reject reason as text.
    """
    m = _RFC3164.match(text)
    last = None if m is not None else _RFC3164_LAST.match(text)
    bare = None if m is not None or last is not None else _RFC3164_BARE.match(text)
    if m is not None or last is not None or bare is not None:
        g = m or last or bare
        assert g is not None
        try:
            ts = years.resolve(MONTHS[g["mon"]], int(g["day"]), int(g["h"]), int(g["m"]),
                               int(g["s"]), int((g["frac"] or "0").ljust(6, "0")))
        except ValueError as exc:
            return f"impossible date in syslog header: {exc}"
        return _header(ts, g, last is not None, "rfc3164", bare is not None)
    m = _ISO.match(text) or _RFC5424.match(text)
    last = None if m is not None else _ISO_LAST.match(text)
    bare = None if m is not None or last is not None else _ISO_BARE.match(text)
    g = m or last or bare
    if g is None:
        return NO_HEADER
    try:
        ts = parse_iso(g["ts"])
    except TimeError as exc:
        return f"syslog timestamp: {exc}"
    form = "rfc5424" if text.startswith("<") and g.re is _RFC5424 else "iso8601"
    return _header(ts, g, last is not None, form, bare is not None)


def _header(ts: datetime, g: re.Match[str], is_last: bool, form: str,
            bare: bool = False) -> Header:
    pri = int(g["pri"]) if g["pri"] is not None else None
    if is_last:
        return Header(ts, g["host"], "", None, "", pri, None, int(g["times"]), form)
    if bare:
        return Header(ts, g["host"], "", None, g["msg"], pri, None, None, form)
    if g["prog"] == "syslog-ng" and g["msg"]:
        ng = _LAST_NG.match(g["msg"])
        if ng is not None:
            return Header(ts, g["host"], "", None, "", pri, None, int(ng["times"]), form)
    prog, module = g["prog"], None
    if "(" in prog:
        split = _MODULE_TAG.match(prog)
        if split is not None:
            prog, module = split["prog"], split["module"]
    pid = g["pid"] if g["pid"] != "-" else None
    return Header(ts, g["host"], prog, pid, g["msg"] or "", pri, module, None, form)


def repeated(msg: str) -> tuple[int, str] | None:
    """rsyslog's ``message repeated N times: [ inner ]``: (N, inner), else None."""
    if not msg.startswith("message repeated "):
        return None
    m = _REPEATED.match(msg)
    return (int(m["times"]), m["msg"]) if m is not None else None


def facility_severity(pri: int | None) -> tuple[str | None, str | None]:
    """The facility and severity names of a ``<PRI>`` (facility * 8 + severity); a facility
    beyond the 24 named ones is given as its number."""
    if pri is None or pri > 191:
        return None, None
    facility, severity = divmod(pri, 8)
    return FACILITIES[facility], SEVERITIES[severity]


def header_programs(head: bytes) -> list[str]:
    """The programs of the lines of a file head that have a syslog header (in pattern
    order), for detection."""
    text = head[:16384]
    return [m.group(1).decode("ascii", "replace")
            for pattern in SNIFF_PATTERNS for m in pattern.finditer(text)]


# programs whose lines make a file an auth log (linux_auth's) rather than a whole syslog
AUTH_PROGRAMS = frozenset({
    "sshd", "sshd-session", "sshd-auth", "sudo", "su", "useradd", "groupadd", "userdel",
    "usermod", "passwd", "chpasswd", "gpasswd", "login", "systemd-logind", "unix_chkpwd",
})
# the names syslogd gives its whole-system files (rotated: .1, -20240301, .gz): they hold
# every program, so they are linux_syslog's even when auth lines open them
_WHOLE_SYSLOG = re.compile(
    r"^(?:syslog|messages|kern\.log|daemon\.log|user\.log|cron|debug|all\.log)"
    r"(?:[.-]\d{1,8}){0,2}(?:\.gz)?$")


def auth_head(head: bytes) -> bool:
    """Whether a file head is an auth log's (``linux_auth``'s sniff, which ``linux_syslog``
    defers to): some syslog line of it is from an auth program, or it holds PAM lines
    (e.g. a head full of CRON sessions). Sysmon for Linux events in syslog are
    ``windows_events``'."""
    if b"<Event" in head[:16384]:
        return False
    programs = header_programs(head)
    return bool(programs) and (b"pam_unix(" in head[:16384]
                               or any(p.split("(", 1)[0] in AUTH_PROGRAMS for p in programs))


def whole_syslog_name(name: str) -> bool:
    """Whether a file (or archive member) is named like a whole-system syslog file."""
    base = name.replace("\\", "/").rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    return _WHOLE_SYSLOG.match(base) is not None


_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def _garbage(line: bytes) -> bool:
    """A line of binary damage: control bytes, or not UTF-8 at all."""
    if _CONTROL.search(line):
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def syslog_head(head: bytes) -> bool:
    """Whether a file head is syslog text: at least half of its first lines (up to 16 KiB,
    journalctl's ``-- Boot …`` separators aside) have a syslog header."""
    text = head[:16384]
    if b"<Event" in text:
        return False
    lines = [ln for ln in text.split(b"\n")[:400] if ln.strip() and not ln.startswith(b"-- ")
             and not _garbage(ln)]  # damage in the head does not outvote the log's lines
    matched = len(header_programs(head))
    return matched > 0 and 2 * matched >= len(lines)
