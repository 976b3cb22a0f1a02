"""utilization_daily numbers, the Dagster mart assets with their checks, FOCUS view, demo summary."""

import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest
from dagster import AssetSelection, DagsterInstance

from finops_pipeline.defs import mart_checks, marts
from finops_pipeline.demo import demo_summary
from finops_pipeline.simulator.predictions import write_predictions
from finops_pipeline.warehouse.catalog import CATALOG_FILE, connect_lake, refresh_catalog
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.sql import run_sql
from finops_pipeline_tests.marts.fleet_lake import write_fleet
from finops_pipeline_tests.runs import materialize, range_tags

DAY = date(2026, 3, 14)


def test_utilization_daily_matches_the_fleet_and_cost_is_null_without_resource_rows(fleet, tmp_path):
    lake = Lake(tmp_path / "lake")
    write_fleet(fleet, lake, DAY, DAY + timedelta(days=1), providers=("aws",))
    write_fleet(fleet, lake, DAY, DAY + timedelta(days=1), providers=("gcp",), resource_level=False)
    rows = run_sql("utilization_daily", lake, {"start": DAY, "end": DAY + timedelta(days=1)}).to_pandas()
    rows = rows.set_index("resource_id")
    ec2 = fleet.of("aws", "ec2")[0]
    row = rows.loc[ec2.resource_id]
    cpu = fleet.hourly(ec2, "cpu_utilization_pct", DAY)
    assert row.hours_with_data == 24
    assert row.cpu_avg_pct == pytest.approx(float(np.mean(cpu.avg)))
    assert row.cpu_p95_pct == pytest.approx(float(np.percentile(cpu.avg, 95)))
    assert row.cpu_max_pct == pytest.approx(float(np.max(cpu.max)))
    assert row.network_in_bytes == pytest.approx(float(np.sum(fleet.hourly(ec2, "network_in_bytes", DAY).sum)))
    line = next(x for x in fleet.cost_lines("aws", DAY) if x.resource_id == ec2.resource_id)
    assert (row.billed_cost, row.effective_cost, row.billing_currency) == (line.billed_cost, line.effective_cost, "USD")
    gce = rows.loc[fleet.of("gcp", "gce_instance")[0].resource_id]
    assert gce.billed_cost is None and gce.effective_cost is None  # billing had service-level rows only
    con = connect_lake(lake)
    con.register("utilization_daily", rows.reset_index())
    assert mart_checks.cpu_out_of_range(con) == 0 and mart_checks.negative_usage(con) == 0


@pytest.fixture
def warehouse(fleet, data_dir, tmp_path, monkeypatch):
    write_fleet(fleet, Lake(data_dir / "lake"), date(2026, 3, 1), DAY + timedelta(days=1))
    write_predictions(fleet, tmp_path / "predictions", date(2026, 3, 1))
    monkeypatch.setenv("FINOPS_PREDICTIONS_DIR", str(tmp_path / "predictions"))
    return data_dir


def test_mart_assets_write_partitions_and_pass_their_checks(warehouse):
    daily_assets = [marts.utilization_daily, marts.underutilized_resources, marts.cost_trend_daily]
    assert materialize([marts.cost_predictions]).success
    # The flags of the 14th read 14 days of utilization_daily: without those rows the run
    # fails and says so; with them (one range run, as a UI backfill does) it succeeds.
    failed = materialize(
        daily_assets, partition_key=DAY.isoformat(), raise_on_error=False, selection=[marts.underutilized_resources.key]
    )
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure).step_failure_data.error.message
    assert "utilization_daily is missing for 14 day(s) with metrics (2026-03-01 .. 2026-03-14)" in failure
    assert not Lake(warehouse / "lake").partitions("underutilized_resources")
    backfill = materialize(
        daily_assets,
        selection=[marts.utilization_daily.key],
        tags=range_tags(date(2026, 3, 1), DAY),
    )
    assert backfill.success
    # A range run's metadata is recorded on each of its 13 partitions: rows, but no per-partition row count.
    ranged = backfill.get_asset_materialization_events()[0].materialization.metadata
    assert ranged["rows"].value == 13 * 36 and "dagster/row_count" not in ranged
    checks = list(mart_checks.defs.asset_checks)
    result = materialize(
        daily_assets + [marts.cost_predictions] + checks,
        partition_key=DAY.isoformat(),
        selection=AssetSelection.assets(*daily_assets),
    )
    assert result.success
    meta = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["utilization_daily"]["rows"].value == 36 and meta["utilization_daily"]["partitions_written"].value == 1
    assert meta["utilization_daily"]["dagster/row_count"].value == 36
    assert meta["underutilized_resources"]["rows"].value == 11
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "utilization_daily_keys": True,
        "utilization_daily_ranges": True,
        "underutilized_resources_keys": True,
        "underutilized_resources_evidence": True,
        "cost_trend_daily_keys": True,
        "cost_trend_daily_totals": True,
    }
    monthly = materialize(
        [marts.cost_trend_monthly, marts.cost_trend_daily, mart_checks.cost_trend_monthly_keys],
        partition_key="2026-03-01",
        selection=AssetSelection.assets(marts.cost_trend_monthly),
    )
    assert monthly.success
    [monthly_keys] = monthly.get_asset_check_evaluations()
    assert monthly_keys.check_name == "cost_trend_monthly_keys" and monthly_keys.passed
    assert (monthly_keys.metadata["duplicate_rows"].value, monthly_keys.metadata["null_key_rows"].value) == (0, 0)
    lake = Lake(warehouse / "lake")
    assert lake.partitions("cost_trend_monthly") == [{"usage_date": "2026-03-01"}]
    # A rerun of the same partition replaces it: no duplicates.
    assert materialize(
        daily_assets + [marts.cost_predictions], partition_key=DAY.isoformat(), selection=[marts.utilization_daily.key]
    ).success
    con = connect_lake(lake)
    assert con.execute("SELECT count(*) FROM utilization_daily WHERE usage_date = ?", [DAY]).fetchone()[0] == 36
    assert con.execute("SELECT count(*) FROM utilization_daily").fetchone()[0] == 14 * 36
    summary = demo_summary(con)
    assert "Top 5 underutilized resources" in summary and "aws_rds_idle" in summary
    assert "This month, predicted vs actual per cloud" in summary
    assert "Cost anomalies" in summary and "none flagged" in summary  # cost_anomalies not materialized here
    # Only the 14th's trend rows exist, so the month is measured as of the 14th.
    assert "2026-03-14" in summary


