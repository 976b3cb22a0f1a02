"""The FocusCost export source through Azurite: the simulator writes the fleet's Azure bill as Cost
Management does (simulator/azure_export.py), the reader finds each month's newest complete run."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from finops_pipeline.clouds.azure.export import (
    EXPORT_SOURCE,
    AzureExportCost,
    AzureExportReader,
    container_client,
    parse_export_uri,
)
from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.settings import SettingsError, get_settings
from finops_pipeline.simulator.azure_export import ExportDestination, publish_exports, write_run

DEST = ExportDestination()


@pytest.fixture
def container(azurite, monkeypatch):
    """A fresh container on Azurite, reached through AZURE_STORAGE_CONNECTION_STRING as production would."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    name = f"exports-{uuid.uuid4().hex[:12]}"
    client = BlobServiceClient.from_connection_string(azurite.connection_string).create_container(name)
    yield client
    client.delete_container()


def _reader(azurite, container) -> AzureExportReader:
    location = parse_export_uri(f"{azurite.blob_url}/{container.container_name}/{DEST.prefix}")
    return AzureExportReader(container_client(location), location)


def _totals(table) -> dict:
    totals: dict = {}
    for row in table.to_pylist():
        day = totals.setdefault(row["usage_date"], {})
        day[row["billing_currency"]] = day.get(row["billing_currency"], Decimal(0)) + row["billed_cost"]
    return totals


def test_a_months_export_lands_the_expected_totals_per_day(azurite, container, fleet):
    publish_exports(container, fleet, date(2026, 1, 1), date(2026, 2, 3), rows_per_part=100)

    fetched = AzureExportCost(_reader(azurite, container)).fetch_cost(date(2026, 1, 30), date(2026, 2, 3))

    assert _totals(fetched.cost) == {
        date(2026, 1, 30): {"USD": Decimal("9.548751"), "EUR": Decimal("9.504804")},
        date(2026, 1, 31): {"USD": Decimal("9.507471"), "EUR": Decimal("9.488822")},
        date(2026, 2, 1): {"USD": Decimal("9.531495"), "EUR": Decimal("9.506444")},
        date(2026, 2, 2): {"USD": Decimal("9.529403"), "EUR": Decimal("9.521267")},
    }
    rows = fetched.cost.to_pylist()
    assert {r["source"] for r in rows} == {EXPORT_SOURCE}
    vm = next(r for r in rows if r["usage_date"] == date(2026, 1, 30) and r["resource_type"] == "virtual_machine")
    assert vm["resource_id"] == (
        "/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/rg-finops/providers/"
        "microsoft.compute/virtualmachines/virtualmachine000"
    )
    assert vm["sub_account_id"] == "00000000-0000-4000-8000-000000000001"
    assert vm["region"] == "eastus" and vm["region_name"] == "East US"
    assert vm["sku_meter"] == "D2s v5" and vm["sku"] is not None
    assert dict(vm["tags"]) == {"finops_id": "azure-virtual_machine-000", "team": "checkout"}
    # January closed before the export ran on 2026-02-03: invoiced. February is open: no invoice yet.
    assert {r["invoice_id"] is not None for r in rows if r["usage_date"].month == 1} == {True}
    assert {r["invoice_id"] for r in rows if r["usage_date"].month == 2} == {None}
    assert {r["availability_zone"] for r in rows} == {None}  # FocusCost has no AvailabilityZone column


def test_a_run_without_its_manifest_yet_is_never_read(azurite, container, fleet):
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
    reader = _reader(azurite, container)

    run = reader.manifest(date(2026, 2, 1))

    assert run.run_id == done.run_id != writing.run_id
    assert run.files == done.blobs and run.row_count == 20  # 10 resources x 2 days
    fetched = AzureExportCost(reader).fetch_cost(date(2026, 2, 1), date(2026, 2, 5))
    assert sorted(_totals(fetched.cost)) == [date(2026, 2, 1), date(2026, 2, 2)]


def test_the_fingerprint_holds_for_an_unchanged_manifest_and_changes_with_a_new_run(azurite, container, fleet):
    write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 3))
    reader = _reader(azurite, container)
    first = reader.manifest(date(2026, 2, 1)).fingerprint

    assert reader.manifest(date(2026, 2, 1)).fingerprint == first

    newer = write_run(container, fleet, DEST, date(2026, 2, 1), date(2026, 2, 4))  # the next day's run overwrites
    second = reader.manifest(date(2026, 2, 1))
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

    assert _reader(azurite, container).manifest(date(2026, 2, 1)).run_id == older.run_id


def test_a_missing_container_fails_naming_it_and_the_setting(azurite, container):
    location = parse_export_uri(f"{azurite.blob_url}/no-such-container/{DEST.prefix}")
    reader = AzureExportReader(container_client(location), location)

    with pytest.raises(CloudApiError, match="container 'no-such-container' does not exist.*AZURE_EXPORT_URI"):
        reader.manifest(date(2026, 2, 1))


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("abfs://exports@acct.dfs.core.windows.net/finops/focus", "must start with https://"),
        ("https://acct.blob.core.windows.net/", "names no container"),
        ("https://acct.blob.core.windows.net/Exports/finops/focus", "is not a container name"),
        ("https://acct.blob.core.windows.net/exports", "add the export's directory and name"),
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
