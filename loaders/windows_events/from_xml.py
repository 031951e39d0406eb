"""Windows event XML: ``wevtutil qe /f:xml`` output, ``<Events>`` documents, Sysmon for Linux.

``wevtutil`` writes a sequence of ``<Event xmlns=…>`` elements without a root element; Event
Viewer and ``Get-WinEvent … ToXml()`` wrap them in ``<Events>`` after an XML declaration; files
may be UTF-16 with a BOM. The stream is split on ``</Event>`` so memory stays bounded by one
event, and each event is parsed on its own with defusedxml (DTDs, entities and external
references refused). Text between events may only be an XML declaration, comments, or the
``<Events>`` wrapper; a document type declaration there is refused as a possible entity bomb.

Sysmon for Linux writes the same ``<Event>`` XML (without namespace) inside syslog lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from loaders.windows_events.model import WinEvent, clean, to_int

MAX_EVENT_CHARS = 16 * 1024 * 1024
_START = re.compile(r"<Event[\s>/]")
_END = "</Event>"
_HARMLESS = re.compile(
    r"<\?xml[^>]*\?>|<!--.*?-->|<Events(?:\s[^>]*)?>|</Events>|<Events\s*/>|\s+", re.S)
_DTD = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.I)
_KEEP_TAIL = 16  # characters kept across chunk boundaries so a split "<Event" is not missed


@dataclass(slots=True)
class XmlPiece:
    """One event's XML text, or text between events that is not allowed there.

    Attributes:
        line: 1-based line where it starts.
        text: the XML (or the offending text).
        error: None for an event; else why the text is rejected.
    """

    line: int
    text: str
    error: str | None = None


def _gap_error(gap: str) -> str | None:
    if _DTD.search(gap):
        return ("XML document type declaration refused: DTDs and entity definitions are never "
                "processed (possible entity-expansion bomb); events using its entities will "
                "be rejected")
    rest = _HARMLESS.sub("", gap)
    if rest:
        return f"text outside any <Event> element: {rest[:80]!r}"
    return None


def _first_text_line(line: int, gap: str) -> int:
    """The line of the first non-blank character of text that starts on ``line``."""
    return line + gap[:len(gap) - len(gap.lstrip())].count("\n")


class XmlSplitter:
    """Split a stream of text chunks into ``<Event>…</Event>`` pieces (bounded memory).

    The buffer holds at most one event (capped at ``max_event``) plus one chunk; a read
    position moves through it, so cutting an event never copies the rest of the buffer.
    """

    def __init__(self, chunks: Iterator[str], max_event: int = MAX_EVENT_CHARS) -> None:
        self._chunks = chunks
        self._max = max_event
        self._buf = ""
        self._pos = 0
        self._line = 1
        self._eof = False

    def _fill(self) -> bool:
        chunk = None if self._eof else next(self._chunks, None)
        if chunk is None:
            self._eof = True
            return False
        self._buf = self._buf[self._pos:] + chunk
        self._pos = 0
        return True

    def _left(self) -> int:
        return len(self._buf) - self._pos

    def _take(self, end: int) -> str:
        text = self._buf[self._pos:end]
        self._line += text.count("\n")
        self._pos = end
        return text

    def __iter__(self) -> Iterator[XmlPiece]:
        while True:
            m = _START.search(self._buf, self._pos)
            if m is None:
                if self._left() > self._max or (not self._fill() and self._left()):
                    # no event start in sight: judge the text (bounded), keep a short tail
                    cut = len(self._buf) if self._eof else len(self._buf) - _KEEP_TAIL
                    line = self._line
                    gap = self._take(cut)
                    error = _gap_error(gap)
                    if error:
                        yield XmlPiece(_first_text_line(line, gap), gap, error)
                if self._eof and not self._left():
                    return
                continue
            if m.start() > self._pos:
                line = self._line
                gap = self._take(m.start())
                error = _gap_error(gap)
                if error:
                    yield XmlPiece(_first_text_line(line, gap), gap, error)
            yield from self._one_event()

    def _one_event(self) -> Iterator[XmlPiece]:
        line = self._line
        while True:
            end = self._buf.find(_END, self._pos)
            limit = end if end != -1 else len(self._buf)
            nested = _START.search(self._buf, self._pos + 1, limit)
            if nested is not None:
                # a second start before this one ended: the first event is truncated
                text = self._take(nested.start())
                yield XmlPiece(line, text, "truncated event: a new <Event> starts before "
                                           "</Event>")
                return
            if end != -1:
                yield XmlPiece(line, self._take(end + len(_END)))
                return
            if self._left() > self._max:
                text = self._buf[self._pos:self._pos + 200]
                self._skip_oversized()
                yield XmlPiece(line, text, f"event larger than {self._max} characters")
                return
            if not self._fill():
                yield XmlPiece(line, self._take(len(self._buf)),
                               "truncated event: the file ends before </Event>")
                return

    def _skip_oversized(self) -> None:
        while True:
            end = self._buf.find(_END, self._pos)
            if end != -1:
                self._take(end + len(_END))
                return
            self._take(max(self._pos, len(self._buf) - _KEEP_TAIL))
            if not self._fill():
                self._take(len(self._buf))
                return


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children_text(el: Element, out: dict[str, Any]) -> None:
    for child in el:
        out[_local(child.tag)] = child.text if len(child) == 0 else \
            "".join(child.itertext())


def from_element(root: Element) -> WinEvent:
    """Normalize one parsed ``<Event>`` element."""
    system: dict[str, Element] = {}
    data: dict[str, Any] = {}
    message = None
    for part in root:
        name = _local(part.tag)
        if name == "System":
            system = {_local(c.tag): c for c in part}
        elif name == "EventData":
            unnamed = []
            for d in part:
                key = d.get("Name")
                if key:
                    data[key] = d.text
                elif _local(d.tag) == "Data":
                    unnamed.append(d.text)
                else:
                    data[_local(d.tag)] = d.text
            if unnamed:
                data["Data"] = unnamed[0] if len(unnamed) == 1 else unnamed
        elif name == "UserData" and len(part):
            _children_text(part[0], data)
        elif name == "RenderingInfo":
            msg = part.find("{*}Message")
            message = msg.text if msg is not None else None

    def text(key: str) -> str | None:
        el = system.get(key)
        return el.text if el is not None else None

    def attr(key: str, *names: str) -> str | None:
        el = system.get(key)
        if el is None:
            return None
        for n in names:
            if el.get(n) is not None:
                return el.get(n)
        return None

    return WinEvent(
        event_id=to_int(text("EventID")),
        channel=clean(text("Channel")),
        provider=clean(attr("Provider", "Name", "EventSourceName")),
        computer=clean(text("Computer")),
        record_id=to_int(text("EventRecordID")),
        times=[("System/TimeCreated/@SystemTime", attr("TimeCreated", "SystemTime"))],
        data=data,
        keywords=clean(text("Keywords")),
        user_sid=clean(attr("Security", "UserID", "UserId")),
        message=clean(message),
    )


def parse_event_xml(text: str) -> WinEvent | str:
    """Parse one ``<Event>`` with defusedxml; a reject reason string when it cannot be read."""
    try:
        root = SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        return f"XML refused ({type(exc).__name__}): entities/DTDs are never expanded"
    except ParseError as exc:
        reason = str(exc)
        if "undefined entity" in reason:
            return (f"XML refused: {reason} (entities are never expanded; possible "
                    "entity-expansion bomb)")
        return f"invalid event XML: {reason}"
    if _local(root.tag) != "Event":
        return f"not an <Event> element: <{_local(root.tag)}>"
    return from_element(root)


def syslog_event_xml(line: str) -> str | None:
    """The ``<Event>…</Event>`` part of a Sysmon for Linux syslog line; None when there is none.

    Returns the text from ``<Event`` to the end of the line when ``</Event>`` is missing
    (a line cut by the syslog daemon), so the caller can reject it as truncated.
    """
    m = _START.search(line)
    if m is None:
        return None
    end = line.rfind(_END)
    return line[m.start():] if end < m.start() else line[m.start():end + len(_END)]
