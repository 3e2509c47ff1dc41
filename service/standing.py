"""Reporter phones that are themselves listed as scams: their words count for nothing.

The store keeps them as reporters' keyed hashes (listed_reporters), and only this process
holds the key, so the writers that list or clear a number tell this module, which hashes
the number and records it: a listing by a moderator or an import, a number reaching `scam`
from reports, and, undoing it, a delisting or an allowlisting. A verified report also
checks its own reporter's phone (reporting.py), so a phone listed before it ever reported
is caught when it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

import asyncpg
from aiohttp import web

from . import store
from .reporters import REPORTER_KEY, phone_reporter_hash
from .state import POOL

HASH_BATCH = 5_000
"""Imported numbers hashed between yields to the event loop (a few milliseconds' work)."""


class Standing:
    """Records which reporter phones are listed scams, in one process."""

    def __init__(self, pool: asyncpg.Pool, reporter_key: bytes) -> None:
        self.pool = pool
        self._key = reporter_key

    def _hashes(self, numbers: Iterable[int]) -> list[bytes]:
        return [phone_reporter_hash(self._key, number) for number in numbers]

    async def listed(
        self, numbers: Iterable[int], at: datetime, *, known_only: bool = True
    ) -> None:
        """These numbers are scams now: those that spoke as verified reporters (all of them,
        unless known_only) stop counting."""
        await store.reports.mark_listed_reporters(
            self.pool, self._hashes(numbers), at, known_only=known_only
        )

    async def cleared(self, numbers: Iterable[int]) -> None:
        """These numbers were delisted or allowlisted: their words as reporters count again."""
        await store.reports.unmark_listed_reporters(self.pool, self._hashes(numbers))

    async def listed_by_import(self, import_id: int, at: datetime) -> None:
        """An import listed its numbers: record those that spoke as verified reporters.
        Nothing to do, and nothing read, while no verified reporter has spoken."""
        if not await store.reports.any_verified_reporter(self.pool):
            return
        async for numbers in store.imports.numbers(self.pool, import_id):
            for start in range(0, len(numbers), HASH_BATCH):
                await self.listed(numbers[start : start + HASH_BATCH], at)
                await asyncio.sleep(0)


STANDING = web.AppKey("standing", Standing)


async def standing(app: web.Application) -> AsyncIterator[None]:
    """The listed reporter phones' recorder, with the reporter key."""
    app[STANDING] = Standing(app[POOL], app[REPORTER_KEY])
    yield
