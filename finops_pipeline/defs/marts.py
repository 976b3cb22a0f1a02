"""Marts: the SQL assets downstream of the raw cloud assets, their checks, and the demo summary.

Each dated mart is daily-partitioned (cost_trend_monthly: monthly) and recomputes exactly the
partitions of its run: the SQL in ``sql/<mart>.sql`` reads the window it needs from the lake,
the result replaces those partitions (``Lake.write_partitions``), then the catalog is refreshed.
Restated raw partitions re-trigger the marts that read them (``MART_AUTOMATION``).
"""


import csv
import math
from datetime import date, timedelta
from pathlib import Path
from time import perf_counter

import duckdb
import pyarrow as pa
from dagster import (
    AssetCheckResult,
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
    asset_check,
)

from finops_pipeline.clouds.ingest import markdown_preview
from finops_pipeline.defs.partitions import DAILY, days, window
from finops_pipeline.predictions import prediction_files, read_predictions
from finops_pipeline.settings import Settings, get_settings
from finops_pipeline.warehouse.catalog import SQL_DIR, connect_lake, refresh_catalog
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.schemas import TABLES, TableSpec
from finops_pipeline.warehouse.sql import SqlRunError, run_sql

PROVIDERS = ("aws", "gcp", "azure")
COST_ASSETS = [AssetKey(f"{p}_cost") for p in PROVIDERS]
METRICS_ASSETS = [AssetKey(f"{p}_metrics") for p in PROVIDERS]
TREND_TOLERANCE = 0.10  # within +-10% of the prediction a trend is on_track
LOOKBACK_DAYS = 30  # trailing cost for savings; the longest rule window (Cloud SQL) is 30 days

MONTHLY = MonthlyPartitionsDefinition(
    start_date=get_settings().start_date.replace(day=1).isoformat(), timezone="UTC", fmt="%Y-%m-%d",
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
_MONTH_TO_DATE = TimeWindowPartitionMapping(start_offset=-31, allow_nonexistent_upstream_partitions=True)


class RulesFileError(ValueError):
    """The underutilization rules file is unusable; the message names the file and the fix."""


# Rule columns by kind of value (a blank cell is a threshold not checked).
_RULE_PERCENTS = ("day_cpu_avg_at_most_pct", "cpu_p95_below_pct", "cpu_p95_at_most_pct", "recent_cpu_at_most_pct",
                  "hour_cpu_below_pct")
_RULE_SHARES = ("hour_cpu_share_at_least", "hour_network_in_share_at_least", "hour_network_out_share_at_least")
_RULE_AMOUNTS = ("day_network_at_most_bytes", "day_requests_below", "network_out_per_day_at_most_bytes",
                 "connections_at_most", "hour_network_in_below_bytes", "hour_network_out_below_bytes")
_RULE_DAY_COUNTS = ("min_days_matched", "recent_days")  # each at most window_days


def rule_resource_types() -> dict[str, list[str]]:
    """Provider -> the resource types its adapter reads metrics for (the adapters' METRICS keys)."""
    from finops_pipeline.adapters.usage.usage_api import bulk_adapter_class

    return {p: sorted(getattr(bulk_adapter_class(p), "METRICS", {})) for p in PROVIDERS}


def validate_rules(path: Path) -> None:
    """Check every row of a rules CSV (header as the shipped seed's; a UTF-8 byte order mark is
    fine); RulesFileError names the file, line, column and what is allowed."""
    with open(SQL_DIR / "seeds" / "underutilization_rules.csv", newline="", encoding="utf-8-sig") as fh:
        expected = next(csv.reader(fh))
    types = rule_resource_types()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in expected if c not in header]
        if missing:
            raise RulesFileError(f"{path}: line 1: missing column(s) {missing}; copy the header of the shipped seed")
        seen = set()
        for line, row in enumerate(reader, start=2):
            def fail(field: str, problem: str) -> RulesFileError:
                return RulesFileError(f"{path}: line {line}, column {header.index(field) + 1} ({field}): {problem}")

            def number(field: str, low: float, high: float | None = None, whole: bool = False) -> float | None:
                """The cell as a number in [low, high] (None when blank)."""
                text = (row[field] or "").strip()
                if not text:
                    return None
                kind = "a whole number" if whole else "a number"
                allowed = f"{kind} from {low:g} to {high:g}" if high is not None else f"{kind} >= {low:g}"
                try:
                    value = float(text)
                except ValueError:
                    raise fail(field, f"{text!r} is not {allowed}") from None
                in_range = math.isfinite(value) and low <= value and (high is None or value <= high)
                if not in_range or (whole and not value.is_integer()):
                    raise fail(field, f"{text!r} is not {allowed}")
                return value

            if None in row:
                raise RulesFileError(f"{path}: line {line}: more fields than the header has")
            if not row["rule_id"] or row["rule_id"] in seen:
                raise fail("rule_id", f"{row['rule_id']!r} is empty or repeated")
            seen.add(row["rule_id"])
            if row["provider"] not in PROVIDERS:
                raise fail("provider", f"{row['provider']!r} is not one of {', '.join(PROVIDERS)}")
            if row["resource_type"] not in types[row["provider"]]:
                raise fail("resource_type", f"{row['resource_type']!r} is not an {row['provider']} resource type; "
                           f"use one of {', '.join(types[row['provider']])}")
            if row["action"] not in ("shutdown", "resize"):
                raise fail("action", f"{row['action']!r}: use shutdown or resize")
            window_days = number("window_days", 1, 366, whole=True)
            if window_days is None:
                raise fail("window_days", "empty; give the rule's window as a whole number of days")
            if number("savings_fraction", 0, 1) is None:
                raise fail("savings_fraction", "empty; give the share of the cost saved, from 0 to 1")
            for field in _RULE_DAY_COUNTS:
                days_ = number(field, 1, whole=True)
                if days_ is not None and days_ > window_days:
                    raise fail(field, f"{days_:g} is more than window_days ({window_days:g})")
            thresholds = [number(f, 0, 100) for f in _RULE_PERCENTS] + [number(f, 0, 1) for f in _RULE_SHARES]
            thresholds += [number(f, 0) for f in _RULE_AMOUNTS]
            if all(t is None for t in thresholds):
                raise RulesFileError(f"{path}: line {line}: no threshold is set, so the rule would flag every "
                                     f"{row['resource_type']}; set at least one of "
                                     f"{', '.join(_RULE_PERCENTS + _RULE_SHARES + _RULE_AMOUNTS)}")


