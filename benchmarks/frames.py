"""metrics_hourly pages shaped like the AWS adapter's, generated from the simulator's fleet."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pyarrow as pa

from benchmarks.fleets import fleet_of
from finops_pipeline.simulator.fleet import Fleet, SimResource

# The six metrics of the "10,000 resources x 6 metrics": (canonical, native, unit, kind).
SIX_METRICS = (
    ("cpu_utilization_pct", "CPUUtilization", "Percent", "gauge"),
    ("memory_utilization_pct", "mem_used_percent", "Percent", "gauge"),
    ("network_in_bytes", "NetworkIn", "Bytes", "counter"),
    ("network_out_bytes", "NetworkOut", "Bytes", "counter"),
    ("disk_read_bytes", "EBSReadBytes", "Bytes", "counter"),
    ("disk_write_bytes", "EBSWriteBytes", "Bytes", "counter"),
)
# A GetMetricData call holds 500 queries; a gauge needs two (Average, Maximum), a counter one.
RESOURCES_PER_PAGE = 500 // sum(2 if kind == "gauge" else 1 for *_, kind in SIX_METRICS)


def instances(n: int) -> Fleet:
    """``n`` EC2 instances of the simulated fleet (all profiles: busy, idle, right-size ...)."""
    return fleet_of({("aws", "ec2"): n})


def metric_pages(resources: list[SimResource], fleet: Fleet, day: date) -> list[pa.Table]:
    """One day of the six metrics for ``resources``, one table per GetMetricData-sized page."""
    ingested = datetime.now(timezone.utc)
    return [
        _page(resources[i : i + RESOURCES_PER_PAGE], fleet, day, ingested)
        for i in range(0, len(resources), RESOURCES_PER_PAGE)
    ]


def _page(resources: list[SimResource], fleet: Fleet, day: date, ingested: datetime) -> pa.Table:
    series = [(r, m) for r in resources for m in SIX_METRICS]
    n = len(series) * 24
    avg, mx, total = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    hours = None
    for i, (resource, (canonical, _, _, kind)) in enumerate(series):
        values = fleet.hourly(resource, canonical, day)
        hours = values.hour_starts
        rows = slice(24 * i, 24 * (i + 1))
        if kind == "gauge":
            avg[rows], mx[rows] = values.avg, values.max
        else:
            total[rows] = values.sum

    def repeat(values: list) -> pa.Array:
        return pa.array(np.repeat(np.array(values, dtype=object), 24), pa.string())

    return pa.table(
        {
            "provider": pa.array(["aws"] * n, pa.string()),
            "usage_date": pa.array([day] * n, pa.date32()),
            "hour_start": pa.array(hours * len(series), pa.timestamp("us", tz="UTC")),
            "resource_id": repeat([r.resource_id for r, _ in series]),
            "resource_type": repeat([r.resource_type for r, _ in series]),
            "region": repeat([r.region for r, _ in series]),
            "sub_account_id": repeat([r.sub_account_id for r, _ in series]),
            "metric": repeat([m[0] for _, m in series]),
            "native_metric": repeat([m[1] for _, m in series]),
            "unit": repeat([m[2] for _, m in series]),
            "avg": pa.array(avg, pa.float64(), from_pandas=True),
            "max": pa.array(mx, pa.float64(), from_pandas=True),
            "sum": pa.array(total, pa.float64(), from_pandas=True),
            "ingested_at": pa.array([ingested] * n, pa.timestamp("us", tz="UTC")),
        }
    )
