"""The FocusCost export source through Azurite: the simulator writes the fleet's Azure bill as Cost
Management does (simulator/azure_export.py); the reader finds each month's newest complete run and
the shared export ingestion (clouds/exports.py) lands it in cost_daily."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from finops_pipeline.clouds.azure.assets import azure_cost
from finops_pipeline.clouds.azure.catalog import COST_SOURCE
from finops_pipeline.clouds.azure.export import AzureExportReader, container_client, parse_export_uri
from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.clouds.exports import (
    ExportError,
    changed_export_days,
    ingest_export,
    ingest_period,
    ingested_state,
)
from finops_pipeline.defs.raw_checks import CONTRACT_CHECKS
from finops_pipeline.settings import SettingsError, get_settings
from finops_pipeline.simulator.azure import serve_azure
from finops_pipeline.simulator.azure_export import MCA_ACCOUNT, ExportDestination, publish_exports, write_run
from finops_pipeline.warehouse.catalog import connect_lake
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline_tests.azure.conftest import refused_secret
from finops_pipeline_tests.runs import materialize

DEST = ExportDestination()
FIRST_DAY = date(2026, 1, 1)  # FINOPS_START_DATE


@pytest.fixture
def container(azurite, monkeypatch):
    """A fresh container on Azurite, reached through AZURE_STORAGE_CONNECTION_STRING as production would."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    name = f"exports-{uuid.uuid4().hex[:12]}"
    client = BlobServiceClient.from_connection_string(azurite.connection_string).create_container(name)
    yield client
    client.delete_container()


@pytest.fixture
def lake(data_dir) -> Lake:
    return Lake(data_dir / "lake")


def _reader(azurite, container, today: date) -> AzureExportReader:
    location = parse_export_uri(f"{azurite.blob_url}/{container.container_name}/{DEST.prefix}")
    return AzureExportReader(container_client(location, None), location, today=today)  # Azurite: by connection string


def _ingest(reader: AzureExportReader, lake: Lake, start: date, end: date):
    return ingest_export(reader, lake, start, end, FIRST_DAY)


def _landed(lake: Lake, sql: str) -> list[tuple]:
    return connect_lake(lake, for_query=sql).execute(sql).fetchall()


TOTALS = (
    "SELECT usage_date, billing_currency, sum(billed_cost) FROM cost_daily "
    "WHERE provider = 'azure' GROUP BY ALL ORDER BY ALL"
)


def test_a_months_export_lands_the_expected_totals_per_day(azurite, container, fleet, lake):
    publish_exports(container, fleet, date(2026, 1, 1), date(2026, 2, 3), rows_per_part=100)
    reader = _reader(azurite, container, today=date(2026, 2, 3))

    run = _ingest(reader, lake, date(2026, 1, 30), date(2026, 2, 3))

    assert run.ingested == {date(2026, 1, 1): "never ingested", date(2026, 2, 1): "never ingested"}
    assert run.line_items == 330  # 10 resources x 33 days, January in 4 part files
    landed = _landed(lake, TOTALS)
    assert len(landed) == 33 * 2  # every day of January and Feb 1-2, in USD and EUR
    assert landed[-4:] == [
        (date(2026, 2, 1), "EUR", Decimal("9.5064440000")),
        (date(2026, 2, 1), "USD", Decimal("9.5314950000")),
        (date(2026, 2, 2), "EUR", Decimal("9.5212670000")),
        (date(2026, 2, 2), "USD", Decimal("9.5294030000")),
    ]
    assert landed[58:60] == [
        (date(2026, 1, 30), "EUR", Decimal("9.5048040000")),
        (date(2026, 1, 30), "USD", Decimal("9.5487510000")),
    ]
    vm = _landed(
        lake,
        "SELECT resource_id, sub_account_id, region, region_name, sku_meter, tags, invoice_id, availability_zone, "
        "source FROM cost_daily WHERE provider = 'azure' AND usage_date = DATE '2026-01-30' "
        "AND resource_id LIKE '%/virtualmachine000'",
    )
    assert vm == [
        (
            "/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/rg-finops/providers/"
            "microsoft.compute/virtualmachines/virtualmachine000",
            "00000000-0000-4000-8000-000000000001",
            "eastus",
            "East US",
            "D2s v5",
            {"finops_id": "azure-virtual_machine-000", "team": "checkout"},
            "G761788937",  # January closed before the run of 2026-02-03: invoiced
            None,  # FocusCost has no AvailabilityZone column
            "export:costmanagement:FocusCost",
        )
    ]
    open_month = _landed(lake, "SELECT DISTINCT invoice_id FROM cost_daily WHERE usage_date >= DATE '2026-02-01'")
    assert open_month == [(None,)]


