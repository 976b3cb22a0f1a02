"""A local Azure double: Entra ID token endpoint + ARM Cost Management `query` + Monitor `metrics`.

It serves the fleet's Azure resources (two subscriptions, the second billed in EUR) over
HTTPS on 127.0.0.1 with a throw-away self-signed certificate, because azure-identity
only talks to https authorities. :func:`serve_azure` yields the environment that makes a
separate process running the real SDK chain (DefaultAzureCredential -> the environment's
service principal -> this token endpoint; ARM clients -> this endpoint) use it:
AZURE_AUTHORITY_HOST, AZURE_RESOURCE_MANAGER_ENDPOINT and a REQUESTS_CA_BUNDLE that is the
usual CA bundle plus this certificate — the same knobs an Azure Stack Hub user sets.

Behaviour copied from Azure: ResourceIds come back lower-cased from Cost Management,
ResourceLocation in Cost Management's display form ("US East"), UsageDate is an integer YYYYMMDD, pages are chained by ``nextLink`` (``$skiptoken``) and
must be POSTed with the same body, at most two groupings, 404 SubscriptionNotFound,
metric timestamps without values for idle hours, 400 for a malformed ``interval``; the
subscription-scope metrics query omits the series of a resource without data, takes its
parameters from a POST body and refuses a GET URL longer than 2,048 characters.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

from finops_pipeline.simulator.fleet import AZURE_SUBSCRIPTIONS, Fleet, SimResource

TENANT_ID = "00000000-0000-4000-8000-0000000000aa"
CLIENT_ID = "00000000-0000-4000-8000-0000000000cc"
COST_API_VERSIONS = {"2025-03-01", "2023-11-01", "2023-03-01", "2022-10-01", "2021-10-01", "2019-11-01"}


@dataclass(frozen=True)
class NativeMetric:
    """How the double turns a fleet (canonical) series into an Azure Monitor metric."""

    native: str
    canonical: str
    unit: str
    counter: bool
    scale: float = 1.0  # canonical = native * scale


NATIVE_METRICS: dict[str, list[NativeMetric]] = {
    "virtual_machine": [
        NativeMetric("Percentage CPU", "cpu_utilization_pct", "Percent", False),
        NativeMetric("Network In Total", "network_in_bytes", "Bytes", True),
        NativeMetric("Network Out Total", "network_out_bytes", "Bytes", True),
        NativeMetric("Disk Read Bytes", "disk_read_bytes", "Bytes", True),
        NativeMetric("Disk Write Bytes", "disk_write_bytes", "Bytes", True),
        NativeMetric("Available Memory Bytes", "memory_available_bytes", "Bytes", False),
    ],
    "sql_database": [
        NativeMetric("cpu_percent", "cpu_utilization_pct", "Percent", False),
        NativeMetric("connection_successful", "connections", "Count", True),
        NativeMetric("storage_percent", "storage_pct", "Percent", False),
    ],
    "storage_account": [
        NativeMetric("Transactions", "requests", "Count", True),
        NativeMetric("UsedCapacity", "storage_bytes", "Bytes", False),
        NativeMetric("Availability", "availability_pct", "Percent", False),
    ],
    "app_service": [
        NativeMetric("CpuTime", "cpu_seconds", "Seconds", True),
        NativeMetric("Requests", "requests", "Count", True),
        NativeMetric("HttpResponseTime", "response_time_ms", "Seconds", False, 1000.0),
    ],
}
_NAMESPACES = {
    "virtual_machine": "Microsoft.Compute/virtualMachines",
    "sql_database": "Microsoft.Sql/servers/databases",
    "storage_account": "Microsoft.Storage/storageAccounts",
    "app_service": "Microsoft.Web/sites",
}
# Cost Management's ResourceLocation is its own display form, not the ARM region name the rest of
# Azure uses (Azure/azure-sdk-for-go#22599; the FinOps toolkit's Get-FinOpsRegion maps
# "US East" back to eastus). ARM region name -> what Cost Management answers.
COST_LOCATIONS = {
    "eastus": "US East",
    "eastus2": "US East 2",
    "westus": "US West",
    "centralus": "US Central",
    "westeurope": "EU West",
    "northeurope": "EU North",
    "uksouth": "UK South",
    "japaneast": "JA East",
}
_GROUPINGS = {"resourceid", "servicename", "resourcelocation", "chargetype", "meter", "resourcetype", "subscriptionid"}
_AGGREGATIONS = ("average", "maximum", "minimum", "total", "count")
# Longer metrics URLs are refused; multi-resource queries move the filter to a POST body for this
# reason (grafana/grafana#56118, "the limit of 2048 characters for an URL").
MAX_URL_LENGTH = 2048
# Metrics - List At Subscription Scope Post: body property -> the query parameter it stands for.
_BODY_PARAMETERS = {
    "timespan": "timespan",
    "interval": "interval",
    "metricNames": "metricnames",
    "aggregation": "aggregation",
    "filter": "$filter",
    "top": "top",
    "orderBy": "orderby",
    "rollUpBy": "rollupby",
    "resultType": "resultType",
    "metricNamespace": "metricnamespace",
    "autoAdjustTimegrain": "AutoAdjustTimegrain",
    "validateDimensions": "ValidateDimensions",
}
_METRICS_MARKER = "/providers/microsoft.insights/metrics"
# Cost Management's QPU quotas, per tenant, one QPU per query of up to a month of data
# (manage-automation, "QPU quotas": 12 QPU per 10 seconds, 60 per 1 min, 600 per 1 hour); the double
# charges one QPU per query whatever its span (longer queries cost more on Azure: not played). Each
# answer carries `...-qpu-consumed` and `...-qpu-remaining`, a "list of remaining quotas" (same
# page, "Response headers"); the entry names are those of answers quoted in public code
# ("QueriesPer10Sec:11", "QueriesPerHour:577,QueriesPerMin:59"). The page does not say whether
# windows are fixed or sliding: played fixed, aligned on the clock.
QPU_QUOTAS = (("QueriesPer10Sec", 12, 10.0), ("QueriesPerMin", 60, 60.0), ("QueriesPerHour", 600, 3600.0))
# ARM reads per subscription: a token bucket of 250 refilled at 25 per second, the tokens left
# in `x-ms-ratelimit-remaining-subscription-reads`, 429 with Retry-After when empty
# ("Understand how Azure Resource Manager throttles requests": token bucket algorithm,
# "Remaining requests", "Error code").
ARM_READS_BUCKET, ARM_READS_REFILL = 250, 25.0


class AzureQuotas:
    """The tenant's QPU windows and each subscription's ARM read bucket, as the double spends
    them: every answer says what is left, a spent quota is a 429 saying when to retry."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._qpu = {name: (-1, 0) for name, _, _ in QPU_QUOTAS}  # window index, QPU spent in it
        self._reads: dict[str, tuple[float, float]] = {}  # subscription -> (tokens, as of)

    def query(self) -> tuple[float | None, dict[str, str]]:
        """Spend one QPU: (None, headers) when allowed, else (seconds to wait, headers)."""
        with self._lock:
            now = self.clock()
            spent, waits = {}, []
            for name, n, window in QPU_QUOTAS:
                index, used = self._qpu[name]
                if index != math.floor(now / window):
                    index, used = math.floor(now / window), 0
                spent[name] = (index, used)
                if used >= n:
                    waits.append((index + 1) * window - now)
            if not waits:
                spent = {name: (index, used + 1) for name, (index, used) in spent.items()}
            self._qpu.update(spent)
            left = ",".join(f"{name}:{n - spent[name][1]}" for name, n, _ in QPU_QUOTAS)
            headers = {"x-ms-ratelimit-microsoft.costmanagement-qpu-remaining": left}
            if waits:
                headers["x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"] = str(math.ceil(max(waits)))
                return max(waits), headers
            headers["x-ms-ratelimit-microsoft.costmanagement-qpu-consumed"] = "1"
            return None, headers

    def read(self, subscription: str) -> tuple[float | None, dict[str, str]]:
        """Spend one ARM read of ``subscription``: (None, headers) or (seconds to wait, headers)."""
        with self._lock:
            now = self.clock()
            tokens, since = self._reads.get(subscription.lower(), (float(ARM_READS_BUCKET), now))
            tokens = min(float(ARM_READS_BUCKET), tokens + (now - since) * ARM_READS_REFILL)
            wait = None if tokens >= 1 else (1 - tokens) / ARM_READS_REFILL
            if wait is None:
                tokens -= 1
            self._reads[subscription.lower()] = (tokens, now)
            headers = {"x-ms-ratelimit-remaining-subscription-reads": str(int(tokens))}
            if wait is not None:
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return wait, headers

    def spend(self, method: str, path: str) -> tuple[float | None, dict[str, str]]:
        """The quota a request spends (none for token and other unlimited requests)."""
        lower = path.lower()
        if method == "POST" and lower.endswith("/providers/microsoft.costmanagement/query"):
            return self.query()
        sub = re.match(r"^/+subscriptions/([^/]+)", path, re.IGNORECASE)
        if (sub and method == "GET") or lower.endswith(_METRICS_MARKER):
            return self.read(sub.group(1)) if sub else (None, {})
        return None, {}


