"""Azure: Cost Management and Azure Monitor metrics as daily partitions."""

from __future__ import annotations

from dagster import AssetExecutionContext, Definitions, MaterializeResult, asset

from finops_pipeline.defs.ingest import RAW_RETRY_POLICY, skipped
from finops_pipeline.defs.partitions import DAILY, WEEKLY_CHUNKS, WHOLE_RANGE

_PENDING = "Azure ingestion is not built yet (issue #4)"


@asset(partitions_def=DAILY, backfill_policy=WHOLE_RANGE, retry_policy=RAW_RETRY_POLICY,
       group_name="azure", kinds={"azure", "parquet"})
def azure_cost(context: AssetExecutionContext) -> MaterializeResult:
    """Azure Cost Management rows (actual and amortized) into cost_daily."""
    return skipped(context, "azure", _PENDING)


@asset(partitions_def=DAILY, backfill_policy=WEEKLY_CHUNKS, retry_policy=RAW_RETRY_POLICY,
       group_name="azure", kinds={"azure", "parquet"})
def azure_metrics(context: AssetExecutionContext) -> MaterializeResult:
    """Azure Monitor hourly series into metrics_hourly."""
    return skipped(context, "azure", _PENDING)


defs = Definitions(assets=[azure_cost, azure_metrics])
