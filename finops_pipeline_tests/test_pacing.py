"""Client-side pacing: calls spread to a quota's limits, held by throttles, shared between runs,
spent per provider window once Azure's answers place its resets."""

from __future__ import annotations

import pytest

from finops_pipeline.clouds.pacing import JITTER, Quota


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
    assert JITTER == 0.25
    assert quota.acquire() == pytest.approx(1.05)  # the window plus 5% of it (under JITTER)
    assert t.slept == [1.05]


def test_every_limit_of_a_quota_binds():
    t = FakeTime()
    quota = Quota("qpu", [(60, 60.0), (12, 10.0)], clock=t.clock, sleep=t.sleep)
    for _ in range(13):
        quota.acquire()
    assert t.slept == [10.25]  # the 13th waits out the 10-second limit; 13 of 60 per minute is fine
    for _ in range(60 - 13):
        quota.acquire()
    assert t.now == pytest.approx(1041.0)  # the 60th: five bursts of 12, 10.25 s apart
    quota.acquire()  # the 61st waits for the first of the minute to leave it, not the 10-s limit
    assert t.now == pytest.approx(1060.25)


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


def test_a_remaining_count_that_did_not_drop_places_the_reset_and_the_next_window_goes_at_once():
    t = FakeTime()
    quota = Quota("qpu", [(12, 10.0)], clock=t.clock, sleep=t.sleep, windowed=True)
    for _ in range(6):
        quota.acquire()
    t.now = 1005.1
    quota.observe_remaining(6, sent_at=1000.0)
    t.now = 1009.0
    quota.acquire()
    t.now = 1009.1
    quota.observe_remaining(5, sent_at=1009.0)
    t.now = 1011.0
    quota.acquire()
    t.now = 1011.1
    quota.observe_remaining(11, sent_at=1011.0)  # not 4: the window reset in [1009.0, 1011.1]
    # Azure says 11 are left: 11 go now, where the sliding log would have let 4 go and spread the
    # rest from 1010.25 (the reset alone, counting 1009.0 as maybe the new window's, lets 10 go).
    assert [quota.acquire() for _ in range(11)] == [0.0] * 11
    assert quota.acquire() == pytest.approx(10.0)  # the 13th of that window: at its latest end
    assert t.now == pytest.approx(1021.1)


def test_a_throttles_whole_second_retry_after_places_the_reset():
    t = FakeTime()
    quota = Quota("qpu", [(12, 10.0)], clock=t.clock, sleep=t.sleep, windowed=True)
    for _ in range(12):
        quota.acquire()
    t.now = 1004.0
    quota.hold(3, sent_at=1003.9)  # refused; the reset is within (1005.9, 1007.0]
    assert quota.acquire() == pytest.approx(3.0)  # after the hold, a new window: not at 1010.25
    assert [quota.acquire() for _ in range(11)] == [0.0] * 11
    assert quota.acquire() == pytest.approx(10.0)
    assert t.now == pytest.approx(1017.0)


def test_evidence_against_the_known_reset_replaces_it():
    t = FakeTime()
    quota = Quota("qpu", [(12, 10.0)], clock=t.clock, sleep=t.sleep, windowed=True)
    quota.hold(3, sent_at=999.9)  # answered at 1000.0: reset in [1001.9, 1003.0]
    assert quota._state["phase"] == [1001.9, 1003.0]
    t.now = 1005.0
    quota.hold(1, sent_at=1004.9)  # reset in [1004.9, 1006.0]: not [1001.9, 1003.0] + k * 10
    assert quota._state["phase"] == [1004.9, 1006.0]
    t.now = 1009.0
    quota.hold(6, sent_at=1008.9)  # [1013.9, 1015.0] is [1003.9, 1005.0] a window later: narrows it
    assert quota._state["phase"] == [1004.9, 1005.0]


