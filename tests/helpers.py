"""Builders of test inputs derived from the real fixtures."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from tests.conftest import FIXTURES

K8S_AUDIT = FIXTURES / "k8s-audit" / "falco_trace_files_k8s_audit.jsonl"


def k8s_audit_events() -> list[dict]:
    """The valid events of the falco fixture (the one bad line dropped)."""
    out = []
    for line in K8S_AUDIT.read_text().splitlines():
        value = json.loads(line)
        if "auditID" in value:
            out.append(value)
    return out


def write_k8s_copy(path: Path, tag: str, repeat: int = 1) -> int:
    """Write the fixture's events with new auditIDs derived from ``tag``; returns the count.

    The events are distinct from the fixture's and from other tags', so they are not
    duplicates; the auditID is the native id.
    """
    seen: set[str] = set()
    lines = []
    for r in range(repeat):
        for ev in k8s_audit_events():
            ev = dict(ev)
            ev["auditID"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/{r}/{ev['auditID']}"))
            if ev["auditID"] in seen:
                continue
            seen.add(ev["auditID"])
            lines.append(json.dumps(ev))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def one_row(frame: pd.DataFrame, **match: Any) -> dict[str, Any]:
    """The one row whose columns equal ``match``, as a dict with missing values as None."""
    sel = frame
    for key, value in match.items():
        sel = sel[sel[key] == value]
    assert len(sel) == 1, f"{len(sel)} rows match {match}"
    return {k: (None if v is pd.NA or v is pd.NaT or (isinstance(v, float) and pd.isna(v))
                else v) for k, v in sel.iloc[0].to_dict().items()}
