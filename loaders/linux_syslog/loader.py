"""Whole syslog files (``/var/log/syslog``, ``/var/log/messages``, ``kern.log``, ``cron``,
``daemon.log``, ``user.log`` …) and the systemd journal: one event per line or entry, every
program.

Three input forms, told apart from the file's head:

- syslog text: RFC 3164, ISO 8601 (rsyslog high precision, ``journalctl -o short-iso``) and
  RFC 5424 headers, read by the same code as ``linux_auth`` (:mod:`loaders.parsing.syslog`:
  header, year guessing, the file's zone for times without one) and interpreted by the same
  auth mapping (:mod:`loaders.parsing.authlog`), so an sshd, sudo or su line gives the same
  values in both sources, ``source`` aside. ``<PRI>`` gives ``syslog_facility`` and
  ``syslog_severity``. journalctl's ``-- Boot …`` / ``-- Logs begin …`` separators are not
  records and are skipped.
- ``journalctl -o json`` and ``journalctl -o export`` (:mod:`.journal`): MESSAGE interpreted
  by SYSLOG_IDENTIFIER the same way, ``__CURSOR`` the native id.

Detection defers to ``linux_auth``: a head whose lines are from auth programs is an auth
log (unless the file is named like a whole syslog: ``syslog``, ``messages``…); other
syslog-shaped heads (at least half of their first lines with a header) are this source's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from loaders.base import Item, LineLoader, Parsed, Reject, Source
from loaders.linux_syslog.journal import JournalError, journal_fields, read_export
from loaders.parsing.authlog import SyslogMapper
from loaders.parsing.syslog import (
    YearGuesser,
    auth_head,
    facility_severity,
    syslog_head,
    whole_syslog_name,
)
from loaders.schema.extras import LINUX_SYSLOG

_EXPORT_HEAD = re.compile(rb"(?m)^__REALTIME_TIMESTAMP=\d{1,19}$")
_SEPARATOR = re.compile(r"^-- (?:Logs begin at|Journal begins at|Boot [0-9a-f]{32}|No entries|"
                        r"Reboot)\b.{0,200}$")


def _form(head: bytes) -> str | None:
    """``journal_export``, ``journal_json`` or ``syslog`` from a head, or None."""
    start = head[:16384].lstrip(b"\xef\xbb\xbf \t\r\n")
    if (start.startswith(b"__CURSOR=") or start.startswith(b"__REALTIME_TIMESTAMP=")) \
            and _EXPORT_HEAD.search(start) is not None:
        return "journal_export"
    if start.startswith(b"{") and b'"__REALTIME_TIMESTAMP"' in start[:8192] \
            and b'"__CURSOR"' in start[:8192]:
        return "journal_json"
    return "syslog" if syslog_head(head) else None


class LinuxSyslogLoader(LineLoader):
    name = "linux_syslog"
    description = ("Linux syslog (every program: kernel, cron, daemons, and sshd/sudo/su "
                   "mapped as in linux_auth) and the systemd journal")
    reads = ("/var/log/syslog, /var/log/messages, kern.log, cron, daemon.log, user.log; "
             "RFC 3164 (year from --year or mtime), ISO 8601 and RFC 5424 headers; "
             "journalctl -o short-iso, -o json, -o export; .gz")
    prefix = LINUX_SYSLOG.prefix
    record = "line (journal: entry)"
    extra_columns = LINUX_SYSLOG.columns

    def sniff(self, head: bytes, name: str) -> bool:
        form = _form(head)
        if form != "syslog":
            return form is not None
        return not auth_head(head) or whole_syslog_name(name)

    def parse(self, src: Source) -> Iterator[Item]:
        form = _form(src.head)
        if form == "journal_export":
            yield from self._parse_export(src)
            return
        yield from super().parse(src)

    def file_state(self, src: Source) -> tuple[SyslogMapper, bool]:
        return SyslogMapper(YearGuesser(src.options.year, src.file.mtime)), \
            _form(src.head) == "journal_json"

    def from_line(self, text: str, number: int, state: tuple[SyslogMapper, bool]) -> Item | None:
        """Map one syslog line, or one ``journalctl -o json`` line, to an event."""
        mapper, is_json = state
        if is_json and text.lstrip().startswith("{"):
            return _json_entry(text, number)
        if text.startswith("-- ") and _SEPARATOR.match(text):
            return None  # journalctl's boot separators: not records
        item, header = mapper.line(text, number)
        if header is not None and isinstance(item, Parsed):
            facility, severity = facility_severity(header.pri)
            item.fields.update({
                "syslog_program": header.prog or item.fields.get("auth_program"),
                "syslog_facility": facility,
                "syslog_severity": severity,
                "syslog_form": header.form,
                "syslog_pam_module": header.module,
            })
        return item

    def _parse_export(self, src: Source) -> Iterator[Item]:
        with src.binary() as fh:
            for entry in read_export(fh, src.options.tuning.max_line_bytes,
                                     lambda: src.stopped):
                if entry.error is not None:
                    yield Reject(entry.line, entry.error, entry.raw)
                    continue
                try:
                    fields, warnings, cursor = journal_fields(entry.fields, "journal_export")
                except JournalError as exc:
                    yield Reject(entry.line, str(exc), entry.raw)
                    continue
                yield Parsed(entry.line, entry.raw, fields, cursor, warnings or None)


def _json_entry(text: str, number: int) -> Item:
    try:
        value: Any = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Reject(number, f"not a JSON object: {exc}", text)
    if not isinstance(value, dict):
        return Reject(number, f"journal JSON line is a {type(value).__name__}, not an object",
                      text)
    try:
        fields, warnings, cursor = journal_fields(value, "journal_json")
    except JournalError as exc:
        return Reject(number, str(exc), text)
    return Parsed(number, text, fields, cursor, warnings or None)


LOADER = LinuxSyslogLoader()
