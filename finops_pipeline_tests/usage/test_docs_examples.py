"""Every Python example in docs/usage-api.md runs against the simulated clouds and prints
the documented kind of output."""

from __future__ import annotations

import contextlib
import io
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from finops_pipeline.settings import get_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "usage-api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def example(title_words: str) -> str:
    """The code block under the heading that contains ``title_words`` (first block after it)."""
    text = DOC.read_text()
    start = text.index(title_words)
    return re.search(r"```python\n(.*?)```", text[start:], flags=re.DOTALL).group(1)


def run(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_example__"})  # noqa: S102 - our own docs
    return out.getvalue()


def test_every_example_is_covered_by_a_test():
    assert len(BLOCKS) == 10  # update the tests below when examples are added


def test_resource_usage_example(aws_env):
    out = run(example("## Get resource usage metrics"))
    assert re.search(r"^Average CPU: \d+\.\d%$", out, re.M)
    assert re.search(r"^Average network in: \d+\.\d{3} GiB/hour$", out, re.M)
    count = int(re.search(r"^Metrics collected: (\d+)$", out, re.M).group(1))
    assert count >= 3 * 7 * 24 - 3  # three metrics, hourly, seven days


def test_cost_example_prints_january_total_and_services_sorted(aws_env, fleet):
    out = run(example("## Get historical cost data"))
    total = Decimal(re.search(r"^Total cost in January: \$(\d+\.\d\d)$", out, re.M).group(1))
    truth = sum(fleet.daily_total("aws", datetime(2026, 1, d + 1).date())["USD"] for d in range(31))
    assert total == truth.quantize(Decimal("0.01"))
    services = re.findall(r"^  (.+): \$(\d+\.\d\d)$", out, re.M)
    amounts = [Decimal(a) for _, a in services]
    january = {
        line.service_name for d in range(31) for line in fleet.cost_lines("aws", datetime(2026, 1, d + 1).date())
    }
    assert len(january) == 7  # Lambda, DynamoDB, EC2, RDS, S3, Elastic Load Balancing, Tax
    assert {s for s, _ in services} == january and amounts == sorted(amounts, reverse=True)
    assert sum(amounts) == pytest.approx(total, abs=Decimal("0.01") * len(amounts))


def test_summary_example(aws_env, fleet):
    out = run(example("## Get a usage summary"))
    in_region = [r for r in fleet.of("aws", "ec2") if r.region in ("us-east-1", "us-west-2")]
    # January is outside the metrics window the doubles serve: no resources had metrics then.
    assert f"\nTotal resources: {len(in_region)}\n" in f"\n{out}"
    assert "\nData confidence: high\n" in f"\n{out}"  # every January day's cost is there
    cost = Decimal(re.search(r"^Total cost: \$(\d+\.\d\d)$", out, re.M).group(1))
    truth = sum(
        line.billed_cost
        for d in range(31)
        for line in fleet.cost_lines("aws", datetime(2026, 1, d + 1).date())
        if line.resource_id in {r.resource_id for r in in_region}
    )
    assert cost == truth.quantize(Decimal("0.01"))


def test_currency_example_prints_each_currency_and_no_sum(azure_env):
    out = run(example("Currencies.**"))
    assert re.search(r"^Virtual machines, EUR: \d+\.\d\d$", out, re.M)
    assert re.search(r"^Virtual machines, USD: \d+\.\d\d$", out, re.M)
    assert "Single-currency total: None" in out


def test_direct_aws_adapter_example(aws_env):
    out = run(example("### AWS"))
    assert re.search(r"^i-3cdf6065000000000: \d+ datapoints, CPU \d+\.\d%$", out, re.M)
    assert re.search(r"^2026-01 Amazon Elastic Compute Cloud - Compute: \d+\.\d\d USD$", out, re.M)


def test_direct_gcp_adapter_example(gcp_env):
    out = run(example("### GCP"))
    assert re.search(r"^1000003911486858: CPU \d+\.\d%$", out, re.M)
    assert re.search(r"^\d{4}-\d\d-\d\d shop-(prod|analytics) .+: \d+\.\d\d USD$", out, re.M)


def test_direct_azure_adapter_example(azure_env):
    out = run(example("### Azure"))
    assert re.search(r"^CPU \d+\.\d% over \d+ hours$", out, re.M)
    assert re.search(r"^Total EUR: \d+\.\d\d$", out, re.M) and re.search(r"^Total USD: \d+\.\d\d$", out, re.M)


def test_warehouse_example(aws_lake, aws_env, monkeypatch):
    monkeypatch.setenv("FINOPS_DATA_DIR", str(aws_lake))
    monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", "http://127.0.0.1:9")  # no API can answer
    out = run(example("## Answering from the warehouse"))
    records, points = map(
        int, re.search(r"^From the warehouse: (\d+) cost records, (\d+) datapoints$", out, re.M).groups()
    )
    # 3 days of the 7 AWS services (grouped by service); 5 EC2 metrics, hourly.
    assert (records, points) == (3 * 7, 3 * 24 * 5)


def test_clear_cache_example(aws_env):
    from finops_pipeline.adapters.usage import get_usage_factory

    factory = get_usage_factory()
    factory.get_cost_usage("aws", datetime(2026, 1, 1), datetime(2026, 1, 2))
    assert len(factory.cache) == 1
    run(example("## Caching"))
    assert len(factory.cache) == 0


def test_availability_example_both_ways(aws_env, monkeypatch):
    assert run(example("## Availability")).strip() == "AWS usage integration available"
    monkeypatch.setenv("AWS_USAGE_ENABLED", "false")
    assert "not available" in run(example("## Availability"))
    assert get_settings().aws_usage_enabled is False
