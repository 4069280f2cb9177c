"""Synthetic tasks: deterministic, held-out, well-formed, and every solution says what it should."""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter

import pytest

from sar_lib.data import SYNTHETIC_SETS
from sar_lib.problem import Problem
from sar_lib.synthetic import arithmetic
from sar_lib.synthetic import logic as logic_module
from sar_lib.grading import is_correct
from sar_lib import synthetic
from sar_lib.synthetic import (ANSWER_TYPES, STYLES, answer_style, answer_types, arithmetic_problems, claim_problems,
                               logic_problems, solution, split_of, symbolic_variants, training_corpus)
from sar_lib.synthetic.claims import MAX_GAP, claim_holds

EQUATION = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)")
FINAL = re.compile(r"The answer is (\S+)\.")
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}


def final_answer(text: str) -> str:
    matches = FINAL.findall(text)
    assert matches, f"no final-answer phrase in: {text!r}"
    return matches[-1]


def equations(text: str) -> list[tuple[int, str, int, int]]:
    return [(int(a), op, int(b), int(r)) for a, op, b, r in EQUATION.findall(text)]


def true_equation(eq) -> bool:
    a, op, b, r = eq
    return OPS[op](a, b) == r


@pytest.fixture(scope="module")
def train():
    return arithmetic_problems(300, 0)


def test_arithmetic_is_deterministic_and_seeded():
    first = arithmetic_problems(50, 7, split="test")
    assert [p.question for p in first] == [p.question for p in arithmetic_problems(50, 7, split="test")]
    assert [p.question for p in first] != [p.question for p in arithmetic_problems(50, 8, split="test")]
    assert [p.id for p in first] == [f"arith-test-{i}" for i in range(50)]


def test_train_and_test_are_disjoint():
    train_q = {p.question for p in arithmetic_problems(3000, 0, split="train")}
    test_problems = arithmetic_problems(1000, 0, split="test")
    assert len(train_q) == 3000 and len({p.question for p in test_problems}) == 1000
    assert not train_q & {p.question for p in test_problems}
    assert {split_of(q) for q in train_q} == {"train"}


def test_golds_follow_the_steps(train):
    step_counts = Counter()
    for p in train:
        steps = p.meta["steps"]
        step_counts[len(steps)] += 1
        assert p.kind == "math" and p.gold == str(steps[-1][3])
        for k, step in enumerate(steps):
            assert true_equation(step) and 0 <= step[3] < 200
            assert k == 0 or step[0] == steps[k - 1][3]        # a chain: each step uses the last result
        operands = [steps[0][0]] + [s[2] for s in steps]
        assert all(2 <= x <= 25 for x in operands)
        # every operand is in the question, as a digit or as a multiplier word ("twice")
        for x in operands:
            assert str(x) in p.question or arithmetic._TIMES.get(x, "@") in p.question or "doubles" in p.question \
                or "triples" in p.question, (x, p.question)
    assert set(step_counts) == {1, 2, 3}
    assert all(len(p.meta["steps"]) == 2 for p in arithmetic_problems(30, 0, min_steps=2, max_steps=2))


def test_arithmetic_varies_names_objects_and_phrasing(train):
    specs = [p.meta["spec"] for p in train]
    assert len({s["name"] for s in specs}) > 20
    assert len({s["family"] for s in specs}) == 4
    assert len({p.meta["unit"] for p in train}) > 10
    assert len({p.question.split(" ")[1] for p in train}) > 10     # many different verbs / openings


