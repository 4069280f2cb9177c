"""What the grid's seeds did, read from ``sar compare``'s JSON: the numbers notebook 03 tells its result in.

Which SA-GRPO seeds switched to concise answers (:func:`switched_seeds`, by C1's margin applied to one
seed), the same comparison in other runs (:func:`robustness_markdown`), what the switch preset of the
notebook's live runs shows (:func:`preset_markdown`), and what RL did to held-out accuracy: at the end of
each run of the regime study (:func:`accuracy_summary`, :func:`accuracy_markdown`) and along the grid's
training against the base model (:func:`accuracy_along_training`). The sentences around the numbers are
fixed here and chosen by the numbers, so that the text and the outputs cannot drift apart.

Length changes are "% shorter" everywhere (:func:`percent_shorter`): positive means shorter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from sar_lib.lab.claims import C1_MIN_LENGTH_REDUCTION, STATUS_VERBS, claim_row, verdict_word
from sar_lib.lab.grid import IN_DOMAIN


def percent_shorter(reference_length: float, length: float) -> float | None:
    """``100 (1 - L / L_ref)``: how much shorter ``length`` is than ``reference_length`` in percent
    (positive: shorter, negative: longer); None when the reference length is not positive."""
    return 100 * (1 - length / reference_length) if reference_length > 0 else None


def shorter_text(value: float | None) -> str:
    """A :func:`percent_shorter` value in words: '12.3% shorter', '4.0% longer', '—' for None."""
    if value is None:
        return "—"
    return f"{value:.1f}% shorter" if value >= 0 else f"{-value:.1f}% longer"


# A seed has switched to concise answers when its final greedy answers are at least C1's margin shorter than
# GRPO's mean over seeds: C1's criterion (and analysis.shortening_onsets') applied to one seed.
SWITCHED_FRACTION = 1 - C1_MIN_LENGTH_REDUCTION


# The settings with which a 2-core CPU shows SAR's switch in notebook 03's live runs (STEPS,
# QUESTIONS_PER_STEP, LEARNING_RATE there): the grid's learning rate and batch, for 11,520 rollouts, a budget
# by which most seeds of the doubled-budget run wrote concise answers (preset_markdown states what was measured).
SWITCH_PRESET = {"steps": 120, "questions_per_step": 16, "learning_rate": 1e-3}


def rollouts_per_run(grid: Mapping) -> int:
    """The rollouts each run of ``grid`` sampled: steps x questions per step x answers per question."""
    s = grid["settings"]
    return s["steps"] * s["questions_per_step"] * s["group_size"]


def switched_seeds(grid: Mapping, method: str = "sa-grpo", reference: str = "grpo",
                   dataset: str = IN_DOMAIN) -> dict:
    """Which seeds of ``method`` switched to concise answers in ``grid`` (a ``sar compare`` summary), by a rule:
    a seed switched when its final greedy mean length on ``dataset`` is at most :data:`SWITCHED_FRACTION` x
    the mean over ``reference``'s seeds (at least C1's 20% shorter); the others lagged.

    Returns ``{"reference_mean", "threshold", "rollouts", "seeds": {seed: {"length", "percent_shorter",
    "switched", "onset"}}, "guide"}``: ``onset``, the budget from which the seed stayed under the threshold to
    the end (``analysis.shortening_onsets``; None when it never did or the grid has no budget curve);
    ``guide``, ``[(rollouts, threshold)]`` along the reference's budget curve ([] without one)."""
    from sar_lib.lab.analysis import shortening_onsets

    lengths = grid["methods"][method]["eval"][dataset]["mean_length"]["per_seed"]
    reference_mean = grid["methods"][reference]["eval"][dataset]["mean_length"]["mean"]
    curves = grid.get("budget_curve") or {}
    onsets = (shortening_onsets(curves[method], curves[reference], SWITCHED_FRACTION)
              if method in curves and reference in curves else [None] * len(lengths))
    threshold = SWITCHED_FRACTION * reference_mean
    seeds = {seed: {"length": length, "percent_shorter": percent_shorter(reference_mean, length),
                    "switched": length <= threshold, "onset": onset}
             for seed, length, onset in zip(grid["methods"][method]["seeds"], lengths, onsets)}
    guide = [(e["rollouts"], SWITCHED_FRACTION * e["mean_length"]["mean"]) for e in curves.get(reference, [])]
    return {"reference_mean": reference_mean, "threshold": threshold, "rollouts": rollouts_per_run(grid), "seeds": seeds,
            "guide": guide}


