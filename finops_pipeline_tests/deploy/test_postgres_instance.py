"""The production instance (deploy/dagster.yaml) on a real PostgreSQL server: a webserver and a
daemon run UI-style backfills through the queued run coordinator, and the per-API pools hold."""

import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2
import pytest
from dagster import AssetKey, DagsterInstance, RunsFilter

from finops_pipeline.simulator.clouds import simulated_clouds
from finops_pipeline.simulator.fleet import build_fleet
from finops_pipeline_tests.dagster_dev import (
    dagster_daemon,
    dagster_webserver,
    ended_backfill_runs,
    launch_backfill,
    wait_for,
)

from .conftest import DAGSTER_YAML

END = datetime.now(timezone.utc).date()
START = END - timedelta(days=3)
DAYS = [START + timedelta(days=i) for i in range(3)]


def _cli(*args: str, env: dict) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "finops-pipeline"), *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow  # 1-5 min on a loaded 2-core machine: a webserver, a daemon and three runs, two in turn
def test_backfills_on_postgres_never_run_two_cost_explorer_runs_at_once(tmp_path, postgres, monkeypatch):
    home, data_dir = tmp_path / "dagster_home", tmp_path / "data"
    log, daemon_log = tmp_path / "dagster-webserver.log", tmp_path / "dagster-daemon.log"
    home.mkdir()
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")  # the production file, as deployed
    for name, value in postgres.items():
        monkeypatch.setenv(name, value)
    env = {**os.environ, "DAGSTER_HOME": str(home), "FINOPS_DATA_DIR": str(data_dir)}

    assert "aws-ce: 1 run(s) at a time" in _cli("pools", env=env).splitlines()

    # As deployed: the webserver and the daemon are separate processes. The backfills are launched
    # before the daemon starts, so its first tick takes them (its ticks are 30 s apart).
    with simulated_clouds(START, END, build_fleet(), providers=("aws",)) as cloud_env:
        with dagster_webserver({**env, **cloud_env}, log) as (port, webserver):
            # Two people backfill a day of Cost Explorer each from the UI, a third the metrics.
            ids = [launch_backfill(port, [day], ["aws_cost"], f"cost {day}") for day in DAYS[:2]]
            ids.append(launch_backfill(port, DAYS, ["aws_metrics"], "metrics"))
            with dagster_daemon({**env, **cloud_env}, daemon_log) as daemon:
                for backfill_id in ids:
                    runs = wait_for(
                        "the backfills",
                        lambda b=backfill_id: ended_backfill_runs(port, b, 1),
                        daemon,
                        daemon_log,
                        seconds=400,
                    )
                    assert [r["status"] for r in runs] == ["SUCCESS"], (runs, daemon_log.read_text()[-3000:])

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        records = [r for b in ids for r in instance.get_run_records(RunsFilter(tags={"dagster/backfill": b}))]
        limits = {limit.name: limit.limit for limit in instance.event_log_storage.get_pool_limits()}
        materialized = {a: instance.get_materialized_partitions(AssetKey(a)) for a in ("aws_cost", "aws_metrics")}
    assert len(records) == 3
    # What the daemon reads to call the backfills complete: every requested partition materialized.
    assert materialized == {"aws_cost": {d.isoformat() for d in DAYS[:2]}, "aws_metrics": {d.isoformat() for d in DAYS}}
    cost = sorted(
        (r for r in records if r.dagster_run.run_op_concurrency.all_pools == {"aws-ce"}), key=lambda r: r.start_time
    )
    metrics = [r for r in records if r.dagster_run.run_op_concurrency.all_pools == {"aws-cloudwatch"}]
    assert len(cost) == 2 and len(metrics) == 1
    # The queue held them: both were waiting before the first one ended ...
    assert cost[1].create_timestamp.timestamp() < cost[0].end_time
    # ... and the coordinator launched the second only after the first ended.
    assert cost[1].start_time >= cost[0].end_time, [(r.start_time, r.end_time) for r in cost]
    assert limits == {
        "aws-ce": 1,
        "aws-cloudwatch": 2,
        "gcp-monitoring": 2,
        "gcp-bigquery": 1,
        "azure-cost": 1,
        "azure-monitor": 2,
    }

    # Runs and their events are rows of this Postgres database.
    con = psycopg2.connect(
        host=postgres["DAGSTER_PG_HOST"],
        port=postgres["DAGSTER_PG_PORT"],
        user=postgres["DAGSTER_PG_USER"],
        password=postgres["DAGSTER_PG_PASSWORD"],
        dbname=postgres["DAGSTER_PG_DB"],
    )
    try:
        with con.cursor() as cur:
            run_ids = [r.dagster_run.run_id for r in records]
            cur.execute("SELECT count(*) FROM runs WHERE run_id = ANY(%s) AND status = 'SUCCESS'", (run_ids,))
            assert cur.fetchone()[0] == 3
            cur.execute(
                "SELECT count(DISTINCT run_id) FROM event_logs WHERE run_id = ANY(%s) AND dagster_event_type = 'ASSET_MATERIALIZATION'",
                (run_ids,),
            )
            assert cur.fetchone()[0] == 3
    finally:
        con.close()
    landed = sorted(p.name for p in (data_dir / "lake" / "cost_daily" / "provider=aws").iterdir())
    assert landed == [f"usage_date={d.isoformat()}" for d in DAYS[:2]]
