"""Categories of auditd events: one table keyed by record type or syscall name."""

from __future__ import annotations

from functools import lru_cache

# Category of an event, keyed by its primary record type (UPPER CASE) or, for plain
# SYSCALL events, by the syscall name (lower case). Prefixes ending in "_" match a family.
CATEGORIES: dict[str, str] = {
    # authentication
    "USER_AUTH": "authentication", "USER_ACCT": "authentication",
    "USER_LOGIN": "authentication", "USER_ERR": "authentication",
    "CRED_ACQ": "authentication", "CRED_DISP": "authentication",
    "CRED_REFR": "authentication", "ANOM_LOGIN_FAILURES": "authentication",
    "ANOM_LOGIN_": "authentication", "GRP_AUTH": "authentication",
    # session
    "LOGIN": "session", "USER_START": "session", "USER_END": "session",
    "USER_LOGOUT": "session", "USER_TTY": "session", "TTY": "session",
    "CRYPTO_SESSION": "session", "CRYPTO_KEY_USER": "session",
    # process
    "USER_CMD": "process", "EXECVE": "process", "execve": "process", "execveat": "process",
    "fork": "process", "vfork": "process", "clone": "process", "clone3": "process",
    "kill": "process", "tkill": "process", "tgkill": "process", "ptrace": "process",
    # access management
    "ADD_USER": "access_management", "DEL_USER": "access_management",
    "ADD_GROUP": "access_management", "DEL_GROUP": "access_management",
    "USER_MGMT": "access_management", "GRP_MGMT": "access_management",
    "USER_CHAUTHTOK": "access_management", "GRP_CHAUTHTOK": "access_management",
    "ACCT_LOCK": "access_management", "ACCT_UNLOCK": "access_management",
    "USER_ROLE_CHANGE": "access_management", "ROLE_ASSIGN": "access_management",
    "ROLE_REMOVE": "access_management", "ROLE_MODIFY": "access_management",
    "ANOM_ADD_ACCT": "access_management", "ANOM_DEL_ACCT": "access_management",
    "ANOM_MOD_ACCT": "access_management", "ANOM_ROOT_TRANS": "access_management",
    "setuid": "access_management", "setreuid": "access_management",
    "setresuid": "access_management", "setgid": "access_management",
    # network (connect & co. only with a SOCKADDR; see _NETWORK_SYSCALLS)
    "SOCKADDR": "network", "NETFILTER_PKT": "network",
    # file
    "open": "file", "openat": "file", "openat2": "file", "creat": "file",
    "truncate": "file", "ftruncate": "file", "unlink": "file", "unlinkat": "file",
    "rename": "file", "renameat": "file", "renameat2": "file", "mkdir": "file",
    "mkdirat": "file", "rmdir": "file", "link": "file", "linkat": "file",
    "symlink": "file", "symlinkat": "file", "chmod": "file", "fchmod": "file",
    "fchmodat": "file", "chown": "file", "fchown": "file", "lchown": "file",
    "fchownat": "file", "setxattr": "file", "lsetxattr": "file", "fsetxattr": "file",
    "removexattr": "file", "lremovexattr": "file", "fremovexattr": "file",
    "mknod": "file", "mknodat": "file", "utimes": "file", "utimensat": "file",
    "FANOTIFY": "file",
    # system: audit configuration, daemon, services, time, MAC policy, anomalies
    "CONFIG_CHANGE": "system", "DAEMON_": "system", "SERVICE_START": "system",
    "SERVICE_STOP": "system", "SYSTEM_": "system", "USYS_CONFIG": "system",
    "NETFILTER_CFG": "system", "TIME_": "system", "KERN_MODULE": "system",
    "MAC_": "system", "AVC": "system", "SELINUX_ERR": "system", "USER_AVC": "system",
    "APPARMOR_": "system", "ANOM_": "system", "SECCOMP": "system",
    "BPRM_FCAPS": "system", "CAPSET": "system", "INTEGRITY_": "system",
    "FEATURE_CHANGE": "system", "KERNEL": "system", "BPF": "system",
}
_NETWORK_SYSCALLS = frozenset({
    "connect", "accept", "accept4", "bind", "listen", "sendto", "recvfrom", "sendmsg",
    "recvmsg", "socketcall",
})


@lru_cache(maxsize=4096)  # few distinct (type, syscall) pairs; the prefix scan is slow
def categorize(kind: str, syscall: str | None, has_sockaddr: bool) -> str:
    """Category from the primary record type, or the syscall of a SYSCALL event."""
    if kind == "SYSCALL":
        if syscall in _NETWORK_SYSCALLS:
            return "network" if has_sockaddr else "system"
        return CATEGORIES.get(syscall or "", "system")
    if kind in CATEGORIES:
        return CATEGORIES[kind]
    for key, category in CATEGORIES.items():
        if key.endswith("_") and kind.startswith(key):
            return category
    return "system"
