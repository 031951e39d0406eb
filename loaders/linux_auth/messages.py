"""The auth-log message rules, kept under their old name: they live in
:mod:`loaders.parsing.authlog`, shared with ``linux_syslog`` (one mapping, not two)."""

from loaders.parsing.authlog import MAX_MESSAGE, RULES, Rule, interpret

__all__ = ["MAX_MESSAGE", "RULES", "Rule", "interpret"]
