"""A short atheris run over every loader; skipped unless AUDITLENS_FUZZ=1 (see RELIABILITY.md)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.fuzz,
    pytest.mark.skipif(os.environ.get("AUDITLENS_FUZZ") != "1",
                       reason="fuzzing runs only with AUDITLENS_FUZZ=1 (make fuzz)"),
]


def test_short_fuzz_run_finds_nothing(tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.fail("atheris is not installed: pip install -e '.[fuzz]' (make fuzz does it)")
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, "tests/fuzz/make_corpus.py", str(corpus)], cwd=ROOT,
                   check=True)
    runs = os.environ.get("AUDITLENS_FUZZ_RUNS", "3000")
    out = subprocess.run(
        [sys.executable, "tests/fuzz/fuzz_loaders.py", f"-atheris_runs={runs}",
         "-max_len=8192", f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not list(tmp_path.glob("crash-*"))
