"""The wire format of the phone lists: Rice-Golomb coded sorted numbers, removal indices, checksum.

Pure functions, no I/O. docs/lists.md, "The wire format", is the specification; this is its
reference implementation. The bit stream is Safe Browsing's (and DEFLATE's): bytes in order,
least-significant bit of each byte first.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import math
import re
import sys
from array import array
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from functools import cache
from itertools import accumulate, pairwise, repeat
from operator import lshift, or_, rshift, sub

NUMBER_LIMIT = 10**15
"""Numbers are the digits of an E.164 number, at most 15, so 1 <= number < NUMBER_LIMIT."""
VALUE_LIMIT = 2**63
"""Any coded value, number or index, fits a signed 64-bit integer (Java's long)."""
MAX_RICE_PARAMETER = 62
"""So a remainder fits a signed 64-bit integer too; for numbers the encoder stays below 50."""


class MalformedList(ValueError):
    """Coded data or an update that does not follow the format; the client should refetch."""


@dataclasses.dataclass(frozen=True, slots=True)
class Coded:
    """A sorted list of distinct non-negative integers, Rice-Golomb coded.

    Unlike Safe Browsing's entries_count, which counts only the coded gaps, `count` is the
    length of the whole list, so the empty list (count 0) needs no special case.
    """

    first_value: int
    rice_parameter: int
    count: int
    encoded_data: bytes

    def to_json(self) -> dict[str, int | str]:
        """The JSON object sent on the wire, encoded_data in base64 with padding."""
        return {
            "first_value": self.first_value,
            "rice_parameter": self.rice_parameter,
            "count": self.count,
            "encoded_data": base64.b64encode(self.encoded_data).decode("ascii"),
        }

    @classmethod
    def from_json(cls, obj: object) -> Coded:
        """The inverse of to_json, checking every field's type; raises MalformedList."""
        if not isinstance(obj, Mapping):
            raise MalformedList("a coded list must be a JSON object")
        fields = {}
        for name in ("first_value", "rice_parameter", "count"):
            value = obj.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise MalformedList(f"{name} must be a non-negative integer")
            fields[name] = value
        text = obj.get("encoded_data")
        if not isinstance(text, str):
            raise MalformedList("encoded_data must be a base64 string")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as err:
            raise MalformedList("encoded_data is not valid base64") from err
        return cls(encoded_data=data, **fields)


def encode(numbers: Sequence[int]) -> Coded:
    """Code a sorted list of distinct numbers, each 1 <= number < 10**15."""
    if numbers and not 1 <= numbers[0] <= numbers[-1] < NUMBER_LIMIT:
        raise MalformedList(f"numbers must lie in [1, {NUMBER_LIMIT})")
    return _encode(numbers)


def decode(coded: Coded) -> list[int]:
    """The sorted numbers of a coded list; raises MalformedList on any malformed data."""
    numbers = _decode(coded)
    if numbers and not 1 <= numbers[0] <= numbers[-1] < NUMBER_LIMIT:
        raise MalformedList(f"numbers must lie in [1, {NUMBER_LIMIT})")
    return numbers


def encode_indices(indices: Sequence[int]) -> Coded:
    """Code removal indices: sorted, distinct, non-negative."""
    return _encode(indices)


def decode_indices(coded: Coded) -> list[int]:
    """The sorted removal indices of a coded list; raises MalformedList."""
    return _decode(coded)


def checksum(numbers: Sequence[int]) -> bytes:
    """SHA-256 of the list, sorted, each number as 8 bytes big-endian unsigned, concatenated."""
    packed = array("Q", sorted(numbers))
    if sys.byteorder == "little":
        packed.byteswap()
    return hashlib.sha256(packed.tobytes()).digest()


def apply(
    current: Sequence[int], additions: Sequence[int], removal_indices: Sequence[int]
) -> list[int]:
    """The sorted list after an update: remove by index into current, then add.

    Raises MalformedList if an index repeats or is out of range, or if an addition repeats,
    is out of range or is still in the list after the removals.
    """
    kept: list[int] = []
    start = 0
    for index in sorted(removal_indices):
        if not start <= index < len(current):
            raise MalformedList(f"removal index {index} repeats or is out of range")
        kept.extend(current[start:index])
        start = index + 1
    kept.extend(current[start:])
    added = sorted(additions)
    if added and not 1 <= added[0] <= added[-1] < NUMBER_LIMIT:
        raise MalformedList(f"additions must lie in [1, {NUMBER_LIMIT})")
    for previous, number in pairwise(added):
        if previous == number:
            raise MalformedList(f"addition {number} repeats")
    for number in added:
        place = bisect_left(kept, number)
        if place < len(kept) and kept[place] == number:
            raise MalformedList(f"addition {number} is already in the list")
    kept.extend(added)
    kept.sort()  # two sorted runs: timsort merges them in linear time
    return kept


def _rice_parameter(gaps: list[int]) -> int:
    """k from the mean gap, floor(log2(mean gap * ln 2)), then larger while the data shrinks.

    The rule suits gaps spread as in a uniform sample. A few huge gaps (unused number ranges)
    inflate the quotients; a larger k then makes the data smaller. Decoders need not know
    this, as k is sent.
    """
    k = max(0, math.floor(math.log2(sum(gaps) / len(gaps) * math.log(2))))
    while _coded_bits(gaps, k + 1) < _coded_bits(gaps, k):
        k += 1
    return k


def _coded_bits(gaps: list[int], k: int) -> int:
    quotient_bits: int = sum(map(rshift, gaps, repeat(k)))
    return quotient_bits + len(gaps) * (k + 1)


def _encode(values: Sequence[int]) -> Coded:
    if not values:
        return Coded(first_value=0, rice_parameter=0, count=0, encoded_data=b"")
    if not 0 <= values[0] <= values[-1] < VALUE_LIMIT:
        raise MalformedList(f"values must lie in [0, {VALUE_LIMIT})")
    if len(values) == 1:
        return Coded(first_value=values[0], rice_parameter=0, count=1, encoded_data=b"")
    gaps = list(map(sub, values[1:], values[:-1]))
    if min(gaps) < 1:
        raise MalformedList("values must be sorted and distinct")
    k = _rice_parameter(gaps)
    mask = (1 << k) - 1
    # The stream read backwards, last bit first, is the binary numeral of the encoded bytes
    # as a little-endian integer. So write each codeword backwards (remainder most significant
    # bit first, the 0, the quotient's 1s), last codeword first, and convert in one step.
    if k <= _TABLE_BITS:
        heads = _remainder_heads(k)
        backwards = "".join([heads[gap & mask] + "1" * (gap >> k) for gap in reversed(gaps)])
    else:
        backwards = "".join([f"{gap & mask:0{k}b}0" + "1" * (gap >> k) for gap in reversed(gaps)])
    data = int(backwards, 2).to_bytes((len(backwards) + 7) // 8, "little")
    return Coded(first_value=values[0], rice_parameter=k, count=len(values), encoded_data=data)


_TABLE_BITS = 16
"""Up to this k, remainders' bit strings come from a table (faster than formatting each)."""


@cache
def _remainder_heads(k: int) -> list[str]:
    """For each remainder, its k bits most significant first and the quotient's end, 0."""
    return [f"{remainder:0{k}b}0" if k else "0" for remainder in range(1 << k)]


@cache
def _codeword_patterns(k: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Patterns for one codeword: capturing its quotient's 1s, and capturing its remainder."""
    return re.compile(f"(1*+)0[01]{{{k}}}"), re.compile(f"1*+0([01]{{{k}}})")


_FIELD_TYPECODES = {array(code).itemsize: code for code in "QLIHB"}
"""array typecodes for unsigned fields of 1, 2, 4 and 8 bytes, on this platform."""


def _decode(coded: Coded) -> list[int]:
    first, k, count, data = (
        coded.first_value,
        coded.rice_parameter,
        coded.count,
        coded.encoded_data,
    )
    if not 0 <= first < VALUE_LIMIT or count < 0 or not 0 <= k <= MAX_RICE_PARAMETER:
        raise MalformedList("first_value, count or rice_parameter out of range")
    if count <= 1:
        if data or (count == 0 and (first or k)):
            raise MalformedList("data for a list of at most one value")
        return [first] if count else []
    coded_gaps = count - 1
    if 8 * len(data) < coded_gaps * (k + 1):
        raise MalformedList("encoded_data is too short for count")
    # Bit i of the stream is stream[i]: the little-endian integer's binary numeral, reversed.
    # k + 1 zeros after it let every codeword, even a truncated one, match in one pass, so the
    # regular expressions run in linear time; reading into them is caught below as truncation.
    stream = format(int.from_bytes(data, "little"), f"0{8 * len(data)}b")[::-1] + "0" * (k + 1)
    quotient_pattern, remainder_pattern = _codeword_patterns(k)
    quotients = list(map(len, quotient_pattern.findall(stream)[:coded_gaps]))
    used = sum(quotients) + coded_gaps * (k + 1)
    if len(quotients) < coded_gaps or used > 8 * len(data):
        raise MalformedList("encoded_data ends before count values")
    if (used + 7) // 8 != len(data) or "1" in stream[used:]:
        raise MalformedList("encoded_data has bits after the last value")
    gaps = list(map(lshift, quotients, repeat(k)))
    if k:
        gaps = list(map(or_, gaps, _remainders(remainder_pattern, stream, k, coded_gaps)))
    if min(gaps) < 1:
        raise MalformedList("a gap of 0: values repeat")
    values = list(accumulate(gaps, initial=first))
    if values[-1] >= VALUE_LIMIT:
        raise MalformedList(f"values must lie in [0, {VALUE_LIMIT})")
    return values


def _remainders(pattern: re.Pattern[str], stream: str, k: int, count: int) -> array[int]:
    """The first count codewords' remainders, all converted at once rather than one by one.

    Each remainder's bits, least significant first, padded with 0s to a field of 8, 16, 32 or
    64 bits, and the fields concatenated, are again a little-endian stream: reversed, its
    binary numeral is an integer whose bytes are an array of the remainders.
    """
    width = next(bits for bits in (8, 16, 32, 64) if k <= bits)
    padding = "0" * (width - k)
    fields = padding.join(pattern.findall(stream)[:count]) + padding
    remainders = array(_FIELD_TYPECODES[width // 8])
    remainders.frombytes(int(fields[::-1], 2).to_bytes(count * width // 8, "little"))
    if sys.byteorder == "big":
        remainders.byteswap()
    return remainders
