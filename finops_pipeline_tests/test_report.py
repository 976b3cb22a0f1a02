"""The cost report as a person sees it: the demo's page opened in headless Chromium, offline."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import numpy as np
import pytest
from dagster import AssetMaterialization, AssetSelection, DagsterInstance, evaluate_automation_conditions
from plotly.offline import get_plotlyjs

from finops_pipeline.cli import main
from finops_pipeline.demo import run_demo
from finops_pipeline.report import write_report
from finops_pipeline.simulator.fleet import is_runaway_day
from finops_pipeline.warehouse.catalog import refresh_catalog
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline_tests.browser import checked_values, png_pixels, rendered_dom, screenshot

DAYS = 16  # the last day has the 14 days of history cost_anomalies needs (and one more)


def _today_after_a_runaway_day() -> date:
    """The latest UTC date whose yesterday is one of the simulator's runaway Lambda days."""
    today = datetime.now(timezone.utc).date()
    while not is_runaway_day(today - timedelta(days=1)):
        today -= timedelta(days=1)
    return today


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 16-day demo warehouse (the real pipeline on the simulated clouds), built once, and what it printed."""
    today = _today_after_a_runaway_day()
    data_dir = tmp_path_factory.mktemp("report") / "demo"
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:  # the suite's clean environment, for a module-wide fixture
        for name in list(os.environ):
            if name.startswith(("AWS_", "GCP_", "GOOGLE_", "AZURE_", "FINOPS_", "USAGE_", "DAGSTER_HOME")):
                mp.delenv(name)
        mp.setenv("FINOPS_ENV_FILE", str(data_dir.parent / "no.env"))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        run_demo(data_dir, days=DAYS, today=today, out=lines.append)
    return data_dir, today, lines


def _sql(data_dir, query: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def _money(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def test_png_pixels_decodes_chromium_screenshots_exactly(tmp_path):
    page = tmp_path / "blocks.html"
    page.write_text(
        '<html><body style="margin:0;background:#fff">'
        '<div style="position:absolute;left:10px;top:20px;width:30px;height:40px;background:#ff0000"></div>'
        '<div style="position:absolute;left:100px;top:5px;width:50px;height:10px;background:#0080ff"></div>'
        "</body></html>"
    )
    pixels = png_pixels(screenshot(page, tmp_path / "blocks.png", width=200, height=100))[:, :, :3]

    assert pixels.shape == (100, 200, 3)
    assert (pixels[20:60, 10:40] == [255, 0, 0]).all()
    assert (pixels[5:15, 100:150] == [0, 128, 255]).all()
    assert (pixels[70:, :] == [255, 255, 255]).all() and (pixels[:, 160:] == [255, 255, 255]).all()


def test_demo_report_renders_offline_and_shows_the_catalogs_totals(demo, tmp_path):
    data_dir, today, printed = demo
    page = data_dir / "reports" / "cost_report.html"
    assert printed[-1].endswith(str(page)) and "Cost report" in printed[-1]
    start, end = today - timedelta(days=DAYS), today  # the report's 30 days cover the 16 billed ones

    pixels = png_pixels(screenshot(page, tmp_path / "report.png")).astype(float)[:, :, :3]
    assert pixels.std() > 20  # not a blank page
    # The charts drew (plotly.js ran offline): a white page with black text has no saturated pixels.
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert np.mean(saturation > 100) > 0.002

    dom = rendered_dom(page)
    assert dom.count('class="main-svg"') >= 6  # each Plotly chart's SVG layers, made by the script
    shown = checked_values(dom)
    assert shown["window"].startswith(f"[{end - timedelta(days=30)}, {end})")

    billed = _sql(
        data_dir,
        """SELECT provider, billing_currency, round(sum(billed_cost), 2), round(sum(effective_cost), 2)
           FROM cost_daily WHERE usage_date >= ? AND usage_date < ? GROUP BY ALL""",
        [start, end],
    )
    assert {(p, c) for p, c, _, _ in billed} == {("aws", "USD"), ("gcp", "USD"), ("azure", "USD"), ("azure", "EUR")}
    for provider, currency, billed_cost, effective_cost in billed:
        assert _money(shown[f"window_billed:{provider}:{currency}"]) == billed_cost
        assert _money(shown[f"window_effective:{provider}:{currency}"]) == effective_cost

    month = end - timedelta(days=1)
    month_actual = _sql(
        data_dir,
        """SELECT provider, billing_currency, round(sum(billed_cost), 2) FROM cost_daily
           WHERE usage_date >= ? AND usage_date < ? GROUP BY ALL""",
        [month.replace(day=1), end],
    )
    for provider, currency, actual in month_actual:
        assert _money(shown[f"month_actual:{provider}:{currency}"]) == actual

    savings = _sql(
        data_dir,
        """WITH best AS (
               SELECT provider, resource_id, billing_currency, max(estimated_monthly_savings) AS saving
               FROM underutilized_resources WHERE usage_date = ? GROUP BY ALL)
           SELECT coalesce(billing_currency, 'none'), count(*), round(sum(saving), 2) FROM best GROUP BY 1""",
        [end - timedelta(days=1)],
    )
    assert savings
    for currency, flagged, total in savings:
        assert int(shown[f"flagged:{currency}"]) == flagged
        if total is not None:
            assert _money(shown[f"savings_total:{currency}"]) == total

    (anomalies,) = _sql(
        data_dir,
        "SELECT count(*) FROM cost_anomalies WHERE status IN ('spike', 'drop', 'new') AND usage_date >= ?",
        [start],
    )[0]
    assert int(shown["anomalies"]) == anomalies >= 1
    # The simulator's runaway Lambda day (yesterday) is in the table as a high spike.
    rows = [row for row in dom.split("<tr") if 'class="spike"' in row and "AWS Lambda" in row]
    assert any(f">{end - timedelta(days=1)}<" in row and ">high<" in row for row in rows)


def test_report_command_writes_one_self_contained_page_for_the_days_asked(demo, tmp_path, capsys):
    data_dir, today, _ = demo
    out = tmp_path / "week.html"

    assert main(["report", "--data-dir", str(data_dir), "--out", str(out), "--days", "7"]) == 0

    start, end = today - timedelta(days=7), today
    assert f"Cost report for [{start}, {end}) written to {out}" in capsys.readouterr().out
    page = out.read_text()
    assert page.count(get_plotlyjs()) == 1  # plotly.js inlined once for every chart
    assert "<script src" not in page and "<link" not in page
    shown = checked_values(rendered_dom(out))
    for provider, currency, billed in _sql(
        data_dir,
        """SELECT provider, billing_currency, round(sum(billed_cost), 2) FROM cost_daily
           WHERE usage_date >= ? AND usage_date < ? GROUP BY ALL""",
        [start, end],
    ):
        assert _money(shown[f"window_billed:{provider}:{currency}"]) == billed


def test_report_of_an_empty_warehouse_says_there_is_no_billing_yet(tmp_path):
    out = tmp_path / "empty.html"

    data = write_report(Lake(tmp_path / "lake"), out)

    assert data.start is None
    assert "No billing in cost_daily yet" in out.read_text()


def test_a_report_of_no_days_is_refused_before_anything_is_written(tmp_path, capsys):
    refresh_catalog(tmp_path)
    assert main(["report", "--data-dir", str(tmp_path), "--days", "0"]) == 1
    assert capsys.readouterr().err == "finops-pipeline report: error: report days must be at least 1, not 0\n"
    assert not (tmp_path / "reports").exists()


def test_cost_report_is_requested_once_after_a_table_it_reads_is_updated():
    from finops_pipeline.definitions import defs

    instance = DagsterInstance.ephemeral()
    report = AssetSelection.assets("cost_report")
    before = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=report)
    instance.report_runless_asset_event(AssetMaterialization("cost_anomalies", partition="2026-11-20"))
    after = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=report, cursor=before.cursor)
    again = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=report, cursor=after.cursor)

    assert (before.total_requested, after.total_requested, again.total_requested) == (0, 1, 0)
