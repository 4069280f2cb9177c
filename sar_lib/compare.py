"""The small-scale reproduction: GRPO vs SA-GRPO, plus SAR alone, O1-pruner and ER (``sar compare``).

The paper's central claim (SAR.md §5): SA-GRPO (``R = R_VR + 0.2 R_SA``) gives answers ~20-45%
shorter than GRPO (``R = R_VR``) at equal or better accuracy. The test used here:

    claim holds  <=>  L_SA <= 0.8 * L_GRPO   and   100 * (acc_GRPO - acc_SA) <= 1

with L the mean greedy answer length (tokens) and acc the greedy accuracy, each the mean over seeds,
on the held-out in-domain set (also computed on every other evaluation set).

A grid is a list of :class:`RunSpec` (a method, a seed, a full :class:`~sar_lib.grpo.GRPOConfig`);
every run trains with ``grpo.train`` and is then evaluated greedily on each evaluation set (the
in-domain set ``arith-test`` and the OOD synthetic sets ``symbolic-test`` and ``logic-test`` by
default). :func:`run_grid` runs them in worker processes (one torch thread each), shows one
progress bar over all training steps, and caches everything in the run folders:

- a run whose ``eval.json`` is at the requested step is not trained again; a run stopped part-way
  resumes from its last checkpoint (``save_every``); asking for more steps continues a run;
- a run folder trained with other settings or from other model weights (``model_fingerprint``)
  is stale: it is removed and trained again;
- each evaluation is cached in ``eval_<set>.json`` (+ ``eval_<set>_records.jsonl``, the answers),
  keyed by data set, size, step, answer budget and model weights.

The base model (no training) is evaluated the same way into ``<out>/base``. Notebooks 03 and 04
use the same runner, so their runs are shared and never trained twice.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from tqdm.auto import tqdm

from sar_lib import rewards as R
from sar_lib.grpo import GRPOConfig, load_config, training_differences

# ---------------------------------------------------------------- methods and settings


@dataclass(frozen=True)
class Method:
    """One training reward: ``R = correctness_weight * R_VR + alpha * r`` with ``r`` = ``reward``."""

    name: str                 # key in METHODS and in the results JSON
    label: str                # for figures and tables
    reward: str               # rewards.REWARD_NAMES
    alpha: float
    correctness_weight: float = 1.0


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("grpo", "GRPO", "none", 0.0),
    Method("sa-grpo", f"SA-GRPO (α={R.DEFAULT_ALPHAS['sar']:g})", "sar", R.DEFAULT_ALPHAS["sar"]),
    # the paper's "R_SA alone" ablation: no correctness term; alpha 1 so that R = R_SA
    Method("sar-only", "R_SA alone", "sar", 1.0, correctness_weight=0.0),
    Method("o1", f"O1-pruner (α={R.DEFAULT_ALPHAS['o1']:g})", "o1", R.DEFAULT_ALPHAS["o1"]),
    Method("er", f"ER (α={R.DEFAULT_ALPHAS['er']:g})", "er", R.DEFAULT_ALPHAS["er"]),
)}
# One colour per method in every figure: plots.SERIES_COLORS in the order grpo, sa-grpo, o1, er, sar-only,
# so that bar charts of the methods in that order (plots.grouped_bars colours series by position) agree.
METHOD_COLORS = {"grpo": "#2b8cbe", "sa-grpo": "#e6550d", "o1": "#41ab5d", "er": "#756bb1", "sar-only": "#fdae6b"}
MULTI_SEED_METHODS = ("grpo", "sa-grpo")     # the claim's two methods: every seed; the others: the first
IN_DOMAIN = "arith-test"
EVAL_SETS = (IN_DOMAIN, "symbolic-test", "logic-test")

# The default grid (`sar compare`), sized for 30 minutes on 2 CPU cores with the tiny model:
# 3 + 3 + 1 + 1 + 1 = 9 runs x 25 steps x 8 questions x 6 answers, two runs at a time. A step takes
# ~6-8 s with one torch thread on a free core (sampling 48 answers of ~30-50 tokens is half of it),
# so the grid trains for ~5 runs x 25 steps x 7 s ~ 15 min per worker; the 200-problem greedy
# evaluations (3 sets x 10 models) and the model loads add ~3 min. Measured: 12.1-12.2 min on 2 idle
# cores (mean step 4-5 s, 2026-11-26), 34 min on a 2-core machine shared with other jobs (load
# average ~5.5, median step 14 s; an earlier tiny model). 192 new tokens is the
# tiny-cpu profile's budget: lower would cut verbose answers and shorten them by truncation, not by reward.
# Learning rate of these short runs, per profile (others: the profile's). Chosen on an earlier, weaker
# tiny model: 1e-4 (the tiny-cpu profile's, fit for long runs) left its greedy answers unchanged after
# 10 steps (GRPO and SA-GRPO both 7.5% / 28.2 tokens on 100 arith-test problems); 3e-3 cut accuracy
# from 7% to 1-3% within 15 steps for both rewards; 1e-3 kept it (8% / 6% after 20 steps). On the
# shipped model, 25 steps at 1e-3 keep GRPO's and SA-GRPO's greedy accuracy within a point of the base
# (71.5 -> 70.7-70.8%) while their sampled answers get ~20% shorter.
SHORT_RUN_LEARNING_RATES = {"tiny-cpu": 1e-3}
DEFAULT_STEPS = 25
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_SETTINGS: dict = dict(questions_per_step=8, eval_size=200, save_every=5, threads=1, progress=False)
# `sar compare --quick`: the same grid in miniature (2 seeds, so that the std is defined), ~2 min.
QUICK_STEPS = 2
QUICK_SEEDS = (0, 1)
QUICK_SETTINGS: dict = dict(questions_per_step=2, group_size=3, eval_size=8, save_every=1, threads=1,
                            progress=False)

MARKER = "compare_run.json"   # in a run folder: the method, the model's fingerprint, time and memory


# Real benchmarks for the OOD notebook, when the project's shared/data folder (next to the repository)
# holds them: {name: file}. A user's clone has no such folder; the notebook then skips them.
SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCHMARK_FILES = {"gsm8k": "gsm8k_test.jsonl", "gsm-symbolic-p2": "gsm_symbolic_p2.jsonl",
                   "prontoqa": "prontoqa_dev.jsonl"}


def available_benchmarks(data_dir: str | Path | None = None) -> tuple[dict[str, str], list[str]]:
    """``({name: path} of the :data:`BENCHMARK_FILES` present in data_dir, [missing paths])``;
    data_dir None: :data:`SHARED_DATA_DIR`."""
    directory = Path(data_dir) if data_dir is not None else SHARED_DATA_DIR
    found, missing = {}, []
    for name, file in BENCHMARK_FILES.items():
        path = directory / file
        if path.is_file():
            found[name] = str(path)
        else:
            missing.append(str(path))
    return found, missing


def _short_run_learning_rate(profile: str) -> dict:
    return {"learning_rate": SHORT_RUN_LEARNING_RATES[profile]} if profile in SHORT_RUN_LEARNING_RATES else {}


def short_run_settings(*, model: str = "tiny", profile: str = "tiny-cpu", steps: int, questions_per_step: int,
                       eval_size: int, max_new_tokens: int | None = None, max_prompt_tokens: int | None = None,
                       device: str | None = None) -> dict:
    """The GRPOConfig settings of the notebooks' short runs (notebooks 03 and 04 share their runs, so
    both must build them here): the in-domain evaluation at the end, a checkpoint every 5 steps,
    one torch thread on CPU, :data:`SHORT_RUN_LEARNING_RATES`; ``None`` sizes take the profile's value."""
    from sar_lib.models import default_device

    settings = dict(model=model, profile=profile, steps=steps, questions_per_step=questions_per_step,
                    eval_dataset=IN_DOMAIN, eval_size=eval_size, save_every=5, progress=False,
                    threads=1 if (device or default_device()) == "cpu" else None,
                    **_short_run_learning_rate(profile))
    settings.update({k: v for k, v in (("max_new_tokens", max_new_tokens), ("max_prompt_tokens", max_prompt_tokens))
                     if v is not None})
    return settings


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
    """The GRPOConfig of ``method`` with ``seed`` in folder ``out``; ``settings``: other GRPOConfig fields."""
    method = get_method(method) if isinstance(method, str) else method
    return GRPOConfig(reward=method.reward, alpha=method.alpha, correctness_weight=method.correctness_weight,
                      seed=seed, out=str(out), **settings)


