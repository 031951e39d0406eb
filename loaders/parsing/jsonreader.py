"""One JSON reader for every shape exports take.

JSON Lines, one pretty-printed document, a top-level array of records (streamed element by
element), concatenated documents (``{..}{..}`` or separated by whitespace), with or without a
BOM, UTF-8 or UTF-16. Each top-level value (or array element) becomes one
:class:`JsonRecord` with the line it starts on and its exact text. A value that does not
parse becomes a record with ``error`` set; reading then resumes at the next line that starts
a value at the same indentation, so one bad record never stops the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from loaders.parsing.inputs import iter_text_chunks

MAX_DOCUMENT_CHARS = 128 * 1024 * 1024
_WS = re.compile(r"[ \t\r\n\x00]*")
_WS_COMMA = re.compile(r"[ \t\r\n\x00,]*")
_DECODER = json.JSONDecoder()
_VALUE_START = frozenset('{["-0123456789tfn')


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

    def __init__(self, fh: BinaryIO, head: bytes, max_document: int = MAX_DOCUMENT_CHARS):
        self._chunks = iter_text_chunks(fh, head)
        self._max = max_document
        self.warnings: list[str] = []
        self._buf = ""
        self._pos = 0
        self._line = 1
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._eof = True
            return False
        self._buf = self._buf[self._pos:] + chunk
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
        while True:
            self._skip(_WS_COMMA if depth_array else _WS)
            if self._pos >= len(self._buf):
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
                continue
            yield self._one_value()

    def _one_value(self) -> JsonRecord:
        start_line = self._line
        while True:
            try:
                value, end = _DECODER.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                incomplete = self._buf.find("\n", exc.pos) == -1 and not (
                    exc.pos == self._pos and self._buf[self._pos] not in _VALUE_START)
                if (incomplete and not self._eof
                        and len(self._buf) - self._pos < self._max and self._fill()):
                    continue
                line = start_line + self._buf.count("\n", self._pos, exc.pos)
                msg = exc.msg.removesuffix(" at")  # "Invalid control character at"
                return self._bad(start_line, f"invalid JSON: {msg} (at line {line})",
                                 exc.pos)
            except RecursionError:
                return self._bad(start_line, "invalid JSON: nested too deeply")
            text = self._buf[self._pos:end]
            self._advance(end)
            return JsonRecord(start_line, text, value)

    def _bad(self, start_line: int, reason: str, error_pos: int = -1) -> JsonRecord:
        """Skip to the next line that starts a value at this value's indentation."""
        line_start = self._buf.rfind("\n", 0, self._pos) + 1
        prefix = self._buf[line_start:self._pos]
        indent = min(len(prefix), 64) if prefix.strip(" \t") == "" else 0
        opener = re.compile("\n[ \t]{" + str(indent) + "}[\\[{]")
        while True:
            m = opener.search(self._buf, self._pos + 1)
            if m:
                end = m.start() + 1
                break
            if len(self._buf) - self._pos >= self._max or not self._fill():
                end = len(self._buf)
                break
        text = self._buf[self._pos:end]
        if error_pos >= end:  # the decoder ran on into the next record: this one is cut short
            next_line = start_line + text.count("\n")
            reason = f"invalid JSON: incomplete value (the next record starts at line {next_line})"
        self._advance(end)
        return JsonRecord(start_line, text, None, reason)


def iter_json(fh: BinaryIO, head: bytes) -> Iterator[JsonRecord]:
    """Shorthand for ``iter(JsonReader(fh, head))``."""
    return iter(JsonReader(fh, head))
