"""GCP: BigQuery billing export and Cloud Monitoring metrics as daily partitions."""

from dagster import AssetExecutionContext, Definitions, MaterializeResult, asset

from finops_pipeline.clouds.gcp.resource import GcpResource
from finops_pipeline.clouds.gcp.source import GcpSource
from finops_pipeline.clouds.ingest import RAW_RETRY_POLICY, ingest_cost, ingest_metrics
from finops_pipeline.defs.partitions import DAILY, WEEKLY_CHUNKS, WHOLE_RANGE
from finops_pipeline.warehouse.metadata import table_metadata
from finops_pipeline.warehouse.resource import WarehouseResource


@asset(
    partitions_def=DAILY,
    backfill_policy=WHOLE_RANGE,
    retry_policy=RAW_RETRY_POLICY,
    pool="gcp-bigquery",  # defs/pools.py
    group_name="gcp",
    kinds={"gcp", "parquet"},
    metadata=table_metadata("cost_daily", "cost_forecast"),
)
def gcp_cost(context: AssetExecutionContext, gcp: GcpResource, warehouse: WarehouseResource) -> MaterializeResult:
    """GCP billing export rows (gross cost, and effective cost net of credits) into cost_daily,
    from one partition-pruned, parameterized BigQuery query per run."""
    return ingest_cost(context, "gcp", GcpSource.from_settings, gcp, warehouse)


@asset(
    partitions_def=DAILY,
    backfill_policy=WEEKLY_CHUNKS,
    retry_policy=RAW_RETRY_POLICY,
    pool="gcp-monitoring",
    group_name="gcp",
    kinds={"gcp", "parquet"},
    metadata=table_metadata("metrics_hourly"),
)
def gcp_metrics(context: AssetExecutionContext, gcp: GcpResource, warehouse: WarehouseResource) -> MaterializeResult:
    """Cloud Monitoring hourly series (ListTimeSeries, aligned server-side) into metrics_hourly."""
    return ingest_metrics(context, "gcp", GcpSource.from_settings, gcp, warehouse)


defs = Definitions(assets=[gcp_cost, gcp_metrics])
