"""Freshness policies: a raw asset (`<cloud>_cost`, `<cloud>_metrics`) is stale 36 hours after
its last materialization (the daily run lands yesterday every morning; a day and a half is one
missed run)."""

from datetime import timedelta

from dagster import AssetKey, FreshnessPolicy

from finops_pipeline.clouds import PROVIDERS

RAW_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=36))
RAW_ASSET_KEYS = [AssetKey(f"{p}_{kind}") for p in PROVIDERS for kind in ("cost", "metrics")]


def with_raw_freshness(spec):
    """Attach the freshness policy to the raw assets (use with Definitions.map_asset_specs)."""
    return spec.replace_attributes(freshness_policy=RAW_FRESHNESS) if spec.key in RAW_ASSET_KEYS else spec
