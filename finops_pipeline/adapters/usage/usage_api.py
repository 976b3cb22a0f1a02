"""The original usage integration's object API for one cloud, over the bulk adapters.

:class:`UsageAdapter` answers ``get_resource_usage``, ``get_cost_usage`` and
``get_usage_summary`` from a cloud's bulk adapter (``source="api"``) or from the lake
(``source="warehouse"``: no API call, no API cost), through the factory's cache.

Errors, as the original documented them: bad arguments raise ``ValueError`` saying what
to pass; a disabled cloud or missing credentials give ``None`` and a warning; a failing
cloud API gives ``None`` and an error log (the Dagster assets' bulk path raises instead);
an unknown resource id gives a ResourceUsage with no metrics.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Iterator

from finops_pipeline.adapters.usage.availability import unavailable_reason
from finops_pipeline.adapters.usage.cache import TtlCache
from finops_pipeline.adapters.usage.records import (
    confidence_of,
    cost_days,
    cost_records,
    metric_days,
    parse_group_by,
    resource_usage,
    row_matches,
    tags_of,
)
from finops_pipeline.adapters.usage.sources import ApiSource, WarehouseSource
from finops_pipeline.clouds.base import CloudSource, MetricSpec, ResourceRef
from finops_pipeline.settings import Settings
from finops_pipeline.types.usage import (
    CloudProvider,
    Granularity,
    ResourceUsage,
    UsageQuery,
    UsageSummary,
    check_period,
    to_utc,
)

log = logging.getLogger("finops_pipeline.usage")

# provider -> (module, class) of its bulk adapter; imported only when that cloud is used.
BULK_ADAPTERS = {
    "aws": ("finops_pipeline.clouds.aws.source", "AwsSource"),
    "gcp": ("finops_pipeline.clouds.gcp.source", "GcpSource"),
    "azure": ("finops_pipeline.clouds.azure.source", "AzureSource"),
}
# Resource type names of the original documentation that a cloud's adapter spells differently.
TYPE_ALIASES = {"gke_container": "k8s_container", "k8s_container": "gke_container"}
SOURCES = ("api", "warehouse")


def bulk_adapter_class(provider: str) -> type[CloudSource]:
    """The bulk adapter class of a cloud (importing it imports the cloud's SDK)."""
    module_name, class_name = BULK_ADAPTERS[provider]
    return getattr(importlib.import_module(module_name), class_name)


def metric_table(provider: str) -> dict[str, list[MetricSpec]]:
    """Resource type -> the metrics the cloud's adapter reads, from its catalog (no SDK imported)."""
    return importlib.import_module(f"finops_pipeline.clouds.{provider}.catalog").METRICS


def parse_period(start_time: Any, end_time: Any) -> tuple[datetime, datetime]:
    """UTC datetimes (naive input read as UTC); ValueError unless start < end."""
    start, end = to_utc(start_time), to_utc(end_time)
    for name, value in (("start_time", start), ("end_time", end)):
        if not isinstance(value, datetime):
            raise ValueError(
                f"{name}={value!r}: pass a datetime (UTC; naive is read as UTC), a date or an ISO 8601 string"
            )
    check_period(start, end)
    return start, end


class UsageAdapter:
    """One cloud's usage API. Build through :func:`get_usage_factory` or ``get_<cloud>_usage_adapter``."""

    def __init__(
        self,
        provider: CloudProvider | str,
        settings: Settings,
        cache: TtlCache,
        bulk: CloudSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.provider = CloudProvider(provider).value
        self.cloud_provider = self.provider
        self.settings = settings
        self.cache = cache
        self._bulk = bulk
        self._clock = clock
        self._lock = threading.Lock()
        self._availability: tuple[float, str | None] | None = None

    # -- availability --------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        """Why this cloud cannot be used (None: it can). Cached for USAGE_CACHE_TTL_SECONDS."""
        with self._lock:
            cached = self._availability
            ttl = max(self.settings.usage_cache_ttl_seconds, 1)
            if cached is not None and self._clock() - cached[0] < ttl:
                return cached[1]
        reason = None if self._bulk is not None else unavailable_reason(self.provider, self.settings)
        with self._lock:
            self._availability = (self._clock(), reason)
        return reason

    def is_available(self) -> bool:
        """Enabled in settings, SDK importable and credentials resolvable (no API call)."""
        return self.unavailable_reason() is None

    @property
    def bulk(self) -> CloudSource:
        """The cloud's bulk adapter (built from settings on first use)."""
        with self._lock:
            if self._bulk is None:
                self._bulk = bulk_adapter_class(self.provider).from_settings(self.settings)
            return self._bulk

    # -- the three methods ---------------------------------------------------------
    def get_resource_usage(
        self,
        resource_id: str,
        resource_type: str,
        start_time: Any,
        end_time: Any,
        region: str | None = None,
        metrics: list[str] | None = None,
        use_cache: bool = True,
        source: str = "api",
    ) -> ResourceUsage | None:
        """Hourly metrics of one resource over [start_time, end_time), with their averages."""
        start, end = parse_period(start_time, end_time)
        source = _source(source)
        if not resource_id or not isinstance(resource_id, str):
            raise ValueError(f"resource_id={resource_id!r}: pass the resource's id as a string")
        types = metric_table(self.provider)
        rtype = self._resource_type(resource_type, types)
        specs = types[rtype]
        canonical = _canonical_metrics(metrics, {rtype: specs}) if metrics else None
        if not self._ready(source, "get_resource_usage"):
            return None
        key = (
            "resource_usage",
            self.provider,
            source,
            resource_id,
            rtype,
            start,
            end,
            region,
            tuple(sorted(canonical)) if canonical else None,
        )

        def compute() -> ResourceUsage:
            # Without a region, AWS is asked in every configured region (metrics are regional).
            regions = [region] if region or self.provider != "aws" else list(self.settings.aws_usage_regions)
            refs = [ResourceRef(resource_id, rtype, r) for r in regions]
            with self._open(source) as src:
                rows = src.metrics(start, end, refs, canonical)
            # A resource may be named by id or by name (a GCP VM by its instance name).
            wanted = resource_id.lower()
            rows = [r for r in rows if wanted in (r["resource_id"].lower(), (r.get("resource_name") or "").lower())]
            return resource_usage(self.provider, resource_id, rtype, region, start, end, rows, specs)

        return self._answer("get_resource_usage", key, compute, use_cache)

    def get_cost_usage(
        self,
        start_time: Any,
        end_time: Any,
        granularity: str = "DAILY",
        group_by: list[str] | None = None,
        filters: dict[str, Any] | None = None,
        use_cache: bool = True,
        source: str = "api",
    ):
        """Cost records per period (UTC day or month) and group; ungrouped: totals per period and currency.

        ``filters`` keeps rows whose dimension equals one of the given values, e.g.
        ``{"region": ["us-east-1"], "service": "AWS Lambda"}``.
        """
        start, end = parse_period(start_time, end_time)
        gran = _granularity(granularity)
        dims = parse_group_by(group_by)
        flt = _filters(filters)
        source = _source(source)
        needed = frozenset(c for _, c in dims) | frozenset(flt)
        self._check_grain(needed, source)
        if not self._ready(source, "get_cost_usage"):
            return None
        first, stop = cost_days(start, end)
        key = (
            "cost_usage",
            self.provider,
            source,
            first,
            stop,
            gran.value,
            dims,
            tuple(sorted((k, tuple(sorted(v))) for k, v in flt.items())),
        )

        def compute():
            with self._open(source) as src:
                fetched = src.cost(first, stop, needed)
            rows = [r for r in fetched.rows if row_matches(r, self.provider, None, None, None, flt)]
            return cost_records(rows, dims, gran, first, stop)

        return self._answer("get_cost_usage", key, compute, use_cache)

    def get_usage_summary(self, query: UsageQuery, use_cache: bool = True, source: str = "api"):
        """What ``query`` selects: its cost (per currency), resources, averages and data quality."""
        if not isinstance(query, UsageQuery):
            query = UsageQuery.model_validate(query)
        if query.cloud_provider.value != self.provider:
            raise ValueError(
                f"query.cloud_provider is {query.cloud_provider.value!r} but this is the "
                f"{self.provider} adapter: use get_usage_factory().get_usage_summary(query)"
            )
        source = _source(source)
        if query.granularity is Granularity.HOURLY:
            raise ValueError(_HOURLY)
        dims = parse_group_by(query.group_by)
        types = metric_table(self.provider)
        rtypes = [self._resource_type(t, types) for t in query.resource_types or []] or None
        if query.metric_names:
            _canonical_metrics(query.metric_names, {t: types[t] for t in (rtypes or types)})
        per_resource = bool(query.resource_ids or query.tags)
        needed = frozenset(c for _, c in dims) | (
            {"resource"}
            if per_resource
            else frozenset(["service"] if rtypes else []) | frozenset(["region"] if query.regions else [])
        )
        self._check_grain(needed, source)
        if not self._ready(source, "get_usage_summary"):
            return None
        key = ("usage_summary", self.provider, source, _query_key(query))
        return self._answer(
            "get_usage_summary", key, lambda: self._summary(query, dims, rtypes, needed, types, source), use_cache
        )

    # -- internals -------------------------------------------------------------------
    def _summary(self, query: UsageQuery, dims, rtypes, needed, types, source) -> UsageSummary:
        with self._open(source) as src:
            return self._summarize(src, query, dims, rtypes, needed, types)

    def _summarize(self, src, query: UsageQuery, dims, rtypes, needed, types) -> UsageSummary:
        start, end = query.start_time, query.end_time
        first, stop = cost_days(start, end)
        notes: list[str] = []
        per_resource = bool(query.resource_ids or query.tags)
        cost = src.cost(first, stop, needed)

        # Resources: those with metrics in the window, narrowed by every resource filter.
        tags_by_resource: dict[str, dict[str, str]] = {}
        for row in cost.rows:
            if row.get("resource_id") and row.get("tags"):
                tags_by_resource.setdefault(row["resource_id"].lower(), {}).update(tags_of(row))
        wanted_ids = {i.lower() for i in query.resource_ids} if query.resource_ids else None
        regions = {r.lower() for r in query.regions} if query.regions else None

        def wanted(ref: ResourceRef) -> bool:
            return (
                (not rtypes or ref.resource_type in rtypes)
                and (regions is None or (ref.region or "").lower() in regions)
                and (wanted_ids is None or ref.resource_id.lower() in wanted_ids)
                and _tags_match(tags_by_resource.get(ref.resource_id.lower(), {}), query.tags)
            )

        metric_filter = (
            sorted(_canonical_metrics(query.metric_names, {t: types[t] for t in (rtypes or types)}))
            if query.metric_names
            else None
        )
        refs = src.resources(start, end, rtypes, query.regions)
        if refs is not None:
            selected = [ref for ref in refs if wanted(ref)]
            rows = src.metrics(start, end, selected, metric_filter)
        else:  # the adapter cannot list resources: fetch every resource's metrics, then select
            rows = src.metrics(start, end, None, metric_filter)
            seen: dict[str, ResourceRef] = {}
            for r in rows:
                seen.setdefault(
                    r["resource_id"].lower(),
                    ResourceRef(r["resource_id"], r["resource_type"], r.get("region"), r.get("sub_account_id")),
                )
            selected = [ref for ref in seen.values() if wanted(ref)]
        if query.tags and not tags_by_resource:
            notes.append(f"the {self.provider} billing data carries no resource tags: the tag filter matched nothing")
        by_resource: dict[str, list[dict]] = {}
        for row in rows:
            by_resource.setdefault(row["resource_id"].lower(), []).append(row)
        resources = [
            resource_usage(
                self.provider,
                ref.resource_id,
                ref.resource_type,
                ref.region,
                start,
                end,
                by_resource.get(ref.resource_id.lower(), []),
                types.get(ref.resource_type, []),
                tags_by_resource.get(ref.resource_id.lower()),
            )
            for ref in sorted(selected, key=lambda r: r.resource_id)
        ]

        # Cost of exactly what was selected.
        selected_ids = {r.resource_id.lower() for r in selected} if per_resource else None
        cost_rows = [r for r in cost.rows if row_matches(r, self.provider, rtypes, query.regions, selected_ids)]
        covered = cost.covered_days
        if per_resource:
            with_resources = {r["usage_date"] for r in cost.rows if r.get("resource_id")}
            missing = len(covered - with_resources)
            if missing:
                notes.append(
                    f"{missing} day(s) have no resource-level billing data; their cost is not included "
                    "(AWS Cost Explorer has resource-level data only where 'Hourly and resource-level "
                    "data' is enabled, for the last 14 days)"
                )
            covered = covered & with_resources
        records = cost_records(cost_rows, dims, query.granularity, first, stop)
        by_currency: dict[str, Decimal] = {}
        for row in cost_rows:
            cur = row["billing_currency"]
            by_currency[cur] = by_currency.get(cur, Decimal(0)) + row["billed_cost"]
        single = len(by_currency) <= 1
        total = sum(by_currency.values(), Decimal(0)) if single else None
        if not single:
            notes.append(
                f"cost is billed in {len(by_currency)} currencies ({', '.join(sorted(by_currency))}): "
                "see costs_by_currency; total_cost is not a sum across currencies"
            )
        units = {r.get("usage_unit") for r in cost_rows}
        total_usage = sum(r.get("usage_quantity") or 0.0 for r in cost_rows) if len(units) == 1 else None

        # Data quality.
        n_days = max((stop - first).days, 1)
        completeness = len(covered) / n_days
        if selected:
            window_days = metric_days(start, end)
            metric_coverage = sum(min(r.metadata["days_with_data"], len(window_days)) for r in resources) / (
                len(resources) * len(window_days)
            )
            completeness = min(completeness, metric_coverage)
        estimated = any(r.get("is_estimated") for r in cost_rows)
        if estimated:
            notes.append("some billing lines are still estimated by the provider")

        cpu = [r.avg_cpu_utilization for r in resources if r.avg_cpu_utilization is not None]
        memory = [r.avg_memory_utilization for r in resources if r.avg_memory_utilization is not None]
        by_resource_cost = bool(per_resource or rtypes)
        n = query.max_results
        if len(records) > n or len(resources) > n:
            notes.append(
                f"records/resources lists cut to max_results={n} "
                f"(of {len(records)} records, {len(resources)} resources); totals cover all"
            )
        return UsageSummary(
            cloud_provider=self.provider,
            resource_type=",".join(rtypes) if rtypes else "all",
            region=",".join(query.regions) if query.regions else None,
            start_time=start,
            end_time=end,
            total_resources=len(resources),
            total_cost=total,
            currency=next(iter(by_currency)) if len(by_currency) == 1 else None,
            costs_by_currency=by_currency,
            average_cost_per_resource=(
                total / len(resources) if by_resource_cost and total is not None and resources else None
            ),
            total_usage=total_usage,
            average_usage=total_usage / n_days if total_usage is not None else None,
            usage_unit=next(iter(units)) if len(units) == 1 else None,
            avg_cpu_utilization=sum(cpu) / len(cpu) if cpu else None,
            avg_memory_utilization=sum(memory) / len(memory) if memory else None,
            records=records[:n],
            resources=resources[:n],
            confidence=confidence_of(completeness, estimated),
            data_completeness=round(min(max(completeness, 0.0), 1.0), 6),
            notes=notes,
        )

    @contextmanager
    def _open(self, source: str) -> Iterator[ApiSource | WarehouseSource]:
        if source == "api":
            yield ApiSource(self.bulk, self.settings)
            return
        warehouse = WarehouseSource(self.provider, self.settings)
        try:
            yield warehouse
        finally:
            warehouse.close()

    def _resource_type(self, resource_type: str, types: dict[str, list[MetricSpec]]) -> str:
        name = str(resource_type or "").strip().lower()
        if name in types:
            return name
        if TYPE_ALIASES.get(name) in types:
            return TYPE_ALIASES[name]
        raise ValueError(
            f"unknown {self.provider} resource type {resource_type!r}: pass one of {', '.join(sorted(types))}"
        )

    def _check_grain(self, needed: frozenset[str], source: str) -> None:
        if self.provider == "aws" and source == "api" and "resource" not in needed and len(needed) > 2:
            raise ValueError(
                f"AWS Cost Explorer groups by at most two dimensions, this needs {sorted(needed)} "
                "(group_by plus the resource_types/regions/filters selections): drop one, or pass "
                "source='warehouse'"
            )

    def _ready(self, source: str, method: str) -> bool:
        if not self.settings.usage_integration_enabled:
            log.warning(
                "%s: usage integration is disabled (USAGE_INTEGRATION_ENABLED is false); returning None", method
            )
            return False
        if source == "warehouse":
            return True
        reason = self.unavailable_reason()
        if reason:
            log.warning("%s: %s; returning None", method, reason)
            return False
        return True

    def _answer(self, method: str, key: tuple, compute: Callable[[], Any], use_cache: bool):
        def guarded():
            try:
                return compute()
            except Exception as exc:  # noqa: BLE001 - the original API's contract: log and return None
                log.error("%s for %s failed: %s", method, self.provider, exc)
                return None

        if not use_cache:
            return guarded()
        return self.cache.get_or_compute(key, guarded)


_HOURLY = (
    "granularity HOURLY is not available for cost: billing data is daily; pass 'DAILY' or "
    "'MONTHLY' (hourly metrics come from get_resource_usage)"
)


def _granularity(value: Any) -> Granularity:
    gran = Granularity(value)
    if gran is Granularity.HOURLY:
        raise ValueError(_HOURLY)
    return gran


def _source(value: str | None) -> str:
    name = (value or "api").strip().lower()
    if name not in SOURCES:
        raise ValueError(f"source={value!r}: pass 'api' (ask the cloud) or 'warehouse' (read the lake)")
    return name


def _filters(filters: dict[str, Any] | None) -> dict[str, set[str]]:
    parsed: dict[str, set[str]] = {}
    for name, values in (filters or {}).items():
        ((_, canonical),) = parse_group_by([name])
        values = [values] if isinstance(values, str) else list(values)
        parsed[canonical] = {str(v).lower() for v in values}
    return parsed


def _canonical_metrics(names: list[str], specs_by_type: dict[str, list[MetricSpec]]) -> set[str]:
    """Canonical names for metric names given natively (CPUUtilization) or canonically."""
    specs = [s for specs in specs_by_type.values() for s in specs]
    found = set()
    for name in names:
        matches = {s.canonical for s in specs if name in (s.native, s.canonical)} or {
            s.canonical for s in specs if name.lower() in (s.native.lower(), s.canonical.lower())
        }
        if not matches:
            known = ", ".join(sorted({f"{s.native} ({s.canonical})" for s in specs}))
            raise ValueError(
                f"metric {name!r} is not collected for {', '.join(sorted(specs_by_type))}: pass any of {known}"
            )
        found |= matches
    return found


def _tags_match(tags: dict[str, str], wanted: dict[str, str] | None) -> bool:
    return not wanted or all(tags.get(k) == v for k, v in wanted.items())


def _query_key(query: UsageQuery) -> tuple:
    """Every field of the query (so two different questions never share an answer)."""

    def frozen(value):
        if isinstance(value, dict):
            return tuple(sorted((k, frozen(v)) for k, v in value.items()))
        if isinstance(value, (list, tuple)):
            return tuple(frozen(v) for v in value)
        return value

    return tuple((name, frozen(getattr(query, name))) for name in type(query).model_fields)


__all__ = ["UsageAdapter", "bulk_adapter_class", "metric_table", "parse_period"]
