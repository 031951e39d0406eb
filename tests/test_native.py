"""The compiled auditd modules (loaders/linux_auditd/native.py) give exactly what the Python
source gives, and are used only while they match it.

``make test`` builds them first and sets ``AUDITLENS_REQUIRE_NATIVE=1``, so a missing or
broken build fails here instead of being skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pyarrow as pa
import pytest

from loaders.linux_auditd import native
from tests.conftest import ROOT
from tests.test_linux_auditd_fast import ALL, _variants

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def _fake_build(tmp_path: Path) -> tuple[Path, Path]:
    """A project whose compiled module ``loaders.x.a`` imports ``loaders.x.b``, beside a module
    ``loaders.y`` it does not import, and a build manifest that matches them."""
    root, out = tmp_path / "root", tmp_path / "native"
    (out / "loaders").mkdir(parents=True)
    pkg = root / "loaders" / "x"
    pkg.mkdir(parents=True)
    (root / "loaders" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loaders.x.b import B\n\nA = B + 1\n")
    (pkg / "b.py").write_text("B = 2\n")
    (root / "loaders" / "y.py").write_text("Y = 3\n")
    (out / "loaders" / f"a{SUFFIX}").write_bytes(b"")
    covered = native.covered_modules(root, ("loaders.x.a",))
    manifest = {"ext_suffix": SUFFIX, "files": {"loaders.x.a": f"loaders/a{SUFFIX}"},
                "sources": native.source_hashes(covered, root)}
    (out / native.MANIFEST).write_text(json.dumps(manifest))
    return out, root


def test_the_build_covers_the_compiled_modules_and_what_they_import(tmp_path: Path) -> None:
    _, root = _fake_build(tmp_path)
    assert list(native.covered_modules(root, ("loaders.x.a",))) == ["loaders.x.a", "loaders.x.b"]
    real = native.covered_modules()
    assert set(native.COMPILED) <= set(real)
    assert {"loaders.base", "loaders.schema", "loaders.linux_auditd.rows"} <= set(real)
    others = [n for n in real if not n.startswith(("loaders.linux_auditd.", "loaders.base",
                                                   "loaders.schema", "loaders.parsing"))]
    assert others == []  # no other source's parser, nothing of the store or ingest
    assert not any(n.startswith(("loaders.k8s", "loaders.windows", "loaders.store"))
                   for n in real)


def test_a_build_that_matches_its_sources_is_used(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV, raising=False)
    out, root = _fake_build(tmp_path)
    state = native.check(out, root)
    assert state.active and state.modules == {"loaders.x.a": out / "loaders" / f"a{SUFFIX}"}


def test_only_an_edit_the_build_depends_on_turns_it_off(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV, raising=False)
    out, root = _fake_build(tmp_path)
    b = root / "loaders" / "x" / "b.py"
    b.write_text("B = 3\n")  # imported by a compiled module: its constants may be inlined
    state = native.check(out, root)
    assert not state.active
    assert state.reason == "loader sources changed since the build: loaders/x/b.py"
    b.unlink()
    assert native.check(out, root).reason == state.reason  # deleted counts as edited
    b.write_text("B = 2\n")
    assert native.check(out, root).active
    (root / "loaders" / "y.py").write_text("Y = 4\n")  # not imported by the build
    (root / "loaders" / "z.py").write_text("Z = 5\n")  # a module the build has never seen
    assert native.check(out, root).active


def test_editing_another_loader_leaves_the_compiled_build_in_use(tmp_path: Path) -> None:
    """A copy of the project with a Kubernetes loader and the store edited still imports the
    compiled auditd modules; with loaders/base.py edited (imported by them) it does not."""
    if not native.check().active:
        pytest.skip(f"no usable build: {native.check().reason}")
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "loaders", copy / "loaders",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for rel in ("loaders/k8s_audit/loader.py", "loaders/store/store.py"):
        with (copy / rel).open("a") as fh:
            fh.write("\n# edited after the build\n")
    probe = ("import loaders; from loaders.linux_auditd import native; "
             "loaders.get_loader('linux_auditd'); print(native.active(), native.STATE.reason)")
    env = {k: v for k, v in os.environ.items() if k != native.ENV}
    env["PYTHONPATH"] = str(copy)

    def run() -> str:
        return subprocess.run([sys.executable, "-c", probe], cwd=copy, env=env, text=True,
                              capture_output=True, check=True).stdout.strip()

    assert run() == "True compiled build matches the source"
    with (copy / "loaders" / "base.py").open("a") as fh:
        fh.write("\n# edited after the build\n")
    assert run() == "False loader sources changed since the build: loaders/base.py"


def test_other_reasons_to_use_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, pkg = _fake_build(tmp_path)
    monkeypatch.setenv(native.ENV, "0")
    assert native.check(out, pkg).reason == "AUDITLENS_NATIVE=0"
    monkeypatch.delenv(native.ENV)
    (out / "loaders" / f"a{SUFFIX}").unlink()
    assert native.check(out, pkg).reason.startswith("compiled files missing: ")
    manifest = json.loads((out / native.MANIFEST).read_text())
    (out / native.MANIFEST).write_text(json.dumps({**manifest, "ext_suffix": ".cpython-39.so"}))
    assert native.check(out, pkg).reason == f"built for .cpython-39.so, this Python wants {SUFFIX}"
    (out / native.MANIFEST).write_text("{")
    assert native.check(out, pkg).reason.startswith("unreadable manifest: ")
    (out / native.MANIFEST).unlink()
    assert native.check(out, pkg).reason == "no compiled build (run `make native`)"


def _dump(out: Path, inputs: list[Path], compiled: bool) -> dict:
    env = {**os.environ, native.ENV: "1" if compiled else "0"}
    subprocess.run([sys.executable, "-m", "tests.native_dump", str(out), *map(str, inputs)],
                   cwd=ROOT, env=env, check=True, timeout=600)
    return json.loads((out / "mode.json").read_text())


def _read(path: Path) -> pa.Table | None:
    if not path.exists():
        return None
    with pa.memory_map(str(path)) as src:
        return pa.ipc.open_file(src).read_all()


@pytest.mark.slow
def test_compiled_and_python_modules_give_equal_tables(tmp_path: Path) -> None:
    state = native.check()
    if not state.active:
        if os.environ.get("AUDITLENS_REQUIRE_NATIVE") == "1":
            pytest.fail(f"the compiled auditd modules are not usable: {state.reason}")
        pytest.skip(f"no usable compiled build: {state.reason}")
    inputs = []
    for path in ALL:  # every real fixture and its hostile variants
        for name, data in _variants(path):
            inputs.append(tmp_path / "in" / f"{path.name}-{name}.log")
            inputs[-1].parent.mkdir(exist_ok=True)
            inputs[-1].write_bytes(data)
    compiled = _dump(tmp_path / "compiled", inputs, compiled=True)
    python = _dump(tmp_path / "python", inputs, compiled=False)
    assert compiled["compiled"] is True and python["compiled"] is False
    names = sorted(p.name for p in (tmp_path / "python").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "compiled").iterdir())
    assert len([n for n in names if n.endswith(".counts")]) == len(inputs) * 4
    for name in names:
        a, b = tmp_path / "compiled" / name, tmp_path / "python" / name
        if name.endswith((".counts", ".json")):
            assert a.read_text() == b.read_text() or name == "mode.json", name
        else:
            assert _read(a).equals(_read(b)), name


def test_the_suite_runs_the_compiled_modules_when_make_built_them() -> None:
    if os.environ.get("AUDITLENS_REQUIRE_NATIVE") != "1":
        pytest.skip("only under `make test`, which builds the compiled modules")
    if os.environ.get(native.ENV) == "0":
        assert not native.active()
    else:
        assert native.active(), native.STATE.reason
