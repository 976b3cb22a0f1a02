"""What the GCP source knows about Google Cloud, as data: Cloud Monitoring metric types per
resource type, prices, and the billing export's cost types."""

from __future__ import annotations

from decimal import Decimal

from finops_pipeline.clouds.base import MetricSpec

# Cloud Monitoring: $0.50 per million time series returned by read calls (free tier ignored).
MONITORING_PRICE_PER_SERIES = Decimal("0.50") / Decimal(1_000_000)
# BigQuery on-demand analysis: $6.25 per TiB billed.
BIGQUERY_PRICE_PER_TIB = Decimal("6.25")
HOUR = 3600

# Client-side pacing (finops_pipeline/clouds/pacing.py), as (calls, seconds) limits.
# Cloud Monitoring quotas (https://cloud.google.com/monitoring/quotas): time series read
# requests (ListTimeSeries), 6,000 per minute per consumer project. Spread as 100 per second,
# so a backfill's burst never spends a minute's quota in its first seconds.
MONITORING_READS_QUOTA = [(100, 1.0)]
# BigQuery quotas (https://cloud.google.com/bigquery/quotas): API requests per second per user
# per method (jobs.insert, jobs.get, jobs.getQueryResults, ...): 100.
BIGQUERY_METHOD_QUOTA = [(100, 1.0)]
SOURCE = "bigquery:billing_export"  # GCP_COST_SOURCE=api
EXPORT_SOURCE = "bigquery:detailed_export"  # GCP_COST_SOURCE=export: the detailed export's FOCUS columns

RESOURCE_TYPE_ALIASES = {"gke_container": "k8s_container"}

# FOCUS RegionName per region id, as Google's FOCUS BigQuery view for the billing export lists
# them (its region_names table; the city names of "Cloud locations").
REGION_NAMES = {
    "africa-south1": "Johannesburg",
    "asia-east1": "Taiwan",
    "asia-east2": "Hong Kong",
    "asia-northeast1": "Tokyo",
    "asia-northeast2": "Osaka",
    "asia-northeast3": "Seoul",
    "asia-south1": "Mumbai",
    "asia-south2": "Delhi",
    "asia-southeast1": "Singapore",
    "asia-southeast2": "Jakarta",
    "australia-southeast1": "Sydney",
    "australia-southeast2": "Melbourne",
    "europe-central2": "Warsaw",
    "europe-north1": "Finland",
    "europe-southwest1": "Madrid",
    "europe-west1": "Belgium",
    "europe-west2": "London",
    "europe-west3": "Frankfurt",
    "europe-west4": "Netherlands",
    "europe-west6": "Zurich",
    "europe-west8": "Milan",
    "europe-west9": "Paris",
    "europe-west10": "Berlin",
    "europe-west12": "Turin",
    "me-central1": "Doha",
    "me-central2": "Dammam",
    "me-west1": "Tel Aviv",
    "northamerica-northeast1": "Montréal",
    "northamerica-northeast2": "Toronto",
    "southamerica-east1": "São Paulo",
    "southamerica-west1": "Santiago",
    "us-central1": "Iowa",
    "us-east1": "South Carolina",
    "us-east4": "Northern Virginia",
    "us-east5": "Columbus",
    "us-south1": "Dallas",
    "us-west1": "Oregon",
    "us-west2": "Los Angeles",
    "us-west3": "Salt Lake City",
    "us-west4": "Las Vegas",
}

CHARGE_CATEGORIES = {"regular": "Usage", "tax": "Tax", "adjustment": "Adjustment", "rounding_error": "Adjustment"}

METRICS: dict[str, list[MetricSpec]] = {
    "gce_instance": [
        MetricSpec("compute.googleapis.com/instance/cpu/utilization", "cpu_utilization_pct", "gauge", "Percent", 100.0),
        MetricSpec(
            "compute.googleapis.com/instance/network/received_bytes_count", "network_in_bytes", "counter", "Bytes"
        ),
        MetricSpec("compute.googleapis.com/instance/network/sent_bytes_count", "network_out_bytes", "counter", "Bytes"),
        MetricSpec("compute.googleapis.com/instance/disk/read_bytes_count", "disk_read_bytes", "counter", "Bytes"),
        MetricSpec("compute.googleapis.com/instance/disk/write_bytes_count", "disk_write_bytes", "counter", "Bytes"),
    ],
    "cloudsql_database": [
        MetricSpec(
            "cloudsql.googleapis.com/database/cpu/utilization", "cpu_utilization_pct", "gauge", "Percent", 100.0
        ),
        MetricSpec(
            "cloudsql.googleapis.com/database/memory/utilization", "memory_utilization_pct", "gauge", "Percent", 100.0
        ),
        # Each engine publishes one of these two (Cloud SQL metrics list): network/connections
        # for MySQL and SQL Server only, postgresql/num_backends for PostgreSQL.
        MetricSpec("cloudsql.googleapis.com/database/network/connections", "connections", "gauge", "Count"),
        MetricSpec("cloudsql.googleapis.com/database/postgresql/num_backends", "connections", "gauge", "Count"),
    ],
    "gcs_bucket": [
        MetricSpec("storage.googleapis.com/storage/total_bytes", "storage_bytes", "gauge", "Bytes"),
        MetricSpec("storage.googleapis.com/api/request_count", "requests", "counter", "Count"),
    ],
    "k8s_container": [
        MetricSpec("kubernetes.io/container/cpu/core_usage_time", "cpu_core_seconds", "counter", "Seconds"),
        MetricSpec("kubernetes.io/container/memory/used_bytes", "memory_used_bytes", "gauge", "Bytes"),
    ],
}
