"""`make demo`: build a warehouse from the simulated clouds through the real pipeline.

Starts the cloud doubles for the last N UTC days, points the SDKs at them, runs every
asset of the real Definitions for that range in Dagster (one run per range, as a UI
backfill of the same range would), and prints what landed and where to look next.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import duckdb
from dagster import AssetsDefinition, DagsterInstance, materialize

from finops_pipeline.defs.partitions import DAILY, day_start
from finops_pipeline.report import report_path
from finops_pipeline.simulator.clouds import simulated_clouds
from finops_pipeline.simulator.fleet import build_fleet
from finops_pipeline.simulator.predictions import write_predictions
from finops_pipeline.warehouse.catalog import SQL_DIR, open_catalog

# The group of unpartitioned assets that read partitioned ones (the cost report): built last.
AFTER_PARTITIONED = "unpartitioned, reading partitioned assets"


def _assets_by_partitioning() -> dict[object, list[AssetsDefinition]]:
    """Materializable assets grouped by partitions definition (None = unpartitioned and reading
    no partitioned asset; AFTER_PARTITIONED = unpartitioned and reading some)."""
    from finops_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    groups: dict[object, dict[int, AssetsDefinition]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            pdef = node.partitions_def
            if pdef is None and any(graph.get(p).partitions_def is not None for p in node.parent_keys):
                pdef = AFTER_PARTITIONED
            groups.setdefault(pdef, {})[id(node.assets_def)] = node.assets_def
    return {pdef: list(assets.values()) for pdef, assets in groups.items()}


# One in-process run over a range mixes the cost assets' single-run policy with the metrics'
# 7-day chunks; the chunking only matters to daemon backfills, so the notice is noise here.
warnings.filterwarnings("ignore", message=".*materializes assets with varying BackfillPolicies")

# The demo prints each asset's one-line summary, not Dagster's per-event debug stream.
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def materialize_window(start: date, end: date, instance: DagsterInstance) -> None:
    """Materialize every asset for [start, end): unpartitioned ones, then the daily assets as
    one partition range (as a UI backfill would), then coarser partitions (months) overlapping it,
    then the unpartitioned assets that read partitioned ones (the report)."""
    groups = _assets_by_partitioning()  # from the code location: its resources come bound
    after = groups.pop(AFTER_PARTITIONED, [])
    if None in groups:
        materialize(groups.pop(None), instance=instance, run_config=_QUIET)
    last = end - timedelta(days=1)
    if DAILY in groups:
        materialize(
            groups.pop(DAILY),
            instance=instance,
            run_config=_QUIET,
            tags={
                "dagster/asset_partition_range_start": start.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
        )
    window_start, window_end = day_start(start), day_start(end)
    for pdef, assets in groups.items():
        for key in pdef.get_partition_keys():
            span = pdef.time_window_for_partition_key(key)
            if span.start < window_end and span.end > window_start:
                materialize(assets, instance=instance, partition_key=key, run_config=_QUIET)
    if after:
        materialize(after, instance=instance, run_config=_QUIET)


# The demo reads each cloud's native billing export where the simulator delivers one.
DEMO_COST_SOURCES = {"AWS_COST_SOURCE": "export"}


def demo_window(days: int, today: date | None = None) -> tuple[date, date]:
    """[start, end) of the last ``days`` whole UTC days up to yesterday (partitions are UTC days,
    so the local date would ask the simulated clouds for a day that has not begun in UTC)."""
    end = today or datetime.now(timezone.utc).date()
    return end - timedelta(days=days), end


def run_demo(
    data_dir: Path, days: int = 30, today: date | None = None, out=print, lake_uri: str | None = None
) -> dict[str, int]:
    """Build the demo warehouse in ``data_dir`` (its lake at ``lake_uri``, default
    ``<data_dir>/lake``); returns rows per table."""
    data_dir = Path(data_dir).resolve()
    start, end = demo_window(days, today)
    fleet = build_fleet()
    out(f"Simulating {len(fleet.resources)} resources on AWS, GCP and Azure for [{start}, {end}) ...")
    with simulated_clouds(start, end, fleet) as env:
        env.update(DEMO_COST_SOURCES)
        if env.get("AZURE_EXPORT_URI"):  # Azure's FocusCost export is in Azurite (needs npm)
            env["AZURE_COST_SOURCE"] = "export"
        env["FINOPS_DATA_DIR"] = str(data_dir)
        env["FINOPS_LAKE_URI"] = lake_uri or ""
        previous = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            _write_predictions(fleet, data_dir / "predictions", start, end)
            (data_dir / "dagster_home").mkdir(parents=True, exist_ok=True)
            instance = DagsterInstance.local_temp(
                tempdir=str(data_dir / "dagster_home"), overrides={"telemetry": {"enabled": False}}
            )
            materialize_window(start, end, instance)
        finally:
            for k, v in previous.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    counts = summarize(data_dir, out, lake_uri)
    return counts


def _write_predictions(fleet, directory: Path, start: date, end: date) -> None:
    months = sorted({(start + timedelta(days=i)).replace(day=1) for i in range((end - start).days)})
    for month in months:
        write_predictions(fleet, directory, month)


def summarize(data_dir: Path, out=print, lake_uri: str | None = None) -> dict[str, int]:
    """Print rows per table and cloud, the marts' highlights, how to look further and, last, the
    cost report's path."""
    catalog = data_dir / "finops.duckdb"
    con = open_catalog(data_dir, lake_uri)
    counts: dict[str, int] = {}
    try:
        out("")
        out(f"Warehouse: {catalog}")
        out(f"{'table':<28}{'provider':<10}{'days':>6}{'rows':>10}")
        for table in _tables(con):
            columns = {r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()}
            group = "provider" if "provider" in columns else "'-'"
            dated = "count(DISTINCT usage_date)" if "usage_date" in columns else "NULL"
            rows = con.execute(f'SELECT {group}, {dated}, count(*) FROM "{table}" GROUP BY 1 ORDER BY 1').fetchall()
            counts[table] = sum(r[2] for r in rows)
            for provider, n_days, n in rows or [("-", 0, 0)]:
                out(f"{table:<28}{provider:<10}{n_days if n_days is not None else '':>6}{n:>10}")
        out("")
        out(demo_summary(con))
    finally:
        con.close()
    out("")
    where = _shown_path(data_dir)
    out("Look further:")
    lake_option = f" --lake-uri {lake_uri}" if lake_uri else ""
    out(
        f"  {_command('finops-pipeline')} query --data-dir {where}{lake_option} "
        '"SELECT provider, usage_date, billing_currency, sum(billed_cost) FROM cost_daily GROUP BY ALL ORDER BY 2 DESC LIMIT 8"'
    )
    out(
        f'  {_command("python")} -c "import duckdb; '
        f"print(duckdb.connect('{_shown_path(catalog)}', read_only=True).sql('SHOW TABLES'))\""
    )
    out("  make ui   # Dagster UI on http://127.0.0.1:3000 over this warehouse, simulated clouds behind it")
    report = report_path(data_dir)
    if report.is_file():
        out("")
        out(f"Cost report (the cost_report asset; one self-contained HTML file, open it in a browser): {report}")
    return counts


