"""Login analytics over every source that records authentication.

Each detector is written from the technique and from what normal sign-in behaviour looks
like, not from any one data set; thresholds are parameters whose defaults are explained in
docs/DETECTIONS.md. All of them read the ``logins`` table of :mod:`analysis.logins` (built
once per run), whose features use only what happened before each attempt.

==========================  ===================================================  =========
detector                    fires on                                             ATT&CK
==========================  ===================================================  =========
brute_force                 many failures for one principal in a burst           T1110.001
password_spray              failures for many principals from one address        T1110.003
success_after_failures      a success right after such failures                  T1110
new_address                 success from an address the principal never used     T1078
new_user_agent              success with a client family new to the principal    T1078
unusual_hour                success at an hour the principal has never signed in T1078
risky_signin                one success with several of those signals at once    T1078
shared_new_address          an address new to the organisation used by several   T1078
                            principals within a day
dormant_account             success after a long silence                         T1078
first_seen_privileged       a principal never seen before acting with privileges T1078
==========================  ===================================================  =========
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import pandas as pd

from analysis.detect.base import Context, Detector, Finding, Param, Severity, register
from analysis.logins import AUTH_LOG_SQL, LOGIN_SOURCES, build_logins, in_scope_sql

HUMAN_KINDS = ("user", "service")
MAX_EVIDENCE = 200


def logins(ctx: Context) -> None:
    """Build the ``logins`` table once per run."""
    ctx.shared("logins", lambda: _done(build_logins, ctx.con, ctx.baseline_condition()))


def _done(build: Any, *args: Any) -> bool:
    build(*args)
    return True


def _ts(value: Any) -> datetime:
    return pd.Timestamp(value).to_pydatetime()


def _uids(*groups: Iterable[Any]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for group in groups:
        for item in group:
            if isinstance(item, str):
                out[item] = None
            elif item is not None and item is not pd.NA and not (
                    isinstance(item, float) and item != item):
                for sub in item:
                    out[str(sub)] = None
    return tuple(list(out)[:MAX_EVIDENCE])


def _list(value: Any) -> list[Any]:
    """A DuckDB list cell as a Python list ([] for null)."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return []
    return list(value)


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}es" if word.endswith(("s", "ss", "sh", "ch", "x")) else f"{n} {word}s"


def _minutes(first: Any, last: Any) -> str:
    m = max(0.0, (pd.Timestamp(last) - pd.Timestamp(first)).total_seconds() / 60)
    return f"{m:.0f} minutes" if m >= 1.5 else "under 2 minutes"


def _channels(values: Sequence[str]) -> str:
    return ", ".join(sorted(set(values)))


def follow_on(ctx: Context, principal: str, ip: str | None, start: Any,
              hours: int = 12) -> list[str]:
    """Event ids of the principal's activity from the address in the hours after ``start``
    (what the responder will want next to a suspicious sign-in)."""
    if ip is None:
        return []
    ctx.shared("activity", lambda: _done(_build_activity, ctx))
    rows = ctx.con.execute(
        "SELECT event_uid FROM activity WHERE principal = ? AND src_ip = ? AND ts >= ? "
        "AND ts < ? + (? * INTERVAL 1 HOUR) ORDER BY ts LIMIT ?",
        [principal, ip, start, start, hours, MAX_EVIDENCE]).fetchall()
    return [r[0] for r in rows]


def _build_activity(ctx: Context) -> None:
    """Table ``activity``: in-window events from the addresses sign-in detectors may ask
    about (new to a principal, or failing), with their principal; one scan per run."""
    logins(ctx)
    ctx.con.execute(f"""
    CREATE OR REPLACE TEMP TABLE activity AS
    SELECT p.principal, e.src_ip, e.timestamp AS ts, e.event_uid
    FROM events e JOIN principals p ON p.user = e.user AND p.source = e.source
         AND p.host IS NOT DISTINCT FROM e.host
         AND p.subject_type IS NOT DISTINCT FROM e.selectel_subject_type
    WHERE e.src_ip IN (SELECT DISTINCT src_ip FROM logins
                       WHERE (new_address OR result = 'failure') AND {in_scope_sql()})""")


class LoginDetector(Detector):
    """Shared attributes of the login detectors."""

    kind = "analytic"
    sources = LOGIN_SOURCES
    needs = frozenset({"timestamp", "source", "action", "outcome", "user", "src_ip",
                       "user_agent", "host", "event_uid"})

    def frame(self, ctx: Context, where: str) -> pd.DataFrame:
        logins(ctx)
        return ctx.con.sql(
            f"SELECT * FROM logins WHERE {in_scope_sql()} AND ({where}) ORDER BY ts, event_uid"
        ).df()


