"""Level and message lifting for a column of container log messages at once.

:func:`loaders.k8s_container.lift` stays the one definition of what is lifted. Here it runs
only on the messages that may be structured, and the two commonest structured forms are read
with Arrow regexes instead, where the regexes provably give what ``lift`` gives:

- a flat JSON object (no nesting, no escapes, ASCII) with one ``"level"`` and one ``"msg"``
  string, as zap, logrus and most JSON loggers write it. A string value holds no quote, so
  ``"level"`` can only match a key; a duplicated key (the last value wins) is left to lift().
- logfmt made only of ``key=value`` pairs separated by spaces (printable ASCII; quoted values
  without ``"``, ``\\`` or ``=``) with one ``level=`` and one ``msg=``: no value can hold
  `` level=``, so the regex finds the pair ``re.findall`` finds.

Everything else that may be structured (klog, other keys, escapes, non-ASCII) goes to lift().
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Lift = Callable[[str], tuple[str | None, str | None]]

# messages that lift() may turn into a level and message; the rest cannot be (a superset:
# Python's str.strip() on ASCII strips exactly these, and non-ASCII rows are always checked)
# (logfmt: "level=" or "lvl=" anywhere; Arrow's regex search is several times faster than its
# literal substring search)
_MAYBE_STRUCTURED = r"^[\t\n\x0b\x0c\r\x1c-\x1f ]*(?:\{|[IWEF][0-9]{4} )|l(?:evel|vl)="
_WS = r"[ \t\n\r]*"  # JSON whitespace
_STR = r'"[^"\\\x00-\x1f]*"'  # a JSON string without escapes (control characters are invalid)
_NUM = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_PAIR = f"{_WS}{_STR}{_WS}:{_WS}(?:{_STR}|{_NUM}|true|false|null){_WS}"
_FLAT_JSON = rf"^\{{(?:{_PAIR}(?:,{_PAIR})*|{_WS})\}}$"
_KV = r'[A-Za-z0-9_.@-]+=(?:"[ !#-<>-\[\]-~]*"|[!#-~]*)'
_PLAIN_LOGFMT = rf"^{_KV}(?: +{_KV})*$"
# (the value of a key, and the occurrences of both keys: exactly two, with both values found,
# means each key is there once)
_JSON_KEY = r'"{key}"[ \t\n\r]*:[ \t\n\r]*(?P<v>"[^"]*"|[^,}}\s]+)', r'"(?:level|msg)"'
# (logfmt rows get a leading space: Arrow restarts its search after each match, where "^"
# would match again, so the patterns use no anchor)
_LOGFMT_KEY = r' {key}=(?P<v>"[^"]*"|[^ ]*)', r" (?:level|msg)="


def _settle(message: pa.StringArray, rows: np.ndarray, form: tuple[str, str], quoted: bool
            ) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """(settled rows, levels, messages) of the ``rows`` of one grammar: those whose level
    and msg are there once (and are strings, for JSON)."""
    sub = message.take(pa.array(rows, pa.int64()))
    if not quoted:
        sub = pc.binary_join_element_wise(" ", sub, "")
    # (struct_field, unlike StructArray.field, keeps the nulls of rows without a match)
    level, msg = (pc.struct_field(pc.extract_regex(sub, form[0].format(key=key)), "v")
                  for key in ("level", "msg"))
    if quoted:
        ok = pc.and_(pc.starts_with(level, '"'), pc.starts_with(msg, '"'))
    else:
        ok = pc.and_(pc.is_valid(level), pc.is_valid(msg))
    ok = pc.and_(ok, pc.equal(pc.count_substring_regex(sub, form[1]), 2))
    settled = np.flatnonzero(np.asarray(pc.fill_null(ok, False)))
    take = pa.array(settled, pa.int64())
    level, msg = level.take(take), msg.take(take)
    # quoted values lose their quotes (json.loads of a string without escapes)
    strip_l = pc.and_(pc.starts_with(level, '"'), pc.greater_equal(pc.utf8_length(level), 2))
    strip_m = pc.and_(pc.starts_with(msg, '"'), pc.greater_equal(pc.utf8_length(msg), 2))
    level = pc.if_else(strip_l, pc.utf8_slice_codeunits(level, 1, -1), level)
    msg = pc.if_else(strip_m, pc.utf8_slice_codeunits(msg, 1, -1), msg)
    return rows[settled], pc.ascii_lower(level), msg


def lifted(message: pa.StringArray, lift: Lift) -> tuple[pa.Array, pa.Array]:
    """k8s_log_level and k8s_log_msg of every message, as :func:`lift` gives them.

    Args:
        message: the messages.
        lift: the per-message lifting, for the messages the regexes do not settle.

    Returns:
        (levels, messages), null where nothing is lifted.
    """
    n = len(message)
    ascii_ = np.asarray(pc.string_is_ascii(message))
    maybe = np.flatnonzero(np.asarray(pc.match_substring_regex(message, _MAYBE_STRUCTURED))
                           | ~ascii_)
    if not len(maybe):
        return pa.nulls(n, pa.string()), pa.nulls(n, pa.string())
    sub = message.take(pa.array(maybe, pa.int64()))
    left = np.ones(len(maybe), bool)  # rows of sub still to settle
    found: list[tuple[np.ndarray, pa.Array, pa.Array]] = []
    for grammar, form, quoted in ((_FLAT_JSON, _JSON_KEY, True),
                                  (_PLAIN_LOGFMT, _LOGFMT_KEY, False)):
        rows = np.flatnonzero(np.asarray(pc.match_substring_regex(sub, grammar))
                              & ascii_[maybe] & left)
        if len(rows):
            settled, level, msg = _settle(sub, rows, form, quoted)
            left[settled] = False
            found.append((maybe[settled], level, msg))
    py_pos = maybe[left]
    pairs = [lift(text) for text in sub.filter(pa.array(left)).to_pylist()]
    found.append((py_pos, pa.array([p[0] for p in pairs], pa.string()),
                  pa.array([p[1] for p in pairs], pa.string())))
    # one index per row into the concatenated results, then a final null
    pick = np.full(n, sum(len(f[0]) for f in found), np.int64)
    base = 0
    for pos, _, _ in found:
        pick[pos] = base + np.arange(len(pos))
        base += len(pos)
    where = pa.array(pick)
    null = pa.nulls(1, pa.string())
    levels = pa.concat_arrays([*(f[1].cast(pa.string()) for f in found), null])
    msgs = pa.concat_arrays([*(f[2].cast(pa.string()) for f in found), null])
    return levels.take(where), msgs.take(where)
