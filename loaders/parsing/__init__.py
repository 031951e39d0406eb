"""Shared parsing helpers: opening evidence files, JSON in every shape, blocks of JSON Lines,
timestamps, value normalization, batch items, cloud-log field helpers, helper processes.

Nothing here knows a source, the store or ingest: every loader may import these modules.
"""
