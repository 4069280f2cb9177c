"""PPO with a critic and the self-aligned reward (SA-PPO), the paper's second algorithm.

The paper's PPO (docs/paper.md; verl's defaults where the paper is silent): one answer per question,
the scalar reward ``R = R_VR + alpha * R_SA`` on the answer's last token, GAE with
``gamma = lambda = 1``, the critic's learning rate twice the actor's, no KL. One step, for N answers:

1. **Sample and score** exactly as GRPO (``sar_lib.policy_gradient.sample_and_score``): old
   log-probs, SAR's ctx(0) pass, the reward R. The old pass also keeps each answer token's hidden
   state h_t (the state before a_t is emitted).
2. **Values** ``V_t = critic(h_t)``: a small MLP on the policy's last hidden states, detached, so the
   critic learns from the policy's features without pulling on them (the policy's update is GRPO's,
   only its advantages differ).
3. **GAE**: token rewards ``r_t = R`` at the last answer token, 0 elsewhere;
   ``delta_t = r_t + gamma V_{t+1} - V_t`` (``V = 0`` after the answer),
   ``A_t = delta_t + gamma lambda A_{t+1}``, returns ``G_t = A_t + V_t``. With gamma = lambda = 1:
   ``A_t = R - V_t`` and ``G_t = R``. The advantages are whitened over the step's answer tokens
   (as verl).
4. **Update**: the actor takes GRPO's PPO-clip update with the per-token ``A_t``
   (``policy_gradient.update_policy``); the critic takes one AdamW step per mini-batch on the
   clipped value loss ``0.5 * max((V - G)^2, (V_old + clip(V - V_old, -c, c) - G)^2)``, averaged
   over tokens.

The critic is a submodule of the policy (``model.value_head``), so the run folder, the checkpoint
(its weights are trainable parameters; the optimizer holds them as a second parameter group at
``critic_lr_ratio`` times the learning rate) and exact resume are GRPO's (``sar_lib.grpo.train``).
Metrics: GRPO's, plus ``critic/vf_loss``, ``critic/vf_clipfrac`` (share of tokens the value clip
cut), ``critic/vf_explained_var`` (``1 - Var(G - V_old) / Var(G)``) and ``critic/values_mean``
(verl's names).
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn

from sar_lib.grpo_config import GRPOConfig
from sar_lib.perplexity import text_config
from sar_lib.policy_gradient import (ScoredRollouts, completion_rows, sample_and_score, step_metrics, update_plan,
                                     update_policy)
from sar_lib.problem import Problem

VALUE_HEAD = "value_head"


# ---------------------------------------------------------------- the PPO maths (pure functions)
def token_rewards(rewards: Tensor, mask: Tensor) -> Tensor:
    """``[N, T]``: each answer's scalar reward ``rewards`` ``[N]`` on its last real token (``mask``
    ``[N, T]``, True on answer tokens, left-aligned), 0 elsewhere."""
    last = mask.sum(-1).long() - 1
    if bool((last < 0).any()):
        raise ValueError("every answer needs at least one token to carry its reward")
    out = torch.zeros(mask.shape, dtype=rewards.dtype, device=rewards.device)
    return out.scatter(1, last.unsqueeze(-1), rewards.unsqueeze(-1))


def gae(rewards: Tensor, values: Tensor, mask: Tensor, *, gamma: float = 1.0, lam: float = 1.0) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over ``[N, T]`` token rewards and values (``mask`` True on
    answer tokens). ``delta_t = r_t + gamma * V_{t+1} - V_t`` with ``V = 0`` past the answer,
    ``A_t = delta_t + gamma * lam * A_{t+1}``; returns ``(A, A + V)``, both 0 off the mask."""
    mask = mask.to(rewards.dtype)
    values = values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over the True entries of ``mask`` (same shape)."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def whiten(values: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """``(x - mean) / (std + eps)`` over the masked entries (unbiased std), 0 off the mask."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask) * mask.sum() / (mask.sum() - 1).clamp(min=1)
    return (values - mean) / (var.sqrt() + eps) * mask


def clipped_value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor,
                       clip: float) -> tuple[Tensor, Tensor]:
    """PPO's clipped value loss, ``[N, T]`` in: ``V_c = V_old + clip(V - V_old, -clip, clip)``,
    ``l_t = 0.5 * max((V - G)^2, (V_c - G)^2)``. Returns ``(token mean of l, share of tokens
    where the clipped term is the larger)``."""
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    plain, cut = (values - returns) ** 2, (clipped - returns) ** 2
    mask = mask.to(values.dtype)
    return 0.5 * masked_mean(torch.maximum(plain, cut), mask), masked_mean((cut > plain).to(values.dtype), mask)


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float:
    """``1 - Var(G - V) / Var(G)`` over the masked tokens (1: perfect critic, 0: a constant one)."""
    mask = mask.to(values.dtype)
    var_returns = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
    residual = returns - values
    var_residual = masked_mean((residual - masked_mean(residual, mask)) ** 2, mask)
    return float(1 - var_residual / var_returns) if float(var_returns) > 0 else float("nan")


