"""The application factory: routes, middlewares, and resources in cleanup_ctx."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import TextIO

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .auth import (
    KEY_CACHE,
    MAX_REFUSED_ADDRESSES,
    REFUSAL_LIMITS,
    KeyCache,
    authorize,
)
from .cache import positive_cache
from .clock import Clock, utc_now
from .config import Config
from .embedded import shown_url
from .feed import change_feed
from .import_parsing import Parsers, Uploads
from .limits import InFlight, NetworkBuckets, TokenBuckets
from .lists import lists
from .live_filter import live_filter
from .logs import RequestLog, withhold_library_details
from .metrics import Metrics, outcome_of
from .moderation import moderation
from .pools import pools
from .problems import answer_protocol_errors_as_problems, problem_for
from .reporters import reporter_keys
from .reporting import reporting
from .retention import retention
from .routes import ROUTES
from .standing import standing
from .state import (
    APPEAL_LIMITS,
    CLOCK,
    CONFIG,
    IMPORT_SLOTS,
    LOOKUP_BATCHES,
    LOOKUP_LIMITS,
    METRICS,
    PARSERS,
    REPORT_LIMITS,
    REQUEST_LOG,
    UPLOADS,
)
from .trends import trends
from .verdicts import verdicts
from .web.moderators import moderators
from .web.routes import PAGES
from .web.site import site


def create_app(
    config: Config, clock: Clock = utc_now, log_stream: TextIO | None = None
) -> web.Application:
    """A callguard app for config; config.database_url must name a reachable Postgres.

    `clock` tells the time for the verdict rules and records, and `log_stream` is where a
    JSON line per request goes (stdout); tests pass their own.
    """
    if not config.database_url:
        raise ValueError("create_app needs config.database_url (the CLI starts embedded Postgres)")
    # Before the first request: aiohttp's own answers and log lines, made safe (problems.py,
    # logs.py).
    answer_protocol_errors_as_problems()
    withhold_library_details()
    metrics = Metrics()
    requests = RequestLog(log_stream)
    app = web.Application(
        client_max_size=config.max_body_bytes,
        # Bodies are decompressed here, not by aiohttp, which lets a cut gzip stream pass as
        # complete: api/bodies.py for JSON (bounded), import_parsing.py for imports.
        handler_args={"auto_decompress": False},
        middlewares=[front_middleware(metrics, requests)],
    )
    app[CONFIG] = config
    app[METRICS] = metrics
    app[REQUEST_LOG] = requests
    app[CLOCK] = clock
    app[KEY_CACHE] = KeyCache(
        config.key_cache_size,
        TokenBuckets(
            config.unknown_key_checks_per_second, max(1, int(config.unknown_key_checks_per_second))
        ),
    )
    app[REFUSAL_LIMITS] = NetworkBuckets(
        config.refusals_per_address_per_second,
        config.refusal_burst_per_address,
        MAX_REFUSED_ADDRESSES,
        time.monotonic,
    )
    app[REPORT_LIMITS] = TokenBuckets(
        config.reports_per_key_per_second, config.report_burst_per_key
    )
    app[APPEAL_LIMITS] = TokenBuckets(
        config.appeals_per_key_per_second, config.appeal_burst_per_key
    )
    app[LOOKUP_LIMITS] = TokenBuckets(
        config.lookups_per_key_per_second, config.lookup_burst_per_key
    )
    app[LOOKUP_BATCHES] = InFlight("batch lookups", 1.0, config.lookup_batches_per_key)
    app[UPLOADS] = Uploads()
    # About the time a 1,000,000-row import takes, for Retry-After.
    app[IMPORT_SLOTS] = InFlight("imports", 10.0, config.imports_per_key, config.imports_at_once)
    app.on_shutdown.append(end_uploads)
    # Resources in start order, each owned by its module; torn down in reverse.
    app.cleanup_ctx.extend(
        [
            request_log,
            pools,
            live_filter,
            positive_cache,
            change_feed,
            verdicts,
            reporter_keys,
            standing,
            moderation,
            reporting,
            lists,
            trends,
            site,
            moderators,
            retention,
            import_parsers,
        ]
    )
    app.router.add_routes(ROUTES)
    app.router.add_routes(PAGES)
    return app


def run(
    app: web.Application,
    config: Config,
    *,
    reuse_port: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the app until SIGTERM or SIGINT as `callguard serve` does: on config's host and
    port, with its connection and shutdown timeouts; `on_ready` is called with the address
    served on once the port listens. The middleware writes the request log, so aiohttp's
    access log is off."""

    def listening(banner: str) -> None:
        # run_app's banner is its only word that every site listens, and names them; it is
        # not printed: callguard says what it needs to in its own ready line.
        served = _BANNER.search(banner)
        if on_ready is not None:
            on_ready(served[1] if served else f"{config.host} port {config.port}")

    web.run_app(
        app,
        host=config.host,
        port=config.port,
        reuse_port=reuse_port,
        shutdown_timeout=config.shutdown_timeout,
        keepalive_timeout=config.keepalive_timeout,
        access_log=None,
        print=listening,
    )


