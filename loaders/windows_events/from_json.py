"""Windows events as JSON: evtx-style ``{"Event": {...}}`` and the shapes agents ship.

- evtx-style: what ``evtx`` / ``evtx_dump`` write (``#attributes``), xmltodict output
  (``@Name``), and ``separate_json_attributes`` output (``TimeCreated_attributes``);
- Winlogbeat 7+/8 (``winlog.event_data``, ``winlog.channel``…) and 6.x (top-level
  ``event_data``, ``log_name``, ``computer_name``, ``record_number``);
- flat (OTRF Mordor, NXLog, Sentinel ``SecurityEvent``): system fields and event fields side by
  side, optionally with ``EventData`` as a JSON or XML string (Sentinel ``WindowsEvent`` /
  ``Event`` tables);
- Sysmon for Linux in a Log Analytics / Microsoft Sentinel ``Syslog`` table export: one row
  (``TimeGenerated``, ``Computer``, ``HostName``, ``ProcessName``, ``SyslogMessage``…) per
  syslog message, the event XML in ``SyslogMessage`` (:func:`from_syslog_row`);
- any of these under an Elasticsearch ``_source`` wrapper.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree.ElementTree import ParseError
from xml.sax.saxutils import unescape

import defusedxml
import defusedxml.ElementTree as SafeET

from loaders.parsing import values
from loaders.windows_events.from_xml import parse_event_xml, syslog_event_xml
from loaders.windows_events.model import WinEvent, clean, scalar, to_int

# Fields of flat exports that describe the record, not the event (System, agent, table
# metadata); everything else is an EventData field. Lower-case.
_FLAT_META = frozenset({
    "eventid", "eventrecordid", "recordnumber", "channel", "eventlog", "logname", "hostname",
    "computer", "computername", "sourcename", "providername", "provider", "providerguid",
    "eventsourcename", "level", "keywords", "task", "opcode", "opcodevalue", "version",
    "timecreated", "@timestamp", "eventtime", "eventreceivedtime", "timegenerated", "message",
    "severity", "severityvalue", "threadid", "executionprocessid", "sourcemodulename",
    "sourcemoduletype", "userid", "tenantid", "sourcesystem", "eventlevel", "eventlevelname",
    "eventoriginid", "managementgroupname", "type", "_resourceid", "mg", "eventdata", "userdata",
    "eventcategory", "rendereddescription", "@version", "activity", "sourcecomputerid",
    "parameterxml", "azuredeploymentid", "role", "account", "accounttype", "category",
    "source", "host", "port", "tags", "error_evt_unresolved",
})
_DATA_SKIP = ("#attributes", "xmlns")


def _attr(node: Any, name: str) -> Any:
    """An XML attribute in any JSON rendering: ``#attributes``, ``@name``, or plain key."""
    if not isinstance(node, dict):
        return None
    attrs = node.get("#attributes")
    if isinstance(attrs, dict) and name in attrs:
        return attrs[name]
    if "@" + name in node:
        return node["@" + name]
    return node.get(name)


def _sys_attr(system: dict[str, Any], element: str, name: str) -> Any:
    separate = system.get(element + "_attributes")
    if isinstance(separate, dict) and name in separate:
        return separate[name]
    return _attr(system.get(element), name)


def _text(node: Any) -> Any:
    if isinstance(node, dict):
        for key in ("#text", "text", "$"):
            if key in node:
                return node[key]
        return None
    return node


def _named_data(items: list[Any], out: dict[str, Any]) -> list[Any]:
    unnamed = []
    for item in items:
        name = _attr(item, "Name") if isinstance(item, dict) else None
        if isinstance(name, str):
            out[name] = scalar(_text(item))
        else:
            unnamed.append(scalar(_text(item)))
    return unnamed


def event_data(node: Any) -> dict[str, Any]:
    """EventData (or one UserData child) in any JSON rendering as a flat name -> text dict."""
    out: dict[str, Any] = {}
    if node is None:
        return out
    if not isinstance(node, dict):
        out["Data"] = scalar(node)
        return out
    for key, value in node.items():
        if key in _DATA_SKIP or key.endswith("_attributes") or key.startswith("@"):
            continue
        if key == "Data":
            items = value if isinstance(value, list) else [value]
            unnamed = _named_data(items, out)
            if unnamed:
                out["Data"] = unnamed[0] if len(unnamed) == 1 else unnamed
        else:
            out[key] = scalar(value)
    return out


def user_data(node: Any) -> dict[str, Any]:
    """UserData holds one provider element (e.g. ``LogFileCleared``); its fields, flattened."""
    if not isinstance(node, dict):
        return {}
    children = [v for k, v in node.items() if k not in _DATA_SKIP and not k.startswith("@")]
    if len(children) == 1 and isinstance(children[0], dict):
        return event_data(children[0])
    return event_data(node)


