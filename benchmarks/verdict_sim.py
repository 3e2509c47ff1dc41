"""Simulate 90 days of reports and compare three verdict rules on the same population: today's
(3 distinct reporter ids, any lane), PhoneBlock's vote counting, and the new one
(callguard.reputation.judge on the Evidence the service builds).

    python benchmarks/verdict_sim.py [--seed 1] [--days 90] [--legit 2000] [--scam 400]
    python benchmarks/verdict_sim.py --seeds 10 [--sims 2]   # attack cost across seeds

Everything runs on a simulated clock (no real time is read) from random.Random(seed), so a
seed always prints the same table. The population, the three rules and what the figures mean
are in docs/verdicts.md, section "Simulation".
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import random
import shlex
import statistics
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `benchmarks` imports

from callguard.reputation import (
    Burst,
    Evidence,
    Lane,
    Rules,
    Stance,
    Verdict,
    Voice,
    brigade_sign,
    judge,
    weight,
    window_start,
)

from benchmarks.machine import machine

START = datetime(2026, 1, 5, tzinfo=UTC)
"""Day 0 of the simulated clock."""
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
DAILY_REPORTS = 20
"""Reports a day the service takes from one verified phone; more are refused."""
APP_KEY, PARTNER_KEY, COMMUNITY_KEY = "app", "partner", "community"
"""The keys reports come through: the verifying app, a partner app, the public community key."""
ATTACK_SPREADS = (timedelta(minutes=10), timedelta(hours=2), timedelta(days=1))
"""How long an attack's reports are spread over; each attack picks one."""

PHONEBLOCK_MIN_VOTES = 4
PHONEBLOCK_HALF_LIFE = timedelta(days=125)


@dataclass(frozen=True)
class Params:
    """The population. The defaults are the documented ones (docs/verdicts.md)."""

    days: int = 90
    legit: int = 2000
    """Legitimate numbers, each with its app-using contacts."""
    scam: int = 400
    """Scam numbers, each calling hundreds of people over a campaign."""
    reporters: int = 20000
    """Honest app users: they receive the calls and say what they were."""
    verified_share: float = 0.7
    """Honest reporters whose phone the app verified; the rest are community ids."""
    error: tuple[float, float] = (0.02, 0.05)
    """Each honest reporter says the wrong thing this often (drawn per reporter)."""
    contacts: tuple[int, int] = (5, 60)
    """App users a legitimate number calls."""
    legit_calls: tuple[float, float] = (0.5, 4.0)
    """Calls a day from a legitimate number to its app-using contacts."""
    word_legit: float = 0.02
    """Chance a contact says anything about a legitimate call that shows no warning."""
    vouch: float = 0.2
    """Chance a contact answers a call from a number they know that shows a warning."""
    scam_calls: tuple[int, int] = (100, 800)
    campaign_days: tuple[int, int] = (1, 14)
    app_share: float = 0.3
    """Share of the people called who use an app of the service."""
    report_scam: float = 0.25
    """Chance an app user reports a scam call."""
    operator_share: float = 0.5
    """Scam numbers an operator import lists, some days after their first call."""
    operator_days: tuple[float, float] = (2.0, 14.0)
    self_clearing: float = 0.3
    """Scam numbers whose ring sends not_scam on them from its own SIMs and ids."""
    ring_sims: tuple[int, int] = (1, 3)
    ring_ids: tuple[int, int] = (10, 50)
    ring_listed: float = 0.5
    """Share of the rings' SIMs that are themselves listed as scams."""
    brigades: int = 60
    """Attacks with community ids only."""
    brigade_ids: tuple[int, int] = (20, 200)
    sim_attackers: int = 6
    """Attackers for each k = 1..5 verified SIMs."""
    attack_targets: tuple[int, int] = (1, 5)
    """Legitimate numbers each SIM attacker attacks, one after another."""
    attack_ids: tuple[int, int] = (20, 100)
    spoofed: int = 40
    """Legitimate numbers that scammers spoof in one campaign."""
    spoof_calls: tuple[int, int] = (50, 300)
    appeal: float = 0.8
    """Share of the owners of a legitimate number branded scam who appeal."""
    decision_days: tuple[float, float] = (1.0, 3.0)
    """How long a moderator takes to decide an appeal or a review."""
    cost_targets: int = 100
    """Legitimate numbers attacked for each k in the attack-cost runs."""
    cost_ids: int = 50


class Rule(StrEnum):
    TODAY = "today"
    PHONEBLOCK = "phoneblock"
    NEW = "new"


