"""finops_daily: the run it asks for on a given morning."""

from datetime import datetime, timezone

from dagster import AssetKey, build_schedule_context

from finops_pipeline.definitions import defs
from finops_pipeline.defs.schedules import restatement_window

MORNING = datetime(2026, 3, 10, 6, 0, tzinfo=timezone.utc)


def _tick(when=MORNING):
    schedule = defs.resolve_schedule_def("finops_daily")
    context = build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
    return schedule, schedule.evaluate_tick(context)


def test_schedule_runs_at_six_utc_daily():
    schedule, _ = _tick()
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "UTC"


def test_run_covers_yesterday_and_the_restatement_window_with_retries(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    _, result = _tick()
    [request] = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-06"  # 3 days before yesterday
    assert request.tags["dagster/asset_partition_range_end"] == "2026-03-09"  # yesterday
    assert int(request.tags["dagster/max_retries"]) >= 1


def test_restatement_days_is_configurable(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    monkeypatch.setenv("FINOPS_RESTATEMENT_DAYS", "7")
    _, result = _tick()
    [request] = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-02"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-03-09"


def test_run_selects_enabled_clouds_raw_assets_then_their_daily_marts(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    monkeypatch.setenv("AZURE_USAGE_ENABLED", "true")
    _, result = _tick()
    [request] = result.run_requests
    selected = set(request.asset_selection)
    assert {AssetKey("aws_cost"), AssetKey("aws_metrics"), AssetKey("azure_cost"), AssetKey("azure_metrics")} <= selected
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


def test_window_never_starts_before_the_first_partition():
    first, last = restatement_window(datetime(2026, 1, 2, 6, tzinfo=timezone.utc), 3,
                                     datetime(2026, 1, 1).date())
    assert (first.isoformat(), last.isoformat()) == ("2026-01-01", "2026-01-01")


def test_raw_assets_carry_a_36_hour_freshness_policy():
    graph = defs.resolve_asset_graph()
    for key in ("aws_cost", "aws_metrics", "gcp_cost", "gcp_metrics", "azure_cost", "azure_metrics"):
        policy = graph.get(AssetKey(key)).freshness_policy
        assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == 36 * 3600
