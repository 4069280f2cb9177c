"""sar_lib.sar: contexts of docs/paper.md §1, SAR against plain references, variants, edge cases."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from sar_lib import sar
from sar_lib.models import build_tiny_model

S = "You are a reasoning expert assistant. Given a question, you will use your reasoning skills to solve the problem."
I = "Please explain your reasoning process before providing an answer."

# A ChatML-like template that refuses a system message (as Gemma-2's does) ...
RAISING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# ... and one that silently drops it.
DROPPING_TEMPLATE = RAISING_TEMPLATE.replace(
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}",
    "{% if message['role'] != 'system' %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endif %}")

PAIRS = [
    ("Tom has 3 apples and buys 5 more. How many apples does Tom have now?",
     "Tom has 3 + 5 = 8 apples. The answer is 8."),
    ("Mia reads 12 pages a day for 4 days. How many pages?", "12 * 4 = 48 pages. The answer is \\boxed{48}."),
    ("Every wumpus is a yumpus. Max is a wumpus. Is Max a yumpus?", "True."),
]


def expected_contexts(kind: str, question: str) -> tuple[str, str]:
    """ctx(q), ctx(0) written out by hand from docs/paper.md §1 (and the official code for no system role)."""
    user = f"{question} {I}"
    if kind == "system":
        wrap = lambda u: (f"<|im_start|>system\n{S}<|im_end|>\n<|im_start|>user\n{u}<|im_end|>\n"
                          "<|im_start|>assistant\n")
    elif kind in ("raising", "dropping"):
        wrap = lambda u: f"<|im_start|>user\n{S}\n{u}<|im_end|>\n<|im_start|>assistant\n"
    else:
        wrap = lambda u: f"System: {S}\nUser: {u}\nAssistant: "
    return wrap(user), wrap("")


def with_template(tokenizer, template):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    return tok


@pytest.fixture(scope="module")
def tokenizers(tiny_tokenizer):
    return {"system": tiny_tokenizer, "raising": with_template(tiny_tokenizer, RAISING_TEMPLATE),
            "dropping": with_template(tiny_tokenizer, DROPPING_TEMPLATE), "none": with_template(tiny_tokenizer, None)}


def enc(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def reference_nll(model, context: list[int], answer: list[int]) -> float:
    """One sequence, no padding, loop over answer tokens with a full-vocab log-softmax."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context + answer])).logits[0].float()
    total = 0.0
    for t, token in enumerate(answer):
        total -= torch.log_softmax(logits[len(context) - 1 + t], dim=-1)[token].item()
    return total / len(answer)


def reference_sar(model, tok, ctx_q: str, ctx_0: str, answer: list[int]) -> dict:
    ppl_qa = math.exp(reference_nll(model, enc(tok, ctx_q), answer))
    ppl_a = math.exp(reference_nll(model, enc(tok, ctx_0), answer))
    return {"ppl_qa": ppl_qa, "ppl_a": ppl_a, "sar": max((ppl_a - ppl_qa) / ppl_a, -1.0)}


def test_prompt_strings_are_the_papers():
    assert sar.SYSTEM_PROMPT == S
    assert sar.INSTRUCTION == I


@pytest.mark.parametrize("kind", ["system", "raising", "dropping", "none"])
def test_contexts_match_sar_md(tokenizers, kind):
    tok = tokenizers[kind]
    q = PAIRS[0][0]
    ctx_q, ctx_0 = expected_contexts(kind, q)
    assert sar.prompt_text(tok, q) == ctx_q
    assert sar.empty_prompt_text(tok) == ctx_0
    no_instr = sar.prompt_text(tok, q, add_instruction=False)
    assert I not in no_instr and q in no_instr


def test_answer_ids_end_with_eos(tiny_tokenizer):
    eos = tiny_tokenizer.eos_token_id
    text = "The answer is 8."
    assert sar.answer_ids(tiny_tokenizer, text) == enc(tiny_tokenizer, text) + [eos]
    assert sar.answer_ids(tiny_tokenizer, "") == [eos]
    im_start = tiny_tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert sar.encode_text(tiny_tokenizer, "<|im_start|>user\n")[0] == im_start  # template tokens stay special


@pytest.mark.parametrize("kind", ["system", "raising", "none"])
def test_sar_matches_plain_reference(sharp_model, tokenizers, kind):
    tok = tokenizers[kind]
    got = sar.score_answers(sharp_model, tok, [q for q, _ in PAIRS], [a for _, a in PAIRS], batch_size=2)
    for (q, a), row in zip(PAIRS, got):
        ref = reference_sar(sharp_model, tok, *expected_contexts(kind, q), enc(tok, a) + [tok.eos_token_id])
        assert row["sar"] == pytest.approx(ref["sar"], abs=1e-5)
        assert row["ppl_qa"] == pytest.approx(ref["ppl_qa"], rel=1e-5)
        assert row["ppl_a"] == pytest.approx(ref["ppl_a"], rel=1e-5)
        assert row["nll_qa"] == pytest.approx(math.log(ref["ppl_qa"]), abs=1e-5)
        assert row["n_tokens"] == len(enc(tok, a)) + 1
    assert len({round(r["sar"], 4) for r in got}) == len(got)  # the test model tells answers apart