class Kind(StrEnum):
    LEGIT_CALL = "legit_call"
    """A legitimate number calls a contact: they may answer, depending on the verdict shown."""
    WORD = "word"
    """A reporter says something fixed: an honest report of a scam call, or an attacker's."""
    LISTING = "listing"
    """An operator import lists the number (a trusted listing)."""


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    kind: Kind
    number: int
    reporter: int = -1
    stance: Stance = Stance.SCAM
    chance: float = 1.0
    """For a legit call: the contact's draw against word_legit or vouch."""


@dataclass(frozen=True, slots=True)
class Reporter:
    lane: Lane
    key: str
    honest: bool
    error: float = 0.0
    listed: bool = False


@dataclass(slots=True)
class Number:
    scam: bool
    spoofed: bool = False
    attack_sims: int = -1
    """The most verified SIMs any attack on it used; -1 if never attacked."""
    appeal_delay: timedelta | None = None
    """How long after it is branded scam a moderator delists it, if the owner appeals."""
    review_delay: timedelta = DAY


@dataclass(frozen=True, slots=True)
class Attack:
    number: int
    sims: int
    start: datetime
    end: datetime


@dataclass(slots=True)
class Population:
    days: int
    reporters: list[Reporter] = field(default_factory=list)
    numbers: list[Number] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    attacks: list[Attack] = field(default_factory=list)
    honest_verified: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    """Per scam number, the honest verified reporters who reported it."""

    def reporter(self, reporter: Reporter) -> int:
        self.reporters.append(reporter)
        return len(self.reporters) - 1

    def number(self, number: Number) -> int:
        self.numbers.append(number)
        return len(self.numbers) - 1

    def word(self, at: datetime, number: int, reporter: int, stance: Stance) -> None:
        if at >= START + self.days * DAY:
            return
        self.events.append(Event(at, Kind.WORD, number, reporter, stance))
        who = self.reporters[reporter]
        verified = who.honest and who.lane is Lane.VERIFIED
        if self.numbers[number].scam and verified and stance is Stance.SCAM:
            self.honest_verified[number].add(reporter)


def uniform_int(rng: random.Random, bounds: tuple[int, int]) -> int:
    return rng.randint(bounds[0], bounds[1])


def daytime(rng: random.Random, day: float) -> datetime:
    """A moment between 8:00 and 20:00 on the given day."""
    return START + math.floor(day) * DAY + timedelta(hours=8 + 12 * rng.random())


def honest_pool(pop: Population, rng: random.Random, params: Params) -> None:
    for _ in range(params.reporters):
        verified = rng.random() < params.verified_share
        if verified:
            key = APP_KEY if rng.random() < 0.85 else PARTNER_KEY
        else:
            key = PARTNER_KEY if rng.random() < 0.5 else COMMUNITY_KEY
        lane = Lane.VERIFIED if verified else Lane.COMMUNITY
        pop.reporter(Reporter(lane, key, True, rng.uniform(*params.error)))


def legit_number(pop: Population, rng: random.Random, params: Params) -> int:
    """A legitimate number and its calls to its app-using contacts over the days."""
    low, high = params.decision_days
    number = pop.number(
        Number(
            scam=False,
            appeal_delay=rng.uniform(low, high) * DAY if rng.random() < params.appeal else None,
            review_delay=rng.uniform(low, high) * DAY,
        )
    )
    contacts = rng.sample(range(params.reporters), uniform_int(rng, params.contacts))
    calls = round(rng.uniform(*params.legit_calls) * pop.days)
    speaks = max(params.word_legit, params.vouch)
    for _ in range(calls):
        chance = rng.random()
        contact = rng.choice(contacts)
        erred = rng.random() < pop.reporters[contact].error
        at = daytime(rng, rng.uniform(0, pop.days))
        if chance < speaks:  # calls nobody could answer are left out
            stance = Stance.SCAM if erred else Stance.NOT_SCAM
            pop.events.append(Event(at, Kind.LEGIT_CALL, number, contact, stance, chance))
    return number


def campaign(
    pop: Population, rng: random.Random, params: Params, number: int, calls: int, days: int
) -> datetime:
    """Scam calls from the number to random people; the app users among them report them.
    Returns when it starts."""
    first_day = rng.uniform(0, pop.days - 1)
    start = daytime(rng, first_day)
    for _ in range(calls):
        at = daytime(rng, first_day + rng.uniform(0, days))
        if at < start or rng.random() >= params.app_share:
            continue
        callee = rng.randrange(params.reporters)
        if rng.random() >= params.report_scam:
            continue
        wrong = rng.random() < pop.reporters[callee].error
        pop.word(at, number, callee, Stance.NOT_SCAM if wrong else Stance.SCAM)
    return start


