"""A DuckDB backend for pySigma, subclassed from SigmaHQ's SQLite backend.

The SQLite backend's SQL is close to DuckDB's but wrong in four places that matter, each fixed
here and pinned by ``tests/test_sigma.py``:

- DuckDB has no ``REGEXP`` operator: regular expressions become ``regexp_matches``.
- DuckDB's ``LIKE`` and ``=`` are case-sensitive while Sigma matches case-insensitively: string
  equality is ``lower(f) = lower('v')`` and wildcards use ``ILIKE`` (``|cased`` keeps ``LIKE``).
- Comparing a text column with a number, or an integer column with a string, fails in DuckDB
  only when rows are present (a cast at run time): every field is compared as text
  (``CAST(col AS VARCHAR)`` for non-text columns, numbers rendered as text literals) and
  numeric comparisons use ``TRY_CAST(.. AS DOUBLE)``, so no rule can fail on some data only.
- ``NOT`` over an absent field must stay null-safe: ``NOT COALESCE(expr, false)`` (SQLite's
  ``COALESCE(expr, 0)`` mixes a boolean and an integer).

Field names arrive already mapped by the pipeline (:mod:`analysis.detect.sigma.pipeline`):
either a store column, or ``JSON_PREFIX + name`` for a Windows EventData field without a column
of its own, rendered as ``json_extract_string(win_event_data, '$."name"')``. Rule values are
rendered only as SQL literals with quotes doubled by the backend; log content never reaches SQL.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sigma.backends.sqlite import sqliteBackend
from sigma.conditions import ConditionFieldEqualsValueExpression
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.rule import SigmaRule
from sigma.types import SigmaCompareExpression, SigmaString

from analysis.scope import sql_type
from loaders.schema import event_schema

#: A mapped field name with this prefix is an EventData key read from ``win_event_data``.
JSON_PREFIX = "@win_event_data:"

_COLUMN_TYPES: dict[str, str] = {f.name: sql_type(f.type) for f in event_schema()}
_JSON_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\- ]*")


def column_types() -> dict[str, str]:
    """The DuckDB type of every column of the event schema (what the views carry)."""
    return dict(_COLUMN_TYPES)


def field_sql(field: str) -> str:
    """The SQL text expression of a mapped field name.

    Raises:
        SigmaFeatureNotSupportedByBackendError: the field is neither a store column nor an
            EventData key (the pipeline left it unmapped), or the key has characters a JSON
            path would need quoting for.
    """
    if field.startswith(JSON_PREFIX):
        key = field[len(JSON_PREFIX):]
        if not _JSON_KEY.fullmatch(key):
            raise SigmaFeatureNotSupportedByBackendError(f"field name {key!r} is not supported")
        return f"json_extract_string(win_event_data, '$.\"{key}\"')"
    kind = _COLUMN_TYPES.get(field)
    if kind is None:
        raise SigmaFeatureNotSupportedByBackendError(
            f"field {field.removeprefix('?')!r} has no column in the store for this log "
            "source")
    return f'"{field}"' if kind == "VARCHAR" else f'CAST("{field}" AS VARCHAR)'


class DuckDBBackend(sqliteBackend):
    """SQLite's Sigma backend with DuckDB's operators, case rules and types.

    ``convert_rule`` returns the bare condition (no ``SELECT``): the engine puts many rules'
    conditions into one query per log source.
    """

    identifier: ClassVar[str] = "auditlens_duckdb"
    name: ClassVar[str] = "auditlens DuckDB backend"

    eq_expression: ClassVar[str] = "lower({field}) = lower({value})"
    wildcard_match_expression: ClassVar[str] = "{field} ILIKE '{value}' ESCAPE '\\'"
    contains_expression: ClassVar[str] = "{field} ILIKE '%{value}%' ESCAPE '\\'"
    re_expression: ClassVar[str] = "regexp_matches({field}, '{regex}')"
    compare_op_expression: ClassVar[str] = "TRY_CAST({field} AS DOUBLE) {operator} {value}"
    null_safe_expression: ClassVar[str] = "COALESCE({expr}, false)"
    bool_expression: ClassVar[str] = "lower({field}) IN ({value}, {numeric_value})"
    bool_numeric_values: ClassVar[dict[bool, str]] = {True: "'1'", False: "'0'"}
    field_equals_field_expression: ClassVar[str | None] = "lower({field1}) = lower({field2})"
    field_equals_field_startswith_expression: ClassVar[str | None] = (
        "{field1} ILIKE " + sqliteBackend.field_ref_like_escape + " || '%' ESCAPE '\\'")
    field_equals_field_endswith_expression: ClassVar[str | None] = (
        "{field1} ILIKE '%' || " + sqliteBackend.field_ref_like_escape + " ESCAPE '\\'")
    field_equals_field_contains_expression: ClassVar[str | None] = (
        "{field1} ILIKE '%' || " + sqliteBackend.field_ref_like_escape + " || '%' ESCAPE '\\'")
    field_timestamp_part_expression: ClassVar[str | None] = None

    def __init__(self, processing_pipeline: Any = None, collect_errors: bool = False,
                 **options: Any) -> None:
        options.setdefault("fulltext_field", "message")
        super().__init__(processing_pipeline, collect_errors, **options)

    def escape_and_quote_field(self, field: str) -> str:
        """Every field as a text expression, so comparisons never depend on column types."""
        return field_sql(field)

    def convert_condition_field_eq_val_num(self, cond: ConditionFieldEqualsValueExpression,
                                           state: ConversionState) -> str:
        """A number compares as its text: ``EventID: 4688`` against an integer or a text
        column alike, never a cast of event data that could fail."""
        text = str(cond.value).replace("'", "''")
        return f"{self.escape_and_quote_field(cond.field)} = '{text}'"

    def convert_condition_field_compare_op_val(self, cond: ConditionFieldEqualsValueExpression,
                                               state: ConversionState) -> str:
        value = cond.value
        assert isinstance(value, SigmaCompareExpression)
        return self.compare_op_expression.format(
            field=self.escape_and_quote_field(cond.field),
            operator=self.compare_operators[value.op], value=float(value.number.number))

    def convert_condition_field_eq_val_str_case_sensitive(
            self, cond: ConditionFieldEqualsValueExpression, state: ConversionState) -> str:
        """``|cased``: DuckDB's ``LIKE`` is case-sensitive (SQLite used ``GLOB``)."""
        assert isinstance(cond.value, SigmaString)
        value = self.convert_value_str(cond.value, state, no_quote=True)
        return f"{self.escape_and_quote_field(cond.field)} LIKE '{value}' ESCAPE '\\'"

    def resolve_table(self, state: Any = None) -> str:
        return "events"

    def finalize_query_default(self, rule: Any, query: str, index: int,
                               state: ConversionState) -> Any:
        """The condition alone; the engine writes the query around it."""
        if not isinstance(rule, SigmaRule):
            raise SigmaFeatureNotSupportedByBackendError("correlation rules are not supported")
        return query
