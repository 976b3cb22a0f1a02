"""`make focus-validate`: the warehouse's FOCUS view checked by the FinOps Foundation's focus-validator.

focus-validator 2.2.1 needs Python >= 3.12 and pins numpy < 2, so it lives in its own venv
(``.venv-focus``, made here with a Python >= 3.12 on first use: ``pip install focus-validator==2.2.1``
from PyPI, with pyarrow < 22 because newer pyarrow needs NumPy 2 and fails to import next to the
numpy 1.26 it pins); this module, run by the project's Python, writes ``focus_cost_and_usage``
to Parquet and runs the validator's CLI on it, offline:

- the FOCUS 1.2 rules ship in the package (``focus_validator/rules/model-1.2.0.1.json``) and
  ``--block-download`` stops it from asking GitHub's releases API for newer ones;
- its ISO 4217 check reads ``focus_validator/rules/currency_codes.csv`` relative to the working
  directory, so it runs from the package's site-packages directory.

JSON columns (Tags, SkuPriceDetails) are written as text: DuckDB writes its JSON type as a Parquet
JSON logical type that the validator's Polars reader loads as binary, whose text cast escapes the
quotes and fails Tags-C-001-M (KeyValueFormat) on every tagged row.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from finops_pipeline.warehouse.catalog import open_catalog

FOCUS_VERSION = "1.2"
VALIDATOR = ("focus-validator==2.2.1", "pyarrow<22")

# Rules a source cannot satisfy from what it delivers, by source (the view cannot invent the value).
# A failure is accepted only while a source listed for it is in the data.
SOURCE_GAPS: dict[str, dict[str, str]] = {
    "InvoiceId-C-005-C": {
        # "InvoiceId MUST NOT be null when the charge is associated with an issued or provisional
        # invoice"; focus-validator checks it on every row.
        "bigquery:detailed_export": "the detailed export carries invoice.month, no invoice id",
        "bigquery:billing_export": "the standard export carries invoice.month, no invoice id",
        "ce:GetCostAndUsage": "Cost Explorer has no invoice id",
        "ce:GetCostAndUsageWithResources": "Cost Explorer has no invoice id",
        "costmanagement:query.usage": "the Cost Management query API groups by no invoice id",
        # The exports leave it blank until the month is invoiced (open-month rows are provisional
        # charges with no invoice yet): AWS Data Exports table dictionary, CUR 2.0 bill columns
        # ("Until the report is final, the InvoiceId is blank"); Microsoft's FocusCost schema
        # (InvoiceId empty before the invoice is generated).
        "export:aws_focus_1.2": "open-month rows have no invoice yet",
        "export:costmanagement:FocusCost": "open-month rows have no invoice yet",
    },
    # "BilledCost MUST be 0 for charges where payments are received by a third party"; the
    # validator tests it as ProviderName != InvoiceIssuerName. AWS's export names the provider
    # `AWS` and the invoice issuer by its legal invoicing entity (bill_invoicing_entity, e.g.
    # "Amazon Web Services, Inc."), which is AWS itself, not a third party: the view passes the
    # export's values through rather than rewrite them to please the string comparison.
    **{
        rule: {"export:aws_focus_1.2": "InvoiceIssuerName is AWS's legal invoicing entity, not a third party"}
        for rule in ("BilledCost-C-000-M", "BilledCost-C-005-C")
    },
    **{
        rule: {"costmanagement:query.usage": "the query API returns no unit: PricingQuantity without PricingUnit"}
        for rule in ("PricingUnit-C-000-M", "PricingUnit-C-004-C", "PricingUnit-C-006-C")
    },
}
_RESULT = re.compile(r"^(?:✅|❌|⏭️)\s*(\S+): (PASS|FAIL|SKIPPED)\b(.*)$")
_TOTAL = re.compile(r"Total: (\d+) \| Pass: (\d+) \| Fail: (\d+) \| Skipped: (\d+)")


@dataclass
class ValidationResult:
    """What focus-validator reported: counts, and each failed rule with its message."""

    total: int = 0
    passed: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # rule id -> the validator's message
    output: str = ""

    @property
    def summary(self) -> str:
        return f"{self.total} rules: {self.passed} passed, {len(self.failed)} failed, {self.skipped} skipped"


def find_python(preferred: str | None = None) -> str | None:
    """A Python >= 3.12 that runs: ``preferred`` (FOCUS_PYTHON), python3.12/3.13 on PATH, or a
    pyenv-installed one (pyenv's shim for a version that is not selected exits with 127)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [preferred, "python3.12", "python3.13", *sorted(map(str, pyenv.glob("3.1[2-9]*/bin/python3")))]
    for candidate in filter(None, candidates):
        if (
            shutil.which(candidate)
            and subprocess.run(
                [candidate, "-c", "import sys; sys.exit(sys.version_info < (3, 12))"], capture_output=True
            ).returncode
            == 0
        ):
            return candidate
    return None


def ensure_validator(venv: Path, python: str | None = None) -> Path:
    """The focus-validator CLI in ``venv``, creating the venv with a Python >= 3.12 if needed."""
    cli = Path(venv) / "bin" / "focus-validator"
    if cli.exists():
        return cli
    found = find_python(python)
    if not found:
        raise FileNotFoundError("focus-validator 2.2.1 needs Python >= 3.12: none found (set FOCUS_PYTHON)")
    uv = Path(sys.executable).parent / "uv"  # the Makefile's pinned uv: seconds where pip takes a minute
    if uv.exists():
        subprocess.run([str(uv), "venv", "--quiet", "--python", found, str(venv)], check=True)
        venv_python = str(Path(venv) / "bin" / "python")
        subprocess.run([str(uv), "pip", "install", "--quiet", "--python", venv_python, *VALIDATOR], check=True)
    else:
        subprocess.run([found, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(Path(venv) / "bin" / "pip"), "install", "--quiet", *VALIDATOR], check=True)
    return cli


def unexplained(failed: set[str], present: set[str]) -> set[str]:
    """Failed rules that no source in the data (``present``: its x_Source values) explains."""
    return {rule for rule in failed if not set(SOURCE_GAPS.get(rule, {})) & present}


def export_focus(data_dir: Path, path: Path, source: str | None = None) -> int:
    """Write focus_cost_and_usage (rows of one ``x_Source`` if given) to Parquet; returns rows."""
    con = open_catalog(data_dir)
    try:
        columns = con.execute("DESCRIBE focus_cost_and_usage").fetchall()
        select = ", ".join(
            f'CAST("{name}" AS VARCHAR) AS "{name}"' if kind == "JSON" else f'"{name}"' for name, kind, *_ in columns
        )
        where = "WHERE x_Source = $source" if source else ""
        query = f"SELECT {select} FROM focus_cost_and_usage {where}"
        params = {"source": source} if source else {}
        rows = con.execute(f"SELECT count(*) FROM ({query})", params).fetchone()[0]
        con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet)", params)
        return rows
    finally:
        con.close()


