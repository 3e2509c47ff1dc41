"""What the public pages hold for a process: the key their reports go in under, the report
form's challenges, and the limits per client network."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from .. import store
from ..auth import KEY_CACHE, Role, Trust
from ..limits import NetworkBuckets
from ..reporters import REPORTER_KEY
from ..state import CONFIG, POOL
from .proof import Challenges

PAGE_KEY_NAME: Final = "public page"
PAGE_KEY_HASH: Final = bytes(32)
"""The public page's key row: a hash no key has (SHA-256 has no known preimage of zeros),
so nobody can send requests as it. Revoking it (`callguard keys revoke ID`) turns reports
from the page off, at once in every process."""
MAX_NETWORKS: Final = 262_144
"""Client networks whose page limits are held at once (about 40 MB at most)."""


@dataclass(frozen=True, slots=True)
class Site:
    """The public pages' state in one process."""

    key: store.keys.ApiKey
    """The community key reports from the page go in under (whether it is still active:
    reports_open())."""
    challenges: Challenges
    lookups: NetworkBuckets
    reports: NetworkBuckets


SITE = web.AppKey("site", Site)


def derived_secret(reporter_key: bytes, purpose: str) -> bytes:
    """A secret for one purpose, derived from the reporter key that every replica shares
    (reporters.py) and that is kept out of the database."""
    return hmac.digest(reporter_key, f"callguard {purpose}".encode("ascii"), hashlib.sha256)


async def reports_open(app: web.Application) -> bool:
    """Whether the page's key is active now. The key cache knows it in the common case (no
    round trip); else it was revoked, or made a moment ago with its notification still on
    the way, or the change feed is down, and Postgres says. Without Postgres, no report
    could be stored: closed."""
    keys = app[KEY_CACHE]
    if keys.live and keys.known(PAGE_KEY_HASH) is not None:
        return True
    try:
        return await store.keys.find_active(app[POOL], PAGE_KEY_HASH) is not None
    except store.database.DATABASE_UNAVAILABLE:
        return False


async def site(app: web.Application) -> AsyncIterator[None]:
    """The page key (made on first start), the challenges and the per-network limits."""
    config = app[CONFIG]
    key = await store.keys.ensure(
        app[POOL], PAGE_KEY_NAME, Role.CLIENT.name.lower(), PAGE_KEY_HASH, Trust.COMMUNITY
    )
    app[SITE] = Site(
        key=key,
        challenges=Challenges(
            derived_secret(app[REPORTER_KEY], "report challenges"), config.page_report_work_bits
        ),
        lookups=NetworkBuckets(
            config.page_lookups_per_network_per_second,
            config.page_lookup_burst_per_network,
            MAX_NETWORKS,
            v4_prefix=24,
            v6_prefix=48,
        ),
        reports=NetworkBuckets(
            config.page_reports_per_network_per_hour / 3600,
            config.page_report_burst_per_network,
            MAX_NETWORKS,
            v4_prefix=24,
            v6_prefix=48,
        ),
    )
    yield
