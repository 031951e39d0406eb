"""Evidence integrity: inputs untouched, `auditlens info --verify` catches damage."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from analysis import read_events
from analysis.cli import main
from loaders.ingest.pipeline import ingest
from loaders.store.store import Store
from loaders.store.verify import verify_store
from tests.helpers import K8S_AUDIT, write_k8s_copy


def _fingerprint(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_mode


@pytest.fixture
def case(tmp_path: Path) -> tuple[Store, Path]:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    shutil.copy(K8S_AUDIT, evidence / "audit.jsonl")
    write_k8s_copy(evidence / "b.jsonl", "integrity")
    store = Store(tmp_path / "store")
    ingest(store, [evidence])
    return store, evidence


def test_inputs_are_never_modified(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    shutil.copy(K8S_AUDIT, evidence / "audit.jsonl")
    os.chmod(evidence / "audit.jsonl", 0o444)  # read-only evidence must be enough
    before = _fingerprint(evidence / "audit.jsonl")
    ingest(Store(tmp_path / "s"), [evidence], jobs=2)
    ingest(Store(tmp_path / "s"), [evidence])
    assert _fingerprint(evidence / "audit.jsonl") == before


def test_verify_passes_on_a_clean_store(case: tuple[Store, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = case
    report = verify_store(store)
    assert report.ok and report.inputs_checked == 2 and report.parts_checked == 9
    assert main(["info", "--store", str(store.root), "--verify"]) == 0
    assert "verify: OK" in capsys.readouterr().out


def test_verify_detects_a_corrupted_part(case: tuple[Store, Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = case
    part = store.part_files()[0]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    report = verify_store(store)
    assert next(p.detail.split(" (")[0] for p in report.problems if p.path.endswith(part.name)) \
        == "SHA-256 differs from the manifest"
    assert main(["info", "--store", str(store.root), "--verify"]) == 1
    assert "PROBLEM part" in capsys.readouterr().out


def test_verify_detects_missing_stray_and_truncated_files(case: tuple[Store, Path]) -> None:
    store, _ = case
    parts = store.part_files()
    parts[0].unlink()
    parts[1].write_bytes(parts[1].read_bytes()[:100])
    shutil.copy(parts[2], parts[2].with_name("part-stray.parquet"))
    origin = {rel: row["path"] for row in store.manifest_rows() for rel in row["parts"]}
    details = {(p.kind, p.detail.split(":")[0]) for p in verify_store(store).problems}
    # a damaged part names the input it came from (ingest it again after `auditlens repair`)
    assert ("part", f"missing (from the input {origin[store.relative(parts[0])]})") in details
    assert ("part", "unreadable") in details
    assert ("part", "not in the manifest (stray file)") in details


def test_verify_detects_changed_evidence(case: tuple[Store, Path]) -> None:
    store, evidence = case
    with (evidence / "b.jsonl").open("a") as fh:
        fh.write("\n")
    (evidence / "audit.jsonl").unlink()
    report = verify_store(store)
    assert report.inputs_checked == 1 and report.inputs_absent == 1
    assert [(p.kind, Path(p.path).name) for p in report.problems] == [("input", "b.jsonl")]


def test_reading_a_corrupted_store_fails_loudly(case: tuple[Store, Path]) -> None:
    store, _ = case
    part = store.part_files()[0]
    part.write_bytes(b"PAR1" + b"\0" * 100 + b"PAR1")
    with pytest.raises(Exception, match=r"(?i)parquet|invalid|corrupt"):
        read_events(store.root)
