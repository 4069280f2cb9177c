"""The budget curve in words: after how many rollouts per run SA-GRPO's greedy answers separate from
GRPO's and from the shuffled-SAR control's (beyond the seed noise), and when each seed's answers got
shorter, where the mean over seeds hides it. Reads the ``budget_curve`` of a ``sar compare`` summary
(``analysis.budget_curve``: greedy in-domain accuracy and length every ``eval_every`` steps).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from sar_lib.claims import C1_MIN_LENGTH_REDUCTION, compare_seeds, test_text
from sar_lib.verdicts import percent_shorter, shorter_text


def shortening_onsets(curve: Sequence[Mapping], reference: Sequence[Mapping], fraction: float) -> list[int | None]:
    """Per seed of ``curve`` (a method's ``analysis.budget_curve``), the first budget b (rollouts) from which
    L_seed(b) <= fraction * mean_seeds L_reference(b) at b and at every later budget of both curves, or
    None when the seed never stays there: when each seed's answers got shorter, where the mean hides it."""
    by_budget = {e["rollouts"]: e for e in reference}
    entries = [e for e in curve if e["rollouts"] > 0 and e["rollouts"] in by_budget]
    onsets: list[int | None] = [None] * (len(entries[0]["mean_length"]["per_seed"]) if entries else 0)
    for seed in range(len(onsets)):
        for entry in entries:
            short = entry["mean_length"]["per_seed"][seed] <= fraction * by_budget[entry["rollouts"]]["mean_length"]["mean"]
            onsets[seed] = (onsets[seed] or entry["rollouts"]) if short else None
    return onsets


def budget_markdown(grid: Mapping | None, shaped: str = "sa-grpo", reference: str = "grpo",
                    control: str = "shuffled-sar") -> str:
    """Markdown: the budget curve of ``grid`` (``budget_curve``: greedy in-domain length and accuracy along
    the runs) as one row per budget, then the sentence that says after how many rollouts ``shaped``'s
    answers separate from ``reference``'s and from ``control``'s, by ``claims.compare_seeds`` (Welch's
    test at 5% over seeds; every seed beyond the other side's one seed): the first budget from which
    they are shorter and separable at that budget and every later one."""
    curves = (grid or {}).get("budget_curve") or {}
    if shaped not in curves or reference not in curves:
        return f"_No budget curve of {reference} and {shaped} in this grid (run `sar compare`)._"
    by_budget = {name: {e["rollouts"]: e for e in curves[name]} for name in (shaped, reference, control)
                 if name in curves}
    budgets = [r for r in sorted(by_budget[shaped]) if r > 0 and r in by_budget[reference]]
    labels = {name: grid["methods"][name]["label"] for name in by_budget}

    def test(name: str, budget: int) -> dict | None:
        if budget not in by_budget.get(name, {}):
            return None
        return compare_seeds(by_budget[shaped][budget]["mean_length"]["per_seed"],
                             by_budget[name][budget]["mean_length"]["per_seed"])

    def cell(name: str, budget: int, key: str, scale: float = 1.0) -> str:
        entry = by_budget.get(name, {}).get(budget)
        if entry is None:
            return "—"
        values = ", ".join(f"{scale * v:.1f}" for v in entry[key]["per_seed"])
        return f"{scale * entry[key]['mean']:.1f}" + (f" ({values})" if len(entry[key]["per_seed"]) > 1 else "")

    def separates_from(name: str) -> int | None:
        """The first budget from which ``shaped`` is shorter than ``name`` beyond the noise, at every later one too."""
        first = None
        for budget in budgets:
            result = test(name, budget)
            ok = result is not None and result["separable"] and result["difference"] < 0
            first = (first or budget) if ok else None
        return first

    head = (f"| rollouts per run | {labels[reference]} length | {labels[shaped]} length | "
            + (f"{labels[control]} length | " if control in labels else "")
            + f"{labels[shaped]} vs {labels[reference]} | {labels[reference]} accuracy % | {labels[shaped]} accuracy % |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for budget in budgets:
        result = test(reference, budget)
        lines.append(f"| {budget:,} | {cell(reference, budget, 'mean_length')} | {cell(shaped, budget, 'mean_length')} | "
                     + (f"{cell(control, budget, 'mean_length')} | " if control in labels else "")
                     + f"{test_text(result, 'tok')} | {cell(reference, budget, 'accuracy', 100)} | "
                     f"{cell(shaped, budget, 'accuracy', 100)} |")
    last = budgets[-1]
    change = percent_shorter(by_budget[reference][last]["mean_length"]["mean"], by_budget[shaped][last]["mean_length"]["mean"])
    points = 100 * (by_budget[shaped][last]["accuracy"]["mean"] - by_budget[reference][last]["accuracy"]["mean"])
    sentences = [f"At {last:,} rollouts per run {labels[shaped]}'s greedy answers are {shorter_text(change)} than "
                 f"{labels[reference]}'s at {points:+.1f} points of accuracy (mean of the seeds)."]
    for name in (reference, control):
        if name not in by_budget:
            continue
        what = labels[name] if name == reference else f"the {labels[name]} control"
        first = separates_from(name)
        sentences.append(f"They separate from {what}'s beyond the seed noise from {first:,} rollouts on."
                         if first is not None else
                         f"They do not separate from {what}'s beyond the seed noise at every budget up to {last:,}.")
    sentences.append(onsets_text(grid, shaped, reference))
    return "\n".join(lines) + "\n\n" + " ".join(sentences)


def onsets_text(grid: Mapping, shaped: str = "sa-grpo", reference: str = "grpo") -> str:
    """The sentence that names, seed by seed, the budget from which ``shaped``'s greedy answers stay at
    least C1's 20% shorter than ``reference``'s mean (:func:`shortening_onsets` on the grid's
    ``budget_curve``)."""
    curves = grid["budget_curve"]
    onsets = shortening_onsets(curves[shaped], curves[reference], 1 - C1_MIN_LENGTH_REDUCTION)
    last = max(e["rollouts"] for e in curves[shaped])
    seeds = grid["methods"][shaped].get("seeds", range(len(onsets)))
    labels = {name: grid["methods"][name]["label"] for name in (shaped, reference)}
    return (f"Seed by seed, the budget from which {labels[shaped]}'s answers stay {100 * C1_MIN_LENGTH_REDUCTION:.0f}% "
            f"shorter than {labels[reference]}'s mean: " + ", ".join(
                f"seed {s} " + (f"{b:,}" if b else f"none up to {last:,}") for s, b in zip(seeds, onsets)) + ".")
