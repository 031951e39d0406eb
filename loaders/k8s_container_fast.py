"""The vectorized reader of container logs: blocks of whole lines parsed with Arrow compute.

The file is read in blocks of whole lines (``BLOCK_BYTES``). In a block, every complete CRI
line (``<time>Z <stdout|stderr> F <message>``) — or, in a block that starts with ``{``, every
complete docker json-file record in dockerd's own layout — that no partial is waiting for
becomes a row of one Arrow table: the line is split with Arrow kernels, the time is read with
numpy from its fixed-width digits, and lifting runs on the messages that may be structured
(:mod:`loaders.k8s_container_lift`). Every other line — ``P`` partials and docker records
without a final ``\n``, the lines that close them, times with an offset or out of range,
escapes other than two-character ones, shipper copies, lines of neither form, CRLF endings —
is fed, in order, to the line-by-line
:class:`~loaders.k8s_container.Assembler`, so its values, warnings and rejects are exactly
those of the line-by-line reader. A block with invalid UTF-8 is read line by line entirely.

Order: the table rows before a reject are yielded before it, so the runner's bad-record
limits (the first N records rejected, a run of N rejects) see the same sequence as line by
line, and a stop takes effect at the same line.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaders import inputs
from loaders.base import Item, ParsedTable, Reject, Source
from loaders.inputs import Line
from loaders.k8s_container_lift import Lift, lifted

BLOCK_BYTES = 4 * 1024 * 1024  # ~16k CRI lines; larger blocks raise peak memory, not speed
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_WIDTH = 31  # longest fast-path time: 19 + "." + 9 digits + "Z" = 30
# a complete docker json-file record as dockerd writes it: keys in this order, a log that ends
# in \n and has no escape but the two-character ones other than \\ (no \u, no \\); the
# rest (partials, shipper copies, other escapes) is read line by line
_DOCKER = (r'^\{"log":"(?:[^"\\\x00-\x1f]|\\["/bfnrt])*\\n","stream":"(?:stdout|stderr)",'
           r'"time":"[0-9T:.Z-]*"\}$')


class Assembler(Protocol):
    """What the fast path needs of :class:`loaders.k8s_container.Assembler`."""

    info: Any
    open: dict[str, Any]

    def feed(self, line: Line) -> Iterator[Item]: ...

    def flush(self) -> Iterator[Item]: ...


def iter_fast(src: Source, assembler: Assembler, lift: Lift) -> Iterator[Item]:
    """Items of a UTF-8 container log, block by block (see the module docstring).

    Args:
        src: the file.
        assembler: the line-by-line reader, fed the lines the fast path does not take.
        lift: level/message lifting of a structured message.

    Returns:
        Parsed tables, and the line-by-line reader's items, in input order (a block's table
        rows may follow its other events: equal lines are read the same way in one block, so
        the first of repeated events still comes first, as the store's de-duplication keeps
        the first).
    """
    for piece in _blocks(src):
        if isinstance(piece, Line):
            yield from assembler.feed(piece)
        else:
            yield from _block(piece[0], piece[1], src, assembler, lift)
        if src.stopped:
            break
    yield from assembler.flush()


def _blocks(src: Source) -> Iterator[tuple[int, bytes] | Line]:
    """(number of the first line, bytes of whole lines) blocks; a line too long to read
    becomes a text-less :class:`Line`, as :func:`loaders.inputs.iter_lines` gives it."""
    max_line = inputs.MAX_LINE_BYTES
    # with reads no longer than the longest line allowed, an over-long line always spans
    # reads, so only the first line of a buffer can be one
    size = min(BLOCK_BYTES, max_line)
    number = 0
    pending = b""
    skipping = 0  # bytes of an over-long line being skipped
    with src.binary() as fh:
        while True:
            data = fh.read(size)
            if skipping:
                cut = data.find(b"\n")
                if cut < 0 and data:
                    skipping += len(data)
                    continue
                skipping += cut + 1 if cut >= 0 else 0
                number += 1
                yield Line(number, None, f"line too long ({skipping} bytes > {max_line})")
                skipping = 0
                data = data[cut + 1:] if cut >= 0 else b""
                if not data:
                    if cut < 0:
                        return
                    continue
            if not data:
                if pending:
                    if len(pending) > max_line:
                        yield Line(number + 1, None,
                                   f"line too long ({len(pending)} bytes > {max_line})")
                    else:
                        yield number + 1, pending
                return
            buf = pending + data if pending else data
            head = buf.find(b"\n")
            if head < 0:
                if len(buf) > max_line:
                    skipping, pending = len(buf), b""
                else:
                    pending = buf
                continue
            if head > max_line:  # only the first line can span earlier reads
                number += 1
                yield Line(number, None, f"line too long ({head + 1} bytes > {max_line})")
                buf = buf[head + 1:]
            cut = buf.rfind(b"\n") + 1
            if cut:
                yield number + 1, buf[:cut]
                number += buf.count(b"\n", 0, cut)
            pending = buf[cut:]


def _text_line(number: int, chunk: bytes) -> Line:
    """One line's bytes (no ``\\n``) decoded as :func:`loaders.inputs.iter_lines` does."""
    if chunk.endswith(b"\r"):
        chunk = chunk[:-1]
    try:
        return Line(number, chunk.decode("utf-8"))
    except UnicodeDecodeError:
        return Line(number, chunk.decode("utf-8", "replace"),
                    "invalid UTF-8 bytes replaced with U+FFFD",
                    chunk.decode("utf-8", "backslashreplace"))


