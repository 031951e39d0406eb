"""auditlens analysis: read the evidence store, and (in later modules) timelines, anomalies,
detections and reports. Functions take DataFrames and return DataFrames or figures; they
never print, display or read files, except the readers in :mod:`analysis.events`.
"""

from analysis.events import read_events, read_manifest, read_rejects, store_summary

__all__ = ["read_events", "read_manifest", "read_rejects", "store_summary"]
