"""Asset checks that guard the raw tables' contract, and freshness of the raw assets.

Each raw asset gets one check op that reads the partitions the run wrote (all landed
partitions of that cloud when a check is run on its own) and reports several checks.
Contract guards are blocking: when one fails, the marts downstream in the same run are
not built from bad data. Quality signals (coverage, negative values) warn.

Freshness: :func:`with_raw_freshness` gives the raw assets a 36-hour time-window
freshness policy (applied in ``definitions.py``), evaluated by the daemon without runs:
the daily schedule lands each asset every 24 hours, so a missed day shows as failing.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Iterator

import duckdb
import pyarrow.parquet as pq
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    Definitions,
    MetadataValue,
    multi_asset_check,
)

from finops_pipeline.clouds import PROVIDERS
from finops_pipeline.defs.partitions import days, window
from finops_pipeline.settings import settings_of
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.schemas import COST_DAILY, METRICS_HOURLY, TableSpec

COST_TOLERANCE = Decimal("0.01")  # the lake's day total must match the provider's to the cent
SAMPLE_ROWS = 5
# Dagster's freshness daemon marks a raw asset failing when nothing landed for 36 hours.


@dataclass
class Partitions:
    """The lake files of one provider's table for a set of days, open in DuckDB as ``data``."""

    con: duckdb.DuckDBPyConnection
    days: list[date]
    missing: list[date]  # days without a file

    def query(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _checked_days(context: AssetCheckExecutionContext, lake: Lake, spec: TableSpec, provider: str) -> list[date]:
    """The run's partition days, or every landed day when the check runs on its own."""
    if context.has_partition_key_range:
        return days(*window(context.partition_key_range))
    return sorted(date.fromisoformat(p["usage_date"]) for p in lake.partitions(spec.name) if p["provider"] == provider)


def open_partitions(lake: Lake, spec: TableSpec, provider: str, checked: list[date]) -> Partitions:
    """A DuckDB view ``data`` over the given days' files (partition columns included)."""
    files, missing = [], []
    for day in checked:
        path = lake.partition_file(spec.name, {"provider": provider, "usage_date": day})
        (files if lake.exists(path) else missing).append((day, path))
    con = lake.connect()
    con.execute("SET TimeZone = 'UTC'")
    if files:
        selects = [
            f"SELECT {_quote(provider)} AS provider, DATE {_quote(day.isoformat())} AS usage_date, * "
            f"FROM read_parquet({_quote(path)}, hive_partitioning = false)"
            for day, path in files
        ]
        con.execute("CREATE VIEW data AS " + " UNION ALL BY NAME ".join(selects))
    else:
        columns = ", ".join(f'NULL AS "{f.name}"' for f in spec.full_schema)
        con.execute(f"CREATE VIEW data AS SELECT {columns} WHERE false")
    return Partitions(con, checked, [day for day, _ in missing])


def _sample(rows: list[tuple], columns: list[str]) -> MetadataValue:
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join("" if v is None else str(v) for v in row) + " |\n" for row in rows)
    return MetadataValue.md(header + body)


def _days_text(checked: list[date]) -> str:
    # Only failing checks describe their days, and a failure needs rows: ``checked`` is never empty.
    return f"{checked[0]}..{checked[-1]}" if len(checked) > 1 else str(checked[0])


# -- checks shared by both tables ---------------------------------------------------


def check_unique_key(parts: Partitions, spec: TableSpec, provider: str) -> AssetCheckResult:
    key = ", ".join(f'"{c}"' for c in spec.key)
    dupes = parts.query(
        f"SELECT {key}, count(*) AS n FROM data GROUP BY ALL HAVING count(*) > 1 ORDER BY n DESC LIMIT {SAMPLE_ROWS}"
    )
    total = parts.query(f"SELECT count(*) FROM (SELECT {key} FROM data GROUP BY ALL HAVING count(*) > 1)")[0][0]
    meta = {"key": ", ".join(spec.key), "duplicated_keys": total}
    if total:
        meta["sample"] = _sample(dupes, list(spec.key) + ["rows"])
        return AssetCheckResult(
            check_name="unique_key",
            passed=False,
            metadata=meta,
            description=(
                f"{total} key(s) of {spec.name} occur more than once for {provider} {_days_text(parts.days)} "
                f"(key: {', '.join(spec.key)}); see the sample"
            ),
        )
    return AssetCheckResult(check_name="unique_key", passed=True, metadata=meta)


