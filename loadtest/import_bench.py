"""The bulk-import benchmark: a generated CSV of mixed number formats imported end to end
over HTTP, with the service's resident memory sampled throughout.

The issue's target: 1,000,000 rows in at most 10 s on the 2-core machine, the service's peak
RSS at most 300 MB. Run from the repository root:

    python loadtest/import_bench.py [--rows N] [--keep]
    python loadtest/import_bench.py --url http://127.0.0.1:8080 --key cg_... [--pid PID]

Without --url it starts `callguard serve` itself on 127.0.0.1 over a fresh embedded Postgres
(or --database-url), makes an operator key, and stops both afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import ipaddress
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.processes and benchmarks.machine

from callguard.categories import CATEGORY_IDS  # noqa: E402
from callguard.clock import VIETNAM  # noqa: E402
from callguard.import_client import ImportRefused, ImportResult, ProgressLine, upload  # noqa: E402

from benchmarks.machine import machine  # noqa: E402
from tests.processes import (  # noqa: E402
    ENTRY_POINTS,
    Cli,
    Server,
    free_port,
    make_database,
    postmaster_pid,
    stop_leftover_postgres,
)

SEED = 20261123
SOURCE = "bench"
"""The source the benchmark's operator key imports under."""
DEFAULT_ROWS = 1_000_000
INVALID_SHARE = 0.01
DUPLICATE_SHARE = 0.02
LEGACY_SHARE = 0.15
"""Of the distinct numbers, written as the 11-digit 016x numbers renumbered to 03x in 2018."""
RSS_INTERVAL = 0.05
TARGET_SECONDS = 10.0
TARGET_RSS_MB = 300.0
REPORTED_BEFORE = datetime(2026, 11, 1, tzinfo=VIETNAM)
"""reported_at values fall in the 180 days before this, so none is in the future."""
CATEGORIES = sorted(CATEGORY_IDS)
NOTES = (
    "",
    "",
    "Xưng là công an, yêu cầu chuyển tiền",
    "Giả danh viện kiểm sát",
    "Tuyển cộng tác viên, việc nhẹ lương cao",
    "Cho vay online lãi suất thấp",
    'Nhắn "mượn tiền" qua Zalo',
    "Hứa tặng quà giá trị lớn",
)
INVALID_VALUES = ("0123", "abc", "0912 345", "+84 000 000", "09123456789012", "n/a", "")


@dataclass(frozen=True)
class Generated:
    """What the generator wrote, to set beside the service's counts."""

    rows: int
    distinct: int
    duplicates: int
    invalid: int
    legacy_rows: int
    size_bytes: int
    seconds: float


def write_csv(path: Path, rows: int) -> Generated:
    """A seeded CSV of `rows` rows: number (in mixed formats), category, reported_at, note."""
    started = time.perf_counter()
    rng = random.Random(SEED)
    # Distinct numbers drawn without replacement, so the only duplicates are the ones we add:
    # 09[0-8] + 7 digits (phonenumbers rejects parts of 099), and 016[2-9] + 7 digits.
    modern = iter(rng.sample(range(9 * 10**7), rows))
    legacy = iter(rng.sample(range(8 * 10**7), int(rows * LEGACY_SHARE) + 1))
    written: list[str] = []  # national significant numbers, legacy ones with their 1 prefix
    duplicates = invalid = legacy_rows = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["number", "category", "reported_at", "note"])
        for _ in range(rows):
            draw = rng.random()
            if draw < INVALID_SHARE:
                number = rng.choice(INVALID_VALUES)
                invalid += 1
            else:
                if draw < INVALID_SHARE + DUPLICATE_SHARE and written:
                    nsn = rng.choice(written)
                    duplicates += 1
                elif rng.random() < LEGACY_SHARE:
                    nsn = f"16{2 + (value := next(legacy)) // 10**7}{value % 10**7:07d}"
                    written.append(nsn)
                else:
                    nsn = f"9{(value := next(modern)) // 10**7}{value % 10**7:07d}"
                    written.append(nsn)
                legacy_rows += len(nsn) == 10
                number = _mixed_format(rng, nsn)
            reported = REPORTED_BEFORE - timedelta(seconds=rng.randrange(180 * 86400))
            writer.writerow(
                [
                    number,
                    rng.choice(CATEGORIES),
                    reported.isoformat(timespec="seconds"),
                    rng.choice(NOTES),
                ]
            )
    return Generated(
        rows=rows,
        distinct=len(written),
        duplicates=duplicates,
        invalid=invalid,
        legacy_rows=legacy_rows,
        size_bytes=path.stat().st_size,
        seconds=time.perf_counter() - started,
    )


