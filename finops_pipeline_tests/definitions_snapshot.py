"""A readable, stable description of the Dagster definitions, compared with the checked-in snapshot.

``python -m finops_pipeline_tests.definitions_snapshot`` prints it; ``--write`` replaces
``definitions_snapshot.json`` (do that only for a deliberate change to the graph, and review the
diff). It runs without the caller's FINOPS_*/cloud variables or .env file, so the partitions start
at FINOPS_START_DATE's default whatever the environment says; ``test_definitions_snapshot.py`` runs
it in a fresh process for the same reason (the partitions are built when the module is imported).
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path

SNAPSHOT_PATH = Path(__file__).with_name("definitions_snapshot.json")
KIND_TAG_PREFIX = "dagster/kind/"
# Settings that change the definitions (FINOPS_START_DATE moves the partitions) or point at real clouds.
LEAKY_PREFIXES = ("AWS_", "GCP_", "GOOGLE_", "AZURE_", "FINOPS_", "USAGE_", "DAGSTER_HOME")


def _keys(keys) -> list[str]:
    return sorted(key.to_user_string() for key in keys)


def _partitions(partitions_def) -> dict | None:
    if partitions_def is None:
        return None
    described = {"type": type(partitions_def).__name__}
    if hasattr(partitions_def, "cron_schedule"):  # every time-window flavour (daily, monthly, ...)
        described = {
            "type": "time_window",
            "cron_schedule": partitions_def.cron_schedule,
            "start": partitions_def.start.isoformat(),
            "end": partitions_def.end.isoformat() if partitions_def.end else None,
            "timezone": partitions_def.timezone,
            "fmt": partitions_def.fmt,
            "end_offset": partitions_def.end_offset,
        }
    return described


def _condition(condition, top: bool = True) -> str | None:
    """An automation condition as an expression; Dagster's own labelled building blocks by name."""
    if condition is None:
        return None
    label = condition.get_label()
    if label and not top:
        return label
    children = [_condition(child, top=False) for child in condition.children]
    text = f"{condition.name}({', '.join(children)})" if children else condition.name
    return f"{label} = {text}" if label else text


def _plain(value) -> str | None:
    return None if value is None else repr(value)


def _backfill(policy) -> str | None:
    if policy is None:
        return None
    if policy.max_partitions_per_run is None:
        return "single_run"
    return f"multi_run(max_partitions_per_run={policy.max_partitions_per_run})"


def _retry(policy) -> dict | None:
    if policy is None:
        return None
    return {
        "max_retries": policy.max_retries,
        "delay": policy.delay,
        "backoff": policy.backoff.value if policy.backoff else None,
        "jitter": policy.jitter.value if policy.jitter else None,
    }


def _columns(schema) -> str | None:
    """The column schema the catalog shows, as one line: ``name TYPE[?]`` (``?``: nullable)."""
    if schema is None:
        return None
    return ", ".join(f"{c.name} {c.type}{'?' if c.constraints.nullable else ''}" for c in schema.schema.columns)


def _asset(defs, spec, checks: dict[str, dict[str, dict]]) -> dict:
    assets_def = defs.resolve_assets_def(spec.key)
    retry = assets_def.op.retry_policy if assets_def.is_executable else None
    return {
        "executable": assets_def.is_executable,
        "group": spec.group_name,
        "kinds": sorted(tag[len(KIND_TAG_PREFIX) :] for tag in spec.tags if tag.startswith(KIND_TAG_PREFIX)),
        "tags": {k: v for k, v in sorted(spec.tags.items()) if not k.startswith(KIND_TAG_PREFIX)},
        "owners": sorted(spec.owners),
        "code_version": spec.code_version,
        "partitions": _partitions(spec.partitions_def),
        "deps": {
            dep.asset_key.to_user_string(): _plain(dep.partition_mapping)
            for dep in sorted(spec.deps, key=lambda d: d.asset_key.to_user_string())
        },
        "automation_condition": _condition(spec.automation_condition),
        "freshness_policy": _plain(spec.freshness_policy),
        "backfill_policy": _backfill(assets_def.backfill_policy),
        "retry_policy": _retry(retry),
        "pools": sorted(assets_def.op.pools) if assets_def.is_executable else [],
        "checks": checks.get(spec.key.to_user_string(), {}),
        "table": spec.metadata.get("dagster/table_name"),
        "columns": _columns(spec.metadata.get("dagster/column_schema")),
    }


