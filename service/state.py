"""Typed keys for the state an app carries (auth.py keeps the keys of its own state)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from service.config import Config
from service.listings import Listings
from service.metrics import Metrics

CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
POOL = web.AppKey("pool", asyncpg.Pool)
LISTINGS = web.AppKey("listings", Listings)
