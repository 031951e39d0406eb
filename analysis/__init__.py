"""auditlens analysis: read the evidence store, and (in later modules) timelines, anomalies,
detections and reports. Functions take DataFrames and return DataFrames or figures; they
never print, display or read files, except the readers in :mod:`loaders.store.read`.

The readers are imported on first use, so ``auditlens`` commands that do not need pandas
(ingest) start faster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loaders.store.read import read_events, read_manifest, read_rejects, store_summary

__all__ = ["read_events", "read_manifest", "read_rejects", "store_summary"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from loaders.store import read as events

        return getattr(events, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