def _block(first: int, data: bytes, src: Source, assembler: Assembler, lift: Lift
           ) -> Iterator[Item]:
    """Items of one block of whole lines; ``first`` is the number of its first line."""
    if first == 1:  # (a BOM counts towards the length of an over-long first line)
        data = data.removeprefix(codecs.BOM_UTF8)
    chunks = pc.split_pattern(pa.array([data], pa.binary()), b"\n").flatten()
    if data.endswith(b"\n"):
        chunks = chunks.slice(0, len(chunks) - 1)
    try:
        lines = chunks.cast(pa.string())
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere: this block line by line
        for i, chunk in enumerate(chunks.to_pylist()):
            yield from _fed(assembler, _text_line(first + i, chunk), src)
            if src.stopped:
                return
        return
    cols = _split_docker(lines) if data[:1] == b"{" else _split_cri(lines)
    fast = cols["fast"]
    if fast.sum() * 10 < len(lines):  # hardly any plain line: the table is not worth it
        for i, chunk in enumerate(chunks.to_pylist()):
            yield from _fed(assembler, _text_line(first + i, chunk), src)
            if src.stopped:
                return
        return
    yield from _walk(first, lines, cols, src, assembler, lift)


def _fed(assembler: Assembler, line: Line, src: Source) -> Iterator[Item]:
    for item in assembler.feed(line):
        yield item
        if src.stopped:
            return


def _walk(first: int, lines: pa.StringArray, cols: dict[str, Any], src: Source,
          assembler: Assembler, lift: Lift) -> Iterator[Item]:
    """Feed the lines the table cannot take to the assembler, in order, and yield the
    table's rows between the rejects."""
    n = len(lines)
    fast: np.ndarray = cols["fast"]
    cand = np.flatnonzero(fast)  # rows of the table unless a partial claims them
    table = _table(first, lines, cols, cand, assembler.info, lift)
    keep = np.ones(len(cand), bool)
    # rows that must be fed: everything but plain F lines and empty lines
    special = np.flatnonzero(~fast & (cols["length"] > 0))
    # a partial open on stdout/stderr claims that stream's next line (of a known form)
    by_stream = {name: np.flatnonzero(cols["known"] & cols[name])
                 for name in ("stdout", "stderr")}
    done = 0
    sp, cur = 0, -1
    while True:
        nxt = int(special[sp]) if sp < len(special) else n
        for name in assembler.open:
            rows = by_stream.get(name)
            if rows is not None:
                j = int(np.searchsorted(rows, cur, side="right"))
                if j < len(rows) and rows[j] < nxt:
                    nxt = int(rows[j])
        if nxt >= n:
            break
        if sp < len(special) and special[sp] == nxt:
            sp += 1
        cur = nxt
        at = int(np.searchsorted(cand, cur))
        if fast[cur]:
            keep[at] = False
        text = lines[cur].as_py()
        line = Line(first + cur, text[:-1] if text.endswith("\r") else text)
        for item in assembler.feed(line):
            if isinstance(item, Reject):
                if keep[done:at].any():  # an empty table would reset the reject run
                    yield ParsedTable(_rows(table, keep, done, at))
                done = max(done, at)
                yield item
                if src.stopped:
                    return
            else:
                yield item
    if keep[done:].any():
        yield ParsedTable(_rows(table, keep, done, len(cand)))


def _rows(table: pa.Table, keep: np.ndarray, start: int, stop: int) -> pa.Table:
    part = table.slice(start, stop - start)
    mask = keep[start:stop]
    return part if mask.all() else part.filter(pa.array(mask))


