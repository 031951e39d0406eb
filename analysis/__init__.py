"""auditlens analysis: read the evidence store and its findings; detections
(:mod:`analysis.detect`), sign-ins (:mod:`analysis.logins`), principals
(:mod:`analysis.identities`), figures (:mod:`analysis.vis`). Functions take a scope or
DataFrames and return DataFrames, findings or figures; they never print or display.

The readers are imported on first use, so ``auditlens`` commands that do not need pandas
(ingest) start faster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.findings import read_findings, read_incidents, read_runs
    from loaders.store.read import read_events, read_manifest, read_rejects, store_summary

__all__ = ["read_events", "read_findings", "read_incidents", "read_manifest", "read_rejects",
           "read_runs", "store_summary"]
_FINDINGS = ("read_findings", "read_incidents", "read_runs")


def __getattr__(name: str) -> Any:
    if name in _FINDINGS:
        from analysis import findings

        return getattr(findings, name)
    if name in __all__:
        from loaders.store import read as events

        return getattr(events, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
