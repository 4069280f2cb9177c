"""The paper's claims (docs/paper.md §5) as small-scale criteria, checked on a grid's summary.

Every criterion was fixed before the grid ran (issue "Testbed v2"); nothing here is tuned to a
result. With acc the greedy accuracy in [0, 1] and L the mean greedy answer length in tokens, each
the mean over the method's seeds, on the in-domain set unless said otherwise:

* **C1** SA-GRPO is shorter at equal accuracy: ``1 - L_SA / L_GRPO >= 0.20`` and
  ``100 (acc_GRPO - acc_SA) <= 1``; and, when the grid ran the shuffled-SAR control (SAR's values
  dealt out at random within each group), SA-GRPO's answers are shorter than the control's.
* **C2** Pareto: at SA-GRPO's length, SA-GRPO is at least as accurate as O1-pruner and as ER:
  ``acc_SA >= f_B(L_SA)`` for each baseline B, with f_B the piecewise-linear accuracy-vs-length
  curve through GRPO (alpha = 0) and B's runs at its alphas, held flat beyond its shortest and
  longest points (the flat extension credits the baseline with accuracy it may not reach: a
  conservative test of the claim).
* **C3** R_SA alone collapses: ``100 (acc_GRPO - acc_RSA) >= 10`` and ``L_RSA < L_GRPO``.
* **C4** SA-GRPO beats R_VR + alpha R_EM: ``L_SA < L_EM`` and ``100 (acc_EM - acc_SA) <= 1``.
* **C5** SA-GRPO trains no slower: mean training seconds (the sum of ``time/step``) of SA-GRPO
  <= GRPO's, for the same steps.
* **C6** Out of domain, SA-GRPO keeps GRPO's accuracy and is shorter, on every OOD set above its
  floor: ``100 (acc_GRPO - acc_SA) <= 1`` and ``L_SA < L_GRPO``.
* **C7** SA-PPO is shorter than PPO at equal accuracy: C1's criterion with PPO and SA-PPO (an
  opt-in pair of the grid: it is "not run" unless the grid trained them; the grid has no PPO
  control, so C7 has no control clause).
* **C8** RL improves on the base (the paper's GRPO and SA-GRPO both score above their base models):
  ``acc_SA >= acc_base`` and ``100 (acc_GRPO - acc_SA) <= 1``, acc_base the untrained model's
  greedy accuracy on the same problems (one value: the single-seed rule below judges SA-GRPO's seeds
  against it).

**When a measured difference counts** (the criteria above are unchanged by this; it decides only
whether the difference they read is real). Two methods are compared on their per-seed values
(:func:`sar_lib.lab.stats.compare_seeds`):

* both with at least 2 seeds: a two-sided **Welch t-test at 5%** (:func:`sar_lib.lab.stats.welch`, by
  scipy; unequal variances, Welch-Satterthwaite degrees of freedom): the difference is *separable
  from noise* when p < 0.05;
* a method with fewer than 2 seeds has no measured spread, so Welch's test does not apply: the
  difference is separable only when the per-seed ranges do not overlap, **every seed of one beyond
  every seed of the other**; such a comparison is reported as single-seed (with one seed on both
  sides any difference passes this rule: it says nothing about noise, and the text says so).

A requirement that a difference exists (L_SA < L_GRPO, a drop of >= 10 points) is met only by a
separable difference in the right direction; a separable difference in the wrong direction (or
too small for the criterion) fails it; an inseparable one leaves it *not separable from noise*. A
tolerance (accuracy at most 1 point lower, training no slower) is met when the means meet it, fails
when they miss it by a separable difference, and is *not separable from noise* when they miss it
by an inseparable one. C1's control clause is met only when SA-GRPO is shorter than shuffled SAR by
a separable difference, and otherwise leaves C1 not separable from noise (a shortening that random
SAR values also produce is not SAR's information at work). A claim **holds** when every part is
met, **does not hold** when a part fails, and is **not separable from noise** otherwise.

**Floor**: a set is at its floor for a claim when no method the claim compares there is above
the floor (:func:`floor_check`): for answers with a chance level (True/False, kind "bool": 50%;
A-D, kind "choice": 25%; :func:`answer_kind`) when the **Wilson 95% interval** of the greedy
accuracy (mean over seeds, n = the number of evaluated problems of the set, one seed's n: the seeds
answer the same problems) reaches down to chance or lies below it; for numeric answers (kind
"math") when the accuracy is below 10%. A claim measured on a set at its floor is **untestable
here**; C6 is judged only on the OOD sets above their floor, and is untestable here when none is.

Each claim row has ``status`` (:data:`STATUSES`, JSON values ``"holds"``, ``"does_not_hold"``,
``"not_separable"``, ``"untestable"``, ``"not_run"``: a method it needs is missing) and, for older
readers, ``holds``: True, False, or None for every other status.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from sar_lib.lab.stats import accuracy_interval, compare_seeds

C1_MIN_LENGTH_REDUCTION = 0.20
ACCURACY_TOLERANCE_POINTS = 1.0
C3_MIN_ACCURACY_DROP_POINTS = 10.0
_ROUNDING = 1e-9   # 1 - 80/100 is 0.19999999999999996 in floating point

CONTROL_METHOD = "shuffled-sar"
# chance level of a set's answers by Problem.kind ("math": none; its floor is MATH_FLOOR_ACCURACY)
CHANCE = {"bool": 0.5, "choice": 0.25}
MATH_FLOOR_ACCURACY = 0.10
# Problem.kind of the sets whose answers are not numbers (sar_lib.data); every other set is "math".
SET_KINDS = {"logic-test": "bool", "claim-test": "bool", "prontoqa": "bool", "logicbench": "choice"}
_KIND_WORDS = {"bool": "True/False", "choice": "A-D"}

STATUSES = ("holds", "does_not_hold", "not_separable", "untestable", "not_run")
CLAIM_IDS = tuple(f"C{i}" for i in range(1, 9))   # the claims of the module docstring, in order
# status -> the words every table and verdict prints; True/False/None: the ``holds`` of rows written
# before the statuses existed (and of readers that still index by it)
VERDICT_WORDS = {"holds": "holds", "does_not_hold": "does not hold", "not_separable": "not separable from noise",
                 "untestable": "untestable here", "not_run": "not run",
                 True: "holds", False: "does not hold", None: "not run"}
# the verdicts as the verb of a sentence ("C1 holds", "C1 is not separable from noise")
STATUS_VERBS = {"holds": "holds", "does_not_hold": "does not hold", "not_separable": "is not separable from noise",
                "untestable": "is untestable here", "not_run": "was not run"}
_HOLDS = {"holds": True, "does_not_hold": False}


# ---------------------------------------------------------------- floors and test text
def answer_kind(dataset: str) -> str:
    """``Problem.kind`` of a set's answers by its name (:data:`SET_KINDS`; "math" otherwise)."""
    return SET_KINDS.get(dataset, "math")


