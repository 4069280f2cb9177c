"""Synthetic tasks for the embedded tiny reasoner: arithmetic word problems, solution texts in
several styles, ProntoQA-style logic chains, GSM-Symbolic-style variants and the six answer types.

Everything is deterministic by seed (``random.Random`` seeded with a string, so the result does
not depend on PYTHONHASHSEED). Every solution ends with the final-answer phrase
``The answer is N.``: the graders read the last number (math) or the last True/False (logic).
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from typing import Sequence

from sar_lib.problem import Problem

STYLES = ("answer_only", "concise", "verbose", "flawed")
# Verbose the most common style, so the base model's greedy answers are verbose and correct: the
# regime of SAR's paper (room to cut, verbosity that correctness does not punish); answer-only
# answers are the "too short" ones that length penalties can over-shoot to.
DEFAULT_STYLE_MIX = {"answer_only": 0.10, "concise": 0.30, "verbose": 0.53, "flawed": 0.07}
ANSWER_TYPES = ("concise_correct", "redundant_correct", "answer_only", "partially_correct",
                "incorrect", "irrelevant")
MAX_RESULT = 99           # every intermediate and final result stays below 100
TEST_SHARE = 5            # one question text in TEST_SHARE hashes into the test split

# --------------------------------------------------------------------------------------------
# Entities. The symbolic variants draw names from a pool the train/test problems never use.
_FEMALE = ("Ava", "Mia", "Lily", "Emma", "Zoe", "Nora", "Ella", "Grace", "Ruby", "Chloe", "Maya",
           "Hana", "Sofia", "Amara", "Leila", "Priya", "Ines", "Yuki", "Anna", "Rosa")
_MALE = ("Liam", "Noah", "Leo", "Omar", "Ben", "Jack", "Ethan", "Lucas", "Ravi", "Kenji", "Diego",
         "Tom", "Felix", "Hugo", "Mateo", "Kofi", "Ali", "Sam", "Max", "Owen")
_HELDOUT_FEMALE = ("Yara", "Anouk", "Ngozi", "Freya", "Thandi", "Mirela", "Saoirse", "Ottilie")
_HELDOUT_MALE = ("Tariq", "Soren", "Idris", "Bodhi", "Emeka", "Lorcan", "Vikram", "Anselm")
_PRONOUNS = {"f": ("she", "her", "her"), "m": ("he", "his", "him")}

# (objects, container of those objects)
_ITEMS = (("pencils", "boxes"), ("apples", "bags"), ("cookies", "jars"), ("stickers", "packs"),
          ("muffins", "trays"), ("crayons", "boxes"), ("marbles", "bags"), ("eggs", "baskets"),
          ("cards", "packs"), ("beads", "strings"), ("stamps", "albums"), ("books", "shelves"),
          ("shells", "buckets"), ("oranges", "crates"), ("balloons", "bunches"), ("candies", "bowls"))
_THINGS = ("book", "toy", "hat", "game", "lunch", "ticket", "kite", "puzzle", "scarf", "plant")
# (base verb, third person, unit)
_ACTIVITIES = (("run", "runs", "miles"), ("read", "reads", "pages"), ("swim", "swims", "laps"),
               ("walk", "walks", "kilometers"), ("bike", "bikes", "miles"),
               ("practice piano for", "practices piano for", "minutes"),
               ("paint for", "paints for", "minutes"), ("write", "writes", "pages"))
_TIMES = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}

# Templates. Fields: {name} {friend} {He}/{he} {his}/{His} {him} {obj} {box} {thing} {verb}
# {verbs} {unit} {a} {b} {times}. A continuation template is (text, allowed factors or None).
_FAMILIES: dict[str, dict] = {
    "collect": {
        "unit": "{obj}",
        "start": {
            "+": ["{name} has {a} {obj}. {He} gets {b} more {obj} from {friend}.",
                  "{name} picks {a} {obj} in the morning and {b} {obj} in the afternoon.",
                  "{name} has {a} {obj}, and {friend} gives {him} {b} more.",
                  "{name} found {a} {obj} on Monday and {b} {obj} on Tuesday."],
            "-": ["{name} has {a} {obj}. {He} gives {b} {obj} to {friend}.",
                  "{name} had {a} {obj} but lost {b} of them.",
                  "{name} bought {a} {obj} and used {b} of them.",
                  "{name} has {a} {obj}. {friend} borrows {b} of them."],
            "*": ["{name} has {a} {box} of {b} {obj}.",
                  "{name} buys {a} {box} with {b} {obj} in each.",
                  "{name} fills {a} {box}, putting {b} {obj} in each one.",
                  "There are {a} {box} with {b} {obj} each, and they all belong to {name}."],
        },
        "cont": {
            "+": [("Then {he} finds {b} more {obj}.", None), ("{friend} gives {him} {b} more {obj}.", None),
                  ("Later {he} buys {b} more.", None), ("After that, {he} gets another {b} {obj}.", None)],
            "-": [("{He} gives {b} {obj} to {friend}.", None), ("Then {he} loses {b} of them.", None),
                  ("{He} uses {b} {obj} for a school project.", None), ("{friend} takes {b} {obj}.", None),
                  ("After that, {he} gives away {b} {obj}.", None)],
            "*": [("Then {he} doubles {his} collection.", (2,)), ("Then {he} triples {his} collection.", (3,)),
                  ("A week later {he} has {b} times as many {obj} as before.", None),
                  ("By the end of the month {he} has {times} as many {obj}.", None)],
        },
        "ask": ["How many {obj} does {name} have now?", "How many {obj} does {name} have in the end?",
                "How many {obj} does {name} have?"],
        "ask-": ["How many {obj} does {name} have left?"],
    },
    "money": {
        "unit": "dollars",
        "start": {
            "+": ["{name} has {a} dollars. {He} earns {b} dollars mowing lawns.",
                  "{name} saved {a} dollars in May and {b} dollars in June.",
                  "{name} has {a} dollars, and {friend} gives {him} {b} dollars."],
            "-": ["{name} has {a} dollars. {He} spends {b} dollars on a {thing}.",
                  "{name} had {a} dollars and paid {b} dollars for a {thing}.",
                  "{name} has {a} dollars and buys a {thing} that costs {b} dollars."],
            "*": ["{name} earns {a} dollars each week for {b} weeks.",
                  "{name} sells {a} cups of lemonade for {b} dollars each.",
                  "{name} saves {a} dollars a day for {b} days."],
        },
        "cont": {
            "+": [("Then {he} earns {b} more dollars.", None), ("{friend} gives {him} {b} dollars as a gift.", None),
                  ("{He} finds {b} dollars in {his} coat.", None)],
            "-": [("{He} spends {b} dollars on a {thing}.", None), ("Then {he} buys a {thing} for {b} dollars.", None),
                  ("{He} pays {b} dollars for a {thing}.", None)],
            "*": [("Then {his} grandmother doubles {his} money.", (2,)),
                  ("After a few months {he} has {times} as much money.", None)],
        },
        "ask": ["How many dollars does {name} have now?", "How much money does {name} have now, in dollars?",
                "How many dollars does {name} have in the end?"],
        "ask-": ["How many dollars does {name} have left?"],
    },
    "activity": {
        "unit": "{unit}",
        "start": {
            "+": ["{name} {verbs} {a} {unit} on Monday and {b} {unit} on Tuesday.",
                  "In the morning {name} {verbs} {a} {unit}, and in the evening {he} {verbs} {b} {unit}."],
            "*": ["{name} {verbs} {a} {unit} every day for {b} days.",
                  "Each day {name} {verbs} {a} {unit}. {He} does this for {b} days."],
        },
        "cont": {
            "+": [("On the weekend {he} {verbs} {b} more {unit}.", None),
                  ("Then {he} {verbs} another {b} {unit}.", None)],
            "*": [("{He} does the same every week for {b} weeks.", None),
                  ("{He} keeps this up for {b} weeks.", None)],
        },
        "ask": ["How many {unit} does {name} {verb} in total?", "In total, how many {unit} does {name} {verb}?"],
        "ask-": [],
    },
    "bus": {
        "unit": "passengers",
        "start": {
            "+": ["{name} drives a bus with {a} passengers. At the first stop, {b} more people get on.",
                  "There are {a} passengers on {name}'s bus. {b} more passengers get on at the station."],
            "-": ["{name} drives a bus with {a} passengers. At the first stop, {b} people get off.",
                  "There are {a} passengers on {name}'s bus. {b} of them get off at the market."],
            "*": ["{name}'s bus has {a} rows with {b} passengers in each row."],
        },
        "cont": {
            "+": [("At the next stop, {b} people get on.", None), ("Then {b} more passengers get on.", None)],
            "-": [("At the next stop, {b} people get off.", None), ("Then {b} passengers get off.", None)],
        },
        "ask": ["How many passengers are on the bus now?", "How many passengers are on {name}'s bus now?"],
        "ask-": ["How many passengers are still on the bus?"],
    },
}
_FAMILY_NAMES = tuple(_FAMILIES)
_FAMILY_WEIGHTS = (4, 3, 2, 1)     # by template variety: collect has the most, bus the fewest
_N_ENTITIES = {"collect": len(_ITEMS), "money": len(_THINGS), "activity": len(_ACTIVITIES), "bus": 1}

_DISTRACTORS = ("{name}'s {relative} is {k} years old.", "The {place} is {k} minutes away from {name}'s house.",
                "It is {k} degrees warmer than yesterday.", "{name}'s favourite number is {k}.",
                "{friend} lives {k} houses down the street.")
_RELATIVES = ("brother", "sister", "cousin", "neighbour")
_PLACES = ("park", "library", "store", "school")


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _steps(ops: Sequence[str], numbers: Sequence[int]) -> list[tuple[int, str, int, int]]:
    """(a, op, b, result) per step: step 0 is numbers[0] op numbers[1], step k is prev op numbers[k+1]."""
    steps, value = [], numbers[0]
    for op, b in zip(ops, numbers[1:]):
        result = _apply(value, op, b)
        steps.append((value, op, b, result))
        value = result
    return steps


def _fields(spec: dict) -> dict:
    he, his, him = _PRONOUNS[spec["gender"]]
    fields = {"name": spec["name"], "friend": spec["friend"], "he": he, "He": he.capitalize(),
              "his": his, "His": his.capitalize(), "him": him}
    if spec["family"] == "collect":
        fields["obj"], fields["box"] = _ITEMS[spec["entity"]]
    elif spec["family"] == "activity":
        fields["verb"], fields["verbs"], fields["unit"] = _ACTIVITIES[spec["entity"]]
    return fields


def _asks(family: dict, ops: Sequence[str]) -> list[str]:
    """Question templates that fit the chain: "... have left?" only after a subtraction."""
    return family["ask"] + (family["ask-"] if ops[-1] == "-" else [])


def _sentences(spec: dict) -> list[str]:
    """The question of ``spec`` as a list of sentences (one or two per step, the ask last)."""
    family, fields = _FAMILIES[spec["family"]], _fields(spec)
    ops, nums = spec["ops"], spec["numbers"]
    text = family["start"][ops[0]][spec["start"]].format(
        a=nums[0], b=nums[1], thing=_THINGS[spec["entity"] % len(_THINGS)], **fields)
    parts = re.split(r"(?<=\.) ", text)
    for k, (op, idx) in enumerate(zip(ops[1:], spec["conts"]), start=1):
        b = nums[k + 1]
        parts.append(family["cont"][op][idx][0].format(
            b=b, times=_TIMES.get(b, f"{b} times"), thing=_THINGS[(spec["entity"] + k) % len(_THINGS)],
            **fields))
    parts.append(_asks(family, ops)[spec["ask"]].format(**fields))
    return parts


def _sample_numbers(ops: Sequence[str], family: dict, conts: Sequence[int], rng: random.Random) -> list[int] | None:
    """Operands for ``ops``: 2..12 added or taken away (a first minuend 5..20), 2..5 x 2..10 for a
    first-step product, factors 2..3 later; results in [1, MAX_RESULT]. No operand is 1, which keeps
    the plural nouns grammatical. Small numbers keep the facts a few-million-parameter model must
    learn in a 15-minute CPU pretraining to a few thousand.
    None when the chain is infeasible (the caller draws again)."""
    op = ops[0]
    if op == "+":
        nums = [rng.randint(2, 12), rng.randint(2, 12)]
    elif op == "-":
        a = rng.randint(5, 20)
        nums = [a, rng.randint(2, a - 2)]
    else:
        nums = [rng.randint(2, 5), rng.randint(2, 10)]
    value = _apply(nums[0], op, nums[1])
    for op, idx in zip(ops[1:], conts):
        if op == "+":
            b = rng.randint(2, 12)
        elif op == "-":
            if value < 3:
                return None
            b = rng.randint(2, min(12, value - 1))
        else:
            allowed = family["cont"]["*"][idx][1] or (2, 3)
            factors = [f for f in allowed if value * f <= MAX_RESULT]
            if value < 1 or not factors:
                return None
            b = rng.choice(factors)
        value = _apply(value, op, b)
        if value > MAX_RESULT:
            return None
        nums.append(b)
    return nums


def _random_spec(n_steps: int, rng: random.Random) -> dict | None:
    """Family, entities, operations, templates and operands of one problem; None if infeasible."""
    family_name = rng.choices(_FAMILY_NAMES, weights=_FAMILY_WEIGHTS)[0]
    family = _FAMILIES[family_name]
    ops = [rng.choice(sorted(family["start"]))]
    ops += [rng.choice(sorted(family["cont"])) for _ in range(n_steps - 1)]
    conts = [rng.randrange(len(family["cont"][op])) for op in ops[1:]]
    numbers = _sample_numbers(ops, family, conts, rng)
    if numbers is None:
        return None
    gender = rng.choice("fm")
    name = rng.choice(_FEMALE if gender == "f" else _MALE)
    friend = rng.choice([x for x in _FEMALE + _MALE if x != name])
    return {"family": family_name, "entity": rng.randrange(_N_ENTITIES[family_name]), "gender": gender,
            "name": name, "friend": friend, "ops": ops, "numbers": numbers,
            "start": rng.randrange(len(family["start"][ops[0]])), "conts": conts,
            "ask": rng.randrange(len(_asks(family, ops)))}


def _unit_noun(spec: dict) -> str:
    return _FAMILIES[spec["family"]]["unit"].format(**_fields(spec))


def _problem_from_spec(spec: dict, pid: str, source: str, sentences: list[str] | None = None) -> Problem:
    steps = _steps(spec["ops"], spec["numbers"])
    question = " ".join(sentences or _sentences(spec))
    return Problem(id=pid, question=question, gold=str(steps[-1][3]), kind="math", source=source,
                   meta={"steps": steps, "spec": spec, "unit": _unit_noun(spec)})


def split_of(question: str) -> str:
    """Held-out split of a question text: "test" for one sha256 bucket in TEST_SHARE, else "train"."""
    return "test" if hashlib.sha256(question.encode()).digest()[0] % TEST_SHARE == 0 else "train"


def _check_n(n: int) -> None:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")


def arithmetic_problems(n: int, seed: int, *, split: str = "train", min_steps: int = 1,
                        max_steps: int = 3) -> list[Problem]:
    """``n`` distinct word problems of 1-3 steps over +, -, x with small numbers.

    A problem is the chain r_1 = a op_1 b_1, r_k = r_{k-1} op_k b_k; gold = str(r_last),
    meta["steps"] = [(a, op, b, r), ...]. The split is a hash of the question text
    (``split_of``), so "train" and "test" never share a question. Ids: "arith-<split>-<i>".
    """
    _check_n(n)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not 1 <= min_steps <= max_steps <= 3:
        raise ValueError(f"need 1 <= min_steps <= max_steps <= 3, got {min_steps}, {max_steps}")
    rng = random.Random(f"arith:{split}:{seed}:{min_steps}:{max_steps}")
    problems, seen, tries = [], set(), 0
    while len(problems) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError(f"could not find {n} distinct {split} problems; ask for fewer")
        spec = _random_spec(rng.randint(min_steps, max_steps), rng)
        if spec is None:
            continue
        question = " ".join(_sentences(spec))
        if question in seen or split_of(question) != split:
            continue
        seen.add(question)
        problems.append(_problem_from_spec(spec, f"arith-{split}-{len(problems)}", "synthetic-arith"))
    return problems


# --------------------------------------------------------------------------------------------
# Solution texts. A "claimed" chain of steps may contain errors; the renderers write whatever
# chain they are given, so one renderer serves correct, flawed, partial and incorrect answers.
#
# Every reasoning style opens with a word that does not depend on the question ("First," for the
# concise chain, the shared VERBOSE_OPENER for the verbose one), so the choice of style is made at
# the first answer token, apart from copying the question's numbers (which both styles then do
# alike). The verbose style is the concise chain, unchanged, wrapped in question-independent
# sentences: the redundancy of SAR's premise, which carries no information from the question and
# cannot change the computation.
VERBOSE_OPENER = "Let me think about this step by step."
OPENERS = (VERBOSE_OPENER, "Okay, let me read the problem carefully.", "Let's solve this problem.",
           "Alright, let me work through this slowly.", "Let me think about this.")
PRE_FILLERS = ("I will write down each calculation carefully.", "Okay, let me work through this.",
               "I want to be careful with every step.", "Let me take this one step at a time.",
               "I should read the numbers carefully.", "Hmm, let me think about this carefully.")
POST_FILLERS = ("Let me check that again.", "Yes, that looks right.", "Everything adds up.",
                "I am confident in this result.", "That was the last step.", "Good, so far so good.")
FILLERS = PRE_FILLERS + POST_FILLERS


def _eq(step: Sequence) -> str:
    a, op, b, r = step
    return f"{a} {op} {b} = {r}"


def _final(answer) -> str:
    return f"The answer is {answer}."


def _chain(claimed: Sequence, unit: str, with_units: bool) -> str:
    """"First, a op b = r. Then r op c = s." (with the unit after each result when ``with_units``)."""
    return " ".join(("First, " if k == 0 else "Then ") + _eq(step) + (f" {unit}" if with_units else "") + "."
                    for k, step in enumerate(claimed))


def _concise(claimed: Sequence, unit: str, rng: random.Random, with_units: bool | None = None) -> str:
    """The claimed chain and the final answer: "First, 3 + 4 = 7. Then 7 * 2 = 14. The answer is 14."."""
    with_units = rng.random() < 0.3 if with_units is None else with_units
    return f"{_chain(claimed, unit, with_units)} {_final(claimed[-1][3])}"


def _verbose(claimed: Sequence, unit: str, rng: random.Random, *, full: bool = False) -> str:
    """VERBOSE_OPENER, one or two PRE_FILLERS, the concise chain unchanged, one or two POST_FILLERS,
    the final answer (``full``: two of each). About 2.5x the concise length, same computation."""
    n_pre, n_post = (2, 2) if full else (rng.randint(1, 2), rng.randint(1, 2))
    parts = [VERBOSE_OPENER, *rng.sample(PRE_FILLERS, n_pre), _chain(claimed, unit, rng.random() < 0.3),
             *rng.sample(POST_FILLERS, n_post), _final(claimed[-1][3])]
    return " ".join(parts)


def answer_style(text: str) -> str:
    """The style a (generated) answer is written in: "answer_only" (no equation), "verbose" (opens
    with an opener or holds a filler sentence), "concise" (opens with the chain's "First,") or
    "other" (e.g. a garbled text)."""
    text = text.strip()
    if "=" not in text:
        return "answer_only" if text.startswith("The answer is") else "other"
    if text.startswith(OPENERS) or any(f in text for f in FILLERS):
        return "verbose"
    return "concise" if text.startswith("First,") else "other"


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
                    r = _apply(a, op, b)
                else:
                    r = _apply(a, op, b) + rng.choice((-10, -2, -1, 1, 2, 10))
                if r == r_true or not 0 <= r <= MAX_RESULT:
                    break
            else:
                r = _apply(a, op, b)
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
        parts = [VERBOSE_OPENER, f"We need to decide whether this is true: {stmt}"]
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
    final answer; concise or verbose). Always ends with ``The answer is N.``. Needs meta["steps"]
    (math) or meta["chain"] (bool), as written by the generators of this module."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {STYLES}")
    if problem.kind == "bool" and "chain" in problem.meta:
        return _logic_solution(problem, style, rng)
    if "steps" not in problem.meta:
        raise ValueError(f"problem {problem.id!r} has no meta['steps']; only synthetic problems have solutions")
    steps, unit = problem.meta["steps"], problem.meta.get("unit", "")
    if style == "answer_only":
        return _final(problem.gold)
    if style == "concise":
        return _concise(steps, unit, rng)
    if style == "verbose":
        return _verbose(steps, unit, rng)
    claimed = _flawed_steps(steps, rng)
    return _concise(claimed, unit, rng) if rng.random() < 0.5 else _verbose(claimed, unit, rng)


# --------------------------------------------------------------------------------------------
# ProntoQA-style logic. Evaluation uses the "-pus" names of the real ProntoQA; the training
# corpus uses other made-up words, so the logic eval stays out of domain.
_EVAL_CONCEPTS = ("wumpus", "yumpus", "zumpus", "dumpus", "rompus", "numpus", "tumpus", "vumpus",
                  "impus", "jompus", "gorpus", "lempus", "sterpus", "brimpus")


@functools.lru_cache(maxsize=1)
def _train_concepts() -> tuple[str, ...]:
    """2,000 made-up words (consonant-vowel syllables, e.g. "dafen"), none containing "pus".
    A pool this large pushes a model to copy concept names from the question instead of memorising
    a short list: with 14 fixed words the tiny model wrote those words into its proofs of "-pus"
    questions. With this pool it copies the person's fact but does not learn to look up which rule
    applies to a concept (logic-test within chance, see the model card), not even when trained on
    logic alone for the same 1,100 steps."""
    rng = random.Random("logic-train-concepts")
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < 2000:
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(1, 2)))
        word += rng.choice(("", "n", "t", "k", "b", "p", "g"))
        if len(word) >= 3 and "pus" not in word:
            words.add(word)
    return tuple(sorted(words))


_ADJECTIVES = ("shy", "aggressive", "wooden", "red", "opaque", "sour", "earthy", "small", "angry", "bright",
               "luminous", "transparent", "bitter", "happy", "large", "floral", "brown", "metallic",
               "amenable", "cold", "spicy", "orange", "hot", "kind", "blue", "sweet", "dull", "fruity",
               "feisty", "liquid", "mean", "nervous")
_LOGIC_NAMES = ("Max", "Stella", "Wren", "Sally", "Alex", "Fae", "Polly", "Rex", "Sam")


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "z", "sh", "ch")) else "s")


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _isa(x: str, y: str, rng: random.Random) -> str:
    return rng.choice((f"Every {x} is {_article(y)}.", f"Each {x} is {_article(y)}.",
                       f"{_plural(x).capitalize()} are {_plural(y)}."))


def _has(x: str, adj: str, negated: bool, rng: random.Random) -> str:
    neg = "not " if negated else ""
    return rng.choice((f"Every {x} is {neg}{adj}.", f"Each {x} is {neg}{adj}.",
                       f"{_plural(x).capitalize()} are {neg}{adj}."))


def _logic_item(hops: int, truth: bool, concepts: Sequence[str], rng: random.Random,
                pid: str, source: str) -> Problem:
    """hops = rules applied: hops-1 "is a" links from the person's concept, then one property rule."""
    n_before, n_after = rng.randint(0, 1), rng.randint(0, 2)
    names = rng.sample(list(concepts), n_before + hops + n_after + 1)
    chain_concepts, distractor = names[:-1], names[-1]
    adjectives = rng.sample(_ADJECTIVES, len(chain_concepts) + 1)
    target, others = adjectives[0], adjectives[1:]
    start, end = n_before, n_before + hops - 1          # the person's concept, the property's concept
    chain_negated = rng.random() < 0.5
    facts, isa_fact, target_fact = [], {}, ""
    for i, concept in enumerate(chain_concepts):
        if i == end:
            target_fact = _has(concept, target, chain_negated, rng)
            facts.append(target_fact)
        else:
            facts.append(_has(concept, others[i], rng.random() < 0.4, rng))
        if i + 1 < len(chain_concepts):
            isa_fact[i] = _isa(concept, chain_concepts[i + 1], rng)
            facts.append(isa_fact[i])
    distractor_fact = _has(distractor, target, not chain_negated, rng)
    facts.insert(rng.randrange(len(facts) + 1), distractor_fact)
    person = rng.choice(_LOGIC_NAMES)
    facts.append(f"{person} is {_article(chain_concepts[start])}.")
    query_negated = chain_negated if truth else not chain_negated
    statement = f"{person} is {'not ' if query_negated else ''}{target}."
    chain = [facts[-1]]
    for i in range(start, end):
        chain += [isa_fact[i], f"{person} is {_article(chain_concepts[i + 1])}."]
    chain += [target_fact, f"{person} is {'not ' if chain_negated else ''}{target}."]
    question = " ".join(facts) + f" Is the following statement true or false? {statement}"
    return Problem(id=pid, question=question, gold="True" if truth else "False", kind="bool", source=source,
                   meta={"hops": hops, "chain": chain, "statement": statement,
                         "wrong_chain": [f"{person} is {_article(distractor)}.", distractor_fact,
                                         f"{person} is {'' if chain_negated else 'not '}{target}."]})


def _logic_set(n: int, seed: int, min_hops: int, max_hops: int, concepts: Sequence[str],
               prefix: str, source: str) -> list[Problem]:
    _check_n(n)
    if not 1 <= min_hops <= max_hops <= 6:
        raise ValueError(f"need 1 <= min_hops <= max_hops <= 6, got {min_hops}, {max_hops}")
    rng = random.Random(f"{prefix}:{seed}:{min_hops}:{max_hops}")
    truths = [i % 2 == 0 for i in range(n)]           # balanced: ceil(n/2) True
    rng.shuffle(truths)
    return [_logic_item(rng.randint(min_hops, max_hops), t, concepts, rng, f"{prefix}-{i}", source)
            for i, t in enumerate(truths)]


def logic_problems(n: int, seed: int, *, min_hops: int = 1, max_hops: int = 4) -> list[Problem]:
    """ProntoQA-style True/False chains (evaluation only): facts "Every X is a Y." / "Xs are [not] P.",
    a person "Max is a X.", and "Is the following statement true or false? Max is [not] P.".
    gold is "True" or "False", balanced (ceil(n/2) True); one distractor fact states the opposite
    property of a concept off the chain. meta["chain"] is the proof, meta["hops"] its rule count."""
    return _logic_set(n, seed, min_hops, max_hops, _EVAL_CONCEPTS, "logic-test", "synthetic-logic")


# --------------------------------------------------------------------------------------------
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
                    logic_share: float = 0.10, min_steps: int = 1, max_steps: int = 3) -> list[tuple[Problem, str]]:
    """``n`` (problem, solution text) pairs for pretraining, shuffled.

    round(n * logic_share) are 1-2 hop logic chains over made-up training words (concise proofs
    ending "The answer is True." / "The answer is False."); the rest are train-split arithmetic
    problems whose styles follow ``style_mix`` exactly up to rounding (default
    :data:`DEFAULT_STYLE_MIX`). Each problem's meta["style"] records the style of its text.
    """
    _check_n(n)
    mix = DEFAULT_STYLE_MIX if style_mix is None else style_mix
    if set(mix) - set(STYLES):
        raise ValueError(f"style_mix keys must be among {STYLES}, got {sorted(mix)}")
    if not 0.0 <= logic_share <= 1.0:
        raise ValueError(f"logic_share must be in [0, 1], got {logic_share}")
    rng = random.Random(f"corpus:{seed}")
    n_logic = round(n * logic_share)
    problems = arithmetic_problems(n - n_logic, seed, split="train", min_steps=min_steps, max_steps=max_steps)
    styles = _quota(len(problems), mix)
    rng.shuffle(styles)
    logic = _logic_set(n_logic, seed, 1, 2, _train_concepts(), "logic-train", "synthetic-logic-train")
    styles += ["concise"] * len(logic)
    pairs = []
    for problem, style in zip(problems + logic, styles):
        problem.meta["style"] = style
        pairs.append((problem, solution(problem, style, rng)))
    rng.shuffle(pairs)
    return pairs


