"""Native billing exports: what every manifest-driven export shares (AWS Data Exports, Azure
Cost Management ``FocusCost`` exports, ...).

An export delivers, per billing period, a manifest listing its data files. Each cloud supplies
an :class:`ExportReader` (where a period's manifest is, how to open one of its files as a
stream read in byte ranges); this module does the rest, once for every cloud:

- :func:`billing_periods` — the periods a run's window touches (plus the previous one while
  the provider may still restate it);
- :func:`ingested_state` / :func:`record_ingested` — what was ingested per (provider, export,
  billing period), kept IN THE LAKE (table ``export_manifests``) so a run on another machine
  sees it; recorded only after the period's cost partitions landed, so a failed run re-ingests;
- :func:`changed_periods` — the manifests whose fingerprint differs from what was ingested
  (the restatement signal);
- :func:`ingest_period` — copy the period's Parquet files to a temporary directory in chunks
  and let DuckDB's Parquet reader run ONE SQL mapping over them,
  ``sql/exports/focus_cost_daily.sql`` (FOCUS columns to ``cost_daily``, provider extras through
  ``x_`` columns), aggregated to the daily grain (UTC ``ChargePeriodStart`` day) within a memory
  limit (never a whole month in memory), and replace every day of the period: a day is never
  half from one source and half from another. Money is cast to DECIMAL per line, never summed
  as float.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, Iterable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from finops_pipeline.clouds.base import ApiUsage, CloudApiError, utc_now
from finops_pipeline.warehouse.catalog import SQL_DIR
from finops_pipeline.warehouse.lake import Lake, PartitionWrite
from finops_pipeline.warehouse.schemas import COST_DAILY, EXPORT_MANIFESTS
from finops_pipeline.warehouse.sql import MEMORY_LIMIT, bind_parameters, read_sql

MAPPING_SQL = "focus_cost_daily"  # sql/exports/focus_cost_daily.sql
EXPORT_SQL_DIR = SQL_DIR / "exports"
COPY_CHUNK = 8 * 1024 * 1024  # bytes per read when a data file is copied to local disk

# The FOCUS 1.2 columns the mapping reads. A file without one of them (a FOCUS column the
# provider does not deliver) gets it as NULL, so the one SQL file serves every provider.
FOCUS_COLUMNS = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
    "PricingUnit",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
)
# Provider columns (FOCUS "x_" extensions) the mapping uses where a provider has them.
EXTRA_COLUMNS = (
    "x_UsageType",  # AWS FOCUS 1.0 (the usage type, Cost Explorer's USAGE_TYPE): `sku` where present
    "x_Operation",  # AWS
    "x_ServiceCode",  # AWS
)
# Money columns FOCUS types as decimal but a provider may deliver as double (AWS: "double").
_NUMERIC = {
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ListUnitPrice",
    "ContractedUnitPrice",
    "PricingCurrencyListUnitPrice",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "ConsumedQuantity",
    "PricingQuantity",
    "CommitmentDiscountQuantity",
}
# Without these a file is not a FOCUS export at all (another dataset at the export's location).
_REQUIRED = ("BilledCost", "BillingCurrency", "ChargePeriodStart")
_MAX_DAILY_CHARGE_PERIOD = timedelta(days=1)


class ExportError(CloudApiError):
    """An export cannot be ingested as delivered (missing manifest, unusable granularity or
    schema). Never retryable: the export's configuration or delivery must change first."""

    def __init__(self, provider: str, operation: str, reason: str):
        super().__init__(provider, operation, reason, retryable=False)


@dataclass(frozen=True)
class ExportManifest:
    """One billing period's delivery: its data files and a fingerprint that changes whenever
    the provider rewrites the period (the manifest's ETag / content hash, or its run id)."""

    export_name: str
    billing_period: date  # first day of the period (UTC)
    fingerprint: str
    files: tuple[str, ...]
    location: str  # where the manifest was read (for messages; never holds a secret)


class ExportReader(ABC):
    """What one cloud's export source provides to the shared ingestion."""

    provider: str
    source: str  # the cost_daily.source of every row, e.g. "export:aws_focus_1.2"
    export_name: str
    api: ApiUsage
    settle_day: int  # the previous period may still change through this day of the month
    today: date  # the UTC day of the run (days before it are ingested)

    @abstractmethod
    def manifest(self, period: date) -> ExportManifest | None:
        """The manifest of the billing period starting on ``period``; None when none is delivered."""

    @abstractmethod
    def open_file(self, uri: str) -> BinaryIO:
        """A binary stream of one data file (read in ranges, never downloaded whole)."""

    def manifest_location(self, period: date) -> str:
        """Where the period's manifest is expected (for the missing-manifest message)."""
        return f"{self.export_name} {period:%Y-%m}"


