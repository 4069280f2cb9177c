"""Does a reward rank answers the way their quality does? (docs/paper.md §5, qualitative claim 1)

For each problem we build the six answer types of ``synthetic.answer_types`` (plus two probe
variants of the concise answer, see :func:`answer_sets`), score every answer under one model with
SAR and with the baselines, and ask, for a pair of types (X, Y) and a criterion f:

    pairwise accuracy(X > Y) = (1/N) sum_i ( [f(X_i) > f(Y_i)] + 0.5 [f(X_i) = f(Y_i)] )

over the N problems: the share of problems where the better type scores higher (ties count
half, so 0.5 is chance level and a constant criterion). Criteria (all "higher is better"):

* ``SAR``: R_SA = max(1 - ppl(a|q) / ppl(a), -1) (``sar.sar_from_nll``);
* ``-ppl(a|q)``: confidence in the answer given the question (the R_EM family);
* ``-length``: answer length in tokens, eos included, negated;
* ``self-certainty``: mean_t KL(U || pi(.|ctx(q), a_<t)) (``rewards.self_certainty``).
"""

from __future__ import annotations

import random
import re
from typing import Mapping, Sequence

import torch
from torch import Tensor

from sar_lib import sar
from sar_lib.problem import Problem
from sar_lib.perplexity import score_answer_ids
from sar_lib.rewards import self_certainty
from sar_lib.lab.stats import mean_and_interval
from sar_lib.synthetic import FILLERS, OPENERS, ANSWER_TYPES, answer_types

PROBE_TYPES = ("concise_restated", "concise_filler")
PAIRS: tuple[tuple[str, str], ...] = (
    ("concise_correct", "redundant_correct"),
    ("partially_correct", "incorrect"),
    ("concise_correct", "incorrect"),
    ("concise_correct", "answer_only"),       # reasoning (concise) > answer only
    ("concise_correct", "irrelevant"),        # on-topic > a correct solution of another problem
)
PROBE_PAIRS: tuple[tuple[str, str], ...] = (
    ("concise_restated", "concise_correct"),  # does restating the question raise the score?
    ("concise_filler", "concise_correct"),    # does generic filler raise it?
)
CRITERIA = ("SAR", "-ppl(a|q)", "-length", "self-certainty")
SHORT_NAMES = {"concise_correct": "concise", "redundant_correct": "redundant", "answer_only": "answer-only",
               "partially_correct": "partial", "incorrect": "incorrect", "irrelevant": "irrelevant",
               "concise_restated": "concise+restatement", "concise_filler": "concise+filler"}
METRICS = ("sar", "nll_qa", "nll_a", "ppl_qa", "ppl_a", "n_tokens", "self_certainty")


def pair_label(pair: tuple[str, str]) -> str:
    """``("concise_correct", "redundant_correct")`` -> ``"concise > redundant"`` (:data:`SHORT_NAMES`)."""
    return " > ".join(SHORT_NAMES.get(t, t) for t in pair)


