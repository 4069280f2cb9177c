"""``sar compare``: the small-scale reproduction, GRPO vs SA-GRPO plus SAR alone, O1-pruner and ER.

It trains and evaluates the grid (``sar_lib.lab.grid``: the methods, the runs and their cache), tests
the paper's claims on it (``sar_lib.lab.analysis``, ``sar_lib.lab.claims``), and writes the results JSON and three figures:
greedy accuracy against answer length per evaluation set, the training curves, and the budget curve
(greedy in-domain accuracy and length along training). Notebooks draw the same figures with
:func:`accuracy_length_figure`, :func:`training_curves_figure` and :func:`budget_curve_figure`.
``device="cuda"`` trains the grid on one GPU, :data:`DEFAULT_GPU_WORKERS` runs side by side.

Default evaluation sets: the in-domain ``arith-test`` and the OOD synthetic sets ``symbolic-test``
and ``logic-test`` (``data.HELD_OUT_SETS``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt

from sar_lib.lab import plots, training_plots
from sar_lib.lab.analysis import CURVE_KEYS, method_curves, summarise
from sar_lib.lab.claims import claims_markdown, current_claims, measured, verdict_word
from sar_lib.data import HELD_OUT_SETS
from sar_lib.lab.grid import (DEFAULT_METHODS, DEFAULT_SEEDS, METHODS, MULTI_SEED_METHODS, check_eval_sets, grid_runs, model_fingerprint,
                          run_grid, short_run_learning_rate)
from sar_lib.lab.machine import machine_info
from sar_lib.models import default_device

# The default grid (`sar compare`): 5 + 5 seeds of GRPO and SA-GRPO and one of each other method,
# each trained DEFAULT_STEPS = 50 steps x 32 questions x 6 answers = 9,600 rollouts at learning rate
# 2e-4 (grid.SHORT_RUN_LEARNING_RATES): the regime that docs/regime.md's written rule chose, the one
# setting whose held-out greedy accuracy never fell more than 3 points below the base model's. Two runs
# at a time on CPU (one torch thread each), up to DEFAULT_GPU_WORKERS side by side on one GPU. Every 10
# steps (1,920 rollouts) a run answers the in-domain set greedily (analysis.budget_curve); at the end
# it is evaluated greedily and with 4 samples per problem on the held-out sets (the OOD sets at most
# OOD_EVAL_SIZE problems). Its budget: 100 minutes on 2 CPU cores for the whole grid (the measured
# time is in the results JSON and the README). 192 new tokens is the tiny-cpu profile's budget: lower
# would cut verbose answers and shorten them by truncation, not by reward.
DEFAULT_STEPS = 50
DEFAULT_SETTINGS: dict = dict(questions_per_step=32, eval_size=200, eval_samples=4, log_completions=True,
                              save_every=10, eval_every=10, threads=1, progress=False)
OOD_EVAL_SIZE = 100
DEFAULT_CPU_WORKERS = 2   # one per core of the 2-core machine the budget is for
# On one GPU the runs share it, 6 at once.
DEFAULT_GPU_WORKERS = 6
# `sar compare --quick`: the same grid in miniature (2 seeds, so that the std is defined), ~2 min.
QUICK_STEPS = 2
QUICK_SEEDS = (0, 1)
QUICK_SETTINGS: dict = dict(questions_per_step=2, group_size=3, eval_size=8, eval_samples=2, log_completions=True,
                            save_every=1, eval_every=1, threads=1, progress=False)


def default_grid(out_dir: str | Path, *, model: str = "tiny", profile: str = "tiny-cpu", quick: bool = False,
                 methods: Sequence[str] = DEFAULT_METHODS, seeds: Sequence[int] | None = None, steps: int | None = None,
                 eval_sets: Mapping[str, int | None] | None = None, **settings) -> tuple[list, dict]:
    """``(runs, eval_sets)`` of the grid ``sar compare`` trains (``grid.grid_runs``), in ``out_dir``:
    :data:`DEFAULT_SETTINGS` (or :data:`QUICK_SETTINGS`), ``grid.SHORT_RUN_LEARNING_RATES``, the
    ``data.HELD_OUT_SETS`` at the settings' evaluation size (the OOD sets at most :data:`OOD_EVAL_SIZE`);
    ``settings`` override GRPOConfig fields; one whose value is None is left to the profile (as a notebook's
    ``MAX_NEW_TOKENS = None`` means).
    Notebooks 03 and 04 build their runs here too, so that they are the grid's runs (and reuse them)."""
    settings = {name: value for name, value in settings.items() if value is not None}
    values = {**(QUICK_SETTINGS if quick else DEFAULT_SETTINGS), **short_run_learning_rate(profile), **settings}
    size = values.pop("eval_size")
    if eval_sets is None:
        eval_sets = {name: size if name == HELD_OUT_SETS[0] else min(size, OOD_EVAL_SIZE) for name in HELD_OUT_SETS}
    eval_sets = dict(eval_sets)
    check_eval_sets(eval_sets)
    first = next(iter(eval_sets))
    runs = grid_runs(out_dir, methods=methods, seeds=tuple(seeds or (QUICK_SEEDS if quick else DEFAULT_SEEDS)),
                     model=model, profile=profile,
                     steps=steps if steps is not None else (QUICK_STEPS if quick else DEFAULT_STEPS),
                     eval_dataset=first, eval_size=eval_sets[first] or size, **values)
    return runs, eval_sets


