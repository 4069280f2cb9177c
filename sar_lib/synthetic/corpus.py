"""The pretraining corpus of the tiny reasoner: (problem, solution text) pairs, styles mixed."""

from __future__ import annotations

import random

from sar_lib.problem import Problem
from sar_lib.synthetic.arithmetic import check_count, arithmetic_problems
from sar_lib.synthetic.claims import claim_problems
from sar_lib.synthetic.logic import logic_set, train_concepts
from sar_lib.synthetic.styles import DEFAULT_STYLE_MIX, STYLES, solution


def _quota(n: int, mix: dict[str, float]) -> list[str]:
    """Labels in proportion to ``mix`` (largest remainders), exactly n of them."""
    if not mix or any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"a mix needs non-negative weights with a positive sum, got {mix!r}")
    total = sum(mix.values())
    raw = {k: n * w / total for k, w in mix.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: counts[k] - raw[k])[: n - sum(counts.values())]:
        counts[k] += 1
    return [k for k, c in counts.items() for _ in range(c)]


def training_corpus(n: int, seed: int, *, style_mix: dict[str, float] | None = None,
                    logic_share: float = 0.10, claim_share: float = 0.0, min_steps: int = 1,
                    max_steps: int = 3) -> list[tuple[Problem, str]]:
    """``n`` (problem, solution text) pairs for pretraining, shuffled.

    round(n * logic_share) are 1-2 hop logic chains over made-up training words (concise proofs
    ending "The answer is True." / "The answer is False."); round(n * claim_share) are True/False
    claims on train-split problems (``claims.claim_problems``); the rest are train-split arithmetic
    problems. Arithmetic and claims are written in styles that follow ``style_mix`` exactly up to
    rounding (default :data:`DEFAULT_STYLE_MIX`), each family on its own. Each problem's
    meta["style"] records the style of its text.
    """
    check_count(n)
    mix = DEFAULT_STYLE_MIX if style_mix is None else style_mix
    if set(mix) - set(STYLES):
        raise ValueError(f"style_mix keys must be among {STYLES}, got {sorted(mix)}")
    if not (0.0 <= logic_share <= 1.0 and 0.0 <= claim_share <= 1.0 and logic_share + claim_share <= 1.0):
        raise ValueError(f"logic_share and claim_share must be in [0, 1] with a sum of at most 1, got "
                         f"{logic_share} and {claim_share}")
    rng = random.Random(f"corpus:{seed}")
    n_logic = round(n * logic_share)
    n_claims = min(round(n * claim_share), n - n_logic)
    problems = arithmetic_problems(n - n_logic - n_claims, seed, split="train", min_steps=min_steps,
                                   max_steps=max_steps)
    claims = claim_problems(n_claims, seed, split="train")
    styles = []
    for family in (problems, claims):
        family_styles = _quota(len(family), mix) if family else []
        rng.shuffle(family_styles)
        styles += family_styles
    logic = logic_set(n_logic, seed, 1, 2, train_concepts(), "logic-train", "synthetic-logic-train")
    styles += ["concise"] * len(logic)
    pairs = []
    for problem, style in zip(problems + claims + logic, styles):
        problem.meta["style"] = style
        pairs.append((problem, solution(problem, style, rng)))
    rng.shuffle(pairs)
    return pairs
