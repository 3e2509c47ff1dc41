"""Replicas kept current by the change log: notified changes reach the others, missed ones
caught up after a reconnect, later starters (from the tables or a snapshot), rebuilds that
swap a fresh filter in, the positive cache, and lookups while Postgres is gone."""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp.web import Application
from callguard import store
from callguard.app import create_app
from callguard.clock import utc_now
from callguard.config import Config
from callguard.embedded import database_url as embedded_database_url
from callguard.feed import APPLICATION_NAME, FEED, Feed
from callguard.live_filter import LIVE_FILTER, LiveFilter
from callguard.reputation import Verdict
from callguard.retention import apply_retention
from callguard.verdicts import VERDICTS

from tests.conftest import (
    AppClient,
    ClientFactory,
    FakeClock,
    MakeKey,
    eventually,
    own_postgres,
    report_verified,
)

ADMIN = store.audit.Actor(None, "test")


@pytest.fixture
async def admin(make_key: MakeKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_key('admin')}"}


def live_filter_of(client: AppClient) -> LiveFilter:
    app: Application = client.app
    return app[LIVE_FILTER]


def feed_of(client: AppClient) -> Feed:
    app: Application = client.app
    return app[FEED]


async def verdict(client: AppClient, headers: dict[str, str], number: str) -> str:
    response = await client.get(f"/v1/numbers/{number}", headers=headers)
    assert response.status == 200, await response.text()
    return str((await response.json())["verdict"])


async def wait_for_verdict(
    client: AppClient, headers: dict[str, str], number: str, expected: str
) -> None:
    """Return once the client answers `expected` for the number."""

    async def answers() -> bool:
        return await verdict(client, headers, number) == expected

    await eventually(answers, what=f"{number} {expected}")


async def list_number(client: AppClient, headers: dict[str, str], number: str) -> None:
    body = {"category": "impersonation_authority"}
    response = await client.put(f"/v1/numbers/{number}", json=body, headers=headers)
    assert response.status == 200, await response.text()


async def test_a_change_through_one_replica_reaches_another(
    aiohttp_client: ClientFactory,
    config: Config,
    admin: dict[str, str],
    attesting: dict[str, str],
) -> None:
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    # Three verified phones report it through the first replica: a scam.
    await report_verified(first, attesting, "0912345678", category="online_loan")
    await wait_for_verdict(second, admin, "0912345678", "scam")
    # The second replica now has the number's evidence cached; a delisting elsewhere ends it.
    assert await verdict(second, admin, "0912345678") == "scam"
    delisted = await first.delete(
        "/v1/numbers/0912345678", json={"reason": "owner appealed"}, headers=admin
    )
    assert delisted.status == 200
    await wait_for_verdict(second, admin, "0912345678", "unknown")
    await eventually(
        lambda: {live_filter_of(first).cursor, live_filter_of(second).cursor} == {4},
        what="both at the 4 changes: 3 reports, 1 delisting",
    )


async def test_changes_made_while_the_feed_was_down_are_caught_up(
    client: AppClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    await list_number(client, admin, "0912345678")
    assert await verdict(client, admin, "0912345678") == "scam"  # now cached here
    feed = feed_of(client)
    await eventually(lambda: feed.live, what="the feed listening")
    # Cut the feed's connection, then change two numbers behind the process's back: the
    # notifications go to nobody.
    cut = await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        APPLICATION_NAME,
    )
    assert cut == 1
    now = utc_now()
    await store.trusted.delist(pool, 84912345678, "mistake", ADMIN, now)
    await store.trusted.list_number(pool, 84987654321, "viettel", "other", None, ADMIN, now)
    # Until the feed is back the cache is bypassed, so the delisting holds at once ...
    assert await verdict(client, admin, "0912345678") == "unknown"
    # ... and the listing made meanwhile reaches the filter once it has caught up.
    await wait_for_verdict(client, admin, "0987654321", "scam")
    assert live_filter_of(client).cursor == await pool.fetchval("SELECT max(seq) FROM changes")
    assert feed.live


