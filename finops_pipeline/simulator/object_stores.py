"""Object stores on 127.0.0.1 for the lake: S3 (moto's server), GCS (gcp-storage-emulator) and
Azure Blob (Azurite, from npm). Each runs in its own process (moto keeps its backends per
process, and the AWS simulator resets its own) and yields the environment that points the
lake's filesystem at it, as the clouds' own tools would be pointed at an emulator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from finops_pipeline.simulator.aws import free_port

# Azurite's well-known development account (Microsoft Learn, "Use the Azurite emulator for local
# Azure Storage development": account devstoreaccount1 and its published key).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_PACKAGE = "azurite@3"


class EmulatorUnavailable(RuntimeError):
    """An emulator cannot be started here (its installer is missing); the message says which."""


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before serving {url}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers: an error status is still a server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on {url} within {timeout:.0f} s")


@contextmanager
def _process(command: list[str], url: str, **kwargs) -> Iterator[None]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    try:
        _wait_until_up(url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serve_s3(bucket: str = "finops-lake") -> Iterator[dict[str, str]]:
    """moto's S3 server with ``bucket`` created; yields the lake's endpoint and test credentials.

    FINOPS_LAKE_ENDPOINT_URL, not AWS_ENDPOINT_URL_S3: the simulated AWS (serve_aws) keeps its
    own S3, where the billing export lives, as a lake bucket and an export bucket may differ."""
    import boto3

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _process(command, f"{url}/moto-api/"):
        boto3.client(
            "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="lake", aws_secret_access_key="lake"
        ).create_bucket(Bucket=bucket)
        yield {
            "FINOPS_LAKE_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "lake"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "lake"),
            "AWS_REGION": "us-east-1",
        }


@contextmanager
def serve_gcs(bucket: str = "finops-lake") -> Iterator[dict[str, str]]:
    """gcp-storage-emulator with ``bucket``; yields STORAGE_EMULATOR_HOST."""
    executable = Path(sys.executable).parent / "gcp-storage-emulator"
    if not executable.exists():
        raise EmulatorUnavailable("gcp-storage-emulator is not installed (pip install gcp-storage-emulator)")
    port = free_port()
    command = [str(executable), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    command += [f"--default-bucket={bucket}"]
    url = f"http://127.0.0.1:{port}"
    with _process(command, f"{url}/storage/v1/b"):
        yield {"STORAGE_EMULATOR_HOST": url}


def azurite_command(cache: Path | None = None) -> list[str]:
    """The azurite-blob command, installed from npm into ``cache`` on first use."""
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "finops-azurite"
    executable = cache / "node_modules" / ".bin" / "azurite-blob"
    if not executable.exists():
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise EmulatorUnavailable("Azurite installs from npm, and npm/node is not on PATH")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache), AZURITE_PACKAGE],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return [str(executable)]


@contextmanager
def serve_azurite(cache: Path | None = None) -> Iterator[dict[str, str]]:
    """Azurite's blob service; yields AZURE_STORAGE_CONNECTION_STRING (the development account)."""
    command = azurite_command(cache)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="azurite-") as location:
        command += ["--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", location, "--silent"]
        command += ["--skipApiVersionCheck", "--loose"]
        endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        with _process(command, endpoint):
            yield {
                "AZURE_STORAGE_CONNECTION_STRING": (
                    f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                    f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
                )
            }
