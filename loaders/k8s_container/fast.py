"""The vectorized reader of container logs: blocks of whole lines parsed with numpy and Arrow.

The file is read in blocks of whole lines (:attr:`~loaders.base.Tuning.container_block_bytes`).
In a block, every complete CRI line (``<time>Z <stdout|stderr> F <message>``) — or, in a
block that starts with ``{``, every complete docker json-file record in dockerd's own layout
— that no partial is waiting for becomes a row of one Arrow table: the line is split with numpy
(:mod:`loaders.k8s_container.split`: fields and time from its fixed-width start, strings as
byte ranges of the block), and lifting runs on the messages that may be structured
(:mod:`loaders.k8s_container.lift`). A run of CRI ``P`` lines of one stream closed by such a
line of that stream, with no entry of that stream open before it, becomes one row too (the
assembler would join it whole: :func:`_runs`). Every other line — other partials and docker
records without a final ``\n``, the lines that close them, times with an offset or out of
range, escapes other than two-character ones, shipper copies, lines of neither form, CRLF
endings — is fed, in order, to the line-by-line :class:`~loaders.k8s_container.loader.Assembler`,
so its values, warnings and rejects are exactly those of the line-by-line reader. A block
with invalid UTF-8 is read line by line entirely.

Order: the table rows before a reject are yielded before it, so the runner's bad-record
limits (the first N records rejected, a run of N rejects) see the same sequence as line by
line, and a stop takes effect at the same line; joined runs are yielded where the assembler
would have yielded their entries.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaders.base import Item, ParsedTable, Reject, Source
from loaders.k8s_container.lift import Lift, lifted
from loaders.k8s_container.split import Block, Fields, split_cri, split_docker
from loaders.parsing.inputs import Line, decode_line

_TIMESTAMP = pa.timestamp("us", tz="UTC")
_STREAMS = ("stdout", "stderr")


class Assembler(Protocol):
    """What the fast path needs of :class:`loaders.k8s_container.loader.Assembler`."""

    info: Any
    open: dict[str, Any]

    @property
    def limits(self) -> tuple[int, int]: ...

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


def _blocks(src: Source) -> Iterator[tuple[int, Block] | Line]:
    """(number of the first line, whole lines) blocks; a line too long to read becomes a
    text-less :class:`Line`, as :func:`loaders.parsing.inputs.iter_lines` gives it. The file's BOM
    is dropped (it counts towards the length of an over-long first line)."""
    max_line = src.options.tuning.max_line_bytes
    # with reads no longer than the longest line allowed, an over-long line always spans
    # reads, so only the first line of a buffer can be one
    size = min(src.options.tuning.container_block_bytes, max_line)
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
                        yield number + 1, _new_block(pending, number)
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
                block = _new_block(buf[:cut], number)
                yield number + 1, block
                number += len(block)  # (every line of it ends with a newline)
            pending = buf[cut:]


def _new_block(data: bytes, number: int) -> Block:
    return Block(data.removeprefix(codecs.BOM_UTF8) if number == 0 else data)


def _block(first: int, block: Block, src: Source, assembler: Assembler, lift: Lift
           ) -> Iterator[Item]:
    """Items of one block of whole lines; ``first`` is the number of its first line."""
    data = block.data
    if not _utf8(data):  # invalid UTF-8 somewhere: this block line by line
        yield from _by_line(first, block, src, assembler)
        return
    cols = split_docker(block) if data[:1] == b"{" else split_cri(block)
    if cols.fast.sum() * 10 < len(block):  # hardly any plain line: the table is not worth it
        yield from _by_line(first, block, src, assembler)
        return
    yield from _walk(first, block, cols, src, assembler, lift)


def _utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _by_line(first: int, block: Block, src: Source, assembler: Assembler) -> Iterator[Item]:
    for i in range(len(block)):
        yield from _fed(assembler, decode_line(first + i, block.chunk(i)), src)
        if src.stopped:
            return


def _fed(assembler: Assembler, line: Line, src: Source) -> Iterator[Item]:
    for item in assembler.feed(line):
        yield item
        if src.stopped:
            return


def _walk(first: int, block: Block, cols: Fields, src: Source, assembler: Assembler,
          lift: Lift) -> Iterator[Item]:
    """Feed the lines the table cannot take to the assembler, in order, and yield the
    table's rows between the rejects."""
    walk = _Walk(first, block, cols, assembler, lift)
    n = len(block)
    fast = cols.fast
    # rows that must be fed: everything but plain F lines and empty lines
    special = np.flatnonzero(~fast & (block.lengths > 0))
    # a partial open on stdout/stderr claims that stream's next line: one of the table's, or
    # one fed anyway
    by_stream = {"stdout": np.flatnonzero(fast & cols.stdout),
                 "stderr": np.flatnonzero(fast & cols.stderr)}
    runs = _runs(cols, assembler.limits)
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
        close = runs.get(cur)
        if close is not None and _STREAMS[bool(cols.stderr[cur])] not in assembler.open:
            walk.join(cur, close)  # what the assembler makes of them, done by the table
            sp += close - cur - 1  # (the run's other partial lines)
            cur = close
            continue
        if fast[cur]:
            walk.claim(cur)
        text = block.chunk(cur).decode("utf-8")
        line = Line(first + cur, text[:-1] if text.endswith("\r") else text)
        for item in assembler.feed(line):
            yield from walk.joined()
            if isinstance(item, Reject):
                yield from walk.rows(cur)
                yield item
                if src.stopped:
                    return
            else:
                yield item
    yield from walk.joined()
    yield from walk.rows(n)


