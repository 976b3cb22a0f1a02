"""Warehouse-shaped rows -> the public models (ResourceUsage, CostUsageRecord, UsageSummary).

Pure functions: no API calls here. Amounts stay Decimal and are only ever added within
one currency.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from statistics import fmean

from finops_pipeline.clouds.base import MetricSpec
from finops_pipeline.types.usage import (
    Confidence,
    CostUsageRecord,
    Granularity,
    ResourceUsage,
    UsageMetric,
)

GIB = 1024**3

# group_by spellings the API accepts -> the canonical cost dimension.
GROUP_BY_ALIASES = {
    "service": "service",
    "service_name": "service",
    "region": "region",
    "location": "region",
    "account": "account",
    "project": "account",
    "subscription": "account",
    "linked_account": "account",
    "sub_account": "account",
    "sub_account_id": "account",
    "resource": "resource",
    "resource_id": "resource",
}
_DIMENSION_COLUMN = {
    "service": "service_name",
    "region": "region",
    "account": "sub_account_id",
    "resource": "resource_id",
}

# Billing service of each resource type, for rows that carry no resource type (AWS Cost
# Explorer, service-level rows). elb and alb share a service: their costs cannot be told apart.
BILLING_SERVICES = {
    "aws": {
        "ec2": "Amazon Elastic Compute Cloud - Compute",
        "rds": "Amazon Relational Database Service",
        "lambda": "AWS Lambda",
        "dynamodb": "Amazon DynamoDB",
        "s3": "Amazon Simple Storage Service",
        "elb": "Elastic Load Balancing",
        "alb": "Elastic Load Balancing",
    },
    "gcp": {
        "gce_instance": "Compute Engine",
        "cloudsql_database": "Cloud SQL",
        "gcs_bucket": "Cloud Storage",
        "gke_container": "Kubernetes Engine",
        "k8s_container": "Kubernetes Engine",
    },
    "azure": {
        "virtual_machine": "Virtual Machines",
        "sql_database": "SQL Database",
        "storage_account": "Storage",
        "app_service": "Azure App Service",
    },
}


def parse_group_by(group_by: list[str] | tuple[str, ...] | str | None) -> tuple[tuple[str, str], ...]:
    """((spelling, canonical), ...) for the caller's group_by, or ValueError saying what to pass."""
    if group_by is None:
        return ()
    if isinstance(group_by, str):
        group_by = [group_by]
    parsed = []
    for item in group_by:
        spelling = str(item).strip().lower()
        if spelling not in GROUP_BY_ALIASES:
            raise ValueError(
                f"group_by {item!r} is not supported: pass any of 'service', 'region', "
                "'account' (or 'project'/'subscription') and 'resource', in any letter case"
            )
        if spelling not in [s for s, _ in parsed]:
            parsed.append((spelling, GROUP_BY_ALIASES[spelling]))
    return tuple(parsed)


def utc_day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def cost_days(start: datetime, end: datetime) -> tuple[date, date]:
    """Whole UTC days covering [start, end): billing is daily, so partial days are widened."""
    last = (end - timedelta(microseconds=1)).date()
    return start.date(), last + timedelta(days=1)


def metric_days(start: datetime, end: datetime) -> list[date]:
    first, stop = cost_days(start, end)
    return [first + timedelta(days=i) for i in range((stop - first).days)]


# -- metrics -----------------------------------------------------------------------
def resource_usage(
    provider: str,
    resource_id: str,
    resource_type: str,
    region: str | None,
    start: datetime,
    end: datetime,
    rows: list[dict],
    specs: list[MetricSpec],
    tags: dict[str, str] | None = None,
) -> ResourceUsage:
    """One resource's metric rows as a ResourceUsage with its averages."""
    by_canonical = {s.canonical: s for s in specs}
    metrics: list[UsageMetric] = []
    values: dict[str, list[float]] = defaultdict(list)
    hours = set()
    for row in rows:
        spec = by_canonical.get(row["metric"])
        if spec is None:
            continue
        statistic = "avg" if spec.kind == "gauge" else "sum"
        value = row.get(statistic)
        if value is None:
            continue
        hours.add(row["hour_start"])
        values[spec.canonical].append(value)
        region = region or row.get("region")
        metrics.append(
            UsageMetric(
                timestamp=row["hour_start"],
                value=value,
                unit=row.get("unit") or spec.unit,
                metric_name=row.get("native_metric") or spec.native,
                canonical_name=spec.canonical,
                statistic=statistic,
                maximum=row.get("max"),
                minimum=row.get("min"),
                dimensions={
                    k: v
                    for k, v in (
                        ("resource_id", resource_id),
                        ("region", row.get("region")),
                        ("account", row.get("sub_account_id")),
                    )
                    if v
                },
            )
        )
    metrics.sort(key=lambda m: (m.metric_name, m.timestamp))

    def mean(canonical: str, scale: float = 1.0) -> float | None:
        series = values.get(canonical)
        return fmean(series) / scale if series else None

    return ResourceUsage(
        resource_id=resource_id,
        resource_type=resource_type,
        region=region,
        cloud_provider=provider,
        start_time=start,
        end_time=end,
        metrics=metrics,
        avg_cpu_utilization=mean("cpu_utilization_pct"),
        avg_memory_utilization=mean("memory_utilization_pct"),
        avg_network_in_gb=mean("network_in_bytes", GIB),
        avg_network_out_gb=mean("network_out_bytes", GIB),
        avg_disk_read_gb=mean("disk_read_bytes", GIB),
        avg_disk_write_gb=mean("disk_write_bytes", GIB),
        hours_with_data=len(hours),
        tags=dict(tags or {}),
        metadata={"days_with_data": len({h.date() for h in hours})},
    )