SWITCH_TABLE_HEADERS = ("SA-GRPO seed", "final greedy length", "% shorter than GRPO's mean", "switched",
                        "below the line from (rollouts)")


def switch_rows(switches: Mapping) -> list[list]:
    """The rows of :data:`SWITCH_TABLE_HEADERS`, one per seed of :func:`switched_seeds`' ``switches``."""
    return [[f"s{seed}", x["length"], x["percent_shorter"], "yes" if x["switched"] else "no (lagged)",
             "—" if x["onset"] is None else f"{x['onset']:,}"] for seed, x in switches["seeds"].items()]


def example_seeds(switches: Mapping, shipped: Mapping[int, str]) -> dict[str, tuple[int, str] | None]:
    """The SA-GRPO seeds a notebook shows: ``{"switched": (seed, shipped name), "lagged": (seed, name)}``, the
    first shipped seed (``shipped``: ``shipped.shipped_seeds``' {seed: name}) that switched and the first that
    did not by :func:`switched_seeds`' rule (``switches``), None where no shipped seed is of that kind."""
    kinds = {}
    for kind, wanted in (("switched", True), ("lagged", False)):
        kinds[kind] = next(((seed, name) for seed, name in shipped.items()
                            if seed in switches["seeds"] and switches["seeds"][seed]["switched"] == wanted), None)
    return kinds


def _switched_cell(switches: Mapping) -> str:
    """'2 of 3 (s1 by 4,800, s2 by 5,760)': the switched seeds and their onsets."""
    switched = {seed: s for seed, s in switches["seeds"].items() if s["switched"]}
    onsets = ", ".join(f"s{seed}" + (f" by {s['onset']:,}" if s["onset"] else "") for seed, s in switched.items())
    return f"{len(switched)} of {len(switches['seeds'])}" + (f" ({onsets})" if onsets else "")


def _per_seed(values: Sequence[float], fmt: str = ".1f") -> str:
    return ", ".join(format(v, fmt) for v in values)