def floor_check(accuracy: float, n: int | None, kind: str) -> dict:
    """Whether a greedy accuracy on ``n`` problems of answer ``kind`` is at the floor (module docstring):
    kinds with a chance level (:data:`CHANCE`): the Wilson 95% interval
    (:func:`sar_lib.lab.stats.accuracy_interval`) reaches down to chance or lies below it (without ``n``: the
    accuracy itself is at or below chance); "math": the accuracy is below :data:`MATH_FLOOR_ACCURACY`.
    Returns ``{"kind", "chance", "accuracy", "n", "interval", "at_floor"}``."""
    chance = CHANCE.get(kind)
    interval = accuracy_interval(accuracy, n) if n else None
    if chance is None:
        at_floor = accuracy < MATH_FLOOR_ACCURACY
    else:
        at_floor = (interval[0] if interval else accuracy) <= chance
    return {"kind": kind, "chance": chance, "accuracy": accuracy, "n": n,
            "interval": list(interval) if interval else None, "at_floor": at_floor}


def floor_text(floor: Mapping) -> str:
    """Why a set is (or is not) at its floor, with the numbers."""
    parts = []
    for method, f in floor["methods"].items():
        interval = "" if f["interval"] is None else \
            f", 95% interval {100 * f['interval'][0]:.1f}-{100 * f['interval'][1]:.1f}%"
        parts.append(f"{f.get('label', method)} {100 * f['accuracy']:.1f}% of {f['n'] or '?'}{interval}")
    return f"{'; '.join(parts)} ({floor_rule(floor['kind'])})"


def floor_rule(kind: str) -> str:
    """The floor rule of answers of ``kind`` (:func:`floor_check`), in words."""
    chance = CHANCE.get(kind)
    if chance is None:
        return f"numeric answers are at the floor below {100 * MATH_FLOOR_ACCURACY:.0f}% accuracy"
    return (f"{_KIND_WORDS.get(kind, kind)} answers are at the floor when the 95% interval reaches chance, "
            f"{100 * chance:.0f}%, or lies below it")


