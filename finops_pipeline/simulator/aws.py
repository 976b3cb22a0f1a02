"""AWS doubles: moto's server for CloudWatch + STS, and a Cost Explorer double on the fleet.

CloudWatch is moto (a real implementation of the wire protocol), seeded with the fleet's
hourly datapoints for the window. Moto's Cost Explorer only replays canned responses in
call order, which cannot answer arbitrary windows, so Cost Explorer is served by
:class:`CostExplorerDouble`: a small HTTP server speaking the AWS JSON 1.1 protocol
(``X-Amz-Target: AWSInsightsIndexService.<Operation>``) that computes its answers from
``Fleet.cost_lines``. botocore still validates every request against the real service
model before it is sent.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from finops_pipeline.simulator.aws_export import DataExportDouble, periods_of
from finops_pipeline.simulator.fleet import (
    AWS_ACCOUNTS,
    AWS_PAYER,
    CostLine,
    Fleet,
    SimResource,
)

# The double's own CloudWatch catalog, written from the CloudWatch metric pages (never the
# adapter's tables): fleet type -> (namespace, identity dimension, metrics). Each metric is
# (name, the fleet's metric it carries, unit, reporting criterion):
#   "always"  - published every period the resource exists;
#   "nonzero" - "Reporting criteria: There is a nonzero value" (ALB page) / "DynamoDB only sends
#               metrics to CloudWatch when they have a non-zero value" / "Lambda only sends these
#               metrics to CloudWatch if they have a nonzero value";
#   "traffic" - classic ELB: "reports metrics to CloudWatch only when requests are flowing
#               through the load balancer" (no RequestCount in the hour -> no metric at all).
# Sources: docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/{ec2,rds,lam,dynamo,elb}-metricscollected.html,
# .../elasticloadbalancing/latest/classic/elb-cloudwatch-metrics.html,
# .../elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html,
# .../AmazonS3/latest/userguide/metrics-dimensions.html.
CLOUDWATCH: dict[str, tuple[str, str, list[tuple[str, str, str, str]]]] = {
    "ec2": (
        "AWS/EC2",
        "InstanceId",
        [
            ("CPUUtilization", "cpu_utilization_pct", "Percent", "always"),
            ("NetworkIn", "network_in_bytes", "Bytes", "always"),
            ("NetworkOut", "network_out_bytes", "Bytes", "always"),
            ("EBSReadBytes", "disk_read_bytes", "Bytes", "always"),
            ("EBSWriteBytes", "disk_write_bytes", "Bytes", "always"),
        ],
    ),
    "rds": (
        "AWS/RDS",
        "DBInstanceIdentifier",
        [
            ("CPUUtilization", "cpu_utilization_pct", "Percent", "always"),
            ("DatabaseConnections", "connections", "Count", "always"),
            ("ReadIOPS", "read_iops", "Count/Second", "always"),
            ("FreeableMemory", "memory_available_bytes", "Bytes", "always"),
        ],
    ),
    "lambda": (
        "AWS/Lambda",
        "FunctionName",
        [
            ("Invocations", "invocations", "Count", "nonzero"),
            ("Duration", "duration_ms", "Milliseconds", "nonzero"),
            ("Errors", "errors", "Count", "nonzero"),
        ],
    ),
    "dynamodb": (
        "AWS/DynamoDB",
        "TableName",
        [
            ("ConsumedReadCapacityUnits", "read_capacity_units", "Count", "nonzero"),
            ("ConsumedWriteCapacityUnits", "write_capacity_units", "Count", "nonzero"),
        ],
    ),
    "s3": (
        "AWS/S3",
        "BucketName",
        [  # daily; BucketSizeBytes per storage class (S3_CLASSES)
            ("BucketSizeBytes", "storage_bytes", "Bytes", "always"),
            ("NumberOfObjects", "object_count", "Count", "always"),
        ],
    ),
    "elb": (
        "AWS/ELB",
        "LoadBalancerName",
        [
            ("RequestCount", "requests", "Count", "traffic"),
            ("HealthyHostCount", "healthy_hosts", "Count", "traffic"),
        ],
    ),
    "alb": (
        "AWS/ApplicationELB",
        "LoadBalancer",
        [
            ("RequestCount", "requests", "Count", "nonzero"),
            ("ActiveConnectionCount", "connections", "Count", "nonzero"),
            ("ConsumedLCUs", "consumed_lcus", "Count", "always"),  # "Reporting criteria: Always reported"
        ],
    ),
}
# S3 publishes BucketSizeBytes once per storage class (dimension StorageType) and
# NumberOfObjects for AllStorageTypes; the fleet's bucket bytes are split over three classes.
S3_CLASSES = {"StandardStorage": 0.625, "StandardIAStorage": 0.25, "GlacierInstantRetrievalStorage": 0.125}
MEMBER_ROLE = "finops-metrics-read"  # the role the pipeline assumes in each member account
EXPORT_BUCKET = "finops-billing-exports"


_CE_KEYS = {
    "SERVICE": lambda line: line.service_name,
    "LINKED_ACCOUNT": lambda line: line.sub_account_id,
    "REGION": lambda line: line.region or "NoRegion",
    "RESOURCE_ID": lambda line: line.resource_id or "NoResourceId",
    "RECORD_TYPE": lambda line: line.charge_category,
    "USAGE_TYPE": lambda line: line.sku,
}
EC2_COMPUTE = "Amazon Elastic Compute Cloud - Compute"
ACCOUNT_NAMES = {"111111111111": "payer-shared", "222222222222": "shop-production"}


def _matches(expression: dict, line: CostLine) -> bool:
    """Cost Explorer's Expression: Dimensions, or And/Or/Not of expressions."""
    if "And" in expression:
        return all(_matches(e, line) for e in expression["And"])
    if "Or" in expression:
        return any(_matches(e, line) for e in expression["Or"])
    if "Not" in expression:
        return not _matches(expression["Not"], line)
    dims = expression.get("Dimensions")
    if not dims or dims["Key"] not in _CE_KEYS:
        raise CostExplorerError("ValidationException", f"the double does not filter on {expression}")
    return _CE_KEYS[dims["Key"]](line) in set(dims["Values"])


