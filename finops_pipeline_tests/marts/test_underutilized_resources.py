"""underutilized_resources: rule edges computed by hand, and the fleet's idle resources."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest

from finops_pipeline.defs.mart_checks import flags_without_evidence
from finops_pipeline.defs.rules import RulesFileError, maxima_read_by_rules, rules_overrides
from finops_pipeline.settings import get_settings
from finops_pipeline.warehouse.catalog import SQL_DIR, connect_lake
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.sql import run_sql
from finops_pipeline_tests.marts.fleet_lake import INGESTED, write_fleet

AS_OF = date(2026, 3, 14)
WINDOW = [AS_OF - timedelta(days=13 - i) for i in range(14)]  # 2026-03-01 .. 2026-03-14


def _ec2_day(resource_id: str, day: date, cpu: float, network_bytes: float) -> list[dict]:
    """24 hours whose CPU averages to ``cpu`` and whose network I/O totals ``network_bytes``."""
    rows = []
    for h in range(24):
        start = datetime(day.year, day.month, day.day, h, tzinfo=timezone.utc)
        base = {
            "provider": "aws",
            "usage_date": day,
            "hour_start": start,
            "resource_id": resource_id,
            "resource_type": "ec2",
            "region": "us-east-1",
            "native_metric": "x",
            "ingested_at": INGESTED,
            "avg": None,
            "max": None,
            "min": None,
            "sum": None,
        }
        rows.append({**base, "metric": "cpu_utilization_pct", "avg": cpu, "max": cpu, "min": cpu})
        # The day's traffic arrives in the first hour, so the daily total is exact.
        rows.append({**base, "metric": "network_in_bytes", "sum": float(network_bytes) if h == 0 else 0.0})
        rows.append({**base, "metric": "network_out_bytes", "sum": 0.0})
    return rows


def _write_ec2(lake: Lake, plan: dict[str, dict[date, tuple[float, float]]]) -> None:
    rows = [r for rid, days in plan.items() for day, (cpu, net) in days.items() for r in _ec2_day(rid, day, cpu, net)]
    lake.write_partitions("metrics_hourly", pa.Table.from_pylist(rows))


def _flags(lake: Lake, as_of: date = AS_OF, overrides=None) -> pd.DataFrame:
    """Build utilization_daily over the look-back (as the asset graph does), then the flags."""
    first, end = as_of - timedelta(days=29), as_of + timedelta(days=1)
    lake.write_partitions("utilization_daily", run_sql("utilization_daily", lake, {"start": first, "end": end}))
    table = run_sql(
        "underutilized_resources",
        lake,
        {"start": as_of, "end": as_of + timedelta(days=1), "coverage_floor": 0.9},
        overrides,
    )
    return table.to_pandas().set_index(["resource_id", "rule_id"])


BUSY = (55.0, 5e8)


def test_trusted_advisor_rule_counts_exactly_ten_percent_and_needs_four_days(tmp_path):
    lake = Lake(tmp_path / "lake")
    plan = {
        # 4 days at exactly 10% CPU and exactly 5 MB: "10% or less", "5 MB or less" -> flagged.
        "i-four-edge": {d: ((10.0, 5_000_000) if i < 4 else BUSY) for i, d in enumerate(WINDOW)},
        # 3 qualifying days, a 4th just over 10% -> not flagged.
        "i-three": {d: ((10.0, 1e6) if i < 3 else (10.01, 1e6) if i == 3 else BUSY) for i, d in enumerate(WINDOW)},
        # 4 days under 10% CPU but one of them with 5 MB + 1 byte of network -> 3 days -> not flagged.
        "i-net-over": {
            d: ((2.0, 5_000_001) if i == 0 else (2.0, 1e6) if i < 4 else BUSY) for i, d in enumerate(WINDOW)
        },
        # only 6 of 14 days have data, 4 of them idle -> flagged, but low confidence.
        "i-gaps": {d: ((1.0, 1e5) if i < 4 else BUSY) for i, d in enumerate(WINDOW[::2][:6])},
    }
    _write_ec2(lake, plan)
    flags = _flags(lake)
    assert set(flags.index) == {("i-four-edge", "aws_ec2_low_utilization"), ("i-gaps", "aws_ec2_low_utilization")}
    edge = flags.loc[("i-four-edge", "aws_ec2_low_utilization")]
    assert edge.days_matched == 4
    assert edge.days_with_data == 14 and edge.hours_with_data == 336
    assert edge.confidence == "high"
    assert edge.window_start == date(2026, 3, 1) and edge.window_end == date(2026, 3, 15)
    assert "4 of 14 days matched (needs 4)" in edge.evidence
    gaps = flags.loc[("i-gaps", "aws_ec2_low_utilization")]
    assert gaps.days_with_data == 6 and gaps.days_matched == 4
    assert gaps.coverage == pytest.approx(6 / 14)
    assert gaps.confidence == "low"


def test_window_moves_with_the_as_of_day(tmp_path):
    lake = Lake(tmp_path / "lake")
    # Idle on 1-4 March only: flagged as of 14 March, not as of 15 March (1 March left the window).
    _write_ec2(
        lake,
        {"i-early": {d: ((1.0, 1e5) if i < 4 else BUSY) for i, d in enumerate(WINDOW)} | {date(2026, 3, 15): BUSY}},
    )
    assert ("i-early", "aws_ec2_low_utilization") in _flags(lake, AS_OF).index
    assert _flags(lake, AS_OF + timedelta(days=1)).empty


def test_savings_are_the_run_rate_of_trailing_resource_cost(tmp_path):
    lake = Lake(tmp_path / "lake")
    _write_ec2(lake, {"i-idle": {d: (1.0, 1e5) for d in WINDOW}})
    cost = pd.DataFrame(
        [
            {
                "provider": "aws",
                "usage_date": d,
                "billing_account_id": "1",
                "sub_account_id": "1",
                "service_name": "Amazon Elastic Compute Cloud - Compute",
                "resource_id": "i-idle",
                "charge_category": "Usage",
                "billed_cost": Decimal("2.40"),
                "effective_cost": Decimal("2.40"),
                "billing_currency": "USD",
                "is_estimated": False,
                "source": "test",
                "ingested_at": INGESTED,
            }
            for d in WINDOW
        ]
    )
    lake.write_partitions("cost_daily", cost)
    row = _flags(lake).loc[("i-idle", "aws_ec2_low_utilization")]
    assert row.trailing_30d_cost == Decimal("33.6")  # 14 days x 2.40
    assert row.monthly_run_rate == Decimal("73")  # 2.40 a day x 730/24 days
    assert row.estimated_monthly_savings == Decimal("73")  # shutdown saves the whole run-rate
    assert row.billing_currency == "USD"


@pytest.fixture(scope="module")
def fleet_lake(tmp_path_factory, fleet):
    lake = Lake(tmp_path_factory.mktemp("fleet") / "lake")
    write_fleet(fleet, lake, date(2026, 3, 1), AS_OF + timedelta(days=1))
    return lake


def _name(fleet, provider, rtype, index):
    return fleet.of(provider, rtype)[index].resource_id


def test_fleet_idle_resources_are_flagged_and_busy_ones_are_not(fleet, fleet_lake):
    flags = _flags(fleet_lake)
    expected = {
        (_name(fleet, "aws", "ec2", 1), "aws_ec2_low_utilization"),
        (_name(fleet, "aws", "ec2", 3), "aws_ec2_low_utilization"),  # idle 5 of every 14 days
        (_name(fleet, "aws", "rds", 1), "aws_rds_idle"),
        (_name(fleet, "aws", "elb", 1), "aws_elb_idle"),
        (_name(fleet, "aws", "alb", 0), "aws_alb_idle"),
        (_name(fleet, "gcp", "gce_instance", 1), "gcp_vm_idle"),
        (_name(fleet, "gcp", "cloudsql_database", 1), "cloudsql_idle"),
        (_name(fleet, "azure", "virtual_machine", 1), "azure_vm_shutdown"),
        (_name(fleet, "azure", "virtual_machine", 2), "azure_vm_resize"),
        (_name(fleet, "azure", "sql_database", 1), "azure_sql_idle"),
        (_name(fleet, "azure", "app_service", 1), "app_service_idle"),
    }
    assert set(flags.index) == expected
    intermittent = flags.loc[(_name(fleet, "aws", "ec2", 3), "aws_ec2_low_utilization")]
    assert intermittent.days_matched == 5
    resize = flags.loc[(_name(fleet, "azure", "virtual_machine", 2), "azure_vm_resize")]
    vm = fleet.of("azure", "virtual_machine")[2]
    # Resize saves half of the run-rate: 24h x hourly price (+-1% daily jitter) x 730/24 / 2.
    assert float(resize.estimated_monthly_savings) == pytest.approx(float(vm.hourly_cost) * 730 / 2, rel=0.011)
    # Cloud SQL's 30-day window holds 14 days of data: flagged, not with high confidence.
    cloudsql = flags.loc[(_name(fleet, "gcp", "cloudsql_database", 1), "cloudsql_idle")]
    assert cloudsql.confidence == "low" and cloudsql.days_with_data == 14
    con = connect_lake(fleet_lake)
    con.register("underutilized_resources", flags.reset_index())
    assert flags_without_evidence(con) == 0


def test_user_rules_file_overrides_thresholds(fleet, fleet_lake, tmp_path, monkeypatch):
    seed = (SQL_DIR / "seeds" / "underutilization_rules.csv").read_text().splitlines()
    stricter = [
        line.replace(
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,4,", "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,6,"
        )
        for line in seed
    ]
    rules = tmp_path / "my_rules.csv"
    rules.write_text("\n".join(stricter) + "\n")
    monkeypatch.setenv("FINOPS_RULES_FILE", str(rules))
    flags = _flags(fleet_lake, overrides=rules_overrides(get_settings()))
    ec2 = {rid for rid, rule in flags.index if rule == "aws_ec2_low_utilization"}
    assert ec2 == {_name(fleet, "aws", "ec2", 1)}  # the 5-days-idle instance no longer qualifies


def test_unusable_rules_file_names_the_file_and_the_fix(tmp_path, monkeypatch):
    rules = tmp_path / "rules.csv"
    rules.write_text("rule_id,provider\nx,aws\n")
    monkeypatch.setenv("FINOPS_RULES_FILE", str(rules))
    with pytest.raises(RulesFileError, match=r"rules\.csv: line 1: missing column\(s\) \['resource_type'"):
        rules_overrides(get_settings())


def _rules_file(tmp_path, monkeypatch, old: str, new: str, prefix: str = "") -> str:
    """The shipped seed with one edit, as FINOPS_RULES_FILE; returns its path."""
    seed = (SQL_DIR / "seeds" / "underutilization_rules.csv").read_text()
    assert old in seed
    rules = tmp_path / "my_rules.csv"
    rules.write_text(prefix + seed.replace(old, new, 1), encoding="utf-8")
    monkeypatch.setenv("FINOPS_RULES_FILE", str(rules))
    return str(rules)


EC2_RULE = "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,4,10,5000000,"


@pytest.mark.parametrize(
    "new, where",
    [
        (
            "aws_ec2_low_utilization,AWS,ec2,shutdown,14,1.0,4,10,5000000,",
            "line 2, column 2 (provider): 'AWS' is not one of aws, gcp, azure",
        ),
        (
            "aws_ec2_low_utilization,aws,ec_2,shutdown,14,1.0,4,10,5000000,",
            "line 2, column 3 (resource_type): 'ec_2' is not an aws resource type; use one of alb, dynamodb, ec2, elb, "
            "lambda, rds, s3",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,5,4,10,5000000,",
            "line 2, column 6 (savings_fraction): '5' is not a number from 0 to 1",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,15,10,5000000,",
            "line 2, column 7 (min_days_matched): 15 is more than window_days (14)",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,4,ten,5000000,",
            "line 2, column 8 (day_cpu_avg_at_most_pct): 'ten' is not a number from 0 to 100",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,4,10,-1,",
            "line 2, column 9 (day_network_at_most_bytes): '-1' is not a number >= 0",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,4,,,",
            "line 2: no threshold is set, so the rule would flag every ec2",
        ),
        (",aws,ec2,shutdown,14,1.0,4,10,5000000,", "line 2, column 1 (rule_id): '' is empty or repeated"),
        (
            "aws_ec2_low_utilization,aws,ec2,delete,14,1.0,4,10,5000000,",
            "line 2, column 4 (action): 'delete': use shutdown or resize",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,,1.0,4,10,5000000,",
            "line 2, column 5 (window_days): empty; give the rule's window as a whole number of days",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14.5,1.0,4,10,5000000,",
            "line 2, column 5 (window_days): '14.5' is not a whole number from 1 to 366",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,0,1.0,4,10,5000000,",
            "line 2, column 5 (window_days): '0' is not a whole number from 1 to 366",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,,4,10,5000000,",
            "line 2, column 6 (savings_fraction): empty; give the share of the cost saved, from 0 to 1",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,2.5,10,5000000,",
            "line 2, column 7 (min_days_matched): '2.5' is not a whole number >= 1",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,4,inf,5000000,",
            "line 2, column 8 (day_cpu_avg_at_most_pct): 'inf' is not a number from 0 to 100",
        ),
        (
            "aws_ec2_low_utilization,aws,ec2,shutdown,14,1.0,4,10,nan,",
            "line 2, column 9 (day_network_at_most_bytes): 'nan' is not a number >= 0",
        ),
        (EC2_RULE + ",", "line 2: more fields than the header has"),
    ],
)
def test_rules_file_is_validated_completely_naming_file_line_and_column(tmp_path, monkeypatch, new, where):
    path = _rules_file(tmp_path, monkeypatch, EC2_RULE, new)
    with pytest.raises(RulesFileError) as info:
        rules_overrides(get_settings())
    assert str(info.value).startswith(f"{path}: {where}")


def test_a_repeated_rule_id_names_its_second_line(tmp_path, monkeypatch):
    path = _rules_file(tmp_path, monkeypatch, "aws_rds_idle,aws,rds,", "aws_ec2_low_utilization,aws,rds,")
    with pytest.raises(RulesFileError) as info:
        rules_overrides(get_settings())
    assert str(info.value) == f"{path}: line 3, column 1 (rule_id): 'aws_ec2_low_utilization' is empty or repeated"


def test_a_missing_rules_file_names_the_variable_and_the_seed_to_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("FINOPS_RULES_FILE", str(tmp_path / "mine.csv"))
    with pytest.raises(RulesFileError) as info:
        rules_overrides(get_settings())
    assert str(info.value) == (
        f"FINOPS_RULES_FILE={tmp_path / 'mine.csv'} does not exist; point it at a CSV like "
        f"{SQL_DIR / 'seeds' / 'underutilization_rules.csv'}"
    )


def test_no_rules_file_means_the_shipped_seed():
    assert rules_overrides(get_settings()) == {}


def test_rules_file_with_a_byte_order_mark_is_read(fleet, fleet_lake, tmp_path, monkeypatch):
    _rules_file(tmp_path, monkeypatch, EC2_RULE, EC2_RULE.replace(",4,10,", ",6,10,"), prefix="\ufeff")
    flags = _flags(fleet_lake, overrides=rules_overrides(get_settings()))
    ec2 = {rid for rid, rule in flags.index if rule == "aws_ec2_low_utilization"}
    assert ec2 == {_name(fleet, "aws", "ec2", 1)}


def test_the_hourly_maxima_fetched_are_those_the_rules_in_use_test(tmp_path, monkeypatch):
    # The shipped seed: only the Azure VM resize rule tests the P95 of hourly CPU maxima; RDS idle
    # tests connections at 0, which the hourly average decides alike.
    assert maxima_read_by_rules(get_settings()) == {("azure", "virtual_machine", "cpu_utilization_pct")}
    # A user's RDS rule tolerating up to 5 connections needs the hourly maximum of connections too.
    old = "aws_rds_idle,aws,rds,shutdown,7,1.0,,,,,,,,,,0,"
    _rules_file(tmp_path, monkeypatch, old, old.replace(",0,", ",5,"))
    assert maxima_read_by_rules(get_settings()) == {
        ("azure", "virtual_machine", "cpu_utilization_pct"),
        ("aws", "rds", "connections"),
    }
