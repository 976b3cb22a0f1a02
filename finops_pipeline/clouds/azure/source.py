"""Azure: Cost Management `query.usage` billing and Azure Monitor metrics, per subscription.

Cost (per subscription, per window; at most two groupings per request, so the
contract's grain is assembled from a plan of small queries — see docs/azure.md):

1. ``ChargeType`` totals, for ActualCost and for AmortizedCost: which charge types the
   window has, and the provider's own daily total per currency.
2. For each charge type seen: ``ResourceId`` x ``ServiceName`` rows filtered to that
   charge type, ActualCost (billed) and AmortizedCost (effective); outer-joined.
3. ``ResourceId`` x ``ResourceLocation`` (ActualCost): each resource's region. A resource
   has one location, so this is a lookup, not part of the money grain. The same rows
   tell the metrics side which resources to ask Azure Monitor about. Cost Management
   answers locations in its own display form ("US East", "EU West"), which the seed
   ``sql/seeds/azure_regions.csv`` maps to ARM region names (``eastus``); a value the
   seed does not know is kept as it came and counted in ``unmapped_regions``.

Every page is followed through ``nextLink`` (the SDK returns only the first), columns
are read by name, ``UsageDate`` is an integer YYYYMMDD, and amounts stay per currency.

Metrics: one subscription-scope query (``Metrics - List At Subscription Scope Post``, the
parameters and the ``Microsoft.ResourceId`` filter in the JSON body, so 50 ids never meet a
URL length limit) per subscription x region x type, or one ``metrics.list`` call for a
resource whose region is unknown; all metric names at once, ``interval="PT1H"``. A gauge's
timestamp without values is a gap (no row); a counter's is 0, and so is every hour of a
counter whose series a batch answer left out (split results have no series for a resource
without data).

Retries are ours, not azure-core's (its policy ignores Cost Management's
``x-ms-ratelimit-microsoft.costmanagement-*-retry-after`` headers): 429s wait the longest
advertised time capped by AZURE_MAX_RETRY_WAIT_SECONDS, 5xx and connection errors back
off with jitter, both bounded; anything else raises CloudApiError saying the fix.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa

from finops_pipeline.clouds import pacing
from finops_pipeline.clouds.azure.catalog import (
    ARM_READS_QUOTA,
    ARM_TYPES,
    BATCH_LIMIT,
    CHARGE_CATEGORIES,
    COST_MANAGEMENT_QPU_QUOTA,
    COST_PRICE_PER_CALL,
    COST_SOURCE,
    DISCOVERY_LOOKBACK_DAYS,
    MAX_THROTTLE_RETRIES,
    MAX_TRANSIENT_RETRIES,
    METRICS,
    METRICS_API_VERSION,
    MONITOR_PRICE_PER_CALL,
    NAMESPACES,
    PROVIDER,
    QUERY_MAX_DAYS,
    REGIONS_SEED,
)
from finops_pipeline.clouds.base import (
    ApiUsage,
    CloudApiError,
    CloudSource,
    CostFetch,
    MetricSpec,
    ResourceRef,
    backoff_delays,
    money,
    utc_now,
)
from finops_pipeline.settings import SettingsError
from finops_pipeline.warehouse.schemas import COST_DAILY, METRICS_HOURLY

_AGGREGATIONS = {"average": "avg", "maximum": "max", "minimum": "min", "total": "sum", "count": "sample_count"}
_GAUGE_AGGREGATIONS = ("Average", "Maximum", "Minimum", "Count")
_COUNTER_AGGREGATIONS = ("Total", "Count")
_RETRY_AFTER = re.compile(r"^(retry-after|x-ms-ratelimit-.*retry-after)$", re.IGNORECASE)
_RETRY_AFTER_MS = ("retry-after-ms", "x-ms-retry-after-ms")
# What is left of a quota, as Azure reports it on every response: ARM reads of the subscription
# (request-limits-and-throttling, "Remaining requests") and Cost Management QPU as
# "QueryResource=<n>" (manage-automation, "QPU quotas").
_REMAINING = ("x-ms-ratelimit-remaining-subscription-reads", "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining")


@dataclass(frozen=True)
class _Located:
    """A resource seen in the cost data, with where it lives: Cost Management's location as it
    came, and its ARM region name (None when the seed does not know the location)."""

    resource_id: str
    subscription_id: str
    location: str | None
    region: str | None


class AzureSource(CloudSource):
    """Azure Cost Management + Azure Monitor for one or more subscriptions.

    Give it built clients (tests, the simulator) or a credential (+ ``base_url`` for a
    non-public ARM endpoint); :meth:`from_settings` does the latter from settings.
    ``sleep`` is injectable so tests can see the waits chosen without waiting.
    With ``pacing_dir``, every call first waits its turn in its documented quota (Cost
    Management QPU per tenant, ARM reads per subscription), shared through that directory
    with the other runs; a 429's advertised wait then holds every caller of the quota.
    """

    provider = PROVIDER

    METRICS = METRICS

    def __init__(
        self,
        subscription_ids: list[str] | tuple[str, ...],
        *,
        cost_client: Any = None,
        monitor_client: Any = None,
        credential: Any = None,
        base_url: str | None = None,
        resource_ids: list[str] | tuple[str, ...] = (),
        max_retry_wait_seconds: float = 300,
        sleep: Callable[[float], None] = time.sleep,
        export: Any = None,
        pacing_dir: Path | None = None,
        tenant_id: str | None = None,
    ):
        if not subscription_ids:
            raise SettingsError(
                "AZURE_SUBSCRIPTION_IDS", "", "a comma list of subscription ids (or set AZURE_SUBSCRIPTION_ID)"
            )
        self.subscription_ids = tuple(subscription_ids)
        if cost_client is None or monitor_client is None:
            if credential is None:
                raise CloudApiError(PROVIDER, "configuration", "give built clients or a credential")
            cost_client = cost_client or build_cost_client(credential, base_url)
            monitor_client = monitor_client or build_monitor_client(credential, self.subscription_ids[0], base_url)
        self.cost_client = cost_client
        self.monitor_client = monitor_client
        self.resource_ids = tuple(r.lower() for r in resource_ids)
        self.max_retry_wait_seconds = max_retry_wait_seconds
        self.sleep = sleep
        self.api = ApiUsage()
        self.waits: list[float] = []  # every wait chosen, in order (visible to tests and metadata)
        self._locations: dict[tuple, list[_Located]] = {}
        self._export = export  # the FocusCost export's AzureExportReader (AZURE_COST_SOURCE=export)
        self.pacing_dir = pacing_dir
        self.tenant_id = tenant_id or "default"

    @classmethod
    def from_settings(
        cls, settings, credential: Any = None, sleep: Callable[[float], None] = time.sleep
    ) -> AzureSource:
        """Clients from DefaultAzureCredential (service principal in the environment,
        workload or managed identity, Azure CLI ...), tenant from AZURE_TENANT_ID; or
        from ``credential`` when given (tests give the service principal's own).

        AZURE_RESOURCE_MANAGER_ENDPOINT points both clients at a non-public ARM endpoint
        (a sovereign cloud, Azure Stack Hub, the simulator); its token authority comes
        from AZURE_AUTHORITY_HOST, which Microsoft's instance discovery does not know, so
        discovery is switched off there (and only there).
        """
        from azure.identity import DefaultAzureCredential

        options: dict[str, Any] = {}
        if settings.azure_tenant_id:
            options.update(
                workload_identity_tenant_id=settings.azure_tenant_id, shared_cache_tenant_id=settings.azure_tenant_id
            )
        if settings.azure_resource_manager_endpoint:
            options["disable_instance_discovery"] = True
        if credential is None:
            credential = DefaultAzureCredential(**options)
        export = None
        if settings.azure_cost_source == "export":
            from finops_pipeline.clouds.azure.export import AzureExportReader, container_client, parse_export_uri

            location = parse_export_uri(settings.azure_export_uri)
            export = AzureExportReader(
                container_client(location, credential), location, settle_day=settings.azure_restatement_close_day
            )
        return cls(
            settings.azure_subscription_ids,
            credential=credential,
            base_url=settings.azure_resource_manager_endpoint,
            resource_ids=settings.azure_resource_ids,
            max_retry_wait_seconds=settings.azure_max_retry_wait_seconds,
            export=export,
            pacing_dir=settings.pacing_dir,
            tenant_id=settings.azure_tenant_id,
            sleep=sleep,
        )

    def export_reader(self):
        """The FocusCost export's reader (AZURE_COST_SOURCE=export), sharing this source's API usage."""
        if self._export is None:
            raise SettingsError("AZURE_COST_SOURCE", "api", "export, with AZURE_EXPORT_URI, to read the export")
        self._export.api = self.api
        return self._export

    # -- cost ----------------------------------------------------------------------
    def fetch_cost(self, start: date, end: date, group_by: tuple[str, ...] | None = None) -> CostFetch:
        """cost_daily rows for [start, end) across the subscriptions (full grain; ``group_by`` is
        accepted for the interface, the grain below already covers every canonical dimension)."""
        if end <= start:
            raise ValueError(f"empty cost window [{start}, {end}): end must be after start")
        ingested_at = utc_now()
        rows: list[dict] = []
        totals: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        unmapped: dict[str, int] = defaultdict(int)  # location the seed does not know -> rows
        for sub in self.subscription_ids:
            lines, sub_totals = self._subscription_cost(sub, start, end)
            located = {r.resource_id: r for r in self._located_resources(sub, start, end)}
            for (day, charge_type, rid, service, currency), line in sorted(lines.items(), key=_sort_key):
                where = located.get(rid) if rid else None
                if where is not None and where.location and where.region is None:
                    unmapped[where.location] += 1
                rows.append(
                    {
                        "provider": PROVIDER,
                        "usage_date": day,
                        "billing_account_id": sub,
                        "sub_account_id": sub,
                        "service_name": service or "Unassigned",
                        "region": (where.region or where.location) if where else None,
                        "resource_id": rid or None,
                        "resource_name": rid.rsplit("/", 1)[-1] if rid else None,
                        "resource_type": resource_type_of(rid) if rid else None,
                        "charge_category": CHARGE_CATEGORIES.get(charge_type.lower(), "Adjustment"),
                        "charge_description": charge_type,
                        "usage_quantity": line["quantity"],
                        "billed_cost": line["billed"],
                        "effective_cost": line["effective"],
                        "billing_currency": currency,
                        "is_estimated": False,
                        "source": COST_SOURCE,
                        "ingested_at": ingested_at,
                    }
                )
            for day, by_currency in sub_totals.items():
                for currency, amount in by_currency.items():
                    totals[day][currency] += amount
        self.api.notes.setdefault("unmapped_regions", "0")
        self._count("unmapped_regions", sum(unmapped.values()))
        if unmapped:
            self.api.notes["unmapped_region_values"] = ", ".join(sorted(unmapped)[:20])
        days = [start + timedelta(days=i) for i in range((end - start).days)]
        table = _cost_table(rows)
        return CostFetch(cost=table, days=days, provider_totals={d: dict(t) for d, t in sorted(totals.items())})

    def daily_totals(self, start: date, end: date) -> dict[date, dict[str, Decimal]]:
        """Cost Management's own ActualCost total per UTC day and currency over the subscriptions:
        one ungrouped Daily query per subscription (what an export's totals are reconciled with)."""
        totals: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for sub in self.subscription_ids:
            for rec in self.query_cost(sub, start, end, "ActualCost", []):
                totals[rec["UsageDate"]][rec["Currency"]] += rec["Cost"]
        return {day: dict(by_currency) for day, by_currency in sorted(totals.items())}

    def _subscription_cost(self, sub: str, start: date, end: date):
        """(day, charge type, resource, service, currency) -> billed/effective/quantity, and the
        provider's ActualCost total per day and currency."""
        lines: dict[tuple, dict] = {}
        totals: dict[date, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for cost_type, column in (("ActualCost", "billed"), ("AmortizedCost", "effective")):
            charge_types = set()
            for rec in self.query_cost(sub, start, end, cost_type, ["ChargeType"]):
                charge_types.add(rec["ChargeType"])
                if cost_type == "ActualCost":
                    totals[rec["UsageDate"]][rec["Currency"]] += rec["Cost"]
            for charge_type in sorted(charge_types):
                records = self.query_cost(
                    sub, start, end, cost_type, ["ResourceId", "ServiceName"], charge_type=charge_type
                )
                for rec in records:
                    key = (
                        rec["UsageDate"],
                        charge_type,
                        (rec["ResourceId"] or "").lower(),
                        rec["ServiceName"] or "",
                        rec["Currency"],
                    )
                    line = lines.setdefault(key, {"billed": Decimal(0), "effective": Decimal(0), "quantity": None})
                    line[column] += rec["Cost"]
                    if cost_type == "ActualCost" or line["quantity"] is None:
                        line["quantity"] = rec.get("UsageQuantity")
        return lines, totals

    def _located_resources(self, sub: str, start: date, end: date) -> list[_Located]:
        """Resources (lower-case ids) billed to a subscription in the window, with their location."""
        key = (sub, start, end)
        located = self._locations
        if key not in located:
            seen: dict[str, str | None] = {}
            for rec in self.query_cost(sub, start, end, "ActualCost", ["ResourceId", "ResourceLocation"]):
                rid = (rec["ResourceId"] or "").lower()
                if rid:
                    seen[rid] = (rec["ResourceLocation"] or "").strip() or seen.get(rid)
            located[key] = [_Located(rid, sub, where, arm_region(where)) for rid, where in sorted(seen.items())]
        return located[key]

    def query_cost(
        self, sub: str, start: date, end: date, cost_type: str, grouping: list[str], charge_type: str | None = None
    ) -> Iterator[dict]:
        """Every row of one Cost Management query (all nextLink pages), as dicts keyed by column
        name, with UsageDate as a date, Cost as Decimal and UsageQuantity as float. A range longer
        than QUERY_MAX_DAYS is asked in consecutive windows (Azure refuses a period over a year)."""
        if len(grouping) > 2:
            raise ValueError("Cost Management accepts at most two groupings per query")
        window = start
        while window < end:
            upto = min(end, window + timedelta(days=QUERY_MAX_DAYS))
            yield from self._query_window(sub, window, upto, cost_type, grouping, charge_type)
            window = upto

    def _query_window(
        self, sub: str, start: date, end: date, cost_type: str, grouping: list[str], charge_type: str | None
    ) -> Iterator[dict]:
        scope = f"/subscriptions/{sub}"
        body: dict[str, Any] = {
            "type": cost_type,
            "timeframe": "Custom",
            "timePeriod": {
                "from": f"{start.isoformat()}T00:00:00+00:00",
                "to": f"{(end - timedelta(days=1)).isoformat()}T23:59:59+00:00",
            },
            "dataset": {
                "granularity": "Daily",
                "aggregation": {
                    "Cost": {"name": "Cost", "function": "Sum"},
                    "UsageQuantity": {"name": "UsageQuantity", "function": "Sum"},
                },
                "grouping": [{"type": "Dimension", "name": g} for g in grouping],
            },
        }
        if charge_type is not None:
            body["dataset"]["filter"] = {
                "dimensions": {"name": "ChargeType", "operator": "In", "values": [charge_type]}
            }
        operation = "costmanagement.query.usage"
        page = self._call(
            operation,
            scope,
            COST_PRICE_PER_CALL,
            "Cost Management Reader",
            lambda hook: self.cost_client.query.usage(scope, body, raw_response_hook=hook),
        )
        pages = 0
        while page is not None:
            pages += 1
            properties = _as_dict(page).get("properties") or {}
            yield from _records(properties, cost_type, scope)
            next_link = properties.get("nextLink")
            if not next_link:
                break
            page = self._call(
                operation + ".nextLink",
                scope,
                COST_PRICE_PER_CALL,
                "Cost Management Reader",
                lambda hook: self._post_json(next_link, body, hook),  # noqa: B023 - called now
            )

    def _post_json(self, url: str, body: dict, hook) -> dict | None:
        """A nextLink page; None for 204 No Content, which Query - Usage may answer (as the SDK's
        query.usage returns None for the first page)."""
        from azure.core.rest import HttpRequest

        response = self.cost_client.send_request(HttpRequest("POST", url, json=body), raw_response_hook=hook)
        response.raise_for_status()
        return None if response.status_code == 204 else response.json()

    # -- metrics -------------------------------------------------------------------
    def discover_resources(self, start: date, end: date) -> list[ResourceRef]:
        """Resources of supported types in the cost data of [start - lookback, end), plus AZURE_RESOURCE_IDS."""
        found: dict[str, ResourceRef] = {}
        for sub in self.subscription_ids:
            for loc in self._located_resources(sub, start - timedelta(days=DISCOVERY_LOOKBACK_DAYS), end):
                rtype = resource_type_of(loc.resource_id)
                if rtype in self.METRICS:
                    found[loc.resource_id] = ResourceRef(loc.resource_id, rtype, loc.region, sub)
        for rid in self.resource_ids:
            rtype = resource_type_of(rid)
            if rtype not in self.METRICS:
                raise SettingsError(
                    "AZURE_RESOURCE_IDS", rid, f"ids of supported resource types: {', '.join(sorted(ARM_TYPES))}"
                )
            found.setdefault(rid, ResourceRef(rid, rtype, None, _subscription_of(rid)))
        return [found[k] for k in sorted(found)]

    def iter_metric_frames(
        self,
        start: datetime,
        end: datetime,
        resources: list[ResourceRef] | None = None,
        metrics: list[str] | None = None,
    ) -> Iterator[pa.Table]:
        """metrics_hourly rows for hours in [start, end): one page per call.

        Resources sharing subscription, region and type go in one subscription-scope call
        (up to BATCH_LIMIT, filtered to their ids); a resource without a known region gets a
        per-resource call.
        """
        start, end = _utc(start), _utc(end)
        if resources is None:
            last_day = (end - timedelta(microseconds=1)).date()
            resources = self.discover_resources(start.date(), last_day + timedelta(days=1))
        timespan = f"{_iso(start)}/{_iso(end)}"
        groups: dict[tuple, list[ResourceRef]] = defaultdict(list)
        for ref in resources:
            if not self._specs(ref.resource_type, metrics):
                continue
            batchable = ref.region and ref.sub_account_id
            key = (ref.sub_account_id, ref.region, ref.resource_type) if batchable else ("one", ref.resource_id)
            groups[key].append(ref)
        for key, refs in groups.items():
            specs = self._specs(refs[0].resource_type, metrics)
            if key[0] == "one":
                tables = [self._resource_metrics(refs[0], specs, timespan, start, end)]
            else:
                tables = (
                    self._batch_metrics(refs[i : i + BATCH_LIMIT], specs, timespan, start, end)
                    for i in range(0, len(refs), BATCH_LIMIT)
                )
            for table in tables:
                if table is not None and table.num_rows:
                    yield table

    def _specs(self, resource_type: str, metrics: list[str] | None) -> list[MetricSpec]:
        return [s for s in self.METRICS.get(resource_type, []) if metrics is None or s.canonical in metrics]

    def _resource_metrics(
        self, ref: ResourceRef, specs: list[MetricSpec], timespan: str, start: datetime, end: datetime
    ) -> pa.Table | None:
        rid = ref.resource_id.lower()
        response = self._call(
            "monitor.metrics.list",
            rid,
            MONITOR_PRICE_PER_CALL,
            "Monitoring Reader",
            lambda hook: _send_json(
                self.cost_client,
                "GET",
                f"{rid}/providers/Microsoft.Insights/metrics",
                {
                    "timespan": timespan,
                    "interval": "PT1H",
                    "metricnames": ",".join(s.native for s in specs),
                    "aggregation": _aggregations(specs),
                },
                hook,
            ),
            missing_ok=True,
        )
        if response is None:  # deleted since it was billed
            self._count("monitor_resources_not_found", 1)
            return None
        rows: dict[str, list] = defaultdict(list)
        region = response.get("resourceregion") or ref.region
        by_native = {s.native.lower(): s for s in specs}
        for metric in response.get("value") or []:
            spec = by_native.get(((metric.get("name") or {}).get("value") or "").lower())
            for series in (metric.get("timeseries") or []) if spec else []:
                _append_points(rows, ref, rid, region, spec, series.get("data"), start, end)
        return _metrics_table(rows)

    def _batch_metrics(
        self, refs: list[ResourceRef], specs: list[MetricSpec], timespan: str, start: datetime, end: datetime
    ) -> pa.Table:
        """One subscription-scope call for resources of one type in one region.

        Split by ``Microsoft.ResourceId``, the answer holds a series only for the resources
        that had data: a counter series missing for a resource asked for is 0 for every hour
        (an idle database's connections), a missing gauge stays a gap.
        """
        sub, region, rtype = refs[0].sub_account_id, refs[0].region, refs[0].resource_type
        by_id = {r.resource_id.lower(): r for r in refs}
        body = {
            "timespan": timespan,
            "interval": "PT1H",
            "metricNames": ",".join(s.native for s in specs),
            "aggregation": _aggregations(specs),
            "top": len(refs),
            "metricNamespace": NAMESPACES[rtype],
            "filter": " or ".join(f"Microsoft.ResourceId eq '{rid}'" for rid in by_id),
        }
        path = f"/subscriptions/{sub}/providers/Microsoft.Insights/metrics"
        response = self._call(
            "monitor.metrics.list_at_subscription_scope_post",
            f"/subscriptions/{sub}",
            MONITOR_PRICE_PER_CALL,
            "Monitoring Reader",
            lambda hook: _send_json(self.cost_client, "POST", path, {"region": region}, hook, body),
        )
        rows: dict[str, list] = defaultdict(list)
        by_native = {s.native.lower(): s for s in specs}
        answered: set[tuple[str, str]] = set()  # (resource id, native metric) with a series
        for metric in response.get("value") or []:
            spec = by_native.get(((metric.get("name") or {}).get("value") or "").lower())
            for series in (metric.get("timeseries") or []) if spec else []:
                rid = next(
                    (
                        str(m.get("value")).lower()
                        for m in series.get("metadatavalues") or []
                        if ((m.get("name") or {}).get("value") or "").lower() == "microsoft.resourceid"
                    ),
                    None,
                )
                if rid in by_id:
                    answered.add((rid, spec.native))
                    _append_points(rows, by_id[rid], rid, region, spec, series.get("data"), start, end)
        idle_hours = [
            {"timeStamp": _iso(start + timedelta(hours=h))} for h in range(int((end - start).total_seconds() // 3600))
        ]
        filled = 0
        for rid, ref in by_id.items():
            for spec in specs:
                if spec.kind == "counter" and (rid, spec.native) not in answered:
                    _append_points(rows, ref, rid, region, spec, idle_hours, start, end)
                    filled += 1
        self._count("monitor_counter_series_zero_filled", filled)
        self._count("monitor_resources_without_series", len(by_id) - len({rid for rid, _ in answered}))
        return _metrics_table(rows)

    def _count(self, note: str, count: int) -> None:
        """Add ``count`` to a counter kept in the API notes (shown in the asset's metadata)."""
        if count:
            self.api.notes[note] = str(int(self.api.notes.get(note, "0")) + count)

    # -- calls, retries, errors -------------------------------------------------------
    def _call(self, operation: str, scope: str, price: Decimal, role: str, send: Callable, missing_ok: bool = False):
        """Run one HTTP call with our retry rules; returns its result (None: 404 and missing_ok)."""
        from azure.core.exceptions import (
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        throttled = transient = 0
        delays = backoff_delays(MAX_TRANSIENT_RETRIES + 1)
        quota = self._quota(operation, scope)
        while True:
            sent_at = None
            if quota is not None:
                quota.acquire()
                sent_at = quota.clock()
            self.api.record(operation, price)
            try:
                return send(lambda pipeline_response, sent_at=sent_at: self._observe(pipeline_response, quota, sent_at))
            except HttpResponseError as exc:
                response = exc.response
                if from_credential(exc):  # the token request failed, not the ARM call
                    raise CloudApiError(PROVIDER, operation, credential_reason(exc)) from None
                status = response.status_code
                if status == 429 and throttled < MAX_THROTTLE_RETRIES:
                    throttled += 1
                    self._observe_headers(response.headers, quota, sent_at)
                    advertised = advertised_wait(response.headers)
                    wait = advertised if advertised is not None else delays[min(throttled, len(delays) - 1)]
                    self._wait(wait, quota, sent_at if advertised is not None else None)
                    continue
                if status >= 500 and transient < MAX_TRANSIENT_RETRIES:
                    advertised = advertised_wait(response.headers)
                    self._wait(advertised if advertised is not None else delays[transient])
                    transient += 1
                    continue
                code, message = _error_body(response)
                if status == 404 and missing_ok and code.lower() in ("resourcenotfound", "notfound", ""):
                    return None
                raise CloudApiError(
                    PROVIDER,
                    operation,
                    _http_reason(status, code, message, scope, role),
                    retryable=status >= 500 or status == 429,
                ) from None
            except (ServiceRequestError, ServiceResponseError) as exc:
                if transient >= MAX_TRANSIENT_RETRIES:
                    raise CloudApiError(
                        PROVIDER,
                        operation,
                        f"could not reach Azure Resource Manager ({type(exc).__name__}) after "
                        f"{transient + 1} attempts; check network access to the ARM endpoint",
                        retryable=True,
                    ) from None
                self._wait(delays[transient])
                transient += 1

    def _quota(self, operation: str, scope: str) -> pacing.Quota | None:
        """The documented quota a call spends (None when pacing is off)."""
        if self.pacing_dir is None:
            return None
        if operation.startswith("costmanagement"):
            return pacing.quota(
                f"azure-costmanagement-qpu-{self.tenant_id}", COST_MANAGEMENT_QPU_QUOTA, self.pacing_dir, windowed=True
            )
        return pacing.quota(f"azure-arm-reads-{_subscription_of(scope)}", ARM_READS_QUOTA, self.pacing_dir)

    def _wait(self, seconds: float, quota: pacing.Quota | None = None, sent_at: float | None = None) -> None:
        """Wait before a retry; a throttle's wait (``quota`` given) holds every caller of the quota
        (and, for a windowed quota, places the window's reset: ``sent_at`` of the refused call)."""
        seconds = max(0.0, min(float(seconds), float(self.max_retry_wait_seconds)))
        self.api.retries += 1
        self.waits.append(seconds)
        if quota is not None:
            quota.hold(seconds, sent_at)  # the next acquire() waits it out
        else:
            self.sleep(seconds)

    def _observe(self, pipeline_response, quota: pacing.Quota | None = None, sent_at: float | None = None) -> None:
        self._observe_headers(pipeline_response.http_response.headers, quota, sent_at)

    def _observe_headers(self, headers, quota: pacing.Quota | None = None, sent_at: float | None = None) -> None:
        """Keep the last quota headers seen (remaining reads/QPU, retry-after) for metadata, and
        tell the quota what Azure says is left of it."""
        for name, value in headers.items():
            lower = name.lower()
            if lower.startswith("x-ms-ratelimit-"):
                self.api.notes[lower] = value
                if quota is not None and lower in _REMAINING:
                    left = _remaining(value)
                    if left is not None:
                        quota.observe_remaining(left, sent_at)


def _aggregations(specs: list[MetricSpec]) -> str:
    """The union of the aggregations the specs need, as Azure's comma list."""
    needed = {a for s in specs for a in (_GAUGE_AGGREGATIONS if s.kind == "gauge" else _COUNTER_AGGREGATIONS)}
    return ",".join(sorted(needed))


def _append_points(
    rows: dict[str, list],
    ref: ResourceRef,
    rid: str,
    region: str | None,
    spec: MetricSpec,
    points,
    start: datetime,
    end: datetime,
) -> None:
    """Add one series' hourly points to the column lists. A timestamp without values is a gap
    for a gauge (nothing measured) but zero for a counter: count metrics are emitted only
    when something happens (the reason metric definitions carry ``fillGapWithZero``), so an
    idle hour of connections or requests comes back bare, and an idle database must read 0."""
    ingested_at = utc_now()
    for point in points or []:
        hour = _utc(datetime.fromisoformat(point["timeStamp"]))
        if not start <= hour < end:
            continue
        values = {col: point.get(agg) for agg, col in _AGGREGATIONS.items()}
        if all(values[c] is None for c in ("avg", "max", "min", "sum")):
            if spec.kind != "counter":
                continue
            values["sum"] = 0.0
        for col in ("avg", "max", "min", "sum"):
            if values[col] is not None:
                values[col] = float(values[col]) * spec.scale
        rows["provider"].append(PROVIDER)
        rows["usage_date"].append(hour.date())
        rows["hour_start"].append(hour)
        rows["resource_id"].append(rid)
        rows["resource_name"].append(rid.rsplit("/", 1)[-1])
        rows["resource_type"].append(ref.resource_type)
        rows["region"].append(region)
        rows["sub_account_id"].append(ref.sub_account_id or _subscription_of(rid))
        rows["metric"].append(spec.canonical)
        rows["native_metric"].append(spec.native)
        rows["unit"].append(spec.unit)
        for col in ("avg", "max", "min", "sum", "sample_count"):
            rows[col].append(None if values[col] is None else float(values[col]))
        rows["ingested_at"].append(ingested_at)


def _send_json(client, method: str, path: str, params: dict[str, str], hook, body: dict | None = None) -> dict:
    """Send a request for an ARM path through an ARM client's pipeline (its credential, endpoint
    and policies; ``send_request`` is the SDK's way to call any ARM endpoint) and return the JSON
    body. Monitor metrics go this way: azure-mgmt-monitor's methods build a model object per
    datapoint, three quarters of a metrics day's CPU, and it has no public send_request."""
    from azure.core.rest import HttpRequest

    request = HttpRequest(
        method,
        path,
        params={"api-version": METRICS_API_VERSION, **params},
        headers={"Accept": "application/json"},
        json=body,
    )
    response = client.send_request(request, raw_response_hook=hook)
    response.raise_for_status()
    return response.json()


def _remaining(value: str) -> int | None:
    """What is left in the shortest window: ``11999`` (ARM reads), or Cost Management's "list of
    remaining quotas" (``QueriesPer10Sec:11,QueriesPerMin:59,QueriesPerHour:599``; older answers
    ``QueryResource=11``) -> the 10-second entry; None when there is none (e.g. only the minute
    and hour entries)."""
    pairs = re.findall(r"([A-Za-z][A-Za-z0-9]*)\s*[:=]\s*(\d+)", str(value))
    if not pairs:
        m = re.fullmatch(r"\s*(\d+)\s*", str(value))
        return int(m.group(1)) if m else None
    if len(pairs) == 1 and not re.search(r"min|hour", pairs[0][0], re.IGNORECASE):
        return int(pairs[0][1])
    shortest = [int(v) for k, v in pairs if re.search(r"10\s*sec", k, re.IGNORECASE)]
    return shortest[0] if shortest else None


def advertised_wait(headers) -> float | None:
    """The longest wait any Retry-After style header asks for (seconds), None if none does."""
    waits = []
    for name, value in headers.items():
        lower = name.lower()
        try:
            if lower in _RETRY_AFTER_MS:
                waits.append(float(value) / 1000)
            elif _RETRY_AFTER.match(lower):
                waits.append(float(value))
        except (TypeError, ValueError):
            continue  # an HTTP-date Retry-After: fall back to backoff
    return max(waits) if waits else None


@cache
def _region_names(path: Path = REGIONS_SEED) -> dict[str, str]:
    """Lower-case location -> ARM region name: the seed's display forms, and every ARM name itself."""
    with open(path, newline="") as fh:
        rows = [(r["display_name"].strip().lower(), r["arm_name"].strip()) for r in csv.DictReader(fh)]
    return {**{arm: arm for _, arm in rows}, **dict(rows)}


def arm_region(location: str | None) -> str | None:
    """The ARM region name (``eastus``) of a Cost Management ResourceLocation ("US East"), also
    accepting an ARM name or its spaced display name ("East US"); None if the seed does not know it."""
    if not location:
        return None
    key = location.strip().lower()
    names = _region_names()
    return names.get(key) or names.get(key.replace(" ", ""))


def resource_type_of(resource_id: str) -> str | None:
    """The usage API's type for an ARM resource id ('virtual_machine', ...), else the ARM type."""
    parts = resource_id.strip("/").split("/")
    lower = [p.lower() for p in parts]
    if "providers" not in lower:
        return None
    rest = parts[lower.index("providers") + 1 :]
    # namespace/type/name[/subtype/name...] -> namespace/type[/subtype...]
    arm_type = "/".join([rest[0]] + rest[1::2]).lower() if rest else ""
    return ARM_TYPES.get(arm_type, arm_type or None)


def build_cost_client(credential, base_url: str | None = None):
    """CostManagementClient without azure-core retries (we retry; see module doc)."""
    from azure.mgmt.costmanagement import CostManagementClient

    return CostManagementClient(credential, **_client_options(base_url))


def build_monitor_client(credential, subscription_id: str, base_url: str | None = None):
    """MonitorManagementClient without azure-core retries (we retry; see module doc)."""
    from azure.mgmt.monitor import MonitorManagementClient

    return MonitorManagementClient(credential, subscription_id, **_client_options(base_url))


def _client_options(base_url: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {"retry_total": 0}
    if base_url:
        options["base_url"] = base_url.rstrip("/")
        options["credential_scopes"] = [base_url.rstrip("/") + "/.default"]
    return options


def _subscription_of(resource_id: str) -> str | None:
    parts = resource_id.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else None


def _as_dict(page) -> dict:
    if isinstance(page, dict):
        return page
    if hasattr(page, "as_dict"):
        return page.as_dict()
    return dict(page)


def _records(properties: dict, cost_type: str, scope: str) -> Iterator[dict]:
    columns = [c["name"] for c in properties.get("columns") or []]
    index = {name.lower(): i for i, name in enumerate(columns)}
    cost_col = next((index[c] for c in ("cost", "pretaxcost", "costusd") if c in index), None)
    for needed, position in (
        ("Cost", cost_col),
        ("UsageDate", index.get("usagedate")),
        ("Currency", index.get("currency")),
    ):
        if position is None:
            raise CloudApiError(
                PROVIDER,
                "costmanagement.query.usage",
                f"{cost_type} answer for {scope} has no {needed} column (columns: {columns})",
            )
    for row in properties.get("rows") or []:
        rec = {name: row[i] for i, name in enumerate(columns)}
        rec["Cost"] = money(row[cost_col])
        rec["UsageDate"] = _usage_date(row[index["usagedate"]])
        for name in ("ResourceId", "ServiceName", "ResourceLocation", "ChargeType", "UsageQuantity"):
            if name.lower() in index:
                rec[name] = row[index[name.lower()]]
        if rec.get("UsageQuantity") is not None:
            rec["UsageQuantity"] = float(rec["UsageQuantity"])
        yield rec


def _usage_date(value) -> date:
    """UsageDate: an integer YYYYMMDD (Daily granularity); tolerate an ISO string."""
    text = str(int(value)) if isinstance(value, (int, float)) else str(value)
    if re.fullmatch(r"\d{8}", text):
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return date.fromisoformat(text[:10])


def _sort_key(item):
    (day, charge_type, rid, service, currency), _ = item
    return (day, charge_type, rid, service, currency)


def _cost_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_COST_SCHEMA)


_COST_SCHEMA = COST_DAILY.columns_schema(
    [
        "provider",
        "usage_date",
        "billing_account_id",
        "sub_account_id",
        "service_name",
        "region",
        "resource_id",
        "resource_name",
        "resource_type",
        "charge_category",
        "charge_description",
        "usage_quantity",
        "billed_cost",
        "effective_cost",
        "billing_currency",
        "is_estimated",
        "source",
        "ingested_at",
    ]
)


def _metrics_table(rows: dict[str, list]) -> pa.Table:
    schema = pa.schema(
        [pa.field("provider", pa.string()), pa.field("usage_date", pa.date32())] + list(METRICS_HOURLY.schema)
    )
    if not rows:
        return schema.empty_table()
    return pa.table({f.name: pa.array(rows[f.name], type=f.type) for f in schema}, schema=schema)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_body(response) -> tuple[str, str]:
    try:
        error = json.loads(response.text()).get("error") or {}
        return str(error.get("code") or ""), str(error.get("message") or "")
    except (ValueError, AttributeError, TypeError):
        return "", ""


def _http_reason(status: int, code: str, message: str, scope: str, role: str) -> str:
    detail = f" ({code}: {message})" if code or message else ""
    if code.lower() in ("subscriptionnotfound", "invalidsubscriptionid") or (
        status == 404 and scope.startswith("/subscriptions/") and scope.count("/") == 2
    ):
        return (
            f"subscription {scope.split('/')[2]!r} is unknown to Azure or not in this tenant{detail}; "
            "check AZURE_SUBSCRIPTION_IDS and AZURE_TENANT_ID"
        )
    if status == 401:  # the token itself (wrong tenant or audience, expired): no role assignment fixes it
        return (
            f"Azure rejected the token (HTTP 401) at scope {scope}{detail}; the token must come from the "
            "subscription's tenant and cloud: check AZURE_TENANT_ID and AZURE_RESOURCE_MANAGER_ENDPOINT"
        )
    if status == 403:
        return (
            f"Azure denied access (HTTP 403) at scope {scope}{detail}; the identity needs the "
            f"'{role}' role on that scope (or its subscription): az role assignment create "
            f'--assignee <client-id> --role "{role}" --scope {scope}'
        )
    if status == 429:
        return (
            f"still throttled (HTTP 429) at {scope} after {MAX_THROTTLE_RETRIES} retries{detail}; "
            "run fewer concurrent backfills or raise AZURE_MAX_RETRY_WAIT_SECONDS"
        )
    if status >= 500:
        return f"Azure kept failing (HTTP {status}) at {scope} after {MAX_TRANSIENT_RETRIES} retries{detail}"
    return f"HTTP {status} at {scope}{detail}"


def from_credential(exc) -> bool:
    """Whether an SDK error is the credential failing to get a token (not the service refusing the call)."""
    from azure.core.exceptions import ClientAuthenticationError

    if exc.response is None:
        return True
    if not isinstance(exc, ClientAuthenticationError):
        return False
    request = getattr(exc.response, "request", None)
    return "/oauth2/" in str(getattr(request, "url", ""))


def credential_reason(exc) -> str:
    """What to fix when DefaultAzureCredential (or the credential given) could not get a token."""
    first_line = str(exc.message if hasattr(exc, "message") else exc).splitlines()[0][:300]
    return (
        "could not get an Azure token from DefaultAzureCredential: set AZURE_TENANT_ID, "
        "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal, use a managed/workload "
        f"identity, or run `az login` ({type(exc).__name__}: {first_line})"
    )
