"""k8s_audit: plain and wrapped audit Events, stage merging, columns, categories, outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
from loaders.base import Duplicate, Parsed, Reject
from loaders.k8s_audit.details import StageMerger, request_details
from loaders.k8s_audit.loader import categorize, outcome
from loaders.k8s_audit.wrappers import parse_method, parse_resource_name
from loaders.parsing.batch_items import element_spans
from tests.conftest import FIXTURES

DIR = FIXTURES / "k8s-audit"
FALCO = DIR / "falco_trace_files_k8s_audit.jsonl"


def _row(frame: pd.DataFrame, **match: Any) -> dict[str, Any]:
    sel = frame
    for key, value in match.items():
        sel = sel[sel[key] == value]
    assert len(sel) == 1, f"{len(sel)} rows match {match}"
    row = sel.iloc[0].to_dict()
    return {k: (None if v is pd.NA or (isinstance(v, float) and pd.isna(v)) else v)
            for k, v in row.items()}


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC") if "+" in text or text.endswith("Z") \
        else pd.Timestamp(text, tz="UTC")


def test_falco_counts_and_reject() -> None:
    result = loaders.load(FALCO)
    c = result.counts
    # line 24 repeats the request of line 21; line 52 reuses the auditID of line 1 for
    # another user's request: its own event
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (52, 50, 1, 1)
    assert result.rejects["source_line"].tolist() == [49]
    assert result.events["source_line"].tolist().count(52) == 1
    assert "no auditID" in result.rejects["reason"].iloc[0]


def test_falco_clusterrolebinding_full_record() -> None:
    ev = loaders.load(FALCO).events
    row = _row(ev, source_line=2)
    expected = {
        "timestamp": _ts("2018-10-26T14:26:34.238974Z"),
        "source": "k8s_audit",
        "category": "access_management",
        "action": "create clusterrolebindings",
        "outcome": "success",
        "user": "minikube-user",
        "user_id": None,
        "src_ip": "192.168.99.1",
        "user_agent": None,
        "target_type": "clusterrolebindings",
        "target": "clusterrolebindings/some-reader-binding",
        "k8s_namespace": None,
        "k8s_verb": "create",
        "k8s_resource": "clusterrolebindings",
        "k8s_subresource": None,
        "k8s_api_group": "rbac.authorization.k8s.io",
        "k8s_name": "some-reader-binding",
        "k8s_response_code": 201,
        "k8s_stage": "ResponseComplete",
        "k8s_audit_level": "RequestResponse",
        "k8s_decision": "allow",
        "k8s_reason": None,
        "k8s_groups": "system:masters,system:authenticated",
        "k8s_request_uri": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "k8s_role_ref": "ClusterRole/cluster-admin",
        "k8s_subjects": "User/minikube",
        "k8s_wrapper": None,
        "message": "minikube-user create clusterrolebindings "
                   "clusterrolebindings/some-reader-binding from 192.168.99.1: 201 (success)",
    }
    assert {k: row[k] for k in expected} == expected
    assert row["event_uid"] == loaders.base.make_uid("k8s_audit", "\x1f".join((
        "c97244c7-4aec-4714-946a-8204d00ecdca", "create",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "minikube-user", "",
        "2018-10-26T14:26:34.238974Z")), "")


def test_falco_privileged_pod_details() -> None:
    ev = loaders.load(FALCO).events
    row = _row(ev, source_line=21)
    assert row["user"] == "system:serviceaccount:kube-system:replicaset-controller"
    assert row["src_ip"] == "::1"
    assert row["k8s_pod"] == "nginx-deployment-544b59f8b8-ffkxm"
    assert row["target"] == "default/pods/nginx-deployment-544b59f8b8-ffkxm"
    assert (row["k8s_privileged"], row["k8s_host_network"], row["k8s_host_pid"]) == (
        True, False, False)
    assert row["k8s_images"] == "nginx,mysql:latest"
    assert ev["k8s_host_mounts"].dropna().unique().tolist() == ["/etc"]
    assert int(ev["k8s_host_network"].fillna(False).astype(bool).sum()) == 1


def test_falco_exec_attach_kept_at_response_started() -> None:
    ev = loaders.load(FALCO).events
    row = _row(ev, source_line=48)
    assert (row["category"], row["action"], row["k8s_stage"], row["k8s_response_code"],
            row["outcome"]) == ("session", "create pods/exec", "ResponseStarted", 101, "success")
    assert sorted(ev["category"].value_counts().items()) == [
        ("access_management", 15), ("resource_change", 32), ("resource_read", 1),
        ("session", 2)]


def test_eventlist_webhook_batch() -> None:
    result = loaders.load(DIR / "synthetic_eventlist_webhook.json")
    assert (result.counts.read, result.counts.rejected) == (3, 0)
    ev = result.events
    denied = _row(ev, k8s_resource="secrets")
    assert {k: denied[k] for k in ("timestamp", "category", "action", "outcome", "user",
                                   "src_ip", "target", "k8s_decision", "k8s_response_code",
                                   "k8s_wrapper", "k8s_audit_level", "source_line")} == {
        "timestamp": _ts("2024-05-01T10:00:01.000001Z"), "category": "data_access",
        "action": "get secrets", "outcome": "denied", "user": "mallory@example.com",
        "src_ip": "198.51.100.7", "target": "default/secrets/db-password",
        "k8s_decision": "forbid", "k8s_response_code": 403, "k8s_wrapper": "eventlist",
        "k8s_audit_level": "Metadata", "source_line": 6}
    # each element keeps its own line and its exact text
    text = (DIR / "synthetic_eventlist_webhook.json").read_text()
    assert denied["raw"].startswith("{\n") and denied["raw"] in text
    assert json.loads(denied["raw"])["auditID"] == "a1000000-0000-4000-8000-000000000001"
    assert ev["source_line"].tolist() == [6, 43, 122]
    pod = _row(ev, k8s_resource="pods")
    assert (pod["k8s_privileged"], pod["k8s_host_network"], pod["k8s_host_pid"],
            pod["k8s_host_ipc"]) == (True, True, True, False)
    assert pod["k8s_host_mounts"] == "/,/var/run/docker.sock"
    assert pod["k8s_images"] == "alpine:3.19"
    rb = _row(ev, k8s_resource="rolebindings")
    assert rb["k8s_role_ref"] == "ClusterRole/cluster-admin"
    assert rb["k8s_subjects"] == "ServiceAccount/prod/ci,User/bob@example.com"
    assert rb["category"] == "access_management"
    assert rb["k8s_reason"].startswith("RBAC: allowed by ClusterRoleBinding")


def test_pretty_documents_without_apiversion_and_impersonation() -> None:
    ev = loaders.load(DIR / "synthetic_pretty_documents.json").events
    assert ev["source_line"].tolist() == [1, 35, 76]
    first = _row(ev, source_line=1)
    assert (first["category"], first["action"], first["k8s_namespace"]) == (
        "data_access", "list configmaps", "kube-system")
    token = _row(ev, k8s_subresource="token")
    assert token["category"] == "access_management"
    assert token["k8s_impersonated_user"] == "system:serviceaccount:default:builder"
    assert token["message"].startswith(
        "alice@example.com as system:serviceaccount:default:builder create "
        "serviceaccounts/token default/serviceaccounts/default/token")
    assert _row(ev, k8s_verb="delete")["outcome"] == "failure"


def test_shipper_wrapped_records() -> None:
    result = loaders.load(DIR / "synthetic_shipper_wrapped.jsonl")
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (4, 4, 0)
    ev = result.events
    assert sorted(ev["k8s_wrapper"]) == ["log", "message", "message", "message"]
    exec_row = _row(ev, k8s_subresource="exec")
    assert (exec_row["src_ip"], exec_row["k8s_stage"], exec_row["category"],
            exec_row["source_line"]) == ("192.0.2.44", "ResponseStarted", "session", 1)
    assert json.loads(exec_row["raw"])["agent"] == {"type": "filebeat"}
    assert _row(ev, k8s_verb="watch")["category"] == "data_access"
    assert _row(ev, k8s_subresource="portforward")["category"] == "session"
    assert _row(ev, k8s_verb="patch")["outcome"] == "failure"


def test_aks_records() -> None:
    ev = loaders.load(DIR / "synthetic_aks_records.json").events
    assert len(ev) == 2
    row = _row(ev, k8s_resource="secrets")
    assert {k: row[k] for k in ("timestamp", "user", "src_ip", "host", "category",
                                "k8s_wrapper", "k8s_groups", "target")} == {
        "timestamp": _ts("2024-05-01T13:00:00Z"), "user": "masterclient",
        "src_ip": "20.1.2.3", "host": "AKS-PROD", "category": "data_access",
        "k8s_wrapper": "aks", "k8s_groups": "system:masters",
        "target": "default/secrets/tls-cert"}


def test_gke_entries_mapped_to_same_columns() -> None:
    ev = loaders.load(DIR / "synthetic_gke_cloud_logging.jsonl").events
    assert len(ev) == 3
    secret = _row(ev, k8s_resource="secrets")
    assert {k: secret[k] for k in (
        "timestamp", "category", "action", "outcome", "user", "src_ip", "user_agent", "host",
        "target", "k8s_namespace", "k8s_name", "k8s_response_code", "k8s_stage",
        "k8s_wrapper")} == {
        "timestamp": _ts("2024-05-01T14:00:00.123456Z"), "category": "data_access",
        "action": "get secrets", "outcome": "success", "user": "eve@example.com",
        "src_ip": "198.51.100.23",
        "user_agent": "kubectl/v1.29.1 (darwin/arm64) kubernetes/bc401b9",
        "host": "gke-prod", "target": "payments/secrets/stripe-key",
        "k8s_namespace": "payments", "k8s_name": "stripe-key", "k8s_response_code": 200,
        "k8s_stage": None, "k8s_wrapper": "gke"}
    # a GKE entry has no requestURI: its key is insertId, verb, user and time
    assert secret["event_uid"] == loaders.base.make_uid("k8s_audit", "\x1f".join((
        "7a1c2e3f-0001", "get", "", "eve@example.com", "", "2024-05-01T14:00:00.123456Z")), "")
    exec_row = _row(ev, k8s_subresource="exec")
    assert (exec_row["category"], exec_row["k8s_pod"]) == ("session", "api-7d9f")
    denied = _row(ev, k8s_resource="clusterrolebindings")
    assert (denied["outcome"], denied["k8s_response_code"], denied["k8s_decision"],
            denied["k8s_api_group"], denied["category"]) == (
        "denied", 403, "forbid", "rbac.authorization.k8s.io", "access_management")


def test_mixed_plain_aks_gke_file_loads_all_three() -> None:
    result = loaders.load(DIR / "synthetic_mixed_plain_aks_gke.jsonl")
    assert (result.counts.loaded, result.counts.rejected) == (3, 0)
    assert result.events["k8s_wrapper"].fillna("plain").tolist() == ["plain", "aks", "gke"]
    assert result.events["action"].tolist() == ["get configmaps", "update roles",
                                                "patch deployments"]


def test_multistage_keeps_most_complete_stage() -> None:
    result = loaders.load(DIR / "synthetic_multistage.jsonl")
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (8, 4, 0, 4)
    ev = result.events.set_index("source_line")
    assert ev.loc[3, "k8s_stage"] == "ResponseComplete" and ev.loc[3, "action"] == "get pods"
    assert ev.loc[6, "k8s_stage"] == "ResponseComplete"
    assert ev.loc[6, "action"] == "create pods/exec"
    # the exec event keeps the request time, not the end of the session
    assert ev.loc[6, "timestamp"] == _ts("2024-05-01T15:00:00.5Z")
    assert ev.loc[7, "action"] == "delete secrets"
    never = ev.loc[5]
    assert (never["k8s_stage"], never["outcome"], never["k8s_response_code"] is pd.NA) == (
        "RequestReceived", "unknown", True)


def _parsed(key: str, stage: str, line: int) -> Parsed:
    return Parsed(line, f"{key}:{stage}", {"k8s_stage": stage}, native_id=key)


def test_stage_merger_window_is_bounded() -> None:
    merger = StageMerger(window=2, memory=10)
    out = list(merger.push(_parsed("a", "RequestReceived", 1)))
    assert out == []
    out = list(merger.push(_parsed("b", "ResponseComplete", 2)))
    out += list(merger.push(_parsed("c", "ResponseComplete", 3)))
    assert [i.line for i in out] == [2, 3]
    out = list(merger.push(_parsed("d", "ResponseComplete", 4)))
    # "a" waited for two later records: it is yielded as it is
    assert [(type(i).__name__, i.line) for i in out] == [("Parsed", 4), ("Parsed", 1)]
    late = list(merger.push(_parsed("a", "ResponseComplete", 5)))
    assert len(late) == 1 and isinstance(late[0], Duplicate)
    assert "already loaded (stage RequestReceived)" in late[0].reason
    assert list(merger.flush()) == []
    reject = Reject(6, "bad", "x")
    assert list(merger.push(reject)) == [reject]


@pytest.mark.parametrize(("verb", "resource", "sub", "category"), [
    ("get", "secrets", "", "data_access"),
    ("watch", "configmaps", "", "data_access"),
    ("delete", "secrets", "", "resource_change"),
    ("create", "rolebindings", "", "access_management"),
    ("get", "clusterroles", "", "access_management"),
    ("create", "serviceaccounts", "token", "access_management"),
    ("create", "pods", "exec", "session"),
    ("get", "pods", "portforward", "session"),
    ("get", "services", "proxy", "session"),
    ("patch", "deployments", "", "resource_change"),
    ("list", "pods", "", "resource_read"),
])
def test_categorize(verb: str, resource: str, sub: str, category: str) -> None:
    assert categorize(verb, resource, sub) == category


def test_outcome() -> None:
    assert outcome(403, "allow") == "denied"
    assert outcome(200, "forbid") == "denied"
    assert outcome(None, None) == "unknown"
    assert outcome(101, "allow") == "success"
    assert outcome(422, None) == "failure"


def test_gke_method_and_resource_parsing() -> None:
    assert parse_method("io.k8s.apps.v1.deployments.patch") == ("apps", "deployments", "",
                                                                "patch")
    assert parse_method("io.k8s.core.v1.serviceaccounts.token.create") == (
        None, "serviceaccounts", "token", "create")
    assert parse_resource_name("core/v1/namespaces/foo", "namespaces") == {
        "resource": "namespaces", "name": "foo"}
    assert parse_resource_name("apps/v1/namespaces/web/deployments/front", "deployments") == {
        "apiGroup": "apps", "namespace": "web", "resource": "deployments", "name": "front"}


def test_request_details_for_workload_templates() -> None:
    cronjob = {"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "hostIPC": True,
        "initContainers": [{"image": "busybox"}],
        "containers": [{"image": "miner:1"}, {"image": "busybox"}]}}}}}}
    assert request_details("cronjobs", cronjob) == {
        "k8s_privileged": False, "k8s_host_network": False, "k8s_host_pid": False,
        "k8s_host_ipc": True, "k8s_host_mounts": None, "k8s_images": "busybox,miner:1"}
    assert request_details("configmaps", {"data": {"a": "b"}}) == {}
    assert request_details("pods", "not an object") == {}


def _write(tmp_path: Path, name: str, lines: list[Any]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_bad_records_are_rejected_with_reasons(tmp_path: Path) -> None:
    good = json.loads(FALCO.read_text().splitlines()[0])
    no_time = {k: v for k, v in good.items()
               if k not in ("requestReceivedTimestamp", "stageTimestamp", "timestamp",
                            "metadata")} | {"auditID": "x-1"}
    path = _write(tmp_path, "audit.jsonl", [
        good,
        {"message": "plain text, no event here", "auditID_hint": 1},
        {"message": "{not json", "stage": "x"},
        {"category": "kube-audit", "properties": {"log": 42}},
        {"protoPayload": {"serviceName": "storage.googleapis.com", "methodName": "x"}},
        no_time,
        {"kind": "EventList", "items": [good | {"auditID": "y-1"}, 7]},
    ])
    result = loaders.load(path, format="k8s_audit")
    reasons = result.rejects["reason"].tolist()
    assert (result.counts.read, result.counts.loaded, result.counts.rejected) == (8, 2, 6)
    assert "no known wrapper" in reasons[0]
    assert "message holds no audit Event: invalid JSON" in reasons[1]
    assert "properties.log is int" in reasons[2]
    assert "not a GKE Kubernetes audit entry" in reasons[3]
    assert "without a readable timestamp" in reasons[4]
    assert "a JSON int" in reasons[5]


def test_bad_timestamp_falls_back_with_warning(tmp_path: Path) -> None:
    good = json.loads(FALCO.read_text().splitlines()[0])
    path = _write(tmp_path, "a.jsonl", [good | {"requestReceivedTimestamp": "yesterday"}])
    ev = loaders.load(path).events
    assert ev["timestamp"].tolist() == [datetime(2018, 10, 25, 13, 58, 49, 736141, tzinfo=UTC)]
    assert "requestReceivedTimestamp" not in ev["parse_warning"].iloc[0]
    assert "not an ISO 8601 timestamp" in ev["parse_warning"].iloc[0]


def test_element_spans_only_when_they_match_the_parsed_value() -> None:
    text = '{"kind": "EventList",\n "items": [\n  {"a": "]"},\n\n  [1, 2]\n ]\n}'
    assert element_spans(text, "items", 2) == [(2, '{"a": "]"}'), (4, "[1, 2]")]
    assert element_spans(text, "items", 3) is None
    assert element_spans(text, "items", 1) is None
    assert element_spans('{"records": []}', "items", 0) is None
    escaped = '{"note": "\\"items\\": [1]", "items": [{"b": 1}]}'
    assert element_spans(escaped, "items", 1) == [(0, '{"b": 1}')]


@pytest.mark.parametrize("damage", [
    ("user", {"username": "\\ud800-admin"}),  # a lone surrogate escape: not storable text
    ("responseStatus", {"code": 10**30}),  # beyond 64 bits
])
def test_unstorable_value_rejects_its_record_not_the_file(tmp_path: Path,
                                                          damage: tuple[str, Any]) -> None:
    events = [json.loads(x) for x in FALCO.read_text().splitlines() if '"auditID"' in x][:5]
    lines = [json.dumps(ev) for ev in events]
    key, value = damage
    bad = dict(events[2], **{key: value})
    lines[2] = json.dumps(bad).replace("\\\\ud800", "\\ud800")
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = loaders.load(path)
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (5, 4, 1, 0)
    assert result.status == "ok"
    assert result.rejects["source_line"].tolist() == [3]
    assert result.rejects["reason"].iloc[0].startswith("cannot store record: ")
    assert sorted(result.events["source_line"]) == [1, 2, 4, 5]
