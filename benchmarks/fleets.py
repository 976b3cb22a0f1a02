"""Fleets of an exact size, cut from the simulator's deterministic fleet."""

from __future__ import annotations

import math
import os

from finops_pipeline.simulator.fleet import Fleet, build_fleet

# Instances of each type per unit of build_fleet(scale=...) (the length of its profile cycle).
_PER_SCALE = {
    ("aws", "ec2"): 5,
    ("aws", "rds"): 3,
    ("azure", "virtual_machine"): 4,
    ("azure", "sql_database"): 2,
    ("gcp", "gce_instance"): 4,
    ("gcp", "cloudsql_database"): 2,
}


def fleet_of(counts: dict[tuple[str, str], int]) -> Fleet:
    """A fleet holding exactly ``counts[(provider, type)]`` resources of each listed type."""
    scale = max(math.ceil(n / _PER_SCALE.get(key, 1)) for key, n in counts.items())
    full = build_fleet(scale=max(1, scale))
    chosen = []
    for (provider, rtype), n in counts.items():
        found = full.of(provider, rtype)
        if len(found) < n:
            raise ValueError(f"the simulator made {len(found)} {provider} {rtype}, {n} wanted")
        chosen.extend(found[:n])
    return Fleet(resources=tuple(chosen), seed=full.seed)


def fake_aws_environment() -> None:
    """Credentials for the AWS doubles (never real ones), and no instance-metadata lookups."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="AKIABENCHMARK0000000",
        AWS_SECRET_ACCESS_KEY="benchmark-not-a-secret",
        AWS_EC2_METADATA_DISABLED="true",
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
