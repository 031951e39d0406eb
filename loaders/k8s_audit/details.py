"""Kubernetes audit helpers: notable request details, and merging a request's stages.

:func:`request_details` keeps what later detections need from ``requestObject`` (privileged
pods, host namespaces and mounts, images, RBAC bindings) as flat extra columns.

:func:`request_key` is the identity of one API request, and :class:`StageMerger` keeps one
event per request while streaming in bounded memory. The API server writes up to three
records per request (RequestReceived, ResponseStarted for long-running requests such as
exec/watch, then ResponseComplete or Panic). Records are stages of one request only when
they share the ``auditID`` *and* the verb, requestURI, user, impersonated user and
``requestReceivedTimestamp`` (see :func:`request_key`): an ``auditID`` reused by a buggy
shipper or a test pipeline for other requests does not hide them. The most complete stage
is kept; the others become :class:`~loaders.base.Duplicate` items so counts add up:

- a final stage (ResponseComplete, Panic, or a record without stage) is yielded at once;
- an earlier stage is held in a pending window until a later stage of the same request
  replaces it, or until ``window`` further records have passed (then it is yielded as it
  is: a request that never completed, or whose completion is far away, e.g. a long exec
  session, keeps its ResponseStarted record);
- keys already yielded are remembered (the last ``memory`` of them), so a stage arriving
  after its request was yielded, or the same record twice, becomes a Duplicate. Beyond
  that memory, the store's ``event_uid`` de-duplication (the uid is derived from the same
  key) still catches repeats.

Items are therefore not strictly in input order; each keeps its own line number.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from loaders.base import Duplicate, Item, Parsed, is_placeholder_id
from loaders.parsing.batch_items import dig as _dig

STAGE_RANK: dict[str, int] = {
    "RequestReceived": 0,
    "ResponseStarted": 1,
    "ResponseComplete": 2,
    "Panic": 2,
}
_FINAL = 2
_EARLY = frozenset(stage for stage, rank in STAGE_RANK.items() if rank < _FINAL)

# resources whose requestObject carries a pod template, and where it sits
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "pods": ("spec",),
    "deployments": ("spec", "template", "spec"),
    "replicasets": ("spec", "template", "spec"),
    "statefulsets": ("spec", "template", "spec"),
    "daemonsets": ("spec", "template", "spec"),
    "jobs": ("spec", "template", "spec"),
    "replicationcontrollers": ("spec", "template", "spec"),
    "cronjobs": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_BINDINGS = frozenset({"rolebindings", "clusterrolebindings"})




KEY_SEP = "\x1f"
"""Separator of the parts of :func:`request_key` (a character no part contains in practice;
the key is hashed, never parsed, except for its first part in messages)."""


def request_key(audit_id: str | None, verb: str, uri: str, user: str, impersonated: str,
                received: str) -> str | None:
    """The identity of one API request: what its stages share, and the native id its
    ``event_uid`` is derived from.

    The API server gives every request an ``auditID`` and writes it, with the verb,
    requestURI, user, impersonated user and ``requestReceivedTimestamp``, unchanged in each
    stage record of the request; only ``stage``, ``stageTimestamp`` (the stage's own time,
    never before ``requestReceivedTimestamp``) and the response change. So stages of one
    request have equal keys, and records that share an ``auditID`` but differ in any of
    those are different requests.

    Args:
        audit_id: ``auditID`` as text; None (or a placeholder, see
            :func:`~loaders.base.is_placeholder_id`) when there is none.
        verb, uri, user, impersonated: ``verb``, ``requestURI``, ``user.username`` and
            ``impersonatedUser.username`` as text, ``""`` when absent.
        received: ``requestReceivedTimestamp`` as written, else ``timestamp`` (v1beta1's
            request time), else ``""``; never ``stageTimestamp``, which differs per stage.

    Returns:
        The parts joined by :data:`KEY_SEP`, or None for a missing or placeholder
        ``auditID``: such a record is not merged with any other, and its ``event_uid`` comes
        from its raw text.

    Example:
        >>> request_key("a1", "get", "/api/v1/pods", "alice", "", "2024-05-01T15:00:00Z")
        'a1\x1fget\x1f/api/v1/pods\x1falice\x1f\x1f2024-05-01T15:00:00Z'
        >>> request_key("00000000-0000-0000-0000-000000000000", "get", "/", "a", "", "") is None
        True
    """
    if is_placeholder_id(audit_id):
        return None
    return KEY_SEP.join((str(audit_id), verb, uri, user, impersonated, received))


def _audit_id(key: str) -> str:
    """The ``auditID`` part of a :func:`request_key`, for messages."""
    return key.split(KEY_SEP, 1)[0]


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def request_details(resource: str, request: Any) -> dict[str, Any]:
    """Flat extra columns from a request body.

    Args:
        resource: objectRef.resource.
        request: requestObject (may be None or any JSON value).

    Returns:
        For pod specs (pods and workload templates): ``k8s_privileged``,
        ``k8s_host_network``, ``k8s_host_pid``, ``k8s_host_ipc`` (bools), ``k8s_host_mounts``
        and ``k8s_images`` (comma-separated). For role bindings: ``k8s_role_ref``
        (``Kind/name``) and ``k8s_subjects`` (``Kind/namespace/name``, comma-separated).
        Empty when the body has none of these.

    Example:
        >>> request_details("pods", {"spec": {"hostPID": True, "containers": [
        ...     {"image": "busybox", "securityContext": {"privileged": True}}]}})["k8s_images"]
        'busybox'
    """
    out: dict[str, Any] = {}
    if not isinstance(request, dict):
        return out
    path = _POD_SPEC_PATHS.get(resource)
    spec = _dig(request, path) if path else None
    if isinstance(spec, dict):
        containers = [c for key in ("initContainers", "containers", "ephemeralContainers")
                      for c in _dicts(spec.get(key))]
        out["k8s_privileged"] = any(
            (c.get("securityContext") or {}).get("privileged") is True for c in containers)
        out["k8s_host_network"] = spec.get("hostNetwork") is True
        out["k8s_host_pid"] = spec.get("hostPID") is True
        out["k8s_host_ipc"] = spec.get("hostIPC") is True
        mounts = [str(path) for v in _dicts(spec.get("volumes"))
                  if isinstance(v.get("hostPath"), dict)
                  and (path := v["hostPath"].get("path")) not in (None, "")]
        out["k8s_host_mounts"] = ",".join(mounts) or None
        images = [str(c["image"]) for c in containers if c.get("image")]
        out["k8s_images"] = ",".join(dict.fromkeys(images)) or None
    if resource in _BINDINGS:
        ref = request.get("roleRef")
        if isinstance(ref, dict):
            out["k8s_role_ref"] = "/".join(str(p) for p in (ref.get("kind"), ref.get("name"))
                                           if p not in (None, "")) or None
        subjects = ["/".join(str(s[k]) for k in ("kind", "namespace", "name") if s.get(k))
                    for s in _dicts(request.get("subjects"))]
        out["k8s_subjects"] = ",".join(subjects) or None
    return out


@dataclass(slots=True)
class TableRows:
    """The rows of one fast-path table (:mod:`loaders.k8s_audit.fast`), as the merger sees
    them: each row's line, ``k8s_stage`` and request key (:func:`request_key`; None: not
    merged)."""

    table: Any
    lines: list[int]
    stages: list[str | None]
    ids: list[str | None]

    def row(self, index: int) -> TableRow:
        """One row as an item the merger can hold."""
        return TableRow(self.lines[index], self.stages[index], self.ids[index], self, index)


@dataclass(slots=True)
class TableRow:
    """A row of :class:`TableRows`, merged by the same rules as a :class:`~loaders.base.Parsed`
    item (see :meth:`StageMerger.push_rows`)."""

    line: int
    stage: str | None
    native_id: str | None
    block: TableRows
    index: int


Held = TypeVar("Held", bound="Parsed | TableRow")


def _stage(item: Parsed | TableRow) -> str | None:
    return item.stage if isinstance(item, TableRow) else item.fields.get("k8s_stage")


def _rank(stage: str | None) -> int:
    return STAGE_RANK.get(stage, _FINAL) if stage else _FINAL


class StageMerger(Generic[Held]):
    """Keep the most complete stage per request (``native_id``, a :func:`request_key`) in
    bounded memory (see module docstring).

    ``StageMerger[Parsed]`` merges the per-event path's items; the fast path's merger also
    takes :class:`TableRow` items, in the same sequence, so the rules span both.

    Args:
        window: how many later records an incomplete stage waits for its completion
            (:attr:`loaders.base.Tuning.k8s_stage_window`).
        memory: how many yielded keys are remembered to spot late stages and repeats
            (:attr:`loaders.base.Tuning.k8s_remembered_ids`).
    """

    def __init__(self, window: int, memory: int) -> None:
        self.window = window
        self.memory = memory
        self._pending: OrderedDict[str, tuple[Held, int, int]] = OrderedDict()
        self._done: OrderedDict[str, str] = OrderedDict()
        self._seq = 0

    def push(self, item: Item | Held) -> Iterator[Item | Held]:
        """Take the next item; yield what is ready (it, a Duplicate, or expired ones)."""
        self._seq += 1
        if isinstance(item, (Parsed, TableRow)) and item.native_id:
            yield from self._merge(cast(Held, item), item.native_id)
        else:
            yield item
        if self._pending:
            yield from self._expire()

    def push_rows(self: StageMerger[Parsed | TableRow], rows: TableRows, start: int, stop: int
                  ) -> list[int | Item | TableRow]:
        """:meth:`push` rows ``start`` to ``stop`` of a table in turn.

        Returns:
            Everything they make ready, in order; a row of ``rows`` that goes out at once
            is given by its index (the common case costs no item).
        """
        out: list[int | Item | TableRow] = []
        done, pending = self._done, self._pending
        ids, stages = rows.ids, rows.stages
        due = self._due()
        for index in range(start, stop):
            self._seq += 1
            key, stage = ids[index], stages[index]
            if not key:
                out.append(index)
            elif stage not in _EARLY and key not in done and key not in pending:
                out.append(index)  # _merge then _emit, inline
                done[key] = stage or "-"
                if len(done) > self.memory:
                    done.popitem(last=False)
            else:
                out.extend(self._merge(rows.row(index), key))
                due = 0
            if self._seq >= due:
                out.extend(self._expire())
                due = self._due()
        return out

    def _due(self) -> int | float:
        """The next count of records at which :meth:`_expire` may have something to do."""
        if not self._pending:
            return math.inf
        if len(self._pending) > self.window:
            return self._seq
        _held, _rank, seq = next(iter(self._pending.values()))
        return seq + self.window + 1

    def flush(self) -> Iterator[Held]:
        """Yield the records still waiting for a later stage (end of input)."""
        while self._pending:
            key, (held, _rank, _seq) = self._pending.popitem(last=False)
            yield self._emit(key, held)

    def _expire(self) -> Iterator[Held]:
        while self._pending:
            key, (held, _rank, seq) = next(iter(self._pending.items()))
            if self._seq - seq <= self.window and len(self._pending) <= self.window:
                break
            del self._pending[key]
            yield self._emit(key, held)

    def _merge(self, item: Held, key: str) -> Iterator[Duplicate | Held]:
        stage = _stage(item)
        rank = _rank(stage)
        kept = self._done.get(key)
        if kept is not None:
            yield Duplicate(item.line, f"auditID {_audit_id(key)}: stage {stage or '-'} repeats "
                                       f"a record of the same request already loaded "
                                       f"(stage {kept})")
            return
        pending = self._pending.get(key)
        if pending is not None:
            held, held_rank, seq = pending
            if rank <= held_rank:
                yield Duplicate(item.line, f"auditID {_audit_id(key)}: stage {stage} repeats "
                                           f"the stage {_stage(held)} record at line "
                                           f"{held.line}")
                return
            yield Duplicate(held.line, f"auditID {_audit_id(key)}: stage {_stage(held)} "
                                       f"superseded by stage {stage} at line {item.line}")
            if rank < _FINAL:
                self._pending[key] = (item, rank, seq)  # keeps its place in the window
                return
            del self._pending[key]
            yield self._emit(key, item)
            return
        if rank < _FINAL:
            self._pending[key] = (item, rank, self._seq)
            return
        yield self._emit(key, item)

    def _emit(self, key: str, item: Held) -> Held:
        self._done[key] = str(_stage(item) or "-")
        if len(self._done) > self.memory:
            self._done.popitem(last=False)
        return item
