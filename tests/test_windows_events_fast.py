"""windows_events: the vectorized EVTX path gives exactly what the per-record path gives.

Each check loads the same records twice, once with every batch forced through
``windows_events_fast.map_batch`` and once with every record mapped one by one, and
compares all columns (``ingest_id`` aside) and the counts, warnings and rejects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
import loaders.windows_events.loader as we
from loaders.windows_events.fast import map_batch
from loaders.windows_events.from_evtx import EvtxRecord, iter_evtx

DIR = Path(__file__).parent / "fixtures" / "windows-sysmon"
SYSMON = DIR / "evtx-rs_sysmon.evtx"


def _options(min_rows: int, options: loaders.LoadOptions | None = None) -> loaders.LoadOptions:
    """``options`` with batches of ``min_rows`` or more mapped vectorized (1: every batch;
    a huge number: none, every record goes through the per-record path)."""
    options = options or loaders.LoadOptions()
    return replace(options, tuning=replace(options.tuning, evtx_fast_min_rows=min_rows))


FAST, SLOW = 1, 10**9


def _same(path: Path) -> loaders.LoadResult:
    fast = loaders.load(path, options=_options(FAST))
    slow = loaders.load(path, options=_options(SLOW))
    assert fast.counts == slow.counts
    assert (fast.status, fast.warnings) == (slow.status, slow.warnings)
    cols = [c for c in slow.events.columns if c != "ingest_id"]
    pd.testing.assert_frame_equal(
        fast.events[cols].sort_values("source_line").reset_index(drop=True),
        slow.events[cols].sort_values("source_line").reset_index(drop=True))
    rj = ["source_line", "reason", "excerpt"]
    assert fast.rejects[rj].to_dict("records") == slow.rejects[rj].to_dict("records")
    return fast


@pytest.mark.parametrize("name", ["evtx-rs_sysmon.evtx",
                                  "ID11_13_17_18-PSexec_as_system_execution.evtx"])
def test_fast_path_equals_per_record_path_on_real_files(name: str) -> None:
    result = _same(DIR / name)
    assert len(result.events) > 0


def test_fast_path_maps_the_whole_sysmon_fixture() -> None:
    recs = [r for r in iter_evtx(str(SYSMON), [], parse=False) if r.error is None]
    mapped = map_batch([r.text for r in recs], [r.index for r in recs])
    assert mapped is not None
    table, ok = mapped
    assert table.num_rows == len(ok) == 358 and all(ok)


# Edits of real records that the fast path must either map exactly or leave to the
# per-record path: placeholders, odd numbers and addresses, escapes, case variants,
# EventID with qualifiers, UserData, long and non-ASCII text, odd times.
def _edits(text: str, i: int) -> str:
    edits = [
        lambda t: t.replace('"User":"NT AUTHORITY\\\\SYSTEM"', '"User":" - "'),
        lambda t: t.replace('"User":"NT AUTHORITY\\\\SYSTEM"', '"User":"N/A"'),
        lambda t: re.sub(r'"Image":"[^"]*"', '"Image":"NuLL"', t, count=1),
        lambda t: re.sub(r'"CommandLine":"[^"]*"', '"CommandLine":"n/A "', t, count=1),
        lambda t: re.sub(r'"ProcessId":\d+', '"ProcessId":"0x1a2c"', t, count=1),
        lambda t: re.sub(r'"ProcessId":\d+', '"ProcessId":" 42 "', t, count=1),
        lambda t: t.replace('"Image":"', '"Image":"C:\\\\caf\\u00e9\\\\'),
        lambda t: t.replace('"Image":"', '"Image":"C:\\\\café\\"q\\"\\\\'),
        lambda t: t.replace('"CommandLine":"', '"CommandLine":"' + "x" * 400),
        lambda t: t.replace('"CommandLine":"', '"CommandLine":"é' + "ü" * 320),
        lambda t: t.replace('"ProcessGuid":', '"processguid":"{A}","ProcessGuid":'),
        lambda t: t.replace('"EventID":', '"EventID":{"#attributes":{"Qualifiers":16384},'
                                          '"#text":', 1).replace(',"Version"', '},"Version"', 1),
        lambda t: t.replace('"EventData":{', '"EventData":{"Extra":1.5,', 1),
        lambda t: t.replace('"EventData":{', '"EventData":{"@Name":"x",', 1),
        lambda t: t.replace('"EventData":{', '"EventData":{"Flag":true,"Neg":-7,"Z":0,', 1),
        lambda t: re.sub(r'"SystemTime":"[^"]*"', '"SystemTime":"2017-12-26T13:10:29.1234567Z"', t),
        lambda t: re.sub(r'"SystemTime":"[^"]*"', '"SystemTime":"1601-01-01T00:00:00.000000Z"', t),
        lambda t: re.sub(r'"SystemTime":"[^"]*"', '"SystemTime":"2017-12-26T13:10:29Z"', t),
        lambda t: re.sub(r'"UtcTime":"[^"]*"', '"UtcTime":"-"', t),
        lambda t: re.sub(r'"UtcTime":"[^"]*"', '"UtcTime":"not a time"', t),
        lambda t: t.replace('"Computer":"DESKTOP-2KGM189"', '"Computer":"-"'),
        lambda t: t.replace('"Channel":"Microsoft-Windows-Sysmon/Operational"',
                            '"Channel":"Security"'),
        lambda t: re.sub(r'"EventID":\d+', '"EventID":99', t, count=1),
        lambda t: re.sub(r',"EventData":\{.*\}\}\}$', ',"EventData":null}}', t),
        lambda t: re.sub(r',"EventData":\{.*\}\}\}$', '}}', t),
        lambda t: re.sub(r',"EventData":\{.*\}\}\}$', ',"UserData":{"X":{"A":"b"}}}}', t),
        lambda t: t.replace('"RuleName":"', '"RuleName":"\\t'),
        lambda t: t.replace('"Image":"', '"Image":":'),
        lambda t: re.sub(r'"Image":"([^"]*)"', lambda m: m.group(0)[:-1] + ',"', t),
        lambda t: t.replace('"EventData":{', '"EventData":{"a:":",",', 1),
        lambda t: t.replace('"EventData":{', '"EventData":{"":"","b":"}","c":",x",', 1),
        lambda t: "{not json" + t,
        # escaped quotes and backslashes next to the separators the rewrite looks for
        lambda t: t.replace('"Image":"', '"Image":"a\\":b', 1),
        lambda t: t.replace('"CommandLine":"', '"CommandLine":"x,\\"y\\", ', 1),
        lambda t: t.replace('"EventData":{', '"EventData":{"k\\\\":"v",', 1),
        lambda t: t.replace('"EventData":{', '"EventData":{"a\\"b_attributes":"x",', 1),
        lambda t: t.replace('"Image":"', '"Image":"C:\\\\dir\\\\","Z":"', 1),
        lambda t: t.replace('"Image":"', '"Image":"\\\\\\"q', 1),
        lambda t: t.replace('"EventData":{', '"EventData":{"UserData":"u",', 1),
        lambda t: re.sub(r'\}\}\}$', '},"X":1}}', t),
        lambda t: t.replace('"Provider":{', '"Provider":{"Extra":1,', 1),
        lambda t: re.sub(r'"SystemTime":"[^"]*"', '"SystemTime":"2017-12-26T13:10:29.000000Z"', t),
        lambda t: re.sub(r'"SystemTime":"[^"]*"', '"SystemTime":"2017-12-26T13:10:29.100000Z"', t),
        # System values and layouts the System pattern must take exactly or leave
        lambda t: t.replace('"Computer":"', '"Computer":"A\\\\', 1),
        lambda t: t.replace('"Computer":"', '"Computer":"caf\\u00e9 ', 1),
        lambda t: t.replace('"Computer":"', '"Computer":"café ', 1),
        lambda t: re.sub(r',"Security":\{[^{}]*\{[^{}]*\}\}', '', t, count=1),
        lambda t: re.sub(r'"Security":\{[^{}]*\{[^{}]*\}\}', '"Security":{}', t, count=1),
        lambda t: t.replace('"Correlation":null',
                            '"Correlation":{"#attributes":{"ActivityID":"{A1-B2}"}}', 1),
        lambda t: t.replace('"Version":5', '"Version":null', 1),
        lambda t: t.replace('"Version":5', '"Version":05', 1),
        lambda t: t.replace('"Keywords":"', '"Keywords":"\\t', 1),
        lambda t: t.replace('"EventRecordID":', '"EventRecordID":"', 1).replace(
            ',"Correlation"', '","Correlation"', 1),
        lambda t: t,
    ]
    return edits[i % len(edits)](text)


# Variants of network and DNS records (few in the fixtures), each added as a record.
_ENDPOINTS = [
    lambda t: re.sub(r'"DestinationIp":"[^"]*"', '"DestinationIp":"bogus"', t),
    lambda t: re.sub(r'"SourceIp":"[^"]*"', '"SourceIp":"::ffff:10.0.0.5"', t),
    lambda t: re.sub(r'"SourceIp":"[^"]*"', '"SourceIp":"fe80::1%12"', t),
    lambda t: re.sub(r'"DestinationIp":"[^"]*"', '"DestinationIp":"2001:db8::1"', t),
    lambda t: re.sub(r'"DestinationIp":"[^"]*"', '"DestinationIp":"010.1.1.1"', t),
    lambda t: re.sub(r'"DestinationPort":\d+', '"DestinationPort":null', t),
    lambda t: re.sub(r'"DestinationPort":\d+', '"DestinationPort":"-"', t),
    lambda t: t.replace('"QueryStatus":"0"', '"QueryStatus":"9003"'),
    lambda t: t.replace('"QueryStatus":"0"', '"QueryStatus":" "'),
]


def _edited_records() -> list[EvtxRecord]:
    out: list[EvtxRecord] = []
    for path in (SYSMON, DIR / "ID11_13_17_18-PSexec_as_system_execution.evtx"):
        for i, rec in enumerate(iter_evtx(str(path), [], parse=False)):
            if rec.error is not None:
                continue
            texts = [_edits(rec.text, i)]
            if '"DestinationIp"' in rec.text or '"QueryStatus"' in rec.text:
                for k, edit in enumerate(_ENDPOINTS):  # a record id of its own: no duplicate
                    texts.append(re.sub(r'"EventRecordID":\d+',
                                        f'"EventRecordID":{900_000 + len(out) + k}',
                                        edit(rec.text)))
            out += [EvtxRecord(len(out) + k + 1, t, None, rec.header_time)
                    for k, t in enumerate(texts)]
    return out


def test_fast_path_equals_per_record_path_on_edited_records(
        monkeypatch: pytest.MonkeyPatch) -> None:
    records = _edited_records()

    def edited(target: Any, warnings: list[str], parse: bool = True) -> Iterator[EvtxRecord]:
        yield from records

    monkeypatch.setattr(we, "iter_evtx", edited)
    result = _same(SYSMON)
    assert result.counts.rejected > 0 and len(result.events) > 300
    # the edits really were read (not all sent back to the per-record path)
    mapped = map_batch([r.text for r in records], [r.index for r in records])
    assert mapped is not None
    assert 100 < sum(mapped[1]) < len(records)
    images = result.events["process_image"].dropna()
    assert images.str.startswith("C:\\café\"q\"\\").any()
    assert set(result.events["src_ip"].dropna()) >= {"10.0.0.5", "fe80::1"}


def test_system_pattern_captures_what_json_loads_reads() -> None:
    from loaders.windows_events.fast_text import SYSTEM_FIELDS, _split

    records = _edited_records()
    rows, _eds, _has_ed, hazard = _split([r.text for r in records])
    assert 100 < hazard.count(False) < len(records)
    for rec, row, bad in zip(records, rows, hazard, strict=True):
        if bad:
            continue
        system = json.loads(rec.text)["Event"]["System"]
        want = (system["Provider"]["#attributes"]["Name"], system["EventID"],
                system["Keywords"], system["TimeCreated"]["#attributes"]["SystemTime"],
                system["EventRecordID"], system["Channel"], system["Computer"],
                ((system.get("Security") or {}).get("#attributes") or {}).get("UserID"))
        got = dict(zip(SYSTEM_FIELDS, row, strict=True))
        got["event_id"], got["record_id"] = int(got["event_id"]), int(got["record_id"])
        assert tuple(got.values()) == want


def test_fast_path_equals_per_record_path_on_a_benchmark_clone(tmp_path: Path) -> None:
    """The cloned file of the EVTX benchmark (renumbered records) maps alike both ways."""
    from benchmarks.gen.evtx_clone import clone

    path = tmp_path / "clone.evtx"
    clone(SYSMON, 2, path)
    result = _same(path)
    assert len(result.events) == 716
    assert result.events["win_record_id"].tolist() == list(range(1, 717))


@pytest.mark.parametrize("pattern", ["G" * 150 + "E" * 30 + "G" * 300,
                                     "G" * 200 + "E" * 6 + "B" * 6 + "G" * 200,
                                     "G" * 200 + "E" * 12, "E" * 25 + "G" * 300])
def test_fast_path_equals_per_record_path_when_the_run_stops(
        pattern: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Damaged records (E) and unreadable ones (B) among good ones (G), with reject limits
    that stop the run, in batches of 50: the same items, status and warnings both ways."""
    good = [r for r in iter_evtx(str(SYSMON), [], parse=False) if r.error is None]

    def records(target: Any, warnings: list[str], parse: bool = True) -> Iterator[EvtxRecord]:
        for i, kind in enumerate(pattern, 1):
            if kind == "E":
                yield EvtxRecord(i, error=f"damaged EVTX data: {i}")
            else:
                text = good[i % len(good)].text if kind == "G" else "{bad json"
                yield EvtxRecord(i, text, None, None)
        warnings.append("chunks without a header")

    monkeypatch.setattr(we, "iter_evtx", records)
    options = loaders.LoadOptions(batch_size=50, max_consecutive_rejects=10)
    fast = loaders.load(SYSMON, options=_options(FAST, options))
    slow = loaders.load(SYSMON, options=_options(SLOW, options))
    assert fast.status == slow.status == "stopped"
    assert (fast.counts, fast.warnings) == (slow.counts, slow.warnings)
    cols = [c for c in slow.events.columns if c != "ingest_id"]
    pd.testing.assert_frame_equal(fast.events[cols].reset_index(drop=True),
                                  slow.events[cols].reset_index(drop=True))
    rj = ["source_line", "reason"]
    assert fast.rejects[rj].to_dict("records") == slow.rejects[rj].to_dict("records")
