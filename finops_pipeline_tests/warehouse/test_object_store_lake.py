"""The lake on object storage, for real: S3 on moto's server, GCS on gcp-storage-emulator and
Azure Blob on Azurite, each in its own process on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pyarrow.fs as pafs
import pytest

from finops_pipeline.cli import main
from finops_pipeline.settings import SettingsError, get_settings
from finops_pipeline.simulator.object_stores import EmulatorUnavailable, serve_gcs, serve_s3
from finops_pipeline.warehouse.catalog import connect_lake
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline.warehouse.sql import run_sql
from finops_pipeline.warehouse.storage import LakeFileSystem, LakeUriError, open_filesystem, parse_lake_uri

from .test_lake import cost_rows, read_costs

BUCKET = "finops-lake"
DAY = date(2026, 11, 1)


@pytest.fixture(scope="module")
def s3_served():
    with serve_s3(BUCKET) as env:
        yield env


@pytest.fixture
def s3(s3_served, monkeypatch):
    """The S3 server's environment, and a fresh prefix of the bucket for this test."""
    for key, value in s3_served.items():
        monkeypatch.setenv(key, value)
    prefix = f"lake-{time.monotonic_ns()}"
    return s3_served, f"s3://{BUCKET}/{prefix}", prefix


def bucket_keys(env: dict[str, str], prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=env["FINOPS_LAKE_ENDPOINT_URL"], region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_s3_lake_writes_replaces_and_reads_one_object_per_partition(s3):
    env, uri, prefix = s3
    lake = Lake(uri)
    writes = lake.write_partitions("cost_daily", cost_rows(DAY, ["1.50", "2.50"]))
    lake.write_partitions("cost_daily", cost_rows(DAY + timedelta(days=1), ["3.00"]))
    lake.write_partitions("cost_daily", cost_rows(DAY, ["7.25"]))  # a rerun replaces the day
    assert writes[0].path == f"{uri}/cost_daily/provider=aws/usage_date=2026-11-01/part.parquet"
    assert read_costs(lake) == [
        (DAY, "svc-0", Decimal("7.2500000000")),
        (DAY + timedelta(days=1), "svc-0", Decimal("3.0000000000")),
    ]
    assert bucket_keys(env, prefix) == [
        f"{prefix}/cost_daily/provider=aws/usage_date=2026-11-01/part.parquet",
        f"{prefix}/cost_daily/provider=aws/usage_date=2026-11-02/part.parquet",
    ]
    assert lake.partitions("cost_daily") == [
        {"provider": "aws", "usage_date": "2026-11-01"},
        {"provider": "aws", "usage_date": "2026-11-02"},
    ]


def test_error_mid_write_leaves_the_old_s3_partition_and_no_object(s3):
    env, uri, prefix = s3
    lake = Lake(uri)
    lake.write_partitions("cost_daily", cost_rows(DAY, ["1.00", "2.00"]))
    before = read_costs(lake)
    with pytest.raises(RuntimeError, match="network dropped"):
        with lake.open_partition("cost_daily", {"provider": "aws", "usage_date": DAY}) as writer:
            writer.write(cost_rows(DAY, ["99.00"]))
            raise RuntimeError("network dropped")
    assert read_costs(lake) == before
    assert bucket_keys(env, prefix) == [f"{prefix}/cost_daily/provider=aws/usage_date=2026-11-01/part.parquet"]


# A writer in its own process: it streams a partition batch by batch (400,000 rows make a file of
# tens of MB: a multipart upload of several parts), printing each step, so a test can kill it anywhere.
WRITER = textwrap.dedent("""
    import sys, time
    from datetime import date
    import numpy as np, os, pyarrow as pa
    from finops_pipeline.warehouse.lake import Lake
    from finops_pipeline_tests.warehouse.test_lake import cost_rows
    uri, day, batches, pause, rows = sys.argv[1], date.fromisoformat(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    lake = Lake(uri)
    with lake.open_partition("cost_daily", {"provider": "aws", "usage_date": day}) as writer:
        template = pa.Table.from_pandas(cost_rows(day, ["5.00"]), preserve_index=False)
        for i in range(batches):
            # Incompressible resource ids keep the file large (tens of MB: several upload parts).
            text = os.urandom(16 * rows).hex()
            ids = pa.StringArray.from_buffers(rows, pa.py_buffer(np.arange(0, 32 * rows + 1, 32, dtype=np.int32)),
                                              pa.py_buffer(text.encode()))
            batch = template.take([0] * rows).append_column("resource_id", ids)
            writer.write(batch)
            print(f"wrote {i}", flush=True)
            time.sleep(pause)
        print("committing", flush=True)
    print("done", flush=True)
""")


def start_writer(uri: str, day: date, batches: int, pause: float, rows: int = 400_000) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, uri, day.isoformat(), str(batches), str(pause), str(rows)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def test_a_writer_killed_while_writing_leaves_the_old_s3_partition(s3):
    env, uri, prefix = s3
    lake = Lake(uri)
    lake.write_partitions("cost_daily", cost_rows(DAY, ["1.00", "2.00"]))
    before = read_costs(lake)
    writer = start_writer(uri, DAY, batches=3, pause=30, rows=1000)
    try:
        assert writer.stdout.readline().strip() == "wrote 0"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert read_costs(lake) == before
    assert bucket_keys(env, prefix) == [f"{prefix}/cost_daily/provider=aws/usage_date=2026-11-01/part.parquet"]


def test_staging_files_of_killed_writers_are_swept_after_a_day(s3, tmp_path, monkeypatch):
    env, uri, prefix = s3
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old, recent = tmp_path / "finops-lake.part.parquet.dead.tmp", tmp_path / "finops-lake.part.parquet.live.tmp"
    for path in (old, recent):
        path.write_bytes(b"PAR1")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    Lake(uri).write_partitions("cost_daily", cost_rows(DAY, ["1.00"]))
    assert not old.exists() and recent.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["finops-lake.part.parquet.live.tmp"]


def test_a_writer_killed_during_its_upload_leaves_the_old_s3_partition(s3):
    env, uri, prefix = s3
    lake = Lake(uri)
    lake.write_partitions("cost_daily", cost_rows(DAY, ["1.00", "2.00"]))
    before = read_costs(lake)
    client = boto3.client("s3", endpoint_url=env["FINOPS_LAKE_ENDPOINT_URL"], region_name="us-east-1")
    writer = start_writer(uri, DAY, batches=3, pause=0)
    try:
        while writer.stdout.readline().strip() != "committing":
            pass
        # The multipart upload of the new file has begun: kill the writer before it completes.
        deadline = time.monotonic() + 30
        while not client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads"):
            assert writer.poll() is None, "the upload completed before the test saw it start"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)["Uploads"]  # left for a lifecycle rule
    assert read_costs(lake) == before


