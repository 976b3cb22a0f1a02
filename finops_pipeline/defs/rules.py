"""The users' own seed files, validated completely before use: the underutilization rules
(``FINOPS_RULES_FILE``) and the anomaly thresholds (``FINOPS_ANOMALY_THRESHOLDS_FILE``)."""

import csv
import math
from pathlib import Path

from finops_pipeline.clouds import PROVIDERS
from finops_pipeline.settings import Settings
from finops_pipeline.warehouse.catalog import SQL_DIR


class RulesFileError(ValueError):
    """The underutilization rules file is unusable; the message names the file and the fix."""


# Rule columns by kind of value (a blank cell is a threshold not checked).
_RULE_PERCENTS = (
    "day_cpu_avg_at_most_pct",
    "cpu_p95_below_pct",
    "cpu_p95_at_most_pct",
    "recent_cpu_at_most_pct",
    "hour_cpu_below_pct",
)
_RULE_SHARES = ("hour_cpu_share_at_least", "hour_network_in_share_at_least", "hour_network_out_share_at_least")
_RULE_AMOUNTS = (
    "day_network_at_most_bytes",
    "day_requests_below",
    "network_out_per_day_at_most_bytes",
    "connections_at_most",
    "hour_network_in_below_bytes",
    "hour_network_out_below_bytes",
)
_RULE_DAY_COUNTS = ("min_days_matched", "recent_days")  # each at most window_days


def rule_resource_types() -> dict[str, list[str]]:
    """Provider -> the resource types its adapter reads metrics for (the adapters' METRICS keys)."""
    from finops_pipeline.adapters.usage.usage_api import metric_table

    return {p: sorted(metric_table(p)) for p in PROVIDERS}


def validate_rules(path: Path) -> None:
    """Check every row of a rules CSV (header as the shipped seed's; a UTF-8 byte order mark is
    fine); RulesFileError names the file, line, column and what is allowed."""
    with open(SQL_DIR / "seeds" / "underutilization_rules.csv", newline="", encoding="utf-8-sig") as fh:
        expected = next(csv.reader(fh))
    types = rule_resource_types()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in expected if c not in header]
        if missing:
            raise RulesFileError(f"{path}: line 1: missing column(s) {missing}; copy the header of the shipped seed")
        seen = set()
        for line, row in enumerate(reader, start=2):

            def fail(field: str, problem: str) -> RulesFileError:
                return RulesFileError(f"{path}: line {line}, column {header.index(field) + 1} ({field}): {problem}")  # noqa: B023 - used in this iteration

            def number(field: str, low: float, high: float | None = None, whole: bool = False) -> float | None:
                """The cell as a number in [low, high] (None when blank)."""
                text = (row[field] or "").strip()  # noqa: B023 - used in this iteration
                if not text:
                    return None
                kind = "a whole number" if whole else "a number"
                allowed = f"{kind} from {low:g} to {high:g}" if high is not None else f"{kind} >= {low:g}"
                try:
                    value = float(text)
                except ValueError:
                    raise fail(field, f"{text!r} is not {allowed}") from None
                in_range = math.isfinite(value) and low <= value and (high is None or value <= high)
                if not in_range or (whole and not value.is_integer()):
                    raise fail(field, f"{text!r} is not {allowed}")
                return value

            if None in row:
                raise RulesFileError(f"{path}: line {line}: more fields than the header has")
            if not row["rule_id"] or row["rule_id"] in seen:
                raise fail("rule_id", f"{row['rule_id']!r} is empty or repeated")
            seen.add(row["rule_id"])
            if row["provider"] not in PROVIDERS:
                raise fail("provider", f"{row['provider']!r} is not one of {', '.join(PROVIDERS)}")
            if row["resource_type"] not in types[row["provider"]]:
                raise fail(
                    "resource_type",
                    f"{row['resource_type']!r} is not an {row['provider']} resource type; "
                    f"use one of {', '.join(types[row['provider']])}",
                )
            if row["action"] not in ("shutdown", "resize"):
                raise fail("action", f"{row['action']!r}: use shutdown or resize")
            window_days = number("window_days", 1, 366, whole=True)
            if window_days is None:
                raise fail("window_days", "empty; give the rule's window as a whole number of days")
            if number("savings_fraction", 0, 1) is None:
                raise fail("savings_fraction", "empty; give the share of the cost saved, from 0 to 1")
            for field in _RULE_DAY_COUNTS:
                days_ = number(field, 1, whole=True)
                if days_ is not None and days_ > window_days:
                    raise fail(field, f"{days_:g} is more than window_days ({window_days:g})")
            thresholds = [number(f, 0, 100) for f in _RULE_PERCENTS] + [number(f, 0, 1) for f in _RULE_SHARES]
            thresholds += [number(f, 0) for f in _RULE_AMOUNTS]
            if all(t is None for t in thresholds):
                raise RulesFileError(
                    f"{path}: line {line}: no threshold is set, so the rule would flag every "
                    f"{row['resource_type']}; set at least one of "
                    f"{', '.join(_RULE_PERCENTS + _RULE_SHARES + _RULE_AMOUNTS)}"
                )