def attack(
    pop: Population, rng: random.Random, target: int, sims: list[int], ids: int, start: datetime
) -> None:
    """Reports on a legitimate number from the attacker's SIMs and from fresh community ids."""
    spread = rng.choice(ATTACK_SPREADS)
    reporters = sims + [
        pop.reporter(Reporter(Lane.COMMUNITY, COMMUNITY_KEY, False)) for _ in range(ids)
    ]
    for reporter in reporters:
        pop.word(start + spread * rng.random(), target, reporter, Stance.SCAM)
    pop.attacks.append(Attack(target, len(sims), start, start + spread))
    number = pop.numbers[target]
    number.attack_sims = max(number.attack_sims, len(sims))


def attacker_sims(pop: Population, k: int) -> list[int]:
    return [pop.reporter(Reporter(Lane.VERIFIED, APP_KEY, False)) for _ in range(k)]


def populate(params: Params, seed: int) -> Population:
    """The main population: legitimate and scam numbers, honest reporters, scam rings that
    clear their own numbers, brigades, SIM attackers and spoofed numbers."""
    rng = random.Random(seed)
    pop = Population(params.days)
    honest_pool(pop, rng, params)
    legit = [legit_number(pop, rng, params) for _ in range(params.legit)]
    for _ in range(params.scam):
        number = pop.number(Number(scam=True))
        calls = uniform_int(rng, params.scam_calls)
        start = campaign(pop, rng, params, number, calls, uniform_int(rng, params.campaign_days))
        if rng.random() < params.operator_share:
            at = start + rng.uniform(*params.operator_days) * DAY
            if at < START + pop.days * DAY:
                pop.events.append(Event(at, Kind.LISTING, number))
        if rng.random() < params.self_clearing:
            ring = [
                pop.reporter(
                    Reporter(
                        Lane.VERIFIED, APP_KEY, False, listed=rng.random() < params.ring_listed
                    )
                )
                for _ in range(uniform_int(rng, params.ring_sims))
            ]
            ring += [
                pop.reporter(Reporter(Lane.COMMUNITY, COMMUNITY_KEY, False))
                for _ in range(uniform_int(rng, params.ring_ids))
            ]
            for reporter in ring:
                at = start + timedelta(hours=rng.uniform(1, 48))
                pop.word(at, number, reporter, Stance.NOT_SCAM)
    spoofed = rng.sample(legit, params.spoofed)
    for number in spoofed:
        pop.numbers[number].spoofed = True
        campaign(pop, rng, params, number, uniform_int(rng, params.spoof_calls), rng.randint(1, 2))
    targets = [number for number in legit if not pop.numbers[number].spoofed]
    for _ in range(params.brigades):
        start = daytime(rng, rng.uniform(0, pop.days - 1))
        attack(pop, rng, rng.choice(targets), [], uniform_int(rng, params.brigade_ids), start)
    for k in range(1, 6):
        for _ in range(params.sim_attackers):
            sims = attacker_sims(pop, k)
            victims = rng.sample(targets, uniform_int(rng, params.attack_targets))
            days = sorted(rng.uniform(0, pop.days - 1) for _ in victims)
            for victim, day in zip(victims, days, strict=True):
                ids = uniform_int(rng, params.attack_ids)
                attack(pop, rng, victim, sims, ids, daytime(rng, day))
    pop.events.sort(key=lambda event: event.at)
    return pop


def cost_population(params: Params, seed: int, sims: int) -> Population:
    """Legitimate numbers with their usual contacts, each attacked once by an attacker with
    `sims` fresh verified SIMs and cost_ids community ids. The background is the same for
    every `sims`."""
    rng = random.Random(f"{seed}-cost")
    pop = Population(params.days)
    honest_pool(pop, rng, params)
    targets = [legit_number(pop, rng, params) for _ in range(params.cost_targets)]
    rng = random.Random(f"{seed}-cost-attack")
    for target in targets:
        start = daytime(rng, rng.uniform(10, pop.days - 10))
        attack(pop, rng, target, attacker_sims(pop, sims), params.cost_ids, start)
    pop.events.sort(key=lambda event: event.at)
    return pop


@dataclass(slots=True)
class VoiceState:
    """One reporter's word on a number within the current epoch, as the service stores it."""

    stance: Stance
    first_at: datetime
    last_at: datetime
    stance_at: datetime
    """When their word turned to the current stance (PhoneBlock's vote time)."""
    last_report_at: datetime | None
    cached: Voice | None = None
    cached_record: tuple[int, int] = (0, 0)


@dataclass(slots=True)
class NumberState:
    voices: dict[int, VoiceState] = field(default_factory=dict)
    listed: bool = False
    verdict: Verdict = Verdict.UNKNOWN
    scam_since: datetime | None = None
    appeal_pending: bool = False
    under_review: bool = False
    recent: deque[tuple[datetime, int, str]] = field(default_factory=deque)
    """Reports over the burst window, for the brigade check."""
    last_report: datetime | None = None


