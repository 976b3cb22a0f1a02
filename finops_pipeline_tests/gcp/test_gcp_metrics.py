"""Cloud Monitoring: aligned, reduced ListTimeSeries calls, every page, against the fleet."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import grpc
import pyarrow as pa
import pytest
from google.cloud.monitoring_v3 import Aggregation

from finops_pipeline.clouds.base import CloudApiError, MetricSpec, ResourceRef
from finops_pipeline.simulator.fleet import GCP_PROJECTS, build_fleet
from finops_pipeline.simulator.gcp import BILLING_PROJECT, run_gcp_doubles

from .conftest import DAY, END, START, make_adapter

DAY_START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc)
DAY_END = DAY_START + timedelta(days=1)

# What each fleet resource's rows must be, written from Google's metrics lists (not from the
# adapter's table): (canonical metric, native metric type, kind). The fleet's Cloud SQL
# instances are PostgreSQL, whose connections are postgresql/num_backends.
EXPECTED = {
    "gce_instance": [
        ("cpu_utilization_pct", "compute.googleapis.com/instance/cpu/utilization", "gauge"),
        ("network_in_bytes", "compute.googleapis.com/instance/network/received_bytes_count", "counter"),
        ("network_out_bytes", "compute.googleapis.com/instance/network/sent_bytes_count", "counter"),
        ("disk_read_bytes", "compute.googleapis.com/instance/disk/read_bytes_count", "counter"),
        ("disk_write_bytes", "compute.googleapis.com/instance/disk/write_bytes_count", "counter"),
    ],
    "cloudsql_database": [
        ("cpu_utilization_pct", "cloudsql.googleapis.com/database/cpu/utilization", "gauge"),
        ("memory_utilization_pct", "cloudsql.googleapis.com/database/memory/utilization", "gauge"),
        ("connections", "cloudsql.googleapis.com/database/postgresql/num_backends", "gauge"),
    ],
    "gcs_bucket": [
        ("storage_bytes", "storage.googleapis.com/storage/total_bytes", "gauge"),
        ("requests", "storage.googleapis.com/api/request_count", "counter"),
    ],
    "k8s_container": [
        ("cpu_core_seconds", "kubernetes.io/container/cpu/core_usage_time", "counter"),
        ("memory_used_bytes", "kubernetes.io/container/memory/used_bytes", "gauge"),
    ],
}


def _rows(adapter, **kwargs) -> list[dict]:
    frames = list(adapter.iter_metric_frames(DAY_START, DAY_END, **kwargs))
    return pa.concat_tables(frames).to_pylist() if frames else []


def test_metrics_equal_the_fleet_in_canonical_units(fleet, adapter):
    rows = _rows(adapter)
    got = {(r["resource_id"], r["metric"], r["hour_start"]): r for r in rows}
    assert len(got) == len(rows)  # one row per resource x metric x hour: split series were summed
    expected = 0
    for res in fleet.of("gcp"):
        for canonical, native, kind in EXPECTED[res.resource_type]:
            truth = fleet.hourly(res, canonical, DAY)
            for h, hour in enumerate(truth.hour_starts):
                row = got[(res.resource_id, canonical, hour)]
                expected += 1
                assert row["resource_name"] == res.name
                assert row["region"] == res.region and row["sub_account_id"] == res.sub_account_id
                assert row["native_metric"] == native and row["resource_type"] == res.resource_type
                if kind == "gauge":
                    assert row["avg"] == pytest.approx(truth.avg[h], rel=1e-9)
                    # INT64 gauges (connections, bytes used) have whole-number maxima.
                    whole = canonical in ("connections", "memory_used_bytes")
                    assert row["max"] == pytest.approx(truth.max[h], rel=1e-9, abs=0.5 if whole else 0)
                    assert row["sum"] is None
                else:  # INT64 counters arrive as whole numbers
                    assert row["sum"] == pytest.approx(truth.sum[h], abs=0.5)
                    assert row["avg"] is None
    assert len(rows) == expected == 34 * 24
    cpu = [r["avg"] for r in rows if r["metric"] == "cpu_utilization_pct"]
    assert 0 <= min(cpu) and max(cpu) <= 100 and max(cpu) > 1  # fractions became percent


def test_one_aligned_reduced_call_per_metric_type_and_project(fleet, adapter, doubles):
    _rows(adapter)
    requests = doubles.monitoring.requests
    by_type = {}
    for req in requests:
        agg = req.aggregation
        assert agg.alignment_period.seconds == 3600
        assert agg.cross_series_reducer == Aggregation.Reducer.REDUCE_SUM
        assert any("project_id" in f for f in agg.group_by_fields)
        assert req.interval.end_time.ToDatetime(tzinfo=timezone.utc) - req.interval.start_time.ToDatetime(
            tzinfo=timezone.utc
        ) == timedelta(days=1)
        metric_type = req.filter.split('"')[1]
        by_type.setdefault(metric_type, []).append((req.name, agg.per_series_aligner))
    # MySQL / SQL Server connections are asked for too: the adapter cannot know the engine.
    natives = [(native, kind) for specs in EXPECTED.values() for _, native, kind in specs]
    natives.append(("cloudsql.googleapis.com/database/network/connections", "gauge"))
    assert sorted(by_type) == sorted(native for native, _ in natives)
    for native, kind in natives:
        aligners = (
            [Aggregation.Aligner.ALIGN_MEAN, Aggregation.Aligner.ALIGN_MAX]
            if kind == "gauge"
            else [Aggregation.Aligner.ALIGN_DELTA]
        )
        assert sorted(by_type[native]) == sorted((f"projects/{p}", a) for p in GCP_PROJECTS for a in aligners)
    assert adapter.api.calls["monitoring.ListTimeSeries"] == len(requests)
    # $0.50 per million series returned: a gauge comes back twice (mean and max), a counter once,
    # unless it counted nothing all day (the idle bucket's requests: no points, no series).
    series = sum(
        2 if kind == "gauge" else int(any(fleet.hourly(r, canonical, DAY).sum))
        for r in fleet.of("gcp")
        for canonical, _, kind in EXPECTED[r.resource_type]
    )
    assert series == 47
    assert adapter.api.estimated_cost_usd == Decimal("0.50") * series / 1_000_000


def test_every_page_is_followed():
    fleet = build_fleet(scale=2)  # four VMs per project
    with run_gcp_doubles(fleet, START, END, max_page_size=1) as doubles:
        adapter = make_adapter(doubles)
        rows = _rows(adapter, metrics=["cpu_utilization_pct"])
        vms = {r["resource_id"] for r in rows if r["resource_type"] == "gce_instance"}
        assert vms == {r.resource_id for r in fleet.of("gcp", "gce_instance")}
        assert len([r for r in rows if r["resource_type"] == "gce_instance"]) == len(vms) * 24
        continued = [
            r
            for r in doubles.monitoring.requests
            if r.name == f"projects/{GCP_PROJECTS[0]}"
            and "gce_instance" in r.filter
            and r.aggregation.per_series_aligner == Aggregation.Aligner.ALIGN_MEAN
        ]
        assert [r.page_token for r in continued] == ["", "1", "2", "3"]


def test_unavailable_is_retried_then_succeeds(adapter, doubles):
    import grpc

    doubles.monitoring.fail_next = [grpc.StatusCode.UNAVAILABLE]
    rows = _rows(adapter, metrics=["cpu_utilization_pct"])
    assert len(rows) == (4 + 2) * 24
    assert adapter.api.retries == 1


def test_a_double_that_keeps_answering_unavailable_fails_at_the_retry_deadline(doubles):
    import grpc

    adapter = make_adapter(doubles, gcp_retry_deadline_seconds=0.2)
    doubles.monitoring.fail_next = [grpc.StatusCode.UNAVAILABLE] * 1000
    with pytest.raises(CloudApiError, match="kept failing after retries") as raised:
        _rows(adapter, metrics=["cpu_utilization_pct"])
    assert raised.value.retryable
    # Stopped by the deadline (backoff from 0.01 s doubling: a handful of attempts), not by the double
    # running out of errors: one request per attempt, nearly all 1000 errors left unanswered.
    assert 1 <= adapter.api.retries <= 12
    assert len(doubles.monitoring.requests) == adapter.api.retries + 1
    assert len(doubles.monitoring.fail_next) == 1000 - len(doubles.monitoring.requests)


def test_pacing_sees_every_attempt_retries_included(fleet, doubles):
    import grpc

    vm = fleet.of("gcp", "gce_instance")[0]
    adapter = make_adapter(doubles)
    doubles.monitoring.fail_next = [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE]
    rows = _rows(
        adapter,
        resources=[ResourceRef(vm.resource_id, "gce_instance", sub_account_id=vm.sub_account_id)],
        metrics=["cpu_utilization_pct"],
    )
    assert len(rows) == 24
    assert len(doubles.monitoring.requests) == 4  # ALIGN_MEAN twice refused, then answered; ALIGN_MAX
    assert adapter.api.retries == 2
    log = adapter.settings.pacing_dir / f"gcp-monitoring-reads-{BILLING_PROJECT}.json"
    assert len(json.loads(log.read_text())["sent_us"]) == 4


def test_selected_resources_by_id_and_the_legacy_gke_container_name(fleet, adapter, doubles):
    vm = fleet.of("gcp", "gce_instance")[1]
    pod = fleet.of("gcp", "k8s_container")[0]
    rows = _rows(
        adapter,
        resources=[
            ResourceRef(vm.resource_id, "gce_instance", sub_account_id=vm.sub_account_id),
            ResourceRef(pod.resource_id, "gke_container"),
        ],
    )
    assert {r["resource_id"] for r in rows} == {vm.resource_id, pod.resource_id}
    assert {r["resource_type"] for r in rows} == {"gce_instance", "k8s_container"}
    assert any(f'one_of("{vm.resource_id}")' in r.filter for r in doubles.monitoring.requests)


def test_a_vm_named_rather_than_numbered_is_selected_by_instance_name(fleet, adapter, doubles):
    vm = fleet.of("gcp", "gce_instance")[1]
    by_name = _rows(adapter, resources=[ResourceRef(vm.name, "gce_instance")])
    assert f'metric.labels.instance_name = one_of("{vm.name}")' in doubles.monitoring.requests[0].filter
    assert {(r["resource_id"], r["resource_name"]) for r in by_name} == {(vm.resource_id, vm.name)}
    by_id = _rows(adapter, resources=[ResourceRef(vm.resource_id, "gce_instance")])

    def values(rows):
        return sorted((r["metric"], r["hour_start"], r["avg"], r["max"], r["sum"]) for r in rows)

    assert len(by_name) == 5 * 24 and values(by_name) == values(by_id)


def test_an_unsupported_resource_type_is_refused_before_any_call(adapter, doubles):
    with pytest.raises(ValueError) as err:
        _rows(adapter, resources=[ResourceRef("fn-1", "cloud_function")])
    assert str(err.value) == (
        "GCP resource type 'cloud_function' is not supported; use one of ['cloudsql_database', 'gce_instance', "
        "'gcs_bucket', 'k8s_container', 'gke_container']"
    )
    assert doubles.monitoring.requests == []


def test_a_refusal_without_advice_names_the_metric_the_project_and_googles_words(adapter, doubles):
    doubles.monitoring.fail_next = [grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(CloudApiError) as err:
        _rows(adapter)
    assert str(err.value) == (
        "gcp monitoring ListTimeSeries failed: compute.googleapis.com/instance/cpu/utilization in project "
        "shop-prod: 400 simulated INVALID_ARGUMENT"
    )
    assert not err.value.retryable and len(doubles.monitoring.requests) == 1


@pytest.mark.parametrize("bad", ['i-1" OR resource.type = "x', 'a\\"b', ""])
def test_a_quote_in_a_filter_value_is_rejected_before_any_call(adapter, doubles, bad):
    with pytest.raises(ValueError, match="Cloud Monitoring filter"):
        _rows(adapter, resources=[ResourceRef(bad, "gce_instance")])
    assert doubles.monitoring.requests == []


def test_permission_denied_names_the_role_and_the_project(adapter, doubles):
    doubles.monitoring.denied_projects = {GCP_PROJECTS[1]}
    with pytest.raises(CloudApiError, match=rf"roles/monitoring.viewer on project {GCP_PROJECTS[1]}"):
        _rows(adapter)


def _hourly(rows, resource_id, metric):
    return sorted(
        (r["hour_start"], r["native_metric"], r["avg"], r["max"], r["sum"])
        for r in rows
        if r["resource_id"] == resource_id and r["metric"] == metric
    )


def test_postgresql_connections_are_num_backends_so_the_idle_instance_reads_zero(fleet, adapter, doubles):
    """Cloud SQL publishes network/connections for MySQL and SQL Server only; PostgreSQL's
    connections are postgresql/num_backends (split by database, summed per instance)."""
    busy, idle = fleet.of("gcp", "cloudsql_database")
    rows = _rows(adapter)
    idle_hours = _hourly(rows, idle.resource_id, "connections")
    assert [(native, avg, mx, s) for _, native, avg, mx, s in idle_hours] == [
        ("cloudsql.googleapis.com/database/postgresql/num_backends", 0.0, 0.0, None)
    ] * 24
    busy_hours = _hourly(rows, busy.resource_id, "connections")
    assert len(busy_hours) == 24 and min(mx for _, _, _, mx, _ in busy_hours) > 0
    # The double plays PostgreSQL: the MySQL metric has no series for these instances.
    served = [r for r in doubles.monitoring.requests if "database/network/connections" in r.filter]
    mysql = MetricSpec("cloudsql.googleapis.com/database/network/connections", "connections", "gauge", "Count")
    pages = adapter._series_pages(
        busy.sub_account_id, "cloudsql_database", mysql, DAY_START, DAY_END, None, "ALIGN_MEAN"
    )
    assert served and sum(page.num_rows for page in pages) == 0


def test_an_idle_buckets_request_hours_are_zero_not_missing(fleet, adapter):
    """Cloud Storage writes api/request_count only for calls made: an idle bucket has no series.
    Its storage gauge says it exists every hour, so its request hours are 0."""
    busy, idle = fleet.of("gcp", "gcs_bucket")
    assert fleet.hourly(idle, "requests", DAY).sum.sum() == 0
    rows = _rows(adapter)
    assert [(native, avg, mx, s) for _, native, avg, mx, s in _hourly(rows, idle.resource_id, "requests")] == [
        ("storage.googleapis.com/api/request_count", None, None, 0.0)
    ] * 24
    assert len(_hourly(rows, idle.resource_id, "storage_bytes")) == 24
    assert (
        sum(s for *_, s in _hourly(rows, busy.resource_id, "requests")) == fleet.hourly(busy, "requests", DAY).sum.sum()
    )


def test_counters_are_zero_only_for_hours_the_resource_was_seen(fleet, adapter):
    """Asked for the requests counter alone, an idle bucket shows nowhere: nothing says it exists."""
    busy, idle = fleet.of("gcp", "gcs_bucket")
    rows = _rows(adapter, metrics=["requests"])
    assert {r["resource_id"] for r in rows if r["resource_type"] == "gcs_bucket"} == {busy.resource_id}
