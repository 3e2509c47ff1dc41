"""The verdict rules: pure functions from what is known of a number, and the time, to a verdict.

No I/O and no clock reads: `now` is always a parameter, so the time rules are testable, and
benchmarks/verdict_sim.py runs these very functions over simulated months. What the rules
are and why is in docs/verdicts.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Verdict(StrEnum):
    """What a lookup tells the person being called."""

    UNKNOWN = "unknown"
    SUSPICIOUS = "suspicious"
    SCAM = "scam"
    VERIFIED = "verified"


class Lane(StrEnum):
    """Whom a reporter's word comes from."""

    VERIFIED = "verified"
    """A phone number an attesting key vouched for (the app verified it): one phone is one
    reporter, whatever app or reporter id it comes through."""
    COMMUNITY = "community"
    """Anyone else: a reporter id an app made up. Can make a number suspicious, never a scam."""


class Stance(StrEnum):
    """What a reporter last said about a number."""

    SCAM = "scam"
    """A report: the call was a scam."""
    NOT_SCAM = "not_scam"
    """Feedback: the call was legitimate."""


VERIFIED: str = Lane.VERIFIED.value
NOT_SCAM: str = Stance.NOT_SCAM.value
"""Plain strings for the hot loop's comparisons (a StrEnum equals its value)."""


@dataclass(frozen=True, slots=True)
class Rules:
    """The thresholds; these defaults are the documented ones (docs/verdicts.md)."""

    window: timedelta = timedelta(days=90)
    """A reporter counts while their latest word on a number is this recent."""
    scam_reporters: int = 3
    """Distinct verified phones, each in good standing, that a scam from reports needs."""
    half_life: timedelta = timedelta(days=60)
    """A reporter's unit on a number halves for every this long since their latest word."""
    confidence_z: float = 1.5
    """The z of the Wilson lower bound on the scam share of the verified units: at 1.0, two
    SIMs and one honest mistake passed it in the simulation (docs/verdicts.md)."""
    scam_share: float = 0.5
    """The Wilson lower bound the verified units' scam share must reach for a scam."""
    weight_gain: float = 0.25
    """Weight a reporter gains for each number they reported before a trusted listing."""
    weight_loss: float = 1.0
    """How fast a reporter loses weight for each number they reported before it was
    allowlisted, delisted or judged a brigade: weight / (1 + loss x contradicted)."""
    max_weight: float = 2.0
    standing_weight: float = 0.5
    """The least weight with which a verified phone counts towards scam_reporters: one
    contradiction (an honest report of a spoofed number, later delisted) leaves a phone in
    standing, two do not."""
    points_per_verified: int = 30
    """Score points per net verified unit, up to verified_cap."""
    verified_cap: int = 90
    points_per_community: int = 10
    """Score points per net community unit, up to community_cap."""
    community_cap: int = 30
    trusted_points: int = 70
    burst_window: timedelta = timedelta(minutes=10)
    """Brigade checks look at a number's reports over this long."""
    burst_newcomers: int = 10
    """First-time reporters on one number within burst_window that open a review."""
    burst_key_reports: int = 10
    """Reports on one number within burst_window from one key (or one network), at least,
    before its share is compared with its usual share."""
    burst_key_share: float = 0.8
    """The share of the number's recent reports that one key or network must reach..."""
    burst_share_factor: float = 4.0
    """...being at least this many times its usual share of all reports."""


@dataclass(frozen=True, slots=True)
class Voice:
    """One reporter's word on one number: the latest of their reports and answers, and
    their standing, all read from stored evidence."""

    lane: Lane
    stance: Stance
    first_at: datetime
    """Their first word on the number."""
    last_at: datetime
    """Their latest word on the number: their unit decays from here."""
    agreed: int = 0
    """Numbers they reported before a trusted source listed them."""
    contradicted: int = 0
    """Numbers they reported before the number was allowlisted, delisted or judged a
    brigade."""
    listed: bool = False
    """The reporter's own phone is listed as a scam: their word counts for nothing."""
    count: int = 1
    """Reporters alike in all of the above, counted as one voice each: community ids come
    grouped by stance and hour (first_at the earliest, last_at the latest of them)."""


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
    voices: tuple[Voice, ...] = ()
    """Reporters whose latest word is within the window and after any delisting."""
    oldest_recent_report: datetime | None = None
    """The oldest of those reporters' latest words: when it leaves the window the voices
    change, so evidence read before then holds until then."""
    under_review: bool = False
    """A moderator has yet to decide a review of the number (a suspected brigade)."""
    report_count: int = 0
    """Reports since the last delisting."""
    categories: tuple[str, ...] = ()
    first_reported_at: datetime | None = None
    last_reported_at: datetime | None = None
    """Of the reports since the last delisting."""

    @property
    def recent_reporters(self) -> int:
        """Reporters counting now, of either stance and lane."""
        return sum(voice.count for voice in self.voices)


