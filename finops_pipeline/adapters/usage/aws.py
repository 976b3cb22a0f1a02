"""AWS adapter: CloudWatch metrics (GetMetricData, batched) and Cost Explorer billing.

Clients come from boto3's default credential chain (environment, profile, IAM role);
``AWS_ENDPOINT_URL_*`` variables (used by the simulator) redirect them. Throttling and
5xx are retried by botocore's adaptive retry mode; any other error raises
CloudApiError naming the IAM action or the setting that fixes it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable, Iterator

import boto3
import botocore.session
import pyarrow as pa
import pyarrow.compute as pc
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.utils import parse_timestamp

from finops_pipeline.adapters.usage.base import (
    ApiUsage,
    CloudAdapter,
    CloudApiError,
    CostFetch,
    MetricSpec,
    ResourceRef,
    utc_now,
)
from finops_pipeline.settings import Settings

# Price list (us-east-1): GetMetricData $0.01 per 1,000 metrics requested; other
# CloudWatch API requests $0.01 per 1,000; Cost Explorer $0.01 per request (page).
GET_METRIC_DATA_PER_METRIC = Decimal("0.00001")
CLOUDWATCH_PER_REQUEST = Decimal("0.00001")
COST_EXPLORER_PER_REQUEST = Decimal("0.01")

MAX_QUERIES_PER_CALL = 500  # GetMetricData limit
RESOURCE_DATA_DAYS = 14  # GetCostAndUsageWithResources only serves the last 14 days
# The one service GetCostAndUsageWithResources serves; its Filter must include this SERVICE.
EC2_COMPUTE = "Amazon Elastic Compute Cloud - Compute"


@dataclass(frozen=True)
class Namespace:
    """Where a resource type's metrics live and which dimensions identify one resource."""

    namespace: str
    dimensions: tuple[str, ...]  # identity dimension first
    period: int = 3600


NAMESPACES: dict[str, Namespace] = {
    "ec2": Namespace("AWS/EC2", ("InstanceId",)),
    "rds": Namespace("AWS/RDS", ("DBInstanceIdentifier",)),
    "lambda": Namespace("AWS/Lambda", ("FunctionName",)),
    "dynamodb": Namespace("AWS/DynamoDB", ("TableName",)),
    "s3": Namespace("AWS/S3", ("BucketName", "StorageType"), period=86400),  # daily storage metrics
    "elb": Namespace("AWS/ELB", ("LoadBalancerName",)),
    "alb": Namespace("AWS/ApplicationELB", ("LoadBalancer",)),
}

# S3 storage metrics are per storage class: which StorageType each metric is read for.
S3_STORAGE_TYPE = {"BucketSizeBytes": "StandardStorage", "NumberOfObjects": "AllStorageTypes"}

METRICS: dict[str, list[MetricSpec]] = {
    "ec2": [
        MetricSpec("CPUUtilization", "cpu_utilization_pct", "gauge", "Percent"),
        MetricSpec("NetworkIn", "network_in_bytes", "counter", "Bytes"),
        MetricSpec("NetworkOut", "network_out_bytes", "counter", "Bytes"),
        MetricSpec("EBSReadBytes", "disk_read_bytes", "counter", "Bytes"),
        MetricSpec("EBSWriteBytes", "disk_write_bytes", "counter", "Bytes"),
    ],
    "rds": [
        MetricSpec("CPUUtilization", "cpu_utilization_pct", "gauge", "Percent"),
        MetricSpec("DatabaseConnections", "connections", "gauge", "Count"),
        MetricSpec("ReadIOPS", "read_iops", "gauge", "Count/Second"),
        MetricSpec("FreeableMemory", "memory_available_bytes", "gauge", "Bytes"),
    ],
    "lambda": [
        MetricSpec("Invocations", "invocations", "counter", "Count"),
        MetricSpec("Duration", "duration_ms", "gauge", "Milliseconds"),
        MetricSpec("Errors", "errors", "counter", "Count"),
    ],
    "dynamodb": [
        MetricSpec("ConsumedReadCapacityUnits", "read_capacity_units", "counter", "Count"),
        MetricSpec("ConsumedWriteCapacityUnits", "write_capacity_units", "counter", "Count"),
    ],
    "s3": [
        MetricSpec("BucketSizeBytes", "storage_bytes", "gauge", "Bytes"),
        MetricSpec("NumberOfObjects", "object_count", "gauge", "Count"),
    ],
    "elb": [
        MetricSpec("RequestCount", "requests", "counter", "Count"),
        MetricSpec("HealthyHostCount", "healthy_hosts", "gauge", "Count"),
    ],
    "alb": [
        MetricSpec("RequestCount", "requests", "counter", "Count"),
        MetricSpec("ActiveConnectionCount", "connections", "counter", "Count"),
    ],
}

