"""The service's configuration: one frozen dataclass built from the environment and flags.

Nothing else in the package reads os.environ.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from .reputation import Rules

REPORTER_KEY_BYTES = 32
REPORTER_KEY_FILE = "reporter.key"


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a callguard process needs to know to run."""

    database_url: str | None = None
    """A PostgreSQL URL; None starts the embedded Postgres in data_dir."""
    data_dir: Path = Path(".callguard")
    host: str = "127.0.0.1"
    port: int = 8080
    pool_min_size: int = 2
    pool_max_size: int = 10
    pool_acquire_timeout: float = 2.0
    """Seconds a request waits for a database connection before it is answered 503 with
    Retry-After: a pool busy this long is overloaded, and waiting longer only queues more."""
    max_body_bytes: int = 1 << 20
    """The largest JSON body accepted; a batch of 1000 numbers is about 20 KB."""
    body_timeout: float = 10.0
    """Seconds a JSON body may take to arrive (408 after): a slow client holds no more."""
    upload_idle_timeout: float = 30.0
    """Seconds an import upload may send nothing (408 after, nothing imported)."""
    import_min_bytes_per_second: int = 32 << 10
    """An upload must average at least this many bytes a second (as sent, gzipped or not),
    counted over the time spent waiting for it, once import_grace_seconds of waiting have
    passed (408 after, nothing imported): a client that trickles bytes holds no slot long."""
    import_grace_seconds: float = 10.0
    imports_per_key: int = 3
    """Imports one key may run at once, per replica (429 after)."""
    imports_at_once: int = 6
    """Imports one replica runs at once, whatever their keys (429 after). Imports have a
    database pool of their own of this size, so they never take the connections that
    lookups and reports need."""
    batch_limit: int = 1000
    filter_backend: str = "rbloom"
    filter_error_rate: float = 0.001
    filter_min_capacity: int = 1_000_000
    filter_headroom: float = 1.25
    """The filter is sized for max(filter_min_capacity, this x listed numbers): 10 M listed
    numbers take 22.5 MB at 0.1 %. Past its capacity it is rebuilt bigger."""
    filter_snapshots: bool = True
    """Save the filter in Postgres (after each build from the tables, after
    filter_snapshot_after numbers were added, at a clean stop), so processes start from the
    newest snapshot and the change log after it."""
    filter_snapshot_after: int = 100_000
    """Numbers added from the change log (imports count their rows) before the filter is
    saved again: a start replays at most about this many after the newest snapshot."""
    filter_check_interval: timedelta = timedelta(minutes=10)
    """How often the filter's fill and staleness are checked (and the log pruned)."""
    filter_stale_share: float = 0.25
    """Rebuild when more than this share of the filter's entries are no longer listed."""
    filter_rebuild_interval: timedelta = timedelta(hours=24)
    change_retention: timedelta = timedelta(days=7)
    """Changes older than this are pruned; a process further behind rebuilds its filter."""
    cache_size: int = 100_000
    """Listed numbers whose evidence is kept in memory (about 1 KB each)."""
    cache_max_age: timedelta = timedelta(minutes=5)
    key_cache_size: int = 10_000
    """Authorization headers of accepted keys memoised, so their check needs no hashing."""
    unknown_key_checks_per_second: float = 10.0
    """Keys the process does not hold (perhaps made a moment ago) looked up in Postgres, per
    replica; past it they are refused (401) without asking."""
    refusals_per_address_per_second: float = 1.0
    """401s answered per client address, per replica (429 after)."""
    refusal_burst_per_address: int = 30
    trusted_proxies: frozenset[str] = frozenset()
    """Peers (load balancers) whose X-Forwarded-For names the client, for the 401 limit."""
    rules: Rules = field(default_factory=Rules)
    """The verdict thresholds (README, "Verdicts")."""
    reports_per_reporter_per_day: int = 20
    reporter_key: bytes | None = field(default=None, repr=False)
    """The key of the reporters' hashes (CALLGUARD_REPORTER_KEY, hex); None reads the key
    file. Never in the database that holds the hashes."""
    reporter_key_file: Path | None = Path(".callguard") / REPORTER_KEY_FILE
    """Where the reporter key is kept when CALLGUARD_REPORTER_KEY is unset
    (CALLGUARD_REPORTER_KEY_FILE); from_env puts it in the data dir of the embedded
    Postgres. None (DATABASE_URL without this setting): the key must be given in
    CALLGUARD_REPORTER_KEY, as a file in a container's working directory would be lost."""
    report_retention: timedelta = timedelta(days=180)
    """How long a report's details (its description, occurred_at, its reporter's hash) are
    kept; then they are erased, never before the verdict window is over."""
    list_interval: timedelta = timedelta(minutes=30)
    """How often the phone lists are published (docs/lists.md), and so the least a phone
    waits between updates (minimum_wait_seconds)."""
    list_whole_interval: timedelta = timedelta(days=1)
    """How often publishing judges every candidate afresh, not only the numbers the change
    log names: verdicts that time alone changes (reports fading) reach the lists so."""
    list_retention: timedelta = timedelta(days=30)
    """Phones holding a list version this recent get a partial update; older, the list."""
    list_poll: timedelta = timedelta(seconds=10)
    """How often a process looks for list versions another process published."""
    reports_per_key_per_day: int = 200_000
    """Reports and not-scam answers one key may send a day (UTC), across its reporters and
    the replicas, unless the key has its own cap (`callguard keys create --reports-per-day`):
    a cap suited to an app's size bounds what one public key can pour into the community
    lane."""
    reports_per_key_per_second: float = 200.0
    """A key is a whole app's traffic: this is per key, per replica."""
    report_burst_per_key: int = 2000
    appeals_per_key_per_second: float = 0.5
    """Appeals filed per key, per replica: an app's users appeal rarely (a number of their
    own, listed wrongly), and every appeal is read by a person."""
    appeal_burst_per_key: int = 30
    lookups_per_key_per_second: float = 50_000.0
    """Lookup tokens per key, per replica. A number the fast path reads costs one token
    (about 2 µs of a replica's time all told, so the default is a tenth of what one replica
    serves on one core); one left to phonenumbers costs lookup_slow_cost, and a listed
    number, whose evidence is read and judged, lookup_listed_cost more. An operator's switch
    may carry tens of thousands of calls a second on one key."""
    lookup_burst_per_key: int = 100_000
    lookup_slow_cost: int = 60
    """Tokens for a number the fast path cannot read: phonenumbers takes 20-100 µs."""
    lookup_refused_cost: int = 10
    """Tokens for an item refused by its shape before phonenumbers: checking it and writing
    the refusal take 10-20 µs."""
    lookup_listed_cost: int = 20
    """Extra tokens for a number the filter cannot rule out: its evidence is read (from the
    cache or Postgres) and judged, 20-50 µs of the replica's time."""
    lookup_batches_per_key: int = 4
    """Batch lookups one key may have in progress at once, per replica (429 past it)."""
    page_lookups_per_network_per_second: float = 2.0
    """Numbers the public page looks up per client network (an IPv4 /24, an IPv6 /48), per
    replica: a person checks a few numbers; the page is not a free bulk lookup API."""
    page_lookup_burst_per_network: int = 60
    page_reports_per_network_per_hour: float = 10.0
    """Reports the public page takes per client network, per replica; the store's daily
    limit per reporter (a network is one reporter on the page) holds across replicas."""
    page_report_burst_per_network: int = 5
    page_report_work_bits: int = 16
    """The proof of work a report from the page costs: a SHA-256 with this many leading zero
    bits, about 2**bits hashes (a fraction of a second in a phone's browser)."""
    admin_sign_ins_per_network_per_minute: float = 5.0
    """Attempts to sign in to the moderators' pages per client network (an IPv4 /24, an IPv6
    /48), per replica, counted before the key is checked, so a flood of guesses costs little."""
    admin_sign_in_burst_per_network: int = 5
    import_parsers: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Processes that parse bulk imports; more than the cores gains nothing."""
    api_key: str | None = None
    """The key `callguard import` sends (CALLGUARD_KEY): from the environment, where ps and
    the shell's history do not show it."""
    import_block_bytes: int = 1 << 20
    """An import is parsed in blocks of about this many bytes, several at once."""
    import_max_bytes: int = 4 << 30
    """The most bytes one import's list may hold after gzip decompression (413 after): with
    import_max_lines, what bounds the work one import may cost."""
    import_max_lines: int = 50_000_000
    """The most lines one import may hold, the header and blank lines included (413 after)."""
    keepalive_timeout: float = 15.0
    """Seconds a connection may wait for its next request's headers to be complete (aiohttp
    counts from the connection's start or its last answer): an idle or slow-header client
    is closed after this."""
    shutdown_timeout: float = 60.0
    """On SIGTERM, how long requests in flight may take to finish; those still running then
    are cancelled (an import in flight is then rolled back), which may take as long again."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Read settings from the environment, then apply flag overrides that are not None."""
        env = os.environ if env is None else env
        settings = {name: parse(env[var]) for var, (name, parse) in _SETTINGS.items() if var in env}
        rules = {name: parse(env[var]) for var, (name, parse) in _RULES.items() if var in env}
        config = cls(
            database_url=env.get("DATABASE_URL") or None,
            rules=replace(Rules(), **rules),
            **settings,
        )
        given = {name: value for name, value in overrides.items() if value is not None}
        config = replace(config, **given)
        if "CALLGUARD_REPORTER_KEY_FILE" not in env:
            key_file = None if config.database_url else config.data_dir / REPORTER_KEY_FILE
            config = replace(config, reporter_key_file=key_file)
        return config


