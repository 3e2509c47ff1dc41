"""API keys: making and hashing them, roles, the keys in memory, authorizing a request.

Every active key's hash is held in memory (keys are few), loaded when the change feed
connects and kept current by its notifications. A bounded memo of the Authorization headers
of recently accepted keys makes a known key's check one dict lookup, with no parsing or
hashing (the header text, key and all, stays in this process's memory, as the request that
brought it did). A key the memory does not hold may have been made a moment ago, so it is
looked up in Postgres, but at a bounded rate per process (past it, 401 at once): a flood of
unknown keys costs Postgres no more than that, and pushes no valid key out. While the feed
is down the memory may miss a revocation, so a key it holds is checked against Postgres on
every request; if Postgres cannot answer (an outage), a key the memory holds is accepted
anyway, so lookups go on answering from the filter (a key revoked while the feed was down
could then be honoured until Postgres is back). Refusals (401) are limited per client
address.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from enum import IntEnum, StrEnum
from http import HTTPStatus
from typing import Any, NamedTuple, TypeVar

import asyncpg
from aiohttp import web

from . import store
from .limits import NetworkBuckets, TokenBuckets
from .problems import Problem, too_many_requests
from .state import CONFIG, POOL

KEY_PREFIX = "cg_"
_BEARER = "bearer "
_ROLE_ATTRIBUTE = "__callguard_role__"
MAX_REFUSED_ADDRESSES = 65_536
"""Client addresses whose 401s are counted at once (about 10 MB at most)."""


class Role(IntEnum):
    """Roles nest: each of client, operator and admin may do everything the ones below it
    may. Metrics stands apart, below them all: it reads /metrics (as admin may) and nothing
    else, so the key Prometheus holds can neither look numbers up nor report them."""

    METRICS = 0
    """Read /metrics only: the monitoring system."""
    CLIENT = 1
    """Look numbers up and report them: a phone app."""
    OPERATOR = 2
    """Also import lists: a telecom operator or police unit."""
    ADMIN = 3
    """Also moderate and read /metrics: callguard's own staff."""

    @classmethod
    def named(cls, name: str) -> Role:
        return cls[name.upper()]


class Trust(StrEnum):
    """Whether a key may vouch for its users' own phone numbers (docs/verdicts.md)."""

    COMMUNITY = "community"
    """Its reporters are ids the app made up: their words are community-lane."""
    ATTESTING = "attesting"
    """The app verified its users' phone numbers (OTP, the operator's own network) and may
    send them as `reporter_phone`: those words are verified-lane."""


TRUSTS = [trust.value for trust in Trust]


RESERVED_SOURCE_PREFIX = "admin:"
"""Sources that begin so (in any case) are the moderators' own: no key imports under them."""


def reserved_source(source: str) -> bool:
    """Whether a source is reserved for moderation, so no import or operator key may use it."""
    return source.casefold().startswith(RESERVED_SOURCE_PREFIX)


MODERATOR_LABEL = "moderator"
"""How clients see a listing an admin made: the admin's key name stays in the audit log."""


def shown_sources(sources: Sequence[str]) -> list[str]:
    """Trusted sources as clients see them: moderators' listings under one neutral label."""
    return list(
        dict.fromkeys(MODERATOR_LABEL if reserved_source(source) else source for source in sources)
    )


def check_import_source(api_key: store.keys.ApiKey, source: str) -> None:
    """Raise the 403 problem unless the key may import under the source: an operator key
    under its own sources, an admin key under any but the reserved ones."""
    if reserved_source(source):
        detail = f"Sources beginning {RESERVED_SOURCE_PREFIX!r} are reserved for moderators."
    elif api_key.role == Role.ADMIN.name.lower() or source in api_key.sources:
        return
    elif api_key.sources:
        detail = f"This key may import under {', '.join(map(repr, api_key.sources))} only."
    else:
        detail = "This key may import under no source yet: `callguard keys sources` gives it some."
    raise Problem(HTTPStatus.FORBIDDEN, detail, kind="source-forbidden", source=source)


def check_can_vouch(api_key: store.keys.ApiKey) -> None:
    """Raise the 403 problem unless the key may vouch for its users' phone numbers."""
    if api_key.trust != Trust.ATTESTING:
        raise Problem(
            HTTPStatus.FORBIDDEN,
            "This key is a community key: it cannot vouch for a reporter's phone number. Send "
            "the report without reporter_phone, or have an admin make the key attesting "
            "(`callguard keys trust`) once its app verifies its users' phones.",
            kind="cannot-vouch",
        )


def new_key() -> str:
    """A fresh API key: 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    """The stored form of a key. Keys are random, so a plain hash is enough."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class Caller(NamedTuple):
    """An active key and its role, as the cache holds them."""

    key: store.keys.ApiKey
    role: Role


