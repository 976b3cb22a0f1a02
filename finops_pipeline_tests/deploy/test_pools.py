"""Each cloud API is a concurrency pool, and the runs that call it say so, however they were launched."""

from datetime import datetime, timezone

from dagster import AssetKey, DagsterInstance, build_schedule_context

from finops_pipeline.cli import main
from finops_pipeline.definitions import RESOURCES, defs
from finops_pipeline.defs.pools import POOL_LIMITS, apply_pool_limits


def _run_pools(asset_keys) -> set[str]:
    """The pools Dagster records on a run of these assets (what the queued run coordinator counts)."""
    job = defs.resolve_job_def("finops_daily_job")
    with DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(job_def=job, asset_selection=frozenset(asset_keys))
        return set(run.run_op_concurrency.all_pools) if run.run_op_concurrency else set()


def test_each_raw_asset_is_in_its_apis_pool_and_every_pool_has_a_limit():
    graph = defs.resolve_asset_graph()
    pools = {key.to_user_string(): graph.get(key).pools for key in graph.get_all_asset_keys() if graph.get(key).pools}
    assert pools == {
        "aws_cost": {"aws-ce"},
        "aws_metrics": {"aws-cloudwatch"},
        "gcp_cost": {"gcp-bigquery"},
        "gcp_metrics": {"gcp-monitoring"},
        "azure_cost": {"azure-cost"},
        "azure_metrics": {"azure-monitor"},
    }
    assert POOL_LIMITS == {
        "aws-ce": 1,
        "aws-cloudwatch": 2,
        "gcp-monitoring": 2,
        "gcp-bigquery": 1,
        "azure-cost": 1,
        "azure-monitor": 2,
    }


def test_the_daily_run_counts_against_the_pool_of_every_enabled_clouds_api(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    monkeypatch.setenv("AZURE_USAGE_ENABLED", "true")
    schedule = defs.resolve_schedule_def("finops_daily")
    context = build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 10, 6, tzinfo=timezone.utc),
        repository_def=defs.get_repository_def(),
        resources=RESOURCES,
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert _run_pools(request.asset_selection) == {"aws-ce", "aws-cloudwatch", "azure-cost", "azure-monitor"}


def test_a_backfill_of_one_asset_counts_against_its_pool_only():
    assert _run_pools([AssetKey("aws_cost")]) == {"aws-ce"}
    assert _run_pools([AssetKey("utilization_daily")]) == set()  # marts read the lake, no cloud API


def test_pool_limits_are_written_to_the_instance():
    with DagsterInstance.ephemeral() as instance:
        apply_pool_limits(instance)
        assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()} == POOL_LIMITS


def test_the_pools_command_writes_the_limits_to_the_instance_of_dagster_home(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert main(["pools"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "aws-ce: 1 run(s) at a time",
        "aws-cloudwatch: 2 run(s) at a time",
        "gcp-monitoring: 2 run(s) at a time",
        "gcp-bigquery: 1 run(s) at a time",
        "azure-cost: 1 run(s) at a time",
        "azure-monitor: 2 run(s) at a time",
    ]
    with DagsterInstance.get() as instance:
        assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()} == POOL_LIMITS


def test_the_pools_command_without_dagster_home_says_to_set_it(capsys):
    assert main(["pools"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("finops-pipeline pools: error: The environment variable $DAGSTER_HOME is not set.")
    assert err.count("\n") == 1