@dataclass(frozen=True)
class IngestedPeriod:
    """What ``export_manifests`` records of one ingested billing period."""

    export_name: str
    billing_period: date
    fingerprint: str
    data_files: int
    rows: int
    first_day: date | None
    last_day: date | None
    ingested_at: datetime


@dataclass
class ExportRun:
    """What an export ingestion did, for the asset's metadata."""

    checked: list[date] = field(default_factory=list)  # periods whose manifest was read
    ingested: dict[date, str] = field(default_factory=dict)  # period -> why it was ingested
    unchanged: list[date] = field(default_factory=list)
    missing: list[date] = field(default_factory=list)  # optional periods without a manifest
    writes: list[PartitionWrite] = field(default_factory=list)
    line_items: int = 0
    totals: dict[date, dict[str, Decimal]] = field(default_factory=dict)  # written day -> currency -> billed
    preview: pa.Table | None = None


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def billing_periods(start: date, end: date, today: date, settle_day: int) -> tuple[list[date], list[date]]:
    """The calendar-month periods the window [start, end) touches, and the previous period of
    ``today``'s month when it may still change (through ``settle_day``) and is not one of them."""
    periods = []
    period = month_start(start)
    while period < end:
        periods.append(period)
        period = next_month(period)
    settling = []
    previous = month_start(month_start(today) - timedelta(days=1))
    if today.day <= settle_day and previous not in periods:
        settling.append(previous)
    return periods, settling


def ingested_state(lake: Lake, provider: str) -> dict[tuple[str, date], IngestedPeriod]:
    """(export, billing period) -> what was last ingested, read from the lake."""
    location = lake.partition_file(EXPORT_MANIFESTS.name, {"provider": provider})
    if not lake.exists(location):
        return {}
    state = {}
    for row in pq.read_table(lake.fs_path(location), filesystem=lake.fs).to_pylist():
        item = IngestedPeriod(**{k: row[k] for k in IngestedPeriod.__dataclass_fields__})
        state[(item.export_name, item.billing_period)] = item
    return state


def record_ingested(lake: Lake, provider: str, done: Iterable[IngestedPeriod]) -> None:
    """Replace the recorded state of these periods (call only after their partitions landed)."""
    state = ingested_state(lake, provider)
    for item in done:
        state[(item.export_name, item.billing_period)] = item
    rows = [vars(item) for _, item in sorted(state.items())]
    table = pa.Table.from_pylist(
        rows, schema=EXPORT_MANIFESTS.columns_schema([f.name for f in EXPORT_MANIFESTS.schema])
    )
    lake.write_partition(EXPORT_MANIFESTS.name, {"provider": provider}, table)


def changed_periods(
    manifests: Iterable[ExportManifest], state: dict[tuple[str, date], IngestedPeriod]
) -> list[ExportManifest]:
    """The manifests whose fingerprint differs from the one last ingested (or never ingested)."""
    changed = []
    for manifest in manifests:
        seen = state.get((manifest.export_name, manifest.billing_period))
        if seen is None or seen.fingerprint != manifest.fingerprint:
            changed.append(manifest)
    return changed


def _duckdb_type(name: str) -> str:
    """The type a FOCUS column the files lack is given (NULL throughout)."""
    if name in ("ChargePeriodStart", "ChargePeriodEnd"):
        return "TIMESTAMP"
    if name == "Tags":
        return "MAP(VARCHAR, VARCHAR)"
    return "DOUBLE" if name in _NUMERIC else "VARCHAR"


def _download(reader: ExportReader, manifest: ExportManifest, directory: Path) -> tuple[list[str], int]:
    """Copy the period's data files to local disk, streamed in chunks (never a whole file in
    memory); returns their paths and the line items their footers count."""
    paths, rows = [], 0
    for i, uri in enumerate(manifest.files):
        path = directory / f"part-{i:05d}.parquet"
        with reader.open_file(uri) as source, open(path, "wb") as target:
            shutil.copyfileobj(source, target, COPY_CHUNK)
        paths.append(str(path))
        rows += pq.read_metadata(path).num_rows
    return paths, rows


