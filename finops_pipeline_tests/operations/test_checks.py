"""The raw tables' asset checks: pass on what the pipeline lands, fail clearly on broken data."""

from datetime import timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster import AssetSelection, DagsterInstance

from finops_pipeline.clouds.aws.assets import aws_cost, aws_metrics
from finops_pipeline.defs.raw_checks import CONTRACT_CHECKS
from finops_pipeline.warehouse.lake import PART_FILE, Lake
from finops_pipeline_tests.runs import materialize

from .conftest import START, range_tags

AWS_CHECKS = [c for c in CONTRACT_CHECKS if c.node_def.name.startswith("aws_")]


def _results(result) -> dict[str, object]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def landed(aws_env, data_dir):
    """AWS landed for the window by a real run (checks included); returns the instance and results."""
    instance = DagsterInstance.ephemeral()
    result = materialize([aws_cost, aws_metrics, *AWS_CHECKS], instance=instance, tags=range_tags())
    assert result.success
    return instance, _results(result)


def _rerun_checks(instance, asset):
    result = materialize(
        [aws_cost, aws_metrics, *AWS_CHECKS],
        instance=instance,
        tags=range_tags(),
        selection=AssetSelection.checks_for_assets(asset),
        raise_on_error=False,
    )
    return _results(result)


def _partition_file(data_dir, table, day):
    return Lake(data_dir / "lake").partition_dir(table, {"provider": "aws", "usage_date": day}) / PART_FILE


def test_checks_pass_on_what_the_pipeline_landed(landed):
    _, results = landed
    expected = {
        "aws_cost:unique_key",
        "aws_cost:keys_not_null",
        "aws_cost:money_is_decimal_with_currency",
        "aws_cost:matches_provider_total",
        "aws_cost:no_negative_usage",
        "aws_cost:export_matches_api",
        "aws_metrics:unique_key",
        "aws_metrics:keys_not_null",
        "aws_metrics:hours_within_day",
        "aws_metrics:coverage",
        "aws_metrics:no_negative_values",
    }
    assert set(results) == expected
    failed = {name: e.description for name, e in results.items() if not e.passed}
    assert failed == {}
    assert results["aws_cost:matches_provider_total"].metadata["days_compared"].value == 3
    coverage = results["aws_metrics:coverage"].metadata["coverage_by_day"].value
    assert set(coverage) == {(START + timedelta(days=i)).isoformat() for i in range(3)}
    assert all(v == 1.0 for v in coverage.values())


def test_duplicated_keys_fail_unique_key_with_a_clear_description(landed, data_dir):
    instance, _ = landed
    path = _partition_file(data_dir, "cost_daily", START)
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table, table.slice(0, 2)]), path)

    results = _rerun_checks(instance, aws_cost)
    check = results["aws_cost:unique_key"]
    assert not check.passed and check.blocking
    assert check.metadata["duplicated_keys"].value == 2
    assert "2 key(s) of cost_daily occur more than once for aws" in check.description


def test_a_cost_total_that_differs_from_the_providers_fails(landed, data_dir):
    instance, _ = landed
    day = START + timedelta(days=1)
    path = _partition_file(data_dir, "cost_daily", day)
    table = pq.read_table(path)
    billed = table.column("billed_cost").to_pylist()
    bumped = pa.array([billed[0] + Decimal("1.50")] + billed[1:], table.schema.field("billed_cost").type)
    pq.write_table(table.set_column(table.schema.get_field_index("billed_cost"), "billed_cost", bumped), path)

    results = _rerun_checks(instance, aws_cost)
    check = results["aws_cost:matches_provider_total"]
    assert not check.passed and check.blocking
    assert f"e.g. {day.isoformat()} USD" in check.description
    assert "differ from what the aws API reported" in check.description
    assert results["aws_cost:unique_key"].passed


def test_hours_outside_the_partition_day_fail(landed, data_dir):
    instance, _ = landed
    path = _partition_file(data_dir, "metrics_hourly", START)
    table = pq.read_table(path)
    hours = table.column("hour_start")
    shifted = pc.add(hours, pa.scalar(timedelta(days=1), pa.duration("us")))
    pq.write_table(table.set_column(table.schema.get_field_index("hour_start"), "hour_start", shifted), path)

    results = _rerun_checks(instance, aws_metrics)
    check = results["aws_metrics:hours_within_day"]
    assert not check.passed
    assert check.metadata["rows_outside_their_day"].value == table.num_rows
    assert "outside their UTC partition day" in check.description


