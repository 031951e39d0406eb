"""windows_events: EVTX against the ``evtx`` package alone, NDJSON against DuckDB.

- EVTX (the main rows): one large file of about ``scale`` records, the 9 chunks of the real
  fixture ``evtx-rs_sysmon.evtx`` cloned by :mod:`benchmarks.gen.evtx_clone` with every record
  renumbered, so each is a distinct event as in a real Sysmon log (one big file per channel).
  Baseline: a fresh process iterating ``evtx.PyEvtxParser(path).records_json()`` over it (the
  issue's bar: ingest at least 50% of that rate).
- EVTX small files (extra rows, per-file cost): the real fixtures
  ``tests/fixtures/windows-sysmon/*.evtx`` copied K times (about 30,000 records in all). Each
  copy differs in one byte of the file header's unused padding, so ``auditlens ingest`` does
  not skip it as already-seen content while the records parse the same (all records after the
  first copy are duplicates).
- NDJSON: the 87 MB OTRF Mordor export (flat fields) unzipped once into ``benchmarks/work``;
  baseline DuckDB ``read_json`` → Parquet.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.gen.evtx_clone import clone, verify
from benchmarks.harness import PY, ROOT, WORK, Measurement, ingest_cmd, parse_cmd, run_measured

SUITE = "windows_events"
SMALL_SUITE = "windows_events EVTX small files"
SMALL_RECORDS = 30_000
NDJSON_SUITE = "windows_events NDJSON"
FIXTURES = ROOT / "tests" / "fixtures" / "windows-sysmon"
CLONE_SOURCE = FIXTURES / "evtx-rs_sysmon.evtx"
OTRF_ZIP = (ROOT.parent / "shared" / "fixtures" / "large"
            / "otrf_covenant_dcom_iertutil_dll_hijack.zip")
_PAD_OFFSET = 2048  # inside the 4096-byte file header, after the 128 bytes the parser reads

# Counts records the way the loader does: a chunk without a header (slack) raises and the
# iteration goes on with the next chunk.
EVTX_ALONE = """
import sys, pathlib, evtx
n = 0
for path in sorted(pathlib.Path(sys.argv[1]).glob('*.evtx')):
    records = evtx.PyEvtxParser(str(path)).records_json()
    while True:
        try:
            rec = next(records)
        except StopIteration:
            break
        except RuntimeError:
            continue
        n += len(rec['data']) > 0
assert n > 0
"""
# sample_size=-1: the event fields differ by event id, so DuckDB must see every record to
# build the schema (with its default sample it stops at the first unseen key).
DUCKDB_NDJSON = (
    "import duckdb, sys; duckdb.sql(f\"COPY (SELECT * FROM read_json('{sys.argv[1]}', "
    "format='newline_delimited', sample_size=-1)) TO '{sys.argv[2]}' "
    "(FORMAT parquet, COMPRESSION zstd)\")"
)
PARSE_DIR = """
import sys, pathlib, loaders
n = 0
for path in sorted(pathlib.Path(sys.argv[1]).glob('*.evtx')):
    n += sum(t.num_rows for t in loaders.iter_batches(path, format='windows_events'))
