"""The paper's claims (docs/paper.md §5) as small-scale criteria, checked on a grid's summary.

Every criterion was fixed before the grid ran (issue "Testbed v2"); nothing here is tuned to a
result. With acc the greedy accuracy in [0, 1] and L the mean greedy answer length in tokens, each
the mean over the method's seeds, on the in-domain set unless said otherwise:

* **C1** SA-GRPO is shorter at equal accuracy: ``1 - L_SA / L_GRPO >= 0.20`` and
  ``100 (acc_GRPO - acc_SA) <= 1``.
* **C2** Pareto: at SA-GRPO's length, SA-GRPO is at least as accurate as O1-pruner and as ER:
  ``acc_SA >= f_B(L_SA)`` for each baseline B, with f_B the piecewise-linear accuracy-vs-length
  curve through GRPO (alpha = 0) and B's runs at its alphas, held flat beyond its shortest and
  longest points (the flat extension credits the baseline with accuracy it may not reach: a
  conservative test of the claim).
* **C3** R_SA alone collapses: ``100 (acc_GRPO - acc_RSA) >= 10`` and ``L_RSA < L_GRPO``.
* **C4** SA-GRPO beats R_VR + alpha R_EM: ``L_SA < L_EM`` and ``100 (acc_EM - acc_SA) <= 1``.
* **C5** SA-GRPO trains no slower: mean training seconds (the sum of ``time/step``) of SA-GRPO
  <= GRPO's, for the same steps.
* **C6** Out of domain, SA-GRPO keeps GRPO's accuracy and is shorter, on every OOD set:
  ``100 (acc_GRPO - acc_SA) <= 1`` and ``L_SA < L_GRPO``.
* **C7** SA-PPO is shorter than PPO at equal accuracy: C1's criterion with PPO and SA-PPO (an
  opt-in pair of the grid: it is "not run" unless the grid trained them).

A claim whose methods are missing from the summary is reported with ``holds = None``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

C1_MIN_LENGTH_REDUCTION = 0.20
ACCURACY_TOLERANCE_POINTS = 1.0
C3_MIN_ACCURACY_DROP_POINTS = 10.0
_ROUNDING = 1e-9   # 1 - 80/100 is 0.19999999999999996 in floating point


def _point(summary: Mapping, method: str, dataset: str) -> tuple[float, float] | None:
    """(mean length, mean accuracy) of ``method`` on ``dataset``, or None when it did not run."""
    entry = summary["methods"].get(method)
    if entry is None or dataset not in entry["eval"]:
        return None
    e = entry["eval"][dataset]
    return e["mean_length"]["mean"], e["accuracy"]["mean"]


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
    """C1 from (length, accuracy) of GRPO and SA-GRPO."""
    reduction = 1 - sa[0] / grpo[0] if grpo[0] > 0 else None
    drop = 100 * (grpo[1] - sa[1])
    holds = None if reduction is None else (reduction >= C1_MIN_LENGTH_REDUCTION - _ROUNDING
                                            and drop <= ACCURACY_TOLERANCE_POINTS + _ROUNDING)
    return {"length_reduction": reduction, "accuracy_drop_points": drop, "holds": holds}


def _shorter_row(summary: Mapping, claim: str, plain: str, shaped: str, in_domain: str) -> dict:
    """C1 or C7: method ``shaped`` (e.g. "sa-grpo") against ``plain`` ("grpo") by C1's criterion."""
    base, sa = _point(summary, plain, in_domain), _point(summary, shaped, in_domain)
    numbers = shorter_at_equal_accuracy(base, sa) if base and sa else {"holds": None}
    return {"id": claim, "statement": f"{shaped.upper()}'s answers are shorter than {plain.upper()}'s at equal accuracy",
            "criterion": f">= {100 * C1_MIN_LENGTH_REDUCTION:.0f}% shorter, accuracy at most "
                         f"{ACCURACY_TOLERANCE_POINTS:g} point lower ({in_domain}, greedy, mean over seeds)",
            "numbers": {plain.replace("-", "_"): base, shaped.replace("-", "_"): sa, **numbers},
            "holds": numbers["holds"]}


