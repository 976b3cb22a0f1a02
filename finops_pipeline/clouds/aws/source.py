"""AWS adapter: CloudWatch metrics (GetMetricData, batched) and Cost Explorer billing.

Clients come from boto3's default credential chain (environment, profile, IAM role);
``AWS_ENDPOINT_URL_*`` variables (used by the simulator) redirect them. Throttling and
5xx and network errors are retried by botocore's adaptive retry mode; any error of a
call (network and missing credentials included) raises CloudApiError naming the IAM
action or the setting that fixes it.
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
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.utils import parse_timestamp

from finops_pipeline.clouds.aws.catalog import (
    CE_COLUMNS,
    CE_DIMENSIONS,
    CLOUDWATCH_PER_REQUEST,
    COST_EXPLORER_PER_REQUEST,
    COST_HISTORY_MONTHS,
    EC2_COMPUTE,
    GET_METRIC_DATA_PER_METRIC,
    IAM_ACTIONS,
    INVENTORY,
    MAX_QUERIES_PER_CALL,
    METRICS,
    NAMESPACES,
    RECORD_TYPES,
    RESOURCE_DATA_DAYS,
    S3_ALL_STORAGE_TYPES,
    Namespace,
)
from finops_pipeline.clouds.base import (
    ApiUsage,
    CloudApiError,
    CloudSource,
    CostFetch,
    MetricSpec,
    ResourceRef,
    money,
    utc_now,
)
from finops_pipeline.settings import Settings
from finops_pipeline.warehouse.schemas import COST_DAILY, COST_FORECAST

CE_PAGE_TOKENS = ("NextPageToken", "NextPageToken")  # Cost Explorer's page token


@dataclass(frozen=True)
class MetricsAccount:
    """An account whose CloudWatch metrics are read, and the role assumed to read them
    (None: the pipeline's own credentials)."""

    account_id: str
    role_arn: str | None = None


@dataclass(frozen=True)
class _Query:
    resource: ResourceRef
    dimensions: tuple[tuple[str, str], ...]
    spec: MetricSpec
    namespace: Namespace
    stat: str
    column: str  # avg | max | sum


_THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "LimitExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "ServiceUnavailable",
}
AWS_RETRY_HINT = "botocore's adaptive retries (AWS_MAX_ATTEMPTS)"


# The errors of an AWS call that the adapter explains (anything else is a bug of ours).
CALL_ERRORS = (ClientError, BotoConnectionError, HTTPClientError, NoCredentialsError)


