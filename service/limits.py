"""Rate limits: token buckets per API key, in this process."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


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


class NetworkBuckets:
    """A token bucket per client network, in bounded memory: past `max_networks`, the one
    seen longest ago is forgotten (and starts again with a full bucket). An IPv4 address
    counts by its first `v4_prefix` bits, an IPv6 one by its first `v6_prefix` (a /64 is
    usually one client's; a /48 one site's)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_networks: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        v4_prefix: int = 32,
        v6_prefix: int = 64,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_networks = max_networks
        self._clock = clock
        self._prefixes = {4: v4_prefix, 6: v6_prefix}
        self._buckets: dict[str, tuple[float, float]] = {}  # network -> (tokens, as of when)

    def take(self, address: str, cost: float = 1.0) -> float:
        """Take `cost` tokens for the address's network: 0.0 if granted, else the seconds
        until they are there."""
        network = self.network(address)
        cost = min(cost, self.burst)
        now = self._clock()
        tokens, then = self._buckets.pop(network, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        wait = 0.0 if tokens >= cost else (cost - tokens) / self.rate
        self._buckets[network] = (tokens - cost if wait == 0.0 else tokens, now)  # newest last
        if len(self._buckets) > self.max_networks:
            del self._buckets[next(iter(self._buckets))]
        return wait

    def network(self, address: str) -> str:
        """The network an address counts under."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address  # a Unix socket's peer, or what a trusted proxy sent
        prefix = self._prefixes[ip.version]
        return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class Busy(Exception):
    """As many requests of a kind as allowed are in progress already: for the caller's key
    if `per_key`, else for the replica as a whole; str(error) says which, for the client."""

    def __init__(self, what: str, limit: int, per_key: bool, retry_after: float) -> None:
        whose = "for this key" if per_key else "on this replica"
        super().__init__(f"{limit} {what} are in progress {whose}, the most allowed at once")
        self.limit = limit
        self.per_key = per_key
        self.retry_after = retry_after
        """Seconds one such request takes, about: when to try again."""


class InFlight:
    """Requests of one kind in progress: up to `per_key` for each key, and `in_all` in all."""

    def __init__(
        self, what: str, retry_after: float, per_key: int, in_all: int | None = None
    ) -> None:
        self.what = what
        self.retry_after = retry_after
        self.per_key = per_key
        self.in_all = in_all
        self._counts: dict[int, int] = {}
        self._total = 0

    @contextmanager
    def claim(self, key: int) -> Iterator[None]:
        """Count a request of `key` for the block's length; Busy if it may not start."""
        mine = self._counts.get(key, 0)
        if mine >= self.per_key:
            raise Busy(self.what, self.per_key, True, self.retry_after)
        if self.in_all is not None and self._total >= self.in_all:
            raise Busy(self.what, self.in_all, False, self.retry_after)
        self._counts[key] = mine + 1
        self._total += 1
        try:
            yield
        finally:
            self._total -= 1
            left = self._counts.pop(key) - 1
            if left:
                self._counts[key] = left
