"""The statistics the project reports: Welch's test over seeds, when a difference is separable from the
seed noise, Wilson's interval of an accuracy, and a mean with its normal interval. The distributions
come from scipy (``scipy.stats``); this module only fixes the conventions the claims rely on (edge cases
and JSON-ready results)."""

from __future__ import annotations

import math
import statistics
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats

SIGNIFICANCE = 0.05   # two-sided level of the Welch test over seeds
# the normal quantile of every 95% interval the project has written; scipy's exact 1.959964 would move
# the committed intervals by about 1e-6
Z_95 = 1.96


def welch(a: Sequence[float], b: Sequence[float]) -> dict:
    """Welch's t-test of mean(a) - mean(b), each sample with at least 2 values
    (``scipy.stats.ttest_ind(a, b, equal_var=False)``):

        t  = (m_a - m_b) / sqrt(s_a²/n_a + s_b²/n_b)
        df = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a - 1) + (s_b²/n_b)²/(n_b - 1))
        p  = P(|T_df| >= |t|)   (two-sided, Student's t with df degrees of freedom)

    with s² the sample variances. Both variances 0: p = 1 for equal means, 0 otherwise, df None
    (scipy gives NaN there). Returns ``{"t", "df", "p"}`` (t None when infinite, for JSON)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's test needs at least 2 values per sample, got {len(a)} and {len(b)}")
    if statistics.variance(a) + statistics.variance(b) == 0:
        equal = statistics.fmean(a) == statistics.fmean(b)
        return {"t": 0.0 if equal else None, "df": None, "p": 1.0 if equal else 0.0}
    test = scipy_stats.ttest_ind(a, b, equal_var=False)
    return {"t": float(test.statistic), "df": float(test.df), "p": float(test.pvalue)}


def compare_seeds(a: Sequence[float], b: Sequence[float], level: float = SIGNIFICANCE) -> dict:
    """Whether mean(a) - mean(b) is separable from the seed noise (``sar_lib.lab.claims``' docstring):

    * ``rule`` "welch" (both with >= 2 seeds): ``separable`` when Welch's two-sided p < ``level``;
    * ``rule`` "ranges" (a side with one seed): ``separable`` when every value of one side is beyond
      every value of the other (``single_seed`` True: no spread was measured on that side).

    Returns ``{"rule", "difference", "p" (None for ranges), "t", "df", "seeds": [n_a, n_b],
    "range_a", "range_b", "separable", "single_seed"}``."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if not a or not b:
        raise ValueError("each side needs at least one value")
    out = {"difference": statistics.fmean(a) - statistics.fmean(b), "seeds": [len(a), len(b)],
           "range_a": [min(a), max(a)], "range_b": [min(b), max(b)], "single_seed": min(len(a), len(b)) < 2}
    if len(a) >= 2 and len(b) >= 2:
        test = welch(a, b)
        out.update(rule="welch", **test, separable=test["p"] < level)
    else:
        out.update(rule="ranges", t=None, df=None, p=None, separable=max(a) < min(b) or min(a) > max(b))
    return out


def accuracy_interval(accuracy: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of an accuracy p measured on ``n`` items (95% for z = 1.96):

        (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)

    For a whole number of successes k = p n this is
    ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`` (at the level whose quantile is z);
    written out here because a mean over seeds has a fractional k, which binomtest refuses."""
    if n < 1 or not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"need n >= 1 and an accuracy in [0, 1], got n={n}, accuracy={accuracy}")
    centre = accuracy + z * z / (2 * n)
    spread = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    # at p = 0 or 1 the bound is 0 or 1 exactly; rounding must not print it as "-0.0%"
    return max(0.0, (centre - spread) / (1 + z * z / n)), min(1.0, (centre + spread) / (1 + z * z / n))


def mean_and_interval(values: ArrayLike, z: float = Z_95) -> tuple[float, float]:
    """(mean, z · SEM), SEM = s / sqrt(n) (``scipy.stats.sem``, sample standard deviation s): the mean
    and the half-width of a ~95% normal interval by default. One value: half-width 0 (no spread measured;
    scipy gives NaN)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"need a non-empty 1-D series, got shape {x.shape}")
    half = z * float(scipy_stats.sem(x)) if x.size > 1 else 0.0
    return float(x.mean()), half