# --------------------------------------------------------------------------------------------
def symbolic_variants(problems: Sequence[Problem], seed: int, *, id_prefix: str = "symbolic") -> list[Problem]:
    """GSM-Symbolic-style variant of each synthetic arithmetic problem: same templates and
    operations, person and friend renamed from a name pool the train/test sets never use, every
    operand re-drawn (gold recomputed), and one irrelevant clause with a number (GSM-NoOp style)
    inserted before a sentence that does not start with a pronoun. Ids: "<id_prefix>-<i>"."""
    rng = random.Random(f"symbolic:{seed}")
    variants = []
    for i, problem in enumerate(problems):
        if "spec" not in problem.meta:
            raise ValueError(f"problem {problem.id!r} has no meta['spec']: symbolic_variants needs problems "
                             "from arithmetic_problems")
        spec = dict(problem.meta["spec"])
        gender = rng.choice("fm")
        pool = _HELDOUT_FEMALE if gender == "f" else _HELDOUT_MALE
        spec.update(gender=gender, name=rng.choice(pool),
                    friend=rng.choice([x for x in _HELDOUT_FEMALE + _HELDOUT_MALE if x not in pool]))
        family = _FAMILIES[spec["family"]]
        numbers = None
        while numbers is None or numbers == spec["numbers"]:
            numbers = _sample_numbers(spec["ops"], family, spec["conts"], rng)
        spec["numbers"] = numbers
        sentences = _sentences(spec)
        clause = rng.choice(_DISTRACTORS).format(
            k=rng.randint(2, 40), relative=rng.choice(_RELATIVES), place=rng.choice(_PLACES), **_fields(spec))
        slots = [k for k in range(1, len(sentences)) if sentences[k].split()[0] not in ("He", "She", "His", "Her")]
        sentences.insert(rng.choice(slots), clause)
        variant = _problem_from_spec(spec, f"{id_prefix}-{i}", "synthetic-symbolic", sentences)
        variant.meta.update(source_id=problem.id, distractor=clause)
        variants.append(variant)
    return variants


