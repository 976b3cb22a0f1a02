"""1. API efficiency: calls (and their price) for one day of metrics, our adapter vs naive.

Each cloud's adapter runs against its double through the real SDK; the naive approach
asks the same double for the same datapoints one metric of one resource per call
(``GetMetricStatistics`` on AWS, one ``metrics.list`` per metric on Azure, one
``ListTimeSeries`` per resource on GCP). Both sides do the same resource discovery, so
the ratio compares like with like; calls are counted where the double receives them.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from benchmarks.fleets import fake_aws_environment, fleet_of
from benchmarks.sizes import BENCH_DAY

TARGET_RATIO = 100  # the target for AWS at 2,000 EC2 + 500 RDS


# This benchmark counts calls and dollars, not time: no client-side pacing (benchmark 5 plays the
# quotas), which would hold the naive side's 15,000 GCP reads at 100 a second and keep its quota
# logs in the repository's data/pacing.
UNPACED = {"FINOPS_PACING_ENABLED": "false"}


def _day_window():
    start = datetime(BENCH_DAY.year, BENCH_DAY.month, BENCH_DAY.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def _side(calls: dict, usd: Decimal, rows: int, seconds: float) -> dict:
    return {
        "calls": dict(sorted(calls.items())),
        "total_calls": sum(calls.values()),
        "api_usd_per_day": float(usd),
        "api_usd_per_30_days": float(usd * 30),
        "rows": rows,
        "seconds": round(seconds, 3),
    }


def measure_aws(ec2: int, rds: int) -> dict:
    """Our GetMetricData batches vs one GetMetricStatistics per metric per resource."""
    import pyarrow.compute as pc

    from benchmarks.aws_double import AwsDouble
    from finops_pipeline.clouds.aws.catalog import CLOUDWATCH_PER_REQUEST
    from finops_pipeline.clouds.aws.source import AwsSource
    from finops_pipeline.settings import get_settings

    fake_aws_environment()
    fleet = fleet_of({("aws", "ec2"): ec2, ("aws", "rds"): rds})
    regions = sorted({r.region for r in fleet.resources})
    settings = get_settings(
        {"AWS_USAGE_ENABLED": "true", "AWS_REGION": regions[0], "AWS_USAGE_REGIONS": ",".join(regions)}
    )
    start, end = _day_window()
    today = BENCH_DAY + timedelta(days=1)

    double = AwsDouble(fleet, today)
    ours = AwsSource(settings, client_factory=double.client_factory(settings), today=today)
    began = time.perf_counter()
    rows, totals = 0, {"avg": 0.0, "max": 0.0, "sum": 0.0}
    for page in ours.iter_metric_frames(start, end):
        rows += page.num_rows
        for column in totals:
            totals[column] += pc.sum(page[column]).as_py() or 0.0  # nulls (a gauge's sum) skipped
    our_side = _side(_by_operation(double.calls), ours.api.estimated_cost_usd, rows, time.perf_counter() - began)

    double = AwsDouble(fleet, today)
    naive = AwsSource(settings, client_factory=double.client_factory(settings), today=today)
    began = time.perf_counter()
    points = naive_aws_points(naive, regions, start, end)
    calls = _by_operation(double.calls)
    # ListMetrics and GetMetricStatistics are both "other API requests" in CloudWatch's price list
    # (the inventory calls are free).
    usd = CLOUDWATCH_PER_REQUEST * (calls.get("ListMetrics", 0) + calls.get("GetMetricStatistics", 0))
    naive_side = _side(calls, usd, len(points), time.perf_counter() - began)
    naive_totals = {c: sum(p[c] for p in points.values() if p.get(c) is not None) for c in totals}
    result = _compare(
        {"resources": {"ec2": ec2, "rds": rds}, "ours": our_side, "naive": naive_side},
        fetch_ops=("GetMetricData", "GetMetricStatistics"),
    )
    # Like for like: the same (resource, metric, hour) rows and the same avg/max/sum totals.
    our_side["value_totals"], naive_side["value_totals"] = totals, naive_totals
    result["same_values"] = all(math.isclose(totals[c], naive_totals[c], rel_tol=1e-9, abs_tol=1e-6) for c in totals)
    result["same_datapoints"] = result["same_datapoints"] and result["same_values"]
    return result


def naive_aws_points(naive, regions: list[str], start: datetime, end: datetime) -> dict[tuple, dict]:
    """The naive client: the adapter's discovery, then one GetMetricStatistics per metric of each
    resource (per storage class for an S3 bucket's BucketSizeBytes). It lands what the adapter
    writes: (resource, metric, hour) -> avg (+ max where the adapter asks it) or sum, an S3 bucket's classes
    added up, and a 0 for every period of a counter CloudWatch has no datapoint for."""
    from finops_pipeline.clouds.aws.catalog import (
        METRICS,
        NAMESPACES,
        S3_ALL_STORAGE_TYPES,
    )
    from finops_pipeline.clouds.aws.source import MetricsAccount

    account = MetricsAccount(naive.account_id())
    points: dict[tuple, dict] = {}
    for region in regions:
        cloudwatch = naive.client("cloudwatch", region)
        for ref in naive.discover(region):
            ns = NAMESPACES[ref.resource_type]
            for spec in METRICS[ref.resource_type]:
                identity = [{"Name": ns.dimensions[0], "Value": ref.resource_id}]
                if ref.resource_type != "s3":
                    variants = [identity]
                elif spec.native == "BucketSizeBytes":  # the classes discovery's ListMetrics showed
                    variants = [
                        identity + [{"Name": "StorageType", "Value": t}] for t in naive._storage_types(ref, account)
                    ]
                else:
                    variants = [identity + [{"Name": "StorageType", "Value": S3_ALL_STORAGE_TYPES}]]
                # The same statistics as the adapter (equal data): a gauge's Maximum only where a rule reads it.
                if spec.kind == "counter":
                    stats = {"Sum": "sum"}
                elif (ref.resource_type, spec.canonical) in naive.maxima:
                    stats = {"Average": "avg", "Maximum": "max"}
                else:
                    stats = {"Average": "avg"}
                key = (ref.resource_id, spec.canonical)
                if spec.kind == "counter":
                    for k in range(int((end - start).total_seconds()) // ns.period):
                        points[key + (start + timedelta(seconds=k * ns.period),)] = {"sum": 0.0}
                for dims in variants:
                    answer = cloudwatch.get_metric_statistics(
                        Namespace=ns.namespace,
                        MetricName=spec.native,
                        Dimensions=dims,
                        StartTime=start,
                        EndTime=end,
                        Period=ns.period,
                        Statistics=list(stats),
                    )
                    for datapoint in answer["Datapoints"]:
                        point = points.setdefault(key + (datapoint["Timestamp"],), {})
                        for stat, column in stats.items():
                            point[column] = point.get(column, 0.0) + datapoint[stat] * spec.scale
    return points


def measure_azure(vms: int, databases: int) -> dict:
    """Our Monitor calls (multi-resource where Azure allows, else one per resource with all its
    metrics) vs one metrics.list per metric per resource."""
    import os

    from finops_pipeline.clouds.azure.source import (
        _COUNTER_AGGREGATIONS,
        _GAUGE_AGGREGATIONS,
        MONITOR_PRICE_PER_CALL,
        AzureSource,
    )
    from finops_pipeline.settings import get_settings
    from finops_pipeline.simulator.azure import AzureDouble

    fleet = fleet_of({("azure", "virtual_machine"): vms, ("azure", "sql_database"): databases})
    start, end = _day_window()
    # Cost Management pages hold up to 1,000 rows (the double's default is small for tests). A gate
    # that lets every call through: this benchmark counts calls and dollars, and the naive side's
    # 13,000 metric reads would spend the subscription's ARM read bucket (benchmark 5 plays quotas).
    with AzureDouble(
        fleet, BENCH_DAY - timedelta(days=2), BENCH_DAY + timedelta(days=1), page_size=1000, gate=lambda *_: None
    ) as double:
        os.environ.update(double.environment | UNPACED)
        settings = get_settings()

        ours = AzureSource.from_settings(settings)
        before = len(double.requests)
        began = time.perf_counter()
        rows = sum(page.num_rows for page in ours.iter_metric_frames(start, end))
        our_calls = _azure_calls(double.requests[before:])
        our_side = _side(our_calls, ours.api.estimated_cost_usd, rows, time.perf_counter() - began)

        naive = AzureSource.from_settings(settings)
        before = len(double.requests)
        began, points = time.perf_counter(), 0
        resources = naive.discover_resources(BENCH_DAY, BENCH_DAY + timedelta(days=1))
        usd = naive.api.estimated_cost_usd  # discovery's Cost Management queries (free)
        timespan = f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}"
        for ref in resources:
            for spec in naive.METRICS[ref.resource_type]:
                aggregations = _GAUGE_AGGREGATIONS if spec.kind == "gauge" else _COUNTER_AGGREGATIONS
                answer = naive.monitor_client.metrics.list(
                    ref.resource_id,
                    timespan=timespan,
                    interval="PT1H",
                    metricnames=spec.native,
                    aggregation=",".join(aggregations),
                )
                usd += MONITOR_PRICE_PER_CALL
                # The same rows the adapter writes: a gauge's measured hours, every hour of a counter
                # (a bare timestamp of a count metric is 0).
                points += sum(
                    1
                    for m in answer.value
                    for s in m.timeseries
                    for p in s.data
                    if spec.kind == "counter" or any(getattr(p, a) is not None for a in ("average", "total", "maximum"))
                )
        naive_side = _side(_azure_calls(double.requests[before:]), usd, points, time.perf_counter() - began)
    return _compare(
        {"resources": {"virtual_machine": vms, "sql_database": databases}, "ours": our_side, "naive": naive_side},
        fetch_ops=("monitor.metrics",),
    )


def measure_gcp(instances: int, databases: int) -> dict:
    """One ListTimeSeries per project x metric type (all resources) vs one per resource."""
    import os

    from finops_pipeline.clouds.gcp.source import GcpSource
    from finops_pipeline.settings import get_settings
    from finops_pipeline.simulator.gcp import run_gcp_doubles

    fleet = fleet_of({("gcp", "gce_instance"): instances, ("gcp", "cloudsql_database"): databases})
    start, end = _day_window()
    with run_gcp_doubles(fleet, BENCH_DAY, BENCH_DAY + timedelta(days=1)) as doubles:
        os.environ.update(doubles.environment() | UNPACED)
        settings = get_settings()
        served = doubles.monitoring.requests

        ours = GcpSource.from_settings(settings)
        before, began = len(served), time.perf_counter()
        rows = sum(page.num_rows for page in ours.iter_metric_frames(start, end))
        our_side = _side(
            {"ListTimeSeries": len(served) - before}, ours.api.estimated_cost_usd, rows, time.perf_counter() - began
        )

        # Naive: the same request, narrowed to one resource (resource list assumed known: no discovery).
        naive = GcpSource.from_settings(settings)
        before, began, points = len(served), time.perf_counter(), 0
        for resource in fleet.resources:
            for spec in naive.METRICS[resource.resource_type]:
                for aligner in ("ALIGN_MEAN", "ALIGN_MAX") if spec.kind == "gauge" else ("ALIGN_DELTA",):
                    pages = naive._series_pages(
                        resource.sub_account_id,
                        resource.resource_type,
                        spec,
                        start,
                        end,
                        [resource.resource_id],
                        aligner,
                    )
                    rows_here = sum(page.num_rows for page in pages)
                    points += rows_here if aligner != "ALIGN_MAX" else 0
        naive_side = _side(
            {"ListTimeSeries": len(served) - before}, naive.api.estimated_cost_usd, points, time.perf_counter() - began
        )
    return _compare(
        {
            "resources": {"gce_instance": instances, "cloudsql_database": databases},
            "ours": our_side,
            "naive": naive_side,
        },
        fetch_ops=("ListTimeSeries",),
    )


def _gcp_ready() -> bool:
    try:
        from finops_pipeline.clouds.gcp.source import GcpSource  # noqa: F401
        from finops_pipeline.simulator.gcp import run_gcp_doubles  # noqa: F401
    except ImportError:
        return False
    return True


def _azure_calls(requests: list[tuple[str, str]]) -> dict:
    calls: dict[str, int] = {}
    for method, path in requests:
        lower = path.lower()
        name = (
            "monitor.metrics"
            if lower.endswith("/providers/microsoft.insights/metrics")
            else "costmanagement.query"
            if "/microsoft.costmanagement/query" in lower
            else "entra.token"
            if "/oauth2/" in lower or "openid-configuration" in lower
            else f"{method} other"
        )
        calls[name] = calls.get(name, 0) + 1
    return calls


def _by_operation(calls) -> dict:
    by_op: dict[str, int] = {}
    for key, n in calls.items():
        operation = key.split(".")[1]
        by_op[operation] = by_op.get(operation, 0) + n
    return by_op


def _compare(result: dict, fetch_ops: tuple[str, ...]) -> dict:
    ours, naive = result["ours"], result["naive"]
    fetch = [sum(n for op, n in side["calls"].items() if op in fetch_ops) for side in (ours, naive)]
    result["ratios"] = {
        "calls_naive_over_ours": naive["total_calls"] / ours["total_calls"],
        "metric_fetch_calls_naive_over_ours": fetch[1] / fetch[0],
        "api_usd_naive_over_ours": (
            naive["api_usd_per_day"] / ours["api_usd_per_day"] if ours["api_usd_per_day"] else None
        ),
        "seconds_naive_over_ours": naive["seconds"] / ours["seconds"],
    }
    result["same_datapoints"] = ours["rows"] == naive["rows"]
    return result


def run(sizes) -> dict:
    from benchmarks.child import run_in_child

    results = {"day": BENCH_DAY.isoformat()}
    aws = run_in_child("benchmarks.api_efficiency:measure_aws", ec2=sizes.api_ec2, rds=sizes.api_rds)
    ratio = aws["ratios"]["calls_naive_over_ours"]
    aws["target"] = {
        "rule": f"naive/ours calls >= {TARGET_RATIO} at 2,000 EC2 + 500 RDS",
        "pass": ratio >= TARGET_RATIO,
        "at_target_size": (sizes.api_ec2, sizes.api_rds) == (2000, 500),
    }
    results["aws"] = aws
    results["azure"] = run_in_child(
        "benchmarks.api_efficiency:measure_azure", vms=sizes.api_azure_vms, databases=sizes.api_azure_sql
    )
    if _gcp_ready():
        results["gcp"] = run_in_child(
            "benchmarks.api_efficiency:measure_gcp", instances=sizes.api_gcp_instances, databases=sizes.api_gcp_sql
        )
    else:
        results["gcp"] = {"status": "not measured", "reason": "the GCP adapter has not landed"}
    return results


def summary(result: dict) -> list[dict]:
    rows = []
    for cloud in ("aws", "azure", "gcp"):
        r = result[cloud]
        if "ratios" not in r:
            rows.append(
                {
                    "benchmark": f"1. API calls/day ({cloud})",
                    "ours": "-",
                    "baseline": "-",
                    "ratio": "-",
                    "target": "-",
                    "result": r.get("status", "error"),
                }
            )
            continue
        size = " + ".join(f"{n:,} {t}" for t, n in r["resources"].items())
        target = r.get("target")
        rows.append(
            {
                "benchmark": f"1. API calls/day ({cloud}: {size})",
                "ours": f"{r['ours']['total_calls']:,} calls ${r['ours']['api_usd_per_day']:.4f}",
                "baseline": f"{r['naive']['total_calls']:,} calls ${r['naive']['api_usd_per_day']:.4f}",
                "ratio": f"{r['ratios']['calls_naive_over_ours']:.1f}x fewer",
                "target": target["rule"] if target else "(none)",
                "result": ("pass" if target["pass"] else "miss") if target else "info",
            }
        )
    return rows