def _bursts(frame: pd.DataFrame, key: str, gap_minutes: float) -> Iterable[pd.DataFrame]:
    """Groups of rows of one ``key`` value whose consecutive gaps are at most ``gap``."""
    for _, rows in frame.sort_values("ts").groupby(key, sort=True):
        gaps = rows["ts"].diff().dt.total_seconds().fillna(0) > gap_minutes * 60
        for _, burst in rows.groupby(gaps.cumsum()):
            yield burst


def _failure_rate(ctx: Context, column: str, value: str, before: Any) -> tuple[float, float]:
    """Failures per day of a principal (or address) before a time, and the days observed."""
    row = ctx.con.execute(
        f"SELECT coalesce(sum(weight) FILTER (WHERE result = 'failure'), 0)::BIGINT, "
        f"date_diff('second', min(ts), ?) / 86400.0 FROM logins "
        f"WHERE {column} = ? AND ts < ? AND in_baseline", [before, value, before]).fetchall()[0]
    failures, days = row[0] or 0, row[1] or 0.0
    return (failures / days if days >= 1 else float(failures)), days


@register
class BruteForce(LoginDetector):
    name = "brute_force"
    version = "1"
    title = "Brute force against one account"
    description = ("Many failed sign-ins for one principal within a burst (failures no more "
                   "than `gap_minutes` apart), from any number of addresses.")
    attack = ("T1110.001",)
    params: ClassVar[Mapping[str, Param]] = {
        "min_failures": Param(10, "failures in one burst; people mistype a password 2-3 "
                                  "times, lockout policies start at 5-10"),
        "gap_minutes": Param(30.0, "a burst ends after this long without a failure"),
    }

    def run(self, ctx: Context) -> Iterable[Finding]:
        fails = self.frame(ctx, "result = 'failure'")
        n_min, gap = ctx.param(self, "min_failures"), ctx.param(self, "gap_minutes")
        for burst in _bursts(fails, "principal", gap):
            attempts = int(burst["weight"].sum())  # a line repeated N times is N attempts
            if attempts < n_min:
                continue
            principal = burst["principal"].iloc[0]
            first, last = burst["ts"].min(), burst["ts"].max()
            rate, days = _failure_rate(ctx, "principal", principal, first)
            ips = sorted(burst["src_ip"].dropna().unique())
            normal = (f"its usual failure rate is {rate:.1f} a day over {days:.0f} days"
                      if days >= 1 else "it has no earlier history to compare with")
            severity: Severity = "high" if attempts >= 5 * n_min else "medium"
            yield Finding(
                self.name, self.version, f"Brute force against {principal}",
                f"{attempts} failed sign-ins for {principal} from "
                f"{_plural(len(ips), 'address')} in {_minutes(first, last)} "
                f"({_channels(burst['channel'])}); {normal}.",
                severity, min(1.0, attempts / (5 * n_min)), "principal", principal,
                _ts(first), _ts(last), _uids(burst["event_uid"], burst["also"]),
                self.attack, "Check whether any attempt succeeded (success_after_failures); "
                "lock or reset the account if so, and block the addresses.",
                tuple(("ip", ip) for ip in ips[:20]))


@register
class PasswordSpray(LoginDetector):
    name = "password_spray"
    version = "1"
    title = "Password spraying from one address"
    description = ("Failed sign-ins for many distinct principals from one address within a "
                   "burst. Severity rises with how many targets are real accounts (have "
                   "signed in successfully before): an attacker who knows the account names "
                   "is targeting this organisation; dictionary names are internet noise.")
    attack = ("T1110.003",)
    params: ClassVar[Mapping[str, Param]] = {
        "min_principals": Param(5, "distinct principals failing from one address; a shared "
                                   "office address rarely sees five people mistype in a burst"),
        "gap_minutes": Param(60.0, "a burst ends after this long without a failure from "
                                   "the address (sprays go slowly to stay under lockouts)"),
        "min_known": Param(2, "targets that are real accounts for medium severity"),
    }

    def run(self, ctx: Context) -> Iterable[Finding]:
        fails = self.frame(ctx, "result = 'failure' AND src_ip IS NOT NULL")
        k, gap = ctx.param(self, "min_principals"), ctx.param(self, "gap_minutes")
        for burst in _bursts(fails, "src_ip", gap):
            targets = sorted(burst["principal"].unique())
            if len(targets) < k:
                continue
            ip = burst["src_ip"].iloc[0]
            first, last = burst["ts"].min(), burst["ts"].max()
            known = [p for p in targets if burst.loc[burst["principal"] == p,
                                                     "prior_successes"].max() > 0]
            severity: Severity = "medium" if len(known) >= ctx.param(self, "min_known") \
                else "low"
            if len(known) >= 2 * ctx.param(self, "min_known") and len(targets) >= 2 * k:
                severity = "high"
            yield Finding(
                self.name, self.version, f"Password spraying from {ip}",
                f"{int(burst['weight'].sum())} failed sign-ins for {len(targets)} principals "
                f"from {ip} in "
                f"{_minutes(first, last)} ({_channels(burst['channel'])}); "
                f"{len(known)} of them are real accounts with earlier successful sign-ins"
                + (f" ({', '.join(known[:8])})" if known else "") + ".",
                severity, min(1.0, len(targets) / (4 * k) + len(known) / (2 * k)), "ip", ip,
                _ts(first), _ts(last), _uids(burst["event_uid"], burst["also"]), self.attack,
                "Block the address; look for successful sign-ins from it or its network "
                "(success_after_failures) and reset the passwords of the real accounts "
                "it tried.",
                tuple(("principal", p) for p in targets[:50]))


