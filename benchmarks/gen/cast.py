"""The company, its people and machines, the attacker, and the timeline of the story.

Every name, address, key and id here is synthetic. Public addresses come from the
documentation ranges (RFC 5737: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24; RFC 3849:
2001:db8::/32); internal ones from RFC 1918 space.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMPANY = "Nordwind Logistics"
DOMAIN = "nordwind.example"
ACCOUNT_ID = "284913"
PROJECT_ID = "7f3c9a2e5b8d4c61a0e2f4b6d8c1a3e5"
PROJECT_NAME = "nordwind-prod"
REGION = "ru-9"
CLUSTER_ID = "3b1e6c2a-94d7-4f0e-8a55-c2d9e7f10b46"
CLUSTER_NAME = "prod-mks"
NODEGROUP_ID = "a6d0f2c8-1e4b-47a3-9c5d-8b7e2f61d039"
OFFICE_IP = "192.0.2.10"
OFFICE_IP6 = "2001:db8:4e57:10::1a"
CI_RUNNER_IP = "192.0.2.40"
VPN_IP = "192.0.2.11"

UA_CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                 "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")
UA_CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                 "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")
UA_FIREFOX_LINUX = ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 "
                    "Firefox/132.0")
UA_SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/18.1 Safari/605.1.15")
UA_EDGE_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
               "Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.2849.68")
UA_ATTACKER = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"
UA_SPRAY = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/119.0.0.0 Safari/537.36")
UA_OPENSTACK = ("openstacksdk/4.1.0 keystoneauth1/5.8.0 python-requests/2.32.3 "
                "CPython/3.12.7")
UA_TERRAFORM = "HashiCorp Terraform/1.9.8 (+https://www.terraform.io) Terraform Plugin SDK/2.10.1"
UA_KUBECTL = "kubectl/v1.30.4 (linux/amd64) kubernetes/a51b3b7"
UA_KUBECTL_MAC = "kubectl/v1.31.2 (darwin/arm64) kubernetes/5864a46"
UA_KUBECTL_ATTACKER = "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625"


@dataclass(frozen=True)
class Person:
    """An employee: panel login, ids, addresses, browser and working hours (UTC)."""

    login: str
    full_name: str
    role: str
    user_id: str
    keystone_id: str
    home_ip: str
    browser: str
    hours: tuple[int, int]
    unix: str | None = None
    uid: int | None = None
    extra_ips: tuple[str, ...] = field(default=())


PEOPLE = (
    Person("anna.volkova", "Anna Volkova", "backend team lead", "u-5f2a91c3",
           "c41f2be08d6a4e7fb3a95d2e61c7f480", "198.51.100.34", UA_CHROME_MAC, (6, 16)),
    Person("dmitry.orlov", "Dmitry Orlov", "solutions engineer (travels)", "u-7b3e04d9",
           "e8a27d1c5f3b49a6b0c4d9e2f7a61538", "198.51.100.57", UA_CHROME_WIN, (6, 15)),
    Person("ivan.petrov", "Ivan Petrov", "system administrator", "u-1c8d52e7",
           "4b9e0a7d3c2f41e8a6d5b1c0f9e83a27", "198.51.100.88", UA_FIREFOX_LINUX, (5, 15),
           unix="ivan", uid=1002),
    Person("maria.sokolova", "Maria Sokolova", "finance (billing)", "u-9a4f17b2",
           "a2d6f0e94b1c47d8a3e5c7b9d0f21e64", OFFICE_IP, UA_SAFARI_MAC, (6, 14)),
    Person("oleg.kuznetsov", "Oleg Kuznetsov", "DevOps engineer", "u-3e6b80a5",
           "91c3e5a7b2d04f6e8c1a9b3d5f7e0c24", "198.51.100.101", UA_EDGE_WIN, (8, 18),
           unix="oleg", uid=1003),
)
BY_LOGIN = {p.login: p for p in PEOPLE}
VICTIM = BY_LOGIN["anna.volkova"]
TRAVELLER = BY_LOGIN["dmitry.orlov"]
ADMIN = BY_LOGIN["ivan.petrov"]
DEVOPS = BY_LOGIN["oleg.kuznetsov"]

# Service users of the cloud account (automation).
SERVICE_USERS = (
    # (name, user id, keystone id, address, user agent)
    ("svc-terraform", "su-2d7f90e1", "b7e1c3a5d9f24e08a6c2b4d0e8f13a59", CI_RUNNER_IP,
     UA_TERRAFORM),
    ("svc-backup", "su-8a1c64f3", "d3f5a7c9e1b24d06b8a0c2e4f6d81b73", "10.20.0.21",
     UA_OPENSTACK),
)

# Attacker infrastructure (documentation ranges, synthetic).
SPRAY_IPS = ("203.0.113.45", "198.51.100.23", "203.0.113.77")
ATTACKER_IP = "203.0.113.77"
C2_IP = "198.51.100.66"
SPRAY_LOGINS = ("anna.volkova", "dmitry.orlov", "maria.sokolova", "admin", "devops",
                "oleg.kuznetsov", "support", "ivan.petrov")
TRAVEL_IP = "198.51.100.140"   # hotel Wi-Fi in Novosibirsk, a new city for dmitry.orlov
SCANNER_NET = "198.51.100."    # internet ssh scanners: 198.51.100.200-250 (background noise)

# Linux server and Windows hosts.
LINUX_HOST = "app-01"
LINUX_IP = "10.20.0.15"
WIN_JUMP = "WIN-JUMP-01.corp.nordwind.example"
WIN_WS = "WS-FIN-02.corp.nordwind.example"
WIN_DOMAIN = "NORDWIND"

# Kubernetes.
NODES = ("prod-mks-ng1-7xk2p", "prod-mks-ng1-9fm4d", "prod-mks-ng1-c2q8w")
NODE_IPS = ("10.20.1.11", "10.20.1.12", "10.20.1.13")
APISERVER_HOST = "10.20.1.2"
EXEC_POD = ("payments", "payments-api-7c9f8d6b5-x2lqp")
EVIL_POD = ("kube-system", "node-health-check-xk2p9")
EVIL_SA = "node-health-agent"
VOLUME_DELETED = ("db-backup-01", "0e9b4c71-2f5a-4d83-b6e0-9a1c7d3f5b28")
VOLUME_MAINT = ("old-logs-02", "5c8e1a3f-7b2d-4e69-a0f4-2d6b8c9e1f37")
SECRET_READ = "prod/deploy-ssh-key"
API_KEY_NAME = "sync-tmp"

DAY = 86400.0
HOUR = 3600.0


@dataclass(frozen=True)
class Timeline:
    """The moments of the story, as epoch seconds, derived from the start date."""

    start: float
    days: int

    @property
    def incident_day(self) -> float:
        """Midnight UTC of the incident evening (day 10 of 14)."""
        return self.start + min(9, max(self.days - 3, 1)) * DAY

    def at(self, day_offset: float, hh: int, mm: int, ss: float = 0.0) -> float:
        return self.start + day_offset * DAY + hh * HOUR + mm * 60 + ss

    def inc(self, hh: int, mm: int, ss: float = 0.0, next_day: bool = False) -> float:
        """A time on the incident night (``next_day`` for times after midnight UTC)."""
        return self.incident_day + (DAY if next_day else 0) + hh * HOUR + mm * 60 + ss

    @property
    def travel_day(self) -> float:
        return self.start + min(4, self.days - 1) * DAY

    @property
    def maintenance_day(self) -> float:
        """The first Saturday at least two days after the start."""
        day = self.start + 2 * DAY
        while int(day // DAY + 3) % 7 != 5:
            day += DAY
        return day

    def nightly(self) -> list[float]:
        """The nightly CI job: 23:00 UTC (02:00 Moscow) every night."""
        return [self.start + d * DAY + 23 * HOUR for d in range(self.days)]
