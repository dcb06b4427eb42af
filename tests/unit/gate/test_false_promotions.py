"""Issue 15's acceptance figure: over 100 simulated gates where the candidate is no better than the champion (the
same per-example quality, each answer with its own noise) at most 5 promote; over 100 where it is clearly better at
least 90 do. Deterministic: every gate's data and bootstrap are seeded. The models, the leads and the 1,000-gate
figures are in tests/bench/gate_errors.py; here the two metrics `auto` chooses between. Run with -s to see the
counts."""

from __future__ import annotations

import pytest

from tests.bench.gate_errors import SCENARIOS, Scenario, count_promotions

GATES = 100
CHOSEN_BY_AUTO = [scenario for scenario in SCENARIOS if scenario.metric in ("exact_match", "pairwise")]


def _named(scenario: Scenario) -> str:
    return scenario.metric


@pytest.mark.parametrize("scenario", CHOSEN_BY_AUTO, ids=_named)
def test_a_candidate_no_better_than_the_champion_is_promoted_at_most_5_times_in_100(scenario: Scenario) -> None:
    count = count_promotions(scenario, 0.0, GATES)
    print(f"{scenario.metric}, no better: {count.promoted} of {GATES} promoted")
    assert count.gates == GATES
    assert count.promoted <= 5


@pytest.mark.parametrize("scenario", CHOSEN_BY_AUTO, ids=_named)
def test_a_clearly_better_candidate_is_promoted_at_least_90_times_in_100(scenario: Scenario) -> None:
    count = count_promotions(scenario, scenario.clear_lead, GATES)
    print(f"{scenario.metric}, better by {scenario.clear_lead:g}: {count.promoted} of {GATES} promoted")
    assert count.gates == GATES
    assert count.promoted >= 90
