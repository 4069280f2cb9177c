"""Grader: gold answers of the shared benchmarks, tricky responses per kind, robustness."""

from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import needs_shared_data
from sar_lib import verify_worker
from sar_lib.grading import extract_answer, gold_math_answer, is_correct, math_equal, parse_number


def _records(name: str) -> list[dict]:
    path = needs_shared_data(name)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ----------------------------------------------------------------------------- shared benchmarks
def test_gsm8k_gold_answers_grade_themselves_and_not_a_perturbed_value():
    records = _records("gsm8k_test.jsonl")
    assert len(records) == 1319
    failures = []
    for record in records:
        solution = record["answer"]
        gold = gold_math_answer(solution)
        value = parse_number(gold)
        assert value is not None, gold
        checks = {
            "boxed": is_correct(f"The answer is \\boxed{{{gold}}}.", solution),
            "boxed strict": is_correct(f"The answer is \\boxed{{{gold}}}.", solution, strict=True),
            "solution": is_correct(solution, solution),                    # last number = #### N
            "solution strict": is_correct(solution, solution, strict=True),  # "####" is a marker
            "bare gold": is_correct(f"So the total is {gold}.", gold),
            "perturbed": not is_correct(f"The answer is \\boxed{{{value + 1}}}.", solution),
            "perturbed text": not is_correct(f"So the total is {value - 1}.", solution),
        }
        failures += [(gold, name) for name, ok in checks.items() if not ok]
    assert failures == []


def test_math500_gold_answers_grade_themselves_and_not_another_answer():
    records = _records("math500_test.jsonl")
    assert len(records) == 500
    failures = []
    for i, record in enumerate(records):
        gold = record["answer"]
        # The next record whose answer differs as text and as a number; equations are skipped
        # because "x=5" rightly equals "5".
        j = (i + 1) % len(records)
        while (records[j]["answer"].replace(" ", "") == gold.replace(" ", "") or "=" in records[j]["answer"]
               or (parse_number(gold) is not None and parse_number(gold) == parse_number(records[j]["answer"]))):
            j = (j + 1) % len(records)
        other = records[j]["answer"]
        checks = {
            "boxed": is_correct(f"The answer is $\\boxed{{{gold}}}$.", gold),
            "boxed strict": is_correct(f"The answer is $\\boxed{{{gold}}}$.", gold, strict=True),
            "solution": is_correct(record["solution"], gold),   # the last \boxed of the solution
            "other record": not is_correct(f"The answer is $\\boxed{{{other}}}$.", gold),
        }
        value = parse_number(gold)
        if value is not None:
            checks["plus one"] = not is_correct(f"\\boxed{{{value + 1}}}", gold)
        failures += [(gold, name) for name, ok in checks.items() if not ok]
    assert failures == []


