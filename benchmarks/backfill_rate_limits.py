"""5. Backfill against rate limits: 30 days x 3 clouds through doubles with latency and documented limits.

Each cloud's backfill is run the way Dagster launches it: ``<cloud>_metrics`` in weekly
runs (its ``WEEKLY_CHUNKS`` policy) and ``<cloud>_cost`` as one run for the range
(``WHOLE_RANGE``), all runs at once, each in its own process running the asset's body
(``clouds/ingest.py``: ``write_metric_days`` streams each day's pages into its partition,
days fetched concurrently per FINOPS_METRICS_CONCURRENCY; cost is ``adapter.fetch_cost``
for the range, then ``Lake.write_partitions``). The clouds are measured one after the
other (their limits are independent; running all 18 processes at once on a small machine
would measure the CPU, not the limits).

Every call pays ``latency`` seconds in the double and spends from limits shared by all
processes of the backfill:

- AWS (``benchmarks/aws_double.py``, token buckets): CloudWatch GetMetricData 50 TPS and
  ListMetrics 25 TPS per region, Cost Explorer 5 TPS; retried by botocore's adaptive mode.
- GCP and Azure (the simulator's doubles with the gates of ``benchmarks/limited_clouds.py``,
  fixed windows; sources cited there): Cloud Monitoring time-series reads 6,000/min (as
  100 per second), BigQuery 100 API requests per second per method, Azure Cost Management
  12 QPU / 10 s, 60 / min, 600 / h per tenant, ARM reads (Azure Monitor metrics) 25 per
  second per subscription; retried by each adapter's own retry rules.

The ideal bound is the time the limits alone impose: for each limited API, the least time
its limits allow for the calls the backfill needed (AWS: token buckets that start full, so
(calls - rate) / rate; fixed windows: whole windows from the release time, simulated); the
slowest API sets the bound. We report our wall time (from the moment every run is ready, so
process start-up is excluded), the bound as a percentage of it, throttled responses and failed runs (a run fails on its first call
that exhausts the adapter's retries). Each backfill is then run again with every limit lifted
(same code and latency): that wall time is the machine's floor, and "achievable" is the larger
of the floor and the ideal bound (on a small machine the CPU, not the limit, can bind).
"""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path

TARGET_PCT = 80.0
AWS_RATES = {"cloudwatch.GetMetricData": 50.0, "cloudwatch.ListMetrics": 25.0, "cost-explorer": 5.0}
READY_TIMEOUT = 600
LIFTED = 10**9  # a limit no run reaches: the same backfill measures the machine, not the limits


def run_aws(kind: str, start, end, scale: int, latency: float, limits, barrier, data_dir: str) -> dict:
    """One Dagster run's work (``kind``: metrics | cost) for days [start, end)."""
    from benchmarks.aws_double import AwsDouble
    from benchmarks.fleets import fake_aws_environment
    from finops_pipeline.clouds.aws.source import AwsSource
    from finops_pipeline.settings import get_settings
    from finops_pipeline.simulator.fleet import build_fleet

    fake_aws_environment()
    fleet = build_fleet(scale=scale)
    regions = sorted({r.region for r in fleet.of("aws")})
    settings = get_settings(
        {"AWS_USAGE_ENABLED": "true", "AWS_REGION": regions[0], "AWS_USAGE_REGIONS": ",".join(regions)}
    )
    double = AwsDouble(fleet, today=end, latency=latency, limits=limits)
    double.warm()
    adapter = AwsSource(settings, client_factory=double.client_factory(settings), today=end)
    run = _ingest(kind, adapter, settings, data_dir, start, end, barrier)
    return run | {"answered": dict(double.calls), "throttled": dict(double.throttled)}


