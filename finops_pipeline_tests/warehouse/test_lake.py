"""The lake's promises: declared schema, atomic partition replace, idempotent reruns."""

import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finops_pipeline.warehouse.catalog import connect_lake, refresh_catalog
from finops_pipeline.warehouse.lake import Lake, LakeWriteError

NOW = datetime(2026, 11, 2, 6, tzinfo=timezone.utc)


def cost_rows(day: date, amounts: list[str], account: str = "111111111111") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "provider": "aws",
            "usage_date": day,
            "billing_account_id": account,
            "sub_account_id": account,
            "service_name": [f"svc-{i}" for i in range(len(amounts))],
            "charge_category": "Usage",
            "billed_cost": [Decimal(a) for a in amounts],
            "effective_cost": [Decimal(a) for a in amounts],
            "billing_currency": "USD",
            "is_estimated": False,
            "source": "test",
            "ingested_at": NOW,
        }
    )


def read_costs(lake: Lake):
    con = connect_lake(lake)
    return con.execute("SELECT usage_date, service_name, billed_cost FROM cost_daily ORDER BY 1, 2").fetchall()


def test_money_is_decimal_and_survives_exactly(data_dir):
    lake = Lake(data_dir / "lake")
    lake.write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["0.1000000001", "12345678.123456789"]))
    con = connect_lake(lake)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE cost_daily)").fetchall())
    assert types["billed_cost"] == "DECIMAL(38,10)"
    assert con.execute("SELECT sum(billed_cost) FROM cost_daily").fetchone()[0] == Decimal("12345678.2234567891")


def test_error_mid_write_leaves_the_old_partition(data_dir):
    lake = Lake(data_dir / "lake")
    day = date(2026, 11, 1)
    lake.write_partitions("cost_daily", cost_rows(day, ["1.00", "2.00"]))
    before = read_costs(lake)
    with pytest.raises(RuntimeError, match="network dropped"):
        with lake.open_partition("cost_daily", {"provider": "aws", "usage_date": day}) as writer:
            writer.write(cost_rows(day, ["99.00"]))
            raise RuntimeError("network dropped")
    assert read_costs(lake) == before
    leftovers = [p.name for p in lake.table_dir("cost_daily").rglob("*") if p.is_file()]
    assert leftovers == ["part.parquet"]


def test_bad_rows_are_rejected_before_any_partition_is_replaced(data_dir):
    lake = Lake(data_dir / "lake")
    lake.write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1.00"]))
    good = cost_rows(date(2026, 11, 1), ["5.00"])
    bad = cost_rows(date(2026, 11, 2), ["7.00"]).assign(billing_currency=None)
    with pytest.raises(LakeWriteError, match="billing_currency"):
        lake.write_partitions("cost_daily", pd.concat([good, bad]))
    assert read_costs(lake) == [(date(2026, 11, 1), "svc-0", Decimal("1.0000000000"))]


def test_unknown_column_is_named(data_dir):
    with pytest.raises(LakeWriteError, match="unexpected column.*cost_usd"):
        Lake(data_dir / "lake").write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1"]).assign(cost_usd=1))


def test_three_reruns_give_identical_rows(data_dir):
    lake = Lake(data_dir / "lake")
    results = []
    for _ in range(3):
        lake.write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1.5", "2.5"]))
        lake.write_partitions("cost_daily", cost_rows(date(2026, 11, 2), ["3.5"]))
        results.append(read_costs(lake))
    assert results[0] == results[1] == results[2]
    assert len(results[0]) == 3


def test_rows_of_interleaved_days_land_in_their_own_partitions_in_their_order(data_dir):
    lake = Lake(data_dir / "lake")
    first, second = cost_rows(date(2026, 11, 1), ["1", "2", "3"]), cost_rows(date(2026, 11, 2), ["4", "5"])
    mixed = pd.concat([first.iloc[[0]], second.iloc[[0]], first.iloc[[1]], second.iloc[[1]], first.iloc[[2]]])
    writes = lake.write_partitions("cost_daily", mixed)
    assert [(w.partition["usage_date"], w.rows) for w in writes] == [("2026-11-01", 3), ("2026-11-02", 2)]
    for write, services in zip(writes, (["svc-0", "svc-1", "svc-2"], ["svc-0", "svc-1"])):
        assert pq.read_table(write.path).column("service_name").to_pylist() == services


