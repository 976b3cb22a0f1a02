"""run_sql's refusals: each names the transformation, seed or parameter at fault and what is wrong."""

from datetime import date
from decimal import Decimal

import pytest

from finops_pipeline.warehouse.catalog import SQL_DIR
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.sql import SqlRunError, run_sql

WINDOW = {"start": date(2026, 3, 1), "end": date(2026, 3, 2)}
SEEDS = ["anomaly_thresholds", "azure_regions", "focus_service_category", "iac_service_map", "underutilization_rules"]


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(tmp_path / "lake")


def test_an_empty_lake_gives_an_empty_mart(lake):
    assert run_sql("utilization_daily", lake, WINDOW).num_rows == 0


def test_an_unknown_transformation_names_the_missing_file(lake):
    with pytest.raises(SqlRunError) as missing:
        run_sql("utilisation_daily", lake, WINDOW)
    assert str(missing.value) == f"no SQL file {SQL_DIR / 'utilisation_daily.sql'}"
    # A name is never a path: nothing outside sql/ is read.
    with pytest.raises(SqlRunError) as path:
        run_sql("../pyproject", lake, WINDOW)
    assert str(path.value) == "transformation name '../pyproject' must be lower_snake_case (letters, digits, _)"


def test_a_parameter_name_that_is_not_an_identifier_is_refused(lake):
    with pytest.raises(SqlRunError) as bad:
        run_sql("utilization_daily", lake, {**WINDOW, "as-of": date(2026, 3, 1)})
    assert str(bad.value) == "parameter name 'as-of' must be lower_snake_case (letters, digits, _)"


def test_a_seed_override_must_name_a_shipped_seed_and_an_existing_file(lake, tmp_path):
    rules = tmp_path / "rules.csv"
    rules.write_text((SQL_DIR / "seeds" / "underutilization_rules.csv").read_text())
    with pytest.raises(SqlRunError) as unknown:
        run_sql("utilization_daily", lake, WINDOW, seed_overrides={"rules": rules})
    assert str(unknown.value) == f"no seed named 'rules' to override; seeds are {SEEDS}"

    with pytest.raises(SqlRunError) as absent:
        run_sql("utilization_daily", lake, WINDOW, seed_overrides={"underutilization_rules": tmp_path / "nope.csv"})
    assert str(absent.value) == f"seed file for 'underutilization_rules' not found: {tmp_path / 'nope.csv'}"


def test_a_seed_file_that_is_not_utf8_csv_is_named(lake, tmp_path):
    # A spreadsheet saved as "Unicode Text" (UTF-16) is the usual way to get here.
    rules = tmp_path / "rules.csv"
    rules.write_bytes((SQL_DIR / "seeds" / "underutilization_rules.csv").read_text().encode("utf-16"))
    with pytest.raises(SqlRunError) as unreadable:
        run_sql("underutilized_resources", lake, WINDOW, seed_overrides={"underutilization_rules": rules})
    assert str(unreadable.value).startswith(
        f"seed {rules} could not be read as CSV: Invalid Input Error: CSV Error on Line: 1\n"
        "Invalid unicode (byte sequence mismatch) detected. This file is not utf-8 encoded."
    )


def test_sql_that_fails_in_duckdb_names_its_file_and_the_error(lake, tmp_path):
    sql_dir = tmp_path / "sql"
    sql_dir.mkdir()
    (sql_dir / "amounts.sql").write_text("SELECT CAST(getvariable('amount') AS DECIMAL(10, 2)) AS amount")
    assert run_sql("amounts", lake, {"amount": "12.50"}, sql_dir=sql_dir).to_pylist() == [{"amount": Decimal("12.50")}]
    with pytest.raises(SqlRunError) as failed:
        run_sql("amounts", lake, {"amount": "12,50"}, sql_dir=sql_dir)
    assert str(failed.value).startswith("sql/amounts.sql failed: Conversion Error: Could not convert string")