def check_claims(summary: Mapping, *, in_domain: str, ood_sets: Sequence[str],
                 baselines: Mapping[str, Sequence[str]]) -> list[dict]:
    """C1-C7 (module docstring) on a grid summary (``summary["methods"][name]["eval"][set]``).

    ``baselines``: {"O1-pruner": [method names at each alpha], "ER": [...]} for C2. Returns one dict
    per claim: ``id``, ``statement``, ``criterion``, ``numbers`` (what the verdict was computed from)
    and ``holds`` (True, False, or None when a method it needs is missing).
    """
    grpo, sa = _point(summary, "grpo", in_domain), _point(summary, "sa-grpo", in_domain)
    rows = [_shorter_row(summary, "C1", "grpo", "sa-grpo", in_domain)]

    c2 = {}
    for name, methods in baselines.items():
        points = [p for p in (_point(summary, m, in_domain) for m in methods) if p]
        if grpo and sa and points:
            expected = curve_accuracy([grpo, *points], sa[0])
            c2[name] = {"points": points, "accuracy_at_sa_length": expected,
                        "margin_points": 100 * (sa[1] - expected), "holds": sa[1] >= expected - _ROUNDING}
        else:
            c2[name] = {"holds": None}
    verdicts = [v["holds"] for v in c2.values()]
    rows.append({"id": "C2", "statement": "Pareto: at matched length SA-GRPO is at least as accurate as the "
                                          "length penalties",
                 "criterion": "acc_SA >= the accuracy of each baseline's curve (GRPO and its alphas, "
                              "piecewise linear, flat beyond its ends) at SA-GRPO's length",
                 "numbers": {"sa_grpo": sa, **c2},
                 "holds": None if not verdicts or None in verdicts else all(verdicts)})

    alone = _point(summary, "sar-only", in_domain)
    c3 = None if not (grpo and alone) else (100 * (grpo[1] - alone[1]) >= C3_MIN_ACCURACY_DROP_POINTS - _ROUNDING
                                            and alone[0] < grpo[0])
    rows.append({"id": "C3", "statement": "R_SA alone collapses",
                 "criterion": f"accuracy at least {C3_MIN_ACCURACY_DROP_POINTS:g} points below GRPO's and "
                              "shorter answers",
                 "numbers": {"grpo": grpo, "sar_only": alone,
                             "accuracy_drop_points": 100 * (grpo[1] - alone[1]) if grpo and alone else None},
                 "holds": c3})

    em = _point(summary, "em", in_domain)
    c4 = None if not (sa and em) else (sa[0] < em[0] and 100 * (em[1] - sa[1]) <= ACCURACY_TOLERANCE_POINTS + _ROUNDING)
    rows.append({"id": "C4", "statement": "SA-GRPO is shorter than R_VR + α·R_EM at no lower accuracy",
                 "criterion": f"L_SA < L_EM and accuracy at most {ACCURACY_TOLERANCE_POINTS:g} point lower",
                 "numbers": {"em": em, "sa_grpo": sa}, "holds": c4})

    times = {m: summary["methods"][m]["train_seconds"]["mean"] for m in ("grpo", "sa-grpo") if m in summary["methods"]}
    c5 = times["sa-grpo"] <= times["grpo"] if len(times) == 2 else None
    rows.append({"id": "C5", "statement": "SA-GRPO trains no slower than GRPO (shorter rollouts pay for the "
                                          "extra pass)",
                 "criterion": "mean training time of SA-GRPO <= GRPO's, same steps",
                 "numbers": {"train_seconds": times}, "holds": c5})

    c6 = {}
    for dataset in ood_sets:
        g, s = _point(summary, "grpo", dataset), _point(summary, "sa-grpo", dataset)
        c6[dataset] = {"grpo": g, "sa_grpo": s,
                       "holds": None if not (g and s) else (100 * (g[1] - s[1]) <= ACCURACY_TOLERANCE_POINTS + _ROUNDING
                                                            and s[0] < g[0])}
    verdicts = [v["holds"] for v in c6.values()]
    rows.append({"id": "C6", "statement": "Out of domain SA-GRPO keeps GRPO's accuracy and is shorter",
                 "criterion": f"on every OOD set: accuracy at most {ACCURACY_TOLERANCE_POINTS:g} point lower "
                              "and L_SA < L_GRPO",
                 "numbers": c6, "holds": None if not verdicts or None in verdicts else all(verdicts)})
    rows.append(_shorter_row(summary, "C7", "ppo", "sa-ppo", in_domain))
    return rows


def _fmt_point(point: tuple[float, float] | None) -> str:
    return "—" if point is None else f"{100 * point[1]:.1f}% / {point[0]:.1f} tok"


def measured(row: Mapping) -> str:
    """The numbers behind one claim's verdict, as a short text (accuracy % / length in tokens)."""
    n = row["numbers"]
    if row["id"] in ("C1", "C7"):
        if n.get("length_reduction") is None:
            return "—"
        plain, shaped = ("grpo", "sa_grpo") if row["id"] == "C1" else ("ppo", "sa_ppo")
        return (f"{plain.upper()} {_fmt_point(n[plain])}, SA-{plain.upper()} {_fmt_point(n[shaped])}: "
                f"{100 * n['length_reduction']:+.1f}% shorter, {-n['accuracy_drop_points']:+.1f} points")
    if row["id"] == "C2":
        parts = [f"{name}: curve gives {100 * v['accuracy_at_sa_length']:.1f}% at SA-GRPO's length "
                 f"(SA-GRPO {v['margin_points']:+.1f} points)" for name, v in n.items()
                 if isinstance(v, Mapping) and "accuracy_at_sa_length" in v]
        return "; ".join(parts) or "—"
    if row["id"] == "C3":
        return f"GRPO {_fmt_point(n['grpo'])}, R_SA alone {_fmt_point(n['sar_only'])}"
    if row["id"] == "C4":
        return f"R_VR + α·R_EM {_fmt_point(n['em'])}, SA-GRPO {_fmt_point(n['sa_grpo'])}"
    if row["id"] == "C5":
        t = n["train_seconds"]
        return "—" if len(t) < 2 else f"GRPO {t['grpo']:.0f} s, SA-GRPO {t['sa-grpo']:.0f} s"
    return "; ".join(f"{d}: GRPO {_fmt_point(v['grpo'])}, SA-GRPO {_fmt_point(v['sa_grpo'])}" for d, v in n.items())


VERDICT_WORDS = {True: "holds", False: "does not hold", None: "not run"}


def claims_markdown(rows: Sequence[Mapping]) -> str:
    """The claims as a Markdown table: claim, criterion, measured numbers, verdict."""
    lines = ["| claim | criterion | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {r['id']} {r['statement']} | {r['criterion']} | {measured(r)} | **{VERDICT_WORDS[r['holds']]}** |"
              for r in rows]
    return "\n".join(lines)
