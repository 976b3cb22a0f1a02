"""6. The lake on S3 (moto's server on 127.0.0.1) vs the local lake, in one run.

The same steps as benchmarks 2 and 3, once per lake: ingest one day of N resources x 6
metrics (``ingest_throughput.measure``), write D days of metrics and billing (the lake the
marts read, ``mart_build.prepare``), then build every mart over it (``mart_build.build_marts``).
Each step runs in its own child process; the S3 server runs in its own process too. The
ratios are S3 over local: what the object-store round trips (PUT of each partition, LIST
and ranged GETs when DuckDB reads) cost over a local disk, with no network latency, so a
floor for what real S3 would cost (see docs/performance.md).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from datetime import date, timedelta

BUCKET = "finops-bench"


@contextmanager
def _environment(values: dict[str, str]):
    """Spawned children inherit os.environ: set the S3 server's variables for the run."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _lake_steps(sizes, tmp: str, lake_root: str | None) -> dict:
    from benchmarks.child import run_in_child

    ingest = run_in_child(
        "benchmarks.ingest_throughput:measure",
        side="lake",
        resources=sizes.ingest_resources,
        repeats=sizes.ingest_repeats,
        lake_root=lake_root and f"{lake_root}/ingest",
    )
    marts_root = lake_root and f"{lake_root}/marts"
    prepared = run_in_child(
        "benchmarks.mart_build:prepare",
        data_dir=tmp,
        days=sizes.mart_days,
        resources=sizes.mart_resources,
        lake_root=marts_root,
    )
    start = prepared["first_day"]
    end = (date.fromisoformat(start) + timedelta(days=sizes.mart_days)).isoformat()
    marts = run_in_child("benchmarks.mart_build:build_marts", data_dir=tmp, start=start, end=end, lake_root=marts_root)
    return {"ingest": ingest, "write_days": prepared, "marts": marts}


def run(sizes) -> dict:
    from finops_pipeline.simulator.object_stores import serve_s3

    with tempfile.TemporaryDirectory(prefix="bench-lake-local-") as tmp:
        local = _lake_steps(sizes, tmp, None)
    with serve_s3(BUCKET) as env, _environment(env), tempfile.TemporaryDirectory(prefix="bench-lake-s3-") as tmp:
        s3 = _lake_steps(sizes, tmp, f"s3://{BUCKET}/lake")
    return {
        "resources": sizes.ingest_resources,
        "mart_days": sizes.mart_days,
        "mart_resources": sizes.mart_resources,
        "local": local,
        "s3": s3,
        "ratios": {
            "ingest_rows_per_second_s3_over_local": s3["ingest"]["rows_per_second"]
            / local["ingest"]["rows_per_second"],
            "write_days_seconds_s3_over_local": s3["write_days"]["seconds"] / local["write_days"]["seconds"],
            "marts_seconds_s3_over_local": s3["marts"]["seconds"] / local["marts"]["seconds"],
        },
    }


def summary(result: dict) -> list[dict]:
    local, s3, ratios = result["local"], result["s3"], result["ratios"]
    rows_ingest = local["ingest"]["rows"]
    metric_rows = local["write_days"]["metric_rows"]
    span = f"{result['mart_days']} days x {result['mart_resources']:,} resources"
    return [
        {
            "benchmark": f"6a. Ingest one day to S3 ({rows_ingest:,} rows)",
            "ours": f"S3 {s3['ingest']['rows_per_second'] / 1e6:.2f} M rows/s ({s3['ingest']['seconds']:.2f} s)",
            "baseline": f"local {local['ingest']['rows_per_second'] / 1e6:.2f} M rows/s "
            f"({local['ingest']['seconds']:.2f} s)",
            "ratio": f"{ratios['ingest_rows_per_second_s3_over_local']:.2f} of local",
            "target": "measured",
            "result": "info",
        },
        {
            "benchmark": f"6b. Write {span} to S3 ({metric_rows / 1e6:.1f} M rows)",
            "ours": f"S3 {s3['write_days']['seconds']:.1f} s",
            "baseline": f"local {local['write_days']['seconds']:.1f} s",
            "ratio": f"{ratios['write_days_seconds_s3_over_local']:.2f}x",
            "target": "measured",
            "result": "info",
        },
        {
            "benchmark": f"6c. All marts from/to S3, {span}",
            "ours": f"S3 {s3['marts']['seconds']:.1f} s",
            "baseline": f"local {local['marts']['seconds']:.1f} s",
            "ratio": f"{ratios['marts_seconds_s3_over_local']:.2f}x",
            "target": "measured",
            "result": "info",
        },
    ]
