"""Typed settings, read from the environment and an optional `.env` file when asked for.

Nothing is read at import time: call :func:`get_settings` where a value is needed.
The process environment wins over `.env` (path: ``FINOPS_ENV_FILE``, default ``./.env``).
An invalid value raises :class:`SettingsError` naming the variable, the value and what
is allowed; it is the one configuration error of every cloud, raised before any call.
List settings use each item once (first-seen order); ``Settings.repeated_items`` says
what was dropped. Secrets are never stored here: the SDKs read them from their own
credential chains (``AWS_*``, ``AZURE_*``, ``GOOGLE_*`` variables of `.env` are put into
the process environment for them); we only record whether they are present.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Callable, ClassVar, Mapping

from dagster import ConfigurableResource
from dotenv import dotenv_values

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# Variables whose values are secret: settings report only whether they are set.
SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CONNECTION_STRING",
)


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


def _int(minimum: int, maximum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(name, raw, f"a whole number from {minimum} to {maximum}") from None
        if not minimum <= value <= maximum:
            raise SettingsError(name, raw, f"a whole number from {minimum} to {maximum}")
        return value

    return parse


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


def _items(raw: str) -> list[str]:
    return [x.strip() for x in raw.split(",") if x.strip()]


def _unique(items: list[str], key: Callable[[str], str] = str) -> tuple[str, ...]:
    """Each item once, first spelling and position kept (a repeat would double cost and metrics)."""
    first: dict[str, str] = {}
    for item in items:
        first.setdefault(key(item), item)
    return tuple(first.values())


def _list(name: str, raw: str) -> tuple[str, ...]:
    items = _items(raw)
    for item in items:
        if any(c.isspace() for c in item):
            raise SettingsError(name, raw, "a comma-separated list without spaces inside items")
    return _unique(items)


def _ids(pattern: re.Pattern, allowed: str, key: Callable[[str], str] = str) -> Callable[[str, str], tuple[str, ...]]:
    """A comma list whose every item matches ``pattern``, repeats dropped (compared by ``key``)."""

    def parse(name: str, raw: str) -> tuple[str, ...]:
        items = _items(raw)
        bad = [item for item in items if not pattern.match(item)]
        if bad:
            raise SettingsError(
                name,
                raw,
                f"a comma list of {allowed} ({', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not)",
            )
        return _unique(items, key)

    return parse


def _id(pattern: re.Pattern, allowed: str) -> Callable[[str, str], str | None]:
    def parse(name: str, raw: str) -> str | None:
        value = raw.strip()
        if value and not pattern.match(value):
            raise SettingsError(name, raw, allowed)
        return value or None

    return parse


# Google Cloud project ids start with a lowercase letter, hold lowercase letters, digits or
# hyphens, 6 to 30 characters (gcloud projects create, PROJECT_ID), no trailing hyphen; legacy
# domain-scoped ids carry a "domain:" prefix.
_GCP_PROJECT = re.compile(r"^(?:[a-z][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_GCP_PROJECT_FORM = "(6-30 lowercase letters, digits or hyphens, starting with a letter, e.g. shop-prod)"
_GCP_PROJECT_ALLOWED = f"Google Cloud project ids {_GCP_PROJECT_FORM}"
_GCP_ONE_PROJECT_ALLOWED = f"a Google Cloud project id {_GCP_PROJECT_FORM}"
# Azure: a subscription id is a GUID; ARM treats resource ids case-insensitively in requests
# (azure-resource-manager-rpc, resource-api-reference.md), so repeats are found ignoring case.
_AZURE_SUBSCRIPTION = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_AZURE_SUBSCRIPTION_ALLOWED = "Azure subscription ids (GUIDs such as 00000000-0000-0000-0000-000000000000)"
_AZURE_ONE_SUBSCRIPTION_ALLOWED = "an Azure subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)"
_AZURE_RESOURCE_ID = re.compile(
    r"^/subscriptions/[^/\s'\"]+/resourceGroups/[^/\s'\"]+/providers/[^\s'\"]+$", re.IGNORECASE
)

# BigQuery table names: letters, digits, underscores, hyphens (BigQuery docs, Table naming).
_BQ_TABLE = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")
# A Cloud Billing account id: 01A2B3-C4D5E6-F7A8B9.
_GCP_BILLING_ACCOUNT = re.compile(r"^[0-9A-Fa-f]{6}-[0-9A-Fa-f]{6}-[0-9A-Fa-f]{6}$")


def _bq_table(name: str, raw: str) -> str | None:
    value = raw.strip()
    if value and not _BQ_TABLE.match(value):
        raise SettingsError(
            name,
            raw,
            "a BigQuery table name (letters, digits, underscores, hyphens), e.g. "
            "gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9",
        )
    return value or None


def _lake_uri(name: str, raw: str) -> str | None:
    from finops_pipeline.warehouse.storage import URI_FORMS, LakeUriError, parse_lake_uri, redacted

    value = raw.strip()
    if not value:
        return None
    try:
        parse_lake_uri(value)
    except LakeUriError as exc:
        raise SettingsError(name, redacted(raw), f"{URI_FORMS}: {exc.reason}") from None
    return value


_AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")


# A storage container name: 3-63 lowercase letters, digits and single hyphens ("Naming and Referencing
# Containers, Blobs, and Metadata").
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_AZURE_EXPORT_URI_ALLOWED = (
    "the export's folder as a Blob URL, https://<account>.blob.core.windows.net/<container>/<directory>/"
    "<export-name> (the storage account, container, directory and export name of the Cost Management "
    "export; an emulator's path-style URL http://127.0.0.1:<port>/<account>/<container>/... also works)"
)


def _azure_export_uri(name: str, raw: str) -> str | None:
    """The export folder URL, checked now: http(s), a host, a valid container and a folder below it."""
    value = raw.strip().rstrip("/")
    if not value:
        return None
    from finops_pipeline.clouds.azure.export import parse_export_uri

    try:
        parse_export_uri(value)
    except ValueError as exc:
        raise SettingsError(name, raw, f"{_AZURE_EXPORT_URI_ALLOWED}; {exc}") from None
    return value


def _aws_region(name: str, raw: str) -> str:
    value = raw.strip()
    if not _AWS_REGION.match(value):
        raise SettingsError(name, raw, "an AWS region code such as us-east-1 or eu-west-2")
    return value


def _aws_regions(name: str, raw: str) -> tuple[str, ...]:
    regions = _items(raw)
    bad = [r for r in regions if not _AWS_REGION.match(r)]
    if bad or not regions:
        shown = f" ({', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not)" if bad else ""
        raise SettingsError(name, raw, f"a comma list of AWS region codes such as us-east-1{shown}")
    return _unique(regions)


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,64}$")


def _role_name(name: str, raw: str) -> str | None:
    value = raw.strip()
    if value and not _ROLE_NAME.match(value):
        raise SettingsError(name, raw, "an IAM role name such as OrganizationAccountAccessRole")
    return value or None


_CE_DIMENSIONS = {
    "AZ",
    "INSTANCE_TYPE",
    "LINKED_ACCOUNT",
    "OPERATION",
    "PURCHASE_TYPE",
    "REGION",
    "SERVICE",
    "USAGE_TYPE",
    "USAGE_TYPE_GROUP",
    "RECORD_TYPE",
    "OPERATING_SYSTEM",
    "TENANCY",
    "PLATFORM",
    "LEGAL_ENTITY_NAME",
    "DEPLOYMENT_OPTION",
    "DATABASE_ENGINE",
    "INSTANCE_TYPE_FAMILY",
    "BILLING_ENTITY",
    "RESERVATION_ID",
    "SAVINGS_PLAN_ARN",
}


def _ce_group_by(name: str, raw: str) -> tuple[str, ...]:
    dims = _unique([d.upper() for d in _list(name, raw)])
    if not 1 <= len(dims) <= 2 or any(d not in _CE_DIMENSIONS for d in dims):
        raise SettingsError(name, raw, "one or two Cost Explorer dimensions, e.g. SERVICE,LINKED_ACCOUNT")
    return dims


COST_SOURCES = ("api", "export")


def _cost_source(name: str, raw: str) -> str:
    value = raw.strip().lower() or "api"
    if value not in COST_SOURCES:
        raise SettingsError(name, raw, "api (the query API, the default) or export (the native billing export)")
    return value


# An S3 URI of an export's root: bucket (S3 bucket naming rules), optional prefix, export name.
_S3_EXPORT_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^/\s]+)+/?$")


def _s3_export_uri(name: str, raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not _S3_EXPORT_URI.match(value):
        raise SettingsError(
            name, raw, "the export's root as s3://<bucket>/<prefix>/<export-name> (as AWS Data Exports writes it)"
        )
    return value.rstrip("/")


def _decimal_text(name: str, raw: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise SettingsError(name, raw, "an amount such as 0.01") from None
    if not value.is_finite():  # NaN cannot be compared (InvalidOperation); Infinity accepts any gap
        raise SettingsError(name, raw, "an amount such as 0.01")
    if value < 0:
        raise SettingsError(name, raw, "an amount of 0 or more, such as 0.01")
    return str(value)


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
    aws_cost_source: str = "api"  # api (Cost Explorer) | export (AWS Data Exports in S3)
    aws_export_uri: str | None = None  # s3://bucket/prefix/export-name: the export's root

    # GCP
    gcp_usage_enabled: bool = False
    gcp_project_id: str | None = None
    gcp_monitoring_projects: tuple[str, ...] = ()
    gcp_billing_account_id: str | None = None
    gcp_billing_project_id: str | None = None
    gcp_billing_dataset: str | None = None
    gcp_billing_table: str | None = None
    gcp_billing_detailed: bool = False
    gcp_cost_source: str = "api"  # api: the billing query above | export: the detailed export's FOCUS columns
    gcp_billing_detailed_table: str | None = None  # the detailed export table (export source)
    gcp_billing_max_bytes: int = 10 * 1024**3
    google_application_credentials: str | None = None
    gcp_monitoring_endpoint: str | None = None  # host:port of a non-Google endpoint (simulator)
    gcp_bigquery_endpoint: str | None = None  # http(s) URL of a non-Google endpoint (simulator)
    gcp_retry_deadline_seconds: float = 300.0  # how long one Monitoring call or BigQuery query keeps retrying

    # Azure
    azure_usage_enabled: bool = False
    azure_subscription_id: str | None = None
    azure_subscription_ids: tuple[str, ...] = ()
    azure_tenant_id: str | None = None
    azure_resource_ids: tuple[str, ...] = ()
    azure_max_retry_wait_seconds: int = 300
    azure_resource_manager_endpoint: str | None = None  # non-Azure endpoint (simulator)
    azure_cost_source: str = "api"  # api (Cost Management query) | export (FocusCost export in Blob Storage)
    azure_export_uri: str | None = None  # the export's folder: https://<account>.blob.core.windows.net/<c>/<dir>/<name>

    # The warehouse and the schedule.
    data_dir: Path = Path("data")
    start_date: date = date(2026, 1, 1)
    restatement_days: int = 3  # every cloud re-pulls at least this many days before yesterday
    aws_restatement_settle_day: int = 15  # the previous month is re-pulled through this day
    azure_restatement_close_day: int = 10  # the previous month is re-pulled through this day
    gcp_restatement_lookback_days: int = 35  # export days checked for newer rows
    lake_uri: str | None = None  # FINOPS_LAKE_URI: an object-store lake (default: <data_dir>/lake)
    predictions_dir: Path | None = None
    metrics_coverage_floor: float = 0.9
    metrics_concurrency: int = 4
    pacing_enabled: bool = True  # client-side pacing to the providers' documented quotas
    tag_match_key: str = "finops_id"
    rules_file: Path | None = None  # a user's own underutilization_rules.csv
    # Export totals may differ from the API's by this fraction or this amount (the larger) per day.
    reconcile_tolerance_pct: float = 0.5
    reconcile_tolerance_amount: str = "0.01"
    anomaly_thresholds_file: Path | None = None  # a user's own anomaly_thresholds.csv

    # List variable -> the repeated items dropped from it (doctor reports them).
    repeated_items: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def lake_root(self) -> str:
        """The lake: FINOPS_LAKE_URI, else ``<data_dir>/lake``."""
        return self.lake_uri or str(self.data_dir / "lake")

    @property
    def pacing_dir(self) -> Path | None:
        """Where the runs of this deployment share their quota logs (None: pacing is off)."""
        return self.data_dir / "pacing" if self.pacing_enabled else None

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "finops.duckdb"

    @property
    def predictions_path(self) -> Path:
        return self.predictions_dir or self.data_dir / "predictions"

    def provider_enabled(self, provider: str) -> bool:
        """True when the usage integration and this cloud are both switched on."""
        flag = {"aws": self.aws_usage_enabled, "gcp": self.gcp_usage_enabled, "azure": self.azure_usage_enabled}[
            provider
        ]
        return self.usage_integration_enabled and flag

    def disabled_reason(self, provider: str) -> str | None:
        """Why a cloud is skipped, in words an operator can act on; None when enabled."""
        if not self.usage_integration_enabled:
            return "USAGE_INTEGRATION_ENABLED is false"
        if not self.provider_enabled(provider):
            return f"{provider.upper()}_USAGE_ENABLED is not true"
        return None

    def cost_source(self, provider: str) -> str:
        """``api`` or ``export``: where a cloud's cost_daily rows come from (<CLOUD>_COST_SOURCE)."""
        return getattr(self, f"{provider}_cost_source", "api")

    def reads_export_files(self, provider: str) -> bool:
        """Whether a cloud's cost comes from its native export's files and their manifests (AWS
        Data Exports, Azure FocusCost). GCP's export is a BigQuery table read by query, with its
        own restatement (export_time), so GCP_COST_SOURCE=export stays on the query path."""
        return self.cost_source(provider) == "export" and provider in ("aws", "azure")

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)


