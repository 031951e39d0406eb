"""The managed Kubernetes cluster ``prod-mks``: the API server's audit log.

Files written:

- ``k8s/kube-apiserver-audit.log`` — ``audit.k8s.io/v1`` Events, JSON Lines, compact as the log
  backend writes them; most requests as one ``ResponseComplete`` event, some also with their
  ``RequestReceived`` stage (same ``auditID``); RBAC and pod creations at ``RequestResponse``
  level with ``requestObject``. Carries one deliberately truncated line.
- ``k8s/audit-webhook-batch.json`` — the webhook backend's ``EventList`` batch for the incident
  hour as a SIEM collector stored it (same events as the log file: overlapping exports).

Container logs, events and tasks are in :mod:`gen.k8s_cluster`.
"""

from __future__ import annotations

import json
from typing import Any

from gen import cast as C
from gen.core import (
    Out,
    Step,
    Truth,
    iso,
    machine_weight,
    rng_for,
    run_stream,
    times,
    uuid4,
    weighted,
)

_NODE_UA = "kubelet/v1.30.4 (linux/amd64) kubernetes/a51b3b7"
_KCM_UA = "kube-controller-manager/v1.30.4 (linux/amd64) kubernetes/a51b3b7/leader-election"
_SCHED_UA = "kube-scheduler/v1.30.4 (linux/amd64) kubernetes/a51b3b7/leader-election"
_PROM_UA = "Prometheus/2.54.1"
_SA = "system:serviceaccount:"
_SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:{ns}", "system:authenticated"]
ADMIN_GROUPS = ["system:masters", "system:authenticated"]


def sa_user(ns: str, name: str) -> tuple[str, list[str]]:
    return f"{_SA}{ns}:{name}", [g.format(ns=ns) for g in _SA_GROUPS]


