"""The loader contract: what a loader yields, and the runner that turns it into Arrow batches.

A loader is an object with a ``name``, a cheap ``sniff(head, name)`` and ``parse(src)`` that
yields one item per input record:

- :class:`Parsed` — an event: schema fields, the record's text, and its native id if any;
- :class:`Reject` — a record that cannot be an event, with its line and the reason;
- :class:`Duplicate` — a record that repeats one already yielded (e.g. a later audit stage).

:class:`FileRun` drives a loader over one file: it fills ``source``, ``event_uid``,
``source_file``, ``source_line``, ``ingest_id`` and ``raw``, validates bounded batches against
the schema, collects rejects with an excerpt, and enforces the bad-record limits. Most loaders
derive from :class:`JsonLoader` or :class:`LineLoader` and only map one record at a time;
an exception while mapping one record rejects that record, never the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaders.inputs import InputFile, Line, iter_lines, open_binary
from loaders.jsonreader import JsonReader, JsonRecord
from loaders.schema import Column, SchemaError, event_schema, validate

EXCERPT_CHARS = 200


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
    """

    year: int | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    batch_size: int = 20_000
    max_initial_rejects: int = 20
    max_consecutive_rejects: int = 1000


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
        """The file's lines (see :func:`loaders.inputs.iter_lines`)."""
        with self.binary() as fh:
            for line in iter_lines(fh, self.head):
                if self.stopped:
                    return
                yield line

    def json_records(self) -> Iterator[JsonRecord]:
        """The file's JSON values in any export shape (see :mod:`loaders.jsonreader`)."""
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


def table_uids(source: str, raw: pa.ChunkedArray, native_id: pa.ChunkedArray | None
               ) -> pa.Array:
    """:func:`make_uid` of every row of a table, with the keys built by Arrow: only the
    hashing is per row (3x less Python work than calling make_uid per row)."""
    n = len(raw)
    if raw.null_count or raw.type != pa.string() or (
            native_id is not None and native_id.type != pa.string()):
        ids = native_id.to_pylist() if native_id is not None else [None] * n
        return pa.array([make_uid(source, i, r) for i, r in
                         zip(ids, raw.to_pylist(), strict=True)], pa.string())
    empty = pa.scalar(b"", pa.binary())
    keys = pc.binary_join_element_wise(
        pa.scalar(f"{source}\x1fraw\x1f".encode(), pa.binary()), raw.cast(pa.binary()), empty)
    if native_id is not None:
        by_id = pc.binary_join_element_wise(
            pa.scalar(f"{source}\x1fid\x1f".encode(), pa.binary()),
            native_id.cast(pa.binary()), empty)
        has_id = pc.fill_null(pc.greater(pc.binary_length(native_id), 0), False)
        keys = pc.if_else(has_id, by_id, keys)
    sha = hashlib.sha256
    digest = b"".join([sha(k).digest()[:16] for k in keys.to_pylist()])
    offsets = np.arange(0, 32 * n + 1, 32, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(digest.hex().encode())])


def storable(text: str) -> str:
    """Text Arrow can store: lone surrogates (from ``\\ud800``-style escapes) become ``?``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of a record, for reject listings."""
    return text if len(text) <= limit else text[:limit] + "…"


# what converting a value to its column's Arrow type can raise
_UNSTORABLE = (pa.ArrowException, SchemaError, UnicodeError, OverflowError, TypeError, ValueError)

REJECT_SCHEMA = pa.schema([
    ("ingest_id", pa.string()),
    ("source", pa.string()),
    ("source_file", pa.string()),
    ("source_line", pa.int64()),
    ("reason", pa.string()),
    ("excerpt", pa.string()),
])


@dataclass
class FileCounts:
    """Per-file record counts: ``read == loaded + rejected + duplicate`` always holds."""

    read: int = 0
    loaded: int = 0
    rejected: int = 0
    duplicate: int = 0


class _Columns:
    """Events accumulated column by column (converting columns to Arrow is about twice as
    fast as converting row dicts); a column missing from some rows is padded with None."""

    def __init__(self) -> None:
        self.n = 0
        self.cols: dict[str, list[Any]] = {}

    def add(self, row: dict[str, Any]) -> None:
        n = self.n
        for key, value in row.items():
            col = self.cols.get(key)
            if col is None:
                col = self.cols[key] = [None] * n
            elif len(col) < n:
                col.extend([None] * (n - len(col)))
            col.append(value)
        self.n = n + 1

    def column(self, name: str) -> list[Any] | None:
        col = self.cols.get(name)
        if col is not None and len(col) < self.n:
            col.extend([None] * (self.n - len(col)))
        return col


