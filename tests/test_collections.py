"""Triage collections (issue 19 item 4): a KAPE tree, a Velociraptor zip and a UAC tree, built
in miniature from the real fixtures, ingest from their roots with every file accounted for,
collector bookkeeping skipped quietly, hosts from the records or else from the layout, and a
summary by host."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analysis.cli import print_ingest_summary
from loaders.ingest.collections import METADATA, collection_host, is_collection_metadata
from loaders.ingest.pipeline import FileOutcome, IngestReport, ingest
from loaders.store.read import read_events
from loaders.store.store import Store
from tests.conftest import FIXTURES

SYSMON_SMALL = FIXTURES / "windows-sysmon" / "ID11_13_17_18-PSexec_as_system_execution.evtx"
SYSMON_LARGE = FIXTURES / "windows-sysmon" / "evtx-rs_sysmon.evtx"
LOGS = "C/Windows/System32/winevt/Logs"
SYSMON_NAME = "Microsoft-Windows-Sysmon%4Operational.evtx"
MTIME = datetime(2024, 6, 1, tzinfo=UTC).timestamp()  # the year syslog lines lack


def _pin(root: Path) -> None:
    """Fix every file's mtime (a syslog line's year is inferred from it)."""
    for p in root.rglob("*"):
        os.utime(p, (MTIME, MTIME))


def kape_tree(base: Path) -> Path:
    root = base / "HOST1"
    logs = root / LOGS
    logs.mkdir(parents=True)
    shutil.copy(SYSMON_SMALL, logs / SYSMON_NAME)
    (root / "2024-01-01T120000_CopyLog.csv").write_text(
        "CopiedTimestamp,SourceFile,DestinationFile,FileSize\n"
        f"2024-01-01 12:00:00,C:\\Windows\\System32\\winevt\\Logs\\{SYSMON_NAME},x,69632\n")
    (root / "2024-01-01T120000_SkipLog.csv").write_text("SkippedTimestamp,SourceFile,Reason\n")
    _pin(root)
    return root


def velociraptor_zip(base: Path) -> Path:
    path = base / "Collection-WS02-2024-01-01T00_00_00Z.zip"

    def info(name: str) -> zipfile.ZipInfo:
        return zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(info(f"uploads/auto/C%3A/Windows/System32/winevt/Logs/{SYSMON_NAME}"),
                    SYSMON_LARGE.read_bytes())
        zf.writestr(info("uploads.json"), json.dumps(
            {"Timestamp": "2024-01-01T00:00:00Z", "vfs_path": "/auto/C%3A/x", "file_size": 1})
            + "\n")
        zf.writestr(info("log.json"), json.dumps(
            {"Timestamp": "2024-01-01T00:00:00Z", "level": "INFO",
             "message": "Starting collection of Windows.KapeFiles.Targets"}) + "\n")
    return path


def uac_tree(base: Path) -> Path:
    root = base / "uac-web1-linux-20240101120000"
    log = root / "[root]" / "var" / "log"
    (log / "audit").mkdir(parents=True)
    shutil.copy(FIXTURES / "linux-auth" / "synthetic_debian_auth.log", log / "auth.log")
    shutil.copy(FIXTURES / "linux-auth" / "plaso_syslog_ssh.log", log / "auth.log.1")
    (log / "syslog.2.gz").write_bytes(gzip.compress(
        (FIXTURES / "linux-auth" / "synthetic_rhel_secure.log").read_bytes(), mtime=0))
    shutil.copy(FIXTURES / "linux-auth" / "synthetic_rhel_secure.log", log / "secure-20240101")
    # no node= in its records: the host comes from the collection's name
    shutil.copy(FIXTURES / "linux-auditd" / "go-libaudit_normal.log", log / "audit" / "audit.log")
    (root / "uac.log").write_text("2024-01-01 12:00:00 INFO UAC 2.9.1\n"
                                  "2024-01-01 12:00:01 INFO collecting live_response\n")
    (root / "live_response" / "process").mkdir(parents=True)
    (root / "live_response" / "process" / "ps.txt.stderr").write_text("ps: bad option\n")
    (root / "hash_executables").mkdir()
    (root / "hash_executables" / "hash_executables.md5").write_text(
        "d41d8cd98f00b204e9800998ecf8427e  /usr/bin/ls\n")
    (root / "bodyfile").mkdir()
    (root / "bodyfile" / "bodyfile.txt").write_text(
        "0|/etc/passwd|123|-rw-r--r--|0|0|1024|1700000000|1700000000|1700000000|0\n")
    _pin(root)
    return root


def _outcomes(report: IngestReport, root: Path) -> dict[str, tuple[str, str, int, int, int]]:
    """(status, loader, read, loaded, rejected) by path relative to ``root``'s parent."""
    out = {}
    for f in report.files:
        rel = f.path.replace(str(root.parent) + "/", "")
        out[rel] = (f.status, f.loader, f.read, f.loaded, f.rejected)
    return out