def test_a_rounding_adjustment_with_empty_service_and_placeholder_ids_lands_named_and_null(
    azurite, container, fleet, lake
):
    """FocusCost leaves ServiceName empty on MCA rounding adjustments and writes "-2" / "Unassigned"
    where a column has no value (SkuPriceId, SubAccountName): neither is stored as a value."""
    publish_exports(container, fleet, date(2026, 1, 1), date(2026, 2, 2), rounding_adjustment=Decimal("-0.0042"))
    _ingest(_reader(azurite, container, today=date(2026, 2, 2)), lake, date(2026, 1, 1), date(2026, 1, 2))

    adjustment = _landed(
        lake,
        "SELECT usage_date, sub_account_id, sub_account_name, service_name, sku_price_id, billed_cost, invoice_id "
        "FROM cost_daily WHERE provider = 'azure' AND charge_category = 'Adjustment'",
    )
    profile = f"/providers/Microsoft.Billing/billingAccounts/{MCA_ACCOUNT}/billingProfiles/1624-USD"
    assert adjustment == [
        (date(2026, 1, 1), profile, None, "Adjustment", None, Decimal("-0.0042000000"), "G761788937"),
    ]
    usd = _landed(lake, TOTALS)
    assert (date(2026, 1, 1), "USD", fleet.daily_total("azure", date(2026, 1, 1))["USD"] - Decimal("0.0042")) in usd
    assert _landed(
        lake, "SELECT count(*) FROM cost_daily WHERE service_name = '' OR sku_price_id IN ('-2', 'Unassigned')"
    ) == [(0,)]


def test_an_unchanged_manifest_is_not_read_again_and_a_new_run_of_the_open_month_is(azurite, container, fleet, lake):
    publish_exports(container, fleet, date(2026, 2, 1), date(2026, 2, 3))
    _ingest(_reader(azurite, container, today=date(2026, 2, 3)), lake, date(2026, 2, 1), date(2026, 2, 3))

    again = _reader(azurite, container, today=date(2026, 2, 3))
    unchanged = _ingest(again, lake, date(2026, 2, 1), date(2026, 2, 3))

    assert unchanged.ingested == {} and unchanged.unchanged == [date(2026, 2, 1)]
    assert unchanged.line_items == 0 and unchanged.writes == []
    assert not any(name.endswith(".parquet") for name in again.downloaded)  # only the manifest was read

    write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 4))  # the next day's run, overwriting
    newer = _reader(azurite, container, today=date(2026, 2, 4))
    restated = _ingest(newer, lake, date(2026, 2, 3), date(2026, 2, 4))

    assert restated.ingested == {date(2026, 2, 1): "manifest changed"}
    assert restated.line_items == 30
    assert _landed(lake, TOTALS)[-2:] == [
        (date(2026, 2, 3), "EUR", Decimal("9.5834620000")),
        (date(2026, 2, 3), "USD", Decimal("9.5275300000")),
    ]


