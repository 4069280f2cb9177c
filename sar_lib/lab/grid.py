"""A grid of GRPO (and PPO) runs: the methods compared, one run per (method, seed), cached and run in workers.

A grid is a list of :class:`RunSpec` (a method, a seed, a full :class:`~sar_lib.grpo_config.GRPOConfig`);
every run trains with ``grpo.train`` and is then evaluated greedily on each evaluation set.
:func:`run_grid` runs them in worker processes (one torch thread each), shows one progress bar
over all training steps, and caches everything in the run folders (``sar_lib.runs``):

- a run whose evaluation of its ``eval_dataset`` is at the requested step is not trained again; a
  run stopped part-way resumes from its last checkpoint (``save_every``); asking for more steps
  continues a run;
- a run folder trained with other settings or from other model weights (:func:`model_fingerprint`,
  kept in the folder's :data:`MARKER`) is stale: it is removed and trained again;
- an evaluation is reused when it holds the same data set, size, step and answer budget.

The base model (no training) is evaluated the same way into ``<out>/base``. ``sar compare`` and
notebooks 03 and 04 use this runner, so their runs are shared and never trained twice.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import hashlib
import json
import multiprocessing
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from tqdm.auto import tqdm

from sar_lib import rewards as R
from sar_lib import runs as run_files
from sar_lib.grpo_config import GRPOConfig, training_differences
from sar_lib.lab.machine import peak_memory_mb


# ---------------------------------------------------------------- methods
@dataclass(frozen=True)
class Method:
    """One training reward: ``R = correctness_weight * R_VR + alpha * r`` with ``r`` = ``reward``,
    trained with ``algo`` (GRPO, or PPO with a critic: ``sar_lib.ppo``)."""

    name: str                 # key in METHODS and in the results JSON
    label: str                # for figures and tables
    reward: str               # rewards.REWARD_NAMES
    alpha: float
    color: str                # the method's colour in every figure and notebook
    correctness_weight: float = 1.0
    algo: str = "grpo"


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("grpo", "GRPO", "none", 0.0, "#2b8cbe"),
    Method("sa-grpo", f"SA-GRPO (α={R.DEFAULT_ALPHAS['sar']:g})", "sar", R.DEFAULT_ALPHAS["sar"], "#e6550d"),
    # the paper's "R_SA alone" ablation: no correctness term; alpha 1 so that R = R_SA
    Method("sar-only", "R_SA alone", "sar", 1.0, "#fdae6b", correctness_weight=0.0),
    # the paper's closest ablation: R_VR + alpha * R_EM, R_EM = -log ppl(a|q), SAR's alpha
    Method("em", f"R_VR + α·R_EM (α={R.DEFAULT_ALPHAS['em']:g})", "em", R.DEFAULT_ALPHAS["em"], "#8c6d31"),
    # two alphas from the paper's sweep {0.01, 0.03, 0.05, 0.1} per length penalty: a Pareto curve each
    Method("o1-0.03", "O1-pruner (α=0.03)", "o1", 0.03, "#a1d99b"),
    Method("o1-0.1", "O1-pruner (α=0.1)", "o1", 0.1, "#31a354"),
    Method("er-0.03", "ER (α=0.03)", "er", 0.03, "#bcbddc"),
    Method("er-0.1", "ER (α=0.1)", "er", 0.1, "#756bb1"),
    # a control: SAR's own values dealt out at random within each group (same scale, no information)
    Method("shuffled-sar", f"shuffled SAR (α={R.DEFAULT_ALPHAS['shuffled_sar']:g})", "shuffled_sar",
           R.DEFAULT_ALPHAS["shuffled_sar"], "#969696"),
    # the paper's second algorithm (opt-in: `--methods ... ppo sa-ppo`): one answer per question
    Method("ppo", "PPO", "none", 0.0, "#41ae76", algo="ppo"),
    Method("sa-ppo", f"SA-PPO (α={R.DEFAULT_ALPHAS['sar']:g})", "sar", R.DEFAULT_ALPHAS["sar"], "#dd3497", algo="ppo"),
)}
DEFAULT_METHODS = tuple(name for name, m in METHODS.items() if m.algo == "grpo")   # what `sar compare` runs
# the claims' pairs: every seed; the others: the first
MULTI_SEED_METHODS = ("grpo", "sa-grpo", "ppo", "sa-ppo")
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
IN_DOMAIN = "arith-test"
# Learning rate of short runs (tens of steps), per profile (others: the profile's 1e-4, fit for long runs).
# docs/regime.md's study chose 2e-4 with 32 questions per step: at the earlier 1e-3, every method's held-out
# greedy accuracy fell 10-14 points below the base model's within 3,000 rollouts (SAR's switch came early,
# by 4,800 rollouts on most seeds); at 2e-4 it stays within 3 points of the base along the whole run.
SHORT_RUN_LEARNING_RATES = {"tiny-cpu": 2e-4}
MARKER = "compare_run.json"   # in a run folder: the method, the model's fingerprint, time and memory


def get_method(name: str) -> Method:
    """``METHODS[name]``; ValueError listing the names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose among {', '.join(METHODS)}") from None


