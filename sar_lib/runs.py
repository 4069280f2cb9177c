"""A run folder: every file a training run (``grpo.train``) or an evaluation leaves on disk, and
the only code that writes or reads them::

    config.json, config.yaml        the resolved GRPOConfig                 write_config / read_config
    metrics.jsonl                   one JSON object per training step       append_metrics / read_metrics
    completions.jsonl               the sampled answers, one per line        append_completions /
                                    (only with log_completions)              read_completions
    checkpoint/                     trainable.pt (the trainable weights),   save_checkpoint / load_checkpoint
                                    optimizer.pt, state.pt ({"step",
                                    "data_position", "rng"}), adapter/
                                    (the LoRA adapters in peft format)
    eval_<set>.json                 one greedy evaluation of data set <set>: write_eval / read_eval
                                    its key (dataset, size, max_new_tokens,
                                    step, ...) and its metrics
                                    (``evaluate.SUMMARY_KEYS``)
    eval_<set>_records.jsonl        that evaluation's answers, one per problem
    train.lock                      the pid of the process training it       training_lock

The trainer writes the evaluation of its ``eval_dataset`` at its last step; ``sar_lib.lab.grid`` adds
the other sets beside it, in the same format, and keeps the base model's in a folder of its own
(evaluation files only). An evaluation is reused when its key matches (:func:`matching_eval`).
Outside any run folder, ``sar eval --json FILE`` stores one evaluation and its answers in one file
(:func:`write_report`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import torch
import yaml

from sar_lib.evaluate import summary
from sar_lib.grpo_config import GRPOConfig

CHECKPOINT = "checkpoint"
METRICS = "metrics.jsonl"
COMPLETIONS = "completions.jsonl"


# ---------------------------------------------------------------- config
def write_config(run_dir: str | Path, config: GRPOConfig) -> None:
    """Write ``config.json`` and ``config.yaml`` into ``run_dir``."""
    values = dataclasses.asdict(config)
    (Path(run_dir) / "config.json").write_text(json.dumps(values, indent=2) + "\n")
    (Path(run_dir) / "config.yaml").write_text(yaml.safe_dump(values, sort_keys=False))


def has_config(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run's config (a run started there)."""
    return (Path(run_dir) / "config.json").is_file()


def read_config(run_dir: str | Path) -> GRPOConfig:
    """The config saved in a run folder (fields a newer GRPOConfig lacks are ignored)."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {run_dir} is not a run folder written by sar train")
    values = json.loads(path.read_text())
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    return GRPOConfig(**{k: v for k, v in values.items() if k in known})


# ---------------------------------------------------------------- metrics
def append_metrics(run_dir: str | Path, metrics: dict) -> None:
    """Add one step's metrics as a line of ``metrics.jsonl``."""
    with (Path(run_dir) / METRICS).open("a") as f:
        f.write(json.dumps(metrics) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-step metrics of a run (``metrics.jsonl``), one dict per step, as the trainer wrote them."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {run_dir} has not trained yet")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def steps_logged(run_dir: str | Path) -> int:
    """How many steps ``metrics.jsonl`` holds (0 before the first), read while the run writes it."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return 0
    with path.open() as f:
        return sum(1 for line in f if line.strip())


def append_completions(run_dir: str | Path, rows: list[dict]) -> None:
    """Add one step's sampled answers (``GRPOConfig.log_completions``) to ``completions.jsonl``."""
    with (Path(run_dir) / COMPLETIONS).open("a") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def read_completions(run_dir: str | Path) -> list[dict]:
    """The sampled answers a run logged, one dict per answer ([] when it logged none)."""
    path = Path(run_dir) / COMPLETIONS
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def keep_metrics_until(run_dir: str | Path, step: int) -> None:
    """Drop metric and completion lines logged after ``step`` (a run stopped between two checkpoints)."""
    for name in (METRICS, COMPLETIONS):
        path = Path(run_dir) / name
        if path.exists():
            lines = [line for line in path.read_text().splitlines() if line.strip()]
            kept = [line for line in lines if json.loads(line)["step"] <= step]
            path.write_text("".join(line + "\n" for line in kept))


def remove_metrics(run_dir: str | Path) -> None:
    """Delete ``metrics.jsonl`` and ``completions.jsonl`` (a run that starts again from step 0)."""
    for name in (METRICS, COMPLETIONS):
        (Path(run_dir) / name).unlink(missing_ok=True)


# ---------------------------------------------------------------- checkpoint
def has_checkpoint(run_dir: str | Path) -> bool:
    return (Path(run_dir) / CHECKPOINT).exists()


def save_checkpoint(run_dir: str | Path, model, optimizer, *, step: int, data_position: int, rng: dict) -> None:
    """Write ``checkpoint/`` (replacing the previous one): trainable weights, optimizer, RNG states, step.

    Written into ``checkpoint.tmp`` first and renamed, so a run killed mid-write keeps its last one.
    """
    run_dir = Path(run_dir)
    tmp = run_dir / f"{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save({name: p.detach().cpu() for name, p in model.named_parameters() if p.requires_grad},
               tmp / "trainable.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save({"step": step, "data_position": data_position, "rng": rng}, tmp / "state.pt")
    if hasattr(model, "peft_config"):
        model.save_pretrained(tmp / "adapter")  # for loading with peft outside this trainer
    final = run_dir / CHECKPOINT
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def checkpoint_state(run_dir: str | Path) -> dict:
    """``{"step", "data_position", "rng"}`` of the run's checkpoint (FileNotFoundError if none)."""
    path = Path(run_dir) / CHECKPOINT / "state.pt"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} holds no checkpoint to resume from; start the run again without --resume")
    # Our own file; python/numpy RNG states are not plain tensors, hence weights_only=False.
    return torch.load(path, map_location="cpu", weights_only=False)


