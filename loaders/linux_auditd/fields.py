"""Reading one auditd record line: header, ``key=value`` fields, value decoding.

A record is ``[node=NAME ]type=TYPE msg=audit(SEC.MSEC:SERIAL): key=value ...``, optionally
followed (ENRICHED log format) by a 0x1d byte and the interpreted fields in UPPERCASE
(``UID="root" SYSCALL=execve``). User-space records nest their own fields in
``msg='...'``. Untrusted strings are either double-quoted or hex-encoded (upper-case hex);
``(null)``, ``?`` and ``(none)`` mean "no value".
"""

from __future__ import annotations

import ipaddress
import re
import struct
from functools import lru_cache

from loaders.linux_auditd.split import split_simple
from loaders.parsing import values

_HEADER = re.compile(
    r"(?:node=(?P<node>\S+) )?type=(?P<type>[A-Za-z0-9_\[\]]+) "
    r"msg=audit\((?P<sec>\d+)\.(?P<frac>\d+):(?P<serial>\d+)\):?"
)
# a record whose msg= is not an audit(<time>:<serial>) stamp, e.g. ``type=UNKNOWN[1329] msg=?``
_STAMPLESS = re.compile(r"(?:node=(\S+) )?type=([A-Za-z0-9_\[\]]+)(?= msg=)")
# key=value where value is "double quoted", 'single quoted' (a nested user message) or bare
# (a negative lookbehind — "not preceded by anything but whitespace or '(' " — is the same
# test as "at the start or after whitespace or '('", and about 25% faster to scan)
_PAIR = re.compile(r"(?<![^\s(])([A-Za-z_][\w\-]*(?:\[\d+\])?)=(\"[^\"]*\"?|'[^']*'?|\S*)")
_HEX = re.compile(r"(?:[0-9A-F]{2})+")
_AVC = re.compile(r"avc:\s+(\w+)\s+\{([^}]*)\}")
ENRICH_SEP = "\x1d"

# fields the kernel and libaudit write as untrusted strings (quoted, or hex when they
# hold spaces, quotes or control bytes)
ENCODED_FIELDS = frozenset({
    "acct", "cmd", "comm", "cwd", "data", "dir", "exe", "file", "grp", "key", "name",
    "new-grp", "new_group", "old-grp", "path", "proctitle", "root_dir", "saddr", "sw",
    "vm", "vm-ctx", "watch", "new-name", "old-name",
})
EMPTY_VALUES = frozenset({"", "?", "(null)", "(none)", "(unknown)"})
UNSET_ID = "4294967295"


class Record:
    """One audit record line.

    Attributes:
        node: the ``node=`` prefix (host name), or None.
        type: the record type, e.g. ``SYSCALL``.
        sec, frac, serial: the ``msg=audit(sec.frac:serial)`` stamp as written.
        fields: raw field values (quotes kept, so decoding knows what was hex).
        enriched: the interpreted UPPERCASE fields after 0x1d, unquoted.
        line: line number in the file.
        text: the line as read.
        warning: set when the line's bytes were not valid UTF-8 (replaced).
        body_at: for a record read by :class:`LightParser` (its fields are split later, in
            another process): where its body starts in ``text``.
        body: the body itself, kept by :class:`LightParser` for a line read alone (whose
            ``text`` may be replaced by the raw line when it has a warning).
    """


    # A plain class, not a dataclass: compiled (loaders/native.py), a dataclass's __init__
    # stays interpreted and cost 190 ns a record against 30 ns.
    __slots__ = ("body", "body_at", "enriched", "fields", "frac", "line", "node", "sec",
                 "serial", "text", "type", "warning")

    def __init__(self, node: str | None, type: str, sec: str, frac: str, serial: str,
                 fields: dict[str, str], enriched: dict[str, str], line: int, text: str,
                 warning: str | None = None, body_at: int = 0, body: str | None = None) -> None:
        self.node = node
        self.type = type
        self.sec = sec
        self.frac = frac
        self.serial = serial
        self.fields = fields
        self.enriched = enriched
        self.line = line
        self.text = text
        self.warning = warning
        self.body_at = body_at
        self.body = body

    def __repr__(self) -> str:
        return f"Record({self.type} {self.sec}.{self.frac}:{self.serial} line {self.line})"


def parse_record(text: str, line: int) -> Record | None:
    """Split a line into an audit :class:`Record`; None when it has no audit header.

    Args:
        text: the line.
        line: its number.

    Returns:
        The record, or None if the line is not an audit record.
    """
    m = _HEADER.match(text)
    if m is None:
        return None
    node, kind, sec, frac, serial = m.groups()
    return make_record(node, kind, sec, frac, serial, text[m.end():], line, text)