@register
class SuccessAfterFailures(LoginDetector):
    name = "success_after_failures"
    version = "1"
    title = "Successful sign-in after failures"
    description = ("A successful sign-in for a principal that, in the preceding window, had "
                   "several failures itself, or came from an address that failed for "
                   "several principals: a guessed or sprayed password that worked.")
    attack = ("T1110", "T1078")
    params: ClassVar[Mapping[str, Param]] = {
        "window_minutes": Param(60.0, "how far back failures count"),
        "min_own_failures": Param(3, "the principal's own failures before the success"),
        "min_address_principals": Param(3, "principals that failed from the same address"),
    }

    def run(self, ctx: Context) -> Iterable[Finding]:
        logins(ctx)
        w = float(ctx.param(self, "window_minutes"))
        own, by_ip = ctx.param(self, "min_own_failures"), ctx.param(self, "min_address_principals")
        counts = failure_counts(ctx, w)
        seconds = max(1, int(w * 60))
        # candidates by window counts (linear), evidence joined for candidates only
        rows = ctx.con.execute(f"""
        WITH s AS (
          SELECT l.* FROM logins l JOIN {counts} c USING (event_uid)
          WHERE l.result = 'success' AND l.kind IN ('user', 'service')
            AND (c.own_failures >= ? OR c.address_principals >= ?) AND {in_scope_sql('l')}
          -- one finding per principal and address: its first qualifying sign-in
          QUALIFY row_number() OVER (PARTITION BY l.principal, l.src_ip
                                     ORDER BY l.ts, l.event_uid) = 1
        ),
        -- failures in the window before each candidate: equi-joins on (key, time bucket of
        -- the window's length) for this bucket and the one before, so a busy address or
        -- principal joins only its failures of two windows, never its whole history
        sb AS (SELECT event_uid, principal, src_ip, ts,
                      CAST(floor(epoch(ts) / {seconds}) AS BIGINT) AS b FROM s),
        f AS (SELECT event_uid, principal, src_ip, ts, weight,
                     CAST(floor(epoch(ts) / {seconds}) AS BIGINT) AS b
              FROM logins WHERE result = 'failure'),
        own_pairs AS (
          SELECT sb.event_uid AS sid, f.event_uid, f.ts, f.src_ip, f.weight FROM sb JOIN f
            ON f.principal = sb.principal AND f.b = sb.b
          WHERE f.ts < sb.ts AND f.ts >= sb.ts - INTERVAL {seconds} SECOND
          UNION ALL
          SELECT sb.event_uid, f.event_uid, f.ts, f.src_ip, f.weight FROM sb JOIN f
            ON f.principal = sb.principal AND f.b = sb.b - 1
          WHERE f.ts < sb.ts AND f.ts >= sb.ts - INTERVAL {seconds} SECOND
        ),
        addr_pairs AS (
          SELECT sb.event_uid AS sid, f.event_uid, f.ts, f.principal FROM sb JOIN f
            ON f.src_ip = sb.src_ip AND f.b = sb.b
          WHERE f.ts < sb.ts AND f.ts >= sb.ts - INTERVAL {seconds} SECOND
          UNION ALL
          SELECT sb.event_uid, f.event_uid, f.ts, f.principal FROM sb JOIN f
            ON f.src_ip = sb.src_ip AND f.b = sb.b - 1
          WHERE f.ts < sb.ts AND f.ts >= sb.ts - INTERVAL {seconds} SECOND
        ),
        own AS (SELECT sid AS event_uid, list(event_uid ORDER BY ts)[1:{MAX_EVIDENCE}] AS uids,
                       sum(weight)::BIGINT AS n, list(DISTINCT src_ip) AS ips, min(ts) AS first
                FROM own_pairs GROUP BY sid),
        addr AS (SELECT sid AS event_uid,
                        list(event_uid ORDER BY ts)[1:{MAX_EVIDENCE}] AS uids,
                        count(DISTINCT principal) AS principals, min(ts) AS first
                 FROM addr_pairs GROUP BY sid)
        SELECT s.event_uid, s.ts, s.principal, s.src_ip, s.channel, s.also,
               own.uids AS own_uids, own.ips AS own_ips, addr.uids AS ip_uids,
               coalesce(addr.principals, 0) AS ip_principals,
               least(own.first, addr.first) AS first_fail, coalesce(own.n, 0) AS own_n
        FROM s LEFT JOIN own USING (event_uid) LEFT JOIN addr USING (event_uid)
        WHERE coalesce(own.n, 0) >= ? OR coalesce(addr.principals, 0) >= ?
        ORDER BY s.ts, s.event_uid""", [own, by_ip, own, by_ip]).df()
        seen: set[tuple[str, str]] = set()
        for r in rows.itertuples():
            key = (r.principal, r.src_ip)
            if key in seen:  # one finding per principal and address in a run
                continue
            seen.add(key)
            own_uids, ip_uids = _list(r.own_uids), _list(r.ip_uids)
            own_n = int(r.own_n)
            parts = []
            if own_n:
                parts.append(f"{own_n} failed sign-ins for {r.principal} from "
                             f"{_plural(len(_list(r.own_ips)), 'address')}")
            if r.ip_principals >= by_ip:
                parts.append(f"failures for {r.ip_principals} principals from {r.src_ip}")
            critical = own_n >= own and r.ip_principals >= by_ip
            yield Finding(
                self.name, self.version, f"{r.principal} signed in after failures",
                f"{r.principal} signed in successfully from {r.src_ip} ({r.channel}) at "
                f"{pd.Timestamp(r.ts):%Y-%m-%d %H:%M:%S} UTC after "
                + " and ".join(parts) + f" in the preceding {w:.0f} minutes.",
                "critical" if critical else "high", 0.95 if critical else 0.8,
                "principal", r.principal, _ts(r.first_fail), _ts(r.ts),
                _uids([r.event_uid], [r.also], own_uids, ip_uids,
                      follow_on(ctx, r.principal, r.src_ip, r.ts)),
                self.attack, "Treat the account as compromised: revoke its sessions, "
                "tokens and API keys, reset its password and second factor, and review "
                "everything it did from this address (follow-on evidence).",
                (("ip", r.src_ip),) if r.src_ip else ())


