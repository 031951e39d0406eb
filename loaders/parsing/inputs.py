"""Opening evidence files: transparent gzip, text decoding, bounded lines.

Inputs are only ever opened for reading. Archives are read by :mod:`loaders.ingest.archives`.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

HEAD_BYTES = 64 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class InputFile:
    """One evidence file to load.

    Attributes:
        path: where the bytes are on disk (a temp copy for archive members).
        display: the name recorded as ``source_file``: the path given, or ``archive!member``
            (``archive!member (#2)`` for the second member of that name in the archive).
            It is for people: a file name can hold ``!`` too, so it is never parsed.
        size: size on disk in bytes.
        mtime: modification time of the original file (epoch seconds), for year inference.
        resolved: where the evidence is, whatever the working directory: the absolute,
            resolved path of the file, or for an archive member of the outermost archive
            (a real file, no ``!``; "" when not known).
        member: for an archive member, which one: ``(name, occurrence)`` steps from the
            outermost archive inward (a log in a tar in a zip has two), ``occurrence``
            counting members of the same name from 1; ``()`` for a plain file. With
            ``resolved`` it is what ``verify`` re-hashes (the manifest's ``member_path``).
        fingerprint: what the file was when it was opened (device, inode, size,
            modification and change times in ns), to tell afterwards whether it changed
            while it was read (:func:`changed_since`); empty for the private copy of an
            archive member, which nothing else writes.
    """

    path: Path
    display: str
    size: int
    mtime: float
    resolved: str = ""
    member: tuple[tuple[str, int], ...] = ()
    fingerprint: tuple[int, ...] = ()


class NotRegularFile(OSError):
    """An input that is not a regular file (a FIFO, a device, a socket, or a link to one):
    reading it could block forever or never end, so it is refused before it is opened."""


def input_file(path: str | os.PathLike[str], display: str | None = None) -> InputFile:
    """Describe a file on disk as an :class:`InputFile`.

    Raises:
        NotRegularFile: the path (or what its link points to) is not a regular file.
        OSError: it cannot be examined.
    """
    p = Path(path)
    st = p.stat()
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a character device" if stat.S_ISCHR(st.st_mode) else
                "a block device" if stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else
                "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file")
        via = " (through a symbolic link)" if p.is_symlink() else ""
        raise NotRegularFile(f"refused: {kind}{via}, not a regular file; reading it could "
                             "block or never end")
    return InputFile(p, display if display is not None else str(p), st.st_size, st.st_mtime,
                     str(p.resolve()), fingerprint=_fingerprint(st))


def _fingerprint(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def changed_since(file: InputFile) -> str | None:
    """How the file on disk differs from the one opened (:attr:`InputFile.fingerprint`), in
    one sentence for the manifest's ``input_changed``, or None when it is the same.

    Every read of an input stops at the size it had when it was opened, so the records and
    the recorded hash are of those bytes whatever was appended meanwhile; this says that
    the evidence on disk is no longer exactly what was read (a log still being written).
    """
    if not file.fingerprint:
        return None
    try:
        st = os.stat(file.path)
    except OSError as exc:
        return (f"was removed or became unreadable during the ingest ({exc.strerror}); "
                f"the {file.size:,} bytes it had when opened were read")
    if _fingerprint(st) == file.fingerprint:
        return None
    dev, ino, size = file.fingerprint[:3]
    if (st.st_dev, st.st_ino) != (dev, ino):
        return ("was replaced by another file of the same name during the ingest (a log "
                f"rotated?); the {size:,} bytes of the file opened were read")
    if st.st_size > size:
        return (f"grew from {size:,} to {st.st_size:,} bytes during the ingest; only the "
                f"first {size:,} bytes (its size when opened) were read and hashed")
    if st.st_size < size:
        return (f"shrank from {size:,} to {st.st_size:,} bytes during the ingest (truncated "
                "while it was read); the records are of what could be read, the hash of "
                "the bytes read")
    return ("was written to during the ingest (same size, new modification time); the "
            "records and the hash are of the bytes as they were read")


class ReadDigest:
    """The SHA-256 of the bytes a reader took from a file, in order from its first byte
    (:func:`open_binary` with ``digest``): the hash of exactly what was parsed.

    Attributes:
        size: bytes hashed.
        complete: the stream reached its limit (the size the file had when opened).
    """

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0
        self.complete = False

    def update(self, data: Any) -> None:
        self._h.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class _Reading(io.RawIOBase):
    """The file's bytes up to ``limit`` (its size when opened: what a writer appends
    meanwhile is not read), hashed in order into ``digest`` and counted for ``report``.

    A stream closed before its limit (a loader that stopped early) reads and hashes the
    rest on close, so a digest always covers the bytes from the start to the limit; a file
    that ends before its limit (truncated meanwhile) leaves the digest incomplete."""

    def __init__(self, raw: Any, limit: int | None, digest: ReadDigest | None,
                 report: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._left = limit
        self._digest = digest
        self._report = report
        self._pending = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._left is not None:
            if self._left <= 0:
                return self._ended()
            view = view[: self._left]
        n = self._raw.readinto(view) or 0
        if self._left is not None:
            self._left -= n
        if self._digest is not None and n:
            self._digest.update(view[:n])
        if self._report is not None:
            self._pending += n
            if self._pending >= 4 * _CHUNK or not n:
                self._report(self._pending)
                self._pending = 0
        return n if n else self._ended()

    def _ended(self) -> int:
        if self._digest is not None and (self._left is None or self._left <= 0):
            self._digest.complete = True
        return 0

    def close(self) -> None:
        if self._digest is not None and not self._digest.complete and not self.closed:
            block = bytearray(_CHUNK)
            try:
                while self.readinto(block):
                    pass
            except OSError:
                pass
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
            saved = self._d.copy()
            try:
                out = self._d.decompress(data, len(b))
            except zlib.error as exc:
                out = self._before_damage(saved, data, len(b))
                if out:  # what the damaged read decoded before the damage: kept
                    b[: len(out)] = out
                    self._total += len(out)
                    self._fail(f"is damaged ({exc})")
                    return len(out)
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

    @staticmethod
    def _before_damage(d: Any, data: bytes, limit: int) -> bytes:
        """Decode ``data`` again from the state before the failed call, a few bytes at a
        time, keeping everything decoded before the byte where zlib finds the damage."""
        out: list[bytes] = []
        size = 0
        step = 64
        i = 0
        while i < len(data) and size < limit and not d.eof:
            saved = d.copy()
            try:
                piece = d.decompress(data[i:i + step], limit - size)
            except zlib.error:
                if step == 1:
                    break
                d, step = saved, 1  # the damage is in these bytes: one at a time
                continue
            out.append(piece)
            size += len(piece)
            i += step
        return b"".join(out)

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_binary(
    path: Path, progress: Callable[[int], None] | None = None,
    on_error: Callable[[str], None] | None = None, *, limit: int | None = None,
    digest: ReadDigest | None = None,
) -> BinaryIO:
    """Open a file read-only, decompressing gzip transparently (detected by magic bytes).

    Args:
        path: the file.
        progress: called with the number of (compressed) bytes read, every few MB.
        on_error: called once if the compressed stream is damaged; the stream then ends
            there instead of raising.
        limit: read no more than this many bytes of the file (its size when it was
            opened for the ingest), whatever is appended meanwhile.
        digest: hash the file's bytes (compressed, as on disk) as they are read.
    """
    raw: Any
    if progress is None and limit is None and digest is None:  # a head, a sniff
        raw = open(path, "rb")  # noqa: SIM115 - the caller closes it
    else:
        plain = open(path, "rb", buffering=0)  # noqa: SIM115 - closed through raw
        raw = io.BufferedReader(_Reading(plain, limit, digest, progress),
                                buffer_size=_CHUNK)
    if raw.peek(2)[:2] == b"\x1f\x8b":
        gunzip = _Gunzip(raw, on_error or (lambda message: None))
        return cast(BinaryIO, io.BufferedReader(gunzip, buffer_size=_CHUNK))
    return cast(BinaryIO, raw)


def read_head(path: Path, n: int = HEAD_BYTES, scrub: bool = True) -> bytes:
    """The first ``n`` bytes of the (decompressed) content, for format sniffing; text is
    scrubbed of NUL runs and byte-order marks at line starts, as its loader will read it
    (:mod:`loaders.parsing.damage`) unless ``scrub`` is False (archive magic)."""
    from loaders.parsing.damage import read_scrubbed_head

    try:
        if scrub:
            return read_scrubbed_head(path, n)
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
    while head.startswith(codecs.BOM_UTF8):
        head = head[3:]
    return head


def text_head(head: bytes) -> str:
    """The sniffing head as text: BOM removed, UTF-16 decoded, bad bytes replaced."""
    enc = detect_encoding(head)
    if enc == "utf-8":
        return sniff_head(head).decode("utf-8", "replace")
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
        yield decode_line(number, chunk.rstrip(b"\n"))


def decode_line(number: int, chunk: bytes) -> Line:
    """One UTF-8 line's bytes (without its ``\\n``) as a :class:`Line`: a trailing ``\\r``
    dropped, invalid bytes replaced with U+FFFD and flagged (the raw text keeps them as
    ``\\x..`` escapes). The block readers of the fast paths use it too, so their lines read
    exactly as :func:`iter_lines` reads them."""
    if chunk.endswith(b"\r"):
        chunk = chunk[:-1]
    try:
        return Line(number, chunk.decode("utf-8"))
    except UnicodeDecodeError:
        return Line(number, chunk.decode("utf-8", "replace"),
                    "invalid UTF-8 bytes replaced with U+FFFD",
                    chunk.decode("utf-8", "backslashreplace"))


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
