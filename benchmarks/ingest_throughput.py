"""2. Ingest throughput: adapter pages into the lake vs the same rows straight to Parquet.

Ours is what ``clouds/ingest.py`` does for a day: ``Lake.open_partition`` and one
``write`` per adapter page (each page conformed to the table's schema, zstd, temp file
then atomic rename). The baseline writes the same rows, already concatenated into one
Arrow table, with ``pyarrow.parquet.write_table`` and its defaults. Page generation and
concatenation are not timed; each side runs in its own child process.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 0.5  # ours >= half the raw write speed


def measure(side: str, resources: int, repeats: int, lake_root: str | None = None) -> dict:
    """Median seconds to write one day of ``resources`` x 6 metrics (``side``: lake | pyarrow);
    the lake is under a temp dir, or under ``lake_root`` (an ``s3://...`` lake)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks.child import peak_rss_bytes
    from benchmarks.frames import instances, metric_pages
    from benchmarks.sizes import BENCH_DAY
    from finops_pipeline.warehouse.lake import Lake

    fleet = instances(resources)
    pages = metric_pages(list(fleet.resources), fleet, BENCH_DAY)
    table = pa.concat_tables(pages) if side == "pyarrow" else None
    rows = sum(p.num_rows for p in pages)
    setup_rss = peak_rss_bytes()
    times, written = [], 0
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for i in range(repeats):
            began = time.perf_counter()
            if side == "lake":
                lake = Lake(f"{lake_root}/lake{i}" if lake_root else Path(tmp) / f"lake{i}")
                with lake.open_partition("metrics_hourly", {"provider": "aws", "usage_date": BENCH_DAY}) as writer:
                    for page in pages:
                        writer.write(page)
                written = writer.rows
            else:
                path = Path(tmp) / f"raw{i}.parquet"
                pq.write_table(table, path)
                written = pq.read_metadata(path).num_rows
            times.append(time.perf_counter() - began)
    seconds = statistics.median(times)
    return {
        "rows": rows,
        "rows_written": written,
        "pages": len(pages),
        "seconds": seconds,
        "all_seconds": times,
        "rows_per_second": rows / seconds,
        "setup_rss_bytes": setup_rss,
    }


def run(sizes) -> dict:
    from benchmarks.child import run_in_child

    ours = run_in_child(
        "benchmarks.ingest_throughput:measure",
        side="lake",
        resources=sizes.ingest_resources,
        repeats=sizes.ingest_repeats,
    )
    raw = run_in_child(
        "benchmarks.ingest_throughput:measure",
        side="pyarrow",
        resources=sizes.ingest_resources,
        repeats=sizes.ingest_repeats,
    )
    ratio = ours["rows_per_second"] / raw["rows_per_second"]
    return {
        "resources": sizes.ingest_resources,
        "metrics": 6,
        "rows": ours["rows"],
        "ours": ours,
        "baseline": raw,
        "ratios": {"throughput_ours_over_baseline": ratio},
        "target": {"rule": f"ours >= {TARGET_RATIO} x raw pyarrow write speed", "pass": ratio >= TARGET_RATIO},
    }


def summary(result: dict) -> list[dict]:
    ours, raw = result["ours"], result["baseline"]
    ratio = result["ratios"]["throughput_ours_over_baseline"]
    return [
        {
            "benchmark": f"2. Ingest one day ({result['rows']:,} rows)",
            "ours": f"{ours['rows_per_second'] / 1e6:.2f} M rows/s ({ours['seconds']:.2f} s)",
            "baseline": f"{raw['rows_per_second'] / 1e6:.2f} M rows/s ({raw['seconds']:.2f} s)",
            "ratio": f"{ratio:.2f} of raw",
            "target": ">= 0.5 of raw",
            "result": "pass" if result["target"]["pass"] else "miss",
        }
    ]
