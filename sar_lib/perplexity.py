"""Log-probabilities of answer tokens given a context, batched, in fp32, chunk by chunk.

Everything SAR needs from a model is ``log pi(a_t | ctx, a_<t)`` for each answer token ``a_t``
(docs/paper.md §1). This module computes those numbers the way generation saw them:

* contexts are **left**-padded and answers **right**-padded into one ``[B, P+T]`` batch, and the
  position ids come from the attention mask, so every answer continues at the position right after
  its own context (as at generation time), whatever the padding;
* the answer mask is built from the answer *lengths*, never from token ids, so the real end-of-turn
  token is kept even when the tokenizer's pad id equals its eos id (docs/paper.md §6);
* the decoder runs once; the output embedding is applied only to the hidden states that predict
  answer tokens, a chunk of rows at a time, with the log-softmax in fp32. The full
  ``[B, L, V]`` fp32 tensor never exists, and with gradients enabled each chunk is recomputed in the
  backward pass instead of being stored.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint
from tqdm.auto import tqdm


@dataclass
class PackedBatch:
    """Contexts and answers packed into one batch.

    ``input_ids``/``attention_mask``/``position_ids`` are ``[B, P+T]``: columns ``[0, P)`` hold the
    left-padded contexts, columns ``[P, P+T)`` the right-padded answers. ``answer_mask`` is
    ``[B, T]``, True on real answer tokens (the real eos included, even when pad id == eos id).
    """

    input_ids: Tensor       # [B, P+T] long
    attention_mask: Tensor  # [B, P+T] long
    position_ids: Tensor    # [B, P+T] long, cumsum(attention_mask) - 1 on real tokens
    answer_mask: Tensor     # [B, T] bool
    context_length: int     # P: answer tokens start at column P

    @property
    def answer_ids(self) -> Tensor:
        """``[B, T]`` the answer token ids (pad id where ``answer_mask`` is False)."""
        return self.input_ids[:, self.context_length:]


@dataclass
class TokenScores:
    """Per-answer-token scores, ``[B, T]`` fp32, 0 where ``answer_mask`` is False."""

    logprobs: Tensor                # log pi(a_t | ctx, a_<t)
    certainty: Tensor | None = None  # KL(Uniform || pi(. | ctx, a_<t)) when asked for
    hidden: Tensor | None = None     # [B, T, H] the last hidden state that predicts a_t, when asked for


def pack_sequences(contexts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]],
                   pad_token_id: int) -> PackedBatch:
    """Pack ``B`` (context, answer) id lists: contexts left-padded to ``P``, answers right-padded to ``T``.

    position_ids[b, j] = (sum_{i<=j} attention_mask[b, i]) - 1 on real tokens (1 on padding), so the
    first answer token of row b sits at position len(contexts[b]), exactly as at generation time.
    answer_mask[b, t] = t < len(answers[b]).
    """
    if len(contexts) != len(answers):
        raise ValueError(f"got {len(contexts)} contexts but {len(answers)} answers; pass one context per answer")
    if not answers:
        raise ValueError("nothing to pack: contexts and answers are empty")
    for i, (ctx, ans) in enumerate(zip(contexts, answers)):
        if len(ctx) == 0:
            raise ValueError(f"context {i} is empty: the first answer token needs at least one context "
                             "token to be predicted from (use the chat prompt, e.g. sar.empty_prompt_text)")
        if len(ans) == 0:
            raise ValueError(f"answer {i} has no tokens: an answer must hold at least its eos token "
                             "(use sar.answer_ids, which appends it)")
    batch = len(answers)
    P = max(len(c) for c in contexts)
    T = max(len(a) for a in answers)
    input_ids = torch.full((batch, P + T), int(pad_token_id), dtype=torch.long)
    attention_mask = torch.zeros((batch, P + T), dtype=torch.long)
    answer_mask = torch.zeros((batch, T), dtype=torch.bool)
    for b, (ctx, ans) in enumerate(zip(contexts, answers)):
        input_ids[b, P - len(ctx):P] = torch.as_tensor(list(ctx), dtype=torch.long)
        input_ids[b, P:P + len(ans)] = torch.as_tensor(list(ans), dtype=torch.long)
        attention_mask[b, P - len(ctx):P + len(ans)] = 1
        answer_mask[b, :len(ans)] = True
    position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
    return PackedBatch(input_ids, attention_mask, position_ids, answer_mask, P)


def text_config(model):
    """The config of the model's text decoder (a multimodal model's text part; else the config)."""
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _check_batch_fits(model, batch: PackedBatch) -> None:
    """Raise ValueError before any forward pass if a sequence exceeds the model's context or vocab."""
    config = text_config(model)
    limit = getattr(config, "max_position_embeddings", None)
    lengths = batch.attention_mask.sum(-1)
    if limit is not None and int(lengths.max()) > limit:
        b = int(lengths.argmax())
        n_answer = int(batch.answer_mask[b].sum())
        raise ValueError(f"sequence {b} is {int(lengths[b])} tokens (context {int(lengths[b]) - n_answer} + "
                         f"answer {n_answer}) but the model's max_position_embeddings is {limit}; "
                         "truncate the answer or use a model with a longer context")
    vocab = model.get_input_embeddings().num_embeddings
    top = int(batch.input_ids.max())
    if top >= vocab:
        raise ValueError(f"token id {top} is outside the model's vocabulary of {vocab}: "
                         "the tokenizer does not match the model")


