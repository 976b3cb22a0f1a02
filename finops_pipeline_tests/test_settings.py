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
    s = get_settings({"AWS_REGION": "eu-west-1", "GCP_PROJECT_ID": "p1", "AZURE_SUBSCRIPTION_ID": "sub-1"})
    assert s.aws_usage_regions == ("eu-west-1",)
    assert s.gcp_monitoring_projects == ("p1",)
    assert s.azure_subscription_ids == ("sub-1",)
    s = get_settings({"AWS_USAGE_REGIONS": "us-east-1, eu-west-1", "GCP_MONITORING_PROJECTS": "a,b"})
    assert s.aws_usage_regions == ("us-east-1", "eu-west-1")
    assert s.gcp_monitoring_projects == ("a", "b")


@pytest.mark.parametrize(
    "name, value, allowed",
    [
        ("FINOPS_RESTATEMENT_DAYS", "three", "whole number"),
        ("USAGE_CACHE_TTL_SECONDS", "-5", "whole number >= 0"),
        ("AWS_USAGE_ENABLED", "maybe", "true or false"),
        ("FINOPS_START_DATE", "2026/01/01", "YYYY-MM-DD"),
        ("AWS_REGION", "narnia", "AWS region"),
        ("AWS_USAGE_REGIONS", "us-east-1,moon-1", "AWS region"),
        ("AWS_COST_GROUP_BY", "SERVICE,REGION,USAGE_TYPE", "one or two Cost Explorer dimensions"),
        ("FINOPS_METRICS_COVERAGE_FLOOR", "1.5", "from 0.0 to 1.0"),
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