def parse_reporter_key(text: str) -> bytes:
    """A reporter key as written in CALLGUARD_REPORTER_KEY or the key file: hex, at least
    REPORTER_KEY_BYTES bytes."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("a reporter key must be written in hex") from None
    if len(key) < REPORTER_KEY_BYTES:
        raise ValueError(f"a reporter key must be at least {REPORTER_KEY_BYTES} bytes")
    return key


_SETTINGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "CALLGUARD_DATA_DIR": ("data_dir", Path),
    "CALLGUARD_FILTER_BACKEND": ("filter_backend", str),
    "CALLGUARD_FILTER_SNAPSHOT_AFTER": ("filter_snapshot_after", int),
    "CALLGUARD_REPORTS_PER_REPORTER_PER_DAY": ("reports_per_reporter_per_day", int),
    "CALLGUARD_REPORTS_PER_KEY_PER_DAY": ("reports_per_key_per_day", int),
    "CALLGUARD_LIST_INTERVAL_SECONDS": (
        "list_interval",
        lambda text: timedelta(seconds=float(text)),
    ),
    "CALLGUARD_LIST_RETENTION_DAYS": ("list_retention", lambda text: timedelta(days=float(text))),
    "CALLGUARD_REPORTER_KEY": ("reporter_key", parse_reporter_key),
    "CALLGUARD_REPORTER_KEY_FILE": ("reporter_key_file", Path),
    "CALLGUARD_REPORT_RETENTION_DAYS": (
        "report_retention",
        lambda text: timedelta(days=float(text)),
    ),
    "CALLGUARD_LOOKUPS_PER_KEY_PER_SECOND": ("lookups_per_key_per_second", float),
    "CALLGUARD_LOOKUP_BURST_PER_KEY": ("lookup_burst_per_key", int),
    "CALLGUARD_LOOKUP_BATCHES_PER_KEY": ("lookup_batches_per_key", int),
    "CALLGUARD_APPEALS_PER_KEY_PER_SECOND": ("appeals_per_key_per_second", float),
    "CALLGUARD_IMPORT_PARSERS": ("import_parsers", int),
    "CALLGUARD_PAGE_LOOKUPS_PER_NETWORK_PER_SECOND": (
        "page_lookups_per_network_per_second",
        float,
    ),
    "CALLGUARD_PAGE_REPORTS_PER_NETWORK_PER_HOUR": ("page_reports_per_network_per_hour", float),
    "CALLGUARD_PAGE_REPORT_WORK_BITS": ("page_report_work_bits", int),
    "CALLGUARD_ADMIN_SIGN_INS_PER_NETWORK_PER_MINUTE": (
        "admin_sign_ins_per_network_per_minute",
        float,
    ),
    "CALLGUARD_KEY": ("api_key", str),
    "CALLGUARD_IMPORT_MAX_BYTES": ("import_max_bytes", int),
    "CALLGUARD_IMPORT_MAX_LINES": ("import_max_lines", int),
    "CALLGUARD_IMPORT_MIN_BYTES_PER_SECOND": ("import_min_bytes_per_second", int),
    "CALLGUARD_IMPORTS_PER_KEY": ("imports_per_key", int),
    "CALLGUARD_IMPORTS_AT_ONCE": ("imports_at_once", int),
    "CALLGUARD_POOL_ACQUIRE_TIMEOUT": ("pool_acquire_timeout", float),
    "CALLGUARD_KEEPALIVE_TIMEOUT": ("keepalive_timeout", float),
    "CALLGUARD_UNKNOWN_KEY_CHECKS_PER_SECOND": ("unknown_key_checks_per_second", float),
    "CALLGUARD_REFUSALS_PER_ADDRESS_PER_SECOND": ("refusals_per_address_per_second", float),
    "CALLGUARD_REFUSAL_BURST_PER_ADDRESS": ("refusal_burst_per_address", int),
    "CALLGUARD_TRUSTED_PROXIES": (
        "trusted_proxies",
        lambda text: frozenset(part.strip() for part in text.split(",") if part.strip()),
    ),
    "CALLGUARD_SHUTDOWN_TIMEOUT": ("shutdown_timeout", float),
}
"""Environment variables: the Config field each sets, and how its text is read."""
_RULES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "CALLGUARD_SCAM_REPORTERS": ("scam_reporters", int),
    "CALLGUARD_WINDOW_DAYS": ("window", lambda text: timedelta(days=float(text))),
}
"""The same for the verdict rules (Config.rules)."""