class Action(StrEnum):
    CHECKPOINT = "checkpoint"
    DELIST = "delist"
    DECIDE_REVIEW = "decide_review"


@dataclass(slots=True)
class Outcome:
    first_scam: dict[int, datetime] = field(default_factory=dict)
    first_report: dict[int, datetime] = field(default_factory=dict)
    flags: dict[int, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    """Every report on a number at which brigade_sign said it looks like a brigade."""
    delistings: int = 0
    brigades_judged: int = 0
    out_of_standing: int = 0
    """Honest verified reporters whose record leaves them below standing_weight at the end."""
    reporting_verified: int = 0
    """Honest verified reporters who reported at least once."""


class World:
    """One rule's view of the population: events in time order, verdicts after each, and the
    outcomes (appeals, reviews) that follow from that rule's verdicts."""

    def __init__(self, pop: Population, rule: Rule, rules: Rules, params: Params) -> None:
        self.pop, self.rule, self.rules, self.params = pop, rule, rules, params
        self.today_rules = Rules()
        self.states = [NumberState() for _ in pop.numbers]
        self.agreed = [0] * len(pop.reporters)
        self.contradicted = [0] * len(pop.reporters)
        self.agreed_on: set[tuple[int, int]] = set()
        self.contradicted_on: set[tuple[int, int]] = set()
        self.scam_words: dict[int, dict[int, datetime]] = defaultdict(dict)
        """Per number, each reporter's first report on it, across delistings."""
        self.first_report: dict[int, datetime] = {}
        """Each reporter's first report anywhere."""
        self.daily: Counter[tuple[int, int]] = Counter()
        self.key_days: dict[int, Counter[str]] = defaultdict(Counter)
        self.weeks: dict[int, Counter[str]] = {}
        self.queue: list[tuple[datetime, int, Action, int]] = []
        self.seq = 0
        self.pending: dict[int, datetime] = {}
        self.watched: set[int] = set()
        self.out = Outcome()
        self.verdict_of: Callable[[NumberState, datetime], Verdict] = {
            Rule.TODAY: self.today,
            Rule.PHONEBLOCK: self.phoneblock,
            Rule.NEW: self.new,
        }[rule]

    def run(self) -> Outcome:
        end = START + self.pop.days * DAY
        for day in range(1, self.pop.days + 1):
            self.push(START + day * DAY, Action.CHECKPOINT, -1)
        for event in self.pop.events:
            self.advance(event.at)
            if event.kind is Kind.LEGIT_CALL:
                self.flush(event.number)
                state = self.states[event.number]
                warned = state.verdict in (Verdict.SUSPICIOUS, Verdict.SCAM)
                if event.chance < (self.params.vouch if warned else self.params.word_legit):
                    self.word(event.at, event.number, event.reporter, event.stance)
            elif event.kind is Kind.WORD:
                self.word(event.at, event.number, event.reporter, event.stance)
            else:
                self.flush(event.number)
                self.states[event.number].listed = True
                self.record(event.number, event.at, self.agreed, self.agreed_on)
                self.judge_now(event.number, event.at)
        self.advance(end)
        for number in list(self.pending):
            self.flush(number)
        reporting = [
            r
            for r, who in enumerate(self.pop.reporters)
            if who.honest and who.lane is Lane.VERIFIED and r in self.first_report
        ]
        self.out.reporting_verified = len(reporting)
        self.out.out_of_standing = sum(
            weight(Voice(Lane.VERIFIED, Stance.SCAM, end, end, *self.record_of(r)), self.rules)
            < self.rules.standing_weight
            for r in reporting
        )
        return self.out

    def record_of(self, reporter: int) -> tuple[int, int]:
        return self.agreed[reporter], self.contradicted[reporter]

    def push(self, at: datetime, action: Action, number: int) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, action, number))

    def advance(self, until: datetime) -> None:
        while self.queue and self.queue[0][0] <= until:
            at, _, action, number = heapq.heappop(self.queue)
            if action is Action.CHECKPOINT:
                for watched in list(self.watched):
                    self.flush(watched)
                    self.judge_now(watched, at)
                    last = self.states[watched].last_report
                    if last is None or at - last > self.rules.window:
                        self.watched.discard(watched)
            elif action is Action.DELIST:
                self.flush(number)
                self.record(number, at, self.contradicted, self.contradicted_on)
                state = self.states[number]
                state.voices.clear()
                state.recent.clear()
                state.appeal_pending = False
                state.last_report = None
                self.watched.discard(number)
                self.out.delistings += 1
                self.judge_now(number, at)
            else:
                self.flush(number)
                self.states[number].under_review = False
                if not self.pop.numbers[number].scam:  # the moderator judges it a brigade
                    self.record(number, at, self.contradicted, self.contradicted_on)
                    self.out.brigades_judged += 1
                self.judge_now(number, at)

    def record(
        self, number: int, at: datetime, counts: list[int], counted: set[tuple[int, int]]
    ) -> None:
        """A trusted outcome on the number: it counts for every reporter who reported it
        before, once per number."""
        for reporter, first in self.scam_words[number].items():
            if first < at and (reporter, number) not in counted:
                counted.add((reporter, number))
                counts[reporter] += 1

    def word(self, at: datetime, number: int, reporter: int, stance: Stance) -> None:
        """A reporter's word on a number. The number is judged after each minute with words
        on it: words within one minute are judged together, at the last of them."""
        pending = self.pending.get(number)
        if pending is not None and (pending - START) // MINUTE != (at - START) // MINUTE:
            self.flush(number)
        who = self.pop.reporters[reporter]
        state = self.states[number]
        if stance is Stance.SCAM:
            day = (at - START) // DAY
            if who.lane is Lane.VERIFIED:
                if self.daily[reporter, day] >= DAILY_REPORTS:
                    return
                self.daily[reporter, day] += 1
            self.scam_words[number].setdefault(reporter, at)
            self.first_report.setdefault(reporter, at)
            self.out.first_report.setdefault(number, at)
            self.key_days[day][who.key] += 1
            state.last_report = at
            self.watched.add(number)
            self.brigade_check(at, number, reporter, who.key, day)
        voice = state.voices.get(reporter)
        if voice is None:
            report_at = at if stance is Stance.SCAM else None
            state.voices[reporter] = VoiceState(stance, at, at, at, report_at)
        else:
            if voice.stance is not stance:
                voice.stance, voice.stance_at = stance, at
            voice.last_at = at
            if stance is Stance.SCAM:
                voice.last_report_at = at
            voice.cached = None
        self.pending[number] = at

    def flush(self, number: int) -> None:
        pending = self.pending.pop(number, None)
        if pending is not None:
            self.judge_now(number, pending)

    def brigade_check(self, at: datetime, number: int, reporter: int, key: str, day: int) -> None:
        recent = self.states[number].recent
        recent.append((at, reporter, key))
        since = at - self.rules.burst_window
        while recent[0][0] <= since:
            recent.popleft()
        newcomers = len({who for _, who, _ in recent if self.first_report[who] > since})
        top_key, top = Counter(key for _, _, key in recent).most_common(1)[0]
        usual = self.usual_share(top_key, day)
        sign = brigade_sign(Burst(newcomers, top, len(recent), usual), self.rules)
        if sign is None:
            return
        self.out.flags[number].append(at)
        state = self.states[number]
        if not state.under_review:
            state.under_review = True
            self.push(at + self.pop.numbers[number].review_delay, Action.DECIDE_REVIEW, number)

    def usual_share(self, key: str, day: int) -> float:
        """The key's share of all reports over the 7 days before `day` (1.0 before any)."""
        if day not in self.weeks:
            week = Counter[str]()
            for past in range(day - 7, day):
                week.update(self.key_days.get(past, {}))
            self.weeks[day] = week
        week = self.weeks[day]
        total = week.total()
        return week[key] / total if total else 1.0

    def judge_now(self, number: int, at: datetime) -> None:
        info = self.pop.numbers[number]
        if info.scam and number in self.out.first_scam:
            self.watched.discard(number)
            return  # only its first moment as a scam is measured
        state = self.states[number]
        state.verdict = self.verdict_of(state, at)
        if state.verdict is not Verdict.SCAM:
            state.scam_since = None
            return
        if state.scam_since is None:
            state.scam_since = at
            self.out.first_scam.setdefault(number, at)
            if not info.scam and info.appeal_delay is not None and not state.appeal_pending:
                state.appeal_pending = True
                self.push(at + info.appeal_delay, Action.DELIST, number)

    def today(self, state: NumberState, now: datetime) -> Verdict:
        """Today's rule: a trusted listing, or 3 distinct reporter ids of any lane whose latest
        report is within the window."""
        if state.listed:
            return Verdict.SCAM
        start = window_start(now, self.today_rules)
        reporters = sum(
            1
            for voice in state.voices.values()
            if voice.last_report_at is not None and voice.last_report_at > start
        )
        if reporters >= self.today_rules.scam_reporters:
            return Verdict.SCAM
        return Verdict.SUSPICIOUS if reporters else Verdict.UNKNOWN

    def phoneblock(self, state: NumberState, now: datetime) -> Verdict:
        """PhoneBlock's vote counting (haumacher/phoneblock: DB.addRating, Ratings.getVotes,
        DB.MIN_VOTES, Ema): each user has one vote per number, capped at one however often
        they rate, +1 for a spam rating and -1 for a legitimate one, a changed rating
        replacing the old; the evidence decays with a 125-day half-life; the number is
        blocked when round(max(0, spam - legitimate)) reaches 4. No lanes, no trusted
        listings: any reporter id is a user."""
        spam = legitimate = 0.0
        for voice in state.voices.values():
            decayed = 0.5 ** ((now - voice.stance_at) / PHONEBLOCK_HALF_LIFE)
            if voice.stance is Stance.SCAM:
                spam += decayed
            else:
                legitimate += decayed
        votes = math.floor(max(0.0, spam - legitimate) + 0.5)
        if votes >= PHONEBLOCK_MIN_VOTES:
            return Verdict.SCAM
        return Verdict.SUSPICIOUS if votes > 0 else Verdict.UNKNOWN

    def new(self, state: NumberState, now: datetime) -> Verdict:
        """The new rule: callguard.reputation.judge on the Evidence the service builds."""
        start = window_start(now, self.rules)
        voices: list[Voice] = []
        groups: dict[tuple[Stance, datetime], tuple[datetime, datetime, int]] = {}
        for reporter, voice in state.voices.items():
            if voice.last_at <= start:
                continue
            if self.pop.reporters[reporter].lane is Lane.VERIFIED:
                voices.append(self.voice(reporter, voice))
                continue
            # Community ids come grouped by stance and the hour of their latest word, as
            # store/reports.py reads them: the earliest first word, the latest last word.
            hour = voice.last_at.replace(minute=0, second=0, microsecond=0)
            key = (voice.stance, hour)
            first, last, count = groups.get(key, (voice.first_at, voice.last_at, 0))
            groups[key] = (min(first, voice.first_at), max(last, voice.last_at), count + 1)
        for (stance, _), (first, last, count) in groups.items():
            voices.append(Voice(Lane.COMMUNITY, stance, first, last, count=count))
        evidence = Evidence(
            0,
            known=True,
            trusted_sources=("operator",) if state.listed else (),
            voices=tuple(voices),
            under_review=state.under_review,
        )
        return judge(evidence, now, self.rules).verdict

    def voice(self, reporter: int, state: VoiceState) -> Voice:
        record = self.record_of(reporter)
        if state.cached is None or state.cached_record != record:
            who = self.pop.reporters[reporter]
            state.cached = Voice(
                who.lane, state.stance, state.first_at, state.last_at, *record, listed=who.listed
            )
            state.cached_record = record
        return state.cached


