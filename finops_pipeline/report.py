"""The cost report: one self-contained HTML file (Plotly charts, scripts and styles inline).

Every number in it is the answer of a query in ``sql/report/*.sql`` run over the lake's views
(the catalog's tables, on an in-memory connection like the marts', so an analyst holding the
catalog open never blocks it). Money is shown per billing currency, never summed across them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from finops_pipeline.warehouse.catalog import SQL_DIR, connect_lake
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.sql import bind_parameters

REPORT_SQL_DIR = SQL_DIR / "report"
REPORT_FILE = "cost_report.html"
REPORT_DAYS = 30
TOP_UNDERUTILIZED = 15
QUERIES = (
    "report_window",
    "window_totals",
    "daily_cost",
    "month_to_date",
    "top_underutilized",
    "anomalies",
    "utilization_distribution",
)
# One colour per cloud across every chart (the providers' brand colours, told apart).
CLOUD_COLOURS = {"aws": "#ff9900", "gcp": "#34a853", "azure": "#0078d4"}


@dataclass
class ReportData:
    """The report's query answers: name -> rows (dicts), and the window they cover."""

    start: date | None
    end: date | None
    month: date | None
    rows: dict[str, list[dict]] = field(default_factory=dict)


def report_path(data_dir: Path) -> Path:
    """Where the pipeline writes the report: ``<data dir>/reports/cost_report.html``."""
    return Path(data_dir) / "reports" / REPORT_FILE


def _read(name: str) -> str:
    return (REPORT_SQL_DIR / f"{name}.sql").read_text()


def query_report(lake: Lake, days: int = REPORT_DAYS) -> ReportData:
    """Run the report's queries over the lake: the ``days`` UTC days up to the last billed day."""
    if days < 1:
        raise ValueError(f"report days must be at least 1, not {days}")
    queries = {name: _read(name) for name in QUERIES}
    con = connect_lake(lake, for_query="\n".join(queries.values()))
    try:
        bind_parameters(con, {"days": days})
        start, end, month = con.execute(queries["report_window"]).fetchone()
        data = ReportData(start, end, month)
        if start is None:  # no billing yet: an empty report says so
            return data
        bind_parameters(con, {"start": start, "end": end, "month": month})
        for name in QUERIES[1:]:
            cursor = con.execute(queries[name])
            columns = [d[0] for d in cursor.description]
            data.rows[name] = [dict(zip(columns, row)) for row in cursor.fetchall()]
        return data
    finally:
        con.close()


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _cell(value, check: str | None = None, numeric: bool = False) -> str:
    attrs = (' class="num"' if numeric else "") + (f' data-check="{html.escape(check)}"' if check else "")
    if isinstance(value, Decimal):
        text = _money(value)
    elif isinstance(value, float):
        text = f"{value:,.2f}"
    else:
        text = "" if value is None else str(value)
    return f"<td{attrs}>{html.escape(text)}</td>"


def _table(headers: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figure_html(fig: go.Figure, div_id: str) -> str:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 40}, legend_title_text="")
    # plotly.js is inlined once in the page's <head>, so each figure carries only its data.
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})


def _per_currency(rows: list[dict], title: str) -> tuple[go.Figure, list[str]]:
    currencies = sorted({r["billing_currency"] for r in rows})
    fig = make_subplots(
        rows=max(len(currencies), 1),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=[f"{title} ({c})" for c in currencies],
    )
    for i, currency in enumerate(currencies, start=1):
        fig.update_yaxes(title_text=currency, row=i, col=1)
    fig.update_layout(height=max(300, 300 * len(currencies)))
    return fig, currencies


def daily_cost_section(data: ReportData) -> str:
    totals = [
        "<tr>"
        + _cell(r["provider"])
        + _cell(r["billing_currency"])
        + _cell(r["days_billed"], numeric=True)
        + _cell(r["billed_cost"], f"window_billed:{r['provider']}:{r['billing_currency']}", numeric=True)
        + _cell(r["effective_cost"], f"window_effective:{r['provider']}:{r['billing_currency']}", numeric=True)
        + "</tr>"
        for r in data.rows["window_totals"]
    ]
    daily = data.rows["daily_cost"]
    fig, currencies = _per_currency(daily, "Billed cost per day")
    for i, currency in enumerate(currencies, start=1):
        for provider in sorted({r["provider"] for r in daily if r["billing_currency"] == currency}):
            points = [r for r in daily if r["provider"] == provider and r["billing_currency"] == currency]
            fig.add_trace(
                go.Scatter(
                    x=[r["usage_date"].isoformat() for r in points],
                    y=[float(r["billed_cost"]) for r in points],
                    name=f"{provider} ({currency})",
                    mode="lines+markers",
                    line={"color": CLOUD_COLOURS.get(provider)},
                ),
                row=i,
                col=1,
            )
    return (
        "<h2>Daily cost per cloud</h2>"
        + _table(
            ["cloud", "currency", "days billed", "billed cost", "effective cost"],
            totals,
            "No billing in the window.",
        )
        + _figure_html(fig, "daily-cost")
    )


