"""``sar bench``: what SAR costs in a GRPO step and how our step compares with TRL's.

Every figure is measured at **forced answer lengths** (eos suppressed, ``generation.generate(...,
suppress_eos=True)``), so two variants of a step do the same amount of work whatever they sample:

* ``sar_overhead_ratio = median_k t_step,k(SA-GRPO) / t_step,k(GRPO)``: one training step
  (``grpo.grpo_step``) with reward ``"sar"`` against the same step with reward ``"none"`` and no SAR
  logging; same model, seed, questions and lengths; the two policies' steps alternate, so that
  the k-th pair are neighbours in time and a load that comes and goes slows both alike. SAR's only
  extra work is one no-grad forward over ctx(0)+a (docs/paper.md §1), so the step's own timer also gives
  ``t_step / (t_step - t_sar)`` as a cross-check.
* ``trl_step_ratio = median_k t_step,k(ours) / t_cycle,k(TRL)``: TRL's ``GRPOTrainer`` with the same
  model, LoRA, questions, group size, lengths, KL coefficient, micro-batch, two optimiser updates
  per generation batch, and the same reward R_VR + 0.2 R_SA (``sar_lib.integrations.trl``), our
  steps and TRL's alternating in one run. A TRL "cycle" is one generation batch and its two
  optimiser steps, the work of one of our steps.
* ``logprob_memory_ratio``: chunked answer log-probs against a naive full-vocabulary log-softmax
  (``sar_lib.lab.memory_probe``).
* ``engine_step_speedup`` and ``engine_generate_speedup``: the rollout engine (``sar_lib.engine``,
  ``GRPOConfig.engine``: prompts encoded once per group, finished answers leaving the batch, the
  sampler's log-probs reused) against today's reference path (``--no-engine``: ``generate`` and one
  full sequence per answer), both SA-GRPO, at 16 questions x 6 answers (the lr-1e-3 grid's batch), 192 new
  tokens, the profile's micro-batch, **natural** answer lengths (the compaction is half the gain, and
  forced lengths would hide it). Speedup = median over neighbouring pairs of step k of
  ``(rollouts/s of the engine) / (rollouts/s of the reference)``, of the whole step and of sampling
  alone. ``engine_checks``: greedy answers identical to ``generate``, the largest gap between the
  sampled log-probs and the scorer's, and the same rollouts from the same seed.
* ``generation_tokens_per_s`` and the step split ``time_generate`` / ``time_score`` / ``time_update``:
  medians over the SA-GRPO steps (``time_score`` includes SAR's pass, reported alone as ``time_sar``).

The steps are the trainer's own: :class:`Stepper` sets a policy up with ``grpo.setup_training``
and calls ``grpo.grpo_step``. ``sar_lib.lab.gpu_check`` runs the same steps on Qwen2.5-shaped models.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sar_lib import models
from sar_lib.data import load_problems
from sar_lib.grpo import grpo_step, questions_of_step, setup_training
from sar_lib.grpo_config import GRPOConfig, policy_profile
from sar_lib.lab.machine import machine_info, synchronize
from sar_lib.lab.memory_probe import ProbeShape, measure_logprob_memory

_PROBE = ProbeShape()


# ---------------------------------------------------------------- sizes
@dataclass(frozen=True)
class BenchSizes:
    """The sizes of one ``sar bench`` run.

    A step: ``questions_per_step`` questions, ``group_size`` answers each, every answer exactly
    ``answer_tokens`` tokens, two optimiser updates of half the questions each, micro-batches of
    ``questions_per_step * group_size / 2`` answers. ``warmup_steps`` untimed steps come first.
    Memory: ``memory_batch`` answers of ``memory_answer_tokens`` tokens after ``memory_context_tokens``
    context tokens, vocabulary ``vocab_size`` (:meth:`probe_shape`).
    """

    questions_per_step: int = 4
    group_size: int = 6
    answer_tokens: int = 192      # the tiny-cpu profile's answer budget
    warmup_steps: int = 1
    steps: int = 5
    trl_cycles: int = 3
    vocab_size: int = _PROBE.vocab_size
    memory_batch: int = _PROBE.batch
    memory_answer_tokens: int = _PROBE.answer_tokens
    memory_context_tokens: int = _PROBE.context_tokens
    chunk_size: int = _PROBE.chunk_size
    engine_questions: int = 16    # the grid's questions per step (sar compare)
    engine_steps: int = 4

    def __post_init__(self):
        small = [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                 if getattr(self, f.name) < (0 if f.name == "warmup_steps" else 1)]
        if self.group_size < 2:
            small.append(f"group_size={self.group_size} (GRPO needs >= 2)")
        if self.questions_per_step % 2:
            small.append(f"questions_per_step={self.questions_per_step} (two updates of whole groups: use an even number)")
        if small:
            raise ValueError(f"invalid benchmark sizes: {', '.join(small)}")

    def probe_shape(self) -> ProbeShape:
        """The log-prob memory probe's shape."""
        return ProbeShape(batch=self.memory_batch, answer_tokens=self.memory_answer_tokens,
                          context_tokens=self.memory_context_tokens, vocab_size=self.vocab_size,
                          chunk_size=self.chunk_size)