def get_method(name: str) -> Method:
    """``METHODS[name]``; ValueError listing the names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose among {', '.join(METHODS)}") from None


def grid_runs(out_dir: str | Path, *, methods: Sequence[str] = tuple(METHODS), seeds: Sequence[int] = DEFAULT_SEEDS,
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
    bad = [k for k in settings if k in ("reward", "alpha", "correctness_weight", "seed", "out")]
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


def _slug(dataset: str) -> str:
    """A file-name-safe name for a data set ("arith-test", or a file path's name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(dataset).name if "/" in dataset else dataset)


def eval_paths(directory: str | Path, dataset: str) -> tuple[Path, Path]:
    """``(eval_<set>.json, eval_<set>_records.jsonl)`` of ``dataset`` in ``directory``."""
    slug = _slug(dataset)
    return Path(directory) / f"eval_{slug}.json", Path(directory) / f"eval_{slug}_records.jsonl"


def read_eval(directory: str | Path, dataset: str) -> tuple[dict, list[dict]]:
    """The cached evaluation of ``dataset`` in ``directory``: ``(summary, records)``."""
    summary_path, records_path = eval_paths(directory, dataset)
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path} does not exist: {dataset} was not evaluated in {directory}")
    records = [json.loads(line) for line in records_path.read_text().splitlines() if line.strip()]
    return json.loads(summary_path.read_text()), records


