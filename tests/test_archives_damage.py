"""Damaged and hostile archives: one failed input with the reason, the members before the
damage kept, the run going on; caps enforced on the bytes actually decompressed (whatever the
headers say), with the disk held by members measured; one budget per input, nested archives
included, each byte counted once."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis import read_events
from analysis.cli import print_ingest_summary
from loaders.base import ArchiveLimits, LoadOptions
from loaders.ingest import archives
from loaders.ingest.pipeline import IngestReport, ingest
from loaders.store.store import Store
from tests.conftest import ROOT

AUTH = ROOT / "tests" / "fixtures" / "linux-auth"
# linux_auth fixtures: (read, loaded, rejected) when loaded alone
A = AUTH / "plaso_syslog_ssh.log"  # 9, 9, 0
B = AUTH / "synthetic_debian_auth.log"  # 32, 31, 1
C = AUTH / "synthetic_rhel_secure.log"  # 7, 7, 0
D = AUTH / "synthetic_dec_jan_wrap.log"  # 5, 5, 0
E = AUTH / "synthetic_rfc5424_auth.log"  # 4, 3, 1
MiB = 1024 * 1024



def _cli_ingest_fails(evidence: Path, store: Path) -> subprocess.CompletedProcess[str]:
    """``auditlens ingest`` of a folder holding a damaged archive: exit 1 saying some files
    failed, never a traceback."""
    out = subprocess.run([sys.executable, "-m", "analysis.cli", "ingest", str(evidence),
                          "--store", str(store)], cwd=ROOT, text=True,
                         capture_output=True, timeout=300, env={**os.environ})
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "some files failed" in out.stderr
    return out

def _tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _member_end(tar: bytes, index: int) -> int:
    """Offset in the tar just after member ``index``'s data (and padding)."""
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        info = tf.getmembers()[index]
    return info.offset_data + -(-info.size // 512) * 512


def _gzip_cut(data: bytes, cut: int) -> bytes:
    """A gzip of ``data`` cut so that exactly ``data[:cut]`` decompresses from it (a sync
    flush at the cut): a truncated download whose end falls at a known place."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data[:cut]) + c.flush(zlib.Z_SYNC_FLUSH)


def _outcomes(report: IngestReport, root: Path) -> list[tuple[str, str, int, int, str]]:
    return [(f.path.replace(str(root) + "/", ""), f.status, f.read, f.loaded, f.message)
            for f in report.files]


def _assert_adds_up(report: IngestReport) -> None:
    t = report.totals()
    assert t["read"] == t["loaded"] + t["rejected"] + t["duplicate"]
    assert sum(t[s] for s in ("ingested", "stopped", "failed", "skipped", "refused")) == \
        len(report.files)  # type: ignore[literal-required]


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Peak bytes held in the members' temp dir. Files there only grow while a member is
    copied, so the peak is reached at the end of some copy (returned or refused)."""
    seen = {"peak": 0, "copies": 0}
    real = archives._copy_capped

    def copy(src: Any, target: Path, limits: ArchiveLimits, budget: Any) -> int:
        try:
            return real(src, target, limits, budget)
        finally:
            seen["copies"] += 1
            held = sum(p.stat().st_size for p in target.parent.iterdir())
            seen["peak"] = max(seen["peak"], held)

    monkeypatch.setattr(archives, "_copy_capped", copy)
    return seen


def _opts(**limits: int) -> LoadOptions:
    return LoadOptions(archive_limits=ArchiveLimits(**limits))


# --- truncated and damaged tar ----------------------------------------------------------


def test_truncated_tar_gz_alone_keeps_the_members_before_the_cut(tmp_path: Path) -> None:
    tar = _tar_bytes([("logs/a.log", A.read_bytes()), ("logs/b.log", B.read_bytes()),
                      ("logs/c.log", C.read_bytes())])
    cases = {
        # cut inside b.log's data: a.log is kept, b.log (incomplete) is not
        "mid-data": (_member_end(tar, 0) + 512 + 1000, [("a", 9, 9)],
                     "damaged tar.gz archive in member logs/b.log: unexpected end of data"),
        # cut exactly after b.log, and inside c.log's header
        "at-header": (_member_end(tar, 1), [("a", 9, 9), ("b", 32, 31)],
                      "damaged tar.gz archive after member logs/b.log: unexpected end of data"),
        "mid-header": (_member_end(tar, 1) + 100, [("a", 9, 9), ("b", 32, 31)],
                       "damaged tar.gz archive after member logs/b.log: unexpected end of "
                       "data"),
        # every member is there, the end marker and the gzip trailer are not
        "no-trailer": (_member_end(tar, 2), [("a", 9, 9), ("b", 32, 31), ("c", 7, 7)],
                       "damaged tar.gz archive after member logs/c.log: unexpected end of "
                       "data"),
    }
    for case, (cut, kept, message) in cases.items():
        path = tmp_path / f"{case}.tar.gz"
        path.write_bytes(_gzip_cut(tar, cut))
        report = ingest(Store(tmp_path / f"store-{case}"), [path])
        want = [(f"{case}.tar.gz!logs/{n}.log", "ingested", r, lo, "") for n, r, lo in kept]
        want.append((f"{case}.tar.gz", "failed", 0, 0, message))
        assert _outcomes(report, tmp_path) == want, case
        assert report.files[-1].size == path.stat().st_size
        assert not report.ok
        _assert_adds_up(report)


def test_truncated_tar_gz_between_two_good_files(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "1-first.log").write_bytes(A.read_bytes())
    tar = _tar_bytes([("b.log", B.read_bytes()), ("c.log", C.read_bytes())])
    (evidence / "2-cut.tar.gz").write_bytes(_gzip_cut(tar, _member_end(tar, 0) + 700))
    (evidence / "3-last.log").write_bytes(D.read_bytes())
    report = ingest(Store(tmp_path / "store"), [evidence])
    assert _outcomes(report, evidence) == [
        ("1-first.log", "ingested", 9, 9, ""),
        ("2-cut.tar.gz!b.log", "ingested", 32, 31, ""),
        ("2-cut.tar.gz", "failed", 0, 0,
         "damaged tar.gz archive in member c.log: unexpected end of data"),
        ("3-last.log", "ingested", 5, 5, ""),
    ]
    _assert_adds_up(report)
    stored = read_events(tmp_path / "store", columns=["source_file"])["source_file"]
    assert stored.value_counts().to_dict() == {
        str(evidence / "1-first.log"): 9, str(evidence / "2-cut.tar.gz") + "!b.log": 31,
        str(evidence / "3-last.log"): 5}
    # the command: every good file ingested, exit 1 naming the damaged archive
    out = _cli_ingest_fails(evidence, tmp_path / "cli-store")
    assert "4 files: 3 ingested, 0 stopped, 0 skipped, 0 refused, 1 failed" in out.stdout
    assert "records: 46 read = 45 loaded + 1 rejected + 0 duplicate" in out.stdout
    assert "damaged tar.gz archive in member c.log: unexpected end of data" in out.stdout


def test_damaged_plain_tar_and_tar_without_end_marker(tmp_path: Path) -> None:
    tar = _tar_bytes([("a.log", A.read_bytes()), ("c.log", C.read_bytes())])
    cut = tmp_path / "cut.tar"
    cut.write_bytes(tar[: _member_end(tar, 0) + 512 + 10])
    # a whole gzip stream of a tar that was cut before it was compressed
    unended = tmp_path / "unended.tar.gz"
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    unended.write_bytes(c.compress(tar[: _member_end(tar, 0)]) + c.flush())
    # a corrupted member header (bad checksum) after the first member
    bad = bytearray(tar)
    bad[_member_end(tar, 0) + 10] ^= 0xFF
    badhdr = tmp_path / "badheader.tar"
    badhdr.write_bytes(bytes(bad))
    report = ingest(Store(tmp_path / "store"), [cut, unended, badhdr])
    assert _outcomes(report, tmp_path) == [
        ("cut.tar!a.log", "ingested", 9, 9, ""),
        ("cut.tar", "failed", 0, 0,
         "damaged tar archive in member c.log: unexpected end of data"),
        ("unended.tar.gz!a.log", "skipped", 0, 0,
         f"same content as {tmp_path}/cut.tar!a.log in this run"),
        ("unended.tar.gz", "failed", 0, 0, "damaged tar.gz archive after member a.log: "
                                           "unexpected end of data (no end-of-archive marker)"),
        ("badheader.tar!a.log", "skipped", 0, 0,
         f"same content as {tmp_path}/cut.tar!a.log in this run"),
        ("badheader.tar", "failed", 0, 0,
         "damaged tar archive after member a.log: invalid member header (bad checksum)"),
    ]
    _assert_adds_up(report)


def test_corrupted_gzip_data_in_a_tar_gz(tmp_path: Path) -> None:
    tar = _tar_bytes([("a.log", A.read_bytes()), ("e.log", E.read_bytes())])
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = c.compress(tar[: _member_end(tar, 0)]) + c.flush(zlib.Z_FULL_FLUSH)
    data = bytearray(first + c.compress(tar[_member_end(tar, 0):]) + c.flush())
    data[-8] ^= 0xFF  # the CRC-32 of the gzip trailer
    bad_crc = tmp_path / "badcrc.tar.gz"
    bad_crc.write_bytes(bytes(data))
    report = ingest(Store(tmp_path / "store"), [bad_crc])
    assert _outcomes(report, tmp_path) == [
        ("badcrc.tar.gz!a.log", "ingested", 9, 9, ""),
        ("badcrc.tar.gz!e.log", "ingested", 4, 3, ""),
        ("badcrc.tar.gz", "failed", 0, 0, "damaged tar.gz archive after member e.log: "
         "compressed data is damaged (Error -3 while decompressing data: incorrect data "
         "check)"),
    ]


# --- truncated and damaged zip ----------------------------------------------------------


def _zip(path: Path, members: list[tuple[str, bytes]],
         method: int = zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, method)


class _Pipe(io.RawIOBase):
    """A write-only stream that cannot seek: zipfile writes each member's sizes and CRC-32
    in a data descriptor after its data (flag bit 3), zeros in its local header."""

    def __init__(self) -> None:
        self.data = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return self.data.write(b)


def _piped_zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", method) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.compress_type = method
            with zf.open(info, "w") as fh:
                fh.write(data)
    return pipe.data.getvalue()


def _local_header(data: bytes, name: str) -> int:
    """Offset of the local header of member ``name``."""
    return next(i for i in _local_headers(data)
                if data[i + 30: i + 30 + len(name)] == name.encode())


def _local_headers(data: bytes) -> list[int]:
    out, at = [], data.find(b"PK\x03\x04")
    while at >= 0:
        out.append(at)
        at = data.find(b"PK\x03\x04", at + 4)
    return out


_ABC = [("a.log", A.read_bytes()), ("b.log", B.read_bytes()), ("c.log", C.read_bytes())]
_LOST = "zip archive without its central directory (truncated?): "


@pytest.mark.parametrize("layout", ["deflate", "deflate-descriptor", "stored"])
def test_truncated_zip_recovers_the_members_before_the_cut(tmp_path: Path, layout: str) -> None:
    whole = tmp_path / "whole.zip"
    if layout == "deflate-descriptor":
        whole.write_bytes(_piped_zip(_ABC))
        with zipfile.ZipFile(whole) as zf:
            assert [i.flag_bits & 0x8 for i in zf.infolist()] == [8, 8, 8]
    else:
        _zip(whole, _ABC, zipfile.ZIP_STORED if layout == "stored" else zipfile.ZIP_DEFLATED)
    data = whole.read_bytes()
    c_at = _local_header(data, "c.log")
    cases = {
        # a copy that stopped inside c.log's data: a.log and b.log are whole
        "in-data": (c_at + 30 + 5 + 100, [("a", 9, 9), ("b", 32, 31)],
                    [("c.log", "failed", "damaged member: the archive ends inside it")],
                    "2 members recovered from their local headers; the archive ends inside "
                    "member c.log"),
        "in-header": (c_at + 20, [("a", 9, 9), ("b", 32, 31)], [],
                      "2 members recovered from their local headers; the archive ends inside "
                      "the local header after member b.log"),
        # every member is there, the end of the central directory is not
        "in-directory": (len(data) - 40, [("a", 9, 9), ("b", 32, 31), ("c", 7, 7)], [],
                         "3 members recovered from their local headers; its central "
                         "directory after member c.log is cut or damaged"),
    }
    for case, (cut, kept, lost, message) in cases.items():
        path = tmp_path / f"{case}.zip"
        path.write_bytes(data[:cut])
        report = ingest(Store(tmp_path / f"store-{case}"), [path])
        want = [(f"{case}.zip!{n}.log", "ingested", r, lo, "") for n, r, lo in kept]
        want += [(f"{case}.zip!{n}", st, 0, 0, m) for n, st, m in lost]
        want.append((f"{case}.zip", "failed", 0, 0, _LOST + message))
        assert _outcomes(report, tmp_path) == want, case
        assert report.files[-1].size == path.stat().st_size
        assert not report.ok
        _assert_adds_up(report)
        stored = read_events(tmp_path / f"store-{case}", columns=["source_file"])
        assert len(stored) == sum(lo for _, _, lo in kept)


def test_recovered_members_are_checked_and_refused_like_any(tmp_path: Path) -> None:
    """Without the central directory: a CRC-32 mismatch fails its member only (the data
    delimits itself), an encrypted or bzip2 member with sizes in its local header is refused
    and stepped over, unsafe names are refused, and a stored member with a data descriptor
    (whose end cannot be found) is refused and ends the walk."""
    piped = bytearray(_piped_zip([("a.log", A.read_bytes()), ("b.log", B.read_bytes()),
                                  ("c.log", C.read_bytes())]))
    b_at = _local_header(bytes(piped), "c.log")
    # b.log's data descriptor: its CRC-32 (after the signature) no longer matches
    desc = bytes(piped).rindex(b"PK\x07\x08", 0, b_at)
    piped[desc + 4] ^= 0xFF
    crc = tmp_path / "crc.zip"
    crc.write_bytes(bytes(piped[: b_at + 200]))
    mixed = tmp_path / "mixed.zip"
    with zipfile.ZipFile(mixed, "w") as zf:
        zf.writestr("secret.log", A.read_bytes(), zipfile.ZIP_STORED)
        zf.writestr("b.bz2.log", B.read_bytes(), zipfile.ZIP_BZIP2)
        zf.writestr("../up.log", C.read_bytes(), zipfile.ZIP_DEFLATED)
        zf.writestr("d.log", D.read_bytes(), zipfile.ZIP_DEFLATED)
    data = bytearray(mixed.read_bytes())
    data[6] |= 0x1  # secret.log's local header: encrypted
    mixed.write_bytes(bytes(data[: data.index(b"PK\x01\x02")]))
    stored = tmp_path / "stored-descriptor.zip"
    piped_stored = _piped_zip([("e.log", E.read_bytes()), ("a.log", A.read_bytes())],
                              zipfile.ZIP_STORED)
    stored.write_bytes(piped_stored[: piped_stored.index(b"PK\x01\x02")])
    report = ingest(Store(tmp_path / "store"), [crc, mixed, stored])
    assert _outcomes(report, tmp_path) == [
        ("crc.zip!a.log", "ingested", 9, 9, ""),
        ("crc.zip!b.log", "failed", 0, 0,
         "damaged member: CRC-32 mismatch (the data is corrupted)"),
        ("crc.zip!c.log", "failed", 0, 0, "damaged member: the archive ends inside it"),
        ("crc.zip", "failed", 0, 0, _LOST + "1 member recovered from its local header; "
         "the archive ends inside member c.log"),
        ("mixed.zip!secret.log", "refused", 0, 0, "refused member: encrypted"),
        ("mixed.zip!b.bz2.log", "refused", 0, 0, "refused member: compression method 12, "
         "which cannot be read without the central directory"),
        ("mixed.zip!../up.log", "refused", 0, 0, "refused member: path traversal (..)"),
        ("mixed.zip!d.log", "ingested", 5, 5, ""),
        ("mixed.zip", "failed", 0, 0, _LOST + "1 member recovered from its local header; "
         "the archive ends after member d.log, where its central directory should be"),
        ("stored-descriptor.zip!e.log", "refused", 0, 0, "refused member: stored with a data "
         "descriptor, which cannot be read without the central directory"),
        ("stored-descriptor.zip", "failed", 0, 0, _LOST + "0 members recovered from their "
         "local headers; member e.log (stored with a data descriptor) cannot be delimited "
         "without the central directory; the rest of the archive is not read"),
    ]
    _assert_adds_up(report)


def test_truncated_zip_among_other_inputs(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "1-first.log").write_bytes(D.read_bytes())
    data = _piped_zip(_ABC)
    (evidence / "2-cut.zip").write_bytes(data[: _local_header(data, "c.log") + 300])
    (evidence / "3-last.log").write_bytes(E.read_bytes())
    report = ingest(Store(tmp_path / "store"), [evidence])
    message = _LOST + ("2 members recovered from their local headers; the archive ends inside "
                       "member c.log")
    assert _outcomes(report, evidence) == [
        ("1-first.log", "ingested", 5, 5, ""),
        ("2-cut.zip!a.log", "ingested", 9, 9, ""),
        ("2-cut.zip!b.log", "ingested", 32, 31, ""),
        ("2-cut.zip!c.log", "failed", 0, 0, "damaged member: the archive ends inside it"),
        ("2-cut.zip", "failed", 0, 0, message),
        ("3-last.log", "ingested", 4, 3, ""),
    ]
    _assert_adds_up(report)
    out = _cli_ingest_fails(evidence, tmp_path / "cli-store")
    assert "6 files: 4 ingested, 0 stopped, 0 skipped, 0 refused, 2 failed" in out.stdout
    assert "records: 50 read = 48 loaded + 2 rejected + 0 duplicate" in out.stdout
    assert message in out.stdout


def test_zip_with_a_corrupted_member_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "case.zip"
    b = B.read_bytes()
    _zip(path, [("a.log", A.read_bytes()), ("b.log", b), ("c.log", C.read_bytes())],
         zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    data[data.index(b) + 100] ^= 0x20  # one flipped bit in b.log: its CRC-32 no longer matches
    path.write_bytes(bytes(data))
    deflated = tmp_path / "deflated.zip"
    _zip(deflated, [("d.log", D.read_bytes()), ("e.log", E.read_bytes())])
    with zipfile.ZipFile(deflated) as zf:
        info = zf.getinfo("e.log")
    data = bytearray(deflated.read_bytes())
    start = info.header_offset + 30 + len("e.log")
    data[start: start + info.compress_size] = b"\xff" * info.compress_size
    deflated.write_bytes(bytes(data))
    report = ingest(Store(tmp_path / "store"), [path, deflated])
    assert _outcomes(report, tmp_path) == [
        ("case.zip!a.log", "ingested", 9, 9, ""),
        ("case.zip!b.log", "failed", 0, 0,
         "damaged member: CRC-32 mismatch (the data is corrupted)"),
        ("case.zip!c.log", "ingested", 7, 7, ""),
        ("deflated.zip!d.log", "ingested", 5, 5, ""),
        ("deflated.zip!e.log", "failed", 0, 0, "damaged member: compressed data is damaged "
         "(Error -3 while decompressing data: invalid block type)"),
    ]
    assert not report.ok
    _assert_adds_up(report)


# --- lying headers and bombs, with the disk measured ---------------------------------------


def _patch_sizes(path: Path, name: str, *, file_size: int | None = None,
                 compress_size: int | None = None) -> None:
    """Rewrite a member's sizes in its local header and its central directory entry."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local = zf.getinfo(name).header_offset
    central = data.index(b"PK\x01\x02")
    while data[central + 46: central + 46 + len(name)] != name.encode():
        central = data.index(b"PK\x01\x02", central + 4)
    for at, csize_at, fsize_at in ((local, 18, 22), (central, 20, 24)):
        if compress_size is not None:
            data[at + csize_at: at + csize_at + 4] = compress_size.to_bytes(4, "little")
        if file_size is not None:
            data[at + fsize_at: at + fsize_at + 4] = file_size.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def test_zip_header_understating_the_size_is_refused_at_once(
        tmp_path: Path, disk: dict[str, int]) -> None:
    path = tmp_path / "lying.zip"
    _zip(path, [("big.log", b"\0" * (64 * MiB)), ("a.log", A.read_bytes())])
    _patch_sizes(path, "big.log", file_size=1024)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("big.log").file_size == 1024  # what the headers now claim
    report = ingest(Store(tmp_path / "store"), [path],
                    options=_opts(max_member_bytes=4 * MiB, max_total_bytes=64 * MiB))
    assert _outcomes(report, tmp_path) == [
        ("lying.zip!big.log", "failed", 0, 0,
         "damaged member: more data than the 1,024 bytes its header declares"),
        ("lying.zip!a.log", "ingested", 9, 9, ""),
    ]
    assert disk["peak"] == len(A.read_bytes())  # big.log: nothing was written


def test_zip_header_overstating_the_compressed_size_does_not_hide_a_bomb(
        tmp_path: Path, disk: dict[str, int]) -> None:
    path = tmp_path / "bomb.zip"
    _zip(path, [("zeros.bin", b"\0" * (64 * MiB)), ("a.log", A.read_bytes())])
    _patch_sizes(path, "zeros.bin", compress_size=2**31)  # the header says 32:1
    report = ingest(Store(tmp_path / "store"), [path],
                    options=_opts(max_ratio=100, ratio_floor=4 * MiB))
    [bomb, good] = report.files
    assert (bomb.status, good.status, good.loaded) == ("refused", "ingested", 9)
    assert bomb.message.startswith("refused member: compression ratio above 100:1 "
                                   "(5,242,880 bytes from ")
    assert bomb.message.endswith(" compressed; decompression bomb?)")
    assert disk["peak"] == 4 * MiB  # the floor: nothing past it was written
    print(f"zip bomb: peak {disk['peak']:,} bytes on disk, ratio floor {4 * MiB:,}")


@pytest.mark.parametrize("layout", ["sizes", "descriptor"])
def test_bomb_in_a_truncated_zip_is_refused_by_the_ratio(
        tmp_path: Path, disk: dict[str, int], layout: str) -> None:
    """Recovered from local headers, a bomb is refused by the same ratio check; the walk
    steps over it (by its stored compressed size, or by inflating the rest of its stream
    without writing it, charged to the budget) to the members after it."""
    members = [("a.log", A.read_bytes()), ("zeros.bin", b"\0" * (64 * MiB)),
               ("b.log", B.read_bytes()), ("c.log", C.read_bytes())]
    if layout == "descriptor":
        data = _piped_zip(members)
    else:
        _zip(tmp_path / "whole.zip", members)
        data = (tmp_path / "whole.zip").read_bytes()
    path = tmp_path / "bomb.zip"
    path.write_bytes(data[: _local_header(data, "c.log") + 100])
    report = ingest(Store(tmp_path / "store"), [path],
                    options=_opts(max_ratio=100, ratio_floor=4 * MiB))
    assert _outcomes(report, tmp_path) == [
        ("bomb.zip!a.log", "ingested", 9, 9, ""),
        ("bomb.zip!zeros.bin", "refused", 0, 0, report.files[1].message),
        ("bomb.zip!b.log", "ingested", 32, 31, ""),
        ("bomb.zip!c.log", "failed", 0, 0, "damaged member: the archive ends inside it"),
        ("bomb.zip", "failed", 0, 0, _LOST + "2 members recovered from their local headers; "
         "the archive ends inside member c.log"),
    ]
    assert report.files[1].message.startswith(
        "refused member: compression ratio above 100:1 (5,242,880 bytes from ")
    assert disk["peak"] == 4 * MiB  # the floor: nothing past it was written
    if layout == "descriptor":  # stepping over it inflates the rest: within the budget only
        report = ingest(Store(tmp_path / "store2"), [path], options=_opts(
            max_ratio=100, ratio_floor=4 * MiB, max_total_bytes=32 * MiB))
        assert _outcomes(report, tmp_path)[1:] == [
            ("bomb.zip!zeros.bin", "refused", 0, 0, report.files[1].message),
            ("bomb.zip", "failed", 0, 0, _LOST + "1 member recovered from its local "
             "header; refused the rest of the archive after member zeros.bin: skipping its "
             "data would pass the total size cap (33,554,432 bytes)")]
    print(f"zip bomb without central directory ({layout}): peak {disk['peak']:,} bytes on "
          f"disk, ratio floor {4 * MiB:,}")


class _Zeros(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def _bomb_tar_gz(path: Path, before: bytes, zeros_mib: int, after: bytes) -> None:
    """A tar.gz of before.log, zeros.bin (``zeros_mib`` MiB of zeros) and after.log, written
    streaming: the deflate of one MiB of zeros after a full flush is the same every time,
    so it is repeated instead of compressed again (2 GiB take 2 MB and under a second)."""
    head = _tar_bytes([("before.log", before)])[: _member_end(_tar_bytes([("before.log",
                                                                           before)]), 0)]
    zinfo = tarfile.TarInfo("zeros.bin")
    zinfo.size, zinfo.mtime = zeros_mib * MiB, 1_700_000_000
    zheader = zinfo.tobuf(tarfile.USTAR_FORMAT)
    tail = _tar_bytes([("after.log", after)])
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = bytes(MiB)
    crc = zlib.crc32(head + zheader)
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
        out.write(c.compress(head + zheader) + c.flush(zlib.Z_FULL_FLUSH))
        block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
        for _ in range(zeros_mib):
            out.write(block)
            crc = zlib.crc32(mib, crc)
        out.write(c.compress(tail) + c.flush())
        crc = zlib.crc32(tail, crc)
        size = len(head) + len(zheader) + zeros_mib * MiB + len(tail)
        out.write(crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))


@pytest.mark.parametrize("zeros_mib", [
    128, pytest.param(2048, marks=pytest.mark.slow, id="2GiB")])  # skipping it takes ~5 s
def test_bomb_in_a_tar_gz_is_refused_within_the_caps(
        tmp_path: Path, disk: dict[str, int], zeros_mib: int) -> None:
    path = tmp_path / "bomb.tar.gz"
    _bomb_tar_gz(path, A.read_bytes(), zeros_mib, C.read_bytes())
    assert path.stat().st_size < 3 * MiB
    with tarfile.open(path, "r|gz") as tf:  # a sound stream with a real member that size
        first, second = tf.next(), tf.next()
        assert first and second and second.size == zeros_mib * MiB
    report = ingest(Store(tmp_path / "store"), [path],
                    options=_opts(max_ratio=100, ratio_floor=4 * MiB))
    assert _outcomes(report, tmp_path) == [
        ("bomb.tar.gz!before.log", "ingested", 9, 9, ""),
        ("bomb.tar.gz!zeros.bin", "refused", 0, 0, report.files[1].message),
        ("bomb.tar.gz!after.log", "ingested", 7, 7, ""),  # the bomb was skipped, not written
    ]
    assert report.files[1].message.startswith(
        "refused member: compression ratio above 100:1 (5,242,880 bytes from ")
    assert disk["peak"] == 4 * MiB
    print(f"tar.gz bomb ({zeros_mib} MiB member, {path.stat().st_size:,} bytes compressed): peak "
          f"{disk['peak']:,} bytes on disk, ratio floor {4 * MiB:,}")


def test_tar_member_over_a_cap_by_its_header(tmp_path: Path, disk: dict[str, int]) -> None:
    path = tmp_path / "big.tar.gz"
    _bomb_tar_gz(path, A.read_bytes(), 96, C.read_bytes())
    # a member cap below the header's size refuses it before a byte is written; skipping it
    # fits the budget, so the member after it is read
    report = ingest(Store(tmp_path / "store"), [path], options=_opts(max_member_bytes=8 * MiB))
    assert _outcomes(report, tmp_path) == [
        ("big.tar.gz!before.log", "ingested", 9, 9, ""),
        ("big.tar.gz!zeros.bin", "refused", 0, 0, "refused member: its header declares "
         "100,663,296 bytes, more than the member size cap (8,388,608)"),
        ("big.tar.gz!after.log", "ingested", 7, 7, "")]
    # a total cap below it: skipping it would decompress more than the budget allows, so
    # the rest of the archive is refused
    report = ingest(Store(tmp_path / "store2"), [path],
                    options=_opts(max_total_bytes=64 * MiB))
    assert _outcomes(report, tmp_path) == [
        ("big.tar.gz!before.log", "ingested", 9, 9, ""),
        ("big.tar.gz!zeros.bin", "refused", 0, 0, "refused member: the total size cap "
         "(67,108,864 bytes for an input and the archives in it) is reached"),
        ("big.tar.gz", "refused", 0, 0, "refused the rest of the archive after member "
         "zeros.bin: skipping its 100,663,296 unread bytes would pass the total size cap "
         "(67,108,864 bytes)")]
    assert disk["peak"] == len(A.read_bytes())


# --- one budget per input, counted once ----------------------------------------------


def _auth_log(size: int) -> bytes:
    """A linux_auth log of exactly ``size`` bytes, every line a distinct event."""
    lines, n, total = [], 0, 0
    while True:
        line = (f"Mar  1 10:{n // 60 % 60:02d}:{n % 60:02d} web01 sshd[{1000 + n}]: "
                f"Accepted password for user{n} from 203.0.113.10 port {1024 + n} ssh2\n")
        if total + len(line) + 120 > size:
            break
        lines.append(line)
        total += len(line)
        n += 1
    pad = size - total - len("Mar  1 11:00:00 web01 sshd[1]: Accepted password for last "
                             "from 203.0.113.10 port 22 ssh2\n")
    lines.append(f"Mar  1 11:00:00 web01 sshd[1]: Accepted password for last from "
                 f"203.0.113.10 port 22 ssh2{' ' * pad}\n")
    data = "".join(lines).encode()
    assert len(data) == size
    return data


def test_a_member_exactly_at_the_caps_passes(tmp_path: Path, disk: dict[str, int]) -> None:
    size = 5 * MiB // 2  # spans three blocks: the old code counted the first ones twice
    log = _auth_log(size)
    lines = log.count(b"\n")
    tgz = tmp_path / "exact.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("exact.log")
        info.size = size
        tf.addfile(info, io.BytesIO(log))
    zp = tmp_path / "exact.zip"
    _zip(zp, [("exact.log", log[:-1] + b" ")])  # same size, other content (not a repeat)
    over = tmp_path / "over.zip"
    _zip(over, [("over.log", log + b"\n")])
    limits = {"max_member_bytes": size, "max_total_bytes": size}
    report = ingest(Store(tmp_path / "store"), [tgz, zp, over], options=_opts(**limits))
    assert [(f.path.rsplit("/", 1)[-1], f.status, f.read, f.message) for f in report.files] == [
        ("exact.tar.gz!exact.log", "ingested", lines, ""),
        ("exact.zip!exact.log", "ingested", lines, ""),
        ("over.zip!over.log", "refused", 0,
         f"refused member: its header declares {size + 1:,} bytes, more than the member size "
         f"cap ({size:,})"),
    ]
    assert disk["peak"] == size


def test_nested_archives_share_one_budget(tmp_path: Path, disk: dict[str, int]) -> None:
    inner1 = tmp_path / "inner1.zip"
    _zip(inner1, [("a.log", A.read_bytes()), ("b.log", B.read_bytes())], zipfile.ZIP_STORED)
    inner2 = tmp_path / "inner2.tar"
    inner2.write_bytes(_tar_bytes([("c.log", C.read_bytes()), ("d.log", D.read_bytes())]))
    outer = tmp_path / "outer.zip"
    _zip(outer, [("inner1.zip", inner1.read_bytes()), ("inner2.tar", inner2.read_bytes())],
         zipfile.ZIP_STORED)
    # everything written: each inner archive once, then each of its members once
    written = [inner1.stat().st_size, len(A.read_bytes()), len(B.read_bytes()),
               inner2.stat().st_size, len(C.read_bytes()), len(D.read_bytes())]
    assert max(written) == inner2.stat().st_size == 10240  # each archive alone fits easily
    report = ingest(Store(tmp_path / "store"), [outer],
                    options=_opts(max_total_bytes=sum(written)))
    assert [(f.path.replace(str(outer), ""), f.status, f.loaded) for f in report.files] == [
        ("!inner1.zip!a.log", "ingested", 9), ("!inner1.zip!b.log", "ingested", 31),
        ("!inner2.tar!c.log", "ingested", 7), ("!inner2.tar!d.log", "ingested", 5)]
    cap = sum(written) - 1  # one byte less: the last member no longer fits
    report = ingest(Store(tmp_path / "store2"), [outer], options=_opts(max_total_bytes=cap))
    assert [(f.path.replace(str(outer), ""), f.status, f.message) for f in report.files] == [
        ("!inner1.zip!a.log", "ingested", ""), ("!inner1.zip!b.log", "ingested", ""),
        ("!inner2.tar!c.log", "ingested", ""),
        ("!inner2.tar!d.log", "refused", f"refused member: the total size cap ({cap:,} bytes "
                                         "for an input and the archives in it) is reached"),
        ("!inner2.tar", "refused",
         f"refused the rest of the archive after member d.log: skipping its "
         f"{len(D.read_bytes()):,} unread bytes would pass the total size cap ({cap:,} bytes)"),
    ]
    # two top-level inputs: a budget each
    outer2 = tmp_path / "outer2.zip"
    _zip(outer2, [("inner1.zip", inner1.read_bytes()), ("inner2.tar", inner2.read_bytes()),
                  ("e.log", E.read_bytes())], zipfile.ZIP_STORED)
    report = ingest(Store(tmp_path / "store3"), [outer, outer2],
                    options=_opts(max_total_bytes=sum(written)))
    assert [(f.path.replace(str(tmp_path) + "/", ""), f.status) for f in report.files] == [
        ("outer.zip!inner1.zip!a.log", "ingested"), ("outer.zip!inner1.zip!b.log", "ingested"),
        ("outer.zip!inner2.tar!c.log", "ingested"), ("outer.zip!inner2.tar!d.log", "ingested"),
        ("outer2.zip!inner1.zip!a.log", "skipped"), ("outer2.zip!inner1.zip!b.log", "skipped"),
        ("outer2.zip!inner2.tar!c.log", "skipped"), ("outer2.zip!inner2.tar!d.log", "skipped"),
        ("outer2.zip!e.log", "refused")]
    assert report.files[-1].message.startswith("refused member: the total size cap")
    assert disk["peak"] == inner2.stat().st_size + len(C.read_bytes())


# --- the summary ------------------------------------------------------------------------


def test_every_archive_outcome_is_in_the_summary_and_adds_up(tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "1.log").write_bytes(A.read_bytes())
    _zip(evidence / "2-good.zip", [("b.log", B.read_bytes()), ("notes.txt", b"notes\n")])
    hostile = evidence / "3-hostile.zip"
    _zip(hostile, [("../up.log", C.read_bytes()), ("c.log", C.read_bytes()),
                   ("d.log", D.read_bytes())], zipfile.ZIP_STORED)
    data = bytearray(hostile.read_bytes())
    data[data.rindex(D.read_bytes()) + 10] ^= 0x01
    hostile.write_bytes(bytes(data))
    tar = _tar_bytes([("e.log", E.read_bytes()), ("more.log", B.read_bytes())])
    (evidence / "4-cut.tar.gz").write_bytes(_gzip_cut(tar, _member_end(tar, 0) + 600))
    (evidence / "5-cut.zip").write_bytes((evidence / "2-good.zip").read_bytes()[:-30])
    report = ingest(Store(tmp_path / "store"), [evidence])
    assert _outcomes(report, evidence) == [
        ("1.log", "ingested", 9, 9, ""),
        ("2-good.zip!b.log", "ingested", 32, 31, ""),
        ("2-good.zip!notes.txt", "skipped", 0, 0, report.files[2].message),
        ("3-hostile.zip!../up.log", "refused", 0, 0, "refused member: path traversal (..)"),
        ("3-hostile.zip!c.log", "ingested", 7, 7, ""),
        ("3-hostile.zip!d.log", "failed", 0, 0,
         "damaged member: CRC-32 mismatch (the data is corrupted)"),
        ("4-cut.tar.gz!e.log", "ingested", 4, 3, ""),
        ("4-cut.tar.gz", "failed", 0, 0,
         "damaged tar.gz archive in member more.log: unexpected end of data"),
        ("5-cut.zip!b.log", "skipped", 0, 0,
         f"same content as {evidence}/2-good.zip!b.log in this run"),
        ("5-cut.zip!notes.txt", "skipped", 0, 0,
         f"same content as {evidence}/2-good.zip!notes.txt in this run"),
        ("5-cut.zip", "failed", 0, 0, _LOST + "2 members recovered from their local headers; "
         "its central directory after member notes.txt is cut or damaged"),
    ]
    assert report.totals() == {"read": 52, "loaded": 50, "rejected": 2, "duplicate": 0,
                               "ingested": 4, "stopped": 0, "failed": 3, "skipped": 3,
                               "refused": 1}
    _assert_adds_up(report)
    out = io.StringIO()
    print_ingest_summary(report, out)
    text = out.getvalue()
    assert "11 files: 4 ingested, 0 stopped, 3 skipped, 1 refused, 3 failed" in text
    assert "records: 52 read = 50 loaded + 2 rejected + 0 duplicate" in text
    for f in report.files:
        assert f.path in text and f.message in text
    assert not (tmp_path / "store" / ".tmp").exists() or not any(
        (tmp_path / "store" / ".tmp").rglob("member-*"))


def test_iter_archive_never_raises_on_garbage(tmp_path: Path) -> None:
    """Every prefix and a few bit flips of a small tar.gz and zip: outcomes, never an
    exception, and every failure says what was damaged."""
    tar = tmp_path / "t.tar.gz"
    tar.write_bytes(gzip.compress(_tar_bytes([("a.log", A.read_bytes())]), mtime=0))
    zp = tmp_path / "z.zip"
    _zip(zp, [("a.log", A.read_bytes()), ("e.log", E.read_bytes())])
    for src, kind in ((tar, "tar"), (zp, "zip")):
        whole = src.read_bytes()
        variants = [whole[:n] for n in range(0, len(whole), 7)]
        variants += [whole[:i] + bytes([whole[i] ^ 0x55]) + whole[i + 1:]
                     for i in range(0, len(whole), 13)]
        for n, data in enumerate(variants):
            path = tmp_path / f"{kind}{n}"
            path.write_bytes(data)
            tmp = tmp_path / f"{kind}-members{n}"
            tmp.mkdir()
            got = list(_iter(path, kind, tmp))
            for item in got:
                if isinstance(item, archives.Refused) and item.status == "failed":
                    assert item.reason.startswith(("damaged ", "cannot ", _LOST)), item.reason
            assert not any(tmp.iterdir())
            path.unlink()


def _iter(path: Path, kind: str, tmp: Path) -> Iterator[object]:
    from loaders.parsing.inputs import input_file

    yield from archives.iter_archive(input_file(path), kind, tmp)



def test_members_of_several_archives_in_parallel_keep_their_content(tmp_path: Path) -> None:
    """With ``jobs=2`` members wait on disk for a worker while the next ones are extracted:
    each needs a name of its own across archives and nesting levels."""
    _zip(tmp_path / "1.zip", [("a.log", A.read_bytes())])
    _zip(tmp_path / "2.zip", [("b.log", B.read_bytes())])
    inner = tmp_path / "inner.zip"
    _zip(inner, [("d.log", D.read_bytes())])
    _zip(tmp_path / "3.zip", [("c.log", C.read_bytes()), ("inner.zip", inner.read_bytes())])
    inner.unlink()
    report = ingest(Store(tmp_path / "store"), [tmp_path], jobs=2)
    assert _outcomes(report, tmp_path) == [
        ("1.zip!a.log", "ingested", 9, 9, ""), ("2.zip!b.log", "ingested", 32, 31, ""),
        ("3.zip!c.log", "ingested", 7, 7, ""), ("3.zip!inner.zip!d.log", "ingested", 5, 5, "")]


def test_zip_data_descriptors_and_other_methods(tmp_path: Path) -> None:
    """A zip written to a pipe (sizes after the data, flag bit 3), bzip2 and lzma members
    (read through zipfile), and a bzip2 member whose data is damaged."""

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = io.BytesIO()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            return self.data.write(b)

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("a.log", "w") as fh:
            fh.write(A.read_bytes())
        zf.writestr("b.log", B.read_bytes(), zipfile.ZIP_BZIP2)
        zf.writestr("c.log", C.read_bytes(), zipfile.ZIP_LZMA)
        zf.writestr("d.log", D.read_bytes(), zipfile.ZIP_BZIP2)
    path = tmp_path / "piped.zip"
    data = bytearray(pipe.data.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        assert [i.flag_bits & 0x8 for i in zf.infolist()] == [8, 8, 8, 8]
        d = zf.getinfo("d.log")
    start = d.header_offset + 30 + len("d.log")
    data[start + 20: start + 40] = bytes(20)
    path.write_bytes(bytes(data))
    report = ingest(Store(tmp_path / "store"), [path])
    got = _outcomes(report, tmp_path)
    assert got[:3] == [("piped.zip!a.log", "ingested", 9, 9, ""),
                       ("piped.zip!b.log", "ingested", 32, 31, ""),
                       ("piped.zip!c.log", "ingested", 7, 7, "")]
    assert got[3][:4] == ("piped.zip!d.log", "failed", 0, 0)
    assert got[3][4].startswith("damaged member: "), got[3][4]
