"""The quota windows the backfill benchmark enforces on the GCP and Azure doubles."""

import time

from benchmarks.limited_clouds import AZURE_QUOTAS, COST_MANAGEMENT_QPU, QuotaWindows


def test_cost_management_refuses_the_13th_query_of_a_10_second_window_and_says_when_to_retry():
    quotas = QuotaWindows({COST_MANAGEMENT_QPU: AZURE_QUOTAS[COST_MANAGEMENT_QPU]})
    now = time.time()
    if now % 10 > 8:  # keep the 12 calls inside one 10-second window
        time.sleep(10 - now % 10 + 0.05)
    answers = [quotas.take(COST_MANAGEMENT_QPU) for _ in range(13)]

    assert answers[:12] == [None] * 12
    assert 0 < answers[12] <= 10


def test_least_seconds_counts_whole_windows_from_the_release_time():
    quotas = QuotaWindows({COST_MANAGEMENT_QPU: AZURE_QUOTAS[COST_MANAGEMENT_QPU]})

    assert quotas.least_seconds(COST_MANAGEMENT_QPU, 12, start=1000.0) == 0
    assert quotas.least_seconds(COST_MANAGEMENT_QPU, 26, start=1000.0) == 20  # 12 now, 12 at +10 s, 2 at +20 s
    assert quotas.least_seconds(COST_MANAGEMENT_QPU, 26, start=1007.0) == 13  # released late in a window
    # 60 per minute binds before 12 per 10 s does: 60 in the first minute, the rest from 1260 on
    assert quotas.least_seconds(COST_MANAGEMENT_QPU, 75, start=1200.0) == 70
