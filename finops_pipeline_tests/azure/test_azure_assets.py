"""azure_cost + azure_metrics materialized by Dagster against the HTTPS double (real token flow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal

from finops_pipeline.clouds.azure.assets import azure_cost, azure_metrics
from finops_pipeline.simulator.azure import serve_azure
from finops_pipeline.warehouse.catalog import connect_lake
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline_tests.runs import materialize, range_tags, set_environment

DAY = date(2026, 1, 6)


# Metrics read per resource type (Azure Monitor's supported-metrics pages; see test_azure_metrics).
METRICS_PER_TYPE = {"virtual_machine": 6, "sql_database": 3, "storage_account": 3, "app_service": 3}


def _expected_metric_rows(fleet) -> int:
    # Every metric, every hour: idle hours of a counter come back bare from Azure and land as 0.
    return sum(24 * METRICS_PER_TYPE[r.resource_type] for r in fleet.of("azure"))


def test_a_day_of_azure_cost_and_metrics_lands_in_the_lake(monkeypatch, data_dir, fleet):
    with serve_azure(fleet, date(2026, 1, 1), date(2026, 1, 10)) as env:
        set_environment(monkeypatch, env)
        result = materialize([azure_cost, azure_metrics], partition_key=DAY.isoformat())
    assert result.success

    con = connect_lake(Lake(data_dir / "lake"))
    totals = dict(
        con.execute(
            "select billing_currency, sum(billed_cost) from cost_daily "
            "where provider = 'azure' and usage_date = ? group by 1",
            [DAY],
        ).fetchall()
    )
    assert {k: Decimal(v) for k, v in totals.items()} == fleet.daily_total("azure", DAY)
    rows, resources = con.execute(
        "select count(*), count(distinct resource_id) from metrics_hourly where provider = 'azure' and usage_date = ?",
        [DAY],
    ).fetchone()
    assert rows == _expected_metric_rows(fleet) and resources == len(fleet.of("azure"))
    # The idle database had no connections: 24 hours of 0 (what its idle rule reads), not gaps.
    idle_db = fleet.of("azure", "sql_database")[1].resource_id.lower()
    assert con.execute(
        "select count(*), sum(sum) from metrics_hourly where resource_id = ? "
        "and metric = 'connections' and usage_date = ?",
        [idle_db, DAY],
    ).fetchone() == (24, 0.0)
    # Cost and metrics name the same resources the same way.
    unmatched = con.execute(
        "select count(*) from (select distinct resource_id from metrics_hourly where provider = 'azure') m "
        "anti join (select distinct resource_id from cost_daily where provider = 'azure') c using (resource_id)"
    ).fetchone()[0]
    assert unmatched == 0

    cost_meta = result.asset_materializations_for_node("azure_cost")[0].metadata
    assert cost_meta["status"].value == "ingested" and cost_meta["api_calls"].value == 10
    assert cost_meta["estimated_api_cost_usd"].value == 0
    metrics_meta = result.asset_materializations_for_node("azure_metrics")[0].metadata
    # One subscription-scope query per subscription x region x type: every group holds one resource here.
    assert metrics_meta["api_calls_by_operation"].value == {
        "costmanagement.query.usage": 2,
        "monitor.metrics.list_at_subscription_scope_post": 10,
    }


def test_serve_azure_environment_drives_a_separate_process(fleet):
    code = (
        "import json; from datetime import date; from finops_pipeline.settings import get_settings; "
        "from finops_pipeline.clouds.azure.source import AzureSource; "
        "f = AzureSource.from_settings(get_settings()).fetch_cost(date(2026, 1, 6), date(2026, 1, 7)); "
        "print(json.dumps({c: str(v) for c, v in f.provider_totals[date(2026, 1, 6)].items()}))"
    )
    with serve_azure(fleet, date(2026, 1, 1), date(2026, 1, 10)) as env:
        done = subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr[-2000:]
    totals = {k: Decimal(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}
    assert totals == fleet.daily_total("azure", DAY)


def test_a_metrics_run_lists_resources_once_not_once_per_day(monkeypatch, data_dir, fleet):
    # Discovery is a Cost Management query (scarce QPU quota): one per subscription per run.
    with serve_azure(fleet, date(2026, 1, 1), date(2026, 1, 10)) as env:
        set_environment(monkeypatch, env)
        result = materialize([azure_metrics], tags=range_tags(date(2026, 1, 4), DAY + timedelta(days=1)))
    assert result.success
    calls = result.asset_materializations_for_node("azure_metrics")[0].metadata["api_calls_by_operation"].value
    subscriptions = {r.sub_account_id for r in fleet.of("azure")}
    assert calls["costmanagement.query.usage"] == len(subscriptions)
    assert calls["monitor.metrics.list_at_subscription_scope_post"] == 3 * 10
    con = connect_lake(Lake(data_dir / "lake"))
    per_day = con.execute(
        "select usage_date, count(distinct resource_id) from metrics_hourly "
        "where provider = 'azure' group by 1 order by 1"
    ).fetchall()
    assert per_day == [(date(2026, 1, d), len(fleet.of("azure"))) for d in (4, 5, 6)]
