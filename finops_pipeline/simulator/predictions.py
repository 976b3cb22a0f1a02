"""IaC cost predictions for the simulated fleet, with deliberate misses, for the demo and tests.

USD resources go into an Infracost JSON (resource-level, matched to billing by the
``finops_id`` tag); the EUR subscription's resources go into the documented CSV at service
level. Misses on purpose: AWS RDS is under-predicted (actual comes in over), Azure Virtual
Machines are over-predicted (actual comes in under), and AWS Lambda has no prediction.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from finops_pipeline.simulator.fleet import Fleet

HOURS_PER_MONTH = Decimal(730)

# IaC resource type per simulated type (what a Terraform plan would declare).
IAC_TYPES = {
    "ec2": "aws_instance",
    "rds": "aws_db_instance",
    "lambda": "aws_lambda_function",
    "dynamodb": "aws_dynamodb_table",
    "s3": "aws_s3_bucket",
    "elb": "aws_elb",
    "alb": "aws_lb",
    "gce_instance": "google_compute_instance",
    "cloudsql_database": "google_sql_database_instance",
    "gcs_bucket": "google_storage_bucket",
    "k8s_container": "google_container_node_pool",
    "virtual_machine": "azurerm_linux_virtual_machine",
    "sql_database": "azurerm_mssql_database",
    "storage_account": "azurerm_storage_account",
    "app_service": "azurerm_linux_web_app",
}

# Deliberate misses: predicted = true run-rate x factor.
MISS_FACTORS = {("aws", "rds"): Decimal("0.6"), ("azure", "virtual_machine"): Decimal("1.5")}
UNPREDICTED = {("aws", "lambda")}


def predicted_monthly(fleet_resource) -> Decimal:
    """The simulated estimate for one resource: list hourly price x 730, times its miss factor."""
    factor = MISS_FACTORS.get((fleet_resource.provider, fleet_resource.resource_type), Decimal(1))
    return (fleet_resource.hourly_cost * HOURS_PER_MONTH * factor).quantize(Decimal("0.0001"))


def write_predictions(fleet: Fleet, directory: Path, month: date) -> list[Path]:
    """Write ``infracost-YYYY-MM.json`` and ``predictions-YYYY-MM.csv`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tag = f"{month:%Y-%m}"
    resources, by_service = [], defaultdict(Decimal)
    for r in fleet.resources:
        if (r.provider, r.resource_type) in UNPREDICTED:
            continue
        monthly = predicted_monthly(r)
        if r.currency != "USD":
            by_service[(r.provider, r.service_name, r.currency)] += monthly
            continue
        resources.append(
            {
                "name": f"{IAC_TYPES[r.resource_type]}.{r.name.replace('-', '_')}",
                "resourceType": IAC_TYPES[r.resource_type],
                "tags": dict(r.tags),
                "metadata": {},
                "hourlyCost": str((monthly / HOURS_PER_MONTH).quantize(Decimal("0.000001"))),
                "monthlyCost": str(monthly),
                "costComponents": [
                    {
                        "name": f"Instance usage ({r.sku})",
                        "unit": "hours",
                        "hourlyQuantity": "1",
                        "monthlyQuantity": "730",
                        "price": str(r.hourly_cost),
                        "hourlyCost": str(r.hourly_cost),
                        "monthlyCost": str(monthly),
                    }
                ],
            }
        )
    document = {
        "version": "0.2",
        "currency": "USD",
        "timeGenerated": datetime(month.year, month.month, 1, tzinfo=timezone.utc).isoformat(),
        "projects": [
            {
                "name": "fleet",
                "metadata": {"path": "infra/"},
                "breakdown": {
                    "resources": resources,
                    "totalMonthlyCost": str(sum((Decimal(x["monthlyCost"]) for x in resources), Decimal(0))),
                },
            }
        ],
    }
    json_path = directory / f"infracost-{tag}.json"
    json_path.write_text(json.dumps(document, indent=2))
    csv_path = directory / f"predictions-{tag}.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["provider", "service", "resource_id", "month", "predicted_monthly_cost", "currency"])
        for (provider, service, currency), monthly in sorted(by_service.items()):
            writer.writerow([provider, service, "", tag, str(monthly), currency])
    return [json_path, csv_path]
