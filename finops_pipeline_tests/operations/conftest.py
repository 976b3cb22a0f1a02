"""The AWS doubles for the operations tests: started once, pointed at by each test's environment."""

from datetime import datetime, timedelta, timezone

import pytest

from finops_pipeline.simulator.aws import serve_aws
from finops_pipeline_tests import runs

END = datetime.now(timezone.utc).date()
START = END - timedelta(days=3)


def range_tags(start=START, end=END) -> dict[str, str]:
    """Run tags for the days [start, end), by default the days the doubles serve."""
    return runs.range_tags(start, end)


@pytest.fixture(scope="package")
def aws_served(fleet):
    with serve_aws(fleet, START, END) as env:
        yield env
