"""Throttling of failed authentication, per caller address and per presented key.

Only failures are counted and only failures are refused: ``core.auth`` checks a key before
it asks the throttle anything, so a valid key is never held back and nobody can lock a
client out by failing from its address (or behind its proxy). Once an address or a
presented key has failed ``max_failures`` times within the window, its further failures
are answered 429 instead of 401, uncounted, until the oldest failure leaves the window.

In memory, per process: with several processes each keeps its own count, so the limit a
caller meets is at most the processes times the setting.
"""

import threading
import time
from collections import deque
from collections.abc import Callable


class AuthThrottle:
    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._max_tracked = max_tracked
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def _wait(self, keys: tuple[str, ...], now: float) -> float | None:
        waits = []
        for key in keys:
            times = self._recent(key, now)
            if times is not None and len(times) >= self.max_failures:
                waits.append(times[0] + self.window_s - now)
        return max(waits) if waits else None

    def _record(self, keys: tuple[str, ...], now: float) -> None:
        if len(self._failures) >= self._max_tracked:
            # Bound the memory an attacker can make us spend: forget the stale callers, and
            # when a flood from many addresses leaves none stale, the longest-tracked ones
            # (a dict keeps insertion order), down to nine tenths of the bound.
            for stale in [k for k, t in self._failures.items() if t[-1] <= now - self.window_s]:
                del self._failures[stale]
            excess = len(self._failures) - (self._max_tracked * 9) // 10
            for oldest in list(self._failures)[: max(0, excess)]:
                del self._failures[oldest]
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until these callers' failures are counted again; None when they are now."""
        with self._lock:
            return self._wait(keys, self._clock())

    def failed(self, *keys: str) -> None:
        """Count a failure against each of these callers."""
        with self._lock:
            self._record(keys, self._clock())

    def failure(self, *keys: str) -> float | None:
        """A failed authentication by these callers: counted, and None returned (answer
        401), unless one of them is over the limit, when the seconds to wait are returned
        (answer 429) and nothing is counted."""
        now = self._clock()
        with self._lock:
            wait = self._wait(keys, now)
            if wait is None:
                self._record(keys, now)
            return wait
