"""The layers of docs/ARCHITECTURE.md, checked: who may import whom, and that importing the
packages or the store's read side does no work (no parser, no file read, no import hook)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCES = ("k8s_audit", "k8s_container", "k8s_events", "linux_auditd", "linux_auth",
           "linux_syslog", "mks_cluster", "openstack_cadf", "selectel_audit", "selectel_auth",
           "windows_events")

# layer -> the layers of ours it may import (itself included). The order is the one of
# docs/ARCHITECTURE.md, bottom up; `loaders` is the package facade, whose imports are lazy.
# The loader contract (loaders.base) belongs to the parsing layer: it reads files through
# parsing.inputs and parsing.jsonreader, and item-producing helpers (jsonl_blocks,
# batch_items) build on it.
ALLOWED: dict[str, set[str]] = {
    "schema": {"schema"},
    "parsing": {"schema", "parsing"},
    "source": {"schema", "parsing"},  # and its own package (test_imports_go_downward_only)
    "registry": {"schema", "parsing", "registry"},
    "store": {"schema", "store"},
    "ingest": {"schema", "parsing", "registry", "store", "ingest", "facade"},
    "facade": {"schema", "parsing", "registry", "store", "ingest", "facade"},
    "tool": {"schema", "parsing", "registry", "facade"},
    "analysis": {"schema", "store", "facade", "analysis"},
    "cli": {"schema", "parsing", "registry", "store", "ingest", "facade", "tool", "analysis",
            "cli"},
}
PARSER_LAYERS = {"parsing", "source", "registry"}


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "analysis":
        return "cli" if module == "analysis.cli" else "analysis"
    if module == "loaders":
        return "facade"
    second = parts[1]
    return {"schema": "schema", "parsing": "parsing", "base": "parsing",
            "registry": "registry", "store": "store", "ingest": "ingest",
            "schemadoc": "tool"}.get(
        second, "source" if second in SOURCES else "unknown")


def project_modules() -> dict[str, Path]:
    out = {}
    for pkg in ("loaders", "analysis"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "_native" in path.parts:
                continue
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Project modules imported by the file, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        found.update(n for n in names if n in known)
    return found


def test_every_module_has_a_layer() -> None:
    unknown = [m for m in project_modules() if layer(m) == "unknown"]
    assert unknown == []


def test_imports_go_downward_only() -> None:
    modules = project_modules()
    known = set(modules)
    wrong = []
    for name, path in modules.items():
        own = layer(name)
        for target in imports_of(path, known):
            other = layer(target)
            if own == "source" and other == "source":
                ok = target.split(".")[1] == name.split(".")[1]  # its own package only
            else:
                ok = other in ALLOWED[own]
            if not ok:
                wrong.append(f"{name} ({own}) imports {target} ({other})")
    assert wrong == []


def test_the_store_imports_no_parser_and_no_parser_imports_the_store() -> None:
    modules = project_modules()
    known = set(modules)
    for name, path in modules.items():
        targets = {layer(t) for t in imports_of(path, known)}
        if layer(name) == "store":
            assert not targets & (PARSER_LAYERS | {"ingest", "analysis", "cli"}), name
        if layer(name) in PARSER_LAYERS:
            assert not targets & {"store", "ingest", "analysis", "cli"}, name


_PROBE = r"""
import json, sys
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and not args[0].endswith(
            (".py", ".pyc", ".so", ".pth")) and "/site-packages/" not in args[0] \
            and not args[0].startswith("/usr/share/zoneinfo/"):  # pyarrow's tz="UTC"
        opened.append(args[0])
sys.addaudithook(hook)
hooks = list(sys.meta_path)
import loaders, analysis
import loaders.store.read
after_import = {"opened": list(opened), "new_hooks": [repr(h) for h in sys.meta_path
                                                      if h not in hooks]}
frame = analysis.read_events(sys.argv[1], columns=["timestamp", "source", "user"])
print(json.dumps({**after_import, "rows": len(frame),
                  "sources": sorted(frame["source"].unique()),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in
                                    ("loaders", "analysis"))}))
"""


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loaders.ingest.pipeline import ingest
    from loaders.store.store import Store

    root = tmp_path_factory.mktemp("arch") / "store"
    files = [ROOT / "tests/fixtures/k8s-audit/falco_trace_files_k8s_audit.jsonl",
             ROOT / "tests/fixtures/linux-auditd/" / sorted(
                 p.name for p in (ROOT / "tests/fixtures/linux-auditd").glob("*.log"))[0]]
    report = ingest(Store(root), files)
    assert report.ok
    return root


def test_reading_events_imports_no_parser_reads_no_file_and_installs_no_hook(
        small_store: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE, str(small_store)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    got = json.loads(out)
    assert got["opened"] == [] and got["new_hooks"] == []
    assert got["sources"] == ["k8s_audit", "linux_auditd"] and got["rows"] > 49
    parsers = [m for m in got["modules"] if m != "loaders" and layer(m) in PARSER_LAYERS]
    assert parsers == []
    assert {"loaders.store.read", "loaders.schema"} <= set(got["modules"])


def test_the_full_schema_needs_no_parser() -> None:
    probe = ("import sys, loaders.schema as s; n = len(s.event_schema()); "
             "print(n, sorted(m for m in sys.modules if m.startswith('loaders')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split(" ", 1)
    import loaders

    assert int(out[0]) == len(loaders.event_schema()) == 188
    assert ast.literal_eval(out[1]) == ["loaders", "loaders.schema", "loaders.schema.core",
                                        "loaders.schema.extras"]


def test_only_vis_draws_and_the_pipeline_never_imports_the_cli() -> None:
    """plotly and ipywidgets are imported by analysis.vis (and widgets) only; no analysis
    module but the CLI imports the CLI (ANALYSIS.md: imports go one way)."""
    offenders = []
    for name, path in project_modules().items():
        if not name.startswith("analysis") or name.startswith(("analysis.vis",
                                                               "analysis.widgets")):
            continue
        for node in ast.walk(ast.parse(path.read_bytes())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for mod in mods:
                top = mod.split(".")[0]
                if top in ("plotly", "ipywidgets", "matplotlib", "bokeh") or (
                        mod.startswith("analysis.cli") and name != "analysis.cli"):
                    offenders.append(f"{name} imports {mod}")
    assert offenders == []
