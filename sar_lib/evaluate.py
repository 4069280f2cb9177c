"""Greedy evaluation (SAR.md §4): accuracy and answer length in tokens, with per-item records.

Evaluation scores correctness alone; SAR is a training signal only. Prompts are the paper's
(``sar.prompt_text``: system prompt + question + instruction), decoding is greedy.
"""

from __future__ import annotations

import statistics
from typing import Sequence

from sar_lib.generation import answer_texts, generate
from sar_lib.grading import is_correct
from sar_lib.models import get_profile
from sar_lib.problem import Problem
from sar_lib.sar import prompt_text

SUMMARY_KEYS = ("n", "accuracy", "mean_length", "median_length", "mean_length_correct", "truncation_rate")
# Sizes of an evaluation of any model but the tiny one (which takes the tiny-cpu profile's).
DEFAULT_MAX_NEW_TOKENS = 1024  # answer budget (the paper evaluates with 4096)
DEFAULT_BATCH_SIZE = 16        # prompts per greedy generation batch


def eval_settings(model: str, *, max_new_tokens: int | None = None, batch_size: int | None = None) -> tuple[int, int]:
    """``(max_new_tokens, batch_size)`` of a greedy evaluation of ``model``: the given values, else the
    tiny-cpu profile's for "tiny", else :data:`DEFAULT_MAX_NEW_TOKENS` / :data:`DEFAULT_BATCH_SIZE`.
    ValueError for a value below 1."""
    tiny = get_profile("tiny-cpu") if model == "tiny" else None
    if max_new_tokens is None:
        max_new_tokens = tiny.max_new_tokens if tiny else DEFAULT_MAX_NEW_TOKENS
    if batch_size is None:
        batch_size = tiny.eval_batch_size if tiny else DEFAULT_BATCH_SIZE
    for name, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    return max_new_tokens, batch_size


def evaluate(model, tokenizer, problems: Sequence[Problem], *, max_new_tokens: int, batch_size: int = 16,
             progress: bool = True) -> dict:
    """Greedy answers to ``problems`` and their metrics.

    Length L_i of an answer = its generated tokens **excluding** the final eos (a truncated answer,
    which has none, counts all ``max_new_tokens``). Over the n problems:

        accuracy            = (1/n) sum_i correct_i            (``grading.is_correct``, by problem kind)
        mean_length         = (1/n) sum_i L_i
        median_length       = median_i L_i
        mean_length_correct = mean of L_i over correct answers (None when none is correct)
        truncation_rate     = (1/n) sum_i truncated_i         (no eos within ``max_new_tokens``)

    Returns those keys, ``n`` and ``records``: one dict per problem with id, question, gold,
    response (decoded, special tokens removed), correct, length, truncated.
    """
    if not problems:
        raise ValueError("no problems to evaluate; check the dataset name or file and --limit")
    prompts = [prompt_text(tokenizer, p.question) for p in problems]
    rollouts = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, do_sample=False,
                        batch_size=batch_size, progress=progress)
    responses = answer_texts(tokenizer, rollouts)
    records = []
    for problem, response, ids, truncated in zip(problems, responses, rollouts.answer_ids, rollouts.truncated):
        records.append({
            "id": problem.id, "question": problem.question, "gold": problem.gold, "response": response,
            "correct": bool(is_correct(response, problem.gold, problem.kind)),
            "length": len(ids) - (0 if truncated else 1),  # the eos that ends a finished answer is not counted
            "truncated": bool(truncated),
        })
    lengths = [r["length"] for r in records]
    correct_lengths = [r["length"] for r in records if r["correct"]]
    return {
        "n": len(records),
        "accuracy": statistics.fmean(r["correct"] for r in records),
        "mean_length": statistics.fmean(lengths),
        "median_length": statistics.median(lengths),
        "mean_length_correct": statistics.fmean(correct_lengths) if correct_lengths else None,
        "truncation_rate": statistics.fmean(r["truncated"] for r in records),
        "records": records,
    }


def summary(report: dict) -> dict:
    """The metrics of an :func:`evaluate` report without its records."""
    return {k: report[k] for k in SUMMARY_KEYS}


def format_evaluation(report: dict, title: str = "") -> str:
    """A two-column text table of the metrics (accuracy in %, lengths in tokens)."""
    def cell(key: str) -> str:
        value = report[key]
        if value is None:
            return "-"
        if key in ("accuracy", "truncation_rate"):
            return f"{100 * value:.1f}%"
        return str(value) if key == "n" else f"{value:.1f}"

    rows = [(key, cell(key)) for key in SUMMARY_KEYS]
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"{k:<{width}}  {v:>8}" for k, v in rows]
    return "\n".join(lines)
