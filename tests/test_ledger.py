"""Chain of custody (issue 18): the ledger, a hash chain of every run, and what verify proves.

The consistent tampers a careful insider would try — a run's manifest row removed together
with its files, a part file edited together with its hash in the manifest, a row added by
hand, a ledger entry rewritten with a matching hash, the last run removed whole — each make
``verify`` fail and say what was removed or rewritten; the last two only against a chain
head kept outside the store, as docs/RELIABILITY.md says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.cli import main
from loaders.ingest.pipeline import ingest
from loaders.store import ledger
from loaders.store.layout import MANIFEST_SCHEMA
from loaders.store.store import Store, sha256_file
from loaders.store.verify import verify_store
from tests.helpers import write_k8s_copy

ROOT = Path(__file__).resolve().parent.parent


def _two_runs(tmp_path: Path) -> tuple[Store, list[Path]]:
    """A store of two ingests: a.jsonl and b.jsonl, then c.jsonl."""
    ev = tmp_path / "evidence"
    ev.mkdir()
    files = [ev / f"{n}.jsonl" for n in "abc"]
    for f in files:
        write_k8s_copy(f, f.stem)
    store = Store(tmp_path / "store")
    ingest(store, files[:2])
    ingest(store, files[2:])
    return store, files


def _problems(store: Store, **kw: object) -> list[tuple[str, str, str]]:
    return [(p.kind, p.path, p.detail.split(":")[0])
            for p in verify_store(store, **kw).problems]  # type: ignore[arg-type]


def _write_manifest(store: Store, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), store.manifest_path)


def test_every_ingest_is_sealed_and_the_chain_verifies(tmp_path: Path) -> None:
    store, files = _two_runs(tmp_path)
    led = ledger.read(store.root)
    assert [(e.seq, e.kind, len(e.rows), e.sealed) for e in led.entries] == [
        (1, "ingest", 2, ledger.SEALED_AT_END), (2, "ingest", 1, ledger.SEALED_AT_END)]
    assert led.entries[0].prev == ledger.GENESIS
    assert led.entries[1].prev == led.entries[0].hash
    assert [r["path"] for r in led.entries[0].rows] == [str(f) for f in files[:2]]
    # each sealed row names its files with their hashes
    row = led.entries[1].rows[0]
    assert row["parts_sha256"] == [sha256_file(store.root / p) for p in row["parts"]]
    assert store.chain_head() == (led.entries[1].hash, 2)
    report = verify_store(store)
    assert report.ok and report.rows_sealed == 3 and report.entries == 2
    assert report.head == led.head and report.notes == []


def test_a_row_removed_with_its_files_is_named(tmp_path: Path) -> None:
    store, files = _two_runs(tmp_path)
    rows = store.manifest_rows()
    gone = next(r for r in rows if r["path"] == str(files[1]))
    for rel in gone["parts"]:
        (store.root / rel).unlink()
    _write_manifest(store, [r for r in rows if r is not gone])
    problems = verify_store(store).problems
    assert len(problems) == 1
    assert problems[0].kind == "manifest" and problems[0].path == str(files[1])
    assert problems[0].detail == (
        f"removed: sealed by ingest {gone['ingest_id']} (ledger entry 1, file 2), no longer "
        "in the manifest")


def test_a_part_edited_with_its_hash_is_named(tmp_path: Path) -> None:
    store, files = _two_runs(tmp_path)
    rows = store.manifest_rows()
    row = next(r for r in rows if r["path"] == str(files[0]))
    part = store.root / row["parts"][0]
    table = pq.read_table(part)
    edited = table.set_column(table.schema.get_field_index("user"), "user",
                              pa.array(["someone-else"] * table.num_rows, pa.string()))
    pq.write_table(edited, part)
    row["parts_sha256"] = [sha256_file(store.root / p) for p in row["parts"]]  # made to agree
    _write_manifest(store, rows)
    problems = verify_store(store).problems
    assert [(p.kind, p.path) for p in problems] == [("manifest", str(files[0]))]
    assert problems[0].detail == (
        f"rewritten: its manifest row differs from the one sealed by ingest "
        f"{row['ingest_id']} (ledger entry 1) in parts_sha256")


def test_a_row_added_by_hand_is_not_sealed(tmp_path: Path) -> None:
    store, _files = _two_runs(tmp_path)
    rows = store.manifest_rows()
    fake = {**rows[0], "ingest_id": "20260101T000000Z-f00d00", "path": "/planted.jsonl"}
    _write_manifest(store, [*rows, fake])
    assert ("manifest", "/planted.jsonl", "not sealed in the ledger") in _problems(store)


def test_a_rewritten_entry_breaks_the_chain_and_a_kept_head_catches_the_last(
        tmp_path: Path) -> None:
    store, _files = _two_runs(tmp_path)
    kept = store.chain_head()[0]
    path = store.root / ledger.LEDGER_NAME
    lines = path.read_text().splitlines()
    # rewrite the first entry's row and its own hash to match: the link from entry 2 breaks
    first = json.loads(lines[0])
    first["rows"][0]["records_loaded"] += 1
    first["hash"] = ledger.entry_hash(first)
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    details = [p.detail for p in verify_store(store).problems]
    assert any(d.startswith("the chain is broken before entry 2 (ingest") for d in details)
    assert any(d.startswith("rewritten: its manifest row differs") and
               d.endswith("in records_loaded") for d in details)
    # the last run removed whole — rows, files and entry: consistent, except for the head
    path.write_text("\n".join(lines[:1]) + "\n")
    rows = store.manifest_rows()
    last = json.loads(lines[1])["run"]
    for r in rows:
        if r["ingest_id"] == last:
            for rel in r["parts"]:
                (store.root / rel).unlink()
    _write_manifest(store, [r for r in rows if r["ingest_id"] != last])
    assert verify_store(store).ok  # what no chain can see by itself
    assert _problems(store, head=kept) == [("ledger", "head", "the chain head you kept (" + kept
                                            + ") is not in this store's ledger")]


def test_a_kept_head_lists_the_runs_since(tmp_path: Path) -> None:
    store, _files = _two_runs(tmp_path)
    first = ledger.read(store.root).entries[0]
    report = verify_store(store, head=first.hash.upper())
    second = ledger.read(store.root).entries[1]
    assert report.ok and report.since_head == [f"2: ingest {second.run} at {second.at}"]


def test_an_interrupted_ingest_is_sealed_on_recovery(tmp_path: Path) -> None:
    ev = tmp_path / "evidence"
    ev.mkdir()
    for n in "ab":
        write_k8s_copy(ev / f"{n}.jsonl", n)
    store = tmp_path / "store"
    env = {**os.environ, "AUDITLENS_CRASH_AT": "after-commit"}
    out = subprocess.run([sys.executable, "-m", "analysis.cli", "ingest", str(ev), "--store",
                          str(store)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 137
    s = Store(store)
    assert not ledger.read(s.root).exists
    # a reader while nobody writes finishes the commit, and seals the run as interrupted
    report = verify_store(s)
    assert report.ok and report.rows_sealed == 1
    assert [(e.kind, len(e.rows), e.sealed) for e in ledger.read(s.root).entries] == [
        ("ingest", 1, ledger.SEALED_INTERRUPTED)]
    assert report.notes == [f"ledger entry 1 (ingest {s.manifest_rows()[0]['ingest_id']}) "
                            f"was sealed {ledger.SEALED_INTERRUPTED}"]
    ingest(s, [ev])  # the rest
    assert [(e.kind, len(e.rows), e.sealed) for e in ledger.read(s.root).entries] == [
        ("ingest", 1, ledger.SEALED_INTERRUPTED), ("ingest", 1, ledger.SEALED_AT_END)]
    assert verify_store(s).ok


def test_an_interrupted_second_ingest_is_sealed_as_interrupted(tmp_path: Path) -> None:
    ev = tmp_path / "evidence"
    ev.mkdir()
    for n in "abc":
        write_k8s_copy(ev / f"{n}.jsonl", n)
    store = tmp_path / "store"
    ingest(Store(store), [ev / "a.jsonl"])
    env = {**os.environ, "AUDITLENS_CRASH_AT": "after-commit"}
    out = subprocess.run([sys.executable, "-m", "analysis.cli", "ingest", str(ev), "--store",
                          str(store)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 137
    s = Store(store)
    ingest(s, [ev])
    entries = ledger.read(s.root).entries
    assert [(e.kind, len(e.rows), e.sealed) for e in entries] == [
        ("ingest", 1, ledger.SEALED_AT_END), ("ingest", 1, ledger.SEALED_INTERRUPTED),
        ("ingest", 1, ledger.SEALED_AT_END)]
    assert verify_store(s).ok


def test_detection_runs_and_reports_are_sealed(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = _two_runs(tmp_path)
    assert main(["detect", "--store", str(store.root)]) == 0
    head_before_report = store.chain_head()[0]
    out = tmp_path / "report.md"
    assert main(["report", "--store", str(store.root), "--out", str(out)]) == 0
    entries = ledger.read(store.root).entries
    assert [e.kind for e in entries] == ["ingest", "ingest", "detect", "report"]
    detect, report = entries[2], entries[3]
    assert [rel for rel, _ in detect.files] == [
        f"findings/{d}/{detect.run}.parquet" for d in ("data", "incidents", "runs")]
    assert report.note == {"path": str(out.resolve()), "format": "md",
                           "sha256": sha256_file(out), "quotes_head": head_before_report}
    assert f"Store ledger chain head: `{head_before_report}` (3 entries)" in out.read_text()
    assert verify_store(store).ok
    # a findings file changed or planted is caught
    findings = store.root / detect.files[0][0]
    pq.write_table(pq.read_table(findings).slice(0, 0), findings)
    (store.root / "findings/data/planted.parquet").write_bytes(findings.read_bytes())
    assert sorted(_problems(store)) == [
        ("findings", detect.files[0][0], "SHA-256 differs from the one sealed by detect "
         f"{detect.run} (ledger entry 3)"),
        ("findings", "findings/data/planted.parquet", "not sealed in the ledger (added outside "
         "a detection run, or by one interrupted before it was sealed)")]


def test_info_prints_the_head_and_verify_checks_a_kept_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = _two_runs(tmp_path)
    head, _n = store.chain_head()
    assert main(["info", "--store", str(store.root)]) == 0
    assert f"ledger: 2 runs sealed; chain head {head}" in capsys.readouterr().out
    assert main(["info", "--store", str(store.root), "--verify", "--head", head]) == 0
    out = capsys.readouterr().out
    assert "verify: the head you kept is in the chain; 0 runs sealed since" in out
    assert main(["info", "--store", str(store.root), "--verify", "--head", "ab" * 32]) == 1
    assert "PROBLEM ledger: head: the chain head you kept" in capsys.readouterr().out
