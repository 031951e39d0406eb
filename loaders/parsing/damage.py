"""Damage that real evidence carries, found and set aside so the records around it load.

An unclean shutdown leaves a run of NUL bytes where a log's last blocks were allocated but
never written; files concatenated by a collector carry a byte-order mark at the start of
each part; a disk error or a bad copy leaves a block of binary garbage in the middle of a
text log. None of it is a record, and none of it may hide the records around it.

- :class:`Scrubbed` removes NUL runs and byte-order marks found at the start of a line from a
  text stream (line numbers do not change: no newline is removed) and remembers where each
  NUL run was, so the run is kept as a reject with its location (:func:`nul_rejects`);
- :func:`resync_offsets` gives the places in a damaged head from which format detection
  tries again: past binary lines and a few unparsable ones;
- :func:`looks_binary` tells a reject whose text is binary damage, so that a run of them is
  kept as one damaged region (:class:`loaders.ingest.runner.FileRun`) instead of stopping the
  file.

Binary formats (EVTX) and UTF-16 text are never scrubbed: NUL bytes belong to them.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from loaders.parsing.inputs import detect_encoding, open_binary

BOM = codecs.BOM_UTF8
EVTX_MAGIC = b"ElfFile\x00"
MAX_NUL_RUNS = 10_000  # NUL runs remembered one by one; later ones are summed into the last
RESYNC_TEXT_LINES = 16  # unparsable text lines detection looks past
RESYNC_MIN_BYTES = 64  # detection needs at least this much text after a resync point

# a run of NULs and BOMs at the start of a line (or of the stream, given a leading "\n")
_AT_LINE_START = re.compile(rb"\n((?:\x00|\xef\xbb\xbf)+)")
# control characters that do not occur in text logs (tab, newline, CR, ESC and form feed do)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


@dataclass(slots=True)
class NulRun:
    """NUL bytes removed from the start of a line: where (offset in the decompressed
    stream), how many, and, once many runs were seen, how many more runs were summed in."""

    offset: int
    length: int
    more_runs: int = 0


_JOURNAL_EXPORT = re.compile(
    rb"^(?:\xef\xbb\xbf)?[ \t\r\n]{0,64}__(?:CURSOR|REALTIME_TIMESTAMP)=")


def scrubbable(head: bytes) -> bool:
    """Whether a file with this (decompressed) head is text that may be scrubbed: not EVTX
    (even one whose file header is wiped: a chunk at 4 KiB), not UTF-16 (whose NULs are
    half its bytes), not the journal export format (``journalctl -o export``: its binary
    fields are length-prefixed, and a length's zero bytes are data, not damage)."""
    if head.startswith(EVTX_MAGIC) or head[0x1000:0x1008] == b"ElfChnk\x00":
        return False  # EVTX, also with a damaged file header
    if _JOURNAL_EXPORT.match(head):
        return False
    return detect_encoding(head) == "utf-8"


def scrub(data: bytes, at_line_start: bool = True, offset: int = 0,
          runs: list[NulRun] | None = None) -> bytes:
    """``data`` without NUL runs and BOMs at line starts; NUL runs are appended to ``runs``
    with their offset (``offset`` is where ``data`` starts in the stream)."""
    if b"\x00" not in data and b"\xef" not in data:
        return data
    lead = b"\n" if at_line_start else b""
    text = lead + data
    out: list[bytes] = []
    pos = 0
    for m in _AT_LINE_START.finditer(text):
        start, end = m.span(1)
        out.append(text[pos:start])
        nuls = m.group(1).count(b"\x00")
        if nuls and runs is not None:
            _remember(runs, offset + start - len(lead), nuls)
        pos = end
    if not out:
        return data
    out.append(text[pos:])
    return b"".join(out)[len(lead):]


def _remember(runs: list[NulRun], offset: int, length: int) -> None:
    if runs and runs[-1].offset + runs[-1].length == offset:  # a run split by a read
        runs[-1].length += length
    elif len(runs) < MAX_NUL_RUNS:
        runs.append(NulRun(offset, length))
    else:
        runs[-1].more_runs += 1
        runs[-1].length += length


class Scrubbed(io.RawIOBase):
    """A text stream read through :func:`scrub`, chunk by chunk. A NUL run or a BOM split
    by a read boundary is handled as if whole."""

    def __init__(self, raw: BinaryIO, runs: list[NulRun], chunk: int = 1 << 20) -> None:
        self._raw = raw
        self._runs = runs
        self._chunk = chunk
        self._offset = 0  # bytes of the underlying stream consumed
        self._line_start = True
        self._carry = b""  # a possible BOM prefix held back at a read boundary
        self._out = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._out:
            data = self._raw.read(self._chunk)
            if not data:
                self._out, self._carry = self._carry, b""
                if not self._out:
                    return 0
                break
            start = self._offset - len(self._carry)
            data = self._carry + data
            self._offset += len(data) - len(self._carry)
            self._carry = b""
            tail = data[data.rfind(b"\n") + 1:] if b"\n" in data else (
                data if self._line_start else b"")
            if tail and len(tail) < 3 and BOM.startswith(tail):  # maybe half a BOM
                self._carry, data = tail, data[: len(data) - len(tail)]
            clean = scrub(data, self._line_start, start, self._runs)
            if data:  # a line ends here, or all of it was a run at a line start
                self._line_start = clean.endswith(b"\n") or (self._line_start and not clean)
            self._out = clean
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def scrubbed(fh: BinaryIO, runs: list[NulRun]) -> BinaryIO:
    """``fh`` read through :class:`Scrubbed`, buffered."""
    return cast(BinaryIO, io.BufferedReader(Scrubbed(fh, runs), buffer_size=1 << 20))


def nul_rejects(runs: list[NulRun], open_stream: Callable[[], BinaryIO]
                ) -> Iterator[tuple[int, str]]:
    """``(line, reason)`` of each NUL run, the lines counted in one more pass over the
    stream (only damaged files pay it)."""
    if not runs:
        return
    lines = _lines_at([r.offset for r in runs], open_stream)
    for run, line in zip(runs, lines, strict=True):
        what = (f"{run.length:,} NUL bytes at byte {run.offset:,}" if not run.more_runs else
                f"{run.length:,} NUL bytes in {run.more_runs + 1:,} runs from byte "
                f"{run.offset:,}")
        yield line, (f"damaged region: {what} (a zeroed or preallocated block, as an "
                     "unclean shutdown leaves); the records around it were read")


def _lines_at(offsets: list[int], open_stream: Callable[[], BinaryIO]) -> list[int]:
    found: list[int] = []
    line, pos = 1, 0
    with open_stream() as fh:
        for target in offsets:
            while pos < target:
                data = fh.read(min(1 << 20, target - pos))
                if not data:
                    break
                line += data.count(b"\n")
                pos += len(data)
            found.append(line)
    return found


def looks_binary(text: str) -> bool:
    """Whether a rejected record's text is binary damage: it holds control characters text
    logs do not have, or bytes that were not valid UTF-8."""
    return "\ufffd" in text or _CONTROL.search(text) is not None


def binary_line(line: bytes) -> bool:
    """:func:`looks_binary` for raw bytes: not valid UTF-8, or holding those controls."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return _CONTROL.search(text) is not None


def resync_offsets(head: bytes) -> Iterator[int]:
    """Where in a head format detection tries again after the start failed: the start of
    each of the first :data:`RESYNC_TEXT_LINES` lines, binary lines not counted (so a block
    of garbage of any length within the head is looked past), while at least
    :data:`RESYNC_MIN_BYTES` follow."""
    pos = 0
    text_lines = 0
    while text_lines < RESYNC_TEXT_LINES:
        nl = head.find(b"\n", pos)
        if nl < 0:
            return
        if not binary_line(head[pos:nl]):
            text_lines += 1
        pos = nl + 1
        if len(head) - pos < RESYNC_MIN_BYTES and head.find(b"\n", pos) < 0:
            return
        yield pos


def looks_like_text(head: bytes) -> bool:
    """Whether an unrecognised file looks like text logs (so it is reported prominently):
    mostly lines of valid text."""
    lines = [ln for ln in head.split(b"\n")[:64] if ln.strip()]
    if len(head) < 16 or not lines:
        return False
    if len(lines) > 1:
        lines = lines[:-1]  # the last may be cut by the head's end
    return sum(not binary_line(ln) for ln in lines) >= 0.8 * len(lines)


def read_scrubbed_head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of a file as its loader will see them (decompressed, scrubbed
    when text)."""
    with open_binary(path) as fh:
        head = fh.read(n)
        if not scrubbable(head):
            return head
        clean = scrub(head)
        while len(clean) < min(n, len(head)) and len(head) < 16 * n:
            more = fh.read(n)  # NULs were removed: read on (a bounded amount)
            if not more:
                break
            head += more
            clean = scrub(head)
        return clean[:n]
