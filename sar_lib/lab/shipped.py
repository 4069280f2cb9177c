"""The grid's trained models, shipped with the package: the LoRA adapters of ``sar compare``'s runs.

:func:`ship_adapters` (``sar compare --ship-adapters [DIR]``) copies the final adapter of every seed
of the grid's multi-seed methods (GRPO and SA-GRPO: so that a notebook can show seeds that switched
to concise answers and seeds that lagged) and of the first seed of every other method into ``DIR``
(default :data:`SHIPPED_DIR`, package data). A method's first seed ships under the method's name,
its other seeds under ``<method>-s<seed>`` (:func:`shipped_name`)::

    grpo_vs_sar.json                 the grid's results JSON the adapters come from
    manifest.json                    {name: {"method", "seed", "run_dir", "steps", "rollouts", "greedy": {set:
                                     {"accuracy", "mean_length"}}, "model", "model_fingerprint", "sha256"}}
    <name>/adapter_config.json       peft's LoRA config (base_model_name_or_path: the grid's model name)
    <name>/adapter_model.safetensors the LoRA weights in fp16 (half the run's fp32 file)
    <name>/config.json               the run's GRPOConfig (``runs.read_config`` reads it)

:func:`load_shipped` gives a notebook the policy of one method as ``grpo.load_run`` gives a run's:
the profile's LoRA policy (``models.load_policy``) with the shipped weights, in eval mode;
:func:`evaluate_shipped` evaluates several of them on data sets, cached as the grid caches its runs'.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import shutil
from concurrent import futures
from pathlib import Path
from typing import Mapping, Sequence

import torch
from safetensors.torch import load_file, save_file

from sar_lib import runs as run_files

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "assets" / "grid"
# Every seed of GRPO and SA-GRPO at the earlier default grid's settings (lr 1e-3, 100 steps x 16 questions, seeds
# 0-2; their JSON inside), where SA-GRPO switched to concise answers on 2 of 3 seeds by 9,600 rollouts: notebook 03
# shows the switch from them. Retrained to ship every seed (docs/grid.md compares them with the earlier grid's runs).
LR_1E3_DIR = SHIPPED_DIR.parent / "grid_lr1e-3"
MANIFEST = "manifest.json"
GRID_JSON = "grpo_vs_sar.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
SHIP_COMMAND = "sar compare --ship-adapters"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped_name(method: str, seed: int, first_seed: int) -> str:
    """The name a run ships under: the method's for its first seed, ``<method>-s<seed>`` for the others."""
    return method if seed == first_seed else f"{method}-s{seed}"


def _seed_entry(name: str, method: Mapping, index: int, summary: Mapping, json_path: Path) -> dict:
    """The manifest entry of the run of ``method``'s ``index``-th seed, from the grid JSON ``summary`` (read
    from ``json_path``); ValueError when its run folder is unfinished or no longer holds the run the JSON
    describes."""
    run_dir, steps = Path(method["run_dirs"][index]), summary["settings"]["steps"]
    done = run_files.checkpoint_step(run_dir)
    if done != steps:
        raise ValueError(f"{run_dir} ({name}) has a checkpoint at step {done}, not the grid's {steps}: the run is "
                         f"unfinished or was trained again since {json_path} was written; run the same "
                         "`sar compare` again to finish it, then ship")
    adapter = run_dir / run_files.CHECKPOINT / "adapter"
    if not (adapter / ADAPTER_WEIGHTS).is_file():
        raise ValueError(f"{adapter} holds no {ADAPTER_WEIGHTS}: the run was trained without LoRA, "
                         "so it has no adapter to ship; train the grid with a LoRA profile")
    greedy = {}
    for dataset, metrics in method["eval"].items():
        greedy[dataset] = {k: metrics[k]["per_seed"][index] for k in ("accuracy", "mean_length")}
        stored = run_files.matching_eval(run_dir, dataset=dataset, step=steps)
        if stored is None or {k: stored[k] for k in greedy[dataset]} != greedy[dataset]:
            raise ValueError(f"{run_dir} holds no evaluation of {dataset} at step {steps} matching "
                             f"{json_path}: the run changed since; run `sar compare` again, then ship")
    config = run_files.read_config(run_dir).resolved()
    return {"method": name, "seed": method["seeds"][index], "run_dir": str(run_dir), "steps": steps,
            "rollouts": steps * config.questions_per_step * config.group_size, "greedy": greedy,
            "model": summary["model"], "model_fingerprint": summary["model_fingerprint"]}


