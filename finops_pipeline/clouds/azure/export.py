"""Azure: the Cost Management ``FocusCost`` export in Blob Storage, read through its manifests.

A scheduled export (docs/operations.md says how to create one) writes each run of a month as

    <container>/<directory>/<export-name>/<YYYYMMDD-YYYYMMDD>/<run-id>/part_<n>_<m>.parquet
                                                                    /manifest.json

and writes ``manifest.json`` last, listing the run's blobs (``blobs[].blobName``, relative to
the container), ``blobCount``, ``dataRowCount`` and ``runInfo`` (``runId``, ``submittedTime``,
``startDate``/``endDate``). A run folder without a manifest is still being written and is never
read. The newest complete run of a month is that month's data; its fingerprint (run id + the
manifest blob's ETag) changes exactly when Cost Management rewrites the month, which is the
restatement signal. Blobs are read in byte ranges (the shared ingestion copies them to local
disk chunk by chunk): a month is never held in memory.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from finops_pipeline.clouds.azure.catalog import PROVIDER
from finops_pipeline.clouds.base import ApiUsage, CloudApiError, utc_now
from finops_pipeline.clouds.exports import ExportManifest, ExportReader, RangeReader

EXPORT_SOURCE = "export:costmanagement:FocusCost"
# Blob list/read operations are billed to the storage account per 10,000, at a price that depends on
# tier, redundancy and region ("Azure Blob Storage pricing"): counted per call, not priced here.
READ_PRICE_PER_CALL = Decimal("0")
STORAGE_SCOPE = "https://storage.azure.com/.default"  # the token Blob Storage takes (Microsoft Entra ID)
MANIFEST = "manifest.json"
READ_BUFFER = 8 * 1024 * 1024  # one ranged Get Blob reads at least this much
_PERIOD = re.compile(r"^(\d{8})-(\d{8})$")
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
_ACCOUNT_HOST = re.compile(r"^([a-z0-9]{3,24})\.blob\.core\.[a-z0-9.]+$")
_ROLE = "Storage Blob Data Reader"


@dataclass(frozen=True)
class ExportLocation:
    """Where an export lives: the account endpoint, the container and the export's folder in it."""

    account_url: str  # https://<account>.blob.core.windows.net, or an emulator's http://host:port/<account>
    container: str
    prefix: str  # <directory>/<export-name>, no leading or trailing slash


def parse_export_uri(uri: str) -> ExportLocation:
    """Split ``https://<account>.blob.core.windows.net/<container>/<directory>/<export-name>`` (or an
    emulator's path-style ``http://127.0.0.1:10000/<account>/<container>/...``); ValueError says what is wrong."""
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("it must start with https:// and name the storage account's blob endpoint")
    segments = [s for s in parts.path.split("/") if s]
    if _ACCOUNT_HOST.match(parts.hostname):
        account_url = f"{parts.scheme}://{parts.netloc}"
    else:  # path style (Azurite, "Use the Azurite emulator": http://<address>:<port>/<account>/<resource>)
        if not segments:
            raise ValueError(f"{parts.hostname} is not <account>.blob.core.windows.net and the path names no account")
        account_url = f"{parts.scheme}://{parts.netloc}/{segments.pop(0)}"
    if not segments:
        raise ValueError("the path names no container")
    container = segments.pop(0)
    if not _CONTAINER.match(container):
        raise ValueError(f"{container!r} is not a container name (3-63 lowercase letters, digits, hyphens)")
    if not segments:
        raise ValueError("the path stops at the container: add the export's directory and name")
    return ExportLocation(account_url, container, "/".join(segments))


@dataclass(frozen=True)
class ExportRunInfo:
    """One complete export run of a month, as its manifest describes it."""

    export_name: str
    billing_period: date  # first day of the exported range (runInfo.startDate)
    period_end: date  # exclusive (runInfo.endDate and the folder name the last day, inclusive)
    run_id: str
    submitted: datetime
    etag: str
    files: tuple[str, ...]  # blob names relative to the container, as the manifest lists them
    row_count: int | None
    location: str  # container/blob of the manifest (for messages)

    @property
    def fingerprint(self) -> str:
        """Changes whenever Cost Management writes the month again (a new run, or a rewritten manifest)."""
        return f"{self.run_id}@{self.etag.strip(chr(34))}"


