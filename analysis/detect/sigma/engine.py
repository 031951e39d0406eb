"""Load Sigma rules, compile them for the store, run them, and make findings.

Rules are loaded with pySigma (one file at a time, so one broken file costs only itself),
compiled by :class:`~analysis.detect.sigma.backend.DuckDBBackend` through the store pipeline,
and grouped by the store log source they read. Each group is ONE scan of ``events``:

    SELECT event_uid, timestamp, host, "user", unnest(list_value(
        CASE WHEN (<rule 0>) THEN 0 END, CASE WHEN (<rule 1>) THEN 1 END, …)) AS r
    FROM events WHERE <log source condition>

so a thousand process-creation rules read the process events once (a ``UNION ALL`` of one
``SELECT`` per rule scans once per rule). Measured once, 1,183 process-creation rules over
3,510 events (the regression recordings, 30 copies, in memory): this form 10.0 s, the
``UNION ALL`` 7.2 s, same hits. The set is too small for one scan to matter, so which
form wins on a large Parquet store is still to measure (the benchmark slice). A group whose
query fails is rerun rule by rule, so one rule DuckDB refuses costs only that rule. Rules
whose log source the store does not hold, or that do not convert, are skipped and counted
with the reason.

Sigma v2 correlation rules are compiled by :mod:`analysis.detect.sigma.correlation` from the
base rules compiled here (one query each, run after the rule groups); base rules that only
``generate: false`` correlations reference are in :attr:`RuleSet.silent` and give no findings.

Findings: one per rule per entity (the host, else the user), with the rule's id, title,
level as severity, ATT&CK ids from ``attack.tXXXX`` tags, and author and references in the
description (the rules' DRL 1.1 licence requires attribution).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from analysis.detect.base import Context, Detector, Finding, Severity
from analysis.detect.sigma.backend import DuckDBBackend
from analysis.detect.sigma.pipeline import LogSource, logsource_of, store_pipeline

LEVELS: dict[str, Severity] = {"informational": "info", "low": "low", "medium": "medium",
                               "high": "high", "critical": "critical"}
MAX_EVIDENCE = 200  # event uids kept per finding; the description gives the full count
# a rule finding's score from the rule's level (the detectors' scores run 0..1 likewise)
LEVEL_SCORES: dict[str, float] = {"info": 0.1, "low": 0.3, "medium": 0.5, "high": 0.8,
                                  "critical": 1.0}


@dataclass(frozen=True)
class CompiledRule:
    """A Sigma rule compiled for the store, with what attribution needs."""

    rule_id: str
    title: str
    level: Severity
    author: str
    references: tuple[str, ...]
    attack: tuple[str, ...]
    logsource: LogSource
    condition: str
    path: str
    description: str = ""


@dataclass(frozen=True)
class Skipped:
    """A rule (or file) not run, and why."""

    path: str
    rule_id: str
    title: str
    reason: str


@dataclass
class RuleStats:
    """How one rule went in a run."""

    rule_id: str
    title: str
    group: str
    hits: int = 0
    findings: int = 0
    group_seconds: float = 0.0
    error: str = ""


@dataclass
class RuleSet:
    """Compiled rules and the skipped ones; ``stats`` is filled by a run."""

    rules: list[CompiledRule] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    stats: dict[str, RuleStats] = field(default_factory=dict)
    #: Sigma v2 correlations (:class:`~analysis.detect.sigma.correlation.CompiledCorrelation`)
    correlations: list[Any] = field(default_factory=list)
    #: Base rules referenced only by ``generate: false`` correlations: no findings of their own
    silent: set[str] = field(default_factory=set)

    def skip_reasons(self) -> dict[str, int]:
        """Skipped rules counted by reason (the reason's first clause)."""
        out: dict[str, int] = defaultdict(int)
        for s in self.skipped:
            out[s.reason.split(":")[0]] += 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``.yml``/``.yaml`` file of the paths (folders recursively), sorted, once."""
    out: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            out.update(f for f in p.rglob("*") if f.suffix in (".yml", ".yaml") and f.is_file())
        elif p.exists():
            out.add(p)
        else:
            raise FileNotFoundError(f"no rule file or folder {p}")
    return sorted(out)


def attack_ids(tags: Iterable[Any]) -> tuple[str, ...]:
    """ATT&CK technique ids (``T1059.001``) from Sigma's ``attack.t1059.001`` tags."""
    out = []
    for tag in tags:
        if str(tag.namespace).lower() == "attack" and str(tag.name)[:1].lower() == "t" \
                and str(tag.name)[1:2].isdigit():
            out.append(str(tag.name).upper())
    return tuple(dict.fromkeys(out))


def parse_file(path: Path, resolve: bool = True
               ) -> tuple[list[SigmaRule | SigmaCorrelationRule], list[Skipped]]:
    """The rules of one file, or why it gives none (``resolve=False``: a correlation's
    references are left for the caller to resolve, e.g. across files)."""
    try:
        coll = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"),
                                         collect_errors=True, resolve_references=resolve)
    except (SigmaError, yaml.YAMLError, OSError, UnicodeDecodeError, ValueError) as exc:
        return [], [Skipped(str(path), "", "", f"does not parse: {exc}")]
    rules: list[SigmaRule | SigmaCorrelationRule] = []
    skipped: list[Skipped] = []
    for rule in coll.rules:
        errors = getattr(rule, "errors", None)
        if errors:
            skipped.append(Skipped(str(path), str(rule.id or ""), str(rule.title or ""),
                                   f"does not parse: {errors[0]}"))
        else:
            rules.append(rule)
    return rules, skipped


