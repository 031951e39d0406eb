"""Incidents: findings that share an entity within a time window, grouped and explained.

:func:`correlate` links two findings of at least ``min_severity`` when they name the same
entity (principal, address, host, pod, session: a finding's main entity or one of its
``entities``) and their time spans are at most ``window`` apart; each connected group is an
incident. Every link is kept (which entity joined which two findings), so the grouping can
be checked. Findings below ``min_severity`` never join two incidents: they are attached as
context to the incident whose findings' *main* entities they name, within the window.

An incident's id hashes the ids of its findings, so the same findings give the same id.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from analysis.detect.base import Finding, Severity, severity_rank

DEFAULT_WINDOW = timedelta(hours=6)


@dataclass(frozen=True)
class Link:
    """Why two findings are in one incident."""

    finding_a: str
    finding_b: str
    entity_type: str
    entity: str


@dataclass(frozen=True)
class Incident:
    """A group of findings about one activity."""

    incident_id: str
    title: str
    severity: Severity
    first_seen: datetime
    last_seen: datetime
    principals: tuple[str, ...]
    addresses: tuple[str, ...]
    entities: tuple[tuple[str, str], ...]
    finding_ids: tuple[str, ...]  # ordered by time
    context_ids: tuple[str, ...] = ()  # lower-severity findings about the same entities
    links: tuple[Link, ...] = field(default=())


def _entities(f: Finding) -> set[tuple[str, str]]:
    return {(f.entity_type, f.entity), *f.entities}


def _gap(a: Finding, b: Finding) -> timedelta:
    if a.first_seen > b.first_seen:
        a, b = b, a
    return max(timedelta(0), b.first_seen - a.last_seen)


def correlate(findings: Sequence[Finding], *, window: timedelta = DEFAULT_WINDOW,
              min_severity: Severity = "medium") -> list[Incident]:
    """Group findings into incidents, most severe first, then by time.

    Args:
        findings: the findings of a run.
        window: the largest gap between two findings' time spans that still links them.
        min_severity: findings at or above it form incidents; the others become context.
    """
    floor = severity_rank(min_severity)
    seeds = sorted((f for f in findings if severity_rank(f.severity) >= floor),
                   key=lambda f: (f.first_seen, f.finding_id))
    parent = list(range(len(seeds)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_entity: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(seeds):
        for e in _entities(f):
            by_entity[e].append(i)
    links: list[tuple[int, int, tuple[str, str]]] = []
    for entity, members in sorted(by_entity.items()):
        for x, i in enumerate(members):
            for j in members[x + 1:]:
                if _gap(seeds[i], seeds[j]) <= window:
                    links.append((i, j, entity))
                    ri, rj = root(i), root(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(seeds)):
        groups[root(i)].append(i)
    incidents = []
    rest = [f for f in findings if severity_rank(f.severity) < floor]
    for members in groups.values():
        group = [seeds[i] for i in members]
        incidents.append(_incident(group, [(seeds[i].finding_id, seeds[j].finding_id, e)
                                           for i, j, e in links if root(i) == root(members[0])],
                                   rest, window))
    return sorted(incidents, key=lambda n: (-severity_rank(n.severity), n.first_seen,
                                           n.incident_id))


def _incident(group: list[Finding], links: Iterable[tuple[str, str, tuple[str, str]]],
              rest: Sequence[Finding], window: timedelta) -> Incident:
    group = sorted(group, key=lambda f: (f.first_seen, -severity_rank(f.severity),
                                         f.finding_id))
    first = min(f.first_seen for f in group)
    last = max(f.last_seen for f in group)
    main = {(f.entity_type, f.entity) for f in group}
    context = [f for f in rest if (f.entity_type, f.entity) in main or
               any(e in main for e in f.entities)]
    context = [f for f in context if f.last_seen >= first - window and
               f.first_seen <= last + window]
    entities: dict[tuple[str, str], None] = {}
    for f in group:
        for e in [(f.entity_type, f.entity), *f.entities]:
            entities[e] = None
    principals = _ordered(group, "principal")
    addresses = _ordered(group, "ip")
    severity = max((f.severity for f in group), key=severity_rank)
    ids = tuple(f.finding_id for f in group)
    digest = hashlib.sha256("\x1f".join(sorted(ids)).encode()).hexdigest()[:16]
    return Incident(
        incident_id=f"INC-{digest}", title=_title(severity, principals, addresses, group),
        severity=severity, first_seen=first, last_seen=last, principals=principals,
        addresses=addresses, entities=tuple(sorted(entities)), finding_ids=ids,
        context_ids=tuple(f.finding_id for f in sorted(context, key=lambda f: (
            f.first_seen, f.finding_id))),
        links=tuple(Link(a, b, e[0], e[1]) for a, b, e in sorted(links)))


def _ordered(group: Sequence[Finding], kind: str) -> tuple[str, ...]:
    """Entities of one type, main entities first, in order of first appearance."""
    seen: dict[str, None] = {}
    for f in group:
        if f.entity_type == kind:
            seen[f.entity] = None
    for f in group:
        for t, v in f.entities:
            if t == kind and f.entity_type != "ip":  # a spray's targets are not the actors
                seen[v] = None
    return tuple(seen)


def _title(severity: str, principals: Sequence[str], addresses: Sequence[str],
           group: Sequence[Finding]) -> str:
    what = {"success_after_failures": "account takeover", "risky_signin": "suspicious sign-in",
            "shared_new_address": "account takeover", "password_spray": "password spraying",
            "brute_force": "brute force", "first_seen_privileged": "new privileged identity",
            "dormant_account": "dormant account use"}
    kinds = list(dict.fromkeys(what.get(f.detector, f.detector.replace("_", " "))
                               for f in sorted(group, key=lambda f: -severity_rank(f.severity))))
    who = ", ".join(principals[:3]) + (f" and {len(principals) - 3} more"
                                       if len(principals) > 3 else "")
    where = ", ".join(addresses[:3]) + (f" and {len(addresses) - 3} more"
                                        if len(addresses) > 3 else "")
    head = kinds[0][0].upper() + kinds[0][1:]
    if len(kinds) > 1:
        head += " with " + ", ".join(kinds[1:3])
    return head + (f": {who}" if who else "") + (f" from {where}" if where else "")


