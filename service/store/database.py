"""The database itself: the bounded connection pool, the schema, and the errors that mean
Postgres cannot be reached."""

from __future__ import annotations

from importlib import resources
from typing import Any

import asyncpg

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
"""The errors that mean Postgres cannot be reached or went away, rather than a bad query."""

_SCHEMA_LOCK = 0x63616C6C  # any constant; serialises schema application across replicas
_LOCK_SCHEMA = "SELECT pg_advisory_xact_lock($1)"
_SCHEMA_APPLIED = "SELECT to_regclass('api_keys') IS NOT NULL"
_PING = "SELECT 1"
# schema.sql is package data of the top package (callguard), beside this package.
_SCHEMA_PACKAGE = __name__.partition(".")[0]


class PoolExhausted(TimeoutError):
    """No connection of the pool came free in time: the service is overloaded, or Postgres is
    slow to accept a new connection. A TimeoutError, so what copes with an unreachable
    database (a degraded lookup, the feed's retry) copes with this too."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no database connection came free within {seconds:g} s")
        self.seconds = seconds


class _Acquiring:
    """`async with pool.acquire()` whose timeout is PoolExhausted."""

    __slots__ = ("_inner", "_seconds")

    def __init__(self, inner: Any, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            return await self._inner.__aenter__()
        except TimeoutError as err:
            raise PoolExhausted(self._seconds) from err

    async def __aexit__(self, *exc_info: object) -> None:
        await self._inner.__aexit__(*exc_info)


class _BoundedPool(asyncpg.Pool):  # type: ignore[misc]
    """A pool whose every acquire, its own fetch/execute included, waits at most
    `acquire_timeout` seconds (unless a caller passes its own): a request never waits
    without end for a connection that a flood of others holds."""

    __slots__ = ("acquire_timeout",)

    def acquire(self, *, timeout: float | None = None) -> _Acquiring:
        seconds = self.acquire_timeout if timeout is None else timeout
        return _Acquiring(super().acquire(timeout=seconds), seconds)


async def create_pool(
    dsn: str, min_size: int, max_size: int, acquire_timeout: float = 60.0
) -> asyncpg.Pool:
    """A connection pool whose acquires time out with PoolExhausted after `acquire_timeout`
    seconds; asyncpg.create_pool's other settings, as it sets them."""
    pool = _BoundedPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings={"application_name": "callguard"},
    )
    pool.acquire_timeout = acquire_timeout
    return await pool


async def apply_schema(conn: asyncpg.Connection) -> None:
    """Apply schema.sql in one transaction; safe to run at every start, from many replicas."""
    sql = resources.files(_SCHEMA_PACKAGE).joinpath("schema.sql").read_text(encoding="utf-8")
    async with conn.transaction():
        await conn.execute(_LOCK_SCHEMA, _SCHEMA_LOCK)
        await conn.execute(sql)


async def schema_applied(conn: asyncpg.Connection) -> bool:
    """Whether a callguard has served on this database: its tables are there."""
    return bool(await conn.fetchval(_SCHEMA_APPLIED))


async def ping(db: asyncpg.Pool | asyncpg.Connection, timeout: float | None = None) -> None:
    """Ask Postgres for nothing, to learn that it answers (or that the connection lives)."""
    await db.execute(_PING, timeout=timeout)