def test_a_month_of_days_each_lands_in_its_own_partition(data_dir):
    """A month written at once (an export period, a month-long backfill): every day's rows in that
    day's partition, whether the rows come grouped by day or interleaved. (pyarrow's hash group_by
    answers 29 or more keys out of first-seen order, so slices must not be keyed by its order.)"""
    lake = Lake(data_dir / "lake")
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]
    grouped = pd.concat([cost_rows(d, [f"{d.day}.00", f"{d.day}.50"]) for d in days])
    interleaved = pd.concat([grouped.iloc[0::2], grouped.iloc[1::2]])
    for frame in (grouped, interleaved):
        data = pa.Table.from_pandas(frame, preserve_index=False)
        data = data.cast(  # plain strings, as DuckDB and the SDKs hand them over
            pa.schema([f.with_type(pa.string()) if f.type == pa.large_string() else f for f in data.schema])
        )
        writes = lake.write_partitions("cost_daily", data)
        assert len(writes) == 30
        for write in writes:
            day = date.fromisoformat(write.partition["usage_date"])
            assert pq.read_table(write.path).column("billed_cost").to_pylist() == [
                Decimal(f"{day.day}.00"),
                Decimal(f"{day.day}.50"),
            ], write.partition


def test_refetch_with_no_rows_clears_the_day(data_dir):
    lake = Lake(data_dir / "lake")
    day = date(2026, 11, 1)
    lake.write_partitions("cost_daily", cost_rows(day, ["1.5"]))
    empty = cost_rows(day, []).astype({"usage_date": "object"})
    lake.write_partitions("cost_daily", empty, expected=[{"provider": "aws", "usage_date": day}])
    assert read_costs(lake) == []


def test_empty_table_is_a_view_with_the_right_columns(data_dir):
    refresh_catalog(data_dir)
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    columns = [r[0] for r in con.execute("DESCRIBE metrics_hourly").fetchall()]
    assert columns[:3] == ["provider", "usage_date", "hour_start"]
    assert con.execute("SELECT count(*) FROM metrics_hourly").fetchone()[0] == 0


def test_catalog_is_only_rewritten_when_a_definition_changes(data_dir):
    assert refresh_catalog(data_dir).status == "refreshed"
    assert refresh_catalog(data_dir).status == "unchanged"
    Lake(data_dir / "lake").write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1"]))
    changed = refresh_catalog(data_dir)
    assert changed.status == "refreshed" and changed.changed == ["cost_daily"]
    # New partitions of a table that already has files need no catalog change.
    Lake(data_dir / "lake").write_partitions("cost_daily", cost_rows(date(2026, 11, 2), ["2"]))
    assert refresh_catalog(data_dir).status == "unchanged"
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM cost_daily").fetchone()[0] == 2


def test_reader_in_another_process_does_not_block_writes(data_dir):
    refresh_catalog(data_dir)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(c.execute('SELECT count(*) FROM cost_daily').fetchone()[0], flush=True); sys.stdin.read()",
            str(data_dir / "finops.duckdb"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "0"
        Lake(data_dir / "lake").write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["4.25"]))
        outcome = refresh_catalog(data_dir)
        assert outcome.status == "deferred" and "open in another process" in outcome.reason
    finally:
        reader.communicate("")
    assert refresh_catalog(data_dir).status == "refreshed"
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    assert con.execute("SELECT sum(billed_cost) FROM cost_daily").fetchone()[0] == Decimal("4.25")


def test_catalog_has_helper_macros_for_half_open_windows(data_dir):
    lake = Lake(data_dir / "lake")
    for day, amount in ((date(2026, 10, 31), "1"), (date(2026, 11, 1), "2"), (date(2026, 11, 2), "4")):
        lake.write_partitions("cost_daily", cost_rows(day, [amount]))
    refresh_catalog(data_dir)
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    assert con.execute("SELECT sum(billed_cost) FROM cost_between('2026-11-01', '2026-11-02')").fetchone()[0] == 2
    assert con.execute("SELECT month_start(DATE '2026-11-17'), days_in_month(DATE '2026-02-03')").fetchone() == (
        date(2026, 11, 1),
        28,
    )


