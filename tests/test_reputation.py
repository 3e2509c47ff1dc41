"""The verdict rules as pure functions: evidence and a time in, a verdict, score and reasons
out (docs/verdicts.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callguard.reputation import (
    BrigadeSign,
    Burst,
    Evidence,
    Lane,
    Reason,
    Rules,
    Stance,
    Verdict,
    Voice,
    Why,
    brigade_sign,
    judge,
    weight,
    wilson_lower,
    window_start,
)
from hypothesis import given
from hypothesis import strategies as st

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RULES = Rules()
NUMBER = 84912345678


def voice(
    lane: Lane = Lane.VERIFIED,
    stance: Stance = Stance.SCAM,
    days_ago: float = 0,
    **record: int | bool,
) -> Voice:
    at = NOW - timedelta(days=days_ago)
    return Voice(lane, stance, at, at, **record)  # type: ignore[arg-type]


def evidence(*voices: Voice, **fields: object) -> Evidence:
    return Evidence(NUMBER, known=True, voices=voices, **fields)  # type: ignore[arg-type]


def verified(
    count: int, days_ago: float = 0, stance: Stance = Stance.SCAM, **record: int | bool
) -> list[Voice]:
    return [voice(Lane.VERIFIED, stance, days_ago, **record) for _ in range(count)]


def community(count: int, stance: Stance = Stance.SCAM) -> list[Voice]:
    return [voice(Lane.COMMUNITY, stance) for _ in range(count)]


def test_nothing_known_is_unknown_with_no_score_and_no_reasons() -> None:
    judgement = judge(Evidence(NUMBER), NOW, RULES)
    assert (judgement.verdict, judgement.score, judgement.reasons) == (Verdict.UNKNOWN, 0, ())


def test_three_verified_phones_make_a_scam_two_do_not() -> None:
    verdicts = [judge(evidence(*verified(n)), NOW, RULES).verdict for n in range(5)]
    assert verdicts == [
        Verdict.UNKNOWN, Verdict.SUSPICIOUS, Verdict.SUSPICIOUS, Verdict.SCAM, Verdict.SCAM,
    ]  # fmt: skip


@given(st.integers(0, 5_000), st.integers(0, 2))
def test_no_number_of_community_voices_makes_a_scam(reporters: int, phones: int) -> None:
    judgement = judge(evidence(*community(reporters), *verified(phones)), NOW, RULES)
    assert judgement.verdict is not Verdict.SCAM
    assert (judgement.verdict is Verdict.SUSPICIOUS) == (reporters + phones > 0)


def test_the_scam_threshold_is_configurable() -> None:
    strict = Rules(scam_reporters=5)
    assert judge(evidence(*verified(4)), NOW, strict).verdict is Verdict.SUSPICIOUS
    assert judge(evidence(*verified(5)), NOW, strict).verdict is Verdict.SCAM


def test_a_listed_reporter_phone_counts_for_nothing() -> None:
    voices = [*verified(2), voice(listed=True)]
    judgement = judge(evidence(*voices), NOW, RULES)
    assert judgement.verdict is Verdict.SUSPICIOUS
    assert judgement.reasons == (Reason(Why.VERIFIED_REPORTERS, count=2, days=1),)


def test_verified_not_scam_answers_outweigh_a_smear() -> None:
    smear = [*verified(3), *verified(2, stance=Stance.NOT_SCAM)]
    judgement = judge(evidence(*smear), NOW, RULES)
    assert judgement.verdict is Verdict.SUSPICIOUS
    assert Reason(Why.NOT_SCAM, count=2) in judgement.reasons
    campaign = [*verified(10), *verified(2, stance=Stance.NOT_SCAM)]
    assert judge(evidence(*campaign), NOW, RULES).verdict is Verdict.SCAM


def test_community_answers_cannot_clear_what_verified_phones_said() -> None:
    voices = [*verified(3), *community(500, Stance.NOT_SCAM)]
    assert judge(evidence(*voices), NOW, RULES).verdict is Verdict.SCAM
    only_community = [*community(2), *community(3, Stance.NOT_SCAM)]
    assert judge(evidence(*only_community), NOW, RULES).verdict is Verdict.UNKNOWN


def test_weight_is_earned_by_agreeing_and_lost_by_being_contradicted() -> None:
    assert weight(voice(), RULES) == 1.0
    assert weight(voice(agreed=2), RULES) == 1.5
    assert weight(voice(agreed=100), RULES) == RULES.max_weight
    assert weight(voice(contradicted=1), RULES) == 0.5
    assert weight(voice(agreed=4, contradicted=1), RULES) == 1.0
    assert weight(voice(agreed=4, listed=True), RULES) == 0.0


def test_a_phone_contradicted_twice_does_not_count_towards_a_scam() -> None:
    once = [*verified(3), voice(contradicted=1)]  # weight 0.5: still in standing
    assert judge(evidence(*once[1:]), NOW, RULES).verdict is Verdict.SCAM
    twice = [*verified(2), voice(contradicted=2)]  # weight 0.33
    assert judge(evidence(*twice), NOW, RULES).verdict is Verdict.SUSPICIOUS
    redeemed = [*verified(2), voice(agreed=4, contradicted=2)]  # weight 0.67
    assert judge(evidence(*redeemed), NOW, RULES).verdict is Verdict.SCAM


def test_a_trusted_listing_is_a_scam_on_its_own_and_never_decays() -> None:
    trusted = evidence(trusted_sources=("viettel",))
    for days in (0, 90, 1000):
        judgement = judge(trusted, NOW + timedelta(days=days), RULES)
        assert (judgement.verdict, judgement.score) == (Verdict.SCAM, RULES.trusted_points)
        assert judgement.reasons == (Reason(Why.LISTED, source="viettel"),)


def test_the_allowlist_wins_over_everything() -> None:
    allowlisted = evidence(
        *verified(50),
        allowlisted_owner="Công an tỉnh Đồng Nai",
        trusted_sources=("import",),
        report_count=80,
        last_reported_at=NOW,
    )
    judgement = judge(allowlisted, NOW, RULES)
    assert judgement.verdict is Verdict.VERIFIED
    assert judgement.reasons == (Reason(Why.ALLOWLISTED, source="Công an tỉnh Đồng Nai"),)


def test_the_score_table_in_the_docs() -> None:
    # docs/verdicts.md "Score" and README "Verdicts": 30 a net verified unit up to 90, 10 a
    # net community unit up to 30, units halving every 60 days; +70 if trusted.
    def judged(*voices: Voice, **fields: object) -> tuple[Verdict, int]:
        judgement = judge(evidence(*voices, **fields), NOW, RULES)
        return judgement.verdict, judgement.score

    assert judged(*community(1)) == (Verdict.SUSPICIOUS, 10)
    assert judged(*community(50)) == (Verdict.SUSPICIOUS, 30)
    assert judged(*verified(1)) == (Verdict.SUSPICIOUS, 30)
    assert judged(*verified(3)) == (Verdict.SCAM, 90)
    assert judged(*verified(3, days_ago=20)) == (Verdict.SCAM, 71)
    assert judged(*verified(3, days_ago=30)) == (Verdict.SUSPICIOUS, 64)
    assert judged(*verified(3, days_ago=60)) == (Verdict.SUSPICIOUS, 45)
    smear = [*verified(3), *verified(2, stance=Stance.NOT_SCAM)]
    assert judged(*smear) == (Verdict.SUSPICIOUS, 30)
    assert judged(trusted_sources=("a",)) == (Verdict.SCAM, 70)
    assert judged(*verified(1), trusted_sources=("a",)) == (Verdict.SCAM, 100)


def test_a_scam_from_reports_fades_as_its_units_decay() -> None:
    # Three units decay to 2.25 (= z^2) at 24.9 days: the Wilson bound then falls below 0.5.
    assert judge(evidence(*verified(3, days_ago=24.8)), NOW, RULES).verdict is Verdict.SCAM
    assert judge(evidence(*verified(3, days_ago=25)), NOW, RULES).verdict is Verdict.SUSPICIOUS
    ten = judge(evidence(*verified(10, days_ago=89)), NOW, RULES)
    assert ten.verdict is Verdict.SCAM  # ten phones stay sure for the whole window


def test_reasons_say_how_many_over_how_many_days() -> None:
    first = voice(days_ago=4.5)
    voices = [first, *verified(2), *community(4), voice(stance=Stance.NOT_SCAM)]
    judgement = judge(evidence(*voices, trusted_sources=("viettel",)), NOW, RULES)
    assert judgement.reasons == (
        Reason(Why.LISTED, source="viettel"),
        Reason(Why.VERIFIED_REPORTERS, count=3, days=5),
        Reason(Why.COMMUNITY_REPORTERS, count=4),
        Reason(Why.NOT_SCAM, count=1),
    )


def test_a_review_is_a_reason_and_holds_nothing_back() -> None:
    judgement = judge(evidence(*verified(3), under_review=True), NOW, RULES)
    assert judgement.verdict is Verdict.SCAM
    assert judgement.reasons[-1] == Reason(Why.UNDER_REVIEW)


def test_the_window_starts_90_days_back() -> None:
    assert window_start(NOW, RULES) == NOW - timedelta(days=90)


def test_the_wilson_bound_is_lower_for_fewer_voices() -> None:
    assert wilson_lower(0, 0, 1.0) == 0.0
    assert wilson_lower(3, 3, 1.0) == 0.75  # n / (n + z^2) when all agree
    assert wilson_lower(3, 3, RULES.confidence_z) == 3 / 5.25
    assert wilson_lower(30, 30, 1.0) > wilson_lower(3, 3, 1.0)
    assert wilson_lower(3, 5, 1.0) < 0.5 < 3 / 5


def test_brigade_signs() -> None:
    assert brigade_sign(Burst(newcomers=10), RULES) is BrigadeSign.NEWCOMERS
    assert brigade_sign(Burst(newcomers=9, reports=9), RULES) is None
    one_key = Burst(top_key_reports=10, reports=11, top_key_usual_share=0.2)
    assert brigade_sign(one_key, RULES) is BrigadeSign.KEY_SHARE
    usual = Burst(top_key_reports=10, reports=11, top_key_usual_share=0.5)
    assert brigade_sign(usual, RULES) is None  # a big app reporting as much as it always does
    one_network = Burst(reports=12, top_network_reports=11, top_network_usual_share=0.01)
    assert brigade_sign(one_network, RULES) is BrigadeSign.NETWORK_SHARE
    few = Burst(reports=9, top_network_reports=9, top_network_usual_share=0.01)
    assert brigade_sign(few, RULES) is None


@given(
    st.integers(0, 200),
    st.integers(0, 200),
    st.integers(0, 50),
    st.floats(0, 89.9),
    st.booleans(),
)
def test_scores_are_bounded_and_listed_numbers_score_above_zero(
    phones: int, reporters: int, answers: int, days: float, trusted: bool
) -> None:
    voices = [
        *verified(phones, days_ago=days),
        *community(reporters),
        *verified(answers, stance=Stance.NOT_SCAM),
    ]
    judgement = judge(evidence(*voices, trusted_sources=("a",) if trusted else ()), NOW, RULES)
    assert 0 <= judgement.score <= 100
    listed = judgement.verdict in (Verdict.SUSPICIOUS, Verdict.SCAM)
    assert (judgement.score > 0) == listed
    assert bool(judgement.reasons) == listed


@given(st.integers(1, 100), st.floats(0, 89), st.floats(0, 89))
def test_more_phones_score_more_and_time_only_lowers_the_score(
    phones: int, days: float, more_days: float
) -> None:
    def score(count: int, at: datetime) -> int:
        return judge(evidence(*verified(count, days_ago=days)), at, RULES).score

    assert score(phones + 1, NOW) >= score(phones, NOW)
    assert score(phones, NOW + timedelta(days=more_days)) <= score(phones, NOW)