def check_keys_not_null(parts: Partitions, spec: TableSpec, provider: str) -> AssetCheckResult:
    required = [c for c in spec.key if c in spec.partition_by or not spec.schema.field(c).nullable]
    counts = parts.query(
        "SELECT "
        + ", ".join(f'count(*) FILTER (WHERE "{c}" IS NULL OR CAST("{c}" AS VARCHAR) = \'\')' for c in required)
        + " FROM data"
    )[0]
    bad = {c: n for c, n in zip(required, counts) if n}
    meta = {"columns": ", ".join(required), "null_or_empty": MetadataValue.json(bad)}
    if bad:
        listed = ", ".join(f"{c}: {n}" for c, n in bad.items())
        return AssetCheckResult(
            check_name="keys_not_null",
            passed=False,
            metadata=meta,
            description=(
                f"{spec.name} for {provider} {_days_text(parts.days)} has null or empty key values ({listed})"
            ),
        )
    return AssetCheckResult(check_name="keys_not_null", passed=True, metadata=meta)


# -- cost_daily ----------------------------------------------------------------------

MONEY_COLUMNS = ("billed_cost", "effective_cost", "list_cost")


def check_money_types(parts: Partitions, lake: Lake, provider: str) -> AssetCheckResult:
    """Money columns stored as DECIMAL in every file, and a currency code on every row."""
    problems = []
    for day in parts.days:
        path = lake.partition_file(COST_DAILY.name, {"provider": provider, "usage_date": day})
        if not lake.exists(path):
            continue
        schema = pq.read_schema(lake.fs_path(path), filesystem=lake.fs)
        for column in MONEY_COLUMNS:
            if column in schema.names and not str(schema.field(column).type).startswith("decimal"):
                problems.append(f"{day}: {column} is {schema.field(column).type}, not DECIMAL")
    bad_currency = parts.query(
        "SELECT count(*) FROM data WHERE billing_currency IS NULL OR NOT regexp_full_match(billing_currency, '[A-Z]{3}')"
    )[0][0]
    if bad_currency:
        problems.append(f"{bad_currency} row(s) without an ISO 4217 billing_currency")
    meta = {"money_columns": ", ".join(MONEY_COLUMNS), "problems": len(problems)}
    if problems:
        return AssetCheckResult(
            check_name="money_is_decimal_with_currency",
            passed=False,
            metadata=meta,
            description=f"cost_daily for {provider}: " + "; ".join(problems[:SAMPLE_ROWS]),
        )
    return AssetCheckResult(check_name="money_is_decimal_with_currency", passed=True, metadata=meta)


