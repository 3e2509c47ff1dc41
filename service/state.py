"""Typed keys for the state every part of an app shares; each resource's owner keeps the key
of its own (auth.py, live_filter.py, cache.py, verdicts.py, feed.py, ...)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from .clock import Clock
from .config import Config
from .import_parsing import Parsers, Uploads
from .limits import InFlight, TokenBuckets
from .logs import RequestLog
from .metrics import Metrics

CONFIG = web.AppKey("config", Config)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
METRICS = web.AppKey("metrics", Metrics)
POOL = web.AppKey("pool", asyncpg.Pool)
IMPORT_POOL = web.AppKey("import_pool", asyncpg.Pool)
"""Bulk imports' own connections, one for each of config.imports_at_once: an import holds
its connection for as long as its upload lasts, and must never take one from the requests
of everyone else."""
IMPORT_SLOTS = web.AppKey("import_slots", InFlight)
"""Imports running, per key and in all (429 past the limits)."""
REPORT_LIMITS = web.AppKey("report_limits", TokenBuckets)
"""Per-key token buckets for POST /v1/reports."""
LOOKUP_LIMITS = web.AppKey("lookup_limits", TokenBuckets)
"""Per-key token buckets for lookups: tokens by what each number costs (Config)."""
LOOKUP_BATCHES = web.AppKey("lookup_batches", InFlight)
"""Batch lookups in progress, per key."""
APPEAL_LIMITS = web.AppKey("appeal_limits", TokenBuckets)
"""Per-key token buckets for POST /v1/appeals."""
REQUEST_LOG = web.AppKey("request_log", RequestLog)
"""Where the front middleware writes a line per request."""
PARSERS = web.AppKey("parsers", Parsers)
"""The worker processes that parse bulk imports."""
UPLOADS = web.AppKey("uploads", Uploads)
"""Import uploads still arriving, ended at once when the service stops."""
