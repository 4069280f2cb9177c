"""Benchmarks: what SAR costs in a GRPO step, how our step compares with TRL's, and memory.

Every figure is measured at **forced answer lengths** (eos suppressed, ``generation.generate(...,
suppress_eos=True)``), so two variants of a step do the same amount of work whatever they sample:

* ``sar_overhead_ratio = median_k t_step,k(SA-GRPO) / t_step,k(GRPO)``: one training step
  (``grpo.grpo_step``) with reward ``"sar"`` against the same step with reward ``"none"`` and no SAR
  logging; same model, seed, questions and lengths; the two policies' steps alternate, so that
  the k-th pair are neighbours in time and a load that comes and goes slows both alike. SAR's only
  extra work is one no-grad forward over ctx(0)+a (SAR.md §1), so the step's own timer also gives
  ``t_step / (t_step - t_sar)`` as a cross-check.
* ``trl_step_ratio = median_k t_step,k(ours) / t_cycle,k(TRL)``: TRL's ``GRPOTrainer`` with the same
  model, LoRA, questions, group size, lengths, KL coefficient, micro-batch, two optimiser updates
  per generation batch, and the same reward R_VR + 0.2 R_SA (``sar_lib.integrations.trl``), our
  steps and TRL's alternating in one run. A TRL "cycle" is one generation batch and its two
  optimiser steps, the work of one of our steps.
* ``logprob_memory_ratio = peak(answer_logprobs) / peak(naive)`` for B answers of T tokens with a
  V = 151,936 vocabulary (Qwen2.5's). Naive: the answer positions' logits ``[B, T, V]`` at once,
  then an fp32 log-softmax over the full vocabulary. Ours: the same decoder, then
  ``perplexity.answer_logprobs``, 256 rows at a time. The model is a random Qwen2 with a 64-wide
  hidden state, so the vocabulary projection dominates, as in a real model's scoring. Peak = bytes
  above the level before the call: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU each
  variant runs in a fresh process and the peak is its ``ru_maxrss`` above its resident set size.
* ``generation_tokens_per_s`` and the step split ``time_generate`` / ``time_score`` / ``time_update``:
  medians over the SA-GRPO steps (``time_score`` includes SAR's pass, reported alone as ``time_sar``).

:func:`gpu_check` is the prepared check for a CUDA machine without network
(``scripts/gpu_check.sh``): randomly initialised models with the exact shapes of Qwen2.5-0.5B- and
1.5B-Instruct (``sar_lib/configs``), loaded 4-bit NF4 + LoRA r=16 through ``models.load_policy``,
a few SA-GRPO steps each, with peak memory, step split and tokens/s.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from sar_lib.perplexity import PackedBatch, answer_logprobs, pack_sequences

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
QWEN_VOCAB = 151936  # Qwen2.5's vocabulary (sar_lib/configs/*.json)

# The models of the GPU check: shipped config, the profile it is trained with, peak-memory target (GB).
GPU_CHECK_MODELS: dict[str, tuple[str, float]] = {
    "qwen2.5-0.5b-instruct": ("laptop-8gb", 3.0),
    "qwen2.5-1.5b-instruct": ("gpu-12gb", 5.0),
}


# ---------------------------------------------------------------- sizes
@dataclass(frozen=True)
class BenchSizes:
    """The sizes of one ``sar bench`` run.

    A step: ``questions_per_step`` questions, ``group_size`` answers each, every answer exactly
    ``answer_tokens`` tokens, two optimiser updates of half the questions each, micro-batches of
    ``questions_per_step * group_size / 2`` answers. ``warmup_steps`` untimed steps come first.
    Memory: ``memory_batch`` answers of ``memory_answer_tokens`` tokens after ``memory_context_tokens``
    context tokens, vocabulary ``vocab_size``.
    """

    questions_per_step: int = 4
    group_size: int = 6
    answer_tokens: int = 192      # the tiny-cpu profile's answer budget
    warmup_steps: int = 1
    steps: int = 5
    trl_cycles: int = 3
    vocab_size: int = QWEN_VOCAB
    memory_batch: int = 6
    memory_answer_tokens: int = 512
    memory_context_tokens: int = 32
    chunk_size: int = 256

    def __post_init__(self):
        small = [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                 if getattr(self, f.name) < (0 if f.name == "warmup_steps" else 1)]
        if self.group_size < 2:
            small.append(f"group_size={self.group_size} (GRPO needs >= 2)")
        if self.questions_per_step % 2:
            small.append(f"questions_per_step={self.questions_per_step} (two updates of whole groups: use an even number)")
        if small:
            raise ValueError(f"invalid benchmark sizes: {', '.join(small)}")


FULL = BenchSizes()
QUICK = BenchSizes(questions_per_step=2, answer_tokens=32, steps=2, trl_cycles=1, memory_answer_tokens=128)


# ---------------------------------------------------------------- machine and timing helpers
def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine_info(device: str, command: str | None = None) -> dict:
    """Where and when a benchmark ran: CPU/GPU, cores, library versions, UTC date, load average."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else " ".join(sys.argv),
        "device": device,
        "cpu": _cpu_name(),
        "cpu_cores": cores,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: _version(p) for p in ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate")},
    }
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 1e9, 1),
                    cuda=torch.version.cuda)
    return info


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _check_device(device: str) -> None:
    if torch.device(device).type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device cuda requested but torch {torch.__version__} sees no CUDA GPU; use --device cpu")


