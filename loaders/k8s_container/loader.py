"""Container stdout/stderr logs as the kubelet and Docker write them.

Two line formats, recognised line by line (a file may even mix them):

- CRI (containerd, CRI-O): ``<RFC3339Nano> <stdout|stderr> <P|F> <message>``. ``P`` lines are
  partial: they are joined with the following lines of the same stream up to the closing
  ``F`` line.
- docker json-file: ``{"log": "...\\n", "stream": "stdout", "time": "..."}``. Docker splits
  long lines into records whose ``log`` does not end in ``\\n``; those are joined the same
  way. Shipper copies that add a ``kubernetes`` object (fluent-bit, Filebeat) give pod,
  namespace, container and host from it. Records with only ``log`` (no ``time``, no
  ``stream``), as fluent-bit and some shippers write them, are stdout entries without a
  timestamp: they are stored with a null ``timestamp`` (the store's ``date=unknown``
  partition) and a ``parse_warning`` saying so, never given a time guessed from the file's
  mtime or a neighbouring line (a guess would put the line where it did not happen on the
  timeline); a record whose ``time`` is present but unreadable is still rejected.

One counted record is one log entry: a complete line, or the partial lines joined into it
(the entry's line number is its first line; ``raw`` holds all of its lines). Joining is
bounded (:attr:`~loaders.base.Tuning.container_max_joined_chars` and
:attr:`~loaders.base.Tuning.container_max_joined_lines`): past that the entry is cut, kept
with a warning, and the rest starts a new entry.

Pod, namespace, container and container id come from the file path (``src.file.display``;
for archive members the part after the last ``!``):

- ``/var/log/pods/<namespace>_<pod>_<pod-uid>/<container>/<n>.log`` (also rotated ``.log.*``)
- ``/var/log/containers/<pod>_<namespace>_<container>-<container-id>.log``
- ``/var/lib/docker/containers/<container-id>/<container-id>-json.log``

When the message is itself structured — JSON with a level and a message, logfmt with
``level=``/``msg=``, or a klog header (``I0416 06:21:30.494902 1 file.go:12] …``) — the level
and message are lifted into ``k8s_log_level`` / ``k8s_log_msg``.

UTF-8 files are read in blocks by the vectorized path (:mod:`loaders.k8s_container.fast`,
:mod:`loaders.k8s_container.lift`); the lines it does not take, and UTF-16 files, go through
:class:`Assembler` line by line, which defines the values both give.

``event_uid`` comes from the raw text (timestamps have nanoseconds), so the same lines read
through ``/var/log/containers`` and ``/var/log/pods`` (symlinks to one file) are stored once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loaders.base import Item, Loader, Parsed, Reject, Source
from loaders.k8s_container.fast import iter_fast
from loaders.parsing.inputs import Line, detect_encoding, text_head
from loaders.parsing.timeutil import TimeError, naive_to_utc, parse_iso
from loaders.schema.extras import K8S_CONTAINER

_CRI = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) "
    r"(stdout|stderr) ([PF])(?::\S*)?(?: (.*))?$", re.S)
_DOCKER_LOG = re.compile(r'"log"\s*:\s*"')
_DOCKER_KEYS = re.compile(r'"(?:stream|time)"\s*:')
# keys a docker json-file record without time/stream may carry next to "log"
_LOG_ONLY_KEYS = frozenset({"log", "kubernetes", "attrs"})
_NO_TIME = ("docker json-file record without a time (no \"time\" key): stored without a "
            "timestamp (date=unknown)")

_PODS_PATH = re.compile(
    r"(?:^|/)([a-z0-9][a-z0-9.-]*)_([a-z0-9][a-z0-9.-]*)_([0-9a-fA-F-]{8,})/"
    r"([^/]+)/\d+\.log(?:\.[^/]*)?$")
_CONTAINERS_PATH = re.compile(
    r"(?:^|/)([a-z0-9][a-z0-9.-]*)_([a-z0-9][a-z0-9.-]*)_([^/]+)-([0-9a-f]{64})\.log$")
_DOCKER_PATH = re.compile(r"(?:^|/)([0-9a-f]{64})/[^/]*\.log(?:\.\d+)?$")

_KLOG = re.compile(r"^([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [^\]]*\] ?(.*)$", re.S)
_KLOG_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "fatal"}
_LOGFMT = re.compile(r'([\w.@-]+)=("(?:[^"\\]|\\.)*"|\S*)')
_LEVEL_KEYS = ("level", "lvl", "severity", "loglevel", "log.level", "levelname")
_MSG_KEYS = ("msg", "message", "log.message")


@dataclass(slots=True)
class PathInfo:
    """What a container log's path says about it."""

    namespace: str | None = None
    pod: str | None = None
    pod_uid: str | None = None
    container: str | None = None
    container_id: str | None = None