def _check_lengths_fit(model, lengths: Tensor, token_ids: Tensor) -> None:
    """ValueError before a forward pass when a sequence of ``lengths`` ``[B]`` tokens exceeds the model's
    context or ``token_ids`` holds an id outside its vocabulary."""
    limit = getattr(text_config(model), "max_position_embeddings", None)
    if limit is not None and int(lengths.max()) > limit:
        raise ValueError(f"a sequence is {int(lengths.max())} tokens (prompt + answer) but the model's "
                         f"max_position_embeddings is {limit}; truncate the answer or use a model with a longer context")
    vocab = model.get_input_embeddings().num_embeddings
    if int(token_ids.max()) >= vocab:
        raise ValueError(f"token id {int(token_ids.max())} is outside the model's vocabulary of {vocab}: "
                         "the tokenizer does not match the model")


def answer_logprobs(model, batch: PackedBatch, *, chunk_size: int = 256,
                    with_certainty: bool = False, with_hidden: bool = False) -> TokenScores:
    """Per-token log-probabilities of the answers, computed chunk by chunk in fp32.

    With h = decoder(input_ids, attention_mask, position_ids) ``[B, P+T, H]`` and W the output
    embedding, for each real answer token b, t:

        z = W h[b, P-1+t]                                   (logits ``[V]``, temperature 1)
        logprobs[b, t]  = z[a_t] - logsumexp(z)             (fp32)
        certainty[b, t] = KL(U || softmax(z)) = -log V - (1/V) sum_v log softmax(z)_v

    Only the ``N = answer_mask.sum()`` rows that predict answer tokens go through the output
    embedding, ``chunk_size`` rows at a time, so peak extra memory is ``chunk_size * V`` fp32 values.
    Under ``torch.is_grad_enabled()`` each chunk is wrapped in ``torch.utils.checkpoint`` (its fp32
    logits are recomputed in backward, not kept). Works on plain HF causal LMs and on peft-wrapped
    ones (LoRA layers live inside the decoder, so they are active). Gemma-style final logit
    soft-capping is applied when the config sets it.

    Returns :class:`TokenScores` with ``[B, T]`` fp32 tensors on the model's device; with
    ``with_hidden`` also ``hidden[b, t] = h[b, P-1+t]`` ``[B, T, H]`` (fp32, detached: the features
    of PPO's critic, ``sar_lib.ppo``).
    Raises ValueError when a sequence is longer than ``max_position_embeddings``, a token id is
    outside the vocabulary, or a log-prob on an answer token is not finite (NaN/inf logits).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    _check_batch_fits(model, batch)
    device = model.get_input_embeddings().weight.device
    input_ids = batch.input_ids.to(device)
    answer_mask = batch.answer_mask.to(device)
    P = batch.context_length
    hidden = model.get_decoder()(input_ids=input_ids, attention_mask=batch.attention_mask.to(device),
                                 position_ids=batch.position_ids.to(device), use_cache=False).last_hidden_state
    # The hidden state at column j predicts the token at column j+1.
    rows = hidden[:, P - 1:-1][answer_mask]          # [N, H]
    targets = input_ids[:, P:][answer_mask]          # [N]
    scores = _scores_of_rows(model, rows, targets, answer_mask, chunk_size=chunk_size, with_certainty=with_certainty)
    if with_hidden:
        scores.hidden = (hidden[:, P - 1:-1].detach().float() * answer_mask.unsqueeze(-1))
    return scores


def mean_nll(logprobs: Tensor, mask: Tensor) -> Tensor:
    """Mean negative log-likelihood per answer: ``-(1/T_b) sum_t mask[b,t] logprobs[b,t]``.

    ``logprobs``, ``mask``: ``[B, T]``; returns ``[B]`` in the dtype of ``logprobs``.
    """
    counts = mask.sum(-1)
    if bool((counts == 0).any()):
        raise ValueError("an answer has no unmasked tokens: its mean NLL (and perplexity) is undefined")
    return -(logprobs * mask).sum(-1) / counts.to(logprobs.dtype)


def perplexity(logprobs: Tensor, mask: Tensor) -> Tensor:
    """Perplexity per answer: ``ppl = exp(mean_nll)``; ``[B, T]`` inputs, ``[B]`` output."""
    return torch.exp(mean_nll(logprobs, mask))


@contextlib.contextmanager
def scoring_mode(model):
    """no_grad and eval mode (dropout off: a reward must be deterministic), training flag restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


