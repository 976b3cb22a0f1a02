"""GCP: Cloud Monitoring metrics (ListTimeSeries) and the Cloud Billing export in BigQuery.

Metrics: one ``ListTimeSeries`` per metric type per project and day, aligned
server-side to hours (ALIGN_MEAN + ALIGN_MAX for gauges, ALIGN_DELTA for counters)
and summed per resource (``REDUCE_SUM`` grouped by the resource's identity labels, so
a VM's traffic split by ``loadbalanced`` or a pod's memory by ``memory_type`` becomes
one series), every page followed.

Billing: one parameterized query over the standard or detailed export table, pruned
by ``_PARTITIONTIME`` (export partitions from the window to the restatement look-back after it), capped by
``maximum_bytes_billed``; a second tiny query gives BigQuery's own day totals.

Identity (how billing joins metrics): ``resource_id`` is what Cloud Monitoring keys a
resource by -- a VM's numeric ``instance_id``, a Cloud SQL ``project:instance``
database id, a bucket name, a GKE pod name -- and the detailed export's
``resource.global_name`` is mapped to the same value (see :func:`resource_id_from_global_name`).
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from time import monotonic, sleep
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from google.api_core import exceptions as gexc
from google.auth.transport.requests import AuthorizedSession

from finops_pipeline.clouds import pacing
from finops_pipeline.clouds.base import (
    ApiUsage,
    CloudApiError,
    CloudSource,
    CostFetch,
    MetricSpec,
    ResourceRef,
    money,
    utc_now,
)
from finops_pipeline.clouds.gcp.catalog import (
    BIGQUERY_METHOD_QUOTA,
    BIGQUERY_PRICE_PER_TIB,
    CHARGE_CATEGORIES,
    EXPORT_SOURCE,
    HOUR,
    METRICS,
    MONITORING_PRICE_PER_SERIES,
    MONITORING_READS_QUOTA,
    REGION_NAMES,
    RESOURCE_TYPE_ALIASES,
    SOURCE,
)
from finops_pipeline.settings import Settings, SettingsError
from finops_pipeline.warehouse.schemas import COST_DAILY, UTC_TIMESTAMP

_PROJECT_ID = re.compile(r"^(?:[a-z][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_TABLE = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")
_BILLING_ACCOUNT = re.compile(r"^[0-9A-Fa-f]{6}-[0-9A-Fa-f]{6}-[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class _Identity:
    """How a monitored resource type is keyed: group-by fields and filter field."""

    group_by: tuple[str, ...]
    id_label: str  # the filter field that selects resources by resource_id


_IDENTITY = {
    "gce_instance": _Identity(
        (
            "resource.label.project_id",
            "resource.label.instance_id",
            "resource.label.zone",
            "metric.label.instance_name",
        ),
        "resource.labels.instance_id",
    ),
    "cloudsql_database": _Identity(
        ("resource.label.project_id", "resource.label.database_id", "resource.label.region"),
        "resource.labels.database_id",
    ),
    "gcs_bucket": _Identity(
        ("resource.label.project_id", "resource.label.bucket_name", "resource.label.location"),
        "resource.labels.bucket_name",
    ),
    "k8s_container": _Identity(
        (
            "resource.label.project_id",
            "resource.label.location",
            "resource.label.cluster_name",
            "resource.label.namespace_name",
            "resource.label.pod_name",
        ),
        "resource.labels.pod_name",
    ),
}


def _zone_region(location: str) -> str:
    """us-central1-a -> us-central1; regions and multi-regions pass through (lower-cased)."""
    location = location.lower()
    return location[:-2] if re.match(r"^[a-z]+-[a-z]+\d+-[a-z]$", location) else location


def _identity(rtype: str, rlabels, mlabels, system_name: str | None) -> tuple[str, str, str | None]:
    """(resource_id, resource_name, region) of one returned series."""
    if rtype == "gce_instance":
        return (
            rlabels.get("instance_id", ""),
            mlabels.get("instance_name") or system_name or "",
            _zone_region(rlabels.get("zone", "")) or None,
        )
    if rtype == "cloudsql_database":
        db = rlabels.get("database_id", "")
        return db, db.split(":", 1)[-1], rlabels.get("region") or None
    if rtype == "gcs_bucket":
        return (
            rlabels.get("bucket_name", ""),
            rlabels.get("bucket_name", ""),
            (rlabels.get("location") or "").lower() or None,
        )
    pod = rlabels.get("pod_name", "")
    return pod, pod, _zone_region(rlabels.get("location", "")) or None


_GLOBAL_NAME = [
    (
        re.compile(r"^//compute\.googleapis\.com/projects/[^/]+/zones/[^/]+/instances/([^/]+)$"),
        "gce_instance",
        lambda m: m.group(1),
    ),
    (
        re.compile(r"^//cloudsql\.googleapis\.com/projects/([^/]+)/instances/([^/]+)$"),
        "cloudsql_database",
        lambda m: f"{m.group(1)}:{m.group(2)}",
    ),
    (re.compile(r"^//storage\.googleapis\.com/projects/[^/]+/buckets/([^/]+)$"), "gcs_bucket", lambda m: m.group(1)),
    (
        re.compile(
            r"^//container\.googleapis\.com/projects/[^/]+/(?:locations|zones)/[^/]+/clusters/[^/]+"
            r"/k8s/namespaces/[^/]+/pods/([^/]+)$"
        ),
        "k8s_container",
        lambda m: m.group(1),
    ),
]


def resource_id_from_global_name(global_name: str | None, name: str | None) -> tuple[str | None, str | None]:
    """(resource_id, resource_type) for a detailed-export row, keyed like Cloud Monitoring.

    A VM's ``//compute.googleapis.com/projects/P/zones/Z/instances/ID`` becomes ``ID``
    (the numeric instance_id metrics carry); Cloud SQL becomes ``P:INSTANCE``; a bucket
    its name; a GKE pod its pod name. Other resources keep the global name, which is
    unique; without one, ``resource.name`` is used.
    """
    if not global_name:
        return (name or None), None
    for pattern, rtype, key in _GLOBAL_NAME:
        m = pattern.match(global_name)
        if m:
            return key(m), rtype
    return global_name, None


def _check_filter_value(what: str, value: str) -> str:
    if not value or any(c in value for c in '"\\\n\r'):
        raise ValueError(
            f"{what} {value!r} cannot go into a Cloud Monitoring filter: "
            "it must be non-empty and contain no quotes, backslashes or line breaks"
        )
    return value


# Transient gRPC errors: retried with exponential backoff and full jitter until the deadline.
_RETRYABLE = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.ResourceExhausted,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.GatewayTimeout,
)


def _monitoring_error(exc: Exception, project: str, metric_type: str) -> CloudApiError:
    op = "monitoring ListTimeSeries"
    if isinstance(exc, gexc.PermissionDenied):
        return CloudApiError(
            "gcp",
            op,
            f"permission denied on project {project}: grant "
            f"roles/monitoring.viewer on project {project} to the pipeline's "
            f"credentials ({exc.message})",
        )
    if isinstance(exc, gexc.NotFound):
        return CloudApiError(
            "gcp",
            op,
            f"project {project} was not found: check GCP_MONITORING_PROJECTS "
            f"and that the Cloud Monitoring API is enabled there ({exc.message})",
        )
    if isinstance(exc, gexc.Unauthenticated):
        return CloudApiError(
            "gcp",
            op,
            "the credentials were rejected: set GOOGLE_APPLICATION_CREDENTIALS "
            "or run `gcloud auth application-default login`",
        )
    if isinstance(exc, _RETRYABLE):
        return CloudApiError(
            "gcp", op, f"{metric_type} in project {project} kept failing after retries: {exc.message}", retryable=True
        )
    return CloudApiError("gcp", op, f"{metric_type} in project {project}: {exc}")


class GcpSource(CloudSource):
    """Cloud Monitoring + BigQuery billing export, built from settings and SDK clients."""

    provider = "gcp"
    METRICS = METRICS

    def __init__(
        self,
        settings: Settings,
        monitoring_client=None,
        bigquery_client=None,
        retry_initial_delay: float = 1.0,
        retry_deadline: float | None = None,
    ):
        self.settings = settings
        self.monitoring = monitoring_client
        self.bigquery = bigquery_client
        self.api = ApiUsage()
        self.projects = tuple(settings.gcp_monitoring_projects) or (
            (settings.gcp_project_id,) if settings.gcp_project_id else ()
        )
        self.retry_initial_delay = retry_initial_delay
        self.retry_deadline = settings.gcp_retry_deadline_seconds if retry_deadline is None else retry_deadline
        # Charged to the consumer project (the credentials' one), whichever project is read.
        self.reads = (
            pacing.quota(
                f"gcp-monitoring-reads-{settings.gcp_project_id or 'default'}",
                MONITORING_READS_QUOTA,
                settings.pacing_dir,
            )
            if settings.pacing_enabled
            else None
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> GcpSource:
        """Clients from Application Default Credentials, or pointed at the simulator's endpoints."""
        import google.auth
        import grpc
        from google.auth.credentials import AnonymousCredentials
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import bigquery, monitoring_v3
        from google.cloud.monitoring_v3.services.metric_service.transports import (
            MetricServiceGrpcTransport,
        )

        billing_project = settings.gcp_billing_project_id or settings.gcp_project_id
        try:
            if settings.gcp_monitoring_endpoint:
                channel = grpc.insecure_channel(settings.gcp_monitoring_endpoint)
                monitoring = monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
            else:
                monitoring = monitoring_v3.MetricServiceClient()
            if settings.gcp_bigquery_endpoint:
                credentials = AnonymousCredentials()
                options = {"api_endpoint": settings.gcp_bigquery_endpoint}
            else:
                credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
                options = None
            bq = bigquery.Client(
                project=billing_project,
                credentials=credentials,
                client_options=options,
                _http=_PacedSession(credentials, settings) if settings.pacing_enabled else None,
            )
        except DefaultCredentialsError as exc:
            key = settings.google_application_credentials
            if key:  # google-auth's first argument names the file and what is wrong, never the key
                raise CloudApiError(
                    "gcp",
                    "authentication",
                    f"GOOGLE_APPLICATION_CREDENTIALS={key} could not be used ({exc.args[0]}): point it at a "
                    "service-account key file (IAM -> Service accounts -> Keys), or unset it and run "
                    "`gcloud auth application-default login`",
                ) from None
            raise CloudApiError(
                "gcp",
                "authentication",
                "no Application Default Credentials found: set "
                "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run "
                "`gcloud auth application-default login`",
            ) from None
        return cls(settings, monitoring, bq)

    # -- metrics ----------------------------------------------------------------------
    def iter_metric_frames(
        self,
        start: datetime,
        end: datetime,
        resources: list[ResourceRef] | None = None,
        metrics: list[str] | None = None,
    ) -> Iterator[pa.Table]:
        """metrics_hourly rows for hours in [start, end): per project x metric type, pages streamed."""
        if not self.projects:
            raise SettingsError("GCP_MONITORING_PROJECTS", "", "a comma list of project ids (or set GCP_PROJECT_ID)")
        start, end = _floor_hour(start), _ceil_hour(end)
        wanted = self._wanted(resources)
        for project in self.projects:
            _check_filter_value("project", project)
            for rtype, ids in wanted.items():
                if ids is not None:
                    ids = sorted(ref.resource_id for ref in ids if ref.sub_account_id in (None, project))
                    if not ids:
                        continue
                specs = [s for s in self.METRICS[rtype] if metrics is None or s.canonical in metrics]
                for chunk in _chunks(ids, 100) if ids is not None else [None]:
                    yield from self._chunk_frames(project, rtype, specs, start, end, chunk)

    def _wanted(self, resources: list[ResourceRef] | None) -> dict[str, list[ResourceRef] | None]:
        if resources is None:
            return {rtype: None for rtype in self.METRICS}
        wanted: dict[str, list[ResourceRef]] = defaultdict(list)
        for ref in resources:
            rtype = RESOURCE_TYPE_ALIASES.get(ref.resource_type, ref.resource_type)
            if rtype not in self.METRICS:
                raise ValueError(
                    f"GCP resource type {ref.resource_type!r} is not supported; use one of "
                    f"{sorted(self.METRICS) + sorted(RESOURCE_TYPE_ALIASES)}"
                )
            _check_filter_value("resource id", ref.resource_id)
            wanted[rtype].append(ref)
        return dict(wanted)

    def _chunk_frames(self, project, rtype, specs, start, end, ids) -> Iterator[pa.Table]:
        """Every metric of one resource type (and id chunk) in one project.

        Counters that Cloud Monitoring writes only on activity (Cloud Storage requests) have
        no point for an idle hour, and an idle resource no series at all. A resource seen in
        an hour by any metric of this fetch ran then, so its counters' missing hours are 0;
        gauges keep their gaps (NULL).
        """
        seen: dict[tuple[str, int], tuple[str, str | None]] = {}  # (id, hour) -> (name, region)
        counters = []
        for spec in specs:
            if spec.kind == "gauge":
                mean = pa.concat_tables(self._series_pages(project, rtype, spec, start, end, ids, "ALIGN_MEAN"))
                high = pa.concat_tables(self._series_pages(project, rtype, spec, start, end, ids, "ALIGN_MAX"))
                joined = mean.rename_columns([*mean.column_names[:-1], "avg"]).join(
                    high.select(["resource_id", "hour_start", "value"]).rename_columns(
                        ["resource_id", "hour_start", "max"]
                    ),
                    keys=["resource_id", "hour_start"],
                    join_type="left outer",
                )
                _note_seen(seen, joined)
                if joined.num_rows:
                    yield self._frame(joined, rtype, spec, project, avg=joined["avg"], max_=joined["max"])
            else:
                pages = list(self._series_pages(project, rtype, spec, start, end, ids, "ALIGN_DELTA"))
                for page in pages:
                    _note_seen(seen, page)
                counters.append((spec, pages))
        for spec, pages in counters:
            has = set()
            for page in pages:
                has.update(zip(page["resource_id"].to_pylist(), page["hour_start"].cast(pa.int64()).to_pylist()))
                if page.num_rows:
                    yield self._frame(page, rtype, spec, project, sum_=page["value"])
            idle = sorted(key for key in seen if key not in has)
            if idle:
                zeros = pa.table(
                    {
                        "resource_id": pa.array([rid for rid, _ in idle], pa.string()),
                        "resource_name": pa.array([seen[k][0] for k in idle], pa.string()),
                        "region": pa.array([seen[k][1] for k in idle], pa.string()),
                        "hour_start": pa.array([hour for _, hour in idle], pa.int64()).cast(UTC_TIMESTAMP),
                        "value": pa.array([0.0] * len(idle), pa.float64()),
                    }
                )
                yield self._frame(zeros, rtype, spec, project, sum_=zeros["value"])

    def _frame(self, t: pa.Table, rtype, spec: MetricSpec, project, avg=None, max_=None, sum_=None) -> pa.Table:
        n = t.num_rows
        nulls = pa.nulls(n, pa.float64())

        def scaled(col):
            if col is None:
                return nulls
            return pc.multiply(col.cast(pa.float64()), spec.scale) if spec.scale != 1.0 else col.cast(pa.float64())

        hour = t["hour_start"]
        return pa.table(
            {
                "provider": pa.array(["gcp"] * n, pa.string()),
                "usage_date": pc.cast(hour, pa.date32()),
                "hour_start": hour,
                "resource_id": t["resource_id"],
                "resource_name": t["resource_name"],
                "resource_type": pa.array([rtype] * n, pa.string()),
                "region": t["region"],
                "sub_account_id": pa.array([project] * n, pa.string()),
                "metric": pa.array([spec.canonical] * n, pa.string()),
                "native_metric": pa.array([spec.native] * n, pa.string()),
                "unit": pa.array([spec.unit] * n, pa.string()),
                "avg": scaled(avg),
                "max": scaled(max_),
                "min": nulls,
                "sum": scaled(sum_),
                "sample_count": nulls,
                "ingested_at": pa.array([utc_now()] * n, UTC_TIMESTAMP),
            }
        )

    def _series_pages(self, project, rtype, spec, start, end, ids, aligner) -> Iterator[pa.Table]:
        """Each response page of one ListTimeSeries as (resource_id, name, region, hour_start, value)."""
        from google.cloud import monitoring_v3

        identity = _IDENTITY[rtype]
        clauses = [
            f'metric.type = "{_check_filter_value("metric type", spec.native)}"',
            f'resource.type = "{_check_filter_value("resource type", rtype)}"',
        ]
        if ids:
            field = identity.id_label
            if rtype == "gce_instance" and not all(i.isdigit() for i in ids):
                field = "metric.labels.instance_name"  # a VM named rather than numbered
            clauses.append(f"{field} = one_of({', '.join(f'{chr(34)}{i}{chr(34)}' for i in ids)})")
        request = monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{project}",
            filter=" AND ".join(clauses),
            interval=monitoring_v3.TimeInterval(start_time=start, end_time=end),
            aggregation=monitoring_v3.Aggregation(
                alignment_period={"seconds": HOUR},
                per_series_aligner=getattr(monitoring_v3.Aggregation.Aligner, aligner),
                cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
                group_by_fields=list(identity.group_by),
            ),
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )
        lo, hi = int(start.timestamp()), int(end.timestamp())
        try:
            while True:
                page = self._with_retries(
                    lambda: next(
                        iter(self.monitoring.list_time_series(request=request, retry=None, timeout=60.0).pages)
                    )  # noqa: B023 - called now
                )
                raw = type(page).pb(page)
                self.api.record("monitoring.ListTimeSeries", MONITORING_PRICE_PER_SERIES * len(raw.time_series))
                ids_, names, regions, hours, values = [], [], [], [], []
                for ts in raw.time_series:
                    system_name = ts.metadata.system_labels.fields.get("name")
                    rid, name, region = _identity(
                        rtype, ts.resource.labels, ts.metric.labels, system_name.string_value if system_name else None
                    )
                    for p in ts.points:
                        hour_start = p.interval.end_time.seconds - HOUR
                        if not lo <= hour_start < hi:
                            continue
                        # Our metric types are DOUBLE or INT64, and so are their aligned points.
                        kind = p.value.WhichOneof("value")
                        ids_.append(rid)
                        names.append(name)
                        regions.append(region)
                        hours.append(hour_start * 1_000_000)
                        values.append(float(getattr(p.value, kind)))
                yield pa.table(
                    {
                        "resource_id": pa.array(ids_, pa.string()),
                        "resource_name": pa.array(names, pa.string()),
                        "region": pa.array(regions, pa.string()),
                        "hour_start": pa.array(hours, pa.int64()).cast(UTC_TIMESTAMP),
                        "value": pa.array(values, pa.float64()),
                    }
                )
                if not raw.next_page_token:
                    break
                request.page_token = raw.next_page_token
        except gexc.GoogleAPICallError as exc:
            raise _monitoring_error(exc, project, spec.native) from None

    def _with_retries(self, send):
        """``send()`` through our retry loop: every attempt first waits its turn in the read
        quota (so pacing sees retries too); transient errors back off with full jitter until
        ``retry_deadline`` seconds have passed, then the last error is raised. A spent quota
        (RESOURCE_EXHAUSTED) holds every caller of the quota for the backoff, not just this one."""
        deadline = monotonic() + self.retry_deadline
        delay = self.retry_initial_delay
        while True:
            if self.reads is not None:
                self.reads.acquire()
            try:
                return send()
            except _RETRYABLE as exc:
                wait = random.uniform(0, delay)
                if monotonic() + wait > deadline:
                    raise
                self.api.retries += 1
                delay = min(delay * 2, 30.0)
                if isinstance(exc, gexc.ResourceExhausted) and self.reads is not None:
                    self.reads.hold(wait)
                else:
                    sleep(wait)

    # -- billing ----------------------------------------------------------------------
    def billing_table(self) -> str:
        """The export table as a validated, backtick-quoted `project.dataset.table`."""
        s = self.settings
        project = s.gcp_billing_project_id or s.gcp_project_id
        name = "GCP_BILLING_PROJECT_ID" if s.gcp_billing_project_id else "GCP_PROJECT_ID"
        if not project or not _PROJECT_ID.match(project):
            raise SettingsError(
                name,
                project or "",
                "a Google Cloud project id (6-30 lowercase letters, "
                "digits or hyphens) for the project that holds the billing export",
            )
        if not s.gcp_billing_dataset or not _DATASET.match(s.gcp_billing_dataset):
            raise SettingsError(
                "GCP_BILLING_DATASET",
                s.gcp_billing_dataset or "",
                "the BigQuery dataset of the billing export (letters, digits, underscores)",
            )
        named, variable = (
            (s.gcp_billing_detailed_table, "GCP_BILLING_DETAILED_TABLE")
            if self.export_source
            else (s.gcp_billing_table, "GCP_BILLING_TABLE")
        )
        if named:
            table = named
            if not _TABLE.match(table):
                raise SettingsError(variable, table, "a BigQuery table name (letters, digits, underscores, hyphens)")
        else:
            account = s.gcp_billing_account_id or ""
            if not _BILLING_ACCOUNT.match(account):
                raise SettingsError(
                    "GCP_BILLING_ACCOUNT_ID",
                    account,
                    f"a billing account id like 01A2B3-C4D5E6-F7A8B9 (or set {variable})",
                )
            detailed = s.gcp_billing_detailed or self.export_source
            prefix = "gcp_billing_export_resource_v1_" if detailed else "gcp_billing_export_v1_"
            table = prefix + account.upper().replace("-", "_")
        return f"`{project}.{s.gcp_billing_dataset}.{table}`"

    @property
    def export_source(self) -> bool:
        """GCP_COST_SOURCE=export: cost rows with the FOCUS columns of the detailed export."""
        return self.settings.gcp_cost_source == "export"

    def export_sql(self, table: str) -> str:
        """The detailed export's rows summed per cost_daily key, with what FOCUS needs from it.

        Columns as "Structure of Detailed data export" (cloud.google.com/billing/docs/how-to/
        export-data-bigquery-tables/detailed-usage) names them; the commitment credit is picked as
        Google's own FOCUS BigQuery view does (credits of type COMMITTED_USAGE_DISCOUNT or
        COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE, the commitment's id in ``subscription.instance_id``).
        """
        dims = [
            "usage_date",
            "billing_account_id",
            "cost_type",
            "currency",
            "project_id",
            "project_name",
            "service_name",
            "sku_id",
            "sku_description",
            "usage_unit",
            "pricing_unit",
            "region",
            "zone",
            "resource_name",
            "resource_global_name",
            "labels_json",
            "invoice_month",
            "effective_price",
            "list_price",
            "tier_start_amount",
            "pricing_unit_quantity",
            "commitment_id",
            "cud_type",
            "cud_name",
            "adjustment_id",
            "transaction_type",
            "seller_name",
        ]
        cud = f"FROM UNNEST(credits) AS c WHERE c.type IN ('{_CUD_USAGE}', '{_CUD_SPEND}')"
        return (
            "SELECT\n  "
            + ",\n  ".join(dims)
            + ",\n  SUM(cost) AS cost,\n  SUM(cost_at_list) AS cost_at_list,\n  SUM(credits) AS credits,\n"
            "  SUM(usage_amount) AS usage_amount,\n  SUM(pricing_amount) AS pricing_amount\n"
            "FROM (\n  SELECT\n"
            "    DATE(usage_start_time) AS usage_date, billing_account_id, cost_type, currency,\n"
            "    project.id AS project_id, project.name AS project_name, service.description AS service_name,\n"
            "    sku.id AS sku_id, sku.description AS sku_description, usage.unit AS usage_unit,\n"
            "    price.unit AS pricing_unit, location.region AS region, location.zone AS zone,\n"
            "    resource.name AS resource_name, resource.global_name AS resource_global_name,\n"
            "    TO_JSON_STRING(labels) AS labels_json, invoice.month AS invoice_month,\n"
            "    price.effective_price AS effective_price, price.list_price AS list_price,\n"
            "    price.tier_start_amount AS tier_start_amount, price.pricing_unit_quantity AS pricing_unit_quantity,\n"
            "    subscription.instance_id AS commitment_id,\n"
            f"    (SELECT MAX(c.type) {cud}) AS cud_type,\n"
            f"    (SELECT MAX(c.full_name) {cud}) AS cud_name,\n"
            "    adjustment_info.id AS adjustment_id, transaction_type, seller_name,\n"
            "    CAST(cost AS NUMERIC) AS cost, CAST(cost_at_list AS NUMERIC) AS cost_at_list,\n"
            "    IFNULL((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c), 0) AS credits,\n"
            "    usage.amount AS usage_amount, usage.amount_in_pricing_units AS pricing_amount\n"
            f"  FROM {table}\n  " + self._where().replace("\n", "\n  ") + "\n) AS line\n"
            f"GROUP BY {', '.join(dims)}"
        )

    def cost_sql(self, table: str, group_by: tuple[str, ...] | None = None) -> str:
        """The billing query: identifiers validated by billing_table(), values as parameters."""
        detailed = self.settings.gcp_billing_detailed
        dims = set(group_by) if group_by is not None else {"account", "service", "region", "resource", "labels"}
        columns = [
            ("DATE(usage_start_time)", "usage_date"),
            ("billing_account_id", "billing_account_id"),
            ("cost_type", "cost_type"),
            ("currency", "currency"),
        ]
        if "account" in dims:
            columns += [("project.id", "project_id"), ("project.name", "project_name")]
        if "service" in dims:
            columns += [
                ("service.description", "service_name"),
                ("sku.description", "sku"),
                ("usage.unit", "usage_unit"),
            ]
        if "region" in dims:
            columns += [("location.region", "region")]
        if "resource" in dims and detailed:
            columns += [("resource.name", "resource_name"), ("resource.global_name", "resource_global_name")]
        if "labels" in dims:
            columns += [("TO_JSON_STRING(labels)", "labels_json")]
        select = ",\n  ".join(f"{expr} AS {alias}" for expr, alias in columns)
        usage = ",\n  SUM(usage.amount) AS usage_amount" if "service" in dims else ""
        return (
            f"SELECT\n  {select},\n"
            "  SUM(CAST(cost AS NUMERIC)) AS cost,\n"
            "  SUM(IFNULL((SELECT SUM(CAST(c.amount AS NUMERIC)) FROM UNNEST(credits) AS c), 0)) AS credits"
            f"{usage}\n"
            f"FROM {table}\n"
            f"{self._where()}\n"
            f"GROUP BY {', '.join(alias for _, alias in columns)}"
        )

    @staticmethod
    def _where() -> str:
        return (
            "WHERE _PARTITIONTIME >= @partition_start AND _PARTITIONTIME < @partition_end\n"
            "  AND usage_start_time >= @start AND usage_start_time < @end"
        )

    def totals_sql(self, table: str) -> str:
        return (
            "SELECT DATE(usage_start_time) AS usage_date, currency, SUM(CAST(cost AS NUMERIC)) AS cost\n"
            f"FROM {table}\n{self._where()}\nGROUP BY usage_date, currency"
        )

    def partition_window(self, start: date, end: date) -> tuple[datetime, datetime]:
        """_PARTITIONTIME bounds: a day before the usage window to GCP_RESTATEMENT_LOOKBACK_DAYS
        after it (at most today). The export table is partitioned by when rows were exported, and
        rows of a usage day (late usage, credits, corrections) keep arriving for days; the daily
        run looks for them over the same look-back. GCP_BILLING_MAX_BYTES caps the cost."""
        last = min(end + timedelta(days=self.settings.gcp_restatement_lookback_days), utc_now().date())
        return _midnight(start - timedelta(days=1)), _midnight(max(last, end) + timedelta(days=1))

    def fetch_cost(self, start: date, end: date, group_by: tuple[str, ...] | None = None) -> CostFetch:
        """cost_daily rows for UTC days in [start, end), net of credits, with BigQuery's day totals."""
        table = self.billing_table()  # raises before anything is sent if a name is unusable
        days = [start + timedelta(days=i) for i in range((end - start).days)]
        if self.export_source and group_by is None:
            rows = [_export_row(r) for r in self._query(self.export_sql(table), start, end, table)]
        else:
            rows = [_api_row(r) for r in self._query(self.cost_sql(table, group_by), start, end, table)]
        cost = _cost_table(rows)
        totals: dict[date, dict[str, Decimal]] = {}
        for r in self._query(self.totals_sql(table), start, end, table):
            totals.setdefault(r["usage_date"], {})[r["currency"]] = Decimal(r["cost"])
        return CostFetch(cost=cost, days=days, provider_totals=totals)

    def days_with_newer_export_rows(self, landed: dict[date, datetime], since: date) -> list[date]:
        """Usage days on or after ``since`` whose export rows arrived after ``landed[day]`` (when we
        wrote that day): the export keeps adding rows (late usage, credits) for days. One query
        over the export partitions since then, grouped by usage day."""
        if not landed:
            return []
        table = self.billing_table()
        sql = (
            "SELECT DATE(usage_start_time) AS usage_date, MAX(export_time) AS last_export\n"
            f"FROM {table}\n{self._where()}\nGROUP BY usage_date"
        )
        end = max(landed) + timedelta(days=1)
        rows = self._query(sql, since, end, table)
        return sorted(
            r["usage_date"] for r in rows if r["usage_date"] in landed and r["last_export"] > landed[r["usage_date"]]
        )

    def _query(self, sql: str, start: date, end: date, table: str) -> list[dict]:
        from google.cloud import bigquery

        p_start, p_end = self.partition_window(start, end)
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("start", "TIMESTAMP", _midnight(start)),
                bigquery.ScalarQueryParameter("end", "TIMESTAMP", _midnight(end)),
                bigquery.ScalarQueryParameter("partition_start", "TIMESTAMP", p_start),
                bigquery.ScalarQueryParameter("partition_end", "TIMESTAMP", p_end),
            ],
            maximum_bytes_billed=self.settings.gcp_billing_max_bytes,
            use_legacy_sql=False,
            labels={"app": "finops-pipeline"},
        )
        # The client's retry layers (each request; the whole job, re-run on backend errors) stop at
        # our deadline: their defaults (10 and 40 minutes) would hold a run far longer. query() gets
        # job_retry=None because it wraps jobs.insert in a fixed 10-minute retry of its own otherwise;
        # the insert request is still retried by `retry`, and result() re-runs failed jobs.
        retry = bigquery.DEFAULT_RETRY.with_deadline(self.retry_deadline)
        job_retry = bigquery.retry.DEFAULT_JOB_RETRY.with_deadline(self.retry_deadline)
        try:
            job = self.bigquery.query(sql, job_config=config, retry=retry, job_retry=None)
            result = job.result(retry=retry, job_retry=job_retry)
            rows = []
            for page in result.pages:
                self.api.record("bigquery.getQueryResults")
                rows.extend(dict(row.items()) for row in page)
        except gexc.RetryError as exc:
            raise CloudApiError(
                "gcp",
                "bigquery billing export query",
                f"BigQuery kept failing for {self.retry_deadline:g} s of retries "
                f"(GCP_RETRY_DEADLINE_SECONDS={self.retry_deadline:g}): "
                f"{getattr(exc.cause, 'message', None) or exc.cause or exc}",
                retryable=True,
            ) from None
        except gexc.GoogleAPICallError as exc:
            raise self._bigquery_error(exc, table) from None
        billed = job.total_bytes_billed or 0
        self.api.record("bigquery.jobs.insert", BIGQUERY_PRICE_PER_TIB * Decimal(billed) / Decimal(2**40))
        self.api.bytes_scanned += job.total_bytes_processed or 0
        self.api.notes["bigquery_bytes_billed"] = str(int(self.api.notes.get("bigquery_bytes_billed", 0)) + billed)
        return rows

    def _bigquery_error(self, exc: gexc.GoogleAPICallError, table: str) -> CloudApiError:
        op = "bigquery billing export query"
        reasons = {e.get("reason") for e in (exc.errors or []) if isinstance(e, dict)}
        project, dataset, _ = table.strip("`").split(".")
        if isinstance(exc, gexc.NotFound) or "notFound" in reasons:
            detailed = self.settings.gcp_billing_detailed or self.export_source
            table_variable = "GCP_BILLING_DETAILED_TABLE" if self.export_source else "GCP_BILLING_TABLE"
            return CloudApiError(
                "gcp",
                op,
                f"{table} was not found: enable Billing -> Billing export -> "
                f"BigQuery export ({'detailed usage cost' if detailed else 'standard usage cost'}) "
                f"into dataset {dataset} of project {project}, or point GCP_BILLING_PROJECT_ID / "
                f"GCP_BILLING_DATASET / {table_variable} at the export. BigQuery said: {exc.message}",
            )
        if isinstance(exc, gexc.Forbidden) or "accessDenied" in reasons:
            return CloudApiError(
                "gcp",
                op,
                f"permission denied: grant the pipeline's credentials "
                f"roles/bigquery.jobUser on project {self.bigquery.project} (to run queries) and "
                f"roles/bigquery.dataViewer on dataset {project}.{dataset} (to read the export). "
                f"BigQuery said: {exc.message}",
            )
        if "bytesBilledLimitExceeded" in reasons:
            m = re.search(r"(\d+) or higher required", exc.message or "")
            need = f"{int(m.group(1)):,} bytes" if m else "more bytes than allowed"
            return CloudApiError(
                "gcp",
                op,
                f"the query would bill {need}, above GCP_BILLING_MAX_BYTES="
                f"{self.settings.gcp_billing_max_bytes:,}: raise GCP_BILLING_MAX_BYTES to at least "
                f"that, or fetch a shorter range",
            )
        return CloudApiError("gcp", op, f"{exc.message}")


