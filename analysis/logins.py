"""Sign-ins from every source that records authentication, as one table with features.

One row per sign-in attempt: the panel's authorization log and the cloud audit log's
``user.login``, Keystone ``authenticate``, sshd (auth.log, and auditd ``USER_AUTH`` with an
address), Windows 4624/4625/4648, and Kubernetes requests by users and service accounts (one
row per principal, address, client and hour: the API server has no sign-in of its own).

The same attempt recorded by two sources (the panel log and the audit log; sshd and auditd)
counts once: the row of the lower-ranked source within five seconds is folded into the other,
its ``event_uid`` kept as further evidence (``also``).

Features are computed in DuckDB from what came *before* each attempt, never after:

``prior_successes``, ``prior_days``
    the principal's successful sign-ins before this one, and on how many distinct days;
``new_address``, ``new_network``
    first success of the principal from this address, or from its network (IPv4 /24, IPv6
    /48), while the principal has earlier successes;
``org_known_address``
    some principal signed in successfully from this address at least a day earlier;
``new_agent``, ``agent_family``, ``agent_is_tool``
    first success with this client family (browser and OS, or tool name, versions ignored);
``near_hour``
    the principal's earlier successes within an hour of this one's time of day (UTC;
    circular), zero meaning an hour they have never worked;
``baseline_days``
    how many days of any stored sign-ins precede this one (a store's first days cannot
    call anything new).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

import pandas as pd

# the sources that store sshd, sudo and su lines with one mapping (auth.log and whole
# syslog/journal): wherever analysis asks for one, it asks for both
AUTH_LOG_SOURCES: tuple[str, ...] = ("linux_auth", "linux_syslog")
AUTH_LOG_SQL = "(" + ", ".join(f"'{s}'" for s in AUTH_LOG_SOURCES) + ")"
# how many occurrences an event stands for (syslog's ``message repeated N times``): every
# count of events that feeds a threshold or a table sums this instead of counting rows
WEIGHT_SQL = "coalesce(repeat_count, 1)"

# (channel, rank) per source and action: rank decides which of two records of one attempt
# is kept (lower wins)
_CHANNEL_SQL = f"""
CASE
  WHEN source = 'selectel_auth' AND action = 'login' THEN 'panel'
  WHEN source = 'selectel_audit' AND action = 'user.login' THEN 'panel'
  WHEN source = 'openstack_cadf' AND action = 'authenticate' THEN 'keystone'
  WHEN source IN {AUTH_LOG_SQL} AND action IN ('ssh_login', 'ssh_invalid_user') THEN 'ssh'
  WHEN source = 'linux_auditd' AND action = 'USER_AUTH' AND src_ip IS NOT NULL THEN 'ssh'
  WHEN source = 'windows_events' AND win_event_id IN (4624, 4625, 4648)
       AND coalesce(win_logon_type, 3) NOT IN (0, 4, 5) THEN 'windows'
END"""
_RANK_SQL = f"""
CASE
  WHEN source IN ('selectel_auth', 'openstack_cadf', 'windows_events') THEN 1
  WHEN source IN {AUTH_LOG_SQL} AND action = 'ssh_login' THEN 1
  WHEN source = 'selectel_audit' THEN 2
  WHEN source IN {AUTH_LOG_SQL} THEN 2
  ELSE 3
