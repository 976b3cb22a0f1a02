"""Client-side pacing: calls spread to a quota's limits, held by throttles, shared between runs."""

from __future__ import annotations

import pytest

from finops_pipeline.clouds.pacing import MARGIN, Quota


class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_calls_beyond_the_quota_wait_for_the_oldest_to_leave_the_window():
    t = FakeTime()
    quota = Quota("k", [(2, 1.0)], clock=t.clock, sleep=t.sleep)
    assert [quota.acquire() for _ in range(2)] == [0.0, 0.0]
    assert quota.acquire() == pytest.approx(1.0 * (1 + MARGIN)) == pytest.approx(1.05)
    assert t.slept == [1.05]


def test_every_limit_of_a_quota_binds():
    t = FakeTime()
    quota = Quota("qpu", [(60, 60.0), (12, 10.0)], clock=t.clock, sleep=t.sleep)
    for _ in range(13):
        quota.acquire()
    assert t.slept == [10.5]  # the 13th waits out the 10-second limit; 13 of 60 per minute is fine
    for _ in range(60 - 13):
        quota.acquire()
    quota.acquire()  # the 61st waits for the first of the minute to leave it
    assert t.now == pytest.approx(1000.0 + 63.0)


def test_a_throttle_holds_every_caller_and_a_low_remaining_counts_other_clients():
    t = FakeTime()
    quota = Quota("arm", [(25, 1.0)], clock=t.clock, sleep=t.sleep)
    quota.acquire()
    quota.hold(3.0)
    assert quota.acquire() == 3.0
    t.now += 5
    quota.observe_remaining(5)  # 25 per window, none of ours recent, Azure says 5 left: 20 others'
    for _ in range(5):
        assert quota.acquire() == 0.0
    assert quota.acquire() == pytest.approx(1.05)


def test_runs_in_other_processes_share_the_quota_through_its_file(tmp_path):
    t = FakeTime()
    run_a = Quota("gcp-monitoring-reads-p", [(3, 1.0)], tmp_path, clock=t.clock, sleep=t.sleep)
    run_b = Quota("gcp-monitoring-reads-p", [(3, 1.0)], tmp_path, clock=t.clock, sleep=t.sleep)
    run_a.acquire()
    run_b.acquire()
    run_a.acquire()
    assert run_b.acquire() == pytest.approx(1.05)  # the fourth call of the window, whichever run sends it
    assert (tmp_path / "gcp-monitoring-reads-p.json").exists()