def _metadata(report: IngestReport) -> list[FileOutcome]:
    return [f for f in report.files if f.metadata]


def _summary(report: IngestReport) -> str:
    out = io.StringIO()
    print_ingest_summary(report, out)
    return out.getvalue()


def _hosts(store: Store) -> dict[str, set[str]]:
    ev = read_events(store, columns=["source_file", "host"])
    return {path: set(group["host"]) for path, group in ev.groupby("source_file")}


# --- the layout rules, by path alone ------------------------------------------------------

@pytest.mark.parametrize(("path", "host"), [
    ("/cases/HOST1/C/Windows/System32/winevt/Logs/Security.evtx", "HOST1"),
    ("/cases/HOST1/C/Windows/System32/winevt/logs/Security.evtx", "HOST1"),  # lowercase
    ("/x/Collection-WS02-2024-01-01T00_00_00Z.zip/uploads/auto/C%3A/Windows/System32/winevt"
     "/Logs/System.evtx", "WS02"),
    ("/x/Collection-ws-02.corp.example-2024-01-01T00_00_00Z/uploads/ntfs/%5C%5C.%5CC%3A/"
     "Windows/System32/winevt/Logs/System.evtx", "ws-02.corp.example"),
    ("/x/uac-web1-linux-20240101120000.tar.gz/[root]/var/log/audit/audit.log", "web1"),
    ("/x/uac-db-01-linux-20240101120000/[root]/var/log/secure-20240101", "db-01"),
    # the innermost collection names the host, not a case folder above it
    ("/cases/HOST9/uac-web1-linux-20240101120000/[root]/var/log/syslog", "web1"),
    # collector folders above a drive folder never name a host
    ("/x/uploads/auto/C%3A/Windows/System32/winevt/Logs/System.evtx", None),
    ("/x/tout/C/Windows/System32/winevt/Logs/System.evtx", None),
    ("/var/log/auth.log", None),
    ("/x/C/not-windows/file.log", None),
    ("HOST1/C/Users/alice/NTUSER.DAT", "HOST1"),
])
def test_collection_host(path: str, host: str | None) -> None:
    assert collection_host(path) == host


@pytest.mark.parametrize(("path", "why"), [
    ("/c/HOST1/2024-01-01T120000_CopyLog.csv", "KAPE's log of what it copied or skipped"),
    ("/c/HOST1/2024-01-01T120000_SkipLog.csv", "KAPE's log of what it copied or skipped"),
    ("/c/Collection-WS02-2024-01-01T00_00_00Z.zip/uploads.json",
     "Velociraptor's record of the collection (uploads.json)"),
    ("/c/Collection-WS02-2024-01-01T00_00_00Z/log.json",
     "Velociraptor's record of the collection (log.json)"),
    ("/c/Collection-WS02-2024-01-01T00_00_00Z/requests.json",
     "Velociraptor's record of the collection (requests.json)"),
    ("/c/Collection-WS02-2024-01-01T00_00_00Z/collection_context.json",
     "Velociraptor's record of the collection (collection_context.json)"),
    ("/c/uac-web1-linux-20240101120000/uac.log", "UAC's own log (uac.log)"),
    ("/c/uac-web1-linux-20240101120000/live_response/process/ps.txt.stderr",
     "UAC's record of a command's errors"),
    ("/c/uac-web1-linux-20240101120000/hash_executables/hash_executables.md5",
     "UAC's hash_executables listing"),
    ("/c/uac-web1-linux-20240101120000/bodyfile/bodyfile.txt", "UAC's bodyfile listing"),
])
def test_collection_metadata(path: str, why: str) -> None:
    assert is_collection_metadata(path) == f"{METADATA}: {why}"


