"""The lists phones hold, on the real database: publishing, full and partial updates, the
checksum, stale and bad states, 304s, the exports; and, as a property, that any sequence of
changes applied through partial updates gives the list a fresh download gives."""

from __future__ import annotations

import base64
import gzip
import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from callguard import list_coding, store
from callguard.app import create_app
from callguard.config import Config
from callguard.lists import LISTS, Held, Lists, state_of, update_between
from callguard.lists_client import LocalLists, sync
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import (
    AppClient,
    ClientFactory,
    MakeKey,
    eventually,
    report_verified,
)

Json = dict[str, Any]
ADMIN_ACTOR = store.audit.Actor(None, "test")


@pytest.fixture
async def admin(make_key: MakeKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_key('admin')}"}


async def lists_of(client: AppClient) -> Lists:
    """The app's lists, once its first version is published (at start)."""
    owner = client.app[LISTS]
    await eventually(lambda: all(held.version for held in owner.held.values()), what="version 1")
    return owner


async def fetch(
    client: AppClient, auth: dict[str, str], name: str, state: str | None = None
) -> Json:
    params = {} if state is None else {"state": state}
    response = await client.get(f"/v1/lists/{name}", params=params, headers=auth)
    assert response.status == 200, await response.text()
    body: Json = await response.json()
    return body


class Phone:
    """A phone holding a list, as docs/lists.md tells apps to: numbers and details."""

    def __init__(self) -> None:
        self.numbers: list[int] = []
        self.details: dict[int, str] = {}
        self.state: str | None = None

    def take(self, answer: Json) -> None:
        added = {
            number: group["detail"]
            for group in answer["additions"]
            for number in list_coding.decode(list_coding.Coded.from_json(group["numbers"]))
        }
        if answer["partial"]:
            indices = list_coding.decode_indices(list_coding.Coded.from_json(answer["removals"]))
            for index in indices:
                self.details.pop(self.numbers[index])
            self.numbers = list_coding.apply(self.numbers, list(added), indices)
        else:
            self.numbers, self.details = sorted(added), {}
        self.details.update(added)
        assert list_coding.checksum(self.numbers) == base64.b64decode(answer["sha256"])
        assert len(self.numbers) == answer["entries"]
        self.state = answer["state"]


async def put(client: AppClient, admin: dict[str, str], number: str, category: str) -> None:
    response = await client.put(f"/v1/numbers/{number}", json={"category": category}, headers=admin)
    assert response.status == 200


async def delete(client: AppClient, admin: dict[str, str], number: str) -> None:
    response = await client.delete(
        f"/v1/numbers/{number}", json={"reason": "a mistake"}, headers=admin
    )
    assert response.status == 200