FULL = BenchSizes()
QUICK = BenchSizes(questions_per_step=2, answer_tokens=32, steps=2, trl_cycles=1, memory_answer_tokens=128,
                   engine_questions=2, engine_steps=1)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- the benchmark model
def bench_tokenizer():
    """The shipped tiny reasoner's tokenizer, or (not shipped yet) one trained in seconds on the
    synthetic corpus with the same vocabulary size."""
    from sar_lib.lab.pretrain import PretrainConfig
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
    from sar_lib.lab.pretrain import MAX_POSITIONS, PretrainConfig

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
def step_config(model: str, sizes: BenchSizes, *, reward: str = "sar", profile: str = "tiny-cpu",
                **overrides) -> GRPOConfig:
    """The ``GRPOConfig`` of a benchmark step (resolved): forced lengths, ``sizes``' batch shape."""
    values = dict(profile=profile, model=model, reward=reward, log_sar=reward != "none",
                  group_size=sizes.group_size, questions_per_step=sizes.questions_per_step, updates_per_step=2,
                  max_new_tokens=sizes.answer_tokens,
                  micro_batch_size=sizes.questions_per_step * sizes.group_size // 2,
                  suppress_eos=True, progress=False, out=os.devnull)
    values.update(overrides)
    return GRPOConfig.for_profile(**values).resolved()


class Stepper:
    """The questions of ``n_steps`` steps (picked from ``questions_per_step * n_steps`` training
    problems as ``grpo.train`` picks them) and a policy set up as ``grpo.train`` sets it up
    (``grpo.setup_training``), to run timed ``grpo.grpo_step`` calls one by one."""

    def __init__(self, config: GRPOConfig, device: str, n_steps: int):
        self.config, self.device = config, device
        pool = load_problems(config.train_dataset, limit=config.questions_per_step * n_steps, seed=0)
        self.problems = [questions_of_step(pool, config, step) for step in range(1, n_steps + 1)]
        self.training = setup_training(config, device=device)
        self.steps_done = 0

    @property
    def model(self):
        return self.training.model

    def step(self) -> dict:
        """The next ``grpo_step``: its metrics plus ``time/wall`` (the whole call, device synchronised)."""
        if self.steps_done == len(self.problems):
            raise ValueError(f"this Stepper was prepared for {len(self.problems)} steps")
        self.steps_done += 1
        t = self.training
        synchronize(self.device)
        t0 = time.perf_counter()
        metrics = grpo_step(t.model, t.tokenizer, t.optimizer, self.problems[self.steps_done - 1], self.config,
                            step=self.steps_done, ctx0_ids=t.ctx0_ids, sampler=t.sampler)
        synchronize(self.device)
        metrics["time/wall"] = time.perf_counter() - t0
        return metrics

    def close(self) -> None:
        """Free the model and optimizer (and the CUDA cache)."""
        self.training = None
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
        "generation_tokens_per_s": _median([s["completions/mean_length"] * n_answers / s["time/generate"]
                                            for s in steps]),
        "answer_length_mean": med("completions/mean_length"),
        "truncation_rate": med("completions/clipped_ratio"),
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


