"""The benchmarks' fast AWS double holds what the simulator's CloudWatch holds
(``cloudwatch_datapoints``, which seeds the moto-based double) and answers the inventory calls
in each protocol, so benchmark figures are measured against the same cloud the tests use."""

from datetime import date, datetime, timedelta, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from benchmarks import aws_double
from benchmarks.api_efficiency import naive_aws_points
from benchmarks.aws_double import AwsDouble, RateLimits
from finops_pipeline.clouds.aws.source import AwsSource
from finops_pipeline.settings import get_settings
from finops_pipeline.simulator.aws import CLOUDWATCH, cloudwatch_datapoints
from finops_pipeline.simulator.fleet import AWS_REGIONS, build_fleet

DAY = date(2025, 6, 2)
TODAY = DAY + timedelta(days=1)


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIABENCHMARK0000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "benchmark-not-a-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def _client(double, service, region, attempts=3):
    return double.attach(
        boto3.client(
            service, region_name=region, config=Config(retries={"total_max_attempts": attempts, "mode": "standard"})
        )
    )


def _key(point):
    return point["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in point["Dimensions"]))


def _truth(fleet, days):
    """(region, namespace) -> {(metric, dims): [datapoints]} from the simulator's CloudWatch."""
    truth = {}
    for resource in fleet.of("aws"):
        for day in days:
            for namespace, points in cloudwatch_datapoints(fleet, resource, day).items():
                series = truth.setdefault((resource.region, namespace), {})
                for p in points:
                    series.setdefault(_key(p), []).append(p)
    return truth


def test_list_metrics_lists_what_has_data_in_the_two_weeks_before_today(fleet):
    double = AwsDouble(fleet, TODAY)
    truth = _truth(fleet, [TODAY - timedelta(days=i) for i in range(1, 15)])
    for region in AWS_REGIONS:
        cloudwatch = _client(double, "cloudwatch", region)
        for namespace, _, _ in CLOUDWATCH.values():
            listed = [
                _key(m)
                for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace)
                for m in page["Metrics"]
            ]
            assert len(listed) == len(set(listed))
            assert set(listed) == set(truth.get((region, namespace), {})), (region, namespace)
    # idle classic ELBs and Lambda functions published nothing, so they are not listed
    idle = {r.resource_id: r for r in fleet.of("aws") if r.profile == "idle" and r.resource_type in ("elb", "lambda")}
    assert idle
    for rid, resource in idle.items():
        namespace, dimension, _ = CLOUDWATCH[resource.resource_type]
        assert not _client(double, "cloudwatch", resource.region).list_metrics(
            Namespace=namespace, Dimensions=[{"Name": dimension, "Value": rid}]
        )["Metrics"]


def test_list_metrics_filters_by_name_and_dimension(fleet):
    double = AwsDouble(fleet, TODAY)
    bucket = next(r for r in fleet.of("aws", "s3"))
    page = _client(double, "cloudwatch", bucket.region).list_metrics(
        Namespace="AWS/S3",
        MetricName="BucketSizeBytes",
        Dimensions=[{"Name": "BucketName", "Value": bucket.resource_id}],
    )
    assert sorted(dict(_key(m)[1])["StorageType"] for m in page["Metrics"]) == sorted(aws_double.S3_CLASSES)


def test_statistics_equal_the_simulators_datapoints(fleet):
    double = AwsDouble(fleet, TODAY)
    truth = _truth(fleet, [DAY])
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
    checked = 0
    for (region, namespace), series in truth.items():
        cloudwatch = _client(double, "cloudwatch", region)
        (rtype,) = (t for t, (ns, _, _) in CLOUDWATCH.items() if ns == namespace)
        _, dimension, metrics = CLOUDWATCH[rtype]
        ids = {r.resource_id for r in fleet.of("aws", rtype) if r.region == region}
        for rid in ids:  # every metric of every resource: published hours answer, the others are empty
            for name, *_ in metrics:
                keys = [k for k in series if k[0] == name and (dimension, rid) in k[1]] or [(name, ((dimension, rid),))]
                for key in keys:
                    answer = cloudwatch.get_metric_statistics(
                        Namespace=namespace,
                        MetricName=name,
                        Dimensions=[{"Name": n, "Value": v} for n, v in key[1]],
                        StartTime=start,
                        EndTime=start + timedelta(days=1),
                        Period=86400 if rtype == "s3" else 3600,
                        Statistics=["Average", "Maximum", "Minimum", "Sum", "SampleCount"],
                    )
                    got = {p["Timestamp"]: p for p in answer["Datapoints"]}
                    want = {p["Timestamp"]: p["StatisticValues"] for p in series.get(key, [])}
                    assert set(got) == set(want), key
                    for ts, stats in want.items():
                        assert got[ts]["Sum"] == pytest.approx(stats["Sum"], rel=1e-12)
                        assert got[ts]["Maximum"] == pytest.approx(stats["Maximum"], rel=1e-12)
                        assert got[ts]["Minimum"] == pytest.approx(stats["Minimum"], rel=1e-12, abs=1e-12)
                        assert got[ts]["SampleCount"] == stats["SampleCount"]
                        assert got[ts]["Average"] == pytest.approx(stats["Sum"] / stats["SampleCount"], rel=1e-12)
                        checked += 1
    assert checked == sum(len(points) for series in truth.values() for points in series.values())


