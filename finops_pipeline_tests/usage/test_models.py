"""The public models: lenient enums, UTC datetimes, Decimal money, periods that make sense."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from finops_pipeline.types.usage import (
    CloudProvider,
    Confidence,
    CostUsageRecord,
    Granularity,
    ResourceUsage,
    UsageQuery,
    UsageSummary,
)

JAN = datetime(2026, 1, 1, tzinfo=timezone.utc)
FEB = datetime(2026, 2, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "raw, member",
    [
        ("aws", CloudProvider.AWS),
        ("AWS", CloudProvider.AWS),
        ("Azure", CloudProvider.AZURE),
        ("gcp", CloudProvider.GCP),
        (CloudProvider.GCP, CloudProvider.GCP),
    ],
)
def test_provider_accepts_the_original_strings_in_any_case(raw, member):
    assert CloudProvider(raw) is member
    assert member == member.value  # still compares equal to "aws"
    assert str(member) == member.value


def test_granularity_and_confidence_accept_their_strings():
    assert Granularity("DAILY") is Granularity.DAILY
    assert Granularity("monthly") is Granularity.MONTHLY
    assert Confidence("high") is Confidence.HIGH
    assert Confidence("LOW") is Confidence.LOW
    query = UsageQuery(cloud_provider="aws", start_time=JAN, end_time=FEB, granularity="monthly")
    assert query.granularity is Granularity.MONTHLY and query.cloud_provider is CloudProvider.AWS


def test_unknown_provider_says_which_to_pass():
    with pytest.raises(ValueError, match=r"pass one of 'aws', 'gcp', 'azure'"):
        CloudProvider("oracle")
    with pytest.raises(ValueError, match="'aws', 'gcp' or 'azure'"):
        UsageQuery(cloud_provider="oracle", start_time=JAN, end_time=FEB)


def test_naive_datetimes_are_read_as_utc_and_aware_ones_converted():
    query = UsageQuery(
        cloud_provider="aws",
        start_time=datetime(2026, 1, 1),
        end_time=datetime(2026, 1, 31, 20, tzinfo=timezone(timedelta(hours=-5))),
    )
    assert query.start_time == JAN and query.start_time.tzinfo is timezone.utc
    assert query.end_time == FEB + timedelta(hours=1)  # 20:00 at UTC-5 is 01:00 UTC the next day
    assert query.end_time.tzinfo is timezone.utc


def test_dates_and_iso_strings_are_accepted_as_utc_midnight():
    query = UsageQuery(cloud_provider="aws", start_time=date(2026, 1, 1), end_time="2026-02-01T00:00:00Z")
    assert (query.start_time, query.end_time) == (JAN, FEB)
    with pytest.raises(ValueError, match="ISO 8601"):
        UsageQuery(cloud_provider="aws", start_time="last tuesday", end_time=FEB)


@pytest.mark.parametrize("end", [JAN, JAN - timedelta(days=1)])
def test_end_not_after_start_raises_with_what_to_pass(end):
    with pytest.raises(ValueError, match="pass an end_time later than start_time"):
        UsageQuery(cloud_provider="aws", start_time=JAN, end_time=end)


def test_money_is_decimal_without_float_error():
    record = CostUsageRecord(date=JAN, start_time=JAN, end_time=JAN + timedelta(days=1), cost="0.1", effective_cost=0.2)
    assert isinstance(record.cost, Decimal) and record.cost == Decimal("0.1")
    assert record.effective_cost == Decimal("0.2")  # a float is taken by its shortest repr
    assert sum([record.cost] * 3) == Decimal("0.3")
    summary = UsageSummary(
        cloud_provider="aws", start_time=JAN, end_time=FEB, total_cost="12.50", costs_by_currency={"USD": "12.50"}
    )
    assert summary.total_cost == Decimal("12.50") and summary.costs_by_currency == {"USD": Decimal("12.50")}


def test_resource_usage_keeps_zero_averages_and_utc_times():
    usage = ResourceUsage(
        resource_id="i-1",
        resource_type="ec2",
        cloud_provider="AWS",
        start_time=datetime(2026, 1, 1),
        end_time=datetime(2026, 1, 2),
        avg_cpu_utilization=0.0,
    )
    assert usage.avg_cpu_utilization == 0.0 and usage.avg_memory_utilization is None
    assert usage.start_time.tzinfo is timezone.utc and usage.cloud_provider is CloudProvider.AWS


def test_query_holds_every_documented_field():
    query = UsageQuery(
        cloud_provider="gcp",
        start_time=JAN,
        end_time=FEB,
        resource_ids=["a"],
        resource_types=["GCE_Instance"],
        regions=["us-central1"],
        metric_names=["cpu"],
        tags={"team": "data"},
        granularity="DAILY",
        group_by=["Service", "PROJECT"],
        max_results=5,
    )
    assert query.resource_types == ["gce_instance"] and query.group_by == ["service", "project"]
    assert query.max_results == 5 and query.tags == {"team": "data"}
    with pytest.raises(ValueError):
        UsageQuery(cloud_provider="gcp", start_time=JAN, end_time=FEB, max_results=0)
