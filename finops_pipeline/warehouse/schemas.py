"""The warehouse's tables, declared once: columns, types and partition keys.

Every writer conforms its data to these schemas and the catalog builds each table's
view (even an empty one) from them. Partition columns live in the directory names
(`provider=aws/usage_date=2026-11-01`), not inside the Parquet files.
Money is DECIMAL(38, 10); time is UTC.
"""

from __future__ import annotations

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


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


COST_DAILY = TableSpec(
    name="cost_daily",
    description=(
        "Billed and effective cost per provider x UTC day x account x service x region x "
        "resource (where known) x SKU x charge category."
    ),
    partition_by=("provider", "usage_date"),
    key=("provider", "usage_date", "billing_account_id", "sub_account_id", "service_name",
         "region", "resource_id", "sku", "charge_category", "billing_currency"),
    schema=pa.schema([
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
    ]),
)

METRICS_HOURLY = TableSpec(
    name="metrics_hourly",
    description="One row per provider x resource x canonical metric x UTC hour.",
    partition_by=("provider", "usage_date"),
    key=("provider", "usage_date", "resource_id", "metric", "hour_start"),
    schema=pa.schema([
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
    ]),
)

COST_FORECAST = TableSpec(
    name="cost_forecast",
    description=(
        "Provider cost forecasts. usage_date is the UTC day the forecast was made; "
        "[period_start, period_end) is the day it forecasts."
    ),
    partition_by=("provider", "usage_date"),
    key=("provider", "usage_date", "sub_account_id", "service_name", "period_start"),
    schema=pa.schema([
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
    ]),
)

COST_PREDICTIONS = TableSpec(
    name="cost_predictions",
    description=(
        "Predicted monthly cost from infrastructure-as-code estimates (Infracost JSON or "
        "the documented CSV), per month and service, or resource where known."
    ),
    partition_by=(),
    key=("provider", "month", "service_name", "resource_id", "source_file", "source_line"),
    schema=pa.schema([
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
    ]),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (COST_DAILY, METRICS_HOURLY, COST_FORECAST, COST_PREDICTIONS)
}


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown warehouse table {name!r}; known: {', '.join(sorted(TABLES))}") from None