def short_run_learning_rate(profile: str) -> dict:
    """``{"learning_rate": ...}`` of :data:`SHORT_RUN_LEARNING_RATES` for ``profile`` ({} for others)."""
    return {"learning_rate": SHORT_RUN_LEARNING_RATES[profile]} if profile in SHORT_RUN_LEARNING_RATES else {}


# ---------------------------------------------------------------- runs
@dataclass(frozen=True)
class RunSpec:
    """One run of a grid: ``method`` trained with ``seed`` as ``config`` says (``config.out``: its folder)."""

    method: str
    seed: int
    config: GRPOConfig

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out)


def method_config(method: str | Method, seed: int, out: str | Path, **settings) -> GRPOConfig:
    """The GRPOConfig of ``method`` with ``seed`` in folder ``out``; ``settings``: other GRPOConfig fields.

    A PPO method answers each question once and takes as many questions per step as the settings'
    GRPO runs take answers (``questions_per_step * group_size``): the same rollouts per step."""
    method = get_method(method) if isinstance(method, str) else method
    if method.algo == "ppo":
        grpo = GRPOConfig.for_profile(**settings).resolved()
        settings = {**settings, "group_size": 1, "questions_per_step": grpo.questions_per_step * grpo.group_size}
    return GRPOConfig.for_profile(algo=method.algo, reward=method.reward, alpha=method.alpha,
                                  correctness_weight=method.correctness_weight, seed=seed, out=str(out), **settings)


