"""The daily schedule: yesterday plus the restatement window, then the marts those days feed.

Billing restates for days after the fact (late usage records, credits, refunds), so every
morning the run re-pulls the last ``FINOPS_RESTATEMENT_DAYS`` days as well as yesterday.
It is one run over a partition range: the cost assets answer the whole range with one
API window, the metrics assets stream it day by day, and the daily marts downstream of
the raw assets recompute the same days. Rerunning a range replaces its partitions, so a
retried or repeated run never duplicates rows.
"""

from datetime import date, datetime, timedelta, timezone

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from finops_pipeline.defs.ingest import METRICS_REFETCH_TAG
from finops_pipeline.defs.partitions import DAILY
from finops_pipeline.settings import get_settings

PROVIDERS = ("aws", "gcp", "azure")
RAW_ASSETS = {p: [AssetKey(f"{p}_cost"), AssetKey(f"{p}_metrics")] for p in PROVIDERS}
# Whole-run retries on top of each raw asset's own retry policy (needs run_retries
# enabled on the instance, see docs/operations.md).
SCHEDULED_RUN_MAX_RETRIES = 2


class DailyPartitioned(AssetSelection):
    """The assets of another selection that share the raw assets' daily partitions.

    A run over a range of days can only hold assets partitioned like that range; a mart
    with another grain (monthly, unpartitioned) is left to its own automation instead of
    making the whole job invalid.
    """

    def __init__(self, child: AssetSelection):
        self.child = child

    def resolve_inner(self, asset_graph, allow_missing: bool):
        keys = self.child.resolve_inner(asset_graph, allow_missing=allow_missing)
        return {key for key in keys if asset_graph.get(key).partitions_def == DAILY}

    def to_selection_str(self) -> str:
        return self.child.to_selection_str()


def daily_selection(providers) -> AssetSelection:
    """Raw assets of these clouds and every daily asset downstream of them."""
    raw = [key for p in providers for key in RAW_ASSETS[p]]
    return DailyPartitioned(AssetSelection.assets(*raw).downstream())


finops_daily_job = define_asset_job(
    "finops_daily_job",
    selection=daily_selection(PROVIDERS),
    description="Raw assets of every cloud and the daily marts they feed, over a range of UTC days.",
)


def restatement_window(tick: datetime, restatement_days: int, first_day: date) -> tuple[date, date]:
    """First and last UTC day (both inclusive) a run at ``tick`` covers: yesterday and N days before."""
    yesterday = tick.astimezone(timezone.utc).date() - timedelta(days=1)
    return max(yesterday - timedelta(days=restatement_days), first_day), yesterday


@schedule(job=finops_daily_job, cron_schedule="0 6 * * *", execution_timezone="UTC",
          default_status=DefaultScheduleStatus.RUNNING,
          description="06:00 UTC: yesterday plus FINOPS_RESTATEMENT_DAYS earlier days, every enabled cloud, then the marts.")
def finops_daily(context: ScheduleEvaluationContext):
    settings = get_settings()
    enabled = [p for p in PROVIDERS if settings.provider_enabled(p)]
    if not enabled:
        reasons = "; ".join(f"{p}: {settings.disabled_reason(p)}" for p in PROVIDERS)
        return SkipReason(f"no cloud is enabled ({reasons})")
    tick = context.scheduled_execution_time or datetime.now(timezone.utc)
    first, last = restatement_window(tick, settings.restatement_days, settings.start_date)
    if last < first:
        return SkipReason(f"yesterday ({last}) is before FINOPS_START_DATE ({settings.start_date})")
    selection = daily_selection(enabled).resolve(context.repository_def.asset_graph)
    return RunRequest(
        run_key=f"finops_daily:{first}:{last}",
        asset_selection=sorted(selection, key=lambda k: k.to_user_string()),
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
            "dagster/max_retries": str(SCHEDULED_RUN_MAX_RETRIES),
            "finops/clouds": ",".join(enabled),
            METRICS_REFETCH_TAG: "latest",
        },
    )


# The marts' own automation conditions (defs/marts.py): cost_trend_monthly, which no daily
# range can hold, follows cost_trend_daily; a restated day re-runs the marts that read it.
finops_marts_automation = AutomationConditionSensorDefinition(
    "finops_marts_automation",
    target=AssetSelection.groups("marts"),
    default_status=DefaultSensorStatus.RUNNING,
    description="Runs the marts whose inputs changed (incl. the monthly trend) as their automation conditions say.",
)

defs = Definitions(jobs=[finops_daily_job], schedules=[finops_daily], sensors=[finops_marts_automation])
