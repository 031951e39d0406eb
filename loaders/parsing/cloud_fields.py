"""Small field helpers shared by the cloud account loaders (Selectel, OpenStack CADF)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from loaders.parsing.timeutil import naive_to_utc, parse_iso

# what json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")) uses,
# built once: json.dumps makes a new encoder per call when given options
CANONICAL_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def json_text(value: Any) -> str | None:
    """A JSON object kept as text in one stable form (sorted keys), None when empty.

    A value that already is a string (some exports nest JSON as text) is kept as given.
    """
    if value is None or value == {} or value == []:
        return None
    if isinstance(value, str):
        return value or None
    return CANONICAL_JSON.encode(value)


def text_or_none(value: Any) -> str | None:
    """A scalar as text; None for null/empty; lists joined with commas; objects as JSON."""
    if type(value) is str:  # the common case first: this runs ~25 times per event
        return value if value and not value.isspace() else None
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value if v is not None) or None
    if isinstance(value, dict):
        return json_text(value)
    text = str(value)
    return text if text.strip() else None


def fast_iso(text: str) -> datetime:
    """:func:`loaders.parsing.timeutil.parse_iso` with a fast path for
    ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` plus ``Z`` or an offset (the C parser); anything else goes
    through ``parse_iso``.

    Raises:
        TimeError: as ``parse_iso``.
    """
    if len(text) >= 20 and text[10] == "T" and text[-1] in "Z0123456789":
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            return parse_iso(text)
        if stamp.tzinfo is None:
            return naive_to_utc(stamp)
        return stamp.astimezone(UTC)
    return parse_iso(text)
