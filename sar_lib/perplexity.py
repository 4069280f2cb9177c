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
import copy
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


def prefix_cache(model, prefix_ids: Sequence[int], batch_size: int):
    """Keys/values of a context shared by a batch, computed once: ``(cache, last_hidden)``.

    One forward pass over ``prefix_ids`` ``[P]`` (no padding) gives the cache of its P positions,
    repeated over ``batch_size`` rows, and ``last_hidden`` ``[H]``, the hidden state of its last token
    (it predicts the first token after the prefix). Rows that continue the prefix must use position
    ids ``P, P+1, ...`` and an attention mask of P ones before their own.
    """
    device = model.get_input_embeddings().weight.device
    out = model.get_decoder()(input_ids=torch.as_tensor([list(prefix_ids)], device=device), use_cache=True)
    cache = out.past_key_values
    cache.batch_repeat_interleave(batch_size)
    return cache, out.last_hidden_state[0, -1]


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


def score_answers_after_prefix(model, prefix_ids: Sequence[int], answers: Sequence[Sequence[int]], *,
                               pad_token_id: int, batch_size: int = 8, chunk_size: int = 256,
                               progress: bool = False, desc: str = "score") -> BatchScores:
    """:func:`score_answer_ids` for answers that all share one context (e.g. SAR's ctx(0)), with the
    context's keys and values computed once (:func:`prefix_cache`) instead of once per answer.

    The same numbers as ``score_answer_ids(model, [prefix_ids] * N, answers)`` (to float rounding):
    each answer sits at positions ``P ..`` after the P context tokens, exactly as there.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not prefix_ids:
        raise ValueError("the shared context is empty: the first answer token needs a token to be predicted from")
    n, width = len(answers), max((len(a) for a in answers), default=0)
    logprobs = torch.zeros(n, width)
    mask = torch.zeros(n, width, dtype=torch.bool)
    P = len(prefix_ids)
    device = model.get_input_embeddings().weight.device
    order = sorted(range(n), key=lambda i: -len(answers[i]))
    with scoring_mode(model):
        shared, last_hidden = None, None
        for start in tqdm(range(0, n, batch_size), desc=desc, disable=not progress):
            idx = order[start:start + batch_size]
            batch = pack_sequences([prefix_ids] * len(idx), [answers[i] for i in idx], pad_token_id)
            _check_batch_fits(model, batch)
            if shared is None or len(idx) != shared[0]:
                shared = (len(idx), *prefix_cache(model, prefix_ids, len(idx)))
            _, cache, last_hidden = shared
            cache = copy.deepcopy(cache)            # a forward appends to the cache it is given
            answer_ids = batch.answer_ids.to(device)
            answer_mask = batch.answer_mask.to(device)
            T = answer_ids.shape[1]
            attention = torch.cat([torch.ones(len(idx), P, dtype=torch.long, device=device), answer_mask.long()], 1)
            hidden = model.get_decoder()(input_ids=answer_ids, attention_mask=attention, past_key_values=cache,
                                         position_ids=(P + torch.arange(T, device=device)).expand(len(idx), T),
                                         use_cache=True).last_hidden_state
            # the prefix's last hidden state predicts a_1; the hidden state of a_t predicts a_{t+1}
            before = torch.cat([last_hidden.expand(len(idx), 1, -1), hidden[:, :-1]], 1)
            scores = _scores_of_rows(model, before[answer_mask], answer_ids[answer_mask], answer_mask,
                                     chunk_size=chunk_size, with_certainty=False)
            logprobs[idx, :T] = scores.logprobs.cpu()
            mask[idx, :T] = batch.answer_mask
    return BatchScores(logprobs, mask, mean_nll(logprobs, mask))


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
