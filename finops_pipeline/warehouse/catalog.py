"""The DuckDB catalog: one view per lake table, per seed CSV and per SQL view in ``sql/views/``.

The pipeline only writes Parquet; it opens ``finops.duckdb`` read-write just to
(re)create views whose definition changed (a table's first file landed, the data
directory moved, a view's SQL file changed). When an analyst holds the file open the
refresh is deferred, logged, and retried by the next run: new partitions of existing
tables show up without any catalog change because views read the lake by glob.

Views hold absolute paths. :func:`open_catalog` (the CLI's way in) re-points the views of
a copied or moved data directory at its own lake before reading, and fails naming both
lakes when it cannot; it never reads another directory's lake silently.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
from filelock import FileLock

from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.schemas import TABLES, TableSpec

log = logging.getLogger(__name__)


def find_sql_dir() -> Path:
    """The SQL, seeds and views: ``finops_pipeline/sql`` in an installed wheel (setup.py maps the
    top-level ``sql/`` there), else the source tree's ``sql/`` (checkout, editable install)."""
    packaged = resources.files("finops_pipeline") / "sql"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged  # Not counted in coverage: test_wheel.py runs the installed wheel in its own process
    return Path(__file__).resolve().parents[2] / "sql"


SQL_DIR = find_sql_dir()
STATE_TABLE = "_finops_catalog"
MACROS = "(macros)"  # the state row that tracks sql/macros.sql
CATALOG_FILE = "finops.duckdb"

# The asset that writes each raw table's partitions (marts are written by their namesake).
_WRITER = {"cost_daily": "{provider}_cost", "cost_forecast": "{provider}_cost", "metrics_hourly": "{provider}_metrics"}


class CatalogError(RuntimeError):
    """The catalog's views cannot be made to read this data directory's lake; the message
    names the file(s) and the fix. Lake partitions already written stay in place."""


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB type name for an Arrow type used in our schemas."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_date32(t):
        return "DATE"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_map(t):
        return f"MAP({duckdb_type(t.key_type)}, {duckdb_type(t.item_type)})"
    if pa.types.is_list(t):
        return f"{duckdb_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{f.name} {duckdb_type(f.type)}" for f in t) + ")"
    raise TypeError(f"no DuckDB type for {t}")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_view_sql(lake: Lake, spec: TableSpec) -> str:
    """SELECT over a table's files, or a typed empty SELECT when it has none yet."""
    columns = spec.full_schema
    if not lake.partitions(spec.name):
        cols = ", ".join(f"CAST(NULL AS {duckdb_type(f.type)}) AS {_quote(f.name)}" for f in columns)
        return f"SELECT {cols} WHERE false"
    cols = ", ".join(_quote(f.name) for f in columns)
    options = "union_by_name = true"
    if spec.partition_by:
        hive_types = ", ".join(f"{_literal(n)}: {duckdb_type(columns.field(n).type)}" for n in spec.partition_by)
        options += f", hive_partitioning = true, hive_types = {{{hive_types}}}"
    return f"SELECT {cols} FROM read_parquet({_literal(lake.glob(spec.name))}, {options})"


def comment_statements(spec: TableSpec) -> list[str]:
    """COMMENT ON the table's view and each of its columns, from schemas.py, so a ``duckdb``
    session sees them (``duckdb_views()``, ``duckdb_columns()``)."""
    view = _quote(spec.name)
    return [f"COMMENT ON VIEW {view} IS {_literal(spec.description)}"] + [
        f"COMMENT ON COLUMN {view}.{_quote(f.name)} IS {_literal(spec.describe(f.name))}" for f in spec.full_schema
    ]


def seed_view_sql(path: Path) -> str:
    """A seed CSV (header row; types detected by DuckDB) as a SELECT."""
    return f"SELECT * FROM read_csv({_literal(str(Path(path).resolve()))}, header = true)"


def view_definitions(lake: Lake, sql_dir: Path = SQL_DIR) -> dict[str, str]:
    """Every view the catalog should hold, name -> SELECT: tables, seeds, then ``sql/views``."""
    views = {name: table_view_sql(lake, spec) for name, spec in TABLES.items()}
    for path in sorted((sql_dir / "seeds").glob("*.csv")):
        views[path.stem] = seed_view_sql(path)
    for path in sorted((sql_dir / "views").glob("*.sql")):
        views[path.stem] = path.read_text().strip().rstrip(";")
    return views


