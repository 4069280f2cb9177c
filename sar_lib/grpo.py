"""GRPO with the self-aligned reward (SA-GRPO): a LoRA trainer to read top to bottom.

One training step (SAR.md §3), for Q questions and G answers per question:

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

A run folder holds ``config.json`` / ``config.yaml`` (the resolved config), ``metrics.jsonl``,
``checkpoint/`` (trainable weights, optimizer, RNG states, step; plus the LoRA ``adapter/`` in peft
format) and ``eval.json`` (the final greedy evaluation, its per-answer records in ``eval_records.jsonl``).

``metrics.jsonl`` has one JSON object per step with these keys (a key is absent when its quantity
is not computed in that run):

- ``step``; ``reward/total`` (mean R), ``reward/correctness`` (mean R_VR), ``reward/<reward>`` (mean
  shaping term r before alpha; not for ``none``);
- ``sar/mean``: mean official SAR (``"ppl"`` variant) of the sampled answers, when the reward is
  ``sar`` or ``log_sar`` is on (then GRPO runs show it too, at the cost of the ctx(0) pass);
- ``accuracy/batch`` (= mean R_VR), ``length/mean``, ``length/median``, ``length/correct_mean``
  (answer tokens, eos included; null when no answer is correct), ``truncation_rate``,
  ``groups/no_signal`` (share of groups whose rewards are all equal: zero advantage, no gradient);
- ``kl`` (mean k3 per token, when ``kl_coef > 0``), ``clip_fraction`` (share of answer tokens whose
  gradient a clip cut), ``loss`` and ``grad_norm`` (before clipping; both averaged over the step's
  updates), ``lr``;
- ``time/generate``, ``time/score`` (old and reference log-probs, rewards, and the ctx(0) pass when
  the reward needs it), ``time/update``, ``time/step`` (their sum: the cost of training), ``time/sar``
  (the ctx(0) pass alone; not part of ``time/step`` when SAR is only logged), in seconds;
- on evaluation steps (every ``eval_every`` and the last): ``eval/accuracy``, ``eval/mean_length``
  (greedy, eos excluded, as ``sar_lib.evaluate``), ``time/eval``.

Exact resume: everything random in step ``k`` is seeded from ``(seed, k)`` and the questions of step
``k`` come from a permutation seeded by ``(seed, epoch)``, so a run resumed from its step-k checkpoint
repeats the uninterrupted run's steps k+1.. exactly (on the same hardware).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import random
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import Tensor
from tqdm.auto import tqdm

from sar_lib import rewards as R
from sar_lib.data import Problem, load_problems
from sar_lib.evaluate import evaluate
from sar_lib.generation import answer_texts, generate
from sar_lib.models import get_profile, load_policy
from sar_lib.perplexity import answer_logprobs, pack_sequences, score_answer_ids
from sar_lib.sar import VARIANTS, empty_prompt_text, encode_text, prompt_text, sar_from_nll, sar_from_token_ids

ADVANTAGES = ("dr_grpo", "std")

# Fields that change what is logged or when, not the trained weights: --resume may change them.
NON_TRAINING_FIELDS = ("steps", "out", "save_every", "eval_every", "eval_size", "eval_dataset",
                       "eval_batch_size", "log_sar", "progress")


# ---------------------------------------------------------------- configuration
@dataclass
class GRPOConfig:
    """Everything a run depends on. ``None`` means "the profile's value" (see :meth:`resolved`)."""

    # policy: a model name ("tiny", a local dir, a hub name) loaded with LoRA (+ 4-bit) by the profile
    profile: str = "tiny-cpu"
    model: str | None = None
    load_in_4bit: bool | None = None
    lora_r: int | None = None
    # reward R = correctness_weight * R_VR + alpha * r
    reward: str = "sar"
    alpha: float | None = None        # None: the reward's default (rewards.DEFAULT_ALPHAS)
    correctness_weight: float = 1.0   # 0: train on the shaping term alone (the paper's "R_SA alone" ablation)
    sar_variant: str = "ppl"          # sar.VARIANTS; the SAR logged as sar/mean is always "ppl"
    log_sar: bool = True              # log sar/mean even when the reward does not need it (one extra pass)
    # GRPO
    group_size: int | None = None
    questions_per_step: int | None = None
    updates_per_step: int = 2
    steps: int = 20
    advantage: str = "dr_grpo"
    clip_eps_low: float = 0.2
    clip_eps_high: float = 0.2
    dual_clip: float | None = 3.0     # None: no dual clip
    kl_coef: float = 0.0              # k3 KL to the LoRA-disabled model (paper: 0.001); 0 skips that pass
    loss_constant: int | None = None  # None: max_new_tokens
    # sampling
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    max_prompt_tokens: int | None = None
    generation_batch_size: int | None = None  # prompts per generate call; None: questions_per_step
    suppress_eos: bool = False                # forbid eos: every answer is max_new_tokens long (benchmarks)
    # optimiser
    learning_rate: float | None = None
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    micro_batch_size: int | None = None       # answers per forward/backward
    # data
    train_dataset: str = "arith-train"
    train_size: int | None = None             # None: the profile's value, else the loader's default
    eval_dataset: str = "arith-test"
    eval_size: int = 100
    eval_every: int = 0                       # 0: only the final evaluation
    eval_batch_size: int | None = None
    # run
    seed: int = 0
    out: str | None = None                    # None: runs/<reward>-a<alpha>-s<seed>
    save_every: int = 0                       # 0: checkpoint only at the end
    threads: int | None = None                # torch CPU threads (None: torch's default); see train()
    progress: bool = True

    def resolved(self) -> "GRPOConfig":
        """A copy with every ``None`` filled in, then :meth:`validate`-d.

        A field left ``None`` takes the profile's field of the same name (so a profile sets the
        model, LoRA, group size, lengths, batch sizes, learning rate...); explicit values win.
        """
        profile = get_profile(self.profile)
        filled = {f.name: getattr(profile, f.name) for f in dataclasses.fields(self)
                  if getattr(self, f.name) is None and hasattr(profile, f.name)}
        cfg = dataclasses.replace(self, **filled)
        if cfg.alpha is None:
            cfg.alpha = R.DEFAULT_ALPHAS.get(cfg.reward, 0.0)
        if cfg.loss_constant is None:
            cfg.loss_constant = cfg.max_new_tokens
        if cfg.generation_batch_size is None:
            cfg.generation_batch_size = cfg.questions_per_step
        if cfg.out is None:
            cfg.out = f"runs/{cfg.reward}-a{cfg.alpha:g}-s{cfg.seed}"
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and how to fix it (nothing is loaded)."""
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        missing = [f.name for f in dataclasses.fields(self)
                   if getattr(self, f.name) is None and f.name not in ("dual_clip", "train_size", "threads")]
        need(not missing, f"config fields {missing} are unset and profile {self.profile!r} has no value for "
                          "them; pass them explicitly")
        need(self.reward in R.REWARD_NAMES,
             f"unknown reward {self.reward!r}; choose one of {', '.join(R.REWARD_NAMES)}")
        need(self.alpha >= 0, f"alpha must be >= 0 (the shaping term's weight), got {self.alpha}")
        need(self.reward != "none" or self.alpha == 0,
             f"reward 'none' has no shaping term, so alpha must be 0 (got {self.alpha}); drop --alpha")
        need(self.correctness_weight >= 0, f"correctness_weight must be >= 0, got {self.correctness_weight}")
        need(self.correctness_weight > 0 or (self.reward != "none" and self.alpha > 0),
             "correctness_weight 0 with no shaping term (reward 'none' or alpha 0) leaves no reward at all; "
             "use correctness_weight 1 or a reward such as 'sar' with alpha > 0")
        need(self.sar_variant in VARIANTS,
             f"unknown sar_variant {self.sar_variant!r}; choose one of {', '.join(VARIANTS)}")
        need(self.advantage in ADVANTAGES,
             f"unknown advantage {self.advantage!r}; choose one of {', '.join(ADVANTAGES)}")
        need(self.group_size >= 2, f"group_size must be >= 2: a group-mean baseline needs at least two answers "
                                   f"per question (got {self.group_size})")
        for name in ("questions_per_step", "updates_per_step", "steps", "micro_batch_size",
                     "generation_batch_size", "eval_batch_size", "eval_size", "max_new_tokens",
                     "max_prompt_tokens", "loss_constant"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.questions_per_step % self.updates_per_step == 0,
             f"questions_per_step={self.questions_per_step} must be a multiple of updates_per_step="
             f"{self.updates_per_step}: each optimiser update takes whole groups")
        need(self.train_size is None or self.train_size >= 1, f"train_size must be >= 1, got {self.train_size}")
        need(self.threads is None or self.threads >= 1, f"threads must be >= 1 (or None), got {self.threads}")
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        need(0 <= self.clip_eps_low < 1, f"clip_eps_low must be in [0, 1), got {self.clip_eps_low}")
        need(self.clip_eps_high >= 0, f"clip_eps_high must be >= 0, got {self.clip_eps_high}")
        need(self.dual_clip is None or self.dual_clip > 1,
             f"dual_clip must be > 1 (or None to disable it), got {self.dual_clip}")
        need(self.kl_coef >= 0, f"kl_coef must be >= 0, got {self.kl_coef}")
        need(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        need(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        need(self.eval_every >= 0 and self.save_every >= 0,
             f"eval_every and save_every must be >= 0 (0 = only at the end), got {self.eval_every}, {self.save_every}")

    def save(self, run_dir: Path) -> None:
        """Write ``config.json`` and ``config.yaml`` into ``run_dir``."""
        values = dataclasses.asdict(self)
        (run_dir / "config.json").write_text(json.dumps(values, indent=2) + "\n")
        (run_dir / "config.yaml").write_text(yaml.safe_dump(values, sort_keys=False))


def load_config(run_dir: str | Path) -> GRPOConfig:
    """The config saved in a run folder."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {run_dir} is not a run folder written by sar train")
    values = json.loads(path.read_text())
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    return GRPOConfig(**{k: v for k, v in values.items() if k in known})


def training_differences(saved: GRPOConfig, new: GRPOConfig) -> list[str]:
    """Fields that change training (all but :data:`NON_TRAINING_FIELDS`) and differ, as "name: a -> b"."""
    return [f"{f.name}: {getattr(saved, f.name)!r} -> {getattr(new, f.name)!r}"
            for f in dataclasses.fields(GRPOConfig)
            if f.name not in NON_TRAINING_FIELDS and getattr(saved, f.name) != getattr(new, f.name)]


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


def ppo_clip_loss(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, *, eps_low: float = 0.2,
                  eps_high: float = 0.2, dual_clip: float | None = 3.0) -> tuple[Tensor, Tensor]:
    """Per-token PPO-clip loss with the dual clip (verl's ``compute_policy_loss``).

    ``logprobs``, ``old_logprobs``: ``[B, T]``; ``advantages``: ``[B]`` (one per answer).
    ``r = exp(logprobs - old_logprobs)``;
    ``l = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high))``, then where ``A < 0``:
    ``l = min(l, -A dual_clip)`` (caps the loss of a very unlikely-made-likely bad token).

    Returns ``(loss [B, T], clipped [B, T] bool)``: ``clipped`` marks tokens whose gradient a clip cut.
    """
    ratio = torch.exp((logprobs - old_logprobs).clamp(-20.0, 20.0))
    adv = advantages.unsqueeze(-1)
    unclipped = -adv * ratio
    clipped_loss = -adv * ratio.clamp(1 - eps_low, 1 + eps_high)
    loss = torch.maximum(unclipped, clipped_loss)
    clipped = clipped_loss > unclipped
    if dual_clip is not None:
        cap = -adv * dual_clip
        dual = (adv < 0) & (loss > cap)
        loss = torch.where(dual, cap, loss)
        clipped = clipped | dual
    return loss, clipped


def k3_kl(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """Per-token k3 ("low_var_kl") estimate of KL(pi || pi_ref), ``[B, T]``.

    With ``d = log pi_ref - log pi``: ``k3 = exp(d) - d - 1 >= 0``, clamped to [-10, 10] like verl.
    """
    d = (ref_logprobs - logprobs).clamp(-20.0, 20.0)
    return (torch.exp(d) - d - 1).clamp(-10.0, 10.0)


def answer_losses(token_losses: Tensor, mask: Tensor, constant: float) -> Tensor:
    """Per-answer loss ``sum_t mask * l_t / constant``; ``[B, T]`` in, ``[B]`` out."""
    return (token_losses * mask).sum(-1) / constant


def shaping_reward(reward: str, *, group_size: int, lengths: Tensor, correct: Tensor, max_new_tokens: int,
                   nll_qa: Tensor | None = None, nll_a: Tensor | None = None, certainty: Tensor | None = None,
                   mask: Tensor | None = None, sar_variant: str = "ppl") -> Tensor:
    """The shaping term r of ``R = R_VR + alpha * r`` for ``N = Q * G`` answers (group-major), ``[N]``.

    ``lengths`` (tokens, eos included), ``correct`` (R_VR in {0, 1}), ``nll_qa`` (= log ppl(a|q)),
    ``nll_a`` (= log ppl(a)): ``[N]``; ``certainty`` (KL(U || pi) per token) and its ``mask``:
    ``[N, T]``. Only what the reward uses is needed. For "sar", ``r = sar_from_nll(nll_qa, nll_a,
    sar_variant)``; every other reward is ``rewards.auxiliary_reward``, group by group (O1-pruner and
    ER compare an answer with the rest of its group).
    """
    sar = sar_from_nll(nll_qa, nll_a, sar_variant) if reward == "sar" else None
    inputs = dict(lengths=lengths, correct=correct, nll_qa=nll_qa, sar=sar, certainty=certainty, mask=mask)
    given = {name: value.split(group_size) for name, value in inputs.items() if value is not None}
    return torch.cat([R.auxiliary_reward(reward, max_length=max_new_tokens,
                                         **{name: parts[q] for name, parts in given.items()})
                      for q in range(len(lengths) // group_size)])


# ---------------------------------------------------------------- determinism
def _seed_from(*keys: int) -> int:
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (sampling and dropout use torch's)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def step_questions(n_problems: int, questions_per_step: int, seed: int, step: int) -> list[int]:
    """Indices of the training problems of ``step`` (1-based): the epoch-wise permutations seeded by
    ``(seed, epoch)``, read at positions ``(step-1)*Q .. step*Q - 1`` (a pure function: resumable)."""
    picked = []
    for position in range((step - 1) * questions_per_step, step * questions_per_step):
        epoch, k = divmod(position, n_problems)
        picked.append(int(np.random.default_rng(_seed_from(seed, 0, epoch)).permutation(n_problems)[k]))
    return picked


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
def _update_plan(n_questions: int, group_size: int, updates: int, micro_batch_size: int) -> list[list[list[int]]]:
    """Answer indices per optimiser update (a contiguous 1/updates of the questions), cut into micro-batches."""
    per_update = n_questions // updates * group_size
    plan = []
    for u in range(updates):
        idx = list(range(u * per_update, (u + 1) * per_update))
        plan.append([idx[i:i + micro_batch_size] for i in range(0, len(idx), micro_batch_size)])
    return plan


def grpo_step(model, tokenizer, optimizer, problems: list[Problem], config: GRPOConfig, *, step: int,
              ctx0_ids: list[int]) -> dict:
    """One GRPO step on ``problems`` (the step's Q questions); returns its metrics (see module doc)."""
    cfg, G = config, config.group_size
    device = model.get_input_embeddings().weight.device
    seed_everything(_seed_from(cfg.seed, 1, step))
    t_step = time.perf_counter()

    # 1. Sample G answers per question with the current policy.
    rollouts = generate(model, tokenizer, [prompt_text(tokenizer, p.question) for p in problems],
                        max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.temperature,
                        top_p=cfg.top_p, num_return_sequences=G, batch_size=cfg.generation_batch_size,
                        suppress_eos=cfg.suppress_eos)
    texts = answer_texts(tokenizer, rollouts)
    lengths = torch.tensor(rollouts.lengths, dtype=torch.float32)
    t_generate = time.perf_counter() - t_step

    # 2. Score, without gradients and in eval mode (no dropout: the numbers of the policy that sampled).
    #    The old log-probs give ppl(a|q) (and the self-certainty) for free.
    t0 = time.perf_counter()
    n = len(texts)
    score = functools.partial(score_answer_ids, model, rollouts.prompt_ids, rollouts.answer_ids,
                              pad_token_id=tokenizer.pad_token_id, batch_size=cfg.micro_batch_size)
    old = score(with_certainty=cfg.reward == "certainty")  # [N, T_max] log pi_old(a_t | ctx(q), a_<t)
    ref = None
    if cfg.kl_coef > 0:
        with model.disable_adapter():  # the reference: the base model without LoRA
            ref = score()
    t_score = time.perf_counter() - t0

    sar, nll_a, t_sar = None, None, 0.0
    if cfg.reward == "sar" or cfg.log_sar:  # the one extra forward pass, over ctx(0) + a
        t0 = time.perf_counter()
        nll_a = sar_from_token_ids(model, ctx0_ids, rollouts.answer_ids, pad_token_id=tokenizer.pad_token_id,
                                   nll_qa=old.nll, batch_size=cfg.micro_batch_size)["nll_a"]
        sar = sar_from_nll(old.nll, nll_a, "ppl")
        t_sar = time.perf_counter() - t0
        if cfg.reward == "sar":
            t_score += t_sar

    t0 = time.perf_counter()
    correct = torch.cat([R.correctness(texts[q * G:(q + 1) * G], p.gold, p.kind) for q, p in enumerate(problems)])
    shaping = shaping_reward(cfg.reward, group_size=G, lengths=lengths, correct=correct,
                             max_new_tokens=cfg.max_new_tokens, nll_qa=old.nll,
                             nll_a=nll_a, certainty=old.certainty, mask=old.mask,
                             sar_variant=cfg.sar_variant)
    total = R.combine(cfg.correctness_weight * correct, shaping, cfg.alpha)
    advantages = group_advantages(total.view(-1, G), cfg.advantage).flatten().to(device)
    t_score += time.perf_counter() - t0

    # 3. Update: one optimiser step per mini-batch, gradients accumulated over its micro-batches.
    t0 = time.perf_counter()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    losses, grad_norms = [], []
    n_tokens = n_clipped = kl_sum = 0.0
    for update in _update_plan(len(problems), G, cfg.updates_per_step, cfg.micro_batch_size):
        n_answers = sum(len(idx) for idx in update)
        optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for idx in update:
            batch = pack_sequences([rollouts.prompt_ids[i] for i in idx], [rollouts.answer_ids[i] for i in idx],
                                   tokenizer.pad_token_id)
            T = batch.answer_mask.shape[1]
            mask = batch.answer_mask.to(device)
            logprobs = answer_logprobs(model, batch).logprobs
            token_loss, clipped = ppo_clip_loss(logprobs, old.logprobs[idx, :T].to(device), advantages[idx],
                                                eps_low=cfg.clip_eps_low, eps_high=cfg.clip_eps_high,
                                                dual_clip=cfg.dual_clip)
            if cfg.kl_coef > 0:
                kl = k3_kl(logprobs, ref.logprobs[idx, :T].to(device))
                token_loss = token_loss + cfg.kl_coef * kl
                kl_sum += float((kl.detach() * mask).sum())
            loss = answer_losses(token_loss, mask, cfg.loss_constant).sum() / n_answers
            loss.backward()
            loss_sum += float(loss.detach())
            n_tokens += float(mask.sum())
            n_clipped += float((clipped & mask).sum())
        grad_norms.append(float(torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm)))
        optimizer.step()
        losses.append(loss_sum)
    model.eval()
    t_update = time.perf_counter() - t0

    correct_lengths = lengths[correct > 0]
    metrics = {
        "step": step,
        "reward/total": float(total.mean()),
        "reward/correctness": float(correct.mean()),
    }
    if cfg.reward != "none":
        metrics[f"reward/{cfg.reward}"] = float(shaping.mean())
    if sar is not None:
        metrics["sar/mean"] = float(sar.mean())
    metrics.update({
        "accuracy/batch": float(correct.mean()),
        "length/mean": float(lengths.mean()),
        "length/median": float(statistics.median(rollouts.lengths)),
        "length/correct_mean": float(correct_lengths.mean()) if len(correct_lengths) else None,
        "truncation_rate": sum(rollouts.truncated) / n,
        "groups/no_signal": float((total.view(-1, G).std(-1) == 0).float().mean()),
    })
    if cfg.kl_coef > 0:
        metrics["kl"] = kl_sum / n_tokens
    metrics.update({
        "clip_fraction": n_clipped / n_tokens,
        "loss": sum(losses) / len(losses),
        "grad_norm": sum(grad_norms) / len(grad_norms),
        "lr": optimizer.param_groups[0]["lr"],
        "time/generate": t_generate,
        "time/score": t_score,
        "time/update": t_update,
        "time/step": t_generate + t_score + t_update,
    })
    if sar is not None:
        metrics["time/sar"] = t_sar
    return metrics


# ---------------------------------------------------------------- checkpoints
def _save_checkpoint(run_dir: Path, model, optimizer, step: int, data_position: int) -> None:
    """Write ``checkpoint/`` (replacing the previous one): trainable weights, optimizer, RNG, step."""
    tmp = run_dir / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save({name: p.detach().cpu() for name, p in model.named_parameters() if p.requires_grad},
               tmp / "trainable.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save({"step": step, "data_position": data_position, "rng": _rng_states()}, tmp / "state.pt")
    if hasattr(model, "peft_config"):
        model.save_pretrained(tmp / "adapter")  # for loading with peft outside this trainer
    final = run_dir / "checkpoint"
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def _load_trainable(model, checkpoint: Path) -> None:
    saved = torch.load(checkpoint / "trainable.pt", map_location="cpu")
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(saved) != set(params):
        raise ValueError(f"{checkpoint} does not match the model: its trainable parameters differ "
                         f"({len(saved)} saved, {len(params)} in the model); was the config changed?")
    with torch.no_grad():
        for name, value in saved.items():
            params[name].copy_(value)


def _checkpoint_state(run_dir: Path) -> dict:
    """``{"step", "data_position", "rng"}`` of the run's checkpoint (FileNotFoundError if none)."""
    path = run_dir / "checkpoint" / "state.pt"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} holds no checkpoint to resume from; start the run again without --resume")
    # Our own file; python/numpy RNG states are not plain tensors, hence weights_only=False.
    return torch.load(path, map_location="cpu", weights_only=False)


def _load_checkpoint(run_dir: Path, model, optimizer) -> int:
    """Restore weights, optimizer and RNG states from ``run_dir/checkpoint``; returns its step."""
    state = _checkpoint_state(run_dir)
    _load_trainable(model, run_dir / "checkpoint")
    optimizer.load_state_dict(torch.load(run_dir / "checkpoint" / "optimizer.pt", map_location="cpu"))
    _set_rng_states(state["rng"])
    return int(state["step"])


def _keep_metrics_until(path: Path, step: int) -> None:
    """Drop metric lines logged after ``step`` (a run stopped between two checkpoints)."""
    if path.exists():
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))


