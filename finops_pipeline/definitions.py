"""The single Dagster Definitions object (`dagster dev -w workspace.yaml` loads it).

Each cloud's ``clouds/<cloud>/assets.py`` and each module in ``finops_pipeline.defs``
exposes its own ``defs``; this merges them.
"""

from __future__ import annotations

from dagster import Definitions

from finops_pipeline.clouds.aws import assets as aws
from finops_pipeline.clouds.azure import assets as azure
from finops_pipeline.clouds.gcp import assets as gcp
from finops_pipeline.defs import checks, marts, schedules

defs = Definitions.merge(
    aws.defs,
    gcp.defs,
    azure.defs,
    marts.defs,
    checks.defs,
    schedules.defs,
).map_asset_specs(func=checks.with_raw_freshness)