class KeyCache:
    """Every active key by its hash, as of the change feed's last word, and a memo of the
    Authorization headers that carried one lately."""

    def __init__(self, memo_size: int, unknown_checks: TokenBuckets) -> None:
        self.memo_size = memo_size
        self.live = False
        """True while the change feed listens and the keys are loaded: the keys held are
        then active, and Postgres is not asked about them."""
        self.reload_needed = False
        """A key was made or its sources changed: the feed is to load the keys again."""
        self.generation = 0
        """Counts every change to the keys held: loads, revocations, suspensions."""
        self.revocations = 0
        """Counts the changes that may make an active key read earlier stale: revocations
        (and a key Postgres no longer has) and suspensions."""
        self._unknown_checks = unknown_checks
        self._keys: dict[bytes, Caller] = {}
        self._memo: dict[str, Caller] = {}

    def load(self, keys: dict[bytes, store.keys.ApiKey]) -> None:
        """Hold exactly these active keys (from the feed's connection, once it listens)."""
        self._keys = {key_hash: _caller(key) for key_hash, key in keys.items()}
        self._memo.clear()
        self.generation += 1
        self.live = True

    def remembered(self, header: str) -> Caller | None:
        """The caller this header brought lately, while the memory is the whole truth."""
        return self._memo.get(header) if self.live else None

    def known(self, key_hash: bytes) -> Caller | None:
        """The active key with this hash, as far as the memory knows."""
        return self._keys.get(key_hash)

    def remember(self, header: str, caller: Caller) -> None:
        """Memo an accepted header; the oldest goes when the memo is full. Only accepted
        ones: refusals cost no more than a hash, and cannot push the accepted ones out."""
        self._memo[header] = caller
        if len(self._memo) > self.memo_size:
            del self._memo[next(iter(self._memo))]

    def may_check_unknown(self) -> bool:
        """Whether a key the memory does not hold may be looked up in Postgres now (it may
        be new): at a bounded rate, so a flood of unknown keys costs Postgres no more than
        that, and a key made a moment ago works at once unless there is such a flood (then
        a few milliseconds later, when its notification arrives)."""
        return self._unknown_checks.take(0) == 0.0

    def checked(
        self, key_hash: bytes, caller: Caller | None, generation: int, revocations: int
    ) -> None:
        """Apply what Postgres said of a key, read while the memory was at `generation` and
        `revocations`."""
        if revocations != self.revocations:
            return  # a key was revoked while Postgres was being asked: it may be this one
        if caller is not None:
            if generation == self.generation:
                self._keys[key_hash] = caller
            else:
                # A load since the read: its copy of the key, if it has one, is the newer
                # (sources, trust); if it has none, the key was made after the load's read.
                self._keys.setdefault(key_hash, caller)
            return
        if generation != self.generation:
            return  # a load since the read may hold the key, made a moment ago
        gone = self._keys.get(key_hash)
        if gone is not None:
            self._forget(lambda known: known.key.id == gone.key.id)

    def suspend(self) -> None:
        """The feed lost track: check keys against Postgres from now on, keeping the memory
        for when it cannot answer. The feed loads the keys again once it is back."""
        self.live = False
        self.generation += 1
        self.revocations += 1

    def key_changed(self, change: str) -> bool:
        """Apply one key change from the feed (store.keys.CHANNEL's payload); True when the
        keys are to be loaded again (a new key, or new sources: the payload has the key's id,
        not its hash). A revocation takes effect here, at once."""
        action, _, key_id = change.partition(" ")
        if action == store.keys.REVOKED:
            revoked = int(key_id)
            self._forget(lambda caller: caller.key.id == revoked)
            return False
        self.reload_needed = True
        return True

    def _forget(self, which: Callable[[Caller], bool]) -> None:
        self._keys = {
            key_hash: caller for key_hash, caller in self._keys.items() if not which(caller)
        }
        self._memo = {header: caller for header, caller in self._memo.items() if not which(caller)}
        # An answer being read now may predate the change.
        self.generation += 1
        self.revocations += 1


def _caller(key: store.keys.ApiKey) -> Caller:
    return Caller(key, Role.named(key.role))


