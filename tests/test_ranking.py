"""Pairwise ranking statistics on hand-made numbers; answer sets; scores agree with sar.score_answers."""

from __future__ import annotations

import math
import random

import pytest
import torch

from sar_lib import sar, synthetic
from sar_lib.lab import ranking


def test_pairwise_accuracy_counts_wins_and_half_ties():
    assert ranking.pairwise_accuracy([3.0, 2.0, 1.0], [1.0, 2.0, 3.0]) == pytest.approx(0.5)   # win, tie, loss
    assert ranking.pairwise_accuracy([1.0, 2.0], [0.0, 0.0]) == 1.0
    assert ranking.pairwise_accuracy(torch.tensor([0.1, 0.2, 0.3, 0.4]), torch.tensor([0.2, 0.1, 0.5, 0.0])) == 0.5
    assert ranking.pairwise_accuracy([5.0], [5.0]) == 0.5


@pytest.mark.parametrize("first,second", [([1.0, 2.0], [1.0]), ([], []), ([[1.0]], [[1.0]])])
def test_pairwise_accuracy_rejects_bad_shapes(first, second):
    with pytest.raises(ValueError, match="1-D series"):
        ranking.pairwise_accuracy(first, second)


def _hand_scores():
    """Three problems; concise beats redundant on SAR everywhere, loses on length once (a tie)."""
    def metrics(sar_values, ppl_qa, n_tokens, certainty):
        return {"sar": torch.tensor(sar_values), "ppl_qa": torch.tensor(ppl_qa),
                "n_tokens": torch.tensor(n_tokens), "self_certainty": torch.tensor(certainty)}
    return {
        "concise_correct": metrics([0.8, 0.7, 0.9], [1.5, 1.2, 2.0], [20, 30, 25], [3.0, 3.0, 3.0]),
        "redundant_correct": metrics([0.3, 0.2, 0.4], [1.4, 1.3, 2.5], [80, 30, 90], [2.0, 4.0, 3.0]),
    }


def test_ranking_table_on_hand_made_scores():
    pair = ("concise_correct", "redundant_correct")
    table = ranking.ranking_table(_hand_scores(), [pair])
    label = ranking.pair_label(pair)
    assert label == "concise > redundant"
    assert table["SAR"][label] == 1.0
    assert table["-ppl(a|q)"][label] == pytest.approx(2 / 3)     # 1.5 > 1.4 loses, 1.2 < 1.3 and 2.0 < 2.5 win
    assert table["-length"][label] == pytest.approx(2.5 / 3)     # shorter twice, a tie once
    assert table["self-certainty"][label] == pytest.approx(1.5 / 3)
    assert set(table) == set(ranking.CRITERIA)


def test_ranking_table_errors_name_the_problem():
    with pytest.raises(ValueError, match="no scores for answer type"):
        ranking.ranking_table(_hand_scores(), [("concise_correct", "incorrect")])
    with pytest.raises(ValueError, match="unknown criteria"):
        ranking.ranking_table(_hand_scores(), [("concise_correct", "redundant_correct")], names=["BLEU"])


def test_mean_and_interval_by_hand():
    mean, half = ranking.mean_and_interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(1.96 * 1.0 / math.sqrt(3))       # sample std 1, n = 3
    assert ranking.mean_and_interval([4.0]) == (4.0, 0.0)
    summary = ranking.type_summary(_hand_scores(), "sar", types=["concise_correct"])
    assert summary["concise_correct"][0] == pytest.approx(0.8)


def test_answer_sets_are_deterministic_and_hold_every_type():
    problems = synthetic.arithmetic_problems(6, 0, split="test", min_steps=2)
    sets = ranking.answer_sets(problems, seed=3)
    assert sets == ranking.answer_sets(problems, seed=3)
    assert sets != ranking.answer_sets(problems, seed=4)
    assert all(list(s) == list(synthetic.ANSWER_TYPES) + list(ranking.PROBE_TYPES) for s in sets)
    assert list(ranking.answer_sets(problems, 3, probe=False)[0]) == list(synthetic.ANSWER_TYPES)
    for problem, s in zip(problems, sets):
        assert s["concise_restated"].endswith(s["concise_correct"])
        assert s["concise_filler"].endswith(s["concise_correct"])
        first_sentence = problem.question.split(". ")[0]
        assert first_sentence in s["concise_restated"] and first_sentence not in s["concise_filler"]
        assert s["concise_correct"].endswith(f"The answer is {problem.gold}.")
    with pytest.raises(ValueError, match="at least 2 problems"):
        ranking.answer_sets(problems[:1], 0)


