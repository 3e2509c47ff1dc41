"""The clock verdicts and records are judged by: a function, so tests can pass their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

Clock = Callable[[], datetime]
VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
"""Where the users live (UTC+7, no daylight saving time): report days, trend weeks, and
import times written without an offset are Vietnam's."""


def utc_now() -> datetime:
    """The real clock; tests pass their own."""
    return datetime.now(UTC)
