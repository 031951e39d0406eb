"""The report model: everything an incident report says, as plain data.

:func:`build_report` reads a store's findings (running detection first when there are none
for the scope), groups them into incidents, and gathers for each incident its entities, the
key activity of its actors, the findings with their evidence traced to input file, SHA-256
and line, and the recommended actions; the appendix lists the inputs, the rejects, the
coverage gaps and the detectors that ran. Renderers (:mod:`analysis.report.render`) turn
the model into HTML, Markdown or JSON; JSON is the model itself (``to_json``).

The model is deterministic: the same store and options give the same model, except
``generated_at``. Every table is capped (``MAX_EVIDENCE`` rows per finding, ``MAX_ACTIVITY``
key events per incident) and says how many rows it left out and how to list them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.detect.base import Finding, severity_rank
from analysis.incidents import DEFAULT_WINDOW, Incident, correlate

SCHEMA_VERSION = "1"
MAX_EVIDENCE = 25  # evidence events per finding, at most
EVIDENCE_BUDGET = 1000  # evidence events in the whole report (shared by its findings)
MAX_ACTIVITY = 50  # activity events per incident
MAX_INCIDENTS = 20  # incidents told in full (the others are listed in the summary)
MAX_FINDINGS = 40  # findings told in full per incident (the others counted)
MAX_RAW = 1000  # characters of a raw record shown
ACTIVITY_AFTER = timedelta(hours=6)
EVENT_COLUMNS = ("timestamp", "source", "category", "action", "outcome", "user", "src_ip",
                 "host", "target", "message", "event_uid", "source_file", "source_line",
                 "raw")


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    return pd.Timestamp(value).isoformat()


def _clean(value: Any) -> Any:
    """A JSON-ready value: NaN/NA to None, numpy scalars to Python, times to ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return _iso(value)
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        try:
            return value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "tolist"):
        return [_clean(v) for v in value.tolist()]
    return value


def finding_from_row(row: Any) -> Finding:
    """A stored findings row (``read_findings``) as a :class:`Finding`."""
    return Finding(row.detector, row.detector_version, row.title, row.description,
                   row.severity, float(row.score), row.entity_type, row.entity,
                   pd.Timestamp(row.first_seen).to_pydatetime(),
                   pd.Timestamp(row.last_seen).to_pydatetime(), tuple(row.event_uids),
                   tuple(row.attack), row.recommendation,
                   tuple((e["type"], e["value"]) for e in row.entities))


