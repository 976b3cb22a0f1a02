"""The `finops-pipeline` command.

Errors end the command with a non-zero exit and one clear line; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    from finops_pipeline.demo import run_demo

    run_demo(Path(args.data_dir), days=args.days, lake_uri=_lake_uri(args))
    return 0


def _ui(args: argparse.Namespace) -> int:
    import os
    import signal
    import subprocess

    from finops_pipeline.demo import DEMO_COST_SOURCES, demo_window
    from finops_pipeline.simulator.clouds import simulated_clouds

    data_dir = Path(args.data_dir).resolve()
    home = data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    with simulated_clouds(*demo_window(args.days)) as env:
        env.update({**DEMO_COST_SOURCES, "FINOPS_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(home)})
        print(f"Simulated clouds up; Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C to stop)")
        command = [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            # The module, not workspace.yaml: an installed package has no workspace file to find.
            "-m",
            "finops_pipeline.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(args.port),
        ]
        # Its own process group, so stopping us stops dagster dev and everything it started.
        process = subprocess.Popen(command, env={**os.environ, **env}, start_new_session=True)
        signal.signal(signal.SIGTERM, lambda *_: _stop_group(process))
        try:
            return process.wait()
        except KeyboardInterrupt:
            _stop_group(process)
            return 130


def _stop_group(process, grace: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is still there after ``grace`` seconds."""
    import os
    import signal
    import subprocess

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    # Not reached in tests: the loop ends only if a process outlives SIGKILL by 15 s (stuck in the kernel).


def _lake_uri(args: argparse.Namespace) -> str | None:
    """--lake-uri, else FINOPS_LAKE_URI, else None (the data directory's own lake)."""
    from finops_pipeline.settings import get_settings
    from finops_pipeline.warehouse.storage import parse_lake_uri

    if getattr(args, "lake_uri", None):
        parse_lake_uri(args.lake_uri)  # a bad scheme fails here, naming what is allowed
        return args.lake_uri
    return get_settings().lake_uri


def _data_dir(args: argparse.Namespace) -> Path:
    """--data-dir, else FINOPS_DATA_DIR (environment or .env), else ./data."""
    if args.data_dir:
        return Path(args.data_dir)
    from finops_pipeline.settings import get_settings

    return get_settings().data_dir


class ReadOnlyQueryError(ValueError):
    """`finops-pipeline query` was asked to do more than read the warehouse."""


# Statements that only read: SELECT (also DESCRIBE, SHOW, SUMMARIZE, FROM ...) and EXPLAIN.
READ_STATEMENTS = ("SELECT", "EXPLAIN")


def _catalog(data_dir: Path, lake_uri: str | None = None):
    """The catalog, opened read-only (analysts and the pipeline keep working meanwhile) and locked
    down: files are readable only inside the lake and the seeds, no extension is installed or
    loaded, and the configuration cannot be changed back (DuckDB's external access settings)."""
    import os

    from finops_pipeline.warehouse.catalog import SQL_DIR, open_catalog
    from finops_pipeline.warehouse.lake import Lake

    path = data_dir / "finops.duckdb"
    if not path.is_file():
        raise FileNotFoundError(
            f"no catalog at {path}: run the pipeline first (finops-pipeline demo, or a "
            "Dagster run) or point --data-dir / FINOPS_DATA_DIR at a warehouse"
        )
    con = open_catalog(data_dir, lake_uri)
    for statement in (
        "SET TimeZone = 'UTC'",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET allow_community_extensions = false",
    ):
        con.execute(statement)
    lake = Lake(lake_uri or Path(data_dir).resolve() / "lake")
    allowed = [lake.uri + ("/" if lake.remote else os.sep), str(SQL_DIR / "seeds") + os.sep]
    con.execute("SET allowed_directories = ?", [allowed])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _read_only(sql: str) -> None:
    """Refuse any statement but a read (COPY ... TO, ATTACH, INSTALL/LOAD, SET, CALL, DDL ...)."""
    import duckdb

    statements = duckdb.extract_statements(sql)
    if not statements:  # empty, or comments only: DuckDB would return no cursor at all
        raise ValueError('no SQL statement to run: pass one, e.g. "SELECT * FROM cost_daily LIMIT 5"')
    for statement in statements:
        if statement.type.name not in READ_STATEMENTS:
            raise ReadOnlyQueryError(
                f"query is read-only: only SELECT (with DESCRIBE, SHOW, SUMMARIZE) and "
                f"EXPLAIN statements run here, not {statement.type.name}; open the catalog "
                "with duckdb yourself to write elsewhere"
            )


