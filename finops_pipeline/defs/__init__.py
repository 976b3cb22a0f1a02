"""Dagster definitions, one module per domain (each exposes ``defs``)."""

import warnings

from dagster import BetaWarning, PreviewWarning

# We rely on backfill policies, partition mappings over missing upstream days and
# Definitions.map_asset_specs on purpose (pinned dagster, covered by tests); their
# beta/preview notices would otherwise bury every run's output.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
