"""The systemd journal's machine forms: ``journalctl -o json`` and ``journalctl -o export``.

Both give the same fields (https://systemd.io/JOURNAL_EXPORT_FORMATS/). JSON is one object
per line; a field that is not valid text is an array of byte values, a field set more than
once an array of its values. The export format is ``KEY=value`` lines, an empty line ending
each entry; a field that is not text is written ``KEY\\n``, its length as a 64-bit
little-endian integer, the bytes, and ``\\n``. A length is read before the bytes it claims,
so it is bounded (the run's line bound, and what the file still holds) before anything is
read: a hostile length is a reject of its entry, never an allocation.

:func:`journal_fields` maps one entry, from either form, to the stored columns: the message
interpreted by SYSLOG_IDENTIFIER exactly as a syslog line of that program is
(:mod:`loaders.parsing.authlog`), the time from ``__REALTIME_TIMESTAMP`` (microseconds since
the epoch, UTC by definition: no zone is assumed), ``__CURSOR`` as the native id.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from loaders.parsing.authlog import message_fields
from loaders.parsing.syslog import facility_severity
from loaders.parsing.values import name as clean_name

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_FIELDS = 4096  # fields in one entry: journald itself caps an entry at 1024


class JournalError(ValueError):
    """An entry that cannot be mapped (no time, a bad value); the message says why."""


@dataclass
class ExportEntry:
    """One entry of the export format.

    Attributes:
        line: the line it starts on.
        fields: field name -> values (text, or bytes for a binary field), in order.
        raw: the entry as text (binary values decoded with ``\\xNN`` escapes).
        error: why the entry cannot be read, or None.
    """

    line: int
    fields: dict[str, list[str | bytes]]
    raw: str
    error: str | None = None


def _text(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")


def read_export(fh: BinaryIO, max_line: int, stopped: Any = None) -> Iterator[ExportEntry]:
    """The entries of an export-format stream, in order.

    Args:
        fh: the stream.
        max_line: the longest line (and binary value) read; longer is a reject.
        stopped: a callable, true when the reader should end as if at end of file.

    Yields:
        :class:`ExportEntry`; one with ``error`` set for an entry that cannot be read (a
        binary length beyond the bound or the file, a line too long). After such an entry
        the reader skips to the next empty line, where the next entry starts.
    """
    number = 0
    while True:
        fields: dict[str, list[str | bytes]] = {}
        raw: list[str] = []
        start = 0
        error: str | None = None
        count = 0
        while True:
            if stopped is not None and stopped():
                return
            line = fh.readline(max_line + 1)
            if not line:
                break
            number += 1
            if not start:
                start = number
            if len(line) > max_line and not line.endswith(b"\n"):
                error = error or f"line too long (> {max_line} bytes)"
                while line and not line.endswith(b"\n"):
                    line = fh.readline(65536)
                continue
            body = line.rstrip(b"\n")
            if not body:
                if start == number:  # blank lines between entries
                    start = 0
                    continue
                break
            if error is not None:
                continue  # skipping to the end of a damaged entry
            count += 1
            if count > _MAX_FIELDS:
                error = f"more than {_MAX_FIELDS} fields in one entry"
                continue
            key, eq, value = body.partition(b"=")
            if eq:
                text = _text(value)
                fields.setdefault(_text(key), []).append(text)
                raw.append(f"{_text(key)}={text}")
                continue
            size_bytes = fh.read(8)
            if len(size_bytes) < 8:
                error = f"binary field {_text(key)[:64]!r}: length cut off by the end of file"
                break
            (size,) = struct.unpack("<Q", size_bytes)
            if size > max_line:
                error = (f"binary field {_text(key)[:64]!r}: length {size} over the bound of "
                         f"{max_line} bytes")
                continue
            data = fh.read(size)
            if len(data) < size:
                error = (f"binary field {_text(key)[:64]!r}: length {size} beyond the end of "
                         f"the file ({len(data)} bytes left)")
                break
            number += data.count(b"\n")
            if fh.read(1) not in (b"\n", b""):
                error = f"binary field {_text(key)[:64]!r}: no newline after its {size} bytes"
                continue
            fields.setdefault(_text(key), []).append(data)
            raw.append(f"{_text(key)}={_text(data)}")
        if not start:
            return
        yield ExportEntry(start, fields, "\n".join(raw), error)
        if not line:
            return


def _one(value: Any) -> str | None:
    """One field value as text: the first of several, bytes (or JSON byte arrays) decoded."""
    if isinstance(value, list):
        if value and all(isinstance(v, int) and 0 <= v < 256 for v in value):
            return bytes(value).decode("utf-8", "replace")
        return _one(value[0]) if value else None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise JournalError(f"field value of type {type(value).__name__}")


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() \
        and len(value.strip()) < 19 else None


def journal_fields(entry: dict[str, Any], form: str) -> tuple[dict[str, Any], list[str], str]:
    """The stored columns of one journal entry (JSON object or export fields).

    Args:
        entry: field name -> value (JSON value, or a list of text/bytes values).
        form: ``journal_json`` or ``journal_export``.

    Returns:
        (fields, warnings, native id).

    Raises:
        JournalError: no usable ``__REALTIME_TIMESTAMP`` or ``__CURSOR``.
    """
    micros = _int(_one(entry.get("__REALTIME_TIMESTAMP")))
    if micros is None:
        raise JournalError("journal entry without a __REALTIME_TIMESTAMP (microseconds since "
                           "the epoch)")
    try:
        ts = _EPOCH + timedelta(microseconds=micros)
    except OverflowError as exc:
        raise JournalError(f"__REALTIME_TIMESTAMP out of range: {micros}") from exc
    cursor = _one(entry.get("__CURSOR"))
    if not cursor:
        raise JournalError("journal entry without a __CURSOR")
    prog = _one(entry.get("SYSLOG_IDENTIFIER")) or _one(entry.get("_COMM")) or ""
    pid = _one(entry.get("SYSLOG_PID")) or _one(entry.get("_PID"))
    msg = _one(entry.get("MESSAGE")) or ""
    fields, warnings = message_fields(prog, msg, pid)
    severity = _int(_one(entry.get("PRIORITY")))
    facility = _int(_one(entry.get("SYSLOG_FACILITY")))
    fac_name, sev_name = facility_severity(
        (facility if facility is not None and facility < 24 else 0) * 8 + severity
        if severity is not None and severity < 8 else None)
    if facility is None or facility >= 24:
        fac_name = None
    if sev_name is None and facility is not None and facility < 24:
        fac_name = facility_severity(facility * 8)[0]
    fields.update({
        "timestamp": ts,
        "host": clean_name(_one(entry.get("_HOSTNAME"))),
        "syslog_program": prog or None,
        "syslog_facility": fac_name,
        "syslog_severity": sev_name,
        "syslog_form": form,
        "syslog_unit": _one(entry.get("_SYSTEMD_UNIT")),
        "syslog_boot_id": _one(entry.get("_BOOT_ID")),
        "syslog_pam_module": None,
    })
    return fields, warnings, cursor
