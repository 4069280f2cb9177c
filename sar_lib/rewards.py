r"""Per-answer rewards for one GRPO group (all answers sampled for the same question).

Every function takes the whole group and returns a float32 tensor ``[G]``; the training reward is
``combine(R_VR, r, alpha) = R_VR + alpha * r`` (docs/paper.md §1-§2). Formulas, with L the answer length
in tokens (eos included) and "correct" the R_VR of each answer:

* ``correctness``: R_VR = 1 if the final answer is right, else 0 (``grading.is_correct``).
* ``o1_pruner``: r = clip((Lbar - L) / L, -1, 1), Lbar = mean length of the group.
* ``efficient_reasoner`` (ER): r = -(2 * sigmoid((L - mu_c) / (sigma_c + 1e-5)) - 1) for a
  correct answer, mu_c and sigma_c the mean and *population* std (ddof=0: the official code uses
  ``np.std``) of the lengths of the group's correct answers; r = 0 for wrong answers, and for
  every answer when the group has at most one correct answer.
* ``entropy_minimisation``: R_EM = -log ppl(a|q) = -nll(a|q), the mean NLL per answer token.
* ``self_certainty``: r = mean over answer tokens of KL(U || pi(.|ctx, a_<t)) (Intuitor's reward).
* ``length_penalty``: r = -L / L_max.
* SAR (``"sar"``): R_SA = max(1 - ppl(a|q) / ppl(a), -1), computed by ``sar.sar_from_nll``.
* ``shuffled_sar`` (a control, not in the paper): r_i = R_SA of answer pi(i), pi a random
  permutation of the group: SAR's own values, scale and spread, but unrelated to the answer that
  gets them. Whatever SA-GRPO does beyond this control comes from *which* answers SAR rewards.

Rewards are constants for the policy gradient: inputs are detached.

:data:`REWARDS` is the one table of what each shaping reward needs (its inputs, hence whether a GRPO
step runs SAR's forward pass or a scoring pass with the self-certainty; whether it compares an answer
with the rest of its group) and of its default weight alpha: 0.2 for SAR (the paper's main runs; swept
0.1/0.2/0.3); 0.05 for O1-pruner and ER (inside the paper's sweep 0.01/0.03/0.05/0.1). The paper
gives no alpha for R_EM in the text we have; we use SAR's 0.2 so the ablation swaps only the reward.
Self-certainty and the plain length penalty are not in the paper; 0.05 is our choice. The training
config (``grpo_config``) and the GRPO step (``policy_gradient``) read the table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from sar_lib.grading import is_correct

_ER_EPS = 1e-5


def correctness(responses: Sequence[str], gold: str, kind: str = "math", *, strict: bool = False) -> Tensor:
    """R_VR [G] in {0, 1}: ``grading.is_correct`` of each response against the question's gold."""
    return torch.tensor([float(is_correct(r, gold, kind, strict=strict)) for r in responses],
                        dtype=torch.float32)


def o1_pruner(lengths: Tensor) -> Tensor:
    """O1-pruner [G]: clip((Lbar - L) / L, -1, 1), Lbar the group's mean length (L >= 1 assumed;
    0 is read as 1 so an empty answer gets a finite reward)."""
    length = _as_lengths(lengths)
    return ((length.mean() - length) / length.clamp_min(1.0)).clamp(-1.0, 1.0)


def efficient_reasoner(lengths: Tensor, correct: Tensor) -> Tensor:
    """ER [G]: -(2 sigmoid((L - mu_c)/(sigma_c + 1e-5)) - 1) on correct answers, 0 elsewhere.

    mu_c, sigma_c: mean and population std (ddof=0) of the correct answers' lengths; all zeros
    when at most one answer of the group is correct (official ``compute_score_er``).
    """
    length = _as_lengths(lengths)
    ok = _as_group(correct, "correct", len(length)) > 0.5
    reward = torch.zeros_like(length)
    if int(ok.sum()) <= 1:
        return reward
    correct_lengths = length[ok]
    mu, sigma = correct_lengths.mean(), correct_lengths.std(correction=0)
    reward[ok] = -(2.0 * torch.sigmoid((correct_lengths - mu) / (sigma + _ER_EPS)) - 1.0)
    return reward


def entropy_minimisation(nll_qa: Tensor) -> Tensor:
    """R_EM [G] = -log ppl(a|q) = -mean_t NLL(a_t | q, a_<t) (``perplexity.mean_nll`` values)."""
    return -_as_group(nll_qa, "nll_qa")


def self_certainty(certainty: Tensor, mask: Tensor) -> Tensor:
    """Self-certainty [G] = (1/T_a) sum_t mask_t KL(U || pi(.|ctx, a_<t)).

    ``certainty`` [G, T]: per-token KL(U || pi) (``perplexity.TokenScores.certainty``);
    ``mask`` [G, T]: True on real answer tokens. An answer with no token gets 0.
    """
    values = torch.as_tensor(certainty).detach().to(torch.float32)
    weights = torch.as_tensor(mask).detach().to(torch.float32)
    if values.ndim != 2 or values.shape != weights.shape:
        raise ValueError(f"certainty and mask must both be [G, T]; got {tuple(values.shape)} and "
                         f"{tuple(weights.shape)}")
    total = (values * weights).sum(dim=1)
    return total / weights.sum(dim=1).clamp_min(1.0)