def test_two_writers_of_different_partitions_of_one_table_both_land(s3):
    env, uri, prefix = s3
    writers = [start_writer(uri, DAY + timedelta(days=i), batches=2, pause=0.5, rows=1000) for i in range(2)]
    for writer in writers:
        assert writer.communicate(timeout=300)[0].splitlines()[-1] == "done"
    con = connect_lake(Lake(uri))
    assert con.execute("SELECT usage_date, count(*) FROM cost_daily GROUP BY 1 ORDER BY 1").fetchall() == [
        (DAY, 2000),
        (DAY + timedelta(days=1), 2000),
    ]


def test_marts_and_cli_read_the_s3_lake_and_the_catalog_is_rebuilt_anywhere(s3, tmp_path, capsys):
    env, uri, prefix = s3
    lake = Lake(uri)
    lake.write_partitions("cost_daily", cost_rows(DAY, ["1.25", "2.75"]))
    params = {"start": DAY, "end": DAY + timedelta(days=1), "tag_key": "finops_id", "tolerance": 0.1}
    mart = run_sql("cost_trend_daily", lake, params)
    assert sorted(mart.column("actual_cost").to_pylist()) == [Decimal("1.2500000000"), Decimal("2.7500000000")]

    analyst = tmp_path / "analyst"  # another machine: only the lake URI in common
    assert main(["catalog", "--data-dir", str(analyst), "--lake-uri", uri]) == 0
    assert "refreshed" in capsys.readouterr().out
    assert (analyst / "finops.duckdb").is_file() and not (analyst / "lake").exists()
    sql = "SELECT usage_date, sum(billed_cost) AS cost FROM cost_daily GROUP BY 1"
    assert main(["query", "--data-dir", str(analyst), "--lake-uri", uri, "--format", "csv", sql]) == 0
    assert capsys.readouterr().out.splitlines() == ["usage_date,cost", "2026-11-01,4.0000000000"]
    assert main(["tables", "--data-dir", str(analyst), "--lake-uri", uri, "--format", "csv"]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    cost_daily = next(r for r in rows if r[0] == "cost_daily")
    assert cost_daily[1:5] == ["table", "2", "2026-11-01", "2026-11-01"] and cost_daily[5].endswith("UTC")
    # The read-only query may not read outside the lake, on the object store either.
    outside = f"SELECT * FROM read_parquet('s3://{BUCKET}/elsewhere/part.parquet')"
    assert main(["query", "--data-dir", str(analyst), "--lake-uri", uri, outside]) == 1
    assert "outside the warehouse" in capsys.readouterr().err


def test_a_bad_lake_uri_is_a_settings_error_naming_the_variable_and_the_forms():
    with pytest.raises(SettingsError) as raised:
        get_settings({"FINOPS_LAKE_URI": "hdfs://namenode/lake"})
    assert str(raised.value) == (
        "FINOPS_LAKE_URI='hdfs://namenode/lake' is invalid: expected a local directory, s3://bucket/prefix, "
        "gs://bucket/prefix or abfs://container@account/prefix: scheme hdfs:// is not supported."
    )
    with pytest.raises(SettingsError, match=r"'s3://<redacted>@bucket/lake'.*default credential chain"):
        get_settings({"FINOPS_LAKE_URI": "s3://AKIAEXAMPLE:secret@bucket/lake"})
    assert get_settings({"FINOPS_LAKE_URI": "s3://bucket/lake"}).lake_root == "s3://bucket/lake"
    assert get_settings({"FINOPS_DATA_DIR": "/srv/finops"}).lake_root == "/srv/finops/lake"


def _write_replace_read(uri: str) -> None:
    lake = Lake(uri)
    lake.write_partitions("cost_daily", cost_rows(DAY, ["1.00", "2.00"]))
    lake.write_partitions("cost_daily", cost_rows(DAY + timedelta(days=1), ["3.00"]))
    lake.write_partitions("cost_daily", cost_rows(DAY, ["4.50"]))
    assert read_costs(lake) == [
        (DAY, "svc-0", Decimal("4.5000000000")),
        (DAY + timedelta(days=1), "svc-0", Decimal("3.0000000000")),
    ]
    with pytest.raises(RuntimeError, match="dropped"):
        with lake.open_partition("cost_daily", {"provider": "aws", "usage_date": DAY}) as writer:
            writer.write(cost_rows(DAY, ["99.00"]))
            raise RuntimeError("dropped")
    assert [p["usage_date"] for p in lake.partitions("cost_daily")] == ["2026-11-01", "2026-11-02"]
    assert read_costs(lake)[0] == (DAY, "svc-0", Decimal("4.5000000000"))


def test_gcs_lake_writes_replaces_and_reads_on_the_emulator(monkeypatch):
    try:
        served = serve_gcs(BUCKET)
        env = served.__enter__()
    except EmulatorUnavailable as exc:
        pytest.skip(str(exc))
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", env["STORAGE_EMULATOR_HOST"])
        _write_replace_read(f"gs://{BUCKET}/lake")
    finally:
        served.__exit__(None, None, None)


def test_azure_lake_writes_replaces_and_reads_on_azurite(monkeypatch, azurite):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    Lake("abfs://finops@devstoreaccount1/lake").fs.create_dir("finops")  # the container
    _write_replace_read("abfs://finops@devstoreaccount1/lake")


@pytest.mark.slow
def test_demo_on_s3_builds_the_same_warehouse_as_the_local_demo_and_a_rerun_replaces_it(s3, tmp_path):
    from finops_pipeline.adapters.usage.factory import UsageFactory
    from finops_pipeline.demo import run_demo

    env, uri, prefix = s3
    today = date.today()
    local = run_demo(tmp_path / "local", days=2, today=today, out=lambda _: None)
    lines: list[str] = []
    remote = run_demo(tmp_path / "s3", days=2, today=today, out=lines.append, lake_uri=uri)
    assert remote == local and local["cost_daily"] > 0 and local["underutilized_resources"] > 0
    assert not (tmp_path / "s3" / "lake").exists()
    assert f"--lake-uri {uri}" in "\n".join(lines)
    keys = bucket_keys(env, prefix)
    assert f"{prefix}/cost_daily/provider=gcp/usage_date={today - timedelta(days=1)}/part.parquet" in keys

    rerun = run_demo(tmp_path / "s3", days=2, today=today, out=lambda _: None, lake_uri=uri)
    assert rerun == local  # partitions replaced, none duplicated
    assert bucket_keys(env, prefix) == keys

    # The usage API's warehouse source reads the S3 lake as it reads the local one.
    window = [datetime.combine(d, datetime.min.time(), timezone.utc) for d in (today - timedelta(days=2), today)]
    answers = []
    for settings in (
        get_settings({**os.environ, "AWS_USAGE_ENABLED": "true", "FINOPS_DATA_DIR": str(tmp_path / "local")}),
        get_settings(
            {**os.environ, "AWS_USAGE_ENABLED": "true", "FINOPS_DATA_DIR": str(tmp_path / "s3"), "FINOPS_LAKE_URI": uri}
        ),
    ):
        rows = UsageFactory(settings).get_cost_usage("aws", *window, group_by=["service"], source="warehouse")
        answers.append(sorted((r.start_time, r.service, r.cost) for r in rows))
    assert answers[0] == answers[1] and answers[0]


@pytest.mark.parametrize(
    "uri, reason",
    [
        ("  ", "the lake location is empty"),
        ("s3:///lake", "the URI names no bucket"),
        ("abfs://finops/lake", "an Azure lake URI names container@account"),
        ("gs://bucket/lake?userProject=billing", "credentials and options do not belong in the lake URI"),
    ],
)
def test_a_lake_uri_without_its_parts_names_what_is_missing(uri, reason):
    with pytest.raises(LakeUriError) as raised:
        Lake(uri)
    assert str(raised.value).startswith(reason)
    assert str(raised.value).endswith(
        "; use a local directory, s3://bucket/prefix, gs://bucket/prefix or abfs://container@account/prefix"
    )


def test_a_file_uri_is_the_local_directory(tmp_path):
    Lake(f"file://{tmp_path}/lake").write_partitions("cost_daily", cost_rows(DAY, ["1.00"]))
    assert read_costs(Lake(tmp_path / "lake")) == [(DAY, "svc-0", Decimal("1.0000000000"))]


def test_without_an_emulator_each_store_is_the_cloud_itself_with_its_default_credentials():
    """No endpoint, emulator or connection string set: the SDKs' own endpoint and credential chain."""
    s3 = open_filesystem(parse_lake_uri("s3://finops-lake/prod"), {"AWS_REGION": "eu-west-1"})
    assert s3.region == "eu-west-1" and s3.equals(pafs.S3FileSystem(region="eu-west-1"))
    assert open_filesystem(parse_lake_uri("s3://finops-lake/prod"), {}).equals(pafs.S3FileSystem())
    gcs = open_filesystem(parse_lake_uri("gs://finops-lake/prod"), {})
    assert gcs.equals(pafs.GcsFileSystem()) and not gcs.equals(pafs.GcsFileSystem(anonymous=True))
    azure = open_filesystem(parse_lake_uri("abfs://finops@acmebilling.dfs.core.windows.net/prod"), {})
    assert azure.equals(pafs.AzureFileSystem("acmebilling"))


def test_an_object_store_glob_lists_once_and_keeps_only_matching_files(tmp_path):
    """LakeFileSystem.glob, over a local tree standing in for the bucket: stray objects next to the
    partitions (an editor's backup, a staging file) and other depths are not part of the table."""
    for day in ("2026-11-01", "2026-11-02"):
        folder = tmp_path / "lake" / "cost_daily" / "provider=aws" / f"usage_date={day}"
        folder.mkdir(parents=True)
        (folder / "part.parquet").write_bytes(b"x")
        (folder / "part.parquet.bak").write_bytes(b"x")
    (tmp_path / "lake" / "cost_daily" / "part.parquet").write_bytes(b"x")
    fs = LakeFileSystem(pafs.LocalFileSystem(), "s3")
    root = f"s3://{tmp_path}/lake/cost_daily"
    assert fs.glob(f"{root}/*/*/part.parquet") == [
        f"{tmp_path}/lake/cost_daily/provider=aws/usage_date=2026-11-01/part.parquet",
        f"{tmp_path}/lake/cost_daily/provider=aws/usage_date=2026-11-02/part.parquet",
    ]
    assert fs.glob(f"{root}/part.parquet") == [f"{tmp_path}/lake/cost_daily/part.parquet"]  # no wildcard
    assert fs.glob(f"{root}/none.parquet") == []
    assert fs.glob(f"s3://{tmp_path}/absent/*/part.parquet") == []


class _CountingStore(pafs.FSSpecHandler):
    """A local tree played as an object store that counts the metadata requests (a HEAD each on
    S3, GCS and Blob Storage) made for single paths."""

    def __init__(self):
        from fsspec.implementations.local import LocalFileSystem

        super().__init__(LocalFileSystem())
        self.asked: list[str] = []

    def get_file_info(self, paths):
        self.asked.extend(paths)
        return super().get_file_info(paths)


def test_a_query_takes_each_files_size_and_time_from_the_listing_and_sees_a_replaced_partition(tmp_path):
    """DuckDB asks each file's size and modification time before opening it: from the listing
    its glob just made, not one request each (pyarrow's own open still asks once on S3)."""
    import duckdb

    lake = Lake(tmp_path / "lake")
    lake.write_partitions("cost_daily", cost_rows(DAY, ["1.50"]))
    lake.write_partitions("cost_daily", cost_rows(DAY + timedelta(days=1), ["3.00"]))
    store = _CountingStore()
    con = duckdb.connect()
    con.register_filesystem(LakeFileSystem(pafs.PyFileSystem(store), "s3"))
    query = f"SELECT sum(billed_cost) FROM read_parquet('s3://{tmp_path}/lake/cost_daily/*/*/part.parquet')"
    assert con.execute(query).fetchone()[0] == Decimal("4.50")
    assert store.asked == []

    # A partition replaced by a bigger file between two queries is read whole: the next query lists again.
    lake.write_partitions("cost_daily", cost_rows(DAY, ["7.25", "1.00", "2.00"]))
    assert con.execute(query).fetchone()[0] == Decimal("13.25")
    one = f"s3://{tmp_path}/lake/cost_daily/provider=aws/usage_date={DAY}/part.parquet"
    assert con.execute(f"SELECT sum(billed_cost) FROM read_parquet('{one}')").fetchone()[0] == Decimal("10.25")
    assert store.asked == [one.removeprefix("s3://")]  # a path without a wildcard is asked afresh, once
