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

import io
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from analysis.cli import main
from loaders.ingest.pipeline import ingest
from loaders.ingest.rehash import member_hashes, verify
from loaders.store.read import read_manifest
from loaders.store.store import Store
from loaders.store.verify import verify_store

ROOT = Path(__file__).resolve().parent.parent
AUTH = ROOT / "tests/fixtures/linux-auth/plaso_syslog_ssh.log"


OTHER = AUTH.read_bytes() + b"Dec  7 10:00:00 web1 sshd[1]: Connection closed by 10.0.0.9\n"
CHANGED = AUTH.read_bytes() + b"Dec  7 10:00:00 web1 sshd[1]: injected line\n"


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    """A zip of ``(name, data)`` members, in order; a name may repeat."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def _tar_gz(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


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


def test_members_of_the_same_name_are_two_inputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A zip may hold two members of one name: both are ingested, shown apart (``(#2)``),
    and each is re-hashed as itself (``zipfile`` opens one of them for both)."""
    case = _case(tmp_path)
    logs = case / "evidence" / "logs.zip"
    logs.write_bytes(_zip([("var/log/auth.log", AUTH.read_bytes()),
                           ("var/log/auth.log", OTHER)]))
    monkeypatch.chdir(case)
    ingest(Store("store"), ["evidence/logs.zip"])
    rows = Store(case / "store").manifest_rows()
    assert [r["path"] for r in rows] == ["evidence/logs.zip!var/log/auth.log",
                                         "evidence/logs.zip!var/log/auth.log (#2)"]
    assert [r["member_path"] for r in rows] == [
        [{"name": "var/log/auth.log", "occurrence": 1}],
        [{"name": "var/log/auth.log", "occurrence": 2}]]
    assert [r["resolved_path"] for r in rows] == [str(logs)] * 2
    assert sorted(read_manifest(case / "store")["path"]) == [r["path"] for r in rows]
    monkeypatch.chdir(tmp_path)
    report = verify(Store(case / "store"))
    assert report.ok, report.problems
    assert (report.inputs_checked, report.inputs_absent, report.inputs_unchecked) == (2, 0, 0)
    assert main(["info", "--store", str(case / "store"), "--verify"]) == 0  # what it runs
    assert "2 inputs re-hashed (0 no longer present)\n" in capsys.readouterr().out
    logs.write_bytes(_zip([("var/log/auth.log", AUTH.read_bytes()),
                           ("var/log/auth.log", CHANGED)]))
    report = verify(Store(case / "store"))
    assert [(p.kind, p.path, p.detail.split(":")[0]) for p in report.problems] == [
        ("input", "evidence/logs.zip!var/log/auth.log (#2)",
         "SHA-256 differs from the one recorded at ingest")]
    assert main(["info", "--store", str(case / "store"), "--verify"]) == 1
    assert ("PROBLEM input: evidence/logs.zip!var/log/auth.log (#2): SHA-256 differs"
            in capsys.readouterr().out)


