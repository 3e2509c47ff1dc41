"""The lists' wire format: round trips, updates, checksums, and malformed data refused."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from itertools import pairwise

import pytest
from callguard.list_coding import (
    NUMBER_LIMIT,
    VALUE_LIMIT,
    Coded,
    MalformedList,
    apply,
    checksum,
    decode,
    decode_indices,
    encode,
    encode_indices,
)
from hypothesis import given, settings
from hypothesis import strategies as st


@st.composite
def clustered(draw: st.DrawFn, low: int, high: int) -> list[int]:
    """Sorted distinct values with small or mixed gaps, as real lists have."""
    start = draw(st.integers(low, high - 1))
    gaps = draw(st.lists(st.integers(1, draw(st.sampled_from([1, 3, 300, 10**6, 10**12])))))
    values = [start]
    for gap in gaps:
        if values[-1] + gap >= high:
            break
        values.append(values[-1] + gap)
    return values


def sorted_sets(low: int, high: int) -> st.SearchStrategy[list[int]]:
    return st.one_of(
        st.lists(st.integers(low, high - 1), unique=True).map(sorted), clustered(low, high)
    )


numbers = sorted_sets(1, NUMBER_LIMIT)


def wire(coded: Coded) -> Coded:
    """coded after a trip through JSON text, as a client receives it."""
    return Coded.from_json(json.loads(json.dumps(coded.to_json())))


@settings(max_examples=300)
@given(numbers)
def test_numbers_round_trip(listed: list[int]) -> None:
    coded = wire(encode(listed))
    assert coded.count == len(listed)
    assert decode(coded) == listed


@settings(max_examples=200)
@given(sorted_sets(0, VALUE_LIMIT))
def test_indices_round_trip(indices: list[int]) -> None:
    assert decode_indices(wire(encode_indices(indices))) == indices


@settings(max_examples=200)
@given(numbers, numbers)
def test_update_turns_one_list_into_the_other(old: list[int], new: list[int]) -> None:
    kept = set(new)
    removals = [index for index, number in enumerate(old) if number not in kept]
    additions = sorted(set(new) - set(old))
    updated = apply(
        old, decode(wire(encode(additions))), decode_indices(wire(encode_indices(removals)))
    )
    assert updated == new
    assert checksum(updated) == checksum(new)


@given(numbers)
def test_checksum_is_sha256_of_8_byte_big_endian_numbers(listed: list[int]) -> None:
    packed = b"".join(number.to_bytes(8, "big") for number in listed)
    assert checksum(listed) == hashlib.sha256(packed).digest()


@settings(max_examples=200)
@given(numbers.filter(lambda listed: len(listed) >= 2), st.data())
def test_truncated_or_extended_data_is_refused(listed: list[int], data: st.DataObject) -> None:
    coded = encode(listed)
    cut = data.draw(st.integers(0, len(coded.encoded_data) - 1))
    extra = data.draw(st.binary(min_size=1, max_size=4))
    for encoded_data in (coded.encoded_data[:cut], coded.encoded_data + extra):
        with pytest.raises(MalformedList):
            decode(Coded(coded.first_value, coded.rice_parameter, coded.count, encoded_data))
    with pytest.raises(MalformedList):
        decode(Coded(coded.first_value, coded.rice_parameter, coded.count + 1, coded.encoded_data))


@settings(max_examples=500)
@given(
    st.integers(0, 10**15),
    st.integers(0, 70),
    st.integers(0, 5000),
    st.binary(max_size=600),
)
def test_arbitrary_data_decodes_to_a_valid_list_or_is_refused(
    first: int, k: int, count: int, encoded_data: bytes
) -> None:
    try:
        indices = decode_indices(Coded(first, k, count, encoded_data))
    except MalformedList:
        return
    assert len(indices) == count
    assert all(a < b for a, b in pairwise(indices))


def test_a_long_run_of_ones_is_refused_quickly() -> None:
    start = time.perf_counter()
    for encoded_data in (b"\xff" * 200_000, b"\xff" * 200_000 + b"\x7f"):
        with pytest.raises(MalformedList):
            decode(Coded(84900000000, 9, 3, encoded_data))
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(
    ("current", "additions", "removals"),
    [
        ([10, 20, 30], [], [3]),  # index out of range
        ([10, 20, 30], [], [-1]),
        ([10, 20, 30], [], [1, 1]),  # index repeats
        ([10, 20, 30], [20], []),  # addition already listed
        ([10, 20, 30], [25, 25], []),  # addition repeats
        ([10, 20, 30], [0], []),  # not an E.164 number
        ([10, 20, 30], [NUMBER_LIMIT], []),
    ],
)
def test_malformed_update_is_refused(
    current: list[int], additions: list[int], removals: list[int]
) -> None:
    with pytest.raises(MalformedList):
        apply(current, additions, removals)


def test_a_number_removed_and_added_back_in_one_update_stays() -> None:
    assert apply([10, 20, 30], [20], [1]) == [10, 20, 30]


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"first_value": 1, "rice_parameter": 0, "count": 1},
        {"first_value": "1", "rice_parameter": 0, "count": 1, "encoded_data": ""},
        {"first_value": 1, "rice_parameter": True, "count": 1, "encoded_data": ""},
        {"first_value": 1, "rice_parameter": 0, "count": -1, "encoded_data": ""},
        {"first_value": 1, "rice_parameter": 0, "count": 2, "encoded_data": "A"},
        {"first_value": 1, "rice_parameter": 0, "count": 2, "encoded_data": "A$=="},
    ],
)
def test_malformed_json_is_refused(obj: object) -> None:
    with pytest.raises(MalformedList):
        Coded.from_json(obj)


def test_encode_refuses_what_is_not_a_sorted_set_of_numbers() -> None:
    for bad in ([20, 10], [10, 10], [0, 10], [10, NUMBER_LIMIT]):
        with pytest.raises(MalformedList):
            encode(bad)


# The worked example of docs/lists.md, "The wire format"; the bytes here and there must agree.
EXAMPLE = [84912345678, 84912345700, 84912345733, 84912345790, 84912345801]


def test_the_worked_example_of_the_docs() -> None:
    coded = encode(EXAMPLE)
    assert coded.to_json() == {
        "first_value": 84912345678,
        "rice_parameter": 4,
        "count": 5,
        "encoded_data": "2eLSAg==",
    }
    assert coded.encoded_data == bytes.fromhex("d9e2d202")
    assert base64.b64decode("2eLSAg==") == coded.encoded_data
    removals = encode_indices([1, 3])
    assert removals.to_json() == {
        "first_value": 1,
        "rice_parameter": 0,
        "count": 2,
        "encoded_data": "Aw==",
    }
    additions = encode([84912345750])
    assert additions.to_json() == {
        "first_value": 84912345750,
        "rice_parameter": 0,
        "count": 1,
        "encoded_data": "",
    }
    updated = apply(EXAMPLE, decode(additions), decode_indices(removals))
    assert updated == [84912345678, 84912345733, 84912345750, 84912345801]
    assert (84912345678).to_bytes(8, "big").hex() == "00000013c52b924e"
    assert checksum(updated).hex() == (
        "928cfbcc43d1f0e31d4f878d0011f20646dfa050ec8a238c8aa46fc9ac48fd3b"
    )
    assert checksum([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
