"""Blocks of whole lines with the line bound of :func:`loaders.parsing.inputs.iter_lines`.

The block readers (JSON Lines fast paths, the JSON reader, auditd) read a file many lines at a
time; :func:`whole_lines` gives them blocks of whole lines and, in their place, each line
longer than the bound (:attr:`loaders.base.Tuning.max_line_bytes`, default
:data:`~loaders.parsing.inputs.MAX_LINE_BYTES`) as a text-less
:class:`~loaders.parsing.inputs.Line` carrying the reason ``iter_lines`` gives it: ``line too
long (N bytes > MAX)``, N counting the line's newline. Such a line is skipped in bounded
memory: at most ``MAX`` bytes of it are held (as pieces, never copied into one buffer), then it
is read past ``block_bytes`` at a time; so a 1 GiB line costs a read of the file, not a
buffer of its size.

A line is too long when more than ``MAX`` bytes come before its ``\\n`` (a ``\\r`` counts), as
in ``iter_lines``. The same function reads decoded text (``str`` from a text stream: the
bound is then in characters, the reason says so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import AnyStr

from loaders.parsing.inputs import Line


def too_long(size: int, max_line: int, unit: str = "bytes") -> str:
    """The reject reason of an over-long line, as :func:`~loaders.parsing.inputs.iter_lines`
    words it."""
    return f"line too long ({size} {unit} > {max_line})"


def whole_lines(read: Callable[[int], AnyStr], max_line: int, block_bytes: int,
                count: bool = True) -> Iterator[tuple[int, AnyStr | Line]]:
    """(number of the first line, whole lines) blocks of a stream (``read``: its ``read``),
    and a text-less :class:`Line` (number, reason) for each line of more than ``max_line``
    units before its newline, in order. With ``count`` False lines are not counted (the
    numbers are meaningless; a caller that counts lines itself spares a scan of each block).

    Every block but the last ends with a newline; the last is the file's last line when it
    has none. Reads are ``min(block_bytes, max_line)`` long: an over-long line then always
    spans reads, so only the line pending from earlier reads can be one.
    """
    unit = "bytes"
    number = 0
    pending: list[AnyStr] = []
    size = 0  # units in pending: the start of a line
    skipping = 0  # units of an over-long line skipped so far
    size_of_read = max(1, min(block_bytes, max_line))
    while True:
        data = read(size_of_read)
        if isinstance(data, str):
            unit = "characters"
        nl = "\n" if isinstance(data, str) else b"\n"
        if skipping:
            cut = data.find(nl)
            if cut < 0 and data:
                skipping += len(data)
                continue
            number += 1
            yield number, Line(number, None, too_long(skipping + cut + 1, max_line, unit))
            skipping = 0
            if cut < 0:
                return
            data = data[cut + 1:]
            if not data:
                continue
        if not data:
            if pending:
                yield number + 1, data[:0].join(pending)
            return
        cut = data.rfind(nl) + 1
        if not cut:
            pending.append(data)
            size += len(data)
            if size > max_line:
                skipping, pending, size = size, [], 0
            continue
        if pending:
            first = data.find(nl)
            if size + first > max_line:
                number += 1
                yield number, Line(number, None, too_long(size + first + 1, max_line, unit))
                pending, size = [], 0
                data = data[first + 1:]
                cut = data.rfind(nl) + 1
        if pending:
            pending.append(data[:cut])
            block = data[:0].join(pending)
        else:
            block = data[:cut]
        if block:
            yield number + 1, block
            if count:
                number += block.count(nl)
        pending = [data[cut:]] if cut < len(data) else []
        size = len(data) - cut
