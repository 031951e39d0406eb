"""EVTX files through the ``evtx`` package (Rust parser): one JSON text per record.

A file's chunks are read in order; a chunk whose header is not ``ElfChnk`` is unused or
overwritten space (exports of a live log often end in such slack), reported once as a file
warning. Any other parse error is a damaged record and becomes a reject.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import evtx

EVTX_MAGIC = b"ElfFile\x00"
_SLACK = re.compile(r"chunk number (\d+): Failed to parse chunk header: Invalid EVTX chunk "
                    r"header magic")
_MAX_ERRORS_IN_A_ROW = 10_000  # the parser moves on per chunk; this only guards a stuck loop


@dataclass(slots=True)
class EvtxRecord:
    """One EVTX record (or a parse error).

    Attributes:
        index: 1-based record index in the file (errors carry the next index).
        text: the record's JSON text.
        value: the parsed ``Event`` object.
        header_time: the record header time (a fallback; can be zero).
        error: why it could not be read.
    """

    index: int
    text: str = ""
    value: Any = None
    header_time: Any = None
    error: str | None = None


def decode(index: int, text: str, header_time: Any = None) -> EvtxRecord:
    """One record's JSON text to an :class:`EvtxRecord` (an error when it is unreadable)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return EvtxRecord(index, text, error=f"record JSON unreadable: {exc}")
    event = value.get("Event") if isinstance(value, dict) else None
    if not isinstance(event, dict):
        return EvtxRecord(index, text, error="EVTX record without an Event element")
    return EvtxRecord(index, text, event, header_time)


def iter_evtx(target: Any, warnings: list[str], parse: bool = True) -> Iterator[EvtxRecord]:
    """Iterate the records of an EVTX file.

    Args:
        target: a path (str) or a seekable binary file object.
        warnings: receives file-level observations (slack chunks).
        parse: decode each record's JSON (``value``); False leaves that to the caller
            (the vectorized path parses many records at once).
    """
    parser = evtx.PyEvtxParser(target)
    records = parser.records_json()
    index = 0
    errors = 0
    slack: list[str] = []
    while True:
        try:
            rec = next(records)
        except StopIteration:
            break
        except RuntimeError as exc:
            errors += 1
            if errors > _MAX_ERRORS_IN_A_ROW:
                warnings.append(f"EVTX parsing stopped after {errors} errors in a row")
                break
            m = _SLACK.search(str(exc))
            if m:
                slack.append(m.group(1))
            else:
                yield EvtxRecord(index + 1, error=f"damaged EVTX data: {exc}")
            continue
        if rec is None:  # the typed stub allows None; the parser never yields it
            continue
        errors = 0
        index += 1
        if parse:
            yield decode(index, rec["data"], rec.get("timestamp"))
        else:
            yield EvtxRecord(index, rec["data"], None, rec.get("timestamp"))
    if slack:
        warnings.append(f"EVTX chunks {', '.join(slack)} have no chunk header (unused or "
                        "overwritten space); any records there were not read")