def build_report(store: str | os.PathLike[str], *, start: Any = None, end: Any = None,
                 principal: str | None = None, ip: str | None = None,
                 incident: str | None = None, window: timedelta = DEFAULT_WINDOW,
                 run: str | None = None, detect_if_missing: bool = True,
                 generated_at: datetime | None = None) -> dict[str, Any]:
    """The report model of a store's incidents.

    Args:
        store: the store directory.
        start, end: only findings overlapping this window (UTC).
        principal: only incidents involving this principal.
        ip: only incidents involving this address.
        incident: only this incident id.
        window: the correlation window (see :func:`analysis.incidents.correlate`).
        run: the detection run to report (default: the latest).
        detect_if_missing: run detection first when the store has no detection run.
        generated_at: the generated-at time (default: now).

    Raises:
        KeyError: no incident has the id asked for.
    """
    from analysis.findings import read_findings, read_runs, save_run
    from analysis.scope import Scope, utc

    notes: list[str] = []
    runs = read_runs(store)
    if run is None and runs.empty and detect_if_missing:
        from analysis.detect.base import run_detectors

        result = run_detectors(Scope(store))
        run = save_run(store, result)
        notes.append(f"The store had no findings; detection ran first (run {run}).")
        runs = read_runs(store)
    frame = read_findings(store, run or "latest")
    run_id = run or (runs["run_id"].iloc[-1] if len(runs) else None)
    run_row = runs[runs["run_id"] == run_id].iloc[0] if run_id is not None else None
    findings = [finding_from_row(r) for r in frame.itertuples()]
    s, e = utc(start), utc(end)
    if s or e:
        findings = [f for f in findings if (not s or f.last_seen >= s) and
                    (not e or f.first_seen < e)]
    by_id = {f.finding_id: f for f in findings}
    incidents = correlate(findings, window=window)
    if principal:
        wanted = principal.casefold()
        incidents = [n for n in incidents if wanted in {p.casefold() for p in n.principals}]
    if ip:
        incidents = [n for n in incidents if ip in n.addresses or ("ip", ip) in n.entities]
    if incident:
        incidents = [n for n in incidents if n.incident_id == incident]
        if not incidents:
            raise KeyError(f"no incident {incident!r} in the report's scope")
    detailed = incidents[:MAX_INCIDENTS]
    told = {n.incident_id: _told(n, by_id) for n in detailed}
    n_told = sum(len(v) for v in told.values())
    per_finding = max(3, min(MAX_EVIDENCE, EVIDENCE_BUDGET // max(1, n_told)))
    con = Scope(store).connect(memory_limit="2GB")
    try:
        manifest = _manifest(con, store)
        _prepare(con, detailed, told, by_id, per_finding)
        sections = [_incident_section(con, n, told[n.incident_id], by_id, manifest,
                                      per_finding) for n in detailed]
        appendix = _appendix(con, store, incidents, run_row, manifest)
    finally:
        con.close()
    from loaders.store.store import Store, tool_version

    head, entries = Store(store).chain_head()
    return {
        "schema_version": SCHEMA_VERSION,
        "title": "Incident report",
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "tool_version": tool_version(),
        "store": str(Path(store)),
        "filters": {"start": _iso(s), "end": _iso(e), "principal": principal, "ip": ip,
                    "incident": incident, "window_hours": window.total_seconds() / 3600},
        "run_id": run_id,
        # the store's ledger when the report was made: a copy kept in the case notes proves
        # later that a store is this one (`auditlens info --verify --head HASH`)
        "chain_head": head,
        "ledger_entries": entries,
        "notes": notes,
        "summary": _summary(incidents, findings) + (
            [f"{len(incidents) - len(detailed)} more incidents are listed above but not told "
             "in full; `auditlens report --incident ID` tells one."]
            if len(incidents) > len(detailed) else []),
        "incidents": sections,
        "appendix": appendix,
    }


def _summary(incidents: Sequence[Incident], findings: Sequence[Finding]) -> list[str]:
    loud = [f for f in findings if severity_rank(f.severity) >= 2]
    if not incidents:
        return [f"No incident: {len(findings)} findings, none of medium severity or above "
                "that correlate into an incident."]
    out = [f"{len(incidents)} incident{'s' if len(incidents) != 1 else ''} from "
           f"{len(loud)} findings of medium severity or above ({len(findings)} findings in "
           "all)."]
    for n in incidents:
        out.append(
            f"{n.severity.capitalize()}: {n.title}, {n.first_seen:%Y-%m-%d %H:%M} to "
            f"{n.last_seen:%Y-%m-%d %H:%M} UTC; {len(n.finding_ids)} findings, "
            f"{len(n.principals)} principals, {len(n.addresses)} addresses.")
    return out


def _manifest(con: Any, store: str | os.PathLike[str]) -> pd.DataFrame:
    from analysis import read_manifest

    return read_manifest(store)


def _events(con: Any, uids: Sequence[str], manifest: pd.DataFrame) -> list[dict[str, Any]]:
    if not uids:
        return []
    cols = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
    frame = con.execute(f"SELECT DISTINCT {cols} FROM report_events WHERE event_uid IN "
                        "(SELECT unnest(?)) ORDER BY timestamp, event_uid", [list(uids)]).df()
    return _rows(frame, manifest)


def _told(n: Incident, by_id: dict[str, Finding]) -> list[str]:
    """The findings of an incident told in full: the most severe, then the earliest."""
    ranked = sorted(n.finding_ids, key=lambda i: (-severity_rank(by_id[i].severity),
                                                  by_id[i].first_seen, i))[:MAX_FINDINGS]
    keep = set(ranked)
    return [i for i in n.finding_ids if i in keep]


def _prepare(con: Any, incidents: Sequence[Incident], told: dict[str, list[str]],
             by_id: dict[str, Finding], per_finding: int) -> None:
    """One scan of the store for everything the report shows: the evidence events, the
    actors' activity, address profiles and event counts per source and hour."""
    _ensure_principals(con)
    cols = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
    uids = sorted({u for ids in told.values() for i in ids
                   for u in by_id[i].event_uids[:per_finding]})
    con.execute(f"CREATE OR REPLACE TEMP TABLE report_events AS SELECT {cols} FROM history "
                "WHERE event_uid IN (SELECT unnest(?))", [uids])
    addresses = sorted({a for n in incidents for a in n.addresses})
    principals = sorted({p for n in incidents for p in n.principals})
    firsts = dict(con.execute(
        "SELECT p.principal, min(e.timestamp) FROM history e JOIN principals p "
        "ON p.user = e.user AND p.source = e.source AND p.host IS NOT DISTINCT FROM e.host "
        "WHERE p.principal IN (SELECT unnest(?)) GROUP BY p.principal",
        [principals]).fetchall()) if principals else {}
    rows = []
    for n in incidents:  # principals first seen in an incident: all they did belongs to it
        for p in n.principals:
            if p in firsts and pd.Timestamp(firsts[p]) >= pd.Timestamp(n.first_seen):
                rows.append((n.incident_id, p))
    new = pd.DataFrame(rows, columns=["incident_id", "principal"]).astype(object)  # noqa: F841
    con.execute("CREATE OR REPLACE TEMP TABLE report_new AS SELECT incident_id::VARCHAR AS "
                "incident_id, principal::VARCHAR AS principal FROM new")
    start = min((n.first_seen for n in incidents), default=None)
    end = max((n.last_seen for n in incidents), default=None)
    ecols = ", ".join(f'e."{c}"' for c in EVENT_COLUMNS)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE report_activity AS SELECT {ecols}, p.principal "
        "FROM history e LEFT JOIN principals p ON p.user = e.user AND p.source = e.source "
        "AND p.host IS NOT DISTINCT FROM e.host AND p.subject_type IS NOT DISTINCT FROM "
        "e.selectel_subject_type WHERE (e.src_ip IN (SELECT unnest(?)) OR p.principal IN "
        "(SELECT principal FROM report_new)) AND e.timestamp >= ? AND e.timestamp <= ? "
        "AND coalesce(e.category, '') NOT IN ('authentication', 'session', 'log')",
        [addresses, start, (end + ACTIVITY_AFTER) if end else None])
    con.execute(
        "CREATE OR REPLACE TEMP TABLE report_addresses AS SELECT src_ip, "
        "sum(coalesce(repeat_count, 1))::BIGINT AS n, "
        "min(timestamp) AS first, max(timestamp) AS last, count(DISTINCT user) AS users, "
        "list(DISTINCT source ORDER BY source) AS sources FROM history "
        "WHERE src_ip IN (SELECT unnest(?)) GROUP BY src_ip", [addresses])
    con.execute("CREATE OR REPLACE TEMP TABLE report_hours AS SELECT source, "
                "date_trunc('hour', timestamp) AS hour, sum(coalesce(repeat_count, 1))::BIGINT "
                "AS n FROM history "
                "WHERE timestamp IS NOT NULL GROUP BY ALL")


def _rows(frame: pd.DataFrame, manifest: pd.DataFrame) -> list[dict[str, Any]]:
    hashes = dict(zip(manifest["path"], manifest["sha256"], strict=True)) if len(manifest) \
        else {}
    out = []
    for rec in frame.to_dict(orient="records"):
        row = {k: _clean(v) for k, v in rec.items()}
        raw = row.get("raw")
        if isinstance(raw, str) and len(raw) > MAX_RAW:
            row["raw"] = raw[:MAX_RAW] + f" … ({len(raw) - MAX_RAW} more characters)"
        row["sha256"] = hashes.get(row.get("source_file"))
        out.append(row)
    return out


def _incident_section(con: Any, n: Incident, told: list[str], by_id: dict[str, Finding],
                      manifest: pd.DataFrame, per_finding: int) -> dict[str, Any]:
    findings: list[dict[str, Any]] = []
    for fid in told:
        f = by_id[fid]
        evidence = _events(con, f.event_uids[:per_finding], manifest)
        when = {ev["event_uid"]: ev["timestamp"] for ev in evidence}
        findings.append({
            # when the finding's telling event happened (its first evidence: the success
            # of a sign-in after failures, the first attempt of a spray)
            "at": when.get(f.event_uids[0]) if f.event_uids else None,
            "finding_id": fid, "detector": f.detector, "detector_version": f.detector_version,
            "severity": f.severity, "score": f.score, "title": f.title,
            "description": f.description, "attack": list(f.attack),
            "recommendation": f.recommendation, "entity_type": f.entity_type,
            "entity": f.entity, "first_seen": _iso(f.first_seen),
            "last_seen": _iso(f.last_seen), "evidence": evidence,
            "evidence_total": len(f.event_uids),
            "evidence_omitted": max(0, len(f.event_uids) - len(evidence)),
        })
    context = [{"finding_id": fid, "detector": by_id[fid].detector,
                "severity": by_id[fid].severity, "title": by_id[fid].title,
                "description": by_id[fid].description} for fid in n.context_ids]
    activity, activity_total = _activity(con, n, manifest)
    return {
        "incident_id": n.incident_id, "title": n.title, "severity": n.severity,
        "first_seen": _iso(n.first_seen), "last_seen": _iso(n.last_seen),
        "summary": _incident_summary(n, findings, activity),
        "principals": _principals(con, n),
        "addresses": _addresses(con, n),
        "hosts": sorted({r["host"] for r in activity if r.get("host")}),
        "pods": sorted({r["target"] for r in activity
                        if r.get("source") == "k8s_audit" and "/pods/" in (r.get("target") or "")}),
        "findings": findings,
        "findings_omitted": len(n.finding_ids) - len(findings),
        "context": context,
        "activity": activity,
        "activity_total": activity_total,
        "activity_omitted": max(0, activity_total - len(activity)),
        "narrative": _narrative(findings, activity),
        "recommendations": _recommendations(n, findings, activity),
        "links": [{"finding_a": lk.finding_a, "finding_b": lk.finding_b,
                   "entity_type": lk.entity_type, "entity": lk.entity} for lk in n.links],
        "attack": sorted({t for f in findings for t in f["attack"]}),
    }


def _activity(con: Any, n: Incident, manifest: pd.DataFrame
              ) -> tuple[list[dict[str, Any]], int]:
    """What the incident's actors did: events from its addresses, or by principals first
    seen in it, from its start to some hours after its end, sign-ins aside."""
    cond = ("(src_ip IN (SELECT unnest(?)) OR principal IN (SELECT principal FROM report_new "
            "WHERE incident_id = ?)) AND timestamp >= ? AND timestamp <= ?")
    params = [list(n.addresses), n.incident_id, n.first_seen, n.last_seen + ACTIVITY_AFTER]
    total = con.execute(f"SELECT count(*) FROM report_activity WHERE {cond}",
                        params).fetchall()[0][0]
    cols = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
    frame = con.execute(f"SELECT {cols} FROM report_activity WHERE {cond} "
                        "ORDER BY timestamp, event_uid LIMIT ?", [*params, MAX_ACTIVITY]).df()
    return _rows(frame, manifest), int(total)


def _ensure_principals(con: Any) -> None:
    exists = con.execute("SELECT count(*) FROM information_schema.tables "
                         "WHERE table_name = 'principals'").fetchall()[0][0]
    if not exists:
        from analysis.identities import register_principals

        register_principals(con)


def _principals(con: Any, n: Incident) -> list[dict[str, Any]]:
    _ensure_principals(con)
    out = []
    for p in n.principals:
        rows = con.execute("SELECT DISTINCT user, source, kind FROM principals "
                           "WHERE principal = ? ORDER BY source, user", [p]).fetchall()
        out.append({"principal": p, "kind": rows[0][2] if rows else None,
                    "aliases": [{"user": u, "source": s} for u, s, _ in rows]})
    return out


def _addresses(con: Any, n: Incident) -> list[dict[str, Any]]:
    from analysis.logins import network

    out = []
    for ip in n.addresses:
        found = con.execute("SELECT n, first, last, users, sources FROM report_addresses "
                            "WHERE src_ip = ?", [ip]).fetchall()
        row = found[0] if found else (0, None, None, 0, [])
        out.append({"ip": ip, "network": network(ip), "events": int(row[0]),
                    "first": _iso(row[1]), "last": _iso(row[2]), "users": int(row[3]),
                    "sources": list(row[4] or []), "enrichment": None})
    return out


def _incident_summary(n: Incident, findings: list[dict[str, Any]],
                      activity: list[dict[str, Any]]) -> list[str]:
    out = [f"{n.severity.capitalize()} incident from {n.first_seen:%Y-%m-%d %H:%M} to "
           f"{n.last_seen:%Y-%m-%d %H:%M} UTC involving "
           f"{', '.join(n.principals) or 'no named principal'}"
           + (f" and the addresses {', '.join(n.addresses)}." if n.addresses else ".")]
    top = sorted(findings, key=lambda f: (-severity_rank(f["severity"]), f["first_seen"]))
    for f in top[:3]:
        out.append(f["description"])
    if activity:
        kinds = sorted({r["action"] for r in activity if r.get("action")})
        out.append(f"The actors' activity in and after the window includes: "
                   f"{', '.join(kinds[:12])}" + (" …" if len(kinds) > 12 else "") + ".")
    return out


def _narrative(findings: list[dict[str, Any]],
               activity: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The incident in order: each finding at its start, each key action at its time."""
    steps = [{"time": f["at"] or f["first_seen"], "kind": "finding", "severity": f["severity"],
              "text": f["title"], "ref": f["finding_id"]} for f in findings]
    steps += [{"time": r["timestamp"], "kind": "event", "severity": None,
               "text": f"{r.get('user') or '?'}: {r.get('action') or '?'}"
                       + (f" {r['target']}" if r.get("target") else "")
                       + (f" from {r['src_ip']}" if r.get("src_ip") else "")
                       + f" ({r['source']})", "ref": r["event_uid"]} for r in activity]
    return sorted(steps, key=lambda s: (s["time"] or "", s["kind"], s["ref"]))


_ACTIONS = [  # (what the action looks like, the advice); matched on action and target type
    (("api_key", "create"), "Revoke the API keys created: {targets}."),
    (("secret", "read"), "Rotate the secrets that were read: {targets}."),
    (("secrets", "get"), "Rotate the Kubernetes secrets that were read: {targets}."),
    (("secrets", "list"), "Rotate every Kubernetes secret the actor could list ({targets})."),
    (("kubeconfig",), "Rotate the cluster's credentials: a kubeconfig was downloaded "
                      "({targets})."),
    (("clusterrolebindings", "create"), "Remove the cluster role bindings created: "
                                        "{targets}."),
    (("rolebindings", "create"), "Remove the role bindings created: {targets}."),
    (("serviceaccounts", "create"), "Delete the service accounts created, and their "
                                    "tokens: {targets}."),
    (("pods/exec",), "Treat the pods exec'd into as compromised: {targets}."),
    (("pods", "create"), "Delete the pods created and review their nodes: {targets}."),
    (("useradd",), "Remove the local users created: {targets}."),
    (("add_user",), "Remove the local users created: {targets}."),
    (("delete",), "Restore what was deleted from snapshots or backups: {targets}."),
]


def _recommendations(n: Incident, findings: list[dict[str, Any]],
                     activity: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    taken = {f["entity"] for f in findings if f["detector"] in (
        "success_after_failures", "risky_signin", "shared_new_address", "dormant_account")}
    taken |= {p for f in findings if f["detector"] == "shared_new_address"
              for p in n.principals}
    for p in [p for p in n.principals if p in taken]:
        out.append(f"End all sessions of {p} and change its password and second factor "
                   "(the cloud provider's own advice after a sign-in from an unknown "
                   "address); revoke its tokens and API keys.")
    for f in findings:
        if f["detector"] == "first_seen_privileged":
            out.append(f"Find who created {f['entity']} and why; disable it if nobody can "
                       "say.")
    for keys, advice in _ACTIONS:
        targets = sorted({r.get("target") or r.get("user") or "?" for r in activity
                          if all(k in ((r.get("action") or "") + " " +
                                       (r.get("target") or "")).lower() for k in keys)})
        if targets:
            line = advice.format(targets=", ".join(targets[:8]))
            if line not in out:
                out.append(line)
    if n.addresses:
        out.append(f"Block the addresses at the perimeter and search other logs for them: "
                   f"{', '.join(n.addresses)}.")
    seen: dict[str, None] = {}
    for line in out:
        seen[line] = None
    return list(seen)


def _appendix(con: Any, store: str | os.PathLike[str], incidents: Sequence[Incident],
              run_row: Any, manifest: pd.DataFrame) -> dict[str, Any]:
    from analysis import read_rejects

    inputs = [{k: _clean(getattr(r, k)) for k in (
        "path", "size", "sha256", "loader", "status", "records_read", "records_loaded",
        "records_rejected", "records_duplicate", "first_timestamp", "last_timestamp")}
        for r in manifest.sort_values("path").itertuples()]
    rejects = read_rejects(store)
    reasons = []
    if len(rejects):
        grouped = rejects.groupby(["source_file", "reason"]).agg(
            count=("reason", "size"), first_line=("source_line", "min")).reset_index()
        for r in grouped.sort_values(["source_file", "reason"]).itertuples():
            span = manifest[manifest["path"] == r.source_file]
            reasons.append({
                "source_file": r.source_file, "reason": r.reason, "count": int(r.count),
                "first_line": _clean(r.first_line),
                "might_hide": (f"events of {span.iloc[0]['loader']} between "
                               f"{_iso(span.iloc[0]['first_timestamp'])} and "
                               f"{_iso(span.iloc[0]['last_timestamp'])}" if len(span) else
                               "unknown")})
    coverage = []
    sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM report_hours ORDER BY 1")
               .fetchall()]
    for n in incidents:
        present = {r[0] for r in con.execute(
            "SELECT DISTINCT source FROM report_hours WHERE hour >= date_trunc('hour', ?) "
            "AND hour <= ?", [n.first_seen, n.last_seen + ACTIVITY_AFTER]).fetchall()}
        missing = [s for s in sources if s not in present]
        coverage.append({"incident_id": n.incident_id, "sources_without_events": missing})
    detectors = json.loads(run_row["detectors"]) if run_row is not None else []
    params = json.loads(run_row["parameters"]) if run_row is not None else {}
    return {
        "inputs": inputs,
        "rejects": reasons,
        "rejects_total": len(rejects),
        "coverage": coverage,
        "detection_run": {
            "run_id": run_row["run_id"] if run_row is not None else None,
            "started_at": _iso(run_row["started_at"]) if run_row is not None else None,
            "scope": json.loads(run_row["scope"]) if run_row is not None else None,
            "detectors": [{k: d[k] for k in ("name", "version", "status", "findings",
                                             "message")} for d in detectors],
            "parameters": params,
        },
        "limits": [
            "Findings are leads, not verdicts: each cites the events it rests on.",
            f"Tables are capped (at most {MAX_EVIDENCE} evidence events per finding and "
            f"{EVIDENCE_BUDGET} in all, {MAX_ACTIVITY} activity events and {MAX_FINDINGS} "
            f"findings per incident, {MAX_INCIDENTS} incidents told in full, raw records "
            f"cut at {MAX_RAW} characters); the counts left out are given, and "
            "analysis.findings.evidence_events or auditlens detect --out list them all.",
            "Hours are judged in UTC.",
            *[f"The input {r.path} changed while it was ingested: it {r.input_changed}."
              for r in manifest.sort_values("path").itertuples()
              if isinstance(getattr(r, "input_changed", None), str)],
        ],
    }


def to_json(report: dict[str, Any]) -> str:
    """The report as JSON (sorted keys, two-space indent): the canonical form."""
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False,
                      default=_clean) + "\n"
