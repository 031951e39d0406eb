"""Damaged EVTX files (issue 17 item 3): what the intact chunks hold is loaded, what is lost
is counted.

Every case is derived from the real fixture ``evtx-rs_sysmon.evtx`` (358 records in chunks
0–8, chunks 9–16 slack) and ingested into a store: the events are exactly those of the
intact chunks, with the same columns and uids as from the undamaged file; each lost record
is one reject whose reason names the chunk, its offset and the record numbers; the manifest
row says it; ``read == loaded + rejected + duplicate``. Counting is per lost record, so a
damaged file whose chunk headers survive reads as many records as the undamaged one. A chunk
cut by the end of the file keeps the records that lie whole before the cut (same columns and
uids, plus a parse warning); a record that straddles the cut is never loaded.
"""

from __future__ import annotations

import gzip
import io
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
from analysis import read_events, read_manifest, read_rejects
from loaders.base import LoadOptions
from loaders.ingest.pipeline import ingest
from loaders.store.store import Store
from loaders.windows_events.evtx_layout import scan

DIR = Path(__file__).parent / "fixtures" / "windows-sysmon"
SYSMON = DIR / "evtx-rs_sysmon.evtx"
PSEXEC = DIR / "ID11_13_17_18-PSexec_as_system_execution.evtx"
DATA = SYSMON.read_bytes()
K = 0x10000  # chunk size


def at(chunk: int) -> int:
    """The file offset of a chunk."""
    return 0x1000 + chunk * K


# records per chunk of the intact fixture, from its chunk headers
PER_CHUNK = [41, 40, 39, 43, 43, 39, 40, 51, 22]
FIRST_ID = 1742  # EventRecordID of record 1
SLACK = ("EVTX chunks 9, 10, 11, 12, 13, 14, 15, 16 have no chunk header (unused or "
         "overwritten space); any records there were not read")
NO_HEADER = "no chunk header (no ElfChnk signature: unused or overwritten space)"


def numbers(chunk: int) -> range:
    """The record numbers (1-based positions in the file) of an intact chunk."""
    start = sum(PER_CHUNK[:chunk]) + 1
    return range(start, start + PER_CHUNK[chunk])


def records_of(*chunks: int) -> list[int]:
    return [n for c in chunks for n in numbers(c)]


def overwrite(data: bytes, offset: int, new: bytes) -> bytes:
    out = bytearray(data)
    out[offset:offset + len(new)] = new
    return bytes(out)


def flip(data: bytes, offset: int) -> bytes:
    return overwrite(data, offset, bytes([data[offset] ^ 0xFF]))


_INTACT: dict[Path, pd.DataFrame] = {}


def intact_events(path: Path = SYSMON) -> pd.DataFrame:
    """An undamaged fixture's events as stored (ingested once)."""
    if path not in _INTACT:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "store")
            [outcome] = ingest(store, [path]).files
            assert outcome.status == "ingested" and outcome.loaded == outcome.read
            _INTACT[path] = read_events(store.root).sort_values("source_line").reset_index(
                drop=True)
    return _INTACT[path]


def cut_warning(chunk: int) -> str:
    """The parse warning of a record recovered from a cut chunk."""
    return (f"from a cut chunk (EVTX chunk {chunk} at offset 0x{at(chunk):x}): its checksum "
            "could not be verified")


