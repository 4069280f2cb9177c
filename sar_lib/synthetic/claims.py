"""True/False numeric claims about a word problem: the out-of-domain family built for the tiny model.

A claim item is a one- or two-step arithmetic word problem whose question is replaced by a statement
that compares the result with a number k:

    "Tom has 7 apples. He gets 5 more apples from Ben. Is the following statement true or false?
     Tom has more than 10 apples."        (gold: "True", since 7 + 5 = 12 > 10)

Answering needs the arithmetic the model has and one comparison, and no lookup of one fact among
several by name (the skill the logic sets need and the tiny model does not learn,
docs/logic_attempts.md). Its solutions come in the arithmetic styles (answer-only, concise, verbose
with the question-free re-check, flawed): the chain, then the comparison "Is 12 more than 10? Yes.",
which writes both numbers before it decides, then "The answer is True.". The corpus trains on claims
built from train-split problems; ``claim-test`` builds them from test-split problems, so every test
question is a new combination. Pretraining pilots on it: docs/claims_pilots.md.
"""

from __future__ import annotations

import random

from sar_lib.problem import Problem
from sar_lib.synthetic.arithmetic import arithmetic_problems, check_count, question_sentences, template_fields

MAX_GAP = 8       # |result - k| is drawn from 1..MAX_GAP: close enough that a wrong sum often flips the truth
MIN_THRESHOLD = 2  # k >= 2 keeps the plural nouns grammatical

# The statement of each arithmetic family. One relation only: a second one ("fewer than") left the model
# copying the wrong relation into its comparison half of the time (a pilot of 2026-12-05, docs/claims_pilots.md).
RELATION = "more than"
_STATEMENTS = {"collect": "{name} has more than {k} {obj}.",
               "money": "{name} has more than {k} dollars.",
               "activity": "{name} {verbs} more than {k} {unit} in total.",
               "bus": "There are more than {k} passengers on the bus."}
CLAIM_ASK = "Is the following statement true or false?"


def claim_holds(value: int, k: int) -> bool:
    """Whether "more than k" holds of ``value``: ``value > k``."""
    return value > k


def comparison(value: int, k: int) -> str:
    """The sentence that decides a claim, both numbers first, the decision last:
    "Is 12 more than 10? Yes." or "Is 8 more than 10? No."."""
    return f"Is {value} {RELATION} {k}? {'Yes' if claim_holds(value, k) else 'No'}."


def _claim(problem: Problem, truth: bool, rng: random.Random, pid: str, source: str) -> Problem:
    """``problem`` with its question sentence replaced by a statement whose truth is ``truth``."""
    spec, result = problem.meta["spec"], int(problem.gold)
    gaps = [g for g in range(1, MAX_GAP + 1) if (result - g if truth else result + g) >= MIN_THRESHOLD]
    # a result too small for a true claim with k >= MIN_THRESHOLD gets a false one
    k = result - rng.choice(gaps) if truth and gaps else result + rng.randint(1, MAX_GAP)
    statement = _STATEMENTS[spec["family"]].format(k=k, **template_fields(spec))
    question = " ".join(question_sentences(spec)[:-1] + [CLAIM_ASK, statement])
    return Problem(id=pid, question=question, gold=str(claim_holds(result, k)), kind="bool", source=source,
                   meta={**problem.meta, "threshold": k, "statement": statement, "source_id": problem.id})


def claim_problems(n: int, seed: int, *, split: str = "test") -> list[Problem]:
    """``n`` True/False claims on ``split`` arithmetic problems of 1-2 steps: "... has more than k ...",
    k = r - g (True) or r + g (False), g in 1..MAX_GAP, r the problem's result; gold about balanced
    (ceil(n/2) drawn True; a result below MIN_THRESHOLD + 1 cannot be True). meta keeps the problem's
    ``steps`` and ``unit`` and adds ``threshold`` and ``statement``. Ids: "claim-<split>-<i>"."""
    check_count(n)
    problems = arithmetic_problems(n, seed, split=split, min_steps=1, max_steps=2)
    rng = random.Random(f"claims:{split}:{seed}")
    truths = [i % 2 == 0 for i in range(n)]
    rng.shuffle(truths)
    return [_claim(p, t, rng, f"claim-{split}-{i}", f"synthetic-claim-{split}")
            for i, (p, t) in enumerate(zip(problems, truths))]
