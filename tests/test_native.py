"""The compiled auditd modules (loaders/native.py) give exactly what the Python source gives,
and are used only while they match it.

``make test`` builds them first and sets ``AUDITLENS_REQUIRE_NATIVE=1``, so a missing or
broken build fails here instead of being skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pyarrow as pa
import pytest

from loaders import native
from tests.conftest import ROOT
from tests.test_linux_auditd_fast import ALL, _variants

SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def _fake_build(tmp_path: Path) -> tuple[Path, Path]:
    """A package of two sources and a build manifest that matches them."""
    pkg, out = tmp_path / "pkg", tmp_path / "native"
    (out / "loaders").mkdir(parents=True)
    pkg.mkdir()
    (pkg / "a.py").write_text("A = 1\n")
    (pkg / "b.py").write_text("B = 2\n")
    (out / "loaders" / f"a{SUFFIX}").write_bytes(b"")
    manifest = {"ext_suffix": SUFFIX, "files": {"loaders.a": f"loaders/a{SUFFIX}"},
                "sources": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                            for p in pkg.glob("*.py")}}
    (out / native.MANIFEST).write_text(json.dumps(manifest))
    return out, pkg


def test_a_build_that_matches_its_sources_is_used(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV, raising=False)
    out, pkg = _fake_build(tmp_path)
    state = native.check(out, pkg)
    assert state.active and state.modules == {"loaders.a": out / "loaders" / f"a{SUFFIX}"}


def test_an_edited_source_turns_the_build_off(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV, raising=False)
    out, pkg = _fake_build(tmp_path)
    (pkg / "b.py").write_text("B = 3\n")  # not a compiled module: its constants may be inlined
    state = native.check(out, pkg)
    assert not state.active
    assert state.reason == "loader sources changed since the build: b.py"
    (pkg / "b.py").unlink()
    assert native.check(out, pkg).reason == "loader sources changed since the build: b.py"
    (pkg / "b.py").write_text("B = 2\n")
    assert native.check(out, pkg).active
    (pkg / "c.py").write_text("C = 4\n")  # a module the build has never seen
    assert native.check(out, pkg).reason == "loader sources changed since the build: c.py"


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
