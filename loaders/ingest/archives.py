"""Archives (``.zip``, ``.tar``, ``.tar.gz``) read member by member, safely.

Each regular member is copied, under a generated name, into a private temporary directory
with a size cap, handed to the caller, and deleted. Member names never become filesystem
paths, so ``../`` or absolute names cannot write outside the temp dir; they are refused with
a message anyway, as are links, devices, encrypted members and decompression bombs.

Nothing an archive's headers claim is trusted for the caps: the member cap, the total cap
and the compression ratio are checked on the bytes actually decompressed, before each block
is written, against the compressed bytes actually consumed (a zip member is inflated from the
archive's own bytes, never past the end of the file; a ``.tar.gz`` is gunzipped here and its
position in the compressed file counted). A header that claims too much only refuses a
member early. One budget (:attr:`ArchiveLimits.max_total_bytes`) covers a top-level input
and every archive nested in it, each byte counted once.

A damaged archive never raises: a damaged zip member is one failed member (the others are
read), a damaged tar is one failed outcome for the archive that names the member where it
broke, after the members read before the damage were handed over.

A zip whose central directory cannot be read (a copy that stopped early) is read from its
local headers, one after the other from the start of the file: each stored or deflated
member is delimited by its own data (the end of its deflate stream, or the stored size of
its local header), then its data descriptor if it has one, and read through the same capped
path as any member (CRC-32 checked when its local header or descriptor gives it). What
cannot be delimited (stored with a data descriptor; encrypted or another method with a data
descriptor) is refused and ends the walk; the member the file ends inside fails; the archive
is one failed outcome saying how many members were recovered and where the walk ended.
"""

from __future__ import annotations

import io
import itertools
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, Self, cast

from loaders.base import ArchiveLimits
from loaders.parsing.inputs import InputFile

__all__ = ["ArchiveError", "ArchiveLimits", "Refused", "archive_kind", "iter_archive",
           "sniff_kind"]

_CHUNK = 1024 * 1024  # decompressed bytes per block written
_DEFAULT_LIMITS = ArchiveLimits()
_SEQ = itertools.count(1)  # members' file names, unique in the process
_IN_CHUNK = 64 * 1024  # compressed bytes fed to zlib at once: keeps the consumed count exact


class ArchiveError(Exception):
    """A member was refused (a cap, the ratio); the message says why."""


class _Damage(Exception):
    """The archive's data is damaged or truncated; the message says how."""


def archive_kind(head: bytes) -> str | None:
    """``zip`` or ``tar`` from the (decompressed) head bytes, else None."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def _unsafe_name(name: str) -> str | None:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "absolute path"
    if ".." in norm.split("/"):
        return "path traversal (..)"
    return None


@dataclass(frozen=True)
class Refused:
    """An archive member (or a whole archive) that was not extracted, with the reason.

    ``status`` is ``refused`` for an unsafe member or a cap, ``failed`` for damaged data;
    ``size`` is the archive's size when the outcome is the archive's own.
    """

    display: str
    reason: str
    status: Literal["refused", "failed"] = "refused"
    size: int = 0


class _Budget:
    """Bytes still allowed out of one top-level input (its nested archives included)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total

    def refusal(self) -> str:
        return (f"refused member: the total size cap ({self.total:,} bytes for an input and "
                "the archives in it) is reached")


class _Data:
    """A member's bytes as they are decompressed, and the compressed bytes consumed so far."""

    consumed: int = 0

    def read(self, n: int) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class _Member:
    name: str
    size: int  # as the header declares it
    refusal: str | None
    archive: _Zip | _Tar
    info: Any
    read: int = 0  # bytes of its data read so far

    def open(self) -> _Data:
        return self.archive.open(self)


def _copy_capped(src: _Data, target: Path, limits: ArchiveLimits, budget: _Budget) -> int:
    """Copy a member's data into ``target``; every cap is checked before a block is written,
    so the file never holds more than the caps allow, whatever the headers said."""
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while True:
            block = src.read(_CHUNK)
            if not block:
                return written
            after = written + len(block)
            if after > limits.max_member_bytes:
                raise ArchiveError(f"refused member: more than {limits.max_member_bytes:,} "
                                   "bytes (the member size cap)")
            if len(block) > budget.left:
                raise ArchiveError(budget.refusal())
            if after > limits.ratio_floor and after > src.consumed * limits.max_ratio:
                raise ArchiveError(
                    f"refused member: compression ratio above {limits.max_ratio}:1 "
                    f"({after:,} bytes from {src.consumed:,} compressed; decompression bomb?)"
                )
            out.write(block)
            written = after
            budget.left -= len(block)