# ----------------------------------------------------------------------------- tricky responses
MATH_CASES = [
    # response, gold, lenient, strict
    ("16 - 3 - 4 = 9 eggs; 9 * 2 = $18. The answer is \\boxed{18}.", "18", True, True),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}", True, True),
    ("First \\boxed{1}, finally \\boxed{\\frac{1}{\\{2\\}}+{3}}", "\\frac{1}{\\{2\\}}+{3}", True, True),
    ("We get 12 and then 15, so 20.", "20", True, False),
    ("We get 12 and then 15, so 20.", "15", False, False),
    ("The answer is 18. It took 3 steps.", "18", False, True),     # lenient = last number
    ("The answer is: **18** apples.", "18", True, True),
    ("Answer: 18", "18", True, True),
    ("The total is 1,234,567 dollars", "1234567", True, False),
    ("It costs $1,234.50 in total", "1234.5", True, False),
    ("It costs \\$32,\\!348.", "\\$32,\\!348", True, False),
    ("The final answer is 10,\\!080.", "10080", True, True),
    ("the answer is 25%", "25", True, True),
    ("The answer is 25\\%.", "25", True, True),
    ("The temperature drops to -5 degrees", "-5", True, False),
    ("The temperature drops to \u22125", "-5", True, False),
    ("10 - 15 = -5", "-5", True, False),
    ("I need 3-5 more", "-5", False, False),                       # a hyphen, not a sign
    ("so we have 10 - 5", "5", True, False),                       # a minus, not a sign
    ("so x = (-5)", "-5", True, False),
    ("The answer is 5.00", "5", True, True),
    ("The answer is 0.50", "\\frac{1}{2}", True, True),
    ("The answer is 2.5", "5/2", True, True),
    ("so the ratio is 3/4", "0.75", True, False),
    ("The answer is \\dfrac{3}{4}.", "\\frac34", True, True),
    ("The answer is $-\\frac{2}{3}$.", "-\\frac{2}{3}", True, True),
    ("The answer is \\boxed{2\\sqrt{2}}", "\\sqrt{8}", True, True),
    ("The answer is \\boxed{(3, \\frac{\\pi}{2})}", "\\left( 3, \\frac{\\pi}{2} \\right)", True, True),
    ("The answer is \\boxed{(3,4]}", "(3,4]", True, True),
    ("The answer is \\boxed{[3,4)}", "(3,4]", False, False),
    ("\\boxed{(-\\infty,2)\\cup(3,\\infty)}", "(-\\infty, 2) \\cup (3, \\infty)", True, True),
    ("\\boxed{-2, 1}", "1,-2", True, True),
    ("\\boxed{1}", "1,-2", False, False),
    ("\\boxed{\\text{(C)}}", "\\text{(C)}", True, True),
    ("\\boxed{C}", "\\text{(C)}", True, True),
    ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", True, True),
    ("\\boxed{5.4}", "5.4 \\text{ cents}", True, True),
    ("\\boxed{18 \\text{ apples}}", "18", True, True),
    ("\\boxed{x = 5}", "5", True, True),
    ("\\boxed{90^\\circ}", "90", True, True),
    ("#### 72", "Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72", True, True),
    ("0.30000000000000004", "0.3", True, False),
    ("1000001", "1000000", False, False),                          # integers compare exactly
    ("There is no number here.", "3", False, False),
]


@pytest.mark.parametrize("response, gold, lenient, strict", MATH_CASES)
def test_math_responses(response, gold, lenient, strict):
    assert is_correct(response, gold, "math") is lenient
    assert is_correct(response, gold, "math", strict=True) is strict


LABEL_CASES = [
    # response, gold, kind, lenient, strict
    ("The answer is (C).", "C", "choice", True, True),
    ("The answer is C", "(C)", "choice", True, True),
    ("B) False", "B", "choice", True, False),
    ("Option A looks wrong; B is right.", "B", "choice", True, False),
    ("Option A looks wrong; B is right.", "A", "choice", False, False),
    ("The answer is A. B and D are distractors.", "A", "choice", False, True),
    ("Answer: \\boxed{\\text{D}}", "D", "choice", True, True),
    ("a dog and a cat", "A", "choice", False, False),          # lower-case "a" is a word, not a letter
    ("option_B", "B", "choice", False, False),                 # not a stand-alone word
    ("B) False", "False", "bool", True, False),
    ("The statement is true. The answer is True.", "True", "bool", True, True),
    ("The answer is False, so it is not true", "False", "bool", False, True),
    ("TRUE", "true", "bool", True, False),
    ("Max is sour? false.", "False", "bool", True, False),
    ("truely untrue", "True", "bool", False, False),
    ("", "True", "bool", False, False),
]


@pytest.mark.parametrize("response, gold, kind, lenient, strict", LABEL_CASES)
def test_choice_and_bool_responses(response, gold, kind, lenient, strict):
    assert is_correct(response, gold, kind) is lenient
    assert is_correct(response, gold, kind, strict=True) is strict