@pytest.mark.parametrize("kwargs", [dict(split="dev"), dict(min_steps=0), dict(min_steps=3, max_steps=2),
                                    dict(max_steps=4)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        arithmetic_problems(5, 0, **kwargs)


def test_bad_style_and_non_synthetic_problem_raise(train):
    with pytest.raises(ValueError, match="style"):
        solution(train[0], "sloppy", random.Random(0))
    bare = Problem(id="x", question="1+1?", gold="2", kind="math", source="user")
    with pytest.raises(ValueError, match="steps"):
        solution(bare, "concise", random.Random(0))


def test_solution_styles(train):
    rng = random.Random(0)
    lengths = {style: [] for style in STYLES}
    for p in train:
        for style in STYLES:
            text = solution(p, style, rng)
            lengths[style].append(len(text))
            eqs = equations(text)
            assert is_correct(text, p.gold) == is_correct(text, p.gold, strict=True) == (style != "flawed")
            if style == "flawed":
                assert final_answer(text) != p.gold
                # a slip (a false equation) or a misread operation (a true equation off the real chain)
                assert not all(true_equation(e) for e in eqs) or any(t not in eqs for t in p.meta["steps"]), text
            elif style == "answer_only":
                assert text == f"The answer is {p.gold}." and not eqs
            else:
                assert final_answer(text) == p.gold
                assert all(true_equation(e) for e in eqs), text
                assert eqs == [tuple(step) for step in p.meta["steps"]], text   # the chain, in order, once
    assert statistics.mean(lengths["verbose"]) > 2 * statistics.mean(lengths["concise"])
    assert statistics.pstdev(lengths["verbose"]) > 20        # a spread of lengths, not one template


def test_the_verbose_style_is_the_concise_answer_and_a_question_free_recheck(train):
    for p in train[:50]:
        concise, verbose = solution(p, "concise", random.Random(1)), solution(p, "verbose", random.Random(1))
        assert concise.startswith(synthetic.REASONING_OPENER + " First, ")
        head, recheck, extra = verbose.partition(" " + synthetic.CHECK_OPENER)
        assert recheck and synthetic.answer_style(head) == "concise"
        equations = r"\d+ [-+*/x] \d+ = \d+"    # the same computation (units may differ: drawn by the rng)
        assert re.findall(equations, head) == re.findall(equations, concise) != []
        assert final_answer(head) == final_answer(concise) == p.gold
        assert not re.search(r"\d", extra), extra          # the padding carries no number of the question
        assert all(word not in extra for word in p.question.split() if word[0].isupper())   # nor a name
        assert synthetic.answer_style(concise) == "concise" and synthetic.answer_style(verbose) == "verbose"


def test_shorter_chains_get_more_filler_so_verbose_lengths_do_not_track_the_steps(train):
    counts = {}
    for p in train[:300]:
        verbose = solution(p, "verbose", random.Random(p.id))
        extra = verbose.partition(" " + synthetic.CHECK_OPENER)[2]
        counts.setdefault(len(p.meta["steps"]), set()).add(sum(extra.count(f) for f in synthetic.styles.POST_FILLERS))
    assert set(counts) == {1, 2, 3}
    for steps, seen in counts.items():
        fewest, most = synthetic.styles.VERBOSE_FILLERS[steps]
        assert seen == set(range(fewest, most + 1)), (steps, seen)


def test_solution_is_deterministic_given_the_rng(train):
    texts = [solution(p, s, random.Random(3)) for p in train[:20] for s in STYLES]
    assert texts == [solution(p, s, random.Random(3)) for p in train[:20] for s in STYLES]


def test_training_corpus_mix():
    corpus = training_corpus(1000, 0, style_mix={"concise": 0.5, "verbose": 0.3, "flawed": 0.2},
                             logic_share=0.1)
    assert len(corpus) == 1000 and len({p.id for p, _ in corpus}) == 1000
    logic = [(p, t) for p, t in corpus if p.kind == "bool"]
    math = [(p, t) for p, t in corpus if p.kind == "math"]
    assert len(logic) == 100
    assert Counter(p.meta["style"] for p, _ in math) == {"concise": 450, "verbose": 270, "flawed": 180}
    for p, text in math:
        assert (final_answer(text) == p.gold) == (p.meta["style"] != "flawed")
        assert split_of(p.question) == "train"
    for p, text in logic:
        assert is_correct(text, p.gold, "bool") and p.meta["hops"] <= 2
        assert not any(c in p.question for c in logic_module._EVAL_CONCEPTS)   # OOD logic stays OOD
    assert [t for _, t in corpus] == [t for _, t in training_corpus(1000, 0, style_mix={
        "concise": 0.5, "verbose": 0.3, "flawed": 0.2}, logic_share=0.1)]
    assert [t for _, t in corpus] != [t for _, t in training_corpus(1000, 1)]
    with pytest.raises(ValueError, match="style_mix"):
        training_corpus(10, 0, style_mix={"chatty": 1.0})


def test_training_logic_words_are_many_and_never_the_evaluation_words():
    words = logic_module.train_concepts()
    assert len(words) == len(set(words)) == 2000 and words == logic_module.train_concepts()
    assert not any("pus" in w for w in words) and not set(words) & set(logic_module._EVAL_CONCEPTS)
    assert all(w.isalpha() and w.islower() and len(w) >= 3 for w in words)
    # every item draws its own words, so no short list of names recurs across the corpus
    logic = [p for p, _ in training_corpus(400, 0, logic_share=0.5) if p.kind == "bool"]
    used = {w for p in logic for w in words if f" {w} " in f" {p.question} "}
    assert len(used) > 500


def _follow_chain(problem) -> str:
    """Answer a logic item by parsing its facts and walking the "is a" links from the person."""
    context, statement = problem.question.split(" Is the following statement true or false? ")
    adjectives, isa, props = set(logic_module._ADJECTIVES), {}, {}
    singular = {logic_module._plural(c): c for c in logic_module._EVAL_CONCEPTS}
    person, start = re.search(r"(\w+) is an? (\w+)\.$", context).groups()
    for fact in context.split(". ")[:-1]:
        m = re.fullmatch(r"(?:Every|Each) (\w+) is (not )?(?:an? )?(\w+)\.?", fact) \
            or re.fullmatch(r"(\w+) are (not )?(\w+)\.?", fact)
        x, neg, y = m.groups()
        x = singular.get(x.lower(), x.lower())
        if y in adjectives:
            props[x] = (y, bool(neg))
        else:
            isa[x] = singular.get(y, y)
    adj = statement.rstrip(".").split()[-1]
    asked_negated = " not " in statement
    concept = start
    while concept is not None:
        if concept in props and props[concept][0] == adj:
            return "True" if props[concept][1] == asked_negated else "False"
        concept = isa.get(concept)
    raise AssertionError(f"no chain to {adj!r} in {problem.question!r}")


def test_logic_problems():
    problems = logic_problems(200, 0)
    assert Counter(p.gold for p in problems) == {"True": 100, "False": 100}
    assert Counter(p.meta["hops"] for p in problems).keys() == {1, 2, 3, 4}
    for p in problems:
        assert p.kind == "bool" and p.id.startswith("logic-test-")
        assert _follow_chain(p) == p.gold, p.question
        assert p.question.count(" " + p.meta["statement"].split()[-1]) >= 3   # fact, distractor, statement
    assert [p.question for p in logic_problems(200, 0)] == [p.question for p in problems]
    assert [p.question for p in logic_problems(20, 0)] != [p.question for p in logic_problems(20, 1)]
    assert {p.meta["hops"] for p in logic_problems(30, 0, min_hops=3, max_hops=3)} == {3}
    rng = random.Random(0)
    for p in problems[:20]:
        assert final_answer(solution(p, "concise", rng)) == p.gold
        assert final_answer(solution(p, "verbose", rng)) == p.gold
        assert final_answer(solution(p, "flawed", rng)) != p.gold


def test_symbolic_variants():
    source = arithmetic_problems(100, 0, split="test")
    variants = symbolic_variants(source, 0)
    assert [v.question for v in variants] == [v.question for v in symbolic_variants(source, 0)]
    train_names = set(arithmetic._FEMALE + arithmetic._MALE)
    for p, v in zip(source, variants):
        assert v.kind == "math" and v.meta["source_id"] == p.id
        assert v.meta["spec"]["ops"] == p.meta["spec"]["ops"]
        assert v.meta["spec"]["numbers"] != p.meta["spec"]["numbers"]
        assert v.meta["spec"]["name"] not in train_names and v.meta["spec"]["name"] in v.question
        assert v.question != p.question and v.meta["distractor"] in v.question
        assert re.search(r"\d", v.meta["distractor"])
        assert v.gold == str(v.meta["steps"][-1][3]) and all(true_equation(s) for s in v.meta["steps"])
        assert v.question.endswith("?")
    with pytest.raises(ValueError, match="spec"):
        symbolic_variants(logic_problems(2, 0), 0)


def test_answer_types_are_well_formed(train):
    rng = random.Random(0)
    multi = [p for p in train if len(p.meta["steps"]) >= 2]
    for i, p in enumerate(multi[:150]):
        other = next(o for o in multi[i + 1:] + multi[:i] if o.gold != p.gold)
        types = answer_types(p, other, rng)
        assert tuple(types) == ANSWER_TYPES
        finals = {name: final_answer(text) for name, text in types.items()}
        graded = {name for name, text in types.items() if is_correct(text, p.gold)}
        assert graded == {"concise_correct", "redundant_correct", "answer_only"}
        assert finals["concise_correct"] == finals["redundant_correct"] == finals["answer_only"] == p.gold
        assert types["answer_only"] == f"The answer is {p.gold}."
        assert finals["partially_correct"] != p.gold and finals["incorrect"] != p.gold
        assert len(types["redundant_correct"]) > len(types["concise_correct"])
        steps = p.meta["steps"]
        partial, wrong = equations(types["partially_correct"]), equations(types["incorrect"])
        assert partial[:-1] == steps[:-1] and partial[-1] != steps[-1]      # right first steps, then an error
        assert len(wrong) == len(steps) and all(w[3] != s[3] for w, s in zip(wrong, steps))   # wrong throughout
        assert finals["irrelevant"] == other.gold
        assert all(str(s[2]) in types["irrelevant"] for s in other.meta["steps"])
    with pytest.raises(ValueError, match="different problem"):
        answer_types(multi[0], multi[0], rng)
    one_step = next(p for p in train if len(p.meta["steps"]) == 1)
    with pytest.raises(ValueError, match="one step"):
        answer_types(one_step, multi[0], rng)


def test_answer_types_for_logic():
    problems = logic_problems(40, 0)
    rng = random.Random(0)
    for p, other in zip(problems, problems[1:]):
        types = answer_types(p, other, rng)
        graded = {name for name, text in types.items() if is_correct(text, p.gold, "bool")}
        assert graded >= {"concise_correct", "redundant_correct", "answer_only"}
        assert not graded & {"partially_correct", "incorrect"}
        assert final_answer(types["concise_correct"]) == final_answer(types["redundant_correct"]) == p.gold
        assert final_answer(types["partially_correct"]) != p.gold and final_answer(types["incorrect"]) != p.gold
        assert types["partially_correct"].startswith(p.meta["chain"][0])


def test_synthetic_sets():
    assert set(SYNTHETIC_SETS) == {"arith-train", "arith-test", "symbolic-test", "logic-test", "claim-test"}
    for name, make in SYNTHETIC_SETS.items():
        problems = make(30, 1)
        assert len(problems) == 30
        assert [p.id for p in problems] == [f"{name}-{i}" for i in range(30)]
        assert [p.question for p in make(30, 1)] == [p.question for p in problems]


# ------------------------------------------------------------------ True/False claims (OOD family)
CLAIM = re.compile(r"Is (\d+) more than (\d+)\? (Yes|No)\.")


def test_claims_are_balanced_held_out_and_their_gold_follows_the_arithmetic():
    problems = claim_problems(200, 0)
    assert [p.id for p in problems] == [f"claim-test-{i}" for i in range(200)]
    assert 90 <= Counter(p.gold for p in problems)["True"] <= 100   # a result below 3 cannot make a true claim
    assert {p.kind for p in problems} == {"bool"}
    held_out = {p.question for p in arithmetic_problems(200, 0, split="test", max_steps=2)}
    for p in problems:
        result, k = p.meta["steps"][-1][3], p.meta["threshold"]
        assert p.gold == str(claim_holds(result, k)) == str(result > k)
        assert 1 <= abs(result - k) <= MAX_GAP and k >= 2
        assert len(p.meta["steps"]) <= 2
        assert p.question.endswith(f"Is the following statement true or false? {p.meta['statement']}")
        assert "How many" not in p.question and f"more than {k} " in p.meta["statement"]
        base = p.question.split(" Is the following statement")[0]
        assert any(q.startswith(base) for q in held_out)   # built on a test-split word problem
    train_claims = {p.question for p in claim_problems(2000, 0, split="train")}
    assert not train_claims & {p.question for p in problems}
    assert [p.question for p in claim_problems(200, 0)] == [p.question for p in problems]


def test_claim_solutions_compare_then_conclude_in_every_style():
    rng = random.Random(0)
    for p in claim_problems(60, 1):
        for style in STYLES:
            text = solution(p, style, rng)
            if style == "answer_only":
                assert text == f"The answer is {p.gold}." and answer_style(text) == "answer_only"
                continue
            (value, k, decision), = CLAIM.findall(text)
            # the verdict follows from the written comparison, which follows from the written chain
            assert equations(text)[-1][3] == int(value) and int(k) == p.meta["threshold"]
            assert (decision == "Yes") == (int(value) > int(k))
            assert final_answer(text) == str(decision == "Yes")
            if style in ("concise", "verbose"):
                assert is_correct(text, p.gold, "bool") and all(true_equation(e) for e in equations(text))
                assert answer_style(text) == style
            else:   # a slip or a wrong operation: the written chain is not the problem's
                assert equations(text) != [tuple(step) for step in p.meta["steps"]]


def test_the_corpus_mixes_claims_in_the_arithmetic_styles():
    corpus = training_corpus(1000, 0, logic_share=0.1, claim_share=0.2)
    sources = Counter(p.source for p, _ in corpus)
    assert sources == {"synthetic-arith": 700, "synthetic-claim-train": 200, "synthetic-logic-train": 100}
    claim_styles = Counter(p.meta["style"] for p, _ in corpus if p.source == "synthetic-claim-train")
    assert claim_styles["verbose"] > claim_styles["concise"] > 0 and claim_styles["answer_only"] > 0
    for p, text in corpus:
        if p.source == "synthetic-claim-train":
            assert is_correct(text, p.gold, "bool") or p.meta["style"] == "flawed"
    with pytest.raises(ValueError, match="sum of at most 1"):
        training_corpus(10, 0, logic_share=0.6, claim_share=0.6)
