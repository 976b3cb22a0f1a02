"""AWS_COST_SOURCE=export: the fleet's bill as an AWS Data Export (FOCUS 1.2 with AWS columns,
Parquet) in S3 served by moto's server, ingested by manifest into cost_daily."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import unquote

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetCheckSeverity, DagsterInstance

from finops_pipeline.clouds.aws.assets import aws_cost
from finops_pipeline.clouds.aws.doctor import check_aws
from finops_pipeline.clouds.aws.source import AwsSource
from finops_pipeline.clouds.base import ApiUsage, CloudApiError
from finops_pipeline.clouds.exports import (
    ExportError,
    ExportManifest,
    ExportReader,
    changed_export_days,
    ingest_export,
    ingest_period,
    ingested_state,
)
from finops_pipeline.clouds.restatement import plan_restatement
from finops_pipeline.defs.raw_checks import CONTRACT_CHECKS
from finops_pipeline.settings import SettingsError, get_settings
from finops_pipeline.simulator.aws import EXPORT_BUCKET, free_port, serve_aws
from finops_pipeline.simulator.aws_export import Adjustment, DataExportDouble
from finops_pipeline.simulator.fleet import build_fleet
from finops_pipeline.warehouse.catalog import refresh_catalog
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline_tests.runs import materialize

TODAY = date(2026, 11, 10)  # the open billing period is 2026-11; 2026-10 is closed (invoiced)
OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)
ROWS_PER_DAY = 19  # 15 on-demand resources + the covered instance (Used) + Unused + Purchase + Tax


@pytest.fixture(scope="module")
def fleet():
    return build_fleet()


@pytest.fixture(scope="module")
def world(fleet):
    """moto's server (S3) and the Cost Explorer double, with the export "finops-focus" delivered
    for October (closed) and November through 2026-11-09."""
    with serve_aws(fleet, TODAY - timedelta(days=1), TODAY, today=TODAY) as env:
        s3 = _s3(env)
        export = DataExportDouble(fleet, s3, EXPORT_BUCKET)
        for period in (OCTOBER, NOVEMBER):
            export.deliver(period, TODAY, since=OCTOBER)
        yield env


def _s3(env):
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def aws(world, monkeypatch, tmp_path):
    """An export-sourced AwsSource on TODAY whose HTTP requests are recorded as (method, url)."""
    for name, value in world.items():
        monkeypatch.setenv(name, value)
    requests: list[tuple[str, str]] = []

    def build(uri=f"s3://{EXPORT_BUCKET}/exports/finops-focus"):
        settings = get_settings(
            overrides={
                "AWS_COST_SOURCE": "export",
                "AWS_EXPORT_URI": uri,
                "FINOPS_DATA_DIR": str(tmp_path / "data"),
                "FINOPS_START_DATE": OCTOBER.isoformat(),
            }
        )

        def client(service, region):
            made = boto3.client(service, region_name=region)
            made.meta.events.register(
                "before-send", lambda request, **_: requests.append((request.method, unquote(request.url)))
            )
            return made

        return AwsSource(settings, client_factory=client, today=TODAY)

    build.requests = requests
    return build


def _lake(source: AwsSource) -> Lake:
    return Lake(source.settings.lake_root)


def _data_file_gets(requests) -> list[str]:
    return [url for method, url in requests if method in ("GET", "HEAD") and url.endswith(".parquet")]


def _day_totals(source: AwsSource) -> dict[date, tuple[Decimal, Decimal, int]]:
    glob = str(source.settings.data_dir / "lake" / "cost_daily" / "*" / "*" / "*.parquet")
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT usage_date, sum(billed_cost), sum(effective_cost), count(*) FROM read_parquet('{glob}', "
            "hive_partitioning = true) GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return {d: (b, e, n) for d, b, e, n in rows}


def test_a_month_of_export_lands_each_day_with_the_bill_and_its_focus_columns(aws):
    source = aws()
    run = ingest_export(source.export_reader(), _lake(source), OCTOBER, NOVEMBER, source.settings.start_date)

    assert run.ingested == {OCTOBER: "never ingested"}
    assert run.line_items == 31 * (16 * 24 + 24 + 24 + 1)  # hourly items, the daily tax line
    totals = _day_totals(source)
    assert len(totals) == 31
    assert totals[OCTOBER] == (Decimal("29.431108"), Decimal("28.743571"), ROWS_PER_DAY)
    assert totals[date(2026, 10, 31)] == (Decimal("29.554310"), Decimal("28.869815"), ROWS_PER_DAY)
    assert all(n == ROWS_PER_DAY for _, _, n in totals.values())

    refresh_catalog(source.settings.data_dir)
    con = duckdb.connect(str(source.settings.catalog_path), read_only=True)
    used = con.execute(
        """SELECT ResourceId, AvailabilityZone, InvoiceId, PricingCategory, PricingUnit, PricingQuantity,
                  SkuPriceId IS NOT NULL, CommitmentDiscountStatus, CommitmentDiscountType, BilledCost,
                  EffectiveCost, x_Source
           FROM focus_cost_and_usage
           WHERE ProviderName = 'AWS' AND ChargePeriodStart = TIMESTAMPTZ '2026-10-31 00:00:00+00'
             AND CommitmentDiscountStatus = 'Used'"""
    ).fetchall()
    assert used == [
        (
            "i-3bb2a47c000000004",
            "us-east-1a",
            "1351602578",
            "Committed",
            "Hours",
            Decimal("24.0000000000"),
            True,
            "Used",
            "Compute Savings Plans",
            Decimal("0E-10"),
            Decimal("1.4374400000"),
            "export:aws_focus_1.2",
        )
    ]
    tags, region, sku = con.execute(
        """SELECT tags, region, sku FROM cost_daily
           WHERE resource_id = 'i-3bb2a47c000000004' AND usage_date = DATE '2026-10-31'"""
    ).fetchone()
    assert (tags, region, sku) == ({"team": "data", "finops_id": "aws-ec2-004"}, "us-east-1", "A28541C1E99DFB80")
    unused = con.execute(
        "SELECT ChargeCategory, EffectiveCost, BilledCost FROM focus_cost_and_usage "
        "WHERE CommitmentDiscountStatus = 'Unused' AND ChargePeriodStart = TIMESTAMPTZ '2026-10-31 00:00:00+00'"
    ).fetchall()
    assert unused == [("Usage", Decimal("0.1597160000"), Decimal("0E-10"))]


def test_a_rerun_with_unchanged_manifests_reads_no_data_file_and_changes_nothing(aws):
    source = aws()
    lake = _lake(source)
    ingest_export(source.export_reader(), lake, NOVEMBER, TODAY, source.settings.start_date)
    glob = str(lake.table_dir("cost_daily") / "*" / "*" / "*.parquet")
    with duckdb.connect() as con:  # the open month is not invoiced yet: no InvoiceId, estimated
        invoiced = con.execute(
            f"SELECT usage_date >= DATE '2026-11-01', bool_and(is_estimated), count(DISTINCT invoice_id) "
            f"FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert invoiced == [(False, False, 1), (True, True, 0)]
    files = sorted(lake.table_dir("cost_daily").rglob("part.parquet"))
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    assert len(_data_file_gets(aws.requests)) > 0

    aws.requests.clear()
    again = aws()
    run = ingest_export(again.export_reader(), lake, NOVEMBER, TODAY, again.settings.start_date)
    assert run.ingested == {} and run.unchanged == [NOVEMBER, OCTOBER]
    assert _data_file_gets(aws.requests) == []
    assert [url.rsplit("/", 2)[-2:] for _, url in aws.requests] == [
        ["BILLING_PERIOD=2026-11", "finops-focus-Manifest.json"],
        ["BILLING_PERIOD=2026-10", "finops-focus-Manifest.json"],
    ]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before


def test_a_changed_manifest_of_the_settling_period_reingests_that_period_only(aws, world, fleet):
    export = DataExportDouble(fleet, _s3(world), EXPORT_BUCKET, name="restated")
    for period in (OCTOBER, NOVEMBER):
        export.deliver(period, TODAY, since=OCTOBER)
    source = aws(f"s3://{EXPORT_BUCKET}/exports/restated")
    lake = _lake(source)
    first = ingest_export(source.export_reader(), lake, NOVEMBER, TODAY, source.settings.start_date)
    assert first.ingested == {NOVEMBER: "never ingested", OCTOBER: "never ingested"}  # day 10 <= settle day 15
    assert _day_totals(source)[date(2026, 10, 20)][0] == Decimal("29.465901")

    # AWS refreshes the closed month during the first weeks of the next one: a late credit.
    export.adjustments[OCTOBER] = [Adjustment(date(2026, 10, 20), Decimal("-5.25"))]
    export.deliver(OCTOBER, TODAY, since=OCTOBER)
    assert changed_export_days(source.export_reader(), lake, source.settings.start_date) == {
        OCTOBER + timedelta(days=i): "export manifest of 2026-10 changed" for i in range(31)
    }
    aws.requests.clear()
    again = aws(f"s3://{EXPORT_BUCKET}/exports/restated")
    run = ingest_export(again.export_reader(), lake, NOVEMBER, TODAY, again.settings.start_date)
    assert run.ingested == {OCTOBER: "manifest changed"} and run.unchanged == [NOVEMBER]
    assert {url.split("/")[-2] for url in _data_file_gets(aws.requests)} == {"BILLING_PERIOD=2026-10"}
    totals = _day_totals(again)
    assert totals[date(2026, 10, 20)][0] == Decimal("24.215901")
    assert totals[date(2026, 10, 21)][0] == Decimal("29.648578")
    state = ingested_state(lake, "aws")
    assert state[("restated", OCTOBER)].fingerprint != state[("restated", NOVEMBER)].fingerprint


def test_the_daily_plan_of_an_export_source_is_the_days_of_changed_manifests(aws):
    source = aws()
    plan = plan_restatement(
        "aws",
        source.settings,
        TODAY,
        changed_export_days=lambda: changed_export_days(source.export_reader(), _lake(source), OCTOBER),
    )
    # Nothing ingested yet: both periods' days; none of the Cost Explorer "estimated" rules.
    assert min(plan) == OCTOBER and max(plan) == TODAY - timedelta(days=1) and len(plan) == 40
    assert plan[OCTOBER] == "export manifest of 2026-10 changed"
    assert plan[TODAY - timedelta(days=1)] == "the newest day"
    ingest_export(source.export_reader(), _lake(source), NOVEMBER, TODAY, OCTOBER)
    plan = plan_restatement(
        "aws",
        source.settings,
        TODAY,
        changed_export_days=lambda: changed_export_days(source.export_reader(), _lake(source), OCTOBER),
    )
    assert plan == {
        TODAY - timedelta(days=i): reason
        for i, reason in [(4, "within FINOPS_RESTATEMENT_DAYS=3"), (3, "within FINOPS_RESTATEMENT_DAYS=3")]
        + [(2, "within FINOPS_RESTATEMENT_DAYS=3"), (1, "the newest day")]
    }


def test_a_monthly_granularity_export_fails_clearly_and_lands_nothing(aws, world, fleet):
    DataExportDouble(fleet, _s3(world), EXPORT_BUCKET, name="monthly", granularity="MONTHLY").deliver(
        OCTOBER, TODAY, since=OCTOBER
    )
    source = aws(f"s3://{EXPORT_BUCKET}/exports/monthly")
    with pytest.raises(ExportError) as failure:
        ingest_export(source.export_reader(), _lake(source), OCTOBER, NOVEMBER, OCTOBER)
    assert str(failure.value) == (
        "aws export ingestion failed: s3://finops-billing-exports/exports/monthly/metadata/BILLING_PERIOD=2026-10/"
        "monthly-Manifest.json: charge periods last up to 31 days, so the export has monthly time granularity; "
        "cost_daily needs one row per day. Recreate the export with daily or hourly time granularity."
    )
    assert not failure.value.retryable
    assert _lake(source).partitions("cost_daily") == [] and ingested_state(_lake(source), "aws") == {}


def test_a_missing_manifest_fails_clearly(aws):
    source = aws(f"s3://{EXPORT_BUCKET}/exports/never-delivered")
    with pytest.raises(ExportError) as failure:
        ingest_export(source.export_reader(), _lake(source), NOVEMBER, TODAY, OCTOBER)
    assert str(failure.value) == (
        "aws export manifest failed: no manifest for billing period 2026-11 at "
        "s3://finops-billing-exports/exports/never-delivered/metadata/BILLING_PERIOD=2026-11/"
        "never-delivered-Manifest.json. The export has not delivered this period yet (the first delivery "
        "can take up to 24 hours after the export is created), or the export location setting is wrong."
    )


def test_an_unreachable_s3_names_the_endpoint_and_may_be_retried(aws, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    source = aws()
    with pytest.raises(CloudApiError) as failure:
        source.export_reader().manifest(NOVEMBER)
    assert str(failure.value) == (
        f"aws GetObject failed: could not reach {url}/{EXPORT_BUCKET}/exports/finops-focus/metadata/"
        "BILLING_PERIOD%3D2026-11/finops-focus-Manifest.json (EndpointConnectionError): check network access, "
        "proxies and AWS_ENDPOINT_URL_* (still failing after botocore's adaptive retries (AWS_MAX_ATTEMPTS); "
        "the run can be retried)"
    )
    assert failure.value.retryable


def test_a_period_delivered_without_data_files_lands_its_days_empty(aws, world, fleet):
    # The simulated bill begins after November's days so far: the manifest lists no data file.
    DataExportDouble(fleet, _s3(world), EXPORT_BUCKET, name="empty").deliver(NOVEMBER, TODAY, since=TODAY)
    source = aws(f"s3://{EXPORT_BUCKET}/exports/empty")

    run = ingest_export(source.export_reader(), _lake(source), NOVEMBER, TODAY, NOVEMBER)

    assert run.ingested == {NOVEMBER: "never ingested"} and run.line_items == 0
    assert [(w.partition["usage_date"], w.rows) for w in run.writes] == [(f"2026-11-0{d}", 0) for d in range(1, 10)]
    assert _day_totals(source) == {}
    assert ingested_state(_lake(source), "aws")[("empty", NOVEMBER)].data_files == 0


def test_a_missing_bucket_names_the_bucket_and_the_manifest_it_looked_for(aws):
    source = aws("s3://no-such-export-bucket/exports/finops-focus")
    with pytest.raises(CloudApiError) as failure:
        ingest_export(source.export_reader(), _lake(source), NOVEMBER, TODAY, OCTOBER)
    assert str(failure.value) == (
        "aws GetObject failed: NoSuchBucket: bucket 'no-such-export-bucket' does not exist (looked for "
        "s3://no-such-export-bucket/exports/finops-focus/metadata/BILLING_PERIOD=2026-11/finops-focus-Manifest.json); "
        "check AWS_EXPORT_URI against the export's S3 destination"
    )
    assert not failure.value.retryable


def test_a_data_file_gone_since_the_manifest_was_read_names_it_and_may_be_retried(aws, world, fleet):
    export = DataExportDouble(fleet, _s3(world), EXPORT_BUCKET, name="vanishing")
    export.deliver(OCTOBER, TODAY, since=OCTOBER)
    source = aws(export.uri)
    reader = source.export_reader()
    manifest = reader.manifest(OCTOBER)
    # An overwriting refresh deletes the period's files before it uploads the new ones ("Understanding
    # export delivery", overwrite): a run holding the old manifest then finds its file gone.
    _s3(world).delete_object(
        Bucket=EXPORT_BUCKET, Key="exports/vanishing/data/BILLING_PERIOD=2026-10/vanishing-00001.snappy.parquet"
    )
    with pytest.raises(CloudApiError) as failure:
        ingest_period(reader, manifest, _lake(source), OCTOBER, date(2026, 10, 31))
    assert str(failure.value) == (
        "aws HeadObject failed: 404: the manifest lists s3://finops-billing-exports/exports/vanishing/data/"
        "BILLING_PERIOD=2026-10/vanishing-00001.snappy.parquet, which is not there: the export was delivered again "
        "while it was read; the next run reads the new delivery"
    )
    assert failure.value.retryable


def test_s3_out_of_reach_while_a_data_file_is_read_names_the_endpoint_and_may_be_retried(aws, monkeypatch):
    manifest = aws().export_reader().manifest(OCTOBER)
    url = f"http://127.0.0.1:{free_port()}"  # the network goes away after the manifest was read
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(CloudApiError) as failure:
        aws().export_reader().open_file(manifest.files[0])
    assert str(failure.value) == (
        f"aws HeadObject failed: could not reach {url}/{EXPORT_BUCKET}/exports/finops-focus/data/"
        "BILLING_PERIOD%3D2026-10/finops-focus-00001.snappy.parquet (EndpointConnectionError): check network access, "
        "proxies and AWS_ENDPOINT_URL_* (still failing after botocore's adaptive retries (AWS_MAX_ATTEMPTS); "
        "the run can be retried)"
    )
    assert failure.value.retryable


def test_the_export_reader_of_an_api_sourced_adapter_says_what_is_missing():
    source = AwsSource(get_settings(environ={}), today=TODAY)
    with pytest.raises(ValueError, match="^AwsExportReader needs AWS_EXPORT_URI$"):
        source.export_reader()


def test_create_new_delivery_reads_only_the_files_of_the_manifest(aws, world, fleet):
    """With "create new" delivery every execution's files stay under the period's folder: reading
    the folder would count the month twice; the manifest lists the newest execution's only."""
    export = DataExportDouble(fleet, _s3(world), EXPORT_BUCKET, name="versions", overwrite=False)
    export.deliver(OCTOBER, TODAY, since=OCTOBER)
    export.deliver(OCTOBER, TODAY, since=OCTOBER)
    listed = _s3(world).list_objects_v2(Bucket=EXPORT_BUCKET, Prefix="exports/versions/data/")["KeyCount"]
    assert listed == 2
    source = aws(f"s3://{EXPORT_BUCKET}/exports/versions")
    ingest_export(source.export_reader(), _lake(source), OCTOBER, NOVEMBER, OCTOBER)
    assert _day_totals(source)[OCTOBER] == (Decimal("29.431108"), Decimal("28.743571"), ROWS_PER_DAY)