END"""
_EVENT_LOGIN_SOURCES = ("selectel_auth", "selectel_audit", "openstack_cadf",
                        *AUTH_LOG_SOURCES, "linux_auditd", "windows_events")
LOGIN_SOURCES = frozenset({*_EVENT_LOGIN_SOURCES, "k8s_audit"})
DUPLICATE_SECONDS = 5  # syslog keeps whole seconds; PAM delays a failure by about 2 s
ORG_KNOWN_AFTER = "1 day"  # an address is the organisation's once used a day before


def network(ip: str | None) -> str | None:
    """The /24 of an IPv4 address, the /48 of an IPv6 one; None for no address.

    Example:
        >>> network("203.0.113.77"), network("2001:db8:4e57:10::1a")
        ('203.0.113.0/24', '2001:db8:4e57::/48')
    """
    return _network(ip) if ip else None


@lru_cache(maxsize=65536)
def _network(ip: str) -> str | None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


_TOOLS = [  # client families that are programs, not people at a browser
    ("kubectl", r"\bkubectl/"), ("terraform", r"terraform"), ("curl", r"\bcurl/"),
    ("wget", r"\bwget/"), ("python-requests", r"python-requests/"),
    ("python-urllib", r"python-urllib"), ("aiohttp", r"aiohttp/"), ("go-http", r"go-http-client"),
    ("openstacksdk", r"openstacksdk/"), ("openstack-cli", r"python-openstackclient"),
    ("keystoneauth", r"keystoneauth1/"), ("powershell", r"powershell|windowspowershell"),
    ("postman", r"postmanruntime"), ("httpie", r"httpie/"), ("java", r"\bjava/|okhttp"),
    ("node", r"\bnode-fetch|axios/|undici"), ("ruby", r"\bruby\b"), ("libwww", r"libwww-perl"),
    ("client-go", r"client-go|kube-controller|kubelet|kube-scheduler"),
]
_TOOL_RES = [(name, re.compile(rx, re.IGNORECASE)) for name, rx in _TOOLS]
_BROWSERS = [("edge", r"\bedg(?:e|a|ios)?/"), ("opera", r"\bopr/|opera"),
             ("yandex", r"yabrowser/"), ("firefox", r"firefox/|fxios/"),
             ("chrome", r"chrome/|crios/|chromium/"), ("safari", r"safari/")]
_BROWSER_RES = [(name, re.compile(rx, re.IGNORECASE)) for name, rx in _BROWSERS]
_OSES = [("windows", r"windows"), ("android", r"android"), ("ios", r"iphone|ipad|ios"),
         ("macos", r"mac os x|macintosh"), ("linux", r"linux|x11")]
_OS_RES = [(name, re.compile(rx, re.IGNORECASE)) for name, rx in _OSES]


def agent_family(agent: str | None) -> tuple[str | None, bool]:
    """A user agent reduced to its family, versions dropped, and whether it is a tool.

    Example:
        >>> agent_family("Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0")
        ('firefox on linux', False)
        >>> agent_family("kubectl/v1.29.3 (linux/amd64) kubernetes/6813625")
        ('kubectl', True)
    """
    return _agent_family(agent) if agent else (None, False)


@lru_cache(maxsize=65536)
def _agent_family(agent: str) -> tuple[str | None, bool]:
    text = agent.strip()
    if not text:
        return None, False
    for name, rx in _TOOL_RES:
        if rx.search(text):
            return name, True
    if text.lower().startswith("mozilla/"):
        browser = next((n for n, rx in _BROWSER_RES if rx.search(text)), "browser")
        os_name = next((n for n, rx in _OS_RES if rx.search(text)), "unknown os")
        return f"{browser} on {os_name}", False
    head = re.split(r"[/\s(;]", text, maxsplit=1)[0].lower()[:40]
    return (head or None), True


def _register_lookups(con: Any) -> None:
    ips = [r[0] for r in con.sql("SELECT DISTINCT src_ip FROM raw_logins "
                                 "WHERE src_ip IS NOT NULL").fetchall()]
    nets = pd.DataFrame({"ip": pd.Series(ips, dtype=object),  # noqa: F841
                         "network": pd.Series([network(i) for i in ips], dtype=object)})
    con.execute("CREATE OR REPLACE TABLE networks AS SELECT ip::VARCHAR AS ip, "
                "network::VARCHAR AS network FROM nets")
    agents = [r[0] for r in con.sql("SELECT DISTINCT user_agent FROM raw_logins "
                                    "WHERE user_agent IS NOT NULL").fetchall()]
    fams = [agent_family(a) for a in agents]
    ua = pd.DataFrame({"user_agent": pd.Series(agents, dtype=object),  # noqa: F841
                       "agent_family": pd.Series([f for f, _ in fams], dtype=object),
                       "agent_is_tool": pd.Series([t for _, t in fams], dtype=bool)})
    con.execute("CREATE OR REPLACE TABLE agents AS SELECT user_agent::VARCHAR AS user_agent, "
                "agent_family::VARCHAR AS agent_family, agent_is_tool::BOOLEAN AS "
                "agent_is_tool FROM ua")


def build_logins(con: Any, baseline: str = "TRUE") -> None:
    """Create table ``logins`` (one row per attempt, with features) in a connection that
    has the ``history``/``events`` views and the ``principals`` table.

    Args:
        baseline: SQL condition on ``history`` rows that baselines may learn from.
    """
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE raw_logins AS
    WITH base AS (
      SELECT event_uid, timestamp AS ts, source, action, user, host, selectel_subject_type,
             src_ip, user_agent, outcome, win_event_id, win_logon_type,
             {_CHANNEL_SQL} AS channel, {_RANK_SQL} AS rank, {WEIGHT_SQL} AS weight
      FROM history
      WHERE timestamp IS NOT NULL AND user IS NOT NULL
        AND source IN ({", ".join(f"'{s}'" for s in _EVENT_LOGIN_SOURCES)})
    ),
    k8s AS (
      SELECT arg_min(event_uid, timestamp) AS event_uid, min(timestamp) AS ts,
             'k8s_audit' AS source, 'request' AS action, user, any_value(host) AS host,
             NULL::VARCHAR AS selectel_subject_type, src_ip, user_agent,
             CASE WHEN bool_or(k8s_response_code = 401) AND NOT bool_or(k8s_response_code
                  BETWEEN 200 AND 399) THEN 'failure' ELSE 'success' END AS outcome,
             NULL::BIGINT AS win_event_id, NULL::BIGINT AS win_logon_type,
             'kubernetes' AS channel, 1 AS rank, 1 AS weight
      FROM history
      WHERE source = 'k8s_audit' AND user IS NOT NULL AND timestamp IS NOT NULL
        AND NOT starts_with(lower(user), 'system:node:')
        AND NOT (starts_with(lower(user), 'system:') AND NOT
                 starts_with(lower(user), 'system:serviceaccount:'))
      GROUP BY user, src_ip, user_agent, date_trunc('hour', timestamp)
    )
    SELECT b.event_uid, b.ts, b.source, b.action, b.user, b.host, b.src_ip, b.user_agent,
           b.channel, b.rank, b.weight,
           CASE WHEN b.outcome = 'success' THEN 'success'
                WHEN b.outcome IN ('failure', 'denied') THEN 'failure' END AS result,
           p.principal, p.kind
    FROM (SELECT * FROM base WHERE channel IS NOT NULL UNION ALL SELECT * FROM k8s) b
    JOIN principals p ON p.user = b.user AND p.source = b.source
         AND p.host IS NOT DISTINCT FROM b.host
         AND p.subject_type IS NOT DISTINCT FROM b.selectel_subject_type
    WHERE b.outcome IN ('success', 'failure', 'denied') AND p.principal IS NOT NULL
      AND NOT (b.source = 'linux_auditd' AND p.kind = 'uid')  -- sshd names the account
    """)
    _register_lookups(con)
    in_baseline = baseline.replace("timestamp", "l.ts")
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE deduped AS
    WITH k AS (SELECT *, coalesce(src_ip, '') AS ipk,
                      ts + INTERVAL {DUPLICATE_SECONDS} SECOND AS reach FROM raw_logins),
    -- the nearest record of a lower rank at or before ts + 5 s (ASOF: linear, however many
    -- attempts one address makes); within 5 s it is the same attempt
    near1 AS (
      SELECT a.event_uid AS dup_uid, b.event_uid AS keep_uid, a.ts - b.ts AS gap
      FROM (SELECT * FROM k WHERE rank > 1) a
      ASOF JOIN (SELECT * FROM k WHERE rank = 1) b
        ON a.channel = b.channel AND a.principal = b.principal AND a.result = b.result
       AND a.ipk = b.ipk AND a.reach >= b.ts
    ),
    near2 AS (
      SELECT a.event_uid AS dup_uid, b.event_uid AS keep_uid, a.ts - b.ts AS gap
      FROM (SELECT * FROM k WHERE rank > 2) a
      ASOF JOIN (SELECT * FROM k WHERE rank = 2) b
        ON a.channel = b.channel AND a.principal = b.principal AND a.result = b.result
       AND a.ipk = b.ipk AND a.reach >= b.ts
    ),
    d1 AS (SELECT dup_uid, keep_uid FROM near1
           WHERE gap <= INTERVAL {DUPLICATE_SECONDS} SECOND),
    d2 AS (SELECT n.dup_uid, coalesce(d1.keep_uid, n.keep_uid) AS keep_uid FROM near2 n
           LEFT JOIN d1 ON d1.dup_uid = n.keep_uid
           WHERE n.gap <= INTERVAL {DUPLICATE_SECONDS} SECOND
             AND n.dup_uid NOT IN (SELECT dup_uid FROM d1)),
    dup AS (SELECT * FROM d1 UNION ALL SELECT * FROM d2),
    also AS (SELECT keep_uid, list(dup_uid ORDER BY dup_uid) AS also FROM dup
             GROUP BY keep_uid)
    SELECT l.*, n.network, g.agent_family,
           coalesce(g.agent_is_tool, false) AS agent_is_tool,
           al.also, {in_baseline} AS in_baseline
    FROM raw_logins l
    LEFT JOIN also al ON al.keep_uid = l.event_uid
    LEFT JOIN networks n ON n.ip = l.src_ip
    LEFT JOIN agents g ON g.user_agent = l.user_agent
    WHERE l.event_uid NOT IN (SELECT dup_uid FROM dup)
    """)
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE logins AS
    WITH s AS (SELECT * FROM deduped WHERE result = 'success' AND in_baseline),
    pair AS (SELECT principal, src_ip, min(ts) AS first FROM s GROUP BY ALL),
    net AS (SELECT principal, network, min(ts) AS first FROM s GROUP BY ALL),
    agent AS (SELECT principal, channel, agent_family, min(ts) AS first FROM s
              WHERE agent_family IS NOT NULL GROUP BY ALL),
    chan AS (SELECT principal, channel, min(ts) AS first FROM s
             WHERE agent_family IS NOT NULL GROUP BY ALL),
    org AS (SELECT src_ip, min(ts) AS first FROM s GROUP BY ALL),
    who AS (SELECT principal, min(ts) AS first FROM s GROUP BY ALL),
    cum AS (SELECT principal, ts,
                   row_number() OVER (PARTITION BY principal ORDER BY ts, event_uid) AS n
            FROM s),
    hours AS (SELECT principal, ts, hour(ts) AS h,
                     row_number() OVER (PARTITION BY principal, hour(ts)
                                        ORDER BY ts, event_uid) AS n
              FROM s),
    days AS (SELECT principal, min(ts) AS ts FROM s GROUP BY principal, ts::DATE),
    dayrank AS (SELECT principal, ts,
                       row_number() OVER (PARTITION BY principal ORDER BY ts) AS n
                FROM days)
    SELECT d.*,
           coalesce(c.n, 0) AS prior_successes,
           coalesce(r.n, 0) AS prior_days,
           d.result = 'success' AND w.first < d.ts AND pair.first IS NOT DISTINCT FROM d.ts
             AS new_address,
           d.result = 'success' AND w.first < d.ts AND net.first IS NOT DISTINCT FROM d.ts
             AS new_network,
           coalesce(org.first <= d.ts - INTERVAL {ORG_KNOWN_AFTER}, false)
             AS org_known_address,
           d.result = 'success' AND d.agent_family IS NOT NULL
             AND agent.first IS NOT DISTINCT FROM d.ts AND chan.first < d.ts AS new_agent,
           coalesce(h0.n, 0) + coalesce(h1.n, 0) + coalesce(h2.n, 0) AS near_hour,
           date_diff('second', (SELECT min(ts) FROM deduped WHERE in_baseline), d.ts)
             / 86400.0 AS baseline_days
    FROM deduped d
    LEFT JOIN who w ON w.principal = d.principal
    LEFT JOIN pair ON pair.principal = d.principal AND pair.src_ip = d.src_ip
    LEFT JOIN net ON net.principal = d.principal AND net.network = d.network
    LEFT JOIN agent ON agent.principal = d.principal AND agent.channel = d.channel
         AND agent.agent_family = d.agent_family
    LEFT JOIN chan ON chan.principal = d.principal AND chan.channel = d.channel
    LEFT JOIN org ON org.src_ip = d.src_ip
    ASOF LEFT JOIN cum c ON c.principal = d.principal AND c.ts < d.ts
    ASOF LEFT JOIN dayrank r ON r.principal = d.principal AND r.ts < date_trunc('day', d.ts)
    ASOF LEFT JOIN hours h0 ON h0.principal = d.principal AND h0.h = hour(d.ts)
         AND h0.ts < d.ts
    ASOF LEFT JOIN hours h1 ON h1.principal = d.principal AND h1.h = (hour(d.ts) + 1) % 24
         AND h1.ts < d.ts
    ASOF LEFT JOIN hours h2 ON h2.principal = d.principal AND h2.h = (hour(d.ts) + 23) % 24
         AND h2.ts < d.ts
    """)


