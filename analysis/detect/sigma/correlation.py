"""Sigma v2 correlation rules compiled to DuckDB window queries.

SigmaHQ's backends write correlation SQL for other databases, so the correlation is compiled
here from pySigma's parsed :class:`~sigma.correlations.SigmaCorrelationRule`. The referenced
base rules' events (each rule's condition as the backend compiled it, AND its log source's
``WHERE``) are one ``UNION ALL`` tagged with the rule's position ``r``, projecting the
group-by fields (``g0``, ``g1``, …, mapped per base rule by that rule's log source, so the
same Sigma name may be different columns in different sources) and, for ``value_count``, the
counted field ``v``. A window ``PARTITION BY`` the groups, ``ORDER BY timestamp RANGE BETWEEN
INTERVAL '<timespan>' PRECEDING AND CURRENT ROW`` then marks each row ending a window where
the correlation holds:

- ``event_count``: ``count(*)`` over the window compared with the condition;
- ``value_count``: ``count(DISTINCT v)`` (DuckDB allows DISTINCT in a RANGE window; checked
  against a hand count in the tests);
- ``temporal``: ``count(DISTINCT r)`` equals the number of rules;
- ``temporal_ordered``: one stage per rule, ``s<k>`` on rows of rule k the latest start of a
  chain rule 0 → … → rule k in the window (``max(s<k-1>)``); a row of the last rule with a
  chain started within the timespan holds. Events at the same timestamp count as ordered.

A window ending at a holding row covers ``[ts - timespan, ts]``; overlapping windows of one
group are merged into one burst, and each burst is one finding with the base events inside it
as evidence. SQL text comes only from the backend's escaped conditions, the pipeline's log
source conditions and numbers of the parsed rule; log content never reaches SQL.

``generate: false`` (the Sigma default) means the referenced rules give no findings of their
own when only correlations reference them: their ids are in :attr:`RuleSet.silent`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from analysis.detect.base import Finding, Severity
from analysis.detect.sigma.backend import field_sql
from analysis.detect.sigma.engine import (
    LEVEL_SCORES,
    LEVELS,
    MAX_EVIDENCE,
    CompiledRule,
    Skipped,
    attack_ids,
    attribution,
)

_OPS: dict[SigmaCorrelationConditionOperator, str] = {
    SigmaCorrelationConditionOperator.GTE: ">=", SigmaCorrelationConditionOperator.GT: ">",
    SigmaCorrelationConditionOperator.LTE: "<=", SigmaCorrelationConditionOperator.LT: "<",
    SigmaCorrelationConditionOperator.EQ: "=", SigmaCorrelationConditionOperator.NEQ: "<>"}
_TYPES = (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT,
          SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED)


@dataclass(frozen=True)
class CompiledCorrelation:
    """A correlation compiled for the store: its query and what findings need."""

    rule_id: str
    title: str
    kind: str
    level: Severity
    author: str
    references: tuple[str, ...]
    attack: tuple[str, ...]
    base: tuple[CompiledRule, ...]
    group_by: tuple[str, ...]
    seconds: int
    sql: str
    path: str
    description: str = ""

    @property
    def sources(self) -> frozenset[str]:
        """Store sources any base rule reads."""
        return frozenset().union(*(b.logsource.sources for b in self.base))


def _field(rule: CompiledRule, name: str) -> str:
    """The SQL of a Sigma field in a base rule's log source (raises if unmapped)."""
    return field_sql(rule.logsource.map_field(name))


def _aliased(corr: SigmaCorrelationRule, name: str, ref_rule: Any) -> str:
    """The base rule's own field name for a group-by name (Sigma ``aliases``)."""
    alias = corr.aliases.aliases.get(name)
    if alias is None:
        return name
    for ref, fname in alias.mapping.items():
        if getattr(ref, "rule", None) is ref_rule:
            return fname
    return name


