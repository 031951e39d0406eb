"""linux_syslog: whole syslog files and the journal, mapped by the same code as linux_auth."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
from loaders.base import LoadOptions, Tuning
from loaders.registry import detect
from tests.conftest import FIXTURES

HERE = FIXTURES / "linux-syslog"
SYSLOG = HERE / "synthetic_debian" / "syslog"
YEAR = LoadOptions(year=2024)
AUTH_PROGRAMS = ("sshd", "sudo", "su", "systemd-logind")
# every value the two sources must agree on for one line ("source" and syslog_* aside)
SAME = ("timestamp", "category", "action", "outcome", "user", "src_ip", "session_id", "host",
        "target_type", "target", "process_pid", "process_command_line", "message",
        "repeat_count", "auth_program", "auth_method", "auth_port",
        "auth_tty", "auth_cwd", "auth_service", "auth_by_user", "auth_invalid_user",
        "auth_preauth", "auth_key", "auth_error", "auth_reason", "parse_warning")


def _rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    cols = [c for c in columns if c in frame]
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()}
            for r in frame[cols].astype(object).to_dict("records")]


def test_a_mixed_syslog_loads_every_line_of_every_program() -> None:
    got = loaders.load(SYSLOG, options=YEAR)
    assert set(got.events["source"]) == {"linux_syslog"}
    assert len(got.events) == 27 and len(got.rejects) == 0
    # a header with no program tag is kept: its program is unknown, its text the message
    untagged = got.events[got.events["source_line"] == 27].iloc[0]
    assert pd.isna(untagged["syslog_program"]) and untagged["host"] == "web1"
    assert untagged["message"] == "cron (no header here: a continuation line)"
    assert (untagged["action"], untagged["category"]) == ("message", "log")
    assert got.events["syslog_program"].nunique() == 16
    assert got.events["syslog_form"].unique().tolist() == ["rfc3164"]
    pri = got.events[got.events["source_line"] == 19].iloc[0]
    assert (pri["syslog_facility"], pri["syslog_severity"]) == ("daemon", "info")
    assert got.events["syslog_facility"].notna().sum() == 1


def test_auth_lines_give_the_values_linux_auth_gives(tmp_path: Path) -> None:
    lines = SYSLOG.read_text("utf-8").splitlines()
    auth = [ln for ln in lines if any(f" {p}[" in ln or f" {p}:" in ln or f" {p}(" in ln
                                       for p in AUTH_PROGRAMS)]
    assert len(auth) == 11
    path = tmp_path / "auth.log"
    path.write_text("\n".join(auth) + "\n", encoding="utf-8")
    alone = loaders.load(path, options=YEAR).events
    assert set(alone["source"]) == {"linux_auth"}
    mixed = loaders.load(SYSLOG, options=YEAR).events
    mixed = mixed[mixed["raw"].isin(auth)].reset_index(drop=True)
    assert len(mixed) == len(alone) == 11
    assert _rows(mixed, SAME) == _rows(alone, SAME)
    assert set(mixed["action"]) == {"ssh_login", "pam_auth_failure", "sudo", "sudo_auth_failure",
                                    "su", "session_opened", "session_new"}


def test_message_repeated_is_one_record_of_n_attempts() -> None:
    ev = loaders.load(SYSLOG, options=YEAR).events
    rep = ev[ev["source_line"] == 13].iloc[0]
    assert (rep["action"], rep["outcome"], rep["user"], rep["src_ip"], rep["repeat_count"]) == (
        "ssh_login", "failure", "root", "203.0.113.9", 5)
    assert rep["message"] == "Failed password for root from 203.0.113.9 port 22 ssh2"
    assert (rep["auth_method"], rep["auth_port"]) == ("password", 22)
    # BSD/syslog-ng: the host's previous line, twice more, at its own line and time
    last = ev[ev["source_line"] == 16].iloc[0]
    prev = ev[ev["source_line"] == 15].iloc[0]
    assert last["raw"] == "Mar  1 10:00:16 web1 last message repeated 2 times"
    assert last["repeat_count"] == 2 and pd.isna(prev["repeat_count"])
    for col in ("action", "outcome", "user", "src_ip", "message", "auth_service"):
        assert last[col] == prev[col]
    assert last["timestamp"] == pd.Timestamp("2024-03-01 10:00:16", tz="UTC")
    once = ev[ev["repeat_count"].isna()]
    assert len(once) == 25


def test_pam_module_tags_map_like_pam_unix_lines() -> None:
    ev = loaders.load(SYSLOG, options=YEAR).events
    old = ev[ev["source_line"] == 14].iloc[0]
    new = ev[ev["source_line"] == 15].iloc[0]
    for col in ("category", "action", "outcome", "user", "src_ip", "auth_service",
                "auth_program"):
        assert old[col] == new[col], col
    assert (old["action"], old["user"], old["auth_service"], old["syslog_pam_module"]) == (
        "pam_auth_failure", "root", "sshd", "pam_unix")
    opened = ev[ev["source_line"] == 24].iloc[0]
    assert (opened["action"], opened["user"], opened["auth_by_user"]) == (
        "session_opened", "alice", "0")


def test_repeats_are_counted_by_the_login_analytics(tmp_path: Path) -> None:
    from analysis.logins import address_profile, sign_ins
    from analysis.scope import Scope
    from loaders.ingest.pipeline import ingest
    from loaders.store.store import Store

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "syslog").write_bytes(SYSLOG.read_bytes())
    report = ingest(Store(tmp_path / "store"), [logs / "syslog"], options=YEAR)
    assert [f.status for f in report.files] == ["ingested"]
    frame = sign_ins(Scope(tmp_path / "store"))
    assert set(frame["source"]) == {"linux_syslog"}
    addr = address_profile(frame).set_index("src_ip")
    # 1 invalid user + 5 repeated + the PAM failures are folded into sshd's (same attempt):
    # the repeated line counts five times
    assert int(frame.loc[frame["src_ip"] == "203.0.113.9", "weight"].sum()) == \
        int(addr.loc["203.0.113.9", "failures"])
    root = frame[(frame["principal"] == "root") & (frame["result"] == "failure")]
    assert int(root["weight"].max()) == 5
    assert int(addr.loc["203.0.113.9", "failures"]) >= 6
    assert int(addr.loc["198.51.100.7", "successes"]) == 1


def test_brute_force_counts_repeats(tmp_path: Path) -> None:
    from analysis.detect.base import run_detectors
    from analysis.scope import Scope
    from loaders.ingest.pipeline import ingest
    from loaders.store.store import Store

    line = ("Mar  1 10:00:{:02d} web1 sshd[77]: message repeated 5 times: [ Failed password "
            "for root from 203.0.113.9 port 22 ssh2]\n")
    path = tmp_path / "syslog"
    path.write_text("".join(line.format(s) for s in (1, 2)), encoding="utf-8")
    ingest(Store(tmp_path / "store"), [path], options=YEAR)
    found = run_detectors(Scope(tmp_path / "store"), only=["brute_force"])
    brute = [f for f in found.findings if f.detector == "brute_force"]
    assert len(brute) == 1 and brute[0].description.startswith("10 failed sign-ins for root")


JOURNAL_SAME = ("timestamp", "host", "category", "action", "outcome", "user", "src_ip",
                "process_pid", "process_command_line", "message", "target", "auth_program",
                "auth_method", "auth_port", "syslog_program", "syslog_facility",
                "syslog_severity", "syslog_unit", "syslog_boot_id", "event_uid")


def test_journal_json_and_export_give_the_same_events() -> None:
    as_json = loaders.load(HERE / "synthetic_journal.json").events
    as_export = loaders.load(HERE / "synthetic_journal.export").events
    assert len(as_json) == len(as_export) == 6
    assert _rows(as_json, JOURNAL_SAME) == _rows(as_export, JOURNAL_SAME)
    assert as_json["syslog_form"].unique().tolist() == ["journal_json"]
    assert as_export["syslog_form"].unique().tolist() == ["journal_export"]
    first = as_json.iloc[1]
    assert (first["action"], first["outcome"], first["user"], first["src_ip"]) == (
        "ssh_login", "failure", "root", "203.0.113.9")
    assert first["timestamp"] == pd.Timestamp("2024-03-01 10:00:11.123456", tz="UTC")
    assert (first["syslog_facility"], first["syslog_severity"]) == ("authpriv", "info")
    assert as_json.iloc[4]["message"] == "backup: \x1b[31mfailed\x1b[0m disk \ufffd full"
    assert as_json["parse_warning"].isna().all()  # journal times are UTC by definition


def test_journal_lines_match_syslog_lines_of_the_same_message() -> None:
    journal = loaders.load(HERE / "synthetic_journal.json").events.iloc[[0, 1, 2]]
    cols = ("category", "action", "outcome", "user", "src_ip", "process_pid", "message",
            "target", "auth_program", "auth_method", "auth_port", "auth_tty", "auth_cwd")
    text = "\n".join(f"Mar  1 10:00:1{i} web1 {r.auth_program}[{r.process_pid}]: {r.message}"
                     for i, r in enumerate(journal.itertuples()))
    assert _rows(journal.reset_index(drop=True), cols)[0]["action"] == "ssh_login"
    for i, r in enumerate(journal.itertuples()):
        assert r.syslog_program == ("sshd", "sshd", "sudo")[i]
    assert "sudo" in text


def test_export_lengths_are_bounded(tmp_path: Path) -> None:
    got = loaders.load(HERE / "synthetic_journal_bad_lengths.export")
    assert len(got.events) == 1
    reasons = got.rejects["reason"].tolist()
    assert "over the bound" in reasons[0] and "beyond the end of the file" in reasons[1]
    small = tmp_path / "small.export"
    small.write_bytes(b"__CURSOR=s=1\n__REALTIME_TIMESTAMP=1709287210000000\nMESSAGE\n"
                      + struct.pack("<Q", 2000) + b"x" * 2000 + b"\n\n")
    got = loaders.load(small, options=LoadOptions(tuning=Tuning(max_line_bytes=1000)))
    assert len(got.events) == 0 and "over the bound of 1000 bytes" in got.rejects.iloc[0]["reason"]


def test_short_iso_and_separators() -> None:
    got = loaders.load(HERE / "synthetic_journal_short_iso.log")
    assert len(got.events) == 6 and len(got.rejects) == 0
    assert got.events["syslog_form"].unique().tolist() == ["iso8601"]
    assert got.events["parse_warning"].isna().all()  # +0000 is a zone


@pytest.mark.parametrize(("name", "head", "source"), [
    ("secure", b"Mar  1 10:00:00 h sshd[1]: Accepted password for a from 192.0.2.1 port 1 ssh2\n",
     "linux_auth"),
    ("messages", b"Mar  1 10:00:00 h sshd[1]: Accepted password for a from 192.0.2.1 port 1 ssh2\n",
     "linux_syslog"),
    ("kern.log.1", b"Mar  1 10:00:00 h kernel: [0.1] x\n", "linux_syslog"),
    ("x.log", b"Mar  1 10:00:00 h kernel: [0.1] x\nMar  1 10:00:01 h cron[2]: y\n",
     "linux_syslog"),
    ("j.txt", b"2024-03-01T10:00:00+0000 h sshd[1]: Connection from 192.0.2.1 port 2 on "
              b"10.0.0.1 port 22\n", "linux_auth"),
    ("j.export", b"__CURSOR=s=1\n__REALTIME_TIMESTAMP=1\nMESSAGE=x\n\n", "linux_syslog"),
])
def test_detection_precedence(name: str, head: bytes, source: str) -> None:
    assert detect(head, name).name == source


def test_a_line_in_both_auth_log_and_syslog_is_counted_once(tmp_path: Path) -> None:
    """rsyslog writes sshd lines to auth.log and to syslog: the store keeps both files'
    events, analysis (the scope's views) counts the attempt once."""
    from analysis.detect.base import run_detectors
    from analysis.scope import Scope
    from loaders.ingest.pipeline import ingest
    from loaders.store.read import read_events
    from loaders.store.store import Store

    fails = "".join(f"Mar  1 10:00:{s:02d} web1 sshd[{70 + s}]: Failed password for root "
                    f"from 203.0.113.9 port {4000 + s} ssh2\n" for s in range(12))
    (tmp_path / "auth.log").write_text(fails, encoding="utf-8")
    (tmp_path / "syslog").write_text(
        "Mar  1 09:59:59 web1 kernel: [ 1.0] eth0: link up\n" + fails, encoding="utf-8")
    store = Store(tmp_path / "store")
    report = ingest(store, [tmp_path / "auth.log", tmp_path / "syslog"], options=YEAR)
    assert [(f.loader, f.loaded) for f in report.files] == [("linux_auth", 12),
                                                           ("linux_syslog", 13)]
    assert len(read_events(store, columns=["event_uid"])) == 25  # both files, whole
    con = Scope(store.root).connect()
    assert con.sql("SELECT source, count(*) FROM events GROUP BY 1 ORDER BY 1").fetchall() \
        == [("linux_auth", 12), ("linux_syslog", 1)]  # the kernel line only
    found = run_detectors(Scope(store.root), only=["brute_force"])
    brute = [f for f in found.findings if f.detector == "brute_force"]
    assert len(brute) == 1 and brute[0].description.startswith("12 failed sign-ins for root")


def test_syslog_ng_says_last_message_repeated_in_its_own_words() -> None:
    lines = ("Mar  1 10:00:01 web1 sshd[7]: Failed password for root from 203.0.113.9 port 22 "
             "ssh2\n"
             "Mar  1 10:00:09 web1 syslog-ng[99]: Last message 'Failed password for r' "
             "repeated 3 times, suppressed by syslog-ng on web1\n")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "messages"
        path.write_text(lines, encoding="utf-8")
        ev = loaders.load(path, options=YEAR).events.sort_values("source_line")
    first, repeat = ev.iloc[0], ev.iloc[1]
    assert pd.isna(first["repeat_count"]) and repeat["repeat_count"] == 3
    for col in ("action", "outcome", "user", "src_ip"):
        assert repeat[col] == first[col]
    assert repeat["timestamp"] == pd.Timestamp("2024-03-01 10:00:09", tz="UTC")
