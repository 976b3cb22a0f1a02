"""The single Dagster Definitions object (`dagster dev -w workspace.yaml` loads it).

Each module in ``finops_pipeline.defs`` exposes its own ``defs``; this merges them.
"""

from __future__ import annotations

from dagster import Definitions

from finops_pipeline.defs import aws, azure, checks, gcp, marts, schedules

defs = Definitions.merge(
    aws.defs,
    gcp.defs,
    azure.defs,
    marts.defs,
    checks.defs,
    schedules.defs,
).map_asset_specs(func=checks.with_raw_freshness)