def test_a_run_without_its_manifest_yet_is_never_read(azurite, container, fleet, lake):
    done = write_run(
        container,
        fleet,
        DEST,
        date(2026, 2, 1),
        date(2026, 2, 3),
        submitted=datetime(2026, 2, 3, 6, tzinfo=timezone.utc),
    )
    writing = write_run(
        container,
        fleet,
        DEST,
        date(2026, 2, 1),
        date(2026, 2, 5),
        with_manifest=False,
        overwrite=False,
        submitted=datetime(2026, 2, 5, 6, tzinfo=timezone.utc),
    )
    reader = _reader(azurite, container, today=date(2026, 2, 5))

    run = reader.run(date(2026, 2, 1))
    ingested = _ingest(reader, lake, date(2026, 2, 1), date(2026, 2, 3))

    assert run.run_id == done.run_id != writing.run_id
    assert run.files == done.blobs and run.row_count == 20  # 10 resources x 2 days
    assert ingested.line_items == 20
    assert {n for n in reader.downloaded if writing.run_id in n} == {
        f"{writing.folder}/manifest.json"
    }  # looked, absent
    assert [d for d, *_ in _landed(lake, TOTALS)][-1] == date(2026, 2, 2)


def test_the_fingerprint_holds_for_an_unchanged_manifest_and_changes_with_a_new_run(azurite, container, fleet):
    write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    reader = _reader(azurite, container, today=date(2026, 2, 3))
    first = reader.manifest(date(2026, 2, 1)).fingerprint

    assert reader.manifest(date(2026, 2, 1)).fingerprint == first

    newer = write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 4))
    second = reader.run(date(2026, 2, 1))
    assert second.fingerprint != first and second.run_id == newer.run_id
    assert second.row_count == 30
    assert [b.name for b in container.list_blobs() if newer.run_id not in b.name] == []  # OverwritePreviousReport


def test_with_create_new_report_the_newest_complete_run_wins(azurite, container, fleet):
    older = write_run(
        container,
        fleet,
        DEST,
        date(2026, 2, 1),
        date(2026, 2, 4),
        overwrite=False,
        submitted=datetime(2026, 2, 4, 6, tzinfo=timezone.utc),
    )
    write_run(
        container,
        fleet,
        DEST,
        date(2026, 2, 1),
        date(2026, 2, 3),
        overwrite=False,
        submitted=datetime(2026, 2, 3, 6, tzinfo=timezone.utc),
    )

    assert _reader(azurite, container, today=date(2026, 2, 4)).run(date(2026, 2, 1)).run_id == older.run_id


def test_the_focus_view_of_an_export_day_has_sku_tags_and_invoice(azurite, container, fleet, lake):
    publish_exports(container, fleet, date(2026, 1, 30), date(2026, 2, 2))
    _ingest(_reader(azurite, container, today=date(2026, 2, 2)), lake, date(2026, 1, 31), date(2026, 2, 1))

    sql = (
        "SELECT SkuId, SkuMeter, Tags, InvoiceId, RegionId, PricingUnit FROM focus_cost_and_usage "
        "WHERE ProviderName = 'Microsoft' AND ChargePeriodStart = TIMESTAMPTZ '2026-01-31 00:00:00+00' "
        "AND ResourceId LIKE '%/virtualmachine000'"
    )
    assert _landed(lake, sql) == [
        (
            "DZH318Z01746/0093",
            "D2s v5",
            '{"finops_id":"azure-virtual_machine-000","team":"checkout"}',
            "G761788937",
            "eastus",
            "Hours",
        )
    ]


def test_a_missing_container_fails_naming_it_and_the_setting(azurite, container):
    location = parse_export_uri(f"{azurite.blob_url}/no-such-container/{DEST.prefix}")
    reader = AzureExportReader(container_client(location, None), location, today=date(2026, 2, 3))

    with pytest.raises(CloudApiError, match="container 'no-such-container' does not exist.*AZURE_EXPORT_URI"):
        reader.manifest(date(2026, 2, 1))