def test_tags_land_exactly_as_the_line_items_carry_them(tmp_path):
    """The mapping takes Tags through JSON text (clouds/exports.py): escapes, a NULL tag value, an
    empty map and the key order come back as delivered; a group takes one of its lines' maps."""
    tags = pa.array(
        [[("b", "1"), ("a", None), ('q"\\u', "line\nbreak\t\u00e9")], [], None],
        type=pa.map_(pa.string(), pa.string()),
    )
    start = [datetime(2026, 10, 1, h, tzinfo=timezone.utc) for h in range(3)]
    pq.write_table(
        pa.table(
            {
                "BillingAccountId": ["111111111111"] * 3,
                "ServiceName": ["Amazon Elastic Compute Cloud"] * 3,
                "ChargeCategory": ["Usage"] * 3,
                "ResourceId": ["i-1", "i-2", "i-3"],
                "BilledCost": [1.25, 2.5, 0.125],
                "EffectiveCost": [1.25, 2.5, 0.125],
                "BillingCurrency": ["USD"] * 3,
                "ChargePeriodStart": start,
                "ChargePeriodEnd": [s + timedelta(hours=1) for s in start],
                "Tags": tags,
            }
        ),
        tmp_path / "part-0.parquet",
    )

    class LocalReader(ExportReader):
        provider, source, export_name, api, settle_day, today = "aws", "export:test", "t", ApiUsage(), 15, TODAY

        def manifest(self, period):
            return ExportManifest("t", period, "fp", (str(tmp_path / "part-0.parquet"),), "local")

        def open_file(self, uri):
            return open(uri, "rb")

    reader = LocalReader()
    _, _, written = ingest_period(reader, reader.manifest(OCTOBER), Lake(tmp_path / "lake"), OCTOBER, OCTOBER)
    assert dict(zip(written["resource_id"].to_pylist(), written["tags"].to_pylist())) == {
        "i-1": [("b", "1"), ("a", None), ('q"\\u', "line\nbreak\t\u00e9")],
        "i-2": [],
        "i-3": None,
    }


