"""The sample-data generator: determinism, ground truth, committed samples, loader round trip."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import loaders
from loaders import LoadOptions

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data-samples"
sys.path.insert(0, str(ROOT / "benchmarks"))

import generate  # noqa: E402

COMMAND = re.compile(
    r"python benchmarks/generate.py --out data-samples --events (\d+) --seed (\d+)")


def _truth() -> dict[str, Any]:
    return json.loads((SAMPLES / "ground-truth.json").read_text(encoding="utf-8"))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "README.md"}


def _all_refs(gt: dict[str, Any]) -> list[dict[str, Any]]:
    refs = list(gt["incident"]["events"])
    for decoy in gt["decoys"].values():
        refs += decoy["events"]
    return refs


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate.generate(tmp_path / "a", 1500, 3, "2026-11-01", 14)
    generate.generate(tmp_path / "b", 1500, 3, "2026-11-01", 14)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert len(a) == 17
    assert a == b


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    generate.generate(tmp_path / "a", 1500, 3, "2026-11-01", 14)
    generate.generate(tmp_path / "b", 1500, 4, "2026-11-01", 14)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a["cloud/audit/events.txt"] != b["cloud/audit/events.txt"]
    assert a["linux/app-01/audit.log"] != b["linux/app-01/audit.log"]


def test_incident_is_embedded_at_any_volume(tmp_path: Path) -> None:
    gt = generate.generate(tmp_path, 50, 1, "2026-11-01", 14)
    files = {r["file"] for r in gt["incident"]["events"]}
    kinds = {generate.loader_for(f) for f in files}
    assert kinds == {"selectel_audit", "selectel_auth", "openstack_cadf", "linux_auditd",
                     "linux_auth", "windows_events", "k8s_audit", "k8s_container",
                     "k8s_events", "mks_cluster"}


def test_committed_samples_equal_a_fresh_generation(tmp_path: Path) -> None:
    m = COMMAND.search((SAMPLES / "README.md").read_text(encoding="utf-8"))
    assert m, "data-samples/README.md must document the generating command"
    generate.generate(tmp_path, int(m.group(1)), int(m.group(2)), "2026-11-01", 14)
    fresh, committed = _tree(tmp_path), _tree(SAMPLES)
    assert sorted(fresh) == sorted(committed)
    for name, data in fresh.items():
        assert committed[name] == data, f"data-samples/{name} differs from a fresh generation"


def test_ground_truth_references_point_at_the_right_lines() -> None:
    gt = _truth()
    lines: dict[str, list[str]] = {}
    refs = _all_refs(gt)
    assert len(gt["incident"]["events"]) == 157
    for ref in refs:
        f = ref["file"]
        if f not in lines:
            text = (SAMPLES / f).read_text(encoding="utf-8-sig", errors="replace")
            lines[f] = text.split("\n")
            assert gt["files"][f]["lines"] == text.count("\n")
        body = "\n".join(lines[f][ref["line"] - 1:ref["end_line"]])
        assert 1 <= ref["line"] <= ref["end_line"] <= gt["files"][f]["lines"]
        for want in ref["expect"]:
            assert want in body, f"{f}:{ref['line']} ({ref['step']}) lacks {want!r}"


def test_incident_entities() -> None:
    gt = _truth()
    inc = gt["incident"]
    assert "203.0.113.77" in inc["ips"] and "anna.volkova" in inc["users"]
    ses = inc["sessions"]["linux_auditd_ses"]
    assert len(ses) == 1
    audit = (SAMPLES / "linux/app-01/audit.log").read_text(encoding="utf-8")
    assert f"auid=1001 ses={ses[0]} " in audit
    attacker_lines = [r for r in _all_refs(gt) if "203.0.113.77" in r["expect"]]
    assert all(r in inc["events"] for r in attacker_lines)


def test_bad_records_are_documented() -> None:
    gt = _truth()
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    assert len(gt["bad_records"]) == 3
    for bad in gt["bad_records"]:
        assert re.search(rf"`{re.escape(bad['file'])}` \| {bad['line']} \|", readme), bad


def _sample_files() -> list[tuple[str, str]]:
    gt = _truth()
    return [(f, info["loader"]) for f, info in gt["files"].items()]


@pytest.mark.slow
@pytest.mark.parametrize(("rel", "name"), _sample_files())
def test_sample_loads_with_its_loader(rel: str, name: str) -> None:
    if name not in loaders.LOADERS:
        pytest.skip(f"loader {name} is not registered yet")
    path = SAMPLES / rel
    head = path.read_bytes()[:65536]
    assert loaders.detect(head, path.name).name == name
    result = loaders.load(path, options=LoadOptions(year=2026))
    bad = sorted(b["line"] for b in _truth()["bad_records"] if b["file"] == rel)
    assert result.status == "ok", result.error
    assert sorted(result.rejects["source_line"].tolist()) == bad
    assert result.counts.loaded > 0
    # every incident and decoy record of this file is an event at its ground-truth line
    loaded = set(result.events["source_line"].tolist())
    text = path.read_text(encoding="utf-8-sig", errors="replace").split("\n")
    for ref in _all_refs(_truth()):
        if ref["file"] != rel or '"stage":"RequestReceived"' in text[ref["line"] - 1]:
            continue  # the ResponseComplete stage of the same request is the kept event
        assert loaded & set(range(ref["line"], ref["end_line"] + 1)), ref
