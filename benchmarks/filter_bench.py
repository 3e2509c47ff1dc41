"""Benchmark the service's Bloom filter backends: build speed, lookup speed, FP rate, memory."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.util
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `service` imports

from callguard.filter import BACKENDS, make_filter
from machine import cpu_model  # benchmarks/machine.py, beside this script

QUERIES = 1_000_000
"""Membership tests timed for present numbers, and again for absent ones."""
SEED = 20261123
COUNTRY_CODE = 84
MOBILE_LEADING_DIGITS = (3, 5, 7, 8, 9)
"""Vietnamese mobile numbers: 84 then 9 digits, the first of them one of these."""
SUBSCRIBER_SPAN = 10**8
"""The 8 digits after the leading digit."""


class SupportsIn(Protocol):
    def __contains__(self, number: int, /) -> bool: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Numbers:
    """One size's inputs, all made before any timing starts."""

    listed: list[int]
    present: list[int]
    absent: list[int]


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    backend: str
    size: int
    build_s: float
    present_ns: float
    absent_ns: float
    false_positives: int
    absent_tests: int
    nbytes: int
    rss_growth: int | None

    @property
    def adds_per_s(self) -> float:
        return self.size / self.build_s

    @property
    def fp_rate(self) -> float:
        return self.false_positives / self.absent_tests


def mobile_number(index: int) -> int:
    """The index-th number of the VN mobile space, 0 <= index < 5 * 10**8."""
    leading, subscriber = divmod(index, SUBSCRIBER_SPAN)
    return (COUNTRY_CODE * 10 + MOBILE_LEADING_DIGITS[leading]) * SUBSCRIBER_SPAN + subscriber


def make_numbers(size: int, queries: int, seed: int) -> Numbers:
    """size distinct listed numbers, queries of them to look up, queries distinct absent ones."""
    rng = random.Random(seed)
    space = len(MOBILE_LEADING_DIGITS) * SUBSCRIBER_SPAN
    indices = rng.sample(range(space), size + queries)
    listed = [mobile_number(i) for i in indices[:size]]
    absent = [mobile_number(i) for i in indices[size:]]
    listed_set = set(listed)
    if len(listed_set) != size or any(number in listed_set for number in absent):
        raise AssertionError("number generation broke: listed numbers repeat or overlap absent")
    del listed_set
    # Lookups of listed numbers (repeats only if size < queries), built as new int objects
    # like a parsed request's, so they lie in memory in order as the absent ones do.
    picks = (
        rng.sample(range(size), queries) if size >= queries else rng.choices(range(size), k=queries)
    )
    present = [mobile_number(indices[j]) for j in picks]
    return Numbers(listed=listed, present=present, absent=absent)


RSS_BATCH = 100_000
STRIDE = 982_451_653
"""Coprime to the size of the mobile space, so i * STRIDE mod that size never repeats."""


def rss_probe(backend: str, size: int, error_rate: float) -> None:
    """In a fresh process: print how much RSS building a filter of size numbers adds.

    The numbers come in batches, so no list of them all is held, and a fresh process has
    no freed heap for the filter to reuse unseen, as the benchmark process has.
    """
    import psutil

    space = len(MOBILE_LEADING_DIGITS) * SUBSCRIBER_SPAN
    process = psutil.Process()
    gc.collect()
    before = int(process.memory_info().rss)
    bloom = make_filter(backend, size, error_rate)
    for start in range(0, size, RSS_BATCH):
        stop = min(size, start + RSS_BATCH)
        bloom.update([mobile_number(i * STRIDE % space) for i in range(start, stop)])
    print(int(process.memory_info().rss) - before)


def rss_growth(backend: str, size: int, error_rate: float) -> int | None:
    """RSS added by building the filter, measured in a child process; None without psutil."""
    if importlib.util.find_spec("psutil") is None:
        return None
    probe = [sys.executable, __file__, "--rss-probe", backend, "--sizes", str(size)]
    probe += ["--error-rate", repr(error_rate)]
    return int(subprocess.run(probe, capture_output=True, text=True, check=True).stdout)


def time_contains(bloom: SupportsIn, numbers: Sequence[int]) -> tuple[float, int]:
    """Seconds to test every number with `in`, and how many the filter said it holds."""
    hits = 0
    start = time.perf_counter()
    for number in numbers:
        if number in bloom:
            hits += 1
    return time.perf_counter() - start, hits


