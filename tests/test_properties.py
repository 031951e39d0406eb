"""Property-based tests: generated records round-trip; mutated input never crashes a loader."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loaders
from loaders.parsing import values
from loaders.parsing.jsonreader import JsonReader
from tests.test_hostile import NAMES, _check, fixture_of

NAME = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=30)
IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), JSON_VALUES, min_size=1, max_size=5),
                min_size=1, max_size=6),
       st.sampled_from(["jsonl", "array", "pretty", "concat"]),
       st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_json_reader_round_trips_every_shape(values: list[dict], shape: str, enc: str) -> None:
    text = {
        "jsonl": "\n".join(json.dumps(v) for v in values),
        "array": json.dumps(values),
        "pretty": "\n".join(json.dumps(v, indent=2) for v in values),
        "concat": "".join(json.dumps(v) for v in values),
    }[shape]
    data = text.encode(enc)
    records = list(JsonReader(io.BytesIO(data), data[:65536]))
    assert [r.value for r in records] == values


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user=NAME, ip=IPV4, verb=st.sampled_from(["get", "list", "create", "delete", "patch"]),
       resource=st.sampled_from(["pods", "secrets", "clusterrolebindings", "deployments"]),
       namespace=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
       code=st.sampled_from([200, 201, 403, 404, 500]),
       micros=st.integers(0, 999_999))
def test_k8s_audit_events_round_trip(user: str, ip: str, verb: str, resource: str,
                                     namespace: str, code: int, micros: int) -> None:
    event = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "0b3e4c1a-1111-4222-8333-444455556666", "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/{namespace}/{resource}", "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": [ip], "userAgent": "kubectl/v1.29.0",
        "objectRef": {"resource": resource, "namespace": namespace, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": f"2026-11-03T10:11:12.{micros:06d}Z",
        "stageTimestamp": f"2026-11-03T10:11:12.{micros:06d}Z",
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        path.write_text(json.dumps(event) + "\n")
        result = loaders.load(path)
    assert result.counts.loaded == 1
    row = result.events.iloc[0]
    stored_user = None if pd.isna(row["user"]) else row["user"]
    assert (stored_user, row["src_ip"], row["k8s_namespace"], row["k8s_verb"]) == (
        values.name(user), ip, namespace, verb)  # a name is stored trimmed, blank as null
    assert row["timestamp"].microsecond == micros
    assert row["outcome"] == ("denied" if code == 403 else "success" if code < 400
                              else "failure")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_mutated_fixtures_never_crash_a_loader(name: str, data: st.DataObject) -> None:
    original = fixture_of(name).read_bytes()[:20_000]
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 20), label="mutations")):
        if not mutated:
            break
        pos = data.draw(st.integers(0, len(mutated) - 1), label="position")
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "cut"]), label="op")
        if op == "flip":
            mutated[pos] ^= data.draw(st.integers(1, 255), label="mask")
        elif op == "insert":
            mutated[pos:pos] = data.draw(st.binary(min_size=1, max_size=8), label="bytes")
        elif op == "delete":
            del mutated[pos:pos + data.draw(st.integers(1, 64), label="length")]
        else:
            del mutated[pos:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("input" + "".join(fixture_of(name).suffixes))
        path.write_bytes(bytes(mutated))
        _check(name, path)
