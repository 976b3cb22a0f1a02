"""The HTTPS Azure double's quota headers: true counts of the documented quotas, per answer."""

from __future__ import annotations

from datetime import date

import pytest
import requests

from finops_pipeline.clouds.azure.source import _remaining
from finops_pipeline.simulator.azure import CLIENT_ID, TENANT_ID, AzureDouble
from finops_pipeline.simulator.fleet import AZURE_SUBSCRIPTIONS

QUERY = {
    "type": "ActualCost",
    "timeframe": "Custom",
    "timePeriod": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T23:59:59Z"},
    "dataset": {"granularity": "Daily", "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}}},
}


class Clock:
    now = 1_800_000_003.0  # 3 s into a 10-second window, 3 s into a minute

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def double(fleet):
    with AzureDouble(fleet, date(2026, 1, 1), date(2026, 1, 3)) as double:
        double.quotas.clock = Clock()
        session = requests.Session()
        session.trust_env = False  # the environment's CA bundle would replace ours
        session.verify = str(double.ca_bundle)
        token = session.post(
            f"{double.url}/{TENANT_ID}/oauth2/v2.0/token",
            data={"client_id": CLIENT_ID, "client_secret": double.client_secret, "grant_type": "client_credentials"},
        ).json()["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        double.session = session
        yield double


def _query(double):
    url = f"{double.url}/subscriptions/{AZURE_SUBSCRIPTIONS[0]}/providers/Microsoft.CostManagement/query"
    return double.session.post(url, params={"api-version": "2023-11-01"}, json=QUERY)


def test_cost_management_qpu_headers_count_down_and_reset_with_each_window(double):
    # manage-automation, "QPU quotas" (12 per 10 s, 60 per min, 600 per hour) and "Response headers"
    answers = [_query(double) for _ in range(12)]
    assert [a.status_code for a in answers] == [200] * 12
    remaining = [a.headers["x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"] for a in answers]
    assert remaining[0] == "QueriesPer10Sec:11,QueriesPerMin:59,QueriesPerHour:599"
    assert remaining[-1] == "QueriesPer10Sec:0,QueriesPerMin:48,QueriesPerHour:588"
    assert {a.headers["x-ms-ratelimit-microsoft.costmanagement-qpu-consumed"] for a in answers} == {"1"}
    assert [_remaining(r) for r in remaining] == list(range(11, -1, -1))

    refused = _query(double)  # the 13th in the window: 429, retry when the window resets
    assert refused.status_code == 429
    assert refused.headers["x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"] == "7"
    assert refused.headers["x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"] == (
        "QueriesPer10Sec:0,QueriesPerMin:48,QueriesPerHour:588"
    )

    double.quotas.clock.now += 7.0  # the next 10-second window: its count is back, the minute's is not
    again = _query(double)
    assert again.status_code == 200
    assert again.headers["x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"] == (
        "QueriesPer10Sec:11,QueriesPerMin:47,QueriesPerHour:587"
    )


def test_arm_reads_report_the_tokens_left_in_the_subscriptions_bucket(double):
    # request-limits-and-throttling: a bucket of 250 reads refilled at 25 per second
    url = f"{double.url}/subscriptions/{AZURE_SUBSCRIPTIONS[0]}"
    first = double.session.get(url, params={"api-version": "2022-12-01"})
    assert first.status_code == 200 and first.headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
    for _ in range(249):
        double.session.get(url, params={"api-version": "2022-12-01"})
    refused = double.session.get(url, params={"api-version": "2022-12-01"})
    assert refused.status_code == 429
    assert (
        refused.headers["Retry-After"] == "1" and refused.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    )
    double.quotas.clock.now += 2.0  # 50 tokens back
    again = double.session.get(url, params={"api-version": "2022-12-01"})
    assert again.headers["x-ms-ratelimit-remaining-subscription-reads"] == "49"