def provider_totals(
    context: AssetCheckExecutionContext, asset_key: AssetKey, day: date, key: str = "provider_totals"
) -> dict[str, Decimal] | None:
    """The provider's own total for a day, from the latest materialization of that partition that
    wrote it (a daily run keeps landed days it did not re-pull; their totals are in an earlier one).
    ``key`` names the metadata entry (``api_totals``: the query API's totals of an export-sourced day)."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[day.isoformat()]), limit=10
    ).records
    for record in records:
        totals = record.asset_materialization.metadata.get(key)
        if totals is not None and day.isoformat() in (totals.value or {}):
            return {currency: Decimal(amount) for currency, amount in totals.value[day.isoformat()].items()}
    return None


def check_provider_total(
    context: AssetCheckExecutionContext, parts: Partitions, asset_key: AssetKey, provider: str
) -> AssetCheckResult:
    """Each day's billed_cost total per currency equals what the provider's API reported at ingest."""
    lake_totals: dict[date, dict[str, Decimal]] = {}
    for day, currency, total in parts.query(
        "SELECT usage_date, billing_currency, sum(billed_cost) FROM data GROUP BY ALL"
    ):
        lake_totals.setdefault(day, {})[currency] = Decimal(total)
    mismatches, unknown = [], []
    for day in parts.days:
        reported = provider_totals(context, asset_key, day)
        if reported is None:
            unknown.append(day)
            continue
        ours = lake_totals.get(day, {})
        for currency in sorted(set(reported) | set(ours)):
            want, got = reported.get(currency, Decimal(0)), ours.get(currency, Decimal(0))
            if abs(want - got) > COST_TOLERANCE:
                mismatches.append((day.isoformat(), currency, str(want), str(got), str(got - want)))
    meta = {
        "days_compared": len(parts.days) - len(unknown),
        "mismatches": len(mismatches),
        "days_without_provider_total": ", ".join(d.isoformat() for d in unknown) or "none",
    }
    if mismatches:
        meta["sample"] = _sample(mismatches[:SAMPLE_ROWS], ["day", "currency", "provider", "lake", "difference"])
        first = mismatches[0]
        return AssetCheckResult(
            check_name="matches_provider_total",
            passed=False,
            metadata=meta,
            description=(
                f"{len(mismatches)} day/currency total(s) of cost_daily differ from what the {provider} API "
                f"reported, e.g. {first[0]} {first[1]}: provider {first[2]}, lake {first[3]}"
            ),
        )
    return AssetCheckResult(check_name="matches_provider_total", passed=True, metadata=meta)


def check_export_matches_api(
    context: AssetCheckExecutionContext, parts: Partitions, asset_key: AssetKey, provider: str, settings
) -> AssetCheckResult:
    """An export-sourced day's billed total per currency is within the tolerance of the query API's
    (``api_totals``: one ungrouped API call the asset makes for the days it wrote). Warns only: the
    export is the provider's own statement, the API's totals may lag or round differently."""
    name = "export_matches_api"
    if not settings.reads_export_files(provider):
        return AssetCheckResult(
            check_name=name,
            passed=True,
            metadata={"status": f"not applicable: {provider} cost is not read from export files"},
        )
    pct = Decimal(str(settings.reconcile_tolerance_pct))
    amount = Decimal(settings.reconcile_tolerance_amount)
    lake_totals: dict[date, dict[str, Decimal]] = {}
    for day, currency, total in parts.query(
        "SELECT usage_date, billing_currency, sum(billed_cost) FROM data GROUP BY ALL"
    ):
        lake_totals.setdefault(day, {})[currency] = Decimal(total)
    differ, compared, unknown = [], [], []
    for day in parts.days:
        api = provider_totals(context, asset_key, day, key="api_totals")
        if api is None:
            unknown.append(day)
            continue
        compared.append(day)
        ours = lake_totals.get(day, {})
        for currency in sorted(set(api) | set(ours)):
            want, got = api.get(currency, Decimal(0)), ours.get(currency, Decimal(0))
            if abs(got - want) > max(amount, abs(want) * pct / 100):
                differ.append((day.isoformat(), currency, str(want), str(got), str(got - want)))
    meta = {
        "days_compared": len(compared),
        "days_without_api_total": ", ".join(d.isoformat() for d in unknown) or "none",
        "tolerance": f"{pct}% or {amount} per day and currency, the larger",
        "days_that_differ": MetadataValue.json(
            [{"day": d, "currency": c, "api": a, "export": e, "difference": x} for d, c, a, e, x in differ]
        ),
    }
    if differ:
        first = differ[0]
        return AssetCheckResult(
            check_name=name,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            metadata=meta,
            description=(
                f"{len(differ)} day/currency total(s) of the {provider} export differ from the API beyond the "
                f"tolerance, e.g. {first[0]} {first[1]}: API {first[2]}, export {first[3]}"
            ),
        )
    return AssetCheckResult(check_name=name, passed=True, metadata=meta)


def check_no_negative_usage(parts: Partitions, provider: str) -> AssetCheckResult:
    n = parts.query("SELECT count(*) FROM data WHERE charge_category = 'Usage' AND usage_quantity < 0")[0][0]
    return AssetCheckResult(
        check_name="no_negative_usage",
        passed=not n,
        severity=AssetCheckSeverity.WARN,
        metadata={"negative_usage_rows": n},
        description=f"{n} Usage row(s) of {provider} cost_daily have a negative usage_quantity" if n else None,
    )


# -- metrics_hourly ------------------------------------------------------------------


def check_hours_in_day(parts: Partitions, provider: str) -> AssetCheckResult:
    rows = parts.query(
        "SELECT usage_date, hour_start FROM data WHERE hour_start < CAST(usage_date AS TIMESTAMPTZ) "
        "OR hour_start >= CAST(usage_date AS TIMESTAMPTZ) + INTERVAL 1 DAY "
        "OR date_trunc('hour', hour_start) <> hour_start ORDER BY ALL"
    )
    meta = {"rows_outside_their_day": len(rows)}
    if rows:
        meta["sample"] = _sample(rows[:SAMPLE_ROWS], ["usage_date", "hour_start"])
        return AssetCheckResult(
            check_name="hours_within_day",
            passed=False,
            metadata=meta,
            description=(
                f"{len(rows)} metrics_hourly row(s) of {provider} have an hour_start outside their UTC "
                f"partition day or not on the hour, e.g. {rows[0][1]} in {rows[0][0]}"
            ),
        )
    return AssetCheckResult(check_name="hours_within_day", passed=True, metadata=meta)


def metrics_coverage(parts: Partitions) -> dict[date, float]:
    """Per day: hours with data / hours expected, over every (resource, metric) seen that day.

    A metric the provider reports once a day (S3 storage, for one) has all its rows at
    00:00 UTC; one point a day is full coverage for it.
    """
    coverage = {day: 0.0 for day in parts.days}
    rows = parts.query("""
        WITH per_series AS (
            SELECT usage_date, resource_id, metric, count(DISTINCT hour_start) AS hours
            FROM data GROUP BY ALL),
        daily_metrics AS (
            SELECT usage_date, metric FROM data GROUP BY ALL
            HAVING bool_and(hour_start = CAST(usage_date AS TIMESTAMPTZ)))
        SELECT s.usage_date,
               sum(least(s.hours, CASE WHEN d.metric IS NULL THEN 24 ELSE 1 END))
             / sum(CASE WHEN d.metric IS NULL THEN 24 ELSE 1 END)
        FROM per_series s LEFT JOIN daily_metrics d USING (usage_date, metric)
        GROUP BY ALL""")
    for day, value in rows:
        coverage[day] = float(value)
    return coverage


def check_coverage(parts: Partitions, provider: str, floor: float) -> AssetCheckResult:
    coverage = metrics_coverage(parts)
    low = {d.isoformat(): round(c, 4) for d, c in sorted(coverage.items()) if c < floor}
    meta = {
        "floor": floor,
        "coverage_by_day": MetadataValue.json({d.isoformat(): round(c, 4) for d, c in sorted(coverage.items())}),
    }
    if low:
        return AssetCheckResult(
            check_name="coverage",
            passed=False,
            severity=AssetCheckSeverity.WARN,
            metadata=meta,
            description=(
                f"metrics coverage of {provider} is below FINOPS_METRICS_COVERAGE_FLOOR={floor} on "
                f"{len(low)} day(s): " + ", ".join(f"{d} {c:.0%}" for d, c in list(low.items())[:SAMPLE_ROWS])
            ),
        )
    return AssetCheckResult(check_name="coverage", passed=True, severity=AssetCheckSeverity.WARN, metadata=meta)


def check_no_negative_values(parts: Partitions, provider: str) -> AssetCheckResult:
    n = parts.query('SELECT count(*) FROM data WHERE least("avg", "max", "min", "sum") < 0')[0][0]
    return AssetCheckResult(
        check_name="no_negative_values",
        passed=not n,
        severity=AssetCheckSeverity.WARN,
        metadata={"negative_rows": n},
        description=f"{n} metrics_hourly row(s) of {provider} have a negative avg/max/min/sum" if n else None,
    )


# -- the check ops -------------------------------------------------------------------


def _skipped(specs: list[AssetCheckSpec], provider: str, reason: str) -> Iterator[AssetCheckResult]:
    for spec in specs:
        yield AssetCheckResult(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=True,
            metadata={"status": "skipped", "skipped_reason": reason},
            description=f"{provider} is not ingested ({reason}): nothing to check",
        )


COST_CHECKS = (
    ("unique_key", True),
    ("keys_not_null", True),
    ("money_is_decimal_with_currency", True),
    ("matches_provider_total", True),
    ("no_negative_usage", False),
    ("export_matches_api", False),
)
METRICS_CHECKS = (
    ("unique_key", True),
    ("keys_not_null", True),
    ("hours_within_day", True),
    ("coverage", False),
    ("no_negative_values", False),
)


def _specs(asset_key: AssetKey, checks) -> list[AssetCheckSpec]:
    return [AssetCheckSpec(name, asset=asset_key, blocking=blocking) for name, blocking in checks]


def _build_contract(provider: str, kind: str, spec: TableSpec, checks, description: str, run):
    """One op holding a raw asset's contract checks: ``run(context, parts, lake, settings)``
    returns their results over the lake partitions the materialization wrote."""
    asset_key = AssetKey(f"{provider}_{kind}")
    specs = _specs(asset_key, checks)

    @multi_asset_check(
        specs=specs,
        name=f"{provider}_{kind}_contract",
        required_resource_keys={provider, "warehouse"},
        description=description,
    )
    def contract(context: AssetCheckExecutionContext):
        settings = settings_of(getattr(context.resources, provider), context.resources.warehouse)
        reason = settings.disabled_reason(provider)
        if reason:
            yield from _skipped(specs, provider, reason)
            return
        lake = Lake(settings.lake_root)
        parts = open_partitions(lake, spec, provider, _checked_days(context, lake, spec, provider))
        try:
            results = run(context, parts, lake, settings)
        finally:
            parts.con.close()
        yield from results

    return contract


def build_cost_checks(provider: str):
    """The cost_daily checks of ``<provider>_cost``, as one op."""
    asset_key = AssetKey(f"{provider}_cost")
    return _build_contract(
        provider,
        "cost",
        COST_DAILY,
        COST_CHECKS,
        f"cost_daily contract of {provider}: keys, money types, provider totals, export vs API totals.",
        lambda context, parts, lake, settings: [
            check_unique_key(parts, COST_DAILY, provider),
            check_keys_not_null(parts, COST_DAILY, provider),
            check_money_types(parts, lake, provider),
            check_provider_total(context, parts, asset_key, provider),
            check_no_negative_usage(parts, provider),
            check_export_matches_api(context, parts, asset_key, provider, settings),
        ],
    )


def build_metrics_checks(provider: str):
    """The metrics_hourly checks of ``<provider>_metrics``, as one op."""
    return _build_contract(
        provider,
        "metrics",
        METRICS_HOURLY,
        METRICS_CHECKS,
        f"metrics_hourly contract of {provider}: keys, hours, coverage.",
        lambda context, parts, lake, settings: [
            check_unique_key(parts, METRICS_HOURLY, provider),
            check_keys_not_null(parts, METRICS_HOURLY, provider),
            check_hours_in_day(parts, provider),
            check_coverage(parts, provider, settings.metrics_coverage_floor),
            check_no_negative_values(parts, provider),
        ],
    )


CONTRACT_CHECKS = [build(p) for p in PROVIDERS for build in (build_cost_checks, build_metrics_checks)]

defs = Definitions(asset_checks=CONTRACT_CHECKS)
