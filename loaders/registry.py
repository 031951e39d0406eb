"""The built-in loaders: one readable table, each loader imported when first needed.

``BUILTINS`` maps a source name to the module that holds its ``LOADER``. Adding a source is
one line here (plus its columns in :mod:`loaders.schema.extras`). A duplicate name fails at
import; a module whose ``LOADER`` has another name, or declares columns the schema does not
hold, fails when it is first imported.

Nothing here imports a parser at import time: :func:`get_loader` imports one module,
:func:`all_loaders` (what detection needs) imports them all.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from loaders.base import Loader
from loaders.parsing.damage import RESYNC_TEXT_LINES, resync_offsets
from loaders.parsing.inputs import detect_encoding, sniff_head
from loaders.schema import source_columns

BUILTINS: tuple[tuple[str, str], ...] = (
    ("k8s_audit", "loaders.k8s_audit.loader"),
    ("k8s_container", "loaders.k8s_container.loader"),
    ("k8s_events", "loaders.k8s_events"),
    ("linux_auditd", "loaders.linux_auditd.loader"),
    ("linux_auth", "loaders.linux_auth.loader"),
    ("linux_syslog", "loaders.linux_syslog.loader"),
    ("mks_cluster", "loaders.mks_cluster"),
    ("openstack_cadf", "loaders.openstack_cadf"),
    ("selectel_audit", "loaders.selectel_audit.loader"),
    ("selectel_auth", "loaders.selectel_auth.loader"),
    ("windows_events", "loaders.windows_events.loader"),
)


def _table(builtins: tuple[tuple[str, str], ...]) -> dict[str, str]:
    table: dict[str, str] = {}
    for name, module in builtins:
        if not name or name in table:
            raise RuntimeError(f"loader name {name!r} is empty or registered twice")
        table[name] = module
    return table


MODULES: dict[str, str] = _table(BUILTINS)
_LOADED: dict[str, Loader] = {}


class UnknownFormat(ValueError):
    """``--format`` names no loader."""


class UnrecognizedFormat(ValueError):
    """No loader recognises the file."""


class AmbiguousFormat(ValueError):
    """More than one loader recognises the file."""


def get_loader(name: str) -> Loader:
    """The loader registered under ``name``, importing its module on first use.

    Raises:
        UnknownFormat: with the list of valid names.
        RuntimeError: the module's ``LOADER`` does not match its row or the schema.
    """
    loader = _LOADED.get(name)
    if loader is not None:
        return loader
    module = MODULES.get(name)
    if module is None:
        raise UnknownFormat(
            f"unknown format {name!r}; known formats: {', '.join(sorted(MODULES))}"
        )
    loader = importlib.import_module(module).LOADER
    if loader.name != name:
        raise RuntimeError(f"{module}.LOADER is named {loader.name!r}, registered as {name!r}")
    declared = source_columns(name)
    if (loader.prefix, loader.extra_columns) != (declared.prefix, declared.columns):
        raise RuntimeError(f"{module}.LOADER's columns differ from loaders.schema.extras")
    _LOADED[name] = loader
    return loader


def all_loaders() -> dict[str, Loader]:
    """Every built-in loader by name, in the table's order (imports every parser)."""
    return {name: get_loader(name) for name in MODULES}


@dataclass(frozen=True)
class Detected:
    """What detection found.

    Attributes:
        loader: the loader of the file.
        head: the head its records start in: the file's head, or, when the file's first
            lines are damaged, the head from the first line the loader recognised.
        damaged_lines: lines before that one (0 for a sound head); they are read and
            rejected like any bad record, and do not count as a sign of the wrong format.
    """

    loader: Loader
    head: bytes
    damaged_lines: int = 0


def _accepting(head: bytes, name: str, candidates: list[Loader]) -> list[Loader]:
    head = sniff_head(head)
    return [ld for ld in candidates if ld.sniff(head, name)]


def detect_head(head: bytes, name: str = "", format: str | None = None) -> Detected:
    """The loader of a file from its head (``format`` forces one), looking past a damaged
    head: when no loader accepts the start, detection tries again from each of the first
    lines (binary garbage of any length within the head, and up to
    :data:`~loaders.parsing.damage.RESYNC_TEXT_LINES` unparsable lines, are looked past).

    Raises:
        UnknownFormat: ``format`` names no loader.
        UnrecognizedFormat: no loader accepts any of those starts.
        AmbiguousFormat: several accept the first start that any accepts.
    """
    candidates = [get_loader(format)] if format else list(all_loaders().values())
    found = _accepting(head, name, candidates)
    offset = 0
    if not found and detect_encoding(head) == "utf-8":
        for offset in resync_offsets(head):
            found = _accepting(head[offset:], name, candidates)
            if found:
                break
    if len(found) == 1:
        return Detected(found[0], head[offset:] if offset else head,
                        head[:offset].count(b"\n"))
    if format:  # forced: read from the start, whatever it holds
        return Detected(candidates[0], head)
    if not found:
        raise UnrecognizedFormat(
            "no loader recognises this file (nor from any of its first "
            f"{RESYNC_TEXT_LINES} lines); `auditlens sources` lists the formats, "
            "--format NAME forces one"
        )
    raise AmbiguousFormat(
        f"several loaders recognise this file ({', '.join(ld.name for ld in found)}); "
        "choose one with --format NAME"
    )


def detect(head: bytes, name: str = "") -> Loader:
    """The one loader that recognises this head (see :func:`detect_head`).

    Raises:
        UnrecognizedFormat: no loader accepts it.
        AmbiguousFormat: several do; the message lists them and the ``--format`` option.
    """
    return detect_head(head, name).loader


def sources_table() -> list[dict[str, str]]:
    """One row per loader: name, description, what it reads, what one record is."""
    return [{"name": ld.name, "description": ld.description, "reads": ld.reads,
             "record": ld.record} for ld in all_loaders().values()]
