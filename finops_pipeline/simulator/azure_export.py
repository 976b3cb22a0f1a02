"""The fleet's Azure bill as a Cost Management ``FocusCost`` export, written into Blob Storage (Azurite).

It plays the export as Microsoft documents it, from the same fleet facts as the Cost Management
query double (simulator/azure.py), so the two sources add up to the same totals per day:

- Layout: ``<container>/<directory>/<export-name>/<YYYYMMDD-YYYYMMDD>/<run-id>/part_<n>_<m>.parquet``
  and ``manifest.json`` beside the parts, written after them ("Tutorial: Create and manage exported
  data", file partitioning; FinOps toolkit "How data is processed in FinOps hubs", About exports).
- The manifest: ``blobCount``, ``dataRowCount``, ``byteCount``, ``exportConfig``, ``deliveryConfig``,
  ``runInfo`` (``runId``, ``submittedTime`` with 7 fractional digits, ``startDate``/``endDate`` where
  endDate is the month's LAST day, inclusive) and ``blobs[].blobName`` relative to the container
  (FinOps toolkit "How data is processed in FinOps hubs", the 2023-07-01-preview manifest example).
- Parquet with snappy compression (``compressionMode``: "Gzip is for csv and snappy for parquet",
  @azure/arm-costmanagement CommonExportProperties); ``dataOverwriteBehavior`` OverwritePreviousReport
  replaces the month's earlier run, CreateNewReport keeps it beside the new one (same page).
- Columns: the FocusCost 1.2-preview dataset ("FOCUS cost and usage details file schema"): money as
  Decimal ("FOCUS metadata": BilledCost Decimal), dates as UTC datetimes, ``Tags`` a JSON object in a
  string, Microsoft's own ``x_`` columns (``x_ResourceGroupName``, ``x_SkuMeterCategory`` ...),
  CapacityReservation* and SkuPriceDetails null ("Currently null/empty"), no ``AvailabilityZone``
  column ("Not included in Microsoft Cloud cost data", FinOps toolkit data dictionary), and
  ``InvoiceId`` empty until the month is invoiced (after it closes).
"""

from __future__ import annotations

import io
import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from finops_pipeline.simulator.fleet import Fleet

DATASET_VERSION = "1.2-preview"
EXPORT_API_VERSION = "2025-03-01"
# ARM region name -> FOCUS RegionName as Microsoft writes it.
REGION_NAMES = {"eastus": "East US", "westeurope": "West Europe", "eastus2": "East US 2", "northeurope": "North Europe"}
# The double's own catalogue (not the adapter's): meter -> (meter category, subcategory, unit, service category).
METERS = {
    "D2s v5": ("Virtual Machines", "Dsv5 Series", "1 Hour", "Compute", "Virtual Machines"),
    "S1 DTUs": ("SQL Database", "Standard - DTUs", "1/Day", "Databases", "Relational Databases"),
    "Hot LRS Data Stored": ("Storage", "Tiered Block Blob", "1 GB/Month", "Storage", "Object Storage"),
    "P1 v3 App": ("Azure App Service", "Premium v3 Plan", "1 Hour", "Compute", "Other (Compute)"),
}
_MONEY = pa.decimal128(38, 18)
_TIME = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("BilledCost", _MONEY),
        ("BillingAccountId", pa.string()),
        ("BillingAccountName", pa.string()),
        ("BillingAccountType", pa.string()),
        ("BillingCurrency", pa.string()),
        ("BillingPeriodEnd", _TIME),
        ("BillingPeriodStart", _TIME),
        ("CapacityReservationId", pa.string()),
        ("CapacityReservationStatus", pa.string()),
        ("ChargeCategory", pa.string()),
        ("ChargeClass", pa.string()),
        ("ChargeDescription", pa.string()),
        ("ChargeFrequency", pa.string()),
        ("ChargePeriodEnd", _TIME),
        ("ChargePeriodStart", _TIME),
        ("CommitmentDiscountCategory", pa.string()),
        ("CommitmentDiscountId", pa.string()),
        ("CommitmentDiscountName", pa.string()),
        ("CommitmentDiscountQuantity", _MONEY),
        ("CommitmentDiscountStatus", pa.string()),
        ("CommitmentDiscountType", pa.string()),
        ("CommitmentDiscountUnit", pa.string()),
        ("ConsumedQuantity", _MONEY),
        ("ConsumedUnit", pa.string()),
        ("ContractedCost", _MONEY),
        ("ContractedUnitPrice", _MONEY),
        ("EffectiveCost", _MONEY),
        ("InvoiceId", pa.string()),
        ("InvoiceIssuerName", pa.string()),
        ("ListCost", _MONEY),
        ("ListUnitPrice", _MONEY),
        ("PricingCategory", pa.string()),
        ("PricingCurrency", pa.string()),
        ("PricingQuantity", _MONEY),
        ("PricingUnit", pa.string()),
        ("ProviderName", pa.string()),
        ("PublisherName", pa.string()),
        ("RegionId", pa.string()),
        ("RegionName", pa.string()),
        ("ResourceId", pa.string()),
        ("ResourceName", pa.string()),
        ("ResourceType", pa.string()),
        ("ServiceCategory", pa.string()),
        ("ServiceName", pa.string()),
        ("ServiceSubcategory", pa.string()),
        ("SkuId", pa.string()),
        ("SkuMeter", pa.string()),
        ("SkuPriceDetails", pa.string()),
        ("SkuPriceId", pa.string()),
        ("SubAccountId", pa.string()),
        ("SubAccountName", pa.string()),
        ("SubAccountType", pa.string()),
        ("Tags", pa.string()),
        ("x_BillingAccountId", pa.string()),
        ("x_BillingProfileId", pa.string()),
        ("x_EffectiveUnitPrice", _MONEY),
        ("x_PricingBlockSize", _MONEY),
        ("x_ResourceGroupName", pa.string()),
        ("x_ResourceType", pa.string()),
        ("x_ServicePeriodEnd", _TIME),
        ("x_ServicePeriodStart", _TIME),
        ("x_SkuMeterCategory", pa.string()),
        ("x_SkuMeterId", pa.string()),
        ("x_SkuMeterSubcategory", pa.string()),
    ]
)
MCA_ACCOUNT = "a1b2c3d4-0000-4000-8000-00000000000a:e5f6a7b8-0000-4000-8000-00000000000b_2019-05-31"


