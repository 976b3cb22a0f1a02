"""cost_trend_daily / cost_trend_monthly on a fixture month computed by hand.

April 2026 (30 days), AWS, billing for 1-10 April:
- "Svc A": 12.00/day on i-shared plus 3.00/day on i-1; predicted 300/month for the service and
  90/month for resource i-1 (CSV resource_id) -> service row MTD 120 vs 100 (+20%, over),
  resource row MTD 30 vs 30 (on_track).
- "Svc B": 20.00/day; predicted 600 -> MTD 200 vs 200 (on_track); provider forecast 21 for 10 April.
- "Svc C": 5.00/day, no prediction -> no_prediction.
"""

from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from finops_pipeline.defs.mart_checks import trend_total_mismatches
from finops_pipeline.predictions import read_predictions
from finops_pipeline.warehouse.catalog import connect_lake
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.sql import run_sql
from finops_pipeline_tests.marts.fleet_lake import INGESTED

DAYS = [date(2026, 4, 1) + timedelta(days=i) for i in range(10)]
PARAMS = {"tag_key": "finops_id", "tolerance": 0.1}


def _cost(day, service, amount, resource_id=None):
    return {
        "provider": "aws",
        "usage_date": day,
        "billing_account_id": "1",
        "sub_account_id": "1",
        "service_name": service,
        "resource_id": resource_id,
        "sku": resource_id or service,
        "charge_category": "Usage",
        "billed_cost": Decimal(amount),
        "effective_cost": Decimal(amount),
        "billing_currency": "USD",
        "is_estimated": False,
        "source": "test",
        "ingested_at": INGESTED,
    }


@pytest.fixture
def lake(tmp_path) -> Lake:
    lake = Lake(tmp_path / "lake")
    rows = []
    for d in DAYS:
        rows += [
            _cost(d, "Svc A", "12.00", "i-shared"),
            _cost(d, "Svc A", "3.00", "i-1"),
            _cost(d, "Svc B", "20.00"),
            _cost(d, "Svc C", "5.00"),
        ]
    lake.write_partitions("cost_daily", pd.DataFrame(rows))
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    (predictions / "plan.csv").write_text(
        "provider,service,resource_id,month,predicted_monthly_cost,currency\n"
        "aws,Svc A,,2026-04,300,USD\n"
        "aws,Svc A,i-1,2026-04,90,USD\n"
        "aws,Svc B,,2026-04,600.00,USD\n"
    )
    lake.write_partitions("cost_predictions", read_predictions(predictions, "finops_id"))
    lake.write_partitions(
        "cost_forecast",
        pd.DataFrame(
            [
                {
                    "provider": "aws",
                    "usage_date": date(2026, 4, 9),
                    "service_name": "Svc B",
                    "period_start": date(2026, 4, 10),
                    "period_end": date(2026, 4, 11),
                    "metric": "UNBLENDED_COST",
                    "mean_cost": Decimal("21"),
                    "billing_currency": "USD",
                    "source": "test",
                    "ingested_at": INGESTED,
                }
            ]
        ),
    )
    return lake


def _daily(lake: Lake) -> pd.DataFrame:
    table = run_sql("cost_trend_daily", lake, {"start": DAYS[0], "end": DAYS[-1] + timedelta(days=1), **PARAMS})
    return table.to_pandas()


def test_daily_trend_matches_hand_computed_numbers(lake):
    daily = _daily(lake)
    day10 = daily[daily.usage_date == date(2026, 4, 10)].set_index(["service_name", "match_value"], drop=False)
    a = (
        day10.loc[("Svc A", None)]
        if ("Svc A", None) in day10.index
        else day10[(day10.service_name == "Svc A") & day10.match_value.isna()].iloc[0]
    )
    assert a.actual_cost == Decimal("12")  # i-1's 3.00 belongs to its own resource row
    assert a.predicted_cost == Decimal("10")  # 300 / 30 days
    assert a.mtd_actual_cost == Decimal("120")
    assert a.mtd_predicted_cost == Decimal("100")  # 300 x 10 / 30
    assert a.mtd_variance == Decimal("20")
    assert a.mtd_variance_pct == pytest.approx(0.2)
    assert a.projected_month_end_cost == Decimal("360")  # 120 / 10 x 30
    assert a.status == "over"
    resource = daily[(daily.usage_date == date(2026, 4, 10)) & (daily.match_value == "i-1")].iloc[0]
    assert resource.resource_id == "i-1"
    assert (resource.actual_cost, resource.mtd_actual_cost, resource.mtd_predicted_cost) == (
        Decimal("3"),
        Decimal("30"),
        Decimal("30"),
    )
    assert resource.status == "on_track"
    b = daily[(daily.usage_date == date(2026, 4, 10)) & (daily.service_name == "Svc B")].iloc[0]
    assert (b.mtd_actual_cost, b.mtd_predicted_cost, b.status) == (Decimal("200"), Decimal("200"), "on_track")
    assert b.forecast_cost == Decimal("21")
    c = daily[(daily.usage_date == date(2026, 4, 10)) & (daily.service_name == "Svc C")].iloc[0]
    assert c.status == "no_prediction" and c.predicted_cost is None
    assert c.projected_month_end_cost == Decimal("150")


