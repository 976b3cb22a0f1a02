"""Public models of the usage API: metrics of a resource, cost records, summaries, queries.

Field names follow the original usage integration, so code written against it keeps
working after changing the import root. Differences, on purpose:

- Money is ``Decimal`` (never float). Amounts in different currencies are never added:
  a summary's ``total_cost`` is ``None`` when what it selected is billed in more than one
  currency, and ``costs_by_currency`` always holds one total per currency.
- Datetimes are timezone-aware UTC. A naive datetime is read as UTC (not local time);
  an aware one is converted to UTC. A ``date`` means its midnight UTC.
- ``cloud_provider``, ``granularity`` and ``confidence`` are enums that still accept the
  strings ``"aws"``, ``"DAILY"``, ``"high"`` in any letter case, and compare equal to
  their lowercase/uppercase string values (``CloudProvider.AWS == "aws"``).
- Periods are start-inclusive and end-exclusive; an end before (or at) the start raises.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Optional

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)


class _LenientEnum(str, Enum):
    """A string enum that also accepts its values in any letter case."""

    @classmethod
    def _missing_(cls, value: object):
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.strip().lower():
                    return member
        allowed = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"unknown {cls.__name__} {value!r}: pass one of {allowed}")

    def __str__(self) -> str:
        return self.value


class CloudProvider(_LenientEnum):
    """The clouds the usage API reads."""

    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"


class Granularity(_LenientEnum):
    """Time bucket of cost records. Billing data is daily: HOURLY cost is not available."""

    HOURLY = "HOURLY"
    DAILY = "DAILY"
    MONTHLY = "MONTHLY"


class Confidence(_LenientEnum):
    """How far a summary can be trusted (from data coverage and estimated billing)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


