"""Self-Aligned Reward (SAR), exactly as docs/paper.md §1 and the official code (``ppl_qa``) define it.

For a query q and an answer a = (a_1 .. a_T) (its eos included):

    ppl(a|q) = exp( -(1/T) sum_t log pi(a_t | ctx(q), a_<t) )
    ppl(a)   = exp( -(1/T) sum_t log pi(a_t | ctx(0), a_<t) )
    R_SA     = max( (ppl(a) - ppl(a|q)) / ppl(a), -1 ) = max( 1 - exp(-mean_t v_t), -1 )
    v_t      = log pi(a_t | ctx(q), a_<t) - log pi(a_t | ctx(0), a_<t)

ctx(q) is the chat prompt (system prompt S, user turn ``question + " " + instruction``, generation
prompt); ctx(0) is the same prompt with an **empty** user turn. Templates without a system role put
S into the user turn (``S + "\\n" + user``); tokenizers without a chat template use plain text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from sar_lib.perplexity import score_answer_ids, score_answers_after_prompts

SYSTEM_PROMPT = ("You are a reasoning expert assistant. Given a question, you will use your reasoning skills "
                 "to solve the problem.")
INSTRUCTION = "Please explain your reasoning process before providing an answer."

VARIANTS = ("ppl", "log", "no_denominator", "em")


# ---------------------------------------------------------------- contexts and tokenisation
def _has_system_role(tokenizer, system_prompt: str) -> bool:
    """Whether the chat template renders a system message.

    Templates without a system role either raise on one (the official code's test) or silently
    drop it; both count as "no system role" here.
    """
    probe = [{"role": "system", "content": system_prompt}, {"role": "user", "content": "?"}]
    try:
        text = tokenizer.apply_chat_template(probe, add_generation_prompt=True, tokenize=False)
    except Exception:  # templates refuse a system role via raise_exception (any error type)
        return False
    return system_prompt in text


def _context_text(tokenizer, user: str, system_prompt: str) -> str:
    """The prompt of docs/paper.md §1 around the user-turn text ``user`` ("" for ctx(0))."""
    if not getattr(tokenizer, "chat_template", None):
        return f"System: {system_prompt}\nUser: {user}\nAssistant: "
    if _has_system_role(tokenizer, system_prompt):
        messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]
    else:
        messages = [{"role": "user", "content": f"{system_prompt}\n{user}"}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def prompt_text(tokenizer, question: str, *, system_prompt: str = SYSTEM_PROMPT,
                instruction: str = INSTRUCTION, add_instruction: bool = True) -> str:
    """ctx(q) as text: the paper's prompt for ``question`` (also the generation prompt).

    User turn = ``question + " " + instruction`` (just ``question`` when ``add_instruction`` is False).
    With a system role: [system S, user turn] + generation prompt. Without one: a single user turn
    ``S + "\\n" + user turn``. Without a chat template: ``"System: {S}\\nUser: {q}\\nAssistant: "``.
    """
    user = f"{question} {instruction}" if add_instruction else question
    return _context_text(tokenizer, user, system_prompt)


def empty_prompt_text(tokenizer, *, system_prompt: str = SYSTEM_PROMPT) -> str:
    """ctx(0) as text: the same prompt as :func:`prompt_text` with an empty user turn."""
    return _context_text(tokenizer, "", system_prompt)


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` with no special tokens added (templates already contain theirs)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def answer_ids(tokenizer, answer: str) -> list[int]:
    """Answer token ids as a finished generation ends: ``encode_text(answer) + [eos]``.

    An empty answer gives ``[eos]`` (T = 1).
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token: set tokenizer.eos_token to the end-of-turn token")
    return encode_text(tokenizer, answer) + [tokenizer.eos_token_id]


# ---------------------------------------------------------------- the reward
def check_variant(variant: str) -> None:
    """Raise ValueError unless ``variant`` is one of :data:`VARIANTS`."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown SAR variant {variant!r}; choose one of {', '.join(VARIANTS)}")


def sar_from_nll(nll_qa: Tensor, nll_a: Tensor, variant: str = "ppl") -> Tensor:
    """SAR from mean NLLs (``nll = log ppl``); ``[B]`` inputs and output, same dtype.

    Variants (the official ``compute_ppl_qa_log`` with ``A = ppl(a)``, ``QA = ppl(a|q)``):

    * ``"ppl"`` (official default): ``max((A - QA) / (A + 1e-9), -1)``, computed stably as
      ``max(1 - exp(nll_qa - nll_a), -1)`` (A >= 1, so the 1e-9 changes the value by < 1e-9). The
      value is < 1 in exact arithmetic; fp32 rounds it to 1.0 once nll_a - nll_qa > ~16.
    * ``"log"`` (``use_log``): ``max((nll_a - nll_qa) / (nll_a + 1e-9), -1)``.
    * ``"no_denominator"`` (``use_denominator=False``): ``A - QA``, unclipped.
    * ``"em"`` (``use_comparison=False``, ``use_log=False``): ``-QA = -ppl(a|q)``; the official
      code adds a constant 5, which GRPO's group-mean baseline cancels, so it is left out. (The
      ``-log ppl(a|q)`` form is ``rewards.entropy_minimisation``.)
    """
    check_variant(variant)
    if variant == "ppl":
        return torch.clamp(-torch.expm1(nll_qa - nll_a), min=-1.0)
    if variant == "log":
        return torch.clamp((nll_a - nll_qa) / (nll_a + 1e-9), min=-1.0)
    if variant == "no_denominator":
        return torch.exp(nll_a) - torch.exp(nll_qa)
    return -torch.exp(nll_qa)


def information_gain(logp_q: Tensor, logp_0: Tensor, mask: Tensor) -> Tensor:
    """Per-token information from the question, ``[B, T]``: ``v_t = (logp_q - logp_0) * mask``.

    ``logp_q[b, t] = log pi(a_t | ctx(q), a_<t)``, ``logp_0[b, t] = log pi(a_t | ctx(0), a_<t)``.
    ``mean_t v_t = nll_a - nll_qa``, so ``"ppl"`` SAR = ``max(1 - exp(-mean_t v_t), -1)``.
    """
    return (logp_q - logp_0) * mask


# ---------------------------------------------------------------- scoring with a model
def sar_from_token_ids(model, ctx_0: Sequence[int], answers: Sequence[Sequence[int]], *, pad_token_id: int,
                       ctx_q: Sequence[Sequence[int]] | None = None, nll_qa: Tensor | None = None,
                       variant: str = "ppl", batch_size: int = 8, chunk_size: int = 256,
                       progress: bool = False) -> dict:
    """SAR of ``N`` already-tokenised answers (each ending with eos if it finished).

    ``ctx_0``: ids of ctx(0) (shared by all answers). Give either ``ctx_q`` (one id list per answer;
    ppl(a|q) is then computed here) or ``nll_qa`` (``[N]``, the mean NLL of each answer under
    ctx(q) already computed, e.g. from the GRPO old log-probs: only the ctx(0) pass runs then).
    Both passes run under ``no_grad`` with the model in eval mode (its mode is restored). ctx(0) is
    the same for every answer, so its keys and values are computed once and shared by the batch
    (``perplexity.score_answers_after_prompts``): the extra pass costs the answer tokens only.

    Returns a dict of CPU tensors ``[N]``: ``nll_qa``, ``nll_a``, ``ppl_qa``, ``ppl_a``, ``sar``
    (fp32) and ``n_tokens`` (long, answer tokens incl. eos); plus ``logprobs_a`` (list of ``[T_i]``,
    log pi(a_t | ctx(0), a_<t)) and ``logprobs_q`` (same under ctx(q); None when ``nll_qa`` was given).
    """
    check_variant(variant)
    if (ctx_q is None) == (nll_qa is None):
        raise ValueError("pass exactly one of ctx_q (token ids of ctx(q) per answer) or nll_qa (mean NLL per answer)")
    n = len(answers)
    if ctx_q is not None and len(ctx_q) != n:
        raise ValueError(f"got {len(ctx_q)} ctx_q id lists for {n} answers; pass one per answer")
    if nll_qa is not None and tuple(nll_qa.shape) != (n,):
        raise ValueError(f"nll_qa has shape {tuple(nll_qa.shape)}, expected ({n},): one mean NLL per answer")
    common = dict(pad_token_id=pad_token_id, batch_size=batch_size, chunk_size=chunk_size, progress=progress)
    logprobs_q = None
    if ctx_q is not None:
        scores_q = score_answer_ids(model, ctx_q, answers, desc="ppl(a|q)", **common)
        nll_qa = scores_q.nll
        logprobs_q = [row[:len(a)] for row, a in zip(scores_q.logprobs, answers)]
    nll_qa = nll_qa.detach().float().cpu()
    if not ctx_0:
        raise ValueError("ctx_0 is empty: the first answer token needs a context token to be predicted from")
    scores_a = score_answers_after_prompts(model, [ctx_0], [0] * n, answers, desc="ppl(a)", **common)  # ctx(0) once
    nll_a = scores_a.nll
    logprobs_a = [row[:len(a)] for row, a in zip(scores_a.logprobs, answers)]
    return {
        "nll_qa": nll_qa, "nll_a": nll_a, "ppl_qa": torch.exp(nll_qa), "ppl_a": torch.exp(nll_a),
        "sar": sar_from_nll(nll_qa, nll_a, variant),
        "n_tokens": torch.tensor([len(a) for a in answers], dtype=torch.long),
        "logprobs_q": logprobs_q, "logprobs_a": logprobs_a,
    }


def score_answers(model, tokenizer, questions: Sequence[str], answers: Sequence[str], *,
                  batch_size: int = 8, variant: str = "ppl", add_instruction: bool = True,
                  progress: bool = False, chunk_size: int = 256, per_token: bool = False,
                  system_prompt: str = SYSTEM_PROMPT, instruction: str = INSTRUCTION) -> list[dict]:
    """SAR of (question, answer) text pairs, one dict per pair in input order.

    Each dict: ``ppl_qa``, ``ppl_a``, ``nll_qa``, ``nll_a``, ``sar`` (floats) and ``n_tokens`` (answer
    tokens incl. the appended eos). With ``per_token``: also ``tokens`` (each answer token decoded)
    and ``information_gain`` (v_t per token, see :func:`information_gain`), for heat maps.
    Contexts: :func:`prompt_text` / :func:`empty_prompt_text`; answers: :func:`answer_ids`.
    """
    if len(questions) != len(answers):
        raise ValueError(f"got {len(questions)} questions but {len(answers)} answers; pass one question per answer")
    check_variant(variant)
    ctx_cache: dict[str, list[int]] = {}
    for q in questions:
        if q not in ctx_cache:
            ctx_cache[q] = encode_text(tokenizer, prompt_text(tokenizer, q, system_prompt=system_prompt,
                                                              instruction=instruction,
                                                              add_instruction=add_instruction))
    ctx_0 = encode_text(tokenizer, empty_prompt_text(tokenizer, system_prompt=system_prompt))
    ids = [answer_ids(tokenizer, a) for a in answers]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    res = sar_from_token_ids(model, ctx_0, ids, pad_token_id=pad, ctx_q=[ctx_cache[q] for q in questions],
                             variant=variant, batch_size=batch_size, chunk_size=chunk_size, progress=progress)
    out = []
    for i, a_ids in enumerate(ids):
        row = {key: float(res[key][i]) for key in ("ppl_qa", "ppl_a", "nll_qa", "nll_a", "sar")}
        row["n_tokens"] = len(a_ids)
        if per_token:
            row["tokens"] = [tokenizer.decode([t]) for t in a_ids]
            gain = information_gain(res["logprobs_q"][i], res["logprobs_a"][i], torch.ones(len(a_ids)))
            row["information_gain"] = gain.tolist()
        out.append(row)
    return out


def read_pairs(path: str | Path) -> tuple[list[str], list[str]]:
    """(questions, answers) from a JSONL file: one object per line with string fields ``question``
    and ``answer`` (other fields ignored, blank lines skipped). Errors name the line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise FileNotFoundError(f"cannot read {path}: {err}") from None
    questions, answers = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} line {number}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path} line {number}: expected a JSON object with 'question' and 'answer'")
        for field in ("question", "answer"):
            if not isinstance(record.get(field), str):
                problem = "is missing" if field not in record else "is not a string"
                raise ValueError(f"{path} line {number}: field {field!r} {problem}; each line needs "
                                 "string fields 'question' and 'answer'")
        questions.append(record["question"])
        answers.append(record["answer"])
    if not questions:
        raise ValueError(f"{path} holds no (question, answer) pairs")
    return questions, answers
