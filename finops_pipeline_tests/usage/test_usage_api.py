"""The usage API against the simulated clouds: numbers equal the fleet's ground truth, and
errors come back as documented."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from statistics import fmean

import pytest

from finops_pipeline.adapters.usage import (
    UsageFactory,
    get_aws_usage_adapter,
    get_usage_factory,
)
from finops_pipeline.settings import get_settings
from finops_pipeline.types.usage import Confidence, UsageQuery

from .conftest import TODAY


def day(d) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


START, END = day(TODAY - timedelta(days=7)), day(TODAY)
DAYS = [TODAY - timedelta(days=i) for i in range(7, 0, -1)]


def test_resource_usage_averages_equal_the_fleet(aws_env, fleet):
    ec2 = fleet.of("aws", "ec2")[1]  # the idle one
    usage = get_usage_factory().get_resource_usage("aws", ec2.resource_id, "ec2", START, END, region=ec2.region)
    cpu = [v for d in DAYS for v in fleet.hourly(ec2, "cpu_utilization_pct", d).avg]
    net_in = [v for d in DAYS for v in fleet.hourly(ec2, "network_in_bytes", d).sum]
    assert usage.avg_cpu_utilization == pytest.approx(fmean(cpu), rel=1e-9)
    assert usage.avg_network_in_gb == pytest.approx(fmean(net_in) / 1024**3, rel=1e-9)
    assert usage.hours_with_data == 7 * 24
    assert {m.metric_name for m in usage.metrics} == {
        "CPUUtilization",
        "NetworkIn",
        "NetworkOut",
        "EBSReadBytes",
        "EBSWriteBytes",
    }
    assert all(m.timestamp.tzinfo is timezone.utc and START <= m.timestamp < END for m in usage.metrics)


def test_naive_datetimes_mean_utc_and_give_the_same_answer(aws_env, fleet):
    ec2 = fleet.of("aws", "ec2")[0]
    factory = UsageFactory(get_settings())
    naive = factory.get_resource_usage(
        "aws",
        ec2.resource_id,
        "ec2",
        START.replace(tzinfo=None),
        END.replace(tzinfo=None),
        region=ec2.region,
        metrics=["CPUUtilization"],
    )
    aware = factory.get_resource_usage(
        "aws", ec2.resource_id, "ec2", START, END, region=ec2.region, metrics=["cpu_utilization_pct"], use_cache=False
    )
    assert naive.start_time == START and naive.start_time.tzinfo is timezone.utc
    assert naive.model_dump() == aware.model_dump()


def test_unknown_resource_gives_empty_metrics(aws_env):
    usage = get_usage_factory().get_resource_usage("aws", "i-0000000000000dead", "ec2", START, END)
    assert usage is not None and usage.metrics == [] and usage.avg_cpu_utilization is None
    assert usage.region is None  # asked in every configured region, found in none


def test_aws_resource_is_found_in_any_configured_region_when_none_is_given(aws_env, fleet):
    ec2 = next(r for r in fleet.of("aws", "ec2") if r.region != aws_env["AWS_REGION"])
    usage = get_usage_factory().get_resource_usage(
        "aws", ec2.resource_id, "ec2", START, END, metrics=["CPUUtilization"]
    )
    assert usage.region == ec2.region and usage.hours_with_data == 7 * 24


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda f: f.get_resource_usage("aws", "i-1", "ec2", END, START), "pass an end_time later than start_time"),
        (lambda f: f.get_resource_usage("oracle", "i-1", "ec2", START, END), "pass one of 'aws', 'gcp', 'azure'"),
        (
            lambda f: f.get_resource_usage("aws", "i-1", "ec2_instance", START, END),
            "unknown aws resource type 'ec2_instance': pass one of alb, dynamodb, ec2, elb, lambda, rds, s3",
        ),
        (
            lambda f: f.get_resource_usage("aws", "i-1", "ec2", START, END, metrics=["MemoryUtilization"]),
            "pass any of CPUUtilization",
        ),
        (lambda f: f.get_cost_usage("aws", START, END, group_by=["team"]), "pass any of 'service', 'region'"),
        (lambda f: f.get_cost_usage("aws", START, END, granularity="HOURLY"), "pass 'DAILY' or 'MONTHLY'"),
        (lambda f: f.get_cost_usage("aws", START, END, granularity="weekly"), "pass one of 'HOURLY', 'DAILY'"),
        (lambda f: f.get_cost_usage("aws", START, END, source="cache"), "pass 'api'"),
        (
            lambda f: f.get_cost_usage("aws", START, END, group_by=["service", "region", "account"]),
            "at most two dimensions",
        ),
        (
            lambda f: f.get_resource_usage("aws", "", "ec2", START, END),
            "resource_id='': pass the resource's id as a string",
        ),
        (
            lambda f: f.get_resource_usage("aws", "i-1", "ec2", 20260101, END),
            "start_time=20260101: pass a datetime (UTC; naive is read as UTC), a date or an ISO 8601 string",
        ),
        (
            lambda f: f.get_usage_summary(
                UsageQuery(cloud_provider="aws", start_time=START, end_time=END, granularity="hourly")
            ),
            "granularity HOURLY is not available for cost: billing data is daily; pass 'DAILY' or "
            "'MONTHLY' (hourly metrics come from get_resource_usage)",
        ),
    ],
)
def test_bad_arguments_raise_saying_what_to_pass(aws_env, call, message):
    with pytest.raises(ValueError) as error:
        call(get_usage_factory())
    assert message in str(error.value)


def test_ungrouped_cost_is_daily_totals_equal_to_the_providers_bill(aws_env, fleet):
    records = get_usage_factory().get_cost_usage("aws", START, END)
    assert [r.start_time.date() for r in records] == DAYS
    for record in records:
        truth = fleet.daily_total("aws", record.start_time.date())
        assert record.cost == truth["USD"] and record.currency == "USD"
        assert record.service == "All services" and isinstance(record.cost, Decimal)


def test_group_by_is_case_insensitive_and_monthly_is_cut_at_the_window(aws_env, fleet):
    factory = UsageFactory(get_settings())
    daily = factory.get_cost_usage("aws", START, END, group_by=["SERVICE"])
    monthly = factory.get_cost_usage("aws", START, END, granularity="monthly", group_by=["Service"])
    assert {r.dimensions["service"] for r in daily} == {
        line.service_name for d in DAYS for line in fleet.cost_lines("aws", d)
    }
    assert sum(r.cost for r in monthly) == sum(r.cost for r in daily)
    assert min(r.start_time for r in monthly) == START and max(r.end_time for r in monthly) == END
    lam = [r for r in daily if r.service == "AWS Lambda"]
    assert sum(r.cost for r in lam) == sum(
        line.billed_cost for d in DAYS for line in fleet.cost_lines("aws", d) if line.service_name == "AWS Lambda"
    )


def test_summary_cost_is_the_cost_of_what_was_selected(aws_env, fleet):
    query = UsageQuery(
        cloud_provider="aws",
        start_time=START,
        end_time=END,
        resource_types=["ec2"],
        regions=["us-east-1"],
        group_by=["service", "region"],
    )
    summary = get_usage_factory().get_usage_summary(query)
    chosen = [r for r in fleet.of("aws", "ec2") if r.region == "us-east-1"]
    truth = sum(
        line.billed_cost
        for d in DAYS
        for line in fleet.cost_lines("aws", d)
        if line.resource_id in {r.resource_id for r in chosen}
    )
    assert summary.total_resources == len(chosen)
    assert summary.total_cost == truth and summary.costs_by_currency == {"USD": truth}
    assert summary.average_cost_per_resource == truth / len(chosen)
    cpu = [fmean(v for d in DAYS for v in fleet.hourly(r, "cpu_utilization_pct", d).avg) for r in chosen]
    assert summary.avg_cpu_utilization == pytest.approx(fmean(cpu), rel=1e-9)
    assert summary.data_completeness == 1.0
    # The double marks the last two days estimated, as Cost Explorer does for recent days.
    assert summary.confidence is Confidence.MEDIUM


def test_summary_by_resource_ids_counts_only_those_resources_cost(aws_env, fleet):
    idle = fleet.of("aws", "ec2")[1]
    query = UsageQuery(
        cloud_provider="aws",
        start_time=START,
        end_time=END,
        resource_ids=[idle.resource_id],
        metric_names=["CPUUtilization"],
        group_by=["resource"],
        max_results=3,
    )
    summary = get_usage_factory().get_usage_summary(query)
    truth = sum(
        line.billed_cost for d in DAYS for line in fleet.cost_lines("aws", d) if line.resource_id == idle.resource_id
    )
    assert summary.total_resources == 1 and summary.total_cost == truth
    assert summary.resources[0].avg_cpu_utilization < 5  # idle on purpose
    assert {m.metric_name for m in summary.resources[0].metrics} == {"CPUUtilization"}
    assert len(summary.records) == 3 and any("max_results=3" in n for n in summary.notes)
    assert {r.resource_id for r in summary.records} == {idle.resource_id}


def test_summary_tag_filter_on_aws_matches_nothing_and_says_why(aws_env):
    query = UsageQuery(cloud_provider="aws", start_time=START, end_time=END, tags={"team": "data"})
    summary = get_usage_factory().get_usage_summary(query)
    assert summary.total_resources == 0 and summary.total_cost == 0
    assert any("no resource tags" in n for n in summary.notes)


def test_azure_summary_keeps_currencies_apart(azure_env, fleet):
    query = UsageQuery(cloud_provider="azure", start_time=START, end_time=END, resource_types=["virtual_machine"])
    summary = get_usage_factory().get_usage_summary(query)
    truth: dict[str, Decimal] = {}
    for d in DAYS:
        for line in fleet.cost_lines("azure", d):
            if "/virtualmachines/" in (line.resource_id or "").lower():
                truth[line.currency] = truth.get(line.currency, Decimal(0)) + line.billed_cost
    assert set(truth) == {"USD", "EUR"}
    assert summary.costs_by_currency == truth
    assert summary.total_cost is None and summary.currency is None
    assert summary.average_cost_per_resource is None
    assert summary.total_resources == len(fleet.of("azure", "virtual_machine"))


def test_disabled_cloud_gives_none_and_a_warning(caplog):
    factory = get_usage_factory()
    assert factory.is_available("aws") is False
    with caplog.at_level(logging.WARNING, logger="finops_pipeline.usage"):
        assert factory.get_cost_usage("aws", START, END) is None
        assert factory.get_resource_usage("aws", "i-1", "ec2", START, END) is None
        assert factory.get_usage_summary(UsageQuery(cloud_provider="aws", start_time=START, end_time=END)) is None
    assert "AWS_USAGE_ENABLED is not true" in caplog.text
    assert caplog.messages[1:] == [
        f"{method}: aws usage is disabled: AWS_USAGE_ENABLED is not true; returning None"
        for method in ("get_resource_usage", "get_usage_summary")
    ]


def test_usage_integration_switched_off_gives_none_for_every_cloud_and_says_which_setting(aws_env, monkeypatch, caplog):
    monkeypatch.setenv("USAGE_INTEGRATION_ENABLED", "false")
    factory = get_usage_factory()
    assert [factory.is_available(p) for p in ("aws", "gcp", "azure")] == [False, False, False]
    with caplog.at_level(logging.WARNING, logger="finops_pipeline.usage"):
        assert factory.get_resource_usage("aws", "i-1", "ec2", START, END) is None
        assert factory.get_cost_usage("aws", START, END) is None
        assert factory.get_usage_summary(UsageQuery(cloud_provider="aws", start_time=START, end_time=END)) is None
        # The warehouse answers without the cloud, but not when the whole integration is off.
        assert factory.get_cost_usage("aws", START, END, source="warehouse") is None
    assert caplog.messages == [
        f"{method}: usage integration is disabled (USAGE_INTEGRATION_ENABLED is false); returning None"
        for method in ("get_resource_usage", "get_cost_usage", "get_usage_summary", "get_cost_usage")
    ]


def test_missing_azure_subscription_gives_none_and_names_the_setting(monkeypatch, caplog):
    monkeypatch.setenv("AZURE_USAGE_ENABLED", "true")
    with caplog.at_level(logging.WARNING, logger="finops_pipeline.usage"):
        assert get_usage_factory().get_cost_usage("azure", START, END) is None
    assert "set AZURE_SUBSCRIPTION_ID" in caplog.text


def test_availability_is_cached_not_rechecked(aws_env, monkeypatch):
    factory = UsageFactory(get_settings())
    assert factory.is_available("aws")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert factory.is_available("aws")  # the cached answer, no new lookup
    assert not UsageFactory(get_settings()).is_available("aws")  # a fresh check sees no credentials


class _DeniedCostExplorer(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"__type": "AccessDeniedException", "message": "not authorized"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_api_error_gives_none_and_an_error_log_naming_the_fix(aws_env, monkeypatch, caplog):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DeniedCostExplorer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", f"http://127.0.0.1:{server.server_address[1]}")
        with caplog.at_level(logging.ERROR, logger="finops_pipeline.usage"):
            assert get_aws_usage_adapter().get_cost_usage(START, END) is None
        assert "ce:GetCostAndUsage" in caplog.text
        assert aws_env["AWS_SECRET_ACCESS_KEY"] not in caplog.text
    finally:
        server.shutdown()
        server.server_close()


def test_direct_adapter_rejects_another_clouds_query(aws_env):
    query = UsageQuery(cloud_provider="gcp", start_time=START, end_time=END)
    with pytest.raises(ValueError, match="use get_usage_factory"):
        get_aws_usage_adapter().get_usage_summary(query)


def test_warehouse_source_answers_without_the_cloud(aws_lake, aws_env, monkeypatch, fleet):
    from .conftest import LAKE_START

    start = day(LAKE_START)
    api = UsageFactory(get_settings()).get_cost_usage("aws", start, END, group_by=["service"])
    monkeypatch.setenv("FINOPS_DATA_DIR", str(aws_lake))
    # Point every AWS endpoint at a closed port: any API call would fail.
    for name in ("AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_COST_EXPLORER"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    factory = UsageFactory(get_settings())
    stored = factory.get_cost_usage("aws", start, END, group_by=["service"], source="warehouse")
    assert [(r.start_time, r.service, r.cost) for r in stored] == [(r.start_time, r.service, r.cost) for r in api]
    ec2 = fleet.of("aws", "ec2")[0]
    usage = factory.get_resource_usage("aws", ec2.resource_id, "ec2", start, END, source="warehouse")
    truth = [
        v
        for d in (LAKE_START, LAKE_START + timedelta(days=1), LAKE_START + timedelta(days=2))
        for v in fleet.hourly(ec2, "cpu_utilization_pct", d).avg
    ]
    assert usage.avg_cpu_utilization == pytest.approx(fmean(truth), rel=1e-9)
    assert factory.adapter("aws")._bulk is None  # no cloud adapter was even built


def test_gcp_summary_selects_by_label_and_accepts_the_documented_gke_type(gcp_env, fleet):
    factory = get_usage_factory()
    query = UsageQuery(
        cloud_provider="gcp", start_time=START, end_time=END, tags={"team": "data"}, group_by=["project"]
    )
    summary = factory.get_usage_summary(query)
    labelled = {r.resource_id for r in fleet.of("gcp") if r.tags.get("team") == "data"}
    truth = sum(line.billed_cost for d in DAYS for line in fleet.cost_lines("gcp", d) if line.resource_id in labelled)
    assert summary is not None and summary.total_cost == pytest.approx(truth, abs=Decimal("0.0001"))
    assert {r.resource_id for r in summary.resources} == labelled and summary.total_resources == len(labelled) == 4
    assert {r.dimensions["project"] for r in summary.records} <= {"shop-prod", "shop-analytics"}
    gke = fleet.of("gcp", "k8s_container")[0]
    usage = factory.get_resource_usage("gcp", gke.resource_id, "gke_container", START, END)
    assert usage.resource_type == "k8s_container" and usage.metrics


def test_a_gcp_vm_is_found_by_its_name_as_well_as_its_numeric_id(gcp_env, fleet):
    factory = get_usage_factory()
    vm = fleet.of("gcp", "gce_instance")[0]
    by_name = factory.get_resource_usage("gcp", vm.name, "gce_instance", START, END)
    by_id = factory.get_resource_usage("gcp", vm.resource_id, "gce_instance", START, END)
    assert by_name.metrics and len(by_name.metrics) == len(by_id.metrics)
    assert by_name.avg_cpu_utilization == pytest.approx(by_id.avg_cpu_utilization)


def test_a_missing_sdk_gives_none_and_the_install_command_not_an_import_error(aws_env, monkeypatch, caplog):
    """boto3 absent (a trimmed install): the documented None and warning naming the fix, while
    arguments are still checked against the AWS resource types."""
    monkeypatch.setitem(sys.modules, "boto3", None)  # what an absent package raises on import
    # A process without boto3 has never imported the AWS adapter; this one has: forget it here.
    monkeypatch.delitem(sys.modules, "finops_pipeline.clouds.aws.source")
    factory = UsageFactory(get_settings())
    assert factory.is_available("aws") is False
    with caplog.at_level(logging.WARNING, logger="finops_pipeline.usage"):
        assert factory.get_resource_usage("aws", "i-1", "ec2", START, END) is None
        assert factory.get_cost_usage("aws", START, END) is None
    assert caplog.messages == [
        "get_resource_usage: aws SDK is not installed: pip install boto3; returning None",
        "get_cost_usage: aws SDK is not installed: pip install boto3; returning None",
    ]
    with pytest.raises(ValueError, match="unknown aws resource type 'vm': pass one of alb, dynamodb, ec2"):
        factory.get_resource_usage("aws", "i-1", "vm", START, END)


def test_a_summary_query_may_be_a_dict_of_its_fields(aws_env, fleet):
    idle = fleet.of("aws", "ec2")[1]
    fields = {"cloud_provider": "aws", "start_time": START, "end_time": END, "resource_ids": [idle.resource_id]}
    truth = sum(
        line.billed_cost for d in DAYS for line in fleet.cost_lines("aws", d) if line.resource_id == idle.resource_id
    )
    from_factory = UsageFactory(get_settings()).get_usage_summary(fields)
    from_adapter = UsageFactory(get_settings()).adapter("aws").get_usage_summary(fields)
    for summary in (from_factory, from_adapter):
        assert summary.total_resources == 1 and summary.resources[0].resource_id == idle.resource_id
        assert summary.total_cost == truth and summary.costs_by_currency == {"USD": truth}


def test_summary_by_resource_leaves_out_days_older_than_cost_explorers_14_days_and_says_so(aws_env, fleet):
    """Cost Explorer serves resource-level cost for the last 14 days only (its double refuses an
    older start): of [today-20, today-10), the 7 days before today-13 have no line of the instance."""
    idle = fleet.of("aws", "ec2")[1]
    start, end = day(TODAY - timedelta(days=20)), day(TODAY - timedelta(days=10))
    summary = UsageFactory(get_settings()).get_usage_summary(
        UsageQuery(cloud_provider="aws", start_time=start, end_time=end, resource_ids=[idle.resource_id])
    )
    kept = [TODAY - timedelta(days=i) for i in (13, 12, 11)]
    truth = sum(
        line.billed_cost for d in kept for line in fleet.cost_lines("aws", d) if line.resource_id == idle.resource_id
    )
    assert truth > 0 and summary.total_cost == truth
    assert (
        "7 day(s) have no resource-level billing data; their cost is not included (AWS Cost Explorer "
        "has resource-level data only where 'Hourly and resource-level data' is enabled, for the last 14 days)"
    ) in summary.notes
    assert summary.data_completeness <= 3 / 10 and summary.confidence is Confidence.LOW


def test_group_by_may_be_one_string_and_a_repeated_dimension_counts_once(aws_env):
    factory = UsageFactory(get_settings())
    one = factory.get_cost_usage("aws", START, END, group_by="Service")
    repeated = factory.get_cost_usage("aws", START, END, group_by=["service", "SERVICE"], use_cache=False)
    listed = factory.get_cost_usage("aws", START, END, group_by=["service"], use_cache=False)
    assert [r.model_dump() for r in one] == [r.model_dump() for r in listed] == [r.model_dump() for r in repeated]
    assert {tuple(r.dimensions) for r in one} == {("service",)}
    assert "AWS Lambda" in {r.service for r in one}


def test_warehouse_answer_keeps_to_the_asked_type_when_two_resources_share_a_name(tmp_path, monkeypatch):
    """A Lambda function and a DynamoDB table may both be called "orders" (CloudWatch keeps them
    apart by namespace); the lake holds both under the same resource_id. metrics_hourly's
    statistics are nullable: an hour whose sum is NULL is no data."""
    import pyarrow as pa

    from finops_pipeline.warehouse.lake import Lake
    from finops_pipeline.warehouse.schemas import METRICS_HOURLY

    monkeypatch.setenv("FINOPS_DATA_DIR", str(tmp_path))
    h0 = day(TODAY - timedelta(days=2))
    h1 = h0 + timedelta(hours=1)
    rows = [  # (type, native, canonical, hour, sum)
        ("lambda", "Invocations", "invocations", h0, 5.0),
        ("dynamodb", "ConsumedReadCapacityUnits", "read_capacity_units", h0, 7.0),
        ("dynamodb", "ConsumedReadCapacityUnits", "read_capacity_units", h1, 9.0),
        ("dynamodb", "ConsumedWriteCapacityUnits", "write_capacity_units", h0, 2.0),
        ("dynamodb", "ConsumedWriteCapacityUnits", "write_capacity_units", h1, None),
    ]
    table = pa.table(
        {
            "provider": ["aws"] * len(rows),
            "usage_date": [h0.date()] * len(rows),
            "hour_start": [r[3] for r in rows],
            "resource_id": ["orders"] * len(rows),
            "resource_type": [r[0] for r in rows],
            "region": ["us-east-1"] * len(rows),
            "metric": [r[2] for r in rows],
            "native_metric": [r[1] for r in rows],
            "unit": ["Count"] * len(rows),
            "sum": [r[4] for r in rows],
            "ingested_at": [h1] * len(rows),
        }
    )
    Lake(get_settings().lake_root).write_partitions(METRICS_HOURLY.name, table)
    factory = UsageFactory(get_settings())
    start, end = h0, h0 + timedelta(days=1)

    table_usage = factory.get_resource_usage("aws", "orders", "dynamodb", start, end, source="warehouse")
    assert [(m.metric_name, m.timestamp, m.value) for m in table_usage.metrics] == [
        ("ConsumedReadCapacityUnits", h0, 7.0),
        ("ConsumedReadCapacityUnits", h1, 9.0),
        ("ConsumedWriteCapacityUnits", h0, 2.0),
    ]
    assert table_usage.hours_with_data == 2 and table_usage.region == "us-east-1"
    function = factory.get_resource_usage("aws", "orders", "lambda", start, end, source="warehouse")
    assert [(m.metric_name, m.timestamp, m.value) for m in function.metrics] == [("Invocations", h0, 5.0)]
    assert function.hours_with_data == 1


def test_summary_by_resource_without_resource_level_data_enabled_names_the_setting(aws_env, fleet, monkeypatch):
    """An account that never enabled Cost Explorer's "Hourly and resource-level data" (an opt-in)
    has no resource-level line on any day: the note must not blame the 14-day limit alone."""
    from finops_pipeline.simulator.aws import CostExplorerDouble

    ce = CostExplorerDouble(fleet, resource_level_opt_in=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", ce.start())
    try:
        idle = fleet.of("aws", "ec2")[1]
        summary = UsageFactory(get_settings()).get_usage_summary(
            UsageQuery(cloud_provider="aws", start_time=START, end_time=END, resource_ids=[idle.resource_id])
        )
    finally:
        ce.stop()
    assert summary.total_cost == 0 and summary.costs_by_currency == {}
    assert summary.notes == [
        "7 day(s) have no resource-level billing data; their cost is not included (AWS Cost Explorer "
        "has resource-level data only where 'Hourly and resource-level data' is enabled, for the last 14 days)"
    ]