def test_a_month_the_export_has_not_delivered_fails_naming_where_its_manifest_was_looked_for(
    azurite, container, fleet, lake
):
    write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    container.upload_blob(f"{DEST.prefix}/notes/readme.txt", b"not an export run")  # not a period folder: ignored
    reader = _reader(azurite, container, today=date(2026, 2, 3))

    with pytest.raises(ExportError) as failure:
        _ingest(reader, lake, date(2026, 1, 31), date(2026, 2, 3))

    assert str(failure.value) == (
        f"azure export manifest failed: no manifest for billing period 2026-01 at {container.container_name}/"
        "finops/focus-daily/20260101-*/<run-id>/manifest.json. The export has not delivered this period yet (the "
        "first delivery can take up to 24 hours after the export is created), or the export location setting is wrong."
    )
    assert not failure.value.retryable and lake.partitions("cost_daily") == []


def test_a_run_overwritten_while_it_is_read_fails_naming_the_blob_and_may_be_retried(azurite, container, fleet, lake):
    old = write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    reader = _reader(azurite, container, today=date(2026, 2, 3))
    manifest = reader.manifest(date(2026, 2, 1))
    write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 4))  # OverwritePreviousReport deletes `old`

    with pytest.raises(CloudApiError) as failure:
        ingest_period(reader, manifest, lake, date(2026, 2, 1), date(2026, 2, 2))

    assert str(failure.value) == (
        f"azure export.read failed: a manifest lists {old.blobs[0]}, which is not in container "
        f"{container.container_name}: the run was overwritten while it was read; the next run reads the new one"
    )
    assert failure.value.retryable and lake.partitions("cost_daily") == []


def test_a_manifest_that_contradicts_itself_is_not_ingested(azurite, container, fleet):
    run = write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    body = json.loads(container.download_blob(run.manifest).readall())
    container.upload_blob(run.manifest, json.dumps({**body, "blobCount": 2}).encode(), overwrite=True)

    with pytest.raises(CloudApiError) as failure:
        _reader(azurite, container, today=date(2026, 2, 3)).manifest(date(2026, 2, 1))

    assert str(failure.value) == f"azure export.manifest failed: {run.manifest} says blobCount=2 but lists 1 blobs"


def test_an_archived_manifest_fails_saying_it_must_be_rehydrated(azurite, container, fleet):
    run = write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    # A lifecycle management rule moved it to the Archive tier, where a blob cannot be read:
    # 409 BlobArchived ("Blob service error codes"; Azurite plays it).
    container.get_blob_client(run.manifest).set_standard_blob_tier("Archive")

    with pytest.raises(CloudApiError) as failure:
        _reader(azurite, container, today=date(2026, 2, 3)).manifest(date(2026, 2, 1))

    assert str(failure.value) == (
        f"azure blob.download failed: Blob Storage answered HTTP 409 (BlobArchived) for "
        f"{container.container_name}/{run.manifest}: the blob is in the Archive tier (a lifecycle management rule "
        "on the export's folder?); rehydrate it to the Hot or Cool tier and keep the folder out of that rule"
    )
    assert not failure.value.retryable


EXPORT_URI = "https://finopsexports.blob.core.windows.net/cost-exports/finops/focus-daily"
BLOB_URL = re.compile(r"https://finopsexports\.blob\.core\.windows\.net/.*")


def test_a_rejected_secret_fails_the_export_read_as_a_credential_problem(rsps, api, credential):
    token_url = refused_secret(rsps)
    location = parse_export_uri(EXPORT_URI)
    # The client the adapter builds: its storage SDK retries a refused token request like a transient
    # error (15 s backoff, 3 times), so the reader asks for the token once before the first call.
    reader = AzureExportReader(container_client(location, credential), location, today=date(2026, 2, 3))

    with pytest.raises(CloudApiError) as failure:
        reader.manifest(date(2026, 2, 1))

    message = str(failure.value)
    assert message.startswith(
        "azure blob.list failed: could not get an Azure token from DefaultAzureCredential: set AZURE_TENANT_ID, "
        "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal, use a managed/workload identity, or run "
        "`az login` (ClientAuthenticationError: "
    )
    assert "AADSTS7000215: Invalid client secret provided." in message and api.client_secret not in message
    assert not any(BLOB_URL.match(call.request.url) for call in rsps.calls)  # no token, no Blob Storage request
    assert [c.request.url for c in rsps.calls if c.request.method == "POST"] == [token_url]  # asked once