def ingest_damaged(tmp_path: Path, data: bytes, name: str = "damaged.evtx",
                   **options: Any) -> tuple[Any, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Ingest one damaged copy: (its outcome, manifest, events, rejects of the store)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    store = Store(tmp_path / "store")
    [outcome] = ingest(store, [path], options=LoadOptions(**options) if options else None).files
    return outcome, read_manifest(store.root), read_events(store.root), read_rejects(store.root)


def check_stored(outcome: Any, manifest: pd.DataFrame, events: pd.DataFrame,
                 rejects: pd.DataFrame, loaded_records: list[int], rejected_lines: list[int],
                 reasons: set[str], warnings: list[str], recovered: list[int] | None = None,
                 cut_chunk: int = 0, intact: Path = SYSMON) -> None:
    """The store holds exactly the records of the intact chunks (and the ``recovered``
    records of the cut chunk ``cut_chunk``, which differ only by their parse warning), one
    reject per lost record, and a manifest row that adds up and says what was lost."""
    assert outcome.status == "ingested"
    [row] = manifest.to_dict("records")
    assert row["status"] == "ingested"
    assert (row["records_read"], row["records_loaded"], row["records_rejected"],
            row["records_duplicate"]) == (
        len(loaded_records) + len(rejected_lines), len(loaded_records), len(rejected_lines), 0)
    assert row["records_read"] == (row["records_loaded"] + row["records_rejected"]
                                   + row["records_duplicate"])
    assert row["message"] == "; ".join(warnings)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (
        row["records_read"], row["records_loaded"], row["records_rejected"])
    # the events: those of the intact chunks, as from the undamaged file
    ref = intact_events(intact)
    ref = ref[ref["source_line"].isin(loaded_records)].reset_index(drop=True)
    if recovered:
        assert set(recovered) <= set(loaded_records)
        cut = ref["source_line"].isin(recovered)
        assert ref.loc[cut, "parse_warning"].isna().all()  # none in the intact file
        ref.loc[cut, "parse_warning"] = cut_warning(cut_chunk)
    got = events.sort_values("source_line").reset_index(drop=True)
    assert got["source_line"].tolist() == loaded_records
    first_id = FIRST_ID if intact == SYSMON else int(intact_events(intact)["win_record_id"][0])
    assert got["win_record_id"].tolist() == [first_id + n - 1 for n in loaded_records]
    same = [c for c in ref.columns if c not in ("source_file", "ingest_id")]
    pd.testing.assert_frame_equal(got[same], ref[same], check_dtype=False)
    # the rejects: one per lost record, where it was and why
    assert sorted(rejects["source_line"].tolist()) == rejected_lines
    assert set(rejects["reason"]) == reasons


def test_intact_fixture_layout() -> None:
    with open(SYSMON, "rb") as fh:
        layout = scan(fh)
    assert layout.header_problem is None
    assert [c.count for c in layout.chunks if c.intact] == PER_CHUNK
    assert [c.offset for c in layout.chunks if c.intact] == [at(k) for k in range(9)]
    assert [c.number for c in layout.chunks if not c.intact] == list(range(9, 17))
    assert sum(PER_CHUNK) == 358 and sum(PER_CHUNK[:8]) == 336
    result = loaders.load(SYSMON)
    assert (result.counts.read, result.counts.loaded, result.warnings) == (358, 358, [SLACK])


def test_cut_in_half_inside_the_last_chunk(tmp_path: Path) -> None:
    """Cut at 0x88800, 30 KiB into chunk 8: chunks 0–7 (336 records) load, and so do the
    17 records of chunk 8 that lie whole before the cut (337–353, ending at 29,896; with a
    parse warning, as its checksum cannot be verified); record 354 straddles the cut, so
    it and the 4 after it (its header names 22) are rejects; none vanish."""
    data = DATA[: len(DATA) // 2]
    assert len(data) == 0x88800
    reason = ("EVTX chunk 8 at offset 0x81000: records 354–358 unreadable: the file ends "
              "30,720 bytes into the chunk, before the end of its records at 37,880 "
              "(records 337–353, complete before the cut, were read)")
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 353, 5)
    check_stored(outcome, manifest, events, rejects, list(range(1, 354)),
                 list(range(354, 359)), {reason}, [f"{reason} (5 rejects)"],
                 recovered=list(range(337, 354)), cut_chunk=8)


def test_cut_layout_names_the_complete_records() -> None:
    with open(SYSMON, "rb") as fh:
        whole = scan(fh).chunks[8]
    assert whole.intact and whole.salvage is None
    layout = scan(io.BytesIO(DATA[: len(DATA) // 2]))
    chunk = layout.chunks[-1]
    assert (chunk.number, chunk.size, chunk.intact, chunk.first, chunk.last) == (
        8, 30_720, False, 337, 358)
    salvage = chunk.salvage
    assert salvage is not None and salvage.recovered and salvage.intact
    assert (salvage.first, salvage.last, salvage.first_id, salvage.last_id, salvage.size) == (
        337, 353, FIRST_ID + 336, FIRST_ID + 352, 29_896)


def test_cut_in_the_middle_of_a_middle_chunk(tmp_path: Path) -> None:
    """32 KiB of chunk 4: its 19 whole records (164–182) load, its other 24 are rejects."""
    data = DATA[: at(4) + 0x8000]
    reason = ("EVTX chunk 4 at offset 0x41000: records 183–206 unreadable: the file ends "
              "32,768 bytes into the chunk, before the end of its records at 65,096 "
              "(records 164–182, complete before the cut, were read)")
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (206, 182, 24)
    check_stored(outcome, manifest, events, rejects, list(range(1, 183)),
                 list(range(183, 207)), {reason}, [f"{reason} (24 rejects)"],
                 recovered=list(range(164, 183)), cut_chunk=4)


# chunk 8 of the fixture: record 353 ends at 29,896, record 354 (2,000 bytes) at 31,896
@pytest.mark.parametrize("cut", [29_896, 29_897, 29_896 + 24, 29_896 + 28, 31_896 - 4,
                                 31_896 - 1, 31_896])
def test_a_record_straddling_the_cut_is_never_loaded(cut: int, tmp_path: Path) -> None:
    """Cuts from the end of record 353 to the end of record 354: every byte of 354 but the
    last is not enough (its header, its size copy, its data are checked); only when it
    is whole is it loaded."""
    whole = 354 if cut >= 31_896 else 353
    outcome, _, events, rejects = ingest_damaged(tmp_path, DATA[: at(8) + cut])
    assert (outcome.status, outcome.read, outcome.loaded, outcome.rejected) == (
        "ingested", 358, whole, 358 - whole)
    assert sorted(events["source_line"]) == list(range(1, whole + 1))
    assert sorted(rejects["source_line"]) == list(range(whole + 1, 359))
    ref = intact_events()
    assert set(events["event_uid"]) == set(ref[ref["source_line"] <= whole]["event_uid"])


def test_a_bad_size_copy_stops_the_recovery(tmp_path: Path) -> None:
    """In the half file, the size copy at the end of record 350 (at 24,236 in chunk 8) is
    changed: the records from 350 on are not trusted, the 13 before it load."""
    data = overwrite(DATA[: len(DATA) // 2], at(8) + 24_240 - 4, struct.pack("<I", 1559))
    reason = ("EVTX chunk 8 at offset 0x81000: records 350–358 unreadable: the file ends "
              "30,720 bytes into the chunk, before the end of its records at 37,880 "
              "(records 337–349, complete before the cut, were read)")
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 349, 9)
    check_stored(outcome, manifest, events, rejects, list(range(1, 350)),
                 list(range(350, 359)), {reason}, [f"{reason} (9 rejects)"],
                 recovered=list(range(337, 350)), cut_chunk=8)


def test_cut_inside_a_chunk_header(tmp_path: Path) -> None:
    """100 bytes of chunk 8: its record range is still there (unverified) and counted."""
    data = DATA[: at(8) + 100]
    reason = ("EVTX chunk 8 at offset 0x81000: records 337–358 unreadable: the file ends "
              "100 bytes into the chunk, inside its 512-byte header")
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 336, 22)
    check_stored(outcome, manifest, events, rejects, records_of(*range(8)),
                 list(range(337, 359)), {reason}, [f"{reason} (22 rejects)"])


def test_cut_in_the_unused_space_of_a_chunk_loses_nothing(tmp_path: Path) -> None:
    """Chunk 8's records end at 37,880 bytes; a cut at 40,000 leaves them all verifiable."""
    data = DATA[: at(8) + 40_000]
    warning = ("EVTX chunk 8 at offset 0x81000: the file ends 40,000 bytes into the chunk, "
               "in its unused space; its records were read")
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 358, 0)
    check_stored(outcome, manifest, events, rejects, records_of(*range(9)), [], set(),
                 [warning])


def test_cut_inside_the_file_header_fails_the_file(tmp_path: Path) -> None:
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, DATA[:2000])
    assert (outcome.status, outcome.read, outcome.loaded, outcome.rejected) == ("failed", 0, 0, 0)
    assert outcome.message == ("EVTX file without any chunk, no record could be read: the "
                               "file header is cut (2,000 of 4,096 bytes)")
    # nothing loaded; the file's manifest row says why
    assert (len(manifest), len(events), len(rejects)) == (1, 0, 0)
    assert (manifest["status"].iloc[0], manifest["message"].iloc[0]) == (
        "failed", outcome.message)
    header_only = ingest_damaged(tmp_path / "h", DATA[:0x1000])[0]
    assert header_only.status == "failed"
    assert header_only.message == ("EVTX file without any chunk, no record could be read: "
                                   "the file is only a file header")


@pytest.mark.parametrize("damage", ["zeroed", "first-2000-bytes-lost", "checksum"])
def test_damaged_file_header_still_finds_the_chunks(damage: str, tmp_path: Path) -> None:
    """The file header is damaged (wiped, partly lost, or its checksum wrong): the chunks
    are found at their 64 KiB boundaries and all 358 records load."""
    if damage == "zeroed":
        data = overwrite(DATA, 0, bytes(0x1000))
        problem = "the file header has no ElfFile signature"
    elif damage == "first-2000-bytes-lost":
        data = overwrite(DATA, 0, bytes(2000))
        problem = "the file header has no ElfFile signature"
    else:
        data = flip(DATA, 42)  # the chunk count
        problem = "file header checksum mismatch (stored 0xf012d1db, computed 0xe42916ce)"
    assert loaders.detect(data[:65536], "damaged.evtx").name == "windows_events"
    warning = (f"EVTX file header damaged ({problem}); the chunks were found by their "
               "ElfChnk signature at 64 KiB boundaries")
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 358, 0)
    check_stored(outcome, manifest, events, rejects, records_of(*range(9)), [], set(),
                 [warning, SLACK])


@pytest.mark.parametrize(("path", "records", "cut", "end", "whole"),
                         [(SYSMON, 41, 30_000, 64_232, 16), (PSEXEC, 15, 10_000, 15_880, 7)])
def test_cut_inside_the_first_chunk_loads_its_complete_records(
        path: Path, records: int, cut: int, end: int, whole: int, tmp_path: Path) -> None:
    """The file ends inside its first chunk: the records whole before the cut load (with
    the cut-chunk warning) and the file is ingested; the others the chunk header names
    are rejects."""
    data = path.read_bytes()[: 0x1000 + cut]
    reason = (f"EVTX chunk 0 at offset 0x1000: records {whole + 1}–{records} unreadable: the "
              f"file ends {cut:,} bytes into the chunk, before the end of its records at "
              f"{end:,} (records 1–{whole}, complete before the cut, were read)")
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.status, outcome.read, outcome.loaded, outcome.rejected) == (
        "ingested", records, whole, records - whole)
    check_stored(outcome, manifest, events, rejects, list(range(1, whole + 1)),
                 list(range(whole + 1, records + 1)), {reason},
                 [f"{reason} ({records - whole} rejects)"],
                 recovered=list(range(1, whole + 1)), intact=path)


