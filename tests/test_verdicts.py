"""The notebooks' verdicts: every number they state comes from their inputs, and the wording follows
the numbers (claims held or not, regime, chance level)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sar_lib.lab import seed_outcomes, verdicts
from sar_lib.lab import claims
from sar_lib.lab.claims import check_claims

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
    assert note == "" and [r["id"] for r in grid["claims"]] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"]


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
    assert claims.current_claims(grid)[:len(grid["claims"])] == grid["claims"]   # its rows kept, C8 judged after
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


GRID_JSON = REPO / "docs" / "grid_lr1e-3_9600.json"   # the grid at lr 1e-3: two of three seeds switched
BUDGET_JSON = REPO / "docs" / "grid_budget_19200.json"
REPLICATE_JSON = REPO / "docs" / "grid_replicate_seeds_345.json"
LIVE = {"GRPO": {"n": 100, "accuracy": 0.70, "mean_length": 40.0},
        "SA-GRPO": {"n": 100, "accuracy": 0.72, "mean_length": 42.0}}


def _load(path):
    return json.loads(path.read_text())


def test_training_verdict_is_a_claim_table_and_at_most_five_sentences():
    regime = verdicts.verbosity_regime(_premises(0.40, 0.60, 0.03), alpha=0.2)
    grid, budget = _load(GRID_JSON), _load(BUDGET_JSON)
    accuracy = seed_outcomes.accuracy_summary(grid)
    verdict = verdicts.training_verdict(grid=grid, grid_note="", grid_path="figures/g.json", regime=regime, live=LIVE,
                                        steps=10, extended=budget, extended_path="docs/b.json", accuracy=accuracy)
    rows = {row[0].split(" ")[0]: row for row in verdict.rows}
    assert [row[0][:2] for row in verdict.rows[:2]] == ["C1", "C1"]   # C1 at both budgets, each named
    assert "(lr 0.001, 9,600 rollouts, 3 seeds, `figures/g.json`)" in verdict.rows[0][0] and verdict.rows[0][2] == \
        claims.VERDICT_WORDS[next(r for r in grid["claims"] if r["id"] == "C1")["status"]]
    assert "(lr 0.001, 19,200 rollouts, 6 seeds, `docs/b.json`)" in verdict.rows[1][0] and verdict.rows[1][2] == "holds"
    assert "C7" not in rows and all(len(row) == 3 for row in verdict.rows)   # a claim the grid did not run: no row
    text = " ".join(verdict.sentences)
    assert "At lr 0.001 and 9,600 rollouts per run 2 of 3 SA-GRPO seeds had switched" in text
    assert "; at lr 0.001 and 19,200, 6 of 6 had and C1 holds." in text
    assert "In the grid, mean over seeds, GRPO and SA-GRPO (α=0.2) are not above the base model's 58.5%" in text
    assert "Correctness already punishes verbosity" in text                    # P2: 40% vs 60%
    assert "both end below the base model's 58.5% held-out greedy accuracy" in text
    assert "+2.0 points, inside two standard errors of 6.5" in text           # sqrt(2 .7 .3 / 100)
    assert len(verdict.sentences) <= verdicts.MAX_VERDICT_SENTENCES
    missing = verdicts.training_verdict(grid=None, grid_note="NO GRID HERE.", grid_path="x", regime=regime, live=LIVE,
                                        steps=10)
    assert missing.rows == [] and missing.sentences[0] == "NO GRID HERE."


def test_switched_seeds_applies_c1s_margin_to_each_seed():
    switches = seed_outcomes.switched_seeds(_load(GRID_JSON))
    grid = _load(GRID_JSON)
    grpo_mean = grid["methods"]["grpo"]["eval"]["arith-test"]["mean_length"]["mean"]
    assert switches["reference_mean"] == pytest.approx(grpo_mean)
    assert switches["threshold"] == pytest.approx(0.8 * grpo_mean) and seed_outcomes.SWITCHED_FRACTION == pytest.approx(0.8)
    lengths = dict(zip(grid["methods"]["sa-grpo"]["seeds"],
                       grid["methods"]["sa-grpo"]["eval"]["arith-test"]["mean_length"]["per_seed"]))
    for seed, x in switches["seeds"].items():
        assert x["length"] == lengths[seed] and x["switched"] == (lengths[seed] <= 0.8 * grpo_mean)
        assert (x["onset"] is not None) == x["switched"]   # on this grid a seed that ends short stayed short
    assert [seed for seed, x in switches["seeds"].items() if x["switched"]] == [1, 2]
    assert switches["guide"][0][0] == 0 and len(switches["guide"]) == len(grid["budget_curve"]["grpo"])
    no_curve = {**grid, "budget_curve": {}}
    assert all(x["onset"] is None for x in seed_outcomes.switched_seeds(no_curve)["seeds"].values())


def test_switch_rows_print_each_seed_by_the_rule():
    switches = seed_outcomes.switched_seeds(_load(GRID_JSON))
    rows = seed_outcomes.switch_rows(switches)
    assert [row[0] for row in rows] == ["s0", "s1", "s2"] and len(rows[0]) == len(seed_outcomes.SWITCH_TABLE_HEADERS)
    assert [row[3] for row in rows] == ["no (lagged)", "yes", "yes"] and rows[0][4] == "—" and rows[1][4] == "4,800"


def _along_grid(means: dict[int, tuple[list[float], list[float]]], base: float = 0.585) -> dict:
    """A grid holding a base model and GRPO's and SA-GRPO's greedy accuracy per seed at each budget."""
    def entry(rollouts, values):
        return {"rollouts": rollouts, "accuracy": {"mean": sum(values) / len(values), "per_seed": values}}
    return {"base": {"arith-test": {"accuracy": base}},
            "budget_curve": {m: [{"rollouts": 0, "accuracy": {"mean": base, "per_seed": [base]}}]
                             + [entry(r, pair[k]) for r, pair in means.items()] for k, m in enumerate(("grpo", "sa-grpo"))}}


def test_accuracy_along_training_finds_where_the_means_cross_the_base():
    grid = _along_grid({1920: ([0.60, 0.62], [0.61, 0.58]), 3840: ([0.59, 0.60], [0.60, 0.59]),
                        5760: ([0.57, 0.56], [0.59, 0.60]), 7680: ([0.55, 0.56], [0.56, 0.55])})
    along = seed_outcomes.accuracy_along_training(grid)
    assert along["above_until"] == 3840 and along["below_from"] == 7680
    assert along["rows"][0] == (1920, {"grpo": (pytest.approx(0.61), 2, 2), "sa-grpo": (pytest.approx(0.595), 1, 2)})
    labels = {"grpo": "GRPO", "sa-grpo": "SA-GRPO"}
    assert seed_outcomes.along_training_sentence(along, labels) == (
        "Mean over seeds, GRPO and SA-GRPO are above the base model's 58.5% held-out greedy accuracy up to 3,840 "
        "rollouts per run and below it from 7,680 on.")
    table = seed_outcomes.along_training_markdown(along, labels).splitlines()
    assert table[2] == "| 0 (base model) | 58.5 | 58.5 |" and table[3] == "| 1,920 | 61.0 (2 of 2) | 59.5 (1 of 2) |"
    never = seed_outcomes.accuracy_along_training(_along_grid({960: ([0.5, 0.5], [0.6, 0.6]), 1920: ([0.6, 0.6], [0.6, 0.6])}))
    assert never["above_until"] is None and never["below_from"] is None
    assert "not above the base model's" in seed_outcomes.along_training_sentence(never, labels)
    assert "not below it at the end" in seed_outcomes.along_training_sentence(never, labels)


def test_example_seeds_picks_the_first_shipped_seed_of_each_kind():
    switches = seed_outcomes.switched_seeds(_load(GRID_JSON))   # seed 0 lagged, 1 and 2 switched
    assert seed_outcomes.example_seeds(switches, {0: "sa-grpo"}) == {"switched": None, "lagged": (0, "sa-grpo")}
    every = {0: "sa-grpo", 1: "sa-grpo-s1", 2: "sa-grpo-s2"}
    assert seed_outcomes.example_seeds(switches, every) == {"switched": (1, "sa-grpo-s1"), "lagged": (0, "sa-grpo")}
    assert seed_outcomes.example_seeds(switches, {7: "sa-grpo-s7"}) == {"switched": None, "lagged": None}


def test_robustness_markdown_reads_every_run_from_its_file():
    grids = {"grid": ("g.json", _load(GRID_JSON)), "replicate": ("r.json", _load(REPLICATE_JSON)),
             "doubled budget": ("b.json", _load(BUDGET_JSON))}
    text = seed_outcomes.robustness_markdown(grids)
    lines = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(lines) == 4 and lines[1].startswith("| grid (`g.json`) | 0, 1, 2 | 0.001 | 9,600 |")
    assert "| 2 of 3 (s1 by 4,800, s2 by 5,760) |" in lines[1] and lines[3].endswith("| holds |")
    switched = sum(x["switched"] for _, g in grids.values() for x in seed_outcomes.switched_seeds(g)["seeds"].values())
    assert f"Over these 3 runs {switched} of the 12 SA-GRPO seeds switched" in text
    assert "19,200 rollouts per run, 6 of 6 did, the last by 11,520 rollouts, and C1 holds there." in text


def test_preset_markdown_states_the_share_measured_on_the_doubled_budget():
    budget = _load(BUDGET_JSON)
    onsets = [x["onset"] for x in seed_outcomes.switched_seeds(budget)["seeds"].values()]
    rollouts = 120 * 16 * budget["settings"]["group_size"]
    assert seed_outcomes.SWITCH_PRESET == {"steps": 120, "questions_per_step": 16, "learning_rate": 1e-3}
    text = seed_outcomes.preset_markdown(budget, "b.json")
    share = sum(o is not None and o <= rollouts for o in onsets)
    assert f"{share} of its {len(onsets)} SA-GRPO seeds had switched by 11,520 rollouts" in text
    at = next(e for e in budget["budget_curve"]["sa-grpo"] if e["rollouts"] == rollouts)["mean_length"]["per_seed"]
    assert "Their greedy lengths at 11,520 rollouts: " + ", ".join(f"s{k} {v:.1f}" for k, v in enumerate(at)) in text
    base = budget["base"]["arith-test"]["mean_length"]
    still = [k for k, (o, v) in enumerate(zip(onsets, at)) if o is not None and o <= rollouts and v > 0.8 * base]
    if still:   # counted by the rule only because one GRPO seed's long answers raise GRPO's mean
        assert f"so {share - len(still)} of {len(onsets)} seeds wrote concise answers by then" in text
    assert "the same learning rate 0.001 and batch" in text
    minutes = max(budget["methods"][m]["wall_seconds"]["mean"] for m in ("grpo", "sa-grpo")) / 200 * 120 / 60
    assert f"about {minutes:.0f} minutes" in text
    shorter = seed_outcomes.preset_markdown(budget, "b.json", {"steps": 50, "questions_per_step": 32, "learning_rate": 2e-4})
    early = sum(o is not None and o <= 50 * 32 * 6 for o in onsets)
    assert f"{early} of its {len(onsets)} SA-GRPO seeds had switched by 9,600 rollouts" in shorter
    assert "its settings differ: learning rate 0.001 (preset 0.0002), questions per step 16 (preset 32)" in shorter


def _pilots() -> dict:
    def run(greedy, sampled, train):
        return {"steps": 100, "rollouts_per_step": 96, "eval_steps": [10 * (k + 1) for k in range(len(greedy))],
                "greedy_accuracy": greedy, "sampled_accuracy": sampled, "train_accuracy": train}
    return {"base": {"accuracy": 0.585, "mean_length": 77.9},
            "pilots": {"grid": {"settings": {}, "runs": {"grpo-s1": run([0.51, 0.47], 0.40, [0.36, 0.6]),
                                                         "sa-grpo-s1": run([0.52, 0.49], 0.41, [0.36, 0.62])},
                                "switch_onsets": {"sa-grpo-s1": 4800}},
                       "lr-2e-4-q32": {"settings": {"learning_rate": 2e-4, "questions_per_step": 32},
                                       "runs": {"grpo-s1": run([0.59, 0.60], None, [0.33, 0.4])},
                                       "switch_onsets": {}}}}


def test_accuracy_summary_reads_the_pilots_and_falls_back_to_the_grid():
    grid = _load(GRID_JSON)
    summary = seed_outcomes.accuracy_summary(grid, _pilots())
    assert summary["source"] == "pilots" and summary["base_greedy"] == 0.585
    assert summary["base_sampled"] == grid["base"]["arith-test"]["sampled_accuracy"]   # the pilots lack it
    assert [(r["group"], r["name"], r["greedy"], r["rollouts"]) for r in summary["runs"]] == \
        [("grid", "grpo-s1", 0.47, 1920), ("grid", "sa-grpo-s1", 0.49, 1920), ("lr-2e-4-q32", "grpo-s1", 0.60, 1920)]
    text = seed_outcomes.accuracy_markdown(summary)
    assert "| lr-2e-4-q32 (learning rate 0.0002, questions per step 32) | grpo-s1 | 1,920 | 60.0 | — |" in text
    assert "| 4,800 |" in text
    assert "2 of the 3 end below the base model's 58.5% held-out greedy accuracy (final: 47.0-60.0%)" in text
    assert "sampled accuracy ends at 40.0-41.0%, above the base model's 31.0%" in text
    assert "rises from 0.35 to 0.54" in text
    from_grid = seed_outcomes.accuracy_summary(grid)
    assert from_grid["source"] == "grid" and [r["name"] for r in from_grid["runs"]] == ["GRPO", "SA-GRPO (α=0.2)"]
    assert "Of the grid's methods (mean over seeds), both end below" in seed_outcomes.accuracy_markdown(from_grid)
    assert seed_outcomes.accuracy_summary(None) is None and "nothing to tell" in seed_outcomes.accuracy_markdown(None)


def test_live_runs_sentence_reads_the_table_it_follows():
    evals = {**LIVE, "base model": {"n": 100, "accuracy": 0.53, "mean_length": 40.0}}
    text = verdicts.live_runs_sentence(evals, "base model", 10)
    assert text.startswith("After 10 steps the greedy answers' mean length is within 5.0% of the base model's 40.0")
    assert "accuracy is GRPO 70.0% and SA-GRPO 72.0% against the base model's 53.0% on the same 100 problems" in text
    assert "about 7.1 points" in text   # sqrt(2 .53 .47 / 100)


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


def test_verdict_markdown_is_the_claim_table_then_the_sentences():
    verdict = verdicts.Verdict([["a claim", "its criterion", "holds (60%)"]], ["One sentence.", "Another one."])
    assert verdict.markdown == ("### Verdict\n\n| claim | criterion | verdict |\n|---|---|---|\n"
                                "| a claim | its criterion | holds (60%) |\n\nOne sentence. Another one.")
    assert verdict.summary_table == {"title": "verdict", "columns": ["claim", "criterion", "verdict"],
                                     "rows": [["a claim", "its criterion", "holds (60%)"]]}
    assert verdicts.Verdict([], ["No grid."]).markdown == "### Verdict\n\nNo grid."
    with pytest.raises(ValueError, match="at most 5 sentences"):
        verdicts.Verdict([], ["A."] * 6)


def _perplexity_inputs(**changes) -> dict:
    """Notebook 01's verdict inputs on four problems: SAR ranks concise above redundant on 3 of 4 and above
    partial on 3 of 4 (one tie, which does not count as above), above answer-only on 1 of 4."""
    inputs = dict(scores={"concise_correct": {"sar": [0.3, 0.3, 0.3, 0.3]},
                          "redundant_correct": {"sar": [0.1, 0.1, 0.1, 0.4]},
                          "answer_only": {"sar": [0.4, 0.4, 0.4, 0.1]},
                          "partially_correct": {"sar": [0.2, 0.3, 0.2, 0.2]}},
                  library_gap=3.1e-6, alpha=0.2, concise_sar=0.2461, redundant_sar=0.1118,
                  token_groups={"the question's numbers": (1.4812, 6), "re-check sentences": (-0.0071, 40),
                                "end of turn": (0.0, 1)},
                  context_shift={"no instruction": 0.04, "generation prompt only": 1.2314})
    return inputs | changes


def test_perplexity_verdict_table_and_sentences():
    verdict = verdicts.perplexity_verdict(**_perplexity_inputs())
    assert verdict.rows == [
        ["SAR is a squashed mean information gain, `1 - exp(-mean_t v_t)`",
         "four computations agree, and the library matches a token-by-token loop to 1e-4",
         "holds (largest gap 3.1e-06)"],
        ["SAR ranks concise above redundant", "higher SAR on most (> 50%) of the 4 problems", "holds (75%)"],
        ["SAR ranks concise above answer-only", "higher SAR on most (> 50%) of the 4 problems", "does not hold (25%)"],
        ["SAR ranks concise above partial", "higher SAR on most (> 50%) of the 4 problems", "holds (75%)"],
        ["in SA-GRPO's reward a correct answer out-scores a wrong one",
         "2α < 1, so that α·SAR never outweighs R_VR (α < 0.5)", "holds (α = 0.2)"]]
    assert verdict.sentences == [
        "On the worked problem SAR is 0.246 for the concise answer and 0.112 for the redundant one: the gain sits on "
        "the question's numbers (+1.48 nats a token), the re-check sentences (-0.01) only dilute the mean, so SAR "
        "penalises redundancy without counting tokens.",
        "SAR does not ask for the working and does not check the result: the bare answer scores at least the concise "
        "correct one's SAR on 75% of the problems and the partially correct one on 25%, which is why SA-GRPO keeps "
        "the correctness reward and why R_SA alone collapses to very short answers (claim C3, notebook 04).",
        "The contexts are part of the reward: another choice of `ctx(q)`/`ctx(0)` moves a type's mean SAR by up to "
        "1.231."]
    assert verdict.markdown.startswith("### Verdict\n\n| claim | criterion | verdict |\n|---|---|---|\n| SAR is a")


def test_perplexity_verdict_when_its_claims_fail():
    torch = pytest.importorskip("torch")
    inputs = _perplexity_inputs(library_gap=2e-3, alpha=0.6, token_groups={"other words": (0.1, 3)})
    inputs["scores"] = {t: {"sar": torch.tensor(s["sar"])} for t, s in inputs["scores"].items()}   # as the notebook
    verdict = verdicts.perplexity_verdict(**inputs)
    assert verdict.rows[0][2] == "does not hold (gap 2.0e-03)"
    assert verdict.rows[-1][2] == "does not hold (α = 0.6)"
    assert [row[2] for row in verdict.rows[1:4]] == ["holds (75%)", "does not hold (25%)", "holds (75%)"]
    assert "the gain sits on the question's numbers, the re-check sentences only dilute the mean" in verdict.sentences[0]


def _ranking_inputs(**changes) -> dict:
    """Notebook 02's verdict inputs as its committed run had them (200 problems, the probe unnatural)."""
    table = {"SAR": {"concise > redundant": 1.0, "partial > incorrect": 0.89, "concise > incorrect": 0.6,
                     "concise > answer-only": 0.44}}
    combined = {"R_VR + 0.2·SAR": {"concise > incorrect": 1.0}, "R_VR + 0.2·R_EM": {"concise > incorrect": 1.0}}
    probe = {"SAR": {"concise+restatement > concise": 0.0, "concise+filler > concise": 0.0}}
    median_ppl = {"concise_correct": (1.1234, 2.0), "redundant_correct": (1.3, 2.1), "concise_restated": (236.2, 9.0),
                  "concise_filler": (73.4, 8.0)}
    return dict(table=table, combined=combined, probe=probe, median_ppl=median_ppl, probe_unnatural=True,
                n_problems=200, alpha=0.2) | changes


