"""The premise measurements of the testbed's model card (sar_lib.lab.premises) on small fixtures."""

import math

import pytest

from sar_lib.lab import premises
from sar_lib.models import load_model
from sar_lib.data import SYNTHETIC_SETS
from sar_lib.synthetic import answer_style, solution


def test_first_token_gain_averages_absolute_gains_of_the_first_tokens():
    gains = [[1.0, -1.0, 2.0, 9.0], [0.5], [-3.0, 0.0, 0.0]]
    # (1 + 1 + 2) / 3, 0.5 / 1, 3 / 3
    assert premises.first_token_gain(gains, k=3) == pytest.approx((4 / 3 + 0.5 + 1.0) / 3)
    with pytest.raises(ValueError):
        premises.first_token_gain([[]])


def test_other_answer_sar_counts_questions_whose_own_answer_scores_higher():
    out = premises.other_answer_sar([0.5, 0.2, 0.1], [-0.3, 0.4, 0.0])
    assert out == pytest.approx({"own_mean": 0.8 / 3, "other_mean": 0.1 / 3, "own_beats_other": 2 / 3})
    with pytest.raises(ValueError):
        premises.other_answer_sar([0.1], [])


def test_long_vs_short_accuracy_is_a_per_question_difference_around_the_median():
    samples = [
        [(10, False), (20, True), (30, True), (40, True)],   # median 25: long 1.0, short 0.5 -> +0.5
        [(10, True), (10, True), (50, False), (50, True)],   # median 30: long 0.5, short 1.0 -> -0.5
        [(7, True), (7, False)],                             # one length only: skipped
    ]
    out = premises.long_vs_short_accuracy(samples)
    assert out["n_questions"] == 2
    assert out["mean"] == pytest.approx(0.0)
    assert out["stderr"] == pytest.approx(math.sqrt(0.5) / math.sqrt(2))
    assert out["long_accuracy"] == pytest.approx(3 / 4) and out["short_accuracy"] == pytest.approx(3 / 4)
    with pytest.raises(ValueError):
        premises.long_vs_short_accuracy([[(5, True), (5, False)]])


def test_style_gap_compares_the_two_reasoning_styles_with_its_standard_error():
    styles = ["verbose"] * 4 + ["concise"] * 5 + ["answer_only"]
    correct = [True, True, False, True] + [True, False, True, True, True] + [False]
    out = premises.style_gap(styles, correct)
    assert out["difference"] == pytest.approx(0.75 - 0.8) and out["n_verbose"] == 4 and out["n_concise"] == 5
    assert out["stderr"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4 + 0.8 * 0.2 / 5))
    assert premises.style_gap(["concise"], [True])["difference"] is None


def test_room_to_cut_uses_the_shortest_correct_sample_of_each_question():
    greedy = [60, 40, 99]
    samples = [[(30, True), (20, False), (45, True)], [(20, True)], [(10, False)]]   # the third: no correct sample
    out = premises.room_to_cut(greedy, samples)
    assert out["n_questions"] == 2
    assert out["ratio"] == pytest.approx(50 / 25)
    with pytest.raises(ValueError):
        premises.room_to_cut([1], [])


def test_answer_style_reads_the_corpus_styles_back():
    problems = SYNTHETIC_SETS["arith-train"](30, 0)
    import random

    rng = random.Random(0)
    for problem in problems:
        for style in ("answer_only", "concise", "verbose"):
            assert answer_style(solution(problem, style, rng)) == style
    assert answer_style("7 7 7 apples") == "other"


def test_measure_premises_reports_every_premise_on_the_embedded_model():
    model, tokenizer = load_model("tiny")
    problems = SYNTHETIC_SETS["arith-test"](6, 0)
    out = premises.measure_premises(model, tokenizer, problems, samples_per_item=3, max_new_tokens=96)
    for key in ("P1_marginal", "P2_harmless_verbosity", "P3_room_to_cut", "P4_too_short_exists", "P5_room_for_rl"):
        assert isinstance(out[key]["holds"], bool), key
    assert out["n_problems"] == 6 and out["samples_per_item"] == 3
    assert 0.0 <= out["P5_room_for_rl"]["greedy_accuracy"] <= 1.0
    assert math.isclose(sum(out["style_shares"].values()), 1.0)
    assert set(out["sar_by_style"]) >= {"concise", "verbose", "answer_only", "concise_beats_verbose"}
