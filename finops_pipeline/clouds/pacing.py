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

The runs of a backfill are separate processes (Dagster launches one per run) spending one
quota, so a quota given a ``state_dir`` keeps its log in a file there, locked while read and
written; without one it is shared by the threads of this process only.
"""

from __future__ import annotations

import fcntl
import json
import re
import threading
import time
from pathlib import Path
from typing import Callable

# Sent-to-arrival jitter (thread wake-up, network) can move a call into the next provider
# window; spacing windows this much wider keeps a paced client under the quota anyway.
MARGIN = 0.05

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
    ):
        self.key = key
        self.limits = sorted(((int(n), float(w) * (1 + MARGIN)) for n, w in limits), key=lambda limit: limit[1])
        self.path = Path(state_dir) / f"{_KEY.sub('_', key)}.json" if state_dir is not None else None
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._state = {"sent": [], "hold_until": 0.0}
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

    def hold(self, seconds: float) -> None:
        """The provider said wait (a throttle's Retry-After): no caller sends for ``seconds``."""
        until = self.clock() + max(0.0, float(seconds))
        self._update(lambda state, now: state.__setitem__("hold_until", max(state["hold_until"], until)))

    def observe_remaining(self, remaining: int) -> None:
        """The provider says ``remaining`` calls are left in its shortest window: calls we did
        not count (other clients of the quota) are counted as sent now."""
        n, window = self.limits[0]

        def adapt(state, now):
            ours = sum(1 for t in state["sent"] if t > now - window)
            state["sent"].extend([now] * max(0, (n - ours) - max(0, int(remaining))))

        self._update(adapt)

    def _try_send(self, state: dict, now: float) -> float:
        sent = state["sent"]
        wait = state["hold_until"] - now
        for n, window in self.limits:
            recent = [t for t in sent if t > now - window]
            if len(recent) >= n:
                wait = max(wait, recent[-n] + window - now)
        if wait <= 0:
            sent.append(now)
            state["sent"] = sent[-max(n for n, _ in self.limits) :]  # older entries can no longer bind
        return wait

    def _update(self, change):
        with self._lock:
            now = self.clock()
            if self.path is None:
                return change(self._state, now)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes
                fh.seek(0)
                raw = fh.read()
                state = json.loads(raw) if raw else {"sent": [], "hold_until": 0.0}
                result = change(state, now)
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(state))
                return result


_QUOTAS: dict[tuple, Quota] = {}
_QUOTAS_LOCK = threading.Lock()


def quota(key: str, limits: list[tuple[int, float]], state_dir: Path | None = None) -> Quota:
    """The process-wide :class:`Quota` for ``key`` (every source and thread of a run shares it)."""
    ident = (key, tuple(limits), str(state_dir) if state_dir is not None else None)
    with _QUOTAS_LOCK:
        if ident not in _QUOTAS:
            _QUOTAS[ident] = Quota(key, limits, state_dir)
        return _QUOTAS[ident]
