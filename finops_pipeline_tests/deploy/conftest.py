"""A real PostgreSQL server for the instance tests: Debian's `postgresql` binaries, started in a
temporary directory on 127.0.0.1 on a free port, stopped at the end of the session."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from finops_pipeline.simulator.aws import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGSTER_YAML = REPO_ROOT / "deploy" / "dagster.yaml"


def _pg_bin(name: str) -> str:
    """A PostgreSQL binary: on PATH, else under Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        pytest.fail(f"{name} not found: install Debian's postgresql package (.ci/run does)")
    return found


def _as_server_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres() -> dict[str, str]:
    """A running server with a database `dagster`; the DAGSTER_PG_* variables that reach it."""
    root = Path(tempfile.mkdtemp(prefix="finops-pg-"))
    data, password_file = root / "data", root / "pwfile"
    password = secrets.token_urlsafe(16)
    password_file.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(password_file, "postgres")
    port = free_port()
    subprocess.run(
        _as_server_user(
            [
                _pg_bin("initdb"),
                "-D",
                str(data),
                "-U",
                "dagster",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    log = root / "server.log"
    server = subprocess.Popen(
        _as_server_user(
            [_pg_bin("postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(root), "-F"]
        ),
        stdout=subprocess.DEVNULL,
        stderr=open(log, "w"),  # noqa: SIM115 - the server's log, closed with the process
    )
    env = {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(port),
        "DAGSTER_PG_USER": "dagster",
        "DAGSTER_PG_PASSWORD": password,
        "DAGSTER_PG_DB": "dagster",
    }
    try:
        import psycopg2

        deadline = time.monotonic() + 60
        while True:
            try:
                con = psycopg2.connect(
                    host="127.0.0.1", port=port, user="dagster", password=password, dbname="postgres"
                )
                break
            except psycopg2.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("postgres did not start:\n" + log.read_text()[-2000:]) from None
                time.sleep(0.2)
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE dagster")
        con.close()
        yield env
    finally:
        server.terminate()  # smart shutdown: waits for the clients, which are gone by now
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)
