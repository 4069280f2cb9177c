"""sar_lib.perplexity: packing, chunked fp32 log-probs, masks, errors, peft."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from sar_lib.models import build_tiny_model
from sar_lib.perplexity import PackedBatch, answer_logprobs, mean_nll, pack_sequences, perplexity


def naive_logprobs(model, context: list[int], answer: list[int], *, certainty: bool = False):
    """One unpadded sequence through the full model; full-vocab fp32 log-softmax, loop over tokens."""
    ids = torch.tensor([context + answer])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    lp, cert = [], []
    for t, tok in enumerate(answer):
        row = torch.log_softmax(logits[len(context) - 1 + t], dim=-1)
        lp.append(row[tok].item())
        V = row.shape[0]
        cert.append(sum((1 / V) * (math.log(1 / V) - row[v].item()) for v in range(V)) if certainty else 0.0)
    return torch.tensor(lp), torch.tensor(cert)


CONTEXTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
ANSWERS = [[20, 21, 22, 2], [30, 2], [40, 41, 42, 43, 44, 45, 46, 2]]


def test_pack_layout_and_positions():
    b = pack_sequences([[5, 6, 7], [8]], [[9, 2], [10, 11, 12, 2]], pad_token_id=0)
    assert isinstance(b, PackedBatch) and b.context_length == 3
    assert b.input_ids.tolist() == [[5, 6, 7, 9, 2, 0, 0], [0, 0, 8, 10, 11, 12, 2]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 1]]
    # answers continue right after their own context: positions 3.. and 1..
    assert b.position_ids[0, :5].tolist() == [0, 1, 2, 3, 4]
    assert b.position_ids[1, 2:].tolist() == [0, 1, 2, 3, 4]
    assert b.answer_mask.tolist() == [[True, True, False, False], [True, True, True, True]]
    assert b.answer_ids.tolist() == [[9, 2, 0, 0], [10, 11, 12, 2]]


def test_pack_keeps_real_eos_when_pad_equals_eos():
    eos = 2
    b = pack_sequences([[5, 6], [7]], [[9, eos], [10, 11, 12, eos]], pad_token_id=eos)
    assert b.answer_mask.sum(-1).tolist() == [2, 4]
    assert b.answer_mask[0].tolist() == [True, True, False, False]  # eos kept, padding (also id 2) not


@pytest.mark.parametrize("contexts,answers,match", [
    ([[1]], [[]], "answer 0 has no tokens"),
    ([[]], [[1]], "context 0 is empty"),
    ([[1], [2]], [[1]], "2 contexts but 1 answers"),
    ([], [], "nothing to pack"),
])
def test_pack_rejects_bad_input(contexts, answers, match):
    with pytest.raises(ValueError, match=match):
        pack_sequences(contexts, answers, pad_token_id=0)


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_chunked_logsoftmax_equals_naive(sharp_model, chunk_size):
    batch = pack_sequences(CONTEXTS, ANSWERS, pad_token_id=0)
    with torch.no_grad():
        scores = answer_logprobs(sharp_model, batch, chunk_size=chunk_size, with_certainty=True)
    assert scores.logprobs.dtype == torch.float32 and scores.logprobs.shape == (3, 8)
    for b, (ctx, ans) in enumerate(zip(CONTEXTS, ANSWERS)):
        lp, cert = naive_logprobs(sharp_model, ctx, ans, certainty=True)
        torch.testing.assert_close(scores.logprobs[b, :len(ans)], lp, atol=1e-5, rtol=0)
        torch.testing.assert_close(scores.certainty[b, :len(ans)], cert, atol=1e-5, rtol=0)
        assert (scores.logprobs[b, len(ans):] == 0).all() and (scores.certainty[b, len(ans):] == 0).all()
    assert (scores.certainty[batch.answer_mask] > 0).all()  # KL(U || pi) > 0 for a non-uniform pi


def test_only_answer_rows_go_through_the_head_in_chunks(sharp_model):
    batch = pack_sequences(CONTEXTS, ANSWERS, pad_token_id=0)
    rows = []
    hook = sharp_model.get_output_embeddings().register_forward_hook(lambda m, inp, out: rows.append(inp[0].shape[0]))
    try:
        with torch.no_grad():
            answer_logprobs(sharp_model, batch, chunk_size=4)
    finally:
        hook.remove()
    assert sum(rows) == sum(len(a) for a in ANSWERS) == 14
    assert max(rows) <= 4


def test_batch_invariance(sharp_model):
    ctx, ans = CONTEXTS[0], ANSWERS[0]
    with torch.no_grad():
        alone = answer_logprobs(sharp_model, pack_sequences([ctx], [ans], pad_token_id=0)).logprobs[0]
        # the same pair in the middle of a batch with longer/shorter contexts and answers
        batch = pack_sequences([[3] * 12, ctx, [4]], [[7] * 15, ans, [8, 2]], pad_token_id=0)
        inside = answer_logprobs(sharp_model, batch).logprobs[1, :len(ans)]
    torch.testing.assert_close(inside, alone, atol=1e-5, rtol=0)


def test_pad_id_equal_to_eos_gives_same_scores(sharp_model):
    with torch.no_grad():
        a = answer_logprobs(sharp_model, pack_sequences(CONTEXTS, ANSWERS, pad_token_id=0))
        b = answer_logprobs(sharp_model, pack_sequences(CONTEXTS, ANSWERS, pad_token_id=2))
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=0)
    # the eos (id 2) at the end of every answer is scored, not masked as padding
    for row, ans in enumerate(ANSWERS):
        assert b.logprobs[row, len(ans) - 1] < 0


def test_grad_path_matches_and_backprops(sharp_model):
    batch = pack_sequences(CONTEXTS, ANSWERS, pad_token_id=0)
    m = copy.deepcopy(sharp_model)
    scores = answer_logprobs(m, batch, chunk_size=3)  # grad enabled: checkpointed chunks
    assert scores.logprobs.requires_grad
    loss = -(scores.logprobs * batch.answer_mask).sum()
    loss.backward()
    grad_chunked = m.model.layers[0].mlp.up_proj.weight.grad.clone()

    m.zero_grad()
    logits = m(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
               position_ids=batch.position_ids).logits.float()
    P = batch.context_length
    lp = torch.log_softmax(logits[:, P - 1:-1], -1).gather(-1, batch.answer_ids.unsqueeze(-1)).squeeze(-1)
    (-(lp * batch.answer_mask).sum()).backward()
    torch.testing.assert_close(scores.logprobs.detach(), lp.detach() * batch.answer_mask, atol=1e-5, rtol=0)
    torch.testing.assert_close(grad_chunked, m.model.layers[0].mlp.up_proj.weight.grad, atol=1e-5, rtol=1e-4)


def test_mean_nll_and_perplexity():
    lp = torch.tensor([[-1.0, -3.0, 0.0], [-2.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    torch.testing.assert_close(mean_nll(lp, mask), torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(perplexity(lp, mask), torch.exp(torch.tensor([2.0, 2.0])))
    with pytest.raises(ValueError, match="no unmasked tokens"):
        mean_nll(lp, torch.zeros_like(mask))


def test_too_long_raises_with_lengths(tiny_tokenizer):
    short = build_tiny_model(len(tiny_tokenizer), max_positions=16)
    batch = pack_sequences([[5, 6, 7]], [[9] * 20 + [2]], pad_token_id=0)
    with pytest.raises(ValueError, match=r"24 tokens \(context 3 \+ answer 21\).*max_position_embeddings is 16"):
        answer_logprobs(short, batch)


def test_token_outside_vocab_raises(sharp_model):
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        answer_logprobs(sharp_model, pack_sequences([[5]], [[10_000]], pad_token_id=0))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_logits_raise(sharp_model, value):
    broken = copy.deepcopy(sharp_model)
    with torch.no_grad():
        broken.model.norm.weight.fill_(value)
    with pytest.raises(ValueError, match=r"non-finite log-probabilities .*sequence\(s\) \[0, 1, 2\]"):
        with torch.no_grad():
            answer_logprobs(broken, pack_sequences(CONTEXTS, ANSWERS, pad_token_id=0))


def test_peft_lora_zero_adapter_matches_base_and_trained_adapter_is_used(sharp_model):
    from peft import LoraConfig, get_peft_model

    batch = pack_sequences(CONTEXTS, ANSWERS, pad_token_id=0)
    with torch.no_grad():
        base = answer_logprobs(sharp_model, batch).logprobs
    wrapped = get_peft_model(copy.deepcopy(sharp_model),
                             LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        torch.testing.assert_close(answer_logprobs(wrapped, batch).logprobs, base, atol=1e-6, rtol=0)
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
        moved = answer_logprobs(wrapped, batch).logprobs
        full = wrapped(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       position_ids=batch.position_ids).logits.float()
    P = batch.context_length
    ref = torch.log_softmax(full[:, P - 1:-1], -1).gather(-1, batch.answer_ids.unsqueeze(-1)).squeeze(-1)
    assert (moved - base).abs().max() > 1e-3  # the adapter is really applied
    torch.testing.assert_close(moved, ref * batch.answer_mask, atol=1e-5, rtol=0)


def test_final_logit_softcapping_is_applied():
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    gemma = Gemma2ForCausalLM(Gemma2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                           num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                           final_logit_softcapping=0.5, max_position_embeddings=64)).eval()
    batch = pack_sequences([[3, 4, 5]], [[6, 7, 1]], pad_token_id=0)
    with torch.no_grad():
        got = answer_logprobs(gemma, batch).logprobs[0]
        logits = gemma(input_ids=batch.input_ids).logits[0].float()
    ref = torch.log_softmax(logits[2:5], -1).gather(-1, torch.tensor([[6], [7], [1]])).squeeze(-1)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_a_shared_prefix_scored_once_gives_the_same_logprobs(sharp_model, batch_size):
    from sar_lib.perplexity import score_answer_ids, score_answers_after_prompts

    prefix = [5, 9, 2, 7, 11, 3]
    answers = [[4, 8, 1], [6], [12, 13, 14, 15, 2, 1], [3, 3], [9, 8, 7, 6, 5]]
    full = score_answer_ids(sharp_model, [prefix] * len(answers), answers, pad_token_id=0, batch_size=batch_size)
    shared = score_answers_after_prompts(sharp_model, [prefix], [0] * len(answers), answers, pad_token_id=0,
                                         batch_size=batch_size)
    assert torch.equal(full.mask, shared.mask)
    torch.testing.assert_close(shared.logprobs, full.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(shared.nll, full.nll, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="empty"):
        score_answers_after_prompts(sharp_model, [[]], [0] * len(answers), answers, pad_token_id=0)


def test_a_shared_prefix_works_through_lora_adapters(sharp_model):
    from peft import LoraConfig, get_peft_model

    from sar_lib.perplexity import score_answer_ids, score_answers_after_prompts

    policy = get_peft_model(copy.deepcopy(sharp_model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                   init_lora_weights=False))
    prefix, answers = [5, 9, 2, 7], [[4, 8, 1], [6, 2], [12, 13, 14]]
    full = score_answer_ids(policy, [prefix] * 3, answers, pad_token_id=0, batch_size=2)
    shared = score_answers_after_prompts(policy, [prefix], [0] * 3, answers, pad_token_id=0, batch_size=2)
    torch.testing.assert_close(shared.logprobs, full.logprobs, atol=1e-5, rtol=0)
    base = score_answer_ids(sharp_model, [prefix] * 3, answers, pad_token_id=0, batch_size=2)
    assert not torch.allclose(base.logprobs, full.logprobs)     # the adapters are really in the path
