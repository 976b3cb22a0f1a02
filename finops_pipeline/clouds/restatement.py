"""Which landed cost days each provider may have restated since, and why.

Billing changes after the fact, and each provider says how (docs/operations.md, "Restatement"):
- AWS: Cost Explorer marks unsettled days ``Estimated``; a billing period is refreshed until it
  ends and may still change in the first weeks of the next month.
- GCP: the billing export has no delivery guarantee; rows for a usage day keep arriving for days,
  each with its ``export_time``.
- Azure: the open month changes daily and the previous month is final days after it closes.

The daily schedule asks :func:`plan_restatement` for each enabled cloud, runs one partition range
from the earliest planned day to yesterday, and hands each cost asset its plan in a run tag
(:data:`RESTATE_TAG_PREFIX` + provider). The asset re-pulls exactly those days (and any day of the
range not landed yet) and keeps every other landed day. ``FINOPS_RESTATEMENT_DAYS`` is a floor:
every cloud re-pulls at least that many days before yesterday.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Callable

import pyarrow as pa

from finops_pipeline.settings import Settings
from finops_pipeline.warehouse.lake import Lake

RESTATE_TAG_PREFIX = "finops/restate_"  # + provider (a tag key has one namespace section); value: encode_plan(...)

Plan = dict[date, str]  # day -> why it is re-pulled


def plan_restatement(
    provider: str,
    settings: Settings,
    today: date,
    newer_export_days: Callable[[dict[date, datetime], date], list[date]] | None = None,
    changed_export_days: Callable[[], dict[date, str]] | None = None,
) -> Plan:
    """The cost days of ``provider`` to re-pull on ``today``'s daily run, each with its reason.

    ``newer_export_days(landed, since)`` (GCP) returns the usage days on or after ``since`` whose
    export rows are newer than ``landed[day]`` (when that day was written).
    ``changed_export_days()`` (a cloud whose cost source is its native export) returns the days of
    the billing periods whose manifest changed since they were ingested: the export's manifests
    are its restatement signal, replacing the API rules below.
    """
    yesterday = today - timedelta(days=1)
    plan: Plan = {}

    def add(day: date, reason: str) -> None:
        if settings.start_date <= day <= yesterday:
            plan.setdefault(day, reason)

    add(yesterday, "the newest day")
    this_month = today.replace(day=1)
    previous_month = (this_month - timedelta(days=1)).replace(day=1)
    if settings.reads_export_files(provider):
        for day, reason in (changed_export_days() if changed_export_days else {}).items():
            add(day, reason)
    elif provider == "aws":
        for day in _landed_days(settings, provider, "bool_or(is_estimated)"):
            add(day, "landed rows still estimated by Cost Explorer")
        if today.day <= settings.aws_restatement_settle_day:
            for day in _days(previous_month, this_month):
                add(day, f"previous billing period, may change until day {settings.aws_restatement_settle_day}")
    elif provider == "azure":
        for day in _days(this_month, today):
            add(day, "open month")
        if today.day <= settings.azure_restatement_close_day:
            for day in _days(previous_month, this_month):
                add(day, f"previous month, final after day {settings.azure_restatement_close_day}")
    elif provider == "gcp" and newer_export_days is not None:
        since = yesterday - timedelta(days=settings.gcp_restatement_lookback_days)
        landed = {d: t for d, t in _landed_days(settings, provider, "min(ingested_at)", with_value=True) if d >= since}
        for day in newer_export_days(landed, since):
            add(day, "export rows newer than the landed day")
    for back in range(1, settings.restatement_days + 1):
        add(yesterday - timedelta(days=back), f"within FINOPS_RESTATEMENT_DAYS={settings.restatement_days}")
    return dict(sorted(plan.items()))


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def _landed_days(settings: Settings, provider: str, aggregate: str, with_value: bool = False):
    """Landed cost_daily days of a provider with one aggregate (read from the lake's files)."""
    lake = Lake(settings.lake_root)
    if not any(p["provider"] == provider for p in lake.partitions("cost_daily")):
        return []
    files = lake.glob("cost_daily").replace("/*/*/", f"/provider={provider}/*/", 1)
    with lake.connect() as con:
        rows = con.execute(
            f"SELECT usage_date, {aggregate} FROM read_parquet(?, hive_partitioning = true) "
            "GROUP BY usage_date ORDER BY usage_date",
            [files],
        ).fetchall()
    days = [(date.fromisoformat(str(d)), value) for d, value in rows]
    return days if with_value else [d for d, value in days if value]


def encode_plan(plan: Plan) -> str:
    """A plan as a short run tag value: {reason: "first..last,day,..."} (runs of days collapsed)."""
    by_reason: dict[str, list[date]] = {}
    for day, reason in sorted(plan.items()):
        by_reason.setdefault(reason, []).append(day)
    encoded = {}
    for reason, days in by_reason.items():
        runs, first = [], days[0]
        for prev, day in zip(days, days[1:] + [None]):
            if day is None or day != prev + timedelta(days=1):
                runs.append(first.isoformat() if first == prev else f"{first.isoformat()}..{prev.isoformat()}")
                first = day
        encoded[reason] = ",".join(runs)
    return json.dumps(encoded, separators=(",", ":"))


def decode_plan(value: str) -> Plan:
    """The inverse of :func:`encode_plan`."""
    plan: Plan = {}
    for reason, runs in json.loads(value).items():
        for run in runs.split(","):
            first, _, last = run.partition("..")
            start = date.fromisoformat(first)
            for day in _days(start, date.fromisoformat(last or first) + timedelta(days=1)):
                plan[day] = reason
    return dict(sorted(plan.items()))


_GROUP = ["usage_date", "sub_account_id", "service_name", "billing_currency"]


def keep_landed_detail(lake: Lake, provider: str, cost: pa.Table) -> tuple[pa.Table, list[dict]]:
    """``cost`` for re-pulled days, with landed resource-level rows kept where the source now
    only has service-level rows for the same totals (AWS resource data is served for 14 days
    only: a rerun of an older day must not lose per-resource cost). Returns the rows to write
    and the (day, account, service, currency) groups whose landed detail was kept."""
    days = sorted({d.isoformat() for d in cost["usage_date"].to_pylist()})
    files = [lake.partition_file("cost_daily", {"provider": provider, "usage_date": d}) for d in days]
    files = [f for f in files if lake.exists(f)]
    if not files or not cost.num_rows:
        return cost, []
    keys = ", ".join(_GROUP)
    with lake.connect() as con:
        con.register("fresh", cost)
        con.execute(
            """
            CREATE TEMP TABLE landed AS SELECT * FROM read_parquet(
                ?, hive_partitioning = true, hive_types = {'provider': VARCHAR, 'usage_date': DATE})""",
            [files],
        )
        con.execute(f"""
            CREATE TEMP TABLE kept AS
            WITH f AS (SELECT {keys}, sum(billed_cost) AS b, sum(effective_cost) AS e, count(resource_id) AS n
                       FROM fresh GROUP BY ALL),
                 l AS (SELECT {keys}, sum(billed_cost) AS b, sum(effective_cost) AS e, count(resource_id) AS n
                       FROM landed GROUP BY ALL)
            SELECT {keys} FROM f JOIN l USING ({keys}) WHERE f.n = 0 AND l.n > 0 AND f.b = l.b AND f.e = l.e""")
        kept = [dict(zip(_GROUP, row)) for row in con.execute(f"SELECT {keys} FROM kept ORDER BY ALL").fetchall()]
        if not kept:
            return cost, []
        merged = con.execute(f"""
            SELECT * FROM fresh ANTI JOIN kept USING ({keys})
            UNION ALL BY NAME
            SELECT * FROM landed SEMI JOIN kept USING ({keys})""").to_arrow_table()
    columns = [c for c in cost.column_names if c in merged.column_names]
    return merged.select(columns).cast(cost.select(columns).schema), kept
