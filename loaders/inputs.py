"""Opening evidence files: transparent gzip, text decoding, bounded lines, safe archives.

Inputs are only ever opened for reading. Archives (``.zip``, ``.tar``, ``.tar.gz``) are read
member by member: each regular member is copied, under a generated name, into a private
temporary directory with a size cap, handed to the caller, and deleted. Member names never
become filesystem paths, so ``../`` or absolute names cannot write outside the temp dir.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

HEAD_BYTES = 64 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps that keep a hostile archive from filling the disk.

    Attributes:
        max_member_bytes: largest uncompressed member accepted.
        max_total_bytes: largest sum of members taken from one archive.
        max_ratio: compression ratio beyond which (past ``ratio_floor`` bytes) a member is
            treated as a decompression bomb.
        ratio_floor: members smaller than this are never ratio-checked.
        max_depth: how deep archives nested in archives are opened.
    """

    max_member_bytes: int = 8 * 1024**3
    max_total_bytes: int = 32 * 1024**3
    max_ratio: int = 250
    ratio_floor: int = 64 * 1024**2
    max_depth: int = 3


class ArchiveError(Exception):
    """A member, or a whole archive, was refused; the message says why."""


@dataclass(frozen=True)
class InputFile:
    """One evidence file to load.

    Attributes:
        path: where the bytes are on disk (a temp copy for archive members).
        display: the name recorded as ``source_file``: the path given, or ``archive!member``.
        size: size on disk in bytes.
        mtime: modification time of the original file (epoch seconds), for year inference.
    """

    path: Path
    display: str
    size: int
    mtime: float


def input_file(path: str | os.PathLike[str], display: str | None = None) -> InputFile:
    """Describe a file on disk as an :class:`InputFile`."""
    p = Path(path)
    st = p.stat()
    return InputFile(p, display if display is not None else str(p), st.st_size, st.st_mtime)