def test_text(test: Mapping, unit: str = "", scale: float = 1.0, *, difference: bool = True) -> str:
    """A :func:`compare_seeds` result as text: the difference (unless ``difference`` is False), the
    test (Welch's p, or the per-seed ranges of a single-seed comparison) and its outcome."""
    unit = f" {unit}" if unit else ""
    n_a, n_b = test["seeds"]
    head = f"{scale * test['difference']:+.1f}{unit}" if difference else ""
    if test["rule"] == "welch":
        p = "p < 0.001" if test["p"] < 0.001 else f"p = {test['p']:.3f}"
        body = (f"Welch {p} over {n_a} vs {n_b} seeds: "
                f"{'beyond' if test['separable'] else 'inside'} the seed noise")
        return f"{head}, {body}" if head else body

    def span(r: Sequence[float]) -> str:
        return f"{scale * r[0]:.1f}" if r[0] == r[1] else f"{scale * r[0]:.1f}-{scale * r[1]:.1f}"

    body = (f"per seed {span(test['range_a'])} vs {span(test['range_b'])}{unit}, "
            f"{'separate' if test['separable'] else 'overlapping'} ({n_a} vs {n_b} seeds; single-seed: "
            "no spread measured, so no Welch test)")
    return f"{head}; {body}" if head else body


# ---------------------------------------------------------------- outcomes of a claim's parts
def _exists(test: Mapping, shorter_or_lower: bool) -> str:
    """A difference that must exist: "pass" when separable and mean(a) < mean(b) (``shorter_or_lower``)
    or > (otherwise), "fail" when separable the other way, "noise" when not separable."""
    if not test["separable"]:
        return "noise"
    return "pass" if (test["difference"] < 0) == shorter_or_lower else "fail"


def _tolerance(met: bool, test: Mapping) -> str:
    """A tolerance: "pass" when the means meet it, else "fail" if the miss is separable, "noise" if not."""
    if met:
        return "pass"
    return "fail" if test["separable"] else "noise"


def _combine(outcomes: Sequence[str]) -> str:
    if "fail" in outcomes:
        return "does_not_hold"
    return "not_separable" if "noise" in outcomes else "holds"


def _combine_statuses(statuses: Sequence[str]) -> str:
    return _combine(["fail" if s == "does_not_hold" else "noise" if s == "not_separable" else "pass"
                     for s in statuses])


def _row(claim: str, statement: str, criterion: str, numbers: dict, status: str, **extra) -> dict:
    return {"id": claim, "statement": statement, "criterion": criterion, "numbers": numbers, "status": status,
            "holds": _HOLDS.get(status), **extra}


# ---------------------------------------------------------------- reading the summary
def _point(summary: Mapping, method: str, dataset: str) -> tuple[float, float] | None:
    """(mean length, mean accuracy) of ``method`` on ``dataset``, or None when it did not run."""
    entry = summary["methods"].get(method)
    if entry is None or dataset not in entry["eval"]:
        return None
    e = entry["eval"][dataset]
    return e["mean_length"]["mean"], e["accuracy"]["mean"]


def _per_seed(stat: Mapping) -> list[float]:
    values = [v for v in stat.get("per_seed", ()) if v is not None]
    return values or [stat["mean"]]


def _seeds(summary: Mapping, method: str, dataset: str, key: str) -> list[float]:
    """Per-seed values of ``key`` ("accuracy" or "mean_length"); the mean alone when none are stored."""
    return _per_seed(summary["methods"][method]["eval"][dataset][key])


def _seed_test(summary: Mapping, a: str, b: str, dataset: str, key: str) -> dict:
    """:func:`compare_seeds` of method ``a``'s per-seed ``key`` on ``dataset`` against method ``b``'s."""
    return compare_seeds(_seeds(summary, a, dataset, key), _seeds(summary, b, dataset, key))


def _set_floor(summary: Mapping, methods: Sequence[str], dataset: str, kinds: Mapping[str, str]) -> dict:
    """:func:`floor_check` of each method's mean accuracy on ``dataset``; the set is at its floor when
    no method is above it."""
    kind = kinds.get(dataset) or answer_kind(dataset)
    checks = {}
    for m in methods:
        e = summary["methods"][m]["eval"][dataset]
        checks[m] = {**floor_check(e["accuracy"]["mean"], e.get("n"), kind),
                     "label": summary["methods"][m].get("label", m.upper())}
    return {"kind": kind, "chance": CHANCE.get(kind), "methods": checks,
            "at_floor": all(c["at_floor"] for c in checks.values())}