def _bigquery_method(method: str, url: str) -> str:
    """The API method of a BigQuery REST request (its quota is per method)."""
    parts = url.split("?", 1)[0].rstrip("/").split("/")
    if method == "POST":
        return "jobs.query" if parts[-1] == "queries" else "jobs.insert" if parts[-1] == "jobs" else "other"
    if "queries" in parts:
        return "jobs.getQueryResults"
    return "jobs.get" if "jobs" in parts else "other"


class _PacedSession(AuthorizedSession):
    """google-cloud-bigquery's HTTP session: every request (its retries and result polls
    included) first waits its turn in its method's quota."""

    def __init__(self, credentials, settings: Settings):
        super().__init__(credentials)
        self._pacing_dir = settings.pacing_dir

    def request(self, method, url, *args, **kwargs):
        name = _bigquery_method(method.upper(), url)
        pacing.quota(f"gcp-bigquery-{name}", BIGQUERY_METHOD_QUOTA, self._pacing_dir).acquire()
        return super().request(method, url, *args, **kwargs)


def _api_row(r: dict) -> dict:
    """One row of the billing query (cost_sql) as cost_daily columns."""
    resource_id, resource_type = resource_id_from_global_name(r.get("resource_global_name"), r.get("resource_name"))
    billing_account = r["billing_account_id"]
    return {
        "provider": "gcp",
        "usage_date": r["usage_date"],
        "billing_account_id": billing_account,
        "sub_account_id": r.get("project_id") or billing_account,
        "sub_account_name": r.get("project_name"),
        "service_name": r.get("service_name") or "(all services)",
        "region": r.get("region"),
        "resource_id": resource_id,
        "resource_name": r.get("resource_name"),
        "resource_type": resource_type,
        "sku": r.get("sku"),
        "charge_category": CHARGE_CATEGORIES.get(r["cost_type"], "Adjustment"),
        "charge_description": r["cost_type"],
        "usage_quantity": r.get("usage_amount"),
        "usage_unit": r.get("usage_unit"),
        "billed_cost": Decimal(r["cost"]),
        "effective_cost": Decimal(r["cost"]) + Decimal(r["credits"]),
        "list_cost": None,
        "billing_currency": r["currency"],
        "tags": dict((kv["key"], kv["value"]) for kv in json.loads(r.get("labels_json") or "[]")),
        "is_estimated": False,
        "source": SOURCE,
    }


