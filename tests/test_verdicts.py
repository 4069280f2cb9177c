"""The notebooks' verdicts: every number they state comes from their inputs, and the wording follows
the numbers (claims held or not, regime, chance level)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sar_lib import verdicts
from sar_lib import claims
from sar_lib.claims import check_claims

REPO = Path(__file__).resolve().parent.parent


def _method(accuracy: float, length: float, *, seconds: float = 100.0, seeds=(0, 1, 2), drift=None,
            spread: float = 0.2, logic: float = 0.5) -> dict:
    """A grid entry: per seed k of ``seeds``, length + (k - 1) * spread tokens and accuracy + (k - 1) * spread
    / 100 (seeds ``spread`` tokens and points apart) on arith-test, 5 tokens longer at ``logic`` on logic-test."""
    offsets = [spread * (k - (len(seeds) - 1) / 2) for k in range(len(seeds))]
    sets = {"arith-test": (accuracy, length), "logic-test": (logic, length + 5)}

    def stat(values):
        return {"mean": sum(values) / len(values), "per_seed": values}
    entry = {"seeds": list(seeds), "train_seconds": stat([seconds + o for o in offsets]),
             "eval": {d: {"accuracy": stat([a + o / 100 for o in offsets]), "mean_length": stat([n + o for o in offsets]),
                          "n": 200} for d, (a, n) in sets.items()}}
    if drift:
        entry["training_drift"] = {"completions/mean_length": {"first_5_steps": drift[0], "last_5_steps": drift[1]}}
    return entry


def _grid(sa_accuracy: float, sa_length: float, *, spread: float = 0.2, shuffled: float | None = None,
          grpo_accuracy: float = 0.70, logic: float = 0.5) -> dict:
    """A grid summary with GRPO at 70% / 40 tokens and SA-GRPO as given (three seeds each, ``spread`` tokens
    and points apart), shuffled SAR (one seed) at length ``shuffled`` when given, its claims checked."""
    summary = {"methods": {"grpo": _method(grpo_accuracy, 40.0, drift=(50.0, 40.0), logic=logic),
                           "sa-grpo": _method(sa_accuracy, sa_length, seconds=90.0, drift=(50.0, 30.0), spread=spread,
                                              logic=logic),
                           "o1-0.1": _method(0.60, 30.0, seeds=(0,))}}
    if shuffled is not None:
        summary["methods"]["shuffled-sar"] = _method(0.70, shuffled, seeds=(0,))
    summary["claims"] = check_claims(summary, in_domain="arith-test", ood_sets=["logic-test"],
                                     baselines={"O1-pruner": ["o1-0.1"], "ER": []})
    summary.update(command="sar compare", model="tiny", settings={"steps": 100, "seeds": [0, 1, 2]})
    for name, method in summary["methods"].items():
        method["label"] = {"grpo": "GRPO", "sa-grpo": "SA-GRPO"}.get(name, name)
    return summary


def _premises(verbose: float, concise: float, stderr: float, *, room: float = 0.95) -> dict:
    return {"n_problems": 200, "samples_per_item": 8, "targets": {"room_to_cut_min": 1.5},
            "sampled_accuracy_by_style": {"verbose": verbose, "concise": concise, "answer_only": 0.02},
            "P2_harmless_verbosity": {"verbose_minus_concise": {"difference": verbose - concise, "stderr": stderr}},
            "P3_room_to_cut": {"ratio": room, "holds": room >= 1.5},
            "sar_by_style": {"concise": 0.20, "verbose": 0.12, "answer_only": 0.08}}


def test_percent_shorter_is_positive_for_shorter_answers():
    assert verdicts.percent_shorter(100.0, 80.0) == pytest.approx(20.0)
    assert verdicts.percent_shorter(100.0, 117.0) == pytest.approx(-17.0)
    assert verdicts.percent_shorter(0.0, 5.0) is None


def test_accuracy_interval_is_wilsons():
    low, high = verdicts.accuracy_interval(0.5, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    assert verdicts.accuracy_interval(0.535, 200)[0] < 0.5 < verdicts.accuracy_interval(0.535, 200)[1]
    assert verdicts.accuracy_interval(0.70, 200)[0] > 0.5
    with pytest.raises(ValueError, match="n >= 1"):
        verdicts.accuracy_interval(0.5, 0)


def test_read_grid_explains_a_missing_or_old_file(tmp_path):
    grid, note = verdicts.read_grid(tmp_path / "absent.json")
    assert grid is None and "sar compare" in note and "absent.json" in note
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"methods": {}, "claim": {"holds": False}}))
    grid, note = verdicts.read_grid(old)
    assert grid is None and "predates the claims" in note
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert verdicts.read_grid(bad)[0] is None
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_grid(0.70, 30.0)))
    grid, note = verdicts.read_grid(good)
    assert note == "" and [r["id"] for r in grid["claims"]] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]


def test_read_grid_refuses_claims_written_before_the_noise_rule(tmp_path):
    old = _grid(0.70, 39.0, spread=5.0)
    old["claims"] = [{k: v for k, v in row.items() if k != "status"} | {"holds": False} for row in old["claims"]]
    path = tmp_path / "old_rules.json"
    path.write_text(json.dumps(old))
    grid, note = verdicts.read_grid(path)
    assert grid is None and "predates the claims check under the noise and floor rules" in note
    assert "rerun `sar compare`" in note


def test_the_first_grid_of_960_rollouts_reads_under_the_current_rules():
    grid, note = verdicts.read_grid(REPO / "docs" / "grid_960_rollouts.json")
    assert note == "" and all("status" in row for row in grid["claims"])
    assert claims.current_claims(grid) == grid["claims"]
    regime = verdicts.verbosity_regime(_premises(0.58, 0.56, 0.03, room=2.0), alpha=0.2)
    sentence = verdicts.one_sentence(grid, regime)
    assert "3.3% shorter than GRPO's at -1.8 points" in sentence and "not separable from noise" in sentence


def test_read_premises_from_a_card(tmp_path):
    assert verdicts.read_premises(tmp_path / "card.json") is None
    (tmp_path / "card.json").write_text(json.dumps({"premises": {"n_problems": 3}}))
    assert verdicts.read_premises(tmp_path / "card.json") == {"n_problems": 3}


def test_regime_follows_premise_p2():
    harmless = verdicts.verbosity_regime(_premises(0.579, 0.564, 0.027), alpha=0.2)
    assert harmless["regime"] == "harmless" and harmless["difference"] == pytest.approx(1.5)
    assert "57.9%" in harmless["text"] and "56.4%" in harmless["text"] and "+1.5 ± 2.7" in harmless["text"]
    assert harmless["push"] == pytest.approx(0.2 * 0.08) and "0.016" in harmless["text"]
    assert "0.95x" in harmless["text"] and "not met" in harmless["text"]
    punished = verdicts.verbosity_regime(_premises(0.40, 0.60, 0.03), alpha=0.2)
    assert punished["regime"] == "punished" and "already punished" in punished["text"]
    assert verdicts.verbosity_regime(None, alpha=0.2)["regime"] == "unknown"


def test_one_sentence_says_what_held_and_why():
    punished = verdicts.verbosity_regime(_premises(0.40, 0.60, 0.03), alpha=0.2)
    harmless_no_room = verdicts.verbosity_regime(_premises(0.58, 0.56, 0.03), alpha=0.2)
    harmless_room = verdicts.verbosity_regime(_premises(0.58, 0.56, 0.03, room=2.0), alpha=0.2)
    # a real shortening (seeds 0.2 tokens apart: Welch p = 0.004), but of 2.5%
    failed = verdicts.one_sentence(_grid(0.70, 39.0), punished)
    assert "2.5% shorter" in failed and "SAR shortened the answers beyond the seed noise" in failed
    assert "-1.0 tokens, Welch p = 0.004 over 3 vs 3 seeds" in failed
    assert "by less than the claim's 20%, so the paper's main claim does not hold" in failed and "GRPO prunes" in failed
    assert "GRPO got 20.0% shorter" in failed and "SA-GRPO 40.0% shorter" in failed
    assert "little length left to cut" in verdicts.one_sentence(_grid(0.70, 39.0), harmless_no_room)
    weak = verdicts.one_sentence(_grid(0.70, 39.0), harmless_room)
    assert "SAR's preference for it is the push that does" in weak and "α·ΔSAR = 0.016" in weak
    held = verdicts.one_sentence(_grid(0.71, 28.0), harmless_room)
    assert "30.0% shorter" in held and "+1.0 points" in held and "beyond the seed noise" in held
    assert "claim holds" in held and "Welch p < 0.001" in held
    longer = verdicts.one_sentence(_grid(0.70, 44.0), punished)
    assert "10.0% longer" in longer and "longer beyond the seed noise" in longer and "GRPO alone prunes" in longer
    costly = verdicts.one_sentence(_grid(0.60, 28.0), harmless_room)
    assert "30.0% shorter" in costly and "-10.0 points" in costly and "accuracy fell by more than 1 point" in costly
    assert "does not hold" in costly and "beyond the seed" in costly
    assert "cannot say" in verdicts.one_sentence(None, punished)


def test_one_sentence_inside_the_noise_neither_holds_nor_fails():
    harmless_room = verdicts.verbosity_regime(_premises(0.58, 0.56, 0.03, room=2.0), alpha=0.2)
    same = verdicts.one_sentence(_grid(0.70, 40.0), harmless_room)
    assert "0.0% shorter" in same and "+0.0 points" in same and "inside the seed noise" in same
    assert "Welch p = 1.000" in same and "not separable from noise" in same
    assert "neither confirmed nor refuted" in same and "holds" not in same and "does not hold" not in same
    # 25% shorter on the means, seeds 10 tokens apart: inside the noise, and no "SAR shortened the answers"
    noisy = verdicts.one_sentence(_grid(0.70, 30.0, spread=10.0), harmless_room)
    assert "25.0% shorter" in noisy and "-10.0 tokens, Welch p = 0.225 over 3 vs 3 seeds: inside the seed noise" in noisy
    assert "shortened the answers" not in noisy and "neither confirmed nor refuted" in noisy
    assert "accuracy drop" not in noisy    # the accuracy is within the claim's point
    both = verdicts.one_sentence(_grid(0.65, 30.0, spread=10.0), harmless_room)
    assert "and so is the accuracy drop, more than the claim's 1 point (-5.0 points" in both


def test_one_sentence_when_the_shuffled_control_is_as_short():
    regime = verdicts.verbosity_regime(_premises(0.58, 0.56, 0.03, room=2.0), alpha=0.2)
    beaten = verdicts.one_sentence(_grid(0.70, 28.0, shuffled=27.5), regime)
    assert "30.0% shorter" in beaten and "not beyond the shuffled-SAR control" in beaten
    assert "shuffled SAR 27.5 tokens" in beaten and "single-seed" in beaten and "not separable from noise" in beaten
    assert "holds" not in beaten
    held = verdicts.one_sentence(_grid(0.70, 28.0, shuffled=36.0), regime)
    assert "claim holds" in held and "shorter than the shuffled-SAR control (shuffled SAR 36.0 tokens" in held


def test_one_sentence_on_a_set_at_its_floor():
    regime = verdicts.verbosity_regime(_premises(0.58, 0.56, 0.03, room=2.0), alpha=0.2)
    text = verdicts.one_sentence(_grid(0.05, 28.0, grpo_accuracy=0.05), regime)
    assert "untestable here" in text and "numeric answers are at the floor below 10% accuracy" in text
    assert "holds" not in text


def test_grid_summary_agrees_with_the_claims_table():
    regime = verdicts.verbosity_regime(_premises(0.58, 0.56, 0.03, room=2.0), alpha=0.2)
    for grid, word in ((_grid(0.71, 28.0), "holds"), (_grid(0.70, 30.0, spread=10.0), "not separable from noise"),
                       (_grid(0.70, 39.0), "does not hold"), (_grid(0.70, 28.0, shuffled=27.5), "not separable")):
        c1 = next(r for r in grid["claims"] if r["id"] == "C1")
        assert word in claims.VERDICT_WORDS[c1["status"]]
        summary = verdicts.grid_summary(grid, regime)
        assert (word if word != "holds" else "claim holds") in summary, (word, summary)


def test_training_verdict_has_the_claims_table_and_the_own_runs():
    regime = verdicts.verbosity_regime(_premises(0.40, 0.60, 0.03), alpha=0.2)
    evals = {"GRPO": {"n": 100, "accuracy": 0.70, "mean_length": 40.0},
             "SA-GRPO": {"n": 100, "accuracy": 0.72, "mean_length": 42.0}}
    text = verdicts.training_verdict(grid=_grid(0.70, 39.0), grid_note="", grid_path="figures/g.json",
                                     regime=regime, evals=evals, drift={"GRPO": (50.0, 40.0)}, dataset="arith-test",
                                     steps=10)
    assert "| C1 SA-GRPO's answers are shorter" in text and "**does not hold**" in text
    assert "Did not hold: C1" in text and "figures/g.json" in text and "Untestable here: C6." in text
    assert "5.0% longer" in text and "+2.0 points" in text and "6.5 points" in text   # sqrt(2 .7 .3 / 100)
    assert "50.0 → 40.0 tokens (20.0% shorter)" in text
    noisy = verdicts.training_verdict(grid=_grid(0.70, 30.0, spread=10.0), grid_note="", grid_path="g.json",
                                      regime=regime, evals=evals, drift={}, dataset="arith-test", steps=10)
    assert "**not separable from noise**" in noisy and "Not separable from noise: C1" in noisy
    assert "Did not hold: none" in noisy.replace("C2, ", "").replace("Did not hold: C2.", "Did not hold: none.")
    missing = verdicts.training_verdict(grid=None, grid_note="NO GRID HERE", grid_path="x", regime=regime,
                                        evals=evals, drift={}, dataset="arith-test", steps=10)
    assert "NO GRID HERE" in missing and "| C1" not in missing


def test_algorithms_markdown_words_follow_the_status():
    grid = _grid(0.70, 30.0, spread=10.0)
    grid["methods"]["ppo"] = _method(0.6, 50.0)
    grid["methods"]["sa-ppo"] = _method(0.6, 35.0)
    grid["methods"]["grpo"]["label"], grid["methods"]["sa-grpo"]["label"] = "GRPO", "SA-GRPO"
    grid["methods"]["ppo"]["label"], grid["methods"]["sa-ppo"]["label"] = "PPO", "SA-PPO"
    grid["claims"] = check_claims(grid, in_domain="arith-test", ood_sets=[], baselines={})
    text = verdicts.algorithms_markdown(grid, "g.json", "arith-test")
    assert "- **C1** SA-GRPO's answers are shorter than GRPO's at equal accuracy: **not separable from noise**" in text
    assert "- **C7** SA-PPO's answers are shorter than PPO's at equal accuracy: **holds**" in text
    assert "Welch p" in text


def test_ood_verdict_states_the_logic_status():
    regime = verdicts.verbosity_regime(_premises(0.58, 0.56, 0.03), alpha=0.2)
    rows = [{"method": "SA-GRPO", "set": "logic-test", "accuracy_points": -1.0, "percent_shorter": 3.0}]
    text = verdicts.ood_verdict(grid=_grid(0.70, 39.0), grid_note="", grid_path="g.json", regime=regime,
                                versus_grpo=rows, logic={"accuracy": 0.52, "n": 100, "logic_share": 0.3},
                                ood_base={"symbolic-test": {"accuracy": 0.03, "n": 100},
                                          "easy-test": {"accuracy": 0.60, "n": 100}},
                                behaviours_absent=["backtracking"], steps=10, seed=0)
    assert "logic-test is at chance" in text and "52.0% of 100" in text and "30%" in text
    assert "logic_attempts.md" in text and "claim-test" in text
    assert "untestable on it here" in text
    assert "| C2" in text and "| C6" in text and "| C1" not in text
    # logic-test at 50% in the grid: C6 is untestable, never "C6 holds"
    assert "C6 untestable here (logic-test: untestable here)" in text and "C6 holds" not in text
    assert "**untestable here**" in text
    assert "SA-GRPO on logic-test: 3.0% shorter, -1.0 points" in text and "backtracking" in text
    assert "(the shipped adapters: seed 0, 10 steps)" in text
    assert "the grid's SA-GRPO seeds [0, 1, 2] end at 38.8, 39.0, 39.2 tokens and GRPO's [0, 1, 2] at 39.8, 40.0, 40.2" in text
    assert "symbolic-test is at its floor" in text and "3.0% of 100" in text
    assert "easy-test is above its floor" in text and "60.0% of 100" in text and "C6 can be judged there" in text
    assert "numeric answers are at the floor below 10% accuracy" in text
    above = verdicts.ood_verdict(grid=None, grid_note="n", grid_path="g", regime=regime, versus_grpo=[],
                                 logic={"accuracy": 0.80, "n": 200, "logic_share": None}, ood_base={},
                                 behaviours_absent=[], steps=10, seed=0)
    assert "logic-test is above chance" in above and "pretraining" not in above
    below = verdicts.ood_verdict(grid=None, grid_note="n", grid_path="g", regime=regime, versus_grpo=[],
                                 logic={"accuracy": 0.34, "n": 100, "logic_share": None}, ood_base={},
                                 behaviours_absent=[], steps=10, seed=0)
    assert "logic-test is below chance" in below and "at its floor" in below


def test_ood_verdict_judges_c6_on_a_set_above_its_floor():
    regime = verdicts.verbosity_regime(_premises(0.58, 0.56, 0.03), alpha=0.2)
    kwargs = dict(grid_note="", grid_path="g.json", regime=regime, versus_grpo=[],
                  logic={"accuracy": 0.80, "n": 200, "logic_share": None}, ood_base={}, behaviours_absent=[], steps=10, seed=0)
    held = verdicts.ood_verdict(grid=_grid(0.71, 28.0, logic=0.80), **kwargs)
    assert "C6 holds (logic-test: holds)" in held and "**holds**" in held
    noisy = verdicts.ood_verdict(grid=_grid(0.71, 28.0, logic=0.80, spread=30.0), **kwargs)
    assert "C6 not separable from noise (logic-test: not separable from noise)" in noisy and "C6 holds" not in noisy


def test_perplexity_verdict_states_its_inputs():
    inputs = dict(concise={"sar": 0.21, "mean_gain": 0.236, "n_tokens": 30},
                  redundant={"sar": 0.11, "mean_gain": 0.117, "n_tokens": 70},
                  token_groups={"question's numbers": (2.5, 6), "re-check sentences": (0.01, 40),
                                "end of turn": (0.0, 1)},
                  mean_sar={"concise_correct": 0.2, "partially_correct": 0.19, "incorrect": 0.18},
                  at_least_concise={"partially_correct": 0.4, "incorrect": 0.25}, n_problems=24,
                  context_shift={"no instruction": 0.04},
                  library_gap=2e-6)
    text = verdicts.perplexity_verdict(**inputs, alpha=0.2)
    for snippet in ("0.236", "SAR 0.210", "0.117", "question's numbers +2.50 (6 tokens)", "0.180", "(1 token)",
                    "the partially correct answer scores at least as high as the concise correct one on 40%",
                    "the incorrect answer scores at least as high as the concise correct one on 25%",
                    "no instruction: up to 0.040", "2.0e-06", "R = R_VR + 0.2·SAR", "less than 0.4",
                    "always out-scores a wrong one"):
        assert snippet in text, snippet
    assert "can overturn correctness" in verdicts.perplexity_verdict(**inputs, alpha=0.6)


def test_ranking_verdict_words_follow_the_accuracies():
    pairs = {"concise > redundant": 1.0, "partial > incorrect": 0.5, "concise > incorrect": 0.6,
             "concise > answer-only": 0.95, "concise > irrelevant": 1.0}
    combined = {"R_VR + 0.2·SAR": {**pairs, "concise > incorrect": 1.0},
                "R_VR + 0.2·R_EM": {**pairs, "concise > incorrect": 1.0, "concise > redundant": 0.3}}
    text = verdicts.ranking_verdict(table={"SAR": pairs}, mean_sar={"concise_correct": 0.2, "redundant_correct": 0.1,
                                                                   "partially_correct": 0.19, "incorrect": 0.18},
                                    combined=combined, probe={"concise+restatement > concise": 0.15,
                                                              "concise+filler > concise": 0.02}, n_problems=200)
    assert "Concise above redundant: holds** (SAR ranks the concise answer higher on 100.0%" in text
    assert "Partially correct above incorrect: is at chance** (50.0%" in text
    assert "R_VR + 0.2·R_EM 30.0%" in text and "15.0%" in text and "2.0%" in text


def test_paper_ablation_compares_sa_with_em_not_em_alone():
    text = verdicts.paper_ablation_markdown()
    assert "| R_VR + α·R_EM | 69.85 | 936.4 |" in text
    assert "4.5% shorter" in text and "+1.56 points" in text