async def test_writers_see_their_own_writes_at_once_without_the_feed(
    client: AppClient, pool: asyncpg.Pool, admin: dict[str, str]
) -> None:
    feed = feed_of(client)
    await eventually(lambda: feed.live, what="the feed listening")
    # The key is served once first: a key first seen while the feed is down is checked in
    # Postgres at a bounded rate (auth.py), and this test is about writes, not keys.
    assert await verdict(client, admin, "0900000001") == "unknown"
    await pool.fetchval(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        APPLICATION_NAME,
    )
    await eventually(lambda: not feed.live, what="the feed noticing")
    # No notification reaches this process now: each writer catches up itself before it
    # answers, and writers at once share the catch-ups.
    numbers = [f"09123456{n:02d}" for n in range(10)]
    reports = [
        client.post(
            "/v1/reports",
            json={"number": number, "category": "online_loan", "reporter": "r"},
            headers=admin,
        )
        for number in numbers
    ]
    listing = list_number(client, admin, "0933333333")
    answers, _ = await asyncio.gather(asyncio.gather(*reports), listing)
    assert [answer.status for answer in answers] == [201] * len(numbers)
    assert [await verdict(client, admin, number) for number in numbers] == ["suspicious"] * 10
    assert await verdict(client, admin, "0933333333") == "scam"
    delisted = await client.delete(
        "/v1/numbers/0933333333", json={"reason": "owner appealed"}, headers=admin
    )
    assert (await delisted.json())["verdict"] == "unknown"


