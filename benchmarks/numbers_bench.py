"""Benchmark number parsing: the fast path by input shape, its fallback, and phonenumbers alone."""

from __future__ import annotations

import argparse
import gc
import platform
import random
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `service` imports

from callguard.e164 import InvalidNumber, normalize, parse, parse_fast
from machine import cpu_model  # benchmarks/machine.py, beside this script

INPUTS = 200_000
SEED = 20261123
MOBILE_PREFIXES = ("32", "33", "34", "35", "36", "37", "38", "39", "56", "58", "59", "70", "76",
                   "77", "78", "79", "81", "82", "83", "84", "85", "86", "88", "90", "91", "92",
                   "93", "94", "96", "97", "98")  # fmt: skip
"""Today's mobile prefixes (the first 2 of 9 NSN digits) whose every number is valid: not 89 or
99, which are only partly allocated."""


def subscriber(rng: random.Random, digits: int) -> str:
    return f"{rng.randrange(10**digits):0{digits}d}"


def mobile_nsn(rng: random.Random, first: str = "") -> str:
    prefix = rng.choice([p for p in MOBILE_PREFIXES if p.startswith(first)])
    return prefix + subscriber(rng, 7)


def make_inputs(count: int, seed: int) -> dict[str, list[str]]:
    """Every shape's inputs, all made before any timing starts."""
    rng = random.Random(seed)
    spaced = [mobile_nsn(rng, "9") for _ in range(count)]
    return {
        "E.164 +84...": ["+84" + mobile_nsn(rng) for _ in range(count)],
        "national 09...": ["0" + mobile_nsn(rng, "9") for _ in range(count)],
        "spaced +84 9xx xxx xxx": [f"+84 {n[:3]} {n[3:6]} {n[6:]}" for n in spaced],
        "legacy 016x...": [f"016{rng.randrange(2, 10)}{subscriber(rng, 7)}" for _ in range(count)],
        "foreign +1 650 (fallback)": [f"+1650253{subscriber(rng, 4)}" for _ in range(count)],
    }


def time_per_call(function: Callable[[str], object], inputs: list[str], repeat: int) -> float:
    """The best of `repeat` passes over inputs, in ns per call (the loop included)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter_ns()
        for text in inputs:
            function(text)
        best = min(best, time.perf_counter_ns() - start)
    return best / len(inputs)


def phonenumbers_parse(text: str) -> bool:
    """What callguard.e164 did before the fast path: parse, then validate."""
    return phonenumbers.is_valid_number(phonenumbers.parse(text, "VN"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=INPUTS, help="inputs per shape")
    parser.add_argument("--repeat", type=int, default=3, help="passes per figure; best is kept")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    print(f"command: python {shlex.join(sys.argv)}")
    print(f"python:  {platform.python_implementation()} {platform.python_version()}")
    print(f"cpu:     {cpu_model()}")
    print(f"phonenumbers {phonenumbers.__version__}; {args.inputs:,} inputs per shape")
    print()

    inputs = make_inputs(args.inputs, args.seed)
    for shape, texts in inputs.items():
        fast = sum(parse_fast(text) is not None for text in texts)
        try:
            parsed = [parse(text) for text in texts]
        except InvalidNumber as err:
            raise SystemExit(f"{shape}: an input is invalid: {err}") from err
        legacy = sum(p.legacy for p in parsed)
        print(f"  {shape}: e.g. {texts[0]!r}; fast path {fast:,}, legacy {legacy:,}")
    print()

    rows: list[tuple[str, Callable[[str], object], list[str]]] = [
        (f"parse, {shape}", parse, texts) for shape, texts in inputs.items()
    ]
    # normalize() is what batch lookups call: no Parsed is built on the fast path.
    rows.append(("normalize, E.164 +84...", normalize, inputs["E.164 +84..."]))
    rows.append(("normalize, national 09...", normalize, inputs["national 09..."]))
    rows.append(("phonenumbers parse+is_valid, E.164", phonenumbers_parse, inputs["E.164 +84..."]))
    rows.append(
        ("phonenumbers parse+is_valid, national", phonenumbers_parse, inputs["national 09..."])
    )
    width = max(len(name) for name, _, _ in rows)
    print(f"{'':{width}}  {'ns/parse':>9}  {'parses/s':>11}")
    for name, function, texts in rows:
        ns = time_per_call(function, texts, args.repeat)
        print(f"{name:{width}}  {ns:9,.0f}  {1e9 / ns:11,.0f}")


if __name__ == "__main__":
    main()