def test_independent_formula_from_full_logits(sharp_model, tiny_tokenizer):
    """docs/paper.md §1: R = max(1 - exp(-mean_t v_t), -1), v_t from one batched full-logit pass per context."""
    tok = tiny_tokenizer
    got = sar.score_answers(sharp_model, tok, [q for q, _ in PAIRS[:2]], [a for _, a in PAIRS[:2]])
    for (q, a), row in zip(PAIRS[:2], got):
        ctx_q, ctx_0 = (enc(tok, c) for c in expected_contexts("system", q))
        ans = torch.tensor(enc(tok, a) + [tok.eos_token_id])
        logp = {}
        for name, ctx in (("q", ctx_q), ("0", ctx_0)):
            with torch.no_grad():
                logits = sharp_model(input_ids=torch.tensor([ctx + ans.tolist()])).logits[0].double()
            all_logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
            logp[name] = all_logp[len(ctx) - 1:-1].gather(-1, ans[:, None])[:, 0]
        v = logp["q"] - logp["0"]
        assert row["sar"] == pytest.approx(max(1 - math.exp(-v.mean().item()), -1), abs=1e-4)


def official_ppl_qa(ppl_qa, ppl_a, use_log=False, use_denominator=True, use_comparison=True):
    """verl/utils/reward_score/efficiency_reward.py::compute_ppl_qa_log (clip_value=-1), minus its '+5'."""
    qa, a = (np.log(ppl_qa), np.log(ppl_a)) if use_log else (ppl_qa, ppl_a)
    if not use_comparison:
        return -qa
    if use_denominator:
        return max((a - qa) / (a + 1e-9), -1)
    return a - qa


@pytest.mark.parametrize("variant,flags", [
    ("ppl", {}), ("log", {"use_log": True}), ("no_denominator", {"use_denominator": False}),
    ("em", {"use_comparison": False, "use_denominator": False}),
])
def test_variants_match_official_code(variant, flags):
    nll_qa = torch.tensor([0.5, 2.0, 3.0, 0.0, 1.2], dtype=torch.float64)
    nll_a = torch.tensor([1.5, 1.0, 0.5, 0.0, 1.2], dtype=torch.float64)
    got = sar.sar_from_nll(nll_qa, nll_a, variant)
    want = [official_ppl_qa(math.exp(q), math.exp(a), **flags) for q, a in zip(nll_qa.tolist(), nll_a.tolist())]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-8)
    assert got.dtype == torch.float64


def test_clip_only_at_minus_one_and_below_one():
    r = sar.sar_from_nll(torch.tensor([9.0, 0.0, 0.0, 0.1]), torch.tensor([0.0, 0.0, 10.0, 0.0]))
    assert r[0] == -1.0 and r[1] == 0.0 and 0.9999 < r[2] < 1.0
    assert r[3] == pytest.approx(1 - math.exp(0.1))  # slightly negative, not clipped


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown SAR variant 'foo'.*ppl, log, no_denominator, em"):
        sar.sar_from_nll(torch.zeros(1), torch.zeros(1), "foo")


def test_information_gain_mean_is_nll_difference(sharp_model, tiny_tokenizer):
    q, a = PAIRS[0]
    row = sar.score_answers(sharp_model, tiny_tokenizer, [q], [a], per_token=True)[0]
    assert "".join(row["tokens"]) == a + tiny_tokenizer.eos_token
    assert len(row["information_gain"]) == row["n_tokens"]
    assert np.mean(row["information_gain"]) == pytest.approx(row["nll_a"] - row["nll_qa"], abs=1e-5)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    v = sar.information_gain(torch.tensor([[-1.0, -2.0, -9.0]]), torch.tensor([[-3.0, -1.0, -1.0]]), mask)
    assert v.tolist() == [[2.0, -1.0, 0.0]]


def test_batch_invariance_of_sar(sharp_model, tiny_tokenizer):
    qs = [q for q, _ in PAIRS] + ["?"]
    answers = [a for _, a in PAIRS] + ["A much longer answer that pads everyone else: 1 2 3 4 5 6 7 8 9 10 11 12."]
    batched = sar.score_answers(sharp_model, tiny_tokenizer, qs, answers, batch_size=4)
    for i in range(len(qs)):
        alone = sar.score_answers(sharp_model, tiny_tokenizer, [qs[i]], [answers[i]], batch_size=1)[0]
        for key in ("sar", "nll_qa", "nll_a"):
            assert batched[i][key] == pytest.approx(alone[key], abs=1e-5)