class Why(StrEnum):
    """What a reason says; api/reasons.py words it in Vietnamese and English."""

    ALLOWLISTED = "allowlisted"
    LISTED = "listed"
    VERIFIED_REPORTERS = "verified_reporters"
    COMMUNITY_REPORTERS = "community_reporters"
    NOT_SCAM = "not_scam"
    UNDER_REVIEW = "under_review"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason for a verdict: what, how many, over how many days, from which source."""

    why: Why
    count: int = 0
    days: int = 0
    source: str = ""


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict with its 0-100 score and its reasons."""

    verdict: Verdict
    score: int
    reasons: tuple[Reason, ...] = ()


UNKNOWN = Judgement(Verdict.UNKNOWN, 0)


@dataclass(frozen=True, slots=True)
class Tally:
    """The voices on a number summed up as of a moment."""

    verified_scam: float = 0.0
    """Weighted, decayed units of verified phones saying scam."""
    verified_not_scam: float = 0.0
    community_scam: float = 0.0
    community_not_scam: float = 0.0
    standing_phones: int = 0
    """Verified phones saying scam with at least standing_weight."""
    verified_reporters: int = 0
    """Verified phones that count at all, saying scam."""
    community_reporters: int = 0
    not_scam_answers: int = 0
    """Reporters of either lane who count, saying not scam."""
    days: int = 0
    """The days the scam-saying verified phones' words span, at least 1."""


def window_start(now: datetime, rules: Rules) -> datetime:
    """Words last said before this moment no longer count."""
    return now - rules.window


def weight(voice: Voice, rules: Rules) -> float:
    """A reporter's weight from their record: more for agreeing with later trusted outcomes,
    less for being contradicted by them. A listed reporter phone weighs nothing."""
    if voice.listed:
        return 0.0
    if not voice.agreed and not voice.contradicted:
        return 1.0
    earned = min(rules.max_weight, 1.0 + rules.weight_gain * voice.agreed)
    return earned / (1.0 + rules.weight_loss * voice.contradicted)


def wilson_lower(positive: float, total: float, z: float) -> float:
    """The Wilson score interval's lower bound on a share: how sure `positive` of `total`
    is a majority, with few voices counting for less certainty."""
    if total <= 0:
        return 0.0
    share = positive / total
    z2 = z * z
    centre = share + z2 / (2 * total)
    margin = z * math.sqrt(share * (1 - share) / total + z2 / (4 * total * total))
    return (centre - margin) / (1 + z2 / total)


def tally(voices: tuple[Voice, ...], now: datetime, rules: Rules) -> Tally:
    """Sum up the voices as of `now`: each counts once, with its weight, decayed."""
    # Plain floats and locals: a hot number has hundreds of voices, judged at every lookup.
    verified_scam = verified_not_scam = community_scam = community_not_scam = 0.0
    standing = verified = community = not_scam = 0
    first: datetime | None = None
    last: datetime | None = None
    half_life = rules.half_life.total_seconds()
    for voice in voices:
        count = voice.count
        is_verified = voice.lane == VERIFIED
        weighs = weight(voice, rules) if is_verified else 1.0
        if weighs <= 0:
            continue
        age = (now - voice.last_at).total_seconds()
        units = count * weighs * (0.5 ** (age / half_life) if age > 0 else 1.0)
        if voice.stance == NOT_SCAM:
            not_scam += count
            if is_verified:
                verified_not_scam += units
            else:
                community_not_scam += units
        elif not is_verified:
            community += count
            community_scam += units
        else:
            verified += count
            verified_scam += units
            if weighs >= rules.standing_weight:
                standing += count
            if first is None or voice.first_at < first:
                first = voice.first_at
            if last is None or voice.last_at > last:
                last = voice.last_at
    days = 0 if first is None or last is None else max(1, math.ceil((last - first) / _DAY))
    return Tally(
        verified_scam=verified_scam,
        verified_not_scam=verified_not_scam,
        community_scam=community_scam,
        community_not_scam=community_not_scam,
        standing_phones=standing,
        verified_reporters=verified,
        community_reporters=community,
        not_scam_answers=not_scam,
        days=days,
    )


_DAY = timedelta(days=1)


