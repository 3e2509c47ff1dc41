"""Benchmark the phone lists (issue 15): bytes on the wire, coding times, a local check.

Two parts. The codec part times list_coding alone: a list of --size numbers drawn uniformly
from the VN mobile space, a day's update at --churn, lookups in a sorted array and a set.

The service part measures the issue's five targets, each printed PASS or MISS:

1. the full scam list of --size numbers on the wire: the JSON body `update_between` builds
   with no state, the numbers split by category (CATEGORY_MIX) into Rice-coded groups;
2. a day's update at --churn: a Held whose changes, as the publisher records them, add and
   remove --churn / 2 of the list each over DAY_VERSIONS versions, answered from a day ago;
3. computing a partial update for 10,000 changes on that list (best and median of 5);
4. a cached partial update served at >= 0.8 x the bare-aiohttp ceiling: a real
   `callguard serve` on 127.0.0.1 (embedded Postgres), restarted to publish versions, then
   wrk on GET /v1/lists/scam?state=... (200s, and 304s with If-None-Match) taking turns with
   wrk on loadtest/baselines.py bare, for --rounds rounds; skipped with --no-http;
5. a local check in Python: LocalLists.check on a local copy made as `lists sync` makes it.

Run from the repository root or from benchmarks/ (about 2.5 minutes with the defaults):

    python benchmarks/lists_bench.py [--size 1000000] [--rounds 3] [--duration 5] [--no-http]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import json
import math
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.error
import urllib.request
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `service`, `tests`, `loadtest`

from callguard import store
from callguard.list_coding import (
    Coded,
    apply,
    checksum,
    decode,
    decode_indices,
    encode,
    encode_indices,
)
from callguard.lists import Answer, Held, update_between
from filter_bench import MOBILE_LEADING_DIGITS, SUBSCRIBER_SPAN, mobile_number
from machine import cpu_model, machine  # benchmarks/machine.py, beside this script

if TYPE_CHECKING:
    from tests.processes import Server

SEED = 20261130
SPACE = len(MOBILE_LEADING_DIGITS) * SUBSCRIBER_SPAN
"""The VN mobile numbers the lists are drawn from, uniformly: 5 * 10**8 of them."""
LOOKUPS = 200_000
T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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


def codec(args: argparse.Namespace) -> list[int]:
    """The codec part: list_coding alone. Returns the listed numbers, sorted."""
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
    print(f"  encoded_data        {len(full.encoded_data):>12,} B  (numbers only, no categories)")
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
    print()
    return listed


# The service part: the targets, measured on what the service builds and serves.

CATEGORY_MIX = {
    "impersonation_authority": 40,
    "online_loan": 18,
    "fake_recruitment": 14,
    "investment": 10,
    "account_takeover": 7,
    "impersonation_military": 5,
    "gift_romance": 3,
    "other": 3,
}
"""Percent of the listed scam numbers in each of the 8 categories: an assumed skew, with the
impersonation of the police, procuracy and courts first, as the police's notices have it."""
MINIMUM_WAIT = 1800
DAY_VERSIONS = 48
"""A day of versions, one every 30 minutes (list_interval)."""
DAY_AGO = 1_000
"""The version a phone holds a day ago; the newest is DAY_AGO + DAY_VERSIONS."""
PARTIAL_CHANGES = 10_000
PARTIAL_REPEAT = 5
TARGET_FULL_BYTES = 1_500_000
TARGET_DAY_BYTES = 40_000
TARGET_PARTIAL_MS = 50.0
TARGET_CEILING_SHARE = 0.8
TARGET_CHECK_MICROS = 2.0
HTTP_LISTED = 100_000
"""Numbers imported before the second version, for the HTTP part."""
HTTP_CHANGED = 300
"""Numbers imported before the third: the partial update served is from the second."""
THREADS = 2
CONNECTIONS = 50
WARMUP_SECONDS = 2
PUBLISH_TIMEOUT = 60.0
BARE_PATH = "/v1/numbers/0912345678"


@dataclass(frozen=True)
class Result:
    """One target: what was measured, and whether it meets it (None: not measured)."""

    measure: str
    target: str
    measured: str
    met: bool | None
    note: str = ""


def categorized(numbers: Sequence[int], rng: random.Random) -> dict[int, str]:
    """Each number with a category drawn from CATEGORY_MIX."""
    drawn = rng.choices(list(CATEGORY_MIX), weights=list(CATEGORY_MIX.values()), k=len(numbers))
    return dict(zip(numbers, drawn, strict=True))