def _export_rows_view(con: duckdb.DuckDBPyConnection, paths: list[str]) -> list[str]:
    """``export_rows``: the files' line items with every column the mapping reads (a column the
    provider does not deliver is NULL; a JSON-text ``Tags``, as Azure writes it, becomes a MAP).
    Returns the required FOCUS columns the files lack (the view is not made then)."""
    wanted = FOCUS_COLUMNS + EXTRA_COLUMNS
    if paths:
        source = "read_parquet($files, union_by_name = true)"
        present = dict(
            con.execute(
                f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {source})", {"files": paths}
            ).fetchall()
        )
        missing = [name for name in _REQUIRED if name not in present]
        if missing:
            return missing
    else:
        source, present = "(SELECT 1 WHERE false)", {}
    columns = []
    for name in wanted:
        if name not in present:
            columns.append(f'NULL::{_duckdb_type(name)} AS "{name}"')
        elif name == "Tags" and present[name] == "VARCHAR":
            columns.append('CAST(json("Tags") AS MAP(VARCHAR, VARCHAR)) AS "Tags"')
        else:
            columns.append(f'"{name}"')
    files = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    source = f"read_parquet([{files}], union_by_name = true)" if paths else source
    con.execute(f"CREATE VIEW export_rows AS SELECT {', '.join(columns)} FROM {source}")
    return []


def ingest_period(
    reader: ExportReader,
    manifest: ExportManifest,
    lake: Lake,
    first_day: date,
    last_day: date,
) -> tuple[list[PartitionWrite], IngestedPeriod, pa.Table]:
    """Map one period's files through the FOCUS mapping and replace each of its days in
    [first_day, last_day] (days the export no longer has become empty partitions). Returns the
    writes, the state to record once the caller's writes all landed, and the rows written.

    The files are copied to a temporary directory in chunks and read there by DuckDB's own
    Parquet reader (only the columns the mapping uses, on every core, spilling past the memory
    limit), so no month is ever held in memory."""
    ingested_at = utc_now()
    with tempfile.TemporaryDirectory(prefix="finops-export-") as tmp:
        paths, line_items = _download(reader, manifest, Path(tmp))
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            con.execute(f"SET temp_directory = '{tmp}/spill'")
            missing = _export_rows_view(con, paths)
            if missing:
                raise ExportError(
                    reader.provider,
                    "export ingestion",
                    f"{manifest.location}: the data files have no {', '.join(missing)} column: they are not a FOCUS "
                    "export. Point the export setting at a FOCUS export (Azure: type FocusCost; AWS: FOCUS 1.2 "
                    "with AWS columns).",
                )
            bind_parameters(
                con,
                {"provider": reader.provider, "export_source": reader.source, "ingested_at": ingested_at},
            )
            try:
                daily = con.sql(read_sql(MAPPING_SQL, EXPORT_SQL_DIR)).to_arrow_table()
            except duckdb.Error as exc:
                raise ExportError(
                    reader.provider,
                    "export ingestion",
                    f"{manifest.location}: the data files do not map to FOCUS: {exc}",
                ) from None
        finally:
            con.close()
    longest = pc.max(daily["x_charge_period_seconds"]).as_py() or 0
    if longest > _MAX_DAILY_CHARGE_PERIOD.total_seconds():
        raise ExportError(
            reader.provider,
            "export ingestion",
            f"{manifest.location}: charge periods last up to {longest / 86400:g} days, so the export has "
            "monthly time granularity; cost_daily needs one row per day. Recreate the export with "
            "daily or hourly time granularity.",
        )
    daily = daily.drop_columns(["x_charge_period_seconds"])
    span = pc.min_max(daily["usage_date"])
    if daily.num_rows and (span["min"].as_py() < first_day or span["max"].as_py() > last_day):
        keep = pc.and_(
            pc.greater_equal(daily["usage_date"], pa.scalar(first_day, pa.date32())),
            pc.less_equal(daily["usage_date"], pa.scalar(last_day, pa.date32())),
        )
        daily = daily.filter(keep)
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    writes = lake.write_partitions(
        COST_DAILY.name, daily, expected=[{"provider": reader.provider, "usage_date": d} for d in days]
    )
    done = IngestedPeriod(
        export_name=manifest.export_name,
        billing_period=manifest.billing_period,
        fingerprint=manifest.fingerprint,
        data_files=len(manifest.files),
        rows=line_items,
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        ingested_at=ingested_at,
    )
    return writes, done, daily


