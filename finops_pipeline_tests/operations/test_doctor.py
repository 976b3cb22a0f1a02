"""`finops-pipeline doctor` for Azure against the HTTPS double: what it reads, what it says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from finops_pipeline.cli import main
from finops_pipeline.clouds.azure.doctor import _azure_credentials
from finops_pipeline.clouds.doctor import INFO, Finding
from finops_pipeline.settings import get_settings
from finops_pipeline.simulator.azure import CLIENT_ID, TENANT_ID, AzureDouble
from finops_pipeline.simulator.fleet import AZURE_SUBSCRIPTIONS
from finops_pipeline_tests.runs import set_environment

from .conftest import END, START


@pytest.fixture
def azure_double(fleet, monkeypatch):
    with AzureDouble(fleet, START, END) as double:
        set_environment(monkeypatch, double.environment)
        yield double


def test_doctor_reads_each_subscription_and_queries_its_cost(azure_double, capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    assert lines == [
        f"  info settings: AZURE_SUBSCRIPTION_IDS={','.join(AZURE_SUBSCRIPTIONS)}",
        f"  info credentials: service principal AZURE_CLIENT_ID={CLIENT_ID} with AZURE_CLIENT_SECRET (value hidden); "
        f"AZURE_TENANT_ID={TENANT_ID}",
        *(
            line
            for sub in AZURE_SUBSCRIPTIONS
            for line in (
                f"  ok   ARM subscription read: {sub}: simulated {sub[-4:]} (Enabled)",
                f"  ok   Cost Management query: {sub}: 1 charge type row(s) for {yesterday} "
                "(Cost Management queries are free)",
            )
        ),
    ]
    assert azure_double.client_secret not in out


def test_doctor_names_an_unknown_subscription(azure_double, monkeypatch, capsys):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_IDS", "11111111-2222-3333-4444-555555555555")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    unknown = (
        "subscription '11111111-2222-3333-4444-555555555555' is unknown to Azure or not in this tenant "
        "(SubscriptionNotFound: The subscription '11111111-2222-3333-4444-555555555555' could not be found.); "
        "check AZURE_SUBSCRIPTION_IDS and AZURE_TENANT_ID"
    )
    assert f"  FAIL ARM subscription read: azure arm.subscriptions.get failed: {unknown}\n" in out
    assert f"  FAIL Cost Management query: azure costmanagement.query.usage failed: {unknown}\n" in out
    assert out.endswith("2 problem(s) found; fixes above\n")


def test_doctor_without_a_subscription_says_which_variable_to_set(azure_double, monkeypatch, capsys):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_IDS", "")
    assert main(["doctor"]) == 1
    assert (
        "  FAIL clients: AZURE_SUBSCRIPTION_IDS='' is invalid: expected a comma list of subscription ids "
        "(or set AZURE_SUBSCRIPTION_ID).\n" in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    "environ, source",
    [
        (
            {"AZURE_CLIENT_ID": "app", "AZURE_CLIENT_CERTIFICATE_PATH": "/cert.pem"},
            "service principal AZURE_CLIENT_ID=app with a certificate",
        ),
        ({"AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"}, "workload identity (AZURE_FEDERATED_TOKEN_FILE)"),
        ({}, "DefaultAzureCredential chain (managed identity, Azure CLI `az login`, ...)"),
    ],
)
def test_doctor_says_which_azure_identity_it_will_use(environ, source, monkeypatch):
    set_environment(monkeypatch, environ)
    assert _azure_credentials(get_settings()) == Finding(INFO, "credentials", source)


def test_doctor_without_the_azure_sdk_says_what_to_install(azure_double, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "azure.mgmt.costmanagement", None)  # what an absent package raises
    assert main(["doctor"]) == 1
    assert (
        "  FAIL SDK: azure-identity azure-mgmt-costmanagement azure-mgmt-monitor is not installed: pip install -e . "
        "(or pip install azure-identity azure-mgmt-costmanagement azure-mgmt-monitor)\n" in capsys.readouterr().out
    )


@pytest.fixture
def gcp_doubles(fleet, monkeypatch):
    from finops_pipeline.simulator.gcp import run_gcp_doubles

    with run_gcp_doubles(fleet, START, END) as doubles:
        set_environment(monkeypatch, doubles.environment())
        yield doubles


def test_doctor_lists_series_and_dry_runs_the_billing_export(gcp_doubles, capsys):
    assert main(["doctor"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    table = "`shop-prod.billing_export.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9`"
    assert lines[:-1] == [
        "  info settings: GCP_MONITORING_PROJECTS=shop-prod,shop-analytics, GCP_BILLING_PROJECT_ID=shop-prod, "
        "GCP_BILLING_DATASET=billing_export",
        "  info credentials: not needed: GCP_*_ENDPOINT points at a non-Google endpoint",
        # The doubles serve days before today: the last hour has no series.
        "  ok   monitoring ListTimeSeries: project shop-prod: 0 series on the first page",
        "  ok   monitoring ListTimeSeries: project shop-analytics: 0 series on the first page",
    ]
    prefix = f"  ok   bigquery dry-run of the billing export: {table} readable; a day's totals query would scan "
    assert lines[-1].startswith(prefix) and lines[-1].endswith(" bytes (dry run, free)")
    assert 0 < int(lines[-1][len(prefix) : -len(" bytes (dry run, free)")].replace(",", "")) < 10 * 2**20


@pytest.mark.parametrize(
    "code, says",
    [
        ("PERMISSION_DENIED", "permission denied: grant roles/monitoring.viewer on the project ("),
        (
            "UNAUTHENTICATED",
            "the credentials were rejected: set GOOGLE_APPLICATION_CREDENTIALS or run "
            "`gcloud auth application-default login`",
        ),
        ("NOT_FOUND", "not found: check the project id and that the API is enabled ("),
    ],
)
def test_doctor_explains_a_refused_monitoring_call(gcp_doubles, monkeypatch, capsys, code, says):
    import grpc

    monkeypatch.setenv("GCP_MONITORING_PROJECTS", "shop-prod")
    gcp_doubles.monitoring.fail_next = [getattr(grpc.StatusCode, code)]
    assert main(["doctor"]) == 1
    assert f"  FAIL monitoring ListTimeSeries: {says}" in capsys.readouterr().out


def test_doctor_reads_who_a_key_file_belongs_to_but_never_the_key(tmp_path, monkeypatch, capsys):
    from finops_pipeline.clouds.doctor import FAIL, OK
    from finops_pipeline.clouds.gcp.doctor import _gcp_credentials

    key = tmp_path / "key.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    key.write_text("not json")
    assert _gcp_credentials(get_settings()) == Finding(
        FAIL,
        "credentials",
        f"GOOGLE_APPLICATION_CREDENTIALS={key} is not a JSON key file: download the key again "
        "(IAM -> Service accounts -> Keys)",
    )
    key.write_text(
        '{"type": "service_account", "client_email": "finops@shop-prod.iam.gserviceaccount.com", '
        '"private_key": "-----BEGIN PRIVATE KEY-----secret"}'
    )
    assert _gcp_credentials(get_settings()) == Finding(
        OK,
        "credentials",
        f"{key} (service_account, finops@shop-prod.iam.gserviceaccount.com; key material hidden)",
    )
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    assert _gcp_credentials(get_settings()).detail.startswith("GOOGLE_APPLICATION_CREDENTIALS not set: ")
