"""A fast AWS double for benchmarks: answers botocore's requests in-process, from the fleet.

moto's CloudWatch stores every datapoint and scans them per query, which is far too slow
for thousands of resources. This double hooks botocore's ``before-send`` event (the
point where botocore would open the HTTP connection; it is how botocore stubs HTTP) and
returns a protocol-correct HTTP response computed from ``Fleet.hourly`` /
``Fleet.cost_lines``. Everything else is the real SDK: parameter validation, request
serialization, signing, response parsing, the adaptive retry mode and its client-side
rate limiter.

What CloudWatch holds is the simulator's knowledge (``finops_pipeline.simulator.aws``:
``CLOUDWATCH``, ``S3_CLASSES``), the same the moto-based double seeds with
``cloudwatch_datapoints``; never the adapter's tables (a double that reads the adapter's
tables cannot catch the adapter's mistakes). As the service publishes them:

- metrics with reporting criterion "always" have a datapoint every period; "nonzero" ones
  (Lambda, DynamoDB, ALB RequestCount/ActiveConnectionCount) only in hours where their value
  is nonzero; "traffic" ones (classic ELB) only in hours where the load balancer has requests;
- S3 is daily (one datapoint at 00:00 UTC): BucketSizeBytes once per storage class of
  ``S3_CLASSES`` (its share of the bucket's bytes), NumberOfObjects for ``AllStorageTypes``;
- ``ListMetrics`` lists a metric (per dimension combination) when it has data in the two
  weeks before ``today`` (CloudWatch drops a metric from ListMetrics after two weeks without
  data): "always" metrics of every resource, "nonzero"/"traffic" metrics only if some hour of
  those 14 days is published. A resource idle all fortnight is absent from the listing; the
  inventory calls below list the classic ELBs, Lambda functions and DynamoDB tables anyway.

Served: CloudWatch ``ListMetrics`` / ``GetMetricData`` / ``GetMetricStatistics`` (AWS JSON
1.0 with ``x-amzn-query-mode``, the protocol botocore uses for CloudWatch), the inventories
classic ELB ``DescribeLoadBalancers`` (query/XML, Marker/NextMarker), Lambda ``ListFunctions``
(REST-JSON, Marker/NextMarker) and DynamoDB ``ListTables`` (JSON 1.0,
ExclusiveStartTableName/LastEvaluatedTableName), STS ``GetCallerIdentity`` (query/XML) and
Cost Explorer (JSON, answered by the simulator's :class:`CostExplorerDouble`). Any other
operation raises. Optional ``latency`` (seconds slept per call, like a network round trip)
and :class:`RateLimits` (a token bucket per API answering each protocol's throttling error
like AWS) make it usable for the rate-limit backfill; every call, inventories included, is
counted and spends from its bucket.

One account: every fleet resource answers to whoever calls (the benchmarks use the payer's
credentials and no AWS_ROLE_ARNS, so no AssumeRole), so metric rows carry the payer's id.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import time
import uuid
import zlib
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import numpy as np
from botocore.awsrequest import AWSResponse

from finops_pipeline.clouds.aws.source import AwsSource
from finops_pipeline.simulator.aws import (
    CLOUDWATCH,
    S3_CLASSES,
    CostExplorerDouble,
    CostExplorerError,
)
from finops_pipeline.simulator.fleet import AWS_PAYER, Fleet, SimResource

LIST_METRICS_PAGE = 500  # ListMetrics returns up to 500 metrics per call
LISTED_DAYS = 14  # ListMetrics shows metrics with datapoints in the past two weeks
MAX_DATAPOINTS_PER_CALL = 100_800  # GetMetricData's documented per-call datapoint limit
MAX_QUERIES_PER_CALL = 500
_STATS = {"Average": "avg", "Maximum": "max", "Minimum": "min", "Sum": "sum", "SampleCount": "sample_count"}
S3_ALL_STORAGE_TYPES = "AllStorageTypes"  # S3's StorageType of NumberOfObjects (S3 metrics page)
_DAILY_TYPES = {"s3"}  # S3 storage metrics: one datapoint a day, at 00:00 UTC

# Inventory calls: (botocore service id, operation) -> (fleet type, default = maximum page size).
# DescribeLoadBalancers PageSize 1-400 (default 400); ListFunctions MaxItems 1-50 (50 per
# response); ListTables Limit 1-100 (default 100).
INVENTORY = {
    ("elastic-load-balancing", "DescribeLoadBalancers"): ("elb", 400),
    ("lambda", "ListFunctions"): ("lambda", 50),
    ("dynamodb", "ListTables"): ("dynamodb", 100),
}
_ELB_XMLNS = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class RateLimits:
    """Token buckets shared by every process that holds this object (pass it to children).

    ``rates`` maps a bucket to its allowed calls per second; a bucket holds at most one
    second of calls. An API call ``service.Operation.region`` spends from the bucket of
    that exact key if there is one, else from the bucket named after its service (Cost
    Explorer's limit covers all its operations).
    """

    def __init__(self, rates: dict[str, float]):
        self.rates = dict(rates)
        self._index = {key: i for i, key in enumerate(self.rates)}
        ctx = mp.get_context("spawn")
        self._state = ctx.Array("d", [v for rate in self.rates.values() for v in (rate, 0.0)], lock=False)
        self._lock = ctx.Lock()

    def bucket(self, key: str) -> str | None:
        """The bucket an API key spends from, None when it is not limited."""
        if key in self._index:
            return key
        service = key.split(".", 1)[0]
        return service if service in self._index else None

    def least_seconds(self, bucket: str, calls: int) -> float:
        """The least time ``calls`` calls can take: the bucket starts full (one second of calls)
        and refills at its rate."""
        rate = self.rates[bucket]
        return max(0.0, calls - rate) / rate

    def take(self, bucket: str) -> bool:
        """Spend one token; False means the call is throttled."""
        i, rate = self._index[bucket], self.rates[bucket]
        with self._lock:
            now = time.monotonic()
            tokens, last = self._state[2 * i], self._state[2 * i + 1]
            tokens = min(rate, tokens + (now - last) * rate) if last else tokens
            self._state[2 * i + 1] = now
            if tokens < 1.0:
                self._state[2 * i] = tokens
                return False
            self._state[2 * i] = tokens - 1.0
            return True


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_):
        yield self.data


# The simulator's catalog by namespace: namespace -> (fleet type, identity dimension,
# {metric name: (fleet metric, unit, reporting criterion)}).
_NAMESPACES = {
    namespace: (
        rtype,
        dimension,
        {name: (fleet_metric, unit, reported) for name, fleet_metric, unit, reported in metrics},
    )
    for rtype, (namespace, dimension, metrics) in CLOUDWATCH.items()
}


def _variants(rtype: str, dimension: str, resource_id: str, name: str) -> list[tuple[tuple, float]]:
    """The dimension combinations one metric of one resource is published under, each with its
    share of the resource's value (S3: BucketSizeBytes per storage class)."""
    identity = ((dimension, resource_id),)
    if rtype != "s3":
        return [(identity, 1.0)]
    if name == "BucketSizeBytes":
        return [(identity + (("StorageType", storage),), share) for storage, share in S3_CLASSES.items()]
    return [(identity + (("StorageType", S3_ALL_STORAGE_TYPES),), 1.0)]


class AwsDouble:
    """CloudWatch, the three inventories, STS and Cost Explorer for one fleet, answered inside botocore."""

    def __init__(
        self, fleet: Fleet, today: date, latency: float = 0.0, limits: RateLimits | None = None, ce_page_days: int = 7
    ):
        self.fleet = fleet
        self.today = today
        self.latency = latency
        self.limits = limits
        self.ce = CostExplorerDouble(fleet, page_days=ce_page_days, today=today)
        self.calls: Counter = Counter()  # answered calls per API key
        self.throttled: Counter = Counter()  # throttled calls per API key
        self._by_dimension: dict[tuple[str, str], SimResource] = {}
        for resource in fleet.of("aws"):
            if resource.resource_type in CLOUDWATCH:
                self._by_dimension[(CLOUDWATCH[resource.resource_type][0], resource.resource_id)] = resource
        self._listing: dict[tuple[str, str], list[dict]] = {}
        self._inventory: dict[tuple[str, str], list[str]] = {}
        self._hourly_cache: dict[tuple, object] = {}
        self._published_cache: dict[tuple, tuple] = {}
        self._active: dict[tuple[str, str], bool] = {}  # (resource, fleet metric) -> nonzero in 14 days

    # -- wiring ----------------------------------------------------------------------
    def attach(self, client):
        """Answer every request of a botocore client from this double."""
        client.meta.events.register("before-send", self.on_send)
        return client

    def client_factory(self, settings):
        """An AwsSource client_factory: the adapter's own client config, answered here."""
        production = AwsSource(settings)
        # Same boto3 session, retry mode (adaptive) and max attempts as production clients.
        return lambda service, region: self.attach(production._default_client(service, region))

    def on_send(self, request, event_name: str, **_):
        _, service, operation = event_name.split(".", 2)
        region = _region(request.url)
        key = f"{service}.{operation}" if service == "cost-explorer" else f"{service}.{operation}.{region}"
        if self.latency:
            time.sleep(self.latency)
        bucket = self.limits.bucket(key) if self.limits is not None else None
        if bucket is not None and not self.limits.take(bucket):
            self.throttled[key] += 1
            return self._throttled(service, request.url)
        self.calls[key] += 1
        if service == "cloudwatch":
            if request.headers.get("Content-Type") != b"application/x-amz-json-1.0":
                raise ValueError(f"the double speaks CloudWatch's JSON protocol, got {request.headers}")
            handler = {
                "ListMetrics": self.list_metrics,
                "GetMetricData": self.get_metric_data,
                "GetMetricStatistics": self.get_metric_statistics,
            }[operation]
            answer = handler(region, json.loads(request.body))
            return _response(request.url, 200, json.dumps(answer).encode(), _JSON_10)
        if (service, operation) in INVENTORY:
            return self._inventory_response(service, operation, region, request)
        if service == "sts" and operation == "GetCallerIdentity":
            return _response(request.url, 200, _caller_identity(), {"Content-Type": "text/xml"})
        if service == "cost-explorer":
            try:
                answer, status = self.ce.handle(operation, json.loads(request.body)), 200
            except CostExplorerError as exc:
                answer, status = {"__type": exc.code, "message": exc.message}, exc.status
            return _response(
                request.url, status, json.dumps(answer).encode(), {"Content-Type": "application/x-amz-json-1.1"}
            )
        raise ValueError(f"the benchmark double does not serve {service}.{operation}")

    def _throttled(self, service: str, url: str) -> AWSResponse:
        """Each protocol's throttling answer (botocore retries every one of these codes)."""
        if service == "cloudwatch":
            body = json.dumps(
                {"__type": "com.amazonaws.cloudwatch#ThrottlingException", "message": "Rate exceeded"}
            ).encode()
            return _response(url, 400, body, {**_JSON_10, "x-amzn-query-error": "Throttling;Sender"})
        if service in ("elastic-load-balancing", "sts"):  # query protocol: an XML ErrorResponse
            body = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                f"<Message>Rate exceeded</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
                "</ErrorResponse>"
            ).encode()
            return _response(url, 400, body, {"Content-Type": "text/xml"})
        if service == "lambda":  # REST-JSON: the code is in x-amzn-ErrorType
            body = json.dumps({"Type": "User", "message": "Rate exceeded"}).encode()
            return _response(
                url, 429, body, {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"}
            )
        if service == "dynamodb":
            body = json.dumps(
                {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"}
            ).encode()
            return _response(url, 400, body, {**_JSON_10, "x-amz-crc32": str(zlib.crc32(body))})
        body = json.dumps({"__type": "LimitExceededException", "message": "Rate exceeded"}).encode()
        return _response(url, 400, body, {"Content-Type": "application/x-amz-json-1.1"})

    def warm(self) -> None:
        """Build the ListMetrics listings and inventories now, so they are not allocated inside a
        measured step."""
        for region in {r.region for r in self.fleet.of("aws")}:
            for namespace in _NAMESPACES:
                self._metrics_of(region, namespace)
            for rtype, _ in INVENTORY.values():
                self._names(region, rtype)

    # -- what CloudWatch holds -------------------------------------------------------------
    def _hourly(self, resource: SimResource, fleet_metric: str, day: date):
        key = (resource.resource_id, fleet_metric, day)
        hourly = self._hourly_cache.get(key)
        if hourly is None:
            if len(self._hourly_cache) > 2_000:  # a series' statistics and classes arrive together
                self._hourly_cache.clear()
            hourly = self._hourly_cache[key] = self.fleet.hourly(resource, fleet_metric, day)
        return hourly

    def _published(self, resource: SimResource, name: str, day: date) -> tuple[np.ndarray, object]:
        """(hours of the day CloudWatch has a datapoint for, the fleet's hourly values) of one
        metric: every hour ("always"), the nonzero ones ("nonzero"), those with requests
        ("traffic"); hour 0 only for the daily S3 metrics."""
        key = (resource.resource_id, name, day)
        found = self._published_cache.get(key)
        if found is None:
            rtype = resource.resource_type
            fleet_metric, _, reported = _NAMESPACES[CLOUDWATCH[rtype][0]][2][name]
            values = self._hourly(resource, fleet_metric, day)
            if rtype in _DAILY_TYPES:
                hours = np.array([0])
            elif reported == "nonzero":
                hours = np.flatnonzero(values.sum != 0)
            elif reported == "traffic":
                hours = np.flatnonzero(self._hourly(resource, "requests", day).sum != 0)
            else:
                hours = np.arange(24)
            if len(self._published_cache) > 2_000:
                self._published_cache.clear()
            found = self._published_cache[key] = (hours, values)
        return found

    def _listed(self, resource: SimResource, name: str) -> bool:
        """Whether ListMetrics shows the metric: it has a datapoint in the two weeks before today."""
        reported = _NAMESPACES[CLOUDWATCH[resource.resource_type][0]][2][name][2]
        if reported == "always":
            return True
        fleet_metric = (
            "requests" if reported == "traffic" else _NAMESPACES[CLOUDWATCH[resource.resource_type][0]][2][name][0]
        )
        key = (resource.resource_id, fleet_metric)
        if key not in self._active:  # the latest day first: active resources stop early
            self._active[key] = any(
                np.any(self.fleet.hourly(resource, fleet_metric, self.today - timedelta(days=back)).sum != 0)
                for back in range(1, LISTED_DAYS + 1)
            )
        return self._active[key]

    # -- CloudWatch -------------------------------------------------------------------
    def list_metrics(self, region: str, body: dict) -> dict:
        if body.get("RecentlyActive"):
            raise ValueError("the benchmark double does not serve ListMetrics RecentlyActive")
        metrics = self._metrics_of(region, body["Namespace"])
        name, wanted = body.get("MetricName"), body.get("Dimensions") or []
        if name or wanted:  # a metric matches when it has every filter dimension (and its value, if given)
            metrics = [
                m
                for m in metrics
                if (not name or m["MetricName"] == name)
                and all(
                    any(d["Name"] == f["Name"] and f.get("Value") in (None, d["Value"]) for d in m["Dimensions"])
                    for f in wanted
                )
            ]
        first = int(body.get("NextToken") or 0)
        answer: dict = {"Metrics": metrics[first : first + LIST_METRICS_PAGE]}
        if first + LIST_METRICS_PAGE < len(metrics):
            answer["NextToken"] = str(first + LIST_METRICS_PAGE)
        return answer

    def _metrics_of(self, region: str, namespace: str) -> list[dict]:
        key = (region, namespace)
        if key not in self._listing:
            listing = []
            if namespace in _NAMESPACES:
                rtype, dimension, metrics = _NAMESPACES[namespace]
                for resource in self.fleet.of("aws", rtype):
                    if resource.region != region:
                        continue
                    for name in metrics:
                        if not self._listed(resource, name):
                            continue
                        for dims, _ in _variants(rtype, dimension, resource.resource_id, name):
                            listing.append(
                                {
                                    "Namespace": namespace,
                                    "MetricName": name,
                                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                                }
                            )
            self._listing[key] = listing
        return self._listing[key]

    def get_metric_data(self, region: str, body: dict) -> dict:
        queries = body["MetricDataQueries"]
        if len(queries) > MAX_QUERIES_PER_CALL:
            raise ValueError("GetMetricData accepts at most 500 queries")
        start, end = _time(body["StartTime"]), _time(body["EndTime"])
        descending = body.get("ScanBy") == "TimestampDescending"
        first_query, offset = (int(x) for x in (body.get("NextToken") or "0:0").split(":"))
        budget = MAX_DATAPOINTS_PER_CALL
        results, token = [], None
        for i in range(first_query, len(queries)):
            if "MetricStat" not in queries[i]:
                raise ValueError("the benchmark double serves MetricStat queries only, not expressions")
            stat = queries[i]["MetricStat"]
            stamps, values = self._series(region, stat["Metric"], stat["Period"], stat["Stat"], start, end)
            if descending:
                stamps, values = stamps[::-1], values[::-1]
            taken = slice(offset, offset + budget)
            results.append(
                {
                    "Id": queries[i]["Id"],
                    "Label": stat["Metric"]["MetricName"],
                    "Timestamps": stamps[taken],
                    "Values": values[taken],
                    "StatusCode": "Complete",
                }
            )
            budget -= len(stamps[taken])
            if offset + len(stamps[taken]) < len(stamps):
                results[-1]["StatusCode"] = "PartialData"
                token = f"{i}:{offset + len(stamps[taken])}"
                break
            offset = 0
        answer: dict = {"MetricDataResults": results, "Messages": []}
        if token:
            answer["NextToken"] = token
        return answer

    def get_metric_statistics(self, region: str, body: dict) -> dict:
        metric = {k: body.get(k) for k in ("Namespace", "MetricName", "Dimensions")}
        unit = self._unit(metric["Namespace"], metric["MetricName"])
        points: dict[float, dict] = {}
        start, end = _time(body["StartTime"]), _time(body["EndTime"])
        for stat in body["Statistics"]:
            stamps, values = self._series(region, metric, body["Period"], stat, start, end)
            for ts, value in zip(stamps, values):
                points.setdefault(ts, {"Timestamp": ts, "Unit": unit})[stat] = value
        return {"Label": body["MetricName"], "Datapoints": list(points.values())}

    @staticmethod
    def _unit(namespace: str, name: str) -> str:
        entry = _NAMESPACES.get(namespace, (None, None, {}))[2].get(name)
        return entry[1] if entry else "None"

    def _series(self, region: str, metric: dict, period: int, stat: str, start: datetime, end: datetime):
        """(epoch-second timestamps, values) of one metric statistic, ascending, for [start, end):
        the datapoints CloudWatch holds for exactly these dimensions, none in unpublished hours."""
        namespace, name = metric["Namespace"], metric["MetricName"]
        if namespace not in _NAMESPACES or name not in _NAMESPACES[namespace][2]:
            return [], []
        rtype, dimension, _ = _NAMESPACES[namespace]
        given = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions") or []))
        resource = self._by_dimension.get((namespace, dict(given).get(dimension)))
        if resource is None or resource.region != region:
            return [], []
        share = next(
            (s for dims, s in _variants(rtype, dimension, resource.resource_id, name) if tuple(sorted(dims)) == given),
            None,
        )
        if share is None:  # CloudWatch matches dimensions exactly: no such metric
            return [], []
        if period != 3600 and not (rtype in _DAILY_TYPES and period == 86400):
            raise ValueError(
                f"the benchmark double serves hourly periods (and daily S3), not {period} s for {namespace} {name}"
            )
        column = _STATS[stat]  # KeyError: extended statistics (p99, ...) are not served
        scale = 1.0 if column == "sample_count" else share
        stamps, values = [], []
        lo, hi = start.timestamp(), end.timestamp()
        day = start.astimezone(timezone.utc).date()
        while datetime(day.year, day.month, day.day, tzinfo=timezone.utc) < end:
            hours, hourly = self._published(resource, name, day)
            midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
            day_stamps = midnight + 3600.0 * hours
            inside = (day_stamps >= lo) & (day_stamps < hi)
            stamps.extend(day_stamps[inside].tolist())
            values.extend((getattr(hourly, column)[hours[inside]] * scale).tolist())
            day += timedelta(days=1)
        return stamps, values

    # -- inventories ------------------------------------------------------------------
    def _names(self, region: str, rtype: str) -> list[str]:
        key = (region, rtype)
        if key not in self._inventory:
            self._inventory[key] = sorted(r.resource_id for r in self.fleet.of("aws", rtype) if r.region == region)
        return self._inventory[key]

    def _inventory_response(self, service: str, operation: str, region: str, request) -> AWSResponse:
        rtype, most = INVENTORY[(service, operation)]
        names = self._names(region, rtype)
        if service == "elastic-load-balancing":  # query protocol: form body in, XML out
            body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
            params = {k: v[0] for k, v in parse_qs(body).items()}
            _only(params, {"Action", "Version", "Marker", "PageSize"}, operation)
            first, size = int(params.get("Marker") or 0), int(params.get("PageSize") or most)
            page = names[first : first + size]
            members = "".join(f"<member><LoadBalancerName>{escape(n)}</LoadBalancerName></member>" for n in page)
            marker = f"<NextMarker>{first + size}</NextMarker>" if first + size < len(names) else ""
            xml = (
                f'<DescribeLoadBalancersResponse xmlns="{_ELB_XMLNS}"><DescribeLoadBalancersResult>'
                f"<LoadBalancerDescriptions>{members}</LoadBalancerDescriptions>{marker}"
                "</DescribeLoadBalancersResult>"
                f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
                "</DescribeLoadBalancersResponse>"
            )
            return _response(request.url, 200, xml.encode(), {"Content-Type": "text/xml"})
        if service == "lambda":  # REST-JSON: GET /2015-03-31/functions/?Marker=&MaxItems=
            params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
            _only(params, {"Marker", "MaxItems"}, operation)
            first, size = int(params.get("Marker") or 0), int(params.get("MaxItems") or most)
            answer: dict = {"Functions": [{"FunctionName": n} for n in names[first : first + size]]}
            if first + size < len(names):
                answer["NextMarker"] = str(first + size)
            return _response(request.url, 200, json.dumps(answer).encode(), {"Content-Type": "application/json"})
        # DynamoDB, JSON 1.0: names in order, from the one after ExclusiveStartTableName
        params = json.loads(request.body or b"{}")
        _only(params, {"ExclusiveStartTableName", "Limit"}, operation)
        after = params.get("ExclusiveStartTableName")
        first = sum(1 for n in names if n <= after) if after else 0
        size = int(params.get("Limit") or most)
        answer = {"TableNames": names[first : first + size]}
        if first + size < len(names):
            answer["LastEvaluatedTableName"] = names[first + size - 1]
        data = json.dumps(answer).encode()
        return _response(request.url, 200, data, {**_JSON_10, "x-amz-crc32": str(zlib.crc32(data))})


def _only(params: dict, served: set[str], operation: str) -> None:
    if set(params) - served:
        raise ValueError(f"the benchmark double does not serve {operation} with {sorted(set(params) - served)}")


_JSON_10 = {"Content-Type": "application/x-amz-json-1.0"}


def _time(value: float | str) -> datetime:
    """A JSON-protocol timestamp (epoch seconds) as an aware UTC datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime.fromtimestamp(value, timezone.utc)


def _region(url: str) -> str:
    """The region in an endpoint's host (monitoring.eu-west-1.amazonaws.com,
    <account>.ddb.eu-west-1.amazonaws.com); global endpoints answer in us-east-1."""
    host = urlsplit(url).hostname or ""
    return next((part for part in host.split(".") if _REGION.match(part)), "us-east-1")


def _response(url: str, status: int, body: bytes, headers: dict) -> AWSResponse:
    headers = {**headers, "x-amzn-requestid": str(uuid.uuid4()), "Content-Length": str(len(body))}
    return AWSResponse(url, status, headers, _Body(body))


def _caller_identity() -> bytes:
    return (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<GetCallerIdentityResult><Arn>arn:aws:iam::{AWS_PAYER}:user/benchmark</Arn>"
        f"<UserId>AIDABENCHMARK</UserId><Account>{AWS_PAYER}</Account></GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()
