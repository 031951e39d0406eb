"""Principals: one name per person, service or machine, whatever each source calls it.

The same person is ``anna.volkova`` in the control panel, ``NORDWIND\\anna.volkova`` or
``anna.volkova@nordwind.example`` on Windows, ``oidc:anna.volkova@nordwind.example`` in
Kubernetes. :func:`principal` derives one principal from a stored ``user`` value:

1. the analyst's alias table wins (exact alias, compared case-insensitively);
2. otherwise: trimmed and case-folded; a Windows domain prefix (``DOMAIN\\``) and a
   Kubernetes OIDC prefix (``oidc:``, ``oidc#``, an issuer URL ``https://…#``) removed; an
   e-mail or UPN form (``name@domain``) reduced to its local part.

Kinds: ``service`` (Kubernetes service accounts, Selectel service users), ``machine``
(Windows computer accounts ``NAME$``, Kubernetes nodes), ``system`` (other ``system:``
Kubernetes identities, ``SYSTEM``, ``LOCAL SERVICE``…), ``uid`` (a bare numeric id, which
names an account only together with its host: ``uid:1001@app-01``), ``user`` otherwise.

Known limits, on purpose: ``anna@a.example`` and ``anna@b.example`` become one principal
(one organisation's logs are the norm; add aliases to split them), and a generic name
(``admin``) in two systems is one principal unless the alias table separates them.

The alias table is CSV (``alias,principal[,kind]``) or TOML (``[aliases]`` table of
``alias = "principal"``); it is recorded in every detection run's parameters.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

Kind = Literal["user", "service", "machine", "system", "uid"]
KINDS: tuple[Kind, ...] = ("user", "service", "machine", "system", "uid")

_WINDOWS_SYSTEM = frozenset({"system", "local service", "network service", "anonymous logon",
                             "dwm-1", "umfd-0", "umfd-1", "font driver host", "-"})
_OIDC = re.compile(r"^(?:oidc[:#]|https?://[^#\s]*#)", re.IGNORECASE)


@dataclass(frozen=True)
class Identities:
    """The analyst's alias table: alias (case-folded) -> (principal, kind or None)."""

    aliases: Mapping[str, tuple[str, Kind | None]] = field(default_factory=dict)
    origin: str | None = None

    @classmethod
    def load(cls, path: str | Path) -> Identities:
        """Read an alias table from CSV (``alias,principal[,kind]``) or TOML.

        Raises:
            ValueError: a row without both alias and principal, or an unknown kind.
        """
        p = Path(path)
        rows: list[tuple[str, str, str | None]] = []
        if p.suffix.lower() == ".toml":
            data = tomllib.loads(p.read_text(encoding="utf-8"))
            for alias, value in (data.get("aliases") or {}).items():
                if isinstance(value, dict):
                    rows.append((alias, str(value.get("principal", "")), value.get("kind")))
                else:
                    rows.append((alias, str(value), None))
        else:
            with p.open(newline="", encoding="utf-8-sig") as fh:
                for n, rec in enumerate(csv.reader(fh), 1):
                    if not rec or rec[0].startswith("#") or (n == 1 and rec[0] == "alias"):
                        continue
                    rows.append((rec[0], rec[1] if len(rec) > 1 else "",
                                 rec[2] if len(rec) > 2 and rec[2] else None))
        table: dict[str, tuple[str, Kind | None]] = {}
        for alias, target, kind in rows:
            if not alias.strip() or not target.strip():
                raise ValueError(f"{p}: an alias needs both alias and principal: "
                                 f"{alias!r} -> {target!r}")
            if kind is not None and kind not in KINDS:
                raise ValueError(f"{p}: unknown kind {kind!r} for {alias!r}; one of {KINDS}")
            table[alias.strip().casefold()] = (target.strip(), kind)
        return cls(table, str(p))

    def describe(self) -> dict[str, Any]:
        """The table as plain values, for a run's parameters."""
        return {"origin": self.origin,
                "aliases": {a: list(v) for a, v in sorted(self.aliases.items())}}


