"""The warehouse's tables, declared once: columns, types and partition keys.

Every writer conforms its data to these schemas and the catalog builds each table's
view (even an empty one) from them. Partition columns live in the directory names
(`provider=aws/usage_date=2026-11-01`), not inside the Parquet files.
Money is DECIMAL(38, 10); time is UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

MONEY = pa.decimal128(38, 10)
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
TAGS = pa.map_(pa.string(), pa.string())

PARTITION_TYPES = {"provider": pa.string(), "usage_date": pa.date32()}


@dataclass(frozen=True)
class TableSpec:
    """A lake table: its name, the columns stored in files, and its partition keys."""

    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...]
    key: tuple[str, ...]  # columns (partition keys included) that identify one row
    description: str

    @property
    def full_schema(self) -> pa.Schema:
        """Partition columns first, then the stored columns: the shape of the view."""
        fields = [pa.field(name, PARTITION_TYPES[name], nullable=False) for name in self.partition_by]
        return pa.schema(fields + list(self.schema))

    def columns_schema(self, names: Iterable[str]) -> pa.Schema:
        """The declared types of some columns (a source's output before it is conformed to the
        table), in the order given; an unknown name is a programming error."""
        declared = {f.name: f.type for f in self.full_schema}
        return pa.schema([pa.field(name, declared[name]) for name in names])


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


COST_DAILY = TableSpec(
    name="cost_daily",
    description=(
        "Billed and effective cost per provider x UTC day x account x service x region x "
        "resource (where known) x SKU x charge category."
    ),
    partition_by=("provider", "usage_date"),
    key=(
        "provider",
        "usage_date",
        "billing_account_id",
        "sub_account_id",
        "service_name",
        "region",
        "resource_id",
        "sku",
        "charge_category",
        "billing_currency",
    ),
    schema=pa.schema(
        [
            _f("billing_account_id", pa.string(), False),
            _f("sub_account_id", pa.string(), False),
            _f("sub_account_name", pa.string()),
            _f("service_name", pa.string(), False),
            _f("service_category", pa.string()),
            _f("region", pa.string()),
            _f("resource_id", pa.string()),
            _f("resource_name", pa.string()),
            _f("resource_type", pa.string()),
            _f("sku", pa.string()),
            _f("charge_category", pa.string(), False),
            _f("charge_description", pa.string()),
            _f("usage_quantity", pa.float64()),
            _f("usage_unit", pa.string()),
            _f("billed_cost", MONEY, False),
            _f("effective_cost", MONEY, False),
            _f("list_cost", MONEY),
            _f("billing_currency", pa.string(), False),
            _f("tags", TAGS),
            _f("is_estimated", pa.bool_(), False),
            _f("source", pa.string(), False),
            _f("ingested_at", UTC_TIMESTAMP, False),
        ]
    ),
)

METRICS_HOURLY = TableSpec(
    name="metrics_hourly",
    description="One row per provider x resource x canonical metric x UTC hour.",
    partition_by=("provider", "usage_date"),
    key=("provider", "usage_date", "resource_id", "metric", "hour_start"),
    schema=pa.schema(
        [
            _f("hour_start", UTC_TIMESTAMP, False),
            _f("resource_id", pa.string(), False),
            _f("resource_name", pa.string()),
            _f("resource_type", pa.string(), False),
            _f("region", pa.string()),
            _f("sub_account_id", pa.string()),
            _f("metric", pa.string(), False),
            _f("native_metric", pa.string(), False),
            _f("unit", pa.string()),
            _f("avg", pa.float64()),
            _f("max", pa.float64()),
            _f("min", pa.float64()),
            _f("sum", pa.float64()),
            _f("sample_count", pa.float64()),
            _f("ingested_at", UTC_TIMESTAMP, False),
        ]
    ),
)

COST_FORECAST = TableSpec(
    name="cost_forecast",
    description=(
        "Provider cost forecasts. usage_date is the UTC day the forecast was made; "
        "[period_start, period_end) is the day it forecasts."
    ),
    partition_by=("provider", "usage_date"),
    key=("provider", "usage_date", "sub_account_id", "service_name", "period_start"),
    schema=pa.schema(
        [
            _f("sub_account_id", pa.string()),
            _f("service_name", pa.string()),
            _f("period_start", pa.date32(), False),
            _f("period_end", pa.date32(), False),
            _f("metric", pa.string(), False),
            _f("mean_cost", MONEY, False),
            _f("lower_bound", MONEY),
            _f("upper_bound", MONEY),
            _f("billing_currency", pa.string(), False),
            _f("source", pa.string(), False),
            _f("ingested_at", UTC_TIMESTAMP, False),
        ]
    ),
)

COST_PREDICTIONS = TableSpec(
    name="cost_predictions",
    description=(
        "Predicted monthly cost from infrastructure-as-code estimates (Infracost JSON or "
        "the documented CSV), per month and service, or resource where known."
    ),
    partition_by=(),
    key=("provider", "month", "service_name", "resource_id", "source_file", "source_line"),
    schema=pa.schema(
        [
            _f("provider", pa.string(), False),
            _f("month", pa.date32(), False),
            _f("service_name", pa.string()),
            _f("resource_id", pa.string()),
            _f("resource_name", pa.string()),
            _f("resource_type", pa.string()),
            _f("match_value", pa.string()),
            _f("predicted_monthly_cost", MONEY, False),
            _f("billing_currency", pa.string(), False),
            _f("tags", TAGS),
            _f("source_file", pa.string(), False),
            _f("source_line", pa.string(), False),
            _f("source_format", pa.string(), False),
            _f("ingested_at", UTC_TIMESTAMP, False),
        ]
    ),
)

UTILIZATION_DAILY = TableSpec(
    name="utilization_daily",
    description=(
        "Per provider x resource x UTC day: CPU avg/p95/max %, memory %, network, disk, "
        "requests/connections/invocations, hours with data, and the day's resource-level cost."
    ),
    partition_by=("usage_date",),
    key=("usage_date", "provider", "resource_id"),
    schema=pa.schema(
        [
            _f("provider", pa.string(), False),
            _f("resource_id", pa.string(), False),
            _f("resource_name", pa.string()),
            _f("resource_type", pa.string(), False),
            _f("region", pa.string()),
            _f("sub_account_id", pa.string()),
            _f("hours_with_data", pa.int64(), False),
            _f("cpu_avg_pct", pa.float64()),
            _f("cpu_p95_pct", pa.float64()),
            _f("cpu_max_pct", pa.float64()),
            _f("memory_avg_pct", pa.float64()),
            _f("memory_max_pct", pa.float64()),
            _f("network_in_bytes", pa.float64()),
            _f("network_out_bytes", pa.float64()),
            _f("disk_read_bytes", pa.float64()),
            _f("disk_write_bytes", pa.float64()),
            _f("requests", pa.float64()),
            _f("invocations", pa.float64()),
            _f("errors", pa.float64()),
            _f("connections_avg", pa.float64()),
            _f("connections_max", pa.float64()),
            _f("billed_cost", MONEY),
            _f("effective_cost", MONEY),
            _f("billing_currency", pa.string()),
        ]
    ),
)

UNDERUTILIZED_RESOURCES = TableSpec(
    name="underutilized_resources",
    description=(
        "Per resource, rule and as-of day (usage_date): which underutilization rule fired over "
        "[window_start, window_end), its evidence, trailing 30-day cost and estimated savings."
    ),
    partition_by=("usage_date",),
    key=("usage_date", "provider", "resource_id", "rule_id"),
    schema=pa.schema(
        [
            _f("provider", pa.string(), False),
            _f("resource_id", pa.string(), False),
            _f("resource_name", pa.string()),
            _f("resource_type", pa.string(), False),
            _f("region", pa.string()),
            _f("sub_account_id", pa.string()),
            _f("rule_id", pa.string(), False),
            _f("action", pa.string(), False),
            _f("rule_source", pa.string(), False),
            _f("rule_source_url", pa.string(), False),
            _f("window_start", pa.date32(), False),
            _f("window_end", pa.date32(), False),
            _f("window_days", pa.int64(), False),
            _f("days_with_data", pa.int64(), False),
            _f("hours_with_data", pa.int64(), False),
            _f("coverage", pa.float64(), False),
            _f("confidence", pa.string(), False),
            _f("days_matched", pa.int64()),
            _f("cpu_avg_pct", pa.float64()),
            _f("cpu_p95_pct", pa.float64()),
            _f("cpu_max_pct", pa.float64()),
            _f("network_in_bytes", pa.float64()),
            _f("network_out_bytes", pa.float64()),
            _f("requests", pa.float64()),
            _f("connections_max", pa.float64()),
            _f("evidence", pa.string(), False),
            _f("trailing_30d_cost", MONEY),
            _f("monthly_run_rate", MONEY),
            _f("estimated_monthly_savings", MONEY),
            _f("billing_currency", pa.string()),
        ]
    ),
)

_TREND_COMMON = [
    _f("provider", pa.string(), False),
    _f("service_name", pa.string(), False),
    _f("match_value", pa.string()),
    _f("resource_id", pa.string()),
    _f("billing_currency", pa.string(), False),
]

COST_TREND_DAILY = TableSpec(
    name="cost_trend_daily",
    description=(
        "Predicted vs actual per UTC day x provider x service (x matched resource): actual, "
        "prorated prediction, provider forecast, variance, month-to-date and run-rate projection."
    ),
    partition_by=("usage_date",),
    key=("usage_date", "provider", "service_name", "match_value", "billing_currency"),
    schema=pa.schema(
        _TREND_COMMON
        + [
            _f("actual_cost", MONEY, False),
            _f("effective_cost", MONEY, False),
            _f("predicted_cost", MONEY),
            _f("forecast_cost", MONEY),
            _f("variance", MONEY),
            _f("variance_pct", pa.float64()),
            _f("predicted_monthly_cost", MONEY),
            _f("mtd_actual_cost", MONEY, False),
            _f("mtd_predicted_cost", MONEY),
            _f("mtd_variance", MONEY),
            _f("mtd_variance_pct", pa.float64()),
            _f("projected_month_end_cost", MONEY, False),
            _f("status", pa.string(), False),
        ]
    ),
)

COST_TREND_MONTHLY = TableSpec(
    name="cost_trend_monthly",
    description=(
        "Predicted vs actual per month (usage_date = first day) x provider x service (x matched "
        "resource), as of the last day with billing: month-to-date actual, prediction, run-rate."
    ),
    partition_by=("usage_date",),
    key=("usage_date", "provider", "service_name", "match_value", "billing_currency"),
    schema=pa.schema(
        _TREND_COMMON
        + [
            _f("as_of_date", pa.date32(), False),
            _f("days_in_month", pa.int64(), False),
            _f("days_elapsed", pa.int64(), False),
            _f("actual_cost", MONEY, False),
            _f("effective_cost", MONEY, False),
            _f("predicted_cost", MONEY),
            _f("prorated_predicted_cost", MONEY),
            _f("forecast_cost", MONEY),
            _f("mtd_variance", MONEY),
            _f("projected_month_end_cost", MONEY, False),
            _f("variance", MONEY),
            _f("variance_pct", pa.float64()),
            _f("status", pa.string(), False),
        ]
    ),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        COST_DAILY,
        METRICS_HOURLY,
        COST_FORECAST,
        COST_PREDICTIONS,
        UTILIZATION_DAILY,
        UNDERUTILIZED_RESOURCES,
        COST_TREND_DAILY,
        COST_TREND_MONTHLY,
    )
}


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown warehouse table {name!r}; known: {', '.join(sorted(TABLES))}") from None
