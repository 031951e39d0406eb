"""auditd on two cores: events are assembled here and mapped in a helper process.

Assembling records into events is inherently sequential (records of one event arrive out
of order, late fragments are told apart by what came before), but it is the cheap part:
about a third of the loader's time. Splitting the record bodies into fields and mapping
each event to a row is the costly part, and it depends on nothing but the event. So for a
large file the reading process assembles events from records whose bodies are left unsplit
(:class:`~loaders.linux_auditd.fields.LightParser`), packs them into a :class:`Chunk`, and
:func:`map_chunk` — the same code as the one-process path: ``RecordParser`` and
``map_event`` — turns each chunk into the items the loader would have yielded, in the same
order, in a helper process (:class:`loaders.parsing.offload.Ahead`). The rows are those of the
one-process path, value for value and in the same order
(``tests/test_linux_auditd_offload.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from loaders.base import Item, gc_paused
from loaders.linux_auditd.events import Event, Key
from loaders.linux_auditd.fields import RecordParser
from loaders.linux_auditd.map import Rows


@dataclass(slots=True)
class Chunk:
    """Assembled events, flattened into lists that pickle fast.

    An event's records are the first lines of its raw text (an EOE record, which is not one
    of them, closes its event, so it can only be the last line); a record's body is its
    line from ``body_at`` on, except where ``bodies`` says otherwise (a line read alone with
    a warning, whose raw text is not the text its fields were read from).

    Attributes:
        keys, first_lines, fragments, borrowed: per event, as in
            :class:`~loaders.linux_auditd.events.Event`.
        raws: per event, its lines joined (the ``raw`` column).
        counts: per event, how many records it has.
        types, body_at: per record, in event order.
        bodies: record index → its body, where not at ``body_at`` in its line.
        warnings: record index → its line's warning (rare: lines read alone).
    """

    keys: list[Key] = field(default_factory=list)
    first_lines: list[int] = field(default_factory=list)
    fragments: list[int] = field(default_factory=list)
    borrowed: list[int] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    body_at: list[int] = field(default_factory=list)
    bodies: dict[int, str] = field(default_factory=dict)
    warnings: dict[int, str] = field(default_factory=dict)
    chars: int = 0  # of the raw texts: a chunk is bounded in size, not only in events

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, ev: Event, warned: bool) -> None:
        """Append one event assembled from :class:`LightParser` records.

        Args:
            ev: the event.
            warned: whether any record read so far has a warning (rare: only lines read
                alone can); if not, the records are not looked at one by one.
        """
        self.keys.append(ev.key)
        self.first_lines.append(ev.first_line)
        self.fragments.append(ev.fragment)
        self.borrowed.append(ev.borrowed)
        raw = "\n".join(ev.lines)
        self.raws.append(raw)
        self.chars += len(raw)
        recs = ev.records
        self.counts.append(len(recs))
        if warned:
            for i, rec in enumerate(recs, len(self.types)):
                if rec.warning is not None:
                    self.warnings[i] = rec.warning
                    if rec.body is not None:
                        self.bodies[i] = rec.body
        self.types += [rec.type for rec in recs]
        self.body_at += [rec.body_at for rec in recs]

    def fill(self, events: Sequence[Event], start: int, warned: bool, size: int,
             chars: int) -> int:
        """Add ``events`` from index ``start`` on until the chunk is :meth:`full`; returns
        the index of the first event not added."""
        for i in range(start, len(events)):
            self.add(events[i], warned)
            if len(self.keys) >= size or self.chars >= chars:
                return i + 1
        return len(events)

    def full(self, size: int, chars: int) -> bool:
        """Whether the chunk holds ``size`` events or ``chars`` of raw text."""
        return len(self.keys) >= size or self.chars >= chars


# one parser per process: repeated auxiliary bodies are split once across chunks
_PARSER = RecordParser()


def map_chunk(chunk: Chunk) -> list[Item]:
    """The items of a chunk's events, as one process gives them (:class:`Rows`)."""
    with gc_paused():
        return _map(chunk)


def _map(chunk: Chunk) -> list[Item]:
    rows = Rows(len(chunk) or 1)
    return rows.add(_events(chunk)) + rows.flush()


def _events(chunk: Chunk) -> Iterator[Event]:
    """The chunk's events, their records' fields split (``RecordParser``, as in one process)."""
    parts = _PARSER.parts
    types, body_at, warnings = chunk.types, chunk.body_at, chunk.warnings
    start = 0
    for e, key in enumerate(chunk.keys):
        node, sec, frac, serial = key
        end = start + chunk.counts[e]
        lines = chunk.raws[e].split("\n")
        recs = [parts(node, types[r], sec, frac, serial, lines[r - start][body_at[r]:], 0, "")
                for r in range(start, end)]
        if warnings:
            for r in range(start, end):
                if r in warnings:
                    if r in chunk.bodies:
                        recs[r - start] = parts(node, types[r], sec, frac, serial,
                                                chunk.bodies[r], 0, "")
                    recs[r - start].warning = warnings[r]
        start = end
        yield Event(key, recs, [chunk.raws[e]], chunk.first_lines[e], 0, chunk.fragments[e],
                    chunk.borrowed[e])