def make_record(node: str | None, kind: str, sec: str, frac: str, serial: str, body: str,
                line: int, text: str) -> Record:
    """The record of a line whose header is already split (``body`` follows it)."""
    enriched: dict[str, str] = {}
    if ENRICH_SEP in body:
        body, _, interpreted = body.partition(ENRICH_SEP)
        for key, value in _PAIR.findall(interpreted):
            enriched[key] = _unquote(value)
    fields = split_fields(body) if body else {}
    return Record(node, kind, sec, frac, serial, fields, enriched, line, text)


def stampless_record(text: str, line: int, sec: str, frac: str, serial: str) -> Record | None:
    """A record line without a ``msg=audit(<time>:<serial>)`` stamp, given the stamp to use
    (its fields include ``msg``); None when the line is not ``type=TYPE msg=…``."""
    m = _STAMPLESS.match(text)
    if m is None:
        return None
    node, kind = m.groups()
    return make_record(node, kind, sec, frac, serial, text[m.end():], line, text)


_UNSPLIT: dict[str, str] = {}  # the fields of a LightParser record (never filled in)


class LightParser:
    """Records with their bodies left unsplit (``fields`` empty, ``body_at`` set): enough
    to assemble events, whose fields are then split where they are mapped
    (:mod:`loaders.linux_auditd.offload`). Same interface as :class:`RecordParser`."""

    def __call__(self, text: str, line: int) -> Record | None:
        """The record of a line; None if it has no audit header."""
        m = _HEADER.match(text)
        if m is None:
            return None
        node, kind, sec, frac, serial = m.groups()
        return Record(node, kind, sec, frac, serial, _UNSPLIT, _UNSPLIT, line, text, None,
                      m.end(), text[m.end():])

    @staticmethod
    def parts(node: str | None, kind: str, sec: str, frac: str, serial: str, body: str,
              line: int, text: str) -> Record:
        """The record of a line whose header is already split (``body`` ends ``text``)."""
        return Record(node, kind, sec, frac, serial, _UNSPLIT, _UNSPLIT, line, text, None,
                      len(text) - len(body))

    @staticmethod
    def stampless(text: str, line: int, sec: str, frac: str, serial: str) -> Record | None:
        """As :func:`stampless_record`."""
        m = _STAMPLESS.match(text)
        if m is None:
            return None
        node, kind = m.groups()
        return Record(node, kind, sec, frac, serial, _UNSPLIT, _UNSPLIT, line, text, None,
                      m.end(), text[m.end():])


# record types whose bodies repeat verbatim in real logs (the same binary, directory,
# command line): their fields are split once per distinct body
_CACHED_TYPES = frozenset({"PATH", "CWD", "PROCTITLE", "EXECVE", "SOCKADDR", "EOE"})


class RecordParser:
    """:func:`parse_record` with the fields of repeated auxiliary bodies split once.

    Records with the same body then share one ``fields`` dict (never modified after
    parsing). Bodies longer than ``longest`` are not kept, and the cache is emptied when it
    holds ``size`` bodies, so memory stays bounded.

    Args:
        size: the most bodies kept.
        longest: the longest body kept.
    """

    def __init__(self, size: int = 4096, longest: int = 4096) -> None:
        self.size = size
        self.longest = longest
        self._cache: dict[str, dict[str, str]] = {}

    def __call__(self, text: str, line: int) -> Record | None:
        """Same as :func:`parse_record`."""
        m = _HEADER.match(text)
        if m is None:
            return None
        node, kind, sec, frac, serial = m.groups()
        return self.parts(node, kind, sec, frac, serial, text[m.end():], line, text)

    @staticmethod
    def stampless(text: str, line: int, sec: str, frac: str, serial: str) -> Record | None:
        """Same as :func:`stampless_record`."""
        return stampless_record(text, line, sec, frac, serial)

    def parts(self, node: str | None, kind: str, sec: str, frac: str, serial: str,
              body: str, line: int, text: str) -> Record:
        """Same as :func:`make_record`."""
        if kind in _CACHED_TYPES:
            fields = self._cache.get(body)
            if fields is not None:
                return Record(node, kind, sec, frac, serial, fields, {}, line, text)
            if ENRICH_SEP not in body and len(body) <= self.longest:
                fields = split_fields(body) if body else {}
                if len(self._cache) >= self.size:
                    self._cache.clear()
                self._cache[body] = fields
                return Record(node, kind, sec, frac, serial, fields, {}, line, text)
        return make_record(node, kind, sec, frac, serial, body, line, text)


def split_fields(body: str) -> dict[str, str]:
    """``key=value`` pairs of a record body; a nested ``msg='...'`` is flattened into it.

    Outer fields win over nested ones of the same name. In the nested user-space message,
    bare values lose a trailing ``,`` or unbalanced ``)`` (old PAM format
    ``(hostname=?, addr=?, terminal=cron res=success)``).

    Args:
        body: the text after the ``msg=audit(...):`` stamp.

    Returns:
        Field name to value as written (quotes kept).
    """
    out = split_simple(body)
    if out is None:
        out = _split_general(body)
    if "avc:" in body:
        m = _AVC.search(body)
        if m:
            out.setdefault("avc_decision", m[1])
            out.setdefault("avc_permissions", m[2].strip())
    return out