# ---------------------------------------------------------------- the rollout engine
def engine_checks(model, tokenizer, problems, *, max_new_tokens: int) -> dict:
    """The engine's exactness on ``problems``: ``greedy_identical`` (its greedy answers are
    ``generation.generate``'s), ``max_logprob_gap`` (largest |sampled log-prob - scorer's log-prob| of
    6 answers per problem at temperature 1) and ``same_seed_same_rollouts``."""
    from sar_lib import engine
    from sar_lib.generation import generate
    from sar_lib.perplexity import score_answer_ids
    from sar_lib.sar import prompt_text

    prompts = [prompt_text(tokenizer, p.question) for p in problems]
    greedy = dict(max_new_tokens=max_new_tokens, do_sample=False, batch_size=len(prompts))
    identical = (engine.sample(model, tokenizer, prompts, **greedy).answer_ids
                 == generate(model, tokenizer, prompts, **greedy).answer_ids)
    draws = []
    for _ in range(2):
        torch.manual_seed(0)
        draws.append(engine.sample(model, tokenizer, prompts, max_new_tokens=max_new_tokens, do_sample=True,
                                   num_return_sequences=6, batch_size=len(prompts)))
    scores = score_answer_ids(model, draws[0].prompt_ids, draws[0].answer_ids, pad_token_id=tokenizer.pad_token_id)
    gap = max(float((scores.logprobs[k, :len(a)] - torch.tensor(draws[0].logprobs[k])).abs().max())
              for k, a in enumerate(draws[0].answer_ids))
    return {"greedy_identical": identical, "max_logprob_gap": gap,
            "same_seed_same_rollouts": draws[0].answer_ids == draws[1].answer_ids,
            "passed": identical and gap < 1e-4 and draws[0].answer_ids == draws[1].answer_ids}


