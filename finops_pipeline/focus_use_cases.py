"""The FinOps Foundation's FOCUS use-case queries (sql/focus_use_cases/) run on the warehouse.

Each file holds one published query (its source URL in the header) written against
``focus_data_table`` with ``?`` parameters; :func:`run` names ``focus_cost_and_usage`` so for the
connection and binds the parameters in order.
"""

from __future__ import annotations

import re

import duckdb

from finops_pipeline.warehouse.catalog import SQL_DIR

USE_CASE_DIR = SQL_DIR / "focus_use_cases"
_PARAMETER = re.compile(r"(\w+)\s*(>=|<=|<|>|=)\s*\?")


def use_cases() -> dict[str, str]:
    """File stem -> SQL, every use case shipped."""
    return {path.stem: path.read_text() for path in sorted(USE_CASE_DIR.glob("*.sql"))}


def parameters(sql: str) -> list[tuple[str, str]]:
    """The (column, operator) each ``?`` of a query is compared with, in order."""
    return _PARAMETER.findall(sql)


def run(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> tuple[list[str], list[tuple]]:
    """Columns and rows of a use-case query on this connection's focus_cost_and_usage."""
    con.execute("CREATE OR REPLACE TEMP VIEW focus_data_table AS SELECT * FROM focus_cost_and_usage")
    cursor = con.execute(sql, params)
    return [d[0] for d in cursor.description], cursor.fetchall()