def iter_archive(
    file: InputFile, kind: str, tmpdir: Path, limits: ArchiveLimits = _DEFAULT_LIMITS,
    depth: int = 1, budget: _Budget | None = None,
) -> Iterator[InputFile | Refused]:
    """Extract an archive's regular members one at a time into ``tmpdir``.

    Each yielded :class:`InputFile` is deleted when the iteration moves on, so only one
    member (and the archives it is nested in) is on disk at a time. Nested archives are
    opened up to ``limits.max_depth`` and share the top-level input's budget. Never raises
    for bad data: a damaged archive or member is yielded as a ``failed`` :class:`Refused`.

    A member's ``display`` is ``archive!name``, and ``archive!name (#n)`` for the n-th member
    of that name (an archive can hold several: they are distinct inputs); its ``member`` is
    the archive's chain extended by ``(name, n)``, counted over every member the archive
    lists, refused ones included, so the same archive always gives the same chains (what
    :mod:`loaders.ingest.rehash` relies on); its ``resolved`` is the outermost archive's.
    """
    if budget is None:
        budget = _Budget(limits.max_total_bytes)
    archive: _Zip | _Tar = _Zip(file, budget) if kind == "zip" else _Tar(file, budget)
    label = archive.label

    def damaged(where: str, why: str) -> Refused:
        return Refused(file.display, f"damaged {label} archive{where}: {why}", "failed",
                       file.size)

    try:
        archive.start()
    except _Damage as exc:
        archive.close()
        yield damaged("", str(exc))
        return
    last: str | None = None
    seen: dict[str, int] = {}  # members per name so far, refused ones included
    try:
        for m in archive.members():
            last = m.name
            occurrence = seen[m.name] = seen.get(m.name, 0) + 1
            # the second member of a name is another input: its display says so
            display = f"{file.display}!{m.name}" + (f" (#{occurrence})" if occurrence > 1
                                                    else "")
            refusal = m.refusal or _unsafe_name(m.name)
            if refusal:
                yield Refused(display, refusal if m.refusal else f"refused member: {refusal}")
                continue
            if m.size > limits.max_member_bytes:
                yield Refused(display, f"refused member: its header declares {m.size:,} "
                                       f"bytes, more than the member size cap "
                                       f"({limits.max_member_bytes:,})")
                continue
            if m.size > budget.left:
                yield Refused(display, budget.refusal())
                continue
            # a name no other member of the run has: members wait for a worker on disk
            # (renamed by the caller) while the next ones, of any archive, are extracted
            target = tmpdir / f"member-{depth}-{next(_SEQ):08d}"
            try:
                size = _copy_capped(m.open(), target, limits, budget)
            except ArchiveError as exc:
                target.unlink(missing_ok=True)
                yield Refused(display, str(exc))
                continue
            except _Damage as exc:
                target.unlink(missing_ok=True)
                if isinstance(archive, _Tar):  # a tar stream cannot go past the damage
                    yield damaged(f" in member {m.name}", str(exc))
                    return
                yield Refused(display, f"damaged member: {exc}", "failed")
                continue
            except OSError as exc:  # the temp dir: disk full, quota
                target.unlink(missing_ok=True)
                yield Refused(display, f"cannot extract member: {exc}", "failed")
                continue
            # the outermost archive stays the resolved file; the chain says which member
            member = InputFile(target, display, size, file.mtime, file.resolved,
                               (*file.member, (m.name, occurrence)))
            nested = sniff_kind(target)
            if nested and depth < limits.max_depth:
                yield from iter_archive(member, nested, tmpdir, limits, depth + 1, budget)
            elif nested:
                yield Refused(display, f"refused member: archives nested deeper than "
                                       f"{limits.max_depth}")
            else:
                yield member
            target.unlink(missing_ok=True)
        if archive.failed:
            yield Refused(file.display, archive.failed, "failed", file.size)
        elif archive.damage:
            after = f" after member {last}" if last is not None else " before its first member"
            yield damaged(after, archive.damage)
        elif archive.stopped:
            yield Refused(file.display, archive.stopped, "refused", file.size)
    finally:
        archive.close()