def test_low_metrics_coverage_warns_below_the_floor(landed, data_dir):
    instance, _ = landed
    path = _partition_file(data_dir, "metrics_hourly", START)
    table = pq.read_table(path)
    hour = pc.hour(table.column("hour_start"))
    pq.write_table(table.filter(pc.less(hour, 12)), path)  # the afternoon never arrived

    results = _rerun_checks(instance, aws_metrics)
    check = results["aws_metrics:coverage"]
    assert not check.passed and not check.blocking
    coverage = check.metadata["coverage_by_day"].value
    assert coverage[START.isoformat()] < 0.9 and coverage[(START + timedelta(days=1)).isoformat()] == 1.0
    assert "below FINOPS_METRICS_COVERAGE_FLOOR=0.9" in check.description


def test_a_disabled_cloud_passes_visibly_as_skipped(monkeypatch):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "false")
    result = materialize([aws_cost, aws_metrics, *AWS_CHECKS], instance=DagsterInstance.ephemeral(), tags=range_tags())
    results = _results(result)
    assert all(e.passed for e in results.values())
    assert all(e.metadata["status"].value == "skipped" for e in results.values())
    assert "AWS_USAGE_ENABLED" in results["aws_cost:unique_key"].description


def _rewrite(path, column: str, values: pa.Array) -> int:
    """Replace one column of a lake file (what a hand edit or another writer would leave); its row count."""
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, values), path)
    return table.num_rows


def test_empty_key_values_fail_keys_not_null_naming_the_column(landed, data_dir):
    instance, _ = landed
    path = _partition_file(data_dir, "cost_daily", START)
    rows = pq.read_metadata(path).num_rows
    _rewrite(path, "sub_account_id", pa.array([""] * rows))

    check = _rerun_checks(instance, aws_cost)["aws_cost:keys_not_null"]
    assert not check.passed and check.blocking
    last = START + timedelta(days=2)
    assert check.description == (
        f"cost_daily for aws {START}..{last} has null or empty key values (sub_account_id: {rows})"
    )
    assert check.metadata["null_or_empty"].value == {"sub_account_id": rows}


def test_float_money_and_lowercase_currencies_fail_the_money_check(landed, data_dir):
    instance, _ = landed
    day = START + timedelta(days=1)
    path = _partition_file(data_dir, "cost_daily", day)
    table = pq.read_table(path)
    _rewrite(path, "billed_cost", pc.cast(table.column("billed_cost"), pa.float64()))
    _rewrite(path, "billing_currency", pa.array(["usd"] * table.num_rows))

    check = _rerun_checks(instance, aws_cost)["aws_cost:money_is_decimal_with_currency"]
    assert not check.passed and check.blocking
    assert check.description == (
        f"cost_daily for aws: {day}: billed_cost is double, not DECIMAL; "
        f"{table.num_rows} row(s) without an ISO 4217 billing_currency"
    )
    assert check.metadata["problems"].value == 2


def test_a_day_deleted_from_the_lake_fails_the_provider_total(landed, data_dir):
    instance, _ = landed
    for i in range(3):
        _partition_file(data_dir, "cost_daily", START + timedelta(days=i)).unlink()

    results = _rerun_checks(instance, aws_cost)
    check = results["aws_cost:matches_provider_total"]
    assert not check.passed and check.metadata["mismatches"].value == 3
    assert check.description.startswith(
        f"3 day/currency total(s) of cost_daily differ from what the aws API reported, e.g. {START} USD: provider "
    )
    assert check.description.endswith(", lake 0")
    # Nothing left to be duplicated, null or mistyped.
    assert all(results[f"aws_cost:{name}"].passed for name in ("unique_key", "keys_not_null", "no_negative_usage"))
    assert results["aws_cost:money_is_decimal_with_currency"].passed


def test_checks_run_on_their_own_cover_every_landed_day_and_name_days_no_run_reported(landed, data_dir):
    instance, _ = landed
    # A day another writer left in the lake (an older version, a copy): no run reported its total.
    earlier = START - timedelta(days=1)
    table = pq.read_table(_partition_file(data_dir, "cost_daily", START))
    Lake(data_dir / "lake").write_partition("cost_daily", {"provider": "aws", "usage_date": earlier}, table)

    result = materialize(
        [aws_cost, aws_metrics, *AWS_CHECKS],
        instance=instance,
        selection=AssetSelection.checks_for_assets(aws_cost),
    )
    check = _results(result)["aws_cost:matches_provider_total"]
    assert check.passed
    assert check.metadata["days_compared"].value == 3
    assert check.metadata["days_without_provider_total"].value == earlier.isoformat()
