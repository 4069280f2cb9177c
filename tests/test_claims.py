"""The paper's claims as small-scale criteria (sar_lib.lab.claims), on hand-made grid summaries: the
criteria, the noise rule (Welch over seeds, separate ranges for one seed, the shuffled-SAR control)
and the floor. The statistics themselves: tests/test_stats.py."""

import json

import pytest

from sar_lib.lab import claims
from sar_lib.lab.stats import compare_seeds

BASELINES = {"O1-pruner": ["o1-0.03", "o1-0.1"], "ER": ["er-0.03", "er-0.1"]}


def _method(points: dict, seconds: float = 100.0, *, spread=(0.0,), n: int = 200) -> dict:
    """A summary entry from {dataset: (length, accuracy)}: one seed per value of ``spread``, seed k at
    length + spread[k] tokens and accuracy + spread[k] / 100 (a point per token of spread), in the
    nested mean/std/per_seed layout of the grid's JSON, with ``n`` problems per set."""
    def stat(values):
        return {"mean": sum(values) / len(values), "per_seed": list(values)}
    return {"seeds": list(range(len(spread))),
            "eval": {d: {"mean_length": stat([length + s for s in spread]),
                         "accuracy": stat([acc + s / 100 for s in spread]), "n": n}
                     for d, (length, acc) in points.items()},
            "train_seconds": stat([seconds + s for s in spread])}


def _summary(**methods) -> dict:
    return {"methods": {name.replace("_", "-"): entry for name, entry in methods.items()}}


def _by_id(rows):
    return {r["id"]: r for r in rows}


def _check(summary, ood=(), d="arith-test"):
    return _by_id(claims.check_claims(summary, in_domain=d, ood_sets=list(ood), baselines=BASELINES))


# ------------------------------------------------------------------ the seed tests as text, the floor
def test_test_text_names_the_rule_and_its_outcome():
    # the tests themselves (Welch's p, the ranges rule): tests/test_stats.py
    noisy = compare_seeds([35, 45, 55], [50, 60, 70])          # p 0.140
    tight = compare_seeds([38.8, 39, 39.2], [39.8, 40, 40.2])  # p 0.0036
    one = compare_seeds([38.0, 39.0, 40.0], [41.0])
    assert "single-seed" in claims.test_text(one, "tok") and "Welch p = 0.140" in claims.test_text(noisy, "tok")
    assert "inside the seed noise" in claims.test_text(noisy) and "beyond the seed noise" in claims.test_text(tight)


def test_floor_is_chance_in_the_wilson_interval_or_ten_percent_of_numbers():
    assert claims.floor_check(0.535, 200, "bool")["at_floor"]          # interval 46.6-60.3% holds 50%
    assert not claims.floor_check(0.62, 200, "bool")["at_floor"]       # 55.1-68.4%
    assert claims.floor_check(0.34, 100, "bool")["at_floor"]           # below chance: at the floor too
    assert claims.floor_check(0.30, 100, "choice")["at_floor"] and not claims.floor_check(0.45, 100, "choice")["at_floor"]
    assert claims.floor_check(0.08, 100, "math")["at_floor"] and not claims.floor_check(0.12, 100, "math")["at_floor"]
    assert claims.floor_check(0.535, 200, "bool")["interval"] == pytest.approx([0.4659, 0.6028], abs=1e-4)


def test_answer_kinds_match_the_data_sets():
    from sar_lib.data import HELD_OUT_SETS, load_problems
    for name in HELD_OUT_SETS:
        assert claims.answer_kind(name) == load_problems(name, limit=2)[0].kind, name
    assert claims.answer_kind("prontoqa") == "bool" and claims.answer_kind("logicbench") == "choice"
    assert claims.answer_kind("gsm8k") == "math"


# ------------------------------------------------------------------ the criteria
def test_curve_accuracy_interpolates_and_holds_flat_beyond_the_ends():
    points = [(50.0, 0.6), (30.0, 0.5), (40.0, 0.58)]
    assert claims.curve_accuracy(points, 35.0) == pytest.approx(0.54)
    assert claims.curve_accuracy(points, 10.0) == 0.5 and claims.curve_accuracy(points, 99.0) == 0.6
    with pytest.raises(ValueError):
        claims.curve_accuracy([], 1.0)