def correlation_sql(kind: SigmaCorrelationType, unions: Sequence[str], ngroups: int,
                    seconds: int, nrules: int, op: str = ">=", count: float = 1) -> str:
    """The window query: every base event with ``hit`` true where a window ending at it holds."""
    groups = ", ".join(f"g{i}" for i in range(ngroups))
    part = f"PARTITION BY {groups} " if groups else ""
    win = (f"({part}ORDER BY timestamp RANGE BETWEEN INTERVAL '{seconds} seconds' PRECEDING "
           "AND CURRENT ROW)")
    cols = f"r, event_uid, timestamp, host, \"user\"{', ' if groups else ''}{groups}"
    base = "WITH base AS (" + " UNION ALL ".join(unions) + ")"
    num = repr(int(count)) if float(count).is_integer() else repr(float(count))
    if kind is SigmaCorrelationType.EVENT_COUNT:
        hit = f"count(*) OVER {win} {op} {num}"
    elif kind is SigmaCorrelationType.VALUE_COUNT:
        hit = f"count(DISTINCT v) OVER {win} {op} {num}"
    elif kind is SigmaCorrelationType.TEMPORAL:
        hit = f"count(DISTINCT r) OVER {win} = {nrules}"
    else:
        stages = ["s0 AS (SELECT *, CASE WHEN r = 0 THEN timestamp END AS c0 FROM base)"]
        for k in range(1, nrules):
            stages.append(f"s{k} AS (SELECT *, CASE WHEN r = {k} THEN max(c{k - 1}) OVER "
                          f"{win} END AS c{k} FROM s{k - 1})")
        last = nrules - 1
        return (f"{base}, {', '.join(stages)} SELECT {cols}, COALESCE(r = {last} AND "
                f"timestamp - c{last} <= INTERVAL '{seconds} seconds', false) AS hit "
                f"FROM s{last} ORDER BY {groups + ', ' if groups else ''}timestamp, event_uid")
    return (f"{base} SELECT {cols}, {hit} AS hit FROM base "
            f"ORDER BY {groups + ', ' if groups else ''}timestamp, event_uid")


def compile_correlation(corr: SigmaCorrelationRule, path: str,
                        compiled: Mapping[int, CompiledRule | Skipped]
                        ) -> CompiledCorrelation | Skipped:
    """A parsed correlation compiled for the store, or why it cannot be.

    ``compiled`` holds the file's base rules as compiled, by ``id()`` of the parsed rule.
    """
    rid, title = str(corr.id or corr.name or ""), str(corr.title or "")
    if corr.type not in _TYPES:
        return Skipped(path, rid, title, f"correlation type not supported: {corr.type.name}")
    if not isinstance(corr.condition, SigmaCorrelationCondition):
        return Skipped(path, rid, title, "correlation condition not supported: extended")
    base: list[tuple[Any, CompiledRule]] = []
    for ref in corr.rules or ():
        rule = getattr(ref, "rule", None)
        got = compiled.get(id(rule)) if isinstance(rule, SigmaRule) else None
        if got is None:
            return Skipped(path, rid, title,
                           f"correlation base rule not usable: {ref.reference}")
        if isinstance(got, Skipped):
            return Skipped(path, rid, title,
                           f"correlation base rule skipped: {ref.reference}: {got.reason}")
        base.append((rule, got))
    if not base:
        return Skipped(path, rid, title, "correlation base rule not usable: no rules")
    group_by = tuple(corr.group_by or ())
    fieldref = corr.condition.fieldref
    if corr.type is SigmaCorrelationType.VALUE_COUNT and not isinstance(fieldref, str):
        return Skipped(path, rid, title, "correlation condition not supported: field list")
    unions = []
    for i, (rule, cr) in enumerate(base):
        try:
            gs = [f"{_field(cr, _aliased(corr, g, rule))} AS g{n}"
                  for n, g in enumerate(group_by)]
        except SigmaError as exc:
            return Skipped(path, rid, title, f"correlation group-by field not mapped: {exc}")
        cols = ", ".join([f"{i} AS r", "event_uid", "timestamp", "host", '"user"', *gs])
        nonnull = "".join(f" AND g{n} IS NOT NULL" for n in range(len(group_by)))
        if corr.type is SigmaCorrelationType.VALUE_COUNT:
            assert isinstance(fieldref, str)
            try:
                cols += f", {_field(cr, _aliased(corr, fieldref, rule))} AS v"
            except SigmaError as exc:
                return Skipped(path, rid, title, f"correlation field not mapped: {exc}")
        unions.append(f"SELECT * FROM (SELECT {cols} FROM events WHERE ({cr.logsource.where})"
                      f" AND ({cr.condition})) WHERE true{nonnull}")
    seconds = int(corr.timespan.seconds)
    sql = correlation_sql(corr.type, unions, len(group_by), seconds, len(base),
                          _OPS[corr.condition.op], corr.condition.count)
    level = LEVELS.get(corr.level.name.lower() if corr.level else "", "medium")
    return CompiledCorrelation(
        rid or title, title, corr.type.name.lower(), level, str(corr.author or ""),
        tuple(str(r) for r in corr.references or ()), attack_ids(corr.tags or ()),
        tuple(cr for _, cr in base), group_by, seconds, sql, path,
        str(corr.description or ""))


