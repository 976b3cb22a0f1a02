"""5. Backfill against rate limits: 30 days through doubles with latency and documented limits.

The backfill is run the way Dagster launches it: ``aws_metrics`` in weekly runs (its
``WEEKLY_CHUNKS`` policy) and ``aws_cost`` as one run for the range (``WHOLE_RANGE``),
all runs at once, each in its own process running the asset's body (``defs/ingest.py``:
metrics day by day, pages streamed into partitions; cost for the range, then partitions).
The AWS double adds ``latency`` seconds per call and enforces, across all processes, the
documented per-account limits: CloudWatch GetMetricData 50 TPS and ListMetrics 25 TPS per
region, Cost Explorer 5 TPS. Throttled calls are retried by botocore's adaptive mode.

The ideal bound is the time the limits alone impose: for each limited API, the calls the
backfill needed divided by the allowed rate; the slowest API sets the bound. We report
our wall time (from the moment every run is ready, so process start-up is excluded),
the bound as a percentage of it, throttled responses and failed runs.
"""

from __future__ import annotations

import math
import tempfile
import time
from datetime import timedelta
from pathlib import Path

TARGET_PCT = 80.0
AWS_RATES = {"cloudwatch.GetMetricData": 50.0, "cloudwatch.ListMetrics": 25.0, "cost-explorer": 5.0}
READY_TIMEOUT = 600


def run_aws(kind: str, start, end, scale: int, latency: float, limits, barrier, data_dir: str) -> dict:
    """One Dagster run's work (``kind``: metrics | cost) for days [start, end)."""
    from benchmarks.aws_double import AwsDouble
    from benchmarks.fleets import fake_aws_environment
    from finops_pipeline.adapters.usage.aws import AwsUsageAdapter
    from finops_pipeline.defs.ingest import write_metric_days
    from finops_pipeline.settings import get_settings
    from finops_pipeline.simulator.fleet import build_fleet
    from finops_pipeline.warehouse.lake import Lake

    fake_aws_environment()
    fleet = build_fleet(scale=scale)
    regions = sorted({r.region for r in fleet.of("aws")})
    settings = get_settings({"AWS_USAGE_ENABLED": "true", "AWS_REGION": regions[0],
                             "AWS_USAGE_REGIONS": ",".join(regions)})
    double = AwsDouble(fleet, today=end, latency=latency, limits=limits)
    double.warm()
    adapter = AwsUsageAdapter(settings, client_factory=double.client_factory(settings), today=end)
    lake = Lake(Path(data_dir) / "lake")
    error, rows = None, 0
    barrier.wait(READY_TIMEOUT)
    began = time.time()
    try:
        if kind == "metrics":
            writes, _ = write_metric_days(adapter, lake, start, end, settings.metrics_concurrency)
            rows = sum(w.rows for w in writes)
        else:
            fetched = adapter.fetch_cost(start, end)
            writes = lake.write_partitions("cost_daily", fetched.cost,
                                           expected=[{"provider": "aws", "usage_date": d} for d in fetched.days])
            rows = sum(w.rows for w in writes)
    except Exception as exc:  # noqa: BLE001 - a failed run is a figure of this benchmark
        error = f"{type(exc).__name__}: {exc}"
    return {"kind": kind, "start": start.isoformat(), "end": end.isoformat(), "began": began, "ended": time.time(),
            "rows": rows, "answered": dict(double.calls), "throttled": dict(double.throttled), "error": error}


def _runs(first, days: int) -> list[tuple[str, object, object]]:
    runs = [("metrics", first + timedelta(days=i), first + timedelta(days=min(i + 7, days))) for i in range(0, days, 7)]
    return runs + [("cost", first, first + timedelta(days=days))]


def measure_aws(days: int, scale: int, latency: float) -> dict:
    import multiprocessing as mp

    from benchmarks.aws_double import RateLimits
    from benchmarks.child import result_of, start_child
    from benchmarks.sizes import BENCH_DAY
    from finops_pipeline.simulator.fleet import AWS_REGIONS

    rates = {f"{api}.{region}": rate for api, rate in AWS_RATES.items() if api.startswith("cloudwatch")
             for region in AWS_REGIONS}
    rates["cost-explorer"] = AWS_RATES["cost-explorer"]
    limits = RateLimits(rates)
    first = BENCH_DAY - timedelta(days=days)
    runs = _runs(first, days)
    barrier = mp.get_context("spawn").Barrier(len(runs) + 1)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        handles = [start_child("benchmarks.backfill_rate_limits:run_aws", kind=kind, start=s, end=e, scale=scale,
                               latency=latency, limits=limits, barrier=barrier, data_dir=tmp) for kind, s, e in runs]
        barrier.wait(READY_TIMEOUT)
        go = time.time()
        results = [result_of(h) for h in handles]
    wall = max(r["ended"] for r in results) - go
    answered, throttled = _sum(r["answered"] for r in results), _sum(r["throttled"] for r in results)
    needed = {}
    for key, n in answered.items():
        bucket = limits.bucket(key)
        if bucket:
            needed[bucket] = needed.get(bucket, 0) + n
    bound_by = {bucket: n / rates[bucket] for bucket, n in needed.items()}
    bound = max(bound_by.values())
    failed = [r for r in results if r["error"]]
    return {
        "days": days, "fleet_scale": scale, "aws_resources": 16 * scale, "latency_seconds": latency,
        "rates_per_second": rates, "runs": [{k: r[k] for k in ("kind", "start", "end", "rows", "error")}
                                            | {"seconds": round(r["ended"] - go, 3)} for r in results],
        "answered_calls": answered, "throttled_responses": throttled,
        "ideal_seconds_by_limit": bound_by, "ideal_seconds": bound, "wall_seconds": wall,
        "pct_of_bound": 100.0 * bound / wall, "failed_runs": len(failed),
        "failed_calls": len(failed),  # a run fails on its first call that exhausts the retries
        "rows": sum(r["rows"] for r in results),
    }


def _sum(dicts) -> dict:
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return total


def run(sizes) -> dict:
    aws = measure_aws(sizes.backfill_days, sizes.backfill_aws_scale, sizes.latency_seconds)
    aws["target"] = {"rule": f">= {TARGET_PCT:.0f}% of the ideal bound, zero failed calls",
                     "pass": aws["pct_of_bound"] >= TARGET_PCT and aws["failed_calls"] == 0}
    return {"aws": aws,
            "gcp": {"status": "not measured", "reason": "rate-limited GCP doubles not built yet"},
            "azure": {"status": "not measured", "reason": "rate-limited Azure doubles not built yet"}}


def summary(result: dict) -> list[dict]:
    rows = []
    for cloud in ("aws", "gcp", "azure"):
        r = result[cloud]
        if "wall_seconds" not in r:
            rows.append({"benchmark": f"5. Backfill vs rate limits ({cloud})", "ours": "-", "baseline": "-",
                         "ratio": "-", "target": "-", "result": r.get("status", "error")})
            continue
        throttled = sum(r["throttled_responses"].values())
        rows.append({
            "benchmark": f"5. Backfill {r['days']} days vs rate limits ({cloud}, {r['aws_resources']} resources)",
            "ours": f"{r['wall_seconds']:.1f} s, {throttled} throttled, {r['failed_calls']} failed",
            "baseline": f"{r['ideal_seconds']:.1f} s ideal bound",
            "ratio": f"{r['pct_of_bound']:.0f}% of bound",
            "target": ">= 80%, 0 failed",
            "result": "pass" if r["target"]["pass"] else "miss",
        })
    return rows