@dataclass
class BatchScores:
    """Scores of ``N`` answers in input order, padded to ``T = max_i T_i`` (CPU, fp32)."""

    logprobs: Tensor                 # [N, T] log pi(a_t | ctx, a_<t), 0 past each answer's end
    mask: Tensor                     # [N, T] bool, True on real answer tokens
    nll: Tensor                      # [N] mean NLL per answer (log ppl)
    certainty: Tensor | None = None  # [N, T] KL(U || pi) per token, when asked for
    hidden: Tensor | None = None     # [N, T, H] the hidden states that predict the tokens, when asked for


def _scores_of_rows(model, rows: Tensor, targets: Tensor, answer_mask: Tensor, *, chunk_size: int,
                    with_certainty: bool) -> TokenScores:
    """log pi of ``targets`` ``[N]`` from the hidden states ``rows`` ``[N, H]`` that predict them,
    chunk by chunk in fp32, scattered back to ``answer_mask``'s ``[B, T]`` layout."""
    head = model.get_output_embeddings()
    softcap = getattr(text_config(model), "final_logit_softcapping", None)

    def score_chunk(h: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        logits = head(h).float()
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        logp = torch.log_softmax(logits, dim=-1)
        token_logp = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        certainty = (-math.log(logp.shape[-1]) - logp.mean(-1)) if with_certainty else token_logp.new_zeros(())
        return token_logp, certainty

    parts = []
    for start in range(0, rows.shape[0], chunk_size):
        h, y = rows[start:start + chunk_size], targets[start:start + chunk_size]
        if torch.is_grad_enabled():
            parts.append(checkpoint(score_chunk, h, y, use_reentrant=False))
        else:
            parts.append(score_chunk(h, y))
    flat_logp = torch.cat([p[0] for p in parts])
    zeros = torch.zeros(answer_mask.shape, dtype=torch.float32, device=answer_mask.device)
    logprobs = zeros.masked_scatter(answer_mask, flat_logp)
    certainty = zeros.masked_scatter(answer_mask, torch.cat([p[1] for p in parts])) if with_certainty else None
    finite = torch.isfinite(logprobs)
    if certainty is not None:
        finite &= torch.isfinite(certainty)
    if not bool(finite.all()):
        bad = sorted({int(b) for b in (~finite).nonzero()[:, 0]})
        raise ValueError(f"non-finite log-probabilities on the answer tokens of sequence(s) {bad}: the model "
                         "produced NaN/inf logits (broken weights, or an fp16 overflow: try bf16/fp32)")
    return TokenScores(logprobs, certainty)


@dataclass
class PromptStates:
    """Keys and values of ``Q`` prompts, each computed once and shared by every answer to it.

    ``cache`` holds per layer ``[Q, kv_heads, W, head_dim]``: the prompts left-padded to ``W``.
    ``mask`` ``[Q, W]`` (1 on real prompt tokens), ``lengths`` ``[Q]`` (prompt tokens) and
    ``last_hidden`` ``[Q, H]``: the hidden state of each prompt's last token, which predicts the first
    answer token. Built under gradients, it carries them: the keys and values of a prompt shared by G
    answers receive the sum of their G gradients, exactly as G separate copies of the prompt would.
    """

    cache: object
    mask: Tensor
    lengths: Tensor
    last_hidden: Tensor


def encode_prompts(model, prompts: Sequence[Sequence[int]]) -> PromptStates:
    """One forward pass over ``Q`` prompts (left-padded, position ids from the mask), keeping their
    keys and values (:class:`PromptStates`). Gradients flow when enabled."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("a prompt is empty: the first answer token needs at least one prompt token to be predicted from")
    device = model.get_input_embeddings().weight.device
    width = max(len(p) for p in prompts)
    input_ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for q, ids in enumerate(prompts):
        input_ids[q, width - len(ids):] = torch.as_tensor(list(ids), dtype=torch.long)
        mask[q, width - len(ids):] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    out = model.get_decoder()(input_ids=input_ids, attention_mask=mask,
                              position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=True)
    return PromptStates(out.past_key_values, mask, mask.sum(-1), out.last_hidden_state[:, -1])


def rows_cache(states: PromptStates, rows: Tensor):
    """A new ``DynamicCache`` whose row ``b`` is prompt ``rows[b]``'s keys and values (``rows``: ``[B]``
    long). Indexing is differentiable: gradients of the rows sum back into the shared prompt."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for layer, states_layer in enumerate(states.cache.layers):
        cache.update(states_layer.keys.index_select(0, rows), states_layer.values.index_select(0, rows), layer)
    return cache


