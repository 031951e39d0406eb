"""linux_auditd with helper processes gives exactly what one process gives.

Large files are assembled in the reading process and mapped in helpers
(:mod:`loaders.linux_auditd.offload`, :class:`loaders.parsing.offload.Ahead`). Here the size
threshold is lifted and chunks are made tiny, so every fixture and hostile variant crosses
many chunk boundaries, rejects fall between chunks, and the runner's stop rules fire with
chunks in flight; tables, rejects and counts must equal those of the one-process run.
"""

from __future__ import annotations

import gzip
import io
import os
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import loaders.parsing.offload as offload
from analysis.cli import print_ingest_summary
from benchmarks.harness import ingest_cmd, run_measured
from loaders.base import LoadOptions, Tuning
from loaders.ingest.pipeline import ingest
from loaders.linux_auditd import loader as linux_auditd
from loaders.parsing.offload import Ahead, helpers_for
from loaders.store.read import read_events
from loaders.store.store import Store
from tests.test_linux_auditd_fast import ALL, _table, _variants


def _same(path: Path, options: LoadOptions, chunk: int = 3, chars: int = 1 << 20) -> None:
    """One process, then helpers for the file whatever its size, with chunks of ``chunk``
    events or ``chars`` characters, two in flight."""
    one = _table(path, options)
    tuning = Tuning(auditd_offload_bytes=0, auditd_chunk_events=chunk, auditd_chunk_chars=chars,
                    auditd_ahead_chunks=2)
    both = _table(path, replace(options, helpers=2, tuning=tuning))
    assert both[2] == one[2]
    for got, want in zip(both[:2], one[:2], strict=True):
        assert (got is None and want is None) or (got is not None and want is not None
                                                  and got.equals(want))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_helpers_give_the_tables_of_one_process(path: Path, tmp_path: Path) -> None:
    for name, data in _variants(path):
        variant = tmp_path / f"{name}.log"
        variant.write_bytes(data)
        for options in (LoadOptions(), LoadOptions(batch_size=2, max_initial_rejects=3)):
            _same(variant, options)


def test_helpers_on_a_gzip_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.log.1.gz"
    path.write_bytes(gzip.compress(b"\n".join(
        p.read_bytes() for p in ALL if p.suffix in (".log", ".txt"))))
    # read, loaded, rejected (the kernel line "audit: backlog limit exceeded"), duplicate
    assert _table(path, LoadOptions())[2][:4] == (1084, 1083, 1, 0)
    _same(path, LoadOptions(), chunk=64)


def test_helpers_on_a_file_the_runner_stops(tmp_path: Path) -> None:
    # good events, then a run of bad lines long enough to stop the file, then more events:
    # the stop must land on the same item with chunks in flight
    good = [f"type=USER_LOGIN msg=audit(1700000000.{n % 1000:03d}:{n}): pid={n} uid=0 "
            f"auid=1000 ses=2 msg='op=login acct=\"alice\" exe=\"/usr/sbin/sshd\" "
            f"hostname=? addr=10.0.0.{n % 250} terminal=ssh res=success'" for n in range(400)]
    lines = good[:250] + ["garbage line"] * 30 + good[250:]
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    options = LoadOptions(max_consecutive_rejects=25)
    # read, loaded, rejected, duplicate, status: the 250 events held in the assembly window
    # are kept, and count as good records before the rejects (not "no record recognized")
    assert _table(path, options)[2][:5] == (275, 250, 25, 0, "stopped")
    _same(path, options, chunk=7)


def test_held_back_records_break_a_run_of_rejects(tmp_path: Path) -> None:
    # one-record events are held in the assembly window, so no event is yielded between
    # these bad lines; the records between them still break the run of rejects
    lines = []
    for n in range(60):
        lines += [f"type=USER_START msg=audit(1700000000.000:{n}): pid=1 uid=0 auid=0 ses=1 "
                  "msg='op=PAM:session_open acct=\"root\" exe=\"/bin/su\" res=success'",
                  "bad line"]
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    got = _table(path, LoadOptions(max_consecutive_rejects=2))
    assert got[2] == (120, 60, 60, 0, "ok", None)


def test_helpers_on_a_generated_log_with_moved_records(tmp_path: Path) -> None:
    rnd = random.Random(7)
    lines = []
    for n in range(2000):
        stamp = f"msg=audit(1700000000.{n % 1000:03d}:{n})"
        lines += [f"type=SYSCALL {stamp}: arch=c000003e syscall=59 success=yes exit=0 items=1 "
                  f"ppid=1 pid={n} auid=1000 uid=0 euid=0 tty=pts0 ses=3 comm=\"ls\" "
                  f"exe=\"/bin/ls\" key=\"k\"",
                  f"type=EXECVE {stamp}: argc=2 a0=\"ls\" a1=\"-{n % 7}\"",
                  f"type=PATH {stamp}: item=0 name=\"/bin/ls\" inode=1 mode=0100755"
                  + ("\x1dOUID=\"root\"" if n % 3 == 0 else ""),
                  f"type=EOE {stamp}:"]
    for _ in range(300):
        i = rnd.randrange(len(lines))
        lines.insert(min(len(lines), i + rnd.choice([2, 40, 1500])), lines.pop(i))
    lines.insert(5000, "type=UNKNOWN[1329] msg=?")
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    _same(path, LoadOptions(), chunk=50)
    _same(path, LoadOptions(), chunk=100_000, chars=5_000)  # bounded by text


