import os
from datetime import date
from pathlib import Path

import pytest

from finops_pipeline.settings import SettingsError, get_settings


def test_defaults_match_the_documented_ones():
    s = get_settings({})
    assert s.usage_cache_ttl_seconds == 3600
    assert s.restatement_days == 3
    assert s.data_dir == Path("data")
    assert s.aws_usage_regions == ("us-east-1",)
    assert not s.aws_usage_enabled and not s.gcp_usage_enabled and not s.azure_usage_enabled


def test_lists_and_their_defaults():
    s = get_settings({"AWS_REGION": "eu-west-1", "GCP_PROJECT_ID": "shop-prod", "AZURE_SUBSCRIPTION_ID": "sub-1"})
    assert s.aws_usage_regions == ("eu-west-1",)
    assert s.gcp_monitoring_projects == ("shop-prod",)
    assert s.azure_subscription_ids == ("sub-1",)
    s = get_settings({"AWS_USAGE_REGIONS": "us-east-1, eu-west-1", "GCP_MONITORING_PROJECTS": "shop-one,shop-two"})
    assert s.aws_usage_regions == ("us-east-1", "eu-west-1")
    assert s.gcp_monitoring_projects == ("shop-one", "shop-two")


@pytest.mark.parametrize(
    "name, value, allowed",
    [
        ("FINOPS_RESTATEMENT_DAYS", "three", "whole number"),
        ("USAGE_CACHE_TTL_SECONDS", "-5", "whole number from 0 to 604800"),
        ("AWS_USAGE_ENABLED", "maybe", "true or false"),
        ("FINOPS_START_DATE", "2026/01/01", "YYYY-MM-DD"),
        ("AWS_REGION", "narnia", "AWS region"),
        ("AWS_USAGE_REGIONS", "us-east-1,moon-1", "AWS region"),
        ("AWS_COST_GROUP_BY", "SERVICE,REGION,USAGE_TYPE", "one or two Cost Explorer dimensions"),
        ("FINOPS_METRICS_COVERAGE_FLOOR", "1.5", "from 0.0 to 1.0"),
        ("FINOPS_LAKE_URI", "ftp://host/lake", "s3://bucket/prefix, gs://bucket/prefix or abfs://container@account"),
    ],
)
def test_invalid_value_names_variable_value_and_what_is_allowed(name, value, allowed):
    with pytest.raises(SettingsError) as info:
        get_settings({name: value})
    message = str(info.value)
    assert name in message and repr(value) in message and allowed in message


def test_dotenv_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("AWS_USAGE_ENABLED=true\nFINOPS_RESTATEMENT_DAYS=5\nFINOPS_START_DATE=2025-06-01\n")
    s = get_settings({"FINOPS_ENV_FILE": str(env_file), "FINOPS_RESTATEMENT_DAYS": "7"})
    assert s.aws_usage_enabled is True
    assert s.restatement_days == 7
    assert s.start_date == date(2025, 6, 1)


def test_settings_are_read_when_asked_not_at_import(monkeypatch):
    monkeypatch.setenv("FINOPS_RESTATEMENT_DAYS", "9")
    assert get_settings().restatement_days == 9
    monkeypatch.setenv("FINOPS_RESTATEMENT_DAYS", "2")
    assert get_settings().restatement_days == 2


def test_disabled_cloud_reason_names_the_variable():
    s = get_settings({"AWS_USAGE_ENABLED": "true", "USAGE_INTEGRATION_ENABLED": "true"})
    assert s.disabled_reason("aws") is None
    assert s.disabled_reason("gcp") == "GCP_USAGE_ENABLED is not true"
    s = get_settings({"AWS_USAGE_ENABLED": "true", "USAGE_INTEGRATION_ENABLED": "false"})
    assert s.disabled_reason("aws") == "USAGE_INTEGRATION_ENABLED is false"


def test_repeated_list_items_are_used_once_in_first_seen_order():
    s = get_settings(
        {
            "AZURE_SUBSCRIPTION_IDS": "a,b,a",
            "GCP_MONITORING_PROJECTS": "proj-two,proj-one,proj-two",
            "AWS_USAGE_REGIONS": "eu-west-1,us-east-1,eu-west-1",
            "AZURE_RESOURCE_IDS": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/x,"
            "/SUBSCRIPTIONS/S/resourceGroups/RG/providers/Microsoft.Web/sites/X",
        }
    )
    assert s.azure_subscription_ids == ("a", "b")
    assert s.gcp_monitoring_projects == ("proj-two", "proj-one")
    assert s.aws_usage_regions == ("eu-west-1", "us-east-1")
    assert s.azure_resource_ids == ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/x",)
    assert dict(s.repeated_items) == {
        "AWS_USAGE_REGIONS": ("eu-west-1",),
        "GCP_MONITORING_PROJECTS": ("proj-two",),
        "AZURE_SUBSCRIPTION_IDS": ("a",),
        "AZURE_RESOURCE_IDS": ("/SUBSCRIPTIONS/S/resourceGroups/RG/providers/Microsoft.Web/sites/X",),
    }