def curve_accuracy(points: Sequence[tuple[float, float]], length: float) -> float:
    """f(length) for the piecewise-linear curve through ``points`` ((length, accuracy), any order),
    flat beyond its shortest and longest points (C2)."""
    if not points:
        raise ValueError("a curve needs at least one (length, accuracy) point")
    pts = sorted(points)
    if length <= pts[0][0]:
        return pts[0][1]
    if length >= pts[-1][0]:
        return pts[-1][1]
    for (l0, a0), (l1, a1) in zip(pts, pts[1:]):
        if l0 <= length <= l1:
            return a0 if l1 == l0 else a0 + (a1 - a0) * (length - l0) / (l1 - l0)
    raise AssertionError("unreachable: length lies inside the curve")


def shorter_at_equal_accuracy(grpo: tuple[float, float], sa: tuple[float, float]) -> dict:
    """C1's criterion on the means, from (length, accuracy) of GRPO and SA-GRPO, before any noise
    rule: ``holds`` is whether the means meet it (None when GRPO's length is not positive)."""
    reduction = 1 - sa[0] / grpo[0] if grpo[0] > 0 else None
    drop = 100 * (grpo[1] - sa[1])
    holds = None if reduction is None else (reduction >= C1_MIN_LENGTH_REDUCTION - _ROUNDING
                                            and drop <= ACCURACY_TOLERANCE_POINTS + _ROUNDING)
    return {"length_reduction": reduction, "accuracy_drop_points": drop, "holds": holds}


# ---------------------------------------------------------------- the claims
def _floor_and_status(numbers: dict, summary: Mapping, methods: Sequence[str], dataset: str,
                      kinds: Mapping[str, str], outcomes: Sequence[str]) -> str:
    """Adds the floor of ``dataset`` for ``methods`` (:func:`_set_floor`) to ``numbers`` and returns the
    status: "untestable" at the floor, else the parts' ``outcomes`` combined."""
    numbers["floor"] = _set_floor(summary, methods, dataset, kinds)
    return "untestable" if numbers["floor"]["at_floor"] else _combine(outcomes)


def _shorter_and_as_accurate(summary: Mapping, shaped: str, plain: str, dataset: str) -> tuple[dict, dict]:
    """The two seed tests of "``shaped`` is shorter than ``plain`` on ``dataset`` at no lower accuracy",
    each with its ``outcome``: the length difference must exist, ``L_shaped < L_plain``
    (:func:`_exists`); the accuracy is a tolerance, ``100 (acc_plain - acc_shaped) <= 1`` (:func:`_tolerance`)."""
    drop = 100 * (_point(summary, plain, dataset)[1] - _point(summary, shaped, dataset)[1])
    length = _seed_test(summary, shaped, plain, dataset, "mean_length")
    length["outcome"] = _exists(length, shorter_or_lower=True)
    accuracy = _seed_test(summary, shaped, plain, dataset, "accuracy")
    accuracy["outcome"] = _tolerance(drop <= ACCURACY_TOLERANCE_POINTS + _ROUNDING, accuracy)
    return length, accuracy


def _shorter_row(summary: Mapping, claim: str, plain: str, shaped: str, in_domain: str,
                 kinds: Mapping[str, str], control: str | None) -> dict:
    """C1 or C7: method ``shaped`` (e.g. "sa-grpo") against ``plain`` ("grpo") by C1's criterion,
    ``1 - L_shaped / L_plain >= 0.20`` and ``100 (acc_plain - acc_shaped) <= 1``, and shorter than
    ``control`` (C1: shuffled SAR) when the summary has it."""
    base, sa = _point(summary, plain, in_domain), _point(summary, shaped, in_domain)
    control = control if control and _point(summary, control, in_domain) else None   # a replicate runs without it
    p, s = plain.replace("-", "_"), shaped.replace("-", "_")
    statement = f"{shaped.upper()}'s answers are shorter than {plain.upper()}'s at equal accuracy"
    criterion = (f">= {100 * C1_MIN_LENGTH_REDUCTION:.0f}% shorter, accuracy at most {ACCURACY_TOLERANCE_POINTS:g} "
                 f"point lower ({in_domain}, greedy, mean over seeds)"
                 + (f", and shorter than the {control} control" if control else "")
                 + "; differences count beyond the seed noise (Welch 5%, or separate ranges for one seed)")
    means = shorter_at_equal_accuracy(base, sa) if base and sa else {"length_reduction": None}
    if means["length_reduction"] is None:
        return _row(claim, statement, criterion, {p: base, s: sa, **means}, "not_run")
    numbers = {"dataset": in_domain, p: base, s: sa, "length_reduction": means["length_reduction"],
               "accuracy_drop_points": means["accuracy_drop_points"], "criterion_on_means": means["holds"]}
    length, accuracy = _shorter_and_as_accurate(summary, shaped, plain, in_domain)
    if length["outcome"] == "pass" and means["length_reduction"] < C1_MIN_LENGTH_REDUCTION - _ROUNDING:
        length["outcome"] = "fail"   # real, but shorter by less than the claim's margin
    numbers.update(length_test=length, accuracy_test=accuracy, control=None)
    outcomes = [length["outcome"], accuracy["outcome"]]
    if control:
        test = _seed_test(summary, shaped, control, in_domain, "mean_length")
        test["outcome"] = "pass" if test["separable"] and test["difference"] < 0 else "noise"
        numbers["control"] = {"method": control, "label": summary["methods"][control].get("label", control),
                              "point": _point(summary, control, in_domain), "length_test": test}
        outcomes.append(test["outcome"])
    status = _floor_and_status(numbers, summary, [plain, shaped], in_domain, kinds, outcomes)
    return _row(claim, statement, criterion, numbers, status)


