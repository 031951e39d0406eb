"""linux_auth: sshd / sudo / su / PAM lines, syslog headers and year inference."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
from loaders.base import LoadOptions
from loaders.linux_auth.loader import YearGuesser
from loaders.linux_auth.messages import interpret
from tests.conftest import FIXTURES

DIR = FIXTURES / "linux-auth"
Y2015 = LoadOptions(year=2015)
Y2024 = LoadOptions(year=2024)


def _rows(path: Path, options: LoadOptions | None = None) -> list[dict[str, Any]]:
    events = loaders.load(path, options=options).events
    return [{k: (None if v is pd.NA or (isinstance(v, float) and pd.isna(v)) else v)
             for k, v in row.items()} for row in events.to_dict("records")]


def _pick(row: dict[str, Any], *cols: str) -> tuple[Any, ...]:
    return tuple(row[c] for c in cols)


CORE = ("timestamp", "host", "category", "action", "outcome", "user", "src_ip")


def test_plaso_sshd_lines() -> None:
    result = loaders.load(DIR / "plaso_syslog_ssh.log", options=Y2015)
    assert (result.counts.read, result.counts.rejected) == (9, 0)
    rows = _rows(DIR / "plaso_syslog_ssh.log", Y2015)
    assert _pick(rows[1], *CORE, "auth_method", "auth_port", "process_pid", "auth_key") == (
        pd.Timestamp("2015-03-11 19:26:39", tz="UTC"), "osx-machine", "authentication",
        "ssh_login", "success", "plaso", "192.168.0.1", "publickey", 59229, 3,
        "RSA 00:aa:bb:cc:dd:ee:ff:11:22:33:44:55:66:77:88:99")
    # IPv6 written in full is stored canonically; two spaces before ssh2 do not matter
    assert _pick(rows[2], "action", "outcome", "user", "src_ip", "auth_method") == (
        "ssh_login", "success", "plaso", "2001:db8:a0b:12f0::1", "password")
    assert _pick(rows[5], "action", "outcome", "user", "src_ip", "auth_port") == (
        "ssh_login", "failure", "root", "188.124.3.41", 32889)
    assert _pick(rows[0], "category", "action", "target") == ("system", "ssh_listen",
                                                               "0.0.0.0:22")
    assert _pick(rows[4], "category", "action", "src_ip") == ("session", "ssh_connection",
                                                              "188.124.3.41")


def test_debian_auth_log() -> None:
    path = DIR / "synthetic_debian_auth.log"
    result = loaders.load(path, options=Y2024)
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (32, 31, 1)
    assert result.rejects["source_line"].tolist() == [32]
    assert "no syslog header" in result.rejects["reason"][0]
    rows = {r["source_line"]: r for r in _rows(path, Y2024)}
    assert _pick(rows[1], *CORE) == (pd.Timestamp("2024-03-01 10:00:01", tz="UTC"), "web01",
                                     "authentication", "ssh_login", "success", "alice",
                                     "203.0.113.10")
    invalid = rows[6]
    assert _pick(invalid, "action", "outcome", "user", "auth_invalid_user", "auth_method") == (
        "ssh_login", "failure", "admin", True, "password")
    # the same line twice in one second: two events, two ids
    assert rows[6]["event_uid"] != rows[7]["event_uid"]
    assert _pick(rows[8], "category", "action", "user", "auth_preauth", "src_ip") == (
        "session", "ssh_connection_closed", "admin", True, "198.51.100.23")
    assert _pick(rows[11], "action", "user", "auth_preauth") == ("ssh_disconnected", "root",
                                                                 True)
    sudo = rows[12]
    assert _pick(sudo, "category", "action", "outcome", "user", "target_type", "target",
                 "process_command_line", "auth_cwd", "auth_tty") == (
        "process", "sudo", "success", "alice", "account", "root",
        "/usr/bin/systemctl stop auditd", "/home/alice", "pts/0")
    assert _pick(rows[16], "category", "action", "outcome", "user", "auth_error",
                 "process_command_line") == (
        "authentication", "sudo_auth_failure", "failure", "bob",
        "3 incorrect password attempts", "/bin/cat /etc/shadow")
    assert _pick(rows[17], "category", "action", "outcome", "user", "auth_error") == (
        "process", "sudo_denied", "denied", "carol", "user NOT in sudoers")
    assert _pick(rows[13], "category", "action", "user", "auth_service", "auth_by_user") == (
        "session", "session_opened", "root", "sudo", "alice")
    assert _pick(rows[18], "category", "action", "outcome", "user", "target", "auth_tty") == (
        "authentication", "su", "success", "alice", "root", "pts/0")
    assert _pick(rows[21], "action", "outcome", "user", "target") == ("su", "failure", "bob",
                                                                      "root")
    assert _pick(rows[20], "action", "user", "auth_by_user", "auth_service") == (
        "pam_auth_failure", "root", "bob", "su")
    assert _pick(rows[23], "category", "action", "target") == ("access_management", "useradd",
                                                               "backdoor")
    assert _pick(rows[24], "action", "target") == ("password_changed", "backdoor")
    assert _pick(rows[25], "action", "target") == ("group_member_added", "backdoor")
    assert _pick(rows[3], "action", "user", "session_id") == ("session_new", "alice", "42")
    assert _pick(rows[31], "category", "action", "outcome", "auth_program") == (
        "log", "message", "unknown", "kernel")


def test_rhel_secure_iso_high_precision() -> None:
    rows = _rows(DIR / "synthetic_rhel_secure.log")
    assert len(rows) == 7
    assert _pick(rows[0], *CORE, "auth_port", "process_pid") == (
        pd.Timestamp("2024-03-01 07:00:01.123456", tz="UTC"), "db01", "authentication",
        "ssh_login", "success", "oracle", "192.0.2.15", 60123, 1234)
    assert _pick(rows[4], "action", "user", "target", "process_command_line", "auth_cwd") == (
        "sudo", "oracle", "root", "/usr/bin/cat /etc/shadow", "/u01/app")
    assert _pick(rows[6], "auth_program", "action", "user") == ("sshd-session", "ssh_login",
                                                                "root")


def test_rfc5424() -> None:
    result = loaders.load(DIR / "synthetic_rfc5424_auth.log")
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (4, 3, 1)
    assert "not an ISO 8601 timestamp" in result.rejects["reason"][0]
    rows = _rows(DIR / "synthetic_rfc5424_auth.log")
    assert _pick(rows[0], *CORE, "auth_method", "process_pid") == (
        pd.Timestamp("2024-03-01 07:00:01.5", tz="UTC"), "bastion", "authentication",
        "ssh_login", "success", "eve", "198.51.100.77", "keyboard-interactive/pam", 777)
    assert _pick(rows[1], "action", "user", "message") == (
        "ssh_disconnected", "eve", "Disconnected from user eve 198.51.100.77 port 2222")
    assert _pick(rows[2], "timestamp", "action", "user", "process_command_line",
                 "process_pid") == (pd.Timestamp("2024-03-01 06:01", tz="UTC"), "sudo", "eve",
                                    "/usr/bin/id", None)


def test_december_january_wrap_with_year_option() -> None:
    stamps = [r["timestamp"] for r in _rows(DIR / "synthetic_dec_jan_wrap.log",
                                             LoadOptions(year=2023))]
    assert stamps == [pd.Timestamp(t, tz="UTC") for t in (
        "2023-12-31 23:59:58", "2023-12-31 23:59:59", "2024-01-01 00:00:01",
        "2023-12-31 23:59:59", "2024-01-01 00:00:05")]


def test_year_from_mtime(tmp_path: Path) -> None:
    copy = tmp_path / "auth.log"
    shutil.copy(DIR / "synthetic_dec_jan_wrap.log", copy)
    mtime = datetime(2024, 1, 5, tzinfo=UTC).timestamp()
    os.utime(copy, (mtime, mtime))
    stamps = [r["timestamp"] for r in _rows(copy)]
    # December is after the mtime (January 2024), so it is December 2023
    assert stamps[0] == pd.Timestamp("2023-12-31 23:59:58", tz="UTC")
    assert stamps[2] == pd.Timestamp("2024-01-01 00:00:01", tz="UTC")
    march = tmp_path / "auth2.log"
    shutil.copy(DIR / "plaso_syslog_ssh.log", march)
    mtime = datetime(2019, 6, 1, tzinfo=UTC).timestamp()
    os.utime(march, (mtime, mtime))
    assert _rows(march)[0]["timestamp"] == pd.Timestamp("2019-03-11", tz="UTC")


def test_year_guesser_leap_day_and_wrap() -> None:
    years = YearGuesser(2023, 0)
    assert years.resolve(12, 30, 0, 0, 0, 0).year == 2023
    assert years.resolve(2, 29, 1, 0, 0, 0) == datetime(2024, 2, 29, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        YearGuesser(2023, 0).resolve(2, 29, 0, 0, 0, 0)


def test_uids_stable_across_runs_and_differ_by_year() -> None:
    a = _rows(DIR / "plaso_syslog_ssh.log", Y2015)
    b = _rows(DIR / "plaso_syslog_ssh.log", Y2015)
    c = _rows(DIR / "plaso_syslog_ssh.log", LoadOptions(year=2016))
    assert [r["event_uid"] for r in a] == [r["event_uid"] for r in b]
    assert a[0]["event_uid"] != c[0]["event_uid"]


@pytest.mark.parametrize("message, expected", [
    ("Connection reset by 192.0.2.1 port 4444 [preauth]",
     ("ssh_connection_reset", "session", "unknown")),
    ("Received disconnect from 192.0.2.1 port 4444:11: Bye Bye [preauth]",
     ("ssh_disconnect_received", "session", "unknown")),
    ("Failed none for invalid user oracle from 192.0.2.1 port 4444 ssh2",
     ("ssh_login", "authentication", "failure")),
])
def test_interpret_sshd_messages(message: str, expected: tuple[str, str, str]) -> None:
    found = interpret("sshd", message)
    assert found is not None and found[:3] == expected
    assert found[3]["ip"] == "192.0.2.1"


def test_sniff_is_specific() -> None:
    loader = loaders.get_loader("linux_auth")
    assert loader.sniff(b"Mar  1 10:00:01 h sudo:  a : TTY=pts/0 ; COMMAND=/bin/id\n", "x")
    assert loader.sniff(b"2024-03-01T10:00:01.1+03:00 h sshd[1]: Accepted password\n", "x")
    assert not loader.sniff(b"Mar  1 10:00:01 h kernel: [1.0] eth0 up\n", "syslog")
    assert loader.sniff(b"Mar  1 10:07:00 h CRON[2]: pam_unix(cron:session): session opened "
                        b"for user root(uid=0) by (uid=0)\n", "auth.log")
    assert not loader.sniff(b"type=SYSCALL msg=audit(1.2:3): x=1\n", "audit.log")
    assert not loader.sniff(b"2024-03-01T10:00:01.1Z stdout F sshd: hi\n", "pod.log")