def container_client(location: ExportLocation, credential: Any):
    """A ContainerClient: AZURE_STORAGE_CONNECTION_STRING when set (the Azurite development account),
    else ``credential`` (the adapter's) on the account URL."""
    from azure.storage.blob import ContainerClient

    connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection:
        # The connection string names the endpoint itself; the URI still picks container and folder.
        return ContainerClient.from_connection_string(connection, location.container)
    return ContainerClient(location.account_url, location.container, credential=credential)


class AzureExportReader(ExportReader):
    """The export's months: each month's newest complete run (its manifest) and its Parquet blobs.

    ``today`` is the run's UTC day (the days before it are ingested); the previous month may still
    change through ``settle_day`` (AZURE_RESTATEMENT_CLOSE_DAY)."""

    provider = PROVIDER
    source = EXPORT_SOURCE

    def __init__(
        self,
        client,
        location: ExportLocation,
        api: ApiUsage | None = None,
        today: date | None = None,
        settle_day: int = 10,
    ):
        self.client = client
        self.location = location
        self.export_name = location.prefix.rsplit("/", 1)[-1]
        self._token_checked = False
        self.api = api or ApiUsage()
        self.today = today or utc_now().date()
        self.settle_day = settle_day
        self.downloaded: list[str] = []  # every blob read, in order (manifests and data files)

    def manifest(self, period: date) -> ExportManifest | None:
        """The newest complete run of the month starting on ``period`` as the shared ingestion reads
        it; None when none is delivered yet."""
        run = self.run(period)
        if run is None:
            return None
        return ExportManifest(run.export_name, run.billing_period, run.fingerprint, run.files, run.location)

    def run(self, period: date) -> ExportRunInfo | None:
        """The newest complete run (with its run id, time and row count) of the month starting on ``period``."""
        runs = [r for folder in self._period_folders() if folder[0] == period for r in [self.latest_run(folder[2])]]
        return max((r for r in runs if r is not None), key=lambda r: r.submitted, default=None)

    def manifest_location(self, period: date) -> str:
        return f"{self.location.container}/{self.location.prefix}/{period:%Y%m%d}-*/<run-id>/{MANIFEST}"

    def latest_run(self, period_folder: str) -> ExportRunInfo | None:
        """The newest ``runInfo.submittedTime`` among the folder's runs that have a manifest (a run
        still writing has none yet: its parts are never read)."""
        base = f"{self.location.prefix}/{period_folder}/"
        runs = [self._manifest(f"{base}{run}/{MANIFEST}") for run in self._children(base)]
        return max((r for r in runs if r is not None), key=lambda r: r.submitted, default=None)

    def open_file(self, name: str) -> BinaryIO:
        """One blob as a stream read in byte ranges (``READ_BUFFER`` per ranged Get Blob):
        the shared ingestion copies it to local disk chunk by chunk, never a whole file in memory."""
        from azure.core.exceptions import ResourceNotFoundError

        self.downloaded.append(name)
        blob = self.client.get_blob_client(name)
        try:
            size = self._call("blob.properties", lambda: blob.get_blob_properties().size, name)
        except ResourceNotFoundError:
            raise CloudApiError(
                PROVIDER,
                "export.read",
                f"a manifest lists {name}, which is not in container {self.location.container}: the run was "
                "overwritten while it was read; the next run reads the new one",
                retryable=True,
            ) from None

        def fetch(offset: int, length: int) -> bytes:
            return self._call("blob.download", lambda: blob.download_blob(offset=offset, length=length).readall(), name)

        return io.BufferedReader(RangeReader(size, fetch), buffer_size=READ_BUFFER)

    def _period_folders(self) -> list[tuple[date, date, str]]:
        """(first day, last day, folder) of every <YYYYMMDD-YYYYMMDD> folder of the export."""
        found = []
        for folder in self._children(self.location.prefix + "/"):
            match = _PERIOD.match(folder)
            if match:
                first, last = (datetime.strptime(g, "%Y%m%d").date() for g in match.groups())
                found.append((first, last, folder))
        return found

    def _children(self, prefix: str) -> list[str]:
        """The folder names directly under ``prefix`` (a hierarchical listing: one level, not every blob)."""
        names = self._call(
            "blob.list", lambda: [b.name for b in self.client.walk_blobs(name_starts_with=prefix, delimiter="/")]
        )
        return sorted(n[len(prefix) :].rstrip("/") for n in names if n.endswith("/"))

    def _manifest(self, name: str) -> ExportRunInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        self.downloaded.append(name)
        try:
            downloader = self._call("blob.download", lambda: self.client.download_blob(name), name)
        except ResourceNotFoundError:
            return None  # the run is still writing: its manifest comes last
        body = json.loads(downloader.readall())
        info = body.get("runInfo") or {}
        files = tuple(b["blobName"] for b in body.get("blobs") or [])
        if body.get("blobCount") is not None and int(body["blobCount"]) != len(files):
            raise CloudApiError(
                PROVIDER, "export.manifest", f"{name} says blobCount={body['blobCount']} but lists {len(files)} blobs"
            )
        return ExportRunInfo(
            export_name=self.export_name,
            billing_period=_day(info["startDate"]),
            period_end=_day(info["endDate"]) + timedelta(days=1),
            run_id=str(info["runId"]),
            submitted=_timestamp(info["submittedTime"]),
            etag=str(downloader.properties.etag),
            files=files,
            row_count=body.get("dataRowCount"),
            location=f"{self.location.container}/{name}",
        )

    def _call(self, operation: str, fn, blob: str | None = None):
        """Run one Blob Storage call (``blob``: the blob it reads, for messages); its failures as CloudApiError."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

        from finops_pipeline.clouds.azure.source import credential_reason, from_credential

        self.api.record(operation, READ_PRICE_PER_CALL)
        try:
            credential = getattr(self.client, "credential", None)
            if not self._token_checked and hasattr(credential, "get_token"):
                # The storage SDK retries a refused token request like a transient error (~90 s of
                # backoff before the error shows); asked once here, a wrong secret fails at once.
                credential.get_token(STORAGE_SCOPE)
                self._token_checked = True
            return fn()
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "ContainerNotFound":
                raise CloudApiError(
                    PROVIDER,
                    operation,
                    f"container {self.location.container!r} does not exist at {self.location.account_url}; "
                    "check AZURE_EXPORT_URI (https://<account>.blob.core.windows.net/<container>/<directory>/"
                    "<export-name>) against the export's destination",
                ) from None
            raise
        except ClientAuthenticationError as exc:
            if from_credential(exc):  # no token: nothing reached Blob Storage
                raise CloudApiError(PROVIDER, operation, credential_reason(exc)) from None
            raise CloudApiError(  # Blob Storage refused the key or token itself (AuthenticationFailed)
                PROVIDER,
                operation,
                f"Blob Storage did not accept the credential for container {self.location.container!r} "
                f"({_code(exc)}): check the account key in AZURE_STORAGE_CONNECTION_STRING (when set) or that "
                "the identity's token is for the storage account's tenant (AZURE_TENANT_ID)",
            ) from None
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise CloudApiError(PROVIDER, operation, _denied(self.location, exc)) from None
            code = _code(exc)
            where = f"{self.location.container}/{blob}" if blob else f"container {self.location.container}"
            reason = f"Blob Storage answered HTTP {exc.status_code} ({code}) for {where}"
            if code == "BlobArchived":
                reason += (
                    ": the blob is in the Archive tier (a lifecycle management rule on the export's folder?); "
                    "rehydrate it to the Hot or Cool tier and keep the folder out of that rule"
                )
            raise CloudApiError(
                PROVIDER, operation, reason, retryable=exc.status_code is not None and exc.status_code >= 500
            ) from None


def _code(exc) -> str:
    """Blob Storage's error code as it answered it (the SDK may hand it over as a StorageErrorCode member)."""
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _denied(location: ExportLocation, exc) -> str:
    return (
        f"Blob Storage denied access to container {location.container!r} "
        f"({_code(exc) or type(exc).__name__}); the identity needs the "
        f"'{_ROLE}' role on it: az role assignment create --assignee <client-id> --role \"{_ROLE}\" "
        "--scope <storage-account-id>/blobServices/default/containers/" + location.container
    )


def _day(value: str) -> date:
    return date.fromisoformat(str(value)[:10])


def _timestamp(value: str) -> datetime:
    """runInfo.submittedTime has 7 fractional digits ("2024-02-03T18:33:03.1032074Z")."""
    text = str(value).rstrip("Z")
    if "." in text:
        head, fraction = text.split(".", 1)
        text = f"{head}.{fraction[:6]}"
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
