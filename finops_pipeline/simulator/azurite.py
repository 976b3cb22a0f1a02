"""Azurite, Microsoft's official Azure Storage emulator, as a local Blob Storage for tests and the demo.

:func:`install_azurite` puts a pinned ``azurite`` npm package into a cache directory once
(``npm install`` from the npm registry; nothing else is downloaded); :func:`run_azurite`
starts ``azurite-blob`` on a free port of 127.0.0.1 with a throw-away data directory, waits
until it answers, yields an :class:`Azurite` (its well-known development account and the
connection string the SDKs take) and stops it. Nothing here knows about billing: an
``abfs://`` lake or any other Blob user can share it.

Azurite's development account and key are public constants, documented in "Use the Azurite
emulator for local Azure Storage development" (Connection strings: "devstoreaccount1" and
its well-known key); they open nothing but a local emulator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from finops_pipeline.simulator.aws import free_port

AZURITE_VERSION = "3.37.0"
DEV_ACCOUNT = "devstoreaccount1"
# The emulator's published development key (Azurite README, "Default Storage Account").
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteUnavailable(RuntimeError):
    """Azurite cannot run here (no npm or node, or the install failed); the message says why."""


@dataclass(frozen=True)
class Azurite:
    """A running azurite-blob: ``blob_url`` is its account endpoint (path style, as Azurite serves)."""

    host: str
    port: int
    account: str = DEV_ACCOUNT
    key: str = DEV_KEY

    @property
    def blob_url(self) -> str:
        return f"http://{self.host}:{self.port}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.blob_url};"
        )


def cache_dir() -> Path:
    """Where Azurite is installed once: FINOPS_AZURITE_DIR, else ~/.cache/finops-pipeline/azurite-<version>."""
    configured = os.environ.get("FINOPS_AZURITE_DIR")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "finops-pipeline" / f"azurite-{AZURITE_VERSION}"


def install_azurite(directory: Path | None = None) -> Path:
    """The azurite-blob executable, installing the pinned package with npm on first use.

    Processes that start together (the test workers on a fresh machine) install it once: the
    others wait on a lock file beside the directory, then find it installed."""
    directory = directory or cache_dir()
    executable = directory / "node_modules" / ".bin" / "azurite-blob"
    if executable.exists():
        return executable
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise AzuriteUnavailable("npm and node are needed to install Azurite (apt-get install nodejs npm)")
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        if executable.exists():
            return executable
        directory.mkdir(exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(directory), f"azurite@{AZURITE_VERSION}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if done.returncode != 0 or not executable.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise AzuriteUnavailable(f"npm install azurite@{AZURITE_VERSION} failed: {' | '.join(tail)}")
    return executable


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True  # any HTTP answer (Azurite says 400/403 to an anonymous GET) means it is up
    except OSError:
        return False
    return True


@contextmanager
def run_azurite(directory: Path | None = None, startup_seconds: float = 60) -> Iterator[Azurite]:
    """Start azurite-blob on a free 127.0.0.1 port with a fresh data location; stop it on exit."""
    executable = install_azurite(directory)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="azurite-") as location:
        process = subprocess.Popen(
            [
                str(executable),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--location",
                location,
                "--silent",
                "--skipApiVersionCheck",  # the SDK may speak a newer x-ms-version than this Azurite
                "--loose",
                # Telemetry is on by default and its stop event is sent on SIGTERM: offline, that held
                # every stop for the full 10 s wait below (Azurite 3.37 blob/main.js `shutdown`).
                "--disableTelemetry",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        azurite = Azurite("127.0.0.1", port)
        try:
            deadline = time.monotonic() + startup_seconds
            while not _answers(azurite.blob_url):
                if process.poll() is not None:
                    raise AzuriteUnavailable(f"azurite-blob exited: {process.stderr.read().decode()[-300:]}")
                if time.monotonic() > deadline:
                    raise AzuriteUnavailable(f"azurite-blob did not answer within {startup_seconds:.0f} s")
                time.sleep(0.1)
            yield azurite
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                warnings.warn("azurite-blob did not stop within 10 s of SIGTERM: killed", RuntimeWarning, stacklevel=2)
                process.kill()
                process.wait()
            process.stderr.close()
