"""The Bloom filter backends: no false negatives, a bounded false-positive rate, room to grow."""

from __future__ import annotations

import random

import pytest
from callguard.filter import BACKENDS, make_filter
from hypothesis import given, settings
from hypothesis import strategies as st

vn_numbers = st.integers(min_value=84_300_000_000, max_value=84_999_999_999)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@settings(max_examples=50)
@given(numbers=st.sets(vn_numbers, max_size=300))
def test_every_added_number_is_found(backend: str, numbers: set[int]) -> None:
    number_filter = make_filter(backend, 1000, 0.001)
    number_filter.update(numbers)
    assert all(number in number_filter for number in numbers)
    assert number_filter.entries <= len(numbers)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_false_positive_rate_is_near_the_target(backend: str) -> None:
    rng = random.Random(2024)
    listed = {84_900_000_000 + rng.randrange(100_000_000) for _ in range(20_000)}
    number_filter = make_filter(backend, 20_000, 0.01)
    number_filter.update(listed)
    probes = [84_300_000_000 + i for i in range(50_000)]  # a range no listed number is in
    rate = sum(number in number_filter for number in probes) / len(probes)
    assert rate < 0.02
    assert number_filter.entries >= 0.98 * len(listed)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_adding_past_capacity_keeps_every_number(backend: str) -> None:
    number_filter = make_filter(backend, 100, 0.01)
    numbers = range(84_912_000_000, 84_912_000_500)
    number_filter.update(numbers)
    assert all(number in number_filter for number in numbers)
    assert number_filter.nbytes > 0


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown filter backend"):
        make_filter("redis", 10, 0.01)


def test_entries_stay_a_count_when_every_bit_is_set() -> None:
    small = make_filter("rbloom", 10, 0.5)
    small.update(list(range(84900000000, 84900100000)))  # far past capacity: every bit set
    assert small.entries == 100_000  # the numbers given: rbloom's own estimate is infinite
