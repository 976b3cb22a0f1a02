"""The wheel works outside the source tree: it carries sql/ and the code location loads from it.

The project is copied to a scratch folder and built as a wheel (as ``pip install .`` does), the
wheel is unpacked into a bare site folder, and a fresh interpreter run from outside the repo
imports the package from there (dependencies from this venv), finds the marts' SQL and validates
the Dagster definitions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Not part of the source a wheel is built from (and large, or local to this machine).
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".venv-*",  # focus-validator's venv (616 MB), made by test_focus_validator.py, maybe on another worker right now
    "data",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".tmp_dagster_home_*",
    "results",
)


def _run(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(scratch / "dist"), str(source)],
        cwd=scratch,
    )
    [built] = (scratch / "dist").glob("finops_pipeline-*.whl")
    return built


def test_wheel_carries_every_sql_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "sql").rglob("*") if p.is_file())
    assert shipped, "sql/ is empty"
    assert {
        "sql/utilization_daily.sql",
        "sql/macros.sql",
        "sql/seeds/underutilization_rules.csv",
        "sql/views/focus_cost_and_usage.sql",
    } <= set(shipped)
    missing = [name for name in shipped if f"finops_pipeline/{name}" not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    assert not [n for n in names if n.startswith("finops_pipeline_tests/")], "the tests are not part of the package"


def test_installed_wheel_finds_its_sql_and_loads_the_definitions(wheel, tmp_path):
    site, outside = tmp_path / "site", tmp_path / "elsewhere"
    outside.mkdir()
    _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)], cwd=outside
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        PYTHONPATH=str(site),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        FINOPS_DATA_DIR=str(tmp_path / "data"),
        FINOPS_ENV_FILE=str(tmp_path / "no.env"),
    )
    (tmp_path / "dagster_home").mkdir()
    probe = (
        "import finops_pipeline\n"
        "from finops_pipeline.warehouse.catalog import SQL_DIR, macros_sql\n"
        "from finops_pipeline.warehouse.sql import read_sql\n"
        "print(finops_pipeline.__file__)\n"
        "print(SQL_DIR)\n"
        "print(read_sql('utilization_daily').count('FROM'))\n"
        "print(len(macros_sql()))\n"
    )
    package_file, sql_dir, froms, macros = _run([sys.executable, "-c", probe], cwd=outside, env=env).split("\n")[:4]
    assert Path(package_file).is_relative_to(site), f"imported from {package_file}, not the installed wheel"
    assert Path(sql_dir).is_relative_to(site), f"SQL read from {sql_dir}"
    assert int(froms) > 0 and int(macros) > 0
    validated = _run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", "finops_pipeline.definitions"], cwd=outside, env=env
    )
    assert "Validation successful" in validated
