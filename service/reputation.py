"""The verdict rules: pure functions from what is known of a number, and the time, to a verdict.

No I/O and no clock reads: `now` is always a parameter, so the time rules are testable.
The rules are documented in the README ("Verdicts").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Verdict(StrEnum):
    """What a lookup tells the person being called."""

    UNKNOWN = "unknown"
    SUSPICIOUS = "suspicious"
    SCAM = "scam"
    VERIFIED = "verified"


@dataclass(frozen=True, slots=True)
class Rules:
    """The thresholds; these defaults are the documented ones."""

    window: timedelta = timedelta(days=90)
    """Reporters count while their last report is this recent; older listings expire."""
    scam_reporters: int = 3
    """Distinct reporters within the window that make a number a scam."""
    points_per_reporter: int = 30
    community_cap: int = 90
    half_life: timedelta = timedelta(days=30)
    """The community part of the score halves for every this long without a new report."""
    trusted_points: int = 70


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything stored about a number that bears on its verdict."""

    number: int
    known: bool = False
    """Whether anything is stored about the number: a Bloom filter "maybe" for a number that
    is not known was a false positive; one for a known number whose verdict is unknown
    (expired, delisted) is a stale entry."""
    allowlisted_owner: str | None = None
    trusted_sources: tuple[str, ...] = ()
    recent_reporters: int = 0
    """Distinct reporters whose last report is within the window and after any delisting."""
    oldest_recent_report: datetime | None = None
    """The oldest of those reporters' last reports: when it leaves the window, the count of
    recent reporters drops, so evidence read before then holds until then."""
    report_count: int = 0
    """Reports since the last delisting."""
    categories: tuple[str, ...] = ()
    first_reported_at: datetime | None = None
    last_reported_at: datetime | None = None
    """Of the reports since the last delisting."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict with its 0-100 score."""

    verdict: Verdict
    score: int


UNKNOWN = Judgement(Verdict.UNKNOWN, 0)


def window_start(now: datetime, rules: Rules) -> datetime:
    """Reports last made before this moment no longer count."""
    return now - rules.window


def judge(evidence: Evidence, now: datetime, rules: Rules) -> Judgement:
    """The verdict on a number and its score, as of `now`."""
    if evidence.allowlisted_owner is not None:
        return Judgement(Verdict.VERIFIED, 0)
    community = _community_points(evidence, now, rules)
    trusted = rules.trusted_points if evidence.trusted_sources else 0
    score = min(100, round(trusted + community))
    if evidence.trusted_sources or evidence.recent_reporters >= rules.scam_reporters:
        return Judgement(Verdict.SCAM, max(score, 1))
    if evidence.recent_reporters > 0:
        return Judgement(Verdict.SUSPICIOUS, max(score, 1))
    return UNKNOWN


def _community_points(evidence: Evidence, now: datetime, rules: Rules) -> float:
    if evidence.recent_reporters == 0 or evidence.last_reported_at is None:
        return 0.0
    points = min(rules.community_cap, rules.points_per_reporter * evidence.recent_reporters)
    age = max(timedelta(0), now - evidence.last_reported_at)
    decay: float = 0.5 ** (age / rules.half_life)
    return points * decay
