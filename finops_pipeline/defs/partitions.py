"""The daily UTC partitions every dated asset shares, and how backfills are chunked."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from dagster import BackfillPolicy, DailyPartitionsDefinition, PartitionKeyRange

from finops_pipeline.settings import partition_start_date

# One partition per UTC usage day, from FINOPS_START_DATE up to yesterday.
DAILY = DailyPartitionsDefinition(start_date=partition_start_date().isoformat(), timezone="UTC", fmt="%Y-%m-%d")

# Cost Explorer / Cost Management / BigQuery answer a month in one call: a backfill range runs as one run.
WHOLE_RANGE = BackfillPolicy.single_run()
# Metrics APIs are called per day anyway; a week per run keeps runs short and failures contained.
WEEKLY_CHUNKS = BackfillPolicy.multi_run(max_partitions_per_run=7)


def window(key_range: PartitionKeyRange) -> tuple[date, date]:
    """[start, end) UTC days covered by a partition key range."""
    start = date.fromisoformat(key_range.start)
    end = date.fromisoformat(key_range.end) + timedelta(days=1)
    return start, end


def days(start: date, end: date) -> list[date]:
    """Every UTC day in [start, end)."""
    return [start + timedelta(days=i) for i in range((end - start).days)]


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of a day."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
