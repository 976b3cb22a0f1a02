"""The Parquet lake: hive-partitioned files, each partition replaced atomically.

Layout: ``<root>/<table>/provider=<p>/usage_date=<YYYY-MM-DD>/part.parquet`` (tables
without partition keys keep a single ``<root>/<table>/part.parquet``). A partition is
written to a hidden temp file in its own directory and ``os.replace``-d over the old
file, so readers see the old partition or the new one, never half of one, and a
failed write leaves the old one in place. A writer killed mid-write leaves its hidden
temp file behind: the first write to a table by a ``Lake`` sweeps those older than a day.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from finops_pipeline.warehouse.schemas import TableSpec, table_spec

PART_FILE = "part.parquet"
TEMP_PATTERN = f".{PART_FILE}.*.tmp"
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
    path: Path
    rows: int


def _partition_value(name: str, value: object) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value)
    if not text or any(c in text for c in "/\\=") or text.startswith("."):
        raise LakeWriteError(f"partition value {name}={text!r} is not usable as a directory name")
    return text


def _changes(table: pa.Table, columns: list[str]) -> int:
    """How many times a row's values in ``columns`` differ from the row before it."""
    changed = None
    for name in columns:
        column = table.column(name)
        step = pc.not_equal(column.slice(1), column.slice(0, len(column) - 1))
        changed = step if changed is None else pc.or_(changed, step)
    return pc.sum(changed).as_py() or 0


def conform(spec: TableSpec, data: pa.Table | pd.DataFrame) -> pa.Table:
    """Cast data to the table's stored schema (partition columns dropped).

    Missing nullable columns become nulls; a missing or null non-nullable column, an
    unknown column, or a value that does not cast raises LakeWriteError naming it.
    """
    table = data if isinstance(data, pa.Table) else _from_pandas(spec, data)
    known = set(spec.schema.names) | set(spec.partition_by)
    unknown = [c for c in table.column_names if c not in known]
    if unknown:
        raise LakeWriteError(
            f"{spec.name}: unexpected column(s) {unknown}; the table's columns are {spec.schema.names}"
        )
    columns = []
    for field in spec.schema:
        if field.name not in table.column_names:
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
    """Streams record batches into one partition's temp file (see Lake.open_partition).

    Pages are gathered into row groups of about ROW_GROUP_ROWS rows: one row group per API
    page (a few thousand rows) made every write pay the per-column-chunk cost and left
    readers many small groups; a few MiB of pages held in memory pay for it.
    """

    ROW_GROUP_ROWS = 65_536

    def __init__(self, spec: TableSpec, partition: dict[str, str], tmp_path: Path, path: Path):
        self._spec = spec
        self._writer = pq.ParquetWriter(tmp_path, spec.schema, compression="zstd")
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
    """The lake rooted at ``root`` (normally ``<FINOPS_DATA_DIR>/lake``)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self._swept: set[str] = set()
        self._sweep_lock = threading.Lock()

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def partition_dir(self, table: str, partition: PartitionKey) -> Path:
        spec = table_spec(table)
        missing = [k for k in spec.partition_by if k not in partition]
        if missing or set(partition) - set(spec.partition_by):
            raise LakeWriteError(f"{table} is partitioned by {list(spec.partition_by)}; got {sorted(partition)}")
        path = self.table_dir(table)
        for name in spec.partition_by:
            path = path / f"{name}={_partition_value(name, partition[name])}"
        return path

    @contextmanager
    def open_partition(self, table: str, partition: PartitionKey) -> Iterator[PartitionWriter]:
        """Write a partition batch by batch; it replaces the old one only if the block succeeds."""
        spec = table_spec(table)
        directory = self.partition_dir(table, partition)
        with self._sweep_lock:
            if table not in self._swept:
                self._swept.add(table)
                self.sweep_stale_temp_files(table)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{PART_FILE}.{uuid.uuid4().hex}.tmp"
        values = {k: _partition_value(k, v) for k, v in partition.items()}
        writer = PartitionWriter(spec, values, tmp, directory / PART_FILE)
        try:
            yield writer
            writer.close()
            os.replace(tmp, directory / PART_FILE)
        except BaseException:
            writer.close()
            tmp.unlink(missing_ok=True)
            raise

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
            runs = arrow.select(columns).group_by(columns, use_threads=False).aggregate([([], "count_all")])
            if _changes(arrow, columns) + 1 != runs.num_rows:
                arrow = arrow.take(pc.sort_indices(arrow, [(n, "ascending") for n in columns]))
                runs = arrow.select(columns).group_by(columns, use_threads=False).aggregate([([], "count_all")])
            offset = 0
            for row in runs.to_pylist():
                key = tuple(_partition_value(n, row[n]) for n in columns)
                groups[key] = conform(spec, arrow.slice(offset, row["count_all"]))
                offset += row["count_all"]
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
        """Delete the hidden temp files of killed writers (older than ``older_than``); returns them."""
        depth = len(table_spec(table).partition_by)
        pattern = "/".join(["*"] * depth + [TEMP_PATTERN])
        cutoff = time.time() - older_than.total_seconds()
        swept = []
        for path in self.table_dir(table).glob(pattern):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    swept.append(path)
            except FileNotFoundError:
                pass  # another process swept or renamed it meanwhile
        return swept

    def unreadable_files(self, table: str) -> list[Path]:
        """The table's Parquet files whose footer cannot be read (truncated or not Parquet)."""
        bad = []
        depth = len(table_spec(table).partition_by)
        for path in sorted(self.table_dir(table).glob("/".join(["*"] * depth + [PART_FILE]))):
            try:
                pq.read_metadata(path)
            except (OSError, pa.ArrowException):
                bad.append(path)
        return bad

    def partitions(self, table: str) -> list[dict[str, str]]:
        """The partitions of a table that have a file, sorted."""
        spec = table_spec(table)
        base = self.table_dir(table)
        if not spec.partition_by:
            return [{}] if (base / PART_FILE).exists() else []
        pattern = "/".join(["*"] * len(spec.partition_by)) + f"/{PART_FILE}"
        found = []
        for path in sorted(base.glob(pattern)):
            parts = path.relative_to(base).parts[:-1]
            found.append(dict(p.split("=", 1) for p in parts))
        return found

    def glob(self, table: str) -> str:
        """The read_parquet glob that covers every file of a table."""
        spec = table_spec(table)
        stars = "/".join(["*"] * len(spec.partition_by))
        return str((self.table_dir(table) / stars / PART_FILE) if stars else self.table_dir(table) / PART_FILE)