def _write_fp16_adapter(source: Path, target: Path, model: str) -> None:
    """``source``'s peft adapter in ``target``, weights in fp16, the config naming the base ``model``."""
    weights = load_file(source / ADAPTER_WEIGHTS)
    half = {k: v.to(torch.float16).contiguous() for k, v in weights.items()}
    target.mkdir(parents=True)
    save_file(half, target / ADAPTER_WEIGHTS, metadata={"format": "pt"})
    config = json.loads((source / ADAPTER_CONFIG).read_text())
    config["base_model_name_or_path"] = model   # not the training machine's path
    (target / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def _manifest(summary: Mapping, json_path: Path) -> dict:
    """{shipped name: entry} of every run that ships: each seed of the grid's multi-seed methods, the
    first seed of the others."""
    multi_seed = summary["settings"].get("multi_seed_methods", [])
    manifest = {}
    for name, method in summary["methods"].items():
        for index in range(len(method["seeds"]) if name in multi_seed else 1):
            entry = _seed_entry(name, method, index, summary, json_path)
            manifest[shipped_name(name, entry["seed"], method["seeds"][0])] = entry
    return manifest


def ship_adapters(json_path: str | Path, directory: str | Path = SHIPPED_DIR) -> dict:
    """Copy the final LoRA adapter of every run that ships (module docstring) of the grid whose results
    JSON is ``json_path`` (``compare.compare``'s) into ``directory/<name>/`` in fp16, with the run's
    config, a copy of the JSON and ``manifest.json``; returns the manifest.

    Every run is checked first (finished at the grid's steps, its evaluations those of the JSON):
    a ValueError leaves ``directory`` untouched. A previous shipment there is replaced."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise FileNotFoundError(f"{json_path} does not exist: run `sar compare` first (it writes the grid's JSON)")
    summary = json.loads(json_path.read_text())
    manifest = _manifest(summary, json_path)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    old = directory / MANIFEST
    for name in json.loads(old.read_text()) if old.is_file() else ():
        shutil.rmtree(directory / name, ignore_errors=True)
    for name, entry in manifest.items():
        target = directory / name
        shutil.rmtree(target, ignore_errors=True)
        source = Path(entry["run_dir"])
        _write_fp16_adapter(source / run_files.CHECKPOINT / "adapter", target, summary["model"])
        shutil.copyfile(source / "config.json", target / "config.json")
        entry["sha256"] = _sha256(target / ADAPTER_WEIGHTS)
    shutil.copyfile(json_path, directory / GRID_JSON)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(directory: str | Path = SHIPPED_DIR) -> dict:
    """``manifest.json`` of the shipped adapters in ``directory`` (FileNotFoundError naming the
    command that ships them when there is none)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no adapters are shipped in {directory} (no {MANIFEST}); "
                                f"`{SHIP_COMMAND}` trains the grid and ships them there")
    return json.loads(path.read_text())


def shipped_methods(directory: str | Path = SHIPPED_DIR) -> list[str]:
    """The names shipped in ``directory`` (methods, then ``<method>-s<seed>`` for the other seeds of the
    multi-seed methods), in the grid's order ([] when none)."""
    return list(read_manifest(directory)) if (Path(directory) / MANIFEST).is_file() else []


def shipped_seeds(method: str, directory: str | Path = SHIPPED_DIR) -> dict[int, str]:
    """{seed: shipped name} of every shipped run of ``method``, by seed ({} when none)."""
    manifest = read_manifest(directory) if (Path(directory) / MANIFEST).is_file() else {}
    return dict(sorted((entry["seed"], name) for name, entry in manifest.items()
                       if entry.get("method", name) == method))


