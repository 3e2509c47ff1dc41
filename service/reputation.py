"""The verdict rules: pure functions from what is known of a number to a verdict and a score.

No I/O and no clock reads. For now one report or more makes a number suspicious; the
score rises with the number of distinct reporters.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from service.store import Listing


class Verdict(StrEnum):
    """What a lookup tells the person being called."""

    UNKNOWN = "unknown"
    SUSPICIOUS = "suspicious"
    SCAM = "scam"
    VERIFIED = "verified"


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict with its 0-100 score."""

    verdict: Verdict
    score: int


UNKNOWN = Judgement(Verdict.UNKNOWN, 0)
POINTS_PER_REPORTER = 20
"""Each distinct reporter adds this much to the score, up to 100."""


def judge(listing: Listing | None) -> Judgement:
    """The verdict on a number given its listing (None: never reported)."""
    if listing is None or listing.report_count == 0:
        return UNKNOWN
    score = min(100, POINTS_PER_REPORTER * max(1, listing.reporter_count))
    return Judgement(Verdict.SUSPICIOUS, score)
