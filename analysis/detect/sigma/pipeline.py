"""Where Sigma's log sources and fields are in the store: data, and one pySigma pipeline.

A Sigma rule names a log source (``product``/``category``/``service``) and fields of that
source's native records (Sysmon's ``Image``, auditd's ``key``). The store holds normalized
events, so each :class:`LogSource` says, as data, which events a log source is (an SQL
condition over ``events``, written here and never built from rules or logs) and which store
column holds each Sigma field. A Windows field without a column is read from
``win_event_data`` (the JSON of all EventData), so a rule need not wait for its fields to be
promoted; a Linux or Kubernetes field without a column makes the rule unsupported, counted
with that reason, rather than silently never matching.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sigma.processing.conditions import RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldFunctionTransformation
from sigma.rule import SigmaLogSource

from analysis.detect.sigma.backend import JSON_PREFIX

Triple = tuple[str | None, str | None, str | None]  # product, category, service


@dataclass(frozen=True)
class LogSource:
    """One Sigma log source as the store holds it.

    Attributes:
        key: a short name (``windows/process_creation``), used in reports and skip reasons.
        matches: the (product, category, service) triples of rules that read it.
        sources: store sources (loader names) its events come from.
        where: SQL condition over ``events`` selecting its events.
        fields: Sigma field → store column.
        event_data: unmapped fields are EventData keys of ``win_event_data`` (Windows).
    """

    key: str
    matches: tuple[Triple, ...]
    sources: frozenset[str]
    where: str
    fields: Mapping[str, str] = field(default_factory=dict)
    event_data: bool = False

    def map_field(self, name: str | None) -> str:
        """The mapped name of a Sigma field (see :func:`backend.field_sql`)."""
        if name is None:
            return "message"
        if name in self.fields:
            return self.fields[name]
        return JSON_PREFIX + name if self.event_data else "?" + name


_WIN = "source = 'windows_events'"
_SYSMON = _WIN + " AND win_channel ILIKE '%Sysmon%'"


def _sysmon(*ids: int) -> str:
    return f"{_SYSMON} AND win_event_id IN ({', '.join(map(str, ids))})"


def _channel(name: str) -> str:
    return f"{_WIN} AND lower(win_channel) = lower('{name}')"


#: Columns the Windows loader fills from the same EventData field for every event it maps.
_WIN_COMMON: dict[str, str] = {
    "Hashes": "win_hashes", "IntegrityLevel": "win_integrity_level",
    "CurrentDirectory": "win_current_directory", "ProcessGuid": "win_process_guid",
    "ParentProcessGuid": "win_parent_process_guid", "LogonId": "win_logon_id",
    "EventID": "win_event_id", "Channel": "win_channel", "Provider_Name": "win_provider",
    "Computer": "host",
}
_PROCESS: dict[str, str] = {
    **_WIN_COMMON, "Image": "process_image", "CommandLine": "process_command_line",
    "ParentImage": "parent_image", "ParentCommandLine": "win_parent_command_line",
    "ProcessId": "process_pid", "ParentProcessId": "process_ppid",
    # 4688 names the fields differently; the loader maps both to the same columns
    "NewProcessName": "process_image", "ParentProcessName": "parent_image",
}
_NETWORK: dict[str, str] = {
    **_WIN_COMMON, "Image": "process_image", "DestinationIp": "win_dst_ip",
    "DestinationPort": "win_dst_port", "DestinationHostname": "win_dst_hostname",
    "SourcePort": "win_src_port", "Protocol": "win_protocol",
}
_PROCESS_ACCESS: dict[str, str] = {**_WIN_COMMON, "GrantedAccess": "win_granted_access"}
_REGISTRY: dict[str, str] = {**_WIN_COMMON, "Image": "process_image", "Details": "win_details"}
_FILE: dict[str, str] = {**_WIN_COMMON, "Image": "process_image"}
_DNS: dict[str, str] = {**_WIN_COMMON, "Image": "process_image",
                        "QueryResults": "win_query_results"}
_PS_SCRIPT: dict[str, str] = {**_WIN_COMMON, "ScriptBlockText": "win_script_block"}


def _win(key: str, where: str, fields: Mapping[str, str] | None = None, *,
         category: str | None = None, service: str | None = None) -> LogSource:
    return LogSource(f"windows/{key}", (("windows", category, service),),
                     frozenset({"windows_events"}), where, fields or _WIN_COMMON,
                     event_data=True)


#: Every log source the store can answer, most specific first.
LOGSOURCES: tuple[LogSource, ...] = (
    _win("process_creation",
         f"{_WIN} AND ((win_event_id = 1 AND win_channel ILIKE '%Sysmon%') OR "
         "(win_event_id = 4688 AND win_channel = 'Security'))", _PROCESS,
         category="process_creation"),
    _win("process_termination", _sysmon(5), _FILE, category="process_termination"),
    _win("network_connection", _sysmon(3), _NETWORK, category="network_connection"),
    _win("file_change", _sysmon(2), _FILE, category="file_change"),
    _win("file_event", _sysmon(11), _FILE, category="file_event"),
    _win("file_delete", _sysmon(23, 26), _FILE, category="file_delete"),
    _win("file_access", _sysmon(11, 23, 26), _FILE, category="file_access"),
    _win("file_executable_detected", _sysmon(29), _FILE, category="file_executable_detected"),
    _win("registry_event", _sysmon(12, 13, 14), _REGISTRY, category="registry_event"),
    _win("registry_add", _sysmon(12), _REGISTRY, category="registry_add"),
    _win("registry_delete", _sysmon(12), _REGISTRY, category="registry_delete"),
    _win("registry_set", _sysmon(13), _REGISTRY, category="registry_set"),
    _win("registry_rename", _sysmon(14), _REGISTRY, category="registry_rename"),
    _win("process_access", _sysmon(10), _PROCESS_ACCESS, category="process_access"),
    _win("image_load", _sysmon(7), _FILE, category="image_load"),
    _win("driver_load", _sysmon(6), _WIN_COMMON, category="driver_load"),
    _win("create_remote_thread", _sysmon(8), _WIN_COMMON, category="create_remote_thread"),
    _win("raw_access_thread", _sysmon(9), _FILE, category="raw_access_thread"),
    _win("create_stream_hash", _sysmon(15), _FILE, category="create_stream_hash"),
    _win("pipe_created", _sysmon(17, 18), _FILE, category="pipe_created"),
    _win("wmi_event", _sysmon(19, 20, 21), _WIN_COMMON, category="wmi_event"),
    _win("dns_query", _sysmon(22), _DNS, category="dns_query"),
    _win("process_tampering", _sysmon(25), _FILE, category="process_tampering"),
    _win("sysmon_status", _sysmon(4, 16), _WIN_COMMON, category="sysmon_status"),
    _win("sysmon_error", _sysmon(255), _WIN_COMMON, category="sysmon_error"),
    _win("ps_script", _channel("Microsoft-Windows-PowerShell/Operational")
         + " AND win_event_id = 4104", _PS_SCRIPT, category="ps_script"),
    _win("ps_module", _channel("Microsoft-Windows-PowerShell/Operational")
         + " AND win_event_id = 4103", _WIN_COMMON, category="ps_module"),
    _win("ps_classic_start", _channel("Windows PowerShell") + " AND win_event_id = 400",
         _WIN_COMMON, category="ps_classic_start"),
    _win("sysmon", _SYSMON, _WIN_COMMON, service="sysmon"),
    _win("security", _channel("Security"), _WIN_COMMON, service="security"),
    _win("system", _channel("System"), _WIN_COMMON, service="system"),
    _win("application", _channel("Application"), _WIN_COMMON, service="application"),
    _win("powershell", _channel("Microsoft-Windows-PowerShell/Operational"), _PS_SCRIPT,
         service="powershell"),
    _win("powershell-classic", _channel("Windows PowerShell"), _WIN_COMMON,
         service="powershell-classic"),
    _win("wmi", _channel("Microsoft-Windows-WMI-Activity/Operational"), _WIN_COMMON,
         service="wmi"),
    _win("taskscheduler", _channel("Microsoft-Windows-TaskScheduler/Operational"),
         _WIN_COMMON, service="taskscheduler"),
    _win("windefend", _channel("Microsoft-Windows-Windows Defender/Operational"),
         _WIN_COMMON, service="windefend"),
    _win("bits-client", _channel("Microsoft-Windows-Bits-Client/Operational"), _WIN_COMMON,
         service="bits-client"),
    LogSource("linux/auditd", (("linux", None, "auditd"),), frozenset({"linux_auditd"}),
              "source = 'linux_auditd'",
              {"type": "audit_type", "syscall": "audit_syscall", "SYSCALL": "audit_syscall",
               "key": "audit_key", "exe": "process_image", "comm": "audit_comm",
               "cwd": "audit_cwd", "auid": "audit_auid", "uid": "audit_uid",
               "euid": "audit_euid", "tty": "audit_tty", "terminal": "audit_terminal",
               "hostname": "audit_hostname", "op": "audit_op", "exit": "audit_exit",
               "proctitle": "audit_proctitle", "pid": "process_pid", "ppid": "process_ppid",
               "saddr": "audit_sockaddr_address", "subj": "audit_subj",
               # USER_CMD's cmd= (the command run through sudo), decoded by the loader
               "cmd": "process_command_line"}),
    # Sigma's Linux process creation (auditd's execve events): Image and CommandLine are the
    # columns the loader fills from SYSCALL exe= and the EXECVE argument vector; there is no
    # ParentImage in auditd, so a rule needing it is unsupported rather than never matching
    LogSource("linux/process_creation", (("linux", "process_creation", None),),
              frozenset({"linux_auditd"}),
              "source = 'linux_auditd' AND lower(audit_syscall) IN ('execve', 'execveat')",
              {"Image": "process_image", "CommandLine": "process_command_line",
               "CurrentDirectory": "audit_cwd", "ProcessId": "process_pid",
               "ParentProcessId": "process_ppid", "User": "audit_uid_name",
               "LogonId": "audit_auid"}),
    LogSource("linux/auth", (("linux", None, "sshd"), ("linux", None, "auth"),
                             ("linux", None, "sudo"), ("linux", None, "su")),
              frozenset({"linux_auth", "linux_syslog"}),
              "source IN ('linux_auth', 'linux_syslog')",
              {"program": "auth_program", "user": "user", "host": "host",
               # sudo's own keys (``… ; PWD=… ; COMMAND=…``), as the loader parses them
               "COMMAND": "process_command_line", "TTY": "auth_tty", "PWD": "auth_cwd"}),
    LogSource("linux/syslog", (("linux", None, "syslog"),), frozenset({"linux_syslog"}),
              "source = 'linux_syslog'",
              {"program": "syslog_program", "host": "host", "facility": "syslog_facility"}),
    LogSource("kubernetes/audit", (("kubernetes", None, "audit"),
                                   ("kubernetes", "application", "audit")),
              frozenset({"k8s_audit"}), "source = 'k8s_audit'",
              {"verb": "k8s_verb", "objectRef.resource": "k8s_resource",
               "objectRef.subresource": "k8s_subresource",
               "objectRef.apiGroup": "k8s_api_group", "objectRef.name": "k8s_name",
               "responseStatus.code": "k8s_response_code", "user.username": "user",
               "user.groups": "k8s_groups", "requestURI": "k8s_request_uri",
               "sourceIPs": "src_ip", "objectRef.namespace": "k8s_namespace",
               "userAgent": "user_agent",
               # what the loader reads from a pod spec (or a workload's pod template) in the
               # request object; null when the audit level kept no request body. Not
               # audit-event paths (a spec holds many containers): auditlens' own names
               "privileged": "k8s_privileged", "hostPID": "k8s_host_pid",
               "hostNetwork": "k8s_host_network", "hostIPC": "k8s_host_ipc",
               "hostPath": "k8s_host_mounts", "images": "k8s_images",
               # a role binding's roleRef as Kind/name, and its subjects
               "roleRef": "k8s_role_ref", "subjects": "k8s_subjects"}),
)


def _triple(ls: SigmaLogSource) -> Triple:
    def low(v: str | None) -> str | None:
        return v.lower() if v else None

    return (low(ls.product), low(ls.category), low(ls.service))


def logsource_of(ls: SigmaLogSource) -> LogSource | None:
    """The store's log source for a rule's, or None when the store holds no such events."""
    wanted = _triple(ls)
    for spec in LOGSOURCES:
        if wanted in spec.matches:
            return spec
    return None


@dataclass
class _ExactLogsource(RuleProcessingCondition):
    """True for rules whose log source is exactly ``spec`` (pySigma's LogsourceCondition
    also matches every more specific one, which would map a field twice)."""

    spec_key: str

    def match(self, rule: object) -> bool:
        ls = getattr(rule, "logsource", None)
        found = logsource_of(ls) if isinstance(ls, SigmaLogSource) else None
        return found is not None and found.key == self.spec_key


def store_pipeline() -> ProcessingPipeline:
    """The pipeline mapping every Sigma field of a supported log source to the store."""
    items = [ProcessingItem(identifier=f"auditlens_fields_{spec.key}",
                            transformation=FieldFunctionTransformation(
                                mapping={}, transform_func=spec.map_field),
                            rule_conditions=[_ExactLogsource(spec.key)])
             for spec in LOGSOURCES]
    return ProcessingPipeline(name="auditlens store", priority=20, items=items)