# IAM action each call needs, for AccessDenied messages.
IAM_ACTIONS = {
    "ListMetrics": "cloudwatch:ListMetrics",
    "GetMetricData": "cloudwatch:GetMetricData",
    "GetCostAndUsage": "ce:GetCostAndUsage",
    "GetCostAndUsageWithResources": "ce:GetCostAndUsageWithResources",
    "GetCostForecast": "ce:GetCostForecast",
    "GetCallerIdentity": "sts:GetCallerIdentity",
}

# Canonical cost dimensions -> Cost Explorer GroupBy keys.
CE_DIMENSIONS = {"service": "SERVICE", "region": "REGION", "account": "LINKED_ACCOUNT",
                 "project": "LINKED_ACCOUNT", "subscription": "LINKED_ACCOUNT", "resource": "RESOURCE_ID"}
_CE_COLUMN = {"SERVICE": "service_name", "LINKED_ACCOUNT": "sub_account_id", "REGION": "region",
              "RESOURCE_ID": "resource_id", "USAGE_TYPE": "sku", "INSTANCE_TYPE": "sku",
              "RECORD_TYPE": "charge_category"}
_RECORD_TYPES = {"Usage": "Usage", "Tax": "Tax", "Credit": "Credit", "Refund": "Credit",
                 "DiscountedUsage": "Usage", "SavingsPlanCoveredUsage": "Usage",
                 "SavingsPlanRecurringFee": "Purchase", "SavingsPlanUpfrontFee": "Purchase",
                 "RIFee": "Purchase", "Fee": "Purchase", "Support": "Usage",
                 "SavingsPlanNegation": "Adjustment", "BundledDiscount": "Credit",
                 "Distributor Discount": "Credit", "EdpDiscount": "Credit"}


@dataclass(frozen=True)
class _Query:
    resource: ResourceRef
    dimensions: tuple[tuple[str, str], ...]
    spec: MetricSpec
    namespace: Namespace
    stat: str
    column: str  # avg | max | sum


_THROTTLING_CODES = {"Throttling", "ThrottlingException", "LimitExceededException", "RequestLimitExceeded",
                     "TooManyRequestsException", "RequestThrottled", "ServiceUnavailable"}
AWS_RETRY_HINT = "botocore's adaptive retries (AWS_MAX_ATTEMPTS)"


def _client_error(exc: ClientError, operation: str) -> CloudApiError:
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", "")
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"):
        reason = (f"access denied ({code}). Grant the IAM action {IAM_ACTIONS[operation]} to the "
                  f"pipeline's role or user (see docs/operations.md for the least-privilege policy).")
    elif code == "DataUnavailableException" or "not enabled" in message.lower() or "opt" in code.lower():
        if operation == "GetCostAndUsageWithResources":
            reason = (f"{code}: resource-level data is not enabled. Enable 'Hourly and resource-level "
                      "data' in Billing -> Cost Management preferences, or set AWS_COST_WITH_RESOURCES=false.")
        elif operation == "GetCostForecast":
            reason = (f"{code}: Cost Explorer has too little cost history to forecast this account yet "
                      "(or set AWS_COST_FORECAST=false).")
        else:
            reason = (f"{code}: Cost Explorer is not enabled for this account. Enable it in the "
                      "Billing console (it takes up to 24 hours) and run again.")
    elif code == "BillExpirationException":
        reason = f"{code}: Cost Explorer only serves the last 13 months; choose a later partition."
    else:
        reason = f"{code}: {message}"
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    transient = code in _THROTTLING_CODES or status >= 500
    if transient:
        reason += f" (still failing after {AWS_RETRY_HINT}; the run can be retried)"
    return CloudApiError("aws", operation, reason, retryable=transient)


