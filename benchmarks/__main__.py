"""``python -m benchmarks [--full]``: run the benchmarks, print the table, write the JSON record."""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time
import traceback
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import report
from benchmarks.sizes import SIZES

# gRPC's C core logs every GOAWAY of the in-process Monitoring doubles at INFO; children inherit this.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"

# name -> module with run(sizes) -> dict and summary(result) -> list of table rows
BENCHMARKS = {
    "api": "benchmarks.api_efficiency",
    "ingest": "benchmarks.ingest_throughput",
    "mart": "benchmarks.mart_build",
    "memory": "benchmarks.partition_memory",
    "backfill": "benchmarks.backfill_rate_limits",
    "export": "benchmarks.export_ingest",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the issue's sizes (long); default is quick")
    parser.add_argument("--size", choices=sorted(SIZES), help="quick (default), full, or tiny (smoke test)")
    parser.add_argument("--only", help=f"comma list of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON record (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if args.full and args.size and args.size != "full":
        parser.error("--full and --size disagree")
    sizes = SIZES["full" if args.full else args.size or "quick"]
    selected = list(BENCHMARKS) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in selected if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")

    began = time.perf_counter()
    record = {
        "mode": sizes.name,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": report.git_commit(ROOT),
        "machine": report.machine(),
        "versions": report.versions(),
        "sizes": asdict(sizes),
        "benchmarks": {},
        "summary": [],
    }
    failed = False
    for name in selected:
        module = importlib.import_module(BENCHMARKS[name])
        print(f"[{name}] running ({sizes.name}) ...", file=sys.stderr, flush=True)
        step = time.perf_counter()
        try:
            result = module.run(sizes)
            rows = module.summary(result)
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            failed = True
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            rows = [{"benchmark": name, "result": "error", "ours": str(exc).splitlines()[0][:80]}]
        result["benchmark_seconds"] = round(time.perf_counter() - step, 1)
        record["benchmarks"][name] = result
        record["summary"].extend(rows)
        print(f"[{name}] done in {result['benchmark_seconds']} s", file=sys.stderr, flush=True)
    record["duration_seconds"] = round(time.perf_counter() - began, 1)
    _check_finite(record["benchmarks"])
    report.write_json(record, args.out)
    print(report.format_table(record["summary"]))
    print(f"\n{sizes.name} run in {record['duration_seconds']} s; record written to {args.out}")
    return 1 if failed else 0


def _check_finite(value, path: str = "") -> None:
    """JSON has no NaN/Infinity: a non-finite figure is a bug in a benchmark, said loudly."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"benchmark figure {path} is {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}[{i}]")


if __name__ == "__main__":
    sys.exit(main())
