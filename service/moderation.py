"""Moderators' writes: listing a number on a trusted source's word, delisting it, the
allowlist, and deciding appeals and reviews.

Each follows feed.py's rule for writes: stored through the store, which logs the change in
the same transaction; then this process catches up from the log before answering, so the
answer and the next lookup here see the write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from . import store
from .clock import Clock
from .feed import FEED, Feed
from .standing import STANDING, Standing
from .state import CLOCK, POOL
from .verdicts import VERDICTS, Answer, Verdicts


class Moderation:
    """The moderators' writes in one process."""

    def __init__(
        self, pool: asyncpg.Pool, feed: Feed, verdicts: Verdicts, standing: Standing, clock: Clock
    ) -> None:
        self.pool = pool
        self.clock = clock
        self._feed = feed
        self._verdicts = verdicts
        self._standing = standing

    async def list_trusted(
        self, number: int, source: str, category: str, note: str | None, actor: store.audit.Actor
    ) -> Answer:
        """List a number as a scam on a trusted source's word; return its verdict now."""
        now = self.clock()
        await store.trusted.list_number(self.pool, number, source, category, note, actor, now)
        await self._standing.listed([number], now)
        await self._feed.catch_up()
        return await self._verdicts.read(number, now)

    async def delist(self, number: int, reason: str, actor: store.audit.Actor) -> bool:
        """End every listing of the number at once; False if nothing was listed."""
        delisted = await store.trusted.delist(self.pool, number, reason, actor, self.clock())
        if delisted:
            await self._standing.cleared([number])
            await self._feed.catch_up()
        return delisted

    async def allowlist_add(
        self, number: int, owner: str, note: str | None, actor: store.audit.Actor
    ) -> Answer:
        """Verify a number; return its verdict now."""
        now = self.clock()
        await store.allowlist.add(self.pool, number, owner, note, actor, now)
        await self._standing.cleared([number])
        await self._feed.catch_up()
        return await self._verdicts.read(number, now)

    async def allowlist_remove(
        self, number: int, reason: str | None, actor: store.audit.Actor
    ) -> bool:
        """Take a number off the allowlist; False if it was not on it."""
        removed = await store.allowlist.remove(self.pool, number, reason, actor, self.clock())
        if removed:
            await self._feed.catch_up()
        return removed

    async def resolve_appeal(
        self, appeal_id: int, delist: bool, note: str, actor: store.audit.Actor
    ) -> store.appeals.Appeal | None:
        """Decide an open appeal; see store.appeals.resolve."""
        appeal = await store.appeals.resolve(
            self.pool, appeal_id, delist, note, actor, self.clock()
        )
        if appeal is not None and delist:
            await self._standing.cleared([appeal.number])
            await self._feed.catch_up()
        return appeal

    async def decide_review(
        self, review_id: int, brigade: bool, note: str, actor: store.audit.Actor
    ) -> store.reviews.Review | None:
        """Decide an open review; see store.reviews.decide."""
        review = await store.reviews.decide(
            self.pool, review_id, brigade, note, actor, self.clock()
        )
        if review is not None:
            await self._feed.catch_up()
        return review


MODERATION = web.AppKey("moderation", Moderation)


async def moderation(app: web.Application) -> AsyncIterator[None]:
    """The moderators' writes, caught up through this process's feed."""
    app[MODERATION] = Moderation(app[POOL], app[FEED], app[VERDICTS], app[STANDING], app[CLOCK])
    yield