def rules_overrides(settings: Settings) -> dict[str, Path]:
    """The user's own rules seed (FINOPS_RULES_FILE), validated completely before use."""
    if settings.rules_file is None:
        return {}
    path = settings.rules_file
    if not path.is_file():
        raise RulesFileError(f"FINOPS_RULES_FILE={path} does not exist; point it at a CSV like "
                             f"{SQL_DIR / 'seeds' / 'underutilization_rules.csv'}")
    validate_rules(path)
    return {"underutilization_rules": path}


def _write_mart(context: AssetExecutionContext, table: str, data: pa.Table, expected: list[date],
                started: float, window_text: str) -> MaterializeResult:
    settings = get_settings()
    writes = Lake(settings.lake_dir).write_partitions(table, data, expected=[{"usage_date": d} for d in expected])
    catalog = refresh_catalog(settings.data_dir)
    if catalog.status == "deferred":
        context.log.warning(f"catalog view refresh deferred: {catalog.reason}")
    context.log.info(f"{table}: {data.num_rows} rows in {len(writes)} partitions for {window_text}")
    return MaterializeResult(metadata={
        "rows": data.num_rows,
        "partitions_written": len(writes),
        "window": window_text,
        "duration_seconds": round(perf_counter() - started, 3),
        "catalog": catalog.status,
        "preview": markdown_preview(data),
    })


def _run_daily_mart(context: AssetExecutionContext, table: str, extra: dict | None = None,
                    seed_overrides: dict | None = None) -> MaterializeResult:
    started = perf_counter()
    start, end = window(context.partition_key_range)
    settings = get_settings()
    data = run_sql(table, Lake(settings.lake_dir), {"start": start, "end": end, **(extra or {})}, seed_overrides)
    return _write_mart(context, table, data, days(start, end), started, f"[{start}, {end})")


