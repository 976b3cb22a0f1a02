"""The GCP doubles on 127.0.0.1 and an adapter whose SDK clients point at them."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import grpc
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import (
    MetricServiceGrpcTransport,
)

from finops_pipeline.clouds.gcp.source import GcpSource
from finops_pipeline.settings import get_settings
from finops_pipeline.simulator.gcp import run_gcp_doubles, serve_gcp

START = date(2026, 3, 1)
END = date(2026, 3, 5)  # the doubles serve [START, END)
DAY = date(2026, 3, 2)


@pytest.fixture
def doubles(fleet):
    with run_gcp_doubles(fleet, START, END) as running:
        yield running


def make_adapter(doubles, **overrides) -> GcpSource:
    """An adapter built like production, but with clients on the doubles and quick retries."""
    # Quota logs of this adapter's pacing in a directory of its own.
    settings = get_settings(doubles.environment()).with_overrides(
        **{"data_dir": Path(tempfile.mkdtemp(prefix="finops-gcp-")), **overrides}
    )
    monitoring = monitoring_v3.MetricServiceClient(
        transport=MetricServiceGrpcTransport(channel=grpc.insecure_channel(doubles.monitoring_endpoint))
    )
    bq = bigquery.Client(
        project=settings.gcp_billing_project_id,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": doubles.bigquery_endpoint},
    )
    return GcpSource(settings, monitoring, bq, retry_initial_delay=0.01)


@pytest.fixture
def gcp_served(fleet):
    """The doubles in their own threads, serving [START, END), as the variables a process reads."""
    with serve_gcp(fleet, START, END) as env:
        yield env


@pytest.fixture
def adapter(doubles):
    return make_adapter(doubles)
