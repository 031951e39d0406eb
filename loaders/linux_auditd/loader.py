"""Linux audit daemon log (``audit.log``): one event per (node, time, serial).

The counted record is the EVENT, not the line: every record line sharing
``msg=audit(<time>:<serial>)`` (and ``node=``) is merged into one event, so ``read`` is the
number of distinct (node, time, serial) plus one reject per line that is not an audit
record. Blank lines and ``#`` comment lines are not records. Events are assembled in a
bounded window (see :mod:`loaders.linux_auditd.events`); an event whose records are
visibly incomplete (lost SYSCALL, missing EXECVE arguments or PATH items) is still loaded,
with ``audit_incomplete`` set and a ``parse_warning`` naming what is missing.

A record line without a ``msg=audit(<time>:<serial>)`` stamp (``type=UNKNOWN[1329] msg=?``)
cannot be grouped with any event, but it is real input: it is loaded as an event of its
own, with the time of the record line before it, a null ``audit_serial`` and a
``parse_warning`` saying so (native id: that record's stamp + ``~nostampN``). Only such a
line with no record before it is rejected, as is any line that is not an audit record.

The file is read in blocks (:mod:`loaders.linux_auditd.read`), bodies are split by the
fast tokenizer when plain (:mod:`loaders.linux_auditd.split`) and repeated auxiliary bodies
once (:class:`~loaders.linux_auditd.fields.RecordParser`); each fast path gives the values
of the line-by-line one (``tests/test_linux_auditd_fast.py``).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from loaders.base import Item, Loader, Parsed, Reject, Source, Tuning, gc_paused
from loaders.linux_auditd.categories import CATEGORIES as CATEGORIES  # re-exported
from loaders.linux_auditd.events import Assembler, Event, Key, assemble
from loaders.linux_auditd.fields import LightParser, RecordParser
from loaders.linux_auditd.map import Rows, map_event
from loaders.linux_auditd.offload import Chunk, map_chunk
from loaders.linux_auditd.read import Block, read_pieces
from loaders.linux_auditd.rows import FIELD_COLUMNS
from loaders.parsing.inputs import Line
from loaders.parsing.offload import Ahead, helpers_for
from loaders.schema.extras import LINUX_AUDITD

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BORROWED_KEYS = 10_000  # stamps remembered for numbering stampless records
_SNIFF = re.compile(rb"(?m)^(?:node=\S+ )?type=[A-Z_0-9\[\]]+ msg=audit\(\d+\.\d+:\d+\)")


class LinuxAuditdLoader(Loader):
    name = "linux_auditd"
    description = "Linux audit daemon log (audit.log), records merged into events"
    reads = ("raw and ENRICHED audit.log, node= prefix, rotated .gz; one event per "
             "(node, time, serial)")
    prefix = LINUX_AUDITD.prefix
    record = "event (all records of one node+time+serial); unreadable lines count alone"
    extra_columns = LINUX_AUDITD.columns

    def sniff(self, head: bytes, name: str) -> bool:
        return _SNIFF.search(head[:16384]) is not None

    def parse(self, src: Source) -> Iterator[Item]:
        helpers = helpers_for(src.options.helpers)
        options = src.options
        run = (_OffloadRun(options.batch_size, helpers, options.tuning)
               if helpers and _large(src) else _Run(options.batch_size))
        # The cyclic garbage collector is off for the whole file, not only inside batches
        # (gc_paused): its collections, triggered by the allocations of every block and
        # walking the open events and header tuples still alive, were 8% of an auditd
        # ingest. Nothing here makes reference cycles, nor does the runner or the store:
        # a whole 100 MB ingest with the collector off left 9 unreachable objects, and
        # tests/test_linux_auditd.py asserts that parsing every fixture leaves none.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for piece in read_pieces(src):
                if isinstance(piece, Block):
                    yield from run.block(piece, src)
                else:
                    yield from run.line(piece, src)
            yield from run.finish()
        finally:
            run.close()
            if collecting:
                gc.enable()

    def event(self, ev: Event) -> Parsed:
        """Map one assembled event to schema fields.

        Args:
            ev: the event's records.

        Returns:
            The parsed event (native id node:time:serial).
        """
        values = self.row(ev)
        n = len(FIELD_COLUMNS)
        line, raw, native_id, warning = values[n:]
        fields = dict(zip(FIELD_COLUMNS, values[:n], strict=True))
        fields["timestamp"] = _EPOCH + timedelta(microseconds=fields["timestamp"])
        return Parsed(line, raw, fields, native_id=native_id,
                      warnings=warning.split("; ") if warning else None)

    def row(self, ev: Event) -> tuple[Any, ...]:
        """Map one assembled event to one row (see :func:`loaders.linux_auditd.map.map_event`).

        Args:
            ev: the event's records.

        Returns:
            The schema values, then source line, raw text, native id and parse warning.
        """
        return map_event(ev)


class _Run:
    """One file's parsing state: records are assembled into events, and mapped events are
    batched into Arrow tables (see linux_auditd_table); the batch is flushed before any
    reject so that items stay in input order."""

    def __init__(self, batch_size: int) -> None:
        self.assembler = Assembler()
        self.rows = Rows(batch_size)
        self.record: RecordParser | LightParser = RecordParser()
        # stamp (node, seconds, fraction, serial) and line of the last record read, and
        # how many stampless records took their time from each stamp
        self.last: tuple[Key, int] | None = None
        self.warned = False  # some record has a warning (line read alone, stampless)
        self.borrowed: dict[Key, int] = {}

    def block(self, block: Block, src: Source) -> Iterator[Item]:
        """Items of a block of record lines; stops where the runner stopped the file."""
        src.accepted += len(block.lines)  # every line of a block is a record
        start = 0
        while start < len(block.lines):
            with gc_paused():
                start, items = self._records(block, start)
            yield from items
            if src.stopped:
                return
        node, _, sec, frac, serial, _ = block.headers[-1]
        self.last = (node or None, sec, frac, serial), len(block.lines) + block.first - 1

    def _records(self, block: Block, start: int) -> tuple[int, list[Item]]:
        """Assemble and map a block's records from ``start`` until some items are to be
        yielded; (where to go on, the items)."""
        return assemble(self.assembler, self.record.parts, self.emit, block.headers,
                        block.lines, block.first, start)

    def line(self, line: Line, src: Source) -> list[Item]:
        """Items of one line read alone."""
        text = line.text
        if text is None:
            return [*self.flush(), Reject(line.number, line.warning or "unreadable line", "")]
        rec = self.record(text, line.number)
        if rec is None:
            if not text.strip() or text.lstrip().startswith("#"):
                return []
            return self.stampless(line, text, src)
        src.accepted += 1
        if line.warning:
            rec.warning = f"line {line.number}: {line.warning}"
            rec.text = line.raw or text
            self.warned = True
        self.last = (rec.node, rec.sec, rec.frac, rec.serial), line.number
        return self.emit(self.assembler.add(rec))

    def stampless(self, line: Line, text: str, src: Source) -> list[Item]:
        """A line that is not a record with a stamp: a record line without one (``type=…
        msg=?``) is an event of its own with the time of the record before it, flagged in
        its parse_warning (it cannot be grouped with any event); else a reject."""
        rec = None
        if self.last is not None:
            key, before = self.last
            rec = self.record.stampless(text, line.number, *key[1:])
        if rec is None:
            return [*self.flush(), Reject(line.number, _why_not(text), text)]
        src.accepted += 1
        warnings = [f"line {line.number}: no msg=audit(<time>:<serial>) stamp, time taken "
                    f"from the record before it (line {before})"]
        if line.warning:
            warnings.append(f"line {line.number}: {line.warning}")
            rec.text = line.raw or text
        rec.warning = "; ".join(warnings)
        self.warned = True
        if len(self.borrowed) > _BORROWED_KEYS:
            self.borrowed.clear()
        count = self.borrowed[key] = self.borrowed.get(key, 0) + 1
        ev = Event((rec.node, *key[1:]), [rec], [rec.text], line.number, borrowed=count)
        return self.emit([ev])

    def emit(self, events: Sequence[Event]) -> list[Item]:
        """Map events; the items to yield (full tables, rejects)."""
        return self.rows.add(events)

    def finish(self) -> list[Item]:
        """The events still open at the end, and the last batch."""
        return self.emit(self.assembler.flush()) + self.flush()

    def flush(self) -> list[Item]:
        """The pending rows as one table item, if any."""
        return self.rows.flush()

    def close(self) -> None:
        """The file is done with (or abandoned)."""


class _OffloadRun(_Run):
    """A large file's parsing state when helper processes map the events
    (:mod:`loaders.linux_auditd.offload`): records keep their bodies unsplit, assembled
    events are packed into chunks (of ``tuning.auditd_chunk_events`` events or
    ``tuning.auditd_chunk_chars`` characters of text), ``tuning.auditd_ahead_chunks`` of them
    in flight, and the items come back in order."""

    def __init__(self, batch_size: int, helpers: int, tuning: Tuning) -> None:
        super().__init__(batch_size)
        self.record = LightParser()
        self.chunk = Chunk()
        self.chunk_size = min(batch_size, tuning.auditd_chunk_events)
        self.chunk_chars = tuning.auditd_chunk_chars
        self.ahead: Ahead[Chunk, list[Item]] = Ahead(map_chunk, helpers,
                                                     tuning.auditd_ahead_chunks)

    def emit(self, events: Sequence[Event]) -> list[Item]:
        items: list[Item] = []
        start = 0
        while start < len(events):  # a chunk is sent as soon as it is full, even in a burst
            start = self.chunk.fill(events, start, self.warned, self.chunk_size,
                                    self.chunk_chars)
            if self.chunk.full(self.chunk_size, self.chunk_chars):
                items += self._send()
        return items

    def flush(self) -> list[Item]:
        """Every event handed over so far, mapped (before a reject, and at the end)."""
        out = self._send() if len(self.chunk) else []
        return out + [item for items in self.ahead.drain() for item in items]

    def close(self) -> None:
        self.ahead.cancel()

    def _send(self) -> list[Item]:
        chunk, self.chunk = self.chunk, Chunk()
        return [item for items in self.ahead.put(chunk) for item in items]


def _large(src: Source) -> bool:
    """Worth helper processes: their start (about 0.6 s of CPU, once per process, for the
    fork server's imports) is repaid from about
    :attr:`~loaders.base.Tuning.auditd_offload_bytes` of log (a gzip file holds about ten
    times its size)."""
    with open(src.file.path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return src.file.size * (8 if gz else 1) >= src.options.tuning.auditd_offload_bytes


_EMPTY_TYPE = re.compile(r"(?:node=\S+ )?type=(?:\s|$)")


def _why_not(text: str) -> str:
    if _EMPTY_TYPE.match(text):
        return "record with an empty type="
    if "type=" in text and "msg=" in text:
        return ("audit record without a msg=audit(<time>:<serial>) stamp, and no record "
                "before it to take a time from")
    return "not an audit record (expected `type=TYPE msg=audit(<time>:<serial>): …`)"


LOADER = LinuxAuditdLoader()
