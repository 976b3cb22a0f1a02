"""What the Azure source knows about Azure, as data: Azure Monitor metrics per resource type,
ARM types and metric namespaces, prices, Cost Management's charge types and the region seed."""

from __future__ import annotations

from decimal import Decimal

from finops_pipeline.clouds.base import MetricSpec
from finops_pipeline.warehouse.catalog import SQL_DIR

PROVIDER = "azure"
COST_SOURCE = "costmanagement:query.usage"

# Azure Monitor: metric queries beyond the free monthly allowance cost $0.01 per 1,000 calls.
MONITOR_PRICE_PER_CALL = Decimal("0.00001")
# Azure Monitor metrics REST API version (the one azure-mgmt-monitor 7 speaks).
METRICS_API_VERSION = "2024-02-01"
# Cost Management queries are free (but rate limited by QPU quotas).
COST_PRICE_PER_CALL = Decimal("0")

MAX_THROTTLE_RETRIES = 5

# Client-side pacing (finops_pipeline/clouds/pacing.py), as (calls, seconds) limits.
# Cost Management QPU quotas, per tenant (https://learn.microsoft.com/azure/cost-management-billing/
# costs/manage-automation, "QPU quotas"): 12 QPU per 10 s, 60 per minute, 600 per hour; a query
# of up to one month of data costs 1 QPU (nextLink pages count). Each query is paced as 1 QPU, which
# holds for the daily runs; a backfill's query spans its range (up to QUERY_MAX_DAYS) and costs more,
# which only the "remaining" headers Azure returns make the pacer count (observe_remaining).
COST_MANAGEMENT_QPU_QUOTA = [(12, 10.0), (60, 60.0), (600, 3600.0)]
# Azure Resource Manager reads, per subscription (https://learn.microsoft.com/azure/
# azure-resource-manager/management/request-limits-and-throttling): a token bucket of 250
# refilled at 25 per second. Paced at the refill rate: the 250 burst is shared with every other
# client of the subscription (portal, CLI, other tools), and a backfill outlasts it in seconds.
ARM_READS_QUOTA = [(25, 1.0)]
MAX_TRANSIENT_RETRIES = 4
# The longest period one Cost Management query is asked for. Not documented by Microsoft; a longer
# Custom timePeriod is refused with "Invalid query definition: The time period for pulling the data
# cannot exceed 1 year(s)" (quoted by electrolux-oss/infrawallet, consts.ts; microsoft/AzureTRE checks
# the same limit). A longer range is asked in consecutive windows of at most this many days.
QUERY_MAX_DAYS = 364
# Cost data lands up to a day or two late; resources billed in the days just before a
# metrics window are asked for too (a deleted one answers 404 and is skipped).
DISCOVERY_LOOKBACK_DAYS = 2
# ARM resource provider type (lower case) -> the usage API's resource type.
ARM_TYPES = {
    "microsoft.compute/virtualmachines": "virtual_machine",
    "microsoft.sql/servers/databases": "sql_database",
    "microsoft.storage/storageaccounts": "storage_account",
    "microsoft.web/sites": "app_service",
}
# The usage API's resource type -> Azure Monitor metric namespace (for multi-resource calls).
NAMESPACES = {
    "virtual_machine": "Microsoft.Compute/virtualMachines",
    "sql_database": "Microsoft.Sql/servers/databases",
    "storage_account": "Microsoft.Storage/storageAccounts",
    "app_service": "Microsoft.Web/sites",
}
# Cost Management ResourceLocation (display form) -> ARM region name.
REGIONS_SEED = SQL_DIR / "seeds" / "azure_regions.csv"
# Resources per multi-resource metrics call (Azure's limit for one subscription-scope query).
BATCH_LIMIT = 50
# Cost Management ChargeType -> FOCUS ChargeCategory (the native value goes to charge_description).
CHARGE_CATEGORIES = {
    "usage": "Usage",
    "unusedreservation": "Usage",
    "unusedsavingsplan": "Usage",
    "purchase": "Purchase",
    "refund": "Credit",
    "credit": "Credit",
    "tax": "Tax",
    "roundingadjustment": "Adjustment",
    "adjustment": "Adjustment",
}


def _g(native: str, canonical: str, unit: str, scale: float = 1.0) -> MetricSpec:
    return MetricSpec(native, canonical, "gauge", unit, scale)


def _c(native: str, canonical: str, unit: str, scale: float = 1.0) -> MetricSpec:
    return MetricSpec(native, canonical, "counter", unit, scale)


METRICS = {
    "virtual_machine": [
        _g("Percentage CPU", "cpu_utilization_pct", "Percent"),
        _c("Network In Total", "network_in_bytes", "Bytes"),
        _c("Network Out Total", "network_out_bytes", "Bytes"),
        _c("Disk Read Bytes", "disk_read_bytes", "Bytes"),
        _c("Disk Write Bytes", "disk_write_bytes", "Bytes"),
        _g("Available Memory Bytes", "memory_available_bytes", "Bytes"),
    ],
    "sql_database": [
        _g("cpu_percent", "cpu_utilization_pct", "Percent"),
        _c("connection_successful", "connections", "Count"),
        _g("storage_percent", "storage_pct", "Percent"),
    ],
    "storage_account": [
        _c("Transactions", "requests", "Count"),
        _g("UsedCapacity", "storage_bytes", "Bytes"),
        _g("Availability", "availability_pct", "Percent"),
    ],
    "app_service": [
        _c("CpuTime", "cpu_seconds", "Seconds"),
        _c("Requests", "requests", "Count"),
        # "Response Time" in the portal (seconds); replaces the deprecated AverageResponseTime.
        _g("HttpResponseTime", "response_time_ms", "Milliseconds", 1000.0),
    ],
}
