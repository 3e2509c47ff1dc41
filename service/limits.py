"""Rate limits: token buckets per API key, in this process."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBuckets:
    """A bucket per key that refills at `rate` tokens a second up to `burst`.

    Each replica limits on its own, so the service-wide limit is this times the replicas.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key -> (tokens, as of when)

    def take(self, key: int, cost: float = 1.0) -> float:
        """Take `cost` tokens for `key` (at most a full bucket's worth): 0.0 if granted,
        else the seconds until they are there."""
        cost = min(cost, float(self.burst))
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / self.rate

    def charge(self, key: int, cost: float) -> None:
        """Take `cost` tokens for work already done, into debt if need be (at most a full
        bucket's worth): the key's next requests wait until it is paid off."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        self._buckets[key] = (max(-float(self.burst), tokens - cost), now)


class InFlight:
    """How many requests each key has in progress, each key up to `limit` at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[int, int] = {}

    def enter(self, key: int) -> bool:
        """Count one more request for `key`; False (nothing counted) if it has `limit`."""
        count = self._counts.get(key, 0)
        if count >= self.limit:
            return False
        self._counts[key] = count + 1
        return True

    def leave(self, key: int) -> None:
        """A request that entered has ended."""
        count = self._counts.pop(key) - 1
        if count:
            self._counts[key] = count
