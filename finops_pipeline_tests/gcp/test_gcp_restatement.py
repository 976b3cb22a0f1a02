"""A late GCP export row (a correction days after the usage day) reaches the warehouse through the
daily schedule alone: no manual backfill."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
from dagster import DagsterInstance, build_schedule_context

from finops_pipeline.clouds.gcp.assets import gcp_cost
from finops_pipeline.clouds.restatement import RESTATE_TAG_PREFIX, decode_plan
from finops_pipeline.definitions import RESOURCES, defs
from finops_pipeline.simulator.gcp import run_gcp_doubles
from finops_pipeline.simulator.gcp_bigquery import export_rows
from finops_pipeline_tests.runs import materialize, range_tags, set_environment

# Relative to the real clock: the export's partitions are export days, up to today.
TODAY = datetime.now(timezone.utc).date()
SERVED = (TODAY - timedelta(days=11), TODAY)
LANDED = (TODAY - timedelta(days=10), TODAY - timedelta(days=1))  # [first, end)
LATE_DAY = TODAY - timedelta(days=9)
MORNING = datetime(TODAY.year, TODAY.month, TODAY.day, 6, tzinfo=timezone.utc)


def _iso(back: int) -> str:
    return (TODAY - timedelta(days=back)).isoformat()


def _tick_request():
    schedule = defs.resolve_schedule_def("finops_daily")
    context = build_schedule_context(
        scheduled_execution_time=MORNING, repository_def=defs.get_repository_def(), resources=RESOURCES
    )
    [request] = schedule.evaluate_tick(context).run_requests
    return request


def test_a_late_correction_is_pulled_by_the_next_daily_run(fleet, monkeypatch, data_dir):
    with run_gcp_doubles(fleet, *SERVED) as doubles:
        set_environment(monkeypatch, doubles.environment())
        instance = DagsterInstance.ephemeral()
        assert materialize(
            [gcp_cost],
            instance=instance,
            tags=range_tags(*LANDED),
        ).success
        files = sorted((data_dir / "lake" / "cost_daily" / "provider=gcp").glob("*/part.parquet"))
        written = {p.parent.name: p.stat().st_mtime_ns for p in files}

        # The export adds an adjustment for a day landed a week ago (GCP: no delivery guarantee;
        # rows for a usage day keep arriving, each with its own export_time and partition).
        now = datetime.now(timezone.utc)
        late = dict(export_rows(fleet, LATE_DAY)[0])
        late.update(
            cost=-5.0,
            cost_type="adjustment",
            credits=[],
            export_time=now,
            _PARTITIONTIME=datetime(now.year, now.month, now.day, tzinfo=timezone.utc),
        )
        doubles.bigquery.load([late])

        request = _tick_request()
        plan = decode_plan(request.tags[RESTATE_TAG_PREFIX + "gcp"])
        assert {d.isoformat(): why for d, why in plan.items()} == {
            _iso(9): "export rows newer than the landed day",
            _iso(4): "within FINOPS_RESTATEMENT_DAYS=3",
            _iso(3): "within FINOPS_RESTATEMENT_DAYS=3",
            _iso(2): "within FINOPS_RESTATEMENT_DAYS=3",
            _iso(1): "the newest day",
        }
        assert request.tags["dagster/asset_partition_range_start"] == _iso(9)

        result = materialize([gcp_cost], instance=instance, tags=request.tags)
    assert result.success
    meta = result.asset_materializations_for_node("gcp_cost")[0].metadata
    assert meta["restated_days"].value == {
        "export rows newer than the landed day": [_iso(9)],
        "the newest day": [_iso(1)],
        "within FINOPS_RESTATEMENT_DAYS=3": [_iso(4), _iso(3), _iso(2)],
    }
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    totals = dict(con.execute("SELECT usage_date, sum(billed_cost) FROM cost_daily GROUP BY 1").fetchall())
    assert totals[LATE_DAY] == fleet.daily_total("gcp", LATE_DAY)["USD"] - Decimal("5")
    assert totals[TODAY - timedelta(days=8)] == fleet.daily_total("gcp", TODAY - timedelta(days=8))["USD"]
    # Days not planned were kept as landed, files untouched.
    kept = {
        p.parent.name: p.stat().st_mtime_ns
        for p in (data_dir / "lake" / "cost_daily" / "provider=gcp").glob("*/part.parquet")
    }
    assert [d for d in written if kept[d] == written[d]] == [f"usage_date={_iso(b)}" for b in (10, 8, 7, 6, 5)]