@asset(group_name="marts", kinds={"parquet"})
def cost_predictions(context: AssetExecutionContext) -> MaterializeResult:
    """IaC predictions from FINOPS_PREDICTIONS_DIR (Infracost JSON, documented CSV). Every file
    is validated before the table is replaced, so a malformed file leaves the old predictions;
    a missing or empty directory is skipped and leaves them too."""
    started = perf_counter()
    settings = get_settings()
    directory = settings.predictions_path
    if not prediction_files(directory):
        reason = (f"{directory} has no prediction files (*.json, *.csv); set FINOPS_PREDICTIONS_DIR or add "
                  "files. The predictions already landed are kept")
        context.log.warning(f"cost_predictions skipped: {reason}")
        return MaterializeResult(metadata={"status": "skipped", "skipped_reason": reason, "rows": 0})
    frame = read_predictions(directory, settings.tag_match_key)
    Lake(settings.lake_dir).write_partitions("cost_predictions", frame)
    catalog = refresh_catalog(settings.data_dir)
    table = pa.Table.from_pandas(frame, preserve_index=False) if len(frame) else None
    return MaterializeResult(metadata={
        "rows": len(frame),
        "files": MetadataValue.json(sorted({Path(f).name for f in frame["source_file"]})),
        "unmapped_rows": int(frame["service_name"].isna().sum()) if len(frame) else 0,
        "duration_seconds": round(perf_counter() - started, 3),
        "catalog": catalog.status,
        "preview": markdown_preview(table.drop_columns(["tags"]) if table is not None else None),
    })


@asset(partitions_def=DAILY, group_name="marts", kinds={"duckdb", "parquet"},
       deps=METRICS_ASSETS + COST_ASSETS, automation_condition=MART_AUTOMATION,
       backfill_policy=BackfillPolicy.single_run())
def utilization_daily(context: AssetExecutionContext) -> MaterializeResult:
    """Per resource and UTC day: CPU avg/p95/max, memory, network, disk, requests, coverage, cost."""
    return _run_daily_mart(context, "utilization_daily")


def days_missing_utilization(lake: Lake, start: date, end: date) -> list[date]:
    """Days in [start, end) with metrics in the lake but no utilization_daily partition."""
    metric_days = {date.fromisoformat(p["usage_date"]) for p in lake.partitions("metrics_hourly")}
    built = {date.fromisoformat(p["usage_date"]) for p in lake.partitions("utilization_daily")}
    return sorted(d for d in metric_days - built if start <= d < end)


def _longest_window(seed_overrides: dict[str, Path]) -> int:
    path = seed_overrides.get("underutilization_rules", SQL_DIR / "seeds" / "underutilization_rules.csv")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return max([LOOKBACK_DAYS] + [int(float(row["window_days"])) for row in csv.DictReader(fh)])


@asset(partitions_def=DAILY, group_name="marts", kinds={"duckdb", "parquet"},
       deps=[AssetDep(k, partition_mapping=_TRAILING)
             for k in [AssetKey("utilization_daily")] + METRICS_ASSETS + COST_ASSETS],
       automation_condition=MART_AUTOMATION, backfill_policy=BackfillPolicy.single_run())
def underutilized_resources(context: AssetExecutionContext) -> MaterializeResult:
    """Resources a provider-documented rule flags as of each day (rules: the seed or
    FINOPS_RULES_FILE), with evidence, confidence from coverage and estimated savings.
    Reads utilization_daily's day rows (and metrics_hourly only for rules on hourly values)."""
    settings = get_settings()
    overrides = rules_overrides(settings)
    start, end = window(context.partition_key_range)
    missing = days_missing_utilization(Lake(settings.lake_dir), start - timedelta(days=_longest_window(overrides) - 1),
                                       end)
    if missing:
        raise Failure(
            f"utilization_daily is missing for {len(missing)} day(s) with metrics ({missing[0]} .. {missing[-1]}); "
            "underutilized_resources reads its day rows: materialize utilization_daily for those days first",
            allow_retries=False)
    return _run_daily_mart(context, "underutilized_resources",
                           {"coverage_floor": settings.metrics_coverage_floor}, overrides)


