"""Chain of custody (issue 18), the part landed so far: paths that mean one thing.

The manifest keeps, beside the path as given, the absolute and resolved path of every input
(``resolved_path``; for an archive member, its outermost archive, a real file) and, for an
archive member, which one (``member_path``: ``(name, occurrence)`` steps, outermost archive
first), and ``verify`` re-hashes that file or member: the same evidence whatever the working
directory it runs in. Members are re-hashed through the ingest's own archive reader
(:func:`loaders.ingest.rehash.verify`), so members of the same name, nested archives and
``.tar.gz`` are checked as they were ingested; a file whose name holds ``!`` is a file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from loaders.ingest.pipeline import ingest
from loaders.ingest.rehash import verify
from loaders.store.read import read_manifest
from loaders.store.store import Store
from loaders.store.verify import verify_store

ROOT = Path(__file__).resolve().parent.parent
AUTH = ROOT / "tests/fixtures/linux-auth/plaso_syslog_ssh.log"


def _case(tmp_path: Path, name: str = "auth.log") -> Path:
    case = tmp_path / "case"
    (case / "evidence").mkdir(parents=True)
    (case / "evidence" / name).write_bytes(AUTH.read_bytes())
    return case


def test_relative_paths_verify_from_any_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _case(tmp_path)
    monkeypatch.chdir(case)
    ingest(Store("store"), ["evidence/auth.log"])
    manifest = read_manifest(case / "store")
    assert list(manifest["path"]) == ["evidence/auth.log"]  # as given
    assert list(manifest["resolved_path"]) == [str(case / "evidence" / "auth.log")]
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "evidence").mkdir(parents=True)
    # a different file of the same relative name must not be compared (false alarm before)
    (elsewhere / "evidence" / "auth.log").write_text("another file\n")
    for cwd in (elsewhere, Path("/"), case):
        monkeypatch.chdir(cwd)
        report = verify_store(Store(case / "store"))
        assert report.ok, (cwd, report.problems)
        assert (report.inputs_checked, report.inputs_absent) == (1, 0), cwd
    # tampered evidence is caught from "/" too (it used to be skipped as no longer present)
    with (case / "evidence" / "auth.log").open("ab") as fh:
        fh.write(b"Dec  7 10:00:00 web1 sshd[1]: injected line\n")
    monkeypatch.chdir("/")
    report = verify_store(Store(case / "store"))
    assert [(p.kind, p.path) for p in report.problems] == [("input", "evidence/auth.log")]


def test_a_file_name_with_a_bang_is_a_file_not_an_archive_member(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _case(tmp_path, "ticket!4711.log")
    monkeypatch.chdir(case)
    ingest(Store("store"), ["evidence/ticket!4711.log"])
    report = verify_store(Store("store"))
    assert report.ok and (report.inputs_checked, report.inputs_absent) == (1, 0)
    (case / "evidence" / "ticket!4711.log").write_text("rewritten\n")
    report = verify_store(Store("store"))
    assert [(p.kind, p.path) for p in report.problems] == [
        ("input", "evidence/ticket!4711.log")]


def test_archive_members_are_resolved_through_their_archive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _case(tmp_path)
    with zipfile.ZipFile(case / "evidence" / "logs.zip", "w") as zf:
        zf.write(case / "evidence" / "auth.log", "var/log/auth.log")
    (case / "evidence" / "auth.log").unlink()
    monkeypatch.chdir(case)
    ingest(Store("store"), ["evidence/logs.zip"])
    manifest = read_manifest(case / "store")
    assert list(manifest["path"]) == ["evidence/logs.zip!var/log/auth.log"]
    # the archive itself, a real file; which member is a column of its own
    assert list(manifest["resolved_path"]) == [str(case / "evidence" / "logs.zip")]
    assert [r["member_path"] for r in Store(case / "store").manifest_rows()] == [
        [{"name": "var/log/auth.log", "occurrence": 1}]]
    monkeypatch.chdir(tmp_path)
    report = verify(Store(case / "store"))
    assert report.ok and (report.inputs_checked, report.inputs_absent) == (1, 0)


def test_a_store_from_before_resolved_paths_still_verifies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Older manifests have no ``resolved_path``: it reads as null and verify falls back to
    the path as given (relative to where it runs, as before)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    case = _case(tmp_path)
    monkeypatch.chdir(case)
    store = Store("store")
    ingest(store, ["evidence/auth.log"])
    old = pq.read_table(store.manifest_path).drop_columns(["resolved_path"])
    pq.write_table(old, store.manifest_path)
    (store.root / "ledger.jsonl").unlink()  # an older store had no ledger either
    manifest = read_manifest(store)
    assert manifest["resolved_path"].isna().all()
    assert pa.types.is_string(store.read_manifest().schema.field("resolved_path").type)
    report = verify_store(store)
    assert [(p.kind, p.detail.split(":")[0]) for p in report.problems] == [
        ("ledger", "missing")]
    assert report.inputs_checked == 1
    with store.write_lock():  # the first write by this version seals the old rows
        pass
    report = verify_store(store)
    assert report.ok and report.inputs_checked == 1 and report.rows_sealed == 1
    assert report.notes == [f"ledger entry 1 (ingest {manifest['ingest_id'][0]}) was sealed "
                            "on the first write by a version with a ledger: the rows were "
                            "written before the store had one"]

