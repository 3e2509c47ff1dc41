"""The verdict simulation (benchmarks/verdict_sim.py) on a small population with a fixed seed.

What holds: community ids and one verified SIM brand no legitimate number under the new rule,
while today's rule and PhoneBlock's brand them with community ids alone; the new rule recalls
the scams that 3 honest verified people reported. What does not, marked xfail until the rules
change (docs/verdicts.md, Simulation, "Where it falls short"): two SIMs and one honest
contact's mistake brand about 1 % of attacked numbers, and the new rule is slower than
today's.
"""

from __future__ import annotations

import pytest
from callguard.reputation import Rules

from benchmarks.verdict_sim import (
    Params,
    Results,
    Rule,
    branded_share,
    cheapest,
    cost_population,
    run,
)

SMALL = Params(
    legit=300, scam=80, reporters=4000, brigades=10, sim_attackers=2, spoofed=8, cost_targets=10
)
SEED = 20261130


@pytest.fixture(scope="module")
def results() -> Results:
    return run(SMALL, SEED, Rules())


def test_the_population_has_what_the_targets_are_measured_on(results: Results) -> None:
    assert results.summaries[Rule.NEW].eligible >= 30  # scams with >= 3 honest verified reporters
    assert sum(results.summaries[Rule.TODAY].attacked_scam.values()) >= 20


def test_community_ids_and_one_sim_brand_no_legitimate_number_under_the_new_rule(
    results: Results,
) -> None:
    new = results.summaries[Rule.NEW]
    assert new.attacked_scam["0"] == new.attacked_scam["1"] == new.unattacked_scam == 0
    assert results.branded[Rule.NEW][:2] == [0.0, 0.0]  # k = 0, 1 SIMs


def test_today_and_phoneblock_brand_legitimate_numbers_under_a_community_brigade(
    results: Results,
) -> None:
    for rule in (Rule.TODAY, Rule.PHONEBLOCK):
        assert results.summaries[rule].attacked_scam["0"] > 0
        assert cheapest(results.branded[rule]) == 0  # community ids alone are enough


@pytest.mark.xfail(
    reason="two SIMs and one contact's mistaken verified report (2-5 % of a contact's words) "
    "are 3 phones with nothing against them, which any rule that takes 3 phones accepts: "
    "about 1 % of numbers attacked with 2 SIMs over seeds 1-10",
    strict=True,
)
def test_two_sims_brand_no_legitimate_number_under_the_new_rule(results: Results) -> None:
    assert results.summaries[Rule.NEW].target_scam == 0
    # The rate is about 1 %: 100 attacked numbers show it where the small run's 10 may not.
    # With this seed they brand 1 of 100 (with the benchmark's seed 1, none).
    pop = cost_population(Params(cost_targets=100), SEED, sims=2)
    assert branded_share(pop, Rule.NEW, Rules(), Params()) == 0.0


def test_the_new_rule_recalls_95_percent_of_scams_with_3_honest_verified_reporters(
    results: Results,
) -> None:
    assert results.summaries[Rule.NEW].recall >= 0.95


@pytest.mark.xfail(
    reason="community reports never make a scam, where today's rule takes any three ids; and "
    "at z = 1.5 each verified not-scam answer (a ring's SIM, an honest mistake) needs two more "
    "scam phones, where today's rule ignores answers",
    strict=True,
)
def test_the_new_rule_is_no_slower_than_today(results: Results) -> None:
    new, today = results.summaries[Rule.NEW], results.summaries[Rule.TODAY]
    assert new.median_hours <= today.median_hours
