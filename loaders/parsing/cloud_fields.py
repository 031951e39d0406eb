"""Small field helpers shared by the cloud account loaders (Selectel, OpenStack CADF)."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from loaders.parsing.timeutil import parse_iso

# "1.2.3.4:5678" or "[2001:db8::1]:443" as some proxies write the client address
_WITH_PORT = re.compile(r"^\[?([0-9A-Fa-f:.]+?)\]?:(\d{1,5})$")


def canonical_ip(value: Any) -> tuple[str | None, str | None]:
    """The canonical text form of a client address, and a warning when it is not one.

    Args:
        value: the address as the source wrote it (may carry a port, brackets, or be empty).

    Returns:
        ``(address, None)``, ``(None, None)`` when there is no value, or ``(None, warning)``
        when the value is not an IP address (the caller keeps the record and the warning).

    Example:
        >>> canonical_ip("[2001:DB8::1]:443")
        ('2001:db8::1', None)
    """
    if value is None:
        return None, None
    return _canonical_ip(str(value))


@lru_cache(maxsize=65536)  # the same few client addresses repeat across a whole log
def _canonical_ip(value: str) -> tuple[str | None, str | None]:
    text = value.strip()
    if not text or text in ("-", "NA", "N/A"):
        return None, None
    with_port = _WITH_PORT.match(text)
    for candidate in (text, with_port.group(1)) if with_port else (text,):
        try:
            return str(ipaddress.ip_address(candidate)), None
        except ValueError:
            continue
    return None, f"src_ip: not an IP address: {text[:60]!r}"


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
            return stamp.replace(tzinfo=UTC)
        return stamp.astimezone(UTC)
    return parse_iso(text)