def _ingest(kind: str, adapter, settings, data_dir: str, start, end, barrier) -> dict:
    """What the asset's body does for one run, timed from the barrier's release: the run's
    window, start and end times, rows written, and its error (None if it succeeded)."""
    from finops_pipeline.clouds.ingest import write_metric_days
    from finops_pipeline.warehouse.lake import Lake

    lake = Lake(Path(data_dir) / "lake")
    barrier.wait(READY_TIMEOUT)
    began, rows, error = time.time(), 0, None
    try:
        if kind == "metrics":
            writes, _ = write_metric_days(adapter, lake, start, end, settings.metrics_concurrency)
        else:
            fetched = adapter.fetch_cost(start, end)
            writes = lake.write_partitions(
                "cost_daily",
                fetched.cost,
                expected=[{"provider": adapter.provider, "usage_date": d} for d in fetched.days],
            )
        rows = sum(w.rows for w in writes)
    except Exception as exc:  # noqa: BLE001 - a failed run is a figure of this benchmark
        error = f"{type(exc).__name__}: {str(exc)[:500]}"
    return {
        "kind": kind,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "began": began,
        "ended": time.time(),
        "rows": rows,
        "error": error,
    }


def _pacing_environment(data_dir: str, pacing: bool) -> dict[str, str]:
    """The runs of a backfill share their client-side quota logs through the data directory,
    as the runs of one deployment do; with the limits lifted, pacing is off too."""
    return {"FINOPS_DATA_DIR": data_dir, "FINOPS_PACING_ENABLED": "true" if pacing else "false"}


def run_gcp(
    kind: str, start, end, scale: int, latency: float, quotas, barrier, data_dir: str, pacing: bool = True
) -> dict:
    """One GCP run: Cloud Monitoring (gRPC) and BigQuery (REST) doubles in this process, behind
    the shared quotas; the adapter built by ``GcpSource.from_settings`` as the asset does."""
    import os

    from benchmarks.limited_clouds import CallLog, bigquery_gate, monitoring_gate
    from finops_pipeline.clouds.gcp.source import GcpSource
    from finops_pipeline.settings import get_settings
    from finops_pipeline.simulator.fleet import GCP_BILLING_ACCOUNT, build_fleet
    from finops_pipeline.simulator.gcp import (
        BILLING_DATASET,
        BILLING_PROJECT,
        GcpDoubles,
    )
    from finops_pipeline.simulator.gcp_bigquery import (
        BigQueryDouble,
        start_bigquery_server,
    )
    from finops_pipeline.simulator.gcp_monitoring import (
        MetricServiceDouble,
        start_monitoring_server,
    )

    fleet = build_fleet(scale=scale)
    log = CallLog()
    monitoring = MetricServiceDouble(fleet, start, end, gate=monitoring_gate(latency, quotas, log))
    bigquery = BigQueryDouble(
        BILLING_PROJECT, BILLING_DATASET, GCP_BILLING_ACCOUNT, gate=bigquery_gate(latency, quotas, log)
    )
    if kind == "cost":
        bigquery.load_fleet(fleet, start, end)
    grpc_server, grpc_port = start_monitoring_server(monitoring)
    http_server = start_bigquery_server(bigquery)
    try:
        doubles = GcpDoubles(
            monitoring, bigquery, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_server.server_address[1]}"
        )
        settings = get_settings({**os.environ, **doubles.environment(), **_pacing_environment(data_dir, pacing)})
        adapter = GcpSource.from_settings(settings)
        run = _ingest(kind, adapter, settings, data_dir, start, end, barrier)
    finally:
        http_server.shutdown()
        http_server.server_close()
        grpc_server.stop(grace=None)
    return run | log.as_result() | {"retries": adapter.api.retries}


def run_azure(
    kind: str, start, end, first, scale: int, latency: float, quotas, barrier, data_dir: str, pacing: bool = True
) -> dict:
    """One Azure run: the HTTPS ARM double (token, Cost Management, Monitor) in this process,
    behind the shared quotas; the adapter built by ``AzureSource.from_settings``
    (DefaultAzureCredential -> the double's token endpoint) as the asset does."""
    import os

    from benchmarks.limited_clouds import CallLog, azure_gate
    from finops_pipeline.clouds.azure.source import DISCOVERY_LOOKBACK_DAYS, AzureSource
    from finops_pipeline.settings import get_settings
    from finops_pipeline.simulator.azure import AzureDouble
    from finops_pipeline.simulator.fleet import build_fleet

    fleet = build_fleet(scale=scale)
    log = CallLog()
    # Serves the whole backfill window (and discovery's look-back), like the real cloud would;
    # Cost Management pages hold up to 1,000 rows.
    served_from = first - timedelta(days=DISCOVERY_LOOKBACK_DAYS)
    with AzureDouble(fleet, served_from, end, page_size=1000, gate=azure_gate(latency, quotas, log)) as double:
        os.environ.update(double.environment | _pacing_environment(data_dir, pacing))
        settings = get_settings()
        adapter = AzureSource.from_settings(settings)
        run = _ingest(kind, adapter, settings, data_dir, start, end, barrier)
    return (
        run
        | log.as_result()
        | {"retries": adapter.api.retries, "longest_wait_seconds": max(adapter.waits, default=0.0)}
    )