def simulate(pop: Population, rule: Rule, rules: Rules, params: Params) -> Outcome:
    return World(pop, rule, rules, params).run()


@dataclass(frozen=True, slots=True)
class Summary:
    """One rule's figures over the main population."""

    legit: int
    wrongly_scam: int
    spoofed_scam: int
    attacked_scam: dict[str, int]
    """Wrongly scam legitimate numbers, by the most SIMs an attack on them used."""
    unattacked_scam: int
    eligible: int
    """Scam numbers reported by at least 3 honest verified people."""
    recalled: int
    median_hours: float
    """From the first report to scam, over the eligible numbers that reached it."""
    attacks_flagged: float
    campaigns_flagged: float
    delistings: int
    brigades_judged: int
    out_of_standing: int
    reporting_verified: int

    @property
    def recall(self) -> float:
        return self.recalled / self.eligible if self.eligible else 0.0

    @property
    def target_scam(self) -> int:
        """Wrongly scam legitimate numbers not spoofed and attacked with at most 2 SIMs."""
        return self.unattacked_scam + sum(
            count for sims, count in self.attacked_scam.items() if sims in ("0", "1", "2")
        )


def summarise(pop: Population, out: Outcome) -> Summary:
    legit = [n for n, number in enumerate(pop.numbers) if not number.scam]
    wrong = [n for n in legit if n in out.first_scam]
    spoofed = [n for n in wrong if pop.numbers[n].spoofed]
    attacked: dict[str, int] = {str(k): 0 for k in range(6)}
    unattacked = 0
    for n in wrong:
        sims = pop.numbers[n].attack_sims
        if pop.numbers[n].spoofed:
            continue
        if sims < 0:
            unattacked += 1
        else:
            attacked[str(sims)] += 1
    eligible = [n for n, reporters in pop.honest_verified.items() if len(reporters) >= 3]
    recalled = [n for n in eligible if n in out.first_scam]
    hours = [(out.first_scam[n] - out.first_report[n]) / timedelta(hours=1) for n in recalled]
    flagged_attacks = sum(
        any(a.start <= at <= a.end + timedelta(minutes=10) for at in out.flags.get(a.number, []))
        for a in pop.attacks
    )
    scam = [n for n, number in enumerate(pop.numbers) if number.scam]
    return Summary(
        legit=len(legit),
        wrongly_scam=len(wrong),
        spoofed_scam=len(spoofed),
        attacked_scam=attacked,
        unattacked_scam=unattacked,
        eligible=len(eligible),
        recalled=len(recalled),
        median_hours=statistics.median(hours) if hours else math.inf,
        attacks_flagged=flagged_attacks / len(pop.attacks) if pop.attacks else 0.0,
        campaigns_flagged=sum(bool(out.flags.get(n)) for n in scam) / len(scam) if scam else 0.0,
        delistings=out.delistings,
        brigades_judged=out.brigades_judged,
        out_of_standing=out.out_of_standing,
        reporting_verified=out.reporting_verified,
    )


