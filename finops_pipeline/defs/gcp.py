"""GCP: BigQuery billing export and Cloud Monitoring metrics as daily partitions."""

from __future__ import annotations

from dagster import AssetExecutionContext, Definitions, MaterializeResult, asset

from finops_pipeline.defs.ingest import RAW_RETRY_POLICY, skipped
from finops_pipeline.defs.partitions import DAILY, WEEKLY_CHUNKS, WHOLE_RANGE

_PENDING = "GCP ingestion is not built yet (issue #3)"


@asset(partitions_def=DAILY, backfill_policy=WHOLE_RANGE, retry_policy=RAW_RETRY_POLICY,
       group_name="gcp", kinds={"gcp", "parquet"})
def gcp_cost(context: AssetExecutionContext) -> MaterializeResult:
    """GCP billing export rows (cost net of credits) into cost_daily."""
    return skipped(context, "gcp", _PENDING)


@asset(partitions_def=DAILY, backfill_policy=WEEKLY_CHUNKS, retry_policy=RAW_RETRY_POLICY,
       group_name="gcp", kinds={"gcp", "parquet"})
def gcp_metrics(context: AssetExecutionContext) -> MaterializeResult:
    """Cloud Monitoring hourly series into metrics_hourly."""
    return skipped(context, "gcp", _PENDING)


defs = Definitions(assets=[gcp_cost, gcp_metrics])
