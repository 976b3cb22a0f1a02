"""End to end: `dagster dev` (webserver + daemon) runs a 3-day backfill launched through GraphQL.

The simulated AWS runs in this process; Dagster, its daemon and the run workers are
separate processes that reach it on 127.0.0.1, exactly as `make ui` works.
"""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from finops_pipeline.simulator.aws import free_port
from finops_pipeline.simulator.clouds import simulated_clouds

from .conftest import END, START

REPO_ROOT = Path(__file__).resolve().parents[2]
DAYS = [START + timedelta(days=i) for i in range(3)]
WAIT_SECONDS = 150  # a guard against hanging, not an assertion about speed

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on Error { message }
  }
}"""
STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs(limit: 20) { runId status } }
    ... on PythonError { message }
  }
}"""
LOCATION = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name } } ... on PythonError { message } } }"""


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def _wait_for(what: str, probe, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"dagster dev exited ({process.returncode}) while waiting for {what}:\n" + log.read_text()[-3000:]
            )
        try:
            value = probe()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            value = None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"gave up waiting for {what}:\n" + log.read_text()[-3000:])


def _stop(process: subprocess.Popen) -> None:
    """Stop dagster dev and everything it started (webserver, daemon, code server, run workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything left in the group
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.mark.slow  # 30-70 s: `make test-fast` leaves it out, `make test` runs it
def test_backfill_of_three_days_through_graphql_lands_in_lake_and_catalog(tmp_path, fleet):
    home, data_dir, log = tmp_path / "dagster_home", tmp_path / "data", tmp_path / "dagster-dev.log"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nrun_retries:\n  enabled: true\n")
    port = free_port()
    with simulated_clouds(START, END, fleet, providers=("aws",)) as cloud_env:
        env = {**os.environ, **cloud_env, "DAGSTER_HOME": str(home), "FINOPS_DATA_DIR": str(data_dir)}
        with log.open("w") as out:
            process = subprocess.Popen(
                [
                    str(Path(os.sys.executable).parent / "dagster"),
                    "dev",
                    "-w",
                    "workspace.yaml",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_for(
                "the code location", lambda: _graphql(port, LOCATION)["repositoriesOrError"].get("nodes"), process, log
            )
            launched = _graphql(
                port,
                LAUNCH,
                {
                    "params": {
                        "partitionNames": [d.isoformat() for d in DAYS],
                        "assetSelection": [{"path": ["aws_cost"]}, {"path": ["aws_metrics"]}],
                        "title": "e2e: three days of AWS",
                    }
                },
            )["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill_id = launched["backfillId"]

            def finished():
                backfill = _graphql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
                if backfill["status"] in ("REQUESTED", "CANCELING", "FAILING"):
                    return None
                if any(r["status"] not in ("SUCCESS", "FAILURE", "CANCELED") for r in backfill["runs"]):
                    return None
                return backfill

            backfill = _wait_for("the backfill to finish", finished, process, log)
        finally:
            _stop(process)

    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (backfill, log.read_text()[-3000:])
    assert backfill["runs"] and all(r["status"] == "SUCCESS" for r in backfill["runs"])
    # The raw assets answer the whole range in one run (single-run backfill policy): 3 days of
    # 2 assets take 2 runs (measured; issue 19 guessed 1), never one run per day.
    assert len(backfill["runs"]) == 2

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
