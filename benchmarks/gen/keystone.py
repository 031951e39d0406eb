"""Keystone CADF notifications: ``cloud/keystone/notifications.jsonl``.

oslo notification envelopes (``message_id``, ``publisher_id``, ``event_type``, ``priority``,
``timestamp``, ``payload``) whose payload is a CADF event: Keystone ``identity.authenticate``
and keystonemiddleware ``audit.http.response`` from the compute and block-storage APIs.
"""

from __future__ import annotations

import json
from typing import Any

from gen import cast as C
from gen.core import Out, Step, Truth, hexid, iso, mixed_weight, rng_for, run_stream, times, uuid4

_CADF_EVENT = "http://schemas.dmtf.org/cloud/audit/1.0/event"


class KeystoneCadf:
    """Writes ``cloud/keystone/notifications.jsonl``."""

    def __init__(self, root: Any, seed: int, tl: C.Timeline, truth: Truth) -> None:
        self.rng = rng_for(seed, "openstack_cadf")
        self.tl, self.truth = tl, truth
        self.out = Out(root, "cloud/keystone/notifications.jsonl")
        self.observer = hexid(self.rng)

    def envelope(self, t: float, event_type: str, publisher: str, payload: dict[str, Any]
                 ) -> tuple[int, int]:
        env = {"message_id": uuid4(self.rng), "publisher_id": publisher,
               "event_type": event_type, "priority": "INFO", "payload": payload,
               "timestamp": iso(t + 0.002, 6, "").replace("T", " ")}
        return self.out.write(json.dumps(env) + "\n")

    def authenticate(self, t: float, uid: str, name: str, ip: str, agent: str, ok: bool
                     ) -> tuple[int, int]:
        payload: dict[str, Any] = {
            "typeURI": _CADF_EVENT, "id": uuid4(self.rng), "eventTime": iso(t, 6, "+0000"),
            "action": "authenticate", "eventType": "activity",
            "outcome": "success" if ok else "failure",
            "observer": {"typeURI": "service/security", "id": self.observer},
            "initiator": {"typeURI": "service/security/account/user", "id": uid, "name": name,
                          "domain": {"id": "default", "name": "Default"},
                          "host": {"address": ip, "agent": agent}},
            "target": {"typeURI": "service/security/account/user", "id": uuid4(self.rng)},
        }
        if not ok:
            payload["reason"] = {"reasonType": "HTTP", "reasonCode": "401"}
        return self.envelope(t, "identity.authenticate", "identity.keystone-01", payload)

    def http(self, t: float, uid: str, name: str, ip: str, agent: str, method: str,
             service: str, path: str, target_type: str, code: int) -> tuple[int, int]:
        action = {"GET": "read", "POST": "create", "PUT": "update", "DELETE": "delete"}[method]
        payload = {
            "typeURI": _CADF_EVENT, "id": uuid4(self.rng), "eventTime": iso(t, 6, "+0000"),
            "eventType": "activity", "action": action, "outcome": "success"
            if code < 400 else "failure",
            "reason": {"reasonType": "HTTP", "reasonCode": str(code)},
            "requestPath": path,
            "initiator": {"typeURI": "service/security/account/user", "id": uid, "name": name,
                          "project_id": C.PROJECT_ID,
                          "credential": {"token": "***", "identity_status": "Confirmed"},
                          "host": {"address": ip, "agent": agent}},
            "target": {"typeURI": target_type, "id": hexid(self.rng), "name": service,
                       "addresses": [{"url": f"https://{service}.{C.REGION}.cloud.example",
                                      "name": "public"}]},
            "observer": {"id": "target"},
            "reporterchain": [{"role": "modifier", "reporterTime": iso(t, 6, "+0000"),
                               "reporter": {"id": "target"}}],
        }
        return self.envelope(t, "audit.http.response", f"{service}-api.{C.REGION}-a", payload)

    def background(self, t: float) -> None:
        rng = self.rng
        hour = int(t // 3600) % 24
        if rng.random() < 0.55:
            p = C.PEOPLE[rng.randrange(len(C.PEOPLE))]
            if p.hours[0] <= hour < p.hours[1]:
                ip = C.OFFICE_IP if rng.random() < 0.7 else p.home_ip
                self.authenticate(t, p.keystone_id, p.login, ip, C.UA_OPENSTACK,
                                  rng.random() > 0.02)
                return
        name, _sid, kid, ip, ua = C.SERVICE_USERS[rng.randrange(2)]
        if rng.random() < 0.5:
            self.authenticate(t, kid, name, ip, ua, True)
        elif name == "svc-backup":
            self.http(t, kid, name, ip, ua, "POST", "cinder",
                      f"/v3/{C.PROJECT_ID}/snapshots", "service/storage/block/snapshots", 202)
        else:
            self.http(t, kid, name, ip, ua, "GET", "nova", f"/v2.1/{C.PROJECT_ID}/servers/detail",
                      "service/compute/servers", 200)

    def scripted(self) -> list[Step]:
        tl, v = self.tl, C.VICTIM
        steps: list[Step] = []

        def auth(t: float) -> None:
            span = self.authenticate(t, v.keystone_id, v.login, C.ATTACKER_IP, C.UA_OPENSTACK,
                                     True)
            self.truth.add("incident", "Keystone token issued with the new API key", t,
                           self.out, span, [v.login, C.ATTACKER_IP])
        steps.append((tl.inc(22, 58, 2.44), auth))

        def delete(t: float) -> None:
            span = self.http(t, v.keystone_id, v.login, C.ATTACKER_IP, C.UA_OPENSTACK, "DELETE",
                             "cinder", f"/v3/{C.PROJECT_ID}/volumes/{C.VOLUME_DELETED[1]}",
                             "service/storage/block/volumes/volume", 202)
            self.truth.add("incident", "volume deleted through the block storage API", t,
                           self.out, span, [v.login, C.ATTACKER_IP, C.VOLUME_DELETED[1]])
        steps.append((tl.inc(0, 5, 40.11, next_day=True), delete))
        d = C.TRAVELLER
        for day, (hh, mm) in ((0, (5, 11)), (1, (4, 43))):
            def travel(t: float) -> None:
                span = self.authenticate(t, d.keystone_id, d.login, C.TRAVEL_IP, C.UA_OPENSTACK,
                                         True)
                self.truth.add("decoy_travel", "token issued from a new city at noon", t,
                               self.out, span, [d.login, C.TRAVEL_IP])
            steps.append((tl.travel_day + day * C.DAY + hh * C.HOUR + mm * 60 + 2.5, travel))
        name, _sid, kid, ip, ua = C.SERVICE_USERS[0]
        for night in tl.nightly():
            def ci(t: float) -> None:
                span = self.authenticate(t, kid, name, ip, ua, True)
                self.truth.add("decoy_nightly_ci", "nightly CI authenticates", t, self.out,
                               span, [name, ip])
            steps.append((night + 38.0, ci))
        return steps

    def run(self, n: int) -> None:
        run_stream(times(self.rng, self.tl.start, self.tl.days, n, mixed_weight),
                   self.background, self.scripted())
        self.out.close()
