"""Azure settings as a Dagster resource (the README's AZURE_* variables; the client secret
stays with azure-identity's DefaultAzureCredential and is never a field)."""

from __future__ import annotations

from typing import ClassVar

from finops_pipeline.settings import SettingsResource


class AzureResource(SettingsResource):
    """Azure for the assets: an unset field takes its AZURE_* variable from the environment."""

    VARIABLES: ClassVar[dict[str, str]] = {
        "usage_enabled": "AZURE_USAGE_ENABLED",
        "subscription_id": "AZURE_SUBSCRIPTION_ID",
        "subscription_ids": "AZURE_SUBSCRIPTION_IDS",
        "tenant_id": "AZURE_TENANT_ID",
        "resource_ids": "AZURE_RESOURCE_IDS",
        "max_retry_wait_seconds": "AZURE_MAX_RETRY_WAIT_SECONDS",
        "resource_manager_endpoint": "AZURE_RESOURCE_MANAGER_ENDPOINT",
        "restatement_close_day": "AZURE_RESTATEMENT_CLOSE_DAY",
        "cost_source": "AZURE_COST_SOURCE",
        "export_uri": "AZURE_EXPORT_URI",
    }

    usage_enabled: bool | None = None
    subscription_id: str | None = None
    subscription_ids: list[str] | None = None
    tenant_id: str | None = None
    resource_ids: list[str] | None = None
    max_retry_wait_seconds: int | None = None
    resource_manager_endpoint: str | None = None
    restatement_close_day: int | None = None
    cost_source: str | None = None  # api | export
    export_uri: str | None = None  # https://<account>.blob.core.windows.net/<container>/<directory>/<export-name>
