"""A large, valid EVTX file cloned from real chunks, every record with a new record id.

An EVTX file is a 4096-byte file header (``ElfFile\\0``) followed by 64 KiB chunks
(``ElfChnk\\0``), each self-contained: its own string and template tables, offsets relative
to the chunk. A chunk copied as it is therefore parses as it is, but its records would
repeat the originals' ids. :func:`clone` writes ``copies`` passes over the source chunks
(slack without a chunk header is left out) and gives every record the next id of the file:

- the record header's id (offset 8 of a ``**\\0\\0`` record);
- the rendered ``EventRecordID``: a substitution value of the record's template instance
  (type UInt64) equal to the original id. The binary XML is read only as far as the
  substitution array: fragment header, template instance (its definition inline when the
  template first occurs in the chunk), value descriptors, values. When not exactly one
  UInt64 value holds the old id, the record keeps its rendered id (counted in
  :attr:`CloneStats.kept`; its JSON then repeats the original's).

The chunk header's first/last record numbers and ids, its records CRC32 and header CRC32, and
the file header's chunk count, last chunk, next record id and CRC32 are rewritten, so strict
readers accept the file. Memory is one chunk; the output is deterministic.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FILE_HEADER = 4096
CHUNK = 65536
_CHUNK_HEADER = 512
_RECORD_MAGIC = b"**\x00\x00"
_UINT64 = 0x0A
_MAX_CHUNKS = 0xFFFF  # the file header counts chunks in 16 bits


@dataclass
class CloneStats:
    """What :func:`clone` wrote: records, chunks, records whose EventRecordID was kept."""

    records: int = 0
    chunks: int = 0
    kept: int = 0


def source_chunks(path: Path) -> list[bytes]:
    """The chunks of an EVTX file that have a chunk header (slack is skipped)."""
    data = path.read_bytes()
    chunks = [data[o:o + CHUNK] for o in range(FILE_HEADER, len(data) - CHUNK + 1, CHUNK)]
    return [c for c in chunks if c.startswith(b"ElfChnk\x00")]


def _records(chunk: bytes) -> Iterator[tuple[int, int]]:
    """(offset, size) of each record of a chunk, up to its free-space offset."""
    free = struct.unpack_from("<I", chunk, 48)[0]
    pos = _CHUNK_HEADER
    while pos + 24 <= free and chunk[pos:pos + 4] == _RECORD_MAGIC:
        size = struct.unpack_from("<I", chunk, pos + 4)[0]
        if size < 28 or pos + size > free:
            break
        yield pos, size
        pos += size


def record_id_slot(chunk: bytes, pos: int, size: int) -> int | None:
    """Chunk offset of the UInt64 substitution value holding the record's id, when exactly
    one value of the record's template instance does; else None."""
    old = struct.unpack_from("<Q", chunk, pos + 8)[0]
    p = pos + 24
    end = pos + size - 4
    # fragment header (0x0f, major 1, minor 1, flags), then a template instance (0x0c)
    if chunk[p] != 0x0F or chunk[p + 4] != 0x0C:
        return None
    p += 6  # fragment header, token, one unknown byte
    _template_id, definition = struct.unpack_from("<II", chunk, p)
    p += 8
    if definition == p:  # the definition is inline: next offset, GUID, size, data
        p += 24 + struct.unpack_from("<I", chunk, p + 20)[0]
    if p + 4 > end:
        return None
    count = struct.unpack_from("<I", chunk, p)[0]
    p += 4
    if p + 4 * count > end:
        return None
    descriptors = [struct.unpack_from("<HBx", chunk, p + 4 * i) for i in range(count)]
    p += 4 * count
    slots = []
    for vsize, vtype in descriptors:
        if vtype == _UINT64 and vsize == 8 and p + 8 <= end \
                and struct.unpack_from("<Q", chunk, p)[0] == old:
            slots.append(p)
        p += vsize
    return slots[0] if len(slots) == 1 and p <= end else None


