"""Generate one company's logs over ~14 days, in each source's native format, with an incident.

Usage::

    python benchmarks/generate.py --out data-samples --events 20000 --seed 7
    python benchmarks/generate.py --out /tmp/big --events 10000000 --seed 1

``--events`` sets the background volume (about that many events in all, split over the sources
in fixed shares); the incident and the decoys are always embedded. Each source is written in
time order straight to disk, so memory does not grow with ``--events``. The same arguments give
byte-identical files: every random choice comes from ``random.Random`` seeded from ``--seed``.

``ground-truth.json`` (written last) lists, by file and line, every event of the incident and of
each decoy, the incident's users, addresses, sessions, hosts and pods, and the records that are
deliberately malformed. See ``data-samples/README.md`` for the story.
"""

from __future__ import annotations

import argparse
import calendar
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen import cast as C
from gen.cloud import SelectelAudit, SelectelAuth
from gen.core import Truth
from gen.k8s import K8sAudit
from gen.k8s_cluster import Containers, Events, write_tasks
from gen.keystone import KeystoneCadf
from gen.linux import LinuxHost
from gen.windows import Windows

# Share of --events per source (events as each loader counts them).
SHARES = {
    "selectel_audit": 0.05,
    "selectel_auth": 0.015,
    "openstack_cadf": 0.05,
    "linux": 0.38,          # audit.log events + auth.log lines, one activity ≈ 3.3 of them
    "windows_events": 0.15,
    "k8s_audit": 0.22,
    "k8s_container": 0.12,
    "k8s_events": 0.015,
}
LINUX_EVENTS_PER_ACTIVITY = 3.3

LOADER_OF = {
    "cloud/audit/events.txt": "selectel_audit",
    "cloud/audit/audit-export-manual.json": "selectel_audit",
    "cloud/auth/authorization-log.csv": "selectel_auth",
    "cloud/keystone/notifications.jsonl": "openstack_cadf",
    "linux/app-01/audit.log": "linux_auditd",
    "linux/app-01/auth.log": "linux_auth",
    "windows/winlogbeat.ndjson": "windows_events",
    "k8s/kube-apiserver-audit.log": "k8s_audit",
    "k8s/audit-webhook-batch.json": "k8s_audit",
    "k8s/events.json": "k8s_events",
    "k8s/mks-tasks.json": "mks_cluster",
}


def loader_for(rel: str) -> str:
    """The loader that reads a generated file (container logs: ``k8s_container``)."""
    return LOADER_OF.get(rel, "k8s_container" if rel.startswith("k8s/pods/") else "")


def incident_entities(tl: C.Timeline) -> dict[str, Any]:
    from gen.core import iso
    return {
        "summary": ("Password spraying against the control panel, then a night login as "
                    f"{C.VICTIM.login} from {C.ATTACKER_IP} with a new browser; an API key is "
                    "created, the deploy SSH key secret is read and the kubeconfig downloaded; "
                    "in Kubernetes a service account is bound to cluster-admin, a pod is "
                    "exec'd into, secrets are listed, a privileged pod is started; on app-01 "
                    "the attacker uses the deploy key, sudo to root, downloads into /tmp, runs "
                    "it (outbound connection), adds a user; on WIN-JUMP-01 encoded PowerShell "
                    "and LSASS access; finally a volume is deleted."),
        "window": [iso(tl.inc(22, 0), 0), iso(tl.inc(0, 10, next_day=True), 0)],
        "users": [C.VICTIM.login, "deploy", "sysupdate", "admin",
                  f"system:serviceaccount:kube-system:{C.EVIL_SA}"],
        "ips": [*C.SPRAY_IPS, C.C2_IP],
        "attacker_ips": [*C.SPRAY_IPS],
        "c2_ips": [C.C2_IP],
        "sessions": {"linux_auditd_ses": "see events with step 'attacker SSH…'",
                     "windows_logon_id": "0x5a3f21c"},
        "hosts": [C.LINUX_HOST, C.WIN_JUMP, C.CLUSTER_NAME],
        "pods": [f"{C.EXEC_POD[0]}/{C.EXEC_POD[1]}", f"{C.EVIL_POD[0]}/{C.EVIL_POD[1]}"],
        "resources": {"api_key": C.API_KEY_NAME, "secret": C.SECRET_READ,
                      "volume_deleted": C.VOLUME_DELETED[0],
                      "volume_id": C.VOLUME_DELETED[1],
                      "clusterrolebinding": C.EVIL_SA},
    }


