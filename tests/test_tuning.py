"""``Tuning``: the block, chunk and window sizes the loaders and the store take from the options.

Tests shrink these to put boundaries inside small fixtures (see the fast-path tests); here,
that the defaults are the measured values, every knob is documented and read by the code,
and a value no path could work with is refused.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import fields, replace

import pytest

from loaders.base import LoadOptions, Tuning
from tests.conftest import ROOT

DEFAULTS = {
    "jsonl_block_bytes": 8 << 20,
    "k8s_stage_window": 5000,
    "k8s_remembered_ids": 100_000,
    "container_block_bytes": 4 << 20,
    "container_max_joined_chars": 1 << 20,
    "container_max_joined_lines": 10_000,
    "auditd_block_bytes": 1 << 20,
    "auditd_offload_bytes": 16 << 20,
    "auditd_chunk_events": 8192,
    "auditd_chunk_chars": 8 << 20,
    "auditd_ahead_chunks": 4,
    "evtx_fast_min_rows": 128,
    "max_line_bytes": 64 << 20,
    "max_value_chars": 128 << 20,
    "dedupe_in_memory_rows": 200_000,
}


def test_defaults_are_the_measured_values() -> None:
    import loaders

    assert {f.name: getattr(Tuning(), f.name) for f in fields(Tuning)} == DEFAULTS
    assert LoadOptions().tuning == Tuning()
    assert loaders.Tuning is Tuning  # offered beside loaders.LoadOptions


def test_every_knob_is_documented_and_read_by_the_code() -> None:
    doc = Tuning.__doc__ or ""
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "loaders").rglob("*.py")
                     if p.name != "base.py")
    for f in fields(Tuning):
        assert re.search(rf"^\s+{f.name}: ", doc, re.M), f"{f.name} is not documented"
        assert f"tuning.{f.name}" in code, f"no module reads {f.name}"


def test_values_no_path_could_work_with_are_refused() -> None:
    with pytest.raises(ValueError, match="jsonl_block_bytes must be an int of at least 1"):
        Tuning(jsonl_block_bytes=0)
    with pytest.raises(ValueError, match="k8s_stage_window"):
        Tuning(k8s_stage_window=-1)
    with pytest.raises(ValueError, match="auditd_chunk_chars"):
        Tuning(auditd_chunk_chars=1.5)  # type: ignore[arg-type]
    # the thresholds that take a path always
    assert Tuning(auditd_offload_bytes=0, dedupe_in_memory_rows=0).auditd_offload_bytes == 0
    with pytest.raises(ValueError, match="dedupe_in_memory_rows"):
        Tuning(dedupe_in_memory_rows=-1)


def test_tuning_is_frozen_and_travels_to_worker_processes() -> None:
    tuning = Tuning(jsonl_block_bytes=500)
    with pytest.raises(AttributeError):
        tuning.jsonl_block_bytes = 1  # type: ignore[misc]
    options = LoadOptions(tuning=tuning)
    assert pickle.loads(pickle.dumps(options)) == options  # spawned --jobs workers
    assert replace(options, helpers=2).tuning is tuning
