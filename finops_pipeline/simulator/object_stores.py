"""Object stores on 127.0.0.1 for the lake: S3 (moto's server) and GCS (gcp-storage-emulator);
Azure Blob is Azurite (simulator/azurite.py, shared with the Azure billing export). Each runs in its own process (moto keeps its backends per
process, and the AWS simulator resets its own) and yields the environment that points the
lake's filesystem at it, as the clouds' own tools would be pointed at an emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from finops_pipeline.simulator.aws import free_port


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
