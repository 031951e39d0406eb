"""The store's ledger: a hash chain of every run that changed it.

``<store>/ledger.jsonl`` holds one JSON line per run — an ingest, a detection run, a report,
a repair — appended under the store's write lock when the run ends. An entry holds what the
run added or removed (an ingest: its manifest rows, whole, which name its part and rejects
files with their SHA-256; a detection run: its findings files and their hashes; a repair:
the rows it removed), the hash of the entry before it, and its own hash::

    hash = SHA-256(canonical JSON of the entry without "hash")

So rewriting or removing any run — its rows, its files, or both with matching hashes —
breaks either the comparison of the manifest with the ledger or the chain, which
:func:`loaders.store.verify.verify_store` checks from the first entry. The last entry's hash,
the *chain head*, stands for the whole history: ``auditlens info`` prints it and reports
quote it, and a head kept outside the store (case notes) proves later that the store still
holds that history (``auditlens info --verify --head HASH``). What the chain cannot do: a
person with write access who rewrites the whole chain from its first entry, or removes the
last runs with their entries, leaves a consistent store; only a head kept elsewhere catches
that (docs/RELIABILITY.md, "Chain of custody").

The ledger is also the second copy of the manifest: a damaged ``manifest.parquet`` is
rebuilt from it (:func:`loaders.store.repair.repair`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from loaders.store.layout import MANIFEST_SCHEMA, ManifestRow

LEDGER_NAME = "ledger.jsonl"
GENESIS = "0" * 64  # the "previous hash" of the first entry

EntryKind = Literal["ingest", "detect", "report", "repair"]

SEALED_AT_END = "at the end of the run"
SEALED_INTERRUPTED = "on recovery: the run was interrupted before it was sealed"
SEALED_UPGRADE = ("on the first write by a version with a ledger: the rows were written "
                  "before the store had one")

_TIMESTAMPS = frozenset(f.name for f in MANIFEST_SCHEMA if pa.types.is_timestamp(f.type))
# list<struct> columns (``member_path``) -> their fields, in schema order
_STRUCT_LISTS = {f.name: [s.name for s in f.type.value_type] for f in MANIFEST_SCHEMA
                 if pa.types.is_list(f.type) and pa.types.is_struct(f.type.value_type)}


def canonical_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest row as the ledger keeps it: JSON values, times as ISO 8601 UTC, and no
    null field (so a column added later, null in older rows, changes no digest). A list of
    structs (``member_path``) is a list of plain dicts holding exactly the struct's fields,
    in order, whatever mapping type the row came as (a staged row, Arrow's ``to_pylist``)."""
    out: dict[str, Any] = {}
    for name in MANIFEST_SCHEMA.names:
        value = row.get(name)
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        elif name in _STRUCT_LISTS:
            value = [{k: step.get(k) for k in _STRUCT_LISTS[name]} for step in value]
        out[name] = value
    return out


