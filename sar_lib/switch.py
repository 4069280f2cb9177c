"""SAR's switch, measured directly: how likely the model is to end its answer right after
"The answer is N." rather than go on to the re-check that makes a verbose answer.

The tiny model writes the same chain of equations in its concise and its verbose answers; they part
at one token, the one after the final "The answer is N.": eos ends a concise answer, "Let me
double-check." (``styles.CHECK_OPENER``) opens the verbose re-check. So the style of an answer is
decided by two probabilities at that point, read off the model with the concise solution of each
problem written in (teacher forcing):

    p_stop(q)  = pi(eos | ctx(q), concise answer to q)
    p_check(q) = pi(first token of " Let me double-check." | ctx(q), concise answer to q)

Greedy decoding stops there when p_stop > p_check: a greedy answer flips from verbose to concise
when the probabilities cross, however small the change, while a sampled answer stops with
probability p_stop, so sampled length moves smoothly with it.
"""

from __future__ import annotations

import random
import statistics
from typing import Sequence

from sar_lib.perplexity import score_answer_ids
from sar_lib.problem import Problem
from sar_lib.sar import answer_ids, encode_text, prompt_text
from sar_lib.synthetic.styles import CHECK_OPENER, solution

SWITCH_KEYS = ("p_stop", "p_check", "greedy_stop_share")


def stop_probabilities(model, tokenizer, problems: Sequence[Problem], *, batch_size: int = 16) -> dict | None:
    """Means over ``problems`` of p_stop and p_check (module docstring) and the share of problems with
    p_stop > p_check, as {"p_stop", "p_check", "greedy_stop_share", "n"}; None when no problem has a
    concise solution (only the synthetic arithmetic and claim problems have one).

    Two teacher-forced passes per problem: the concise answer ending in eos (its last log-prob is
    log p_stop), and the concise answer followed by the re-check's first token (log p_check)."""
    items = [(p, solution(p, "concise", random.Random(0))) for p in problems if "steps" in p.meta]
    if not items:
        return None
    contexts = [encode_text(tokenizer, prompt_text(tokenizer, p.question)) for p, _ in items]
    stops = _last_token_probability(model, tokenizer, contexts, [answer_ids(tokenizer, a) for _, a in items],
                                    batch_size)
    check_ids = [_with_check_token(tokenizer, a) for _, a in items]
    checks = _last_token_probability(model, tokenizer, contexts, check_ids, batch_size)
    return {"p_stop": statistics.fmean(stops), "p_check": statistics.fmean(checks),
            "greedy_stop_share": statistics.fmean(s > c for s, c in zip(stops, checks)), "n": len(items)}


def _with_check_token(tokenizer, answer: str) -> list[int]:
    """The answer's token ids followed by the first token of `` CHECK_OPENER`` as the model writes it
    (the answer's own tokens must be a prefix of the longer text's, else ValueError)."""
    head = encode_text(tokenizer, answer)
    longer = encode_text(tokenizer, f"{answer} {CHECK_OPENER}")
    if longer[:len(head)] != head:
        raise ValueError(f"the tokenizer merges the end of {answer!r} with the re-check's first token")
    return longer[:len(head) + 1]


def _last_token_probability(model, tokenizer, contexts: list[list[int]], answers: list[list[int]],
                            batch_size: int) -> list[float]:
    """pi(last token of each answer | context, the answer's other tokens)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores = score_answer_ids(model, contexts, answers, pad_token_id=pad, batch_size=batch_size)
    lengths = scores.mask.sum(-1)
    return [float(scores.logprobs[i, int(n) - 1].exp()) for i, n in enumerate(lengths)]