DECOYS = {
    "decoy_travel": {
        "description": f"{C.TRAVELLER.login} travels to Novosibirsk and signs in from hotel Wi-Fi "
                       f"({C.TRAVEL_IP}) around noon local time, with his usual browser.",
        "users": [C.TRAVELLER.login], "ips": [C.TRAVEL_IP]},
    "decoy_nightly_ci": {
        "description": "Every night at 02:00 Moscow time (23:00 UTC) the CI pipeline deploys: "
                       "Terraform updates a server, the deploy user restarts the worker over "
                       "SSH, the gitlab-deployer service account reads its registry secret and "
                       "patches a deployment.",
        "users": ["svc-terraform", "deploy", "system:serviceaccount:ci:gitlab-deployer"],
        "ips": [C.CI_RUNNER_IP]},
    "decoy_maintenance": {
        "description": f"{C.ADMIN.login}'s announced Saturday maintenance (change CHG-2026-114): "
                       "package upgrade and service restarts on app-01, node drain and a patch "
                       "upgrade of the cluster, a patch script on the jump host, and the planned "
                       f"deletion of the unused volume {C.VOLUME_MAINT[0]} after a snapshot.",
        "users": [C.ADMIN.login, "ivan", "admin"], "ips": [C.ADMIN.home_ip]},
}


def generate(out: Path, events: int, seed: int, start: str, days: int) -> dict[str, Any]:
    """Write every file under ``out`` and return the ground truth (also written there)."""
    start_ts = float(calendar.timegm(time.strptime(start, "%Y-%m-%d")))
    tl = C.Timeline(start_ts, days)
    truth = Truth()
    out.mkdir(parents=True, exist_ok=True)
    n = {k: max(1, int(events * v)) for k, v in SHARES.items()}
    outs = []
    for cls, key in ((SelectelAudit, "selectel_audit"), (SelectelAuth, "selectel_auth"),
                     (KeystoneCadf, "openstack_cadf"), (Windows, "windows_events"),
                     (K8sAudit, "k8s_audit"), (Containers, "k8s_container"),
                     (Events, "k8s_events")):
        writer = cls(out, seed, tl, truth)
        writer.run(n[key])
        outs.append(writer)
    linux = LinuxHost(out, seed, tl, truth)
    linux.run(max(1, int(n["linux"] / LINUX_EVENTS_PER_ACTIVITY)))
    tasks = write_tasks(out, seed, tl, truth)
    files: dict[str, dict[str, Any]] = {}
    for w in [*outs, linux]:
        for attr in ("out", "manual", "batch", "audit", "auth"):
            o = getattr(w, attr, None)
            if o is not None:
                files[o.rel] = {"loader": loader_for(o.rel), "lines": o.lines}
        for o in [*getattr(w, "outs", []), *getattr(w, "evil", {}).values()]:
            files[o.rel] = {"loader": loader_for(o.rel), "lines": o.lines}
    files[tasks.rel] = {"loader": "mks_cluster", "lines": tasks.lines}
    gt: dict[str, Any] = {
        "generator": "benchmarks/generate.py",
        "arguments": {"events": events, "seed": seed, "start": start, "days": days},
        "note": "Every value is synthetic. Lines are 1-based; a record spans line..end_line.",
        "files": dict(sorted(files.items())),
        "incident": {**incident_entities(tl),
                     "events": [r for r in truth.refs if r["label"] == "incident"]},
        "decoys": {name: {**info, "events": [r for r in truth.refs if r["label"] == name]}
                   for name, info in DECOYS.items()},
        "bad_records": truth.bad,
    }
    for group in [gt["incident"], *gt["decoys"].values()]:
        for r in group["events"]:
            del r["label"]
    ses = sorted({int(r["expect"][0]) for r in gt["incident"]["events"]
                  if r["file"].endswith("audit.log") and r["expect"][0].isdigit()})
    gt["incident"]["sessions"]["linux_auditd_ses"] = ses
    (out / "ground-truth.json").write_text(json.dumps(gt, indent=1, ensure_ascii=False) + "\n",
                                           encoding="utf-8")
    return gt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--events", type=int, default=20000, help="background volume (events)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--start", default="2026-11-01", help="first day, YYYY-MM-DD (UTC)")
    args = ap.parse_args(argv)
    if args.days < 12:
        ap.error("--days must be at least 12 (the story needs them)")
    t0 = time.perf_counter()
    gt = generate(args.out, args.events, args.seed, args.start, args.days)
    lines = sum(f["lines"] for f in gt["files"].values())
    print(f"wrote {len(gt['files'])} files, {lines} lines, to {args.out} in "
          f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