def test_seeds_are_catalog_views_and_drive_the_focus_service_category(data_dir):
    rows = cost_rows(date(2026, 11, 1), ["3"]).assign(service_name="Amazon Elastic Compute Cloud - Compute")
    Lake(data_dir / "lake").write_partitions("cost_daily", rows)
    refresh_catalog(data_dir)
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM underutilization_rules").fetchone()[0] >= 10
    assert con.execute(
        "SELECT ServiceCategory, ServiceSubcategory, BilledCost FROM focus_cost_and_usage"
    ).fetchall() == [("Compute", "Virtual Machines", Decimal("3"))]


def test_a_connection_for_one_query_has_the_views_and_macros_it_reads_through_other_views(data_dir):
    lake = Lake(data_dir / "lake")
    lake.write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1.5", "2.5"]))
    # The FOCUS view reads cost_daily and a seed; cost_between (a macro) reads cost_daily.
    con = connect_lake(lake, for_query="SELECT sum(BilledCost) FROM focus_cost_and_usage")
    assert con.execute("SELECT sum(BilledCost) FROM focus_cost_and_usage").fetchone()[0] == Decimal("4.0")
    con = connect_lake(lake, for_query="SELECT count(*) FROM cost_between('2026-11-01', '2026-11-02')")
    assert con.execute("SELECT count(*) FROM cost_between('2026-11-01', '2026-11-02')").fetchone()[0] == 2
    views = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert views == {"cost_daily"}  # metrics_hourly and the rest are not bound for this query


def test_writing_a_table_sweeps_its_stale_hidden_temp_files(data_dir):
    import os
    import time

    lake = Lake(data_dir / "lake")
    lake.write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1"]))
    day = lake.partition_dir("cost_daily", {"provider": "aws", "usage_date": date(2026, 11, 1)})
    stale, fresh = day / ".part.parquet.0a1b.tmp", day / ".part.parquet.2c3d.tmp"  # left by killed writers
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"being written right now")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    Lake(data_dir / "lake").write_partitions("cost_daily", cost_rows(date(2026, 11, 2), ["2"]))
    assert not stale.exists() and fresh.exists()
    assert sorted(p.name for p in day.iterdir()) == [".part.parquet.2c3d.tmp", "part.parquet"]


def test_a_copied_data_dir_reads_its_own_lake_not_the_original(data_dir, tmp_path, capsys):
    import shutil

    from finops_pipeline.cli import main

    Lake(data_dir / "lake").write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1.00"]))
    refresh_catalog(data_dir)
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    Lake(data_dir / "lake").write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["99.00"]))
    sql = "SELECT sum(billed_cost) AS billed FROM cost_daily"
    assert main(["query", "--data-dir", str(copy), "--format", "csv", sql]) == 0
    assert capsys.readouterr().out.splitlines() == ["billed", "1.0000000000"]
    shutil.rmtree(data_dir)
    moved = tmp_path / "moved"
    shutil.move(copy, moved)
    assert main(["query", "--data-dir", str(moved), "--format", "csv", sql]) == 0
    assert capsys.readouterr().out.splitlines() == ["billed", "1.0000000000"]


def test_a_copied_catalog_that_cannot_be_refreshed_fails_naming_both_lakes(data_dir, tmp_path):
    import shutil

    from finops_pipeline.warehouse.catalog import CatalogError, open_catalog

    Lake(data_dir / "lake").write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1.00"]))
    refresh_catalog(data_dir)
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    reader = subprocess.Popen(  # an analyst holds the copy open: its views cannot be rewritten now
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print('open', flush=True); sys.stdin.read()",
            str(copy / "finops.duckdb"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "open"
        with pytest.raises(CatalogError) as info:
            open_catalog(copy)
    finally:
        reader.communicate("")
    message = str(info.value)
    assert str((data_dir / "lake").resolve()) in message and str((copy / "lake").resolve()) in message


def test_a_corrupt_parquet_file_fails_the_refresh_naming_the_file_and_the_fix(data_dir):
    from finops_pipeline.warehouse.catalog import CatalogError

    lake = Lake(data_dir / "lake")
    lake.write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1"]))
    bad = lake.partition_dir("cost_daily", {"provider": "aws", "usage_date": date(2026, 10, 30)}) / "part.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(CatalogError) as info:
        refresh_catalog(data_dir)
    message = str(info.value)
    assert str(bad) in message
    assert "re-materialize partition 2026-10-30 of aws_cost" in message


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda rows: rows.assign(provider="../aws"),
            "partition value provider='../aws' is not usable as a directory name",
        ),
        (lambda rows: rows.drop(columns=["provider"]), "cost_daily: partition column 'provider' is missing"),
        (lambda rows: rows.assign(usage_date=None), "cost_daily: partition column 'usage_date' has nulls"),
        (
            lambda rows: rows.drop(columns=["billing_currency"]),
            "cost_daily: required column 'billing_currency' is missing",
        ),
        (
            lambda rows: rows.assign(usage_quantity="lots"),
            "cost_daily.usage_quantity: cannot store large_string as double: Failed to parse string: 'lots' as a "
            "scalar of type double",
        ),
        (
            lambda rows: rows.assign(billed_cost="1.5 USD"),
            "cost_daily.billed_cost: cannot store large_string as decimal128(38, 10): The string '1.5 USD' is not a "
            "valid decimal128 number",
        ),
    ],
)
def test_rows_the_table_cannot_hold_are_refused_naming_the_column(data_dir, change, message):
    lake = Lake(data_dir / "lake")
    with pytest.raises(LakeWriteError) as refused:
        lake.write_partitions("cost_daily", change(cost_rows(date(2026, 11, 1), ["1.00"])))
    assert str(refused.value).startswith(message)
    assert not (data_dir / "lake").exists() or lake.partitions("cost_daily") == []


