"""4. Memory of one partition: peak RSS of one aws_metrics day for N resources, pages streamed.

Ours is what ``clouds/ingest.py`` does: every page from ``AwsSource.iter_metric_frames``
(real boto3 client, the in-process AWS double of ``benchmarks/aws_double.py``, discovery
through ListMetrics) is written into the open partition as it arrives. The baseline
accumulates the day's pages and writes them at the end (``Lake.write_partitions``), which
is what a non-streaming ingest would do. Each runs in its own fresh child process; the
double runs inside it (its listings are built before the step and counted in setup RSS).
"""

from __future__ import annotations

import math
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

TARGET_BYTES = 1 << 30  # <= 1 GiB


def measure(resources: int, mode: str) -> dict:
    import pyarrow as pa

    from benchmarks.aws_double import AwsDouble
    from benchmarks.child import peak_rss_bytes
    from benchmarks.fleets import fake_aws_environment
    from benchmarks.sizes import BENCH_DAY
    from finops_pipeline.clouds.aws.source import AwsSource
    from finops_pipeline.settings import get_settings
    from finops_pipeline.simulator.fleet import Fleet, build_fleet
    from finops_pipeline.warehouse.lake import Lake

    fake_aws_environment()
    full = build_fleet(scale=math.ceil(resources / 16))  # 16 AWS resources per unit of scale
    fleet = Fleet(resources=tuple(full.of("aws")[:resources]), seed=full.seed)
    regions = sorted({r.region for r in fleet.resources})
    settings = get_settings(
        {"AWS_USAGE_ENABLED": "true", "AWS_REGION": regions[0], "AWS_USAGE_REGIONS": ",".join(regions)}
    )
    today = BENCH_DAY + timedelta(days=1)
    double = AwsDouble(fleet, today)
    double.warm()
    adapter = AwsSource(settings, client_factory=double.client_factory(settings), today=today)
    start = datetime(BENCH_DAY.year, BENCH_DAY.month, BENCH_DAY.day, tzinfo=timezone.utc)
    partition = {"provider": "aws", "usage_date": BENCH_DAY}
    setup_rss = peak_rss_bytes()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        lake = Lake(Path(tmp))
        began = time.perf_counter()
        if mode == "streamed":
            with lake.open_partition("metrics_hourly", partition) as writer:
                for page in adapter.iter_metric_frames(start, start + timedelta(days=1)):
                    writer.write(page)
            rows = writer.rows
        else:
            pages = list(adapter.iter_metric_frames(start, start + timedelta(days=1)))
            rows = sum(
                w.rows for w in lake.write_partitions("metrics_hourly", pa.concat_tables(pages), expected=[partition])
            )
        seconds = time.perf_counter() - began
    return {
        "mode": mode,
        "resources": len(fleet.resources),
        "rows": rows,
        "seconds": seconds,
        "api_calls": dict(adapter.api.calls),
        "setup_rss_bytes": setup_rss,
    }


def run(sizes) -> dict:
    from benchmarks.child import run_in_child

    ours = run_in_child("benchmarks.partition_memory:measure", resources=sizes.memory_resources, mode="streamed")
    base = run_in_child("benchmarks.partition_memory:measure", resources=sizes.memory_resources, mode="accumulated")
    for side in (ours, base):
        side["step_rss_bytes"] = side["peak_rss_bytes"] - side["setup_rss_bytes"]
    return {
        "resources": ours["resources"],
        "rows": ours["rows"],
        "ours": ours,
        "baseline": base,
        "ratios": {
            "peak_rss_ours_over_accumulated": ours["peak_rss_bytes"] / base["peak_rss_bytes"],
            "step_rss_ours_over_accumulated": ours["step_rss_bytes"] / max(1, base["step_rss_bytes"]),
        },
        "target": {
            "rule": "peak RSS <= 1 GiB for 10,000 resources",
            "pass": ours["peak_rss_bytes"] <= TARGET_BYTES,
            "at_target_size": ours["resources"] == 10_000,
        },
    }


def summary(result: dict) -> list[dict]:
    ours, base = result["ours"], result["baseline"]
    mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    return [
        {
            "benchmark": f"4. Peak RSS, one aws_metrics day ({result['resources']:,} resources, {result['rows']:,} rows)",
            "ours": f"{mib(ours['peak_rss_bytes'])} (setup {mib(ours['setup_rss_bytes'])})",
            "baseline": f"{mib(base['peak_rss_bytes'])} accumulated",
            "ratio": f"{result['ratios']['peak_rss_ours_over_accumulated']:.2f} of accumulated",
            "target": "<= 1 GiB",
            "result": "pass" if result["target"]["pass"] else "miss",
        }
    ]
