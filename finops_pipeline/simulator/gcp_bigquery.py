"""A BigQuery double: the REST job API over DuckDB, holding a Cloud Billing export table.

It speaks what google-cloud-bigquery sends: ``jobs.insert`` (POST .../jobs; the job is
RUNNING in its answer, DONE from the first ``jobs.get``), ``jobs.get``,
``jobs.getQueryResults`` (GET .../queries/{job}, paged) and ``jobs.query`` (POST .../queries). The received GoogleSQL is parsed with sqlglot, its table references
are checked (a missing dataset/table is BigQuery's ``notFound``), and it runs on DuckDB
after ``sqlglot.transpile(read="bigquery", write="duckdb")`` with the named query
parameters bound. Bytes processed are estimated the way BigQuery bills: rows in the
partitions the ``_PARTITIONTIME`` predicates keep x the widths of the columns the query
references, at least 10 MiB billed per table; ``maximumBytesBilled`` is enforced.

The tables have the real export schema (STRUCTs ``service``, ``sku``, ``project``,
``location``, ``usage``, ``invoice``, ``adjustment_info``; REPEATED ``credits``, ``labels``,
``system_labels``; ``_PARTITIONTIME``), one row per usage hour. The detailed table adds what
"Structure of Detailed data export" (cloud.google.com/billing/docs/how-to/export-data-bigquery-
tables/detailed-usage) lists beyond the standard one: ``resource`` (name, global_name), ``price``
(effective_price, tier_start_amount, unit, pricing_unit_quantity, list_price; NUMERIC) and
``subscription.instance_id`` (the commitment a committed use discount credit comes from).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlparse

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from finops_pipeline.simulator.fleet import CostLine, Fleet
from finops_pipeline.simulator.gcp_monitoring import K8S_CLUSTER, K8S_NAMESPACE

# On-demand queries bill at least 10 MB per table referenced (BigQuery pricing, on-demand compute).
MIN_BILLED_BYTES = 10 * 1024**2

EXPORT_COLUMNS = """
    billing_account_id VARCHAR,
    service STRUCT(id VARCHAR, description VARCHAR),
    sku STRUCT(id VARCHAR, description VARCHAR),
    usage_start_time TIMESTAMPTZ,
    usage_end_time TIMESTAMPTZ,
    project STRUCT(id VARCHAR, number VARCHAR, name VARCHAR,
                   labels STRUCT(key VARCHAR, value VARCHAR)[], ancestry_numbers VARCHAR),
    labels STRUCT(key VARCHAR, value VARCHAR)[],
    system_labels STRUCT(key VARCHAR, value VARCHAR)[],
    location STRUCT(location VARCHAR, country VARCHAR, region VARCHAR, zone VARCHAR),
    tags STRUCT(key VARCHAR, value VARCHAR, inherited BOOLEAN, namespace VARCHAR)[],
    transaction_type VARCHAR,
    seller_name VARCHAR,
    export_time TIMESTAMPTZ,
    cost DOUBLE,
    cost_at_list DOUBLE,
    currency VARCHAR,
    currency_conversion_rate DOUBLE,
    usage STRUCT(amount DOUBLE, unit VARCHAR, amount_in_pricing_units DOUBLE, pricing_unit VARCHAR),
    credits STRUCT(name VARCHAR, amount DOUBLE, full_name VARCHAR, id VARCHAR, type VARCHAR)[],
    invoice STRUCT(month VARCHAR),
    cost_type VARCHAR,
    adjustment_info STRUCT(id VARCHAR, description VARCHAR, mode VARCHAR, type VARCHAR),
    _PARTITIONTIME TIMESTAMPTZ
"""
DETAILED_EXTRA = """,
    resource STRUCT(name VARCHAR, global_name VARCHAR),
    price STRUCT(effective_price DECIMAL(38, 9), tier_start_amount DECIMAL(38, 9), unit VARCHAR,
                 pricing_unit_quantity DECIMAL(38, 9), list_price DECIMAL(38, 9)),
    subscription STRUCT(instance_id VARCHAR)
