"""6. AWS Data Export ingest: one billing period of a simulated FOCUS 1.2 export (hourly line items)
ingested into cost_daily vs DuckDB reading the same Parquet files directly.

Ours is what ``aws_cost`` does with AWS_COST_SOURCE=export for a changed period
(``clouds/exports.py:ingest_period``): the manifest's files read from S3 (moto's server) in byte
ranges, streamed batch by batch through the FOCUS mapping (sql/exports/focus_cost_daily.sql),
aggregated to the daily grain and written as one partition per day. It is measured twice: from S3
and from the same files on local disk (the S3 transport's share). The baseline is DuckDB's own
``read_parquet`` over the local files with the same GROUP BY (daily grain, DECIMAL sums), the result
kept in memory and not written: the raw read-and-aggregate speed. Each side runs in its own child
process; file generation and upload are not timed.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

TARGET_RATIO = 0.5  # ours >= half of DuckDB's raw read
TARGET_RSS = 2 * 1024**3
PERIOD = date(2025, 6, 1)  # a closed, 30-day billing period


def generate(resources: int, days: int, directory: str) -> dict:
    """Write the export's data files for ``resources`` EC2 instances over ``days`` days."""
    import pyarrow.parquet as pq

    from benchmarks.fleets import fleet_of
    from finops_pipeline.simulator.aws_export import DataExportDouble

    fleet = fleet_of({("aws", "ec2"): resources})
    export = DataExportDouble(fleet, None, "bench", name="focus-bench")
    files = export.write_files(PERIOD, PERIOD + timedelta(days=days), None, Path(directory))
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    return {"files": [str(f) for f in files], "rows": rows, "bytes": sum(f.stat().st_size for f in files)}


def ingest(side: str, files: list[str], days: int, env: dict | None = None) -> dict:
    """Ours: ingest the period (``side`` s3: through the AWS reader; local: the same files on disk)."""
    import os

    from finops_pipeline.clouds.base import ApiUsage
    from finops_pipeline.clouds.exports import ExportManifest, ExportReader, ingest_period
    from finops_pipeline.warehouse.lake import Lake

    os.environ.update(env or {})
    first, last = PERIOD, PERIOD + timedelta(days=days - 1)
    if side == "s3":
        from finops_pipeline.clouds.aws.source import AwsSource
        from finops_pipeline.settings import get_settings

        reader = AwsSource(get_settings(), today=PERIOD + timedelta(days=40)).export_reader()
        manifest = reader.manifest(PERIOD)
    else:

        class LocalReader(ExportReader):
            provider, source, export_name, api, settle_day = (
                "aws",
                "export:aws_focus_1.2",
                "focus-bench",
                ApiUsage(),
                15,
            )
            today = PERIOD + timedelta(days=40)

            def manifest(self, period):
                return ExportManifest("focus-bench", period, "local", tuple(files), "local files")

            def open_file(self, uri):
                return open(uri, "rb")

        reader = LocalReader()
        manifest = reader.manifest(PERIOD)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        began = time.perf_counter()
        writes, done, _ = ingest_period(reader, manifest, Lake(Path(tmp) / "lake"), first, last)
        seconds = time.perf_counter() - began
    return {
        "rows": done.rows,
        "rows_written": sum(w.rows for w in writes),
        "partitions": len(writes),
        "seconds": seconds,
        "rows_per_second": done.rows / seconds,
        "requests": dict(reader.api.calls),
    }