# ---------------------------------------------------------------- the benchmark model
def bench_tokenizer():
    """The shipped tiny reasoner's tokenizer, or (not shipped yet) one trained in seconds on the
    synthetic corpus with the same vocabulary size."""
    from sar_lib import models
    from sar_lib.pretrain import PretrainConfig
    from sar_lib.sar import INSTRUCTION, SYSTEM_PROMPT
    from sar_lib.synthetic import training_corpus
    from sar_lib.tokenizer import load_tokenizer, train_tokenizer

    if (models.TINY_DIR / "tokenizer.json").is_file():
        return load_tokenizer(models.TINY_DIR)
    texts = [f"{SYSTEM_PROMPT}\n{p.question} {INSTRUCTION}\n{answer}" for p, answer in training_corpus(2000, 0)]
    return train_tokenizer(texts, vocab_size=PretrainConfig().vocab_size)


def bench_model(workdir: Path) -> tuple[str, str]:
    """``(model, description)`` for ``GRPOConfig.model``: ``"tiny"`` when the tiny reasoner is shipped,
    else a random model of its exact shape (``pretrain.PretrainConfig``) saved in ``workdir``.

    Timings depend on shapes, not on weights: at forced answer lengths both do the same work.
    """
    from sar_lib import models
    from sar_lib.pretrain import MAX_POSITIONS, PretrainConfig

    try:
        models.resolve_model("tiny")
        return "tiny", "the shipped tiny reasoner (sar_lib/assets/tiny)"
    except FileNotFoundError:
        pass
    tokenizer = bench_tokenizer()
    shape = PretrainConfig()
    model = models.build_tiny_model(len(tokenizer), hidden_size=shape.hidden_size, num_layers=shape.num_layers,
                                    num_heads=shape.num_heads, num_kv_heads=shape.num_kv_heads,
                                    intermediate_size=shape.intermediate_size, max_positions=MAX_POSITIONS,
                                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    path = workdir / "tiny-shaped-random"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    n = sum(p.numel() for p in model.parameters())
    return str(path), (f"a random model of the tiny reasoner's shape ({n / 1e6:.1f}M parameters; "
                       "sar_lib/assets/tiny was not shipped yet)")


# ---------------------------------------------------------------- GRPO steps
def step_config(model: str, sizes: BenchSizes, *, reward: str = "sar", profile: str = "tiny-cpu", **overrides):
    """The ``GRPOConfig`` of a benchmark step (resolved): forced lengths, ``sizes``' batch shape."""
    from sar_lib.grpo import GRPOConfig

    values = dict(profile=profile, model=model, reward=reward, log_sar=reward != "none",
                  group_size=sizes.group_size, questions_per_step=sizes.questions_per_step, updates_per_step=2,
                  max_new_tokens=sizes.answer_tokens,
                  micro_batch_size=sizes.questions_per_step * sizes.group_size // 2,
                  suppress_eos=True, progress=False, out=os.devnull)
    values.update(overrides)
    return GRPOConfig(**values).resolved()


def step_problems(config, n_steps: int) -> list[list]:
    """The questions of steps 1..``n_steps`` of a run with ``config``, picked as ``grpo.train`` picks
    them (``grpo.step_questions``) from ``questions_per_step * n_steps`` training problems."""
    from sar_lib.data import load_problems
    from sar_lib.grpo import step_questions

    pool = load_problems(config.train_dataset, limit=config.questions_per_step * n_steps, seed=0)
    return [[pool[i] for i in step_questions(len(pool), config.questions_per_step, config.seed, step)]
            for step in range(1, n_steps + 1)]


class Stepper:
    """A policy loaded as ``grpo.train`` loads it, its optimizer and the questions of ``n_steps``
    steps, to run timed ``grpo.grpo_step`` calls one by one."""

    def __init__(self, config, device: str, n_steps: int):
        from sar_lib.grpo import policy_profile, seed_everything
        from sar_lib.models import load_policy
        from sar_lib.sar import empty_prompt_text, encode_text

        self.config, self.device = config, device
        self.problems = step_problems(config, n_steps)
        seed_everything(config.seed)  # the LoRA initialisation
        self.model, self.tokenizer = load_policy(config.model, policy_profile(config), device=device)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.ctx0_ids = encode_text(self.tokenizer, empty_prompt_text(self.tokenizer))
        self.steps_done = 0

    def step(self) -> dict:
        """The next ``grpo_step``: its metrics plus ``time/wall`` (the whole call, device synchronised)."""
        from sar_lib.grpo import grpo_step

        if self.steps_done == len(self.problems):
            raise ValueError(f"this Stepper was prepared for {len(self.problems)} steps")
        self.steps_done += 1
        _sync(self.device)
        t0 = time.perf_counter()
        metrics = grpo_step(self.model, self.tokenizer, self.optimizer, self.problems[self.steps_done - 1],
                            self.config, step=self.steps_done, ctx0_ids=self.ctx0_ids)
        _sync(self.device)
        metrics["time/wall"] = time.perf_counter() - t0
        return metrics

    def close(self) -> None:
        """Free the model and optimizer (and the CUDA cache)."""
        self.model = self.optimizer = None
        gc.collect()
        if torch.device(self.device).type == "cuda":
            torch.cuda.empty_cache()


def step_summary(steps: list[dict], n_answers: int) -> dict:
    """Medians over timed steps: wall time, split, generated tokens/s, answer length, truncation."""
    def med(key: str) -> float | None:
        return _median([s[key] for s in steps if s.get(key) is not None])

    return {
        "steps_timed": len(steps),
        "time_step": med("time/wall"),
        "time_generate": med("time/generate"),
        "time_score": med("time/score"),
        "time_sar": med("time/sar"),
        "time_update": med("time/update"),
        "generation_tokens_per_s": _median([s["length/mean"] * n_answers / s["time/generate"] for s in steps]),
        "answer_length_mean": med("length/mean"),
        "truncation_rate": med("truncation_rate"),
    }


def measure_sar_overhead(model: str, sizes: BenchSizes, *, device: str = "cpu", progress: bool = False) -> dict:
    """SA-GRPO against plain GRPO steps at equal, forced answer lengths (see the module docstring).

    Two policies load identically (same seed, same LoRA init); step k of each has the same questions
    and sampling seed. Their steps alternate, in swapped order every other pair, after
    ``sizes.warmup_steps`` untimed pairs. ``sar_overhead_ratio = median_k t_sar,k / t_grpo,k`` over
    the pairs (neighbours in time, so a load that comes and goes cancels out); also returned: the
    ratio of the medians, the estimate ``median_k t_step / (t_step - t_sar)`` from the SA-GRPO
    steps' own timers, the step times of both and their summaries (:func:`step_summary`).
    """
    n_total = sizes.warmup_steps + sizes.steps
    runs = {"sar": Stepper(step_config(model, sizes, reward="sar"), device, n_total),
            "none": Stepper(step_config(model, sizes, reward="none"), device, n_total)}
    timed: dict[str, list[dict]] = {"sar": [], "none": []}
    try:
        for k in tqdm(range(n_total), desc="SA-GRPO / GRPO steps", disable=not progress):
            for name in (("sar", "none") if k % 2 == 0 else ("none", "sar")):
                metrics = runs[name].step()
                if k >= sizes.warmup_steps:
                    timed[name].append(metrics)
    finally:
        for stepper in runs.values():
            stepper.close()
    n_answers = sizes.questions_per_step * sizes.group_size
    with_sar = [m["time/wall"] for m in timed["sar"]]
    without = [m["time/wall"] for m in timed["none"]]
    return {
        "sar_overhead_ratio": _median([a / b for a, b in zip(with_sar, without)]),
        "sar_overhead_ratio_of_medians": _median(with_sar) / _median(without),
        "sar_overhead_ratio_from_step_timer": _median([m["time/step"] / (m["time/step"] - m["time/sar"])
                                                       for m in timed["sar"]]),
        "step_s_sar": with_sar,
        "step_s_grpo": without,
        "sar_steps": step_summary(timed["sar"], n_answers),
        "grpo_steps": step_summary(timed["none"], n_answers),
    }


# ---------------------------------------------------------------- TRL
def measure_trl_ratio(model: str, sizes: BenchSizes, *, device: str = "cpu", workdir: Path) -> dict:
    """``trl_step_ratio = median_k t_ours,k / t_trl,k``: our SA-GRPO steps against TRL
    ``GRPOTrainer`` cycles set up alike, alternating in one run. Raises ImportError without TRL.

    A TRL cycle is one generation batch and its two optimiser steps (``steps_per_generation=2``), the
    work of one of our steps. At the start of every cycle (``on_step_begin`` of an odd step) a
    callback first runs one of our steps (``torch`` RNG forked, so TRL's sampling stream is
    untouched), then starts the cycle's clock; the next cycle's callback stops it. Step k and
    cycle k are neighbours in time, so a load that comes and goes slows both; the first
    ``sizes.warmup_steps`` pairs are not counted.
    The same in both: base model and LoRA (the profile's), questions (our steps', in order:
    ``shuffle_dataset=False``), G, answer length (``min_new_tokens`` = ``max_completion_length`` and
    eos in ``suppress_tokens``: the logits processors of ``generate(..., suppress_eos=True)``),
    temperature 1, top_p 1, no top-k, KL coefficient (``beta``, reference = adapters disabled), PPO
    clip, learning rate, weight decay, grad clip, micro-batch of Q*G/2 answers, loss ``dr_grpo``
    without std scaling, and the reward R_VR + 0.2 R_SA (``integrations.trl``; TRL gives reward
    functions no log-probs, so ppl(a|q) costs its own pass there).
    """
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback, TrainerCallback

    from sar_lib.grpo import policy_profile
    from sar_lib.integrations import trl as sar_trl
    from sar_lib.models import load_model

    config = step_config(model, sizes, reward="sar")
    n_cycles = sizes.warmup_steps + sizes.trl_cycles
    ours = Stepper(config, device, n_cycles)
    problems = [p for step in ours.problems for p in step]
    kinds = sorted({p.kind for p in problems})
    if len(kinds) != 1:
        raise ValueError(f"the training set mixes answer kinds {kinds}; the TRL comparison grades one kind")
    rows = [{"prompt": sar_trl.paper_messages(p.question), "answer": p.gold} for p in problems]
    base, tokenizer = load_model(config.model, device=device)
    configured = base.generation_config.eos_token_id
    eos_ids = {tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])}

    class Alternate(TrainerCallback):
        def __init__(self):
            self.ours: list[float] = []
            self.trl: list[float] = []
            self.cycle_start: float | None = None

        def _close_cycle(self) -> None:
            _sync(device)
            if self.cycle_start is not None:
                self.trl.append(time.perf_counter() - self.cycle_start)

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step % 2:  # the second optimiser step of a cycle
                return
            self._close_cycle()
            with torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.device(device).type == "cuda"
                                       else []):
                self.ours.append(ours.step()["time/wall"])
            self.cycle_start = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self._close_cycle()

    M = config.micro_batch_size
    args = trl.GRPOConfig(
        output_dir=str(workdir / "trl"), max_steps=2 * n_cycles, per_device_train_batch_size=M,
        gradient_accumulation_steps=1, steps_per_generation=2, num_generations=config.group_size,
        max_completion_length=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p, top_k=0,
        generation_kwargs={"min_new_tokens": config.max_new_tokens, "suppress_tokens": sorted(eos_ids - {None})},
        beta=config.kl_coef, epsilon=config.clip_eps_low, epsilon_high=config.clip_eps_high,
        loss_type="dr_grpo", scale_rewards="none", learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm, lr_scheduler_type="constant",
        shuffle_dataset=False, reward_weights=[1.0, config.alpha], seed=config.seed,
        bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=torch.device(device).type == "cpu",
        report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True)
    profile = policy_profile(config)
    lora = LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=profile.lora_dropout,
                      target_modules=list(profile.target_modules), bias="none", task_type="CAUSAL_LM")
    timer = Alternate()
    try:
        trainer = trl.GRPOTrainer(model=base, processing_class=tokenizer, args=args, peft_config=lora,
                                  train_dataset=Dataset.from_list(rows), callbacks=[timer],
                                  reward_funcs=[sar_trl.correctness_reward(kind=kinds[0]),
                                                sar_trl.SARReward(batch_size=M)])
        trainer.remove_callback(PrinterCallback)  # logs are read from state.log_history, not printed
        sar_trl.attach(trainer)
        trainer.train()
        lengths = [log["completions/mean_length"] for log in trainer.state.log_history
                   if "completions/mean_length" in log]
    finally:
        ours.close()
    skip = sizes.warmup_steps
    pairs = list(zip(timer.ours[skip:], timer.trl[skip:]))
    return {"trl_step_ratio": _median([a / b for a, b in pairs]), "ours_step_s": [a for a, _ in pairs],
            "trl_cycle_s": [b for _, b in pairs], "trl_completion_length_mean": _median(lengths),
            "trl_version": trl.__version__}


