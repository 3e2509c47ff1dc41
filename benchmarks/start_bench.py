"""How fast a process gets its Bloom filter ready with millions of listed numbers, and what
the filter costs: from the tables, from a snapshot plus the change log, and a whole app
start either way; memory and the measured false-positive rate.

    python benchmarks/start_bench.py [--numbers 10000000] [--changes 10000] [--database-url URL]
    python benchmarks/start_bench.py --from-imports [--numbers 10000000] [--import-rows 1000000]

Without --database-url it runs its own embedded Postgres in a temporary directory. The
listed numbers are made in SQL (a permutation of the mobile number space, as
benchmarks/filter_bench.py draws them), so the figures are the service's, not the loader's.
With --from-imports they arrive instead as CSV imports through a running app's HTTP API,
and a second app starting while the first still runs (as after a crash: no snapshot at
stop) is timed until it serves, ready.
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
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.waiting

from callguard import store
from callguard.app import create_app
from callguard.auth import hash_key, new_key
from callguard.config import Config
from callguard.embedded import database_url as embedded_database_url
from callguard.feed import FEED
from callguard.live_filter import LIVE_FILTER, build_filter, load_snapshot
from filter_bench import MOBILE_LEADING_DIGITS, STRIDE, SUBSCRIBER_SPAN, mobile_number
from machine import cpu_model

from tests.waiting import eventually

SPACE = len(MOBILE_LEADING_DIGITS) * SUBSCRIBER_SPAN
FALSE_POSITIVE_PROBES = 1_000_000
TARGET_SECONDS = 5.0
TARGET_MB = 24.0

_FILL = f"""
INSERT INTO trusted_listings (number, source, category, listed_at)
SELECT ((840 + (ARRAY{list(MOBILE_LEADING_DIGITS)})[i / {SUBSCRIBER_SPAN} + 1])::bigint
        * {SUBSCRIBER_SPAN} + i % {SUBSCRIBER_SPAN}),
       'bench', 'other', now()
FROM (SELECT (g::bigint * {STRIDE}) % {SPACE} AS i FROM generate_series($1::bigint, $2) g) p
"""


async def fill(url: str, numbers: int) -> float:
    """List `numbers` numbers (unless already there); seconds taken."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await store.database.apply_schema(conn)
        have = await conn.fetchval("SELECT count(*) FROM trusted_listings")
        if have != numbers:
            await conn.execute("TRUNCATE trusted_listings, changes, filter_snapshots")
            step = 2_000_000
            for start in range(0, numbers, step):
                await conn.execute(_FILL, start, min(numbers, start + step) - 1)
            await conn.execute("VACUUM ANALYZE trusted_listings")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def app_start(config: Config) -> tuple[float, str, int]:
    """Seconds for a whole app to start (pool, schema, filter, catch-up), how its filter
    was built, and the cursor it reached."""
    app = create_app(config)
    runner = web.AppRunner(app)
    started = time.perf_counter()
    await runner.setup()
    seconds = time.perf_counter() - started
    live = app[LIVE_FILTER]
    metrics = (await _metrics(app)).splitlines()
    source = next(
        line.split('"')[1]
        for line in metrics
        if line.startswith("callguard_filter_builds_total{") and not line.endswith(" 0.0")
    )
    cursor = live.cursor
    await runner.cleanup()
    return seconds, source, cursor


REPORTER_KEY = secrets.token_bytes(32)
"""The reporters' hash key every app of a run shares, as deployed replicas must."""


async def _metrics(app: web.Application) -> str:
    from callguard.state import METRICS
    from prometheus_client import generate_latest

    return generate_latest(app[METRICS].registry).decode()


