"""sar_lib.lab.analysis: statistics over seeds, behaviour counts, answer styles and curves."""

import json

import pytest

from sar_lib.lab.analysis import budget_curve, count_behaviours, mean_curves, stats, style_shares


def test_stats_mean_and_sample_std():
    s = stats([0.1, 0.2, 0.3])
    assert s["per_seed"] == [0.1, 0.2, 0.3] and s["mean"] == pytest.approx(0.2) and s["std"] == pytest.approx(0.1)
    assert stats([0.4])["std"] == 0.0 and stats([None, 2.0])["mean"] == 2.0 and stats([None])["mean"] is None


def test_style_shares_of_hand_made_answers():
    texts = ["Let me think about this step by step. First, 3 + 4 = 7. The answer is 7.", "The answer is 5.",
             "garbled 7 = 7",
             "Let me think about this step by step. First, 3 + 4 = 7. The answer is 7. Let me double-check."]
    assert style_shares(texts) == {"verbose": 0.25, "concise": 0.25, "answer_only": 0.25, "other": 0.25}
    assert set(style_shares([]).values()) == {0.0}


def test_behaviour_counts_on_hand_made_answers():
    texts = [
        "First, 3 + 4 = 7. Then 7 * 2 = 14. Let me double-check: 14 / 2 = 7. Correct. The answer is 14.",
        "Wait, let me recompute 9 - 2. It is 7. The answer is 7.",
        "The answer is 5.",
        "We are told: Tom has 3 apples. Next, 3 + 1 = 4. Finally the answer is 4. Checking again: yes.",
    ]
    counts = count_behaviours(texts)
    # verification: "check" (double-check) + "Correct." in 1; "Checking" in 4 -> 3 matches, 2 answers
    assert counts["verification"] == {"per_answer": 3 / 4, "share": 2 / 4}
    # backtracking: "Wait" + "let me recompute" in 2
    assert counts["backtracking"] == {"per_answer": 2 / 4, "share": 1 / 4}
    # enumeration: First, Then in 1; Next, Finally in 4
    assert counts["enumeration"] == {"per_answer": 4 / 4, "share": 2 / 4}
    assert counts["restatement"] == {"per_answer": 1 / 4, "share": 1 / 4}
    assert count_behaviours([])["verification"] == {"per_answer": 0.0, "share": 0.0}
    # whole words only: "thence" is not "then", "firstly" is not "first"
    assert count_behaviours(["thence firstly"])["enumeration"]["per_answer"] == 0


def test_mean_curves_average_runs_step_by_step(tmp_path):
    for name, rows in {"a": [(1, 1.0, 10.0), (2, 3.0, None)], "b": [(1, 3.0, 20.0), (2, 5.0, 40.0)]}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text("".join(
            json.dumps({"step": s, "reward": r, "completions/mean_length_correct": c}) + "\n" for s, r, c in rows))
    curves = mean_curves([tmp_path / "a", tmp_path / "b"], ["reward", "completions/mean_length_correct"])
    assert curves["reward"] == {"step": [1, 2], "mean": [2.0, 4.0], "std": [pytest.approx(2 ** 0.5)] * 2}
    assert curves["completions/mean_length_correct"] == {"step": [1, 2], "mean": [15.0, 40.0],
                                             "std": [pytest.approx(50 ** 0.5), 0.0]}


def write_metrics(directory, rows):
    """A run folder's metrics.jsonl: ``rows`` = [(step, eval accuracy or None, eval mean length)]."""
    directory.mkdir()
    (directory / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "reward": 0.5, **({} if a is None else {"eval/accuracy": a, "eval/mean_length": n})})
        + "\n" for s, a, n in rows))
    return directory


def test_budget_curve_over_seeds_from_the_base_model_on(tmp_path):
    # two seeds evaluated at steps 2 and 4; seed a also at step 3, which b lacks: left out
    a = write_metrics(tmp_path / "a", [(1, None, 0), (2, 0.5, 30.0), (3, 0.6, 28.0), (4, 0.7, 20.0)])
    b = write_metrics(tmp_path / "b", [(1, None, 0), (2, 0.3, 40.0), (3, None, 0), (4, 0.5, 24.0)])
    curve = budget_curve([a, b], rollouts_per_step=16 * 6, base={"accuracy": 0.4, "mean_length": 35.0, "n": 200})
    assert [(e["step"], e["rollouts"]) for e in curve] == [(0, 0), (2, 2 * 96), (4, 4 * 96)]
    assert curve[0]["accuracy"] == {"per_seed": [0.4], "mean": 0.4, "std": 0.0}
    assert curve[0]["mean_length"]["mean"] == 35.0
    assert curve[1]["accuracy"]["per_seed"] == [0.5, 0.3] and curve[1]["accuracy"]["mean"] == pytest.approx(0.4)
    assert curve[1]["accuracy"]["std"] == pytest.approx(stats([0.5, 0.3])["std"]) and curve[1]["accuracy"]["std"] > 0
    assert curve[2]["mean_length"] == stats([20.0, 24.0])


def test_budget_curve_of_one_seed_has_no_spread_and_no_base_point_without_a_base(tmp_path):
    a = write_metrics(tmp_path / "a", [(1, 0.2, 50.0), (2, 0.4, 45.0)])
    curve = budget_curve([a], rollouts_per_step=6)
    assert [(e["step"], e["rollouts"]) for e in curve] == [(1, 6), (2, 12)]
    assert all(e[k]["std"] == 0.0 and len(e[k]["per_seed"]) == 1 for e in curve for k in ("accuracy", "mean_length"))
    assert [e["accuracy"]["mean"] for e in curve] == [0.2, 0.4]