def _split_general(body: str) -> dict[str, str]:
    out = dict(_PAIR.findall(body))
    nested = out.get("msg")
    if nested is not None and nested[:1] == "'":
        del out["msg"]
        for key, value in _PAIR.findall(nested.strip("'")):
            if value and value[0] != '"':
                if value[-1] == ",":
                    value = value[:-1]
                if value[-1:] == ")" and "(" not in value:
                    value = value[:-1]
            out.setdefault(key, value)
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value.strip("\"'")


def hex_bytes(value: str) -> bytes | None:
    """The bytes of an upper-case hex string, or None when it is not one."""
    if _HEX.fullmatch(value):
        return bytes.fromhex(value)
    return None


@lru_cache(maxsize=16384)  # the same exe, comm, subj, terminal… recur in every event
def decode_value(key: str, value: str | None) -> str | None:
    """A field's text: quotes removed, hex-encoded untrusted strings decoded, empties None.

    Args:
        key: the field name (decides whether a bare value may be hex).
        value: the value as written.

    Returns:
        The decoded text (invalid UTF-8 replaced with U+FFFD), or None for
        ``?``/``(null)``/``(none)``/missing.

    Example:
        >>> decode_value("acct", "28696E76616C6964207573657229")
        '(invalid user)'
    """
    if value is None:
        return None
    if value[:1] == '"':
        text = _unquote(value)
        return text if text not in ("?",) else None
    if value in EMPTY_VALUES:
        return None
    if key in ENCODED_FIELDS or _is_arg(key):
        raw = hex_bytes(value)
        if raw is not None:
            return raw.decode("utf-8", "replace")
    return value


def _is_arg(key: str) -> bool:
    return len(key) > 1 and key[0] == "a" and key[1].isdigit()


@lru_cache(maxsize=4096)  # the same commands run again and again
def decode_proctitle(value: str | None) -> str | None:
    """PROCTITLE text: hex argv with NUL separators becomes one space-separated line."""
    if value is None or value in EMPTY_VALUES:
        return None
    if value[:1] == '"':
        return _unquote(value)
    raw = hex_bytes(value)
    if raw is None:
        return value
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def decode_key(value: str | None) -> str | None:
    """Rule key(s): several keys are hex-encoded and separated by 0x01; joined with ``,``."""
    text = decode_value("key", value)
    return text.replace("\x01", ",") if text else None


# address family numbers (Linux) -> name, for SOCKADDR saddr
_FAMILIES = {1: "unix", 2: "inet", 10: "inet6", 16: "netlink", 17: "packet"}


def decode_sockaddr(value: str | None) -> tuple[str | None, str | None, int | None]:
    """Decode a SOCKADDR ``saddr`` (hex ``struct sockaddr``) to (family, address, port).

    IPv4 and IPv6 give the canonical address and the port; unix sockets give the path
    (abstract names as ``@name``); netlink gives ``pid=N``; others give the family only.

    Args:
        value: the ``saddr`` value as written.

    Returns:
        (family, address, port); all None when the value is not a sockaddr.

    Example:
        >>> decode_sockaddr("02000050A9FEA9FE0000000000000000")
        ('inet', '169.254.169.254', 80)
    """
    if not value:
        return None, None, None
    raw = hex_bytes(value.strip('"'))
    if raw is None or len(raw) < 2:
        return None, None, None
    family_no = struct.unpack_from("<H", raw)[0]
    family = _FAMILIES.get(family_no, f"family-{family_no}")
    if family == "inet" and len(raw) >= 8:
        port = struct.unpack_from(">H", raw, 2)[0]
        return family, str(ipaddress.IPv4Address(raw[4:8])), port
    if family == "inet6" and len(raw) >= 24:
        port = struct.unpack_from(">H", raw, 2)[0]
        v6 = ipaddress.IPv6Address(raw[8:24])  # mapped IPv4 as dotted IPv4, as everywhere
        return family, str(v6.ipv4_mapped or v6), port
    if family == "unix":
        path = raw[2:]
        if path[:1] == b"\0":
            name = "@" + path[1:].rstrip(b"\0").decode("utf-8", "replace")
        else:
            name = path.split(b"\0", 1)[0].decode("utf-8", "replace")
        return family, name or None, None
    if family == "netlink" and len(raw) >= 8:
        return family, f"pid={struct.unpack_from('<I', raw, 4)[0]}", None
    return family, None, None


@lru_cache(maxsize=4096)
def canonical_ip(value: str | None) -> tuple[str | None, str | None]:
    """``addr=`` as :func:`loaders.parsing.values.canonical_ip` (address, warning); ``?``
    and empty are None without a warning."""
    return values.canonical_ip(decode_value("addr", value))
