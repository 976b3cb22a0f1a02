"""GCP doubles for the demo and the tests: Cloud Monitoring (gRPC) and BigQuery (REST).

``serve_gcp(fleet, start, end)`` starts both on free 127.0.0.1 ports, serving the
fleet's days in [start, end), and yields the environment variables that make our
adapter, in this process or another one, talk to them.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Iterator

from finops_pipeline.simulator.fleet import GCP_BILLING_ACCOUNT, GCP_PROJECTS, Fleet
from finops_pipeline.simulator.gcp_bigquery import BigQueryDouble, start_bigquery_server
from finops_pipeline.simulator.gcp_monitoring import (
    MetricServiceDouble,
    start_monitoring_server,
)

BILLING_PROJECT = GCP_PROJECTS[0]
BILLING_DATASET = "billing_export"


@dataclass
class GcpDoubles:
    """The running doubles (tests inspect their received requests) and their addresses."""

    monitoring: MetricServiceDouble
    bigquery: BigQueryDouble
    monitoring_endpoint: str  # host:port, insecure gRPC
    bigquery_endpoint: str  # http://host:port

    def environment(self, cost_source: str = "api") -> dict[str, str]:
        """Variables that point the GCP adapter at these doubles and enable the cloud; ``cost_source``
        is GCP_COST_SOURCE (``export``: the detailed export's FOCUS columns)."""
        return {
            "GCP_COST_SOURCE": cost_source,
            "GCP_USAGE_ENABLED": "true",
            "GCP_PROJECT_ID": BILLING_PROJECT,
            "GCP_MONITORING_PROJECTS": ",".join(GCP_PROJECTS),
            "GCP_BILLING_ACCOUNT_ID": GCP_BILLING_ACCOUNT,
            "GCP_BILLING_PROJECT_ID": BILLING_PROJECT,
            "GCP_BILLING_DATASET": BILLING_DATASET,
            "GCP_BILLING_DETAILED": "true",
            "GCP_MONITORING_ENDPOINT": self.monitoring_endpoint,
            "GCP_BIGQUERY_ENDPOINT": self.bigquery_endpoint,
        }


@contextmanager
def run_gcp_doubles(fleet: Fleet, start: date, end: date, max_page_size: int = 1000) -> Iterator[GcpDoubles]:
    """Start both doubles for the fleet's days in [start, end); stop them on exit."""
    monitoring = MetricServiceDouble(fleet, start, end, max_page_size=max_page_size)
    bigquery = BigQueryDouble(BILLING_PROJECT, BILLING_DATASET, GCP_BILLING_ACCOUNT)
    bigquery.load_fleet(fleet, start, end)
    grpc_server, grpc_port = start_monitoring_server(monitoring)
    http_server = start_bigquery_server(bigquery)
    try:
        yield GcpDoubles(
            monitoring, bigquery, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_server.server_address[1]}"
        )
    finally:
        http_server.shutdown()
        http_server.server_close()
        grpc_server.stop(grace=None)


@contextmanager
def serve_gcp(fleet: Fleet, start: date, end: date) -> Iterator[dict[str, str]]:
    """Run the GCP doubles for [start, end) and yield the environment that points at them, cost from
    the detailed export (GCP_COST_SOURCE=export) as the demo reads it."""
    with run_gcp_doubles(fleet, start, end) as doubles:
        yield doubles.environment(cost_source="export")