def from_evtx_json(event: dict[str, Any], header_time: Any = None) -> WinEvent:
    """Normalize one ``Event`` object (evtx-rs, evtx_dump, xmltodict renderings).

    Args:
        event: the value of the ``Event`` key.
        header_time: the EVTX record header time, the last-resort timestamp.
    """
    system = event.get("System") or {}
    data = event_data(event.get("EventData"))
    data.update(user_data(event.get("UserData")))
    times: list[tuple[str, Any]] = [
        ("System/TimeCreated/@SystemTime", _sys_attr(system, "TimeCreated", "SystemTime"))]
    if header_time is not None:
        times.append(("record header time", header_time))
    rendering = event.get("RenderingInfo") or {}
    return WinEvent(
        event_id=to_int(_text(system.get("EventID"))),
        channel=clean(_text(system.get("Channel"))),
        provider=clean(_sys_attr(system, "Provider", "Name")),
        computer=clean(_text(system.get("Computer"))),
        record_id=to_int(_text(system.get("EventRecordID"))),
        times=times,
        data=data,
        keywords=clean(_text(system.get("Keywords"))),
        user_sid=clean(_sys_attr(system, "Security", "UserID")),
        message=clean(_text(rendering.get("Message"))) if isinstance(rendering, dict) else None,
    )


