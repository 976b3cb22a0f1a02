"""GCP_COST_SOURCE=export: cost_daily rows with the FOCUS columns of the detailed billing export."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.clouds.gcp.doctor import check_gcp
from finops_pipeline.settings import SettingsError, get_settings
from finops_pipeline.simulator.fleet import build_fleet
from finops_pipeline.simulator.gcp import run_gcp_doubles
from finops_pipeline.simulator.gcp_bigquery import export_rows

from .conftest import DAY, make_adapter

NEXT = DAY + timedelta(days=1)
VM = "1000003911486858"  # gce-instance-000: list price, no discount
CUD_VM = "1000003403646706"  # gce-instance-003: 20% off through a committed use discount


@pytest.fixture
def exported(doubles):
    return make_adapter(doubles, gcp_cost_source="export")


def _rows(adapter) -> dict[str, dict]:
    return {r["resource_id"]: r for r in adapter.fetch_cost(DAY, NEXT).cost.to_pylist()}


def test_a_vm_row_carries_zone_prices_and_sku_price(exported, doubles):
    row = _rows(exported)[VM]
    assert "gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9" in doubles.bigquery.queries[0]["query"]
    assert {k: row[k] for k in row if k not in ("ingested_at", "tags")} == {
        "provider": "gcp",
        "usage_date": DAY,
        "billing_account_id": "01A2B3-C4D5E6-F7A8B9",
        "sub_account_id": "shop-prod",
        "sub_account_name": "shop-prod",
        "service_name": "Compute Engine",
        "region": "us-central1",
        "resource_id": VM,
        "resource_name": "gce-instance-000",
        "resource_type": "gce_instance",
        "sku": "SKU-32736717",
        "charge_category": "Usage",
        "charge_description": "N2 Instance Core running in Americas",
        "usage_quantity": 86400.0,
        "usage_unit": "seconds",
        "billed_cost": Decimal("2.3327300000"),
        "effective_cost": Decimal("2.3327300000"),
        "list_cost": Decimal("2.3327300000"),
        "billing_currency": "USD",
        "is_estimated": False,
        "source": "bigquery:detailed_export",
        "availability_zone": "us-central1-a",
        "region_name": "Iowa",
        "publisher_name": "Google Cloud",
        "charge_class": None,
        "charge_frequency": "Usage-Based",
        "pricing_category": "Standard",
        "pricing_quantity": 24.0,
        "pricing_unit": "hour",
        "pricing_currency": "USD",
        "list_unit_price": Decimal("0.0971970830"),
        "contracted_unit_price": Decimal("0.0971970830"),
        "contracted_cost": Decimal("2.3327300000"),
        "pricing_currency_list_unit_price": Decimal("0.0971970830"),
        "pricing_currency_contracted_unit_price": Decimal("0.0971970830"),
        "pricing_currency_effective_cost": Decimal("2.3327300000"),
        "sku_price_id": "Billing Account ID:01A2B3-C4D5E6-F7A8B9, SKU ID: SKU-32736717, Price Tier Start Amount: 0",
        "sku_meter": "N2 Instance Core running in Americas",
        "commitment_discount_id": None,
        "commitment_discount_type": None,
        "commitment_discount_category": None,
        "commitment_discount_name": None,
        "commitment_discount_status": None,
    }
    assert dict(row["tags"]) == {"finops_id": "gcp-gce_instance-000", "team": "checkout"}


def test_a_committed_use_discount_credit_names_its_commitment(exported):
    row = _rows(exported)[CUD_VM]
    assert (row["billed_cost"], row["effective_cost"]) == (Decimal("2.3406540000"), Decimal("1.8725230000"))
    assert {k: v for k, v in row.items() if k.startswith("commitment_")} == {
        "commitment_discount_id": "000029965734",
        "commitment_discount_type": "COMMITTED_USAGE_DISCOUNT",
        "commitment_discount_category": "Usage",
        "commitment_discount_name": "Committed use discount: Core",
        "commitment_discount_status": "Used",
    }
    assert row["pricing_category"] == "Committed"


def test_a_sustained_use_discount_is_no_commitment():
    with run_gcp_doubles(build_fleet(scale=2), DAY, NEXT) as doubles:  # two discounted VMs
        rows = _rows(make_adapter(doubles, gcp_cost_source="export"))
    discounted = [r for r in rows.values() if r["effective_cost"] < r["billed_cost"]]
    assert sorted((r["resource_name"], r["commitment_discount_id"], r["pricing_category"]) for r in discounted) == [
        ("gce-instance-003", "000029965734", "Committed"),
        ("gce-instance-007", None, "Standard"),
    ]


def test_the_day_totals_and_the_restatement_look_at_the_detailed_table(exported, doubles, fleet):
    fetched = exported.fetch_cost(DAY, NEXT)
    assert sum(fetched.cost.column("billed_cost").to_pylist(), Decimal(0)) == fleet.daily_total("gcp", DAY)["USD"]
    assert sum(fetched.cost.column("effective_cost").to_pylist(), Decimal(0)) == Decimal("15.4655940000")
    assert fetched.provider_totals == {DAY: fleet.daily_total("gcp", DAY)}
    landed = datetime.now(timezone.utc)
    assert exported.days_with_newer_export_rows({DAY: landed}, DAY) == []
    late = dict(export_rows(fleet, DAY)[0])
    late.update(export_time=landed + timedelta(minutes=1))
    doubles.bigquery.load([late])
    assert exported.days_with_newer_export_rows({DAY: landed}, DAY) == [DAY]
    assert all("gcp_billing_export_resource_v1_" in q["query"] for q in doubles.bigquery.queries)


def test_an_adjustment_is_a_correction_on_its_own_row(exported, doubles, fleet):
    """adjustment_info set -> FOCUS ChargeClass Correction (Google's FOCUS view for the export)."""
    fix = dict(export_rows(fleet, DAY)[0])
    fix.update(
        cost=-0.5,
        cost_at_list=-0.5,
        cost_type="adjustment",
        credits=[],
        adjustment_info={
            "id": "ADJ-1",
            "description": "Billing correction",
            "mode": "MANUAL_ADJUSTMENTS",
            "type": "GENERAL_ADJUSTMENT",
        },
    )
    doubles.bigquery.load([fix])
    rows = [r for r in exported.fetch_cost(DAY, NEXT).cost.to_pylist() if r["resource_id"] == VM]
    assert sorted((r["charge_category"], r["charge_class"], r["billed_cost"]) for r in rows) == [
        ("Adjustment", "Correction", Decimal("-0.5000000000")),
        ("Usage", None, Decimal("2.3327300000")),
    ]
    correction = next(r for r in rows if r["charge_class"])
    assert (correction["pricing_quantity"], correction["sku_price_id"], correction["charge_frequency"]) == (
        None,
        None,
        None,
    )


def test_a_named_detailed_table_is_read(doubles):
    adapter = make_adapter(
        doubles,
        gcp_cost_source="export",
        gcp_billing_account_id=None,
        gcp_billing_detailed_table="gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9",
    )
    assert adapter.billing_table() == "`shop-prod.billing_export.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9`"


@pytest.mark.parametrize(
    ("env", "variable", "fix"),
    [
        ({"GCP_COST_SOURCE": "cur"}, "GCP_COST_SOURCE", "api (the query API, the default) or export"),
        ({"GCP_COST_SOURCE": "export"}, "GCP_BILLING_DETAILED_TABLE", "GCP_BILLING_ACCOUNT_ID"),
        (
            {"GCP_COST_SOURCE": "export", "GCP_BILLING_ACCOUNT_ID": "not-an-account"},
            "GCP_BILLING_DETAILED_TABLE",
            "gcp_billing_export_resource_v1_",
        ),
        ({"GCP_BILLING_DETAILED_TABLE": "a.b;drop"}, "GCP_BILLING_DETAILED_TABLE", "a BigQuery table name"),
    ],
)
def test_the_export_settings_are_checked_at_once(env, variable, fix):
    with pytest.raises(SettingsError) as err:
        get_settings(env)
    assert err.value.name == variable and fix in str(err.value)


def test_api_stays_the_default():
    assert get_settings({}).gcp_cost_source == "api"
    settings = get_settings({"GCP_COST_SOURCE": "Export", "GCP_BILLING_ACCOUNT_ID": "01A2B3-C4D5E6-F7A8B9"})
    assert (settings.gcp_cost_source, settings.gcp_billing_detailed_table) == ("export", None)


def test_a_price_quoted_per_many_units_is_divided_to_a_unit_price(exported, doubles, fleet):
    """price.effective_price is quoted per price.pricing_unit_quantity units of price.unit (the pricing
    export's tiered_rates carry the same pair: 1000000 requests at 0.4 in Google's example query), so
    the FOCUS unit prices divide by it; PricingQuantity stays in units."""
    egress = dict(export_rows(fleet, DAY)[0])
    egress.update(
        sku={"id": "9DE9-9092-B3BC", "description": "Network Internet Data Transfer Out"},
        cost=1.5,
        cost_at_list=1.5,
        credits=[],
        usage={"amount": 600 * 2**30, "unit": "bytes", "amount_in_pricing_units": 600.0, "pricing_unit": "gibibyte"},
        price={
            "effective_price": Decimal("2.5"),
            "tier_start_amount": Decimal("1024"),
            "unit": "gibibyte",
            "pricing_unit_quantity": Decimal("1000"),
            "list_price": Decimal("3"),
        },
    )
    doubles.bigquery.load([egress])
    row = next(r for r in exported.fetch_cost(DAY, NEXT).cost.to_pylist() if r["sku"] == "9DE9-9092-B3BC")
    assert (row["pricing_quantity"], row["pricing_unit"]) == (600.0, "gibibyte")
    assert (row["contracted_unit_price"], row["list_unit_price"]) == (Decimal("0.0025000000"), Decimal("0.0030000000"))
    assert row["sku_price_id"] == (
        "Billing Account ID:01A2B3-C4D5E6-F7A8B9, SKU ID: 9DE9-9092-B3BC, Price Tier Start Amount: 1024"
    )


def test_a_price_without_a_tier_start_has_no_sku_price_id_as_in_googles_focus_view(exported, doubles, fleet):
    """Google's FOCUS view builds SkuPriceId with CONCAT, which "returns NULL" when "any input argument
    is NULL" (BigQuery string functions, CONCAT): a row whose price.tier_start_amount is NULL has none."""
    row = dict(export_rows(fleet, DAY)[0])
    row.update(
        sku={"id": "F00D-0000-0001", "description": "Untiered SKU"},
        credits=[],
        price={**row["price"], "tier_start_amount": None},
    )
    doubles.bigquery.load([row])
    got = next(r for r in exported.fetch_cost(DAY, NEXT).cost.to_pylist() if r["sku"] == "F00D-0000-0001")
    assert got["sku_price_id"] is None
    assert got["contracted_unit_price"] is not None  # the rest of the price still lands


def test_a_unit_price_that_does_not_end_within_ten_places_is_rounded_to_them(exported, doubles, fleet):
    """pricing_unit_quantity is any NUMERIC: 0.0475 per 3600 units is 0.0000131944... per unit, which
    the lake's DECIMAL(38, 10) cannot hold; it is rounded half-even to ten places, not a failed run."""
    row = dict(export_rows(fleet, DAY)[0])
    row.update(
        sku={"id": "A1B2-C3D4-E5F6", "description": "E2 Instance Core running in Americas"},
        credits=[],
        price={**row["price"], "effective_price": Decimal("0.0475"), "pricing_unit_quantity": Decimal("3600")},
    )
    doubles.bigquery.load([row])
    got = next(r for r in exported.fetch_cost(DAY, NEXT).cost.to_pylist() if r["sku"] == "A1B2-C3D4-E5F6")
    assert got["contracted_unit_price"] == Decimal("0.0000131944")


def test_a_price_change_within_a_day_leaves_the_day_without_one_unit_price(exported, doubles, fleet):
    """Two prices of one SKU tier in a day (a new contract price from noon): one cost_daily row, which
    cannot say one contracted unit price; the list price both rows had stays."""
    template = dict(export_rows(fleet, DAY)[0])
    sku = {"id": "A1B2-C3D4-E5F6", "description": "E2 Instance Core running in Americas"}
    morning, afternoon = dict(template), dict(template)
    morning.update(sku=sku, credits=[], cost=0.05, price={**template["price"], "effective_price": Decimal("0.05")})
    afternoon.update(
        sku=sku,
        credits=[],
        cost=0.04,
        usage_start_time=template["usage_start_time"] + timedelta(hours=12),
        usage_end_time=template["usage_end_time"] + timedelta(hours=12),
        price={**template["price"], "effective_price": Decimal("0.04")},
    )
    for row in (morning, afternoon):
        row["price"]["list_price"] = Decimal("0.05")
    doubles.bigquery.load([morning, afternoon])
    (got,) = [r for r in exported.fetch_cost(DAY, NEXT).cost.to_pylist() if r["sku"] == "A1B2-C3D4-E5F6"]
    assert (got["billed_cost"], got["contracted_unit_price"], got["list_unit_price"]) == (
        Decimal("0.0900000000"),
        None,
        Decimal("0.0500000000"),
    )


def test_a_resource_monitoring_does_not_key_keeps_its_global_name(exported, doubles, fleet):
    """A persistent disk is billed on its own row; Cloud Monitoring keys no disk here, so the row
    keeps the unique global name (resource_type unknown), and the name the export gives."""
    disk = dict(export_rows(fleet, DAY)[0])
    disk.update(
        sku={"id": "D973-5D65-BAB2", "description": "Storage PD Capacity"},
        credits=[],
        cost=0.12,
        resource={
            "name": "orders-data",
            "global_name": "//compute.googleapis.com/projects/shop-prod/zones/us-central1-a/disks/4518236581024",
        },
    )
    doubles.bigquery.load([disk])
    (got,) = [r for r in exported.fetch_cost(DAY, NEXT).cost.to_pylist() if r["sku"] == "D973-5D65-BAB2"]
    assert (got["resource_id"], got["resource_type"], got["resource_name"], got["billed_cost"]) == (
        "//compute.googleapis.com/projects/shop-prod/zones/us-central1-a/disks/4518236581024",
        None,
        "orders-data",
        Decimal("0.1200000000"),
    )


def test_a_missing_detailed_table_says_which_export_and_which_variable(doubles):
    adapter = make_adapter(
        doubles, gcp_cost_source="export", gcp_billing_detailed_table="gcp_billing_export_resource_v1_X"
    )
    with pytest.raises(CloudApiError) as err:
        adapter.fetch_cost(DAY, NEXT)
    message = str(err.value)
    assert "BigQuery export (detailed usage cost)" in message
    assert "GCP_BILLING_DETAILED_TABLE" in message and "GCP_BILLING_TABLE" not in message


def test_doctor_dry_runs_the_export_query(doubles):
    """A detailed table without the columns the export source reads fails in `doctor`, not first in a run."""
    found = list(check_gcp(get_settings({**os.environ, **doubles.environment(cost_source="export")})))
    dry_run = next(f for f in found if f.what == "bigquery dry-run of the billing export")
    assert dry_run.status == "ok" and "a day's cost (detailed export) query would scan" in dry_run.detail
    assert "subscription.instance_id" in doubles.bigquery.queries[-1]["query"]


def test_doctor_fails_on_a_standard_table_named_as_the_detailed_export(doubles):
    """The dry run of the export query is refused (no job made), and doctor says which name BigQuery
    did not recognise; a run with the same settings fails on the same words."""
    env = dict(doubles.environment(cost_source="export"), GCP_BILLING_DETAILED_TABLE=doubles.bigquery.standard_table)
    found = list(check_gcp(get_settings({**os.environ, **env})))
    dry_run = next(f for f in found if f.what == "bigquery dry-run of the billing export")
    assert dry_run.status == "FAIL"
    # `price.unit` on line 39 of the export query: the standard export has no `price` column.
    assert re.fullmatch(
        r"gcp bigquery billing export query failed: POST http://127\.0\.0\.1:\d+/bigquery/v2/projects/shop-prod/"
        r"jobs\?prettyPrint=false: Unrecognized name: price at \[39:5\]\n\nLocation: None\nJob ID: [0-9a-f-]{36}\n",
        dry_run.detail,
    )
    assert doubles.bigquery.jobs == {}
    adapter = make_adapter(
        doubles, gcp_cost_source="export", gcp_billing_detailed_table=doubles.bigquery.standard_table
    )
    with pytest.raises(CloudApiError) as err:
        adapter.fetch_cost(DAY, NEXT)
    assert re.fullmatch(
        r"gcp bigquery billing export query failed: Unrecognized name: price at \[39:5\]; reason: invalidQuery, "
        r"message: Unrecognized name: price at \[39:5\]\n\nLocation: US\nJob ID: [0-9a-f-]{36}\n",
        str(err.value),
    )


def test_a_table_name_set_past_the_settings_check_still_never_reaches_bigquery(doubles):
    adapter = make_adapter(doubles, gcp_cost_source="export", gcp_billing_detailed_table="t`; DROP TABLE x; --")
    with pytest.raises(SettingsError) as err:
        adapter.fetch_cost(DAY, NEXT)
    assert err.value.name == "GCP_BILLING_DETAILED_TABLE" and doubles.bigquery.queries == []