def _plain(value):
    """A JSON/CSV-friendly value: exact decimals as strings, times in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """Rows as an aligned text table (numbers right-aligned)."""
    cells = [["" if v is None else str(_plain(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(r[i], (int, float, Decimal)) or r[i] is None for r in rows) and bool(rows)
        for i in range(len(columns))
    ]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def write_rows(columns: list[str], rows: list[tuple], fmt: str, stream=None) -> None:
    stream = stream or sys.stdout
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in row] for row in rows])
    elif fmt == "json":
        json.dump([dict(zip(columns, (_plain(v) for v in row))) for row in rows], stream, indent=2)
        stream.write("\n")
    else:
        stream.write(format_table(columns, rows) + "\n")


def _query(args: argparse.Namespace) -> int:
    import duckdb

    _read_only(args.sql)
    data_dir, lake_uri = _data_dir(args), _lake_uri(args)
    con = _catalog(data_dir, lake_uri)
    try:
        try:
            cursor = con.execute(args.sql)
        except duckdb.PermissionException as exc:
            raise ReadOnlyQueryError(
                f"query is read-only and reads files only inside the warehouse "
                f"({lake_uri or Path(data_dir).resolve() / 'lake'}); the query reached outside the "
                f"warehouse: {str(exc).splitlines()[0]}"
            ) from None
        columns = [d[0] for d in cursor.description]
        write_rows(columns, cursor.fetchall(), args.format)
    finally:
        con.close()
    return 0


def table_summaries(data_dir: Path, lake_uri: str | None = None) -> list[tuple]:
    """Per catalog view: kind, rows, first and last usage_date, and when its lake files last changed."""
    from finops_pipeline.warehouse.lake import Lake
    from finops_pipeline.warehouse.schemas import TABLES

    con = _catalog(data_dir, lake_uri)
    lake = Lake(lake_uri or Path(data_dir).resolve() / "lake")
    summaries = []
    try:
        views = [
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' ORDER BY 1"
            ).fetchall()
        ]
        for view in views:
            columns = {r[0] for r in con.execute(f'DESCRIBE "{view}"').fetchall()}
            dates = "min(usage_date), max(usage_date)" if "usage_date" in columns else "NULL, NULL"
            rows, first, last = con.execute(f'SELECT count(*), {dates} FROM "{view}"').fetchone()
            updated = None
            if view in TABLES:
                times = [info.mtime for info in lake.files(view) if info.mtime is not None]
                if times:
                    updated = max(times).astimezone(timezone.utc)
            kind = "table" if view in TABLES else "view"
            summaries.append(
                (view, kind, rows, first, last, updated.strftime("%Y-%m-%d %H:%M:%S UTC") if updated else None)
            )
    finally:
        con.close()
    return summaries


def _tables(args: argparse.Namespace) -> int:
    columns = ["table", "kind", "rows", "first_day", "last_day", "last_update"]
    write_rows(columns, table_summaries(_data_dir(args), _lake_uri(args)), args.format)
    return 0


def _rebuild_catalog(args: argparse.Namespace) -> int:
    from finops_pipeline.warehouse.catalog import refresh_catalog

    data_dir, lake_uri = _data_dir(args), _lake_uri(args)
    outcome = refresh_catalog(data_dir, lake_uri=lake_uri)
    if outcome.status == "deferred":
        held = outcome.reason.split(";")[0]  # "<catalog> is open in another process"
        raise RuntimeError(f"{held}; close the other sessions on it and run the command again")
    print(f"{Path(data_dir).resolve() / 'finops.duckdb'}: {outcome.status}, views over {lake_uri or 'the local lake'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from finops_pipeline.report import report_path, write_report
    from finops_pipeline.warehouse.lake import Lake

    data_dir = _data_dir(args)
    if not (data_dir / "finops.duckdb").is_file():
        raise FileNotFoundError(
            f"no catalog at {data_dir / 'finops.duckdb'}: run the pipeline first (finops-pipeline demo, or a "
            "Dagster run) or point --data-dir / FINOPS_DATA_DIR at a warehouse"
        )
    out = Path(args.out) if args.out else report_path(data_dir)
    data = write_report(Lake(_lake_uri(args) or data_dir / "lake"), out, args.days)
    window = f"[{data.start}, {data.end})" if data.start else "no billing yet"
    print(f"Cost report for {window} written to {out.resolve()}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from finops_pipeline.doctor import run_doctor
    from finops_pipeline.settings import get_settings

    settings = get_settings()
    if args.data_dir:
        settings = settings.with_overrides(data_dir=Path(args.data_dir))
    return 1 if run_doctor(settings) else 0


def _pools(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from finops_pipeline.defs.pools import apply_pool_limits

    # DagsterInstance.get() reads $DAGSTER_HOME/dagster.yaml: the Postgres instance in production.
    with DagsterInstance.get() as instance:
        limits = apply_pool_limits(instance)
        for pool, limit in limits.items():
            print(f"{pool}: {limit} run(s) at a time")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finops-pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="build the demo warehouse from the simulated clouds")
    demo.add_argument("--data-dir", default="data/demo", help="where the demo warehouse goes (default data/demo)")
    demo.add_argument("--days", type=int, default=30, help="how many UTC days up to yesterday (default 30)")
    demo.add_argument(
        "--lake-uri",
        default=None,
        help="the lake: a local directory or s3://, gs://, abfs://... (default FINOPS_LAKE_URI, else <data dir>/lake)",
    )
    demo.set_defaults(run=_demo)

    ui = commands.add_parser("ui", help="dagster dev over a warehouse, with the simulated clouds serving")
    ui.add_argument("--data-dir", default="data/demo")
    ui.add_argument("--days", type=int, default=30, help="days the simulated clouds serve (default 30)")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(run=_ui)

    doctor = commands.add_parser("doctor", help="check each cloud's settings, credentials and one cheap call per API")
    doctor.add_argument("--data-dir", default=None, help="warehouse directory (default FINOPS_DATA_DIR or ./data)")
    doctor.set_defaults(run=_doctor)

    query = commands.add_parser("query", help="run read-only SQL against the warehouse catalog")
    query.add_argument(
        "sql", help='e.g. "SELECT provider, billing_currency, sum(billed_cost) FROM cost_daily GROUP BY ALL"'
    )
    query.add_argument("--data-dir", default=None, help="warehouse directory (default FINOPS_DATA_DIR or ./data)")
    query.add_argument(
        "--lake-uri",
        default=None,
        help="the lake: a local directory or s3://, gs://, abfs://... (default FINOPS_LAKE_URI, else <data dir>/lake)",
    )
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    query.set_defaults(run=_query)

    report = commands.add_parser(
        "report", help="write the cost report: one self-contained HTML file (charts and tables, no network needed)"
    )
    report.add_argument("--data-dir", default=None, help="warehouse directory (default FINOPS_DATA_DIR or ./data)")
    report.add_argument(
        "--out", default=None, help="the HTML file to write (default <data dir>/reports/cost_report.html)"
    )
    report.add_argument("--days", type=int, default=30, help="UTC days up to the last billed day (default 30)")
    report.add_argument(
        "--lake-uri",
        default=None,
        help="the lake: a local directory or s3://, gs://, abfs://... (default FINOPS_LAKE_URI, else <data dir>/lake)",
    )
    report.set_defaults(run=_report)

    tables = commands.add_parser("tables", help="tables and views: rows, day range, last update")
    tables.add_argument("--data-dir", default=None, help="warehouse directory (default FINOPS_DATA_DIR or ./data)")
    tables.add_argument(
        "--lake-uri",
        default=None,
        help="the lake: a local directory or s3://, gs://, abfs://... (default FINOPS_LAKE_URI, else <data dir>/lake)",
    )
    tables.add_argument("--format", choices=("table", "csv", "json"), default="table")
    tables.set_defaults(run=_tables)

    pools = commands.add_parser(
        "pools", help="set the per-API concurrency pool limits (defs/pools.py) on the Dagster instance in $DAGSTER_HOME"
    )
    pools.set_defaults(run=_pools)
    catalog = commands.add_parser(
        "catalog", help="(re)build the local catalog file's views over a lake, e.g. an s3:// lake on another machine"
    )
    catalog.add_argument(
        "--data-dir", default=None, help="where finops.duckdb goes (default FINOPS_DATA_DIR or ./data)"
    )
    catalog.add_argument(
        "--lake-uri",
        default=None,
        help="the lake: a local directory or s3://, gs://, abfs://... (default FINOPS_LAKE_URI, else <data dir>/lake)",
    )
    catalog.set_defaults(run=_rebuild_catalog)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line for operators; --debug for engineers
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"finops-pipeline {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
