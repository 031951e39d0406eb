"""Render docs/SCHEMA.md from the registered schema: ``python -m loaders.schemadoc``.

The document is generated so it cannot drift from the code; ``tests/test_schema.py`` checks
the committed file is current.
"""

from __future__ import annotations

import loaders
from loaders.schema import CATEGORIES, CORE_COLUMNS, OUTCOMES, Column

_HEAD = """# Event schema

Generated from `loaders/schema/` (core and extra columns) and the loaders' descriptions by
`python -m loaders.schemadoc > docs/SCHEMA.md`; do not edit by hand.

Every Parquet file in the store carries all of these columns (nulls where a source has no
value). Readers tolerate files written before a column existed.

`category` is one of: {categories}.
`outcome` is one of: {outcomes}.

## Core columns

| column | type | meaning | ECS | OCSF |
|---|---|---|---|---|
"""


def _row(col: Column) -> str:
    cells = (f"`{col.name}`", str(col.type), col.meaning, col.ecs or "—", col.ocsf or "—")
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def render() -> str:
    """The whole SCHEMA.md text."""
    out = [_HEAD.format(categories=", ".join(f"`{c}`" for c in sorted(CATEGORIES)),
                        outcomes=", ".join(f"`{o}`" for o in sorted(OUTCOMES)))]
    out.extend(_row(c) for c in CORE_COLUMNS)
    for loader in loaders.LOADERS.values():
        out.append(f"\n## `{loader.name}` — {loader.description}\n")
        out.append(f"Reads: {loader.reads}. One counted record is one {loader.record}.\n")
        if loader.extra_columns:
            out.append("| column | type | meaning | ECS | OCSF |\n|---|---|---|---|---|")
            out.extend(_row(c) for c in loader.extra_columns)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
