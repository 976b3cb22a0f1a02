"""Mutation check: each edit below is a bug a metric mapping could really have; the named tests
must fail with it (the mutation is killed) or the suite does not guard that mapping.

``python -m finops_pipeline_tests.mutations`` (``make mutations``) copies the tracked tree into a
temporary directory once per mutation, applies the one edit there (the old text must occur exactly
once), runs ``pytest -x -q`` on the named tests with that copy first on PYTHONPATH and prints
killed or SURVIVED. The named tests first run once on the unmutated tree and must pass there.
Exit status 1 when any mutation survived or could not be judged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

AWS_CATALOG = "finops_pipeline/clouds/aws/catalog.py"
GCP_CATALOG = "finops_pipeline/clouds/gcp/catalog.py"
AZURE_CATALOG = "finops_pipeline/clouds/azure/catalog.py"
AWS_TESTS = ["finops_pipeline_tests/aws/test_aws_adapter.py"]
GCP_TESTS = ["finops_pipeline_tests/gcp/test_gcp_metrics.py"]
AZURE_TESTS = ["finops_pipeline_tests/azure/test_azure_metrics.py"]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: list[str]
    why: str


MUTATIONS = [
    Mutation(
        "aws-rds-connections-renamed",
        AWS_CATALOG,
        'MetricSpec("DatabaseConnections", ',
        'MetricSpec("DBConnections", ',
        AWS_TESTS,
        "a misspelled CloudWatch metric name: RDS publishes DatabaseConnections, nothing else",
    ),
    Mutation(
        "aws-ec2-network-in-out-swapped",
        AWS_CATALOG,
        'MetricSpec("NetworkIn", "network_in_bytes", "counter", "Bytes"),\n'
        '        MetricSpec("NetworkOut", "network_out_bytes", "counter", "Bytes"),',
        'MetricSpec("NetworkIn", "network_out_bytes", "counter", "Bytes"),\n'
        '        MetricSpec("NetworkOut", "network_in_bytes", "counter", "Bytes"),',
        AWS_TESTS,
        "inbound and outbound traffic swapped: same units, same totals, only direction tells",
    ),
    Mutation(
        "aws-lambda-duration-summed",
        AWS_CATALOG,
        'MetricSpec("Duration", "duration_ms", "gauge", "Milliseconds")',
        'MetricSpec("Duration", "duration_ms", "counter", "Milliseconds")',
        AWS_TESTS,
        "Lambda Duration read with statistic Sum (a valid statistic) instead of Average",
    ),
    Mutation(
        "gcp-cpu-fraction-not-scaled",
        GCP_CATALOG,
        'MetricSpec("compute.googleapis.com/instance/cpu/utilization", "cpu_utilization_pct", "gauge", "Percent", 100.0)',
        'MetricSpec("compute.googleapis.com/instance/cpu/utilization", "cpu_utilization_pct", "gauge", "Percent")',
        GCP_TESTS,
        "Compute Engine CPU utilization is a 0-1 fraction: without the x100 every VM looks idle",
    ),
    Mutation(
        "azure-response-time-seconds-as-ms",
        AZURE_CATALOG,
        '_g("HttpResponseTime", "response_time_ms", "Milliseconds", 1000.0)',
        '_g("HttpResponseTime", "response_time_ms", "Milliseconds")',
        AZURE_TESTS,
        "App Service HttpResponseTime is in seconds: landed unscaled as milliseconds it is 1000x too small",
    ),
]


def tracked_files() -> list[str]:
    """The tree as git sees it: tracked files plus new ones not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [p for p in listed.split("\0") if p and (ROOT / p).is_file()]


def copy_tree(files: list[str], target: Path) -> None:
    for path in files:
        destination = target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes((ROOT / path).read_bytes())


def apply(mutation: Mutation, tree: Path) -> None:
    """The one edit; fails loudly unless the old text occurs exactly once."""
    source = tree / mutation.path
    text = source.read_text()
    found = text.count(mutation.old)
    if found != 1:
        raise SystemExit(f"{mutation.name}: the old text occurs {found} times in {mutation.path}, not once")
    source.write_text(text.replace(mutation.old, mutation.new))


def run(mutation: Mutation, files: list[str]) -> str:
    """'killed by <test>', 'SURVIVED' or 'ERROR (...)' for one mutation, in its own copy of the tree."""
    with tempfile.TemporaryDirectory(prefix="finops-mutation-") as directory:
        tree = Path(directory)
        copy_tree(files, tree)
        apply(mutation, tree)
        env = {**os.environ, "PYTHONPATH": str(tree)}
        imported = subprocess.run(
            [sys.executable, "-c", "import finops_pipeline; print(finops_pipeline.__file__)"],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not imported.startswith(str(tree)):
            return f"ERROR (the copy is not what Python imports: {imported})"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
        )
    if done.returncode == 1:  # pytest: tests ran and some failed
        failed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
        return f"killed by {failed[0] if failed else '?'}"
    if done.returncode == 0:
        return "SURVIVED"
    return f"ERROR (pytest exit {done.returncode}: {done.stdout.strip().splitlines()[-1:]})"


def baseline(tests: list[str]) -> bool:
    """The named tests pass on the unmutated tree (else a failure would prove nothing)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True).returncode == 0


def main() -> int:
    files = tracked_files()
    for tests in sorted({tuple(m.tests) for m in MUTATIONS}):
        if not baseline(list(tests)):
            print(f"ERROR: {' '.join(tests)} fail without any mutation", flush=True)
            return 1
    results = []
    for mutation in MUTATIONS:
        started = time.monotonic()
        result = run(mutation, files)
        results.append(result)
        print(f"{mutation.name} ({mutation.why}): {result} [{time.monotonic() - started:.1f} s]", flush=True)
    return 0 if all(r.startswith("killed") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
