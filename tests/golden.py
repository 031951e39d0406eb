"""Golden snapshots of the stored core values of every fixture.

For each fixture row of ``tests/fixtures/*/PROVENANCE.tsv``, ``tests/golden/<dir>/<file>.tsv``
holds the core columns and ``event_uid`` of every event it loads, one line an event, in
load order. ``tests/test_golden.py`` compares them exactly, so any change of stored values
shows up as a diff of these files, to be reviewed and committed with the change:

    .venv/bin/python -m tests.golden            # rewrite the snapshots (make golden)
    .venv/bin/python -m tests.golden --check    # list the fixtures whose snapshot differs

``source_file`` (a path on this machine), ``ingest_id`` (random per run) and ``raw`` (the
input itself, already in git) are left out. Values are written as text: null as ``\\N``,
backslash, tab, newline and carriage return escaped, timestamps as ISO 8601 in UTC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, provenance_rows

GOLDEN = ROOT / "tests" / "golden"
LEFT_OUT = ("source_file", "ingest_id", "raw")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def columns() -> list[str]:
    from loaders.schema import CORE_COLUMNS

    return [c.name for c in CORE_COLUMNS if c.name not in LEFT_OUT]


def rows() -> list[dict[str, str]]:
    """The fixture rows that name a loader."""
    return [r for r in provenance_rows() if r["loader"] != "-"]


def snapshot_path(row: dict[str, str]) -> Path:
    path = Path(row["path"])
    return GOLDEN / path.parent.relative_to(ROOT / "tests" / "fixtures") / f"{path.name}.tsv"


def _cell(value: Any) -> str:
    if value is None:
        return "\\N"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).translate(_ESCAPES)


def render(row: dict[str, str]) -> str:
    """The snapshot text of one fixture, as loaded now."""
    import pyarrow as pa

    import loaders

    names = columns()
    events = loaders.load(row["path"]).events
    table = pa.Table.from_pandas(events[names], preserve_index=False)
    lines = ["\t".join(names)]
    lines.extend("\t".join(_cell(v) for v in rec.values()) for rec in table.to_pylist())
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list differing snapshots and exit 1 if any")
    args = parser.parse_args(argv)
    wanted = {snapshot_path(r) for r in rows()}
    changed = []
    for row in rows():
        path, text = snapshot_path(row), render(row)
        old = path.read_text("utf-8") if path.exists() else None
        if old == text:
            continue
        changed.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
    stale = sorted(p for p in GOLDEN.rglob("*.tsv") if p not in wanted)
    if not args.check:
        for path in stale:
            path.unlink()
    for path in changed:
        print(("differs: " if args.check else "updated: ") + str(path.relative_to(ROOT)))
    for path in stale:
        print(("stale: " if args.check else "removed: ") + str(path.relative_to(ROOT)))
    print(f"{len(wanted)} snapshots, {len(changed)} {'differ' if args.check else 'written'}, "
          f"{len(stale)} {'stale' if args.check else 'removed'}", file=sys.stderr)
    return 1 if args.check and (changed or stale) else 0


if __name__ == "__main__":
    sys.exit(main())