def api_error(exc: Exception, operation: str) -> CloudApiError:
    """The CloudApiError for a failed AWS call (one of CALL_ERRORS): the reason, the fix, and
    whether a later run may succeed unchanged."""
    if isinstance(exc, NoCredentialsError):
        return CloudApiError(
            "aws",
            operation,
            "no credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or attach an IAM role",
        )
    if not isinstance(exc, ClientError):
        # A connection refused, a timeout or a dropped connection: the network or the endpoint may come back.
        where = exc.kwargs.get("endpoint_url") or exc.kwargs.get("proxy_url") or "the endpoint"
        reason = (
            f"could not reach {where} ({type(exc).__name__}): check network access, proxies and "
            f"AWS_ENDPOINT_URL_* (still failing after {AWS_RETRY_HINT}; the run can be retried)"
        )
        return CloudApiError("aws", operation, reason, retryable=True)
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", "")
    if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
        reason = f"{code}: the session credentials expired: refresh them (aws sso login, or new STS credentials)"
    elif code in ("InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"):
        reason = (
            f"{code}: the access key is not valid for this account/partition: check "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    elif code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        reason = (
            f"access denied ({code}). Grant the IAM action {IAM_ACTIONS[operation]} to the "
            f"pipeline's role or user (see docs/operations.md for the least-privilege policy)."
        )
    elif code == "DataUnavailableException" or "not enabled" in message.lower() or "opt" in code.lower():
        if operation == "GetCostAndUsageWithResources":
            reason = (
                f"{code}: resource-level data is not enabled. Enable 'Hourly and resource-level "
                "data' in Billing -> Cost Management preferences, or set AWS_COST_WITH_RESOURCES=false."
            )
        elif operation == "GetCostForecast":
            reason = (
                f"{code}: Cost Explorer has too little cost history to forecast this account yet "
                "(or set AWS_COST_FORECAST=false)."
            )
        else:
            reason = (
                f"{code}: Cost Explorer is not enabled for this account. Enable it in the "
                "Billing console (it takes up to 24 hours) and run again."
            )
    elif code == "BillExpirationException":
        reason = (
            f"{code}: Cost Explorer no longer serves these days (it keeps this month and the 13 before it); "
            "backfill later days, or land older ones from the AWS Data Export (AWS_COST_SOURCE=export)."
        )
    else:
        reason = f"{code}: {message}"
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    transient = code in _THROTTLING_CODES or status >= 500
    if transient:
        reason += f" (still failing after {AWS_RETRY_HINT}; the run can be retried)"
    return CloudApiError("aws", operation, reason, retryable=transient)


def cost_history_start(today: date) -> date:
    """The first day Cost Explorer still serves daily cost for: the first of the month
    COST_HISTORY_MONTHS months before ``today``'s."""
    months = today.year * 12 + today.month - 1 - COST_HISTORY_MONTHS
    return date(months // 12, months % 12 + 1, 1)


def _money(metric: dict | None) -> Decimal:
    return money(metric["Amount"]) if metric and metric.get("Amount") not in (None, "") else Decimal(0)


def utc_timestamp(value) -> datetime:
    """Response timestamps as UTC datetimes. botocore's default parser converts every one to
    the local zone through dateutil: half the CPU of a GetMetricData day for 10,000 resources.
    Epoch numbers (the JSON protocols) convert directly; other forms go through botocore."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc)
    return parse_timestamp(value).astimezone(timezone.utc)


def aws_maxima(settings: Settings) -> set[tuple[str, str]]:
    """(resource type, metric) of AWS gauges whose hourly maximum a rule in use reads."""
    from finops_pipeline.defs.rules import maxima_read_by_rules  # the rules file is the marts' concern

    return {(rtype, metric) for provider, rtype, metric in maxima_read_by_rules(settings) if provider == "aws"}


class AwsSource(CloudSource):
    """CloudWatch + Cost Explorer for one set of credentials and the configured regions."""

    provider = "aws"
    METRICS = METRICS

    def __init__(
        self,
        settings: Settings,
        client_factory: Callable[[str, str], object] | None = None,
        today: date | None = None,
        maxima: set[tuple[str, str]] | None = None,
    ):
        self.settings = settings
        # (resource type, metric) of the gauges whose hourly Maximum is asked besides the
        # Average: GetMetricData bills each as one more metric, so only those a rule needs.
        self.maxima = maxima if maxima is not None else aws_maxima(settings)
        self.api = ApiUsage()
        self._client_factory = client_factory or self._default_client
        self._clients: dict[tuple, object] = {}
        self._today = today
        self._caller: dict | None = None
        self._accounts: list[MetricsAccount] | None = None
        self._role_credentials: dict[str, RefreshableCredentials] = {}
        self._sessions: dict[object, boto3.session.Session] = {}
        self._discovered: dict[tuple[str, str], list[ResourceRef]] = {}
        self._s3_types: dict[tuple[str, str, str], list[str]] = {}  # (account, region, bucket) -> classes
        self._known: set[ResourceRef] = set()  # discovered: their counters' empty hours are 0
        self._lazy_lock = threading.RLock()  # identity, accounts and discovery happen once per adapter

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsSource:
        return cls(settings)

    def _default_client(self, service: str, region: str, credentials=None):
        config = Config(
            # total_max_attempts counts the first call, as AWS_MAX_ATTEMPTS does (max_attempts counts only retries).
            retries={"total_max_attempts": self.settings.aws_max_attempts, "mode": "adaptive"},
            user_agent_extra="finops-pipeline",
        )
        return self._session(credentials).client(service, region_name=region, config=config)

    def _session(self, credentials=None) -> boto3.session.Session:
        """One boto3 session per set of credentials: each session loads the service models and
        endpoint data once (a session per client cost 70 MiB for nine clients)."""
        with self._lazy_lock:
            if credentials not in self._sessions:
                core = botocore.session.get_session()
                core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=utc_timestamp)
                if credentials is not None:
                    core._credentials = credentials  # botocore has no public setter for refreshable credentials
                self._sessions[credentials] = boto3.session.Session(botocore_session=core)
            return self._sessions[credentials]

    def client(self, service: str, region: str | None = None, account: MetricsAccount | None = None):
        # Cost Explorer, STS and Organizations are global; they answer in us-east-1.
        region = region or ("us-east-1" if service in ("ce", "organizations") else self.settings.aws_region)
        role = account.role_arn if account else None
        key = (service, region, role)
        with self._lazy_lock:
            if key not in self._clients:
                self._clients[key] = (
                    self._client_factory(service, region)
                    if role is None
                    else self._default_client(service, region, self._assumed(role))
                )
            return self._clients[key]

    def _assumed(self, role_arn: str) -> RefreshableCredentials:
        """Credentials of a member account's role (one AssumeRole per run, shared by its
        clients), renewed before they expire (long backfills)."""
        with self._lazy_lock:
            if role_arn not in self._role_credentials:
                self._role_credentials[role_arn] = self._assume(role_arn)
            return self._role_credentials[role_arn]

    def _assume(self, role_arn: str) -> RefreshableCredentials:
        def refresh() -> dict:
            creds = self._call("sts", "AssumeRole", RoleArn=role_arn, RoleSessionName="finops-pipeline")["Credentials"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        return RefreshableCredentials.create_from_metadata(refresh(), refresh, "assume-role")

    def _call(
        self,
        service: str,
        operation: str,
        region: str | None = None,
        cost: Decimal = Decimal(0),
        account: MetricsAccount | None = None,
        **kwargs,
    ):
        method = getattr(self.client(service, region, account), _snake(operation))
        try:
            response = method(**kwargs)
        except CALL_ERRORS as exc:
            error = api_error(exc, operation)
            if account is not None and account.role_arn:
                error = CloudApiError(
                    "aws",
                    operation,
                    f"in account {account.account_id}: " + str(error).split(": ", 1)[1],
                    retryable=error.retryable,
                )
            raise error from None
        self.api.record(operation, cost)
        return response

    @property
    def today(self) -> date:
        return self._today or utc_now().date()

    def account_id(self) -> str:
        """The account the credentials belong to (labels metrics rows)."""
        with self._lazy_lock:
            if self._caller is None:
                self._caller = self._call("sts", "GetCallerIdentity")
        return self._caller["Account"]

    def metric_accounts(self) -> list[MetricsAccount]:
        """Where CloudWatch metrics are read: the pipeline's own account, each role of
        AWS_ROLE_ARNS, and with AWS_ORG_ROLE_NAME every ACTIVE account of the organization."""
        with self._lazy_lock:
            if self._accounts is None:
                own = self.account_id()
                accounts = {own: MetricsAccount(own)}
                for arn in self.settings.aws_role_arns:
                    accounts.setdefault(arn.split(":")[4], MetricsAccount(arn.split(":")[4], arn))
                if self.settings.aws_org_role_name:
                    partition = self._caller.get("Arn", "arn:aws").split(":")[1]
                    for member in self._organization_accounts():
                        accounts.setdefault(
                            member,
                            MetricsAccount(
                                member, f"arn:{partition}:iam::{member}:role/{self.settings.aws_org_role_name}"
                            ),
                        )
                self._accounts = list(accounts.values())
        return self._accounts

    def _organization_accounts(self) -> list[str]:
        # State replaces the Status field being retired (Organizations API reference, Account).
        return [
            a["Id"]
            for page in self._pages("organizations", "ListAccounts")
            for a in page.get("Accounts", [])
            if (a.get("State") or a.get("Status")) == "ACTIVE"
        ]

    # -- metrics -------------------------------------------------------------------
    def discover(
        self, region: str, resource_types: list[str] | None = None, account: MetricsAccount | None = None
    ) -> list[ResourceRef]:
        """Resources of one account and region: those with metrics (ListMetrics per namespace,
        every page) plus, for types that publish only on activity, the inventory's."""
        account = account or MetricsAccount(self.account_id())
        found: dict[tuple, ResourceRef] = {}
        for rtype in resource_types or list(NAMESPACES):
            ns = NAMESPACES[rtype]
            wanted = {s.native for s in METRICS[rtype]}
            for page in self._pages(
                "cloudwatch", "ListMetrics", region, CLOUDWATCH_PER_REQUEST, account, Namespace=ns.namespace
            ):
                for metric in page.get("Metrics", []):
                    dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                    if metric["MetricName"] not in wanted or set(dims) != set(ns.dimensions):
                        continue
                    rid = dims[ns.dimensions[0]]
                    found.setdefault((rtype, rid), ResourceRef(rid, rtype, region, account.account_id))
                    if rtype == "s3" and metric["MetricName"] == "BucketSizeBytes":
                        classes = self._s3_types.setdefault((account.account_id, region, rid), [])
                        if dims["StorageType"] not in classes:
                            classes.append(dims["StorageType"])
            if rtype in INVENTORY:
                for rid in self._inventory(rtype, region, account):
                    found.setdefault((rtype, rid), ResourceRef(rid, rtype, region, account.account_id))
        with self._lazy_lock:
            self._known.update(found.values())
        return list(found.values())

    def _inventory(self, rtype: str, region: str, account: MetricsAccount) -> list[str]:
        """Names of a type's resources from its service's list call (optional: when it fails,
        discovery keeps what ListMetrics found and the run's metadata says so)."""
        service, operation, list_key, name_key, request_token, response_token = INVENTORY[rtype]
        names: list[str] = []
        try:
            for page in self._pages(service, operation, region, Decimal(0), account, (request_token, response_token)):
                names += [item[name_key] if name_key else item for item in page.get(list_key, [])]
            return names
        except CloudApiError as exc:
            self.api.skip(
                f"{operation} {account.account_id}/{region}",
                f"{exc}; idle {rtype} resources there are not listed (no metrics without activity)",
            )
            return names

    def _storage_types(self, ref: ResourceRef, account: MetricsAccount) -> list[str]:
        """The storage classes a bucket has BucketSizeBytes for (from discovery, else ListMetrics)."""
        key = (account.account_id, ref.region or self.settings.aws_region, ref.resource_id)
        with self._lazy_lock:
            if key not in self._s3_types:
                page = self._call(
                    "cloudwatch",
                    "ListMetrics",
                    key[1],
                    CLOUDWATCH_PER_REQUEST,
                    account,
                    Namespace="AWS/S3",
                    MetricName="BucketSizeBytes",
                    Dimensions=[{"Name": "BucketName", "Value": ref.resource_id}],
                )
                self._s3_types[key] = sorted(
                    {
                        d["Value"]
                        for m in page.get("Metrics", [])
                        for d in m.get("Dimensions", [])
                        if d["Name"] == "StorageType"
                    }
                )
            return self._s3_types[key]

    def _queries(self, refs: list[ResourceRef], metrics: list[str] | None, account: MetricsAccount) -> list[_Query]:
        queries = []
        for ref in refs:
            if ref.resource_type not in NAMESPACES:
                raise ValueError(f"unknown AWS resource type {ref.resource_type!r}; use one of {', '.join(NAMESPACES)}")
            ns = NAMESPACES[ref.resource_type]
            for spec in METRICS[ref.resource_type]:
                if metrics and spec.canonical not in metrics and spec.native not in metrics:
                    continue
                identity = (ns.dimensions[0], ref.resource_id)
                if ref.resource_type != "s3":
                    variants = [(identity,)]
                elif spec.native == "BucketSizeBytes":
                    variants = [(identity, ("StorageType", t)) for t in self._storage_types(ref, account)]
                else:
                    variants = [(identity, ("StorageType", S3_ALL_STORAGE_TYPES))]
                if spec.kind == "counter":
                    stats = [("Sum", "sum")]
                elif (ref.resource_type, spec.canonical) in self.maxima:
                    stats = [("Average", "avg"), ("Maximum", "max")]
                else:
                    stats = [("Average", "avg")]
                for dims in variants:
                    for stat, column in stats:
                        queries.append(_Query(ref, dims, spec, ns, stat, column))
        return queries

    def iter_metric_frames(
        self,
        start: datetime,
        end: datetime,
        resources: list[ResourceRef] | None = None,
        metrics: list[str] | None = None,
    ) -> Iterator[pa.Table]:
        """Hourly metrics for [start, end): one Arrow table per GetMetricData call (<= 500 queries),
        for every account of :meth:`metric_accounts` and every configured region."""
        accounts = {a.account_id: a for a in self.metric_accounts()}
        by_scope: dict[tuple[str, str], list[ResourceRef]] = defaultdict(list)
        if resources is None:
            # One discovery per account and region per adapter (a run): a 30-day backfill lists once.
            with self._lazy_lock:
                for account in accounts.values():
                    for region in self.settings.aws_usage_regions:
                        if (account.account_id, region) not in self._discovered:
                            self._discovered[(account.account_id, region)] = self.discover(region, account=account)
                        by_scope[(account.account_id, region)] = self._discovered[(account.account_id, region)]
        else:
            for ref in resources:
                if ref.sub_account_id and ref.sub_account_id not in accounts:
                    raise ValueError(
                        f"AWS resource {ref.resource_id} is in account {ref.sub_account_id}, which is "
                        "not read: add its role to AWS_ROLE_ARNS (or set AWS_ORG_ROLE_NAME)"
                    )
                # A resource of unknown account is looked for in every account read.
                for account_id in [ref.sub_account_id] if ref.sub_account_id else accounts:
                    by_scope[(account_id, ref.region or self.settings.aws_region)].append(ref)
        for (account_id, region), refs in by_scope.items():
            queries = self._queries(refs, metrics, accounts[account_id])
            for i in range(0, len(queries), MAX_QUERIES_PER_CALL):
                batch = queries[i : i + MAX_QUERIES_PER_CALL]
                yield self._fetch_batch(region, accounts[account_id], batch, start, end)

    def _fetch_batch(
        self, region: str, account: MetricsAccount, batch: list[_Query], start: datetime, end: datetime
    ) -> pa.Table:
        """One GetMetricData call (all its NextToken pages) as metrics_hourly rows, built column-wise."""
        request = [
            {
                "Id": f"q{n}",
                "ReturnData": True,
                "MetricStat": {
                    "Metric": {
                        "Namespace": q.namespace.namespace,
                        "MetricName": q.spec.native,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in q.dimensions],
                    },
                    "Period": q.namespace.period,
                    "Stat": q.stat,
                },
            }
            for n, q in enumerate(batch)
        ]
        # A series is one (resource, metric): a gauge's avg and max queries and an S3 bucket's
        # storage classes all land in it.
        series_of: dict[tuple, int] = {}
        series: list[_Query] = []
        for q in batch:
            key = (q.resource.resource_type, q.resource.resource_id, q.spec.native)
            if key not in series_of:
                series_of[key] = len(series)
                series.append(q)
        points: dict[str, tuple[list, list, list]] = {"avg": ([], [], []), "max": ([], [], []), "sum": ([], [], [])}
        for page in self._pages(
            "cloudwatch",
            "GetMetricData",
            region,
            GET_METRIC_DATA_PER_METRIC * len(request),
            account,
            MetricDataQueries=request,
            StartTime=start,
            EndTime=end,
            ScanBy="TimestampAscending",
        ):
            for result in page.get("MetricDataResults", []):
                q = batch[int(result["Id"][1:])]
                timestamps = result.get("Timestamps", [])
                ids, stamps, values = points[q.column]
                ids.extend(
                    [series_of[(q.resource.resource_type, q.resource.resource_id, q.spec.native)]] * len(timestamps)
                )
                stamps.extend(timestamps)
                values.extend(result.get("Values", []))
        # A (series, stat) asked more than once (an S3 bucket's storage classes): its points add up.
        summed = len({(q.resource.resource_type, q.resource.resource_id, q.spec.native, q.stat) for q in batch}) < len(
            batch
        )
        # Discovered resources are known to exist; a caller's are once they have a datapoint.
        seen = {series[i].resource for ids, _, _ in points.values() for i in set(ids)}
        existing = {i for i, q in enumerate(series) if q.resource in seen or q.resource in self._known}
        return _metric_table(series, points, region, account.account_id, start, end, summed, existing)

    # -- cost ----------------------------------------------------------------------
    def fetch_cost(self, start: date, end: date, group_by: tuple[str, ...] | None = None) -> CostFetch:
        """Daily cost for [start, end); resource-level rows where Cost Explorer has them."""
        if group_by is not None:
            unknown = [g for g in group_by if g.lower() not in CE_DIMENSIONS]
            if unknown or len(group_by) > 2:
                raise ValueError(f"group_by {group_by!r}: use at most two of {sorted(CE_DIMENSIONS)}")
            if any(g.lower() == "resource" for g in group_by):
                raise ValueError(
                    "group_by 'resource' on AWS: Cost Explorer has resource-level cost only for "
                    "the last 14 days, per account; use group_by=None (the warehouse grain)"
                )
            dims = tuple(dict.fromkeys(CE_DIMENSIONS[g.lower()] for g in group_by))
        else:
            dims = self.settings.aws_cost_group_by
        first = cost_history_start(self.today)
        if start < first:  # refused before any paid call; what the lake holds for those days stays
            raise CloudApiError(
                "aws",
                "GetCostAndUsage",
                f"Cost Explorer serves daily cost only from {first} (this month and the {COST_HISTORY_MONTHS} "
                f"before it); the range starts {start}. Backfill from {first}, or land older days from "
                "the AWS Data Export (AWS_COST_SOURCE=export, docs/operations.md).",
            )
        rows, totals = self._cost_and_usage(start, end, dims)
        resource_start = max(start, self.today - timedelta(days=RESOURCE_DATA_DAYS - 1))
        if (
            group_by is None
            and self.settings.aws_cost_with_resources
            and resource_start < end
            and "LINKED_ACCOUNT" in dims
            and "SERVICE" in dims
        ):
            try:
                detailed = self._with_resources(resource_start, end)
            except CloudApiError as exc:  # optional: the service-level rows still land
                self.api.skip("GetCostAndUsageWithResources", str(exc))
                detailed = []
            # Resource-level data exists for EC2 instances only: it replaces the EC2 - Compute
            # row of each (day, account) it covers; every other service keeps its row.
            covered = {(r["usage_date"], r["sub_account_id"]) for r in detailed}
            rows = [
                r
                for r in rows
                if r["service_name"] != EC2_COMPUTE or (r["usage_date"], r["sub_account_id"]) not in covered
            ] + detailed
        forecast = self.fetch_forecast() if group_by is None and end >= self.today - timedelta(days=1) else None
        all_days = [start + timedelta(days=i) for i in range((end - start).days)]
        return CostFetch(cost=_cost_table(rows), days=all_days, provider_totals=totals, forecast=forecast)

    def fetch_forecast(self) -> pa.Table | None:
        """The Cost Explorer forecast (AWS_COST_FORECAST), optional: a failure is skipped."""
        if not self.settings.aws_cost_forecast:
            return None
        try:
            return self._forecast()
        except CloudApiError as exc:
            self.api.skip("GetCostForecast", str(exc))
            return None

    def daily_totals(self, start: date, end: date) -> dict[date, dict[str, Decimal]]:
        """Unblended cost per day and currency: one ungrouped GetCostAndUsage (DAILY, no GroupBy)."""
        return self._cost_and_usage(start, end, ())[1]

    def export_reader(self):
        """The AWS Data Export at AWS_EXPORT_URI, read with this adapter's S3 client."""
        from finops_pipeline.clouds.aws.export import AwsExportReader

        return AwsExportReader(self)

    def _pages(
        self,
        service: str,
        operation: str,
        region: str | None = None,
        cost: Decimal = Decimal(0),
        account: MetricsAccount | None = None,
        tokens: tuple[str, str] = ("NextToken", "NextToken"),
        **kwargs,
    ) -> Iterator[dict]:
        """Every page of a call: ``tokens`` names the request's and the response's page token
        (NextToken, NextPageToken, Marker/NextMarker, ExclusiveStartTableName/LastEvaluatedTableName)."""
        request_token, response_token = tokens
        while True:
            page = self._call(service, operation, region, cost, account, **kwargs)
            yield page
            token = page.get(response_token)
            if not token:
                return
            kwargs[request_token] = token

    def _cost_and_usage(self, start: date, end: date, dims: tuple[str, ...]):
        rows, totals = [], {}
        names: dict[str, str] = {}
        ingested = utc_now()
        for page in self._pages(
            "ce",
            "GetCostAndUsage",
            cost=COST_EXPLORER_PER_REQUEST,
            tokens=CE_PAGE_TOKENS,
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
                    row = self._cost_row(
                        day,
                        dict(zip(dims, group["Keys"])),
                        group["Metrics"],
                        result.get("Estimated", False),
                        "ce:GetCostAndUsage",
                        ingested,
                    )
                    rows.append(row)
                    day_totals = totals.setdefault(day, {})
                    cur = row["billing_currency"]
                    day_totals[cur] = day_totals.get(cur, Decimal(0)) + row["billed_cost"]
                if not groups:
                    totals.setdefault(day, {})
        for row in rows:
            row["sub_account_name"] = names.get(row["sub_account_id"]) or None
        return rows, totals

    def _cost_row(
        self, day: date, keys: dict[str, str], metrics: dict, estimated: bool, source: str, ingested: datetime
    ) -> dict:
        unblended = metrics.get("UnblendedCost") or {}
        usage = metrics.get("UsageQuantity") or {}
        # Cost Explorer sums UsageQuantity "without taking the units into account"; a group of
        # several units answers "N/A", and that sum means nothing: neither is stored.
        unit = usage.get("Unit") or None
        quantity = None if unit == "N/A" else float(_money(usage))
        row = {
            "provider": "aws",
            "usage_date": day,
            "billing_account_id": None,
            "sub_account_id": None,
            "service_name": None,
            "region": None,
            "resource_id": None,
            "sku": None,
            "charge_category": None,
            "billed_cost": _money(unblended),
            "effective_cost": _money(metrics.get("AmortizedCost") or unblended),
            "billing_currency": unblended.get("Unit") or "USD",
            "usage_quantity": quantity,
            "usage_unit": None if unit == "N/A" else unit,
            "is_estimated": bool(estimated),
            "source": source,
            "ingested_at": ingested,
        }
        for dim, value in keys.items():
            column = CE_COLUMNS.get(dim)
            if column:
                row[column] = value
        if row["resource_id"] in ("NoResourceId", ""):
            row["resource_id"] = None
        if row["charge_category"]:
            row["charge_category"] = RECORD_TYPES.get(row["charge_category"], "Adjustment")
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
            "ce",
            "GetCostAndUsageWithResources",
            cost=COST_EXPLORER_PER_REQUEST,
            tokens=CE_PAGE_TOKENS,
            TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
            Granularity="DAILY",
            Filter={"Dimensions": {"Key": "SERVICE", "Values": [EC2_COMPUTE]}},
            Metrics=["UnblendedCost", "AmortizedCost", "UsageQuantity"],
            GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "RESOURCE_ID"}],
        ):
            for result in page.get("ResultsByTime", []):
                day = date.fromisoformat(result["TimePeriod"]["Start"])
                for group in result.get("Groups", []):
                    keys = {"SERVICE": EC2_COMPUTE, "LINKED_ACCOUNT": group["Keys"][0], "RESOURCE_ID": group["Keys"][1]}
                    rows.append(
                        self._cost_row(
                            day,
                            keys,
                            group["Metrics"],
                            result.get("Estimated", False),
                            "ce:GetCostAndUsageWithResources",
                            ingested,
                        )
                    )
        return rows

    def _forecast(self) -> pa.Table:
        """Daily unblended-cost forecast from today to the end of next month."""
        start = self.today
        month_after = (start.replace(day=1) + timedelta(days=62)).replace(day=1)
        response = self._call(
            "ce",
            "GetCostForecast",
            cost=COST_EXPLORER_PER_REQUEST,
            TimePeriod={"Start": start.isoformat(), "End": month_after.isoformat()},
            Metric="UNBLENDED_COST",
            Granularity="DAILY",
            PredictionIntervalLevel=80,
        )
        currency = response.get("Total", {}).get("Unit", "USD")
        ingested = utc_now()
        rows = []
        for item in response.get("ForecastResultsByTime", []):
            period_start = date.fromisoformat(item["TimePeriod"]["Start"])
            rows.append(
                {
                    "provider": "aws",
                    "usage_date": start,
                    "sub_account_id": None,
                    "service_name": None,
                    "period_start": period_start,
                    "period_end": date.fromisoformat(item["TimePeriod"]["End"]),
                    "metric": "UNBLENDED_COST",
                    "mean_cost": money(item["MeanValue"]),
                    "lower_bound": money(item["PredictionIntervalLowerBound"])
                    if item.get("PredictionIntervalLowerBound")
                    else None,
                    "upper_bound": money(item["PredictionIntervalUpperBound"])
                    if item.get("PredictionIntervalUpperBound")
                    else None,
                    "billing_currency": currency,
                    "source": "ce:GetCostForecast",
                    "ingested_at": ingested,
                }
            )
        return _rows_table(rows, _FORECAST_SCHEMA)


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


