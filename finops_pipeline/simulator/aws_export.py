"""The fleet's AWS bill delivered as an AWS Data Export ("FOCUS 1.2 with AWS columns", Parquet)
into S3 (moto's server), the way the AWS Data Exports user guide describes the delivery.

Its own tables, written from the AWS docs (never the adapter's):
- "Understanding export delivery": data under ``<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/``,
  the manifest at ``<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json``,
  delivered only after every data file; with "create new" delivery each execution writes its
  files under its execution id (older ones stay), with "overwrite" they are replaced in place;
  data file names ``<export-name>-<part-number>.<extension>``.
- "Data Exports manifest file reference": ``executionId``, ``exportArn``, ``columns`` (name,
  type), ``dataFiles`` (full S3 URIs), ``additionalOutputFiles``.
- "FOCUS 1.2 with AWS columns" (table dictionary): column names and types; the cost columns
  (BilledCost, EffectiveCost, ListCost, ContractedCost) are ``double``, ChargePeriodStart/End
  ``timestamp_milliseconds``, Tags a map, provider columns prefixed ``x_``.
- "Bill columns" (CUR 2.0): "Until the report is final, the InvoiceId is blank": the open
  month's rows have no InvoiceId, closed months carry one.

The money comes from ``Fleet.cost_lines`` (the same facts as the Cost Explorer double), split
into hourly line items in whole micro-dollars so each day adds up to the fleet's total exactly.
The fleet's discounted EC2 instances are covered by one Compute Savings Plan: their hours are
``Used`` commitment rows (BilledCost 0, the Savings Plan rate as EffectiveCost), the plan's
recurring fee is a ``Purchase`` row billing the on-demand equivalent, and a tenth of the
commitment goes unused each day (an ``Unused`` row): day totals stay the fleet's.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from finops_pipeline.simulator.fleet import AWS_PAYER, CostLine, Fleet

FOCUS_TABLE = "FOCUS_1_2_AWS"
MICRO = Decimal("0.000001")
ACCOUNT_NAMES = {"111111111111": "payer-shared", "222222222222": "shop-production"}
REGION_NAMES = {"us-east-1": "US East (N. Virginia)", "eu-west-1": "Europe (Ireland)"}
SAVINGS_PLAN_SERVICE = "Savings Plans for AWS Compute usage"
AWS_INC = "Amazon Web Services, Inc."

# fleet type -> (ServiceName, ServiceCategory, ResourceType, x_ServiceCode, x_Operation, zonal)
# from the FOCUS 1.2 with AWS columns dictionary (ServiceName is the product name: EC2's is
# "Amazon Elastic Compute Cloud", where Cost Explorer's SERVICE says "... - Compute").
_PRODUCTS = {
    "ec2": ("Amazon Elastic Compute Cloud", "Compute", "Instance", "AmazonEC2", "RunInstances", True),
    "rds": ("Amazon Relational Database Service", "Databases", "DB Instance", "AmazonRDS", "CreateDBInstance", True),
    "lambda": ("AWS Lambda", "Compute", "Function", "AWSLambda", "Invoke", False),
    "dynamodb": ("Amazon DynamoDB", "Databases", "Table", "AmazonDynamoDB", "CommittedThroughput", False),
    "s3": ("Amazon Simple Storage Service", "Storage", "Bucket", "AmazonS3", "StandardStorage", False),
    "elb": ("Elastic Load Balancing", "Networking", "Load Balancer", "AWSELB", "LoadBalancing", False),
    "alb": ("Elastic Load Balancing", "Networking", "Load Balancer", "AWSELB", "LoadBalancing:Application", False),
}


def resource_arn(rtype: str, resource_id: str, region: str, account: str) -> str:
    """The line item's ResourceId as CUR/FOCUS carries it: the instance id for EC2, the bucket
    name for S3, the resource's ARN for the others (CUR 2.0 line item columns, line_item_resource_id)."""
    if rtype in ("ec2", "s3"):
        return resource_id
    return {
        "rds": f"arn:aws:rds:{region}:{account}:db:{resource_id}",
        "lambda": f"arn:aws:lambda:{region}:{account}:function:{resource_id}",
        "dynamodb": f"arn:aws:dynamodb:{region}:{account}:table/{resource_id}",
        "elb": f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{resource_id}",
        "alb": f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{resource_id}",
    }[rtype]


