"""`finops-pipeline query / tables / doctor`: outputs, and one-line errors."""

import csv
import io
import json
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
import urllib.error
from datetime import timedelta
from decimal import Decimal

import duckdb
import pytest
from dagster import DagsterInstance

from finops_pipeline.cli import main
from finops_pipeline.clouds.aws.assets import aws_cost, aws_metrics
from finops_pipeline.simulator.aws import free_port
from finops_pipeline.warehouse.catalog import CATALOG_FILE, refresh_catalog
from finops_pipeline.warehouse.lake import Lake
from finops_pipeline_tests.dagster_dev import LOCATION, WAIT_SECONDS, graphql, wait_for
from finops_pipeline_tests.marts.fleet_lake import write_fleet
from finops_pipeline_tests.runs import isolate_environment, materialize, set_environment

from .conftest import START, range_tags

# An analyst's session on the catalog (`duckdb -readonly finops.duckdb`), in its own process as DuckDB
# locks the file per process; and a run's catalog refresh holding the refresh lock.
_ANALYST = (
    "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); print('open', flush=True); sys.stdin.read()"
)
_REFRESHING = (
    "import filelock, sys; lock = filelock.FileLock(sys.argv[1]); lock.acquire(); print('locked', flush=True); "
    "sys.stdin.read()"
)


@pytest.fixture(scope="module")
def landed(aws_served, tmp_path_factory):
    """AWS landed for the served days once: the tests below only read it (query is read-only)."""
    home = tmp_path_factory.mktemp("cli")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_environment(monkeypatch, home)
        set_environment(monkeypatch, aws_served)
        assert materialize([aws_cost, aws_metrics], instance=DagsterInstance.ephemeral(), tags=range_tags()).success
    return home / "data"


@pytest.fixture
def warehouse(landed, aws_env, monkeypatch):
    """The landed warehouse as this test's FINOPS_DATA_DIR."""
    monkeypatch.setenv("FINOPS_DATA_DIR", str(landed))
    return landed


