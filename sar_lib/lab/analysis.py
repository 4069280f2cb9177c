"""What a comparison grid's runs show: statistics over seeds, reasoning-behaviour counts, the styles
of the answers, training curves, greedy accuracy and length along training (:func:`budget_curve`),
and the whole comparison as JSON-able numbers (:func:`summarise`),
with the paper's claims checked on it (``sar_lib.lab.claims``). Everything here reads the run folders
(``sar_lib.runs``); nothing trains or evaluates.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Mapping, Sequence

from sar_lib import runs as run_files
from sar_lib.lab.claims import check_claims
from sar_lib.evaluate import SAMPLED_KEYS, SWITCH_KEYS
from sar_lib.lab.grid import IN_DOMAIN, METHODS, RunSpec
from sar_lib.synthetic import answer_style

# metrics whose drift over training the summary reports (what the sampled answers did, next to the greedy evaluation)
DRIFT_KEYS = ("completions/mean_length", "sar/mean", "rewards/correctness/mean", "frac_reward_zero_std")
DRIFT_WINDOW = 5
EVAL_KEYS = ("accuracy", "mean_length", "mean_length_correct", "truncation_rate")
# the training curves the summary keeps (mean and std over seeds per step), for figures drawn from the JSON
CURVE_KEYS = ("reward", "rewards/correctness/mean", "completions/mean_length", "sar/mean")
CRITIC_CURVE_KEYS = ("critic/vf_explained_var", "critic/vf_loss")   # PPO methods only (sar_lib.ppo)
STYLES = ("verbose", "concise", "answer_only", "other")   # synthetic.answer_style of an answer
BUDGET_KEYS = ("accuracy", "mean_length")   # the greedy evaluations logged during training, as eval/<key>
SWITCH_CURVE_KEY = "p_stop"   # SAR's switch (sar_lib.switch), in the budget curve where every run measured it


def stats(values: Sequence[float]) -> dict:
    """{"per_seed": values, "mean": mean, "std": sample std (0 for one value)}; None values are dropped
    from the mean and std."""
    present = [float(v) for v in values if v is not None]
    return {"per_seed": list(values),
            "mean": statistics.fmean(present) if present else None,
            "std": statistics.stdev(present) if len(present) > 1 else 0.0 if present else None}


# Phrases of the "advanced reasoning behaviours" the paper says SA-GRPO keeps (docs/paper.md §5, claim 3),
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


def style_shares(texts: Sequence[str]) -> dict[str, float]:
    """Share of ``texts`` in each of :data:`STYLES` (``synthetic.answer_style``); zeros for no texts."""
    styles = [answer_style(t) for t in texts]
    return {s: (styles.count(s) / len(styles) if styles else 0.0) for s in STYLES}


def answer_styles(directories: Sequence[str | Path], dataset: str) -> dict[str, dict[str, float]]:
    """:func:`style_shares` of the stored greedy answers to ``dataset`` (pooled over ``directories``),
    and of the sampled ones when the evaluation sampled."""
    records = [r for directory in directories for r in run_files.read_eval(directory, dataset)[1]]
    out = {"greedy": style_shares([r["response"] for r in records])}
    if records and "sampled_responses" in records[0]:
        out["sampled"] = style_shares([t for r in records for t in r["sampled_responses"]])
    return out


def style_curves(run_dirs: Sequence[str | Path]) -> dict[str, dict]:
    """Per step, the share of the sampled training answers in each style (``completions.jsonl``,
    written with ``log_completions``), mean and std over runs: ``{"style/<s>": {"step", "mean", "std"}}``
    ({} when the runs logged no completions)."""
    per_run = []
    for directory in run_dirs:
        by_step: dict[int, list[str]] = {}
        for row in run_files.read_completions(directory):
            by_step.setdefault(row["step"], []).append(row["completion"])
        per_run.append({step: style_shares(texts) for step, texts in by_step.items()})
    if not all(per_run):
        return {}
    steps = sorted(set.intersection(*(set(r) for r in per_run)))
    out = {}
    for style in STYLES:
        values = [[r[step][style] for r in per_run] for step in steps]
        out[f"style/{style}"] = {"step": steps, "mean": [statistics.fmean(v) for v in values],
                                 "std": [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]}
    return out


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
    """{method label: {key: curve}} for the methods of a summary, from the curves it stores (so the
    run folders need not exist); a key it did not store is left out."""
    return {m["label"]: {k: m["curves"][k] for k in keys if k in m["curves"]} for m in summary["methods"].values()}


def budget_curve(run_dirs: Sequence[str | Path], rollouts_per_step: int,
                 base: Mapping[str, float] | None = None) -> list[dict]:
    """Greedy accuracy and mean answer length of one method's runs along training, one entry per step
    k at which every run evaluated its ``eval_dataset`` (``eval/accuracy`` and ``eval/mean_length`` in
    ``metrics.jsonl``: every ``eval_every`` steps and at the last)::

        {"step": k, "rollouts": k * Q * G, "accuracy": stats, "mean_length": stats[, "p_stop": stats]}

    (``p_stop``: SAR's switch, ``sar_lib.switch``, where every run and the base measured it) with
    ``rollouts_per_step`` = Q * G (questions per step x answers per question) and :func:`stats`
    over the runs (the seeds). ``base``: the base model's evaluation of the same set
    ({"accuracy", "mean_length"}), the first entry, at step 0 (every run starts from it).
    """
    per_run = [{m["step"]: m for m in run_files.read_metrics(d) if m.get("eval/accuracy") is not None}
               for d in run_dirs]
    steps = sorted(set.intersection(*(set(r) for r in per_run))) if per_run else []
    curve = [] if base is None else [{"step": 0, "rollouts": 0,
                                      **{k: stats([base[k]]) for k in BUDGET_KEYS + (SWITCH_CURVE_KEY,) if k in base}}]
    for step in steps:
        keys = BUDGET_KEYS + ((SWITCH_CURVE_KEY,) if all(f"eval/{SWITCH_CURVE_KEY}" in r[step] for r in per_run) else ())
        curve.append({"step": step, "rollouts": step * rollouts_per_step,
                      **{k: stats([r[step][f"eval/{k}"] for r in per_run]) for k in keys}})
    return curve


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


def _rounded(curve: Mapping) -> dict:
    return {"step": list(curve["step"]), "mean": [round(v, 4) for v in curve["mean"]],
            "std": [round(v, 4) for v in curve["std"]]}


def _window_mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarise(runs: Sequence[RunSpec], results: Sequence[dict], base: Mapping[str, dict] | None = None) -> dict:
    """The comparison as JSON-able numbers: per method, per-seed / mean / std of every evaluation
    metric (greedy, and sampled when the runs sampled), behaviour counts, answer styles, the drift of
    the sampled answers over training (:data:`DRIFT_KEYS`, mean over seeds of the first and last
    :data:`DRIFT_WINDOW` steps), the training curves (:data:`CURVE_KEYS`, :data:`CRITIC_CURVE_KEYS` for
    PPO methods, and the styles of the sampled answers), time and memory; the base model's evaluations;
    per method the greedy evaluations of its ``eval_dataset`` along training (``budget_curve``:
    :func:`budget_curve`, from the base model's at step 0); the paper's claims (``claims.check_claims``).

    ``results``: ``grid.run_grid``'s, one per run of ``runs`` (the methods keep the order of ``runs``).
    """
    methods = {}
    for name in dict.fromkeys(spec.method for spec in runs):
        rows = sorted((r for r in results if r["method"] == name), key=lambda r: r["seed"])
        method = METHODS[name]
        entry = {"label": method.label, "algo": method.algo, "reward": method.reward, "alpha": method.alpha,
                 "correctness_weight": method.correctness_weight, "seeds": [r["seed"] for r in rows],
                 "run_dirs": [r["run_dir"] for r in rows], "eval": {}, "behaviours": {}, "styles": {}}
        for dataset in rows[0]["evals"]:
            evals = [r["evals"][dataset] for r in rows]
            keys = EVAL_KEYS + tuple(k for k in SAMPLED_KEYS + SWITCH_KEYS if all(k in e for e in evals))
            entry["eval"][dataset] = {k: stats([e[k] for e in evals]) for k in keys}
            entry["eval"][dataset]["n"] = evals[0]["n"]
            entry["behaviours"][dataset] = behaviour_counts(entry["run_dirs"], dataset)
            entry["styles"][dataset] = answer_styles(entry["run_dirs"], dataset)
        curves = mean_curves(entry["run_dirs"], DRIFT_KEYS)
        keys = CURVE_KEYS + (CRITIC_CURVE_KEYS if method.algo == "ppo" else ())
        entry["curves"] = {k: _rounded(c) for k, c in {**mean_curves(entry["run_dirs"], keys),
                                                       **style_curves(entry["run_dirs"])}.items()}
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
        summary["base"] = {dataset: {k: e[k] for k in ("n", *EVAL_KEYS, *SAMPLED_KEYS, *SWITCH_KEYS) if k in e}
                           for dataset, e in base.items()}
    summary["budget_curve"] = {}
    for name, method in methods.items():
        config = next(spec.config.resolved() for spec in runs if spec.method == name)
        summary["budget_curve"][name] = budget_curve(method["run_dirs"], config.questions_per_step * config.group_size,
                                                     (base or {}).get(config.eval_dataset))
    ood_sets = [d for d in next(iter(methods.values()))["eval"] if d != IN_DOMAIN]
    baselines = {label: [n for n in methods if METHODS[n].reward == reward]
                 for label, reward in (("O1-pruner", "o1"), ("ER", "er"))}
    summary["claims"] = check_claims(summary, in_domain=IN_DOMAIN, ood_sets=ood_sets, baselines=baselines)
    return summary


def one_group(run_dir: str | Path, *, step: int = 1, group: int = 0) -> list[dict]:
    """The answers of one GRPO group as the trainer scored them (``completions.jsonl``, written with
    ``log_completions``): the ``group``-th question of ``step``, one dict per answer with its text,
    length, R_VR, the shaping term r, the reward R = w R_VR + alpha r and the advantage A = R - mean R."""
    rows = [r for r in run_files.read_completions(run_dir) if r["step"] == step]
    if not rows:
        raise ValueError(f"{run_dir} logged no completions at step {step}: train it with log_completions=True")
    ids = list(dict.fromkeys(r["id"] for r in rows))
    if not 0 <= group < len(ids):
        raise ValueError(f"step {step} has {len(ids)} groups; pick group 0..{len(ids) - 1}")
    return [r for r in rows if r["id"] == ids[group]]


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