# --- zip -------------------------------------------------------------------------------


class _CountingFile(io.FileIO):
    """The archive file, counting the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data or b"")
        return data or b""

    def pread(self, pos: int, n: int) -> bytes:
        self.seek(pos)
        return self.read(n)


class _Cut(_Damage):
    """The file ends inside the member's data (or its data descriptor)."""


@dataclass(frozen=True)
class _Entry:
    """Where a zip member's data is and what its headers say of it: from the central
    directory, or from its local header alone (``None``: not known before its data ends)."""

    offset: int  # of its local header
    method: int
    compress_size: int | None
    file_size: int | None
    crc: int | None
    descriptor: bool = False  # a data descriptor follows the data (flag bit 3)

    @classmethod
    def of(cls, info: zipfile.ZipInfo) -> _Entry:
        return cls(info.header_offset, info.compress_type, info.compress_size,
                   info.file_size, info.CRC)


_DESCRIPTOR_SIG = b"PK\x07\x08"


class _ZipData(_Data):
    """A stored or deflated member, read from the archive's bytes: the data ends where its
    deflate stream ends (or, stored, after its declared size), never past the end of the
    file; more data than its header declares, a short stream or a CRC-32 mismatch is damage.
    After a data descriptor member's data, the descriptor is read and must match it.
    ``end`` is the offset after the member (its descriptor included) once its data ended."""

    def __init__(self, fh: _CountingFile, entry: _Entry,
                 cut: str = "unexpected end of data") -> None:
        self._fh = fh
        self._e = entry
        self._cut = cut
        self.end: int | None = None
        self.done = False  # every byte read and verified
        self._error: _Damage | None = None  # a damage raised once is raised again
        size = os.fstat(fh.fileno()).st_size
        local = fh.pread(entry.offset, 30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise _Damage(f"no local header at offset {entry.offset:,}")
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        self._start = self._pos = entry.offset + 30 + name_len + extra_len
        self._size = size
        self._left = max(0, size - self._pos)  # compressed bytes the file still holds
        if entry.method == zipfile.ZIP_STORED:
            assert entry.compress_size is not None  # stored needs its size (refused if not)
            if entry.compress_size > self._left:
                raise _Cut(cut)
            self._left = entry.compress_size
        self._d = zlib.decompressobj(-15) if entry.method == zipfile.ZIP_DEFLATED else None
        self._in = b""
        self._out = 0
        self._crc = 0

    def _feed(self) -> bytes:
        if not self._in and self._left:
            self._in = self._fh.pread(self._pos, min(_IN_CHUNK, self._left))
            self._pos += len(self._in)
            self._left = self._left - len(self._in) if self._in else 0
        return self._in

    def read(self, n: int) -> bytes:
        if self._error is not None:
            raise self._error
        try:
            return self._read(n)
        except _Damage as exc:
            self._error = exc
            raise

    def _read(self, n: int) -> bytes:
        while True:
            data = self._feed()
            if self._d is None:  # stored
                if not data and self._out < (self._e.compress_size or 0):
                    raise _Cut(self._cut)
                out, self._in = data[:n], data[n:]
                self.consumed += len(out)
            elif self._d.eof:
                out = b""
            else:
                try:
                    out = self._d.decompress(data, n)
                except zlib.error as exc:
                    raise _Damage(f"compressed data is damaged ({exc})") from None
                rest = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
                self.consumed += len(data) - len(rest)
                self._in = b"" if self._d.eof else rest
                if not out and not data and not self._d.eof:
                    raise _Cut(self._cut)
            if out:
                self._out += len(out)
                if self._e.file_size is not None and self._out > self._e.file_size:
                    raise _Damage(f"more data than the {self._e.file_size:,} bytes its "
                                  "header declares")
                self._crc = zlib.crc32(out, self._crc)
                return out
            if self._d is not None and not self._d.eof:
                continue
            if self.done:
                return b""
            crc, size = self._e.crc, self._e.file_size
            self.end = self._start + self.consumed
            if self._e.descriptor:
                crc, size = self._descriptor()
            if size is not None and self._out != size:
                raise _Damage(f"{self._out:,} bytes, its header declares {size:,}")
            if crc is not None and self._crc != crc:
                raise _Damage("CRC-32 mismatch (the data is corrupted)")
            self.done = True
            return b""

    def _descriptor(self) -> tuple[int, int]:
        """The CRC-32 and size from the data descriptor after the data, which must record the
        sizes actually read (with or without its signature, 32- or 64-bit sizes); ``end``
        moves past it."""
        assert self.end is not None
        raw = self._fh.pread(self.end, 24)
        forms = [(4, 4), (4, 8)] if raw[:4] == _DESCRIPTOR_SIG else []
        forms += [(0, 4), (0, 8)]
        short = False
        for sig, width in forms:
            need = sig + 4 + 2 * width
            if len(raw) < need:
                short = True
                continue
            crc = int.from_bytes(raw[sig: sig + 4], "little")
            csize = int.from_bytes(raw[sig + 4: sig + 4 + width], "little")
            usize = int.from_bytes(raw[sig + 4 + width: need], "little")
            mask = (1 << (8 * width)) - 1
            if csize == self.consumed & mask and usize == self._out & mask:
                self.end += need
                return crc, self._out
        self.end = None
        if short:
            raise _Cut(self._cut)
        raise _Damage("its data descriptor does not match its data")


class _ZipOther(_Data):
    """A member in another compression method (bzip2, lzma), read by :mod:`zipfile`
    (which stops at the declared size and checks the CRC); the compressed bytes consumed are
    those read from the file, at most one read ahead."""

    def __init__(self, fh: _CountingFile, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
        self._fh = fh
        try:
            self._src = zf.open(info)
        except NotImplementedError as exc:
            raise _Damage(str(exc)) from None
        except Exception as exc:  # zipfile raises several types for a damaged member
            raise _Damage(str(exc)) from None
        self._start = fh.bytes_read

    def read(self, n: int) -> bytes:
        try:
            out = self._src.read(min(n, _IN_CHUNK))
        except Exception as exc:  # BadZipFile (CRC), EOFError, zlib/lzma/bz2 errors
            raise _Damage(str(exc)) from None
        self.consumed = self._fh.bytes_read - self._start
        return out


_CENTRAL_SIGS = (b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06")  # directory, its end (zip64)


class _Zip:
    label = "zip"

    def __init__(self, file: InputFile, budget: _Budget) -> None:
        self.file = file
        self.budget = budget
        self.damage: str | None = None
        self.stopped: str | None = None
        self.failed: str | None = None  # the archive's own outcome, a whole message
        self._fh: _CountingFile | None = None
        self._zf: zipfile.ZipFile | None = None
        self._data: _ZipData | None = None  # the member being recovered, once opened

    def start(self) -> None:
        try:
            self._fh = _CountingFile(self.file.path, "r")
            self._zf = zipfile.ZipFile(cast(BinaryIO, self._fh))
        except Exception as exc:  # BadZipFile, OSError, ValueError...: hostile directory
            if self._fh is not None and self._fh.pread(0, 4) == b"PK\x03\x04":
                return  # members() recovers the members from their local headers
            raise _Damage(f"cannot read its central directory ({exc})") from None

    def members(self) -> Iterator[_Member]:
        if self._zf is None:
            yield from self._recover()
            return
        for info in self._zf.infolist():
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            refusal = None
            if stat.S_ISLNK(mode):
                refusal = "refused member: symbolic link"
            elif info.flag_bits & 0x1:
                refusal = "refused member: encrypted"
            yield _Member(info.filename, info.file_size, refusal, self, info)

    def _recover(self) -> Iterator[_Member]:
        """Without a central directory: the members from their local headers, one after the
        other from the start of the file, each delimited by its own data (the end of its
        deflate stream, its stored size), then its data descriptor if it has one. Ends at
        the first thing that is not a local header, and says why in ``failed``."""
        assert self._fh is not None
        fh, end, pos = self._fh, os.fstat(self._fh.fileno()).st_size, 0
        recovered, last = 0, None
        while True:
            after = f" after member {last}" if last is not None else ""
            cut_header = ("the archive ends inside its first local header" if last is None
                          else f"the archive ends inside the local header{after}")
            head = fh.pread(pos, 30)
            if not head:
                why = f"the archive ends{after}, where its central directory should be"
                break
            if head[:4] in _CENTRAL_SIGS:
                why = f"its central directory{after} is cut or damaged"
                break
            if len(head) < 30 and b"PK\x03\x04".startswith(head[:4]):
                why = cut_header
                break
            if head[:4] != b"PK\x03\x04":
                why = (f"no local header at offset {pos:,}{after} (damaged data); the rest "
                       "of the archive is not read")
                break
            flags, method = (int.from_bytes(head[i: i + 2], "little") for i in (6, 8))
            crc, csize, usize = (int.from_bytes(head[i: i + 4], "little") for i in (14, 18, 22))
            name_len, extra_len = (int.from_bytes(head[i: i + 2], "little") for i in (26, 28))
            raw = fh.pread(pos + 30, name_len + extra_len)
            if len(raw) < name_len + extra_len:
                why = cut_header
                break
            name = raw[:name_len].decode("utf-8" if flags & 0x800 else "cp437",
                                         errors="replace").split("\0")[0]
            descriptor = bool(flags & 0x8)
            if not descriptor and 0xFFFFFFFF in (csize, usize):
                usize, csize = _zip64_sizes(raw[name_len:], usize, csize)
            entry = _Entry(pos, method, None if descriptor else csize,
                           None if descriptor else usize, None if descriptor else crc,
                           descriptor)
            kind = None  # what keeps it from being read here, if anything
            if flags & 0x1:
                kind = "encrypted"
            elif method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                kind = f"compression method {method}"
            elif method == zipfile.ZIP_STORED and descriptor:
                kind = "stored with a data descriptor"
            refusal = None
            if kind == "encrypted":
                refusal = "refused member: encrypted"
            elif kind is not None:
                refusal = (f"refused member: {kind}, which cannot be read without the central "
                           "directory")
            last = name
            self._data = None
            if not name.endswith("/"):  # a directory
                yield _Member(name, entry.file_size or 0, refusal, self, entry)
            data = self._data
            if data is not None and data.done:
                recovered += 1
            if data is not None and data.end is not None:
                pos = data.end
                continue
            # not read to its end (refused, failed, a directory): find where it ends
            if not descriptor:
                start = pos + 30 + name_len + extra_len
                if start + csize > end:
                    why = f"the archive ends inside member {name}"
                    break
                pos = start + csize
                continue
            if kind is not None:
                why = (f"member {name} ({kind}) cannot be delimited without the central "
                       "directory; the rest of the archive is not read")
                break
            ended = self._skip(entry, data, name)
            if ended is not None:
                why = ended
                break
            assert self._data is not None and self._data.end is not None
            pos = self._data.end
        n = ("1 member recovered from its local header" if recovered == 1 else
             f"{recovered} members recovered from their local headers")
        self.failed = f"zip archive without its central directory (truncated?): {n}; {why}"

    def _skip(self, entry: _Entry, data: _ZipData | None, name: str) -> str | None:
        """Inflate the rest of a deflated member, to find where it ends, charging the budget
        for what is decompressed; why the walk ends, or None."""
        assert self._fh is not None
        try:
            if data is None:
                data = self._data = _ZipData(self._fh, entry, "the archive ends inside it")
            while True:
                block = data.read(_CHUNK)
                if not block:
                    break
                if len(block) > self.budget.left:
                    return (f"refused the rest of the archive after member {name}: skipping "
                            f"its data would pass the total size cap ({self.budget.total:,} "
                            "bytes)")
                self.budget.left -= len(block)
        except _Cut:
            return f"the archive ends inside member {name}"
        except _Damage as exc:
            if data is None or data.end is None:
                return f"member {name} is damaged ({exc}); the rest of the archive is not read"
        return None

    def open(self, m: _Member) -> _Data:
        assert self._fh is not None
        if isinstance(m.info, _Entry):  # recovered from its local header
            self._data = _ZipData(self._fh, m.info, "the archive ends inside it")
            return self._data
        assert self._zf is not None
        info = cast(zipfile.ZipInfo, m.info)
        if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return _ZipData(self._fh, _Entry.of(info))
        return _ZipOther(self._fh, self._zf, info)

    def close(self) -> None:
        if self._zf is not None:
            self._zf.close()
        if self._fh is not None:
            self._fh.close()


def _zip64_sizes(extra: bytes, usize: int, csize: int) -> tuple[int, int]:
    """The sizes a local header's zip64 extra field holds for those marked 0xFFFFFFFF."""
    while len(extra) >= 4:
        tag, size = int.from_bytes(extra[:2], "little"), int.from_bytes(extra[2:4], "little")
        body, extra = extra[4: 4 + size], extra[4 + size:]
        if tag == 1:
            sizes = [int.from_bytes(body[i: i + 8], "little") for i in range(0, len(body) - 7, 8)]
            if usize == 0xFFFFFFFF and sizes:
                usize = sizes.pop(0)
            if csize == 0xFFFFFFFF and sizes:
                csize = sizes.pop(0)
            break
    return usize, csize


# --- tar -------------------------------------------------------------------------------


class _TarSource:
    """The bytes of a tar archive, gunzipped when the file is gzip (several members and NUL
    padding allowed), counting the bytes of the file consumed. Where the data is damaged or
    cut it ends, as if the archive ended there, and keeps the reason in ``error``: tarfile
    then stops cleanly and every member before the damage has been read."""

    def __init__(self, fh: BinaryIO, gzipped: bool) -> None:
        self._fh = fh
        self.consumed = 0
        self.error: str | None = None
        self._d = zlib.decompressobj(31) if gzipped else None
        self._in = b""
        self._in_member = False
        self._done = False
        # compressed bytes given to zlib at once; 1 after an error, when the input is replayed
        # from before it byte by byte (zlib drops the output of a call that fails)
        self._step = _IN_CHUNK

    def _end(self, why: str | None) -> bytes:
        self.error = self.error or why
        self._done = True
        return b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = _CHUNK
        if self._done:
            return b""
        if self._d is None:
            try:
                data = self._fh.read(n)
            except OSError as exc:
                return self._end(f"cannot read: {exc}")
            self.consumed += len(data)
            return data
        while True:
            if not self._in:
                try:
                    self._in = self._fh.read(_IN_CHUNK)
                except OSError as exc:
                    return self._end(f"cannot read: {exc}")
                if not self._in:
                    return self._end("unexpected end of data" if self._in_member else None)
            if not self._in_member:  # NUL padding between or after gzip members
                data = self._in.lstrip(b"\0")
                self.consumed += len(self._in) - len(data)
                self._in = data
                if not data:
                    continue
            feed, keep = self._in[: self._step], self._in[self._step:]
            saved = self._d.copy() if self._step > 1 else None
            try:
                out = self._d.decompress(feed, n)
            except zlib.error as exc:
                if saved is not None:
                    self._d, self._step = saved, 1
                    continue
                return self._end(f"compressed data is damaged ({exc})")
            self._in_member = True
            rest = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            self.consumed += len(feed) - len(rest)
            self._in = rest + keep
            if self._d.eof:
                self._d = zlib.decompressobj(31)
                self._in_member = False
            if out:
                return out


def sniff_kind(path: Path) -> str | None:
    """:func:`archive_kind` of a file's first bytes, gunzipped if it is gzip, the bytes
    before any damage kept (a small ``.tar.gz`` with a bad CRC is still seen as a tar).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
        fh.seek(0)
        src = _TarSource(cast(BinaryIO, fh), gzipped)
        head = b""
        while len(head) < 1024:
            block = src.read(1024 - len(head))
            if not block:
                break
            head += block
    return archive_kind(head)


class _TarFile(tarfile.TarFile):
    header_error: str | None = None  # why the member headers ended, if not at the end marker


_HEADER_END = {  # tarfile's private header errors that end the member list, by name
    "EmptyHeaderError": "unexpected end of data (no end-of-archive marker)",
    "TruncatedHeaderError": "unexpected end of data (cut in a member header)",
}


class _TarInfo(tarfile.TarInfo):
    """Keeps why tarfile stopped reading headers: it ends silently at a cut or invalid
    header past the first one, which we report as damage."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as exc:
            name = type(exc).__name__
            if name != "EOFHeaderError" and isinstance(tarfile_, _TarFile):  # EOF: a zero
                # block, the end-of-archive marker
                tarfile_.header_error = _HEADER_END.get(name, f"invalid member header ({exc})")
            raise


class _TarData(_Data):
    def __init__(self, src: _TarSource, fh: BinaryIO, m: _Member) -> None:
        self._src = src
        self._fh = fh
        self._m = m
        self._start = src.consumed

    def read(self, n: int) -> bytes:
        try:
            out = self._fh.read(n)
        except Exception as exc:  # tarfile.ReadError "unexpected end of data", ...
            raise _Damage(self._src.error or str(exc)) from None
        self.consumed = self._src.consumed - self._start
        self._m.read += len(out)
        return out


class _Tar:
    def __init__(self, file: InputFile, budget: _Budget) -> None:
        self.file = file
        self.budget = budget
        self.damage: str | None = None
        self.stopped: str | None = None
        self.failed: str | None = None  # never set: a damaged tar is ``damage``
        self._fh: BinaryIO | None = None
        self._tf: _TarFile | None = None
        self._src: _TarSource | None = None
        try:
            with open(file.path, "rb") as fh:
                self.gzipped = fh.read(2) == b"\x1f\x8b"
        except OSError:
            self.gzipped = False  # start() reports it
        self.label = "tar.gz" if self.gzipped else "tar"

    def start(self) -> None:
        try:
            self._fh = open(self.file.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise _Damage(f"cannot read: {exc}") from None
        self._src = _TarSource(self._fh, self.gzipped)
        try:
            tf = _TarFile.open(fileobj=cast(Any, self._src), mode="r|", bufsize=_CHUNK,
                               tarinfo=_TarInfo)
        except Exception as exc:  # ReadError, EOFError, ...: not a readable tar
            raise _Damage(self._src.error or str(exc)) from None
        self._tf = tf

    def members(self) -> Iterator[_Member]:
        assert self._tf is not None and self._src is not None
        it = iter(self._tf)
        previous: _Member | None = None
        while True:
            if previous is not None:
                # moving on decompresses what was not read of the previous member
                unread = max(0, previous.size - previous.read)
                if unread > self.budget.left:
                    self.stopped = (f"refused the rest of the archive after member "
                                    f"{previous.name}: skipping its {unread:,} unread bytes "
                                    f"would pass the total size cap "
                                    f"({self.budget.total:,} bytes)")
                    return
                self.budget.left -= unread
            try:
                info = next(it)
            except StopIteration:
                break
            except Exception as exc:  # tarfile ReadError (cut data, bad subsequent header)
                self.damage = self._src.error or str(exc)
                return
            refusal = None
            if info.issym() or info.islnk():
                refusal = "refused member: link"
            elif not info.isreg():
                refusal = "refused member: not a regular file"
            previous = _Member(info.name, info.size, refusal, self, info)
            yield previous
        if not self._src.error and not self._tf.header_error:
            # read what follows the end marker (padding, the gzip trailer: its CRC-32 and
            # length are checked), within a bound: data appended there is not the archive's
            drained = 0
            while drained < 16 * _CHUNK:
                block = self._src.read(_CHUNK)
                if not block:
                    break
                drained += len(block)
        self.damage = self._src.error or self._tf.header_error

    def open(self, m: _Member) -> _Data:
        assert self._tf is not None and self._src is not None
        try:
            fh = self._tf.extractfile(cast(tarfile.TarInfo, m.info))
        except Exception as exc:
            raise _Damage(self._src.error or str(exc)) from None
        assert fh is not None  # a regular member
        return _TarData(self._src, cast(BinaryIO, fh), m)

    def close(self) -> None:
        if self._tf is not None:
            self._tf.close()
        if self._fh is not None:
            self._fh.close()