def robustness_markdown(grids: Mapping[str, tuple[str | Path, Mapping]], dataset: str = IN_DOMAIN) -> str:
    """Markdown: the same GRPO / SA-GRPO comparison in several ``sar compare`` runs (``grids``: ``{name:
    (path, summary)}``, e.g. the grid, a replicate on other seeds, a doubled budget): per run its seeds,
    budget, every seed's final greedy length, the SA-GRPO seeds that switched (:func:`switched_seeds`) and
    claim C1's verdict; then one sentence over all of them."""
    lines = ["| run | seeds | learning rate | rollouts per run | GRPO length, tokens (per seed) | SA-GRPO length "
             "(per seed) | SA-GRPO seeds switched (by rollouts) | C1 |", "|---|---|---|---|---|---|---|---|"]
    switches = {}
    for name, (path, grid) in grids.items():
        switches[name] = switched_seeds(grid, dataset=dataset)
        lengths = {m: grid["methods"][m]["eval"][dataset]["mean_length"]["per_seed"] for m in ("grpo", "sa-grpo")}
        c1 = claim_row(grid, "C1")
        lines.append(f"| {name} (`{path}`) | {', '.join(map(str, grid['methods']['sa-grpo']['seeds']))} | "
                     f"{grid['settings']['learning_rate']:g} | {rollouts_per_run(grid):,} | {_per_seed(lengths['grpo'])} | "
                     f"{_per_seed(lengths['sa-grpo'])} | {_switched_cell(switches[name])} | "
                     f"{verdict_word(c1) if c1 else 'not run'} |")
    total = sum(len(s["seeds"]) for s in switches.values())
    switched = sum(x["switched"] for s in switches.values() for x in s["seeds"].values())
    budgets = [rollouts_per_run(g) for _, g in grids.values()]
    text = (f"Over these {len(grids)} runs {switched} of the {total} SA-GRPO seeds switched to concise answers "
            f"(greedy length at most {100 * SWITCHED_FRACTION:.0f}% of GRPO's mean)")
    if budgets.count(max(budgets)) == 1:   # one run at the largest budget: what it adds
        largest = max(grids, key=lambda name: rollouts_per_run(grids[name][1]))
        big = switches[largest]
        onsets = [x["onset"] for x in big["seeds"].values() if x["switched"] and x["onset"]]
        c1 = claim_row(grids[largest][1], "C1")
        text += (f"; at the largest budget, {big['rollouts']:,} rollouts per run, "
                 f"{sum(x['switched'] for x in big['seeds'].values())} of {len(big['seeds'])} did"
                 + (f", the last by {max(onsets):,} rollouts" if onsets else "")
                 + (f", and C1 {STATUS_VERBS[c1['status']]} there" if c1 else ""))
    lines += ["", text + "."]
    return "\n".join(lines)


def _at_budget(curve: Sequence[Mapping], rollouts: int) -> Mapping | None:
    """The last entry of a budget curve at or before ``rollouts`` (None when there is none past 0)."""
    before = [e for e in curve if 0 < e["rollouts"] <= rollouts]
    return before[-1] if before else None


def preset_markdown(grid: Mapping, path: str | Path, preset: Mapping = SWITCH_PRESET,
                    dataset: str = IN_DOMAIN) -> str:
    """What the :data:`SWITCH_PRESET` (``steps``, ``questions_per_step``, ``learning_rate``) should show, measured
    on ``grid`` (a ``sar compare`` summary of GRPO and SA-GRPO trained past the preset's budget, read from
    ``path``): the share of its SA-GRPO seeds switched by the preset's rollouts (``analysis.shortening_onsets``,
    the rule of :func:`switched_seeds`), each seed's greedy length at that budget, and the time two live runs
    take side by side, from the grid's wall seconds per step (training and evaluations, one core per run).

    The rule's line is 80% of GRPO's mean at each budget; where one GRPO seed's answers run far longer than the
    others', that mean is high, and a seed can count as switched while its answers are still about as long as
    the base model's: the text then names those seeds (length above 80% of the base model's)."""
    s = grid["settings"]
    rollouts = preset["steps"] * preset["questions_per_step"] * s["group_size"]
    switches = switched_seeds(grid, dataset=dataset)
    by_then = {seed: x["onset"] for seed, x in switches["seeds"].items()
               if x["onset"] is not None and x["onset"] <= rollouts}
    per_step = {m: grid["methods"][m]["wall_seconds"]["mean"] / s["steps"] for m in ("grpo", "sa-grpo")}
    minutes = max(per_step.values()) * preset["steps"] / 60
    differs = [f"{key.replace('_', ' ')} {s[key]:g} (preset {preset[key]:g})" for key in ("learning_rate",
               "questions_per_step") if s.get(key) != preset[key]]
    text = (f"With the preset each live run samples {rollouts:,} answers ({preset['steps']} steps x "
            f"{preset['questions_per_step']} questions x {s['group_size']}). In `{path}` "
            f"({rollouts_per_run(grid):,} rollouts per run, seeds {', '.join(map(str, grid['methods']['sa-grpo']['seeds']))}"
            + (f"; its settings differ: {', '.join(differs)}" if differs else
               f", the same learning rate {s['learning_rate']:g} and batch")
            + f"), {len(by_then)} of its {len(switches['seeds'])} SA-GRPO seeds had switched by {rollouts:,} "
            "rollouts by the rule of section 7"
            + (f" (onsets {min(by_then.values()):,} to {max(by_then.values()):,})" if by_then else "") + ".")
    sa_entry = _at_budget(grid.get("budget_curve", {}).get("sa-grpo", []), rollouts)
    grpo_entry = _at_budget(grid.get("budget_curve", {}).get("grpo", []), rollouts)
    if sa_entry and grpo_entry and sa_entry["rollouts"] == grpo_entry["rollouts"]:
        lengths = dict(zip(switches["seeds"], sa_entry["mean_length"]["per_seed"]))
        text += (f" Their greedy lengths at {sa_entry['rollouts']:,} rollouts: "
                 + ", ".join(f"s{seed} {length:.1f}" for seed, length in lengths.items())
                 + f" tokens; GRPO's mean there is {grpo_entry['mean_length']['mean']:.1f}.")
        base = grid["base"][dataset]["mean_length"]
        still = [seed for seed in by_then if lengths[seed] > SWITCHED_FRACTION * base]
        if still:
            text += (f" Of the seeds counted, {', '.join(f's{seed}' for seed in still)} still wrote answers above 80% "
                     f"of the base model's {base:.1f} tokens there: the line sits high because GRPO's longest seed "
                     f"there wrote {max(grpo_entry['mean_length']['per_seed']):.1f} tokens, so "
                     f"{len(by_then) - len(still)} of {len(switches['seeds'])} seeds wrote concise answers by then.")
    return text + (f" Those runs took {per_step['sa-grpo']:.1f} s (SA-GRPO) and {per_step['grpo']:.1f} s (GRPO) a step "
                   f"with their evaluations, one core each, so the two live runs side by side on 2 cores take about "
                   f"{minutes:.0f} minutes.")


