"""Solution texts of the synthetic problems, in the styles of the pretraining corpus, and the six
answer types of notebook 02. Every text ends with ``The answer is N.``: the graders read the last
number (math) or the last True/False (logic).
"""

from __future__ import annotations

import random
from typing import Sequence

from sar_lib.problem import Problem
from sar_lib.synthetic.arithmetic import MAX_RESULT, apply_op
from sar_lib.synthetic.claims import claim_holds, comparison

STYLES = ("answer_only", "concise", "verbose", "flawed")
# Verbose by far the most common style, so that the base model's greedy answers are verbose and
# correct, with a margin (after "The answer is N." the re-check must clearly beat stopping, or
# greedy decoding flips to concise on a small change of the weights): the regime of SAR's paper
# (room to cut, verbosity that correctness does not punish). Answer-only answers are the "too
# short" ones that length penalties can over-shoot to.
DEFAULT_STYLE_MIX = {"answer_only": 0.06, "concise": 0.16, "verbose": 0.71, "flawed": 0.07}
ANSWER_TYPES = ("concise_correct", "redundant_correct", "answer_only", "partially_correct",
                "incorrect", "irrelevant")

# Solution texts. A "claimed" chain of steps may contain errors; the renderers write whatever
# chain they are given, so one renderer serves correct, flawed, partial and incorrect answers.
#
# Every reasoning answer opens with the same question-independent sentence (REASONING_OPENER), then
# writes the chain of equations and the final answer. The verbose style stops there too, then adds
# a re-check that carries nothing from the question: CHECK_OPENER and a few POST_FILLERS. The
# computation, its position after the question and the final number are those of the concise
# answer, so correctness cannot tell the two styles apart: SAR's premise of redundancy that does
# not touch the answer. (Filler placed before or inside the chain made the tiny model misread the
# question's later numbers more often, and then correctness alone pruned verbosity.)
REASONING_OPENER = "Let me think about this step by step."
CHECK_OPENER = "Let me double-check."
POST_FILLERS = ("Yes, that looks right.", "Everything adds up.", "I am confident in this result.",
                "That was the last step.", "Good, so far so good.", "Each step follows from the one before.",
                "All the numbers fit together.", "Nothing is missing from the calculation.")
OPENERS = (REASONING_OPENER, "Okay, let me read the problem carefully.", "Let's solve this problem.",
           "Alright, let me work through this slowly.", "Let me think about this.")
FILLERS = (CHECK_OPENER, *POST_FILLERS, "Hmm, let me think about this carefully.", "Let me keep going.")
# (fewest, most) POST_FILLERS of a verbose answer by its number of steps (3: three or more):
# shorter chains get more filler, so verbose answers to easy one-step problems are as long as those
# to three-step ones and greedy correct answers are not the short ones (premise P2).
VERBOSE_FILLERS = {1: (6, 8), 2: (5, 7), 3: (4, 6)}


def _eq(step: Sequence) -> str:
    a, op, b, r = step
    return f"{a} {op} {b} = {r}"


def _final(answer) -> str:
    return f"The answer is {answer}."


def _chain(claimed: Sequence, unit: str, with_units: bool) -> str:
    """"First, a op b = r. Then r op c = s." (with the unit after each result when ``with_units``)."""
    return " ".join(("First, " if k == 0 else "Then ") + _eq(step) + (f" {unit}" if with_units else "") + "."
                    for k, step in enumerate(claimed))


def _conclusion(problem: Problem, claimed: Sequence) -> str:
    """What follows the chain: "The answer is 14." for a word problem; for a claim (``claims``) the
    comparison of the claimed result with the threshold, then its verdict: "Is 14 more than 10? Yes.
    The answer is True."."""
    value = claimed[-1][3]
    if problem.kind != "bool":
        return _final(value)
    k = problem.meta["threshold"]
    return f"{comparison(value, k)} {_final(claim_holds(value, k))}"


