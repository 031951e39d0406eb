from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

import loaders
from loaders.schema import CORE_NAMES, SchemaError, event_schema, validate
from loaders.schemadoc import render

ROOT = Path(__file__).resolve().parent.parent


def test_imports_resolve_to_this_checkout() -> None:
    import analysis

    assert Path(loaders.__file__).resolve().parent == ROOT / "loaders"
    assert Path(analysis.__file__).resolve().parent == ROOT / "analysis"


def test_schema_doc_is_current() -> None:
    assert (ROOT / "docs" / "SCHEMA.md").read_text() == render(), (
        "regenerate with: python -m loaders.schemadoc > docs/SCHEMA.md"
    )


def test_full_schema_has_core_then_extras() -> None:
    schema = event_schema()
    names = schema.names
    assert names[0] == "timestamp" and schema.field("timestamp").type == pa.timestamp("us", "UTC")
    core = [n for n in names if n in CORE_NAMES]
    assert names[: len(core)] == core
    extras = names[len(core):]
    assert extras == sorted(extras) and "k8s_verb" in extras


def test_validate_fills_missing_and_casts() -> None:
    table = pa.table({"event_uid": ["u1"], "source": ["k8s_audit"], "process_pid": ["42"],
                      "timestamp": [datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)]})
    out = validate(table)
    assert out.schema == event_schema()
    assert out.column("process_pid").to_pylist() == [42]
    assert out.column("user").to_pylist() == [None]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("category", "weird", "category values"), ("outcome", "ok", "outcome values"),
     ("bogus_col", "x", "unregistered"), ("process_pid", "abc", "process_pid")],
)
def test_validate_refuses_bad_batches(column: str, value: str, message: str) -> None:
    table = pa.table({"event_uid": ["u1"], "source": ["s"], column: [value]})
    with pytest.raises(SchemaError, match=message):
        validate(table)


def test_validate_refuses_events_without_uid() -> None:
    with pytest.raises(SchemaError, match="without event_uid"):
        validate(pa.table({"event_uid": pa.array([None], pa.string()), "source": ["s"]}))


def test_a_loader_may_yield_arrow_tables(tmp_path: Path) -> None:
    from loaders.base import Loader, LoadOptions, ParsedTable, Reject
    from loaders.ingest.runner import FileRun
    from loaders.parsing.inputs import input_file

    class TwoWays(Loader):
        name = "k8s_audit"  # reuse a registered name and its k8s_ columns

        def parse(self, src):  # type: ignore[no-untyped-def]
            yield Reject(1, "bad", "x")
            yield ParsedTable(pa.table({
                "timestamp": pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * 2,
                                      pa.timestamp("us", "UTC")),
                "category": ["log", "log"], "k8s_verb": ["get", None],
                "source_line": [2, 3], "raw": ["a", "b"], "native_id": ["n1", None]}))

    path = tmp_path / "f"
    path.write_text("x\na\nb\n")
    run = FileRun(TwoWays(), input_file(path), b"", LoadOptions(), "ing")
    out = dict(iter(run))
    ev = out["events"]
    assert ev.schema == event_schema() and ev.num_rows == 2
    assert ev.column("k8s_verb").to_pylist() == ["get", None]
    assert ev.column("source_file").to_pylist() == [str(path)] * 2
    assert ev.column("event_uid").to_pylist()[0] != ev.column("event_uid").to_pylist()[1]
    assert (run.counts.read, run.counts.loaded, run.counts.rejected) == (3, 2, 1)