def measure_engine_speedup(model: str, sizes: BenchSizes, *, device: str = "cpu", progress: bool = False) -> dict:
    """The rollout engine against the reference path, SA-GRPO steps at natural lengths (module doc).

    Both policies load identically and step k of each has the same questions and seed; their steps
    alternate (order swapped every other pair) after ``sizes.warmup_steps`` untimed pairs.
    """
    from sar_lib.models import get_profile

    shape = dataclasses.replace(sizes, questions_per_step=sizes.engine_questions)
    common = dict(reward="sar", suppress_eos=False, micro_batch_size=get_profile("tiny-cpu").micro_batch_size)
    n_total = sizes.warmup_steps + sizes.engine_steps
    runs = {"engine": Stepper(step_config(model, shape, engine=True, **common), device, n_total),
            "reference": Stepper(step_config(model, shape, engine=False, fast_generation=False, **common),
                                 device, n_total)}
    timed: dict[str, list[dict]] = {"engine": [], "reference": []}
    try:
        for k in tqdm(range(n_total), desc="engine / reference steps", disable=not progress):
            for name in (("engine", "reference") if k % 2 == 0 else ("reference", "engine")):
                metrics = runs[name].step()
                if k >= sizes.warmup_steps:
                    timed[name].append(metrics)
        stepper = runs["engine"]
        checks = engine_checks(stepper.training.sampler.model if stepper.training.sampler else stepper.model,
                               stepper.training.tokenizer, stepper.problems[0], max_new_tokens=sizes.answer_tokens)
    finally:
        for stepper in runs.values():
            stepper.close()
    n_answers = shape.questions_per_step * shape.group_size

    def speedup(key: str) -> float:
        return _median([r[key] / e[key] for e, r in zip(timed["engine"], timed["reference"])])

    return {
        "engine_step_speedup": speedup("time/wall"),
        "engine_generate_speedup": speedup("time/generate"),
        "engine_rollouts_per_s": _median([n_answers / m["time/wall"] for m in timed["engine"]]),
        "reference_rollouts_per_s": _median([n_answers / m["time/wall"] for m in timed["reference"]]),
        "engine_checks": checks,
        "engine_steps": step_summary(timed["engine"], n_answers),
        "reference_steps": step_summary(timed["reference"], n_answers),
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
    import trl   # first: without TRL nothing is set up

    config = step_config(model, sizes, reward="sar")
    n_cycles = sizes.warmup_steps + sizes.trl_cycles
    ours = Stepper(config, device, n_cycles)
    timer = _alternating_timer(ours, device)
    try:
        lengths = _train_trl(config, [p for step in ours.problems for p in step], timer, n_cycles=n_cycles,
                             device=device, workdir=workdir)
    finally:
        ours.close()
    skip = sizes.warmup_steps
    pairs = list(zip(timer.ours[skip:], timer.trl[skip:]))
    return {"trl_step_ratio": _median([a / b for a, b in pairs]), "ours_step_s": [a for a, _ in pairs],
            "trl_cycle_s": [b for _, b in pairs], "trl_completion_length_mean": _median(lengths),
            "trl_version": trl.__version__}


def _alternating_timer(ours: Stepper, device: str):
    """The ``TrainerCallback`` of :func:`measure_trl_ratio`: at the start of each TRL cycle it runs one
    of ``ours``' steps, then starts the cycle's clock. Its ``ours`` and ``trl`` lists hold the seconds
    of our steps and of TRL's cycles, in order."""
    from transformers import TrainerCallback

    class Alternate(TrainerCallback):
        def __init__(self):
            self.ours: list[float] = []
            self.trl: list[float] = []
            self.cycle_start: float | None = None

        def _close_cycle(self) -> None:
            synchronize(device)
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

    return Alternate()


def _train_trl(config: GRPOConfig, problems: list, timer, *, n_cycles: int, device: str, workdir: Path) -> list[float]:
    """Train TRL's ``GRPOTrainer`` on ``problems`` for ``n_cycles`` cycles, set up as ``config``'s steps
    (:func:`measure_trl_ratio`), with ``timer`` among its callbacks; returns the mean completion length
    of every logged step."""
    import trl
    from datasets import Dataset
    from transformers import PrinterCallback

    from sar_lib.integrations import trl as sar_trl

    kinds = sorted({p.kind for p in problems})
    if len(kinds) != 1:
        raise ValueError(f"the training set mixes answer kinds {kinds}; the TRL comparison grades one kind")
    rows = [{"prompt": sar_trl.paper_messages(p.question), "answer": p.gold} for p in problems]
    base, tokenizer = models.load_model(config.model, device=device)
    trainer = trl.GRPOTrainer(model=base, processing_class=tokenizer, args=_trl_args(config, base, tokenizer, n_cycles,
                                                                                      device=device, workdir=workdir),
                              peft_config=_trl_lora(config), train_dataset=Dataset.from_list(rows), callbacks=[timer],
                              reward_funcs=[sar_trl.correctness_reward(kind=kinds[0]),
                                            sar_trl.SARReward(batch_size=config.micro_batch_size)])
    trainer.remove_callback(PrinterCallback)  # logs are read from state.log_history, not printed
    sar_trl.attach(trainer)
    trainer.train()
    return [log["completions/mean_length"] for log in trainer.state.log_history if "completions/mean_length" in log]


def _trl_args(config: GRPOConfig, base, tokenizer, n_cycles: int, *, device: str, workdir: Path):
    """``trl.GRPOConfig`` with ``config``'s settings under TRL's names, answers of exactly
    ``config.max_new_tokens`` tokens (every eos id of ``base`` and ``tokenizer`` suppressed)."""
    import trl

    configured = base.generation_config.eos_token_id
    eos_ids = {tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])}
    return trl.GRPOConfig(
        output_dir=str(workdir / "trl"), max_steps=2 * n_cycles, per_device_train_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=1, steps_per_generation=2, num_generations=config.group_size,
        max_completion_length=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p, top_k=0,
        generation_kwargs={"min_new_tokens": config.max_new_tokens, "suppress_tokens": sorted(eos_ids - {None})},
        beta=config.kl_coef, epsilon=config.clip_eps_low, epsilon_high=config.clip_eps_high,
        loss_type="dr_grpo", scale_rewards="none", learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, adam_epsilon=config.adam_epsilon, max_grad_norm=config.max_grad_norm,
        lr_scheduler_type="constant",
        shuffle_dataset=False, reward_weights=[1.0, config.alpha], seed=config.seed,
        bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=torch.device(device).type == "cpu",
        report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True)


def _trl_lora(config: GRPOConfig):
    """peft's ``LoraConfig`` of ``config``'s policy profile, for TRL's trainer."""
    from peft import LoraConfig

    profile = policy_profile(config)
    return LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=profile.lora_dropout,
                      target_modules=list(profile.target_modules), bias="none", task_type="CAUSAL_LM")