def _write_eval(directory: Path, dataset: str, key: dict, report: dict) -> dict:
    from sar_lib.evaluate import summary

    summary_path, records_path = eval_paths(directory, dataset)
    result = {**key, **summary(report)}
    with records_path.open("w") as f:
        for record in report["records"]:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def cached_evaluations(directory: str | Path, load: Callable[[], tuple], eval_sets: Mapping[str, int | None], *,
                       key: Mapping, max_new_tokens: int, batch_size: int) -> dict[str, dict]:
    """Greedy evaluations of one model on ``eval_sets`` ({data set: size, None = all}), cached.

    ``eval_<set>.json`` is reused when it holds the same data set, size, answer budget and
    ``key`` (e.g. the step and the weights' fingerprint); otherwise the model (``load()`` ->
    ``(model, tokenizer)``, called at most once) answers ``data.load_problems(set, limit=size,
    seed=0)`` with ``evaluate.evaluate``. Returns {data set: summary (``evaluate.SUMMARY_KEYS`` + key)}.
    """
    from sar_lib.data import load_problems
    from sar_lib.evaluate import evaluate

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    results, model = {}, None
    for dataset, size in eval_sets.items():
        want = {"dataset": dataset, "size": size, "max_new_tokens": max_new_tokens, **key}
        summary_path, _ = eval_paths(directory, dataset)
        if summary_path.is_file():
            cached = json.loads(summary_path.read_text())
            if all(cached.get(k) == v for k, v in want.items()):
                results[dataset] = cached
                continue
        problems = load_problems(dataset, limit=size, seed=0)
        if model is None:
            model = load()
        report = evaluate(model[0], model[1], problems, max_new_tokens=max_new_tokens, batch_size=batch_size,
                          progress=False)
        results[dataset] = _write_eval(directory, dataset, want, report)
    return results


def _done_step(run_dir: Path) -> int:
    """Steps in the run's checkpoint (0 when there is none)."""
    import torch

    state = run_dir / "checkpoint" / "state.pt"
    return int(torch.load(state, map_location="cpu", weights_only=False)["step"]) if state.is_file() else 0