# ---------------------------------------------------------------- figures
CURVE_LABELS = {"reward": "reward R (batch mean)", "rewards/correctness/mean": "accuracy (sampled answers)",
                "completions/mean_length": "length of sampled answers (tokens)", "sar/mean": "SAR of sampled answers",
                "style/verbose": "share of verbose sampled answers", "style/concise": "share of concise sampled answers",
                "style/answer_only": "share of answer-only sampled answers",
                "critic/vf_explained_var": "critic's explained variance (PPO)", "critic/vf_loss": "value loss (PPO)"}


def label_colors(methods: Mapping[str, Mapping]) -> dict[str, str]:
    """{label: colour} for the methods of a summary ({name: {"label": ...}}): each method's
    ``grid.Method.color``, the same in every figure."""
    return {m["label"]: METHODS[name].color for name, m in methods.items() if name in METHODS}


def accuracy_length_figure(summary: Mapping, *, datasets: Sequence[str] | None = None,
                           names: Mapping[str, str] | None = None,
                           title: str = "Greedy accuracy vs answer length after training"):
    """Greedy accuracy against mean answer length, one panel per evaluation set of ``summary``
    (:func:`analysis.summarise`'s; ``datasets``: a subset, in order): seeds as points, their mean as
    a big marker, the base model as a star. ``names``: panel titles by data set (default: its name)."""
    methods = summary["methods"]
    datasets = list(datasets or next(iter(methods.values()))["eval"])
    names = {d: (names or {}).get(d, d) for d in datasets}
    panels = {names[d]: {m["label"]: list(zip(m["eval"][d]["mean_length"]["per_seed"],
                                              m["eval"][d]["accuracy"]["per_seed"]))
                         for m in methods.values()} for d in datasets}
    base = summary.get("base")
    reference = {names[d]: (base[d]["mean_length"], base[d]["accuracy"]) for d in datasets if base and d in base}
    return plots.accuracy_vs_length(panels, reference=reference or None, colors=label_colors(methods), title=title)


def select_methods(summary: Mapping, names: Sequence[str]) -> dict:
    """``summary`` with only the methods ``names`` that it holds, in that order (claims and the rest kept)."""
    return {**summary, "methods": {n: summary["methods"][n] for n in names if n in summary["methods"]}}


def training_curves_figure(summary: Mapping, keys: Sequence[str] = CURVE_KEYS, *,
                           title: str = "Training curves (mean over seeds; band: ± 1 std)"):
    """The training curves of ``summary``'s methods, one panel per metric of ``keys`` (mean over seeds)."""
    return training_plots.training_curves(method_curves(summary, keys), keys, ylabels=CURVE_LABELS,
                                          colors=label_colors(summary["methods"]), title=title)


def budget_curve_figure(summary: Mapping, *, title: str = "Greedy answers to the in-domain set along training "
                                                         "(mean over seeds; band: min-max)"):
    """Greedy mean length and accuracy of ``summary``'s methods against the rollouts trained on
    (``summary["budget_curve"]``, :func:`analysis.budget_curve`), in each method's colour."""
    methods = summary["methods"]
    curves = {methods[name]["label"]: entries for name, entries in summary["budget_curve"].items() if name in methods}
    return training_plots.budget_curve(curves, colors=label_colors(methods), title=title)


