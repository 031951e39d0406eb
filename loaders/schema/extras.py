"""Every source's own columns, declared in one place beside the core schema.

Each source's extra columns carry its prefix (``audit_``, ``k8s_``, ``win_``, …); the
Kubernetes sources share ``k8s_``. The loaders take their columns from here, so the full
schema (:func:`loaders.schema.event_schema`) is known without importing any parser, and
docs/SCHEMA.md is generated from it (``make docs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from loaders.schema.core import TIMESTAMP, Column


@dataclass(frozen=True)
class SourceColumns:
    """One source's extra columns: its name, the prefix they all carry, the columns."""

    source: str
    prefix: str
    columns: tuple[Column, ...]
    # sources whose columns this one also writes, unchanged (linux_syslog writes
    # linux_auth's auth_* columns: one mapping of auth messages, one set of columns, so a
    # query on auth_method or auth_invalid_user finds the line whichever file held it)
    shares: tuple[str, ...] = ()


def _c(name: str, meaning: str, typ: pa.DataType | None = None, ecs: str = "") -> Column:
    return Column(name, typ or pa.string(), meaning, ecs)

# Kubernetes API server audit log
K8S_AUDIT = SourceColumns("k8s_audit", "k8s_", (
    Column("k8s_verb", pa.string(), "API verb (get, list, create, …)"),
    Column("k8s_resource", pa.string(), "objectRef.resource"),
    Column("k8s_subresource", pa.string(), "objectRef.subresource"),
    Column("k8s_api_group", pa.string(), "objectRef.apiGroup"),
    Column("k8s_name", pa.string(), "objectRef.name (for create: the created object's name)"),
    Column("k8s_response_code", pa.int64(),
           "responseStatus.code (GKE: the google.rpc code mapped to HTTP)"),
    Column("k8s_stage", pa.string(), "audit stage of the kept record"),
    Column("k8s_audit_level", pa.string(), "audit level: Metadata, Request, RequestResponse"),
    Column("k8s_decision", pa.string(), "authorization.k8s.io/decision annotation"),
    Column("k8s_reason", pa.string(), "authorization.k8s.io/reason annotation"),
    Column("k8s_groups", pa.string(), "user.groups, comma-separated"),
    Column("k8s_impersonated_user", pa.string(), "impersonatedUser.username"),
    Column("k8s_request_uri", pa.string(), "requestURI"),
    Column("k8s_wrapper", pa.string(),
           "how the event was wrapped: eventlist, records, events, aks, gke, message, log, "
           "log_s (null: a bare Event)"),
    Column("k8s_privileged", pa.bool_(), "pod spec in the request has a privileged container"),
    Column("k8s_host_network", pa.bool_(), "pod spec in the request sets hostNetwork"),
    Column("k8s_host_pid", pa.bool_(), "pod spec in the request sets hostPID"),
    Column("k8s_host_ipc", pa.bool_(), "pod spec in the request sets hostIPC"),
    Column("k8s_host_mounts", pa.string(),
           "hostPath volume paths in the request, comma-separated"),
    Column("k8s_images", pa.string(),
           "container images in the request's pod spec, comma-separated"),
    Column("k8s_role_ref", pa.string(), "role binding roleRef as Kind/name"),
    Column("k8s_subjects", pa.string(),
           "role binding subjects as Kind/namespace/name, comma-separated"),
))

# container stdout/stderr logs
K8S_CONTAINER = SourceColumns("k8s_container", "k8s_", (
    Column("k8s_stream", pa.string(), "container output stream: stdout or stderr"),
    Column("k8s_container_id", pa.string(), "container id (from the path or shipper metadata)"),
    Column("k8s_pod_uid", pa.string(), "pod uid (from a /var/log/pods path)"),
    Column("k8s_log_level", pa.string(),
           "level lifted from a JSON, logfmt or klog message, lower-case"),
    Column("k8s_log_msg", pa.string(), "message lifted from a JSON, logfmt or klog message"),
))

# Kubernetes cluster events
K8S_EVENTS = SourceColumns("k8s_events", "k8s_", (
    Column("k8s_event_type", pa.string(), "event type: Normal or Warning"),
    Column("k8s_event_count", pa.int64(), "how many times the event was seen (count, "
           "series.count or deprecatedCount)"),
    Column("k8s_event_source", pa.string(),
           "reporting component (source.component / reportingController)"),
    Column("k8s_event_first_seen", TIMESTAMP, "first observation (eventTime / firstTimestamp)"),
    Column("k8s_involved_kind", pa.string(), "kind of the object the event is about"),
    Column("k8s_name", pa.string(), "name of the object the event is about"),
    Column("k8s_watch_type", pa.string(), "watch stream change: ADDED, MODIFIED, DELETED"),
))

