"""Azurite's one-time install is shared: test processes that start together (pytest-xdist's
workers on a fresh machine) must not run two ``npm install`` into the same directory."""

import os
import threading
import urllib.request
import warnings

import pytest

from finops_pipeline.simulator.azurite import AzuriteUnavailable, install_azurite, run_azurite

# A stand-in for npm: logs its call, takes a while, then leaves the executable npm would.
FAKE_NPM = """#!/bin/sh
while [ "$1" != "--prefix" ]; do shift; done
echo called >> "$2/../npm-calls"
sleep 0.5
mkdir -p "$2/node_modules/.bin" && touch "$2/node_modules/.bin/azurite-blob"
"""


def test_two_concurrent_first_uses_install_once(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("npm", FAKE_NPM), ("node", "#!/bin/sh\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    directory = tmp_path / "azurite"
    start = threading.Barrier(2)
    found = []

    def first_use():
        start.wait()
        found.append(install_azurite(directory))

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [directory / "node_modules" / ".bin" / "azurite-blob"] * 2
    assert (tmp_path / "npm-calls").read_text() == "called\n"


def test_azurite_answers_and_stops_on_sigterm_without_being_killed():
    # Offline, Azurite's default telemetry held its SIGTERM shutdown until our 10 s wait ran out.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the kill after 10 s is a RuntimeWarning
        try:
            with run_azurite() as azurite:
                request = urllib.request.Request(f"{azurite.blob_url}?comp=list", method="GET")
                try:
                    urllib.request.urlopen(request, timeout=5)
                except urllib.error.HTTPError as answered:  # anonymous: refused, but served
                    assert answered.code in (400, 403)
        except AzuriteUnavailable as exc:
            pytest.skip(str(exc))