def compile_rule(rule: SigmaRule | SigmaCorrelationRule, path: str,
                 backend: DuckDBBackend) -> CompiledRule | Skipped:
    """A parsed rule compiled for the store, or why it cannot be."""
    rid, title = str(rule.id or ""), str(rule.title or "")
    if isinstance(rule, SigmaCorrelationRule):
        return Skipped(path, rid, title, "correlation rule: compiled by compile_correlation")
    ls = rule.logsource
    spec = logsource_of(ls)
    if spec is None:
        name = "/".join(str(v) for v in (ls.product, ls.category, ls.service) if v)
        return Skipped(path, rid, title, f"log source not in the store: {name}")
    try:
        conditions = backend.convert_rule(rule)
        if not conditions and rule._backreferences:
            # pySigma withholds the queries of a ``generate: false`` correlation's base rule;
            # the correlation needs them (the engine keeps their findings back itself)
            conditions = list(rule.get_conversion_result())
    except SigmaError as exc:
        return Skipped(path, rid, title, f"does not convert: {exc}")
    if not conditions:
        return Skipped(path, rid, title, "does not convert: no condition")
    condition = " OR ".join(f"({c})" for c in conditions)
    level = LEVELS.get(rule.level.name.lower() if rule.level else "", "medium")
    return CompiledRule(rid or title, title, level, str(rule.author or ""),
                        tuple(str(r) for r in rule.references or ()),
                        attack_ids(rule.tags or ()), spec, condition, path,
                        str(rule.description or ""))


