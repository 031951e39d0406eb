"""The loader contract: what a loader is given, what it yields, and how events get their id.

A loader is an object with a ``name``, a cheap ``sniff(head, name)`` and ``parse(src)`` that
yields one item per input record:

- :class:`Parsed` — an event: schema fields, the record's text, and its native id if any;
- :class:`Reject` — a record that cannot be an event, with its line and the reason;
- :class:`Duplicate` — a record that repeats one already yielded (e.g. a later audit stage).

:class:`loaders.ingest.runner.FileRun` drives a loader over one file. Most loaders
derive from :class:`JsonLoader` or :class:`LineLoader` and only map one record at a time;
an exception while mapping one record rejects that record, never the file.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

import pyarrow as pa

from loaders.parsing.inputs import InputFile, Line, iter_lines, open_binary
from loaders.parsing.jsonreader import JsonReader, JsonRecord
from loaders.schema import Column


@dataclass(slots=True)
class Parsed:
    """One event.

    Attributes:
        line: line (or record index) where the record starts.
        raw: the record's text as read.
        fields: schema columns (core and this loader's extras) to values.
        native_id: the source's own unique id for the record, if it has one; the
            ``event_uid`` is derived from it, else from the raw text.
        warnings: damaged fields that were set to null.
    """

    line: int
    raw: str
    fields: dict[str, Any]
    native_id: str | None = None
    warnings: list[str] | None = None


@dataclass(slots=True)
class Reject:
    """A record that is not loaded, with where it is and why."""

    line: int
    reason: str
    raw: str


@dataclass(slots=True)
class Duplicate:
    """A record that repeats one already yielded from the same file."""

    line: int
    reason: str


@dataclass(slots=True)
class ParsedTable:
    """Many events at once, for a loader with a vectorized fast path.

    Attributes:
        table: one row per event: schema columns (core and the loader's extras) plus
            ``source_line`` and ``raw``, and optionally ``native_id`` (string, may be null).
            ``source``, ``event_uid``, ``source_file`` and ``ingest_id`` are filled in.
    """

    table: pa.Table


Item = Parsed | Reject | Duplicate | ParsedTable


class FormatError(ValueError):
    """Raised by a loader when the file as a whole cannot be read by it (e.g. a CSV whose
    columns cannot be matched). The message says why and what to do; the file fails with
    it, and the run goes on. Any other exception from a loader is reported as a loader bug.
    """


@dataclass(frozen=True)
class LoadOptions:
    """Knobs a run passes to loaders.

    Attributes:
        year: year for timestamps that have none (syslog RFC 3164); default from file mtime.
        mapping: user-given column mapping (``column=field``) for tabular exports.
        batch_size: events per Arrow batch.
        max_initial_rejects: a file whose first N records are all rejected is not of this
            format: it stops with an error naming ``--format``.
        max_consecutive_rejects: a run this long of bad records anywhere stops the file.
        helpers: extra processes a loader may use for one large file (auditd maps events
            in a helper, see :mod:`loaders.parsing.offload`). 0, the default for library calls:
            none. None: one on a machine with two cores or more, as ``auditlens ingest``
            does (a script asking for helpers must guard its entry point with
            ``if __name__ == "__main__":``, as any code that starts processes).
    """

    year: int | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    batch_size: int = 20_000
    max_initial_rejects: int = 20
    max_consecutive_rejects: int = 1000
    helpers: int | None = 0


class Source:
    """What a loader's ``parse`` gets: one input file, its head, and the run's options."""

    def __init__(
        self, file: InputFile, head: bytes, options: LoadOptions,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.file = file
        self.head = head
        self.options = options
        self.warnings: list[str] = []
        self.stopped = False
        # records of its format the loader has read, counted when read rather than when
        # yielded: a loader that holds records back (auditd's assembly window) counts them
        # here, so that the runner's reject limits know good records came between rejects
        self.accepted = 0
        self.read_error: str | None = None
        self._progress = progress

    def stop(self) -> None:
        """Ask the readers to end as if at end of file, so a loader still flushes the records
        it holds (stage merging, multi-line assembly) before its iteration ends. Loaders
        that read :meth:`binary` themselves check :attr:`stopped`."""
        self.stopped = True

    @contextmanager
    def binary(self) -> Iterator[BinaryIO]:
        """The file's (decompressed) bytes, opened read-only."""
        fh = open_binary(self.file.path, self._progress, self._damaged)
        try:
            yield fh
        finally:
            fh.close()

    def _damaged(self, message: str) -> None:
        if self.read_error is None:
            self.read_error = message
            self.warnings.append(message)

    def lines(self) -> Iterator[Line]:
        """The file's lines (see :func:`loaders.parsing.inputs.iter_lines`)."""
        with self.binary() as fh:
            for line in iter_lines(fh, self.head):
                if self.stopped:
                    return
                yield line

    def json_records(self) -> Iterator[JsonRecord]:
        """The file's JSON values in any export shape (see :mod:`loaders.parsing.jsonreader`)."""
        with self.binary() as fh:
            reader = JsonReader(fh, self.head)
            for record in reader:
                if self.stopped:
                    return
                yield record
            self.warnings.extend(reader.warnings)


class Loader:
    """Base of every loader. Subclasses set the class attributes and implement the methods.

    Attributes:
        name: the ``source`` value and ``--format`` name.
        description: one line for ``auditlens sources``.
        reads: the input forms it accepts.
        prefix: prefix of its extra columns.
        extra_columns: its source-specific columns.
        record: what one counted input record is (``line``, ``JSON value``, ``event``…).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    reads: ClassVar[str] = ""
    prefix: ClassVar[str] = ""
    extra_columns: ClassVar[tuple[Column, ...]] = ()
    record: ClassVar[str] = "record"

    def sniff(self, head: bytes, name: str) -> bool:
        """Whether the file (first bytes, decompressed; and its name) is in this format."""
        raise NotImplementedError

    def parse(self, src: Source) -> Iterator[Item]:
        """Yield one item per input record, in input order."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<loader {self.name}>"


class JsonLoader(Loader):
    """A loader of JSON exports: maps each JSON value with :meth:`from_json`."""

    record = "JSON value"

    def parse(self, src: Source) -> Iterator[Item]:
        for rec in src.json_records():
            if rec.error is not None:
                yield Reject(rec.line, rec.error, rec.text)
                continue
            try:
                yield from self.from_json(rec.value, rec)
            except Exception as exc:  # one bad record must not stop the file
                yield Reject(rec.line, f"cannot map record: {type(exc).__name__}: {exc}",
                             rec.text)

    def from_json(self, value: Any, rec: JsonRecord) -> Iterator[Item]:
        """Map one parsed JSON value (which may hold several events) to items."""
        raise NotImplementedError


class LineLoader(Loader):
    """A loader of line-oriented text: maps each non-empty line with :meth:`from_line`."""

    record = "line"

    def parse(self, src: Source) -> Iterator[Item]:
        state = self.file_state(src)
        for line in src.lines():
            if line.text is None:
                yield Reject(line.number, line.warning or "unreadable line", "")
                continue
            if not line.text.strip():
                continue
            try:
                item = self.from_line(line.text, line.number, state)
            except Exception as exc:  # one bad line must not stop the file
                item = Reject(line.number, f"cannot map line: {type(exc).__name__}: {exc}",
                              line.text)
            if item is None:
                continue
            if line.warning and isinstance(item, Parsed):
                item.warnings = [*(item.warnings or []), line.warning]
                if line.raw is not None:
                    item.raw = line.raw
            yield item

    def file_state(self, src: Source) -> Any:
        """What :meth:`from_line` needs to remember across one file's lines (e.g. the
        year of syslog timestamps); by default the :class:`Source` itself."""
        return src

    def from_line(self, text: str, number: int, state: Any) -> Item | None:
        """Map one line; None for a line that is not a record (e.g. a header)."""
        raise NotImplementedError


def make_uid(source: str, native_id: str | None, raw: str) -> str:
    """Deterministic event id: from the native id when there is one, else from the raw text.

    Example:
        >>> make_uid("k8s_audit", "a1b2", "x") == make_uid("k8s_audit", "a1b2", "y")
        True
    """
    key = f"{source}\x1fid\x1f{native_id}" if native_id else f"{source}\x1fraw\x1f{raw}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (a loader's batch; never around a
    ``yield``).

    A batch's records, dicts and tuples are short-lived and hold no reference cycles, but
    the collector, run every few hundred allocations, walks them again and again and
    promotes the ones still alive (auditd's open events) to the oldest generation, which
    triggers full collections: 15% of the auditd loader's time, 5% of EVTX parsing. Paused,
    it sees only what outlives the batch.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