def test_ranking_verdict_table_and_sentences():
    verdict = verdicts.ranking_verdict(**_ranking_inputs())
    assert verdict.rows == [
        ["the paper's claim 1: concise correct above redundant correct",
         "concise > redundant: higher SAR on most (> 50%) of the 200 problems", "holds (100.0%)"],
        ["the paper's claim 1: partially correct above incorrect",
         "partial > incorrect: higher SAR on most (> 50%) of the 200 problems", "holds (89.0%)"],
        ["SAR prefers a worked answer to a bare one (the pull behind C3)",
         "concise > answer-only: higher SAR on most (> 50%) of the 200 problems", "does not hold (44.0%)"],
        ["with R_VR, as in training (R_VR + 0.2·SAR): correct above wrong",
         "concise > incorrect on most (> 50%) of the 200 problems (certain for α < 0.5; here α = 0.2)",
         "holds (100.0%)"],
        ["restating the question does not buy SAR",
         "the restated answer scores higher on at most half the problems, on text as natural to the model as its own "
         "(median perplexity given the question within 2x of the concise and redundant answers')",
         "inconclusive: it scores higher on 0.0%, but the restated texts' median perplexity given the question is 236 "
         "(filler 73, concise 1.12): text the model never saw"]]
    assert len(verdict.sentences) == 2 and "never checks the final result" in verdict.sentences[0]
    assert verdict.sentences[1].startswith("The restatement probe cannot settle the worry on this model")