def _double_or_die(chunk: tuple[int, int]) -> int:
    main, n = chunk
    if n == 3 and os.getpid() != main:
        os._exit(1)  # the helper dies (as if killed) on this chunk
    return 2 * n


def test_a_dead_helper_costs_no_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offload, "_FAILED", False)
    ahead: Ahead[tuple[int, int], int] = Ahead(_double_or_die, 1, ahead=2)
    got = []
    for n in range(8):
        got += ahead.put((os.getpid(), n))
    got += ahead.drain()
    assert got == [0, 2, 4, 6, 8, 10, 12, 14]
    # the rest of the run (and the next files) are computed here, not retried
    assert offload._FAILED and helpers_for(None) == 0 and helpers_for(2) == 0


def test_helpers_default() -> None:
    assert LoadOptions().helpers == 0  # library calls start no process unless asked
    assert helpers_for(0) == 0 and helpers_for(3) == 3
    assert helpers_for(None) == (2 if (os.cpu_count() or 1) >= 2 else 0)


def test_no_processes_means_no_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    # a machine where processes cannot be started: the chunks are computed here
    monkeypatch.setattr(offload, "_FAILED", False)

    def refuse(workers: int, module: str) -> None:
        raise OSError("no process for you")

    monkeypatch.setattr(offload, "_pool", refuse)
    ahead: Ahead[tuple[int, int], int] = Ahead(_double_or_die, 2)
    assert ahead.put((os.getpid(), 5)) == [10] and ahead.drain() == []
    assert helpers_for(None) == 0


def test_ingest_maps_a_large_audit_log_in_helpers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ingest as ``auditlens ingest`` runs it (``helpers=None``: as many as the machine
    has cores for), with the size threshold lifted so that these small files count as large."""
    chunks: list[int] = []

    class Counting(Ahead):  # type: ignore[type-arg]
        def put(self, chunk: Any) -> list[Any]:
            chunks.append(len(chunk))
            return super().put(chunk)

    monkeypatch.setattr(offload, "_FAILED", False)
    monkeypatch.setattr(linux_auditd, "Ahead", Counting)  # counts what goes to the helpers
    # 0: as if the files were large
    options = LoadOptions(helpers=None, tuning=Tuning(auditd_offload_bytes=0,
                                                      auditd_chunk_events=100))
    # two files: the second reuses the helpers the first started
    srcs = [str(p) for p in ALL if p.name in ("msticpy_auditd_log.txt",
                                              "plaso_audit_enriched.log")]
    report = ingest(Store(tmp_path / "s"), srcs, options=options)
    assert report.ok
    # chunks of 100 events or a little more (events completed together go together)
    assert sum(chunks) == 938 + 12 and len(chunks) > 2 and min(chunks[:-2]) >= 100
    out = io.StringIO()
    print_ingest_summary(report, out)
    assert "950 read = 950 loaded + 0 rejected + 0 duplicate" in out.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"], ids=["helpers", "one-process"])
def test_memory_stays_bounded_on_huge_events(jobs: str, tmp_path: Path) -> None:
    # 150 MB of events whose EXECVE arguments are 1 MB each (hex). Chunks for the helpers
    # and batches of mapped rows are bounded by their text, not only by their number of
    # events: one-process parsing (here under --jobs 2, which starts no helpers) peaked at
    # 1.09 GB when a batch could hold 20,000 such events
    path = tmp_path / "audit.log"
    arg = "41" * (1 << 19)
    with path.open("w") as fh:
        for n in range(150):
            stamp = f"msg=audit(1700000000.{n:03d}:{n})"
            fh.write(f"type=SYSCALL {stamp}: arch=c000003e syscall=59 success=yes exit=0 "
                     f"items=0 ppid=1 pid={n} auid=0 uid=0 euid=0 ses=1 comm=\"sh\" "
                     f"exe=\"/bin/sh\"\n"
                     f"type=EXECVE {stamp}: argc=2 a0=\"sh\" a1={arg}\n"
                     f"type=EOE {stamp}:\n")
    _, peak_mb = run_measured(ingest_cmd(path, tmp_path / "store", "--jobs", jobs))
    assert peak_mb < 1024, f"peak memory {peak_mb:.0f} MB"
    got = read_events(tmp_path / "store", columns=["process_command_line"])
    assert len(got) == 150 and set(got.process_command_line.str.len()) == {3 + (1 << 19)}


@pytest.mark.slow
def test_memory_stays_bounded_on_huge_records_without_eoe(tmp_path: Path) -> None:
    # 300 MB of 1 MB user-space records: they have no EOE and wait in the assembly window,
    # which is bounded by text; they leave it in bursts, which still make bounded chunks
    # (before both bounds: 1.30 GB with helpers)
    path = tmp_path / "audit.log"
    cmd = "41" * (1 << 19)
    with path.open("w") as fh:
        for n in range(300):
            fh.write(f"type=USER_CMD msg=audit(1700000000.{n % 1000:03d}:{n}): pid=1 uid=0 "
                     f"auid=0 ses=1 msg='cwd=\"/\" cmd={cmd} terminal=pts/0 res=success'\n")
    _, peak_mb = run_measured(ingest_cmd(path, tmp_path / "store"))
    assert peak_mb < 1024, f"peak memory {peak_mb:.0f} MB"
    got = read_events(tmp_path / "store", columns=["process_command_line", "parse_warning"])
    assert len(got) == 300 and set(got.process_command_line.str.len()) == {1 << 19}
    assert got.parse_warning.isna().all()  # shed events are whole: none is flagged
