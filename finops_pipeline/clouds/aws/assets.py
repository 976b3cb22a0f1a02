"""AWS: Cost Explorer billing and CloudWatch metrics as daily partitions."""

from dagster import AssetExecutionContext, Definitions, MaterializeResult, asset

from finops_pipeline.clouds.aws.resource import AwsResource
from finops_pipeline.clouds.aws.source import AwsSource
from finops_pipeline.clouds.ingest import RAW_RETRY_POLICY, ingest_cost, ingest_metrics
from finops_pipeline.defs.partitions import DAILY, WEEKLY_CHUNKS, WHOLE_RANGE
from finops_pipeline.warehouse.metadata import table_metadata
from finops_pipeline.warehouse.resource import WarehouseResource


@asset(
    partitions_def=DAILY,
    backfill_policy=WHOLE_RANGE,
    retry_policy=RAW_RETRY_POLICY,
    pool="aws-ce",  # defs/pools.py
    group_name="aws",
    kinds={"aws", "parquet"},
    metadata=table_metadata("cost_daily", "cost_forecast"),
)
def aws_cost(context: AssetExecutionContext, aws: AwsResource, warehouse: WarehouseResource) -> MaterializeResult:
    """Cost Explorer daily cost (unblended = billed, amortized = effective) into cost_daily,
    resource-level for days inside Cost Explorer's 14-day window, and the cost forecast."""
    return ingest_cost(context, "aws", AwsSource.from_settings, aws, warehouse)


@asset(
    partitions_def=DAILY,
    backfill_policy=WEEKLY_CHUNKS,
    retry_policy=RAW_RETRY_POLICY,
    pool="aws-cloudwatch",
    group_name="aws",
    kinds={"aws", "parquet"},
    metadata=table_metadata("metrics_hourly"),
)
def aws_metrics(context: AssetExecutionContext, aws: AwsResource, warehouse: WarehouseResource) -> MaterializeResult:
    """CloudWatch hourly metrics (GetMetricData, batched) into metrics_hourly."""
    return ingest_metrics(context, "aws", AwsSource.from_settings, aws, warehouse)


defs = Definitions(assets=[aws_cost, aws_metrics])
