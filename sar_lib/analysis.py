"""What a comparison grid's runs show: statistics over seeds, the paper's claim, reasoning-behaviour
counts, training curves, and the whole comparison as JSON-able numbers (:func:`summarise`).

The paper's central claim (SAR.md §5): SA-GRPO (``R = R_VR + 0.2 R_SA``) gives answers ~20-45%
shorter than GRPO (``R = R_VR``) at equal or better accuracy. The test used here:

    claim holds  <=>  L_SA <= 0.8 * L_GRPO   and   100 * (acc_GRPO - acc_SA) <= 1

with L the mean greedy answer length (tokens) and acc the greedy accuracy, each the mean over seeds,
on the held-out in-domain set (also computed on every other evaluation set). Everything here reads
the run folders (``sar_lib.runs``); nothing trains or evaluates.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Mapping, Sequence

from sar_lib import runs as run_files
from sar_lib.grid import IN_DOMAIN, METHODS, RunSpec

# metrics whose drift over training the summary reports (what the sampled answers did, next to the greedy evaluation)
DRIFT_KEYS = ("length/mean", "sar/mean", "accuracy/batch", "groups/no_signal")
DRIFT_WINDOW = 5
EVAL_KEYS = ("accuracy", "mean_length", "mean_length_correct", "truncation_rate")


def stats(values: Sequence[float]) -> dict:
    """{"per_seed": values, "mean": mean, "std": sample std (0 for one value)}; None values are dropped
    from the mean and std."""
    present = [float(v) for v in values if v is not None]
    return {"per_seed": list(values),
            "mean": statistics.fmean(present) if present else None,
            "std": statistics.stdev(present) if len(present) > 1 else 0.0 if present else None}


def paper_claim(grpo: Mapping[str, float], sa_grpo: Mapping[str, float], *, min_length_reduction: float = 0.20,
                max_accuracy_drop_points: float = 1.0) -> dict:
    """The paper's claim on one evaluation set, from mean ``accuracy`` (in [0, 1]) and ``mean_length``.

        length_reduction      = 1 - L_SA / L_GRPO
        accuracy_drop_points  = 100 * (acc_GRPO - acc_SA)
        holds = length_reduction >= min_length_reduction and accuracy_drop_points <= max_accuracy_drop_points

    Both comparisons allow 1e-9 of rounding (1 - 80/100 is 0.19999999999999996 in floating point).
    A GRPO mean length of 0 leaves the reduction undefined: ``length_reduction`` and ``holds`` are None.
    """
    tolerance = 1e-9
    reduction = 1.0 - sa_grpo["mean_length"] / grpo["mean_length"] if grpo["mean_length"] > 0 else None
    drop = 100.0 * (grpo["accuracy"] - sa_grpo["accuracy"])
    shorter = None if reduction is None else reduction >= min_length_reduction - tolerance
    accurate = drop <= max_accuracy_drop_points + tolerance
    return {"grpo": {"accuracy": grpo["accuracy"], "mean_length": grpo["mean_length"]},
            "sa_grpo": {"accuracy": sa_grpo["accuracy"], "mean_length": sa_grpo["mean_length"]},
            "length_reduction": reduction, "accuracy_drop_points": drop,
            "min_length_reduction": min_length_reduction, "max_accuracy_drop_points": max_accuracy_drop_points,
            "shorter_enough": shorter, "accurate_enough": accurate,
            "holds": None if shorter is None else shorter and accurate}


# Phrases of the "advanced reasoning behaviours" the paper says SA-GRPO keeps (SAR.md §5, claim 3),
# as regular expressions (case-insensitive, word boundaries). Restatement is the behaviour SAR is
# suspected to reward; counting it shows whether the policy learns to copy the question.
BEHAVIOUR_PATTERNS: dict[str, tuple[str, ...]] = {
    "verification": (r"\bcheck", r"\bverif", r"\bthat is right\b", r"\bcorrect\."),
    "backtracking": (r"\bwait\b", r"\blet me re(?:compute|do|consider|think|calculate|check|evaluate)",
                     r"\bactually\b", r"\bi made a mistake\b"),
    "enumeration": (r"\bfirst\b", r"\bsecond\b", r"\bthird\b", r"\bthen\b", r"\bnext\b", r"\bfinally\b",
                    r"\bstep \d"),
    "restatement": (r"\bthe problem says\b", r"\bwe are told\b", r"\brestate", r"\bthe question asks\b",
                    r"\bwe need to find out\b"),
}


def count_behaviours(texts: Sequence[str], patterns: Mapping[str, Sequence[str]] = BEHAVIOUR_PATTERNS) -> dict:
    """Reasoning-behaviour phrases in answers: for each behaviour b with patterns P_b,

        count_i(b) = sum_{p in P_b} (matches of p in text_i, case-insensitive)
        per_answer = mean_i count_i(b);   share = mean_i [count_i(b) > 0]

    Returns {behaviour: {"per_answer", "share"}} (zeros for no texts).
    """
    compiled = {b: [re.compile(p, re.IGNORECASE) for p in ps] for b, ps in patterns.items()}
    out = {}
    for behaviour, regexes in compiled.items():
        counts = [sum(len(r.findall(text)) for r in regexes) for text in texts]
        out[behaviour] = {"per_answer": statistics.fmean(counts) if counts else 0.0,
                          "share": statistics.fmean(c > 0 for c in counts) if counts else 0.0}
    return out


def behaviour_counts(directories: Sequence[str | Path], dataset: str) -> dict:
    """:func:`count_behaviours` over the stored answers to ``dataset`` of every folder (the seeds of a
    method, or one model), pooled."""
    return count_behaviours([record["response"] for directory in directories
                             for record in run_files.read_eval(directory, dataset)[1]])


def mean_curves(run_dirs: Sequence[str | Path], keys: Sequence[str]) -> dict[str, dict]:
    """Per-step mean and std over runs of metrics ``keys``: {key: {"step": [...], "mean": [...], "std": [...]}}.

    Steps where a run lacks the key (or logs None) average over the runs that have it.
    """
    runs = [run_files.read_metrics(d) for d in run_dirs]
    curves = {}
    for key in keys:
        by_step: dict[int, list[float]] = {}
        for metrics in runs:
            for m in metrics:
                if m.get(key) is not None:
                    by_step.setdefault(m["step"], []).append(float(m[key]))
        steps = sorted(by_step)
        curves[key] = {"step": steps, "mean": [statistics.fmean(by_step[s]) for s in steps],
                       "std": [statistics.stdev(by_step[s]) if len(by_step[s]) > 1 else 0.0 for s in steps]}
    return curves


def method_curves(summary: Mapping, keys: Sequence[str]) -> dict[str, dict]:
    """{method label: :func:`mean_curves` over the method's seeds} for the methods of a summary."""
    return {m["label"]: mean_curves(m["run_dirs"], keys) for m in summary["methods"].values()}


def _window_mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarise(runs: Sequence[RunSpec], results: Sequence[dict], base: Mapping[str, dict] | None = None) -> dict:
    """The comparison as JSON-able numbers: per method, per-seed / mean / std of every evaluation
    metric, behaviour counts, the drift of the sampled answers over training (:data:`DRIFT_KEYS`,
    mean over seeds of the first and last :data:`DRIFT_WINDOW` steps), time and memory; the base
    model's evaluations; :func:`paper_claim` per evaluation set (when both GRPO and SA-GRPO ran).

    ``results``: ``grid.run_grid``'s, one per run of ``runs`` (the methods keep the order of ``runs``).
    """
    methods = {}
    for name in dict.fromkeys(spec.method for spec in runs):
        rows = sorted((r for r in results if r["method"] == name), key=lambda r: r["seed"])
        method = METHODS[name]
        entry = {"label": method.label, "reward": method.reward, "alpha": method.alpha,
                 "correctness_weight": method.correctness_weight, "seeds": [r["seed"] for r in rows],
                 "run_dirs": [r["run_dir"] for r in rows], "eval": {}, "behaviours": {}}
        for dataset in rows[0]["evals"]:
            evals = [r["evals"][dataset] for r in rows]
            entry["eval"][dataset] = {k: stats([e[k] for e in evals]) for k in EVAL_KEYS}
            entry["eval"][dataset]["n"] = evals[0]["n"]
            entry["behaviours"][dataset] = behaviour_counts(entry["run_dirs"], dataset)
        curves = mean_curves(entry["run_dirs"], DRIFT_KEYS)
        entry["training_drift"] = {key: {f"first_{DRIFT_WINDOW}_steps": _window_mean(c["mean"][:DRIFT_WINDOW]),
                                         f"last_{DRIFT_WINDOW}_steps": _window_mean(c["mean"][-DRIFT_WINDOW:])}
                                   for key, c in curves.items()}
        entry["train_seconds"] = stats([r["train_seconds"] for r in rows])
        entry["seconds_per_step"] = stats([r["train_seconds"] / r["steps"] for r in rows])
        if all("wall_seconds" in r for r in rows):
            entry["wall_seconds"] = stats([r["wall_seconds"] for r in rows])
        if all("peak_rss_mb" in r for r in rows):
            entry["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rows)
        methods[name] = entry
    summary = {"methods": methods}
    if base is not None:
        summary["base"] = {dataset: {k: e[k] for k in ("n", *EVAL_KEYS)} for dataset, e in base.items()}
    if "grpo" in methods and "sa-grpo" in methods:
        summary["claim"] = {
            "statement": "SA-GRPO's mean answer length is at least 20% below GRPO's at accuracy no more than "
                         "1 point lower (means over seeds, greedy evaluation)",
            "in_domain": IN_DOMAIN,
            "per_set": {dataset: paper_claim(
                {k: methods["grpo"]["eval"][dataset][k]["mean"] for k in ("accuracy", "mean_length")},
                {k: methods["sa-grpo"]["eval"][dataset][k]["mean"] for k in ("accuracy", "mean_length")})
                for dataset in methods["grpo"]["eval"] if dataset in methods["sa-grpo"]["eval"]},
        }
        per_set = summary["claim"]["per_set"]
        summary["claim"]["holds_in_domain"] = per_set[IN_DOMAIN]["holds"] if IN_DOMAIN in per_set else None
    return summary


def step_times(run_dir: str | Path) -> dict[str, float]:
    """Mean seconds per step of a run's ``time/*`` metrics (generate, score, update, step, sar, eval),
    without the ``time/`` prefix; ``time/eval`` is averaged over the steps that evaluated."""
    metrics = run_files.read_metrics(run_dir)
    keys = dict.fromkeys(k for m in metrics for k in m if k.startswith("time/"))
    return {k[len("time/"):]: statistics.fmean(m[k] for m in metrics if m.get(k) is not None) for k in keys}


def example_answers(directories: Mapping[str, str | Path], dataset: str, n: int, *,
                    differing: bool = True) -> list[dict]:
    """``n`` problems of ``dataset`` with every model's stored answer (``runs.read_eval``), for
    before/after tables: ``[{"id", "question", "gold", "answers": {label: record}}]``.

    ``directories``: {label: folder with an evaluation of ``dataset``} (a run, or ``<out>/base``).
    With ``differing``, problems whose answers are not all the same come first (in data set order).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    records = {label: run_files.read_eval(directory, dataset)[1] for label, directory in directories.items()}
    lengths = {len(r) for r in records.values()}
    if len(lengths) != 1:
        raise ValueError(f"the cached evaluations of {dataset} differ in size ({lengths}); evaluate them alike")
    rows = []
    for items in zip(*records.values()):
        rows.append({"id": items[0]["id"], "question": items[0]["question"], "gold": items[0]["gold"],
                     "answers": dict(zip(records, items))})
    if differing:
        rows.sort(key=lambda row: len({a["response"] for a in row["answers"].values()}) == 1)  # stable
    return rows[:n]