NO_ALIASES = Identities()


def principal(user: str | None, source: str | None = None, host: str | None = None,
              subject_type: str | None = None,
              identities: Identities = NO_ALIASES) -> tuple[str | None, Kind | None]:
    """The principal and its kind for a stored ``user`` value.

    Args:
        user: the event's ``user``.
        source: the event's source (decides nothing today but the uid form's host).
        host: the event's host (a numeric uid is qualified with it).
        subject_type: a source's own account type where it has one (Selectel
            ``service_user``).
        identities: the analyst's alias table.

    Example:
        >>> principal("NORDWIND\\\\Anna.Volkova")
        ('anna.volkova', 'user')
        >>> principal("oidc:anna.volkova@nordwind.example")
        ('anna.volkova', 'user')
        >>> principal("system:serviceaccount:ci:gitlab-deployer")
        ('system:serviceaccount:ci:gitlab-deployer', 'service')
        >>> principal("1001", host="app-01")
        ('uid:1001@app-01', 'uid')
    """
    if user is None or user != user:  # None or NaN
        return None, None
    text = str(user).strip()
    if not text:
        return None, None
    alias = identities.aliases.get(text.casefold())
    if alias is not None:
        target, kind = alias
        return target, kind or _kind(target, subject_type)
    folded = text.casefold()
    if folded.startswith("system:"):
        return folded, ("service" if folded.startswith("system:serviceaccount:") else
                        "machine" if folded.startswith("system:node:") else "system")
    name = _OIDC.sub("", folded)
    if "\\" in name:
        name = name.rsplit("\\", 1)[1]
    if "@" in name and not name.startswith("@"):
        name = name.split("@", 1)[0]
    name = name.strip()
    if not name:
        return None, None
    alias = identities.aliases.get(name)
    if alias is not None:
        target, kind = alias
        return target, kind or _kind(target, subject_type)
    if name.isdigit():
        return f"uid:{name}@{(host or '?').casefold()}", "uid"
    return name, _kind(name, subject_type)


def _kind(name: str, subject_type: str | None) -> Kind:
    if subject_type and "service" in subject_type.casefold():
        return "service"
    if name.endswith("$"):
        return "machine"
    if name in _WINDOWS_SYSTEM:
        return "system"
    return "user"


def principal_table(rows: Iterable[tuple[Any, Any, Any, Any]],
                    identities: Identities = NO_ALIASES) -> pd.DataFrame:
    """Principals of distinct ``(user, source, host, subject_type)`` rows, as a frame with
    those columns plus ``principal`` and ``kind`` (what analysis joins on)."""
    out = []
    for user, source, host, subject_type in rows:
        p, k = principal(user, source, host, subject_type, identities)
        out.append((user, source, host, subject_type, p, k))
    columns = ["user", "source", "host", "subject_type", "principal", "kind"]
    return pd.DataFrame(out, columns=columns).astype(object)


def register_principals(con: Any, identities: Identities = NO_ALIASES,
                        view: str = "history") -> None:
    """Create table ``principals`` (user, source, host, subject_type -> principal, kind) in a
    DuckDB connection from the distinct users of ``view`` (one pass, a few thousand rows)."""
    distinct = con.sql(
        f"SELECT DISTINCT user, source, host, selectel_subject_type FROM {view} "
        "WHERE user IS NOT NULL").fetchall()
    frame = principal_table(distinct, identities)  # noqa: F841 (read by DuckDB below)
    con.execute("CREATE OR REPLACE TABLE principals AS SELECT user::VARCHAR AS user, "
                "source::VARCHAR AS source, host::VARCHAR AS host, subject_type::VARCHAR AS "
                "subject_type, principal::VARCHAR AS principal, kind::VARCHAR AS kind "
                "FROM frame")