@pytest.mark.parametrize("path", [
    "/var/lib/docker/containers/abc/log.json",  # not beside a Velociraptor collection's uploads
    "/c/Collection-WS02-2024-01-01T00_00_00Z/uploads/auto/C%3A/Windows/log.json",
    "/c/uac-web1-linux-20240101120000/[root]/var/log/uac.log",  # a log of the machine
    "/c/uac-web1-linux-20240101120000/[root]/var/log/auth.log",
    "/var/log/audit/audit.log",
])
def test_not_collection_metadata(path: str) -> None:
    assert is_collection_metadata(path) is None


# --- whole collections ---------------------------------------------------------------------

def test_kape_tree(tmp_path: Path) -> None:
    root = kape_tree(tmp_path / "cases")
    store = Store(tmp_path / "store")
    report = ingest(store, [root])
    assert _outcomes(report, root) == {
        "HOST1/2024-01-01T120000_CopyLog.csv": ("skipped", "", 0, 0, 0),
        "HOST1/2024-01-01T120000_SkipLog.csv": ("skipped", "", 0, 0, 0),
        f"HOST1/{LOGS}/{SYSMON_NAME}": ("ingested", "windows_events", 15, 15, 0),
    }
    assert {f.message for f in _metadata(report)} == {
        f"{METADATA}: KAPE's log of what it copied or skipped"}
    # the record's Computer wins over the folder's name
    assert _hosts(store) == {str(root / LOGS / SYSMON_NAME): {"fs03vuln.offsec.lan"}}
    assert [f.layout_host for f in report.files] == [None, None, None]
    text = _summary(report)
    assert "NOT LOADED" not in text
    assert "3 files: 1 ingested, 0 stopped, 2 skipped (2 as collection metadata), 0 refused, " \
        "0 failed" in text
    assert "fs03vuln.offsec.lan      1      15  windows_events  2021-12-04 21:19:16Z  " \
        "2021-12-04 21:19:17Z" in text


def test_velociraptor_zip(tmp_path: Path) -> None:
    path = velociraptor_zip(tmp_path)
    store = Store(tmp_path / "store")
    report = ingest(store, [path])
    member = f"uploads/auto/C%3A/Windows/System32/winevt/Logs/{SYSMON_NAME}"
    zip_name = path.name
    assert _outcomes(report, path) == {
        f"{zip_name}!{member}": ("ingested", "windows_events", 358, 358, 0),
        f"{zip_name}!uploads.json": ("skipped", "", 0, 0, 0),
        f"{zip_name}!log.json": ("skipped", "", 0, 0, 0),
    }
    assert [f.message for f in _metadata(report)] == [
        f"{METADATA}: Velociraptor's record of the collection (uploads.json)",
        f"{METADATA}: Velociraptor's record of the collection (log.json)"]
    assert _hosts(store) == {f"{path}!{member}": {"DESKTOP-2KGM189"}}
    text = _summary(report)
    assert "NOT LOADED" not in text
    lines = text.splitlines()
    head = lines.index("by host:")
    assert lines[head + 1].split() == ["host", "files", "loaded", "sources", "first", "last"]
    assert lines[head + 3].split() == ["DESKTOP-2KGM189", "1", "358", "windows_events",
                                       "2017-12-26", "13:10:29Z", "2018-03-06", "08:15:39Z"]