def test_export_source_needs_its_uri_and_says_so():
    with pytest.raises(SettingsError) as failure:
        get_settings(environ={"AWS_COST_SOURCE": "export"})
    assert "AWS_COST_SOURCE='export' is invalid" in str(failure.value)
    assert "AWS_EXPORT_URI" in str(failure.value)
    with pytest.raises(SettingsError, match="AWS_EXPORT_URI='my-bucket/focus' is invalid"):
        get_settings(environ={"AWS_COST_SOURCE": "export", "AWS_EXPORT_URI": "my-bucket/focus"})
    with pytest.raises(SettingsError, match="AWS_COST_SOURCE='cur' is invalid: expected api"):
        get_settings(environ={"AWS_COST_SOURCE": "cur"})
    assert get_settings(environ={}).cost_source("aws") == "api"


# -- the asset and the reconciliation check, on today's dates --------------------------------

END = datetime.now(timezone.utc).date()
START = END - timedelta(days=3)
AWS_CHECKS = [c for c in CONTRACT_CHECKS if c.node_def.name == "aws_cost_contract"]


def _tags():
    return {
        "dagster/asset_partition_range_start": START.isoformat(),
        "dagster/asset_partition_range_end": (END - timedelta(days=1)).isoformat(),
    }


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_the_asset_reads_the_export_and_reconciles_it_with_cost_explorer(fleet, data_dir, monkeypatch):
    instance = DagsterInstance.ephemeral()
    with serve_aws(fleet, START, END) as env:
        for k, v in {**env, "AWS_COST_SOURCE": "export"}.items():
            monkeypatch.setenv(k, v)
        result = materialize([aws_cost, *AWS_CHECKS], instance=instance, tags=_tags())
        assert result.success
        meta = result.asset_materializations_for_node("aws_cost")[0].metadata
        assert meta["cost_source"].value == "export:aws_focus_1.2"
        assert meta["api_calls_by_operation"].value["GetCostAndUsage"] == 1  # the ungrouped totals call
        assert "GetCostForecast" in meta["api_calls_by_operation"].value  # forecasts still from the API
        checks = _checks(result)
        assert {name: c.passed for name, c in checks.items()} == {name: True for name in checks}
        assert checks["export_matches_api"].metadata["days_compared"].value >= 3
        con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
        per_day = dict(
            con.execute(
                "SELECT usage_date, sum(billed_cost) FROM cost_daily WHERE usage_date >= ? GROUP BY 1", [START]
            ).fetchall()
        )
        assert per_day == {
            START + timedelta(days=i): fleet.daily_total("aws", START + timedelta(days=i))["USD"] for i in range(3)
        }
        assert con.execute("SELECT DISTINCT source FROM cost_daily").fetchall() == [("export:aws_focus_1.2",)]
        con.close()

        doctor = {f.what: f for f in check_aws(get_settings())}
        found = doctor["s3:GetObject (export manifest)"]
        assert found.status == "ok", found.detail
        assert found.detail.startswith(
            f"s3://finops-billing-exports/exports/finops-focus/metadata/BILLING_PERIOD={END - timedelta(days=1):%Y-%m}/"
        )

        # A late credit the export has and Cost Explorer does not (yet): the check warns with the day.
        export = DataExportDouble(fleet, _s3(env), EXPORT_BUCKET)
        export.adjustments[START.replace(day=1)] = [Adjustment(START, Decimal("-7.50"))]
        export.deliver(START.replace(day=1), END, since=START)
        result = materialize([aws_cost, *AWS_CHECKS], instance=instance, tags=_tags())
    check = _checks(result)["export_matches_api"]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    differ = check.metadata["days_that_differ"].value
    assert differ == [
        {
            "day": START.isoformat(),
            "currency": "USD",
            "api": f"{fleet.daily_total('aws', START)['USD']:.10f}",
            "export": f"{fleet.daily_total('aws', START)['USD'] - Decimal('7.50'):.10f}",
            "difference": "-7.5000000000",
        }
    ]


