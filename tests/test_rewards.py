"""Group rewards against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sar_lib import rewards
from sar_lib.rewards import (DEFAULT_ALPHAS, REWARD_NAMES, REWARDS, auxiliary_reward, combine, correctness,
                             efficient_reasoner, entropy_minimisation, length_penalty, o1_pruner, reward_spec,
                             self_certainty)


def _close(actual, expected, tol=1e-6):
    assert actual.dtype == torch.float32
    assert torch.allclose(actual, torch.tensor(expected, dtype=torch.float32), atol=tol), (actual, expected)


def test_correctness_grades_each_answer_of_the_group():
    answers = ["So 9 * 2 = 18. The answer is 18.", "The answer is \\boxed{17}", "18.0", "no idea"]
    _close(correctness(answers, "#### 18"), [1.0, 0.0, 1.0, 0.0])
    _close(correctness(["The answer is (B)", "A"], "B", "choice"), [1.0, 0.0])
    _close(correctness(["We get 18.", "The answer is 18."], "18", strict=True), [0.0, 1.0])


def test_o1_pruner_matches_hand_values_and_clips():
    # Lbar = (10 + 20 + 30) / 3 = 20 -> (20-10)/10 = 1, 0, (20-30)/30 = -1/3
    _close(o1_pruner(torch.tensor([10, 20, 30])), [1.0, 0.0, -1.0 / 3.0])
    # Lbar = 41 -> (41-1)/1 = 40 clipped to 1; (41-81)/81 = -40/81
    _close(o1_pruner(torch.tensor([1.0, 81.0])), [1.0, -40.0 / 81.0])
    _close(o1_pruner(torch.tensor([7, 7, 7])), [0.0, 0.0, 0.0])


def test_o1_pruner_long_answers_and_empty_answers():
    # (Lbar - L)/L = Lbar/L - 1 > -1 for lengths >= 0, so only the upper clip ever acts:
    # L = 1 and 1000: Lbar = 500.5 -> 499.5 clipped to 1, and (500.5 - 1000)/1000 = -0.4995.
    _close(o1_pruner(torch.tensor([1.0, 1000.0])), [1.0, -0.4995])
    _close(o1_pruner(torch.tensor([0.0, 4.0])), [1.0, -0.5])   # an empty answer reads as L = 1


def test_efficient_reasoner_matches_the_official_formula():
    lengths = torch.tensor([10.0, 20.0, 30.0, 40.0])
    correct = torch.tensor([1.0, 1.0, 0.0, 1.0])
    ok = np.array([10.0, 20.0, 40.0])
    mu, sigma = ok.mean(), ok.std()   # population std, as the official np.std
    expected = [-(2 / (1 + math.exp(-(length - mu) / (sigma + 1e-5))) - 1) for length in (10.0, 20.0)]
    expected = [expected[0], expected[1], 0.0, -(2 / (1 + math.exp(-(40.0 - mu) / (sigma + 1e-5))) - 1)]
    _close(efficient_reasoner(lengths, correct), expected)
    r = efficient_reasoner(lengths, correct)
    assert r[0] > 0 > r[3]            # shorter correct answers are rewarded, longer penalised
    # two correct answers: mu = 15, sigma = 5 -> -(2 sigmoid(-1) - 1) = tanh(1/2)
    _close(efficient_reasoner(torch.tensor([10, 20, 99]), torch.tensor([True, True, False])),
           [math.tanh(0.5), -math.tanh(0.5), 0.0], tol=1e-5)


@pytest.mark.parametrize("correct", [[0, 0, 0], [0, 1, 0], [1, 0, 0]])
def test_efficient_reasoner_is_zero_with_at_most_one_correct_answer(correct):
    _close(efficient_reasoner(torch.tensor([5, 50, 500]), torch.tensor(correct)), [0.0, 0.0, 0.0])


def test_efficient_reasoner_equal_lengths_give_zero():
    _close(efficient_reasoner(torch.tensor([8, 8, 8]), torch.tensor([1, 1, 1])), [0.0, 0.0, 0.0])


def test_entropy_minimisation_is_minus_mean_nll():
    nll = torch.tensor([0.5, 2.0, 0.0], requires_grad=True)
    r = entropy_minimisation(nll)
    _close(r, [-0.5, -2.0, 0.0])
    assert not r.requires_grad   # rewards are constants for the policy gradient


def test_self_certainty_is_the_masked_mean_over_answer_tokens():
    certainty = torch.tensor([[1.0, 2.0, 3.0, 100.0], [4.0, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]])
    mask = torch.tensor([[True, True, True, False], [True, False, False, False], [False] * 4])
    _close(self_certainty(certainty, mask), [2.0, 4.0, 0.0])
    with pytest.raises(ValueError, match=r"\[G, T\]"):
        self_certainty(certainty, mask[:, :2])


def test_length_penalty():
    _close(length_penalty(torch.tensor([0, 64, 128]), 128), [0.0, -0.5, -1.0])
    with pytest.raises(ValueError, match="max_length"):
        length_penalty(torch.tensor([1]), 0)


def test_combine():
    _close(combine(torch.tensor([1.0, 0.0]), torch.tensor([0.5, -1.0]), 0.2), [1.1, -0.2])
    with pytest.raises(ValueError, match="group has 2 answers"):
        combine(torch.tensor([1.0, 0.0]), torch.tensor([0.5]), 0.2)
    with pytest.raises(ValueError, match="1-D"):
        combine(torch.ones(2, 2), torch.ones(2, 2), 0.2)


def test_the_table_says_what_each_reward_needs():
    assert REWARD_NAMES == tuple(REWARDS) == ("sar", "shuffled_sar", "o1", "er", "em", "certainty", "length", "none")
    assert DEFAULT_ALPHAS == {name: spec.alpha for name, spec in REWARDS.items()}
    assert DEFAULT_ALPHAS["sar"] == 0.2 and DEFAULT_ALPHAS["none"] == 0.0
    assert {n for n, s in REWARDS.items() if s.needs_group} == {"o1", "er", "shuffled_sar"}
    assert {n for n, s in REWARDS.items() if s.needs_sar_pass} == {"sar", "shuffled_sar"}
    assert {n for n, s in REWARDS.items() if s.needs_certainty} == {"certainty"}
    assert reward_spec("er").inputs == ("lengths", "correct")
    with pytest.raises(ValueError, match="unknown reward 'ppl': use one of sar, shuffled_sar"):
        reward_spec("ppl")


def test_registry_and_dispatch():
    lengths, correct = torch.tensor([10, 20, 30]), torch.tensor([1, 1, 0])
    _close(auxiliary_reward("o1", lengths=lengths), o1_pruner(lengths).tolist())
    _close(auxiliary_reward("er", lengths=lengths, correct=correct), efficient_reasoner(lengths, correct).tolist())
    _close(auxiliary_reward("em", nll_qa=torch.tensor([1.0, 2.0, 3.0])), [-1.0, -2.0, -3.0])
    _close(auxiliary_reward("sar", sar=torch.tensor([0.1, -1.0, 0.3])), [0.1, -1.0, 0.3])
    assert sorted(auxiliary_reward("shuffled_sar", sar=torch.tensor([0.1, -1.0, 0.3])).tolist()) == pytest.approx([-1.0, 0.1, 0.3])
    _close(auxiliary_reward("length", lengths=lengths, max_length=40), [-0.25, -0.5, -0.75])
    _close(auxiliary_reward("certainty", certainty=torch.ones(3, 2), mask=torch.ones(3, 2)), [1.0, 1.0, 1.0])
    _close(auxiliary_reward("none", lengths=lengths), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="needs correct"):
        auxiliary_reward("er", lengths=lengths)
    with pytest.raises(ValueError, match="unknown reward"):
        auxiliary_reward("ppl")


def test_bad_lengths_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        rewards.o1_pruner(torch.tensor([-1, 3]))
    with pytest.raises(ValueError, match="correct has 2 values"):
        efficient_reasoner(torch.tensor([1, 2, 3]), torch.tensor([1, 1]))
