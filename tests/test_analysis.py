"""sar_lib.analysis: the claim's arithmetic, statistics over seeds, behaviour counts and curves."""

import json

import pytest

from sar_lib.analysis import count_behaviours, mean_curves, paper_claim, stats


def test_paper_claim_arithmetic():
    grpo = {"accuracy": 0.50, "mean_length": 100.0}
    ok = paper_claim(grpo, {"accuracy": 0.495, "mean_length": 79.0})
    assert ok["length_reduction"] == pytest.approx(0.21) and ok["accuracy_drop_points"] == pytest.approx(0.5)
    assert ok["holds"] and ok["shorter_enough"] and ok["accurate_enough"]
    assert paper_claim(grpo, {"accuracy": 0.49, "mean_length": 80.0})["holds"]       # both limits exactly met
    too_long = paper_claim(grpo, {"accuracy": 0.60, "mean_length": 81.0})
    assert not too_long["holds"] and not too_long["shorter_enough"] and too_long["accuracy_drop_points"] < 0
    too_wrong = paper_claim(grpo, {"accuracy": 0.485, "mean_length": 50.0})
    assert not too_wrong["holds"] and too_wrong["accuracy_drop_points"] == pytest.approx(1.5)
    assert paper_claim({"accuracy": 0.1, "mean_length": 0.0}, {"accuracy": 0.1, "mean_length": 5.0})["holds"] is None


def test_stats_mean_and_sample_std():
    s = stats([0.1, 0.2, 0.3])
    assert s["per_seed"] == [0.1, 0.2, 0.3] and s["mean"] == pytest.approx(0.2) and s["std"] == pytest.approx(0.1)
    assert stats([0.4])["std"] == 0.0 and stats([None, 2.0])["mean"] == 2.0 and stats([None])["mean"] is None


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
            json.dumps({"step": s, "reward/total": r, "length/correct_mean": c}) + "\n" for s, r, c in rows))
    curves = mean_curves([tmp_path / "a", tmp_path / "b"], ["reward/total", "length/correct_mean"])
    assert curves["reward/total"] == {"step": [1, 2], "mean": [2.0, 4.0], "std": [pytest.approx(2 ** 0.5)] * 2}
    assert curves["length/correct_mean"] == {"step": [1, 2], "mean": [15.0, 40.0],
                                             "std": [pytest.approx(50 ** 0.5), 0.0]}
