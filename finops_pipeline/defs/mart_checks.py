"""Checks on the marts: keys unique and non-null, values in range, flags with evidence, trend
totals equal to cost_daily."""

import duckdb
from dagster import AssetCheckResult, Definitions, MetadataValue, asset_check

from finops_pipeline.defs.marts import (
    cost_anomalies,
    cost_trend_daily,
    cost_trend_monthly,
    underutilized_resources,
    utilization_daily,
)
from finops_pipeline.settings import settings_of
from finops_pipeline.warehouse.catalog import connect_lake
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.resource import WarehouseResource
from finops_pipeline.warehouse.schemas import TABLES, TableSpec


def duplicate_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> int:
    """Rows beyond the first for each key (NULLs compare equal)."""
    keys = ", ".join(f'"{k}"' for k in spec.key)
    return con.execute(
        f'SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM "{spec.name}" GROUP BY {keys})'
    ).fetchone()[0]


def null_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> int:
    """Rows with a NULL in a key column the contract declares required."""
    required = [f.name for f in spec.full_schema if f.name in spec.key and not f.nullable]
    condition = " OR ".join(f'"{k}" IS NULL' for k in required)
    return con.execute(f'SELECT count(*) FROM "{spec.name}" WHERE {condition}').fetchone()[0]


def cpu_out_of_range(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("""SELECT count(*) FROM utilization_daily WHERE cpu_avg_pct NOT BETWEEN 0 AND 100
                      OR cpu_p95_pct NOT BETWEEN 0 AND 100 OR cpu_max_pct NOT BETWEEN 0 AND 100""").fetchone()[0]


def negative_usage(con: duckdb.DuckDBPyConnection) -> int:
    columns = [
        "network_in_bytes",
        "network_out_bytes",
        "disk_read_bytes",
        "disk_write_bytes",
        "requests",
        "invocations",
        "errors",
        "connections_avg",
        "connections_max",
        "hours_with_data",
    ]
    condition = " OR ".join(f"{c} < 0" for c in columns)
    return con.execute(f"SELECT count(*) FROM utilization_daily WHERE {condition}").fetchone()[0]


def flags_without_evidence(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("""SELECT count(*) FROM underutilized_resources
                      WHERE coalesce(evidence, '') = '' OR days_with_data < 1 OR hours_with_data < 1""").fetchone()[0]


def trend_total_mismatches(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Days where cost_trend_daily's actual differs from cost_daily's billed total."""
    return (
        con.execute("""
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
    """)
        .df()
        .to_dict("records")
    )


def _lake_connection(warehouse: WarehouseResource) -> duckdb.DuckDBPyConnection:
    return connect_lake(Lake(settings_of(warehouse).lake_root))


def _key_check(name: str, warehouse: WarehouseResource) -> AssetCheckResult:
    spec = TABLES[name]
    con = _lake_connection(warehouse)
    try:
        duplicates, nulls = duplicate_keys(con, spec), null_keys(con, spec)
    finally:
        con.close()
    return AssetCheckResult(
        passed=duplicates == 0 and nulls == 0,
        metadata={"duplicate_rows": duplicates, "null_key_rows": nulls, "key": ", ".join(spec.key)},
    )


@asset_check(asset=utilization_daily, description="Key (usage_date, provider, resource_id) unique and non-null.")
def utilization_daily_keys(warehouse: WarehouseResource) -> AssetCheckResult:
    return _key_check("utilization_daily", warehouse)


@asset_check(asset=utilization_daily, description="CPU % within 0-100 and no negative usage.")
def utilization_daily_ranges(warehouse: WarehouseResource) -> AssetCheckResult:
    con = _lake_connection(warehouse)
    try:
        cpu, negative = cpu_out_of_range(con), negative_usage(con)
    finally:
        con.close()
    return AssetCheckResult(
        passed=cpu == 0 and negative == 0, metadata={"cpu_out_of_range_rows": cpu, "negative_usage_rows": negative}
    )


@asset_check(asset=underutilized_resources, description="Key unique and non-null.")
def underutilized_resources_keys(warehouse: WarehouseResource) -> AssetCheckResult:
    return _key_check("underutilized_resources", warehouse)


@asset_check(asset=underutilized_resources, description="Every flagged resource carries evidence and data.")
def underutilized_resources_evidence(warehouse: WarehouseResource) -> AssetCheckResult:
    con = _lake_connection(warehouse)
    try:
        missing = flags_without_evidence(con)
    finally:
        con.close()
    return AssetCheckResult(passed=missing == 0, metadata={"rows_without_evidence": missing})


@asset_check(asset=cost_trend_daily, description="Key unique and non-null.")
def cost_trend_daily_keys(warehouse: WarehouseResource) -> AssetCheckResult:
    return _key_check("cost_trend_daily", warehouse)


@asset_check(
    asset=cost_trend_daily,
    description="For every day, provider and currency: sum of cost_daily = sum of cost_trend_daily.",
)
def cost_trend_daily_totals(warehouse: WarehouseResource) -> AssetCheckResult:
    con = _lake_connection(warehouse)
    try:
        mismatches = trend_total_mismatches(con)
    finally:
        con.close()
    return AssetCheckResult(
        passed=not mismatches,
        metadata={"mismatched_days": len(mismatches), "mismatches": MetadataValue.json(mismatches[:20])},
    )


@asset_check(asset=cost_trend_monthly, description="Key unique and non-null.")
def cost_trend_monthly_keys(warehouse: WarehouseResource) -> AssetCheckResult:
    return _key_check("cost_trend_monthly", warehouse)


@asset_check(asset=cost_anomalies, description="Key unique and non-null.")
def cost_anomalies_keys(warehouse: WarehouseResource) -> AssetCheckResult:
    return _key_check("cost_anomalies", warehouse)


defs = Definitions(
    asset_checks=[
        utilization_daily_keys,
        utilization_daily_ranges,
        underutilized_resources_keys,
        underutilized_resources_evidence,
        cost_trend_daily_keys,
        cost_trend_daily_totals,
        cost_trend_monthly_keys,
        cost_anomalies_keys,
    ],
)
