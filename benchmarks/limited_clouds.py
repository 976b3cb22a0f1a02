"""GCP and Azure doubles with network latency and the providers' documented quotas (benchmark 5).

The simulator's doubles (``simulator/gcp_monitoring.py``, ``gcp_bigquery.py``,
``azure.py``) take an optional ``gate`` that runs before each request is answered; the
gates built here sleep ``latency`` seconds (a network round trip) and spend from
:class:`QuotaWindows` shared by every process of the backfill, answering a spent quota the
way the provider does. The limits, as documented (looked up 2026-11):

- **Cloud Monitoring** (https://cloud.google.com/monitoring/quotas, per-project quotas shown
  in the console): time series read requests (``ListTimeSeries``) 6,000 per minute. Charged
  to one consumer project (the credentials' project: googleapis/google-cloud-java#2576 shows
  reads of several projects throttled on one consumer), so one bucket for all projects.
  Enforced here as 100 per 1-second window, the stricter reading of 6,000/min, so the ideal
  bound is a true lower bound. Refusal: gRPC ``RESOURCE_EXHAUSTED`` "Quota exceeded for quota
  metric 'Time series queries'...", retried by the adapter's google-api-core Retry.
- **BigQuery** (https://cloud.google.com/bigquery/quotas): API requests per second per user
  per method: 100; concurrent interactive queries: 100 per project (a cost run sends its
  queries one at a time, so that one cannot bind). Refusal: HTTP 403 ``rateLimitExceeded``,
  retried by google-cloud-bigquery's DEFAULT_RETRY.
- **Azure Cost Management** (https://learn.microsoft.com/azure/cost-management-billing/costs/
  manage-automation, "QPU quotas"): per tenant, 12 QPU per 10 seconds, 60 QPU per minute,
  600 QPU per hour; one QPU per month of data queried (every query here spans <= 31 days, so
  one QPU per request, ``nextLink`` pages included). Refusal: HTTP 429 with
  ``x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after`` (seconds until the spent
  window resets), which the adapter honours. Every answer carries ``...-qpu-remaining``, what
  is left of each window (same page, "Response headers"), and a success ``...-qpu-consumed``.
- **Azure Resource Manager reads**, which Azure Monitor metric calls are
  (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling):
  token bucket of 250 reads refilled at 25 per second, per subscription. Enforced here as
  25 per 1-second window (no 250 burst: stricter). Refusal: HTTP 429 with ``Retry-After``;
  every answer carries ``x-ms-ratelimit-remaining-subscription-reads`` (what is left).

Quotas are fixed windows aligned on the clock (``time.time()``, shared by all processes):
a call spends one unit of every window of its bucket, or is refused when one is spent.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import re
import threading
import time
from collections import Counter

from finops_pipeline.simulator.fleet import AZURE_SUBSCRIPTIONS

MONITORING_READS = "monitoring.timeSeries.read"
BIGQUERY_METHODS = ("bigquery.jobs.insert", "bigquery.jobs.get", "bigquery.jobs.getQueryResults", "bigquery.jobs.query")
COST_MANAGEMENT_QPU = "costmanagement.qpu"

GCP_QUOTAS = {MONITORING_READS: [(100, 1.0)], **{m: [(100, 1.0)] for m in BIGQUERY_METHODS}}
AZURE_QUOTAS = {
    COST_MANAGEMENT_QPU: [(12, 10.0), (60, 60.0), (600, 3600.0)],
    **{f"arm.reads.{sub}": [(25, 1.0)] for sub in AZURE_SUBSCRIPTIONS},
}


class QuotaWindows:
    """Fixed-window quotas shared by every process that holds this object (pass it to children).

    ``quotas`` maps a bucket to its limits as ``(calls, window seconds)`` pairs.
    """

    def __init__(self, quotas: dict[str, list[tuple[int, float]]]):
        self.quotas = {bucket: [(int(n), float(w)) for n, w in limits] for bucket, limits in quotas.items()}
        self._slot = {}
        for bucket, limits in self.quotas.items():
            for k in range(len(limits)):
                self._slot[(bucket, k)] = len(self._slot)
        ctx = mp.get_context("spawn")
        self._state = ctx.Array("d", [0.0] * (2 * len(self._slot)), lock=False)  # per slot: window index, spent
        self._lock = ctx.Lock()

    def take(self, bucket: str) -> float | None:
        """Spend one call; None when allowed, else the seconds until the spent window resets."""
        return self.spend(bucket)[0]

    def spend(self, bucket: str) -> tuple[float | None, list[int]]:
        """Spend one call: (None when allowed, else the seconds until the spent window resets;
        what is left of each limit after it, as the provider's "remaining" headers say)."""
        now = time.time()
        limits = self.quotas[bucket]
        with self._lock:
            waits = []
            for k, (n, w) in enumerate(limits):
                s = self._slot[(bucket, k)]
                window = float(math.floor(now / w))
                if self._state[2 * s] != window:
                    self._state[2 * s], self._state[2 * s + 1] = window, 0.0
                if self._state[2 * s + 1] >= n:
                    waits.append((window + 1) * w - now)
            if not waits:
                for k in range(len(limits)):
                    self._state[2 * self._slot[(bucket, k)] + 1] += 1
            left = [int(n - self._state[2 * self._slot[(bucket, k)] + 1]) for k, (n, _) in enumerate(limits)]
            return (max(waits) if waits else None), left

    def least_seconds(self, bucket: str, calls: int, start: float) -> float:
        """The least time the windows allow for ``calls`` instantaneous calls from clock time
        ``start`` (windows are aligned on the clock) with every window unspent: the ideal bound
        of a backfill released at ``start``, latency excluded."""
        limits = self.quotas[bucket]
        spent = [[None, 0] for _ in limits]  # per limit: window start, calls in it
        t = start
        for _ in range(calls):
            while True:
                blocked = None
                for (n, w), state in zip(limits, spent):
                    window = math.floor(t / w) * w
                    if state[0] != window:
                        state[0], state[1] = window, 0
                    if state[1] >= n:
                        blocked = max(blocked or t, window + w)
                if blocked is None:
                    break
                t = blocked
            for state in spent:
                state[1] += 1
        return t - start


class CallLog:
    """Answered and refused calls per API key and per quota bucket, in one process (thread-safe)."""

    def __init__(self):
        self.answered: Counter = Counter()
        self.throttled: Counter = Counter()
        self.by_bucket: Counter = Counter()  # answered calls per quota bucket
        self.timeline: list[tuple[float, float, bool]] = []  # Cost Management calls: arrived, decided, refused
        self._lock = threading.Lock()

    def count(self, key: str, bucket: str | None, refused: bool, arrived: float | None = None) -> None:
        with self._lock:
            if bucket == COST_MANAGEMENT_QPU and arrived is not None:
                self.timeline.append((arrived, time.time(), refused))
            if refused:
                self.throttled[key] += 1
                return
            self.answered[key] += 1
            if bucket:
                self.by_bucket[bucket] += 1

    def as_result(self) -> dict:
        """The counts as a run's result fields."""
        with self._lock:
            return {
                "answered": dict(self.answered),
                "throttled": dict(self.throttled),
                "by_bucket": dict(self.by_bucket),
                "timeline": list(self.timeline),
            }


def monitoring_gate(latency: float, quotas: QuotaWindows, log: CallLog):
    """MetricServiceDouble's gate: latency, then the time-series read quota."""
    import grpc

    def gate(operation: str, name: str):
        time.sleep(latency)
        refused = quotas.take(MONITORING_READS) is not None
        log.count(f"monitoring.{operation}", MONITORING_READS, refused)
        if refused:
            return (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "Quota exceeded for quota metric 'Time series queries' and limit 'Time series queries "
                "per minute' of service 'monitoring.googleapis.com'.",
            )
        return None

    return gate


def bigquery_gate(latency: float, quotas: QuotaWindows, log: CallLog):
    """BigQueryDouble's gate: latency, then the per-method API request rate."""
    from finops_pipeline.simulator.gcp_bigquery import BigQueryError

    def gate(method: str, path: str):
        time.sleep(latency)
        parts = path.removeprefix("/bigquery/v2/").strip("/").split("/")
        operation = (
            "bigquery.jobs.insert"
            if method == "POST" and parts[-1] == "jobs"
            else "bigquery.jobs.query"
            if method == "POST"
            else "bigquery.jobs.getQueryResults"
            if len(parts) > 2 and parts[2] == "queries"
            else "bigquery.jobs.get"
        )
        refused = quotas.take(operation) is not None
        log.count(operation, operation, refused)
        if refused:
            raise BigQueryError(
                403,
                "rateLimitExceeded",
                "Exceeded rate limits: too many api requests per user per method for this user_method.",
            )

    return gate


_SUBSCRIPTION = re.compile(r"^/+subscriptions/([^/]+)/", re.IGNORECASE)


def azure_gate(latency: float, quotas: QuotaWindows, log: CallLog):
    """AzureDouble's gate: latency, then QPU quotas for Cost Management queries and the
    subscription's ARM read bucket for Monitor metric reads."""

    def gate(method: str, path: str):
        arrived = time.time()
        time.sleep(latency)
        lower = path.lower()
        sub = _SUBSCRIPTION.match(path)
        if "/microsoft.costmanagement/query" in lower:
            key, bucket = "costmanagement.query", COST_MANAGEMENT_QPU
        elif lower.endswith("/providers/microsoft.insights/metrics") and sub:
            key, bucket = "monitor.metrics", f"arm.reads.{sub.group(1)}"
        else:
            key, bucket = f"{method} other", None
        wait, left = quotas.spend(bucket) if bucket in quotas.quotas else (None, [])
        log.count(key, bucket, wait is not None, arrived)
        if bucket == COST_MANAGEMENT_QPU:
            # the QPU windows' "list of remaining quotas" (manage-automation, "Response headers"),
            # entries named as in simulator/azure.py
            headers = {
                "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining": (
                    f"QueriesPer10Sec:{left[0]},QueriesPerMin:{left[1]},QueriesPerHour:{left[2]}"
                )
            }
        elif bucket in quotas.quotas:
            headers = {"x-ms-ratelimit-remaining-subscription-reads": str(left[0])}
        else:
            return None
        if wait is None:
            if bucket == COST_MANAGEMENT_QPU:
                headers["x-ms-ratelimit-microsoft.costmanagement-qpu-consumed"] = "1"
            return headers
        seconds = str(max(1, math.ceil(wait)))
        if bucket == COST_MANAGEMENT_QPU:
            headers["x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"] = seconds
            return 429, {"error": {"code": "429", "message": "Too many requests. Please retry."}}, headers
        headers["Retry-After"] = seconds
        return 429, {"error": {"code": "TooManyRequests", "message": "The request is being throttled."}}, headers

    return gate