@pytest.mark.parametrize(
    "name, value, allowed",
    [
        ("GCP_MONITORING_PROJECTS", 'shop-prod,shop"dev', "Google Cloud project id"),
        ("GCP_PROJECT_ID", "Shop Prod", "Google Cloud project id"),
        ("GCP_BILLING_PROJECT_ID", "x", "Google Cloud project id"),
        ("AZURE_SUBSCRIPTION_IDS", "sub-1,sub'2", "subscription id"),
        ("AZURE_RESOURCE_IDS", "vm-1", "/subscriptions/"),
    ],
)
def test_list_and_id_settings_are_checked_before_any_cloud_call(name, value, allowed):
    with pytest.raises(SettingsError) as info:
        get_settings({name: value})
    assert name in str(info.value) and allowed in str(info.value)


@pytest.mark.parametrize(
    "name, value, bound",
    [
        ("FINOPS_RESTATEMENT_DAYS", "400", "from 0 to 62"),
        ("FINOPS_METRICS_CONCURRENCY", "500", "from 1 to 32"),
        ("AWS_MAX_ATTEMPTS", "1000", "from 1 to 20"),
        ("USAGE_CACHE_TTL_SECONDS", "99999999", "from 0 to 604800"),
        ("USAGE_CACHE_MAX_ENTRIES", "99999999", "from 1 to 1000000"),
        ("AZURE_MAX_RETRY_WAIT_SECONDS", "86400", "from 0 to 3600"),
        ("GCP_BILLING_MAX_BYTES", str(2 * 1024**5), "from 1 to 1125899906842624"),
    ],
)
def test_whole_numbers_have_documented_upper_bounds(name, value, bound):
    with pytest.raises(SettingsError, match=bound):
        get_settings({name: value})
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
    assert bound.replace("from ", "").replace(" to ", "-") in row.replace(",", "").replace("–", "-")


def test_credentials_in_dotenv_reach_the_sdk_credential_chains(tmp_path, monkeypatch):
    import boto3

    from finops_pipeline.adapters.usage.availability import unavailable_reason
    from finops_pipeline.clouds.aws.doctor import _aws_credentials

    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_CLIENT_SECRET", "GOOGLE_APPLICATION_CREDENTIALS")
    for name in names:  # registered with monkeypatch so whatever the loader exports is undone
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    env_file = tmp_path / ".env"
    env_file.write_text(
        "AWS_USAGE_ENABLED=true\nAWS_ACCESS_KEY_ID=AKIAEXAMPLEKEY0000000\n"
        "AWS_SECRET_ACCESS_KEY=dotenv-secret\nAZURE_CLIENT_SECRET=azure-dotenv-secret\n"
    )
    monkeypatch.setenv("FINOPS_ENV_FILE", str(env_file))
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "from-the-process")
    settings = get_settings()
    assert boto3.session.Session().get_credentials().method == "env"
    assert _aws_credentials().status == "ok" and unavailable_reason("aws", settings) is None
    assert os.environ["AZURE_CLIENT_SECRET"] == "from-the-process"  # the process environment wins
    assert "dotenv-secret" not in repr(settings)


def test_role_arns_are_validated_and_used_once():
    arn = "arn:aws:iam::222222222222:role/finops-read"
    settings = get_settings({"AWS_ROLE_ARNS": f"{arn},{arn}", "AWS_ORG_ROLE_NAME": "OrganizationAccountAccessRole"})
    assert settings.aws_role_arns == (arn,)
    assert settings.repeated_items == (("AWS_ROLE_ARNS", (arn,)),)
    assert settings.aws_org_role_name == "OrganizationAccountAccessRole"
    with pytest.raises(
        SettingsError, match="AWS_ROLE_ARNS='role/x' is invalid: expected a comma list of IAM role ARNs"
    ):
        get_settings({"AWS_ROLE_ARNS": "role/x"})
    with pytest.raises(SettingsError, match="AWS_ORG_ROLE_NAME"):
        get_settings({"AWS_ORG_ROLE_NAME": "bad name"})