# Linux audit daemon log
LINUX_AUDITD = SourceColumns("linux_auditd", "audit_", (
    Column("audit_type", pa.string(), "primary record type (USER_LOGIN, SYSCALL, AVC…)"),
    Column("audit_record_types", pa.string(), "types of the merged records, in order"),
    Column("audit_records", pa.int64(), "number of records merged (EOE excluded)"),
    Column("audit_serial", pa.int64(), "event serial of msg=audit(time:serial)"),
    Column("audit_incomplete", pa.bool_(),
           "records of the event are visibly missing (see parse_warning)"),
    Column("audit_syscall", pa.string(), "syscall name (from SYSCALL=, or arch+number)"),
    Column("audit_key", pa.string(), "audit rule key(s), comma-separated"),
    Column("audit_exit", pa.int64(), "syscall exit value"),
    Column("audit_auid", pa.string(), "login uid (survives su/sudo); null when unset"),
    Column("audit_auid_name", pa.string(), "login user name (ENRICHED AUID=)"),
    Column("audit_uid", pa.string(), "uid of the process"),
    Column("audit_uid_name", pa.string(), "user name of uid (ENRICHED UID=)"),
    Column("audit_euid", pa.string(), "effective uid"),
    Column("audit_euid_name", pa.string(), "user name of euid (ENRICHED EUID=)"),
    Column("audit_tty", pa.string(), "tty of the process"),
    Column("audit_terminal", pa.string(), "terminal= of user-space messages"),
    Column("audit_hostname", pa.string(), "hostname= of user-space messages"),
    Column("audit_op", pa.string(), "op= of the event"),
    Column("audit_comm", pa.string(), "command name (comm=), decoded"),
    Column("audit_cwd", pa.string(), "working directory (CWD record or cwd=)"),
    Column("audit_args", pa.string(), "EXECVE argument vector, JSON list"),
    Column("audit_proctitle", pa.string(), "PROCTITLE decoded (NULs as spaces)"),
    Column("audit_paths", pa.string(), "PATH items, JSON list of objects"),
    Column("audit_sockaddr_family", pa.string(), "SOCKADDR family (inet, inet6, unix…)"),
    Column("audit_sockaddr_address", pa.string(), "SOCKADDR address or socket path"),
    Column("audit_sockaddr_port", pa.int64(), "SOCKADDR port"),
    Column("audit_avc", pa.string(), "AVC decision and permissions, e.g. denied { read }"),
    Column("audit_subj", pa.string(), "security context of the subject (subj=)"),
))

# Linux authentication logs
LINUX_AUTH = SourceColumns("linux_auth", "auth_", (
    Column("auth_program", pa.string(), "syslog program (sshd, sudo, su, …)"),
    Column("auth_method", pa.string(), "sshd authentication method (password, publickey…)"),
    Column("auth_port", pa.int64(), "client port"),
    Column("auth_tty", pa.string(), "terminal (sudo TTY=, su, PAM tty=)"),
    Column("auth_cwd", pa.string(), "working directory of a sudo command (PWD=)"),
    Column("auth_service", pa.string(), "PAM service (sshd, sudo, su, cron…)"),
    Column("auth_by_user", pa.string(), "PAM session opened by (user or uid)"),
    Column("auth_invalid_user", pa.bool_(), "sshd: the account does not exist"),
    Column("auth_preauth", pa.bool_(), "sshd: before authentication completed"),
    Column("auth_key", pa.string(), "sshd public key type and fingerprint"),
    Column("auth_error", pa.string(), "sudo error (incorrect password attempts, "
                                      "user NOT in sudoers, …)"),
    Column("auth_reason", pa.string(), "sshd disconnect reason"),
))

