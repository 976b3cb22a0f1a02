"""`finops-pipeline doctor` for AWS against the doubles: each failure says what to fix."""

import sys
from datetime import datetime, timedelta, timezone

import pytest

from finops_pipeline.clouds.aws.doctor import check_aws
from finops_pipeline.settings import get_settings
from finops_pipeline.simulator.aws import MEMBER_ROLE, free_port, serve_aws
from finops_pipeline.simulator.fleet import AWS_ACCOUNTS, AWS_PAYER

END = datetime.now(timezone.utc).date()
MEMBER = next(a for a in AWS_ACCOUNTS if a != AWS_PAYER)


@pytest.fixture
def aws_served(fleet):
    with serve_aws(fleet, END - timedelta(days=1), END) as env:
        yield env


def _lines(findings) -> list[str]:
    return [f.line() for f in findings]


def test_doctor_names_an_unreachable_endpoint_and_goes_on(aws_env, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    lines = _lines(check_aws(get_settings()))
    unreachable = (
        f"aws ListMetrics failed: could not reach {url}/ (EndpointConnectionError): check network access, proxies "
        "and AWS_ENDPOINT_URL_* (still failing after botocore's adaptive retries (AWS_MAX_ATTEMPTS); the run can "
        "be retried)"
    )
    assert f"  FAIL cloudwatch:ListMetrics: {unreachable}" in lines
    assert (
        f"  FAIL cloudwatch:ListMetrics: aws ListMetrics failed: in account {MEMBER}: {unreachable.split(': ', 1)[1]}"
        in lines
    )
    assert lines[2] == f"  ok   sts:GetCallerIdentity: account {AWS_PAYER}"
    assert lines[3] == (
        f"  ok   metrics accounts: {AWS_PAYER} (own credentials), {MEMBER} via arn:aws:iam::{MEMBER}:role/{MEMBER_ROLE}"
    )
    assert lines[-1].startswith("  ok   ce:GetCostAndUsage: answered for ")


def test_doctor_stops_at_an_identity_sts_refuses(aws_env, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    lines = _lines(check_aws(get_settings()))
    assert lines[-1] == (
        f"  FAIL sts:GetCallerIdentity: aws GetCallerIdentity failed: could not reach {url}/ (EndpointConnectionError): "
        "check network access, proxies and AWS_ENDPOINT_URL_* (still failing after botocore's adaptive retries "
        "(AWS_MAX_ATTEMPTS); the run can be retried)"
    )
    assert len(lines) == 3  # settings, credentials, identity: nothing is called without one


def test_doctor_says_an_export_has_not_delivered_its_period(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_COST_SOURCE", "export")
    monkeypatch.setenv("AWS_EXPORT_URI", "s3://finops-billing-exports/exports/never-delivered")
    period = (END - timedelta(days=1)).replace(day=1)
    lines = _lines(check_aws(get_settings()))
    assert lines[-1] == (
        "  FAIL s3:GetObject (export manifest): no manifest at s3://finops-billing-exports/exports/never-delivered/"
        f"metadata/BILLING_PERIOD={period:%Y-%m}/never-delivered-Manifest.json: the export has not delivered this "
        "period yet (the first delivery takes up to 24 hours), or AWS_EXPORT_URI is not the export's root "
        "s3://<bucket>/<prefix>/<export-name>"
    )


def test_doctor_without_boto3_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # what an absent package raises
    assert _lines(check_aws(get_settings({"AWS_USAGE_ENABLED": "true"}))) == [
        "  FAIL SDK: boto3 is not installed: pip install -e . (or pip install boto3)"
    ]
