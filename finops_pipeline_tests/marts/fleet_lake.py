"""Write the simulated fleet's ground truth (metrics and bill) straight into a tmp lake.

The marts are tested on known inputs; the pipeline's own ingestion is tested elsewhere.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Iterable

import pandas as pd
import pyarrow as pa

from finops_pipeline.simulator.fleet import Fleet
from finops_pipeline.warehouse.lake import Lake

COUNTERS = {
    "network_in_bytes",
    "network_out_bytes",
    "disk_read_bytes",
    "disk_write_bytes",
    "requests",
    "invocations",
    "errors",
    "read_capacity_units",
}

# Canonical metrics each simulated resource type reports.
METRICS = {
    "ec2": ["cpu_utilization_pct", "network_in_bytes", "network_out_bytes", "disk_read_bytes", "disk_write_bytes"],
    "rds": ["cpu_utilization_pct", "connections"],
    "lambda": ["invocations", "errors"],
    "dynamodb": ["read_capacity_units"],
    "s3": ["storage_bytes"],
    "elb": ["requests"],
    "alb": ["requests", "connections"],
    "gce_instance": ["cpu_utilization_pct", "network_in_bytes", "network_out_bytes"],
    "cloudsql_database": ["cpu_utilization_pct", "connections"],
    "gcs_bucket": ["storage_bytes"],
    "k8s_container": ["cpu_utilization_pct", "memory_utilization_pct"],
    "virtual_machine": ["cpu_utilization_pct", "network_in_bytes", "network_out_bytes", "disk_read_bytes"],
    "sql_database": ["cpu_utilization_pct", "connections"],
    "storage_account": ["storage_bytes"],
    "app_service": ["cpu_utilization_pct", "requests"],
}

INGESTED = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def metrics_table(fleet: Fleet, provider: str, day: date) -> pa.Table:
    cols: dict[str, list] = {
        k: []
        for k in (
            "provider",
            "usage_date",
            "hour_start",
            "resource_id",
            "resource_name",
            "resource_type",
            "region",
            "sub_account_id",
            "metric",
            "native_metric",
            "unit",
            "avg",
            "max",
            "min",
            "sum",
            "sample_count",
        )
    }
    for r in fleet.of(provider):
        for metric in METRICS[r.resource_type]:
            v = fleet.hourly(r, metric, day)
            counter = metric in COUNTERS
            for h in range(24):
                cols["provider"].append(provider)
                cols["usage_date"].append(day)
                cols["hour_start"].append(v.hour_starts[h])
                cols["resource_id"].append(r.resource_id)
                cols["resource_name"].append(r.name)
                cols["resource_type"].append(r.resource_type)
                cols["region"].append(r.region)
                cols["sub_account_id"].append(r.sub_account_id)
                cols["metric"].append(metric)
                cols["native_metric"].append(metric)
                cols["unit"].append("Count" if counter else "Percent")
                cols["avg"].append(None if counter else float(v.avg[h]))
                cols["max"].append(None if counter else float(v.max[h]))
                cols["min"].append(None if counter else float(v.min[h]))
                cols["sum"].append(float(v.sum[h]))
                cols["sample_count"].append(float(v.sample_count[h]))
    cols["ingested_at"] = [INGESTED] * len(cols["provider"])
    return pa.table(cols)


def cost_table(fleet: Fleet, provider: str, day: date, resource_level: bool = True) -> pd.DataFrame:
    rows = []
    for line in fleet.cost_lines(provider, day):
        rows.append(
            {
                "provider": provider,
                "usage_date": day,
                "billing_account_id": line.billing_account_id,
                "sub_account_id": line.sub_account_id,
                "service_name": line.service_name,
                "region": line.region,
                "resource_id": line.resource_id if resource_level else None,
                "sku": line.sku,
                "charge_category": line.charge_category,
                "usage_quantity": line.usage_quantity,
                "usage_unit": line.usage_unit,
                "billed_cost": line.billed_cost,
                "effective_cost": line.effective_cost,
                "billing_currency": line.currency,
                "tags": dict(line.tags) or None,
                "is_estimated": False,
                "source": "fleet",
                "ingested_at": INGESTED,
            }
        )
    return pd.DataFrame(rows)


def write_fleet(
    fleet: Fleet,
    lake: Lake,
    start: date,
    end: date,
    providers: Iterable[str] = ("aws", "gcp", "azure"),
    resource_level: bool = True,
) -> None:
    """Ground-truth metrics_hourly and cost_daily partitions for every day in [start, end)."""
    for provider in providers:
        for day in _days(start, end):
            lake.write_partitions("metrics_hourly", metrics_table(fleet, provider, day))
            lake.write_partitions("cost_daily", cost_table(fleet, provider, day, resource_level))