def test_cost_explorer_refusing_the_totals_call_still_lands_the_export(fleet, data_dir, monkeypatch):
    """The API's day totals are optional for an export-sourced run: with Cost Explorer refused (an
    IAM policy without ce:*), the export's rows land, the metadata says what was skipped and why,
    and the reconciliation check says which days it could not compare."""
    instance = DagsterInstance.ephemeral()
    with serve_aws(fleet, START, END, deny_access=True) as env:
        for k, v in {**env, "AWS_COST_SOURCE": "export"}.items():
            monkeypatch.setenv(k, v)
        result = materialize([aws_cost, *AWS_CHECKS], instance=instance, tags=_tags())
    assert result.success
    meta = result.asset_materializations_for_node("aws_cost")[0].metadata
    denied = (
        "aws {call} failed: access denied (AccessDeniedException). Grant the IAM action ce:{call} to the "
        "pipeline's role or user (see docs/operations.md for the least-privilege policy)."
    )
    assert meta["skipped_optional"].value == {
        "GetCostForecast": denied.format(call="GetCostForecast"),
        "daily_totals": denied.format(call="GetCostAndUsage"),
    }
    assert meta["api_totals"].value == {}
    check = _checks(result)["export_matches_api"]
    assert (check.metadata["days_compared"].value, check.metadata["days_without_api_total"].value) == (
        0,
        ", ".join((START + timedelta(days=i)).isoformat() for i in range(3)),
    )
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    per_day = dict(
        con.execute(
            "SELECT usage_date, sum(billed_cost) FROM cost_daily WHERE usage_date >= ? GROUP BY 1", [START]
        ).fetchall()
    )
    con.close()
    assert per_day == {
        START + timedelta(days=i): fleet.daily_total("aws", START + timedelta(days=i))["USD"] for i in range(3)
    }
