"""Run a transformation from ``sql/<name>.sql`` over the lake and return its rows as Arrow.

The query runs on an in-memory DuckDB connection with every lake view (``connect_lake``),
never on the catalog file, so analysts holding ``finops.duckdb`` open never block it.
Seeds (``sql/seeds/<name>.csv``) are views named after their file; a caller may point a
seed at another file (a user's own thresholds). Parameters are bound with
``SET VARIABLE`` and read in SQL with ``getvariable('name')``: values never reach the text.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Mapping

import duckdb
import pyarrow as pa

from finops_pipeline.warehouse.catalog import SQL_DIR, connect_lake, seed_view_sql
from finops_pipeline.warehouse.lake import Lake

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# DuckDB's default limit is 80% of RAM; past this one a transformation spills to disk (next to
# the lake) instead of growing: same result, bounded memory (a 90-day backfill of 10,000
# resources peaks under 3 GiB instead of 4.5).
MEMORY_LIMIT = "2GB"


class SqlRunError(RuntimeError):
    """A transformation's SQL, seed or parameter is unusable; the message names which."""


def _identifier(kind: str, name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise SqlRunError(f"{kind} name {name!r} must be lower_snake_case (letters, digits, _)")
    return name


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def seed_paths(sql_dir: Path = SQL_DIR, overrides: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """Seed table name -> CSV file: every ``sql/seeds/*.csv``, with ``overrides`` applied."""
    paths = {p.stem: p for p in sorted((sql_dir / "seeds").glob("*.csv"))}
    for name, path in (overrides or {}).items():
        if name not in paths:
            raise SqlRunError(f"no seed named {name!r} to override; seeds are {sorted(paths)}")
        if not Path(path).is_file():
            raise SqlRunError(f"seed file for {name!r} not found: {path}")
        paths[name] = Path(path)
    return paths


def load_seeds(con: duckdb.DuckDBPyConnection, paths: Mapping[str, Path]) -> None:
    """Point each seed's view (``connect_lake`` made one per shipped CSV) at ``paths`` and
    read it once, so a malformed file fails here with its name."""
    for name, path in paths.items():
        view = _identifier("seed", name)
        try:
            con.execute(f'CREATE OR REPLACE VIEW "{view}" AS {seed_view_sql(path)}')
            con.execute(f'SELECT count(*) FROM "{view}"').fetchone()
        except duckdb.Error as exc:
            raise SqlRunError(f"seed {path} could not be read as CSV: {exc}") from None


def bind_parameters(con: duckdb.DuckDBPyConnection, params: Mapping[str, object]) -> None:
    """Bind each parameter as a DuckDB variable (``getvariable('name')`` in SQL)."""
    for name, value in params.items():
        con.execute(f'SET VARIABLE "{_identifier("parameter", name)}" = ?', [value])


def read_sql(name: str, sql_dir: Path = SQL_DIR) -> str:
    path = sql_dir / f"{_identifier('transformation', name)}.sql"
    if not path.is_file():
        raise SqlRunError(f"no SQL file {path}")
    return path.read_text()


def run_sql(
    name: str,
    lake: Lake,
    params: Mapping[str, object] | None = None,
    seed_overrides: Mapping[str, Path] | None = None,
    sql_dir: Path = SQL_DIR,
) -> pa.Table:
    """Run ``sql/<name>.sql`` against the lake with ``params`` bound; return the result."""
    query = read_sql(name, sql_dir)
    con = connect_lake(lake, sql_dir, for_query=query)
    try:
        # Spill next to a local lake; an object-store lake's runs spill to the local temp dir.
        spill_dir = str((lake.root.parent if lake.root else Path(tempfile.gettempdir())) / ".duckdb_tmp")
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute(f"SET temp_directory = {_sql_string(spill_dir)}")
        load_seeds(con, seed_paths(sql_dir, seed_overrides))
        bind_parameters(con, params or {})
        try:
            return con.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            raise SqlRunError(f"sql/{name}.sql failed: {exc}") from None
    finally:
        con.close()
