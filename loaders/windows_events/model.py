"""The one in-memory shape every Windows input form is normalized to, and small value helpers.

EVTX records, agent JSON (flat, ``EventData`` string, Winlogbeat, evtx-style) and event XML
each become a :class:`WinEvent`; the mapping table in :mod:`loaders.windows_events.map`
then turns a ``WinEvent`` into schema fields, so every form is mapped by the same code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loaders.parsing.timeutil import TimeError, current_clock, naive_to_utc, parse_iso

# Windows writes these where a field has no value; they are "absent" for core columns.
_EMPTY = frozenset({"", "-", "null", "n/a"})


@dataclass(slots=True)
class WinEvent:
    """One Windows event, whatever form it came in.

    Attributes:
        event_id: the event id (``System/EventID``), None when unreadable.
        channel: ``System/Channel`` (``Security``, ``Microsoft-Windows-Sysmon/Operational``…).
        provider: ``System/Provider/@Name``.
        computer: ``System/Computer``.
        record_id: ``System/EventRecordID``.
        times: candidate timestamps as ``(field name, value)`` in order of trust.
        data: ``EventData`` (or ``UserData``) fields as strings, names as the event has them.
        keywords: ``System/Keywords`` (hex mask text, or names like ``Audit Success``).
        user_sid: ``System/Security/@UserID``.
        message: the rendered message when the exporter kept one.
        outcome_hint: an outcome an agent already computed (Winlogbeat ``event.outcome``).
        user_hint: the account name an agent resolved from ``user_sid`` (Winlogbeat
            ``winlog.user``), used when the event data names no user.
        warnings: fields that could not be read while normalizing (kept as null).
    """

    event_id: int | None
    channel: str | None
    provider: str | None
    computer: str | None
    record_id: int | None
    times: list[tuple[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    keywords: str | None = None
    user_sid: str | None = None
    message: str | None = None
    outcome_hint: str | None = None
    user_hint: str | None = None
    warnings: list[str] = field(default_factory=list)


def scalar(value: Any) -> Any:
    """Normalize one field value to text the same way for every input form.

    EVTX yields typed values (``2124``, ``true``) where XML and most agents yield text
    (``"2124"``, ``"true"``); making them text keeps the columns equal across forms.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return [scalar(v) for v in value]
    if isinstance(value, dict):
        for key in ("#text", "text", "$"):
            if key in value:
                return scalar(value[key])
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def clean(value: Any) -> str | None:
    """A field value as text for a core column; Windows placeholders (``-``, empty) are None."""
    if value is None:
        return None
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value if v is not None)
    text = value if isinstance(value, str) else str(scalar(value))
    text = text.strip()
    # the placeholders are at most 4 characters: skip lower() for the rest
    return None if len(text) <= 4 and text.lower() in _EMPTY else text


def to_int(value: Any) -> int | None:
    """Decimal or ``0x`` hex text (Security events write pids in hex) to int; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = clean(value)
    if text is None:
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


_ZONED = re.compile(r"(?:[Zz]|[+-]\d\d(?::?\d\d)?| UTC)$")


def parse_time(value: Any, *, naive_is_utc: bool = False) -> datetime | None:
    """A Windows timestamp (ISO text, possibly with 7 fraction digits or `` UTC``) to UTC.
    A time without a zone is read in the file's zone (``--tz``; see
    :mod:`loaders.parsing.timeutil`) unless ``naive_is_utc`` (Sysmon's ``UtcTime``).

    Returns None for the zero time (1601-01-01, how empty FILETIMEs render).

    Raises:
        TimeError: the value is present but not a timestamp.
    """
    text = clean(value)
    if text is None:
        return None
    if text.endswith(" UTC"):
        text, naive_is_utc = text[:-4], True
    ts: datetime | None = None
    if len(text) >= 19 and text[10] in "T ":
        # fast path for the common full timestamps (3.11 fromisoformat truncates 7-9
        # fraction digits like parse_iso); anything it refuses goes to parse_iso
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            ts = None
        else:
            if ts.tzinfo is not None:
                ts = ts.astimezone(UTC)
            else:
                ts = ts.replace(tzinfo=UTC) if naive_is_utc else naive_to_utc(ts)
    if ts is None:
        ts = parse_iso(text, naive_is_utc=naive_is_utc)
    if ts.year <= 1601:
        return None
    return ts


def _naive(text: str) -> datetime | None:
    try:
        return parse_iso(text, naive_is_utc=True).replace(tzinfo=None)
    except TimeError:
        return None


def resolve_time(times: list[tuple[str, Any]]) -> tuple[datetime | None, str | None, list[str]]:
    """The most trusted readable timestamp; a time whose zone is known (written with it,
    or ``UtcTime``, UTC by definition) before one written without a zone.

    A record with a naive time and ``UtcTime`` also shows the file's clock their offset
    (:meth:`loaders.parsing.timeutil.Clock.observe`): a collector's export in local time
    gives its zone to its records that have no ``UtcTime``.

    Args:
        times: ``(field name, value)`` candidates, most trusted first.

    Returns:
        (timestamp or None, the field it came from, warnings about unreadable candidates)
    """
    warnings: list[str] = []
    naive: tuple[str, str] | None = None  # the first candidate written without a zone
    for name, value in times:
        text = clean(value)
        if text is None:
            continue
        by_definition = name == "UtcTime"
        if not by_definition and not _ZONED.search(text) and _naive(text) is not None:
            naive = naive or (name, text)
            continue
        try:
            ts = parse_time(text, naive_is_utc=by_definition)
        except TimeError as exc:
            warnings.append(f"{name}: {exc}")
            continue
        if ts is None:
            continue
        clock = current_clock()
        if naive is not None and by_definition and clock is not None:
            local = _naive(naive[1])
            if local is not None:
                clock.observe(local, ts, f"{naive[0]} against UtcTime")
        return ts, name, warnings
    if naive is not None:
        try:
            ts = parse_time(naive[1])
        except TimeError as exc:
            warnings.append(f"{naive[0]}: {exc}")
            return None, None, warnings
        if ts is not None:
            return ts, naive[0], warnings
    return None, None, warnings


_LOWER_NAMES: dict[str, str] = {}


class CaseFields:
    """Case-insensitive view of event fields (agents spell ``ProcessGuid``/``ProcessGUID``)."""

    __slots__ = ("_lower",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._lower = {k.lower(): v for k, v in data.items()}

    def get(self, *names: str) -> str | None:
        """The first of ``names`` that has a non-placeholder value, as text."""
        lower = self._lower
        for name in names:
            key = _LOWER_NAMES.get(name)
            if key is None:  # the shapes use a fixed set of names: lower each once
                key = _LOWER_NAMES[name] = name.lower()
            value = lower.get(key)
            if value is None:
                continue
            if type(value) is str:  # the common case, inlined: this runs ~20 times an event
                text = value.strip()
                if len(text) > 4 or (text and text.lower() not in _EMPTY):
                    return text
                continue
            cleaned = clean(value)
            if cleaned is not None:
                return cleaned
        return None

    def raw(self, name: str) -> Any:
        """The value as stored (placeholders kept)."""
        return self._lower.get(name.lower())
