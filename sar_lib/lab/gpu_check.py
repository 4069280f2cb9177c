"""``sar gpu-check``: the prepared check for a CUDA machine without network (``scripts/gpu_check.sh``).

For each of :data:`GPU_CHECK_MODELS`: a randomly initialised model with the exact shape of
Qwen2.5-0.5B- or 1.5B-Instruct (``sar_lib/configs``), loaded 4-bit NF4 + LoRA r=16 through
``models.load_policy`` with the profile it is trained with, then a few SA-GRPO steps
(``bench.Stepper``: the trainer's own setup and step) at forced answer lengths, with peak memory,
step split and tokens/s; each model three ways (:data:`PATHS`): ``plain`` samples from the 4-bit
policy with ``generate`` and scores full sequences (the reference path, ``--no-engine``), ``copy``
samples from its 16-bit generation copy (``sar_lib.fast_generation``), ``engine`` samples from the
copy (where the profile has one) with the rollout engine and shares each prompt in scoring and update (``sar_lib.engine``); also
the log-prob memory probe (``sar_lib.lab.memory_probe``) on the GPU. Random weights measure memory and
time, not learning.
"""

from __future__ import annotations

import functools
import gc
import json
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from sar_lib.lab.bench import BenchSizes, Stepper, bench_tokenizer, format_value, step_config, step_summary
from sar_lib.lab.machine import machine_info
from sar_lib.lab.memory_probe import ProbeShape, measure_logprob_memory
from sar_lib.models import bnb_4bit_problem, get_profile, parameter_counts

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# The models of the GPU check: shipped config, the profile it is trained with, peak-memory target (GB).
GPU_CHECK_MODELS: dict[str, tuple[str, float]] = {
    "qwen2.5-0.5b-instruct": ("laptop-8gb", 3.0),
    "qwen2.5-1.5b-instruct": ("gpu-12gb", 5.0),
}
# The sampling paths of each model: GRPOConfig overrides. The entry of a path is "<model> <path>" ("<model>" for plain).
PATHS: dict[str, dict] = {
    "plain": dict(engine=False, fast_generation=False),
    "copy": dict(engine=False, fast_generation=True),
    "engine": dict(engine=True),   # from the copy where the profile samples from one (fast_generation)
}
MIN_MODEL_S = 90  # a model is not started with less time left: building, loading and one step take longer
STEP_KEYS = ("time/wall", "time/generate", "time/score", "time/sar", "time/update", "completions/mean_length",
             "completions/clipped_ratio", "sar/mean", "loss")


def random_model_dir(name: str, tokenizer, workdir: Path, device: str, *, shrink: bool = False) -> Path:
    """A randomly initialised model with the shapes of ``sar_lib/configs/<name>.json``, saved (bf16)
    with ``tokenizer`` into ``workdir/<name>``, so that ``models.load_policy`` reads it like a hub model.

    ``shrink``: the same architecture and vocabulary with 2 layers of width 64 (a CPU dry run).
    The tokenizer's ids are a prefix of the model's vocabulary; sampled ids beyond it decode to "".
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    path = CONFIG_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise FileNotFoundError(f"no shipped config {path.name}; choose one of {', '.join(known)}")
    values = json.loads(path.read_text())
    if shrink:
        values.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_window_layers=2)
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens, more than {name}'s vocabulary of {config.vocab_size}")
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    out = workdir / name
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return out


def _count_linear4bit(model) -> int:
    """How many of the model's linear layers hold NF4 weights (``bnb.nn.Linear4bit``; 0 without bitsandbytes)."""
    try:
        import bitsandbytes as bnb
    except Exception:  # absent, or a native library that fails to load
        return 0
    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def _gb(n_bytes: int) -> float:
    return round(n_bytes / 1e9, 3)


