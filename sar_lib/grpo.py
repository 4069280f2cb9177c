"""GRPO with the self-aligned reward (SA-GRPO): a LoRA trainer to read top to bottom.

One training step (docs/paper.md §3), for Q questions and G answers per question (steps 1-2 and
the update of step 4 live in ``sar_lib.policy_gradient``, shared with PPO, ``sar_lib.ppo``):

1. **Sample** G answers per question from the current policy pi_old at temperature 1, top_p 1.
2. **Score**, without gradients:
   - old log-probs ``log pi_old(a_t | ctx(q), a_<t)`` (the PPO ratio's denominator); their mean is
     ``-log ppl(a|q)``, so SAR reuses them;
   - SAR only: one extra pass over ctx(0)+a gives ``ppl(a)``;
     ``R_SA = max(1 - ppl(a|q) / ppl(a), -1)``;
   - KL only (``kl_coef > 0``): the reference log-probs, i.e. the same model with its LoRA adapters
     disabled;
   - the reward ``R = w * R_VR + alpha * r`` (R_VR: 1 if correct else 0; r: the shaping term of ``reward``;
     w = ``correctness_weight``, 1 except in the "shaping reward alone" ablation, e.g. R_SA alone).
3. **Advantage** per answer, over its group: ``A = R - mean_group(R)`` (Dr. GRPO, no std division),
   or ``(R - mean) / (std + 1e-6)`` with ``advantage="std"``.
4. **Update**: the questions are split into ``updates_per_step`` mini-batches, one AdamW step each
   (so from the second update on, pi differs from pi_old and the PPO clip matters). Per token:

       ratio = pi(a_t) / pi_old(a_t)
       l_t   = max(-A * ratio, -A * clip(ratio, 1 - eps_low, 1 + eps_high))
       l_t   = min(l_t, -A * dual_clip)                       (only where A < 0)
       l_t  += kl_coef * k3(pi, pi_ref)                       (optional)
       loss  = mean over answers of ( sum_t l_t ) / loss_constant

   ``loss_constant`` defaults to ``max_new_tokens``: a constant, not the answer's own length, so long
   answers are not down-weighted per token (Dr. GRPO). Micro-batches accumulate gradients.

The configuration is :class:`~sar_lib.grpo_config.GRPOConfig`. A run folder (``sar_lib.runs``)
holds the resolved config, ``metrics.jsonl``, ``checkpoint/`` (trainable weights, optimizer, RNG
states, step; plus the LoRA ``adapter/`` in peft format) and the final greedy evaluation of
``eval_dataset`` (``eval_<set>.json``, its per-answer records in ``eval_<set>_records.jsonl``; with
``eval_samples`` > 0 also the mean length and accuracy of that many answers sampled per problem);
with ``log_completions``, ``completions.jsonl`` holds every sampled answer with its rewards. With
``report_to`` (tensorboard, trackio, wandb) every row of ``metrics.jsonl`` also goes to that tool
(``sar_lib.tracking``; TensorBoard's event files in ``tensorboard/``).

``metrics.jsonl`` has one JSON object per step with these keys, TRL's ``GRPOTrainer`` names where the
quantity is the same (``docs/metrics.md`` maps every key to TRL's; a key is absent when its quantity
is not computed in that run):

- ``step``; ``reward`` (mean R), ``reward_std`` (mean over groups of the std of R),
  ``rewards/correctness/mean`` (mean R_VR: the sampled answers' accuracy), ``rewards/<reward>/mean``
  (mean shaping term r before alpha; not for ``none``);
- ``sar/mean``: mean official SAR (``"ppl"`` variant) of the sampled answers, when the reward is
  ``sar`` or ``shuffled_sar`` or ``log_sar`` is on (then GRPO runs show it too, at the cost of the
  ctx(0) pass);
- ``completions/mean_length``, ``completions/min_length``, ``completions/max_length``,
  ``completions/median_length``, ``completions/mean_length_correct`` (answer tokens, eos included;
  null when no answer is correct), ``completions/clipped_ratio`` (share truncated at
  ``max_new_tokens``), ``frac_reward_zero_std`` (share of groups whose rewards are all equal: zero
  advantage, no gradient);
- ``kl`` (mean k3 per token, when ``kl_coef > 0``), ``clip_ratio/region_mean`` (share of answer
  tokens whose gradient a clip cut), ``loss`` and ``grad_norm`` (before clipping; both averaged over
  the step's updates), ``learning_rate``;
- ``time/generate``, ``time/score`` (old and reference log-probs, rewards, and the ctx(0) pass when
  the reward needs it), ``time/update``, ``time/step`` (their sum: the cost of training), ``time/sar``
  (the ctx(0) pass alone; not part of ``time/step`` when SAR is only logged), in seconds;
- on evaluation steps (every ``eval_every`` and the last): ``eval/accuracy``, ``eval/mean_length``
  (greedy, eos excluded, as ``sar_lib.evaluate``), ``time/eval``; at the last step with
  ``eval_samples`` > 0 also ``eval/sampled_accuracy`` and ``eval/sampled_mean_length``; on synthetic
  arithmetic and claims, ``eval/p_stop``, ``eval/p_check`` and ``eval/greedy_stop_share``: SAR's
  switch (``sar_lib.switch``, measured by ``evaluate``).

Exact resume: everything random in step ``k`` is seeded from ``(seed, k)`` and the questions of step
``k`` come from a permutation seeded by ``(seed, epoch)``, so a run resumed from its step-k checkpoint
repeats the uninterrupted run's steps k+1.. exactly (on the same hardware).
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from sar_lib import ppo, runs
from sar_lib.data import load_problems
from sar_lib.evaluate import SAMPLED_KEYS, SWITCH_KEYS, evaluate
from sar_lib.fast_generation import GenerationCopy, generation_copy
from sar_lib.grpo_config import ADVANTAGES, GRPOConfig, policy_profile, training_differences
from sar_lib.models import load_policy
from sar_lib.policy_gradient import (completion_rows, sample_and_score, seed_everything, seed_from, step_metrics,
                                     update_policy)
from sar_lib.problem import Problem
from sar_lib.sar import empty_prompt_text, encode_text, prompt_text
from sar_lib.tracking import open_tracker

# ---------------------------------------------------------------- the GRPO maths (pure functions)
def group_advantages(rewards: Tensor, kind: str = "dr_grpo", eps: float = 1e-6) -> Tensor:
    """Advantages of ``[Q, G]`` rewards (one row per question), ``[Q, G]``.

    dr_grpo: ``A_ij = R_ij - mean_j R_ij``;  std: ``A_ij = (R_ij - mean_j R_ij) / (std_j R_ij + eps)``
    (unbiased std, as GRPO). A group whose answers all have the same reward gets ``A = 0``.
    """
    if kind not in ADVANTAGES:
        raise ValueError(f"unknown advantage {kind!r}; choose one of {', '.join(ADVANTAGES)}")
    centred = rewards - rewards.mean(-1, keepdim=True)
    if kind == "std":
        centred = centred / (rewards.std(-1, keepdim=True) + eps)
    return centred


def step_questions(n_problems: int, questions_per_step: int, seed: int, step: int) -> list[int]:
    """Indices of the training problems of ``step`` (1-based): the epoch-wise permutations seeded by
    ``(seed, epoch)``, read at positions ``(step-1)*Q .. step*Q - 1`` (a pure function: resumable)."""
    picked = []
    for position in range((step - 1) * questions_per_step, step * questions_per_step):
        epoch, k = divmod(position, n_problems)
        picked.append(int(np.random.default_rng(seed_from(seed, 0, epoch)).permutation(n_problems)[k]))
    return picked


def questions_of_step(problems: list[Problem], config: GRPOConfig, step: int) -> list[Problem]:
    """The ``config.questions_per_step`` problems of ``step`` out of the pool ``problems`` (:func:`step_questions`)."""
    return [problems[i] for i in step_questions(len(problems), config.questions_per_step, config.seed, step)]


def _rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ---------------------------------------------------------------- one step
def grpo_step(model, tokenizer, optimizer, problems: list[Problem], config: GRPOConfig, *, step: int,
              ctx0_ids: list[int], completions: list | None = None, sampler=None) -> dict:
    """One GRPO step on ``problems`` (the step's Q questions); returns its metrics (see module doc).

    ``completions``: a list that receives one dict per sampled answer (step, problem id, text,
    length in tokens with eos, correctness, shaping term r, SAR when computed, reward, advantage).
    ``sampler``: the policy's generation copy (``TrainingSetup.sampler``), None to sample from it."""
    scored = sample_and_score(model, tokenizer, problems, config, step=step, ctx0_ids=ctx0_ids, sampler=sampler)
    device = model.get_input_embeddings().weight.device
    advantages = group_advantages(scored.total.view(-1, config.group_size), config.advantage).flatten().to(device)
    if completions is not None:
        completions.extend(completion_rows(scored, problems, advantages, step))
    t0 = time.perf_counter()
    stats = update_policy(model, tokenizer, optimizer, scored, config, advantages)
    return step_metrics(scored, config, stats, step=step, learning_rate=optimizer.param_groups[0]["lr"],
                        update_seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------- the run
@dataclass
class TrainingSetup:
    """What a run trains with: the policy (with its critic, ``model.value_head``, for PPO), its
    tokenizer, the AdamW optimizer of its trainable (LoRA, critic) weights, ctx(0)'s token ids
    (the context of SAR's extra pass) and, with ``fast_generation``, the 16-bit copy that samples."""

    model: torch.nn.Module
    tokenizer: object
    optimizer: torch.optim.Optimizer
    ctx0_ids: list[int]
    sampler: GenerationCopy | None = None


def setup_training(config: GRPOConfig, *, device: str | None = None) -> TrainingSetup:
    """The policy of ``config`` (the profile's LoRA, + 4-bit, on ``config.model``; its initialisation
    seeded by ``config.seed``) and its optimizer, as ``train`` starts them (``device``: default
    ``config.device``, else the default device). ``config`` must be resolved."""
    seed_everything(config.seed)  # the LoRA (and critic) initialisation
    model, tokenizer = _load_run_policy(config, device or config.device)
    if config.kl_coef > 0 and not hasattr(model, "disable_adapter"):
        raise ValueError("kl_coef > 0 needs a LoRA policy (the reference is the model with its adapters "
                         "disabled); use a profile with LoRA or set kl_coef=0")
    groups = (ppo.parameter_groups(model, config) if config.algo == "ppo"
              else [{"params": [p for p in model.parameters() if p.requires_grad]}])
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay,
                                  eps=config.adam_epsilon)
    return TrainingSetup(model, tokenizer, optimizer, encode_text(tokenizer, empty_prompt_text(tokenizer)),
                         generation_copy(model, config.fast_generation))


def _load_run_policy(config: GRPOConfig, device: str | None = None):
    """``(model, tokenizer)``: the profile's policy, with a fresh critic when ``config.algo`` is ppo."""
    model, tokenizer = load_policy(config.model, policy_profile(config), device=device)
    if config.algo == "ppo":
        ppo.attach_value_head(model)
    return model, tokenizer


def _prepare_run_dir(config: GRPOConfig, resume: bool) -> Path:
    """Create the run folder, or check that ``resume`` may continue it (before anything loads)."""
    run_dir = Path(config.out)
    if resume:
        # the saved device is where it ran, not where it resumes: it need not exist here
        saved = dataclasses.replace(runs.read_config(run_dir), device=config.device).resolved()
        diff = training_differences(saved, config)
        if diff:
            raise ValueError(f"cannot resume {run_dir}: these training settings differ from the saved run: "
                             f"{'; '.join(diff)}. Use the saved values or start a new run with another --out")
        done = int(runs.checkpoint_state(run_dir)["step"])
        if done > config.steps:
            raise ValueError(f"{run_dir} is already trained for {done} steps; pass --steps {done} or more")
    elif runs.has_checkpoint(run_dir):
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.write_config(run_dir, config)
    return run_dir


def _check_prompt_lengths(config: GRPOConfig, model, tokenizer, problems: list[Problem]) -> None:
    longest = max(problems, key=lambda p: len(encode_text(tokenizer, prompt_text(tokenizer, p.question))))
    n_prompt = len(encode_text(tokenizer, prompt_text(tokenizer, longest.question)))
    if n_prompt > config.max_prompt_tokens:
        raise ValueError(f"the prompt of training problem {longest.id} is {n_prompt} tokens, longer than "
                         f"max_prompt_tokens={config.max_prompt_tokens}; raise --max-prompt-tokens")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and config.max_prompt_tokens + config.max_new_tokens > limit:
        raise ValueError(f"max_prompt_tokens + max_new_tokens = {config.max_prompt_tokens} + "
                         f"{config.max_new_tokens} exceeds the model's context of {limit} tokens; lower them")


def _evaluate(model, tokenizer, problems: list[Problem], config: GRPOConfig, *, samples: int = 0) -> dict:
    return evaluate(model, tokenizer, problems, max_new_tokens=config.max_new_tokens,
                    batch_size=config.eval_batch_size, samples=samples, progress=False)

def train(config: GRPOConfig, *, resume: bool = False) -> Path:
    """Run GRPO (or PPO: ``config.algo``, ``sar_lib.ppo``) as ``config`` says; returns the run folder (``sar_lib.runs``: config, metrics.jsonl,
    checkpoint/, the final evaluation of ``eval_dataset``).

    ``resume=True`` continues the run in ``config.out`` from its checkpoint; training settings must
    match the saved config (``steps``, evaluation and saving cadence may change).
    ``config.threads`` sets torch's CPU thread count for the whole process: a model of a few million
    parameters makes ops too small to split, and one thread generated 2.4x (idle 2-core machine) to
    30x (busy one) faster than two.
    """
    config = config.resolved()
    with runs.training_lock(config.out):
        return _train(config, resume)


def _train(config: GRPOConfig, resume: bool) -> Path:
    run_dir = _prepare_run_dir(config, resume)
    if config.threads is not None:
        torch.set_num_threads(config.threads)

    setup = setup_training(config)
    model, tokenizer, optimizer = setup.model, setup.tokenizer, setup.optimizer
    # The problem pools do not depend on the seed: every run of a comparison sees the same questions.
    train_problems = load_problems(config.train_dataset, limit=config.train_size, seed=0)
    eval_problems = load_problems(config.eval_dataset, limit=config.eval_size, seed=0)
    _check_prompt_lengths(config, model, tokenizer, train_problems)

    start = 0
    if resume:
        state = runs.load_checkpoint(run_dir, model, optimizer)
        _set_rng_states(state["rng"])
        start = int(state["step"])
        runs.keep_metrics_until(run_dir, start)
    else:
        runs.remove_metrics(run_dir)

    step_function = ppo.ppo_step if config.algo == "ppo" else grpo_step
    bar = tqdm(range(start + 1, config.steps + 1), initial=start, total=config.steps, desc=config.algo,
               disable=not config.progress)
    final_eval = None
    tracker = open_tracker(config.report_to, run_dir, dataclasses.asdict(config), start_step=start)
    try:
        for step in bar:
            completions = [] if config.log_completions else None
            metrics = step_function(model, tokenizer, optimizer, questions_of_step(train_problems, config, step),
                                    config, step=step, ctx0_ids=setup.ctx0_ids, completions=completions,
                                    sampler=setup.sampler)
            if step == config.steps or (config.eval_every and step % config.eval_every == 0):
                t0 = time.perf_counter()
                result = _evaluate(model, tokenizer, eval_problems, config,
                                   samples=config.eval_samples if step == config.steps else 0)
                metrics.update({"eval/accuracy": result["accuracy"], "eval/mean_length": result["mean_length"],
                                **{f"eval/{k}": result[k] for k in SAMPLED_KEYS + SWITCH_KEYS if k in result},
                                "time/eval": time.perf_counter() - t0})
                if step == config.steps:
                    final_eval = result
            runs.append_metrics(run_dir, metrics)
            tracker.log(metrics)
            if completions:
                runs.append_completions(run_dir, completions)
            bar.set_postfix({"R": f"{metrics['reward']:.3f}", "acc": f"{metrics['rewards/correctness/mean']:.2f}",
                             "len": f"{metrics['completions/mean_length']:.0f}",
                             **({"sar": f"{metrics['sar/mean']:.3f}"} if "sar/mean" in metrics else {})})
            if step == config.steps or (config.save_every and step % config.save_every == 0):
                runs.save_checkpoint(run_dir, model, optimizer, step=step,
                                     data_position=step * config.questions_per_step, rng=_rng_states())
    finally:
        tracker.close()
    bar.close()

    if final_eval is None:  # resumed a finished run: evaluate its final weights again
        final_eval = _evaluate(model, tokenizer, eval_problems, config, samples=config.eval_samples)
    runs.write_eval(run_dir, final_eval, dataset=config.eval_dataset, size=config.eval_size,
                    max_new_tokens=config.max_new_tokens, step=config.steps, samples=config.eval_samples)
    return run_dir


def load_run(run_dir: str | Path, *, device: str | None = None):
    """``(model, tokenizer)`` of a run's last checkpoint: its policy with the trained weights, on
    ``device`` (default: the default device, wherever the run trained)."""
    config = dataclasses.replace(runs.read_config(run_dir), device=device).resolved()
    model, tokenizer = _load_run_policy(config, device)
    runs.load_trainable(run_dir, model)
    model.eval()
    return model, tokenizer