def scam_from_reports(counted: Tally, rules: Rules) -> bool:
    """Whether verified phones make the number a scam: enough of them in good standing, and
    their scam units sure to outweigh the verified not-scam answers. Community voices never
    decide a scam, either way."""
    if counted.standing_phones < rules.scam_reporters:
        return False
    total = counted.verified_scam + counted.verified_not_scam
    return wilson_lower(counted.verified_scam, total, rules.confidence_z) >= rules.scam_share


def judge(evidence: Evidence, now: datetime, rules: Rules) -> Judgement:
    """The verdict on a number, its score and its reasons, as of `now`."""
    if evidence.allowlisted_owner is not None:
        return Judgement(
            Verdict.VERIFIED, 0, (Reason(Why.ALLOWLISTED, source=evidence.allowlisted_owner),)
        )
    counted = tally(evidence.voices, now, rules)
    # Each lane's not-scam answers net against its own scam reports only: unlimited
    # community answers cannot clear what verified phones said, nor the reverse.
    net_verified = max(0.0, counted.verified_scam - counted.verified_not_scam)
    net_community = max(0.0, counted.community_scam - counted.community_not_scam)
    score = min(
        100,
        round(
            (rules.trusted_points if evidence.trusted_sources else 0)
            + min(rules.verified_cap, rules.points_per_verified * net_verified)
            + min(rules.community_cap, rules.points_per_community * net_community)
        ),
    )
    if evidence.trusted_sources or scam_from_reports(counted, rules):
        verdict = Verdict.SCAM
    elif net_verified > 0 or net_community > 0:
        verdict = Verdict.SUSPICIOUS
    elif evidence.under_review:
        return Judgement(Verdict.UNKNOWN, 0, (Reason(Why.UNDER_REVIEW),))
    else:
        return UNKNOWN
    return Judgement(verdict, max(score, 1), _reasons(evidence, counted))


def _reasons(evidence: Evidence, counted: Tally) -> tuple[Reason, ...]:
    reasons = [Reason(Why.LISTED, source=source) for source in evidence.trusted_sources]
    if counted.verified_reporters:
        reasons.append(
            Reason(Why.VERIFIED_REPORTERS, count=counted.verified_reporters, days=counted.days)
        )
    if counted.community_reporters:
        reasons.append(Reason(Why.COMMUNITY_REPORTERS, count=counted.community_reporters))
    if counted.not_scam_answers:
        reasons.append(Reason(Why.NOT_SCAM, count=counted.not_scam_answers))
    if evidence.under_review:
        reasons.append(Reason(Why.UNDER_REVIEW))
    return tuple(reasons)


@dataclass(frozen=True, slots=True)
class Burst:
    """A number's recent reports, as a brigade check sees them (over rules.burst_window)."""

    newcomers: int = 0
    """Reporters on the number whose first report anywhere came within the window."""
    top_key_reports: int = 0
    """Reports on the number from the key that sent the most of them."""
    reports: int = 0
    """All reports on the number."""
    top_key_usual_share: float = 1.0
    """That key's share of all reports to the service over the past week."""
    top_network_reports: int = 0
    """Reports on the number from the network (an IPv4 /24, an IPv6 /48) that sent the
    most of them."""
    top_network_usual_share: float = 1.0
    """That network's share of all reports over the past week."""


class BrigadeSign(StrEnum):
    """Why a number was put in the review queue."""

    NEWCOMERS = "newcomers"
    """Many first-time reporters on one number within minutes."""
    KEY_SHARE = "key_share"
    """One key far above its usual share of reports."""
    NETWORK_SHARE = "network_share"
    """One network far above its usual share of reports."""


def brigade_sign(burst: Burst, rules: Rules) -> BrigadeSign | None:
    """Whether a number's recent reports look like a brigade, and why; None if not."""
    if burst.newcomers >= rules.burst_newcomers:
        return BrigadeSign.NEWCOMERS
    if _far_above(burst.top_key_reports, burst.reports, burst.top_key_usual_share, rules):
        return BrigadeSign.KEY_SHARE
    if _far_above(burst.top_network_reports, burst.reports, burst.top_network_usual_share, rules):
        return BrigadeSign.NETWORK_SHARE
    return None


def _far_above(sent: int, reports: int, usual_share: float, rules: Rules) -> bool:
    """Whether one sender's reports on a number are far above its usual share of all."""
    if sent < rules.burst_key_reports or not reports:
        return False
    share = sent / reports
    return share >= rules.burst_key_share and share >= rules.burst_share_factor * usual_share