def stale_reason(run_dir: str | Path, config: GRPOConfig, fingerprint: str) -> str | None:
    """Why the folder cannot continue as the run ``config`` asks for (None: it can, or it is empty).

    ValueError for a folder holding a run that this module did not start: it is never removed.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        return None
    marker = run_dir / MARKER
    if not marker.is_file():
        raise ValueError(f"{run_dir} holds a run that sar_lib.compare did not start (no {MARKER}); "
                         "move it away or choose another out folder")
    saved_fingerprint = json.loads(marker.read_text()).get("model_fingerprint")
    if saved_fingerprint != fingerprint:
        return f"trained from other weights of {config.model!r} ({saved_fingerprint} -> {fingerprint})"
    # the weights are identified by their fingerprint: "tiny" and a folder with the same files are one model
    saved = dataclasses.replace(load_config(run_dir).resolved(), model=config.model)
    differences = training_differences(saved, config)
    if differences:
        return "other training settings: " + "; ".join(differences)
    if _done_step(run_dir) > config.steps:
        return f"trained for {_done_step(run_dir)} steps, more than the {config.steps} asked for"
    return None


# ---------------------------------------------------------------- running one run
def _peak_memory_mb() -> dict:
    """Peak resident memory of this process (MB; not on Windows), and CUDA's peak allocation on a GPU."""
    import torch

    peak = {}
    try:
        import resource   # Unix only
    except ImportError:
        pass
    else:
        # ru_maxrss is in KiB on Linux, in bytes on macOS
        unit = 2**20 if sys.platform == "darwin" else 1024
        peak["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / unit
    if torch.cuda.is_available():
        peak["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def _clear_if_stale(run_dir: Path, config: GRPOConfig, fingerprint: str) -> None:
    reason = stale_reason(run_dir, config, fingerprint)
    if reason is not None:
        tqdm.write(f"{run_dir}: stale ({reason}); training it again")
        shutil.rmtree(run_dir)


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
    done = _done_step(run_dir)
    finished = done == config.steps and (run_dir / "eval.json").is_file() \
        and json.loads((run_dir / "eval.json").read_text())["step"] == config.steps
    marker = run_dir / MARKER
    if not finished:
        run_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"method": spec.method, "seed": spec.seed, "model_fingerprint": fingerprint},
                                     indent=2) + "\n")
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        if done > 0:   # resume under the saved model name (same weights, see stale_reason)
            train(dataclasses.replace(config, model=load_config(run_dir).model), resume=True)
        else:
            train(config)
    if config.threads is not None:
        torch.set_num_threads(config.threads)   # the evaluations below, also when training was skipped
    key = {"step": config.steps, "model_fingerprint": fingerprint}
    if config.eval_dataset in eval_sets and eval_sets[config.eval_dataset] == config.eval_size:
        _adopt_final_eval(run_dir, config, key)   # train()'s own final evaluation: no need to repeat it
    evals = cached_evaluations(run_dir, lambda: load_run(run_dir), eval_sets, key=key,
                               max_new_tokens=config.max_new_tokens, batch_size=config.eval_batch_size)
    info = json.loads(marker.read_text())
    if not finished:
        info.update({"wall_seconds": time.perf_counter() - start, **_peak_memory_mb()})
        marker.write_text(json.dumps(info, indent=2) + "\n")
    metrics = read_metrics(run_dir)
    return {"method": spec.method, "seed": spec.seed, "run_dir": str(run_dir), "trained": not finished,
            "steps": config.steps, "evals": evals,
            "train_seconds": sum(m["time/step"] for m in metrics),
            **{k: info[k] for k in ("wall_seconds", "peak_rss_mb", "cuda_peak_mb") if k in info}}


def _adopt_final_eval(run_dir: Path, config: GRPOConfig, key: dict) -> None:
    """Copy train()'s final ``eval.json`` into the cache as ``eval_<set>.json`` (when it is new)."""
    summary_path, records_path = eval_paths(run_dir, config.eval_dataset)
    final = json.loads((run_dir / "eval.json").read_text())
    want = {"dataset": config.eval_dataset, "size": config.eval_size, "max_new_tokens": config.max_new_tokens, **key}
    if summary_path.is_file() and all(json.loads(summary_path.read_text()).get(k) == v for k, v in want.items()):
        return
    if final["step"] != config.steps or final["n"] != config.eval_size:
        return
    shutil.copyfile(run_dir / "eval_records.jsonl", records_path)
    summary_path.write_text(json.dumps({**want, **{k: v for k, v in final.items() if k not in ("step", "dataset")}},
                                       indent=2) + "\n")


