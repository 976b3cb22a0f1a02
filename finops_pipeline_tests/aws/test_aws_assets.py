"""aws_cost and aws_metrics materialized by Dagster into a tmp_path warehouse."""

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pytest
from dagster import DagsterInstance

from finops_pipeline.clouds.aws.assets import aws_cost, aws_metrics
from finops_pipeline.clouds.gcp.assets import gcp_cost
from finops_pipeline.simulator.aws import free_port, serve_aws
from finops_pipeline_tests.runs import materialize, range_tags, retried_at_once, set_environment

END = datetime.now(timezone.utc).date()
START = END - timedelta(days=3)


@pytest.fixture
def aws_served(fleet):
    """The AWS doubles serving [START, END), fresh for each test (some add to moto's state)."""
    with serve_aws(fleet, START, END) as env:
        yield env


def _catalog(data_dir):
    return duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)


def test_three_day_range_lands_in_one_run_with_the_providers_totals(fleet, aws_env, data_dir, caplog):
    caplog.set_level(logging.INFO)
    instance = DagsterInstance.ephemeral()
    result = materialize([aws_cost, aws_metrics], instance=instance, tags=range_tags(START, END))
    assert result.success
    con = _catalog(data_dir)
    per_day = dict(
        con.execute("SELECT usage_date, sum(billed_cost) FROM cost_daily WHERE provider = 'aws' GROUP BY 1").fetchall()
    )
    assert per_day == {
        START + timedelta(days=i): fleet.daily_total("aws", START + timedelta(days=i))["USD"] for i in range(3)
    }
    hours = con.execute(
        "SELECT usage_date, count(DISTINCT hour_start) FROM metrics_hourly GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert hours == [(START + timedelta(days=i), 24) for i in range(3)]

    cost_meta = result.asset_materializations_for_node("aws_cost")[0].metadata
    assert cost_meta["partitions_written"].value == 3
    # One range, one request each (Cost Explorer: $0.01 per request).
    calls = {"GetCostAndUsage": 1, "GetCostAndUsageWithResources": 1, "GetCostForecast": 1}
    assert cost_meta["api_calls_by_operation"].value == calls
    assert cost_meta["api_calls"].value == 3
    assert cost_meta["estimated_api_cost_usd"].value == 0.03
    assert cost_meta["rows"].value == con.execute("SELECT count(*) FROM cost_daily").fetchone()[0]
    assert "dagster/row_count" not in cost_meta  # recorded on each of the 3 partitions: no per-partition count
    assert "preview" in cost_meta and "duration_seconds" in cost_meta
    totals = cost_meta["provider_totals"].value
    assert Decimal(totals[START.isoformat()]["USD"]) == fleet.daily_total("aws", START)["USD"]

    # The fake credentials the doubles handed out never reach logs (at the level operators
    # run: botocore's own DEBUG log prints the key id inside the Authorization header) or metadata.
    texts = [caplog.text] + [str(e) for e in instance.all_logs(result.run_id)]
    for node in ("aws_cost", "aws_metrics"):
        texts += [str(m.metadata) for m in result.asset_materializations_for_node(node)]
    assert not any(aws_env["AWS_SECRET_ACCESS_KEY"] in t for t in texts)
    assert not any(aws_env["AWS_ACCESS_KEY_ID"] in t for t in texts)


def _active_hours(fleet, resource_type: str, metric: str, days: list) -> int:
    """Hours in which the fleet's resources of a type have a nonzero ``metric``."""
    return sum(1 for r in fleet.of("aws", resource_type) for d in days for v in fleet.hourly(r, metric, d).sum if v > 0)


def test_rerun_replaces_partitions_without_duplicates(fleet, aws_env, data_dir):
    instance = DagsterInstance.ephemeral()
    counts = []
    for _ in range(2):
        assert materialize([aws_cost, aws_metrics], instance=instance, tags=range_tags(START, END)).success
        con = _catalog(data_dir)
        counts.append(
            con.execute("SELECT (SELECT count(*) FROM cost_daily), (SELECT count(*) FROM metrics_hourly)").fetchone()
        )
        con.close()
    days = [START + timedelta(days=i) for i in range(3)]
    # Per day: 11 (service, account) rows, the 2 EC2 ones as their 5 instances: 9 + 5.
    cost_rows = 3 * (9 + 5)
    # Metrics published every hour (see test_cli's per-metric counts), S3's daily ones, and the two
    # CloudWatch publishes only with activity: Lambda Duration, ELB HealthyHostCount.
    metric_rows = (
        3678 + _active_hours(fleet, "lambda", "invocations", days) + _active_hours(fleet, "elb", "requests", days)
    )
    assert counts[0] == counts[1] == (cost_rows, metric_rows)


def test_disabled_cloud_is_skipped_visibly(monkeypatch, data_dir):
    monkeypatch.setenv("GCP_USAGE_ENABLED", "false")
    result = materialize([gcp_cost], partition_key=START.isoformat())
    meta = result.asset_materializations_for_node("gcp_cost")[0].metadata
    assert meta["status"].value == "skipped"
    assert "GCP_USAGE_ENABLED" in meta["skipped_reason"].value
    assert not (data_dir / "lake" / "cost_daily").exists()


def test_missing_permission_fails_the_run_once_with_the_fix_and_keeps_old_data(fleet, aws_env, data_dir, monkeypatch):
    from finops_pipeline.simulator.aws import CostExplorerDouble

    instance = DagsterInstance.ephemeral()
    assert materialize([aws_cost], instance=instance, tags=range_tags(START, END)).success
    before = _catalog(data_dir).execute("SELECT count(*), sum(billed_cost) FROM cost_daily").fetchone()

    denied = CostExplorerDouble(fleet, deny_access=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", denied.start())
    try:
        result = materialize([aws_cost], instance=instance, tags=range_tags(START, END), raise_on_error=False)
    finally:
        denied.stop()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "ce:GetCostAndUsage" in str(failure.event_specific_data.error)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(denied.requests) == 1  # not retried: nothing changes until someone grants the action
    assert _catalog(data_dir).execute("SELECT count(*), sum(billed_cost) FROM cost_daily").fetchone() == before


def test_an_unreachable_cost_explorer_is_retried_by_dagster_with_the_endpoint_named(aws_env, data_dir, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries: test_aws_adapter.py
    result = materialize(
        [retried_at_once(aws_cost)],
        instance=DagsterInstance.ephemeral(),
        tags=range_tags(START, END),
        raise_on_error=False,
    )
    assert not result.success
    assert len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]) == 2
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_failure_data.user_failure_data.description == (
        f"aws GetCostAndUsage failed: could not reach {url}/ (EndpointConnectionError): check network access, "
        "proxies and AWS_ENDPOINT_URL_* (still failing after botocore's adaptive retries (AWS_MAX_ATTEMPTS); "
        "the run can be retried)"
    )
    assert not (data_dir / "lake" / "cost_daily").exists()


def test_scheduled_run_refetches_only_the_newest_metrics_day(aws_env, data_dir):
    """Billing restates, metrics do not: the daily schedule's tag keeps landed metric days."""
    from finops_pipeline.clouds.ingest import METRICS_REFETCH_TAG

    instance = DagsterInstance.ephemeral()
    first = materialize([aws_metrics], instance=instance, tags=range_tags(START, END))
    full_calls = first.asset_materializations_for_node("aws_metrics")[0].metadata["api_calls_by_operation"].value
    day_files = {p: p.stat().st_mtime_ns for p in (data_dir / "lake" / "metrics_hourly").rglob("part.parquet")}

    again = materialize(
        [aws_metrics], instance=instance, tags={**range_tags(START, END), METRICS_REFETCH_TAG: "latest"}
    )
    meta = again.asset_materializations_for_node("aws_metrics")[0].metadata
    assert meta["days_kept"].value == 2
    assert list(meta["rows_by_day"].value) == [(END - timedelta(days=1)).isoformat()]
    assert meta["api_calls_by_operation"].value["GetMetricData"] == full_calls["GetMetricData"] // 3
    changed = [p for p, t in day_files.items() if p.stat().st_mtime_ns != t]
    assert [p.parent.name for p in changed] == [f"usage_date={(END - timedelta(days=1)).isoformat()}"]


def test_resource_level_cost_replaces_only_ec2_rows(fleet, aws_env, data_dir):
    """GetCostAndUsageWithResources serves EC2 instances only: every other service keeps its row."""
    assert materialize([aws_cost], instance=DagsterInstance.ephemeral(), tags=range_tags(START, END)).success
    con = _catalog(data_dir)
    by_source = dict(
        con.execute(
            """
        SELECT source, list(DISTINCT service_name ORDER BY service_name) FROM cost_daily
        WHERE usage_date = ? GROUP BY 1""",
            [START],
        ).fetchall()
    )
    assert by_source == {
        "ce:GetCostAndUsage": [
            "AWS Lambda",
            "Amazon DynamoDB",
            "Amazon Relational Database Service",
            "Amazon Simple Storage Service",
            "Elastic Load Balancing",
            "Tax",
        ],
        "ce:GetCostAndUsageWithResources": ["Amazon Elastic Compute Cloud - Compute"],
    }
    ec2 = {r.resource_id for r in fleet.of("aws", "ec2")}
    assert {
        r[0]
        for r in con.execute(
            "SELECT resource_id FROM cost_daily WHERE source = 'ce:GetCostAndUsageWithResources'"
        ).fetchall()
    } == ec2
    per_day = dict(con.execute("SELECT usage_date, sum(billed_cost) FROM cost_daily GROUP BY 1").fetchall())
    assert per_day[START] == fleet.daily_total("aws", START)["USD"]


@pytest.mark.parametrize(
    "double_options, call",
    [
        ({"resource_level_opt_in": False}, "GetCostAndUsageWithResources"),
        ({"forecast_history": False}, "GetCostForecast"),
    ],
)
def test_failed_optional_call_still_lands_the_days_cost(fleet, data_dir, monkeypatch, double_options, call):
    instance = DagsterInstance.ephemeral()
    with serve_aws(fleet, START, END, **double_options) as env:
        set_environment(monkeypatch, env)
        result = materialize([aws_cost], instance=instance, tags=range_tags(START, END))
    assert result.success
    meta = result.asset_materializations_for_node("aws_cost")[0].metadata
    assert list(meta["skipped_optional"].value) == [call]
    assert "DataUnavailableException" in meta["skipped_optional"].value[call]
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any(f"optional {call} skipped" in w for w in warnings)
    per_day = dict(
        _catalog(data_dir).execute("SELECT usage_date, sum(billed_cost) FROM cost_daily GROUP BY 1").fetchall()
    )
    assert per_day == {
        START + timedelta(days=i): fleet.daily_total("aws", START + timedelta(days=i))["USD"] for i in range(3)
    }
    today = datetime.now(timezone.utc).date()
    forecast_days = ((today.replace(day=1) + timedelta(days=62)).replace(day=1) - today).days
    assert meta["forecast_rows"].value == (0 if call == "GetCostForecast" else forecast_days)


def test_rerun_after_the_resource_window_keeps_the_landed_per_resource_cost(fleet, data_dir, monkeypatch):
    """Cost Explorer serves resource-level rows for 14 days only: a later rerun of the same days
    gets service-level rows for the same totals and must not replace the detail with them."""
    instance = DagsterInstance.ephemeral()
    with serve_aws(fleet, START, END) as env:
        set_environment(monkeypatch, env)
        assert materialize([aws_cost], instance=instance, tags=range_tags(START, END)).success
    con = _catalog(data_dir)
    query = (
        "SELECT usage_date, sub_account_id, service_name, resource_id, billed_cost, effective_cost, source "
        "FROM cost_daily ORDER BY ALL"
    )
    landed = con.execute(query).fetchall()
    con.close()
    assert sum(1 for r in landed if r[3] is not None) == 3 * 5  # 5 instances x 3 days
    with serve_aws(fleet, START, END, today=END + timedelta(days=30)) as env:  # a month later
        set_environment(monkeypatch, env)
        result = materialize([aws_cost], instance=instance, tags=range_tags(START, END))
    assert result.success
    kept = result.asset_materializations_for_node("aws_cost")[0].metadata["kept_landed_detail"].value
    assert sorted((g["usage_date"], g["sub_account_id"]) for g in kept) == sorted(
        (str(START + timedelta(days=i)), account) for i in range(3) for account in ("111111111111", "222222222222")
    )
    assert all(g["service_name"] == "Amazon Elastic Compute Cloud - Compute" for g in kept)
    con = _catalog(data_dir)
    again = con.execute(query).fetchall()
    assert again == landed  # every row, the per-resource ones included
    per_day = dict(con.execute("SELECT usage_date, sum(billed_cost) FROM cost_daily GROUP BY 1").fetchall())
    assert per_day == {
        START + timedelta(days=i): fleet.daily_total("aws", START + timedelta(days=i))["USD"] for i in range(3)
    }


def test_resources_configure_a_run_over_the_environment(fleet, aws_env, data_dir, tmp_path):
    """Settings reach the assets as resources: a run can point at another warehouse or turn a
    cloud off without touching the environment (and the UI shows the same resources)."""
    from finops_pipeline.clouds.aws.resource import AwsResource
    from finops_pipeline.definitions import defs
    from finops_pipeline.warehouse.resource import WarehouseResource

    assert {"aws", "gcp", "azure", "warehouse"} <= set(defs.resources)
    elsewhere = tmp_path / "elsewhere"
    one_day = materialize(
        [aws_cost], partition_key=START.isoformat(), resources={"warehouse": WarehouseResource(data_dir=str(elsewhere))}
    )
    assert one_day.success
    landed = _catalog(elsewhere).execute("SELECT count(*) FROM cost_daily").fetchone()[0]
    assert (
        one_day.asset_materializations_for_node("aws_cost")[0].metadata["dagster/row_count"].value == landed == 9 + 5
    )  # one day: see the rerun test
    assert [p.parent.name for p in (elsewhere / "lake" / "cost_daily" / "provider=aws").glob("*/part.parquet")] == [
        f"usage_date={START.isoformat()}"
    ]
    assert not (data_dir / "lake").exists()
    off = materialize([aws_cost], partition_key=START.isoformat(), resources={"aws": AwsResource(usage_enabled=False)})
    meta = off.asset_materializations_for_node("aws_cost")[0].metadata
    assert (meta["status"].value, meta["skipped_reason"].value) == ("skipped", "AWS_USAGE_ENABLED is not true")
