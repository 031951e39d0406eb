"""Field shapes: one small function per kind of Windows event, named by the table.

Each shape reads the fields its events carry (case-insensitively, through
:class:`~loaders.windows_events.model.CaseFields`) into the output dict that
:func:`loaders.windows_events.map.to_fields` pre-filled with what every event may have.
A damaged value (e.g. an address that is not one) is set to None with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import unescape

import defusedxml.ElementTree as SafeET

from loaders.parsing.values import canonical_ip
from loaders.windows_events.model import CaseFields, WinEvent, clean, to_int

Out = dict[str, Any]
Shape = Callable[[CaseFields, Out, WinEvent, list[str]], None]

# Mandatory label SIDs of 4688 -> the names Sysmon uses for IntegrityLevel.
_INTEGRITY = {"S-1-16-0": "Untrusted", "S-1-16-4096": "Low", "S-1-16-8192": "Medium",
              "S-1-16-8448": "MediumPlus", "S-1-16-12288": "High", "S-1-16-16384": "System",
              "S-1-16-20480": "ProtectedProcess"}
_CONTEXT_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*=\s*(.*?)\s*$", re.M)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


def account(f: CaseFields, prefix: str) -> str | None:
    """``DOMAIN\\name`` from ``<prefix>DomainName`` and ``<prefix>UserName``."""
    name = f.get(prefix + "UserName")
    if name is None:
        return None
    domain = f.get(prefix + "DomainName")
    return f"{domain}\\{name}" if domain else name


def _ip(out: Out, column: str, value: str | None, warnings: list[str]) -> None:
    addr, warning = canonical_ip(value, column)
    if warning:
        warnings.append(warning)
    out[column] = addr


def _endpoint(ip: str | None, port: int | None) -> str | None:
    if ip is None:
        return None
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port}" if port is not None else ip


# --- shapes ---------------------------------------------------------------------------


def _process_create(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(process_image=f.get("Image"), process_command_line=f.get("CommandLine"),
               parent_image=f.get("ParentImage"), process_ppid=to_int(f.get("ParentProcessId")),
               target_type="process", target=f.get("Image"),
               win_parent_process_guid=f.get("ParentProcessGuid"),
               win_parent_command_line=f.get("ParentCommandLine"),
               win_current_directory=f.get("CurrentDirectory"),
               win_integrity_level=f.get("IntegrityLevel"))


def _process_create_4688(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    # Since Windows 10 the new process's own account is Target*; Subject is its creator.
    target_logon = f.get("TargetLogonId")
    label = f.get("MandatoryLabel")
    out.update(process_image=f.get("NewProcessName"), process_pid=to_int(f.get("NewProcessId")),
               process_command_line=f.get("CommandLine"),
               parent_image=f.get("ParentProcessName"), process_ppid=to_int(f.get("ProcessId")),
               user=account(f, "Target") or account(f, "Subject"),
               target_type="process", target=f.get("NewProcessName"),
               win_integrity_level=_INTEGRITY.get(label or "", label))
    if target_logon and target_logon != "0x0":
        out["session_id"] = out["win_logon_id"] = target_logon


def _process(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="process", target=f.get("Image"))


def _process_4689(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(process_image=f.get("ProcessName"), target_type="process",
               target=f.get("ProcessName"))


def _process_access(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(process_image=f.get("SourceImage"), process_pid=to_int(f.get("SourceProcessId")),
               user=f.get("SourceUser") or out.get("user"),
               target_type="process", target=f.get("TargetImage"),
               win_process_guid=f.get("SourceProcessGuid"),
               win_target_process_guid=f.get("TargetProcessGuid"),
               win_granted_access=f.get("GrantedAccess"))


def _network(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    _ip(out, "src_ip", f.get("SourceIp"), w)
    _ip(out, "win_dst_ip", f.get("DestinationIp"), w)
    out.update(win_src_port=to_int(f.get("SourcePort")),
               win_dst_port=to_int(f.get("DestinationPort")),
               win_dst_hostname=f.get("DestinationHostname"), win_protocol=f.get("Protocol"),
               target_type="network_endpoint")
    out["target"] = _endpoint(out["win_dst_ip"], out["win_dst_port"])


def _wfp(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    _ip(out, "src_ip", f.get("SourceAddress"), w)
    _ip(out, "win_dst_ip", f.get("DestAddress"), w)
    out.update(process_image=f.get("Application"), win_src_port=to_int(f.get("SourcePort")),
               win_dst_port=to_int(f.get("DestPort")), win_protocol=f.get("Protocol"),
               target_type="network_endpoint")
    out["target"] = _endpoint(out["win_dst_ip"], out["win_dst_port"])


def _dns(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    status = f.get("QueryStatus")
    out.update(target_type="dns_query", target=f.get("QueryName"),
               win_query_results=f.get("QueryResults"))
    if status is not None:
        out["outcome"] = "success" if status == "0" else "failure"
        if status != "0":
            out["win_status"] = status


def _file(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="file", target=f.get("TargetFilename", "Device"))


def _pipe(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="pipe", target=f.get("PipeName"))


def _registry(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    # Sysmon's EventType (CreateKey, DeleteKey, SetValue, RenameKey) is the precise action.
    out.update(target_type="registry", target=f.get("TargetObject"),
               win_details=f.get("Details", "NewName"),
               action=f.get("EventType") or out["action"])


def _registry_4657(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    key, value = f.get("ObjectName"), f.get("ObjectValueName")
    out.update(target_type="registry", target=f"{key}\\{value}" if key and value else key,
               process_image=f.get("ProcessName"), win_details=f.get("NewValue"))


def _image_load(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="image", target=f.get("ImageLoaded"))


def _driver(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="driver", target=f.get("ImageLoaded"))


def _wmi(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="wmi", target=f.get("Name", "Consumer"),
               win_details=f.get("Query", "Destination", "Filter"))


def _logon(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    _ip(out, "src_ip", f.get("IpAddress"), w)
    logon_id = f.get("TargetLogonId")
    sub = f.get("SubStatus")
    status = f.get("Status")
    out.update(user=account(f, "Target"), user_id=f.get("TargetUserSid"),
               session_id=logon_id, win_logon_id=logon_id,
               win_src_port=to_int(f.get("IpPort")), win_logon_type=to_int(f.get("LogonType")),
               win_auth_package=f.get("AuthenticationPackageName"),
               win_workstation=f.get("WorkstationName"),
               win_status="/".join(s for s in (status, sub) if s) or None,
               process_image=f.get("ProcessName"),
               target_type="host", target=ev.computer)


def _logoff(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    logon_id = f.get("TargetLogonId")
    out.update(user=account(f, "Target"), user_id=f.get("TargetUserSid"), session_id=logon_id,
               win_logon_id=logon_id, win_logon_type=to_int(f.get("LogonType")))


def _explicit_logon(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    _ip(out, "src_ip", f.get("IpAddress"), w)
    out.update(target_type="account", target=account(f, "Target"),
               win_src_port=to_int(f.get("IpPort")), process_image=f.get("ProcessName"),
               win_details=f.get("TargetServerName"))


def _privileges(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(win_details=f.get("PrivilegeList"))


def _account(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="account", target=account(f, "Target"))


def _group_member(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    # In group events Target* names the group; the member is MemberName / MemberSid.
    out.update(target_type="group", target=account(f, "Target"),
               win_member=f.get("MemberName", "MemberSid"))


def _status_outcome(f: CaseFields, out: Out) -> None:
    status = f.get("Status")
    if status is not None:
        ok = to_int(status) == 0
        out["outcome"] = "success" if ok else "failure"
        out["win_status"] = None if ok else status


def _kerberos(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    _ip(out, "src_ip", f.get("IpAddress"), w)
    out.update(user=account(f, "Target"), user_id=f.get("TargetSid", "TargetUserSid"),
               win_src_port=to_int(f.get("IpPort")), target_type="service",
               target=f.get("ServiceName"))
    _status_outcome(f, out)


def _ntlm(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(user=f.get("TargetUserName"), win_workstation=f.get("Workstation"),
               win_auth_package=f.get("PackageName"))
    _status_outcome(f, out)


def _session_rdp(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    _ip(out, "src_ip", f.get("ClientAddress"), w)
    out.update(user=account(f, "Account"), session_id=f.get("LogonID", "SessionName"),
               win_workstation=f.get("ClientName"))


def task_command(content: str | None) -> str | None:
    """``Command Arguments`` of each ``<Exec>`` action of a task definition (XML, untrusted).

    Raises:
        ValueError: the task XML does not parse (or declares a DTD).
    """
    if not content:
        return None
    if content.lstrip().startswith("&lt;"):  # NXLog ships the task XML entity-escaped
        content = unescape(content, {"&quot;": '"', "&apos;": "'"})
    root = SafeET.fromstring(_XML_DECL.sub("", content, count=1), forbid_dtd=True)
    commands = []
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] != "Exec":
            continue
        parts = {c.tag.rsplit("}", 1)[-1]: (c.text or "").strip() for c in el}
        line = " ".join(p for p in (parts.get("Command"), parts.get("Arguments")) if p)
        if line:
            commands.append(line)
    return " ; ".join(commands) or None


def _task(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="scheduled_task", target=f.get("TaskName"))
    try:
        out["process_command_line"] = task_command(f.get("TaskContent", "TaskContentNew"))
    except Exception as exc:  # defusedxml raises several types; the event itself is fine
        w.append(f"TaskContent: unreadable task XML ({type(exc).__name__})")


def _task_op(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="scheduled_task", target=f.get("TaskName"),
               user=f.get("UserContext", "UserName") or out.get("user"),
               process_image=f.get("ActionName") or out.get("process_image"))


def _service_7045(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="service", target=f.get("ServiceName"),
               process_command_line=f.get("ImagePath"), win_details=f.get("AccountName"))


def _service_4697(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="service", target=f.get("ServiceName"),
               process_command_line=f.get("ServiceFileName"),
               win_details=f.get("ServiceAccount"))


def _log_cleared(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="log", target=f.get("Channel") or ev.channel)


def _object_access(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type=f.get("ObjectType"), target=f.get("ObjectName"),
               process_image=f.get("ProcessName"), win_granted_access=f.get("AccessMask"))


def _share(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    _ip(out, "src_ip", f.get("IpAddress"), w)
    share, rel = f.get("ShareName"), f.get("RelativeTargetName")
    out.update(target_type="share", target=f"{share}\\{rel}" if share and rel else share,
               win_src_port=to_int(f.get("IpPort")))


def _context(text: str | None) -> dict[str, str]:
    return {k.strip(): v for k, v in _CONTEXT_LINE.findall(text or "")}


def _ps_pipeline(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    ctx = _context(f.get("ContextInfo"))
    out.update(process_command_line=clean(ctx.get("Host Application")),
               user=clean(ctx.get("User")) or out.get("user"),
               win_script_block=f.get("Payload"))


def _ps_classic(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    # The classic log has unnamed Data; the last one is "Key=Value" lines.
    text = "\n".join(str(v) for v in ev.data.values() if isinstance(v, str))
    data = f.raw("Data")
    if isinstance(data, list):
        text += "\n" + "\n".join(str(v) for v in data if v)
    pairs = dict(re.findall(r"^\s*(\w+)=(.*?)\s*$", text, re.M))
    out.update(process_command_line=clean(pairs.get("HostApplication")),
               win_script_block=clean(pairs.get("CommandLine")))


def _ps_script_block(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    out.update(target_type="script", target=f.get("Path"),
               win_script_block=f.get("ScriptBlockText"),
               win_script_block_id=f.get("ScriptBlockId"))


def _generic(f: CaseFields, out: Out, ev: WinEvent, w: list[str]) -> None:
    return None


SHAPES: dict[str, Shape] = {
    "process_create": _process_create, "process_create_4688": _process_create_4688,
    "process": _process, "process_4689": _process_4689, "process_access": _process_access,
    "network": _network, "wfp": _wfp, "dns": _dns, "file": _file, "pipe": _pipe,
    "registry": _registry, "registry_4657": _registry_4657, "image_load": _image_load,
    "driver": _driver, "wmi": _wmi, "logon": _logon, "logoff": _logoff,
    "explicit_logon": _explicit_logon, "privileges": _privileges, "account": _account,
    "group_member": _group_member, "kerberos": _kerberos,
    "ntlm": _ntlm, "session_rdp": _session_rdp, "task": _task, "task_op": _task_op,
    "service_7045": _service_7045, "service_4697": _service_4697, "log_cleared": _log_cleared,
    "object_access": _object_access, "share": _share, "ps_pipeline": _ps_pipeline,
    "ps_classic": _ps_classic, "ps_script_block": _ps_script_block, "generic": _generic,
}
