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

from service.reputation import Rules


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
    max_body_bytes: int = 1 << 20
    """The largest JSON body accepted; a batch of 1000 numbers is about 20 KB."""
    body_timeout: float = 10.0
    """Seconds a JSON body may take to arrive (408 after): a slow client holds no more."""
    upload_idle_timeout: float = 30.0
    """Seconds an import upload may send nothing (408 after, nothing imported)."""
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
    reports_per_key_per_second: float = 200.0
    """A key is a whole app's traffic: this is per key, per replica."""
    report_burst_per_key: int = 2000
    appeals_per_key_per_second: float = 0.5
    """Appeals filed per key, per replica: an app's users appeal rarely (a number of their
    own, listed wrongly), and every appeal is read by a person."""
    appeal_burst_per_key: int = 30
    lookups_per_key_per_second: float = 50_000.0
    """Numbers looked up (a batch counts each), per key, per replica: an operator's switch
    may carry tens of thousands of calls a second on one key."""
    lookup_burst_per_key: int = 100_000
    import_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
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
        return replace(config, **given)


_SETTINGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "CALLGUARD_DATA_DIR": ("data_dir", Path),
    "CALLGUARD_FILTER_BACKEND": ("filter_backend", str),
    "CALLGUARD_FILTER_SNAPSHOT_AFTER": ("filter_snapshot_after", int),
    "CALLGUARD_REPORTS_PER_REPORTER_PER_DAY": ("reports_per_reporter_per_day", int),
    "CALLGUARD_LOOKUPS_PER_KEY_PER_SECOND": ("lookups_per_key_per_second", float),
    "CALLGUARD_APPEALS_PER_KEY_PER_SECOND": ("appeals_per_key_per_second", float),
    "CALLGUARD_IMPORT_WORKERS": ("import_workers", int),
    "CALLGUARD_KEY": ("api_key", str),
    "CALLGUARD_IMPORT_MAX_BYTES": ("import_max_bytes", int),
    "CALLGUARD_IMPORT_MAX_LINES": ("import_max_lines", int),
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