def _throttled(headers: dict[str, str]) -> tuple[int, dict, dict[str, str]]:
    """The 429 Azure answers for a spent quota (Cost Management's body differs from ARM's)."""
    if any("costmanagement" in k for k in headers):
        return 429, {"error": {"code": "429", "message": "Too many requests. Please retry."}}, headers
    return 429, {"error": {"code": "TooManyRequests", "message": "The request is being throttled."}}, headers


class AzureApi:
    """What the double answers, without the transport: usable from an HTTP server or from
    ``responses`` callbacks. Serves days [start, end) of the fleet's Azure resources."""

    def __init__(self, fleet: Fleet, start: dt.date, end: dt.date, page_size: int = 40, link_past_end: bool = False):
        self.fleet = fleet
        self.start, self.end = start, end
        self.page_size = page_size
        # The last page's nextLink points one page past the rows, which answers 204 No Content.
        # When the service does that is not documented; that it may answer 204 is (below).
        self.link_past_end = link_past_end
        self.client_secret = secrets.token_urlsafe(24)
        self._tokens: set[str] = set()
        self._lock = threading.Lock()

    # -- token -------------------------------------------------------------------------
    def issue_token(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != self.client_secret:
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            }
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def authorized(self, header: str | None) -> bool:
        return bool(header) and header.startswith("Bearer ") and header[7:] in self._tokens

    # -- Cost Management -------------------------------------------------------------------
    def cost_query(self, sub: str, body: dict, skip: int, next_base: str) -> tuple[int, dict]:
        if sub not in AZURE_SUBSCRIPTIONS:
            return 404, _error("SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        try:
            columns, rows = self._cost_rows(sub, body)
        except ValueError as exc:
            return 400, _error("BadRequest", f"Invalid query definition: {exc}")
        page = rows[skip : skip + self.page_size]
        if not page:
            # Query - Usage answers 200 with a QueryResult or 204 No Content (azure-rest-api-specs
            # cost-management Query_Usage; azure-mgmt-costmanagement's query.usage accepts [200, 204]
            # and returns None for 204). When the service answers 204 is not documented: the double
            # answers it, without a body, to a query or page with no rows.
            return 204, None
        more = skip + self.page_size < len(rows) or (self.link_past_end and skip < len(rows))
        return 200, {
            "id": f"subscriptions/{sub}/providers/Microsoft.CostManagement/query/{uuid.uuid4()}",
            "name": str(uuid.uuid4()),
            "type": "Microsoft.CostManagement/query",
            "location": None,
            "properties": {
                "nextLink": f"{next_base}&$skiptoken={skip + self.page_size}" if more else None,
                "columns": columns,
                "rows": page,
            },
        }

    def _cost_rows(self, sub: str, body: dict) -> tuple[list[dict], list[list]]:
        cost_type = body.get("type")
        if cost_type not in ("ActualCost", "AmortizedCost", "Usage"):
            raise ValueError(f"type {cost_type!r}; valid values: 'ActualCost','AmortizedCost','Usage'")
        days = self._timeframe_days(body)
        dataset = body.get("dataset") or {}
        grouping = [g.get("name", "") for g in dataset.get("grouping") or []]
        if len(grouping) > 2:
            raise ValueError("Dataset grouping has more than 2 clauses")
        for name in grouping:
            if name.lower() not in _GROUPINGS:
                raise ValueError(f"Invalid dataset grouping: '{name}'")
        aggregations = list((dataset.get("aggregation") or {}).values())
        for agg in aggregations:
            if agg.get("function") != "Sum" or agg.get("name") not in ("Cost", "PreTaxCost", "UsageQuantity"):
                raise ValueError(f"Invalid aggregation {agg}")
        daily = dataset.get("granularity", "None") == "Daily"
        allowed = _filter(dataset.get("filter"))
        # Cost Management sums usage records in float64 and answers JSON numbers with up to 17
        # significant digits, e.g. 218.68795741935486 and 0.009865586851323632 (azure-rest-api-specs,
        # Microsoft.CostManagement stable/2022-10-01/examples/SubscriptionQuery.json). Played by
        # summing each day's line as 24 hourly records in float64: 2.319667 comes back 2.3196669999999995.
        sums: dict[tuple, list[float]] = defaultdict(lambda: [0.0 for _ in aggregations])
        for day in days:
            for line in self.fleet.cost_lines("azure", day):
                if line.sub_account_id != sub:
                    continue
                dims = _dimensions(line, self.fleet.by_id.get(line.resource_id or ""))
                if any(dims[name] not in values for name, values in allowed.items()):
                    continue
                key = (
                    ((int(day.strftime("%Y%m%d")),) if daily else ())
                    + tuple(dims[g.lower()] for g in grouping)
                    + (line.currency,)
                )
                amount = line.effective_cost if cost_type == "AmortizedCost" else line.billed_cost
                for i, agg in enumerate(aggregations):
                    hourly = float(amount if agg["name"] != "UsageQuantity" else line.usage_quantity) / 24
                    for _ in range(24):
                        sums[key][i] += hourly
        columns = [{"name": a["name"], "type": "Number"} for a in aggregations]
        columns += [{"name": "UsageDate", "type": "Number"}] if daily else []
        columns += [{"name": g, "type": "String"} for g in grouping] + [{"name": "Currency", "type": "String"}]
        rows = [list(values) + list(key) for key, values in sorted(sums.items())]
        return columns, rows

    def _timeframe_days(self, body: dict) -> list[dt.date]:
        timeframe = body.get("timeframe")
        today = self.end  # the simulated "today": the first day without data
        if timeframe == "Custom":
            period = body.get("timePeriod") or {}
            try:
                first = dt.datetime.fromisoformat(period["from"].replace("Z", "+00:00")).date()
                last = dt.datetime.fromisoformat(period["to"].replace("Z", "+00:00")).date()
            except (KeyError, ValueError):
                raise ValueError("timePeriod needs ISO 'from' and 'to' for a Custom timeframe") from None
        elif timeframe in ("MonthToDate", "BillingMonthToDate"):
            first, last = today.replace(day=1), today
        elif timeframe in ("TheLastMonth", "TheLastBillingMonth"):
            last = today.replace(day=1) - dt.timedelta(days=1)
            first = last.replace(day=1)
        elif timeframe == "WeekToDate":
            first, last = today - dt.timedelta(days=today.weekday()), today
        else:
            raise ValueError(f"timeframe {timeframe!r} is not supported by the double")
        if last < first:
            raise ValueError("timePeriod 'to' is before 'from'")
        # Not in Microsoft's docs; what users quote Azure answering a longer Custom period
        # (electrolux-oss/infrawallet, plugins/infrawallet-backend/src/service/consts.ts; microsoft/
        # AzureTRE api_app/resources/strings.py): HTTP 400 BadRequest, "Invalid query definition: The
        # time period for pulling the data cannot exceed 1 year(s)".
        if timeframe == "Custom" and last >= first + dt.timedelta(days=365):
            raise ValueError("The time period for pulling the data cannot exceed 1 year(s)")
        span = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        return [d for d in span if self.start <= d < self.end]

    # -- Monitor -------------------------------------------------------------------------
    def subscription(self, subscription_id: str) -> tuple[int, dict]:
        """ARM `GET /subscriptions/{id}`: what `finops-pipeline doctor` reads."""
        known = {r.sub_account_id for r in self.fleet.of("azure")}
        if subscription_id not in known:
            return 404, _error("SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")
        return 200, {
            "id": f"/subscriptions/{subscription_id}",
            "subscriptionId": subscription_id,
            "displayName": f"simulated {subscription_id[-4:]}",
            "state": "Enabled",
        }

    def metrics_get(self, url: str) -> tuple[int, dict]:
        """``GET {scope}/providers/Microsoft.Insights/metrics?...``, given the URL as sent."""
        if len(url) > MAX_URL_LENGTH:
            return 414, _error(
                "RequestUriTooLong", f"The request URL is {len(url)} characters long; the limit is {MAX_URL_LENGTH}."
            )
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        return self.metrics(parts.path[: -len(_METRICS_MARKER)], query)

    def metrics_post(self, url: str, body: bytes) -> tuple[int, dict]:
        """ "Metrics - List At Subscription Scope Post": parameters in the query string or the JSON body,
        never the same one in both (400, as the API reference says); a resource's metrics take no POST
        body (400, grafana/grafana#59700)."""
        parts = urlsplit(url)
        path = parts.path[: -len(_METRICS_MARKER)]
        if not re.fullmatch(r"/subscriptions/[^/]+", path.rstrip("/"), re.IGNORECASE):
            return 400, _error("BadRequest", "a request body is only accepted at subscription scope")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            return 400, _error("BadRequest", "body is not JSON")
        for name, value in fields.items():
            parameter = _BODY_PARAMETERS.get(name)
            if parameter is None:
                return 400, _error("BadRequest", f"unknown body property {name!r}")
            if parameter in query:
                return 400, _error("BadRequest", f"{name} is given both in the query string and in the body")
            query[parameter] = str(value)
        return self.metrics(path, query)

    def metrics(self, resource_path: str, query: dict[str, str]) -> tuple[int, dict]:
        """A resource's metrics, or (path = /subscriptions/{id}) the subscription-scope multi-resource query."""
        scope = re.fullmatch(r"/subscriptions/([^/]+)", resource_path.rstrip("/"), re.IGNORECASE)
        if scope:
            return self._subscription_metrics(scope.group(1), query)
        resource = self._resource(resource_path)
        if resource is None:
            return 404, _error("ResourceNotFound", f"The Resource '{resource_path}' was not found.")
        status, body = self._check_metrics_query(resource.resource_type, query)
        if status != 200:
            return status, body
        first, last, names, wanted = body
        catalog = {m.native.lower(): m for m in NATIVE_METRICS[resource.resource_type]}
        value = [self._metric(resource, catalog[n.lower()], first, last, wanted) for n in names]
        return 200, {
            "cost": 0,
            "timespan": query["timespan"],
            "interval": query["interval"],
            "value": value,
            "namespace": _NAMESPACES[resource.resource_type],
            "resourceregion": resource.region,
        }

    def _subscription_metrics(self, sub: str, query: dict[str, str]) -> tuple[int, dict]:
        """Every matching resource of one type in one region of a subscription: one series per resource
        with data, tagged with the Microsoft.ResourceId dimension. A resource without any value in the
        window has no series at all: split results hold a series per dimension value in the data, and
        a metric with no data answers ``"timeseries": []`` (Azure Monitor REST API walkthrough,
        "Retrieve metric values" with a dimension filter)."""
        if sub not in AZURE_SUBSCRIPTIONS:
            return 404, _error("SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        namespace, region = query.get("metricnamespace", ""), query.get("region", "")
        rtype = next((t for t, ns in _NAMESPACES.items() if ns.lower() == namespace.lower()), None)
        if rtype is None or not region:
            return 400, _error("BadRequest", "region and a supported metricnamespace are required")
        ids = re.findall(r"Microsoft\.ResourceId eq '([^']+)'", query.get("$filter", ""), re.IGNORECASE)
        if not ids:
            return 400, _error("BadRequest", "$filter must select Microsoft.ResourceId")
        wanted_ids = {i.lower() for i in ids}
        resources = [
            r
            for r in self.fleet.of("azure", rtype)
            if r.sub_account_id == sub
            and r.region == region.lower()
            and ("*" in wanted_ids or r.resource_id.lower() in wanted_ids)
        ]
        resources = resources[: int(query.get("top", "10"))]
        status, body = self._check_metrics_query(rtype, query)
        if status != 200:
            return status, body
        first, last, names, wanted = body
        catalog = {m.native.lower(): m for m in NATIVE_METRICS[rtype]}
        value = []
        for name in names:
            native = catalog[name.lower()]
            metric = _metric_entry(f"/subscriptions/{sub}/providers/Microsoft.Insights/metrics/{native.native}", native)
            for resource in resources:
                series = self._metric(resource, native, first, last, wanted)["timeseries"][0]
                if not any(len(point) > 1 for point in series["data"]):
                    continue  # nothing but bare timestamps: no series for this resource
                series["metadatavalues"] = [
                    {
                        "name": {"value": "Microsoft.ResourceId", "localizedValue": "Microsoft.ResourceId"},
                        "value": resource.resource_id,
                    }
                ]
                metric["timeseries"].append(series)
            value.append(metric)
        return 200, {
            "cost": 0,
            "timespan": query["timespan"],
            "interval": query["interval"],
            "value": value,
            "namespace": _NAMESPACES[rtype],
            "resourceregion": region.lower(),
        }

    def _check_metrics_query(self, rtype: str, query: dict[str, str]):
        """(200, (first, last, metric names, aggregations)) or an Azure-shaped error."""
        interval = query.get("interval", "PT1M")
        if not re.fullmatch(r"PT\d+[MH]|P1D|FULL", interval):
            return 400, _error("BadRequest", f"Invalid time grain '{interval}': use an ISO 8601 duration such as PT1H")
        if interval != "PT1H":
            return 400, _error("BadRequest", f"the double only serves PT1H, got {interval}")
        try:
            first, last = (dt.datetime.fromisoformat(p.replace("Z", "+00:00")) for p in query["timespan"].split("/"))
        except (KeyError, ValueError):
            return 400, _error("BadRequest", "timespan must be 'start/end' in ISO 8601")
        catalog = {m.native.lower(): m for m in NATIVE_METRICS[rtype]}
        names = [n.strip() for n in query.get("metricnames", "").split(",") if n.strip()]
        unknown = [n for n in names if n.lower() not in catalog]
        if unknown:
            return 400, _error(
                "BadRequest",
                f"Failed to find metric configuration for provider: {_NAMESPACES[rtype]}, metric: {unknown[0]}",
            )
        wanted = [a.strip().lower() for a in query.get("aggregation", "average").split(",")]
        if any(a not in _AGGREGATIONS for a in wanted):
            return 400, _error("BadRequest", f"Invalid aggregation {query.get('aggregation')}")
        return 200, (first, last, names, wanted)

    def _metric(self, resource: SimResource, metric: NativeMetric, first, last, wanted) -> dict:
        data = []
        hour = first.replace(minute=0, second=0, microsecond=0)
        cache = {}
        while hour < last:
            day = hour.date()
            point = {"timeStamp": hour.strftime("%Y-%m-%dT%H:%M:%SZ")}
            if self.start <= day < self.end:
                if day not in cache:
                    cache[day] = self.fleet.hourly(resource, metric.canonical, day)
                values = cache[day]
                h = hour.hour
                native = {
                    "average": values.avg[h],
                    "maximum": values.max[h],
                    "minimum": values.min[h],
                    "total": values.sum[h],
                }
                if not (metric.counter and values.sum[h] == 0):  # idle counters come back empty
                    point.update({a: float(native[a]) / metric.scale for a in wanted if a in native})
                    if "count" in wanted:
                        point["count"] = float(values.sample_count[h])
            data.append(point)
            hour += dt.timedelta(hours=1)
        entry = _metric_entry(f"{resource.resource_id}/providers/Microsoft.Insights/metrics/{metric.native}", metric)
        entry["timeseries"].append({"metadatavalues": [], "data": data})
        return entry

    def _resource(self, path: str) -> SimResource | None:
        wanted = path.rstrip("/").lower()
        return next((r for r in self.fleet.of("azure") if r.resource_id.lower() == wanted), None)


class AzureDouble(AzureApi):
    """The API served over HTTPS on 127.0.0.1: ``url`` is both the authority and the ARM endpoint.

    Every authenticated ARM request spends its documented quota (:class:`AzureQuotas`: the
    tenant's Cost Management QPU, the subscription's ARM reads), whose headers the answer
    carries. ``gate`` (optional, for benchmarks) replaces that: called as ``gate(method, path)``
    before every authenticated ARM request is answered, it may sleep (network latency) and
    returns ``(status, body, headers)`` to answer instead (e.g. a 429 with its retry-after
    headers), or the quota headers of a success (a dict), or None.
    """

    def __init__(
        self, fleet: Fleet, start: dt.date, end: dt.date, page_size: int = 40, gate=None, link_past_end: bool = False
    ):
        super().__init__(fleet, start, end, page_size, link_past_end)
        self.gate = gate
        self.quotas = AzureQuotas() if gate is None else None
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self._dir = tempfile.TemporaryDirectory(prefix="azure-double-")
        self.cert_path, key_path = _self_signed_certificate(Path(self._dir.name))
        self.ca_bundle = _ca_bundle_with(self.cert_path, Path(self._dir.name) / "ca-bundle.pem")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="azure-double", daemon=True)

    def __enter__(self) -> AzureDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._dir.cleanup()

    @property
    def environment(self) -> dict[str, str]:
        """Variables that point settings, azure-identity and requests at this double."""
        return {
            "AZURE_USAGE_ENABLED": "true",
            "AZURE_SUBSCRIPTION_IDS": ",".join(AZURE_SUBSCRIPTIONS),
            "AZURE_TENANT_ID": TENANT_ID,
            "AZURE_CLIENT_ID": CLIENT_ID,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "AZURE_AUTHORITY_HOST": self.url,
            "AZURE_RESOURCE_MANAGER_ENDPOINT": self.url,
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
        }


def _metric_entry(metric_id: str, metric: NativeMetric) -> dict:
    """One element of a metrics answer's ``value``, without series yet."""
    return {
        "id": metric_id,
        "type": "Microsoft.Insights/metrics",
        "name": {"value": metric.native, "localizedValue": metric.native},
        "displayDescription": "",
        "unit": metric.unit,
        "errorCode": "Success",
        "timeseries": [],
    }


def _dimensions(line, resource: SimResource | None) -> dict[str, str]:
    return {
        "resourceid": (line.resource_id or "").lower(),
        "servicename": line.service_name,
        "resourcelocation": COST_LOCATIONS[line.region] if line.region else "",
        "chargetype": line.charge_category,
        "meter": line.sku,
        "resourcetype": _NAMESPACES.get(resource.resource_type, "") if resource else "",
        "subscriptionid": line.sub_account_id,
    }


def _filter(spec: dict | None) -> dict[str, set[str]]:
    """dimension (lower case) -> allowed values; only a single `dimensions` In-clause or an `and` of them."""
    if not spec:
        return {}
    clauses = spec.get("and") or [spec]
    allowed = {}
    for clause in clauses:
        dim = clause.get("dimensions") or clause.get("dimension")
        if not dim or dim.get("operator") != "In" or dim.get("name", "").lower() not in _GROUPINGS:
            raise ValueError(f"unsupported filter {clause}")
        allowed[dim["name"].lower()] = set(dim.get("values") or [])
    return allowed


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def _handler(double: AzureDouble):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: dict | None, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _spend(self, method: str, path: str) -> tuple[tuple | None, dict[str, str]]:
            """(a refusal to send, or None; the quota headers of a success)."""
            if double.gate is not None:
                answer = double.gate(method, path)
                return (answer, {}) if isinstance(answer, tuple) else (None, answer or {})
            wait, headers = double.quotas.spend(method, path)
            return (_throttled(headers) if wait is not None else None), headers

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            double.requests.append(("GET", parts.path))
            oidc = re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration", parts.path)
            if oidc:
                base = f"{double.url}/{oidc.group(1)}"
                return self._send(
                    200,
                    {
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                        "issuer": f"{base}/v2.0",
                        "tenant_region_scope": "NA",
                    },
                )
            if not double.authorized(self.headers.get("Authorization")):
                return self._send(401, _error("AuthenticationFailed", "Authentication failed."))
            refusal, quota = self._spend("GET", parts.path)
            if refusal is not None:
                return self._send(*refusal)
            subscription = re.fullmatch(r"/subscriptions/([^/]+)/?", parts.path, re.IGNORECASE)
            if subscription:
                status, body = double.subscription(subscription.group(1))
                return self._send(status, body, quota)
            if parts.path.lower().endswith(_METRICS_MARKER):
                status, body = double.metrics_get(double.url + self.path)
                return self._send(status, body, quota)
            self._send(404, _error("NotFound", f"no route for GET {parts.path}"))

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            double.requests.append(("POST", parts.path))
            raw = self._body()
            if re.fullmatch(r"/[^/]+/oauth2/v2\.0/token", parts.path):
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                return self._send(*double.issue_token(form))
            if not double.authorized(self.headers.get("Authorization")):
                return self._send(401, _error("AuthenticationFailed", "Authentication failed."))
            refusal, quota = self._spend("POST", parts.path)
            if refusal is not None:
                return self._send(*refusal)
            if parts.path.lower().endswith(_METRICS_MARKER):
                status, body = double.metrics_post(double.url + self.path, raw)
                return self._send(status, body, quota)
            cost = re.fullmatch(
                r"/+subscriptions/([^/]+)/providers/Microsoft\.CostManagement/query", parts.path, re.IGNORECASE
            )
            if cost:
                query = parse_qs(parts.query)
                version = query.get("api-version", [""])[0]
                if version not in COST_API_VERSIONS:
                    return self._send(400, _error("InvalidApiVersionParameter", f"api-version '{version}'"))
                skip = int(query.get("$skiptoken", ["0"])[0])
                next_base = f"{double.url}{parts.path}?api-version={version}"
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return self._send(400, _error("BadRequest", "body is not JSON"))
                status, answer = double.cost_query(cost.group(1), body, skip, next_base)
                return self._send(status, answer, quota)
            self._send(404, _error("NotFound", f"no route for POST {parts.path}"))

    return Handler


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A short-lived certificate for 127.0.0.1/localhost, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "finops azure double")])
    now = dt.datetime.now(dt.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "double.crt", directory / "double.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _ca_bundle_with(cert_path: Path, bundle_path: Path) -> Path:
    """The CA bundle requests would use anyway, plus the double's certificate."""
    import certifi

    configured = os.environ.get("REQUESTS_CA_BUNDLE")
    base = configured if configured and Path(configured).is_file() else certifi.where()
    bundle_path.write_bytes(Path(base).read_bytes().rstrip() + b"\n" + cert_path.read_bytes())
    return bundle_path


@contextmanager
def serve_azure(
    fleet: Fleet, start: dt.date, end: dt.date, page_size: int = 40, export: bool = True
) -> Iterator[dict[str, str]]:
    """Run the Azure double for days [start, end) of ``fleet``; yields the environment to use it.

    With ``export`` (and npm to install Azurite), the same bill is also delivered as a FocusCost
    export into an Azurite container, as it stands on day ``end``: AZURE_EXPORT_URI and
    AZURE_STORAGE_CONNECTION_STRING point at it; the source stays the query API until
    AZURE_COST_SOURCE=export."""
    from finops_pipeline.simulator.azure_export import ExportDestination, publish_exports
    from finops_pipeline.simulator.azurite import AzuriteUnavailable, run_azurite

    with ExitStack() as stack:
        double = stack.enter_context(AzureDouble(fleet, start, end, page_size=page_size))
        environment = double.environment
        if export:
            try:
                azurite = stack.enter_context(run_azurite())
            except AzuriteUnavailable as exc:
                logging.getLogger(__name__).warning(f"no FocusCost export double: {exc}")
            else:
                from azure.storage.blob import BlobServiceClient

                destination = ExportDestination()
                service = BlobServiceClient.from_connection_string(azurite.connection_string)
                publish_exports(service.create_container(destination.container), fleet, start, end, destination)
                environment["AZURE_EXPORT_URI"] = f"{azurite.blob_url}/{destination.container}/{destination.prefix}"
                environment["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string
        yield environment