class K8sAudit:
    """Writes the audit log and the webhook EventList batch."""

    def __init__(self, root: Any, seed: int, tl: C.Timeline, truth: Truth) -> None:
        self.rng = rng_for(seed, "k8s_audit")
        self.tl, self.truth = tl, truth
        self.out = Out(root, "k8s/kube-apiserver-audit.log")
        self.batch = Out(root, "k8s/audit-webhook-batch.json")
        self.batch.write('{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},'
                         '"items":[\n', 0)
        self.batch_first = True
        self.window = (tl.inc(23, 0), tl.inc(23, 59, 59.999))
        self.rv = 48_213_000 + self.rng.randrange(100000)
        self.pick = weighted(self.rng, [("lease", 30), ("node", 10), ("kcm", 15),
                                        ("sched", 8), ("prom", 10), ("ingress", 7),
                                        ("human", 10)])

    def request(self, t: float, verb: str, uri: str, user: str, groups: list[str], ip: str,
                ua: str, ref: dict[str, Any], code: int = 200, level: str = "Metadata",
                request_obj: dict[str, Any] | None = None, both_stages: bool = False,
                reason: str = "") -> list[tuple[Out, tuple[int, int]]]:
        rng = self.rng
        aid = uuid4(rng)
        if verb in ("create", "update", "patch", "delete"):
            self.rv += 1 + rng.randrange(30)
            if code < 300 and verb != "delete":
                ref = {**ref, "resourceVersion": str(self.rv)} if "name" in ref else ref
        else:
            self.rv += rng.randrange(3)
        recv = iso(t, 6)
        ev: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level,
                              "auditID": aid, "stage": "RequestReceived", "requestURI": uri,
                              "verb": verb, "user": {"username": user, "groups": groups},
                              "sourceIPs": [ip], "userAgent": ua, "objectRef": ref,
                              "requestReceivedTimestamp": recv, "stageTimestamp": recv}
        spans: list[tuple[Out, tuple[int, int]]] = []
        if both_stages:
            ev["_t"] = t
            spans += self._emit(ev)
        done = dict(ev)
        done["stage"] = "ResponseComplete"
        done["responseStatus"] = {"metadata": {}, "code": code} if code < 400 else {
            "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": code}
        if request_obj is not None and level in ("Request", "RequestResponse"):
            done["requestObject"] = request_obj
        done["stageTimestamp"] = iso(t + 0.0008 + rng.random() * 0.02, 6)
        done["annotations"] = {"authorization.k8s.io/decision": "allow" if code != 403
                               else "forbid", "authorization.k8s.io/reason": reason}
        done["_t"] = t
        spans += self._emit(done)
        return spans

    def _emit(self, ev: dict[str, Any]) -> list[tuple[Out, tuple[int, int]]]:
        t = ev.pop("_t")
        text = json.dumps(ev, separators=(",", ":"))
        spans = [(self.out, self.out.write(text + "\n"))]
        if self.window[0] <= t <= self.window[1]:
            sep = "" if self.batch_first else ",\n"
            self.batch_first = False
            self.batch.write(sep, 0)
            line = self.batch.lines + 1
            self.batch.write(text, 1)
            spans.append((self.batch, (line, line)))
        return spans

    def background(self, t: float) -> None:
        rng = self.rng
        kind = self.pick()
        if kind == "lease":
            i = rng.randrange(3)
            node = C.NODES[i]
            self.request(t, "update", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/"
                         f"leases/{node}?timeout=10s", f"system:node:{node}",
                         ["system:nodes", "system:authenticated"], C.NODE_IPS[i], _NODE_UA,
                         {"resource": "leases", "namespace": "kube-node-lease", "name": node,
                          "apiGroup": "coordination.k8s.io", "apiVersion": "v1"})
        elif kind == "node":
            i = rng.randrange(3)
            node = C.NODES[i]
            self.request(t, "patch", f"/api/v1/nodes/{node}/status?timeout=10s",
                         f"system:node:{node}", ["system:nodes", "system:authenticated"],
                         C.NODE_IPS[i], _NODE_UA, {"resource": "nodes", "name": node,
                                                   "apiVersion": "v1", "subresource": "status"})
        elif kind == "kcm":
            self.request(t, "update", "/apis/coordination.k8s.io/v1/namespaces/kube-system/"
                         "leases/kube-controller-manager?timeout=5s",
                         "system:kube-controller-manager", ["system:authenticated"],
                         C.APISERVER_HOST, _KCM_UA,
                         {"resource": "leases", "namespace": "kube-system",
                          "name": "kube-controller-manager", "apiGroup": "coordination.k8s.io",
                          "apiVersion": "v1"})
        elif kind == "sched":
            self.request(t, "get", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                         "kube-scheduler?timeout=5s", "system:kube-scheduler",
                         ["system:authenticated"], C.APISERVER_HOST, _SCHED_UA,
                         {"resource": "leases", "namespace": "kube-system",
                          "name": "kube-scheduler", "apiGroup": "coordination.k8s.io",
                          "apiVersion": "v1"})
        elif kind == "prom":
            user, groups = sa_user("monitoring", "prometheus-k8s")
            res = rng.choice(("pods", "endpoints", "services"))
            self.request(t, "list", f"/api/v1/{res}?limit=500&resourceVersion=0", user, groups,
                         "10.20.2.31", _PROM_UA, {"resource": res, "apiVersion": "v1"})
        elif kind == "ingress":
            user, groups = sa_user("ingress-nginx", "ingress-nginx")
            self.request(t, "get", "/api/v1/namespaces/ingress-nginx/configmaps/"
                         "ingress-nginx-controller", user, groups, "10.20.2.17",
                         "nginx-ingress-controller/v1.11.2 (linux/amd64) ingress-nginx/46e76e5",
                         {"resource": "configmaps", "namespace": "ingress-nginx",
                          "name": "ingress-nginx-controller", "apiVersion": "v1"})
        else:
            hour = int(t // 3600) % 24
            if 6 <= hour < 17:
                if rng.random() < 0.5:
                    user, groups, ip, ua = ("admin", ADMIN_GROUPS, C.OFFICE_IP, C.UA_KUBECTL)
                else:
                    user, groups, ip, ua = ("oidc:oleg.kuznetsov@nordwind.example",
                                            ["oidc:devops", "system:authenticated"],
                                            C.DEVOPS.home_ip if rng.random() < 0.3
                                            else C.OFFICE_IP, C.UA_KUBECTL_MAC)
                ns = rng.choice(("payments", "default", "ingress-nginx", "monitoring"))
                sub = rng.random()
                if sub < 0.6:
                    self.request(t, "list", f"/api/v1/namespaces/{ns}/pods?limit=500", user,
                                 groups, ip, ua, {"resource": "pods", "namespace": ns,
                                                  "apiVersion": "v1"}, both_stages=True)
                else:
                    self.request(t, "get", f"/api/v1/namespaces/{ns}/pods/{C.EXEC_POD[1]}/log",
                                 user, groups, ip, ua, {"resource": "pods", "namespace": ns,
                                                        "name": C.EXEC_POD[1],
                                                        "apiVersion": "v1",
                                                        "subresource": "log"})
            else:
                user, groups = sa_user("kube-system", "cronjob-controller")
                self.request(t, "create", "/apis/batch/v1/namespaces/payments/jobs", user,
                             groups, C.APISERVER_HOST, _KCM_UA.replace("/leader-election",
                                                                       "/system:serviceaccount:"
                                                                       "kube-system:cronjob-"
                                                                       "controller"),
                             {"resource": "jobs", "namespace": "payments",
                              "name": f"invoice-sweeper-{int(t) // 60}", "apiGroup": "batch",
                              "apiVersion": "v1"}, code=201)

    def scripted(self) -> list[Step]:
        tl = self.tl
        steps: list[Step] = []
        ip, ua = C.ATTACKER_IP, C.UA_KUBECTL_ATTACKER
        sa, sa_groups = sa_user("kube-system", C.EVIL_SA)
        ns, pod = C.EXEC_POD
        ens, epod = C.EVIL_POD
        crb = {"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
               "metadata": {"name": C.EVIL_SA, "creationTimestamp": None},
               "subjects": [{"kind": "ServiceAccount", "name": C.EVIL_SA,
                             "namespace": "kube-system"}],
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "cluster-admin"}}
        pod_obj = {"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"name": epod, "namespace": ens, "creationTimestamp": None},
                   "spec": {"hostPID": True, "hostNetwork": True,
                            "serviceAccountName": C.EVIL_SA,
                            "nodeName": C.NODES[1],
                            "containers": [{"name": "shell", "image": "alpine:3.20",
                                            "command": ["sh", "-c", "sleep 1d"],
                                            "securityContext": {"privileged": True},
                                            "volumeMounts": [{"name": "host",
                                                              "mountPath": "/host"}]}],
                            "volumes": [{"name": "host", "hostPath": {"path": "/"}}]}}
        plan: list[tuple[float, str, str, str, list[str], dict[str, Any], int, str,
                         dict[str, Any] | None, bool]] = [
            (tl.inc(23, 3, 48.2), "list", "/api/v1/namespaces?limit=500", "admin",
             ADMIN_GROUPS, {"resource": "namespaces", "apiVersion": "v1"}, 200, "Metadata",
             None, False),
            (tl.inc(23, 4, 30.6), "create", "/api/v1/namespaces/kube-system/serviceaccounts",
             "admin", ADMIN_GROUPS, {"resource": "serviceaccounts", "namespace": "kube-system",
                                     "name": C.EVIL_SA, "apiVersion": "v1"}, 201, "Metadata",
             None, False),
            (tl.inc(23, 4, 41.3), "create",
             "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "admin", ADMIN_GROUPS,
             {"resource": "clusterrolebindings", "name": C.EVIL_SA,
              "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"}, 201,
             "RequestResponse", crb, False),
            (tl.inc(23, 5, 2.9), "create",
             f"/api/v1/namespaces/kube-system/serviceaccounts/{C.EVIL_SA}/token", "admin",
             ADMIN_GROUPS, {"resource": "serviceaccounts", "namespace": "kube-system",
                            "name": C.EVIL_SA, "apiVersion": "v1", "subresource": "token"},
             201, "Metadata", None, False),
            (tl.inc(23, 6, 15.4), "list", "/api/v1/secrets?limit=500", sa, sa_groups,
             {"resource": "secrets", "apiVersion": "v1"}, 200, "Metadata", None, False),
            (tl.inc(23, 7, 30.8), "get", "/api/v1/namespaces/payments/secrets/"
             "payments-db-credentials", sa, sa_groups,
             {"resource": "secrets", "namespace": "payments", "name": "payments-db-credentials",
              "apiVersion": "v1"}, 200, "Metadata", None, False),
            (tl.inc(23, 9, 0.5), "create", f"/api/v1/namespaces/{ns}/pods/{pod}/exec?command="
             "sh&command=-c&command=env&container=api&stdin=true&stdout=true&tty=true", sa,
             sa_groups, {"resource": "pods", "namespace": ns, "name": pod, "apiVersion": "v1",
                         "subresource": "exec"}, 101, "Metadata", None, True),
            (tl.inc(23, 12, 20.1), "create", f"/api/v1/namespaces/{ens}/pods", sa, sa_groups,
             {"resource": "pods", "namespace": ens, "name": epod, "apiVersion": "v1"}, 201,
             "RequestResponse", pod_obj, False),
        ]
        steps_txt = ("recon: list namespaces", "service account created",
                     "ClusterRoleBinding to cluster-admin", "service account token issued",
                     "list secrets in all namespaces", "read database credentials secret",
                     "exec into a pod", "privileged pod with host mounts")
        for (t, verb, uri, user, groups, ref, code, level, obj, both), step in zip(
                plan, steps_txt, strict=True):
            def emit(t: float, verb: str = verb, uri: str = uri, user: str = user,
                     groups: list[str] = groups, ref: dict[str, Any] = ref, code: int = code,
                     level: str = level, obj: dict[str, Any] | None = obj, both: bool = both,
                     step: str = step) -> None:
                reason = ('RBAC: allowed by ClusterRoleBinding "node-health-agent" of ClusterRole'
                          ' "cluster-admin" to ServiceAccount "node-health-agent/kube-system"'
                          if user == sa else "")
                for out, span in self.request(t, verb, uri, user, groups, ip, ua, ref, code,
                                              level, obj, both, reason):
                    self.truth.add("incident", step, t, out, span, [user, ip])
            steps.append((t, emit))
        steps += self._decoys()
        return steps

    def _decoys(self) -> list[Step]:
        tl = self.tl
        steps: list[Step] = []
        user, groups = sa_user("ci", "gitlab-deployer")
        ua = "kubectl/v1.30.4 (linux/amd64) kubernetes/a51b3b7"
        for night in tl.nightly():
            for dt, verb, uri, ref, code in (
                (95.0, "get", "/api/v1/namespaces/ci/secrets/registry-credentials",
                 {"resource": "secrets", "namespace": "ci", "name": "registry-credentials",
                  "apiVersion": "v1"}, 200),
                (97.5, "patch", "/apis/apps/v1/namespaces/payments/deployments/payments-api",
                 {"resource": "deployments", "namespace": "payments", "name": "payments-api",
                  "apiGroup": "apps", "apiVersion": "v1"}, 200),
                (99.0, "list", "/api/v1/namespaces/payments/pods?labelSelector=app%3D"
                 "payments-api", {"resource": "pods", "namespace": "payments",
                                  "apiVersion": "v1"}, 200),
            ):
                def ci(t: float, verb: str = verb, uri: str = uri, ref: dict[str, Any] = ref,
                       code: int = code) -> None:
                    for out, span in self.request(t, verb, uri, user, groups, C.CI_RUNNER_IP,
                                                  ua, ref, code):
                        self.truth.add("decoy_nightly_ci", f"nightly CI: {verb} "
                                       f"{ref['resource']}", t, out, span,
                                       [user, C.CI_RUNNER_IP])
                steps.append((night + dt, ci))
        a = C.ADMIN
        m = tl.maintenance_day + 18 * C.HOUR
        for i, node in enumerate(C.NODES):
            for dt, verb, uri, ref in (
                (600.0 + i * 600, "patch", f"/api/v1/nodes/{node}",
                 {"resource": "nodes", "name": node, "apiVersion": "v1"}),
                (604.0 + i * 600, "create", f"/api/v1/namespaces/payments/pods/"
                 f"{C.EXEC_POD[1]}/eviction", {"resource": "pods", "namespace": "payments",
                                               "name": C.EXEC_POD[1], "apiVersion": "v1",
                                               "subresource": "eviction"}),
                (900.0 + i * 600, "patch", f"/api/v1/nodes/{node}",
                 {"resource": "nodes", "name": node, "apiVersion": "v1"}),
            ):
                def maint(t: float, verb: str = verb, uri: str = uri,
                          ref: dict[str, Any] = ref) -> None:
                    for out, span in self.request(t, verb, uri, "admin", ADMIN_GROUPS,
                                                  a.home_ip, C.UA_KUBECTL, ref,
                                                  201 if verb == "create" else 200):
                        self.truth.add("decoy_maintenance", f"planned node drain: {verb} "
                                       f"{ref['resource']}", t, out, span, ["admin", a.home_ip])
                steps.append((m + dt, maint))
        return steps

    def run(self, n: int) -> None:
        bad_at = max(5, n // 3)
        count = [0]

        def bg(t: float) -> None:
            count[0] += 1
            if count[0] == bad_at:
                # the log backend was killed mid-write: half a JSON document, then a newline
                line = self.out.lines + 1
                ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                      "auditID": uuid4(self.rng), "stage": "ResponseComplete",
                      "requestURI": "/api/v1/namespaces/payments/pods", "verb": "list"}
                text = json.dumps(ev, separators=(",", ":"))
                self.out.write(text[: len(text) * 2 // 3] + "\n")
                self.truth.bad_record(self.out, line, "truncated JSON (apiserver killed while "
                                      "writing)")
            self.background(t)

        run_stream(times(self.rng, self.tl.start, self.tl.days, n, machine_weight), bg,
                   self.scripted())
        self.batch.write("\n]}\n", 0)
        self.out.close()
        self.batch.close()