def failure_counts(ctx: Context, minutes: float) -> str:
    """Name of a table (event_uid, own_failures, address_failures, address_principals): for
    every sign-in, the failures of its principal, and the failures and failing principals
    from its address, in the ``minutes`` up to it — window
    functions over the sign-in table, linear in its size (built once per window length)."""
    name = f"failure_counts_{int(minutes * 60)}"

    def build() -> bool:
        window = f"RANGE BETWEEN INTERVAL {int(minutes * 60)} SECOND PRECEDING AND CURRENT ROW"
        ctx.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {name} AS
        SELECT event_uid,
               coalesce(sum(weight) FILTER (WHERE result = 'failure')
                 OVER (PARTITION BY principal ORDER BY ts {window}), 0)::BIGINT AS own_failures,
               CASE WHEN src_ip IS NULL THEN 0 ELSE coalesce(sum(weight)
                 FILTER (WHERE result = 'failure')
                 OVER (PARTITION BY src_ip ORDER BY ts {window}), 0)::BIGINT
               END AS address_failures,
               CASE WHEN src_ip IS NULL THEN 0 ELSE
                 count(DISTINCT CASE WHEN result = 'failure' THEN principal END)
                 OVER (PARTITION BY src_ip ORDER BY ts {window}) END AS address_principals
        FROM logins""")
        return True

    logins(ctx)
    ctx.shared(name, build)
    return name


def _history_note(row: Any, min_days: float) -> str:
    if row.prior_days < min_days:
        return (f" {row.principal} has only {_plural(int(row.prior_days), 'earlier day')} "
                "of sign-ins, so this is judged cautiously.")
    return ""


def _signin_candidates(det: LoginDetector, ctx: Context, where: str) -> pd.DataFrame:
    return det.frame(ctx, f"result = 'success' AND kind IN ('user', 'service') AND ({where})")


MIN_BASELINE_DAYS = Param(3.0, "days of stored sign-ins before an event needed to call "
                               "anything new (a store's first days see everything first)")


@register
class NewAddress(LoginDetector):
    name = "new_address"
    version = "1"
    title = "Sign-in from an address new to the principal"
    description = ("A successful sign-in from an address the principal never used before. "
                   "On its own a weak signal (travel, a new phone, a new provider): info "
                   "when the address is the organisation's (others signed in from it "
                   "before) or in a network the principal used, low otherwise.")
    attack = ("T1078",)
    params: ClassVar[Mapping[str, Param]] = {"min_baseline_days": MIN_BASELINE_DAYS,
              "min_history_days": Param(2, "days with earlier sign-ins the principal needs "
                                           "before a new address means anything")}

    def run(self, ctx: Context) -> Iterable[Finding]:
        base = ctx.param(self, "min_baseline_days")
        frame = _signin_candidates(self, ctx, f"new_address AND baseline_days >= {float(base)}")
        for r in frame.itertuples():
            known_net = not r.new_network
            severity: Severity = "info" if r.org_known_address or known_net else "low"
            if r.prior_days < ctx.param(self, "min_history_days"):
                severity = "info"
            where = ("an address others in the organisation used before" if
                     r.org_known_address else "in a network it used before" if known_net
                     else "an address and network new to the whole store")
            yield Finding(
                self.name, self.version, f"{r.principal} from a new address {r.src_ip}",
                f"First successful sign-in of {r.principal} from {r.src_ip} ({r.channel}), "
                f"{where}; {int(r.prior_successes)} earlier successful sign-ins on "
                f"{int(r.prior_days)} days came from other addresses."
                + _history_note(r, ctx.param(self, "min_history_days")),
                severity, 0.2 if severity == "info" else 0.4, "principal", r.principal,
                _ts(r.ts), _ts(r.ts),
                _uids([r.event_uid], [r.also], follow_on(ctx, r.principal, r.src_ip, r.ts)),
                self.attack, "Confirm with the person (travel, new device) or its owner.",
                (("ip", r.src_ip),))


@register
class NewUserAgent(LoginDetector):
    name = "new_user_agent"
    version = "1"
    title = "Sign-in with a client new to the principal"
    description = ("A successful sign-in with a client family (browser and OS, or tool; "
                   "versions ignored) the principal never used on this channel. Medium when "
                   "it is a scripting tool where the principal only ever used a browser.")
    attack = ("T1078",)
    params: ClassVar[Mapping[str, Param]] = {"min_baseline_days": MIN_BASELINE_DAYS,
              "min_history_days": Param(2, "days with earlier sign-ins needed")}

    def run(self, ctx: Context) -> Iterable[Finding]:
        base = ctx.param(self, "min_baseline_days")
        frame = _signin_candidates(self, ctx, f"new_agent AND baseline_days >= {float(base)}")
        for r in frame.itertuples():
            before = ctx.con.execute(
                "SELECT list(DISTINCT agent_family), bool_or(agent_is_tool) FROM logins "
                "WHERE principal = ? AND channel = ? AND ts < ? AND result = 'success' "
                "AND in_baseline AND agent_family IS NOT NULL",
                [r.principal, r.channel, r.ts]).fetchall()[0]
            families, any_tool = sorted(before[0] or []), bool(before[1])
            tool_for_browser = bool(r.agent_is_tool) and not any_tool
            severity: Severity = "medium" if tool_for_browser else "low"
            if r.prior_days < ctx.param(self, "min_history_days"):
                severity = "info"
            yield Finding(
                self.name, self.version, f"{r.principal} with a new client: {r.agent_family}",
                f"{r.principal} signed in ({r.channel}) from {r.src_ip} with "
                f"{r.agent_family}" + (" (a scripting tool)" if tool_for_browser else "")
                + f"; before, only {', '.join(families)}."
                + _history_note(r, ctx.param(self, "min_history_days")),
                severity, 0.6 if tool_for_browser else 0.35, "principal", r.principal,
                _ts(r.ts), _ts(r.ts), _uids([r.event_uid], [r.also]), self.attack,
                "Ask the person whether they use this client.",
                (("ip", r.src_ip),) if r.src_ip else ())


@register
class UnusualHour(LoginDetector):
    name = "unusual_hour"
    version = "1"
    title = "Sign-in at an hour the principal never signs in"
    description = ("A successful sign-in with no earlier sign-in of the principal within "
                   "an hour of the same time of day (UTC), given enough history.")
    attack = ("T1078",)
    params: ClassVar[Mapping[str, Param]] = {"min_baseline_days": MIN_BASELINE_DAYS,
              "min_history_days": Param(5, "days with sign-ins before the hours are known"),
              "min_history_signins": Param(10, "earlier successful sign-ins needed")}

    def run(self, ctx: Context) -> Iterable[Finding]:
        frame = _signin_candidates(self, ctx, unusual_hour_sql(ctx, self))
        for r in frame.itertuples():
            yield Finding(
                self.name, self.version, f"{r.principal} at an unusual hour",
                f"{r.principal} signed in ({r.channel}) from {r.src_ip} at "
                f"{pd.Timestamp(r.ts):%H:%M} UTC; none of its {int(r.prior_successes)} "
                f"earlier sign-ins on {int(r.prior_days)} days was within an hour of that "
                "time of day.", "low", 0.3, "principal", r.principal, _ts(r.ts), _ts(r.ts),
                _uids([r.event_uid], [r.also]), self.attack,
                "Check whether the person was working then (on call, travel).",
                (("ip", r.src_ip),) if r.src_ip else ())


def unusual_hour_sql(ctx: Context, det: type[Detector] | Detector) -> str:
    return (f"near_hour = 0 AND prior_days >= {int(ctx.param(det, 'min_history_days'))} "
            f"AND prior_successes >= {int(ctx.param(det, 'min_history_signins'))} "
            f"AND baseline_days >= {float(ctx.param(det, 'min_baseline_days'))}")


@register
class RiskySignin(LoginDetector):
    name = "risky_signin"
    version = "1"
    title = "Sign-in with several risk signals at once"
    description = ("One successful sign-in that combines independent signals: an address "
                   "new to the principal and to the organisation, a new client, an hour "
                   "never worked, failures just before, the same new address used by other "
                   "principals. Each alone is common; together they are how a stolen "
                   "credential looks. Two signals: medium; three or more: high.")
    attack = ("T1078",)
    params: ClassVar[Mapping[str, Param]] = {"min_baseline_days": MIN_BASELINE_DAYS,
              "min_history_days": Param(5, "days with sign-ins before the hours are known"),
              "min_history_signins": Param(10, "earlier successful sign-ins needed"),
              "failure_window_minutes": Param(60.0, "failures this long before count"),
              "shared_window_hours": Param(24.0, "others' use of the address this close "
                                                 "counts")}

    def run(self, ctx: Context) -> Iterable[Finding]:
        logins(ctx)
        base = float(ctx.param(self, "min_baseline_days"))
        fw = float(ctx.param(self, "failure_window_minutes"))
        sw = float(ctx.param(self, "shared_window_hours"))
        hour = unusual_hour_sql(ctx, self)
        counts = failure_counts(ctx, fw)
        frame = ctx.con.execute(f"""
        SELECT l.*, ({hour}) AS odd_hour,
               greatest(c.own_failures, c.address_failures) AS failures_before,
               (SELECT count(DISTINCT o.principal) FROM logins o WHERE o.result = 'success'
                  AND o.src_ip = l.src_ip AND o.principal <> l.principal
                  AND o.new_address AND NOT o.org_known_address
                  AND abs(date_diff('second', o.ts, l.ts)) <= ? * 3600) AS others_new
        FROM logins l JOIN {counts} c USING (event_uid)
        WHERE l.result = 'success' AND l.kind IN ('user', 'service') AND {in_scope_sql('l')}
          AND l.new_address AND NOT l.org_known_address AND l.baseline_days >= ?
        ORDER BY l.ts""", [sw, base]).df()
        for r in frame.itertuples():
            signals = ["an address new to it and to the organisation"]
            if r.new_agent:
                signals.append(f"a new client ({r.agent_family})")
            if r.odd_hour:
                signals.append(f"an hour it never signs in ({pd.Timestamp(r.ts):%H:%M} UTC)")
            if r.failures_before:
                signals.append(f"{_plural(int(r.failures_before), 'failed sign-in')} of the "
                               f"principal or from the address in the {fw:.0f} minutes before")
            if r.others_new:
                signals.append(f"{_plural(int(r.others_new), 'other principal')} first "
                               f"signing in from the same address within {sw:.0f} hours")
            if len(signals) < 2:
                continue
            severity: Severity = "high" if len(signals) >= 3 else "medium"
            yield Finding(
                self.name, self.version, f"Risky sign-in of {r.principal} from {r.src_ip}",
                f"{r.principal} signed in ({r.channel}) from {r.src_ip} with "
                f"{len(signals)} risk signals: " + "; ".join(signals) + ".",
                severity, min(1.0, 0.25 * len(signals)), "principal", r.principal,
                _ts(r.ts), _ts(r.ts),
                _uids([r.event_uid], [r.also], follow_on(ctx, r.principal, r.src_ip, r.ts)),
                self.attack, "Confirm with the person at once; if it was not them, revoke "
                "the account's sessions and keys and review its follow-on activity.",
                (("ip", r.src_ip),))


@register
class SharedNewAddress(LoginDetector):
    name = "shared_new_address"
    version = "1"
    title = "One new address signing in as several principals"
    description = ("An address the organisation never used signs in successfully as two or "
                   "more principals within a window, new to each of them: one actor holding "
                   "several credentials. A new office or VPN egress looks alike but is "
                   "adopted by many people at once; the finding lists them.")
    attack = ("T1078",)
    params: ClassVar[Mapping[str, Param]] = {"min_baseline_days": MIN_BASELINE_DAYS,
              "min_principals": Param(2, "principals for whom the address is new"),
              "window_hours": Param(24.0, "how close together the sign-ins are"),
              "max_principals": Param(10, "above this many it looks like new shared "
                                          "infrastructure: low severity")}

    def run(self, ctx: Context) -> Iterable[Finding]:
        logins(ctx)
        base = float(ctx.param(self, "min_baseline_days"))
        frame = ctx.con.execute(f"""
        SELECT * FROM logins
        WHERE result = 'success' AND kind IN ('user', 'service') AND new_address
          AND NOT org_known_address AND baseline_days >= ? AND src_ip IS NOT NULL
          AND {in_scope_sql()}
        ORDER BY ts""", [base]).df()
        k, top = ctx.param(self, "min_principals"), ctx.param(self, "max_principals")
        for burst in _bursts(frame, "src_ip", float(ctx.param(self, "window_hours")) * 60):
            who = list(dict.fromkeys(burst["principal"]))
            if len(who) < k:
                continue
            ip = burst["src_ip"].iloc[0]
            first, last = burst["ts"].min(), burst["ts"].max()
            severity: Severity = ("low" if len(who) > top else
                                  "high" if len(who) >= 3 else "medium")
            follow = [follow_on(ctx, p, ip, t) for p, t in zip(burst["principal"],
                                                               burst["ts"], strict=True)]
            yield Finding(
                self.name, self.version, f"{ip} signed in as {len(who)} principals",
                f"{ip}, never used in the organisation before, signed in successfully as "
                f"{len(who)} principals ({', '.join(who)}) within "
                f"{_minutes(first, last)} ({_channels(burst['channel'])}); it was new to "
                "each of them.", severity, min(1.0, 0.3 * len(who)), "ip", ip, _ts(first),
                _ts(last), _uids(burst["event_uid"], burst["also"], *follow), self.attack,
                "Find how the address obtained each credential; revoke them all.",
                tuple(("principal", p) for p in who))


@register
class DormantAccount(LoginDetector):
    name = "dormant_account"
    version = "1"
    title = "Dormant account signs in"
    description = ("A successful sign-in of a principal whose previous successful sign-in "
                   "is long ago: forgotten accounts are a favourite foothold.")
    attack = ("T1078",)
    params: ClassVar[Mapping[str, Param]] = {
        "dormant_days": Param(30.0, "silence before an account counts as dormant; a month "
                                    "covers holidays")}

    def run(self, ctx: Context) -> Iterable[Finding]:
        logins(ctx)
        days = float(ctx.param(self, "dormant_days"))
        frame = ctx.con.execute(f"""
        WITH s AS (SELECT *, lag(ts) OVER (PARTITION BY principal ORDER BY ts) AS previous
                   FROM logins WHERE result = 'success' AND in_baseline)
        SELECT * FROM s WHERE previous IS NOT NULL AND kind IN ('user', 'service')
          AND date_diff('second', previous, ts) >= ? * 86400 AND {in_scope_sql()}
        ORDER BY ts""", [days]).df()
        for r in frame.itertuples():
            silent = (pd.Timestamp(r.ts) - pd.Timestamp(r.previous)).days
            yield Finding(
                self.name, self.version, f"{r.principal} active again after {silent} days",
                f"{r.principal} signed in ({r.channel}) from {r.src_ip} after {silent} days "
                f"without a sign-in (previous: {pd.Timestamp(r.previous):%Y-%m-%d}).",
                "medium", 0.55, "principal", r.principal, _ts(r.ts), _ts(r.ts),
                _uids([r.event_uid], [r.also], follow_on(ctx, r.principal, r.src_ip, r.ts)),
                self.attack, "Confirm the account is still needed and its owner used it; "
                "disable accounts nobody owns.", (("ip", r.src_ip),) if r.src_ip else ())


# privileged actions, by source: what gives or uses power over other accounts or data
def _org_known(ctx: Context, ips: Sequence[str], before: Any) -> list[str]:
    """The addresses others signed in from successfully at least a day before ``before``."""
    if not ips:
        return []
    rows = ctx.con.execute(
        "SELECT DISTINCT src_ip FROM logins WHERE result = 'success' AND in_baseline "
        "AND src_ip IN (SELECT unnest(?)) AND ts <= ? - INTERVAL 1 DAY",
        [list(ips), before]).fetchall()
    return sorted(r[0] for r in rows)


_INTERNAL = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10"))


def _internal(ip: str) -> bool:
    """RFC 1918, loopback, link-local and unique-local addresses: the organisation's own
    networks (documentation ranges are not: Python calls them private, we do not)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in _INTERNAL)


