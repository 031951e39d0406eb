"""Findings, detectors and the registry that runs them.

A detector is a class with a ``name``, a ``version``, what it ``needs`` (sources it reads and
columns it uses), its ``params`` with defaults, its ATT&CK ids, and ``run(ctx)`` returning
:class:`Finding` values. Two kinds share this interface: analytics in Python over DuckDB
aggregates (``analysis/detect/logins.py``) and rules compiled to SQL (the Sigma issue adds
those as detectors whose ``run`` executes one query). The registry is data: one row per
detector, printed by ``auditlens detect --list``.

``run_detectors`` gives every detector one :class:`Context` — the scope's DuckDB connection
with ``history``/``events`` views, the principals table and the parameters — and records
per detector its runtime, hit count and status (a detector whose sources are absent is
skipped and says so; one that fails is reported, and the others still run).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from analysis.identities import NO_ALIASES, Identities, register_principals
from analysis.scope import Scope

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")


def severity_rank(severity: str) -> int:
    """0 for info … 4 for critical."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a detector says is suspicious, with the events that show it.

    ``description`` says in words and numbers what was seen against what normal is;
    ``event_uids`` are the evidence (each resolves to a stored event), the first ones the
    most telling.
    """

    detector: str
    detector_version: str
    title: str
    description: str
    severity: Severity
    score: float
    entity_type: str
    entity: str
    first_seen: datetime
    last_seen: datetime
    event_uids: tuple[str, ...]
    attack: tuple[str, ...] = ()
    recommendation: str = ""
    entities: tuple[tuple[str, str], ...] = ()  # further (type, value) pairs it involves

    @property
    def finding_id(self) -> str:
        """Stable: the same detector, entity and time span give the same id in every run."""
        key = "\x1f".join([self.detector, self.entity_type, self.entity,
                           self.first_seen.isoformat(), self.last_seen.isoformat()])
        return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Param:
    """A detector parameter: its default and why that default."""

    default: Any
    doc: str


@dataclass
class Context:
    """What every detector of one run shares, as values.

    ``con`` is a DuckDB connection with views ``history`` (every event up to the window's
    end: what baselines learn from) and ``events`` (the window), and table ``principals``.
    ``cache`` lets detectors share an expensive intermediate (the login table) within a run.
    """

    scope: Scope
    con: Any
    identities: Identities
    params: Mapping[str, Mapping[str, Any]]
    baseline_start: datetime | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def param(self, detector: Detector | type[Detector], name: str) -> Any:
        values = self.params.get(detector.name, {})
        return values[name] if name in values else detector.params[name].default

    def baseline_condition(self, column: str = "timestamp") -> str:
        """SQL condition that keeps only events baselines may learn from."""
        if self.baseline_start is None:
            return "TRUE"
        return f"{column} >= TIMESTAMPTZ '{self.baseline_start.isoformat()}'"

    def shared(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]


class Detector:
    """Base class of detectors; subclasses set the class attributes and ``run``."""

    name: ClassVar[str]
    version: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    kind: ClassVar[Literal["analytic", "rule"]] = "analytic"
    sources: ClassVar[frozenset[str]]  # any one of these present is enough
    needs: ClassVar[frozenset[str]]  # columns
    params: ClassVar[Mapping[str, Param]] = {}
    attack: ClassVar[tuple[str, ...]] = ()

    def run(self, ctx: Context) -> Iterable[Finding]:
        raise NotImplementedError


REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: add a detector to the registry (names are unique)."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two detectors named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Detector]]:
    """Every built-in detector by name (imports the detector modules on first use)."""
    import analysis.detect.logins  # noqa: F401  (registers its detectors)

    return dict(sorted(REGISTRY.items()))


def registry_table() -> list[dict[str, Any]]:
    """The registry as rows: name, version, kind, sources, columns, parameters, ATT&CK."""
    return [{"name": d.name, "version": d.version, "kind": d.kind, "title": d.title,
             "sources": sorted(d.sources), "needs": sorted(d.needs),
             "params": {k: p.default for k, p in d.params.items()},
             "param_docs": {k: p.doc for k, p in d.params.items()},
             "attack": list(d.attack), "description": d.description}
            for d in registry().values()]


@dataclass
class DetectorRun:
    """How one detector went in a run."""

    name: str
    version: str
    status: Literal["ok", "skipped", "failed"]
    seconds: float
    findings: int
    message: str = ""


@dataclass
class RunResult:
    """A detection run: its findings (ordered by time, then severity) and what ran."""

    findings: list[Finding]
    detectors: list[DetectorRun]
    scope: dict[str, Any]
    params: dict[str, dict[str, Any]]
    started_at: datetime
    finished_at: datetime

    @property
    def failed(self) -> list[DetectorRun]:
        return [d for d in self.detectors if d.status == "failed"]


def select(only: Sequence[str] | None = None, skip: Sequence[str] | None = None
           ) -> list[type[Detector]]:
    """The detectors to run; unknown names raise ``KeyError`` listing the known ones."""
    known = registry()
    for name in [*(only or []), *(skip or [])]:
        if name not in known:
            raise KeyError(f"no detector {name!r}; known: {', '.join(known)}")
    chosen = [known[n] for n in known if (not only or n in only) and n not in (skip or [])]
    return chosen


def check_params(params: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Parameters with every unknown detector or parameter name refused (``KeyError``) and
    values converted to the default's type (``ValueError`` when they do not convert)."""
    known = registry()
    out: dict[str, dict[str, Any]] = {}
    for det, values in params.items():
        if det not in known:
            raise KeyError(f"parameters for unknown detector {det!r}")
        for key, value in values.items():
            spec = known[det].params.get(key)
            if spec is None:
                raise KeyError(f"{det} has no parameter {key!r}; it has: "
                               f"{', '.join(known[det].params) or 'none'}")
            out.setdefault(det, {})[key] = _convert(value, spec.default, f"{det}.{key}")
    return out


