"""cost_anomalies on fixture series computed by hand (shipped thresholds: min_history_days 14,
min_weekday_points 4, scale_floor_pct 5, z 3.5 / 5 / 8, min_abs_change 10, top 3 resources).

AWS account 111 bills from Monday 23 February 2026; the days under test are Saturday 28 to
Monday 30 March. Monday 30 March's baseline window is [2 March, 30 March): 28 days, 4 Mondays.
- "Spike": i-a 80/day, i-b 20/day, except on the Mondays 9, 16, 23 March (i-b 22, 18, 21);
  on 30 March i-a 70 and i-b 90 (total 160). Mondays 100, 102, 98, 101: median 100.5, absolute
  deviations 0.5, 1.5, 2.5, 0.5 -> MAD 1.0; scale max(1.4826 x 1.0, 5% x 100.5 = 5.025) = 5.025;
  deviation 59.5, z 59.5 / 5.025 = 11.84 -> high spike. i-b moved 90 - (20 + 22 + 18 + 21) / 4 =
  69.75, i-a 70 - 80 = -10.
- "Drop": 50/day, 20 on 30 March: MAD 0, scale 2.5, deviation -30, z -12 -> high drop.
- "Stopped": 30/day, no row on 30 March (the provider billed that day): 0 vs 30, z -20 -> high drop.
- "Modest": 200/day, 260 on 30 March: z 60 / 10 = 6 -> medium. "Mild": 400/day, 480: z 80 / 20 = 4
  -> low. "Tiny": 1/day, 5: z 80 but the change (4) is under min_abs_change -> normal.
- "Weekly": 100 Monday to Friday, 10 on weekends: each day against its own weekday -> normal.
- "New": only on 30 March (30): new, no baseline.
- "Short": 40/day from 20 March: 10 days of history on 30 March -> insufficient_history.
"""

from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from finops_pipeline.defs import mart_checks, marts
from finops_pipeline.defs.mart_checks import duplicate_keys, null_keys
from finops_pipeline.defs.rules import AnomalyThresholdsFileError, anomaly_thresholds_overrides
from finops_pipeline.settings import get_settings
from finops_pipeline.simulator.fleet import is_runaway_day
from finops_pipeline.warehouse.catalog import SQL_DIR, connect_lake
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.schemas import TABLES
from finops_pipeline.warehouse.sql import run_sql
from finops_pipeline_tests.marts.fleet_lake import INGESTED, cost_table
from finops_pipeline_tests.runs import materialize, range_tags

FIRST = date(2026, 2, 23)  # a Monday
MONDAY = date(2026, 3, 30)
DAYS = [FIRST + timedelta(days=i) for i in range((MONDAY - FIRST).days + 1)]
PARAMS = {"start": date(2026, 3, 28), "end": MONDAY + timedelta(days=1), "baseline_days": 28}


