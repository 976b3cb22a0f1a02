"""Smoke test of the benchmark harness: the tiny mode runs end to end and records every ratio.

No timing is asserted (speed is measured by `make bench`, never tested)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ratios(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "ratios":
                yield from value.items()
            else:
                yield from _ratios(value)


@pytest.mark.slow  # 30-70 s: `make test-fast` leaves it out, `make test` runs it
def test_tiny_run_records_machine_versions_and_finite_positive_ratios(tmp_path):
    out = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--size", "tiny", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(out.read_text())

    assert record["mode"] == "tiny"
    assert record["machine"]["cpus_usable"] >= 1
    assert record["versions"]["pyarrow"] and record["versions"]["duckdb"] and record["versions"]["botocore"]
    assert set(record["benchmarks"]) == {"api", "ingest", "mart", "memory", "backfill", "export"}
    bench = record["benchmarks"]
    assert bench["api"]["aws"]["same_datapoints"] and bench["api"]["azure"]["same_datapoints"]
    assert bench["ingest"]["ours"]["rows_written"] == bench["ingest"]["baseline"]["rows_written"] == 200 * 6 * 24
    assert bench["memory"]["ours"]["rows"] == bench["memory"]["baseline"]["rows"] > 0
    for cloud in ("aws", "gcp", "azure"):
        assert bench["backfill"][cloud]["failed_calls"] == 0, bench["backfill"][cloud]["runs"]
        assert bench["backfill"][cloud]["rows"] > 0 and bench["backfill"][cloud]["ideal_seconds"] >= 0
        # The same backfill with every limit lifted (the machine's floor) lands the same rows.
        assert bench["backfill"][cloud]["machine_floor"]["rows"] == bench["backfill"][cloud]["rows"]
        assert bench["backfill"][cloud]["machine_floor"]["failed_runs"] == 0
    assert bench["mart"]["ours"]["rows_by_mart"]["utilization_daily"] == bench["mart"]["baseline"]["rows"] == 3 * 100

    # The export: every line item read on both sides (hourly items, Savings Plan fee and unused
    # rows, a daily tax line), one partition per day.
    export = bench["export"]
    assert (
        export["ours"]["rows"]
        == export["ours_local_files"]["rows"]
        == export["baseline"]["rows"]
        == 20 * 2 * 24 + 2 * 48 + 2
    )
    assert export["ours"]["partitions"] == 2

    ratios = dict(_ratios(bench))
    expected = {
        "calls_naive_over_ours",
        "throughput_ours_over_baseline",
        "all_marts_over_hand_written",
        "peak_rss_ours_over_accumulated",
        "export_s3_over_duckdb",
        "export_local_over_duckdb",
    }
    assert expected <= set(ratios)
    for name, value in _ratios(bench):
        if value is not None:  # e.g. a dollar ratio when both sides are free
            assert math.isfinite(value) and value > 0, (name, value)
    for row in record["summary"]:
        assert row["result"] in ("pass", "miss", "info", "not measured"), row
    assert "| benchmark" in done.stdout