def logprobs_after_prompts(model, states: PromptStates, rows: Tensor, answers: Sequence[Sequence[int]], *,
                           pad_token_id: int, chunk_size: int = 256, with_certainty: bool = False,
                           with_hidden: bool = False) -> TokenScores:
    """:func:`answer_logprobs` of ``B`` answers, answer ``b`` continuing prompt ``rows[b]`` of ``states``:
    only the answer tokens go through the decoder, after their prompt's cached keys and values.

    Answer ``b`` sits at positions ``lengths[rows[b]] + t`` and attends to its prompt's real tokens and
    its own earlier tokens, exactly as in :func:`pack_sequences`' full sequence, so the numbers are
    the same (to float rounding), gradients included. Returns :class:`TokenScores` ``[B, T]``.
    """
    if len(answers) != len(rows):
        raise ValueError(f"got {len(answers)} answers for {len(rows)} prompt rows; pass one row per answer")
    if any(len(a) == 0 for a in answers):
        raise ValueError("an answer has no tokens: an answer must hold at least its eos token (use sar.answer_ids)")
    device = states.mask.device
    rows = torch.as_tensor(rows, dtype=torch.long, device=device)
    T = max(len(a) for a in answers)
    answer_ids = torch.full((len(answers), T), int(pad_token_id), dtype=torch.long)
    answer_mask = torch.zeros((len(answers), T), dtype=torch.bool)
    for b, ans in enumerate(answers):
        answer_ids[b, :len(ans)] = torch.as_tensor(list(ans), dtype=torch.long)
        answer_mask[b, :len(ans)] = True
    answer_ids, answer_mask = answer_ids.to(device), answer_mask.to(device)
    _check_lengths_fit(model, states.lengths[rows] + answer_mask.sum(-1), answer_ids)
    attention = torch.cat([states.mask.index_select(0, rows), answer_mask.long()], 1)
    positions = states.lengths.index_select(0, rows).unsqueeze(1) + torch.arange(T, device=device)
    hidden = model.get_decoder()(input_ids=answer_ids, attention_mask=attention, position_ids=positions,
                                 past_key_values=rows_cache(states, rows), use_cache=True).last_hidden_state
    # the prompt's last hidden state predicts a_1; the hidden state of a_t predicts a_{t+1}
    before = torch.cat([states.last_hidden.index_select(0, rows).unsqueeze(1), hidden[:, :-1]], 1)
    scores = _scores_of_rows(model, before[answer_mask], answer_ids[answer_mask], answer_mask,
                             chunk_size=chunk_size, with_certainty=with_certainty)
    if with_hidden:
        scores.hidden = before.detach().float() * answer_mask.unsqueeze(-1)
    return scores


