"""The connection pools a process holds, opened with the schema applied, as one cleanup
context: one pool for requests and the filter's upkeep, one of the imports' own."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from . import store
from .state import CONFIG, IMPORT_POOL, METRICS, POOL


async def pools(app: web.Application) -> AsyncIterator[None]:
    """Both pools, the schema applied first; the imports' pool opens connections only as
    imports need them."""
    config = app[CONFIG]
    assert config.database_url is not None
    url, timeout = config.database_url, config.pool_acquire_timeout
    async with (
        await store.database.create_pool(
            url, config.pool_min_size, config.pool_max_size, timeout
        ) as pool,
        await store.database.create_pool(url, 0, config.imports_at_once, timeout) as import_pool,
    ):
        async with pool.acquire() as conn:
            await store.database.apply_schema(conn)
        app[POOL] = pool
        app[IMPORT_POOL] = import_pool
        app[METRICS].track_pool(pool.get_size, pool.get_idle_size)
        yield