def maxima_read_by_rules(settings: Settings) -> set[tuple[str, str, str]]:
    """(provider, resource_type, metric) whose hourly maximum can change a rule's verdict, in the
    rules in use (FINOPS_RULES_FILE or the shipped seed): CPU where a rule tests the P95 of hourly
    maxima; connections where ``connections_at_most`` is above 0 (at 0 the hourly average decides
    the same, as a non-negative hour averages 0 only when its maximum is 0). Other hourly maxima
    feed only the marts' informational ``*_max`` columns, which fall back to hourly averages."""
    path = settings.rules_file or SQL_DIR / "seeds" / "underutilization_rules.csv"
    needed = set()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            key = (row["provider"].strip(), row["resource_type"].strip())
            if (row.get("cpu_p95_below_pct") or "").strip() or (row.get("cpu_p95_at_most_pct") or "").strip():
                needed.add((*key, "cpu_utilization_pct"))
            if float((row.get("connections_at_most") or "0").strip() or 0) > 0:
                needed.add((*key, "connections"))
    return needed


def rules_overrides(settings: Settings) -> dict[str, Path]:
    """The user's own rules seed (FINOPS_RULES_FILE), validated completely before use."""
    if settings.rules_file is None:
        return {}
    path = settings.rules_file
    if not path.is_file():
        raise RulesFileError(
            f"FINOPS_RULES_FILE={path} does not exist; point it at a CSV like "
            f"{SQL_DIR / 'seeds' / 'underutilization_rules.csv'}"
        )
    validate_rules(path)
    return {"underutilization_rules": path}


class AnomalyThresholdsFileError(ValueError):
    """The anomaly thresholds file is unusable; the message names the file, the line and the fix."""


def validate_anomaly_thresholds(path: Path, baseline_days: int) -> None:
    """Check every row of an anomaly thresholds CSV (header as the shipped seed's; a UTF-8 byte
    order mark is fine): one row per provider, every provider present (cost_anomalies joins on
    it: a provider without a row would get no anomaly rows at all), numbers in range."""
    with open(SQL_DIR / "seeds" / "anomaly_thresholds.csv", newline="", encoding="utf-8-sig") as fh:
        expected = next(csv.reader(fh))
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in expected if c not in header]
        if missing:
            raise AnomalyThresholdsFileError(
                f"{path}: line 1: missing column(s) {missing}; copy the header of the shipped seed"
            )
        seen: set[str] = set()
        for line, row in enumerate(reader, start=2):

            def fail(field: str, problem: str) -> AnomalyThresholdsFileError:
                return AnomalyThresholdsFileError(
                    f"{path}: line {line}, column {header.index(field) + 1} ({field}): {problem}"  # noqa: B023 - used in this iteration
                )

            def number(field: str, low: float, high: float | None = None, whole: bool = False) -> float:
                """The cell as a number in [low, high]; every threshold is needed."""
                text = (row[field] or "").strip()  # noqa: B023 - used in this iteration
                kind = "a whole number" if whole else "a number"
                allowed = f"{kind} from {low:g} to {high:g}" if high is not None else f"{kind} >= {low:g}"
                try:
                    value = float(text)
                except ValueError:
                    raise fail(field, f"{text!r} is not {allowed}") from None
                in_range = math.isfinite(value) and low <= value and (high is None or value <= high)
                if not in_range or (whole and not value.is_integer()):
                    raise fail(field, f"{text!r} is not {allowed}")
                return value

            if None in row:
                raise AnomalyThresholdsFileError(f"{path}: line {line}: more fields than the header has")
            if row["provider"] not in PROVIDERS:
                raise fail("provider", f"{row['provider']!r} is not one of {', '.join(PROVIDERS)}")
            if row["provider"] in seen:
                raise fail("provider", f"{row['provider']!r} has a row already; keep one row per provider")
            seen.add(row["provider"])
            number("min_history_days", 1, baseline_days, whole=True)
            number("min_weekday_points", 1, whole=True)  # above baseline_days / 7: never same-weekday
            number("scale_floor_pct", 0, 100)
            z_low, z_medium, z_high = (number(f, 0) for f in ("z_low", "z_medium", "z_high"))
            if z_low <= 0:
                raise fail("z_low", f"{row['z_low']!r}: give a number > 0 (0 would flag every change)")
            if not z_low <= z_medium <= z_high:
                raise fail(
                    "z_medium", f"z_low <= z_medium <= z_high is needed, not {z_low:g}, {z_medium:g}, {z_high:g}"
                )
            number("min_abs_change", 0)
            number("top_resources", 0, 100, whole=True)
    absent = [p for p in PROVIDERS if p not in seen]
    if absent:
        raise AnomalyThresholdsFileError(
            f"{path}: no row for {', '.join(absent)}; add one per provider (copy the shipped seed's), "
            "else that provider gets no anomaly rows"
        )


def anomaly_thresholds_overrides(settings: Settings, baseline_days: int) -> dict[str, Path]:
    """The user's own anomaly thresholds seed (FINOPS_ANOMALY_THRESHOLDS_FILE), validated completely."""
    if settings.anomaly_thresholds_file is None:
        return {}
    path = settings.anomaly_thresholds_file
    if not path.is_file():
        raise AnomalyThresholdsFileError(
            f"FINOPS_ANOMALY_THRESHOLDS_FILE={path} does not exist; point it at a CSV like "
            f"{SQL_DIR / 'seeds' / 'anomaly_thresholds.csv'}"
        )
    validate_anomaly_thresholds(path, baseline_days)
    return {"anomaly_thresholds": path}