class _Walk:
    """The table rows of a block not yet yielded: plain lines no partial claimed, and runs
    of partial lines joined (see :func:`_runs`)."""

    def __init__(self, first: int, block: Block, cols: Fields, assembler: Assembler,
                 lift: Lift) -> None:
        self.first, self.block, self.cols = first, block, cols
        self.info, self.lift = assembler.info, lift
        self.cand = np.flatnonzero(cols.fast)  # rows of the table unless a partial claims them
        self.keep = np.ones(len(self.cand), bool)
        self.done = 0  # cand[:done] are yielded
        self.runs: list[tuple[int, int]] = []  # (first, closing) lines of joined runs

    def claim(self, row: int) -> None:
        """A plain line goes to the assembler instead."""
        self.keep[np.searchsorted(self.cand, row)] = False

    def join(self, start: int, close: int) -> None:
        """Lines ``start`` to ``close`` are one entry."""
        self.claim(close)
        self.runs.append((start, close))

    def joined(self) -> Iterator[ParsedTable]:
        """The joined runs so far, as the assembler would have yielded them by now."""
        if self.runs:
            starts, closes = np.array(self.runs, np.int64).T
            self.runs = []
            yield ParsedTable(self._table(starts, closes))

    def rows(self, stop: int) -> Iterator[ParsedTable]:
        """The plain rows before line ``stop`` (none: an empty table would reset the
        runner's count of rejects in a row)."""
        at = int(np.searchsorted(self.cand, stop))
        if at > self.done:
            mask = self.keep[self.done:at]
            rows = self.cand[self.done:at][mask]
            self.done = at
            if len(rows):
                yield ParsedTable(self._table(rows, rows))

    def _table(self, rows: np.ndarray, closes: np.ndarray) -> pa.Table:
        block, message = self.block, self.cols.message
        if (rows == closes).all():
            return _table(self.first, self.cols, rows, message(rows),
                          block.strings(block.starts[rows], block.lengths[rows]),
                          self.info, self.lift)
        counts = closes - rows + 1
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        lines = np.repeat(rows - offsets[:-1], counts) + np.arange(offsets[-1])
        pieces = pa.ListArray.from_arrays(offsets, message(lines))
        raws = pa.ListArray.from_arrays(
            offsets, block.strings(block.starts[lines], block.lengths[lines]))
        return _table(self.first, self.cols, rows, pc.binary_join(pieces, ""),
                      pc.binary_join(raws, "\n"), self.info, self.lift)


def _runs(cols: Fields, limits: tuple[int, int]) -> dict[int, int]:
    """The closing line of every run of partial lines of one stream that ends with a plain
    line of that stream, by the run's first line, when the assembler joins it whole (it stays
    within ``limits``; measured in bytes, never fewer than characters)."""
    max_chars, max_lines = limits
    index = np.arange(len(cols.fast))
    out: dict[int, int] = {}
    for stream in (cols.stdout, cols.stderr):
        part = cols.partial & stream
        run = index - np.maximum.accumulate(np.where(part, -1, index))  # partials up to i
        size = np.cumsum(np.where(part, cols.size, 0))
        close = np.flatnonzero(cols.fast & stream)
        close = close[close > 0]
        count = run[close - 1]
        start = close - count
        chars = size[close - 1] - np.where(start > 0, size[np.maximum(start - 1, 0)], 0)
        good = (count > 0) & (count < max_lines) & (chars < max_chars)
        out.update(zip(start[good].tolist(), close[good].tolist(), strict=True))
    return out


def _const(value: str | None, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, pa.string())
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _table(first: int, cols: Fields, rows: np.ndarray, message: pa.Array, raw: pa.Array,
           info: Any, lift: Lift) -> pa.Table:
    """The Arrow rows (schema columns, ``source_line``, ``raw``) of entries that start at the
    lines ``rows``."""
    n = len(rows)
    stream = pa.DictionaryArray.from_arrays(cols.stderr[rows].astype(np.int8),
                                            list(_STREAMS)).cast(pa.string())
    level, msg = lifted(message, lift)
    namespace, pod, container = info.namespace, info.pod, info.container
    target = "/".join(p for p in (namespace, pod, container) if p) or None
    return pa.table({
        "timestamp": pa.array(cols.micros[rows], pa.int64()).cast(_TIMESTAMP),
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
        "raw": raw,
    })
