"""Assembling audit records into events, and the multi-record parts of an event.

Records of one event share ``msg=audit(<time>:<serial>)`` (and ``node=``). They usually come
together, but kernel and user-space records interleave and arrive out of order, so the
:class:`Assembler` keeps a bounded window of open events: an event is complete at its EOE
record, or once ``window`` later records have passed. Memory stays bounded by the window
whatever the file size. There is deliberately no time-gap rule: the clock in a log jumps
(merged files, sorted extracts), and a record count is deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from loaders.base import Item
from loaders.linux_auditd.fields import EMPTY_VALUES, Record, decode_value, hex_bytes

Key = tuple[str | None, str, str, str]
# (node or "", type, seconds, fraction, serial, body) of a record line (linux_auditd_read)
Header = tuple[str, str, str, str, str, str]
# LightParser.parts or RecordParser.parts: (node, type, sec, frac, serial, body, line, text)
Parts = Callable[[str | None, str, str, str, str, str, int, str], Record]

WINDOW_RECORDS = 1000
# ... and at most this much record text: 1,000 open events of 1 MB records would hold 1 GB
WINDOW_CHARS = 64 << 20
_RECENT_KEYS = 20_000


class Event:
    """The records of one (node, time, serial), in arrival order.

    Attributes:
        key: (node, seconds, fraction, serial) as written.
        records: its records, EOE excluded.
        lines: the raw lines of every record (EOE included), in input order.
        first_line: line of its first record.
        start: running record count when it was opened (for the window).
        chars: length of its lines (for the window's bound on text).
        fragment: 0 normally; N for the N-th late piece of an event already emitted.
        borrowed: 0 normally; N for the N-th record without a ``msg=audit(...)`` stamp
            that took its time from the record ``key`` names (the one before it).
    """


    # a plain class for the reason Record is one (linux_auditd_fields)
    __slots__ = ("borrowed", "chars", "first_line", "fragment", "key", "lines", "records",
                 "start")

    def __init__(self, key: Key, records: list[Record] | None = None,
                 lines: list[str] | None = None, first_line: int = 0, start: int = 0,
                 fragment: int = 0, borrowed: int = 0, chars: int = 0) -> None:
        self.key = key
        self.records = [] if records is None else records
        self.lines = [] if lines is None else lines
        self.first_line = first_line
        self.start = start
        self.fragment = fragment
        self.borrowed = borrowed
        self.chars = chars

    def __repr__(self) -> str:
        return f"Event({self.key}, {len(self.records)} records, line {self.first_line})"

    def native_id(self) -> str:
        """node + time + serial (+ ``#N`` for a late fragment, ``~nostampN`` for a record
        without a stamp). Unique on one host only: without a node the mapping adds the
        event's text (:func:`loaders.linux_auditd.map.map_event`)."""
        node, sec, frac, serial = self.key
        base = f"{node or ''}:{sec}.{frac}:{serial}"
        if self.borrowed:
            return f"{base}~nostamp{self.borrowed}"
        return f"{base}#{self.fragment}" if self.fragment else base


class Assembler:
    """Group records into events with a bounded window.

    Args:
        window: an open event is emitted once this many records followed its first one.
        max_chars: when the open events hold more record text than this, the oldest are
            emitted until they hold half of it (huge records without an EOE); a record
            that arrives for one of them later becomes a flagged late fragment.
    """

    def __init__(self, window: int = WINDOW_RECORDS, max_chars: int = WINDOW_CHARS) -> None:
        self.window = window
        self.max_chars = max_chars
        self._chars = 0  # text of the open events
        self._open: dict[Key, Event] = {}
        self._count = 0
        # start of the oldest open event (the first in insertion order), or None
        self._oldest: int | None = None
        # recently emitted keys -> fragments seen (insertion-ordered, trimmed in bulk), so
        # a very late record becomes a flagged fragment instead of a second "whole" event
        self._recent: dict[Key, int] = {}

    def add(self, rec: Record) -> Sequence[Event]:
        """Add one record.

        Args:
            rec: the record.

        Returns:
            The events it completes (EOE) or pushes out of the window, usually none.
        """
        self._count = count = self._count + 1
        key = (rec.node, rec.sec, rec.frac, rec.serial)
        opened = self._open
        ev = opened.get(key)
        size = len(rec.text)
        if ev is None:
            ev = opened[key] = Event(key, [], [rec.text], rec.line, count, 0, 0, size)
            if self._oldest is None:
                self._oldest = count
            fragment = self._recent.get(key)
            if fragment is not None:
                ev.fragment = fragment + 1
        else:
            ev.lines.append(rec.text)
            ev.chars += size
        self._chars += size
        done: Sequence[Event] = ()
        if rec.type == "EOE":
            done = [self._close(key)]
        else:
            ev.records.append(rec)
        # the oldest open event is the first in insertion order
        oldest = self._oldest
        if oldest is not None and oldest <= count - self.window:
            done = [*done, *self._expire(count - self.window)]
        if self._chars > self.max_chars:
            done = [*done, *self._shed()]
        return done

    def _shed(self) -> list[Event]:
        """The oldest open events, until the open ones hold half of ``max_chars``."""
        done = []
        opened = self._open
        while opened and self._chars > self.max_chars // 2:
            done.append(self._close(next(iter(opened))))
        return done

    def _expire(self, limit: int) -> list[Event]:
        done = []
        opened = self._open
        while opened:
            head = next(iter(opened.values()))
            if head.start > limit:
                break
            done.append(self._close(head.key))
        return done

    def flush(self) -> list[Event]:
        """Emit every event still open (end of file)."""
        return [self._close(key) for key in list(self._open)]

    def _close(self, key: Key) -> Event:
        opened = self._open
        ev = opened.pop(key)
        self._chars -= ev.chars
        if ev.start == self._oldest:
            self._oldest = next(iter(opened.values())).start if opened else None
        recent = self._recent
        recent.pop(key, None)
        recent[key] = ev.fragment
        if len(recent) > 2 * _RECENT_KEYS:
            self._recent = dict(list(recent.items())[-_RECENT_KEYS:])
        return ev


def assemble(assembler: Assembler, parts: Parts, emit: Callable[[Sequence[Event]], list[Item]],
             headers: list[Header], lines: list[str], first: int,
             start: int) -> tuple[int, list[Item]]:
    """Assemble a block's records from index ``start`` on, and hand the events they complete
    to ``emit``, until it gives items to yield.

    Args:
        assembler: the file's assembler.
        parts: makes a record from its header parts, line number and text.
        emit: maps events; the items to yield (full tables, rejects), usually none.
        headers, lines: the block's record headers and lines.
        first: the number of the block's first line.
        start: the index of the first record to take.

    Returns:
        Where to go on (``len(lines)`` when the block is done), and the items.
    """
    add = assembler.add
    for i in range(start, len(lines)):
        node, kind, sec, frac, serial, body = headers[i]
        done = add(parts(node or None, kind, sec, frac, serial, body, first + i, lines[i]))
        if done:
            items = emit(done)
            if items:
                return i + 1, items
    return len(lines), []


def _arg_bytes(value: str) -> bytes:
    if value[:1] == '"':
        return value.strip('"').encode("utf-8", "surrogateescape")
    raw = hex_bytes(value)
    return raw if raw is not None else value.encode("utf-8", "surrogateescape")


def assemble_argv(execve: list[Record]) -> tuple[list[str], list[str]]:
    """The argument vector of EXECVE records, with what is missing.

    Handles ``argc`` with ``a0..aN`` spread over several records, quoted or hex values, and
    long arguments split into ``aN_len`` / ``aN[i]`` chunks (joined as bytes, then decoded,
    so a chunk boundary inside a UTF-8 character does no harm).

    Args:
        execve: the event's EXECVE records in arrival order.

    Returns:
        (arguments, problems): missing arguments are left out and named in problems.
    """
    simple = _simple_argv(execve)
    if simple is not None:
        return simple, []
    argc: int | None = None
    single: dict[int, str] = {}
    chunks: dict[int, dict[int, str]] = {}
    lengths: dict[int, int] = {}
    for rec in execve:
        for key, value in rec.fields.items():
            if key == "argc":
                argc = int(value) if value.isdigit() else None
            elif key[:1] == "a" and key[1:2].isdigit():
                if key.endswith("_len"):
                    idx = key[1:-4]
                    if idx.isdigit() and value.isdigit():
                        lengths[int(idx)] = int(value)
                elif key.endswith("]"):
                    idx, _, part = key[1:-1].partition("[")
                    if idx.isdigit() and part.isdigit():
                        chunks.setdefault(int(idx), {})[int(part)] = value
                elif key[1:].isdigit():
                    single[int(key[1:])] = value
    present = sorted({*single, *chunks})
    count = argc if argc is not None else (present[-1] + 1 if present else 0)
    args: list[str] = []
    problems: list[str] = []
    if argc is None:
        problems.append("EXECVE without argc")
    # walk the arguments that are there (argc comes from the log and may be hostile)
    for i in present:
        if i >= count:
            problems.append(f"argument a{i} beyond argc={count}")
            break
        if i in single:
            args.append(_arg_bytes(single[i]).decode("utf-8", "replace"))
            continue
        parts = chunks[i]
        order = sorted(parts)
        written = sum(len(parts[p].strip('"')) for p in order)
        if order != list(range(len(order))) or written < lengths.get(i, 0):
            problems.append(f"argument a{i} is missing chunks")
        args.append(b"".join([_arg_bytes(parts[p]) for p in order]).decode("utf-8", "replace"))
    missing = [i for i in range(min(count, len(present) + 3)) if i not in single
               and i not in chunks]
    if len(args) < count:
        names = ", ".join(f"a{i}" for i in missing[:3])
        problems.append(f"argument {names} is missing" if count - len(args) == 1 else
                        f"{count - len(args)} of {count} arguments missing ({names}…)")
    return args, problems


def _simple_argv(execve: list[Record]) -> list[str] | None:
    """The common case, fast: one EXECVE record holding exactly argc= and a0..a(argc-1)
    (no chunks, nothing missing); None otherwise. Same values as the general walk."""
    if len(execve) != 1:
        return None
    fields = execve[0].fields
    argc = fields.get("argc")
    if argc is None or not argc.isdigit() or len(fields) != int(argc) + 1:
        return None
    try:
        values = [fields[f"a{i}"] for i in range(int(argc))]
    except KeyError:
        return None
    return [_arg_text(v) for v in values]


def _arg_text(value: str) -> str:
    # _arg_bytes(value).decode("utf-8", "replace") without the round trip when it is one:
    # the line was decoded from UTF-8, so re-encoding a quoted or bare value gives it back
    if value[:1] == '"':
        return value.strip('"')
    raw = hex_bytes(value)
    return value if raw is None else raw.decode("utf-8", "replace")


_PATH_KEYS = ("name", "nametype", "objtype", "inode", "dev", "mode", "ouid", "ogid")


def path_items(paths: list[Record]) -> list[dict[str, str | None]]:
    """PATH records as compact dicts (item, name, nametype, inode, mode, owner), by item."""
    items = []
    for rec in paths:
        f = rec.fields
        entry: dict[str, str | None] = {"item": f.get("item")}
        for key in _PATH_KEYS:
            value = f.get(key)
            if value is not None:
                entry[key] = decode_value(key, value) if key == "name" else \
                    (None if value in EMPTY_VALUES else value)
        if "OUID" in rec.enriched:
            entry["ouid_name"] = rec.enriched["OUID"]
        items.append(entry)
    if len(items) > 1:
        items.sort(key=_item_number)
    return items


def _item_number(entry: dict[str, str | None]) -> int:
    item = entry.get("item") or ""
    return int(item) if item.isdigit() else 1 << 30


def path_target(items: list[dict[str, str | None]]) -> str | None:
    """The object a file syscall acted on: the first named non-PARENT item, else the first."""
    named = [e for e in items if e.get("name")]
    for entry in named:
        kind = entry.get("nametype") or entry.get("objtype")
        if kind != "PARENT":
            return entry["name"]
    return named[0]["name"] if named else None


# one encoder for every call: json.dumps with non-default options builds a new one each time
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def to_json(value: object) -> str:
    """Compact JSON for list-valued extra columns."""
    return _JSON.encode(value)
