"""Compiled builds of the auditd hot path, used only while they match the source.

``python -m loaders.linux_auditd.native_build`` (run by ``make``) compiles the modules in
``COMPILED`` with mypyc into ``loaders/_native/``, next to a manifest holding the sha256 of
every module the build depends on: the compiled modules and, transitively, every module of
the project they import (:func:`covered_modules`). The compiled files are never put beside
their source, so they cannot shadow it: :func:`install` (run when ``loaders.linux_auditd`` is
first imported, before any of its modules) adds an import finder for them only when

- ``AUDITLENS_NATIVE`` is not ``0``;
- the manifest was built for this interpreter (same extension suffix);
- every covered module still has the hash it had at build time. A compiled module may have
  inlined constants of the modules it imports, so a change in any of them invalidates the
  build; a module that is not imported by a compiled one (a Kubernetes loader, the store)
  cannot, and editing it leaves the build in use. A compiled module that starts importing
  another one has changed itself, so the closure needs no re-computing at check time.

The compiled and interpreted modules give the same tables (``tests/test_native.py``), and the
suite runs the auditd tests both ways. See docs/ARCHITECTURE.md, "Compiled auditd modules".
"""

from __future__ import annotations

import ast
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

# The reading and mapping code of linux_auditd; the driver (loader.py) stays Python. Its
# sizes (chunks, blocks, the helper threshold) come from LoadOptions.tuning and reach the
# compiled code as arguments, so they can be changed per run either way.
COMPILED = (
    "loaders.linux_auditd.fields",
    "loaders.linux_auditd.split",
    "loaders.linux_auditd.events",
    "loaders.linux_auditd.map",
    "loaders.linux_auditd.offload",
)
ROOT = Path(__file__).resolve().parent.parent.parent  # the folder that holds loaders/
NATIVE_DIR = ROOT / "loaders" / "_native"
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


def _module_file(name: str, root: Path) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(file: Path, root: Path) -> set[str]:
    """The project modules ``file`` imports (``from a.b import c`` counts ``a.b`` and, when
    it is a module, ``a.b.c``), wherever the import stands (TYPE_CHECKING blocks too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(file.read_bytes(), str(file))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.split(".")[0] == "loaders" and _module_file(n, root)}


def covered_modules(root: Path = ROOT, compiled: tuple[str, ...] = COMPILED) -> dict[str, Path]:
    """The compiled modules and every project module they import, transitively, by name."""
    seen: dict[str, Path] = {}
    todo = list(compiled)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        file = _module_file(name, root)
        if file is None:
            raise FileNotFoundError(f"no source for module {name}")
        seen[name] = file
        todo.extend(_imported(file, root) - seen.keys())
    return dict(sorted(seen.items()))


def source_hashes(files: dict[str, Path], root: Path = ROOT) -> dict[str, str]:
    """sha256 of each file, keyed by its path relative to ``root`` (``loaders/…``)."""
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(files.values())}


def _current(built: dict[str, str], root: Path) -> dict[str, str | None]:
    now: dict[str, str | None] = {}
    for rel in built:
        try:
            now[rel] = hashlib.sha256((root / rel).read_bytes()).hexdigest()
        except OSError:
            now[rel] = None
    return now


def check(native_dir: Path = NATIVE_DIR, root: Path = ROOT) -> State:
    """Whether the build in ``native_dir`` may be used for the sources under ``root``."""
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
    if not built:
        return State(reason="the manifest lists no sources")
    now = _current(built, root)
    changed = sorted(rel for rel in built if now[rel] != built[rel])  # edited or deleted
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

