"""The paper's claims as small-scale criteria (sar_lib.claims), on hand-made grid summaries."""

import pytest

from sar_lib import claims

BASELINES = {"O1-pruner": ["o1-0.03", "o1-0.1"], "ER": ["er-0.03", "er-0.1"]}


def _method(points: dict, seconds: float = 100.0) -> dict:
    """A summary entry: {dataset: (length, accuracy)} -> the nested mean/std layout of the grid's JSON."""
    return {"eval": {d: {"mean_length": {"mean": length}, "accuracy": {"mean": acc}} for d, (length, acc) in points.items()},
            "train_seconds": {"mean": seconds}}


def _summary(**methods) -> dict:
    return {"methods": {name.replace("_", "-"): entry for name, entry in methods.items()}}


def _by_id(rows):
    return {r["id"]: r for r in rows}


def test_curve_accuracy_interpolates_and_holds_flat_beyond_the_ends():
    points = [(50.0, 0.6), (30.0, 0.5), (40.0, 0.58)]
    assert claims.curve_accuracy(points, 35.0) == pytest.approx(0.54)
    assert claims.curve_accuracy(points, 10.0) == 0.5 and claims.curve_accuracy(points, 99.0) == 0.6
    with pytest.raises(ValueError):
        claims.curve_accuracy([], 1.0)


def test_c1_needs_twenty_percent_shorter_and_at_most_one_point_lower():
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
    rows = _by_id(claims.check_claims(summary, in_domain=d, ood_sets=ood, baselines=BASELINES))
    assert [r for r in rows] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    assert rows["C1"]["holds"] is True
    # O1 at length 40: halfway between (30, 0.40) and (50, 0.58) -> 0.49 < 0.61; ER: flat 0.62 > 0.61
    assert rows["C2"]["numbers"]["O1-pruner"]["accuracy_at_sa_length"] == pytest.approx(0.49)
    assert rows["C2"]["numbers"]["ER"]["holds"] is False and rows["C2"]["holds"] is False
    assert rows["C3"]["holds"] is True and rows["C4"]["holds"] is True
    assert rows["C5"]["holds"] is True and rows["C6"]["holds"] is True
    table = claims.claims_markdown(list(rows.values()))
    assert table.count("\n") == 8 and "**does not hold**" in table and "**holds**" in table


def test_a_claim_whose_methods_did_not_run_is_not_judged():
    d = "arith-test"
    summary = _summary(grpo=_method({d: (60.0, 0.6)}), sa_grpo=_method({d: (40.0, 0.6)}))
    rows = _by_id(claims.check_claims(summary, in_domain=d, ood_sets=["logic-test"], baselines=BASELINES))
    assert rows["C1"]["holds"] is True
    for claim in ("C2", "C3", "C4", "C6", "C7"):
        assert rows[claim]["holds"] is None, claim
    assert "not run" in claims.claims_markdown(list(rows.values()))


def test_c7_judges_sa_ppo_against_ppo_by_c1s_criterion():
    d = "arith-test"
    summary = _summary(grpo=_method({d: (60.0, 0.6)}), sa_grpo=_method({d: (59.0, 0.6)}),
                       ppo=_method({d: (50.0, 0.55)}), sa_ppo=_method({d: (35.0, 0.545)}))
    rows = _by_id(claims.check_claims(summary, in_domain=d, ood_sets=[], baselines=BASELINES))
    assert rows["C1"]["holds"] is False and rows["C7"]["holds"] is True
    assert rows["C7"]["numbers"]["length_reduction"] == pytest.approx(0.30)
    assert rows["C7"]["statement"] == "SA-PPO's answers are shorter than PPO's at equal accuracy"
    assert claims.measured(rows["C7"]) == "PPO 55.0% / 50.0 tok, SA-PPO 54.5% / 35.0 tok: +30.0% shorter, -0.5 points"