def month_section(data: ReportData) -> str:
    rows = data.rows["month_to_date"]
    cells = [
        "<tr>"
        + _cell(r["provider"])
        + _cell(r["billing_currency"])
        + _cell(f"{r['as_of_date']} ({r['days_elapsed']} of {r['days_in_month']} days)")
        + _cell(r["actual_mtd"], f"month_actual:{r['provider']}:{r['billing_currency']}", numeric=True)
        + _cell(r["predicted_mtd"], numeric=True)
        + _cell(r["predicted_month"], numeric=True)
        + _cell(r["projected_month_end"], numeric=True)
        + _cell(r["forecast_month_end"], numeric=True)
        + "</tr>"
        for r in rows
    ]
    fig, currencies = _per_currency(rows, "This month")
    measures = [
        ("actual_mtd", "actual to date", "#636efa"),
        ("predicted_mtd", "predicted to date", "#b6bbfd"),
        ("projected_month_end", "run-rate month end", "#ef553b"),
        ("forecast_month_end", "provider forecast month end", "#ffa15a"),
        ("predicted_month", "predicted month", "#00cc96"),
    ]
    for i, currency in enumerate(currencies, start=1):
        mine = [r for r in rows if r["billing_currency"] == currency]
        for column, label, colour in measures:
            fig.add_trace(
                go.Bar(
                    x=[r["provider"] for r in mine],
                    y=[None if r[column] is None else float(r[column]) for r in mine],
                    name=label,
                    marker_color=colour,
                    legendgroup=label,
                    showlegend=i == 1,
                ),
                row=i,
                col=1,
            )
    fig.update_layout(barmode="group")
    month = data.month.strftime("%B %Y") if data.month else "no month"
    return (
        f"<h2>{html.escape(month)}: actual vs predicted vs forecast</h2>"
        '<p class="note">Predicted: infrastructure-as-code estimates (cost_predictions). Run-rate: the actual '
        "extended to the month's end. Provider forecast: the actual plus the cloud's own forecast of the "
        "remaining days (blank where the cloud gives none).</p>"
        + _table(
            [
                "cloud",
                "currency",
                "as of",
                "actual to date",
                "predicted to date",
                "predicted month",
                "run-rate month end",
                "provider forecast month end",
            ],
            cells,
            "No trend rows for this month yet.",
        )
        + (_figure_html(fig, "month-to-date") if rows else "")
    )


def underutilized_section(data: ReportData) -> str:
    rows = data.rows["top_underutilized"]
    totals: dict[str | None, tuple[int, Decimal | None]] = {}
    for r in rows:
        totals[r["billing_currency"]] = (r["flagged_resources"], r["total_monthly_savings"])
    summary = "".join(
        f'<li><span data-check="savings_total:{html.escape(c)}">{_money(total)}</span> {html.escape(c)} a month '
        f'over <span data-check="flagged:{html.escape(c)}">{n}</span> flagged resources</li>'
        if c is not None
        else f'<li><span data-check="flagged:none">{n}</span> flagged resources without resource-level cost '
        "(no savings estimate)</li>"
        for c, (n, total) in sorted(totals.items(), key=lambda item: (item[0] is None, item[0] or ""))
    )
    cells = [
        "<tr>"
        + _cell(r["rank"], numeric=True)
        + _cell(r["provider"])
        + _cell(r["resource_type"])
        + f'<td title="{html.escape(r["resource_id"])}">{html.escape(r["resource"])}</td>'
        + _cell(r["rule_id"])
        + _cell(r["action"])
        + _cell(r["confidence"])
        + _cell(r["trailing_30d_cost"], numeric=True)
        + _cell(r["estimated_monthly_savings"], numeric=True)
        + _cell(r["billing_currency"])
        + f'<td class="evidence">{html.escape(r["evidence"])} '
        f'<a href="{html.escape(r["rule_source_url"])}">{html.escape(r["rule_source"])}</a></td>' + "</tr>"
        for r in rows[:TOP_UNDERUTILIZED]
    ]
    as_of = rows[0]["as_of_date"] if rows else None
    return (
        f"<h2>Top underutilized resources{f' (as of {as_of})' if as_of else ''}</h2>"
        + (f'<ul class="totals">{summary}</ul>' if summary else "")
        + _table(
            [
                "#",
                "cloud",
                "type",
                "resource",
                "rule",
                "action",
                "confidence",
                "trailing 30-day cost",
                "est. monthly savings",
                "currency",
                "evidence (rule source)",
            ],
            cells,
            "No resource flagged.",
        )
    )