"""
DETAILED_ONLY = ("resource", "price", "subscription")

# Typical stored bytes per row of each top-level column (BigQuery data-size rules:
# 8 bytes per number/timestamp, 2 + UTF-8 length per string, sums over STRUCT fields).
COLUMN_BYTES = {
    "billing_account_id": 22,
    "service": 40,
    "sku": 70,
    "usage_start_time": 8,
    "usage_end_time": 8,
    "project": 90,
    "labels": 60,
    "system_labels": 60,
    "location": 40,
    "tags": 60,
    "transaction_type": 8,
    "seller_name": 2,
    "export_time": 8,
    "cost": 8,
    "cost_at_list": 8,
    "currency": 5,
    "currency_conversion_rate": 8,
    "usage": 40,
    "credits": 60,
    "invoice": 8,
    "cost_type": 9,
    "adjustment_info": 8,
    "resource": 120,
    "price": 40,
    "subscription": 20,
    "_PARTITIONTIME": 8,
}


class BigQueryError(Exception):
    """An error the way BigQuery reports it: HTTP status, reason, message."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    def body(self) -> dict:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"reason": self.reason, "message": self.message, "domain": "global"}],
                "status": {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}.get(
                    self.status, "INTERNAL"
                ),
            }
        }


def _global_name(line: CostLine, fleet: Fleet) -> tuple[str | None, str | None]:
    """(resource.name, resource.global_name) of the detailed export for a fleet line."""
    r = fleet.by_id.get(line.resource_id or "")
    if r is None:
        return None, None
    p = r.sub_account_id
    return r.name, {
        "gce_instance": f"//compute.googleapis.com/projects/{p}/zones/{r.region}-a/instances/{r.numeric_id}",
        "cloudsql_database": f"//cloudsql.googleapis.com/projects/{p}/instances/{r.name}",
        "gcs_bucket": f"//storage.googleapis.com/projects/_/buckets/{r.name}",
        "k8s_container": (
            f"//container.googleapis.com/projects/{p}/locations/{r.region}/clusters/"
            f"{K8S_CLUSTER}/k8s/namespaces/{K8S_NAMESPACE}/pods/{r.name}"
        ),
    }.get(r.resource_type)


def _split(total: Decimal, parts: int) -> list[Decimal]:
    """``parts`` amounts with 6 decimals that add up exactly to ``total``."""
    each = (total / parts).quantize(Decimal("0.000001"))
    return [each] * (parts - 1) + [total - each * (parts - 1)]


def commitment_of(line: CostLine) -> str | None:
    """The committed use discount (its ``subscription.instance_id``) covering a discounted line: a
    VM with an even instance id is under its project's commitment, any other discount is a
    sustained use discount (the fleet only says how much is saved, the double says how)."""
    rid = line.resource_id or ""
    if line.effective_cost == line.billed_cost or not rid.isdigit() or int(rid) % 2:
        return None
    return f"{zlib.crc32(line.sub_account_id.encode()) % 10**12:012d}"


def _credit(line: CostLine, amount: Decimal) -> dict:
    """A discount credit: committed use (type COMMITTED_USAGE_DISCOUNT, the resource-based kind) or
    sustained use, as the export's ``credits.type`` values name them."""
    if commitment_of(line):
        name = "Committed use discount: Core"
        return {
            "name": name,
            "amount": float(amount),
            "full_name": name,
            "id": "COMMITTED_USAGE_DISCOUNT",
            "type": "COMMITTED_USAGE_DISCOUNT",
        }
    return {
        "name": "Sustained use discount",
        "amount": float(amount),
        "full_name": None,
        "id": "SUSTAINED_USAGE_DISCOUNT",
        "type": "SUSTAINED_USAGE_DISCOUNT",
    }


