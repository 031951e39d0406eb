"""selectel_audit: every container and both layouts of the Selectel audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
from loaders.parsing.inputs import read_head
from loaders.selectel_audit.fields import categorize, flatten, outcome
from loaders.selectel_audit.loader import LOADER

DIR = Path(__file__).parent / "fixtures" / "selectel-audit"
# columns that depend on where a record was read, not on the event
PLACE = ["raw", "source_file", "source_line", "ingest_id"]


def _load(name: str) -> loaders.LoadResult:
    return loaders.load(DIR / name)


def _values(frame: pd.DataFrame, i: int) -> dict[str, Any]:
    """The non-null fields of one row."""
    return {k: v for k, v in frame.iloc[i].to_dict().items() if v is not None and not (
        not isinstance(v, (list, dict, str)) and pd.isna(v))}


def _counts(result: loaders.LoadResult) -> tuple[int, int, int, int]:
    c = result.counts
    return c.read, c.loaded, c.rejected, c.duplicate


def test_export_array_full_record() -> None:
    result = _load("audit-export.json")
    assert result.source == "selectel_audit"
    assert _counts(result) == (8, 8, 0, 0)
    row = _values(result.events, 5)
    assert {k: row.get(k) for k in (
        "timestamp", "category", "action", "outcome", "user", "user_id", "src_ip",
        "user_agent", "target_type", "target", "message", "source_line")} == {
        "timestamp": pd.Timestamp("2025-10-14 08:31:45.678", tz="UTC"),
        "category": "resource_change",
        "action": "cloud.server.delete",
        "outcome": "success",
        "user": "ci-deployer",
        "user_id": "9c8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a",
        "src_ip": "192.0.2.44",
        "user_agent": "openstacksdk/3.3.0",
        "target_type": "server",
        "target": "web-01",
        "message": "ci-deployer cloud.server.delete server web-01 from 192.0.2.44 -> success",
        "source_line": 176,
    }
    extras = {k: v for k, v in row.items() if k.startswith("selectel_")}
    assert extras == {
        "selectel_account_id": "218764",
        "selectel_auth_provider": "keystone",
        "selectel_authorized_by": "member",
        "selectel_credentials_fingerprint": "sha256:a17be4d2",
        "selectel_event_saved_time": pd.Timestamp("2025-10-14 08:31:46.012", tz="UTC"),
        "selectel_is_authorized": True,
        "selectel_location": "ru-9",
        "selectel_new_values": '{"status":"DELETED"}',
        "selectel_old_values": '{"flavor":"SL1.1-1024","ips":["10.0.0.5"],"status":"ACTIVE"}',
        "selectel_project_id": "4a1c2b7e9d8f4e0b8c6a5d3f2e1b0a99",
        "selectel_request_id": "req-7d1e06a0-3c55-4f0b-8e21-91b6c40d0006",
        "selectel_request_method": "DELETE",
        "selectel_request_path": "/compute/v2.1/servers/5d2e8f1a-7b3c-4e9d-a0f6-1c2b3d4e5f60",
        "selectel_request_type": "api",
        "selectel_resource_id": "5d2e8f1a-7b3c-4e9d-a0f6-1c2b3d4e5f60",
        "selectel_schema_version": "2.0",
        "selectel_source_type": "api",
        "selectel_status": "success",
        "selectel_subject_type": "service_user",
    }
    assert json.loads(row["raw"])["event_id"] == "0f7c2a4e-5b1d-4c8e-9a3f-000000000006"


def test_categories_outcomes_and_raw_status() -> None:
    ev = _load("audit-export.json").events
    got = list(zip(ev["action"], ev["category"], ev["outcome"], ev["selectel_status"],
                   strict=True))
    assert got == [
        ("panel.login", "authentication", "success", "success"),
        ("panel.login", "authentication", "failure", "fail"),
        ("secret.read", "data_access", "success", "success"),
        ("iam.token.create", "access_management", "success", "success"),
        # status "fail" but subject.is_authorized == false: refused by policy
        ("iam.role.assign", "access_management", "denied", "fail"),
        ("cloud.server.delete", "resource_change", "success", "success"),
        # an undocumented status value is kept raw and never rejects the event
        ("cloud.network.update", "resource_change", "unknown", "accepted"),
        ("panel.session.end", "session", "unknown", "NA"),
    ]
    # the network update has no request{} object at all
    assert ev["src_ip"].isna()[6] and ev["user_agent"].isna()[6]


def test_schema_1_0_layout_loads_to_identical_columns() -> None:
    nested = _load("audit-export.json")
    flat = _load("audit-schema-1.0.jsonl")
    assert _counts(flat) == (8, 8, 0, 0)
    assert (flat.events["selectel_schema_version"] == "1.0").all()
    drop = [*PLACE, "selectel_schema_version"]
    pd.testing.assert_frame_equal(nested.events.drop(columns=drop),
                                  flat.events.drop(columns=drop))


def test_syslog_capture_with_and_without_nul() -> None:
    result = _load("syslog-capture.log")
    assert _counts(result) == (9, 8, 1, 0)
    assert result.rejects[["source_line", "reason"]].values.tolist() == [
        [5, "syslog message without a JSON event"]]
    export = _load("audit-export.json").events
    pd.testing.assert_frame_equal(export.drop(columns=PLACE),
                                  result.events.drop(columns=PLACE))
    assert result.events["source_line"].tolist() == [1, 2, 3, 4, 6, 7, 8, 9]
    assert result.events["raw"][0].startswith("<14>{") and result.events["raw"][0][-1] == "\x00"
    assert result.events["raw"][1].endswith("}")


def test_api_pages_one_per_line_nanoseconds() -> None:
    result = _load("api-pages.jsonl")
    assert _counts(result) == (8, 8, 0, 0)
    ev = result.events
    # each event of a page is a record starting at its page's line
    assert ev["source_line"].tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    # "2025-10-14T08:15:02.123145678Z": nanoseconds truncated to microseconds
    assert ev["timestamp"][0] == pd.Timestamp("2025-10-14 08:15:02.123145", tz="UTC")
    export = _load("audit-export.json").events
    # the export writes the same events in milliseconds: same event_uid, same values
    assert ev["event_uid"].tolist() == export["event_uid"].tolist()
    assert ev["timestamp"].dt.floor("ms").tolist() == export["timestamp"].tolist()
    drop = [*PLACE, "timestamp", "selectel_event_saved_time"]
    pd.testing.assert_frame_equal(export.drop(columns=drop), ev.drop(columns=drop))
    assert json.loads(ev["raw"][0])["event_type"] == "panel.login"


def test_api_pages_concatenated_and_event_without_time() -> None:
    result = _load("api-pages-concatenated.json")
    assert _counts(result) == (3, 2, 1, 0)
    assert result.rejects["reason"].tolist() == [
        "audit event without a readable time (no event_time)"]
    ev = result.events
    assert ev["action"].tolist() == ["secret.list", "iam.user.create"]
    assert ev["source_line"].tolist() == [1, 88]
    assert ev["selectel_details"][0] == '{"count":12}'
    assert ev["selectel_request_parameters"][0] == "limit=100"
    # an unknown top-level field does not reject the event
    assert ev["selectel_new_values"][1] == '{"email":"mallory@example.net","role":"member"}'
    assert ev["category"].tolist() == ["data_access", "access_management"]


def test_overlapping_exports_share_event_uid() -> None:
    export = _load("audit-export.json").events
    script = _load("events.txt")
    assert _counts(script) == (8, 6, 1, 1)
    assert script.rejects["source_line"].tolist() == [6]
    ids = lambda ev: dict(zip(ev["raw"].map(lambda r: json.loads(r)["event_id"]),  # noqa: E731
                              ev["event_uid"], strict=True))
    a, b = ids(export), ids(script.events)
    shared = sorted(set(a) & set(b))
    assert [s[-2:] for s in shared] == ["05", "06", "07", "08"]
    assert all(a[k] == b[k] for k in shared)
    concatenated = _load("api-pages-concatenated.json").events
    assert set(concatenated["event_uid"]) < set(script.events["event_uid"])


def test_damaged_fields_keep_the_event(tmp_path: Path) -> None:
    ev = json.loads((DIR / "events.txt").read_text().splitlines()[0])
    ev["event_time"] = "14.10.2025"
    ev["request"]["remote_address"] = "proxy-7"
    ev["status"] = "queued"
    ev.pop("subject")
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(ev) + "\n")
    result = loaders.load(path)
    assert _counts(result) == (1, 1, 0, 0)
    row = _values(result.events, 0)
    assert row["timestamp"] == pd.Timestamp("2025-10-14 08:25:00.777", tz="UTC")
    assert row["parse_warning"] == (
        "event_time: not an ISO 8601 timestamp: '14.10.2025'; "
        "src_ip: not an IP address: 'proxy-7'")
    assert "src_ip" not in row and "user" not in row
    assert row["outcome"] == "unknown" and row["selectel_status"] == "queued"


def test_flatten_reads_prefixed_keys_inside_and_beside() -> None:
    inside = {"subject": {"subject_is_authorized": False},
              "resource": {"resource_changes_old_values": {"a": 1}}}
    beside = {"subject_is_authorized": False, "resource_changes_old_values": {"a": 1},
              "request_remote_address": "10.0.0.1"}
    for ev in (inside, beside):
        f = flatten(ev)
        assert f["subject_is_authorized"] is False
        assert f["resource_old_values"] == {"a": 1}
    assert flatten(beside)["request_remote_address"] == "10.0.0.1"


@pytest.mark.parametrize(("status", "authorized", "expected"), [
    ("success", None, "success"), ("fail", True, "failure"), ("NA", None, "unknown"),
    ("something-new", None, "unknown"), ("success", False, "denied"), (None, None, "unknown"),
])
def test_status_table(status: str | None, authorized: bool | None, expected: str) -> None:
    assert outcome(status, authorized) == expected


@pytest.mark.parametrize(("event_type", "resource_type", "method", "expected"), [
    ("panel.login", "user", "POST", "authentication"),
    ("panel.session.end", "user", "POST", "session"),
    ("kms.key.decrypt", "key", "POST", "data_access"),
    ("secret.read", "secret", "GET", "data_access"),
    ("iam.user.password.update", "user", "PATCH", "access_management"),
    ("s3.credentials.create", "credentials", "POST", "access_management"),
    ("cloud.volume.create", "volume", "POST", "resource_change"),
    ("cloud.server.list", "server", "GET", "resource_read"),
])
def test_category_table(event_type: str, resource_type: str, method: str,
                        expected: str) -> None:
    assert categorize(event_type, resource_type, method) == expected


def test_sniff_claims_own_fixtures_only() -> None:
    for path in DIR.glob("*"):
        if path.suffix != ".tsv":
            assert LOADER.sniff(read_head(path), path.name), path.name
    k8s = Path(__file__).parent / "fixtures" / "k8s-audit" / "falco_trace_files_k8s_audit.jsonl"
    assert not LOADER.sniff(read_head(k8s), k8s.name)
