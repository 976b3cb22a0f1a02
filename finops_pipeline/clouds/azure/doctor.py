"""`finops-pipeline doctor` for Azure: settings and credentials found, then one cheap call per API."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Iterator

from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.clouds.doctor import FAIL, INFO, Finding, attempt, missing_sdk
from finops_pipeline.settings import Settings, SettingsError


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
        yield missing_sdk("azure-identity azure-mgmt-costmanagement azure-mgmt-monitor")
        return
    from finops_pipeline.clouds.azure.source import AzureSource

    yield Finding(INFO, "settings", f"AZURE_SUBSCRIPTION_IDS={','.join(settings.azure_subscription_ids) or '-'}")
    yield _azure_credentials(settings)
    try:
        adapter = AzureSource.from_settings(settings)
    except (CloudApiError, SettingsError) as exc:
        yield Finding(FAIL, "clients", str(exc))
        return
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    for sub in settings.azure_subscription_ids:

        def read_subscription(sub=sub) -> str:
            from azure.core.rest import HttpRequest

            def send(hook):
                response = adapter.cost_client.send_request(
                    HttpRequest("GET", f"/subscriptions/{sub}?api-version=2022-12-01"), raw_response_hook=hook
                )
                response.raise_for_status()
                return response.json()

            body = adapter._call("arm.subscriptions.get", f"/subscriptions/{sub}", 0, "Reader", send)
            return f"{sub}: {body.get('displayName', '?')} ({body.get('state', '?')})"

        yield attempt("ARM subscription read", read_subscription, lambda exc: None)

        def cost_query(sub=sub) -> str:
            rows = list(adapter.query_cost(sub, yesterday, yesterday + timedelta(days=1), "ActualCost", ["ChargeType"]))
            return f"{sub}: {len(rows)} charge type row(s) for {yesterday} (Cost Management queries are free)"

        yield attempt("Cost Management query", cost_query, lambda exc: None)

    if settings.azure_cost_source == "export":
        storage = (
            "AZURE_STORAGE_CONNECTION_STRING (value hidden)"
            if os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
            else "the credentials above"
        )
        yield Finding(
            INFO, "cost source", f"FocusCost export at AZURE_EXPORT_URI={settings.azure_export_uri} via {storage}"
        )

        def newest_run() -> str:
            reader = adapter.export_reader()
            month = yesterday.replace(day=1)
            run = reader.run(month)
            if run is None:
                return f"no complete run for {month:%Y-%m} yet (the first delivery can take a day)"
            return (
                f"{month:%Y-%m}: run {run.run_id} of {run.submitted:%Y-%m-%d %H:%M} UTC, "
                f"{len(run.files)} file(s), {run.row_count} row(s)"
            )

        yield attempt("FocusCost export manifest", newest_run, lambda exc: None)
