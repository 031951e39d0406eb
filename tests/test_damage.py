"""Damage as real evidence carries it: nothing it hides is lost, and it is kept with its place.

Every loader's smallest real text fixture is damaged the way real files are — a NUL byte or
a run of NULs at the head (an unclean shutdown), a garbage line before the first record, a
byte-order mark in the middle (files concatenated), a block of random bytes in the middle
(a bad copy) — and ingested *without* ``--format``: detection must still find the loader,
every record of the original must load, and the damage must be one reject with its line.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import loaders
from loaders.base import LoadOptions
from loaders.ingest.pipeline import IngestReport, ingest
from loaders.parsing.inputs import NotRegularFile
from loaders.store.read import read_manifest, read_rejects
from loaders.store.store import Store
from tests.test_hostile import NAMES, _is_binary, fixture_of

ROOT = Path(__file__).resolve().parent.parent
TEXT_NAMES = [n for n in NAMES if not _is_binary(fixture_of(n).read_bytes())]
# fixtures that are one JSON document: damage inside it ends the document (see below)
ONE_DOCUMENT = {"k8s_events", "openstack_cadf", "selectel_audit"}


def _middle(data: bytes) -> int:
    """The start of the line after the middle of ``data``."""
    return data.find(b"\n", len(data) // 2) + 1


HEADS = {
    "leading-nul": (b"\x00", "damaged region: 1 NUL bytes at byte 0 "),
    "leading-nul-run": (b"\x00" * 4096, "damaged region: 4,096 NUL bytes at byte 0 "),
    "garbage-line": (b"\x8f\x03\x02 binary garbage before the first record\n", ""),
    "garbage-text-line": (b"this line is not a record of any format\n", ""),
}


def _damage_head(name: str, variant: str, tmp_path: Path) -> tuple[Path, Path]:
    fixture = fixture_of(name)
    path = tmp_path / ("damaged" + "".join(fixture.suffixes))
    path.write_bytes(HEADS[variant][0] + fixture.read_bytes())
    return fixture, path


@pytest.mark.parametrize("variant", sorted(HEADS))
@pytest.mark.parametrize("name", TEXT_NAMES)
def test_a_damaged_head_hides_nothing(name: str, variant: str, tmp_path: Path) -> None:
    fixture, path = _damage_head(name, variant, tmp_path)
    original = loaders.load(fixture, format=name)
    got = loaders.load(path)  # detected, not forced
    assert got.source == name
    assert got.status == "ok", got.error
    assert got.counts.loaded == original.counts.loaded
    assert got.counts.rejected == original.counts.rejected + 1
    assert sorted(got.events["raw"]) == sorted(original.events["raw"])
    shift = HEADS[variant][0].count(b"\n")  # a garbage line moves the lines after it
    before = Counter((line + shift, reason) for line, reason in zip(
        original.rejects["source_line"], original.rejects["reason"], strict=True))
    after = Counter(zip(got.rejects["source_line"], got.rejects["reason"], strict=True))
    (new,) = after - before
    assert new[0] == 1
    reason = HEADS[variant][1]
    if reason:
        assert new[1].startswith(reason)


@pytest.mark.parametrize("name", TEXT_NAMES)
def test_a_byte_order_mark_in_the_middle_is_dropped(name: str, tmp_path: Path) -> None:
    fixture = fixture_of(name)
    data = fixture.read_bytes()
    at = _middle(data)
    path = tmp_path / ("bom" + "".join(fixture.suffixes))
    path.write_bytes(data[:at] + b"\xef\xbb\xbf" + data[at:])
    original = loaders.load(fixture, format=name)
    got = loaders.load(path)
    assert got.source == name
    assert (got.counts.loaded, got.counts.rejected, got.counts.duplicate) == (
        original.counts.loaded, original.counts.rejected, original.counts.duplicate)
    assert sorted(got.events["raw"]) == sorted(original.events["raw"])


@pytest.mark.parametrize("name", TEXT_NAMES)
def test_random_bytes_in_the_middle_are_one_region_and_reading_resumes(
        name: str, tmp_path: Path) -> None:
    fixture = fixture_of(name)
    data = fixture.read_bytes()
    at = _middle(data)
    path = tmp_path / ("random" + "".join(fixture.suffixes))
    path.write_bytes(data[:at] + random.Random(3).randbytes(1 << 20) + b"\n" + data[at:])
    original = loaders.load(fixture, format=name)
    # a document's sniffing needs its structure, which the garbage in its head breaks
    got = loaders.load(path, format=name if name in ONE_DOCUMENT else None)
    assert got.source == name
    c = got.counts
    assert c.read == c.loaded + c.rejected + c.duplicate
    assert got.status == "ok", got.error
    regions = got.rejects[got.rejects["reason"].str.startswith("damaged region: binary data")]
    assert len(regions) >= 1
    # a megabyte of garbage is a few rejects, not thousands
    assert c.rejected - original.counts.rejected < 60
    if name in ONE_DOCUMENT:
        # one JSON document cut by garbage: the reader cannot find where the document goes
        # on, so its remainder is rejected, never silently dropped
        assert c.loaded < original.counts.loaded
    else:
        assert c.loaded == original.counts.loaded
        assert sorted(got.events["raw"]) == sorted(original.events["raw"])


def test_nul_runs_are_rejects_with_line_and_offset(tmp_path: Path) -> None:
    lines = [f"Dec  7 10:00:{i:02d} web1 sshd[100]: Accepted password for u{i} from "
             f"192.0.2.{i} port 22 ssh2\n".encode() for i in range(6)]
    # line 3 follows a zeroed block of 512 bytes; line 6 is a cut line and a zeroed block
    data = (lines[0] + lines[1] + b"\x00" * 512 + lines[2] + lines[3] + lines[4]
            + b"\x00" * 100 + lines[5] + b"\x00" * 8192)
    path = tmp_path / "auth.log"
    path.write_bytes(data)
    got = loaders.load(path, options=LoadOptions(year=2026))
    assert got.source == "linux_auth"
    assert got.counts.loaded == 6
    assert list(got.events["user"]) == [f"u{i}" for i in range(6)]
    rejects = got.rejects.sort_values("source_line")
    assert list(rejects["source_line"]) == [3, 6, 7]
    offset_3 = len(lines[0] + lines[1])
    offset_6 = offset_3 + 512 + len(lines[2] + lines[3] + lines[4])
    offset_7 = offset_6 + 100 + len(lines[5])
    assert [r.split(" (")[0] for r in rejects["reason"]] == [
        f"damaged region: 512 NUL bytes at byte {offset_3:,}",
        f"damaged region: 100 NUL bytes at byte {offset_6:,}",
        f"damaged region: 8,192 NUL bytes at byte {offset_7:,}"]


def test_nul_runs_split_by_reads_and_boms_split_by_reads(tmp_path: Path) -> None:
    """The scrubber reads in chunks: a run or a BOM across a chunk boundary is whole."""
    from loaders.parsing.damage import NulRun, scrubbed

    data = b"a\n" + b"\x00" * 10 + b"b\n\xef\xbb\xbfc\n" + b"\x00" * 3
    for chunk in (1, 2, 3, 5, 7, 64):
        runs: list[NulRun] = []
        import io

        from loaders.parsing.damage import Scrubbed

        raw = Scrubbed(io.BytesIO(data), runs, chunk=chunk)  # type: ignore[arg-type]
        out = b""
        buf = bytearray(4)
        while n := raw.readinto(buf):
            out += bytes(buf[:n])
        assert out == b"a\nb\nc\n", chunk
        assert [(r.offset, r.length) for r in runs] == [(2, 10), (19, 3)], chunk
    runs = []
    stream = scrubbed(io.BytesIO(b"x\x00y\n\x00z\n"), runs)  # type: ignore[arg-type]
    assert stream.read() == b"x\x00y\nz\n"
    assert [(r.offset, r.length) for r in runs] == [(4, 1)]


def test_evtx_and_utf16_are_not_scrubbed() -> None:
    from loaders.parsing.damage import scrubbable

    assert not scrubbable(b"ElfFile\x00" + b"\n\x00" * 10)
    assert not scrubbable("abc\n".encode("utf-16"))
    assert scrubbable(b"\x00\x00abc\n")


def _store_ingest(paths: list[Path], store: Path, format: str | None = None) -> IngestReport:
    return ingest(Store(store), paths, format=format)


def test_a_failed_file_keeps_its_rejects_and_manifest_row(tmp_path: Path) -> None:
    wrong = tmp_path / "objects.jsonl"  # JSON Lines, forced through the wrong loader
    wrong.write_text("".join(f'{{"log": "line {i}\\n", "stream": "stdout", "time": '
                             f'"2026-12-07T10:00:{i:02d}.000000000Z"}}\n' for i in range(30)))
    store = tmp_path / "store"
    report = _store_ingest([wrong], store, format="k8s_audit")
    (out,) = report.files
    assert out.status == "failed"
    assert (out.read, out.loaded, out.rejected, out.duplicate) == (20, 0, 20, 0)
    assert "the first 20 records were all rejected, so this is probably not k8s_audit" \
        in out.message
    manifest = read_manifest(store)
    assert list(manifest["status"]) == ["failed"]
    assert list(manifest["records_rejected"]) == [20]
    assert manifest["message"].iloc[0] == out.message
    rejects = read_rejects(store)
    assert len(rejects) == 20 and set(rejects["source_file"]) == {str(wrong)}
    assert list(rejects["source_line"]) == list(range(1, 21))
    # the same file and loader again: not retried; with the right loader: loaded
    again = _store_ingest([wrong], store, format="k8s_audit")
    assert again.files[0].status == "skipped"
    assert again.files[0].message.startswith("already tried: failed with k8s_audit as ")
    right = _store_ingest([wrong], store, format="k8s_container")
    assert (right.files[0].status, right.files[0].loader, right.files[0].loaded) == (
        "ingested", "k8s_container", 30)
    assert list(read_manifest(store)["status"]) == ["failed", "ingested"]
    # info shows the failed file and why
    info = subprocess.run([sys.executable, "-m", "analysis.cli", "info", "--store",
                           str(store)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert "failed" in info.stdout and "probably not k8s_audit" in info.stdout
    assert "1 files did not load to their end" in info.stdout


def test_the_summary_is_true_for_every_status(tmp_path: Path) -> None:
    evidence = tmp_path / "in"
    evidence.mkdir()
    (evidence / "a.log").write_bytes(fixture_of("linux_auth").read_bytes())
    (evidence / "notes.txt").write_text("meeting notes\nnothing here is a log\nat all\n")
    (evidence / "b.jsonl").write_bytes(b"\x00" * 64 + fixture_of("k8s_audit").read_bytes())
    report = _store_ingest([evidence], tmp_path / "store")
    by = {Path(f.path).name: f for f in report.files}
    assert by["a.log"].status == "ingested" and by["a.log"].loaded == 9
    assert by["b.jsonl"].status == "ingested" and by["b.jsonl"].loader == "k8s_audit"
    assert by["notes.txt"].status == "skipped" and by["notes.txt"].unrecognised == "text"
    for f in report.files:
        assert f.read == f.loaded + f.rejected + f.duplicate, f
    t = report.totals()
    assert t["read"] == t["loaded"] + t["rejected"] + t["duplicate"]
    m = read_manifest(tmp_path / "store")
    assert sorted(Path(p).name for p in m["path"]) == ["a.log", "b.jsonl"]
    assert (m["records_read"] == m["records_loaded"] + m["records_rejected"]
            + m["records_duplicate"]).all()


def _cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_unrecognised_text_is_reported_and_strict_fails(tmp_path: Path) -> None:
    evidence = tmp_path / "in"
    evidence.mkdir()
    (evidence / "a.log").write_bytes(fixture_of("linux_auth").read_bytes())
    (evidence / "app.log").write_text("2026-12-07 10:00:00 worker started\n" * 5)
    store = str(tmp_path / "store")
    out = _cli("ingest", str(evidence), "--store", store)
    assert out.returncode == 0, out.stderr
    assert "NOT LOADED: 1 files look like text logs" in out.stdout
    assert f"  {evidence / 'app.log'}" in out.stdout
    strict = _cli("ingest", str(evidence), "--store", str(tmp_path / "s2"), "--strict")
    assert strict.returncode == 1
    assert "--strict: 1 inputs were not recognised or were refused" in strict.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifos_and_devices_are_refused_not_read(tmp_path: Path) -> None:
    evidence = tmp_path / "in"
    evidence.mkdir()
    (evidence / "a.log").write_bytes(fixture_of("linux_auth").read_bytes())
    os.mkfifo(evidence / "pipe")
    (evidence / "zero").symlink_to("/dev/zero")
    out = _cli("ingest", str(evidence), "--store", str(tmp_path / "store"), timeout=60)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("/")}
    assert "refused: a FIFO (named pipe), not a regular file" in lines[str(evidence / "pipe")]
    assert ("refused: a character device (through a symbolic link)"
            in lines[str(evidence / "zero")])
    assert " ingested " in lines[str(evidence / "a.log")]
    assert "1 ingested, 0 stopped, 0 skipped, 2 refused, 0 failed" in out.stdout
    with pytest.raises(NotRegularFile):
        loaders.load(evidence / "pipe")


def test_a_loader_error_midway_keeps_what_was_read(tmp_path: Path) -> None:
    """A loader that raises after some records: the file is ``stopped``, the records before
    stay, and the counts hold; raising before any record: ``failed``, nothing claimed."""
    from loaders.base import Parsed
    from loaders.ingest.runner import FileRun
    from loaders.parsing.inputs import input_file, read_head

    path = tmp_path / "x.log"
    path.write_text("a\nb\nc\n")

    class Breaks(loaders.base.LineLoader):  # type: ignore[name-defined]
        name = "linux_auth"  # borrows a real source's columns
        after = 2

        def parse(self, src):  # type: ignore[no-untyped-def]
            for n, line in enumerate(src.lines(), 1):
                if n > self.after:
                    raise RuntimeError("boom")
                yield Parsed(n, line.text, {"timestamp": None, "action": "x"})

    for after, status, loaded in ((2, "stopped", 2), (0, "failed", 0)):
        loader = Breaks()
        loader.after = after
        run = FileRun(loader, input_file(path), read_head(path), LoadOptions(), "t")
        tables = [t for kind, t in run if kind == "events"]
        assert run.status == status
        assert "linux_auth loader error after" in (run.error or "")
        assert sum(t.num_rows for t in tables) == loaded == run.counts.loaded
        assert run.counts.read == run.counts.loaded + run.counts.rejected


@pytest.mark.parametrize("head", [b"\xef\xbb\xbf\xef\xbb\xbf", b"\x00"])
@pytest.mark.parametrize("format", [None, "windows_events"])
def test_windows_json_lines_with_two_boms_or_a_nul_at_the_head(
        head: bytes, format: str | None, tmp_path: Path) -> None:
    """Both used to be "ingested" with 0 records read: the head did not start with ``{``, so
    the loader read the file as syslog and skipped every line."""
    fixture = fixture_of("windows_events")  # the smallest real one: JSON Lines
    assert fixture.read_bytes().lstrip()[:1] == b"{"
    original = loaders.load(fixture, format="windows_events")
    path = tmp_path / "events.jsonl"
    path.write_bytes(head + fixture.read_bytes())
    got = loaders.load(path, format=format)
    assert got.source == "windows_events"
    assert got.counts.loaded == original.counts.loaded > 0
    assert got.counts.rejected == original.counts.rejected + head.count(b"\x00")


def test_info_on_a_store_where_nothing_was_kept(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\nmilk\n")
    store = str(tmp_path / "store")
    assert _cli("ingest", str(notes), "--store", store).returncode == 0
    info = _cli("info", "--store", store)
    assert info.returncode == 0, info.stderr
    assert "no input file is stored: every file given to `auditlens ingest` so far was " \
        "skipped" in info.stdout
    missing = _cli("info", "--store", str(tmp_path / "nothing-here"))
    assert missing.returncode == 1 and "no store at" in missing.stderr


def test_a_gzip_log_with_a_bad_checksum_keeps_every_decoded_line(tmp_path: Path) -> None:
    """zlib reports a wrong CRC only after decoding the last block: the reader used to lose
    what that read decoded — all of a small file (and detection saw an empty head)."""
    import gzip

    text = b"".join(b"Dec  7 10:%02d:%02d web1 sshd[7]: Failed password for root from "
                    b"203.0.113.9 port 22 ssh2\n" % divmod(i, 60) for i in range(300))
    data = bytearray(gzip.compress(text))
    data[-8] ^= 0xFF  # the CRC-32 in the trailer
    path = tmp_path / "auth.log.gz"
    path.write_bytes(bytes(data))
    got = loaders.load(path, options=LoadOptions(year=2026))
    assert got.source == "linux_auth"
    assert (got.status, got.counts.loaded, got.counts.rejected) == ("stopped", 300, 0)
    assert "incorrect data check" in (got.error or "")


def test_a_minified_array_export_streams_past_the_line_bound(tmp_path: Path) -> None:
    """A JSON array exported on one line is one huge line: its elements are still read one
    by one, each under the value bound; the line bound is for line-oriented input."""
    import json

    from loaders.base import Tuning

    fixture = ROOT / "tests/fixtures/k8s-audit/falco_trace_files_k8s_audit.jsonl"
    records = [json.loads(line) for line in fixture.read_text().splitlines() if line.strip()]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(records, separators=(",", ":")))  # one line
    small = LoadOptions(tuning=Tuning(max_line_bytes=4096))
    assert path.stat().st_size > 10 * 4096
    got = loaders.load(path, format="k8s_audit", options=small)
    whole = loaders.load(path, format="k8s_audit")
    assert (got.counts.loaded, got.counts.rejected, got.counts.duplicate) == (
        whole.counts.loaded, whole.counts.rejected, whole.counts.duplicate)
    assert (got.counts.read, got.counts.loaded) == (len(records), 50)  # as the JSON Lines file


def test_a_list_too_large_to_hold_is_read_item_by_item(tmp_path: Path) -> None:
    """``kubectl get events -o json`` of a big cluster is one EventList object; past the
    value bound it used to be one reject (every event lost); now its items are streamed,
    each with its own line and text, exactly as when the list is small enough to hold."""
    import json

    from loaders.base import Tuning

    items = [{"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"pod-{i}.1",
              "namespace": "default", "uid": f"uid-{i}", "resourceVersion": str(100 + i)},
              "involvedObject": {"kind": "Pod", "name": f"pod-{i}", "namespace": "default"},
              "reason": "Pulled", "message": f"image pulled {i}", "type": "Normal",
              "count": 1, "firstTimestamp": f"2026-12-07T10:{i // 60:02d}:{i % 60:02d}Z",
              "lastTimestamp": f"2026-12-07T10:{i // 60:02d}:{i % 60:02d}Z"}
             for i in range(40)]
    doc = {"apiVersion": "v1", "kind": "EventList", "metadata": {"resourceVersion": "9"},
           "items": items}
    path = tmp_path / "events.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    held = loaders.load(path, format="k8s_events")
    small = loaders.load(path, format="k8s_events",
                         options=LoadOptions(tuning=Tuning(max_value_chars=2048)))
    assert held.counts.loaded == small.counts.loaded == 40
    assert small.counts.rejected == 0
    cols = ["event_uid", "source_line", "raw", "timestamp", "message"]
    assert small.events[cols].equals(held.events[cols])
    assert any('holds its records in "items": they were read one by one' in w
               for w in small.warnings)
    # more fields after the array, and a cut file
    doc2 = {"kind": "EventList", "items": items, "metadata": {"continue": ""}}
    path.write_text(json.dumps(doc2, indent=2))
    tail = loaders.load(path, format="k8s_events",
                        options=LoadOptions(tuning=Tuning(max_value_chars=2048)))
    assert (tail.counts.loaded, tail.counts.rejected) == (40, 0)
    cut = path.read_text()[: len(path.read_text()) * 3 // 4]
    path.write_text(cut)
    partial = loaders.load(path, format="k8s_events",
                           options=LoadOptions(tuning=Tuning(max_value_chars=2048)))
    c = partial.counts
    assert c.read == c.loaded + c.rejected and 25 <= c.loaded < 40 and c.rejected == 1