def test_ranking_verdict_when_the_probe_is_natural_and_restating_pays():
    inputs = _ranking_inputs(probe_unnatural=False,
                             probe={"SAR": {"concise+restatement > concise": 0.6, "concise+filler > concise": 0.1}})
    inputs["table"]["SAR"]["concise > redundant"] = 0.5   # a tie at half is not "most"
    verdict = verdicts.ranking_verdict(**inputs)
    assert verdict.rows[0][2] == "does not hold (50.0%)"
    assert verdict.rows[-1][2] == "does not hold (60.0%)"
    assert verdict.sentences[1] == ("The padded variants are about as natural to the model as its own styles, so the "
                                    "probe measures what copying the question does.")


def _ood_inputs(grid: dict | None) -> dict:
    """Notebook 04's verdict inputs: two synthetic sets and a benchmark, logic-test and the benchmark at their floor."""
    labels = {"grpo": "GRPO", "sa-grpo": "SA-GRPO", "base": "base model"}
    evals = {"grpo": {"arith-test": {"accuracy": 0.50, "mean_length": 40.0},
                      "logic-test": {"accuracy": 0.50, "mean_length": 20.0}},
             "sa-grpo": {"arith-test": {"accuracy": 0.52, "mean_length": 30.0},
                         "logic-test": {"accuracy": 0.55, "mean_length": 22.0}}}
    behaviours = {m: {"arith-test": {"verification": {"share": share}, "enumeration": {"share": 1.0},
                                     "backtracking": {"share": 0.0}}}
                  for m, share in (("grpo", 1.0), ("sa-grpo", 0.25), ("base", 1.0))}
    return dict(grid=grid, grid_note="No grid: run `sar compare`.", grid_path="figures/g.json",
                set_names={"arith-test": "arith-test", "logic-test": "logic-test", "data/gsm8k.jsonl": "gsm8k"},
                floor_sets=["logic-test", "data/gsm8k.jsonl"],
                versus_grpo=verdicts.versus_grpo_rows(evals, labels, ["grpo", "sa-grpo"], ["arith-test", "logic-test"]),
                shipped={"seed": 0, "steps": 100}, behaviours=behaviours, labels=labels,
                seen=["verification", "enumeration"], absent=["backtracking"])


