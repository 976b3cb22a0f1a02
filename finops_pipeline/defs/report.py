"""The cost report asset: one self-contained HTML page over the marts (``finops_pipeline.report``).

Unpartitioned: the page shows the latest state (the last 30 billed days, the current month, the
latest underutilization flags), so there is one current report, replaced atomically each time any
table it reads changes, rather than one page per day that would go stale as billing restates.
"""

from time import perf_counter

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    Definitions,
    MaterializeResult,
    MetadataValue,
    asset,
)

from finops_pipeline.defs.marts import COST_ASSETS
from finops_pipeline.report import QUERIES, REPORT_DAYS, REPORT_FILE, report_path, write_report
from finops_pipeline.settings import settings_of
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.resource import WarehouseResource

# The tables the report reads: cost_daily and cost_forecast (the cost assets) and the marts.
REPORT_DEPS = COST_ASSETS + [
    AssetKey(k) for k in ("utilization_daily", "underutilized_resources", "cost_trend_monthly", "cost_anomalies")
]

# Rebuilt once whatever it reads has been updated and nothing it reads is still running. Not
# eager(): that also waits for every upstream partition to exist, which days before the first
# landed billing never will.
REPORT_AUTOMATION = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("after_its_tables_update")


@asset(
    group_name="reports",
    kinds={"html"},
    deps=REPORT_DEPS,
    automation_condition=REPORT_AUTOMATION,
    # Not a table (no column schema): the catalog shows where the page goes and the queries behind it.
    metadata={
        "file": f"<FINOPS_DATA_DIR>/reports/{REPORT_FILE}",
        "queries": MetadataValue.json([f"sql/report/{name}.sql" for name in QUERIES]),
    },
)
def cost_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """The cost report (``<data dir>/reports/cost_report.html``): daily cost per cloud and currency,
    the month's actual vs predicted vs forecast, top underutilized resources, anomalies and
    utilization per resource type; its queries are sql/report/*.sql."""
    started = perf_counter()
    settings = settings_of(warehouse)
    out = report_path(settings.data_dir)
    data = write_report(Lake(settings.lake_root), out, REPORT_DAYS)
    window = f"[{data.start}, {data.end})" if data.start else "no billing yet"
    context.log.info(f"cost report for {window} written to {out}")
    totals = "\n".join(
        f"| {r['provider']} | {r['billing_currency']} | {r['billed_cost']:,.2f} |"
        for r in data.rows.get("window_totals", [])
    )
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(out)),
            "window": window,
            "bytes": out.stat().st_size,
            "anomalies": len(data.rows.get("anomalies", [])),
            "billed_cost": MetadataValue.md("| cloud | currency | billed |\n|---|---|---:|\n" + totals),
            "duration_seconds": round(perf_counter() - started, 3),
        }
    )


defs = Definitions(assets=[cost_report])
