"""Selectel account sources: the audit log and the control-panel authorization log.

Files written (paths relative to the output directory):

- ``cloud/audit/events.txt`` — the audit log as the export script writes it: JSON Lines, nested
  ``subject{}`` / ``resource{}`` / ``request{}`` layout.
- ``cloud/audit/audit-export-manual.json`` — a manual export from the panel, made earlier and in
  the older schema-1.0 layout (prefixed keys), covering the first three days: it overlaps
  ``events.txt`` (same ``event_id`` and ``event_saved_time``), as real repeated exports do.
- ``cloud/auth/authorization-log.csv`` — the panel's login history, ``;``-separated, Russian
  headers, UTF-8 with BOM (what the panel's "download CSV" gives to Excel users).
"""

from __future__ import annotations

import json
import random
from typing import Any

from gen import cast as C
from gen.core import (
    Out,
    Step,
    Truth,
    hexid,
    human_weight,
    iso,
    mixed_weight,
    rng_for,
    run_stream,
    times,
    uuid4,
    weighted,
)

_SCHEMA = "2.0"
_FP = "sha256:"


def _fingerprint(rng: random.Random) -> str:
    return _FP + hexid(rng, 16)


class SelectelAudit:
    """Writes ``events.txt`` and the overlapping schema-1.0 manual export."""

    def __init__(self, root: Any, seed: int, tl: C.Timeline, truth: Truth) -> None:
        self.rng = rng_for(seed, "selectel_audit")
        self.tl = tl
        self.truth = truth
        self.out = Out(root, "cloud/audit/events.txt")
        self.manual = Out(root, "cloud/audit/audit-export-manual.json")
        self.manual.write("[\n", 0)
        self.manual_end = tl.start + 3 * C.DAY
        self.manual_first = True
        self.fp = {p.login: _fingerprint(self.rng) for p in C.PEOPLE}
        self.servers = [(f"app-{i:02d}", uuid4(self.rng)) for i in range(1, 7)]

    # -- one event ---------------------------------------------------------------------
    def event(self, t: float, etype: str, subject: dict[str, Any], resource: dict[str, Any],
              request: dict[str, Any], status: str = "success", error: str | None = None,
              request_id: str | None = None, source_type: str = "panel") -> tuple[int, int]:
        rng = self.rng
        ev: dict[str, Any] = {
            "event_id": uuid4(rng),
            "event_type": etype,
            "event_time": iso(t, 3),
            "event_saved_time": iso(t + 0.05 + rng.random() * 0.9, 3),
            "status": status,
        }
        if error:
            ev["error_code"] = error
        ev["request_id"] = request_id or uuid4(rng)
        ev["subject"] = subject
        res = {"id": resource["id"], "type": resource["type"], "name": resource["name"],
               "account_id": C.ACCOUNT_ID, "project_id": C.PROJECT_ID, "location": C.REGION,
               "details": {}, "old_values": {}, "new_values": {}}
        res.update(resource)
        ev["resource"] = res
        ev["source_type"] = source_type
        ev["request"] = request
        ev["schema_version"] = _SCHEMA
        span = self.out.write(json.dumps(ev, ensure_ascii=False) + "\n")
        if t < self.manual_end:
            self._manual(ev)
        return span

    def _manual(self, ev: dict[str, Any]) -> None:
        """The same event in the schema-1.0 layout, one array element per line."""
        flat: dict[str, Any] = {k: ev[k] for k in ("event_id", "event_type", "event_time",
                                                    "event_saved_time", "status")}
        if "error_code" in ev:
            flat["error_code"] = ev["error_code"]
        flat["request_id"] = ev["request_id"]
        flat["subject"] = {f"subject_{k}": v for k, v in ev["subject"].items()}
        res = ev["resource"]
        flat["resource"] = {f"resource_{k}": v for k, v in res.items()
                            if k not in ("old_values", "new_values", "details")}
        flat["resource"]["resource_changes_old_values"] = res["old_values"]
        flat["resource"]["resource_changes_new_values"] = res["new_values"]
        flat["source_type"] = ev["source_type"]
        flat["request"] = {f"request_{k}": v for k, v in ev["request"].items()}
        flat["schema_version"] = "1.0"
        sep = "" if self.manual_first else ",\n"
        self.manual_first = False
        self.manual.write(sep + json.dumps(flat, ensure_ascii=False), 0)

    def user_subject(self, p: C.Person, provider: str = "selectel") -> dict[str, Any]:
        return {"id": p.user_id, "type": "user", "name": p.login, "auth_provider": provider,
                "is_authorized": True, "authorized_by": ["role:account_owner"]
                if p is C.ADMIN else ["role:member"],
                "credentials_fingerprint": self.fp[p.login]}

    @staticmethod
    def request(ip: str, ua: str, path: str, method: str, params: str = "") -> dict[str, Any]:
        return {"remote_address": ip, "user_agent": ua, "type": "http", "path": path,
                "method": method, "parameters": params}

    # -- background ----------------------------------------------------------------------
    def background(self, t: float) -> None:
        rng = self.rng
        hour = int(t // 3600) % 24
        p = C.PEOPLE[rng.randrange(len(C.PEOPLE))]
        human = p.hours[0] <= hour < p.hours[1] and rng.random() < 0.8
        if not human:
            self._service(t)
            return
        ip = C.OFFICE_IP if rng.random() < 0.7 else p.home_ip
        kind = self.pick()
        subj = self.user_subject(p)
        if kind == "login":
            self.event(t, "user.login", subj, {"id": p.user_id, "type": "user", "name": p.login},
                       self.request(ip, p.browser, "/api/auth/login", "POST"))
        elif kind == "logout":
            self.event(t, "user.logout", subj, {"id": p.user_id, "type": "user", "name": p.login},
                       self.request(ip, p.browser, "/api/auth/logout", "POST"))
        elif kind == "server":
            name, sid = self.servers[rng.randrange(len(self.servers))]
            op = rng.choice(("server.reboot", "server.update", "server.start", "server.stop"))
            fail = rng.random() < 0.03
            old, new = ({}, {})
            if op == "server.update":
                old, new = {"name": name, "flavor": "SL1.2-4096"}, {"name": name,
                                                                   "flavor": "SL1.4-8192"}
            self.event(t, op, subj, {"id": sid, "type": "server", "name": name,
                                     "old_values": old, "new_values": new},
                       self.request(ip, p.browser, f"/compute/v2.1/servers/{sid}/action", "POST"),
                       status="fail" if fail else "success", error="forbidden" if fail else None)
        elif kind == "secret":
            sname = rng.choice(("prod/grafana-admin", "prod/smtp-relay", "staging/db-password"))
            self.event(t, "secret.read", subj, {"id": uuid4(rng), "type": "secret",
                                                "name": sname},
                       self.request(ip, p.browser, f"/secrets-manager/v1/{sname}", "GET"))
        else:
            bucket = rng.choice(("invoices", "static-assets", "ml-datasets"))
            self.event(t, "s3.bucket.update", subj, {"id": bucket, "type": "s3_bucket",
                                                     "name": bucket,
                                                     "old_values": {"versioning": "Suspended"},
                                                     "new_values": {"versioning": "Enabled"}},
                       self.request(ip, p.browser, f"/s3/{bucket}?versioning", "PUT"))

    def _service(self, t: float) -> None:
        rng = self.rng
        name, sid, kid, ip, ua = C.SERVICE_USERS[rng.randrange(2)]
        subj = {"id": sid, "type": "service_user", "name": name, "auth_provider": "keystone",
                "is_authorized": True, "authorized_by": ["role:member"],
                "credentials_fingerprint": "sha256:" + kid[:32]}
        if name == "svc-backup":
            vol = rng.choice(("db-main-01", "db-backup-01", "files-01"))
            self.event(t, "volume.snapshot.create", subj,
                       {"id": uuid4(rng), "type": "volume_snapshot", "name": f"{vol}-auto",
                        "new_values": {"volume": vol, "status": "creating"}},
                       self.request(ip, ua, f"/volume/v3/{C.PROJECT_ID}/snapshots", "POST"),
                       source_type="api")
        else:
            port = uuid4(rng)
            self.event(t, "network.port.update", subj,
                       {"id": port, "type": "port", "name": f"port-{port[:8]}",
                        "old_values": {"security_groups": ["default"]},
                        "new_values": {"security_groups": ["default", "web"]}},
                       self.request(ip, ua, f"/network/v2.0/ports/{port}", "PUT"),
                       source_type="api")

    # -- scripted ------------------------------------------------------------------------
    def scripted(self) -> list[Step]:
        tl, rng = self.tl, random.Random(self.rng.random())
        steps: list[Step] = []
        spray = spray_attempts(tl)
        for t, login, ip in spray:
            def fail(t: float, login: str = login, ip: str = ip) -> None:
                p = C.BY_LOGIN.get(login)
                subj: dict[str, Any] = {"id": p.user_id if p else "", "type": "user",
                                        "name": login, "auth_provider": "selectel",
                                        "is_authorized": False, "authorized_by": [],
                                        "credentials_fingerprint": ""}
                span = self.event(t, "user.login", subj,
                                  {"id": p.user_id if p else "", "type": "user", "name": login},
                                  self.request(ip, C.UA_SPRAY, "/api/auth/login", "POST"),
                                  status="fail", error="invalid_credentials")
                self.truth.add("incident", "password spraying: failed panel login", t,
                               self.out, span, [login, ip])
            steps.append((t, fail))
        v = C.VICTIM
        req_login = uuid4(rng)
        inc = [
            (tl.inc(22, 47, 12.381), "user.login", "successful login from a new IP and browser",
             {"id": v.user_id, "type": "user", "name": v.login}, "/api/auth/login", "POST",
             req_login, {}),
            (tl.inc(22, 52, 5.114), "api_key.create", "API key created",
             {"id": uuid4(rng), "type": "api_key", "name": C.API_KEY_NAME,
              "new_values": {"name": C.API_KEY_NAME, "role": "project_admin",
                             "project": C.PROJECT_NAME, "expires_at": None}},
             "/iam/v1/api-keys", "POST", None, {}),
            (tl.inc(22, 55, 10.642), "secret.read", "read of the deploy SSH key secret",
             {"id": uuid4(rng), "type": "secret", "name": C.SECRET_READ},
             f"/secrets-manager/v1/{C.SECRET_READ}", "GET", None, {}),
            (tl.inc(22, 56, 40.905), "kubeconfig.download", "cluster kubeconfig downloaded",
             {"id": C.CLUSTER_ID, "type": "kubernetes_cluster", "name": C.CLUSTER_NAME},
             f"/mks/v1/clusters/{C.CLUSTER_ID}/kubeconfig", "GET", None, {}),
            (tl.inc(23, 15, 9.77), "kubernetes_nodegroup.update", "node group resized",
             {"id": C.NODEGROUP_ID, "type": "kubernetes_nodegroup", "name": "ng1",
              "old_values": {"nodes_count": 3}, "new_values": {"nodes_count": 8}},
             f"/mks/v1/clusters/{C.CLUSTER_ID}/nodegroups/{C.NODEGROUP_ID}/resize", "POST",
             None, {"api": True}),
            (tl.inc(0, 5, 40.27, next_day=True), "volume.delete", "volume deleted",
             {"id": C.VOLUME_DELETED[1], "type": "volume", "name": C.VOLUME_DELETED[0],
              "old_values": {"name": C.VOLUME_DELETED[0], "size": 500, "status": "available"}},
             f"/volume/v3/{C.PROJECT_ID}/volumes/{C.VOLUME_DELETED[1]}", "DELETE", None,
             {"api": True}),
        ]
        for t, etype, step, res, path, method, rid, opts in inc:
            def emit(t: float, etype: str = etype, step: str = step, res: dict[str, Any] = res,
                     path: str = path, method: str = method, rid: str | None = rid,
                     api: bool = bool(opts)) -> None:
                subj = self.user_subject(v, "api_key" if api else "selectel")
                ua = C.UA_OPENSTACK if api else C.UA_ATTACKER
                span = self.event(t, etype, subj, res,
                                  self.request(C.ATTACKER_IP, ua, path, method),
                                  request_id=rid, source_type="api" if api else "panel")
                self.truth.add("incident", step, t, self.out, span, [v.login, C.ATTACKER_IP])
            steps.append((t, emit))
        steps += self._decoys()
        return steps

    def _decoys(self) -> list[Step]:
        tl = self.tl
        steps: list[Step] = []
        d = C.TRAVELLER
        for day, (hh, mm) in ((0, (5, 10)), (1, (4, 42))):
            t = tl.travel_day + day * C.DAY + hh * C.HOUR + mm * 60 + 17.2

            def travel(t: float) -> None:
                span = self.event(t, "user.login", self.user_subject(d),
                                  {"id": d.user_id, "type": "user", "name": d.login},
                                  self.request(C.TRAVEL_IP, d.browser, "/api/auth/login", "POST"))
                self.truth.add("decoy_travel", "login from a new city at noon local time", t,
                               self.out, span, [d.login, C.TRAVEL_IP])
            steps.append((t, travel))
        name, sid, kid, ip, ua = C.SERVICE_USERS[0]
        for night in tl.nightly():
            t = night + 41.5

            def ci(t: float) -> None:
                subj: dict[str, Any] = {"id": sid, "type": "service_user", "name": name,
                                        "auth_provider": "keystone", "is_authorized": True,
                        "authorized_by": ["role:member"],
                        "credentials_fingerprint": "sha256:" + kid[:32]}
                span = self.event(t, "server.update", subj,
                                  {"id": self.servers[0][1], "type": "server",
                                   "name": self.servers[0][0],
                                   "old_values": {"image": "app-2026.11.1"},
                                   "new_values": {"image": "app-nightly"}},
                                  self.request(ip, ua, "/compute/v2.1/servers/"
                                               f"{self.servers[0][1]}", "PUT"),
                                  source_type="api")
                self.truth.add("decoy_nightly_ci", "nightly CI deploy via Terraform", t,
                               self.out, span, [name, ip])
            steps.append((t, ci))
        a = C.ADMIN
        m = tl.maintenance_day
        for t, etype, res, path, method in (
            (m + 18 * C.HOUR + 2 * 60 + 11.4, "volume.snapshot.create",
             {"id": uuid4(self.rng), "type": "volume_snapshot", "name": "old-logs-02-final",
              "new_values": {"volume": C.VOLUME_MAINT[0]}},
             f"/volume/v3/{C.PROJECT_ID}/snapshots", "POST"),
            (m + 19 * C.HOUR + 21 * 60 + 3.9, "volume.delete",
             {"id": C.VOLUME_MAINT[1], "type": "volume", "name": C.VOLUME_MAINT[0],
              "old_values": {"name": C.VOLUME_MAINT[0], "size": 100, "status": "available"}},
             f"/volume/v3/{C.PROJECT_ID}/volumes/{C.VOLUME_MAINT[1]}", "DELETE"),
        ):
            def maint(t: float, etype: str = etype, res: dict[str, Any] = res, path: str = path,
                      method: str = method) -> None:
                span = self.event(t, etype, self.user_subject(a), res,
                                  self.request(a.home_ip, a.browser, path, method))
                self.truth.add("decoy_maintenance", f"planned maintenance: {etype}", t,
                               self.out, span, [a.login, a.home_ip])
            steps.append((t, maint))
        return steps

    pick: Any = None  # set in run()

    def run(self, n: int) -> None:
        self.pick = weighted(self.rng, [("login", 30), ("logout", 12), ("server", 30),
                                        ("secret", 10), ("s3", 6)])
        run_stream(times(self.rng, self.tl.start, self.tl.days, n, mixed_weight),
                   self.background, self.scripted())
        self.manual.write("\n]\n", 0)
        self.out.close()
        self.manual.close()


def spray_attempts(tl: C.Timeline) -> list[tuple[float, str, str]]:
    """The password-spraying attempts: (time, login, ip), 22:05-22:44 UTC, three addresses."""
    rng = random.Random(f"spray:{tl.start}")
    out = []
    t = tl.inc(22, 5, 3.0)
    for rnd in range(5):
        for i, login in enumerate(C.SPRAY_LOGINS):
            ip = C.SPRAY_IPS[(rnd + i) % 2] if rnd < 4 else C.SPRAY_IPS[2]
            out.append((t, login, ip))
            t += 20 + rng.random() * 40
        t += 60
    return out


# --- control-panel authorization log --------------------------------------------------------

AUTH_HEADER = "Дата;Пользователь;IP-адрес;Браузер;Результат\r\n"
AUTH_OK = "Успешно"
AUTH_FAIL = "Неверный логин или пароль"


def _csv(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if (";" in value or '"' in value) else value


def _msk(t: float) -> str:
    """Panel time: Moscow time with its offset (the panel shows local time)."""
    return iso(t + 3 * C.HOUR, 0, "+03:00")


class SelectelAuth:
    """Writes ``cloud/auth/authorization-log.csv``."""

    def __init__(self, root: Any, seed: int, tl: C.Timeline, truth: Truth) -> None:
        self.rng = rng_for(seed, "selectel_auth")
        self.tl, self.truth = tl, truth
        self.out = Out(root, "cloud/auth/authorization-log.csv")
        self.out.write("\ufeff" + AUTH_HEADER, 0)

    def row(self, t: float, login: str, ip: str, ua: str, ok: bool) -> tuple[int, int]:
        return self.out.write(f"{_msk(t)};{login};{ip};{_csv(ua)};"
                              f"{AUTH_OK if ok else AUTH_FAIL}\r\n")

    def background(self, t: float) -> None:
        rng = self.rng
        p = C.PEOPLE[rng.randrange(len(C.PEOPLE))]
        r = rng.random()
        ip = C.OFFICE_IP if r < 0.65 else (p.home_ip if r < 0.97 else C.OFFICE_IP6)
        self.row(t, p.login, ip, p.browser, rng.random() > 0.04)

    def scripted(self) -> list[Step]:
        steps: list[Step] = []
        for t, login, ip in spray_attempts(self.tl):
            def fail(t: float, login: str = login, ip: str = ip) -> None:
                span = self.row(t, login, ip, C.UA_SPRAY, False)
                self.truth.add("incident", "password spraying: failed panel login", t,
                               self.out, span, [login, ip])
            steps.append((t + 0.6, fail))
        v = C.VICTIM

        def win(t: float) -> None:
            span = self.row(t, v.login, C.ATTACKER_IP, C.UA_ATTACKER, True)
            self.truth.add("incident", "successful login from a new IP and browser at night",
                           t, self.out, span, [v.login, C.ATTACKER_IP])
        steps.append((self.tl.inc(22, 47, 12.0), win))
        d = C.TRAVELLER
        for day, (hh, mm) in ((0, (5, 10)), (1, (4, 42))):
            def travel(t: float) -> None:
                span = self.row(t, d.login, C.TRAVEL_IP, d.browser, True)
                self.truth.add("decoy_travel", "login from a new city at noon local time", t,
                               self.out, span, [d.login, C.TRAVEL_IP])
            steps.append((self.tl.travel_day + day * C.DAY + hh * C.HOUR + mm * 60 + 16.0,
                          travel))
        a = C.ADMIN

        def maint(t: float) -> None:
            span = self.row(t, a.login, a.home_ip, a.browser, True)
            self.truth.add("decoy_maintenance", "admin signs in for planned maintenance", t,
                           self.out, span, [a.login, a.home_ip])
        steps.append((self.tl.maintenance_day + 17 * C.HOUR + 55 * 60 + 4.0, maint))
        return steps

    def run(self, n: int) -> None:
        run_stream(times(self.rng, self.tl.start, self.tl.days, n, human_weight),
                   self.background, self.scripted())
        self.out.close()
