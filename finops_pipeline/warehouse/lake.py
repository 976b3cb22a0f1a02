"""The Parquet lake: hive-partitioned files, each partition replaced atomically.

Layout: ``<root>/<table>/provider=<p>/usage_date=<YYYY-MM-DD>/part.parquet`` (tables
without partition keys keep a single ``<root>/<table>/part.parquet``). The root is a local
directory or an object store (``s3://``, ``gs://``, ``abfs://``; see storage.py), reached
through one pyarrow filesystem. A partition is written to a local staging file, then made
the partition's one file in one step: ``os.replace`` in a local lake, a single object upload
in an object store (visible only once complete). Readers see the old partition or the new
one, never half of one, and a failed or killed write leaves the old one in place. A writer
killed mid-write leaves its staging file behind (a hidden temp file in the partition's
directory, or in the local temp dir for an object store): the first write to a table by a
``Lake`` sweeps those older than a day.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from finops_pipeline.warehouse.schemas import TableSpec, table_spec
from finops_pipeline.warehouse.storage import LakeFileSystem, open_filesystem, parse_lake_uri

PART_FILE = "part.parquet"
TEMP_PATTERN = f".{PART_FILE}.*.tmp"
STAGING_PREFIX = "finops-lake"  # an object-store lake's staging files, in the local temp dir
# No write takes this long: an older temp file belongs to a writer that died.
STALE_TEMP_AGE = timedelta(days=1)
PartitionKey = Mapping[str, object]


class LakeWriteError(ValueError):
    """Data does not fit the table's declared schema; nothing was written."""


@dataclass(frozen=True)
class PartitionWrite:
    """What one partition write did."""

    table: str
    partition: dict[str, str]
    path: Path | str  # a local Path, or the object's URI
    rows: int


def _partition_value(name: str, value: object) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value)
    if not text or any(c in text for c in "/\\=") or text.startswith("."):
        raise LakeWriteError(f"partition value {name}={text!r} is not usable as a directory name")
    return text


def _runs(table: pa.Table, columns: list[str]) -> list[tuple[tuple, int, int]]:
    """The table's runs of rows with equal values in ``columns``, in row order, as (values, offset,
    length). Found from where a row differs from the one before it, not from a hash group_by, whose
    groups come out of first-seen order (pyarrow, from about 28 keys on)."""
    n = table.num_rows
    changed = None
    for name in columns:
        column = table.column(name)
        step = pc.not_equal(column.slice(1), column.slice(0, n - 1))
        changed = step if changed is None else pc.or_(changed, step)
    starts = [0] + [i + 1 for i in pc.indices_nonzero(changed).to_pylist()] if n > 1 else [0]
    firsts = table.select(columns).take(pa.array(starts)).to_pylist()
    ends = starts[1:] + [n]
    return [(tuple(row[c] for c in columns), s, e - s) for row, s, e in zip(firsts, starts, ends)]


def conform(spec: TableSpec, data: pa.Table | pd.DataFrame) -> pa.Table:
    """Cast data to the table's stored schema (partition columns dropped).

    Missing nullable columns become nulls; a missing or null non-nullable column, an
    unknown column, or a value that does not cast raises LakeWriteError naming it.
    """
    table = data if isinstance(data, pa.Table) else _from_pandas(spec, data)
    known = set(spec.schema.names) | set(spec.partition_by)
    present = table.column_names  # built anew on every access: read once (called per partition)
    unknown = [c for c in present if c not in known]
    if unknown:
        raise LakeWriteError(
            f"{spec.name}: unexpected column(s) {unknown}; the table's columns are {spec.schema.names}"
        )
    columns = []
    for field in spec.schema:
        if field.name not in present:
            if not field.nullable:
                raise LakeWriteError(f"{spec.name}: required column {field.name!r} is missing")
            columns.append(pa.nulls(table.num_rows, type=field.type))
            continue
        column = table.column(field.name)
        try:
            column = column.cast(field.type) if column.type != field.type else column
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise LakeWriteError(
                f"{spec.name}.{field.name}: cannot store {column.type} as {field.type}: {exc}"
            ) from None
        if not field.nullable and column.null_count:
            raise LakeWriteError(f"{spec.name}.{field.name}: {column.null_count} null value(s) in a required column")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=spec.schema)