# -- cost --------------------------------------------------------------------------
def _period(day: date, granularity: Granularity, start: date, end: date) -> tuple[date, date]:
    if granularity is Granularity.MONTHLY:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return max(first, start), min(following, end)
    return day, day + timedelta(days=1)


def tags_of(row: dict) -> dict[str, str]:
    tags = row.get("tags")
    if not tags:
        return {}
    return {str(k): str(v) for k, v in tags}  # both sources' Arrow maps arrive as (key, value) pairs


def cost_records(
    rows: list[dict], group_by: tuple[tuple[str, str], ...], granularity: Granularity, start: date, end: date
) -> list[CostUsageRecord]:
    """Rows summed per period, currency and the requested dimensions (never across currencies)."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        period = _period(row["usage_date"], granularity, start, end)
        values = tuple(row.get(_DIMENSION_COLUMN[canonical]) for _, canonical in group_by)
        key = (period, row["billing_currency"], values)
        g = groups.setdefault(
            key,
            {
                "billed": Decimal(0),
                "effective": Decimal(0),
                "quantity": 0.0,
                "units": set(),
                "estimated": False,
                "types": set(),
                "tags": {},
                "sources": set(),
            },
        )
        g["billed"] += row["billed_cost"]
        g["effective"] += row["effective_cost"] if row.get("effective_cost") is not None else row["billed_cost"]
        g["quantity"] += row.get("usage_quantity") or 0.0
        g["units"].add(row.get("usage_unit"))
        g["estimated"] |= bool(row.get("is_estimated"))
        if row.get("resource_type"):
            g["types"].add(row["resource_type"])
        if row.get("source"):
            g["sources"].add(row["source"])
        if any(c == "resource" for _, c in group_by):
            g["tags"].update(tags_of(row))
    records = []
    for (period, currency, values), g in sorted(groups.items(), key=_record_order):
        dims = {spelling: value for (spelling, _), value in zip(group_by, values)}
        canonical = {c: value for (_, c), value in zip(group_by, values)}
        one_unit = len(g["units"]) == 1
        start_time = utc_day_start(period[0])
        records.append(
            CostUsageRecord(
                date=start_time,
                start_time=start_time,
                end_time=utc_day_start(period[1]),
                cost=g["billed"],
                effective_cost=g["effective"],
                currency=currency,
                usage_amount=g["quantity"] if one_unit else None,
                usage_unit=next(iter(g["units"])) if one_unit else None,
                service=canonical["service"] if "service" in canonical else "All services",
                account_id=canonical.get("account"),
                resource_id=canonical.get("resource"),
                resource_type=(next(iter(g["types"])) if len(g["types"]) == 1 and "resource" in canonical else None),
                region=canonical.get("region"),
                is_estimated=g["estimated"],
                dimensions=dims,
                tags=g["tags"],
                metadata={"source": sorted(g["sources"])},
            )
        )
    return records


def _record_order(item):
    (period, currency, values), _ = item
    return (period, currency, tuple("" if v is None else str(v) for v in values))


def row_matches(
    row: dict,
    provider: str,
    resource_types: list[str] | None,
    regions: list[str] | None,
    resource_ids: set[str] | None,
    filters: dict[str, set[str]] | None = None,
) -> bool:
    """Whether a cost row belongs to what a query selected."""
    if regions and (row.get("region") or "").lower() not in {r.lower() for r in regions}:
        return False
    if resource_types:
        if row.get("resource_type"):
            if row["resource_type"] not in resource_types:
                return False
        else:
            services = {BILLING_SERVICES.get(provider, {}).get(t) for t in resource_types}
            if row.get("service_name") not in services:
                return False
    if resource_ids is not None and (row.get("resource_id") or "").lower() not in resource_ids:
        return False
    for canonical, allowed in (filters or {}).items():
        value = row.get(_DIMENSION_COLUMN[canonical])
        if (value or "").lower() not in allowed:
            return False
    return True


def confidence_of(completeness: float, estimated: bool) -> Confidence:
    if completeness >= 0.95 and not estimated:
        return Confidence.HIGH
    if completeness >= 0.75:
        return Confidence.MEDIUM
    return Confidence.LOW
