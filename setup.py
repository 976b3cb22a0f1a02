"""Only what pyproject.toml cannot say: the top-level ``sql/`` ships inside the package.

The metadata lives in pyproject.toml. ``sql/`` stays the one home of the SQL in the repository;
a wheel carries it as ``finops_pipeline/sql`` (package data), where the installed code finds it
(``finops_pipeline.warehouse.catalog.SQL_DIR``). A source checkout reads ``sql/`` directly.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["finops_pipeline", "finops_pipeline.*"]), "finops_pipeline.sql"],
    package_dir={"finops_pipeline.sql": "sql"},
    package_data={"finops_pipeline.sql": ["**/*.sql", "**/*.csv"]},
)