def _filter_values(expression: dict, key: str) -> set[str]:
    """Values a filter requires for a dimension (directly or inside an And)."""
    if expression.get("Dimensions", {}).get("Key") == key:
        return set(expression["Dimensions"]["Values"])
    return set().union(*(_filter_values(e, key) for e in expression.get("And", [])))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CostExplorerError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class CostExplorerDouble:
    """Cost Explorer on 127.0.0.1, answering from the fleet's ground-truth bill.

    ``page_days`` days of results per page (NextPageToken beyond), ``throttle_first``
    requests answered with LimitExceededException, ``deny_access`` answers every call with
    AccessDeniedException, ``today`` fixes the clock for the 14-day resource-level limit and
    the forecast. ``resource_level_opt_in=False`` plays an account that never enabled
    "Hourly and resource-level data"; ``forecast_history=False`` one whose history is too
    short to forecast. ``requests`` records (operation, body).
    """

    def __init__(
        self,
        fleet: Fleet,
        page_days: int = 7,
        throttle_first: int = 0,
        today: date | None = None,
        deny_access: bool = False,
        resource_level_opt_in: bool = True,
        forecast_history: bool = True,
    ):
        self.fleet = fleet
        self.page_days = page_days
        self.throttle_remaining = throttle_first
        self.deny_access = deny_access  # answer like an IAM policy without ce:* actions
        self.resource_level_opt_in = resource_level_opt_in
        self.forecast_history = forecast_history
        self.today = today or datetime.now(timezone.utc).date()
        self.requests: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- the operations ----------------------------------------------------------
    def handle(self, operation: str, body: dict) -> dict:
        with self._lock:
            self.requests.append((operation, body))
            if self.deny_access:
                raise CostExplorerError("AccessDeniedException", f"User is not authorized to perform: ce:{operation}")
            if self.throttle_remaining > 0:
                self.throttle_remaining -= 1
                raise CostExplorerError("LimitExceededException", "Rate exceeded")
        if operation == "GetCostAndUsage":
            return self._cost_and_usage(body, with_resources=False)
        if operation == "GetCostAndUsageWithResources":
            return self._cost_and_usage(body, with_resources=True)
        if operation == "GetCostForecast":
            return self._forecast(body)
        raise CostExplorerError("UnknownOperationException", f"{operation} is not served by the double")

    def _lines(self, day: date, flt: dict | None) -> list[CostLine]:
        return [line for line in self.fleet.cost_lines("aws", day) if not flt or _matches(flt, line)]

    def _cost_and_usage(self, body: dict, with_resources: bool) -> dict:
        start = date.fromisoformat(body["TimePeriod"]["Start"])
        end = date.fromisoformat(body["TimePeriod"]["End"])
        if end <= start:
            raise CostExplorerError("ValidationException", "Start date must be before end date")
        if body.get("Granularity") != "DAILY":
            raise CostExplorerError("ValidationException", "the double serves DAILY granularity")
        group_keys = [g["Key"] for g in body.get("GroupBy", [])]
        if len(group_keys) > 2:
            raise CostExplorerError("ValidationException", "GroupBy supports at most two dimensions")
        if with_resources:
            # API Reference, GetCostAndUsageWithResources: "Filter ... requires the expression
            # SERVICE = Amazon Elastic Compute Cloud - Compute"; the data is an opt-in
            # ("This is an opt-in only feature") covering the last 14 days.
            if EC2_COMPUTE not in _filter_values(body.get("Filter") or {}, "SERVICE"):
                raise CostExplorerError(
                    "ValidationException",
                    "Filter must include the expression SERVICE = Amazon Elastic Compute Cloud - Compute",
                )
            if not self.resource_level_opt_in:
                raise CostExplorerError(
                    "DataUnavailableException",
                    "Resource-level data is not available. Enable it in Cost Explorer preferences.",
                )
            if start < self.today - timedelta(days=14):
                raise CostExplorerError(
                    "ValidationException", "Resource-level data is only available for the last 14 days"
                )
        elif "RESOURCE_ID" in group_keys:
            raise CostExplorerError("ValidationException", "RESOURCE_ID grouping needs GetCostAndUsageWithResources")
        # "Cost Explorer provides AWS cost and usage data for the current month and up to the
        # previous 13 months at daily and monthly granularity" (Cost Management user guide,
        # ce-advanced-cost-analysis; multi-year data is monthly only). Which error an older start
        # gets is not documented: the double answers GetCostAndUsage's documented error for
        # expired data (API Reference, GetCostAndUsage, Errors: BillExpirationException).
        months = self.today.year * 12 + self.today.month - 1 - 13
        if start < date(months // 12, months % 12 + 1, 1):
            raise CostExplorerError(
                "BillExpirationException", "The requested report expired. Update the date interval and try again."
            )
        first = int(body.get("NextPageToken") or 0)
        all_days = [start + timedelta(days=i) for i in range((end - start).days)]
        page = all_days[first : first + self.page_days]
        results, accounts = [], set()
        for day in page:
            groups: dict[tuple, dict[str, Decimal]] = {}
            units: dict[tuple, set[tuple[str, str]]] = {}  # group -> its (usage type, unit) pairs
            for line in self._lines(day, body.get("Filter")):
                keys = tuple(_CE_KEYS[k](line) for k in group_keys)
                agg = groups.setdefault(
                    keys, {"UnblendedCost": Decimal(0), "AmortizedCost": Decimal(0), "UsageQuantity": Decimal(0)}
                )
                agg["UnblendedCost"] += line.billed_cost
                agg["AmortizedCost"] += line.effective_cost
                agg["UsageQuantity"] += Decimal(str(line.usage_quantity))
                units.setdefault(keys, set()).add((line.sku, line.usage_unit))
                accounts.add(line.sub_account_id)
            metrics = body.get("Metrics", [])
            result = {
                "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
                "Total": {},
                "Groups": [],
                "Estimated": day >= self.today - timedelta(days=2),
            }
            for keys, agg in sorted(groups.items()):
                amounts = {m: {"Amount": str(agg[m]), "Unit": "USD"} for m in metrics}
                if "UsageQuantity" in amounts:
                    # "the service aggregates all usage numbers without taking the units into account"
                    # (Cost Explorer API model, Metrics): a group of several usage types answers
                    # the unit-blind sum with Unit "N/A" (aws-cli examples/ce/get-cost-and-usage.rst).
                    kinds = units[keys]
                    amounts["UsageQuantity"]["Unit"] = next(iter(kinds))[1] if len(kinds) == 1 else "N/A"
                if group_keys:
                    result["Groups"].append({"Keys": list(keys), "Metrics": amounts})
                else:  # like Cost Explorer: an ungrouped query answers in Total, with no Groups
                    result["Total"] = amounts
            results.append(result)
        response: dict = {"ResultsByTime": results, "GroupDefinitions": body.get("GroupBy", [])}
        if "LINKED_ACCOUNT" in group_keys:
            response["DimensionValueAttributes"] = [
                {"Value": a, "Attributes": {"description": ACCOUNT_NAMES.get(a, a)}} for a in sorted(accounts)
            ]
        if first + self.page_days < len(all_days):
            response["NextPageToken"] = str(first + self.page_days)
        return response

    def _forecast(self, body: dict) -> dict:
        start = date.fromisoformat(body["TimePeriod"]["Start"])
        end = date.fromisoformat(body["TimePeriod"]["End"])
        if start < self.today:
            raise CostExplorerError("ValidationException", "Start date must be today or later")
        if not self.forecast_history:
            # API Reference, GetCostForecast errors: DataUnavailableException, "The requested
            # data is unavailable" (an account with too little cost history to forecast).
            raise CostExplorerError("DataUnavailableException", "The requested data is unavailable.")
        recent = [self.today - timedelta(days=i) for i in range(1, 8)]
        daily = sum((self.fleet.daily_total("aws", d).get("USD", Decimal(0)) for d in recent), Decimal(0)) / 7
        daily = daily.quantize(Decimal("0.0001"))
        items = []
        for i in range((end - start).days):
            d = start + timedelta(days=i)
            items.append(
                {
                    "TimePeriod": {"Start": d.isoformat(), "End": (d + timedelta(days=1)).isoformat()},
                    "MeanValue": str(daily),
                    "PredictionIntervalLowerBound": str((daily * Decimal("0.9")).quantize(Decimal("0.0001"))),
                    "PredictionIntervalUpperBound": str((daily * Decimal("1.1")).quantize(Decimal("0.0001"))),
                }
            )
        return {"Total": {"Amount": str(daily * len(items)), "Unit": "USD"}, "ForecastResultsByTime": items}

    # -- the server ----------------------------------------------------------------
    def start(self) -> str:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                operation = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
                try:
                    status, payload = 200, double.handle(operation, body)
                except CostExplorerError as exc:
                    status, payload = exc.status, {"__type": exc.code, "message": exc.message}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def _datapoint(name: str, dims: list[dict], values, h: int, unit: str, share: float = 1.0) -> dict:
    return {
        "MetricName": name,
        "Dimensions": dims,
        "Timestamp": values.hour_starts[h],
        "Unit": unit,
        "StatisticValues": {
            "SampleCount": float(values.sample_count[h]),
            "Sum": float(values.sum[h]) * share,
            "Minimum": float(values.min[h]) * share,
            "Maximum": float(values.max[h]) * share,
        },
    }


def cloudwatch_datapoints(fleet: Fleet, resource: SimResource, day: date) -> dict[str, list[dict]]:
    """The datapoints CloudWatch holds for one resource and UTC day, per namespace, published
    as the service does: metrics reported only on activity are absent in idle hours."""
    namespace, dimension, metrics = CLOUDWATCH[resource.resource_type]
    identity = [{"Name": dimension, "Value": resource.resource_id}]
    series = {fleet_metric: fleet.hourly(resource, fleet_metric, day) for _, fleet_metric, _, _ in metrics}
    traffic = series.get("requests")
    points = []
    for name, fleet_metric, unit, reported in metrics:
        values = series[fleet_metric]
        if resource.resource_type == "s3":
            if name == "BucketSizeBytes":
                for storage_type, share in S3_CLASSES.items():
                    dims = identity + [{"Name": "StorageType", "Value": storage_type}]
                    points.append(_datapoint(name, dims, values, 0, unit, share))
            else:
                dims = identity + [{"Name": "StorageType", "Value": "AllStorageTypes"}]
                points.append(_datapoint(name, dims, values, 0, unit))
            continue
        for h in range(24):
            if reported == "nonzero" and values.sum[h] == 0:
                continue
            if reported == "traffic" and traffic.sum[h] == 0:
                continue
            points.append(_datapoint(name, identity, values, h, unit))
    return {namespace: points}


def seed_cloudwatch(fleet: Fleet, start: date, end: date, client_for) -> int:
    """Put the fleet's datapoints for [start, end) into CloudWatch, each resource in its own
    account and region; ``client_for(service, account, region)`` gives a client. Returns datapoints."""
    count = 0
    for account in sorted({r.sub_account_id for r in fleet.of("aws")}):
        for region in sorted({r.region for r in fleet.of("aws")}):
            batch: dict[str, list] = {}
            for resource in fleet.of("aws"):
                if (resource.sub_account_id, resource.region) != (account, region):
                    continue
                day = start
                while day < end:
                    for namespace, points in cloudwatch_datapoints(fleet, resource, day).items():
                        batch.setdefault(namespace, []).extend(points)
                    day += timedelta(days=1)
            client = client_for("cloudwatch", account, region)
            for namespace, data in batch.items():
                count += len(data)
                for i in range(0, len(data), 1000):
                    client.put_metric_data(Namespace=namespace, MetricData=data[i : i + 1000])
    return count


def create_inventory(fleet: Fleet, client_for) -> None:
    """Create the fleet's classic load balancers, Lambda functions and DynamoDB tables in moto,
    in their own account and region, so inventory calls list them (idle ones included)."""
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    roles: dict[str, str] = {}
    for r in fleet.of("aws"):
        if r.resource_type == "elb":
            client_for("elb", r.sub_account_id, r.region).create_load_balancer(
                LoadBalancerName=r.resource_id,
                AvailabilityZones=[f"{r.region}a"],
                Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
            )
        elif r.resource_type == "dynamodb":
            client_for("dynamodb", r.sub_account_id, r.region).create_table(
                TableName=r.resource_id,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            )
        elif r.resource_type == "lambda":
            if r.sub_account_id not in roles:
                roles[r.sub_account_id] = client_for("iam", r.sub_account_id, "us-east-1").create_role(
                    RoleName="fn-execution",
                    AssumeRolePolicyDocument=json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "sts:AssumeRole",
                                    "Principal": {"Service": "lambda.amazonaws.com"},
                                }
                            ],
                        }
                    ),
                )["Role"]["Arn"]
            client_for("lambda", r.sub_account_id, r.region).create_function(
                FunctionName=r.resource_id,
                Runtime="python3.12",
                Role=roles[r.sub_account_id],
                Handler="index.handler",
                Code={"ZipFile": code.getvalue()},
            )