def _tables(con: duckdb.DuckDBPyConnection) -> Iterable[str]:
    """The catalog's data views (seed views, the rules and mappings, are not data)."""
    seeds = {p.stem for p in (SQL_DIR / "seeds").glob("*.csv")}
    names = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' ORDER BY 1"
    ).fetchall()
    return [name for (name,) in names if name not in seeds]


def _shown_path(path: Path) -> str:
    """A path as short as it can be shown: relative to the working directory when inside it."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _command(name: str) -> str:
    """How to call one of this environment's commands from the user's shell (the venv may not be active)."""
    if shutil.which(name) == str(Path(sys.executable).parent / name):
        return name
    return _shown_path(Path(sys.executable).parent / name)


def demo_summary(con: duckdb.DuckDBPyConnection) -> str:
    """Top 5 underutilized resources (latest as-of day), the latest month's predicted vs actual
    per cloud and the cost anomalies (spikes and drops), as plain text for ``make demo``."""
    top = con.execute("""
        SELECT rule_id AS rule, provider, coalesce(resource_name, resource_id) AS resource, confidence,
               format('{:.2f} {}', estimated_monthly_savings, billing_currency) AS savings_per_month, evidence
        FROM underutilized_resources
        WHERE usage_date = (SELECT max(usage_date) FROM underutilized_resources)
        ORDER BY estimated_monthly_savings DESC NULLS LAST, provider, resource_id LIMIT 5
    """).df()
    month = con.execute("""
        SELECT provider AS cloud, billing_currency AS currency, any_value(as_of_date) AS as_of,
               format('{:.2f}', sum(actual_cost)) AS actual_mtd,
               format('{:.2f}', sum(prorated_predicted_cost)) AS predicted_mtd,
               format('{:.2f}', sum(projected_month_end_cost)) AS projected_month_end,
               format('{:.2f}', sum(predicted_cost)) AS predicted_month,
               count(*) FILTER (WHERE status = 'over') AS over,
               count(*) FILTER (WHERE status = 'under') AS under,
               count(*) FILTER (WHERE status = 'no_prediction') AS no_prediction
        FROM cost_trend_monthly
        WHERE usage_date = (SELECT max(usage_date) FROM cost_trend_monthly)
        GROUP BY provider, billing_currency ORDER BY provider, billing_currency
    """).df()
    anomalies = con.execute("""
        SELECT usage_date AS day, provider AS cloud, sub_account_id AS account, service_name AS service,
               status, severity, format('{:.2f}', actual_cost) AS actual, format('{:.2f}', expected_cost) AS expected,
               billing_currency AS currency, top_resources[1].resource_id AS top_resource
        FROM cost_anomalies WHERE status IN ('spike', 'drop')
        ORDER BY usage_date DESC, abs(deviation) DESC LIMIT 10
    """).df()
    parts = [
        "Top 5 underutilized resources (estimated monthly savings):",
        top.to_string(index=False) if len(top) else "  none flagged",
        "",
        "This month, predicted vs actual per cloud:",
        month.to_string(index=False) if len(month) else "  no trend rows yet",
        "",
        "Cost anomalies (latest first; 14 days of billing needed before a day is judged):",
        anomalies.to_string(index=False) if len(anomalies) else "  none flagged",
    ]
    return "\n".join(parts)
