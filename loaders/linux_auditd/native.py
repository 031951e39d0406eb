"""Compiled builds of the auditd hot path, used only while they match the source.

``python -m loaders.native_build`` (run by ``make``) compiles the modules in ``COMPILED`` with
mypyc into ``loaders/_native/``, next to a manifest holding the sha256 of every
``loaders/*.py`` file at build time. The compiled files are never put beside their source, so
they cannot shadow it: :func:`install` (called first thing by ``import loaders``) adds an import
finder for them only when

- ``AUDITLENS_NATIVE`` is not ``0``;
- the manifest was built for this interpreter (same extension suffix);
- every loader source still has the hash it had at build time, and there is no new one. An
  edited, deleted or added loader, whichever it is, means the Python source is used until the
  next build. A compiled module may have inlined constants of modules it imports, so a
  change anywhere must invalidate it.

The compiled and interpreted modules give the same tables (``tests/test_native.py``), and the
suite runs the auditd tests both ways. See docs/ARCHITECTURE.md, "Compiled auditd modules".
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

# The reading and mapping code of linux_auditd; the driver (linux_auditd.py) stays Python so
# that its settings can be changed at run time.
COMPILED = (
    "loaders.linux_auditd_fields",
    "loaders.linux_auditd_split",
    "loaders.linux_auditd_events",
    "loaders.linux_auditd_map",
    "loaders.linux_auditd_offload",
)
PACKAGE_DIR = Path(__file__).resolve().parent
NATIVE_DIR = PACKAGE_DIR / "_native"
MANIFEST = "manifest.json"
ENV = "AUDITLENS_NATIVE"
WARNED = "AUDITLENS_NATIVE_WARNED"

log = logging.getLogger("auditlens.native")


@dataclass
class State:
    """What :func:`install` decided: ``active`` with the modules, or why not."""

    active: bool = False
    reason: str = "not checked"
    modules: dict[str, Path] = field(default_factory=dict)


STATE = State()


def source_hashes(package_dir: Path = PACKAGE_DIR) -> dict[str, str]:
    """sha256 of every ``*.py`` of the package, by file name."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(package_dir.glob("*.py"))}


def check(native_dir: Path = NATIVE_DIR, package_dir: Path = PACKAGE_DIR) -> State:
    """Whether the build in ``native_dir`` may be used for the sources in ``package_dir``."""
    if os.environ.get(ENV, "") == "0":
        return State(reason=f"{ENV}=0")
    try:
        manifest: dict[str, Any] = json.loads((native_dir / MANIFEST).read_text("utf-8"))
    except FileNotFoundError:
        return State(reason="no compiled build (run `make native`)")
    except (OSError, ValueError) as exc:
        return State(reason=f"unreadable manifest: {exc}")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if manifest.get("ext_suffix") != suffix:
        return State(reason=f"built for {manifest.get('ext_suffix')}, this Python wants {suffix}")
    built: dict[str, str] = manifest.get("sources", {})
    now = source_hashes(package_dir)
    # edited, deleted or new: a new module may be imported by a compiled one
    changed = sorted(name for name in built.keys() | now.keys() if now.get(name) != built.get(name))
    if changed:
        return State(reason="loader sources changed since the build: " + ", ".join(changed[:5])
                     + (" …" if len(changed) > 5 else ""))
    modules = {name: native_dir / file for name, file in manifest.get("files", {}).items()}
    missing = [str(p) for p in modules.values() if not p.is_file()]
    if missing or not modules:
        return State(reason="compiled files missing: " + ", ".join(missing))
    return State(active=True, reason="compiled build matches the source", modules=modules)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, modules: dict[str, Path]) -> None:
        self.modules = modules

    def find_spec(self, fullname: str, path: Any = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        file = self.modules.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def install() -> State:
    """Put the compiled modules in front of their source when :func:`check` allows it."""
    global STATE
    if STATE.reason != "not checked":
        return STATE
    STATE = check()
    if STATE.active:
        loaded = [name for name in COMPILED if name in sys.modules]
        if loaded:  # imported before us: mixing would break mypyc's native calls
            STATE = State(reason="source modules were imported first: " + ", ".join(loaded))
        else:
            sys.meta_path.insert(0, _Finder(STATE.modules))
    elif STATE.reason.startswith("loader sources changed") and not os.environ.get(WARNED):
        os.environ[WARNED] = "1"  # once: helper and worker processes inherit it
        log.warning("auditlens: the compiled auditd modules are out of date (%s); "
                    "using the Python source, which is slower. `make native` rebuilds them.",
                    STATE.reason)
    return STATE


def active() -> bool:
    """True when the auditd modules in use are the compiled ones."""
    mod = sys.modules.get(COMPILED[0])
    return mod is not None and not str(getattr(mod, "__file__", "")).endswith(".py")

