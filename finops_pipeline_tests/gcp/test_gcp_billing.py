"""BigQuery billing export: net-of-credit totals, partition pruning, parameters, errors."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pytest

from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.clouds.gcp.source import GcpSource
from finops_pipeline.settings import SettingsError, get_settings
from finops_pipeline.simulator.fleet import GCP_BILLING_ACCOUNT
from finops_pipeline.simulator.gcp import run_gcp_doubles
from finops_pipeline.warehouse.lake import Lake

from .conftest import DAY, START, make_adapter


def _sum(table, column):
    return sum(table.column(column).to_pylist(), Decimal(0))


def test_day_totals_are_the_fleets_gross_and_net_of_credits(fleet, adapter):
    fetched = adapter.fetch_cost(DAY, DAY + timedelta(days=1))
    cost = fetched.cost
    assert fetched.days == [DAY]
    assert set(cost.column("usage_date").to_pylist()) == {DAY}
    assert _sum(cost, "billed_cost") == fleet.daily_total("gcp", DAY)["USD"]
    assert _sum(cost, "effective_cost") == fleet.daily_total("gcp", DAY, "effective")["USD"]
    assert _sum(cost, "effective_cost") < _sum(cost, "billed_cost")  # the VMs' credits were subtracted
    assert fetched.provider_totals == {DAY: fleet.daily_total("gcp", DAY)}
    # Every line of the fleet's bill, keyed the way metrics key resources (numeric VM ids).
    rows = {(r["resource_id"], r["sub_account_id"]): r for r in cost.to_pylist()}
    for line in fleet.cost_lines("gcp", DAY):
        row = rows[(line.resource_id, line.sub_account_id)]
        assert (row["billed_cost"], row["effective_cost"]) == (line.billed_cost, line.effective_cost)
        assert (row["service_name"], row["sku"], row["region"]) == (line.service_name, line.sku, line.region)
        assert row["resource_type"] == fleet.by_id[line.resource_id].resource_type
        assert row["resource_name"] == fleet.by_id[line.resource_id].name
        assert dict(row["tags"]) == line.tags
        assert row["charge_category"] == "Usage" and row["billing_account_id"] == GCP_BILLING_ACCOUNT
        assert row["source"] == "bigquery:billing_export" and row["is_estimated"] is False


def test_the_query_carries_the_partition_filter_and_its_values_as_parameters(adapter, doubles):
    adapter.fetch_cost(DAY, DAY + timedelta(days=2))
    sent = doubles.bigquery.queries
    assert len(sent) == 2  # the rows, and BigQuery's own day totals
    for config in sent:
        sql = config["query"]
        assert "_PARTITIONTIME >= @partition_start AND _PARTITIONTIME < @partition_end" in sql
        assert "usage_start_time >= @start AND usage_start_time < @end" in sql
        assert "2026-03" not in sql  # no value is formatted into the SQL
        params = {p["name"]: p["parameterValue"]["value"] for p in config["queryParameters"]}
        assert {k: v[:10] for k, v in params.items()} == {
            "start": "2026-03-02",
            "end": "2026-03-04",
            # late rows land in later export partitions: GCP_RESTATEMENT_LOOKBACK_DAYS (35) after the window
            "partition_start": "2026-03-01",
            "partition_end": "2026-04-09",
        }
        assert config["maximumBytesBilled"] == str(10 * 1024**3)
    # A small export: BigQuery bills its 10 MB minimum per table a query reads, at $6.25 per TiB
    # ("On-demand compute pricing"), for each of the two queries.
    assert 0 < adapter.api.bytes_scanned < 10 * 2**20
    assert adapter.api.notes["bigquery_bytes_billed"] == str(2 * 10 * 2**20)
    assert adapter.api.estimated_cost_usd == 2 * Decimal("6.25") * 10 * 2**20 / 2**40


def test_bytes_scanned_grow_with_the_window_not_with_the_table(fleet):
    scanned = {}
    for served_days in (12, 24):
        with run_gcp_doubles(fleet, START, START + timedelta(days=served_days)) as doubles:
            for window in (1, 3):
                adapter = make_adapter(doubles, gcp_restatement_lookback_days=3)
                adapter.fetch_cost(DAY, DAY + timedelta(days=window))
                scanned[(served_days, window)] = adapter.api.bytes_scanned
    assert scanned[(12, 1)] < scanned[(12, 3)]
    assert scanned[(24, 1)] == scanned[(12, 1)]  # twice the table, same bytes


@pytest.mark.parametrize(
    "dataset", ["billing`; DROP TABLE x; --", "billing export", "billing/*x*/", "billing--", "billing;"]
)
def test_a_hostile_dataset_name_never_reaches_bigquery(doubles, dataset):
    adapter = make_adapter(doubles, gcp_billing_dataset=dataset)
    with pytest.raises(SettingsError, match="GCP_BILLING_DATASET"):
        adapter.fetch_cost(DAY, DAY + timedelta(days=1))
    assert doubles.bigquery.queries == []


def test_a_missing_export_table_says_how_to_enable_the_export(doubles):
    adapter = make_adapter(doubles, gcp_billing_account_id="0AAAAA-BBBBBB-CCCCCC")
    with pytest.raises(CloudApiError) as err:
        adapter.fetch_cost(DAY, DAY + timedelta(days=1))
    message = str(err.value)
    assert "Billing export -> BigQuery export" in message
    assert "`shop-prod.billing_export.gcp_billing_export_resource_v1_0AAAAA_BBBBBB_CCCCCC`" in message


def test_a_missing_dataset_is_reported_with_the_name_looked_for(doubles):
    adapter = make_adapter(doubles, gcp_billing_dataset="billing_elsewhere")
    with pytest.raises(CloudApiError, match=r"billing_elsewhere.*Billing export -> BigQuery export"):
        adapter.fetch_cost(DAY, DAY + timedelta(days=1))


def test_permission_denied_names_the_roles_needed(adapter, doubles):
    doubles.bigquery.denied_projects = {"shop-prod"}
    with pytest.raises(CloudApiError) as err:
        adapter.fetch_cost(DAY, DAY + timedelta(days=1))
    assert "roles/bigquery.jobUser on project shop-prod" in str(err.value)
    assert "roles/bigquery.dataViewer on dataset shop-prod.billing_export" in str(err.value)


def test_the_bytes_cap_says_what_the_query_needs_and_what_to_raise(doubles):
    adapter = make_adapter(doubles, gcp_billing_max_bytes=1000)
    with pytest.raises(CloudApiError) as err:
        adapter.fetch_cost(DAY, DAY + timedelta(days=1))
    assert "would bill 10,485,760 bytes" in str(err.value)
    assert "GCP_BILLING_MAX_BYTES" in str(err.value)


def test_a_transient_backend_error_is_retried(fleet, adapter, doubles):
    doubles.bigquery.fail_next = [503]
    fetched = adapter.fetch_cost(DAY, DAY + timedelta(days=1))
    assert _sum(fetched.cost, "billed_cost") == fleet.daily_total("gcp", DAY)["USD"]


def test_bigquery_failing_every_time_ends_in_a_retryable_error_within_the_retry_deadline(doubles):
    # BigQuery answers 503 backendError to every call: the client's two retry layers (each request,
    # then the whole job) stop at GCP_RETRY_DEADLINE_SECONDS and the run gets our error, retryable.
    doubles.bigquery.fail_next = [503] * 100_000
    adapter = make_adapter(doubles, gcp_retry_deadline_seconds=2.0)
    outcome: list = []
    worker = threading.Thread(
        target=lambda: outcome.append(_raised(adapter.fetch_cost, DAY, DAY + timedelta(days=1))), daemon=True
    )
    worker.start()
    worker.join(120)  # a hang guard, not a speed check: without the bound this took 11.5 minutes
    assert not worker.is_alive(), "fetch_cost still retrying after 120 s with a 2 s retry deadline"
    (err,) = outcome
    assert isinstance(err, CloudApiError) and err.retryable
    assert re.fullmatch(
        r"gcp bigquery billing export query failed: BigQuery kept failing for 2 s of retries "
        r"\(GCP_RETRY_DEADLINE_SECONDS=2\): POST http://127\.0\.0\.1:\d+/bigquery/v2/projects/shop-prod/jobs"
        r"\?prettyPrint=false: simulated backend error",
        str(err),
    )


def _raised(call, *args):
    try:
        call(*args)
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever came out
        return exc
    return None


def test_the_standard_export_gives_the_same_totals_without_resources(fleet, doubles):
    adapter = make_adapter(doubles, gcp_billing_detailed=False)
    cost = adapter.fetch_cost(DAY, DAY + timedelta(days=1)).cost
    assert "gcp_billing_export_v1_" in doubles.bigquery.queries[0]["query"]
    assert set(cost.column("resource_id").to_pylist()) == {None}
    assert _sum(cost, "billed_cost") == fleet.daily_total("gcp", DAY)["USD"]
    assert _sum(cost, "effective_cost") == fleet.daily_total("gcp", DAY, "effective")["USD"]
    rows = {(r["sub_account_id"], r["service_name"], r["region"], r["sku"]): r for r in cost.to_pylist()}
    assert len(rows) == cost.num_rows  # resources merged into one row per key...
    shared: dict[tuple, dict] = {}
    for line in fleet.cost_lines("gcp", DAY):
        key = (line.sub_account_id, line.service_name, line.region, line.sku)
        shared[key] = (
            dict(line.tags) if key not in shared else {k: v for k, v in shared[key].items() if line.tags.get(k) == v}
        )
    assert {k: dict(r["tags"]) for k, r in rows.items()} == shared  # ...keeping the labels they share


def _export_row(hour: int, **fields) -> dict:
    """One hour's standard-export row for a VM core SKU the fleet does not use, in shop-prod."""
    start = datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=timezone.utc)
    return {
        "billing_account_id": GCP_BILLING_ACCOUNT,
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "CF4E-A0C7-E3BF", "description": "E2 Instance Core running in Americas"},
        "usage_start_time": start,
        "usage_end_time": start + timedelta(hours=1),
        "project": {"id": "shop-prod", "number": "1", "name": "shop-prod", "labels": [], "ancestry_numbers": ""},
        "labels": [],
        "system_labels": [],
        "location": {"location": "us-central1", "country": "US", "region": "us-central1", "zone": "us-central1-a"},
        "export_time": start + timedelta(hours=5),
        "cost": 0.0,
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "usage": {"amount": 0.0, "unit": "seconds", "amount_in_pricing_units": 0.0, "pricing_unit": "hour"},
        "credits": [],
        "invoice": {"month": "202603"},
        "cost_type": "regular",
        "adjustment_info": None,
        "_PARTITIONTIME": datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc),
        "resource": {"name": None, "global_name": None},
        **fields,
    }