MAX_SIMS = 5


def attack_cost(params: Params, seed: int, rules: Rules) -> dict[Rule, list[float]]:
    """Per rule, the share of attacked legitimate numbers branded scam, for k = 0..5 SIMs."""
    branded: dict[Rule, list[float]] = {rule: [] for rule in Rule}
    for sims in range(MAX_SIMS + 1):
        pop = cost_population(params, seed, sims)
        for rule in Rule:
            branded[rule].append(branded_share(pop, rule, rules, params))
    return branded


def branded_share(pop: Population, rule: Rule, rules: Rules, params: Params) -> float:
    """The share of the attacked numbers in an attack-cost population that the rule brands."""
    targets = {attack.number for attack in pop.attacks}
    out = simulate(pop, rule, rules, params)
    return sum(number in out.first_scam for number in targets) / len(targets)


def across_seeds(params: Params, seeds: int, sims: int, rules: Rules) -> list[float]:
    """The new rule's branded share in the attack-cost run with `sims` SIMs, for seeds
    1..seeds: a rate of a few percent shows on some seeds and not on others."""
    return [
        branded_share(cost_population(params, seed, sims), Rule.NEW, rules, params)
        for seed in range(1, seeds + 1)
    ]


def cheapest(shares: list[float]) -> int | None:
    """The fewest SIMs that branded at least one number, or None."""
    return next((sims for sims, share in enumerate(shares) if share > 0), None)