def silent_rules(rules: Sequence[SigmaRule | SigmaCorrelationRule],
                 compiled: Mapping[int, CompiledRule | Skipped]) -> set[str]:
    """Ids of base rules that give no findings of their own: every correlation referencing
    them has ``generate: false`` (the Sigma v2 default)."""
    referenced: dict[int, bool] = {}
    for corr in rules:
        if isinstance(corr, SigmaCorrelationRule):
            for ref in corr.rules or ():
                key = id(getattr(ref, "rule", None))
                referenced[key] = referenced.get(key, False) or bool(corr.generate)
    return {got.rule_id for key, got in compiled.items()
            if isinstance(got, CompiledRule) and key in referenced and not referenced[key]}


Row = tuple[Any, ...]  # r, event_uid, timestamp, host, user, g0…, hit


def bursts(rows: Sequence[Row], ngroups: int, seconds: int
           ) -> list[tuple[tuple[Any, ...], list[Row]]]:
    """Per group, the merged windows ``[ts - timespan, ts]`` ending at holding rows, each with
    the base events inside it (rows sorted by group, then time, as the query returns them)."""
    span = timedelta(seconds=seconds)
    by: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in rows:
        by[tuple(row[5:5 + ngroups])].append(row)
    out = []
    for key, grows in by.items():
        spans: list[list[Any]] = []
        for row in grows:
            if row[-1]:
                lo, hi = row[2] - span, row[2]
                if spans and lo <= spans[-1][1]:
                    spans[-1][1] = hi
                else:
                    spans.append([lo, hi])
        for lo, hi in spans:
            out.append((key, [row for row in grows if lo <= row[2] <= hi]))
    return out


def findings_of_correlation(corr: CompiledCorrelation, rows: Sequence[Row]) -> list[Finding]:
    """One finding per group and burst, the burst's base events as evidence."""
    out = []
    refs = "; ".join(corr.references[:5])
    for key, evs in bursts(rows, len(corr.group_by), corr.seconds):
        group = ", ".join(f"{g}={v}" for g, v in zip(corr.group_by, key, strict=True))
        hosts = sorted({str(e[3]) for e in evs if e[3]})
        users = sorted({str(e[4]) for e in evs if e[4]})
        if "host" in corr.group_by or (not corr.group_by and len(hosts) == 1):
            etype, entity = "host", str(key[corr.group_by.index("host")]
                                        if "host" in corr.group_by else hosts[0])
        elif corr.group_by:
            etype, entity = "sigma_group", group
        else:
            etype, entity = "sigma_rule", corr.rule_id
        desc = (f"{len(evs)} events of {len(corr.base)} rule(s) "
                f"({', '.join(b.title for b in corr.base)}) within {corr.seconds} s"
                + (f" for {group}" if group else "")
                + f" match Sigma {corr.kind} correlation \"{corr.title}\" (id {corr.rule_id})."
                + (f" {corr.description}" if corr.description else "")
                + attribution(corr.author, corr.path)
                + (f"; references: {refs}" if refs else "") + ".")
        out.append(Finding(
            detector=f"sigma:{corr.rule_id}", detector_version="sigma", title=corr.title,
            description=desc, severity=corr.level,
            score=LEVEL_SCORES[corr.level],
            entity_type=etype, entity=entity, first_seen=evs[0][2], last_seen=evs[-1][2],
            event_uids=tuple(str(e[1]) for e in evs[:MAX_EVIDENCE]), attack=corr.attack,
            entities=(("sigma_rule", corr.rule_id), *(("host", h) for h in hosts[:20]),
                      *(("user", u) for u in users[:20]))))
    return out


def run_correlations(con: Any, correlations: Sequence[CompiledCorrelation],
                     present: set[str] | None = None,
                     errors: dict[str, str] | None = None) -> list[Finding]:
    """Every correlation whose base rules read a present source, as findings.

    A correlation DuckDB refuses costs only itself: its error goes to ``errors`` (by rule
    id) when given, and the others still run.
    """
    found: list[Finding] = []
    for corr in correlations:
        if present is not None and not corr.sources & present:
            continue
        try:
            rows = con.execute(corr.sql).fetchall()
        except Exception as exc:  # any DuckDB error: reported, not raised
            if errors is None:
                raise
            errors[corr.rule_id] = f"{type(exc).__name__}: {exc}"
            continue
        found.extend(findings_of_correlation(corr, rows))
    return found
