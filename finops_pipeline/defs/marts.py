"""Marts: the SQL assets downstream of the raw cloud assets (their checks: mart_checks.py).

Each dated mart is daily-partitioned (cost_trend_monthly: monthly) and recomputes exactly the
partitions of its run: the SQL in ``sql/<mart>.sql`` reads the window it needs from the lake,
the result replaces those partitions (``Lake.write_partitions``), then the catalog is refreshed.
Restated raw partitions re-trigger the marts that read them (``MART_AUTOMATION``).
"""

import csv
from datetime import date, timedelta
from pathlib import Path
from time import perf_counter

import pyarrow as pa
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    BackfillPolicy,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
)

from finops_pipeline.clouds import PROVIDERS
from finops_pipeline.clouds.ingest import markdown_preview
from finops_pipeline.defs.partitions import DAILY, days, window
from finops_pipeline.defs.rules import anomaly_thresholds_overrides, rules_overrides
from finops_pipeline.predictions import prediction_files, read_predictions
from finops_pipeline.settings import Settings, partition_start_date, settings_of
from finops_pipeline.warehouse.catalog import SQL_DIR, refresh_catalog
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.metadata import table_metadata
from finops_pipeline.warehouse.resource import WarehouseResource
from finops_pipeline.warehouse.sql import run_sql

COST_ASSETS = [AssetKey(f"{p}_cost") for p in PROVIDERS]
METRICS_ASSETS = [AssetKey(f"{p}_metrics") for p in PROVIDERS]
TREND_TOLERANCE = 0.10  # within +-10% of the prediction a trend is on_track
BASELINE_DAYS = 28  # cost_anomalies: each day against the previous 4 weeks
LOOKBACK_DAYS = 30  # trailing cost for savings; the longest rule window (Cloud SQL) is 30 days

MONTHLY = MonthlyPartitionsDefinition(
    start_date=partition_start_date().replace(day=1).isoformat(),
    timezone="UTC",
    fmt="%Y-%m-%d",
    end_offset=1,  # the current month is measurable month-to-date
)