# ---------------------------------------------------------------- the run
def _prepare_run_dir(config: GRPOConfig, resume: bool) -> Path:
    """Create the run folder, or check that ``resume`` may continue it (before anything loads)."""
    run_dir = Path(config.out)
    if resume:
        saved = load_config(run_dir).resolved()
        diff = training_differences(saved, config)
        if diff:
            raise ValueError(f"cannot resume {run_dir}: these training settings differ from the saved run: "
                             f"{'; '.join(diff)}. Use the saved values or start a new run with another --out")
        done = int(_checkpoint_state(run_dir)["step"])
        if done > config.steps:
            raise ValueError(f"{run_dir} is already trained for {done} steps; pass --steps {done} or more")
    elif (run_dir / "checkpoint").exists():
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir)
    return run_dir


def _check_lengths(config: GRPOConfig, model, tokenizer, problems: list[Problem]) -> None:
    longest = max(problems, key=lambda p: len(encode_text(tokenizer, prompt_text(tokenizer, p.question))))
    n_prompt = len(encode_text(tokenizer, prompt_text(tokenizer, longest.question)))
    if n_prompt > config.max_prompt_tokens:
        raise ValueError(f"the prompt of training problem {longest.id} is {n_prompt} tokens, longer than "
                         f"max_prompt_tokens={config.max_prompt_tokens}; raise --max-prompt-tokens")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and config.max_prompt_tokens + config.max_new_tokens > limit:
        raise ValueError(f"max_prompt_tokens + max_new_tokens = {config.max_prompt_tokens} + "
                         f"{config.max_new_tokens} exceeds the model's context of {limit} tokens; lower them")


