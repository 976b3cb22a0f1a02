"""Dagster retries a raw asset's step only when a later attempt can succeed unchanged.

Each test runs the asset's own body under its own retry count (``retried_at_once`` drops only
the 60 s delay) against a double that keeps failing the same way, and counts the attempts.
"""

from datetime import timedelta

import grpc
import pytest
from dagster import DagsterEventType, DagsterInstance

from finops_pipeline.clouds.aws.assets import aws_cost
from finops_pipeline.clouds.azure.assets import azure_cost
from finops_pipeline.clouds.gcp.assets import gcp_cost, gcp_metrics
from finops_pipeline.clouds.ingest import RAW_RETRY_POLICY
from finops_pipeline.simulator.aws import CostExplorerDouble, free_port
from finops_pipeline.simulator.azure import AzureDouble
from finops_pipeline.simulator.fleet import GCP_PROJECTS
from finops_pipeline.simulator.gcp import run_gcp_doubles
from finops_pipeline_tests.runs import materialize, retried_at_once, set_environment

from .conftest import END, START, range_tags

ONE_DAY = range_tags(END - timedelta(days=1), END)


def _run(asset, tags=ONE_DAY):
    result = materialize(
        [retried_at_once(asset)], instance=DagsterInstance.ephemeral(), tags=tags, raise_on_error=False
    )
    assert not result.success
    events = result.all_events
    retries = sum(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in events)
    [failure] = [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data
    return retries, data.user_failure_data.description if data.user_failure_data else data.error.message


def test_the_retry_policy_allows_two_more_attempts():
    assert RAW_RETRY_POLICY.max_retries == 2  # the counts below are 1 + 2 attempts


def test_cost_explorer_still_throttling_after_the_sdk_retries_is_retried_by_dagster(fleet, aws_env, monkeypatch):
    throttled = CostExplorerDouble(fleet, throttle_first=1_000_000)  # keeps answering LimitExceededException
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", throttled.start())
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # the SDK's own retries: test_aws_adapter.py
    try:
        retries, description = _run(aws_cost)
    finally:
        throttled.stop()
    assert retries == 2
    assert len(throttled.requests) == 3  # one call per attempt
    assert description.startswith("aws GetCostAndUsage")
    assert "LimitExceededException" in description and "the run can be retried" in description


def test_cost_explorer_access_denied_fails_once(fleet, aws_env, monkeypatch):
    denied = CostExplorerDouble(fleet, deny_access=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", denied.start())
    try:
        retries, description = _run(aws_cost)
    finally:
        denied.stop()
    assert retries == 0
    assert len(denied.requests) == 1
    assert "ce:GetCostAndUsage" in description


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (grpc.StatusCode.NOT_FOUND, f"project {GCP_PROJECTS[0]} was not found: check GCP_MONITORING_PROJECTS"),
        (grpc.StatusCode.UNAUTHENTICATED, "the credentials were rejected: set GOOGLE_APPLICATION_CREDENTIALS"),
        (grpc.StatusCode.PERMISSION_DENIED, f"grant roles/monitoring.viewer on project {GCP_PROJECTS[0]}"),
    ],
)
def test_cloud_monitoring_errors_that_need_a_fix_fail_once(fleet, monkeypatch, code, says):
    with run_gcp_doubles(fleet, START, END) as doubles:
        set_environment(monkeypatch, doubles.environment())
        monkeypatch.setenv("FINOPS_METRICS_CONCURRENCY", "1")
        doubles.monitoring.fail_next = [code]  # the next attempt would succeed: a retry would show
        retries, description = _run(gcp_metrics)
        assert len(doubles.monitoring.requests) == 1
    assert retries == 0
    assert description.startswith("gcp monitoring ListTimeSeries failed: ")
    assert says in description


def test_cloud_monitoring_unavailable_after_our_retries_is_retried_by_dagster(fleet, monkeypatch):
    with run_gcp_doubles(fleet, START, END) as doubles:
        set_environment(monkeypatch, doubles.environment())
        monkeypatch.setenv("FINOPS_METRICS_CONCURRENCY", "1")
        monkeypatch.setenv("GCP_RETRY_DEADLINE_SECONDS", "0")  # our retry loop gives up at the first error
        doubles.monitoring.fail_next = [grpc.StatusCode.UNAVAILABLE] * 3  # one per attempt of the run
        retries, description = _run(gcp_metrics)
        assert len(doubles.monitoring.requests) == 3
    assert retries == 2
    assert description.startswith("gcp monitoring ListTimeSeries failed: ")
    assert "kept failing after retries" in description


def test_bigquery_failing_every_time_is_retried_by_dagster(fleet, monkeypatch):
    with run_gcp_doubles(fleet, START, END) as doubles:
        set_environment(monkeypatch, doubles.environment())
        monkeypatch.setenv("GCP_RETRY_DEADLINE_SECONDS", "0.5")  # both of the BigQuery client's retry layers
        doubles.bigquery.fail_next = [503] * 100_000
        retries, description = _run(gcp_cost)
    assert retries == 2
    assert description.startswith(
        "gcp bigquery billing export query failed: BigQuery kept failing for 0.5 s of retries "
        "(GCP_RETRY_DEADLINE_SECONDS=0.5): POST "
    )
    assert description.endswith("simulated backend error")


def _always(status: int, body: dict, headers: dict[str, str]):
    calls = []

    def gate(method: str, path: str):
        calls.append((method, path))
        return status, body, headers

    return gate, calls


def test_azure_cost_management_still_throttling_is_retried_by_dagster(fleet, monkeypatch):
    # Cost Management's 429: "Too many requests" with its qpu-retry-after header (Microsoft Learn,
    # "Troubleshoot common Cost Management errors" / "Cost Management API throttling").
    gate, calls = _always(
        429,
        {"error": {"code": "429", "message": "Too many requests. Please retry."}},
        {"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "1"},
    )
    with AzureDouble(fleet, START, END, gate=gate) as double:
        set_environment(monkeypatch, double.environment)
        monkeypatch.setenv("AZURE_MAX_RETRY_WAIT_SECONDS", "0")  # the adapter's waits, not slept
        monkeypatch.setenv("FINOPS_PACING_ENABLED", "false")  # nor the pacer's hold of each retry-after (10 s)
        retries, description = _run(azure_cost)
    assert retries == 2
    assert len(calls) == 3 * 6  # per attempt: the first call and MAX_THROTTLE_RETRIES = 5 more
    assert "still throttled (HTTP 429)" in description and "after 5 retries" in description


def test_azure_resource_manager_out_of_reach_is_retried_by_dagster(fleet, monkeypatch):
    with AzureDouble(fleet, START, END) as double:
        set_environment(monkeypatch, double.environment)
        # Tokens come from the double; ARM is a port nobody listens on.
        monkeypatch.setenv("AZURE_RESOURCE_MANAGER_ENDPOINT", f"https://127.0.0.1:{free_port()}")
        monkeypatch.setenv("AZURE_MAX_RETRY_WAIT_SECONDS", "0")
        monkeypatch.setenv("FINOPS_PACING_ENABLED", "false")  # no answer, no quota: the pacer's probes wait 10 s
        retries, description = _run(azure_cost)
    assert retries == 2
    assert "could not reach Azure Resource Manager (ServiceRequestError) after 5 attempts" in description


def test_a_settings_error_fails_once(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "many")
    retries, description = _run(aws_cost)
    assert retries == 0
    assert "AWS_MAX_ATTEMPTS" in description
