"""k8s_container: CRI and docker json-file lines, partial joining, path metadata, lifting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import loaders
from loaders.base import LoadOptions, Tuning
from loaders.k8s_container import loader as k8s_container
from loaders.k8s_container.loader import PathInfo, lift, path_info
from tests.conftest import FIXTURES

DIR = FIXTURES / "k8s-container"
PODS = DIR / ("var/log/pods/payments_api-7d9f5c6b8-x2x7p_0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
              "/api/0.log")
CID = "4c2b21624d4488ea8305bec91bb58135e840ab50b779da3db19ddf87864a760e"
DID = "e7d0b7ea5ccf08366e2b0c8afa2318674e8aefe802315378125d2bb83fe3110c"


def _row(frame: pd.DataFrame, line: int) -> dict[str, Any]:
    sel = frame[frame["source_line"] == line]
    assert len(sel) == 1
    return {k: (None if v is pd.NA or (isinstance(v, float) and pd.isna(v)) else v)
            for k, v in sel.iloc[0].to_dict().items()}


def test_plaso_cri_full_record_and_join() -> None:
    result = loaders.load(DIR / "plaso_cri.log")
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (16, 16, 0, 0)
    ev = result.events
    row = _row(ev, 8)
    expected = {
        "timestamp": pd.Timestamp("2024-04-16T06:23:05.887Z"),
        "source": "k8s_container", "category": "log", "action": "stdout",
        "outcome": "unknown", "k8s_stream": "stdout", "k8s_namespace": None, "k8s_pod": None,
        "k8s_container": None, "k8s_log_level": None, "k8s_log_msg": None,
        "message": '10.0.2.15:37674 - - [Tue, 16 Apr 2024 06:23:05 UTC] "GET / HTTP/1.0" '
                   "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/121.0.0.0 Safari/537.36",
        "raw": "2024-04-16T06:23:05.887Z stdout F 10.0.2.15:37674 - - [Tue, 16 Apr 2024 "
               '06:23:05 UTC] "GET / HTTP/1.0" Mozilla/5.0 (X11; Linux x86_64) '
               "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    }
    assert {k: row[k] for k in expected} == expected
    # the stdout P on line 1 is closed by the next stdout F (line 6), across stderr lines
    joined = _row(ev, 1)
    assert joined["message"].startswith("log content 110.0.2.1:59838 - - ")
    assert joined["raw"].count("\n") == 1
    assert _row(ev, 2)["message"] == "log content 2"
    assert _row(ev, 2)["k8s_stream"] == "stderr"


def test_docker_json_plaso_and_fluentbit() -> None:
    ev = loaders.load(DIR / "plaso_docker_container-json.log").events
    assert len(ev) == 10
    first = _row(ev, 1)
    assert first["timestamp"] == pd.Timestamp("2016-01-07T16:49:10Z")
    assert first["message"] == ("\x1b]0;root@e7d0b7ea5ccf: /home/plaso\x07"
                                "root@e7d0b7ea5ccf:/home/plaso# ls")
    assert _row(ev, 10)["timestamp"] == pd.Timestamp("2016-01-07T16:49:10.237222Z")
    fb = loaders.load(DIR / "fluentbit_k8s_stdout_stderr.log").events
    assert fb["k8s_stream"].tolist() == ["stdout", "stderr"]
    assert fb["message"].iloc[1] == ("[2019-04-05T14:54:23.584269761] Container 1 is logging "
                                     "on stderr")


def test_pods_path_partials_and_lifting() -> None:
    result = loaders.load(PODS)
    c = result.counts
    assert (c.read, c.loaded, c.rejected) == (8, 7, 1)
    assert result.rejects["source_line"].tolist() == [9]
    assert "not a CRI log line" in result.rejects["reason"].iloc[0]
    ev = result.events
    assert set(ev["k8s_namespace"]) == {"payments"}
    assert set(ev["k8s_pod"]) == {"api-7d9f5c6b8-x2x7p"}
    assert set(ev["k8s_container"]) == {"api"}
    assert set(ev["k8s_pod_uid"]) == {"0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}
    joined = _row(ev, 2)
    assert {k: joined[k] for k in ("timestamp", "k8s_stream", "message", "k8s_log_level",
                                   "k8s_log_msg", "target", "target_type")} == {
        "timestamp": pd.Timestamp("2024-05-01T10:00:01.1Z"), "k8s_stream": "stdout",
        "message": '{"level":"error","msg":"payment failed for order 12345: card declined",'
                   '"user":"u-42"}',
        "k8s_log_level": "error", "k8s_log_msg": "payment failed for order 12345: card declined",
        "target": "payments/api-7d9f5c6b8-x2x7p/api", "target_type": "container"}
    assert joined["raw"].split("\n")[1].startswith("2024-05-01T10:00:01.100000200Z stdout P")
    logfmt = _row(ev, 3)
    assert (logfmt["k8s_log_level"], logfmt["k8s_log_msg"]) == ("warning",
                                                               "retrying upstream call")
    klog = _row(ev, 6)
    assert (klog["k8s_log_level"], klog["k8s_log_msg"]) == (
        "error", "failed to list *v1.Secret: secrets is forbidden")
    assert _row(ev, 7)["timestamp"] == pd.Timestamp("2024-05-01T07:00:03Z")
    assert _row(ev, 8)["message"] == ""
    tail = _row(ev, 10)
    assert tail["message"] == "tail that never gets its F line"
    assert "never completed" in tail["parse_warning"]


def test_containers_path() -> None:
    path = DIR / f"var/log/containers/web-0_shop_nginx-{CID}.log"
    ev = loaders.load(path).events
    assert len(ev) == 3
    row = _row(ev, 2)
    assert {k: row[k] for k in ("k8s_namespace", "k8s_pod", "k8s_container",
                                "k8s_container_id", "k8s_pod_uid", "action")} == {
        "k8s_namespace": "shop", "k8s_pod": "web-0", "k8s_container": "nginx",
        "k8s_container_id": CID, "k8s_pod_uid": None, "action": "stdout"}
    assert "/../../etc/passwd" in row["message"]


def test_docker_path_and_split_lines() -> None:
    path = DIR / f"var/lib/docker/containers/{DID}/{DID}-json.log"
    result = loaders.load(path)
    assert (result.counts.read, result.counts.loaded) == (3, 3)
    ev = result.events
    assert set(ev["k8s_container_id"]) == {DID}
    assert _row(ev, 1)["message"] == "first half of a long line, second half"
    assert _row(ev, 3)["k8s_log_level"] == "error"
    assert _row(ev, 3)["k8s_log_msg"] == "cannot open config"
    assert _row(ev, 4)["message"] == "done"


def test_fluentbit_kubernetes_metadata() -> None:
    ev = loaders.load(DIR / "synthetic_fluentbit_kubernetes.jsonl").events
    row = _row(ev, 2)
    assert {k: row[k] for k in ("timestamp", "host", "k8s_namespace", "k8s_pod",
                                "k8s_container", "k8s_container_id", "k8s_pod_uid",
                                "k8s_stream", "message")} == {
        "timestamp": pd.Timestamp("2024-05-01T12:00:01.5Z"), "host": "worker-2",
        "k8s_namespace": "shop", "k8s_pod": "orders-5f7c9", "k8s_container": "orders",
        "k8s_container_id": "ab12cd34ef56", "k8s_pod_uid": "9a8b7c6d-0000-1111-2222-333344445555",
        "k8s_stream": "stderr", "message": "panic: runtime error: index out of range"}


@pytest.mark.parametrize(("display", "expected"), [
    ("/var/log/pods/kube-system_coredns-5dd5756b68-abcde_1a2b3c4d-0000-1111-2222-333344445555"
     "/coredns/3.log.20240501-101010.gz",
     PathInfo("kube-system", "coredns-5dd5756b68-abcde", "1a2b3c4d-0000-1111-2222-333344445555",
              "coredns")),
    (f"evidence.tar.gz!var/log/containers/web-0_shop_nginx-{CID}.log",
     PathInfo("shop", "web-0", None, "nginx", CID)),
    (f"C:\\case\\docker\\containers\\{DID}\\{DID}-json.log.1", PathInfo(container_id=DID)),
    ("/tmp/app.log", PathInfo()),
])
def test_path_info(display: str, expected: PathInfo) -> None:
    assert path_info(display) == expected


def test_lift() -> None:
    assert lift('{"severity":"WARNING","message":"slow"}') == ("warning", "slow")
    assert lift('{"msg":"no level"}') == (None, None)
    assert lift("level=info msg=started port=80") == ("info", "started")
    assert lift("W0501 10:00:00.123456   12 client.go:3] throttled") == ("warning", "throttled")
    assert lift("plain text") == (None, None)


def test_joining_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    lines = [f"2024-05-01T10:00:0{i}Z stdout P part{i}" for i in range(5)]
    path.write_text("\n".join([*lines, "2024-05-01T10:00:09Z stdout F end"]) + "\n")
    options = LoadOptions(tuning=Tuning(container_max_joined_lines=3))
    ev = loaders.load(path, options=options).events
    assert ev["message"].tolist() == ["part0part1part2", "part3part4end"]
    assert "cut after 3 lines" in ev["parse_warning"].iloc[0]


def test_bad_docker_records_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    path.write_text("\n".join([
        json.dumps({"log": "ok\n", "stream": "stdout", "time": "2024-05-01T10:00:00Z"}),
        json.dumps({"log": 5, "stream": "stdout"}),
        '{"log": "broken',
        json.dumps({"log": "no time\n", "stream": "stdout", "time": "yesterday"}),
    ]) + "\n")
    result = loaders.load(path)
    assert (result.counts.loaded, result.counts.rejected) == (1, 3)
    reasons = result.rejects["reason"].tolist()
    assert "without a \"log\" string" in reasons[0]
    assert "invalid docker json-file record" in reasons[1]
    assert "without a readable time" in reasons[2]


def test_sniff_leaves_wrapped_audit_events_to_k8s_audit() -> None:
    audit = json.dumps({"log": json.dumps({"auditID": "a", "stage": "ResponseComplete"}),
                        "stream": "stdout", "time": "2024-05-01T10:00:00Z"}).encode()
    assert loaders.detect(audit).name == "k8s_audit"
    assert not k8s_container.LOADER.sniff(b"2024-05-01T10:00:00Z myhost sshd[1]: hi\n", "x")


LOG_ONLY = DIR / "synthetic_fluentbit_log_only.jsonl"
NO_TIME = ("docker json-file record without a time (no \"time\" key): stored without a "
           "timestamp (date=unknown)")


def test_log_only_records_load_without_a_timestamp() -> None:
    """{"log": …} alone (fluent-bit): stdout entries with a null timestamp and a warning
    saying why; no time is guessed; partials still join; a byte-identical repeat is a
    duplicate (with no time, nothing tells the two apart)."""
    assert loaders.detect(LOG_ONLY.read_bytes()[:4096], LOG_ONLY.name).name == "k8s_container"
    result = loaders.load(LOG_ONLY)
    c = result.counts
    assert (c.read, c.loaded, c.rejected, c.duplicate) == (5, 4, 0, 1)
    ev = result.events
    assert ev["source_line"].tolist() == [1, 2, 3, 6]
    assert ev["timestamp"].isna().all()
    assert ev["parse_warning"].tolist() == [NO_TIME] * 4
    assert ev["message"].tolist() == [
        "GET /healthz 200", 'level=info msg="worker started" id=3',
        "upstream response was long, so the shipper split it",
        '{"level":"error","msg":"db down"}']
    assert ev["k8s_stream"].tolist() == ["stdout"] * 4
    assert [_row(ev, n)["k8s_log_level"] for n in (2, 3, 6)] == ["info", None, "error"]
    last = _row(ev, 6)
    assert (last["k8s_pod"], last["k8s_namespace"], last["host"]) == (
        "api-7d9f5c6b8-x2x7p", "payments", "node-1")
    assert _row(ev, 3)["raw"] == "\n".join(LOG_ONLY.read_text("utf-8").splitlines()[2:4])


def test_log_only_records_go_to_the_unknown_date_partition(tmp_path: Path) -> None:
    from loaders.ingest.pipeline import ingest
    from loaders.store.read import read_events, read_manifest
    from loaders.store.store import Store

    store = Store(tmp_path / "store")
    [f] = ingest(store, [LOG_ONLY]).files
    assert (f.status, f.read, f.loaded, f.duplicate) == ("ingested", 5, 4, 1)
    assert {p.parent.name for p in store.part_files()} == {"date=unknown"}
    stored = read_events(store.root, sources=["k8s_container"])
    assert len(stored) == 4 and stored["timestamp"].isna().all()
    m = read_manifest(store.root)
    assert m.loc[0, "first_timestamp"] is None or pd.isna(m.loc[0, "first_timestamp"])


def test_log_only_sniff_and_mixed_records(tmp_path: Path) -> None:
    """Only a whole {"log"} object (with shipper metadata at most) is claimed; a present
    but unreadable time is still a reject; timed and untimed records mix."""
    sniff = k8s_container.LOADER.sniff
    assert sniff(b'{"log":"x\\n"}\n', "a.log")
    assert sniff(b'{"log":"x\\n","attrs":{"tag":"web"}}\n', "a.log")
    assert not sniff(b'{"log":"x\\n","level":"info"}\n', "a.log")
    assert not sniff(b'{"log":"x\\n"', "a.log")
    path = tmp_path / "mixed.log"
    path.write_text("\n".join([
        json.dumps({"log": "timed\n", "stream": "stderr", "time": "2024-05-01T10:00:00Z"}),
        json.dumps({"log": "untimed\n"}),
        json.dumps({"log": "empty time\n", "time": ""}),
        json.dumps({"log": "bad time\n", "time": "yesterday"}),
    ]) + "\n")
    result = loaders.load(path)
    assert (result.counts.loaded, result.counts.rejected) == (2, 2)
    ev = result.events
    assert ev["timestamp"].tolist()[0] == pd.Timestamp("2024-05-01T10:00:00Z")
    assert pd.isna(ev["timestamp"].tolist()[1])
    assert ev["parse_warning"].tolist()[1] == NO_TIME
    assert result.rejects["source_line"].tolist() == [3, 4]
    assert all("without a readable time" in r for r in result.rejects["reason"])