TAGS = pa.map_(pa.string(), pa.string())
MS = pa.timestamp("ms")
# FOCUS 1.2 with AWS columns: name -> Parquet type (the dictionary's string/double/timestamp/map).
SCHEMA = pa.schema(
    [
        ("AvailabilityZone", pa.string()),
        ("BilledCost", pa.float64()),
        ("BillingAccountId", pa.string()),
        ("BillingAccountName", pa.string()),
        ("BillingAccountType", pa.string()),
        ("BillingCurrency", pa.string()),
        ("BillingPeriodEnd", MS),
        ("BillingPeriodStart", MS),
        ("CapacityReservationId", pa.string()),
        ("CapacityReservationStatus", pa.string()),
        ("ChargeCategory", pa.string()),
        ("ChargeClass", pa.string()),
        ("ChargeDescription", pa.string()),
        ("ChargeFrequency", pa.string()),
        ("ChargePeriodEnd", MS),
        ("ChargePeriodStart", MS),
        ("CommitmentDiscountCategory", pa.string()),
        ("CommitmentDiscountId", pa.string()),
        ("CommitmentDiscountName", pa.string()),
        ("CommitmentDiscountQuantity", pa.float64()),
        ("CommitmentDiscountStatus", pa.string()),
        ("CommitmentDiscountType", pa.string()),
        ("CommitmentDiscountUnit", pa.string()),
        ("ConsumedQuantity", pa.float64()),
        ("ConsumedUnit", pa.string()),
        ("ContractedCost", pa.float64()),
        ("ContractedUnitPrice", pa.float64()),
        ("EffectiveCost", pa.float64()),
        ("InvoiceId", pa.string()),
        ("InvoiceIssuerName", pa.string()),
        ("ListCost", pa.float64()),
        ("ListUnitPrice", pa.float64()),
        ("PricingCategory", pa.string()),
        ("PricingCurrency", pa.string()),
        ("PricingCurrencyContractedUnitPrice", pa.float64()),
        ("PricingCurrencyEffectiveCost", pa.float64()),
        ("PricingCurrencyListUnitPrice", pa.float64()),
        ("PricingQuantity", pa.float64()),
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
        ("Tags", TAGS),
        # The AWS columns of FOCUS_1_2_AWS (FOCUS 1.0's x_CostCategories and x_UsageType are gone):
        # the column lists of public FOCUS_1_2_AWS export definitions end "Tags, x_Discounts,
        # x_Operation, x_ServiceCode" (e.g. infracost's Terraform for its daily FOCUS export).
        ("x_Discounts", TAGS),
        ("x_Operation", pa.string()),
        ("x_ServiceCode", pa.string()),
    ]
)
_MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingCurrencyEffectiveCost")
_PER_HOUR = ("ConsumedQuantity", "PricingQuantity", "CommitmentDiscountQuantity")


def savings_plan_arn(account: str = AWS_PAYER) -> str:
    return f"arn:aws:savingsplans::{account}:savingsplan/3f1b7c1e-5a5d-4c3e-9b7a-000000000001"


def invoice_id(period: date, account: str = AWS_PAYER) -> str:
    return str(1_000_000_000 + zlib.crc32(f"{account}|{period:%Y-%m}".encode()) % 1_000_000_000)


def _micros(value: Decimal) -> int:
    return int((value / MICRO).to_integral_value())