def test_one_partition_is_written_only_under_the_tables_partition_columns(data_dir):
    lake = Lake(data_dir / "lake")
    with pytest.raises(LakeWriteError) as refused:
        lake.write_partition("cost_daily", {"usage_date": date(2026, 11, 1)}, cost_rows(date(2026, 11, 1), ["1"]))
    assert str(refused.value) == "cost_daily is partitioned by ['provider', 'usage_date']; got ['usage_date']"


def test_a_partition_streamed_in_pages_lands_whole_in_row_groups(data_dir):
    lake = Lake(data_dir / "lake")
    day = date(2026, 11, 1)
    page = cost_rows(day, ["0.01"] * 3_000).drop(columns=["provider", "usage_date"])
    with lake.open_partition("cost_daily", {"provider": "aws", "usage_date": day}) as writer:
        for _ in range(6):  # 18,000 rows pass ROW_GROUP_ROWS (16,384): one row group is written
            writer.write(page)
        writer.write(page.head(500))  # the rest, written on close
    metadata = pq.read_metadata(lake.partition_file("cost_daily", {"provider": "aws", "usage_date": day}))
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [18_000, 500]
    con = connect_lake(lake)
    assert con.execute("SELECT count(*), sum(billed_cost) FROM cost_daily").fetchone() == (18_500, Decimal("185.00"))


def test_a_view_that_does_not_bind_fails_the_refresh_naming_it_and_changes_nothing(data_dir, tmp_path):
    import shutil

    from finops_pipeline.warehouse.catalog import SQL_DIR, CatalogError

    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    lake = Lake(data_dir / "lake")
    lake.write_partitions("cost_daily", cost_rows(date(2026, 11, 1), ["1"]))
    assert refresh_catalog(data_dir, sql_dir).status == "refreshed"
    (sql_dir / "views" / "daily_spend.sql").write_text("SELECT usage_date, sum(cost_usd) AS spend FROM cost_daily\n")
    with pytest.raises(CatalogError) as info:
        refresh_catalog(data_dir, sql_dir)
    assert str(info.value).startswith(
        'view daily_spend could not be created: Binder Error: Referenced column "cost_usd" not found'
    )
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    views = {name for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    con.close()
    assert "daily_spend" not in views and "cost_daily" in views  # the failed refresh left the catalog as it was

    (sql_dir / "views" / "daily_spend.sql").write_text(
        "SELECT usage_date, sum(billed_cost) AS spend FROM cost_daily GROUP BY 1\n"
    )
    assert refresh_catalog(data_dir, sql_dir).changed == ["daily_spend"]


def test_a_declared_type_the_catalog_cannot_map_is_named():
    from finops_pipeline.warehouse.catalog import duckdb_type

    assert duckdb_type(pa.map_(pa.string(), pa.list_(pa.int32()))) == "MAP(VARCHAR, INTEGER[])"
    with pytest.raises(TypeError) as info:
        duckdb_type(pa.binary())
    assert str(info.value) == "no DuckDB type for binary"
