"""The per-table parts of ``docs/data-dictionary.md`` (description, partitions, key, column table),
made from the one declaration in ``schemas.py`` so the document cannot drift from the lake.

``python -m finops_pipeline.warehouse.dictionary`` rewrites them in place after a schema change;
``finops_pipeline_tests/warehouse/test_column_docs.py`` fails while they differ.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from finops_pipeline.warehouse.catalog import duckdb_type
from finops_pipeline.warehouse.schemas import TABLES, TableSpec

DICTIONARY = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"
COLUMN_HEADER = "| column | type | null | meaning |\n|---|---|---|---|\n"
_INTRO = re.compile(r"\n(?:[^\n]+\n)+\n- \*\*Partitions:\*\* [^\n]*\n- \*\*Key:\*\* [^\n]*\n")
_COLUMNS = re.compile(r"^\| column \| type \| null \| meaning \|\n(?:\|[^\n]*\n)*", re.MULTILINE)


def table_intro(spec: TableSpec) -> str:
    """The table's description, partition columns and key, as the section opens with them."""
    partitions = ", ".join(spec.partition_by) or "none (one file)"
    return f"{spec.description}\n\n- **Partitions:** {partitions}\n- **Key:** {', '.join(spec.key)}\n"


def column_table(spec: TableSpec) -> str:
    """One Markdown row per column of the table's view: name, DuckDB type, nullable, meaning."""
    rows = [
        f"| `{f.name}` | {duckdb_type(f.type)} | {'yes' if f.nullable else 'no'} | {spec.describe(f.name)} |\n"
        for f in spec.full_schema
    ]
    return COLUMN_HEADER + "".join(rows)


def _section(text: str, name: str) -> tuple[int, int]:
    """Where the ``### `name``` section of the document starts and ends."""
    found = re.search(rf"^### `{re.escape(name)}`\n", text, re.MULTILINE)
    if found is None:
        raise ValueError(f"{DICTIONARY.name} has no section '### `{name}`' for the warehouse table {name}")
    following = re.compile(r"^#{1,3} ", re.MULTILINE).search(text, found.end())
    return found.end(), following.start() if following else len(text)


def updated(text: str) -> str:
    """The document with every table's intro and column table made from schemas.py."""
    for name, spec in TABLES.items():
        start, end = _section(text, name)
        body = text[start:end]
        intro = _INTRO.match(body)
        table = _COLUMNS.search(body)
        if intro is None or table is None:
            raise ValueError(f"{DICTIONARY.name}: the section of {name} lacks its intro or column table")
        body = body[: table.start()] + column_table(spec) + body[table.end() :]
        body = "\n" + table_intro(spec) + body[intro.end() :]
        text = text[:start] + body + text[end:]
    return text


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DICTIONARY
    text = path.read_text()
    new = updated(text)
    if new == text:
        print(f"{path} is up to date")
    else:
        path.write_text(new)
        print(f"rewrote the table sections of {path} from finops_pipeline/warehouse/schemas.py")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
