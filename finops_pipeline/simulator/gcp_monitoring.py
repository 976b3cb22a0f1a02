"""A Cloud Monitoring double: `google.monitoring.v3.MetricService/ListTimeSeries` over gRPC.

It serves the fleet's GCP resources in each metric's *native* unit and kind (CPU as a
0-1 fraction, byte counters as DELTA INT64, container CPU as CUMULATIVE seconds), with
the labels Google puts on them, and answers the way the real service does:

- only aligned reads (``alignment_period`` 3600 s with an aligner valid for the metric
  kind; anything else is INVALID_ARGUMENT), optionally reduced across series with
  ``REDUCE_SUM`` grouped by ``group_by_fields``;
- the filter is parsed (``metric.type``, ``resource.type``, ``resource.labels.*``,
  ``metric.labels.*`` with ``=`` or ``one_of(...)``, joined by AND);
- pages of at most ``max_page_size`` series, continued with ``page_token``;
- points newest first, each stamped with the end of its alignment period;
- only series with points in the interval: a Cloud SQL metric that the instance's engine
  does not publish (``network/connections`` on PostgreSQL) has none, and a sparse counter
  (Cloud Storage ``api/request_count``) has no point for an hour in which nothing was counted.

Some metrics come as several raw series per resource (a VM's traffic split by
``loadbalanced``, a container's memory by ``memory_type``), as they do in Google Cloud,
so a client that does not reduce per resource gets duplicates.
Every request is kept in ``requests`` for tests; ``fail_next`` queues gRPC errors.
``gate`` (optional, for benchmarks) is called as ``gate("ListTimeSeries", request.name)``
before each answer: it may sleep (network latency) and may return ``(grpc.StatusCode,
message)`` to refuse the call (e.g. RESOURCE_EXHAUSTED for a spent quota).
"""

from __future__ import annotations

import re
import threading
from concurrent import futures
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import grpc
from google.api import metric_pb2
from google.cloud.monitoring_v3 import types as mtypes

from finops_pipeline.simulator.fleet import Fleet, SimResource

SERVICE = "google.monitoring.v3.MetricService"
_Request = mtypes.ListTimeSeriesRequest.pb()
_Response = mtypes.ListTimeSeriesResponse.pb()
_TimeSeries = mtypes.TimeSeries.pb()
_Aligner = mtypes.Aggregation.Aligner
_Reducer = mtypes.Aggregation.Reducer
_Kind = metric_pb2.MetricDescriptor  # MetricKind values: _Kind.GAUGE, _Kind.DELTA, ...
_ValueType = metric_pb2.MetricDescriptor  # ValueType values: DOUBLE, INT64, ...

HOUR = 3600


@dataclass(frozen=True)
class NativeMetric:
    """How Google exposes one metric type, and where its values come from in the fleet."""

    resource_type: str
    canonical: str  # the fleet metric that feeds it
    kind: int  # MetricKind
    value_type: int  # ValueType
    to_native: float = 1.0  # canonical value x to_native = native value
    split: tuple[tuple[str, str, float], ...] = ()  # (metric label, value, share) raw series
    engines: frozenset[str] | None = None  # Cloud SQL: the database engines that publish it
    sparse: bool = False  # no point for a period in which nothing was counted


