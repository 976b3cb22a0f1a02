"""`finops-pipeline doctor` for GCP when something is missing: the SDK, the credentials, a project."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc

from finops_pipeline.clouds.gcp.doctor import check_gcp
from finops_pipeline.settings import get_settings

SETTINGS_LINE = (
    "  info settings: GCP_MONITORING_PROJECTS=shop-prod,shop-analytics, GCP_BILLING_PROJECT_ID=shop-prod, "
    "GCP_BILLING_DATASET=billing_export"
)


def _lines(settings) -> list[str]:
    return [finding.line() for finding in check_gcp(settings)]


def test_without_the_google_sdk_doctor_says_what_to_install(doubles, monkeypatch):
    import google.cloud

    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)  # what an absent package raises
    monkeypatch.delattr(google.cloud, "bigquery")
    assert _lines(get_settings({**os.environ, **doubles.environment()})) == [
        "  FAIL SDK: google-cloud-monitoring google-cloud-bigquery is not installed: pip install -e . "
        "(or pip install google-cloud-monitoring google-cloud-bigquery)"
    ]


def test_a_key_file_that_is_not_there_stops_before_any_call(doubles, tmp_path):
    key = tmp_path / "gone.json"
    env = dict(doubles.environment(), GOOGLE_APPLICATION_CREDENTIALS=str(key))
    assert _lines(get_settings({**os.environ, **env})) == [
        SETTINGS_LINE,
        f"  FAIL credentials: GOOGLE_APPLICATION_CREDENTIALS={key} does not exist: point it at a service-account "
        "key file, or unset it to use Application Default Credentials",
    ]
    assert doubles.monitoring.requests == [] and doubles.bigquery.queries == []


def test_a_key_file_google_cannot_load_is_named_with_googles_reason(doubles, tmp_path, monkeypatch):
    """An OAuth client secret downloaded instead of a service-account key: JSON, but no credential
    type google-auth knows. The clients cannot be built, and doctor says that file is the problem
    (not "no Application Default Credentials found: set GOOGLE_APPLICATION_CREDENTIALS")."""
    key = tmp_path / "client_secret.json"
    key.write_text(json.dumps({"installed": {"client_id": "1-x.apps.googleusercontent.com", "client_secret": "s3"}}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))  # google-auth reads the process's
    env = {
        k: v
        for k, v in dict(doubles.environment(), GOOGLE_APPLICATION_CREDENTIALS=str(key)).items()
        if k not in ("GCP_MONITORING_ENDPOINT", "GCP_BIGQUERY_ENDPOINT")  # production: Google's endpoints
    }
    lines = _lines(get_settings({**os.environ, **env}))
    assert lines == [
        SETTINGS_LINE,
        f"  ok   credentials: {key} (unknown type; key material hidden)",
        f"  FAIL clients: gcp authentication failed: GOOGLE_APPLICATION_CREDENTIALS={key} could not be used "
        f"(The file {key} does not have a valid type. Type is None, expected one of ('authorized_user', "
        "'service_account', 'external_account', 'external_account_authorized_user', "
        "'impersonated_service_account', 'gdch_service_account').): point it at a service-account key file "
        "(IAM -> Service accounts -> Keys), or unset it and run `gcloud auth application-default login`",
    ]
    assert "s3" not in "".join(lines)


def test_without_a_monitoring_project_doctor_says_which_variable_to_set(doubles):
    env = dict(doubles.environment(), GCP_MONITORING_PROJECTS="")
    del env["GCP_PROJECT_ID"]  # the billing export keeps GCP_BILLING_PROJECT_ID
    lines = _lines(get_settings({**os.environ, **env}))
    assert lines[2] == (
        "  FAIL monitoring ListTimeSeries: gcp configuration failed: no project: set GCP_MONITORING_PROJECTS "
        "or GCP_PROJECT_ID"
    )
    assert lines[3].startswith("  ok   bigquery dry-run of the billing export: ")
    assert doubles.monitoring.requests == []


def test_a_refusal_doctor_has_no_advice_for_is_reported_as_google_words_it(doubles):
    """A spent read quota (RESOURCE_EXHAUSTED, not retried by the client's default policy)."""
    env = dict(doubles.environment(), GCP_MONITORING_PROJECTS="shop-prod")
    doubles.monitoring.fail_next = [grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert _lines(get_settings({**os.environ, **env}))[2] == (
        "  FAIL monitoring ListTimeSeries: ResourceExhausted: 429 simulated RESOURCE_EXHAUSTED"
    )


def test_no_credentials_at_all_say_how_to_get_them(tmp_path, monkeypatch):
    """No key file, no `gcloud auth application-default login`, not on Google Cloud: google-auth
    gives up. NO_GCE_CHECK=true (google-auth's own switch, read when it is imported, hence a
    process of its own) stands for "no metadata server" without asking the network."""
    for name, value in {
        "NO_GCE_CHECK": "true",
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no application_default_credentials.json
        "GCP_PROJECT_ID": "shop-prod",
        "GCP_BILLING_DATASET": "billing_export",
        "GCP_BILLING_ACCOUNT_ID": "01A2B3-C4D5E6-F7A8B9",
    }.items():
        monkeypatch.setenv(name, value)
    script = (
        "from finops_pipeline.clouds.gcp.doctor import check_gcp\n"
        "from finops_pipeline.settings import get_settings\n"
        "print('\\n'.join(f.line() for f in check_gcp(get_settings())))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.splitlines() == [
        "  info settings: GCP_MONITORING_PROJECTS=shop-prod, GCP_BILLING_PROJECT_ID=shop-prod, "
        "GCP_BILLING_DATASET=billing_export",
        "  info credentials: GOOGLE_APPLICATION_CREDENTIALS not set: Application Default Credentials (gcloud auth "
        "application-default login, or the metadata server) are used",
        "  FAIL clients: gcp authentication failed: no Application Default Credentials found: set "
        "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run `gcloud auth application-default login`",
    ]