def _mixed_format(rng: random.Random, nsn: str) -> str:
    """The number as people and systems write it: E.164, 84..., 0084..., national with
    spaces or dots; a legacy 11-digit number as 016x xxx xxxx or all together."""
    if len(nsn) == 10:
        return rng.choice((f"0{nsn[:3]} {nsn[3:6]} {nsn[6:]}", f"0{nsn}"))
    return rng.choice(
        (
            f"+84{nsn}",
            f"84{nsn}",
            f"0{nsn[:2]} {nsn[2:5]} {nsn[5:]}",
            f"0{nsn[:2]}.{nsn[2:5]}.{nsn[5:]}",
            f"0084{nsn}",
        )
    )


class Watch(threading.Thread):
    """Samples the resident set size of the service with its worker processes every
    RSS_INTERVAL seconds, keeping the peak of their sum, and the CPU time that they and
    Postgres spend meanwhile."""

    def __init__(self, pid: int, postgres_pid: int | None) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self._service = psutil.Process(pid)
        self._postgres = psutil.Process(postgres_pid) if postgres_pid else None
        self._stopping = threading.Event()
        self.rss_before = self.rss_peak = self._rss()
        self._cpu_before = self._cpu()
        self.service_cpu = self.postgres_cpu = 0.0

    def run(self) -> None:
        while not self._stopping.wait(RSS_INTERVAL):
            self.rss_peak = max(self.rss_peak, self._rss())

    def stop(self) -> None:
        """Take the last samples and stop."""
        self._stopping.set()
        self.join()
        self.rss_peak = max(self.rss_peak, self._rss())
        service, postgres = self._cpu()
        self.service_cpu = service - self._cpu_before[0]
        self.postgres_cpu = postgres - self._cpu_before[1]

    def _service_processes(self) -> list[psutil.Process]:
        """The service and its descendants (the import parsers), without Postgres."""
        postgres = {self._postgres.pid} if self._postgres is not None else set()
        with contextlib.suppress(psutil.NoSuchProcess):
            children = self._service.children(recursive=True)
            return [self._service, *(child for child in children if child.pid not in postgres)]
        return []

    def _rss(self) -> int:
        """Resident bytes of the service's processes; pages they share count in each."""
        total = 0
        for process in self._service_processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total

    def _cpu(self) -> tuple[float, float]:
        """CPU seconds so far of the service's processes, and of Postgres with its backends."""
        postgres = []
        if self._postgres is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                postgres = [self._postgres, *self._postgres.children()]
        return _cpu_seconds(self._service_processes()), _cpu_seconds(postgres)


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


@dataclass(frozen=True)
class Measured:
    """One import's figures."""

    result: ImportResult
    seconds: float
    client_cpu: float
    watch: Watch | None


@contextlib.contextmanager
def started_service(work_dir: Path, database_url: str | None) -> Iterator[tuple[Server, str]]:
    """`callguard serve` on a free 127.0.0.1 port, and an operator key; stopped on exit."""
    data_dir = work_dir / "postgres"
    if database_url is None:  # the database first, as a first serve makes it (initdb too)
        make_database(data_dir)
    cli = Cli(ENTRY_POINTS["python -m callguard"], data_dir, work_dir, database_url)
    try:
        key = cli.create_key("operator", "bench", sources=[SOURCE])
        with cli.serve(free_port()) as server:
            yield server, key
    finally:
        stop_leftover_postgres(data_dir)


