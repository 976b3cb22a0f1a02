"""The usage API's answer cache: TTL, bounded LRU, thread-safe, one computation per key.

Keys are built by the caller from every argument that changes the answer. Values are
stored and handed out as deep copies, so a caller mutating its result never changes
what the next caller gets. ``None`` (a disabled cloud, an API error) is never stored;
an empty result is. Concurrent callers asking for the same missing key wait for one
computation instead of each calling the cloud. A TTL of 0 disables caching.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class TtlCache:
    """``get_or_compute(key, compute)`` with expiry after ``ttl_seconds`` and at most ``max_entries``."""

    def __init__(self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1 (USAGE_CACHE_MAX_ENTRIES)")
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._generation = 0  # bumped by clear(): computations started before it are not stored

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _lookup(self, key: Hashable) -> tuple[bool, object]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            stored_at, value = entry
            if self.clock() - stored_at >= self.ttl_seconds:
                del self._entries[key]
                return False, None
            self._entries.move_to_end(key)
            self.hits += 1
            return True, value

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached answer for ``key``, or ``compute()``'s (stored unless it is None)."""
        if self.ttl_seconds <= 0:
            return compute()
        found, value = self._lookup(key)
        if found:
            return copy.deepcopy(value)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            found, value = self._lookup(key)  # another caller may have just computed it
            if found:
                return copy.deepcopy(value)
            with self._lock:
                self.misses += 1
                generation = self._generation
            value = compute()
            if value is not None:
                with self._lock:
                    if generation == self._generation:
                        self._entries[key] = (self.clock(), copy.deepcopy(value))
                        self._entries.move_to_end(key)
                        while len(self._entries) > self.max_entries:
                            self._entries.popitem(last=False)
            with self._lock:
                self._key_locks.pop(key, None)
            return value

    def clear(self) -> None:
        """Forget every entry (and any answer being computed right now)."""
        with self._lock:
            self._entries.clear()
            self._generation += 1