def test_cut_inside_the_first_record_fails_the_file(tmp_path: Path) -> None:
    """The file ends 600 bytes into chunk 0, inside its first record (3,672 bytes): no
    record is whole, nothing can be read, the file fails and says where and why; the 41
    records the chunk header names are counted as rejects, kept with the manifest row."""
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, DATA[: 0x1000 + 600])
    reason = ("EVTX chunk 0 at offset 0x1000: records 1–41 unreadable: the file ends 600 "
              "bytes into the chunk, before the end of its records at 64,232")
    assert (outcome.status, outcome.read, outcome.loaded, outcome.rejected) == (
        "failed", 41, 0, 41)
    assert outcome.message == ("EVTX file without an intact chunk, no record could be read: "
                               f"{reason}")
    assert (len(manifest), len(events), len(rejects)) == (1, 0, 41)
    assert list(manifest["status"]) == ["failed"]
    assert list(manifest["records_rejected"]) == [41]
    assert list(rejects["source_line"]) == list(range(1, 42))
    assert set(rejects["reason"]) == {reason}


def test_garbage_chunk_in_the_middle(tmp_path: Path) -> None:
    """Chunk 3 overwritten: its 43 records are the numbers missing between chunks 2 and 4;
    chunks 4–8 still load, with the same record positions, columns and uids."""
    data = overwrite(DATA, at(3), b"A" * K)
    reason = f"EVTX chunk 3 at offset 0x31000: records 121–163 unreadable: {NO_HEADER}"
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 315, 43)
    check_stored(outcome, manifest, events, rejects, records_of(0, 1, 2, 4, 5, 6, 7, 8),
                 list(range(121, 164)), {reason}, [f"{reason} (43 rejects)", SLACK])
    intact_uids = set(intact_events()["event_uid"])
    assert set(events["event_uid"]) < intact_uids


