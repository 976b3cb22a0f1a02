"""What can be checked here of the image and the Helm values without Docker or Kubernetes: the
Dockerfile's own command serves the code location, and the chart's values match deploy/dagster.yaml."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from finops_pipeline.simulator.aws import free_port

from .conftest import DAGSTER_YAML, REPO_ROOT

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / "deploy" / "Dockerfile.dockerignore"  # BuildKit: <Dockerfile>.dockerignore
HELM_VALUES = REPO_ROOT / "deploy" / "helm" / "values.yaml"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _cmd() -> list[str]:
    [cmd] = [json.loads(args) for instruction, args in _instructions() if instruction == "CMD"]
    return cmd


def test_dockerfile_installs_the_lock_then_the_project_without_deps_and_runs_as_non_root():
    steps = _instructions()
    runs = [args for instruction, args in steps if instruction == "RUN"]
    lock = next(i for i, r in enumerate(runs) if "pip install --requirement requirements.lock" in r)
    project = next(i for i, r in enumerate(runs) if "pip install --no-deps ." in r)
    assert lock < project
    assert steps[0] == ("FROM", "python:3.11-slim")  # pyproject.toml: requires-python >= 3.11
    users = [args for instruction, args in steps if instruction == "USER"]
    assert users == ["finops"]
    assert [i for i, _ in steps].index("USER") < [i for i, _ in steps].index("CMD")
    # Every file the image copies is in the build context that .dockerignore lets through.
    allowed = {line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    copied = {src for instruction, args in steps if instruction == "COPY" for src in args.split()[:-1]}
    assert copied <= allowed, copied - allowed
    assert all((REPO_ROOT / path).exists() for path in copied)


def test_the_images_command_serves_the_code_location(tmp_path):
    cmd = _cmd()
    assert cmd[:3] == ["dagster", "code-server", "start"] and cmd[cmd.index("-m") + 1] == "finops_pipeline.definitions"
    port = free_port()
    cmd[cmd.index("-p") + 1] = str(port)
    cmd[cmd.index("-h") + 1] = "127.0.0.1"
    bin_dir = Path(sys.executable).parent
    # Outside the repository, as in the image (no workspace.yaml); the package comes from PYTHONPATH.
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO_ROOT),
        "DAGSTER_HOME": str(tmp_path),
    }
    server = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            check = subprocess.run(
                [str(bin_dir / "dagster"), "api", "grpc-health-check", "-p", str(port)],
                env=env,
                capture_output=True,
                text=True,
            )
            if check.returncode == 0:
                break
            assert server.poll() is None, server.stderr.read()[-3000:]
            assert time.monotonic() < deadline, check.stderr[-2000:]
            time.sleep(1)
        grpc = ["--grpc-host", "127.0.0.1", "--grpc-port", str(port)]
        validated, listed = (
            subprocess.run([str(bin_dir / "dagster"), *args, *grpc], env=env, capture_output=True, text=True)
            for args in (["definitions", "validate"], ["job", "list"])
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert validated.returncode == 0, validated.stderr[-2000:]
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "finops_daily_job" in listed.stdout.split()


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _camelized(value):
    """dagster.yaml's snake_case keys as the chart spells them (its template maps them back)."""
    if isinstance(value, dict):
        return {_camel(k): _camelized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camelized(v) for v in value]
    return value


def test_helm_values_carry_the_same_instance_settings_as_dagster_yaml():
    instance = yaml.safe_load(DAGSTER_YAML.read_text())
    values = yaml.safe_load(HELM_VALUES.read_text())

    chart = dict(values["concurrency"])
    assert chart.pop("enabled") is True
    assert chart == _camelized(instance["concurrency"])
    # value: {applyLimitPerUniqueValue: true} is spelled the same in both (not snake_case).
    assert instance["concurrency"]["runs"]["tag_concurrency_limits"][0]["value"] == {"applyLimitPerUniqueValue": True}

    db = instance["storage"]["postgres"]["postgres_db"]
    assert values["postgresql"]["postgresqlScheme"] == db["scheme"] == "postgresql+psycopg2"
    assert all(set(db[k]) == {"env"} for k in ("hostname", "port", "db_name", "username", "password"))
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == instance["run_coordinator"]["class"]
    assert _camelized({k: v for k, v in instance["run_retries"].items()}) == values["dagsterDaemon"]["runRetries"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"

    [deployment] = values["dagster-user-deployments"]["deployments"]
    cmd = _cmd()
    assert cmd[:3] == ["dagster", "code-server", "start"]  # what the chart runs with codeServerArgs
    assert deployment["codeServerArgs"] == ["-m", cmd[cmd.index("-m") + 1]]
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    # No secret in either file: the password comes from the environment / a Kubernetes Secret.
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert "postgresqlPassword" not in values["postgresql"] and values["generatePostgresqlPasswordSecret"] is False
