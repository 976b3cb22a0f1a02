"""The usage API of the original usage integration, over the bulk cloud adapters.

    from finops_pipeline.adapters.usage import get_usage_factory
    from finops_pipeline.types.usage import UsageQuery

See docs/usage-api.md. The per-cloud bulk adapters used by the Dagster assets live in
``aws.py``, ``gcp.py`` and ``azure.py`` next to this file.
"""

from finops_pipeline.adapters.usage.factory import (
    UsageFactory,
    get_aws_usage_adapter,
    get_azure_usage_adapter,
    get_gcp_usage_adapter,
    get_usage_factory,
)
from finops_pipeline.adapters.usage.usage_api import UsageAdapter

__all__ = [
    "UsageAdapter",
    "UsageFactory",
    "get_aws_usage_adapter",
    "get_azure_usage_adapter",
    "get_gcp_usage_adapter",
    "get_usage_factory",
]