def test_two_garbage_chunks_and_a_long_loss_do_not_stop_the_file(tmp_path: Path) -> None:
    """Chunks 3–4 wiped: 86 records lost in one stretch, more than the reject limits
    allow for unknown input; the lost records are attested, so the file goes on."""
    data = overwrite(DATA, at(3), bytes(2 * K))
    reason = ("EVTX chunks 3–4 at offsets 0x31000–0x41000: records 121–206 unreadable: "
              f"{NO_HEADER}")
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data,
                                                        max_consecutive_rejects=10)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 272, 86)
    check_stored(outcome, manifest, events, rejects, records_of(0, 1, 2, 5, 6, 7, 8),
                 list(range(121, 207)), {reason}, [f"{reason} (86 rejects)", SLACK])


def test_garbage_first_chunk(tmp_path: Path) -> None:
    """Chunk 0 wiped: its 41 records (numbers 1–40 before chunk 1's first, 42) are
    rejects, more than the 20 initial rejects that would fail a file of unknown format."""
    data = overwrite(DATA, at(0), b"\xff" * K)
    reason = f"EVTX chunk 0 at offset 0x1000: records 1–41 unreadable: {NO_HEADER}"
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 317, 41)
    check_stored(outcome, manifest, events, rejects, records_of(*range(1, 9)),
                 list(range(1, 42)), {reason}, [f"{reason} (41 rejects)", SLACK])


