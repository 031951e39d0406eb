"""The shared JSON reader: every export shape gives the same records, bad values cost one."""

from __future__ import annotations

import codecs
import io
import json

import pytest

from loaders.parsing.jsonreader import JsonReader
from tests.helpers import k8s_audit_events

EVENTS = k8s_audit_events()[:5]


def _read(data: bytes) -> tuple[list, list[str]]:
    reader = JsonReader(io.BytesIO(data), data[:65536])
    return list(reader), reader.warnings


SHAPES = {
    "jsonl": "\n".join(json.dumps(e) for e in EVENTS) + "\n",
    "jsonl-crlf": "\r\n".join(json.dumps(e) for e in EVENTS) + "\r\n",
    "array": json.dumps(EVENTS),
    "array-pretty": json.dumps(EVENTS, indent=2),
    "pretty-concatenated": "\n".join(json.dumps(e, indent=4) for e in EVENTS),
    "concatenated-one-line": "".join(json.dumps(e) for e in EVENTS),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_every_shape_gives_the_same_records(shape: str, encoding: str) -> None:
    records, warnings = _read(SHAPES[shape].encode(encoding))
    assert [r.value for r in records] == EVENTS
    assert all(r.error is None for r in records) and warnings == []
    assert [json.loads(r.text) for r in records] == EVENTS


def test_line_numbers_point_at_the_start_of_each_value() -> None:
    records, _ = _read(SHAPES["array-pretty"].encode())
    starts = [r.line for r in records]
    text = SHAPES["array-pretty"].splitlines()
    assert starts[0] == 2 and all(text[n - 1] == "  {" for n in starts)


def test_bad_line_in_json_lines_is_one_reject() -> None:
    lines = [json.dumps(e) for e in EVENTS]
    lines.insert(2, '{"auditID": "x", "verb": ')
    records, _ = _read(("\n".join(lines) + "\n").encode())
    assert [r.error is None for r in records] == [True, True, False, True, True, True]
    bad = records[2]
    assert bad.line == 3 and bad.text.startswith('{"auditID": "x"')
    assert bad.error == "invalid JSON: incomplete value (the next record starts at line 4)"
    records, _ = _read(b'{"a": 1}\n{"a": tru}\n{"a": 2}\n')
    assert records[1].error == "invalid JSON: Expecting value (at line 2)"


def test_bad_element_in_pretty_array_is_one_reject() -> None:
    text = json.dumps(EVENTS, indent=2).replace('"verb": "create"', '"verb": create', 1)
    records, _ = _read(text.encode())
    assert len(records) == 5
    assert sum(r.error is not None for r in records) == 1


def test_unclosed_array_keeps_complete_elements_and_warns() -> None:
    text = json.dumps(EVENTS)[:-40]
    records, warnings = _read(text.encode())
    assert [r.value for r in records[:4]] == EVENTS[:4]
    assert records[4].error is not None
    assert warnings == ["top-level array is never closed (truncated file?)"]


def test_deep_nesting_and_garbage_are_rejected_not_raised() -> None:
    data = b"[" * 200_000 + b"\n\x00\x01\xff garbage\n" + json.dumps(EVENTS[0]).encode() + b"\n"
    records, _ = _read(data)
    assert records[-1].value == EVENTS[0]
    assert any(r.error == "invalid JSON: nested too deeply" for r in records)


def test_bom_is_not_part_of_the_first_record() -> None:
    records, _ = _read(codecs.BOM_UTF8 + b'{"a": 1}\n')
    assert records[0].text == '{"a": 1}' and records[0].line == 1
