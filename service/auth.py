"""API keys: making and hashing them, roles, the per-process key cache, the auth middleware.

A lookup must not cost a database round trip for its key, so verified keys are cached in
process. The cache is trusted only while the change feed listens: every key change
NOTIFYs, the feed clears the cache, and while the feed is down every request asks Postgres.
If Postgres cannot answer either (an outage), a key the cache knew is accepted anyway, so
lookups go on answering from the filter; a key revoked while the feed was down could then
be honoured until Postgres is back.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable
from enum import IntEnum
from http import HTTPStatus
from typing import Any, TypeVar

import asyncpg
from aiohttp import web

from service import store
from service.problems import Problem
from service.state import POOL
from service.store import ApiKey

KEY_PREFIX = "cg_"
_BEARER = "bearer "
_ROLE_ATTRIBUTE = "__callguard_role__"


class Role(IntEnum):
    """Roles nest: each may do everything the ones below it may."""

    CLIENT = 1
    """Look numbers up and report them: a phone app."""
    OPERATOR = 2
    """Also import lists: a telecom operator or police unit."""
    ADMIN = 3
    """Also moderate: callguard's own staff."""

    @classmethod
    def named(cls, name: str) -> Role:
        return cls[name.upper()]


def new_key() -> str:
    """A fresh API key: 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    """The stored form of a key. Keys are random, so a plain hash is enough."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyCache:
    """Recent answers to "which active key has this hash?", negative ones included."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.live = False
        """True while the change feed listens; until then nothing is cached."""
        self.generation = 0
        self._entries: OrderedDict[bytes, ApiKey | None] = OrderedDict()

    def get(self, key_hash: bytes) -> tuple[bool, ApiKey | None]:
        """(found, key): found is False when Postgres must be asked."""
        if not self.live:
            return False, None
        return self.last_known(key_hash)

    def last_known(self, key_hash: bytes) -> tuple[bool, ApiKey | None]:
        """get(), also while the feed is down: for when Postgres cannot be asked."""
        try:
            entry = self._entries[key_hash]
        except KeyError:
            return False, None
        self._entries.move_to_end(key_hash)
        return True, entry

    def put(self, key_hash: bytes, key: ApiKey | None, generation: int) -> None:
        """Remember an answer read while the cache was at `generation`, if still current."""
        if generation != self.generation:
            return  # a key changed while Postgres was being asked: the answer may be stale
        self._entries[key_hash] = key
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def suspend(self) -> None:
        """The feed lost track: ask Postgres from now on, keeping the entries for when it
        cannot answer. The feed clears them once it is back."""
        self.live = False
        self.generation += 1

    def clear(self) -> None:
        """Forget everything: a key changed, or the feed is back after missing changes."""
        self._entries.clear()
        self.generation += 1


async def authenticate(pool: asyncpg.Pool, cache: KeyCache, key: str) -> ApiKey | None:
    """The active key for this key text, if any."""
    key_hash = hash_key(key)
    found, api_key = cache.get(key_hash)
    if found:
        return api_key
    generation = cache.generation
    try:
        api_key = await store.find_active_key(pool, key_hash)
    except store.DATABASE_UNAVAILABLE:
        found, api_key = cache.last_known(key_hash)
        if found:
            return api_key
        raise
    cache.put(key_hash, api_key, generation)
    return api_key


F = TypeVar("F", bound=Callable[..., Any])


def requires(role: Role) -> Callable[[F], F]:
    """Mark a /v1 handler as needing at least `role` (the default is CLIENT)."""

    def mark(handler: F) -> F:
        setattr(handler, _ROLE_ATTRIBUTE, role)
        return handler

    return mark


KEY_CACHE = web.AppKey("key_cache", KeyCache)
API_KEY = web.RequestKey("api_key", ApiKey)
"""The caller's key, set by the auth middleware on every /v1 request."""


def _unauthorized(detail: str) -> Problem:
    return Problem(
        HTTPStatus.UNAUTHORIZED,
        detail,
        kind="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="callguard"'},
    )


async def authorize(request: web.Request) -> None:
    """A /v1 request needs `Authorization: Bearer <key>` of a high enough role; sets
    request[API_KEY] or raises the 401 or 403 problem. Other paths need no key."""
    match_info = request.match_info
    if not request.path.startswith("/v1/") or match_info.http_exception is not None:
        return
    header = request.headers.get("Authorization", "")
    if header[: len(_BEARER)].lower() != _BEARER:
        raise _unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    app = request.app
    api_key = await authenticate(app[POOL], app[KEY_CACHE], header[len(_BEARER) :].strip())
    if api_key is None:
        raise _unauthorized("That API key is unknown or revoked.")
    needed: Role = getattr(match_info.handler, _ROLE_ATTRIBUTE, Role.CLIENT)
    if Role.named(api_key.role) < needed:
        raise Problem(
            HTTPStatus.FORBIDDEN,
            f"This needs a key of role {needed.name.lower()}; yours is {api_key.role}.",
            kind="forbidden",
        )
    request[API_KEY] = api_key
