"""Fake credentials for all three clouds never show up in logs, metadata, errors or the warehouse."""

import json
import logging
import secrets
import traceback
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dagster import DagsterInstance

from finops_pipeline.cli import main
from finops_pipeline.clouds.aws.assets import aws_cost, aws_metrics
from finops_pipeline.clouds.aws.source import AwsSource
from finops_pipeline.clouds.azure.assets import azure_cost, azure_metrics
from finops_pipeline.clouds.azure.source import AzureSource
from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.clouds.gcp.assets import gcp_cost, gcp_metrics
from finops_pipeline.defs.raw_checks import CONTRACT_CHECKS
from finops_pipeline.settings import get_settings
from finops_pipeline.simulator.clouds import simulated_clouds
from finops_pipeline_tests.runs import materialize, set_environment

from .conftest import END, START, range_tags

RAW = [aws_cost, aws_metrics, gcp_cost, gcp_metrics, azure_cost, azure_metrics]


def _service_account_file(path: Path) -> tuple[Path, list[str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_id = secrets.token_hex(20)
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "shop-prod",
                "private_key_id": key_id,
                "private_key": pem,
                "client_email": "finops@shop-prod.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    body = "".join(pem.splitlines()[1:-1])
    return path, [key_id, body[:40], body[-40:]]


def _run_texts(instance: DagsterInstance, result) -> list[str]:
    """Every event of the run (logs, failures with their exception text) and all metadata."""
    texts = [str(e) for e in instance.all_logs(result.run_id)]
    for event in result.all_events:
        texts.append(str(event.event_specific_data))
        if event.message:
            texts.append(event.message)
    return texts


def _warehouse_texts(data_dir: Path) -> list[str]:
    """Every lake file's rows, the catalog's view definitions, and every file's raw bytes."""
    texts = []
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        texts.append(path.read_bytes().decode("latin-1"))
        if path.suffix == ".parquet":
            texts.append(str(pq.read_table(path).to_pylist()))
    catalog = data_dir / "finops.duckdb"
    if catalog.exists():
        con = duckdb.connect(str(catalog), read_only=True)
        texts.append(str(con.execute("SELECT sql FROM duckdb_views()").fetchall()))
        con.close()
    return texts


@pytest.fixture
def fake_credentials(fleet, monkeypatch, tmp_path):
    with simulated_clouds(START, END, fleet) as env:
        set_environment(monkeypatch, env)
        aws_key_id = "AKIAOPS" + secrets.token_hex(6).upper()
        aws_secret = "ops-" + secrets.token_urlsafe(30)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", aws_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_secret)
        key_file, key_parts = _service_account_file(tmp_path / "service-account.json")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        # Azure cost from its FocusCost export in Azurite, read with a storage connection string.
        storage = [env["AZURE_STORAGE_CONNECTION_STRING"]] if "AZURE_STORAGE_CONNECTION_STRING" in env else []
        if storage:
            monkeypatch.setenv("AZURE_COST_SOURCE", "export")
        yield [aws_key_id, aws_secret, env["AZURE_CLIENT_SECRET"], *key_parts, *storage]


def test_no_secret_reaches_logs_metadata_errors_or_the_lake(fake_credentials, monkeypatch, data_dir, caplog, capsys):
    caplog.set_level(logging.INFO)
    texts = []

    instance = DagsterInstance.ephemeral()
    result = materialize([*RAW, *CONTRACT_CHECKS], instance=instance, tags=range_tags())
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    texts += _run_texts(instance, result)

    assert main(["doctor"]) == 0
    out = capsys.readouterr()
    assert "aws: enabled" in out.out and "gcp: enabled" in out.out and "azure: enabled" in out.out
    assert "finops@shop-prod.iam.gserviceaccount.com" in out.out  # who, never the key
    texts += [out.out, out.err]

    # Failures carry exception text: a rejected Azure secret, an unreachable Cost Explorer.
    # (The adapters are called directly: inside an asset the retry policy would wait minutes.)
    wrong_secret = "wrong-" + fake_credentials[2]
    monkeypatch.setenv("AZURE_CLIENT_SECRET", wrong_secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for adapter, error, says in (
        (AzureSource, CloudApiError, "could not get an Azure token"),
        (AwsSource, CloudApiError, "could not reach http://127.0.0.1:9/"),
    ):
        with pytest.raises(error, match=says) as failure:
            adapter.from_settings(get_settings()).fetch_cost(START, END)
        texts += [str(failure.value), "".join(traceback.format_exception(failure.value))]
    assert main(["doctor"]) == 1
    out = capsys.readouterr()
    texts += [out.out, out.err]

    texts.append(caplog.text)
    texts += _warehouse_texts(data_dir)
    for secret in [*fake_credentials, wrong_secret]:
        leaks = [t[:200] for t in texts if secret in t]
        assert not leaks, f"secret {secret[:6]}... found in: {leaks[0]}"
