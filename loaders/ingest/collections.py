"""Triage collections: which host a collected file came from, and which files are the
collector's own bookkeeping.

Responders bring evidence home as triage collections, and the layout of a collection says
things its files do not:

- **Velociraptor** (offline collector): ``Collection-<host>-<timestamp>[.zip]`` holding
  ``uploads/auto/C%3A/Windows/System32/winevt/Logs/*.evtx`` (``uploads/ntfs/%5C%5C.%5CC%3A/…``
  for raw NTFS reads), and beside ``uploads/`` its bookkeeping: ``uploads.json``,
  ``uploads.json.index``, ``collection_context.json``, ``log.json``, ``log.json.index``,
  ``requests.json``, ``client_info.json``, ``metadata.json``.
- **KAPE** (target collection): ``<tdest>/C/Windows/System32/winevt/Logs/*.evtx``, where the
  destination is usually named after the machine (``--tdest D:\\out\\%m``), and beside the
  drive folders its logs ``<timestamp>_CopyLog.csv``, ``<timestamp>_SkipLog.csv``,
  ``<timestamp>_ConsoleLog.txt``.
- **UAC** (Unix-like Artifacts Collector): ``uac-<host>-<os>-<timestamp>[.tar.gz]`` holding
  ``[root]/var/log/…`` (the collected file system), ``live_response/…`` (command output),
  ``bodyfile/``, ``hash_executables/`` and the collector's ``uac.log`` and ``*.stderr``.

Everything here works on the path alone (no file is opened), so it is cheap, the same for a
directory and for an archive's members, and testable without a collection. Paths are
hostile: nothing is evaluated, and a host taken from a path is only ever a string for the
``host`` column (:func:`collection_host` accepts nothing that is not a plausible host name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath

from loaders.parsing.inputs import InputFile

METADATA = "collection metadata, not evidence"
"""The start of every reason :func:`is_collection_metadata` gives (the ingest summary counts
these files apart from the unrecognised ones)."""

_ARCHIVE_SUFFIX = re.compile(r"\.(zip|tar|tgz|tar\.gz|tar\.bz2|tar\.xz|tar\.zst|7z)$", re.I)
_HOST = r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}"
# uac-<hostname>-<os>-<YYYYmmddHHMMSS>; the os list is UAC's
_UAC = re.compile(rf"^uac-(?P<host>{_HOST}?)-(?:linux|aix|freebsd|macos|netbsd|netscaler|"
                  r"openbsd|solaris|esxi|android)-\d{8,14}$", re.I)
# Collection-<hostname>-<ISO-ish timestamp, ':' spelt '_'>
_VELOCIRAPTOR = re.compile(
    rf"^Collection-(?P<host>{_HOST}?)-\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}[_:]?\d{{2}}[_:]?\d{{2}}"
    r"(?:[._]\d+)?(?:Z|[+-]\d{2}[_:]?\d{2})?$", re.I)
_HOST_NAME = re.compile(rf"^{_HOST}$")
# a drive folder of a Windows collection: C (KAPE), C%3A (Velociraptor auto), C: , and
# %5C%5C.%5CC%3A (Velociraptor ntfs: \\.\C:)
_DRIVE = re.compile(r"^(?:%5C%5C\.%5C)?[A-Za-z](?:%3A|:)?$", re.I)
# what the folder under a drive folder is, in a collection of a Windows file system
_WINDOWS_TOP = frozenset({
    "windows", "users", "programdata", "program files", "program files (x86)",
    "$recycle.bin", "$extend", "$mft", "$logfile", "$boot", "$secure_$sds",
    "system volume information", "inetpub", "documents and settings", "$usnjrnl"})
# folders a collector puts above the drive folders, which never name the host
_NOT_HOSTS = frozenset({
    "uploads", "auto", "ntfs", "lazy_ntfs", "mft", "file", "output", "out", "tout",
    "targets", "target", "kape", "kapeoutput", "collection", "collections", "evidence",
    "triage", "files", "tmp", "temp", "modules", "mout", "vss", "data", "export", "exports",
    "[root]", "root"})

# Velociraptor's bookkeeping beside ``uploads/`` (only there: "log.json" elsewhere may be
# a container's log)
_VELOCIRAPTOR_META = frozenset({
    "uploads.json", "uploads.json.index", "collection_context.json", "log.json",
    "log.json.index", "requests.json", "client_info.json", "metadata.json"})
_KAPE_META = re.compile(r"_(CopyLog\.csv|SkipLog\.csv|ConsoleLog\.txt)$", re.I)
_UAC_META_DIRS = frozenset({"bodyfile", "hash_executables"})


def collection_path(file: InputFile) -> str:
    """The path to judge a file's place in a collection by: its resolved path, then for an
    archive member the member names inward (``/``-joined), so an archive named
    ``Collection-WS02-….zip`` is a component like a directory of that name would be.

    A member's name is never parsed out of ``display`` (a name may hold ``!``); the member
    steps are kept apart on :class:`~loaders.parsing.inputs.InputFile`.
    """
    base = file.resolved or file.display
    if not file.member:
        return base
    return "/".join([base, *(name for name, _ in file.member)])


def _parts(path: str | PurePath | Sequence[str]) -> list[str]:
    if isinstance(path, (str, PurePath)):
        text = str(path).replace("\\", "/")
        return [p for p in text.split("/") if p not in ("", ".")]
    return [p for part in path for p in str(part).replace("\\", "/").split("/")
            if p not in ("", ".")]


def _root_name(part: str) -> str:
    return _ARCHIVE_SUFFIX.sub("", part)


def _named_root(part: str) -> tuple[str, str] | None:
    """(collector, host) when ``part`` is a UAC or Velociraptor collection's root."""
    name = _root_name(part)
    for kind, pattern in (("uac", _UAC), ("velociraptor", _VELOCIRAPTOR)):
        m = pattern.match(name)
        if m:
            return kind, m.group("host")
    return None


