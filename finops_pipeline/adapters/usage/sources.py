"""Where the usage API's rows come from: the clouds' APIs (the bulk adapters) or the lake.

Both sources answer with rows shaped like the warehouse tables (``cost_daily`` and
``metrics_hourly``, as dicts), so the object API is built the same way from either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from finops_pipeline.clouds.base import CloudSource, ResourceRef
from finops_pipeline.settings import Settings
from finops_pipeline.warehouse.catalog import connect_lake
from finops_pipeline.warehouse.lake import Lake


@dataclass
class CostRows:
    """cost_daily rows for a window of days, and the days the source has billing data for."""

    rows: list[dict]
    covered_days: set[date]


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


class ApiSource:
    """Rows fetched now through a cloud's bulk adapter (API calls, API cost)."""

    name = "api"

    def __init__(self, adapter: CloudSource, settings: Settings):
        self.adapter = adapter
        self.settings = settings

    def cost(self, start: date, end: date, dims: frozenset[str]) -> CostRows:
        """Rows at a grain that includes ``dims`` (canonical: service/region/account/resource)."""
        if "resource" in dims:
            group_by = None  # the contract's full grain carries resource ids where the cloud has them
        else:
            group_by = tuple(sorted(dims)) or ("service",)
        fetched = self.adapter.fetch_cost(start, end, group_by)
        rows = fetched.cost.to_pylist()
        covered = set(fetched.provider_totals) | {r["usage_date"] for r in rows}
        return CostRows(rows, covered & set(fetched.days))

    def resources(
        self, start: datetime, end: datetime, types: list[str] | None, regions: list[str] | None
    ) -> list[ResourceRef] | None:
        """Resources with metrics, where the adapter can list them; None: ask ``metrics`` for all."""
        discover = getattr(self.adapter, "discover", None)
        if discover is not None and self.adapter.provider == "aws":
            refs = []
            for account in self.adapter.metric_accounts():
                for region in regions or self.settings.aws_usage_regions:
                    refs.extend(discover(region, types or None, account=account))
            return refs
        last_day = (end - timedelta(microseconds=1)).date()
        return self.adapter.discover_resources(start.date(), last_day + timedelta(days=1))

    def metrics(
        self, start: datetime, end: datetime, refs: list[ResourceRef] | None, metrics: list[str] | None
    ) -> list[dict]:
        if refs is not None and not refs:
            return []
        return [
            row
            for frame in self.adapter.iter_metric_frames(start, end, resources=refs, metrics=metrics)
            for row in frame.to_pylist()
        ]


class WarehouseSource:
    """Rows read from the lake under FINOPS_DATA_DIR: no API call, no API cost."""

    name = "warehouse"

    def __init__(self, provider: str, settings: Settings):
        self.provider = provider
        self.lake = Lake(settings.lake_root)
        self._con = None  # one in-memory DuckDB per answer, opened on first query

    def _query(self, sql: str, params: list) -> list[dict]:
        if self._con is None:
            self._con = connect_lake(self.lake)
        return self._con.sql(sql, params=params).to_arrow_table().to_pylist()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def cost(self, start: date, end: date, dims: frozenset[str]) -> CostRows:
        rows = self._query(
            "SELECT * FROM cost_daily WHERE provider = ? AND usage_date >= ? AND usage_date < ?",
            [self.provider, start, end],
        )
        written = {
            date.fromisoformat(p["usage_date"])
            for p in self.lake.partitions("cost_daily")
            if p.get("provider") == self.provider
        }
        return CostRows(rows, written & set(days_between(start, end)))

    def resources(
        self, start: datetime, end: datetime, types: list[str] | None, regions: list[str] | None
    ) -> list[ResourceRef]:
        found = self._query(
            "SELECT DISTINCT resource_id, resource_type, region, sub_account_id FROM metrics_hourly "
            "WHERE provider = ? AND hour_start >= ? AND hour_start < ? ORDER BY resource_id",
            [self.provider, start, end],
        )
        return [
            ResourceRef(r["resource_id"], r["resource_type"], r["region"], r["sub_account_id"])
            for r in found
            if (not types or r["resource_type"] in types)
            and (not regions or (r["region"] or "").lower() in {x.lower() for x in regions})
        ]

    def metrics(
        self, start: datetime, end: datetime, refs: list[ResourceRef] | None, metrics: list[str] | None
    ) -> list[dict]:
        sql = "SELECT * FROM metrics_hourly WHERE provider = ? AND hour_start >= ? AND hour_start < ?"
        params: list = [self.provider, start, end]
        if refs is not None:
            if not refs:
                return []
            sql += " AND lower(resource_id) IN (SELECT unnest(?::VARCHAR[]))"
            params.append(sorted({r.resource_id.lower() for r in refs}))
        if metrics:
            sql += " AND metric IN (SELECT unnest(?::VARCHAR[]))"
            params.append(sorted(metrics))
        return self._query(sql, params)
