"""Materializing assets in tests the way the code location runs them: with its resources;
run tags for a range of days; a simulated cloud's variables put in a test's environment."""

import os
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import dagster
import pytest

from finops_pipeline.definitions import RESOURCES


def materialize(assets, **kwargs):
    """``dagster.materialize`` with the code location's resources; ``resources=`` overrides some."""
    return dagster.materialize(assets, resources={**RESOURCES, **kwargs.pop("resources", {})}, **kwargs)


def range_tags(start: date, end: date) -> dict[str, str]:
    """Tags of one run over the daily partitions [start, end) (Dagster's range names its last day)."""
    return {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": (end - timedelta(days=1)).isoformat(),
    }


# Variables that would point a test at a real cloud or at the developer's own data.
LEAKY_PREFIXES = ("AWS_", "GCP_", "GOOGLE_", "AZURE_", "FINOPS_", "USAGE_", "DAGSTER_HOME")


def isolate_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No cloud settings and a private warehouse under ``home`` (``home/data``)."""
    for name in list(os.environ):
        if name.startswith(LEAKY_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FINOPS_ENV_FILE", str(home / "no.env"))
    monkeypatch.setenv("FINOPS_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def set_environment(monkeypatch: pytest.MonkeyPatch, variables: Mapping[str, str]) -> None:
    """Put ``variables`` in the process environment until the test ends."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def retried_at_once(raw_asset: dagster.AssetsDefinition) -> dagster.AssetsDefinition:
    """The raw asset's own body and retry count, retried without its policy's delay (60 s and
    up), so a test sees Dagster's retries at once. Whether a failure may be retried stays the
    product's decision (``Failure(allow_retries=...)`` raised by the body)."""
    policy = raw_asset.op.retry_policy
    return dagster.asset(
        name=raw_asset.key.path[-1],
        partitions_def=raw_asset.partitions_def,
        retry_policy=dagster.RetryPolicy(max_retries=policy.max_retries, delay=0),
    )(raw_asset.op.compute_fn.decorated_fn)
