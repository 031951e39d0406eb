"""The EVTX benchmark generator: a clone is valid, complete and renumbered exactly."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import evtx
import pytest

from benchmarks.gen.evtx_clone import CHUNK, FILE_HEADER, clone, source_chunks, verify

SOURCE = Path(__file__).parent / "fixtures" / "windows-sysmon" / "evtx-rs_sysmon.evtx"
COPIES = 3
PER_COPY = 358  # records in the fixture's 9 chunks


def _records(path: Path) -> list[dict[str, Any]]:
    return [r for r in evtx.PyEvtxParser(str(path)).records_json() if r is not None]


@pytest.fixture(scope="module")
def cloned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("clone") / "clone.evtx"
    stats = clone(SOURCE, COPIES, out)
    assert (stats.records, stats.chunks, stats.kept) == (COPIES * PER_COPY, COPIES * 9, 0)
    verify(SOURCE, out, stats)
    return out, stats.records


def test_ids_are_new_unique_and_rendered(cloned: tuple[Path, int]) -> None:
    path, n = cloned
    recs = _records(path)
    assert [r["event_record_id"] for r in recs] == list(range(1, n + 1))
    rendered = [json.loads(r["data"])["Event"]["System"]["EventRecordID"] for r in recs]
    assert rendered == list(range(1, n + 1))


def test_clone_equals_original_but_record_id(cloned: tuple[Path, int]) -> None:
    path, _ = cloned
    recs = _records(path)
    first, copy = json.loads(recs[5]["data"]), json.loads(recs[PER_COPY * 2 + 5]["data"])
    assert copy["Event"]["System"].pop("EventRecordID") == PER_COPY * 2 + 6
    first["Event"]["System"].pop("EventRecordID")
    assert copy == first


def test_headers_and_checksums(cloned: tuple[Path, int]) -> None:
    path, n = cloned
    data = path.read_bytes()
    assert len(data) == FILE_HEADER + COPIES * 9 * CHUNK
    head = data[:FILE_HEADER]
    assert struct.unpack_from("<QQQ", head, 8) == (0, COPIES * 9 - 1, n + 1)
    assert struct.unpack_from("<H", head, 42)[0] == COPIES * 9
    assert struct.unpack_from("<I", head, 124)[0] == zlib.crc32(head[:120])
    last = 0
    for i in range(COPIES * 9):
        chunk = data[FILE_HEADER + i * CHUNK:FILE_HEADER + (i + 1) * CHUNK]
        first_no, last_no, first_id, last_id = struct.unpack_from("<QQQQ", chunk, 8)
        assert (first_no, first_id) == (last + 1, last + 1) and last_no == last_id
        last = last_id
        free = struct.unpack_from("<I", chunk, 48)[0]
        assert struct.unpack_from("<I", chunk, 52)[0] == zlib.crc32(chunk[512:free])
        crc = zlib.crc32(chunk[128:512], zlib.crc32(chunk[:120]))
        assert struct.unpack_from("<I", chunk, 124)[0] == crc
    assert last == n


def test_source_checksums_match_our_formula() -> None:
    """The original chunks' CRCs follow the formula the clone writes (so it is the format's)."""
    for chunk in source_chunks(SOURCE):
        free = struct.unpack_from("<I", chunk, 48)[0]
        assert struct.unpack_from("<I", chunk, 52)[0] == zlib.crc32(chunk[512:free])
        crc = zlib.crc32(chunk[128:512], zlib.crc32(chunk[:120]))
        assert struct.unpack_from("<I", chunk, 124)[0] == crc
