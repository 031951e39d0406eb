"""Reading an audit.log in blocks of whole lines, headers split by one regex per block.

:meth:`Source.lines` reads, decodes and wraps one line at a time, then the loader matches the
record header of each line: about a fifth of the loader's time on a plain audit.log. Here a
UTF-8 file is read in blocks of whole lines (:attr:`~loaders.base.Tuning.auditd_block_bytes`);
a block that decodes as UTF-8, holds no ``\\r`` and whose every line is an audit record gives
all its headers with one ``findall`` (:class:`Block`). Any other block — a blank, comment
or foreign line, invalid UTF-8, CRLF endings — is given line by line as
:class:`~loaders.parsing.inputs.Line` objects, decoded exactly as
:func:`loaders.parsing.inputs.iter_lines` decodes them; so is a line too long to read (text
None, the same warning), and the whole of a UTF-16 file (through :meth:`Source.lines`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass

from loaders.base import Source
from loaders.parsing.inputs import Line, decode_line, detect_encoding
from loaders.parsing.lineblocks import whole_lines

# the record header of loaders.linux_auditd.fields._HEADER at every line start, and the body
_HEADERS = re.compile(
    r"^(?:node=(\S+) )?type=([A-Za-z0-9_\[\]]+) msg=audit\((\d+)\.(\d+):(\d+)\):?(.*)",
    re.MULTILINE,
)
Header = tuple[str, str, str, str, str, str]


@dataclass(slots=True)
class Block:
    """Consecutive audit record lines.

    Attributes:
        first: number of the first line.
        headers: per line (node or "", type, seconds, fraction, serial, body).
        lines: the lines' text.
    """

    first: int
    headers: list[Header]
    lines: list[str]


def read_pieces(src: Source) -> Iterator[Block | Line]:
    """The file's lines, in order, as blocks of record lines or single lines.

    Args:
        src: the file.

    Returns:
        Blocks, and the lines a block cannot hold; it ends early once ``src.stopped``.
    """
    if detect_encoding(src.head) != "utf-8":
        yield from src.lines()
        return
    with src.binary() as fh:
        tuning = src.options.tuning
        for first, data in whole_lines(fh.read, tuning.max_line_bytes, tuning.auditd_block_bytes):
            if src.stopped:
                return
            if isinstance(data, Line):
                yield data
                continue
            if first == 1:
                data = data.removeprefix(codecs.BOM_UTF8)
            block = _block(first, data)
            if block is not None:
                yield block
                continue
            chunks = data.split(b"\n")
            if data.endswith(b"\n"):
                chunks.pop()
            for i, chunk in enumerate(chunks):
                if src.stopped:
                    return
                yield decode_line(first + i, chunk)


def _block(first: int, data: bytes) -> Block | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text:
        return None
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    headers = _HEADERS.findall(text)
    # one match at most per line (a match never crosses a line end): equal counts mean
    # every line is a record
    if len(headers) != len(lines):
        return None
    return Block(first, headers, lines)
