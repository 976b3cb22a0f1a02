"""AWS settings as a Dagster resource (the README's AWS_* variables; credentials stay in the
default chain and are never a field)."""

from __future__ import annotations

from typing import ClassVar

from finops_pipeline.settings import SettingsResource


class AwsResource(SettingsResource):
    """AWS for the assets: an unset field takes its AWS_* variable from the environment."""

    VARIABLES: ClassVar[dict[str, str]] = {
        "usage_enabled": "AWS_USAGE_ENABLED",
        "region": "AWS_REGION",
        "usage_regions": "AWS_USAGE_REGIONS",
        "role_arns": "AWS_ROLE_ARNS",
        "org_role_name": "AWS_ORG_ROLE_NAME",
        "cost_group_by": "AWS_COST_GROUP_BY",
        "cost_with_resources": "AWS_COST_WITH_RESOURCES",
        "cost_forecast": "AWS_COST_FORECAST",
        "max_attempts": "AWS_MAX_ATTEMPTS",
        "restatement_settle_day": "AWS_RESTATEMENT_SETTLE_DAY",
        "cost_source": "AWS_COST_SOURCE",
        "export_uri": "AWS_EXPORT_URI",
    }

    usage_enabled: bool | None = None
    region: str | None = None
    usage_regions: list[str] | None = None
    role_arns: list[str] | None = None
    org_role_name: str | None = None
    cost_group_by: list[str] | None = None
    cost_with_resources: bool | None = None
    cost_forecast: bool | None = None
    max_attempts: int | None = None
    restatement_settle_day: int | None = None
    cost_source: str | None = None  # api | export
    export_uri: str | None = None  # s3://bucket/prefix/export-name