def ensure_base(model: str, out_dir: str | Path, eval_sets: Mapping[str, int | None], *, profile: str = "tiny-cpu",
                max_new_tokens: int | None = None, batch_size: int | None = None, threads: int | None = 1) -> dict:
    """The base model (no training) on ``eval_sets``, cached in ``out_dir/base``: {set: summary}."""
    import torch

    from sar_lib.models import get_profile, load_model

    check_eval_sets(eval_sets)
    prof = get_profile(profile)
    if threads is not None:
        torch.set_num_threads(threads)
    key = {"step": 0, "model_fingerprint": model_fingerprint(model)}
    return cached_evaluations(Path(out_dir) / "base", lambda: load_model(model), eval_sets, key=key,
                              max_new_tokens=max_new_tokens or prof.max_new_tokens,
                              batch_size=batch_size or prof.eval_batch_size)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-step metrics of a run (``metrics.jsonl``), one dict per step."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {run_dir} has not trained yet")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------- running a grid
def _steps_logged(run_dir: Path, steps: int) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    with path.open() as f:
        return min(steps, sum(1 for line in f if line.strip()))


def run_grid(runs: Sequence[RunSpec], eval_sets: Mapping[str, int | None] | None = None, *, workers: int = 2,
             base_model: str | None = None, base_dir: str | Path | None = None, progress: bool = True,
             poll_seconds: float = 2.0) -> tuple[list[dict], dict | None]:
    """Train and evaluate every run (:func:`ensure_run`), ``workers`` at a time; returns
    ``(results in the order of runs, base model evaluations or None)``.

    ``workers > 1``: separate processes (``spawn``), each with its own torch and the runs' thread
    count; ``workers == 1``: in this process. ``base_model``: also evaluate that model untrained
    (:func:`ensure_base`, into ``base_dir``). Progress: one bar over the training steps of all runs
    (read from their ``metrics.jsonl``) and one line per finished run.
    """
    eval_sets = dict.fromkeys(EVAL_SETS, DEFAULT_SETTINGS["eval_size"]) if eval_sets is None else dict(eval_sets)
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
            base_job = pool.submit(ensure_base, base_model, base_dir, eval_sets,
                                   profile=runs[0].config.resolved().profile,
                                   max_new_tokens=runs[0].config.resolved().max_new_tokens,
                                   batch_size=runs[0].config.resolved().eval_batch_size,
                                   threads=runs[0].config.resolved().threads)
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
                done = sum(_steps_logged(spec.run_dir, spec.config.resolved().steps) for spec in runs)
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


# ---------------------------------------------------------------- summaries
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


def mean_curves(run_dirs: Sequence[str | Path], keys: Sequence[str]) -> dict[str, dict]:
    """Per-step mean and std over runs of metrics ``keys``: {key: {"step": [...], "mean": [...], "std": [...]}}.

    Steps where a run lacks the key (or logs None) average over the runs that have it.
    """
    runs = [read_metrics(d) for d in run_dirs]
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


def _window_mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def summarise(runs: Sequence[RunSpec], results: Sequence[dict], base: Mapping[str, dict] | None = None) -> dict:
    """The comparison as JSON-able numbers: per method, per-seed / mean / std of every evaluation
    metric, behaviour counts, the drift of the sampled answers over training (:data:`DRIFT_KEYS`,
    mean over seeds of the first and last :data:`DRIFT_WINDOW` steps), time and memory; the base
    model's evaluations; :func:`paper_claim` per evaluation set (when both GRPO and SA-GRPO ran)."""
    methods = {}
    for name in dict.fromkeys(spec.method for spec in runs):
        rows = sorted((r for r in results if r["method"] == name), key=lambda r: r["seed"])
        method = METHODS[name]
        entry = {"label": method.label, "reward": method.reward, "alpha": method.alpha,
                 "correctness_weight": method.correctness_weight, "seeds": [r["seed"] for r in rows],
                 "run_dirs": [r["run_dir"] for r in rows], "eval": {}, "behaviours": {}}
        for dataset in rows[0]["evals"]:
            evals = [r["evals"][dataset] for r in rows]
            entry["eval"][dataset] = {k: stats([e[k] for e in evals])
                                      for k in ("accuracy", "mean_length", "mean_length_correct", "truncation_rate")}
            entry["eval"][dataset]["n"] = evals[0]["n"]
            texts = [rec["response"] for r in rows for rec in read_eval(r["run_dir"], dataset)[1]]
            entry["behaviours"][dataset] = count_behaviours(texts)
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
        summary["base"] = {dataset: {k: e[k] for k in ("n", "accuracy", "mean_length", "mean_length_correct",
                                                     "truncation_rate")} for dataset, e in base.items()}
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