def _window_change(values: Sequence[float] | None) -> tuple[float, float] | None:
    return (values[0], values[-1]) if values else None


def accuracy_summary(grid: Mapping | None, pilots: Mapping | None = None, dataset: str = IN_DOMAIN) -> dict | None:
    """What RL did to held-out accuracy, from the regime study's pilots (``docs/regime_pilots.json``:
    ``{"base", "pilots": {name: {"settings", "runs": {run: {"greedy_accuracy", "sampled_accuracy",
    "train_accuracy", ...}}, "switch_onsets"}}}``) when given, else from ``grid``'s GRPO and SA-GRPO.

    Returns ``{"source": "pilots" | "grid", "base_greedy", "base_sampled", "runs": [{"group", "name",
    "settings", "rollouts", "greedy", "sampled", "train", "onset"}]}`` (accuracies in [0, 1]; ``train``: the
    training batch's accuracy (first, last) window; the base's sampled accuracy from ``grid``, None without
    it), or None with neither."""
    base = (grid or {}).get("base", {}).get(dataset, {})
    if pilots:
        runs = []
        for name, pilot in pilots["pilots"].items():
            settings = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in pilot.get("settings", {}).items()) \
                or "the grid's"
            for run, row in pilot["runs"].items():
                if not row.get("greedy_accuracy"):
                    continue
                runs.append({"group": name, "name": run, "settings": settings,
                             "rollouts": row["eval_steps"][-1] * row["rollouts_per_step"],
                             "greedy": row["greedy_accuracy"][-1], "sampled": row.get("sampled_accuracy"),
                             "train": _window_change(row.get("train_accuracy")),
                             "onset": pilot.get("switch_onsets", {}).get(run, "—")})
        return {"source": "pilots", "base_greedy": pilots["base"]["accuracy"],
                "base_sampled": base.get("sampled_accuracy"), "runs": runs}
    if grid is None:
        return None
    runs = []
    for name in ("grpo", "sa-grpo"):
        m = grid["methods"][name]
        e = m["eval"][dataset]
        drift = m.get("training_drift", {}).get("rewards/correctness/mean")
        runs.append({"group": "grid", "name": m["label"], "settings": "the grid's", "rollouts": rollouts_per_run(grid),
                     "greedy": e["accuracy"]["mean"], "sampled": e.get("sampled_accuracy", {}).get("mean"),
                     "train": tuple(drift[k] for k in sorted(drift, key=lambda k: not k.startswith("first")))
                     if drift else None, "onset": "—"})
    return {"source": "grid", "base_greedy": base["accuracy"], "base_sampled": base.get("sampled_accuracy"),
            "runs": runs}