@dataclass(frozen=True, slots=True)
class Results:
    summaries: dict[Rule, Summary]
    branded: dict[Rule, list[float]]
    population: str

    @property
    def no_legit_scam_with_two_sims(self) -> bool:
        """Target 1, for the new rule."""
        new = self.summaries[Rule.NEW]
        return new.target_scam == 0 and not any(self.branded[Rule.NEW][:3])

    @property
    def recall_and_speed(self) -> bool:
        """Target 2, for the new rule."""
        new, today = self.summaries[Rule.NEW], self.summaries[Rule.TODAY]
        return new.recall >= 0.95 and new.median_hours <= today.median_hours


def run(params: Params, seed: int, rules: Rules) -> Results:
    pop = populate(params, seed)
    summaries = {rule: summarise(pop, simulate(pop, rule, rules, params)) for rule in Rule}
    return Results(summaries, attack_cost(params, seed, rules), describe(pop))


def describe(pop: Population) -> str:
    """What the main population came to: its reporters, attacks and events."""
    kinds = Counter(event.kind for event in pop.events)
    honest = sum(reporter.honest for reporter in pop.reporters)
    spoofed = sum(number.spoofed for number in pop.numbers)
    return (
        f"{sum(not n.scam for n in pop.numbers)} legitimate numbers ({spoofed} spoofed), "
        f"{sum(n.scam for n in pop.numbers)} scam numbers, {honest} honest reporters, "
        f"{len(pop.reporters) - honest} attacker and scammer ids or SIMs, "
        f"{len(pop.attacks)} attacks; {kinds[Kind.WORD]} fixed words, "
        f"{kinds[Kind.LEGIT_CALL]} calls a contact may answer, {kinds[Kind.LISTING]} listings"
    )


NAMES = {Rule.TODAY: "today's", Rule.PHONEBLOCK: "PhoneBlock's", Rule.NEW: "new"}