# eager(), but over the restatement horizon: a restated billing day re-runs its marts.
MART_AUTOMATION = (
    AutomationCondition.in_latest_time_window(timedelta(days=40))
    & (AutomationCondition.newly_missing() | AutomationCondition.any_deps_updated()).since_last_handled()
    & ~AutomationCondition.any_deps_missing()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("eager_with_restatements")

_TRAILING = TimeWindowPartitionMapping(start_offset=-(LOOKBACK_DAYS - 1), allow_nonexistent_upstream_partitions=True)
_BASELINE = TimeWindowPartitionMapping(start_offset=-BASELINE_DAYS, allow_nonexistent_upstream_partitions=True)
_MONTH_TO_DATE = TimeWindowPartitionMapping(start_offset=-31, allow_nonexistent_upstream_partitions=True)


def _write_mart(
    context: AssetExecutionContext,
    settings: Settings,
    table: str,
    data: pa.Table,
    expected: list[date],
    started: float,
    window_text: str,
) -> MaterializeResult:
    writes = Lake(settings.lake_root).write_partitions(table, data, expected=[{"usage_date": d} for d in expected])
    catalog = refresh_catalog(settings.data_dir, lake_uri=settings.lake_uri)
    if catalog.status == "deferred":
        context.log.warning(f"catalog view refresh deferred: {catalog.reason}")
    context.log.info(f"{table}: {data.num_rows} rows in {len(writes)} partitions for {window_text}")
    # A run over several partitions records this metadata on each: a row count only for one.
    row_count = {"dagster/row_count": data.num_rows} if len(expected) == 1 else {}
    return MaterializeResult(
        metadata={
            **row_count,
            "rows": data.num_rows,
            "partitions_written": len(writes),
            "window": window_text,
            "duration_seconds": round(perf_counter() - started, 3),
            "catalog": catalog.status,
            "preview": markdown_preview(data),
        }
    )


def _run_daily_mart(
    context: AssetExecutionContext,
    settings: Settings,
    table: str,
    extra: dict | None = None,
    seed_overrides: dict | None = None,
) -> MaterializeResult:
    started = perf_counter()
    start, end = window(context.partition_key_range)
    data = run_sql(table, Lake(settings.lake_root), {"start": start, "end": end, **(extra or {})}, seed_overrides)
    return _write_mart(context, settings, table, data, days(start, end), started, f"[{start}, {end})")


@asset(group_name="marts", kinds={"parquet"}, metadata=table_metadata("cost_predictions"))
def cost_predictions(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """IaC predictions from FINOPS_PREDICTIONS_DIR (Infracost JSON, documented CSV). Every file
    is validated before the table is replaced, so a malformed file leaves the old predictions;
    a missing or empty directory is skipped and leaves them too."""
    started = perf_counter()
    settings = settings_of(warehouse)
    directory = settings.predictions_path
    if not prediction_files(directory):
        reason = (
            f"{directory} has no prediction files (*.json, *.csv); set FINOPS_PREDICTIONS_DIR or add "
            "files. The predictions already landed are kept"
        )
        context.log.warning(f"cost_predictions skipped: {reason}")
        return MaterializeResult(metadata={"status": "skipped", "skipped_reason": reason, "rows": 0})
    frame = read_predictions(directory, settings.tag_match_key)
    Lake(settings.lake_root).write_partitions("cost_predictions", frame)
    catalog = refresh_catalog(settings.data_dir, lake_uri=settings.lake_uri)
    table = pa.Table.from_pandas(frame, preserve_index=False) if len(frame) else None
    return MaterializeResult(
        metadata={
            "rows": len(frame),
            "dagster/row_count": len(frame),
            "files": MetadataValue.json(sorted({Path(f).name for f in frame["source_file"]})),
            "unmapped_rows": int(frame["service_name"].isna().sum()) if len(frame) else 0,
            "duration_seconds": round(perf_counter() - started, 3),
            "catalog": catalog.status,
            "preview": markdown_preview(table.drop_columns(["tags"]) if table is not None else None),
        }
    )


@asset(
    partitions_def=DAILY,
    group_name="marts",
    kinds={"duckdb", "parquet"},
    metadata=table_metadata("utilization_daily"),
    deps=METRICS_ASSETS + COST_ASSETS,
    automation_condition=MART_AUTOMATION,
    backfill_policy=BackfillPolicy.single_run(),
)
def utilization_daily(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Per resource and UTC day: CPU avg/p95/max, memory, network, disk, requests, coverage, cost."""
    return _run_daily_mart(context, settings_of(warehouse), "utilization_daily")


def days_missing_utilization(lake: Lake, start: date, end: date) -> list[date]:
    """Days in [start, end) with metrics in the lake but no utilization_daily partition."""
    metric_days = {date.fromisoformat(p["usage_date"]) for p in lake.partitions("metrics_hourly")}
    built = {date.fromisoformat(p["usage_date"]) for p in lake.partitions("utilization_daily")}
    return sorted(d for d in metric_days - built if start <= d < end)


def _longest_window(seed_overrides: dict[str, Path]) -> int:
    path = seed_overrides.get("underutilization_rules", SQL_DIR / "seeds" / "underutilization_rules.csv")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return max([LOOKBACK_DAYS] + [int(float(row["window_days"])) for row in csv.DictReader(fh)])


@asset(
    partitions_def=DAILY,
    group_name="marts",
    kinds={"duckdb", "parquet"},
    metadata=table_metadata("underutilized_resources"),
    deps=[
        AssetDep(k, partition_mapping=_TRAILING) for k in [AssetKey("utilization_daily")] + METRICS_ASSETS + COST_ASSETS
    ],
    automation_condition=MART_AUTOMATION,
    backfill_policy=BackfillPolicy.single_run(),
)
def underutilized_resources(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Resources a provider-documented rule flags as of each day (rules: the seed or
    FINOPS_RULES_FILE), with evidence, confidence from coverage and estimated savings.
    Reads utilization_daily's day rows (and metrics_hourly only for rules on hourly values)."""
    settings = settings_of(warehouse)
    overrides = rules_overrides(settings)
    start, end = window(context.partition_key_range)
    missing = days_missing_utilization(
        Lake(settings.lake_root), start - timedelta(days=_longest_window(overrides) - 1), end
    )
    if missing:
        raise Failure(
            f"utilization_daily is missing for {len(missing)} day(s) with metrics ({missing[0]} .. {missing[-1]}); "
            "underutilized_resources reads its day rows: materialize utilization_daily for those days first",
            allow_retries=False,
        )
    return _run_daily_mart(
        context, settings, "underutilized_resources", {"coverage_floor": settings.metrics_coverage_floor}, overrides
    )


@asset(
    partitions_def=DAILY,
    group_name="marts",
    kinds={"duckdb", "parquet"},
    metadata=table_metadata("cost_trend_daily"),
    deps=[AssetDep(k, partition_mapping=_MONTH_TO_DATE) for k in COST_ASSETS] + [AssetKey("cost_predictions")],
    automation_condition=MART_AUTOMATION,
    backfill_policy=BackfillPolicy.single_run(),
)
def cost_trend_daily(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Predicted vs actual per day, provider and service (resource where a tag matches)."""
    settings = settings_of(warehouse)
    return _run_daily_mart(
        context, settings, "cost_trend_daily", {"tag_key": settings.tag_match_key, "tolerance": TREND_TOLERANCE}
    )


@asset(
    partitions_def=MONTHLY,
    group_name="marts",
    kinds={"duckdb", "parquet"},
    metadata=table_metadata("cost_trend_monthly"),
    deps=[AssetKey("cost_trend_daily")],
    automation_condition=MART_AUTOMATION,
    backfill_policy=BackfillPolicy.single_run(),
)
def cost_trend_monthly(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Predicted vs actual per month, month-to-date, with the run-rate month-end projection."""
    started = perf_counter()
    start = date.fromisoformat(context.partition_key_range.start)
    last = date.fromisoformat(context.partition_key_range.end)
    end = (last.replace(day=28) + timedelta(days=4)).replace(day=1)
    months, month = [], start
    while month < end:
        months.append(month)
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    settings = settings_of(warehouse)
    data = run_sql(
        "cost_trend_monthly", Lake(settings.lake_root), {"start": start, "end": end, "tolerance": TREND_TOLERANCE}
    )
    return _write_mart(context, settings, "cost_trend_monthly", data, months, started, f"[{start}, {end})")


@asset(
    partitions_def=DAILY,
    group_name="marts",
    kinds={"duckdb", "parquet"},
    metadata=table_metadata("cost_anomalies"),
    deps=[AssetDep(k, partition_mapping=_BASELINE) for k in COST_ASSETS],
    automation_condition=MART_AUTOMATION,
    backfill_policy=BackfillPolicy.single_run(),
)
def cost_anomalies(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """Each day's billed cost per provider, account, service and currency against its own median
    over the previous 28 days (same weekday where the history allows): expected, deviation, robust
    z-score, status and severity (thresholds: the seed anomaly_thresholds or
    FINOPS_ANOMALY_THRESHOLDS_FILE), resources that moved."""
    settings = settings_of(warehouse)
    overrides = anomaly_thresholds_overrides(settings, BASELINE_DAYS)
    return _run_daily_mart(context, settings, "cost_anomalies", {"baseline_days": BASELINE_DAYS}, overrides)


defs = Definitions(
    assets=[
        cost_predictions,
        utilization_daily,
        underutilized_resources,
        cost_trend_daily,
        cost_trend_monthly,
        cost_anomalies,
    ],
)
