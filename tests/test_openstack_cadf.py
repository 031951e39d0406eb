"""openstack_cadf: Keystone notifications, keystonemiddleware audit events, oslo v2 wrapper."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import loaders
from loaders.openstack_cadf import LOADER, categorize, outcome
from loaders.parsing.inputs import read_head

DIR = Path(__file__).parent / "fixtures" / "openstack-cadf"
PLACE = ["raw", "source_file", "source_line", "ingest_id"]


def _counts(result: loaders.LoadResult) -> tuple[int, int, int, int]:
    c = result.counts
    return c.read, c.loaded, c.rejected, c.duplicate


def _present(row: pd.Series) -> dict[str, object]:
    return {k: v for k, v in row.to_dict().items()
            if v is not None and not (isinstance(v, float) and pd.isna(v)) and v is not pd.NaT
            and k not in PLACE and k != "event_uid"}


def test_keystone_notifications() -> None:
    result = loaders.load(DIR / "keystone-event-notifications.jsonl")
    assert result.source == "openstack_cadf"
    # the docs reuse one CADF id: "federated authenticate" repeats "authenticate"
    assert _counts(result) == (6, 4, 1, 1)
    assert result.rejects[["source_line", "reason"]].values.tolist() == [[
        6, "notification payload is not a CADF event (no action or eventType; Keystone "
           "writes CADF payloads only with notification_format = cadf)"]]
    ev = result.events
    assert list(zip(ev["action"], ev["category"], ev["outcome"], strict=True)) == [
        ("created.project", "access_management", "success"),
        ("authenticate", "authentication", "success"),
        ("created.role_assignment", "access_management", "success"),
        ("authenticate", "authentication", "denied"),  # reasonCode 401: password expired
    ]
    assert _present(ev.iloc[3]) == {
        "timestamp": pd.Timestamp("2016-11-11 18:31:11.156356", tz="UTC"),
        "source": "openstack_cadf",
        "category": "authentication",
        "action": "authenticate",
        "outcome": "denied",
        "user_id": "73a19db6-e26b-5313-a6df-58d297fa652e",
        "src_ip": "127.0.0.1",
        "host": "host1234",
        "target_type": "service/security/account/user",
        "target": "c23e6cb7-abe0-5e42-b7f7-4c4104ea77b0",
        "message": "73a19db6-e26b-5313-a6df-58d297fa652e authenticate "
                   "service/security/account/user c23e6cb7-abe0-5e42-b7f7-4c4104ea77b0 from "
                   "127.0.0.1 -> failure (401)",
        "cadf_event_id": "78cd795f-5850-532f-9ab1-5adb04e30c0f",
        "cadf_event_type": "activity",
        "cadf_initiator_type": "service/security/account/user",
        "cadf_message_id": "9a97e9d0-fef1-4852-8e82-bb693358bc46",
        "cadf_notification_type": "identity.authenticate",
        "cadf_observer_id": "9bdddeda6a0b451e9e0439646e532afd",
        "cadf_observer_type": "service/security",
        "cadf_outcome": "failure",
        "cadf_publisher_id": "identity.host1234",
        "cadf_reason_code": "401",
        "cadf_reason_type": "The password is expired and needs to be reset for user: "
                            "ed1ab0b40f284fb48fea9e25d0d157fc",
        "cadf_target_id": "c23e6cb7-abe0-5e42-b7f7-4c4104ea77b0",
    }
    assert ev["cadf_resource_info"][0] == "671da331c47d4e29bb6ea1d270154ec3"
    assert ev["user_agent"][0] == "curl/7.22.0(x86_64-pc-linux-gnu)"


def test_middleware_request_and_response_are_two_events() -> None:
    result = loaders.load(DIR / "octavia-api-audit.json")
    assert _counts(result) == (2, 2, 0, 0)
    ev = result.events
    assert ev["source_line"].tolist() == [1, 50]
    assert ev["cadf_event_id"].nunique() == 1 and ev["event_uid"].nunique() == 2
    assert ev["outcome"].tolist() == ["unknown", "success"]  # pending, then the response
    assert _present(ev.iloc[1]) == {
        "timestamp": pd.Timestamp("2018-10-11 22:42:22.720112", tz="UTC"),
        "source": "openstack_cadf",
        "category": "resource_read",
        "action": "read/list",
        "outcome": "success",
        "user": "admin",
        "user_id": "2af901396a424d5ca9dffa725226e8c7",
        "src_ip": "10.21.21.53",
        "user_agent": "openstacksdk/0.17.2 keystoneauth1/3.11.0 python-requests/2.19.1 "
                      "CPython/2.7.12",
        "target_type": "service/load-balancer/loadbalancers",
        "target": "octavia",
        "message": "admin read/list service/load-balancer/loadbalancers octavia from "
                   "10.21.21.53 -> success (200)",
        "cadf_correlation_id": "e5b34bc3-4837-54fa-9892-8e65a9a2e73a",
        "cadf_event_id": "8cf14af5-246e-5739-a11e-513ca13b7d36",
        "cadf_event_type": "activity",
        "cadf_initiator_type": "service/security/account/user",
        "cadf_message_id": "7cd89dce-af6e-40c5-8634-e87d1ed32a3c",
        "cadf_notification_type": "audit.http.response",
        "cadf_observer_id": "target",
        "cadf_outcome": "success",
        "cadf_project_id": "90168d185e504b5580884a235ba31612",
        "cadf_publisher_id": "uwsgi",
        "cadf_reason_code": "200",
        "cadf_reason_type": "HTTP",
        "cadf_request_path": "/load-balancer/v2.0/lbaas/loadbalancers",
        "cadf_target_id": "octavia",
    }


def test_bare_events() -> None:
    result = loaders.load(DIR / "cadf-bare.jsonl")
    assert _counts(result) == (6, 4, 2, 0)
    assert result.rejects[["source_line", "reason"]].values.tolist() == [
        [5, "CADF event without a readable eventTime"],
        [6, "notification payload is not a CADF event (no action or eventType; Keystone "
            "writes CADF payloads only with notification_format = cadf)"],
    ]
    ev = result.events
    assert list(zip(ev["action"], ev["category"], ev["outcome"], strict=True)) == [
        ("delete", "resource_change", "success"),
        ("read", "data_access", "success"),
        ("create", "access_management", "denied"),
        ("update", "resource_change", "unknown"),
    ]
    row = ev.iloc[2]
    assert row["timestamp"] == pd.Timestamp("2025-10-14 08:36:10.5", tz="UTC")
    assert (row["user"], row["src_ip"], row["cadf_domain_id"], row["cadf_reason_code"]) == (
        "ops-admin", "10.21.21.53", "default", "403")
    assert row["message"] == ("ops-admin create service/identity/users keystone from "
                              "10.21.21.53 -> failure (403)")
    assert pd.isna(row["host"]) and pd.isna(row["cadf_publisher_id"])


def test_oslo_v2_wrapper_gives_the_same_events() -> None:
    wrapped = loaders.load(DIR / "oslo-messaging-v2.jsonl")
    assert _counts(wrapped) == (3, 2, 1, 0)
    assert wrapped.rejects["reason"][0].startswith("oslo.message is not JSON: ")
    plain = loaders.load(DIR / "keystone-event-notifications.jsonl").events
    same = plain.set_index("cadf_event_id").loc[
        ["78cd795f-5850-532f-9ab1-5adb04e30c0f"]].reset_index()
    got = wrapped.events.iloc[[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(same.drop(columns=PLACE)[got.drop(columns=PLACE).columns],
                                  got.drop(columns=PLACE))
    assert got["event_uid"][0] == same["event_uid"][0]


@pytest.mark.parametrize(("action", "target_type", "expected"), [
    ("authenticate", "service/security/account/user", "authentication"),
    ("deleted.user", "data/security/account/user", "access_management"),
    ("updated.role", "data/security/role", "access_management"),
    ("read", "service/key-manager/secrets", "data_access"),
    ("read/list", "service/compute/servers", "resource_read"),
    ("update", "service/storage/block/volumes", "resource_change"),
])
def test_category_table(action: str, target_type: str, expected: str) -> None:
    assert categorize(action, target_type) == expected


@pytest.mark.parametrize(("value", "code", "expected"), [
    ("success", "200", "success"), ("failure", "500", "failure"), ("pending", None, "unknown"),
    ("failure", "403", "denied"), ("failure", "401", "denied"), ("odd", None, "unknown"),
])
def test_outcome_table(value: str, code: str | None, expected: str) -> None:
    assert outcome(value, code) == expected


def test_sniff_claims_own_fixtures_only() -> None:
    for path in DIR.glob("*"):
        if path.suffix != ".tsv":
            assert LOADER.sniff(read_head(path), path.name), path.name
    for other in (Path(__file__).parent / "fixtures").rglob("*"):
        if other.is_file() and "openstack-cadf" not in str(other) and other.suffix != ".tsv":
            assert not LOADER.sniff(read_head(other), other.name), other