class _Counting(io.RawIOBase):
    """Counts bytes read from the underlying file and reports them for progress bars."""

    def __init__(self, raw: Any, report: Callable[[int], None]) -> None:
        self._raw = raw
        self._report = report
        self._pending = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._raw.readinto(b)
        self._pending += n or 0
        if self._pending >= 4 * _CHUNK or not n:
            self._report(self._pending)
            self._pending = 0
        return n or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Gunzip(io.RawIOBase):
    """Streaming gzip decompression (multi-member, NUL padding allowed) that ends, instead
    of raising, where the data is damaged or truncated, keeping everything decoded before,
    and reports the problem once through ``on_error``."""

    def __init__(self, raw: Any, on_error: Callable[[str], None]) -> None:
        self._raw = raw
        self._on_error = on_error
        self._d = zlib.decompressobj(31)
        self._carry = b""
        self._in_member = False
        self._done = False
        self._total = 0

    def readable(self) -> bool:
        return True

    def _fail(self, why: str) -> int:
        self._on_error(f"compressed data {why} after {self._total:,} decompressed bytes; "
                       "the rest of the file was not read")
        self._done = True
        return 0

    def _next_input(self) -> bytes:
        if self._d.unconsumed_tail:
            return self._d.unconsumed_tail
        if self._carry:
            data, self._carry = self._carry, b""
            return data
        return bytes(self._raw.read(_CHUNK))

    def readinto(self, b: Any) -> int:
        while not self._done:
            data = self._next_input()
            if not data:
                self._done = True
                return self._fail("is truncated") if self._in_member else 0
            if not self._in_member and not data.strip(b"\0"):
                continue  # padding between or after members
            try:
                out = self._d.decompress(data, len(b))
            except zlib.error as exc:
                return self._fail(f"is damaged ({exc})")
            self._in_member = True
            if self._d.eof:
                self._carry, self._in_member = self._d.unused_data, False
                self._d = zlib.decompressobj(31)
            if out:
                b[: len(out)] = out
                self._total += len(out)
                return len(out)
        return 0

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_binary(
    path: Path, progress: Callable[[int], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> BinaryIO:
    """Open a file read-only, decompressing gzip transparently (detected by magic bytes).

    Args:
        path: the file.
        progress: called with the number of (compressed) bytes read, every few MB.
        on_error: called once if the compressed stream is damaged; the stream then ends
            there instead of raising.
    """
    raw: Any = open(path, "rb")  # noqa: SIM115 - the caller closes it
    if progress is not None:
        raw = io.BufferedReader(_Counting(raw, progress), buffer_size=_CHUNK)
    if raw.peek(2)[:2] == b"\x1f\x8b":
        gunzip = _Gunzip(raw, on_error or (lambda message: None))
        return cast(BinaryIO, io.BufferedReader(gunzip, buffer_size=_CHUNK))
    return cast(BinaryIO, raw)


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    """The first ``n`` bytes of the (decompressed) content, for format sniffing."""
    try:
        with open_binary(path) as fh:
            return fh.read(n)
    except (OSError, EOFError):
        with open(path, "rb") as fh:
            return fh.read(n)


def detect_encoding(head: bytes) -> str:
    """``utf-16`` by BOM, ``utf-16-le``/``-be`` when text starts with ASCII/NUL pairs (no BOM),
    else ``utf-8``. Binary formats (EVTX, Parquet) do not match: they start with magic bytes.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    start = head[:8]
    if len(start) == 8:
        if all(0x09 <= b < 0x7F for b in start[0::2]) and not any(start[1::2]):
            return "utf-16-le"
        if all(0x09 <= b < 0x7F for b in start[1::2]) and not any(start[0::2]):
            return "utf-16-be"
    return "utf-8"


def sniff_head(head: bytes) -> bytes:
    """The head as loaders' ``sniff`` sees it: UTF-16 text transcoded to UTF-8, BOM removed;
    any other bytes unchanged (binary formats keep their magic)."""
    if detect_encoding(head) != "utf-8":
        return text_head(head).encode("utf-8")
    return head.removeprefix(codecs.BOM_UTF8)


def text_head(head: bytes) -> str:
    """The sniffing head as text: BOM removed, UTF-16 decoded, bad bytes replaced."""
    enc = detect_encoding(head)
    if enc == "utf-8":
        return head.removeprefix(codecs.BOM_UTF8).decode("utf-8", "replace")
    return head.decode(enc, "replace").lstrip("\ufeff")


@dataclass(slots=True)
class Line:
    """One line of text input.

    Attributes:
        number: 1-based line number.
        text: the line without its terminator (``\\n`` or ``\\r\\n``); None when too long.
        warning: set when the bytes were not valid in the file's encoding (replaced with
            U+FFFD in ``text``) or when the line was too long to read.
        raw: the line byte-faithfully as text (invalid bytes as ``\\xNN``) when it differs
            from ``text``; None otherwise.
    """

    number: int
    text: str | None
    warning: str | None = None
    raw: str | None = None


def iter_lines(
    fh: BinaryIO, head: bytes, max_line: int = MAX_LINE_BYTES
) -> Iterator[Line]:
    """Iterate the lines of a binary stream, decoding UTF-8 (or UTF-16 when detected).

    Lines longer than ``max_line`` bytes are skipped in bounded memory and yielded with
    ``text=None`` so the caller can reject them with their line number.
    """
    enc = detect_encoding(head)
    if enc != "utf-8":
        yield from _iter_lines_utf16(fh, enc, max_line)
        return
    number = 0
    while True:
        chunk = fh.readline(max_line + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > max_line and not chunk.endswith(b"\n"):
            total = len(chunk)
            while chunk and not chunk.endswith(b"\n"):
                chunk = fh.readline(_CHUNK)
                total += len(chunk)
            yield Line(number, None, f"line too long ({total} bytes > {max_line})")
            continue
        if number == 1:
            chunk = chunk.removeprefix(codecs.BOM_UTF8)
        chunk = chunk.rstrip(b"\n")
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        try:
            yield Line(number, chunk.decode("utf-8"))
        except UnicodeDecodeError:
            yield Line(
                number,
                chunk.decode("utf-8", "replace"),
                "invalid UTF-8 bytes replaced with U+FFFD",
                chunk.decode("utf-8", "backslashreplace"),
            )


def _iter_lines_utf16(fh: BinaryIO, enc: str, max_line: int) -> Iterator[Line]:
    text = io.TextIOWrapper(cast(Any, fh), encoding=enc, errors="replace", newline=None)
    number = 0
    while True:
        line = text.readline(max_line + 1)
        if not line:
            return
        number += 1
        if len(line) > max_line and not line.endswith("\n"):
            while line and not line.endswith("\n"):
                line = text.readline(_CHUNK)
            yield Line(number, None, f"line too long (> {max_line} characters)")
            continue
        if number == 1:
            line = line.lstrip("\ufeff")
        warning = "invalid UTF-16 replaced with U+FFFD" if "\ufffd" in line else None
        yield Line(number, line.rstrip("\n").rstrip("\r"), warning)


def iter_text_chunks(fh: BinaryIO, head: bytes, size: int = _CHUNK) -> Iterator[str]:
    """Decoded text in chunks, BOM removed; invalid bytes become U+FFFD."""
    enc = detect_encoding(head)
    decoder = codecs.getincrementaldecoder(enc)("replace")
    first = True
    while True:
        data = fh.read(size)
        final = not data
        text = decoder.decode(data, final)
        if first and text:
            text = text.lstrip("\ufeff")
            first = False
        if text:
            yield text
        if final:
            return


# --- archives -------------------------------------------------------------------------


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
    """An archive member that was not extracted, with the reason."""

    display: str
    reason: str


def iter_archive(
    file: InputFile, kind: str, tmpdir: Path, limits: ArchiveLimits = ArchiveLimits(),
    depth: int = 1,
) -> Iterator[InputFile | Refused]:
    """Extract an archive's regular members one at a time into ``tmpdir``.

    Each yielded :class:`InputFile` is deleted when the iteration moves on, so only one
    member is on disk at a time. Nested archives are opened up to ``limits.max_depth``.

    Raises:
        ArchiveError: the archive itself cannot be read.
    """
    budget = [limits.max_total_bytes]
    members = _zip_members(file) if kind == "zip" else _tar_members(file)
    seq = 0
    for name, size_hint, compressed, opener, refusal in members:
        display = f"{file.display}!{name}"
        if refusal:
            yield Refused(display, refusal)
            continue
        bad = _unsafe_name(name)
        if bad:
            yield Refused(display, f"refused member: {bad}")
            continue
        if size_hint > limits.max_member_bytes:
            yield Refused(display, f"refused member: {size_hint} bytes > member cap")
            continue
        seq += 1
        target = tmpdir / f"member-{depth}-{seq:06d}"
        try:
            written = _copy_capped(opener, target, compressed, limits, budget)
        except ArchiveError as exc:
            target.unlink(missing_ok=True)
            yield Refused(display, str(exc))
            continue
        member = InputFile(target, display, written, file.mtime)
        nested = archive_kind(read_head(target, 512))
        if nested and depth < limits.max_depth:
            try:
                yield from iter_archive(member, nested, tmpdir, limits, depth + 1)
            except ArchiveError as exc:
                yield Refused(display, str(exc))
        elif nested:
            yield Refused(display, f"refused member: archives nested deeper than "
                                   f"{limits.max_depth}")
        else:
            yield member
        target.unlink(missing_ok=True)


_Member = tuple[str, int, int, Callable[[], BinaryIO], str | None]


def _zip_members(file: InputFile) -> Iterator[_Member]:
    try:
        zf = zipfile.ZipFile(file.path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"cannot read zip archive: {exc}") from exc
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            refusal = None
            if stat.S_ISLNK(mode):
                refusal = "refused member: symbolic link"
            elif info.flag_bits & 0x1:
                refusal = "refused member: encrypted"

            def opener(info: zipfile.ZipInfo = info) -> BinaryIO:
                return cast(BinaryIO, zf.open(info))

            yield info.filename, info.file_size, info.compress_size, opener, refusal


def _tar_members(file: InputFile) -> Iterator[_Member]:
    try:
        tf = tarfile.open(file.path, mode="r:*")  # noqa: SIM115 - closed by `with` below
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"cannot read tar archive: {exc}") from exc
    with tf:
        try:
            for info in tf:
                if info.isdir():
                    continue
                refusal = None
                if info.issym() or info.islnk():
                    refusal = "refused member: link"
                elif not info.isreg():
                    refusal = "refused member: not a regular file"

                def opener(info: tarfile.TarInfo = info) -> BinaryIO:
                    fh = tf.extractfile(info)
                    assert fh is not None
                    return fh  # type: ignore[return-value]

                yield info.name, info.size, 0, opener, refusal
        except tarfile.TarError as exc:
            raise ArchiveError(f"damaged tar archive: {exc}") from exc


def _copy_capped(
    opener: Callable[[], BinaryIO], target: Path, compressed: int, limits: ArchiveLimits,
    budget: list[int],
) -> int:
    written = 0
    try:
        src = opener()
    except Exception as exc:  # zipfile raises several types for damaged members
        raise ArchiveError(f"cannot read member: {exc}") from exc
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with src, os.fdopen(fd, "wb") as out:
        while True:
            try:
                block = src.read(_CHUNK)
            except Exception as exc:
                raise ArchiveError(f"damaged member: {exc}") from exc
            if not block:
                return written
            written += len(block)
            if written > limits.max_member_bytes:
                raise ArchiveError("refused member: larger than the member size cap")
            if written > budget[0]:
                raise ArchiveError("refused member: archive total size cap reached")
            if (compressed and written > limits.ratio_floor
                    and written > compressed * limits.max_ratio):
                raise ArchiveError(
                    f"refused member: compression ratio above {limits.max_ratio}:1 "
                    "(decompression bomb?)"
                )
            out.write(block)
            budget[0] -= len(block)


def make_tempdir(parent: Path | None = None) -> Path:
    """A private temporary directory for archive members."""
    return Path(tempfile.mkdtemp(prefix="auditlens-", dir=parent))
