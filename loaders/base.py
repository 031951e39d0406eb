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

import fnmatch
import gc
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, BinaryIO, ClassVar

import pyarrow as pa

from loaders.parsing.damage import NulRun, scrubbable, scrubbed
from loaders.parsing.inputs import (
    MAX_LINE_BYTES,
    InputFile,
    Line,
    ReadDigest,
    iter_lines,
    open_binary,
    text_head,
)
from loaders.parsing.jsonreader import JsonReader, JsonRecord
from loaders.parsing.timeutil import Clock, zone_from_text
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
class Tuning:
    """Sizes and thresholds of the reading machinery: how much is read, held or batched at
    once, and from what size a faster path pays. None of them changes what is loaded — each
    path gives the same events, rejects and counts whatever the value (the tests assert it)
    — only time and memory. The defaults are the measured ones; a test shrinks a value to
    put block, chunk or window boundaries inside a small fixture, or to force one path, by
    passing ``LoadOptions(tuning=Tuning(...))`` rather than patching module globals (which
    compiled modules would not see). The values reach the code as arguments: the loaders read
    ``src.options.tuning``, the ingest pipeline hands the store its knob.

    Attributes:
        jsonl_block_bytes: bytes of JSON Lines read per block by the vectorized k8s audit
            and Selectel audit paths (:mod:`loaders.parsing.jsonl_blocks`; default 8 MiB).
            Bounds the memory of a block and of Arrow's table of it. Tests shrink it to a
            few hundred bytes so that a fixture spans many blocks, stage merging crosses
            them, and a refused block falls in the middle of a file.
        k8s_stage_window: records an incomplete k8s audit stage (``RequestReceived``,
            ``ResponseStarted``) waits for a more complete stage of the same ``auditID``
            before it is loaded as it is (:class:`loaders.k8s_audit.details.StageMerger`;
            default 5,000). Bounds the events held back. Tests set 1–3 to make stages
            expire between the rows of one block and across blocks.
        k8s_remembered_ids: ``auditID`` values remembered after an event is loaded, to
            count a later stage or a repeat as a duplicate (default 100,000). Bounds that
            memory; tests shrink it with the window to make ids be forgotten.
        container_block_bytes: bytes of a container log read per block by the vectorized
            path (:mod:`loaders.k8s_container.fast`; default 4 MiB, about 16k CRI lines:
            larger blocks raise peak memory, not speed). Tests use 64 bytes to 1 KiB so that
            lines, partial runs and over-long lines straddle blocks.
        container_max_joined_chars: characters of CRI/docker partial lines joined into one
            log entry before it is cut with a warning (default 1 MiB). Bounds one entry's
            memory; tests use a few characters to cut entries on both paths.
        container_max_joined_lines: partial lines joined into one entry before it is cut
            (default 10,000); tests use 1–3.
        auditd_block_bytes: bytes of an audit.log read per block of whole lines
            (:mod:`loaders.linux_auditd.read`; default 1 MiB). Tests use 1–64 bytes to
            check that blocks split lines exactly as the line reader does.
        auditd_offload_bytes: size of an audit.log (a gzip file counts eight times its
            size) from which its events are mapped in helper processes, when
            :attr:`LoadOptions.helpers` allows any (default 16 MiB: below it, starting the
            helpers costs more than it saves). Tests set 0 to send every fixture through
            the helpers.
        auditd_chunk_events: assembled audit events handed to a helper at once (default
            8,192; never more than ``batch_size``). Tests use 3–100 so that rejects, stops
            and batch ends fall between chunks.
        auditd_chunk_chars: ... or fewer events, once their text is this long (default
            8 M characters: huge EXECVE records). Bounds a chunk's memory; a test lowers it
            to check chunks bounded by text.
        auditd_ahead_chunks: chunks in flight to the helpers at once (default 4; memory: a
            few MB each). Tests use 2, to have the reading process wait on results.
        evtx_fast_min_rows: fewest EVTX records in a batch for the vectorized mapping
            (:mod:`loaders.windows_events.fast`; default 128: below it the fixed cost of
            about 300 Arrow calls exceeds the per-record path). Tests set 1 to map every
            batch vectorized, and a huge value to map every record alone, and compare.
        max_line_bytes: the longest line any reader takes (default
            :data:`~loaders.parsing.inputs.MAX_LINE_BYTES`, 64 MiB): a longer line is skipped
            in bounded memory and rejected with its line number, "line too long (N bytes >
            MAX)", by every reader alike — :meth:`Source.lines`, the JSON reader, the block
            readers of the JSON Lines, container log and auditd fast paths, the CSV reader.
            Tests use 1 KiB to put over-long lines in small fixtures.
        max_value_chars: the largest JSON value the JSON reader holds (default 128 M
            characters, :data:`~loaders.parsing.jsonreader.MAX_DOCUMENT_CHARS`): a larger one
            is rejected, unless it is a list wrapper (``{"kind": "EventList", …, "items":
            [``), whose records are then read one by one. Tests use a few KiB.
        dedupe_in_memory_rows: a staged day of at most this many events is de-duplicated
            against its stored partition in memory with Arrow (when the partition holds at
            most 2M ids), a larger one by DuckDB (:class:`loaders.store.store.Store`;
            default 200,000). Tests set 0 to run the DuckDB path on small files.
    """

    jsonl_block_bytes: int = 8 << 20
    k8s_stage_window: int = 5000
    k8s_remembered_ids: int = 100_000
    container_block_bytes: int = 4 << 20
    container_max_joined_chars: int = 1 << 20
    container_max_joined_lines: int = 10_000
    auditd_block_bytes: int = 1 << 20
    auditd_offload_bytes: int = 16 << 20
    auditd_chunk_events: int = 8192
    auditd_chunk_chars: int = 8 << 20
    auditd_ahead_chunks: int = 4
    evtx_fast_min_rows: int = 128
    max_line_bytes: int = MAX_LINE_BYTES
    max_value_chars: int = 128 * 1024 * 1024
    dedupe_in_memory_rows: int = 200_000

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            least = 0 if name in _MAY_BE_ZERO else 1
            if type(value) is not int or value < least:
                raise ValueError(f"Tuning.{name} must be an int of at least {least}, "
                                 f"not {value!r}")


