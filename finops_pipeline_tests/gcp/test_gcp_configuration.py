"""GCP settings checked before any call: the billing export table's name and the projects read."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from finops_pipeline.clouds.gcp.source import GcpSource
from finops_pipeline.settings import SettingsError, get_settings

EXPORT = {"GCP_PROJECT_ID": "shop-prod", "GCP_BILLING_DATASET": "billing_export"}


def _source(**variables: str) -> GcpSource:
    """An adapter built from these variables, with no clients: nothing here may call Google."""
    return GcpSource(get_settings(overrides=variables))


@pytest.mark.parametrize(
    "variables, table",
    [
        (
            {**EXPORT, "GCP_BILLING_ACCOUNT_ID": "01a2b3-C4D5E6-F7A8B9"},
            "`shop-prod.billing_export.gcp_billing_export_v1_01A2B3_C4D5E6_F7A8B9`",
        ),
        (
            {**EXPORT, "GCP_BILLING_ACCOUNT_ID": "01A2B3-C4D5E6-F7A8B9", "GCP_BILLING_DETAILED": "true"},
            "`shop-prod.billing_export.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9`",
        ),
        (
            {**EXPORT, "GCP_BILLING_PROJECT_ID": "shop-billing", "GCP_BILLING_TABLE": "my-export_2"},
            "`shop-billing.billing_export.my-export_2`",
        ),
    ],
)
def test_the_export_table_is_named_from_the_settings(variables, table):
    assert _source(**variables).billing_table() == table


@pytest.mark.parametrize(
    "variables, message",
    [
        (
            {"GCP_BILLING_DATASET": "billing_export", "GCP_BILLING_ACCOUNT_ID": "01A2B3-C4D5E6-F7A8B9"},
            "GCP_PROJECT_ID='' is invalid: expected a Google Cloud project id (6-30 lowercase letters, digits or "
            "hyphens) for the project that holds the billing export.",
        ),
        (
            {"GCP_PROJECT_ID": "shop-prod", "GCP_BILLING_ACCOUNT_ID": "01A2B3-C4D5E6-F7A8B9"},
            "GCP_BILLING_DATASET='' is invalid: expected the BigQuery dataset of the billing export (letters, "
            "digits, underscores).",
        ),
        (
            {**EXPORT, "GCP_BILLING_DATASET": "billing.export"},
            "GCP_BILLING_DATASET='billing.export' is invalid: expected the BigQuery dataset of the billing export "
            "(letters, digits, underscores).",
        ),
        (
            {**EXPORT, "GCP_BILLING_TABLE": "export`; --"},
            "GCP_BILLING_TABLE='export`; --' is invalid: expected a BigQuery table name (letters, digits, "
            "underscores, hyphens).",
        ),
        (
            EXPORT,
            "GCP_BILLING_ACCOUNT_ID='' is invalid: expected a billing account id like 01A2B3-C4D5E6-F7A8B9 (or set "
            "GCP_BILLING_TABLE).",
        ),
        (
            {**EXPORT, "GCP_BILLING_ACCOUNT_ID": "01A2B3_C4D5E6_F7A8B9"},
            "GCP_BILLING_ACCOUNT_ID='01A2B3_C4D5E6_F7A8B9' is invalid: expected a billing account id like "
            "01A2B3-C4D5E6-F7A8B9 (or set GCP_BILLING_TABLE).",
        ),
    ],
)
def test_an_unusable_export_setting_names_the_variable_and_the_fix(variables, message):
    with pytest.raises(SettingsError) as info:
        _source(**variables).billing_table()
    assert str(info.value) == message


def test_metrics_without_a_project_say_which_variable_to_set():
    hour = datetime(2026, 3, 2, tzinfo=timezone.utc)
    with pytest.raises(SettingsError) as info:
        next(_source().iter_metric_frames(hour, hour))
    assert str(info.value) == (
        "GCP_MONITORING_PROJECTS='' is invalid: expected a comma list of project ids (or set GCP_PROJECT_ID)."
    )


@pytest.mark.parametrize(
    "variables, projects",
    [
        ({"GCP_PROJECT_ID": "shop-prod"}, ("shop-prod",)),
        ({"GCP_PROJECT_ID": "shop-prod", "GCP_MONITORING_PROJECTS": "shop-one,shop-two"}, ("shop-one", "shop-two")),
    ],
)
def test_metrics_read_the_listed_projects_or_the_project(variables, projects):
    assert _source(**variables).projects == projects
