"""Sampling answers from a causal LM: the rollouts of GRPO and the greedy decoding of evaluation.

Prompts are left-padded so that every answer starts at the same column; an answer is cut after
its first end-of-turn (eos) token, which is kept: SAR and the policy loss score it (docs/paper.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm


@dataclass
class Rollouts:
    """Answers to a list of prompts, sample ``i * num_return_sequences + j`` answering prompt ``i``.

    prompt_ids[k]: the prompt's token ids (no padding).
    answer_ids[k]: the generated ids, ending with eos when the model stopped by itself.
    truncated[k]:  True when ``max_new_tokens`` ran out before an eos.
    logprobs[k]:   log pi(a_t | prompt, a_<t) of each answer token at temperature 1, when the sampler
                   recorded them (``sar_lib.engine``; None from ``generate``).
    """

    prompt_ids: list[list[int]]
    answer_ids: list[list[int]]
    truncated: list[bool]
    logprobs: list[list[float]] | None = None

    @property
    def lengths(self) -> list[int]:
        """Answer lengths in tokens, eos included."""
        return [len(a) for a in self.answer_ids]


def _cut_at_eos(row: list[int], eos_ids: set[int]) -> tuple[list[int], bool]:
    for i, token in enumerate(row):
        if token in eos_ids:
            return row[: i + 1], False
    return row, True


def eos_token_ids(model, tokenizer) -> set[int]:
    """The ids that end an answer: the tokenizer's eos and the model's generation-config eos ids."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    return {i for i in ids if i is not None}


def check_generation_args(tokenizer, *, max_new_tokens: int, do_sample: bool, temperature: float,
                          num_return_sequences: int, batch_size: int) -> None:
    """ValueError for a sampling setting no sampler can run, before any work."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if num_return_sequences < 1 or batch_size < 1:
        raise ValueError("num_return_sequences and batch_size must be >= 1")
    if do_sample and temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token before generating")


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int, do_sample: bool,
             temperature: float = 1.0, top_p: float = 1.0, num_return_sequences: int = 1,
             batch_size: int = 16, suppress_eos: bool = False, progress: bool = False) -> Rollouts:
    """Generate answers for prompt texts (full chat-formatted prompts, e.g. ``sar.prompt_text``).

    Sampling draws from softmax(logits / temperature) with nucleus ``top_p`` and no top-k cut, so
    at temperature 1 and top_p 1 it samples the policy pi itself (docs/paper.md §3). Greedy when
    ``do_sample`` is False. ``batch_size`` counts prompts; each forward holds
    ``batch_size * num_return_sequences`` sequences. ``suppress_eos`` forbids the eos token so that
    every answer has exactly ``max_new_tokens`` tokens (benchmarks at forced lengths).
    """
    check_generation_args(tokenizer, max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                          num_return_sequences=num_return_sequences, batch_size=batch_size)
    eos_ids = eos_token_ids(model, tokenizer)
    device = next(model.parameters()).device
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=0) if do_sample \
        else dict(do_sample=False, temperature=None, top_p=None, top_k=None)
    if suppress_eos:
        sampling["suppress_tokens"] = sorted(eos_ids)

    was_training = model.training
    model.eval()  # no dropout in rollouts: the sampled answers must come from pi itself
    prompt_ids, answer_ids, truncated = [], [], []
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc="generate", disable=not progress,
                          unit="batch"):
            chunk = list(prompts[start:start + batch_size])
            encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in chunk]
            width = max(len(e) for e in encoded)
            input_ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros_like(input_ids)
            for i, ids in enumerate(encoded):
                input_ids[i, width - len(ids):] = torch.tensor(ids)
                attention_mask[i, width - len(ids):] = 1
            out = model.generate(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens if suppress_eos else None,
                num_return_sequences=num_return_sequences, pad_token_id=tokenizer.pad_token_id,
                eos_token_id=sorted(eos_ids), **sampling,
            )
            for k, row in enumerate(out[:, width:].tolist()):
                answer, cut = _cut_at_eos(row, set() if suppress_eos else eos_ids)
                prompt_ids.append(encoded[k // num_return_sequences])
                answer_ids.append(answer)
                truncated.append(cut)
    finally:
        model.train(was_training)
    return Rollouts(prompt_ids, answer_ids, truncated)


def answer_texts(tokenizer, rollouts: Rollouts) -> list[str]:
    """The answers as text, special tokens (eos) removed."""
    return tokenizer.batch_decode(rollouts.answer_ids, skip_special_tokens=True)