async def test_a_replica_started_later_sees_everything(
    aiohttp_client: ClientFactory, config: Config, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    first = await aiohttp_client(create_app(config))
    await list_number(first, admin, "0912345678")
    body = {"number": "0987654321", "category": "online_loan", "reporter": "r"}
    assert (await first.post("/v1/reports", json=body, headers=admin)).status == 201
    later = await aiohttp_client(create_app(config))
    assert await verdict(later, admin, "0912345678") == "scam"
    assert await verdict(later, admin, "0987654321") == "suspicious"
    assert live_filter_of(later).cursor == 2

    # With a snapshot saved by a rebuild, a replica starts from it and the changes after it.
    built = await live_filter_of(first).rebuild()
    assert built.source == "tables" and built.cursor == 2
    await list_number(first, admin, "0933333333")
    from_snapshot = await aiohttp_client(create_app(config))
    metrics = await (await from_snapshot.get("/metrics", headers=admin)).text()
    assert 'callguard_filter_builds_total{source="snapshot"} 1.0' in metrics
    for number, expected in (
        ("0912345678", "scam"),
        ("0987654321", "suspicious"),
        ("0933333333", "scam"),
    ):
        assert await verdict(from_snapshot, admin, number) == expected, number
    assert live_filter_of(from_snapshot).cursor == 3


def import_body(count: int) -> str:
    """A CSV of `count` distinct mobile numbers."""
    return "number,category\n" + "".join(f"09{n:08d},online_loan\n" for n in range(count))


async def import_list(client: AppClient, operator: dict[str, str], body: str) -> None:
    headers = {**operator, "Content-Type": "text/csv"}
    data = io.BytesIO(body.encode())
    response = await client.post("/v1/imports?source=police", data=data, headers=headers)
    assert response.status == 201, await response.text()


@pytest.mark.slow  # imports 200,000 numbers
async def test_a_replica_is_ready_only_once_every_imported_number_is_in_its_filter(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    config = replace(config, filter_snapshot_after=10**9)  # no snapshot but the first, empty
    first = await aiohttp_client(create_app(config))
    operator = {"Authorization": f"Bearer {await make_key('operator')}"}
    await import_list(first, operator, import_body(200_000))
    later = await aiohttp_client(create_app(config))  # replays the import from the log

    async def ready() -> bool:
        return (await later.get("/readyz")).status == 200

    await eventually(ready, what="ready")
    tail = [f"09{n:08d}" for n in range(199_000, 200_000)]
    response = await later.post("/v1/lookups", json={"numbers": tail}, headers=operator)
    verdicts = [result["verdict"] for result in (await response.json())["results"]]
    assert verdicts == ["scam"] * len(tail)


async def test_a_big_import_and_a_clean_stop_save_the_filter_for_the_next_start(
    aiohttp_client: ClientFactory,
    config: Config,
    make_key: MakeKey,
    pool: asyncpg.Pool,
    metrics_auth: dict[str, str],
) -> None:
    config = replace(config, filter_snapshot_after=1_000)
    first = await aiohttp_client(create_app(config))
    operator = {"Authorization": f"Bearer {await make_key('operator')}"}
    await import_list(first, operator, import_body(1_500))

    async def saved_at(seq: int) -> bool:
        return await pool.fetchval("SELECT max(cursor) FROM filter_snapshots") == seq

    await eventually(lambda: saved_at(1), what="a snapshot after the import")
    report = {"number": "0387654321", "category": "online_loan", "reporter": "r"}
    assert (await first.post("/v1/reports", json=report, headers=operator)).status == 201
    assert await saved_at(1)  # one report is not worth a snapshot...
    await first.close()
    assert await saved_at(2)  # ...but a clean stop saves whatever was added
    later = await aiohttp_client(create_app(config))
    metrics = await (await later.get("/metrics", headers=metrics_auth)).text()
    assert 'callguard_filter_builds_total{source="snapshot"} 1.0' in metrics
    assert live_filter_of(later).cursor == 2
    assert await verdict(later, operator, "0900001499") == "scam"
    assert await verdict(later, operator, "0387654321") == "suspicious"


async def test_a_snapshot_older_than_the_pruned_log_is_not_used(
    aiohttp_client: ClientFactory, config: Config, admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    first = await aiohttp_client(create_app(config))
    await live_filter_of(first).rebuild()  # a snapshot at cursor 0
    await list_number(first, admin, "0912345678")
    await list_number(first, admin, "0933333333")
    await pool.execute("DELETE FROM changes WHERE seq = 1")  # as pruning would
    later = await aiohttp_client(create_app(config))
    metrics = await (await later.get("/metrics", headers=admin)).text()
    assert 'callguard_filter_builds_total{source="tables"} 1.0' in metrics
    assert await verdict(later, admin, "0912345678") == "scam"


async def test_a_rebuild_forgets_delisted_numbers_and_keeps_what_came_meanwhile(
    client: AppClient, admin: dict[str, str]
) -> None:
    live = live_filter_of(client)
    for number in ("0912345678", "0933333333"):
        await list_number(client, admin, number)
    response = await client.delete(
        "/v1/numbers/0912345678", json={"reason": "owner appealed"}, headers=admin
    )
    assert response.status == 200
    assert 84912345678 in live.filter  # a Bloom filter cannot forget ...
    rebuilding = asyncio.create_task(live.rebuild())
    # Every turn of the loop, not to miss the build's reading, which may take a moment only.
    await eventually(
        lambda: live._recording is not None, what="the build reading Postgres", every=0
    )
    old_filter = live.filter
    body = {"number": "0944444444", "category": "other", "reporter": "r"}
    assert (await client.post("/v1/reports", json=body, headers=admin)).status == 201
    assert await verdict(client, admin, "0933333333") == "scam"  # answered during the build
    await rebuilding
    assert live.filter is not old_filter
    assert 84912345678 not in live.filter  # ... a rebuilt one has
    assert 84933333333 in live.filter
    assert 84944444444 in live.filter  # reported while the build was reading
    assert await verdict(client, admin, "0944444444") == "suspicious"


async def test_lookups_of_a_number_being_read_share_that_read_until_it_changes(
    client: AppClient, admin: dict[str, str]
) -> None:
    await list_number(client, admin, "0912345678")
    feed, verdicts = feed_of(client), client.app[VERDICTS]
    await eventually(lambda: feed.live, what="the feed listening")
    counts = feed.cache.counts
    shared, misses = counts["shared"], counts["miss"]
    # Five lookups at once miss the cache; the first reads Postgres, the others wait for it.
    answers = await asyncio.gather(*(verdicts.answer_maybe(84912345678) for _ in range(5)))
    assert {answer.judgement.verdict for answer in answers} == {Verdict.SCAM}
    assert (counts["miss"] - misses, counts["shared"] - shared) == (5, 4)
    # A change while a read is under way: lookups after it read afresh, sharing nothing.
    feed.cache.invalidate(84912345678)
    first = asyncio.ensure_future(verdicts.answer_maybe(84912345678))
    await asyncio.sleep(0)  # its read is announced and waits for Postgres
    feed.cache.invalidate(84912345678)
    second = await verdicts.answer_maybe(84912345678)
    assert (await first).judgement.verdict is second.judgement.verdict is Verdict.SCAM
    assert counts["shared"] - shared == 4


async def test_hot_numbers_come_from_the_cache_and_a_change_clears_them(
    client: AppClient, admin: dict[str, str]
) -> None:
    await list_number(client, admin, "0912345678")
    feed = feed_of(client)
    await eventually(lambda: feed.live, what="the feed listening")
    hits = feed.cache.hits
    for _ in range(5):
        assert await verdict(client, admin, "0912345678") == "scam"
    assert feed.cache.hits >= hits + 4  # the first read fills it
    response = await client.delete(
        "/v1/numbers/0912345678", json={"reason": "owner appealed"}, headers=admin
    )
    assert response.status == 200
    assert await verdict(client, admin, "0912345678") == "unknown"
    metrics = await (await client.get("/metrics", headers=admin)).text()
    assert 'callguard_cache_lookups_total{result="hit"}' in metrics


async def lookup(client: AppClient, headers: dict[str, str], number: str) -> tuple[str, bool]:
    response = await client.get(f"/v1/numbers/{number}", headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    return body["verdict"], body.get("degraded", False)


@pytest.mark.slow  # a Postgres of its own
async def test_when_postgres_is_gone_lookups_answer_degraded_and_writes_503(
    aiohttp_client: ClientFactory, pg_data_dir: Path
) -> None:
    async with own_postgres(pg_data_dir) as (url, key):
        headers = {"Authorization": f"Bearer {key}"}
        config = Config(database_url=url, filter_min_capacity=10_000)
        client = await aiohttp_client(create_app(config))
        await list_number(client, headers, "0912345678")
        await list_number(client, headers, "0933333333")
        feed = feed_of(client)
        # The feed has applied both listings: applying one later would drop its cache entry.
        await eventually(lambda: feed.live and feed.live_filter.cursor == 2, what="caught up")
        assert await verdict(client, headers, "0912345678") == "scam"  # now cached
        feed.cache.invalidate(84933333333)  # a listed number the cache does not hold
    # Leaving the block stopped that Postgres under the running app. Once the feed has
    # noticed, the cache is bypassed, and what needs Postgres is answered degraded.
    await eventually(lambda: not feed.live, what="the feed aware Postgres is gone")
    assert await lookup(client, headers, "0912345678") == ("scam", True)
    assert await lookup(client, headers, "0933333333") == ("unknown", True)
    assert await lookup(client, headers, "0900000001") == ("unknown", False)  # certain
    batch = await client.post(
        "/v1/lookups", json={"numbers": ["0912345678", "0900000001"]}, headers=headers
    )
    assert [(r["verdict"], r.get("degraded", False)) for r in (await batch.json())["results"]] == [
        ("scam", True),
        ("unknown", False),
    ]
    report = {"number": "0944444444", "category": "other", "reporter": "r"}
    response = await client.post("/v1/reports", json=report, headers=headers)
    assert response.status == 503
    assert "Retry-After" in response.headers
    assert (await client.get("/readyz")).status == 503
    with embedded_database_url(None, pg_data_dir) as again:  # back, at the same address
        assert again == url

        async def ready() -> bool:
            return (await client.get("/readyz")).status == 200

        await eventually(ready, what="ready again")
        assert await lookup(client, headers, "0933333333") == ("scam", False)
        assert (await client.post("/v1/reports", json=report, headers=headers)).status == 201
        assert await verdict(client, headers, "0944444444") == "suspicious"
        await eventually(lambda: feed.live, what="the feed back and caught up")


async def test_upkeep_rebuilds_a_full_or_stale_filter_and_prunes_the_log(
    aiohttp_client: ClientFactory,
    config: Config,
    clock: FakeClock,
    admin: dict[str, str],
    pool: asyncpg.Pool,
) -> None:
    small = replace(config, filter_min_capacity=2, filter_stale_share=0.5)
    client = await aiohttp_client(create_app(small, clock))
    live = live_filter_of(client)

    async def upkeep() -> str | None:
        """What the upkeep every filter_check_interval does: retention, the filter's check."""
        await apply_retention(pool, small, clock())
        return await live.upkeep()

    assert await upkeep() is None
    numbers = ["0912345678", "0933333333", "0944444444", "0955555555"]
    for number in numbers:
        await list_number(client, admin, number)
    reason = await upkeep()
    assert reason is not None and "exceed its capacity 2" in reason
    assert live.filter.capacity == 5  # 4 listed x 1.25
    assert await upkeep() is None
    for number in numbers[:3]:
        response = await client.delete(
            f"/v1/numbers/{number}", json={"reason": "owner appealed"}, headers=admin
        )
        assert response.status == 200
    reason = await upkeep()
    assert reason is not None and "75% of its entries are stale" in reason
    assert [n in live.filter for n in (84912345678, 84955555555)] == [False, True]
    assert await pool.fetchval("SELECT count(*) FROM changes") == 7
    # The log's age is Postgres' to tell (it stamps the rows), whatever this process's clock
    # says: moving the service's clock prunes nothing, ageing the rows does.
    clock.advance(days=8)
    await upkeep()
    assert await pool.fetchval("SELECT count(*) FROM changes") == 7
    await pool.execute("UPDATE changes SET at = at - $1::interval", timedelta(days=8))
    await upkeep()
    assert await pool.fetchval("SELECT array_agg(seq) FROM changes") == [7]  # the newest stays
