"""`finops-pipeline doctor` for AWS: settings and credentials found, then one cheap call per API."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Iterator

from finops_pipeline.clouds.doctor import FAIL, INFO, OK, Finding, attempt, missing_sdk
from finops_pipeline.settings import Settings


def _aws_credentials() -> Finding:
    import boto3

    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        return Finding(
            FAIL,
            "credentials",
            "none found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached (instance profile, IRSA)",
        )
    source = {
        "env": "environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (values hidden)",
        "shared-credentials-file": f"shared credentials file, profile {os.environ.get('AWS_PROFILE', 'default')}",
        "iam-role": "instance profile (IAM role)",
        "assume-role": "assumed role from a profile",
        "sso": "AWS IAM Identity Center (SSO)",
        "assume-role-with-web-identity": "web identity (EKS IRSA / OIDC)",
    }.get(credentials.method, credentials.method)
    return Finding(OK, "credentials", source)


def _unexplained(exc: Exception) -> None:
    """Every AWS call goes through the adapter, whose CloudApiError says the fix; anything else
    is reported by its type and message."""
    return None


def check_aws(settings: Settings) -> Iterator[Finding]:
    try:
        import boto3  # noqa: F401
    except ImportError:
        yield missing_sdk("boto3")
        return
    from finops_pipeline.clouds.aws.source import AwsSource

    yield Finding(
        INFO,
        "settings",
        f"AWS_REGION={settings.aws_region}, AWS_USAGE_REGIONS="
        f"{','.join(settings.aws_usage_regions)}, AWS_COST_GROUP_BY={','.join(settings.aws_cost_group_by)}, "
        f"AWS_COST_SOURCE={settings.aws_cost_source}"
        + (f", AWS_EXPORT_URI={settings.aws_export_uri}" if settings.aws_export_uri else ""),
    )
    found = _aws_credentials()
    yield found
    if found.status == FAIL:
        return
    adapter = AwsSource(settings)
    identity = attempt("sts:GetCallerIdentity", lambda: f"account {adapter.account_id()}", _unexplained)
    yield identity
    if identity.status == FAIL:
        return
    if settings.aws_role_arns or settings.aws_org_role_name:
        accounts = attempt(
            "metrics accounts",
            lambda: ", ".join(
                a.account_id + (" (own credentials)" if a.role_arn is None else f" via {a.role_arn}")
                for a in adapter.metric_accounts()
            ),
            _unexplained,
        )
        yield accounts
        if accounts.status == FAIL:
            return
    for account in adapter.metric_accounts():
        # Each member account: the role is assumed and its CloudWatch answers, region by region.
        label = "" if account.role_arn is None else f"account {account.account_id}, "
        for region in settings.aws_usage_regions:

            def list_metrics(region=region, account=account, label=label) -> str:
                page = adapter._call("cloudwatch", "ListMetrics", region, account=account, Namespace="AWS/EC2")
                more = " (more pages)" if page.get("NextToken") else ""
                return f"{label}{region}: {len(page.get('Metrics', []))} EC2 metrics on the first page{more}"

            yield attempt("cloudwatch:ListMetrics", list_metrics, _unexplained)

    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)

    def cost_and_usage() -> str:
        response = adapter._call(
            "ce",
            "GetCostAndUsage",
            TimePeriod={"Start": yesterday.isoformat(), "End": (yesterday + timedelta(days=1)).isoformat()},
            Granularity="DAILY",
            Metrics=["UnblendedCost"],
        )
        total = ((response.get("ResultsByTime") or [{}])[0].get("Total") or {}).get("UnblendedCost")
        amount = f" {total['Amount']} {total.get('Unit', '')}".rstrip() if total else ""
        return f"answered for {yesterday}{amount} (this call costs $0.01)"

    yield attempt("ce:GetCostAndUsage", cost_and_usage, _unexplained)

    if settings.aws_cost_source == "export":

        def export_manifest() -> str:
            reader = adapter.export_reader()
            period = yesterday.replace(day=1)
            manifest = reader.manifest(period)
            if manifest is None:
                raise LookupError(f"no manifest at {reader.manifest_location(period)}")
            return f"{manifest.location}: {len(manifest.files)} data file(s) for {period:%Y-%m}"

        def explain_export(exc: Exception) -> str | None:
            if isinstance(exc, LookupError):
                return (
                    f"{exc}: the export has not delivered this period yet (the first delivery takes up to 24 "
                    "hours), or AWS_EXPORT_URI is not the export's root s3://<bucket>/<prefix>/<export-name>"
                )
            return None

        yield attempt("s3:GetObject (export manifest)", export_manifest, explain_export)
