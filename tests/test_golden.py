"""Every fixture's stored core values equal its golden snapshot (see tests/golden.py)."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.golden import render, rows, snapshot_path

ROWS = rows()


def _id(row: dict[str, str]) -> str:
    return f"{Path(row['path']).parent.name}/{row['file']}"


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_stored_values_equal_the_golden_snapshot(row: dict[str, str]) -> None:
    path = snapshot_path(row)
    assert path.exists(), f"no snapshot {path}: run `make golden` and review the new file"
    want, got = path.read_text("utf-8"), render(row)
    if got != want:
        diff = "".join(list(difflib.unified_diff(
            want.splitlines(keepends=True), got.splitlines(keepends=True),
            "snapshot", "loaded now", n=0))[:40])
        pytest.fail(f"stored values of {row['file']} changed; if intended, run `make golden` "
                    f"and commit the reviewed diff:\n{diff}")


def test_a_snapshot_has_a_line_per_loaded_event() -> None:
    row = next(r for r in ROWS if r["file"] == "falco_trace_files_k8s_audit.jsonl")
    lines = snapshot_path(row).read_text("utf-8").splitlines()
    assert len(lines) == 1 + int(row["loaded"])
    head = lines[0].split("\t")
    assert head[:2] == ["timestamp", "source"] and "event_uid" in head and "raw" not in head
    assert all(line.split("\t")[1] == "k8s_audit" for line in lines[1:])
