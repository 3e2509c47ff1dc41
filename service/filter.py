"""The Bloom filter in front of the blacklist, behind one small interface.

A number the filter has never seen is certainly not listed, so a lookup can answer
"unknown" without touching Postgres. Two backends are kept so they can be measured
side by side (benchmarks/filter_bench.py, docs/benchmarks.md): rbloom, the default,
and pybloom-live, which the design card names.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection
from typing import Protocol

import pybloom_live
import rbloom


class NumberFilter(Protocol):
    """A set of E.164 numbers that may answer "maybe" for a number it never saw."""

    capacity: int
    error_rate: float

    @property
    def entries(self) -> int:
        """Distinct numbers held: a number added again, or one the filter already seemed to
        hold, does not count twice. (After a bulk update, rbloom's estimate from its bits.)"""
        ...

    def add(self, number: int) -> None: ...

    def update(self, numbers: Collection[int]) -> None:
        """Add many numbers at once (a build from listings, an import)."""
        ...

    def __contains__(self, number: int) -> bool: ...

    @property
    def nbytes(self) -> int: ...

    def to_bytes(self) -> bytes | None:
        """The filter's bits for a snapshot; None if the backend cannot save them."""
        ...


def capacity_for(numbers: int, minimum: int, headroom: float) -> int:
    """The capacity to build a filter for `numbers` with room to grow by `headroom`."""
    return max(minimum, math.ceil(numbers * headroom))


class RBloomFilter:
    """rbloom (Rust): about 0.3 us a membership test."""

    def __init__(self, capacity: int, error_rate: float, data: bytes | None = None) -> None:
        self.capacity = capacity
        self.error_rate = error_rate
        self._entries: int | None = 0
        """The distinct count, None when a bulk update left it to be estimated."""
        self._given = 0
        """Numbers given to add() and update(), repeats included: an upper bound."""
        # The number itself is the hash, as Python's built-in hash of an int is; given
        # explicitly, it lets rbloom save and load the bits (a snapshot) for a fast start.
        if data is None:
            self._bloom = rbloom.Bloom(capacity, error_rate, operator.index)
        else:
            self._bloom = rbloom.Bloom.load_bytes(data, operator.index)

    def add(self, number: int) -> None:
        if number not in self._bloom:
            self._bloom.add(number)
            self._given += 1
            if self._entries is not None:
                self._entries += 1

    def update(self, numbers: Collection[int]) -> None:
        # In Rust, 2.7x faster than add() one by one at 10 M, but blind to what it already
        # holds: the count is estimated from the bits when next asked for.
        self._bloom.update(numbers)
        self._given += len(numbers)
        self._entries = None

    @property
    def entries(self) -> int:
        if self._entries is None:  # a pass over the bits: about 25 ms at 10 M numbers
            estimate = self._bloom.approx_items  # infinite once every bit is set
            self._entries = round(estimate) if estimate < self._given else self._given
        return self._entries

    @entries.setter
    def entries(self, count: int) -> None:
        self._entries = self._given = count

    def __contains__(self, number: int) -> bool:
        return number in self._bloom

    @property
    def nbytes(self) -> int:
        return int(self._bloom.size_in_bits) // 8

    def to_bytes(self) -> bytes:
        data: bytes = self._bloom.save_bytes()
        return data


class PyBloomLiveFilter:
    """pybloom-live (pure Python over bitarray)."""

    def __init__(self, capacity: int, error_rate: float) -> None:
        self.capacity = capacity
        self.error_rate = error_rate
        self.entries = 0
        """add() counts only what the filter did not seem to hold already."""
        self._bloom = pybloom_live.BloomFilter(capacity=capacity, error_rate=error_rate)

    def add(self, number: int) -> None:
        # BloomFilter.add raises once `capacity` entries are in. A listed number must
        # still go in (the false-positive rate rises, as rbloom's does), so its count
        # is held at the capacity; `entries` keeps the true figure.
        self._bloom.count = min(self._bloom.count, self.capacity)
        if not self._bloom.add(number):
            self.entries += 1

    def update(self, numbers: Collection[int]) -> None:
        for number in numbers:
            self.add(number)

    def __contains__(self, number: int) -> bool:
        return number in self._bloom

    @property
    def nbytes(self) -> int:
        return len(self._bloom.bitarray) // 8

    def to_bytes(self) -> None:
        return None  # pickling it would be slower than a rebuild


BACKENDS: dict[str, type[RBloomFilter] | type[PyBloomLiveFilter]] = {
    "rbloom": RBloomFilter,
    "pybloom-live": PyBloomLiveFilter,
}


def make_filter(backend: str, capacity: int, error_rate: float) -> NumberFilter:
    """A new, empty filter of the named backend."""
    try:
        cls = BACKENDS[backend]
    except KeyError:
        raise ValueError(
            f"unknown filter backend {backend!r}; choose from {sorted(BACKENDS)}"
        ) from None
    return cls(capacity, error_rate)


def load_filter(
    backend: str, capacity: int, error_rate: float, entries: int, data: bytes
) -> NumberFilter | None:
    """A filter from a snapshot's bits, or None if this backend cannot load them."""
    if backend != "rbloom":
        return None
    loaded = RBloomFilter(capacity, error_rate, data)
    loaded.entries = entries
    return loaded
