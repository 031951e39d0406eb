"""Timestamp parsing shared by the loaders. Every result is an aware UTC datetime or None."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*"
    r"(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TimeError(ValueError):
    """A timestamp that cannot be read or is outside the representable range."""


def parse_iso(text: str, *, assume_utc: bool = True) -> datetime:
    """Parse ISO 8601 / RFC 3339 text: ``Z`` or ``+hh:mm``/``+hhmm`` offsets, 0–9 fraction
    digits (nanoseconds are truncated to microseconds), ``T`` or space separator.

    Args:
        text: the timestamp.
        assume_utc: a timestamp without zone is taken as UTC (else it is an error).

    Returns:
        An aware datetime in UTC.

    Raises:
        TimeError: the text is not such a timestamp or the date is out of range.

    Example:
        >>> parse_iso("2024-05-01T10:00:00.123456789+03:00").isoformat()
        '2024-05-01T07:00:00.123456+00:00'
    """
    m = _ISO.match(text.strip())
    if not m:
        raise TimeError(f"not an ISO 8601 timestamp: {text[:60]!r}")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    micros = int((frac or "0")[:6].ljust(6, "0"))
    try:
        naive = datetime(int(year), int(month), int(day), int(hour), int(minute),
                         min(int(second), 59), micros)
    except ValueError as exc:
        raise TimeError(f"out of range: {text[:60]!r}") from exc
    if zone in (None, ""):
        if not assume_utc:
            raise TimeError(f"timestamp without zone: {text[:60]!r}")
        offset = timedelta(0)
    elif zone in ("Z", "z", "UTC"):
        offset = timedelta(0)
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    try:
        return (naive - offset).replace(tzinfo=UTC)
    except OverflowError as exc:
        raise TimeError(f"out of range: {text[:60]!r}") from exc


def from_epoch(value: float | int | str) -> datetime:
    """Epoch seconds (float, or an int/str in s, ms, us or ns by magnitude) to UTC.

    Raises:
        TimeError: not a number, or out of range.
    """
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise TimeError(f"not an epoch time: {str(value)[:60]!r}") from exc
    magnitude = abs(number)
    if magnitude >= 1e17:
        number /= 1e9
    elif magnitude >= 1e14:
        number /= 1e6
    elif magnitude >= 1e11:
        number /= 1e3
    try:
        return _EPOCH + timedelta(seconds=number)
    except OverflowError as exc:
        raise TimeError(f"out of range: {value!r}") from exc