_NATIVE: dict[str, NativeMetric] = {
    "compute.googleapis.com/instance/cpu/utilization": NativeMetric(
        "gce_instance", "cpu_utilization_pct", _Kind.GAUGE, _ValueType.DOUBLE, 0.01
    ),
    "compute.googleapis.com/instance/network/received_bytes_count": NativeMetric(
        "gce_instance",
        "network_in_bytes",
        _Kind.DELTA,
        _ValueType.INT64,
        split=(("loadbalanced", "false", 0.8), ("loadbalanced", "true", 0.2)),
    ),
    "compute.googleapis.com/instance/network/sent_bytes_count": NativeMetric(
        "gce_instance",
        "network_out_bytes",
        _Kind.DELTA,
        _ValueType.INT64,
        split=(("loadbalanced", "false", 0.7), ("loadbalanced", "true", 0.3)),
    ),
    "compute.googleapis.com/instance/disk/read_bytes_count": NativeMetric(
        "gce_instance", "disk_read_bytes", _Kind.DELTA, _ValueType.INT64
    ),
    "compute.googleapis.com/instance/disk/write_bytes_count": NativeMetric(
        "gce_instance", "disk_write_bytes", _Kind.DELTA, _ValueType.INT64
    ),
    "cloudsql.googleapis.com/database/cpu/utilization": NativeMetric(
        "cloudsql_database", "cpu_utilization_pct", _Kind.GAUGE, _ValueType.DOUBLE, 0.01
    ),
    "cloudsql.googleapis.com/database/memory/utilization": NativeMetric(
        "cloudsql_database", "memory_utilization_pct", _Kind.GAUGE, _ValueType.DOUBLE, 0.01
    ),
    # "Cloud SQL metrics" (cloud.google.com/sql/docs/postgres/admin-api/metrics): network/connections
    # is "Only applicable to MySQL and SQL Server"; PostgreSQL publishes postgresql/num_backends,
    # "Number of connections to the Cloud SQL PostgreSQL instance", one series per `database`.
    "cloudsql.googleapis.com/database/network/connections": NativeMetric(
        "cloudsql_database", "connections", _Kind.GAUGE, _ValueType.INT64, engines=frozenset({"MYSQL", "SQLSERVER"})
    ),
    "cloudsql.googleapis.com/database/postgresql/num_backends": NativeMetric(
        "cloudsql_database",
        "connections",
        _Kind.GAUGE,
        _ValueType.INT64,
        split=(("database", "postgres", 0.25), ("database", "shop", 0.75)),
        engines=frozenset({"POSTGRES"}),
    ),
    "storage.googleapis.com/storage/total_bytes": NativeMetric(
        "gcs_bucket", "storage_bytes", _Kind.GAUGE, _ValueType.DOUBLE, split=(("storage_class", "STANDARD", 1.0),)
    ),
    # "Google Cloud metrics: storage": "Delta count of API calls, grouped by the API method name and
    # response code": a series and its points exist only for calls made, so an hour without
    # requests has no point and an idle bucket no series ("Troubleshoot metrics: Gaps in chart data").
    "storage.googleapis.com/api/request_count": NativeMetric(
        "gcs_bucket",
        "requests",
        _Kind.DELTA,
        _ValueType.INT64,
        split=(("method", "ReadObject", 0.8), ("method", "WriteObject", 0.2)),
        sparse=True,
    ),
    "kubernetes.io/container/cpu/core_usage_time": NativeMetric(
        "k8s_container", "cpu_core_seconds", _Kind.CUMULATIVE, _ValueType.DOUBLE
    ),
    "kubernetes.io/container/memory/used_bytes": NativeMetric(
        "k8s_container",
        "memory_used_bytes",
        _Kind.GAUGE,
        _ValueType.INT64,
        split=(("memory_type", "evictable", 0.3), ("memory_type", "non-evictable", 0.7)),
    ),
}

_GAUGE_ALIGNERS = {_Aligner.ALIGN_MEAN, _Aligner.ALIGN_MAX, _Aligner.ALIGN_MIN}
_COUNTER_ALIGNERS = {_Aligner.ALIGN_DELTA, _Aligner.ALIGN_RATE}

K8S_CLUSTER = "autopilot-1"
K8S_NAMESPACE = "default"


def monitored_labels(r: SimResource) -> tuple[dict[str, str], dict[str, str]]:
    """(resource labels, metric labels) Google attaches to a fleet resource's series."""
    if r.resource_type == "gce_instance":
        return (
            {"project_id": r.sub_account_id, "instance_id": r.numeric_id or r.resource_id, "zone": f"{r.region}-a"},
            {"instance_name": r.name},
        )
    if r.resource_type == "cloudsql_database":
        return {"project_id": r.sub_account_id, "database_id": r.resource_id, "region": r.region}, {}
    if r.resource_type == "gcs_bucket":
        return {"project_id": r.sub_account_id, "bucket_name": r.resource_id, "location": r.region}, {}
    if r.resource_type == "k8s_container":
        return (
            {
                "project_id": r.sub_account_id,
                "location": r.region,
                "cluster_name": K8S_CLUSTER,
                "namespace_name": K8S_NAMESPACE,
                "pod_name": r.resource_id,
                "container_name": "app",
            },
            {},
        )
    raise ValueError(f"no Cloud Monitoring labels for resource type {r.resource_type!r}")


def cloudsql_engine(r: SimResource) -> str:
    """The database engine of a fleet Cloud SQL instance, read from its billing SKU
    ("Cloud SQL for PostgreSQL: Zonal - vCPU" -> POSTGRES)."""
    sku = r.sku.lower()
    for name, engine in (("postgresql", "POSTGRES"), ("mysql", "MYSQL"), ("sql server", "SQLSERVER")):
        if f"cloud sql for {name}" in sku:
            return engine
    raise ValueError(f"no Cloud SQL engine in SKU {r.sku!r}")


class FilterError(ValueError):
    pass


_CLAUSE = re.compile(
    r"^\s*(?P<field>[a-z_]+(?:\.[a-z_]+)*)\s*=\s*"
    r'(?:"(?P<value>[^"\\]*)"|one_of\((?P<values>\s*"[^"\\]*"(?:\s*,\s*"[^"\\]*")*\s*)\))\s*$'
)


