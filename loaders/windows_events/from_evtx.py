"""EVTX files through the ``evtx`` package (Rust parser): one JSON text per record.

The chunk layout is checked first (:mod:`loaders.windows_events.evtx_layout`): only intact
chunks (signature, header and data checksums, all their data in the file) are parsed, a run
of them at a time, so a truncated or damaged file still yields every record of its intact
chunks with the same text as the undamaged file. A chunk cut by the end of the file inside
its records, whose header is intact, keeps the records that lie whole before the cut
(their framing is checked; a record that straddles the cut is never read): they are parsed
and carry a warning (the chunk's checksum could not be verified), and only the records
after them are lost. The records of damaged, cut or overwritten chunks are counted from
the chunk headers (theirs, or the record numbers around them) and become one reject per
lost record, whose reason names the chunk, its offset, the record numbers and the damage;
each damaged stretch is also a file warning. Chunks without a signature where no record is
missing are unused space (exports of a live log often end in such slack): one file warning.
A file with no chunk to parse fails with the reason. Any other parse error is a damaged
record and becomes a reject, and records the parser does not return for an intact chunk
(its header says how many there are) are rejects too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, BinaryIO

import evtx

from loaders.base import FormatError
from loaders.windows_events.evtx_layout import (
    CHUNK,
    CHUNK_MAGIC,
    FILE_HEADER,
    FILE_MAGIC,
    Chunk,
    Layout,
    Loss,
    Spliced,
    plan,
    scan,
    where,
)

EVTX_MAGIC = FILE_MAGIC
_CHUNK_NUMBER = re.compile(r"chunk number (\d+)")
_MAX_LISTED = 10  # damaged stretches spelled out in the file warnings
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
        attested: an error for a record whose existence the file's structure attests (a
            record of a damaged chunk): not a sign of input in another format.
        warning: a record read from a cut chunk: what to say about it (a parse warning).
    """

    index: int
    text: str = ""
    value: Any = None
    header_time: Any = None
    error: str | None = None
    attested: bool = False
    warning: str | None = None


def is_evtx(head: bytes) -> bool:
    """An EVTX file: the file signature, or (file header damaged) a chunk signature at
    offset 0x1000."""
    return head.startswith(FILE_MAGIC) or head[FILE_HEADER:FILE_HEADER + 8] == CHUNK_MAGIC


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
    """Iterate the records of an EVTX file, damaged or not (see the module docstring).

    Args:
        target: a path (str or path-like) or a seekable binary file object.
        warnings: receives file-level observations (slack, damage).
        parse: decode each record's JSON (``value``); False leaves that to the caller
            (the vectorized path parses many records at once).

    Raises:
        FormatError: the file holds no intact chunk and no complete record of a cut one, so
            no record can be read (after the records its chunk headers say were lost, as
            rejects).
    """
    with ExitStack() as stack:
        if isinstance(target, str | os.PathLike):
            fh: BinaryIO = stack.enter_context(open(target, "rb"))
        else:
            fh = target
        layout = scan(fh)
        parts, slack = plan(layout)
        losses = [p for p in parts if isinstance(p, Loss)]
        pos = [0]  # the index of the last record (read or lost), shared with the parts
        if len(losses) == len(parts):  # the lost records are counted, then the file fails
            for loss in losses:
                for _ in range(1 if loss.count is None else loss.count):
                    pos[0] += 1
                    yield EvtxRecord(pos[0], error=loss.reason, attested=True)
            raise FormatError(_nothing_readable(layout, losses))
        _warn(layout, losses, warnings)
        first = parts[0]
        if isinstance(first, list) and _whole(layout, first, len(parts), slack):
            fh.seek(0)  # the common case: the file goes to the parser as it is
            yield from _parse_run(target, first, pos, parse, warnings)
        else:
            for part in parts:
                if isinstance(part, Loss):
                    for _ in range(1 if part.count is None else part.count):
                        pos[0] += 1
                        yield EvtxRecord(pos[0], error=part.reason, attested=True)
                else:
                    yield from _parse_run(Spliced(fh, part), part, pos, parse, warnings)
        if slack:
            warnings.append(f"EVTX chunks {', '.join(str(c.number) for c in slack)} have no "
                            "chunk header (unused or overwritten space); any records there "
                            "were not read")


def _whole(layout: Layout, run: list[Chunk], parts: int, slack: list[Chunk]) -> bool:
    """The file can go to the parser as it is: an intact header, then intact chunks (one
    run, the only part), then only whole slack chunks."""
    if layout.header_problem is not None or parts != 1:
        return False
    return (run == layout.chunks[:len(run)] and all(c.size == CHUNK for c in run)
            and all(c.size == CHUNK for c in slack)
            and len(run) + len(slack) == len(layout.chunks))


