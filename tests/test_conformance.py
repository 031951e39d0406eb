"""One conformance suite for every loader (the ibis idea).

Every row of ``tests/fixtures/*/PROVENANCE.tsv`` names a fixture, the loader that must be
detected for it, and the exact counts it must give. Each is loaded through auto-detection.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import loaders
from loaders.parsing.inputs import read_head
from loaders.schema import event_schema, source_columns, validate
from tests.conftest import provenance_rows

ROWS = [r for r in provenance_rows() if r["loader"] != "-"]


def _id(row: dict[str, str]) -> str:
    return f"{row['loader']}:{Path(row['path']).parent.name}/{row['file']}"


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_fixture_detected_loaded_and_counted(row: dict[str, str]) -> None:
    head = read_head(Path(row["path"]))
    assert loaders.detect(head, Path(row["path"]).name).name == row["loader"]
    result = loaders.load(row["path"])
    c = result.counts
    assert result.source == row["loader"]
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (
        int(row["read"]), int(row["loaded"]), int(row["rejected"]), int(row["duplicate"])
    ), result.rejects.head(5).to_string()
    assert c.read == c.loaded + c.rejected + c.duplicate
    assert len(result.events) == c.loaded and len(result.rejects) == c.rejected
    table = pa.Table.from_pandas(result.events, preserve_index=False)
    assert validate(table).schema == event_schema()
    assert result.events["event_uid"].is_unique
    assert (result.events["source"] == row["loader"]).all()


@pytest.mark.parametrize("name", sorted(loaders.LOADERS))
def test_every_loader_has_a_fixture_and_docs(name: str) -> None:
    loader = loaders.LOADERS[name]
    assert any(r["loader"] == name for r in ROWS), f"{name} has no fixture row"
    assert loader.description and loader.reads
    # a column without the prefix is one of a source it shares (linux_syslog: auth_*)
    shared = {c for other in source_columns(name).shares
              for c in source_columns(other).columns}
    assert all(c.name.startswith(loader.prefix) or c in shared for c in loader.extra_columns)
    schema_doc = (Path(__file__).parent.parent / "docs" / "SCHEMA.md").read_text()
    for col in loader.extra_columns:
        assert f"`{col.name}`" in schema_doc, f"{col.name} missing from docs/SCHEMA.md"


def test_uids_are_deterministic() -> None:
    row = ROWS[0]
    a = loaders.load(row["path"]).events["event_uid"].tolist()
    b = loaders.load(row["path"]).events["event_uid"].tolist()
    assert a == b