def _concise(problem: Problem, claimed: Sequence, rng: random.Random, with_units: bool | None = None) -> str:
    """REASONING_OPENER, the claimed chain and its conclusion:
    "Let me think about this step by step. First, 3 + 4 = 7. Then 7 * 2 = 14. The answer is 14."."""
    with_units = rng.random() < 0.3 if with_units is None else with_units
    unit = problem.meta.get("unit", "")
    return f"{REASONING_OPENER} {_chain(claimed, unit, with_units)} {_conclusion(problem, claimed)}"


def _verbose(problem: Problem, claimed: Sequence, rng: random.Random, *, full: bool = False) -> str:
    """The concise answer, then CHECK_OPENER and VERBOSE_FILLERS[steps] POST_FILLERS (the most when
    ``full``): about twice the concise length, the same computation and the same last number."""
    fewest, most = VERBOSE_FILLERS[min(len(claimed), 3)]
    fillers = rng.sample(POST_FILLERS, most if full else rng.randint(fewest, most))
    return " ".join([_concise(problem, claimed, rng), CHECK_OPENER, *fillers])


def answer_style(text: str) -> str:
    """The style a (generated) answer is written in: "answer_only" (no equation), "verbose" (holds
    the re-check or another filler sentence), "concise" (the opener, the chain, the final answer
    and nothing more) or "other" (e.g. a garbled text)."""
    text = text.strip()
    if "=" not in text:
        return "answer_only" if text.startswith("The answer is") else "other"
    if any(f in text for f in FILLERS):
        return "verbose"
    return "concise" if text.startswith(REASONING_OPENER) and text.endswith(".") else "other"


def _corrupt(steps: Sequence, start: int, rng: random.Random, *, every: bool = False) -> list[tuple] | None:
    """A claimed chain equal to ``steps`` before index ``start`` and wrong at ``start`` (and at every
    later step when ``every``); later steps reuse the wrong value. None when no wrong chain with
    results in [0, MAX_RESULT] and a wrong final answer was found."""
    for _ in range(20):
        claimed = list(steps[:start])
        value = steps[start - 1][3] if start else steps[0][0]
        for k in range(start, len(steps)):
            _, op, b, r_true = steps[k]
            a = value
            if k == start or every:
                if rng.random() < 0.5 or (every and k > start):
                    op = rng.choice([o for o in "+-*" if o != op and not (o == "*" and b > 12)])
                    r = apply_op(a, op, b)
                else:
                    r = apply_op(a, op, b) + rng.choice((-10, -2, -1, 1, 2, 10))
                if r == r_true or not 0 <= r <= MAX_RESULT:
                    break
            else:
                r = apply_op(a, op, b)
                if not 0 <= r <= MAX_RESULT:
                    break
            claimed.append((a, op, b, r))
            value = r
        else:
            if claimed[-1][3] != steps[-1][3]:
                return claimed
    return None


def _flawed_steps(steps: Sequence, rng: random.Random, *, last_only: bool = False) -> list[tuple]:
    """Claimed chain with one wrong step (the last one when ``last_only``): a slip or a wrong op."""
    starts = [len(steps) - 1] if last_only else list(range(len(steps)))
    rng.shuffle(starts)
    for start in starts:
        claimed = _corrupt(steps, start, rng)
        if claimed:
            return claimed
    a, op, b, r = steps[-1]   # always possible: an off-by-one slip in the last result
    return list(steps[:-1]) + [(a, op, b, r + 1)]


def _logic_solution(problem: Problem, style: str, rng: random.Random) -> str:
    chain, gold = problem.meta["chain"], problem.gold
    if style == "answer_only":
        return _final(gold)
    if style == "concise":
        return " ".join(chain + [_final(gold)])
    stmt = problem.meta["statement"]
    if style == "verbose":
        parts = [REASONING_OPENER, f"We need to decide whether this is true: {stmt}"]
        for k, sentence in enumerate(chain):
            parts.append("So " + sentence if k % 2 == 0 and k else sentence)   # even k > 0: a conclusion
            if k == len(chain) - 2 or rng.random() < 0.3:
                parts.append(rng.choice(("Let me check the facts again to be sure.", "Yes, that fact is given.",
                                         "Hmm, that matches the context.")))
        verdict = "the statement is true" if gold == "True" else "the statement is false"
        return " ".join(parts + [f"So {verdict}.", _final(gold)])
    # flawed: the same chain, but the last conclusion drops or adds "not"
    last = chain[-1]
    wrong = last.replace(" is not ", " is ") if " is not " in last else last.replace(" is ", " is not ", 1)
    return " ".join(chain[:-1] + [wrong, _final("False" if gold == "True" else "True")])