FOCUS_1_2_COLUMNS = (
    "AvailabilityZone BilledCost BillingAccountId BillingAccountName BillingAccountType BillingCurrency "
    "BillingPeriodEnd BillingPeriodStart CapacityReservationId CapacityReservationStatus ChargeCategory "
    "ChargeClass ChargeDescription ChargeFrequency ChargePeriodEnd ChargePeriodStart CommitmentDiscountCategory "
    "CommitmentDiscountId CommitmentDiscountName CommitmentDiscountQuantity CommitmentDiscountStatus "
    "CommitmentDiscountType CommitmentDiscountUnit ConsumedQuantity ConsumedUnit ContractedCost "
    "ContractedUnitPrice EffectiveCost InvoiceId InvoiceIssuerName ListCost ListUnitPrice PricingCategory "
    "PricingCurrency PricingCurrencyContractedUnitPrice PricingCurrencyEffectiveCost "
    "PricingCurrencyListUnitPrice PricingQuantity PricingUnit ProviderName PublisherName RegionId RegionName "
    "ResourceId ResourceName ResourceType ServiceCategory ServiceName ServiceSubcategory SkuId SkuMeter "
    "SkuPriceDetails SkuPriceId SubAccountId SubAccountName SubAccountType Tags"
).split()


def test_focus_view_has_every_focus_1_2_column_and_the_totals(warehouse):
    con = connect_lake(Lake(warehouse / "lake"))
    columns = [r[0] for r in con.execute("DESCRIBE focus_cost_and_usage").fetchall()]
    # The 57 columns of FOCUS 1.2's CostAndUsage dataset (FOCUS specification v1.2, Columns), then
    # our two x_ extensions.
    assert columns == FOCUS_1_2_COLUMNS + ["x_Provider", "x_Source"]
    focus = con.execute(
        "SELECT sum(BilledCost), count(*) FILTER (WHERE ContractedCost IS NULL OR ListCost IS NULL),"
        " count(*) FILTER (WHERE ServiceCategory IS NULL) FROM focus_cost_and_usage"
    ).fetchone()
    raw = con.execute("SELECT sum(billed_cost) FROM cost_daily").fetchone()[0]
    assert focus == (raw, 0, 0)
    tax = con.execute(
        "SELECT ServiceCategory, ConsumedQuantity FROM focus_cost_and_usage WHERE ChargeCategory = 'Tax' LIMIT 1"
    ).fetchone()
    assert tax == ("Other", None)
    assert isinstance(raw, Decimal)


def test_a_mart_run_while_an_analyst_holds_the_catalog_lands_and_defers_the_views(warehouse):
    refresh_catalog(warehouse)
    catalog = warehouse / CATALOG_FILE
    # `duckdb -readonly finops.duckdb` in another process: DuckDB locks the file per process.
    analyst = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); print('open', flush=True); "
            "sys.stdin.read()",
            str(catalog),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout.readline() == "open\n"
        instance = DagsterInstance.ephemeral()
        held = materialize([marts.utilization_daily], partition_key=DAY.isoformat(), instance=instance)
    finally:
        analyst.communicate("")
    meta = held.asset_materializations_for_node("utilization_daily")[0].metadata
    assert (meta["rows"].value, meta["catalog"].value) == (36, "deferred")
    logged = [entry.user_message for entry in instance.all_logs(held.run_id)]
    assert (
        f"catalog view refresh deferred: {catalog.resolve()} is open in another process; views will be refreshed "
        "by the next run" in logged
    )
    assert Lake(warehouse / "lake").partitions("utilization_daily") == [{"usage_date": DAY.isoformat()}]
    assert refresh_catalog(warehouse).changed == ["utilization_daily"]  # once the session closed
