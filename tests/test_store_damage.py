"""Chain of custody (issue 18): store damage is one clear sentence, and recoverable.

A store path that is a file, a store that cannot be written (read-only disk, another
owner), a truncated part file, a truncated manifest: each gives one sentence and exit
status 2 (usage) or 1 (damage), never a traceback; ``info`` and ``verify`` still report the
rest of a damaged store; ``auditlens repair`` quarantines a damaged part (re-ingesting its
input restores the store) and rebuilds a damaged manifest from the ledger.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from analysis.cli import main
from loaders.ingest.pipeline import ingest
from loaders.store import ledger
from loaders.store.read import read_events, store_summary
from loaders.store.store import Store, StoreDamaged
from loaders.store.verify import verify_store
from tests.helpers import write_k8s_copy

ROOT = Path(__file__).resolve().parent.parent


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out
    return status, out.out, out.err


@pytest.fixture
def case(tmp_path: Path) -> Iterator[tuple[Path, list[Path], int]]:
    """Evidence a, b, c (same day, so one partition) and a store holding a and b."""
    ev = tmp_path / "evidence"
    ev.mkdir()
    files = [ev / f"{n}.jsonl" for n in "abc"]
    counts = [write_k8s_copy(f, f.stem) for f in files]
    store = tmp_path / "store"
    ingest(Store(store), files[:2])
    yield store, files, counts[0]


def _part_of(store: Path, path: Path) -> Path:
    row = next(r for r in Store(store).manifest_rows() if r["path"] == str(path))
    return store / row["parts"][0]


def test_a_store_path_that_is_a_file_is_usage(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("case notes\n")
    evidence = tmp_path / "e.jsonl"
    write_k8s_copy(evidence, "e")
    for args in (["ingest", str(evidence)], ["info"], ["info", "--verify"], ["detect"],
                 ["repair"], ["report", "--out", str(tmp_path / "r.md")]):
        status, _, err = _cli(capsys, *args, "--store", str(not_a_store))
        assert status == 2, args
        assert err == (f"auditlens {args[0]}: the store path {not_a_store} is a file, not a "
                       "store directory; give --store a directory (new or an existing "
                       "store)\n")
    assert not_a_store.read_text() == "case notes\n"


def test_a_read_only_store_is_usage_and_still_reads(
        case: tuple[Path, list[Path], int], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    store, files, _ = case
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if str(path).startswith(str(store)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", read_only)
    status, _, err = _cli(capsys, "ingest", str(files[2]), "--store", str(store))
    assert status == 2
    assert err == (f"auditlens ingest: cannot write to the store {store}: it is on a "
                   "read-only file system; write to a store you own on a writable disk "
                   "(--store DIR); reading it (info, verify, detect without storing) still "
                   "works\n")
    status, out, _ = _cli(capsys, "info", "--store", str(store), "--verify")
    assert status == 0 and "verify: OK" in out


@pytest.mark.skipif(not shutil.which("setpriv") and os.geteuid() == 0,
                    reason="needs setpriv to run as another user")
def test_a_store_owned_by_someone_else_is_usage() -> None:
    base = Path(tempfile.mkdtemp(prefix="auditlens-owner-", dir="/tmp"))
    try:
        base.chmod(0o755)
        evidence = base / "e.jsonl"
        write_k8s_copy(evidence, "owned")
        evidence.chmod(0o644)
        store = base / "store"
        ingest(Store(store), [evidence])
        for p in [store, *store.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)  # readable by all, writable by its owner
        cmd = [sys.executable, "-m", "analysis.cli"]
        if os.geteuid() == 0:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        else:
            store.chmod(0o555)
        env = {**os.environ, "HOME": str(base)}
        out = subprocess.run([*cmd, "ingest", str(evidence), "--store", str(store)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert out.stderr == (f"auditlens ingest: cannot write to the store {store}: "
                              "permission denied (the store belongs to another user, or its "
                              "directory is read-only); write to a store you own on a "
                              "writable disk (--store DIR); reading it (info, verify, detect "
                              "without storing) still works\n")
        info = subprocess.run([*cmd, "info", "--store", str(store), "--verify"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, env=env)
        assert info.returncode == 0, info.stderr
        assert "verify: OK" in info.stdout
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_truncated_part_is_reported_quarantined_and_restored(
        case: tuple[Path, list[Path], int], capsys: pytest.CaptureFixture[str]) -> None:
    store, files, _ = case
    total = len(read_events(store))
    part = _part_of(store, files[0])
    rel = str(part.relative_to(store))
    a_parts = next(r["parts"] for r in Store(store).manifest_rows() if r["path"] == str(files[0]))
    in_part = pq.read_metadata(part).num_rows
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])

    status, out, err = _cli(capsys, "info", "--store", str(store))
    assert status == 1 and err == "auditlens: the store is damaged (listed above)\n"
    assert "DAMAGED: 1 stored files cannot be read; the counts above leave them out:" in out
    assert f"  {rel} (from the input {files[0]}): " in out
    assert f"events: {total - in_part:,}" in out  # the rest is still summarised
    assert f"`auditlens repair --store {store}` moves it aside" in out

    status, out, _ = _cli(capsys, "info", "--store", str(store), "--verify")
    assert status == 1
    assert f"PROBLEM part: {rel}: unreadable: " in out
    assert f"PROBLEM part: {rel}: SHA-256 differs from the manifest (modified or " in out
    assert out.count("PROBLEM") == 3  # altered, unreadable, and its rows no longer add up
    assert f"(from the input {files[0]})" in out

    with pytest.raises(StoreDamaged, match=f"the stored file {rel} \\(from the input "):
        read_events(store)

    # an ingest into the same partition stops with the sentence; what it read is not kept
    status, _, err = _cli(capsys, "ingest", str(files[2]), "--store", str(store))
    assert status == 1
    assert err.startswith(f"auditlens ingest: the stored file {rel} (from the input "
                          f"{files[0]}) is damaged (")
    assert err.endswith(f"`auditlens repair --store {store}` moves it aside and says what "
                        "to ingest again\n") and err.count("\n") == 1

    status, out, _ = _cli(capsys, "repair", "--store", str(store), "--dry-run")
    assert status == 0 and "--dry-run: nothing was changed" in out and part.exists()
    status, out, _ = _cli(capsys, "repair", "--store", str(store))
    assert status == 0
    assert f"repair: {files[0]}: {rel} no longer has its recorded SHA-256" in out
    assert f"ingest these inputs again to restore what they held:\n  {files[0]}\n" in out
    entry = ledger.read(store).entries[-1]
    assert entry.kind == "repair" and entry.note["moved"] == a_parts  # all of a's files
    assert (store / entry.note["quarantine"] / rel).exists() and not part.exists()
    assert verify_store(Store(store)).ok  # the smaller store, as the ledger says

    ingest(Store(store), files)
    assert len(read_events(store)) == total + write_k8s_copy(files[2], "c")
    report = verify_store(Store(store))
    assert report.ok and report.rows_sealed == 3
    status, _, _ = _cli(capsys, "repair", "--store", str(store))
    assert status == 0


def test_a_truncated_manifest_is_reported_and_rebuilt(
        case: tuple[Path, list[Path], int], capsys: pytest.CaptureFixture[str]) -> None:
    store, files, _ = case
    s = Store(store)
    rows = s.manifest_rows()
    total = len(read_events(store))
    manifest = store / "manifest.parquet"
    manifest.write_bytes(manifest.read_bytes()[:100])
    sentence = (f"the store's manifest {manifest} is damaged (")

    status, out, err = _cli(capsys, "info", "--store", str(store))
    assert status == 1
    assert f"DAMAGED: {sentence}" in out and f"events: {total:,}" in out
    status, out, _ = _cli(capsys, "info", "--store", str(store), "--verify")
    assert status == 1
    problems = verify_store(s).problems
    assert [(p.kind, p.path) for p in problems] == [("manifest", str(manifest))]
    assert verify_store(s).parts_checked == sum(len(r["parts"]) for r in rows)
    with pytest.raises(StoreDamaged):
        s.read_manifest()
    assert store_summary(store)["manifest_damaged"].startswith(sentence)

    for args in (["ingest", str(files[2])], ["detect"], ["repair", "--dry-run"]):
        status, out, err = _cli(capsys, *args, "--store", str(store))
        if args[0] == "repair":
            assert status == 0 and "the manifest would be rebuilt from the ledger" in out
        else:
            assert status == 1, args
            assert err.startswith(f"auditlens {args[0]}: {sentence}"), err
            assert err.endswith(f"`auditlens repair --store {store}` rebuilds it from the "
                                "ledger\n")

    status, out, _ = _cli(capsys, "repair", "--store", str(store))
    assert status == 0 and "repair: the manifest rebuilt from the ledger" in out
    assert [ledger.canonical_row(r) for r in s.manifest_rows()] == [
        ledger.canonical_row(r) for r in rows]
    assert verify_store(s).ok
    ingest(s, [files[2]])
    assert len(read_events(store)) == total + write_k8s_copy(files[2], "c")