def create_views(con: duckdb.DuckDBPyConnection, views: dict[str, str], lake: Lake | None = None) -> None:
    """CREATE OR REPLACE each view; a view DuckDB cannot bind raises CatalogError naming the
    unreadable files of ``lake`` behind it and how to replace them."""
    for name, select in views.items():
        try:
            con.execute(f"CREATE OR REPLACE VIEW {_quote(name)} AS {select}")
        except duckdb.Error as exc:
            raise CatalogError(_view_failure(lake, name, exc)) from None


def _view_failure(lake: Lake | None, name: str, exc: Exception) -> str:
    reason = str(exc).splitlines()[0]
    bad = lake.unreadable_files(name) if lake is not None and name in TABLES else []
    if not bad:
        return f"view {name} could not be created: {reason}"
    fixes = "; ".join(f"{path}: re-materialize {_partition_of(lake, name, path)} (or delete the file)" for path in bad)
    return f"view {name} could not be created: unreadable Parquet file(s): {fixes}"


def _partition_of(lake: Lake, table: str, path: str) -> str:
    """'partition <day> of <asset>' for a lake file, as an operator finds it in the Dagster UI."""
    values = lake.partition_of(table, path)
    asset = _WRITER.get(table, table).format(**values)
    return f"partition {values['usage_date']} of {asset}" if "usage_date" in values else asset


def macros_sql(sql_dir: Path = SQL_DIR) -> str:
    """The helper macros (``sql/macros.sql``): CREATE OR REPLACE MACRO statements."""
    path = sql_dir / "macros.sql"
    return path.read_text() if path.exists() else ""


def views_read_by(query: str, views: dict[str, str]) -> dict[str, str]:
    """The views ``query`` names, directly or through other views, in creation order."""
    wanted: set[str] = set()
    texts = [query]
    while texts:
        text = texts.pop()
        for name, select in views.items():
            if name not in wanted and re.search(rf"\b{re.escape(name)}\b", text):
                wanted.add(name)
                texts.append(select)
    return {name: select for name, select in views.items() if name in wanted}


def macro_statements(sql: str) -> dict[str, str]:
    """Macro name -> its CREATE statement, from the text of ``sql/macros.sql``."""
    statements = {}
    for statement in re.sub(r"--[^\n]*", "", sql).split(";"):
        if found := re.search(r"CREATE\s+OR\s+REPLACE\s+MACRO\s+(\w+)", statement, re.IGNORECASE):
            statements[found.group(1)] = statement.strip()
    return statements


