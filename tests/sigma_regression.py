"""SigmaHQ's regression cases: ingest each recording, run its rule, expect a finding.

Usage: ``python -m tests.sigma_regression [REGRESSION_DIR [RULES_DIR]]`` (defaults: the shared
fixtures). Prints the pass rate and each failure's reason. ``tests/test_sigma.py`` runs the
copied cases always and this over the whole set when marked slow.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from analysis.detect.sigma.engine import findings_of, load_rules, run_rules
from analysis.scope import Scope
from loaders.ingest.pipeline import ingest
from loaders.store.store import Store

SHARED = Path("/work/shared/fixtures/sigma")


@dataclass
class Outcome:
    case: str
    rule_id: str
    ok: bool
    reason: str = ""


def rule_index(rules_dir: Path) -> dict[str, Path]:
    """Rule id → file, by reading only each file's ``id:`` line."""
    out: dict[str, Path] = {}
    for f in sorted(rules_dir.rglob("*.yml")):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("id:"):
                out[line[3:].strip().strip("'\"")] = f
                break
    return out


def run_case(case: Path, rule_file: Path | None) -> Outcome:
    """Ingest ``case``'s .evtx into a fresh store and run the rule ``info.yml`` names."""
    info = yaml.safe_load((case / "info.yml").read_text(encoding="utf-8"))
    rule_id = str(info["rule_metadata"][0]["id"])
    if rule_file is None:
        return Outcome(case.name, rule_id, False, "rule not in the rules folder")
    ruleset = load_rules([rule_file])
    if not ruleset.rules:
        reason = ruleset.skipped[0].reason if ruleset.skipped else "no rule"
        return Outcome(case.name, rule_id, False, reason)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "store")
        if not ingest(store, sorted(case.glob("*.evtx"))).ok:
            return Outcome(case.name, rule_id, False, "ingest failed")
        con = Scope(store.root).connect()
        try:
            uids = {r[0] for r in con.sql("SELECT event_uid FROM events").fetchall()}
            result = [f for rule, hits in run_rules(con, ruleset)
                      for f in findings_of(rule, hits)]
        finally:
            con.close()
    hits = [f for f in result if f.detector == f"sigma:{rule_id}"]
    if not hits:
        st = ruleset.stats.get(rule_id)
        why = (st.error if st and st.error else
               f"no match in {len(uids)} events (log source {ruleset.rules[0].logsource.key})")
        return Outcome(case.name, rule_id, False, why)
    if not all(u in uids for f in hits for u in f.event_uids):
        return Outcome(case.name, rule_id, False, "evidence outside the recording")
    return Outcome(case.name, rule_id, True)


def run_all(regression: Path = SHARED / "regression_data",
            rules: Path = SHARED / "rules") -> list[Outcome]:
    index = rule_index(rules)
    out = []
    for info in sorted(regression.rglob("info.yml")):
        rid = str(yaml.safe_load(info.read_text(encoding="utf-8"))["rule_metadata"][0]["id"])
        out.append(run_case(info.parent, index.get(rid)))
    return out


def main(argv: list[str]) -> int:
    regression = Path(argv[0]) if argv else SHARED / "regression_data"
    rules = Path(argv[1]) if len(argv) > 1 else SHARED / "rules"
    outcomes = run_all(regression, rules)
    passed = sum(o.ok for o in outcomes)
    for o in outcomes:
        if not o.ok:
            print(f"FAIL {o.case} ({o.rule_id}): {o.reason}")
    print(f"{passed}/{len(outcomes)} passed ({100 * passed / max(len(outcomes), 1):.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
