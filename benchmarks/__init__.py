"""Benchmarks: each one measures our code and its baseline in the same run and reports the ratio.

Run ``python -m benchmarks`` (quick) or ``python -m benchmarks --full`` (the issue's sizes);
see docs/performance.md. Nothing here is imported by the pipeline.
"""
