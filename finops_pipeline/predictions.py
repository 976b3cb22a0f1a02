"""Read IaC cost predictions (Infracost JSON, or the documented CSV) into cost_predictions rows.

Infracost (``infracost breakdown --format json``): ``projects[].breakdown.resources[]``, each
with ``name``, ``resourceType``, ``monthlyCost``/``hourlyCost`` (decimal strings or null),
``tags`` and nested ``subresources``. A resource's own cost already includes its
subresources; subresources are summed only when the resource itself has no cost. A month
is 730 hours. The month predicted is a ``YYYY-MM`` in the file name, else the month of the
file's ``timeGenerated``. Resources without any cost (usage-based, unpriced) are skipped.

CSV (header required): ``provider, service, resource_id (optional), month, predicted_monthly_cost,
currency``; ``month`` is ``YYYY-MM`` (or the first day, ``YYYY-MM-01``).

Every file is validated before anything is returned: a malformed file (a wrong JSON shape,
a currency that is not ISO 4217, a cost out of the warehouse's range) raises
PredictionFileError naming the file and the line or field. Two files predicting the same
month and service (or resource) is an error naming both, so nothing is counted twice.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd

from finops_pipeline.clouds import PROVIDERS
from finops_pipeline.warehouse.catalog import SQL_DIR
from finops_pipeline.warehouse.schemas import MONEY

HOURS_PER_MONTH = Decimal(730)
CSV_COLUMNS = ("provider", "service", "resource_id", "month", "predicted_monthly_cost", "currency")
_PREFIXES = {"aws_": "aws", "google_": "gcp", "azurerm_": "azure"}
_MONTH_IN_NAME = re.compile(r"(\d{4})-(\d{2})(?!\d)")
_MAX_COST_DIGITS = MONEY.precision - MONEY.scale  # digits before the decimal point the lake stores


class PredictionFileError(ValueError):
    """A predictions file cannot be read; the message names the file and where."""


@dataclass(frozen=True)
class ServiceMapping:
    provider: str
    service_name: str


def load_service_map(path: Path = SQL_DIR / "seeds" / "iac_service_map.csv") -> dict[str, ServiceMapping]:
    """IaC resource type -> (provider, billing service name), from the mapping seed."""
    with open(path, newline="") as fh:
        return {
            row["iac_resource_type"]: ServiceMapping(row["provider"], row["service_name"]) for row in csv.DictReader(fh)
        }


def _decimal(text: object, where: str) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise PredictionFileError(f"{where}: {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise PredictionFileError(f"{where}: {text!r} is not a finite number")
    if value < 0:
        raise PredictionFileError(f"{where}: {text!r} is negative; a predicted cost must be >= 0")
    return _in_range(value, text, where)


def _in_range(value: Decimal, text: object, where: str) -> Decimal:
    if value and value.adjusted() >= _MAX_COST_DIGITS:
        raise PredictionFileError(
            f"{where}: {text!r} is out of range; a monthly cost has at most "
            f"{_MAX_COST_DIGITS} digits before the decimal point"
        )
    return value


def _currency(text: object, where: str) -> str:
    """An ISO 4217 code, upper-cased (``eur`` -> ``EUR``)."""
    currency = str(text or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise PredictionFileError(f"{where}: {text!r} is not an ISO 4217 code")
    return currency


def _month(text: str, where: str) -> date:
    value = str(text).strip()
    match = re.fullmatch(r"(\d{4})-(\d{2})(-01)?", value)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise PredictionFileError(f"{where}: {text!r} is not a month; use YYYY-MM, e.g. 2026-03")
    return date(int(match.group(1)), int(match.group(2)), 1)


def _infracost_month(path: Path, document: dict) -> date:
    found = _MONTH_IN_NAME.search(path.name)
    if found and 1 <= int(found.group(2)) <= 12:
        return date(int(found.group(1)), int(found.group(2)), 1)
    generated = document.get("timeGenerated")
    if isinstance(generated, str):
        try:
            stamp = datetime.fromisoformat(generated.replace("Z", "+00:00"))
            stamp = stamp.astimezone(timezone.utc) if stamp.tzinfo else stamp
            return date(stamp.year, stamp.month, 1)
        except ValueError:
            raise PredictionFileError(f"{path}: timeGenerated {generated!r} is not an ISO timestamp") from None
    raise PredictionFileError(
        f"{path}: no month to apply the estimate to; put YYYY-MM in the file name "
        "(e.g. infracost-2026-03.json) or keep Infracost's timeGenerated field"
    )


def _resource_cost(resource: dict, where: str) -> Decimal | None:
    """Monthly cost of a resource: its own monthlyCost, else hourlyCost x 730, else its subresources."""
    if not isinstance(resource, dict):
        raise PredictionFileError(f"{where}: expected an object, got {type(resource).__name__}")
    if resource.get("monthlyCost") is not None:
        return _decimal(resource["monthlyCost"], f"{where}.monthlyCost")
    if resource.get("hourlyCost") is not None:
        hourly = resource["hourlyCost"]
        return _in_range(_decimal(hourly, f"{where}.hourlyCost") * HOURS_PER_MONTH, hourly, f"{where}.hourlyCost")
    subresources = resource.get("subresources") or []
    if not isinstance(subresources, list):
        raise PredictionFileError(f"{where}.subresources: expected a list")
    costs = [_resource_cost(sub, f"{where}.subresources[{i}]") for i, sub in enumerate(subresources)]
    known = [c for c in costs if c is not None]
    return sum(known, Decimal(0)) if known else None


def read_infracost(
    path: Path, tag_key: str, service_map: dict[str, ServiceMapping], ingested_at: datetime
) -> list[dict]:
    """cost_predictions rows from one ``infracost breakdown --format json`` file."""
    try:
        document = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise PredictionFileError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("projects"), list):
        raise PredictionFileError(f"{path}: field 'projects' is missing; expected Infracost breakdown JSON")
    month = _infracost_month(path, document)
    currency = _currency(document.get("currency") or "USD", f"{path}: field 'currency'")
    rows = []
    for p, project in enumerate(document["projects"]):
        if not isinstance(project, dict):
            raise PredictionFileError(f"{path}: projects[{p}]: expected an object, got {type(project).__name__}")
        breakdown = project.get("breakdown") or {}
        if not isinstance(breakdown, dict):
            raise PredictionFileError(
                f"{path}: projects[{p}].breakdown: expected an object, got {type(breakdown).__name__}"
            )
        resources = breakdown.get("resources")
        where_project = f"{path}: projects[{p}].breakdown.resources"
        if not isinstance(resources, list):
            raise PredictionFileError(f"{where_project}: missing or not a list")
        for i, resource in enumerate(resources):
            where = f"{where_project}[{i}]"
            cost = _resource_cost(resource, where)
            rtype = resource.get("resourceType")
            if not rtype or not isinstance(rtype, str):
                raise PredictionFileError(f"{where}.resourceType: missing")
            if cost is None:
                continue  # usage-based or unpriced: Infracost has no estimate to compare
            tags = resource.get("tags") or {}
            if not isinstance(tags, dict):
                raise PredictionFileError(f"{where}.tags: expected an object of key: value")
            mapping = service_map.get(rtype)
            provider = (
                mapping.provider
                if mapping
                else next((prov for prefix, prov in _PREFIXES.items() if rtype.startswith(prefix)), None)
            )
            if provider is None:
                raise PredictionFileError(f"{where}.resourceType: {rtype!r} is not an AWS, Google or Azure type")
            rows.append(
                {
                    "provider": provider,
                    "month": month,
                    "service_name": mapping.service_name if mapping else None,
                    "resource_id": None,
                    "resource_name": resource.get("name"),
                    "resource_type": rtype,
                    "match_value": tags.get(tag_key),
                    "predicted_monthly_cost": cost,
                    "billing_currency": currency,
                    "tags": {str(k): str(v) for k, v in tags.items()} or None,
                    "source_file": str(path),
                    "source_line": where.split(": ", 1)[1],
                    "source_format": "infracost_json",
                    "ingested_at": ingested_at,
                }
            )
    return rows


def read_predictions_csv(path: Path, ingested_at: datetime) -> list[dict]:
    """cost_predictions rows from one CSV in the documented format."""
    rows = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in CSV_COLUMNS if c != "resource_id" and c not in header]
        if missing:
            raise PredictionFileError(f"{path}: line 1: missing column(s) {missing}; expected {list(CSV_COLUMNS)}")
        reader.fieldnames = header
        for line, row in enumerate(reader, start=2):
            where = f"{path}: line {line}"
            if None in row:
                raise PredictionFileError(f"{where}: more fields than the header has")
            provider = (row.get("provider") or "").strip().lower()
            if provider not in PROVIDERS:
                raise PredictionFileError(
                    f"{where}, field 'provider': {row.get('provider')!r} is not one of {PROVIDERS}"
                )
            service = (row.get("service") or "").strip()
            if not service:
                raise PredictionFileError(f"{where}, field 'service': empty; use the billing service name")
            currency = _currency(row.get("currency"), f"{where}, field 'currency'")
            resource_id = (row.get("resource_id") or "").strip() or None
            rows.append(
                {
                    "provider": provider,
                    "month": _month(row.get("month") or "", f"{where}, field 'month'"),
                    "service_name": service,
                    "resource_id": resource_id,
                    "resource_name": None,
                    "resource_type": None,
                    "match_value": resource_id,
                    "predicted_monthly_cost": _decimal(
                        row.get("predicted_monthly_cost"), f"{where}, field 'predicted_monthly_cost'"
                    ),
                    "billing_currency": currency,
                    "tags": None,
                    "source_file": str(path),
                    "source_line": str(line),
                    "source_format": "csv",
                    "ingested_at": ingested_at,
                }
            )
    return rows


def prediction_files(directory: Path) -> list[Path]:
    """The ``*.json`` and ``*.csv`` files of a directory (none when it does not exist)."""
    if not Path(directory).is_dir():
        return []
    return sorted(p for p in Path(directory).iterdir() if p.is_file() and p.suffix.lower() in (".json", ".csv"))


def _check_no_repeats(rows: list[dict]) -> None:
    """Two files predicting the same month and service (or resource) would count it twice."""
    first: dict[tuple, dict] = {}
    for row in rows:
        key = (
            row["provider"],
            row["month"],
            row["service_name"],
            row["resource_id"],
            row["resource_type"],
            row["resource_name"],
        )
        seen = first.setdefault(key, row)
        if seen["source_file"] != row["source_file"]:
            what = " ".join(
                str(v)
                for v in (row["provider"], row["service_name"], row["resource_id"], row["resource_name"])
                if v is not None
            )
            line = "line " + row["source_line"] if row["source_format"] == "csv" else row["source_line"]
            seen_line = "line " + seen["source_line"] if seen["source_format"] == "csv" else seen["source_line"]
            raise PredictionFileError(
                f"{row['source_file']}: {line} predicts {what} for {row['month']:%Y-%m}, as {seen['source_file']}: "
                f"{seen_line} already does; keep each month and service (or resource) in one file"
            )


def read_predictions(
    directory: Path,
    tag_key: str,
    service_map: dict[str, ServiceMapping] | None = None,
    ingested_at: datetime | None = None,
) -> pd.DataFrame:
    """Every prediction in ``directory`` (``*.json`` Infracost, ``*.csv``), all files validated."""
    service_map = load_service_map() if service_map is None else service_map
    ingested_at = ingested_at or datetime.now(timezone.utc)
    rows: list[dict] = []
    for path in prediction_files(directory):
        if path.suffix.lower() == ".json":
            rows.extend(read_infracost(path, tag_key, service_map, ingested_at))
        else:
            rows.extend(read_predictions_csv(path, ingested_at))
    _check_no_repeats(rows)
    return pd.DataFrame(
        rows,
        columns=[
            "provider",
            "month",
            "service_name",
            "resource_id",
            "resource_name",
            "resource_type",
            "match_value",
            "predicted_monthly_cost",
            "billing_currency",
            "tags",
            "source_file",
            "source_line",
            "source_format",
            "ingested_at",
        ],
    )