def export_rows(fleet: Fleet, day: date, export_delay: timedelta = timedelta(hours=5)) -> list[dict]:
    """The day's fleet bill as hourly billing-export rows (credits = effective - billed).

    Prices: ``price.effective_price`` is the day's cost per usage hour (the SKU's price for this
    billing account), quoted per 1 hour (``pricing_unit_quantity`` 1, one tier starting at 0); the
    fleet has no negotiated prices, so ``list_price`` equals it and ``cost_at_list`` equals ``cost``.
    """
    rows = []
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    for line in fleet.cost_lines("gcp", day):
        name, global_name = _global_name(line, fleet)
        r = fleet.by_id.get(line.resource_id or "")
        credit = line.effective_cost - line.billed_cost
        costs, credits = _split(line.billed_cost, 24), _split(credit, 24)
        price = (
            (line.billed_cost / Decimal(str(line.usage_quantity))).quantize(Decimal("0.000000001"))
            if line.usage_quantity
            else None
        )
        for h in range(24):
            start = midnight + timedelta(hours=h)
            exported = start + export_delay
            rows.append(
                {
                    "billing_account_id": line.billing_account_id,
                    "service": {
                        "id": line.service_name.upper().replace(" ", "-")[:14],
                        "description": line.service_name,
                    },
                    "sku": {"id": f"SKU-{zlib.crc32(line.sku.encode()) % 10**8:08d}", "description": line.sku},
                    "usage_start_time": start,
                    "usage_end_time": start + timedelta(hours=1),
                    "project": {
                        "id": line.sub_account_id,
                        "number": str(zlib.crc32(line.sub_account_id.encode())),
                        "name": line.sub_account_id,
                        "labels": [],
                        "ancestry_numbers": "/123456/",
                    },
                    "labels": [{"key": k, "value": v} for k, v in sorted(line.tags.items())],
                    "system_labels": [],
                    "location": {
                        "location": line.region,
                        "country": "US" if (line.region or "").startswith("us") else "BE",
                        "region": line.region,
                        "zone": f"{line.region}-a" if r and r.resource_type == "gce_instance" else None,
                    },
                    "tags": [],
                    "transaction_type": "GOOGLE",
                    "seller_name": None,
                    "export_time": exported,
                    "cost": float(costs[h]),
                    "cost_at_list": float(costs[h]),
                    "currency": line.currency,
                    "currency_conversion_rate": 1.0,
                    "usage": {
                        "amount": line.usage_quantity / 24 * 3600,
                        "unit": "seconds",
                        "amount_in_pricing_units": line.usage_quantity / 24,
                        "pricing_unit": "hour",
                    },
                    "credits": [_credit(line, credits[h])] if credit else [],
                    "invoice": {"month": day.strftime("%Y%m")},
                    "cost_type": {"Usage": "regular", "Tax": "tax", "Adjustment": "adjustment"}.get(
                        line.charge_category, "regular"
                    ),
                    "adjustment_info": None,
                    "_PARTITIONTIME": datetime(exported.year, exported.month, exported.day, tzinfo=timezone.utc),
                    "resource": {"name": name, "global_name": global_name},
                    "price": {
                        "effective_price": price,
                        "tier_start_amount": Decimal(0),
                        "unit": "hour",
                        "pricing_unit_quantity": Decimal(1),
                        "list_price": price,
                    },
                    "subscription": {"instance_id": commitment_of(line)},
                }
            )
    return rows


@dataclass
class _Job:
    project: str
    job_id: str
    sql: str
    error: BigQueryError | None = None
    result: pa.Table | None = None
    bytes_processed: int = 0
    bytes_billed: int = 0
    location: str = "US"


