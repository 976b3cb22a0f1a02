"""The demo warehouse's focus_cost_and_usage through the FinOps Foundation's focus-validator (FOCUS 1.2)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from finops_pipeline.demo import run_demo
from finops_pipeline.focus_validate import (
    ensure_validator,
    export_focus,
    find_python,
    parse,
    sources,
    unexplained,
    validate,
)
from finops_pipeline.focus_validate import (
    main as focus_validate_main,
)
from finops_pipeline.warehouse.catalog import refresh_catalog
from finops_pipeline.warehouse.lake import Lake

REPO = Path(__file__).resolve().parent.parent
PYTHON = find_python(os.environ.get("FOCUS_PYTHON"))


def test_the_validators_console_report_is_read():
    output = (
        "=== Validation Results ===\n"
        "Total: 578 | Pass: 133 | Fail: 2 | Skipped: 443\n"
        "✅ BilledCost-C-000-M: PASS  (violations=0, 1.0ms)\n"
        "❌ InvoiceId-C-005-C: FAIL  (violations=102, msg=InvoiceId MUST NOT be NULL., 8.3ms)\n"
        "⏭️ AvailabilityZone-C-001-M: SKIPPED  (violations=0, reason=rule not applicable)\n"
        "❌ PricingUnit-C-006-C: FAIL  (violations=30, msg=PricingUnit MUST NOT be NULL., 5.7ms)\n"
    )
    result = parse(output)
    assert (result.total, result.passed, result.skipped) == (578, 133, 443)
    assert result.failed == {
        "InvoiceId-C-005-C": "violations=102, msg=InvoiceId MUST NOT be NULL., 8.3ms",
        "PricingUnit-C-006-C": "violations=30, msg=PricingUnit MUST NOT be NULL., 5.7ms",
    }


def test_a_failure_is_excused_only_by_a_source_present_that_cannot_deliver_the_value():
    failed = {"InvoiceId-C-005-C", "PricingUnit-C-006-C", "Tags-C-001-M"}
    assert unexplained(failed, {"costmanagement:query.usage"}) == {"Tags-C-001-M"}
    assert unexplained(failed, {"bigquery:detailed_export"}) == {"PricingUnit-C-006-C", "Tags-C-001-M"}
    assert unexplained(failed, {"export:focus"}) == failed


@pytest.mark.slow
@pytest.mark.skipif(PYTHON is None, reason="focus-validator 2.2.1 needs Python >= 3.12 (set FOCUS_PYTHON)")
def test_the_demo_warehouse_fails_no_focus_rule_its_sources_could_meet(tmp_path, capsys):
    validator = ensure_validator(REPO / ".venv-focus", PYTHON)  # the venv `make focus-validate` uses
    run_demo(tmp_path / "demo", days=2, out=lambda _: None)
    parquet = tmp_path / "focus.parquet"
    assert export_focus(tmp_path / "demo", parquet) > 0
    result = validate(validator, parquet)
    present = set(sources(tmp_path / "demo"))
    print(f"sources {sorted(present)}: {result.summary}")
    for rule, message in sorted(result.failed.items()):
        print(f"FAIL {rule}: {message}")
    assert result.passed > 100  # the rules ran on the data
    assert unexplained(set(result.failed), present) == set()
    # `make focus-validate ARGS=--per-source`: the whole view, then each source's rows on their own.
    capsys.readouterr()
    assert (
        focus_validate_main(
            ["--data-dir", str(tmp_path / "demo"), "--venv", str(validator.parent.parent), "--per-source"]
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    summaries = [line.split(" (")[0] for line in printed if not line.startswith(" ")]
    assert summaries == ["all sources", *sorted(present)]


@pytest.mark.slow
@pytest.mark.skipif(PYTHON is None, reason="focus-validator 2.2.1 needs Python >= 3.12 (set FOCUS_PYTHON)")
def test_a_currency_that_is_not_iso_4217_fails_focus_validate_naming_the_rule(data_dir, capsys):
    """A source with no known gap: every failure counts, and the command exits 1 naming the rules."""
    from finops_pipeline_tests.warehouse.test_lake import cost_rows

    validator = ensure_validator(REPO / ".venv-focus", PYTHON)
    Lake(data_dir / "lake").write_partitions(
        "cost_daily", cost_rows(date(2026, 11, 1), ["1.00"]).assign(billing_currency="ZZZ")
    )
    refresh_catalog(data_dir)
    venv = str(validator.parent.parent)
    assert focus_validate_main(["--data-dir", str(data_dir), "--venv", venv, "--criteria", "ALL"]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("Failed beyond the sources' known gaps: ") and "BillingCurrency-C-" in last, last


@pytest.mark.skipif(PYTHON is None, reason="focus-validator 2.2.1 needs Python >= 3.12 (set FOCUS_PYTHON)")
def test_a_file_the_validator_cannot_read_is_an_error_with_its_output(tmp_path):
    validator = ensure_validator(REPO / ".venv-focus", PYTHON)
    (tmp_path / "focus.parquet").write_bytes(b"not a Parquet file")
    with pytest.raises(RuntimeError) as info:
        validate(validator, tmp_path / "focus.parquet")
    assert str(info.value).startswith("focus-validator gave no result (exit ")


def test_without_a_python_3_12_the_validator_venv_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.12 / python3.13 on it
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))  # and no pyenv-installed one
    assert find_python() is None and find_python("python3.11") is None
    with pytest.raises(FileNotFoundError) as info:
        ensure_validator(tmp_path / "venv")
    assert str(info.value) == "focus-validator 2.2.1 needs Python >= 3.12: none found (set FOCUS_PYTHON)"
    assert not (tmp_path / "venv").exists()