def test_rows_of_one_key_with_other_labels_become_one_row_with_the_labels_they_share(doubles):
    """The standard export has no resource: two VMs of one SKU with different labels are one
    cost_daily row (its key has no labels), their costs and usage summed, the shared label kept;
    a rounding error and an adjustment are both Adjustment, so one row whose description is mixed."""
    doubles.bigquery.load(
        [
            _export_row(
                3,
                labels=[{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}],
                cost=2.5,
                usage={"amount": 3600.0, "unit": "seconds", "amount_in_pricing_units": 1.0, "pricing_unit": "hour"},
            ),
            _export_row(
                4,
                labels=[{"key": "env", "value": "prod"}, {"key": "team", "value": "data"}],
                cost=1.25,
                credits=[
                    {"name": "Sustained use discount", "amount": -0.25, "full_name": None, "id": "S", "type": "S"}
                ],
                usage={"amount": 1800.0, "unit": "seconds", "amount_in_pricing_units": 0.5, "pricing_unit": "hour"},
            ),
            _export_row(5, cost=0.01, cost_type="rounding_error"),
            _export_row(6, cost=-0.5, cost_type="adjustment"),
        ]
    )
    adapter = make_adapter(doubles, gcp_billing_detailed=False)
    rows = [r for r in adapter.fetch_cost(DAY, DAY + timedelta(days=1)).cost.to_pylist() if r["sku"].startswith("E2 ")]
    got = sorted(
        (
            r["charge_category"],
            r["charge_description"],
            r["billed_cost"],
            r["effective_cost"],
            r["usage_quantity"],
            r["usage_unit"],
            dict(r["tags"]),
        )
        for r in rows
    )
    assert got == [
        ("Adjustment", "mixed", Decimal("-0.4900000000"), Decimal("-0.4900000000"), 0.0, "seconds", {}),
        ("Usage", "regular", Decimal("3.7500000000"), Decimal("3.5000000000"), 5400.0, "seconds", {"env": "prod"}),
    ]