def manifest_row(canonical: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`canonical_row` back to a row of :data:`MANIFEST_SCHEMA` (for a rebuild)."""
    row: dict[str, Any] = {name: canonical.get(name) for name in MANIFEST_SCHEMA.names}
    for name in _TIMESTAMPS:
        if isinstance(row[name], str):
            row[name] = datetime.fromisoformat(row[name])
    return row


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hash of an entry: SHA-256 of its canonical JSON without the ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(_dumps(body).encode("ascii")).hexdigest()


@dataclass
class Entry:
    """One run in the ledger.

    Attributes:
        seq: 1 for the first entry, then one more each.
        kind: ``ingest``, ``detect``, ``report`` or ``repair``.
        run: the run's id (an ingest id, a detection run id, …).
        at: when it was sealed (ISO 8601 UTC).
        sealed: how: at the end of the run, or on recovery (see the ``SEALED_*`` texts).
        tool_version: the auditlens version that sealed it.
        rows: an ingest's manifest rows (:func:`canonical_row`).
        files: store files the run wrote, ``[relative path, sha256]`` (detection runs).
        removes: manifest rows a repair removed, ``[ingest_id, file_seq]``.
        note: what else the run records (a report: its path, SHA-256 and the head it quotes;
            a repair: what it moved where and why).
        prev: the hash of the entry before (:data:`GENESIS` for the first).
        hash: this entry's hash (:func:`entry_hash`).
    """

    seq: int
    kind: str
    run: str
    at: str
    sealed: str
    tool_version: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    files: list[list[str]] = field(default_factory=list)
    removes: list[list[Any]] = field(default_factory=list)
    note: dict[str, Any] = field(default_factory=dict)
    prev: str = GENESIS
    hash: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "run": self.run, "at": self.at,
                "sealed": self.sealed, "tool_version": self.tool_version, "rows": self.rows,
                "files": self.files, "removes": self.removes, "note": self.note,
                "prev": self.prev, "hash": self.hash}


@dataclass(frozen=True)
class ChainProblem:
    """Something wrong with the ledger file itself: which line, what."""

    line: int
    detail: str


@dataclass
class Ledger:
    """The ledger as read: the entries whose chain holds, and what is wrong with it.

    Attributes:
        entries: every well-formed entry, in file order.
        problems: broken links, entries whose hash does not match their content, lines
            that are not entries.
        torn: the last line is incomplete (a crash while appending; recovery removes it).
        exists: the store has a ledger file.
    """

    entries: list[Entry] = field(default_factory=list)
    problems: list[ChainProblem] = field(default_factory=list)
    torn: bool = False
    exists: bool = False
    good_bytes: int = 0  # the length of the file up to the end of its last complete line

    @property
    def head(self) -> str:
        """The chain head: the hash of the last entry (:data:`GENESIS` when empty)."""
        return self.entries[-1].hash if self.entries else GENESIS

    def runs(self, kind: str) -> set[str]:
        return {e.run for e in self.entries if e.kind == kind}


def _entry(value: Any) -> Entry | None:
    if not isinstance(value, dict):
        return None
    try:
        return Entry(**value)
    except TypeError:
        return None


def parse(data: bytes) -> Ledger:
    """Read a ledger's bytes, checking every entry's hash and link."""
    ledger = Ledger(exists=True)
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    if tail:
        ledger.torn = True
    ledger.good_bytes = len(data) - len(tail)
    prev = GENESIS
    for number, raw in enumerate(complete, 1):
        try:
            value = json.loads(raw)
        except ValueError:
            ledger.problems.append(ChainProblem(number, "not a ledger entry (unreadable JSON)"))
            continue
        entry = _entry(value)
        if entry is None:
            ledger.problems.append(ChainProblem(number, "not a ledger entry (fields)"))
            continue
        if entry_hash(value) != entry.hash:
            ledger.problems.append(ChainProblem(
                number, f"entry {entry.seq} ({entry.kind} {entry.run}) does not match its "
                "hash: it was rewritten"))
        if entry.prev != prev:
            ledger.problems.append(ChainProblem(
                number, f"the chain is broken before entry {entry.seq} ({entry.kind} "
                f"{entry.run}): its previous hash is not the hash of the entry before it; "
                "an entry was removed, inserted or rewritten"))
        expected_seq = ledger.entries[-1].seq + 1 if ledger.entries else 1
        if entry.seq != expected_seq:
            ledger.problems.append(ChainProblem(
                number, f"entry {entry.seq} follows entry {expected_seq - 1}: entries are "
                "missing or out of order"))
        ledger.entries.append(entry)
        prev = entry.hash
    return ledger


def read(root: Path) -> Ledger:
    """The store's ledger (an empty one when the store has none)."""
    try:
        data = (root / LEDGER_NAME).read_bytes()
    except FileNotFoundError:
        return Ledger()
    return parse(data)


def head_of(root: Path) -> tuple[str, int]:
    """The chain head and the number of entries, reading only the last complete line."""
    path = root / LEDGER_NAME
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return GENESIS, 0
    with open(path, "rb") as fh:
        step = 1 << 16
        pos, buf = size, b""
        while pos > 0:
            start = max(0, pos - step)
            fh.seek(start)
            buf = fh.read(pos - start) + buf
            pos = start
            lines = buf.split(b"\n")
            complete = lines[:-1]
            # a complete last line: its start is known once a newline precedes it
            if len(complete) >= 2 or (complete and pos == 0):
                try:
                    last = json.loads(complete[-1])
                    return str(last["hash"]), int(last["seq"])
                except (ValueError, KeyError, TypeError):
                    break
            step *= 2
    ledger = read(root)  # an unusual file: read it whole
    return ledger.head, len(ledger.entries)


def append(root: Path, kind: EntryKind, run: str, *, sealed: str = SEALED_AT_END,
           tool_version: str, rows: Iterable[Mapping[str, Any]] = (),
           files: Sequence[tuple[str, str]] = (), removes: Sequence[tuple[str, int]] = (),
           note: Mapping[str, Any] | None = None, ledger: Ledger | None = None) -> Entry:
    """Append one entry (call with the store's write lock held; see
    :meth:`loaders.store.store.Store.seal`). A torn last line is cut off first."""
    ledger = ledger if ledger is not None else read(root)
    path = root / LEDGER_NAME
    if ledger.torn:
        with open(path, "r+b") as fh:
            fh.truncate(ledger.good_bytes)
    last = ledger.entries[-1] if ledger.entries else None
    entry = Entry(seq=(last.seq + 1) if last else 1, kind=kind, run=run,
                  at=datetime.now(UTC).isoformat(timespec="microseconds"), sealed=sealed,
                  tool_version=tool_version, rows=[canonical_row(r) for r in rows],
                  files=[[rel, sha] for rel, sha in files],
                  removes=[[i, int(s)] for i, s in removes], note=dict(note or {}),
                  prev=last.hash if last else GENESIS)
    body = entry.as_json()
    entry.hash = entry_hash(body)
    body["hash"] = entry.hash
    line = (_dumps(body) + "\n").encode("ascii")
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        dfd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    ledger.entries.append(entry)
    ledger.torn, ledger.exists = False, True
    ledger.good_bytes += len(line)
    return entry


def key(row: Mapping[str, Any]) -> tuple[str, int]:
    """A manifest row's identity: its ingest and its place in it."""
    return str(row["ingest_id"]), int(row["file_seq"])


def sealed_rows(ledger: Ledger) -> dict[tuple[str, int], tuple[dict[str, Any], Entry]]:
    """Every manifest row the ledger says the store holds now: those sealed by ingests,
    less those removed by repairs since; each with the entry that sealed it."""
    out: dict[tuple[str, int], tuple[dict[str, Any], Entry]] = {}
    for entry in ledger.entries:
        for row in entry.rows:
            out[key(row)] = (row, entry)
        for ingest_id, seq in entry.removes:
            out.pop((str(ingest_id), int(seq)), None)
    return out


def sealed_files(ledger: Ledger) -> dict[str, tuple[str, Entry]]:
    """Store files other than parts and rejects (findings) the ledger says are there, with
    their SHA-256 and the entry that sealed them; a repair's ``note["moved"]`` removes."""
    out: dict[str, tuple[str, Entry]] = {}
    for entry in ledger.entries:
        for rel, sha in entry.files:
            out[rel] = (sha, entry)
        for rel in entry.note.get("moved", []) if entry.kind == "repair" else []:
            out.pop(rel, None)
    return out


def differing_fields(sealed: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The fields in which a manifest row differs from the one sealed."""
    return sorted(k for k in set(sealed) | set(current) if sealed.get(k) != current.get(k))


def rows_of(manifest: pa.Table, ingest_id: str) -> list[ManifestRow]:
    """The manifest rows of one ingest."""
    rows: list[ManifestRow] = [r for r in manifest.to_pylist() if r["ingest_id"] == ingest_id]
    return rows
