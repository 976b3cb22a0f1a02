"""Failures that a retry cannot fix fail the run once, with the fix, and spend no paid call twice."""

from datetime import timedelta

from dagster import DagsterEventType, DagsterInstance

from finops_pipeline.clouds.aws.assets import aws_cost
from finops_pipeline.clouds.gcp.assets import gcp_metrics
from finops_pipeline.warehouse.lake import PART_FILE, Lake
from finops_pipeline_tests.runs import materialize

from .conftest import END, START, range_tags


def _retries_and_failure(result) -> tuple[int, str]:
    events = result.all_events
    retries = sum(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in events)
    [failure] = [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data
    description = data.user_failure_data.description if data.user_failure_data else data.error.message
    return retries, description


def test_a_quote_in_gcp_monitoring_projects_fails_once_naming_the_variable(monkeypatch):
    monkeypatch.setenv("GCP_USAGE_ENABLED", "true")
    monkeypatch.setenv("GCP_PROJECT_ID", "shop-prod")
    monkeypatch.setenv("GCP_MONITORING_PROJECTS", 'shop"dev,shop-prod')
    # Endpoints that would answer nothing: the run must stop before calling them.
    monkeypatch.setenv("GCP_MONITORING_ENDPOINT", "127.0.0.1:9")
    monkeypatch.setenv("GCP_BIGQUERY_ENDPOINT", "http://127.0.0.1:9")
    result = materialize([gcp_metrics], instance=DagsterInstance.ephemeral(), tags=range_tags(), raise_on_error=False)
    assert not result.success
    retries, description = _retries_and_failure(result)
    assert retries == 0
    assert description.startswith(
        "GCP_MONITORING_PROJECTS='shop\"dev,shop-prod' is invalid: expected a comma list of Google Cloud project ids"
    )


def test_a_corrupt_lake_file_met_after_the_writes_fails_once_naming_the_file_and_the_fix(aws_env, data_dir):
    lake = Lake(data_dir / "lake")
    corrupt = lake.partition_dir("cost_daily", {"provider": "aws", "usage_date": START - timedelta(days=5)})
    corrupt.mkdir(parents=True)
    (corrupt / PART_FILE).write_bytes(b"PAR1 truncated by a full disk")
    result = materialize([aws_cost], instance=DagsterInstance.ephemeral(), tags=range_tags(), raise_on_error=False)
    assert not result.success
    retries, description = _retries_and_failure(result)
    assert retries == 0  # the paid Cost Explorer calls are not made again
    assert f"{corrupt / PART_FILE}: re-materialize partition {START - timedelta(days=5)} of aws_cost" in description
    assert "3 partition(s) were written" in description
    landed = {p["usage_date"] for p in lake.partitions("cost_daily")}
    assert {(START + timedelta(days=i)).isoformat() for i in range((END - START).days)} <= landed