def regimes_figure(grids: Mapping[str, Mapping], methods: Sequence[str] = ("grpo", "sa-grpo"), *,
                   title: str = "Greedy answers to the in-domain set along training, in two regimes "
                                "(mean over seeds; band: min-max)"):
    """Greedy mean length and accuracy of ``methods`` along training in several grids (``{name: summary}``,
    e.g. one per learning rate) on one budget axis: the first grid's methods in their colours, each later
    grid's in a darker shade. Every curve starts at the base model (0 rollouts)."""
    curves, colors = {}, {}
    for k, (name, summary) in enumerate(grids.items()):
        for method in methods:
            label = f"{summary['methods'][method]['label']}, {name}"
            curves[label] = summary["budget_curve"][method]
            colors[label] = plots.darker(METHODS[method].color, 0.6 ** k)
    return training_plots.budget_curve(curves, colors=colors, title=title)


def plot_summary(summary: Mapping, figures_dir: str | Path, *, prefix: str = "grpo_vs_sar") -> list[Path]:
    """``<prefix>.png`` (:func:`accuracy_length_figure`), ``<prefix>_curves.png``
    (:func:`training_curves_figure`) and ``budget_curve.png`` (:func:`budget_curve_figure`) in
    ``figures_dir``; returns the paths."""
    figures = {prefix: accuracy_length_figure(summary), f"{prefix}_curves": training_curves_figure(summary),
               "budget_curve": budget_curve_figure(summary)}
    paths = []
    for name, fig in figures.items():
        paths.append(plots.save_figure(fig, name, figures_dir))
        plt.close(fig)   # on disk now; kept open, every call would add figures to pyplot's list
    return paths


def default_workers(device: str, n_runs: int) -> int:
    """Runs trained side by side: :data:`DEFAULT_CPU_WORKERS` on CPU (one core each); on CUDA every
    run at once, at most :data:`DEFAULT_GPU_WORKERS`."""
    return min(n_runs, DEFAULT_GPU_WORKERS) if device.startswith("cuda") else DEFAULT_CPU_WORKERS


# ---------------------------------------------------------------- the command
def compare(out_dir: str | Path | None = None, *, model: str = "tiny", profile: str = "tiny-cpu",
            steps: int | None = None, seeds: Sequence[int] | None = None, workers: int | None = None,
            device: str | None = None, quick: bool = False, methods: Sequence[str] = DEFAULT_METHODS,
            eval_sets: Mapping[str, int | None] | None = None,
            json_path: str | Path | None = None, figures_dir: str | Path | None = None, command: str = "",
            progress: bool = True, **settings) -> dict:
    """``sar compare``: run the grid, write the results JSON and the three figures; returns the JSON.

    Defaults: out ``runs/compare``, :data:`DEFAULT_STEPS` steps, seeds ``grid.DEFAULT_SEEDS``,
    :data:`DEFAULT_SETTINGS` and ``grid.SHORT_RUN_LEARNING_RATES``, evaluation sets
    ``data.HELD_OUT_SETS``, JSON ``figures/grpo_vs_sar.json``, figures in ``figures/``.
    ``quick``: the miniature grid (:data:`QUICK_SETTINGS`) in ``runs/compare-quick``, whose JSON and
    figures stay in that folder (so a smoke test never overwrites the real results).
    ``device``: where every run trains and is evaluated ("cpu", "cuda", "cuda:N"; default
    ``models.default_device()``); ``workers``: runs side by side (default :func:`default_workers`).
    ``settings``: other GRPOConfig fields, over the defaults (checked by ``GRPOConfig.validate``).
    """
    out_dir = Path(out_dir or ("runs/compare-quick" if quick else "runs/compare"))
    device = device or default_device()
    # the configs check the device (GRPOConfig.validate) before anything loads
    runs, eval_sets = default_grid(out_dir, model=model, profile=profile, quick=quick, methods=methods, seeds=seeds,
                                   steps=steps, eval_sets=eval_sets, device=device, **settings)
    workers = default_workers(device, len(runs)) if workers is None else workers
    json_path = Path(json_path or (out_dir / "grpo_vs_sar.json" if quick else "figures/grpo_vs_sar.json"))
    figures_dir = Path(figures_dir or (out_dir if quick else "figures"))
    start = time.perf_counter()
    info = {"machine": machine_info(device, command or None)}
    results, base = run_grid(runs, eval_sets, workers=workers, base_model=model, base_dir=out_dir, progress=progress)
    wall = time.perf_counter() - start
    resolved = runs[0].config.resolved()
    shared = {k: v for k, v in dataclasses.asdict(resolved).items()
              if k not in ("algo", "reward", "alpha", "correctness_weight", "seed", "out", "progress")}
    summary = {
        "command": command or f"sar_lib.lab.compare.compare({str(out_dir)!r})",
        "model": model, "model_fingerprint": model_fingerprint(model),
        "settings": {**shared, "seeds": sorted({spec.seed for spec in runs}),
                     "multi_seed_methods": list(MULTI_SEED_METHODS),
                     "eval_sets": eval_sets, "workers": workers, "quick": quick},
        **info,
        "wall_seconds": wall,
        "runs_trained": sum(r["trained"] for r in results),
        "runs_cached": sum(not r["trained"] for r in results),
        # training + evaluation of every run, measured when it was trained (also for cached runs)
        "runs_wall_seconds_total": sum(r.get("wall_seconds", 0.0) for r in results),
        **summarise(runs, results, base),
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    summary["json"] = str(json_path)
    summary["markdown"] = str(json_path.with_suffix(".md"))
    summary["figures"] = [str(p) for p in plot_summary(summary, figures_dir, prefix=json_path.stem)]
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    Path(summary["markdown"]).write_text(results_markdown(summary) + "\n")
    return summary


def results_markdown(summary: Mapping) -> str:
    """The claims table (``claims.claims_markdown``) and one row per method (accuracy / length,
    greedy and sampled, mean ± std over seeds, per evaluation set): the README's tables."""
    methods = summary["methods"]
    datasets = list(next(iter(methods.values()))["eval"])

    def cell(e: Mapping, acc: str, length: str) -> str:
        if acc not in e:
            return "—"
        a, n = e[acc], e[length]
        spread = f" ± {100 * a['std']:.1f}" if len(a["per_seed"]) > 1 else ""
        return f"{100 * a['mean']:.1f}{spread} / {n['mean']:.1f}"

    head = "| method | seeds | " + " | ".join(f"{d} greedy | {d} sampled" for d in datasets) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(datasets))]
    if "base" in summary:
        base = summary["base"]
        lines.append("| base model | — | " + " | ".join(
            f"{100 * base[d]['accuracy']:.1f} / {base[d]['mean_length']:.1f} | "
            + (f"{100 * base[d]['sampled_accuracy']:.1f} / {base[d]['sampled_mean_length']:.1f}"
               if "sampled_accuracy" in base[d] else "—") for d in datasets) + " |")
    for m in methods.values():
        lines.append(f"| {m['label']} | {len(m['seeds'])} | " + " | ".join(
            f"{cell(m['eval'][d], 'accuracy', 'mean_length')} | "
            f"{cell(m['eval'][d], 'sampled_accuracy', 'sampled_mean_length')}" for d in datasets) + " |")
    return "\n".join([claims_markdown(current_claims(summary)), "", "accuracy % / mean length in tokens "
                      "(± the standard deviation of the accuracy over seeds):", "", *lines])