@asset(partitions_def=DAILY, group_name="marts", kinds={"duckdb", "parquet"},
       deps=[AssetDep(k, partition_mapping=_MONTH_TO_DATE) for k in COST_ASSETS] + [AssetKey("cost_predictions")],
       automation_condition=MART_AUTOMATION, backfill_policy=BackfillPolicy.single_run())
def cost_trend_daily(context: AssetExecutionContext) -> MaterializeResult:
    """Predicted vs actual per day, provider and service (resource where a tag matches)."""
    settings = get_settings()
    return _run_daily_mart(context, "cost_trend_daily",
                           {"tag_key": settings.tag_match_key, "tolerance": TREND_TOLERANCE})


@asset(partitions_def=MONTHLY, group_name="marts", kinds={"duckdb", "parquet"},
       deps=[AssetKey("cost_trend_daily")], automation_condition=MART_AUTOMATION,
       backfill_policy=BackfillPolicy.single_run())
def cost_trend_monthly(context: AssetExecutionContext) -> MaterializeResult:
    """Predicted vs actual per month, month-to-date, with the run-rate month-end projection."""
    started = perf_counter()
    start = date.fromisoformat(context.partition_key_range.start)
    last = date.fromisoformat(context.partition_key_range.end)
    end = (last.replace(day=28) + timedelta(days=4)).replace(day=1)
    months, month = [], start
    while month < end:
        months.append(month)
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    data = run_sql("cost_trend_monthly", Lake(get_settings().lake_dir),
                   {"start": start, "end": end, "tolerance": TREND_TOLERANCE})
    return _write_mart(context, "cost_trend_monthly", data, months, started, f"[{start}, {end})")


# -- checks -------------------------------------------------------------------------------

def duplicate_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> int:
    """Rows beyond the first for each key (NULLs compare equal)."""
    keys = ", ".join(f'"{k}"' for k in spec.key)
    return con.execute(f'SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM "{spec.name}" '
                   f"GROUP BY {keys})").fetchone()[0]


def null_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> int:
    """Rows with a NULL in a key column the contract declares required."""
    required = [f.name for f in spec.full_schema if f.name in spec.key and not f.nullable]
    condition = " OR ".join(f'"{k}" IS NULL' for k in required)
    return con.execute(f'SELECT count(*) FROM "{spec.name}" WHERE {condition}').fetchone()[0]