def test_an_identity_without_the_blob_reader_role_is_told_the_role_and_the_command(arm, make_adapter, monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    # A valid token without a data role on the container: 403 AuthorizationPermissionMismatch, "This request is not
    # authorized to perform this operation using this permission." ("Blob service error codes"; the same answer in
    # microsoft/AzureStorageExplorer#1104).
    arm.get(
        BLOB_URL,
        status=403,
        headers={"x-ms-error-code": "AuthorizationPermissionMismatch"},
        content_type="application/xml",
        body=(
            '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This '
            "request is not authorized to perform this operation using this permission.\nRequestId:"
            "cb884691-101e-008f-5d77-b8c964000000\nTime:2026-02-03T08:38:10.2327255Z</Message></Error>"
        ),
    )
    adapter = make_adapter(AZURE_COST_SOURCE="export", AZURE_EXPORT_URI=EXPORT_URI)

    with pytest.raises(CloudApiError) as failure:
        adapter.export_reader().manifest(date(2026, 2, 1))

    assert str(failure.value) == (
        "azure blob.list failed: Blob Storage denied access to container 'cost-exports' "
        "(AuthorizationPermissionMismatch); the identity needs the 'Storage Blob Data Reader' role on it: "
        'az role assignment create --assignee <client-id> --role "Storage Blob Data Reader" '
        "--scope <storage-account-id>/blobServices/default/containers/cost-exports"
    )
    listed = [c.request for c in arm.calls if BLOB_URL.match(c.request.url)]
    assert len(listed) == 1 and listed[0].headers["Authorization"].startswith("Bearer ")


def _replace_parts(container, run, table: pa.Table) -> None:
    """Every data blob of ``run`` rewritten as ``table`` (its manifest unchanged)."""
    sink = io.BytesIO()
    pq.write_table(table, sink)
    for name in run.blobs:
        container.upload_blob(name, sink.getvalue(), overwrite=True)


def test_an_export_of_another_dataset_is_refused_naming_the_focus_columns_it_lacks(azurite, container, fleet, lake):
    run = write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    # A Cost Management export of type ActualCost (the EA usage details columns) where FocusCost was expected.
    _replace_parts(
        container,
        run,
        pa.table(
            {
                "Date": ["02/01/2026"],
                "CostInBillingCurrency": [1.25],
                "BillingCurrencyCode": ["USD"],
                "ResourceId": ["/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/rg/x"],
            }
        ),
    )

    with pytest.raises(ExportError) as failure:
        _ingest(_reader(azurite, container, today=date(2026, 2, 3)), lake, date(2026, 2, 1), date(2026, 2, 3))

    assert str(failure.value) == (
        f"azure export ingestion failed: {container.container_name}/{run.manifest}: the data files have no "
        "BilledCost, BillingCurrency, ChargePeriodStart column: they are not a FOCUS export. Point the export "
        "setting at a FOCUS export (Azure: type FocusCost; AWS: FOCUS 1.2 with AWS columns)."
    )
    assert lake.partitions("cost_daily") == []


def test_files_the_mapping_cannot_read_fail_naming_the_manifest_and_land_nothing(azurite, container, fleet, lake):
    run = write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    rows = pq.read_table(io.BytesIO(container.download_blob(run.blobs[0]).readall()))
    # Hand-made, not a provider behaviour: a Tags text that is not a JSON object.
    tags = pa.array(['"team": "checkout"'] * rows.num_rows)
    _replace_parts(container, run, rows.set_column(rows.schema.get_field_index("Tags"), "Tags", tags))

    with pytest.raises(ExportError) as failure:
        _ingest(_reader(azurite, container, today=date(2026, 2, 3)), lake, date(2026, 2, 1), date(2026, 2, 3))

    assert str(failure.value) == (
        f"azure export ingestion failed: {container.container_name}/{run.manifest}: the data files do not map to "
        'FOCUS: Invalid Input Error: Malformed JSON at byte 6 of input: unexpected content after document.  Input: ""team": '
        '"checkout""'
    )
    assert not failure.value.retryable and lake.partitions("cost_daily") == []


def test_days_before_finops_start_date_are_not_landed_from_the_export(azurite, container, fleet, lake):
    publish_exports(container, fleet, date(2026, 1, 1), date(2026, 2, 3))
    reader = _reader(azurite, container, today=date(2026, 2, 3))

    run = ingest_export(reader, lake, date(2026, 1, 30), date(2026, 2, 3), date(2026, 1, 20))

    assert run.ingested == {date(2026, 1, 1): "never ingested", date(2026, 2, 1): "never ingested"}
    assert run.line_items == 330  # the files' line items, January 1-31 and February 1-2
    landed = _landed(lake, "SELECT min(usage_date), max(usage_date), count(DISTINCT usage_date) FROM cost_daily")
    assert landed == [(date(2026, 1, 20), date(2026, 2, 2), 14)]
    assert _landed(lake, TOTALS)[:2] == [
        (date(2026, 1, 20), "EUR", Decimal("9.5378120000")),
        (date(2026, 1, 20), "USD", Decimal("9.5186970000")),
    ]


def test_a_settling_month_before_finops_start_date_is_checked_but_lands_nothing(azurite, container, fleet, lake):
    publish_exports(container, fleet, date(2026, 1, 1), date(2026, 2, 3))
    reader = _reader(azurite, container, today=date(2026, 2, 3))  # January may change through the 10th

    run = ingest_export(reader, lake, date(2026, 2, 1), date(2026, 2, 3), date(2026, 2, 1))

    assert run.checked == [date(2026, 2, 1), date(2026, 1, 1)]
    assert run.ingested == {date(2026, 2, 1): "never ingested"} and run.unchanged == [date(2026, 1, 1)]
    assert _landed(lake, "SELECT DISTINCT usage_date FROM cost_daily ORDER BY 1") == [
        (date(2026, 2, 1),),
        (date(2026, 2, 2),),
    ]
    assert [period for _, period in ingested_state(lake, "azure")] == [date(2026, 2, 1)]


def test_a_day_written_by_the_api_source_since_is_landed_from_the_export_again(azurite, container, fleet, lake):
    write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    _ingest(_reader(azurite, container, today=date(2026, 2, 3)), lake, date(2026, 2, 1), date(2026, 2, 3))
    # AZURE_COST_SOURCE=api for a run in between: February 2 now holds Cost Management query rows.
    day = {"provider": "azure", "usage_date": "2026-02-02"}
    rows = pq.read_table(lake.fs_path(lake.partition_file("cost_daily", day)), filesystem=lake.fs)
    api_rows = rows.set_column(rows.schema.get_field_index("source"), "source", pa.array([COST_SOURCE] * rows.num_rows))
    lake.write_partition("cost_daily", day, api_rows)

    again = _ingest(_reader(azurite, container, today=date(2026, 2, 3)), lake, date(2026, 2, 1), date(2026, 2, 3))

    assert again.ingested == {date(2026, 2, 1): "days of the run's window not landed from the export"}
    assert _landed(lake, "SELECT DISTINCT source FROM cost_daily") == [("export:costmanagement:FocusCost",)]


def test_a_rotated_account_key_is_reported_as_the_key_not_a_missing_role(rsps, monkeypatch):
    key = "bm90LXRoZS1rZXktb2YtdGhpcy1hY2NvdW50LW5vdCB0aGUga2V5IG9mIHRoaXMgYWNjb3VudA=="
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"DefaultEndpointsProtocol=https;AccountName=finopsexports;AccountKey={key};EndpointSuffix=core.windows.net",
    )
    # A Shared Key signature made with a key the account no longer has: 403 AuthenticationFailed, "Server failed
    # to authenticate the request. Make sure the value of Authorization header is formed correctly including the
    # signature." ("Common REST API error codes").
    rsps.get(
        BLOB_URL,
        status=403,
        headers={"x-ms-error-code": "AuthenticationFailed"},
        content_type="application/xml",
        body=(
            '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to '
            "authenticate the request. Make sure the value of Authorization header is formed correctly including the "
            "signature.\nRequestId:0f1e2d3c-501e-0000-0000-000000000000\nTime:2026-02-03T08:38:10.2327255Z</Message>"
            "</Error>"
        ),
    )
    location = parse_export_uri(EXPORT_URI)
    reader = AzureExportReader(container_client(location, None), location, today=date(2026, 2, 3))

    with pytest.raises(CloudApiError) as failure:
        reader.manifest(date(2026, 2, 1))

    assert str(failure.value) == (
        "azure blob.list failed: Blob Storage did not accept the credential for container 'cost-exports' "
        "(AuthenticationFailed): check the account key in AZURE_STORAGE_CONNECTION_STRING (when set) or that the "
        "identity's token is for the storage account's tenant (AZURE_TENANT_ID)"
    )
    assert key not in str(failure.value)


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("abfs://exports@acct.dfs.core.windows.net/finops/focus", "must start with https://"),
        ("https://acct.blob.core.windows.net/", "names no container"),
        ("https://acct.blob.core.windows.net/Exports/finops/focus", "is not a container name"),
        ("https://acct.blob.core.windows.net/exports", "add the export's directory and name"),
        ("http://127.0.0.1:10000/", "127.0.0.1 is not <account>.blob.core.windows.net and the path names no account"),
    ],
)
def test_a_bad_export_uri_fails_at_once_naming_the_variable_and_the_form(uri, why):
    with pytest.raises(SettingsError, match=f"AZURE_EXPORT_URI=.*https://<account>.blob.core.windows.net.*{why}"):
        get_settings(overrides={"AZURE_COST_SOURCE": "export", "AZURE_EXPORT_URI": uri})


