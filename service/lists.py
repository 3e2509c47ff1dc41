"""The lists phones hold (docs/lists.md): publishing their versions, and answering updates
from any version a phone holds to the newest.

Publishing: one process at a time (an advisory lock), every `list_interval`, judges the
numbers the change log names since the newest version (and, once a day, every candidate, so
that verdicts that only time changed are caught), and writes a new version with what changed.
Postgres holds the versions; every process holds each list's newest version in memory, with
the changes of the versions phones may still hold, polled every `list_poll`. An update from
version u to v is computed from those changes alone, at a cost proportional to them, once per
process, and kept until the next version.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import json
import logging
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from aiohttp import web

from . import list_coding, store
from .clock import Clock
from .config import Config
from .reputation import Verdict, judge, window_start
from .state import CLOCK, CONFIG, POOL

log = logging.getLogger(__name__)

LIST_NAMES = ("scam", "verified")
JUDGED_AT_ONCE = 5_000
"""Numbers whose evidence is read and judged in one query while publishing."""
CHANGE_PAGE = 10_000


class BadState(ValueError):
    """A state a phone sent that is not one this service gave (the 400 answer)."""


@dataclass(frozen=True, slots=True)
class Held:
    """One list as this process holds it: its newest version, and the changes of the
    versions after `floor`, from which updates are answered."""

    name: str
    version: store.lists.Version | None
    numbers: Sequence[int]
    """Sorted; an array of machine integers, where a search for a number's rank is a
    third faster than in a list of a million Python ints."""
    details: dict[int, str]
    floor: int
    """Updates are answered from any version from this one on; older states get the list."""
    changes: list[store.lists.Change] = field(default_factory=list)
    """Of the versions after floor, oldest first."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An update, encoded: its body and ETag, and the same gzipped (a representation of its
    own, so with an ETag of its own). Base64 in JSON costs a third more bytes; gzip takes
    most of that back."""

    body: bytes
    etag: str
    gzipped: bytes
    gzipped_etag: str


def state_of(name: str, version: int) -> str:
    """The opaque state a phone holds and sends back."""
    return base64.urlsafe_b64encode(f"{name}:{version}".encode()).decode().rstrip("=")


def version_in(name: str, state: str) -> int | None:
    """The version a state names for this list; None for another list's state. Raises
    BadState for text this service never gave."""
    try:
        text = base64.urlsafe_b64decode(state + "=" * (-len(state) % 4)).decode("ascii")
        named, _, version = text.partition(":")
        number = int(version)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadState(f"{state!r} is not a state this service gave") from None
    if not version.isdigit() or number < 1:
        raise BadState(f"{state!r} is not a state this service gave")
    return number if named == name else None


def _coded_groups(details: Mapping[int, str], numbers: Iterable[int]) -> list[dict[str, object]]:
    """Numbers grouped by detail, each group coded: the answer's `additions`."""
    groups: dict[str, list[int]] = defaultdict(list)
    for number in sorted(numbers):
        groups[details[number]].append(number)
    return [
        {"detail": detail, "numbers": list_coding.encode(groups[detail]).to_json()}
        for detail in sorted(groups)
    ]


def update_between(held: Held, since: int | None, minimum_wait: int) -> Answer:
    """The update from version `since` (None: nothing held, the whole list) to held's."""
    assert held.version is not None
    version = held.version.version
    removals: list[int] = []
    if since is None:
        added: Mapping[int, str] = held.details
        additions = _coded_groups(held.details, held.numbers)
    else:
        first: dict[int, str | None] = {}
        last: dict[int, str | None] = {}
        start = bisect_left([change.version for change in held.changes], since + 1)
        for change in held.changes[start:]:
            first.setdefault(change.number, change.before)
            last[change.number] = change.after
        gone = sorted(n for n, before in first.items() if before is not None and last[n] != before)
        added = {n: a for n, a in last.items() if a is not None and first[n] != a}
        new = sorted(n for n in added if first[n] is None)
        # A removal's index is its rank in the list the phone holds: its rank in the newest
        # list, less the numbers below it that came since, plus those below it that left
        # since. Both counts are kept while walking the removals in order.
        came = left = 0
        for n in gone:
            while came < len(new) and new[came] < n:
                came += 1
            removals.append(bisect_left(held.numbers, n) - came + left)
            if last[n] is None:
                left += 1
        additions = _coded_groups(added, added)
    body = {
        "list": held.name,
        "state": state_of(held.name, version),
        "partial": since is not None,
        "removals": list_coding.encode_indices(removals).to_json(),
        "additions": additions,
        "entries": held.version.entries,
        "sha256": base64.b64encode(held.version.sha256).decode("ascii"),
        "minimum_wait_seconds": minimum_wait,
    }
    tag = f"{held.name}-{'all' if since is None else since}-{version}"
    encoded = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return Answer(encoded, f'"{tag}"', gzip.compress(encoded, mtime=0), f'"{tag}-gzip"')