def run_import(
    path: Path, url: str, key: str, pid: int | None, postgres_pid: int | None = None
) -> Measured:
    """Import the file, watching the service (and its Postgres) if their pids are known."""
    watch = Watch(pid, postgres_pid) if pid is not None else None
    if watch is not None:
        watch.start()
    try:
        with ProgressLine(sys.stderr) if sys.stderr.isatty() else contextlib.nullcontext() as line:
            started, cpu_started = time.perf_counter(), time.process_time()
            result = asyncio.run(upload(path, url, key, SOURCE, progress=line))
            seconds = time.perf_counter() - started
            client_cpu = time.process_time() - cpu_started
    finally:
        if watch is not None:
            watch.stop()
    return Measured(result, seconds, client_cpu, watch)


def report(generated: Generated, measured: Measured) -> None:
    """The figures, with what produced them."""
    mb = 1e6
    seconds, result, watch = measured.seconds, measured.result, measured.watch
    print(f"command:   {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine:   {machine()}")
    print(f"python:    {platform.python_implementation()} {platform.python_version()}")
    print(
        f"file:      {generated.rows:,} rows, {generated.size_bytes / mb:,.1f} MB; "
        f"{generated.distinct:,} distinct numbers ({generated.legacy_rows:,} legacy rows), "
        f"{generated.duplicates:,} duplicate rows, {generated.invalid:,} invalid"
    )
    verdict = "within" if seconds <= TARGET_SECONDS else "OVER"
    print(
        f"import:    {seconds:.2f} s, {generated.rows / seconds:,.0f} rows/s "
        f"({verdict} the {TARGET_SECONDS:.0f} s target)"
    )
    counts = ("rows", "accepted", "duplicates", "rejected", "mapped_legacy")
    print("response:  " + ", ".join(f"{name} {result.get(name, 0):,}" for name in counts))
    if watch is None:
        print("RSS:       not measured (give --pid)")
        print(f"CPU:       client {measured.client_cpu:.2f} s")
        return
    verdict = "within" if watch.rss_peak / mb <= TARGET_RSS_MB else "OVER"
    print(
        f"RSS:       service with its parsers peak {watch.rss_peak / mb:,.1f} MB, "
        f"{watch.rss_before / mb:,.1f} MB before ({verdict} the {TARGET_RSS_MB:.0f} MB target)"
    )
    print(
        f"CPU:       service {watch.service_cpu:.2f} s, Postgres {watch.postgres_cpu:.2f} s, "
        f"client {measured.client_cpu:.2f} s"
    )


def loopback_url(text: str) -> str:
    """A URL on this machine's loopback; the benchmark sends nothing anywhere else."""
    host = urllib.parse.urlsplit(text).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise argparse.ArgumentTypeError(f"{text}: only 127.0.0.1 (loopback) is a target")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows in the CSV")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (CSV, logs, db)")
    parser.add_argument("--database-url", help="the Postgres for the started service")
    parser.add_argument("--url", type=loopback_url, help="a running service instead")
    parser.add_argument("--key", help="an operator key of the service at --url")
    parser.add_argument("--pid", type=int, help="the --url service's pid, to sample its RSS")
    args = parser.parse_args()
    if (args.url is None) != (args.key is None):
        parser.error("--url and --key go together")
    if args.pid is not None and args.url is None:
        parser.error("--pid is for a service at --url")

    work_dir = Path(tempfile.mkdtemp(prefix="callguard-import-bench-"))
    try:
        path = work_dir / "bench.csv"
        generated = write_csv(path, args.rows)
        if args.url is not None:
            measured = run_import(path, args.url, args.key, args.pid)
        else:
            with started_service(work_dir, args.database_url) as (server, key):
                postgres = None if args.database_url else postmaster_pid(work_dir / "postgres")
                measured = run_import(path, server.url, key, server.process.pid, postgres)
        report(generated, measured)
    except ImportRefused as err:
        print(f"import refused ({err.status}): {err.detail}", file=sys.stderr)
        return 1
    except aiohttp.ClientError as err:
        print(f"cannot reach the service: {err}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept:      {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
