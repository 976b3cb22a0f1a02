"""Azurite's one-time install is shared: test processes that start together (pytest-xdist's
workers on a fresh machine) must not run two ``npm install`` into the same directory."""

import os
import threading

from finops_pipeline.simulator.azurite import install_azurite

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
