"""The warehouse's tables, declared once: columns, types and partition keys.

Every writer conforms its data to these schemas and the catalog builds each table's
view (even an empty one) from them. What each column means is declared here too
(COLUMN_DESCRIPTIONS, or a table's own ``descriptions`` where the column means something
else there): the Dagster column metadata, the catalog's comments and the column tables of
docs/data-dictionary.md are all made from it. Partition columns live in the directory names
(`provider=aws/usage_date=2026-11-01`), not inside the Parquet files.
Money is DECIMAL(38, 10); time is UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

MONEY = pa.decimal128(38, 10)
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
TAGS = pa.map_(pa.string(), pa.string())

_RESOURCE_ID = "Provider resource id (EC2 instance id, GCE instance id, Azure ARM id...)"

PARTITION_TYPES = {"provider": pa.string(), "usage_date": pa.date32()}


@dataclass(frozen=True)
class TableSpec:
    """A lake table: its name, the columns stored in files, and its partition keys."""

    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...]
    key: tuple[str, ...]  # columns (partition keys included) that identify one row
    description: str
    descriptions: Mapping[str, str] = field(default_factory=dict, hash=False)  # overrides COLUMN_DESCRIPTIONS

    def describe(self, column: str) -> str:
        """What ``column`` means in this table."""
        return self.descriptions.get(column) or COLUMN_DESCRIPTIONS[column]

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


# What a column means, by name, in every table that has it.
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "provider": "aws, gcp or azure.",
    "usage_date": "UTC day (partition key).",
    "billing_account_id": "Payer/billing account (AWS payer account, GCP billing account, Azure subscription or billing account).",
    "sub_account_id": "AWS linked account / GCP project / Azure subscription.",
    "sub_account_name": "Display name of the sub-account where the source gives one.",
    "service_name": "The provider's billing service name (e.g. `Amazon Elastic Compute Cloud - Compute`, `Compute Engine`, `Virtual Machines`).",
    "service_category": "Category where the source gives one (the FOCUS view maps its own).",
    "region": "Provider region code.",
    "resource_id": _RESOURCE_ID + "; NULL for service-level rows.",
    "resource_name": "Display name where known.",
    "resource_type": "Resource type (metrics: the usage API's type names `ec2`, `gce_instance`, `virtual_machine`, ...).",
    "sku": "Usage type / SKU.",
    "charge_category": "Usage, Purchase, Tax, Credit or Adjustment.",
    "charge_description": "Provider's description of the charge.",
    "usage_quantity": "Quantity consumed, in `usage_unit`; NULL with `usage_unit` where the provider summed several units (Cost Explorer's `UsageQuantity` with Unit `N/A`).",
    "usage_unit": "Unit of `usage_quantity` (e.g. Hrs).",
    "billed_cost": "Invoiced cost (unblended / gross), DECIMAL, in `billing_currency`.",
    "effective_cost": "Amortized cost net of discounts and credits, DECIMAL.",
    "list_cost": "Public list price x quantity where the source gives it.",
    "billing_currency": "ISO 4217 currency of the money columns.",
    "tags": "Resource tags/labels as MAP(VARCHAR, VARCHAR).",
    "billing_account_name": "Display name of the billing account (FOCUS BillingAccountName); exports only.",
    "billing_account_type": "The provider's kind of billing account, e.g. `Billing Profile` (FOCUS BillingAccountType); exports only.",
    "sub_account_type": "The provider's kind of sub-account: `AWS Account`, `GCP Project`, `Subscription` (FOCUS SubAccountType).",
    "region_name": "Provider's display name of the region (FOCUS RegionName); exports only.",
    "availability_zone": "Availability zone of the resource where the export gives one.",
    "invoice_id": "The invoice the charge is (or will be) billed on; exports only.",
    "invoice_issuer_name": "Who issues the invoice (the provider or a reseller).",
    "publisher_name": "Who published the service (the provider or a marketplace seller).",
    "service_subcategory": "FOCUS ServiceSubcategory where the export gives one (the FOCUS view maps its own otherwise).",
    "charge_class": "`Correction` when the row corrects a prior invoice, else NULL (FOCUS ChargeClass).",
    "charge_frequency": "`One-Time`, `Recurring` or `Usage-Based` (FOCUS ChargeFrequency); exports only.",
    "pricing_category": "`Standard`, `Dynamic`, `Committed` or `Other` (FOCUS PricingCategory); exports only.",
    "pricing_quantity": "Quantity in the pricing unit (FOCUS PricingQuantity); exports only.",
    "pricing_unit": "Unit the price is quoted in (FOCUS PricingUnit); exports only.",
    "pricing_currency": "Currency of the provider's price list (FOCUS PricingCurrency); exports only.",
    "list_unit_price": "Public list unit price, in `billing_currency`.",
    "contracted_unit_price": "Negotiated unit price, in `billing_currency`.",
    "contracted_cost": "Negotiated price x pricing_quantity, DECIMAL, in `billing_currency` (FOCUS ContractedCost).",
    "pricing_currency_list_unit_price": "List unit price in `pricing_currency`.",
    "pricing_currency_contracted_unit_price": "Contracted unit price in `pricing_currency`.",
    "pricing_currency_effective_cost": "Effective cost in `pricing_currency`.",
    "sku_price_id": "The price-list entry the charge used (FOCUS SkuPriceId); exports only.",
    "sku_meter": "What the SKU measures (FOCUS SkuMeter); exports only.",
    "sku_price_details": "JSON of the SKU's price properties (FOCUS SkuPriceDetails); exports only.",
    "commitment_discount_id": "Savings Plan / Reservation / CUD the charge used or bought.",
    "commitment_discount_type": "The provider's name for the commitment kind (e.g. `Savings Plan`, `Reservation`).",
    "commitment_discount_category": "`Spend` or `Usage` commitment.",
    "commitment_discount_name": "Display name of the commitment discount.",
    "commitment_discount_status": "`Used` or `Unused` share of the commitment.",
    "commitment_discount_quantity": "Commitment consumed or unused, in `commitment_discount_unit`.",
    "commitment_discount_unit": "Unit of `commitment_discount_quantity`.",
    "capacity_reservation_id": "Capacity reservation the charge belongs to.",
    "capacity_reservation_status": "`Used` or `Unused` share of the capacity reservation.",
    "is_estimated": "True while the provider still marks the day as estimated.",
    "source": "Which source produced the row: a query API (`ce:GetCostAndUsage`, `bigquery:billing_export`, `costmanagement:query.usage`, ...) or a native export (`export:` + the export's kind). A day of a provider comes from one source.",
    "ingested_at": "UTC time the row was written.",
    "export_name": "The export's name as the provider delivers it (the last segment of its location).",
    "billing_period": "First day (UTC) of the billing period (calendar month) the export delivered.",
    "fingerprint": "What identifies one delivery of the period: the manifest's ETag / content hash or run id.",
    "data_files": "Data files the period's manifest listed.",
    "first_day": "First day of the period that was written to cost_daily.",
    "last_day": "Last day of the period that was written to cost_daily.",
    "hour_start": "UTC start of the hour (the hour is [hour_start, hour_start + 1h)).",
    "metric": "Canonical metric name (`cpu_utilization_pct` 0-100, `*_bytes`, `requests`, `connections`, ...).",
    "native_metric": "The provider's own metric name.",
    "unit": "Canonical unit.",
    "avg": "Gauges: hourly average. Counters: hourly total / sample count.",
    "max": "Hourly maximum.",
    "min": "Hourly minimum.",
    "sum": "Counters: hourly total. Gauges: avg x sample_count.",
    "sample_count": "Datapoints aggregated into the hour.",
    "period_start": "First day forecast (inclusive).",
    "period_end": "Day after the last day forecast (exclusive).",
    "mean_cost": "Forecast mean cost for [period_start, period_end).",
    "lower_bound": "Prediction interval lower bound.",
    "upper_bound": "Prediction interval upper bound.",
    "month": "First day of the month predicted.",
    "match_value": "Infracost: value of the tag named by FINOPS_TAG_MATCH_KEY; CSV: the resource_id. Matches billing rows at resource level.",
    "predicted_monthly_cost": "The month's prediction for this row.",
    "source_file": "File the prediction came from.",
    "source_line": "CSV line number, or the JSON path of the Infracost resource.",
    "source_format": "`infracost_json` or `csv`.",
    "hours_with_data": "Distinct hours with any metric for the resource that day (coverage; 24 = complete).",
    "cpu_avg_pct": "Average of hourly CPU averages, percent 0-100.",
    "cpu_p95_pct": "95th percentile of the day's hourly CPU averages, percent.",
    "cpu_max_pct": (
        "Maximum of hourly CPU maxima, percent (of hourly averages where no maximum was fetched: "
        "AWS asks CloudWatch for a Maximum only where a rule reads it, see docs/cloud-behaviour.md)."
    ),
    "memory_avg_pct": "Average memory utilization, percent, where the resource reports it.",
    "memory_max_pct": "Maximum memory utilization, percent.",
    "network_in_bytes": "Bytes received (sum of hourly counters).",
    "network_out_bytes": "Bytes sent.",
    "disk_read_bytes": "Bytes read from disk.",
    "disk_write_bytes": "Bytes written to disk.",
    "requests": "Requests (load balancers, App Service).",
    "invocations": "Function invocations.",
    "errors": "Function errors.",
    "connections_avg": "Average database/LB connections.",
    "connections_max": "Maximum connections (of hourly averages where no maximum was fetched).",
    "rule_id": "Rule that fired (a row of the rules seed).",
    "action": "`shutdown` or `resize`.",
    "rule_source": "Title of the provider documentation the rule follows.",
    "rule_source_url": "Its URL.",
    "window_start": "First day of the evaluation window (inclusive).",
    "window_end": "Day after the as-of day (exclusive).",
    "window_days": "Window length in days.",
    "days_with_data": "Days in the window with any hourly data.",
    "coverage": "hours_with_data / (window_days x 24).",
    "confidence": "`high` when coverage >= FINOPS_METRICS_COVERAGE_FLOOR (default 0.9), `medium` >= 0.5, else `low`.",
    "days_matched": "Day-counting rules: days meeting the day criteria; NULL for window rules.",
    "evidence": "Human-readable summary of the measures the rule looked at.",
    "trailing_30d_cost": "Effective cost of the resource over the 30 days ending on the as-of day (resource-level billing only).",
    "monthly_run_rate": "Average daily effective cost over days with cost x 730/24.",
    "estimated_monthly_savings": "monthly_run_rate x the rule's savings_fraction (shutdown 1.0, resize 0.5).",
    "actual_cost": "Billed cost (all charge categories) that lands in this row.",
    "predicted_cost": "Daily: predicted monthly / days in month. Monthly: the month's prediction.",
    "forecast_cost": "Provider forecast (service-level rows only) from the latest forecast made on or before the day.",
    "variance": "Daily: actual - predicted. Monthly: projected month end - predicted.",
    "variance_pct": "variance / predicted.",
    "mtd_actual_cost": "Actual from the 1st of the month to this day.",
    "mtd_predicted_cost": "Predicted monthly x day of month / days in month.",
    "mtd_variance": "Month-to-date actual - prorated prediction.",
    "mtd_variance_pct": "mtd_variance / mtd_predicted_cost.",
    "projected_month_end_cost": "Run-rate projection: month-to-date actual / days elapsed x days in month.",
    "status": "`on_track` (within +-10%), `over`, `under`, or `no_prediction`.",
    "as_of_date": "Last day with billing for the provider in the month.",
    "days_in_month": "Days in the month.",
    "days_elapsed": "Day of month of as_of_date.",
    "prorated_predicted_cost": "Predicted x days_elapsed / days_in_month.",
    "expected_cost": "Baseline: median of the history points (same weekday where the seed's min_weekday_points exist); NULL for new / insufficient_history.",
    "deviation": "actual_cost - expected_cost.",
    "deviation_pct": "deviation / expected_cost (NULL when expected is 0).",
    "mad_cost": "Median absolute deviation of the history points from expected_cost.",
    "robust_z": "deviation / max(1.4826 x mad_cost, scale_floor_pct% of abs(expected_cost)); NULL when both are 0.",
    "baseline": "`same_weekday` or `all_days`: which history points the baseline used.",
    "baseline_points": "History points the baseline used.",
    "history_days": "Days in the baseline window with the provider's billing, from the key's first day.",
    "severity": "`high`, `medium`, `low` by abs(robust_z) against the seed's z thresholds (`high` when robust_z is NULL), `none` when below them or the change is under min_abs_change; NULL for new / insufficient_history.",
    "top_resources": "Spikes and drops: up to top_resources resources (largest abs(change) first) with their cost that day minus their average over the baseline points; NULL without resource-level billing.",
}


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
        # Export rows split a SKU by price, commitment and correction (FOCUS); NULL from the APIs.
        "sku_price_id",
        "pricing_category",
        "charge_class",
        "commitment_discount_id",
        "commitment_discount_status",
        "capacity_reservation_id",
        "capacity_reservation_status",
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
            # FOCUS 1.2 columns the native exports carry (NULL from the query APIs).
            _f("billing_account_name", pa.string()),
            _f("billing_account_type", pa.string()),
            _f("sub_account_type", pa.string()),
            _f("region_name", pa.string()),
            _f("availability_zone", pa.string()),
            _f("invoice_id", pa.string()),
            _f("invoice_issuer_name", pa.string()),
            _f("publisher_name", pa.string()),
            _f("service_subcategory", pa.string()),
            _f("charge_class", pa.string()),
            _f("charge_frequency", pa.string()),
            _f("pricing_category", pa.string()),
            _f("pricing_quantity", pa.float64()),
            _f("pricing_unit", pa.string()),
            _f("pricing_currency", pa.string()),
            _f("list_unit_price", MONEY),
            _f("contracted_unit_price", MONEY),
            _f("contracted_cost", MONEY),
            _f("pricing_currency_list_unit_price", MONEY),
            _f("pricing_currency_contracted_unit_price", MONEY),
            _f("pricing_currency_effective_cost", MONEY),
            _f("sku_price_id", pa.string()),
            _f("sku_meter", pa.string()),
            _f("sku_price_details", pa.string()),
            _f("commitment_discount_id", pa.string()),
            _f("commitment_discount_type", pa.string()),
            _f("commitment_discount_category", pa.string()),
            _f("commitment_discount_name", pa.string()),
            _f("commitment_discount_status", pa.string()),
            _f("commitment_discount_quantity", pa.float64()),
            _f("commitment_discount_unit", pa.string()),
            _f("capacity_reservation_id", pa.string()),
            _f("capacity_reservation_status", pa.string()),
        ]
    ),
)

METRICS_HOURLY = TableSpec(
    name="metrics_hourly",
    description="One row per provider x resource x canonical metric x UTC hour.",
    partition_by=("provider", "usage_date"),
    key=("provider", "usage_date", "resource_id", "metric", "hour_start"),
    descriptions={"resource_id": _RESOURCE_ID + "."},
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
    descriptions={
        "sub_account_id": "AWS linked account the forecast covers; NULL for a forecast of the whole payer account.",
        "service_name": "Billing service the forecast covers; NULL for a forecast of all services.",
        "metric": "The cost measure forecast (Cost Explorer's `UNBLENDED_COST`, comparable with billed_cost).",
    },
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
    descriptions={"resource_id": _RESOURCE_ID + "."},
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
    descriptions={
        "resource_id": _RESOURCE_ID + ".",
        "hours_with_data": "Distinct hours with any metric for the resource over the window.",
        "cpu_avg_pct": ("Average of the window's daily CPU averages (utilization_daily.cpu_avg_pct), percent 0-100."),
        "cpu_p95_pct": (
            "95th percentile of hourly CPU maxima over the window, for resource types that a rule with "
            "an hourly criterion covers (shipped: Azure and GCP VMs); NULL for the others, whose rules "
            "are evaluated on day totals only."
        ),
    },
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

COST_ANOMALIES = TableSpec(
    name="cost_anomalies",
    description=(
        "Each UTC day's billed cost per provider x sub-account x service x billing currency against "
        "its own baseline over the previous 28 days (median and MAD, same weekday where 4 points "
        "exist): expected, deviation, robust z-score, status, severity (thresholds: the seed "
        "anomaly_thresholds) and the resources that moved."
    ),
    partition_by=("usage_date",),
    key=("usage_date", "provider", "sub_account_id", "service_name", "billing_currency"),
    schema=pa.schema(
        [
            _f("provider", pa.string(), False),
            _f("sub_account_id", pa.string(), False),
            _f("service_name", pa.string(), False),
            _f("billing_currency", pa.string(), False),
            _f("actual_cost", MONEY, False),
            _f("expected_cost", MONEY),
            _f("deviation", MONEY),
            _f("deviation_pct", pa.float64()),
            _f("mad_cost", MONEY),
            _f("robust_z", pa.float64()),
            _f("baseline", pa.string()),
            _f("baseline_points", pa.int64()),
            _f("history_days", pa.int64(), False),
            _f("status", pa.string(), False),
            _f("severity", pa.string()),
            _f(
                "top_resources",
                pa.list_(pa.struct([pa.field("resource_id", pa.string()), pa.field("change", MONEY)])),
            ),
        ]
    ),
    descriptions={
        "actual_cost": "Billed cost (all charge categories) of the key that day; 0 on a billed day with no row.",
        "status": (
            "`spike` or `drop` (severity low/medium/high), `normal`, `new` (no billing in the baseline window "
            "while the provider has min_history_days of billing) or `insufficient_history`."
        ),
    },
)

EXPORT_MANIFESTS = TableSpec(
    name="export_manifests",
    description=(
        "What was ingested from each native billing export, per provider x export x billing period: "
        "the manifest's fingerprint, recorded after the period's cost_daily partitions landed. A "
        "period whose manifest has another fingerprint is re-ingested (clouds/exports.py)."
    ),
    partition_by=("provider",),
    key=("provider", "export_name", "billing_period"),
    descriptions={"rows": "Line items read from the period's data files."},
    schema=pa.schema(
        [
            _f("export_name", pa.string(), False),
            _f("billing_period", pa.date32(), False),
            _f("fingerprint", pa.string(), False),
            _f("data_files", pa.int32(), False),
            _f("rows", pa.int64(), False),
            _f("first_day", pa.date32()),
            _f("last_day", pa.date32()),
            _f("ingested_at", UTC_TIMESTAMP, False),
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
        COST_ANOMALIES,
        EXPORT_MANIFESTS,
    )
}


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown warehouse table {name!r}; known: {', '.join(sorted(TABLES))}") from None
