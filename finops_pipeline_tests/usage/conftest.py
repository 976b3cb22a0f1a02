"""The simulated clouds for the usage API tests: started once per module, put in the
environment of each test (the suite's autouse fixture clears cloud variables first)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from finops_pipeline_tests.runs import set_environment

TODAY = datetime.now(timezone.utc).date()
# Windows the tests and the documented examples ask for: the last 7 days and January 2026.
SERVED_START = TODAY - timedelta(days=8)
SERVED_END = TODAY + timedelta(days=1)


@pytest.fixture(scope="module")
def aws_served(fleet):
    from finops_pipeline.simulator.aws import serve_aws

    with serve_aws(fleet, SERVED_START, SERVED_END) as env:
        yield env


@pytest.fixture(scope="module")
def azure_served(fleet):
    from finops_pipeline.simulator.azure import serve_azure

    with serve_azure(fleet, SERVED_START, SERVED_END, export=False) as env:
        yield env


@pytest.fixture(scope="module")
def gcp_served(fleet):
    from finops_pipeline.simulator.gcp import serve_gcp

    with serve_gcp(fleet, SERVED_START, SERVED_END) as env:
        yield env


def fill_lake(settings, start, end) -> None:
    """Write what the AWS assets would write for days [start, end): cost_daily and metrics_hourly."""
    from finops_pipeline.clouds.aws.source import AwsSource
    from finops_pipeline.defs.partitions import day_start
    from finops_pipeline.warehouse.lake import Lake

    adapter = AwsSource.from_settings(settings)
    lake = Lake(settings.lake_root)
    fetched = adapter.fetch_cost(start, end)
    lake.write_partitions(
        "cost_daily", fetched.cost, expected=[{"provider": "aws", "usage_date": d} for d in fetched.days]
    )
    for day in fetched.days:
        with lake.open_partition("metrics_hourly", {"provider": "aws", "usage_date": day}) as writer:
            for page in adapter.iter_metric_frames(day_start(day), day_start(day + timedelta(days=1))):
                writer.write(page)


LAKE_START = TODAY - timedelta(days=3)


@pytest.fixture(scope="module")
def aws_lake(aws_served, tmp_path_factory):
    """A warehouse holding AWS cost and metrics for the last 3 full days; returns FINOPS_DATA_DIR."""
    from finops_pipeline.settings import get_settings

    data_dir = tmp_path_factory.mktemp("usage-lake")
    with pytest.MonkeyPatch.context() as mp:
        set_environment(mp, aws_served)
        mp.setenv("FINOPS_DATA_DIR", str(data_dir))
        fill_lake(get_settings(), LAKE_START, TODAY)
    return data_dir