def test_pad_equal_to_eos_keeps_the_eos(sharp_model, tiny_tokenizer):
    tok = copy.deepcopy(tiny_tokenizer)
    tok.pad_token = tok.eos_token
    assert tok.pad_token_id == tok.eos_token_id
    qs, answers = [q for q, _ in PAIRS], [a for _, a in PAIRS]
    same = sar.score_answers(sharp_model, tok, qs, answers, batch_size=3)
    base = sar.score_answers(sharp_model, tiny_tokenizer, qs, answers, batch_size=3)
    for s, b in zip(same, base):
        assert s["n_tokens"] == b["n_tokens"]
        assert s["sar"] == pytest.approx(b["sar"], abs=1e-5)
        assert s["ppl_qa"] == pytest.approx(b["ppl_qa"], rel=1e-5)
    assert tiny_tokenizer.pad_token_id != tiny_tokenizer.eos_token_id  # the shared fixture is untouched


def test_empty_answer_and_eos_only_answer(sharp_model, tiny_tokenizer):
    tok = tiny_tokenizer
    q = PAIRS[0][0]
    row = sar.score_answers(sharp_model, tok, [q], [""])[0]
    assert row["n_tokens"] == 1 and -1 <= row["sar"] < 1
    ref = reference_sar(sharp_model, tok, *expected_contexts("system", q), [tok.eos_token_id])
    assert row["sar"] == pytest.approx(ref["sar"], abs=1e-5)
    ctx_q, ctx_0 = (enc(tok, c) for c in expected_contexts("system", q))
    ids = sar.sar_from_token_ids(sharp_model, ctx_0, [[tok.eos_token_id]], pad_token_id=tok.pad_token_id, ctx_q=[ctx_q])
    assert ids["sar"][0].item() == pytest.approx(row["sar"], abs=1e-6)
    assert ids["n_tokens"].tolist() == [1]


def test_truncated_answer_without_eos(sharp_model, tiny_tokenizer):
    tok = tiny_tokenizer
    q, a = PAIRS[1]
    ctx_q, ctx_0 = expected_contexts("system", q)
    truncated = enc(tok, a)[:9]  # stopped by max_new_tokens: no eos
    got = sar.sar_from_token_ids(sharp_model, enc(tok, ctx_0), [truncated], pad_token_id=tok.pad_token_id,
                                 ctx_q=[enc(tok, ctx_q)])
    ref = reference_sar(sharp_model, tok, ctx_q, ctx_0, truncated)
    assert got["n_tokens"].tolist() == [9]
    assert got["sar"][0].item() == pytest.approx(ref["sar"], abs=1e-5)
    assert -1 <= got["sar"][0].item() < 1


def test_nll_qa_from_caller_gives_same_sar_and_restores_mode(sharp_model, tiny_tokenizer):
    tok = tiny_tokenizer
    ctx_0 = sar.encode_text(tok, sar.empty_prompt_text(tok))
    ctx_q = [sar.encode_text(tok, sar.prompt_text(tok, q)) for q, _ in PAIRS]
    answers = [sar.answer_ids(tok, a) for _, a in PAIRS]
    sharp_model.train()
    try:
        full = sar.sar_from_token_ids(sharp_model, ctx_0, answers, pad_token_id=tok.pad_token_id, ctx_q=ctx_q,
                                      batch_size=2)
        assert sharp_model.training  # scoring switched to eval and back
    finally:
        sharp_model.eval()
    reuse = sar.sar_from_token_ids(sharp_model, ctx_0, answers, pad_token_id=tok.pad_token_id, nll_qa=full["nll_qa"])
    torch.testing.assert_close(reuse["sar"], full["sar"])
    assert reuse["logprobs_q"] is None and len(full["logprobs_q"]) == 3
    assert [len(x) for x in full["logprobs_a"]] == [len(a) for a in answers]
    with pytest.raises(ValueError, match="exactly one of ctx_q"):
        sar.sar_from_token_ids(sharp_model, ctx_0, answers, pad_token_id=0)
    with pytest.raises(ValueError, match=r"nll_qa has shape \(2,\), expected \(3,\)"):
        sar.sar_from_token_ids(sharp_model, ctx_0, answers, pad_token_id=0, nll_qa=torch.zeros(2))


def test_answer_longer_than_context_raises(tiny_tokenizer):
    short = build_tiny_model(len(tiny_tokenizer), max_positions=64)
    with pytest.raises(ValueError, match="max_position_embeddings is 64"):
        sar.score_answers(short, tiny_tokenizer, ["q"], ["1 " * 100])


def test_nan_weights_raise(sharp_model, tiny_tokenizer):
    broken = copy.deepcopy(sharp_model)
    with torch.no_grad():
        broken.model.layers[0].mlp.down_proj.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="non-finite log-probabilities"):
        sar.score_answers(broken, tiny_tokenizer, ["q"], ["a"])


def test_mismatched_lengths(sharp_model, tiny_tokenizer):
    with pytest.raises(ValueError, match="2 questions but 1 answers"):
        sar.score_answers(sharp_model, tiny_tokenizer, ["a", "b"], ["c"])
