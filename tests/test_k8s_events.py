"""k8s_events: core/v1 and events.k8s.io/v1 Events, lists and watch streams."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import loaders
from loaders.base import make_uid
from tests.conftest import FIXTURES
from tests.helpers import one_row as _row

DIR = FIXTURES / "k8s-events"




def test_fluentbit_eventlist_full_record() -> None:
    result = loaders.load(DIR / "fluentbit_eventlist_v1_with_creationTimestamp.json")
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (1, 1, 0, 0)
    row = _row(result.events, action="FailedScheduling")
    expected = {
        "timestamp": pd.Timestamp("2023-12-24T13:37:16.335172Z"),
        "source": "k8s_events", "category": "system", "action": "FailedScheduling",
        "outcome": "failure", "user": None, "host": "default-scheduler-minikube",
        "target_type": "Pod", "target": "default/fluent-bit-78945dccd8-2g7qg",
        "k8s_namespace": "default", "k8s_pod": "fluent-bit-78945dccd8-2g7qg",
        "k8s_name": "fluent-bit-78945dccd8-2g7qg",
        "k8s_event_type": "Warning", "k8s_event_count": None,
        "k8s_event_source": "default-scheduler",
        "k8s_event_first_seen": pd.Timestamp("2023-12-24T13:37:16.335172Z"),
        "k8s_involved_kind": "Pod", "k8s_watch_type": None, "source_line": 8,
        "message": "Warning FailedScheduling Pod default/fluent-bit-78945dccd8-2g7qg by "
                   "default-scheduler: 0/1 nodes are available: 1 Insufficient cpu. "
                   "preemption: 0/1 nodes are available: 1 No preemption victims found for "
                   "incoming pod..",
        "event_uid": make_uid("k8s_events", "6e3013d5-a79b-4dc4-b6c0-6b652302672e:176761", ""),
    }
    assert {k: row[k] for k in expected} == expected
    assert json.loads(row["raw"])["metadata"]["name"] == (
        "fluent-bit-78945dccd8-2g7qg.17a3c80ba0453aee")
    text = (DIR / "fluentbit_eventlist_v1_with_creationTimestamp.json").read_text()
    assert row["raw"] in text and row["raw"].startswith("{\n        \"metadata\"")


def test_kubectl_core_v1_list() -> None:
    ev = loaders.load(DIR / "synthetic_kubectl_get_events_core_v1.json").events
    assert len(ev) == 4
    backoff = _row(ev, action="BackOff")
    assert {k: backoff[k] for k in ("timestamp", "k8s_event_first_seen", "k8s_event_count",
                                    "outcome", "host", "target", "k8s_event_source")} == {
        "timestamp": pd.Timestamp("2024-05-01T10:04:30Z"),
        "k8s_event_first_seen": pd.Timestamp("2024-05-01T10:00:00Z"),
        "k8s_event_count": 5, "outcome": "failure", "host": "worker-1",
        "target": "payments/api-7d9f:spec.containers{api}", "k8s_event_source": "kubelet"}
    scheduled = _row(ev, action="Scheduled")
    assert scheduled["timestamp"] == pd.Timestamp("2024-05-01T09:59:58.123456Z")
    assert scheduled["outcome"] == "success"
    node = _row(ev, action="NodeNotReady")
    assert (node["target"], node["k8s_namespace"], node["k8s_pod"], node["target_type"]) == (
        "worker-1", None, None, "Node")
    only_created = _row(ev, action="ScalingReplicaSet")
    assert only_created["timestamp"] == pd.Timestamp("2024-05-01T10:06:00Z")
    assert only_created["k8s_event_first_seen"] is None


def test_events_k8s_io_v1() -> None:
    ev = loaders.load(DIR / "synthetic_events_k8s_io_v1.json").events
    mount = _row(ev, action="FailedMount")
    assert {k: mount[k] for k in ("timestamp", "k8s_event_first_seen", "k8s_event_count",
                                  "k8s_event_source", "host", "outcome", "message")} == {
        "timestamp": pd.Timestamp("2024-05-01T11:30:00.75Z"),
        "k8s_event_first_seen": pd.Timestamp("2024-05-01T11:00:00.25Z"),
        "k8s_event_count": 12, "k8s_event_source": "kubelet", "host": "worker-3",
        "outcome": "failure",
        "message": 'Warning FailedMount Pod data/db-0 (x12) by kubelet: MountVolume.SetUp '
                   'failed for volume "creds" : secret "db-creds" not found'}
    pulled = _row(ev, action="Pulled")
    assert (pulled["timestamp"], pulled["k8s_event_count"], pulled["host"]) == (
        pd.Timestamp("2024-05-01T11:33:00Z"), 3, "worker-3")


def test_watch_stream_versions() -> None:
    result = loaders.load(DIR / "synthetic_watch_stream.jsonl")
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (3, 2, 0, 1)
    ev = result.events
    assert ev["k8s_watch_type"].tolist() == ["ADDED", "MODIFIED"]
    assert ev["k8s_event_count"].tolist() == [1, 4]
    assert ev["source_line"].tolist() == [1, 3]
    assert ev["timestamp"].tolist() == [pd.Timestamp("2024-05-01T12:00:00Z"),
                                        pd.Timestamp("2024-05-01T12:01:30Z")]


def test_watch_error_and_bad_events_rejected(tmp_path: Path) -> None:
    path = tmp_path / "watch.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [
        {"type": "ERROR", "object": {"kind": "Status", "message": "too old resource version",
                                     "code": 410}},
        {"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "x"}}},
        {"type": "ADDED", "object": {"kind": "Event", "reason": "Killing",
                                     "involvedObject": {"kind": "Pod", "name": "p"},
                                     "lastTimestamp": "soon"}},
        {"kind": "Event", "reason": "Started", "involvedObject": {"kind": "Pod", "name": "p"},
         "lastTimestamp": "bad", "firstTimestamp": "2024-05-01T00:00:00Z"},
    ]) + "\n")
    result = loaders.load(path, format="k8s_events")
    reasons = result.rejects["reason"].tolist()
    assert (result.counts.loaded, result.counts.rejected) == (1, 3)
    assert reasons[0] == "watch stream error: too old resource version"
    assert "not a Kubernetes Event" in reasons[1]
    assert "without a readable time" in reasons[2]
    kept = result.events.iloc[0]
    assert kept["timestamp"] == pd.Timestamp("2024-05-01T00:00:00Z")
    assert "lastTimestamp" in kept["parse_warning"]


def test_gke_exported_event(tmp_path: Path) -> None:
    event = {"kind": "Event", "reason": "Killing", "type": "Normal",
             "metadata": {"uid": "u1", "resourceVersion": "9"},
             "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p"},
             "message": "Stopping container c", "lastTimestamp": "2024-05-01T00:00:00Z"}
    path = tmp_path / "gke_events.jsonl"
    path.write_text(json.dumps({"insertId": "i", "jsonPayload": event,
                                "logName": "projects/p/logs/events"}) + "\n")
    ev = loaders.load(path).events
    assert (ev["action"].tolist(), ev["k8s_pod"].tolist()) == (["Killing"], ["p"])
    assert ev["event_uid"].iloc[0] == make_uid("k8s_events", "u1:9", "")


def test_sniff_does_not_claim_audit_events_about_events() -> None:
    audit = json.dumps({"auditID": "a", "verb": "create", "objectRef": {"resource": "events"},
                        "requestObject": {"involvedObject": {"kind": "Pod"},
                                          "reason": "Pulled"}}).encode()
    assert loaders.detect(audit).name == "k8s_audit"