def _warn(layout: Layout, losses: list[Loss], warnings: list[str]) -> None:
    if layout.header_problem is not None:
        warnings.append(f"EVTX file header damaged ({layout.header_problem}); the chunks "
                        "were found by their ElfChnk signature at 64 KiB boundaries")
    for loss in losses[:_MAX_LISTED]:
        n = "1 reject" if loss.count is None else f"{loss.count:,} rejects"
        warnings.append(f"{loss.reason} ({n})")
    if len(losses) > _MAX_LISTED:
        rest = losses[_MAX_LISTED:]
        total = sum(1 if x.count is None else x.count for x in rest)
        warnings.append(f"{len(rest):,} more damaged EVTX stretches ({total:,} rejects)")
    for c in layout.chunks:
        if c.intact and c.size < CHUNK:
            warnings.append(f"{where([c])}: the file ends {c.size:,} bytes into the chunk, "
                            "in its unused space; its records were read")


def _nothing_readable(layout: Layout, losses: list[Loss]) -> str:
    if not layout.chunks:
        why = layout.header_problem or "the file is only a file header"
        return f"EVTX file without any chunk, no record could be read: {why}"
    reasons = [loss.reason for loss in losses[:_MAX_LISTED]]
    if len(losses) > _MAX_LISTED:
        reasons.append(f"{len(losses) - _MAX_LISTED} more damaged stretches")
    if not reasons:
        reasons = [f"{where(layout.chunks)}: no chunk header (unused or overwritten space)"]
    if layout.header_problem is not None:
        reasons.insert(0, layout.header_problem)
    return "EVTX file without an intact chunk, no record could be read: " + "; ".join(reasons)


def _parse_run(target: Any, run: list[Chunk], pos: list[int], parse: bool,
               warnings: list[str]) -> Iterator[EvtxRecord]:
    """The records of a run of intact chunks (``target``: the file as it is, or the run
    spliced into a file of its own, so the parser's chunk numbers index ``run``). Every
    record a chunk header names comes out once: read, a parse error, or missing from the
    parser's output."""
    seen = [0] * len(run)
    failed = [0] * len(run)
    last_error: list[str | None] = [None] * len(run)
    k = 0  # the chunk being read
    done = 0  # chunks before this one were accounted for

    def account(upto: int) -> Iterator[EvtxRecord]:
        nonlocal done
        for j in range(done, upto):
            c = run[j]
            missing = c.count - seen[j] - failed[j]
            if missing > 0:
                after = f" (after: {last_error[j]})" if last_error[j] else ""
                what = (f"records {c.first}–{c.last}" if c.count > 1 else f"record {c.first}")
                reason = (f"{where([c])}: {missing:,} of {what} not returned by the evtx "
                          f"parser{after}")
                warnings.append(f"{reason} ({missing:,} rejects)")
                for _ in range(missing):
                    pos[0] += 1
                    yield EvtxRecord(pos[0], error=reason, attested=True)
        done = max(done, upto)

    try:
        records = evtx.PyEvtxParser(target).records_json()
    except Exception as exc:  # the spliced file is well formed; this is the parser's word
        last_error[0] = f"{type(exc).__name__}: {exc}"
        yield from account(len(run))
        return
    errors = 0
    while True:
        try:
            rec = next(records)
        except StopIteration:
            break
        except Exception as exc:
            errors += 1
            if errors > _MAX_ERRORS_IN_A_ROW:
                warnings.append(f"EVTX parsing stopped after {errors} errors in a row")
                break
            text = str(exc)
            m = _CHUNK_NUMBER.search(text)
            if m:
                n = int(m.group(1))
                if n >= len(run):  # slack after the run (the file as it is): known already
                    continue
                if n > k:
                    yield from account(n)
                    k = n
            failed[k] += 1
            last_error[k] = text
            pos[0] += 1
            yield EvtxRecord(pos[0], error=f"damaged EVTX data in {where([run[k]])}: {text}")
            continue
        if rec is None:  # the typed stub allows None; the parser never yields it
            continue
        errors = 0
        rid = rec.get("event_record_id")
        if isinstance(rid, int) and not _holds(run[k], rid):
            j = next((j for j in range(k + 1, len(run)) if _holds(run[j], rid)), None)
            if j is not None:  # the parser moved on to a later chunk
                yield from account(j)
                k = j
        warning = None
        if run[k].recovered:  # only the records framed whole before the cut, once
            if not isinstance(rid, int) or not _holds(run[k], rid) or seen[k] >= run[k].count:
                continue
            warning = f"from a cut chunk ({where([run[k]])}): its checksum could not be verified"
        seen[k] += 1
        pos[0] += 1
        if parse:
            out = decode(pos[0], rec["data"], rec.get("timestamp"))
        else:
            out = EvtxRecord(pos[0], rec["data"], None, rec.get("timestamp"))
        out.warning = warning
        yield out
    yield from account(len(run))


def _holds(chunk: Chunk, record_id: int) -> bool:
    return (chunk.first_id is not None and chunk.last_id is not None
            and chunk.first_id <= record_id <= chunk.last_id)