def _c2_baseline(summary: Mapping, methods: Sequence[str], in_domain: str) -> dict:
    """C2 against one baseline run at the alphas of ``methods``: ``acc_SA >= f_B(L_SA)``, with f_B
    (:func:`curve_accuracy`) through GRPO and the baseline's points; a shortfall is a tolerance miss."""
    grpo, sa = _point(summary, "grpo", in_domain), _point(summary, "sa-grpo", in_domain)
    points = [p for p in (_point(summary, m, in_domain) for m in methods) if p]
    if not (grpo and sa and points):
        return {"status": "not_run", "holds": None}
    expected = curve_accuracy([grpo, *points], sa[0])
    test = compare_seeds(_seeds(summary, "sa-grpo", in_domain, "accuracy"), [expected])
    test["outcome"] = _tolerance(sa[1] >= expected - _ROUNDING, test)
    status = _combine([test["outcome"]])
    return {"points": points, "accuracy_at_sa_length": expected, "margin_points": 100 * (sa[1] - expected),
            "accuracy_test": test, "status": status, "holds": _HOLDS.get(status)}


def _c2_pareto(summary: Mapping, in_domain: str, baselines: Mapping[str, Sequence[str]],
               kinds: Mapping[str, str]) -> dict:
    """C2: SA-GRPO is on or above every baseline's accuracy-vs-length curve (:func:`_c2_baseline`)."""
    grpo, sa = _point(summary, "grpo", in_domain), _point(summary, "sa-grpo", in_domain)
    floor = _set_floor(summary, ["grpo", "sa-grpo"], in_domain, kinds) if grpo and sa else None
    per_baseline = {name: _c2_baseline(summary, methods, in_domain) for name, methods in baselines.items()}
    statuses = [v["status"] for v in per_baseline.values()]
    status = ("not_run" if not statuses or "not_run" in statuses else
              "untestable" if floor["at_floor"] else _combine_statuses(statuses))
    return _row("C2", "Pareto: at matched length SA-GRPO is at least as accurate as the length penalties",
                "acc_SA >= the accuracy of each baseline's curve (GRPO and its alphas, piecewise linear, flat "
                "beyond its ends) at SA-GRPO's length; a shortfall counts when every SA-GRPO seed is below the "
                "curve (single-seed baselines)",
                {"sa_grpo": sa, **per_baseline, **({"floor": floor} if floor else {})}, status)


def _c3_sar_alone_collapses(summary: Mapping, in_domain: str, kinds: Mapping[str, str]) -> dict:
    """C3: ``100 (acc_GRPO - acc_RSA) >= 10`` and ``L_RSA < L_GRPO``, both differences that must exist."""
    grpo, alone = _point(summary, "grpo", in_domain), _point(summary, "sar-only", in_domain)
    numbers = {"grpo": grpo, "sar_only": alone,
               "accuracy_drop_points": 100 * (grpo[1] - alone[1]) if grpo and alone else None}
    status = "not_run"
    if grpo and alone:
        accuracy = _seed_test(summary, "sar-only", "grpo", in_domain, "accuracy")
        accuracy["outcome"] = _exists(accuracy, shorter_or_lower=True)
        if accuracy["outcome"] == "pass" and numbers["accuracy_drop_points"] < C3_MIN_ACCURACY_DROP_POINTS - _ROUNDING:
            accuracy["outcome"] = "fail"   # real, but a smaller drop than the claim's
        length = _seed_test(summary, "sar-only", "grpo", in_domain, "mean_length")
        length["outcome"] = _exists(length, shorter_or_lower=True)
        numbers.update(accuracy_test=accuracy, length_test=length)
        status = _floor_and_status(numbers, summary, ["grpo", "sar-only"], in_domain, kinds,
                                   [accuracy["outcome"], length["outcome"]])
    return _row("C3", "R_SA alone collapses",
                f"accuracy at least {C3_MIN_ACCURACY_DROP_POINTS:g} points below GRPO's and shorter answers, "
                "beyond the seed noise", numbers, status)