def _setup(step: Sequence) -> str:
    a, op, b, _ = step
    return {"+": f"We need to add {b} to {a}.", "-": f"We need to subtract {b} from {a}.",
            "*": f"We need to multiply {a} by {b}."}[op]


def _all_wrong(steps: Sequence, rng: random.Random) -> list[tuple]:
    """A claimed chain wrong at every step (wrong operations; off-by-one slips as a fallback)."""
    claimed = _corrupt(steps, 0, rng, every=True)
    if claimed:
        return claimed
    claimed, value = [], steps[0][0]
    for _, op, b, _ in steps:
        value_next = _apply(value, op, b) + 1
        claimed.append((value, op, b, value_next))
        value = value_next
    return claimed


def answer_types(problem: Problem, other: Problem, rng: random.Random) -> dict[str, str]:
    """One answer of each of ANSWER_TYPES for ``problem`` (synthetic math or logic):
    concise_correct, redundant_correct (restatement, filler, repeated checks), answer_only,
    partially_correct (right first steps, then a wrong one; a 1-step problem gets a correct setup
    and an arithmetic slip), incorrect (wrong at every step) and irrelevant (a correct concise
    solution of ``other``). All end with "The answer is N."."""
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
        steps, unit = problem.meta["steps"], problem.meta.get("unit", "")
        units = rng.random() < 0.3     # one format for the short types, so the pairs differ in content only
        setup = _setup(steps[0]) + " " if len(steps) == 1 else ""
        types = {"concise_correct": _concise(steps, unit, rng, units),
                 "redundant_correct": _verbose(steps, unit, rng, full=True),
                 "partially_correct": setup + _concise(_flawed_steps(steps, rng, last_only=True), unit, rng, units),
                 "incorrect": _concise(_all_wrong(steps, rng), unit, rng, units)}
    else:
        raise ValueError(f"problem {problem.id!r} is not a synthetic problem (no meta['steps'] or meta['chain'])")
    types.update(answer_only=final, irrelevant=solution(other, "concise", rng))
    return {name: types[name] for name in ANSWER_TYPES}

