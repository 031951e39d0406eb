"""Render docs/SCHEMA.md from the registered schema: ``python -m loaders.schemadoc``.

The document is generated so it cannot drift from the code; ``tests/test_schema.py`` checks
the committed file is current.
"""

from __future__ import annotations

import loaders
from loaders.schema import CATEGORIES, CORE_COLUMNS, OUTCOMES, Column

_HEAD = """# Event schema

Generated from `loaders/schema/` (core and extra columns) and the loaders' descriptions by
`python -m loaders.schemadoc > docs/SCHEMA.md`; do not edit by hand.

Every Parquet file in the store carries all of these columns (nulls where a source has no
value). Readers tolerate files written before a column existed.

`category` is one of: {categories}.
`outcome` is one of: {outcomes}.

## Core columns

| column | type | meaning | ECS | OCSF |
|---|---|---|---|---|
"""


_IDENTITY_HEAD = """
## Record identity and duplicates

`event_uid` is the first 32 hex digits of SHA-256 over `source`, then either `id` and the
record's *native id* (below), or `raw` and its raw text when it has none
(`loaders.base.make_uid`). The store keeps one event per `event_uid` (across files and runs;
`loaders.load` also within a file): a later record with a stored uid counts as a duplicate.
So a native id must hold everything that makes a record unique — a reused or placeholder id
would silently drop real events — and a true repeat (the same record twice in a file, the
same file twice, the same record in two overlapping exports) must give the same uid.

A *placeholder* id is never used: empty or blank, only zeros and separators (`0`, `-`,
`00000000-0000-0000-0000-000000000000`, `{0000…}`), `-1`, `null`, `none`, `nil`, `n/a`,
`undefined`, `unknown` (`loaders.base.is_placeholder_id`). Such a record takes the raw-text
uid: only a byte-identical record is its duplicate.

| source | `event_uid` from | duplicate when | why |
|---|---|---|---|
"""

_IDENTITY = [
    ("k8s_audit",
     "`auditID`, `verb`, `requestURI`, `user.username`, `impersonatedUser.username`, "
     "`requestReceivedTimestamp` (else v1beta1 `timestamp`) joined by `\\x1f` "
     "(`k8s_audit.details.request_key`); raw text for a missing or placeholder `auditID`",
     "another stage of the same request (same key) — the most complete stage is kept, the "
     "others are counted as duplicates, in the file and in the store; or the same record again",
     "the API server writes the key's fields unchanged in every stage of a request; only "
     "`stage`, `stageTimestamp` (never before `requestReceivedTimestamp`) and the response "
     "change (checked on the falco fixture and synthetic_multistage). An `auditID` reused by a "
     "shipper or test pipeline for other verbs, URIs, users or times is other requests (falco "
     "line 52). Timestamps are compared as written"),
    ("k8s_container", "raw text (the CRI/docker line with its nanosecond timestamp)",
     "the same line again (e.g. read through /var/log/containers and /var/log/pods)",
     "lines carry no id; the timestamp has nanoseconds, so distinct lines differ"),
    ("k8s_events",
     "`metadata.uid:resourceVersion`; without a resourceVersion `uid::count:time` (time: the "
     "latest observation); raw text for a missing or placeholder uid",
     "the same version of the event again (two exports, ADDED and DELETED in a watch)",
     "the API server updates a repeating event in place (higher count, new resourceVersion): "
     "each update is its own record"),
    ("linux_auditd",
     "`node:time:serial` (+ `#N` late fragment, `~nostampN` record without a stamp); without "
     "`node=` the event's text is added",
     "the same assembled event again (same host, time and serial; rotated or overlapping "
     "logs)",
     "the serial is unique per boot and host only: time + serial collide across hosts, so "
     "without node= the text tells them apart"),
    ("linux_auth", "`time|line#N`, N numbering identical consecutive lines of a file",
     "the same line at the same place of a run of repeats (the file again, an overlapping "
     "copy)", "syslog has no id and second precision: identical lines in one second are "
     "separate events"),
    ("linux_syslog",
     "syslog text: `time|line#N` as `linux_auth`; journal entries (`-o json`, `-o export`): "
     "`__CURSOR`",
     "the same line at the same place of a run of repeats; the same journal entry again, in "
     "either machine form (a JSON and an export dump of one journal agree)",
     "the cursor names one entry of one journal file for good; syslog text has no id"),
    ("mks_cluster",
     "`task id:status:updated_at`; raw text for a missing or placeholder id",
     "the same task state again (overlapping exports)",
     "one task listed at two moments (IN_PROGRESS, then DONE) is two records"),
    ("openstack_cadf",
     "`id|eventTime|action|outcome`; raw text for a missing or placeholder id",
     "the same CADF event again, bare or in any envelope",
     "keystonemiddleware writes two events per call with one id (pending, then the outcome)"),
    ("selectel_audit",
     "`event_id|event_saved_time` in epoch ms (`event_id` alone without a saved time); raw "
     "text for a missing or placeholder `event_id`, on both paths",
     "the same event again (overlapping exports, API pages with nanosecond times)",
     "`event_id` is the service's unique id; ms rounding makes export and API agree"),
    ("selectel_auth", "raw text (the CSV row or JSON object)",
     "an identical row (same time, user, address, result…)",
     "rows carry no id; two identical logins in one minute of a minute-precision export are "
     "indistinguishable and count once (a known limit)"),
    ("windows_events",
     "`computer\\x1fchannel\\x1fEventRecordID\\x1ftime` (casefolded names); raw text "
     "without a record id, computer or channel",
     "the same record again (the same .evtx twice, an export of the same channel)",
     "EventRecordID is a per-channel, per-computer counter that restarts when the log is "
     "cleared: the time tells restarts apart"),
]


def _row(col: Column) -> str:
    cells = (f"`{col.name}`", str(col.type), col.meaning, col.ecs or "—", col.ocsf or "—")
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render() -> str:
    """The whole SCHEMA.md text."""
    out = [_HEAD.format(categories=", ".join(f"`{c}`" for c in sorted(CATEGORIES)),
                        outcomes=", ".join(f"`{o}`" for o in sorted(OUTCOMES)))]
    out.extend(_row(c) for c in CORE_COLUMNS)
    for loader in loaders.LOADERS.values():
        out.append(f"\n## `{loader.name}` — {loader.description}\n")
        out.append(f"Reads: {loader.reads}. One counted record is one {loader.record}.\n")
        if loader.extra_columns:
            out.append("| column | type | meaning | ECS | OCSF |\n|---|---|---|---|---|")
            out.extend(_row(c) for c in loader.extra_columns)
    out.append(_IDENTITY_HEAD.rstrip("\n"))
    documented = {name for name, *_ in _IDENTITY}
    if documented != set(loaders.LOADERS):
        raise RuntimeError(f"record identity undocumented for {set(loaders.LOADERS) - documented}")
    for name, uid, duplicate, why in _IDENTITY:
        cells = (f"`{name}`", uid, duplicate, why)
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