def _c4_beats_em(summary: Mapping, in_domain: str, kinds: Mapping[str, str]) -> dict:
    """C4: ``L_SA < L_EM`` and ``100 (acc_EM - acc_SA) <= 1`` (:func:`_shorter_and_as_accurate`)."""
    em, sa = _point(summary, "em", in_domain), _point(summary, "sa-grpo", in_domain)
    numbers = {"em": em, "sa_grpo": sa}
    status = "not_run"
    if sa and em:
        length, accuracy = _shorter_and_as_accurate(summary, "sa-grpo", "em", in_domain)
        numbers.update(length_test=length, accuracy_test=accuracy)
        status = _floor_and_status(numbers, summary, ["em", "sa-grpo"], in_domain, kinds,
                                   [length["outcome"], accuracy["outcome"]])
    return _row("C4", "SA-GRPO is shorter than R_VR + α·R_EM at no lower accuracy",
                f"L_SA < L_EM and accuracy at most {ACCURACY_TOLERANCE_POINTS:g} point lower, beyond the seed "
                "noise", numbers, status)


def _c5_trains_no_slower(summary: Mapping) -> dict:
    """C5: mean training seconds of SA-GRPO <= GRPO's, a tolerance over the per-seed times."""
    present = [m for m in ("grpo", "sa-grpo") if m in summary["methods"]]
    times = {m: summary["methods"][m]["train_seconds"]["mean"] for m in present}
    numbers = {"train_seconds": times}
    status = "not_run"
    if len(times) == 2:
        test = compare_seeds(_per_seed(summary["methods"]["sa-grpo"]["train_seconds"]),
                             _per_seed(summary["methods"]["grpo"]["train_seconds"]))
        test["outcome"] = _tolerance(times["sa-grpo"] <= times["grpo"], test)
        numbers["test"] = test
        status = _combine([test["outcome"]])
    return _row("C5", "SA-GRPO trains no slower than GRPO (shorter rollouts pay for the extra pass)",
                "mean training time of SA-GRPO <= GRPO's, same steps; slower counts beyond the seed noise",
                numbers, status)


def _c6_set(summary: Mapping, dataset: str, kinds: Mapping[str, str]) -> dict:
    """C6 on one OOD set: ``100 (acc_GRPO - acc_SA) <= 1`` and ``L_SA < L_GRPO`` (:func:`_shorter_and_as_accurate`)."""
    g, s = _point(summary, "grpo", dataset), _point(summary, "sa-grpo", dataset)
    if not (g and s):
        return {"grpo": g, "sa_grpo": s, "status": "not_run", "holds": None}
    length, accuracy = _shorter_and_as_accurate(summary, "sa-grpo", "grpo", dataset)
    numbers = {"grpo": g, "sa_grpo": s, "length_test": length, "accuracy_test": accuracy}
    status = _floor_and_status(numbers, summary, ["grpo", "sa-grpo"], dataset, kinds,
                               [length["outcome"], accuracy["outcome"]])
    return {**numbers, "status": status, "holds": _HOLDS.get(status)}


def _c6_out_of_domain(summary: Mapping, ood_sets: Sequence[str], kinds: Mapping[str, str]) -> dict:
    """C6: :func:`_c6_set` holds on every OOD set above its floor; untestable when none is."""
    per_set = {dataset: _c6_set(summary, dataset, kinds) for dataset in ood_sets}
    statuses = {d: v["status"] for d, v in per_set.items()}
    judged = [d for d, st in statuses.items() if st != "untestable"]
    untestable = [d for d, st in statuses.items() if st == "untestable"]
    status = ("not_run" if not statuses or "not_run" in statuses.values() else
              "untestable" if not judged else _combine_statuses([statuses[d] for d in judged]))
    return _row("C6", "Out of domain SA-GRPO keeps GRPO's accuracy and is shorter",
                f"on every OOD set above its floor: accuracy at most {ACCURACY_TOLERANCE_POINTS:g} point lower "
                "and L_SA < L_GRPO beyond the seed noise",
                per_set, status, judged_on=judged, untestable_on=untestable)


