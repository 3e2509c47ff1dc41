"""The side-by-side lookup benchmark: callguard against a bare aiohttp ceiling and against the
one-SELECT-per-request service a user would otherwise write, on this machine, in one run.

The issue's targets: negative lookups at least 0.8 x the bare ceiling and at least 3 x the
naive service; p99 at most 10 ms under 50 connections; batch lookups at least 500,000
numbers/s on one core for E.164 input. Run from the repository root:

    python loadtest/lookup_bench.py [--duration 8] [--listed 200000] [--rounds 3] [--keep]

Everything runs on 127.0.0.1: an embedded Postgres in a temp dir, `callguard serve` on it with
--listed numbers imported as trusted listings, and the two baselines beside it. One server at a
time is under wrk (loadtest/*.lua; 2 threads, 50 connections, --duration seconds after a 2 s
warm-up); all five take turns for --rounds rounds; each row shows its median round and each
ratio is the median of the rounds' ratios, so a slow spell of the machine does not land on
one side only:

    (a)  bare aiohttp, a constant JSON answer              loadtest/baselines.py bare
    (b)  callguard serve, negative lookups                 loadtest/lookups.lua
    (b+) callguard serve, 10 % listed numbers              loadtest/lookups_mixed.lua
    (d)  callguard serve, batches of 1000 E.164 numbers    loadtest/batch.lua, 10 connections
    (c)  naive aiohttp + asyncpg, one SELECT a lookup      loadtest/baselines.py naive

wrk, the servers and Postgres share the machine's cores, as they would on one small host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

LOADTEST = Path(__file__).resolve().parent
sys.path.insert(0, str(LOADTEST.parent))  # for tests.processes and benchmarks.machine

from callguard.embedded import database_url as embedded_database_url  # noqa: E402

from benchmarks.machine import machine  # noqa: E402
from tests.processes import (  # noqa: E402
    ENTRY_POINTS,
    Cli,
    Server,
    apply_schema,
    free_port,
    postmaster_pid,
    started,
)

SEED = 20261123
THREADS = 2
CONNECTIONS = 50
BATCH_CONNECTIONS = 10
"""Enough to keep one service process busy; more only adds queueing to the latency."""
BATCH_SIZE = 1000
WARMUP_SECONDS = 2
MIXED_LISTED_SHARE = 0.1
COMMAND_TIMEOUT = 120.0
BENCH_LOOKUPS_PER_KEY_PER_SECOND = 10**9
TARGET_CEILING_SHARE = 0.8
TARGET_NAIVE_MULTIPLE = 3.0
TARGET_P99_MS = 10.0
TARGET_NUMBERS_PER_SECOND = 500_000
PREFIXES = (
    "32", "33", "34", "35", "36", "37", "38", "39", "70", "76", "77", "78", "79", "81",
    "82", "83", "84", "85", "86", "88", "90", "91", "93", "94", "96", "97", "98",
)  # fmt: skip
"""The mobile prefixes the Lua scripts draw from."""
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class Run:
    """One wrk run's figures, and the CPU the server and Postgres used meanwhile."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    server_cores: float
    """CPU seconds of the server process per wall second: 1.0 is one core saturated."""
    postgres_cores: float

    @property
    def ok_per_second(self) -> float:
        """2xx answers a second."""
        return self.requests_per_second * (1 - self.non_2xx / max(1, self.requests))


def listed_numbers(count: int) -> list[str]:
    """`count` distinct seeded Vietnamese mobiles in E.164, from the Lua scripts' prefixes."""
    rng = random.Random(SEED)
    per_prefix = 10**7
    drawn = rng.sample(range(len(PREFIXES) * per_prefix), count)
    return [f"+84{PREFIXES[n // per_prefix]}{n % per_prefix:07d}" for n in drawn]


def import_listed(url: str, operator_key: str, numbers: list[str]) -> int:
    """List the numbers through POST /v1/imports, as an operator would; the count accepted."""
    body = ("number\n" + "\n".join(numbers) + "\n").encode()
    request = urllib.request.Request(
        url + "/v1/imports?source=bench",
        data=body,
        headers={"Content-Type": "text/csv", "Authorization": f"Bearer {operator_key}"},
        method="POST",
    )
    with _NO_PROXY.open(request, timeout=COMMAND_TIMEOUT) as response:
        result = response.read().decode()
    accepted = re.search(r'"accepted":\s*(\d+)', result)
    if accepted is None:
        sys.exit(f"unexpected import answer: {result[:500]}")
    return int(accepted.group(1))


def cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    """User + system CPU seconds so far of the processes still alive."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def postgres_processes(postgres_pid: int | None) -> list[psutil.Process]:
    """The postmaster and its backends."""
    if postgres_pid is None:
        return []
    with contextlib.suppress(psutil.NoSuchProcess):
        postmaster = psutil.Process(postgres_pid)
        return [postmaster, *postmaster.children()]
    return []


def wrk(
    server: Server,
    script: str,
    env: dict[str, str],
    duration: int,
    connections: int,
    postgres_pid: int | None,
) -> Run:
    """A warm-up, then a timed wrk run with --latency, parsed."""
    argv = ["wrk", f"-t{THREADS}", f"-c{connections}", "-s", str(LOADTEST / script), server.url]
    timeout = duration + 30
    subprocess.run(
        [*argv[:-1], f"-d{WARMUP_SECONDS}s", server.url],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=True,
    )
    service = [psutil.Process(server.process.pid)]
    postgres = postgres_processes(postgres_pid)  # backends started by the warm-up included
    service_before, postgres_before = cpu_seconds(service), cpu_seconds(postgres)
    started = time.monotonic()
    output = subprocess.run(
        [*argv[:-1], f"-d{duration}s", "--latency", server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout
    seconds = time.monotonic() - started
    return parse_wrk(
        output,
        (cpu_seconds(service) - service_before) / seconds,
        (cpu_seconds(postgres) - postgres_before) / seconds,
    )


def parse_wrk(output: str, server_cores: float, postgres_cores: float) -> Run:
    """The figures from wrk's report."""

    def number(pattern: str) -> re.Match[str]:
        found = re.search(pattern, output, re.MULTILINE)
        if found is None:
            raise ValueError(f"no {pattern!r} in wrk's output:\n{output}")
        return found

    def percentile(p: int) -> float:
        found = number(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$")
        return float(found.group(1)) * _UNITS_MS[found.group(2)]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Run(
        requests_per_second=float(number(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=percentile(50),
        p99_ms=percentile(99),
        requests=int(number(r"^\s+(\d+) requests in").group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, socket.groups())) if socket else 0,
        server_cores=server_cores,
        postgres_cores=postgres_cores,
    )


def measure(
    work_dir: Path, duration: int, listed: int, rounds: int
) -> tuple[dict[str, list[Run]], int]:
    """Every run, by row label (one a round each); and the number of listed numbers the
    service loaded."""
    runs: dict[str, list[Run]] = {label: [] for label, _ in ROWS}
    logs = work_dir / "logs"
    logs.mkdir()
    python = sys.executable
    baselines = str(LOADTEST / "baselines.py")
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(embedded_database_url(None, work_dir / "postgres"))
        postgres_pid = postmaster_pid(work_dir / "postgres")
        asyncio.run(apply_schema(database))  # the tables, as a first serve makes them
        cli = Cli(ENTRY_POINTS["python -m callguard"], work_dir / "postgres", logs, database)
        env = {
            **cli.env,
            "PYTHONPATH": str(LOADTEST.parent),
            "CALLGUARD_REPORTER_KEY_FILE": str(work_dir / "reporter.key"),
        }
        operator_key = cli.create_key("operator", "bench-import", sources=["bench"])
        client_env = {**env, "CALLGUARD_KEY": cli.create_key("client", "bench-lookups")}

        def start(name: str, argv: list[str], server_env: dict[str, str] = env) -> Server:
            port = free_port()
            argv = [*argv, "--port", str(port)]
            return stack.enter_context(started(argv, port, server_env, logs / f"{name}.log"))

        # Capacity is measured, not the per-key limit (50,000 numbers a second by default),
        # which one client's batches would reach first; the limit is still checked.
        serve = start(
            "serve",
            [python, "-m", "callguard", "serve", "--host", "127.0.0.1"],
            {**env, "CALLGUARD_LOOKUPS_PER_KEY_PER_SECOND": str(BENCH_LOOKUPS_PER_KEY_PER_SECOND)},
        )
        servers = {
            "a": start("bare", [python, baselines, "bare"]),
            "b": serve,
            "c": start("naive", [python, baselines, "naive", "--database-url", database]),
        }
        numbers = listed_numbers(listed)
        listed_file = work_dir / "listed.csv"
        listed_file.write_text("number\n" + "\n".join(numbers) + "\n")
        accepted = import_listed(serve.url, operator_key, numbers)

        mixed_env = {
            **client_env,
            "CALLGUARD_LISTED": str(listed_file),
            "CALLGUARD_LISTED_SHARE": str(MIXED_LISTED_SHARE),
        }
        # Idle servers cost nothing; taking turns evens out what else the machine is doing.
        for _ in range(rounds):
            for label, server in servers.items():
                runs[label].append(
                    wrk(server, "lookups.lua", client_env, duration, CONNECTIONS, postgres_pid)
                )
            runs["b+"].append(
                wrk(serve, "lookups_mixed.lua", mixed_env, duration, CONNECTIONS, postgres_pid)
            )
            runs["d"].append(
                wrk(serve, "batch.lua", client_env, duration, BATCH_CONNECTIONS, postgres_pid)
            )
    return runs, accepted


ROWS = (
    ("a", "bare aiohttp, constant JSON (access log off)"),
    ("b", "callguard serve, negative lookups (JSON request log)"),
    ("b+", f"callguard serve, {MIXED_LISTED_SHARE:.0%} listed numbers (JSON request log)"),
    ("c", "naive aiohttp + asyncpg SELECT (access log off)"),
    ("d", f"callguard serve, batches of {BATCH_SIZE} E.164 numbers"),
)


def median_run(runs: list[Run]) -> Run:
    """The run with the median 2xx rate (the lower middle one of an even count)."""
    return sorted(runs, key=lambda run: run.ok_per_second)[(len(runs) - 1) // 2]


def report(runs: dict[str, list[Run]], accepted: int, duration: int, rounds: int) -> None:
    """The table, the ratios against the targets, the machine and the command."""
    print(f"command:  {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine:  {machine()}; wrk, servers and Postgres share it")
    print(
        f"wrk:      -t{THREADS} -c{CONNECTIONS} -d{duration}s --latency after a "
        f"{WARMUP_SECONDS} s warm-up; (d) -c{BATCH_CONNECTIONS}; all take turns for "
        f"{rounds} rounds, each row's median round shown"
    )
    print(f"listed:   {accepted:,} numbers imported as trusted listings\n")
    header = f"{'':3} {'server':<52} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}"
    print(header + f" {'server CPU':>10} {'CPU µs/req':>10} {'PG CPU':>6}")
    for label, title in ROWS:
        run = median_run(runs[label])
        print(
            f"{label:3} {title:<52} {run.requests_per_second:>8,.0f} {run.p50_ms:>7.2f} "
            f"{run.p99_ms:>7.2f} {run.non_2xx + run.socket_errors:>6} {run.server_cores:>10.2f} "
            f"{run.server_cores * 1e6 / run.requests_per_second:>10,.0f} {run.postgres_cores:>6.2f}"
        )
    rounds_of = list(zip(runs["a"], runs["b"], runs["c"], strict=True))
    shares = sorted(b.ok_per_second / a.ok_per_second for a, b, _ in rounds_of)
    multiples = sorted(b.ok_per_second / c.ok_per_second for _, b, c in rounds_of)
    share, multiple = shares[(len(shares) - 1) // 2], multiples[(len(multiples) - 1) // 2]
    b, d = median_run(runs["b"]), median_run(runs["d"])
    batch_rates = [run.ok_per_second for run in runs["d"]]
    numbers_per_second = d.ok_per_second * BATCH_SIZE
    targets = (
        (
            f"(b)/(a) >= {TARGET_CEILING_SHARE}",
            f"{share:.2f}",
            share >= TARGET_CEILING_SHARE,
            "median of rounds " + ", ".join(f"{x:.2f}" for x in shares),
        ),
        (
            f"(b)/(c) >= {TARGET_NAIVE_MULTIPLE}",
            f"{multiple:.2f}",
            multiple >= TARGET_NAIVE_MULTIPLE,
            "median of rounds " + ", ".join(f"{x:.2f}" for x in multiples),
        ),
        (
            f"(b) p99 <= {TARGET_P99_MS:.0f} ms at {CONNECTIONS} connections",
            f"{b.p99_ms:.2f} ms",
            b.p99_ms <= TARGET_P99_MS,
            "worst round " + f"{max(run.p99_ms for run in runs['b']):.2f} ms",
        ),
        (
            f"(d) >= {TARGET_NUMBERS_PER_SECOND:,} numbers/s on one core",
            f"{numbers_per_second:,.0f}",
            numbers_per_second >= TARGET_NUMBERS_PER_SECOND,
            "median of rounds "
            + ", ".join(f"{rate * BATCH_SIZE:,.0f}" for rate in sorted(batch_rates))
            + f"; {d.server_cores:.2f} cores used",
        ),
    )
    print(f"\n{'target':<42} {'measured':>10}")
    for target, measured, met, note in targets:
        print(f"{target:<42} {measured:>10}  {'met   ' if met else 'MISSED'}  {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds of each timed wrk run")
    parser.add_argument("--listed", type=int, default=200_000, help="numbers to list first")
    parser.add_argument("--rounds", type=int, default=3, help="turns of a, b and c each")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, db)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("needs wrk on PATH (Debian: apt-get install wrk)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 1 <= args.listed <= len(PREFIXES) * 10**7:
        parser.error(f"--listed must be from 1 to {len(PREFIXES) * 10**7:,}")

    work_dir = Path(tempfile.mkdtemp(prefix="callguard-lookup-bench-"))
    try:
        runs, accepted = measure(work_dir, args.duration, args.listed, args.rounds)
        report(runs, accepted, args.duration, args.rounds)
    except KeyboardInterrupt:
        print("interrupted; every server started was stopped", file=sys.stderr)
        return 130
    except subprocess.CalledProcessError as err:
        print(f"{err.cmd[0]} failed ({err.returncode}):\n{err.stderr}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept:     {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
