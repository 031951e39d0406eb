"""Chain of custody (issue 18): an input's recorded hash and size are of exactly the bytes parsed.

Every reading of an input stops at the size the file had when it was opened and hashes what it
takes; a file that changed while it was ingested (a log still being written, truncated, or
rewritten in place) is flagged in the summary (``FileOutcome.changed``) and in the manifest
(``input_changed``), and its recorded ``sha256`` and ``size`` are those of the bytes parsed.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders.base
from analysis.cli import print_ingest_summary
from loaders.ingest.pipeline import ingest
from loaders.store.read import read_events, read_manifest
from loaders.store.store import Store
from loaders.store.verify import verify_store

ROOT = Path(__file__).resolve().parent.parent


def _line(i: int, user: str = "root") -> bytes:
    return (f"Dec  7 10:{i // 60 % 60:02d}:{i % 60:02d} web1 sshd[{1000 + i}]: Failed password "
            f"for {user} from 203.0.113.{i % 250 + 1} port {40000 + i % 20000} ssh2\n").encode()


def _log(path: Path, n: int, start: int = 0, user: str = "root") -> bytes:
    data = b"".join(_line(i, user) for i in range(start, start + n))
    path.write_bytes(data)
    return data


def _when_opened(monkeypatch: pytest.MonkeyPatch, path: Path,
                 act: Callable[[Path], None]) -> None:
    """Run ``act`` on the input the moment a loader opens it to parse (after it was listed,
    sized and hashed), once."""
    original = loaders.base.open_binary
    done: list[bool] = []

    def opening(p: Path, *args: Any, **kwargs: Any) -> Any:
        if not done and Path(p) == path:
            done.append(True)
            act(path)
        return original(p, *args, **kwargs)

    monkeypatch.setattr(loaders.base, "open_binary", opening)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_lines_appended_while_a_file_is_read_are_not_read_and_it_is_flagged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "auth.log"
    at_open = _log(log, 300)

    def append(p: Path) -> None:
        with p.open("ab") as fh:
            fh.write(b"".join(_line(i) for i in range(300, 500)))

    _when_opened(monkeypatch, log, append)
    store = Store(tmp_path / "store")
    report = ingest(store, [log])
    [outcome] = report.files
    assert (outcome.status, outcome.read, outcome.loaded) == ("ingested", 300, 300)
    grown = len(at_open) + sum(len(_line(i)) for i in range(300, 500))
    expected = (f"grew from {len(at_open):,} to {grown:,} bytes during the ingest; only the "
                f"first {len(at_open):,} bytes (its size when opened) were read and hashed")
    assert outcome.changed == expected
    row = read_manifest(store).iloc[0]
    assert (row["sha256"], row["size"], row["records_read"]) == (_sha(at_open), len(at_open),
                                                                 300)
    assert row["input_changed"] == expected
    out = io.StringIO()
    print_ingest_summary(report, out)
    assert "CHANGED DURING INGEST: 1 files changed while they were read" in out.getvalue()
    assert f"  {log}: {expected}" in out.getvalue()
    # the incident report says it among its limits
    from analysis.report.model import build_report

    limits = build_report(store.root)["appendix"]["limits"]
    assert f"The input {log} changed while it was ingested: it {expected}." in limits
    # the store is sound; the evidence on disk is not what was read any more, and verify says so
    check = verify_store(store)
    assert [(p.kind, p.path) for p in check.problems] == [("input", str(log))]
    # ingested again once complete: the 200 new lines are added, the 300 are duplicates
    again = ingest(store, [log]).files[0]
    assert (again.read, again.loaded, again.duplicate, again.changed) == (500, 200, 300, None)


def test_a_file_truncated_while_it_is_read_records_the_bytes_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "auth.log"
    data = _log(log, 400)
    half = data[: data.index(b"\n", len(data) // 2) + 1]
    kept = half.count(b"\n")
    _when_opened(monkeypatch, log, lambda p: p.write_bytes(half))
    store = Store(tmp_path / "store")
    [outcome] = ingest(store, [log]).files
    assert (outcome.read, outcome.loaded) == (kept, kept)
    row = read_manifest(store).iloc[0]
    assert (row["sha256"], row["size"]) == (_sha(half), len(half))
    assert row["input_changed"] == (
        f"shrank from {len(data):,} to {len(half):,} bytes during the ingest (truncated while "
        "it was read); the records are of what could be read, the hash of the bytes read")
    assert verify_store(store).ok  # what is on disk is what was read and recorded


def test_a_file_rewritten_in_place_between_listing_and_parsing_records_what_was_parsed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "auth.log"
    listed = _log(log, 100, user="alice")
    rewritten = b"".join(_line(i, user="mallo") for i in range(100))  # the same size
    assert len(rewritten) == len(listed)

    def rewrite(p: Path) -> None:
        time.sleep(0.01)  # a modification time of its own, whatever the clock's resolution
        with p.open("r+b") as fh:
            fh.write(rewritten)

    _when_opened(monkeypatch, log, rewrite)
    store = Store(tmp_path / "store")
    [outcome] = ingest(store, [log]).files
    row = read_manifest(store).iloc[0]
    assert row["sha256"] == _sha(rewritten) != _sha(listed)
    assert row["input_changed"] == (
        "was written to during the ingest (same size, new modification time); the records "
        "and the hash are of the bytes as they were read; the bytes parsed differ from those "
        "hashed when the file was listed (rewritten in place during the ingest); the hash "
        "recorded is of the bytes parsed")
    assert outcome.changed == row["input_changed"]
    users = set(read_events(store, columns=["user"])["user"])
    assert users == {"mallo"}  # the records are of the bytes hashed
    assert verify_store(store).ok


def test_an_unchanged_file_is_not_flagged_and_a_gzip_is_hashed_as_stored(
        tmp_path: Path) -> None:
    import gzip

    log = tmp_path / "auth.log.gz"
    plain = b"".join(_line(i) for i in range(50))
    log.write_bytes(gzip.compress(plain))
    store = Store(tmp_path / "store")
    [outcome] = ingest(store, [log]).files
    assert (outcome.read, outcome.changed) == (50, None)
    row = read_manifest(store).iloc[0]
    assert (row["sha256"], row["size"]) == (_sha(log.read_bytes()), log.stat().st_size)
    assert pd.isna(row["input_changed"])


def test_a_log_written_to_during_a_real_ingest(tmp_path: Path) -> None:
    """A writer appends to the log all the time an ``auditlens ingest`` process reads it: the
    records are exactly those of the bytes the file had when it was opened, and the recorded
    hash is theirs (before, records appended meanwhile were read beyond the recorded size)."""
    log = tmp_path / "auth.log"
    _log(log, 60_000)
    stop = threading.Event()

    def writer() -> None:
        i = 60_000
        with log.open("ab", buffering=0) as fh:
            while not stop.is_set():
                fh.write(b"".join(_line(j) for j in range(i, i + 200)))
                i += 200
                time.sleep(0.001)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.05)
        done = subprocess.run([sys.executable, "-m", "analysis.cli", "ingest", str(log),
                               "--store", str(tmp_path / "store")], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
    finally:
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stderr
    assert "CHANGED DURING INGEST: 1 files" in done.stdout
    row = read_manifest(tmp_path / "store").iloc[0]
    read = log.read_bytes()[: int(row["size"])]
    assert row["sha256"] == _sha(read)
    lines = read.count(b"\n") + (0 if read.endswith(b"\n") else 1)
    assert int(row["records_read"]) == lines
    assert int(row["records_loaded"]) + int(row["records_rejected"]) == lines
    assert str(row["input_changed"]).startswith(f"grew from {int(row['size']):,} to ")