def _c8_improves_on_base(summary: Mapping, in_domain: str, kinds: Mapping[str, str]) -> dict:
    """C8: ``acc_SA >= acc_base`` and ``100 (acc_GRPO - acc_SA) <= 1``, both tolerances (:func:`_tolerance`):
    a shortfall counts only beyond the seed noise (below the base: when every SA-GRPO seed is)."""
    base = (summary.get("base") or {}).get(in_domain)
    grpo, sa = _point(summary, "grpo", in_domain), _point(summary, "sa-grpo", in_domain)
    numbers = {"dataset": in_domain, "base": None if base is None else (base["mean_length"], base["accuracy"]),
               "grpo": grpo, "sa_grpo": sa}
    status = "not_run"
    if base and grpo and sa:
        above_base = compare_seeds(_seeds(summary, "sa-grpo", in_domain, "accuracy"), [base["accuracy"]])
        above_base["outcome"] = _tolerance(sa[1] >= base["accuracy"] - _ROUNDING, above_base)
        _, accuracy = _shorter_and_as_accurate(summary, "sa-grpo", "grpo", in_domain)
        numbers.update(base_test=above_base, accuracy_test=accuracy,
                       points_above_base=100 * (sa[1] - base["accuracy"]))
        status = _floor_and_status(numbers, summary, ["grpo", "sa-grpo"], in_domain, kinds,
                                   [above_base["outcome"], accuracy["outcome"]])
    return _row("C8", "RL improves on the base: SA-GRPO is at least as accurate as the base model and as GRPO",
                f"acc_SA >= the base model's and at most {ACCURACY_TOLERANCE_POINTS:g} point below GRPO's "
                f"({in_domain}, greedy, mean over seeds), beyond the seed noise", numbers, status)


def check_claims(summary: Mapping, *, in_domain: str, ood_sets: Sequence[str],
                 baselines: Mapping[str, Sequence[str]], kinds: Mapping[str, str] | None = None,
                 control: str = CONTROL_METHOD) -> list[dict]:
    """C1-C8 (module docstring) on a grid summary (``summary["methods"][name]["eval"][set]``: per
    metric ``{"mean", "std", "per_seed"}``, and ``n``, the number of problems).

    ``baselines``: {"O1-pruner": [method names at each alpha], "ER": [...]} for C2; ``kinds``: a set's
    answer kind when :func:`answer_kind` does not know it; ``control``: C1's control method. Returns
    one dict per claim: ``id``, ``statement``, ``criterion``, ``numbers`` (what the verdict was
    computed from, the tests of :func:`sar_lib.lab.stats.compare_seeds` and the floor checks included),
    ``status`` (:data:`STATUSES`) and ``holds`` (True, False, or None for any other status).
    """
    kinds = dict(kinds or {})
    return [_shorter_row(summary, "C1", "grpo", "sa-grpo", in_domain, kinds, control),
            _c2_pareto(summary, in_domain, baselines, kinds),
            _c3_sar_alone_collapses(summary, in_domain, kinds),
            _c4_beats_em(summary, in_domain, kinds),
            _c5_trains_no_slower(summary),
            _c6_out_of_domain(summary, ood_sets, kinds),
            _shorter_row(summary, "C7", "ppo", "sa-ppo", in_domain, kinds, None),
            _c8_improves_on_base(summary, in_domain, kinds)]


def current_claims(summary: Mapping, in_domain: str | None = None) -> list[dict]:
    """The claims of a stored grid summary under this module's rules: its own rows when they carry a
    ``status`` (written by this version or one before it), plus any claim added since (C8 in a file written
    before it), judged by :func:`check_claims` on the stored per-seed numbers; every claim judged that way
    when its rows carry no status (a file written before the noise and floor rules). ``in_domain``: default
    the grid's ``settings["eval_dataset"]``, else the first evaluated set; OOD sets: the others; the C2
    baselines: the methods whose ``reward`` is "o1" / "er"."""
    rows = list(summary.get("claims") or [])
    stored = bool(rows) and all("status" in r for r in rows)
    if stored and {r["id"] for r in rows} >= set(CLAIM_IDS):
        return rows
    methods = summary["methods"]
    datasets = list(next(iter(methods.values()))["eval"]) if methods else []
    in_domain = in_domain or summary.get("settings", {}).get("eval_dataset") or (datasets[0] if datasets else "")
    baselines = {label: [n for n, m in methods.items() if m.get("reward", n.split("-")[0]) == reward]
                 for label, reward in (("O1-pruner", "o1"), ("ER", "er"))}
    judged = check_claims(summary, in_domain=in_domain, ood_sets=[d for d in datasets if d != in_domain],
                          baselines=baselines)
    if not stored:
        return judged
    have = {r["id"] for r in rows}
    return rows + [r for r in judged if r["id"] not in have]


def claim_row(summary: Mapping, claim_id: str) -> dict | None:
    """The row of claim ``claim_id`` ("C1" ... "C8") of a grid summary under :func:`current_claims` (None when
    it has none)."""
    return next((row for row in current_claims(summary) if row["id"] == claim_id), None)