def _chunk_crcs(chunk: bytearray) -> None:
    """Rewrite a chunk's records CRC32 and header CRC32 (bytes 0-120 and 128-512)."""
    free = struct.unpack_from("<I", chunk, 48)[0]
    struct.pack_into("<I", chunk, 52, zlib.crc32(chunk[_CHUNK_HEADER:free]))
    crc = zlib.crc32(chunk[128:_CHUNK_HEADER], zlib.crc32(chunk[:120]))
    struct.pack_into("<I", chunk, 124, crc)


def renumber(chunk: bytes, first_id: int, stats: CloneStats) -> bytearray:
    """A copy of a chunk whose records are numbered from ``first_id`` on."""
    out = bytearray(chunk)
    next_id = first_id
    for pos, size in _records(chunk):
        slot = record_id_slot(chunk, pos, size)
        if slot is None:
            stats.kept += 1
        else:
            struct.pack_into("<Q", out, slot, next_id)
        struct.pack_into("<Q", out, pos + 8, next_id)
        next_id += 1
    last = next_id - 1
    struct.pack_into("<QQQQ", out, 8, first_id, last, first_id, last)
    _chunk_crcs(out)
    stats.records += next_id - first_id
    return out


def _file_header(template: bytes, chunks: int, next_id: int) -> bytes:
    head = bytearray(template[:FILE_HEADER])
    struct.pack_into("<QQQ", head, 8, 0, chunks - 1, next_id)
    struct.pack_into("<H", head, 42, chunks)
    struct.pack_into("<I", head, 120, 0)  # flags: neither dirty nor full
    struct.pack_into("<I", head, 124, zlib.crc32(head[:120]))
    return bytes(head)


def clone(source: Path, copies: int, out: Path) -> CloneStats:
    """Write ``copies`` renumbered passes over ``source``'s chunks to ``out``."""
    chunks = source_chunks(source)
    if not chunks or len(chunks) * copies > _MAX_CHUNKS:
        raise ValueError(f"cannot clone {len(chunks)} chunks {copies} times")
    stats = CloneStats()
    with open(out, "wb") as fh:
        fh.write(bytes(FILE_HEADER))
        for _ in range(copies):
            for chunk in chunks:
                fh.write(renumber(chunk, stats.records + 1, stats))
                stats.chunks += 1
        fh.seek(0)
        fh.write(_file_header(source.read_bytes()[:FILE_HEADER], stats.chunks,
                              stats.records + 1))
    return stats


def _texts(path: Path, strict: bool = True) -> Iterator[tuple[int, str]]:
    """(header record id, JSON text) of every record the ``evtx`` package reads; an error
    raises when ``strict``, else the reader goes on (the source's slack chunks)."""
    import evtx

    records = evtx.PyEvtxParser(str(path)).records_json()
    while True:
        try:
            rec = next(records)
        except StopIteration:
            return
        except RuntimeError:
            if strict:
                raise
            continue
        if rec is not None:  # the typed stub allows None; the parser never yields it
            yield rec["event_record_id"], rec["data"]


def verify(source: Path, out: Path, stats: CloneStats) -> None:
    """Check a clone with the ``evtx`` package: record count, ids 1..N in the headers, and
    each record's JSON equal to its original's with only ``EventRecordID`` changed (kept
    records: equal as they are). Raises ``ValueError`` naming the first difference."""
    originals = [text for _, text in _texts(source, strict=False)]
    n = kept = 0
    for n, (rid, text) in enumerate(_texts(out), 1):
        orig = originals[(n - 1) % len(originals)]
        old = f'"EventRecordID":{_rendered_id(orig)},'
        new = orig.replace(old, f'"EventRecordID":{n},')
        _check(rid == n, f"record {n}: header id {rid}")
        _check(orig.count(old) == 1, f"record {n}: EventRecordID not found once")
        _check(text in (new, orig), f"record {n}: JSON differs from its original's")
        kept += text != new
    _check(n == stats.records, f"{n} records read, {stats.records} written")
    _check(kept == stats.kept, f"{kept} records kept their id, {stats.kept} expected")


def _check(ok: bool, problem: str) -> None:
    if not ok:
        raise ValueError(f"EVTX clone check failed: {problem}")


def _rendered_id(text: str) -> str:
    key = '"EventRecordID":'
    start = text.index(key) + len(key)
    return text[start:text.index(",", start)]
