"""The cache: one entry per distinct question, TTL, LRU bound, copies, threads, clear_cache."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta, timezone

from finops_pipeline.adapters.usage import UsageFactory
from finops_pipeline.adapters.usage.cache import TtlCache
from finops_pipeline.settings import get_settings
from finops_pipeline.types.usage import UsageQuery

from .conftest import LAKE_START, TODAY


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def day(d) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


WEEK_START, WEEK_END = day(TODAY - timedelta(days=7)), day(TODAY)


def ce_calls(factory: UsageFactory) -> int:
    return factory.adapter("aws").bulk.api.calls["GetCostAndUsage"]


# -- the cache on its own ------------------------------------------------------------
def test_entries_expire_after_the_ttl_by_the_injected_clock():
    clock, computed = FakeClock(), []
    cache = TtlCache(ttl_seconds=60, max_entries=10, clock=clock)
    compute = lambda: computed.append(1) or ["answer"]  # noqa: E731
    assert cache.get_or_compute("k", compute) == ["answer"]
    clock.now += 59.9
    cache.get_or_compute("k", compute)
    assert len(computed) == 1
    clock.now += 0.1
    cache.get_or_compute("k", compute)
    assert len(computed) == 2


def test_least_recently_used_entry_goes_first_when_full():
    cache, computed = TtlCache(3600, max_entries=2), []

    def ask(key):
        return cache.get_or_compute(key, lambda: computed.append(key) or key)

    ask("a"), ask("b"), ask("a"), ask("c")  # "b" is the least recently used when "c" arrives
    assert len(cache) == 2
    ask("a"), ask("c")
    assert computed == ["a", "b", "c"]
    ask("b")
    assert computed == ["a", "b", "c", "b"]


def test_none_is_not_cached_but_empty_results_are():
    cache, computed = TtlCache(3600, 10), []
    cache.get_or_compute("failed", lambda: computed.append("f"))
    cache.get_or_compute("failed", lambda: computed.append("f"))
    cache.get_or_compute("empty", lambda: computed.append("e") or [])
    cache.get_or_compute("empty", lambda: computed.append("e") or [])
    assert computed == ["f", "f", "e"]


def test_ttl_zero_turns_the_cache_off():
    cache, computed = TtlCache(0, 10), []
    for _ in range(3):
        cache.get_or_compute("k", lambda: computed.append(1) or [1])
    assert len(computed) == 3 and len(cache) == 0


# -- through the factory, against the AWS doubles ---------------------------------------
def test_repeated_question_is_answered_from_cache_until_the_ttl_passes(aws_env, monkeypatch):
    monkeypatch.setenv("USAGE_CACHE_TTL_SECONDS", "600")
    clock = FakeClock()
    factory = UsageFactory(get_settings(), clock=clock)
    first = factory.get_cost_usage("aws", WEEK_START, WEEK_END, group_by=["service"])
    calls = ce_calls(factory)
    assert len(first) == 7 * 7 and calls == 1  # 7 services x 7 days, in one Cost Explorer page
    assert factory.get_cost_usage("aws", WEEK_START, WEEK_END, group_by=["service"]) == first
    assert ce_calls(factory) == calls
    clock.now += 600
    assert factory.get_cost_usage("aws", WEEK_START, WEEK_END, group_by=["service"]) == first
    assert ce_calls(factory) == 2 * calls


def test_empty_answers_are_cached_and_clear_cache_forgets(aws_env):
    factory = UsageFactory(get_settings())
    empty = factory.get_cost_usage(
        "aws", WEEK_START, WEEK_END, group_by=["service"], filters={"service": "No Such Service"}
    )
    assert empty == []
    calls = ce_calls(factory)
    assert (
        factory.get_cost_usage(
            "aws", WEEK_START, WEEK_END, group_by=["service"], filters={"service": "No Such Service"}
        )
        == []
    )
    assert ce_calls(factory) == calls
    factory.clear_cache()
    factory.get_cost_usage("aws", WEEK_START, WEEK_END, group_by=["service"], filters={"service": "No Such Service"})
    assert ce_calls(factory) == 2 * calls


def test_callers_get_copies_not_the_cached_objects(aws_env):
    factory = UsageFactory(get_settings())
    records = factory.get_cost_usage("aws", WEEK_START, WEEK_END, group_by=["service"])
    original_cost = records[0].cost
    records[0].cost = records[0].cost * 1000
    records.clear()
    again = factory.get_cost_usage("aws", WEEK_START, WEEK_END, group_by=["service"])
    assert again and again[0].cost == original_cost


def test_concurrent_callers_share_one_api_fetch_and_get_equal_answers(aws_env):
    reference = UsageFactory(get_settings())
    expected = reference.get_cost_usage("aws", WEEK_START, WEEK_END, group_by=["service", "region"])
    one_fetch = ce_calls(reference)

    factory = UsageFactory(get_settings())
    results, errors = [], []
    barrier = threading.Barrier(8)

    def worker():
        try:
            barrier.wait()
            results.append(factory.get_cost_usage("aws", WEEK_START, WEEK_END, group_by=["service", "region"]))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 8 and all(r == expected for r in results)
    assert ce_calls(factory) == one_fetch
    assert len({id(r) for r in results}) == 8  # each caller its own copy


def test_metrics_argument_is_part_of_the_key(aws_env, fleet):
    """The original's key left metrics out and returned CPU data to a NetworkIn question."""
    ec2 = fleet.of("aws", "ec2")[0]
    factory = UsageFactory(get_settings())
    cpu = factory.get_resource_usage(
        "aws", ec2.resource_id, "ec2", WEEK_START, WEEK_END, region=ec2.region, metrics=["CPUUtilization"]
    )
    net = factory.get_resource_usage(
        "aws", ec2.resource_id, "ec2", WEEK_START, WEEK_END, region=ec2.region, metrics=["NetworkIn"]
    )
    assert {m.metric_name for m in cpu.metrics} == {"CPUUtilization"}
    assert {m.metric_name for m in net.metrics} == {"NetworkIn"}
    assert cpu.avg_cpu_utilization is not None and net.avg_cpu_utilization is None


