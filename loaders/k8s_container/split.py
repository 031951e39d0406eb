"""Splitting a block of whole container log lines with numpy, for :mod:`loaders.k8s_container.fast`.

A block's lines are byte ranges of the block (no copy); the CRI fields of every line are read
from a fixed-width grid of its first bytes (the time has at most 30 characters), and string
columns are built from byte ranges through an Arrow ``string_view`` array, so each value is
copied once. Docker json-file records are split with Arrow kernels.

Every row marked ``fast`` is one the line-by-line reader would give the same values for; the
other lines are fed to it (see :mod:`loaders.k8s_container.fast`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

_NEWLINE, _SPACE, _CR = 10, 32, 13
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
# "YYYY-MM-DDTHH:MM:SS": each byte minus the template's is at most the span (digits, or the
# separator itself; a byte below wraps above)
_TEMPLATE = np.frombuffer(b"0000-00-00T00:00:00", np.uint8)
_SPAN = np.array([9 if byte == ord("0") else 0 for byte in _TEMPLATE.tolist()], np.uint8)
_WIDTH = 31  # longest fast-path time: 19 + "." + 9 digits + "Z" = 30, then a space
_GRID = _WIDTH + 10  # ... then "stdout F" and the byte after the tag
# "stdout " / "stderr " as the first seven bytes of a little-endian word
_SEVEN_BYTES = np.uint64(2**56 - 1)
_STDOUT, _STDERR = (np.frombuffer(word + b"\0", "<u8")[0] for word in (b"stdout ", b"stderr "))
_FINAL, _PARTIAL = ord("F"), ord("P")
_INLINE = 12  # string_view values up to this length are stored in the view itself
# a complete docker json-file record as dockerd writes it: keys in this order, a log that ends
# in \n and has no escape but the two-character ones other than \\ (no \u, no \\); the
# rest (partials, shipper copies, other escapes) is read line by line
_DOCKER = (r'^\{"log":"(?:[^"\\\x00-\x1f]|\\["/bfnrt])*\\n","stream":"(?:stdout|stderr)",'
           r'"time":"[0-9T:.Z-]*"\}$')


class Block:
    """A block of whole lines: each line is ``data[starts[i]:starts[i] + lengths[i]]``
    (without its ``\\n``).

    Args:
        data: the block's bytes; every line but maybe the last ends with ``\\n``.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        # (padded with newlines, so a fixed-width read past the last line sees a line end)
        self.window = padded_window(data)
        self.bytes = self.window[:, 0]
        ends = np.flatnonzero(self.bytes[:len(data)] == _NEWLINE)
        if not data.endswith(b"\n"):
            ends = np.append(ends, len(data))
        self.starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        self.lengths = ends - self.starts

    def __len__(self) -> int:
        return len(self.starts)

    def chunk(self, i: int) -> bytes:
        """The bytes of line ``i``."""
        start = int(self.starts[i])
        return self.data[start:start + int(self.lengths[i])]

    def strings(self, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
        """A string array of byte ranges of the block (valid UTF-8 ones: the caller checked
        the block, and every range starts and ends at an ASCII character or line end)."""
        return ranges(self.data, self.window, starts, lengths)

    def lines(self) -> pa.Array:
        """Every line as a string array."""
        return self.strings(self.starts, self.lengths)


def ranges(data: bytes | pa.Buffer, window: np.ndarray, starts: np.ndarray,
           lengths: np.ndarray) -> pa.Array:
    """A string array of the byte ranges ``starts``/``lengths`` of ``data`` (each valid UTF-8),
    through a ``string_view`` array; ``window`` is :func:`padded_window` of ``data``."""
    n = len(starts)
    # a view: length, first 4 bytes, buffer 0, offset; or length and up to 12 bytes inline
    views = np.empty((n, 4), np.int32)
    views[:, 0] = lengths
    views[:, 1] = np.ascontiguousarray(window[starts, :4]).view(np.int32)[:, 0]
    views[:, 2] = 0
    views[:, 3] = starts
    short = np.flatnonzero(lengths <= _INLINE)
    if len(short):
        inline = window[starts[short], :_INLINE]
        inline = np.where(np.arange(_INLINE) < lengths[short, None], inline, 0)
        views.view(np.uint8).reshape(n, 16)[short, 4:] = inline
    buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    array = pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(views), buffer])
    return array.cast(pa.string())


def padded_window(data: bytes | pa.Buffer, fill: bytes = b"\n") -> np.ndarray:
    """Row ``k``: the ``_GRID`` bytes of ``data`` from ``k`` on (``fill`` past its end)."""
    return sliding_window_view(np.frombuffer(bytes(data) + fill * _GRID, np.uint8), _GRID)


@dataclass
class Fields:
    """What the table needs of a block's lines: ``fast`` marks the rows it may take (a
    readable UTC time, a complete line), ``partial`` the ``P`` lines that are otherwise as
    plain; ``stdout``/``stderr`` the stream of both, ``micros`` their time, ``message`` their
    messages by row numbers and ``size`` the bytes of every line's message."""

    fast: np.ndarray
    stdout: np.ndarray
    stderr: np.ndarray
    micros: np.ndarray
    message: Callable[[np.ndarray], pa.Array]
    partial: np.ndarray
    size: np.ndarray