def table(results: Results) -> list[str]:
    s = results.summaries
    rows: list[tuple[str, Callable[[Rule], str]]] = [
        (
            "legitimate numbers wrongly scam",
            lambda r: f"{s[r].wrongly_scam} ({s[r].wrongly_scam / s[r].legit:.1%})",
        ),
        ("- spoofed by scammers", lambda r: str(s[r].spoofed_scam)),
        ("- attacked, community ids only", lambda r: str(s[r].attacked_scam["0"])),
        (
            "- attacked, 1-2 verified SIMs",
            lambda r: str(s[r].attacked_scam["1"] + s[r].attacked_scam["2"]),
        ),
        (
            "- attacked, 3-5 verified SIMs",
            lambda r: str(sum(s[r].attacked_scam[k] for k in "345")),
        ),
        ("- neither (honest errors)", lambda r: str(s[r].unattacked_scam)),
        (
            "recall, scam numbers with >= 3 honest verified reporters",
            lambda r: f"{s[r].recalled}/{s[r].eligible} ({s[r].recall:.1%})",
        ),
        ("median hours, first report to scam", lambda r: f"{s[r].median_hours:.1f}"),
        ("attack cost: verified SIMs to brand one", lambda r: sims_text(results.branded[r])),
    ]

    def branded(sims: int) -> Callable[[Rule], str]:
        return lambda rule: f"{results.branded[rule][sims]:.0%}"

    rows += [(f"- numbers branded with k = {k}", branded(k)) for k in range(MAX_SIMS + 1)]
    rows += [
        ("brigade_sign flags: attacks", lambda r: f"{s[r].attacks_flagged:.0%}"),
        ("brigade_sign flags: scam campaigns", lambda r: f"{s[r].campaigns_flagged:.1%}"),
        ("delistings on appeal", lambda r: str(s[r].delistings)),
        ("reviews judged a brigade", lambda r: str(s[r].brigades_judged)),
        (
            "honest verified reporters out of standing",
            lambda r: standing_text(s[r]) if r is Rule.NEW else "-",
        ),
    ]
    lines = [
        "| | " + " | ".join(NAMES[rule] for rule in Rule) + " |",
        "|---|" + "---:|" * len(Rule),
    ]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(rule) for rule in Rule) + " |")
    return lines


def standing_text(summary: Summary) -> str:
    share = summary.out_of_standing / max(1, summary.reporting_verified)
    return f"{summary.out_of_standing} of {summary.reporting_verified} ({share:.1%})"


def sims_text(shares: list[float]) -> str:
    sims = cheapest(shares)
    return f"> {MAX_SIMS}" if sims is None else str(sims)


def parse_rules(overrides: Sequence[str]) -> Rules:
    """Rules(...) with NAME=VALUE overrides; durations are in days."""
    defaults = Rules()
    values: dict[str, object] = {}
    for override in overrides:
        name, _, text = override.partition("=")
        if name not in {f.name for f in dataclasses.fields(Rules)}:
            raise ValueError(f"no Rules field {name!r}")
        default = getattr(defaults, name)
        if isinstance(default, timedelta):
            values[name] = timedelta(days=float(text))
        else:
            values[name] = type(default)(text)
    return dataclasses.replace(defaults, **values)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=Params.days)
    parser.add_argument("--legit", type=int, default=Params.legit, help="legitimate numbers")
    parser.add_argument("--scam", type=int, default=Params.scam, help="scam numbers")
    parser.add_argument("--reporters", type=int, default=Params.reporters, help="honest ones")
    parser.add_argument("--verified-share", type=float, default=Params.verified_share)
    parser.add_argument("--vouch", type=float, default=Params.vouch)
    parser.add_argument("--cost-targets", type=int, default=Params.cost_targets)
    parser.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="instead of the table: the new rule's attack-cost run for seeds 1..N, with k SIMs",
    )
    parser.add_argument(
        "--sims", type=int, action="append", metavar="K", help="k for --seeds (default 2, 3)"
    )
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Rules field for the new rule and the brigade check (durations in days)",
    )
    args = parser.parse_args()
    params = Params(
        days=args.days,
        legit=args.legit,
        scam=args.scam,
        reporters=args.reporters,
        verified_share=args.verified_share,
        vouch=args.vouch,
        cost_targets=args.cost_targets,
    )
    try:
        rules = parse_rules(args.rule)
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    print(f"command: {shlex.join(['python', *sys.argv])}")
    print(f"machine: {machine()}")
    if args.rule:
        print(f"rules:   {rules}")
    if args.seeds:
        for sims in args.sims or [2, 3]:
            shares = across_seeds(params, args.seeds, sims, rules)
            listed = ", ".join(f"{share:.0%}" for share in shares)
            mean = statistics.mean(shares)
            print(f"k = {sims}, branded for seeds 1..{args.seeds}: {listed} (mean {mean:.1%})")
        print(f"simulated in {time.perf_counter() - started:.1f} s")
        return 0
    results = run(params, args.seed, rules)
    print(f"population: {results.population}")
    print()
    for line in table(results):
        print(line)
    print()
    one = "PASS" if results.no_legit_scam_with_two_sims else "FAIL"
    two = "PASS" if results.recall_and_speed else "FAIL"
    print(f"target 1, no legitimate number scam with <= 2 SIMs (new rule): {one}")
    print(f"target 2, recall >= 95% and median no worse than today's (new rule): {two}")
    print(f"simulated in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
