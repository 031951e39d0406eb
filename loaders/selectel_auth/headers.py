"""Column matching and value parsing for the Selectel authorization (login) log export.

There is no published layout, so columns are found through one alias table (English and
Russian headers) or a user mapping ``{column_in_file: field}`` (``--map column=field``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from loaders.base import FormatError
from loaders.parsing.timeutil import TimeError, from_epoch, naive_to_utc, parse_iso

# field -> header names that mean it (as written in exports; matching ignores case, spaces
# and punctuation). "date" and "time" are separate columns some exports have; a column with
# both in one ("timestamp") wins over them.
ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("Timestamp", "Date and time", "Date/Time", "Datetime", "Login time",
                  "Sign-in time", "Authorization time", "Created at", "Дата и время",
                  "Дата/время", "Время входа", "Дата входа", "Время авторизации",
                  "Дата авторизации"),
    "date": ("Date", "Дата"),
    "time": ("Time", "Время"),
    "user": ("User", "Username", "User name", "Login", "Email", "E-mail", "Account",
             "Пользователь", "Логин", "Почта", "Эл. почта", "Электронная почта",
             "Имя пользователя", "Учётная запись"),
    "src_ip": ("IP", "IP address", "IP-адрес", "Адрес IP", "Source IP", "Client IP",
               "Remote address", "Адрес"),
    "user_agent": ("Browser", "User agent", "Agent", "Client", "Device", "Браузер", "Клиент",
                   "Устройство", "Агент"),
    "outcome": ("Result", "Status", "Outcome", "State", "Результат", "Статус", "Состояние"),
}
# fields a user mapping may name (besides the ones above)
MAPPABLE: tuple[str, ...] = (*ALIASES, "user_id", "session_id", "host", "message")
REQUIRED_HELP = {
    "time": "a time column (one of: " + ", ".join(ALIASES["timestamp"][:4] + ALIASES["date"]
                                                  + ALIASES["time"] + ("Дата и время",))
            + ")",
    "src_ip": "an IP column (one of: " + ", ".join(ALIASES["src_ip"][:4]) + ")",
}


def normalize(name: str) -> str:
    """A header name reduced for matching: lower case, ё→е, letters and digits only."""
    return re.sub(r"[\W_]+", "", name.replace("\ufeff", "").lower().replace("ё", "е"))


ROLE_OF: dict[str, str] = {normalize(a): field for field, names in ALIASES.items()
                           for a in names}


class MissingColumnsError(FormatError):
    """The export's columns do not include the required ones; the message says how to map."""


def match_columns(columns: Iterable[str], mapping: Mapping[str, str] | None = None
                  ) -> dict[str, str]:
    """Which column holds which field.

    Args:
        columns: the file's column names, in order.
        mapping: user mapping ``{column_in_file: field}``; it wins over the alias table.

    Returns:
        ``{field: column}``; always has ``src_ip`` and one of ``timestamp``/``date``/``time``.

    Raises:
        MissingColumnsError: the required columns cannot be matched, a mapping names a column
            the file lacks, or a field that does not exist.

    Example:
        >>> match_columns(["Дата", "IP-адрес", "Пользователь"])
        {'date': 'Дата', 'src_ip': 'IP-адрес', 'user': 'Пользователь'}
    """
    cols = list(columns)
    found: dict[str, str] = {}
    for col in cols:
        role = ROLE_OF.get(normalize(col))
        if role and role not in found:
            found[role] = col
    for col, field in (mapping or {}).items():
        if field not in MAPPABLE:
            raise MissingColumnsError(
                f"--map {col}={field}: unknown field {field!r}; fields: {', '.join(MAPPABLE)}")
        match = col if col in cols else next(
            (c for c in cols if normalize(c) == normalize(col)), None)
        if match is None:
            raise MissingColumnsError(
                f"--map {col}={field}: the file has no column {col!r}; columns found: "
                + ", ".join(repr(c) for c in cols))
        found = {f: c for f, c in found.items() if c != match}
        found[field] = match
    missing = []
    if not {"timestamp", "date", "time"} & set(found):
        missing.append("time")
    if "src_ip" not in found:
        missing.append("src_ip")
    if missing:
        shown = ", ".join(repr(c) for c in cols) or "(none)"
        names = " and ".join("IP" if m == "src_ip" else m for m in missing)
        raise MissingColumnsError(
            f"this authorization log has no recognisable {names} column"
            f"{'s' if len(missing) > 1 else ''}. "
            f"Columns found: {shown}. Expected "
            + " and ".join(REQUIRED_HELP[m] for m in missing)
            + ". Name the file's columns with --map column=field, e.g. --map "
            + f"'{cols[0] if cols else 'When'}=timestamp' (fields: {', '.join(MAPPABLE)})")
    return found