def machine() -> dict:
    """Where the numbers were measured: CPU, cores, load, library versions."""
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_average_1min_at_start": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def step_times(run_dir: str | Path) -> dict[str, float]:
    """Mean seconds per step of a run's ``time/*`` metrics (generate, score, update, step, sar, eval),
    without the ``time/`` prefix; ``time/eval`` is averaged over the steps that evaluated."""
    metrics = read_metrics(run_dir)
    keys = dict.fromkeys(k for m in metrics for k in m if k.startswith("time/"))
    return {k[len("time/"):]: statistics.fmean(m[k] for m in metrics if m.get(k) is not None) for k in keys}


def example_answers(directories: Mapping[str, str | Path], dataset: str, n: int, *,
                    differing: bool = True) -> list[dict]:
    """``n`` problems of ``dataset`` with every model's cached answer (:func:`read_eval`), for
    before/after tables: ``[{"id", "question", "gold", "answers": {label: record}}]``.

    ``directories``: {label: folder with ``eval_<dataset>.json``} (a run, or ``<out>/base``). With
    ``differing``, problems whose answers are not all the same come first (in data set order).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    records = {label: read_eval(directory, dataset)[1] for label, directory in directories.items()}
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


# ---------------------------------------------------------------- figures
CURVE_KEYS = ("reward/total", "accuracy/batch", "length/mean", "sar/mean")
CURVE_LABELS = {"reward/total": "reward R (batch mean)", "accuracy/batch": "accuracy (sampled answers)",
                "length/mean": "length of sampled answers (tokens)", "sar/mean": "SAR of sampled answers"}
# metrics whose drift over training the summary reports (what the sampled answers did, next to the greedy evaluation)
DRIFT_KEYS = ("length/mean", "sar/mean", "accuracy/batch", "groups/no_signal")
DRIFT_WINDOW = 5


def label_colors(methods: Mapping[str, Mapping]) -> dict[str, str]:
    """{label: colour} for the methods of a summary ({name: {"label": ...}}), from :data:`METHOD_COLORS`."""
    return {m["label"]: METHOD_COLORS[name] for name, m in methods.items() if name in METHOD_COLORS}


def plot_summary(summary: Mapping, figures_dir: str | Path, *, prefix: str = "grpo_vs_sar",
                 curve_keys: Sequence[str] = CURVE_KEYS) -> list[Path]:
    """``<prefix>.png`` (accuracy vs length, one panel per evaluation set, seeds as points, means as
    big markers, the base model as a star) and ``<prefix>_curves.png`` (training curves, mean over
    seeds per method); returns the paths."""
    from sar_lib import plots

    methods = summary["methods"]
    datasets = list(next(iter(methods.values()))["eval"])
    panels = {dataset: {m["label"]: list(zip(m["eval"][dataset]["mean_length"]["per_seed"],
                                              m["eval"][dataset]["accuracy"]["per_seed"]))
                        for m in methods.values()} for dataset in datasets}
    base = summary.get("base")
    reference = {d: (base[d]["mean_length"], base[d]["accuracy"]) for d in datasets if base and d in base}
    colors = label_colors(methods)
    fig = plots.accuracy_vs_length(panels, reference=reference or None, colors=colors,
                                   title="Greedy accuracy vs answer length after training")
    paths = [plots.save_figure(fig, prefix, figures_dir)]
    curves = {m["label"]: mean_curves(m["run_dirs"], curve_keys) for m in methods.values()}
    fig = plots.training_curves(curves, curve_keys, ylabels=CURVE_LABELS, colors=colors,
                                title="Training curves (mean over seeds; band: ± 1 std)")
    paths.append(plots.save_figure(fig, f"{prefix}_curves", figures_dir))
    return paths


# ---------------------------------------------------------------- the command
def compare(out_dir: str | Path | None = None, *, model: str = "tiny", profile: str = "tiny-cpu",
            steps: int | None = None, seeds: Sequence[int] | None = None, workers: int = 2, quick: bool = False,
            methods: Sequence[str] = tuple(METHODS), eval_sets: Mapping[str, int | None] | None = None,
            json_path: str | Path | None = None, figures_dir: str | Path | None = None, command: str = "",
            progress: bool = True, **settings) -> dict:
    """``sar compare``: run the grid, write the results JSON and the two figures; returns the JSON.

    Defaults: out ``runs/compare``, :data:`DEFAULT_STEPS` steps, seeds :data:`DEFAULT_SEEDS`,
    :data:`DEFAULT_SETTINGS` and :data:`SHORT_RUN_LEARNING_RATES`, JSON ``figures/grpo_vs_sar.json``,
    figures in ``figures/``.
    ``quick``: the miniature grid (:data:`QUICK_SETTINGS`) in ``runs/compare-quick``, whose JSON and
    figures stay in that folder (so a smoke test never overwrites the real results).
    ``settings``: other GRPOConfig fields, over the defaults.
    """
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    out_dir = Path(out_dir or ("runs/compare-quick" if quick else "runs/compare"))
    grid = {**(QUICK_SETTINGS if quick else DEFAULT_SETTINGS), **_short_run_learning_rate(profile), **settings}
    size = grid.pop("eval_size")
    eval_sets = dict(eval_sets) if eval_sets is not None else dict.fromkeys(EVAL_SETS, size)
    check_eval_sets(eval_sets)
    first = next(iter(eval_sets))
    runs = grid_runs(out_dir, methods=methods, seeds=tuple(seeds or (QUICK_SEEDS if quick else DEFAULT_SEEDS)),
                     model=model, profile=profile, steps=steps or (QUICK_STEPS if quick else DEFAULT_STEPS),
                     eval_dataset=first, eval_size=eval_sets[first] or size, **grid)
    json_path = Path(json_path or (out_dir / "grpo_vs_sar.json" if quick else "figures/grpo_vs_sar.json"))
    figures_dir = Path(figures_dir or (out_dir if quick else "figures"))
    start = time.perf_counter()
    info = {"machine": machine()}
    results, base = run_grid(runs, eval_sets, workers=workers, base_model=model, base_dir=out_dir, progress=progress)
    wall = time.perf_counter() - start
    resolved = runs[0].config.resolved()
    shared = {k: v for k, v in dataclasses.asdict(resolved).items()
              if k not in ("reward", "alpha", "correctness_weight", "seed", "out", "progress")}
    summary = {
        "command": command or f"sar_lib.compare.compare({str(out_dir)!r})",
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
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    summary["json"] = str(json_path)
    summary["figures"] = [str(p) for p in plot_summary(summary, figures_dir, prefix=json_path.stem)]
    json_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary: Mapping) -> str:
    """A text table: accuracy and mean length (mean ± std over seeds) per method and evaluation set,
    then the claim's numbers."""
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
            cells.append(f"{100 * acc['mean']:13.1f} ± {100 * acc['std']:4.1f}"
                         f"{length['mean']:13.1f} ± {length['std']:4.1f}")
        lines.append(f"{m['label'] + ' x' + str(len(m['seeds'])):24}" + "".join(cells))
    for dataset, c in summary.get("claim", {}).get("per_set", {}).items():
        change = "undefined" if c["length_reduction"] is None else f"{-100 * c['length_reduction']:+.1f}%"
        verdict = {True: "HOLDS", False: "does not hold", None: "undefined"}[c["holds"]]
        lines.append(f"claim on {dataset}: SA-GRPO vs GRPO length {change} (need <= "
                     f"-{100 * c['min_length_reduction']:.0f}%), accuracy {0.0 - c['accuracy_drop_points']:+.1f} "
                     f"points (need >= -{c['max_accuracy_drop_points']:g}): {verdict}")
    lines.append(f"wall time {summary['wall_seconds'] / 60:.1f} min ({summary['runs_trained']} runs trained, "
                 f"{summary['runs_cached']} cached); the runs took {summary['runs_wall_seconds_total'] / 60:.1f} "
                 f"worker-minutes when they were trained")
    return "\n".join(lines)
