"""AWS Data Exports (FOCUS 1.2 with AWS columns, Parquet) read from S3 (AWS_COST_SOURCE=export).

Layout (AWS Data Exports user guide, "Understanding export delivery"):
``s3://<bucket>/<prefix>/<export-name>/data/BILLING_PERIOD=YYYY-MM/...`` holds the data files and
``.../metadata/BILLING_PERIOD=YYYY-MM/<export-name>-Manifest.json`` lists them (``dataFiles``, full
S3 URIs; "Data Exports manifest file reference"). The manifest is delivered only after all the data
files, and rewritten at every refresh: its ETag is the period's fingerprint. With the "create new"
delivery older executions' files stay in the folder, so only the files the manifest lists are read.
Files are read in byte ranges (GetObject with Range), never downloaded whole.
"""

from __future__ import annotations

import io
import json
from datetime import date
from typing import BinaryIO
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from finops_pipeline.clouds.aws.catalog import S3_GET_PER_REQUEST
from finops_pipeline.clouds.aws.source import CALL_ERRORS, AwsSource, api_error
from finops_pipeline.clouds.base import CloudApiError
from finops_pipeline.clouds.exports import ExportManifest, ExportReader, RangeReader

SOURCE = "export:aws_focus_1.2"
READ_BUFFER = 8 * 1024 * 1024  # one ranged GET reads at least this much


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


class AwsExportReader(ExportReader):
    """The export at AWS_EXPORT_URI, read with the AWS adapter's S3 client (same credentials,
    retries and error messages as every AWS call)."""

    provider = "aws"
    source = SOURCE

    def __init__(self, aws: AwsSource):
        self.aws = aws
        self.api = aws.api
        uri = aws.settings.aws_export_uri
        if not uri:
            raise ValueError("AwsExportReader needs AWS_EXPORT_URI")
        self.bucket, root = split_s3_uri(uri)
        self.root = root.rstrip("/")
        self.export_name = self.root.rsplit("/", 1)[-1]

    @property
    def today(self) -> date:
        return self.aws.today

    @property
    def settle_day(self) -> int:
        return self.aws.settings.aws_restatement_settle_day

    def _manifest_key(self, period: date) -> str:
        return f"{self.root}/metadata/BILLING_PERIOD={period:%Y-%m}/{self.export_name}-Manifest.json"

    def manifest_location(self, period: date) -> str:
        return f"s3://{self.bucket}/{self._manifest_key(period)}"

    def _s3(self, operation: str, **kwargs):
        """One read of a data file the manifest lists."""
        client = self.aws.client("s3")
        try:
            response = getattr(client, {"GetObject": "get_object", "HeadObject": "head_object"}[operation])(**kwargs)
        except CALL_ERRORS as exc:
            code = _error_code(exc)
            if code in ("NoSuchKey", "404"):
                raise CloudApiError(
                    "aws",
                    operation,
                    f"{code}: the manifest lists s3://{kwargs['Bucket']}/{kwargs['Key']}, which is not there: the "
                    "export was delivered again while it was read; the next run reads the new delivery",
                    retryable=True,
                ) from None
            raise api_error(exc, operation) from None
        self.api.record(f"s3:{operation}", S3_GET_PER_REQUEST)
        return response

    def manifest(self, period: date) -> ExportManifest | None:
        key = self._manifest_key(period)
        client = self.aws.client("s3")
        try:
            response = client.get_object(Bucket=self.bucket, Key=key)
        except CALL_ERRORS as exc:
            code = _error_code(exc)
            if code in ("NoSuchKey", "404"):
                self.api.record("s3:GetObject", S3_GET_PER_REQUEST)
                return None
            if code == "NoSuchBucket":
                raise CloudApiError(
                    "aws",
                    "GetObject",
                    f"NoSuchBucket: bucket {self.bucket!r} does not exist (looked for {self.manifest_location(period)}); "
                    "check AWS_EXPORT_URI against the export's S3 destination",
                ) from None
            raise api_error(exc, "GetObject") from None
        self.api.record("s3:GetObject", S3_GET_PER_REQUEST)
        body = json.loads(response["Body"].read())
        return ExportManifest(
            export_name=self.export_name,
            billing_period=period,
            fingerprint=response["ETag"].strip('"'),
            files=tuple(body.get("dataFiles") or ()),
            location=f"s3://{self.bucket}/{key}",
        )

    def open_file(self, uri: str) -> BinaryIO:
        bucket, key = split_s3_uri(uri)
        size = self._s3("HeadObject", Bucket=bucket, Key=key)["ContentLength"]

        def fetch(offset: int, length: int) -> bytes:
            ranged = f"bytes={offset}-{offset + length - 1}"
            return self._s3("GetObject", Bucket=bucket, Key=key, Range=ranged)["Body"].read()

        return io.BufferedReader(RangeReader(size, fetch), buffer_size=READ_BUFFER)


def _error_code(exc: Exception) -> str | None:
    """S3's error code of a failed call ("NoSuchKey"; a HEAD has no body, so "404"), None if it never answered."""
    return exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