def _check_model(name: str, profile: str, target_gb: float, *, tokenizer, device: str, four_bit: bool,
                 sizes: BenchSizes, workdir: Path, deadline: float, record: Callable[[dict], None],
                 path_name: str = "plain") -> dict:
    """Build, load (NF4 + LoRA via ``load_policy``) and step one model on the sampling path
    ``path_name`` (:data:`PATHS`); ``record`` gets the partial result after every stage. Stops
    early, with ``stopped_early`` set, when the next step would pass ``deadline`` (judged by the
    last step's time)."""
    cuda = torch.device(device).type == "cuda"
    result: dict = {"status": "building", "profile": profile, "target_peak_gb": target_gb, "load_in_4bit": four_bit,
                    "path": path_name, **PATHS[path_name], "per_step": []}
    record(result)
    t0 = time.perf_counter()
    path = random_model_dir(name, tokenizer, workdir, device, shrink=not cuda)
    result.update(build_s=time.perf_counter() - t0, status="loading")
    record(result)
    config = step_config(str(path), sizes, reward="sar", profile=profile, load_in_4bit=four_bit,
                         micro_batch_size=get_profile(profile).micro_batch_size,  # the profile's: its memory budget
                         **PATHS[path_name])
    result["config"] = {k: getattr(config, k) for k in ("questions_per_step", "group_size", "max_new_tokens",
                                                        "micro_batch_size", "updates_per_step", "kl_coef", "lora_r")}
    result["fast_generation"] = config.fast_generation
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    stepper = Stepper(config, device, sizes.steps)
    try:
        result.update(load_s=time.perf_counter() - t0, status="stepping",
                      parameters=parameter_counts(stepper.model),
                      linear4bit_layers=_count_linear4bit(stepper.model),
                      load_peak_gb=_gb(torch.cuda.max_memory_allocated()) if cuda else None)
        record(result)
        _take_steps(stepper, result, sizes.steps, deadline=deadline, cuda=cuda, record=record)
    finally:
        stepper.close()
        shutil.rmtree(path, ignore_errors=True)
    return _summarised(result, config.questions_per_step * config.group_size, target_gb)


def _take_steps(stepper: Stepper, result: dict, steps: int, *, deadline: float, cuda: bool,
                record: Callable[[dict], None]) -> None:
    """Run up to ``steps`` steps, each row (:data:`STEP_KEYS`, and the step's peaks on CUDA) appended to
    ``result["per_step"]`` and recorded; stop, saying so, when the next step would end past ``deadline``."""
    for k in range(steps):
        last = result["per_step"][-1]["time/wall"] if result["per_step"] else 0.0
        if time.perf_counter() + last > deadline:
            result["stopped_early"] = f"time budget: {k} of {steps} steps done"
            break
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        metrics = stepper.step()
        row = {key: metrics.get(key) for key in STEP_KEYS}
        if cuda:
            row.update(peak_allocated_gb=_gb(torch.cuda.max_memory_allocated()),
                       peak_reserved_gb=_gb(torch.cuda.max_memory_reserved()))
        result["per_step"].append(row)
        record(result)


def _summarised(result: dict, n_answers: int, target_gb: float) -> dict:
    """``result`` with the step summary (``bench.step_summary`` of the steps after the first), the peak
    over the steps against ``target_gb``, and its final status."""
    steps = result["per_step"]
    timed = steps[1:] or steps  # the first step pays one-off costs (kernels, allocator)
    result.update(step_summary(timed, n_answers))
    peaks = [s["peak_allocated_gb"] for s in steps if "peak_allocated_gb" in s]
    result["peak_allocated_gb"] = max(peaks) if peaks else None
    result["meets_target"] = None if not peaks else result["peak_allocated_gb"] <= target_gb
    result["status"] = "ok" if steps else "incomplete"
    return result


@dataclass(frozen=True)
class _Settings:
    """What every model check of one :func:`gpu_check` shares."""

    device: str
    dry_run: bool
    four_bit: bool
    steps: int
    answer_tokens: int
    questions_per_step: int | None   # None: each profile's
    deadline: float                  # ``time.perf_counter()`` past which no step starts

    def sizes(self, profile: str) -> BenchSizes:
        """The steps' sizes for a model trained with ``profile``."""
        q = self.questions_per_step or get_profile(profile).questions_per_step
        return BenchSizes(questions_per_step=q, group_size=6, answer_tokens=self.answer_tokens, warmup_steps=0,
                          steps=self.steps)


class _ReportFile:
    """The check's report and the JSON file it is rewritten to after every stage, so that a check cut
    short (killed, out of time) still leaves what it measured."""

    def __init__(self, path: Path, report: dict, start: float):
        self.path, self.report, self.start = path, report, start

    def write(self) -> None:
        self.report["total_s"] = time.perf_counter() - self.start
        self.path.write_text(json.dumps(self.report, indent=2) + "\n")

    def record(self, name: str, partial: dict) -> None:
        """Store one model check's (partial) result under ``name`` and write the file."""
        self.report["models"][name] = partial
        self.write()