def _parse_embedded(text: str) -> dict[str, Any]:
    """EventData as a string: JSON (Sentinel WindowsEvent) or XML (Sentinel Event table)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        value = json.loads(stripped)
        return event_data(value) if isinstance(value, dict) else {"EventData": text}
    if stripped.startswith("<"):
        try:
            root = SafeET.fromstring(stripped, forbid_dtd=True)
        except defusedxml.DefusedXmlException as exc:
            raise ValueError(f"EventData XML refused ({type(exc).__name__}): DTDs and "
                             "entities are never expanded") from None
        except ParseError as exc:
            raise ValueError(f"EventData is not readable XML: {exc}") from None
        out: dict[str, Any] = {}
        unnamed: list[Any] = []
        for el in root.iter():
            if el.tag.rsplit("}", 1)[-1] == "Data":
                name = el.get("Name")
                if name:
                    out[name] = el.text
                else:
                    unnamed.append(el.text)
        if unnamed:
            out["Data"] = unnamed if len(unnamed) > 1 else unnamed[0]
        return out
    return {"EventData": text}


def _first(obj: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = obj.get(name)
        if value not in (None, ""):
            return value
    return None


def _keywords(value: Any) -> str | None:
    if isinstance(value, list):
        return values.join(value, ", ")
    return clean(value)


def _obj(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _domain_user(domain: Any, name: Any) -> str | None:
    name, domain = clean(name), clean(domain)
    if name is None:
        return None
    return f"{domain}\\{name}" if domain else name


def from_winlogbeat(obj: dict[str, Any]) -> WinEvent:
    """Winlogbeat 7+ (``winlog`` object) or 6.x (top-level ``event_data``/``log_name``)."""
    wl = _obj(obj, "winlog") or obj
    event, host = _obj(obj, "event"), _obj(obj, "host")
    data = event_data(wl.get("event_data"))
    data.update(event_data(wl.get("user_data")))
    user = _obj(wl, "user")
    utc = data.get("UtcTime")
    return WinEvent(
        event_id=to_int(_first(wl, "event_id") or event.get("code")),
        channel=clean(_first(wl, "channel", "log_name")),
        provider=clean(_first(wl, "provider_name", "source_name") or event.get("provider")),
        computer=clean(_first(wl, "computer_name") or host.get("name") or host.get("hostname")),
        record_id=to_int(_first(wl, "record_id", "record_number")),
        times=[("@timestamp", obj.get("@timestamp")), ("UtcTime", utc)],
        data=data,
        keywords=_keywords(wl.get("keywords")),
        user_sid=clean(user.get("identifier")),
        message=clean(obj.get("message")),
        outcome_hint=clean(event.get("outcome")),
        user_hint=_domain_user(user.get("domain"), user.get("name")),
    )


def from_flat(obj: dict[str, Any]) -> WinEvent:
    """Flat exports: Mordor/NXLog fields, Sentinel tables (``EventData`` JSON or XML string).

    An ``EventData`` string that cannot be read (or declares a DTD) leaves the event without
    those fields and with a warning.
    """
    lows = [k.lower() for k in obj]  # once per key: this runs for every field of every record
    lower = dict(zip(lows, obj.values(), strict=True))
    data = {k: v if type(v) is str else scalar(v)
            for (k, v), low in zip(obj.items(), lows, strict=True) if low not in _FLAT_META}
    warnings: list[str] = []
    for key, flatten in (("eventdata", event_data), ("userdata", user_data)):
        embedded = lower.get(key)
        if isinstance(embedded, dict):
            data.update(flatten(embedded))
        elif isinstance(embedded, str) and embedded.strip():
            try:
                data.update(_parse_embedded(embedded))
            except ValueError as exc:  # the System fields still make an event
                warnings.append(f"{key}: {exc}")

    def get(*names: str) -> Any:
        for name in names:
            value = lower.get(name)
            if value not in (None, ""):
                return value
        return None

    return WinEvent(
        event_id=to_int(get("eventid")),
        channel=clean(get("channel", "eventlog", "logname")),
        provider=clean(get("sourcename", "providername", "provider", "eventsourcename",
                           "source")),
        computer=clean(get("computer", "hostname", "computername")),
        record_id=to_int(get("eventrecordid", "recordnumber")),
        times=[("TimeCreated", get("timecreated")), ("@timestamp", get("@timestamp")),
               ("EventTime", get("eventtime")), ("TimeGenerated", get("timegenerated")),
               ("UtcTime", data.get("UtcTime"))],
        data=data,
        keywords=_keywords(get("keywords")),
        user_sid=clean(get("userid")),
        message=clean(get("message", "rendereddescription")),
        warnings=warnings,
    )


_SYSTEM_TIME = "System/TimeCreated/@SystemTime"
_XML_QUOTES = {"&quot;": '"', "&apos;": "'"}
_ESCAPED_EVENT = "&lt;Event"


def is_syslog_row(obj: dict[str, Any]) -> bool:
    """A row of the Log Analytics ``Syslog`` table (the message in ``SyslogMessage``) and
    not a Windows event of another shape that happens to carry such a field."""
    return isinstance(obj.get("SyslogMessage"), str) and not (
        "EventID" in obj or "Event" in obj or "winlog" in obj)


def syslog_row_xml(message: str) -> str | None:
    """The event XML of a ``SyslogMessage``; None when the message carries none.

    The agent stores what follows the syslog tag: the XML itself, sometimes after a leading
    word (``Event <Event>…``); an export that escaped the message as XML text
    (``&lt;Event&gt;…``) is unescaped once, which gives back the XML exactly as Sysmon wrote
    it (its own ``&amp;`` escapes were escaped again by the export).
    """
    xml = syslog_event_xml(message)
    if xml is None and _ESCAPED_EVENT in message:
        xml = syslog_event_xml(unescape(message, _XML_QUOTES))
    return xml


def from_syslog_row(obj: dict[str, Any]) -> WinEvent | str | None:
    """Normalize a Sysmon for Linux event from a ``Syslog`` table row.

    The XML is parsed with defusedxml exactly as a Sysmon for Linux syslog line is
    (:func:`~loaders.windows_events.from_xml.parse_event_xml`), so the two forms of one
    event store the same values and the same ``event_uid``. The row's own columns only fill
    in what the event lacks: ``HostName`` (the syslog sender, what Sysmon writes as
    ``<Computer>``) or else ``Computer`` (the machine the agent ran on: a collector, for
    forwarded messages) for a missing ``<Computer>``; ``EventTime`` and ``TimeGenerated``
    (when Log Analytics received the message, later than the event) are the last time
    candidates, after ``TimeCreated`` and Sysmon's ``UtcTime`` (UTC by definition).

    Returns:
        The event; a reject reason (truncated or unreadable XML); None for a row whose
        message carries no event XML (another program's syslog message: not a record,
        as in a syslog file).
    """
    xml = syslog_row_xml(obj["SyslogMessage"])
    if xml is None:
        return None
    if not xml.endswith("</Event>"):
        return ("truncated event XML: SyslogMessage ends before </Event> (syslog message "
                "length limit?)")
    ev = parse_event_xml(xml)
    if isinstance(ev, str):
        return ev
    if ev.computer is None:
        ev.computer = clean(_first(obj, "HostName", "Computer"))
    system_time = dict(ev.times).get(_SYSTEM_TIME)
    ev.times = [(_SYSTEM_TIME, system_time), ("UtcTime", ev.data.get("UtcTime")),
                ("EventTime", obj.get("EventTime")),
                ("TimeGenerated", obj.get("TimeGenerated"))]
    return ev


def from_json_value(value: Any) -> WinEvent | str | None:
    """Normalize one JSON value of any supported shape; a reason string when it is none;
    None for a ``Syslog`` table row without event XML (not a record: skipped)."""
    if not isinstance(value, dict):
        return f"not a Windows event: a JSON {type(value).__name__}, not an object"
    if isinstance(value.get("_source"), dict):  # Elasticsearch hit
        value = value["_source"]
    event = value.get("Event")
    if isinstance(event, dict) and isinstance(event.get("System"), dict):
        return from_evtx_json(event)
    if isinstance(value.get("winlog"), dict) or (
            "event_data" in value and ("log_name" in value or "event_id" in value)):
        return from_winlogbeat(value)
    if is_syslog_row(value):
        return from_syslog_row(value)
    if "EventID" in value or any(k.lower() == "eventid" for k in value):
        return from_flat(value)
    keys = ", ".join(list(value)[:8])
    return f"not a Windows event: no EventID, winlog or Event.System (keys: {keys})"
