"""A real `dagster dev` (webserver + daemon + run workers) for end-to-end tests, driven through GraphQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from finops_pipeline.simulator.aws import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
# A guard against hanging, not an assertion about speed: the GraphQL backfill took over 150 s
# on the 2-core machine at load 24 with the suite on two workers.
WAIT_SECONDS = 600

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


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def wait_for(what: str, probe, process: subprocess.Popen, log: Path, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
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


def stop(process: subprocess.Popen) -> None:
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


@contextmanager
def _started(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A Dagster command of this venv in its own process group, run from the repository, logging to ``log``."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / command[0]), *command[1:]],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop(process)


@contextmanager
def dagster_dev(env: dict[str, str], log: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """`dagster dev -w workspace.yaml` on a free port with ``env``, once its code location loaded."""
    port = free_port()
    with _started(["dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)], env, log) as process:
        wait_for("the code location", lambda: graphql(port, LOCATION)["repositoriesOrError"].get("nodes"), process, log)
        yield port, process


@contextmanager
def dagster_webserver(env: dict[str, str], log: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    """`dagster-webserver -w workspace.yaml` alone (a deployment's webserver), once its code location loaded."""
    port = free_port()
    command = ["dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with _started(command, env, log) as process:
        wait_for("the code location", lambda: graphql(port, LOCATION)["repositoriesOrError"].get("nodes"), process, log)
        yield port, process


@contextmanager
def dagster_daemon(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run -w workspace.yaml` (a deployment's daemon: backfills, run queue, schedules)."""
    with _started(["dagster-daemon", "run", "-w", "workspace.yaml"], env, log) as process:
        yield process


def launch_backfill(port: int, days: list, assets: list[str], title: str) -> str:
    """A partition backfill as the UI launches it; returns its id."""
    launched = graphql(
        port,
        LAUNCH,
        {
            "params": {
                "partitionNames": [d.isoformat() for d in days],
                "assetSelection": [{"path": [name]} for name in assets],
                "title": title,
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def ended_backfill_runs(port: int, backfill_id: str, runs: int) -> list[dict] | None:
    """The backfill's runs once ``runs`` of them exist and all ended (or the daemon ended the
    backfill with fewer), else None.

    The daemon requests a backfill's root partitions on one tick and marks the backfill itself
    complete on a later one (its ticks are 30 s apart and not configurable): the tests wait for
    the runs and read the materialized partitions from the instance instead of that status.
    """
    backfill = graphql(port, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
    ended = [r for r in backfill["runs"] if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
    if len(ended) < len(backfill["runs"]):
        return None
    if len(ended) < runs and backfill["status"] in ("REQUESTED", "CANCELING", "FAILING"):
        return None  # fewer runs than expected so far, and the daemon has not decided
    return backfill["runs"]
