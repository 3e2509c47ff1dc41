"""API keys: making and hashing them, roles, the per-process key cache, authorizing a request.

A lookup must not cost a database round trip for its key, so verified keys are cached in
process, by the Authorization header as sent: a lookup's key check is one dict lookup, with
no parsing or hashing (the header text, key and all, stays in this process's memory, as the
request that brought it did). The cache is trusted only while the change feed listens: every
key change NOTIFYs, and the feed makes the cache forget what the change touched (a revoked
key; for a new key, the refusals); while the feed is down every request asks Postgres. If
Postgres cannot answer either (an outage), a key the cache knew is accepted anyway, so
lookups go on answering from the filter; a key revoked while the feed was down could then be
honoured until Postgres is back.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from enum import IntEnum
from http import HTTPStatus
from typing import Any, NamedTuple, TypeVar

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


class Caller(NamedTuple):
    """An active key and its role, as the cache holds them."""

    key: ApiKey
    role: Role


class KeyCache:
    """Recent answers to "whose active key does this Authorization header carry?", negative
    ones included: by the header as sent, so a cached lookup neither parses nor hashes it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.live = False
        """True while the change feed listens; until then nothing is cached."""
        self.generation = 0
        self._entries: dict[str, Caller | None] = {}

    def get(self, header: str) -> tuple[bool, Caller | None]:
        """(found, caller): found is False when Postgres must be asked."""
        if not self.live:
            return False, None
        return self.last_known(header)

    def last_known(self, header: str) -> tuple[bool, Caller | None]:
        """get(), also while the feed is down: for when Postgres cannot be asked."""
        try:
            return True, self._entries[header]
        except KeyError:
            return False, None

    def put(self, header: str, caller: Caller | None, generation: int) -> None:
        """Remember an answer read while the cache was at `generation`, if still current;
        the oldest answer goes when the cache is full."""
        if generation != self.generation:
            return  # a key changed while Postgres was being asked: the answer may be stale
        self._entries[header] = caller
        if len(self._entries) > self.size:
            del self._entries[next(iter(self._entries))]

    def suspend(self) -> None:
        """The feed lost track: ask Postgres from now on, keeping the entries for when it
        cannot answer. The feed clears them once it is back."""
        self.live = False
        self.generation += 1

    def clear(self) -> None:
        """Forget everything: the feed is back after missing changes."""
        self._entries.clear()
        self.generation += 1

    def key_changed(self, change: str) -> None:
        """Apply one key change from the feed (store.KEYS_CHANNEL's payload): a revocation
        forgets that one key; a new key forgets only the refusals, as one of them may have
        been its header. Every other key stays cached, so a key made during the day does not
        leave the clients that were served before it unserved through a later outage."""
        action, _, key_id = change.partition(" ")
        if action == store.KEY_REVOKED:
            revoked = int(key_id)
            self._forget(lambda caller: caller is not None and caller.key.id == revoked)
        else:
            self._forget(lambda caller: caller is None)

    def _forget(self, which: Callable[[Caller | None], bool]) -> None:
        self._entries = {
            header: caller for header, caller in self._entries.items() if not which(caller)
        }
        self.generation += 1  # an answer being read now may predate the change


async def authenticate(pool: asyncpg.Pool, cache: KeyCache, header: str) -> Caller | None:
    """The active key an Authorization header carries, if any; raises the 401 problem for a
    header that is not `Bearer <key>`."""
    found, caller = cache.get(header)
    if found:
        return caller
    if header[: len(_BEARER)].lower() != _BEARER:
        raise _unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    key_hash = hash_key(header[len(_BEARER) :].strip())
    generation = cache.generation
    try:
        api_key = await store.find_active_key(pool, key_hash)
    except store.DATABASE_UNAVAILABLE:
        found, caller = cache.last_known(header)
        if found:
            return caller
        raise
    caller = None if api_key is None else Caller(api_key, Role.named(api_key.role))
    cache.put(header, caller, generation)
    return caller


F = TypeVar("F", bound=Callable[..., Any])


def requires(role: Role) -> Callable[[F], F]:
    """Mark a handler as needing a key of at least `role` (unmarked ones need CLIENT)."""

    def mark(handler: F) -> F:
        setattr(handler, _ROLE_ATTRIBUTE, role)
        return handler

    return mark


def public(handler: F) -> F:
    """Mark a handler as open without a key: health, metrics, the API's description."""
    setattr(handler, _ROLE_ATTRIBUTE, None)
    return handler


KEY_CACHE = web.AppKey("key_cache", KeyCache)
API_KEY = web.RequestKey("api_key", ApiKey)
"""The caller's key, set by authorize() on every request to a route that needs one."""


def _unauthorized(detail: str) -> Problem:
    return Problem(
        HTTPStatus.UNAUTHORIZED,
        detail,
        kind="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="callguard"'},
    )


async def authorize(request: web.Request) -> ApiKey | None:
    """Check the caller's `Authorization: Bearer <key>` against the route's role (public, or
    CLIENT unless marked); sets request[API_KEY] and returns the key (None on a public route
    or one that does not exist), or raises the 401 or 403 problem."""
    match_info = request.match_info
    needed: Role | None = getattr(match_info.handler, _ROLE_ATTRIBUTE, Role.CLIENT)
    if needed is None or match_info.http_exception is not None:
        return None
    app = request.app
    caller = await authenticate(app[POOL], app[KEY_CACHE], request.headers.get("Authorization", ""))
    if caller is None:
        raise _unauthorized("That API key is unknown or revoked.")
    if caller.role < needed:
        raise Problem(
            HTTPStatus.FORBIDDEN,
            f"This needs a key of role {needed.name.lower()}; yours is {caller.key.role}.",
            kind="forbidden",
        )
    request[API_KEY] = caller.key
    return caller.key
