"""The embedded Postgres lets in only its own service: a password (scram) kept 0600 in the
data dir, and a socket in a directory only the server's user may enter."""

from __future__ import annotations

import stat
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from callguard.embedded import PASSWORD_FILE, PG_HBA, SOCKET_ROOT, database_url

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pgserver.postgres_server import get_server

pytestmark = pytest.mark.slow  # starts embedded Postgres servers of its own


def socket_dir_of(url: str) -> Path:
    return Path(parse_qs(urlsplit(url).query)["host"][0])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def assert_only_the_password_lets_in(url: str) -> None:
    """The URL connects; the same server without the password refuses."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        assert await conn.fetchval("SELECT current_user") == "postgres"
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host=str(socket_dir_of(url)), user="postgres", database="postgres", timeout=10
        )
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host=str(socket_dir_of(url)),
            user="postgres",
            password="guess",
            database="postgres",
            timeout=10,
        )


async def test_a_new_data_dir_asks_for_a_password_kept_0600(pg_data_dir: Path) -> None:
    with database_url(None, pg_data_dir) as url:
        await assert_only_the_password_lets_in(url)
        assert mode(pg_data_dir / PASSWORD_FILE) == 0o600
        assert mode(socket_dir_of(url)) == 0o700
        assert (pg_data_dir / "pg_hba.conf").read_text() == PG_HBA


async def test_with_a_long_data_dir_the_socket_is_in_a_private_directory(
    pg_data_dir: Path,
) -> None:
    """Too long a path for a socket: pgserver puts it elsewhere, in /tmp; ours is a
    directory of the server's user alone, in another of theirs alone."""
    data_dir = pg_data_dir.parent / ("long" * 30) / "data"
    data_dir.parent.mkdir()
    with database_url(None, data_dir) as url:
        socket_dir = socket_dir_of(url)
        assert socket_dir.parent == SOCKET_ROOT
        for directory in (SOCKET_ROOT, socket_dir):
            assert mode(directory) == 0o700
            assert directory.stat().st_uid == data_dir.stat().st_uid  # the server's user
        await assert_only_the_password_lets_in(url)


async def test_a_data_dir_made_before_asks_for_a_password_after_the_upgrade(
    pg_data_dir: Path,
) -> None:
    """A data dir pgserver made with trust, as callguard did before: moved over at start,
    its data kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg_data_dir.mkdir()
        old = get_server(pg_data_dir, cleanup_mode="stop")
    try:
        conn = await asyncpg.connect(old.get_uri(), timeout=10)  # trust: no password
        await conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
        await conn.close()
    finally:
        old.cleanup()
    assert not (pg_data_dir / PASSWORD_FILE).exists()
    with database_url(None, pg_data_dir) as url:
        await assert_only_the_password_lets_in(url)
        conn = await asyncpg.connect(url, timeout=10)
        try:
            assert await conn.fetchval("SELECT answer FROM kept") == 42
        finally:
            await conn.close()
        assert mode(pg_data_dir / PASSWORD_FILE) == 0o600
    with database_url(None, pg_data_dir) as url:  # and at every start after
        await assert_only_the_password_lets_in(url)