def _sku_id(sku: str, region: str) -> str:
    return hashlib.sha1(f"{sku}|{region}".encode()).hexdigest()[:16].upper()


@dataclass
class Adjustment:
    """An extra line the provider adds to a delivered period (a late refund or credit)."""

    day: date
    billed: Decimal
    charge_category: str = "Credit"
    description: str = "Late credit"


@dataclass
class DataExportDouble:
    """Delivers the fleet's AWS bill as the export ``name`` under ``s3://bucket/prefix/``.

    ``granularity``: HOURLY (24 line items per resource and day), DAILY or MONTHLY (one line per
    resource for the month: what cost_daily cannot use). ``overwrite=False`` plays the "create
    new" delivery. ``adjustments`` (period -> lines) are delivered with that period."""

    fleet: Fleet
    s3: object  # a boto3 S3 client
    bucket: str
    prefix: str = "exports"
    name: str = "finops-focus"
    granularity: str = "HOURLY"
    overwrite: bool = True
    rows_per_file: int = 1_000_000
    adjustments: dict[date, list[Adjustment]] = field(default_factory=dict)
    deliveries: list[str] = field(default_factory=list)  # manifest keys, in delivery order

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{self.name}" if self.prefix else f"s3://{self.bucket}/{self.name}"

    def _root(self) -> str:
        return f"{self.prefix}/{self.name}" if self.prefix else self.name

    def manifest_key(self, period: date) -> str:
        return f"{self._root()}/metadata/BILLING_PERIOD={period:%Y-%m}/{self.name}-Manifest.json"

    def deliver(self, period: date, today: date, since: date | None = None) -> str:
        """Write the period's data files (days before ``today``: the open month is complete up to
        yesterday; none before ``since``, when the simulated bill begins), then its manifest.
        Returns the manifest's key."""
        with tempfile.TemporaryDirectory() as tmp:
            return self.publish(period, self.write_files(period, today, since, Path(tmp)))

    def write_files(self, period: date, today: date, since: date | None, directory: Path) -> list[Path]:
        """The period's data files, written locally (``<export-name>-<part>.snappy.parquet``)."""
        end = min((period + timedelta(days=32)).replace(day=1), today)
        closed = today >= (period + timedelta(days=32)).replace(day=1)
        files, writer, rows = [], None, 0
        for table in self._tables(max(period, since or period), period, end, closed):
            if writer is None or rows >= self.rows_per_file:
                if writer is not None:
                    writer.close()
                files.append(directory / f"{self.name}-{len(files) + 1:05d}.snappy.parquet")
                writer, rows = pq.ParquetWriter(files[-1], SCHEMA, compression="snappy"), 0
            writer.write_table(table, row_group_size=256 * 1024)
            rows += table.num_rows
        if writer is not None:
            writer.close()
        return files

    def publish(self, period: date, files: list[Path]) -> str:
        """Upload a period's data files, then (only then) its manifest listing them."""
        execution = str(uuid.uuid4())
        folder = f"{self._root()}/data/BILLING_PERIOD={period:%Y-%m}"
        if not self.overwrite:
            folder += f"/{execution}"
        else:
            for item in self.s3.list_objects_v2(Bucket=self.bucket, Prefix=folder + "/").get("Contents", []):
                self.s3.delete_object(Bucket=self.bucket, Key=item["Key"])
        uris = []
        for path in files:
            key = f"{folder}/{path.name}"
            self.s3.upload_file(str(path), self.bucket, key)
            uris.append(f"s3://{self.bucket}/{key}")
        manifest = {
            "executionId": execution,
            "exportArn": f"arn:aws:bcm-data-exports:us-east-1:{AWS_PAYER}:export/{self.name}-{execution[:8]}",
            "columns": [{"name": f.name, "type": _type_name(f.type)} for f in SCHEMA],
            "dataFiles": uris,
            "additionalOutputFiles": [],
        }
        key = self.manifest_key(period)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(manifest).encode())  # after the data
        self.deliveries.append(key)
        return key

    # -- the line items ---------------------------------------------------------------
    def _tables(self, first: date, period: date, end: date, closed: bool):
        by_id = self.fleet.by_id
        invoice = invoice_id(period) if closed else None
        if self.granularity == "MONTHLY":
            yield self._monthly(first, period, end, invoice)
            return
        day = first
        while day < end:
            lines = []
            covered_billed = covered_unused = 0
            for line in self.fleet.cost_lines("aws", day):
                resource = by_id.get(line.resource_id) if line.resource_id else None
                if resource is not None and resource.discount > 0:
                    used = _micros((line.effective_cost * Decimal("0.9")).quantize(MICRO))
                    covered_billed += _micros(line.billed_cost)
                    covered_unused += _micros(line.effective_cost) - used
                    lines.append(self._usage(line, resource, 0, used, committed=True))
                elif resource is not None:
                    billed = _micros(line.billed_cost)
                    lines.append(self._usage(line, resource, billed, _micros(line.effective_cost)))
                else:
                    lines.append(self._other(line))
            if covered_billed:
                lines.append(self._savings_plan(day, "Purchase", covered_billed, 0))
                lines.append(self._savings_plan(day, "Unused", 0, covered_unused))
            for adj in self.adjustments.get(period, []):
                if adj.day == day:
                    lines.append(self._adjustment(adj))
            yield self._expand(lines, day, period, invoice)
            day += timedelta(days=1)

    def _usage(self, line: CostLine, resource, billed: int, effective: int, committed: bool = False) -> dict:
        service, category, rtype, code, operation, zonal = _PRODUCTS[resource.resource_type]
        sku_id = _sku_id(line.sku, line.region)
        zone = f"{line.region}{'abc'[zlib.crc32(line.resource_id.encode()) % 3]}" if zonal else None
        row = {
            "AvailabilityZone": zone,
            "ChargeCategory": "Usage",
            "ChargeDescription": f"${resource.hourly_cost} per hour of {line.sku} in {REGION_NAMES[line.region]}",
            "ChargeFrequency": "Usage-Based",
            "ConsumedUnit": "Hrs",
            "ContractedUnitPrice": float(resource.hourly_cost),
            "ListUnitPrice": float(resource.hourly_cost),
            "PricingCurrencyContractedUnitPrice": float(resource.hourly_cost),
            "PricingCurrencyListUnitPrice": float(resource.hourly_cost),
            "PricingCategory": "Committed" if committed else "Standard",
            "PricingUnit": "Hours",
            "RegionId": line.region,
            "RegionName": REGION_NAMES[line.region],
            "ResourceId": resource_arn(resource.resource_type, line.resource_id, line.region, line.sub_account_id),
            "ResourceName": resource.name,
            "ResourceType": rtype,
            "ServiceCategory": category,
            "ServiceName": service,
            "SkuId": sku_id,
            "SkuPriceId": f"{sku_id}.JRTCKXETXF.6YS6EN2CT7",  # the OnDemand offer term code
            "SubAccountId": line.sub_account_id,
            "Tags": line.tags or None,
            "x_Operation": operation,
            "x_ServiceCode": code,
            "_billed": billed,
            "_effective": effective,
            "_list": _micros(line.billed_cost),
            "_quantity": line.usage_quantity,
            "_hourly": True,
        }
        if committed:
            row.update(self._commitment("Used"))
            row["_commitment"] = effective
        return row

    def _commitment(self, status: str) -> dict:
        return {
            "CommitmentDiscountCategory": "Spend",
            "CommitmentDiscountId": savings_plan_arn(),
            "CommitmentDiscountName": "compute-savings-plan",
            "CommitmentDiscountStatus": status,
            "CommitmentDiscountType": "Compute Savings Plans",
            "CommitmentDiscountUnit": "USD",
        }

    def _savings_plan(self, day: date, kind: str, billed: int, effective: int) -> dict:
        row = {
            "ChargeCategory": "Purchase" if kind == "Purchase" else "Usage",
            "ChargeDescription": "Savings Plan recurring fee"
            if kind == "Purchase"
            else "Unused Savings Plan commitment",
            "ChargeFrequency": "Recurring" if kind == "Purchase" else "Usage-Based",
            "PricingCategory": "Committed",
            "PricingUnit": "Hours",
            "ConsumedUnit": None if kind == "Purchase" else "Hrs",
            "ServiceCategory": "Compute",
            "ServiceName": SAVINGS_PLAN_SERVICE,
            "SubAccountId": AWS_PAYER,
            "x_ServiceCode": "ComputeSavingsPlans",
            "x_Operation": "None",
            "ResourceId": savings_plan_arn(),
            "_billed": billed,
            "_effective": effective,
            "_list": billed,
            "_quantity": 24.0,
            "_hourly": True,
        }
        if kind == "Unused":
            row.update(self._commitment("Unused"))
            row["_commitment"] = effective
        else:
            row.update({k: v for k, v in self._commitment("Used").items() if k != "CommitmentDiscountStatus"})
        return row

    def _other(self, line: CostLine) -> dict:
        """Tax (and any line without a resource): one line for the day, as the fleet bills it."""
        return {
            "ChargeCategory": line.charge_category,
            "ChargeDescription": line.service_name,
            "ChargeFrequency": "Usage-Based",
            "ServiceCategory": "Other",
            "ServiceName": line.service_name,
            "SubAccountId": line.sub_account_id,
            "_billed": _micros(line.billed_cost),
            "_effective": _micros(line.effective_cost),
            "_list": None,
            "_quantity": None,
            "_hourly": False,
        }

    def _adjustment(self, adj: Adjustment) -> dict:
        return {
            "ChargeCategory": adj.charge_category,
            "ChargeDescription": adj.description,
            "ChargeFrequency": "One-Time",
            "ServiceCategory": "Other",
            "ServiceName": "Amazon Elastic Compute Cloud",
            "SubAccountId": AWS_PAYER,
            "_billed": _micros(adj.billed),
            "_effective": _micros(adj.billed),
            "_list": None,
            "_quantity": None,
            "_hourly": False,
        }

    def _expand(self, lines: list[dict], day: date, period: date, invoice: str | None) -> pa.Table:
        """Each hourly line as 24 line items (its money split in whole micro-dollars), others as one."""
        n = len(lines)
        hours = 24 if self.granularity == "HOURLY" else 1
        reps = np.array([hours if line["_hourly"] else 1 for line in lines])
        index = np.repeat(np.arange(n), reps)
        slot = np.concatenate([np.arange(r) for r in reps]) if n else np.array([], dtype=int)
        parts = reps[index]

        def split(key: str) -> np.ndarray:
            values = np.array([line[key] if line[key] is not None else 0 for line in lines], dtype=np.int64)
            whole, extra = np.divmod(values[index], parts)
            return (whole + (slot < extra)) / 1e6

        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        span = np.where(parts == 24, 3600, 86400).astype("int64")
        starts = np.int64(start.timestamp() * 1000) + slot * span * 1000
        columns = {}
        for f in SCHEMA:
            if f.name in ("BilledCost", "ContractedCost"):
                columns[f.name] = pa.array(split("_billed"), f.type)
            elif f.name in ("EffectiveCost", "PricingCurrencyEffectiveCost"):
                columns[f.name] = pa.array(split("_effective"), f.type)
            elif f.name == "ListCost":
                has = np.array([line["_list"] is not None for line in lines], dtype=bool)[index]
                listed = np.array([line["_list"] or 0 for line in lines], dtype=np.int64)
                whole, extra = np.divmod(listed[index], parts)
                columns[f.name] = pa.array((whole + (slot < extra)) / 1e6, f.type, mask=~has)
            elif f.name == "SubAccountName":
                columns[f.name] = pa.array([ACCOUNT_NAMES.get(line.get("SubAccountId")) for line in lines]).take(index)
            elif f.name in _PER_HOUR:
                key = "_commitment" if f.name == "CommitmentDiscountQuantity" else "_quantity"
                known = np.array(
                    [
                        line.get(key) is not None
                        and (f.name != "ConsumedQuantity" or line["ChargeCategory"] == "Usage")
                        for line in lines
                    ],
                    dtype=bool,
                )[index]
                values = np.array([line.get(key) or 0 for line in lines], dtype=float)[index] / parts
                if key == "_commitment":
                    values = values / 1e6
                columns[f.name] = pa.array(values, f.type, mask=~known)
            elif f.name == "ChargePeriodStart":
                columns[f.name] = pa.array(starts, MS)
            elif f.name == "ChargePeriodEnd":
                columns[f.name] = pa.array(starts + span * 1000, MS)
            elif f.name == "BillingPeriodStart":
                columns[f.name] = pa.array(np.full(len(index), _ms(period)), MS)
            elif f.name == "BillingPeriodEnd":
                columns[f.name] = pa.array(np.full(len(index), _ms((period + timedelta(days=32)).replace(day=1))), MS)
            else:
                value = _constant(f.name, invoice)
                if value is not _NOT_CONSTANT:
                    columns[f.name] = pa.array([value] * n, f.type).take(index) if n else pa.array([], f.type)
                else:
                    columns[f.name] = pa.array([line.get(f.name) for line in lines], f.type).take(index)
        return pa.table(columns, schema=SCHEMA)

    def _monthly(self, first: date, period: date, end: date, invoice: str | None) -> pa.Table:
        """One line per resource for the whole period (MONTHLY time granularity)."""
        totals: dict[str, list] = {}
        day = first
        while day < end:
            for line in self.fleet.cost_lines("aws", day):
                if line.resource_id:
                    entry = totals.setdefault(line.resource_id, [line, 0, 0])
                    entry[1] += _micros(line.billed_cost)
                    entry[2] += _micros(line.effective_cost)
            day += timedelta(days=1)
        by_id = self.fleet.by_id
        lines = [self._usage(line, by_id[rid], billed, eff) for rid, (line, billed, eff) in sorted(totals.items())]
        for line in lines:
            line["_hourly"] = False
        table = self._expand(lines, period, period, invoice)
        month_end = _ms((period + timedelta(days=32)).replace(day=1))
        return table.set_column(
            SCHEMA.get_field_index("ChargePeriodEnd"), "ChargePeriodEnd", pa.array([month_end] * len(lines), MS)
        )


_NOT_CONSTANT = object()


def _constant(name: str, invoice: str | None):
    return {
        "BillingAccountId": AWS_PAYER,
        "BillingAccountName": ACCOUNT_NAMES[AWS_PAYER],
        "BillingAccountType": "Billing Account",
        "BillingCurrency": "USD",
        "InvoiceId": invoice,
        "InvoiceIssuerName": AWS_INC,
        "PricingCurrency": "USD",
        "ProviderName": "AWS",
        "PublisherName": AWS_INC,
        "SubAccountType": "AWS Account",
    }.get(name, _NOT_CONSTANT)


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def _type_name(type_: pa.DataType) -> str:
    if pa.types.is_map(type_):
        return "map<string,string>"
    if pa.types.is_timestamp(type_):
        return "timestamp"
    return {"double": "double", "string": "string"}[str(type_)]


def periods_of(start: date, end: date) -> list[date]:
    """The billing periods (calendar months) that [start, end) touches."""
    found, period = [], start.replace(day=1)
    while period < end:
        found.append(period)
        period = (period + timedelta(days=32)).replace(day=1)
    return found