def sources(data_dir: Path) -> list[str]:
    """The x_Source values in the warehouse's FOCUS view."""
    con = open_catalog(data_dir)
    try:
        return [s for (s,) in con.execute("SELECT DISTINCT x_Source FROM focus_cost_and_usage ORDER BY 1").fetchall()]
    finally:
        con.close()


def validate(validator: Path, parquet: Path, criteria: str | None = None) -> ValidationResult:
    """Run focus-validator (its CLI at ``validator``) on a Parquet file for FOCUS 1.2, offline.

    ``criteria``: its ``--applicability-criteria`` (None: the validator's default, none declared).
    """
    validator = Path(validator).absolute()
    python = validator.parent / "python"
    packages = subprocess.run(
        [
            str(python),
            "-c",
            "import focus_validator, pathlib; print(pathlib.Path(focus_validator.__file__).parent.parent)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    command = [
        str(validator),
        "--data-file",
        str(Path(parquet).resolve()),
        "--validate-version",
        FOCUS_VERSION,
        "--block-download",
        "--rule-set-path",
        str(Path(packages) / "focus_validator" / "rules"),
        "--show-violations",
    ]
    if criteria:
        command += ["--applicability-criteria", criteria]
    run = subprocess.run(command, cwd=packages, capture_output=True, text=True)
    result = parse(run.stdout)
    result.output = run.stdout + run.stderr
    if not result.total:
        raise RuntimeError(f"focus-validator gave no result (exit {run.returncode}):\n{result.output[-3000:]}")
    return result


def parse(output: str) -> ValidationResult:
    """The counts and failed rules of focus-validator's console output."""
    result = ValidationResult()
    for line in output.splitlines():
        total = _TOTAL.search(line)
        if total:
            result.total, result.passed, _, result.skipped = map(int, total.groups())
            continue
        m = _RESULT.match(line.strip())
        if m and m.group(2) == "FAIL":
            result.failed[m.group(1)] = m.group(3).strip(" ()")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the warehouse (e.g. data/demo)")
    parser.add_argument("--venv", type=Path, default=Path(".venv-focus"), help="the validator's venv")
    parser.add_argument("--python", default=os.environ.get("FOCUS_PYTHON"), help="Python >= 3.12 for the venv")
    parser.add_argument("--criteria", help="--applicability-criteria for the validator (e.g. ALL)")
    parser.add_argument("--per-source", action="store_true", help="also validate each x_Source's rows on their own")
    args = parser.parse_args(argv)
    validator = ensure_validator(args.venv, args.python)
    present = set(sources(args.data_dir))
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(None, Path(tmp) / "focus.parquet")]
        if args.per_source:
            runs += [(s, Path(tmp) / f"focus-{i}.parquet") for i, s in enumerate(sorted(present))]
        bad: set[str] = set()
        for source, path in runs:
            rows = export_focus(args.data_dir, path, source)
            result = validate(validator, path, args.criteria)
            print(f"{source or 'all sources'} ({rows} rows): {result.summary}")
            here = {source} if source else present
            for rule, message in sorted(result.failed.items()):
                why = "; ".join(f"{s}: {w}" for s, w in SOURCE_GAPS.get(rule, {}).items() if s in here)
                print(f"  FAIL {rule}: {message}" + (f"\n       source gap: {why}" if why else ""))
            bad |= unexplained(set(result.failed), here)
    if bad:
        print(f"Failed beyond the sources' known gaps: {', '.join(sorted(bad))}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