def version_of(number: int, details: dict[int, str]) -> store.lists.Version:
    """A published version holding these numbers, as the publisher writes it."""
    return store.lists.Version(
        version=number,
        published_at=datetime.now(UTC),
        cursor=0,
        entries=len(details),
        sha256=checksum(list(details)),
        whole=False,
    )


def body_bytes(answer: Answer) -> tuple[int, int]:
    """Bytes of an answer's body, and of it gzipped as the service sends it to a client
    that accepts gzip (every phone's HTTP library does)."""
    return len(answer.body), len(answer.gzipped)


def coded_bytes(answer: Answer) -> int:
    """Bytes of the coded data in an answer's groups, before base64."""
    groups = json.loads(answer.body)["additions"]
    return sum(len(base64.b64decode(group["numbers"]["encoded_data"])) for group in groups)


def full_list(listed: list[int], details: dict[int, str]) -> tuple[Answer, Result]:
    """Target 1: the whole list as update_between answers a phone holding none."""
    held = Held("scam", version_of(1, details), listed, details, floor=0)
    seconds, answer = best_of(1, lambda: update_between(held, None, MINIMUM_WAIT))
    size, size_gz = body_bytes(answer)
    one_group = dict.fromkeys(listed, "other")
    numbers_only = update_between(
        Held("scam", held.version, listed, one_group, floor=0), None, MINIMUM_WAIT
    )
    only_size, only_gz = body_bytes(numbers_only)
    print(f"full scam list of {len(listed):,}, as GET /v1/lists/scam with no state answers it")
    print(f"  built in {seconds:.2f} s, in {len(CATEGORY_MIX)} category groups")
    print(f"  JSON body           {size:>12,} B")
    print(f"  gzipped, as sent    {size_gz:>12,} B  target <= {TARGET_FULL_BYTES:,} B")
    print(f"  coded data          {coded_bytes(answer):>12,} B  (the groups' bytes before base64)")
    print(f"  numbers only, one group: body {only_size:,} B, gzip {only_gz:,} B, ", end="")
    print(f"coded {coded_bytes(numbers_only):,} B")
    print()
    result = Result(
        f"full scam list, {len(listed):,} numbers, on the wire",
        f"<= {TARGET_FULL_BYTES:,} B",
        f"{size_gz:,} B",
        size_gz <= TARGET_FULL_BYTES,
        f"gzipped; plain {size:,} B; numbers only {only_gz:,} B",
    )
    return answer, result


def fresh_numbers(count: int, listed: set[int], rng: random.Random) -> list[int]:
    """count distinct numbers of the VN mobile space, none of them listed."""
    fresh: set[int] = set()
    while len(fresh) < count:
        number = mobile_number(rng.randrange(SPACE))
        if number not in listed:
            fresh.add(number)
    return sorted(fresh)


def day_of_changes(
    listed: list[int], details: dict[int, str], changes: int, rng: random.Random
) -> Held:
    """The list held DAY_VERSIONS versions after DAY_AGO, when `listed` was the list: half
    of `changes` numbers added and half removed, each in a random version of the day, as
    store.lists.Change rows in the order store.lists.changes_since reads them."""
    half = changes // 2
    removed = rng.sample(listed, half)
    added = fresh_numbers(half, set(listed), rng)
    added_details = categorized(added, rng)
    rows = [
        store.lists.Change(DAY_AGO + 1 + rng.randrange(DAY_VERSIONS), n, details[n], None)
        for n in removed
    ]
    rows += [
        store.lists.Change(DAY_AGO + 1 + rng.randrange(DAY_VERSIONS), n, None, added_details[n])
        for n in added
    ]
    rows.sort(key=lambda change: (change.version, change.number))
    now = dict(details)
    for number in removed:
        del now[number]
    now.update(added_details)
    newest = version_of(DAY_AGO + DAY_VERSIONS, now)
    return Held("scam", newest, array("q", sorted(now)), now, floor=DAY_AGO, changes=rows)


def applies(before: list[int], answer: Answer, held: Held) -> bool:
    """Whether a phone holding `before` gets the held list, checksum and all, from answer."""
    body = json.loads(answer.body)
    added = sorted(
        number
        for group in body["additions"]
        for number in decode(Coded.from_json(group["numbers"]))
    )
    removals = decode_indices(Coded.from_json(body["removals"]))
    after = apply(before, added, removals)
    assert held.version is not None
    return body["partial"] and checksum(after) == held.version.sha256 == base64.b64decode(
        body["sha256"]
    )


