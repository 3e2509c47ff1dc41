"""Reporter privacy: the reporter key outside the database, reporters scoped by API key,
and report details erased after their retention period."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import stat
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from callguard.app import create_app
from callguard.config import Config
from callguard.reporters import (
    KEY_CHECK_SETTING,
    LEGACY_KEY_SETTING,
    ReporterKeyError,
    reporter_key,
)
from callguard.retention import apply_retention

from tests.conftest import ClientFactory, FakeClock, MakeKey

NUMBER = "0912345678"


def report_of(reporter: str, **fields: object) -> dict[str, object]:
    return {"number": NUMBER, "category": "online_loan", "reporter": reporter, **fields}


def scoped_hash(key: bytes, api_key_id: int, reporter: str) -> bytes:
    return hmac.digest(key, f"key:{api_key_id}:{reporter}".encode(), hashlib.sha256)


async def settings(pool: asyncpg.Pool) -> dict[str, bytes]:
    return {row["name"]: row["value"] for row in await pool.fetch("SELECT * FROM settings")}


@pytest.fixture
def own_key_config(config: Config, tmp_path: Path) -> Config:
    """The test database, with the reporter key file in a directory of the test's own."""
    return replace(config, reporter_key_file=tmp_path / "data" / "reporter.key")


def key_path(config: Config) -> Path:
    assert config.reporter_key_file is not None
    return config.reporter_key_file


