"""The text side of the vectorized EVTX path: split, check and parse a batch of records.

An evtx-rs record is compact JSON with a fixed layout: ``{"Event":{"#attributes":…,
"System":{…},"EventData":{…}}}``. Its System part is matched by one regular expression that
spells that layout out (Python's ``re`` on a record costs less than ``pyarrow.json`` on a
batch) and captures the System values the mapping reads, only where they are JSON text
without escapes, so the captured text is the decoded value. A flat ``EventData`` object is
rewritten as text into exactly what ``json.dumps`` gives for the per-record path's
normalized fields (``win_event_data``), and that text is read by ``pyarrow.json`` as the
event's fields.

Every record whose layout or text the two cannot be shown exact for is marked unusable here
and goes through the per-record path (:mod:`loaders.windows_events.fast` refuses its row).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

_ED_KEY = ',"EventData":'
_ED_AT = len(_ED_KEY)
# JSON text of a string without escapes that json.loads + json.dumps(ensure_ascii=False)
# would rewrite (\u…, \/), an integer Python prints alike, and a literal. serde_json and
# json.dumps escape the same characters the same way (\", \\, \b \f \n \r \t).
_STR = r'"(?:[^"\\\x00-\x1f]|\\[bfnrt"\\])*"'
_NUMBER = r'0|-?[1-9][0-9]{0,17}'
_VAL = rf'{_STR}|{_NUMBER}|true|false|null'
# each EventData text carries a newline, so the texts joined are newline-delimited JSON
_FLAT = rf'^\{{(?:{_STR}:(?:{_VAL})(?:,{_STR}:(?:{_VAL}))*)?\}}\n$'
_BARE = rf'": ({_NUMBER}|true|false)([,}}])'
# keys event_data() skips or treats specially: leave those records to it
_ODD_KEY = r'[{,]"(?:@|#|xmlns"|(?:[^"\\]|\\.)*_attributes")'
# Where the literal rewrites of stringify() could take a quote inside a key or value for a
# structural one: a text that starts or ends with ':' or ',', or an escaped quote next to
# ':' or ','. Without those, '":' only ends a key and ',"' only starts one.
_AMBIGUOUS = r'[:{,]":|,"[,}:]|\\":|,\\"'
_REFUSE = f"{_ODD_KEY}|{_AMBIGUOUS}"
# One thread per parse: batches are small, and the evtx parser's own threads and the other
# files of a run keep the cores busy; the thread pool hand-offs cost more than they give.
_SERIAL = pj.ReadOptions(use_threads=False, block_size=64 << 20)

# The System element as evtx-rs writes it. Strings are captured only without escapes or
# control characters, numbers only in JSON's own spelling (json.loads refuses others);
# each captured key occurs once, as json.loads would read it.
_S = r'"[^"\\\x00-\x1f]*"'
_CAP = r'"([^"\\\x00-\x1f]*)"'
_NUM = r'(?:0|[1-9][0-9]*)'
_ATTRS = (rf'\{{"#attributes":\{{"[A-Za-z]+":(?:{_S}|{_NUM})'
          rf'(?:,"[A-Za-z]+":(?:{_S}|{_NUM}))*\}}\}}')
_SYSTEM = re.compile(
    rf'\{{"Event":\{{(?:"#attributes":\{{"xmlns":{_S}\}},)?"System":\{{'
    rf'"Provider":\{{"#attributes":\{{"Name":{_CAP}(?:,"(?:Guid|EventSourceName)":{_S})*\}}\}},'
    r'"EventID":(0|[1-9][0-9]{0,9}),'
    rf'(?:"(?:Version|Level|Task|Opcode)":(?:{_NUM}|null),)*'
    rf'"Keywords":{_CAP},"TimeCreated":\{{"#attributes":\{{"SystemTime":{_CAP}\}}\}},'
    r'"EventRecordID":(0|[1-9][0-9]{0,17}),'
    rf'(?:"(?:Correlation|Execution)":(?:null|\{{\}}|{_ATTRS}),)*'
    rf'"Channel":{_CAP},"Computer":{_CAP}'
    rf'(?:,"Security":(?:null|\{{\}}|\{{"#attributes":\{{"UserID":{_CAP}\}}\}}))?\}}')
SYSTEM_FIELDS = ("provider", "event_id", "keywords", "time", "record_id", "channel",
                 "computer", "user_sid")
_INTS = ("event_id", "record_id")
_NOTHING = (None,) * len(SYSTEM_FIELDS)
_ED_OPEN = _ED_KEY + "{"


@dataclass(slots=True)
class BatchText:
    """What the text side gives the mapping.

    Attributes:
        system: the System values (:data:`SYSTEM_FIELDS`), null where a record is unusable.
        data: the EventData fields needed, as text, one row per record.
        event_data: ``win_event_data`` (null where the record has no fields).
        keys: the EventData text of each record (where a key's spellings are counted).
        usable: records whose text the two reads represent exactly.
    """

    system: dict[str, pa.Array]
    data: pa.Table
    event_data: pa.Array
    keys: pa.Array
    usable: pa.Array


def _split(texts: Sequence[str]) -> tuple[list[tuple[str | None, ...]], list[str], list[bool],
                                           list[bool]]:
    """Per record: the captured System values, the EventData object's text (with a newline),
    whether there is an EventData object, and whether the record's layout is another one
    (then it goes per record)."""
    rows: list[tuple[str | None, ...]] = []
    eds: list[str] = []
    has_ed: list[bool] = []
    hazard: list[bool] = []
    match = _SYSTEM.match
    for text in texts:
        m = match(text) if text.endswith("}}") else None
        # after System: EventData as the last element, or nothing
        found = m is not None and text.startswith(_ED_OPEN, m.end())
        if m is None or not (found or len(text) == m.end() + 2):
            rows.append(_NOTHING)
            eds.append("\n")
            has_ed.append(False)
            hazard.append(True)
            continue
        rows.append(m.groups())
        eds.append(text[m.end() + _ED_AT:-2] + "\n" if found else "\n")
        has_ed.append(found)
        hazard.append(False)
    return rows, eds, has_ed, hazard


def _columns(rows: list[tuple[str | None, ...]]) -> dict[str, pa.Array]:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(SYSTEM_FIELDS)
    out = {name: pa.array(col, pa.string()) for name, col in zip(SYSTEM_FIELDS, columns,
                                                                    strict=True)}
    for name in _INTS:
        out[name] = pc.cast(out[name], pa.int64())
    return out


def _stringify(text: pa.Array) -> pa.Array:
    """Flat compact JSON objects to ``json.dumps`` of their values as text: ``": `` and
    ``", "`` separators, numbers and booleans quoted (records _AMBIGUOUS matches excluded)."""
    out = pc.replace_substring(pc.replace_substring(text, '":', '": '), ',"', ', "')
    return pc.replace_substring_regex(out, _BARE, '": "\\1"\\2')  # 12 -> "12", true -> "true"


def _buffer(lines: pa.Array) -> pa.Buffer:
    """The text of a string array whose values each end in a newline, as one buffer."""
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    return lines.buffers()[2].slice(start, end - start)


def _read(ndjson: pa.Buffer, schema: pa.Schema | None = None) -> pa.Table:
    """Newline-delimited JSON to a table: only ``schema``'s fields when given."""
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore") \
        if schema is not None else None
    return pj.read_json(pa.BufferReader(ndjson), read_options=_SERIAL, parse_options=options)


def _fields(docs: pa.Buffer, wanted: Callable[[str], bool]) -> pa.Table:
    """The EventData fields whose name is ``wanted``, as text."""
    data = _read(docs)
    names = [f.name for f in data.schema if wanted(f.name)]
    # all values are text now; Arrow may still guess timestamps from some, so read
    # again with a string schema when it did
    if any(data.schema.field(x).type not in (pa.string(), pa.null()) for x in names):
        data = _read(docs, pa.schema([(x, pa.string()) for x in names]))
    # a field null in every record of the batch reads as type null: make it text
    nulls = pa.nulls(data.num_rows, pa.string())
    return pa.table({x: nulls if data.schema.field(x).type == pa.null() else data.column(x)
                     for x in names})


def read_batch(texts: Sequence[str], wanted: Callable[[str], bool]) -> BatchText | None:
    """Split and read a batch of records; None when a read fails (all go per record).

    Args:
        texts: the records' JSON texts.
        wanted: whether the mapping reads an EventData field (by its name).
    """
    rows, eds, has_ed_list, hazard_list = _split(texts)
    has_ed = pa.array(has_ed_list, pa.bool_())
    ed = pa.array(eds, pa.string())
    flat = pc.and_(has_ed, pc.and_(pc.match_substring_regex(ed, _FLAT),
                                   pc.invert(pc.match_substring_regex(ed, _REFUSE))))
    usable = pc.and_(pc.invert(pa.array(hazard_list, pa.bool_())),
                     pc.or_(flat, pc.invert(has_ed)))
    text = _stringify(pc.if_else(flat, ed, "{}\n"))
    try:
        data = _fields(_buffer(text), wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # something unexpected in the batch: all of it goes per record
    if data.num_rows != len(texts):
        return None
    event_data = pc.if_else(pc.equal(text, "{}\n"), pa.scalar(None, pa.string()),
                            pc.utf8_slice_codeunits(text, 0, -1))
    return BatchText(_columns(rows), data, event_data, ed, usable)
