"""The premises SAR's length effect rests on, measured on a model and held-out questions.

SAR can only shorten answers where (docs/paper.md §1, §5) the empty-question context is a real "no
question" likelihood, the base model pads correct answers with redundancy that correctness does
not punish, and there is length to cut. The testbed's model card reports each premise:

* **P1 marginal**: ctx(0) gives a real answer marginal. With v_t = log pi(a_t | ctx(q), a_<t) -
  log pi(a_t | ctx(0), a_<t) (``sar.information_gain``), the question-independent opening of an
  answer gains little: ``first_token_gain = mean_i (1/k) sum_{t<k} |v_{i,t}|`` over the greedy
  answers (k = 3; target <= 1 nat); and a fluent answer to *another* question (the greedy answer
  a_j of question j = i + 1) scores low: mean SAR(a_j | q_i) <= 0.3 and SAR(a_i | q_i) >
  SAR(a_j | q_i) for >= 95% of the questions.
* **P2 harmless verbosity**: among S answers sampled at temperature 1 per question, those longer
  than the question's median length are at least as accurate as those shorter:
  ``d_q = acc(L > median_q) - acc(L < median_q)``, reported as mean_q d_q and its standard error
  (target mean >= 0); greedily the correct answers are not the short ones:
  ``mean length of correct greedy answers / mean length of all >= 0.95``; and, because P4 puts the
  inaccurate answer-only answers on the short side of every median, the two reasoning styles are
  compared directly: ``acc(verbose samples) - acc(concise samples) >= -2 standard errors`` (not
  significantly worse). This last figure decides whether GRPO alone already prunes verbosity.
* **P3 room to cut**: ``mean_q L_greedy(q) / mean_q min{L : sample of q correct} >= 1.5`` over the
  questions with at least one correct sample.
* **P4 too short exists**: answer-only answers ("The answer is N." with no steps) are in the
  sampled mix and less accurate on 2-3 step problems than the greedy answers: measured by forcing
  the prefix "The answer is" and decoding greedily.
* **P5 room for RL**: greedy accuracy in [0.4, 0.8] and sampled accuracy below greedy.

Lengths are answer tokens without the final eos, as in ``evaluate``.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from sar_lib.problem import Problem
from sar_lib.evaluate import evaluate
from sar_lib.generation import answer_texts, generate
from sar_lib.grading import is_correct
from sar_lib.sar import prompt_text, score_answers
from sar_lib.synthetic import answer_style, solution

ANSWER_ONLY_PREFIX = "The answer is"
TARGETS = {"first_token_gain_max": 1.0, "other_answer_sar_max": 0.3, "own_beats_other_min": 0.95,
           "correct_length_ratio_min": 0.95, "room_to_cut_min": 1.5, "greedy_accuracy_range": (0.4, 0.8)}


def first_token_gain(gains: Sequence[Sequence[float]], k: int = 3) -> float:
    """``mean_i (1/k_i) sum_{t < k_i} |v_{i,t}|`` with ``k_i = min(k, T_i)``; ``gains``: v_t per answer."""
    rows = [[abs(v) for v in row[:k]] for row in gains if len(row)]
    if not rows:
        raise ValueError("no answer tokens to measure")
    return statistics.fmean(statistics.fmean(row) for row in rows)


def other_answer_sar(own: Sequence[float], other: Sequence[float]) -> dict:
    """From SAR(a_i | q_i) (``own``) and SAR(a_j | q_i) (``other``), one pair per question:
    ``{"own_mean", "other_mean", "own_beats_other"}`` (the last: share of questions with own > other)."""
    if len(own) != len(other) or not own:
        raise ValueError(f"need as many own as other SAR values (and at least one), got {len(own)}, {len(other)}")
    return {"own_mean": statistics.fmean(own), "other_mean": statistics.fmean(other),
            "own_beats_other": statistics.fmean(o > x for o, x in zip(own, other))}


def long_vs_short_accuracy(samples: Sequence[Sequence[tuple[int, bool]]]) -> dict:
    """P2 from ``samples``: per question a list of (length, correct) of its sampled answers.

    d_q = acc(L > median_q) - acc(L < median_q) over the questions with answers on both sides
    of their median. Returns ``{"mean", "stderr", "n_questions", "long_accuracy", "short_accuracy"}``
    (the last two pooled over those questions' answers).
    """
    diffs, long_hits, short_hits = [], [], []
    for answers in samples:
        if not answers:
            continue
        median = statistics.median(length for length, _ in answers)
        longer = [ok for length, ok in answers if length > median]
        shorter = [ok for length, ok in answers if length < median]
        if longer and shorter:
            diffs.append(statistics.fmean(longer) - statistics.fmean(shorter))
            long_hits += longer
            short_hits += shorter
    if not diffs:
        raise ValueError("no question has sampled answers of different lengths")
    stderr = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    return {"mean": statistics.fmean(diffs), "stderr": stderr, "n_questions": len(diffs),
            "long_accuracy": statistics.fmean(long_hits), "short_accuracy": statistics.fmean(short_hits)}


def style_gap(styles: Sequence[str], correct: Sequence[bool], first: str = "verbose", second: str = "concise") -> dict:
    """``acc(first) - acc(second)`` over answers labelled with ``styles``, and its standard error
    ``sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2)``; None values when a style has no answer."""
    hits = {s: [ok for ok, t in zip(correct, styles) if t == s] for s in (first, second)}
    if not all(hits.values()):
        return {"difference": None, "stderr": None, f"n_{first}": len(hits[first]), f"n_{second}": len(hits[second])}
    p1, p2 = (statistics.fmean(hits[s]) for s in (first, second))
    stderr = math.sqrt(p1 * (1 - p1) / len(hits[first]) + p2 * (1 - p2) / len(hits[second]))
    return {"difference": p1 - p2, "stderr": stderr, f"n_{first}": len(hits[first]), f"n_{second}": len(hits[second])}


def room_to_cut(greedy_lengths: Sequence[int], samples: Sequence[Sequence[tuple[int, bool]]]) -> dict:
    """P3: ``mean_q L_greedy(q) / mean_q shortest correct sample of q`` over the questions with a
    correct sample. Returns ``{"ratio", "greedy_mean", "shortest_correct_mean", "n_questions"}``."""
    if len(greedy_lengths) != len(samples):
        raise ValueError(f"need one greedy length per question's samples, got {len(greedy_lengths)}, {len(samples)}")
    pairs = [(g, min(length for length, ok in answers if ok))
             for g, answers in zip(greedy_lengths, samples) if any(ok for _, ok in answers)]
    if not pairs:
        raise ValueError("no question has a correct sampled answer")
    greedy, shortest = statistics.fmean(g for g, _ in pairs), statistics.fmean(s for _, s in pairs)
    return {"ratio": greedy / shortest, "greedy_mean": greedy, "shortest_correct_mean": shortest,
            "n_questions": len(pairs)}


def answer_only_accuracy(model, tokenizer, problems: Sequence[Problem], *, batch_size: int = 64) -> list[bool]:
    """Correctness of each problem's answer when the model must answer at once: the answer is
    forced to start with ``ANSWER_ONLY_PREFIX`` and continued greedily (a few tokens)."""
    prompts = [prompt_text(tokenizer, p.question) + ANSWER_ONLY_PREFIX for p in problems]
    rollouts = generate(model, tokenizer, prompts, max_new_tokens=8, do_sample=False, batch_size=batch_size)
    return [bool(is_correct(ANSWER_ONLY_PREFIX + text, p.gold, p.kind))
            for text, p in zip(answer_texts(tokenizer, rollouts), problems)]


def measure_premises(model, tokenizer, problems: Sequence[Problem], *, samples_per_item: int = 8,
                     max_new_tokens: int = 192, batch_size: int = 64, seed: int = 0) -> dict:
    """P1-P5 (module docstring) on held-out synthetic arithmetic ``problems`` (meta["steps"] needed
    for P4's split by number of steps). Returns a JSON-able dict: one entry per premise with its
    figures and ``holds``, plus ``style_shares`` of the sampled answers (``synthetic.answer_style``),
    their accuracy per style, the styles of the greedy answers, SAR per written style
    (:func:`sar_by_style`) and two ``examples`` (a question, its greedy and sampled answers)."""
    if len(problems) < 2:
        raise ValueError("need at least two problems (P1 pairs each question with another one's answer)")
    greedy = evaluate(model, tokenizer, problems, max_new_tokens=max_new_tokens, batch_size=batch_size,
                      samples=samples_per_item, seed=seed, progress=False)
    records = greedy["records"]
    answers = [r["response"] for r in records]
    questions = [p.question for p in problems]
    own = score_answers(model, tokenizer, questions, answers, per_token=True, batch_size=batch_size)
    shifted = answers[1:] + answers[:1]   # the greedy answer to the next question
    other = score_answers(model, tokenizer, questions, shifted, batch_size=batch_size)
    gain = first_token_gain([row["information_gain"] for row in own])
    p1 = {"first_token_gain": gain, **other_answer_sar([r["sar"] for r in own], [r["sar"] for r in other])}
    p1["holds"] = (gain <= TARGETS["first_token_gain_max"] and p1["other_mean"] <= TARGETS["other_answer_sar_max"]
                   and p1["own_beats_other"] >= TARGETS["own_beats_other_min"])

    samples = [list(zip(r["sampled_lengths"], r["sampled_correct"])) for r in records]
    texts = [t for r in records for t in r["sampled_responses"]]
    lengths = [r["length"] for r in records]
    correct_lengths = [r["length"] for r in records if r["correct"]]
    ratio = statistics.fmean(correct_lengths) / statistics.fmean(lengths) if correct_lengths else None
    spread = _unless_undefined(long_vs_short_accuracy, samples)
    styles = [answer_style(t) for t in texts]
    hits = [ok for r in records for ok in r["sampled_correct"]]
    gap = style_gap(styles, hits)
    p2 = {"long_minus_short_accuracy": spread, "correct_length_ratio": ratio, "verbose_minus_concise": gap}
    p2["holds"] = (spread is not None and spread["mean"] >= 0 and ratio is not None
                   and ratio >= TARGETS["correct_length_ratio_min"]
                   and gap["difference"] is not None and gap["difference"] >= -2 * gap["stderr"])
    p3 = _unless_undefined(room_to_cut, lengths, samples) or {"ratio": None}
    p3["holds"] = p3["ratio"] is not None and p3["ratio"] >= TARGETS["room_to_cut_min"]

    forced = answer_only_accuracy(model, tokenizer, problems, batch_size=batch_size)
    shares = _shares(styles)
    accuracy_by_style = {s: statistics.fmean(ok for ok, t in zip(hits, styles) if t == s) for s in shares}
    multi = [k for k, p in enumerate(problems) if len(p.meta["steps"]) >= 2]
    by_steps = {}
    for n_steps in sorted({len(p.meta["steps"]) for p in problems}):
        idx = [k for k, p in enumerate(problems) if len(p.meta["steps"]) == n_steps]
        by_steps[str(n_steps)] = {"n": len(idx), "answer_only": statistics.fmean(forced[k] for k in idx),
                                  "greedy": statistics.fmean(records[k]["correct"] for k in idx)}
    p4 = {"answer_only_sample_share": shares.get("answer_only", 0.0), "by_steps": by_steps,
          "answer_only_multi_step": statistics.fmean(forced[k] for k in multi) if multi else None,
          "greedy_multi_step": statistics.fmean(records[k]["correct"] for k in multi) if multi else None}
    p4["holds"] = bool(multi) and p4["answer_only_sample_share"] > 0 \
        and p4["answer_only_multi_step"] < p4["greedy_multi_step"]
    low, high = TARGETS["greedy_accuracy_range"]
    p5 = {"greedy_accuracy": greedy["accuracy"], "sampled_accuracy": greedy["sampled_accuracy"]}
    p5["holds"] = low <= greedy["accuracy"] <= high and greedy["sampled_accuracy"] < greedy["accuracy"]
    return {"n_problems": len(problems), "samples_per_item": samples_per_item, "targets": TARGETS,
            "greedy": {k: greedy[k] for k in ("accuracy", "mean_length", "mean_length_correct")},
            "style_shares": shares, "sampled_accuracy_by_style": accuracy_by_style, "greedy_style_shares": _shares([answer_style(a) for a in answers]),
            "sar_by_style": sar_by_style(model, tokenizer, problems, seed=seed,
                                                                           batch_size=batch_size),
            "P1_marginal": p1, "P2_harmless_verbosity": p2, "P3_room_to_cut": p3,
            "P4_too_short_exists": p4, "P5_room_for_rl": p5,
            "examples": [{"question": r["question"], "gold": r["gold"], "greedy": r["response"],
                          "sampled": r["sampled_responses"]} for r in records[:2]]}


def _shares(labels: Sequence[str]) -> dict[str, float]:
    return {label: labels.count(label) / len(labels) for label in sorted(set(labels))}


def _unless_undefined(measure, *args):
    """``measure(*args)``, or None where the figure is undefined (no correct sample, one length only)."""
    try:
        return measure(*args)
    except ValueError:
        return None


def sar_by_style(model, tokenizer, problems: Sequence[Problem], *, seed: int = 0, batch_size: int = 64) -> dict:
    """SAR of each problem's correct solution written in each reasoning style of the corpus
    (``synthetic.solution``): ``{style: mean SAR}`` plus ``concise_beats_verbose`` and
    ``concise_beats_answer_only`` (shares of problems). SAR's push towards concise answers in
    training is alpha times these gaps."""
    import random

    rng = random.Random(f"sar-by-style:{seed}")
    styles = ("concise", "verbose", "answer_only")
    texts = {s: [solution(p, s, rng) for p in problems] for s in styles}
    questions = [p.question for p in problems]
    sar = {s: [r["sar"] for r in score_answers(model, tokenizer, questions, texts[s], batch_size=batch_size)]
           for s in styles}
    out = {s: statistics.fmean(v) for s, v in sar.items()}
    out["concise_beats_verbose"] = statistics.fmean(c > v for c, v in zip(sar["concise"], sar["verbose"]))
    out["concise_beats_answer_only"] = statistics.fmean(c > a for c, a in zip(sar["concise"], sar["answer_only"]))
    return out
