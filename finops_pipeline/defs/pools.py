"""One Dagster concurrency pool per cloud API, and how many runs may call each API at once.

Each raw asset names its API's pool (``pool=`` on the asset). The instance enforces pools at
run granularity (``concurrency.pools.granularity: run`` in ``deploy/dagster.yaml``): the
queued run coordinator launches a run only while every pool its steps use has a free slot, so a
UI backfill of one asset, the daily multi-cloud run and a manual launch are all counted, with no
tag for anyone to remember. Dagster keeps pool limits in the instance database, not in
dagster.yaml: ``finops-pipeline pools`` writes these to it (docs/operations.md).
"""

from __future__ import annotations

from dagster import DagsterInstance

# pool -> runs in flight. Sources and reasoning: docs/operations.md, "Per-API concurrency".
POOL_LIMITS: dict[str, int] = {
    # Cost Explorer bills $0.01 per request page and expects "one to a few calls per day"
    # (AWS Cost Management, "Best practices for the AWS Cost Explorer API").
    "aws-ce": 1,
    # GetMetricData has a per-account, per-Region TPS quota shared with the account's
    # dashboards and alarms (CloudWatch service quotas); calls are batched 500 queries each.
    "aws-cloudwatch": 2,
    # ListTimeSeries counts against the project's per-minute time-series read quota
    # (Cloud Monitoring, "Quotas and limits").
    "gcp-monitoring": 2,
    # Every billing-export query scans bytes at on-demand prices; one at a time keeps the
    # spend per hour at one GCP_BILLING_MAX_BYTES cap.
    "gcp-bigquery": 1,
    # Cost Management throttles query by a per-tenant QPU budget (x-ms-ratelimit-microsoft.
    # costmanagement-qpu-* headers; learn.microsoft.com "Automation for Cost Management").
    "azure-cost": 1,
    # metrics.list is an ARM read: a token bucket of 250 reads, refilled 25 per second per
    # principal and subscription (ARM "Understand how Azure Resource Manager throttles requests").
    "azure-monitor": 2,
}


def apply_pool_limits(instance: DagsterInstance, limits: dict[str, int] = POOL_LIMITS) -> dict[str, int]:
    """Write each pool's limit into the instance's storage (idempotent); returns what was set."""
    for pool, limit in limits.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return dict(limits)