def cpu_out_of_range(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("""SELECT count(*) FROM utilization_daily WHERE cpu_avg_pct NOT BETWEEN 0 AND 100
                      OR cpu_p95_pct NOT BETWEEN 0 AND 100 OR cpu_max_pct NOT BETWEEN 0 AND 100""").fetchone()[0]


def negative_usage(con: duckdb.DuckDBPyConnection) -> int:
    columns = ["network_in_bytes", "network_out_bytes", "disk_read_bytes", "disk_write_bytes", "requests",
               "invocations", "errors", "connections_avg", "connections_max", "hours_with_data"]
    condition = " OR ".join(f"{c} < 0" for c in columns)
    return con.execute(f"SELECT count(*) FROM utilization_daily WHERE {condition}").fetchone()[0]


def flags_without_evidence(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("""SELECT count(*) FROM underutilized_resources
                      WHERE coalesce(evidence, '') = '' OR days_with_data < 1 OR hours_with_data < 1""").fetchone()[0]


def trend_total_mismatches(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Days where cost_trend_daily's actual differs from cost_daily's billed total."""
    return con.execute("""
        WITH trend AS (SELECT usage_date, provider, billing_currency, sum(actual_cost) AS trend_total
                       FROM cost_trend_daily GROUP BY ALL),
             billed AS (SELECT usage_date, provider, billing_currency, sum(billed_cost) AS billed_total
                        FROM cost_daily WHERE usage_date IN (SELECT usage_date FROM trend) GROUP BY ALL)
        SELECT CAST(coalesce(t.usage_date, b.usage_date) AS VARCHAR) AS usage_date,
               coalesce(t.provider, b.provider) AS provider,
               coalesce(t.billing_currency, b.billing_currency) AS currency,
               CAST(b.billed_total AS VARCHAR) AS cost_daily, CAST(t.trend_total AS VARCHAR) AS cost_trend_daily
        FROM trend AS t FULL JOIN billed AS b USING (usage_date, provider, billing_currency)
        WHERE t.trend_total IS DISTINCT FROM b.billed_total ORDER BY 1, 2, 3
    """).df().to_dict("records")


def _lake_connection() -> duckdb.DuckDBPyConnection:
    return connect_lake(Lake(get_settings().lake_dir))


def _key_check(name: str) -> AssetCheckResult:
    spec = TABLES[name]
    con = _lake_connection()
    try:
        duplicates, nulls = duplicate_keys(con, spec), null_keys(con, spec)
    finally:
        con.close()
    return AssetCheckResult(passed=duplicates == 0 and nulls == 0,
                            metadata={"duplicate_rows": duplicates, "null_key_rows": nulls,
                                      "key": ", ".join(spec.key)})


@asset_check(asset=utilization_daily, description="Key (usage_date, provider, resource_id) unique and non-null.")
def utilization_daily_keys() -> AssetCheckResult:
    return _key_check("utilization_daily")


@asset_check(asset=utilization_daily, description="CPU % within 0-100 and no negative usage.")
def utilization_daily_ranges() -> AssetCheckResult:
    con = _lake_connection()
    try:
        cpu, negative = cpu_out_of_range(con), negative_usage(con)
    finally:
        con.close()
    return AssetCheckResult(passed=cpu == 0 and negative == 0,
                            metadata={"cpu_out_of_range_rows": cpu, "negative_usage_rows": negative})


@asset_check(asset=underutilized_resources, description="Key unique and non-null.")
def underutilized_resources_keys() -> AssetCheckResult:
    return _key_check("underutilized_resources")


@asset_check(asset=underutilized_resources, description="Every flagged resource carries evidence and data.")
def underutilized_resources_evidence() -> AssetCheckResult:
    con = _lake_connection()
    try:
        missing = flags_without_evidence(con)
    finally:
        con.close()
    return AssetCheckResult(passed=missing == 0, metadata={"rows_without_evidence": missing})


@asset_check(asset=cost_trend_daily, description="Key unique and non-null.")
def cost_trend_daily_keys() -> AssetCheckResult:
    return _key_check("cost_trend_daily")


@asset_check(asset=cost_trend_daily,
             description="For every day, provider and currency: sum of cost_daily = sum of cost_trend_daily.")
def cost_trend_daily_totals() -> AssetCheckResult:
    con = _lake_connection()
    try:
        mismatches = trend_total_mismatches(con)
    finally:
        con.close()
    return AssetCheckResult(passed=not mismatches, metadata={
        "mismatched_days": len(mismatches), "mismatches": MetadataValue.json(mismatches[:20])})


@asset_check(asset=cost_trend_monthly, description="Key unique and non-null.")
def cost_trend_monthly_keys() -> AssetCheckResult:
    return _key_check("cost_trend_monthly")


# -- demo -----------------------------------------------------------------------------------

def demo_summary(con: duckdb.DuckDBPyConnection) -> str:
    """Top 5 underutilized resources (latest as-of day) and the latest month's predicted vs
    actual per cloud, as plain text for ``make demo``."""
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
    parts = ["Top 5 underutilized resources (estimated monthly savings):",
             top.to_string(index=False) if len(top) else "  none flagged",
             "", "This month, predicted vs actual per cloud:",
             month.to_string(index=False) if len(month) else "  no trend rows yet"]
    return "\n".join(parts)


defs = Definitions(
    assets=[cost_predictions, utilization_daily, underutilized_resources, cost_trend_daily, cost_trend_monthly],
    asset_checks=[utilization_daily_keys, utilization_daily_ranges, underutilized_resources_keys,
                  underutilized_resources_evidence, cost_trend_daily_keys, cost_trend_daily_totals,
                  cost_trend_monthly_keys],
)

__all__ = ["defs", "demo_summary", "SqlRunError"]