def _money(metric: dict | None) -> Decimal:
    return Decimal(metric["Amount"]) if metric and metric.get("Amount") not in (None, "") else Decimal(0)


def utc_timestamp(value) -> datetime:
    """Response timestamps as UTC datetimes. botocore's default parser converts every one to
    the local zone through dateutil: half the CPU of a GetMetricData day for 10,000 resources.
    Epoch numbers (the JSON protocols) convert directly; other forms go through botocore."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    return parse_timestamp(value).astimezone(timezone.utc)


class AwsUsageAdapter(CloudAdapter):
    """CloudWatch + Cost Explorer for one set of credentials and the configured regions."""

    provider = "aws"
    METRICS = METRICS

    def __init__(self, settings: Settings, client_factory: Callable[[str, str], object] | None = None,
                 today: date | None = None):
        self.settings = settings
        self.api = ApiUsage()
        self._client_factory = client_factory or self._default_client
        self._clients: dict[tuple[str, str], object] = {}
        self._today = today
        self._account: str | None = None
        self._discovered: dict[str, list[ResourceRef]] = {}
        self._lazy_lock = threading.RLock()  # STS identity and discovery happen once per adapter

    @classmethod
    def from_settings(cls, settings: Settings) -> "AwsUsageAdapter":
        return cls(settings)

    def _default_client(self, service: str, region: str):
        config = Config(retries={"max_attempts": self.settings.aws_max_attempts, "mode": "adaptive"},
                        user_agent_extra="finops-pipeline")
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=utc_timestamp)
        return boto3.session.Session(botocore_session=core).client(service, region_name=region, config=config)

    def client(self, service: str, region: str | None = None):
        # Cost Explorer and STS are global; CE only answers in us-east-1.
        region = region or ("us-east-1" if service == "ce" else self.settings.aws_region)
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._client_factory(service, region)
        return self._clients[key]

    def _call(self, service: str, operation: str, region: str | None = None, cost: Decimal = Decimal(0), **kwargs):
        method = getattr(self.client(service, region), _snake(operation))
        try:
            response = method(**kwargs)
        except ClientError as exc:
            raise _client_error(exc, operation) from None
        self.api.record(operation, cost)
        return response

    @property
    def today(self) -> date:
        return self._today or utc_now().date()

    def account_id(self) -> str:
        """The account the credentials belong to (labels metrics rows)."""
        with self._lazy_lock:
            if self._account is None:
                self._account = self._call("sts", "GetCallerIdentity")["Account"]
        return self._account

    # -- metrics -------------------------------------------------------------------
    def discover(self, region: str, resource_types: list[str] | None = None) -> list[ResourceRef]:
        """Resources with metrics in a region: ListMetrics per namespace, every page."""
        found: dict[tuple, ResourceRef] = {}
        for rtype in resource_types or list(NAMESPACES):
            ns = NAMESPACES[rtype]
            wanted = {s.native for s in METRICS[rtype]}
            token = None
            while True:
                kwargs = {"Namespace": ns.namespace}
                if token:
                    kwargs["NextToken"] = token
                page = self._call("cloudwatch", "ListMetrics", region, CLOUDWATCH_PER_REQUEST, **kwargs)
                for metric in page.get("Metrics", []):
                    dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                    if metric["MetricName"] not in wanted or set(dims) != set(ns.dimensions):
                        continue
                    rid = dims[ns.dimensions[0]]
                    found.setdefault((rtype, rid), ResourceRef(rid, rtype, region, None))
                token = page.get("NextToken")
                if not token:
                    break
        return list(found.values())

    def _queries(self, refs: list[ResourceRef], metrics: list[str] | None) -> list[_Query]:
        queries = []
        for ref in refs:
            if ref.resource_type not in NAMESPACES:
                raise ValueError(
                    f"unknown AWS resource type {ref.resource_type!r}; use one of {', '.join(NAMESPACES)}"
                )
            ns = NAMESPACES[ref.resource_type]
            for spec in METRICS[ref.resource_type]:
                if metrics and spec.canonical not in metrics and spec.native not in metrics:
                    continue
                dims = [(ns.dimensions[0], ref.resource_id)]
                if ref.resource_type == "s3":
                    dims.append(("StorageType", S3_STORAGE_TYPE[spec.native]))
                stats = [("Average", "avg"), ("Maximum", "max")] if spec.kind == "gauge" else [("Sum", "sum")]
                for stat, column in stats:
                    queries.append(_Query(ref, tuple(dims), spec, ns, stat, column))
        return queries

    def iter_metric_frames(self, start: datetime, end: datetime, resources: list[ResourceRef] | None = None,
                           metrics: list[str] | None = None) -> Iterator[pa.Table]:
        """Hourly metrics for [start, end): one Arrow table per GetMetricData call (<= 500 queries)."""
        account = self.account_id()
        if resources is None:
            # One discovery per region per adapter (a run): a 30-day backfill lists once, not 30 times.
            with self._lazy_lock:
                for region in self.settings.aws_usage_regions:
                    if region not in self._discovered:
                        self._discovered[region] = self.discover(region)
            by_region = {r: self._discovered[r] for r in self.settings.aws_usage_regions}
        else:
            by_region = defaultdict(list)
            for ref in resources:
                by_region[ref.region or self.settings.aws_region].append(ref)
        for region, refs in by_region.items():
            queries = self._queries(refs, metrics)
            for i in range(0, len(queries), MAX_QUERIES_PER_CALL):
                batch = queries[i:i + MAX_QUERIES_PER_CALL]
                yield self._fetch_batch(region, account, batch, start, end)

    def _fetch_batch(self, region: str, account: str, batch: list[_Query], start: datetime, end: datetime) -> pa.Table:
        """One GetMetricData call (all its NextToken pages) as metrics_hourly rows, built column-wise."""
        request = [
            {"Id": f"q{n}", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": q.namespace.namespace, "MetricName": q.spec.native,
                           "Dimensions": [{"Name": k, "Value": v} for k, v in q.dimensions]},
                "Period": q.namespace.period, "Stat": q.stat}}
            for n, q in enumerate(batch)
        ]
        # A series is one (resource, metric); its gauges come back as two queries (avg, max).
        series_of: dict[tuple, int] = {}
        series: list[_Query] = []
        for q in batch:
            key = (q.resource.resource_type, q.resource.resource_id, q.spec.native)
            if key not in series_of:
                series_of[key] = len(series)
                series.append(q)
        points: dict[str, tuple[list, list, list]] = {"avg": ([], [], []), "max": ([], [], []), "sum": ([], [], [])}
        token = None
        while True:
            kwargs = {"MetricDataQueries": request, "StartTime": start, "EndTime": end,
                      "ScanBy": "TimestampAscending"}
            if token:
                kwargs["NextToken"] = token
            page = self._call("cloudwatch", "GetMetricData", region,
                              GET_METRIC_DATA_PER_METRIC * len(request), **kwargs)
            for result in page.get("MetricDataResults", []):
                q = batch[int(result["Id"][1:])]
                timestamps = result.get("Timestamps", [])
                ids, stamps, values = points[q.column]
                ids.extend([series_of[(q.resource.resource_type, q.resource.resource_id, q.spec.native)]]
                           * len(timestamps))
                stamps.extend(timestamps)
                values.extend(result.get("Values", []))
            token = page.get("NextToken")
            if not token:
                break
        return _metric_table(series, points, region, account, start, end)

    # -- cost ----------------------------------------------------------------------
    def fetch_cost(self, start: date, end: date, group_by: tuple[str, ...] | None = None) -> CostFetch:
        """Daily cost for [start, end); resource-level rows where Cost Explorer has them."""
        if group_by is not None:
            unknown = [g for g in group_by if g.lower() not in CE_DIMENSIONS]
            if unknown or len(group_by) > 2:
                raise ValueError(f"group_by {group_by!r}: use at most two of {sorted(CE_DIMENSIONS)}")
            if any(g.lower() == "resource" for g in group_by):
                raise ValueError("group_by 'resource' on AWS: Cost Explorer has resource-level cost only for "
                                 "the last 14 days, per account; use group_by=None (the warehouse grain)")
            dims = tuple(dict.fromkeys(CE_DIMENSIONS[g.lower()] for g in group_by))
        else:
            dims = self.settings.aws_cost_group_by
        rows, totals = self._cost_and_usage(start, end, dims)
        resource_start = max(start, self.today - timedelta(days=RESOURCE_DATA_DAYS - 1))
        if (group_by is None and self.settings.aws_cost_with_resources and resource_start < end
                and "LINKED_ACCOUNT" in dims and "SERVICE" in dims):
            try:
                detailed = self._with_resources(resource_start, end)
            except CloudApiError as exc:  # optional: the service-level rows still land
                self.api.skip("GetCostAndUsageWithResources", str(exc))
                detailed = []
            # Resource-level data exists for EC2 instances only: it replaces the EC2 - Compute
            # row of each (day, account) it covers; every other service keeps its row.
            covered = {(r["usage_date"], r["sub_account_id"]) for r in detailed}
            rows = [r for r in rows if r["service_name"] != EC2_COMPUTE
                    or (r["usage_date"], r["sub_account_id"]) not in covered] + detailed
        forecast = None
        if group_by is None and self.settings.aws_cost_forecast and end >= self.today - timedelta(days=1):
            try:
                forecast = self._forecast()
            except CloudApiError as exc:
                self.api.skip("GetCostForecast", str(exc))
        all_days = [start + timedelta(days=i) for i in range((end - start).days)]
        return CostFetch(cost=_cost_table(rows), days=all_days, provider_totals=totals, forecast=forecast)

    def _pages(self, operation: str, **kwargs) -> Iterator[dict]:
        token = None
        while True:
            if token:
                kwargs["NextPageToken"] = token
            page = self._call("ce", operation, cost=COST_EXPLORER_PER_REQUEST, **kwargs)
            yield page
            token = page.get("NextPageToken")
            if not token:
                return

    def _cost_and_usage(self, start: date, end: date, dims: tuple[str, ...]):
        rows, totals = [], {}
        names: dict[str, str] = {}
        ingested = utc_now()
        for page in self._pages(
            "GetCostAndUsage",
            TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
            Granularity="DAILY",
            Metrics=["UnblendedCost", "AmortizedCost", "UsageQuantity"],
            GroupBy=[{"Type": "DIMENSION", "Key": d} for d in dims],
        ):
            for attr in page.get("DimensionValueAttributes", []):
                names[attr["Value"]] = attr.get("Attributes", {}).get("description", "")
            for result in page.get("ResultsByTime", []):
                day = date.fromisoformat(result["TimePeriod"]["Start"])
                groups = result.get("Groups", [])
                if not dims and result.get("Total"):  # ungrouped: Cost Explorer answers in Total only
                    groups = [{"Keys": [], "Metrics": result["Total"]}]
                for group in groups:
                    row = self._cost_row(day, dict(zip(dims, group["Keys"])), group["Metrics"],
                                         result.get("Estimated", False), "ce:GetCostAndUsage", ingested)
                    rows.append(row)
                    day_totals = totals.setdefault(day, {})
                    cur = row["billing_currency"]
                    day_totals[cur] = day_totals.get(cur, Decimal(0)) + row["billed_cost"]
                if not groups:
                    totals.setdefault(day, {})
        for row in rows:
            row["sub_account_name"] = names.get(row["sub_account_id"]) or None
        return rows, totals

    def _cost_row(self, day: date, keys: dict[str, str], metrics: dict, estimated: bool, source: str,
                  ingested: datetime) -> dict:
        unblended = metrics.get("UnblendedCost") or {}
        row = {
            "provider": "aws", "usage_date": day, "billing_account_id": None,
            "sub_account_id": None, "service_name": None, "region": None, "resource_id": None,
            "sku": None, "charge_category": None,
            "billed_cost": _money(unblended),
            "effective_cost": _money(metrics.get("AmortizedCost") or unblended),
            "billing_currency": unblended.get("Unit") or "USD",
            "usage_quantity": float(_money(metrics.get("UsageQuantity"))),
            "usage_unit": (metrics.get("UsageQuantity") or {}).get("Unit") or None,
            "is_estimated": bool(estimated), "source": source, "ingested_at": ingested,
        }
        for dim, value in keys.items():
            column = _CE_COLUMN.get(dim)
            if column:
                row[column] = value
        if row["resource_id"] in ("NoResourceId", ""):
            row["resource_id"] = None
        if row["charge_category"]:
            row["charge_category"] = _RECORD_TYPES.get(row["charge_category"], "Adjustment")
        elif row["service_name"] == "Tax":
            row["charge_category"] = "Tax"
        else:
            row["charge_category"] = "Usage"
        row["sub_account_id"] = row["sub_account_id"] or self.account_id()
        row["billing_account_id"] = row["billing_account_id"] or row["sub_account_id"]
        row["service_name"] = row["service_name"] or "All services"
        return row

    def _with_resources(self, start: date, end: date) -> list[dict]:
        """EC2 instance cost per resource and linked account (the only service Cost Explorer
        serves at resource level; its Filter must name it)."""
        rows = []
        ingested = utc_now()
        for page in self._pages(
            "GetCostAndUsageWithResources",
            TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
            Granularity="DAILY",
            Filter={"Dimensions": {"Key": "SERVICE", "Values": [EC2_COMPUTE]}},
            Metrics=["UnblendedCost", "AmortizedCost", "UsageQuantity"],
            GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "RESOURCE_ID"}],
        ):
            for result in page.get("ResultsByTime", []):
                day = date.fromisoformat(result["TimePeriod"]["Start"])
                for group in result.get("Groups", []):
                    keys = {"SERVICE": EC2_COMPUTE, "LINKED_ACCOUNT": group["Keys"][0],
                            "RESOURCE_ID": group["Keys"][1]}
                    rows.append(self._cost_row(day, keys, group["Metrics"], result.get("Estimated", False),
                                               "ce:GetCostAndUsageWithResources", ingested))
        return rows

    def _forecast(self) -> pa.Table:
        """Daily unblended-cost forecast from today to the end of next month."""
        start = self.today
        month_after = (start.replace(day=1) + timedelta(days=62)).replace(day=1)
        response = self._call(
            "ce", "GetCostForecast", cost=COST_EXPLORER_PER_REQUEST,
            TimePeriod={"Start": start.isoformat(), "End": month_after.isoformat()},
            Metric="UNBLENDED_COST", Granularity="DAILY", PredictionIntervalLevel=80,
        )
        currency = response.get("Total", {}).get("Unit", "USD")
        ingested = utc_now()
        rows = []
        for item in response.get("ForecastResultsByTime", []):
            period_start = date.fromisoformat(item["TimePeriod"]["Start"])
            rows.append({
                "provider": "aws", "usage_date": start, "sub_account_id": None, "service_name": None,
                "period_start": period_start, "period_end": date.fromisoformat(item["TimePeriod"]["End"]),
                "metric": "UNBLENDED_COST", "mean_cost": Decimal(item["MeanValue"]),
                "lower_bound": Decimal(item["PredictionIntervalLowerBound"]) if item.get("PredictionIntervalLowerBound") else None,
                "upper_bound": Decimal(item["PredictionIntervalUpperBound"]) if item.get("PredictionIntervalUpperBound") else None,
                "billing_currency": currency, "source": "ce:GetCostForecast", "ingested_at": ingested,
            })
        return _rows_table(rows, _FORECAST_TYPES)


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


_COST_TYPES = {
    "provider": pa.string(), "usage_date": pa.date32(), "billing_account_id": pa.string(),
    "sub_account_id": pa.string(), "sub_account_name": pa.string(), "service_name": pa.string(),
    "region": pa.string(), "resource_id": pa.string(), "sku": pa.string(), "charge_category": pa.string(),
    "billed_cost": pa.decimal128(38, 10), "effective_cost": pa.decimal128(38, 10),
    "billing_currency": pa.string(), "usage_quantity": pa.float64(), "usage_unit": pa.string(),
    "is_estimated": pa.bool_(), "source": pa.string(), "ingested_at": pa.timestamp("us", tz="UTC"),
}
_FORECAST_TYPES = {
    "provider": pa.string(), "usage_date": pa.date32(), "sub_account_id": pa.string(),
    "service_name": pa.string(), "period_start": pa.date32(), "period_end": pa.date32(),
    "metric": pa.string(), "mean_cost": pa.decimal128(38, 10), "lower_bound": pa.decimal128(38, 10),
    "upper_bound": pa.decimal128(38, 10), "billing_currency": pa.string(), "source": pa.string(),
    "ingested_at": pa.timestamp("us", tz="UTC"),
}


def _rows_table(rows: list[dict], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table({name: pa.array([r.get(name) for r in rows], type=t) for name, t in types.items()})


def _cost_table(rows: list[dict]) -> pa.Table:
    return _rows_table(rows, _COST_TYPES)


def _metric_table(series: list[_Query], points: dict, region: str, account: str,
                  start: datetime, end: datetime) -> pa.Table:
    """Join the avg/max/sum points on (series, hour) and attach each series' attributes."""
    utc = pa.timestamp("us", tz="UTC")
    key_cols = ["series", "hour_start"]
    table = None
    for column, (ids, stamps, values) in points.items():
        part = pa.table({"series": pa.array(ids, pa.int32()), "hour_start": pa.array(stamps, utc),
                         column: pa.array(values, pa.float64())})
        table = part if table is None else table.join(part, key_cols, join_type="full outer")
    in_window = pc.and_(pc.greater_equal(table["hour_start"], pa.scalar(start, utc)),
                        pc.less(table["hour_start"], pa.scalar(end, utc)))
    table = table.filter(in_window).sort_by([("series", "ascending"), ("hour_start", "ascending")])
    idx = table["series"]

    def attr(values: list, type_=pa.string()):
        return pc.take(pa.array(values, type_), idx)

    scale = attr([q.spec.scale for q in series], pa.float64())
    n = table.num_rows
    return pa.table({
        "provider": pa.array(["aws"] * n, pa.string()),
        "usage_date": pc.cast(table["hour_start"], pa.date32()),
        "hour_start": table["hour_start"],
        "resource_id": attr([q.resource.resource_id for q in series]),
        "resource_type": attr([q.resource.resource_type for q in series]),
        "region": pa.array([region] * n, pa.string()),
        "sub_account_id": attr([q.resource.sub_account_id or account for q in series]),
        "metric": attr([q.spec.canonical for q in series]),
        "native_metric": attr([q.spec.native for q in series]),
        "unit": attr([q.spec.unit for q in series]),
        "avg": pc.multiply(table["avg"], scale),
        "max": pc.multiply(table["max"], scale),
        "sum": pc.multiply(table["sum"], scale),
        "ingested_at": pa.array([utc_now()] * n, utc),
    })
