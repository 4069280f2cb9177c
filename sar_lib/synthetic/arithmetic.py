"""Arithmetic word problems of one to three steps over +, -, x with small numbers, and their
GSM-Symbolic-style variants (renamed people, re-drawn numbers, one irrelevant clause).

A problem is the chain r_1 = a op_1 b_1, r_k = r_{k-1} op_k b_k; its meta["steps"] lists
(a, op, b, r) per step and meta["spec"] the template choices. Deterministic by seed.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Sequence

from sar_lib.problem import Problem

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


def apply_op(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _steps(ops: Sequence[str], numbers: Sequence[int]) -> list[tuple[int, str, int, int]]:
    """(a, op, b, result) per step: step 0 is numbers[0] op numbers[1], step k is prev op numbers[k+1]."""
    steps, value = [], numbers[0]
    for op, b in zip(ops, numbers[1:]):
        result = apply_op(value, op, b)
        steps.append((value, op, b, result))
        value = result
    return steps


def template_fields(spec: dict) -> dict:
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


def question_sentences(spec: dict) -> list[str]:
    """The question of ``spec`` as a list of sentences (one or two per step, the ask last)."""
    family, fields = _FAMILIES[spec["family"]], template_fields(spec)
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
    value = apply_op(nums[0], op, nums[1])
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
        value = apply_op(value, op, b)
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
    return _FAMILIES[spec["family"]]["unit"].format(**template_fields(spec))


def _problem_from_spec(spec: dict, pid: str, source: str, sentences: list[str] | None = None) -> Problem:
    steps = _steps(spec["ops"], spec["numbers"])
    question = " ".join(sentences or question_sentences(spec))
    return Problem(id=pid, question=question, gold=str(steps[-1][3]), kind="math", source=source,
                   meta={"steps": steps, "spec": spec, "unit": _unit_noun(spec)})


def split_of(question: str) -> str:
    """Held-out split of a question text: "test" for one sha256 bucket in TEST_SHARE, else "train"."""
    return "test" if hashlib.sha256(question.encode()).digest()[0] % TEST_SHARE == 0 else "train"


def check_count(n: int) -> None:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")


def arithmetic_problems(n: int, seed: int, *, split: str = "train", min_steps: int = 1,
                        max_steps: int = 3) -> list[Problem]:
    """``n`` distinct word problems of 1-3 steps over +, -, x with small numbers.

    A problem is the chain r_1 = a op_1 b_1, r_k = r_{k-1} op_k b_k; gold = str(r_last),
    meta["steps"] = [(a, op, b, r), ...]. The split is a hash of the question text
    (``split_of``), so "train" and "test" never share a question. Ids: "arith-<split>-<i>".
    """
    check_count(n)
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
        question = " ".join(question_sentences(spec))
        if question in seen or split_of(question) != split:
            continue
        seen.add(question)
        problems.append(_problem_from_spec(spec, f"arith-{split}-{len(problems)}", "synthetic-arith"))
    return problems


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
        sentences = question_sentences(spec)
        clause = rng.choice(_DISTRACTORS).format(k=rng.randint(2, 40), relative=rng.choice(_RELATIVES),
                                                 place=rng.choice(_PLACES), **template_fields(spec))
        slots = [k for k in range(1, len(sentences)) if sentences[k].split()[0] not in ("He", "She", "His", "Her")]
        sentences.insert(rng.choice(slots), clause)
        variant = _problem_from_spec(spec, f"{id_prefix}-{i}", "synthetic-symbolic", sentences)
        variant.meta.update(source_id=problem.id, distractor=clause)
        variants.append(variant)
    return variants
