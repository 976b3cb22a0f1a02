"""Materializing assets in tests the way the code location runs them: with its resources."""

import dagster

from finops_pipeline.definitions import RESOURCES


def materialize(assets, **kwargs):
    """``dagster.materialize`` with the code location's resources; ``resources=`` overrides some."""
    return dagster.materialize(assets, resources={**RESOURCES, **kwargs.pop("resources", {})}, **kwargs)


def retried_at_once(raw_asset: dagster.AssetsDefinition) -> dagster.AssetsDefinition:
    """The raw asset's own body and retry count, retried without its policy's delay (60 s and
    up), so a test sees Dagster's retries at once. Whether a failure may be retried stays the
    product's decision (``Failure(allow_retries=...)`` raised by the body)."""
    policy = raw_asset.op.retry_policy
    return dagster.asset(
        name=raw_asset.key.path[-1],
        partitions_def=raw_asset.partitions_def,
        retry_policy=dagster.RetryPolicy(max_retries=policy.max_retries, delay=0),
    )(raw_asset.op.compute_fn.decorated_fn)
