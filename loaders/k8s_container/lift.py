"""Level and message lifting for a column of container log messages at once.

:func:`loaders.k8s_container.loader.lift` stays the one definition of what is lifted. Here it runs
only on the messages that may be structured, and the two commonest structured forms are read
with Arrow kernels instead, where they provably give what ``lift`` gives:

- a flat JSON object (no nesting, no escapes, ASCII) with one ``"level"`` and one ``"msg"``
  string, as zap, logrus and most JSON loggers write it, read by splitting it at its quotes
  (no string holds one); a duplicated key (the last value wins) is left to lift().
- logfmt made only of ``key=value`` pairs separated by spaces (printable ASCII; quoted values
  without ``"``, ``\\`` or ``=``) with one ``level=`` and one ``msg=``: no value can hold
  `` level=``, so the keys found at the start or after a space are the ones ``re.findall``
  finds.

Everything else that may be structured (klog, other keys, escapes, non-ASCII) goes to lift().
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaders.k8s_container.split import padded_window, ranges

Lift = Callable[[str], tuple[str | None, str | None]]

# messages that lift() may turn into a level and message; the rest cannot be (a superset:
# Python's str.strip() on ASCII strips exactly these, and non-ASCII rows are always checked)
# (logfmt: "level=" or "lvl=" anywhere; Arrow's regex search is several times faster than its
# literal substring search)
# (two searches are faster than one with both alternatives)
_MAYBE_STRUCTURED = (r"^[\t\n\x0b\x0c\r\x1c-\x1f ]*(?:\{|[IWEF][0-9]{4} )", r"l(?:evel|vl)=")
_WS = r"[ \t\n\r]*"  # JSON whitespace
_STR = r'"[^"\\\x00-\x1f]*"'  # a JSON string without escapes (control characters are invalid)
_NUM = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_PAIR = f"{_WS}{_STR}{_WS}:{_WS}(?:{_STR}|{_NUM}|true|false|null){_WS}"
_FLAT_JSON = rf"^\{{(?:{_PAIR}(?:,{_PAIR})*|{_WS})\}}$"
_QUOTE, _COLON, _SPACE = ord('"'), ord(":"), ord(" ")
_JSON_BLANK = np.frombuffer(b" \t\n\r", np.uint8)
_GAP = 8  # longest whitespace-and-colon between a key and its string value read here
_KV = r'[A-Za-z0-9_.@-]+=(?:"[ !#-<>-\[\]-~]*"|[!#-~]*)'
_PLAIN_LOGFMT = rf"^{_KV}(?: +{_KV})*$"


def _settle_json(message: pa.StringArray, rows: np.ndarray
                 ) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """(settled rows, levels, messages) of the flat JSON ``rows``: those with one ``level``
    and one ``msg`` key whose values are strings.

    No string holds a quote, and every row has an even number of them: quotes 2k and 2k+1 of
    the rows together enclose one string, key or value. A key whose value is a string is
    followed by whitespace and a colon only up to the next quote, which opens the value; a
    string that occurs twice (a repeated key, or also a value) is left to lift().
    """
    sub = message.take(pa.array(rows, pa.int64()))
    data = sub.buffers()[2]
    offsets = np.frombuffer(sub.buffers()[1], np.int32, len(sub) + 1, sub.offset * 4)
    offsets = offsets.astype(np.int64)
    window = padded_window(data, b" ")
    quotes = np.flatnonzero(window[offsets[0]:offsets[-1], 0] == _QUOTE) + offsets[0]
    opens, closes = quotes[0::2], quotes[1::2]
    ok = np.ones(len(rows), bool)
    values = []
    for key in (b"level", b"msg"):
        same = np.flatnonzero(closes - opens - 1 == len(key))
        hit = same[(window[opens[same] + 1, :len(key)] == np.frombuffer(key, np.uint8))
                   .all(axis=1)]
        row = np.searchsorted(offsets, opens[hit], side="right") - 1
        ok &= np.bincount(row, minlength=len(rows)) == 1
        ok[row[~_colon_only(window, closes[hit], opens, hit + 1, offsets[-1])]] = False
        value = np.zeros(len(rows), np.int64)
        value[row] = hit + 1
        values.append(value)
    settled = np.flatnonzero(ok)
    level, msg = (ranges(data, window, opens[v[settled]] + 1,
                         closes[v[settled]] - opens[v[settled]] - 1) for v in values)
    return rows[settled], pc.ascii_lower(level), msg


def _colon_only(window: np.ndarray, after: np.ndarray, opens: np.ndarray, nxt: np.ndarray,
                end: int) -> np.ndarray:
    """Whether the bytes from ``after + 1`` up to the opening quote ``nxt`` (``end`` past the
    last) are JSON whitespace and one colon."""
    stop = np.where(nxt < len(opens), opens[np.minimum(nxt, len(opens) - 1)], end)
    gap = window[after + 1, :_GAP]
    inside = np.arange(_GAP) < (stop - after - 1)[:, None]
    colon = (gap == _COLON) & inside
    blank = np.isin(gap, _JSON_BLANK) | colon | ~inside
    return (stop - after - 1 <= _GAP) & blank.all(axis=1) & (colon.sum(axis=1) == 1)


def _settle_logfmt(message: pa.StringArray, rows: np.ndarray
                   ) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """(settled rows, levels, messages) of the plain logfmt ``rows``: those with one
    ``level=`` and one ``msg=`` key (at the start or after a space; no value holds a space
    and an ``=``, so these are keys). A value is up to the next space, or between quotes."""
    sub = message.take(pa.array(rows, pa.int64()))
    data = sub.buffers()[2]
    offsets = np.frombuffer(sub.buffers()[1], np.int32, len(sub) + 1, sub.offset * 4)
    offsets = offsets.astype(np.int64)
    window = padded_window(data, b" ")
    text = window[offsets[0]:offsets[-1], 0]
    spaces = np.append(np.flatnonzero(text == _SPACE) + offsets[0], offsets[-1])
    quotes = np.append(np.flatnonzero(text == _QUOTE) + offsets[0], offsets[-1] + 1)
    ok = np.ones(len(rows), bool)
    found = []
    for key in (b"level=", b"msg="):
        at = np.flatnonzero(text == key[0]) + offsets[0]
        at = at[(window[at, :len(key)] == np.frombuffer(key, np.uint8)).all(axis=1)]
        row = np.searchsorted(offsets, at, side="right") - 1
        keep = (at == offsets[row]) | (window[np.maximum(at - 1, 0), 0] == _SPACE)
        at, row = at[keep], row[keep]
        ok &= np.bincount(row, minlength=len(rows)) == 1
        start, end = at + len(key), offsets[row + 1]
        quoted = (start < end) & (window[start, 0] == _QUOTE)
        close = quotes[np.searchsorted(quotes, start + 1)]
        end = np.where(quoted, close, np.minimum(spaces[np.searchsorted(spaces, start)], end))
        value = np.zeros((len(rows), 2), np.int64)
        value[row] = np.stack([start + quoted, end], axis=1)
        found.append(value)
    settled = np.flatnonzero(ok)
    level, msg = (ranges(data, window, v[settled, 0], v[settled, 1] - v[settled, 0])
                  for v in found)
    return rows[settled], pc.ascii_lower(level), msg


def _is_ascii(message: pa.StringArray) -> np.ndarray:
    """Which messages are ASCII (at once when the whole data buffer is)."""
    data = message.buffers()[2]
    if data is None or not len(data) or np.frombuffer(data, np.uint8).max() < 128:
        return np.ones(len(message), bool)
    return np.asarray(pc.string_is_ascii(message))


def lifted(message: pa.StringArray, lift: Lift) -> tuple[pa.Array, pa.Array]:
    """k8s_log_level and k8s_log_msg of every message, as :func:`lift` gives them.

    Args:
        message: the messages.
        lift: the per-message lifting, for the messages not settled here.

    Returns:
        (levels, messages), null where nothing is lifted.
    """
    n = len(message)
    ascii_ = _is_ascii(message)
    maybe = ~ascii_
    for pattern in _MAYBE_STRUCTURED:
        maybe |= np.asarray(pc.match_substring_regex(message, pattern))
    maybe = np.flatnonzero(maybe)
    if not len(maybe):
        return pa.nulls(n, pa.string()), pa.nulls(n, pa.string())
    sub = message.take(pa.array(maybe, pa.int64()))
    left = np.ones(len(maybe), bool)  # rows of sub still to settle
    found: list[tuple[np.ndarray, pa.Array, pa.Array]] = []
    for grammar, settle in ((_FLAT_JSON, _settle_json), (_PLAIN_LOGFMT, _settle_logfmt)):
        rows = np.flatnonzero(np.asarray(pc.match_substring_regex(sub, grammar))
                              & ascii_[maybe] & left)
        if len(rows):
            settled, level, msg = settle(sub, rows)
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