@dataclass(frozen=True)
class ExportDestination:
    """Where the export writes: container, directory (the export's ``rootFolderPath``) and export name."""

    container: str = "cost-exports"
    directory: str = "finops"
    export_name: str = "focus-daily"

    @property
    def prefix(self) -> str:
        return f"{self.directory}/{self.export_name}"


def _u32(*parts: object) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _month(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def _billing_profile(sub: str, currency: str) -> tuple[str, str]:
    """An MCA billing profile per billing currency (a profile bills in one currency)."""
    code = f"{_u32('profile', currency) % 10**4:04d}-{currency}"
    return f"/providers/Microsoft.Billing/billingAccounts/{MCA_ACCOUNT}/billingProfiles/{code}", f"Contoso {currency}"


def focus_rows(fleet: Fleet, day: date, invoiced: bool) -> list[dict]:
    """The FocusCost rows of one day: one per resource and meter (Usage, on-demand)."""
    rows = []
    period_start, period_end = _month(day)
    for line in fleet.cost_lines("azure", day):
        resource = fleet.by_id.get(line.resource_id or "")
        category, subcategory, unit, service_category, service_subcategory = METERS[line.sku]
        profile_id, profile_name = _billing_profile(line.sub_account_id, line.currency)
        quantity = Decimal(str(line.usage_quantity))
        unit_price = (line.billed_cost / quantity).quantize(Decimal("0.000001")) if quantity else Decimal(0)
        rid = line.resource_id or ""
        arm_type = "/".join(rid.split("/providers/", 1)[1].split("/")[:2]) if "/providers/" in rid else None
        meter_id = str(uuid.UUID(int=_u32("meter", line.sku) << 96 | _u32("meter-lo", line.sku)))
        sku_id = f"DZH318Z0{_u32('sku', line.sku) % 10**4:04d}/00{_u32('sku2', line.sku) % 100:02d}"
        rows.append(
            {
                "BilledCost": line.billed_cost,
                "BillingAccountId": profile_id,
                "BillingAccountName": profile_name,
                "BillingAccountType": "Billing Profile",
                "BillingCurrency": line.currency,
                "BillingPeriodEnd": _utc(period_end),
                "BillingPeriodStart": _utc(period_start),
                "CapacityReservationId": None,
                "CapacityReservationStatus": None,
                "ChargeCategory": line.charge_category,
                "ChargeClass": None,
                "ChargeDescription": f"{category} - {line.sku}",
                "ChargeFrequency": "Usage-Based",
                "ChargePeriodEnd": _utc(day + timedelta(days=1)),
                "ChargePeriodStart": _utc(day),
                "CommitmentDiscountCategory": None,
                "CommitmentDiscountId": None,
                "CommitmentDiscountName": None,
                "CommitmentDiscountQuantity": None,
                "CommitmentDiscountStatus": None,
                "CommitmentDiscountType": None,
                "CommitmentDiscountUnit": None,
                "ConsumedQuantity": quantity,
                "ConsumedUnit": "Hours",
                "ContractedCost": line.billed_cost,
                "ContractedUnitPrice": unit_price,
                "EffectiveCost": line.effective_cost,
                # Issued after the month closes; empty on the open month's rows.
                "InvoiceId": f"G{_u32('invoice', profile_id, period_start) % 10**9:09d}" if invoiced else None,
                "InvoiceIssuerName": "Microsoft",
                "ListCost": line.billed_cost,
                "ListUnitPrice": unit_price,
                "PricingCategory": "Standard",
                "PricingCurrency": line.currency,
                "PricingQuantity": quantity,
                "PricingUnit": "Hours",
                "ProviderName": "Microsoft",
                "PublisherName": "Microsoft",
                "RegionId": line.region,
                "RegionName": REGION_NAMES.get(line.region or "", line.region),
                "ResourceId": rid or None,
                "ResourceName": resource.name if resource else None,
                "ResourceType": category,
                "ServiceCategory": service_category,
                "ServiceName": line.service_name,
                "ServiceSubcategory": service_subcategory,
                "SkuId": sku_id,
                "SkuMeter": line.sku,
                "SkuPriceDetails": None,
                "SkuPriceId": f"{sku_id}/{meter_id[:8]}",
                # "All FOCUS *Id columns (not the x_ extension columns) use fully qualified resource
                # IDs" (Microsoft Learn, "What is FOCUS?", important notes about FOCUS columns); for a
                # subscription "that's /subscriptions/<subscription-guid>" (finops-toolkit #2179).
                "SubAccountId": f"/subscriptions/{line.sub_account_id}",
                "SubAccountName": f"simulated {line.sub_account_id[-4:]}",
                "SubAccountType": "Subscription",
                "Tags": json.dumps(line.tags, sort_keys=True) if line.tags else None,
                "x_BillingAccountId": MCA_ACCOUNT,
                "x_BillingProfileId": profile_id,
                "x_EffectiveUnitPrice": unit_price,
                "x_PricingBlockSize": Decimal(1),
                "x_ResourceGroupName": rid.split("/")[4].lower() if rid.count("/") > 4 else None,
                "x_ResourceType": arm_type,
                "x_ServicePeriodEnd": _utc(day + timedelta(days=1)),
                "x_ServicePeriodStart": _utc(day),
                "x_SkuMeterCategory": category,
                "x_SkuMeterId": meter_id,
                "x_SkuMeterSubcategory": subcategory,
            }
        )
    return rows


def rounding_adjustment_row(month: date, amount: Decimal, currency: str = "USD") -> dict:
    """An invoiced month's rounding adjustment as FocusCost writes it (FOCUS conformance summary of
    the Microsoft Cost Management FOCUS dataset): ``ServiceName`` is empty for "MCA rounding
    adjustment, MACC shortfall, and Azure credit records"; "some columns can be "-2" or "Unassigned"
    when there's no value" (SkuPriceId, SubAccountName); SkuId and ChargeDescription are null for
    charges without a product SKU. The charge spans the billing period; no subscription, no resource."""
    period_start, period_end = _month(month)
    profile_id, profile_name = _billing_profile("", currency)
    row = dict.fromkeys(SCHEMA.names)
    row.update(
        BilledCost=amount,
        EffectiveCost=amount,
        ContractedCost=Decimal(0),
        ListCost=Decimal(0),
        BillingAccountId=profile_id,
        BillingAccountName=profile_name,
        BillingAccountType="Billing Profile",
        BillingCurrency=currency,
        BillingPeriodStart=_utc(period_start),
        BillingPeriodEnd=_utc(period_end),
        ChargeCategory="Adjustment",
        ChargeFrequency="One-Time",
        ChargePeriodStart=_utc(period_start),
        ChargePeriodEnd=_utc(period_end),
        InvoiceId=f"G{_u32('invoice', profile_id, period_start) % 10**9:09d}",
        InvoiceIssuerName="Microsoft",
        PricingCurrency=currency,
        ProviderName="Microsoft",
        PublisherName="Microsoft",
        ServiceName="",
        SkuPriceId="-2",
        SubAccountName="Unassigned",
        x_BillingAccountId=MCA_ACCOUNT,
        x_BillingProfileId=profile_id,
    )
    return row


@dataclass(frozen=True)
class WrittenRun:
    """What one simulated export run wrote."""

    folder: str  # <directory>/<export-name>/<YYYYMMDD-YYYYMMDD>/<run-id>
    run_id: str
    blobs: tuple[str, ...]
    rows: int
    manifest: str | None  # None while the run is "still writing"


def write_run(
    container,
    fleet: Fleet,
    destination: ExportDestination,
    month: date,
    through: date,
    *,
    invoiced: bool = False,
    since: date | None = None,
    rows_per_part: int = 500,
    overwrite: bool = True,
    with_manifest: bool = True,
    submitted: datetime | None = None,
    run_id: str | None = None,
    rounding_adjustment: Decimal | None = None,
) -> WrittenRun:
    """One export run of ``month``'s days before ``through`` (none before ``since``, when the
    simulated bill begins) into ``container`` (a ContainerClient).

    ``with_manifest=False`` leaves the run as Cost Management does while it is still writing: parts
    without a manifest. ``overwrite`` (OverwritePreviousReport) deletes the month's earlier runs once
    this one is complete; CreateNewReport keeps them. ``rounding_adjustment``: an invoiced month
    also carries its invoice's rounding adjustment of that amount (USD), beside the fleet's bill."""
    first, month_end = _month(month)
    last_day = month_end - timedelta(days=1)
    run_id = run_id or str(uuid.uuid4())
    submitted = submitted or datetime.now(timezone.utc)
    period_folder = f"{destination.prefix}/{first:%Y%m%d}-{last_day:%Y%m%d}"
    folder = f"{period_folder}/{run_id}"
    rows = []
    day = max(first, since or first)
    while day < min(through, month_end):
        rows.extend(focus_rows(fleet, day, invoiced))
        day += timedelta(days=1)
    if invoiced and rounding_adjustment is not None:
        rows.append(rounding_adjustment_row(first, rounding_adjustment))
    blobs, sizes = [], []
    for n, offset in enumerate(range(0, max(len(rows), 1), rows_per_part)):
        table = pa.Table.from_pylist(rows[offset : offset + rows_per_part], schema=SCHEMA)
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="snappy")
        name = f"{folder}/part_{n}_{1:04d}.parquet"
        container.upload_blob(name, sink.getvalue(), overwrite=True)
        blobs.append(name)
        sizes.append((sink.tell(), table.num_rows))
    if not with_manifest:
        return WrittenRun(folder, run_id, tuple(blobs), len(rows), None)
    manifest = {
        "manifestVersion": "2024-04-01",
        "byteCount": sum(size for size, _ in sizes),
        "blobCount": len(blobs),
        "dataRowCount": len(rows),
        "exportConfig": {
            "exportName": destination.export_name,
            "resourceId": f"/providers/Microsoft.Billing/billingAccounts/{MCA_ACCOUNT}"
            f"/providers/Microsoft.CostManagement/exports/{destination.export_name}",
            "dataVersion": DATASET_VERSION,
            "apiVersion": EXPORT_API_VERSION,
            "type": "FocusCost",
            "timeFrame": "MonthToDate" if not invoiced else "TheLastMonth",
            "granularity": "Daily",
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "OverwritePreviousReport" if overwrite else "CreateNewReport",
            "fileFormat": "Parquet",
            "compressionMode": "snappy",
            "containerUri": "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-finops"
            "/providers/Microsoft.Storage/storageAccounts/finopsexports",
            "rootFolderPath": destination.directory,
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": submitted.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z",
            "runId": run_id,
            "startDate": f"{first.isoformat()}T00:00:00",
            "endDate": f"{last_day.isoformat()}T00:00:00",
        },
        "blobs": [
            {"blobName": name, "byteCount": size, "dataRowCount": count} for name, (size, count) in zip(blobs, sizes)
        ],
    }
    manifest_name = f"{folder}/manifest.json"
    container.upload_blob(manifest_name, json.dumps(manifest, indent=2).encode(), overwrite=True)
    if overwrite:
        for blob in container.list_blobs(name_starts_with=period_folder + "/"):
            if not blob.name.startswith(folder + "/"):
                container.delete_blob(blob.name)
    return WrittenRun(folder, run_id, tuple(blobs), len(rows), manifest_name)


def publish_exports(
    container, fleet: Fleet, start: date, end: date, destination: ExportDestination | None = None, **options
) -> list[WrittenRun]:
    """The export as it stands on day ``end``: one complete run for every month overlapping [start, end),
    holding that month's days in [start, end) (the simulated bill begins on ``start``); months that
    closed before ``end``'s month are invoiced."""
    destination = destination or ExportDestination()
    runs = []
    month = start.replace(day=1)
    while month < end:
        invoiced = _month(month)[1] <= end.replace(day=1)
        runs.append(write_run(container, fleet, destination, month, end, invoiced=invoiced, since=start, **options))
        month = _month(month)[1]
    return runs