def connect_lake(lake: Lake, sql_dir: Path = SQL_DIR, for_query: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views and macros over the lake (no catalog file
    lock): all of them, or only those ``for_query`` uses (a view over many files takes time
    to bind, and a mart reads a few tables)."""
    con = lake.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # a run's captured stdout is its log
    views, macros = view_definitions(lake, sql_dir), macro_statements(macros_sql(sql_dir))
    if for_query is not None:
        macros = {name: m for name, m in macros.items() if re.search(rf"\b{name}\b", for_query)}
        views = views_read_by("\n".join([for_query, *macros.values()]), views)
    create_views(con, views, lake)
    for statement in macros.values():
        con.execute(statement)
    return con


@dataclass
class CatalogRefresh:
    """Outcome of a catalog refresh: 'unchanged', 'refreshed' or 'deferred'."""

    status: str
    changed: list[str] = field(default_factory=list)
    reason: str | None = None


def _digest(select: str) -> str:
    return hashlib.sha256(select.encode()).hexdigest()


def _is_held_elsewhere(exc: Exception) -> bool:
    # Another process: "Could not set lock on file". This process: "different configuration".
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text


def _current_digests(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [STATE_TABLE]).fetchone()[0]
        if not exists:
            return {}
        return dict(con.execute(f"SELECT name, digest FROM {STATE_TABLE}").fetchall())
    finally:
        con.close()


def refresh_catalog(data_dir: Path, sql_dir: Path = SQL_DIR, lake_uri: str | None = None) -> CatalogRefresh:
    """Bring the views in ``<data_dir>/finops.duckdb`` up to date with the lake (``lake_uri``,
    default ``<data_dir>/lake``; the catalog file itself is always local).

    Serialized across processes by a file lock. If another process holds the DuckDB
    file (an analyst's session), the refresh is deferred and reported, never failed.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CATALOG_FILE
    lake = Lake(lake_uri or data_dir / "lake")
    views = view_definitions(lake, sql_dir)
    macros = macros_sql(sql_dir)
    # A view is replaced when its SELECT or its comments change (a replaced view loses its comments).
    comments = {name: comment_statements(spec) for name, spec in TABLES.items()}
    wanted = {name: _digest("\n".join([select, *comments.get(name, [])])) for name, select in views.items()}
    wanted[MACROS] = _digest(macros)
    with FileLock(str(data_dir / ".catalog.lock"), timeout=600):
        try:
            current = _current_digests(path)
            changed = [name for name, digest in wanted.items() if current.get(name) != digest]
            if not changed:
                return CatalogRefresh("unchanged")
            con = lake.register(duckdb.connect(str(path)))
        except duckdb.Error as exc:
            if not _is_held_elsewhere(exc):
                # Not a lock: the file itself (truncated copy, other DuckDB version). A retry
                # would meet it again, so the run fails once with the fix.
                raise CatalogError(
                    f"{path} cannot be opened ({str(exc).splitlines()[0]}): move it aside or delete it; "
                    "the next run re-creates its views over the lake (the lake is not in it)"
                ) from None
            reason = f"{path} is open in another process; views will be refreshed by the next run"
            log.warning("catalog refresh deferred: %s", reason)
            return CatalogRefresh("deferred", reason=reason)
        try:
            con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (name VARCHAR PRIMARY KEY, digest VARCHAR)")
            con.execute("BEGIN TRANSACTION")
            # Tables first: SQL views and macros may select from them.
            create_views(con, {name: views[name] for name in views if name in changed}, lake)
            for name in changed:
                for statement in comments.get(name, []):
                    con.execute(statement)
            if MACROS in changed and macros:
                con.execute(macros)
            con.executemany(
                f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?)",
                [[name, wanted[name]] for name in changed],
            )
            con.execute("COMMIT")
        finally:
            con.close()
    return CatalogRefresh("refreshed", changed=changed)


def lakes_read_by(path: Path) -> set[str]:
    """The lake roots the catalog's table views read (normally one: its data directory's)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
    finally:
        con.close()
    roots = set()
    for name, sql in rows:
        if name not in TABLES:
            continue
        for found in re.finditer(r"read_parquet\('((?:[^']|'')*)'", sql or ""):
            glob = found.group(1).replace("''", "'")
            # <root>/<table>/[*/...]part.parquet: the root is above the table's directory.
            roots.add(glob.rsplit("/", len(TABLES[name].partition_by) + 2)[0])
    return roots


def open_catalog(data_dir: Path, lake_uri: str | None = None) -> duckdb.DuckDBPyConnection:
    """``<data_dir>/finops.duckdb`` opened read-only, its views reading the lake at ``lake_uri``
    (default: this data dir's own lake), which the connection can read (see Lake.register).

    A copied or moved data directory's views still name the original lake (and a catalog
    built for another lake URI names that one): they are re-pointed first (refresh_catalog);
    if another process holds the file so that they cannot be, CatalogError names both lakes
    rather than reading the other one.
    """
    data_dir = Path(data_dir).resolve()
    path = data_dir / CATALOG_FILE
    lake = Lake(lake_uri or data_dir / "lake")
    own = lake.uri
    foreign = sorted(root for root in lakes_read_by(path) if root != own)
    if foreign:
        outcome = refresh_catalog(data_dir, lake_uri=lake_uri)
        if outcome.status == "deferred":
            raise CatalogError(
                f"{path} has views over the lake at {', '.join(foreign)}, not over its own lake {own} (the "
                f"data directory was copied or moved), and they cannot be re-pointed now: {outcome.reason}. "
                "Close the other sessions on it and retry"
            )
        log.info("catalog views re-pointed from %s to %s", ", ".join(foreign), own)
    return lake.register(duckdb.connect(str(path), read_only=True))
