"""The AWS doubles for the operations tests: started once, pointed at by each test's environment."""

from datetime import datetime, timedelta, timezone

import pytest

from finops_pipeline.simulator.aws import serve_aws
from finops_pipeline.simulator.fleet import build_fleet

END = datetime.now(timezone.utc).date()
START = END - timedelta(days=3)


def range_tags(start=START, end=END) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": (end - timedelta(days=1)).isoformat(),
    }


@pytest.fixture(scope="package")
def fleet():
    return build_fleet()


@pytest.fixture(scope="package")
def aws_doubles(fleet):
    with serve_aws(fleet, START, END) as env:
        yield env


@pytest.fixture
def aws_env(aws_doubles, monkeypatch):
    for name, value in aws_doubles.items():
        monkeypatch.setenv(name, value)
    return aws_doubles