# ---------------------------------------------------------------- answers
def probe_answers(problem: Problem, concise: str, rng: random.Random) -> dict[str, str]:
    """Two padded copies of the concise answer, same content, one extra prefix each:

    * ``concise_restated``: ``"We are told: " + <the question without its final ask>`` first (no
      arithmetic answer of the pretraining corpus restates its problem);
    * ``concise_filler``: generic sentences (``synthetic.OPENERS`` and ``synthetic.FILLERS``: the
      corpus's question-independent re-check sentences and a few openers it does not use) first, as
      many words as the restatement, none of them about this problem.

    Both prefixes sit in front of the solution, where the corpus never writes anything, so the probe
    also measures how a model scores text unlike its training data (notebook 02 prints the padded
    answers' perplexities). If SAR only rewarded "more tokens that fit the question", the restated
    copy would win; the filler copy controls for length alone.
    """
    sentences = re.split(r"(?<=[.?!]) ", problem.question.strip())
    body = " ".join(sentences[:-1]) if len(sentences) > 1 else sentences[0]
    restated = f"We are told: {body}"
    pool = list(OPENERS + FILLERS)
    rng.shuffle(pool)
    filler, words = [], 0
    target = len(restated.split())
    for sentence in pool * (1 + target // 4):   # the pool repeats for a very long question
        if words >= target:
            break
        filler.append(sentence)
        words += len(sentence.split())
    return {"concise_restated": f"{restated} {concise}", "concise_filler": f"{' '.join(filler)} {concise}"}


def answer_sets(problems: Sequence[Problem], seed: int, *, probe: bool = True) -> list[dict[str, str]]:
    """One dict per problem: the six ``ANSWER_TYPES`` (the irrelevant answer solves the next
    problem of the list) and, with ``probe``, the ``PROBE_TYPES`` of :func:`probe_answers`.
    Deterministic by ``seed``."""
    if len(problems) < 2:
        raise ValueError(f"need at least 2 problems (the irrelevant answer solves another one), got {len(problems)}")
    rng = random.Random(f"ranking:{seed}")
    sets = []
    for i, problem in enumerate(problems):
        answers = answer_types(problem, problems[(i + 1) % len(problems)], rng)
        if probe:
            answers.update(probe_answers(problem, answers["concise_correct"], rng))
        sets.append(answers)
    return sets


# ---------------------------------------------------------------- scores
def score_rewards(model, tokenizer, questions: Sequence[str], answers: Sequence[str], *, batch_size: int = 16,
                  progress: bool = False) -> dict[str, Tensor]:
    """Every per-answer score the ranking needs, ``[N]`` CPU tensors keyed by :data:`METRICS`.

    Two passes: ctx(q) + a with the per-token certainty (gives nll_qa and self-certainty), then
    ctx(0) + a (``sar.sar_from_token_ids`` with the nll_qa already known). Contexts and answer
    tokens exactly as ``sar.score_answers``.
    """
    if len(questions) != len(answers):
        raise ValueError(f"got {len(questions)} questions but {len(answers)} answers; pass one question per answer")
    prompts = {q: sar.encode_text(tokenizer, sar.prompt_text(tokenizer, q)) for q in dict.fromkeys(questions)}
    ctx_0 = sar.encode_text(tokenizer, sar.empty_prompt_text(tokenizer))
    ids = [sar.answer_ids(tokenizer, a) for a in answers]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores_q = score_answer_ids(model, [prompts[q] for q in questions], ids, pad_token_id=pad, batch_size=batch_size,
                                with_certainty=True, progress=progress, desc="ppl(a|q)")
    res = sar.sar_from_token_ids(model, ctx_0, ids, pad_token_id=pad, nll_qa=scores_q.nll, batch_size=batch_size,
                                 progress=progress)
    out = {key: res[key] for key in ("sar", "nll_qa", "nll_a", "ppl_qa", "ppl_a", "n_tokens")}
    out["self_certainty"] = self_certainty(scores_q.certainty, scores_q.mask)
    return out


def score_answer_sets(model, tokenizer, problems: Sequence[Problem], sets: Sequence[Mapping[str, str]], *,
                      batch_size: int = 16, progress: bool = False) -> dict[str, dict[str, Tensor]]:
    """:func:`score_rewards` of every answer of ``sets`` (from :func:`answer_sets`), regrouped:
    ``result[type][metric]`` is ``[N]``, entry i belonging to ``problems[i]``."""
    if len(problems) != len(sets):
        raise ValueError(f"got {len(problems)} problems but {len(sets)} answer sets; pass one set per problem")
    types = list(sets[0])
    if any(list(s) != types for s in sets):
        raise ValueError("every answer set must hold the same answer types in the same order")
    questions = [p.question for p in problems for _ in types]
    answers = [s[t] for s in sets for t in types]
    flat = score_rewards(model, tokenizer, questions, answers, batch_size=batch_size, progress=progress)
    n, k = len(problems), len(types)
    return {t: {metric: values.reshape(n, k)[:, j] for metric, values in flat.items()} for j, t in enumerate(types)}


def select(scores: Mapping[str, Mapping[str, Tensor]], keep: Sequence[bool] | Tensor) -> dict[str, dict[str, Tensor]]:
    """The scores of the problems where ``keep`` (``[N]`` bool) is True, e.g. the 1-step problems."""
    keep = torch.as_tensor(keep, dtype=torch.bool)
    n = len(next(iter(next(iter(scores.values())).values())))
    if keep.shape != (n,):
        raise ValueError(f"keep has shape {tuple(keep.shape)} but the scores cover {n} problems")
    return {t: {metric: values[keep] for metric, values in metrics.items()} for t, metrics in scores.items()}


def criteria(metrics: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The :data:`CRITERIA` of one answer type, each ``[N]`` and "higher is better"."""
    return {"SAR": metrics["sar"], "-ppl(a|q)": -metrics["ppl_qa"], "-length": -metrics["n_tokens"].float(),
            "self-certainty": metrics["self_certainty"]}


def gain_split(padded: Mapping, alone: Mapping) -> dict[str, float]:
    """Where the information gain of a padded answer sits, for ``sar.score_answers(per_token=True)``
    rows of ``prefix + " " + answer`` (``padded``) and of ``answer`` (``alone``).

    Returns sums of v_t (nats) and token counts: ``prefix`` (the padding's tokens), ``suffix`` (the
    answer's tokens inside the padded answer) and ``alone`` (the same tokens scored without the
    padding), plus ``mean_padded`` / ``mean_alone`` = mean_t v_t, the quantity SAR is monotone in.
    The answer's first token is left out of ``suffix`` and ``alone`` (after a space it is a
    different token); ValueError when the remaining tokens differ.
    """
    k = alone["n_tokens"] - 1
    if k < 1 or padded["n_tokens"] <= k or padded["tokens"][-k:] != alone["tokens"][1:]:
        raise ValueError("the padded answer does not end with the tokens of the answer alone "
                         "(pass rows of prefix + ' ' + answer and of answer, scored with per_token=True)")
    v_padded, v_alone = padded["information_gain"], alone["information_gain"]
    return {"prefix": float(sum(v_padded[:-k])), "prefix_tokens": padded["n_tokens"] - k,
            "suffix": float(sum(v_padded[-k:])), "alone": float(sum(v_alone[1:])), "answer_tokens": k,
            "mean_padded": float(sum(v_padded)) / padded["n_tokens"], "mean_alone": float(sum(v_alone)) / alone["n_tokens"]}


# ---------------------------------------------------------------- statistics
def pairwise_accuracy(first: Sequence[float] | Tensor, second: Sequence[float] | Tensor) -> float:
    """Share of paired items where ``first`` scores higher: mean([f > s] + 0.5 [f = s]); 0.5 = chance."""
    a, b = torch.as_tensor(first, dtype=torch.float64), torch.as_tensor(second, dtype=torch.float64)
    if a.ndim != 1 or a.shape != b.shape or a.numel() == 0:
        raise ValueError(f"need two non-empty 1-D series of the same length, got shapes {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    return float(((a > b).double() + 0.5 * (a == b).double()).mean())


def ranking_table(scores: Mapping[str, Mapping[str, Tensor]], pairs: Sequence[tuple[str, str]] = PAIRS,
                  names: Sequence[str] = CRITERIA) -> dict[str, dict[str, float]]:
    """``table[criterion][pair_label(pair)]`` = pairwise accuracy of ``pair`` under ``criterion``,
    for ``scores`` from :func:`score_answer_sets`."""
    missing = sorted({t for pair in pairs for t in pair} - set(scores))
    if missing:
        raise ValueError(f"no scores for answer type(s) {missing}; scored types: {sorted(scores)}")
    by_type = {t: criteria(m) for t, m in scores.items()}
    unknown = [c for c in names if c not in CRITERIA]
    if unknown:
        raise ValueError(f"unknown criteria {unknown}; choose from {CRITERIA}")
    return {c: {pair_label(p): pairwise_accuracy(by_type[p[0]][c], by_type[p[1]][c]) for p in pairs}
            for c in names}


def type_summary(scores: Mapping[str, Mapping[str, Tensor]], metric: str = "sar",
                 types: Sequence[str] = ANSWER_TYPES) -> dict[str, tuple[float, float]]:
    """``{type: (mean, 95% half-width)}`` of ``metric`` over the problems, for each of ``types``
    (``sar_lib.lab.stats.mean_and_interval``)."""
    return {t: mean_and_interval(scores[t][metric]) for t in types}
