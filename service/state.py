"""Typed keys for the state an app carries (auth.py keeps the keys of its own state)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from service.config import Config
from service.imports import Parsers, Uploads
from service.limits import TokenBuckets
from service.listings import Clock, Listings
from service.logs import RequestLog
from service.metrics import Metrics

CONFIG = web.AppKey("config", Config)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
METRICS = web.AppKey("metrics", Metrics)
POOL = web.AppKey("pool", asyncpg.Pool)
LISTINGS = web.AppKey("listings", Listings)
REPORT_LIMITS = web.AppKey("report_limits", TokenBuckets)
"""Per-key token buckets for POST /v1/reports."""
LOOKUP_LIMITS = web.AppKey("lookup_limits", TokenBuckets)
"""Per-key token buckets for lookups: a token a number."""
APPEAL_LIMITS = web.AppKey("appeal_limits", TokenBuckets)
"""Per-key token buckets for POST /v1/appeals."""
REQUEST_LOG = web.AppKey("request_log", RequestLog)
"""Where the front middleware writes a line per request."""
PARSERS = web.AppKey("parsers", Parsers)
"""The worker processes that parse bulk imports."""
UPLOADS = web.AppKey("uploads", Uploads)
"""Import uploads still arriving, ended at once when the service stops."""
