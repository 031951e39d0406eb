"""The evidence store: layout, counts, idempotence, de-duplication, crash safety, readers."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from analysis import read_events, read_manifest, read_rejects
from loaders.ingest.pipeline import DEFER_HASH_BYTES, ingest
from loaders.schema import event_schema
from loaders.store.staging import SMALL_DAY_ROWS, _event_file_options
from loaders.store.store import Store
from tests.helpers import K8S_AUDIT, write_k8s_copy

ROOT = Path(__file__).resolve().parent.parent


def _store_state(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Store content independent of ingest ids and part names: events and manifest counts."""
    ev = read_events(root).drop(columns=["ingest_id"]).sort_values("event_uid")
    ev = ev.reset_index(drop=True)
    m = read_manifest(root)[["path", "sha256", "loader", "status", "records_read",
                             "records_loaded", "records_rejected", "records_duplicate"]]
    return ev, m.sort_values("path").reset_index(drop=True)


def test_ingest_writes_partitions_manifest_and_rejects(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    report = ingest(store, [K8S_AUDIT])
    [f] = report.files
    assert (f.status, f.loader, f.read, f.loaded, f.rejected, f.duplicate) == (
        "ingested", "k8s_audit", 52, 50, 1, 1)
    days = {p.parent.name: pq.ParquetFile(p).metadata.num_rows for p in store.part_files()}
    assert days == {"date=2018-10-25": 8, "date=2018-10-26": 38, "date=2020-03-24": 1,
                    "date=2020-04-21": 3}
    for part in store.part_files():
        assert pq.ParquetFile(part).schema_arrow == event_schema()
        # a day of fewer than SMALL_DAY_ROWS events is written with LZ4, larger ones zstd
        assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "LZ4"
    used = frozenset(["timestamp"])
    assert _event_file_options(used, SMALL_DAY_ROWS)["compression"]["timestamp"] == "zstd"
    assert _event_file_options(used, SMALL_DAY_ROWS - 1)["compression"]["timestamp"] == "lz4"
    assert _event_file_options(used, 1)["compression"]["raw"] == "none"  # not the loader's
    m = read_manifest(store.root)
    assert len(m) == 1
    assert m.loc[0, "sha256"] == hashlib.sha256(K8S_AUDIT.read_bytes()).hexdigest()
    assert m.loc[0, "size"] == K8S_AUDIT.stat().st_size
    assert str(m.loc[0, "first_timestamp"]) == "2018-10-25 13:58:49.730588+00:00"
    assert str(m.loc[0, "last_timestamp"]) == "2020-04-21 17:58:49.691845+00:00"
    rj = read_rejects(store.root)
    assert rj[["source_line", "excerpt"]].values.tolist() == [[49, '{"kind":0}']]
    assert rj.loc[0, "reason"].startswith("not a Kubernetes audit Event (no auditID)")
    assert not list(store.root.rglob("*.tmp")) and not (store.root / ".tmp").exists()


def test_same_directory_twice_stores_nothing_new(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    shutil.copy(K8S_AUDIT, evidence / "audit.jsonl")
    (evidence / "notes.txt").write_text("case notes, not a log\n")
    store = Store(tmp_path / "store")
    first = ingest(store, [evidence])
    assert [(f.status, f.loaded) for f in first.files] == [("ingested", 50), ("skipped", 0)]
    assert "no loader recognises this file" in first.files[1].message
    before = sorted(p.name for p in store.root.rglob("*.parquet"))
    again = ingest(store, [evidence])
    assert [(f.status, f.loaded) for f in again.files] == [("skipped", 0), ("skipped", 0)]
    assert "already in the store (52 records" in again.files[0].message
    assert sorted(p.name for p in store.root.rglob("*.parquet")) == before


def test_large_files_hashed_while_parsing_are_still_recognised(tmp_path: Path) -> None:
    # files of at least DEFER_HASH_BYTES with a size new to the store are hashed in a
    # thread during parsing; repeats must still be skipped, and the manifest hash exact
    big = tmp_path / "big.jsonl"
    n = write_k8s_copy(big, "big", repeat=50)
    assert big.stat().st_size >= DEFER_HASH_BYTES
    same = tmp_path / "same.jsonl"
    shutil.copy(big, same)
    store = Store(tmp_path / "store")
    report = ingest(store, [big, same])
    assert [(f.status, f.loaded) for f in report.files] == [("ingested", n), ("skipped", 0)]
    assert report.files[1].message == f"same content as {big} in this run"
    assert read_manifest(store.root)["sha256"].tolist() == [
        hashlib.sha256(big.read_bytes()).hexdigest()]
    again = ingest(store, [same])
    assert [(f.status, f.message) for f in again.files] == [
        ("skipped", f"already in the store ({n:,} records, as {big})")]


def test_overlapping_exports_count_duplicates(tmp_path: Path) -> None:
    full = tmp_path / "full.jsonl"
    write_k8s_copy(full, "overlap")
    lines = full.read_text().splitlines()
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("\n".join(lines[:30]) + "\n")
    b.write_text("\n".join([*lines[20:], "{broken"]) + "\n")  # lines 21-30 overlap
    store = Store(tmp_path / "store")
    report = ingest(store, [a, b])
    got = [(f.read, f.loaded, f.rejected, f.duplicate) for f in report.files]
    assert got == [(30, 30, 0, 0), (30, 19, 1, 10)]
    assert len(read_events(store.root)) == 49
    for f in report.files:
        assert f.read == f.loaded + f.rejected + f.duplicate


def test_read_events_filters_and_columns(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    ingest(store, [K8S_AUDIT])
    df = read_events(store.root, columns=["timestamp", "user", "action", "target"],
                     where="category = 'session'")
    assert list(df.columns) == ["timestamp", "user", "action", "target"]
    assert df.values.tolist() == [
        [pd.Timestamp("2018-10-26 13:38:34.867116+00:00"), "minikube-user",
         "create pods/exec", "default/pods/nginx-deployment-7998647bdf-phvq7/exec"],
        [pd.Timestamp("2018-10-26 13:42:46.764713+00:00"), "minikube-user",
         "create pods/attach", "default/pods/nginx-deployment-7998647bdf-phvq7/attach"],
    ]
    day = read_events(store.root, start="2018-10-26", end="2018-10-27")
    assert len(day) == 38 and day["timestamp"].is_monotonic_increasing
    assert len(read_events(store.root, sources=["linux_auth"])) == 0
    assert list(read_events(store.root, sources=["nope"]).columns) == event_schema().names
    assert str(read_events(store.root)["timestamp"].dtype) == "datetime64[us, UTC]"
    with pytest.raises(KeyError, match="bogus"):
        read_events(store.root, columns=["bogus"])


def test_readers_tolerate_files_without_newer_columns(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    ingest(store, [K8S_AUDIT])
    part = store.part_files()[0]
    table = pq.read_table(part)
    pq.write_table(table.drop_columns(["k8s_verb", "parse_warning"]), part)
    df = read_events(store.root)
    assert len(df) == 50 and list(df.columns) == event_schema().names
    assert df["k8s_verb"].isna().sum() == 8


def test_plain_duckdb_and_pyarrow_read_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    ingest(store, [K8S_AUDIT])
    glob = str(store.root / "events" / "**" / "*.parquet")
    assert duckdb.sql(f"SELECT count(*), count(DISTINCT event_uid) FROM read_parquet('{glob}')"
                      ).fetchall() == [(50, 50)]
    dataset = ds.dataset(store.root / "events", format="parquet", partitioning="hive")
    assert dataset.count_rows() == 50
    assert set(dataset.to_table(columns=["date"]).column("date").to_pylist()) == {
        "2018-10-25", "2018-10-26", "2020-03-24", "2020-04-21"}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
def test_crash_at_commit_points_then_rerun_equals_clean_run(tmp_path: Path, point: str) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        write_k8s_copy(inputs / f"f{i}.jsonl", f"t{i}")
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    assert _cli("ingest", str(inputs), "--store", str(clean)).returncode == 0
    died = _cli("ingest", str(inputs), "--store", str(crashed),
                env={"AUDITLENS_CRASH_AT": point})
    assert died.returncode == 137
    assert _cli("ingest", str(inputs), "--store", str(crashed)).returncode == 0
    ev_a, m_a = _store_state(clean)
    ev_b, m_b = _store_state(crashed)
    pd.testing.assert_frame_equal(ev_a, ev_b)
    pd.testing.assert_frame_equal(m_a, m_b)
    assert len(ev_a) == 3 * 49
    assert not list(crashed.rglob("*.tmp"))


@pytest.mark.slow
def test_sigkill_midway_then_rerun_equals_clean_run(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(12):
        write_k8s_copy(inputs / f"f{i:02d}.jsonl", f"k{i}", repeat=40)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert _cli("ingest", str(inputs), "--store", str(clean)).returncode == 0
    for delay, jobs in ((1.5, "1"), (2.5, "2")):
        proc = subprocess.Popen([sys.executable, "-m", "analysis.cli", "ingest", str(inputs),
                                 "--store", str(killed), "--jobs", jobs], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _cli("ingest", str(inputs), "--store", str(killed)).returncode == 0
    ev_a, m_a = _store_state(clean)
    ev_b, m_b = _store_state(killed)
    pd.testing.assert_frame_equal(ev_a, ev_b)
    pd.testing.assert_frame_equal(m_a, m_b)


def test_parallel_ingest_gives_the_same_store(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(4):
        write_k8s_copy(inputs / f"f{i}.jsonl", f"p{i}")
    shutil.copy(K8S_AUDIT, inputs / "orig.jsonl")
    serial, parallel = Store(tmp_path / "s"), Store(tmp_path / "p")
    ingest(serial, [inputs])
    report = ingest(parallel, [inputs], jobs=2)
    assert [f.status for f in report.files] == ["ingested"] * 5
    ev_a, m_a = _store_state(serial.root)
    ev_b, m_b = _store_state(parallel.root)
    pd.testing.assert_frame_equal(ev_a, ev_b)
    pd.testing.assert_frame_equal(m_a, m_b)


def test_staged_rows_split_by_utc_day_as_strftime_would() -> None:
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.compute as pc

    from loaders.store.layout import UNKNOWN_DATE
    from loaders.store.staging import _by_day

    stamps = [datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), None,
              datetime(1970, 1, 1, tzinfo=UTC), datetime(1601, 1, 1, tzinfo=UTC),
              datetime(9999, 12, 31, 23, 59, tzinfo=UTC), datetime(1970, 1, 1, 5, tzinfo=UTC)]
    table = pa.table({"timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
                      "n": list(range(6))})
    got = {day: part.column("n").to_pylist() for day, part in _by_day(table)}
    names = pc.fill_null(pc.strftime(table.column("timestamp"), "%Y-%m-%d"), UNKNOWN_DATE)
    expected: dict[str, list[int]] = {}
    for i, name in enumerate(names.to_pylist()):
        expected.setdefault(name, []).append(i)
    assert got == expected
    assert got["unknown"] == [1] and got["1970-01-01"] == [2, 5]
    one_day = table.slice(2, 1)
    assert [(d, p is one_day) for d, p in _by_day(one_day)] == [("1970-01-01", True)]


def test_typed_rows_match_the_on_disk_schemas(tmp_path: Path) -> None:
    """ManifestRow, RejectRow and StoreSummary name exactly what is written and returned, and
    FileStatus the statuses the manifest holds (a stopped file and an ingested one here)."""
    from typing import get_args

    from loaders.base import LoadOptions
    from loaders.ingest.pipeline import OutcomeStatus
    from loaders.store.layout import (
        MANIFEST_SCHEMA,
        REJECT_SCHEMA,
        FileStatus,
        ManifestRow,
        RejectRow,
        StoredTable,
    )
    from loaders.store.read import StoreSummary, store_summary

    assert list(ManifestRow.__annotations__) == MANIFEST_SCHEMA.names
    assert set(ManifestRow.__required_keys__) == set(MANIFEST_SCHEMA.names)
    assert list(RejectRow.__annotations__) == REJECT_SCHEMA.names
    assert get_args(StoredTable) == ("events", "rejects")
    flat = [a for arg in get_args(OutcomeStatus) for a in (get_args(arg) or (arg,))]
    assert sorted(flat) == ["failed", "ingested", "refused", "skipped", "stopped"]
    bad = tmp_path / "stops.jsonl"
    bad.write_text(K8S_AUDIT.read_text() + "{broken\n" * 3 + K8S_AUDIT.read_text())
    store = Store(tmp_path / "store")
    report = ingest(store, [K8S_AUDIT, bad], options=LoadOptions(max_consecutive_rejects=3))
    assert [f.status for f in report.files] == ["ingested", "stopped"]
    rows = store.manifest_rows()
    assert {r["status"] for r in rows} | {"failed"} == set(get_args(FileStatus))
    # (a failed file's row: tests/test_damage.py::test_a_failed_file_keeps_its_rejects...)
    assert [list(r) for r in rows] == [MANIFEST_SCHEMA.names] * 2
    totals = report.totals()
    assert totals == {**{k: sum(getattr(f, k) for f in report.files)
                         for k in ("read", "loaded", "rejected", "duplicate")},
                      "ingested": 1, "stopped": 1, "failed": 0, "skipped": 0, "refused": 0}
    assert totals["loaded"] == 50
    assert totals["read"] == totals["loaded"] + totals["rejected"] + totals["duplicate"]
    summary = store_summary(store)
    assert list(summary) == list(StoreSummary.__annotations__)
    assert (summary["events"], summary["rejects"], len(summary["files"])) == (
        50, totals["rejected"], 2)