def test_a_bad_setting_never_stops_the_code_location_from_loading(tmp_path):
    """Definitions are built at import: a bad variable must fail runs with its fix, not the load."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "FINOPS_START_DATE": "2026-13-01",
        "AZURE_SUBSCRIPTION_IDS": "not-a-guid",
        "FINOPS_ENV_FILE": str(tmp_path / "no.env"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from finops_pipeline.definitions import defs; "
            "print(defs.resolve_asset_graph().get(__import__('dagster').AssetKey('aws_cost'))"
            ".partitions_def.start.date())",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2026-01-01"
    assert "FINOPS_START_DATE='2026-13-01' is invalid" in done.stderr


@pytest.mark.parametrize(
    "value, floor",
    [("0", 0.0), ("0.75", 0.75), (" 1 ", 1.0), ("1e-1", 0.1)],
)
def test_a_valid_coverage_floor_is_used(value, floor):
    assert get_settings(overrides={"FINOPS_METRICS_COVERAGE_FLOOR": value}).metrics_coverage_floor == floor


@pytest.mark.parametrize("value", ["high", "90%", "0,9", "nan", "inf", "-0.1", "1.01", ""])
def test_an_unusable_coverage_floor_names_the_variable_and_the_range(value):
    with pytest.raises(SettingsError) as info:
        get_settings(overrides={"FINOPS_METRICS_COVERAGE_FLOOR": value})
    assert str(info.value) == f"FINOPS_METRICS_COVERAGE_FLOOR={value!r} is invalid: expected a number from 0.0 to 1.0."
    assert info.value.name == "FINOPS_METRICS_COVERAGE_FLOOR"


@pytest.mark.parametrize(
    "value, dimensions, repeated",
    [
        ("SERVICE", ("SERVICE",), ()),
        ("service, linked_account", ("SERVICE", "LINKED_ACCOUNT"), ()),
        ("REGION,USAGE_TYPE,", ("REGION", "USAGE_TYPE"), ()),
        ("SERVICE,service,REGION", ("SERVICE", "REGION"), (("AWS_COST_GROUP_BY", ("service",)),)),
    ],
)
def test_cost_explorer_group_by_takes_one_or_two_dimensions_in_any_case(value, dimensions, repeated):
    settings = get_settings(overrides={"AWS_COST_GROUP_BY": value})
    assert settings.aws_cost_group_by == dimensions
    assert settings.repeated_items == repeated


_GROUP_BY_ALLOWED = "one or two Cost Explorer dimensions, e.g. SERVICE,LINKED_ACCOUNT"


@pytest.mark.parametrize(
    "value, allowed",
    [
        ("", _GROUP_BY_ALLOWED),
        (" , ", _GROUP_BY_ALLOWED),
        ("SERVICE,REGION,USAGE_TYPE", _GROUP_BY_ALLOWED),
        ("PRODUCT", _GROUP_BY_ALLOWED),
        ("TAG:team", _GROUP_BY_ALLOWED),
        ("SERVICE,LINKED ACCOUNT", "a comma-separated list without spaces inside items"),
    ],
)
def test_an_unusable_cost_explorer_group_by_says_what_is_allowed(value, allowed):
    with pytest.raises(SettingsError) as info:
        get_settings(overrides={"AWS_COST_GROUP_BY": value})
    assert str(info.value) == f"AWS_COST_GROUP_BY={value!r} is invalid: expected {allowed}."


@pytest.mark.parametrize(
    "name, value, message",
    [
        (
            "GCP_PROJECT_ID",
            "Shop Prod",
            "GCP_PROJECT_ID='Shop Prod' is invalid: expected a Google Cloud project id (6-30 lowercase letters, "
            "digits or hyphens, starting with a letter, e.g. shop-prod).",
        ),
        (
            "GCP_BILLING_PROJECT_ID",
            "billing-",
            "GCP_BILLING_PROJECT_ID='billing-' is invalid: expected a Google Cloud project id (6-30 lowercase "
            "letters, digits or hyphens, starting with a letter, e.g. shop-prod).",
        ),
        (
            "GCP_MONITORING_PROJECTS",
            "shop-prod,shop dev",
            "GCP_MONITORING_PROJECTS='shop-prod,shop dev' is invalid: expected a comma list of Google Cloud project "
            "ids (6-30 lowercase letters, digits or hyphens, starting with a letter, e.g. shop-prod) ('shop dev' is "
            "not).",
        ),
        (
            "AZURE_SUBSCRIPTION_ID",
            "sub one",
            "AZURE_SUBSCRIPTION_ID='sub one' is invalid: expected an Azure subscription id (a GUID such as "
            "00000000-0000-0000-0000-000000000000).",
        ),
        (
            "AZURE_SUBSCRIPTION_IDS",
            "sub-1,sub'2,sub 3",
            'AZURE_SUBSCRIPTION_IDS="sub-1,sub\'2,sub 3" is invalid: expected a comma list of Azure subscription '
            "ids (GUIDs such as 00000000-0000-0000-0000-000000000000) (\"sub'2\", 'sub 3' are not).",
        ),
        (
            "AWS_USAGE_REGIONS",
            "us-east-1, moon-1",
            "AWS_USAGE_REGIONS='us-east-1, moon-1' is invalid: expected a comma list of AWS region codes such as "
            "us-east-1 ('moon-1' is not).",
        ),
        (
            "AWS_USAGE_REGIONS",
            " , ",
            "AWS_USAGE_REGIONS=' , ' is invalid: expected a comma list of AWS region codes such as us-east-1.",
        ),
        (
            "AWS_MAX_ATTEMPTS",
            "3.5",
            "AWS_MAX_ATTEMPTS='3.5' is invalid: expected a whole number from 1 to 20.",
        ),
        (
            "GCP_BILLING_DETAILED",
            "detailed",
            "GCP_BILLING_DETAILED='detailed' is invalid: expected true or false (also 1/0, yes/no, on/off).",
        ),
    ],
)
def test_the_whole_message_names_the_variable_the_value_and_the_fix(name, value, message):
    with pytest.raises(SettingsError) as info:
        get_settings(overrides={name: value})
    assert str(info.value) == message


@pytest.mark.parametrize(
    "name, value, field, parsed",
    [
        ("AWS_USAGE_REGIONS", " eu-west-1 ,us-east-1,", "aws_usage_regions", ("eu-west-1", "us-east-1")),
        ("GCP_MONITORING_PROJECTS", "shop-one , shop-two", "gcp_monitoring_projects", ("shop-one", "shop-two")),
        (
            "AZURE_SUBSCRIPTION_IDS",
            " 00000000-0000-4000-8000-000000000001 ,00000000-0000-4000-8000-000000000002",
            "azure_subscription_ids",
            ("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"),
        ),
    ],
)
def test_spaces_around_list_items_are_trimmed(name, value, field, parsed):
    assert getattr(get_settings(overrides={name: value}), field) == parsed


def test_a_secret_is_never_shown_in_a_settings_error():
    from finops_pipeline.settings import SettingsError as Error

    assert str(Error("AZURE_CLIENT_SECRET", "s3cr3t", "a client secret")) == (
        "AZURE_CLIENT_SECRET=<secret> is invalid: expected a client secret."
    )


def test_partitions_start_on_the_start_date_or_the_default_with_a_warning(tmp_path):
    from finops_pipeline.settings import partition_start_date

    no_env = {"FINOPS_ENV_FILE": str(tmp_path / "no.env")}
    assert partition_start_date({**no_env, "FINOPS_START_DATE": " 2025-06-01 "}) == date(2025, 6, 1)
    assert partition_start_date({**no_env, "FINOPS_START_DATE": " "}) == date(2026, 1, 1)
    with pytest.warns(UserWarning) as warned:
        assert partition_start_date({**no_env, "FINOPS_START_DATE": "2026-13-01"}) == date(2026, 1, 1)
    assert str(warned[0].message) == (
        "FINOPS_START_DATE='2026-13-01' is invalid: expected a date as YYYY-MM-DD, e.g. 2026-01-01. "
        "Partitions start at 2026-01-01 until it is fixed."
    )


_AZURE_EXPORT_FORM = (
    "the export's folder as a Blob URL, https://<account>.blob.core.windows.net/<container>/<directory>/"
    "<export-name> (the storage account, container, directory and export name of the Cost Management export; "
    "an emulator's path-style URL http://127.0.0.1:<port>/<account>/<container>/... also works)"
)


@pytest.mark.parametrize(
    "variables, message",
    [
        (
            {"GCP_BILLING_DETAILED_TABLE": "billing.gcp_billing_export_resource_v1"},
            "GCP_BILLING_DETAILED_TABLE='billing.gcp_billing_export_resource_v1' is invalid: expected a BigQuery "
            "table name (letters, digits, underscores, hyphens), e.g. "
            "gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9.",
        ),
        (
            {"GCP_COST_SOURCE": "export", "GCP_BILLING_ACCOUNT_ID": "01A2B3-C4D5E6"},
            "GCP_BILLING_DETAILED_TABLE='' is invalid: expected the detailed usage cost export table (Billing -> "
            "Billing export -> BigQuery export -> Detailed usage cost), e.g. "
            "gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9, or set GCP_BILLING_ACCOUNT_ID "
            "(01A2B3-C4D5E6-F7A8B9) to derive it, or GCP_COST_SOURCE=api.",
        ),
        (
            {"AWS_COST_SOURCE": "cur"},
            "AWS_COST_SOURCE='cur' is invalid: expected api (the query API, the default) or export (the native "
            "billing export).",
        ),
        (
            {"AWS_COST_SOURCE": "export"},
            "AWS_COST_SOURCE='export' is invalid: expected api, or AWS_EXPORT_URI set to the export's root "
            "(s3://<bucket>/<prefix>/<export-name>) when AWS_COST_SOURCE=export.",
        ),
        (
            {"AWS_COST_SOURCE": "export", "AWS_EXPORT_URI": "s3://Billing/focus"},
            "AWS_EXPORT_URI='s3://Billing/focus' is invalid: expected the export's root as "
            "s3://<bucket>/<prefix>/<export-name> (as AWS Data Exports writes it).",
        ),
        (
            {"AZURE_COST_SOURCE": "export"},
            f"AZURE_EXPORT_URI='' is invalid: expected {_AZURE_EXPORT_FORM} when AZURE_COST_SOURCE=export.",
        ),
        (
            {"AZURE_COST_SOURCE": "export", "AZURE_EXPORT_URI": "https://acct.blob.core.windows.net/Costs/d/focus"},
            "AZURE_EXPORT_URI='https://acct.blob.core.windows.net/Costs/d/focus' is invalid: expected "
            f"{_AZURE_EXPORT_FORM}; 'Costs' is not a container name (3-63 lowercase letters, digits, hyphens).",
        ),
        (
            {"FINOPS_RECONCILE_TOLERANCE_AMOUNT": "1 cent"},
            "FINOPS_RECONCILE_TOLERANCE_AMOUNT='1 cent' is invalid: expected an amount such as 0.01.",
        ),
        (
            {"FINOPS_RECONCILE_TOLERANCE_AMOUNT": "-0.01"},
            "FINOPS_RECONCILE_TOLERANCE_AMOUNT='-0.01' is invalid: expected an amount of 0 or more, such as 0.01.",
        ),
        (
            {"FINOPS_RECONCILE_TOLERANCE_AMOUNT": "NaN"},
            "FINOPS_RECONCILE_TOLERANCE_AMOUNT='NaN' is invalid: expected an amount such as 0.01.",
        ),
        (
            {"FINOPS_RECONCILE_TOLERANCE_AMOUNT": "Infinity"},
            "FINOPS_RECONCILE_TOLERANCE_AMOUNT='Infinity' is invalid: expected an amount such as 0.01.",
        ),
    ],
)
def test_cost_source_export_and_tolerance_settings_name_the_variable_and_the_fix(variables, message):
    with pytest.raises(SettingsError) as info:
        get_settings(overrides=variables)
    assert str(info.value) == message


def test_cost_sources_and_export_locations_that_are_usable():
    settings = get_settings(
        overrides={
            "AWS_COST_SOURCE": " Export ",
            "AWS_EXPORT_URI": "s3://acme-billing/exports/focus-daily/",
            "AZURE_COST_SOURCE": "export",
            "AZURE_EXPORT_URI": "https://acmebilling.blob.core.windows.net/costs/daily/focus-export/",
            "GCP_COST_SOURCE": "export",
            "GCP_BILLING_ACCOUNT_ID": "01A2B3-C4D5E6-F7A8B9",
            "FINOPS_RECONCILE_TOLERANCE_AMOUNT": " 0.50 ",
        }
    )
    assert settings.aws_export_uri == "s3://acme-billing/exports/focus-daily"
    assert settings.azure_export_uri == "https://acmebilling.blob.core.windows.net/costs/daily/focus-export"
    assert [settings.cost_source(p) for p in ("aws", "gcp", "azure")] == ["export", "export", "export"]
    # GCP's export is a BigQuery table read by query; AWS's and Azure's are files with manifests.
    assert [settings.reads_export_files(p) for p in ("aws", "gcp", "azure")] == [True, False, True]
    assert settings.reconcile_tolerance_amount == "0.50"
    blank = get_settings(overrides={"AWS_EXPORT_URI": " ", "AZURE_EXPORT_URI": "", "GCP_BILLING_DETAILED_TABLE": ""})
    assert (blank.aws_export_uri, blank.azure_export_uri, blank.gcp_billing_detailed_table) == (None, None, None)
    assert [blank.cost_source(p) for p in ("aws", "gcp", "azure")] == ["api", "api", "api"]
