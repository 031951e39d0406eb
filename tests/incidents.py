"""Constructed incidents for the detector tests: real export formats, made-up organisations.

:class:`Org` writes a control-panel authorization log (the Selectel CSV export) and an sshd
auth.log for a small organisation with ordinary working habits (weekday office hours, one
browser each, a few office and home addresses), over which a test adds one attack or one
innocent oddity and checks what the detectors say. Nothing here shares a value with
data-samples/: the detectors must generalise.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loaders.store.store import Store

CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
              "Gecko) Chrome/128.0.0.0 Safari/537.36")
FIREFOX_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:129.0) Gecko/20100101 "
               "Firefox/129.0")
SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like "
              "Gecko) Version/17.5 Safari/605.1.15")
EDGE_WIN = CHROME_WIN + " Edg/128.0.2739.42"
CURL = "curl/8.5.0"
PYREQ = "python-requests/2.31.0"

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


@dataclass
class Person:
    name: str
    agent: str
    addresses: tuple[str, ...]
    first_hour: int = 7
    last_hour: int = 16


PEOPLE = [
    Person("k.ivanova", CHROME_WIN, ("100.64.10.21", "100.64.10.22")),
    Person("p.smirnov", FIREFOX_MAC, ("100.64.10.23", "172.20.5.9")),
    Person("a.morozova", SAFARI_MAC, ("100.64.10.24",), 8, 17),
    Person("t.belov", EDGE_WIN, ("100.64.10.25", "172.21.7.40"), 6, 15),
    Person("e.zaitseva", CHROME_WIN, ("100.64.10.26",)),
    Person("r.pavlov", FIREFOX_MAC, ("100.64.10.27",), 9, 18),
]


@dataclass
class Org:
    """An organisation's sign-ins over ``days`` days; add rows, then :meth:`store`."""

    days: int = 21
    seed: int = 11
    panel: list[tuple[datetime, str, str, str, str]] = field(default_factory=list)
    ssh: list[tuple[datetime, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        for day in range(self.days):
            date = START + timedelta(days=day)
            if date.weekday() >= 5:
                continue
            for p in PEOPLE:
                for _ in range(rng.randint(1, 3)):
                    at = date + timedelta(hours=rng.randint(p.first_hour, p.last_hour),
                                          minutes=rng.randint(0, 59),
                                          seconds=rng.randint(0, 59))
                    self.login(at, p.name, rng.choice(p.addresses), p.agent)
                if rng.random() < 0.05:  # a typo now and then
                    self.login(date + timedelta(hours=p.first_hour, minutes=3), p.name,
                               p.addresses[0], p.agent, ok=False)

    def login(self, at: datetime, user: str, ip: str, agent: str, ok: bool = True) -> None:
        self.panel.append((at, user, ip, agent, "Success" if ok else "Failed: wrong password"))

    def ssh_fail(self, at: datetime, user: str, ip: str, invalid: bool = False) -> None:
        what = f"invalid user {user}" if invalid else user
        self.ssh.append((at, f"sshd[{4000 + len(self.ssh)}]: Failed password for {what} "
                             f"from {ip} port {40000 + len(self.ssh)} ssh2"))

    def ssh_ok(self, at: datetime, user: str, ip: str) -> None:
        self.ssh.append((at, f"sshd[{4000 + len(self.ssh)}]: Accepted publickey for {user} "
                             f"from {ip} port {40000 + len(self.ssh)} ssh2: ED25519 "
                             "SHA256:Zm9vYmFyYmF6cXV4"))

    def write(self, root: Path) -> list[Path]:
        root.mkdir(parents=True, exist_ok=True)
        files = []
        panel = root / "authorization-log.csv"
        with panel.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["Date", "User", "IP address", "Browser", "Result"])
            for at, user, ip, agent, result in sorted(self.panel):
                writer.writerow([f"{at:%Y-%m-%d %H:%M:%S}", user, ip, agent, result])
        files.append(panel)
        if self.ssh:
            auth = root / "auth.log"
            auth.write_text("".join(f"{at:%b} {at.day:2d} {at:%H:%M:%S} bastion {msg}\n"
                                    for at, msg in sorted(self.ssh)), encoding="utf-8")
            files.append(auth)
        return files

    def store(self, root: Path) -> Path:
        """Write the logs under ``root/logs`` and ingest them into ``root/store``."""
        from loaders.base import LoadOptions
        from loaders.ingest.pipeline import ingest

        files = self.write(root / "logs")
        store = root / "store"
        report = ingest(Store(store), files, options=LoadOptions(year=START.year))
        assert all(f.status == "ingested" for f in report.files), report.files
        return store


def day(n: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A time on day ``n`` of the organisation's history."""
    return START + timedelta(days=n, hours=hour, minutes=minute, seconds=second)