def _runs(first, days: int) -> list[tuple[str, object, object]]:
    runs = [("metrics", first + timedelta(days=i), first + timedelta(days=min(i + 7, days))) for i in range(0, days, 7)]
    return runs + [("cost", first, first + timedelta(days=days))]


def measure_aws(days: int, scale: int, latency: float, lifted: bool = False) -> dict:
    from benchmarks.aws_double import RateLimits
    from finops_pipeline.simulator.fleet import AWS_REGIONS

    rates = {
        f"{api}.{region}": rate
        for api, rate in AWS_RATES.items()
        if api.startswith("cloudwatch")
        for region in AWS_REGIONS
    }
    rates["cost-explorer"] = AWS_RATES["cost-explorer"]
    limits = RateLimits({bucket: LIFTED for bucket in rates} if lifted else rates)
    go, results = _backfill("run_aws", days, dict(scale=scale, latency=latency, limits=limits))
    needed: dict[str, int] = {}
    for key, n in _sum(r["answered"] for r in results).items():
        bucket = limits.bucket(key)
        if bucket:
            needed[bucket] = needed.get(bucket, 0) + n
    documented = RateLimits(rates)  # the bound is always the documented limits'
    result = _report(go, results, {bucket: documented.least_seconds(bucket, n) for bucket, n in needed.items()})
    return {
        "days": days,
        "fleet_scale": scale,
        "resources": 16 * scale,
        "aws_resources": 16 * scale,
        "latency_seconds": latency,
        "rates_per_second": rates,
        **result,
    }


def measure_windowed(cloud: str, days: int, scale: int, latency: float, lifted: bool = False) -> dict:
    """GCP or Azure: the runs behind the fixed-window quotas of ``benchmarks/limited_clouds.py``."""
    from benchmarks.limited_clouds import AZURE_QUOTAS, GCP_QUOTAS, QuotaWindows
    from finops_pipeline.simulator.fleet import build_fleet

    documented = GCP_QUOTAS if cloud == "gcp" else AZURE_QUOTAS
    quotas = QuotaWindows(
        {b: [(LIFTED, w) for _, w in limits] for b, limits in documented.items()} if lifted else documented
    )
    options = dict(scale=scale, latency=latency, quotas=quotas, pacing=not lifted)
    go, results = _backfill(f"run_{cloud}", days, options, pass_first=cloud == "azure")
    needed = _sum(r["by_bucket"] for r in results)
    bound_by = QuotaWindows(documented)  # the bound is always the documented limits'
    result = _report(go, results, {bucket: bound_by.least_seconds(bucket, n, go) for bucket, n in needed.items()})
    return {
        "days": days,
        "fleet_scale": scale,
        "resources": len(build_fleet(scale=scale).of(cloud)),
        "latency_seconds": latency,
        "quotas": {b: [list(q) for q in v] for b, v in quotas.quotas.items()},
        "calls_by_quota": needed,
        "adapter_retries": sum(r["retries"] for r in results),
        # Cost Management calls as (run, arrived, decided, refused), seconds from the release
        "qpu_timeline": sorted(
            [i, round(a - go, 3), round(d - go, 3), refused]
            for i, r in enumerate(results)
            for a, d, refused in r.get("timeline", [])
        ),
        **result,
    }