def anomalies_section(data: ReportData) -> str:
    rows = data.rows["anomalies"]
    cells = [
        f'<tr class="{html.escape(r["status"])}">'
        + _cell(r["usage_date"])
        + _cell(r["provider"])
        + _cell(r["sub_account_id"])
        + _cell(r["service_name"])
        + _cell(r["status"])
        + _cell(r["severity"])
        + _cell(r["actual_cost"], numeric=True)
        + _cell(r["expected_cost"], numeric=True)
        + _cell(r["deviation"], numeric=True)
        + _cell(r["billing_currency"])
        + _cell(r["top_resources"])
        + "</tr>"
        for r in rows
    ]
    return (
        f'<h2>Cost anomalies (<span data-check="anomalies">{len(rows)}</span>)</h2>'
        '<p class="note">Each day against its own median over the previous 28 days (same weekday where the '
        "history allows); 14 days of billing are needed before a day is judged.</p>"
        + _table(
            [
                "day",
                "cloud",
                "account",
                "service",
                "status",
                "severity",
                "actual",
                "expected",
                "deviation",
                "currency",
                "resources that moved (change)",
            ],
            cells,
            "No spike, drop or new spend in the window.",
        )
    )


def utilization_section(data: ReportData) -> str:
    rows = data.rows["utilization_distribution"]
    fig = go.Figure()
    for metric in sorted({r["metric"] for r in rows}):
        mine = [r for r in rows if r["metric"] == metric]
        fig.add_trace(
            go.Box(
                x=[f"{r['provider']} {r['resource_type']}" for r in mine],
                lowerfence=[float(r["min_pct"]) for r in mine],
                q1=[float(r["p25_pct"]) for r in mine],
                median=[float(r["median_pct"]) for r in mine],
                q3=[float(r["p75_pct"]) for r in mine],
                upperfence=[float(r["max_pct"]) for r in mine],
                mean=[float(r["mean_pct"]) for r in mine],
                name=metric,
            )
        )
    fig.update_layout(
        boxmode="group", height=420, yaxis={"title": "daily average, %", "range": [0, 100]}, title="Daily utilization"
    )
    cells = [
        "<tr>"
        + "".join(_cell(r[c]) for c in ("provider", "resource_type", "metric"))
        + "".join(
            _cell(r[c], numeric=True)
            for c in ("resources", "resource_days", "min_pct", "p25_pct", "median_pct", "p75_pct", "p95_pct", "max_pct")
        )
        + "</tr>"
        for r in rows
    ]
    return (
        "<h2>Utilization per resource type</h2>"
        + (_figure_html(fig, "utilization") if rows else "")
        + _table(
            ["cloud", "type", "metric", "resources", "resource-days", "min", "p25", "median", "p75", "p95", "max"],
            cells,
            "No utilization measured in the window.",
        )
    )


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1200px; color: #222; background: #fff; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { padding: 0.3rem 0.5rem; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f5f6fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.evidence { font-size: 0.8rem; color: #444; } tr.spike td { background: #fff1f0; }
tr.drop td { background: #f0f6ff; } .note, .meta, .empty { color: #666; font-size: 0.85rem; }
"""


def render_report(data: ReportData, generated_at: datetime) -> str:
    """The whole page: plotly.js once in the head, then one section per question."""
    if data.start is None:
        window = "no billing in the warehouse yet"
        body = '<p class="empty">No billing in cost_daily yet: run the pipeline (finops-pipeline demo, or Dagster).</p>'
    else:
        window = f"[{data.start}, {data.end}): {(data.end - data.start).days} UTC days up to the last billed day"
        body = "".join(
            section(data)
            for section in (
                daily_cost_section,
                month_section,
                underutilized_section,
                anomalies_section,
                utilization_section,
            )
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>FinOps cost report</title>"
        f"<style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        "</head><body>"
        "<h1>FinOps cost report</h1>"
        f'<p class="meta">Window <span data-check="window">{html.escape(window)}</span>; generated '
        f"{generated_at.strftime('%Y-%m-%d %H:%M UTC')} from the warehouse's tables (queries: sql/report/*.sql). "
        "Money is in each row's billing currency and never summed across currencies.</p>"
        f"{body}</body></html>\n"
    )


def write_report(lake: Lake, out: Path, days: int = REPORT_DAYS, now: datetime | None = None) -> ReportData:
    """Query the lake and write the report to ``out`` atomically (a reader never sees half a page)."""
    data = query_report(lake, days)
    page = render_report(data, now or datetime.now(timezone.utc))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(out)
    return data