def build(defs=None) -> dict:
    """The snapshot of ``defs`` (default: ``finops_pipeline.definitions.defs``) as plain, sorted JSON data."""
    if defs is None:
        from finops_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    checks: dict[str, dict[str, dict]] = {}  # asset -> check name -> what it is
    check_specs = [s for c in defs.asset_checks for s in c.check_specs]
    check_specs += [s for spec in defs.resolve_all_asset_specs() for s in defs.resolve_assets_def(spec.key).check_specs]
    for check in check_specs:
        entry = {"blocking": check.blocking}
        if check.additional_deps:
            entry["additional_deps"] = _keys(dep.asset_key for dep in check.additional_deps)
        checks.setdefault(check.asset_key.to_user_string(), {})[check.name] = entry

    specs = sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string())
    jobs = {}
    for job in sorted(defs.jobs or [], key=lambda j: j.name):
        resolved = defs.resolve_job_def(job.name)
        jobs[job.name] = {
            "selection": _keys(job.selection.resolve(graph)),
            "partitions": _partitions(resolved.partitions_def),
            "tags": dict(sorted((resolved.tags or {}).items())),
        }
    schedules = {}
    for schedule in sorted(defs.schedules or [], key=lambda s: s.name):
        schedules[schedule.name] = {
            "cron_schedule": schedule.cron_schedule,
            "execution_timezone": schedule.execution_timezone,
            "job": schedule.job_name,
            "default_status": schedule.default_status.value,
        }
    sensors = {}
    for sensor in sorted(defs.sensors or [], key=lambda s: s.name):
        sensors[sensor.name] = {
            "type": type(sensor).__name__,
            "target": _keys(sensor.asset_selection.resolve(graph)) if sensor.asset_selection else None,
            "jobs": sorted(j.name for j in sensor.jobs) if sensor.has_jobs else [],
            "default_status": sensor.default_status.value,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
        }
    return {
        "assets": {spec.key.to_user_string(): _asset(defs, spec, checks) for spec in specs},
        "groups": sorted({spec.group_name for spec in specs}),
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
        "unknown_check_targets": sorted(set(checks) - {spec.key.to_user_string() for spec in specs}),
    }


def dumps(snapshot: dict) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def changed_paths(expected, actual, path: str = "") -> list[str]:
    """Where two snapshots differ, as dotted paths (``assets.aws_cost.group``)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [
            p
            for key in sorted(set(expected) | set(actual))
            for p in changed_paths(expected.get(key), actual.get(key), f"{path}.{key}" if path else key)
        ]
    return [] if expected == actual else [path or "(all)"]


def diff(expected: str, actual: str) -> str:
    """A unified diff of two snapshot texts, empty when they are equal."""
    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"{SNAPSHOT_PATH.name} (checked in)",
            tofile="live definitions",
        )
    )


def clean_environment() -> None:
    """Forget the caller's settings (and any .env) so the snapshot shows the defaults, e.g. the start date."""
    for name in list(os.environ):
        if name.startswith(LEAKY_PREFIXES):
            del os.environ[name]
    os.environ["FINOPS_ENV_FILE"] = os.devnull


def main(argv: list[str]) -> int:
    clean_environment()  # before finops_pipeline reads any setting
    text = dumps(build())
    if "--write" in argv:
        SNAPSHOT_PATH.write_text(text)
        print(f"wrote {SNAPSHOT_PATH}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
