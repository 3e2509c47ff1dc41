"""The positive cache: what is stored about recently looked-up listed numbers, per process.

Hot scam numbers are asked about again and again; their evidence is kept here so those
lookups do not read Postgres each time. The cache holds evidence, not verdicts: the verdict
is still judged at lookup, as of now, so expiry needs no invalidation. An entry is dropped
when the change feed says the number changed, and is never used past `valid_until`, the
moment its count of recent reporters would drop. A read that raced an invalidation is not
cached (the generation check), so a change is never hidden behind an older read.

Reads in flight are shared: a lookup that misses while another lookup's read of the same
number is under way waits for that read instead of starting its own, unless the number was
invalidated since that read began. A hot number's evidence (hundreds of reporters) takes
tens of milliseconds to read, and every report on it invalidates it: without this, every
lookup arriving in those milliseconds would read it again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from aiohttp import web

from .reputation import Evidence
from .state import CONFIG, METRICS


class EvidenceCache:
    """A bounded LRU map from number to evidence, kept coherent by the change feed."""

    def __init__(self, size: int, max_age: timedelta, counts: dict[str, int]) -> None:
        self.size = size
        self.max_age = max_age
        self.generation = 0
        """Bumped by every invalidation: a read begun before one may be stale."""
        self.counts = counts
        """Lookups by result, "hit", "miss" and "shared" (a read in flight waited for): the
        metric's own tally (metrics.Tally)."""
        self._entries: OrderedDict[int, tuple[Evidence, datetime]] = OrderedDict()
        self._reads: dict[int, asyncio.Future[Evidence | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def hits(self) -> int:
        return self.counts["hit"]

    def get(self, number: int, now: datetime) -> Evidence | None:
        """The number's evidence if cached and still valid at `now`."""
        entry = self._entries.get(number)
        if entry is None or entry[1] <= now:
            self.counts["miss"] += 1
            return None
        self._entries.move_to_end(number)
        self.counts["hit"] += 1
        return entry[0]

    def put(
        self, evidence: Evidence, read_at: datetime, window: timedelta, generation: int
    ) -> None:
        """Keep evidence read at `read_at`, unless an invalidation came since `generation`."""
        if generation != self.generation or self.size <= 0:
            return
        valid_until = read_at + self.max_age
        if evidence.oldest_recent_report is not None:
            valid_until = min(valid_until, evidence.oldest_recent_report + window)
        self._entries[evidence.number] = (evidence, valid_until)
        self._entries.move_to_end(evidence.number)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def read_in_flight(self, number: int) -> asyncio.Future[Evidence | None] | None:
        """The read of the number under way since its last invalidation, if any (counted as
        shared): its result is the evidence, or None if nothing is stored."""
        reading = self._reads.get(number)
        if reading is not None:
            self.counts["shared"] += 1
        return reading

    def reading(self, numbers: Sequence[int]) -> dict[int, asyncio.Future[Evidence | None]]:
        """Announce a read of these numbers, for others to wait for; the reader settles each
        future (read_done), and must on every path."""
        loop = asyncio.get_running_loop()
        futures = {number: loop.create_future() for number in numbers}
        self._reads.update(futures)
        return futures

    def read_done(
        self,
        futures: dict[int, asyncio.Future[Evidence | None]],
        found: dict[int, Evidence] | None,
    ) -> None:
        """Settle an announced read with what it found; None if it failed, which cancels
        the futures, so whoever waits reads for themselves."""
        for number, future in futures.items():
            if self._reads.get(number) is future:
                del self._reads[number]
            if found is None:
                future.cancel()
            elif not future.done():
                future.set_result(found.get(number))

    def invalidate(self, number: int) -> None:
        """The number changed: its entry goes, and a read of it under way is no longer
        shared (lookups from now on read afresh)."""
        self.generation += 1
        self._entries.pop(number, None)
        self._reads.pop(number, None)

    def clear(self) -> None:
        """Anything may have changed (an import, a gap in the feed)."""
        self.generation += 1
        self._entries.clear()
        self._reads.clear()


CACHE = web.AppKey("cache", EvidenceCache)


async def positive_cache(app: web.Application) -> AsyncIterator[None]:
    """The positive cache, sized by the config, with its figures in the app's metrics."""
    config, metrics = app[CONFIG], app[METRICS]
    cache = EvidenceCache(config.cache_size, config.cache_max_age, metrics.cache_lookups.counts)
    metrics.cache_entries.set_function(lambda: len(cache))
    app[CACHE] = cache
    yield
