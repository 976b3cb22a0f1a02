"""Whether a cloud can be used: enabled in settings, SDK importable, credentials resolvable.

No cloud API is called: credentials are looked up the way each SDK finds them (boto3's
chain, Google's application-default credentials, Azure's environment / workload
identity / managed identity / CLI). The factory caches the answer.
"""

from __future__ import annotations

import importlib
import os
import shutil

from finops_pipeline.settings import Settings

SDK_MODULES = {
    "aws": ("boto3", "pip install boto3"),
    "gcp": ("google.cloud.monitoring_v3", "pip install google-cloud-monitoring google-cloud-bigquery"),
    "azure": ("azure.mgmt.costmanagement", "pip install azure-mgmt-costmanagement azure-mgmt-monitor azure-identity"),
}


def unavailable_reason(provider: str, settings: Settings, environ=None) -> str | None:
    """Why ``provider`` cannot be used, in words that say the fix; None when it can."""
    env = os.environ if environ is None else environ
    reason = settings.disabled_reason(provider)
    if reason:
        return f"{provider} usage is disabled: {reason}"
    module, install = SDK_MODULES[provider]
    try:
        importlib.import_module(module)
    except ImportError:
        return f"{provider} SDK is not installed: {install}"
    return {"aws": _aws, "gcp": _gcp, "azure": _azure}[provider](settings, env)


def _aws(settings: Settings, env) -> str | None:
    import boto3

    if settings.aws_credentials_in_env:
        return None
    # The SDK's own chain: environment, profiles, SSO, web identity, container and
    # instance roles (the last may ask the instance metadata endpoint once; cached).
    if boto3.session.Session().get_credentials() is not None:
        return None
    return (
        "aws credentials not found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
        "or run where an IAM role is available"
    )


def _gcp(settings: Settings, env) -> str | None:
    if settings.gcp_monitoring_endpoint or settings.gcp_bigquery_endpoint:
        return None  # self-hosted endpoints (the simulator) take no Google credentials
    if not settings.gcp_project_id and not settings.gcp_monitoring_projects:
        return "gcp project not configured: set GCP_PROJECT_ID (or GCP_MONITORING_PROJECTS)"
    path = settings.google_application_credentials
    if path:
        return None if os.path.isfile(path) else f"GOOGLE_APPLICATION_CREDENTIALS={path} does not exist"
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        return (
            "gcp credentials not found: set GOOGLE_APPLICATION_CREDENTIALS to a service account "
            "key file or run `gcloud auth application-default login`"
        )
    return None


def _azure(settings: Settings, env) -> str | None:
    if not settings.azure_subscription_ids:
        return "azure subscription not configured: set AZURE_SUBSCRIPTION_ID (or AZURE_SUBSCRIPTION_IDS)"
    service_principal = (
        env.get("AZURE_CLIENT_ID")
        and env.get("AZURE_TENANT_ID")
        and (env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH"))
    )
    workload_identity = env.get("AZURE_FEDERATED_TOKEN_FILE") and env.get("AZURE_CLIENT_ID")
    managed_identity = env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT")
    if service_principal or workload_identity or managed_identity or shutil.which("az"):
        return None
    return (
        "azure credentials not found: set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, "
        "use a managed or workload identity, or run `az login`"
    )