def shuffled(values: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The group's values [G] in a random order: ``r_i = values[perm[i]]`` (``torch.randperm``)."""
    group = _as_group(values, "values")
    return group[torch.randperm(len(group), generator=generator)]


def length_penalty(lengths: Tensor, max_length: int) -> Tensor:
    """Plain length penalty [G] = -L / L_max, in [-1, 0] for L <= L_max."""
    if max_length <= 0:
        raise ValueError(f"max_length must be a positive number of tokens, got {max_length}")
    return -_as_lengths(lengths) / float(max_length)


def combine(r_vr: Tensor, r: Tensor, alpha: float) -> Tensor:
    """Training reward [G] = R_VR + alpha * r."""
    base = _as_group(r_vr, "r_vr")
    extra = _as_group(r, "r", len(base))
    return base + float(alpha) * extra


def sar_reward(sar: Tensor) -> Tensor:
    """SAR [G] as the reward: the values of ``sar.sar_from_nll``, already computed per answer."""
    return _as_group(sar, "sar")


@dataclass(frozen=True)
class RewardSpec:
    """What a shaping reward needs and weighs: ``function`` of the :func:`auxiliary_reward` arguments
    named in ``inputs`` (in that order), its default weight ``alpha``, and ``needs_group`` when it
    compares an answer with the other answers to its question (so a group needs >= 2 answers)."""

    function: Callable[..., Tensor] | None   # None: "none", zeros
    inputs: tuple[str, ...]
    alpha: float
    needs_group: bool = False

    @property
    def needs_sar_pass(self) -> bool:
        """Whether it needs SAR, hence the forward pass over ctx(0) + a (``sar.sar_from_token_ids``)."""
        return "sar" in self.inputs

    @property
    def needs_certainty(self) -> bool:
        """Whether it needs the per-token self-certainty, hence a scoring pass with ``with_certainty``
        (the sampler's own log-probs do not carry it)."""
        return "certainty" in self.inputs


REWARDS: dict[str, RewardSpec] = {
    "sar": RewardSpec(sar_reward, ("sar",), 0.2),                             # paper, main runs
    "shuffled_sar": RewardSpec(shuffled, ("sar",), 0.2, needs_group=True),    # the control has SAR's weight
    "o1": RewardSpec(o1_pruner, ("lengths",), 0.05, needs_group=True),        # paper sweep {0.01, 0.03, 0.05, 0.1}
    "er": RewardSpec(efficient_reasoner, ("lengths", "correct"), 0.05, needs_group=True),  # paper sweep, as o1
    "em": RewardSpec(entropy_minimisation, ("nll_qa",), 0.2),                 # SAR's weight for the R_EM ablation
    "certainty": RewardSpec(self_certainty, ("certainty", "mask"), 0.05),     # not in the paper (our choice)
    "length": RewardSpec(length_penalty, ("lengths", "max_length"), 0.05),    # not in the paper (our choice)
    "none": RewardSpec(None, (), 0.0),                                        # plain GRPO: R = R_VR
}
# the table's names and weights on their own, as the config's choices, grid's labels and the notebooks read them
REWARD_NAMES = tuple(REWARDS)
DEFAULT_ALPHAS: dict[str, float] = {name: spec.alpha for name, spec in REWARDS.items()}


def reward_spec(name: str) -> RewardSpec:
    """The :data:`REWARDS` entry of ``name``; ValueError naming the valid rewards otherwise."""
    try:
        return REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}: use one of {', '.join(REWARD_NAMES)}") from None


def auxiliary_reward(name: str, *, lengths: Tensor | None = None, correct: Tensor | None = None,
                     nll_qa: Tensor | None = None, sar: Tensor | None = None,
                     certainty: Tensor | None = None, mask: Tensor | None = None,
                     max_length: int | None = None) -> Tensor:
    """The auxiliary reward ``r`` [G] named in :data:`REWARDS`, from the inputs its entry names.

    "shuffled_sar" permutes ``sar`` with torch's global generator (seeded per GRPO step, so runs
    stay exact); "none" gives zeros shaped like any given group input.
    """
    spec = reward_spec(name)
    given = dict(lengths=lengths, correct=correct, nll_qa=nll_qa, sar=sar, certainty=certainty,
                 mask=mask, max_length=max_length)
    missing = [k for k in spec.inputs if given[k] is None]
    if missing:
        raise ValueError(f"reward {name!r} needs {', '.join(missing)}")
    if spec.function is not None:
        return spec.function(*(given[k] for k in spec.inputs))
    group = next((v for v in (lengths, correct, nll_qa, sar, certainty) if v is not None), None)
    if group is None:
        raise ValueError("reward 'none' needs any group input (e.g. lengths) to know the group size")
    return torch.zeros(torch.as_tensor(group).shape[0], dtype=torch.float32)


def _as_group(values, what: str, size: int | None = None) -> Tensor:
    tensor = torch.as_tensor(values).detach().to(torch.float32)
    if tensor.ndim != 1:
        raise ValueError(f"{what} must be a 1-D tensor [G] (one value per answer), got shape "
                         f"{tuple(tensor.shape)}")
    if size is not None and tensor.shape[0] != size:
        raise ValueError(f"{what} has {tensor.shape[0]} values but the group has {size} answers")
    return tensor


def _as_lengths(lengths) -> Tensor:
    length = _as_group(lengths, "lengths")
    if (length < 0).any():
        raise ValueError("lengths must be non-negative token counts")
    return length