# whole syslog files and the systemd journal: its own columns, then linux_auth's auth_*
# columns, shared (see SourceColumns.shares)
LINUX_SYSLOG = SourceColumns("linux_syslog", "syslog_", (
    Column("syslog_program", pa.string(), "syslog tag / journal SYSLOG_IDENTIFIER (else _COMM)",
           "process.name"),
    Column("syslog_facility", pa.string(),
           "facility name (kern, auth, authpriv, daemon, cron, local0…) from <PRI> or the "
           "journal's SYSLOG_FACILITY; null without one", "log.syslog.facility.name"),
    Column("syslog_severity", pa.string(),
           "severity name (emerg … debug) from <PRI> or the journal's PRIORITY",
           "log.syslog.severity.name"),
    Column("syslog_form", pa.string(),
           "input form: rfc3164, iso8601, rfc5424, journal_json, journal_export"),
    Column("syslog_unit", pa.string(), "journal _SYSTEMD_UNIT"),
    Column("syslog_boot_id", pa.string(), "journal _BOOT_ID"),
    Column("syslog_pam_module", pa.string(),
           "PAM module of an older prog(module)[pid] tag, e.g. sshd(pam_unix)"),
    *LINUX_AUTH.columns,
), shares=("linux_auth",))

# managed-Kubernetes cluster operations
MKS_CLUSTER = SourceColumns("mks_cluster", "mks_", (
    Column("mks_task_id", pa.string(), "task id"),
    Column("mks_cluster_id", pa.string(), "cluster id"),
    Column("mks_nodegroup_id", pa.string(), "node group id, for node-group tasks"),
    Column("mks_status", pa.string(), "task status as given (IN_PROGRESS, DONE, ERROR, …)"),
    Column("mks_updated_at", TIMESTAMP, "when the task was last updated"),
    Column("mks_duration_seconds", pa.float64(),
           "updated_at - started_at for finished (DONE/ERROR) tasks"),
))

# OpenStack CADF audit events
OPENSTACK_CADF = SourceColumns("openstack_cadf", "cadf_", (
    Column("cadf_event_id", pa.string(), "CADF id (shared by a request/response pair)"),
    Column("cadf_event_type", pa.string(), "CADF eventType: activity, monitor, control"),
    Column("cadf_outcome", pa.string(), "CADF outcome as written"),
    Column("cadf_reason_code", pa.string(), "reason.reasonCode (HTTP status)"),
    Column("cadf_reason_type", pa.string(), "reason.reasonType"),
    Column("cadf_initiator_type", pa.string(), "initiator.typeURI"),
    Column("cadf_project_id", pa.string(), "initiator.project_id"),
    Column("cadf_domain_id", pa.string(), "initiator.domain_id"),
    Column("cadf_identity_provider", pa.string(),
           "initiator.credential.identity_provider (federation)"),
    Column("cadf_target_id", pa.string(), "target.id"),
    Column("cadf_observer_id", pa.string(), "observer.id"),
    Column("cadf_observer_type", pa.string(), "observer.typeURI"),
    Column("cadf_request_path", pa.string(), "requestPath (keystonemiddleware)"),
    Column("cadf_correlation_id", pa.string(), "tags correlation_id?value=…"),
    Column("cadf_resource_info", pa.string(), "resource_info (Keystone)"),
    Column("cadf_notification_type", pa.string(), "envelope event_type"),
    Column("cadf_publisher_id", pa.string(), "envelope publisher_id"),
    Column("cadf_message_id", pa.string(), "envelope message_id"),
))

# Selectel cloud account audit log
SELECTEL_AUDIT = SourceColumns("selectel_audit", "selectel_", (
    Column("selectel_status", pa.string(), "status as written (open set: fail, NA, …)"),
    Column("selectel_error_code", pa.string(), "error_code"),
    Column("selectel_request_id", pa.string(), "request_id: chains the events of a request"),
    Column("selectel_source_type", pa.string(), "source_type"),
    Column("selectel_schema_version", pa.string(), "schema_version"),
    Column("selectel_event_saved_time", TIMESTAMP, "event_saved_time (UTC)"),
    Column("selectel_subject_type", pa.string(), "subject.type"),
    Column("selectel_auth_provider", pa.string(), "subject.auth_provider"),
    Column("selectel_is_authorized", pa.bool_(), "subject.is_authorized"),
    Column("selectel_authorized_by", pa.string(), "subject.authorized_by, comma-separated"),
    Column("selectel_credentials_fingerprint", pa.string(),
           "subject.credentials_fingerprint"),
    Column("selectel_resource_id", pa.string(), "resource.id"),
    Column("selectel_account_id", pa.string(), "resource.account_id"),
    Column("selectel_project_id", pa.string(), "resource.project_id"),
    Column("selectel_location", pa.string(), "resource.location (region / pool)"),
    Column("selectel_details", pa.string(), "resource.details as JSON text"),
    Column("selectel_old_values", pa.string(), "resource.old_values as JSON text"),
    Column("selectel_new_values", pa.string(), "resource.new_values as JSON text"),
    Column("selectel_request_type", pa.string(), "request.type"),
    Column("selectel_request_method", pa.string(), "request.method"),
    Column("selectel_request_path", pa.string(), "request.path"),
    Column("selectel_request_parameters", pa.string(), "request.parameters"),
))