def _cost(day, service, amount, resource_id=None, provider="aws"):
    return {
        "provider": provider,
        "usage_date": day,
        "billing_account_id": "1",
        "sub_account_id": "111",
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


def _fixture_rows() -> list[dict]:
    i_b = {date(2026, 3, 9): "22", date(2026, 3, 16): "18", date(2026, 3, 23): "21", MONDAY: "90"}
    flat = {"Drop": ("50", "20"), "Modest": ("200", "260"), "Mild": ("400", "480"), "Tiny": ("1", "5")}
    rows = []
    for d in DAYS:
        rows += [_cost(d, "Spike", "70" if d == MONDAY else "80", "i-a"), _cost(d, "Spike", i_b.get(d, "20"), "i-b")]
        rows += [_cost(d, service, after if d == MONDAY else before) for service, (before, after) in flat.items()]
        rows.append(_cost(d, "Weekly", "100" if d.isoweekday() <= 5 else "10"))
        if d < MONDAY:
            rows.append(_cost(d, "Stopped", "30"))
        if d >= date(2026, 3, 20):
            rows.append(_cost(d, "Short", "40"))
    rows.append(_cost(MONDAY, "New", "30"))
    return rows


@pytest.fixture
def rows(tmp_path) -> pd.DataFrame:
    lake = Lake(tmp_path / "lake")
    lake.write_partitions("cost_daily", pd.DataFrame(_fixture_rows()))
    return run_sql("cost_anomalies", lake, PARAMS).to_pandas()


def _row(rows: pd.DataFrame, service: str, day: date = MONDAY) -> pd.Series:
    match = rows[(rows.service_name == service) & (rows.usage_date == day)]
    assert len(match) == 1, f"{service} on {day}: {len(match)} rows"
    return match.iloc[0]


def test_spike_against_the_same_weekday_median_names_the_resources_that_moved(rows):
    spike = _row(rows, "Spike")
    assert (spike.actual_cost, spike.expected_cost, spike.mad_cost, spike.deviation) == (
        Decimal("160"),
        Decimal("100.5"),
        Decimal("1"),
        Decimal("59.5"),
    )
    assert spike.robust_z == pytest.approx(59.5 / 5.025)
    assert spike.deviation_pct == pytest.approx(59.5 / 100.5)
    assert (spike.baseline, spike.baseline_points, spike.history_days) == ("same_weekday", 4, 28)
    assert (spike.status, spike.severity) == ("spike", "high")
    assert list(spike.top_resources) == [
        {"resource_id": "i-b", "change": Decimal("69.75")},
        {"resource_id": "i-a", "change": Decimal("-10")},
    ]


@pytest.mark.parametrize(
    "service, actual, expected, z, status, severity",
    [
        ("Drop", "20", "50", -12.0, "drop", "high"),
        ("Stopped", "0", "30", -20.0, "drop", "high"),
        ("Modest", "260", "200", 6.0, "spike", "medium"),
        ("Mild", "480", "400", 4.0, "spike", "low"),
        ("Tiny", "5", "1", 80.0, "normal", "none"),
    ],
)
def test_flat_series_severity_follows_the_seed_thresholds(rows, service, actual, expected, z, status, severity):
    row = _row(rows, service)
    assert (row.actual_cost, row.expected_cost, row.mad_cost) == (Decimal(actual), Decimal(expected), Decimal(0))
    assert row.deviation == Decimal(actual) - Decimal(expected)
    assert row.robust_z == pytest.approx(z)
    assert (row.status, row.severity) == (status, severity)
    assert row.top_resources is None  # service-level billing rows name no resource


def test_weekly_pattern_does_not_alarm(rows):
    for day, expected in [(date(2026, 3, 28), "10"), (date(2026, 3, 29), "10"), (MONDAY, "100")]:
        row = _row(rows, "Weekly", day)
        assert (row.expected_cost, row.deviation, row.robust_z) == (Decimal(expected), Decimal(0), 0.0)
        assert (row.baseline, row.baseline_points, row.status, row.severity) == ("same_weekday", 4, "normal", "none")


def test_new_service_and_short_history_are_reported_not_alarmed(rows):
    new, short = _row(rows, "New"), _row(rows, "Short")
    assert (new.actual_cost, new.history_days, new.status) == (Decimal(30), 0, "new")
    assert (short.actual_cost, short.history_days, short.status) == (Decimal(40), 10, "insufficient_history")
    for row in (new, short):  # no baseline, so no deviation and no severity
        assert row[["expected_cost", "deviation", "robust_z", "severity", "top_resources"]].isna().all()


def test_only_the_injected_changes_are_flagged_over_the_three_days(rows):
    flagged = rows[rows.status.isin(["spike", "drop"])]
    assert sorted(zip(flagged.usage_date, flagged.service_name)) == [
        (MONDAY, "Drop"),
        (MONDAY, "Mild"),
        (MONDAY, "Modest"),
        (MONDAY, "Spike"),
        (MONDAY, "Stopped"),
    ]
    assert len(rows) == 8 + 8 + 9  # 8 series on each day, "New" on Monday only ("Stopped" at 0)
    assert set(rows.status[rows.usage_date < MONDAY]) == {"normal", "insufficient_history"}


def test_a_provider_without_enough_billing_reports_insufficient_history_not_new(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.write_partitions("cost_daily", pd.DataFrame([_cost(MONDAY, "Compute Engine", "12", provider="gcp")]))
    row = run_sql("cost_anomalies", lake, {**PARAMS, "start": MONDAY}).to_pandas().iloc[0]
    assert (row.provider, row.history_days, row.status) == ("gcp", 0, "insufficient_history")
    assert pd.isna(row.severity) and pd.isna(row.expected_cost)


def test_rows_have_unique_non_null_keys(rows, tmp_path):
    lake = Lake(tmp_path / "anomalies")
    lake.write_partitions("cost_anomalies", rows)
    con = connect_lake(lake)
    spec = TABLES["cost_anomalies"]
    assert (duplicate_keys(con, spec), null_keys(con, spec)) == (0, 0)


def test_thresholds_are_data_without_weekday_baselines_the_weekend_alarms(tmp_path):
    """The same series with min_weekday_points 5 (never met in 28 days): the all-days median of the
    weekly pattern is 100, so its weekend (10) is a drop: the seed, not the SQL, decides."""
    seed = (SQL_DIR / "seeds" / "anomaly_thresholds.csv").read_text().replace("aws,14,4,", "aws,14,5,")
    (tmp_path / "thresholds.csv").write_text(seed)
    lake = Lake(tmp_path / "lake")
    lake.write_partitions("cost_daily", pd.DataFrame(_fixture_rows()))
    rows = run_sql("cost_anomalies", lake, PARAMS, {"anomaly_thresholds": tmp_path / "thresholds.csv"}).to_pandas()
    saturday = _row(rows, "Weekly", date(2026, 3, 28))
    assert (saturday.baseline, saturday.baseline_points, saturday.expected_cost) == ("all_days", 28, Decimal(100))
    assert (saturday.deviation, saturday.status, saturday.severity) == (Decimal(-90), "drop", "high")


def test_asset_writes_the_day_partitions_and_passes_its_key_check(data_dir):
    lake = Lake(data_dir / "lake")
    lake.write_partitions("cost_daily", pd.DataFrame(_fixture_rows()))
    result = materialize(
        [marts.cost_anomalies, mart_checks.cost_anomalies_keys],
        tags=range_tags(date(2026, 3, 28), date(2026, 3, 31)),
    )
    assert result.success
    assert lake.partitions("cost_anomalies") == [{"usage_date": f"2026-03-{d}"} for d in (28, 29, 30)]
    events = result.get_asset_materialization_events()  # one per partition, each with the run's metadata
    assert [e.materialization.metadata["rows"].value for e in events] == [25, 25, 25]
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {"cost_anomalies_keys": True}
    con = connect_lake(lake)
    assert con.execute(
        "SELECT service_name, severity FROM cost_anomalies WHERE status = 'spike' ORDER BY 1"
    ).fetchall() == [("Mild", "low"), ("Modest", "medium"), ("Spike", "high")]


def test_a_demo_sized_month_of_the_fleet_flags_the_injected_runaway_and_nothing_else(fleet, tmp_path):
    """30 days of the simulated bill: the runaway Lambda days with 14 days of history before them
    are high spikes naming the function; every other series is normal or still too short."""
    lake = Lake(tmp_path / "lake")
    start, end = date(2026, 2, 1), date(2026, 3, 3)
    for provider in ("aws", "gcp", "azure"):
        for i in range((end - start).days):
            lake.write_partitions("cost_daily", cost_table(fleet, provider, start + timedelta(days=i)))
    rows = run_sql("cost_anomalies", lake, {"start": start, "end": end, "baseline_days": 28}).to_pandas()
    flagged = rows[~rows.status.isin(["normal", "insufficient_history"])]
    keys = ["usage_date", "provider", "sub_account_id", "service_name", "status", "severity"]
    assert list(flagged[keys].itertuples(index=False, name=None)) == [
        (date(2026, 2, 16), "aws", "111111111111", "AWS Lambda", "spike", "high"),
        (date(2026, 2, 26), "aws", "111111111111", "AWS Lambda", "spike", "high"),
    ]
    assert [is_runaway_day(d) for d in (date(2026, 2, 6), date(2026, 2, 16), date(2026, 2, 26))] == [True] * 3
    runaway = next(r for r in fleet.resources if r.runaway)
    assert [t["resource_id"] for t in flagged.iloc[0].top_resources] == [runaway.resource_id]
    # 6 February ran away too, but with 5 days of billing before it: reported, not alarmed.
    early = _row(rows[rows.sub_account_id == "111111111111"], "AWS Lambda", date(2026, 2, 6))
    assert early.status == "insufficient_history"


def _thresholds_file(tmp_path, monkeypatch, old: str, new: str) -> str:
    """The shipped anomaly thresholds with one edit, as FINOPS_ANOMALY_THRESHOLDS_FILE; returns its path."""
    seed = (SQL_DIR / "seeds" / "anomaly_thresholds.csv").read_text()
    assert old in seed
    path = tmp_path / "my_thresholds.csv"
    path.write_text(seed.replace(old, new, 1), encoding="utf-8")
    monkeypatch.setenv("FINOPS_ANOMALY_THRESHOLDS_FILE", str(path))
    return str(path)


def test_user_thresholds_file_overrides_the_seed_in_the_asset(data_dir, tmp_path, monkeypatch):
    """z_low 4.5 instead of 3.5: "Mild" (z 4) is no longer a spike; "Modest" (6) and "Spike" (11.84) still are."""
    _thresholds_file(tmp_path, monkeypatch, "aws,14,4,5,3.5,", "aws,14,4,5,4.5,")
    lake = Lake(data_dir / "lake")
    lake.write_partitions("cost_daily", pd.DataFrame(_fixture_rows()))
    result = materialize(
        [marts.cost_anomalies],
        tags={"dagster/asset_partition_range_start": "2026-03-30", "dagster/asset_partition_range_end": "2026-03-30"},
    )
    assert result.success
    assert connect_lake(lake).execute(
        "SELECT service_name, severity FROM cost_anomalies WHERE status = 'spike' ORDER BY 1"
    ).fetchall() == [("Modest", "medium"), ("Spike", "high")]


@pytest.mark.parametrize(
    "old, new, where",
    [
        ("aws,14,", "AWS,14,", "line 2, column 1 (provider): 'AWS' is not one of aws, gcp, azure"),
        ("gcp,14,", "aws,14,", "line 3, column 1 (provider): 'aws' has a row already; keep one row per provider"),
        ("aws,14,", "aws,40,", "line 2, column 2 (min_history_days): '40' is not a whole number from 1 to 28"),
        ("aws,14,4,5,3.5,", "aws,14,4,5,ten,", "line 2, column 5 (z_low): 'ten' is not a number >= 0"),
        ("aws,14,4,5,3.5,", "aws,14,4,5,0,", "line 2, column 5 (z_low): '0': give a number > 0"),
        (
            "aws,14,4,5,3.5,5,8,",
            "aws,14,4,5,3.5,9,8,",
            "line 2, column 6 (z_medium): z_low <= z_medium <= z_high is needed, not 3.5, 9, 8",
        ),
        ("aws,14,4,5,3.5,5,8,10,3,", "aws,14,4,5,3.5,5,8,-1,3,", "line 2, column 8 (min_abs_change): '-1' is not"),
        ("provider,", "cloud,", "line 1: missing column(s) ['provider']; copy the header of the shipped seed"),
        ("aws,14,4,5,3.5,5,8,10,3,", "aws,14,4,5,3.5,5,8,10,3,4,", "line 2: more fields than the header has"),
    ],
)
def test_thresholds_file_is_validated_naming_file_line_column_and_fix(tmp_path, monkeypatch, old, new, where):
    path = _thresholds_file(tmp_path, monkeypatch, old, new)
    with pytest.raises(AnomalyThresholdsFileError) as info:
        anomaly_thresholds_overrides(get_settings(), marts.BASELINE_DAYS)
    assert str(info.value).startswith(f"{path}: {where}")


def test_thresholds_file_without_a_providers_row_is_refused(tmp_path, monkeypatch):
    seed = (SQL_DIR / "seeds" / "anomaly_thresholds.csv").read_text().splitlines()
    path = tmp_path / "two_clouds.csv"
    path.write_text("\n".join(line for line in seed if not line.startswith("azure,")) + "\n")
    monkeypatch.setenv("FINOPS_ANOMALY_THRESHOLDS_FILE", str(path))
    with pytest.raises(AnomalyThresholdsFileError, match=r"two_clouds\.csv: no row for azure; add one per provider"):
        anomaly_thresholds_overrides(get_settings(), marts.BASELINE_DAYS)


def test_a_missing_thresholds_file_names_the_variable_and_the_seed_to_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("FINOPS_ANOMALY_THRESHOLDS_FILE", str(tmp_path / "mine.csv"))
    with pytest.raises(AnomalyThresholdsFileError) as info:
        anomaly_thresholds_overrides(get_settings(), marts.BASELINE_DAYS)
    assert str(info.value) == (
        f"FINOPS_ANOMALY_THRESHOLDS_FILE={tmp_path / 'mine.csv'} does not exist; point it at a CSV like "
        f"{SQL_DIR / 'seeds' / 'anomaly_thresholds.csv'}"
    )
