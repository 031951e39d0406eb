"""The auditlens command: help, exit codes, summaries that add up, escaped log text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.cli import build_parser, main, safe
from tests.helpers import K8S_AUDIT, write_k8s_copy

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=300, env={**os.environ})


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():  # type: ignore[union-attr]
        assert parser.format_help().strip()
        assert f"auditlens {name}" in readme, f"`auditlens {name}` missing from README.md"


def test_sources_lists_loaders() -> None:
    out = run("sources")
    assert out.returncode == 0
    assert re.search(r"^k8s_audit\s+Kubernetes API server audit log", out.stdout, re.M)


def test_ingest_summary_adds_up_and_info_reports(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "audit.jsonl").write_bytes(K8S_AUDIT.read_bytes())
    (evidence / "notes.txt").write_text("not a log\n")
    store = str(tmp_path / "store")
    out = run("ingest", str(evidence), "--store", store)
    assert out.returncode == 0, out.stderr
    assert "records: 52 read = 50 loaded + 1 rejected + 1 duplicate" in out.stdout
    assert "2 files: 1 ingested, 0 stopped, 1 skipped, 0 refused, 0 failed" in out.stdout
    assert out.stderr == ""  # no progress bar when stderr is not a terminal
    again = run("ingest", str(evidence), "--store", store)
    assert "records: 0 read = 0 loaded + 0 rejected + 0 duplicate" in again.stdout
    assert "already in the store (52 records" in again.stdout
    info = run("info", "--store", store)
    assert info.returncode == 0
    assert "events: 50 " in info.stdout
    assert re.search(r"^k8s_audit\s+50\s+2018-10-25 13:58:49", info.stdout, re.M)
    assert re.search(r"^2018-10-26\s+38$", info.stdout, re.M)
    assert "not a Kubernetes audit Event (no auditID)" in info.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(["ingest", "/nonexistent/file"], "no such file or directory"),
     (["ingest", str(K8S_AUDIT), "--format", "nope"], "known formats:"),
     (["ingest", str(K8S_AUDIT), "--jobs", "0"], "--jobs must be 1 or more"),
     (["ingest", str(K8S_AUDIT), "--map", "nocolon"], "--map takes column=field"),
     (["frobnicate"], "invalid choice")],
)
def test_bad_usage_exits_2_with_a_message(args: list[str], message: str) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert message in out.stderr


def test_failures_exit_1(tmp_path: Path) -> None:
    assert run("info", "--store", str(tmp_path / "none")).returncode == 1
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"n": 1}\n' * 25)
    out = run("ingest", str(bad), "--format", "k8s_audit", "--store", str(tmp_path / "s"))
    assert out.returncode == 1 and "failed" in out.stdout and "some files failed" in out.stderr


def test_log_text_is_printed_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = tmp_path / "evil\x1b[2J\x07.jsonl"
    write_k8s_copy(evil, "evil")
    assert main(["ingest", str(evil), "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b[2J\\x07.jsonl" in out
    assert safe("a\x9bb\r\n\tc") == "a\\u009bb\\x0d\\x0a\tc"


def test_parallel_jobs_from_the_command_line(tmp_path: Path) -> None:
    for i in range(3):
        write_k8s_copy(tmp_path / f"f{i}.jsonl", f"cli{i}")
    out = run("ingest", str(tmp_path), "--jobs", "2", "--store", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    assert "records: 147 read = 147 loaded + 0 rejected + 0 duplicate" in out.stdout
