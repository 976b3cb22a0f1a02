"""3. Mart build: every mart over D days x N resources vs one hand-written DuckDB query.

The lake is prepared first (not timed): D days of the six hourly metrics for N simulated
EC2 instances (adapter-shaped pages, as ingest writes them) and the fleet's billing in
``cost_daily``. Ours builds every mart as its Dagster asset does (``run_sql`` of
``sql/<mart>.sql`` over the lake, then ``Lake.write_partitions``): utilization_daily,
underutilized_resources, cost_trend_daily, cost_trend_monthly, in dependency order. The
baseline is one hand-written query computing utilization_daily over the same files,
written to Parquet. Each side runs in its own child process (peak RSS from the OS).
"""

from __future__ import annotations

import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

TARGET_RATIO = 2.0
TARGET_RSS = 4 << 30
MARTS = ("utilization_daily", "underutilized_resources", "cost_trend_daily", "cost_trend_monthly")

BASELINE_SQL = """
COPY (
    WITH m AS (
        SELECT * FROM read_parquet('{metrics}', hive_partitioning = true)
        WHERE usage_date >= DATE '{start}' AND usage_date < DATE '{end}'
    ), c AS (
        SELECT usage_date, provider, lower(resource_id) AS rid, sum(billed_cost) AS billed_cost,
               sum(effective_cost) AS effective_cost
        FROM read_parquet('{cost}', hive_partitioning = true)
        WHERE resource_id IS NOT NULL AND usage_date >= DATE '{start}' AND usage_date < DATE '{end}'
        GROUP BY ALL
    ), u AS (
        SELECT usage_date, provider, resource_id,
               count(DISTINCT hour_start) AS hours_with_data,
               avg("avg") FILTER (metric = 'cpu_utilization_pct') AS cpu_avg_pct,
               quantile_cont("avg", 0.95) FILTER (metric = 'cpu_utilization_pct') AS cpu_p95_pct,
               max("max") FILTER (metric = 'cpu_utilization_pct') AS cpu_max_pct,
               avg("avg") FILTER (metric = 'memory_utilization_pct') AS memory_avg_pct,
               sum("sum") FILTER (metric = 'network_in_bytes') AS network_in_bytes,
               sum("sum") FILTER (metric = 'network_out_bytes') AS network_out_bytes,
               sum("sum") FILTER (metric = 'disk_read_bytes') AS disk_read_bytes,
               sum("sum") FILTER (metric = 'disk_write_bytes') AS disk_write_bytes
        FROM m GROUP BY ALL
    )
    SELECT u.*, c.billed_cost, c.effective_cost
    FROM u LEFT JOIN c ON c.usage_date = u.usage_date AND c.provider = u.provider AND c.rid = lower(u.resource_id)
) TO '{out}' (FORMAT parquet)
"""


def prepare(data_dir: str, days: int, resources: int, lake_root: str | None = None) -> dict:
    """Write the lake the marts read (metrics_hourly + cost_daily) under ``data_dir`` or at
    ``lake_root``; ``seconds`` is the time spent writing (frames built outside it)."""
    import pyarrow as pa

    from benchmarks.frames import instances, metric_pages
    from benchmarks.sizes import BENCH_DAY
    from finops_pipeline.warehouse.lake import Lake

    fleet = instances(resources)
    lake = Lake(lake_root or Path(data_dir) / "lake")
    first = BENCH_DAY - timedelta(days=days)
    ingested = datetime.now(timezone.utc)
    rows, seconds = 0, 0.0
    for i in range(days):
        day = first + timedelta(days=i)
        pages = metric_pages(list(fleet.resources), fleet, day)
        began = time.perf_counter()
        with lake.open_partition("metrics_hourly", {"provider": "aws", "usage_date": day}) as writer:
            for page in pages:
                writer.write(page)
        seconds += time.perf_counter() - began
        rows += writer.rows
        lines = fleet.cost_lines("aws", day)
        cost = pa.table(
            {
                "billing_account_id": [x.billing_account_id for x in lines],
                "sub_account_id": [x.sub_account_id for x in lines],
                "service_name": [x.service_name for x in lines],
                "region": [x.region for x in lines],
                "resource_id": [x.resource_id for x in lines],
                "sku": [x.sku for x in lines],
                "charge_category": [x.charge_category for x in lines],
                "billed_cost": pa.array([x.billed_cost for x in lines], pa.decimal128(38, 10)),
                "effective_cost": pa.array([x.effective_cost for x in lines], pa.decimal128(38, 10)),
                "billing_currency": [x.currency for x in lines],
                "usage_quantity": [x.usage_quantity for x in lines],
                "usage_unit": [x.usage_unit for x in lines],
                "is_estimated": [False] * len(lines),
                "source": ["benchmark"] * len(lines),
                "ingested_at": pa.array([ingested] * len(lines), pa.timestamp("us", tz="UTC")),
            }
        )
        began = time.perf_counter()
        lake.write_partition("cost_daily", {"provider": "aws", "usage_date": day}, cost)
        seconds += time.perf_counter() - began
    return {
        "metric_rows": rows,
        "first_day": first.isoformat(),
        "days": days,
        "resources": resources,
        "seconds": seconds,
    }


