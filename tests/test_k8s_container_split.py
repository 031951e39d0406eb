"""k8s_container's numpy splitting and joined partial runs give exactly the line-by-line values,
rows in the same order, on every fixture and on hostile variants."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import loaders
from loaders.base import Item, LoadOptions, Source, Tuning
from loaders.k8s_container import loader as k8s_container
from loaders.k8s_container.lift import lifted
from loaders.k8s_container.loader import lift
from tests.conftest import FIXTURES

FIXTURE_FILES = sorted(p for p in (FIXTURES / "k8s-container").rglob("*")
                       if p.is_file() and p.suffix != ".tsv")
STAMPS = ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:00.5Z",
          "2024-05-01T10:00:00+02:00", "2024-05-01T10:00:00.1234567890123Z", "2024-05-01 10:00Z"]
MESSAGES = ["", "x", "héllo wörld ünïcode", "exactly12byt", "thirteen-byte", "a  b\tc",
            '{"level":"info","msg":"ok"}', "level=warn msg=\"disk\"", "ends with cr\r",
            "E0501 10:00:00.123456   12 x.go:3] boom", "   ", "日本語のメッセージ"]


def _line_by_line(src: Source, assembler: Any, lift: Any) -> Iterator[Item]:
    for line in src.lines():
        yield from assembler.feed(line)
    yield from assembler.flush()


def _run(path: Path, options: LoadOptions) -> tuple[Any, ...]:
    """Counts, status, and the events and rejects by line (ingest_id dropped; the fast path
    may yield a block's joined entries before its plain rows)."""
    run = loaders._run(path, "k8s_container", options, "test")
    events: list[pa.Table] = []
    rejects: list[pa.Table] = []
    for kind, table in run:
        (events if kind == "events" else rejects).append(table.drop_columns(["ingest_id"]))
    ev = pa.concat_tables(events, promote_options="permissive").to_pylist() if events else []
    rj = pa.concat_tables(rejects).to_pylist() if rejects else []
    c = run.counts
    ev.sort(key=lambda row: row["source_line"])
    return (c.read, c.loaded, c.rejected, run.status, run.error), ev, rj


def _both(path: Path, monkeypatch: pytest.MonkeyPatch, options: LoadOptions | None = None
          ) -> None:
    options = options or LoadOptions()
    fast = _run(path, options)
    with monkeypatch.context() as m:
        m.setattr(k8s_container, "iter_fast", _line_by_line)
        assert fast == _run(path, options)


@pytest.mark.parametrize("block", [64, 1000, 1 << 22])
@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name[:40])
def test_fixtures_fast_equals_line_by_line(path: Path, block: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _both(path, monkeypatch, LoadOptions(tuning=Tuning(container_block_bytes=block)))


def _hostile(rng: random.Random, n: int) -> bytes:
    """CRI lines with runs of partials on both streams, interleaved, cut by odd lines."""
    out: list[str] = []
    while len(out) < n:
        stamp = STAMPS[0] if rng.random() < 0.7 else rng.choice(STAMPS)
        stream = rng.choice(["stdout", "stderr"])
        r = rng.random()
        if r < 0.4:
            out.append(f"{stamp} {stream} F {rng.choice(MESSAGES)}")
        elif r < 0.8:
            for _ in range(rng.choice([1, 1, 2, 3, 5])):
                out.append(f"{rng.choice(STAMPS[:3])} {stream} P {rng.choice(MESSAGES)}")
            if rng.random() < 0.3:  # the other stream cuts in
                other = "stderr" if stream == "stdout" else "stdout"
                out.append(f"{stamp} {other} {rng.choice('FP')} {rng.choice(MESSAGES)}")
            out.append(f"{stamp} {stream} F{rng.choice(['', ' ', ' tail'])}")
        else:
            out.append(rng.choice([f"{stamp} {stream}  F x", f"{stamp} {stream} F:x y",
                                   f"{stamp} stdin F x", "garbage", "", f"{stamp} {stream}",
                                   f"{stamp}  {stream} F x", f"\t{stamp} {stream} F x"]))
    text = "\n".join(out)
    if rng.random() < 0.5:
        text += "\n"
    data = text.encode()
    return (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + data


@pytest.mark.parametrize("seed", range(12))
def test_hostile_partial_runs(seed: int, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    path = tmp_path / "var/log/pods/ns_pod-1_0f1e2d3c-aaaa-bbbb/ctr/0.log"
    path.parent.mkdir(parents=True)
    path.write_bytes(_hostile(rng, rng.choice([30, 300, 3000])))
    tuning = Tuning(container_block_bytes=rng.choice([64, 700, 1 << 22]))
    if seed % 3 == 1:  # runs cut by the joining limits
        tuning = replace(tuning, container_max_joined_lines=rng.choice([1, 2, 3]),
                         container_max_joined_chars=rng.choice([1, 15, 40]))
    options = LoadOptions(max_initial_rejects=rng.choice([20, 3]),
                          max_consecutive_rejects=rng.choice([1000, 3]), tuning=tuning)
    _both(path, monkeypatch, options)


def test_short_last_line_without_newline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    for text in ["2024-05-01T10:00:00Z stdout F", "2024-05-01T10:00:00Z stdout F ",
                 "2024-05-01T10:00:00Z stdout P a\n2024-05-01T10:00:00Z stdout F",
                 "2024-05-01T10:00:00Z stdout", "2024-05-01T10:00:00Z", "x"]:
        path = tmp_path / "0.log"
        path.write_text("2024-05-01T10:00:00Z stdout F first\n" * 3 + text)
        _both(path, monkeypatch)


def test_flat_json_and_logfmt_lifting_matches_lift() -> None:
    made = [
        '{"level":"x","msg":"level"}', '{"msg":"a","level":"B"}', '{"level" :  "W" ,"msg"\t:\t"m"}',
        '{"level"        :"far","msg":"m"}', '{"level":"a","level":"b","msg":"c"}',
        '{"x":"level","level":"i","msg":"m"}', '{"level":1,"msg":"m"}', '{"level":"i","msg":2}',
        '{"level":"","msg":""}', "{}", '{"msg":"m"}', '{"level":"i","msg":"m","x":"msg"}',
        '{"a":"b","level":"WARN","c":1,"msg":"m n","d":null}', '{"lvl":"i","msg":"m"}',
        '{"level":"i"  ,  "msg":"m"  }', '{"levelx":"i","msg":"m"}', '{"level":"i","msgs":"m"}',
        "level= msg=", 'msg="" level=""', "xlevel=a level=b msg=c", "level=a  msg=b",
        "a=level=x level=y msg=z", "level=a msg=b level=c", "msg=a", "level=WARN msg=",
        'level=WARN msg="hello world" k=v', 'level="x" msg="y z"', "lvl=e msg=m level=i",
        "msg=m level=I", 'ts=1 level=info msg="a"', 'level=i msg="unclosed', "level=i\tmsg=m",
    ]
    levels, msgs = lifted(pa.array(made), lift)
    assert list(zip(levels.to_pylist(), msgs.to_pylist(), strict=True)) == [lift(m) for m in made]
