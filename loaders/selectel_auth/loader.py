"""Selectel control-panel authorization (login) log, exported as CSV or JSON.

No layout is published, so columns are matched by name through one alias table (English
and Russian headers: «Дата», «Пользователь», «IP-адрес», «Браузер», «Результат» …; see
:mod:`loaders.selectel_auth.headers`), or named by the user with ``--map column=field``
(``LoadOptions.mapping``). When the time or IP column cannot be found, the file fails with
a message listing the columns found and the ones expected; no row is loaded.

CSV: the delimiter is sniffed among ``,`` ``;`` and tab (an Excel ``sep=;`` line is
honoured); UTF-8 with or without BOM, UTF-16, or Windows-1251. JSON: an array or JSON Lines
of flat objects (through the shared JSON reader), or one object wrapping such a list.

Times: ISO 8601, ``DD.MM.YYYY HH:MM[:SS]`` or epoch; a time without a zone or offset is
taken as UTC (``MSK`` as UTC+3). A counted record is one CSV row or one JSON object.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from loaders.base import Item, Loader, Parsed, Reject, Source
from loaders.parsing.cloud_fields import text_or_none
from loaders.parsing.inputs import detect_encoding
from loaders.parsing.lineblocks import too_long
from loaders.parsing.timeutil import TimeError
from loaders.parsing.values import canonical_ip
from loaders.schema.extras import SELECTEL_AUTH
from loaders.selectel_auth.headers import (
    ROLE_OF,
    MissingColumnsError,
    match_columns,
    normalize,
    parse_time,
    result_outcome,
)

_DELIMITERS = (",", ";", "\t")
_JSON_KEY = re.compile(r'"([^"\\]{1,60})"\s*:')
# markers of JSON formats other loaders own: never claim them
_FOREIGN_JSON = ('"event_id"', '"auditID"', '"typeURI"', '"EventID"', '"winlog"',
                 '"kind"', '"involvedObject"')
_TIME_ROLES = frozenset({"timestamp", "date", "time"})
_LIST_KEYS = ("data", "items", "results", "authorizations", "logins", "events")


def _encoding(head: bytes) -> str:
    """utf-8(-sig) / utf-16 by detection; Windows-1251 when the head is not UTF-8."""
    enc = detect_encoding(head)
    if enc != "utf-8":
        return enc
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the head
            return "cp1251"
    return "utf-8-sig"


def _head_text(head: bytes) -> str:
    return head[:16384].decode(_encoding(head[:16384]), "replace").lstrip("\ufeff")


def _header_line(text: str) -> tuple[str, str | None]:
    """The first header line and a delimiter from an Excel ``sep=`` line, if any."""
    sep = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.lower().startswith("sep=") and len(line.strip()) <= 6:
            sep = line.strip()[4:5] or None
            continue
        return line, sep
    return "", sep


def _split_header(line: str, sep: str | None) -> tuple[list[str], str]:
    """Header cells and the delimiter giving the most cells."""
    best: tuple[list[str], str] = ([line], ",")
    for delim in (sep,) if sep else _DELIMITERS:
        try:
            cells = next(csv.reader([line], delimiter=delim), [])
        except csv.Error:  # a cell over csv.field_size_limit(): not a header
            continue
        if len(cells) > len(best[0]):
            best = (cells, delim)
    return [c.strip() for c in best[0]], best[1]


class SelectelAuthLoader(Loader):
    name = "selectel_auth"
    description = "Selectel control-panel authorization (login) log export"
    reads = ("CSV (delimiter , ; or tab; English or Russian headers) or JSON array / JSON "
             "Lines; columns by alias table or --map column=field")
    prefix = SELECTEL_AUTH.prefix
    record = "CSV row or JSON object"
    extra_columns = SELECTEL_AUTH.columns

    def sniff(self, head: bytes, name: str) -> bool:
        text = _head_text(head)
        if text.lstrip()[:1] in ("[", "{"):
            if any(marker in text for marker in _FOREIGN_JSON):
                return False
            roles = {ROLE_OF.get(normalize(k)) for k in _JSON_KEY.findall(text[:4096])}
            return bool(roles & _TIME_ROLES) and {"src_ip", "user"} <= roles
        line, sep = _header_line(text[:4096])
        cells, _ = _split_header(line, sep)
        roles = {ROLE_OF.get(normalize(c)) for c in cells}
        return len(cells) >= 3 and bool(roles & _TIME_ROLES) and "src_ip" in roles

    def parse(self, src: Source) -> Iterator[Item]:
        if _head_text(src.head).lstrip()[:1] in ("[", "{"):
            yield from self._parse_json(src)
        else:
            yield from self._parse_csv(src)

    # --- CSV ------------------------------------------------------------------------

    def _parse_csv(self, src: Source) -> Iterator[Item]:
        with src.binary() as fh:
            text = io.TextIOWrapper(fh, encoding=_encoding(src.head), errors="replace",
                                    newline="")
            tap = _Tap(text, src.options.tuning.max_line_bytes)
            header: list[str] = []
            delim = ","
            sep = None
            for line in tap:
                stripped = line.strip().lstrip("\ufeff")
                if not stripped:
                    continue
                if tap.number <= src.damaged_lines:  # a damaged head before the header
                    start, raw = tap.take()
                    yield Reject(start, "damaged head: a line before the header row that "
                                        "is not a CSV header", raw)
                    continue
                if stripped.lower().startswith("sep=") and len(stripped) <= 6:
                    sep = stripped[4:5] or None
                    continue
                header, delim = _split_header(stripped, sep)
                break
            cols = match_columns(header, src.options.mapping)  # raises: file-level error
            tap.take()
            rows = csv.reader(tap, delimiter=delim)
            while True:
                try:
                    row = next(rows, None)
                except csv.Error as exc:  # a field over csv.field_size_limit(): this row
                    start, raw = tap.take()
                    why = (f"a field is longer than {csv.field_size_limit()} characters"
                           if "field limit" in str(exc) else str(exc))
                    yield Reject(start, f"unreadable CSV row: {why}", raw)
                    continue
                if row is None:
                    break
                start, raw = tap.take()
                for number, reason in tap.long_lines():
                    yield Reject(number, reason, "")
                if not any(cell.strip() for cell in row):
                    continue
                values = {name: (row[i] if i < len(row) else None)
                          for i, name in enumerate(header)}
                warnings = [f"row has {len(row)} cells, header has {len(header)}"] \
                    if len(row) != len(header) else []
                yield self.row(values, cols, start, raw, warnings)

    # --- JSON -----------------------------------------------------------------------

    def _parse_json(self, src: Source) -> Iterator[Item]:
        matched: dict[tuple[str, ...], dict[str, str] | str] = {}
        first = True
        for rec in src.json_records():
            if rec.error is not None:
                yield Reject(rec.line, rec.error, rec.text)
                continue
            objs = _objects(rec.value)
            if objs is None:
                yield Reject(rec.line, "not an authorization record (expected a JSON "
                                       "object of columns)", rec.text)
                continue
            for obj in objs:
                raw = rec.text if len(objs) == 1 else json.dumps(obj, ensure_ascii=False)
                keys = tuple(obj)
                if keys not in matched:
                    try:
                        matched[keys] = match_columns(keys, src.options.mapping)
                    except MissingColumnsError as exc:
                        if first:
                            raise  # the export as a whole does not fit: a file-level error
                        matched[keys] = str(exc)
                first = False
                cols = matched[keys]
                if isinstance(cols, str):
                    yield Reject(rec.line, cols, raw)
                    continue
                yield self.row(obj, cols, rec.line, raw, [])

    # --- one record -----------------------------------------------------------------

    def row(self, values: Mapping[str, Any], cols: Mapping[str, str], line: int, raw: str,
            warnings: list[str]) -> Item:
        """Map one row (column name -> cell) to an item.

        Args:
            values: the record's cells by column name.
            cols: ``{field: column}`` from :func:`match_columns`.
            line: line where the record starts.
            raw: the record's text.
            warnings: warnings found while reading the row.

        Returns:
            A :class:`Parsed`, or a :class:`Reject` when the time is missing or unreadable.
        """
        def cell(field: str) -> str | None:
            col = cols.get(field)
            return text_or_none(values.get(col)) if col else None

        stamp = cell("timestamp")
        if stamp is None:
            parts = [p for p in (cell("date"), cell("time")) if p]
            stamp = " ".join(parts) if parts else None
        if stamp is None:
            return Reject(line, "authorization record without a time", raw)
        try:
            ts = parse_time(stamp)
        except TimeError as exc:
            return Reject(line, str(exc), raw)
        ip, ip_warning = canonical_ip(cell("src_ip"))
        if ip_warning:
            warnings.append(ip_warning)
        user, result = cell("user"), cell("outcome")
        outcome = result_outcome(result)
        used = set(cols.values())
        other = {k: v for k, v in values.items() if k not in used and v not in (None, "")}
        fields: dict[str, Any] = {
            "timestamp": ts,
            "category": "authentication",
            "action": "login",
            "outcome": outcome,
            "user": user,
            "user_id": cell("user_id"),
            "src_ip": ip,
            "user_agent": cell("user_agent"),
            "session_id": cell("session_id"),
            "host": cell("host"),
            "message": cell("message") or (f"{user or '?'} login to the control panel from "
                                           f"{ip or '?'} -> {result or outcome}"),
            "selectel_login_result": result,
            "selectel_login_other": json.dumps(other, ensure_ascii=False, sort_keys=True)
            if other else None,
        }
        return Parsed(line, raw, fields, warnings=warnings or None)


def _objects(value: Any) -> list[dict[str, Any]] | None:
    """The flat record objects of one JSON value (an object, or one wrapping a list)."""
    if isinstance(value, dict):
        for key in _LIST_KEYS:
            inner = value.get(key)
            if isinstance(inner, list) and all(isinstance(v, dict) for v in inner):
                return inner
        return [value]
    return None


class _Tap:
    """Line iterator for csv.reader that remembers the text of the row being read.

    Lines are read with the bound of every reader (``max_line`` characters): a longer one is
    skipped in bounded memory, handed to csv.reader as an empty line, and kept for
    :meth:`long_lines`, which the loader rejects by their line numbers.
    """

    def __init__(self, text: io.TextIOBase, max_line: int) -> None:
        self._text = text
        self._max = max_line
        self._buf: list[str] = []
        self._number = 0
        self._long: list[tuple[int, str]] = []

    def __iter__(self) -> _Tap:
        return self

    def __next__(self) -> str:
        line = self._text.readline(self._max + 1)
        if not line:
            raise StopIteration
        self._number += 1
        if len(line) > self._max and not line.endswith(("\n", "\r")):
            size = len(line)
            while line and not line.endswith(("\n", "\r")):
                line = self._text.readline(1 << 20)
                size += len(line)
            self._long.append((self._number, too_long(size, self._max, "characters")))
            line = "\n"
        self._buf.append(line)
        return line

    @property
    def number(self) -> int:
        """Lines read so far."""
        return self._number

    def long_lines(self) -> list[tuple[int, str]]:
        """(line number, reason) of the over-long lines skipped since the last call."""
        out, self._long = self._long, []
        return out

    def take(self) -> tuple[int, str]:
        """Start line and text of the lines read since the last call."""
        start = self._number - len(self._buf) + 1
        raw = "".join(self._buf).rstrip("\r\n")
        self._buf = []
        return start, raw


LOADER = SelectelAuthLoader()

__all__ = ["LOADER", "MissingColumnsError", "SelectelAuthLoader"]
