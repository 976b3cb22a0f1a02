"""`finops-pipeline doctor` for GCP: settings and credentials found, then one cheap call per API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.clouds.doctor import (
    FAIL,
    INFO,
    OK,
    Finding,
    attempt,
    missing_sdk,
)
from finops_pipeline.settings import Settings, SettingsError


def _gcp_credentials(settings: Settings) -> Finding:
    path = settings.google_application_credentials
    if not path and (settings.gcp_monitoring_endpoint or settings.gcp_bigquery_endpoint):
        return Finding(INFO, "credentials", "not needed: GCP_*_ENDPOINT points at a non-Google endpoint")
    if not path:
        return Finding(
            INFO,
            "credentials",
            "GOOGLE_APPLICATION_CREDENTIALS not set: Application Default "
            "Credentials (gcloud auth application-default login, or the metadata server) are used",
        )
    file = Path(path)
    if not file.is_file():
        return Finding(
            FAIL,
            "credentials",
            f"GOOGLE_APPLICATION_CREDENTIALS={path} does not exist: point it "
            "at a service-account key file, or unset it to use Application Default Credentials",
        )
    try:
        info = json.loads(file.read_text())
    except (OSError, ValueError):
        return Finding(
            FAIL,
            "credentials",
            f"GOOGLE_APPLICATION_CREDENTIALS={path} is not a JSON key file: "
            "download the key again (IAM -> Service accounts -> Keys)",
        )
    kind = info.get("type", "unknown type")
    who = info.get("client_email") or info.get("audience") or ""
    return Finding(OK, "credentials", f"{path} ({kind}{', ' + who if who else ''}; key material hidden)")


def _gcp_explain(exc: Exception) -> str | None:
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.PermissionDenied):
        return f"permission denied: grant roles/monitoring.viewer on the project ({exc.message})"
    if isinstance(exc, gexc.Unauthenticated):
        return (
            "the credentials were rejected: set GOOGLE_APPLICATION_CREDENTIALS or run "
            "`gcloud auth application-default login`"
        )
    if isinstance(exc, gexc.NotFound):
        return f"not found: check the project id and that the API is enabled ({exc.message})"
    return None


def check_gcp(settings: Settings) -> Iterator[Finding]:
    try:
        from google.cloud import bigquery, monitoring_v3  # noqa: F401
    except ImportError:
        yield missing_sdk("google-cloud-monitoring google-cloud-bigquery")
        return
    from finops_pipeline.clouds.gcp.source import GcpSource

    yield Finding(
        INFO,
        "settings",
        f"GCP_MONITORING_PROJECTS={','.join(settings.gcp_monitoring_projects) or '-'}, "
        f"GCP_BILLING_PROJECT_ID={settings.gcp_billing_project_id or settings.gcp_project_id or '-'}, "
        f"GCP_BILLING_DATASET={settings.gcp_billing_dataset or '-'}",
    )
    found = _gcp_credentials(settings)
    yield found
    if found.status == FAIL:
        return
    try:
        adapter = GcpSource.from_settings(settings)
    except (CloudApiError, SettingsError) as exc:
        yield Finding(FAIL, "clients", str(exc))
        return
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    for project in adapter.projects or ("",):

        def list_time_series(project=project) -> str:
            if not project:
                raise CloudApiError("gcp", "configuration", "no project: set GCP_MONITORING_PROJECTS or GCP_PROJECT_ID")
            from google.cloud import monitoring_v3

            interval = monitoring_v3.TimeInterval(end_time=now, start_time=now - timedelta(hours=1))
            pager = adapter.monitoring.list_time_series(
                request={
                    "name": f"projects/{project}",
                    "interval": interval,
                    "page_size": 1,
                    "filter": 'metric.type = "compute.googleapis.com/instance/cpu/utilization"',
                    "aggregation": {
                        "alignment_period": {"seconds": 3600},
                        "per_series_aligner": monitoring_v3.Aggregation.Aligner.ALIGN_MEAN,
                    },
                    "view": monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.HEADERS,
                }
            )
            first = next(iter(pager.pages), None)
            series = len(first.time_series) if first is not None else 0
            return f"project {project}: {series} series on the first page"

        yield attempt("monitoring ListTimeSeries", list_time_series, _gcp_explain)

    def billing_dry_run() -> str:
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        table = adapter.billing_table()
        yesterday = now.date() - timedelta(days=1)
        p_start, p_end = adapter.partition_window(yesterday, yesterday + timedelta(days=1))
        config = bigquery.QueryJobConfig(
            dry_run=True,
            use_query_cache=False,
            query_parameters=[
                bigquery.ScalarQueryParameter(
                    "start", "TIMESTAMP", datetime(yesterday.year, yesterday.month, yesterday.day, tzinfo=timezone.utc)
                ),
                bigquery.ScalarQueryParameter("end", "TIMESTAMP", now.replace(hour=0)),
                bigquery.ScalarQueryParameter("partition_start", "TIMESTAMP", p_start),
                bigquery.ScalarQueryParameter("partition_end", "TIMESTAMP", p_end),
            ],
        )
        try:
            # The export source's own query: a detailed table without its price/subscription columns fails here.
            sql = adapter.export_sql(table) if adapter.export_source else adapter.totals_sql(table)
            job = adapter.bigquery.query(sql, job_config=config)
        except gexc.GoogleAPICallError as exc:
            raise adapter._bigquery_error(exc, table) from None
        scanned = job.total_bytes_processed or 0
        kind = "cost (detailed export)" if adapter.export_source else "totals"
        return f"{table} readable; a day's {kind} query would scan {scanned:,} bytes (dry run, free)"

    yield attempt("bigquery dry-run of the billing export", billing_dry_run, _gcp_explain)
