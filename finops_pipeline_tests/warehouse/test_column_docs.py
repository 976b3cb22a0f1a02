"""What analysts see of the one table declaration: the columns of every asset in the Dagster
catalog, the comments of the DuckDB catalog, and the data dictionary's column tables."""

from datetime import date, timedelta

import duckdb
import pytest

from finops_pipeline.definitions import defs
from finops_pipeline.defs import marts
from finops_pipeline.warehouse import dictionary
from finops_pipeline.warehouse.catalog import (
    MACROS,
    STATE_TABLE,
    _digest,
    create_views,
    macros_sql,
    refresh_catalog,
    view_definitions,
)
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.schemas import COLUMN_DESCRIPTIONS, TABLES
from finops_pipeline_tests.marts.fleet_lake import write_fleet
from finops_pipeline_tests.runs import materialize

DAY = date(2026, 3, 14)
BILLED_COST = "Invoiced cost (unblended / gross), DECIMAL, in `billing_currency`."
COST_DAILY_TEXT = (
    "Billed and effective cost per provider x UTC day x account x service x region x resource (where known) "
    "x SKU x charge category."
)


def _metadata(asset: str) -> dict:
    return next(s for s in defs.resolve_all_asset_specs() if s.key.to_user_string() == asset).metadata


def _columns(asset: str, key: str = "dagster/column_schema") -> list:
    return _metadata(asset)[key].schema.columns


def test_every_asset_in_the_definitions_shows_its_columns():
    assets = sorted(s.key.to_user_string() for s in defs.resolve_all_asset_specs())
    assert len(assets) == 13
    # The cost report is an HTML page, not a table: it shows its file and the queries behind it.
    assets.remove("cost_report")
    assert _metadata("cost_report")["queries"].value[:2] == [
        "sql/report/report_window.sql",
        "sql/report/window_totals.sql",
    ]
    for asset in assets:
        assert _columns(asset), asset
        assert all(c.description for c in _columns(asset)), asset
    assert _metadata("aws_cost")["dagster/table_name"] == "finops.main.cost_daily"
    assert [c.name for c in _columns("aws_cost", "columns of cost_forecast")][:6] == [
        "provider",
        "usage_date",
        "sub_account_id",
        "service_name",
        "period_start",
        "period_end",
    ]
    billed = next(c for c in _columns("gcp_cost") if c.name == "billed_cost")
    assert (billed.type, billed.constraints.nullable, billed.description) == ("DECIMAL(38, 10)", False, BILLED_COST)
    assert [(c.name, c.type, c.constraints.nullable) for c in _columns("cost_trend_monthly")][:8] == [
        ("usage_date", "DATE", False),
        ("provider", "VARCHAR", False),
        ("service_name", "VARCHAR", False),
        ("match_value", "VARCHAR", True),
        ("resource_id", "VARCHAR", True),
        ("billing_currency", "VARCHAR", False),
        ("as_of_date", "DATE", False),
        ("days_in_month", "BIGINT", False),
    ]
    hours = next(c for c in _columns("underutilized_resources") if c.name == "hours_with_data")
    assert hours.description == "Distinct hours with any metric for the resource over the window."


def test_a_run_leaves_a_catalog_whose_views_and_columns_carry_the_descriptions(fleet, data_dir):
    write_fleet(fleet, Lake(data_dir / "lake"), DAY, DAY + timedelta(days=1), providers=("aws",))
    result = materialize([marts.utilization_daily], partition_key=DAY.isoformat())
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["dagster/row_count"].value == meta["rows"].value == 16  # the fleet's 16 AWS resources

    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    views = dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
    assert views["cost_daily"] == COST_DAILY_TEXT
    comments = {
        (t, c): comment
        for t, c, comment in con.execute("SELECT table_name, column_name, comment FROM duckdb_columns()").fetchall()
    }
    assert comments["cost_daily", "billed_cost"] == BILLED_COST
    assert comments["utilization_daily", "hours_with_data"] == (
        "Distinct hours with any metric for the resource that day (coverage; 24 = complete)."
    )
    missing = [(t, f.name) for t, spec in TABLES.items() for f in spec.full_schema if not comments.get((t, f.name))]
    assert missing == []