def build_marts(data_dir: str, start: str, end: str, lake_root: str | None = None) -> dict:
    """Every mart over [start, end), as the mart assets build them (the lake under ``data_dir``
    or at ``lake_root``)."""
    from benchmarks.child import peak_rss_bytes
    from finops_pipeline.defs.marts import TREND_TOLERANCE
    from finops_pipeline.defs.partitions import days
    from finops_pipeline.settings import get_settings
    from finops_pipeline.warehouse.lake import Lake
    from finops_pipeline.warehouse.sql import run_sql

    settings = get_settings({})
    lake = Lake(lake_root or Path(data_dir) / "lake")
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    month = first.replace(day=1)
    months = []
    while month < last:
        months.append(month)
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    plan = {
        "utilization_daily": ({}, [{"usage_date": d} for d in days(first, last)]),
        "underutilized_resources": (
            {"coverage_floor": settings.metrics_coverage_floor},
            [{"usage_date": d} for d in days(first, last)],
        ),
        "cost_trend_daily": (
            {"tag_key": settings.tag_match_key, "tolerance": TREND_TOLERANCE},
            [{"usage_date": d} for d in days(first, last)],
        ),
        "cost_trend_monthly": (
            {"tolerance": TREND_TOLERANCE, "start": months[0], "end": month},
            [{"usage_date": m} for m in months],
        ),
    }
    setup_rss = peak_rss_bytes()
    seconds, rows = {}, {}
    for mart in MARTS:
        params, expected = plan[mart]
        began = time.perf_counter()
        data = run_sql(mart, lake, {"start": first, "end": last, **params})
        lake.write_partitions(mart, data, expected=expected)
        seconds[mart], rows[mart] = time.perf_counter() - began, data.num_rows
    return {
        "seconds": sum(seconds.values()),
        "seconds_by_mart": seconds,
        "rows_by_mart": rows,
        "setup_rss_bytes": setup_rss,
    }


def hand_written(data_dir: str, start: str, end: str) -> dict:
    import duckdb

    from benchmarks.child import peak_rss_bytes

    lake = Path(data_dir) / "lake"
    out = Path(data_dir) / "baseline_utilization_daily.parquet"
    sql = BASELINE_SQL.format(
        metrics=lake / "metrics_hourly/*/*/part.parquet",
        cost=lake / "cost_daily/*/*/part.parquet",
        start=start,
        end=end,
        out=out,
    )
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    setup_rss = peak_rss_bytes()
    began = time.perf_counter()
    con.execute(sql)
    seconds = time.perf_counter() - began
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return {"seconds": seconds, "rows": rows, "setup_rss_bytes": setup_rss}


def run(sizes) -> dict:
    from benchmarks.child import run_in_child

    with tempfile.TemporaryDirectory(prefix="bench-marts-") as tmp:
        prepared = run_in_child(
            "benchmarks.mart_build:prepare", data_dir=tmp, days=sizes.mart_days, resources=sizes.mart_resources
        )
        start = prepared["first_day"]
        end = (date.fromisoformat(start) + timedelta(days=sizes.mart_days)).isoformat()
        ours = run_in_child("benchmarks.mart_build:build_marts", data_dir=tmp, start=start, end=end)
        base = run_in_child("benchmarks.mart_build:hand_written", data_dir=tmp, start=start, end=end)
    ratio = ours["seconds"] / base["seconds"]
    return {
        "days": sizes.mart_days,
        "resources": sizes.mart_resources,
        "metric_rows": prepared["metric_rows"],
        "ours": ours,
        "baseline": base,
        "ratios": {
            "all_marts_over_hand_written": ratio,
            "utilization_daily_over_hand_written": ours["seconds_by_mart"]["utilization_daily"] / base["seconds"],
            "peak_rss_ours_over_hand_written": ours["peak_rss_bytes"] / base["peak_rss_bytes"],
        },
        "target": {
            "rule": "all marts <= 2x hand-written utilization_daily; peak RSS <= 4 GiB",
            "pass": ratio <= TARGET_RATIO and ours["peak_rss_bytes"] <= TARGET_RSS,
            "at_target_size": (sizes.mart_days, sizes.mart_resources) == (90, 10_000),
        },
    }


def summary(result: dict) -> list[dict]:
    ours, base = result["ours"], result["baseline"]
    gib = lambda b: f"{b / 2**30:.2f} GiB"  # noqa: E731
    return [
        {
            "benchmark": f"3. All marts, {result['days']} days x {result['resources']:,} resources "
            f"({result['metric_rows'] / 1e6:.1f} M rows)",
            "ours": f"{ours['seconds']:.1f} s, peak {gib(ours['peak_rss_bytes'])}",
            "baseline": f"{base['seconds']:.1f} s, peak {gib(base['peak_rss_bytes'])}",
            "ratio": f"{result['ratios']['all_marts_over_hand_written']:.2f}x",
            "target": "<= 2x, <= 4 GiB",
            "result": "pass" if result["target"]["pass"] else "miss",
        }
    ]