@pytest.mark.parametrize("gz", [False, True])
def test_damaged_chunk_data_checksum(gz: bool, tmp_path: Path) -> None:
    """One byte of chunk 5's record data changed: the chunk fails its data CRC32, so its
    39 records are not trusted (rejects); the rest load. Also through gzip."""
    data = flip(DATA, at(5) + 2000)
    reason = ("EVTX chunk 5 at offset 0x51000: records 207–245 unreadable: chunk data "
              "checksum mismatch (stored 0x3a6a5b86, computed 0x8ab0b4ab)")
    outcome, manifest, events, rejects = ingest_damaged(
        tmp_path, data, "damaged.evtx.gz" if gz else "damaged.evtx")
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 319, 39)
    check_stored(outcome, manifest, events, rejects, records_of(0, 1, 2, 3, 4, 6, 7, 8),
                 list(range(207, 246)), {reason}, [f"{reason} (39 rejects)", SLACK])


def test_damaged_chunk_header_checksum(tmp_path: Path) -> None:
    """Chunk 5's header checksum is wrong: its header is not trusted, so its record range
    comes from the chunks around it (207–245, the same 39 records)."""
    data = flip(DATA, at(5) + 124)
    reason = ("EVTX chunk 5 at offset 0x51000: records 207–245 unreadable: chunk header "
              "checksum mismatch (stored 0x56e7361d, computed 0x56e736e2)")
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 319, 39)
    check_stored(outcome, manifest, events, rejects, records_of(0, 1, 2, 3, 4, 6, 7, 8),
                 list(range(207, 246)), {reason}, [f"{reason} (39 rejects)", SLACK])


