"""The FinOps Foundation's FOCUS use-case queries run on the demo warehouse's focus_cost_and_usage."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from finops_pipeline.demo import run_demo
from finops_pipeline.focus_use_cases import parameters, run, use_cases
from finops_pipeline.focus_validate import export_focus
from finops_pipeline.warehouse.catalog import open_catalog

TODAY = date(2026, 3, 4)  # the demo's last two days: 2026-03-02 and 2026-03-03
FIRST = datetime(2026, 3, 2, tzinfo=timezone.utc)
AFTER = datetime(2026, 3, 5, tzinfo=timezone.utc)  # published queries compare ChargePeriodEnd < ?
MONTH, NEXT_MONTH = datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 5, 1, tzinfo=timezone.utc)


def _value(column: str, op: str):
    """A value for one `?`: the demo's days, its month, or the GCP project shop-prod."""
    if column == "SubAccountId":
        return "shop-prod"
    if column.startswith("BillingPeriod"):
        return MONTH if op in (">=", ">") else NEXT_MONTH
    return FIRST if op in (">=", ">") else AFTER


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("focus") / "demo"
    run_demo(data_dir, days=2, today=TODAY, out=lambda _: None)
    return data_dir


@pytest.fixture(scope="module")
def con(demo_dir):
    con = open_catalog(demo_dir)
    yield con
    con.close()


def _answer(con, name: str) -> list[dict]:
    sql = use_cases()[name]
    columns, rows = run(con, sql, [_value(c, op) for c, op in parameters(sql)])
    return [dict(zip(columns, row)) for row in rows]


def test_the_published_set_is_shipped():
    assert len(use_cases()) == 17
    for name, sql in use_cases().items():
        assert "-- Source: https://focus.finops.org/use-case/" in sql, name
        assert "FROM focus_data_table" in sql, name


@pytest.mark.parametrize("name", sorted(use_cases()))
def test_every_use_case_runs(con, name):
    _answer(con, name)  # no error: every column it names exists with a type the query can use


def test_budgets_see_what_cost_daily_billed(con):
    answer = {
        (r["ProviderName"], r["BillingPeriodStart"].date()): r["TotalBilledCost"]
        for r in _answer(con, "update_budgets")
    }
    expected = con.execute(
        "SELECT provider, sum(billed_cost) FROM cost_daily GROUP BY provider ORDER BY provider"
    ).fetchall()
    names = {"aws": "AWS", "azure": "Microsoft", "gcp": "Google Cloud"}
    assert answer == {(names[p], date(2026, 3, 1)): total for p, total in expected}


def test_costs_by_availability_zone_add_up_to_the_projects_cost(con):
    rows = _answer(con, "costs_by_availability_zone")
    by_zone = defaultdict(Decimal)
    for r in rows:
        by_zone[(r["RegionName"], r["AvailabilityZone"])] += r["TotalEffectiveCost"]
    total = con.execute("SELECT sum(effective_cost) FROM cost_daily WHERE sub_account_id = 'shop-prod'").fetchone()[0]
    assert sum(by_zone.values()) == total
    assert {k for k in by_zone if k[1]} == {("Belgium", "europe-west1-a"), ("Iowa", "us-central1-a")}


def test_compute_cost_by_commitment_kind_sees_the_committed_use_discount(con):
    rows = [r for r in _answer(con, "effective_cost_of_compute") if r["ProviderName"] == "Google Cloud"]
    committed = sum(r["TotalEffectiveCost"] for r in rows if r["CommitmentDiscountType"] == "COMMITTED_USAGE_DISCOUNT")
    expected = con.execute(
        "SELECT sum(effective_cost) FROM cost_daily WHERE provider = 'gcp' AND commitment_discount_id IS NOT NULL"
    ).fetchone()[0]
    assert committed == expected > 0


def test_the_validators_parquet_holds_json_as_text(demo_dir, tmp_path):
    """DuckDB's JSON type would be a Parquet JSON logical type, read as binary by the validator."""
    path = tmp_path / "focus.parquet"
    rows = export_focus(demo_dir, path)
    schema = pq.read_schema(path)
    assert (str(schema.field("Tags").type), str(schema.field("SkuPriceDetails").type)) == ("string", "string")
    tags = pq.read_table(path, columns=["Tags", "x_Source"]).to_pylist()
    assert len(tags) == rows
    assert {r["Tags"] for r in tags if r["x_Source"] == "bigquery:detailed_export"} >= {
        '{"finops_id":"gcp-gce_instance-000","team":"checkout"}'
    }
