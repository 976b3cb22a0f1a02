"""What every cloud adapter provides, and the API bookkeeping they share.

The bulk path (used by the Dagster assets) returns columnar frames shaped like the
warehouse tables, a page at a time, and raises on errors. The object API of the
original usage integration (``get_resource_usage`` ...) is a thin layer over it.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Iterator

import pyarrow as pa

from finops_pipeline.warehouse.schemas import MONEY

_MONEY_PLACES = Decimal(1).scaleb(-MONEY.scale)  # 1E-10


def money(value: Decimal | float | int | str) -> Decimal:
    """A provider's amount as the lake stores money: a Decimal rounded half-even to the MONEY
    columns' 10 decimal places. A float is read through its shortest repr, so a float64 sum such
    as Azure's 2.3196669999999995 comes back as the 2.3196670000 billed; decimal text is exact."""
    amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return amount.quantize(_MONEY_PLACES)


class CloudApiError(RuntimeError):
    """A cloud call failed after the adapter's own retries. The message says the fix.

    ``retryable`` is True when a later run may succeed unchanged (throttling or an outage
    that outlasted the retries); False when something must be fixed first (permissions,
    configuration), so the Dagster run fails without spending retries.
    """

    def __init__(self, provider: str, operation: str, reason: str, retryable: bool = False):
        super().__init__(f"{provider} {operation} failed: {reason}")
        self.provider = provider
        self.operation = operation
        self.retryable = retryable


@dataclass
class ApiUsage:
    """Calls made to a cloud API, their estimated price, and other cost drivers."""

    calls: Counter = field(default_factory=Counter)
    estimated_cost_usd: Decimal = Decimal("0")
    bytes_scanned: int = 0
    retries: int = 0
    notes: dict[str, str] = field(default_factory=dict)  # e.g. quota headers last seen
    skipped: dict[str, str] = field(default_factory=dict)  # optional call -> why its data is missing
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, operation: str, cost_usd: Decimal | str = "0", calls: int = 1) -> None:
        with self._lock:  # days of a run are fetched on several threads
            self.calls[operation] += calls
            self.estimated_cost_usd += Decimal(cost_usd)

    def skip(self, call: str, reason: str) -> None:
        """An optional call failed: its data is missing, the run's main rows still land."""
        with self._lock:
            self.skipped[call] = reason

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def as_metadata(self) -> dict[str, object]:
        """Plain values for Dagster metadata (no secrets ever reach here)."""
        meta: dict[str, object] = {
            "api_calls": self.total_calls,
            "api_calls_by_operation": dict(sorted(self.calls.items())),
            "estimated_api_cost_usd": float(self.estimated_cost_usd),
        }
        if self.bytes_scanned:
            meta["bytes_scanned"] = self.bytes_scanned
        if self.retries:
            meta["api_retries"] = self.retries
        meta.update({f"api_{k}": v for k, v in self.notes.items()})
        return meta


@dataclass
class CostFetch:
    """Billing rows for a window of UTC days, plus what the provider itself said the totals were."""

    cost: pa.Table  # cost_daily rows, with provider and usage_date columns
    days: list[date]  # every day requested; a day without rows is replaced by an empty partition
    provider_totals: dict[date, dict[str, Decimal]] = field(default_factory=dict)  # day -> currency -> billed
    forecast: pa.Table | None = None  # cost_forecast rows (provider, usage_date = as-of day)


@dataclass(frozen=True)
class MetricSpec:
    """How one native metric of a resource type maps to a canonical ``metrics_hourly`` metric.

    kind: "gauge" (hourly avg/max/min) or "counter" (hourly sum). ``scale`` converts the
    native unit to the canonical one (e.g. 100 for a 0-1 fraction -> percent).
    """

    native: str
    canonical: str
    kind: str
    unit: str
    scale: float = 1.0


@dataclass(frozen=True)
class ResourceRef:
    """A resource to fetch metrics for, when the caller knows which (the usage API)."""

    resource_id: str
    resource_type: str
    region: str | None = None
    sub_account_id: str | None = None


class CloudSource(ABC):
    """The bulk interface each cloud implements (see aws.py for the reference).

    ``METRICS`` maps each supported resource type to its MetricSpecs; the first entries
    are the defaults the usage API fetches.
    """

    provider: str
    api: ApiUsage
    METRICS: dict[str, list[MetricSpec]]

    @abstractmethod
    def fetch_cost(self, start: date, end: date, group_by: tuple[str, ...] | None = None) -> CostFetch:
        """cost_daily rows for UTC days in [start, end).

        ``group_by`` (canonical dimensions: service, region, account/project/subscription,
        resource) narrows the grouping
        for the usage API; None gives the warehouse contract's full grain.
        """

    @abstractmethod
    def iter_metric_frames(
        self,
        start: datetime,
        end: datetime,
        resources: list[ResourceRef] | None = None,
        metrics: list[str] | None = None,
    ) -> Iterator[pa.Table]:
        """metrics_hourly rows for hours in [start, end), one page (Arrow table) at a time.

        resources=None discovers every resource of every supported type (the assets);
        ``metrics`` filters by canonical name. Each row carries provider and usage_date.
        """

    def fetch_forecast(self) -> pa.Table | None:
        """cost_forecast rows where the cloud forecasts (an optional call: a failure is recorded
        with ``api.skip`` and gives None). The export sources use it; the API sources' fetch_cost
        returns it with the cost."""
        return None

    def daily_totals(self, start: date, end: date) -> dict[date, dict[str, Decimal]] | None:
        """Billed cost per UTC day of [start, end) and currency from the query API's cheapest
        ungrouped call, to reconcile an export with; None where the cloud has no such call."""
        return None

    def export_reader(self):
        """The :class:`finops_pipeline.clouds.exports.ExportReader` of this cloud's native export
        (<CLOUD>_COST_SOURCE=export)."""
        raise NotImplementedError(f"{self.provider}: no native export source yet")

    def discover_resources(self, start: date, end: date) -> list[ResourceRef] | None:
        """The resources metrics for UTC days in [start, end) should be asked for, where the
        cloud lists them apart from the metric calls (Azure: from cost data). None (the
        default) means each ``iter_metric_frames`` call finds them itself."""
        return None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def backoff_delays(attempts: int, base: float = 0.5, cap: float = 20.0, seed: float | None = None) -> list[float]:
    """Exponential backoff with full jitter, for clients whose SDK does not retry for us."""
    rng = random.Random(seed if seed is not None else time.time())
    return [rng.uniform(0, min(cap, base * 2**i)) for i in range(attempts)]
