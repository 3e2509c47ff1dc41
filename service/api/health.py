"""GET /healthz (the process is alive), GET /readyz (it can answer lookups) and GET /metrics
(Prometheus text, for a `metrics` or `admin` key)."""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Annotated, Literal

from aiohttp import web
from msgspec import Meta
from prometheus_client.aiohttp import make_aiohttp_handler

from .. import store
from ..auth import Role, public, requires_one_of
from ..feed import FEED
from ..live_filter import LIVE_FILTER
from ..problems import Problem
from ..state import METRICS, POOL
from .answers import Body
from .bodies import json_answer, responds
from .documented import documented, problem, text_response

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 1.0


class Alive(Body):
    """The event loop answers."""

    status: Literal["ok"]


class Ready(Body):
    """Ready to answer lookups."""

    status: Literal["ready"]
    filter_entries: Annotated[int, Meta(ge=0, description="Numbers in the Bloom filter.")]


@public
@documented("operations")
@responds(200, Alive, "The event loop answers.")
async def healthz(request: web.Request) -> web.Response:
    """Liveness

    200 while the process is alive.
    """
    return json_answer(Alive("ok"))


@public
@documented(
    "operations",
    responses={
        503: problem(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "The filter is still loading, or Postgres does not answer.",
        )
    },
)
@responds(200, Ready, "Ready to answer lookups.")
async def readyz(request: web.Request) -> web.Response:
    """Readiness

    200 once the Bloom filter is loaded and Postgres answers, else 503.
    """
    # Ready: the database answers, and the filter holds every listed number: it is loaded,
    # and the change feed listens and has caught up with the log.
    app = request.app
    if FEED not in app:
        raise Problem(HTTPStatus.SERVICE_UNAVAILABLE, "The filter is still loading.")
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await store.database.ping(app[POOL])
    except store.database.DATABASE_UNAVAILABLE as err:
        # The error names the socket path, or the host and port: for the log, not the caller.
        log.warning("not ready: the database does not answer: %r", err)
        raise Problem(HTTPStatus.SERVICE_UNAVAILABLE, "The database does not answer.") from err
    if not app[FEED].live:
        raise Problem(HTTPStatus.SERVICE_UNAVAILABLE, "Catching up with the change log.")
    return json_answer(Ready("ready", app[LIVE_FILTER].filter.entries))


@requires_one_of(Role.METRICS, Role.ADMIN)
@documented(
    "operations",
    responses={200: text_response("The metrics.", "text/plain", "application/openmetrics-text")},
)
async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus metrics

    The app's registry in the Prometheus text format (or OpenMetrics, if Accept asks for it).
    """
    # A key that can read them learns nothing else, and an outsider cannot use them to find
    # the filter's false positives.
    return await make_aiohttp_handler(request.app[METRICS].registry)(request)
