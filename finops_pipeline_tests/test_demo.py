"""`make demo` end to end at a small size: the real Definitions against the simulated clouds."""

from datetime import datetime, timedelta, timezone

import duckdb

from finops_pipeline.cli import main
from finops_pipeline.demo import run_demo

# The resource each shipped rule must flag: the fleet's idle-on-purpose one of that type
# (the AWS ELB, RDS and EC2 ones live in the member account 222222222222, read through a role).
IDLE_BY_RULE = {
    "app_service_idle": "/subscriptions/00000000-0000-4000-8000-000000000002/resourcegroups/rg-finops/providers/microsoft.web/sites/appservice001",
    "aws_alb_idle": "app/alb-000/00000000fd80f843",
    "aws_ec2_low_utilization": "i-4bd850f3000000001",
    "aws_elb_idle": "classic-lb-001",
    "aws_rds_idle": "db-rds-001",
    "azure_sql_idle": "/subscriptions/00000000-0000-4000-8000-000000000002/resourcegroups/rg-finops/providers/microsoft.sql/servers/sqldatabase001-srv/databases/sqldatabase001",
    "azure_vm_resize": "/subscriptions/00000000-0000-4000-8000-000000000001/resourcegroups/rg-finops/providers/microsoft.compute/virtualmachines/virtualmachine002",
    "azure_vm_shutdown": "/subscriptions/00000000-0000-4000-8000-000000000002/resourcegroups/rg-finops/providers/microsoft.compute/virtualmachines/virtualmachine001",
    "cloudsql_idle": "shop-analytics:cloudsql-database-001",
    "gcp_vm_idle": "1000000617736158",
}


def test_demo_builds_a_warehouse_flags_every_rule_and_a_second_run_gives_identical_counts(fleet, tmp_path, capsys):
    today = datetime.now(timezone.utc).date()  # the CLI's demo ends at the UTC day
    lines: list[str] = []
    first = run_demo(tmp_path / "demo", days=8, today=today, out=lines.append)
    capsys.readouterr()
    # The second run as `make demo` starts it: the command prints the same tables, counts and highlights.
    assert main(["demo", "--data-dir", str(tmp_path / "demo"), "--days", "8"]) == 0
    assert capsys.readouterr().out.splitlines() == "\n".join(lines).splitlines()

    con = duckdb.connect(str(tmp_path / "demo" / "finops.duckdb"), read_only=True)
    assert first["cost_daily"] == con.execute("SELECT count(*) FROM cost_daily").fetchone()[0]
    assert first["metrics_hourly"] == con.execute("SELECT count(*) FROM metrics_hourly").fetchone()[0]
    window = [today - timedelta(days=i) for i in range(8, 0, -1)]
    days = con.execute("SELECT DISTINCT usage_date FROM cost_daily WHERE provider = 'aws' ORDER BY 1").fetchall()
    assert [d for (d,) in days] == window
    # Every cloud's bill lands whole: per day and currency, the fleet's own totals.
    billed = con.execute(
        "SELECT provider, usage_date, billing_currency, sum(billed_cost) FROM cost_daily GROUP BY ALL"
    ).fetchall()
    assert {(p, d, c): v for p, d, c, v in billed} == {
        (p, d, c): v for p in ("aws", "gcp", "azure") for d in window for c, v in fleet.daily_total(p, d).items()
    }
    # Metric rows a day: GCP 4 VMs x 5 + 2 Cloud SQL x 3 + 2 buckets x 2 + 2 containers x 2 = 34 series,
    # Azure 4 VMs x 6 + 3 x (2 databases, 2 storage accounts, 2 web apps) = 42 metrics; 24 hours each.
    per_day = con.execute(
        "SELECT provider, usage_date, count(*) FROM metrics_hourly WHERE provider <> 'aws' GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert per_day == [("azure", d, 42 * 24) for d in window] + [("gcp", d, 34 * 24) for d in window]
    metric_days = con.execute(
        "SELECT count(DISTINCT usage_date) FROM metrics_hourly WHERE provider = 'aws'"
    ).fetchone()[0]
    assert metric_days == 8
    flagged = dict(
        con.execute(
            """
        SELECT rule_id, list(DISTINCT resource_id) FROM underutilized_resources
        WHERE usage_date = ? GROUP BY 1""",
            [today - timedelta(days=1)],
        ).fetchall()
    )
    assert sorted(flagged) == sorted(r for (r,) in con.execute("SELECT rule_id FROM underutilization_rules").fetchall())
    assert {rule: IDLE_BY_RULE[rule] in ids for rule, ids in flagged.items()} == {rule: True for rule in IDLE_BY_RULE}
    printed = "\n".join(lines)
    assert "cost_daily" in printed and "finops-pipeline query" in printed and "make ui" in printed
