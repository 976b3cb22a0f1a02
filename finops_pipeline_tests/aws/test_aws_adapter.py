"""The AWS adapter against protocol doubles: moto, botocore's Stubber, the Cost Explorer double."""

import csv
import os
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pytest
import requests
from botocore.stub import Stubber
from moto import mock_aws

from finops_pipeline.clouds.aws.source import AwsSource, utc_timestamp
from finops_pipeline.clouds.base import CloudApiError, ResourceRef
from finops_pipeline.defs.partitions import day_start
from finops_pipeline.settings import get_settings
from finops_pipeline.simulator.aws import CostExplorerDouble, free_port, serve_aws
from finops_pipeline.warehouse.catalog import SQL_DIR

TODAY = datetime.now(timezone.utc).date()
DAY = TODAY - timedelta(days=2)


@pytest.fixture
def aws_served(fleet):
    """The AWS doubles serving DAY, fresh for each test (some add to moto's state)."""
    with serve_aws(fleet, DAY, DAY + timedelta(days=1)) as env:
        yield env


# What each AWS resource type must land as, written from CloudWatch's metric pages (not from
# the adapter's tables): canonical metric -> (the fleet metric it carries, kind, when it exists).
# "all": every hour; "day": one daily datapoint (S3); another metric's name: only in the hours
# that metric is nonzero (CloudWatch publishes it only on activity). Counters exist every hour:
# an hour CloudWatch has no datapoint for is a 0 for a resource we know exists.
EXPECTED_METRICS = {
    "ec2": {
        "cpu_utilization_pct": ("cpu_utilization_pct", "gauge", "all"),
        "network_in_bytes": ("network_in_bytes", "counter", "all"),
        "network_out_bytes": ("network_out_bytes", "counter", "all"),
        "disk_read_bytes": ("disk_read_bytes", "counter", "all"),
        "disk_write_bytes": ("disk_write_bytes", "counter", "all"),
    },
    "rds": {
        "cpu_utilization_pct": ("cpu_utilization_pct", "gauge", "all"),
        "connections": ("connections", "gauge", "all"),
        "read_iops": ("read_iops", "gauge", "all"),
        "memory_available_bytes": ("memory_available_bytes", "gauge", "all"),
    },
    "lambda": {
        "invocations": ("invocations", "counter", "all"),
        "errors": ("errors", "counter", "all"),
        "duration_ms": ("duration_ms", "gauge", "duration_ms"),
    },
    "dynamodb": {
        "read_capacity_units": ("read_capacity_units", "counter", "all"),
        "write_capacity_units": ("write_capacity_units", "counter", "all"),
    },
    "s3": {
        "storage_bytes": ("storage_bytes", "gauge", "day"),  # the sum over its storage classes
        "object_count": ("object_count", "gauge", "day"),
    },
    "elb": {"requests": ("requests", "counter", "all"), "healthy_hosts": ("healthy_hosts", "gauge", "requests")},
    "alb": {
        "requests": ("requests", "counter", "all"),
        "connections": ("connections", "counter", "all"),
        "consumed_lcus": ("consumed_lcus", "gauge", "all"),
    },
}


def test_metrics_of_every_account_and_region_equal_the_fleet(fleet, aws_env):
    adapter = AwsSource.from_settings(get_settings())
    frames = list(adapter.iter_metric_frames(day_start(DAY), day_start(DAY + timedelta(days=1))))
    rows = [r for f in frames for r in f.to_pylist()]
    got = {(r["resource_id"], r["metric"], r["hour_start"]): r for r in rows}
    assert len(got) == len(rows)
    expected = 0
    for resource in fleet.of("aws"):
        for metric, (truth_metric, kind, exists) in EXPECTED_METRICS[resource.resource_type].items():
            truth = fleet.hourly(resource, truth_metric, DAY)
            hours = (
                [0]
                if exists == "day"
                else [h for h in range(24) if exists == "all" or fleet.hourly(resource, exists, DAY).sum[h] > 0]
            )
            for h in hours:
                row = got[(resource.resource_id, metric, truth.hour_starts[h])]
                assert (row["sub_account_id"], row["region"]) == (resource.sub_account_id, resource.region)
                if kind == "gauge":
                    assert row["avg"] == pytest.approx(truth.avg[h], rel=1e-9)
                    assert row["max"] is None  # no shipped AWS rule reads an hourly maximum
                else:
                    assert row["sum"] == pytest.approx(truth.sum[h], rel=1e-9)
                expected += 1
    assert expected == len(rows)
    # 2 accounts (the member one through its role) x 2 regions: one batch, 7 namespaces listed
    # and 3 inventories (classic ELB, Lambda, DynamoDB) each.
    assert dict(adapter.api.calls) == {
        "GetCallerIdentity": 1,
        "AssumeRole": 1,
        "GetMetricData": 4,
        "ListMetrics": 28,
        "DescribeLoadBalancers": 4,
        "ListFunctions": 4,
        "ListTables": 4,
    }


