"""One real Postgres per test session (DATABASE_URL, or an embedded one); clean tables per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application
from callguard import store
from callguard.app import create_app
from callguard.auth import hash_key, new_key
from callguard.config import Config
from callguard.embedded import database_url as resolve_database_url

from tests.processes import (
    ENTRY_POINTS,
    TEST_SOURCES,
    Cli,
    fresh_data_dir,
    make_database,
    postgres_dir,
)
from tests.waiting import eventually as eventually  # where the tests have found it

AppClient = TestClient[object, Application]
ClientFactory = Callable[[Application], Awaitable[AppClient]]


class MakeKey(Protocol):
    """make_key: a new key of a role (and trust, and daily report cap)."""

    def __call__(
        self, role: str, trust: str = ..., reports_per_day: int | None = ...
    ) -> Awaitable[str]: ...


TABLES = (
    "reports",
    "feedback",
    "listed_reporters",
    "key_report_days",
    "reviews",
    "list_versions",
    "list_entries",
    "list_changes",
    "number_reporters",
    "community_listings",
    "trusted_listings",
    "import_errors",
    "imports",
    "allowlist",
    "appeals",
    "audit_log",
    "admin_sessions",
    "api_keys",
    "settings",
    "changes",
    "filter_snapshots",
)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The test session's Postgres: DATABASE_URL if set, else embedded in a temp dir."""
    with (
        postgres_dir() as data_dir,
        resolve_database_url(os.environ.get("DATABASE_URL"), data_dir) as url,
    ):
        yield url


@asynccontextmanager
async def own_postgres(data_dir: Path) -> AsyncIterator[tuple[str, str]]:
    """A Postgres of the test's own, to stop under a running app: its URL, schema applied,
    and an admin key. Leaving the block stops it; `resolve_database_url(None, data_dir)`
    starts it again at the same URL."""
    key = new_key()
    with resolve_database_url(None, data_dir) as url:
        async with await store.database.create_pool(url, 1, 1) as pool:
            async with pool.acquire() as conn:
                await store.database.apply_schema(conn)
            await store.keys.create(pool, "admin", "admin", hash_key(key))
        yield url, key


@pytest.fixture
def pg_data_dir() -> Iterator[Path]:
    """A data dir for a test's own embedded Postgres (a fault test, a CLI run)."""
    with postgres_dir() as data_dir:
        yield data_dir


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test database, schema applied and every table emptied."""
    async with await store.database.create_pool(database_url, 1, 2) as pool:
        async with pool.acquire() as conn:
            await store.database.apply_schema(conn)
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        yield pool


@pytest.fixture
def config(database_url: str, pool: asyncpg.Pool) -> Config:
    """The service's configuration for tests: a small filter, the test database."""
    return Config(database_url=database_url, filter_min_capacity=10_000)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, config: Config) -> AppClient:
    """An HTTP client on a freshly started app."""
    return await aiohttp_client(create_app(config))


class FakeClock:
    """A clock the test moves by hand: the time rules are tested without sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
async def timed_client(
    aiohttp_client: ClientFactory, config: Config, clock: FakeClock
) -> AppClient:
    """An HTTP client on an app that tells time by `clock`."""
    return await aiohttp_client(create_app(config, clock))


@pytest.fixture
def make_key(pool: asyncpg.Pool) -> MakeKey:
    """Create an API key of a role, as `callguard keys create` does; returns the key. An
    operator key may import under TEST_SOURCES."""

    async def make(role: str, trust: str = "community", reports_per_day: int | None = None) -> str:
        key = new_key()
        sources = TEST_SOURCES if role == "operator" else ()
        await store.keys.create(
            pool, f"test {role}", role, hash_key(key), sources, trust, reports_per_day
        )
        return key

    return make


@pytest.fixture
async def attesting(make_key: MakeKey) -> dict[str, str]:
    """Authorization headers of an attesting client key: its app verifies its users' phones,
    so its reports may carry reporter_phone (verified reporters)."""
    return {"Authorization": f"Bearer {await make_key('client', 'attesting')}"}


VERIFIED_PHONES = ("0987000001", "0987000002", "0987000003", "0987000004", "0987000005")
"""Reporter phones for verified reports in tests: three make a number a scam."""


async def report_verified(
    client: AppClient,
    headers: dict[str, str],
    number: str,
    phones: Sequence[str] = VERIFIED_PHONES[:3],
    category: str = "impersonation_authority",
) -> None:
    """Report a number from verified phones through an attesting key: three make a scam."""
    for phone in phones:
        body = {
            "number": number,
            "category": category,
            "reporter": f"id-{phone}",
            "reporter_phone": phone,
        }
        response = await client.post("/v1/reports", json=body, headers=headers)
        assert response.status == 201, await response.text()


@pytest.fixture
async def auth(make_key: MakeKey) -> dict[str, str]:
    """Authorization headers of a client key."""
    return {"Authorization": f"Bearer {await make_key('client')}"}


@pytest.fixture
async def metrics_auth(make_key: MakeKey) -> dict[str, str]:
    """Authorization headers of a metrics key, as Prometheus scrapes with."""
    return {"Authorization": f"Bearer {await make_key('metrics')}"}


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(params=list(ENTRY_POINTS))
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    """The command, through each entry point, on a data dir a first `serve` has made."""
    with fresh_data_dir() as data_dir:
        make_database(data_dir)
        yield Cli(ENTRY_POINTS[request.param], data_dir, tmp_path)


@pytest.fixture
def callguard(tmp_path: Path) -> Iterator[Cli]:
    """The `callguard` script on a data dir a first `serve` has made."""
    with fresh_data_dir() as data_dir:
        make_database(data_dir)
        yield Cli(ENTRY_POINTS["callguard"], data_dir, tmp_path)


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[Cli]:
    """The `callguard` script on a data dir that does not exist yet."""
    with fresh_data_dir() as data_dir:
        yield Cli(ENTRY_POINTS["callguard"], data_dir, tmp_path)
