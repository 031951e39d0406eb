"""mks_cluster: managed-Kubernetes cluster tasks in both API shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import loaders
from loaders.base import make_uid
from tests.conftest import FIXTURES
from tests.helpers import one_row as _row

DIR = FIXTURES / "mks-cluster"
CLUSTER = "9be7559b-55d8-4f65-9230-6a22b985ff73"
NODEGROUP = "a2c6e0b6-9b1d-4a8f-8f0e-3c2d1e0f9a87"




def test_tasks_list_full_record() -> None:
    result = loaders.load(DIR / "synthetic_tasks_list.json")
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (5, 5, 0, 0)
    row = _row(result.events, action="ROTATE_CERTS")
    task_id = "0a1b2c3d-0000-4000-8000-000000000003"
    expected = {
        "timestamp": pd.Timestamp("2024-05-01T22:15:00Z"), "source": "mks_cluster",
        "category": "cluster_operation", "action": "ROTATE_CERTS", "outcome": "failure",
        "host": CLUSTER, "target_type": "cluster", "target": CLUSTER,
        "mks_task_id": task_id, "mks_cluster_id": CLUSTER, "mks_nodegroup_id": None,
        "mks_status": "ERROR", "mks_updated_at": pd.Timestamp("2024-05-01T22:16:10Z"),
        "mks_duration_seconds": 70.0, "source_line": 20, "parse_warning": None,
        "message": f"ROTATE_CERTS (cluster PKI certificates rotated) on cluster {CLUSTER}: "
                   "ERROR after 70s",
        "event_uid": make_uid("mks_cluster", f"{task_id}:ERROR:2024-05-01T22:16:10Z", ""),
    }
    assert {k: row[k] for k in expected} == expected
    assert json.loads(row["raw"])["type"] == "ROTATE_CERTS"


def test_statuses_types_and_nodegroups() -> None:
    ev = loaders.load(DIR / "synthetic_tasks_list.json").events
    assert dict(zip(ev["action"], ev["outcome"], strict=True)) == {
        "CREATE_CLUSTER": "success", "NODE_GROUP_RESIZE": "success",
        "ROTATE_CERTS": "failure", "UPGRADE_MINOR_VERSION": "unknown",
        "RESTORE_FROM_BACKUP": "unknown"}
    resize = _row(ev, action="NODE_GROUP_RESIZE")
    assert (resize["target_type"], resize["target"], resize["mks_nodegroup_id"]) == (
        "nodegroup", f"{CLUSTER}/{NODEGROUP}", NODEGROUP)
    unknown = _row(ev, action="RESTORE_FROM_BACKUP")
    assert (unknown["mks_status"], unknown["mks_updated_at"],
            unknown["mks_duration_seconds"]) == ("PAUSED", None, None)
    assert _row(ev, action="UPGRADE_MINOR_VERSION")["mks_duration_seconds"] is None


def test_task_per_line_states() -> None:
    result = loaders.load(DIR / "synthetic_task_per_line.jsonl")
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (5, 4, 0, 1)
    ev = result.events
    reinstall = ev[ev["action"] == "NODE_REINSTALL"]
    assert reinstall["mks_status"].tolist() == ["IN_PROGRESS", "DONE"]
    assert reinstall["outcome"].tolist() == ["unknown", "success"]
    assert reinstall["source_line"].tolist() == [1, 2]
    assert _row(ev, action="DELETE_CLUSTER")["timestamp"] == pd.Timestamp("2024-05-04T00:00:00Z")


def test_bad_tasks(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [
        {"task": {"id": "t1", "cluster_id": "c", "type": "X", "status": "DONE"}},
        {"task": {"id": "t2", "cluster_id": "c", "type": "X", "status": "DONE",
                  "started_at": "nope", "updated_at": "2024-05-01T00:00:00Z"}},
        {"tasks": [{"id": "t3"}]},
    ]) + "\n")
    result = loaders.load(path, format="mks_cluster")
    assert (result.counts.loaded, result.counts.rejected) == (1, 2)
    reasons = result.rejects["reason"].tolist()
    assert "without a readable started_at" in reasons[0]
    assert "not a cluster task" in reasons[1]
    kept = result.events.iloc[0]
    assert kept["timestamp"] == pd.Timestamp("2024-05-01T00:00:00Z")
    assert "started_at: not an ISO 8601 timestamp" in kept["parse_warning"]