def test_wrapped_log_with_a_wiped_chunk_counts_one_unknown_loss(tmp_path: Path) -> None:
    """Chunks in the order of a log that wrapped around (5–8, then 0–4) with a wiped
    chunk between 8 and 0: the numbers do not rise across it, so how many records it
    held is unknown — one reject for it — and all 358 records of the others load."""
    order = [5, 6, 7, 8, None, 0, 1, 2, 3, 4]
    body = b"".join(DATA[at(c):at(c) + K] if c is not None else bytes(K) for c in order)
    data = DATA[:0x1000] + body
    reason = ("EVTX chunk 4 at offset 0x41000: an unknown number of records unreadable: "
              f"{NO_HEADER}")
    result = loaders.load(_write(tmp_path, data))
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (359, 358, 1)
    assert result.rejects["reason"].tolist() == [reason]
    assert result.rejects["source_line"].tolist() == [153]  # after 39 + 40 + 51 + 22
    assert result.warnings == [f"{reason} (1 reject)"]
    assert sorted(result.events["win_record_id"]) == list(range(FIRST_ID, FIRST_ID + 358))


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "case.evtx"
    path.write_bytes(data)
    return path


def test_records_the_parser_drops_from_an_intact_chunk_are_counted(tmp_path: Path) -> None:
    """A chunk that passes its checksums but whose record framing is broken (the second
    record's size field, with both CRCs recomputed): record 1 loads, record 2 is the
    parser's error, and the 39 records the parser then skips (the chunk header names 41)
    are rejects with the chunk offset; chunks 1–8 load."""
    chunk = bytearray(DATA[at(0):at(0) + K])
    size = struct.unpack_from("<I", chunk, 512 + 4)[0]
    struct.pack_into("<I", chunk, 512 + size + 4, 0xFFFF)  # record 2: absurd size
    free = struct.unpack_from("<I", chunk, 48)[0]
    struct.pack_into("<I", chunk, 52, zlib.crc32(chunk[512:free]))
    struct.pack_into("<I", chunk, 124, zlib.crc32(chunk[128:512], zlib.crc32(chunk[:120])))
    data = overwrite(DATA, at(0), bytes(chunk))
    outcome, manifest, events, rejects = ingest_damaged(tmp_path, data)
    error = ("Failed to parse record number 1743: Failed to create record model, reason: "
             "record BinXML slice is out of bounds")
    damaged = f"damaged EVTX data in EVTX chunk 0 at offset 0x1000: {error}"
    missing = ("EVTX chunk 0 at offset 0x1000: 39 of records 1–41 not returned by the evtx "
               f"parser (after: {error})")
    assert (outcome.read, outcome.loaded, outcome.rejected) == (358, 318, 40)
    check_stored(outcome, manifest, events, rejects, [1, *range(42, 359)],
                 list(range(2, 42)), {damaged, missing}, [f"{missing} (39 rejects)", SLACK])
    assert rejects[rejects["source_line"] == 2]["reason"].tolist() == [damaged]