def parse_filter(text: str) -> dict[str, set[str]]:
    """A Monitoring filter of AND-ed equality / one_of clauses -> field -> allowed values."""
    clauses: dict[str, set[str]] = {}
    for part in re.split(r"\s+AND\s+", text.strip()):
        m = _CLAUSE.match(part)
        if not m:
            raise FilterError(f"could not parse filter clause {part!r}")
        field = re.sub(r"^(resource|metric)\.label\.", r"\1.labels.", m.group("field"))
        values = (
            {m.group("value")} if m.group("value") is not None else set(re.findall(r'"([^"\\]*)"', m.group("values")))
        )
        clauses[field] = clauses[field] & values if field in clauses else values
    if "metric.type" not in clauses or len(clauses["metric.type"]) != 1:
        raise FilterError("the filter must name exactly one metric.type")
    return clauses


def _field_value(field: str, rtype: str, rlabels: dict, mlabels: dict) -> str | None:
    if field == "resource.type":
        return rtype
    m = re.match(r"^(resource|metric)\.labels?\.(.+)$", field)
    if not m:
        return None
    return (rlabels if m.group(1) == "resource" else mlabels).get(m.group(2))


class MetricServiceDouble:
    """The servicer: ListTimeSeries over the fleet for the window [start, end)."""

    def __init__(self, fleet: Fleet, start: date, end: date, max_page_size: int = 1000, gate=None):
        self.fleet = fleet
        self.gate = gate
        self.start = datetime(start.year, start.month, start.day, tzinfo=timezone.utc)
        self.end = datetime(end.year, end.month, end.day, tzinfo=timezone.utc)
        self.max_page_size = max_page_size
        self.requests: list = []  # raw ListTimeSeriesRequest protos, in arrival order
        self.fail_next: list[grpc.StatusCode] = []  # errors to answer the next calls with
        self.denied_projects: set[str] = set()
        self._lock = threading.Lock()

    # -- the RPC --------------------------------------------------------------------
    def list_time_series(self, request, context):
        with self._lock:
            self.requests.append(request)
            failure = self.fail_next.pop(0) if self.fail_next else None
        if failure is not None:
            context.abort(failure, f"simulated {failure.name}")
        refusal = self.gate("ListTimeSeries", request.name) if self.gate is not None else None
        if refusal is not None:
            context.abort(*refusal)
        project = request.name.removeprefix("projects/")
        if project in self.denied_projects:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "Permission monitoring.timeSeries.list denied (or the resource may not exist).",
            )
        if not request.name.startswith("projects/") or project not in {r.sub_account_id for r in self.fleet.of("gcp")}:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {request.name}")
        try:
            clauses = parse_filter(request.filter)
            series = self._series(project, clauses, request)
        except FilterError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        offset = int(request.page_token or 0)
        size = min(request.page_size or self.max_page_size, self.max_page_size)
        response = _Response()
        response.time_series.extend(series[offset : offset + size])
        if offset + size < len(series):
            response.next_page_token = str(offset + size)
        return response

    # -- series ---------------------------------------------------------------------
    def _series(self, project: str, clauses: dict[str, set[str]], request) -> list:
        metric_type = next(iter(clauses["metric.type"]))
        native = _NATIVE.get(metric_type)
        if native is None:
            return []  # an unknown metric type matches no series
        agg = request.aggregation
        if agg.alignment_period.seconds != HOUR:
            raise FilterError("this double serves only alignment_period 3600s")
        aligners = _GAUGE_ALIGNERS if native.kind == _Kind.GAUGE else _COUNTER_ALIGNERS
        if agg.per_series_aligner not in aligners:
            raise FilterError(
                f"aligner {_Aligner(agg.per_series_aligner).name} is not valid for "
                f"{_Kind.MetricKind.Name(native.kind)} metric {metric_type}"
            )
        if agg.cross_series_reducer not in (_Reducer.REDUCE_NONE, _Reducer.REDUCE_SUM):
            raise FilterError("this double implements REDUCE_NONE and REDUCE_SUM only")
        ends = self._period_ends(request.interval)
        raw = []
        for r in self.fleet.of("gcp", native.resource_type):
            if r.sub_account_id != project:
                continue
            if native.engines is not None and cloudsql_engine(r) not in native.engines:
                continue  # this engine does not publish the metric
            rlabels, mlabels = monitored_labels(r)
            low = 0.0
            for label, value, share in native.split or ((None, None, 1.0),):
                labels = dict(mlabels, **({label: value} if label else {}))
                if all(
                    _field_value(f, native.resource_type, rlabels, labels) in allowed
                    for f, allowed in clauses.items()
                    if f != "metric.type"
                ):
                    raw.append((r, rlabels, labels, (low, low + share)))
                low += share
        if agg.cross_series_reducer == _Reducer.REDUCE_SUM:
            groups: dict[tuple, list] = {}
            for item in raw:
                key = tuple(_field_value(f, native.resource_type, item[1], item[2]) for f in agg.group_by_fields)
                groups.setdefault(key, []).append(item)
            out = []
            for key, members in sorted(groups.items()):
                rl, ml = {}, {}
                for f, v in zip(agg.group_by_fields, key):
                    m = re.match(r"^(resource|metric)\.labels?\.(.+)$", f)
                    if m and v is not None:
                        (rl if m.group(1) == "resource" else ml)[m.group(2)] = v
                out.append(self._build(metric_type, native, rl, ml, members, ends, agg, reduced=True))
        else:
            out = [
                self._build(metric_type, native, rl, ml, [(r, rl, ml, shares)], ends, agg, reduced=False)
                for r, rl, ml, shares in raw
            ]
        # ListTimeSeriesRequest.interval: "Only time series that contain data points in the
        # specified interval are included in the response."
        return [ts for ts in out if ts.points]

    def _period_ends(self, interval) -> list[datetime]:
        end = interval.end_time.ToDatetime(tzinfo=timezone.utc)
        start = interval.start_time.ToDatetime(tzinfo=timezone.utc)
        if end.minute or end.second or end.microsecond or start.minute or start.second:
            raise FilterError("this double serves only whole-hour intervals")
        ends, t = [], end
        while t - timedelta(seconds=HOUR) >= start:
            if self.start <= t - timedelta(seconds=HOUR) < self.end:
                ends.append(t)
            t -= timedelta(seconds=HOUR)
        return ends  # newest first, as Cloud Monitoring returns points

    def _build(self, metric_type, native, rlabels, mlabels, members, ends, agg, reduced):
        aligner = agg.per_series_aligner
        ts = _TimeSeries()
        ts.metric.type = metric_type
        ts.metric.labels.update(mlabels)
        ts.resource.type = native.resource_type
        ts.resource.labels.update(rlabels)
        integer = native.value_type == _ValueType.INT64 and aligner in (
            _Aligner.ALIGN_MAX,
            _Aligner.ALIGN_MIN,
            _Aligner.ALIGN_DELTA,
        )
        ts.value_type = _ValueType.INT64 if integer else _ValueType.DOUBLE
        ts.metric_kind = _Kind.GAUGE if native.kind == _Kind.GAUGE or aligner == _Aligner.ALIGN_RATE else _Kind.DELTA
        if not reduced and native.resource_type == "gce_instance":
            ts.metadata.system_labels.fields["name"].string_value = members[0][0].name
        gauge = native.kind == _Kind.GAUGE
        days: dict[tuple, object] = {}  # (resource, day) -> the aligner's 24 hourly values

        def hourly(r, day):
            if (r.resource_id, day) not in days:
                values = self.fleet.hourly(r, native.canonical, day)
                days[(r.resource_id, day)] = (
                    {_Aligner.ALIGN_MEAN: values.avg, _Aligner.ALIGN_MAX: values.max, _Aligner.ALIGN_MIN: values.min}[
                        aligner
                    ]
                    if gauge
                    else values.sum
                )
            return days[(r.resource_id, day)]

        with_start = not gauge or aligner == _Aligner.ALIGN_RATE
        for end in ends:
            hour_start = end - timedelta(seconds=HOUR)
            day, h = hour_start.date(), hour_start.hour
            total = 0.0
            for r, _, _, (low, high) in members:
                raw = hourly(r, day)[h] * native.to_native
                if not gauge and native.value_type == _ValueType.INT64:
                    raw = float(round(raw))
                # Integer series split so their parts add up exactly to the whole.
                if integer:
                    total += float(round(raw * min(high, 1.0))) - float(round(raw * low))
                else:
                    total += raw * min(high, 1.0) - raw * low
            if native.sparse and total == 0:
                continue  # nothing counted in this period: no point at all
            if not gauge and aligner == _Aligner.ALIGN_RATE:
                total = total / HOUR
            point = ts.points.add()
            seconds = int(end.timestamp())
            if with_start:
                point.interval.start_time.seconds = seconds - HOUR
            point.interval.end_time.seconds = seconds
            if integer:
                point.value.int64_value = int(total)
            else:
                point.value.double_value = total
        return ts


def start_monitoring_server(double: MetricServiceDouble) -> tuple[grpc.Server, int]:
    """Serve the double on a free 127.0.0.1 port; returns (server, port)."""
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                double.list_time_series,
                request_deserializer=_Request.FromString,
                response_serializer=_Response.SerializeToString,
            ),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