# ---------------------------------------------------------------- the critic
class ValueHead(nn.Module):
    """``V(h) = w2 . tanh(W1 h + b1) + b2``: ``[..., H]`` hidden states to ``[...]`` values (fp32).
    The last layer starts at zero, so the first advantages are the (whitened) rewards."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, 1))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.net(hidden.float()).squeeze(-1)


def attach_value_head(model) -> ValueHead:
    """Give ``model`` a :class:`ValueHead` (``model.value_head``, fp32, on the model's device): its
    weights are trainable parameters of the model, so the run's checkpoint holds them."""
    head = ValueHead(text_config(model).hidden_size).to(model.get_input_embeddings().weight.device)
    model.add_module(VALUE_HEAD, head)
    return head


def parameter_groups(model, config: GRPOConfig) -> list[dict]:
    """AdamW parameter groups: the actor's trainable weights at ``learning_rate`` first (group 0:
    the logged learning rate), the critic's at ``critic_lr_ratio * learning_rate``."""
    critic = list(getattr(model, VALUE_HEAD).parameters())
    critic_ids = {id(p) for p in critic}
    actor = [p for p in model.parameters() if p.requires_grad and id(p) not in critic_ids]
    return [{"params": actor, "lr": config.learning_rate},
            {"params": critic, "lr": config.learning_rate * config.critic_lr_ratio}]


def _update_critic(head: ValueHead, optimizer, scored: ScoredRollouts, config: GRPOConfig, old_values: Tensor,
                   returns: Tensor) -> dict:
    """One AdamW step of the critic per mini-batch of :func:`update_plan`, on the old pass's hidden
    states (the critic's features are detached, so they are the same as the update pass would give)."""
    device = next(head.parameters()).device
    hidden, mask = scored.old.hidden, scored.old.mask
    n_questions = len(scored.texts) // config.group_size
    losses, clip_fracs = [], []
    for update in update_plan(n_questions, config.group_size, config.updates_per_step, config.micro_batch_size):
        idx = [i for micro in update for i in micro]
        optimizer.zero_grad(set_to_none=True)
        loss, clip_frac = clipped_value_loss(head(hidden[idx].to(device)), old_values[idx].to(device),
                                             returns[idx].to(device), mask[idx].to(device), config.value_clip)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(head.parameters()), config.max_grad_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
        clip_fracs.append(float(clip_frac))
    return {"critic/vf_loss": sum(losses) / len(losses), "critic/vf_clipfrac": sum(clip_fracs) / len(clip_fracs)}


# ---------------------------------------------------------------- one step
def ppo_step(model, tokenizer, optimizer, problems: list[Problem], config: GRPOConfig, *, step: int,
             ctx0_ids: list[int], completions: list | None = None, sampler=None) -> dict:
    """One PPO step on ``problems`` (``config.group_size`` answers each, 1 by default); returns its
    metrics (GRPO's and the critic's, see the module doc). ``completions`` as ``grpo.grpo_step``
    (the advantage logged is the first token's); ``sampler`` as ``grpo.grpo_step``."""
    head = getattr(model, VALUE_HEAD)
    scored = sample_and_score(model, tokenizer, problems, config, step=step, ctx0_ids=ctx0_ids, with_hidden=True,
                              sampler=sampler)
    t0 = time.perf_counter()
    mask = scored.old.mask
    with torch.no_grad():
        old_values = head(scored.old.hidden.to(next(head.parameters()).device)).cpu() * mask
    advantages, returns = gae(token_rewards(scored.total, mask), old_values, mask,
                              gamma=config.gae_gamma, lam=config.gae_lambda)
    advantages = whiten(advantages, mask)
    if completions is not None:
        completions.extend(completion_rows(scored, problems, advantages[:, 0], step))
    device = model.get_input_embeddings().weight.device
    stats = update_policy(model, tokenizer, optimizer, scored, config, advantages.to(device))
    stats.update(_update_critic(head, optimizer, scored, config, old_values, returns))
    metrics = step_metrics(scored, config, stats, step=step, learning_rate=optimizer.param_groups[0]["lr"],
                           update_seconds=time.perf_counter() - t0)
    metrics.update({key: stats[key] for key in ("critic/vf_loss", "critic/vf_clipfrac")})
    metrics["critic/vf_explained_var"] = explained_variance(old_values, returns, mask)
    metrics["critic/values_mean"] = float(masked_mean(old_values, mask.float()))
    return metrics
