"""Typed settings, read from the environment and an optional `.env` file when asked for.

Nothing is read at import time: call :func:`get_settings` where a value is needed.
The process environment wins over `.env` (path: ``FINOPS_ENV_FILE``, default ``./.env``).
An invalid value raises :class:`SettingsError` naming the variable, the value and what
is allowed. Secrets are never stored here: the SDKs read them from their own
credential chains; we only record whether they are present.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Callable, Mapping

from dotenv import dotenv_values

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Variables whose values are secret: settings report only whether they are set.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_CLIENT_SECRET")


class SettingsError(ValueError):
    """A configuration variable has a value we cannot use."""

    def __init__(self, name: str, value: str, allowed: str):
        shown = "<secret>" if name in SECRET_VARIABLES else repr(value)
        super().__init__(f"{name}={shown} is invalid: expected {allowed}.")
        self.name = name


def _bool(name: str, raw: str) -> bool:
    v = raw.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise SettingsError(name, raw, "true or false (also 1/0, yes/no, on/off)")


def _int(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(name, raw, f"a whole number >= {minimum}") from None
        if value < minimum:
            raise SettingsError(name, raw, f"a whole number >= {minimum}")
        return value

    return parse


def _day_of_month(name: str, raw: str) -> int:
    value = raw.strip()
    if not value.isdigit() or not 1 <= int(value) <= 28:
        raise SettingsError(name, raw, "a day of the month from 1 to 28")
    return int(value)


def _lookback_days(name: str, raw: str) -> int:
    value = raw.strip()
    if not value.isdigit() or not 1 <= int(value) <= 400:
        raise SettingsError(name, raw, "a number of days from 1 to 400")
    return int(value)


def _float(minimum: float, maximum: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise SettingsError(name, raw, f"a number from {minimum} to {maximum}") from None
        if not minimum <= value <= maximum:
            raise SettingsError(name, raw, f"a number from {minimum} to {maximum}")
        return value

    return parse


def _date(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise SettingsError(name, raw, "a date as YYYY-MM-DD, e.g. 2026-01-01") from None


def _list(name: str, raw: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in raw.split(",") if x.strip())
    for item in items:
        if any(c.isspace() for c in item):
            raise SettingsError(name, raw, "a comma-separated list without spaces inside items")
    return items


_AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")


def _aws_region(name: str, raw: str) -> str:
    value = raw.strip()
    if not _AWS_REGION.match(value):
        raise SettingsError(name, raw, "an AWS region code such as us-east-1 or eu-west-2")
    return value


def _aws_regions(name: str, raw: str) -> tuple[str, ...]:
    regions = _list(name, raw)
    bad = [r for r in regions if not _AWS_REGION.match(r)]
    if bad or not regions:
        raise SettingsError(name, raw, f"a comma list of AWS region codes such as us-east-1 ({bad} are not)")
    return regions


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,64}$")


def _role_arns(name: str, raw: str) -> tuple[str, ...]:
    arns = tuple(dict.fromkeys(_list(name, raw)))
    bad = [a for a in arns if not _ROLE_ARN.match(a)]
    if bad:
        raise SettingsError(name, raw, f"a comma list of IAM role ARNs such as "
                                       f"arn:aws:iam::123456789012:role/finops-read ({bad} are not)")
    return arns


def _role_name(name: str, raw: str) -> str | None:
    value = raw.strip()
    if value and not _ROLE_NAME.match(value):
        raise SettingsError(name, raw, "an IAM role name such as OrganizationAccountAccessRole")
    return value or None


_CE_DIMENSIONS = {
    "AZ", "INSTANCE_TYPE", "LINKED_ACCOUNT", "OPERATION", "PURCHASE_TYPE", "REGION",
    "SERVICE", "USAGE_TYPE", "USAGE_TYPE_GROUP", "RECORD_TYPE", "OPERATING_SYSTEM",
    "TENANCY", "PLATFORM", "LEGAL_ENTITY_NAME", "DEPLOYMENT_OPTION", "DATABASE_ENGINE",
    "INSTANCE_TYPE_FAMILY", "BILLING_ENTITY", "RESERVATION_ID", "SAVINGS_PLAN_ARN",
}


def _ce_group_by(name: str, raw: str) -> tuple[str, ...]:
    dims = tuple(d.upper() for d in _list(name, raw))
    if not 1 <= len(dims) <= 2 or any(d not in _CE_DIMENSIONS for d in dims):
        raise SettingsError(
            name, raw, "one or two Cost Explorer dimensions, e.g. SERVICE,LINKED_ACCOUNT"
        )
    return dims


@dataclass(frozen=True)
class Settings:
    """Every setting the pipeline and the usage API read. Build with :func:`get_settings`."""

    # The original usage integration.
    usage_integration_enabled: bool = True
    usage_cache_ttl_seconds: int = 3600
    usage_cache_max_entries: int = 1024

    # AWS
    aws_usage_enabled: bool = False
    aws_region: str = "us-east-1"
    aws_usage_regions: tuple[str, ...] = ("us-east-1",)
    aws_credentials_in_env: bool = False
    aws_cost_group_by: tuple[str, ...] = ("SERVICE", "LINKED_ACCOUNT")
    aws_cost_with_resources: bool = True
    aws_cost_forecast: bool = True
    aws_max_attempts: int = 8
    aws_role_arns: tuple[str, ...] = ()  # member accounts whose CloudWatch metrics are read
    aws_org_role_name: str | None = None  # assumed in every ACTIVE account of the organization

    # GCP
    gcp_usage_enabled: bool = False
    gcp_project_id: str | None = None
    gcp_monitoring_projects: tuple[str, ...] = ()
    gcp_billing_account_id: str | None = None
    gcp_billing_project_id: str | None = None
    gcp_billing_dataset: str | None = None
    gcp_billing_table: str | None = None
    gcp_billing_detailed: bool = False
    gcp_billing_max_bytes: int = 10 * 1024**3
    google_application_credentials: str | None = None
    gcp_monitoring_endpoint: str | None = None  # host:port of a non-Google endpoint (simulator)
    gcp_bigquery_endpoint: str | None = None  # http(s) URL of a non-Google endpoint (simulator)

    # Azure
    azure_usage_enabled: bool = False
    azure_subscription_id: str | None = None
    azure_subscription_ids: tuple[str, ...] = ()
    azure_tenant_id: str | None = None
    azure_resource_ids: tuple[str, ...] = ()
    azure_max_retry_wait_seconds: int = 300
    azure_resource_manager_endpoint: str | None = None  # non-Azure endpoint (simulator)

    # The warehouse and the schedule.
    data_dir: Path = Path("data")
    start_date: date = date(2026, 1, 1)
    restatement_days: int = 3  # every cloud re-pulls at least this many days before yesterday
    aws_restatement_settle_day: int = 15  # the previous month is re-pulled through this day
    azure_restatement_close_day: int = 10  # the previous month is re-pulled through this day
    gcp_restatement_lookback_days: int = 35  # export days checked for newer rows
    predictions_dir: Path | None = None
    metrics_coverage_floor: float = 0.9
    metrics_concurrency: int = 4
    tag_match_key: str = "finops_id"
    rules_file: Path | None = None  # a user's own underutilization_rules.csv

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "finops.duckdb"

    @property
    def predictions_path(self) -> Path:
        return self.predictions_dir or self.data_dir / "predictions"

    def provider_enabled(self, provider: str) -> bool:
        """True when the usage integration and this cloud are both switched on."""
        flag = {"aws": self.aws_usage_enabled, "gcp": self.gcp_usage_enabled,
                "azure": self.azure_usage_enabled}[provider]
        return self.usage_integration_enabled and flag

    def disabled_reason(self, provider: str) -> str | None:
        """Why a cloud is skipped, in words an operator can act on; None when enabled."""
        if not self.usage_integration_enabled:
            return "USAGE_INTEGRATION_ENABLED is false"
        if not self.provider_enabled(provider):
            return f"{provider.upper()}_USAGE_ENABLED is not true"
        return None

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)


# variable -> (field, parser). Parsers receive (name, raw) and raise SettingsError.
_VARIABLES: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "USAGE_INTEGRATION_ENABLED": ("usage_integration_enabled", _bool),
    "USAGE_CACHE_TTL_SECONDS": ("usage_cache_ttl_seconds", _int(0)),
    "USAGE_CACHE_MAX_ENTRIES": ("usage_cache_max_entries", _int(1)),
    "AWS_USAGE_ENABLED": ("aws_usage_enabled", _bool),
    "AWS_REGION": ("aws_region", _aws_region),
    "AWS_COST_GROUP_BY": ("aws_cost_group_by", _ce_group_by),
    "AWS_COST_WITH_RESOURCES": ("aws_cost_with_resources", _bool),
    "AWS_COST_FORECAST": ("aws_cost_forecast", _bool),
    "AWS_MAX_ATTEMPTS": ("aws_max_attempts", _int(1)),
    "AWS_ROLE_ARNS": ("aws_role_arns", _role_arns),
    "AWS_ORG_ROLE_NAME": ("aws_org_role_name", _role_name),
    "GCP_USAGE_ENABLED": ("gcp_usage_enabled", _bool),
    "GCP_PROJECT_ID": ("gcp_project_id", lambda n, v: v.strip() or None),
    "GCP_MONITORING_PROJECTS": ("gcp_monitoring_projects", _list),
    "GCP_BILLING_ACCOUNT_ID": ("gcp_billing_account_id", lambda n, v: v.strip() or None),
    "GCP_BILLING_PROJECT_ID": ("gcp_billing_project_id", lambda n, v: v.strip() or None),
    "GCP_BILLING_DATASET": ("gcp_billing_dataset", lambda n, v: v.strip() or None),
    "GCP_BILLING_TABLE": ("gcp_billing_table", lambda n, v: v.strip() or None),
    "GCP_BILLING_DETAILED": ("gcp_billing_detailed", _bool),
    "GCP_BILLING_MAX_BYTES": ("gcp_billing_max_bytes", _int(1)),
    "GOOGLE_APPLICATION_CREDENTIALS": ("google_application_credentials", lambda n, v: v.strip() or None),
    "GCP_MONITORING_ENDPOINT": ("gcp_monitoring_endpoint", lambda n, v: v.strip() or None),
    "GCP_BIGQUERY_ENDPOINT": ("gcp_bigquery_endpoint", lambda n, v: v.strip() or None),
    "AZURE_USAGE_ENABLED": ("azure_usage_enabled", _bool),
    "AZURE_SUBSCRIPTION_ID": ("azure_subscription_id", lambda n, v: v.strip() or None),
    "AZURE_SUBSCRIPTION_IDS": ("azure_subscription_ids", _list),
    "AZURE_TENANT_ID": ("azure_tenant_id", lambda n, v: v.strip() or None),
    "AZURE_RESOURCE_IDS": ("azure_resource_ids", _list),
    "AZURE_MAX_RETRY_WAIT_SECONDS": ("azure_max_retry_wait_seconds", _int(0)),
    "AZURE_RESOURCE_MANAGER_ENDPOINT": ("azure_resource_manager_endpoint", lambda n, v: v.strip() or None),
    "FINOPS_DATA_DIR": ("data_dir", lambda n, v: Path(v.strip() or "data")),
    "FINOPS_START_DATE": ("start_date", _date),
    "FINOPS_RESTATEMENT_DAYS": ("restatement_days", _int(0)),
    "AWS_RESTATEMENT_SETTLE_DAY": ("aws_restatement_settle_day", _day_of_month),
    "AZURE_RESTATEMENT_CLOSE_DAY": ("azure_restatement_close_day", _day_of_month),
    "GCP_RESTATEMENT_LOOKBACK_DAYS": ("gcp_restatement_lookback_days", _lookback_days),
    "FINOPS_PREDICTIONS_DIR": ("predictions_dir", lambda n, v: Path(v.strip()) if v.strip() else None),
    "FINOPS_METRICS_COVERAGE_FLOOR": ("metrics_coverage_floor", _float(0.0, 1.0)),
    "FINOPS_METRICS_CONCURRENCY": ("metrics_concurrency", _int(1)),
    "FINOPS_TAG_MATCH_KEY": ("tag_match_key", lambda n, v: v.strip() or "finops_id"),
    "FINOPS_RULES_FILE": ("rules_file", lambda n, v: Path(v.strip()) if v.strip() else None),
}


def read_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables in effect: `.env` file values overlaid by the process environment."""
    env = dict(os.environ if environ is None else environ)
    env_file = Path(env.get("FINOPS_ENV_FILE", ".env"))
    merged: dict[str, str] = {}
    if env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(env)
    return merged


def get_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings now (environment over `.env`)."""
    env = read_environment(environ)
    values: dict[str, object] = {}
    for name, (attr, parse) in _VARIABLES.items():
        if name in env:
            values[attr] = parse(name, env[name])
    region = values.get("aws_region", Settings.aws_region)
    if "AWS_USAGE_REGIONS" in env and env["AWS_USAGE_REGIONS"].strip():
        values["aws_usage_regions"] = _aws_regions("AWS_USAGE_REGIONS", env["AWS_USAGE_REGIONS"])
    else:
        values["aws_usage_regions"] = (region,)
    values["aws_credentials_in_env"] = bool(env.get("AWS_ACCESS_KEY_ID")) and bool(
        env.get("AWS_SECRET_ACCESS_KEY")
    )
    if not values.get("gcp_monitoring_projects") and values.get("gcp_project_id"):
        values["gcp_monitoring_projects"] = (values["gcp_project_id"],)
    if not values.get("azure_subscription_ids") and values.get("azure_subscription_id"):
        values["azure_subscription_ids"] = (values["azure_subscription_id"],)
    return Settings(**values)