def load_shipped(method: str, *, directory: str | Path = SHIPPED_DIR, device: str | None = None):
    """``(model, tokenizer)``: the policy of ``method``'s shipped run, as ``grpo.load_run`` loads the
    run (its profile's LoRA policy, ``models.load_policy``) with the shipped weights, in eval mode,
    on ``device`` (default: the default device). A PPO method's critic is not shipped: the policy
    answers without it. ``read_manifest(directory)[method]`` says which run it is."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    from sar_lib.lab.grid import model_fingerprint
    from sar_lib.grpo_config import policy_profile
    from sar_lib.models import load_policy

    manifest = read_manifest(directory)
    if method not in manifest:
        raise ValueError(f"no adapter of {method!r} is shipped in {directory}; shipped: {', '.join(manifest)}")
    entry, folder = manifest[method], Path(directory) / method
    weights = folder / ADAPTER_WEIGHTS
    if _sha256(weights) != entry["sha256"]:
        raise ValueError(f"{weights} is not the file {MANIFEST} lists (sha256 differs); ship again with "
                         f"`{SHIP_COMMAND}`")
    config = dataclasses.replace(run_files.read_config(folder), device=device).resolved()
    if model_fingerprint(config.model) != entry["model_fingerprint"]:
        raise ValueError(f"the adapter of {method!r} was trained on other weights of {config.model!r} than "
                         f"those installed; ship adapters trained on them with `{SHIP_COMMAND}`")
    model, tokenizer = load_policy(config.model, policy_profile(config), device=device)
    expected = get_peft_model_state_dict(model)
    state = load_file(weights)
    if set(state) != set(expected):
        raise ValueError(f"{weights} does not fit the policy of {folder / 'config.json'}: its LoRA weights differ "
                         f"({len(state)} shipped, {len(expected)} in the policy)")
    set_peft_model_state_dict(model, {k: v.to(expected[k].dtype) for k, v in state.items()})
    model.eval()
    return model, tokenizer


def _evaluate_one(method: str, eval_sets: Mapping[str, int | None], out_dir: str, directory: str,
                  device: str | None) -> dict:
    """One shipped method on ``eval_sets`` (:func:`evaluate_shipped`), in this process."""
    from sar_lib.lab.grid import cached_evaluations

    entry = read_manifest(directory)[method]
    config = dataclasses.replace(run_files.read_config(Path(directory) / method), device=device).resolved()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    return cached_evaluations(Path(out_dir) / method, lambda: load_shipped(method, directory=directory, device=device),
                              eval_sets, key={"adapter_sha256": entry["sha256"]}, max_new_tokens=config.max_new_tokens,
                              batch_size=config.eval_batch_size)


def evaluate_shipped(methods: Sequence[str], eval_sets: Mapping[str, int | None], out_dir: str | Path, *,
                     directory: str | Path = SHIPPED_DIR, workers: int = 1, device: str | None = None) -> dict:
    """``{method: {data set: summary}}``: the greedy evaluation of each shipped ``method``'s policy
    (:func:`load_shipped`) on ``eval_sets`` ({data set: size, None = all}), with the answer budget and
    batch size of its run's config, ``workers`` methods at a time (processes, each with the run's
    thread count). Cached in ``out_dir/<method>`` as ``grid.cached_evaluations`` caches a run's,
    keyed by the adapter's sha256: evaluating again returns at once; a new shipment is evaluated anew."""
    from sar_lib.lab.grid import check_eval_sets

    check_eval_sets(eval_sets)
    shipped = shipped_methods(directory)
    unknown = [m for m in methods if m not in shipped]
    if unknown:
        raise ValueError(f"no adapter of {', '.join(unknown)} is shipped in {directory}; shipped: "
                         f"{', '.join(shipped) or 'none'} (`{SHIP_COMMAND}` ships them)")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    args = (dict(eval_sets), str(out_dir), str(directory), device)
    if workers == 1 or len(methods) == 1:
        return {m: _evaluate_one(m, *args) for m in methods}
    with futures.ProcessPoolExecutor(max_workers=min(workers, len(methods)),
                                     mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = {m: pool.submit(_evaluate_one, m, *args) for m in methods}
        return {m: job.result() for m, job in jobs.items()}
