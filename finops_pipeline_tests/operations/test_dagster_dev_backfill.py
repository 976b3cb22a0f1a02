"""End to end: `dagster dev` (webserver + daemon) runs a 3-day backfill launched through GraphQL.

The simulated AWS runs in this process; Dagster, its daemon and the run workers are
separate processes that reach it on 127.0.0.1, exactly as `make ui` works.
"""

import os
from datetime import timedelta

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance

from finops_pipeline.simulator.clouds import simulated_clouds
from finops_pipeline_tests.dagster_dev import dagster_dev, ended_backfill_runs, launch_backfill, wait_for

from .conftest import END, START

DAYS = [START + timedelta(days=i) for i in range(3)]


@pytest.mark.slow  # 30-70 s: `make test-fast` leaves it out, `make test` runs it
def test_backfill_of_three_days_through_graphql_lands_in_lake_and_catalog(tmp_path, fleet):
    home, data_dir, log = tmp_path / "dagster_home", tmp_path / "data", tmp_path / "dagster-dev.log"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nrun_retries:\n  enabled: true\n")
    with simulated_clouds(START, END, fleet, providers=("aws",)) as cloud_env:
        env = {**os.environ, **cloud_env, "DAGSTER_HOME": str(home), "FINOPS_DATA_DIR": str(data_dir)}
        with dagster_dev(env, log) as (port, process):
            backfill_id = launch_backfill(port, DAYS, ["aws_cost", "aws_metrics"], "e2e: three days of AWS")
            runs = wait_for("the backfill's runs", lambda: ended_backfill_runs(port, backfill_id, 2), process, log)

    # The raw assets answer the whole range in one run (single-run backfill policy): 3 days of
    # 2 assets take 2 runs (measured; issue 19 guessed 1), never one run per day.
    assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"], log.read_text()[-3000:]
    # What the daemon reads to call the backfill complete: every requested partition materialized.
    with DagsterInstance.from_config(str(home)) as instance:
        for asset in ("aws_cost", "aws_metrics"):
            assert instance.get_materialized_partitions(AssetKey(asset)) == {d.isoformat() for d in DAYS}

    lake = data_dir / "lake"
    for table in ("cost_daily", "metrics_hourly"):
        landed = sorted(p.name for p in (lake / table / "provider=aws").iterdir())
        assert landed == [f"usage_date={d.isoformat()}" for d in DAYS]
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    try:
        billed = dict(con.execute("SELECT usage_date, sum(billed_cost) FROM cost_daily GROUP BY 1").fetchall())
        hours = dict(
            con.execute("SELECT usage_date, count(DISTINCT hour_start) FROM metrics_hourly GROUP BY 1").fetchall()
        )
    finally:
        con.close()
    assert billed == {d: fleet.daily_total("aws", d)["USD"] for d in DAYS}
    assert hours == {d: 24 for d in DAYS}