def gpu_check(json_path: str | Path, *, dry_run: bool = False, steps: int | None = None,
              answer_tokens: int | None = None, questions_per_step: int | None = None,
              time_budget_s: float = 420.0, command: str | None = None, progress: bool = True) -> dict:
    """The prepared GPU check (module docstring), written to ``json_path`` after every stage.

    For each of :data:`GPU_CHECK_MODELS`: a random model of the shipped config's exact shape, loaded
    4-bit NF4 + LoRA r=16 by ``models.load_policy`` with its profile (laptop-8gb / gpu-12gb),
    then ``steps`` (2) SA-GRPO steps (``grpo.grpo_step``) at G = 6 with ``answer_tokens`` (512)
    answer tokens, eos suppressed, ``questions_per_step`` from the profile (8); each on every path
    of :data:`PATHS` (entries ``"<model>"``, ``"<model> copy"``, ``"<model> engine"``;
    ``paths_vs_plain``: each path's step and generation time over the plain path's, tokens/s and
    peaks side by side; the target is a step at most 0.4x the plain one). Recorded per model and path:
    peak allocated memory (per step; the target applies to the max), load time and peak, step
    split, tokens/s (medians over the steps after the first), the 4-bit layer count. Also
    ``logprob_memory`` (:func:`measure_logprob_memory`) on the device. A model that fails gets
    ``status: "error"`` and its traceback; the others still run. ``time_budget_s`` bounds the whole
    check: a step that would end past it (judged by the model's previous step) is not started, nor
    a model with under :data:`MIN_MODEL_S` seconds left. ``ok`` judges the path each profile uses.

    ``dry_run``: the same code on CPU, for testing without a GPU: models shrunk to 2 layers of width
    64 (vocabulary kept), NF4 when bitsandbytes runs on this CPU, fewer and shorter steps
    (2 steps, 16 tokens, 2 questions unless given); peaks are not measured (None).
    """
    device = "cpu" if dry_run else "cuda"
    if not dry_run and not torch.cuda.is_available():
        raise ValueError(f"the GPU check needs a CUDA GPU and torch {torch.__version__} sees none; "
                         "use --dry-run to run its code path on CPU")
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    bnb_problem = bnb_4bit_problem(device)
    settings = _Settings(device=device, dry_run=dry_run,
                         four_bit=bnb_problem is None,   # without bitsandbytes the check still runs (bf16), and says so
                         steps=2 if steps is None else steps,   # the first step pays one-off costs; the second is timed
                         answer_tokens=answer_tokens if answer_tokens is not None else (16 if dry_run else 512),
                         questions_per_step=questions_per_step if questions_per_step is not None else
                         (2 if dry_run else None), deadline=start + time_budget_s)
    out = _ReportFile(json_path, {
        "kind": "gpu check", "dry_run": dry_run, "machine": machine_info(device, command),
        "settings": {"steps": settings.steps, "group_size": 6, "answer_tokens": settings.answer_tokens,
                     "questions_per_step": settings.questions_per_step or "profile", "eos_suppressed": True,
                     "load_in_4bit": settings.four_bit, "bnb_problem": bnb_problem, "time_budget_s": time_budget_s},
        "logprob_memory": None, "models": {}, "ok": False, "total_s": None}, start)
    out.write()
    out.report["logprob_memory"] = _logprob_memory(settings)
    out.write()
    _check_models(out, settings, progress)
    report = out.report
    report["paths_vs_plain"] = paths_vs_plain(report["models"])
    used = [r for r in report["models"].values() if r["path"] == "engine"]   # the path training takes
    report["ok"] = (settings.four_bit or dry_run) and all(r.get("status") == "ok" and r.get("meets_target") is not False
                                                          for r in used)
    out.write()
    return report


def _logprob_memory(settings: _Settings) -> dict:
    """The log-prob memory probe on the check's device, or the error it raised."""
    try:
        return measure_logprob_memory(ProbeShape(answer_tokens=64) if settings.dry_run else ProbeShape(),
                                      device=settings.device)
    except Exception as err:  # record and go on: the model checks matter more
        return {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}


