"""Every input form a loader's ``reads`` claims (``auditlens sources``) is loaded by a test.

Most forms have a fixture of their own (tests/fixtures/*/PROVENANCE.tsv, loaded by their
loader's tests and by tests/test_golden.py). The forms below had none: each is made here from
a fixture in another claimed form of the same records (re-serialized, nothing invented), and
must load the same events — or, for NXLog, from the field names NXLog's im_msvistalog
writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import loaders
from tests.conftest import FIXTURES

# provenance columns: where the record was, not what it says (event_uid too: a source
# without a native id hashes the raw text, which another serialization changes)
_WHERE = ["source_file", "source_line", "raw", "ingest_id", "event_uid"]


def _same_events(a: Path, b: Path) -> loaders.LoadResult:
    ra, rb = loaders.load(a), loaders.load(b)
    assert (ra.counts.loaded, ra.counts.rejected, ra.counts.duplicate) == (
        rb.counts.loaded, rb.counts.rejected, rb.counts.duplicate)
    pd.testing.assert_frame_equal(ra.events.drop(columns=_WHERE).reset_index(drop=True),
                                  rb.events.drop(columns=_WHERE).reset_index(drop=True))
    return rb


def _jsonl(path: Path, values: list[object]) -> Path:
    path.write_text("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values),
                    "utf-8")
    return path


def test_selectel_auth_json_lines_as_the_json_array(tmp_path: Path) -> None:
    array = FIXTURES / "selectel-auth" / "auth-log.json"
    rows = json.loads(array.read_text("utf-8"))
    result = _same_events(array, _jsonl(tmp_path / "auth-log.jsonl", rows))
    assert result.counts.loaded == 5
    assert result.events["source_line"].tolist() == [1, 2, 3, 4, 5]


def test_mks_cluster_bare_tasks_and_array_as_the_tasks_list(tmp_path: Path) -> None:
    listed = FIXTURES / "mks-cluster" / "synthetic_tasks_list.json"
    tasks = json.loads(listed.read_text("utf-8"))["tasks"]
    array = tmp_path / "tasks-array.json"
    array.write_text(json.dumps(tasks, indent=2), "utf-8")
    assert _same_events(listed, array).counts.loaded == len(tasks)
    assert _same_events(listed, _jsonl(tmp_path / "tasks.jsonl", tasks)).counts.loaded \
        == len(tasks)


def test_openstack_cadf_array_as_json_lines(tmp_path: Path) -> None:
    lines = FIXTURES / "openstack-cadf" / "cadf-bare.jsonl"
    values = [json.loads(t) for t in lines.read_text("utf-8").splitlines() if t.strip()]
    array = tmp_path / "cadf.json"
    array.write_text(json.dumps(values, indent=1), "utf-8")
    result = _same_events(lines, array)
    assert result.counts.loaded == loaders.load(lines).counts.loaded > 0


def test_k8s_audit_plain_array_as_json_lines(tmp_path: Path) -> None:
    lines = FIXTURES / "k8s-audit" / "synthetic_multistage.jsonl"
    values = [json.loads(t) for t in lines.read_text("utf-8").splitlines() if t.strip()]
    array = tmp_path / "audit.json"
    array.write_text(json.dumps(values, indent=2), "utf-8")
    assert loaders.detect(array.read_bytes()[:65536], array.name).name == "k8s_audit"
    assert _same_events(lines, array).counts.loaded > 0


def test_windows_events_nxlog_im_msvistalog_json(tmp_path: Path) -> None:
    """NXLog's im_msvistalog + to_json(): EventTime in the collector's local time without a
    zone, Hostname, SourceName, RecordNumber, EventReceivedTime, SourceModuleName…"""
    record = {
        "EventTime": "2024-03-05 12:02:11", "Hostname": "DC01.corp.example",
        "Keywords": "9232379236109516800", "EventType": "AUDIT_SUCCESS",
        "SeverityValue": 2, "Severity": "INFO", "EventID": 4624,
        "SourceName": "Microsoft-Windows-Security-Auditing",
        "ProviderGuid": "{54849625-5478-4994-A5BA-3E3B0328C30D}", "Version": 2, "Task": 12544,
        "OpcodeValue": 0, "RecordNumber": 981234, "ActivityID": "{00000000-0000-0000-0000}",
        "ExecutionProcessID": 640, "ExecutionThreadID": 1872, "Channel": "Security",
        "Message": "An account was successfully logged on.", "Category": "Logon",
        "Opcode": "Info", "SubjectUserSid": "S-1-0-0", "TargetUserSid": "S-1-5-21-1-2-3-1104",
        "TargetUserName": "alice", "TargetDomainName": "CORP", "LogonType": "10",
        "IpAddress": "203.0.113.50", "IpPort": "51234", "WorkstationName": "WS17",
        "EventReceivedTime": "2024-03-05 12:02:12", "SourceModuleName": "eventlog",
        "SourceModuleType": "im_msvistalog"}
    path = _jsonl(tmp_path / "nxlog.json", [record])
    assert loaders.detect(path.read_bytes(), path.name).name == "windows_events"
    result = loaders.load(path)
    assert (result.counts.loaded, result.counts.rejected) == (1, 0)
    ev = result.events.iloc[0]
    assert ev["timestamp"] == pd.Timestamp("2024-03-05 12:02:11", tz="UTC")
    assert "time without a zone, taken as UTC" in ev["parse_warning"]
    assert (ev["win_event_id"], ev["win_channel"], ev["win_record_id"]) == (
        4624, "Security", 981234)
    assert (ev["host"], ev["user"], ev["src_ip"], ev["outcome"]) == (
        "DC01.corp.example", "CORP\\alice", "203.0.113.50", "success")
    assert ev["category"] == "authentication"
