"""`finops-pipeline doctor`: is each cloud configured, and does one cheap call per API work?

For every cloud: enabled or not and why, which settings and credentials were found
(names and non-secret identifiers only: a secret's value is never printed), then one
call per API with the exact fix when it fails. The calls cost at most one Cost Explorer
request ($0.01); the BigQuery query is a dry run (free), the others are free reads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator

from finops_pipeline.adapters.usage.base import CloudApiError
from finops_pipeline.settings import Settings

OK, FAIL, SKIP, INFO = "ok", "FAIL", "skip", "info"


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    status: str  # ok | FAIL | skip | info
    what: str
    detail: str = ""

    def line(self) -> str:
        return f"  {self.status:<5}{self.what}" + (f": {self.detail}" if self.detail else "")


def _attempt(what: str, call: Callable[[], str], explain: Callable[[Exception], str | None]) -> Finding:
    """Run one API check; a failure becomes a FAIL line with the fix, never a traceback."""
    try:
        return Finding(OK, what, call())
    except CloudApiError as exc:
        return Finding(FAIL, what, str(exc))
    except Exception as exc:  # noqa: BLE001 - every failure is reported, with the fix where known
        reason = explain(exc)
        if reason is None:
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        return Finding(FAIL, what, reason)


def _missing_sdk(package: str) -> Finding:
    return Finding(FAIL, "SDK", f"{package} is not installed: pip install -e . (or pip install {package})")


# -- AWS ---------------------------------------------------------------------------------

def _aws_credentials() -> Finding:
    import boto3

    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        return Finding(FAIL, "credentials", "none found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached (instance profile, IRSA)")
    source = {"env": "environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (values hidden)",
              "shared-credentials-file": f"shared credentials file, profile {os.environ.get('AWS_PROFILE', 'default')}",
              "iam-role": "instance profile (IAM role)", "assume-role": "assumed role from a profile",
              "sso": "AWS IAM Identity Center (SSO)",
              "assume-role-with-web-identity": "web identity (EKS IRSA / OIDC)"}.get(credentials.method,
                                                                                     credentials.method)
    return Finding(OK, "credentials", source)


def _aws_explain(operation: str) -> Callable[[Exception], str | None]:
    def explain(exc: Exception) -> str | None:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        from finops_pipeline.adapters.usage.aws import _client_error

        if isinstance(exc, NoCredentialsError):
            return ("no credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                    "or attach an IAM role")
        if isinstance(exc, EndpointConnectionError):
            return f"cannot reach {exc.kwargs.get('endpoint_url')}: check network access, proxies and AWS_ENDPOINT_URL_*"
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
                return "the session credentials expired: refresh them (aws sso login, or new STS credentials)"
            if code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"):
                return (f"{code}: the access key is not valid for this account/partition: check "
                        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
            return str(_client_error(exc, operation)).split("failed: ", 1)[-1]
        return None

    return explain


def check_aws(settings: Settings) -> Iterator[Finding]:
    try:
        import boto3  # noqa: F401
    except ImportError:
        yield _missing_sdk("boto3")
        return
    from finops_pipeline.adapters.usage.aws import AwsUsageAdapter

    yield Finding(INFO, "settings", f"AWS_REGION={settings.aws_region}, AWS_USAGE_REGIONS="
                  f"{','.join(settings.aws_usage_regions)}, AWS_COST_GROUP_BY={','.join(settings.aws_cost_group_by)}")
    found = _aws_credentials()
    yield found
    if found.status == FAIL:
        return
    adapter = AwsUsageAdapter(settings)
    identity = _attempt("sts:GetCallerIdentity", lambda: f"account {adapter.account_id()}",
                        _aws_explain("GetCallerIdentity"))
    yield identity
    if identity.status == FAIL:
        return
    if settings.aws_role_arns or settings.aws_org_role_name:
        accounts = _attempt("metrics accounts", lambda: ", ".join(
            a.account_id + (" (own credentials)" if a.role_arn is None else f" via {a.role_arn}")
            for a in adapter.metric_accounts()), _aws_explain("ListAccounts"))
        yield accounts
        if accounts.status == FAIL:
            return
    for account in adapter.metric_accounts():
        # Each member account: the role is assumed and its CloudWatch answers, region by region.
        label = "" if account.role_arn is None else f"account {account.account_id}, "
        for region in settings.aws_usage_regions:
            def list_metrics(region=region, account=account) -> str:
                page = adapter.client("cloudwatch", region, account).list_metrics(Namespace="AWS/EC2")
                more = " (more pages)" if page.get("NextToken") else ""
                return f"{label}{region}: {len(page.get('Metrics', []))} EC2 metrics on the first page{more}"  # noqa: B023
            yield _attempt("cloudwatch:ListMetrics", list_metrics, _aws_explain("ListMetrics"))

    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)

    def cost_and_usage() -> str:
        response = adapter.client("ce").get_cost_and_usage(
            TimePeriod={"Start": yesterday.isoformat(), "End": (yesterday + timedelta(days=1)).isoformat()},
            Granularity="DAILY", Metrics=["UnblendedCost"])
        total = ((response.get("ResultsByTime") or [{}])[0].get("Total") or {}).get("UnblendedCost")
        amount = f" {total['Amount']} {total.get('Unit', '')}".rstrip() if total else ""
        return f"answered for {yesterday}{amount} (this call costs $0.01)"
    yield _attempt("ce:GetCostAndUsage", cost_and_usage, _aws_explain("GetCostAndUsage"))


# -- GCP ---------------------------------------------------------------------------------

def _gcp_credentials(settings: Settings) -> Finding:
    path = settings.google_application_credentials
    if not path and (settings.gcp_monitoring_endpoint or settings.gcp_bigquery_endpoint):
        return Finding(INFO, "credentials", "not needed: GCP_*_ENDPOINT points at a non-Google endpoint")
    if not path:
        return Finding(INFO, "credentials", "GOOGLE_APPLICATION_CREDENTIALS not set: Application Default "
                       "Credentials (gcloud auth application-default login, or the metadata server) are used")
    file = Path(path)
    if not file.is_file():
        return Finding(FAIL, "credentials", f"GOOGLE_APPLICATION_CREDENTIALS={path} does not exist: point it "
                       "at a service-account key file, or unset it to use Application Default Credentials")
    try:
        info = json.loads(file.read_text())
    except (OSError, ValueError):
        return Finding(FAIL, "credentials", f"GOOGLE_APPLICATION_CREDENTIALS={path} is not a JSON key file: "
                       "download the key again (IAM -> Service accounts -> Keys)")
    kind = info.get("type", "unknown type")
    who = info.get("client_email") or info.get("audience") or ""
    return Finding(OK, "credentials", f"{path} ({kind}{', ' + who if who else ''}; key material hidden)")


def _gcp_explain(exc: Exception) -> str | None:
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.PermissionDenied):
        return f"permission denied: grant roles/monitoring.viewer on the project ({exc.message})"
    if isinstance(exc, gexc.Unauthenticated):
        return ("the credentials were rejected: set GOOGLE_APPLICATION_CREDENTIALS or run "
                "`gcloud auth application-default login`")
    if isinstance(exc, gexc.NotFound):
        return f"not found: check the project id and that the API is enabled ({exc.message})"
    return None


def check_gcp(settings: Settings) -> Iterator[Finding]:
    try:
        from google.cloud import bigquery, monitoring_v3  # noqa: F401
    except ImportError:
        yield _missing_sdk("google-cloud-monitoring google-cloud-bigquery")
        return
    try:
        from finops_pipeline.adapters.usage.gcp import GcpUsageAdapter
    except ImportError:
        yield Finding(SKIP, "API checks", "the GCP adapter is not installed in this build")
        return
    yield Finding(INFO, "settings", f"GCP_MONITORING_PROJECTS={','.join(settings.gcp_monitoring_projects) or '-'}, "
                  f"GCP_BILLING_PROJECT_ID={settings.gcp_billing_project_id or settings.gcp_project_id or '-'}, "
                  f"GCP_BILLING_DATASET={settings.gcp_billing_dataset or '-'}")
    found = _gcp_credentials(settings)
    yield found
    if found.status == FAIL:
        return
    try:
        adapter = GcpUsageAdapter.from_settings(settings)
    except CloudApiError as exc:
        yield Finding(FAIL, "clients", str(exc))
        return
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    for project in adapter.projects or ("",):
        def list_time_series(project=project) -> str:
            if not project:
                raise CloudApiError("gcp", "configuration", "no project: set GCP_MONITORING_PROJECTS or GCP_PROJECT_ID")
            from google.cloud import monitoring_v3

            interval = monitoring_v3.TimeInterval(end_time=now, start_time=now - timedelta(hours=1))
            pager = adapter.monitoring.list_time_series(request={
                "name": f"projects/{project}", "interval": interval, "page_size": 1,
                "filter": 'metric.type = "compute.googleapis.com/instance/cpu/utilization"',
                "aggregation": {"alignment_period": {"seconds": 3600},
                                "per_series_aligner": monitoring_v3.Aggregation.Aligner.ALIGN_MEAN},
                "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.HEADERS})
            first = next(iter(pager.pages), None)
            series = len(first.time_series) if first is not None else 0
            return f"project {project}: {series} series on the first page"
        yield _attempt("monitoring ListTimeSeries", list_time_series, _gcp_explain)

    def billing_dry_run() -> str:
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        table = adapter.billing_table()
        yesterday = now.date() - timedelta(days=1)
        p_start, p_end = adapter.partition_window(yesterday, yesterday + timedelta(days=1))
        config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False, query_parameters=[
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", datetime(yesterday.year, yesterday.month,
                                                                          yesterday.day, tzinfo=timezone.utc)),
            bigquery.ScalarQueryParameter("end", "TIMESTAMP", now.replace(hour=0)),
            bigquery.ScalarQueryParameter("partition_start", "TIMESTAMP", p_start),
            bigquery.ScalarQueryParameter("partition_end", "TIMESTAMP", p_end)])
        try:
            job = adapter.bigquery.query(adapter.totals_sql(table), job_config=config)
        except gexc.GoogleAPICallError as exc:
            raise adapter._bigquery_error(exc, table) from None
        scanned = job.total_bytes_processed or 0
        return f"{table} readable; a day's totals query would scan {scanned:,} bytes (dry run, free)"
    yield _attempt("bigquery dry-run of the billing export", billing_dry_run, _gcp_explain)


# -- Azure -------------------------------------------------------------------------------

def _azure_credentials(settings: Settings) -> Finding:
    env = os.environ
    if env.get("AZURE_CLIENT_ID") and env.get("AZURE_CLIENT_SECRET"):
        source = f"service principal AZURE_CLIENT_ID={env['AZURE_CLIENT_ID']} with AZURE_CLIENT_SECRET (value hidden)"
    elif env.get("AZURE_CLIENT_ID") and env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        source = f"service principal AZURE_CLIENT_ID={env['AZURE_CLIENT_ID']} with a certificate"
    elif env.get("AZURE_FEDERATED_TOKEN_FILE"):
        source = "workload identity (AZURE_FEDERATED_TOKEN_FILE)"
    else:
        source = "DefaultAzureCredential chain (managed identity, Azure CLI `az login`, ...)"
    tenant = f"; AZURE_TENANT_ID={settings.azure_tenant_id}" if settings.azure_tenant_id else ""
    return Finding(INFO, "credentials", source + tenant)


def check_azure(settings: Settings) -> Iterator[Finding]:
    try:
        import azure.identity  # noqa: F401
        import azure.mgmt.costmanagement  # noqa: F401
    except ImportError:
        yield _missing_sdk("azure-identity azure-mgmt-costmanagement azure-mgmt-monitor")
        return
    from finops_pipeline.adapters.usage.azure import AzureUsageAdapter

    yield Finding(INFO, "settings", f"AZURE_SUBSCRIPTION_IDS={','.join(settings.azure_subscription_ids) or '-'}")
    yield _azure_credentials(settings)
    try:
        adapter = AzureUsageAdapter.from_settings(settings)
    except CloudApiError as exc:
        yield Finding(FAIL, "clients", str(exc))
        return
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    for sub in settings.azure_subscription_ids:
        def read_subscription(sub=sub) -> str:
            from azure.core.rest import HttpRequest

            def send(hook):
                response = adapter.cost_client.send_request(
                    HttpRequest("GET", f"/subscriptions/{sub}?api-version=2022-12-01"), raw_response_hook=hook)
                response.raise_for_status()
                return response.json()
            body = adapter._call("arm.subscriptions.get", f"/subscriptions/{sub}", 0, "Reader", send)
            return f"{sub}: {body.get('displayName', '?')} ({body.get('state', '?')})"
        yield _attempt("ARM subscription read", read_subscription, lambda exc: None)

        def cost_query(sub=sub) -> str:
            rows = list(adapter.query_cost(sub, yesterday, yesterday + timedelta(days=1), "ActualCost", ["ChargeType"]))
            return f"{sub}: {len(rows)} charge type row(s) for {yesterday} (Cost Management queries are free)"
        yield _attempt("Cost Management query", cost_query, lambda exc: None)


# -- the report --------------------------------------------------------------------------

CHECKS = {"aws": check_aws, "gcp": check_gcp, "azure": check_azure}


def run_doctor(settings: Settings, out=print) -> int:
    """Print the report; returns the number of failed checks for enabled clouds."""
    failures = 0
    if not any(settings.provider_enabled(p) for p in CHECKS):
        out("no cloud is enabled: set AWS_USAGE_ENABLED, GCP_USAGE_ENABLED or AZURE_USAGE_ENABLED to true "
            "(and USAGE_INTEGRATION_ENABLED, default true)")
        failures += 1
    out(f"warehouse: {settings.data_dir.resolve()} "
        f"(catalog {'present' if settings.catalog_path.exists() else 'not created yet'})")
    for provider, check in CHECKS.items():
        reason = settings.disabled_reason(provider)
        if reason:
            out(f"{provider}: disabled ({reason})")
            continue
        out(f"{provider}: enabled")
        for finding in check(settings):
            out(finding.line())
            failures += finding.status == FAIL
    out("all checks passed" if not failures else f"{failures} problem(s) found; fixes above")
    return failures