# ---------------------------------------------------------------- log-prob memory
def naive_answer_logprobs(model, batch: PackedBatch) -> torch.Tensor:
    """The computation ``perplexity.answer_logprobs`` replaces (the baseline of ``logprob_memory_ratio``).

    ``z = logits`` of the T answer-predicting positions, ``[B, T, V]`` at once (``logits_to_keep``);
    ``log_softmax(z.float())`` over the full vocabulary, ``[B, T, V]`` fp32; then the answer tokens'
    entries. Returns ``[B, T]`` fp32, 0 where ``answer_mask`` is False.
    """
    device = model.get_input_embeddings().weight.device
    T = batch.answer_mask.shape[1]
    logits = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                   position_ids=batch.position_ids.to(device), logits_to_keep=T + 1, use_cache=False).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token = logp.gather(-1, batch.answer_ids.to(device).unsqueeze(-1)).squeeze(-1)
    return token * batch.answer_mask.to(device)


def _chunked(model, batch: PackedBatch, chunk_size: int) -> torch.Tensor:
    return answer_logprobs(model, batch, chunk_size=chunk_size).logprobs


def _probe_inputs(sizes: BenchSizes, device: str):
    """A random Qwen2 with a 64-wide hidden state and ``sizes.vocab_size`` tokens (bf16 on CUDA, fp32
    on CPU: the dtypes a policy scores in), a random batch of ``sizes``' shape and a 1-answer one."""
    from sar_lib.models import build_tiny_model

    P, T, B = sizes.memory_context_tokens, sizes.memory_answer_tokens, sizes.memory_batch
    model = build_tiny_model(sizes.vocab_size, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                             intermediate_size=128, max_positions=P + T + 1, seed=0)
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    model = model.to(device=device, dtype=dtype)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(sizes.vocab_size, (B, P + T), generator=generator).tolist()
    batch = pack_sequences([row[:P] for row in ids], [row[P:] for row in ids], pad_token_id=0)
    small = pack_sequences([ids[0][:P]], [ids[0][P:P + 8]], pad_token_id=0)
    return model, batch, small


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _memory_probe(variant: str, sizes: dict, device: str, threads: int | None = None) -> dict:
    """Peak memory of one scoring variant ("chunked" | "naive"), in bytes above the level before it.

    CUDA: ``max_memory_allocated`` above ``memory_allocated``. CPU (run in a fresh process):
    ``ru_maxrss`` after the call above the resident set size before it; ``peak_valid`` is False when
    the call did not raise ``ru_maxrss`` (an earlier peak hid it).
    """
    import psutil

    if threads is not None:
        torch.set_num_threads(threads)
    sizes = BenchSizes(**sizes)
    model, batch, small = _probe_inputs(sizes, device)
    score: Callable = naive_answer_logprobs if variant == "naive" else \
        (lambda m, b: _chunked(m, b, sizes.chunk_size))
    cuda = torch.device(device).type == "cuda"
    with torch.no_grad():
        score(model, small)  # kernels and lazy buffers are set up outside the measurement
        gc.collect()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            before, earlier_peak = psutil.Process().memory_info().rss, _maxrss_bytes()
        t0 = time.perf_counter()
        logprobs = score(model, batch)
        _sync(device)
        seconds = time.perf_counter() - t0
        if cuda:
            peak, valid = torch.cuda.max_memory_allocated() - before, True
        else:
            peak, valid = _maxrss_bytes() - before, _maxrss_bytes() > earlier_peak
    return {"peak_bytes": peak, "peak_valid": valid, "seconds": seconds,
            "logprob_sum": float(logprobs.double().sum())}