def test_c1_criterion_on_the_means_needs_twenty_percent_shorter_and_at_most_one_point_lower():
    assert claims.shorter_at_equal_accuracy((100.0, 0.60), (80.0, 0.59))["holds"] is True
    assert claims.shorter_at_equal_accuracy((100.0, 0.60), (81.0, 0.70))["holds"] is False
    assert claims.shorter_at_equal_accuracy((100.0, 0.60), (50.0, 0.58))["holds"] is False
    assert claims.shorter_at_equal_accuracy((0.0, 0.60), (50.0, 0.58))["holds"] is None


def test_every_claim_is_judged_from_its_own_methods():
    d, ood = "arith-test", ["symbolic-test"]
    summary = _summary(
        grpo=_method({d: (60.0, 0.60), "symbolic-test": (62.0, 0.30)}, seconds=120.0),
        sa_grpo=_method({d: (40.0, 0.61), "symbolic-test": (45.0, 0.30)}, seconds=100.0),
        sar_only=_method({d: (10.0, 0.20)}),
        em=_method({d: (50.0, 0.61)}),
        **{"o1_0.03": _method({d: (50.0, 0.58)}), "o1_0.1": _method({d: (30.0, 0.40)}),
           "er_0.03": _method({d: (55.0, 0.62)}), "er_0.1": _method({d: (45.0, 0.62)})})
    rows = _check(summary, ood)
    assert [r for r in rows] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"]
    assert rows["C1"]["status"] == "holds" and rows["C1"]["holds"] is True
    # O1 at length 40: halfway between (30, 0.40) and (50, 0.58) -> 0.49 < 0.61; ER: flat 0.62 > 0.61
    assert rows["C2"]["numbers"]["O1-pruner"]["accuracy_at_sa_length"] == pytest.approx(0.49)
    assert rows["C2"]["numbers"]["ER"]["holds"] is False and rows["C2"]["status"] == "does_not_hold"
    assert rows["C3"]["holds"] is True and rows["C4"]["holds"] is True
    assert rows["C5"]["holds"] is True and rows["C6"]["holds"] is True and rows["C6"]["judged_on"] == ["symbolic-test"]
    assert rows["C7"]["status"] == "not_run" and rows["C7"]["holds"] is None
    assert rows["C8"]["status"] == "not_run"   # no base model in this summary
    table = claims.claims_markdown(list(rows.values()))
    assert table.count("\n") == 9 and "**does not hold**" in table and "**holds**" in table
    json.dumps(list(rows.values()), allow_nan=False)   # the grid's JSON takes every row as it is


def test_a_claim_whose_methods_did_not_run_is_not_judged():
    d = "arith-test"
    summary = _summary(grpo=_method({d: (60.0, 0.6)}), sa_grpo=_method({d: (40.0, 0.6)}))
    rows = _check(summary, ["logic-test"])
    assert rows["C1"]["holds"] is True
    for claim in ("C2", "C3", "C4", "C6", "C7"):
        assert rows[claim]["holds"] is None and rows[claim]["status"] == "not_run", claim
    assert "not run" in claims.claims_markdown(list(rows.values()))


# ------------------------------------------------------------------ C1 and the noise
THREE = (-1.0, 0.0, 1.0)   # three seeds, a token (and a point) apart


def test_c1_holds_when_the_shortening_is_beyond_the_seed_noise():
    d = "arith-test"
    rows = _check(_summary(grpo=_method({d: (60.0, 0.60)}, spread=THREE),
                           sa_grpo=_method({d: (40.0, 0.60)}, spread=THREE)))
    c1 = rows["C1"]
    assert c1["status"] == "holds"
    test = c1["numbers"]["length_test"]
    assert test["rule"] == "welch" and test["p"] < 0.001 and test["outcome"] == "pass"
    assert c1["numbers"]["control"] is None and c1["numbers"]["floor"]["at_floor"] is False
    assert "Welch p < 0.001 over 3 vs 3 seeds: beyond the seed noise" in claims.measured(c1)