def test_uac_tree(tmp_path: Path) -> None:
    root = uac_tree(tmp_path)
    store = Store(tmp_path / "store")
    report = ingest(store, [root])
    u = root.name
    log = f"{u}/[root]/var/log"
    assert _outcomes(report, root) == {
        f"{log}/audit/audit.log": ("ingested", "linux_auditd", 5, 5, 0),
        f"{log}/auth.log": ("ingested", "linux_auth", 32, 31, 1),
        f"{log}/auth.log.1": ("ingested", "linux_auth", 9, 9, 0),
        f"{log}/secure-20240101": ("ingested", "linux_auth", 7, 7, 0),
        # the same lines as secure-20240101 (rsyslog writes them to both): a whole syslog
        # file, stored as such; analysis counts each attempt once (analysis.scope)
        f"{log}/syslog.2.gz": ("ingested", "linux_syslog", 7, 7, 0),
        f"{u}/bodyfile/bodyfile.txt": ("skipped", "", 0, 0, 0),
        f"{u}/hash_executables/hash_executables.md5": ("skipped", "", 0, 0, 0),
        f"{u}/live_response/process/ps.txt.stderr": ("skipped", "", 0, 0, 0),
        f"{u}/uac.log": ("skipped", "", 0, 0, 0),
    }
    rotated = next(f for f in report.files if f.path.endswith("syslog.2.gz"))
    assert rotated.duplicate == 0
    assert sorted(f.message for f in _metadata(report)) == [
        f"{METADATA}: UAC's bodyfile listing", f"{METADATA}: UAC's hash_executables listing",
        f"{METADATA}: UAC's own log (uac.log)", f"{METADATA}: UAC's record of a command's errors"]
    base = root / "[root]" / "var" / "log"
    assert _hosts(store) == {
        str(base / "audit" / "audit.log"): {"web1"},  # from the collection's name
        str(base / "auth.log"): {"web01"},  # the records' own hosts, never overridden
        str(base / "auth.log.1"): {"ubuntu2015", "osx-machine"},
        str(base / "secure-20240101"): {"db01"},
        str(base / "syslog.2.gz"): {"db01"},
    }
    assert {Path(f.path).name: f.layout_host for f in report.files if f.loader} == {
        "audit.log": "web1", "auth.log": None, "auth.log.1": None, "secure-20240101": None,
        "syslog.2.gz": None}
    manifest = store.read_manifest().to_pylist()
    assert {Path(r["path"]).name: r["host_from_layout"] for r in manifest} == {
        "audit.log": "web1", "auth.log": None, "auth.log.1": None, "secure-20240101": None,
        "syslog.2.gz": None}
    text = _summary(report)
    assert "NOT LOADED" not in text
    lines = text.splitlines()
    head = lines.index("by host:")
    table = [line.split() for line in lines[head + 3:head + 8]]
    assert table == [
        ["db01", "2", "14", "linux_auth,", "linux_syslog", "2024-03-01", "07:00:01Z",
         "2024-03-01", "07:03:00Z"],
        ["osx-machine", "1", "1", "linux_auth", "2024-03-11", "19:26:39Z", "2024-03-11",
         "19:26:39Z"],
        ["ubuntu2015", "1", "8", "linux_auth", "2024-03-11", "00:00:00Z", "2024-03-11",
         "22:55:35Z"],
        ["web01", "1", "31", "linux_auth", "2024-03-01", "10:00:01Z", "2024-03-01",
         "10:07:01Z"],
        ["web1", "1", "5", "linux_auditd", "2017-04-12", "22:48:09Z", "2017-04-12",
         "22:48:18Z"],
    ]
    assert lines[head + 8] == ""
    assert "9 files: 5 ingested, 0 stopped, 4 skipped (4 as collection metadata), 0 refused, " \
        "0 failed" in text


def test_collections_together_and_again(tmp_path: Path) -> None:
    """All three under one case folder: each file once, each host its own; a second ingest
    skips everything (stored, or metadata) and its summary by host is empty."""
    case = tmp_path / "case"
    kape_tree(case)
    velociraptor_zip(case)
    uac_tree(case)
    store = Store(tmp_path / "store")
    report = ingest(store, [case])
    assert len(report.files) == 3 + 3 + 9
    assert report.metadata_files() == 2 + 2 + 4
    assert report.ok
    hosts = {h.host: (h.files, h.loaded) for h in report.by_host()}
    assert hosts == {"DESKTOP-2KGM189": (1, 358), "db01": (2, 14),
                     "fs03vuln.offsec.lan": (1, 15), "osx-machine": (1, 1),
                     "ubuntu2015": (1, 8), "web01": (1, 31), "web1": (1, 5)}
    again = ingest(store, [case])
    assert {f.status for f in again.files} == {"skipped"}
    assert again.metadata_files() == 8
    assert again.by_host() == []
    assert "by host:" not in _summary(again)
