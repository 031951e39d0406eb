"""Fast splitting of the common auditd record bodies, exactly as the general tokenizer.

:func:`loaders.linux_auditd.fields.split_fields` scans a body with one regular expression
that finds ``key=value`` pairs anywhere (after whitespace or ``(``), values bare, double- or
single-quoted. Nearly every body the kernel and libaudit write is simpler: one space before
every ``key=value``, keys of the usual form, values without whitespace or ``=`` (a quoted
value closed at its end). For those (kernel records: SYSCALL, PATH, LOGIN…), replacing ``=``
by a space and splitting gives the same pairs at C speed, in about 60% of the time.
User-space records (a nested ``msg='…'``) are left to the general tokenizer, which is as fast
there.

:func:`split_simple` returns None for anything else (two spaces, a quote inside a value, an
unclosed quote, a key the general tokenizer would skip, any single quote…), and
the caller then uses the general tokenizer.
"""

from __future__ import annotations

import re

# a body of " key=value" tokens that the general tokenizer reads as exactly these pairs: the
# key is one it accepts, the value holds no whitespace, no "=" and no quote but, when it
# starts with '"', the closing one at its end
_SIMPLE = re.compile(r'(?: [A-Za-z_][\w\-]*(?:\[\d+\])?=(?:"[^"\s=]*"|[^\s"\'=]*))+')


def split_simple(body: str) -> dict[str, str] | None:
    """The fields of a plain body (see the module docstring), or None.

    Args:
        body: the text after the ``msg=audit(...):`` stamp.

    Returns:
        Field name to value as written, in the general tokenizer's order; None when the body
        is not of the plain form.
    """
    if "'" in body or _SIMPLE.fullmatch(body) is None:
        return None
    it = iter(body[1:].replace("=", " ").split(" "))
    return dict(zip(it, it, strict=True))
