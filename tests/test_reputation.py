"""The verdict rules as pure functions: evidence and a time in, a verdict and score out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callguard.reputation import Evidence, Rules, Verdict, judge, window_start
from hypothesis import given
from hypothesis import strategies as st

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RULES = Rules()


def community(reporters: int, last_report_days_ago: float = 0) -> Evidence:
    last = NOW - timedelta(days=last_report_days_ago)
    return Evidence(
        84912345678,
        known=True,
        recent_reporters=reporters,
        report_count=max(1, reporters),
        categories=("online_loan",),
        first_reported_at=last,
        last_reported_at=last,
    )


def test_nothing_known_is_unknown_with_no_score() -> None:
    judgement = judge(Evidence(84912345678), NOW, RULES)
    assert (judgement.verdict, judgement.score) == (Verdict.UNKNOWN, 0)


def test_one_or_two_reporters_are_suspicious_three_are_a_scam() -> None:
    verdicts = [judge(community(n), NOW, RULES).verdict for n in range(5)]
    assert verdicts == [
        Verdict.UNKNOWN, Verdict.SUSPICIOUS, Verdict.SUSPICIOUS, Verdict.SCAM, Verdict.SCAM,
    ]  # fmt: skip


def test_the_scam_threshold_is_configurable() -> None:
    strict = Rules(scam_reporters=5)
    assert judge(community(4), NOW, strict).verdict is Verdict.SUSPICIOUS
    assert judge(community(5), NOW, strict).verdict is Verdict.SCAM


def test_a_trusted_listing_is_a_scam_on_its_own_and_never_decays() -> None:
    trusted = Evidence(84912345678, known=True, trusted_sources=("viettel",))
    for days in (0, 90, 1000):
        judgement = judge(trusted, NOW + timedelta(days=days), RULES)
        assert (judgement.verdict, judgement.score) == (Verdict.SCAM, RULES.trusted_points)


def test_the_allowlist_wins_over_everything() -> None:
    evidence = Evidence(
        842513685134,
        known=True,
        allowlisted_owner="Công an tỉnh Đồng Nai",
        trusted_sources=("import",),
        recent_reporters=50,
        report_count=80,
        last_reported_at=NOW,
    )
    assert judge(evidence, NOW, RULES).verdict is Verdict.VERIFIED


def test_the_score_table_in_the_readme() -> None:
    # README "Verdicts": 30 a reporter up to 90, halving every 30 days; +70 if trusted.
    assert judge(community(1), NOW, RULES).score == 30
    assert judge(community(3), NOW, RULES).score == 90
    assert judge(community(5), NOW, RULES).score == 90
    assert judge(community(3, last_report_days_ago=30), NOW, RULES).score == 45
    assert judge(community(2, last_report_days_ago=60), NOW, RULES).score == 15
    both = Evidence(1, known=True, trusted_sources=("a",), recent_reporters=1, last_reported_at=NOW)
    assert judge(both, NOW, RULES).score == 100


def test_the_window_starts_90_days_back() -> None:
    assert window_start(NOW, RULES) == NOW - timedelta(days=90)


@given(st.integers(0, 10_000), st.floats(0, 89.9), st.booleans())
def test_scores_are_bounded_and_listed_numbers_score_above_zero(
    reporters: int, days: float, trusted: bool
) -> None:
    evidence = Evidence(
        1,
        known=True,
        trusted_sources=("a",) if trusted else (),
        recent_reporters=reporters,
        report_count=reporters,
        last_reported_at=NOW - timedelta(days=days),
    )
    judgement = judge(evidence, NOW, RULES)
    assert 0 <= judgement.score <= 100
    listed = judgement.verdict in (Verdict.SUSPICIOUS, Verdict.SCAM)
    assert listed == (trusted or reporters > 0)
    assert (judgement.score > 0) == listed


@given(st.integers(1, 100), st.floats(0, 89), st.floats(0, 89))
def test_more_reporters_score_more_and_time_only_lowers_the_score(
    reporters: int, days: float, more_days: float
) -> None:
    assert (
        judge(community(reporters + 1, days), NOW, RULES).score
        >= judge(community(reporters, days), NOW, RULES).score
    )
    later = NOW + timedelta(days=more_days)
    assert (
        judge(community(reporters, days), later, RULES).score
        <= judge(community(reporters, days), NOW, RULES).score
    )
