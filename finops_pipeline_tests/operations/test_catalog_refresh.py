"""The catalog refresh at the end of a raw asset's run: deferred while another process holds the
catalog, a clear failure without retries when the catalog file itself is broken."""

import subprocess
import sys
from datetime import timedelta

from dagster import DagsterEventType, DagsterInstance

from finops_pipeline.clouds.aws.assets import aws_cost
from finops_pipeline.warehouse.catalog import CATALOG_FILE
from finops_pipeline_tests.runs import materialize, retried_at_once

from .conftest import END, range_tags

ONE_DAY = range_tags(END - timedelta(days=1), END)

# Another process with the catalog open read-write (an analyst's DuckDB session): DuckDB locks
# the file per process, so only a second process shows what a run meets.
_HOLDER = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()"


def test_a_run_while_another_process_holds_the_catalog_lands_and_defers_the_views(aws_env, data_dir):
    data_dir.mkdir(parents=True)
    catalog = data_dir / CATALOG_FILE
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(catalog)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "open\n"
        instance = DagsterInstance.ephemeral()
        held = materialize([aws_cost], instance=instance, tags=ONE_DAY)
    finally:
        holder.communicate("")
    meta = held.asset_materializations_for_node("aws_cost")[0].metadata
    assert meta["status"].value == "ingested" and meta["partitions_written"].value == 1
    assert meta["catalog"].value == "deferred"
    logged = [entry.user_message for entry in instance.all_logs(held.run_id)]
    assert (
        f"catalog view refresh deferred: {catalog} is open in another process; views will be refreshed by the next run"
        in logged
    )

    again = materialize([aws_cost], instance=DagsterInstance.ephemeral(), tags=ONE_DAY)
    assert again.asset_materializations_for_node("aws_cost")[0].metadata["catalog"].value == "refreshed"


def test_a_broken_catalog_file_fails_the_run_once_naming_it(aws_env, data_dir):
    data_dir.mkdir(parents=True)
    catalog = data_dir / CATALOG_FILE
    catalog.write_bytes(b"not a DuckDB file, e.g. a half-copied one")
    result = materialize(
        [retried_at_once(aws_cost)], instance=DagsterInstance.ephemeral(), tags=ONE_DAY, raise_on_error=False
    )
    assert not result.success
    events = result.all_events
    assert sum(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in events) == 0  # no paid call twice
    [failure] = [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data
    description = data.user_failure_data.description if data.user_failure_data else data.error.message
    assert "1 partition(s) were written, then the catalog refresh failed" in description
    assert f"{catalog} cannot be opened (IO Error: The file" in description
    assert "move it aside or delete it; the next run re-creates its views" in description