def collection_host(path: str | PurePath | Sequence[str]) -> str | None:
    """The host a collected file came from, by the collection's layout; None if the layout
    does not say.

    Used only to fill ``host`` where a record has none (an auditd log without ``node=``, a
    container log): a host a record names always wins, since a collection can hold logs
    forwarded from other machines. The rules, innermost component first, so a collection
    filed under a case folder named after something else still names its own host:

    1. a UAC root ``uac-<host>-<os>-<timestamp>`` or a Velociraptor root
       ``Collection-<host>-<timestamp>`` (directory or archive);
    2. otherwise a KAPE-style ``<host>/<drive>/<Windows folder>/…``: the folder above a
       drive folder (``C``, ``C%3A``) whose next folder is a Windows top-level folder
       (``Windows``, ``Users``, ``$MFT`` …), unless that folder is one collectors use
       (``uploads``, ``auto``, ``out``, ``tout``, ``kape`` …).

    Args:
        path: the file's path (see :func:`collection_path`), or its components.

    Returns:
        The host as the layout spells it, or None.
    """
    parts = _parts(path)
    for part in reversed(parts[:-1]):
        root = _named_root(part)
        if root is not None:
            return root[1]
    for i in range(len(parts) - 2, 0, -1):
        if _DRIVE.match(parts[i]) and parts[i + 1].lower() in _WINDOWS_TOP:
            candidate = _root_name(parts[i - 1])
            if candidate.lower() not in _NOT_HOSTS and _HOST_NAME.match(candidate) \
                    and not _DRIVE.match(candidate):
                return candidate
    return None


def is_collection_metadata(path: str | PurePath | Sequence[str]) -> str | None:
    """Why a file is a collector's bookkeeping rather than evidence; None if it is not.

    Such files (a KAPE copy log, Velociraptor's upload index, UAC's own log) are not logs of
    the machine and no loader reads them; without this they would be listed as "NOT
    LOADED: looks like text logs" among the files that are evidence, and a collection has
    dozens. They are skipped with this reason, quietly, and counted. Only names in their
    collector's place count: a ``log.json`` that is not beside ``uploads/`` in a Velociraptor
    collection is judged by its content like any file.

    Args:
        path: the file's path (see :func:`collection_path`), or its components.

    Returns:
        ``"collection metadata, not evidence: <collector> <what>"``, or None.
    """
    parts = _parts(path)
    if not parts:
        return None
    name = parts[-1]
    parent = parts[-2] if len(parts) > 1 else ""
    root = _named_root(parent) if parent else None
    low = name.lower()
    if _KAPE_META.search(name):
        return f"{METADATA}: KAPE's log of what it copied or skipped"
    if low in _VELOCIRAPTOR_META and root is not None and root[0] == "velociraptor":
        return f"{METADATA}: Velociraptor's record of the collection ({name})"
    uac = next((i for i in range(len(parts) - 2, -1, -1)
                if (r := _named_root(parts[i])) is not None and r[0] == "uac"), None)
    if uac is not None:
        inside = [p.lower() for p in parts[uac + 1:-1]]
        if not inside and (low == "uac.log" or low.endswith(".stderr")
                           or low.endswith(".log.stderr")):
            return f"{METADATA}: UAC's own log ({name})"
        if inside and inside[0] in _UAC_META_DIRS:
            return f"{METADATA}: UAC's {inside[0]} listing"
        if low.endswith(".stderr") and (not inside or inside[0] != "[root]"):
            return f"{METADATA}: UAC's record of a command's errors"
    return None