def test_probe_filler_is_about_as_long_as_the_restatement():
    problem = synthetic.arithmetic_problems(1, 5, split="test", min_steps=3)[0]
    probe = ranking.probe_answers(problem, "1 + 1 = 2. The answer is 2.", random.Random(0))
    restated = len(probe["concise_restated"].split())
    filler = len(probe["concise_filler"].split())
    assert restated <= filler <= restated + 12


def test_score_rewards_matches_score_answers(tiny_model, tiny_tokenizer):
    questions = ["Tom has 3 apples and buys 5 more. How many apples does Tom have now?"] * 2 + ["Is Max a yumpus?"]
    answers = ["3 + 5 = 8. The answer is 8.", "The answer is 8.", ""]
    got = ranking.score_rewards(tiny_model, tiny_tokenizer, questions, answers, batch_size=2)
    want = sar.score_answers(tiny_model, tiny_tokenizer, questions, answers, batch_size=2)
    assert set(got) == set(ranking.METRICS)
    for key in ("sar", "ppl_qa", "ppl_a", "nll_qa", "nll_a"):
        assert torch.allclose(got[key], torch.tensor([w[key] for w in want]), atol=1e-5), key
    assert got["n_tokens"].tolist() == [w["n_tokens"] for w in want]
    assert (got["self_certainty"] >= 0).all() and got["self_certainty"].shape == (3,)
    with pytest.raises(ValueError, match="one question per answer"):
        ranking.score_rewards(tiny_model, tiny_tokenizer, questions, answers[:2])


def test_score_answer_sets_regroups_by_type(tiny_model, tiny_tokenizer):
    problems = synthetic.arithmetic_problems(3, 1, split="test", min_steps=2, max_steps=2)
    sets = ranking.answer_sets(problems, 0, probe=False)
    scores = ranking.score_answer_sets(tiny_model, tiny_tokenizer, problems, sets, batch_size=5)
    assert list(scores) == list(synthetic.ANSWER_TYPES)
    i, t = 2, "partially_correct"
    alone = sar.score_answers(tiny_model, tiny_tokenizer, [problems[i].question], [sets[i][t]])[0]
    assert scores[t]["sar"][i].item() == pytest.approx(alone["sar"], abs=1e-5)
    assert scores[t]["n_tokens"][i].item() == alone["n_tokens"]
    with pytest.raises(ValueError, match="same answer types"):
        ranking.score_answer_sets(tiny_model, tiny_tokenizer, problems[:2], [sets[0], {"x": "y"}])
    with pytest.raises(ValueError, match="one set per problem"):
        ranking.score_answer_sets(tiny_model, tiny_tokenizer, problems, sets[:2])


def test_criteria_are_higher_is_better():
    values = ranking.criteria(_hand_scores()["concise_correct"])
    assert list(values) == list(ranking.CRITERIA)
    assert values["-length"].tolist() == [-20.0, -30.0, -25.0]
    assert values["-ppl(a|q)"].tolist() == pytest.approx([-1.5, -1.2, -2.0])


def test_select_keeps_the_chosen_problems():
    subset = ranking.select(_hand_scores(), [True, False, True])
    assert subset["concise_correct"]["n_tokens"].tolist() == [20, 25]
    assert ranking.ranking_table(subset, [("concise_correct", "redundant_correct")])["-length"]["concise > redundant"] == 1.0
    with pytest.raises(ValueError, match="cover 3 problems"):
        ranking.select(_hand_scores(), [True, False])


def test_gain_split_sums_prefix_and_suffix():
    alone = {"n_tokens": 4, "tokens": ["8", " +", " 1", "<e>"], "information_gain": [3.0, 1.0, 2.0, 0.0]}
    padded = {"n_tokens": 6, "tokens": ["We", " told", " 8", " -", " 1", "<e>"],
              "information_gain": [0.5, 1.5, 0.2, 0.3, 1.0, 0.0]}
    with pytest.raises(ValueError, match="does not end with the tokens"):
        ranking.gain_split(padded, alone)
    padded["tokens"] = ["We", " told", " 8", " +", " 1", "<e>"]
    split = ranking.gain_split(padded, alone)
    assert split["prefix"] == pytest.approx(2.2) and split["prefix_tokens"] == 3    # We, told, " 8"
    assert split["suffix"] == pytest.approx(1.3) and split["alone"] == pytest.approx(3.0)
    assert split["mean_padded"] == pytest.approx(3.5 / 6) and split["mean_alone"] == pytest.approx(1.5)