def score_answers_after_prompts(model, prompts: Sequence[Sequence[int]], prompt_of: Sequence[int],
                                answers: Sequence[Sequence[int]], *, pad_token_id: int, batch_size: int = 8,
                                chunk_size: int = 256, with_certainty: bool = False, with_hidden: bool = False,
                                progress: bool = False, desc: str = "score") -> BatchScores:
    """:func:`score_answer_ids` for answers that share prompts: answer ``i`` continues
    ``prompts[prompt_of[i]]``. Each prompt's keys and values are computed once (:func:`encode_prompts`)
    and the answers alone go through the decoder, ``batch_size`` at a time, longest first (GRPO's G
    answers per question; SAR's ctx(0), one prompt shared by all).

    The same numbers as ``score_answer_ids(model, [prompts[j] for j in prompt_of], answers)`` (to float
    rounding). Runs in :func:`scoring_mode`; results come back in input order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(prompt_of) != len(answers):
        raise ValueError(f"got {len(prompt_of)} prompt indices for {len(answers)} answers; pass one per answer")
    if any(not 0 <= j < len(prompts) for j in prompt_of):
        raise ValueError(f"prompt_of must index the {len(prompts)} prompts")
    n, width = len(answers), max((len(a) for a in answers), default=0)
    logprobs = torch.zeros(n, width)
    mask = torch.zeros(n, width, dtype=torch.bool)
    certainty = torch.zeros(n, width) if with_certainty else None
    hidden = torch.zeros(n, width, text_config(model).hidden_size) if with_hidden else None
    order = sorted(range(n), key=lambda i: -len(answers[i]))
    with scoring_mode(model):
        states = encode_prompts(model, prompts)
        for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress):
            idx = order[start:start + batch_size]
            scores = logprobs_after_prompts(model, states, [prompt_of[i] for i in idx], [answers[i] for i in idx],
                                            pad_token_id=pad_token_id, chunk_size=chunk_size,
                                            with_certainty=with_certainty, with_hidden=with_hidden)
            t = scores.logprobs.shape[1]
            logprobs[idx, :t] = scores.logprobs.cpu()
            mask[idx, :t] = torch.arange(t) < torch.tensor([len(answers[i]) for i in idx]).unsqueeze(1)
            if certainty is not None:
                certainty[idx, :t] = scores.certainty.cpu()
            if hidden is not None:
                hidden[idx, :t] = scores.hidden.cpu()
    return BatchScores(logprobs, mask, mean_nll(logprobs, mask), certainty, hidden)


def score_answer_ids(model, contexts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]], *,
                     pad_token_id: int, batch_size: int = 8, chunk_size: int = 256,
                     with_certainty: bool = False, with_hidden: bool = False, progress: bool = False,
                     desc: str = "score") -> BatchScores:
    """:func:`answer_logprobs` over ``N`` (context, answer) id lists, ``batch_size`` at a time.

    Runs in :func:`scoring_mode` (no_grad, eval mode). Sequences are batched longest first, so a
    too-long input fails before any other work; results come back in input order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(contexts) != len(answers):
        raise ValueError(f"got {len(contexts)} contexts but {len(answers)} answers; pass one context per answer")
    n, width = len(answers), max((len(a) for a in answers), default=0)
    logprobs = torch.zeros(n, width)
    mask = torch.zeros(n, width, dtype=torch.bool)
    certainty = torch.zeros(n, width) if with_certainty else None
    hidden = torch.zeros(n, width, text_config(model).hidden_size) if with_hidden else None
    order = sorted(range(n), key=lambda i: -(len(contexts[i]) + len(answers[i])))
    with scoring_mode(model):
        for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress):
            idx = order[start:start + batch_size]
            batch = pack_sequences([contexts[i] for i in idx], [answers[i] for i in idx], pad_token_id)
            scores = answer_logprobs(model, batch, chunk_size=chunk_size, with_certainty=with_certainty,
                                     with_hidden=with_hidden)
            t = batch.answer_mask.shape[1]
            logprobs[idx, :t] = scores.logprobs.cpu()
            mask[idx, :t] = batch.answer_mask
            if certainty is not None:
                certainty[idx, :t] = scores.certainty.cpu()
            if hidden is not None:
                hidden[idx, :t] = scores.hidden.cpu()
    return BatchScores(logprobs, mask, mean_nll(logprobs, mask), certainty, hidden)