def test_a_member_of_a_nested_archive_is_re_hashed_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log in a zip in a ``.tar.gz`` has two steps; verify walks the outer archive as the
    ingest did, from ``/`` too, and sees its inner member change or go."""
    case = _case(tmp_path)
    bundle = case / "evidence" / "bundle.tar.gz"
    bundle.write_bytes(_tar_gz([("inner/logs.zip", _zip([("auth.log", AUTH.read_bytes())]))]))
    monkeypatch.chdir(case)
    ingest(Store("store"), ["evidence/bundle.tar.gz"])
    rows = Store(case / "store").manifest_rows()
    path = "evidence/bundle.tar.gz!inner/logs.zip!auth.log"
    assert [(r["path"], r["resolved_path"], r["member_path"]) for r in rows] == [
        (path, str(bundle), [{"name": "inner/logs.zip", "occurrence": 1},
                             {"name": "auth.log", "occurrence": 1}])]
    monkeypatch.chdir("/")
    report = verify(Store(case / "store"))
    assert report.ok, report.problems
    assert (report.inputs_checked, report.inputs_absent) == (1, 0)
    bundle.write_bytes(_tar_gz([("inner/logs.zip", _zip([("auth.log", CHANGED)]))]))
    report = verify(Store(case / "store"))
    assert [(p.kind, p.path, p.detail.split(":")[0]) for p in report.problems] == [
        ("input", path, "SHA-256 differs from the one recorded at ingest")]
    bundle.write_bytes(_tar_gz([("inner/logs.zip", _zip([("renamed.log", AUTH.read_bytes())]))]))
    report = verify(Store(case / "store"))
    assert [(p.kind, p.path) for p in report.problems] == [("input", path)]
    assert report.problems[0].detail.startswith(
        f"member inner/logs.zip!auth.log no longer in the archive {bundle}")
    assert report.inputs_checked == 1


def test_a_file_named_like_a_member_is_not_the_member(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``evidence/logs.zip!var/log/auth.log``, a plain file, beside ``evidence/logs.zip``
    holding ``var/log/auth.log``: both show the same path, yet each is checked as itself
    (the member's row used to name the plain file: with the zip gone, it re-hashed that)."""
    case = _case(tmp_path)
    evidence = case / "evidence"
    (evidence / "auth.log").unlink()
    logs = evidence / "logs.zip"
    plain = evidence / "logs.zip!var/log/auth.log"
    plain.parent.mkdir(parents=True)
    plain.write_bytes(OTHER)
    zipped = _zip([("var/log/auth.log", AUTH.read_bytes())])
    logs.write_bytes(zipped)
    monkeypatch.chdir(case)
    ingest(Store("store"), ["evidence/logs.zip", "evidence/logs.zip!var/log/auth.log"])
    rows = Store(case / "store").manifest_rows()
    assert [(r["path"], r["resolved_path"], r["member_path"]) for r in rows] == [
        ("evidence/logs.zip!var/log/auth.log", str(logs),
         [{"name": "var/log/auth.log", "occurrence": 1}]),
        ("evidence/logs.zip!var/log/auth.log", str(plain), [])]  # [], a plain file
    monkeypatch.chdir("/")
    store = Store(case / "store")
    report = verify(store)
    assert report.ok and (report.inputs_checked, report.inputs_absent) == (2, 0)
    logs.unlink()  # the member's row must not re-hash the plain file
    report = verify(store)
    assert report.ok and (report.inputs_checked, report.inputs_absent) == (1, 1)
    plain.write_bytes(CHANGED)
    report = verify(store)
    assert [(p.kind, p.detail.split(":")[0]) for p in report.problems] == [
        ("input", "SHA-256 differs from the one recorded at ingest")]
    assert (report.inputs_checked, report.inputs_absent) == (1, 1)
    plain.write_bytes(OTHER)  # and the plain file's row is not the member's
    logs.write_bytes(_zip([("var/log/auth.log", CHANGED)]))
    report = verify(store)
    assert [(p.kind, p.detail.split(":")[0]) for p in report.problems] == [
        ("input", "SHA-256 differs from the one recorded at ingest")]
    assert (report.inputs_checked, report.inputs_absent) == (2, 0)
    logs.write_bytes(zipped)
    assert verify(store).ok
    plain.unlink()  # nor does the plain file's row, gone, re-hash the member in its place
    report = verify(store)
    assert report.ok and (report.inputs_checked, report.inputs_absent) == (1, 1)


def test_verify_store_alone_counts_members_as_unchecked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store layer cannot read archives as the ingest does: without ``rehash_members``
    the members are counted, not checked, and a note says what checks them."""
    case = _case(tmp_path)
    (case / "evidence" / "logs.zip").write_bytes(
        _zip([("a.log", AUTH.read_bytes()), ("b.log", OTHER)]))
    (case / "evidence" / "auth.log").write_bytes(CHANGED)
    monkeypatch.chdir(case)
    ingest(Store("store"), ["evidence/logs.zip", "evidence/auth.log"])
    report = verify_store(Store("store"))
    assert report.ok, report.problems
    assert (report.inputs_checked, report.inputs_absent, report.inputs_unchecked) == (1, 0, 2)
    assert report.notes == [
        "2 archive members were not re-hashed: the store layer cannot read archives as the "
        "ingest does; loaders.ingest.rehash.verify re-hashes them (what `auditlens info "
        "--verify` uses)"]
    report = verify(Store("store"))
    assert report.ok and (report.inputs_checked, report.inputs_unchecked) == (3, 0)
    assert report.notes == []
    walked: list[Path] = []

    def counting(archive: Path) -> dict[tuple[tuple[str, int], ...], str]:
        walked.append(archive)
        return member_hashes(archive)

    report = verify_store(Store("store"), rehash_members=counting)
    assert report.ok and report.inputs_checked == 3
    assert walked == [case / "evidence" / "logs.zip"]  # once, for both of its members


def test_a_member_from_before_member_path_still_verifies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An older store recorded a member as ``resolved_path`` ``/abs/archive!member`` with
    no ``member_path``: verify still re-hashes it that way (one level, as before)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    case = _case(tmp_path)
    logs = case / "evidence" / "logs.zip"
    logs.write_bytes(_zip([("var/log/auth.log", AUTH.read_bytes())]))
    monkeypatch.chdir(case)
    store = Store(case / "store")
    ingest(store, ["evidence/logs.zip"])
    old = pq.read_table(store.manifest_path).drop_columns(["member_path"])
    i = old.schema.get_field_index("resolved_path")
    old = old.set_column(i, "resolved_path", pa.array([f"{logs}!var/log/auth.log"]))
    pq.write_table(old, store.manifest_path)
    (store.root / "ledger.jsonl").unlink()  # it sealed the row as this version wrote it
    assert [r["member_path"] for r in store.manifest_rows()] == [None]
    monkeypatch.chdir("/")
    report = verify(store)
    assert [(p.kind, p.detail.split(":")[0]) for p in report.problems] == [
        ("ledger", "missing")]
    assert (report.inputs_checked, report.inputs_absent) == (1, 0)
    logs.write_bytes(_zip([("var/log/auth.log", CHANGED)]))
    assert [p.kind for p in verify(store).problems] == ["ledger", "input"]
