"""The verdict rules for now: any report makes a number suspicious; more reporters, more score."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from service.reputation import Verdict, judge
from service.store import Listing

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def listing(reports: int, reporters: int) -> Listing:
    return Listing(84912345678, reports, reporters, ("other",), NOW, NOW)


def test_never_reported_is_unknown_with_no_score() -> None:
    assert (judge(None).verdict, judge(None).score) == (Verdict.UNKNOWN, 0)


@given(st.integers(1, 10_000), st.integers(1, 10_000))
def test_reported_is_suspicious_with_a_bounded_score(reports: int, reporters: int) -> None:
    judgement = judge(listing(max(reports, reporters), reporters))
    assert judgement.verdict is Verdict.SUSPICIOUS
    assert 0 < judgement.score <= 100


@given(st.integers(1, 50))
def test_more_reporters_never_lower_the_score(reporters: int) -> None:
    assert judge(listing(50, reporters + 1)).score >= judge(listing(50, reporters)).score