def measure_logprob_memory(sizes: BenchSizes, *, device: str = "cpu") -> dict:
    """``logprob_memory_ratio``: peak memory of ``answer_logprobs`` over the naive full-vocabulary
    log-softmax (:func:`naive_answer_logprobs`) on the same model and batch (module docstring).

    CPU: each variant in a fresh (spawned) process with this process's torch thread count, so the
    two peaks cannot mask each other.
    ``logprobs_agree``: both variants' sums of answer log-probs match (rel. 1e-4 fp32, 1e-2 bf16).
    """
    _check_device(device)
    args = dataclasses.asdict(sizes)
    probes = {}
    for variant in ("chunked", "naive"):
        if torch.device(device).type == "cuda":
            probes[variant] = _memory_probe(variant, args, device)
            gc.collect()
            torch.cuda.empty_cache()
        else:
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                probes[variant] = pool.submit(_memory_probe, variant, args, device, torch.get_num_threads()).result()
    chunked, naive = probes["chunked"], probes["naive"]
    tolerance = 1e-2 if torch.device(device).type == "cuda" else 1e-4
    return {
        "logprob_memory_ratio": chunked["peak_bytes"] / naive["peak_bytes"],
        "chunked_peak_mb": chunked["peak_bytes"] / 2**20,
        "naive_peak_mb": naive["peak_bytes"] / 2**20,
        "chunked_s": chunked["seconds"],
        "naive_s": naive["seconds"],
        "peaks_valid": chunked["peak_valid"] and naive["peak_valid"],
        "logprobs_agree": math.isclose(chunked["logprob_sum"], naive["logprob_sum"], rel_tol=tolerance),
        "method": ("torch.cuda.max_memory_allocated above memory_allocated" if torch.device(device).type == "cuda"
                   else "fresh process per variant: ru_maxrss above the resident set size before the call"),
        "shape": {"batch": sizes.memory_batch, "answer_tokens": sizes.memory_answer_tokens,
                  "context_tokens": sizes.memory_context_tokens, "vocab": sizes.vocab_size,
                  "chunk_size": sizes.chunk_size, "hidden_size": 64},
    }