class Lists:
    """The lists in one process: what it holds, the updates it answered, and publishing."""

    def __init__(self, pool: asyncpg.Pool, config: Config, clock: Clock) -> None:
        self.pool = pool
        self.config = config
        self.clock = clock
        self.held = {name: Held(name, None, [], {}, 0) for name in LIST_NAMES}
        """Empty until loaded, in the background: a start does not wait for the lists."""
        self._answers: dict[tuple[str, int | None, int], asyncio.Future[Answer]] = {}

    @property
    def minimum_wait(self) -> int:
        return int(self.config.list_interval.total_seconds())

    async def answer(self, name: str, state: str | None) -> Answer | None:
        """The update for a phone holding `state` (None: nothing yet); None before the list's
        first version. Raises BadState for a state this service never gave."""
        held = self.held[name]
        if held.version is None:
            return None
        since = None if state is None else version_in(name, state)
        if since is not None and not held.floor <= since <= held.version.version:
            since = None  # too old (or from another database): the whole list
        key = (name, since, held.version.version)
        answer = self._answers.get(key)
        if answer is None:  # computed once, shared by every phone asking meanwhile
            task = asyncio.ensure_future(
                asyncio.to_thread(update_between, held, since, self.minimum_wait)
                if since is None
                else _done(update_between(held, since, self.minimum_wait))
            )
            self._answers[key] = answer = task
        return await asyncio.shield(answer)

    async def load(self) -> None:
        """Hold each list's newest version, and the changes phones may need updates from."""
        # Phones holding a version published since then get updates; the changes of older
        # versions are pruned.
        oldest_kept = self.clock() - self.config.list_retention
        for name in LIST_NAMES:
            seen = await store.lists.snapshot(self.pool, name, oldest_kept)
            numbers = array("q", [number for number, _ in seen.entries])
            self._hold(
                Held(name, seen.newest, numbers, dict(seen.entries), seen.floor, seen.changes)
            )

    async def refresh(self) -> None:
        """Take in the versions published since the ones held."""
        if any(held.version is None for held in self.held.values()):
            await self.load()  # not loaded yet, or nothing published yet: cheap then
            return
        for name, held in list(self.held.items()):
            assert held.version is not None
            after = held.version.version
            versions = await store.lists.versions_since(self.pool, name, after)
            if not versions:
                continue
            if any(version.whole for version in versions):
                await self.load()  # once a day: the changes phones may need, afresh
                return
            newest = versions[-1]
            # Not what a version published since the versions were read changed.
            changes = [
                change
                for change in await store.lists.changes_since(self.pool, name, after)
                if change.version <= newest.version
            ]
            details = dict(held.details)
            for change in changes:
                if change.after is None:
                    details.pop(change.number, None)
                else:
                    details[change.number] = change.after
            numbers = array("q", sorted(details))
            if list_coding.checksum(numbers) != newest.sha256:
                log.warning(
                    "list %s: version %d differs from its checksum; reloading", name, newest.version
                )
                await self.load()
                return
            self._hold(Held(name, newest, numbers, details, held.floor, [*held.changes, *changes]))

    def _hold(self, held: Held) -> None:
        self.held[held.name] = held
        for key in [key for key in self._answers if key[0] == held.name]:
            del self._answers[key]

    async def publish(self) -> dict[str, int]:
        """Publish a new version of each list whose numbers may have changed, after any other
        process's publishing; the versions published, by list."""
        now = self.clock()
        published: dict[str, int] = {}
        async with store.lists.publishing(self.pool) as publishing:
            plans = [await self._plan(publishing, name, now) for name in LIST_NAMES]
            due = [plan for plan in plans if plan is not None]
            # Each number is judged once for both lists: reading evidence is the cost.
            judged = await self._judge(sorted(set().union(*(plan.numbers for plan in due))), now)
            for plan in due:
                published[plan.name] = await self._publish(publishing, plan, judged[plan.name])
        if published:
            await store.lists.prune(self.pool, now - self.config.list_retention)
        await self.refresh()  # what this or another process published, held here now
        return published

    async def _plan(
        self, publishing: store.lists.Publishing, name: str, now: datetime
    ) -> _Plan | None:
        """What a new version of the list must judge, or None if nothing happened since."""
        newest = await publishing.newest(name)
        held = self.held[name]
        if (newest.version if newest else 0) != (held.version.version if held.version else 0):
            await self.load()  # another process published since this one last looked
        last_whole = await publishing.last_whole(name)
        first_seq = await store.changes.first(self.pool)
        cursor = newest.cursor if newest else 0
        whole = (
            newest is None
            or last_whole is None
            or now - last_whole >= self.config.list_whole_interval
            or (first_seq is not None and first_seq > cursor + 1)  # the log was pruned past it
        )
        numbers, new_cursor = await self._changed_since(cursor)
        if whole:
            reported_since = window_start(now, self.config.rules)
            numbers = set(await store.lists.candidates(self.pool, reported_since))
        elif new_cursor == cursor:
            return None
        return _Plan(name, newest, whole, numbers, new_cursor, now)

    async def _publish(
        self, publishing: store.lists.Publishing, plan: _Plan, judged: Mapping[int, str]
    ) -> int:
        """Write the list's next version: the plan's numbers as judged, against what the
        list holds now."""
        changed: dict[int, tuple[str | None, str | None]] = {}
        ordered = sorted(plan.numbers)
        for start in range(0, len(ordered), JUDGED_AT_ONCE):
            batch = ordered[start : start + JUDGED_AT_ONCE]
            held_now = await publishing.entries_of(plan.name, batch)
            for number in batch:
                before, after = held_now.get(number), judged.get(number)
                if before != after:
                    changed[number] = (before, after)
        details = dict(self.held[plan.name].details)
        for number, (_, after) in changed.items():
            if after is None:
                details.pop(number, None)
            else:
                details[number] = after
        version = store.lists.Version(
            version=(plan.newest.version if plan.newest else 0) + 1,
            published_at=plan.now,
            cursor=plan.cursor,
            entries=len(details),
            sha256=list_coding.checksum(list(details)),
            whole=plan.whole,
        )
        await publishing.publish(plan.name, version, changed)
        if changed:
            log.info("list %s: version %d, %d changes", plan.name, version.version, len(changed))
        return version.version

    async def _changed_since(self, cursor: int) -> tuple[set[int], int]:
        """The numbers the change log names after `cursor` (an import's, all of them), and
        the seq read up to."""
        numbers: set[int] = set()
        while True:
            changes = await store.changes.since(self.pool, cursor, CHANGE_PAGE)
            for change in changes:
                cursor = change.seq
                if change.number is not None:
                    numbers.add(change.number)
                elif change.import_id is not None:
                    async for imported in store.imports.numbers(self.pool, change.import_id):
                        numbers.update(imported)
            if len(changes) < CHANGE_PAGE:
                return numbers, cursor

    async def _judge(self, numbers: Sequence[int], now: datetime) -> dict[str, dict[int, str]]:
        """Which of these numbers each list should hold now, with their details."""
        rules = self.config.rules
        listed: dict[str, dict[int, str]] = {name: {} for name in LIST_NAMES}
        for start in range(0, len(numbers), JUDGED_AT_ONCE):
            batch = numbers[start : start + JUDGED_AT_ONCE]
            found = await store.reports.evidence(self.pool, batch, window_start(now, rules))
            for number, evidence in found.items():
                verdict = judge(evidence, now, rules).verdict
                if verdict is Verdict.SCAM:
                    categories = evidence.categories
                    listed["scam"][number] = categories[0] if categories else "other"
                elif verdict is Verdict.VERIFIED:
                    assert evidence.allowlisted_owner is not None
                    listed["verified"][number] = evidence.allowlisted_owner
        return listed


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one list's next version judges."""

    name: str
    newest: store.lists.Version | None
    whole: bool
    numbers: set[int]
    cursor: int
    """The change-log seq the version covers."""
    now: datetime


