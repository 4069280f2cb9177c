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

``DEFAULT_ALPHAS`` holds the weight of each auxiliary reward: 0.2 for SAR (the paper's main runs;
swept 0.1/0.2/0.3); 0.05 for O1-pruner and ER (inside the paper's sweep 0.01/0.03/0.05/0.1). The
paper gives no alpha for R_EM in the text we have; we use SAR's 0.2 so the ablation swaps only the
reward. Self-certainty and the plain length penalty are not in the paper; 0.05 is our choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sar_lib.grading import is_correct

REWARD_NAMES = ("sar", "shuffled_sar", "o1", "er", "em", "certainty", "length", "none")
DEFAULT_ALPHAS: dict[str, float] = {
    "sar": 0.2,        # paper, main runs
    "shuffled_sar": 0.2,  # the control has SAR's weight
    "o1": 0.05,        # paper sweep {0.01, 0.03, 0.05, 0.1}
    "er": 0.05,        # paper sweep {0.01, 0.03, 0.05, 0.1}
    "em": 0.2,         # same weight as SAR for the R_EM ablation (our choice)
    "certainty": 0.05, # not in the paper (our choice)
    "length": 0.05,    # not in the paper (our choice)
    "none": 0.0,       # plain GRPO: R = R_VR
}
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


def auxiliary_reward(name: str, *, lengths: Tensor | None = None, correct: Tensor | None = None,
                     nll_qa: Tensor | None = None, sar: Tensor | None = None,
                     certainty: Tensor | None = None, mask: Tensor | None = None,
                     max_length: int | None = None) -> Tensor:
    """The auxiliary reward ``r`` [G] named in ``REWARD_NAMES``, from the inputs it needs.

    "sar": ``sar`` (already computed by ``sar.sar_from_nll``); "shuffled_sar": ``sar``, permuted
    with torch's global generator (seeded per GRPO step, so runs stay exact); "o1": ``lengths``; "er":
    ``lengths``, ``correct``; "em": ``nll_qa``; "certainty": ``certainty``, ``mask``; "length":
    ``lengths``, ``max_length``; "none": zeros shaped like any given group input.
    """
    if name not in REWARD_NAMES:
        raise ValueError(f"unknown reward {name!r}: use one of {', '.join(REWARD_NAMES)}")
    given = dict(lengths=lengths, correct=correct, nll_qa=nll_qa, sar=sar, certainty=certainty,
                 mask=mask, max_length=max_length)
    needs = {"sar": ("sar",), "shuffled_sar": ("sar",), "o1": ("lengths",), "er": ("lengths", "correct"), "em": ("nll_qa",),
             "certainty": ("certainty", "mask"), "length": ("lengths", "max_length"), "none": ()}[name]
    missing = [k for k in needs if given[k] is None]
    if missing:
        raise ValueError(f"reward {name!r} needs {', '.join(missing)}")
    if name == "sar":
        return _as_group(sar, "sar")
    if name == "shuffled_sar":
        return shuffled(sar)
    if name == "o1":
        return o1_pruner(lengths)
    if name == "er":
        return efficient_reasoner(lengths, correct)
    if name == "em":
        return entropy_minimisation(nll_qa)
    if name == "certainty":
        return self_certainty(certainty, mask)
    if name == "length":
        return length_penalty(lengths, max_length)
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
