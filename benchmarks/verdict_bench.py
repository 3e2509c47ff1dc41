"""What the verdict rules cost: reading and judging a number's evidence as its reporters
grow, and a report's round trip, community and verified (docs/benchmarks.md).

    python benchmarks/verdict_bench.py [--reports 400] [--database-url URL]

Without --database-url it runs its own embedded Postgres in a temporary directory.

Evidence: numbers with V verified reporter phones and C community ids are written straight
into the tables (each phone has also spoken about 2, or 20, other numbers, some later
listed or allowlisted, so its earned weight has a record to read); then `store.reports.evidence` and
`reputation.judge` are timed for one number at a time, as an uncached lookup does.

Reports: one app on 127.0.0.1 takes reports one after another, each on a number of its
own, from a fresh reporter; with --verified, through an attesting key with reporter phones.
A figure runs from sending a report to its answer (stored, caught up, the verdict read).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import platform
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from callguard import store
from callguard.app import create_app
from callguard.auth import hash_key, new_key
from callguard.config import Config
from callguard.embedded import database_url as embedded_database_url
from callguard.reputation import Rules, judge, window_start
from machine import cpu_model

HOST = "127.0.0.1"
RECORDS = (2, 20)
"""Other numbers each verified phone has spoken about, its record: a few, as most people
report, and many (an active reporter)."""
SIZES = ((3, 0), (20, 100), (100, 1000), (500, 5000))
"""(verified phones, community ids) on one number."""
REPEATS = 50


async def seed(
    pool: asyncpg.Pool, number: int, phones: int, ids: int, record: int, now: datetime
) -> None:
    """A number with `phones` verified and `ids` community voices; each phone has a record."""
    voices, others = [], []
    for k in range(phones):
        reporter = f"phone-{number}-{k}".encode()
        voices.append((number, reporter, now, now, 0, "verified", "scam"))
        for j in range(record):
            other = number * 100_000 + k * record + j
            others.append((other, reporter, now - timedelta(days=2), now, 0, "verified", "scam"))
    for k in range(ids):
        reporter = f"id-{number}-{k}".encode()
        voices.append((number, reporter, now, now, 0, "community", "scam"))
    columns = [
        "number", "reporter_hash", "first_reported_at", "last_reported_at", "epoch", "lane",
        "stance",
    ]  # fmt: skip
    await pool.copy_records_to_table("number_reporters", records=voices + others, columns=columns)
    listed = [(other, "bench", "other", None, now, None, None, None) for other, *_ in others[::3]]
    await pool.copy_records_to_table("trusted_listings", records=listed)
    # A tenth of the phones were contradicted once: one of their numbers was later allowlisted.
    allowlisted = [
        (other, "bench owner", None, now, None) for other, *_ in others[1 :: 10 * record]
    ]
    await pool.copy_records_to_table("allowlist", records=allowlisted)
    await pool.execute(
        "INSERT INTO community_listings (number, report_count, categories, first_reported_at,"
        " last_reported_at) VALUES ($1, $2, '{other}', $3, $3)",
        number,
        phones + ids,
        now,
    )


async def evidence_figures(pool: asyncpg.Pool) -> None:
    now, rules = datetime.now(UTC), Rules()
    print("evidence read and judged for one number (an uncached lookup):")
    sizes = [(phones, ids, record) for record in RECORDS for phones, ids in SIZES]
    for index, (phones, ids, record) in enumerate(sizes):
        number = 84_900_000_000 + index
        await seed(pool, number, phones, ids, record, now)
        seconds = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            found = await store.reports.evidence(pool, [number], window_start(now, rules))
            judgement = judge(found[number], now, rules)
            seconds.append(time.perf_counter() - started)
        print(
            f"  {phones:>4} phones with {record:>2} other numbers each, {ids:>5} ids: "
            f"p50 {ms(seconds, 0.5):6.2f} ms, p99 {ms(seconds, 0.99):6.2f} ms "
            f"({judgement.verdict}, score {judgement.score})"
        )


async def report_figures(config: Config, pool: asyncpg.Pool, reports: int, verified: bool) -> None:
    key = new_key()
    trust = "attesting" if verified else "community"
    await store.keys.create(pool, "bench app", "client", hash_key(key), (), trust)
    headers = {"Authorization": f"Bearer {key}"}
    log = io.StringIO()  # the request log, kept off the figures
    seconds = []
    async with TestClient(TestServer(create_app(config, log_stream=log), host=HOST)) as app:
        for k in range(reports):
            body = {"number": f"+8493{k:07d}", "category": "other", "reporter": f"r{k}"}
            if verified:
                body["reporter_phone"] = f"+8498{k:07d}"
            started = time.perf_counter()
            response = await app.post("/v1/reports", json=body, headers=headers)
            seconds.append(time.perf_counter() - started)
            assert response.status == 201, await response.text()
    lane = "verified" if verified else "community"
    print(
        f"{lane} reports, one at a time: {reports}, p50 {ms(seconds, 0.5):.2f} ms, "
        f"p99 {ms(seconds, 0.99):.2f} ms"
    )


async def run(url: str, reports: int) -> None:
    pool = await store.database.create_pool(url, 1, 4)
    try:
        async with pool.acquire() as conn:
            await store.database.apply_schema(conn)
        await evidence_figures(pool)
        await pool.execute("TRUNCATE number_reporters, trusted_listings, allowlist")
        key = secrets.token_bytes(32)
        config = Config(database_url=url, reporter_key=key, reporter_key_file=None)
        await report_figures(config, pool, reports, verified=False)
        await report_figures(config, pool, reports, verified=True)
    finally:
        await pool.close()


def ms(values: list[float], share: float) -> float:
    """A percentile in ms (nearest rank)."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(share * len(ranked)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=400, help="reports of each lane")
    parser.add_argument("--database-url", help="a Postgres to use (its tables are added to)")
    args = parser.parse_args()
    if args.reports < 1:
        parser.error("--reports must be at least 1")
    print(f"command: {shlex.join(['python', *sys.argv])}")
    print(f"machine: {cpu_model()}, {platform.system()} {platform.release()}")
    work_dir = Path(tempfile.mkdtemp(prefix="callguard-verdict-bench-"))
    try:
        with embedded_database_url(args.database_url, work_dir / "postgres") as url:
            asyncio.run(run(url, args.reports))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