def policy_profile(config: GRPOConfig):
    """The profile with the config's overrides of its fields (model, LoRA, 4-bit...)."""
    profile = get_profile(config.profile)
    names = {f.name for f in dataclasses.fields(profile)} & {f.name for f in dataclasses.fields(config)}
    return dataclasses.replace(profile, **{name: getattr(config, name) for name in names})


def _evaluate(model, tokenizer, problems: list[Problem], config: GRPOConfig) -> dict:
    return evaluate(model, tokenizer, problems, max_new_tokens=config.max_new_tokens,
                    batch_size=config.eval_batch_size, progress=False)


def write_eval(run_dir: Path, result: dict, *, step: int, dataset: str) -> None:
    """``eval.json`` (the summary) and ``eval_records.jsonl`` (one line per answer) of an evaluation."""
    summary = {"step": step, "dataset": dataset, **{k: v for k, v in result.items() if k != "records"}}
    (run_dir / "eval.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (run_dir / "eval_records.jsonl").open("w") as f:
        for record in result.get("records", []):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def train(config: GRPOConfig, *, resume: bool = False) -> Path:
    """Run GRPO as ``config`` says; returns the run folder (with metrics.jsonl, checkpoint/, eval.json).

    ``resume=True`` continues the run in ``config.out`` from its checkpoint; training settings must
    match the saved config (``steps``, evaluation and saving cadence may change).
    ``config.threads`` sets torch's CPU thread count for the whole process: a model of a few million
    parameters makes ops too small to split, and one thread generated 2.4x (idle 2-core machine) to
    30x (busy one) faster than two.
    """
    config = config.resolved()
    with _only_trainer(Path(config.out)):
        return _train(config, resume)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by another user
        return True
    return True


@contextlib.contextmanager
def _only_trainer(run_dir: Path):
    """Hold ``run_dir/train.lock`` (this process's pid) while training: a second process on the same
    folder would interleave metrics.jsonl and overwrite the checkpoints, so it is refused. A lock
    left by a process that no longer exists is taken over."""
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


def _train(config: GRPOConfig, resume: bool) -> Path:
    run_dir = _prepare_run_dir(config, resume)
    metrics_path = run_dir / "metrics.jsonl"
    if config.threads is not None:
        torch.set_num_threads(config.threads)

    seed_everything(config.seed)  # the LoRA initialisation
    model, tokenizer = load_policy(config.model, policy_profile(config))
    if config.kl_coef > 0 and not hasattr(model, "disable_adapter"):
        raise ValueError("kl_coef > 0 needs a LoRA policy (the reference is the model with its adapters "
                         "disabled); use a profile with LoRA or set kl_coef=0")
    # The problem pools do not depend on the seed: every run of a comparison sees the same questions.
    train_problems = load_problems(config.train_dataset, limit=config.train_size, seed=0)
    eval_problems = load_problems(config.eval_dataset, limit=config.eval_size, seed=0)
    _check_lengths(config, model, tokenizer, train_problems)
    ctx0_ids = encode_text(tokenizer, empty_prompt_text(tokenizer))

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    start = 0
    if resume:
        start = _load_checkpoint(run_dir, model, optimizer)
        _keep_metrics_until(metrics_path, start)
    elif metrics_path.exists():
        metrics_path.unlink()

    Q = config.questions_per_step
    bar = tqdm(range(start + 1, config.steps + 1), initial=start, total=config.steps, desc="grpo",
               disable=not config.progress)
    final_eval = None
    for step in bar:
        problems = [train_problems[i] for i in step_questions(len(train_problems), Q, config.seed, step)]
        metrics = grpo_step(model, tokenizer, optimizer, problems, config, step=step, ctx0_ids=ctx0_ids)
        if step == config.steps or (config.eval_every and step % config.eval_every == 0):
            t0 = time.perf_counter()
            result = _evaluate(model, tokenizer, eval_problems, config)
            metrics.update({"eval/accuracy": result["accuracy"], "eval/mean_length": result["mean_length"],
                            "time/eval": time.perf_counter() - t0})
            if step == config.steps:
                final_eval = result
        with metrics_path.open("a") as f:
            f.write(json.dumps(metrics) + "\n")
        bar.set_postfix({"R": f"{metrics['reward/total']:.3f}", "acc": f"{metrics['accuracy/batch']:.2f}",
                         "len": f"{metrics['length/mean']:.0f}",
                         **({"sar": f"{metrics['sar/mean']:.3f}"} if "sar/mean" in metrics else {})})
        if step == config.steps or (config.save_every and step % config.save_every == 0):
            _save_checkpoint(run_dir, model, optimizer, step, step * Q)
    bar.close()

    if final_eval is None:  # resumed a finished run: evaluate its final weights again
        final_eval = _evaluate(model, tokenizer, eval_problems, config)
    write_eval(run_dir, final_eval, step=config.steps, dataset=config.eval_dataset)
    return run_dir


def load_run(run_dir: str | Path):
    """``(model, tokenizer)`` of a run's last checkpoint: its policy with the trained weights."""
    run_dir = Path(run_dir)
    config = load_config(run_dir).resolved()
    model, tokenizer = load_policy(config.model, policy_profile(config))
    _load_trainable(model, run_dir / "checkpoint")
    model.eval()
    return model, tokenizer