def test_c1_inside_the_seed_noise_is_not_separable_rather_than_failed_or_held():
    d = "arith-test"
    wide = (-10.0, 0.0, 10.0)
    # 25% shorter on the means (45 vs 60 tokens), but the seeds spread by 10 tokens: Welch p = 0.14
    rows = _check(_summary(grpo=_method({d: (60.0, 0.60)}, spread=wide), sa_grpo=_method({d: (45.0, 0.70)}, spread=wide)))
    assert rows["C1"]["numbers"]["criterion_on_means"] is True
    assert rows["C1"]["status"] == "not_separable" and rows["C1"]["holds"] is None
    assert rows["C1"]["numbers"]["length_test"]["p"] == pytest.approx(0.14006598491201777)
    assert "**not separable from noise**" in claims.claims_markdown([rows["C1"]])
    # 3% shorter inside the noise: not "does not hold" either
    rows = _check(_summary(grpo=_method({d: (60.0, 0.60)}, spread=wide), sa_grpo=_method({d: (58.0, 0.60)}, spread=wide)))
    assert rows["C1"]["numbers"]["criterion_on_means"] is False and rows["C1"]["status"] == "not_separable"


def test_c1_fails_on_a_real_difference_only():
    d = "arith-test"
    # a real shortening, but by 8%, less than the claim's 20%
    rows = _check(_summary(grpo=_method({d: (60.0, 0.60)}, spread=THREE), sa_grpo=_method({d: (55.0, 0.60)}, spread=THREE)))
    assert rows["C1"]["status"] == "does_not_hold" and rows["C1"]["numbers"]["length_test"]["outcome"] == "fail"
    # shorter by the margin, but a real accuracy drop of 5 points
    rows = _check(_summary(grpo=_method({d: (60.0, 0.60)}, spread=THREE), sa_grpo=_method({d: (40.0, 0.55)}, spread=THREE)))
    assert rows["C1"]["status"] == "does_not_hold" and rows["C1"]["numbers"]["accuracy_test"]["outcome"] == "fail"
    # the same 5-point drop with seeds 10 points apart: inside the noise, so C1 is not separable
    wide = (-10.0, 0.0, 10.0)
    rows = _check(_summary(grpo=_method({d: (60.0, 0.60)}, spread=THREE), sa_grpo=_method({d: (40.0, 0.55)}, spread=wide)))
    assert rows["C1"]["numbers"]["accuracy_test"]["outcome"] == "noise" and rows["C1"]["status"] == "not_separable"


def test_the_shuffled_sar_control_must_be_beaten_too():
    d = "arith-test"
    base = dict(grpo=_method({d: (60.0, 0.60)}, spread=THREE), sa_grpo=_method({d: (40.0, 0.60)}, spread=THREE))
    # the control (one seed) is as short as SA-GRPO: the shortening is not SAR's information at work
    rows = _check(_summary(**base, shuffled_sar=_method({d: (40.5, 0.60)})))
    control = rows["C1"]["numbers"]["control"]
    assert control["method"] == "shuffled-sar" and control["length_test"]["rule"] == "ranges"
    assert control["length_test"]["outcome"] == "noise" and rows["C1"]["status"] == "not_separable"
    assert "single-seed" in claims.measured(rows["C1"])
    # the control shorter than SA-GRPO: not separable either (never "holds")
    assert _check(_summary(**base, shuffled_sar=_method({d: (30.0, 0.60)})))["C1"]["status"] == "not_separable"
    # every SA-GRPO seed shorter than the control's value: C1 holds
    rows = _check(_summary(**base, shuffled_sar=_method({d: (55.0, 0.60)})))
    assert rows["C1"]["status"] == "holds" and rows["C1"]["numbers"]["control"]["length_test"]["separable"]
    assert "shuffled-sar control" in rows["C1"]["criterion"]
    # a replicate without the control (sar compare --methods grpo sa-grpo): its criterion does not name it
    rows = _check(_summary(**base))
    assert rows["C1"]["status"] == "holds" and "control" not in rows["C1"]["criterion"]
    assert rows["C1"]["numbers"]["control"] is None