def test_extract_answer_returns_clean_candidates():
    assert extract_answer("It costs $1,000.") == "1000"
    assert extract_answer("It is 5.00 m") == "5"
    assert extract_answer("ratio \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert extract_answer("so -3.50") == "-3.50"
    assert extract_answer("about 1,234.5 km") == "1234.5"
    assert extract_answer("no digits", "math") is None
    assert extract_answer("\\boxed{} so 7") == "7"                  # an empty box is no box
    assert extract_answer("The answer is 18. Then 3.", strict=True) == "18"
    assert extract_answer("We get 18.", strict=True) is None
    assert extract_answer("The answer is (B)", "choice") == "B"
    assert extract_answer("it is TRUE", "bool") == "True"
    assert extract_answer("nothing", "bool") is None


def test_gold_math_answer_and_parse_number():
    assert gold_math_answer("steps\n#### 1,234") == "1,234"
    assert gold_math_answer(27.0) == "27"
    assert parse_number("1,234") == 1234
    assert parse_number("10,\\!080") == 10080
    assert parse_number("-\\frac{3}{4}") == parse_number("-0.75")
    assert parse_number("\\$18.00") == 18
    assert parse_number("1,-2") is None
    assert parse_number("1/0") is None
    assert parse_number("9" * 5000) is None   # beyond Python's int-string limit: None, no error
    assert math_equal("\\sqrt{8}", "2\\sqrt{2}")


def test_bad_kind_and_bad_gold_raise_value_error():
    with pytest.raises(ValueError, match="unknown answer kind"):
        is_correct("A", "A", "letter")
    with pytest.raises(ValueError, match="letter A-D"):
        is_correct("A", "choice_1", "choice")
    with pytest.raises(ValueError, match="True' or 'False"):
        is_correct("True", "A", "bool")
    with pytest.raises(ValueError, match="gold answer is None"):
        is_correct("1", None)


# ----------------------------------------------------------------------------- never hang, never raise
ODD_RESPONSES = [
    None, "", " ", 42, b"bytes", "\\boxed{", "\\boxed{{{{", "}}}}\\boxed}", "\\boxed{\\boxed{\\boxed{}",
    "$$$$", "\\frac{", "\\frac{1}{0}", "1/0", "-" * 1000, "9" * 10_000, "1," * 10_000, "{" * 100_000,
    "\\boxed{" * 50_000, "The answer is " * 10_000, "\x00\ud800", "∞ ≠ √2", "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{10^{100000}}", "\\boxed{99999!}", "(" * 10_000 + "1",
]


@pytest.mark.parametrize("kind, gold", [("math", "5"), ("math", "\\frac{\\sqrt{3}}{2}"), ("choice", "A"),
                                        ("bool", "True")])
def test_odd_responses_never_raise_and_finish_fast(kind, gold):
    start = time.perf_counter()
    for response in ODD_RESPONSES:
        for strict in (False, True):
            assert isinstance(is_correct(response, gold, kind, strict=strict), bool)
            extract_answer(response, kind, strict=strict)
    assert time.perf_counter() - start < 20


def test_huge_response_is_graded_on_its_tail_quickly():
    response = "filler 123 " * 200_000 + "The answer is \\boxed{42}."
    start = time.perf_counter()
    assert is_correct(response, "42")
    assert is_correct(response, "42", strict=True)
    assert time.perf_counter() - start < 2


def test_grading_works_outside_the_main_thread():
    results = []

    def work():
        results.append(is_correct("The answer is \\boxed{2\\sqrt{2}}", "\\sqrt{8}"))
        results.append(is_correct("The answer is \\boxed{(3,4]}", "[3,4)"))
        results.append(is_correct("The answer is (B)", "B", "choice"))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert results == [True, False, True]


def test_a_runaway_math_verify_call_is_killed_and_the_worker_recovers():
    # Bypass the cheap pre-screen to reach sympy with an exponent tower it would evaluate forever.
    assert is_correct("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")   # the worker is running
    start = time.perf_counter()
    assert verify_worker._WORKER.equal("5", "9^{9^{9^{9}}}", 1.0) is False
    assert time.perf_counter() - start < 10
    assert verify_worker._WORKER._proc is None                  # it was killed, not answered
    assert is_correct("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")   # a fresh worker answers again


def test_a_dead_worker_is_replaced():
    assert is_correct("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")
    verify_worker._WORKER._proc.kill()
    verify_worker._WORKER._proc.wait()
    assert is_correct("\\boxed{\\sqrt{12}}", "2\\sqrt{3}")
    assert verify_worker._WORKER._proc.poll() is None and not verify_worker._WORKER._broken
