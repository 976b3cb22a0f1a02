"""azure_cost + azure_metrics materialized by Dagster against the HTTPS double (real token flow)."""

from __future__ import annotations
