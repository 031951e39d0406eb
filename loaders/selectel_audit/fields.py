"""Field tables of the Selectel audit log: layout flattening, status and category mapping."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Keys each object has in the current layout. Schema 1.0 writes them prefixed with the
# object's name ("subject_id"), inside the object or beside it at the top level.
_OBJECT_KEYS: dict[str, tuple[str, ...]] = {
    "subject": ("id", "type", "name", "auth_provider", "is_authorized", "authorized_by",
                "credentials_fingerprint"),
    "resource": ("id", "type", "name", "account_id", "project_id", "location", "details",
                 "old_values", "new_values"),
    "request": ("remote_address", "user_agent", "type", "path", "method", "parameters"),
}
# schema 1.0 names the change sets resource_changes_old_values / _new_values
_RESOURCE_ALIASES: dict[str, tuple[str, ...]] = {
    "old_values": ("changes_old_values",),
    "new_values": ("changes_new_values",),
    "details": ("changes_details",),
}
_TOP_KEYS = ("event_id", "event_type", "event_time", "event_saved_time", "status",
             "error_code", "request_id", "source_type", "schema_version")


# output name ("subject_id", "resource_old_values") of every key an object may hold, under
# its plain name and its schema 1.0 name
_OUT_NAME: dict[str, dict[str, str]] = {}
for _obj, _keys in _OBJECT_KEYS.items():
    _OUT_NAME[_obj] = {}
    for _key in _keys:
        for _alias in (_key, *(_RESOURCE_ALIASES.get(_key, ()) if _obj == "resource" else ())):
            _OUT_NAME[_obj][_alias] = _OUT_NAME[_obj][f"{_obj}_{_alias}"] = f"{_obj}_{_key}"
# prefixed keys written beside the objects (schema 1.0); request_id is a top-level key
_BESIDE: dict[str, str] = {name: out for names in _OUT_NAME.values()
                           for name, out in names.items()
                           if "_" in name and name.split("_", 1)[0] in _OBJECT_KEYS
                           and name not in _TOP_KEYS}


def flatten(ev: dict[str, Any]) -> dict[str, Any]:
    """One flat view of an event in either layout: ``subject_id``, ``resource_old_values``…

    Args:
        ev: the event object as read.

    Returns:
        Top-level keys as they are, and ``<object>_<key>`` for every documented object key,
        taken from the object's plain key, else its prefixed key, else a prefixed key beside
        the object at the top level. Unknown keys are ignored.

    Example:
        >>> flatten({"subject": {"subject_id": "u1"}})["subject_id"]
        'u1'
    """
    out: dict[str, Any] = {key: ev.get(key) for key in _TOP_KEYS}
    for obj_name, names in _OUT_NAME.items():
        obj = ev.get(obj_name)
        if not isinstance(obj, dict):
            continue
        for key, value in obj.items():
            target = names.get(key)
            if target is None or value is None:
                continue
            # a plain key wins over a prefixed one holding the same field
            if out.get(target) is None or not key.startswith(obj_name):
                out[target] = value
    for key, value in ev.items():
        target = _BESIDE.get(key)
        if target is not None and value is not None and out.get(target) is None:
            out[target] = value
    return out


# status is an open set: the docs name "fail" and "NA" (not applicable); the rest mean
# success or refused by policy. Unknown values map to "unknown", the raw value is kept.
STATUS_OUTCOME: dict[str, str] = {
    "success": "success", "succeeded": "success", "successful": "success", "ok": "success",
    "done": "success", "completed": "success", "allowed": "success", "allow": "success",
    "fail": "failure", "failed": "failure", "failure": "failure", "error": "failure",
    "denied": "denied", "deny": "denied", "forbidden": "denied", "refused": "denied",
    "rejected": "denied", "not_allowed": "denied", "unauthorized": "denied",
    "blocked": "denied",
    "na": "unknown", "n/a": "unknown", "unknown": "unknown", "pending": "unknown",
}


def outcome(status: str | None, is_authorized: bool | None) -> str:
    """success / failure / denied / unknown from ``status`` and ``subject.is_authorized``.

    A subject the policy did not authorize is ``denied`` whatever the status says.
    """
    if is_authorized is False:
        return "denied"
    if status is None:
        return "unknown"
    return STATUS_OUTCOME.get(status.strip().lower(), "unknown")


@dataclass(frozen=True)
class Rule:
    """One row of the category table: every non-empty condition must hold.

    Attributes:
        category: the category given when the rule matches.
        event_words: a word of ``event_type`` must be one of these.
        object_words: a word of ``resource.type`` or ``event_type`` must be one of these.
        read: True: the request only reads (GET/HEAD or a read verb in event_type);
            False: it does not; None: either.
    """

    category: str
    event_words: frozenset[str] = frozenset()
    object_words: frozenset[str] = frozenset()
    read: bool | None = None


def _w(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SENSITIVE = _w("secret secrets key keys kms password passwords certificate certificates "
                "kubeconfig credential credentials token tokens vault keymanager")
_ACCESS = _SENSITIVE | _w("user users service_user serviceuser role roles group groups "
                          "membership permission permissions policy policies federation "
                          "saml oidc sso invite invitation access accesskey s3_credentials "
                          "ec2 otp mfa 2fa iam")
_READ_VERBS = _w("read get list show view download reveal export decrypt fetch describe")

# First matching row wins. Words are lower-case parts of event_type / resource.type split
# on anything that is not a letter, digit or underscore (plus each underscore part).
CATEGORY_TABLE: tuple[Rule, ...] = (
    Rule("session", event_words=_w("session sessions logout signout sign_out logoff")),
    Rule("authentication", event_words=_w("login signin sign_in logon authenticate "
                                          "authentication auth")),
    Rule("data_access", object_words=_SENSITIVE, read=True),
    Rule("access_management", object_words=_ACCESS),
    Rule("resource_read", read=True),
    Rule("resource_change"),
)

_SPLIT = re.compile(r"[^0-9a-zа-яё_]+")
_READ_METHODS = frozenset({"GET", "HEAD"})


def _words(text: str | None) -> frozenset[str]:
    if not text:
        return frozenset()
    parts = [p for p in _SPLIT.split(text.lower()) if p]
    return frozenset(parts + [q for p in parts if "_" in p for q in p.split("_") if q])


@lru_cache(maxsize=4096)  # a log has few distinct (event_type, resource.type, method)
def categorize(event_type: str | None, resource_type: str | None, method: str | None) -> str:
    """Category of an audit event through :data:`CATEGORY_TABLE`.

    Example:
        >>> categorize("secret.read", "secret", "GET")
        'data_access'
    """
    ev_words = _words(event_type)
    obj_words = ev_words | _words(resource_type)
    is_read = (method or "").upper() in _READ_METHODS or bool(ev_words & _READ_VERBS)
    for rule in CATEGORY_TABLE:
        if rule.event_words and not ev_words & rule.event_words:
            continue
        if rule.object_words and not obj_words & rule.object_words:
            continue
        if rule.read is not None and rule.read != is_read:
            continue
        return rule.category
    return "resource_change"