def _split_cri(lines: pa.StringArray) -> dict[str, Any]:
    """Fields of every line read as CRI; ``fast`` marks the complete (``F``) lines with a
    readable UTC time, ``known`` every line of the CRI form (any tag, any time)."""
    parts = pc.split_pattern(lines, " ", max_splits=3)
    offsets = np.asarray(parts.offsets)
    count = np.diff(offsets)
    values = pa.concat_arrays([parts.values, pa.array([""])])
    last = len(values) - 1
    start = offsets[:-1]

    def field(k: int) -> pa.StringArray:
        return values.take(np.where(count > k, start + k, last))

    stamp, stream, tag, message = field(0), field(1), field(2), field(3)
    stdout = np.asarray(pc.equal(stream, "stdout"))
    stderr = np.asarray(pc.equal(stream, "stderr"))
    final = np.asarray(pc.equal(tag, "F"))
    partial = np.asarray(pc.equal(tag, "P"))
    crlf = np.asarray(pc.ends_with(lines, "\r"))
    micros, readable = _epoch_micros(stamp)
    cri = (count >= 3) & (stdout | stderr) & (final | partial) & ~crlf
    return {"stream": stream, "message": message, "micros": micros,
            "stdout": stdout, "stderr": stderr, "known": cri, "fast": cri & final & readable,
            "length": np.asarray(pc.binary_length(lines))}


def _split_docker(lines: pa.StringArray) -> dict[str, Any]:
    """Fields of every line read as a plain docker json-file record, as :func:`_split_cri`
    gives them; ``fast`` marks the records the table takes (see :data:`_DOCKER`)."""
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
    stdout = np.asarray(pc.equal(stream, "stdout")) & plain
    stderr = np.asarray(pc.equal(stream, "stderr")) & plain
    micros, readable = _epoch_micros(stamp)
    return {"stream": stream, "message": log, "micros": micros, "stdout": stdout,
            "stderr": stderr, "known": plain, "fast": plain & readable,
            "length": np.asarray(pc.binary_length(lines))}


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


def _epoch_micros(stamps: pa.StringArray) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch of ``YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`` times (fraction
    truncated, as ``datetime.fromisoformat`` does), and which rows are such valid times."""
    n = len(stamps)
    offsets = np.frombuffer(stamps.buffers()[1], np.int32, n + 1, stamps.offset * 4)
    raw = stamps.buffers()[2]
    data = np.frombuffer(raw, np.uint8) if raw is not None else np.zeros(0, np.uint8)
    data = np.concatenate([data, np.zeros(_WIDTH, np.uint8)])
    begin = offsets[:-1].astype(np.int64)
    length = (offsets[1:] - offsets[:-1]).astype(np.int64)
    grid = data[begin[:, None] + np.arange(_WIDTH)]
    d = grid - np.uint8(48)  # digits 0-9; anything else wraps above 9
    isdigit = d <= 9
    ok = ((length == 20) | (length >= 22)) & (length <= _WIDTH - 1)  # ".Z" has no digit
    ok &= isdigit[:, _DIGITS].all(axis=1)
    ok &= (grid[:, 4] == 45) & (grid[:, 7] == 45) & (grid[:, 10] == 84)
    ok &= (grid[:, 13] == 58) & (grid[:, 16] == 58)
    ok &= grid[np.arange(n), np.clip(length - 1, 0, _WIDTH - 1)] == 90  # Z
    digits = np.clip(length - 21, 0, 9)  # fraction digits
    has_frac = length > 20
    ok &= ~has_frac | (grid[:, 19] == 46)
    j = np.arange(9)
    ok &= (isdigit[:, 20:29] | (j >= digits[:, None])).all(axis=1)

    def num(a: int, b: int) -> np.ndarray:
        return d[:, a].astype(np.int64) * 10 + d[:, b]

    year, month, day = num(0, 1) * 100 + num(2, 3), num(5, 6), num(8, 9)
    hour, minute, second = num(11, 12), num(14, 15), num(17, 18)
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


def _const(value: str | None, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, pa.string())
    return pa.DictionaryArray.from_arrays(np.zeros(n, np.int8), [value]).cast(pa.string())


def _table(first: int, lines: pa.StringArray, cols: dict[str, Any], rows: np.ndarray,
           info: Any, lift: Lift) -> pa.Table:
    """The Arrow rows (schema columns, ``source_line``, ``raw``) of the plain CRI lines."""
    n = len(rows)
    idx = pa.array(rows)
    message = cols["message"].take(idx)
    stream = cols["stream"].take(idx)
    level, msg = lifted(message, lift)
    namespace, pod, container = info.namespace, info.pod, info.container
    target = "/".join(p for p in (namespace, pod, container) if p) or None
    return pa.table({
        "timestamp": pa.array(cols["micros"][rows], pa.int64()).cast(_TIMESTAMP),
        "category": _const("log", n),
        "action": stream,
        "outcome": _const("unknown", n),
        "k8s_namespace": _const(namespace, n),
        "k8s_pod": _const(pod, n),
        "k8s_container": _const(container, n),
        "target_type": _const("container" if container else None, n),
        "target": _const(target, n),
        "message": message,
        "k8s_stream": stream,
        "k8s_container_id": _const(info.container_id, n),
        "k8s_pod_uid": _const(info.pod_uid, n),
        "k8s_log_level": level,
        "k8s_log_msg": msg,
        "source_line": pa.array(rows + first, pa.int64()),
        "raw": lines.take(idx),
    })
