"""Archives (``.zip``, ``.tar``, ``.tar.gz``) read member by member, safely.

Each regular member is copied, under a generated name, into a private temporary directory
with a size cap, handed to the caller, and deleted. Member names never become filesystem
paths, so ``../`` or absolute names cannot write outside the temp dir; they are refused with
a message anyway, as are links, devices, encrypted members and decompression bombs.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from loaders.parsing.inputs import InputFile, read_head

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
