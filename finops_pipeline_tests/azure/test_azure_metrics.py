"""Azure Monitor metrics through the real SDK and credential, answered at the HTTP layer."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest
import responses
from azure.core.exceptions import ServiceRequestError
from responses import matchers

from finops_pipeline.clouds.base import CloudApiError, ResourceRef
from finops_pipeline.settings import SettingsError

from .conftest import METRICS_URL

DAY = date(2026, 1, 6)
START = datetime(2026, 1, 6, tzinfo=timezone.utc)
END = START + timedelta(days=1)
VM = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-finops/providers/Microsoft.Compute/virtualMachines/vm1"
# What each resource type must land as (native name in Azure Monitor -> canonical metric, kind), written
# from the "Supported metrics" pages of Azure Monitor, not read from the adapter.
EXPECTED_METRICS = {
    "virtual_machine": [
        ("Percentage CPU", "cpu_utilization_pct", "gauge"),
        ("Network In Total", "network_in_bytes", "counter"),
        ("Network Out Total", "network_out_bytes", "counter"),
        ("Disk Read Bytes", "disk_read_bytes", "counter"),
        ("Disk Write Bytes", "disk_write_bytes", "counter"),
        ("Available Memory Bytes", "memory_available_bytes", "gauge"),
    ],
    "sql_database": [
        ("cpu_percent", "cpu_utilization_pct", "gauge"),
        ("connection_successful", "connections", "counter"),
        ("storage_percent", "storage_pct", "gauge"),
    ],
    "storage_account": [
        ("Transactions", "requests", "counter"),
        ("UsedCapacity", "storage_bytes", "gauge"),
        ("Availability", "availability_pct", "gauge"),
    ],
    "app_service": [
        ("CpuTime", "cpu_seconds", "counter"),
        ("Requests", "requests", "counter"),
        ("HttpResponseTime", "response_time_ms", "gauge"),
    ],
}


def _rows(adapter, **kwargs) -> list[dict]:
    pages = list(adapter.iter_metric_frames(START, END, **kwargs))
    return pa.concat_tables(pages).to_pylist() if pages else []


def _assert_rows_match_fleet(rows: list[dict], fleet) -> None:
    """Every fleet value is in a row (gauges avg/max/min, counters sum); idle counter hours,
    which Azure sends as bare timestamps, are rows of 0."""
    got = {(r["resource_id"], r["metric"], r["hour_start"]): r for r in rows}
    expected_keys, idle = set(), 0
    for resource in fleet.of("azure"):
        for native, canonical, kind in EXPECTED_METRICS[resource.resource_type]:
            truth = fleet.hourly(resource, canonical, DAY)
            for h, hour in enumerate(truth.hour_starts):
                key = (resource.resource_id.lower(), canonical, hour)
                row = got[key]
                expected_keys.add(key)
                assert row["native_metric"] == native
                if kind == "counter" and truth.sum[h] == 0:
                    assert row["sum"] == 0.0 and row["sample_count"] is None
                    idle += 1
                    continue
                if kind == "counter":
                    assert row["sum"] == pytest.approx(truth.sum[h], rel=1e-9)
                else:
                    assert row["avg"] == pytest.approx(truth.avg[h], rel=1e-9)
                    assert row["max"] == pytest.approx(truth.max[h], rel=1e-9)
                    assert row["min"] == pytest.approx(truth.min[h], rel=1e-9)
                assert row["sample_count"] == truth.sample_count[h]
                assert row["region"] == resource.region and row["sub_account_id"] == resource.sub_account_id
                assert row["resource_type"] == resource.resource_type
                assert row["usage_date"] == DAY
    assert idle > 0  # the idle resources really had bare hours
    assert set(got) == expected_keys and len(rows) == len(got)


def test_metric_rows_equal_the_fleets_hourly_values_and_idle_counts_are_zero(arm, fleet, make_adapter):
    adapter = make_adapter()
    _assert_rows_match_fleet(_rows(adapter), fleet)

    # One subscription-scope POST per subscription x region x type (each holds one resource here),
    # all of its metrics at once, hourly; the parameters travel in the body.
    metric_calls = [c for c in arm.calls if METRICS_URL.match(c.request.url)]
    assert len(metric_calls) == 10 == adapter.api.calls["monitor.metrics.list_at_subscription_scope_post"]
    for call in metric_calls:
        assert call.request.method == "POST"
        assert set(parse_qs(urlsplit(call.request.url).query)) == {"api-version", "region"}
        body = json.loads(call.request.body)
        assert body["interval"] == "PT1H" and body["timespan"] == "2026-01-06T00:00:00Z/2026-01-07T00:00:00Z"
        assert body["filter"].startswith("Microsoft.ResourceId eq '/subscriptions/")
    assert adapter.api.estimated_cost_usd == Decimal("0.0001")  # 10 calls at $0.01 per 1,000


def test_resources_sharing_subscription_region_and_type_go_in_one_call(arm, api, make_adapter):
    from finops_pipeline.simulator.fleet import build_fleet

    api.fleet = big = build_fleet(scale=3)  # 30 Azure resources, 2-3 per subscription x region x type
    adapter = make_adapter()
    _assert_rows_match_fleet(_rows(adapter), big)

    groups = {(r.sub_account_id, r.region, r.resource_type) for r in big.of("azure")}
    calls = adapter.api.calls
    assert calls["monitor.metrics.list_at_subscription_scope_post"] == len(groups) == 16
    assert "monitor.metrics.list" not in calls
    batch_calls = [c for c in arm.calls if "/metrics?" in c.request.url and "region=" in c.request.url]
    assert len(batch_calls) == 16 and all(json.loads(c.request.body)["interval"] == "PT1H" for c in batch_calls)


def test_bare_timestamps_are_gaps_for_gauges_and_zero_for_counts(entra, make_adapter):
    stamps = [f"2026-01-06T{h:02d}:00:00Z" for h in range(4)]
    entra.get(
        METRICS_URL,
        json={
            "timespan": "x",
            "interval": "PT1H",
            "resourceregion": "eastus",
            "value": [
                {
                    "id": "m1",
                    "type": "Microsoft.Insights/metrics",
                    "unit": "Percent",
                    "name": {"value": "Percentage CPU", "localizedValue": "Percentage CPU"},
                    "timeseries": [
                        {
                            "data": [
                                {"timeStamp": stamps[0], "average": 12.5, "maximum": 20.0, "minimum": 3.0, "count": 60},
                                {"timeStamp": stamps[1]},
                                {"timeStamp": stamps[2], "average": None, "maximum": None},
                                {"timeStamp": stamps[3], "average": 0.0, "maximum": 0.0, "minimum": 0.0, "count": 60},
                            ]
                        }
                    ],
                },
                {
                    "id": "m2",
                    "type": "Microsoft.Insights/metrics",
                    "unit": "Bytes",
                    "name": {"value": "Network In Total", "localizedValue": "Network In Total"},
                    "timeseries": [{"data": [{"timeStamp": s} for s in stamps]}],
                },
            ],
        },
    )
    rows = _rows(make_adapter(), resources=[ResourceRef(VM, "virtual_machine", None, None)])
    by_hour = {r["hour_start"].hour: r for r in rows if r["metric"] == "cpu_utilization_pct"}
    assert sorted(by_hour) == [0, 3]  # CPU not measured in hours 1 and 2: gaps, not 0%
    assert by_hour[0]["avg"] == 12.5 and by_hour[0]["sum"] is None
    assert by_hour[3]["avg"] == 0.0  # a measured zero is kept
    assert by_hour[0]["resource_id"] == VM.lower() and by_hour[0]["region"] == "eastus"
    # Bytes received is a count: nothing emitted in an hour means nothing received.
    network = sorted((r["hour_start"].hour, r["sum"]) for r in rows if r["metric"] == "network_in_bytes")
    assert network == [(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0)]


def test_interval_matcher_accepts_pt1h_and_catches_a_timedelta_sent_as_interval(
    entra, api, metrics_answer, make_adapter
):
    entra.add_callback(
        responses.GET,
        METRICS_URL,
        callback=metrics_answer,
        content_type="application/json",
        match=[matchers.query_param_matcher({"interval": "PT1H"}, strict_match=False)],
    )
    adapter = make_adapter()
    resource = api.fleet.of("azure", "virtual_machine")[0]
    rows = _rows(adapter, resources=[ResourceRef(resource.resource_id, "virtual_machine", None, None)])
    assert len(rows) == 24 * 6

    # The matcher can fail: the same call with str(timedelta) as interval is not answered.
    with pytest.raises(ServiceRequestError, match="match"):
        adapter.monitor_client.metrics.list(
            resource.resource_id,
            timespan="2026-01-06T00:00:00Z/2026-01-07T00:00:00Z",
            interval=str(timedelta(hours=1)),
            metricnames="Percentage CPU",
        )


def test_monitor_429_waits_retry_after_then_succeeds(entra, metrics_answer, make_adapter, waits):
    pending = [{"Retry-After": "7"}]

    def answer(request):
        if pending:
            return 429, pending.pop(), json.dumps({"error": {"code": "TooManyRequests", "message": "x"}})
        return metrics_answer(request)

    entra.add_callback(responses.GET, METRICS_URL, callback=answer, content_type="application/json")
    adapter = make_adapter()
    rows = _rows(adapter, resources=[ResourceRef(VM, "virtual_machine", None, None)], metrics=["cpu_utilization_pct"])
    assert waits == [7.0] and adapter.api.retries == 1
    assert rows == []  # vm1 is not in the fleet: the double answers 404 and the resource is skipped
    assert adapter.api.notes["monitor_resources_not_found"] == "1"


def test_paced_429_holds_the_subscriptions_read_quota_and_counts_what_azure_says_is_left(
    entra, metrics_answer, make_adapter, waits, tmp_path
):
    # ARM's throttle: 429 with Retry-After and the subscription's remaining reads
    # (request-limits-and-throttling, "Remaining requests" / "Error code").
    pending = [{"Retry-After": "1", "x-ms-ratelimit-remaining-subscription-reads": "0"}]

    def answer(request):
        if pending:
            return 429, pending.pop(), json.dumps({"error": {"code": "TooManyRequests", "message": "x"}})
        return metrics_answer(request)

    entra.add_callback(responses.GET, METRICS_URL, callback=answer, content_type="application/json")
    adapter = make_adapter(FINOPS_PACING_ENABLED="true", FINOPS_DATA_DIR=str(tmp_path))
    began = time.time()
    _rows(adapter, resources=[ResourceRef(VM, "virtual_machine", None, None)], metrics=["cpu_utilization_pct"])
    assert time.time() - began >= 1.0  # the quota held every caller for the advertised second
    assert waits == [] and adapter.waits == [1.0] and adapter.api.retries == 1
    state = json.loads((tmp_path / "pacing" / f"azure-arm-reads-{VM.split('/')[2]}.json").read_text())
    # Our attempt and 24 calls of others (Azure said 0 of 25 left) filled the window; the retry
    # went after the hold, and the log keeps the last 25 (older ones cannot bind).
    sent = [t / 1e6 for t in state["sent_us"]]  # send times in microseconds
    assert len(sent) == 25 and max(sent) >= state["hold_until"] >= began + 1.0


def test_metrics_403_names_monitoring_reader_and_the_resource(entra, make_adapter):
    entra.get(METRICS_URL, status=403, json={"error": {"code": "AuthorizationFailed", "message": "no"}})
    with pytest.raises(CloudApiError) as raised:
        _rows(make_adapter(), resources=[ResourceRef(VM, "virtual_machine", None, None)])
    assert "Monitoring Reader" in str(raised.value) and VM.lower() in str(raised.value)


def test_listed_resources_are_fetched_even_without_cost(arm, api, fleet, make_adapter):
    extra = fleet.of("azure", "storage_account")[0].resource_id
    # Only the second subscription is read, the listed resource is in the first.
    adapter = make_adapter(AZURE_SUBSCRIPTION_IDS="00000000-0000-4000-8000-000000000002", AZURE_RESOURCE_IDS=extra)
    rows = _rows(adapter)
    assert extra.lower() in {r["resource_id"] for r in rows}
    assert {r["sub_account_id"] for r in rows} == {
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    }


def test_unsupported_listed_resource_is_a_configuration_error(arm, make_adapter):
    disk = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d1"
    with pytest.raises(SettingsError, match="AZURE_RESOURCE_IDS=.*supported resource types"):
        _rows(make_adapter(AZURE_RESOURCE_IDS=disk))


def test_fifty_resources_go_in_one_query_whose_filter_travels_in_a_post_body(arm, api, make_adapter):
    from finops_pipeline.simulator.fleet import build_fleet

    api.fleet = big = build_fleet(scale=50)
    sub = "00000000-0000-4000-8000-000000000001"
    vms = [r for r in big.of("azure", "virtual_machine") if r.sub_account_id == sub and r.region == "eastus"]
    assert len(vms) == 50
    adapter = make_adapter()
    rows = _rows(adapter, resources=[ResourceRef(r.resource_id, "virtual_machine", "eastus", sub) for r in vms])

    assert len(rows) == 50 * 6 * 24  # every VM, metric and hour
    (call,) = [c for c in arm.calls if METRICS_URL.match(c.request.url)]
    assert call.request.method == "POST" and len(call.request.url) < 300
    body = json.loads(call.request.body)
    assert body["filter"].count("Microsoft.ResourceId eq ") == 50 and body["top"] == 50
    assert len(body["filter"]) > 2048  # as a query string this URL would be refused


def test_a_resource_without_series_in_a_batch_answer_reads_zero_for_counters_and_gaps_for_gauges(entra, make_adapter):
    db = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.sql/servers/srv/databases/{}"
    busy, idle = db.format("busy"), db.format("idle")
    stamps = [f"2026-01-06T{h:02d}:00:00Z" for h in range(24)]
    split = [{"name": {"value": "Microsoft.ResourceId"}, "value": busy}]

    def metric(name, points):
        return {
            "id": f"/subscriptions/s1/providers/Microsoft.Insights/metrics/{name}",
            "type": "Microsoft.Insights/metrics",
            "name": {"value": name, "localizedValue": name},
            "unit": "Count",
            "timeseries": [{"metadatavalues": split, "data": points}],
        }

    # Only the busy database has series (Azure Monitor splits by the dimension values in the data).
    entra.post(
        METRICS_URL,
        json={
            "timespan": "x",
            "interval": "PT1H",
            "resourceregion": "eastus",
            "value": [
                metric(
                    "cpu_percent",
                    [{"timeStamp": t, "average": 40.0, "maximum": 50.0, "minimum": 30.0, "count": 60} for t in stamps],
                ),
                metric("connection_successful", [{"timeStamp": t, "total": 7.0, "count": 7} for t in stamps]),
                metric(
                    "storage_percent",
                    [{"timeStamp": t, "average": 12.0, "maximum": 12.0, "minimum": 12.0, "count": 60} for t in stamps],
                ),
            ],
        },
    )
    refs = [ResourceRef(rid, "sql_database", "eastus", "s1") for rid in (busy, idle)]
    rows = _rows(make_adapter(), resources=refs)

    idle_rows = [r for r in rows if r["resource_id"] == idle]
    assert {r["metric"] for r in idle_rows} == {"connections"}  # CPU and storage: gaps, not 0%
    assert sorted(r["hour_start"].hour for r in idle_rows) == list(range(24))
    assert all(r["sum"] == 0.0 and r["region"] == "eastus" and r["sub_account_id"] == "s1" for r in idle_rows)
    busy_rows = [r for r in rows if r["resource_id"] == busy]
    assert len(busy_rows) == 3 * 24 and {r["sum"] for r in busy_rows if r["metric"] == "connections"} == {7.0}


def test_the_double_refuses_what_the_metrics_api_refuses(api, fleet):
    vms = [r.resource_id for r in fleet.of("azure", "virtual_machine")]
    sub_scope = (
        "https://management.azure.com/subscriptions/00000000-0000-4000-8000-000000000001"
        "/providers/Microsoft.Insights/metrics"
    )
    query = "?api-version=2024-02-01&region=eastus&interval=PT1H&timespan=2026-01-06T00:00:00Z/2026-01-07T00:00:00Z"
    long_filter = " or ".join(f"Microsoft.ResourceId eq '{vms[0]}{i}'" for i in range(20))
    status, body = api.metrics_get(sub_scope + query + "&$filter=" + long_filter)
    assert status == 414  # over 2,048 URL characters
    # The same parameter in the query string and the body, or a body at resource scope: 400.
    assert api.metrics_post(sub_scope + query, json.dumps({"interval": "PT1H"}).encode())[0] == 400
    assert (
        api.metrics_post(
            f"https://management.azure.com{vms[0]}/providers/Microsoft.Insights/metrics?api-version=2024-02-01",
            b'{"interval": "PT1H"}',
        )[0]
        == 400
    )
    status, body = api.metrics_post(
        sub_scope + "?api-version=2024-02-01&region=eastus",
        json.dumps(
            {
                "timespan": "2026-01-06T00:00:00Z/2026-01-07T00:00:00Z",
                "interval": "PT1H",
                "metricNames": "Percentage CPU",
                "aggregation": "Average",
                "metricNamespace": "Microsoft.Compute/virtualMachines",
                "filter": f"Microsoft.ResourceId eq '{vms[0]}'",
                "top": 1,
            }
        ).encode(),
    )
    assert status == 200 and len(body["value"][0]["timeseries"]) == 1