def _export_row(r: dict) -> dict:
    """One row of the detailed-export query (export_sql) as cost_daily columns, FOCUS ones included.

    The mapping follows Google's FOCUS BigQuery view for the detailed export: AvailabilityZone is
    ``location.zone``; ChargeClass is Correction where ``adjustment_info`` is set; SkuPriceId is the
    billing account, ``sku.id`` and ``price.tier_start_amount``; ContractedUnitPrice is
    ``price.effective_price``; the commitment is ``subscription.instance_id`` with the credit's type
    (Usage for COMMITTED_USAGE_DISCOUNT, Spend for its DOLLAR_BASE kind) and full name. The prices
    are per ``price.pricing_unit_quantity`` units of ``price.unit``, so the unit prices divide by
    it; PricingQuantity is ``usage.amount_in_pricing_units``. The export has the invoice month but
    no invoice id, so InvoiceId stays NULL.
    """
    row = _api_row({**r, "sku": r["sku_id"]})
    row["charge_description"] = r["sku_description"]
    regular = r["cost_type"] == "regular"
    per = Decimal(str(r["pricing_unit_quantity"])) if r.get("pricing_unit_quantity") else None
    effective_price = _unit_price(r.get("effective_price"), per)
    list_price = _unit_price(r.get("list_price"), per)
    cud = r.get("cud_type")
    commitment_fee = (r["sku_description"] or "").lower().startswith("commitment")
    row.update(
        source=EXPORT_SOURCE,
        availability_zone=r.get("zone"),
        region_name=REGION_NAMES.get(r.get("region") or ""),
        publisher_name="Google Cloud" if (r.get("transaction_type") or "GOOGLE") == "GOOGLE" else r.get("seller_name"),
        list_cost=Decimal(r["cost_at_list"]) if r.get("cost_at_list") is not None else None,
        contracted_cost=Decimal(r["cost"]),
        charge_class="Correction" if r.get("adjustment_id") else None,
        sku_meter=r["sku_description"],
    )
    if regular:
        row.update(
            charge_frequency="Recurring" if commitment_fee else "Usage-Based",
            pricing_category="Committed" if cud or commitment_fee else "Standard",
            pricing_quantity=r.get("pricing_amount"),
            pricing_unit=r.get("pricing_unit"),
            pricing_currency=r["currency"],
            list_unit_price=list_price,
            contracted_unit_price=effective_price,
            pricing_currency_list_unit_price=list_price,
            pricing_currency_contracted_unit_price=effective_price,
            pricing_currency_effective_cost=row["effective_cost"],
            # Google's FOCUS view CONCATs these, and CONCAT is NULL when an input is NULL.
            sku_price_id=(
                f"Billing Account ID:{r['billing_account_id']}, SKU ID: {r['sku_id']}, "
                f"Price Tier Start Amount: {_plain(r['tier_start_amount'])}"
                if r.get("tier_start_amount") is not None
                else None
            ),
        )
    if cud and r.get("commitment_id"):
        row.update(
            commitment_discount_id=r["commitment_id"],
            commitment_discount_type=cud,
            commitment_discount_category="Spend" if cud == _CUD_SPEND else "Usage",
            commitment_discount_name=r.get("cud_name"),
            commitment_discount_status="Used" if regular and not commitment_fee else None,
        )
    return row


