"""The statistics (sar_lib.lab.stats) against scipy called directly and against values known by hand, and
the committed grid summaries' p-values and intervals recomputed."""

import json
import math
from pathlib import Path

import pytest
import scipy.stats
import torch

from sar_lib.lab import claims, stats

ROOT = Path(__file__).resolve().parents[1]
SUMMARIES = [ROOT / "figures" / "grpo_vs_sar.json", *sorted((ROOT / "docs").glob("grid_*.json"))]
# the confidence level whose two-sided normal quantile is 1.96, the z every stored interval used
LEVEL_196 = 2 * scipy.stats.norm.cdf(stats.Z_95) - 1


# ------------------------------------------------------------------ Welch
@pytest.mark.parametrize("a, b", [
    ([1, 2, 3], [4, 5, 6, 7.5]),
    ([35, 45, 55], [50, 60, 70]),
    ([81.2, 79.9, 83.4], [64.1, 66.0, 63.8]),
    ([0.47, 0.45, 0.49, 0.5], [0.46, 0.44]),
])
def test_welch_is_scipys_unequal_variance_t_test(a, b):
    w, direct = stats.welch(a, b), scipy.stats.ttest_ind(a, b, equal_var=False)
    assert w["t"] == pytest.approx(direct.statistic, rel=1e-12) and w["df"] == pytest.approx(direct.df, rel=1e-12)
    assert w["p"] == pytest.approx(direct.pvalue, rel=1e-12)
    assert w["p"] == pytest.approx(2 * scipy.stats.t.sf(abs(w["t"]), w["df"]), rel=1e-9)   # p from (t, df)


def test_welch_matches_the_textbook_example():
    # Wikipedia "Welch's t-test", example 1: t = -2.46, df = 25.0, p = 0.021
    a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    w = stats.welch(a, b)
    assert w["t"] == pytest.approx(-2.455356398286006) and w["df"] == pytest.approx(24.988529290231416)
    assert w["p"] == pytest.approx(0.021378001462866992, abs=1e-9)
    # by hand: s² = 1/2 on both sides, n = 2: t = -3 / sqrt(1/4 + 1/4) = -sqrt(18),
    # df = (1/2)² / ((1/4)² + (1/4)²) = 2, and for 2 degrees of freedom P(|T| >= t) = 1 - t / sqrt(2 + t²)
    w = stats.welch([1.0, 2.0], [4.0, 5.0])
    assert w["t"] == pytest.approx(-math.sqrt(18)) and w["df"] == pytest.approx(2.0)
    assert w["p"] == pytest.approx(1 - math.sqrt(18 / 20), abs=1e-12)


def test_welch_without_spread_and_with_too_few_values():
    assert stats.welch([1, 1], [2, 2]) == {"t": None, "df": None, "p": 0.0}   # scipy: NaN
    assert stats.welch([1, 1], [1, 1]) == {"t": 0.0, "df": None, "p": 1.0}
    with pytest.raises(ValueError, match="at least 2"):
        stats.welch([1.0], [2.0, 3.0])


def test_compare_seeds_uses_welch_with_spread_and_separate_ranges_without():
    noisy = stats.compare_seeds([35, 45, 55], [50, 60, 70])
    assert noisy["rule"] == "welch" and noisy["p"] == pytest.approx(0.14006598491201777) and not noisy["separable"]
    tight = stats.compare_seeds([38.8, 39, 39.2], [39.8, 40, 40.2])   # p 0.0036
    assert tight["separable"] and tight["difference"] == pytest.approx(-1.0)
    one = stats.compare_seeds([38.0, 39.0, 40.0], [41.0])
    assert one["rule"] == "ranges" and one["p"] is None and one["single_seed"] and one["separable"]
    assert not stats.compare_seeds([38.0, 39.0, 42.0], [41.0])["separable"]      # one seed beyond the other's
    assert json.loads(json.dumps(noisy)) == noisy                                  # plain floats, for the JSON


# ------------------------------------------------------------------ intervals
@pytest.mark.parametrize("k, n", [(0, 10), (7, 10), (93, 200), (107, 200), (200, 200), (1, 3)])
def test_accuracy_interval_is_scipys_wilson_interval_for_whole_counts(k, n):
    direct = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=LEVEL_196, method="wilson")
    assert stats.accuracy_interval(k / n, n) == pytest.approx((direct.low, direct.high), abs=1e-12)


def test_accuracy_interval_by_hand():
    # 0 of n: the upper bound is z² / (n + z²); p = 1/2: symmetric around 1/2
    assert stats.accuracy_interval(0.0, 10) == (0.0, pytest.approx(1.96 ** 2 / (10 + 1.96 ** 2)))
    low, high = stats.accuracy_interval(0.5, 100)   # (0.5 + 0.019208 ± 1.96 sqrt(0.00259604)) / 1.038416
    assert low + high == pytest.approx(1.0) and high == pytest.approx(0.5962, abs=1e-4)
    assert stats.accuracy_interval(0.0, 30)[0] == 0.0 and stats.accuracy_interval(1.0, 30)[1] == 1.0
    with pytest.raises(ValueError, match="n >= 1"):
        stats.accuracy_interval(0.5, 0)


def test_mean_and_interval_is_the_normal_interval_of_the_mean():
    values = [0.2, 0.9, 0.4, 0.75, 0.1]
    mean, half = stats.mean_and_interval(values)
    assert mean == pytest.approx(0.47) and half == pytest.approx(1.96 * scipy.stats.sem(values), rel=1e-12)
    assert stats.mean_and_interval([1.0, 2.0, 3.0]) == (2.0, pytest.approx(1.96 / math.sqrt(3)))   # s = 1, n = 3
    assert stats.mean_and_interval(torch.tensor([1.0, 2.0, 3.0])) == pytest.approx(stats.mean_and_interval([1, 2, 3]))
    assert stats.mean_and_interval([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        stats.mean_and_interval([])


# ------------------------------------------------------------------ the committed numbers
def _p_and_intervals(node, path: str = "") -> dict:
    """{path: value} of every ``p`` and ``interval`` inside a claim row (or a list of rows)."""
    found = {}
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, (list, tuple)) else ()
    for key, value in items:
        where = f"{path}/{key}"
        if key in ("p", "interval"):
            found[where] = value
        else:
            found.update(_p_and_intervals(value, where))
    return found


@pytest.mark.parametrize("path", SUMMARIES, ids=lambda p: p.name)
def test_committed_p_values_and_intervals_are_recomputed_to_1e6(path):
    summary = json.loads(path.read_text())
    stored = _p_and_intervals(summary.get("claims") or [])
    if not stored:
        pytest.skip(f"{path.name} stores no p-value or interval")
    # the claims the file was written with (a later claim, such as C8, is judged only on new grids)
    ids = {row["id"] for row in summary["claims"]}
    rejudged = claims.current_claims({k: v for k, v in summary.items() if k != "claims"})
    fresh = _p_and_intervals([row for row in rejudged if row["id"] in ids])
    assert fresh.keys() == stored.keys()
    for where, value in stored.items():
        if value is None:
            assert fresh[where] is None, where
        else:
            assert fresh[where] == pytest.approx(value, abs=1e-6), where


def test_the_figure_summary_stores_welch_p_values_and_wilson_intervals():
    stored = _p_and_intervals(json.loads(SUMMARIES[0].read_text())["claims"])
    assert sum(k.endswith("/p") and v is not None for k, v in stored.items()) >= 5
    assert sum(k.endswith("/interval") and v is not None for k, v in stored.items()) >= 5