# the thresholds a test sets to 0 to take a path always: helpers for every audit.log, the
# DuckDB de-duplication for every day
_MAY_BE_ZERO = frozenset({"auditd_offload_bytes", "dedupe_in_memory_rows"})


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps that keep a hostile archive from filling the disk (used by the ingest's archive
    reader, :mod:`loaders.ingest.archives`; here so that :class:`LoadOptions` can carry
    them). Every cap is checked on the bytes actually decompressed, before they are written,
    whatever the archive's headers claim; a header claiming more only refuses a member early.

    Attributes:
        max_member_bytes: largest uncompressed member accepted.
        max_total_bytes: largest number of bytes taken out of one input, the archives nested
            in it included, each byte counted once: members written to the temp dir (a nested
            archive and then its members), and in tar archives (and zips read without their
            central directory) the data of refused members, which must be decompressed to be
            skipped.
        max_ratio: compression ratio (bytes written over compressed bytes actually consumed)
            beyond which, past ``ratio_floor`` bytes, a member is a decompression bomb.
        ratio_floor: members smaller than this are never ratio-checked.
        max_depth: how deep archives nested in archives are opened.
    """

    max_member_bytes: int = 8 * 1024**3
    max_total_bytes: int = 32 * 1024**3
    max_ratio: int = 250
    ratio_floor: int = 64 * 1024**2
    max_depth: int = 3


@dataclass(frozen=True)
class LoadOptions:
    """Knobs a run passes to loaders.

    Attributes:
        year: year for timestamps that have none (syslog RFC 3164); default from file mtime.
        mapping: user-given column mapping (``column=field``) for tabular exports.
        batch_size: events per Arrow batch.
        max_initial_rejects: a file whose first N records are all rejected is not of this
            format: it stops with an error naming ``--format``.
        max_consecutive_rejects: a run this long of bad records anywhere stops the file;
            None, the default: a run of bad records in the middle of a file is rejected
            (binary damage as one region) and reading resumes at the next good record.
        helpers: extra processes a loader may use for one large file (auditd maps events
            in a helper, see :mod:`loaders.parsing.offload`). 0, the default for library calls:
            none. None: one on a machine with two cores or more, as ``auditlens ingest``
            does (a script asking for helpers must guard its entry point with
            ``if __name__ == "__main__":``, as any code that starts processes).
        tuning: block, chunk and window sizes of the reading machinery (:class:`Tuning`);
            the defaults suit every input, tests shrink them.
        archive_limits: caps on what the ingest extracts from archives
            (:class:`ArchiveLimits`); loaders do not use them.
        tz: the zone of times written without one (``Europe/Moscow``, ``+03:00``; see
            :func:`loaders.parsing.timeutil.zone_from_text`); None: such times are taken
            as UTC, each record so read with a ``parse_warning``.
        tz_for: per-path zones for mixed collections, ``(pattern, zone)`` pairs, the first
            whose shell pattern matches the file's path (as given or resolved; a pattern
            without ``/`` matches the file name, one with ``/`` any tail of the path) wins
            over ``tz``.
    """

    year: int | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    batch_size: int = 20_000
    max_initial_rejects: int = 20
    max_consecutive_rejects: int | None = None
    helpers: int | None = 0
    tuning: Tuning = Tuning()
    archive_limits: ArchiveLimits = ArchiveLimits()
    tz: str | None = None
    tz_for: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        """Raise ``ValueError`` (saying what is accepted) for a zone that does not exist or
        a year no log of this world was written in (1970 to next year)."""
        if self.year is not None:
            latest = datetime.now(UTC).year + 1
            if not 1970 <= self.year <= latest:
                raise ValueError(f"year {self.year} is out of range: syslog without a year "
                                 f"is taken to be from 1970 to {latest}")
        for zone in [self.tz, *(z for _, z in self.tz_for)]:
            if zone is not None:
                zone_from_text(zone)

    def clock_for(self, file: InputFile) -> Clock:
        """The :class:`~loaders.parsing.timeutil.Clock` of one file: its ``tz_for`` zone,
        else ``tz``, else none (UTC assumed)."""
        for pattern, zone in self.tz_for:
            if _path_matches(pattern, file):
                return Clock(zone_from_text(zone), f"--tz-for {pattern}")
        if self.tz is not None:
            return Clock(zone_from_text(self.tz), "--tz")
        return Clock()


def _path_matches(pattern: str, file: InputFile) -> bool:
    """A ``tz_for`` pattern against a file: the name alone (a pattern without ``/``), or
    the path as given or resolved, or any tail of it (``*`` crosses ``/``)."""
    for path in (file.display, file.resolved):
        if not path:
            continue
        if "/" not in pattern:
            if fnmatch.fnmatchcase(PurePosixPath(path.split("!")[-1]).name, pattern):
                return True
        elif fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(
                path, "*/" + pattern.lstrip("/")):
            return True
    return False


class Source:
    """What a loader's ``parse`` gets: one input file, its head, and the run's options."""

    def __init__(
        self, file: InputFile, head: bytes, options: LoadOptions,
        progress: Callable[[int], None] | None = None, damaged_lines: int = 0,
    ) -> None:
        self.file = file
        self.head = head
        # lines of a damaged head before the first record detection recognised: a loader
        # that reads a header row (CSV) rejects them instead of taking one as its header
        self.damaged_lines = damaged_lines
        self.options = options
        self.warnings: list[str] = []
        self.stopped = False
        # records of its format the loader has read, counted when read rather than when
        # yielded: a loader that holds records back (auditd's assembly window) counts them
        # here, so that the runner's reject limits know good records came between rejects
        self.accepted = 0
        self.read_error: str | None = None
        # NUL runs removed from the starts of lines of a text file, kept as rejects by the
        # runner (see loaders.parsing.damage); binary formats and UTF-16 are not scrubbed
        self.nul_runs: list[NulRun] = []
        self.scrubbed = scrubbable(head)
        self._progress = progress
        # one per opening of the file: the hash of the bytes each reading took from it
        # (the ingest records the last one: what was parsed)
        self.read_digests: list[ReadDigest] = []

    def stop(self) -> None:
        """Ask the readers to end as if at end of file, so a loader still flushes the records
        it holds (stage merging, multi-line assembly) before its iteration ends. Loaders
        that read :meth:`binary` themselves check :attr:`stopped`."""
        self.stopped = True

    @contextmanager
    def binary(self) -> Iterator[BinaryIO]:
        """The file's (decompressed) bytes, opened read-only; text without the NUL runs
        and byte-order marks at the starts of its lines (:mod:`loaders.parsing.damage`)."""
        digest = ReadDigest()
        self.read_digests.append(digest)
        fh = open_binary(self.file.path, self._progress, self._damaged,
                         limit=self.file.size, digest=digest)
        if self.scrubbed:
            self.nul_runs.clear()  # a loader that reads the file twice finds them twice
            fh = scrubbed(fh, self.nul_runs)
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
            for line in iter_lines(fh, self.head, self.options.tuning.max_line_bytes):
                if self.stopped:
                    return
                yield line

    def json_records(self) -> Iterator[JsonRecord]:
        """The file's JSON values in any export shape (see :mod:`loaders.parsing.jsonreader`).
        Lines are bounded, except in a top-level array: its elements are streamed one by
        one, each bounded, however long its lines (a minified export is one line)."""
        array = text_head(self.head).lstrip(" \t\r\n\x00").startswith("[")
        with self.binary() as fh:
            reader = JsonReader(fh, self.head, self.options.tuning.max_value_chars,
                                max_line=None if array
                                else self.options.tuning.max_line_bytes)
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


PLACEHOLDER_ID = (r"[ \t\r\n0._:{}-]*|-1|[nN][uU][lL][lL]|[nN][oO][nN][eE]|[nN][iI][lL]"
                  r"|[nN]/?[aA]|[uU][nN][dD][eE][fF][iI][nN][eE][dD]"
                  r"|[uU][nN][kK][nN][oO][wW][nN]")
"""What a native id that identifies nothing looks like: empty or blank, only zeros and
separators (``0``, ``-``, ``00000000-0000-0000-0000-000000000000``, ``{0000…}``), ``-1``,
``null`` / ``none`` / ``nil`` / ``n/a`` / ``undefined`` / ``unknown`` in any case. Written
for both Python's ``re`` (:func:`is_placeholder_id`) and RE2 (Arrow's
``match_substring_regex`` with ``^(?:…)$``, see :data:`PLACEHOLDER_ID_RE2`) with the same
matches: ASCII only, no ``\\s``, no case folding."""
PLACEHOLDER_ID_RE2 = f"^(?:{PLACEHOLDER_ID})$"
_PLACEHOLDER = re.compile(PLACEHOLDER_ID)


def is_placeholder_id(value: object) -> bool:
    """Whether a source's id is missing or a placeholder (:data:`PLACEHOLDER_ID`): test
    pipelines and buggy shippers write the same such id on every record, so a loader must
    not derive the ``event_uid`` (or merge records) from it, but fall back to the raw text.

    Example:
        >>> [is_placeholder_id(v) for v in (None, "", "0", "-", "NULL", "a1b2", "10")]
        [True, True, True, True, True, False, False]
    """
    return value is None or _PLACEHOLDER.fullmatch(str(value)) is not None


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