_CUD_USAGE = "COMMITTED_USAGE_DISCOUNT"
_CUD_SPEND = "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE"


def _unit_price(price, per: Decimal | None) -> Decimal | None:
    """A price quoted per ``per`` pricing units, per one pricing unit."""
    if price is None or not per:
        return None
    return money(Decimal(str(price)) / per)  # 0.0475 per 3600 s would not fit the lake's 10 places


def _plain(value) -> str:
    """A NUMERIC as BigQuery's CONCAT would print it (no exponent, no trailing zeros)."""
    return format(Decimal(str(value)).normalize(), "f")


_KEY = [k for k in COST_DAILY.key if k != "provider"]
_SUMMED = ("billed_cost", "effective_cost", "list_cost", "contracted_cost", "pricing_currency_effective_cost")


def _cost_table(rows: list[dict]) -> pa.Table:
    """cost_daily rows merged per contract key (tags = the labels they share)."""
    merged: dict[tuple, dict] = {}
    now = utc_now()
    for row in rows:
        row["ingested_at"] = now
        key = tuple(row.get(k) for k in _KEY)
        if key not in merged:
            merged[key] = row
            continue
        into = merged[key]  # e.g. labels changed during the day: one row, the labels both had
        for column in _SUMMED:
            if into.get(column) is not None and row.get(column) is not None:
                into[column] += row[column]
        for quantity, unit in (("usage_quantity", "usage_unit"), ("pricing_quantity", "pricing_unit")):
            if row.get(quantity) is not None and into.get(unit) == row.get(unit):
                into[quantity] = (into.get(quantity) or 0.0) + row[quantity]
        for price in ("list_unit_price", "contracted_unit_price"):
            if into.get(price) != row.get(price):
                into[price] = None  # one row cannot say two prices
        into["tags"] = {k: v for k, v in into["tags"].items() if row["tags"].get(k) == v}
        if into["charge_description"] != row["charge_description"]:
            into["charge_description"] = "mixed"
    out = list(merged.values())
    for row in out:
        row["tags"] = list(row["tags"].items())
    return pa.Table.from_pylist(out, schema=_COST_SCHEMA)


