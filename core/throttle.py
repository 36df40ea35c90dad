"""Throttling of failed authentication, per caller address and per presented key.

In memory, per process: with several processes each keeps its own count, so the limit a
caller meets is at most the processes times the setting. A sliding window of failure
times per key; once a key passes the limit it is refused (429) until its oldest failure
leaves the window, whatever it presents, so guessing keys costs time.
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

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until these callers may try again; None when they may now."""
        now = self._clock()
        waits = []
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if times is not None and len(times) >= self.max_failures:
                    waits.append(times[0] + self.window_s - now)
        return max(waits) if waits else None

    def failed(self, *keys: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self._max_tracked:
                # Bound the memory an attacker can make us spend: forget the stalest keys.
                for stale in [k for k, t in self._failures.items() if t[-1] <= now - self.window_s]:
                    del self._failures[stale]
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)