def grid_runs(out_dir: str | Path, *, methods: Sequence[str] = DEFAULT_METHODS, seeds: Sequence[int] = DEFAULT_SEEDS,
              multi_seed: Sequence[str] = MULTI_SEED_METHODS, **settings) -> list[RunSpec]:
    """The runs of a grid, each in ``out_dir/<method>-s<seed>``, validated (nothing is loaded).

    Methods in ``multi_seed`` run with every seed, the others with ``seeds[0]`` only. ``settings``
    are GRPOConfig fields shared by all runs (model, profile, steps, questions_per_step, ...); the
    reward fields come from the method.
    """
    if not seeds:
        raise ValueError("give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    bad = [k for k in settings if k in ("algo", "reward", "alpha", "correctness_weight", "seed", "out")]
    if bad:
        raise ValueError(f"{bad} are set per run by the method and seed; do not pass them as grid settings")
    runs = []
    for name in methods:
        method = get_method(name)
        for seed in (seeds if name in multi_seed else seeds[:1]):
            config = method_config(method, seed, Path(out_dir) / f"{name}-s{seed}", **settings)
            config.resolved()   # every field checked before anything trains
            runs.append(RunSpec(name, seed, config))
    return runs


def check_eval_sets(eval_sets: Mapping[str, int | None]) -> None:
    """ValueError for an empty mapping or a size < 1 (None: the whole set)."""
    if not eval_sets:
        raise ValueError("give at least one evaluation set")
    bad = {name: size for name, size in eval_sets.items() if size is not None and size < 1}
    if bad:
        raise ValueError(f"evaluation sizes must be >= 1 (or None for the whole set), got {bad}")


# ---------------------------------------------------------------- caching
def model_fingerprint(name_or_path: str) -> str:
    """A short hash of a model's weights and config (``models.resolve_model`` locates them)."""
    from sar_lib.models import resolve_model

    directory = resolve_model(name_or_path)
    digest = hashlib.sha256()
    files = sorted(p for p in directory.iterdir()
                   if p.name == "config.json" or p.suffix in (".safetensors", ".bin"))
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def cached_evaluations(directory: str | Path, load: Callable[[], tuple], eval_sets: Mapping[str, int | None], *,
                       key: Mapping, max_new_tokens: int, batch_size: int, samples: int = 0) -> dict[str, dict]:
    """Evaluations of one model on ``eval_sets`` ({data set: size, None = all}), cached: greedy, plus
    ``samples`` answers per problem at temperature 1 (``evaluate.evaluate``).

    An evaluation stored in ``directory`` (``runs.write_eval``) is reused when it holds the same data
    set, size, answer budget, samples and ``key`` (e.g. the step); otherwise the model (``load()`` ->
    ``(model, tokenizer)``, called at most once) answers ``data.load_problems(set, limit=size,
    seed=0)``. Returns {data set: summary (``evaluate.SUMMARY_KEYS`` (+ ``SAMPLED_KEYS``) + key)}.
    """
    from sar_lib.data import load_problems
    from sar_lib.evaluate import evaluate

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    results, model = {}, None
    for dataset, size in eval_sets.items():
        want = {"size": size, "max_new_tokens": max_new_tokens, "samples": samples, **key}
        results[dataset] = run_files.matching_eval(directory, dataset=dataset, **want)
        if results[dataset] is None:
            problems = load_problems(dataset, limit=size, seed=0)
            if model is None:
                model = load()
            report = evaluate(model[0], model[1], problems, max_new_tokens=max_new_tokens, batch_size=batch_size,
                              samples=samples, progress=False)
            results[dataset] = run_files.write_eval(directory, report, dataset=dataset, **want)
    return results


def stale_reason(run_dir: str | Path, config: GRPOConfig, fingerprint: str) -> str | None:
    """Why the folder cannot continue as the run ``config`` asks for (None: it can, or it is empty).

    ValueError for a folder holding a run that this module did not start: it is never removed.
    """
    run_dir = Path(run_dir)
    if not run_files.has_config(run_dir):
        return None
    marker = run_dir / MARKER
    if not marker.is_file():
        raise ValueError(f"{run_dir} holds a run that sar_lib.lab.grid did not start (no {MARKER}); "
                         "move it away or choose another out folder")
    saved_fingerprint = json.loads(marker.read_text()).get("model_fingerprint")
    if saved_fingerprint != fingerprint:
        return f"trained from other weights of {config.model!r} ({saved_fingerprint} -> {fingerprint})"
    # the weights are identified by their fingerprint: "tiny" and a folder with the same files are one model;
    # the saved device is where the run trained, not where it continues (it need not exist here)
    saved = dataclasses.replace(run_files.read_config(run_dir), model=config.model, device=config.device).resolved()
    differences = training_differences(saved, config)
    if differences:
        return "other training settings: " + "; ".join(differences)
    done = run_files.checkpoint_step(run_dir)
    if done > config.steps:
        return f"trained for {done} steps, more than the {config.steps} asked for"
    return None


def _clear_if_stale(run_dir: Path, config: GRPOConfig, fingerprint: str) -> None:
    reason = stale_reason(run_dir, config, fingerprint)
    if reason is not None:
        tqdm.write(f"{run_dir}: stale ({reason}); training it again")
        shutil.rmtree(run_dir)


# ---------------------------------------------------------------- running one run
def ensure_run(spec: RunSpec, eval_sets: Mapping[str, int | None], *, progress: bool = False) -> dict:
    """Train ``spec`` unless done (resuming a stopped run), then evaluate it on ``eval_sets``.

    Returns {"method", "seed", "run_dir", "trained" (whether this call trained), "steps",
    "evals": {set: summary}, "train_seconds" (sum of ``time/step``), "wall_seconds" (training +
    evaluation of the call that trained it), and the peak memory of the process that trained it}.
    """
    import torch

    from sar_lib.grpo import load_run, train

    check_eval_sets(eval_sets)
    config = dataclasses.replace(spec.config, progress=progress).resolved()
    run_dir = spec.run_dir
    fingerprint = model_fingerprint(config.model)
    _clear_if_stale(run_dir, config, fingerprint)
    start = time.perf_counter()
    done = run_files.checkpoint_step(run_dir)
    # train() ends with this evaluation: its presence at the last step means the run finished
    final = run_files.matching_eval(run_dir, dataset=config.eval_dataset, size=config.eval_size,
                                    max_new_tokens=config.max_new_tokens, step=config.steps)
    finished = done == config.steps and final is not None
    marker = run_dir / MARKER
    if not finished:
        run_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"method": spec.method, "seed": spec.seed, "model_fingerprint": fingerprint},
                                     indent=2) + "\n")
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        if done > 0:   # resume under the saved model name (same weights, see stale_reason)
            train(dataclasses.replace(config, model=run_files.read_config(run_dir).model), resume=True)
        else:
            train(config)
    if config.threads is not None:
        torch.set_num_threads(config.threads)   # the evaluations below, also when training was skipped
    evals = cached_evaluations(run_dir, lambda: load_run(run_dir, device=config.device), eval_sets,
                               key={"step": config.steps}, max_new_tokens=config.max_new_tokens,
                               batch_size=config.eval_batch_size, samples=config.eval_samples)
    info = json.loads(marker.read_text())
    if not finished:
        info.update({"wall_seconds": time.perf_counter() - start, **peak_memory_mb()})
        marker.write_text(json.dumps(info, indent=2) + "\n")
    metrics = run_files.read_metrics(run_dir)
    return {"method": spec.method, "seed": spec.seed, "run_dir": str(run_dir), "trained": not finished,
            "steps": config.steps, "evals": evals,
            "train_seconds": sum(m["time/step"] for m in metrics),
            **{k: info[k] for k in ("wall_seconds", "peak_rss_mb", "cuda_peak_mb") if k in info}}


