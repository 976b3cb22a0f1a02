"""GCP settings as a Dagster resource (the README's GCP_* variables; credentials stay in
Application Default Credentials and are never a field)."""

from __future__ import annotations

from typing import ClassVar

from finops_pipeline.settings import SettingsResource


class GcpResource(SettingsResource):
    """GCP for the assets: an unset field takes its GCP_* variable from the environment."""

    VARIABLES: ClassVar[dict[str, str]] = {
        "usage_enabled": "GCP_USAGE_ENABLED",
        "project_id": "GCP_PROJECT_ID",
        "monitoring_projects": "GCP_MONITORING_PROJECTS",
        "billing_account_id": "GCP_BILLING_ACCOUNT_ID",
        "billing_project_id": "GCP_BILLING_PROJECT_ID",
        "billing_dataset": "GCP_BILLING_DATASET",
        "billing_table": "GCP_BILLING_TABLE",
        "billing_detailed": "GCP_BILLING_DETAILED",
        "cost_source": "GCP_COST_SOURCE",
        "billing_detailed_table": "GCP_BILLING_DETAILED_TABLE",
        "billing_max_bytes": "GCP_BILLING_MAX_BYTES",
        "monitoring_endpoint": "GCP_MONITORING_ENDPOINT",
        "bigquery_endpoint": "GCP_BIGQUERY_ENDPOINT",
        "restatement_lookback_days": "GCP_RESTATEMENT_LOOKBACK_DAYS",
    }

    usage_enabled: bool | None = None
    project_id: str | None = None
    monitoring_projects: list[str] | None = None
    billing_account_id: str | None = None
    billing_project_id: str | None = None
    billing_dataset: str | None = None
    billing_table: str | None = None
    billing_detailed: bool | None = None
    cost_source: str | None = None
    billing_detailed_table: str | None = None
    billing_max_bytes: int | None = None
    monitoring_endpoint: str | None = None
    bigquery_endpoint: str | None = None
    restatement_lookback_days: int | None = None
