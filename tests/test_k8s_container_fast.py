"""k8s_container's vectorized path gives exactly what the line-by-line reader gives."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import loaders
from loaders.base import Item, LoadOptions, Source, Tuning
from loaders.k8s_container import loader as k8s_container
from loaders.k8s_container.lift import lifted
from loaders.k8s_container.loader import lift
from loaders.k8s_container.split import epoch_micros

STAMPS = [
    "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.1Z", "2024-05-01T10:00:00.123456789Z",
    "2024-05-01T10:00:00.1234567891Z", "2024-02-29T23:59:59.999999999Z", "2023-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T23:59:60Z",
    "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.9Z",
    "1969-12-31T23:59:59.9999999Z", "2024-05-01T10:00:00+03:00", "2024-05-01T10:00:00.Z",
    "2024-05-01T10:00:00z", "2024-05-01T10:00:00", "2024-5-01T10:00:00Z", "-001-01-01T00:00:00Z",
    "２024-05-01T10:00:00Z",
]
MESSAGES = [
    "plain text", "", " ", '{"level":"error","msg":"x"}', ' {"severity":"WARNING","message":"s"} ',
    '{"msg":"no level"}', '{"level":true,"msg":"b"}', '{"level":"a","msg":"b","level":"c"}',
    '{"level": "E" , "msg":"a b"}', '{"level":null,"lvl":"x","msg":"m"}', '{"level":1.5,"msg":"m"}',
    "level=info msg=started", 'lvl=warn message="a \\"q\\" b"', 'level=info msg="x=1" level=warn',
    'ts=1 level=INFO msg="write block" k=v', "E0501 10:00:00.123456   12 x.go:3] boom",
    "héllo wörld", '\u3000{"level":"e","msg":"m"}', "a b  c", "tab\there", "cr\rmid",
    '{"log":{"level":"x"},"message":"m"}', '{"level":"a","msg":"\\ud800"}',
]


def _line_by_line(src: Source, assembler: Any, lift: Any) -> Iterator[Item]:
    for line in src.lines():
        yield from assembler.feed(line)
    yield from assembler.flush()


def _load(path: Path, options: LoadOptions | None = None) -> tuple[Any, ...]:
    result = loaders.load(path, format="k8s_container", options=options)
    c = result.counts
    frames = [f.drop(columns=["ingest_id"]).sort_values("source_line")
              for f in (result.events, result.rejects)]
    ev, rj = [f.astype(object).where(f.notna(), None).to_dict("records") for f in frames]
    return ((c.read, c.loaded, c.rejected, c.duplicate, result.status, result.error), ev, rj)


def _random_log(rng: random.Random, n: int, docker: bool) -> bytes:
    lines = []
    for _ in range(n):
        r = rng.random()
        if docker:
            r = 0.8 + r * 0.1 if r < 0.85 else r
        stamp = rng.choice(STAMPS) if rng.random() < 0.3 else STAMPS[rng.randrange(3)]
        msg = rng.choice(MESSAGES)
        if r < 0.8:
            stream = rng.choice(["stdout", "stderr"]) if rng.random() < 0.95 else "stdin"
            tag = "F" if rng.random() < 0.75 else rng.choice(["P", "P", "P", "F:x", "X"])
            lines.append(f"{stamp} {stream} {tag} {msg}")
        elif r < 0.88:
            log = msg + rng.choice(["\n", "", "\r\n"])
            record = {"log": log, "stream": rng.choice(["stdout", "stderr"]), "time": stamp}
            if rng.random() < 0.1:  # fluent-bit's {log} alone: no time, no stream
                record = {"log": log}
            lines.append(json.dumps(record, separators=(",", ":"), ensure_ascii=rng.random() < .5)
                         if rng.random() < 0.9 else json.dumps(record))
        else:
            lines.append(rng.choice(["", "  ", "not a CRI line", "\u00a0"]))
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    if rng.random() < 0.3:
        k = rng.randrange(len(data))
        data = data[:k] + b"\xff" + data[k:]
    return data


@pytest.mark.parametrize("seed", range(15))
def test_fast_path_equals_line_by_line(seed: int, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    path = tmp_path / "var/log/pods/ns_pod-1_0f1e2d3c-aaaa-bbbb/ctr/0.log"
    path.parent.mkdir(parents=True)
    data = _random_log(rng, rng.choice([40, 400, 2000]), docker=seed % 3 == 2)
    if seed % 4 == 3:
        data = data.replace(b"\n", b"\r\n")
    path.write_bytes(data)
    options = LoadOptions(max_initial_rejects=rng.choice([20, 3]),
                          max_consecutive_rejects=rng.choice([1000, 4]),
                          tuning=Tuning(container_block_bytes=rng.choice([64, 1000, 1 << 22])))
    fast = _load(path, options)
    monkeypatch.setattr(k8s_container, "iter_fast", _line_by_line)
    assert fast == _load(path, options)


def test_partials_across_blocks_and_rejects_keep_line_numbers(
        tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_text("".join([
        "2024-05-01T10:00:00Z stdout F one\n",
        "2024-05-01T10:00:01Z stdout P two-a \n",
        "2024-05-01T10:00:02Z stderr F three\n",
        "garbage\n",
        "2024-05-01T10:00:03Z stdout F two-b\n",
        "2024-05-01T10:00:04Z stdout F four\n",
    ]))
    result = loaders.load(path, options=LoadOptions(tuning=Tuning(container_block_bytes=100)))
    assert result.rejects["source_line"].tolist() == [4]
    ev = result.events.sort_values("source_line")
    assert ev["source_line"].tolist() == [1, 2, 3, 6]
    assert ev["message"].tolist() == ["one", "two-a two-b", "three", "four"]


def test_lone_surrogates_become_replacement_characters(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_text('2024-05-01T10:00:00Z stdout F {"level":"error","msg":"bad \\ud800"}\n'
                    '{"log":"x\\udc00\\n","stream":"stdout","time":"2024-05-01T10:00:01Z"}\n')
    result = loaders.load(path)
    assert (result.counts.loaded, result.counts.rejected) == (2, 0)
    ev = result.events.sort_values("source_line")
    assert ev["k8s_log_msg"].iloc[0] == "bad \ufffd"
    assert ev["message"].iloc[1] == "x\ufffd"


def test_epoch_micros_matches_fromisoformat() -> None:
    micros, ok = epoch_micros(pa.array(STAMPS))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for stamp, value, good in zip(STAMPS, micros.tolist(), ok.tolist(), strict=True):
        if good:  # the rest goes line by line
            delta = datetime.fromisoformat(stamp) - epoch
            assert value == (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds
    assert sum(ok.tolist()) == 7  # the valid UTC times up to nanoseconds, years 1-9999


def test_lifted_matches_lift() -> None:
    rng = random.Random(5)
    keys = ["level", "lvl", "msg", "message", "severity", "x"]
    values = ['"info"', '"ERROR"', '""', '"a b"', "1", "true", "null", '"x\\"y"', '"a,b}"']
    made = [MESSAGES[i % len(MESSAGES)] for i in range(len(MESSAGES))]
    for _ in range(3000):
        pairs = [f'"{rng.choice(keys)}":{rng.choice(values)}' for _ in range(rng.randrange(4))]
        made.append("{" + ",".join(pairs) + "}")
        logfmt_values = ["x", '"a b"', '"q=1"', "", "level=3", "a=b", "WARN"]
        made.append(rng.choice([" ", "  "]).join(f"{rng.choice(keys)}={rng.choice(logfmt_values)}"
                                                 for _ in range(rng.randrange(1, 5))))
    levels, msgs = lifted(pa.array(made), lift)
    assert list(zip(levels.to_pylist(), msgs.to_pylist(), strict=True)) == [lift(m) for m in made]
