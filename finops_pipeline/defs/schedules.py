"""The daily schedule: yesterday plus each cloud's restated days, then the marts those days feed.

Billing restates for days after the fact (late usage records, credits, refunds), each provider
in its own way: every morning the run re-pulls what :mod:`finops_pipeline.clouds.restatement` plans per cloud
(AWS estimated days and the unsettled previous month, GCP days with newer export rows, Azure's
open month), at least the last ``FINOPS_RESTATEMENT_DAYS`` days, and yesterday. It is one run
over the partition range from the earliest planned day to yesterday: the cost assets fetch
only their planned days (one API window) and keep the other landed days, the metrics assets
fetch only the newest day, and the daily marts downstream recompute the range. Rerunning a
range replaces its partitions, so a retried or repeated run never duplicates rows.
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

from finops_pipeline.clouds import PROVIDERS
from finops_pipeline.clouds.aws import assets as aws_assets
from finops_pipeline.clouds.aws.resource import AwsResource
from finops_pipeline.clouds.azure import assets as azure_assets
from finops_pipeline.clouds.azure.resource import AzureResource
from finops_pipeline.clouds.exports import changed_export_days
from finops_pipeline.clouds.gcp import assets as gcp_assets
from finops_pipeline.clouds.gcp.resource import GcpResource
from finops_pipeline.clouds.ingest import METRICS_REFETCH_TAG
from finops_pipeline.clouds.restatement import (
    RESTATE_TAG_PREFIX,
    Plan,
    encode_plan,
    plan_restatement,
)
from finops_pipeline.defs import marts
from finops_pipeline.defs.partitions import DAILY
from finops_pipeline.settings import settings_of
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.resource import WarehouseResource


def source_class(provider: str):
    """The bulk source class of a cloud (``clouds/<cloud>/source.py``), imported when needed."""
    import importlib

    module = importlib.import_module(f"finops_pipeline.clouds.{provider}.source")
    return getattr(module, f"{provider.capitalize()}Source")


RAW_ASSETS = {p: [AssetKey(f"{p}_cost"), AssetKey(f"{p}_metrics")] for p in PROVIDERS}
# Whole-run retries on top of each raw asset's own retry policy (needs run_retries
# enabled on the instance, see docs/operations.md).
SCHEDULED_RUN_MAX_RETRIES = 2


# Every asset a scheduled run can hold (the marts read them all).
ASSETS = [*aws_assets.defs.assets, *gcp_assets.defs.assets, *azure_assets.defs.assets, *marts.defs.assets]


def daily_keys(providers, assets=ASSETS) -> list[AssetKey]:
    """Raw assets of these clouds and every asset downstream of them that shares their daily partitions.

    A run over a range of days can only hold assets partitioned like that range; a mart with
    another grain (monthly, unpartitioned) is left to its own automation instead of making the
    whole job invalid.
    """
    downstream = {key for p in providers for key in RAW_ASSETS[p]}
    grown = True
    while grown:
        grown = False
        for assets_def in assets:
            if not set(assets_def.keys) <= downstream and downstream & set(assets_def.dependency_keys):
                downstream |= set(assets_def.keys)
                grown = True
    daily = {key for assets_def in assets if assets_def.partitions_def == DAILY for key in assets_def.keys}
    return sorted(downstream & daily, key=lambda k: k.to_user_string())


finops_daily_job = define_asset_job(
    "finops_daily_job",
    selection=AssetSelection.assets(*daily_keys(PROVIDERS)),
    description="Raw assets of every cloud and the daily marts they feed, over a range of UTC days.",
)


def restatement_plans(enabled: list[str], settings, today: date) -> tuple[dict[str, Plan], list[str]]:
    """Each enabled cloud's restatement plan for ``today``'s run, and notes on what could not be
    planned (a failed GCP export check falls back to the fixed window and says so)."""
    plans, notes = {}, []
    for provider in enabled:
        newer = changed = None
        if settings.reads_export_files(provider):

            def changed(provider=provider):
                try:
                    reader = source_class(provider).from_settings(settings).export_reader()
                    return changed_export_days(reader, Lake(settings.lake_root), settings.start_date, today)
                except Exception as exc:  # noqa: BLE001 - the run still re-pulls the fixed window
                    notes.append(f"{provider} export manifest check failed, only the fixed window is re-pulled: {exc}")
                    return {}

        if provider == "gcp":
            from finops_pipeline.clouds.gcp.source import GcpSource

            def newer(landed, since):
                try:
                    return GcpSource.from_settings(settings).days_with_newer_export_rows(landed, since)
                except Exception as exc:  # noqa: BLE001 - the run still re-pulls the fixed window
                    notes.append(f"gcp export check failed, only the fixed window is re-pulled: {exc}")
                    return []

        plans[provider] = plan_restatement(provider, settings, today, newer, changed)
    return plans, notes


@schedule(
    job=finops_daily_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="06:00 UTC: yesterday plus each cloud's restated days (clouds/restatement.py), every enabled "
    "cloud, then the marts.",
)
def finops_daily(
    context: ScheduleEvaluationContext,
    aws: AwsResource,
    gcp: GcpResource,
    azure: AzureResource,
    warehouse: WarehouseResource,
):
    settings = settings_of(aws, gcp, azure, warehouse)
    enabled = [p for p in PROVIDERS if settings.provider_enabled(p)]
    if not enabled:
        reasons = "; ".join(f"{p}: {settings.disabled_reason(p)}" for p in PROVIDERS)
        return SkipReason(f"no cloud is enabled ({reasons})")
    tick = context.scheduled_execution_time or datetime.now(timezone.utc)
    today = tick.astimezone(timezone.utc).date()
    yesterday = today - timedelta(days=1)
    if yesterday < settings.start_date:
        return SkipReason(f"yesterday ({yesterday}) is before FINOPS_START_DATE ({settings.start_date})")
    plans, notes = restatement_plans(enabled, settings, today)
    for note in notes:
        context.log.warning(note)
    first = min(min(plan) for plan in plans.values())
    tags = {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": yesterday.isoformat(),
        "dagster/max_retries": str(SCHEDULED_RUN_MAX_RETRIES),
        "finops/clouds": ",".join(enabled),
        METRICS_REFETCH_TAG: "latest",
        **{RESTATE_TAG_PREFIX + p: encode_plan(plan) for p, plan in plans.items()},
    }
    if notes:
        tags["finops/restate_notes"] = "; ".join(notes)[:1000]
    return RunRequest(run_key=f"finops_daily:{first}:{yesterday}", asset_selection=daily_keys(enabled), tags=tags)


# The marts' own automation conditions (defs/marts.py): cost_trend_monthly, which no daily
# range can hold, follows cost_trend_daily; a restated day re-runs the marts that read it; the
# cost report (defs/report.py) follows whatever it reads, once the runs writing it are done.
finops_marts_automation = AutomationConditionSensorDefinition(
    "finops_marts_automation",
    target=AssetSelection.groups("marts", "reports"),
    default_status=DefaultSensorStatus.RUNNING,
    description="Runs the marts whose inputs changed (incl. the monthly trend), then the cost report, as their "
    "automation conditions say.",
)

defs = Definitions(jobs=[finops_daily_job], schedules=[finops_daily], sensors=[finops_marts_automation])