def _from_pandas(spec: TableSpec, frame: pd.DataFrame) -> pa.Table:
    """Arrow columns built straight into their declared types (dicts become MAPs)."""
    types = {f.name: f.type for f in spec.full_schema}
    arrays = {}
    for name in frame.columns:
        target = types.get(name)
        if target is not None and (pa.types.is_map(target) or pa.types.is_decimal(target)):
            try:
                values = [
                    None if _is_missing(v) else (list(v.items()) if isinstance(v, dict) else v)
                    for v in frame[name].tolist()
                ]
                arrays[name] = pa.array(values, type=target)
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
                pass  # let conform() report the column with the cast error
        arrays[name] = pa.Array.from_pandas(frame[name])
    return pa.table(arrays) if arrays else pa.table({})


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class PartitionWriter:
    """Streams record batches into one partition's staging file (see Lake.open_partition).

    Pages are gathered into row groups of about ROW_GROUP_ROWS rows: one row group per API
    page (a few thousand rows) made every write pay the per-column-chunk cost and left
    readers many small groups; a few MiB of pages held in memory pay for it. 16k rows keep
    peak RSS where one group per page had it (65k rows added 10 MiB to a metrics day of
    10,000 resources; docs/performance.md).
    """

    ROW_GROUP_ROWS = 16_384

    def __init__(self, spec: TableSpec, partition: dict[str, str], staging: Path, path: Path | str):
        self._spec = spec
        self._writer = pq.ParquetWriter(staging, spec.schema, compression="zstd")
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.partition = partition
        self.path = path
        self.rows = 0

    def write(self, data: pa.Table | pd.DataFrame) -> None:
        table = conform(self._spec, data)
        if table.num_rows:
            self._pending.append(table)
            self._pending_rows += table.num_rows
            self.rows += table.num_rows
            if self._pending_rows >= self.ROW_GROUP_ROWS:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=self._pending_rows)
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()

    @property
    def result(self) -> PartitionWrite:
        return PartitionWrite(self._spec.name, self.partition, self.path, self.rows)


