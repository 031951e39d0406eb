"""Seed corpus for the fuzzer: the head of each fixture, prefixed with its loader's index."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import provenance_rows  # noqa: E402


def main(out: Path) -> None:
    import loaders

    names = [*sorted(n for n in loaders.LOADERS if n != "windows_events"), "windows_events"]
    out.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(provenance_rows()):
        if row["loader"] not in names:
            continue
        head = Path(row["path"]).read_bytes()[:4096]
        (out / f"seed-{i:03d}").write_bytes(bytes([names.index(row["loader"])]) + head)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
