"""The servers lookup_bench.py sets beside `callguard serve`, each run as its own process.

- bare:    GET /v1/numbers/{number} answers one constant JSON body, shaped like a clean
           number's answer: the ceiling for any aiohttp handler on this machine.
- naive:   the lookup a user would write without a filter: the number normalised as the
           service does it, one asyncpg SELECT on trusted_listings per request, no auth.

Both run `web.run_app(..., access_log=None)` in one process on the default asyncio loop, as
`callguard serve` does (its middleware writes its own request log). Run from the repository
root:

    python loadtest/baselines.py bare --port 8081
    python loadtest/baselines.py naive --port 8082 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from callguard.api.numbers import UNKNOWN_ANSWER
from callguard.e164 import InvalidNumber, normalize, to_e164

CLEAN_ANSWER = UNKNOWN_ANSWER % 84912345678
"""What the service answers for a clean number, byte for byte (its own template)."""

POOL_SIZE = 10
"""asyncpg's default, and the service's pool_max_size."""

SELECT_LISTINGS = "SELECT source, category FROM trusted_listings WHERE number = $1"

POOL = web.AppKey("pool", asyncpg.Pool)
DATABASE_URL = web.AppKey("database_url", str)


async def constant(request: web.Request) -> web.Response:
    """The same bytes whatever was asked."""
    return web.Response(body=CLEAN_ANSWER, content_type="application/json")


async def ready(request: web.Request) -> web.Response:
    """For the benchmark's readiness poll."""
    return web.json_response({"status": "ready"})


def bare_app() -> web.Application:
    """The ceiling: routing, HTTP parsing and a constant response, nothing else."""
    app = web.Application()
    app.router.add_get("/v1/numbers/{number}", constant)
    app.router.add_get("/readyz", ready)
    return app


async def naive_lookup(request: web.Request) -> web.Response:
    """One SELECT per lookup, listed or not."""
    try:
        number = normalize(request.match_info["number"])
    except InvalidNumber as err:
        raise web.HTTPBadRequest(text=str(err)) from err
    rows = await request.app[POOL].fetch(SELECT_LISTINGS, number)
    return web.json_response(
        {
            "number": to_e164(number),
            "verdict": "scam" if rows else "unknown",
            "sources": [row["source"] for row in rows],
            "categories": sorted({row["category"] for row in rows}),
        }
    )


async def naive_pool(app: web.Application) -> AsyncIterator[None]:
    """The connection pool, in the cleanup context as aiohttp's docs advise."""
    async with asyncpg.create_pool(
        app[DATABASE_URL], min_size=POOL_SIZE, max_size=POOL_SIZE
    ) as pool:
        app[POOL] = pool
        yield


def naive_app(database_url: str) -> web.Application:
    """What a user would write: the database asked for every number."""
    app = web.Application()
    app[DATABASE_URL] = database_url
    app.cleanup_ctx.append(naive_pool)
    app.router.add_get("/v1/numbers/{number}", naive_lookup)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("app", choices=("bare", "naive"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", help="for naive")
    args = parser.parse_args()
    if args.app != "bare" and not args.database_url:
        parser.error(f"{args.app} needs --database-url")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = bare_app() if args.app == "bare" else naive_app(args.database_url)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None)


if __name__ == "__main__":
    main()
