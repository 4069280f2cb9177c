"""Greedy evaluation (docs/paper.md §4): accuracy and answer length in tokens, with per-item records.

Evaluation scores correctness alone; SAR is a training signal only. Prompts are the paper's
(``sar.prompt_text``: system prompt + question + instruction), decoding is greedy.
"""

from __future__ import annotations

import statistics
from typing import Sequence

import torch

from sar_lib.engine import sample
from sar_lib.generation import answer_texts
from sar_lib.grading import is_correct
from sar_lib.models import get_profile
from sar_lib.problem import Problem
from sar_lib.sar import prompt_text
from sar_lib.switch import SWITCH_KEYS, stop_probabilities

SUMMARY_KEYS = ("n", "accuracy", "mean_length", "median_length", "mean_length_correct", "truncation_rate")
SAMPLED_KEYS = ("sampled_accuracy", "sampled_mean_length")   # with samples > 0
# SAR's switch (sar_lib.switch, SWITCH_KEYS) is measured on the first SWITCH_PROBLEMS problems: two
# teacher-forced passes each, about 4 s for 100 on one CPU thread, a tenth of a greedy evaluation of 200.
SWITCH_PROBLEMS = 100
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
             samples: int = 0, seed: int = 0, progress: bool = True) -> dict:
    """Greedy answers to ``problems`` and their metrics (and, with ``samples`` > 0, sampled ones).

    Length L_i of an answer = its generated tokens **excluding** the final eos (a truncated answer,
    which has none, counts all ``max_new_tokens``). Over the n problems:

        accuracy            = (1/n) sum_i correct_i            (``grading.is_correct``, by problem kind)
        mean_length         = (1/n) sum_i L_i
        median_length       = median_i L_i
        mean_length_correct = mean of L_i over correct answers (None when none is correct)
        truncation_rate     = (1/n) sum_i truncated_i         (no eos within ``max_new_tokens``)

    Returns those keys, ``n`` and ``records``: one dict per problem with id, question, gold,
    response (decoded, special tokens removed), correct, length, truncated.

    ``samples`` = S > 0 also draws S answers per problem at temperature 1, top_p 1 (as GRPO samples;
    torch seeded with ``seed``) and adds ``sampled_accuracy`` and ``sampled_mean_length`` (means over
    the n * S answers, lengths as above), and per record ``sampled_responses``, ``sampled_lengths``
    and ``sampled_correct``.
    Greedy length can flip on a small change of the first tokens' probabilities; the sampled
    length moves smoothly, so the two together show what training did to the answers.

    On problems with a concise solution (synthetic arithmetic and claims) the report also holds SAR's
    switch, ``p_stop``, ``p_check`` and ``greedy_stop_share`` (``switch.stop_probabilities`` on the
    first :data:`SWITCH_PROBLEMS`): why the greedy length flips.
    """
    if not problems:
        raise ValueError("no problems to evaluate; check the dataset name or file and --limit")
    prompts = [prompt_text(tokenizer, p.question) for p in problems]
    rollouts = sample(model, tokenizer, prompts, max_new_tokens=max_new_tokens, do_sample=False,
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
    report = {
        "n": len(records),
        "accuracy": statistics.fmean(r["correct"] for r in records),
        "mean_length": statistics.fmean(lengths),
        "median_length": statistics.median(lengths),
        "mean_length_correct": statistics.fmean(correct_lengths) if correct_lengths else None,
        "truncation_rate": statistics.fmean(r["truncated"] for r in records),
        "records": records,
    }
    switch = stop_probabilities(model, tokenizer, problems[:SWITCH_PROBLEMS], batch_size=batch_size)
    if switch is not None:
        report.update({k: switch[k] for k in SWITCH_KEYS})
    if samples > 0:
        report.update(_sampled(model, tokenizer, problems, prompts, records, max_new_tokens=max_new_tokens,
                               batch_size=batch_size, samples=samples, seed=seed, progress=progress))
    return report


def _sampled(model, tokenizer, problems, prompts, records, *, max_new_tokens: int, batch_size: int, samples: int,
             seed: int, progress: bool) -> dict:
    """The sampled answers of :func:`evaluate`: their two means, and per-record lengths and correctness."""
    torch.manual_seed(seed)
    rollouts = sample(model, tokenizer, prompts, max_new_tokens=max_new_tokens, do_sample=True, temperature=1.0,
                      top_p=1.0, num_return_sequences=samples, batch_size=batch_size, progress=progress)
    texts = answer_texts(tokenizer, rollouts)
    for i, (problem, record) in enumerate(zip(problems, records)):
        rows = range(i * samples, (i + 1) * samples)
        record["sampled_lengths"] = [len(rollouts.answer_ids[k]) - (0 if rollouts.truncated[k] else 1) for k in rows]
        record["sampled_responses"] = [texts[k] for k in rows]
        record["sampled_correct"] = [bool(is_correct(texts[k], problem.gold, problem.kind)) for k in rows]
    return {"sampled_accuracy": statistics.fmean(ok for r in records for ok in r["sampled_correct"]),
            "sampled_mean_length": statistics.fmean(n for r in records for n in r["sampled_lengths"])}


def summary(report: dict) -> dict:
    """The metrics of an :func:`evaluate` report without its records."""
    return {k: report[k] for k in SUMMARY_KEYS + SAMPLED_KEYS + SWITCH_KEYS if k in report}


def format_evaluation(report: dict, title: str = "") -> str:
    """A two-column text table of the metrics (accuracy in %, lengths in tokens)."""
    def cell(key: str) -> str:
        value = report[key]
        if value is None:
            return "-"
        if key in ("accuracy", "truncation_rate", "sampled_accuracy", "greedy_stop_share"):
            return f"{100 * value:.1f}%"
        if key in SWITCH_KEYS:
            return f"{value:.3f}"
        return str(value) if key == "n" else f"{value:.1f}"

    rows = [(key, cell(key)) for key in SUMMARY_KEYS + SAMPLED_KEYS + SWITCH_KEYS if key in report]
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"{k:<{width}}  {v:>8}" for k, v in rows]
    return "\n".join(lines)
