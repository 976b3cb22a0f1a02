"""The single Dagster Definitions object (`dagster dev -w workspace.yaml` loads it).

Each cloud's ``clouds/<cloud>/assets.py`` and each module in ``finops_pipeline.defs``
exposes its own ``defs``; this merges them.
"""

from __future__ import annotations

from dagster import Definitions

from finops_pipeline.clouds.aws import assets as aws
from finops_pipeline.clouds.aws.resource import AwsResource
from finops_pipeline.clouds.azure import assets as azure
from finops_pipeline.clouds.azure.resource import AzureResource
from finops_pipeline.clouds.gcp import assets as gcp
from finops_pipeline.clouds.gcp.resource import GcpResource
from finops_pipeline.defs import mart_checks, marts, raw_checks, report, schedules
from finops_pipeline.defs.freshness import with_raw_freshness
from finops_pipeline.warehouse.resource import WarehouseResource

# The configuration every asset, check and run receives (UI: Deployment -> Resources). Unset
# fields read the README's environment variables when a run starts, never at import.
RESOURCES = {"aws": AwsResource(), "gcp": GcpResource(), "azure": AzureResource(), "warehouse": WarehouseResource()}

defs = Definitions.merge(
    aws.defs,
    gcp.defs,
    azure.defs,
    marts.defs,
    mart_checks.defs,
    report.defs,
    raw_checks.defs,
    schedules.defs,
    Definitions(resources=RESOURCES),
).map_asset_specs(func=with_raw_freshness)
