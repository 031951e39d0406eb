"""Ingest inputs: directories, gzip, archives (and hostile archives), formats and limits."""

from __future__ import annotations

import gzip
import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

import loaders
from analysis import read_events
from loaders.base import LoadOptions
from loaders.ingest.pipeline import ingest
from loaders.store.store import Store
from tests.helpers import K8S_AUDIT, write_k8s_copy


def _zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)


def test_gzip_is_read_transparently(tmp_path: Path) -> None:
    gz = tmp_path / "audit.jsonl.gz"
    gz.write_bytes(gzip.compress(K8S_AUDIT.read_bytes()))
    result = loaders.load(gz)
    assert (result.source, result.counts.read, result.counts.loaded) == ("k8s_audit", 52, 50)


def test_zip_and_tar_members_are_ingested_with_archive_names(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    write_k8s_copy(a, "zip")
    _zip(tmp_path / "case.zip", {"logs/a.jsonl": a.read_bytes(), "README.txt": b"notes\n"})
    with tarfile.open(tmp_path / "case.tar.gz", "w:gz") as tf:
        tf.add(K8S_AUDIT, arcname="k8s/audit.jsonl")
    store = Store(tmp_path / "store")
    report = ingest(store, [tmp_path / "case.zip", tmp_path / "case.tar.gz"])
    got = [(f.path.replace(str(tmp_path), ""), f.status, f.loaded) for f in report.files]
    assert got == [("/case.zip!logs/a.jsonl", "ingested", 49),
                   ("/case.zip!README.txt", "skipped", 0),
                   ("/case.tar.gz!k8s/audit.jsonl", "ingested", 50)]
    files = set(read_events(store.root, columns=["source_file"])["source_file"])
    assert files == {str(tmp_path / "case.zip") + "!logs/a.jsonl",
                     str(tmp_path / "case.tar.gz") + "!k8s/audit.jsonl"}


def test_hostile_archive_members_are_refused_and_nothing_escapes(tmp_path: Path) -> None:
    good = K8S_AUDIT.read_bytes()
    bomb = b"\0" * (80 * 1024 * 1024)
    _zip(tmp_path / "evil.zip",
         {"../escaped.jsonl": good, "/abs/escaped2.jsonl": good, "bomb.bin": bomb,
          "fine.jsonl": good},
         symlinks={"link.jsonl": "/etc/passwd"})
    store = Store(tmp_path / "store")
    report = ingest(store, [tmp_path / "evil.zip"])
    by_name = {f.path.split("!", 1)[1]: f for f in report.files}
    assert by_name["../escaped.jsonl"].status == "refused"
    assert "path traversal" in by_name["../escaped.jsonl"].message
    assert "absolute path" in by_name["/abs/escaped2.jsonl"].message
    assert "compression ratio" in by_name["bomb.bin"].message
    assert "symbolic link" in by_name["link.jsonl"].message
    assert (by_name["fine.jsonl"].status, by_name["fine.jsonl"].loaded) == ("ingested", 50)
    assert not (tmp_path / "escaped.jsonl").exists() and not Path("/abs").exists()
    assert not (store.root / ".tmp").exists()


def test_wrong_format_fails_the_file_and_names_the_option(tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(30)))
    store = Store(tmp_path / "store")
    write_k8s_copy(tmp_path / "good.jsonl", "good")
    report = ingest(store, [other, tmp_path / "good.jsonl"], format="k8s_audit")
    bad, good = report.files
    assert (bad.status, bad.read, bad.rejected) == ("failed", 20, 20)
    assert "--format" in bad.message and "first 20 records" in bad.message
    assert (good.status, good.loaded) == ("ingested", 49)
    assert not report.ok
    # nothing of the failed file was stored, so it can be retried
    assert list(read_events(store.root)["source_file"].unique()) == [str(tmp_path / "good.jsonl")]


