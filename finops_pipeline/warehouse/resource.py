"""The warehouse (the lake at FINOPS_LAKE_URI, default ``<FINOPS_DATA_DIR>/lake``; the catalog
under FINOPS_DATA_DIR) and the pipeline's own FINOPS_* settings as a Dagster resource."""

from __future__ import annotations

from typing import ClassVar

from finops_pipeline.settings import SettingsResource


class WarehouseResource(SettingsResource):
    """Where the lake and catalog live and how the marts judge the data: an unset field takes
    its FINOPS_* variable from the environment. (FINOPS_START_DATE shapes the partitions, which
    exist before any run: it stays an environment variable.)"""

    VARIABLES: ClassVar[dict[str, str]] = {
        "usage_integration_enabled": "USAGE_INTEGRATION_ENABLED",
        "data_dir": "FINOPS_DATA_DIR",
        "lake_uri": "FINOPS_LAKE_URI",
        "restatement_days": "FINOPS_RESTATEMENT_DAYS",
        "predictions_dir": "FINOPS_PREDICTIONS_DIR",
        "metrics_coverage_floor": "FINOPS_METRICS_COVERAGE_FLOOR",
        "metrics_concurrency": "FINOPS_METRICS_CONCURRENCY",
        "tag_match_key": "FINOPS_TAG_MATCH_KEY",
        "rules_file": "FINOPS_RULES_FILE",
        "reconcile_tolerance_pct": "FINOPS_RECONCILE_TOLERANCE_PCT",
        "reconcile_tolerance_amount": "FINOPS_RECONCILE_TOLERANCE_AMOUNT",
        "anomaly_thresholds_file": "FINOPS_ANOMALY_THRESHOLDS_FILE",
    }

    usage_integration_enabled: bool | None = None
    data_dir: str | None = None
    lake_uri: str | None = None
    restatement_days: int | None = None
    predictions_dir: str | None = None
    metrics_coverage_floor: float | None = None
    metrics_concurrency: int | None = None
    tag_match_key: str | None = None
    rules_file: str | None = None
    reconcile_tolerance_pct: float | None = None
    reconcile_tolerance_amount: str | None = None
    anomaly_thresholds_file: str | None = None