# variable -> (field, parser). Parsers receive (name, raw) and raise SettingsError.
_VARIABLES: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "USAGE_INTEGRATION_ENABLED": ("usage_integration_enabled", _bool),
    "USAGE_CACHE_TTL_SECONDS": ("usage_cache_ttl_seconds", _int(0, 7 * 24 * 3600)),
    "USAGE_CACHE_MAX_ENTRIES": ("usage_cache_max_entries", _int(1, 1_000_000)),
    "AWS_USAGE_ENABLED": ("aws_usage_enabled", _bool),
    "AWS_REGION": ("aws_region", _aws_region),
    "AWS_COST_GROUP_BY": ("aws_cost_group_by", _ce_group_by),
    "AWS_COST_WITH_RESOURCES": ("aws_cost_with_resources", _bool),
    "AWS_COST_FORECAST": ("aws_cost_forecast", _bool),
    "AWS_MAX_ATTEMPTS": ("aws_max_attempts", _int(1, 20)),
    "AWS_ROLE_ARNS": (
        "aws_role_arns",
        _ids(_ROLE_ARN, "IAM role ARNs such as arn:aws:iam::123456789012:role/finops-read"),
    ),
    "AWS_ORG_ROLE_NAME": ("aws_org_role_name", _role_name),
    "AWS_COST_SOURCE": ("aws_cost_source", _cost_source),
    "AWS_EXPORT_URI": ("aws_export_uri", _s3_export_uri),
    "GCP_USAGE_ENABLED": ("gcp_usage_enabled", _bool),
    "GCP_PROJECT_ID": ("gcp_project_id", _id(_GCP_PROJECT, _GCP_ONE_PROJECT_ALLOWED)),
    "GCP_MONITORING_PROJECTS": ("gcp_monitoring_projects", _ids(_GCP_PROJECT, _GCP_PROJECT_ALLOWED)),
    "GCP_BILLING_ACCOUNT_ID": ("gcp_billing_account_id", lambda n, v: v.strip() or None),
    "GCP_BILLING_PROJECT_ID": ("gcp_billing_project_id", _id(_GCP_PROJECT, _GCP_ONE_PROJECT_ALLOWED)),
    "GCP_BILLING_DATASET": ("gcp_billing_dataset", lambda n, v: v.strip() or None),
    "GCP_BILLING_TABLE": ("gcp_billing_table", lambda n, v: v.strip() or None),
    "GCP_BILLING_DETAILED": ("gcp_billing_detailed", _bool),
    "GCP_COST_SOURCE": ("gcp_cost_source", _cost_source),
    "GCP_BILLING_DETAILED_TABLE": ("gcp_billing_detailed_table", _bq_table),
    "GCP_BILLING_MAX_BYTES": ("gcp_billing_max_bytes", _int(1, 1024**5)),
    "GOOGLE_APPLICATION_CREDENTIALS": ("google_application_credentials", lambda n, v: v.strip() or None),
    "GCP_MONITORING_ENDPOINT": ("gcp_monitoring_endpoint", lambda n, v: v.strip() or None),
    "GCP_BIGQUERY_ENDPOINT": ("gcp_bigquery_endpoint", lambda n, v: v.strip() or None),
    "AZURE_USAGE_ENABLED": ("azure_usage_enabled", _bool),
    "AZURE_SUBSCRIPTION_ID": ("azure_subscription_id", _id(_AZURE_SUBSCRIPTION, _AZURE_ONE_SUBSCRIPTION_ALLOWED)),
    "AZURE_SUBSCRIPTION_IDS": (
        "azure_subscription_ids",
        _ids(_AZURE_SUBSCRIPTION, _AZURE_SUBSCRIPTION_ALLOWED, str.lower),
    ),
    "AZURE_TENANT_ID": ("azure_tenant_id", lambda n, v: v.strip() or None),
    "AZURE_RESOURCE_IDS": (
        "azure_resource_ids",
        _ids(
            _AZURE_RESOURCE_ID,
            "ARM resource ids (/subscriptions/<id>/resourceGroups/<group>/providers/<type>/<name>)",
            str.lower,
        ),
    ),
    "GCP_RETRY_DEADLINE_SECONDS": ("gcp_retry_deadline_seconds", _float(0.0, 3600.0)),
    "AZURE_MAX_RETRY_WAIT_SECONDS": ("azure_max_retry_wait_seconds", _int(0, 3600)),
    "AZURE_RESOURCE_MANAGER_ENDPOINT": ("azure_resource_manager_endpoint", lambda n, v: v.strip() or None),
    "AZURE_COST_SOURCE": ("azure_cost_source", _cost_source),
    "AZURE_EXPORT_URI": ("azure_export_uri", _azure_export_uri),
    "FINOPS_DATA_DIR": ("data_dir", lambda n, v: Path(v.strip() or "data")),
    "FINOPS_LAKE_URI": ("lake_uri", _lake_uri),
    "FINOPS_START_DATE": ("start_date", _date),
    "FINOPS_RESTATEMENT_DAYS": ("restatement_days", _int(0, 62)),
    "AWS_RESTATEMENT_SETTLE_DAY": ("aws_restatement_settle_day", _int(1, 28)),
    "AZURE_RESTATEMENT_CLOSE_DAY": ("azure_restatement_close_day", _int(1, 28)),
    "GCP_RESTATEMENT_LOOKBACK_DAYS": ("gcp_restatement_lookback_days", _int(1, 400)),
    "FINOPS_PREDICTIONS_DIR": ("predictions_dir", lambda n, v: Path(v.strip()) if v.strip() else None),
    "FINOPS_METRICS_COVERAGE_FLOOR": ("metrics_coverage_floor", _float(0.0, 1.0)),
    "FINOPS_METRICS_CONCURRENCY": ("metrics_concurrency", _int(1, 32)),
    "FINOPS_PACING_ENABLED": ("pacing_enabled", _bool),
    "FINOPS_TAG_MATCH_KEY": ("tag_match_key", lambda n, v: v.strip() or "finops_id"),
    "FINOPS_RULES_FILE": ("rules_file", lambda n, v: Path(v.strip()) if v.strip() else None),
    "FINOPS_RECONCILE_TOLERANCE_PCT": ("reconcile_tolerance_pct", _float(0.0, 100.0)),
    "FINOPS_RECONCILE_TOLERANCE_AMOUNT": ("reconcile_tolerance_amount", _decimal_text),
    "FINOPS_ANOMALY_THRESHOLDS_FILE": (
        "anomaly_thresholds_file",
        lambda n, v: Path(v.strip()) if v.strip() else None,
    ),
}


