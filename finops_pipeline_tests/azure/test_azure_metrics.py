"""Azure Monitor metrics through the real SDK and credential, answered at the HTTP layer."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest
import responses
from azure.core.exceptions import ServiceRequestError
from responses import matchers

from finops_pipeline.adapters.usage.azure import AzureUsageAdapter
from finops_pipeline.adapters.usage.base import CloudApiError, ResourceRef
from finops_pipeline.settings import SettingsError

DAY = date(2026, 1, 6)
START = datetime(2026, 1, 6, tzinfo=timezone.utc)
END = START + timedelta(days=1)
METRICS_URL = re.compile(r"https://management\.azure\.com/subscriptions/.+/providers/Microsoft\.Insights/metrics.*",
                         re.IGNORECASE)
VM = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-finops/providers/Microsoft.Compute/virtualMachines/vm1"


def _rows(adapter, **kwargs) -> list[dict]:
    pages = list(adapter.iter_metric_frames(START, END, **kwargs))
    return pa.concat_tables(pages).to_pylist() if pages else []


def _assert_rows_match_fleet(rows: list[dict], fleet) -> None:
    """Every fleet value is in a row (gauges avg/max/min, counters sum); idle counter hours,
    which Azure sends as bare timestamps, are rows of 0."""
    got = {(r["resource_id"], r["metric"], r["hour_start"]): r for r in rows}
    expected_keys, idle = set(), 0
    for resource in fleet.of("azure"):
        for spec in AzureUsageAdapter.METRICS[resource.resource_type]:
            truth = fleet.hourly(resource, spec.canonical, DAY)
            for h, hour in enumerate(truth.hour_starts):
                key = (resource.resource_id.lower(), spec.canonical, hour)
                row = got[key]
                expected_keys.add(key)
                if spec.kind == "counter" and truth.sum[h] == 0:
                    assert row["sum"] == 0.0 and row["sample_count"] is None
                    idle += 1
                    continue
                if spec.kind == "counter":
                    assert row["sum"] == pytest.approx(truth.sum[h], rel=1e-9)
                else:
                    assert row["avg"] == pytest.approx(truth.avg[h], rel=1e-9)
                    assert row["max"] == pytest.approx(truth.max[h], rel=1e-9)
                    assert row["min"] == pytest.approx(truth.min[h], rel=1e-9)
                assert row["sample_count"] == truth.sample_count[h]
                assert row["region"] == resource.region and row["sub_account_id"] == resource.sub_account_id
                assert row["resource_type"] == resource.resource_type and row["native_metric"] == spec.native
                assert row["usage_date"] == DAY
    assert idle > 0  # the idle resources really had bare hours
    assert set(got) == expected_keys and len(rows) == len(got)


def test_metric_rows_equal_the_fleets_hourly_values_and_idle_counts_are_zero(arm, fleet, make_adapter):
    adapter = make_adapter()
    _assert_rows_match_fleet(_rows(adapter), fleet)

    # One call per resource, all of its metrics at once, hourly.
    metric_calls = [c for c in arm.calls if METRICS_URL.match(c.request.url)]
    assert len(metric_calls) == len(fleet.of("azure")) == adapter.api.calls["monitor.metrics.list"]
    for call in metric_calls:
        query = parse_qs(urlsplit(call.request.url).query)
        assert query["interval"] == ["PT1H"]
        assert query["timespan"] == ["2026-01-06T00:00:00Z/2026-01-07T00:00:00Z"]
    assert adapter.api.estimated_cost_usd > 0


def test_resources_sharing_subscription_region_and_type_go_in_one_call(arm, api, make_adapter):
    from finops_pipeline.simulator.fleet import build_fleet

    api.fleet = big = build_fleet(scale=3)  # 30 Azure resources, 2-3 per subscription x region x type
    adapter = make_adapter()
    _assert_rows_match_fleet(_rows(adapter), big)

    groups = {(r.sub_account_id, r.region, r.resource_type) for r in big.of("azure")}
    calls = adapter.api.calls
    assert calls["monitor.metrics.list_at_subscription_scope"] + calls["monitor.metrics.list"] == len(groups) < 30
    batch_calls = [c for c in arm.calls if "/metrics?" in c.request.url and "region=" in c.request.url]
    assert batch_calls and all("interval=PT1H" in c.request.url for c in batch_calls)


def test_bare_timestamps_are_gaps_for_gauges_and_zero_for_counts(entra, make_adapter):
    stamps = [f"2026-01-06T{h:02d}:00:00Z" for h in range(4)]
    entra.get(METRICS_URL, json={"timespan": "x", "interval": "PT1H", "resourceregion": "eastus", "value": [
        {"id": "m1", "type": "Microsoft.Insights/metrics", "unit": "Percent",
         "name": {"value": "Percentage CPU", "localizedValue": "Percentage CPU"},
         "timeseries": [{"data": [
             {"timeStamp": stamps[0], "average": 12.5, "maximum": 20.0, "minimum": 3.0, "count": 60},
             {"timeStamp": stamps[1]},
             {"timeStamp": stamps[2], "average": None, "maximum": None},
             {"timeStamp": stamps[3], "average": 0.0, "maximum": 0.0, "minimum": 0.0, "count": 60},
         ]}]},
        {"id": "m2", "type": "Microsoft.Insights/metrics", "unit": "Bytes",
         "name": {"value": "Network In Total", "localizedValue": "Network In Total"},
         "timeseries": [{"data": [{"timeStamp": s} for s in stamps]}]},
    ]})
    rows = _rows(make_adapter(), resources=[ResourceRef(VM, "virtual_machine", None, None)])
    by_hour = {r["hour_start"].hour: r for r in rows if r["metric"] == "cpu_utilization_pct"}
    assert sorted(by_hour) == [0, 3]  # CPU not measured in hours 1 and 2: gaps, not 0%
    assert by_hour[0]["avg"] == 12.5 and by_hour[0]["sum"] is None
    assert by_hour[3]["avg"] == 0.0  # a measured zero is kept
    assert by_hour[0]["resource_id"] == VM.lower() and by_hour[0]["region"] == "eastus"
    # Bytes received is a count: nothing emitted in an hour means nothing received.
    network = sorted((r["hour_start"].hour, r["sum"]) for r in rows if r["metric"] == "network_in_bytes")
    assert network == [(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0)]


def test_interval_matcher_accepts_pt1h_and_catches_a_timedelta_sent_as_interval(entra, api, metrics_answer,
                                                                                make_adapter):
    entra.add_callback(responses.GET, METRICS_URL, callback=metrics_answer, content_type="application/json",
                       match=[matchers.query_param_matcher({"interval": "PT1H"}, strict_match=False)])
    adapter = make_adapter()
    resource = api.fleet.of("azure", "virtual_machine")[0]
    rows = _rows(adapter, resources=[ResourceRef(resource.resource_id, "virtual_machine", None, None)])
    assert len(rows) == 24 * 6

    # The matcher can fail: the same call with str(timedelta) as interval is not answered.
    with pytest.raises(ServiceRequestError, match="match"):
        adapter.monitor_client.metrics.list(resource.resource_id, timespan="2026-01-06T00:00:00Z/2026-01-07T00:00:00Z",
                                            interval=str(timedelta(hours=1)), metricnames="Percentage CPU")


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


def test_metrics_403_names_monitoring_reader_and_the_resource(entra, make_adapter):
    entra.get(METRICS_URL, status=403, json={"error": {"code": "AuthorizationFailed", "message": "no"}})
    with pytest.raises(CloudApiError) as raised:
        _rows(make_adapter(), resources=[ResourceRef(VM, "virtual_machine", None, None)])
    assert "Monitoring Reader" in str(raised.value) and VM.lower() in str(raised.value)


def test_listed_resources_are_fetched_even_without_cost(arm, api, fleet, make_adapter):
    extra = fleet.of("azure", "storage_account")[0].resource_id
    adapter = make_adapter(resource_ids=[extra])
    adapter.subscription_ids = ("00000000-0000-4000-8000-000000000002",)  # not the extra's subscription
    rows = _rows(adapter)
    assert extra.lower() in {r["resource_id"] for r in rows}
    assert {r["sub_account_id"] for r in rows} == {"00000000-0000-4000-8000-000000000001",
                                                   "00000000-0000-4000-8000-000000000002"}


def test_unsupported_listed_resource_is_a_configuration_error(arm, make_adapter):
    disk = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d1"
    with pytest.raises(SettingsError, match="AZURE_RESOURCE_IDS=.*supported resource types"):
        _rows(make_adapter(resource_ids=[disk]))