def test_monthly_trend_is_measured_as_of_the_last_billed_day(lake):
    lake.write_partitions(
        "cost_trend_daily",
        run_sql("cost_trend_daily", lake, {"start": DAYS[0], "end": DAYS[-1] + timedelta(days=1), **PARAMS}),
    )
    monthly = run_sql(
        "cost_trend_monthly", lake, {"start": date(2026, 4, 1), "end": date(2026, 5, 1), "tolerance": 0.1}
    ).to_pandas()
    a = monthly[(monthly.service_name == "Svc A") & monthly.match_value.isna()].iloc[0]
    assert (a.as_of_date, a.days_elapsed, a.days_in_month) == (date(2026, 4, 10), 10, 30)
    assert a.actual_cost == Decimal("120") and a.predicted_cost == Decimal("300")
    assert a.prorated_predicted_cost == Decimal("100")
    assert a.projected_month_end_cost == Decimal("360")
    assert a.variance == Decimal("60") and a.variance_pct == pytest.approx(0.2)
    assert a.status == "over"
    assert set(monthly.status) == {"over", "on_track", "no_prediction"}


def test_every_billed_cent_lands_in_exactly_one_trend_row(lake):
    daily = run_sql("cost_trend_daily", lake, {"start": DAYS[0], "end": DAYS[-1] + timedelta(days=1), **PARAMS})
    lake.write_partitions("cost_trend_daily", daily)
    assert trend_total_mismatches(connect_lake(lake)) == []
    # Drop one trend row for 3 April: the check names that day.
    broken = daily.to_pandas()
    broken = broken.drop(broken[(broken.usage_date == date(2026, 4, 3)) & (broken.service_name == "Svc C")].index)
    lake.write_partitions("cost_trend_daily", broken, expected=[{"usage_date": date(2026, 4, 3)}])
    mismatches = trend_total_mismatches(connect_lake(lake))
    assert [(m["usage_date"], m["cost_daily"], m["cost_trend_daily"]) for m in mismatches] == [
        ("2026-04-03", "40.0000000000", "35.0000000000")
    ]


def test_resource_predictions_roll_up_when_the_services_billing_carries_no_match_keys(lake, tmp_path):
    """Cost Explorer rows carry no tags: Svc B's tag-matched predictions (150 + 60) cannot meet a
    billing row, so they count at service level (600 + 210 = 810/month) instead of showing as
    resources 'under' at 0 next to a service 'no_prediction'. Svc A, whose billing does carry a
    matched key (i-1), keeps an unbilled resource prediction (i-ghost) visible on its own row."""
    extra = tmp_path / "predictions" / "tagged.csv"
    extra.write_text(
        "provider,service,resource_id,month,predicted_monthly_cost,currency\n"
        "aws,Svc B,b-1,2026-04,150,USD\n"
        "aws,Svc B,b-2,2026-04,60,USD\n"
        "aws,Svc A,i-ghost,2026-04,30,USD\n"
    )
    lake.write_partitions("cost_predictions", read_predictions(tmp_path / "predictions", "finops_id"))
    day10 = _daily(lake)
    day10 = day10[day10.usage_date == date(2026, 4, 10)]
    b = day10[day10.service_name == "Svc B"]
    assert len(b) == 1 and pd.isna(b.iloc[0].match_value)
    assert b.iloc[0].mtd_predicted_cost == Decimal("270")  # 810 x 10 / 30
    ghost = day10[day10.match_value == "i-ghost"].iloc[0]
    assert (ghost.mtd_actual_cost, ghost.mtd_predicted_cost, ghost.status) == (Decimal("0"), Decimal("10"), "under")