def _done(answer: Answer) -> asyncio.Future[Answer]:
    future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
    future.set_result(answer)
    return future


LISTS = web.AppKey("lists", Lists)


async def lists(app: web.Application) -> AsyncIterator[None]:
    """The lists: loaded from Postgres in the background, kept current by polling, and
    published every list_interval, one process at a time."""
    config = app[CONFIG]
    owner = Lists(app[POOL], config, app[CLOCK])
    app[LISTS] = owner
    # Loading a list of a million numbers takes seconds: lookups do not wait for it, and
    # until it is held a list is answered 503 with Retry-After.
    tasks = [
        asyncio.create_task(_every(config.list_poll.total_seconds(), owner.refresh, first=0)),
        asyncio.create_task(_every(config.list_interval.total_seconds(), owner.publish, first=0)),
    ]
    yield
    for task in tasks:
        task.cancel()
    # A task cancelled in the middle of a query may end in the driver's error, not in
    # CancelledError: either way it is over.
    await asyncio.gather(*tasks, return_exceptions=True)


async def _every(
    seconds: float, work: Callable[[], Awaitable[object]], first: float | None = None
) -> None:
    """Run work every `seconds` (the first time after `first`, else after `seconds`); a
    failure (Postgres away) is logged and tried again next time."""
    await asyncio.sleep(seconds if first is None else first)
    while True:
        try:
            await work()
        except Exception as err:  # Postgres away, most likely: the next round tries again
            log.warning("lists: %s failed: %s", getattr(work, "__name__", work), type(err).__name__)
        await asyncio.sleep(seconds)
