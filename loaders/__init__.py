"""auditlens loaders: exported log files in, one normalized event schema out.

The package is layered (docs/ARCHITECTURE.md): the event schema (:mod:`loaders.schema`) and
shared parsing helpers (:mod:`loaders.parsing`) at the bottom; one module or subpackage per
source above them, listed in :mod:`loaders.registry`; the evidence store
(:mod:`loaders.store`), which imports the schema and no parser; and ingest orchestration
(:mod:`loaders.ingest`), which wires the registry to the store.

Importing ``loaders`` (or any layer below it, such as the store's read side) imports no parser
and reads no file: the names below are imported on first use, each loader the first time it
is asked for (:func:`get_loader`), and all of them when a file's format must be detected.

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
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:  # the names below are imported on first use (see __getattr__)
    import pandas as pd

    from loaders.base import Loader, LoadOptions, Tuning
    from loaders.ingest.runner import FileCounts, FileRun, RunStatus
    from loaders.registry import (
        AmbiguousFormat,
        UnknownFormat,
        UnrecognizedFormat,
        all_loaders,
        detect,
        get_loader,
        sources_table,
    )
    from loaders.schema import event_schema

__all__ = [
    "LOADERS", "AmbiguousFormat", "LoadOptions", "LoadResult", "Loader", "Tuning",
    "UnknownFormat", "UnrecognizedFormat", "all_loaders", "detect", "event_schema",
    "get_loader", "iter_batches", "load", "sources_table",
]


_LAZY = {
    "Loader": "loaders.base", "LoadOptions": "loaders.base", "Tuning": "loaders.base",
    "AmbiguousFormat": "loaders.registry", "UnknownFormat": "loaders.registry",
    "UnrecognizedFormat": "loaders.registry", "all_loaders": "loaders.registry",
    "detect": "loaders.registry", "get_loader": "loaders.registry",
    "sources_table": "loaders.registry", "event_schema": "loaders.schema",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "LOADERS":  # every loader by name: imports all of them, so only on demand
        from loaders.registry import all_loaders

        return all_loaders()
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loaders' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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
    status: RunStatus
    error: str | None
    warnings: list[str]


def _run(path: str | os.PathLike[str], format: str | None, options: LoadOptions,
         ingest_id: str) -> FileRun:
    from loaders.ingest.runner import FileRun
    from loaders.parsing.inputs import input_file, read_head
    from loaders.registry import detect_head

    file = input_file(path)
    found = detect_head(read_head(file.path), file.path.name, format)
    return FileRun(found.loader, file, found.head, options, ingest_id,
                   damaged_lines=found.damaged_lines)


def iter_batches(
    path: str | os.PathLike[str], format: str | None = None,
    options: LoadOptions | None = None,
) -> Iterator[pa.Table]:
    """Stream one file's events as schema-valid Arrow tables of bounded size.

    Rejects are not returned here; use :func:`load` or the store to keep them.
    """
    from loaders.base import LoadOptions

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
    import pandas as pd

    from loaders.base import LoadOptions
    from loaders.schema import event_schema
    from loaders.store.layout import REJECT_SCHEMA

    run = _run(path, format, options or LoadOptions(), "adhoc-" + uuid.uuid4().hex[:8])
    events: list[pa.Table] = []
    rejects: list[pa.Table] = []
    for kind, table in run:
        (events if kind == "events" else rejects).append(table)
    ev = pa.concat_tables(events) if events else event_schema().empty_table()
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
