"""The Dagster definitions match the checked-in snapshot (definitions_snapshot.json).

An asset, a dependency, a group, a partitions definition, a check, a policy, the job's selection,
a schedule or a sensor that changes shows here, as a diff, so a change to the graph is seen in
review. To accept a deliberate change:

    UPDATE_SNAPSHOT=1 pytest finops_pipeline_tests/test_definitions_snapshot.py
    # or: python -m finops_pipeline_tests.definitions_snapshot --write

and commit the new JSON with the change that caused it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, Definitions

from finops_pipeline_tests import definitions_snapshot as snap

ROOT = Path(__file__).resolve().parents[1]
HOW_TO_UPDATE = (
    "If the change is deliberate, regenerate and commit the snapshot:\n"
    "  UPDATE_SNAPSHOT=1 pytest finops_pipeline_tests/test_definitions_snapshot.py\n"
    "  (or: python -m finops_pipeline_tests.definitions_snapshot --write)"
)


def _live_snapshot_text() -> str:
    """The snapshot built in a fresh process (it drops FINOPS_* settings: FINOPS_START_DATE's default)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "ignore"
    done = subprocess.run(
        [sys.executable, "-m", "finops_pipeline_tests.definitions_snapshot"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_definitions_match_the_checked_in_snapshot():
    live = _live_snapshot_text()
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        snap.SNAPSHOT_PATH.write_text(live)
    expected = snap.SNAPSHOT_PATH.read_text() if snap.SNAPSHOT_PATH.exists() else ""
    difference = snap.diff(expected, live)
    if difference:
        where = snap.changed_paths(snap.json.loads(expected or "{}"), snap.json.loads(live))
        raise AssertionError(
            "The Dagster definitions changed at: " + ", ".join(where) + "\n" + difference + "\n" + HOW_TO_UPDATE
        )


def test_snapshot_names_the_graph_literally():
    """The checked-in file itself says what the graph is (so a regenerated file is reviewed, not trusted)."""
    saved = snap.SNAPSHOT_PATH.read_text()
    data = snap.json.loads(saved)
    assert sorted(data["assets"]) == [
        "aws_cost",
        "aws_metrics",
        "azure_cost",
        "azure_metrics",
        "cost_anomalies",
        "cost_predictions",
        "cost_report",
        "cost_trend_daily",
        "cost_trend_monthly",
        "gcp_cost",
        "gcp_metrics",
        "underutilized_resources",
        "utilization_daily",
    ]
    assert data["groups"] == ["aws", "azure", "gcp", "marts", "reports"]
    assert data["assets"]["cost_report"]["partitions"] is None  # one current report, not one per day
    assert data["assets"]["aws_cost"]["partitions"]["start"] == "2026-01-01T00:00:00+00:00"  # the default start
    assert data["assets"]["cost_trend_monthly"]["deps"] == {"cost_trend_daily": None}
    assert data["jobs"]["finops_daily_job"]["selection"] == [
        "aws_cost",
        "aws_metrics",
        "azure_cost",
        "azure_metrics",
        "cost_anomalies",
        "cost_trend_daily",
        "gcp_cost",
        "gcp_metrics",
        "underutilized_resources",
        "utilization_daily",
    ]
    assert data["schedules"]["finops_daily"]["cron_schedule"] == "0 6 * * *"


# -- the comparison fails for the changes it exists to catch ---------------------------------


def _differs(changed: Definitions) -> str:
    from finops_pipeline.definitions import defs

    return snap.diff(snap.dumps(snap.build(defs)), snap.dumps(snap.build(changed)))


def _with_specs(func) -> Definitions:
    from finops_pipeline.definitions import defs

    return defs.map_asset_specs(func=func)


def test_a_renamed_asset_shows_in_the_diff():
    from finops_pipeline.clouds.aws import assets as aws
    from finops_pipeline.clouds.azure import assets as azure
    from finops_pipeline.clouds.gcp import assets as gcp
    from finops_pipeline.definitions import RESOURCES, defs
    from finops_pipeline.defs import mart_checks, marts, raw_checks

    renamed = aws.aws_cost.with_attributes(asset_key_replacements={AssetKey("aws_cost"): AssetKey("aws_costs")})
    # (schedules.defs left out: its job names aws_cost, so the renamed code location would not even load)
    changed = Definitions.merge(
        Definitions(assets=[renamed, aws.aws_metrics], resources=RESOURCES),
        gcp.defs,
        azure.defs,
        marts.defs,
        mart_checks.defs,
        raw_checks.defs,
    )
    before, after = snap.build(defs), snap.build(changed)
    assert after["assets"]["aws_costs"]["group"] == "aws"
    # what still names aws_cost (its checks, the marts) now points at an asset nothing materializes
    assert before["assets"]["aws_cost"]["executable"] and not after["assets"]["aws_cost"]["executable"]
    text = snap.diff(snap.dumps(before), snap.dumps(after))
    assert '+    "aws_costs": {' in text


def test_a_changed_group_or_dependency_shows_in_the_diff():
    regrouped = _differs(
        _with_specs(lambda s: s.replace_attributes(group_name="billing") if s.key == AssetKey("gcp_cost") else s)
    )
    assert '-      "group": "gcp",' in regrouped and '+      "group": "billing",' in regrouped

    dropped = _differs(
        _with_specs(
            lambda s: (
                s.replace_attributes(deps=[d for d in s.deps if d.asset_key != AssetKey("cost_predictions")])
                if s.key == AssetKey("cost_trend_daily")
                else s
            )
        )
    )
    assert '-        "cost_predictions": null' in dropped


def test_a_missing_check_shows_in_the_diff():
    from finops_pipeline.clouds.aws import assets as aws
    from finops_pipeline.clouds.azure import assets as azure
    from finops_pipeline.clouds.gcp import assets as gcp
    from finops_pipeline.definitions import RESOURCES, defs
    from finops_pipeline.defs import mart_checks, marts, raw_checks, schedules

    fewer = [
        c
        for c in mart_checks.defs.asset_checks
        if c.check_specs and next(iter(c.check_specs)).name != "cost_trend_daily_totals"
    ]
    changed = Definitions.merge(
        aws.defs,
        gcp.defs,
        azure.defs,
        raw_checks.defs,
        schedules.defs,
        marts.defs,
        Definitions(asset_checks=fewer, resources=RESOURCES),
    )
    text = snap.diff(snap.dumps(snap.build(defs)), snap.dumps(snap.build(changed)))
    assert '-        "cost_trend_daily_totals": {' in text