# result values -> outcome: exact values first, then word stems (failure stems before
# success ones, since "неуспешно" contains "успешно")
RESULT_EXACT: dict[str, str] = {
    "ok": "success", "true": "success", "yes": "success", "1": "success", "да": "success",
    "false": "failure", "no": "failure", "0": "failure", "нет": "failure",
}
RESULT_STEMS: tuple[tuple[str, str], ...] = (
    ("неуспеш", "failure"), ("не успеш", "failure"), ("ошиб", "failure"),
    ("неверн", "failure"), ("fail", "failure"), ("invalid", "failure"),
    ("wrong", "failure"), ("error", "failure"), ("incorrect", "failure"),
    ("отказ", "denied"), ("заблок", "denied"), ("запрещ", "denied"), ("block", "denied"),
    ("denied", "denied"), ("forbid", "denied"),
    ("успеш", "success"), ("success", "success"), ("выполнен", "success"),
    ("разреш", "success"), ("allow", "success"),
)


def result_outcome(value: str | None) -> str:
    """success / failure / denied / unknown from a result cell, in English or Russian.

    Example:
        >>> result_outcome("Неуспешно"), result_outcome("Success")
        ('failure', 'success')
    """
    if value is None:
        return "unknown"
    text = value.strip().lower().replace("ё", "е")
    if text in RESULT_EXACT:
        return RESULT_EXACT[text]
    for stem, result in RESULT_STEMS:
        if stem in text:
            return result
    return "unknown"


_RU = re.compile(
    r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[,\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?"
    r"\s*(?:\(?(?:UTC|GMT)?\s*([+-]\d{1,2}(?::?\d{2})?)\)?|(UTC|GMT|Z|MSK|МСК))?$",
    re.IGNORECASE,
)
_ZONES = {"utc": 0, "gmt": 0, "z": 0, "msk": 3, "мск": 3}
_ISO_NO_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}$")


def parse_time(text: str) -> datetime:
    """A login time: ISO 8601, ``DD.MM.YYYY HH:MM[:SS]`` (Russian exports) or epoch.

    Times without a zone or offset are read in the file's zone (``--tz``), else taken as
    UTC (:func:`loaders.parsing.timeutil.naive_to_utc`); ``MSK``/``МСК`` is UTC+3.

    Raises:
        TimeError: not a time in any of these forms.

    Example:
        >>> parse_time("21.05.2025 13:15:02 +03:00").isoformat()
        '2025-05-21T10:15:02+00:00'
    """
    value = text.strip()
    if re.fullmatch(r"\d{9,19}(\.\d+)?", value):
        return from_epoch(value)
    m = _RU.match(value)
    if m:
        day, month, year, hh, mm, ss, frac, offset, zone = m.groups()
        try:
            naive = datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0),
                             min(int(ss or 0), 59), int((frac or "0").ljust(6, "0")))
        except ValueError as exc:
            raise TimeError(f"out of range: {value[:60]!r}") from exc
        if not zone and not offset:  # no zone written: the file's (--tz), else UTC assumed
            return naive_to_utc(naive)
        shift = timedelta(hours=_ZONES.get((zone or "utc").lower(), 0))
        if offset:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            hours, minutes = (digits[:-2], digits[-2:]) if len(digits) > 2 else (digits, "0")
            shift = sign * timedelta(hours=int(hours), minutes=int(minutes))
        return (naive - shift).replace(tzinfo=UTC)
    if _ISO_NO_SECONDS.match(value):
        value += ":00"
    try:
        return parse_iso(value)
    except TimeError:
        raise TimeError(f"unreadable time {value[:60]!r} (expected ISO 8601, "
                        "DD.MM.YYYY HH:MM[:SS] or epoch seconds)") from None