def test_idle_load_balancers_and_functions_have_zero_counters_not_gaps(fleet, aws_env):
    """Their metrics are published only on activity: CloudWatch has nothing for them."""
    idle = {
        r.resource_id: r
        for r in fleet.resources
        if r.provider == "aws" and r.profile == "idle" and r.resource_type in ("elb", "alb", "lambda")
    }
    assert sorted(r.resource_type for r in idle.values()) == ["alb", "elb", "lambda"]
    listed = {
        d["Value"]
        for region in ("us-east-1", "eu-west-1")
        for m in boto3.client(
            "cloudwatch",
            region_name=region,
            endpoint_url=aws_env["AWS_ENDPOINT_URL"],
            aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
        ).list_metrics(MetricName="RequestCount")["Metrics"]
        for d in m["Dimensions"]
    }
    assert not listed & set(idle)  # the double publishes no RequestCount for them
    adapter = AwsSource.from_settings(get_settings())
    frames = list(adapter.iter_metric_frames(day_start(DAY), day_start(DAY + timedelta(days=1))))
    rows = [r for f in frames for r in f.to_pylist() if r["resource_id"] in idle]
    per_metric = {}
    for r in rows:
        per_metric.setdefault((r["resource_type"], r["metric"]), []).append(r["sum"])
    assert {k: (len(v), sum(v)) for k, v in per_metric.items() if k[1] != "consumed_lcus"} == {
        ("elb", "requests"): (24, 0.0),
        ("alb", "requests"): (24, 0.0),
        ("alb", "connections"): (24, 0.0),
        ("lambda", "invocations"): (24, 0.0),
        ("lambda", "errors"): (24, 0.0),
    }


def test_an_unreachable_inventory_keeps_the_functions_with_metrics_and_says_what_is_missing(
    fleet, aws_env, monkeypatch
):
    url = f"http://127.0.0.1:{free_port()}"  # Lambda's ListFunctions cannot be reached; CloudWatch can
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    adapter = AwsSource.from_settings(get_settings())
    functions = [r for r in fleet.resources if r.provider == "aws" and r.resource_type == "lambda"]
    region = functions[0].region
    found = {r.resource_id for r in adapter.discover(region, ["lambda"])}
    here = {r.resource_id: r for r in functions if r.region == region and r.sub_account_id == adapter.account_id()}
    active = {rid for rid, r in here.items() if r.profile_on(DAY) != "idle"}
    assert active and found == active  # the idle ones published nothing: only the inventory had them
    assert adapter.api.skipped == {
        f"ListFunctions {adapter.account_id()}/{region}": (
            f"aws ListFunctions failed: could not reach {url}/2015-03-31/functions (EndpointConnectionError): "
            "check network access, proxies and AWS_ENDPOINT_URL_* (still failing after botocore's adaptive "
            "retries (AWS_MAX_ATTEMPTS); the run can be retried); idle lambda resources there are not listed "
            "(no metrics without activity)"
        )
    }


@mock_aws
def test_more_than_500_queries_are_batched_in_calls_of_at_most_500():
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    start = day_start(DAY)
    instances = [f"i-{n:017x}" for n in range(130)]  # 130 x (CPU Average + 4 counter Sums) = 650
    for metric in ("CPUUtilization", "NetworkIn", "NetworkOut", "EBSReadBytes", "EBSWriteBytes"):
        cw.put_metric_data(
            Namespace="AWS/EC2",
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "InstanceId", "Value": i}],
                    "Timestamp": start,
                    "Value": 7.0,
                }
                for i in instances
            ],
        )
    sent = []
    adapter = AwsSource(get_settings({"AWS_REGION": "us-east-1"}))
    adapter.client("cloudwatch", "us-east-1").meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData",
        lambda params, **_: sent.append(len(params["MetricDataQueries"])),
    )
    frames = list(adapter.iter_metric_frames(start, start + timedelta(hours=1)))
    assert sent == [500, 150]
    rows = [r for f in frames for r in f.to_pylist()]
    assert len(rows) == 130 * 5
    assert {r["resource_id"] for r in rows} == set(instances)
    assert all(r["avg"] == 7.0 for r in rows if r["metric"] == "cpu_utilization_pct")