def ingest_export(reader: ExportReader, lake: Lake, start: date, end: date, first_day: date) -> ExportRun:
    """Ingest the periods of the window [start, end) (and the settling previous period) whose
    manifest changed since the last ingest, or that have a window day not landed from the export.

    Each changed period is replaced whole, from ``first_day`` (FINOPS_START_DATE) to the day before
    ``today``; the state is recorded after all its partitions landed. A window period without a
    manifest is an error; a settling period without one is skipped (noted)."""
    run = ExportRun()
    today = reader.today
    periods, settling = billing_periods(start, end, today, reader.settle_day)
    state = ingested_state(lake, reader.provider)
    landed = _landed_export_days(lake, reader)
    manifests: list[ExportManifest] = []
    for period in periods + settling:
        manifest = reader.manifest(period)
        run.checked.append(period)
        if manifest is None:
            if period in settling:
                run.missing.append(period)
                continue
            raise ExportError(
                reader.provider,
                "export manifest",
                f"no manifest for billing period {period:%Y-%m} at {reader.manifest_location(period)}. "
                "The export has not delivered this period yet (the first delivery can take up to 24 "
                "hours after the export is created), or the export location setting is wrong.",
            )
        manifests.append(manifest)
    changed = {m.billing_period for m in changed_periods(manifests, state)}
    done = []
    for manifest in manifests:
        period = manifest.billing_period
        lo, hi = _period_days(period, first_day, today)
        window_days = [d for d in _days(max(lo, start), min(next_month(period), end)) if d <= hi]
        if period in changed:
            why = "manifest changed" if (manifest.export_name, period) in state else "never ingested"
        elif any(d not in landed for d in window_days):
            why = "days of the run's window not landed from the export"
        else:
            run.unchanged.append(period)
            continue
        if hi < lo:
            run.unchanged.append(period)
            continue
        writes, item, written = ingest_period(reader, manifest, lake, lo, hi)
        preview = written.slice(0, 10)
        run.ingested[period] = why
        run.writes.extend(writes)
        run.line_items += item.rows
        run.totals.update(daily_totals(written))
        if run.preview is None and preview.num_rows:
            run.preview = preview
        done.append(item)
        record_ingested(lake, reader.provider, [item])  # after the period's partitions landed
    return run


def changed_export_days(
    reader: ExportReader, lake: Lake, first_day: date, today: date | None = None
) -> dict[date, str]:
    """The restatement plan of an export source for ``today`` (the schedule tick's day; default the
    reader's): every kept day (FINOPS_START_DATE to yesterday) of the current period and of the
    settling previous one whose manifest changed since it was ingested (or that has none recorded).
    Reads only the manifests."""
    today = today or reader.today
    periods, settling = billing_periods(today - timedelta(days=1), today, today, reader.settle_day)
    state = ingested_state(lake, reader.provider)
    manifests = [m for m in (reader.manifest(p) for p in periods + settling) if m is not None]
    plan: dict[date, str] = {}
    for manifest in changed_periods(manifests, state):
        lo, hi = _period_days(manifest.billing_period, first_day, today)
        for day in _days(lo, hi + timedelta(days=1)):
            plan[day] = f"export manifest of {manifest.billing_period:%Y-%m} changed"
    return plan


def daily_totals(cost: pa.Table) -> dict[date, dict[str, Decimal]]:
    """Billed cost per day and currency of cost_daily rows (DECIMAL sums)."""
    grouped = cost.group_by(["usage_date", "billing_currency"]).aggregate([("billed_cost", "sum")])
    totals: dict[date, dict[str, Decimal]] = {}
    for row in grouped.to_pylist():
        totals.setdefault(row["usage_date"], {})[row["billing_currency"]] = row["billed_cost_sum"]
    return totals


def _period_days(period: date, first_day: date, today: date) -> tuple[date, date]:
    """The days of a period the pipeline keeps: from FINOPS_START_DATE to yesterday."""
    return max(period, first_day), min(next_month(period), today) - timedelta(days=1)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range(max(0, (end - start).days))]


def _landed_export_days(lake: Lake, reader: ExportReader) -> set[date]:
    """Days of the provider whose cost_daily partition exists and was written from this source
    (an empty partition written by the export counts: the export had no rows that day)."""
    found = set()
    for part in lake.partitions(COST_DAILY.name):
        if part["provider"] != reader.provider:
            continue
        path = lake.fs_path(lake.partition_file(COST_DAILY.name, part))
        meta = pq.read_metadata(path, filesystem=lake.fs)
        if meta.num_rows == 0:
            found.add(date.fromisoformat(part["usage_date"]))
            continue
        sources = pq.read_table(path, columns=["source"], filesystem=lake.fs).column("source").unique().to_pylist()
        if sources == [reader.source]:
            found.add(date.fromisoformat(part["usage_date"]))
    return found


class RangeReader(io.RawIOBase):
    """A read-only stream over an object read in byte ranges: ``fetch(offset, length)`` returns
    those bytes (one ranged GET). Wrap in ``io.BufferedReader`` to coalesce small reads."""

    def __init__(self, size: int, fetch):
        self._size = size
        self._fetch = fetch
        self._pos = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        length = min(len(buffer), self._size - self._pos)
        if length <= 0:
            return 0
        data = self._fetch(self._pos, length)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)
