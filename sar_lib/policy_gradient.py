"""What one step of GRPO (``sar_lib.grpo``) and of PPO (``sar_lib.ppo``) share, in the order a step
runs: seed it, sample answers, score them (old log-probs, SAR's ctx(0) pass, the reference, the
reward ``R = w * R_VR + alpha * r``), update the policy with the PPO-clip loss, and report the
step's metrics. The two algorithms differ only in the advantage they hand to :func:`update_policy`:
GRPO's is one number per answer (its reward minus its group's mean), PPO's one per token (GAE
over a critic's values).
"""

from __future__ import annotations

import functools
import random
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from sar_lib import engine
from sar_lib import rewards as R
from sar_lib.fast_generation import fp32_weights
from sar_lib.generation import Rollouts, answer_texts, generate
from sar_lib.grpo_config import GRPOConfig, policy_profile
from sar_lib.perplexity import (BatchScores, answer_logprobs, encode_prompts, logprobs_after_prompts, mean_nll,
                                pack_sequences, score_answer_ids, score_answers_after_prompts)
from sar_lib.problem import Problem
from sar_lib.sar import prompt_text, sar_from_nll, sar_from_token_ids


# ---------------------------------------------------------------- the loss maths (pure functions)
def ppo_clip_loss(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, *, eps_low: float = 0.2,
                  eps_high: float = 0.2, dual_clip: float | None = 3.0) -> tuple[Tensor, Tensor]:
    """Per-token PPO-clip loss with the dual clip (verl's ``compute_policy_loss``).

    ``logprobs``, ``old_logprobs``: ``[B, T]``; ``advantages``: ``[B]`` (one per answer, GRPO) or
    ``[B, T]`` (one per token, PPO). ``r = exp(logprobs - old_logprobs)``;
    ``l = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high))``, then where ``A < 0``:
    ``l = min(l, -A dual_clip)`` (caps the loss of a very unlikely-made-likely bad token).

    Returns ``(loss [B, T], clipped [B, T] bool)``: ``clipped`` marks tokens whose gradient a clip cut.
    """
    ratio = torch.exp((logprobs - old_logprobs).clamp(-20.0, 20.0))
    adv = advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages
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
    sar = sar_from_nll(nll_qa, nll_a, sar_variant) if R.reward_spec(reward).needs_sar_pass else None
    inputs = dict(lengths=lengths, correct=correct, nll_qa=nll_qa, sar=sar, certainty=certainty, mask=mask)
    given = {name: value.split(group_size) for name, value in inputs.items() if value is not None}
    return torch.cat([R.auxiliary_reward(reward, max_length=max_new_tokens,
                                         **{name: parts[q] for name, parts in given.items()})
                      for q in range(len(lengths) // group_size)])


# ---------------------------------------------------------------- determinism
def seed_from(*keys: int) -> int:
    """A 32-bit seed derived from the integers ``keys`` (numpy's SeedSequence)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (sampling and dropout use torch's)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- sample and score
@dataclass
class ScoredRollouts:
    """One step's ``N = Q * G`` sampled answers (question-major) and what was scored on them."""

    rollouts: Rollouts
    texts: list[str]
    lengths: Tensor             # [N] answer tokens, eos included
    old: BatchScores            # log pi_old [N, T] and its mask, nll [N] = log ppl(a|q) (+ hidden for PPO)
    ref: BatchScores | None     # the reference's log-probs (kl_coef > 0)
    sar: Tensor | None          # [N] official SAR, when the reward needs it or log_sar is on
    correct: Tensor             # [N] R_VR in {0, 1}
    shaping: Tensor             # [N] the shaping term r
    total: Tensor               # [N] R = w * R_VR + alpha * r
    seconds: dict = field(default_factory=dict)   # generate, score, sar


def sample_and_score(model, tokenizer, problems: list[Problem], config: GRPOConfig, *, step: int,
                     ctx0_ids: list[int], with_hidden: bool = False, sampler=None) -> ScoredRollouts:
    """Steps 1-2 of the module doc of ``sar_lib.grpo``: sample ``config.group_size`` answers per
    problem at the config's temperature, then score them without gradients and in eval mode (no
    dropout: the numbers of the policy that sampled). The old log-probs give ppl(a|q) (and the
    self-certainty) for free; SAR adds one pass over ctx(0) + a. ``with_hidden`` keeps the hidden
    states of the old pass (``old.hidden`` ``[N, T, H]``, PPO's critic features). ``sampler``: a
    ``fast_generation.GenerationCopy`` of ``model`` that samples in its place (synced first, inside
    ``time/generate``). Everything random is seeded from ``(config.seed, step)``."""
    cfg, G, spec = config, config.group_size, R.reward_spec(config.reward)
    seed_everything(seed_from(cfg.seed, 1, step))
    t0 = time.perf_counter()
    if sampler is not None:
        sampler.sync()
    sample = engine.sample if cfg.engine else generate
    rollouts = sample(model if sampler is None else sampler.model, tokenizer,
                      [prompt_text(tokenizer, p.question) for p in problems],
                      max_new_tokens=cfg.max_new_tokens, do_sample=True, temperature=cfg.temperature,
                      top_p=cfg.top_p, num_return_sequences=G, batch_size=cfg.generation_batch_size,
                      suppress_eos=cfg.suppress_eos)
    texts = answer_texts(tokenizer, rollouts)
    lengths = torch.tensor(rollouts.lengths, dtype=torch.float32)
    t_generate = time.perf_counter() - t0

    t0 = time.perf_counter()
    old, ref, scorer = _old_and_reference(model, tokenizer, rollouts, cfg, sampler=sampler, with_hidden=with_hidden)
    t_score = time.perf_counter() - t0

    sar, nll_a, t_sar = None, None, 0.0
    if spec.needs_sar_pass or cfg.log_sar:  # the one extra forward pass, over ctx(0) + a
        t0 = time.perf_counter()
        nll_a = sar_from_token_ids(scorer, ctx0_ids, rollouts.answer_ids, pad_token_id=tokenizer.pad_token_id,
                                   nll_qa=old.nll, batch_size=cfg.micro_batch_size)["nll_a"]
        sar = sar_from_nll(old.nll, nll_a, "ppl")
        t_sar = time.perf_counter() - t0
        if spec.needs_sar_pass:
            t_score += t_sar

    t0 = time.perf_counter()
    correct = torch.cat([R.correctness(texts[q * G:(q + 1) * G], p.gold, p.kind) for q, p in enumerate(problems)])
    shaping = shaping_reward(cfg.reward, group_size=G, lengths=lengths, correct=correct,
                             max_new_tokens=cfg.max_new_tokens, nll_qa=old.nll,
                             nll_a=nll_a, certainty=old.certainty, mask=old.mask,
                             sar_variant=cfg.sar_variant)
    total = R.combine(cfg.correctness_weight * correct, shaping, cfg.alpha)
    t_score += time.perf_counter() - t0
    return ScoredRollouts(rollouts, texts, lengths, old, ref, sar, correct, shaping, total,
                          {"generate": t_generate, "score": t_score, "sar": t_sar})


def _old_and_reference(model, tokenizer, rollouts: Rollouts, config: GRPOConfig, *, sampler=None,
                      with_hidden: bool = False) -> tuple[BatchScores, BatchScores | None, object]:
    """``(old, ref, scorer)`` of :func:`sample_and_score`: the old log-probs of the sampled answers (the
    sampler's own where they are the policy's, else a scoring pass, with the self-certainty when the
    reward needs it), the reference's when ``kl_coef > 0``, and the model that runs SAR's pass."""
    cfg, G = config, config.group_size
    with_certainty = R.reward_spec(cfg.reward).needs_certainty
    common = dict(pad_token_id=tokenizer.pad_token_id, batch_size=cfg.micro_batch_size)
    # In fp32 the sampler's log-probs are the policy's (to 1e-5, tested): the old pass is not run again.
    exact_sampler = cfg.engine and fp32_weights(model) and (sampler is None or fp32_weights(sampler.model))
    scorer = sampler.model if exact_sampler and sampler is not None else model
    if cfg.engine:  # each question's prompt once, then its G answers
        score = functools.partial(score_answers_after_prompts, model, rollouts.prompt_ids[::G],
                                  [k // G for k in range(len(rollouts.answer_ids))], rollouts.answer_ids, **common)
    else:
        score = functools.partial(score_answer_ids, model, rollouts.prompt_ids, rollouts.answer_ids, **common)
    if exact_sampler and not with_certainty and not with_hidden:
        old = sampled_scores(rollouts)
    else:
        old = score(with_certainty=with_certainty, with_hidden=with_hidden)  # log pi_old(a_t | ctx(q), a_<t)
    ref = None
    if cfg.kl_coef > 0:
        with model.disable_adapter():  # the reference: the base model without LoRA
            ref = score()
    return old, ref, scorer


def sampled_scores(rollouts: Rollouts) -> BatchScores:
    """The sampler's log-probs of its own answers (``Rollouts.logprobs``, at temperature 1) as
    :class:`~sar_lib.perplexity.BatchScores` ``[N, T]``: the old log-probs without another pass."""
    n, width = len(rollouts.answer_ids), max(rollouts.lengths)
    logprobs = torch.zeros(n, width)
    for k, row in enumerate(rollouts.logprobs):
        logprobs[k, :len(row)] = torch.tensor(row)
    mask = torch.arange(width) < torch.tensor(rollouts.lengths).unsqueeze(1)
    return BatchScores(logprobs, mask, mean_nll(logprobs, mask))


def completion_rows(scored: ScoredRollouts, problems: list[Problem], advantages: Tensor, step: int) -> list[dict]:
    """One ``completions.jsonl`` row per answer: step, problem id, text, length in tokens with eos,
    correctness, shaping term r, SAR when computed, reward and ``advantages`` ``[N]``."""
    G = len(scored.texts) // len(problems)
    return [{"step": step, "id": problems[k // G].id, "completion": scored.texts[k], "length": int(scored.lengths[k]),
             "correct": bool(scored.correct[k]), "shaping": float(scored.shaping[k]),
             **({"sar": float(scored.sar[k])} if scored.sar is not None else {}),
             "reward": float(scored.total[k]), "advantage": float(advantages[k])} for k in range(len(scored.texts))]


# ---------------------------------------------------------------- update
def update_plan(n_questions: int, group_size: int, updates: int, micro_batch_size: int, *,
                whole_groups: bool = False) -> list[list[list[int]]]:
    """Answer indices per optimiser update (a contiguous 1/updates of the questions), cut into micro-batches
    of ``micro_batch_size`` answers; with ``whole_groups``, of ``max(1, micro_batch_size // group_size)``
    whole groups (so that each question's prompt is encoded once per micro-batch)."""
    per_update = n_questions // updates * group_size
    size = max(1, micro_batch_size // group_size) * group_size if whole_groups else micro_batch_size
    plan = []
    for u in range(updates):
        idx = list(range(u * per_update, (u + 1) * per_update))
        plan.append([idx[i:i + size] for i in range(0, len(idx), size)])
    return plan


def policy_logprobs(model, tokenizer, rollouts: Rollouts, idx: list[int], group_size: int, *,
                    shared_prompts: bool) -> tuple[Tensor, Tensor]:
    """``(log pi(a_t | ctx(q), a_<t) [B, T], answer mask [B, T])`` of the answers ``idx`` under the
    current policy, with gradients. ``shared_prompts``: each question's prompt is encoded once for its
    answers in ``idx`` (``perplexity.logprobs_after_prompts``; the same loss and gradients to float
    rounding); otherwise every answer is one full sequence (``perplexity.pack_sequences``)."""
    if shared_prompts:
        questions = sorted({i // group_size for i in idx})
        states = encode_prompts(model, [rollouts.prompt_ids[q * group_size] for q in questions])
        rows = [questions.index(i // group_size) for i in idx]
        answers = [rollouts.answer_ids[i] for i in idx]
        scores = logprobs_after_prompts(model, states, rows, answers, pad_token_id=tokenizer.pad_token_id)
        T = scores.logprobs.shape[1]
        mask = torch.arange(T, device=scores.logprobs.device) < torch.tensor(
            [len(a) for a in answers], device=scores.logprobs.device).unsqueeze(1)
        return scores.logprobs, mask
    batch = pack_sequences([rollouts.prompt_ids[i] for i in idx], [rollouts.answer_ids[i] for i in idx],
                           tokenizer.pad_token_id)
    device = model.get_input_embeddings().weight.device
    return answer_logprobs(model, batch).logprobs, batch.answer_mask.to(device)


def update_policy(model, tokenizer, optimizer, scored: ScoredRollouts, config: GRPOConfig,
                  advantages: Tensor) -> dict:
    """Step 4 of the module doc of ``sar_lib.grpo``: the questions are split into
    ``config.updates_per_step`` mini-batches, one AdamW step each, gradients accumulated over
    micro-batches; per answer ``loss = sum_t (PPO-clip_t + kl_coef * k3_t) / loss_constant``.

    ``advantages``: ``[N]`` (one per answer) or ``[N, T]`` (one per token), on the model's device.
    Returns the means over updates of ``loss`` and ``grad_norm`` (before clipping), the share of
    answer tokens a clip cut (``clip_ratio/region_mean``) and ``kl`` when ``kl_coef > 0``."""
    cfg = config
    device = model.get_input_embeddings().weight.device
    rollouts, old, ref = scored.rollouts, scored.old, scored.ref
    n_questions = len(scored.texts) // cfg.group_size
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    # transformers drops every key/value cache inside checkpointed layers, so a profile with gradient
    # checkpointing (the GPU ones) updates on full sequences; its scoring passes still share the prompts
    shared_prompts = cfg.engine and not policy_profile(cfg).gradient_checkpointing
    losses, grad_norms = [], []
    n_tokens = n_clipped = kl_sum = 0.0
    for update in update_plan(n_questions, cfg.group_size, cfg.updates_per_step, cfg.micro_batch_size,
                              whole_groups=shared_prompts):
        n_answers = sum(len(idx) for idx in update)
        optimizer.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for idx in update:
            logprobs, mask = policy_logprobs(model, tokenizer, rollouts, idx, cfg.group_size, shared_prompts=shared_prompts)
            T = mask.shape[1]
            adv = advantages[idx] if advantages.dim() == 1 else advantages[idx, :T]
            token_loss, clipped = ppo_clip_loss(logprobs, old.logprobs[idx, :T].to(device), adv,
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
    stats = {"clip_ratio/region_mean": n_clipped / n_tokens, "loss": sum(losses) / len(losses),
             "grad_norm": sum(grad_norms) / len(grad_norms)}
    if cfg.kl_coef > 0:
        stats["kl"] = kl_sum / n_tokens
    return stats


# ---------------------------------------------------------------- metrics
def step_metrics(scored: ScoredRollouts, config: GRPOConfig, update_stats: dict, *, step: int,
                 learning_rate: float, update_seconds: float) -> dict:
    """The step's row of ``metrics.jsonl`` (the keys of the module doc of ``sar_lib.grpo``, TRL's
    ``GRPOTrainer`` names where the quantity is the same). With one answer per question (PPO),
    ``reward_std`` is the std over the step's answers and ``frac_reward_zero_std`` is absent."""
    cfg, total, lengths, correct = config, scored.total, scored.lengths, scored.correct
    groups = total.view(-1, cfg.group_size)
    correct_lengths = lengths[correct > 0]
    metrics = {
        "step": step,
        "reward": float(total.mean()),
        "reward_std": float(groups.std(-1).mean()) if cfg.group_size > 1 else float(total.std()),
        "rewards/correctness/mean": float(correct.mean()),
    }
    if cfg.reward != "none":
        metrics[f"rewards/{cfg.reward}/mean"] = float(scored.shaping.mean())
    if scored.sar is not None:
        metrics["sar/mean"] = float(scored.sar.mean())
    metrics.update({
        "completions/mean_length": float(lengths.mean()),
        "completions/min_length": float(lengths.min()),
        "completions/max_length": float(lengths.max()),
        "completions/median_length": float(statistics.median(scored.rollouts.lengths)),
        "completions/mean_length_correct": float(correct_lengths.mean()) if len(correct_lengths) else None,
        "completions/clipped_ratio": sum(scored.rollouts.truncated) / len(scored.texts),
    })
    if cfg.group_size > 1:
        metrics["frac_reward_zero_std"] = float((groups.std(-1) == 0).float().mean())
    if "kl" in update_stats:
        metrics["kl"] = update_stats["kl"]
    metrics.update({key: update_stats[key] for key in ("clip_ratio/region_mean", "loss", "grad_norm")})
    seconds = scored.seconds
    metrics.update({
        "learning_rate": learning_rate,
        "time/generate": seconds["generate"],
        "time/score": seconds["score"],
        "time/update": update_seconds,
        "time/step": seconds["generate"] + seconds["score"] + update_seconds,
    })
    if scored.sar is not None:
        metrics["time/sar"] = seconds["sar"]
    return metrics
