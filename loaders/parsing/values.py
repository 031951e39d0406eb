"""The value layer: one spelling per value, whichever source or code path wrote it.

Analysis joins sources on these values (one address in the panel log, the Kubernetes audit
log and sshd; one user name on every host), so every loader, per-record and vectorized,
goes through the functions here, and the ingest runner applies :func:`conform` to every
table a loader hands it as the last word:

- **Addresses** (:func:`canonical_ip`): lower case, compressed IPv6 (RFC 5952), an
  IPv4-mapped IPv6 address as dotted IPv4 (``::ffff:10.0.0.5`` → ``10.0.0.5``: one client,
  one spelling), with brackets, a port and an IPv6 zone id removed. A value that is not an
  address becomes null and a ``parse_warning`` (the record's ``raw`` keeps what was written);
  placeholders (``-``, ``?``, empty, ``n/a``, ``null``, ``UNKNOWN``) are null without a
  warning.
- **Nulls are never text**: :func:`text` and :func:`join` skip ``None`` instead of writing
  ``"None"``.
- **Names** (:func:`name`, for ``user`` and ``host``): surrounding white space removed;
  empty, ``-`` and ``?`` null (``none`` or ``null`` may be an account's name). Case is
  kept: Linux account names are case-sensitive, and analysis derives a case-folded
  principal of its own.

Example:
    >>> canonical_ip(" [2001:DB8:0:0::1%eth0]:443 ")
    ('2001:db8::1', None)
    >>> canonical_ip("::FFFF:10.0.0.5")
    ('10.0.0.5', None)
    >>> canonical_ip("gateway.local")
    (None, "src_ip: not an IP address: 'gateway.local'")
    >>> join(["system:masters", None, "dev"])
    'system:masters,dev'
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# written where a source has no value; compared case-insensitively
PLACEHOLDERS = frozenset({"", "-", "?", "n/a", "na", "null", "none", "(null)", "(none)",
                          "unknown"})  # sshd: "from UNKNOWN"
_LONGEST_PLACEHOLDER = max(len(p) for p in PLACEHOLDERS)
# a name is a placeholder only when it is one of these: "none" or "null" may be an account
NAME_PLACEHOLDERS = frozenset({"", "-", "?"})
_NULL = pa.scalar(None, pa.string())


def is_placeholder(text: str) -> bool:
    """True for the spellings sources use for "no value" (after stripping white space)."""
    return len(text) <= _LONGEST_PLACEHOLDER and text.lower() in PLACEHOLDERS


def canonical_ip(value: Any, column: str = "src_ip") -> tuple[str | None, str | None]:
    """The canonical text of an address, and a warning when the value is not one.

    Args:
        value: the address as the source wrote it: possibly with white space, brackets, a
            port (``1.2.3.4:5678``, ``[2001:db8::1]:443``) or a zone id (``fe80::1%eth0``).
        column: the column named in the warning.

    Returns:
        ``(address, None)``; ``(None, None)`` for no value or a placeholder; ``(None,
        warning)`` when the value is present but not an IP address.
    """
    if value is None:
        return None, None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return _canonical(value if isinstance(value, str) else str(value), column)


@lru_cache(maxsize=65536)  # the same few client addresses repeat across a whole log
def _canonical(value: str, column: str) -> tuple[str | None, str | None]:
    text = value.strip()
    if is_placeholder(text):
        return None, None
    address = _address(text)
    if address is None:
        return None, f"{column}: not an IP address: {text[:60]!r}"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped), None
    return str(address), None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if text.startswith("["):  # [v6] or [v6]:port
        end = text.find("]")
        rest = text[end + 1:] if end > 0 else "?"
        if rest and not (rest[0] == ":" and _is_port(rest[1:])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # v4:port (an IPv6 address has at least two colons)
        text, _, port = text.partition(":")
        if not _is_port(port):
            return None
    if "%" in text:  # zone id of a link-local IPv6 address
        text, _, zone = text.partition("%")
        if not zone or ":" not in text:
            return None
    if not text.isascii():  # ipaddress accepts non-ASCII digits ('١.٢.٣.٤' is not an address)
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 65535


def canonical_ips(values: pa.Array | pa.ChunkedArray, column: str = "src_ip"
                  ) -> tuple[pa.Array, pa.Array]:
    """:func:`canonical_ip` of a string column: the addresses and the warnings (both
    string arrays of the same length; null where there is none).

    Each distinct value is looked at once, so a column of a few addresses costs one
    dictionary encoding.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count == len(values):
        nulls = pa.nulls(len(values), pa.string())
        return nulls, nulls
    encoded = pc.dictionary_encode(values)
    pairs = [canonical_ip(v, column) for v in encoded.dictionary.to_pylist()]
    indices = encoded.indices
    addresses = pc.take(pa.array([a for a, _ in pairs], pa.string()), indices)
    warnings = pc.take(pa.array([w for _, w in pairs], pa.string()), indices)
    return addresses, warnings


def text(value: Any) -> str | None:
    """A scalar as text: None for null, empty or white space only; never ``"None"``."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return value if value and not value.isspace() else None


def join(values: Iterable[Any] | None, sep: str = ",") -> str | None:
    """The non-null, non-empty values as text joined by ``sep``; None when there are none."""
    if not values:
        return None
    return sep.join(t for t in map(text, values) if t is not None) or None


def name(value: Any) -> str | None:
    """A user or host name: white space around it removed, placeholders None, case kept."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    stripped = value.strip()
    return None if stripped in NAME_PLACEHOLDERS else stripped


def names(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """:func:`name` of a string column."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count == len(values):
        return values
    encoded = pc.dictionary_encode(values)
    dictionary = pa.array([name(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(dictionary, encoded.indices)


NAME_COLUMNS = ("user", "host")


def conform(table: pa.Table) -> pa.Table:
    """The table with :func:`names` applied to ``user`` and ``host`` and
    :func:`canonical_ips` to ``src_ip`` (its warnings added to ``parse_warning``).

    Loaders already write these forms (they build messages from them); this is the runner's
    guarantee that every path, and every future loader, stores them the same way. A column
    that is already canonical comes back as it is (one dictionary encoding per batch).
    """
    for column in NAME_COLUMNS:
        if column in table.column_names:
            old = table.column(column)
            new = names(old)
            if not new.equals(old.combine_chunks()):
                table = table.set_column(table.schema.get_field_index(column),
                                         table.schema.field(column), new)
    if "src_ip" not in table.column_names:
        return table
    old = table.column("src_ip").combine_chunks()
    addresses, warnings = canonical_ips(old)
    if addresses.equals(old):
        return table
    table = table.set_column(table.schema.get_field_index("src_ip"),
                             table.schema.field("src_ip"), addresses)
    if warnings.null_count == len(warnings):
        return table
    at = table.schema.get_field_index("parse_warning")
    if at < 0:
        return table.append_column("parse_warning", warnings)
    before = table.column("parse_warning").combine_chunks()
    merged = pc.coalesce(pc.binary_join_element_wise(before, warnings, "; "), before,
                         warnings)
    return table.set_column(at, table.schema.field("parse_warning"), merged)