def in_scope_sql(alias: str = "") -> str:
    """SQL condition on ``logins`` rows (optionally aliased): the attempt is in the judged
    window."""
    column = f"{alias}.event_uid" if alias else "event_uid"
    return f"{column} IN (SELECT event_uid FROM events)"


def logins_frame(con: Any, where: str = "TRUE") -> pd.DataFrame:
    """Rows of ``logins`` as a DataFrame (``where`` is our own SQL, never log content)."""
    return con.sql(f"SELECT * FROM logins WHERE {where} ORDER BY ts, event_uid").df()


def sign_ins(scope: Any, identities: Any = None, baseline: str = "TRUE") -> pd.DataFrame:
    """The sign-in table of a scope as a DataFrame: one row per attempt in the window, with
    its principal, channel and features (see the module docstring).

    Example:
        >>> from analysis.scope import Scope
        >>> frame = sign_ins(Scope("auditlens-store"))   # doctest: +SKIP
    """
    from analysis.identities import NO_ALIASES, register_principals

    con = scope.connect()
    try:
        register_principals(con, identities or NO_ALIASES)
        build_logins(con, baseline)
        return logins_frame(con, in_scope_sql())
    finally:
        con.close()


def address_profile(frame: pd.DataFrame) -> pd.DataFrame:
    """Per address: sign-in successes and failures, principals and channels, first and last
    time, from a :func:`sign_ins` frame; busiest failing addresses first."""
    if frame.empty:
        return pd.DataFrame(columns=["src_ip", "network", "successes", "failures",
                                     "principals", "channels", "first", "last"])
    rows = frame.dropna(subset=["src_ip"])
    # attempts, not rows: a syslog line repeated N times is N attempts
    weight = rows["weight"] if "weight" in rows else pd.Series(1, index=rows.index)
    rows = rows.assign(_ok=weight.where(rows["result"] == "success", 0),
                       _failed=weight.where(rows["result"] == "failure", 0))
    grouped = rows.groupby("src_ip")
    out = pd.DataFrame({
        "network": grouped["network"].first(),
        "successes": grouped["_ok"].sum().astype(int),
        "failures": grouped["_failed"].sum().astype(int),
        "principals": grouped["principal"].nunique(),
        "channels": grouped["channel"].apply(lambda c: ", ".join(sorted(set(c)))),
        "first": grouped["ts"].min(), "last": grouped["ts"].max(),
    }).reset_index()
    return out.sort_values(["failures", "principals", "src_ip"],
                           ascending=[False, False, True]).reset_index(drop=True)