_COST_SCHEMA = COST_DAILY.columns_schema(
    [
        "provider",
        "usage_date",
        "billing_account_id",
        "sub_account_id",
        "sub_account_name",
        "service_name",
        "region",
        "resource_id",
        "sku",
        "charge_category",
        "billed_cost",
        "effective_cost",
        "billing_currency",
        "usage_quantity",
        "usage_unit",
        "is_estimated",
        "source",
        "ingested_at",
    ]
)
_FORECAST_SCHEMA = COST_FORECAST.columns_schema(
    [
        "provider",
        "usage_date",
        "sub_account_id",
        "service_name",
        "period_start",
        "period_end",
        "metric",
        "mean_cost",
        "lower_bound",
        "upper_bound",
        "billing_currency",
        "source",
        "ingested_at",
    ]
)


def _rows_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema})


def _cost_table(rows: list[dict]) -> pa.Table:
    return _rows_table(rows, _COST_SCHEMA)


def _metric_table(
    series: list[_Query],
    points: dict,
    region: str,
    account: str,
    start: datetime,
    end: datetime,
    summed: bool = False,
    existing: set[int] | None = None,
) -> pa.Table:
    """Join the avg/max/sum points on (series, hour) and attach each series' attributes.

    ``summed``: some series came as several queries (an S3 bucket's storage classes), so points
    of one (series, hour) are added up. Counter hours without a datapoint are 0: CloudWatch
    publishes many counters only when they are nonzero. ``existing``: the series whose resource
    is known to exist (None: all of them); only those are filled.
    """
    utc = pa.timestamp("us", tz="UTC")
    key_cols = ["series", "hour_start"]
    table = None
    for column, (ids, stamps, values) in points.items():
        part = pa.table(
            {
                "series": pa.array(ids, pa.int32()),
                "hour_start": pa.array(stamps, utc),
                column: pa.array(values, pa.float64()),
            }
        )
        if summed:
            grouped = part.group_by(key_cols).aggregate([(column, "sum")])
            part = pa.table(
                {"series": grouped["series"], "hour_start": grouped["hour_start"], column: grouped[f"{column}_sum"]}
            )
        if column == "sum":
            part = _zero_filled(
                part,
                [i for i, q in enumerate(series) if q.spec.kind == "counter" and (existing is None or i in existing)],
                series,
                start,
                end,
            )
        table = part if table is None else table.join(part, key_cols, join_type="full outer")
    in_window = pc.and_(
        pc.greater_equal(table["hour_start"], pa.scalar(start, utc)), pc.less(table["hour_start"], pa.scalar(end, utc))
    )
    table = table.filter(in_window).sort_by([("series", "ascending"), ("hour_start", "ascending")])
    idx = table["series"]

    def attr(values: list, type_=pa.string()):
        return pc.take(pa.array(values, type_), idx)

    scale = attr([q.spec.scale for q in series], pa.float64())
    n = table.num_rows
    return pa.table(
        {
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
        }
    )


def _zero_filled(part: pa.Table, counters: list[int], series: list[_Query], start: datetime, end: datetime) -> pa.Table:
    """Counter points, with a 0 for every period of [start, end) a counter series has no point in."""
    if not counters:
        return part
    utc = pa.timestamp("us", tz="UTC")
    grids = []
    for period in {series[i].namespace.period for i in counters}:
        ids = np.array([i for i in counters if series[i].namespace.period == period], np.int32)
        stamps = np.arange(int(start.timestamp()), int(end.timestamp()), period, dtype=np.int64) * 1_000_000
        grids.append(
            pa.table(
                {"series": np.repeat(ids, len(stamps)), "hour_start": pa.array(np.tile(stamps, len(ids))).cast(utc)}
            )
        )
    present = pa.concat_tables(grids).join(part, ["series", "hour_start"], join_type="left outer")
    filled = present.set_column(present.schema.get_field_index("sum"), "sum", pc.fill_null(present["sum"], 0.0))
    others = part.filter(pc.invert(pc.is_in(part["series"], pa.array(counters, pa.int32()))))
    return pa.concat_tables([filled.select(["series", "hour_start", "sum"]), others])
