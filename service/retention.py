"""How long what is stored is kept: the change log pruned, and report details erased once
past their retention (never inside the verdict window), every filter_check_interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
from aiohttp import web

from . import store
from .clock import Clock
from .config import Config
from .state import CLOCK, CONFIG, POOL

log = logging.getLogger(__name__)


async def apply_retention(pool: asyncpg.Pool, config: Config, now: datetime) -> int:
    """Prune the change log and erase old report details; return how many reports' details
    were erased."""
    await store.changes.prune(pool, config.change_retention)
    return await erase_old_report_details(pool, config, now)


async def erase_old_report_details(pool: asyncpg.Pool, config: Config, now: datetime) -> int:
    """Erase report details past their retention period, but none a verdict may still
    need: a reporter counts while their last report is in the window."""
    keep = max(config.report_retention, config.rules.window)
    erased = await store.reports.erase_details(pool, now - keep)
    if erased:
        log.info(
            "erased the details of %d reports and answers older than %d days", erased, keep.days
        )
    return erased


async def retention(app: web.Application) -> AsyncIterator[None]:
    """Apply retention in the background, every filter_check_interval; cancelled at stop."""
    task = asyncio.create_task(_keep_applying(app[POOL], app[CONFIG], app[CLOCK]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _keep_applying(pool: asyncpg.Pool, config: Config, clock: Clock) -> None:
    while True:
        await asyncio.sleep(config.filter_check_interval.total_seconds())
        try:
            await apply_retention(pool, config, clock())
        except store.database.DATABASE_UNAVAILABLE as err:
            log.warning("retention: database unavailable (%r)", err)
        except Exception:
            log.exception("retention failed")