def duckdb_read(files: list[str]) -> dict:
    """The baseline: DuckDB reads the files and groups them to the same daily grain."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    began = time.perf_counter()
    result = con.sql(
        """
        SELECT CAST(ChargePeriodStart AS DATE) AS usage_date, BillingAccountId, SubAccountId, ServiceName, RegionId,
               ResourceId, SkuId, ChargeCategory, BillingCurrency, SkuPriceId, PricingCategory, ChargeClass,
               CommitmentDiscountId, CommitmentDiscountStatus, CapacityReservationId, CapacityReservationStatus,
               sum(CAST(BilledCost AS DECIMAL(38, 10))) AS billed, sum(CAST(EffectiveCost AS DECIMAL(38, 10))) AS eff,
               sum(CAST(ListCost AS DECIMAL(38, 10))) AS list, sum(ConsumedQuantity) AS quantity,
               any_value(Tags) AS tags, any_value(AvailabilityZone) AS zone
        FROM read_parquet($files) GROUP BY ALL""",
        params={"files": files},
    ).to_arrow_table()
    seconds = time.perf_counter() - began
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0]
    return {"rows": rows, "groups": result.num_rows, "seconds": seconds, "rows_per_second": rows / seconds}


def run(sizes) -> dict:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from benchmarks.child import run_in_child
    from finops_pipeline.simulator.aws import free_port
    from finops_pipeline.simulator.aws_export import DataExportDouble

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    resources, days = sizes.export_resources, sizes.export_days
    with tempfile.TemporaryDirectory(prefix="bench-export-files-") as tmp:
        made = run_in_child("benchmarks.export_ingest:generate", resources=resources, days=days, directory=tmp)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            env = {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY_ID": "AKIABENCHMARK0000000",
                "AWS_SECRET_ACCESS_KEY": "benchmark-not-a-secret",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_COST_SOURCE": "export",
                "AWS_EXPORT_URI": "s3://bench/exports/focus-bench",
            }
            s3 = boto3.client("s3", region_name="us-east-1", **_client_args(env))
            s3.create_bucket(Bucket="bench")
            export = DataExportDouble(None, s3, "bench", name="focus-bench")
            export.publish(PERIOD, [Path(f) for f in made["files"]])
            ours = run_in_child("benchmarks.export_ingest:ingest", side="s3", files=made["files"], days=days, env=env)
        finally:
            server.stop()
        local = run_in_child("benchmarks.export_ingest:ingest", side="local", files=made["files"], days=days)
        raw = run_in_child("benchmarks.export_ingest:duckdb_read", files=made["files"])
    ratio = ours["rows_per_second"] / raw["rows_per_second"]
    local_ratio = local["rows_per_second"] / raw["rows_per_second"]
    return {
        "resources": resources,
        "days": days,
        "line_items": made["rows"],
        "export_bytes": made["bytes"],
        "data_files": len(made["files"]),
        "ours": ours,
        "ours_local_files": local,
        "baseline": raw,
        "ratios": {"export_s3_over_duckdb": ratio, "export_local_over_duckdb": local_ratio},
        "target": {
            "rule": f"ours >= {TARGET_RATIO} x DuckDB's raw read, peak RSS < 2 GiB",
            "pass": ratio >= TARGET_RATIO and ours["peak_rss_bytes"] < TARGET_RSS,
        },
    }


def _client_args(env: dict) -> dict:
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def summary(result: dict) -> list[dict]:
    ours, local, raw = result["ours"], result["ours_local_files"], result["baseline"]
    rows = f"{result['line_items']:,} line items, {result['resources']:,} resources x {result['days']} days"
    return [
        {
            "benchmark": f"6. AWS export ingest from S3 ({rows})",
            "ours": f"{ours['rows_per_second'] / 1e6:.2f} M rows/s ({ours['seconds']:.1f} s, "
            f"peak {ours['peak_rss_bytes'] / 2**20:.0f} MiB)",
            "baseline": f"DuckDB {raw['rows_per_second'] / 1e6:.2f} M rows/s ({raw['seconds']:.1f} s)",
            "ratio": f"{result['ratios']['export_s3_over_duckdb']:.2f} of raw",
            "target": ">= 0.5 of raw, < 2 GiB",
            "result": "pass" if result["target"]["pass"] else "miss",
        },
        {
            "benchmark": "6b. the same, files on local disk",
            "ours": f"{local['rows_per_second'] / 1e6:.2f} M rows/s ({local['seconds']:.1f} s, "
            f"peak {local['peak_rss_bytes'] / 2**20:.0f} MiB)",
            "baseline": f"DuckDB {raw['rows_per_second'] / 1e6:.2f} M rows/s",
            "ratio": f"{result['ratios']['export_local_over_duckdb']:.2f} of raw",
            "target": "info",
            "result": "info",
        },
    ]
