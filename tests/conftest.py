"""Shared test helpers: fixture locations and the provenance table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def provenance_rows() -> list[dict[str, str]]:
    """Every row of every ``tests/fixtures/*/PROVENANCE.tsv``, with ``path`` added."""
    rows = []
    for tsv in sorted(FIXTURES.glob("*/PROVENANCE.tsv")):
        with tsv.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                row["path"] = str(tsv.parent / row["file"])
                rows.append(row)
    return rows


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