# Selectel control-panel authorization log
SELECTEL_AUTH = SourceColumns("selectel_auth", "selectel_", (
    Column("selectel_login_result", pa.string(), "authorization log: result as written"),
    Column("selectel_login_other", pa.string(),
           "authorization log: unmatched columns as a JSON object"),
))

# Windows event logs
WINDOWS_EVENTS = SourceColumns("windows_events", "win_", (
    _c("win_event_id", "Windows event id (System/EventID)", pa.int64(), "event.code"),
    _c("win_channel", "event log channel (System/Channel)", None, "winlog.channel"),
    _c("win_provider", "event provider (System/Provider/@Name)", None, "winlog.provider_name"),
    _c("win_record_id", "EventRecordID (restarts when a log is cleared)", pa.int64(),
       "winlog.record_id"),
    _c("win_event_data", "all EventData/UserData fields as a JSON object", None,
       "winlog.event_data"),
    _c("win_user_sid", "System/Security/@UserID: the account the event was logged for",
       None, "winlog.user.identifier"),
    _c("win_utc_time", "Sysmon EventData UtcTime (when the activity happened)", TIMESTAMP),
    _c("win_rule_name", "Sysmon RuleName (matched configuration rule / technique tag)"),
    _c("win_process_guid", "Sysmon ProcessGuid of the acting process (process trees)",
       None, "process.entity_id"),
    _c("win_parent_process_guid", "Sysmon ParentProcessGuid", None,
       "process.parent.entity_id"),
    _c("win_target_process_guid", "Sysmon TargetProcessGuid (process access, remote thread)"),
    _c("win_parent_command_line", "parent process command line", None,
       "process.parent.command_line"),
    _c("win_current_directory", "process working directory", None,
       "process.working_directory"),
    _c("win_integrity_level", "process integrity level (Sysmon IntegrityLevel, 4688 "
       "MandatoryLabel)"),
    _c("win_hashes", "Sysmon Hashes (SHA1=…,MD5=…,SHA256=…,IMPHASH=…)", None, "file.hash.*"),
    _c("win_logon_id", "logon id linking events of one logon session", None,
       "winlog.logon.id"),
    _c("win_logon_type", "logon type (2 interactive, 3 network, 10 remote interactive…)",
       pa.int64(), "winlog.logon.type"),
    _c("win_auth_package", "authentication package (NTLM, Kerberos, Negotiate)"),
    _c("win_workstation", "client workstation name of a logon", None, "source.domain"),
    _c("win_status", "failure status and sub-status codes (e.g. 0xc000006d/0xc000006a)"),
    _c("win_src_port", "source port", pa.int64(), "source.port"),
    _c("win_dst_ip", "destination address", None, "destination.ip"),
    _c("win_dst_port", "destination port", pa.int64(), "destination.port"),
    _c("win_dst_hostname", "destination host name", None, "destination.domain"),
    _c("win_protocol", "network protocol", None, "network.transport"),
    _c("win_granted_access", "access mask granted/requested (LSASS access = credential "
       "theft)"),
    _c("win_query_results", "Sysmon DNS QueryResults", None, "dns.answers"),
    _c("win_details", "registry value data, new name, or privileges list"),
    _c("win_member", "account added to or removed from a group", None, "group member"),
    _c("win_script_block", "PowerShell script block text / pipeline payload", None,
       "powershell.file.script_block_text"),
    _c("win_script_block_id", "PowerShell ScriptBlockId (joins multi-part blocks)", None,
       "powershell.file.script_block_id"),
))

SOURCES: tuple[SourceColumns, ...] = (
    K8S_AUDIT,
    K8S_CONTAINER,
    K8S_EVENTS,
    LINUX_AUDITD,
    LINUX_AUTH,
    LINUX_SYSLOG,
    MKS_CLUSTER,
    OPENSTACK_CADF,
    SELECTEL_AUDIT,
    SELECTEL_AUTH,
    WINDOWS_EVENTS,
)