def load_rules(paths: Iterable[str | Path]) -> RuleSet:
    """Parse and compile every rule under ``paths``.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    from analysis.detect.sigma.correlation import compile_correlation, silent_rules

    out = RuleSet()
    backend = DuckDBBackend(store_pipeline())
    parsed: list[tuple[Path, SigmaRule | SigmaCorrelationRule]] = []
    for f in rule_files(paths):
        rules, skipped = parse_file(f, resolve=False)
        out.skipped.extend(skipped)
        parsed.extend((f, r) for r in rules)
    # a correlation may name base rules of any loaded file, so references resolve over all
    index = SigmaCollection(init_rules=[r for _, r in parsed], resolve_references=False)
    correlations: list[tuple[Path, SigmaCorrelationRule]] = []
    for f, rule in parsed:
        if isinstance(rule, SigmaCorrelationRule):
            try:
                rule.resolve_rule_references(index)
            except SigmaError as exc:
                out.skipped.append(Skipped(str(f), str(rule.id or rule.name or ""),
                                           str(rule.title or ""),
                                           f"correlation base rule not found: {exc}"))
                continue
            correlations.append((f, rule))
    compiled: dict[int, CompiledRule | Skipped] = {}
    for f, rule in parsed:  # base rules first: a correlation needs their conditions
        if isinstance(rule, SigmaRule):
            got = compiled[id(rule)] = compile_rule(rule, str(f), backend)
            (out.rules if isinstance(got, CompiledRule) else out.skipped).append(got)  # type: ignore[arg-type]
    for f, corr in correlations:
        cc = compile_correlation(corr, str(f), compiled)
        if isinstance(cc, Skipped):
            out.skipped.append(cc)
        else:
            out.correlations.append(cc)
    out.silent = silent_rules([c for _, c in correlations], compiled)
    return out


def group_sql(rules: Sequence[CompiledRule], where: str) -> str:
    """One query evaluating every rule of a log source over its events."""
    cases = ", ".join(f"CASE WHEN ({r.condition}) THEN {i} END" for i, r in enumerate(rules))
    return ("SELECT r, event_uid, timestamp, host, \"user\" FROM ("
            f"SELECT event_uid, timestamp, host, \"user\", unnest(list_value({cases})) AS r "
            f"FROM events WHERE {where}) WHERE r IS NOT NULL")


def run_rules(con: Any, ruleset: RuleSet, present: set[str] | None = None
              ) -> list[tuple[CompiledRule, list[tuple[str, Any, Any, Any]]]]:
    """Every rule's hits (event_uid, timestamp, host, user), one query per log source.

    Fills ``ruleset.stats``; a rule DuckDB refuses has its error there and no hits.
    """
    groups: dict[str, list[CompiledRule]] = defaultdict(list)
    for r in ruleset.rules:
        if present is None or r.logsource.sources & present:
            groups[r.logsource.key].append(r)
    out = []
    for key, rules in groups.items():
        t0 = time.perf_counter()
        where = rules[0].logsource.where
        hits: dict[int, list[tuple[str, Any, Any, Any]]] = defaultdict(list)
        try:
            for i, uid, ts, host, user in con.execute(group_sql(rules, where)).fetchall():
                hits[i].append((uid, ts, host, user))
            errors: dict[int, str] = {}
        except Exception:  # find the rule(s) DuckDB refuses; the others still run
            hits.clear()
            errors = {}
            for i, r in enumerate(rules):
                try:
                    rows = con.execute(group_sql([r], where)).fetchall()
                except Exception as exc:
                    errors[i] = f"{type(exc).__name__}: {exc}"
                    continue
                hits[i] = [(uid, ts, host, user) for _, uid, ts, host, user in rows]
        seconds = time.perf_counter() - t0
        for i, r in enumerate(rules):
            ruleset.stats[r.rule_id] = RuleStats(r.rule_id, r.title, key, len(hits[i]),
                                                 0, seconds, errors.get(i, ""))
            out.append((r, hits[i]))
    return out


def attribution(author: str, path: str) -> str:
    """Who wrote a rule and under which licence, for a finding's description: auditlens'
    own pack is Apache-2.0 like the code; a rule from a SigmaHQ checkout (a folder named
    ``sigma``) is under SigmaHQ's Detection Rule License 1.1, which asks for this
    attribution; of any other rule the author is named and no licence is guessed."""
    from analysis.rules import PACK

    by = f" Rule by {author or 'unknown'}"
    resolved = Path(path).resolve()
    if resolved.is_relative_to(Path(PACK).resolve()):
        return by + " (auditlens rule pack, Apache-2.0)"
    if any(part.lower() in ("sigma", "sigmahq") for part in resolved.parts):
        return by + ", SigmaHQ Detection Rule License 1.1"
    return by


def findings_of(rule: CompiledRule, hits: Sequence[tuple[str, Any, Any, Any]]
                ) -> list[Finding]:
    """One finding per entity (host, else user) the rule hit."""
    by: dict[tuple[str, str], list[tuple[str, Any, Any, Any]]] = defaultdict(list)
    for h in hits:
        _, _, host, user = h
        by[("host", host) if host else ("user", user) if user else ("host", "unknown")
           ].append(h)
    out = []
    refs = "; ".join(rule.references[:5])
    for (etype, entity), rows in sorted(by.items()):
        rows.sort(key=lambda h: (h[1], h[0]))
        users = sorted({str(h[3]) for h in rows if h[3]})
        desc = (f"{len(rows)} events on {entity} match Sigma rule \"{rule.title}\" "
                f"(id {rule.rule_id}). {rule.description}".strip()
                + attribution(rule.author, rule.path)
                + (f"; references: {refs}" if refs else "") + ".")
        out.append(Finding(
            detector=f"sigma:{rule.rule_id}", detector_version="sigma", title=rule.title,
            description=desc, severity=rule.level,
            score=LEVEL_SCORES[rule.level],
            entity_type=etype, entity=str(entity), first_seen=rows[0][1],
            last_seen=rows[-1][1], event_uids=tuple(h[0] for h in rows[:MAX_EVIDENCE]),
            attack=rule.attack, entities=(("sigma_rule", rule.rule_id),
                                          *(("user", u) for u in users[:20]))))
    return out


def sigma_detector(ruleset: RuleSet) -> type[Detector]:
    """A detector class running ``ruleset`` (kind ``rule``), for ``run_detectors(extra=…)``."""

    class SigmaRules(Detector):
        name: ClassVar[str] = "sigma"
        version: ClassVar[str] = "1"
        title: ClassVar[str] = "Sigma rules"
        description: ClassVar[str] = f"{len(ruleset.rules)} Sigma rules compiled to DuckDB SQL"
        kind = "rule"
        sources: ClassVar[frozenset[str]] = frozenset().union(
            *(r.logsource.sources for r in ruleset.rules))
        needs: ClassVar[frozenset[str]] = frozenset()

        def run(self, ctx: Context) -> Iterable[Finding]:
            from analysis.detect.sigma.correlation import run_correlations

            present = {r[0] for r in ctx.con.sql("SELECT DISTINCT source FROM history"
                                                 ).fetchall()}
            found: list[Finding] = []
            for rule, hits in run_rules(ctx.con, ruleset, present):
                got = [] if rule.rule_id in ruleset.silent else findings_of(rule, hits)
                ruleset.stats[rule.rule_id].findings = len(got)
                found.extend(got)
            errors: dict[str, str] = {}
            got = run_correlations(ctx.con, ruleset.correlations, present, errors)
            for c in ruleset.correlations:
                ruleset.stats[c.rule_id] = RuleStats(
                    c.rule_id, c.title, "correlation", 0,
                    sum(f.detector == f"sigma:{c.rule_id}" for f in got), 0.0,
                    errors.get(c.rule_id, ""))
            found.extend(got)
            ctx.cache["sigma"] = ruleset
            return found

    return SigmaRules


@dataclass(frozen=True)
class CheckRow:
    """``auditlens rules check``: how far one rule gets (parse, convert, run)."""

    path: str
    rule_id: str
    title: str
    parses: bool
    converts: bool
    runs: bool
    reason: str = ""


def check_rules(paths: Iterable[str | Path]) -> list[CheckRow]:
    """Each rule parsed, converted and run against an empty ``events`` table of the store
    schema (DuckDB binds every column and function then, so a rule that runs here cannot
    fail on a store for want of a column or a type)."""
    import duckdb

    from analysis.detect.sigma.backend import column_types
    from analysis.detect.sigma.correlation import compile_correlation

    con = duckdb.connect()
    cols = ", ".join(f'"{n}" {t}' for n, t in column_types().items())
    con.execute(f"CREATE TABLE events ({cols})")
    backend = DuckDBBackend(store_pipeline())
    rows: list[CheckRow] = []
    try:
        for f in rule_files(paths):
            rules, skipped = parse_file(f)
            rows.extend(CheckRow(s.path, s.rule_id, s.title, False, False, False, s.reason)
                        for s in skipped)
            compiled: dict[int, CompiledRule | Skipped] = {}
            for rule in rules:
                if isinstance(rule, SigmaCorrelationRule):
                    rows.append(_check_correlation(con, compile_correlation(
                        rule, str(f), compiled)))
                    continue
                got = compiled[id(rule)] = compile_rule(rule, str(f), backend)
                if isinstance(got, Skipped):
                    rows.append(CheckRow(got.path, got.rule_id, got.title, True, False,
                                         False, got.reason))
                    continue
                try:
                    con.execute(group_sql([got], got.logsource.where)).fetchall()
                except duckdb.Error as exc:
                    rows.append(CheckRow(got.path, got.rule_id, got.title, True, True, False,
                                         f"DuckDB: {exc}"))
                    continue
                rows.append(CheckRow(got.path, got.rule_id, got.title, True, True, True))
    finally:
        con.close()
    return rows


def _check_correlation(con: Any, got: Any) -> CheckRow:
    """``rules check`` of one compiled correlation (or its skip): its query run on ``con``."""
    if isinstance(got, Skipped):
        return CheckRow(got.path, got.rule_id, got.title, True, False, False, got.reason)
    try:
        con.execute(got.sql).fetchall()
    except Exception as exc:  # any DuckDB error: reported as the row's reason
        return CheckRow(got.path, got.rule_id, got.title, True, True, False, f"DuckDB: {exc}")
    return CheckRow(got.path, got.rule_id, got.title, True, True, True)