def day_update(held: Held, before: list[int], churn: float) -> Result:
    """Target 2: the update a phone holding the list of a day ago gets."""
    answer = update_between(held, DAY_AGO, MINIMUM_WAIT)
    size, size_gz = body_bytes(answer)
    ok = applies(before, answer, held)
    print(f"a day's update at {churn:.1%} churn: {len(held.changes):,} changes over ", end="")
    print(f"{DAY_VERSIONS} versions, from version {DAY_AGO} to {DAY_AGO + DAY_VERSIONS}")
    print(f"  JSON body           {size:>12,} B")
    print(f"  gzipped, as sent    {size_gz:>12,} B  target <= {TARGET_DAY_BYTES:,} B")
    print(f"  coded data          {coded_bytes(answer):>12,} B  (additions, before base64)")
    print(f"  applied to the list of a day ago, checksum matches: {ok}")
    print()
    return Result(
        f"a day's update at {churn:.0%} churn",
        f"<= {TARGET_DAY_BYTES:,} B",
        f"{size_gz:,} B",
        ok and size_gz <= TARGET_DAY_BYTES,
        f"gzipped; plain {size:,} B",
    )


def partial_timing(held: Held) -> Result:
    """Target 3: the time update_between takes for the held changes."""
    times = []
    for _ in range(PARTIAL_REPEAT):
        start = time.perf_counter()
        update_between(held, DAY_AGO, MINIMUM_WAIT)
        times.append((time.perf_counter() - start) * 1000)
    best, median = min(times), statistics.median(times)
    print(f"computing a partial update for {len(held.changes):,} changes on a list of ", end="")
    print(f"{len(held.numbers):,}: best {best:.1f} ms, median {median:.1f} ms of {PARTIAL_REPEAT}")
    print()
    return Result(
        f"computing a partial update for {len(held.changes):,} changes",
        f"<= {TARGET_PARTIAL_MS:.0f} ms",
        f"{median:.1f} ms",
        median <= TARGET_PARTIAL_MS,
        f"median of {PARTIAL_REPEAT}; best {best:.1f} ms",
    )


def local_check(full: Answer, listed: list[int], rng: random.Random, repeat: int) -> Result:
    """Target 5: LocalLists.check on a local copy made as `callguard lists sync` makes it
    from the full list (parse_answer, applied, write_held), then LocalLists.load."""
    measure, target = "a local check in Python (LocalLists.check)", f"<= {TARGET_CHECK_MICROS} µs"
    try:
        from callguard import lists_client

        held = lists_client.applied(
            lists_client.Held("scam"), lists_client.parse_answer(full.body, "scam", full.etag)
        )
        with tempfile.TemporaryDirectory() as directory:
            lists_client.write_held(Path(directory), held)
            file_bytes = lists_client.list_path(Path(directory), "scam").stat().st_size
            local = lists_client.LocalLists.load(directory, ["scam"])
    except (ImportError, AttributeError, TypeError) as err:
        print(f"local check: service/lists_client.py not usable yet ({err})\n")
        return Result(measure, target, "not measured", None, f"not usable: {err}")
    present = rng.sample(listed, LOOKUPS)
    absent = [mobile_number(index) for index in rng.sample(range(SPACE), LOOKUPS)]
    assert all(local.check(number)[0] == "scam" for number in present[:1000])
    micros = [lookup_micros(local.check, queries, repeat) for queries in (present, absent)]
    print(f"local check with LocalLists from a {file_bytes:,} B local copy of {len(local):,}:")
    print(f"  {micros[0]:.2f} / {micros[1]:.2f} µs a check of a listed / unlisted number")
    print()
    return Result(
        measure,
        target,
        f"{max(micros):.2f} µs",
        max(micros) <= TARGET_CHECK_MICROS,
        f"listed {micros[0]:.2f}, unlisted {micros[1]:.2f}; local file {file_bytes:,} B",
    )


def import_rows(url: str, operator_key: str, details: dict[int, str]) -> int:
    """List the numbers through POST /v1/imports with their categories; the count accepted."""
    lines = "".join(f"+{number},{category}\n" for number, category in details.items())
    request = urllib.request.Request(
        url + "/v1/imports?source=bench",
        data=("number,category\n" + lines).encode(),
        headers={"Content-Type": "text/csv", "Authorization": f"Bearer {operator_key}"},
        method="POST",
    )
    with NO_PROXY.open(request, timeout=120) as response:
        return int(json.loads(response.read())["accepted"])


def get(url: str, key: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    """Status, body and ETag of one GET."""
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {key}", **(headers or {})}
    )
    try:
        with NO_PROXY.open(request, timeout=30) as response:
            return response.status, response.read(), response.headers.get("ETag", "")
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read(), err.headers.get("ETag", "")