def split_cri(block: Block) -> Fields:
    """Fields of every line read as a CRI line: ``<time> <stdout|stderr> <F|P>`` then the end
    of the line or a space and the message (the line must not end with ``\\r``)."""
    grid = block.window[block.starts]
    space = grid[:, :_WIDTH] == _SPACE
    stamp_len = space.argmax(axis=1)
    ok = space[np.arange(len(grid)), stamp_len] & (stamp_len < block.lengths)
    tail = block.window[block.starts + stamp_len, 1:10]
    stream = np.ascontiguousarray(tail[:, :8]).view("<u8")[:, 0] & _SEVEN_BYTES
    stdout, stderr = stream == _STDOUT, stream == _STDERR
    ok &= (stdout | stderr) & ((tail[:, 8] == _SPACE) | (tail[:, 8] == _NEWLINE))
    ends = block.starts + block.lengths
    ok &= block.bytes[np.maximum(ends - 1, 0)] != _CR
    micros, readable = epoch_micros_grid(grid[:, :_WIDTH], stamp_len)
    ok &= readable
    msg_start = np.minimum(block.starts + stamp_len + 10, ends)

    def message(rows: np.ndarray) -> pa.Array:
        return block.strings(msg_start[rows], ends[rows] - msg_start[rows])

    fast = ok & (tail[:, 7] == _FINAL)
    return Fields(fast, stdout & ok, stderr & ok, micros, message,
                  ok & (tail[:, 7] == _PARTIAL), ends - msg_start)


def split_docker(block: Block) -> Fields:
    """Fields of every line read as a plain docker json-file record; ``fast`` marks the
    records the table takes (see :data:`_DOCKER`)."""
    lines = block.lines()
    plain = np.asarray(pc.match_substring_regex(lines, _DOCKER))
    # the separator cannot occur inside the log string, where every quote is escaped
    parts = pc.split_pattern(lines, '","stream":"', max_splits=1)
    offsets = np.asarray(parts.offsets)
    values = pa.concat_arrays([parts.values, pa.array([""])])
    two = np.diff(offsets) == 2
    head = values.take(np.where(two, offsets[:-1], len(values) - 1))
    tail = values.take(np.where(two, offsets[:-1] + 1, len(values) - 1))
    log = pc.utf8_slice_codeunits(head, 8, -2)  # {"log":" ... \n
    stream = pc.utf8_slice_codeunits(tail, 0, 6)
    stamp = pc.utf8_slice_codeunits(tail, 16, -2)  # stdout","time":" ... "}
    if pc.any(pc.match_substring_regex(log, r"\\")).as_py():
        log = _json_unescape(log)
    micros, readable = epoch_micros(stamp)
    fast = plain & readable
    stdout = np.asarray(pc.equal(stream, "stdout")) & fast
    stderr = np.asarray(pc.equal(stream, "stderr")) & fast

    def message(rows: np.ndarray) -> pa.Array:
        return log.take(pa.array(rows, pa.int64()))

    return Fields(fast, stdout, stderr, micros, message, np.zeros(len(fast), bool),
                  np.zeros(len(fast), np.int64))


def _json_unescape(text: pa.Array) -> pa.Array:
    """JSON string contents with only two-character escapes and no ``\\\\`` decoded:
    every backslash starts one escape, so replacing them one kind at a time is exact."""
    text = pc.replace_substring(text, '\\"', '"')
    if pc.any(pc.match_substring_regex(text, r"\\[/bfnrt]")).as_py():  # rarer than \"
        for escaped, plain in (("\\/", "/"), ("\\t", "\t"), ("\\n", "\n"), ("\\r", "\r"),
                               ("\\b", "\b"), ("\\f", "\f")):
            text = pc.replace_substring(text, escaped, plain)
    # a docker line ending \r\n loses its \r too
    return pc.replace_substring_regex(text, "\r$", "", max_replacements=1)


def epoch_micros(stamps: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch of ``YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`` times (fraction
    truncated, as ``datetime.fromisoformat`` does), and which rows are such valid times."""
    n = len(stamps)
    offsets = np.frombuffer(stamps.buffers()[1], np.int32, n + 1, stamps.offset * 4)
    raw = stamps.buffers()[2]
    data = np.frombuffer(raw, np.uint8) if raw is not None else np.zeros(0, np.uint8)
    data = np.concatenate([data, np.zeros(_WIDTH, np.uint8)])
    begin = offsets[:-1].astype(np.int64)
    length = (offsets[1:] - offsets[:-1]).astype(np.int64)
    return epoch_micros_grid(data[begin[:, None] + np.arange(_WIDTH)], length)


def epoch_micros_grid(grid: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`epoch_micros` of times given as their first ``_WIDTH`` bytes (one row each,
    what follows a time does not matter) and their lengths."""
    n = len(grid)
    d = grid - np.uint8(48)  # digits 0-9; anything else wraps above 9
    ok = ((length == 20) | (length >= 22)) & (length <= _WIDTH - 1)  # ".Z" has no digit
    ok &= ((grid[:, :19] - _TEMPLATE) <= _SPAN).all(axis=1)
    ok &= grid[np.arange(n), np.clip(length - 1, 0, _WIDTH - 1)] == 90  # Z
    digits = np.clip(length - 21, 0, 9)  # fraction digits
    ok &= (length == 20) | (grid[:, 19] == 46)
    j = np.arange(9)
    ok &= ((d[:, 20:29] <= 9) | (j >= digits[:, None])).all(axis=1)
    digit = d[:, :19].astype(np.int64)  # (no matrix product: BLAS threads would spin)
    year = digit[:, 0] * 1000 + digit[:, 1] * 100 + digit[:, 2] * 10 + digit[:, 3]
    month, day, hour, minute, second = (digit[:, k] * 10 + digit[:, k + 1]
                                        for k in (5, 8, 11, 14, 17))
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    dim = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= dim)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    scale = 10 ** (5 - j[:6])
    micros = (np.where(j[:6] < digits[:, None], d[:, 20:26], 0) * scale).sum(axis=1)
    micros = micros.astype(np.int64)
    # days from the civil date (H. Hinnant's algorithm), valid for years 1..9999
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    return np.where(ok, seconds * 1_000_000 + micros, 0), ok