def _backfill(target: str, days: int, options: dict, pass_first: bool = False) -> tuple[float, list[dict]]:
    """Start every run of the backfill in its own process, release them together; (go time, results)."""
    import multiprocessing as mp

    from benchmarks.child import result_of, start_child
    from benchmarks.sizes import BENCH_DAY

    first = BENCH_DAY - timedelta(days=days)
    runs = _runs(first, days)
    barrier = mp.get_context("spawn").Barrier(len(runs) + 1)
    extra = {"first": first} if pass_first else {}
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        handles = [
            start_child(
                f"benchmarks.backfill_rate_limits:{target}",
                kind=kind,
                start=s,
                end=e,
                barrier=barrier,
                data_dir=tmp,
                **options,
                **extra,
            )
            for kind, s, e in runs
        ]
        barrier.wait(READY_TIMEOUT)
        go = time.time()
        results = [result_of(h) for h in handles]
    return go, results


def _report(go: float, results: list[dict], bound_by: dict[str, float]) -> dict:
    wall = max(r["ended"] for r in results) - go
    bound = max(bound_by.values())
    failed = [r for r in results if r["error"]]
    return {
        "runs": [
            {k: r[k] for k in ("kind", "start", "end", "rows", "error")}
            | {"began": round(r["began"] - go, 3), "seconds": round(r["ended"] - go, 3)}
            for r in results
        ],
        "answered_calls": _sum(r["answered"] for r in results),
        "throttled_responses": _sum(r["throttled"] for r in results),
        "ideal_seconds_by_limit": bound_by,
        "ideal_seconds": bound,
        "limiting_api": max(bound_by, key=bound_by.get),
        "wall_seconds": wall,
        "pct_of_bound": 100.0 * bound / wall,
        "failed_runs": len(failed),
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
    """Each cloud twice: behind its documented limits, then with every limit lifted (same code,
    same latency). The lifted run is this machine's floor: no pacing can beat it."""
    results = {}
    for cloud in ("aws", "gcp", "azure"):
        args = (sizes.backfill_days, sizes.backfill_aws_scale, sizes.latency_seconds)
        # measure is called at once, in this iteration, so the loop variables it reads are current
        measure = (
            (lambda lifted: measure_aws(*args, lifted=lifted))  # noqa: B023
            if cloud == "aws"
            else (lambda lifted: measure_windowed(cloud, *args, lifted=lifted))  # noqa: B023
        )
        r, floor = measure(False), measure(True)
        r["machine_floor"] = {k: floor[k] for k in ("wall_seconds", "answered_calls", "failed_runs", "rows")}
        r["achievable_seconds"] = max(r["ideal_seconds"], floor["wall_seconds"])
        r["pct_of_achievable"] = 100.0 * r["achievable_seconds"] / r["wall_seconds"]
        r["target"] = {
            "rule": f">= {TARGET_PCT:.0f}% of the ideal bound, zero failed calls",
            "pass": r["pct_of_bound"] >= TARGET_PCT and r["failed_calls"] == 0,
        }
        results[cloud] = r
    return results


def summary(result: dict) -> list[dict]:
    rows = []
    for cloud in ("aws", "gcp", "azure"):
        r = result[cloud]
        if "wall_seconds" not in r:
            rows.append(
                {
                    "benchmark": f"5. Backfill vs rate limits ({cloud})",
                    "ours": "-",
                    "baseline": "-",
                    "ratio": "-",
                    "target": "-",
                    "result": r.get("status", "error"),
                }
            )
            continue
        throttled = sum(r["throttled_responses"].values())
        rows.append(
            {
                "benchmark": f"5. Backfill {r['days']} days vs rate limits ({cloud}, {r['resources']} resources)",
                "ours": f"{r['wall_seconds']:.1f} s, {throttled} throttled, {r['failed_calls']} failed",
                "baseline": f"{r['ideal_seconds']:.1f} s ideal bound ({r['limiting_api']}); "
                f"{r['machine_floor']['wall_seconds']:.1f} s with limits lifted",
                "ratio": f"{r['pct_of_bound']:.0f}% of bound, {r['pct_of_achievable']:.0f}% of achievable",
                "target": ">= 80%, 0 failed",
                "result": "pass" if r["target"]["pass"] else "miss",
            }
        )
    return rows