def _known_note(known: Sequence[str], external: Sequence[str]) -> str:
    if not external:
        return ""
    if not known:
        return "; none of its public addresses was used in the organisation before"
    if len(known) == len(external):
        return "; all its public addresses are the organisation's (others signed in from them)"
    return f"; of its public addresses only {', '.join(known[:5])} were used by others before"


def privileged_sql(t: str) -> str:
    """SQL condition on an events relation aliased ``t``: a privileged action (what gives
    or uses power over other accounts or data)."""
    return f"""
({t}.category = 'access_management')
OR ({t}.source = 'k8s_audit' AND (
      {t}.k8s_resource = 'secrets' OR {t}.k8s_subresource IN ('exec', 'attach', 'token')
      OR ({t}.k8s_resource IN ('clusterrolebindings', 'rolebindings', 'clusterroles', 'roles')
          AND {t}.k8s_verb IN ('create', 'update', 'patch', 'delete'))
      OR {t}.k8s_privileged OR {t}.k8s_host_pid OR {t}.k8s_host_network
      OR {t}.k8s_host_mounts IS NOT NULL))
OR ({t}.source = 'windows_events' AND {t}.win_event_id = 4672)
OR ({t}.source IN {AUTH_LOG_SQL} AND {t}.action IN ('sudo', 'su', 'useradd', 'usermod',
                                                    'group_member_added'))
"""


