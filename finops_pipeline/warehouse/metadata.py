"""Dagster definition metadata made from the one table declaration (``schemas.py``): the asset's
column schema (names, DuckDB types, nullability, descriptions) and its view in the catalog."""

from __future__ import annotations

from dagster import MetadataValue, TableColumn, TableColumnConstraints, TableSchema

from finops_pipeline.warehouse.catalog import duckdb_type
from finops_pipeline.warehouse.schemas import table_spec

CATALOG_DATABASE = "finops"  # finops.duckdb attached under its file name


def column_schema(table: str) -> TableSchema:
    """The columns of the table's catalog view, as Dagster shows them under "Columns"."""
    spec = table_spec(table)
    return TableSchema(
        columns=[
            TableColumn(
                name=f.name,
                type=duckdb_type(f.type),
                description=spec.describe(f.name),
                constraints=TableColumnConstraints(nullable=f.nullable),
            )
            for f in spec.full_schema
        ]
    )


def table_metadata(table: str, *also_writes: str) -> dict:
    """Definition metadata of the asset that writes ``table`` (and the ``also_writes`` tables)."""
    metadata = {
        "dagster/column_schema": MetadataValue.table_schema(column_schema(table)),
        "dagster/table_name": f"{CATALOG_DATABASE}.main.{table}",
    }
    for other in also_writes:
        metadata[f"columns of {other}"] = MetadataValue.table_schema(column_schema(other))
    return metadata
