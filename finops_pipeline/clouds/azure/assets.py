"""Azure: Cost Management and Azure Monitor metrics as daily partitions.

The metrics asset finds its resources itself: the adapter asks Cost Management which
ResourceIds were billed in (and just before) the window, plus AZURE_RESOURCE_IDS. That
needs no extra permission, keeps the two assets independent (no read of the lake, no
ordering between them) and Cost Management queries are free.
"""

from dagster import AssetExecutionContext, Definitions, MaterializeResult, asset

from finops_pipeline.clouds.azure.resource import AzureResource
from finops_pipeline.clouds.azure.source import AzureSource
from finops_pipeline.clouds.ingest import RAW_RETRY_POLICY, ingest_cost, ingest_metrics
from finops_pipeline.defs.partitions import DAILY, WEEKLY_CHUNKS, WHOLE_RANGE
from finops_pipeline.warehouse.metadata import table_metadata
from finops_pipeline.warehouse.resource import WarehouseResource


@asset(
    partitions_def=DAILY,
    backfill_policy=WHOLE_RANGE,
    retry_policy=RAW_RETRY_POLICY,
    pool="azure-cost",  # defs/pools.py
    group_name="azure",
    kinds={"azure", "parquet"},
    metadata=table_metadata("cost_daily", "cost_forecast"),
)
def azure_cost(context: AssetExecutionContext, azure: AzureResource, warehouse: WarehouseResource) -> MaterializeResult:
    """Azure Cost Management daily cost per subscription (ActualCost = billed, AmortizedCost =
    effective) by resource, service and charge type into cost_daily."""
    return ingest_cost(context, "azure", AzureSource.from_settings, azure, warehouse)


@asset(
    partitions_def=DAILY,
    backfill_policy=WEEKLY_CHUNKS,
    retry_policy=RAW_RETRY_POLICY,
    pool="azure-monitor",
    group_name="azure",
    kinds={"azure", "parquet"},
    metadata=table_metadata("metrics_hourly"),
)
def azure_metrics(
    context: AssetExecutionContext, azure: AzureResource, warehouse: WarehouseResource
) -> MaterializeResult:
    """Azure Monitor hourly metrics (one metrics.list call per billed resource) into metrics_hourly."""
    return ingest_metrics(context, "azure", AzureSource.from_settings, azure, warehouse)


defs = Definitions(assets=[azure_cost, azure_metrics])
