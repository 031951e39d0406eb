"""Time zones (issue 19): times written without a zone are read in a zone the user gives
(``--tz``, ``--tz-for``), else taken as UTC with a ``parse_warning`` on every such record;
the manifest and the summary say how many and which zone, per file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main
from loaders.base import LoadOptions
from loaders.ingest.pipeline import ingest
from loaders.ingest.runner import NO_ZONE_WARNING
from loaders.parsing.timeutil import Clock, parse_iso, reading_with, zone_from_text
from loaders.store.read import read_events, read_manifest
from loaders.store.store import Store

LINES = [
    "Mar  1 10:00:01 web1 sshd[100]: Failed password for root from 203.0.113.5 port 4000 ssh2",
    "Jul  1 10:00:02 web1 sshd[101]: Accepted password for alice from 203.0.113.6 port 4001 "
    "ssh2",
    "2024-07-01T10:00:03+02:00 web1 sshd[102]: Failed password for bob from 203.0.113.7 port "
    "4002 ssh2",
]


def _auth(path: Path) -> Path:
    path.write_text("\n".join(LINES) + "\n")
    return path


def _times(store: Store) -> list[tuple[datetime, object]]:
    ev = read_events(store, columns=["timestamp", "parse_warning", "source_line"])
    ev = ev.sort_values("source_line")
    return [(t.to_pydatetime(), None if pd.isna(w) else w)
            for t, w in zip(ev["timestamp"], ev["parse_warning"], strict=True)]


def test_zones_as_users_write_them() -> None:
    assert zone_from_text("UTC") is UTC and zone_from_text("z") is UTC
    assert zone_from_text("+03:00") == timezone(timedelta(hours=3))
    assert zone_from_text("-0530") == timezone(-timedelta(hours=5, minutes=30))
    assert zone_from_text("UTC+3") == timezone(timedelta(hours=3))
    assert str(zone_from_text("Europe/Moscow")) == "Europe/Moscow"
    for bad in ("Mars/Olympus", "+25:00", "../../etc/passwd", ""):
        with pytest.raises(ValueError, match="time zone"):
            zone_from_text(bad)


def test_a_clock_reads_naive_times_in_its_zone_across_daylight_saving() -> None:
    clock = Clock(zone_from_text("America/New_York"), "--tz")
    with reading_with(clock):
        winter = parse_iso("2024-01-15 12:00:00")
        summer = parse_iso("2024-07-15 12:00:00")
        zoned = parse_iso("2024-07-15T12:00:00Z")  # a zone of its own: not the clock's
        utc_by_format = parse_iso("2024-07-15 12:00:00", naive_is_utc=True)
    assert winter == datetime(2024, 1, 15, 17, tzinfo=UTC)  # EST, -5
    assert summer == datetime(2024, 7, 15, 16, tzinfo=UTC)  # EDT, -4
    assert zoned == utc_by_format == datetime(2024, 7, 15, 12, tzinfo=UTC)
    assert clock.naive == 2 and clock.describe() == "America/New_York (--tz)"
    assert parse_iso("2024-01-15 12:00:00") == datetime(2024, 1, 15, 12, tzinfo=UTC)  # no clock


def test_without_tz_naive_times_are_utc_with_a_warning_and_the_manifest_says_so(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    log = _auth(tmp_path / "auth.log")
    [outcome] = ingest(store, [log], options=LoadOptions(year=2024)).files
    assert _times(store) == [
        (datetime(2024, 3, 1, 10, 0, 1, tzinfo=UTC), NO_ZONE_WARNING),
        (datetime(2024, 7, 1, 10, 0, 2, tzinfo=UTC), NO_ZONE_WARNING),
        (datetime(2024, 7, 1, 8, 0, 3, tzinfo=UTC), None)]  # the ISO header has its zone
    row = read_manifest(store).iloc[0]
    assumed = "UTC (assumed: the times carry no zone and none was given with --tz)"
    assert (row["naive_times"], row["time_zone"]) == (2, assumed)
    assert (outcome.naive_times, outcome.time_zone) == (2, assumed)


def test_tz_reads_them_in_the_zone_given(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    log = _auth(tmp_path / "auth.log")
    ingest(store, [log], options=LoadOptions(year=2024, tz="Europe/Berlin"))
    assert _times(store) == [
        (datetime(2024, 3, 1, 9, 0, 1, tzinfo=UTC), None),  # CET, +1
        (datetime(2024, 7, 1, 8, 0, 2, tzinfo=UTC), None),  # CEST, +2
        (datetime(2024, 7, 1, 8, 0, 3, tzinfo=UTC), None)]
    row = read_manifest(store).iloc[0]
    assert (row["naive_times"], row["time_zone"]) == (2, "Europe/Berlin (--tz)")


def test_tz_for_gives_some_files_their_own_zone(tmp_path: Path) -> None:
    (tmp_path / "moscow" / "var/log").mkdir(parents=True)
    (tmp_path / "utc").mkdir()
    msk = _auth(tmp_path / "moscow/var/log/auth.log")
    utc = _auth(tmp_path / "utc/secure")
    store = Store(tmp_path / "store")
    utc.write_text(LINES[0] + "\n")  # another content: not skipped as a repeat
    ingest(store, [msk, utc], options=LoadOptions(
        year=2024, tz="+00:00", tz_for=(("moscow/var/log/*", "+03:00"), ("*.evtx", "UTC"))))
    m = read_manifest(store).set_index("path")
    assert m.loc[str(msk), "time_zone"] == "+03:00 (--tz-for moscow/var/log/*)"
    assert m.loc[str(utc), "time_zone"] == "UTC (--tz)"
    ev = read_events(store, columns=["timestamp", "source_file", "source_line"])
    first = ev[ev["source_line"] == 1].set_index("source_file")["timestamp"]
    assert first[str(msk)] == pd.Timestamp("2024-03-01 07:00:01", tz="UTC")
    assert first[str(utc)] == pd.Timestamp("2024-03-01 10:00:01", tz="UTC")


def test_the_cli_takes_tz_refuses_unknown_zones_and_prints_the_zones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = _auth(tmp_path / "auth.log")
    store = str(tmp_path / "store")
    assert main(["ingest", str(log), "--store", store, "--tz", "Mars/Olympus"]) == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
    assert main(["ingest", str(log), "--store", store, "--tz-for", "no-equals-sign"]) == 2
    assert "--tz-for wants PATTERN=ZONE" in capsys.readouterr().err
    assert main(["ingest", str(log), "--store", store, "--year", "2024"]) == 0
    out = capsys.readouterr().out
    assert ("TIMES WITHOUT A ZONE: 1 files hold times with no zone; they were taken as UTC, "
            "and each such record says so in parse_warning:") in out
    assert f"  {log}: 2 records" in out
    other = str(tmp_path / "store2")
    assert main(["ingest", str(log), "--store", other, "--year", "2024", "--tz", "+03:00"]) == 0
    out = capsys.readouterr().out
    assert "TIMES WITHOUT A ZONE" not in out
    assert f"  {log}: 2 records, +03:00 (--tz)" in out


MORDOR = Path(__file__).parent / "fixtures/windows-sysmon/otrf_mordor_schtask_create.ndjson"


def _collector_export(path: Path, offset_hours: int, security_first: int = 0) -> tuple[
        list[dict[str, object]], list[dict[str, object]]]:
    """A Sysmon/Security JSON export as a collector in local time writes it: the real OTRF
    records with ``TimeCreated`` in local time and no zone, no ``@timestamp``; Sysmon records
    keep ``UtcTime``. ``security_first`` Security records come before the first Sysmon one."""
    import json

    records, seen = [], set()
    for line in MORDOR.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        key = (record.get("Hostname"), record.get("Channel"), record.get("RecordNumber"),
               record.get("EventRecordID"), record.get("TimeCreated"))
        if key not in seen:  # the export repeats some records: keep one of each
            seen.add(key)
            records.append(record)
    sysmon = [r for r in records if "UtcTime" in r][:20]
    security = [r for r in records if r.get("Channel") == "Security"][:10]
    out = []
    for r in sysmon:
        utc = datetime.fromisoformat(str(r["UtcTime"]))
        r = {k: v for k, v in r.items() if k != "@timestamp"}
        r["TimeCreated"] = (utc + timedelta(hours=offset_hours, milliseconds=3)).isoformat(
            timespec="milliseconds")
        out.append(r)
    sec = [{**{k: v for k, v in r.items() if k != "@timestamp"},
            "TimeCreated": str(r["TimeCreated"]).rstrip("Z")} for r in security]
    ordered = sec[:security_first] + out + sec[security_first:]
    path.write_text("".join(json.dumps(r) + "\n" for r in ordered))
    return out, sec


def test_sysmon_with_naive_local_time_created_uses_utc_time_and_infers_the_zone(
        tmp_path: Path) -> None:
    sysmon, security = _collector_export(tmp_path / "export.ndjson", 4)
    store = Store(tmp_path / "store")
    [outcome] = ingest(store, [tmp_path / "export.ndjson"]).files
    assert (outcome.read, outcome.loaded) == (30, 30)
    ev = read_events(store, columns=["timestamp", "win_event_id", "win_utc_time",
                                     "parse_warning", "source_line", "win_channel"])
    ev = ev.sort_values("source_line")
    sys_ev = ev[ev["win_channel"] != "Security"]
    # Sysmon records: the time is UtcTime, to the millisecond, with no warning
    assert list(sys_ev["timestamp"]) == [
        pd.Timestamp(str(r["UtcTime"]), tz="UTC") for r in sysmon]
    assert sys_ev["parse_warning"].isna().all()
    # Security records have no UtcTime: the offset the Sysmon records showed is their zone
    sec_ev = ev[ev["win_channel"] == "Security"]
    assert list(sec_ev["timestamp"]) == [
        pd.Timestamp(str(r["TimeCreated"]), tz="UTC") - pd.Timedelta(hours=4)
        for r in security]
    assert sec_ev["parse_warning"].isna().all()
    row = read_manifest(store).iloc[0]
    assert (row["naive_times"], row["time_zone"]) == (10, (
        "+04:00 (inferred: TimeCreated against UtcTime shows this constant offset in the "
        "file's records)"))


def test_records_before_the_offset_is_known_are_utc_assumed_and_say_so(
        tmp_path: Path) -> None:
    _, security = _collector_export(tmp_path / "export.ndjson", 4, security_first=3)
    store = Store(tmp_path / "store")
    ingest(store, [tmp_path / "export.ndjson"])
    ev = read_events(store, columns=["timestamp", "parse_warning", "source_line"])
    ev = ev.sort_values("source_line")
    first = ev.iloc[:3]
    assert list(first["timestamp"]) == [pd.Timestamp(str(r["TimeCreated"]), tz="UTC")
                                        for r in security[:3]]
    assert (first["parse_warning"] == NO_ZONE_WARNING).all()
    assert ev.iloc[3:]["parse_warning"].isna().all()
