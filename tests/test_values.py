"""The value layer: one spelling per address and name, whichever source or code path wrote it.

Unit tests of :mod:`loaders.parsing.values`, then the same tricky addresses fed through every
loader that stores an address (per-record and vectorized paths) with the stored ``src_ip``
asserted identical, and a scan of every fixture for nulls written as the text ``None``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import loaders
import loaders.k8s_audit.fast as k8s_fast
import loaders.selectel_audit.loader as sa_loader
from loaders.base import LoadOptions
from loaders.parsing import values
from tests.conftest import provenance_rows


@pytest.mark.parametrize("raw, address", [
    ("10.0.0.5", "10.0.0.5"),
    (" 10.0.0.5 ", "10.0.0.5"),
    ("10.0.0.5:51234", "10.0.0.5"),
    ("::FFFF:10.0.0.5", "10.0.0.5"),
    ("::ffff:0a00:0005", "10.0.0.5"),
    ("2001:DB8:0:0::1", "2001:db8::1"),
    ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("fe80::1%eth0", "fe80::1"),
])
def test_addresses_have_one_spelling(raw: str, address: str) -> None:
    assert values.canonical_ip(raw) == (address, None)


@pytest.mark.parametrize("raw", ["", " ", "-", "?", "N/A", "null", "None", "(null)",
                                 "UNKNOWN", None])
def test_placeholders_are_null_without_a_warning(raw: str | None) -> None:
    assert values.canonical_ip(raw) == (None, None)


@pytest.mark.parametrize("raw", ["gateway.local", "10.0.0.256", "1.2.3", "10.0.0.5:99999",
                                 "[2001:db8::1]x", "fe80::1%", "10.0.0.5%eth0",
                                 "\u0661.\u0662.\u0663.\u0664", "10.0.0.5 10.0.0.6"])
def test_a_value_that_is_not_an_address_is_null_with_a_warning(raw: str) -> None:
    assert values.canonical_ip(raw, "k8s_ip") == (
        None, f"k8s_ip: not an IP address: {raw.strip()!r}")


def test_the_vectorized_form_equals_the_scalar_form() -> None:
    raw = ["::FFFF:10.0.0.5", None, "x", "-", "2001:DB8::1", "::FFFF:10.0.0.5", "x"]
    addresses, warnings = values.canonical_ips(pa.array(raw, pa.string()))
    assert list(zip(addresses.to_pylist(), warnings.to_pylist(), strict=True)) == [
        values.canonical_ip(v) for v in raw]


def test_text_join_and_names_never_write_none() -> None:
    assert values.join(["system:masters", None, "", "dev"]) == "system:masters,dev"
    assert values.join([None, ""]) is None and values.join(None) is None
    assert values.join(["Role", "edit"], "/") == "Role/edit"
    assert values.text(None) is None and values.text(" ") is None and values.text(5) == "5"
    assert [values.name(v) for v in (" alice ", "-", "?", "", "none", "Root", None)] == [
        "alice", None, None, None, "none", "Root", None]
    assert values.names(pa.array([" a", None, "-", "a"])).to_pylist() == ["a", None, None, "a"]


def test_conform_fixes_a_table_and_adds_warnings() -> None:
    table = pa.table({"user": [" bob ", "-"], "host": ["web01", None],
                      "src_ip": ["::ffff:192.0.2.1", "bogus"],
                      "parse_warning": ["earlier", None]})
    out = values.conform(table)
    assert out.column("user").to_pylist() == ["bob", None]
    assert out.column("host").to_pylist() == ["web01", None]
    assert out.column("src_ip").to_pylist() == ["192.0.2.1", None]
    assert out.column("parse_warning").to_pylist() == [
        "earlier", "src_ip: not an IP address: 'bogus'"]
    assert values.conform(out).equals(out)  # canonical input comes back unchanged


# -- every loader that stores an address, fed the same spellings -------------------------

SPELLINGS = ["198.51.100.7", "::FFFF:198.51.100.7", "2001:DB8:0:0::1",
             "2001:0db8::0001", "-"]
STORED = ["198.51.100.7", "198.51.100.7", "2001:db8::1", "2001:db8::1", None]


def _selectel_auth(ip: str, i: int) -> str:
    return json.dumps({"time": f"2025-10-14T08:{i:02d}:00Z", "email": "alice@example.com",
                       "ip": ip, "user_agent": "curl/8", "status": "success"})


def _selectel_audit(ip: str, i: int) -> str:
    return json.dumps({
        "event_id": f"00000000-0000-4000-8000-00000000000{i}", "event_type": "server.create",
        "event_time": f"2026-11-01T00:{i:02d}:14.305Z", "status": "success",
        "subject": {"id": "u-1", "type": "user", "name": "alice"},
        "resource": {"id": "r-1", "type": "server", "name": "web"},
        "source_type": "api", "schema_version": "2.0",
        "request": {"remote_address": ip, "user_agent": "curl/8", "type": "http",
                    "path": "/compute", "method": "POST", "parameters": ""}})


def _cadf(ip: str, i: int) -> str:
    return json.dumps({
        "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
        "id": f"cadf-{i}", "eventTime": f"2025-10-14T08:{i:02d}:45.678901+0000",
        "eventType": "activity", "action": "authenticate", "outcome": "success",
        "initiator": {"typeURI": "service/security/account/user", "name": "alice", "id": "u1",
                      "host": {"agent": "curl/8", "address": ip}},
        "target": {"id": "t1", "typeURI": "service/security/account/user"},
        "observer": {"id": "target"}})


def _k8s_audit(ip: str, i: int) -> str:
    return json.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": f"a{i}", "stage": "ResponseComplete", "verb": "get",
        "requestURI": "/api/v1/namespaces/default/pods",
        "user": {"username": "alice", "groups": ["system:authenticated", None]},
        "sourceIPs": [ip, "10.0.0.1"], "userAgent": "kubectl/v1.30",
        "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": f"2026-11-01T10:00:0{i}.000000Z",
        "stageTimestamp": f"2026-11-01T10:00:0{i}.000000Z"})


def _windows(ip: str, i: int) -> str:
    return json.dumps({
        "@timestamp": f"2024-03-05T09:30:0{i}.000Z",
        "event": {"code": "4624", "provider": "Microsoft-Windows-Security-Auditing"},
        "winlog": {"channel": "Security", "computer_name": "dc01.example.lan",
                   "event_id": 4624, "record_id": 100 + i,
                   "provider_name": "Microsoft-Windows-Security-Auditing",
                   "event_data": {"TargetUserName": "alice", "TargetDomainName": "EXAMPLE",
                                  "LogonType": "3", "IpAddress": ip, "IpPort": "50000"}}})


def _linux_auth(ip: str, i: int) -> str:
    return (f"Mar  1 10:00:0{i} web01 sshd[21{i}]: Accepted password for alice from {ip} "
            f"port 5123{i} ssh2")


def _linux_auditd(ip: str, i: int) -> str:
    return (f"type=USER_LOGIN msg=audit(1492896301.81{i}:1995{i}): pid=12635 uid=0 auid=1000 "
            f"ses=4 msg='op=login acct=\"alice\" exe=\"/usr/sbin/sshd\" hostname=? addr={ip} "
            "terminal=sshd res=success'")


WRITERS = {"selectel_auth": (_selectel_auth, "auth.jsonl"),
           "selectel_audit": (_selectel_audit, "audit.jsonl"),
           "openstack_cadf": (_cadf, "cadf.jsonl"),
           "k8s_audit": (_k8s_audit, "k8s.jsonl"),
           "windows_events": (_windows, "winlogbeat.ndjson"),
           "linux_auth": (_linux_auth, "auth.log"),
           "linux_auditd": (_linux_auditd, "audit.log")}


def _stored(tmp_path: Path, name: str) -> list[Any]:
    write, filename = WRITERS[name]
    path = tmp_path / filename
    path.write_text("\n".join(write(ip, i) for i, ip in enumerate(SPELLINGS)) + "\n")
    # tz given: an RFC 3164 header has no zone, and without one each record would say so
    result = loaders.load(path, format=name, options=LoadOptions(tz="UTC"))
    assert result.counts.loaded == len(SPELLINGS), result.rejects
    events = result.events.sort_values("timestamp", kind="stable")
    assert events["parse_warning"].isna().all(), events["parse_warning"].tolist()
    return [None if v is None or v != v else v for v in events["src_ip"]]


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_loader_stores_one_spelling_per_address(tmp_path: Path, name: str) -> None:
    assert _stored(tmp_path, name) == STORED


@pytest.mark.parametrize("module, name", [(k8s_fast, "k8s_audit"),
                                          (sa_loader, "selectel_audit")])
def test_the_per_event_path_stores_what_the_vectorized_path_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    monkeypatch.setattr(module, "jsonl_head", lambda head: False)
    assert _stored(tmp_path, name) == STORED


def test_kubernetes_lists_skip_nulls(tmp_path: Path) -> None:
    path = tmp_path / "k8s.jsonl"
    path.write_text(_k8s_audit("10.0.0.9", 1) + "\n")
    row = loaders.load(path).events.iloc[0]
    assert row["k8s_groups"] == "system:authenticated"


# -- no fixture stores a null as the text "None" -----------------------------------------

NONE_TOKEN = re.compile(r"\bNone\b")


def _fixture_paths() -> list[Path]:
    return sorted({Path(r["path"]) for r in provenance_rows()})


def test_no_stored_value_is_the_text_none_unless_the_source_wrote_it() -> None:
    offenders: list[str] = []
    for path in _fixture_paths():
        try:
            result = loaders.load(path)
        except loaders.UnrecognizedFormat:
            continue
        frame = result.events
        if frame.empty:
            continue
        for column in frame.columns:
            if column in ("raw", "message") or frame[column].dtype != object:
                continue
            for value, raw in zip(frame[column], frame["raw"], strict=True):
                if isinstance(value, str) and NONE_TOKEN.search(value) and (
                        not isinstance(raw, str) or "None" not in raw):
                    offenders.append(f"{path.name}: {column}={value[:80]!r}")
    assert offenders == []