def test_c7_judges_sa_ppo_against_ppo_by_c1s_criterion_and_rule():
    d = "arith-test"
    tight = (-0.1, 0.0, 0.1)
    summary = _summary(grpo=_method({d: (60.0, 0.6)}, spread=tight), sa_grpo=_method({d: (59.0, 0.6)}, spread=tight),
                       ppo=_method({d: (50.0, 0.55)}, spread=THREE), sa_ppo=_method({d: (35.0, 0.545)}, spread=THREE),
                       shuffled_sar=_method({d: (20.0, 0.6)}))
    rows = _check(summary)
    assert rows["C1"]["status"] == "does_not_hold" and rows["C7"]["status"] == "holds"
    assert rows["C7"]["numbers"]["length_reduction"] == pytest.approx(0.30)
    assert rows["C7"]["numbers"]["control"] is None   # no PPO control: the GRPO one does not apply
    assert rows["C7"]["statement"] == "SA-PPO's answers are shorter than PPO's at equal accuracy"
    assert claims.measured(rows["C7"]).startswith(
        "PPO 55.0% / 50.0 tok, SA-PPO 54.5% / 35.0 tok: +30.0% shorter, -0.5 points; length -15.0 tok, Welch p < 0.001")
    summary["methods"]["sa-ppo"] = _method({d: (35.0, 0.545)}, spread=(-30.0, 0.0, 30.0))
    assert _check(summary)["C7"]["status"] == "not_separable"


def test_single_seed_comparisons_use_separate_ranges_and_say_so():
    d = "arith-test"
    summary = _summary(grpo=_method({d: (60.0, 0.60)}, spread=THREE), sa_grpo=_method({d: (40.0, 0.60)}, spread=THREE),
                       em=_method({d: (40.5, 0.60)}), sar_only=_method({d: (59.5, 0.10)}))
    rows = _check(summary)
    # C4: EM's one seed (40.5 tokens) lies inside SA-GRPO's 39-41: not separable
    assert rows["C4"]["numbers"]["length_test"]["rule"] == "ranges" and rows["C4"]["status"] == "not_separable"
    assert "single-seed" in claims.measured(rows["C4"])
    # C3: a 50-point drop beyond every GRPO seed, but a length inside GRPO's range
    assert rows["C3"]["numbers"]["accuracy_test"]["outcome"] == "pass" and rows["C3"]["status"] == "not_separable"


def test_c5_slower_only_counts_beyond_the_noise():
    d = "arith-test"
    close = _summary(grpo=_method({d: (60.0, 0.6)}, seconds=100.0, spread=(-5.0, 0.0, 5.0)),
                     sa_grpo=_method({d: (40.0, 0.6)}, seconds=101.0, spread=(-5.0, 0.0, 5.0)))
    assert _check(close)["C5"]["status"] == "not_separable"
    slow = _summary(grpo=_method({d: (60.0, 0.6)}, seconds=100.0, spread=THREE),
                    sa_grpo=_method({d: (40.0, 0.6)}, seconds=130.0, spread=THREE))
    assert _check(slow)["C5"]["status"] == "does_not_hold"


# ------------------------------------------------------------------ the floor
def test_c6_is_untestable_when_every_ood_set_is_at_its_floor():
    d = "arith-test"
    summary = _summary(grpo=_method({d: (60.0, 0.6), "logic-test": (30.0, 0.52), "symbolic-test": (62.0, 0.05)},
                                    spread=THREE, n=100),
                       sa_grpo=_method({d: (40.0, 0.6), "logic-test": (20.0, 0.53), "symbolic-test": (45.0, 0.06)},
                                       spread=THREE, n=100))
    c6 = _check(summary, ["symbolic-test", "logic-test"])["C6"]
    assert c6["status"] == "untestable" and c6["holds"] is None and c6["judged_on"] == []
    assert c6["untestable_on"] == ["symbolic-test", "logic-test"]
    assert c6["numbers"]["logic-test"]["floor"]["kind"] == "bool" and c6["numbers"]["logic-test"]["floor"]["at_floor"]
    assert c6["numbers"]["symbolic-test"]["floor"]["kind"] == "math"
    assert "**untestable here**" in claims.claims_markdown([c6])
    text = claims.measured(c6)
    assert "True/False answers are at the floor when the 95% interval reaches chance, 50%" in text
    assert "numeric answers are at the floor below 10% accuracy" in text


def test_c6_judges_the_sets_above_their_floor():
    d = "arith-test"
    summary = _summary(grpo=_method({d: (60.0, 0.6), "logic-test": (30.0, 0.80), "symbolic-test": (62.0, 0.05)},
                                    spread=THREE, n=100),
                       sa_grpo=_method({d: (40.0, 0.6), "logic-test": (20.0, 0.80), "symbolic-test": (70.0, 0.02)},
                                       spread=THREE, n=100))
    c6 = _check(summary, ["symbolic-test", "logic-test"])["C6"]
    # symbolic-test, at the floor, would fail (longer, 3 points lower) but is not judged; logic-test holds
    assert c6["judged_on"] == ["logic-test"] and c6["untestable_on"] == ["symbolic-test"]
    assert c6["numbers"]["logic-test"]["status"] == "holds" and c6["status"] == "holds"
    summary["methods"]["sa-grpo"]["eval"]["logic-test"] = _method({"logic-test": (29.0, 0.80)}, spread=(-8.0, 0.0, 8.0),
                                                                  n=100)["eval"]["logic-test"]
    assert _check(summary, ["symbolic-test", "logic-test"])["C6"]["status"] == "not_separable"


