"""A fast AWS double for benchmarks: answers botocore's requests in-process, from the fleet.

moto's CloudWatch stores every datapoint and scans them per query, which is far too slow
for thousands of resources. This double hooks botocore's ``before-send`` event (the
point where botocore would open the HTTP connection; it is how botocore stubs HTTP) and
returns a protocol-correct HTTP response computed from ``Fleet.hourly`` /
``Fleet.cost_lines``. Everything else is the real SDK: parameter validation, request
serialization, signing, response parsing, the adaptive retry mode and its client-side
rate limiter.

Served: CloudWatch ``ListMetrics`` / ``GetMetricData`` / ``GetMetricStatistics``
(AWS JSON 1.0 with ``x-amzn-query-mode``, the protocol botocore uses for CloudWatch), STS
``GetCallerIdentity`` (query/XML) and Cost Explorer (JSON, answered by the simulator's
:class:`CostExplorerDouble`). Optional ``latency`` (seconds slept per call, like a network
round trip) and :class:`RateLimits` (a token bucket per API answering ``Throttling``
/ ``LimitExceededException`` like AWS) make it usable for the rate-limit backfill.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse

from finops_pipeline.adapters.usage.aws import METRICS, NAMESPACES, S3_STORAGE_TYPE, AwsUsageAdapter
from finops_pipeline.simulator.aws import CostExplorerDouble, CostExplorerError
from finops_pipeline.simulator.fleet import AWS_PAYER, Fleet

LIST_METRICS_PAGE = 500  # ListMetrics returns up to 500 metrics per call
MAX_DATAPOINTS_PER_CALL = 100_800  # GetMetricData's documented per-call datapoint limit
MAX_QUERIES_PER_CALL = 500
_STATS = {"Average": "avg", "Maximum": "max", "Minimum": "min", "Sum": "sum", "SampleCount": "sample_count"}


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


class AwsDouble:
    """CloudWatch, STS and Cost Explorer for one fleet, answered inside botocore."""

    def __init__(self, fleet: Fleet, today: date, latency: float = 0.0, limits: RateLimits | None = None,
                 ce_page_days: int = 7):
        self.fleet = fleet
        self.latency = latency
        self.limits = limits
        self.ce = CostExplorerDouble(fleet, page_days=ce_page_days, today=today)
        self.calls: Counter = Counter()  # answered calls per API key
        self.throttled: Counter = Counter()  # throttled calls per API key
        self._by_dimension = {}
        for resource in fleet.of("aws"):
            ns = NAMESPACES[resource.resource_type]
            self._by_dimension[(ns.namespace, resource.resource_id)] = resource
        self._listing: dict[tuple[str, str], list[dict]] = {}
        self._series_cache: dict[tuple, object] = {}

    # -- wiring ----------------------------------------------------------------------
    def attach(self, client):
        """Answer every request of a botocore client from this double."""
        client.meta.events.register("before-send", self.on_send)
        return client

    def client_factory(self, settings):
        """An AwsUsageAdapter client_factory: the adapter's own client config, answered here."""
        production = AwsUsageAdapter(settings)
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
            handler = {"ListMetrics": self.list_metrics, "GetMetricData": self.get_metric_data,
                       "GetMetricStatistics": self.get_metric_statistics}[operation]
            answer = handler(region, json.loads(request.body))
            return _response(request.url, 200, json.dumps(answer).encode(), _CLOUDWATCH_HEADERS)
        if service == "sts":
            return _response(request.url, 200, _caller_identity(), {"Content-Type": "text/xml"})
        if service == "cost-explorer":
            try:
                answer, status = self.ce.handle(operation, json.loads(request.body)), 200
            except CostExplorerError as exc:
                answer, status = {"__type": exc.code, "message": exc.message}, exc.status
            return _response(request.url, status, json.dumps(answer).encode(),
                             {"Content-Type": "application/x-amz-json-1.1"})
        raise ValueError(f"the benchmark double does not serve {service}.{operation}")

    def _throttled(self, service: str, url: str) -> AWSResponse:
        if service == "cloudwatch":
            body = json.dumps({"__type": "com.amazonaws.cloudwatch#ThrottlingException",
                               "message": "Rate exceeded"}).encode()
            return _response(url, 400, body, {**_CLOUDWATCH_HEADERS, "x-amzn-query-error": "Throttling;Sender"})
        body = json.dumps({"__type": "LimitExceededException", "message": "Rate exceeded"}).encode()
        return _response(url, 400, body, {"Content-Type": "application/x-amz-json-1.1"})

    def warm(self) -> None:
        """Build the ListMetrics listings now, so they are not allocated inside a measured step."""
        for region in {r.region for r in self.fleet.of("aws")}:
            for ns in {n.namespace for n in NAMESPACES.values()}:
                self._metrics_of(region, ns)

    # -- CloudWatch -------------------------------------------------------------------
    def list_metrics(self, region: str, body: dict) -> dict:
        metrics = self._metrics_of(region, body["Namespace"])
        first = int(body.get("NextToken") or 0)
        answer: dict = {"Metrics": metrics[first:first + LIST_METRICS_PAGE]}
        if first + LIST_METRICS_PAGE < len(metrics):
            answer["NextToken"] = str(first + LIST_METRICS_PAGE)
        return answer

    def _metrics_of(self, region: str, namespace: str) -> list[dict]:
        key = (region, namespace)
        if key not in self._listing:
            listing = []
            for rtype, ns in NAMESPACES.items():
                if ns.namespace != namespace:
                    continue
                for resource in self.fleet.of("aws", rtype):
                    if resource.region != region:
                        continue
                    for spec in METRICS[rtype]:
                        dims = [{"Name": ns.dimensions[0], "Value": resource.resource_id}]
                        if rtype == "s3":
                            dims.append({"Name": "StorageType", "Value": S3_STORAGE_TYPE[spec.native]})
                        listing.append({"Namespace": namespace, "MetricName": spec.native, "Dimensions": dims})
            self._listing[key] = listing
        return self._listing[key]

    def get_metric_data(self, region: str, body: dict) -> dict:
        queries = body["MetricDataQueries"]
        if len(queries) > MAX_QUERIES_PER_CALL:
            raise ValueError("GetMetricData accepts at most 500 queries")
        start, end = _time(body["StartTime"]), _time(body["EndTime"])
        first_query, offset = (int(x) for x in (body.get("NextToken") or "0:0").split(":"))
        budget = MAX_DATAPOINTS_PER_CALL
        results, token = [], None
        for i in range(first_query, len(queries)):
            stat = queries[i]["MetricStat"]
            stamps, values = self._series(region, stat["Metric"], stat["Period"], stat["Stat"], start, end)
            taken = slice(offset, offset + budget)
            results.append({"Id": queries[i]["Id"], "Label": stat["Metric"]["MetricName"],
                            "Timestamps": stamps[taken], "Values": values[taken], "StatusCode": "Complete"})
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
        metric = {k: body[k] for k in ("Namespace", "MetricName", "Dimensions")}
        points: dict[float, dict] = {}
        start, end = _time(body["StartTime"]), _time(body["EndTime"])
        for stat in body["Statistics"]:
            stamps, values = self._series(region, metric, body["Period"], stat, start, end)
            for ts, value in zip(stamps, values):
                points.setdefault(ts, {"Timestamp": ts, "Unit": "None"})[stat] = value
        return {"Label": body["MetricName"], "Datapoints": list(points.values())}

    def _series(self, region: str, metric: dict, period: int, stat: str, start: datetime, end: datetime):
        """(epoch-second timestamps, values) of one metric statistic, ascending, for [start, end)."""
        dims = metric.get("Dimensions") or []
        resource = self._by_dimension.get((metric["Namespace"], dims[0]["Value"] if dims else None))
        if resource is None or resource.region != region:
            return [], []
        spec = next((s for s in METRICS[resource.resource_type] if s.native == metric["MetricName"]), None)
        if spec is None:
            return [], []
        column = _STATS[stat]
        stamps, values = [], []
        day = start.astimezone(timezone.utc).date()
        while datetime(day.year, day.month, day.day, tzinfo=timezone.utc) < end:
            cache_key = (resource.resource_id, spec.canonical, day)
            hourly = self._series_cache.get(cache_key)
            if hourly is None:
                if len(self._series_cache) > 2_000:  # avg and max of a series arrive together
                    self._series_cache.clear()
                hourly = self._series_cache[cache_key] = self.fleet.hourly(resource, spec.canonical, day)
            column_values = getattr(hourly, column)
            for h in range(1 if period == 86400 else 24):
                ts = hourly.hour_starts[h]
                if start <= ts < end:
                    stamps.append(ts.timestamp())
                    values.append(float(column_values[h]) / spec.scale)
            day += timedelta(days=1)
        return stamps, values


_CLOUDWATCH_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}


def _time(value: float | str) -> datetime:
    """A JSON-protocol timestamp (epoch seconds) as an aware UTC datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime.fromtimestamp(value, timezone.utc)


def _region(url: str) -> str:
    host = urlsplit(url).hostname or ""
    parts = host.split(".")
    return parts[1] if len(parts) > 3 else "us-east-1"


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