def test_versus_grpo_rows_are_points_and_percent_shorter():
    rows = _ood_inputs(None)["versus_grpo"]
    assert [(r["method"], r["set"]) for r in rows] == [("SA-GRPO", "arith-test"), ("SA-GRPO", "logic-test")]
    assert rows[0]["accuracy_points"] == pytest.approx(2.0) and rows[0]["percent_shorter"] == pytest.approx(25.0)
    assert rows[1]["accuracy_points"] == pytest.approx(5.0) and rows[1]["percent_shorter"] == pytest.approx(-10.0)


def test_ood_verdict_table_and_sentences():
    verdict = verdicts.ood_verdict(**_ood_inputs(_grid(0.71, 28.0, logic=0.80)))
    assert [row[0][:2] for row in verdict.rows] == ["C2", "C3", "C6"]
    assert verdict.rows[2] == ["C6 Out of domain SA-GRPO keeps GRPO's accuracy and is shorter",
                               "on every OOD set above its floor: accuracy at most 1 point lower and L_SA < L_GRPO "
                               "beyond the seed noise", "holds (logic-test: holds)"]
    assert verdict.rows[0][2] == "not run (O1-pruner: holds; ER: not run)" and verdict.rows[1][2] == "not run"
    assert verdict.sentences == [
        "The claims are judged on `figures/g.json` (`sar compare`: 100 steps, seeds [0, 1, 2]).",
        "Above their floor here: arith-test; at their floor, where a comparison of methods is untestable: "
        "logic-test, gsm8k.",
        "The shipped SA-GRPO adapter (seed 0, 100 steps) against GRPO's, on the synthetic sets above their floor: "
        "arith-test 25.0% shorter, +2.0 points; one seed is one sample, and the grid's SA-GRPO seeds end at 27.8, "
        "28.0, 28.2 tokens on arith-test.",
        "Share of the arith-test answers with each behaviour that occurs (verification: GRPO 1.00, SA-GRPO 0.25, "
        "base model 1.00; enumeration: 1.00 for every model); backtracking occurs in no answer, so the paper's "
        "claim 3 can only be read on the others."]
    noisy = verdicts.ood_verdict(**_ood_inputs(_grid(0.71, 28.0, logic=0.80, spread=30.0)))
    assert noisy.rows[2][2] == "not separable from noise (logic-test: not separable from noise)"


def test_ood_verdict_without_a_grid_or_a_set_above_its_floor():
    inputs = _ood_inputs(None) | {"floor_sets": ["arith-test", "logic-test", "data/gsm8k.jsonl"], "absent": []}
    verdict = verdicts.ood_verdict(**inputs)
    assert verdict.rows == [] and "| claim |" not in verdict.markdown
    assert verdict.markdown.startswith("### Verdict\n\nNo grid: run `sar compare`. Above their floor here: no set;")
    assert "on the synthetic sets above their floor: none." in verdict.markdown
    assert "one seed is one sample" not in verdict.markdown
    assert verdict.sentences[-1].endswith("; every behaviour occurs in some answer.")


def test_paper_ablation_compares_sa_with_em_not_em_alone():
    text = verdicts.paper_ablation_markdown()
    assert "| R_VR + α·R_EM | 69.85 | 936.4 |" in text
    assert "4.5% shorter" in text and "+1.56 points" in text