# ---------------------------------------------------------------- text
def _fmt_point(point: tuple[float, float] | None) -> str:
    return "—" if point is None else f"{100 * point[1]:.1f}% / {point[0]:.1f} tok"


def verdict_word(row: Mapping) -> str:
    """The words of a claim row's verdict (:data:`VERDICT_WORDS`), from its ``status`` (or, for a row
    written before the statuses, its ``holds``)."""
    return VERDICT_WORDS[row["status"] if "status" in row else row["holds"]]


def _tests_text(n: Mapping, *, length_unit: str = "tok") -> str:
    parts = []
    if "length_test" in n:
        parts.append(f"length {test_text(n['length_test'], length_unit)}")
    if "accuracy_test" in n:
        parts.append(f"accuracy {test_text(n['accuracy_test'], 'points', 100)}")
    control = n.get("control")
    if control:
        parts.append(f"against {control.get('label', control['method'])} ({_fmt_point(control['point'])}) length "
                     f"{test_text(control['length_test'], length_unit)}")
    floor = n.get("floor")
    if floor and floor["at_floor"]:
        parts.append(f"at the floor: {floor_text(floor)}")
    return "; ".join(parts)


def measured(row: Mapping) -> str:
    """The numbers behind one claim's verdict, as a short text (accuracy % / length in tokens), with
    the noise tests (:func:`test_text`) and the floor when they decided it."""
    n = row["numbers"]
    tests = _tests_text(n)
    tail = f"; {tests}" if tests else ""
    if row["id"] in ("C1", "C7"):
        if n.get("length_reduction") is None:
            return "—"
        plain, shaped = ("grpo", "sa_grpo") if row["id"] == "C1" else ("ppo", "sa_ppo")
        return (f"{plain.upper()} {_fmt_point(n[plain])}, SA-{plain.upper()} {_fmt_point(n[shaped])}: "
                f"{100 * n['length_reduction']:+.1f}% shorter, {-n['accuracy_drop_points']:+.1f} points{tail}")
    if row["id"] == "C2":
        parts = [f"{name}: curve gives {100 * v['accuracy_at_sa_length']:.1f}% at SA-GRPO's length "
                 f"(SA-GRPO {v['margin_points']:+.1f} points"
                 + ("" if v["accuracy_test"]["outcome"] == "pass" else
                    f"; {test_text(v['accuracy_test'], 'points', 100, difference=False)}") + ")"
                 for name, v in n.items() if isinstance(v, Mapping) and "accuracy_at_sa_length" in v]
        floor = n.get("floor")
        if floor and floor["at_floor"] and parts:
            parts.append(f"at the floor: {floor_text(floor)}")
        return "; ".join(parts) or "—"
    if row["id"] == "C3":
        return f"GRPO {_fmt_point(n['grpo'])}, R_SA alone {_fmt_point(n['sar_only'])}{tail}"
    if row["id"] == "C4":
        return f"R_VR + α·R_EM {_fmt_point(n['em'])}, SA-GRPO {_fmt_point(n['sa_grpo'])}{tail}"
    if row["id"] == "C8":
        if n["base"] is None or n["sa_grpo"] is None:
            return "—"
        above = "" if "base_test" not in n else \
            f"; against the base {test_text(n['base_test'], 'points', 100)}"
        return (f"base {_fmt_point(n['base'])}, GRPO {_fmt_point(n['grpo'])}, SA-GRPO {_fmt_point(n['sa_grpo'])}"
                f"{above}{tail}")
    if row["id"] == "C5":
        t = n["train_seconds"]
        if len(t) < 2:
            return "—"
        test = n.get("test")
        extra = "" if not test or test["outcome"] == "pass" else f"; {test_text(test, 's')}"
        return f"GRPO {t['grpo']:.0f} s, SA-GRPO {t['sa-grpo']:.0f} s{extra}"
    cells = []
    for d, v in n.items():
        cell = f"{d}: GRPO {_fmt_point(v['grpo'])}, SA-GRPO {_fmt_point(v['sa_grpo'])}"
        if "status" in v and v["status"] != "not_run":
            cell += f" ({VERDICT_WORDS[v['status']]}; {_tests_text(v)})"
        cells.append(cell)
    return "; ".join(cells)


def claims_markdown(rows: Sequence[Mapping]) -> str:
    """The claims as a Markdown table: claim, criterion, measured numbers, verdict."""
    lines = ["| claim | criterion | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {r['id']} {r['statement']} | {r['criterion']} | {measured(r)} | **{verdict_word(r)}** |"
              for r in rows]
    return "\n".join(lines)