def test_export_source_needs_the_uri_and_api_stays_the_default():
    assert get_settings().azure_cost_source == "api"
    with pytest.raises(SettingsError, match="AZURE_EXPORT_URI=''.*when AZURE_COST_SOURCE=export"):
        get_settings(overrides={"AZURE_COST_SOURCE": "export"})
    with pytest.raises(SettingsError, match="AZURE_COST_SOURCE='csv'"):
        get_settings(overrides={"AZURE_COST_SOURCE": "csv"})
    parsed = get_settings(
        overrides={
            "AZURE_COST_SOURCE": "export",
            "AZURE_EXPORT_URI": "https://acct.blob.core.windows.net/exp/dir/focus/",
        }
    )
    assert parsed.azure_export_uri == "https://acct.blob.core.windows.net/exp/dir/focus"
    assert parse_export_uri(parsed.azure_export_uri).prefix == "dir/focus"


def test_the_connection_string_is_a_secret():
    with pytest.raises(SettingsError) as caught:
        raise SettingsError("AZURE_STORAGE_CONNECTION_STRING", "AccountKey=abc", "x")
    assert "abc" not in str(caught.value)


def test_doctor_reports_the_newest_complete_run_without_showing_the_connection_string(
    azurite, container, fleet, monkeypatch
):
    from finops_pipeline.clouds.azure.doctor import check_azure

    write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    monkeypatch.setattr(
        "finops_pipeline.clouds.azure.export.utc_now", lambda: datetime(2026, 2, 3, tzinfo=timezone.utc)
    )
    settings = get_settings(
        overrides={
            "AZURE_USAGE_ENABLED": "true",
            "AZURE_SUBSCRIPTION_IDS": "00000000-0000-4000-8000-000000000001",
            "AZURE_COST_SOURCE": "export",
            "AZURE_EXPORT_URI": f"{azurite.blob_url}/{container.container_name}/{DEST.prefix}",
            "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://127.0.0.1:9",
        }
    )
    monkeypatch.setattr("finops_pipeline.clouds.azure.doctor.datetime", _Frozen)

    findings = {f.what: f for f in check_azure(settings)}

    assert findings["FocusCost export manifest"].status == "ok"
    assert findings["FocusCost export manifest"].detail.endswith("1 file(s), 20 row(s)")
    assert "AccountKey" not in " ".join(f.detail for f in findings.values())


