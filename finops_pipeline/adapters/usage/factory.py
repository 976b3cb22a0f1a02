"""The usage factory: one entry point for every cloud, sharing one cache.

``get_usage_factory()`` returns the process-wide factory for the current settings (read
from the environment / ``.env`` on each call; a new factory, with an empty cache, when
they changed). ``get_aws_usage_adapter()`` and friends return that factory's adapter for
one cloud: the same methods without ``cloud_provider``, through the same cache.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from finops_pipeline.adapters.usage.cache import TtlCache
from finops_pipeline.adapters.usage.usage_api import UsageAdapter
from finops_pipeline.clouds.base import CloudSource
from finops_pipeline.settings import Settings, get_settings
from finops_pipeline.types.usage import (
    CloudProvider,
    ResourceUsage,
    UsageQuery,
    UsageSummary,
)

log = logging.getLogger("finops_pipeline.usage")


class UsageFactory:
    """Picks the cloud's :class:`UsageAdapter` by ``cloud_provider``; owns the shared cache.

    ``bulk_adapters`` (provider -> CloudSource) replaces the adapters built from settings,
    and ``clock`` the cache's time source (seconds, monotonic).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        clock: Callable[[], float] = time.monotonic,
        bulk_adapters: dict[str, CloudSource] | None = None,
    ):
        self.settings = settings or get_settings()
        self.enabled = self.settings.usage_integration_enabled
        self.cache = TtlCache(self.settings.usage_cache_ttl_seconds, self.settings.usage_cache_max_entries, clock)
        self._adapters = {
            p.value: UsageAdapter(p, self.settings, self.cache, (bulk_adapters or {}).get(p.value), clock)
            for p in CloudProvider
        }

    def adapter(self, cloud_provider: CloudProvider | str) -> UsageAdapter:
        """The usage adapter of a cloud; ValueError naming the supported clouds otherwise."""
        return self._adapters[CloudProvider(cloud_provider).value]

    def is_available(self, cloud_provider: CloudProvider | str) -> bool:
        """Enabled, SDK installed and credentials resolvable. Cached; no API call."""
        if not self.enabled:
            return False
        return self.adapter(cloud_provider).is_available()

    def get_resource_usage(
        self,
        cloud_provider: CloudProvider | str,
        resource_id: str,
        resource_type: str,
        start_time: Any,
        end_time: Any,
        region: str | None = None,
        metrics: list[str] | None = None,
        use_cache: bool = True,
        source: str = "api",
    ) -> ResourceUsage | None:
        """See :meth:`UsageAdapter.get_resource_usage`."""
        return self.adapter(cloud_provider).get_resource_usage(
            resource_id,
            resource_type,
            start_time,
            end_time,
            region=region,
            metrics=metrics,
            use_cache=use_cache,
            source=source,
        )

    def get_cost_usage(
        self,
        cloud_provider: CloudProvider | str,
        start_time: Any,
        end_time: Any,
        granularity: str = "DAILY",
        group_by: list[str] | None = None,
        filters: dict[str, Any] | None = None,
        use_cache: bool = True,
        source: str = "api",
    ):
        """See :meth:`UsageAdapter.get_cost_usage`."""
        return self.adapter(cloud_provider).get_cost_usage(
            start_time,
            end_time,
            granularity=granularity,
            group_by=group_by,
            filters=filters,
            use_cache=use_cache,
            source=source,
        )

    def get_usage_summary(self, query: UsageQuery, use_cache: bool = True, source: str = "api") -> UsageSummary | None:
        """See :meth:`UsageAdapter.get_usage_summary`."""
        if not isinstance(query, UsageQuery):
            query = UsageQuery.model_validate(query)
        return self.adapter(query.cloud_provider).get_usage_summary(query, use_cache=use_cache, source=source)

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        self.cache.clear()
        log.info("usage cache cleared")


_factory: UsageFactory | None = None
_factory_lock = threading.Lock()


def get_usage_factory() -> UsageFactory:
    """The process-wide factory for the current settings."""
    global _factory
    settings = get_settings()
    with _factory_lock:
        if _factory is None or _factory.settings != settings:
            _factory = UsageFactory(settings)
        return _factory


def get_aws_usage_adapter() -> UsageAdapter:
    """AWS (CloudWatch + Cost Explorer) through the process-wide factory and its cache."""
    return get_usage_factory().adapter("aws")


def get_gcp_usage_adapter() -> UsageAdapter:
    """GCP (Cloud Monitoring + the BigQuery billing export) through the process-wide factory."""
    return get_usage_factory().adapter("gcp")


def get_azure_usage_adapter() -> UsageAdapter:
    """Azure (Monitor + Cost Management) through the process-wide factory."""
    return get_usage_factory().adapter("azure")
