"""Where each element of a JSON batch (``{"items": [...]}``) starts, and its exact text.

Batches (an audit ``EventList``, an Azure ``{"records": [...]}`` export, ``kubectl get -o
json`` lists, ``{"tasks": [...]}``) arrive from the shared reader as one JSON value. Each
element is a record of its own, so it should carry its own line number and its own original
text (not a re-serialization). :func:`element_spans` finds them in the value's text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from loaders.base import Reject

_DECODER = json.JSONDecoder()
_SEP = re.compile(r"[\s,]*")


@lru_cache(maxsize=16)
def _key_pattern(key: str) -> re.Pattern[str]:
    # a key inside a JSON string would have its quotes escaped (\"key\"), so a match of
    # "key": [ is a real key; the first one is the batch's own (its other keys come first
    # and do not nest a list under the same name)
    return re.compile(rf'"{re.escape(key)}"\s*:\s*\[')


def element_spans(text: str, key: str, count: int) -> list[tuple[int, str]] | None:
    """Line offset (0 for the value's first line) and exact text of each batch element.

    Args:
        text: the batch value's source text.
        key: the key holding the list (``items``, ``records``, ``tasks`` …).
        count: how many elements the parsed value has; the spans are only returned when
            exactly that many are found, so a surprise never mislabels a record.

    Returns:
        One ``(line_offset, text)`` per element, or None when they cannot be located.

    Example:
        >>> element_spans('{"items": [\\n {"a": 1},\\n {"b": 2}\\n]}', "items", 2)
        [(1, '{"a": 1}'), (2, '{"b": 2}')]
    """
    m = _key_pattern(key).search(text)
    if m is None:
        return None
    pos = m.end()
    line = text.count("\n", 0, pos)
    spans: list[tuple[int, str]] = []
    try:
        while len(spans) < count:
            skip = _SEP.match(text, pos)
            end = skip.end() if skip else pos
            line += text.count("\n", pos, end)
            pos = end
            if pos >= len(text) or text[pos] == "]":
                return None
            _, stop = _DECODER.raw_decode(text, pos)
            spans.append((line, text[pos:stop]))
            line += text.count("\n", pos, stop)
            pos = stop
    except (json.JSONDecodeError, RecursionError):
        return None
    skip = _SEP.match(text, pos)
    if skip is None or skip.end() >= len(text) or text[skip.end()] != "]":
        return None
    return spans


def dig(obj: Any, path: tuple[str, ...]) -> Any:
    """``obj[path[0]][path[1]]…``, or None where a level is missing or not an object."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def compact_json(value: Any) -> str:
    """A value re-serialized compactly: the raw text of an element whose span is unknown."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def batch_items(text: str, line: int, key: str, items: list[Any],
                mapper: Callable[[Any, int, str], Any]) -> Iterator[Any]:
    """Map each element of a batch with its own line and original text.

    Args:
        text: the batch value's text; line: the line where it starts.
        key: the batch key (``items``, ``tasks`` …); items: its elements.
        mapper: ``(element, line, raw) -> item`` of the loader.

    Yields:
        The mapper's items; an element whose mapping raises becomes a reject of that
        element alone, so the rest of the batch is still read.
    """
    spans = element_spans(text, key, len(items))
    for index, item in enumerate(items):
        if spans is not None:
            offset, raw = spans[index]
            where = line + offset
        else:  # not locatable: the element re-serialized, at the batch's line
            where, raw = line, compact_json(item)
        try:
            yield mapper(item, where, raw)
        except Exception as exc:  # one bad element must not stop the batch
            yield Reject(where, f"cannot map record: {type(exc).__name__}: {exc}", raw)