# Variables of `.env` that the SDKs' own credential chains read from the process environment.
SDK_VARIABLE_PREFIXES = ("AWS_", "AZURE_", "GOOGLE_")

# List variable -> how two of its items are compared (ARM ids and GUIDs ignore case).
_LIST_KEYS: dict[str, Callable[[str], str]] = {
    "AWS_USAGE_REGIONS": str,
    "GCP_MONITORING_PROJECTS": str,
    "AZURE_SUBSCRIPTION_IDS": str.lower,
    "AZURE_RESOURCE_IDS": str.lower,
    "AWS_COST_GROUP_BY": str.upper,
    "AWS_ROLE_ARNS": str,
}


def read_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables in effect: `.env` file values overlaid by the process environment.

    Reading the process environment (``environ`` None) also puts the `.env` file's
    ``AWS_*``, ``AZURE_*`` and ``GOOGLE_*`` variables into ``os.environ`` where the process
    has none, so boto3, azure-identity and google-auth find credentials kept in `.env`.
    """
    env = dict(os.environ if environ is None else environ)
    env_file = Path(env.get("FINOPS_ENV_FILE", ".env"))
    merged: dict[str, str] = {}
    if env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    if environ is None:
        for name, value in merged.items():
            if name.startswith(SDK_VARIABLE_PREFIXES) and name not in os.environ:
                os.environ[name] = value
    merged.update(env)
    return merged


def _repeated(env: Mapping[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found = []
    for name, key in _LIST_KEYS.items():
        seen: set[str] = set()
        dropped = []
        for item in _items(env.get(name, "")):
            if key(item) in seen:
                dropped.append(item)
            seen.add(key(item))
        if dropped:
            found.append((name, tuple(dropped)))
    return tuple(found)


def partition_start_date(environ: Mapping[str, str] | None = None) -> date:
    """FINOPS_START_DATE for the partitions definitions, which are built when the code location
    loads: only this variable is read, and an invalid value falls back to the default (with a
    warning) so the location still loads; every run then fails on it with the fix."""
    raw = read_environment(environ).get("FINOPS_START_DATE")
    if raw is None or not raw.strip():
        return Settings.start_date
    try:
        return _date("FINOPS_START_DATE", raw)
    except SettingsError as exc:
        warnings.warn(f"{exc} Partitions start at {Settings.start_date} until it is fixed.", stacklevel=2)
        return Settings.start_date


def get_settings(environ: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings now (``overrides`` over the environment over `.env`)."""
    env = read_environment(environ)
    env.update(overrides or {})
    values: dict[str, object] = {}
    for name, (attr, parse) in _VARIABLES.items():
        if name in env:
            values[attr] = parse(name, env[name])
    region = values.get("aws_region", Settings.aws_region)
    if "AWS_USAGE_REGIONS" in env and env["AWS_USAGE_REGIONS"].strip():
        values["aws_usage_regions"] = _aws_regions("AWS_USAGE_REGIONS", env["AWS_USAGE_REGIONS"])
    else:
        values["aws_usage_regions"] = (region,)
    values["aws_credentials_in_env"] = bool(env.get("AWS_ACCESS_KEY_ID")) and bool(env.get("AWS_SECRET_ACCESS_KEY"))
    if not values.get("gcp_monitoring_projects") and values.get("gcp_project_id"):
        values["gcp_monitoring_projects"] = (values["gcp_project_id"],)
    if not values.get("azure_subscription_ids") and values.get("azure_subscription_id"):
        values["azure_subscription_ids"] = (values["azure_subscription_id"],)
    if values.get("azure_cost_source") == "export" and not values.get("azure_export_uri"):
        raise SettingsError(
            "AZURE_EXPORT_URI",
            env.get("AZURE_EXPORT_URI", ""),
            f"{_AZURE_EXPORT_URI_ALLOWED} when AZURE_COST_SOURCE=export",
        )
    values["repeated_items"] = _repeated(env)
    if values.get("aws_cost_source") == "export" and not values.get("aws_export_uri"):
        raise SettingsError(
            "AWS_COST_SOURCE",
            env["AWS_COST_SOURCE"],
            "api, or AWS_EXPORT_URI set to the export's root (s3://<bucket>/<prefix>/<export-name>) "
            "when AWS_COST_SOURCE=export",
        )
    _check_gcp_export(values)
    return Settings(**values)


