"""Every /v1 call needs a key; roles nest; a revoked key fails at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from callguard import store
from callguard.app import create_app
from callguard.auth import KEY_CACHE, Caller, KeyCache, Role, hash_key, new_key, requires
from callguard.clock import utc_now
from callguard.config import Config
from callguard.feed import APPLICATION_NAME
from callguard.limits import TokenBuckets
from callguard.web.routes import PAGES

from tests.conftest import AppClient, ClientFactory, MakeKey, eventually, own_postgres

V1_CALLS = [
    ("GET", "/v1/numbers/0912345678", None),
    ("GET", "/v1/categories", None),
    ("POST", "/v1/lookups", {"numbers": ["0912345678"]}),
    ("POST", "/v1/reports", {"number": "0912345678", "category": "other", "reporter": "r"}),
    ("POST", "/v1/feedback", {"number": "0912345678", "reporter": "r", "verdict": "not_scam"}),
]


@pytest.mark.parametrize(("method", "path", "body"), V1_CALLS)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer cg_not-a-real-key", "cg_x"],
)
async def test_a_missing_or_unknown_key_is_401(
    client: AppClient, method: str, path: str, body: object, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.request(method, path, json=body, headers=headers)
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_scheme_is_case_insensitive(client: AppClient, make_key: MakeKey) -> None:
    key = await make_key("client")
    response = await client.get("/v1/categories", headers={"Authorization": f"bearer {key}"})
    assert response.status == 200


OPEN_PATHS = {"/healthz", "/readyz", "/openapi.json", "/docs"}
PAGE_PATHS = {page.path for page in PAGES}
"""The pages need no key: the public ones are open, and the moderators' ones take a session
of their own (tests/test_web_admin.py)."""


@pytest.mark.parametrize("path", sorted(OPEN_PATHS))
async def test_operations_endpoints_and_docs_need_no_key(client: AppClient, path: str) -> None:
    assert (await client.get(path)).status == 200


async def test_every_other_route_needs_a_key(aiohttp_client: ClientFactory, config: Config) -> None:
    # Routes are closed unless marked public: one added without a thought needs a key. One
    # address asks every route, more than the 401s an address gets before its 429s.
    client = await aiohttp_client(create_app(replace(config, refusal_burst_per_address=1000)))
    closed = 0
    for route in client.app.router.routes():
        template = route.resource.canonical if route.resource is not None else ""
        if template in OPEN_PATHS or template in PAGE_PATHS:
            continue
        path = template.replace("{number}", "0912345678").replace("{name}", "scam")
        for name in ("{appeal_id}", "{import_id}", "{review_id}"):
            path = path.replace(name, "1")
        assert "{" not in path, template  # a new path parameter: give it a value above
        response = await client.request(route.method, path)
        assert response.status == 401, (route.method, template)
        closed += 1
    assert closed >= 20


async def wait_for_status(client: AppClient, headers: dict[str, str], status: int) -> None:
    """Return once GET /v1/categories answers `status`: a key change takes effect at once,
    and the generous deadline fails only one that never does."""

    async def answers() -> bool:
        return (await client.get("/v1/categories", headers=headers)).status == status

    await eventually(answers, what=f"GET /v1/categories answered {status}")


async def test_a_revoked_key_fails_at_once_even_when_cached(
    client: AppClient, make_key: MakeKey, pool: asyncpg.Pool
) -> None:
    key = await make_key("client")
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(3):  # served from the key cache after the first
        assert (await client.get("/v1/categories", headers=headers)).status == 200
    assert (
        await store.keys.revoke(
            pool, None, hash_key(key), store.audit.Actor(None, "test"), utc_now()
        )
        is not None
    )
    await wait_for_status(client, headers, 401)
    admin = {"Authorization": f"Bearer {await make_key('admin')}"}
    entries = (await (await client.get("/v1/audit", headers=admin)).json())["entries"]
    assert [(e["action"], e["actor"], e["detail"]["key_name"]) for e in entries] == [
        ("key_revoke", "test", "test client")
    ]


async def test_revocation_holds_while_the_change_feed_reconnects(
    client: AppClient, make_key: MakeKey, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The feed stays down once cut, so the revocation must hold without it, whatever the
    # deadline.
    monkeypatch.setattr("callguard.feed.RETRY_SECONDS", 600.0)
    key = await make_key("client")
    headers = {"Authorization": f"Bearer {key}"}
    # The feed has connected: keys are cached.
    await eventually(lambda: client.app[KEY_CACHE].live, what="the feed listening")
    for _ in range(3):
        assert (await client.get("/v1/categories", headers=headers)).status == 200
    # Cut the feed's listening connection, as a network blip would, then revoke while the
    # NOTIFY has nobody to hear it: the cached key must not outlive the revocation.
    cut = await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        APPLICATION_NAME,
    )
    assert cut == 1
    assert (
        await store.keys.revoke(
            pool, None, hash_key(key), store.audit.Actor(None, "test"), utc_now()
        )
        is not None
    )
    await wait_for_status(client, headers, 401)
    assert not client.app[KEY_CACHE].live  # still reconnecting
    other = {"Authorization": f"Bearer {await make_key('client')}"}
    assert (await client.get("/v1/categories", headers=other)).status == 200


async def test_a_key_created_after_a_refusal_works_at_once(
    client: AppClient, make_key: MakeKey, pool: asyncpg.Pool
) -> None:
    key = "cg_made-after-a-refusal"
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/categories", headers=headers)).status == 401  # cached as unknown
    await store.keys.create(pool, "late", "client", hash_key(key))
    await wait_for_status(client, headers, 200)


@pytest.mark.slow  # a Postgres of its own
async def test_a_new_key_leaves_the_served_keys_cached_through_an_outage(
    aiohttp_client: ClientFactory, pg_data_dir: Path
) -> None:
    async with own_postgres(pg_data_dir) as (url, key):
        headers = {"Authorization": f"Bearer {key}"}
        client = await aiohttp_client(create_app(Config(database_url=url)))
        await eventually(lambda: client.app[KEY_CACHE].live, what="the feed listening")
        assert (await client.get("/v1/numbers/0912345678", headers=headers)).status == 200
        # A key made now, as `callguard keys create` would while the service runs; once it
        # is accepted, the feed has applied its creation.
        made = new_key()
        later = {"Authorization": f"Bearer {made}"}
        assert (await client.get("/v1/categories", headers=later)).status == 401
        async with await store.database.create_pool(url, 1, 1) as pool:
            await store.keys.create(pool, "made later", "client", hash_key(made))

        async def accepted() -> bool:
            return (await client.get("/v1/categories", headers=later)).status == 200

        await eventually(accepted, what="the new key accepted")
    # Postgres is gone: the key served before the new one was made still looks numbers up.
    response = await client.get("/v1/numbers/0912345678", headers=headers)
    assert response.status == 200
    assert (await response.json())["verdict"] == "unknown"


async def test_a_role_too_low_is_403(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    async def moderate(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = create_app(config)
    app.router.add_post("/v1/moderation-probe", requires(Role.ADMIN)(moderate))
    client = await aiohttp_client(app)
    for role, status in [("client", 403), ("operator", 403), ("admin", 200)]:
        headers = {"Authorization": f"Bearer {await make_key(role)}"}
        response = await client.post("/v1/moderation-probe", headers=headers)
        assert response.status == status, role
        if status == 403:
            assert response.content_type == "application/problem+json"
            assert "admin" in (await response.json())["detail"]


def test_roles_nest_and_metrics_stands_below_them() -> None:
    assert Role.METRICS < Role.CLIENT < Role.OPERATOR < Role.ADMIN
    assert [Role.named(name) for name in ("metrics", "client", "operator", "admin")] == list(Role)


async def test_unknown_keys_past_the_check_budget_never_reach_postgres(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey, pool: asyncpg.Pool
) -> None:
    config = replace(config, unknown_key_checks_per_second=0.001, refusal_burst_per_address=1000)
    client = await aiohttp_client(create_app(config))
    headers = {"Authorization": f"Bearer {await make_key('client')}"}

    async def accepted() -> bool:
        return (await client.get("/v1/categories", headers=headers)).status == 200

    await eventually(accepted, what="the key accepted")
    # While api_keys is locked, any request that asks Postgres about its key waits: the
    # unknown keys must be refused from memory (at most one fits the budget and waits),
    # and the known key served.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
        unknown = [
            asyncio.ensure_future(
                client.get("/v1/categories", headers={"Authorization": f"Bearer {new_key()}"})
            )
            for _ in range(50)
        ]
        await eventually(
            lambda: sum(request.done() for request in unknown) >= 49,
            what="unknown keys refused without waiting for Postgres",
        )
        assert await accepted()
    assert [(await request).status for request in unknown] == [401] * 50


@pytest.mark.slow  # a Postgres of its own
async def test_a_flood_of_unknown_keys_leaves_the_valid_ones_working_through_an_outage(
    aiohttp_client: ClientFactory, pg_data_dir: Path
) -> None:
    async with own_postgres(pg_data_dir) as (url, key):
        headers = {"Authorization": f"Bearer {key}"}
        config = Config(database_url=url, key_cache_size=4, refusal_burst_per_address=1000)
        client = await aiohttp_client(create_app(config))
        await eventually(lambda: client.app[KEY_CACHE].live, what="the feed listening")
        assert (await client.get("/v1/categories", headers=headers)).status == 200
        for _ in range(20):
            flood = {"Authorization": f"Bearer {new_key()}"}
            assert (await client.get("/v1/categories", headers=flood)).status == 401
    # Postgres is gone: the valid key was not pushed out by the unknown ones.
    assert (await client.get("/v1/numbers/0912345678", headers=headers)).status == 200


async def test_401s_are_limited_per_client_address(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    config = replace(config, refusal_burst_per_address=3, refusals_per_address_per_second=0.001)
    client = await aiohttp_client(create_app(config))
    unknown = {"Authorization": f"Bearer {new_key()}"}
    for _ in range(3):
        assert (await client.get("/v1/categories", headers=unknown)).status == 401
    for headers in (unknown, {}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = await client.get("/v1/categories", headers=headers)
        assert response.status == 429
        assert response.content_type == "application/problem+json"
        assert int(response.headers["Retry-After"]) >= 1
    # A valid key from the same address is still served.
    valid = {"Authorization": f"Bearer {await make_key('client')}"}

    async def accepted() -> bool:
        return (await client.get("/v1/categories", headers=valid)).status == 200

    await eventually(accepted, what="the valid key served")


@pytest.mark.parametrize("trusted", [False, True])
async def test_behind_a_trusted_proxy_401s_are_counted_by_forwarded_address(
    aiohttp_client: ClientFactory, config: Config, trusted: bool
) -> None:
    proxies = frozenset({"127.0.0.1"}) if trusted else frozenset()
    config = replace(
        config,
        refusal_burst_per_address=1,
        refusals_per_address_per_second=0.001,
        trusted_proxies=proxies,
    )
    client = await aiohttp_client(create_app(config))
    statuses = []
    for forwarded in ("203.0.113.7", "203.0.113.8", "203.0.113.8"):
        # A client may send its own X-Forwarded-For: only the address the proxy added (the
        # last) counts.
        headers = {"X-Forwarded-For": f"198.51.100.1, {forwarded}"}
        statuses.append((await client.get("/v1/categories", headers=headers)).status)
    assert statuses == ([401, 401, 429] if trusted else [401, 429, 429])


def test_a_key_postgres_found_is_kept_through_a_load_but_not_through_a_revocation() -> None:
    """KeyCache.checked: an answer read before the keys were loaded again still adds an
    active key (the load may predate the key), while one read before a revocation is dropped
    (it may be of the revoked key), and a "no such key" read before a load that holds the
    key does not remove it."""
    at = datetime.now(UTC)

    def key(key_id: int) -> store.keys.ApiKey:
        return store.keys.ApiKey(key_id, f"k{key_id}", "client", at, None)

    keys = KeyCache(16, TokenBuckets(1.0, 1))
    keys.load({})
    new, other = hash_key("new"), hash_key("other")
    caller = Caller(key(1), Role.CLIENT)

    as_of = keys.generation, keys.revocations
    keys.load({other: key(2)})  # the feed's reload, read before key 1 was made
    keys.checked(new, caller, *as_of)
    assert keys.known(new) == caller

    as_of = keys.generation, keys.revocations
    keys.key_changed(f"{store.keys.REVOKED} 1")
    keys.checked(new, caller, *as_of)
    assert keys.known(new) is None

    as_of = keys.generation, keys.revocations
    keys.load({new: key(3)})  # made after the check asked Postgres
    keys.checked(new, None, *as_of)
    assert keys.known(new) is not None