# ---------------------------------------------------------------- sar bench
TARGETS = {"sar_overhead_ratio": 1.10, "trl_step_ratio": 1.0, "logprob_memory_ratio": 0.3}  # upper bounds


def run_bench(*, device: str = "cpu", sizes: BenchSizes = FULL, threads: int | None = 1, with_trl: bool = True,
              command: str | None = None, progress: bool = True) -> dict:
    """All ``sar bench`` figures (module docstring) in one run; returns the JSON-ready result.

    Order: log-prob memory, SA-GRPO vs GRPO steps, SA-GRPO steps vs TRL cycles. Without TRL installed (or ``with_trl=False``) ``trl_step_ratio`` is None and ``trl.error`` says why.
    ``threads``: torch CPU threads (None: torch's default). One by default: the tiny model's
    matrices are too small to gain from more, and with other processes on the cores, several
    threads per process wait on each other and make step times erratic (measured: 2-25 s for a
    step that takes 1.9 s with one thread on a 2-core machine under load).
    """
    _check_device(device)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_bench(device, sizes, with_trl, command, progress)
    finally:
        torch.set_num_threads(previous_threads)


def _run_bench(device: str, sizes: BenchSizes, with_trl: bool, command: str | None, progress: bool) -> dict:
    start = time.perf_counter()
    result: dict = {"kind": "sar bench", "machine": machine_info(device, command), "sizes": dataclasses.asdict(sizes),
                    "targets": TARGETS}
    bar = tqdm(total=3, desc="sar bench", disable=not progress)
    memory = measure_logprob_memory(sizes, device=device)
    bar.update()
    with tempfile.TemporaryDirectory(prefix="sar-bench-") as tmp:
        model, result["model"] = bench_model(Path(tmp))
        overhead = measure_sar_overhead(model, sizes, device=device)
        bar.update()
        trl_result: dict = {"error": "skipped (with_trl=False)"}
        if with_trl:
            try:
                trl_result = measure_trl_ratio(model, sizes, device=device, workdir=Path(tmp))
            except ImportError as err:
                trl_result = {"error": f"TRL is not installed ({err}): pip install 'sar-lib[trl]'"}
        bar.update()
    bar.close()
    sar_steps = overhead["sar_steps"]
    result.update({
        "sar_overhead_ratio": overhead["sar_overhead_ratio"],
        "trl_step_ratio": trl_result.get("trl_step_ratio"),
        "logprob_memory_ratio": memory["logprob_memory_ratio"],
        "generation_tokens_per_s": sar_steps["generation_tokens_per_s"],
        "time_generate": sar_steps["time_generate"],
        "time_score": sar_steps["time_score"],
        "time_update": sar_steps["time_update"],
        "time_sar": sar_steps["time_sar"],
        "time_step": sar_steps["time_step"],
        "details": {"overhead": overhead, "trl": trl_result, "memory": memory},
    })
    result["meets_targets"] = {key: None if result[key] is None else result[key] <= bound
                               for key, bound in TARGETS.items()}
    result["total_s"] = time.perf_counter() - start
    result["machine"]["load_average_1min_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return result


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def format_table(result: dict) -> str:
    """The ``sar bench`` result as a plain-text table."""
    m = result["machine"]
    where = m.get("gpu") or f"{m['cpu']} ({m['cpu_cores']} cores)"
    lines = [f"sar bench on {m['device']}: {where}, torch {m['versions']['torch']}, {m['date']}",
             f"model: {result['model']}",
             f"{'figure':<26}{'value':>10}  {'target':<9}{'met':<4}"]
    for key in ("sar_overhead_ratio", "trl_step_ratio", "logprob_memory_ratio"):
        met = result["meets_targets"][key]
        lines.append(f"{key:<26}{_fmt(result[key]):>10}  <= {TARGETS[key]:<6}{'-' if met is None else 'yes' if met else 'NO'}")
    lines.append(f"{'generation_tokens_per_s':<26}{_fmt(result['generation_tokens_per_s'], 4):>10}")
    for key in ("time_step", "time_generate", "time_score", "time_sar", "time_update"):
        lines.append(f"{key + ' (s)':<26}{_fmt(result[key]):>10}")
    trl = result["details"]["trl"]
    if "error" in trl:
        lines.append(f"TRL: {trl['error']}")
    lines.append(f"total {result['total_s']:.0f} s")
    return "\n".join(lines)


# ---------------------------------------------------------------- the prepared GPU check
MIN_MODEL_S = 90  # a model is not started with less time left: building, loading and one step take longer
STEP_KEYS = ("time/wall", "time/generate", "time/score", "time/sar", "time/update", "length/mean", "truncation_rate",
             "sar/mean", "loss")


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
                 sizes: BenchSizes, workdir: Path, deadline: float, record: Callable[[dict], None]) -> dict:
    """Build, load (NF4 + LoRA via ``load_policy``) and step one model; ``record`` gets the partial
    result after every stage. Stops early, with ``stopped_early`` set, when the next step would
    pass ``deadline`` (judged by the last step's time)."""
    from sar_lib.models import parameter_counts

    cuda = torch.device(device).type == "cuda"
    result: dict = {"status": "building", "profile": profile, "target_peak_gb": target_gb, "load_in_4bit": four_bit,
                    "per_step": []}
    record(result)
    t0 = time.perf_counter()
    path = random_model_dir(name, tokenizer, workdir, device, shrink=not cuda)
    result.update(build_s=time.perf_counter() - t0, status="loading")
    record(result)
    config = step_config(str(path), sizes, reward="sar", profile=profile, load_in_4bit=four_bit,
                         micro_batch_size=None)  # the profile's micro-batch: its memory budget
    result["config"] = {k: getattr(config, k) for k in ("questions_per_step", "group_size", "max_new_tokens",
                                                        "micro_batch_size", "updates_per_step", "kl_coef", "lora_r")}
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
        for k in range(sizes.steps):
            last = result["per_step"][-1]["time/wall"] if result["per_step"] else 0.0
            if time.perf_counter() + last > deadline:
                result["stopped_early"] = f"time budget: {k} of {sizes.steps} steps done"
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
    finally:
        stepper.close()
        shutil.rmtree(path, ignore_errors=True)
    steps = result["per_step"]
    timed = steps[1:] or steps  # the first step pays one-off costs (kernels, allocator)
    n_answers = config.questions_per_step * config.group_size
    result.update(step_summary(timed, n_answers))
    peaks = [s["peak_allocated_gb"] for s in steps if "peak_allocated_gb" in s]
    result["peak_allocated_gb"] = max(peaks) if peaks else None
    result["meets_target"] = None if not peaks else result["peak_allocated_gb"] <= target_gb
    result["status"] = "ok" if steps else "incomplete"
    return result


