"""The rollout engine: GRPO's G answers per prompt sampled with each prompt computed once.

``transformers``' ``generate`` repeats every prompt G times before its first forward pass, then runs
the whole batch until its longest answer ends. For a batch of many short answers both cost: the
prompt (about half of every sequence here) is encoded G times, and an answer that ended at token
40 keeps being computed until the longest one ends at 150. This loop:

1. encodes each prompt once (``perplexity.encode_prompts``, left-padded) and gives its keys and
   values to its G answers (``perplexity.rows_cache``);
2. samples token ``t`` of every running answer from ``softmax(z / temperature)`` with nucleus
   ``top_p`` (``z``: the fp32 logits; greedy: ``argmax z``), and records ``log pi(a_t)`` at
   temperature 1, the number the scorer computes for the same token (the PPO ratio's denominator);
3. drops finished answers from the batch (their rows of the cache) once a quarter of the batch
   has finished, so that the batch shrinks with the answers still running;
4. stops when every answer has emitted eos or ``max_new_tokens`` ran out.

It samples pi exactly: the greedy answers are ``generate``'s (tested), and at temperature 1 the
recorded log-probs equal the scorer's within 1e-4 (tested). Everything random comes from torch's
global generator, so the same seed gives the same rollouts. It runs any causal LM whose decoder takes
``past_key_values`` (the tiny model, Qwen2.5, Qwen3; LoRA and 4-bit policies too).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sar_lib.generation import Rollouts, check_generation_args, eos_token_ids
from sar_lib.perplexity import encode_prompts, rows_cache, text_config

# Finished answers leave the batch once they are this share of it: copying the cache's rows costs
# about one decoding step, so doing it for each finished answer would cost more than it saves.
COMPACT_SHARE = 0.25


def next_tokens(logits: Tensor, *, do_sample: bool, temperature: float = 1.0, top_p: float = 1.0) -> Tensor:
    """One token per row of ``logits`` ``[B, V]`` (fp32): ``argmax`` when greedy; else a draw from
    ``softmax(logits / temperature)`` restricted to the smallest set of tokens whose probability
    reaches ``top_p`` (``transformers``' ``TopPLogitsWarper``: the most likely token always stays)."""
    if not do_sample:
        return logits.argmax(-1)
    scaled = logits / temperature
    if top_p < 1.0:
        sorted_logits, order = scaled.sort(-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative <= 1 - top_p
        drop[:, -1] = False
        scaled = scaled.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    # inverse-CDF draw: the first token whose cumulative probability exceeds u ~ U[0, 1) (faster than
    # torch.multinomial on a CPU; a token of probability 0 is never drawn)
    cdf = scaled.softmax(-1).cumsum(-1)
    u = torch.rand(cdf.shape[0], 1, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp(max=cdf.shape[1] - 1)


@torch.no_grad()
def sample(model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int, do_sample: bool,
           temperature: float = 1.0, top_p: float = 1.0, num_return_sequences: int = 1, batch_size: int = 16,
           suppress_eos: bool = False, progress: bool = False) -> Rollouts:
    """``generation.generate``'s answers, drawn by the engine (module doc); ``Rollouts.logprobs`` holds
    ``log pi(a_t | prompt, a_<t)`` of every answer token at temperature 1.

    Answer ``i * num_return_sequences + j`` answers prompt ``i``. ``batch_size`` counts prompts per
    batch (each batch holds ``batch_size * num_return_sequences`` answers at first).
    """
    check_generation_args(tokenizer, max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                          num_return_sequences=num_return_sequences, batch_size=batch_size)
    eos = sorted(eos_token_ids(model, tokenizer))
    was_training = model.training
    model.eval()  # no dropout in rollouts: the sampled answers must come from pi itself
    prompt_ids, answer_ids, logprobs, truncated = [], [], [], []
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc="sample", disable=not progress, unit="batch"):
            encoded = [list(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts[start:start + batch_size]]
            answers, scores, cut = _sample_batch(model, encoded, eos=eos, max_new_tokens=max_new_tokens,
                                                 do_sample=do_sample, temperature=temperature, top_p=top_p,
                                                 group_size=num_return_sequences, suppress_eos=suppress_eos)
            prompt_ids += [ids for ids in encoded for _ in range(num_return_sequences)]
            answer_ids += answers
            logprobs += scores
            truncated += cut
    finally:
        model.train(was_training)
    return Rollouts(prompt_ids, answer_ids, truncated, logprobs)


def _sample_batch(model, prompts: list[list[int]], *, eos: list[int], max_new_tokens: int, do_sample: bool,
                  temperature: float, top_p: float, group_size: int, suppress_eos: bool):
    """The answers to ``prompts``, ``group_size`` each: ``(answer ids, their log-probs, truncated)``."""
    limit = getattr(text_config(model), "max_position_embeddings", None)
    if limit is not None and max(len(p) for p in prompts) + max_new_tokens > limit:
        raise ValueError(f"a prompt of {max(len(p) for p in prompts)} tokens + max_new_tokens={max_new_tokens} "
                         f"exceeds the model's context of {limit} tokens; lower max_new_tokens")
    head = model.get_output_embeddings()
    states = encode_prompts(model, prompts)
    device = states.mask.device
    rows = torch.arange(len(prompts), device=device).repeat_interleave(group_size)
    cache = rows_cache(states, rows)
    attention = states.mask.index_select(0, rows)
    positions = states.lengths.index_select(0, rows)
    hidden = states.last_hidden.index_select(0, rows)
    eos_tensor = torch.tensor(eos, device=device)
    n = len(rows)
    answers: list[list[int]] = [[] for _ in range(n)]
    scores: list[list[float]] = [[] for _ in range(n)]
    truncated = [True] * n
    owner = list(range(n))          # batch row -> answer index
    running = torch.ones(n, dtype=torch.bool, device=device)
    for t in range(max_new_tokens):
        logits = head(hidden).float()
        if suppress_eos:
            logits[:, eos_tensor] = float("-inf")
        tokens = next_tokens(logits, do_sample=do_sample, temperature=temperature, top_p=top_p)
        token_logprobs = logits.log_softmax(-1).gather(1, tokens.unsqueeze(1)).squeeze(1)
        finished = running & torch.isin(tokens, eos_tensor)
        for b, (token, logp, alive) in enumerate(zip(tokens.tolist(), token_logprobs.tolist(), running.tolist())):
            if alive:
                answers[owner[b]].append(token)
                scores[owner[b]].append(logp)
        for b in finished.nonzero().flatten().tolist():
            truncated[owner[b]] = False
        running &= ~finished
        n_running = int(running.sum())
        if n_running == 0 or t == max_new_tokens - 1:
            break
        if len(owner) - n_running >= max(1, COMPACT_SHARE * len(owner)):
            keep = running.nonzero().flatten()
            cache.batch_select_indices(keep)
            attention, positions, tokens = attention[keep], positions[keep], tokens[keep]
            owner = [owner[b] for b in keep.tolist()]
            running = running[keep]
        attention = torch.cat([attention, attention.new_ones(len(owner), 1)], 1)
        hidden = model.get_decoder()(input_ids=tokens.unsqueeze(1), attention_mask=attention,
                                     position_ids=(positions + t).unsqueeze(1), past_key_values=cache,
                                     use_cache=True).last_hidden_state[:, -1]
    return answers, scores, truncated