def loop_overhead_ns(numbers: Sequence[int]) -> float:
    """ns per iteration of the timing loop with a trivial test, to read the figures against."""
    empty: frozenset[int] = frozenset()
    seconds, _ = time_contains(empty, numbers)
    return seconds / len(numbers) * 1e9


def best_contains(bloom: SupportsIn, numbers: Sequence[int], repeat: int) -> tuple[float, int]:
    """The fastest of repeat timings of time_contains, and the hit count (the same each time)."""
    timings = []
    for _ in range(repeat):
        gc.collect()
        timings.append(time_contains(bloom, numbers))
    if len({hits for _, hits in timings}) != 1:
        raise AssertionError(f"hit counts differ between repeats: {timings}")
    return min(timings)


def bench(backend: str, numbers: Numbers, error_rate: float, repeat: int) -> Result:
    size = len(numbers.listed)
    gc.collect()
    bloom = make_filter(backend, size, error_rate)
    start = time.perf_counter()
    bloom.update(numbers.listed)
    build_s = time.perf_counter() - start

    present_s, present_hits = best_contains(bloom, numbers.present, repeat)
    if present_hits != len(numbers.present):
        raise AssertionError(f"{backend}: false negatives ({present_hits}/{len(numbers.present)})")
    absent_s, false_positives = best_contains(bloom, numbers.absent, repeat)
    result = Result(
        backend=backend,
        size=size,
        build_s=build_s,
        present_ns=present_s / len(numbers.present) * 1e9,
        absent_ns=absent_s / len(numbers.absent) * 1e9,
        false_positives=false_positives,
        absent_tests=len(numbers.absent),
        nbytes=bloom.nbytes,
        rss_growth=None,
    )
    del bloom
    gc.collect()
    return result


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f}"


def table(results: Sequence[Result]) -> str:
    """The results as an aligned Markdown table."""
    header = [
        "backend",
        "N",
        "build s",
        "adds/s",
        "contains/s present",
        "ns present",
        "contains/s absent",
        "ns absent",
        "FP rate (measured)",
        "filter MB",
        "RSS growth MB",
    ]
    rows = [
        [
            r.backend,
            f"{r.size:,}",
            f"{r.build_s:.2f}",
            f"{r.adds_per_s:,.0f}",
            f"{1e9 / r.present_ns:,.0f}",
            f"{r.present_ns:,.0f}",
            f"{1e9 / r.absent_ns:,.0f}",
            f"{r.absent_ns:,.0f}",
            f"{r.fp_rate:.4%} ({r.false_positives:,}/{r.absent_tests:,})",
            mb(r.nbytes),
            "n/a" if r.rss_growth is None else mb(r.rss_growth),
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="numbers listed"
    )
    parser.add_argument("--error-rate", type=float, default=0.001, help="target FP rate")
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS), help="to measure"
    )
    parser.add_argument("--seed", type=int, default=SEED, help="random seed for the numbers")
    parser.add_argument(
        "--repeat", type=int, default=3, help="membership timings to take the best of"
    )
    parser.add_argument("--rss-probe", choices=list(BACKENDS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_probe:
        rss_probe(args.rss_probe, args.sizes[0], args.error_rate)
        return

    print(f"command: python {shlex.join(sys.argv)}")
    print(f"date:    {date.today().isoformat()}")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    print(f"cpu:     {cpu_model()}, {os.cpu_count()} cores")
    print(f"error rate {args.error_rate}, seed {args.seed}, ", end="")
    print(f"{QUERIES:,} present and {QUERIES:,} absent tests, best of {args.repeat}; one build")
    sys.stdout.flush()

    results: list[Result] = []
    for size in args.sizes:
        start = time.perf_counter()
        numbers = make_numbers(size, QUERIES, args.seed + size)
        print(f"N={size:,}: numbers generated in {time.perf_counter() - start:.1f} s", flush=True)
        overhead = min(loop_overhead_ns(numbers.absent) for _ in range(args.repeat))
        print(f"  timing-loop overhead: {overhead:.0f} ns a test", flush=True)
        for backend in args.backends:
            result = bench(backend, numbers, args.error_rate, args.repeat)
            print(f"  {backend}: built in {result.build_s:.2f} s", flush=True)
            results.append(result)
        del numbers
        gc.collect()
        for i, result in enumerate(results):
            if result.size == size:
                growth = rss_growth(result.backend, size, args.error_rate)
                results[i] = dataclasses.replace(result, rss_growth=growth)
        print("  RSS growth measured in child processes", flush=True)

    print()
    print(table(results))


if __name__ == "__main__":
    main()
