"""Linux authentication logs (``/var/log/auth.log``, ``/var/log/secure``): one event per line.

Reads syslog lines with an RFC 3164 header (``Mar  1 10:00:01 host sshd[123]: …``, no year),
an ISO 8601 header (rsyslog high precision, ``2024-03-01T10:00:01.123456+03:00 host …``) or
an RFC 5424 header (``<38>1 2024-03-01T10:00:01Z host sshd 123 - - …``), and the older
``sshd(pam_unix)[pid]:`` tag. The message is interpreted by :mod:`loaders.parsing.authlog`
(sshd, sudo, su, PAM, shadow-utils, systemd-logind); lines from other programs are kept as
``log`` events. rsyslog's ``message repeated N times: [ … ]`` is its inner message with
``repeat_count`` N; ``last message repeated N times`` repeats the host's previous line.
The header, year and message code is shared with ``linux_syslog``
(:mod:`loaders.parsing.syslog`, :mod:`loaders.parsing.authlog`): the same line gives the
same values in both sources.

RFC 3164 lines carry no year and no zone. The year of the first line is ``LoadOptions.year``
when given, else the year of the file's modification time (a first line that would then be
later than the mtime belongs to the year before); afterwards a line whose month is earlier
than the previous line's means the year advanced (December → January). Times without a
zone are read in the file's zone (``--tz``, ``--tz-for``), else taken as UTC with a
``parse_warning`` (:mod:`loaders.parsing.timeutil`).
"""

from __future__ import annotations

from loaders.base import Item, LineLoader, Source
from loaders.parsing.authlog import SyslogMapper
from loaders.parsing.syslog import YearGuesser, auth_head, whole_syslog_name
from loaders.schema.extras import LINUX_AUTH

__all__ = ["LOADER", "LinuxAuthLoader", "YearGuesser"]


class LinuxAuthLoader(LineLoader):
    name = "linux_auth"
    description = "Linux auth log: sshd, sudo, su, PAM, useradd/passwd, systemd-logind"
    reads = ("/var/log/auth.log, /var/log/secure; syslog RFC 3164 (year from --year or "
             "mtime), ISO 8601 (rsyslog high precision) and RFC 5424 headers; .gz")
    prefix = LINUX_AUTH.prefix
    record = "line"
    extra_columns = LINUX_AUTH.columns

    def sniff(self, head: bytes, name: str) -> bool:
        return auth_head(head) and not whole_syslog_name(name)

    def file_state(self, src: Source) -> SyslogMapper:
        return SyslogMapper(YearGuesser(src.options.year, src.file.mtime))

    def from_line(self, text: str, number: int, state: SyslogMapper) -> Item:
        """Map one syslog line to an event, or reject it with the reason
        (:class:`~loaders.parsing.authlog.SyslogMapper`)."""
        return state.line(text, number)[0]


LOADER = LinuxAuthLoader()