def test_no_landed_day_needs_no_query(adapter, doubles):
    assert adapter.days_with_newer_export_rows({}, DAY) == []
    assert doubles.bigquery.queries == []


def test_every_bigquery_request_of_a_query_waits_in_its_methods_quota(doubles, tmp_path):
    """Built as production builds it (pacing on): a query is jobs.insert, then jobs.get until the
    job is DONE, then jobs.getQueryResults; each request is paced in its own method's quota."""
    adapter = GcpSource.from_settings(get_settings(doubles.environment()).with_overrides(data_dir=tmp_path))
    adapter.fetch_cost(DAY, DAY + timedelta(days=1))  # two queries: the rows and the day totals
    sent = {
        path.name: len(json.loads(path.read_text())["sent_us"]) for path in (tmp_path / "pacing").glob("gcp-bigquery-*")
    }
    assert sent == {
        "gcp-bigquery-jobs.insert.json": 2,
        "gcp-bigquery-jobs.get.json": 2,
        "gcp-bigquery-jobs.getQueryResults.json": 4,  # per query: is it complete, then the rows
    }


def test_a_restated_day_replaces_its_partition_without_double_counting(fleet, adapter, doubles, tmp_path):
    lake = Lake(tmp_path / "lake")

    def ingest():
        fetched = adapter.fetch_cost(DAY, DAY + timedelta(days=1))
        lake.write_partitions(
            "cost_daily", fetched.cost, expected=[{"provider": "gcp", "usage_date": d} for d in fetched.days]
        )

    def lake_total():
        return duckdb.sql(f"SELECT sum(billed_cost) FROM read_parquet('{lake.glob('cost_daily')}')").fetchall()[0][0]

    ingest()
    assert lake_total() == fleet.daily_total("gcp", DAY)["USD"]
    # Two days later the export adds a correction for DAY into a later partition.
    late = datetime(DAY.year, DAY.month, DAY.day, 10, tzinfo=timezone.utc)
    doubles.bigquery.load(
        [
            {
                "billing_account_id": GCP_BILLING_ACCOUNT,
                "service": {"id": "X", "description": "Compute Engine"},
                "sku": {"id": "Y", "description": "Billing correction"},
                "usage_start_time": late,
                "usage_end_time": late + timedelta(hours=1),
                "project": {
                    "id": "shop-prod",
                    "number": "1",
                    "name": "shop-prod",
                    "labels": [],
                    "ancestry_numbers": "",
                },
                "labels": [],
                "system_labels": [],
                "location": {"location": "us-central1", "country": "US", "region": "us-central1", "zone": None},
                "export_time": late + timedelta(days=2),
                "cost": -1.5,
                "currency": "USD",
                "currency_conversion_rate": 1.0,
                "usage": {"amount": 0.0, "unit": "seconds", "amount_in_pricing_units": 0.0, "pricing_unit": "hour"},
                "credits": [],
                "invoice": {"month": "202603"},
                "cost_type": "adjustment",
                "adjustment_info": None,
                "_PARTITIONTIME": datetime(DAY.year, DAY.month, DAY.day, tzinfo=timezone.utc) + timedelta(days=2),
                "resource": {"name": None, "global_name": None},
            }
        ]
    )
    ingest()
    ingest()
    assert lake_total() == fleet.daily_total("gcp", DAY)["USD"] - Decimal("1.5")
    categories = duckdb.sql(
        f"SELECT DISTINCT charge_category FROM read_parquet('{lake.glob('cost_daily')}')"
    ).fetchall()
    assert sorted(c for (c,) in categories) == ["Adjustment", "Usage"]