@dataclass
class BigQueryDouble:
    """Holds the export tables and runs jobs against them."""

    billing_project: str
    dataset: str
    billing_account_id: str
    queries: list[dict] = field(default_factory=list)  # every received query config, in order
    denied_projects: set[str] = field(default_factory=set)  # no bigquery.jobs.create here
    fail_next: list[int] = field(default_factory=list)  # HTTP 5xx statuses to answer next calls with
    # Optional (benchmarks): gate(method, path) runs before every request is answered; it may
    # sleep (network latency) and may raise BigQueryError to refuse it (e.g. rateLimitExceeded).
    gate: Callable[[str, str], None] | None = None

    def __post_init__(self):
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone='UTC'")
        self.con.execute(f"ATTACH ':memory:' AS \"{self.billing_project}\"")
        self.con.execute(f'CREATE SCHEMA "{self.billing_project}"."{self.dataset}"')
        suffix = self.billing_account_id.replace("-", "_")
        self.standard_table = f"gcp_billing_export_v1_{suffix}"
        self.detailed_table = f"gcp_billing_export_resource_v1_{suffix}"
        for table, extra in ((self.standard_table, ""), (self.detailed_table, DETAILED_EXTRA)):
            self.con.execute(f"CREATE TABLE {self._fq(table)} ({EXPORT_COLUMNS}{extra})")
        self.jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def _fq(self, table: str) -> str:
        return f'"{self.billing_project}"."{self.dataset}"."{table}"'

    def load(self, rows: list[dict]) -> None:
        """Append export rows to both tables (the standard one has no DETAILED_ONLY columns)."""
        if not rows:
            return
        with self._lock:
            detailed = self.con.sql(f"SELECT * FROM {self._fq(self.detailed_table)} LIMIT 0").to_arrow_table()
            table = pa.Table.from_pylist(rows, schema=detailed.schema)
            self.con.register("incoming", table)
            cols = ", ".join(f'"{c}"' for c in table.column_names if c not in DETAILED_ONLY)
            self.con.execute(f"INSERT INTO {self._fq(self.detailed_table)} SELECT * FROM incoming")
            self.con.execute(f"INSERT INTO {self._fq(self.standard_table)} SELECT {cols} FROM incoming")
            self.con.unregister("incoming")

    def load_fleet(self, fleet: Fleet, start: date, end: date) -> None:
        day = start
        while day < end:
            self.load(export_rows(fleet, day))
            day += timedelta(days=1)

    # -- jobs -----------------------------------------------------------------------
    def insert_job(self, project: str, body: dict) -> dict:
        if project in self.denied_projects:
            raise BigQueryError(
                403,
                "accessDenied",
                f"Access Denied: Project {project}: User does not have bigquery.jobs.create "
                f"permission in project {project}.",
            )
        ref = body.get("jobReference", {})
        config = body.get("configuration", {}).get("query", {})
        job = _Job(
            project, ref.get("jobId") or uuid.uuid4().hex, config.get("query", ""), location=ref.get("location") or "US"
        )
        with self._lock:
            self.queries.append(config)
            self.jobs[job.job_id] = job
        try:
            self._run(job, config)
        except BigQueryError as exc:
            # "Estimate query costs" (cloud.google.com/bigquery/docs/estimate-costs): a dry run validates
            # the query, and an invalid one is refused outright (HTTP 400), no job created
            # (googleapis/python-bigquery#118: "the stats, or an exception if the query is invalid").
            if body.get("configuration", {}).get("dryRun"):
                with self._lock:
                    del self.jobs[job.job_id]
                raise
            job.error = exc
        # REST reference, jobs.insert: "Starts a new asynchronous job": the answer says RUNNING and the
        # client asks jobs.get for the outcome (JobStatus.state PENDING, RUNNING, DONE); a dry run is DONE.
        return self.job_resource(job, done=bool(body.get("configuration", {}).get("dryRun")))

    def job_resource(self, job: _Job, done: bool = True) -> dict:
        status: dict = {"state": "DONE" if done else "RUNNING"}
        if job.error and done:
            status["errorResult"] = {"reason": job.error.reason, "message": job.error.message}
            status["errors"] = [status["errorResult"]]
        return {
            "kind": "bigquery#job",
            "id": f"{job.project}:{job.location}.{job.job_id}",
            "jobReference": {"projectId": job.project, "jobId": job.job_id, "location": job.location},
            "configuration": {"query": {"query": job.sql, "useLegacySql": False}, "jobType": "QUERY"},
            "status": status,
            "statistics": {
                "creationTime": "0",
                "startTime": "0",
                "endTime": "0",
                "totalBytesProcessed": str(job.bytes_processed),
                "query": {
                    "totalBytesProcessed": str(job.bytes_processed),
                    "totalBytesBilled": str(job.bytes_billed),
                    "cacheHit": False,
                    "statementType": "SELECT",
                },
            },
        }

    def query_results(self, project: str, job_id: str, params: dict) -> dict:
        job = self.jobs.get(job_id)
        if job is None:
            raise BigQueryError(404, "notFound", f"Not found: Job {project}:{job_id}")
        if job.error:
            raise job.error
        table = job.result
        start = int(params.get("pageToken", params.get("startIndex", "0")) or 0)
        size = int(params.get("maxResults", "1000"))
        out = {
            "kind": "bigquery#getQueryResultsResponse",
            "jobComplete": True,
            "jobReference": {"projectId": job.project, "jobId": job.job_id, "location": job.location},
            "schema": {"fields": [_field(f) for f in table.schema]},
            "totalRows": str(table.num_rows),
            "totalBytesProcessed": str(job.bytes_processed),
            "cacheHit": False,
        }
        if size:
            # BigQuery REST, DataFormatOptions.useInt64Timestamp: "Output timestamp as usec int64".
            # google-cloud-bigquery sets it to Python True (client.py), sent on the URL as "True".
            use_int64 = str(params.get("formatOptions.useInt64Timestamp")).lower() == "true"
            page = table.slice(start, size).to_pylist()
            out["rows"] = [
                {"f": [{"v": _encode(row[f.name], f.type, use_int64)} for f in table.schema]} for row in page
            ]
            if start + size < table.num_rows:
                out["pageToken"] = str(start + size)
        return out

    def _run(self, job: _Job, config: dict) -> None:
        try:
            tree = sqlglot.parse_one(job.sql, read="bigquery")
        except sqlglot.errors.ParseError as exc:
            raise BigQueryError(400, "invalidQuery", f"Syntax error: {exc}") from None
        if not isinstance(tree, exp.Query):
            raise BigQueryError(400, "invalidQuery", "this double runs SELECT queries only")
        tables = list(tree.find_all(exp.Table))
        for t in tables:
            self._check_table(t, job.project)
        values = _parameters(config.get("queryParameters", []))
        job.bytes_processed = sum(self._scanned_bytes(tree, t, values) for t in tables)
        job.bytes_billed = max(MIN_BILLED_BYTES * len(tables), -(-job.bytes_processed // 2**20) * 2**20)
        cap = config.get("maximumBytesBilled")
        if cap is not None and job.bytes_billed > int(cap):
            raise BigQueryError(
                400,
                "bytesBilledLimitExceeded",
                f"Query exceeded limit for bytes billed: {int(cap)}. {job.bytes_billed} or higher required.",
            )
        duck = _to_duckdb(tree)
        try:
            with self._lock:
                job.result = self.con.sql(duck, params=values).to_arrow_table()
        except duckdb.Error as exc:
            raise BigQueryError(400, "invalidQuery", _googlesql_error(str(exc).splitlines()[0], job.sql)) from None

    def _check_table(self, t: exp.Table, default_project: str) -> None:
        project, dataset, name = t.catalog or default_project, t.db, t.name
        if not dataset:
            raise BigQueryError(400, "invalidQuery", f'Table "{name}" must be qualified with a dataset')
        if project != self.billing_project or dataset != self.dataset:
            raise BigQueryError(404, "notFound", f"Not found: Dataset {project}:{dataset} was not found in location US")
        if name not in (self.standard_table, self.detailed_table):
            raise BigQueryError(
                404, "notFound", f"Not found: Table {project}:{dataset}.{name} was not found in location US"
            )
        t.set("catalog", exp.to_identifier(self.billing_project, quoted=True))

    def _scanned_bytes(self, tree: exp.Expression, table: exp.Table, values: dict) -> int:
        """Rows in the partitions kept by _PARTITIONTIME predicates x referenced column widths."""
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select else None
        pruning = (
            [
                c
                for c in (where.this.flatten() if isinstance(where.this, exp.And) else [where.this])
                if {col.name.upper() for col in c.find_all(exp.Column)} == {"_PARTITIONTIME"}
            ]
            if where
            else []
        )
        count_sql = exp.select("count(*)").from_(table.copy())
        for condition in pruning:
            count_sql = count_sql.where(condition.copy())
        with self._lock:
            used = {n: v for n, v in values.items() if f"@{n}" in count_sql.sql("bigquery")}
            rows = self.con.execute(_to_duckdb(count_sql), used).fetchall()[0][0]
        referenced = {(c.table if c.table and c.table in COLUMN_BYTES else c.name) for c in tree.find_all(exp.Column)}
        return rows * sum(w for c, w in COLUMN_BYTES.items() if c in referenced or c.upper() in referenced)


_UNKNOWN_NAME = re.compile(
    r'Referenced (?:table|column) "(?P<a>[^"]+)" not found|does not have a column named "(?P<b>[^"]+)"'
)


def _googlesql_error(duckdb_message: str, sql: str) -> str:
    """DuckDB's error for a name the table lacks, as BigQuery words it: "Unrecognized name: price at
    [9:5]" (line:column of the name in the query; googleapis/python-bigquery#104,
    GoogleCloudPlatform/bigquery-utils#104). Other errors keep DuckDB's words."""
    m = _UNKNOWN_NAME.search(duckdb_message)
    if not m:
        return duckdb_message
    name = m.group("a") or m.group("b")
    at = re.search(rf"\b{re.escape(name)}\b", sql)
    if not at:
        return f"Unrecognized name: {name}"
    line = sql.count("\n", 0, at.start()) + 1
    column = at.start() - (sql.rfind("\n", 0, at.start()) + 1) + 1
    return f"Unrecognized name: {name} at [{line}:{column}]"


def _to_duckdb(tree: exp.Expression) -> str:
    """GoogleSQL -> DuckDB, as ``sqlglot.transpile(read="bigquery", write="duckdb")`` does, except
    that a bare NUMERIC keeps BigQuery's precision (38, 9) instead of DuckDB's default (18, 3)."""

    def numeric(node):
        if isinstance(node, exp.DataType) and node.is_type("decimal") and not node.expressions:
            return exp.DataType.build("DECIMAL(38, 9)", dialect="duckdb")
        return node

    return tree.copy().transform(numeric).sql(dialect="duckdb")


def _parameters(params: list[dict]) -> dict:
    """Named query parameters as Python values DuckDB can bind."""
    out = {}
    for p in params:
        kind = p["parameterType"]["type"]
        raw = p["parameterValue"].get("value")
        if raw is None:
            value = None
        elif kind == "TIMESTAMP":
            text = raw.replace(" UTC", "+00:00").replace("Z", "+00:00")
            value = datetime.fromisoformat(text)
            value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        elif kind == "DATE":
            value = date.fromisoformat(raw)
        elif kind in ("INT64", "INTEGER"):
            value = int(raw)
        elif kind in ("NUMERIC", "BIGNUMERIC"):
            value = Decimal(raw)
        elif kind in ("FLOAT64", "FLOAT"):
            value = float(raw)
        elif kind in ("BOOL", "BOOLEAN"):
            value = raw.lower() == "true"
        else:
            value = raw
        out[p["name"]] = value
    return out


def _field(f: pa.Field) -> dict:
    t, mode = f.type, "NULLABLE"
    if pa.types.is_list(t):
        t, mode = t.value_type, "REPEATED"
    out = {"name": f.name, "mode": mode}
    if pa.types.is_struct(t):
        out.update(type="RECORD", fields=[_field(t.field(i)) for i in range(t.num_fields)])
    elif pa.types.is_decimal(t):
        out["type"] = "NUMERIC" if t.scale <= 9 else "BIGNUMERIC"
    else:
        out["type"] = (
            "STRING"
            if pa.types.is_string(t) or pa.types.is_large_string(t)
            else "INTEGER"
            if pa.types.is_integer(t)
            else "FLOAT"
            if pa.types.is_floating(t)
            else "BOOLEAN"
            if pa.types.is_boolean(t)
            else "TIMESTAMP"
            if pa.types.is_timestamp(t)
            else "DATE"
            if pa.types.is_date(t)
            else "STRING"
        )
    return out


def _encode(value, t: pa.DataType, use_int64: bool):
    """A value in the REST API's row encoding (strings, {"f": [...]}, [{"v": ...}])."""
    if value is None:
        return None
    if pa.types.is_list(t):
        return [{"v": _encode(v, t.value_type, use_int64)} for v in value]
    if pa.types.is_struct(t):
        return {"f": [{"v": _encode(value[t.field(i).name], t.field(i).type, use_int64)} for i in range(t.num_fields)]}
    if pa.types.is_timestamp(t):
        micros = int((value - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1))
        return str(micros) if use_int64 else f"{micros / 1e6:.6f}"
    if pa.types.is_date(t):
        return value.isoformat()
    if pa.types.is_boolean(t):
        return "true" if value else "false"
    if pa.types.is_floating(t):
        return repr(float(value))
    return str(value)


class _Handler(BaseHTTPRequestHandler):
    double: BigQueryDouble

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = url.path.removeprefix("/bigquery/v2/").strip("/").split("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        try:
            if self.double.gate is not None:
                self.double.gate(method, url.path)
            if self.double.fail_next:
                status = self.double.fail_next.pop(0)
                raise BigQueryError(status, "backendError", "simulated backend error")
            if method == "POST" and len(parts) == 3 and parts[0] == "projects" and parts[2] == "jobs":
                return self._send(200, self.double.insert_job(parts[1], body))
            if method == "GET" and len(parts) == 4 and parts[2] == "jobs":
                job = self.double.jobs.get(parts[3])
                if job is None:
                    raise BigQueryError(404, "notFound", f"Not found: Job {parts[1]}:{parts[3]}")
                return self._send(200, self.double.job_resource(job))
            if method == "GET" and len(parts) == 4 and parts[2] == "queries":
                return self._send(200, self.double.query_results(parts[1], parts[3], params))
            if method == "POST" and len(parts) == 3 and parts[2] == "queries":
                config = dict(body, query=body.get("query", ""))
                job = self.double.insert_job(
                    parts[1], {"configuration": {"query": config}, "jobReference": {"location": body.get("location")}}
                )
                job_id = job["jobReference"]["jobId"]
                return self._send(
                    200,
                    self.double.query_results(
                        parts[1],
                        job_id,
                        {
                            "maxResults": str(body.get("maxResults", 1000)),
                            "formatOptions.useInt64Timestamp": str(
                                body.get("formatOptions", {}).get("useInt64Timestamp", False)
                            ).lower(),
                        },
                    ),
                )
            raise BigQueryError(404, "notFound", f"no such endpoint: {method} {url.path}")
        except BigQueryError as exc:
            self._send(exc.status, exc.body())

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")


def start_bigquery_server(double: BigQueryDouble) -> ThreadingHTTPServer:
    """Serve the double on a free 127.0.0.1 port (``server.server_address[1]``), in a thread."""
    handler = type("BigQueryHandler", (_Handler,), {"double": double})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="bigquery-double", daemon=True).start()
    return server