def gpu_check(json_path: str | Path, *, dry_run: bool = False, steps: int | None = None,
              answer_tokens: int | None = None, questions_per_step: int | None = None,
              time_budget_s: float = 420.0, command: str | None = None, progress: bool = True) -> dict:
    """The prepared GPU check (issue 6), written to ``json_path`` after every stage.

    For each of :data:`GPU_CHECK_MODELS`: a random model of the shipped config's exact shape, loaded
    4-bit NF4 + LoRA r=16 by ``models.load_policy`` with its profile (laptop-8gb / gpu-12gb),
    then ``steps`` (3) SA-GRPO steps (``grpo.grpo_step``) at G = 6 with ``answer_tokens`` (512)
    answer tokens, eos suppressed, ``questions_per_step`` from the profile (8). Recorded per model:
    peak allocated memory (per step; the target applies to the max), load time and peak, step
    split, tokens/s (medians over the steps after the first), the 4-bit layer count. Also
    ``logprob_memory`` (:func:`measure_logprob_memory`) on the device. A model that fails gets
    ``status: "error"`` and its traceback; the others still run. ``time_budget_s`` bounds the whole
    check: a step that would end past it (judged by the model's previous step) is not started, nor
    a model with under :data:`MIN_MODEL_S` seconds left.

    ``dry_run``: the same code on CPU, for testing without a GPU: models shrunk to 2 layers of width
    64 (vocabulary kept), NF4 when bitsandbytes runs on this CPU, fewer and shorter steps
    (2 steps, 16 tokens, 2 questions unless given); peaks are not measured (None).
    """
    from sar_lib.models import bnb_4bit_problem, get_profile

    device = "cpu" if dry_run else "cuda"
    if not dry_run and not torch.cuda.is_available():
        raise ValueError(f"the GPU check needs a CUDA GPU and torch {torch.__version__} sees none; "
                         "use --dry-run to run its code path on CPU")
    steps = steps if steps is not None else (2 if dry_run else 3)
    answer_tokens = answer_tokens if answer_tokens is not None else (16 if dry_run else 512)
    questions_per_step = questions_per_step if questions_per_step is not None else (2 if dry_run else None)
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    deadline = start + time_budget_s
    bnb_problem = bnb_4bit_problem(device)
    four_bit = bnb_problem is None  # without bitsandbytes the check still runs (bf16), and says so
    report: dict = {"kind": "gpu check", "dry_run": dry_run, "machine": machine_info(device, command),
                    "settings": {"steps": steps, "group_size": 6, "answer_tokens": answer_tokens,
                                 "questions_per_step": questions_per_step or "profile", "eos_suppressed": True,
                                 "load_in_4bit": four_bit, "bnb_problem": bnb_problem,
                                 "time_budget_s": time_budget_s},
                    "logprob_memory": None, "models": {}, "ok": False, "total_s": None}

    def write() -> None:
        report["total_s"] = time.perf_counter() - start
        json_path.write_text(json.dumps(report, indent=2) + "\n")

    write()
    memory_sizes = dataclasses.replace(FULL, memory_answer_tokens=64) if dry_run else FULL
    try:
        report["logprob_memory"] = measure_logprob_memory(memory_sizes, device=device)
    except Exception as err:  # record and go on: the model checks matter more
        report["logprob_memory"] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    write()
    tokenizer = bench_tokenizer()
    with tempfile.TemporaryDirectory(prefix="sar-gpu-check-") as tmp:
        for name, (profile_name, target_gb) in tqdm(GPU_CHECK_MODELS.items(), desc="gpu check", disable=not progress):
            q = questions_per_step or get_profile(profile_name).questions_per_step
            sizes = BenchSizes(questions_per_step=q, group_size=6, answer_tokens=answer_tokens, warmup_steps=0,
                               steps=steps)

            def record(partial: dict, name: str = name) -> None:
                report["models"][name] = partial
                write()

            if not dry_run and deadline - time.perf_counter() < MIN_MODEL_S:
                record({"status": "skipped", "error": f"time budget: under {MIN_MODEL_S} s left"})
                continue
            try:
                record(_check_model(name, profile_name, target_gb, tokenizer=tokenizer, device=device,
                                    four_bit=four_bit, sizes=sizes, workdir=Path(tmp), deadline=deadline,
                                    record=record))
            except Exception as err:  # e.g. out of memory: record it, free memory, check the next model
                failed = report["models"].get(name, {})
                failed.update(status="error", error=f"{type(err).__name__}: {err}",
                              traceback=traceback.format_exc()[-6000:])
                record(failed)
            gc.collect()
            if not dry_run:
                torch.cuda.empty_cache()
    report["ok"] = (four_bit or dry_run) and all(r.get("status") == "ok" and r.get("meets_target") is not False
                                                 for r in report["models"].values())
    write()
    return report


def format_gpu_table(report: dict) -> str:
    """The GPU check's report as a plain-text table, one row per model."""
    m = report["machine"]
    lines = [f"gpu check{' (dry run, CPU)' if report['dry_run'] else ''}: {m.get('gpu') or m['cpu']}, "
             f"torch {m['versions']['torch']}, {m['date']}",
             f"{'model':<24}{'status':<8}{'peak GB':>8}{'target':>7}{'step s':>8}{'gen s':>7}{'score s':>8}"
             f"{'sar s':>7}{'upd s':>7}{'tok/s':>8}"]
    for name, r in report["models"].items():
        lines.append(f"{name:<24}{r.get('status', '?'):<8}{_fmt(r.get('peak_allocated_gb')):>8}"
                     f"{_fmt(r.get('target_peak_gb')):>7}{_fmt(r.get('time_step')):>8}{_fmt(r.get('time_generate')):>7}"
                     f"{_fmt(r.get('time_score')):>8}{_fmt(r.get('time_sar')):>7}{_fmt(r.get('time_update')):>7}"
                     f"{_fmt(r.get('generation_tokens_per_s'), 4):>8}")
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
    lines.append(f"ok: {report['ok']}, total {report['total_s']:.0f} s")
    return "\n".join(lines)