def _sent_queries(rules_file=None) -> set[tuple]:
    """(namespace, metric, dimension value, stat) of every GetMetricData query the adapter sends
    for one hour of two EC2 instances and one RDS database."""
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    start = day_start(DAY)
    published = {
        ("AWS/EC2", "InstanceId", "i-0000000000000000a"): ("CPUUtilization", "NetworkIn", "NetworkOut"),
        ("AWS/EC2", "InstanceId", "i-0000000000000000b"): ("CPUUtilization", "EBSReadBytes", "EBSWriteBytes"),
        ("AWS/RDS", "DBInstanceIdentifier", "orders-db"): (
            "CPUUtilization",
            "DatabaseConnections",
            "ReadIOPS",
            "FreeableMemory",
        ),
    }
    for (namespace, dimension, value), names in published.items():
        cw.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {"MetricName": n, "Dimensions": [{"Name": dimension, "Value": value}], "Timestamp": start, "Value": 3.0}
                for n in names
            ],
        )
    sent = []
    environ = {"AWS_REGION": "us-east-1", **({"FINOPS_RULES_FILE": str(rules_file)} if rules_file else {})}
    adapter = AwsSource(get_settings(environ))
    adapter.client("cloudwatch", "us-east-1").meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData",
        lambda params, **_: sent.extend(params["MetricDataQueries"]),
    )
    list(adapter.iter_metric_frames(start, start + timedelta(hours=1)))
    return {
        (
            q["MetricStat"]["Metric"]["Namespace"],
            q["MetricStat"]["Metric"]["MetricName"],
            q["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
            q["MetricStat"]["Stat"],
        )
        for q in sent
    }


# The queries for the fleet above when no rule reads an hourly maximum (the shipped rules: RDS idle
# is "DatabaseConnections maximum = 0", which the hourly average decides the same way).
AVERAGES_ONLY = {
    *{
        (ns, m, v, "Sum" if m not in ("CPUUtilization",) else "Average")
        for ns, v in (("AWS/EC2", "i-0000000000000000a"), ("AWS/EC2", "i-0000000000000000b"))
        for m in ("CPUUtilization", "NetworkIn", "NetworkOut", "EBSReadBytes", "EBSWriteBytes")
    },
    ("AWS/RDS", "CPUUtilization", "orders-db", "Average"),
    ("AWS/RDS", "DatabaseConnections", "orders-db", "Average"),
    ("AWS/RDS", "ReadIOPS", "orders-db", "Average"),
    ("AWS/RDS", "FreeableMemory", "orders-db", "Average"),
}


@mock_aws
def test_getmetricdata_asks_a_gauges_maximum_only_where_a_rule_reads_it(tmp_path):
    assert _sent_queries() == AVERAGES_ONLY
    # A user's rules: EC2 judged on the P95 of hourly CPU maxima, RDS on at most 5 connections.
    with open(SQL_DIR / "seeds" / "underutilization_rules.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row["rule_id"] == "aws_ec2_low_utilization":
            row["cpu_p95_below_pct"] = "20"
        if row["rule_id"] == "aws_rds_idle":
            row["connections_at_most"] = "5"
    rules = tmp_path / "rules.csv"
    with open(rules, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert _sent_queries(rules) == AVERAGES_ONLY | {
        ("AWS/EC2", "CPUUtilization", "i-0000000000000000a", "Maximum"),
        ("AWS/EC2", "CPUUtilization", "i-0000000000000000b", "Maximum"),
        ("AWS/RDS", "DatabaseConnections", "orders-db", "Maximum"),
    }


def _ce_page(day: str, groups: list[tuple[str, str, str]], token: str | None) -> dict:
    page = {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": day, "End": (date.fromisoformat(day) + timedelta(days=1)).isoformat()},
                "Total": {},
                "Estimated": False,
                "Groups": [
                    {
                        "Keys": [svc, acct],
                        "Metrics": {
                            "UnblendedCost": {"Amount": amount, "Unit": "USD"},
                            "AmortizedCost": {"Amount": amount, "Unit": "USD"},
                            "UsageQuantity": {"Amount": "1", "Unit": "Hrs"},
                        },
                    }
                    for svc, acct, amount in groups
                ],
            }
        ],
        "DimensionValueAttributes": [{"Value": "111111111111", "Attributes": {"description": "payer"}}],
    }
    if token:
        page["NextPageToken"] = token
    return page


@mock_aws
def test_cost_explorer_pages_are_all_followed():
    pages = [
        _ce_page("2026-10-01", [("Amazon EC2", "111111111111", "10.25"), ("Amazon S3", "111111111111", "1.50")], "p2"),
        _ce_page("2026-10-02", [("Amazon EC2", "111111111111", "11.00")], "p3"),
        _ce_page("2026-10-03", [("Amazon EC2", "111111111111", "0.0000000001")], None),
    ]
    requests.post("http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results", json={"results": pages})
    adapter = AwsSource(
        get_settings({"AWS_COST_WITH_RESOURCES": "false", "AWS_COST_FORECAST": "false"}), today=date(2026, 10, 20)
    )
    fetched = adapter.fetch_cost(date(2026, 10, 1), date(2026, 10, 4))
    assert adapter.api.calls["GetCostAndUsage"] == 3
    rows = fetched.cost.to_pylist()
    assert [(r["usage_date"].isoformat(), r["service_name"], r["billed_cost"]) for r in rows] == [
        ("2026-10-01", "Amazon EC2", Decimal("10.25")),
        ("2026-10-01", "Amazon S3", Decimal("1.50")),
        ("2026-10-02", "Amazon EC2", Decimal("11.00")),
        ("2026-10-03", "Amazon EC2", Decimal("1E-10")),
    ]
    assert fetched.provider_totals[date(2026, 10, 1)] == {"USD": Decimal("11.75")}
    assert rows[0]["sub_account_name"] == "payer"
    assert adapter.api.estimated_cost_usd == Decimal("0.03")


def _amount(value: str) -> dict:
    return {"Amount": value, "Unit": "USD"}


def test_resource_level_rows_and_forecast_against_the_real_service_model():
    """Stubber checks our requests against botocore's Cost Explorer model (moto lacks these calls)."""
    today = date(2026, 11, 20)
    ce = boto3.client("ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(ce)
    metrics = lambda v: {"UnblendedCost": _amount(v), "AmortizedCost": _amount(v), "UsageQuantity": _amount("24")}
    stub.add_response(
        "get_cost_and_usage",
        {
            "ResultsByTime": [
                {
                    "TimePeriod": {"Start": "2026-11-18", "End": "2026-11-19"},
                    "Estimated": True,
                    "Groups": [
                        {
                            "Keys": ["Amazon Elastic Compute Cloud - Compute", "222222222222"],
                            "Metrics": metrics("5.00"),
                        },
                        {"Keys": ["Amazon Simple Storage Service", "222222222222"], "Metrics": metrics("1.25")},
                    ],
                }
            ]
        },
        {
            "TimePeriod": {"Start": "2026-11-18", "End": "2026-11-19"},
            "Granularity": "DAILY",
            "Metrics": ["UnblendedCost", "AmortizedCost", "UsageQuantity"],
            "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}],
        },
    )
    stub.add_response(
        "get_cost_and_usage_with_resources",
        {
            "ResultsByTime": [
                {
                    "TimePeriod": {"Start": "2026-11-18", "End": "2026-11-19"},
                    "Estimated": True,
                    "Groups": [
                        {"Keys": ["222222222222", "i-0abc"], "Metrics": metrics("3.00")},
                        {"Keys": ["222222222222", "NoResourceId"], "Metrics": metrics("2.00")},
                    ],
                }
            ]
        },
        # API Reference: this call's Filter must include SERVICE = Amazon Elastic Compute Cloud - Compute.
        {
            "TimePeriod": {"Start": "2026-11-18", "End": "2026-11-19"},
            "Granularity": "DAILY",
            "Filter": {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Elastic Compute Cloud - Compute"]}},
            "Metrics": ["UnblendedCost", "AmortizedCost", "UsageQuantity"],
            "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "RESOURCE_ID"}],
        },
    )
    stub.add_response(
        "get_cost_forecast",
        {
            "Total": _amount("20.0"),
            "ForecastResultsByTime": [
                {
                    "TimePeriod": {"Start": "2026-11-20", "End": "2026-11-21"},
                    "MeanValue": "10.0",
                    "PredictionIntervalLowerBound": "9.0",
                    "PredictionIntervalUpperBound": "11.0",
                },
                {
                    "TimePeriod": {"Start": "2026-11-21", "End": "2026-11-22"},
                    "MeanValue": "10.0",
                    "PredictionIntervalLowerBound": "9.0",
                    "PredictionIntervalUpperBound": "11.0",
                },
            ],
        },
        {
            "TimePeriod": {"Start": "2026-11-20", "End": "2027-01-01"},
            "Metric": "UNBLENDED_COST",
            "Granularity": "DAILY",
            "PredictionIntervalLevel": 80,
        },
    )
    with stub:
        adapter = AwsSource(get_settings({}), client_factory=lambda service, region: ce, today=today)
        fetched = adapter.fetch_cost(date(2026, 11, 18), date(2026, 11, 19))
        stub.assert_no_pending_responses()
    rows = sorted(fetched.cost.to_pylist(), key=lambda r: r["billed_cost"])
    assert [(r["service_name"], r["resource_id"], r["billed_cost"], r["source"]) for r in rows] == [
        ("Amazon Simple Storage Service", None, Decimal("1.25"), "ce:GetCostAndUsage"),
        ("Amazon Elastic Compute Cloud - Compute", None, Decimal("2.00"), "ce:GetCostAndUsageWithResources"),
        ("Amazon Elastic Compute Cloud - Compute", "i-0abc", Decimal("3.00"), "ce:GetCostAndUsageWithResources"),
    ]
    assert all(r["is_estimated"] and r["sub_account_id"] == "222222222222" for r in rows)
    assert fetched.provider_totals == {date(2026, 11, 18): {"USD": Decimal("6.25")}}
    forecast = fetched.forecast.to_pylist()
    assert [(f["usage_date"], f["period_start"], f["mean_cost"]) for f in forecast] == [
        (today, date(2026, 11, 20), Decimal("10.0")),
        (today, date(2026, 11, 21), Decimal("10.0")),
    ]


def test_access_denied_names_the_missing_iam_action():
    ce = boto3.client("ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(ce)
    stub.add_client_error(
        "get_cost_and_usage",
        service_error_code="AccessDeniedException",
        service_message="User is not authorized",
        http_status_code=400,
        expected_params=None,
    )
    with stub:
        adapter = AwsSource(
            get_settings({"AWS_COST_FORECAST": "false"}), client_factory=lambda s, r: ce, today=date(2026, 10, 20)
        )
        with pytest.raises(CloudApiError, match=r"ce:GetCostAndUsage") as info:
            adapter.fetch_cost(date(2026, 10, 1), date(2026, 10, 2))
    assert "aws GetCostAndUsage failed" in str(info.value)


@pytest.mark.parametrize(
    ("code", "says"),
    [
        # Cost Explorer API Reference, GetCostAndUsage errors: BillExpirationException ("The requested
        # report expired"), DataUnavailableException ("The requested data is unavailable").
        (
            "BillExpirationException",
            "Cost Explorer no longer serves these days (it keeps this month and the 13 before it); backfill later "
            "days, or land older ones from the AWS Data Export (AWS_COST_SOURCE=export).",
        ),
        (
            "DataUnavailableException",
            "Cost Explorer is not enabled for this account. Enable it in the Billing console (it takes up to "
            "24 hours) and run again.",
        ),
        (
            "ExpiredTokenException",
            "the session credentials expired: refresh them (aws sso login, or new STS credentials)",
        ),
        (
            "InvalidClientTokenId",
            "the access key is not valid for this account/partition: check AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
        ),
    ],
)
def test_errors_that_need_a_fix_say_it_and_are_not_retried(code, says):
    # AWS API references, "Common Errors": ExpiredTokenException ("The security token included in the
    # request is expired") and InvalidClientTokenId (access key not in AWS's records), both HTTP 403.
    ce = boto3.client("ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(ce)
    stub.add_client_error(
        "get_cost_and_usage", service_error_code=code, service_message="rejected", http_status_code=403
    )
    with stub:
        adapter = AwsSource(
            get_settings({"AWS_COST_FORECAST": "false"}), client_factory=lambda s, r: ce, today=date(2026, 10, 20)
        )
        with pytest.raises(CloudApiError) as raised:
            adapter.fetch_cost(date(2026, 10, 1), date(2026, 10, 2))
    assert str(raised.value) == f"aws GetCostAndUsage failed: {code}: {says}"
    assert not raised.value.retryable


def test_throttling_is_retried_then_succeeds(fleet, monkeypatch):
    double = CostExplorerDouble(fleet, throttle_first=2, today=DAY + timedelta(days=1))
    url = double.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")
        settings = get_settings(
            {**__import__("os").environ, "AWS_COST_WITH_RESOURCES": "false", "AWS_COST_FORECAST": "false"}
        )
        adapter = AwsSource(settings)
        fetched = adapter.fetch_cost(DAY, DAY + timedelta(days=1))
    finally:
        double.stop()
    assert [op for op, _ in double.requests] == ["GetCostAndUsage"] * 3  # two throttled, one answered
    assert adapter.api.calls["GetCostAndUsage"] == 1
    assert fetched.provider_totals[DAY] == fleet.daily_total("aws", DAY)


def test_cost_explorer_refuses_daily_cost_older_than_the_current_month_and_the_13_before(fleet):
    """The double plays the documented history (user guide, ce-advanced-cost-analysis), not our belief."""
    double = CostExplorerDouble(fleet, today=date(2026, 11, 30))
    ce = boto3.client(
        "ce", region_name="us-east-1", endpoint_url=double.start(), aws_access_key_id="A", aws_secret_access_key="B"
    )
    try:
        ask = {"Granularity": "DAILY", "Metrics": ["UnblendedCost"]}
        served = ce.get_cost_and_usage(TimePeriod={"Start": "2025-10-01", "End": "2025-10-02"}, **ask)
        with pytest.raises(ce.exceptions.BillExpirationException):
            ce.get_cost_and_usage(TimePeriod={"Start": "2025-09-30", "End": "2025-10-02"}, **ask)
    finally:
        double.stop()
    assert served["ResultsByTime"][0]["TimePeriod"]["Start"] == "2025-10-01"


def test_a_backfill_before_cost_explorers_history_fails_at_once_naming_the_first_day_and_the_export(fleet, monkeypatch):
    double = CostExplorerDouble(fleet, today=date(2026, 11, 30))
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", double.start())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")
    try:
        adapter = AwsSource(get_settings({**os.environ, "AWS_COST_FORECAST": "false"}), today=date(2026, 11, 30))
        with pytest.raises(CloudApiError) as raised:
            adapter.fetch_cost(date(2025, 9, 15), date(2025, 10, 15))
    finally:
        double.stop()
    assert str(raised.value) == (
        "aws GetCostAndUsage failed: Cost Explorer serves daily cost only from 2025-10-01 (this month and the 13 "
        "before it); the range starts 2025-09-15. Backfill from 2025-10-01, or land older days from the AWS Data "
        "Export (AWS_COST_SOURCE=export, docs/operations.md)."
    )
    assert not raised.value.retryable and double.requests == []  # no paid call


def test_an_unreachable_endpoint_names_it_and_may_be_retried(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    adapter = AwsSource(get_settings({**os.environ, "AWS_COST_FORECAST": "false"}))
    with pytest.raises(CloudApiError) as raised:
        adapter.fetch_cost(DAY, DAY + timedelta(days=1))
    assert str(raised.value) == (
        f"aws GetCostAndUsage failed: could not reach {url}/ (EndpointConnectionError): check network access, "
        "proxies and AWS_ENDPOINT_URL_* (still failing after botocore's adaptive retries (AWS_MAX_ATTEMPTS); "
        "the run can be retried)"
    )
    assert raised.value.retryable


def test_missing_credentials_name_the_variables_and_are_not_retried(monkeypatch, tmp_path):
    # No key in the environment (conftest), no shared files, no instance metadata: the chain is empty.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    adapter = AwsSource(get_settings({"AWS_COST_FORECAST": "false"}))
    with pytest.raises(CloudApiError) as raised:
        adapter.fetch_cost(DAY, DAY + timedelta(days=1))
    assert str(raised.value) == (
        "aws GetCostAndUsage failed: no credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or attach an IAM role"
    )
    assert not raised.value.retryable


def test_ungrouped_cost_comes_from_total_and_resource_grouping_is_refused(fleet, aws_env):
    adapter = AwsSource(get_settings({**aws_env, "AWS_COST_FORECAST": "false"}))
    fetched = adapter.fetch_cost(DAY, DAY + timedelta(days=1), group_by=())
    rows = fetched.cost.to_pylist()
    assert len(rows) == 1 and rows[0]["billed_cost"] == fleet.daily_total("aws", DAY)["USD"]
    with pytest.raises(ValueError, match="group_by=None"):
        adapter.fetch_cost(DAY, DAY + timedelta(days=1), group_by=("resource",))


def test_a_usage_quantity_summed_over_several_units_is_not_stored(fleet, aws_env):
    """Cost Explorer sums UsageQuantity "without taking the units into account": a group of several
    usage types (Elastic Load Balancing: classic and application load balancers) answers Unit "N/A"."""
    adapter = AwsSource(get_settings({**aws_env, "AWS_COST_FORECAST": "false", "AWS_COST_WITH_RESOURCES": "false"}))
    rows = adapter.fetch_cost(DAY, DAY + timedelta(days=1)).cost.to_pylist()
    units = {r["service_name"]: r["usage_unit"] for r in rows}
    assert units == {
        "AWS Lambda": "Hrs",
        "Amazon DynamoDB": "Hrs",
        "Amazon Elastic Compute Cloud - Compute": "Hrs",
        "Amazon Relational Database Service": "Hrs",
        "Amazon Simple Storage Service": "Hrs",
        "Elastic Load Balancing": None,
        "Tax": None,
    }
    elb = [r for r in rows if r["service_name"] == "Elastic Load Balancing"]
    assert len(elb) == 2 and all(r["usage_quantity"] is None for r in elb)
    assert sum(r["billed_cost"] for r in elb) == sum(
        (line.billed_cost for line in fleet.cost_lines("aws", DAY) if line.service_name == "Elastic Load Balancing"),
        Decimal(0),
    )
    rds = {r["sub_account_id"]: r["usage_quantity"] for r in rows if r["service_name"].endswith("Database Service")}
    assert rds == {
        account: sum(
            line.usage_quantity
            for line in fleet.cost_lines("aws", DAY)
            if line.sku.startswith("InstanceUsage:") and line.sub_account_id == account
        )
        for account in ("111111111111", "222222222222")
    }


@pytest.mark.parametrize("wire", [1700000000, 1700000000.0, "2023-11-14T22:13:20Z", "2023-11-14T23:13:20+01:00"])
def test_response_timestamps_parse_to_utc_whatever_the_wire_form(wire):
    # JSON protocols send epoch seconds, query/XML ones ISO 8601 text: both become the same UTC instant.
    parsed = utc_timestamp(wire)
    assert parsed == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert parsed.utcoffset() == timedelta(0)


@mock_aws
def test_org_role_name_reads_metrics_in_every_active_member_account():
    """AWS_ORG_ROLE_NAME: organizations:ListAccounts, then the role in each ACTIVE account."""
    org = boto3.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    member = org.create_account(Email="member@example.com", AccountName="member")["CreateAccountStatus"]["AccountId"]
    own = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole", RoleSessionName="seed"
    )["Credentials"]
    member_cw = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    start = day_start(DAY)
    member_cw.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "DatabaseConnections",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "orders-db"}],
                "Timestamp": start,
                "Value": 3.0,
            }
        ],
    )
    adapter = AwsSource(get_settings({"AWS_REGION": "us-east-1", "AWS_ORG_ROLE_NAME": "OrganizationAccountAccessRole"}))
    assert {(a.account_id, a.role_arn) for a in adapter.metric_accounts()} == {
        (own, None),
        (member, f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole"),
    }
    rows = [r for f in adapter.iter_metric_frames(start, start + timedelta(hours=1)) for r in f.to_pylist()]
    assert [(r["sub_account_id"], r["resource_id"], r["metric"], r["avg"]) for r in rows] == [
        (member, "orders-db", "connections", 3.0)
    ]
    assert adapter.api.calls["ListAccounts"] == 1 and adapter.api.calls["AssumeRole"] == 1


def test_a_resource_in_an_account_that_is_not_read_is_refused(fleet, aws_env):
    adapter = AwsSource(get_settings({**aws_env, "AWS_ROLE_ARNS": ""}))
    with pytest.raises(ValueError, match="account 333333333333, which is not read: add its role to AWS_ROLE_ARNS"):
        list(
            adapter.iter_metric_frames(
                day_start(DAY),
                day_start(DAY + timedelta(days=1)),
                resources=[ResourceRef("db-x", "rds", "us-east-1", "333333333333")],
            )
        )
