"""ProntoQA-style logic chains: True/False questions about a person, answered by applying a chain
of "Every X is a Y." rules from the question's facts. Evaluation uses the "-pus" names of the real
ProntoQA; the training corpus uses other made-up words, so the logic evaluation stays out of domain.
"""

from __future__ import annotations

import functools
import random
from typing import Sequence

from sar_lib.problem import Problem
from sar_lib.synthetic.arithmetic import check_count

_EVAL_CONCEPTS = ("wumpus", "yumpus", "zumpus", "dumpus", "rompus", "numpus", "tumpus", "vumpus",
                  "impus", "jompus", "gorpus", "lempus", "sterpus", "brimpus")


@functools.lru_cache(maxsize=1)
def train_concepts() -> tuple[str, ...]:
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


def logic_set(n: int, seed: int, min_hops: int, max_hops: int, concepts: Sequence[str],
               prefix: str, source: str) -> list[Problem]:
    check_count(n)
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
    return logic_set(n, seed, min_hops, max_hops, _EVAL_CONCEPTS, "logic-test", "synthetic-logic")
