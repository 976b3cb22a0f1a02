"""Client-side pacing: one limiter per documented API quota, shared by every run that spends it.

A :class:`Quota` holds the limits of one provider quota as ``(calls, seconds)`` pairs and lets
a call go only when, for every pair, fewer than ``calls`` were sent in the last ``seconds``
(a sliding log: never more than the quota in any span of that length, so never more in the
provider's own window wherever it starts). The quota's rate is known from the provider docs
(cited where each quota is declared), so calls are spread at that rate from the first call
instead of bursting into throttles and backing off (the AIMD pacer tried before under-used
the quota; see docs/performance.md). What the provider says adapts it: a throttle's advertised
wait holds every caller (:meth:`Quota.hold`), and a "remaining" header lower than our own count
means someone else spends the quota too (:meth:`Quota.observe_remaining`).

For a ``windowed`` quota (one the provider counts per window and says so in its answers),
where the shortest window starts is learnt from what the provider says: a
"remaining" count that did not drop between two of our calls (the window reset between them),
or a throttle's whole-second retry-after (the reset is within its last second). Once that
phase is known to within half a window, the shortest limit is spent per provider window
(a full window's worth right after each reset) instead of per sliding span from our own calls;
anything that contradicts the phase replaces it. Without one the sliding log stays, but it gives
way to the provider's word: what its last "remaining" leaves may go at once, and one call a window
may go as a probe (a success, or a 429 whose retry-after says when the window resets, places it).

The runs of a backfill are separate processes (Dagster launches one per run) spending one
quota, so a quota given a ``state_dir`` keeps its log in a file there, locked while read and
written; without one it is shared by the threads of this process only.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import threading
import time
from pathlib import Path
from typing import Callable

# Sent-to-arrival jitter (thread wake-up, connection, the request's way to the provider's
# counter), in seconds: a call sent at t is counted somewhere in [t, t + JITTER]. Measured on the
# benchmark's doubles (docs/performance.md); a fixed allowance, not a share of the window, but
# never more than 5% of a sliding window: a whole 0.25 s would pace a 1-second quota (GCP's
# reads, ARM's refill) at 80% of its rate, where jitter of that size only shifts calls.
JITTER = 0.25


def allowance(window: float) -> float:
    """The send-to-arrival allowance added to a sliding window of ``window`` seconds."""
    return min(JITTER, 0.05 * window)


_KEY = re.compile(r"[^A-Za-z0-9._-]+")


class Quota:
    """One provider quota: ``limits`` as (calls, seconds) pairs, shortest window first."""

    def __init__(
        self,
        key: str,
        limits: list[tuple[int, float]],
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        windowed: bool = False,
    ):
        self.key = key
        self.windowed = windowed  # the provider counts the shortest limit per window, whose resets it tells
        self.limits = sorted(((int(n), float(w)) for n, w in limits), key=lambda limit: limit[1])
        self.path = Path(state_dir) / f"{_KEY.sub('_', key)}.json" if state_dir is not None else None
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._state = _fresh()
        self._fd: tuple[int, int] | None = None  # (pid, descriptor) of the shared state file
        self.waited = 0.0  # seconds this process spent waiting for the quota

    def acquire(self) -> float:
        """Wait until one more call fits the quota, count it as sent; returns the seconds waited."""
        waited = 0.0
        while True:
            wait = self._update(self._try_send)
            if wait <= 0:
                self.waited += waited
                return waited
            self.sleep(wait)
            waited += wait

    def hold(self, seconds: float, sent_at: float | None = None) -> None:
        """The provider said wait (a throttle's Retry-After): no caller sends for ``seconds``.

        With ``sent_at`` (when the refused call was sent) a whole-second wait no longer than
        the shortest window also places that window's reset: within the wait's last second."""
        until = self.clock() + max(0.0, float(seconds))

        def change(state, now):
            state["hold_until"] = max(state["hold_until"], until)
            if (
                self.windowed
                and sent_at is not None
                and 0 < seconds <= self.limits[0][1]
                and float(seconds).is_integer()
            ):
                self._learn_reset(state, sent_at + seconds - 1, now + seconds)

        self._update(change)

    def observe_remaining(self, remaining: int, sent_at: float | None = None) -> None:
        """The provider says ``remaining`` calls are left in its shortest window, in the answer
        to a call sent at ``sent_at``: calls we did not count (other clients of the quota) are
        counted as sent now, and a count that did not drop since our previous answer places
        the window's reset between the two calls."""
        n, window = self.limits[0]
        remaining = max(0, int(remaining))

        def adapt(state, now):
            since = now - window - allowance(window)
            ours = sum(1 for t in state["sent"] if t > since)
            state["sent"].extend([now] * max(0, (n - ours) - remaining))
            if sent_at is None or not self.windowed:
                return
            last = state.get("last")
            if last and last[1] <= sent_at and remaining >= last[2]:
                self._learn_reset(state, last[0], now)  # no drop although this call spent one
            if not last or sent_at >= last[0]:
                state["last"] = [sent_at, now, remaining]

        self._update(adapt)

    def _learn_reset(self, state: dict, lo: float, hi: float) -> None:
        """A reset of the shortest window happened in [lo, hi]: narrow the known phase (resets
        repeat every window), or start over from this evidence when it contradicts it."""
        window = self.limits[0][1]
        if not 0 <= hi - lo < window:
            return
        phase = state.get("phase")
        if phase:
            shift = round((phase[0] - lo) / window) * window  # the same reset, one window apart
            a, b = max(phase[0], lo + shift), min(phase[1], hi + shift)
            if a <= b:
                state["phase"] = [a, b]
                return
        state["phase"] = [lo, hi]

    def _try_send(self, state: dict, now: float) -> float:
        sent = state["sent"]
        wait = state["hold_until"] - now
        probe = False
        for i, (n, window) in enumerate(self.limits):
            if i == 0 and self.windowed and _credit(state, sent) > 0:
                continue  # the provider said there is room left in its window
            phase = state.get("phase") if i == 0 and self.windowed else None
            if phase and phase[1] - phase[0] <= window / 2:
                wait = max(wait, _phased_wait(sent, now, n, window, phase))
                continue
            since = now - window - allowance(window)
            recent = [t for t in sent if t > since]
            if len(recent) >= n:
                full = recent[-n] + window + allowance(window) - now
                # Where the provider's window resets is unknown: one call a window goes now;
                # its answer, a success or a 429's retry-after, places the reset.
                if i == 0 and self.windowed and full > 1.0 and state.get("probe", 0.0) <= now - window:
                    probe = True
                    continue
                wait = max(wait, full)
        if wait <= 0:
            if probe:
                state["probe"] = now
            sent.append(now)
            state["sent"] = sent[-max(n for n, _ in self.limits) :]  # older entries can no longer bind
        return wait

    def _update(self, change):
        with self._lock:
            now = self.clock()
            if self.path is None:
                return change(self._state, now)
            fd = self._shared_file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(fd, os.fstat(fd).st_size, 0)
                state = _decode(raw) if raw.strip() else _fresh()
                result = change(state, now)
                # Written over the old text, padded with spaces (JSON ignores them): a truncate
                # costs more than the rest of the update.
                os.pwrite(fd, _encode(state).ljust(len(raw)), 0)
                return result
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _shared_file(self) -> int:
        """The state file, opened once per process (a forked child opens its own: a descriptor
        shared with the parent would share its lock too)."""
        if self._fd is None or self._fd[0] != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = (os.getpid(), os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644))
        return self._fd[1]