def test_a_catalog_made_before_comments_gets_them_on_the_next_refresh(data_dir):
    # The catalog as the previous version left it: views, state digests of the SELECTs alone.
    data_dir.mkdir(parents=True)
    views = view_definitions(Lake(data_dir / "lake"))
    con = duckdb.connect(str(data_dir / "finops.duckdb"))
    create_views(con, views)
    con.execute(f"CREATE TABLE {STATE_TABLE} (name VARCHAR PRIMARY KEY, digest VARCHAR)")
    con.executemany(
        f"INSERT INTO {STATE_TABLE} VALUES (?, ?)",
        [[n, _digest(s)] for n, s in views.items()] + [[MACROS, _digest(macros_sql())]],
    )
    con.close()

    outcome = refresh_catalog(data_dir)
    assert outcome.status == "refreshed" and sorted(outcome.changed) == sorted(TABLES)
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    query = "SELECT comment FROM duckdb_columns() WHERE table_name = 'cost_daily' AND column_name = 'billed_cost'"
    assert con.execute(query).fetchone()[0] == BILLED_COST
    con.close()
    assert refresh_catalog(data_dir).status == "unchanged"


def test_the_data_dictionary_is_the_declaration():
    text = dictionary.DICTIONARY.read_text()
    assert dictionary.updated(text) == text, (
        "docs/data-dictionary.md differs from finops_pipeline/warehouse/schemas.py: run "
        "`python -m finops_pipeline.warehouse.dictionary` and commit the result"
    )
    assert f"| `billed_cost` | DECIMAL(38, 10) | no | {BILLED_COST} |\n" in text
    assert "- **Partitions:** none (one file)\n- **Key:** provider, month, service_name, resource_id" in text


def test_a_changed_declaration_shows_in_the_dictionary(monkeypatch):
    text = dictionary.DICTIONARY.read_text()
    monkeypatch.setitem(COLUMN_DESCRIPTIONS, "billed_cost", "Changed meaning.")
    new = dictionary.updated(text)
    assert "| `billed_cost` | DECIMAL(38, 10) | no | Changed meaning. |\n" in new
    assert BILLED_COST not in new.split("### `metrics_hourly`")[0]
    # Everything outside the generated parts stays as written.
    assert "What each source fills" in new and "## How the marts are computed" in new


def test_every_description_belongs_to_a_declared_column():
    columns = {f.name for spec in TABLES.values() for f in spec.full_schema}
    assert set(COLUMN_DESCRIPTIONS) <= columns
    for spec in TABLES.values():
        assert set(spec.descriptions) <= set(spec.full_schema.names), spec.name


def test_the_dictionary_command_rewrites_a_stale_copy_then_finds_it_up_to_date(tmp_path, capsys):
    stale = dictionary.DICTIONARY.read_text().replace(BILLED_COST, "An old meaning.")
    path = tmp_path / "data-dictionary.md"
    path.write_text(stale)

    assert dictionary.main([str(path)]) == 0
    assert capsys.readouterr().out == (
        f"rewrote the table sections of {path} from finops_pipeline/warehouse/schemas.py\n"
    )
    assert path.read_text() == dictionary.DICTIONARY.read_text()

    assert dictionary.main([str(path)]) == 0
    assert capsys.readouterr().out == f"{path} is up to date\n"


def test_a_dictionary_missing_a_table_section_or_its_column_table_is_refused_naming_it():
    text = dictionary.DICTIONARY.read_text()
    without_section = text.replace("### `cost_forecast`\n", "### `forecasts`\n")
    with pytest.raises(ValueError) as missing:
        dictionary.updated(without_section)
    assert str(missing.value) == (
        "data-dictionary.md has no section '### `cost_forecast`' for the warehouse table cost_forecast"
    )

    start = text.index("### `cost_forecast`\n")
    section = text[start : text.index("### `cost_predictions`\n")]
    without_table = text.replace(section, section.replace("| column | type | null | meaning |", "| name |"))
    with pytest.raises(ValueError) as lacking:
        dictionary.updated(without_table)
    assert str(lacking.value) == "data-dictionary.md: the section of cost_forecast lacks its intro or column table"


def test_an_unknown_table_name_lists_the_known_ones():
    from finops_pipeline.warehouse.schemas import table_spec

    with pytest.raises(KeyError) as info:
        table_spec("cost_dialy")
    assert info.value.args[0] == f"unknown warehouse table 'cost_dialy'; known: {', '.join(sorted(TABLES))}"
