"""Fixtures shared by the whole suite: a tmp_path warehouse, a clean environment, the fleet,
and each simulated cloud's variables in a test's environment (a folder's conftest or a test
module says which days its ``*_served`` doubles serve, and for how long they live)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from finops_pipeline.simulator.fleet import Fleet, build_fleet

from .runs import isolate_environment, set_environment


def pytest_configure(config):
    """Ctrl-C as at a terminal in pytest-xdist's workers too. A worker ignores SIGINT, and a child
    process inherits an ignored signal: Python then never raises KeyboardInterrupt, so the `ui`
    and `catalog` Ctrl-C tests waited forever and `dagster code-server`/`dagster dev` (which stop
    through SIGINT) outlived their SIGTERM."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    """Files holding a test marked slow run first, each file's tests in their own order: under
    pytest-xdist's --dist loadfile a 2-minute file handed out last leaves the other worker idle."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """Every test starts with no cloud settings and a private warehouse under tmp_path."""
    isolate_environment(monkeypatch, tmp_path)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="session")
def azurite():
    """Azurite's blob service (Microsoft's emulator, installed from npm once): skipped with the reason
    when npm or node is missing or the install fails."""
    from finops_pipeline.simulator.azurite import AzuriteUnavailable, run_azurite

    try:
        with run_azurite() as running:
            yield running
    except AzuriteUnavailable as exc:
        pytest.skip(f"Azurite is not available: {exc}")


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    """The simulated fleet: deterministic and immutable, so built once for the session."""
    return build_fleet()


@pytest.fixture
def aws_env(aws_served, monkeypatch) -> dict[str, str]:
    """The AWS doubles' variables (``aws_served``) in this test's environment."""
    set_environment(monkeypatch, aws_served)
    return aws_served


@pytest.fixture
def gcp_env(gcp_served, monkeypatch) -> dict[str, str]:
    """The GCP doubles' variables (``gcp_served``) in this test's environment."""
    set_environment(monkeypatch, gcp_served)
    return gcp_served


@pytest.fixture
def azure_env(azure_served, monkeypatch) -> dict[str, str]:
    """The Azure double's variables (``azure_served``) in this test's environment."""
    set_environment(monkeypatch, azure_served)
    return azure_served