_COST_SCHEMA = COST_DAILY.columns_schema(
    [
        "provider",
        "usage_date",
        "billing_account_id",
        "sub_account_id",
        "sub_account_name",
        "service_name",
        "region",
        "resource_id",
        "resource_name",
        "resource_type",
        "sku",
        "charge_category",
        "charge_description",
        "usage_quantity",
        "usage_unit",
        "billed_cost",
        "effective_cost",
        "list_cost",
        "billing_currency",
        "tags",
        "is_estimated",
        "source",
        "ingested_at",
        "availability_zone",
        "region_name",
        "publisher_name",
        "charge_class",
        "charge_frequency",
        "pricing_category",
        "pricing_quantity",
        "pricing_unit",
        "pricing_currency",
        "list_unit_price",
        "contracted_unit_price",
        "contracted_cost",
        "pricing_currency_list_unit_price",
        "pricing_currency_contracted_unit_price",
        "pricing_currency_effective_cost",
        "sku_price_id",
        "sku_meter",
        "commitment_discount_id",
        "commitment_discount_type",
        "commitment_discount_category",
        "commitment_discount_name",
        "commitment_discount_status",
    ]
)


def _note_seen(seen: dict, t: pa.Table) -> None:
    """Record each (resource_id, hour) of a page with the resource's name and region."""
    for rid, hour, name, region in zip(
        t["resource_id"].to_pylist(),
        t["hour_start"].cast(pa.int64()).to_pylist(),
        t["resource_name"].to_pylist(),
        t["region"].to_pylist(),
    ):
        seen.setdefault((rid, hour), (name, region))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def _floor_hour(t: datetime) -> datetime:
    t = t.astimezone(timezone.utc) if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return t.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(t: datetime) -> datetime:
    floored = _floor_hour(t)
    return floored if floored == (t if t.tzinfo else t.replace(tzinfo=timezone.utc)) else floored + timedelta(hours=1)


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]
