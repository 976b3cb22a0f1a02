"""The one shape every raw asset has: fetch a window -> write partitions -> report metadata.

``clouds/<cloud>/assets.py`` (aws, gcp, azure) each declare their two assets
and hand this module an adapter factory; everything else (skipping a disabled cloud,
partition writes, catalog refresh, metadata) happens here once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from time import perf_counter
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    Backoff,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
)

from finops_pipeline.clouds.base import CloudApiError, CloudSource
from finops_pipeline.clouds.exports import ingest_export
from finops_pipeline.clouds.restatement import (
    RESTATE_TAG_PREFIX,
    decode_plan,
    keep_landed_detail,
)
from finops_pipeline.defs.partitions import day_start, days, window
from finops_pipeline.settings import (
    Settings,
    SettingsError,
    SettingsResource,
    settings_of,
)
from finops_pipeline.warehouse.catalog import CatalogError, refresh_catalog
from finops_pipeline.warehouse.lake import Lake, LakeWriteError, PartitionWrite

AdapterFactory = Callable[[Settings], CloudSource]

# Throttling and transient errors are retried inside the adapters; this covers the rest
# (a crashed worker, a provider outage longer than the SDK's retry budget).
RAW_RETRY_POLICY = RetryPolicy(max_retries=2, delay=60, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)

PREVIEW_ROWS = 10

# Run tag: "latest" re-fetches only the range's newest day of metrics (and days not landed
# yet); anything else (a UI backfill) re-fetches every day of the range.
METRICS_REFETCH_TAG = "finops/metrics_refetch"


def markdown_preview(table: pa.Table | None, rows: int = PREVIEW_ROWS) -> MetadataValue:
    """The first rows of a table as Markdown, for the Dagster UI."""
    if table is None or table.num_rows == 0:
        return MetadataValue.md("_no rows_")
    frame = table.slice(0, rows).to_pandas()
    return MetadataValue.md(frame.to_markdown(index=False))


def skipped(context: AssetExecutionContext, provider: str, reason: str) -> MaterializeResult:
    """A disabled cloud: nothing fetched or written, and the UI and log say why."""
    context.log.warning(f"{provider} skipped: {reason}")
    return MaterializeResult(
        metadata={"status": "skipped", "skipped_reason": reason, "rows": 0, "partitions_written": 0}
    )


def _report(
    context: AssetExecutionContext,
    provider: str,
    kind: str,
    adapter: CloudSource,
    settings: Settings,
    started: float,
    span: tuple,
    writes: list,
    preview: pa.Table | None,
    extra: dict,
) -> MaterializeResult:
    """Refresh the catalog views, then describe the run for the UI and the log."""
    for call, why in adapter.api.skipped.items():
        context.log.warning(f"{provider} {kind}: optional {call} skipped, the main rows landed: {why}")
    try:
        catalog = refresh_catalog(settings.data_dir, lake_uri=settings.lake_uri)
    except CatalogError as exc:
        # The partitions are written: retrying would only repeat the paid API calls.
        raise Failure(
            description=f"{provider} {kind}: {len(writes)} partition(s) were written, then the "
            f"catalog refresh failed: {exc}",
            allow_retries=False,
        ) from None
    if catalog.status == "deferred":
        context.log.warning(f"catalog view refresh deferred: {catalog.reason}")
    # A run over several partitions records this metadata on each: a row count only for one.
    one_partition = span[1] - span[0] == timedelta(days=1)
    meta = {
        **({"dagster/row_count": sum(w.rows for w in writes)} if one_partition else {}),
        "status": "ingested",
        "rows": sum(w.rows for w in writes),
        "partitions_written": len(writes),
        "window": f"[{span[0]}, {span[1]})",
        "duration_seconds": round(perf_counter() - started, 3),
        "catalog": catalog.status,
        **adapter.api.as_metadata(),
        "skipped_optional": MetadataValue.json(adapter.api.skipped),
        **extra,
        "preview": markdown_preview(preview),
    }
    context.log.info(
        f"{provider} {kind}: {meta['rows']} rows in {len(writes)} partitions, "
        f"{meta['api_calls']} API calls (~${meta['estimated_api_cost_usd']:.4f})"
    )
    return MaterializeResult(metadata=meta)


@contextmanager
def _failing_clearly():
    """Turn our own errors into a Dagster Failure with the one-line fix, retried only when a
    later attempt can succeed unchanged (never for permissions, settings or bad data)."""
    try:
        yield
    except CloudApiError as exc:
        raise Failure(description=str(exc), allow_retries=exc.retryable) from None
    except (SettingsError, LakeWriteError) as exc:
        raise Failure(description=str(exc), allow_retries=False) from None


def _open_run(context: AssetExecutionContext, provider: str, resources: tuple[SettingsResource, ...]):
    """The run's settings, lake, [start, end) window and start time, or the skipped result of a
    cloud that is not enabled. A settings error fails the run at once (no retries)."""
    with _failing_clearly():
        settings = settings_of(*resources)
    reason = settings.disabled_reason(provider)
    if reason:
        return skipped(context, provider, reason)
    start, end = window(context.partition_key_range)
    return settings, Lake(settings.lake_root), start, end, perf_counter()


def ingest_cost(
    context: AssetExecutionContext, provider: str, build: AdapterFactory, *resources: SettingsResource
) -> MaterializeResult:
    """Fetch billing for the run's partition window and replace those cost_daily partitions.

    A daily run carries each provider's restatement plan (clouds/restatement.py): then only the
    planned days and days not landed yet are fetched and replaced; other landed days are kept."""
    run = _open_run(context, provider, resources)
    if isinstance(run, MaterializeResult):
        return run
    settings, lake, start, end, started = run
    if settings.reads_export_files(provider):
        return ingest_export_cost(context, provider, build, settings, lake, start, end, started)
    todo = {d: "in the run's range" for d in days(start, end)}
    plan_tag = context.run.tags.get(RESTATE_TAG_PREFIX + provider)
    if plan_tag is not None:
        plan = decode_plan(plan_tag)
        landed = {
            date.fromisoformat(p["usage_date"]) for p in lake.partitions("cost_daily") if p["provider"] == provider
        }
        todo = {d: plan.get(d, "not landed yet") for d in todo if d in plan or d not in landed}
        for why in sorted(set(todo.values())):
            context.log.info(f"{provider} cost: re-pulling {sum(1 for r in todo.values() if r == why)} day(s): {why}")
    restated = {why: [d.isoformat() for d, r in todo.items() if r == why] for why in sorted(set(todo.values()))}
    if not todo:
        context.log.info(f"{provider} cost: nothing to re-pull, every day of [{start}, {end}) is landed and settled")
        return MaterializeResult(
            metadata={
                "status": "kept",
                "rows": 0,
                "partitions_written": 0,
                "window": f"[{start}, {end})",
                "restated_days": MetadataValue.json({}),
            }
        )
    fetch_start, fetch_end = min(todo), max(todo) + timedelta(days=1)
    with _failing_clearly():
        adapter = build(settings)
        fetched = adapter.fetch_cost(fetch_start, fetch_end)
        cost = fetched.cost
        if len(todo) < (fetch_end - fetch_start).days:  # keep the landed days between planned ones
            wanted = pa.array(sorted(todo), pa.date32())
            cost = cost.filter(pc.is_in(cost["usage_date"], wanted))
        cost, kept = keep_landed_detail(lake, provider, cost)
        if kept:
            context.log.warning(
                f"{provider} cost: kept the landed resource-level rows of {len(kept)} "
                "(day, account, service) group(s): the source now returns only service-level "
                "rows for the same totals"
            )
        expected = [{"provider": provider, "usage_date": d} for d in sorted(todo)]
        writes = lake.write_partitions("cost_daily", cost, expected=expected)
        forecast_rows = 0
        if fetched.forecast is not None and fetched.forecast.num_rows:
            forecast_rows = sum(w.rows for w in lake.write_partitions("cost_forecast", fetched.forecast))
    totals = _totals_json({d: t for d, t in fetched.provider_totals.items() if d in todo})
    return _report(
        context,
        provider,
        "cost",
        adapter,
        settings,
        started,
        (start, end),
        writes,
        cost,
        {
            "forecast_rows": forecast_rows,
            "provider_totals": MetadataValue.json(totals),
            "restated_days": MetadataValue.json(restated),
            "kept_landed_detail": MetadataValue.json([{k: str(v) for k, v in g.items()} for g in kept]),
        },
    )


def ingest_export_cost(
    context: AssetExecutionContext,
    provider: str,
    build: AdapterFactory,
    settings: Settings,
    lake: Lake,
    start: date,
    end: date,
    started: float,
) -> MaterializeResult:
    """<CLOUD>_COST_SOURCE=export: ingest the billing periods of the window whose export manifest
    changed (clouds/exports.py), each replaced whole; the forecast still comes from the API, and one
    ungrouped API call gives the totals the reconciliation check compares the export with."""
    with _failing_clearly():
        adapter = build(settings)
        reader = adapter.export_reader()
        run = ingest_export(reader, lake, start, end, settings.start_date)
        forecast_rows = 0
        forecast = adapter.fetch_forecast() if end >= reader.today - timedelta(days=1) else None
        if forecast is not None and forecast.num_rows:
            forecast_rows = sum(w.rows for w in lake.write_partitions("cost_forecast", forecast))
    api_totals = {}
    if run.totals:
        try:
            api_totals = adapter.daily_totals(min(run.totals), max(run.totals) + timedelta(days=1)) or {}
        except CloudApiError as exc:  # optional: the export rows landed; the check says it could not compare
            adapter.api.skip("daily_totals", str(exc))
    for period, why in run.ingested.items():
        context.log.info(f"{provider} cost: ingested export period {period:%Y-%m} ({why})")
    if run.unchanged:
        context.log.info(
            f"{provider} cost: export manifest unchanged for {', '.join(f'{p:%Y-%m}' for p in run.unchanged)}"
        )
    return _report(
        context,
        provider,
        "cost",
        adapter,
        settings,
        started,
        (start, end),
        run.writes,
        run.preview,
        {
            "cost_source": reader.source,
            "export": reader.export_name,
            "export_periods_ingested": MetadataValue.json({f"{p:%Y-%m}": why for p, why in run.ingested.items()}),
            "export_periods_unchanged": ", ".join(f"{p:%Y-%m}" for p in run.unchanged) or "none",
            "export_periods_missing": ", ".join(f"{p:%Y-%m}" for p in run.missing) or "none",
            "export_line_items": run.line_items,
            "forecast_rows": forecast_rows,
            "provider_totals": MetadataValue.json(_totals_json(run.totals)),
            "api_totals": MetadataValue.json(_totals_json(api_totals)),
        },
    )


def _totals_json(totals: dict) -> dict:
    return {d.isoformat(): {cur: str(v) for cur, v in sorted(t.items())} for d, t in sorted(totals.items())}


def write_metric_days(
    adapter: CloudSource, lake: Lake, start: date, end: date, concurrency: int = 1, keep: frozenset[date] = frozenset()
) -> tuple[list[PartitionWrite], pa.Table | None]:
    """Stream each UTC day of [start, end) but those in ``keep`` into its metrics_hourly
    partition; returns the writes (in day order) and a preview of the first rows."""

    # Listed once for the run (Azure asks Cost Management; a query per day spent its quota).
    resources = adapter.discover_resources(start, end)

    def one_day(day: date) -> tuple[PartitionWrite, pa.Table | None]:
        preview = None
        with lake.open_partition("metrics_hourly", {"provider": adapter.provider, "usage_date": day}) as writer:
            for page in adapter.iter_metric_frames(
                day_start(day), day_start(day + timedelta(days=1)), resources=resources
            ):
                writer.write(page)
                if preview is None and page.num_rows:
                    preview = page.slice(0, PREVIEW_ROWS)
        return writer.result, preview

    # Days are separate partitions and API windows: fetching several at once keeps a run
    # bound by the API's rate limit rather than by one call's round trip.
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        done = list(pool.map(one_day, [d for d in days(start, end) if d not in keep]))
    return [w for w, _ in done], next((p for _, p in done if p is not None), None)


def ingest_metrics(
    context: AssetExecutionContext, provider: str, build: AdapterFactory, *resources: SettingsResource
) -> MaterializeResult:
    """Stream each day's metric pages of the run's window into its metrics_hourly partition."""
    run = _open_run(context, provider, resources)
    if isinstance(run, MaterializeResult):
        return run
    settings, lake, start, end, started = run
    keep = frozenset()
    if context.run.tags.get(METRICS_REFETCH_TAG) == "latest":
        # Billing restates, metrics do not: the daily run re-fetches cost for the whole
        # restatement window but only the newest day (and any missing day) of metrics.
        landed = {
            date.fromisoformat(p["usage_date"]) for p in lake.partitions("metrics_hourly") if p["provider"] == provider
        }
        keep = frozenset(d for d in days(start, end - timedelta(days=1)) if d in landed)
        if keep:
            context.log.info(f"{provider} metrics: keeping {len(keep)} landed day(s); metrics do not restate")
    with _failing_clearly():
        adapter = build(settings)
        writes, preview = write_metric_days(adapter, lake, start, end, settings.metrics_concurrency, keep)
    rows_by_day = {w.partition["usage_date"]: w.rows for w in writes}
    return _report(
        context,
        provider,
        "metrics",
        adapter,
        settings,
        started,
        (start, end),
        writes,
        preview,
        {"rows_by_day": MetadataValue.json(rows_by_day), "days_kept": len(keep)},
    )
