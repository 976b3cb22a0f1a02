"""A deterministic synthetic multi-cloud fleet: the ground truth for the demo and the tests.

Every value is a pure function of (seed, resource, metric, day), so any day can be
generated on its own, in any process, with the same result. Some resources are idle
on purpose (they must be flagged), some are busy (they must not be), some are
right-size candidates, and daily costs are consistent with the resources that run.

Metric values are produced in *canonical* units (``cpu_utilization_pct`` 0-100, bytes,
counts per hour); each cloud's double converts them to what its API returns.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property

import numpy as np

CENT = Decimal("0.000001")

# The injected anomaly the demo's cost_anomalies must flag: one AWS Lambda function runs away
# in a recursive loop ("Unintentional recursive loops can result in unexpected charges":
# AWS Lambda docs, Use Lambda recursive loop detection to prevent infinite loops,
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-recursion.html) on one UTC day in every
# RUNAWAY_PERIOD_DAYS, billing and invoking RUNAWAY_FACTOR times its usual day. The period is not
# a multiple of 7, so a same-weekday baseline never holds an earlier runaway day.
RUNAWAY_PERIOD_DAYS = 10
RUNAWAY_FACTOR = 200


def is_runaway_day(day: date) -> bool:
    """Whether the runaway Lambda function (SimResource.runaway) runs away on this UTC day."""
    return day.toordinal() % RUNAWAY_PERIOD_DAYS == 3


# profile -> metric family -> typical hourly level (canonical units).
_LEVELS: dict[str, dict[str, float]] = {
    "busy": {"pct": 55.0, "bytes": 2.5e8, "count": 5_000.0, "connections": 40.0, "ms": 120.0, "storage": 5e11},
    "rightsize": {"pct": 18.0, "bytes": 6e7, "count": 800.0, "connections": 12.0, "ms": 90.0, "storage": 2e11},
    "idle": {"pct": 1.2, "bytes": 4e4, "count": 0.2, "connections": 0.0, "ms": 0.0, "storage": 1e9},
}


def _family(metric: str) -> str:
    if metric.endswith("_pct"):
        return "pct"
    if metric.endswith("_ms"):
        return "ms"
    if metric in ("connections", "database_connections"):
        return "connections"
    if metric.startswith("storage_") or metric in ("object_count", "memory_available_bytes", "memory_used_bytes"):
        return "storage"
    if metric.endswith("_bytes"):
        return "bytes"
    return "count"


@dataclass(frozen=True)
class SimResource:
    """One simulated cloud resource and how it behaves."""

    provider: str  # aws | gcp | azure
    resource_type: str  # the usage API's type name: ec2, gce_instance, virtual_machine, ...
    resource_id: str  # the id billing and monitoring both use
    name: str
    region: str
    sub_account_id: str  # AWS linked account / GCP project / Azure subscription
    service_name: str  # the provider's billing service name
    sku: str
    hourly_cost: Decimal
    currency: str = "USD"
    profile: str = "busy"  # busy | rightsize | idle | intermittent
    discount: Decimal = Decimal("0")  # effective = billed * (1 - discount)
    tags: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    numeric_id: str | None = None  # GCP instance_id where the API keys by number
    runaway: bool = False  # bills and runs RUNAWAY_FACTOR times its day when is_runaway_day

    def usage_factor(self, day: date) -> int:
        """How many times its usual usage the resource has on a day (the injected runaway)."""
        return RUNAWAY_FACTOR if self.runaway and is_runaway_day(day) else 1

    def profile_on(self, day: date) -> str:
        """The profile in force on a day ('intermittent' is idle on 5 days of every 14)."""
        if self.profile != "intermittent":
            return self.profile
        return "idle" if day.toordinal() % 14 < 5 else "busy"


def _u32(*parts: object) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


@dataclass(frozen=True)
class HourlyValues:
    """24 hourly aggregates of one metric on one day (canonical units)."""

    hour_starts: list[datetime]
    avg: np.ndarray
    max: np.ndarray
    min: np.ndarray
    sum: np.ndarray
    sample_count: np.ndarray


@dataclass(frozen=True)
class CostLine:
    """One line of the ground-truth bill for a day (what the providers' APIs must add up to)."""

    provider: str
    usage_date: date
    billing_account_id: str
    sub_account_id: str
    service_name: str
    region: str | None
    resource_id: str | None
    sku: str
    charge_category: str
    billed_cost: Decimal
    effective_cost: Decimal
    currency: str
    usage_quantity: float
    usage_unit: str
    tags: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


# (provider, type, service, sku, hourly cost, region, profiles cycled over the instances)
_CATALOG = [
    (
        "aws",
        "ec2",
        "Amazon Elastic Compute Cloud - Compute",
        "BoxUsage:m5.large",
        "0.096",
        ["busy", "idle", "rightsize", "intermittent", "busy"],
    ),
    (
        "aws",
        "rds",
        "Amazon Relational Database Service",
        "InstanceUsage:db.m5.large",
        "0.171",
        ["busy", "idle", "busy"],
    ),
    ("aws", "lambda", "AWS Lambda", "Lambda-GB-Second", "0.004", ["busy", "idle"]),
    ("aws", "dynamodb", "Amazon DynamoDB", "ReadCapacityUnit-Hrs", "0.013", ["busy"]),
    ("aws", "s3", "Amazon Simple Storage Service", "TimedStorage-ByteHrs", "0.031", ["busy"]),
    ("aws", "elb", "Elastic Load Balancing", "LoadBalancerUsage", "0.025", ["busy", "idle"]),
    ("aws", "alb", "Elastic Load Balancing", "LoadBalancerUsage:ALB", "0.0225", ["idle", "busy"]),
    (
        "gcp",
        "gce_instance",
        "Compute Engine",
        "N2 Instance Core running in Americas",
        "0.0971",
        ["busy", "idle", "rightsize", "busy"],
    ),
    ("gcp", "cloudsql_database", "Cloud SQL", "Cloud SQL for PostgreSQL: Zonal - vCPU", "0.0826", ["busy", "idle"]),
    ("gcp", "gcs_bucket", "Cloud Storage", "Standard Storage US Multi-region", "0.0108", ["busy", "idle"]),
    ("gcp", "k8s_container", "Kubernetes Engine", "Autopilot Pod mCPU Requests", "0.0445", ["busy", "rightsize"]),
    ("azure", "virtual_machine", "Virtual Machines", "D2s v5", "0.096", ["busy", "idle", "rightsize", "busy"]),
    ("azure", "sql_database", "SQL Database", "S1 DTUs", "0.0202", ["busy", "idle"]),
    ("azure", "storage_account", "Storage", "Hot LRS Data Stored", "0.0157", ["busy", "idle"]),
    ("azure", "app_service", "Azure App Service", "P1 v3 App", "0.169", ["busy", "idle"]),
]

AWS_ACCOUNTS = ("111111111111", "222222222222")
AWS_PAYER = "111111111111"
AWS_REGIONS = ("us-east-1", "eu-west-1")
GCP_BILLING_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
GCP_PROJECTS = ("shop-prod", "shop-analytics")
GCP_REGIONS = ("us-central1", "europe-west1")
AZURE_SUBSCRIPTIONS = ("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002")
AZURE_CURRENCY = {AZURE_SUBSCRIPTIONS[0]: "USD", AZURE_SUBSCRIPTIONS[1]: "EUR"}
AZURE_REGIONS = ("eastus", "westeurope")

_AZURE_PROVIDER = {
    "virtual_machine": "Microsoft.Compute/virtualMachines",
    "sql_database": "Microsoft.Sql/servers/{name}-srv/databases",
    "storage_account": "Microsoft.Storage/storageAccounts",
    "app_service": "Microsoft.Web/sites",
}


def _resource_id(provider: str, rtype: str, index: int, account: str, region: str) -> tuple[str, str, str | None]:
    """(resource_id, name, numeric id) in each provider's native id format."""
    if provider == "aws":
        name = f"{rtype}-{index:03d}"
        rid = {
            "ec2": f"i-{_u32('ec2', index):08x}{index:09x}",
            "rds": f"db-{rtype}-{index:03d}",
            "lambda": f"fn-{index:03d}",
            "dynamodb": f"table-{index:03d}",
            "s3": f"bucket-{index:03d}-{account[-4:]}",
            "elb": f"classic-lb-{index:03d}",
            "alb": f"app/alb-{index:03d}/{_u32('alb', index):016x}",
        }[rtype]
        return rid, name, None
    if provider == "gcp":
        name = f"{rtype.replace('_', '-')}-{index:03d}"
        numeric = str(1_000_000_000_000_000 + _u32("gce", account, index))
        rid = numeric if rtype == "gce_instance" else (f"{account}:{name}" if rtype == "cloudsql_database" else name)
        return rid, name, numeric if rtype == "gce_instance" else None
    name = f"{rtype.replace('_', '')}{index:03d}"
    provider_path = _AZURE_PROVIDER[rtype].format(name=name)
    rid = f"/subscriptions/{account}/resourceGroups/rg-finops/providers/{provider_path}/{name}"
    return rid, name, None


@dataclass(frozen=True)
class Fleet:
    """A seeded fleet of resources across AWS, GCP and Azure."""

    resources: tuple[SimResource, ...]
    seed: int = 7

    def of(self, provider: str, resource_type: str | None = None) -> list[SimResource]:
        return [
            r
            for r in self.resources
            if r.provider == provider and (resource_type is None or r.resource_type == resource_type)
        ]

    @cached_property
    def by_id(self) -> dict[str, SimResource]:
        return {r.resource_id: r for r in self.resources}

    # -- metrics -------------------------------------------------------------------
    def hourly(self, resource: SimResource, metric: str, day: date, samples_per_hour: int = 60) -> HourlyValues:
        """Hourly aggregates of a canonical metric for one UTC day."""
        rng = np.random.default_rng([self.seed, _u32(resource.resource_id), _u32(metric), day.toordinal()])
        profile = resource.profile_on(day)
        family = _family(metric)
        level = _LEVELS["idle" if profile == "idle" else profile][family]
        if metric == "invocations":
            level *= resource.usage_factor(day)
        hours = np.arange(24)
        diurnal = 1.0 + (0.0 if family == "storage" else 0.35 * np.sin((hours - 9) / 24 * 2 * np.pi))
        noise = rng.uniform(0.8, 1.2, 24)
        avg = level * diurnal * noise
        spread = rng.uniform(0.05, 0.4, 24)
        if family == "pct":
            avg = np.clip(avg, 0.0, 100.0)
            mx = np.clip(avg * (1 + spread), 0.0, 100.0)
        else:
            mx = avg * (1 + spread)
        if family in ("count", "bytes"):
            # Counters: `avg` is the hourly total; idle request counts are mostly zero.
            total = np.round(avg) if family == "count" else avg
            count = np.full(24, float(samples_per_hour))
            return HourlyValues(_hour_starts(day), total / count, mx / count, total * 0, total, count)
        mn = avg * (1 - spread)
        count = np.full(24, float(samples_per_hour))
        return HourlyValues(_hour_starts(day), avg, mx, mn, avg * count, count)

    # -- billing -------------------------------------------------------------------
    def cost_lines(self, provider: str, day: date) -> list[CostLine]:
        """The day's bill for one provider: usage per resource, plus tax/credit lines."""
        lines = []
        for r in self.of(provider):
            factor = r.usage_factor(day)
            usage_hours = 24.0 * factor
            jitter = Decimal(_u32(self.seed, r.resource_id, day.toordinal()) % 200 - 100) / Decimal(10_000)
            billed = (r.hourly_cost * Decimal(24 * factor) * (1 + jitter)).quantize(CENT)
            effective = (billed * (1 - r.discount)).quantize(CENT)
            lines.append(
                CostLine(
                    provider=provider,
                    usage_date=day,
                    billing_account_id=_billing_account(r),
                    sub_account_id=r.sub_account_id,
                    service_name=r.service_name,
                    region=r.region,
                    resource_id=r.resource_id,
                    sku=r.sku,
                    charge_category="Usage",
                    billed_cost=billed,
                    effective_cost=effective,
                    currency=r.currency,
                    usage_quantity=usage_hours,
                    usage_unit="Hrs",
                    tags=dict(r.tags),
                )
            )
        if provider == "aws":
            usage = sum((line.billed_cost for line in lines), Decimal(0))
            tax = (usage * Decimal("0.08")).quantize(CENT)
            lines.append(
                CostLine(provider, day, AWS_PAYER, AWS_PAYER, "Tax", None, None, "Tax", "Tax", tax, tax, "USD", 0.0, "")
            )
        return lines

    def daily_total(self, provider: str, day: date, kind: str = "billed") -> dict[str, Decimal]:
        """Ground-truth total per currency for a provider and day."""
        totals: dict[str, Decimal] = {}
        for line in self.cost_lines(provider, day):
            value = line.billed_cost if kind == "billed" else line.effective_cost
            totals[line.currency] = totals.get(line.currency, Decimal(0)) + value
        return totals


def _billing_account(r: SimResource) -> str:
    if r.provider == "aws":
        return AWS_PAYER
    if r.provider == "gcp":
        return GCP_BILLING_ACCOUNT
    return r.sub_account_id


def _hour_starts(day: date) -> list[datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return [start + timedelta(hours=h) for h in range(24)]


def build_fleet(scale: int = 1, seed: int = 7) -> Fleet:
    """The demo fleet; ``scale`` multiplies the number of instances of every type."""
    accounts = {"aws": AWS_ACCOUNTS, "gcp": GCP_PROJECTS, "azure": AZURE_SUBSCRIPTIONS}
    regions = {"aws": AWS_REGIONS, "gcp": GCP_REGIONS, "azure": AZURE_REGIONS}
    resources = []
    for provider, rtype, service, sku, hourly, profiles in _CATALOG:
        for index in range(len(profiles) * scale):
            account = accounts[provider][index % 2]
            region = regions[provider][(index // 2) % 2]
            rid, name, numeric = _resource_id(provider, rtype, index, account, region)
            currency = AZURE_CURRENCY.get(account, "USD")
            discount = Decimal(0)  # AWS savings plan / GCP sustained-use credit on some VMs
            if provider == "aws" and rtype == "ec2" and index % 5 == 4:
                discount = Decimal("0.3")
            elif provider == "gcp" and rtype == "gce_instance" and index % 4 == 3:
                discount = Decimal("0.2")
            resources.append(
                SimResource(
                    provider=provider,
                    resource_type=rtype,
                    resource_id=rid,
                    name=name,
                    region=region,
                    sub_account_id=account,
                    service_name=service,
                    sku=sku,
                    hourly_cost=Decimal(hourly),
                    currency=currency,
                    profile=profiles[index % len(profiles)],
                    discount=discount,
                    tags={
                        "team": ("checkout", "data", "platform")[index % 3],
                        "finops_id": f"{provider}-{rtype}-{index:03d}",
                    },
                    numeric_id=numeric,
                    runaway=provider == "aws" and rtype == "lambda" and index == 0,
                )
            )
    return Fleet(resources=tuple(resources), seed=seed)
