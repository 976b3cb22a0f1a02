"""finops_daily: the run it asks for on a given morning."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
from dagster import AssetKey, build_schedule_context

from finops_pipeline.clouds.restatement import (
    RESTATE_TAG_PREFIX,
    decode_plan,
    encode_plan,
)
from finops_pipeline.definitions import RESOURCES, defs
from finops_pipeline.simulator.gcp import run_gcp_doubles
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline_tests.runs import set_environment

MORNING = datetime(2026, 3, 10, 6, 0, tzinfo=timezone.utc)


def _tick(when=MORNING):
    schedule = defs.resolve_schedule_def("finops_daily")
    context = build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def(), resources=RESOURCES
    )
    return schedule, schedule.evaluate_tick(context)


def test_schedule_runs_at_six_utc_daily():
    schedule, _ = _tick()
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "UTC"


def _plan(request, provider):
    return {d.isoformat(): why for d, why in decode_plan(request.tags[RESTATE_TAG_PREFIX + provider]).items()}


def test_aws_run_covers_the_unsettled_previous_month_until_the_15th_with_retries(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    _, result = _tick()  # 2026-03-10: February may still change
    [request] = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-02-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-03-09"  # yesterday
    assert request.tags["dagster/max_retries"] == "2"  # as docs/operations.md says
    plan = _plan(request, "aws")
    assert len(plan) == 28 + 4
    assert plan["2026-02-14"] == "previous billing period, may change until day 15"
    assert [plan[d] for d in ("2026-03-06", "2026-03-09")] == ["within FINOPS_RESTATEMENT_DAYS=3", "the newest day"]
    _, later = _tick(datetime(2026, 3, 16, 6, tzinfo=timezone.utc))
    assert later.run_requests[0].tags["dagster/asset_partition_range_start"] == "2026-03-12"


def test_aws_landed_days_still_estimated_are_pulled_again(monkeypatch, data_dir):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    lake = Lake(data_dir / "lake")
    for day, estimated in ((date(2026, 3, 1), False), (date(2026, 3, 2), True)):
        lake.write_partition(
            "cost_daily",
            {"provider": "aws", "usage_date": day},
            pa.table(
                {
                    "provider": ["aws"],
                    "usage_date": [day],
                    "billing_account_id": ["111111111111"],
                    "sub_account_id": ["111111111111"],
                    "service_name": ["Amazon EC2"],
                    "charge_category": ["Usage"],
                    "billed_cost": [Decimal("1.00")],
                    "effective_cost": [Decimal("1.00")],
                    "billing_currency": ["USD"],
                    "is_estimated": [estimated],
                    "source": ["ce:GetCostAndUsage"],
                    "ingested_at": [datetime(2026, 3, 3, tzinfo=timezone.utc)],
                }
            ),
        )
    _, result = _tick(datetime(2026, 3, 20, 6, tzinfo=timezone.utc))
    [request] = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-02"
    assert _plan(request, "aws") == {
        "2026-03-02": "landed rows still estimated by Cost Explorer",
        "2026-03-16": "within FINOPS_RESTATEMENT_DAYS=3",
        "2026-03-17": "within FINOPS_RESTATEMENT_DAYS=3",
        "2026-03-18": "within FINOPS_RESTATEMENT_DAYS=3",
        "2026-03-19": "the newest day",
    }


def test_azure_run_covers_the_open_month_and_the_previous_one_until_the_10th(monkeypatch):
    monkeypatch.setenv("AZURE_USAGE_ENABLED", "true")
    _, early = _tick(datetime(2026, 3, 10, 6, tzinfo=timezone.utc))
    _, late = _tick(datetime(2026, 3, 11, 6, tzinfo=timezone.utc))
    assert _plan(early.run_requests[0], "azure")["2026-02-01"] == "previous month, final after day 10"
    assert _plan(late.run_requests[0], "azure")["2026-03-01"] == "open month"
    assert late.run_requests[0].tags["dagster/asset_partition_range_start"] == "2026-03-01"


def test_restatement_settings_are_configurable(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    monkeypatch.setenv("FINOPS_RESTATEMENT_DAYS", "7")
    monkeypatch.setenv("AWS_RESTATEMENT_SETTLE_DAY", "5")
    _, result = _tick()
    [request] = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-02"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-03-09"


def test_plans_survive_their_tag_encoding():
    plan = {date(2026, 2, d): "previous" for d in range(1, 29)} | {date(2026, 3, 9): "newest", date(2026, 3, 5): "x"}
    encoded = encode_plan(plan)
    assert encoded == '{"previous":"2026-02-01..2026-02-28","x":"2026-03-05","newest":"2026-03-09"}'
    assert decode_plan(encoded) == plan


def test_run_selects_enabled_clouds_raw_assets_then_their_daily_marts(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    monkeypatch.setenv("AZURE_USAGE_ENABLED", "true")
    _, result = _tick()
    [request] = result.run_requests
    selected = set(request.asset_selection)
    assert {
        AssetKey("aws_cost"),
        AssetKey("aws_metrics"),
        AssetKey("azure_cost"),
        AssetKey("azure_metrics"),
    } <= selected
    assert not {AssetKey("gcp_cost"), AssetKey("gcp_metrics")} & selected
    graph = defs.resolve_asset_graph()
    downstream = selected - {AssetKey(f"{p}_{k}") for p in ("aws", "azure") for k in ("cost", "metrics")}
    assert AssetKey("utilization_daily") in downstream
    # Only assets partitioned by day can share a run over a range of days.
    raw_partitions = graph.get(AssetKey("aws_cost")).partitions_def
    assert all(graph.get(k).partitions_def == raw_partitions for k in selected)


def test_no_enabled_cloud_skips_with_the_reason():
    _, result = _tick()
    assert not result.run_requests
    assert "AWS_USAGE_ENABLED" in result.skip_message


def test_window_never_starts_before_the_first_partition(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    monkeypatch.setenv("FINOPS_START_DATE", "2026-01-01")
    _, result = _tick(datetime(2026, 1, 2, 6, tzinfo=timezone.utc))
    [request] = result.run_requests
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        "2026-01-01",
        "2026-01-01",
    )


def test_raw_assets_carry_a_36_hour_freshness_policy():
    graph = defs.resolve_asset_graph()
    for key in ("aws_cost", "aws_metrics", "gcp_cost", "gcp_metrics", "azure_cost", "azure_metrics"):
        policy = graph.get(AssetKey(key)).freshness_policy
        assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == 36 * 3600


def test_the_tick_reads_its_settings_from_the_resources():
    """No AWS_USAGE_ENABLED in the environment: the aws resource alone turns AWS on for the tick."""
    from finops_pipeline.clouds.aws.resource import AwsResource

    schedule = defs.resolve_schedule_def("finops_daily")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 20, 6, tzinfo=timezone.utc),
        repository_def=defs.get_repository_def(),
        resources={**RESOURCES, "aws": AwsResource(usage_enabled=True, restatement_settle_day=1)},
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.tags["finops/clouds"] == "aws"
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-16"


def _landed(data_dir, provider: str, day: date) -> None:
    """One landed cost_daily partition of ``provider`` (what a previous run wrote)."""
    Lake(data_dir / "lake").write_partition(
        "cost_daily",
        {"provider": provider, "usage_date": day},
        pa.table(
            {
                "provider": [provider],
                "usage_date": [day],
                "billing_account_id": ["01A2B3-C4D5E6-F7A8B9"],
                "sub_account_id": ["shop-prod"],
                "service_name": ["Compute Engine"],
                "charge_category": ["Usage"],
                "billed_cost": [Decimal("1.00")],
                "effective_cost": [Decimal("1.00")],
                "billing_currency": ["USD"],
                "is_estimated": [False],
                "source": ["bigquery:billing_export"],
                "ingested_at": [datetime(2026, 3, 3, tzinfo=timezone.utc)],
            }
        ),
    )


FIXED_WINDOW = {
    "2026-03-06": "within FINOPS_RESTATEMENT_DAYS=3",
    "2026-03-07": "within FINOPS_RESTATEMENT_DAYS=3",
    "2026-03-08": "within FINOPS_RESTATEMENT_DAYS=3",
    "2026-03-09": "the newest day",
}


def test_a_failed_gcp_export_check_still_asks_for_the_fixed_window_and_says_why(fleet, monkeypatch, data_dir):
    _landed(data_dir, "gcp", date(2026, 3, 2))
    with run_gcp_doubles(fleet, date(2026, 3, 1), date(2026, 3, 10)) as doubles:
        # A dataset the billing project does not have (renamed, or a typo): BigQuery's notFound.
        set_environment(monkeypatch, {**doubles.environment(), "GCP_BILLING_DATASET": "billing_old"})
        _, result = _tick()
    [request] = result.run_requests
    assert _plan(request, "gcp") == FIXED_WINDOW
    assert request.tags["finops/restate_notes"].startswith(
        "gcp export check failed, only the fixed window is re-pulled: gcp bigquery billing export query failed: "
        "`shop-prod.billing_old.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9` was not found: enable "
        "Billing -> Billing export -> BigQuery export (detailed usage cost) into dataset billing_old of project "
        "shop-prod, or point GCP_BILLING_PROJECT_ID / GCP_BILLING_DATASET / GCP_BILLING_TABLE at the export."
    )


def test_a_failed_export_manifest_check_still_asks_for_the_fixed_window_and_says_why(aws_env, monkeypatch):
    # An export root in a bucket that does not exist (S3's NoSuchBucket).
    monkeypatch.setenv("AWS_COST_SOURCE", "export")
    monkeypatch.setenv("AWS_EXPORT_URI", "s3://finops-no-such-bucket/exports/focus")
    _, result = _tick()
    [request] = result.run_requests
    assert _plan(request, "aws") == FIXED_WINDOW
    notes = request.tags["finops/restate_notes"]
    # The period looked for is the tick's month (2026-03), whatever the wall clock says.
    assert notes == (
        "aws export manifest check failed, only the fixed window is re-pulled: aws GetObject failed: NoSuchBucket: "
        "bucket 'finops-no-such-bucket' does not exist (looked for s3://finops-no-such-bucket/exports/focus/metadata/"
        "BILLING_PERIOD=2026-03/focus-Manifest.json); check AWS_EXPORT_URI against the export's S3 destination"
    )


def test_a_tick_before_the_start_date_skips_naming_it(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    monkeypatch.setenv("FINOPS_START_DATE", "2026-03-10")
    _, result = _tick()
    assert not result.run_requests
    assert result.skip_message == "yesterday (2026-03-09) is before FINOPS_START_DATE (2026-03-10)"