@pytest.mark.parametrize(
    "service, call, list_key, name_key",
    [
        ("elb", "describe_load_balancers", "LoadBalancerDescriptions", "LoadBalancerName"),
        ("lambda", "list_functions", "Functions", "FunctionName"),
        ("dynamodb", "list_tables", "TableNames", None),
    ],
)
def test_inventories_list_every_resource_of_the_region_across_pages(service, call, list_key, name_key):
    fleet = build_fleet(scale=3)
    double = AwsDouble(fleet, TODAY)
    listed = 0
    for region in AWS_REGIONS:
        client = _client(double, service, region)
        pages = list(client.get_paginator(call).paginate(PaginationConfig={"PageSize": 1}))
        names = [item[name_key] if name_key else item for page in pages for item in page[list_key]]
        want = sorted(r.resource_id for r in fleet.of("aws", service) if r.region == region)
        assert names == want and len(pages) == len(want)  # one a page, in order, no empty last page
        listed += len(want)
    assert listed > len(AWS_REGIONS)
    assert sum(double.calls.values()) == listed  # every page is a counted call


@pytest.mark.parametrize(
    "service, call, code",
    [
        ("cloudwatch", "list_metrics", "Throttling"),
        ("elb", "describe_load_balancers", "Throttling"),
        ("lambda", "list_functions", "TooManyRequestsException"),
        ("dynamodb", "list_tables", "ThrottlingException"),
    ],
)
def test_rate_limited_calls_answer_each_protocols_throttling_error(fleet, service, call, code):
    kwargs = {"Namespace": "AWS/EC2"} if service == "cloudwatch" else {}
    double = AwsDouble(
        fleet,
        TODAY,
        limits=RateLimits(
            {f"{boto3.client(service, region_name='us-east-1').meta.service_model.service_id.hyphenize()}": 1.0}
        ),
    )
    client = _client(double, service, "us-east-1", attempts=1)
    getattr(client, call)(**kwargs)
    with pytest.raises(ClientError) as caught:
        getattr(client, call)(**kwargs)
    assert caught.value.response["Error"]["Code"] == code
    assert sum(double.calls.values()) == 1 and sum(double.throttled.values()) == 1


def _adapter(double, fleet):
    regions = sorted({r.region for r in fleet.of("aws")})
    settings = get_settings(
        {"AWS_USAGE_ENABLED": "true", "AWS_REGION": regions[0], "AWS_USAGE_REGIONS": ",".join(regions)}
    )
    return AwsSource(settings, client_factory=double.client_factory(settings), today=TODAY), regions


def _rows(adapter, start, end):
    return {
        (r["resource_id"], r["metric"], r["hour_start"]): (r["avg"], r["max"], r["sum"])
        for frame in adapter.iter_metric_frames(start, end)
        for r in frame.to_pylist()
    }


def test_adapter_and_naive_benchmark_client_land_the_same_rows_for_every_type(fleet):
    """The API benchmark's naive side (one GetMetricStatistics per metric, S3 classes summed,
    counters zero-filled) compares like for like with the adapter, on every resource type."""
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    adapter, regions = _adapter(AwsDouble(fleet, TODAY), fleet)
    ours = _rows(adapter, start, end)
    naive, _ = _adapter(AwsDouble(fleet, TODAY), fleet)
    points = naive_aws_points(naive, regions, start, end)
    assert set(ours) == set(points)
    assert {r.resource_id for r in fleet.of("aws")} == {k[0] for k in ours}
    for key, values in ours.items():
        for value, column in zip(values, ("avg", "max", "sum")):
            want = points[key].get(column)
            assert (value is None and want is None) or value == pytest.approx(want, rel=1e-12), (key, column)


def test_get_metric_data_pages_by_its_datapoint_budget(fleet, monkeypatch):
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
    end = start + timedelta(days=2)
    whole = _rows(_adapter(AwsDouble(fleet, DAY + timedelta(days=2)), fleet)[0], start, end)
    monkeypatch.setattr(aws_double, "MAX_DATAPOINTS_PER_CALL", 100)
    double = AwsDouble(fleet, DAY + timedelta(days=2))
    paged = _rows(_adapter(double, fleet)[0], start, end)
    assert paged == whole
    assert sum(n for k, n in double.calls.items() if ".GetMetricData." in k) > 10