def checkpoint_step(run_dir: str | Path) -> int:
    """Steps done by the run's checkpoint (0 when there is none)."""
    return int(checkpoint_state(run_dir)["step"]) if (Path(run_dir) / CHECKPOINT / "state.pt").is_file() else 0


def load_trainable(run_dir: str | Path, model) -> None:
    """Copy the checkpoint's trainable weights into ``model`` (ValueError when they do not fit it)."""
    checkpoint = Path(run_dir) / CHECKPOINT
    saved = torch.load(checkpoint / "trainable.pt", map_location="cpu")
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(saved) != set(params):
        raise ValueError(f"{checkpoint} does not match the model: its trainable parameters differ "
                         f"({len(saved)} saved, {len(params)} in the model); was the config changed?")
    with torch.no_grad():
        for name, value in saved.items():
            params[name].copy_(value)


def load_checkpoint(run_dir: str | Path, model, optimizer) -> dict:
    """Restore the trainable weights and the optimizer from ``run_dir/checkpoint``; returns its state
    (``step``, ``data_position`` and the ``rng`` states for the caller to restore)."""
    state = checkpoint_state(run_dir)
    load_trainable(run_dir, model)
    optimizer.load_state_dict(torch.load(Path(run_dir) / CHECKPOINT / "optimizer.pt", map_location="cpu"))
    return state


# ---------------------------------------------------------------- evaluations
def _slug(dataset: str) -> str:
    """A file-name-safe name for a data set ("arith-test", or a file path's name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(dataset).name if "/" in dataset else dataset)


def eval_paths(directory: str | Path, dataset: str) -> tuple[Path, Path]:
    """``(eval_<set>.json, eval_<set>_records.jsonl)`` of ``dataset`` in ``directory``."""
    slug = _slug(dataset)
    return Path(directory) / f"eval_{slug}.json", Path(directory) / f"eval_{slug}_records.jsonl"


def write_eval(directory: str | Path, report: dict, *, dataset: str, **key) -> dict:
    """Store an ``evaluate.evaluate`` report of ``dataset``: ``eval_<set>.json`` holds the data set,
    ``key`` (what else identifies the evaluation: size, max_new_tokens, step, ...) and the metrics;
    ``eval_<set>_records.jsonl`` the records. Returns the summary written."""
    summary_path, records_path = eval_paths(directory, dataset)
    result = {"dataset": dataset, **key, **summary(report)}
    with records_path.open("w") as f:
        for record in report["records"]:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    summary_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def read_eval(directory: str | Path, dataset: str) -> tuple[dict, list[dict]]:
    """The stored evaluation of ``dataset`` in ``directory``: ``(summary, records)``."""
    summary_path, records_path = eval_paths(directory, dataset)
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path} does not exist: {dataset} was not evaluated in {directory}")
    records = [json.loads(line) for line in records_path.read_text().splitlines() if line.strip()]
    return json.loads(summary_path.read_text()), records


def write_report(report: dict, path: str | Path, **info) -> None:
    """The one-file export of an evaluation (``sar eval --json FILE``), outside any run folder:
    ``{"summary": ..., **info, "records": [...]}`` (``info``: model, dataset, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"summary": summary(report), **info, "records": report["records"]}
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")


def matching_eval(directory: str | Path, *, dataset: str, **key) -> dict | None:
    """The stored summary of ``dataset`` when it was made with ``key`` (every entry equal), else None."""
    summary_path, _ = eval_paths(directory, dataset)
    if not summary_path.is_file():
        return None
    stored = json.loads(summary_path.read_text())
    return stored if all(stored.get(k) == v for k, v in {"dataset": dataset, **key}.items()) else None


# ---------------------------------------------------------------- one trainer per folder
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by another user
        return True
    return True


@contextlib.contextmanager
def training_lock(run_dir: str | Path):
    """Hold ``run_dir/train.lock`` (this process's pid) while training: a second process on the same
    folder would interleave metrics.jsonl and overwrite the checkpoints, so it is refused. A lock
    left by a process that no longer exists is taken over. A folder this call created and that is
    still empty at the end (a run that failed to start) is removed."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / "train.lock"
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                text = lock.read_text().strip()
            except FileNotFoundError:   # its holder just finished: try again
                continue
            if not text.isdigit() or _pid_alive(int(text)):
                raise ValueError(f"{run_dir} is being trained by another process (pid {text or '?'}, see {lock}); "
                                 "wait for it to finish or stop it, or choose another --out") from None
            lock.unlink(missing_ok=True)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        if created and not any(run_dir.iterdir()):
            run_dir.rmdir()
