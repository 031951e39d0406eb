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
    """
    if budget is None:
        budget = _Budget(limits.max_total_bytes)
    archive: _Zip | _Tar = _Zip(file) if kind == "zip" else _Tar(file, budget)
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
    try:
        for m in archive.members():
            last = m.name
            display = f"{file.display}!{m.name}"
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
            member = InputFile(target, display, size, file.mtime)
            nested = sniff_kind(target)
            if nested and depth < limits.max_depth:
                yield from iter_archive(member, nested, tmpdir, limits, depth + 1, budget)
            elif nested:
                yield Refused(display, f"refused member: archives nested deeper than "
                                       f"{limits.max_depth}")
            else:
                yield member
            target.unlink(missing_ok=True)
        if archive.damage:
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


class _ZipData(_Data):
    """A stored or deflated member, read from the archive's bytes: the data ends where its
    deflate stream ends (or, stored, after its declared size), never past the end of the
    file; more data than the central directory declares, a short stream or a CRC-32 mismatch
    is damage."""

    def __init__(self, fh: _CountingFile, info: zipfile.ZipInfo) -> None:
        self._fh = fh
        self._info = info
        end = os.fstat(fh.fileno()).st_size
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise _Damage(f"no local header at offset {info.header_offset:,}")
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        self._pos = info.header_offset + 30 + name_len + extra_len
        self._left = max(0, end - self._pos)  # compressed bytes the file still holds
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size > self._left:
                raise _Damage("unexpected end of data")
            self._left = info.compress_size
        self._d = (zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED
                   else None)
        self._in = b""
        self._out = 0
        self._crc = 0

    def _feed(self) -> bytes:
        if not self._in and self._left:
            self._fh.seek(self._pos)
            self._in = self._fh.read(min(_IN_CHUNK, self._left))
            self._pos += len(self._in)
            self._left = self._left - len(self._in) if self._in else 0
        return self._in

    def read(self, n: int) -> bytes:
        while True:
            data = self._feed()
            if self._d is None:  # stored
                if not data and self._out < self._info.compress_size:
                    raise _Damage("unexpected end of data")
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
                    raise _Damage("unexpected end of data")
            if out:
                self._out += len(out)
                if self._out > self._info.file_size:
                    raise _Damage(f"more data than the {self._info.file_size:,} bytes its "
                                  "header declares")
                self._crc = zlib.crc32(out, self._crc)
                return out
            if self._d is not None and not self._d.eof:
                continue
            if self._out != self._info.file_size:
                raise _Damage(f"{self._out:,} bytes, its header declares "
                              f"{self._info.file_size:,}")
            if self._crc != self._info.CRC:
                raise _Damage("CRC-32 mismatch (the data is corrupted)")
            return b""


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


class _Zip:
    label = "zip"

    def __init__(self, file: InputFile) -> None:
        self.file = file
        self.damage: str | None = None
        self.stopped: str | None = None
        self._fh: _CountingFile | None = None
        self._zf: zipfile.ZipFile | None = None

    def start(self) -> None:
        try:
            self._fh = _CountingFile(self.file.path, "r")
            self._zf = zipfile.ZipFile(cast(BinaryIO, self._fh))
        except Exception as exc:  # BadZipFile, OSError, ValueError...: hostile directory
            raise _Damage(f"cannot read its central directory ({exc})") from None

    def members(self) -> Iterator[_Member]:
        assert self._zf is not None
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

    def open(self, m: _Member) -> _Data:
        assert self._fh is not None and self._zf is not None
        info = cast(zipfile.ZipInfo, m.info)
        if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return _ZipData(self._fh, info)
        return _ZipOther(self._fh, self._zf, info)

    def close(self) -> None:
        if self._zf is not None:
            self._zf.close()
        if self._fh is not None:
            self._fh.close()


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