def format_comparison(summary: Mapping) -> str:
    """A text table: accuracy and mean length (mean ± std over seeds; "—" for a single-seed method,
    which has no spread) per method and evaluation set, then the claims with their numbers."""
    lines = []
    methods = summary["methods"]
    datasets = list(next(iter(methods.values()))["eval"])
    header = f"{'method':24}" + "".join(f"{d + ' acc':>20}{d + ' len':>20}" for d in datasets)
    lines += [header, "-" * len(header)]
    if "base" in summary:
        lines.append(f"{'base model':24}" + "".join(
            f"{100 * summary['base'][d]['accuracy']:20.1f}{summary['base'][d]['mean_length']:20.1f}" for d in datasets))
    for m in methods.values():
        cells = []
        for d in datasets:
            acc, length = m["eval"][d]["accuracy"], m["eval"][d]["mean_length"]
            if len(acc["per_seed"]) > 1:
                cells.append(f"{100 * acc['mean']:13.1f} ± {100 * acc['std']:4.1f}"
                             f"{length['mean']:13.1f} ± {length['std']:4.1f}")
            else:   # one seed: no spread was measured, which "± 0.0" would misstate
                cells.append(f"{100 * acc['mean']:13.1f}   {'—':>4}{length['mean']:13.1f}   {'—':>4}")
        lines.append(f"{m['label'] + ' x' + str(len(m['seeds'])):24}" + "".join(cells))
    for row in current_claims(summary) if summary.get("claims") else []:
        lines.append(f"{row['id']} {row['statement']}: {verdict_word(row).upper()} ({measured(row)})")
    lines.append(f"wall time {summary['wall_seconds'] / 60:.1f} min ({summary['runs_trained']} runs trained, "
                 f"{summary['runs_cached']} cached); the runs took {summary['runs_wall_seconds_total'] / 60:.1f} "
                 f"worker-minutes when they were trained")
    return "\n".join(lines)