def solution(problem: Problem, style: str, rng: random.Random) -> str:
    """A solution text of ``problem`` in ``style``: "answer_only" (the final answer alone),
    "concise" (the chain of equations, then the answer), "verbose" (the same chain wrapped in
    question-independent sentences, see :func:`_verbose`) or "flawed" (one wrong step, so a wrong
    final answer; concise or verbose). Always ends with ``The answer is N.`` (True/False for a claim
    of ``claims``, after the comparison that decides it). Needs meta["steps"] (math, claims) or
    meta["chain"] (logic), as written by the generators of this package."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {STYLES}")
    if problem.kind == "bool" and "chain" in problem.meta:
        return _logic_solution(problem, style, rng)
    if "steps" not in problem.meta:
        raise ValueError(f"problem {problem.id!r} has no meta['steps']; only synthetic problems have solutions")
    steps = problem.meta["steps"]
    if style == "answer_only":
        return _final(problem.gold)
    if style == "concise":
        return _concise(problem, steps, rng)
    if style == "verbose":
        return _verbose(problem, steps, rng)
    claimed = _flawed_steps(steps, rng)
    return _concise(problem, claimed, rng) if rng.random() < 0.5 else _verbose(problem, claimed, rng)


def _all_wrong(steps: Sequence, rng: random.Random) -> list[tuple]:
    """A claimed chain wrong at every step (wrong operations; off-by-one slips as a fallback)."""
    claimed = _corrupt(steps, 0, rng, every=True)
    if claimed:
        return claimed
    claimed, value = [], steps[0][0]
    for _, op, b, _ in steps:
        value_next = apply_op(value, op, b) + 1
        claimed.append((value, op, b, value_next))
        value = value_next
    return claimed


def answer_types(problem: Problem, other: Problem, rng: random.Random) -> dict[str, str]:
    """One answer of each of ANSWER_TYPES for ``problem`` (synthetic math or logic):
    concise_correct, redundant_correct (the concise answer and the verbose style's full re-check),
    answer_only, partially_correct (the right first steps, then one wrong last step), incorrect
    (wrong at every step) and irrelevant (a correct concise solution of ``other``). A math problem
    needs two steps at least: one step has no "first steps" to get right."""
    if other.question == problem.question:
        raise ValueError("answer_types needs a different problem as `other` for the irrelevant answer")
    final = _final(problem.gold)
    if problem.kind == "bool" and "chain" in problem.meta:
        types = {"concise_correct": _logic_solution(problem, "concise", rng),
                 "redundant_correct": _logic_solution(problem, "verbose", rng),
                 "partially_correct": _logic_solution(problem, "flawed", rng),
                 "incorrect": " ".join(problem.meta["wrong_chain"]
                                       + [_final("False" if problem.gold == "True" else "True")])}
    elif "steps" in problem.meta:
        steps = problem.meta["steps"]
        if len(steps) < 2:
            raise ValueError(f"problem {problem.id!r} has one step: a partially correct answer needs right first "
                             "steps before its slip; use problems of 2-3 steps (arithmetic_problems(min_steps=2))")
        units = rng.random() < 0.3     # one format for the short types, so the pairs differ in content only
        types = {"concise_correct": _concise(problem, steps, rng, units),
                 "redundant_correct": _verbose(problem, steps, rng, full=True),
                 "partially_correct": _concise(problem, _flawed_steps(steps, rng, last_only=True), rng, units),
                 "incorrect": _concise(problem, _all_wrong(steps, rng), rng, units)}
    else:
        raise ValueError(f"problem {problem.id!r} is not a synthetic problem (no meta['steps'] or meta['chain'])")
    types.update(answer_only=final, irrelevant=solution(other, "concise", rng))
    return {name: types[name] for name in ANSWER_TYPES}