def _check_models(out: _ReportFile, settings: _Settings, progress: bool) -> None:
    """Every model of :data:`GPU_CHECK_MODELS` on every path of :data:`PATHS`, each recorded in ``out``."""
    tokenizer = bench_tokenizer()
    with tempfile.TemporaryDirectory(prefix="sar-gpu-check-") as tmp:
        checks = [(name, profile, target, path) for name, (profile, target) in GPU_CHECK_MODELS.items()
                  for path in PATHS]
        for model_name, profile_name, target_gb, path in tqdm(checks, desc="gpu check", disable=not progress):
            name = model_name if path == "plain" else f"{model_name} {path}"
            record = functools.partial(out.record, name)
            if not settings.dry_run and settings.deadline - time.perf_counter() < MIN_MODEL_S:
                record({"status": "skipped", "profile": profile_name, "path": path, **PATHS[path],
                        "error": f"time budget: under {MIN_MODEL_S} s left"})
                continue
            try:
                record(_check_model(model_name, profile_name, target_gb, tokenizer=tokenizer, device=settings.device,
                                    four_bit=settings.four_bit, sizes=settings.sizes(profile_name), workdir=Path(tmp),
                                    deadline=settings.deadline, record=record, path_name=path))
            except Exception as err:  # e.g. out of memory: record it, free memory, check the next model
                failed = out.report["models"].get(name, {})
                failed.update(status="error", error=f"{type(err).__name__}: {err}",
                              traceback=traceback.format_exc()[-6000:])
                record(failed)
            gc.collect()
            if not settings.dry_run:
                torch.cuda.empty_cache()


STEP_RATIO_TARGET = 0.4   # a whole SA-GRPO step of the engine path, over the plain path's


def paths_vs_plain(models: dict) -> dict:
    """Per model and non-plain path that ran: ``"<model> <path>": {step_ratio, generate_ratio (path /
    plain), tokens_per_s and peak_allocated_gb ([plain, path]), meets_target (step_ratio <= 0.4)}``."""
    out = {}
    for name, plain in models.items():
        if plain.get("path") != "plain" or plain.get("status") != "ok":
            continue
        for path in PATHS:
            other = models.get(f"{name} {path}")
            if path == "plain" or not other or other.get("status") != "ok":
                continue
            ratio = other["time_step"] / plain["time_step"]
            out[f"{name} {path}"] = {
                "step_ratio": ratio, "generate_ratio": other["time_generate"] / plain["time_generate"],
                "tokens_per_s": [plain["generation_tokens_per_s"], other["generation_tokens_per_s"]],
                "peak_allocated_gb": [plain["peak_allocated_gb"], other["peak_allocated_gb"]],
                "meets_target": ratio <= STEP_RATIO_TARGET}
    return out


def format_gpu_check(report: dict) -> str:
    """The GPU check's report as a plain-text table, one row per model."""
    m = report["machine"]
    lines = [f"gpu check{' (dry run, CPU)' if report['dry_run'] else ''}: {m.get('gpu') or m['cpu']}, "
             f"torch {m['versions']['torch']}, {m['date']}",
             f"{'model':<24}{'status':<8}{'peak GB':>8}{'target':>7}{'step s':>8}{'gen s':>7}{'score s':>8}"
             f"{'sar s':>7}{'upd s':>7}{'tok/s':>8}"]
    for name, r in report["models"].items():
        cells = [(r.get(key), width) for key, width in (("peak_allocated_gb", 8), ("target_peak_gb", 7), ("time_step", 8),
                                                        ("time_generate", 7), ("time_score", 8), ("time_sar", 7),
                                                        ("time_update", 7))]
        lines.append(f"{name:<24}{r.get('status', '?'):<8}" + "".join(f"{format_value(v):>{w}}" for v, w in cells)
                     + f"{format_value(r.get('generation_tokens_per_s'), 4):>8}")
        if r.get("error"):
            lines.append(f"  error: {r['error']}")
        if r.get("stopped_early"):
            lines.append(f"  stopped early: {r['stopped_early']}")
    memory = report.get("logprob_memory") or {}
    if "logprob_memory_ratio" in memory:
        lines.append(f"logprob_memory_ratio {memory['logprob_memory_ratio']:.3f} "
                     f"({memory['chunked_peak_mb']:.0f} MB chunked / {memory['naive_peak_mb']:.0f} MB naive)")
    elif memory.get("error"):
        lines.append(f"logprob memory: error: {memory['error']}")
    for name, r in (report.get("paths_vs_plain") or {}).items():
        lines.append(f"{name}: {r['step_ratio']:.2f}x the plain step time (target <= {STEP_RATIO_TARGET}), "
                     f"{r['generate_ratio']:.2f}x its sampling, peak {r['peak_allocated_gb'][1]} GB vs "
                     f"{r['peak_allocated_gb'][0]} GB")
    lines.append(f"ok: {report['ok']}, total {report['total_s']:.0f} s")
    return "\n".join(lines)
