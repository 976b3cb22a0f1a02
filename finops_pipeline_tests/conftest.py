"""Fixtures shared by the whole suite: a tmp_path warehouse and a clean environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Variables that would point a test at a real cloud or at the developer's own data.
_LEAKY_PREFIXES = ("AWS_", "GCP_", "GOOGLE_", "AZURE_", "FINOPS_", "USAGE_", "DAGSTER_HOME")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """Every test starts with no cloud settings and a private warehouse under tmp_path."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FINOPS_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("FINOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


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
