"""Where the lake lives: a local directory or an object store, opened through pyarrow's own
filesystems (no cloud SDK beyond pyarrow), and handed to DuckDB as an fsspec filesystem.

``FINOPS_LAKE_URI`` is a local path or ``s3://bucket/prefix``, ``gs://bucket/prefix`` or
``abfs://container@account/prefix``. Credentials come from each cloud's default chain (AWS
environment/profile/instance role, Google application default credentials, Azure
DefaultAzureCredential), never from the URI. Endpoints for emulators come from the variables
the clouds' own tools read: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (AWS SDKs; the lake's
own ``FINOPS_LAKE_ENDPOINT_URL`` first, for an S3-compatible lake such as MinIO while the AWS
APIs, the billing export's bucket included, stay on AWS),
``STORAGE_EMULATOR_HOST`` (Google Cloud Storage clients), and the ``BlobEndpoint`` and
``AccountKey`` of ``AZURE_STORAGE_CONNECTION_STRING`` (Azure CLI and SDKs; Azurite's form).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Mapping
from urllib.parse import urlsplit

import pyarrow.fs as pafs
from fsspec.implementations.arrow import ArrowFSWrapper

SCHEMES = ("s3", "gs", "abfs")
URI_FORMS = "a local directory, s3://bucket/prefix, gs://bucket/prefix or abfs://container@account/prefix"


class LakeUriError(ValueError):
    """A lake URI this pipeline cannot open; ``reason`` says why (the message adds what is allowed)."""

    def __init__(self, reason: str):
        super().__init__(f"{reason}; use {URI_FORMS}")
        self.reason = reason


def redacted(uri: str) -> str:
    """The URI with any user:password@ part hidden, for messages."""
    return re.sub(r"(://)[^/@]*:[^/@]*@", r"\1<redacted>@", str(uri))


@dataclass(frozen=True)
class LakeLocation:
    """A parsed lake URI: ``scheme`` None for a local directory; ``path`` is the root as the
    filesystem names it (``bucket/prefix`` on an object store)."""

    scheme: str | None
    path: str
    account: str | None = None  # abfs: the storage account

    @property
    def remote(self) -> bool:
        return self.scheme is not None

    def uri(self, path: str) -> str:
        """A filesystem path as DuckDB and analysts read it (``s3://bucket/key`` or a local path)."""
        return f"{self.scheme}://{path}" if self.scheme else path


def parse_lake_uri(uri: str) -> LakeLocation:
    """Split a lake URI; raise LakeUriError for an unknown scheme or a missing bucket."""
    text = str(uri).strip()
    if "://" not in text:
        if not text:
            raise LakeUriError("the lake location is empty")
        return LakeLocation(None, os.path.realpath(os.path.expanduser(text)))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return LakeLocation(None, os.path.realpath(parts.path))
    if scheme not in SCHEMES:
        raise LakeUriError(f"scheme {scheme}:// is not supported")
    if parts.query or parts.password or (parts.username and scheme != "abfs"):
        raise LakeUriError(
            "credentials and options do not belong in the lake URI (they come from the cloud's default credential chain)"
        )
    prefix = parts.path.strip("/")
    if scheme == "abfs":
        container, _, account = parts.netloc.partition("@")
        if not container or not account:
            raise LakeUriError("an Azure lake URI names container@account")
        root = "/".join(p for p in (container, prefix) if p)
        return LakeLocation(scheme, root, account.split(".", 1)[0])
    if not parts.netloc:
        raise LakeUriError("the URI names no bucket")
    return LakeLocation(scheme, "/".join(p for p in (parts.netloc, prefix) if p))


def _connection_string(environ: Mapping[str, str]) -> dict[str, str]:
    text = environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
    return dict(item.split("=", 1) for item in text.split(";") if "=" in item)


def open_filesystem(location: LakeLocation, environ: Mapping[str, str] | None = None) -> pafs.FileSystem:
    """The pyarrow filesystem for a lake, its endpoint from the environment (emulators)."""
    env = os.environ if environ is None else environ
    if location.scheme is None:
        return pafs.LocalFileSystem()
    if location.scheme == "s3":
        endpoint = env.get("FINOPS_LAKE_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if endpoint:
            parts = urlsplit(endpoint)
            return pafs.S3FileSystem(
                endpoint_override=parts.netloc or endpoint, scheme=parts.scheme or "https", region=region or "us-east-1"
            )
        return pafs.S3FileSystem(region=region) if region else pafs.S3FileSystem()
    if location.scheme == "gs":
        emulator = env.get("STORAGE_EMULATOR_HOST")
        if emulator:
            # The emulator takes no credentials, as the Google clients treat it.
            parts = urlsplit(emulator if "://" in emulator else f"http://{emulator}")
            return pafs.GcsFileSystem(anonymous=True, endpoint_override=parts.netloc, scheme=parts.scheme)
        return pafs.GcsFileSystem()
    settings = _connection_string(env)
    options: dict[str, str] = {}
    if settings.get("BlobEndpoint"):
        blob = urlsplit(settings["BlobEndpoint"])
        # One endpoint for both APIs, as Azurite serves them (it has no hierarchical namespace).
        options.update(
            blob_storage_authority=blob.netloc,
            blob_storage_scheme=blob.scheme,
            dfs_storage_authority=blob.netloc,
            dfs_storage_scheme=blob.scheme,
        )
    if settings.get("AccountKey"):
        options["account_key"] = settings["AccountKey"]
    return pafs.AzureFileSystem(location.account, **options)


class LakeFileSystem(ArrowFSWrapper):
    """A lake's pyarrow filesystem as fsspec, for ``DuckDBPyConnection.register_filesystem``:
    DuckDB then reads ``<scheme>://...`` (globs, hive partitions) through it, with no httpfs
    extension to download."""

    # fsspec keeps every instance it creates in a class-wide cache keyed by its arguments; each
    # Lake has its own pyarrow filesystem, so caching would only keep them all alive.
    cachable = False

    def __init__(self, fs: pafs.FileSystem, scheme: str):
        self._scheme = scheme
        # Each file of the latest listing of a prefix, as listed: DuckDB globs a view's files when a
        # query binds, then asks each one's size and modification time before opening it (a HEAD
        # request each through fsspec; the open makes one more, which pyarrow's Python API cannot skip).
        self._listed: dict[str, pafs.FileInfo] = {}
        super().__init__(fs)

    @property
    def protocol(self):  # DuckDB routes paths with these prefixes here
        return (self._scheme,)

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        return path.split("://", 1)[1] if "://" in path else path

    def unstrip_protocol(self, name: str) -> str:
        return f"{self._scheme}://{self._strip_protocol(name)}"

    def glob(self, path, maxdepth=None, **kwargs):
        """Paths matching a glob of ``*``/``?``/``[]`` segments, from ONE recursive listing of
        the fixed prefix: a request or a page per 1,000 objects, where fsspec's glob lists each
        directory level apart, and pyarrow's GCS filesystem lists no implied directories on a
        non-recursive listing (apache/arrow#35993), so a per-level glob finds nothing there."""
        pattern = self._strip_protocol(path).rstrip("/")
        parts = pattern.split("/")
        fixed = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), None)
        if fixed is None:  # one file: asked afresh, and remembered for the open that follows
            info = self.fs.get_file_info(pattern)
            self._listed.pop(pattern, None)
            if info.type != pafs.FileType.File:
                return []
            self._listed[pattern] = info
            return [pattern]
        base = "/".join(parts[:fixed])
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        listed = {info.path: info for info in self.fs.get_file_info(selector) if info.type == pafs.FileType.File}
        # The listing replaces what an earlier one said under this prefix (a replaced partition has
        # a new size; a deleted one is gone).
        self._listed = {path: info for path, info in self._listed.items() if not path.startswith(base + "/")}
        self._listed.update(listed)
        found = []
        for path in listed:
            names = path.split("/")
            if len(names) == len(parts):
                if all(fnmatchcase(name, part) for name, part in zip(names[fixed:], parts[fixed:])):
                    found.append(path)
        return sorted(found)

    def info(self, path, **kwargs):
        """A listed file's entry from its listing; anything else from the store."""
        listed = self._listed.get(self._strip_protocol(path))
        return self._make_entry(listed) if listed is not None else super().info(path, **kwargs)

    def modified(self, path):
        listed = self._listed.get(self._strip_protocol(path))
        return listed.mtime if listed is not None else super().modified(path)