_BANNER = re.compile(r"Running on (.+?) =")


def ready_message(served_on: str, config: Config) -> str:
    """The one line `serve` says when it is ready: where it serves, where the data lives (no
    password), and the next step."""
    if config.database_url:
        data, flag = f"in {shown_url(config.database_url)}", ""
    else:
        data_dir = config.data_dir.expanduser().resolve()
        data, flag = f"in the embedded Postgres in {data_dir}", f" --data-dir {data_dir}"
    return (
        f"callguard is serving on {served_on}, data {data}; next, make a key: "
        f"callguard keys create --role client --name NAME{flag}"
    )


CLIENT_CLOSED_REQUEST = 499
"""The status counted and logged for a request whose client left before its answer (nginx's
convention): not a server error, so it never feeds the error-rate alert."""
_CANCELLED_STATUS = int(HTTPStatus.INTERNAL_SERVER_ERROR)
"""The status counted for a request cancelled with its client still there (a stop)."""


def _cancelled_status(request: web.Request) -> int:
    transport = request.transport
    gone = transport is None or transport.is_closing()
    return CLIENT_CLOSED_REQUEST if gone else _CANCELLED_STATUS


def front_middleware(metrics: Metrics, request_log: RequestLog) -> Middleware:
    """The one middleware (one layer, as a lookup's whole budget is tens of microseconds):
    check the key (auth.py), answer any failure as problem+json (problems.py), then count and
    time the request with its final status (metrics.py) and log it (logs.py)."""
    requests = metrics.requests

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = None
        api_key = None
        try:
            try:
                api_key = await authorize(request)
                response = await handler(request)
            except Exception as err:
                problem = problem_for(request, err)
                if problem is None:  # a redirect
                    status = err.status if isinstance(err, web.HTTPException) else None
                    raise
                response = problem.response()
            status = response.status
            return response
        finally:
            seconds = time.perf_counter() - started
            if status is None:  # cancelled, or past the middleware's reach
                status = _cancelled_status(request)
            outcome = outcome_of(request, status)
            requests.observe(outcome, seconds)
            request_log.add(outcome, seconds, None if api_key is None else api_key.id)

    return middleware


async def request_log(app: web.Application) -> AsyncIterator[None]:
    """The request log's buffer, written out at shutdown."""
    yield
    app[REQUEST_LOG].buffer.flush()


async def end_uploads(app: web.Application) -> None:
    """At the start of shutdown, before requests in flight are waited for: end the import
    uploads still arriving (503), as the server reads no more of them."""
    app[UPLOADS].stop()


async def import_parsers(app: web.Application) -> AsyncIterator[None]:
    """The parser processes that parse bulk imports, started by the first import."""
    parsers = Parsers(max(1, app[CONFIG].import_parsers))
    app[PARSERS] = parsers
    yield
    await asyncio.get_running_loop().run_in_executor(None, parsers.close)