# ---------------------------------------------------------------- sar bench
TARGETS = {"sar_overhead_ratio": 1.05, "trl_step_ratio": 1.0, "logprob_memory_ratio": 0.3}  # upper bounds
LOWER_TARGETS = {"engine_step_speedup": 2.0}   # lower bounds (the aim: 3)


def run_bench(*, device: str = "cpu", sizes: BenchSizes = FULL, threads: int | None = 1, with_trl: bool = True,
              command: str | None = None, progress: bool = True) -> dict:
    """All ``sar bench`` figures (module docstring) in one run; returns the JSON-ready result.

    Order: log-prob memory, SA-GRPO vs GRPO steps, SA-GRPO steps vs TRL cycles. Without TRL installed (or ``with_trl=False``) ``trl_step_ratio`` is None and ``trl.error`` says why.
    ``threads``: torch CPU threads (None: torch's default). One by default: the tiny model's
    matrices are too small to gain from more, and with other processes on the cores, several
    threads per process wait on each other and make step times erratic (measured: 2-25 s for a
    step that takes 1.9 s with one thread on a 2-core machine under load).
    """
    models.check_device(device)
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
    bar = tqdm(total=4, desc="sar bench", disable=not progress)
    memory = measure_logprob_memory(sizes.probe_shape(), device=device)
    bar.update()
    with tempfile.TemporaryDirectory(prefix="sar-bench-") as tmp:
        model, result["model"] = bench_model(Path(tmp))
        overhead = measure_sar_overhead(model, sizes, device=device)
        bar.update()
        engine = measure_engine_speedup(model, sizes, device=device)
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
        "engine_step_speedup": engine["engine_step_speedup"],
        "engine_generate_speedup": engine["engine_generate_speedup"],
        "engine_checks_passed": engine["engine_checks"]["passed"],
        "generation_tokens_per_s": sar_steps["generation_tokens_per_s"],
        "time_generate": sar_steps["time_generate"],
        "time_score": sar_steps["time_score"],
        "time_update": sar_steps["time_update"],
        "time_sar": sar_steps["time_sar"],
        "time_step": sar_steps["time_step"],
        "details": {"overhead": overhead, "engine": engine, "trl": trl_result, "memory": memory},
    })
    result["meets_targets"] = {key: None if result[key] is None else result[key] <= bound
                               for key, bound in TARGETS.items()}
    result["meets_targets"].update({key: result[key] >= bound for key, bound in LOWER_TARGETS.items()})
    result["total_s"] = time.perf_counter() - start
    result["machine"]["load_average_1min_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return result


def format_value(value, digits: int = 3) -> str:
    """A number for a table: 3 significant digits (``digits``), "-" for None."""
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def format_bench(result: dict) -> str:
    """The ``sar bench`` result as a plain-text table."""
    m = result["machine"]
    where = m.get("gpu") or f"{m['cpu']} ({m['cpu_cores']} cores)"
    lines = [f"sar bench on {m['device']}: {where}, torch {m['versions']['torch']}, {m['date']}",
             f"model: {result['model']}",
             f"{'figure':<26}{'value':>10}  {'target':<9}{'met':<4}"]
    bounds = {**{key: f"<= {bound}" for key, bound in TARGETS.items()},
              **{key: f">= {bound}" for key, bound in LOWER_TARGETS.items()}}
    for key, bound in bounds.items():
        met = result["meets_targets"][key]
        verdict = "-" if met is None else "yes" if met else "NO"
        lines.append(f"{key:<26}{format_value(result[key]):>10}  {bound:<9}{verdict}")
    lines.append(f"{'engine_generate_speedup':<26}{format_value(result['engine_generate_speedup']):>10}")
    lines.append(f"{'engine checks':<26}{'passed' if result['engine_checks_passed'] else 'FAILED':>10}")
    lines.append(f"{'generation_tokens_per_s':<26}{format_value(result['generation_tokens_per_s'], 4):>10}")
    for key in ("time_step", "time_generate", "time_score", "time_sar", "time_update"):
        lines.append(f"{key + ' (s)':<26}{format_value(result[key]):>10}")
    trl = result["details"]["trl"]
    if "error" in trl:
        lines.append(f"TRL: {trl['error']}")
    lines.append(f"total {result['total_s']:.0f} s")
    return "\n".join(lines)


