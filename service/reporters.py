"""Who reported: the keyed hash that stands for a reporter, and where its key is kept.

The key is kept out of the database that holds the hashes, so a copy of the database (a
backup, a replica, a stolen dump) cannot be used to test guesses of reporter ids against
them. It comes from CALLGUARD_REPORTER_KEY if set, else from a key file (README, "Reporter
privacy"). The database keeps only a check value, so a replica started with another key
refuses to start rather than count its reporters apart from everyone else's.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path

import asyncpg
from aiohttp import web

from . import store
from .config import REPORTER_KEY_BYTES, Config, parse_reporter_key
from .state import CONFIG, POOL

LEGACY_KEY_SETTING = "reporter_hash_key"
"""Where the key was kept before it moved out of the database; moved out at start."""
KEY_CHECK_SETTING = "reporter_key_check"
"""HMAC(key, KEY_CHECK_MESSAGE): tells whether a key is the one the hashes were made with,
and nothing about the key."""
KEY_CHECK_MESSAGE = b"callguard reporter key check"


class ReporterKeyError(Exception):
    """The reporter key cannot be used; str(error) says why, in one line for the operator."""


def community_reporter_hash(key: bytes, api_key_id: int, reporter: str) -> bytes:
    """The hash standing for an app's reporter: scoped by the API key that sent it, as each
    app names its own users, so `user-42` of one app and of another are two reporters
    (and one app cannot use up another's reporter limits)."""
    scoped = f"key:{api_key_id}:{reporter}"  # the id has no ':', so the split is unambiguous
    return hmac.digest(key, scoped.encode("utf-8"), hashlib.sha256)


def phone_reporter_hash(key: bytes, phone: int) -> bytes:
    """The hash standing for a verified reporter: their phone number (E.164 digits), the
    same whichever app or reporter id it comes through. Also the hash a listed number is
    looked for under, when it has reported other numbers."""
    return hmac.digest(key, f"phone:{phone}".encode("ascii"), hashlib.sha256)


def network_hash(key: bytes, address: str) -> bytes | None:
    """The keyed hash standing for the network a report came from: the client address's
    IPv4 /24 or IPv6 /48, as a brigade check compares them; None for no IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False)
    return hmac.digest(key, f"net:{prefix}".encode("ascii"), hashlib.sha256)


REPORTER_KEY = web.AppKey("reporter_key", bytes)


async def reporter_keys(app: web.Application) -> AsyncIterator[None]:
    """The reporter key, for the writers that hash reporters and listed numbers."""
    app[REPORTER_KEY] = await reporter_key(app[POOL], app[CONFIG])
    yield


async def reporter_key(pool: asyncpg.Pool, config: Config) -> bytes:
    """The reporter key, moved out of the database if it is still there.

    CALLGUARD_REPORTER_KEY wins; else the key file is read, or made (0600) from the key
    the database held, or, for a database that never had one, from fresh random bytes.
    With neither (DATABASE_URL and no key file named), the database's key stays put.
    Raises ReporterKeyError if the key is not the one the stored hashes were made with.
    """
    legacy = await store.settings.get(pool, LEGACY_KEY_SETTING)
    check = await store.settings.get(pool, KEY_CHECK_SETTING)
    key = config.reporter_key
    if key is None:
        if config.reporter_key_file is None:
            raise ReporterKeyError(
                "with DATABASE_URL, set CALLGUARD_REPORTER_KEY or CALLGUARD_REPORTER_KEY_FILE "
                "(README, Reporter privacy)"
            )
        path = config.reporter_key_file.expanduser().resolve()
        key = _read_key_file(path)
    if key is None:
        if legacy is None and check is not None:
            raise ReporterKeyError(
                f"no reporter key: {path} is missing, and this database's reporter hashes "
                "were made with a key; copy that key file here or set CALLGUARD_REPORTER_KEY"
            )
        key = _write_key_file(path, legacy or secrets.token_bytes(REPORTER_KEY_BYTES))
    if legacy is not None and not hmac.compare_digest(key, legacy):
        raise ReporterKeyError(_WRONG_KEY)
    own_check = hmac.digest(key, KEY_CHECK_MESSAGE, hashlib.sha256)
    # Only now, with the key safe outside, is the database's copy deleted.
    settled = await store.settings.settle(pool, KEY_CHECK_SETTING, own_check, LEGACY_KEY_SETTING)
    if not hmac.compare_digest(settled, own_check):
        raise ReporterKeyError(_WRONG_KEY)
    return key


_WRONG_KEY = (
    "the reporter key (CALLGUARD_REPORTER_KEY or the key file) is not the one this "
    "database's reporter hashes were made with; give every replica the same key"
)


def _read_key_file(path: Path) -> bytes | None:
    """The key in the key file, or None if there is none; refused if others may read it."""
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            text = file.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ReporterKeyError(f"{path} may be read by other users: chmod 600 it")
    try:
        return parse_reporter_key(text)
    except ValueError as err:
        raise ReporterKeyError(f"{path}: {err}") from None


def _write_key_file(path: Path, key: bytes) -> bytes:
    """Write the key file (0600) whole or not at all; if another process (a worker, a
    replica on the same data dir) wrote it first, its key is the one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(key.hex() + "\n")
            file.flush()
            os.fsync(file.fileno())
        with suppress(FileExistsError):  # another process's key is there: it is the one
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    written = _read_key_file(path)
    assert written is not None
    return written
