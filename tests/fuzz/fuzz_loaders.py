"""Coverage-guided fuzzing of every text loader with atheris.

Run: ``.venv/bin/pip install -e '.[fuzz]'`` then
``.venv/bin/python tests/fuzz/fuzz_loaders.py -atheris_runs=100000 tests/fuzz/corpus``
(``make fuzz`` does both). The first input byte picks the loader, the rest is the file.
An input that makes a loader raise, crash, or break ``read == loaded + rejected +
duplicate`` is a finding: libFuzzer writes it to ``crash-<sha1>``; add it to
``tests/fixtures/`` with a regression test.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import loaders
    from loaders.base import LoadOptions

NAMES = [*sorted(n for n in loaders.LOADERS if n != "windows_events"), "windows_events"]
OPTIONS = LoadOptions(max_initial_rejects=1000)
_TMP = Path(tempfile.mkdtemp(prefix="auditlens-fuzz-")) / "input"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    name = NAMES[data[0] % len(NAMES)]
    _TMP.write_bytes(data[1:])
    result = loaders.load(_TMP, format=name, options=OPTIONS)
    c = result.counts
    if c.read != c.loaded + c.rejected + c.duplicate:
        raise AssertionError(f"{name}: counts do not add up: {c}")
    if (result.error or "").startswith(f"{name} loader error"):
        raise AssertionError(result.error)


def main() -> None:
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