def _range(values: Sequence[float]) -> str:
    low, high = 100 * min(values), 100 * max(values)
    return f"{low:.1f}%" if round(low, 1) == round(high, 1) else f"{low:.1f}-{high:.1f}%"


def below_base_text(summary: Mapping) -> str:
    """'Of the grid's methods (mean over seeds), both end below the base model's 58.5% held-out greedy
    accuracy (final: 46.8-47.3%)': how many runs of :func:`accuracy_summary` end below the base model."""
    runs = summary["runs"]
    below = sum(r["greedy"] < summary["base_greedy"] for r in runs)
    who = ("the runs of the regime study (`docs/regime_pilots.json`)" if summary["source"] == "pilots"
           else "the grid's methods (mean over seeds)")
    count = (("both" if len(runs) == 2 else f"all {len(runs)}") if below == len(runs) else
             f"{below} of the {len(runs)}")
    return (f"Of {who}, {count} end below the base model's {100 * summary['base_greedy']:.1f}% held-out greedy "
            f"accuracy (final: {_range([r['greedy'] for r in runs])})")


def accuracy_sentence(summary: Mapping) -> str:
    """One sentence: how many runs end below the base model's held-out greedy accuracy, where their held-out
    sampled accuracy ends against the base model's, and how the training batch's accuracy moved."""
    runs = summary["runs"]
    text = below_base_text(summary)
    sampled = [r["sampled"] for r in runs if r["sampled"] is not None]
    if sampled:
        text += f"; their held-out sampled accuracy ends at {_range(sampled)}"
        if summary["base_sampled"] is not None:
            above = sum(v > summary["base_sampled"] for v in sampled)
            text += (f", {'above' if above == len(sampled) else f'{above} of {len(sampled)} above'} the base "
                     f"model's {100 * summary['base_sampled']:.1f}%")
    train = [r["train"] for r in runs if r["train"]]
    if train:
        first, last = (sum(t[k] for t in train) / len(train) for k in (0, 1))
        moved = "rises" if last > first else "falls"
        text += f", and the training batch's accuracy {moved} from {first:.2f} to {last:.2f}"
    return text + "."


def accuracy_markdown(summary: Mapping | None) -> str:
    """Markdown: the table of :func:`accuracy_summary` (one row per run: greedy and sampled held-out
    accuracy at its end, the training batch's accuracy, SA-GRPO's switch onset) under the base model's row,
    then :func:`accuracy_sentence`."""
    if summary is None:
        return "Neither the regime study's pilots nor the grid's results are here: nothing to tell about accuracy."
    pct = lambda v: "—" if v is None else f"{100 * v:.1f}"   # noqa: E731
    lines = ["| setting | run | rollouts | held-out greedy % | held-out sampled % | training batch accuracy "
             "(first → last) | switch onset (rollouts) |", "|---|---|---|---|---|---|---|",
             f"| base model | — | 0 | {pct(summary['base_greedy'])} | {pct(summary['base_sampled'])} | — | — |"]
    for r in summary["runs"]:
        train = "—" if not r["train"] else f"{r['train'][0]:.2f} → {r['train'][1]:.2f}"
        onset = "none" if r["onset"] is None else r["onset"] if isinstance(r["onset"], str) else f"{r['onset']:,}"
        setting = r["group"] if r["group"] == "grid" else f"{r['group']} ({r['settings']})"
        lines.append(f"| {setting} | {r['name']} | {r['rollouts']:,} | {pct(r['greedy'])} | {pct(r['sampled'])} | "
                     f"{train} | {onset} |")
    return "\n".join(lines) + "\n\n" + accuracy_sentence(summary)