def published(url: str, key: str, after: str | None) -> dict[str, object]:
    """The full scam list, once a version other than the one whose state is `after` is
    published."""
    deadline = time.monotonic() + PUBLISH_TIMEOUT
    while time.monotonic() < deadline:
        status, body, _ = get(url + "/v1/lists/scam", key)
        if status == 200:
            answer: dict[str, object] = json.loads(body)
            if answer["state"] != after:
                return answer
        time.sleep(0.2)
    sys.exit(f"no new version of the scam list within {PUBLISH_TIMEOUT:.0f} s")


def http_part(args: argparse.Namespace, listed: list[int], details: dict[int, str]) -> Result:
    """Target 4: a real `callguard serve` publishes three versions (empty, HTTP_LISTED
    numbers, HTTP_CHANGED more), restarted for each, as versions are published at start and
    every 30 minutes after (no setting shortens that). Then wrk on the cached partial update
    from the second version, and on the bare aiohttp ceiling, taking turns."""
    from callguard.embedded import database_url

    from loadtest.lookup_bench import parse_wrk
    from tests.processes import ENTRY_POINTS, Cli, apply_schema, free_port, started

    python = sys.executable
    with contextlib.ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lists-bench-")))
        logs = work_dir / "logs"
        logs.mkdir()
        database = stack.enter_context(database_url(None, work_dir / "postgres"))
        asyncio.run(apply_schema(database))
        cli = Cli(ENTRY_POINTS["python -m callguard"], work_dir / "postgres", logs, database)
        env = {
            **cli.env,
            "PYTHONPATH": str(ROOT),
            "CALLGUARD_REPORTER_KEY_FILE": str(work_dir / "reporter.key"),
            "CALLGUARD_LOOKUPS_PER_KEY_PER_SECOND": str(10**9),
        }
        operator_key = cli.create_key("operator", "bench-import", sources=["bench"])
        key = cli.create_key("client", "bench-lists")
        serve_argv = [python, "-m", "callguard", "serve", "--host", "127.0.0.1", "--port"]

        def serve(name: str) -> contextlib.AbstractContextManager[Server]:
            port = free_port()
            return started([*serve_argv, str(port)], port, env, logs / f"{name}.log")

        numbers = listed[:: max(1, len(listed) // (HTTP_LISTED + HTTP_CHANGED))]
        first = {n: details[n] for n in numbers[:HTTP_LISTED]}
        then = {n: details[n] for n in numbers[HTTP_LISTED : HTTP_LISTED + HTTP_CHANGED]}
        with serve("serve-1") as server:
            v1 = published(server.url, key, None)["state"]
            accepted = import_rows(server.url, operator_key, first)
        with serve("serve-2") as server:
            v2 = published(server.url, key, v1)
            accepted += import_rows(server.url, operator_key, then)
        server = stack.enter_context(serve("serve-3"))
        v3 = published(server.url, key, v2["state"])
        partial_url = f"{server.url}/v1/lists/scam?state={v2['state']}"
        status, body, etag = get(partial_url, key)
        answer = json.loads(body)
        assert status == 200 and answer["partial"], (status, body[:300])
        status_304, _, _ = get(partial_url, key, {"If-None-Match": etag})
        assert status_304 == 304, status_304
        port = free_port()
        bare = stack.enter_context(
            started(
                [python, str(ROOT / "loadtest" / "baselines.py"), "bare", "--port", str(port)],
                port,
                env,
                logs / "bare.log",
            )
        )
        print(f"cached partial update, served by callguard serve on 127.0.0.1 ({machine()})")
        sent = len(first) + len(then)
        print(f"  {accepted:,} of {sent:,} numbers imported (imports refuse unassigned prefixes);")
        print(f"  versions with {v2['entries']:,} ", end="")
        print(f"and {v3['entries']:,} entries; the update from the second: ", end="")
        print(f"{len(body):,} B, ETag {etag}")
        auth = f"Authorization: Bearer {key}"
        variants = {
            "a": (
                "bare aiohttp, constant JSON (loadtest/baselines.py bare)",
                bare.url + BARE_PATH,
                [],
            ),
            "p": ("partial update, 200", partial_url, [auth]),
            "p304": (
                "partial update, If-None-Match: 304",
                partial_url,
                [auth, f"If-None-Match: {etag}"],
            ),
            "b": (
                "for reference: a lookup of a clean number, same server",
                server.url + BARE_PATH,
                [auth],
            ),
        }
        runs: dict[str, list[float]] = {label: [] for label in variants}
        for _ in range(args.rounds):
            for label, (_, url, headers) in variants.items():
                runs[label].append(wrk(url, headers, args.duration, parse_wrk))
    return http_report(variants, runs, args)


def wrk(url: str, headers: list[str], duration: int, parse: Callable[..., Any]) -> float:
    """2xx-or-304 answers a second in one timed wrk run, after a warm-up."""
    argv = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}"]
    for header in headers:
        argv += ["-H", header]
    timeout = duration + 30
    subprocess.run(
        [*argv, f"-d{WARMUP_SECONDS}s", url], capture_output=True, timeout=timeout, check=True
    )
    output = subprocess.run(
        [*argv, f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout
    run = parse(output, 0.0, 0.0)
    if run.non_2xx or run.socket_errors:
        print(f"  wrk on {url}: {run.non_2xx} errors, {run.socket_errors} socket errors")
    return float(run.ok_per_second)


def http_report(
    variants: dict[str, tuple[str, str, list[str]]],
    runs: dict[str, list[float]],
    args: argparse.Namespace,
) -> Result:
    """The median round of each variant, and the median of the rounds' ratios."""
    print(
        f"  wrk -t{THREADS} -c{CONNECTIONS} -d{args.duration}s after a {WARMUP_SECONDS} s ", end=""
    )
    print(f"warm-up; taking turns for {args.rounds} rounds, medians shown")
    for label, (title, _, _) in variants.items():
        rates = runs[label]
        rounds = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"  {label:<5} {title:<56} {statistics.median(rates):>8,.0f} req/s  ({rounds})")
    shares = {
        label: sorted(p / a for p, a in zip(runs[label], runs["a"], strict=True))
        for label in ("p", "p304", "b")
    }
    share = {label: statistics.median(values) for label, values in shares.items()}
    for label, values in shares.items():
        print(f"  {label}/a = {share[label]:.2f}  (rounds {', '.join(f'{x:.2f}' for x in values)})")
    print()
    return Result(
        "a cached partial update (200)",
        f">= {TARGET_CEILING_SHARE} x bare aiohttp",
        f"{share['p']:.2f} x",
        share["p"] >= TARGET_CEILING_SHARE,
        f"{statistics.median(runs['p']):,.0f} against {statistics.median(runs['a']):,.0f} req/s; "
        f"304s {share['p304']:.2f} x; a lookup {share['b']:.2f} x",
    )


def summary(results: list[Result]) -> None:
    """The targets, each PASS or MISS."""
    print(f"machine: {machine()}")
    print(f"{'measure':<50} {'target':<26} {'measured':>12}")
    for result in results:
        verdict_text = "-" if result.met is None else "PASS" if result.met else "MISS"
        print(f"{result.measure:<50} {result.target:<26} {result.measured:>12}  ", end="")
        print(f"{verdict_text:<4}  {result.note}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="numbers listed")
    parser.add_argument("--churn", type=float, default=0.01, help="a day's changes, a fraction")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed for the numbers")
    parser.add_argument("--repeat", type=int, default=3, help="timings to take the best of")
    parser.add_argument("--rounds", type=int, default=3, help="wrk turns of each variant")
    parser.add_argument("--duration", type=int, default=5, help="seconds of each timed wrk run")
    parser.add_argument("--no-http", action="store_true", help="skip callguard serve and wrk")
    args = parser.parse_args(argv)
    if not args.no_http and shutil.which("wrk") is None:
        parser.error("needs wrk on PATH (Debian: apt-get install wrk), or --no-http")

    listed = codec(args)
    rng = random.Random(args.seed + 1)
    mix = ", ".join(f"{category} {share} %" for category, share in CATEGORY_MIX.items())
    print(f"the service's answers; categories drawn as {mix}")
    print()
    details = categorized(listed, rng)
    full, full_result = full_list(listed, details)
    results = [full_result]
    changes = round(args.size * args.churn)
    day = day_of_changes(listed, details, changes, rng)
    results.append(day_update(day, listed, args.churn))
    if changes != PARTIAL_CHANGES:
        day = day_of_changes(listed, details, PARTIAL_CHANGES, rng)
    results.append(partial_timing(day))
    if args.no_http:
        results.append(Result("a cached partial update", "", "not measured", None, "--no-http"))
    else:
        results.append(http_part(args, listed, details))
    results.append(local_check(full, listed, rng, args.repeat))
    summary(results)


if __name__ == "__main__":
    main()