# -- distinct questions never share an answer (systematic product, warehouse source) --
def _lake_factory(aws_lake, monkeypatch) -> UsageFactory:
    monkeypatch.setenv("FINOPS_DATA_DIR", str(aws_lake))
    monkeypatch.setenv("USAGE_CACHE_TTL_SECONDS", "3600")
    return UsageFactory(get_settings())


def _comparable(answer):
    if answer is None:
        return None
    if isinstance(answer, list):
        return [a.model_dump() for a in answer]
    return answer.model_dump()


def test_distinct_summary_queries_never_collide(aws_lake, aws_env, monkeypatch, fleet):
    factory = _lake_factory(aws_lake, monkeypatch)
    ec2 = [r.resource_id for r in fleet.of("aws", "ec2")]
    start = day(LAKE_START)
    grid = {
        "end_time": [day(TODAY - timedelta(days=1)), day(TODAY)],
        "resource_ids": [None, ec2[:1], ec2[1:3]],
        "resource_types": [None, ["ec2"], ["rds"]],
        "regions": [None, ["us-east-1"]],
        "metric_names": [None, ["CPUUtilization"]],
        "group_by": [None, ["service"], ["account"]],
        "max_results": [1000, 1],
    }
    names = list(grid)
    # Every level of every field appears; each pair of fields meets in several combinations.
    combos = list(itertools.product(*grid.values()))[::9]
    seen = []
    for values in combos:
        query = UsageQuery(cloud_provider="aws", start_time=start, **dict(zip(names, values)))
        cached = _comparable(factory.get_usage_summary(query, source="warehouse"))
        assert cached is not None
        seen.append(cached)
    # Ask every question again, uncached, and through the (now full) cache: all three agree.
    for values, first in zip(combos, seen):
        query = UsageQuery(cloud_provider="aws", start_time=start, **dict(zip(names, values)))
        fresh = _comparable(factory.get_usage_summary(query, source="warehouse", use_cache=False))
        again = _comparable(factory.get_usage_summary(query, source="warehouse"))
        assert fresh == first == again, values
    assert factory.cache.hits >= len(combos)
    # The grid really asks different questions: answers differ across most combinations.
    assert len({repr(a) for a in seen}) > len(combos) // 2


def test_distinct_cost_and_resource_questions_never_collide(aws_lake, aws_env, monkeypatch, fleet):
    factory = _lake_factory(aws_lake, monkeypatch)
    start, end = day(LAKE_START), day(TODAY)
    cost_grid = itertools.product(
        [start + timedelta(days=1)],
        ["DAILY", "MONTHLY"],
        [None, ["service"], ["SERVICE"], ["account"], ["service", "account"]],
        [None, {"service": "AWS Lambda"}, {"account": "222222222222"}],
    )
    resources = [(r.resource_id, r.resource_type) for r in fleet.of("aws")[:6]]
    resource_grid = itertools.product(
        resources, [None, ["cpu_utilization_pct"], ["CPUUtilization"]], [end, end - timedelta(hours=5)]
    )
    questions = []
    for s, gran, group_by, filters in cost_grid:
        questions.append(
            lambda s=s, g=gran, gb=group_by, f=filters, **kw: factory.get_cost_usage(
                "aws", s, end, granularity=g, group_by=gb, filters=f, source="warehouse", **kw
            )
        )
    for (rid, rtype), metrics, e in resource_grid:
        if metrics and rtype not in ("ec2", "rds"):
            continue
        questions.append(
            lambda rid=rid, t=rtype, m=metrics, e=e, **kw: factory.get_resource_usage(
                "aws", rid, t, start, e, metrics=m, source="warehouse", **kw
            )
        )
    first = [_comparable(ask()) for ask in questions]
    for ask, answer in zip(questions, first):
        assert _comparable(ask(use_cache=False)) == answer == _comparable(ask())
    assert all(a is not None for a in first)