async def test_a_new_key_is_made_in_a_file_only_its_owner_may_read(
    aiohttp_client: ClientFactory,
    own_key_config: Config,
    make_key: MakeKey,
    pool: asyncpg.Pool,
) -> None:
    client = await aiohttp_client(create_app(own_key_config))
    path = key_path(own_key_config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = bytes.fromhex(path.read_text())
    assert len(key) == 32
    assert key not in (await settings(pool)).values()  # nothing the database holds is the key
    auth = {"Authorization": f"Bearer {await make_key('client')}"}
    assert (await client.post("/v1/reports", json=report_of("user-42"), headers=auth)).status == 201
    key_id = await pool.fetchval("SELECT max(id) FROM api_keys")
    assert await pool.fetchval("SELECT reporter_hash FROM reports") == scoped_hash(
        key, key_id, "user-42"
    )


async def test_a_key_kept_in_the_database_moves_to_the_file(
    own_key_config: Config, pool: asyncpg.Pool
) -> None:
    """An upgrade: the key of the hashes already stored is written out, then deleted."""
    legacy = secrets.token_bytes(32)
    await pool.execute(
        "INSERT INTO settings (name, value) VALUES ($1, $2)", LEGACY_KEY_SETTING, legacy
    )
    assert await reporter_key(pool, own_key_config) == legacy
    path = key_path(own_key_config)
    assert bytes.fromhex(path.read_text()) == legacy
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(await settings(pool)) == {KEY_CHECK_SETTING}
    assert await reporter_key(pool, own_key_config) == legacy  # the next start reads the file


async def test_the_environment_key_wins_over_the_file(
    own_key_config: Config, pool: asyncpg.Pool
) -> None:
    path = key_path(own_key_config)
    path.parent.mkdir(mode=0o700)
    path.write_text(secrets.token_bytes(32).hex())
    path.chmod(0o600)
    given = secrets.token_bytes(32)
    assert await reporter_key(pool, replace(own_key_config, reporter_key=given)) == given


async def test_a_replica_with_another_key_or_none_refuses_to_start(
    own_key_config: Config, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Hashes made with two keys would count one reporter as two: never start so."""
    first = await reporter_key(pool, own_key_config)
    other = replace(own_key_config, reporter_key_file=tmp_path / "other" / "reporter.key")
    with pytest.raises(ReporterKeyError, match="is missing"):
        await reporter_key(pool, other)
    assert not key_path(other).exists()
    with pytest.raises(ReporterKeyError, match="not the one"):
        await reporter_key(pool, replace(other, reporter_key=secrets.token_bytes(32)))
    assert await reporter_key(pool, replace(other, reporter_key=first)) == first


async def test_a_moved_key_that_differs_from_the_stored_one_is_refused(
    own_key_config: Config, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "INSERT INTO settings (name, value) VALUES ($1, $2)",
        LEGACY_KEY_SETTING,
        secrets.token_bytes(32),
    )
    with pytest.raises(ReporterKeyError, match="not the one"):
        await reporter_key(pool, replace(own_key_config, reporter_key=secrets.token_bytes(32)))
    assert LEGACY_KEY_SETTING in await settings(pool)  # kept: it is the only copy


@pytest.mark.parametrize("mode", [0o640, 0o604])
async def test_a_key_file_others_may_read_is_refused(
    own_key_config: Config, pool: asyncpg.Pool, mode: int
) -> None:
    path = key_path(own_key_config)
    path.parent.mkdir(mode=0o700)
    path.write_text(secrets.token_bytes(32).hex())
    path.chmod(mode)
    with pytest.raises(ReporterKeyError, match="chmod 600"):
        await reporter_key(pool, own_key_config)


def test_the_key_file_is_in_the_data_dir_unless_the_database_is_elsewhere(
    tmp_path: Path,
) -> None:
    embedded = Config.from_env({}, data_dir=tmp_path)
    assert embedded.reporter_key_file == tmp_path / "reporter.key"
    elsewhere = Config.from_env({"DATABASE_URL": "postgresql://db/callguard"}, data_dir=tmp_path)
    assert elsewhere.reporter_key_file is None  # a file in a container would be lost
    named = Config.from_env(
        {"DATABASE_URL": "postgresql://db/callguard", "CALLGUARD_REPORTER_KEY_FILE": "/k"}
    )
    assert named.reporter_key_file == Path("/k")


async def test_with_an_outside_database_and_no_key_the_stored_key_stays(
    config: Config, pool: asyncpg.Pool
) -> None:
    legacy = secrets.token_bytes(32)
    await pool.execute(
        "INSERT INTO settings (name, value) VALUES ($1, $2)", LEGACY_KEY_SETTING, legacy
    )
    with pytest.raises(ReporterKeyError, match="CALLGUARD_REPORTER_KEY"):
        await reporter_key(pool, replace(config, reporter_key_file=None))
    assert await settings(pool) == {LEGACY_KEY_SETTING: legacy}


@pytest.mark.parametrize("text", ["not hex", "ab" * 31])
def test_a_reporter_key_in_the_environment_must_be_32_bytes_of_hex(text: str) -> None:
    with pytest.raises(ValueError, match="reporter key"):
        Config.from_env({"CALLGUARD_REPORTER_KEY": text})


async def test_community_reporters_are_scoped_by_api_key(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    """`user-42` of one app is not `user-42` of another: they count as two reporters, and
    one app using up its reporter's daily limit leaves the other's alone."""
    client = await aiohttp_client(create_app(replace(config, reports_per_reporter_per_day=1)))
    first = {"Authorization": f"Bearer {await make_key('client')}"}
    second = {"Authorization": f"Bearer {await make_key('client')}"}
    assert (
        await client.post("/v1/reports", json=report_of("user-42"), headers=first)
    ).status == 201
    again = await client.post("/v1/reports", json=report_of("user-42"), headers=first)
    assert again.status == 429
    other = await client.post("/v1/reports", json=report_of("user-42"), headers=second)
    assert other.status == 201
    lookup = await (await client.get(f"/v1/numbers/{NUMBER}", headers=first)).json()
    assert (lookup["report_count"], lookup["reporter_count"]) == (2, 2)


async def details(pool: asyncpg.Pool) -> list[tuple[int, bool, str | None, bool]]:
    """Each report's id and which of its details remain."""
    rows = await pool.fetch(
        "SELECT id, reporter_hash IS NOT NULL AS hashed, description, occurred_at IS NOT NULL"
        " AS occurred FROM reports ORDER BY id"
    )
    return [(row["id"], row["hashed"], row["description"], row["occurred"]) for row in rows]


@pytest.mark.parametrize(
    ("retention_days", "kept_until_day"),
    [(30, 90), (200, 200)],  # never inside the 90-day verdict window
)
async def test_report_details_are_erased_after_retention_and_verdicts_stay(
    aiohttp_client: ClientFactory,
    config: Config,
    clock: FakeClock,
    make_key: MakeKey,
    pool: asyncpg.Pool,
    retention_days: int,
    kept_until_day: int,
) -> None:
    retention = replace(config, report_retention=timedelta(days=retention_days))
    client = await aiohttp_client(create_app(retention, clock))
    auth = {"Authorization": f"Bearer {await make_key('client')}"}
    start = clock.now

    async def send(reporter: str, number: str = NUMBER) -> None:
        body = report_of(reporter, number=number, description=f"said by {reporter}")
        body["occurred_at"] = (clock.now - timedelta(hours=1)).isoformat()
        assert (await client.post("/v1/reports", json=body, headers=auth)).status == 201

    async def verdicts() -> list[tuple[str, int, int]]:
        """What a verdict rests on, for both numbers."""
        found = []
        for number in (NUMBER, "0987654321"):
            body = await (await client.get(f"/v1/numbers/{number}", headers=auth)).json()
            found.append((body["verdict"], body["score"], body["reporter_count"]))
        return found

    await send("r1")
    await send("r2")
    clock.advance(days=60)
    await send("r3")
    await send("r1", "0987654321")  # r1's hash is still needed for this number
    clock.now = start + timedelta(days=kept_until_day - 1)
    before = await verdicts()
    await apply_retention(pool, retention, clock())
    assert [hashed for _, hashed, _, _ in await details(pool)] == [True] * 4
    assert await pool.fetchval("SELECT count(*) FROM number_reporters") == 4
    assert await verdicts() == before

    clock.now = start + timedelta(days=kept_until_day, seconds=1)
    during = await verdicts()
    await apply_retention(pool, retention, clock())
    assert await details(pool) == [
        (1, False, None, False),
        (2, False, None, False),
        (3, True, "said by r3", True),
        (4, True, "said by r1", True),
    ]
    reporters = await pool.fetch("SELECT number FROM number_reporters ORDER BY number")
    assert [row["number"] for row in reporters] == [84912345678, 84987654321]
    assert await verdicts() == during
    assert await pool.fetchval("SELECT count(*) FROM reports") == 4  # the reports still count
