"""gcp_cost and gcp_metrics materialized by Dagster against the doubles, and a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal

import duckdb
from dagster import DagsterInstance

from finops_pipeline.clouds.gcp.assets import gcp_cost, gcp_metrics
from finops_pipeline_tests.runs import materialize, range_tags

FIRST, LAST = date(2026, 3, 2), date(2026, 3, 3)


def test_a_two_day_range_lands_the_fleets_cost_and_metrics(fleet, gcp_env, data_dir):
    tags = range_tags(FIRST, LAST + timedelta(days=1))
    result = materialize([gcp_cost, gcp_metrics], instance=DagsterInstance.ephemeral(), tags=tags)
    assert result.success
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    cost = con.execute(
        "SELECT usage_date, sum(billed_cost), sum(effective_cost) FROM cost_daily "
        "WHERE provider = 'gcp' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert cost == [
        (d, fleet.daily_total("gcp", d)["USD"], fleet.daily_total("gcp", d, "effective")["USD"]) for d in (FIRST, LAST)
    ]
    metrics = con.execute(
        "SELECT usage_date, count(*), count(DISTINCT hour_start) FROM metrics_hourly "
        "WHERE provider = 'gcp' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert metrics == [(FIRST, 34 * 24, 24), (LAST, 34 * 24, 24)]
    # Billing and metrics join on resource_id: every billed GCP resource has metrics.
    unjoined = con.execute("""
        SELECT count(*) FROM cost_daily c WHERE provider = 'gcp' AND resource_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM metrics_hourly m WHERE m.provider = 'gcp'
                          AND m.resource_id = c.resource_id AND m.usage_date = c.usage_date)""").fetchone()[0]
    assert unjoined == 0

    meta = result.asset_materializations_for_node("gcp_cost")[0].metadata
    assert meta["partitions_written"].value == 2
    assert 0 < meta["bytes_scanned"].value < 10 * 2**20  # billed as BigQuery's 10 MB minimum:
    assert meta["estimated_api_cost_usd"].value == 2 * 6.25 * 10 * 2**20 / 2**40  # 2 queries at $6.25/TiB
    assert meta["api_calls_by_operation"].value["bigquery.jobs.insert"] == 2  # one range, one query (+ totals)
    assert Decimal(meta["provider_totals"].value[FIRST.isoformat()]["USD"]) == fleet.daily_total("gcp", FIRST)["USD"]
    metric_meta = result.asset_materializations_for_node("gcp_metrics")[0].metadata
    assert metric_meta["rows"].value == 2 * 34 * 24
    # Series per day: 4 VMs x (2 CPU + 4 counters) + 2 Cloud SQL x 3 gauges x 2 + 2 buckets x 3
    # + 2 containers x 3 = 48, less the idle bucket's requests (no points, no series): 47
    # ($0.50 per million; a gauge's mean and max are two series).
    assert metric_meta["estimated_api_cost_usd"].value == 2 * 47 * 0.5e-6


def test_a_separate_process_reaches_the_doubles_through_the_environment(fleet, gcp_env):
    script = (
        "import json, datetime as dt\n"
        "from finops_pipeline.settings import get_settings\n"
        "from finops_pipeline.clouds.gcp.source import GcpSource\n"
        "a = GcpSource.from_settings(get_settings())\n"
        "day = dt.date(2026, 3, 2)\n"
        "f = a.fetch_cost(day, day + dt.timedelta(days=1))\n"
        "start = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)\n"
        "rows = sum(t.num_rows for t in a.iter_metric_frames(start, start + dt.timedelta(days=1)))\n"
        "print(json.dumps({'total': str(f.provider_totals[day]['USD']), 'rows': rows}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert Decimal(got["total"]) == fleet.daily_total("gcp", FIRST)["USD"]
    assert got["rows"] == 34 * 24
