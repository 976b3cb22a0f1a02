"""Materializing assets in tests the way the code location runs them: with its resources."""

import dagster

from finops_pipeline.definitions import RESOURCES


def materialize(assets, **kwargs):
    """``dagster.materialize`` with the code location's resources; ``resources=`` overrides some."""
    return dagster.materialize(assets, resources={**RESOURCES, **kwargs.pop("resources", {})}, **kwargs)
