"""Benchmark the phone lists' wire format: bytes on the wire, coding times, a local check."""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import random
import shlex
import sys
import time
import timeit
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `service` imports

from callguard.list_coding import (
    Coded,
    apply,
    checksum,
    decode,
    decode_indices,
    encode,
    encode_indices,
)
from filter_bench import MOBILE_LEADING_DIGITS, SUBSCRIBER_SPAN, mobile_number
from machine import cpu_model  # benchmarks/machine.py, beside this script

SEED = 20261130
SPACE = len(MOBILE_LEADING_DIGITS) * SUBSCRIBER_SPAN
"""The VN mobile numbers the lists are drawn from, uniformly: 5 * 10**8 of them."""
LOOKUPS = 200_000
T = TypeVar("T")


def best_of(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    """The fastest of repeat runs of work, in seconds, and what it returned."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def log2_binomial(n: int, k: int) -> float:
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)


def gzipped(body: dict[str, object]) -> tuple[int, int]:
    """Bytes of the JSON body, and of it gzipped as an HTTP response would be."""
    text = json.dumps(body, separators=(",", ":")).encode()
    return len(text), len(gzip.compress(text, compresslevel=6))


def lookup_micros(contains: Callable[[int], bool], queries: list[int], repeat: int) -> float:
    """µs a lookup, best of repeat passes over queries."""
    loop_s = min(timeit.repeat(lambda: [contains(n) for n in queries], number=1, repeat=repeat))
    return loop_s / len(queries) * 1e6


def verdict(value: float, target: float) -> str:
    return "meets" if value <= target else "MISSES"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="numbers listed")
    parser.add_argument("--churn", type=float, default=0.01, help="a day's changes, a fraction")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed for the numbers")
    parser.add_argument("--repeat", type=int, default=3, help="timings to take the best of")
    args = parser.parse_args(argv)

    print(f"command: python {shlex.join(sys.argv)}")
    print(f"date:    {date.today().isoformat()}")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    print(f"cpu:     {cpu_model()}, {os.cpu_count()} cores")
    print(f"{args.size:,} numbers drawn uniformly from {SPACE:,} VN mobile numbers, ", end="")
    print(f"seed {args.seed}, best of {args.repeat}")
    print()

    rng = random.Random(args.seed)
    changes = round(args.size * args.churn / 2)
    drawn = rng.sample(range(SPACE), args.size + changes)
    listed = sorted(mobile_number(index) for index in drawn[: args.size])
    added = sorted(mobile_number(index) for index in drawn[args.size :])
    removals = sorted(rng.sample(range(args.size), changes))

    encode_s, full = best_of(args.repeat, lambda: encode(listed))
    decode_s, decoded = best_of(args.repeat, lambda: decode(full))
    assert decoded == listed
    checksum_s, _ = best_of(args.repeat, lambda: checksum(listed))
    bound = log2_binomial(SPACE, args.size) / 8
    body, body_gz = gzipped({"additions": full.to_json(), "checksum": "x" * 44})
    print(f"full list of {args.size:,} (Rice parameter {full.rice_parameter})")
    print(f"  encoded_data        {len(full.encoded_data):>12,} B  target <= 1,500,000 B: ", end="")
    print(verdict(len(full.encoded_data), 1_500_000))
    print(f"  information bound   {bound:>12,.0f} B  log2 C({SPACE:,}, {args.size:,}) / 8")
    print(f"  JSON body           {body:>12,} B  (base64)")
    print(f"  JSON body, gzip     {body_gz:>12,} B")
    print(f"  bits a number       {8 * len(full.encoded_data) / args.size:>12.2f}")
    print(f"  encode {encode_s:.2f} s, decode {decode_s:.2f} s (target <= 1.5 s: ", end="")
    print(f"{verdict(decode_s, 1.5)}), checksum {checksum_s:.2f} s")
    print()

    additions: Coded = encode(added)
    removal_indices: Coded = encode_indices(removals)
    expected = sorted({*listed, *added} - {listed[index] for index in removals})
    apply_s, updated = best_of(
        args.repeat,
        lambda: apply(listed, decode(additions), decode_indices(removal_indices)),
    )
    assert updated == expected
    update_raw = len(additions.encoded_data) + len(removal_indices.encoded_data)
    update_body = {
        "additions": additions.to_json(),
        "removals": removal_indices.to_json(),
        "checksum": "x" * 44,
    }
    body, body_gz = gzipped(update_body)
    update_bound = (
        log2_binomial(SPACE - args.size, changes) + log2_binomial(args.size, changes)
    ) / 8
    print(f"a day's update at {args.churn:.1%} churn: {changes:,} added, {changes:,} removed")
    print(
        f"  additions           {len(additions.encoded_data):>12,} B  k={additions.rice_parameter}"
    )
    print(f"  removal indices     {len(removal_indices.encoded_data):>12,} B  ", end="")
    print(f"k={removal_indices.rice_parameter}")
    print(f"  both                {update_raw:>12,} B  target <= 40,000 B: ", end="")
    print(verdict(update_raw, 40_000))
    print(f"  information bound   {update_bound:>12,.0f} B")
    print(f"  JSON body           {body:>12,} B")
    print(f"  JSON body, gzip     {body_gz:>12,} B")
    print(f"  decode + apply      {apply_s:>12.3f} s")
    print()

    table = array("Q", listed)
    listed_set = set(listed)
    present = rng.sample(listed, LOOKUPS)
    absent = [mobile_number(index) for index in rng.sample(range(SPACE), LOOKUPS)]

    def in_table(number: int) -> bool:
        place = bisect_left(table, number)
        return place < len(table) and table[place] == number

    structures: list[tuple[str, Callable[[int], bool], int]] = [
        ("sorted array('Q'), bisect", in_table, table.itemsize * len(table)),
        # the set's table, and the int objects it alone would keep alive
        (
            "set",
            listed_set.__contains__,
            sys.getsizeof(listed_set) + sum(map(sys.getsizeof, listed)),
        ),
    ]
    print(f"local check, {LOOKUPS:,} lookups of listed and of unlisted numbers:")
    for name, contains, nbytes in structures:
        micros = [lookup_micros(contains, queries, args.repeat) for queries in (present, absent)]
        print(f"  {name:<26} {micros[0]:.2f} / {micros[1]:.2f} µs a lookup, ", end="")
        print(f"{nbytes / 1e6:.0f} MB; target <= 2 µs: {verdict(max(micros), 2)}")


if __name__ == "__main__":
    main()