def test_a_long_bad_run_stops_the_file_but_keeps_what_loaded(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    write_k8s_copy(path, "stop")
    with path.open("a") as fh:
        fh.write("{\"kind\": \"NotAnEvent\"}\n" * 6)
        fh.write(K8S_AUDIT.read_text().splitlines()[0] + "\n")
    result = loaders.load(path, options=LoadOptions(max_consecutive_rejects=5))
    assert result.status == "stopped"
    assert result.error == ("stopped at line 54: 5 bad records in a row; "
                            "the rest of the file was not read")
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (54, 49, 5)


def test_ambiguous_and_unknown_formats_are_explained() -> None:
    with pytest.raises(loaders.UnrecognizedFormat, match="--format NAME"):
        loaders.detect(b"just some text\n")
    with pytest.raises(loaders.UnknownFormat, match=r"known formats: .*k8s_audit"):
        loaders.get_loader("nope")


def test_utf16_and_invalid_utf8_lines(tmp_path: Path) -> None:
    events = [json.loads(x) for x in K8S_AUDIT.read_text().splitlines()[:3]]
    u16 = tmp_path / "u16.jsonl"
    u16.write_bytes("\n".join(json.dumps(e) for e in events).encode("utf-16"))
    assert loaders.load(u16).counts.loaded == 3
    bad = tmp_path / "bad.jsonl"
    line = json.dumps(events[0]).replace("system:anonymous", "system:anon\udcffymous")
    bad.write_bytes(line.encode("utf-8", "surrogateescape") + b"\n")
    result = loaders.load(bad)
    assert result.counts.loaded == 1
    assert result.events.loc[0, "user"] == "system:anon\ufffdymous"
    with open(bad, "rb") as fh:
        assert b"\xff" in fh.read()


def test_damaged_and_multi_member_gzip(tmp_path: Path) -> None:
    src = K8S_AUDIT.read_bytes()
    whole = gzip.compress(src)
    multi = tmp_path / "multi.jsonl.gz"
    multi.write_bytes(gzip.compress(src[:40000]) + gzip.compress(src[40000:]) + b"\0" * 512)
    assert loaders.load(multi).counts.loaded == 50
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    result = loaders.load(cut)
    assert result.status == "stopped"
    assert result.error == ("compressed data is truncated after 39,282 decompressed bytes; "
                            "the rest of the file was not read")
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (22, 21, 1)
    store = Store(tmp_path / "store")
    [outcome] = ingest(store, [cut]).files
    assert (outcome.status, outcome.loaded) == ("stopped", 21)
    junk = tmp_path / "junk.gz"
    junk.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    bad = loaders.load(junk, format="k8s_audit")
    assert bad.status == "failed" and "compressed data is damaged" in (bad.error or "")


def test_hostile_tar_members_are_refused(tmp_path: Path) -> None:
    good = K8S_AUDIT.read_bytes()
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name in ("../../escaped.jsonl", "/tmp/abs-escaped.jsonl", "ok/audit.jsonl"):
            info = tarfile.TarInfo(name)
            info.size = len(good)
            tf.addfile(info, io.BytesIO(good))
        link = tarfile.TarInfo("ok/link.jsonl")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tf.addfile(link)
        hard = tarfile.TarInfo("ok/hard.jsonl")
        hard.type, hard.linkname = tarfile.LNKTYPE, "ok/audit.jsonl"
        tf.addfile(hard)
        dev = tarfile.TarInfo("ok/dev")
        dev.type = tarfile.CHRTYPE
        tf.addfile(dev)
    store = Store(tmp_path / "store")
    report = ingest(store, [archive])
    got = {f.path.split("!", 1)[1]: (f.status, f.message) for f in report.files}
    assert got == {
        "../../escaped.jsonl": ("refused", "refused member: path traversal (..)"),
        "/tmp/abs-escaped.jsonl": ("refused", "refused member: absolute path"),
        "ok/audit.jsonl": ("ingested", ""),
        "ok/link.jsonl": ("refused", "refused member: link"),
        "ok/hard.jsonl": ("refused", "refused member: link"),
        "ok/dev": ("refused", "refused member: not a regular file"),
    }
    assert not (tmp_path.parent / "escaped.jsonl").exists()
    assert not Path("/tmp/abs-escaped.jsonl").exists()