def path_info(display: str) -> PathInfo:
    """Pod, namespace, container and container id from a container log path.

    Args:
        display: the file's ``source_file`` (``archive!member`` for archive members).

    Returns:
        A :class:`PathInfo`; fields the path does not carry are None.

    Example:
        >>> info = path_info("/var/log/pods/default_web-0_0f1e2d3c-aaaa-bbbb-cccc-1234/nginx/0.log")
        >>> info.namespace, info.pod, info.pod_uid, info.container
        ('default', 'web-0', '0f1e2d3c-aaaa-bbbb-cccc-1234', 'nginx')
    """
    path = display.rsplit("!", 1)[-1].replace("\\", "/")
    m = _PODS_PATH.search(path)
    if m:
        return PathInfo(m.group(1), m.group(2), m.group(3), m.group(4))
    m = _CONTAINERS_PATH.search(path)
    if m:
        return PathInfo(m.group(2), m.group(1), None, m.group(3), m.group(4))
    m = _DOCKER_PATH.search(path)
    if m:
        return PathInfo(container_id=m.group(1))
    return PathInfo()


def _pick(obj: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = obj.get(key)
        if value is None and "." in key:
            head, _, tail = key.partition(".")
            inner = obj.get(head)
            value = inner.get(tail) if isinstance(inner, dict) else None
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    return None


def lift(message: str) -> tuple[str | None, str | None]:
    """Level and message of a structured log line (JSON, logfmt or klog), else (None, None).

    Example:
        >>> lift('time="2024-01-01T00:00:00Z" level=warning msg="disk almost full"')
        ('warning', 'disk almost full')
        >>> lift('{"level":"error","msg":"db down","ts":1}')
        ('error', 'db down')
    """
    text = message.strip()
    if text.startswith("{") and text.endswith("}"):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return None, None
        if isinstance(obj, dict):
            level, msg = _pick(obj, _LEVEL_KEYS), _pick(obj, _MSG_KEYS)
            if level is not None and msg is not None:
                return _clean(level.lower()), _clean(msg)
        return None, None
    m = _KLOG.match(text)
    if m:
        return _KLOG_LEVELS[m.group(1)], m.group(2)
    if "=" in text and ("level=" in text or "lvl=" in text):
        pairs = {k: v for k, v in _LOGFMT.findall(text)}
        level, msg = _pick(pairs, ("level", "lvl")), _pick(pairs, ("msg", "message"))
        if level is not None and msg is not None:
            return _clean(_unquote(level).lower()), _clean(_unquote(msg))
    return None, None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """JSON escapes can decode to lone surrogates (``\\ud800``), which cannot be stored as
    UTF-8: each becomes U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            out = json.loads(value)
            return out if isinstance(out, str) else value[1:-1]
        except ValueError:
            return value[1:-1]
    return value


def _time(stamp: str) -> datetime:
    """The UTC time of a log line's time text.

    Raises:
        TimeError: not a time, or one outside years 1–9999 once in UTC.
    """
    # the hot path: datetime.fromisoformat (3.11+) reads RFC 3339 with nanoseconds about
    # 40x faster than the general parser, which stays the fallback for odd forms
    if len(stamp) >= 20 and stamp[10] == "T":
        try:
            ts = datetime.fromisoformat(stamp)
        except ValueError:
            return parse_iso(stamp)
        if ts.tzinfo is None:
            return naive_to_utc(ts)
        try:
            return ts.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00, 9999-12-31T23:59:59-01:00
            raise TimeError(f"out of range: {stamp[:60]!r}") from None
    return parse_iso(stamp)


@dataclass(slots=True)
class _Entry:
    """A log entry being assembled from partial lines of one stream."""

    line: int
    stamp: str | None  # None: a docker record without a time (stored without a timestamp)
    stream: str
    pieces: list[str] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    size: int = 0
    meta: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


class K8sContainerLoader(Loader):
    name = "k8s_container"
    description = "Kubernetes / Docker container stdout and stderr logs"
    reads = ("CRI log lines (containerd, CRI-O) and docker json-file records (also {log} "
             "alone, without a time: null timestamp, date=unknown); pod, namespace, "
             "container from /var/log/pods, /var/log/containers or docker paths")
    prefix = K8S_CONTAINER.prefix
    record = "log entry (partial lines joined)"
    extra_columns = K8S_CONTAINER.columns

    def sniff(self, head: bytes, name: str) -> bool:
        text = text_head(head[:8192]).lstrip()
        first = text.split("\n", 1)[0]
        if _CRI.match(first.rstrip("\r")):
            return True
        # shipper records that carry an API audit event belong to k8s_audit
        if not first.startswith("{") or not _DOCKER_LOG.search(first) or "auditID" in first:
            return False
        return bool(_DOCKER_KEYS.search(first)) or _log_only(first)

    def parse(self, src: Source) -> Iterator[Item]:
        info = path_info(src.file.display)
        tuning = src.options.tuning
        assembler = Assembler(info, tuning.container_max_joined_chars,
                              tuning.container_max_joined_lines)
        if detect_encoding(src.head) == "utf-8":
            # the fast path: blocks of lines parsed with Arrow compute; odd lines and
            # partials go through the same assembler, line by line
            yield from iter_fast(src, assembler, lift)
            return
        for line in src.lines():
            yield from assembler.feed(line)
        yield from assembler.flush()


def _log_only(first: str) -> bool:
    """A docker json-file record with only ``log`` (and shipper metadata): ``{"log":"…"}``.
    Only a whole JSON object whose keys are all known is taken: ``log`` alone is too common
    a key to claim any JSON with it."""
    try:
        obj = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return (isinstance(obj, dict) and isinstance(obj.get("log"), str)
            and obj.keys() <= _LOG_ONLY_KEYS)


class Assembler:
    """The line-by-line reader: splits a line, joins partials per stream, maps entries.

    Args:
        info: what the file's path says (pod, namespace, container).
        max_chars: characters of partial lines joined into one entry before it is cut.
        max_lines: partial lines joined into one entry before it is cut.
    """

    def __init__(self, info: PathInfo, max_chars: int, max_lines: int) -> None:
        self.info = info
        self.open: dict[str, _Entry] = {}
        self.max_chars = max_chars
        self.max_lines = max_lines

    @property
    def limits(self) -> tuple[int, int]:
        """(characters, lines) at which joining partial lines stops (see :meth:`feed`)."""
        return self.max_chars, self.max_lines

    def feed(self, line: Line) -> Iterator[Item]:
        """Items completed by one line (none for a partial or an empty line)."""
        if line.text is None:
            yield Reject(line.number, line.warning or "unreadable line", "")
            return
        text = line.text
        if not text.strip():
            return
        raw = line.raw if line.raw is not None else text
        try:
            parts = _split(text)
        except ValueError as exc:
            yield Reject(line.number, str(exc), raw)
            return
        stamp, stream, piece, final, meta = parts
        entry = self.open.pop(stream, None)
        if entry is None:
            entry = _Entry(line.number, stamp, stream, meta=meta)
        if line.warning:
            entry.warnings.append(line.warning)
        entry.pieces.append(piece)
        entry.raws.append(raw)
        entry.size += len(piece)
        if not final and (entry.size >= self.max_chars
                          or len(entry.pieces) >= self.max_lines):
            entry.warnings.append(
                f"partial lines cut after {len(entry.pieces)} lines / {entry.size} "
                "characters; the rest of the line is the next entry")
            final = True
        if final:
            yield _entry(entry, self.info)
        else:
            self.open[stream] = entry

    def flush(self) -> Iterator[Item]:
        """Entries still waiting for their closing line when the file ends."""
        for entry in sorted(self.open.values(), key=lambda e: e.line):
            entry.warnings.append("partial line never completed (file ends before its F line)")
            yield _entry(entry, self.info)
        self.open.clear()


def _split(text: str) -> tuple[str | None, str, str, bool, dict[str, Any] | None]:
    """(timestamp text, stream, message piece, is-final, shipper metadata) of one line; the
    timestamp is None for a docker record without any time key.

    Raises:
        ValueError: the line is neither format; the text is the reject reason.
    """
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"invalid docker json-file record: {exc}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("log"), str):
            raise ValueError("JSON record without a \"log\" string: not a docker "
                             "json-file record")
        log = obj["log"]
        stamp: str | None = None
        if "time" in obj or "@timestamp" in obj:  # present: it must be readable
            stamp = str(obj.get("time") or obj.get("@timestamp") or "")
        final = log.endswith("\n")
        piece = log[:-1] if final else log
        if piece.endswith("\r"):
            piece = piece[:-1]
        meta = obj.get("kubernetes") if isinstance(obj.get("kubernetes"), dict) else None
        return stamp, str(obj.get("stream") or "stdout"), piece, final, meta
    m = _CRI.match(text)
    if not m:
        raise ValueError("not a CRI log line (<RFC3339 time> <stdout|stderr> <P|F> "
                         "<message>) nor a docker json-file record")
    return m.group(1), m.group(2), m.group(4) or "", m.group(3) == "F", None


def _entry(entry: _Entry, info: PathInfo) -> Item:
    """The event (or the reject, when its time is unreadable) of an assembled entry."""
    raw = entry.raws[0] if len(entry.raws) == 1 else "\n".join(entry.raws)
    ts: datetime | None = None
    if entry.stamp is None:
        entry.warnings.insert(0, _NO_TIME)
    else:
        try:
            ts = _time(entry.stamp)
        except TimeError as exc:
            return Reject(entry.line, f"log entry without a readable time: {exc}", raw)
    message = "".join(entry.pieces)
    level, msg = lift(message)
    meta = {k: str(v) for k, v in (entry.meta or {}).items()
            if isinstance(v, (str, int)) and v != ""}
    namespace = meta.get("namespace_name") or info.namespace
    pod = meta.get("pod_name") or info.pod
    container = meta.get("container_name") or info.container
    fields: dict[str, Any] = {
        "timestamp": ts,
        "category": "log",
        "action": entry.stream,
        "outcome": "unknown",
        "host": meta.get("host"),
        "k8s_namespace": namespace,
        "k8s_pod": pod,
        "k8s_container": container,
        "target_type": "container" if container else None,
        "target": "/".join(p for p in (namespace, pod, container) if p) or None,
        "message": message,
        "k8s_stream": entry.stream,
        "k8s_container_id": meta.get("docker_id") or meta.get("container_id")
        or info.container_id,
        "k8s_pod_uid": meta.get("pod_id") or info.pod_uid,
        "k8s_log_level": level,
        "k8s_log_msg": msg,
    }
    for key, value in fields.items():
        if isinstance(value, str):
            fields[key] = _clean(value)
    return Parsed(entry.line, raw, fields, warnings=entry.warnings or None)


LOADER = K8sContainerLoader()