def ensure_base(model: str, out_dir: str | Path, eval_sets: Mapping[str, int | None], *, profile: str = "tiny-cpu",
                max_new_tokens: int | None = None, batch_size: int | None = None, threads: int | None = 1,
                samples: int = 0, device: str | None = None) -> dict:
    """The base model (no training) on ``eval_sets``, cached in ``out_dir/base``: {set: summary}
    (``device``: where it answers, default ``models.default_device()``).

    Its evaluations are keyed by the weights' fingerprint too: the folder has no marker to go stale by."""
    import torch

    from sar_lib.models import get_profile, load_model

    check_eval_sets(eval_sets)
    prof = get_profile(profile)
    if threads is not None:
        torch.set_num_threads(threads)
    key = {"step": 0, "model_fingerprint": model_fingerprint(model)}
    return cached_evaluations(Path(out_dir) / "base", lambda: load_model(model, device=device), eval_sets, key=key,
                              max_new_tokens=max_new_tokens or prof.max_new_tokens,
                              batch_size=batch_size or prof.eval_batch_size, samples=samples)


# ---------------------------------------------------------------- running a grid
def run_grid(runs: Sequence[RunSpec], eval_sets: Mapping[str, int | None], *, workers: int = 2,
             base_model: str | None = None, base_dir: str | Path | None = None, progress: bool = True,
             poll_seconds: float = 2.0) -> tuple[list[dict], dict | None]:
    """Train and evaluate every run (:func:`ensure_run`), ``workers`` at a time; returns
    ``(results in the order of runs, base model evaluations or None)``.

    ``workers > 1``: separate processes (``spawn``), each with its own torch and the runs' thread
    count, training on its run's ``config.device`` (on one GPU the runs share it); ``workers == 1``:
    in this process. ``base_model``: also evaluate that model untrained (:func:`ensure_base`, into
    ``base_dir``, on the first run's device). Progress: one bar over the training steps of all runs
    (read from their ``metrics.jsonl``) and one line per finished run.
    """
    eval_sets = dict(eval_sets)
    check_eval_sets(eval_sets)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not runs:
        raise ValueError("no runs to do")
    dirs = [spec.run_dir.resolve() for spec in runs]
    if len(set(dirs)) != len(dirs):
        raise ValueError("two runs of the grid share a folder; give each (method, seed) its own out")
    if base_model is not None and base_dir is None:
        raise ValueError("base_model needs base_dir, the folder for its cached evaluations")
    if workers > 1:
        pool = futures.ProcessPoolExecutor(max_workers=min(workers, len(runs) + (base_model is not None)),
                                           mp_context=multiprocessing.get_context("spawn"))
    else:
        pool = futures.ThreadPoolExecutor(max_workers=1)
    # stale folders go before the bar starts, so that it never counts their old steps
    for spec in runs:
        config = spec.config.resolved()
        _clear_if_stale(spec.run_dir, config, model_fingerprint(config.model))
    total = sum(spec.config.resolved().steps for spec in runs)
    bar = tqdm(total=total, desc="grid", unit="step", disable=not progress, file=sys.stderr)
    with pool:
        jobs = {pool.submit(ensure_run, spec, eval_sets): k for k, spec in enumerate(runs)}
        base_job = None
        if base_model is not None:
            first = runs[0].config.resolved()
            base_job = pool.submit(ensure_base, base_model, base_dir, eval_sets, profile=first.profile,
                                   max_new_tokens=first.max_new_tokens, batch_size=first.eval_batch_size,
                                   threads=first.threads, samples=first.eval_samples, device=first.device)
        results: list[dict | None] = [None] * len(runs)
        pending = set(jobs) | ({base_job} if base_job else set())
        try:
            while pending:
                finished, pending = futures.wait(pending, timeout=poll_seconds, return_when=futures.FIRST_COMPLETED)
                for job in finished:
                    result = job.result()   # re-raises a worker's error here
                    if job is not base_job:
                        results[jobs[job]] = result
                        if progress:
                            tqdm.write(_result_line(result))
                done = sum(min(spec.config.resolved().steps, run_files.steps_logged(spec.run_dir)) for spec in runs)
                bar.update(done - bar.n)
                bar.set_postfix_str(f"runs {sum(r is not None for r in results)}/{len(runs)}")
        except BaseException:
            for job in pending:
                job.cancel()
            raise
        finally:
            bar.close()
    return results, (base_job.result() if base_job else None)


def _result_line(result: dict) -> str:
    parts = [f"{name} acc {e['accuracy']:.3f} len {e['mean_length']:.1f}" for name, e in result["evals"].items()]
    how = "trained" if result["trained"] else "cached"
    return f"{result['method']} s{result['seed']} ({how}): " + "; ".join(parts)