class FileRun:
    """Run one loader over one file, yielding schema-valid event tables and reject tables.

    After iteration: ``counts`` (``loaded`` here counts events before store-level
    de-duplication), ``status`` (``ok``, ``stopped`` or ``failed``), ``error``,
    ``first_ts``/``last_ts`` and ``warnings``.
    """

    def __init__(
        self, loader: Loader, file: InputFile, head: bytes, options: LoadOptions,
        ingest_id: str, progress: Callable[[int], None] | None = None,
    ) -> None:
        self.loader = loader
        self.file = file
        self.options = options
        self.ingest_id = ingest_id
        self.src = Source(file, head, options, progress)
        self.counts = FileCounts()
        self.status = "ok"
        self.error: str | None = None
        self.first_ts: datetime | None = None
        self.last_ts: datetime | None = None
        self._schema = event_schema()

    @property
    def warnings(self) -> list[str]:
        return self.src.warnings

    def __iter__(self) -> Iterator[tuple[str, pa.Table]]:
        rows = _Columns()
        rejects: list[dict[str, Any]] = []
        consecutive = 0
        self._parsed = 0
        name = self.loader.name
        items = self.loader.parse(self.src)
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            except FormatError as exc:
                self.status, self.error = "failed", str(exc)
                break
            except Exception as exc:  # a loader bug: keep what we have, say where it stopped
                self.status = "failed"
                self.error = (f"{name} loader error after {self.counts.read} records: "
                              f"{type(exc).__name__}: {exc}")
                break
            if isinstance(item, ParsedTable):
                if rows.n:  # keep input order
                    yield from self._flush(rows, rejects)
                    rows = _Columns()
                consecutive = 0
                table = self._from_table(item.table)
                self.counts.read += table.num_rows
                self._parsed += table.num_rows
                yield "events", table
                continue
            self.counts.read += 1
            if isinstance(item, Parsed):
                consecutive = 0
                self._parsed += 1
                row = item.fields
                row["source"] = name
                row["event_uid"] = make_uid(name, item.native_id, item.raw)
                row["source_file"] = self.file.display
                row["source_line"] = item.line
                row["ingest_id"] = self.ingest_id
                row["raw"] = item.raw
                if item.warnings:
                    row["parse_warning"] = "; ".join(item.warnings)
                rows.add(row)
                if rows.n >= self.options.batch_size:
                    yield from self._flush(rows, rejects)
                    rows = _Columns()
            elif isinstance(item, Reject):
                consecutive += 1
                self.counts.rejected += 1
                rejects.append(self._reject_row(item))
                if not self.src.stopped and self._too_many_rejects(consecutive, item):
                    self.src.stop()
                if len(rejects) >= self.options.batch_size:
                    yield "rejects", pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA)
                    rejects = []
            else:
                self.counts.duplicate += 1
        if self.src.read_error and self.status == "ok":
            self.status, self.error = ("stopped" if self._parsed else "failed",
                                       self.src.read_error)
        if rows.n:
            yield from self._flush(rows, rejects)
        if rejects:
            yield "rejects", pa.Table.from_pylist(rejects, schema=REJECT_SCHEMA)

    def _from_table(self, table: pa.Table) -> pa.Table:
        name = self.loader.name
        n = table.num_rows
        nid = table.column("native_id") if "native_id" in table.column_names else None
        uids = table_uids(name, table.column("raw"), nid)
        if nid is not None:
            table = table.drop_columns(["native_id"])

        def same(value: str) -> pa.Array:
            return pa.repeat(pa.scalar(value, pa.string()), n)

        table = (table.append_column("source", same(name))
                 .append_column("event_uid", uids)
                 .append_column("source_file", same(self.file.display))
                 .append_column("ingest_id", same(self.ingest_id)))
        return self._finish(validate(table, self._schema))

    def _too_many_rejects(self, consecutive: int, item: Reject) -> bool:
        opts = self.options
        if self._parsed == 0 and consecutive >= opts.max_initial_rejects:
            self.status = "failed"
            self.error = (
                f"the first {consecutive} records were all rejected, so this is probably not "
                f"{self.loader.name} input (last reason at line {item.line}: {item.reason}); "
                "run `auditlens sources` and pass the right one with --format NAME"
            )
            return True
        if consecutive >= opts.max_consecutive_rejects:
            self.status = "stopped"
            self.error = (f"stopped at line {item.line}: {consecutive} bad records in a row; "
                          "the rest of the file was not read")
            return True
        return False

    def _reject_row(self, item: Reject) -> dict[str, Any]:
        return {"ingest_id": self.ingest_id, "source": self.loader.name,
                "source_file": self.file.display, "source_line": item.line,
                "reason": storable(item.reason), "excerpt": storable(excerpt(item.raw))}

    def _flush(self, rows: _Columns, rejects: list[dict[str, Any]]
               ) -> Iterator[tuple[str, pa.Table]]:
        """The accumulated events as a table; a value Arrow cannot store (a lone surrogate
        from a ``\\ud800`` escape, an integer beyond 64 bits…) rejects its record only."""
        unknown = set(rows.cols) - set(self._schema.names)
        if unknown:
            raise ValueError(f"{self.loader.name} produced unregistered columns {sorted(unknown)}")
        cols = {name: rows.column(name) or [] for name in rows.cols}
        try:
            yield "events", self._finish(self._table(cols))
            return
        except _UNSTORABLE:
            pass
        good: list[int] = []
        for i in range(rows.n):
            try:
                self._table({name: col[i:i + 1] for name, col in cols.items()})
                good.append(i)
            except _UNSTORABLE as exc:
                self.counts.rejected += 1
                rejects.append(self._reject_row(Reject(
                    cols["source_line"][i], f"cannot store record: {type(exc).__name__}: {exc}",
                    cols["raw"][i])))
        if good:
            yield "events", self._finish(self._table(
                {name: [col[i] for i in good] for name, col in cols.items()}))

    def _table(self, cols: dict[str, list[Any]]) -> pa.Table:
        arrays, fields = [], []
        for f in self._schema:
            col = cols.get(f.name)
            if col is not None:
                arrays.append(pa.array(col, type=f.type))
                fields.append(f)
        return validate(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), self._schema)

    def _finish(self, table: pa.Table) -> pa.Table:
        self.counts.loaded += table.num_rows
        ts = pc.min_max(table.column("timestamp"))
        lo, hi = ts["min"].as_py(), ts["max"].as_py()
        if lo is not None:
            self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
            self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        return table