def _check_gcp_export(values: Mapping[str, object]) -> None:
    """GCP_COST_SOURCE=export needs the detailed export table: named, or derived from the account."""
    if values.get("gcp_cost_source") != "export" or values.get("gcp_billing_detailed_table"):
        return
    if not _GCP_BILLING_ACCOUNT.match(str(values.get("gcp_billing_account_id") or "")):
        raise SettingsError(
            "GCP_BILLING_DETAILED_TABLE",
            "",
            "the detailed usage cost export table (Billing -> Billing export -> BigQuery export -> Detailed "
            "usage cost), e.g. gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9, or set "
            "GCP_BILLING_ACCOUNT_ID (01A2B3-C4D5E6-F7A8B9) to derive it, or GCP_COST_SOURCE=api",
        )


class SettingsResource(ConfigurableResource):
    """Settings as a Dagster resource (shown in the UI's resources view, overridable per run in
    the launchpad, swapped in tests). Each field stands for one of the README's variables
    (``VARIABLES``: field -> variable); a field left unset takes the variable from the
    environment or `.env`, a set field overrides it. Secrets are never fields: the SDKs read
    them from their credential chains."""

    VARIABLES: ClassVar[dict[str, str]] = {}

    def overrides(self) -> dict[str, str]:
        """The variables this resource sets, as the environment would spell them."""
        found = {}
        for field, variable in self.VARIABLES.items():
            value = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (list, tuple)):
                value = ",".join(value)
            found[variable] = str(value)
        return found


def settings_of(*resources: SettingsResource) -> Settings:
    """Settings for a run: the environment, overridden by what these resources set."""
    overrides: dict[str, str] = {}
    for resource in resources:
        overrides.update(resource.overrides())
    return get_settings(overrides=overrides)