class Lake:
    """The lake at ``root``: a local directory (normally ``<FINOPS_DATA_DIR>/lake``) or an
    object-store URI (``s3://``, ``gs://``, ``abfs://``, see storage.py)."""

    def __init__(self, root: Path | str, filesystem: pafs.FileSystem | None = None):
        self.location = parse_lake_uri(str(root))
        self.fs = filesystem or open_filesystem(self.location)
        self.uri = self.location.uri(self.location.path)
        # Local lakes keep their directory as a Path; an object store has none.
        self.root = None if self.location.remote else Path(self.location.path)
        self._swept: set[str] = set()
        self._sweep_lock = threading.Lock()

    @property
    def remote(self) -> bool:
        return self.location.remote

    def _path(self, table: str, partition: PartitionKey | None = None) -> str:
        """The filesystem path of a table's directory, or of a partition's directory."""
        path = f"{self.location.path}/{table}"
        if partition is None:
            return path
        spec = table_spec(table)
        missing = [k for k in spec.partition_by if k not in partition]
        if missing or set(partition) - set(spec.partition_by):
            raise LakeWriteError(f"{table} is partitioned by {list(spec.partition_by)}; got {sorted(partition)}")
        for name in spec.partition_by:
            path += f"/{name}={_partition_value(name, partition[name])}"
        return path

    def table_dir(self, table: str) -> Path:
        """A local lake's table directory."""
        return Path(self._path(table))

    def partition_dir(self, table: str, partition: PartitionKey) -> Path:
        """A local lake's partition directory."""
        return Path(self._path(table, partition))

    def partition_file(self, table: str, partition: PartitionKey) -> str:
        """Where a partition's file is, as DuckDB reads it (a local path or ``s3://...``)."""
        return self.location.uri(f"{self._path(table, partition)}/{PART_FILE}")

    def fs_path(self, location: str) -> str:
        """A location of this lake (as :meth:`partition_file` names it) as ``self.fs`` names it."""
        return str(location).split("://", 1)[1] if self.remote else str(location)

    def exists(self, location: str) -> bool:
        """Whether a file of this lake (as :meth:`partition_file` names it) exists."""
        return self.fs.get_file_info(self.fs_path(location)).type == pafs.FileType.File

    def register(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Let ``con`` read this lake: an object store is registered as a filesystem (nothing
        downloaded, no extension installed); a local lake needs nothing."""
        if self.remote:
            con.register_filesystem(LakeFileSystem(self.fs, self.location.scheme))
        return con

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection that can read this lake."""
        return self.register(duckdb.connect())

    @contextmanager
    def open_partition(self, table: str, partition: PartitionKey) -> Iterator[PartitionWriter]:
        """Write a partition batch by batch; it replaces the old one only if the block succeeds.

        Batches go to a local staging file; on success it becomes the partition's one file in
        one step (``_commit``), so readers see the old file or the new one, never half.
        """
        spec = table_spec(table)
        directory = self._path(table, partition)
        final = f"{directory}/{PART_FILE}"
        name = f".{PART_FILE}.{uuid.uuid4().hex}.tmp"
        with self._sweep_lock:
            if table not in self._swept:
                self._swept.add(table)
                self.sweep_stale_temp_files(table)
        if self.remote:
            staging = Path(tempfile.gettempdir()) / f"{STAGING_PREFIX}{name}"
        else:
            Path(directory).mkdir(parents=True, exist_ok=True)
            staging = Path(directory) / name
        values = {k: _partition_value(k, v) for k, v in partition.items()}
        writer = PartitionWriter(spec, values, staging, self.location.uri(final) if self.remote else Path(final))
        try:
            yield writer
            writer.close()
            self._commit(staging, final)
        except BaseException:
            writer.close()
            raise
        finally:
            staging.unlink(missing_ok=True)

    def _commit(self, staging: Path, final: str) -> None:
        """Make the staging file the partition's file, whole or not at all."""
        if not self.remote:
            os.replace(staging, final)  # a rename within the directory: atomic on POSIX
            return
        # One object: S3, GCS and Azure Blob make an upload visible only when it completes
        # (a multipart upload on CompleteMultipartUpload), never part of it.
        out = self.fs.open_output_stream(final)
        with pa.memory_map(str(staging)) as source:
            out.write(source.read_buffer())
        out.close()

    def write_partition(self, table: str, partition: PartitionKey, data: pa.Table | pd.DataFrame) -> PartitionWrite:
        """Replace one partition with ``data`` (which may be empty)."""
        conformed = conform(table_spec(table), data)  # fail before touching the directory
        with self.open_partition(table, partition) as writer:
            writer.write(conformed)
        return writer.result

    def write_partitions(
        self,
        table: str,
        data: pa.Table | pd.DataFrame,
        expected: Iterable[PartitionKey] = (),
    ) -> list[PartitionWrite]:
        """Split ``data`` on the table's partition columns and replace each partition.

        Partitions listed in ``expected`` that received no rows are replaced with empty
        files, so a re-fetch that now returns nothing for a day clears that day.
        All data is validated before the first partition is replaced.
        """
        spec = table_spec(table)
        arrow = data if isinstance(data, pa.Table) else _from_pandas(spec, data)
        for name in spec.partition_by:
            if name not in arrow.column_names:
                raise LakeWriteError(f"{table}: partition column {name!r} is missing")
            if arrow.column(name).null_count:
                raise LakeWriteError(f"{table}: partition column {name!r} has nulls")
        groups: dict[tuple[str, ...], pa.Table] = {}
        if spec.partition_by and arrow.num_rows:
            # Each partition becomes a slice: rows keep their order within it. Data already
            # grouped by partition (a mart's ORDER BY) is sliced as it is; other data is
            # stably sorted first.
            columns = list(spec.partition_by)
            runs = _runs(arrow, columns)
            if len({key for key, _, _ in runs}) != len(runs):  # a partition's rows are not together
                arrow = arrow.take(pc.sort_indices(arrow, [(n, "ascending") for n in columns]))
                runs = _runs(arrow, columns)
            for key, offset, length in runs:
                groups[tuple(_partition_value(n, v) for n, v in zip(columns, key))] = conform(
                    spec, arrow.slice(offset, length)
                )
        elif not spec.partition_by:
            groups[()] = conform(spec, arrow)
        for partition in expected:
            key = tuple(_partition_value(n, partition[n]) for n in spec.partition_by)
            groups.setdefault(key, conform(spec, spec.schema.empty_table()))
        # Partitions are independent files: compress and write them on every core.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            return list(
                pool.map(
                    lambda item: self.write_partition(table, dict(zip(spec.partition_by, item[0])), item[1]),
                    sorted(groups.items()),
                )
            )

    def sweep_stale_temp_files(self, table: str, older_than: timedelta = STALE_TEMP_AGE) -> list[Path]:
        """Delete the temp files of killed writers (older than ``older_than``); returns them: in a
        local lake the table's hidden ones, for an object store the local staging files."""
        if self.remote:
            candidates = Path(tempfile.gettempdir()).glob(f"{STAGING_PREFIX}{TEMP_PATTERN}")
        else:
            depth = len(table_spec(table).partition_by)
            candidates = self.table_dir(table).glob("/".join(["*"] * depth + [TEMP_PATTERN]))
        cutoff = time.time() - older_than.total_seconds()
        swept = []
        for path in candidates:
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    swept.append(path)
            except FileNotFoundError:  # Not reached in tests: a race with another process's sweep or commit
                pass  # another process swept or renamed it meanwhile
        return swept

    def files(self, table: str) -> list[pafs.FileInfo]:
        """The table's partition files (path, size, mtime), sorted by path: one listing."""
        base = self._path(table)
        depth = len(table_spec(table).partition_by)
        selector = pafs.FileSelector(base, recursive=depth > 0, allow_not_found=True)
        found = []
        for info in self.fs.get_file_info(selector):
            parts = info.path[len(base) + 1 :].split("/")
            if (
                info.type == pafs.FileType.File
                and len(parts) == depth + 1
                and parts[-1] == PART_FILE
                and all("=" in p for p in parts[:-1])
            ):
                found.append(info)
        return sorted(found, key=lambda info: info.path)

    def unreadable_files(self, table: str) -> list[str]:
        """The table's Parquet files whose footer cannot be read (truncated or not Parquet)."""
        bad = []
        for path in (info.path for info in self.files(table)):
            try:
                with self.fs.open_input_file(path) as source:
                    pq.read_metadata(source)
            except (OSError, pa.ArrowException):
                bad.append(self.location.uri(path))
        return bad

    def partition_of(self, table: str, location: str) -> dict[str, str]:
        """The partition values of one of the table's files (``provider=aws/...``)."""
        depth = len(table_spec(table).partition_by)
        parts = str(location).split("/")
        return dict(p.split("=", 1) for p in parts[len(parts) - depth - 1 : -1])

    def partitions(self, table: str) -> list[dict[str, str]]:
        """The partitions of a table that have a file, sorted."""
        return [self.partition_of(table, info.path) for info in self.files(table)]

    def glob(self, table: str) -> str:
        """The read_parquet glob that covers every file of a table."""
        stars = ["*"] * len(table_spec(table).partition_by)
        return self.location.uri("/".join([self._path(table), *stars, PART_FILE]))