@contextmanager
def serve_aws(fleet: Fleet, start: date, end: date, **ce_options) -> Iterator[dict[str, str]]:
    """Start the AWS doubles for [start, end) and yield the environment that points boto3 at them."""
    import boto3
    from moto.server import ThreadedMotoServer

    # Port 0: the server binds a port the system picks (a port chosen first could be taken by
    # another test process before moto binds it, and moto would then wait forever).
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    # moto keeps its backends per process: start from empty so datapoints are never doubled.
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).close()
    ce = CostExplorerDouble(fleet, **ce_options)
    ce_url = ce.start()
    try:
        member_roles = [f"arn:aws:iam::{a}:role/{MEMBER_ROLE}" for a in AWS_ACCOUNTS if a != AWS_PAYER]
        # The pipeline's user lives in the payer account; moto maps its access key to that account
        # (and a role's session credentials to the role's account), like IAM does.
        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            endpoint_url=moto_url,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.meta.events.register(
            "before-send", lambda request, **_: request.headers.__setitem__("x-moto-account-id", AWS_PAYER)
        )
        iam.create_user(UserName="finops-pipeline")
        key = iam.create_access_key(UserName="finops-pipeline")["AccessKey"]
        sessions = {
            AWS_PAYER: boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        }
        sts = sessions[AWS_PAYER].client("sts", region_name="us-east-1", endpoint_url=moto_url)
        for role in member_roles:  # moto serves an assumed role's credentials as that account
            creds = sts.assume_role(RoleArn=role, RoleSessionName="simulator-seed")["Credentials"]
            sessions[role.split(":")[4]] = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )

        def client_for(service: str, account: str, region: str):
            return sessions[account].client(service, region_name=region, endpoint_url=moto_url)

        seed_cloudwatch(fleet, start, end, client_for)
        create_inventory(fleet, client_for)
        regions = sorted({r.region for r in fleet.of("aws")})
        # The fleet's bill as an AWS Data Export in the payer's bucket (AWS_COST_SOURCE=export reads it).
        export = DataExportDouble(fleet, client_for("s3", AWS_PAYER, "us-east-1"), EXPORT_BUCKET)
        export.s3.create_bucket(Bucket=EXPORT_BUCKET)
        # The export as it stands at the end of the simulated window (like the Azure double's):
        # days before min(end, today), none before start.
        as_of = min(end, ce.today)
        for period in periods_of(start, as_of):
            export.deliver(period, as_of, since=start)
        yield {
            "AWS_USAGE_ENABLED": "true",
            "AWS_REGION": regions[0],
            "AWS_USAGE_REGIONS": ",".join(regions),
            "AWS_ROLE_ARNS": ",".join(member_roles),
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_ENDPOINT_URL": moto_url,  # every AWS API moto plays (CloudWatch, STS, ELB, Lambda, ...)
            "AWS_ENDPOINT_URL_COST_EXPLORER": ce_url,
            "AWS_MAX_ATTEMPTS": "4",
            "AWS_EXPORT_URI": export.uri,  # the source stays Cost Explorer until AWS_COST_SOURCE=export
        }
    finally:
        ce.stop()
        urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).close()
        moto.stop()
