"""Re-hashing archive members for ``verify``, through the ingest's own archive reader.

An archive member's manifest row names its outermost archive (``resolved_path``) and the
chain of members inside it (``member_path``). Re-reading that member any other way (Python's
:mod:`zipfile` picks one of two members of the same name; it cannot open a member of a
member, nor a zip recovered from its local headers) would compare bytes the ingest never
hashed, so :func:`member_hashes` walks the archive with
:func:`loaders.ingest.archives.iter_archive`, exactly as the ingest did, and :func:`verify`
hands it to :func:`loaders.store.verify.verify_store`, which lives in the store layer and
cannot import this one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from loaders.base import ArchiveLimits
from loaders.ingest.archives import Refused, iter_archive, sniff_kind
from loaders.parsing.inputs import input_file
from loaders.store.store import Store, sha256_file
from loaders.store.verify import MemberChain, VerifyReport, verify_store

__all__ = ["member_hashes", "verify"]


def member_hashes(archive: Path, limits: ArchiveLimits | None = None
                  ) -> dict[MemberChain, str]:
    """The SHA-256 of every member of ``archive`` as the ingest reads it, by member chain.

    One walk of the archive: each member (nested archives opened, as at ingest) is
    extracted into a private temporary directory, hashed, and deleted before the next.
    Members the reader refuses or cannot read (unsafe names, caps, damage) are absent, as
    they were never ingested; a file that is no longer an archive has no members.

    Args:
        archive: the outermost archive (a manifest row's ``resolved_path``).
        limits: the archive caps; the defaults, as for an ingest without options.

    Raises:
        OSError: the archive cannot be read (or is not a regular file).
    """
    file = input_file(archive)
    kind = sniff_kind(archive)
    if kind is None:
        return {}
    hashes: dict[MemberChain, str] = {}
    with tempfile.TemporaryDirectory(prefix="auditlens-rehash-") as tmp:
        for member in iter_archive(file, kind, Path(tmp), limits or ArchiveLimits()):
            if isinstance(member, Refused):
                continue
            try:
                hashes[member.member] = sha256_file(member.path)
            finally:
                member.path.unlink(missing_ok=True)
    return hashes


def verify(store: Store, **kwargs: Any) -> VerifyReport:
    """:func:`~loaders.store.verify.verify_store` with archive members re-hashed by
    :func:`member_hashes` (what ``auditlens info --verify`` runs); ``kwargs`` are
    ``verify_store``'s (``check_inputs``, ``head``)."""
    return verify_store(store, rehash_members=member_hashes, **kwargs)