async def test_a_phone_follows_listings_and_delistings_through_partial_updates(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    owner = await lists_of(client)
    phone = Phone()
    first = await fetch(client, auth, "scam")
    assert (first["partial"], first["entries"], first["minimum_wait_seconds"]) == (False, 0, 1800)
    phone.take(first)
    await put(client, admin, "0912345678", "online_loan")
    await put(client, admin, "0987654321", "investment")
    await put(client, admin, "0933333333", "online_loan")
    assert set(await owner.publish()) == {"scam", "verified"}
    update = await fetch(client, auth, "scam", phone.state)
    assert update["partial"] and update["entries"] == 3
    phone.take(update)
    assert phone.details == {
        84912345678: "online_loan",
        84933333333: "online_loan",
        84987654321: "investment",
    }
    await delete(client, admin, "0933333333")
    await put(client, admin, "0912345678", "impersonation_authority")  # a new category
    await owner.publish()
    update = await fetch(client, auth, "scam", phone.state)
    assert list_coding.decode_indices(list_coding.Coded.from_json(update["removals"])) == [0, 1]
    phone.take(update)
    assert phone.details == {84912345678: "impersonation_authority", 84987654321: "investment"}
    # Up to date: an empty update, and the same answer again is a 304.
    update = await fetch(client, auth, "scam", phone.state)
    assert (update["partial"], update["additions"], update["removals"]["count"]) == (True, [], 0)
    response = await client.get("/v1/lists/scam", params={"state": phone.state}, headers=auth)
    assert response.headers["Cache-Control"] == "private, max-age=1800"
    again = await client.get(
        "/v1/lists/scam",
        params={"state": phone.state},
        headers={**auth, "If-None-Match": response.headers["ETag"]},
    )
    assert again.status == 304 and await again.read() == b""


async def test_only_scams_are_published_and_verified_numbers_with_their_owners(
    client: AppClient, auth: dict[str, str], attesting: dict[str, str], admin: dict[str, str]
) -> None:
    owner = await lists_of(client)
    await report_verified(client, attesting, "0912345678", category="online_loan")
    one = {"number": "0944444444", "category": "other", "reporter": "r1"}
    assert (await client.post("/v1/reports", json=one, headers=auth)).status == 201
    response = await client.put(
        "/v1/allowlist/02513685134", json={"owner": "Công an tỉnh Đồng Nai"}, headers=admin
    )
    assert response.status == 200
    await owner.publish()
    scam, verified = Phone(), Phone()
    scam.take(await fetch(client, auth, "scam"))
    verified.take(await fetch(client, auth, "verified"))
    assert scam.details == {84912345678: "online_loan"}  # never the suspicious 0944444444
    assert verified.details == {842513685134: "Công an tỉnh Đồng Nai"}


async def test_an_old_or_foreign_state_gets_the_whole_list_and_a_bad_one_400(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    owner = await lists_of(client)
    await put(client, admin, "0912345678", "online_loan")
    await owner.publish()
    for state in (state_of("scam", 999), state_of("verified", 1)):
        body = await fetch(client, auth, "scam", state)
        assert (body["partial"], body["entries"]) == (False, 1)
    for bad in ("not a state!", state_of("scam", 0)[:-1] + "!", "x" * 101):
        response = await client.get("/v1/lists/scam", params={"state": bad}, headers=auth)
        assert response.status == 400, bad
        assert response.content_type == "application/problem+json"
    assert (await client.get("/v1/lists/spam", headers=auth)).status == 404
    assert (await client.get("/v1/lists/scam")).status == 401


async def test_a_state_older_than_the_retention_gets_the_whole_list(
    aiohttp_client: ClientFactory, config: Config, auth: dict[str, str], admin: dict[str, str]
) -> None:
    client = await aiohttp_client(create_app(replace(config, list_retention=timedelta(0))))
    owner = await lists_of(client)
    phone = Phone()
    phone.take(await fetch(client, auth, "scam"))
    await put(client, admin, "0912345678", "online_loan")
    await owner.publish()
    await owner.load()  # as a process started now does: no changes kept past the retention
    body = await fetch(client, auth, "scam", phone.state)
    assert (body["partial"], body["entries"]) == (False, 1)
    phone.take(body)


async def test_a_phone_whose_checksum_fails_asks_for_the_whole_list(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    owner = await lists_of(client)
    phone = Phone()
    phone.take(await fetch(client, auth, "scam"))
    await put(client, admin, "0912345678", "online_loan")
    await owner.publish()
    phone.numbers = [84900000001]  # what a corrupted copy holds
    update = await fetch(client, auth, "scam", phone.state)
    with pytest.raises(AssertionError):
        phone.take(update)  # the checksum differs
    phone.take(await fetch(client, auth, "scam"))  # so it asks with no state
    assert phone.numbers == [84912345678]


async def test_another_replica_answers_the_versions_one_published(
    aiohttp_client: ClientFactory, config: Config, auth: dict[str, str], admin: dict[str, str]
) -> None:
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    owner = await lists_of(first)
    await lists_of(second)
    phone = Phone()
    phone.take(await fetch(second, auth, "scam"))
    await put(first, admin, "0912345678", "online_loan")
    await owner.publish()
    await (await lists_of(second)).refresh()  # what its poll does every 10 s
    phone.take(await fetch(second, auth, "scam", phone.state))
    assert phone.numbers == [84912345678]


async def test_the_exports_are_gzipped_tsv(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    owner = await lists_of(client)
    await put(client, admin, "0987654321", "investment")
    await put(client, admin, "0912345678", "online_loan")
    response = await client.put(
        "/v1/allowlist/02513685134",
        json={"owner": "Công an tỉnh Đồng Nai"},
        headers=admin,
    )
    assert response.status == 200
    await owner.publish()
    today = datetime.now(UTC).date().isoformat()
    expected = {
        "scam": [
            f"+84912345678\tscam\tonline_loan\t{today}",
            f"+84987654321\tscam\tinvestment\t{today}",
        ],
        "verified": [f"+842513685134\tverified\tCông an tỉnh Đồng Nai\t{today}"],
    }
    for name, lines in expected.items():
        response = await client.get(f"/v1/lists/{name}.tsv.gz", headers=auth)
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/gzip"
        assert f'filename="{name}.tsv.gz"' in response.headers["Content-Disposition"]
        text = gzip.decompress(await response.read()).decode("utf-8")
        assert text.splitlines() == ["number\tlevel\tdetail\tsince", *lines]


async def test_any_sequence_of_changes_through_partial_updates_matches_a_download(
    client: AppClient, auth: dict[str, str], pool: asyncpg.Pool
) -> None:
    owner = await lists_of(client)
    rng = random.Random(20261130)
    numbers = [84_912_000_000 + i for i in range(40)]
    phones: list[Phone] = []
    for _ in range(8):
        for number in rng.sample(numbers, 10):
            if rng.random() < 0.6:
                category = rng.choice(["online_loan", "investment", "other"])
                await store.trusted.list_number(
                    pool, number, "admin:test", category, None, ADMIN_ACTOR, owner.clock()
                )
            else:
                await store.trusted.delist(pool, number, "test", ADMIN_ACTOR, owner.clock())
        await owner.publish()
        phones.append(Phone())
        for phone in phones:  # phones that joined at every version so far, kept current
            phone.take(await fetch(client, auth, "scam", phone.state))
        fresh = Phone()
        fresh.take(await fetch(client, auth, "scam"))
        for phone in phones:
            assert (phone.numbers, phone.details) == (fresh.numbers, fresh.details)


def _held(versions: list[dict[int, str]]) -> Held:
    """A list's versions 1..n as the publisher records them: each version's changes."""
    changes = []
    for version, (before, after) in enumerate(zip([{}, *versions], versions, strict=False), 1):
        for number in sorted(before.keys() | after.keys()):
            if before.get(number) != after.get(number):
                changes.append(
                    store.lists.Change(version, number, before.get(number), after.get(number))
                )
    newest = versions[-1]
    version = store.lists.Version(
        len(versions), datetime.now(UTC), 0, len(newest),
        list_coding.checksum(list(newest)), whole=False,
    )  # fmt: skip
    return Held("scam", version, sorted(newest), dict(newest), 0, changes)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.integers(1, 60).map(lambda n: 84_900_000_000 + n),
            st.sampled_from(["a", "b", "c"]),
            max_size=30,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_an_update_from_any_version_gives_the_newest_list(versions: list[dict[int, str]]) -> None:
    held = _held(versions)
    for since, held_then in enumerate([{}, *versions[:-1]]):
        phone = Phone()
        phone.numbers, phone.details = sorted(held_then), dict(held_then)
        phone.take(json.loads(update_between(held, since, 60).body))
        assert phone.details == versions[-1]


async def test_the_reference_client_keeps_a_copy_of_the_real_service(
    client: AppClient, auth: dict[str, str], admin: dict[str, str], tmp_path: Path
) -> None:
    owner = await lists_of(client)
    await put(client, admin, "0912345678", "online_loan")
    response = await client.put(
        "/v1/allowlist/02513685134", json={"owner": "Công an tỉnh Đồng Nai"}, headers=admin
    )
    assert response.status == 200
    await owner.publish()
    url = str(client.make_url("")).rstrip("/")
    key = auth["Authorization"].removeprefix("Bearer ")
    outcomes = await sync(url, key, tmp_path)
    assert [outcome.status for outcome in outcomes] == ["updated", "updated"]
    local = LocalLists.load(tmp_path)
    assert local.check(84912345678) == ("scam", "online_loan")
    assert local.check(842513685134) == ("verified", "Công an tỉnh Đồng Nai")
    assert local.check(84987654321) == ("unknown", None)
    # A partial update next time: one number leaves, another comes.
    await delete(client, admin, "0912345678")
    await put(client, admin, "0987654321", "investment")
    await owner.publish()
    skipped = await sync(url, key, tmp_path)  # the minimum wait is not over
    assert [outcome.status for outcome in skipped] == ["skipped", "skipped"]
    outcomes = await sync(url, key, tmp_path, force=True)
    assert [outcome.status for outcome in outcomes] == ["updated", "updated"]  # verified: empty
    local = LocalLists.load(tmp_path)
    assert local.check(84912345678) == ("unknown", None)
    assert local.check(84987654321) == ("scam", "investment")


async def test_a_list_not_loaded_yet_is_answered_503_with_retry_after(
    client: AppClient, auth: dict[str, str]
) -> None:
    owner = await lists_of(client)
    owner.held = {name: Held(name, None, [], {}, 0) for name in owner.held}  # as at a start
    response = await client.get("/v1/lists/scam", headers=auth)
    assert response.status == 503
    assert response.headers["Retry-After"] == "10"
    await owner.refresh()  # what the background load does
    assert (await client.get("/v1/lists/scam", headers=auth)).status == 200


async def test_answers_come_gzipped_to_a_client_that_takes_gzip(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    owner = await lists_of(client)
    await put(client, admin, "0912345678", "online_loan")
    await owner.publish()
    plain = await client.get("/v1/lists/scam", headers={**auth, "Accept-Encoding": "identity"})
    zipped = await client.get("/v1/lists/scam", headers={**auth, "Accept-Encoding": "br, gzip"})
    refused = await client.get(
        "/v1/lists/scam", headers={**auth, "Accept-Encoding": "gzip;q=0, identity"}
    )
    assert "Content-Encoding" not in plain.headers and "Content-Encoding" not in refused.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert zipped.headers["ETag"] != plain.headers["ETag"]  # two representations
    assert await zipped.json() == await plain.json()  # the test client unzips it
    again = await client.get(
        "/v1/lists/scam",
        headers={**auth, "Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]},
    )
    assert again.status == 304