assert n > 0
"""


def _records(path: Path) -> int:
    import evtx

    n = 0
    records = evtx.PyEvtxParser(str(path)).records_json()
    while True:
        try:
            next(records)
        except StopIteration:
            return n
        except RuntimeError:
            continue
        n += 1


def evtx_copies(scale: int) -> tuple[Path, int, int]:
    """Write K distinct copies of each EVTX fixture; (directory, records, bytes)."""
    fixtures = sorted(FIXTURES.glob("*.evtx"))
    per_copy = sum(_records(p) for p in fixtures)
    k = max(1, scale // per_copy)
    out = WORK / f"windows_events-evtx-{k}"

    def fill(tmp: Path) -> None:
        for i in range(k):
            for p in fixtures:
                data = bytearray(p.read_bytes())
                tag = f"auditlens-bench-copy-{i:06d}".encode()
                data[_PAD_OFFSET:_PAD_OFFSET + len(tag)] = tag
                (tmp / f"{i:05d}-{p.name}").write_bytes(bytes(data))

    _build_once(out, fill)
    size = sum(p.stat().st_size for p in out.glob("*.evtx"))
    return out, per_copy * k, size


def _build_once(out: Path, fill: Callable[[Path], None]) -> None:
    """Make the input directory ``out`` once: filled under a temporary name, then renamed,
    so an interrupted run never leaves a half-written input behind."""
    if out.exists():
        return
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fill(tmp)
    tmp.rename(out)


def evtx_large(scale: int) -> tuple[Path, int, int]:
    """One EVTX file of about ``scale`` distinct records, made and verified once;
    (directory holding only it, records, bytes)."""
    per_copy = _records(CLONE_SOURCE)
    copies = max(1, scale // per_copy)
    out = WORK / f"windows_events-evtx-large-{copies}"

    def fill(tmp: Path) -> None:
        target = tmp / "sysmon-clone.evtx"
        verify(CLONE_SOURCE, target, clone(CLONE_SOURCE, copies, target))

    _build_once(out, fill)
    path = out / "sysmon-clone.evtx"
    return out, per_copy * copies, path.stat().st_size


def otrf_ndjson() -> Path:
    """The OTRF export, unzipped once."""
    out = WORK / "otrf_covenant_dcom_iertutil_dll_hijack.json"
    if not out.exists():
        with zipfile.ZipFile(OTRF_ZIP) as zf:
            member = zf.namelist()[0]
            with zf.open(member) as src, open(out.with_suffix(".tmp"), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        out.with_suffix(".tmp").rename(out)
    return out


def _ingest(src: Path, name: str, events: int, size: int, suite: str = SUITE) -> Measurement:
    store = WORK / "store-windows_events"
    wall, rss = run_measured(ingest_cmd(src, store), fresh=store)
    shutil.rmtree(store, ignore_errors=True)
    return Measurement(suite, name, "auditlens", events, size, wall, rss, "records")


def _evtx_rows(suite: str, evtx_dir: Path, records: int, size: int) -> list[Measurement]:
    """Baseline, parse and ingest of the EVTX files of one directory."""
    wall, rss = run_measured([PY, "-c", EVTX_ALONE, str(evtx_dir)])
    out = [Measurement(suite, "evtx package alone: records_json()", "baseline", records, size,
                       wall, rss, "records")]
    wall, rss = run_measured([PY, "-c", PARSE_DIR, str(evtx_dir)])
    out.append(Measurement(suite, "EVTX parse (loaders.iter_batches)", "auditlens", records,
                           size, wall, rss, "records"))
    out.append(_ingest(evtx_dir, "EVTX ingest (auditlens ingest)", records, size, suite))
    return out


def measure(scale: int) -> list[Measurement]:
    out = _evtx_rows(SUITE, *evtx_large(scale))
    out += _evtx_rows(SMALL_SUITE, *evtx_copies(SMALL_RECORDS))
    if OTRF_ZIP.exists():
        ndjson = otrf_ndjson()
        lines = sum(1 for _ in ndjson.open("rb"))
        nsize = ndjson.stat().st_size
        # its own table in the report (render groups by suite), with DuckDB as its baseline
        parquet = WORK / "baseline-windows_events.parquet"
        wall, rss = run_measured([PY, "-c", DUCKDB_NDJSON, str(ndjson), str(parquet)])
        parquet.unlink(missing_ok=True)
        out.append(Measurement(NDJSON_SUITE, "duckdb read_json → Parquet", "baseline", lines,
                               nsize, wall, rss, "records"))
        wall, rss = run_measured(parse_cmd(ndjson, "windows_events"))
        out.append(Measurement(NDJSON_SUITE, "NDJSON parse (loaders.iter_batches)",
                               "auditlens", lines, nsize, wall, rss, "records"))
        out.append(_ingest(ndjson, "NDJSON ingest (auditlens ingest)", lines, nsize,
                           NDJSON_SUITE))
    return out