async def authenticate(pool: asyncpg.Pool, keys: KeyCache, header: str) -> Caller | None:
    """The active key an Authorization header carries, if any; raises the 401 problem for a
    header that is not `Bearer <key>`."""
    caller = keys.remembered(header)
    if caller is not None:
        return caller
    if header[: len(_BEARER)].lower() != _BEARER:
        raise _unauthorized("Send your API key as 'Authorization: Bearer <key>'.")
    key_hash = hash_key(header[len(_BEARER) :].strip())
    caller = keys.known(key_hash)
    if caller is not None and keys.live:
        keys.remember(header, caller)
        return caller
    # Postgres is asked only about a key the memory may be wrong about: one it holds while
    # the feed is down (revoked meanwhile?), or, at a bounded rate, one it does not (made a
    # moment ago, its notification still on the way?).
    if caller is None and not keys.may_check_unknown():
        return None
    generation, revocations = keys.generation, keys.revocations
    try:
        api_key = await store.keys.find_active(pool, key_hash)
    except store.database.DATABASE_UNAVAILABLE:
        if caller is not None:
            return caller
        raise
    caller = None if api_key is None else _caller(api_key)
    keys.checked(key_hash, caller, generation, revocations)
    return caller


def client_address(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    """The client's address: the connection's peer, unless the peer is a trusted proxy;
    then the address that proxy appended to X-Forwarded-For (the last one), which only it
    could have written."""
    peer = request.remote or ""
    if peer in trusted_proxies:
        forwarded = request.headers.getall("X-Forwarded-For", [])
        if forwarded:
            return forwarded[-1].rsplit(",", 1)[-1].strip()
    return peer


F = TypeVar("F", bound=Callable[..., Any])


def requires(role: Role) -> Callable[[F], F]:
    """Mark a handler as needing a key of at least `role` (unmarked ones need CLIENT)."""

    def mark(handler: F) -> F:
        setattr(handler, _ROLE_ATTRIBUTE, role)
        return handler

    return mark


def requires_one_of(*roles: Role) -> Callable[[F], F]:
    """Mark a handler as needing a key of exactly one of `roles` (no nesting)."""

    def mark(handler: F) -> F:
        setattr(handler, _ROLE_ATTRIBUTE, frozenset(roles))
        return handler

    return mark


def public(handler: F) -> F:
    """Mark a handler as open without a key: health, the API's description."""
    setattr(handler, _ROLE_ATTRIBUTE, None)
    return handler


def role_needed(handler: object) -> Role | frozenset[Role] | None:
    """The role a handler is marked with: at least a Role, exactly one of a set of roles, or
    None for a public one; CLIENT if unmarked. What authorize() checks, and openapi.py says."""
    needed: Role | frozenset[Role] | None = getattr(handler, _ROLE_ATTRIBUTE, Role.CLIENT)
    return needed


KEY_CACHE = web.AppKey("key_cache", KeyCache)
REFUSAL_LIMITS = web.AppKey("refusal_limits", NetworkBuckets)
"""401s counted per client address (an IPv6 client by its /64)."""
API_KEY = web.RequestKey("api_key", store.keys.ApiKey)
"""The caller's key, set by authorize() on every request to a route that needs one."""


def _count_refusal(request: web.Request) -> None:
    """Raise 429 instead of the 401 once the client's address has had its share."""
    address = client_address(request, request.app[CONFIG].trusted_proxies)
    wait = request.app[REFUSAL_LIMITS].take(address)
    if wait:
        rate = request.app[CONFIG].refusals_per_address_per_second
        raise too_many_requests(
            f"Too many requests with a missing or unknown key from your address; "
            f"{rate:g} a second are answered.",
            wait,
        )


def _forbidden(detail: str) -> Problem:
    return Problem(HTTPStatus.FORBIDDEN, detail, kind="forbidden")


def _unauthorized(detail: str) -> Problem:
    return Problem(
        HTTPStatus.UNAUTHORIZED,
        detail,
        kind="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="callguard"'},
    )


async def authorize(request: web.Request) -> store.keys.ApiKey | None:
    """Check the caller's `Authorization: Bearer <key>` against the route's role (public, or
    CLIENT unless marked); sets request[API_KEY] and returns the key (None on a public route
    or one that does not exist), or raises the 401 or 403 problem."""
    match_info = request.match_info
    # role_needed(), inline: a function call more would cost every lookup ~80 ns.
    needed: Role | frozenset[Role] | None = getattr(
        match_info.handler, _ROLE_ATTRIBUTE, Role.CLIENT
    )
    if needed is None or match_info.http_exception is not None:
        return None
    app = request.app
    try:
        caller = await authenticate(
            app[POOL], app[KEY_CACHE], request.headers.get("Authorization", "")
        )
        if caller is None:
            raise _unauthorized("That API key is unknown or revoked.")
    except Problem:
        _count_refusal(request)
        raise
    if isinstance(needed, frozenset):
        if caller.role not in needed:
            names = " or ".join(sorted(role.name.lower() for role in needed))
            raise _forbidden(f"This needs a key of role {names}; yours is {caller.key.role}.")
    elif caller.role < needed:
        raise _forbidden(
            f"This needs a key of role {needed.name.lower()}; yours is {caller.key.role}."
        )
    request[API_KEY] = caller.key
    return caller.key