def to_utc(value: object) -> object:
    """A timezone-aware UTC datetime; naive input is read as UTC, a date as its midnight UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            return to_utc(dt.datetime.fromisoformat(text))
        except ValueError:
            raise ValueError(
                f"{value!r} is not a date/time: pass a datetime, a date or an ISO 8601 string "
                "such as '2026-01-01T00:00:00Z'"
            ) from None
    return value  # pydantic reports the wrong type


UtcDatetime = Annotated[dt.datetime, BeforeValidator(to_utc)]


def check_period(start: dt.datetime, end: dt.datetime) -> None:
    """Raise ValueError unless start < end (both already UTC)."""
    if end <= start:
        raise ValueError(
            f"end_time {end.isoformat()} is not after start_time {start.isoformat()}: pass an "
            "end_time later than start_time (periods are start-inclusive, end-exclusive, UTC)"
        )


class _Model(BaseModel):
    model_config = ConfigDict(validate_assignment=True, use_enum_values=False)


class UsageMetric(_Model):
    """One hourly datapoint of one metric of a resource.

    ``metric_name`` is the provider's native name (``CPUUtilization``), ``canonical_name`` the
    warehouse's (``cpu_utilization_pct``). ``value`` is the hour's average for gauges and
    the hour's total for counters (``statistic`` says which); ``maximum``/``minimum`` are
    set where the provider returns them.
    """

    timestamp: UtcDatetime
    value: float
    unit: str
    metric_name: str
    canonical_name: Optional[str] = None
    statistic: str = "avg"
    maximum: Optional[float] = None
    minimum: Optional[float] = None
    dimensions: dict[str, str] = Field(default_factory=dict)


class ResourceUsage(_Model):
    """A resource's metrics over [start_time, end_time) and their averages.

    Averages are over the hours with data; ``None`` means no data, ``0.0`` is a real zero.
    Network and disk averages are GiB (1024**3 bytes) per hour. Memory utilization is
    only set where the provider reports a percentage.
    """

    resource_id: str
    resource_type: str
    region: Optional[str] = None
    cloud_provider: CloudProvider
    start_time: UtcDatetime
    end_time: UtcDatetime
    metrics: list[UsageMetric] = Field(default_factory=list)
    avg_cpu_utilization: Optional[float] = None
    avg_memory_utilization: Optional[float] = None
    avg_network_in_gb: Optional[float] = None
    avg_network_out_gb: Optional[float] = None
    avg_disk_read_gb: Optional[float] = None
    avg_disk_write_gb: Optional[float] = None
    hours_with_data: int = 0
    tags: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class CostUsageRecord(_Model):
    """Cost of one period (a UTC day or month) for one group of the requested dimensions.

    ``cost`` is the billed (unblended) cost and ``effective_cost`` the amortized cost net of
    discounts, both in ``currency``. ``usage_amount`` is only set when every line in the
    group has the same ``usage_unit`` (adding hours to gigabytes means nothing).
    Ungrouped queries give one record per period and currency with ``service`` "All services".
    """

    date: UtcDatetime
    start_time: UtcDatetime
    end_time: UtcDatetime
    cost: Decimal
    effective_cost: Optional[Decimal] = None
    currency: str = "USD"
    usage_amount: Optional[float] = None
    usage_unit: Optional[str] = None
    service: Optional[str] = None
    account_id: Optional[str] = None
    resource_id: Optional[str] = None
    resource_type: Optional[str] = None
    region: Optional[str] = None
    is_estimated: bool = False
    dimensions: dict[str, Optional[str]] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class UsageSummary(_Model):
    """What a :class:`UsageQuery` selected: its cost, its resources and how complete the data is.

    Currencies: ``costs_by_currency`` has one total per billing currency. ``total_cost`` and
    ``currency`` are set when everything selected is in one currency (``Decimal(0)`` and
    ``None`` when nothing was billed); with several currencies both are ``None`` — amounts in
    different currencies are never added. ``average_cost_per_resource`` is only set when the
    cost was selected per resource or resource type and is in one currency; it is never an
    account total divided by a resource count.

    ``data_completeness`` (0..1) is the lower of the share of days with billing data and the
    share of (resource, day) pairs with metrics. ``confidence``: high when completeness >=
    0.95 and no billing line is estimated; medium when completeness >= 0.75; low otherwise.
    ``notes`` explains anything that limited the answer (truncation, missing tags ...).
    """

    cloud_provider: CloudProvider
    resource_type: str = "all"
    region: Optional[str] = None
    start_time: UtcDatetime
    end_time: UtcDatetime
    total_resources: int = 0
    total_cost: Optional[Decimal] = Decimal(0)
    currency: Optional[str] = None
    costs_by_currency: dict[str, Decimal] = Field(default_factory=dict)
    average_cost_per_resource: Optional[Decimal] = None
    total_usage: Optional[float] = None
    average_usage: Optional[float] = None
    usage_unit: Optional[str] = None
    avg_cpu_utilization: Optional[float] = None
    avg_memory_utilization: Optional[float] = None
    records: list[CostUsageRecord] = Field(default_factory=list)
    resources: list[ResourceUsage] = Field(default_factory=list)
    confidence: Confidence = Confidence.HIGH
    data_completeness: float = Field(default=1.0, ge=0.0, le=1.0)
    notes: list[str] = Field(default_factory=list)


class UsageQuery(_Model):
    """What :meth:`UsageFactory.get_usage_summary` should select and how to group it.

    Every filter narrows the selection; ``None`` (or empty) means "no filter". ``tags``
    keeps resources carrying every given key=value. ``group_by`` takes ``service``,
    ``region``, ``account`` (or ``project``/``subscription``) and ``resource``, in any case.
    ``max_results`` caps the ``records`` and ``resources`` lists (totals cover everything).
    """

    cloud_provider: CloudProvider
    start_time: UtcDatetime
    end_time: UtcDatetime
    resource_ids: Optional[list[str]] = None
    resource_types: Optional[list[str]] = None
    regions: Optional[list[str]] = None
    metric_names: Optional[list[str]] = None
    tags: Optional[dict[str, str]] = None
    granularity: Granularity = Granularity.DAILY
    group_by: Optional[list[str]] = None
    max_results: int = Field(default=1000, ge=1)

    @field_validator("resource_types", "group_by", mode="after")
    @classmethod
    def _lowercase(cls, values: Optional[list[str]]) -> Optional[list[str]]:
        return [v.strip().lower() for v in values] if values is not None else None

    @model_validator(mode="after")
    def _period(self) -> UsageQuery:
        check_period(self.start_time, self.end_time)
        return self