def test_an_in_domain_set_at_its_floor_makes_c1_untestable():
    d = "arith-test"
    rows = _check(_summary(grpo=_method({d: (60.0, 0.05)}, spread=(-0.5, 0.0, 0.5)),
                           sa_grpo=_method({d: (40.0, 0.06)}, spread=(-0.5, 0.0, 0.5))))
    assert rows["C1"]["status"] == "untestable" and "at the floor" in claims.measured(rows["C1"])


# ------------------------------------------------------------------ files written before the rules
def test_current_claims_judge_an_old_file_again():
    d = "arith-test"
    summary = _summary(grpo=_method({d: (60.0, 0.60), "logic-test": (30.0, 0.5)}, spread=(-10.0, 0.0, 10.0)),
                       sa_grpo=_method({d: (45.0, 0.60), "logic-test": (30.0, 0.5)}, spread=(-10.0, 0.0, 10.0)),
                       **{"o1_0.1": _method({d: (30.0, 0.40)})})
    summary["methods"]["o1-0.1"]["reward"] = "o1"
    summary["settings"] = {"eval_dataset": d}
    summary["claims"] = [{"id": "C1", "statement": "s", "criterion": "c", "numbers": {}, "holds": True}]
    rows = _by_id(claims.current_claims(summary))
    assert rows["C1"]["status"] == "not_separable" and rows["C6"]["status"] == "untestable"
    assert rows["C2"]["numbers"]["O1-pruner"]["points"] == [(30.0, 0.40)]
    assert claims.verdict_word({"holds": False}) == "does not hold"   # a row without a status
    summary["claims"] = list(rows.values())
    assert claims.current_claims(summary) == summary["claims"]         # current rows are kept
    # a file written before C8: its stored rows kept as they are, C8 judged on its stored numbers
    summary["claims"] = [row for row in rows.values() if row["id"] != "C8"]
    summary["claims"][0] = {**summary["claims"][0], "status": "holds"}   # the stored verdict, not a new one
    again = claims.current_claims(summary)
    assert [row["id"] for row in again] == list(claims.CLAIM_IDS) and again[0]["status"] == "holds"
    assert again[-1] == rows["C8"]


def test_c8_rl_improves_on_the_base_judged_against_the_base_and_grpo():
    d = "arith-test"
    spread = (-1.0, 0.0, 1.0, 0.5, -0.5)   # five seeds, +-1 point of accuracy

    def summary(sa_accuracy, grpo_accuracy=0.60, base_accuracy=0.585):
        s = _summary(grpo=_method({d: (70.0, grpo_accuracy)}, spread=spread),
                     sa_grpo=_method({d: (40.0, sa_accuracy)}, spread=spread))
        s["base"] = {d: {"accuracy": base_accuracy, "mean_length": 78.0, "n": 200}}
        return _check(s)["C8"]

    above = summary(0.60)
    assert above["status"] == "holds" and above["numbers"]["points_above_base"] == pytest.approx(1.5)
    assert claims.measured(above).startswith("base 58.5% / 78.0 tok, GRPO 60.0% / 70.0 tok, SA-GRPO 60.0%")
    # every seed below the base (57.0-59.0 < 58.5 fails for the top seed): inside the noise
    assert summary(0.58, grpo_accuracy=0.58)["status"] == "not_separable"
    # every seed 2 points or more below the base: beyond the noise
    below = summary(0.55, grpo_accuracy=0.55)
    assert below["status"] == "does_not_hold" and below["numbers"]["base_test"]["outcome"] == "fail"
    # above the base but 5 points below GRPO, beyond Welch's noise
    assert summary(0.60, grpo_accuracy=0.65)["status"] == "does_not_hold"
    assert summary(0.60, grpo_accuracy=0.65)["numbers"]["accuracy_test"]["outcome"] == "fail"
