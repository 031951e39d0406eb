"""The one readable table: (channel family, event id) -> category, action, field shape.

A *family* groups channels that share event ids: Sysmon on Windows and Sysmon for Linux
(``Microsoft-Windows-Sysmon/Operational``, ``Linux-Sysmon/Operational``), ``Security``,
``System``, PowerShell (``Microsoft-Windows-PowerShell/Operational`` and the classic
``Windows PowerShell`` log) and the Task Scheduler. The *shape* names the function in
:mod:`loaders.windows_events.map` that reads that event's fields. An event id missing from
the table is still loaded, as category ``system`` with all its fields kept.
"""

from __future__ import annotations

from dataclasses import dataclass

SYSMON, SECURITY, SYSTEM, POWERSHELL, TASKS = (
    "sysmon", "security", "system", "powershell", "taskscheduler")


@dataclass(frozen=True, slots=True)
class Rule:
    """How one (family, event id) maps: category, action name, field shape, fixed outcome."""

    category: str
    action: str
    shape: str
    outcome: str | None = None


R = Rule
EVENT_TABLE: dict[tuple[str, int], Rule] = {
    # Sysmon (same ids on Windows and Linux)
    (SYSMON, 1): R("process", "ProcessCreate", "process_create"),
    (SYSMON, 2): R("file", "FileCreateTime", "file"),
    (SYSMON, 3): R("network", "NetworkConnect", "network"),
    (SYSMON, 4): R("system", "SysmonServiceStateChange", "generic"),
    (SYSMON, 5): R("process", "ProcessTerminate", "process"),
    (SYSMON, 6): R("system", "DriverLoad", "driver"),
    (SYSMON, 7): R("process", "ImageLoad", "image_load"),
    (SYSMON, 8): R("process", "CreateRemoteThread", "process_access"),
    (SYSMON, 9): R("file", "RawAccessRead", "file"),
    (SYSMON, 10): R("process", "ProcessAccess", "process_access"),
    (SYSMON, 11): R("file", "FileCreate", "file"),
    (SYSMON, 12): R("registry", "RegistryObjectAddOrDelete", "registry"),
    (SYSMON, 13): R("registry", "RegistryValueSet", "registry"),
    (SYSMON, 14): R("registry", "RegistryRename", "registry"),
    (SYSMON, 15): R("file", "FileCreateStreamHash", "file"),
    (SYSMON, 16): R("system", "SysmonConfigChange", "generic"),
    (SYSMON, 17): R("file", "PipeCreated", "pipe"),
    (SYSMON, 18): R("file", "PipeConnected", "pipe"),
    (SYSMON, 19): R("system", "WmiEventFilter", "wmi"),
    (SYSMON, 20): R("system", "WmiEventConsumer", "wmi"),
    (SYSMON, 21): R("system", "WmiEventConsumerToFilter", "wmi"),
    (SYSMON, 22): R("network", "DnsQuery", "dns"),
    (SYSMON, 23): R("file", "FileDelete", "file"),
    (SYSMON, 24): R("process", "ClipboardChange", "process"),
    (SYSMON, 25): R("process", "ProcessTampering", "process"),
    (SYSMON, 26): R("file", "FileDeleteDetected", "file"),
    (SYSMON, 27): R("file", "FileBlockExecutable", "file", "denied"),
    (SYSMON, 28): R("file", "FileBlockShredding", "file", "denied"),
    (SYSMON, 29): R("file", "FileExecutableDetected", "file"),
    (SYSMON, 255): R("system", "SysmonError", "generic", "failure"),
    # Security
    (SECURITY, 1102): R("system", "AuditLogCleared", "log_cleared"),
    (SECURITY, 4624): R("authentication", "Logon", "logon", "success"),
    (SECURITY, 4625): R("authentication", "LogonFailed", "logon", "failure"),
    (SECURITY, 4634): R("session", "Logoff", "logoff"),
    (SECURITY, 4647): R("session", "UserInitiatedLogoff", "logoff"),
    (SECURITY, 4648): R("authentication", "ExplicitCredentialLogon", "explicit_logon"),
    (SECURITY, 4656): R("data_access", "ObjectHandleRequested", "object_access"),
    (SECURITY, 4657): R("registry", "RegistryValueModified", "registry_4657"),
    (SECURITY, 4663): R("data_access", "ObjectAccess", "object_access"),
    (SECURITY, 4672): R("session", "SpecialPrivilegesAssigned", "privileges"),
    (SECURITY, 4688): R("process", "ProcessCreate", "process_create_4688"),
    (SECURITY, 4689): R("process", "ProcessExit", "process_4689"),
    (SECURITY, 4697): R("system", "ServiceInstalled", "service_4697"),
    (SECURITY, 4698): R("system", "ScheduledTaskCreated", "task"),
    (SECURITY, 4699): R("system", "ScheduledTaskDeleted", "task"),
    (SECURITY, 4700): R("system", "ScheduledTaskEnabled", "task"),
    (SECURITY, 4701): R("system", "ScheduledTaskDisabled", "task"),
    (SECURITY, 4702): R("system", "ScheduledTaskUpdated", "task"),
    (SECURITY, 4720): R("access_management", "UserAccountCreated", "account"),
    (SECURITY, 4722): R("access_management", "UserAccountEnabled", "account"),
    (SECURITY, 4723): R("access_management", "PasswordChangeAttempt", "account"),
    (SECURITY, 4724): R("access_management", "PasswordReset", "account"),
    (SECURITY, 4725): R("access_management", "UserAccountDisabled", "account"),
    (SECURITY, 4726): R("access_management", "UserAccountDeleted", "account"),
    (SECURITY, 4728): R("access_management", "MemberAddedToGlobalGroup", "group_member"),
    (SECURITY, 4729): R("access_management", "MemberRemovedFromGlobalGroup", "group_member"),
    (SECURITY, 4732): R("access_management", "MemberAddedToLocalGroup", "group_member"),
    (SECURITY, 4733): R("access_management", "MemberRemovedFromLocalGroup", "group_member"),
    (SECURITY, 4738): R("access_management", "UserAccountChanged", "account"),
    (SECURITY, 4740): R("access_management", "UserAccountLockedOut", "account"),
    (SECURITY, 4756): R("access_management", "MemberAddedToUniversalGroup", "group_member"),
    (SECURITY, 4757): R("access_management", "MemberRemovedFromUniversalGroup",
                        "group_member"),
    (SECURITY, 4767): R("access_management", "UserAccountUnlocked", "account"),
    (SECURITY, 4768): R("authentication", "KerberosTgtRequest", "kerberos"),
    (SECURITY, 4769): R("authentication", "KerberosServiceTicketRequest", "kerberos"),
    (SECURITY, 4771): R("authentication", "KerberosPreAuthFailed", "kerberos", "failure"),
    (SECURITY, 4776): R("authentication", "NtlmCredentialValidation", "ntlm"),
    (SECURITY, 4778): R("session", "SessionReconnected", "session_rdp"),
    (SECURITY, 4779): R("session", "SessionDisconnected", "session_rdp"),
    (SECURITY, 5140): R("data_access", "NetworkShareAccess", "share"),
    (SECURITY, 5145): R("data_access", "NetworkShareObjectCheck", "share"),
    (SECURITY, 5156): R("network", "WfpConnectionPermitted", "wfp", "success"),
    (SECURITY, 5157): R("network", "WfpConnectionBlocked", "wfp", "denied"),
    (SECURITY, 5158): R("network", "WfpBindPermitted", "wfp", "success"),
    # System
    (SYSTEM, 104): R("system", "EventLogCleared", "log_cleared"),
    (SYSTEM, 7045): R("system", "ServiceInstalled", "service_7045"),
    # PowerShell (Operational and the classic "Windows PowerShell" log)
    (POWERSHELL, 400): R("process", "EngineStarted", "ps_classic"),
    (POWERSHELL, 800): R("process", "PipelineExecution", "ps_classic"),
    (POWERSHELL, 4103): R("process", "ModuleLogging", "ps_pipeline"),
    (POWERSHELL, 4104): R("process", "ScriptBlockLogging", "ps_script_block"),
    # Task Scheduler Operational
    (TASKS, 106): R("system", "ScheduledTaskRegistered", "task_op"),
    (TASKS, 140): R("system", "ScheduledTaskUpdated", "task_op"),
    (TASKS, 141): R("system", "ScheduledTaskDeleted", "task_op"),
    (TASKS, 200): R("process", "ScheduledTaskActionStarted", "task_op"),
    (TASKS, 201): R("process", "ScheduledTaskActionCompleted", "task_op"),
}


def family(channel: str | None, provider: str | None) -> str:
    """The table family of a channel (falls back to the provider when the channel is absent).

    Example:
        >>> family("Linux-Sysmon/Operational", None)
        'sysmon'
    """
    c = (channel or "").lower()
    p = (provider or "").lower()
    if "sysmon" in c or (not c and "sysmon" in p):
        return SYSMON
    if c == "security" or (not c and p == "microsoft-windows-security-auditing"):
        return SECURITY
    if "powershell" in c or (not c and "powershell" in p):
        return POWERSHELL
    if "taskscheduler" in c:
        return TASKS
    if c == "system":
        return SYSTEM
    return c or p
