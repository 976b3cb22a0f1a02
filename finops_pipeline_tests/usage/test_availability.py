"""Whether a cloud can be used, decided before any call: each reason names the fix."""

from __future__ import annotations

import sys

import pytest

from finops_pipeline.adapters.usage.availability import unavailable_reason
from finops_pipeline.settings import get_settings

SUB = "00000000-0000-4000-8000-000000000001"


def _settings(**variables: str):
    return get_settings(overrides={"AWS_USAGE_ENABLED": "true", "GCP_USAGE_ENABLED": "true", **variables})


@pytest.mark.parametrize(
    "variables, provider, reason",
    [
        ({"USAGE_INTEGRATION_ENABLED": "false"}, "aws", "aws usage is disabled: USAGE_INTEGRATION_ENABLED is false"),
        ({}, "azure", "azure usage is disabled: AZURE_USAGE_ENABLED is not true"),
        (
            {"AZURE_USAGE_ENABLED": "true"},
            "azure",
            "azure subscription not configured: set AZURE_SUBSCRIPTION_ID (or AZURE_SUBSCRIPTION_IDS)",
        ),
        ({}, "gcp", "gcp project not configured: set GCP_PROJECT_ID (or GCP_MONITORING_PROJECTS)"),
        ({"GCP_MONITORING_ENDPOINT": "127.0.0.1:9"}, "gcp", None),  # the simulator takes no credentials
    ],
)
def test_settings_decide_first(variables, provider, reason):
    assert unavailable_reason(provider, _settings(**variables), environ={}) == reason


def test_a_missing_sdk_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "azure.mgmt.costmanagement", None)  # what an absent package raises
    settings = _settings(AZURE_USAGE_ENABLED="true", AZURE_SUBSCRIPTION_ID=SUB)
    assert unavailable_reason("azure", settings, environ={}) == (
        "azure SDK is not installed: pip install azure-mgmt-costmanagement azure-mgmt-monitor azure-identity"
    )


def test_aws_credentials_from_the_environment_or_the_sdk_chain_or_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    assert unavailable_reason("aws", _settings(), environ={}) == (
        "aws credentials not found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
        "or run where an IAM role is available"
    )
    keys = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE000000000", "AWS_SECRET_ACCESS_KEY": "example"}
    assert unavailable_reason("aws", _settings(**keys), environ={}) is None
    (tmp_path / "no-credentials").write_text(
        "[default]\naws_access_key_id = AKIAEXAMPLE000000000\naws_secret_access_key = example\n"
    )
    assert unavailable_reason("aws", _settings(), environ={}) is None  # boto3's shared credentials file


def test_gcp_key_file_must_exist(tmp_path):
    key = tmp_path / "key.json"
    settings = _settings(GCP_PROJECT_ID="shop-prod", GOOGLE_APPLICATION_CREDENTIALS=str(key))
    assert unavailable_reason("gcp", settings, environ={}) == f"GOOGLE_APPLICATION_CREDENTIALS={key} does not exist"
    key.write_text("{}")
    assert unavailable_reason("gcp", settings, environ={}) is None


@pytest.mark.parametrize(
    "environ",
    [
        {"AZURE_CLIENT_ID": "app", "AZURE_TENANT_ID": "tenant", "AZURE_CLIENT_SECRET": "s"},
        {"AZURE_CLIENT_ID": "app", "AZURE_TENANT_ID": "tenant", "AZURE_CLIENT_CERTIFICATE_PATH": "/cert.pem"},
        {"AZURE_CLIENT_ID": "app", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"},
        {"IDENTITY_ENDPOINT": "http://169.254.169.254/metadata/identity"},
        {"MSI_ENDPOINT": "http://169.254.169.254/metadata/identity"},
    ],
)
def test_azure_service_principal_workload_or_managed_identity(environ, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no Azure CLI
    settings = _settings(AZURE_USAGE_ENABLED="true", AZURE_SUBSCRIPTION_ID=SUB)
    assert unavailable_reason("azure", settings, environ=environ) is None


def test_azure_without_any_identity_says_how_to_sign_in(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = _settings(AZURE_USAGE_ENABLED="true", AZURE_SUBSCRIPTION_ID=SUB)
    half = {"AZURE_CLIENT_ID": "app", "AZURE_TENANT_ID": "tenant"}  # no secret, no certificate
    assert unavailable_reason("azure", settings, environ=half) == (
        "azure credentials not found: set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, "
        "use a managed or workload identity, or run `az login`"
    )
    (tmp_path / "az").write_text("#!/bin/sh\n")
    (tmp_path / "az").chmod(0o755)
    assert unavailable_reason("azure", settings, environ=half) is None  # the Azure CLI's login


def test_gcp_without_credentials_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud application-default login
    settings = _settings(GCP_PROJECT_ID="shop-prod")
    assert unavailable_reason("gcp", settings, environ={}) == (
        "gcp credentials not found: set GOOGLE_APPLICATION_CREDENTIALS to a service account "
        "key file or run `gcloud auth application-default login`"
    )
    (tmp_path / "application_default_credentials.json").write_text(
        '{"type": "authorized_user", "client_id": "id", "client_secret": "s", "refresh_token": "t"}'
    )
    assert unavailable_reason("gcp", settings, environ={}) is None  # gcloud's own credentials file
