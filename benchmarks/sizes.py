"""Benchmark sizes: ``full`` is the issue's, ``quick`` fits in a few minutes on 2 cores,
``tiny`` is for the smoke test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Sizes:
    name: str
    api_ec2: int  # 1. API efficiency: AWS instances (one day)
    api_rds: int
    api_azure_vms: int  # ... and the same shape on Azure
    api_azure_sql: int
    api_gcp_instances: int  # ... and on GCP
    api_gcp_sql: int
    ingest_resources: int  # 2. ingest: resources x 6 metrics x 24 hours
    ingest_repeats: int
    mart_days: int  # 3. mart build: days x resources of metrics + billing
    mart_resources: int
    memory_resources: int  # 4. one aws_metrics day through the adapter
    backfill_days: int  # 5. backfill against rate limits
    backfill_aws_scale: int  # build_fleet(scale=...) for the AWS part
    latency_seconds: float
    export_resources: int  # 6. AWS export ingest: resources x days x 24 hourly line items
    export_days: int


SIZES = {
    "tiny": Sizes("tiny", 10, 3, 4, 2, 4, 2, 200, 1, 3, 100, 160, 2, 1, 0.01, 20, 2),
    "quick": Sizes("quick", 200, 50, 100, 25, 200, 50, 1_000, 5, 14, 1_000, 1_000, 30, 4, 0.05, 1_000, 30),
    "full": Sizes("full", 2_000, 500, 2_000, 500, 2_000, 500, 10_000, 3, 90, 10_000, 10_000, 30, 40, 0.05, 10_000, 30),
}

# The simulated day every single-day benchmark uses (fixed, so runs are comparable).
BENCH_DAY = date(2025, 6, 2)
