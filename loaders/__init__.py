"""auditlens loaders: exported log files in, one normalized event schema out.

Every built-in loader is listed once in ``_BUILTINS`` below (one import, one line); a
duplicate name fails at import. ``loaders`` imports nothing from ``analysis``.

Example:
    >>> import loaders
    >>> result = loaders.load("tests/fixtures/k8s-audit/falco_trace_files_k8s_audit.jsonl")
    >>> result.source, len(result.events)  # doctest: +SKIP
    ('k8s_audit', 52)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from loaders import native

native.install()  # before any auditd module is imported: see loaders/native.py

from loaders import k8s_audit
from loaders import k8s_container
from loaders import k8s_events
from loaders import linux_auditd
from loaders import linux_auth
from loaders import mks_cluster
from loaders import openstack_cadf
from loaders import selectel_audit
from loaders import selectel_auth
from loaders import windows_events
from loaders.base import Loader, LoadOptions
from loaders.runner import REJECT_SCHEMA, FileCounts, FileRun
from loaders.inputs import input_file, read_head, sniff_head
from loaders.schema import event_schema, register_extras

if TYPE_CHECKING:  # pandas is imported only by load(): ingest never needs it
    import pandas as pd

__all__ = [
    "LOADERS", "AmbiguousFormat", "LoadOptions", "LoadResult", "Loader", "UnknownFormat",
    "UnrecognizedFormat", "detect", "event_schema", "get_loader", "iter_batches", "load",
]

_BUILTINS: tuple[Loader, ...] = (
    k8s_audit.LOADER,
    k8s_container.LOADER,
    k8s_events.LOADER,
    linux_auditd.LOADER,
    linux_auth.LOADER,
    mks_cluster.LOADER,
    openstack_cadf.LOADER,
    selectel_audit.LOADER,
    selectel_auth.LOADER,
    windows_events.LOADER,
)


def _register(builtins: tuple[Loader, ...]) -> dict[str, Loader]:
    table: dict[str, Loader] = {}
    for loader in builtins:
        if not loader.name or loader.name in table:
            raise RuntimeError(f"loader name {loader.name!r} is empty or registered twice")
        table[loader.name] = loader
        register_extras(loader.name, loader.prefix, loader.extra_columns)
    return table


LOADERS: dict[str, Loader] = _register(_BUILTINS)


class UnknownFormat(ValueError):
    """``--format`` names no loader."""


class UnrecognizedFormat(ValueError):
    """No loader recognises the file."""


class AmbiguousFormat(ValueError):
    """More than one loader recognises the file."""


def get_loader(name: str) -> Loader:
    """The loader registered under ``name``.

    Raises:
        UnknownFormat: with the list of valid names.
    """
    try:
        return LOADERS[name]
    except KeyError:
        raise UnknownFormat(
            f"unknown format {name!r}; known formats: {', '.join(sorted(LOADERS))}"
        ) from None


def detect(head: bytes, name: str = "") -> Loader:
    """The one loader whose ``sniff`` accepts this head.

    Raises:
        UnrecognizedFormat: no loader accepts it.
        AmbiguousFormat: several do; the message lists them and the ``--format`` option.
    """
    head = sniff_head(head)
    found = [ld for ld in LOADERS.values() if ld.sniff(head, name)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UnrecognizedFormat(
            "no loader recognises this file; `auditlens sources` lists the formats, "
            "--format NAME forces one"
        )
    raise AmbiguousFormat(
        f"several loaders recognise this file ({', '.join(ld.name for ld in found)}); "
        "choose one with --format NAME"
    )


@dataclass
class LoadResult:
    """What :func:`load` read from one file.

    Attributes:
        source: the loader used.
        events: one row per event, every registered column (pandas, UTC timestamps).
        rejects: one row per rejected record: source_file, source_line, reason, excerpt.
        counts: read / loaded / rejected / duplicate; they add up.
        status: ``ok``, ``stopped`` or ``failed``; ``error`` says why when not ok.
        warnings: file-level observations (e.g. an unterminated JSON array).
    """

    source: str
    events: pd.DataFrame
    rejects: pd.DataFrame
    counts: FileCounts
    status: str
    error: str | None
    warnings: list[str]


def _run(path: str | os.PathLike[str], format: str | None, options: LoadOptions,
         ingest_id: str) -> FileRun:
    file = input_file(path)
    head = read_head(file.path)
    loader = get_loader(format) if format else detect(head, file.path.name)
    return FileRun(loader, file, head, options, ingest_id)


def iter_batches(
    path: str | os.PathLike[str], format: str | None = None,
    options: LoadOptions | None = None,
) -> Iterator[pa.Table]:
    """Stream one file's events as schema-valid Arrow tables of bounded size.

    Rejects are not returned here; use :func:`load` or the store to keep them.
    """
    run = _run(path, format, options or LoadOptions(), "adhoc")
    for kind, table in run:
        if kind == "events":
            yield table


def load(
    path: str | os.PathLike[str], format: str | None = None,
    options: LoadOptions | None = None,
) -> LoadResult:
    """Load one file into memory (for notebooks and tests; the store streams instead).

    Events repeated within the file (same ``event_uid``) are counted as duplicates.

    Raises:
        UnrecognizedFormat, AmbiguousFormat, UnknownFormat: see :func:`detect`.
    """
    run = _run(path, format, options or LoadOptions(), "adhoc-" + uuid.uuid4().hex[:8])
    events: list[pa.Table] = []
    rejects: list[pa.Table] = []
    for kind, table in run:
        (events if kind == "events" else rejects).append(table)
    ev = pa.concat_tables(events) if events else event_schema().empty_table()
    import pandas as pd

    frame = ev.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    dup = frame["event_uid"].duplicated()
    counts = run.counts
    if dup.any():
        frame = frame[~dup].reset_index(drop=True)
        counts.duplicate += int(dup.sum())
    counts.loaded = len(frame)
    rj = pa.concat_tables(rejects) if rejects else REJECT_SCHEMA.empty_table()
    return LoadResult(run.loader.name, frame, rj.to_pandas(), counts, run.status, run.error,
                      run.warnings)


def sources_table() -> list[dict[str, str]]:
    """One row per loader: name, description, what it reads, what one record is."""
    return [{"name": ld.name, "description": ld.description, "reads": ld.reads,
             "record": ld.record} for ld in LOADERS.values()]