def accuracy_along_training(grid: Mapping, dataset: str = IN_DOMAIN, methods: Sequence[str] = ("grpo", "sa-grpo")
                            ) -> dict:
    """Held-out greedy accuracy of ``methods`` along ``grid``'s budget curve against the base model's.

    Returns ``{"base", "rows": [(rollouts, {method: (mean, seeds above the base, seeds)})], "above_until",
    "below_from"}``: ``above_until``, the largest budget up to which every trained budget has every
    method's mean above the base (None: not even the first); ``below_from``, the smallest budget from which
    every method's mean stays below it (None: not at the end)."""
    base = grid["base"][dataset]["accuracy"]
    curves = {m: {e["rollouts"]: e["accuracy"] for e in grid["budget_curve"][m] if e["rollouts"] > 0} for m in methods}
    budgets = sorted(set.intersection(*(set(c) for c in curves.values())))
    rows = [(r, {m: (curves[m][r]["mean"], sum(v > base for v in curves[m][r]["per_seed"]),
                     len(curves[m][r]["per_seed"])) for m in methods}) for r in budgets]
    above = [all(mean > base for mean, _, _ in row.values()) for _, row in rows]
    below = [all(mean < base for mean, _, _ in row.values()) for _, row in rows]
    above_until = next((budgets[i - 1] for i, ok in enumerate(above) if not ok), budgets[-1] if budgets else None) \
        if above and above[0] else None
    below_from = next((budgets[i] for i in range(len(budgets)) if all(below[i:])), None)
    return {"base": base, "rows": rows, "above_until": above_until, "below_from": below_from}


def along_training_sentence(along: Mapping, labels: Mapping[str, str]) -> str:
    """'Mean over seeds, GRPO and SA-GRPO are above the base model's 58.5% held-out greedy accuracy up to
    3,840 rollouts per run and below it from 5,760 on': :func:`accuracy_along_training` in words."""
    names = " and ".join(labels[m] for m in along["rows"][0][1]) if along["rows"] else "the methods"
    base = f"the base model's {100 * along['base']:.1f}% held-out greedy accuracy"
    parts = ([f"above {base} up to {along['above_until']:,} rollouts per run"] if along["above_until"] else
             [f"not above {base} at the first evaluation"])
    parts.append(f"below it from {along['below_from']:,} on" if along["below_from"] else "not below it at the end")
    return f"Mean over seeds, {names} are " + " and ".join(parts) + "."


def along_training_markdown(along: Mapping, labels: Mapping[str, str]) -> str:
    """Markdown: :func:`accuracy_along_training`'s table (per budget, each method's mean held-out greedy
    accuracy and its seeds above the base model), then :func:`along_training_sentence`."""
    methods = list(along["rows"][0][1]) if along["rows"] else []
    lines = ["| rollouts | " + " | ".join(f"{labels[m]}: greedy % (seeds above the base)" for m in methods) + " |",
             "|---|" + "---|" * len(methods), "| 0 (base model) | " + " | ".join(
                 f"{100 * along['base']:.1f}" for _ in methods) + " |"]
    for rollouts, row in along["rows"]:
        lines.append(f"| {rollouts:,} | " + " | ".join(f"{100 * mean:.1f} ({up} of {n})" for mean, up, n in row.values())
                     + " |")
    return "\n".join(lines) + "\n\n" + along_training_sentence(along, labels)
