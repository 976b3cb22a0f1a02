"""`make demo` end to end at a small size: the real Definitions against the simulated clouds."""

from datetime import date, timedelta

import duckdb

from finops_pipeline.demo import run_demo


def test_demo_builds_a_warehouse_and_a_second_run_gives_identical_counts(tmp_path):
    today = date.today()
    lines: list[str] = []
    first = run_demo(tmp_path / "demo", days=2, today=today, out=lines.append)
    second = run_demo(tmp_path / "demo", days=2, today=today, out=lambda _: None)
    assert first == second
    assert first["cost_daily"] > 0 and first["metrics_hourly"] > 0

    con = duckdb.connect(str(tmp_path / "demo" / "finops.duckdb"), read_only=True)
    days = con.execute(
        "SELECT DISTINCT usage_date FROM cost_daily WHERE provider = 'aws' ORDER BY 1").fetchall()
    assert [d for (d,) in days] == [today - timedelta(days=2), today - timedelta(days=1)]
    metric_days = con.execute(
        "SELECT count(DISTINCT usage_date) FROM metrics_hourly WHERE provider = 'aws'").fetchone()[0]
    assert metric_days == 2
    printed = "\n".join(lines)
    assert "cost_daily" in printed and "finops-pipeline query" in printed and "make ui" in printed
