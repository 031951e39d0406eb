"""Windows event logs: Sysmon and the channels that come mixed with it.

Reads (detected from the first bytes):

- ``.evtx`` files (``ElfFile`` magic, or ``ElfChnk`` at 0x1000 when the file header is
  damaged) through the ``evtx`` package; one record = one EVTX record, ``source_line`` = its
  index in the file (lost records of damaged chunks count, so positions stay those of the
  undamaged file), ``raw`` = its JSON rendering; damaged, cut or overwritten chunks are
  handled by :mod:`loaders.windows_events.from_evtx` (a reject per lost record). Batches of
  records are mapped column-wise by :mod:`loaders.windows_events.fast` where that gives the
  same values; the other records take the per-record path below;
- JSON / NDJSON as agents ship it (see :mod:`loaders.windows_events.from_json`): flat fields
  (OTRF Mordor, NXLog), an ``EventData`` JSON/XML string (Sentinel table exports),
  Winlogbeat, evtx-style ``{"Event": {"System": …}}``; one record = one JSON value;
- ``wevtutil qe /f:xml`` XML and ``<Events>`` documents, UTF-8 or UTF-16 (see
  :mod:`loaders.windows_events.from_xml`); one record = one ``<Event>`` element;
- Sysmon for Linux syslog lines (``… sysmon: <Event>…</Event>``); one record = one line
  carrying event XML (other lines are skipped and counted in a file warning);
- Sysmon for Linux in Log Analytics / Microsoft Sentinel ``Syslog`` table exports (JSON Lines
  or a JSON array of rows, the event XML in ``SyslogMessage``); one record = one row carrying
  event XML (rows of other programs are skipped and counted in a file warning, as the
  lines of a syslog file are).

Every form is normalized to a :class:`~loaders.windows_events.model.WinEvent` and mapped by
the one table in :mod:`loaders.windows_events.catalog`; unknown event ids load as ``system``.
The time is the event's own ``System/TimeCreated/@SystemTime`` (agent fields are fallbacks,
most trusted first). The native id is (computer, channel, EventRecordID, time): record
numbers restart when a log is cleared, so the number alone would collide.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyarrow as pa

from loaders.base import Item, JsonLoader, Parsed, ParsedTable, Reject, Source, gc_paused
from loaders.parsing.inputs import iter_text_chunks, text_head
from loaders.parsing.jsonreader import JsonRecord
from loaders.parsing.timeutil import TimeError
from loaders.schema.extras import WINDOWS_EVENTS
from loaders.windows_events.fast import map_batch
from loaders.windows_events.from_evtx import EvtxRecord, decode, is_evtx, iter_evtx
from loaders.windows_events.from_json import from_evtx_json, from_json_value, from_syslog_row
from loaders.windows_events.from_xml import XmlSplitter, parse_event_xml, syslog_event_xml
from loaders.windows_events.map import to_fields
from loaders.windows_events.model import WinEvent, parse_time, resolve_time

_SNIFF_CHARS = 16 * 1024
_COPY_CHUNK = 1024 * 1024
_BATCH_CHARS = 8_000_000  # record text per vectorized batch (~5,000 Sysmon records)
_EOF, _STOP = "end of file", "run stopped"  # how a batch of EVTX records can end
_GZIP_MAGIC = b"\x1f\x8b"
_XML_EVENT = re.compile(r"<Event[\s>]")
_JSON_ID = re.compile(r'"(?:EventID|EventId|eventid)"\s*:')
_JSON_HOST_OR_CHANNEL = re.compile(
    r'"(?:Channel|Computer|Hostname|SourceName|EventLog|ProviderName|Provider)"\s*:')
_SYSLOG_ROW = re.compile(r'"SyslogMessage"\s*:')
_CSV_ZONE_SUFFIX = re.compile(r"\s*\[(?:UTC|Local Time)\]$")


def _syslog_csv_header(text: str) -> list[str] | None:
    """The column names of a ``Syslog`` table CSV export from its first line (the portal
    writes ``TimeGenerated [UTC]``: the suffix is dropped), or None when the first line is
    no such header."""
    first = text.split("\n", 1)[0].strip("\r\ufeff ")
    if "SyslogMessage" not in first or first.startswith(("{", "[", "<")):
        return None
    try:
        names = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return None
    names = [_CSV_ZONE_SUFFIX.sub("", n.strip()) for n in names]
    return names if "SyslogMessage" in names else None


def _evtx_collect(records: Iterator[EvtxRecord], src: Source
                  ) -> tuple[list[EvtxRecord], Reject | str | None]:
    """The next batch of records and what ended it: None (the batch is full), the reject
    of a damaged record, :data:`_EOF` or :data:`_STOP` (the run stopped). A batch is
    bounded in records and in text (PowerShell script blocks run to 32 KB a record), so
    memory stays flat whatever the file size.

    A record lost in a damaged chunk (``attested``: the chunk headers say it was there)
    counts in ``src.accepted`` as it is rejected: the reject limits, meant to spot input
    of another format and runs of garbage, must not fail or stop the file because of it.
    """
    batch: list[EvtxRecord] = []
    chars = 0
    size = src.options.batch_size
    for rec in records:
        if src.stopped:
            return batch, _STOP
        if rec.error is not None:
            if rec.attested:
                src.accepted += 1
            return batch, Reject(rec.index, rec.error, rec.text)
        batch.append(rec)
        chars += len(rec.text)
        if len(batch) >= size or chars >= _BATCH_CHARS:
            return batch, None
    return batch, _EOF


_SKEW = timedelta(minutes=2)  # TimeCreated is logged moments after Sysmon's UtcTime
# EVTX's and the XML renderings' SystemTime is a FILETIME, UTC by format: never a local time
_SYSTEM_TIME = "System/TimeCreated/@SystemTime"


def _zone_like(delta: timedelta) -> bool:
    """A difference that is a zone offset: at least a quarter hour, within the skew of a
    multiple of one (a record logged late is not a zone)."""
    quarter = timedelta(minutes=15)
    return abs(delta) >= quarter - _SKEW and abs(delta - round(delta / quarter) * quarter) \
        <= _SKEW


def _hours(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"is {sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


class WindowsEventsLoader(JsonLoader):
    name = "windows_events"
    description = "Windows event logs: Sysmon (Windows and Linux), Security, System, PowerShell"
    reads = ("EVTX; JSON/NDJSON from agents (flat/Mordor/NXLog, Sentinel EventData string, "
             "Winlogbeat, evtx-style Event JSON); wevtutil/Event Viewer XML (UTF-8/UTF-16); "
             "Sysmon for Linux syslog, and in Log Analytics/Sentinel Syslog table exports "
             "(JSON, CSV; SyslogMessage)")
    prefix = WINDOWS_EVENTS.prefix
    extra_columns = WINDOWS_EVENTS.columns
    record = ("EVTX record (in a damaged EVTX file, each record of a chunk that cannot be "
              "read is one reject), JSON value, <Event> element, or syslog line (Syslog table "
              "row) with event XML")

    def sniff(self, head: bytes, name: str) -> bool:
        if is_evtx(head):
            return True
        text = text_head(head[:_SNIFF_CHARS])
        if _syslog_csv_header(text) is not None:
            return "Linux-Sysmon" in text
        if text.lstrip().startswith(("{", "[")) and _SYSLOG_ROW.search(text):
            # a Syslog table export: ours when Sysmon for Linux wrote into it (its XML may
            # be escaped, \u003cEvent or &lt;Event, but the provider name stays)
            return "Linux-Sysmon" in text
        if _XML_EVENT.search(text):
            return "<System>" in text and "<EventID" in text
        body = text.lstrip()
        if not body.startswith(("{", "[")):
            return False
        if '"winlog"' in text and '"event_id"' in text:
            return True
        if '"event_data"' in text and '"log_name"' in text:
            return True
        if '"Event"' in text and '"System"' in text and '"EventRecordID"' in text:
            return True
        return bool(_JSON_ID.search(text) and _JSON_HOST_OR_CHANNEL.search(text))

    def parse(self, src: Source) -> Iterator[Item]:
        if is_evtx(src.head):
            yield from self._parse_evtx(src)
            return
        text = text_head(src.head).lstrip()
        if _syslog_csv_header(text) is not None:
            yield from self._parse_syslog_csv(src)
        elif text.startswith("<"):
            yield from self._parse_xml(src)
        elif text.startswith(("{", "[")):
            yield from self._parse_json(src)
        else:  # text lines (syslog) that carry event XML somewhere in them
            yield from self._parse_syslog(src)

    # --- one normalized event -> item --------------------------------------------------

    def event_item(self, ev: WinEvent, line: int, raw: str) -> Item:
        """Map one normalized event to a :class:`Parsed` (or a reject without a time)."""
        ts, used, time_warnings = resolve_time(ev.times)
        warnings = [*ev.warnings, *time_warnings]
        if ts is None:
            tried = ", ".join(name for name, _ in ev.times)
            detail = f" ({'; '.join(time_warnings)})" if time_warnings else ""
            return Reject(line, f"event without a readable time (tried {tried}){detail}", raw)
        utc_time = None
        if ev.data.get("UtcTime") is not None:
            try:
                utc_time = parse_time(ev.data["UtcTime"], naive_is_utc=True)
            except TimeError as exc:
                warnings.append(f"UtcTime: {exc}")
        if utc_time is not None and used != _SYSTEM_TIME and _zone_like(ts - utc_time):
            # Sysmon's UtcTime is UTC by definition: a record time hours off it is a
            # collector's local time written as UTC (OTRF's exports: TimeCreated "…Z")
            warnings.append(f"{used} {_hours(ts - utc_time)} off UtcTime (a local time "
                            "written as UTC?); UtcTime is used")
            ts = utc_time
        if ev.event_id is None:
            warnings.append("EventID: missing or not a number")
        fields, more = to_fields(ev, ts, utc_time)
        warnings.extend(more)
        native = None
        if ev.record_id is not None and ev.computer and ev.channel:
            native = (f"{ev.computer.casefold()}\x1f{ev.channel.casefold()}\x1f"
                      f"{ev.record_id}\x1f{ts.isoformat()}")
        return Parsed(line, raw, fields, native_id=native, warnings=warnings or None)

    def _safe_item(self, ev: WinEvent, line: int, raw: str) -> Item:
        try:
            return self.event_item(ev, line, raw)
        except Exception as exc:  # one bad record must not stop the file
            return Reject(line, f"cannot map event: {type(exc).__name__}: {exc}", raw)

    # --- the input forms ------------------------------------------------------------------

    def from_json(self, value: Any, rec: JsonRecord) -> Iterator[Item]:
        ev = from_json_value(value)
        if ev is None:  # a Syslog table row of another program: not a record
            return
        if isinstance(ev, str):
            yield Reject(rec.line, ev, rec.text)
            return
        yield self._safe_item(ev, rec.line, rec.text)

    def _parse_json(self, src: Source) -> Iterator[Item]:
        """The JSON values (see :class:`~loaders.base.JsonLoader`), with the ``Syslog`` table
        rows that carry no event XML counted in a file warning, as a syslog file's other
        lines are: a Syslog export holds every program's messages, so skipping them
        silently would hide how much of the file was not Sysmon."""
        skipped = 0
        for rec in src.json_records():
            if rec.error is not None:
                yield Reject(rec.line, rec.error, rec.text)
                continue
            produced = False
            try:
                for item in self.from_json(rec.value, rec):
                    produced = True
                    yield item
            except Exception as exc:  # one bad record must not stop the file
                produced = True
                yield Reject(rec.line, f"cannot map record: {type(exc).__name__}: {exc}",
                             rec.text)
            skipped += not produced
        if skipped:
            src.warnings.append(f"{skipped} Syslog table rows without Sysmon event XML were "
                                "skipped")

    def _parse_evtx(self, src: Source) -> Iterator[Item]:
        with open(src.file.path, "rb") as fh:
            plain = fh.read(len(_GZIP_MAGIC)) != _GZIP_MAGIC
        if plain:
            yield from self._evtx_records(str(src.file.path), src)
            return
        # gzip-compressed EVTX: the parser seeks, a decompressing stream cannot, so the
        # records go through a private temporary file (disk, not memory, holds the copy)
        with src.binary() as stream, tempfile.NamedTemporaryFile(
                prefix="auditlens-evtx-", suffix=".evtx") as tmp:
            shutil.copyfileobj(stream, tmp, _COPY_CHUNK)
            tmp.flush()
            yield from self._evtx_records(tmp.name, src)

    def _evtx_records(self, target: Any, src: Source) -> Iterator[Item]:
        # Records are read as text and mapped a batch at a time (windows_events_fast); the
        # records the vectorized path cannot map exactly go through _evtx_item one by one.
        # A batch is read and mapped with the garbage collector paused (its records, dicts
        # and tuples hold no cycles), never across a yield.
        records = iter_evtx(target, src.warnings, parse=False)
        # below this the fixed cost (~300 Arrow calls, ~3 ms) exceeds the per-record path
        min_rows = src.options.tuning.evtx_fast_min_rows
        while True:
            with gc_paused():
                batch, end = _evtx_collect(records, src)
                mapped = (map_batch([r.text for r in batch], [r.index for r in batch])
                          if end is not _STOP and len(batch) >= min_rows else None)
                if mapped is not None and any(r.warning for r in batch):
                    # a record with a warning of its own takes the per-record path
                    mapped = (mapped[0], [ok and not r.warning
                                          for ok, r in zip(mapped[1], batch, strict=True)])
            if end is _STOP:  # the run saw too many bad records in a row
                return
            yield from self._evtx_batch(batch, mapped, src)
            if end is _EOF:
                return
            if isinstance(end, Reject):
                yield end

    def _evtx_batch(self, batch: list[EvtxRecord], mapped: tuple[pa.Table, list[bool]] | None,
                    src: Source) -> Iterator[Item]:
        """The items of a batch: the vectorized rows as tables, the others one by one."""
        if mapped is None:
            for rec in batch:
                if src.stopped:
                    return
                yield self._evtx_item(rec)
            return
        table, ok = mapped
        start = 0
        while start < len(ok):  # runs of rows, in input order
            end = start
            while end < len(ok) and ok[end] == ok[start]:
                end += 1
            if src.stopped:
                return
            if ok[start]:
                yield ParsedTable(table.slice(start, end - start))
            else:
                for rec in batch[start:end]:
                    if src.stopped:
                        return
                    yield self._evtx_item(rec)
            start = end

    def _evtx_item(self, rec: EvtxRecord) -> Item:
        """One record through the per-record path (with its own warning, if any)."""
        item = self._evtx_decoded(rec)
        if rec.warning and isinstance(item, Parsed):
            item.warnings = [*(item.warnings or []), rec.warning]
        return item

    def _evtx_decoded(self, rec: EvtxRecord) -> Item:
        rec = decode(rec.index, rec.text, rec.header_time)
        if rec.error is not None:
            return Reject(rec.index, rec.error, rec.text)
        try:
            ev = from_evtx_json(rec.value, rec.header_time)
        except Exception as exc:
            return Reject(rec.index, f"cannot read EVTX event: {type(exc).__name__}: {exc}",
                          rec.text)
        return self._safe_item(ev, rec.index, rec.text)

    def _parse_xml(self, src: Source) -> Iterator[Item]:
        with src.binary() as fh:
            for piece in XmlSplitter(iter_text_chunks(fh, src.head)):
                if src.stopped:
                    return
                if piece.error is not None:
                    yield Reject(piece.line, piece.error, piece.text)
                    continue
                ev = parse_event_xml(piece.text)
                if isinstance(ev, str):
                    yield Reject(piece.line, ev, piece.text)
                else:
                    yield self._safe_item(ev, piece.line, piece.text)

    def _parse_syslog_csv(self, src: Source) -> Iterator[Item]:
        """A ``Syslog`` table exported as CSV (the Log Analytics portal's "Export to CSV":
        a header row, ``TimeGenerated [UTC]``-style names, the event XML quoted in
        ``SyslogMessage``): each row read as its JSON form is (:func:`from_syslog_row`), so
        the two exports of one event store the same values and ``event_uid``. A row may
        span lines (a quoted newline); it is numbered by its first line, and its raw text is
        its lines as read."""
        lines = src.lines()
        first = next(lines, None)
        if first is None or first.text is None:
            return
        names = _syslog_csv_header(first.text) or []
        consumed: list[str] = []
        start = [0]

        def texts() -> Iterator[str]:
            for line in lines:
                if not consumed:
                    start[0] = line.number
                consumed.append(line.text if line.text is not None else "")
                yield consumed[-1]

        reader = csv.reader(texts())
        skipped = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # a field over csv.field_size_limit(), a stray quote
                yield Reject(start[0], f"unreadable CSV row: {exc}", "\n".join(consumed))
                consumed.clear()
                continue
            raw = "\n".join(consumed)
            consumed.clear()
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                yield Reject(start[0], f"CSV row of {len(row)} fields, the header has "
                                       f"{len(names)}", raw)
                continue
            record = dict(zip(names, row, strict=True))
            ev = from_syslog_row(record)
            if ev is None:
                skipped += 1
                continue
            if isinstance(ev, str):
                yield Reject(start[0], ev, raw)
                continue
            yield self._safe_item(ev, start[0], raw)
        if skipped:
            src.warnings.append(f"{skipped} Syslog table rows without Sysmon event XML were "
                                "skipped")

    def _parse_syslog(self, src: Source) -> Iterator[Item]:
        skipped = 0
        for line in src.lines():
            if line.text is None:
                yield Reject(line.number, line.warning or "unreadable line", "")
                continue
            xml = syslog_event_xml(line.text)
            if xml is None:
                skipped += bool(line.text.strip())
                continue
            raw = line.raw if line.raw is not None else line.text
            if not xml.endswith("</Event>"):
                yield Reject(line.number, "truncated event XML: the line ends before "
                                          "</Event> (syslog line length limit?)", raw)
                continue
            ev = parse_event_xml(xml)
            if isinstance(ev, str):
                yield Reject(line.number, ev, raw)
                continue
            item = self._safe_item(ev, line.number, raw)
            if line.warning and isinstance(item, Parsed):
                item.warnings = [*(item.warnings or []), line.warning]
            yield item
        if skipped:
            src.warnings.append(f"{skipped} syslog lines without Sysmon event XML were skipped")


LOADER = WindowsEventsLoader()