def _convert(value: Any, default: Any, name: str) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError):
        wanted = ("true or false" if isinstance(default, bool) else "an integer"
                  if isinstance(default, int) else "a number" if isinstance(default, float)
                  else "text")
        raise ValueError(f"{name}: {value!r} is not {wanted}") from None
    return value


def effective_params(detectors: Sequence[type[Detector]],
                     params: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every parameter of the chosen detectors with its value in this run."""
    return {d.name: {k: params.get(d.name, {}).get(k, p.default) for k, p in d.params.items()}
            for d in detectors}


def run_detectors(scope: Scope, *, only: Sequence[str] | None = None,
                  skip: Sequence[str] | None = None,
                  params: Mapping[str, Mapping[str, Any]] | None = None,
                  identities: Identities = NO_ALIASES,
                  baseline_start: datetime | None = None,
                  progress: Callable[[str, int, int], None] | None = None,
                  memory_limit: str = "2GB",
                  extra: Sequence[type[Detector]] = ()) -> RunResult:
    """Run the chosen detectors over a scope.

    Args:
        scope: what to judge (baselines read every earlier event of the store).
        only, skip: detector names.
        params: ``{detector: {parameter: value}}``; unknown names are refused.
        identities: the analyst's alias table.
        baseline_start: baselines learn only from events at or after this time (default:
            from the first stored event).
        progress: called with (detector name, index, total) before each detector.
        memory_limit: DuckDB's memory budget (it spills to disk beyond it); results held in
            pandas come on top, and are small (sign-in candidates and findings).
        extra: detectors run besides the registry's (the Sigma rules of ``--rules``).

    Raises:
        KeyError, ValueError: an unknown detector or parameter, a bad value.
        EmptyStore: nothing stored in the scope.
    """
    started = _now()
    chosen = [*select(only, skip), *extra]
    checked = check_params(params or {})
    con = scope.connect(memory_limit=memory_limit)
    try:
        register_principals(con, identities)
        present = {r[0] for r in con.sql("SELECT DISTINCT source FROM history").fetchall()}
        ctx = Context(scope, con, identities, checked, baseline_start)
        findings: list[Finding] = []
        runs: list[DetectorRun] = []
        for i, det in enumerate(chosen):
            if progress:
                progress(det.name, i, len(chosen))
            t0 = time.perf_counter()
            if not det.sources & present:
                runs.append(DetectorRun(det.name, det.version, "skipped", 0.0, 0,
                                        "none of its sources is stored: "
                                        + ", ".join(sorted(det.sources))))
                continue
            try:
                got = list(det().run(ctx))
            except Exception as exc:  # one broken detector must not cost the others
                runs.append(DetectorRun(det.name, det.version, "failed",
                                        time.perf_counter() - t0, 0,
                                        f"{type(exc).__name__}: {exc}"))
                continue
            findings.extend(got)
            runs.append(DetectorRun(det.name, det.version, "ok", time.perf_counter() - t0,
                                    len(got)))
    finally:
        con.close()
    findings.sort(key=lambda f: (f.first_seen, -severity_rank(f.severity), f.detector,
                                 f.entity))
    described = scope.describe()
    if baseline_start is not None:
        described["baseline_start"] = baseline_start.isoformat()
    all_params = effective_params(chosen, checked)
    if identities.aliases:
        all_params["identities"] = identities.describe()
    return RunResult(findings, runs, described, all_params, started, _now())


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