class _Frozen(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 2, 3, 7, tzinfo=tz)


AZURE_CHECKS = [c for c in CONTRACT_CHECKS if c.node_def.name == "azure_cost_contract"]
START, END = date(2026, 1, 30), date(2026, 2, 2)  # [start, end): END is the simulated today


def test_the_asset_reads_the_export_and_reconciles_it_with_cost_management(fleet, data_dir, monkeypatch):
    instance = DagsterInstance.ephemeral()
    tags = {
        "dagster/asset_partition_range_start": START.isoformat(),
        "dagster/asset_partition_range_end": (END - timedelta(days=1)).isoformat(),
    }
    monkeypatch.setattr(
        "finops_pipeline.clouds.azure.export.utc_now", lambda: datetime(2026, 2, 2, 6, tzinfo=timezone.utc)
    )
    with serve_azure(fleet, START, END) as env:
        for k, v in {**env, "AZURE_COST_SOURCE": "export", "FINOPS_START_DATE": "2026-01-01"}.items():
            monkeypatch.setenv(k, v)
        result = materialize([azure_cost, *AZURE_CHECKS], instance=instance, tags=tags)
    assert result.success
    meta = result.asset_materializations_for_node("azure_cost")[0].metadata
    assert meta["cost_source"].value == "export:costmanagement:FocusCost"
    assert (
        meta["api_calls_by_operation"].value["costmanagement.query.usage"] == 2
    )  # one ungrouped query per subscription
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {name: c.passed for name, c in checks.items()} == {name: True for name in checks}
    assert checks["export_matches_api"].metadata["days_compared"].value == 3
    con = duckdb.connect(str(data_dir / "finops.duckdb"), read_only=True)
    landed = con.execute(
        "SELECT usage_date, billing_currency, sum(billed_cost), count(DISTINCT source), count(sku), count(tags) "
        "FROM cost_daily WHERE provider = 'azure' AND usage_date >= ? GROUP BY ALL ORDER BY ALL",
        [START],
    ).fetchall()
    con.close()
    assert landed == [
        (date(2026, 1, 30), "EUR", Decimal("9.5048040000"), 1, 5, 5),
        (date(2026, 1, 30), "USD", Decimal("9.5487510000"), 1, 5, 5),
        (date(2026, 1, 31), "EUR", Decimal("9.4888220000"), 1, 5, 5),
        (date(2026, 1, 31), "USD", Decimal("9.5074710000"), 1, 5, 5),
        (date(2026, 2, 1), "EUR", Decimal("9.5064440000"), 1, 5, 5),
        (date(2026, 2, 1), "USD", Decimal("9.5314950000"), 1, 5, 5),
    ]


def test_the_daily_plan_of_the_export_source_is_the_days_of_a_changed_month(azurite, container, fleet, lake):
    write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    _ingest(_reader(azurite, container, today=date(2026, 2, 3)), lake, date(2026, 2, 1), date(2026, 2, 3))
    assert changed_export_days(_reader(azurite, container, today=date(2026, 2, 3)), lake, FIRST_DAY) == {}

    write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 4))

    changed = changed_export_days(_reader(azurite, container, today=date(2026, 2, 4)), lake, FIRST_DAY)
    assert sorted(changed) == [date(2026, 2, 1), date(2026, 2, 2), date(2026, 2, 3)]
