"""The stored-id index that lets a commit skip de-duplication, and both exact paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import read_events
from loaders.base import LoadOptions, Tuning, make_uid
from loaders.ingest.pipeline import ingest
from loaders.ingest.runner import table_uids
from loaders.store.store import Store
from loaders.store.uidindex import UidIndex, fingerprints
from tests.helpers import write_k8s_copy


def _sorted(uids: pa.Array) -> np.ndarray:
    fps = fingerprints(uids)
    assert fps is not None
    return np.sort(fps)


def _uids(*keys: str) -> pa.Array:
    return pa.array([make_uid("k8s_audit", k, "") for k in keys])


def test_fingerprints_are_exact_64_bit_words_of_the_id_text() -> None:
    uids = _uids("a", "b", "a")
    fps = fingerprints(uids)
    assert fps is not None and fps.dtype == np.uint64
    assert fps[0] == fps[2] != fps[1]
    assert fingerprints(uids.slice(1)).tolist() == fps[1:].tolist()  # offsets honoured
    assert fingerprints(pa.array(["short"])) is None  # not our ids: always the exact path
    assert fingerprints(pa.array([None], pa.string())) is None


def test_index_says_new_only_when_no_fingerprint_is_stored(tmp_path: Path) -> None:
    part = tmp_path / "part.parquet"
    pq.write_table(pa.table({"event_uid": _uids("a", "b")}), part)
    index = UidIndex()
    key = ("k8s_audit", "2026-11-01")
    parts = lambda: [part]  # noqa: E731
    assert index.stored(key, parts) == 2
    assert index.is_new(key, parts, _sorted(_uids("c", "d")))
    assert not index.is_new(key, parts, _sorted(_uids("c", "a")))  # stored
    assert not index.is_new(key, parts, _sorted(_uids("c", "c")))  # repeated
    index.add(key, parts, _sorted(_uids("c")))
    assert not index.is_new(key, parts, _sorted(_uids("c")))
    assert index.stored(key, parts) == 3
    assert index.exact(key, parts).to_pylist() == _uids("a", "b").to_pylist()


@pytest.mark.parametrize("path", ["arrow", "duckdb"])
def test_both_dedupe_paths_keep_the_first_copy_of_each_id(
        tmp_path: Path, path: str) -> None:
    # 0: no staged day is small enough for Arrow, every one goes to DuckDB
    options = LoadOptions(tuning=Tuning(dedupe_in_memory_rows=0 if path == "duckdb"
                                        else Tuning().dedupe_in_memory_rows))
    full = tmp_path / "full.jsonl"
    write_k8s_copy(full, "paths")
    lines = full.read_text().splitlines()
    a, b, c = (tmp_path / f"{x}.jsonl" for x in "abc")
    a.write_text("\n".join(lines[:30]) + "\n")
    b.write_text("\n".join(lines[20:] + lines[25:27]) + "\n")  # 10 stored, 2 repeated
    c.write_text("\n".join(lines[:5]) + "\n ")  # all stored (differs by a blank)
    store = Store(tmp_path / "store")
    report = ingest(store, [a, b, c], options=options)
    got = [(f.read, f.loaded, f.rejected, f.duplicate) for f in report.files]
    assert got == [(30, 30, 0, 0), (31, 19, 0, 12), (5, 0, 0, 5)]
    events = read_events(store.root)
    assert len(events) == 49 and events["event_uid"].is_unique
    first_b = events[events["source_file"] == str(b)]["source_line"].min()
    assert first_b == 11  # line 31 of full (index 30) is b's line 11: the first new one


def test_table_uids_equal_make_uid_row_by_row() -> None:
    raw = pa.chunked_array([pa.array(["a", "bé", "c", "", "x" * 1000]), pa.array(["d"])])
    nid = pa.chunked_array([pa.array([None, "id1", "", None, "id2"], pa.string()),
                            pa.array(["z"])])
    expected = [make_uid("src", i, r) for i, r in zip(nid.to_pylist(), raw.to_pylist(),
                                                      strict=True)]
    assert table_uids("src", raw, nid).to_pylist() == expected
    assert table_uids("src", raw, None).to_pylist() == [make_uid("src", None, r)
                                                        for r in raw.to_pylist()]
    every = pa.chunked_array([pa.array(["i1", "i2", "i3", "i4", "i5", "i6"])])  # no raw keys
    assert table_uids("src", raw, every).to_pylist() == [
        make_uid("src", i, r) for i, r in zip(every.to_pylist(), raw.to_pylist(), strict=True)]
    with_null = pa.chunked_array([pa.array(["a", None])])  # the per-row fallback
    assert table_uids("src", with_null, None).to_pylist() == [
        make_uid("src", None, "a"), make_uid("src", None, None)]  # type: ignore[arg-type]