@register
class FirstSeenPrivileged(LoginDetector):
    name = "first_seen_privileged"
    version = "1"
    title = "A principal never seen before acts with privileges"
    description = ("A principal with no earlier activity in the store whose first hours "
                   "include privileged actions (secrets, role bindings, exec into pods, "
                   "privileged pods, access management, sudo, special logon privileges). "
                   "Low for one kind of action; medium with several kinds or from a public "
                   "address the organisation never used; high with both. Only judged once "
                   "the store has enough history to say 'never seen'.")
    attack = ("T1078", "T1136")
    params: ClassVar[Mapping[str, Param]] = {"min_baseline_days": MIN_BASELINE_DAYS,
              "first_hours": Param(24.0, "how long after its first event actions count")}

    def run(self, ctx: Context) -> Iterable[Finding]:
        base = float(ctx.param(self, "min_baseline_days"))
        hours = float(ctx.param(self, "first_hours"))
        frame = ctx.con.execute(f"""
        WITH e AS (
          SELECT h.timestamp AS ts, h.event_uid, h.source, h.action, h.src_ip, p.principal,
                 p.kind, coalesce({privileged_sql('h')}, false) AS privileged
          FROM history h JOIN principals p ON p.user = h.user AND p.source = h.source
               AND p.host IS NOT DISTINCT FROM h.host
               AND p.subject_type IS NOT DISTINCT FROM h.selectel_subject_type
          WHERE h.timestamp IS NOT NULL AND {ctx.baseline_condition('h.timestamp')}
        ),
        firsts AS (SELECT principal, min(ts) AS first FROM e GROUP BY principal),
        store AS (SELECT min(ts) AS first FROM e)
        SELECT f.principal, any_value(e.kind) AS kind, f.first,
               list(e.event_uid ORDER BY e.ts) FILTER (WHERE e.privileged) AS uids,
               list(DISTINCT e.action) FILTER (WHERE e.privileged) AS actions,
               list(DISTINCT e.src_ip) FILTER (WHERE e.src_ip IS NOT NULL) AS ips,
               max(e.ts) FILTER (WHERE e.privileged) AS last,
               count(*) FILTER (WHERE e.privileged) AS n
        FROM firsts f CROSS JOIN store s
        JOIN e ON e.principal = f.principal AND e.ts < f.first + (? * INTERVAL 1 HOUR)
        WHERE date_diff('second', s.first, f.first) >= ? * 86400
          AND f.first >= coalesce((SELECT min(timestamp) FROM events), f.first)
          AND f.principal IN (SELECT p.principal FROM events ev JOIN principals p
                                ON p.user = ev.user AND p.source = ev.source)
        GROUP BY f.principal, f.first
        HAVING n > 0 AND any_value(e.kind) IN ('user', 'service')
        ORDER BY f.first""", [hours, base]).df()
        for r in frame.itertuples():
            actions = sorted(_list(r.actions))
            ips = sorted(_list(r.ips))
            external = [ip for ip in ips if not _internal(ip)]
            known = _org_known(ctx, external, r.first)
            level = 1 + (len(actions) >= 2) + (len(known) < len(external)) \
                - (bool(external) and len(known) == len(external))
            severity: Severity = ("info", "low", "medium", "high")[max(0, min(3, level))]
            yield Finding(
                self.name, self.version, f"New principal {r.principal} acts with privileges",
                f"{r.principal} appears for the first time at "
                f"{pd.Timestamp(r.first):%Y-%m-%d %H:%M:%S} UTC and within {hours:.0f} hours "
                f"performs {_plural(int(r.n), 'privileged action')} of "
                f"{_plural(len(actions), 'kind')} ({', '.join(actions[:8])})"
                + (f" from {', '.join(ips[:5])}" if ips else "")
                + _known_note(known, external) + ".",
                severity, min(1.0, 0.4 + 0.15 * len(actions)), "principal", r.principal,
                _ts(r.first), _ts(r.last), _uids(_list(r.uids)), self.attack,
                "Find who created this identity and why; if nobody can say, disable it and "
                "review what it touched.", tuple(("ip", ip) for ip in ips[:20]))