def test_without_a_known_reset_one_call_a_window_probes_it():
    t = FakeTime()
    quota = Quota("qpu", [(12, 10.0)], clock=t.clock, sleep=t.sleep, windowed=True)
    for _ in range(12):
        quota.acquire()
    t.now = 1001.0
    assert quota.acquire() == 0.0  # the probe: the sliding log would hold it until 1010.25
    t.now = 1001.1
    quota.hold(4, sent_at=1001.0)  # refused, retry after 4 s: the window resets in (1004.0, 1005.1]
    assert quota.acquire() == pytest.approx(4.0)  # the hold, then a full window at once
    assert [quota.acquire() for _ in range(11)] == [0.0] * 11  # the refused probe was the old window's
    assert quota.acquire() == pytest.approx(10.0)  # the 13th waits for the next window's latest start
    assert t.now == pytest.approx(1015.1)


def test_what_the_last_remaining_leaves_goes_at_once():
    t = FakeTime()
    quota = Quota("qpu", [(12, 10.0)], clock=t.clock, sleep=t.sleep, windowed=True)
    for _ in range(12):
        quota.acquire()
    t.now = 1000.1
    quota.observe_remaining(0, sent_at=1000.0)
    t.now = 1003.0
    assert quota.acquire() == 0.0  # the probe
    t.now = 1003.05
    quota.observe_remaining(11, sent_at=1003.0)  # answered: the window reset in [1000.0, 1003.05]
    # That reset is too loosely placed to tell the earlier calls' window, but Azure says 11 left.
    assert [quota.acquire() for _ in range(11)] == [0.0] * 11
    assert quota.acquire() == pytest.approx(10.0)  # then the known reset: the next window's latest start
    assert t.now == pytest.approx(1013.05)


def test_a_quota_without_windows_never_probes_nor_learns_a_reset():
    t = FakeTime()
    quota = Quota("arm", [(2, 1.0)], clock=t.clock, sleep=t.sleep)
    quota.acquire()
    quota.acquire()
    t.now = 1000.5
    quota.hold(1, sent_at=1000.4)
    assert quota._state["phase"] is None
    assert quota.acquire() == pytest.approx(1.0)  # the hold, then the sliding log: the 1.05 s span
    assert t.now == pytest.approx(1001.5)


def test_runs_in_other_processes_share_the_quota_through_its_file(tmp_path):
    t = FakeTime()
    run_a = Quota("gcp-monitoring-reads-p", [(3, 1.0)], tmp_path, clock=t.clock, sleep=t.sleep)
    run_b = Quota("gcp-monitoring-reads-p", [(3, 1.0)], tmp_path, clock=t.clock, sleep=t.sleep)
    run_a.acquire()
    run_b.acquire()
    run_a.acquire()
    assert run_b.acquire() == pytest.approx(1.05)  # the fourth call of the window, whichever run sends it
    assert (tmp_path / "gcp-monitoring-reads-p.json").exists()


_FORKED: list[Quota] = []  # the quota a forked run inherits


def _sends(calls: int) -> list[float]:
    import time

    sent = []
    for _ in range(calls):
        _FORKED[0].acquire()
        sent.append(time.time())
    return sent


def test_forked_runs_never_send_more_than_the_quota_in_any_window(tmp_path):
    """A run forked from a process that already used the quota locks the file on its own
    descriptor: together the runs stay within the limit in every window."""
    import multiprocessing

    quota = Quota("gcp-monitoring-reads-p", [(5, 0.2)], tmp_path)
    quota.acquire()  # the parent has the state file open before it forks
    _FORKED[:] = [quota]
    with multiprocessing.get_context("fork").Pool(3) as pool:
        sent = sorted(t for run in pool.map(_sends, [8] * 3) for t in run)
    assert len(sent) == 24
    # a lost update lets two runs take one slot: sends ~0 s apart (0.05 s is left for scheduling)
    assert min(later - earlier for earlier, later in zip(sent, sent[5:])) > 0.15


def test_a_state_file_of_an_older_version_is_read_and_its_log_dropped(tmp_path):
    (tmp_path / "q.json").write_text('{"sent": [1000.0, 1000.5], "hold_until": 1003.0, "phase": null}')
    t = FakeTime()
    quota = Quota("q", [(2, 10.0)], tmp_path, clock=t.clock, sleep=t.sleep)
    assert quota.acquire() == pytest.approx(3.0)  # its hold is kept
    assert quota.acquire() == 0  # its send times (seconds, not microseconds) are not
