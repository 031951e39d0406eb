"""One JSON reader for every shape exports take.

JSON Lines, one pretty-printed document, a top-level array of records (streamed element by
element), concatenated documents (``{..}{..}`` or separated by whitespace), with or without a
BOM, UTF-8 or UTF-16. Each top-level value (or array element) becomes one
:class:`JsonRecord` with the line it starts on and its exact text. A value that does not
parse becomes a record with ``error`` set; reading then resumes at the next line that starts
a value at the same indentation, so one bad record never stops the file.

Bounds: a line longer than ``max_line`` (:attr:`loaders.base.Tuning.max_line_bytes`, 64 MiB;
bytes in UTF-8, characters in UTF-16; None for a top-level array, which
:meth:`loaders.base.Source.json_records` streams element by element however long its
lines, as a minified export is one line) is skipped in bounded memory and becomes a record of
its own with ``error`` "line too long (N bytes > MAX)", as every line reader gives it
(:mod:`loaders.parsing.lineblocks`); a value it cut is rejected as incomplete. One value
(a pretty-printed document) is read up to ``max_document`` characters (128 M); past that it
is rejected and reading resumes as after any bad value. A growing value is decoded again
only each time its buffer has doubled, so a large value costs a few decodes, not one per
chunk.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from loaders.parsing.inputs import MAX_LINE_BYTES, Line, detect_encoding, iter_text_chunks
from loaders.parsing.lineblocks import whole_lines

MAX_DOCUMENT_CHARS = 128 * 1024 * 1024
_WS = re.compile(r"[ \t\r\n\x00]*")
_WS_COMMA = re.compile(r"[ \t\r\n\x00,]*")
_DECODER = json.JSONDecoder()
_VALUE_START = frozenset('{["-0123456789tfn')
_CHUNK = 1 << 20
_STR = r'"(?:[^"\\]|\\.)*"'
# the fields of a list wrapper before its records array (small values, one level of nesting)
_WRAPPER = re.compile(
    r"\{\s*(?:" + _STR + r"\s*:\s*(?:" + _STR + r"|[-+.\w]+|\{[^{}]*\}|\[[^\[\]{}]*\])"
    r"\s*,\s*)*\"(items|events|records|Records|entries|data)\"\s*:\s*\[")

Piece = str | Line  # whole lines of text, or a line too long to read (text None)


@dataclass(slots=True)
class JsonRecord:
    """One top-level JSON value (or element of a top-level array).

    Attributes:
        line: 1-based line where the value starts.
        text: the value's exact source text (for a bad value: the text skipped).
        value: the parsed value; None when ``error`` is set.
        error: why the value could not be parsed.
    """

    line: int
    text: str
    value: Any = None
    error: str | None = None


class JsonReader:
    """Iterate the JSON values of a stream; see the module docstring for the shapes.

    Attributes:
        warnings: file-level observations, e.g. an array that is never closed.
    """

    def __init__(self, fh: BinaryIO, head: bytes, max_document: int = MAX_DOCUMENT_CHARS,
                 max_line: int | None = MAX_LINE_BYTES) -> None:
        self._init(_text_pieces(fh, head, max_line), max_document, 1)

    @classmethod
    def of_lines(cls, blocks: Iterable[bytes | Line], first_line: int,
                 max_document: int = MAX_DOCUMENT_CHARS) -> JsonReader:
        """A reader of UTF-8 text already cut into whole lines by
        :func:`~loaders.parsing.lineblocks.whole_lines` (its over-long lines as text-less
        :class:`Line` objects), starting at line ``first_line`` of a file (no BOM is
        stripped: it is not the file's start)."""
        reader = cls.__new__(cls)
        reader._init(_decoded(blocks, strip_bom=False), max_document, first_line)
        return reader

    def _init(self, pieces: Iterator[Piece], max_document: int, first_line: int) -> None:
        self._pieces = pieces
        self._max = max_document
        self.warnings: list[str] = []
        self._buf = ""
        self._pos = 0
        self._line = first_line
        self._eof = False
        self._cut: str | None = None  # the reason of an over-long line reached

    def _fill(self, at_least: int = 1) -> bool:
        """Append at least ``at_least`` characters (fewer at the end of the file or at an
        over-long line, which stops reading until the line's record is given)."""
        if self._eof or self._cut is not None:
            return False
        parts = [self._buf[self._pos:]]
        got = 0
        while got < at_least:
            piece = next(self._pieces, None)
            if piece is None:
                self._eof = True
                break
            if isinstance(piece, Line):
                self._cut = piece.warning
                break
            parts.append(piece)
            got += len(piece)
        if not got:
            return False
        self._buf = "".join(parts)
        self._pos = 0
        return True

    def _advance(self, end: int) -> None:
        self._line += self._buf.count("\n", self._pos, end)
        self._pos = end

    def _skip(self, pattern: re.Pattern[str]) -> None:
        while True:
            m = pattern.match(self._buf, self._pos)
            end = m.end() if m else self._pos
            self._advance(end)
            if self._pos < len(self._buf) or not self._fill():
                return

    def __iter__(self) -> Iterator[JsonRecord]:
        depth_array = False
        wrapper = False  # the array is the records list of an object too large to hold
        while True:
            self._skip(_WS_COMMA if depth_array else _WS)
            if self._pos >= len(self._buf):
                if self._cut is not None:  # an over-long line: one record, then go on
                    yield JsonRecord(self._line, "", None, self._cut)
                    self._cut = None
                    self._line += 1
                    continue
                if depth_array:
                    self.warnings.append("top-level array is never closed (truncated file?)")
                return
            ch = self._buf[self._pos]
            if not depth_array and ch == "[":
                depth_array = True
                self._advance(self._pos + 1)
                continue
            if depth_array and ch == "]":
                depth_array = False
                self._advance(self._pos + 1)
                if wrapper:
                    wrapper = False
                    self._close_wrapper()
                continue
            record = self._one_value(wrapper_allowed=not depth_array)
            if record is None:  # an object too large to hold: its records are streamed
                depth_array = wrapper = True
                continue
            yield record

    def _open_wrapper(self) -> bool:
        """At an object over the value bound: when it is a list wrapper (``{"kind":
        "EventList", "metadata": {..}, "items": [``), step into its records array so that
        each record is read on its own, and say so."""
        m = _WRAPPER.match(self._buf, self._pos)
        if m is None:
            return False
        self.warnings.append(
            f"a JSON object larger than {self._max:,} characters at line {self._line} holds "
            f'its records in "{m.group(1)}": they were read one by one (the object\'s other '
            "fields are not part of each record)")
        self._advance(m.end())
        return True

    def _close_wrapper(self) -> None:
        """Skip the rest of a list wrapper after its records array: ``}`` or more fields."""
        while True:
            self._skip(_WS)
            if self._pos >= len(self._buf):
                self.warnings.append("the object holding the records is never closed "
                                     "(truncated file?)")
                return
            if self._buf[self._pos] == "}":
                self._advance(self._pos + 1)
                return
            if self._buf[self._pos] == ",":
                try:
                    _, end = _DECODER.raw_decode("{" + self._buf[self._pos + 1:])
                except (json.JSONDecodeError, RecursionError):
                    if (not self._eof and len(self._buf) - self._pos < self._max
                            and self._fill(_CHUNK)):
                        continue
                    self.warnings.append("the fields after the records array could not "
                                         "be read")
                    self._advance(len(self._buf))
                    return
                self._advance(self._pos + end)
                return
            self.warnings.append("unexpected text after the records array")
            return

    def _one_value(self, wrapper_allowed: bool = False) -> JsonRecord | None:
        start_line = self._line
        while True:
            try:
                value, end = _DECODER.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                incomplete = self._buf.find("\n", exc.pos) == -1 and not (
                    exc.pos == self._pos and self._buf[self._pos] not in _VALUE_START)
                held = len(self._buf) - self._pos
                # decoded again once the value's text has doubled: linear, not quadratic
                if (incomplete and not self._eof and held < self._max
                        and self._fill(min(max(held, _CHUNK), self._max - held))):
                    continue
                if (incomplete and wrapper_allowed and held >= self._max
                        and self._open_wrapper()):
                    return None
                line = start_line + self._buf.count("\n", self._pos, exc.pos)
                msg = exc.msg.removesuffix(" at")  # "Invalid control character at"
                return self._bad(start_line, f"invalid JSON: {msg} (at line {line})",
                                 exc.pos)
            except RecursionError:
                return self._bad(start_line, "invalid JSON: nested too deeply")
            if wrapper_allowed and end - self._pos > self._max and self._open_wrapper():
                return None  # decoded whole only because it arrived in one piece
            text = self._buf[self._pos:end]
            self._advance(end)
            return JsonRecord(start_line, text, value)

    def _bad(self, start_line: int, reason: str, error_pos: int = -1) -> JsonRecord:
        """Skip to the next line that starts a value at this value's indentation."""
        line_start = self._buf.rfind("\n", 0, self._pos) + 1
        prefix = self._buf[line_start:self._pos]
        indent = min(len(prefix), 64) if prefix.strip(" \t") == "" else 0
        opener = re.compile("\n[ \t]{" + str(indent) + "}[\\[{]")
        # where the decoder stopped, from the value's start (filling moves the buffer)
        error_at = error_pos - self._pos if error_pos >= 0 else -1
        searched = 1  # offset from self._pos searched so far (less an opener's length)
        while True:
            m = opener.search(self._buf, self._pos + searched)
            if m:
                end = m.start() + 1
                break
            held = len(self._buf) - self._pos
            searched = max(1, held - 80)
            if held >= self._max or not self._fill(min(max(held, _CHUNK), self._max - held)):
                end = len(self._buf)
                break
        text = self._buf[self._pos:end]
        if 0 <= end - self._pos <= error_at:  # the decoder ran on into the next record:
            # this one is cut short
            next_line = start_line + text.count("\n")
            reason = f"invalid JSON: incomplete value (the next record starts at line {next_line})"
        self._advance(end)
        return JsonRecord(start_line, text, None, reason)


def _text_pieces(fh: BinaryIO, head: bytes, max_line: int | None) -> Iterator[Piece]:
    """The stream's text in whole lines, over-long lines as text-less :class:`Line`s; BOM
    removed, invalid bytes as U+FFFD. ``max_line`` None: in chunks, lines unbounded (a
    top-level array, whose elements are bounded one by one)."""
    if max_line is None:
        yield from iter_text_chunks(fh, head)
        return
    enc = detect_encoding(head)
    if enc == "utf-8":
        yield from _decoded((b for _, b in whole_lines(fh.read, max_line, _CHUNK, count=False)),
                            strip_bom=True)
        return
    text = io.TextIOWrapper(cast(Any, fh), encoding=enc, errors="replace", newline="")
    first = True
    for _, piece in whole_lines(text.read, max_line, _CHUNK, count=False):
        if first and isinstance(piece, str):
            piece = piece.lstrip("\ufeff")
        first = False
        yield piece


def _decoded(blocks: Iterable[bytes | Line], strip_bom: bool) -> Iterator[Piece]:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    first = strip_bom
    for block in blocks:
        if isinstance(block, Line):
            first = False
            yield block
            continue
        text = decoder.decode(block)
        if first and text:
            text = text.lstrip("\ufeff")
            first = False
        if text:
            yield text
    tail = decoder.decode(b"", True)
    if tail:
        yield tail


def iter_json(fh: BinaryIO, head: bytes) -> Iterator[JsonRecord]:
    """Shorthand for ``iter(JsonReader(fh, head))``."""
    return iter(JsonReader(fh, head))