async def run(url: str, numbers: int, changes: int) -> None:
    config = Config(database_url=url, reporter_key=REPORTER_KEY, reporter_key_file=None)
    pool = await store.database.create_pool(url, 1, 4)
    try:
        now = datetime.now(UTC)
        built = await build_filter(pool, config, now)
        bloom = built.filter
        print(
            f"from the tables:   {built.seconds:.2f} s for {bloom.entries:,} numbers "
            f"({bloom.entries / built.seconds:,.0f} a second)"
        )
        print(
            f"filter:            {bloom.nbytes / 1e6:.1f} MB for capacity {bloom.capacity:,} at "
            f"{bloom.error_rate:.1%} (target <= {TARGET_MB:.0f} MB for 10 M)"
        )
        probes = [
            mobile_number((numbers + k) * STRIDE % SPACE) for k in range(FALSE_POSITIVE_PROBES)
        ]
        hits = sum(number in bloom for number in probes)
        print(f"false positives:   {hits / len(probes):.4%} of {len(probes):,} unlisted numbers")
        snapshot = bloom.to_bytes()
        assert snapshot is not None
        await store.snapshots.save(
            pool,
            store.snapshots.FilterSnapshot(
                built.cursor, now, bloom.capacity, bloom.error_rate, bloom.entries, snapshot
            ),
        )
        print(f"snapshot:          {len(snapshot) / 1e6:.1f} MB saved at cursor {built.cursor}")
        actor = store.audit.Actor(None, "bench")
        started = time.perf_counter()
        for k in range(changes):  # changes after the snapshot, for the start to catch up
            number = mobile_number((numbers + FALSE_POSITIVE_PROBES + k) * STRIDE % SPACE)
            await store.trusted.list_number(pool, number, "bench", "other", None, actor, now)
        made = time.perf_counter() - started
        print(f"changes:           {changes:,} listings after the snapshot ({made:.1f} s to make)")
        loaded = await load_snapshot(pool, config)
        assert loaded is not None
        print(f"snapshot load:     {loaded.seconds:.2f} s (fetch and load the bits)")
    finally:
        await pool.close()
    for label, start_config in (
        ("app start, snapshot", config),
        ("app start, tables", replace(config, filter_snapshots=False)),
    ):
        seconds, source, cursor = await app_start(start_config)
        verdict = "within" if seconds <= TARGET_SECONDS else "OVER"
        print(
            f"{label + ':':<19}{seconds:.2f} s, built from {source}, at cursor {cursor} "
            f"({verdict} the {TARGET_SECONDS:.0f} s target)"
        )


async def run_from_imports(url: str, numbers: int, import_rows: int) -> None:
    """List `numbers` numbers through imports of `import_rows` rows into one app, then time
    another app's start while the first still runs."""
    config = Config(database_url=url, reporter_key=REPORTER_KEY, reporter_key_file=None)
    pool = await store.database.create_pool(url, 1, 2)
    try:
        async with pool.acquire() as conn:
            await store.database.apply_schema(conn)
        await pool.execute(
            "TRUNCATE trusted_listings, imports, import_errors, changes, filter_snapshots"
        )
        key = new_key()
        await store.keys.create(pool, "start bench", "operator", hash_key(key), ["bench"])
    finally:
        await pool.close()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/csv"}
    async with TestClient(TestServer(create_app(config), host="127.0.0.1")) as first:
        started = time.perf_counter()
        for start in range(0, numbers, import_rows):
            rows = range(start, min(numbers, start + import_rows))
            body = "number,category\n" + "".join(
                f"+{mobile_number(i * STRIDE % SPACE)},other\n" for i in rows
            )
            response = await first.post(
                "/v1/imports?source=bench", data=io.BytesIO(body.encode()), headers=headers
            )
            assert response.status == 201, await response.text()
        print(
            f"imported:          {numbers:,} numbers in imports of {import_rows:,} rows "
            f"({time.perf_counter() - started:.0f} s)"
        )
        await first.app[FEED].catch_up()
        live = first.app[LIVE_FILTER]
        snapshot_pool = await store.database.create_pool(url, 1, 1)
        try:

            async def saved() -> bool:
                return await store.snapshots.newest_cursor(snapshot_pool) == live.cursor

            await eventually(saved, 120, "a snapshot after the imports")
        finally:
            await snapshot_pool.close()
        print(f"snapshot:          saved by the importing app at cursor {live.cursor}")
        seconds, source, cursor = await app_start(config)
        verdict = "within" if seconds <= TARGET_SECONDS else "OVER"
        print(
            f"app start, ready:  {seconds:.2f} s, built from {source}, at cursor {cursor} "
            f"({verdict} the {TARGET_SECONDS:.0f} s target)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=10_000_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument(
        "--database-url", help="a Postgres to fill (its trusted_listings are replaced)"
    )
    parser.add_argument(
        "--from-imports", action="store_true", help="list the numbers through HTTP imports"
    )
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"command:           {shlex.join(['python', *sys.argv])}")
    print(f"machine:           {cpu_model()}, {platform.system()} {platform.release()}")
    work_dir = Path(tempfile.mkdtemp(prefix="callguard-start-bench-"))
    try:
        with embedded_database_url(args.database_url, work_dir / "postgres") as url:
            if args.from_imports:
                asyncio.run(run_from_imports(url, args.numbers, args.import_rows))
                return 0
            seconds = asyncio.run(fill(url, args.numbers))
            print(f"listed:            {args.numbers:,} numbers ({seconds:.0f} s to make)")
            asyncio.run(run(url, args.numbers, args.changes))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