def _fresh() -> dict:
    """A quota's shared state: our send times, the hold, the shortest window's reset
    interval (``phase``: one reset known to lie in [lo, hi]) and our last answer's count
    (``last``: sent, answered, remaining)."""
    return {"sent": [], "hold_until": 0.0, "phase": None, "last": None, "probe": 0.0}


def _encode(state: dict) -> bytes:
    """The state as JSON, send times in whole microseconds (integers encode at twice the speed)."""
    sent_us = [round(t * 1e6) for t in state["sent"]]
    return json.dumps({k: v for k, v in state.items() if k != "sent"} | {"sent_us": sent_us}).encode()


def _decode(raw: bytes) -> dict:
    state = _fresh() | json.loads(raw)
    state["sent"] = [t / 1e6 for t in state.pop("sent_us", [])]  # a file of an older version: its log is dropped
    return state


def _credit(state: dict, sent: list[float]) -> int:
    """Calls the provider's last "remaining" leaves for us: its count, less our calls sent since
    the one it answered (or up to ``JITTER`` before it: they may not have been counted yet)."""
    last = state.get("last")
    if not last:
        return 0
    since = sum(1 for s in sent if s >= last[0] - JITTER) - 1  # the answered call itself
    return last[2] - since


def _phased_wait(sent: list[float], now: float, n: int, window: float, phase: list[float]) -> float:
    """Seconds until a call sent now fits every provider window it may be counted in, the
    windows starting at resets within ``phase`` + k * ``window``. A call sent at s is counted at
    some time in [s, s + JITTER], so it may fall in window k when s + JITTER >= lo_k and
    s < hi_k + window (the window's latest possible end)."""
    lo, hi = phase

    def windows(s: float) -> range:
        return range(math.floor((s - hi) / window), math.floor((s + JITTER - lo) / window) + 1)

    wait = 0.0
    for k in windows(now):
        if now >= hi + (k + 1) * window:
            continue
        if sum(1 for s in sent if k in windows(s)) >= n:
            wait = max(wait, hi + (k + 1) * window - now)
    return wait


_QUOTAS: dict[tuple, Quota] = {}
_QUOTAS_LOCK = threading.Lock()


def quota(key: str, limits: list[tuple[int, float]], state_dir: Path | None = None, windowed: bool = False) -> Quota:
    """The process-wide :class:`Quota` for ``key`` (every source and thread of a run shares it)."""
    ident = (key, tuple(limits), str(state_dir) if state_dir is not None else None, windowed)
    with _QUOTAS_LOCK:
        if ident not in _QUOTAS:
            _QUOTAS[ident] = Quota(key, limits, state_dir, windowed=windowed)
        return _QUOTAS[ident]
