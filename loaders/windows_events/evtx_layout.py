"""The chunk layout of an EVTX file, checked before the ``evtx`` package parses it.

An EVTX file is a 4 KiB file header (``ElfFile``) followed by 64 KiB chunks (``ElfChnk``),
each with a 512-byte header that holds the range of record numbers and EventRecordIDs in
the chunk, a CRC32 of the header and a CRC32 of the record data (bytes 512 up to the
free-space offset). :func:`scan` reads every chunk header at its 64 KiB boundary and
checks both checksums, so a damaged file is known chunk by chunk before anything is parsed:

- an **intact** chunk (signature, consistent header, both checksums, all its record data in
  the file) is parsed, and only intact chunks are; a run of them is handed to the parser as
  a file of its own (:class:`Spliced`: a new file header + those chunks), so that a damaged
  chunk cannot take its neighbours with it;
- a chunk with a signature but a damaged header, bad record data or cut by the end of the
  file loses its records; how many is read from its own header when that header is intact,
  else from the record numbers of the chunks around it;
- a chunk **cut** by the end of the file inside its records, whose header is intact, still
  holds its records up to the cut: :func:`scan` walks their framing (the ``**\0\0``
  signature, the size and its copy at the record's end, the EventRecordID in sequence) and
  :func:`plan` hands the complete ones to the parser as a chunk of their own
  (:func:`recovered`: the header rewritten to end at the last complete record, zeros after
  it); only the records after the last complete one are lost. Its data checksum cannot be
  verified (the data is cut), which its records say;
- a chunk without a signature is unused space (exports of a live log end in such slack)
  unless the record numbers of the chunks around it show records missing there (a chunk
  overwritten in the middle of a file).

:func:`plan` turns the scan into the parts of the file in order: runs of intact chunks to
parse and :class:`Loss` entries, each a range of records with the chunk offsets and the
reason, which the reader turns into one reject per lost record. The record *number* in a
chunk header is the record's position in the log file (1 for the first record), so the
records lost between two intact chunks are the numbers missing between them.

This module reads only the fixed binary headers; the records themselves (Binary XML) are
left to the ``evtx`` package.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
FILE_HEADER = 4096  # the file header block
CHUNK = 65536
CHUNK_HEADER = 512  # chunk header with its string and template offset tables
_NO_CRC32 = 0x4  # chunk header flag: no checksums kept
# the smallest record (24-byte header, a few bytes of Binary XML, the 4-byte size copy) is
# over 24 bytes, so a chunk cannot hold more records than this: a larger count is damage
MAX_RECORDS_PER_CHUNK = (CHUNK - CHUNK_HEADER) // 24


@dataclass(slots=True)
class Chunk:
    """One 64 KiB slot of the file as found there.

    Attributes:
        number: position of the chunk in the file (0 for the one at offset 0x1000).
        offset: its byte offset in the file.
        size: bytes of it the file holds (less than 64 KiB when the file is cut inside it).
        signature: it starts with ``ElfChnk\\0``.
        first, last: its first and last record number, when its header can be trusted.
        first_id, last_id: its first and last EventRecordID, likewise.
        problem: why it cannot be parsed; None for an intact chunk.
        salvage: for a chunk cut inside its records (header intact), its records that lie
            whole before the cut, as a chunk of their own (:func:`recovered`); None if none.
        header: a replacement for the chunk's 512-byte header, set by :func:`recovered`
            only: this chunk is the complete records of a cut chunk, ``size`` their end.
    """

    number: int
    offset: int
    size: int
    signature: bool
    first: int | None = None
    last: int | None = None
    first_id: int | None = None
    last_id: int | None = None
    problem: str | None = None
    salvage: Chunk | None = None
    header: bytes | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    @property
    def known(self) -> bool:
        """Its header says which records it holds."""
        return self.first is not None and self.last is not None

    @property
    def count(self) -> int:
        return 0 if self.first is None or self.last is None else self.last - self.first + 1

    @property
    def recovered(self) -> bool:
        """The complete records of a cut chunk (see :func:`recovered`)."""
        return self.header is not None


@dataclass(slots=True)
class Layout:
    """What :func:`scan` found: the file size, the file header's problem (None if it is
    intact) and every chunk slot in file order."""

    size: int
    header_problem: str | None
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def intact(self) -> list[Chunk]:
        return [c for c in self.chunks if c.intact]


@dataclass(slots=True)
class Loss:
    """Records that cannot be read: ``count`` of them (None: the number is unknown), the
    chunks they were in, and the reject reason."""

    count: int | None
    reason: str
    chunks: list[Chunk]


def _u32(b: bytes, at: int) -> int:
    return int(struct.unpack_from("<I", b, at)[0])


def _u64(b: bytes, at: int) -> int:
    return int(struct.unpack_from("<Q", b, at)[0])


def _file_header_problem(head: bytes) -> str | None:
    if len(head) < FILE_HEADER:
        return f"the file header is cut ({len(head):,} of {FILE_HEADER:,} bytes)"
    if not head.startswith(FILE_MAGIC):
        return "the file header has no ElfFile signature"
    stored, computed = _u32(head, 124), zlib.crc32(head[:120])
    if stored != computed:
        return f"file header checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})"
    return None


def _check_chunk(chunk: Chunk, head: bytes, fh: BinaryIO) -> None:
    """Fill in the record range and the problem of a chunk that has a signature."""
    if chunk.size < CHUNK_HEADER:
        chunk.problem = (f"the file ends {chunk.size:,} bytes into the chunk, inside its "
                         f"{CHUNK_HEADER}-byte header")
        if len(head) >= 40:  # the record range is there, if unverifiable: use it if sane
            first, last, first_id, last_id = struct.unpack_from("<QQQQ", head, 8)
            if 1 <= first <= last and last - first < MAX_RECORDS_PER_CHUNK \
                    and last_id - first_id == last - first:
                chunk.first, chunk.last, chunk.first_id, chunk.last_id = (
                    first, last, first_id, last_id)
        return
    first, last, first_id, last_id = struct.unpack_from("<QQQQ", head, 8)
    free, data_crc, flags = _u32(head, 48), _u32(head, 52), _u32(head, 120)
    header_crc = zlib.crc32(head[128:CHUNK_HEADER], zlib.crc32(head[:120]))
    checked = not flags & _NO_CRC32
    if checked and header_crc != _u32(head, 124):
        chunk.problem = (f"chunk header checksum mismatch (stored 0x{_u32(head, 124):08x}, "
                         f"computed 0x{header_crc:08x})")
        return
    empty = free == CHUNK_HEADER
    if not (CHUNK_HEADER <= free <= CHUNK) or (not empty and not (
            1 <= first <= last and last - first < MAX_RECORDS_PER_CHUNK
            and last_id - first_id == last - first)):
        chunk.problem = (f"the chunk header is inconsistent (records {first}–{last}, ids "
                         f"{first_id}–{last_id}, free space at {free})")
        return
    if not empty:
        chunk.first, chunk.last, chunk.first_id, chunk.last_id = first, last, first_id, last_id
    if free > chunk.size:
        chunk.problem = (f"the file ends {chunk.size:,} bytes into the chunk, before the end "
                         f"of its records at {free:,}")
        if not empty:
            fh.seek(chunk.offset)
            chunk.salvage = recovered(chunk, fh.read(chunk.size))
        return
    if checked:
        fh.seek(chunk.offset + CHUNK_HEADER)
        computed = zlib.crc32(fh.read(free - CHUNK_HEADER))
        if computed != data_crc:
            chunk.problem = (f"chunk data checksum mismatch (stored 0x{data_crc:08x}, "
                             f"computed 0x{computed:08x})")


RECORD_MAGIC = b"**\x00\x00"
RECORD_HEADER = 24  # signature, size, EventRecordID, time; Binary XML follows
_MIN_RECORD = RECORD_HEADER + 4 + 1  # the header, at least a byte of Binary XML, the size copy


def complete_records(data: bytes, first_id: int, last_id: int) -> tuple[int, int, int] | None:
    """The records that lie whole in the bytes a cut chunk still has (``data``, from the
    chunk's start): walked from offset 512 by their framing — the ``**\\0\\0`` signature,
    the size, the size copy in the last 4 bytes and the EventRecordID, which must be the
    next in the chunk's range. The walk stops at the first record that fails, or whose end
    is past the cut. Returns (how many, the offset of the last one, the end of the last
    one), or None when not one is whole."""
    at, count, last_at = CHUNK_HEADER, 0, 0
    while at + _MIN_RECORD <= len(data) and first_id + count <= last_id:
        if data[at:at + 4] != RECORD_MAGIC:
            break
        size, record_id = struct.unpack_from("<IQ", data, at + 4)
        if size < _MIN_RECORD or at + size > len(data) or record_id != first_id + count \
                or _u32(data, at + size - 4) != size:
            break
        count, last_at, at = count + 1, at, at + size
    return (count, last_at, at) if count else None


def recovered(chunk: Chunk, data: bytes) -> Chunk | None:
    """The complete records of a cut chunk (``data``: the bytes of it the file holds) as a
    chunk of their own, or None when not one is whole. Its header names only them (last
    record number and id, the last record's offset, the free space at its end, both
    checksums recomputed) and :class:`Spliced` reads zeros after them, so the parser reads
    exactly these records."""
    assert chunk.first is not None and chunk.first_id is not None and chunk.last_id is not None
    found = complete_records(data, chunk.first_id, chunk.last_id)
    if found is None:
        return None
    count, last_at, end = found
    last, last_id = chunk.first + count - 1, chunk.first_id + count - 1
    head = bytearray(data[:CHUNK_HEADER])
    struct.pack_into("<Q", head, 16, last)
    struct.pack_into("<Q", head, 32, last_id)
    struct.pack_into("<III", head, 44, last_at, end, zlib.crc32(data[CHUNK_HEADER:end]))
    struct.pack_into("<I", head, 124, zlib.crc32(head[128:], zlib.crc32(head[:120])))
    return Chunk(chunk.number, chunk.offset, end, True, chunk.first, last, chunk.first_id,
                 last_id, header=bytes(head))


def scan(fh: BinaryIO) -> Layout:
    """Read the file header and every chunk header of a seekable EVTX file; check them."""
    fh.seek(0, io.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    layout = Layout(size, _file_header_problem(fh.read(FILE_HEADER)))
    for number, offset in enumerate(range(FILE_HEADER, size, CHUNK)):
        fh.seek(offset)
        head = fh.read(CHUNK_HEADER)
        chunk = Chunk(number, offset, min(CHUNK, size - offset), head.startswith(CHUNK_MAGIC))
        if chunk.signature:
            _check_chunk(chunk, head, fh)
        else:
            chunk.problem = "no chunk header (no ElfChnk signature: unused or overwritten space)"
        layout.chunks.append(chunk)
    return layout


def where(chunks: list[Chunk]) -> str:
    """``EVTX chunk 3 at offset 0x31000`` or ``EVTX chunks 3–4 at offsets 0x31000–0x41000``."""
    a, b = chunks[0], chunks[-1]
    if a is b:
        return f"EVTX chunk {a.number} at offset 0x{a.offset:x}"
    return f"EVTX chunks {a.number}–{b.number} at offsets 0x{a.offset:x}–0x{b.offset:x}"


def _records(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first}–{last}"


def _problems(chunks: list[Chunk]) -> str:
    seen: list[str] = []
    for c in chunks:
        if c.problem and c.problem not in seen:
            seen.append(c.problem)
    return "; ".join(seen)


def _loss(chunks: list[Chunk], first: int | None, last: int | None, note: str = "") -> Loss:
    what = (_records(first, last) if first is not None and last is not None
            else "an unknown number of records")
    count = None if first is None or last is None else last - first + 1
    return Loss(count, f"{where(chunks)}: {what} unreadable: {_problems(chunks)}{note}",
                chunks)


def plan(layout: Layout) -> tuple[list[list[Chunk] | Loss], list[Chunk]]:
    """The parts of the file in order — runs of intact chunks to parse and the losses
    between them — and the signature-less chunks that lost nothing (slack, a warning).

    A damaged chunk whose header survived loses the records its header names, but one cut
    inside its records loses only those after its last complete one: its complete records
    are parsed (its ``salvage``, in a run like an intact chunk). The records
    of signature-less chunks and of chunks with a damaged header are the record numbers
    missing between the nearest chunks around them that name theirs; numbers that do not
    rise (a log that wrapped around) or more than the chunks could hold leave the count
    unknown: one reject for the whole stretch. Signature-less chunks after the last chunk
    that names its records, or where no number is missing, are slack.
    """
    chunks = layout.chunks
    parts: list[list[Chunk] | Loss] = []
    slack: list[Chunk] = []

    def parse(c: Chunk) -> None:
        if parts and isinstance(parts[-1], list):
            parts[-1].append(c)
        else:
            parts.append([c])

    i = 0
    while i < len(chunks):
        c = chunks[i]
        if c.intact:
            parse(c)
            i += 1
            continue
        if c.known:  # damaged, but its header names its records
            assert c.first is not None and c.last is not None
            if c.salvage is not None:  # cut: the records before the cut are read
                assert c.salvage.last is not None
                parse(c.salvage)
                if c.salvage.last < c.last:
                    parts.append(_loss([c], c.salvage.last + 1, c.last, (
                        f" ({_records(c.first, c.salvage.last)}, complete before the cut, "
                        "were read)")))
            else:
                parts.append(_loss([c], c.first, c.last))
            i += 1
            continue
        j = i  # a stretch of chunks that do not name their records
        while j < len(chunks) and not chunks[j].intact and not chunks[j].known:
            j += 1
        stretch = chunks[i:j]
        before = next((x for x in reversed(chunks[:i]) if x.known), None)
        after = next((x for x in chunks[j:] if x.known), None)
        low = 1 if before is None else (before.last or 0) + 1
        if after is None or after.first is None:
            if any(x.signature for x in stretch):  # something was there: say so
                parts.append(_loss(stretch, None, None))
            else:
                slack.extend(stretch)
        else:
            missing = after.first - low
            if missing == 0 and not any(x.signature for x in stretch):
                slack.extend(stretch)
            elif 0 < missing <= MAX_RECORDS_PER_CHUNK * len(stretch):
                parts.append(_loss(stretch, low, after.first - 1))
            else:  # wrapped numbering or implausible: the count is unknown
                parts.append(_loss(stretch, None, None))
        i = j
    return parts, slack


def file_header(chunks: int, next_id: int) -> bytes:
    """A consistent file header for ``chunks`` chunks (flags clear, checksum set)."""
    head = bytearray(FILE_HEADER)
    head[:8] = FILE_MAGIC
    struct.pack_into("<QQQIHHHH", head, 8, 0, max(chunks - 1, 0), next_id, 128, 1, 3,
                     FILE_HEADER, chunks)
    struct.pack_into("<I", head, 124, zlib.crc32(head[:120]))
    return bytes(head)


class Spliced(io.RawIOBase):
    """A read-only file made of a new file header followed by chunks of another file (in
    their order), each padded with zeros to 64 KiB if the file ends inside its unused
    space. A recovered chunk (the complete records of a cut one) is read with its rewritten
    header and zeros from the end of its last complete record. Reads go to the underlying
    file: memory stays flat whatever the run's size."""

    def __init__(self, fh: BinaryIO, chunks: list[Chunk]) -> None:
        super().__init__()
        self._fh = fh
        self._chunks = chunks
        self._head = file_header(len(chunks), (chunks[-1].last_id or 0) + 1)
        self._size = FILE_HEADER + CHUNK * len(chunks)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            pos = self._pos
            if pos < FILE_HEADER:
                piece = self._head[pos:pos + len(view) - done]
            else:
                k, within = divmod(pos - FILE_HEADER, CHUNK)
                chunk = self._chunks[k]
                want = min(len(view) - done, CHUNK - within)
                if chunk.header is not None and within < CHUNK_HEADER:
                    piece = chunk.header[within:within + want]
                elif within < chunk.size:
                    self._fh.seek(chunk.offset + within)
                    piece = self._fh.read(min(want, chunk.size - within))
                    if not piece:  # the file shrank under us: zeros rather than a loop
                        piece = bytes(want)
                else:
                    piece = bytes(min(want, CHUNK - within))
            view[done:done + len(piece)] = piece
            done += len(piece)
            self._pos += len(piece)
        return done