def test_query_prints_a_table(warehouse, fleet, capsys):
    assert (
        main(
            [
                "query",
                "--data-dir",
                str(warehouse),
                "SELECT usage_date, sum(billed_cost) AS billed FROM cost_daily GROUP BY 1 ORDER BY 1",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["usage_date", "billed"]
    assert lines[-1] == "(3 rows)"
    first = lines[2].split()
    assert first[0] == START.isoformat()
    assert Decimal(first[1]) == fleet.daily_total("aws", START)["USD"]


def test_query_reads_the_data_dir_from_the_environment_and_writes_json(warehouse, fleet, capsys):
    assert (
        main(
            [
                "query",
                "--format",
                "json",
                "SELECT usage_date, sum(billed_cost) AS billed FROM cost_daily GROUP BY 1 ORDER BY 1",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["usage_date"] for r in rows] == [(START + timedelta(days=i)).isoformat() for i in range(3)]
    assert Decimal(rows[0]["billed"]) == fleet.daily_total("aws", START)["USD"]  # exact, not a float


def test_query_writes_csv(warehouse, capsys):
    assert (
        main(
            [
                "query",
                "--data-dir",
                str(warehouse),
                "--format",
                "csv",
                "SELECT metric, count(*) AS n FROM metrics_hourly GROUP BY 1 ORDER BY 1",
            ]
        )
        == 0
    )
    counts = {r["metric"]: int(r["n"]) for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    # The AWS fleet (5 EC2, 3 RDS, 2 Lambda, 2 ELB, 2 ALB, 1 DynamoDB, 1 S3) over 3 days = 72 hours:
    # what CloudWatch publishes every hour lands every hour, S3's daily metrics once a day.
    hours = 72
    assert {m: n for m, n in counts.items() if m not in ("duration_ms", "healthy_hosts")} == {
        "cpu_utilization_pct": (5 + 3) * hours,
        "network_in_bytes": 5 * hours,
        "network_out_bytes": 5 * hours,
        "disk_read_bytes": 5 * hours,
        "disk_write_bytes": 5 * hours,
        "connections": (3 + 2) * hours,  # RDS and ALB
        "read_iops": 3 * hours,
        "memory_available_bytes": 3 * hours,
        "invocations": 2 * hours,
        "errors": 2 * hours,
        "read_capacity_units": hours,
        "write_capacity_units": hours,
        "storage_bytes": 3,
        "object_count": 3,
        "requests": (2 + 2) * hours,  # ELB and ALB
        "consumed_lcus": 2 * hours,
    }
    # Published only in the hours with invocations / requests.
    assert 0 < counts["duration_ms"] <= 2 * hours and 0 < counts["healthy_hosts"] <= 2 * hours


def test_query_is_read_only(warehouse, capsys):
    assert main(["query", "--data-dir", str(warehouse), "CREATE TABLE sneaky AS SELECT 1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("finops-pipeline query: error:") and "read-only" in err
    assert "\n" not in err and "Traceback" not in err


def test_bad_sql_is_one_line_without_traceback_unless_debug(warehouse, capsys):
    assert main(["query", "--data-dir", str(warehouse), "SELECT * FROM no_such_table"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no_such_table" in err and "Traceback" not in err
    with pytest.raises(duckdb.CatalogException, match="Table with name no_such_table does not exist"):
        main(["--debug", "query", "--data-dir", str(warehouse), "SELECT * FROM no_such_table"])


def test_missing_catalog_says_how_to_create_it(tmp_path, capsys):
    assert main(["query", "--data-dir", str(tmp_path / "empty"), "SELECT 1"]) == 1
    err = capsys.readouterr().err
    assert "no catalog at" in err and "finops-pipeline demo" in err


def test_tables_lists_rows_day_range_and_last_update(warehouse, capsys):
    assert main(["tables", "--data-dir", str(warehouse), "--format", "json"]) == 0
    tables = {t["table"]: t for t in json.loads(capsys.readouterr().out)}
    cost = tables["cost_daily"]
    assert cost["kind"] == "table" and cost["rows"] == 3 * (9 + 5)  # 9 service rows and 5 EC2 instances a day
    assert cost["first_day"] == START.isoformat() and cost["last_day"] == (START + timedelta(days=2)).isoformat()
    assert cost["last_update"].endswith("UTC")
    assert tables["metrics_hourly"]["rows"] > 0
    assert tables["cost_predictions"]["rows"] == 0 and tables["cost_predictions"]["last_update"] is None


def test_doctor_checks_each_aws_api_and_names_the_disabled_clouds(aws_env, capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "aws: enabled" in out
    for call in ("sts:GetCallerIdentity: account", "cloudwatch:ListMetrics:", "ce:GetCostAndUsage:"):
        assert f"ok   {call}" in out
    assert "gcp: disabled (GCP_USAGE_ENABLED is not true)" in out
    assert "azure: disabled (AZURE_USAGE_ENABLED is not true)" in out
    assert aws_env["AWS_SECRET_ACCESS_KEY"] not in out


def test_doctor_without_aws_credentials_says_how_to_provide_them(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AWS_USAGE_ENABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL credentials: none found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in out


def test_doctor_names_a_missing_service_account_file(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GCP_USAGE_ENABLED", "true")
    monkeypatch.setenv("GCP_PROJECT_ID", "shop-prod")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert f"GOOGLE_APPLICATION_CREDENTIALS={tmp_path / 'missing-key.json'} does not exist" in out


def test_doctor_with_no_cloud_enabled_fails_and_says_what_to_set(capsys):
    assert main(["doctor"]) == 1
    assert "no cloud is enabled: set AWS_USAGE_ENABLED" in capsys.readouterr().out


def test_doctor_says_which_repeated_list_items_it_uses_once(aws_env, monkeypatch, capsys):
    monkeypatch.setenv("AWS_USAGE_REGIONS", "us-east-1,us-east-1")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "info settings: AWS_USAGE_REGIONS repeats us-east-1; each is used once" in out
    assert out.count("ok   cloudwatch:ListMetrics: us-east-1") == 1


@pytest.mark.parametrize(
    "sql, says",
    [
        ("COPY (SELECT 1 AS x) TO '{outside}/out.csv'", "only SELECT"),
        ("COPY (SELECT 1 AS x) TO '{lake}/cost_daily/out.csv'", "only SELECT"),
        ("SELECT * FROM read_csv('{outside}/secret.csv')", "outside the warehouse"),
        ("SELECT * FROM read_text('/etc/hostname')", "outside the warehouse"),
        ("SELECT * FROM glob('{outside}/*')", "outside the warehouse"),
        ("ATTACH '{outside}/other.duckdb' AS other", "only SELECT"),
        ("INSTALL httpfs", "only SELECT"),
        ("LOAD httpfs", "only SELECT"),
        ("SET enable_external_access = true", "only SELECT"),
        ("SELECT 1; COPY (SELECT 1) TO '{outside}/out.csv'", "only SELECT"),
        ("CALL checkpoint()", "only SELECT"),
    ],
)
def test_query_cannot_write_files_read_outside_the_warehouse_attach_or_install(warehouse, tmp_path, capsys, sql, says):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("password\nhunter2\n")
    statement = sql.format(outside=outside, lake=warehouse / "lake")
    assert main(["query", "--data-dir", str(warehouse), statement]) == 1
    err = capsys.readouterr().err
    assert err.startswith("finops-pipeline query: error:") and "read-only" in err and says in err
    assert "hunter2" not in err
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    assert not (warehouse / "lake" / "cost_daily" / "out.csv").exists()


def test_query_reads_the_lake_files_directly_too(warehouse, capsys):
    glob = warehouse / "lake" / "cost_daily" / "*" / "*" / "part.parquet"
    assert (
        main(
            [
                "query",
                "--data-dir",
                str(warehouse),
                "--format",
                "csv",
                f"SELECT count(*) > 0 AS landed FROM read_parquet('{glob}')",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines() == ["landed", "True"]


def test_demo_and_ui_end_at_the_utc_day_not_the_local_one(monkeypatch):
    from datetime import date, datetime, timezone

    from finops_pipeline.demo import demo_window

    now = datetime.now(timezone.utc)
    # A zone whose calendar day differs from UTC's right now: UTC+14 from 10:00 UTC, UTC-12 before noon.
    monkeypatch.setenv("TZ", "Etc/GMT-14" if now.hour >= 10 else "Etc/GMT+12")
    time.tzset()
    try:
        assert date.today() != now.date()
        start, end = demo_window(30)
        assert end == datetime.now(timezone.utc).date() and start == end - timedelta(days=30)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.slow  # dagster dev takes 20-60 s to load the code location
def test_ui_serves_the_code_location_from_any_directory_and_ctrl_c_stops_all_of_it(tmp_path):
    """`finops-pipeline ui` as an installed user runs it: from a directory that is not the checkout
    (no workspace.yaml there). Ctrl-C (SIGINT to the command) stops dagster dev's whole process group.
    The command runs in its own process with SIGINT's default disposition: under pytest-xdist the
    worker ignores SIGINT, so a signal sent to its own thread (or to a child inheriting that) was
    never Ctrl-C and the test hung."""
    port = free_port()
    log = tmp_path / "ui.log"
    command = [sys.executable, "-m", "finops_pipeline.cli", "ui", "--data-dir", str(tmp_path / "demo")]
    with open(log, "w") as out:
        ui = subprocess.Popen(
            [*command, "--days", "1", "--port", str(port)],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Ctrl-C as at a terminal: a child inherits an ignored SIGINT (pytest-xdist's workers
            # ignore it), and Python then never turns SIGINT into KeyboardInterrupt.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        nodes = wait_for(
            "the code location", lambda: graphql(port, LOCATION)["repositoriesOrError"].get("nodes"), ui, log
        )
        assert nodes == [{"name": "__repository__"}], "the UI never served the code location"
        ui.send_signal(signal.SIGINT)
        assert ui.wait(timeout=WAIT_SECONDS) == 130, log.read_text()[-3000:]
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
    with pytest.raises(urllib.error.URLError):  # webserver, daemon and code server are gone
        graphql(port, LOCATION)
    assert (tmp_path / "demo" / "dagster_home").is_dir()


def test_stopping_the_ui_kills_what_ignores_sigterm_and_skips_what_is_gone():
    from finops_pipeline.cli import _stop_group

    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
            "time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert stubborn.stdout.readline() == "up\n"
    _stop_group(stubborn, grace=1.0)  # SIGTERM ignored for the grace period (15 s in the ui), then SIGKILL
    assert stubborn.returncode == -signal.SIGKILL

    _stop_group(stubborn, grace=1.0)  # already gone: nothing to signal, no error
    assert stubborn.returncode == -signal.SIGKILL


def test_a_query_without_a_statement_says_to_pass_one(tmp_path, capsys):
    refresh_catalog(tmp_path)  # an empty warehouse
    for sql in ("", "-- the daily total", ";"):
        assert main(["query", "--data-dir", str(tmp_path), sql]) == 1
        assert capsys.readouterr().err == (
            'finops-pipeline query: error: no SQL statement to run: pass one, e.g. "SELECT * FROM cost_daily LIMIT 5"\n'
        )


def test_query_writes_lists_and_structs_as_json_and_csv(warehouse, fleet, capsys):
    sql = (
        "SELECT list(DISTINCT usage_date ORDER BY usage_date) AS days, "
        "{'currency': any_value(billing_currency), 'billed': sum(billed_cost)} AS total "
        "FROM cost_daily WHERE usage_date = DATE '" + START.isoformat() + "'"
    )
    billed = f"{fleet.daily_total('aws', START)['USD']:.10f}"  # exact, at the lake's DECIMAL(38, 10) scale
    assert main(["query", "--data-dir", str(warehouse), "--format", "json", sql]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"days": [START.isoformat()], "total": {"currency": "USD", "billed": billed}}
    ]
    assert main(["query", "--data-dir", str(warehouse), "--format", "csv", sql]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "days,total",
        f"['{START.isoformat()}'],\"{{'currency': 'USD', 'billed': '{billed}'}}\"",
    ]


def test_report_without_a_warehouse_says_how_to_make_one(tmp_path, capsys):
    assert main(["report", "--data-dir", str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().err == (
        f"finops-pipeline report: error: no catalog at {tmp_path / 'empty' / 'finops.duckdb'}: run the pipeline "
        "first (finops-pipeline demo, or a Dagster run) or point --data-dir / FINOPS_DATA_DIR at a warehouse\n"
    )
    assert not (tmp_path / "empty").exists()


def test_the_catalog_command_fails_naming_the_session_that_holds_the_catalog(fleet, data_dir, capsys):
    refresh_catalog(data_dir)
    write_fleet(fleet, Lake(data_dir / "lake"), START, START + timedelta(days=1), providers=("aws",))
    catalog = data_dir / CATALOG_FILE
    analyst = subprocess.Popen(
        [sys.executable, "-c", _ANALYST, str(catalog)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert analyst.stdout.readline() == "open\n"
        assert main(["catalog", "--data-dir", str(data_dir)]) == 1
    finally:
        analyst.communicate("")
    assert capsys.readouterr().err == (
        f"finops-pipeline catalog: error: {catalog} is open in another process; close the other sessions on it "
        "and run the command again\n"
    )
    # Closed: the views now read the day that landed.
    assert main(["catalog", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out == f"{catalog}: refreshed, views over the local lake\n"
    assert main(["query", "--data-dir", str(data_dir), "--format", "csv", "SELECT count(*) AS n FROM cost_daily"]) == 0
    assert capsys.readouterr().out.splitlines()[1] != "0"


def test_ctrl_c_while_the_catalog_command_waits_for_a_run_ends_it_with_130(data_dir, capsys):
    data_dir.mkdir(parents=True)
    run = subprocess.Popen(
        [sys.executable, "-c", _REFRESHING, str(data_dir / ".catalog.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout.readline() == "locked\n"
        threading.Timer(1.0, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)).start()
        assert main(["catalog", "--data-dir", str(data_dir)]) == 130
    finally:
        run.communicate("")
    assert capsys.readouterr().err == ""
    assert not (data_dir / CATALOG_FILE).exists()


def test_doctor_reports_the_warehouse_given_on_the_command_line(aws_env, tmp_path, capsys):
    refresh_catalog(tmp_path / "elsewhere")
    assert main(["doctor", "--data-dir", str(tmp_path / "elsewhere")]) == 0
    assert f"warehouse: {tmp_path / 'elsewhere'} (catalog present)" in capsys.readouterr().out.splitlines()


def test_python_dash_m_runs_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["finops-pipeline", "query", "--data-dir", str(tmp_path), "SELECT 1"])
    with pytest.raises(SystemExit) as ended:
        runpy.run_module("finops_pipeline.cli", run_name="__main__")
    assert ended.value.code == 1
    assert capsys.readouterr().err.startswith(
        f"finops-pipeline query: error: no catalog at {tmp_path / 'finops.duckdb'}"
    )
