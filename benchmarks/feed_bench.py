"""How long a change made through one replica takes to be answered by another, through the
change feed: a listing, a delisting, a key revocation. The tests only bound these generously.

    python benchmarks/feed_bench.py [--changes 200] [--database-url URL]

Without --database-url it runs its own embedded Postgres in a temporary directory. Two apps
share the database on 127.0.0.1, as two replicas would; each change is made through the
first (a key is revoked in Postgres, as `callguard keys revoke` does), and the second is
asked back to back until it answers the change. A figure runs from sending the change to
the second replica's answer, so it includes the first replica's answer to the change.
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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from callguard import store
from callguard.app import create_app
from callguard.auth import hash_key, new_key
from callguard.config import Config
from callguard.embedded import database_url as embedded_database_url
from callguard.store.audit import Actor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.waiting

from machine import cpu_model

from tests.waiting import eventually

HOST = "127.0.0.1"
CHANGE_TIMEOUT = 30.0
"""A change not answered by then never arrived: the benchmark stops."""

Client = TestClient[object, web.Application]


async def seconds_until(
    change: Awaitable[object], answered: Callable[[], Awaitable[bool]], what: str
) -> float:
    """Make the change, then ask until the other replica answers it: the seconds between."""
    started = time.perf_counter()
    await change
    await eventually(answered, CHANGE_TIMEOUT, what, every=0)
    return time.perf_counter() - started


class Replicas:
    """Two apps on one database, and an admin key both accept."""

    def __init__(self, first: Client, second: Client, pool: asyncpg.Pool, admin: str) -> None:
        self.first, self.second, self.pool = first, second, pool
        self.headers = {"Authorization": f"Bearer {admin}"}

    async def says(self, number: str, expected: str) -> bool:
        """Whether the second replica answers `expected` for the number."""
        response = await self.second.get(f"/v1/numbers/{number}", headers=self.headers)
        assert response.status == 200, await response.text()
        return bool((await response.json())["verdict"] == expected)

    async def answers(self, key: str, status: int) -> bool:
        """Whether the second replica answers `status` to a request with the key."""
        headers = {"Authorization": f"Bearer {key}"}
        return (await self.second.get("/v1/categories", headers=headers)).status == status

    async def change(self, method: str, number: str, body: dict[str, str]) -> None:
        """A listing or delisting through the first replica."""
        path = f"/v1/numbers/{number}"
        response = await self.first.request(method, path, json=body, headers=self.headers)
        assert response.status == 200, await response.text()

    async def listing(self, number: str) -> float:
        listed = self.change("PUT", number, {"category": "online_loan"})
        return await seconds_until(listed, lambda: self.says(number, "scam"), f"{number} scam")

    async def delisting(self, number: str) -> float:
        delisted = self.change("DELETE", number, {"reason": "feed bench"})
        unknown = f"{number} unknown"
        return await seconds_until(delisted, lambda: self.says(number, "unknown"), unknown)

    async def revocation(self, name: str) -> float:
        """A client key made, accepted by the second replica, then revoked in Postgres."""
        key = new_key()
        await store.keys.create(self.pool, name, "client", hash_key(key))
        await eventually(lambda: self.answers(key, 200), CHANGE_TIMEOUT, "the key accepted")
        revoked = store.keys.revoke(
            self.pool, None, hash_key(key), Actor(None, "feed bench"), datetime.now(UTC)
        )
        return await seconds_until(revoked, lambda: self.answers(key, 401), "the key refused")


async def run(url: str, changes: int) -> dict[str, list[float]]:
    """Seconds per change, by kind."""
    pool = await store.database.create_pool(url, 1, 2)
    try:
        async with pool.acquire() as conn:
            await store.database.apply_schema(conn)
        admin = new_key()
        await store.keys.create(pool, "feed bench", "admin", hash_key(admin))
        # Both replicas hash reporters with one key, as deployed replicas must.
        reporter_key = secrets.token_bytes(32)
        config = Config(database_url=url, reporter_key=reporter_key, reporter_key_file=None)
        requests = io.StringIO()  # the request log, kept off the figures
        seconds: dict[str, list[float]] = {"listing": [], "delisting": [], "key revocation": []}
        async with (
            TestClient(TestServer(create_app(config, log_stream=requests), host=HOST)) as first,
            TestClient(TestServer(create_app(config, log_stream=requests), host=HOST)) as second,
        ):
            replicas = Replicas(first, second, pool, admin)
            for k in range(changes):
                number = f"+8491{k:07d}"
                seconds["listing"].append(await replicas.listing(number))
                seconds["delisting"].append(await replicas.delisting(number))
                seconds["key revocation"].append(await replicas.revocation(f"feed bench {k}"))
    finally:
        await pool.close()
    return seconds


def ms(values: list[float], share: float) -> float:
    """A percentile in ms (nearest rank)."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(share * len(ranked)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=200, help="changes of each kind")
    parser.add_argument("--database-url", help="a Postgres to use (its tables are added to)")
    args = parser.parse_args()
    if args.changes < 1:
        parser.error("--changes must be at least 1")
    print(f"command:         {shlex.join(['python', *sys.argv])}")
    print(f"machine:         {cpu_model()}, {platform.system()} {platform.release()}")
    work_dir = Path(tempfile.mkdtemp(prefix="callguard-feed-bench-"))
    try:
        with embedded_database_url(args.database_url, work_dir / "postgres") as url:
            seconds = asyncio.run(run(url, args.changes))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    for kind, values in seconds.items():
        print(
            f"{kind + ':':<16} {len(values)} changes, p50 {ms(values, 0.5):.2f} ms, "
            f"p99 {ms(values, 0.99):.2f} ms, max {max(values) * 1000:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
