"""What chunked answer log-probs save: peak memory of ``perplexity.answer_logprobs`` against the
naive full-vocabulary log-softmax (``logprob_memory_ratio``, a figure of ``sar bench`` and the GPU check).

    logprob_memory_ratio = peak(answer_logprobs) / peak(naive)

for B answers of T tokens after P context tokens, with a V = 151,936 vocabulary (Qwen2.5's) by
default. Naive: the answer positions' logits ``[B, T, V]`` at once, then an fp32 log-softmax over
the full vocabulary. Ours: the same decoder, then ``perplexity.answer_logprobs``, ``chunk_size``
rows at a time. The model is a random Qwen2 with a 64-wide hidden state, so the vocabulary
projection dominates, as in a real model's scoring. Peak = bytes above the level before the call:
``torch.cuda.max_memory_allocated`` on CUDA; on CPU each variant runs in a fresh process and the
peak is its ``ru_maxrss`` above its resident set size.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import torch

from sar_lib.lab.machine import peak_memory_mb, synchronize
from sar_lib.models import check_device
from sar_lib.perplexity import PackedBatch, answer_logprobs, pack_sequences

QWEN_VOCAB = 151936  # Qwen2.5's vocabulary (sar_lib/configs/*.json)
HIDDEN_SIZE = 64


@dataclass(frozen=True)
class ProbeShape:
    """``batch`` answers of ``answer_tokens`` tokens after ``context_tokens`` context tokens, a
    ``vocab_size``-token vocabulary, ``chunk_size`` rows per chunk of ``answer_logprobs``."""

    batch: int = 6
    answer_tokens: int = 512
    context_tokens: int = 32
    vocab_size: int = QWEN_VOCAB
    chunk_size: int = 256


def naive_answer_logprobs(model, batch: PackedBatch) -> torch.Tensor:
    """The computation ``perplexity.answer_logprobs`` replaces (the baseline of ``logprob_memory_ratio``).

    ``z = logits`` of the T answer-predicting positions, ``[B, T, V]`` at once (``logits_to_keep``);
    ``log_softmax(z.float())`` over the full vocabulary, ``[B, T, V]`` fp32; then the answer tokens'
    entries. Returns ``[B, T]`` fp32, 0 where ``answer_mask`` is False.
    """
    device = model.get_input_embeddings().weight.device
    T = batch.answer_mask.shape[1]
    logits = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                   position_ids=batch.position_ids.to(device), logits_to_keep=T + 1, use_cache=False).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token = logp.gather(-1, batch.answer_ids.to(device).unsqueeze(-1)).squeeze(-1)
    return token * batch.answer_mask.to(device)


def _probe_inputs(shape: ProbeShape, device: str):
    """A random Qwen2 with a 64-wide hidden state and ``shape.vocab_size`` tokens (bf16 on CUDA, fp32
    on CPU: the dtypes a policy scores in), a random batch of ``shape`` and a 1-answer one."""
    from sar_lib.models import build_tiny_model

    P, T, B = shape.context_tokens, shape.answer_tokens, shape.batch
    model = build_tiny_model(shape.vocab_size, hidden_size=HIDDEN_SIZE, num_layers=2, num_heads=4, num_kv_heads=2,
                             intermediate_size=128, max_positions=P + T + 1, seed=0)
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    model = model.to(device=device, dtype=dtype)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(shape.vocab_size, (B, P + T), generator=generator).tolist()
    batch = pack_sequences([row[:P] for row in ids], [row[P:] for row in ids], pad_token_id=0)
    small = pack_sequences([ids[0][:P]], [ids[0][P:P + 8]], pad_token_id=0)
    return model, batch, small


def _peak_rss_bytes() -> int:
    return int(peak_memory_mb()["peak_rss_mb"] * 2**20)


def _memory_probe(variant: str, shape: dict, device: str, threads: int | None = None) -> dict:
    """Peak memory of one scoring variant ("chunked" | "naive"), in bytes above the level before it.

    CUDA: ``max_memory_allocated`` above ``memory_allocated``. CPU (run in a fresh process):
    ``ru_maxrss`` after the call above the resident set size before it; ``peak_valid`` is False when
    the call did not raise ``ru_maxrss`` (an earlier peak hid it).
    """
    import psutil

    if threads is not None:
        torch.set_num_threads(threads)
    shape = ProbeShape(**shape)
    model, batch, small = _probe_inputs(shape, device)
    if variant == "naive":
        score = naive_answer_logprobs
    else:
        def score(m, b):
            return answer_logprobs(m, b, chunk_size=shape.chunk_size).logprobs
    cuda = torch.device(device).type == "cuda"
    with torch.no_grad():
        score(model, small)  # kernels and lazy buffers are set up outside the measurement
        gc.collect()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            before, earlier_peak = psutil.Process().memory_info().rss, _peak_rss_bytes()
        t0 = time.perf_counter()
        logprobs = score(model, batch)
        synchronize(device)
        seconds = time.perf_counter() - t0
        if cuda:
            peak, valid = torch.cuda.max_memory_allocated() - before, True
        else:
            peak, valid = _peak_rss_bytes() - before, _peak_rss_bytes() > earlier_peak
    return {"peak_bytes": peak, "peak_valid": valid, "seconds": seconds,
            "logprob_sum": float(logprobs.double().sum())}


def measure_logprob_memory(shape: ProbeShape = ProbeShape(), *, device: str = "cpu") -> dict:
    """``logprob_memory_ratio``: peak memory of ``answer_logprobs`` over the naive full-vocabulary
    log-softmax (:func:`naive_answer_logprobs`) on the same model and batch (module docstring).

    CPU: each variant in a fresh (spawned) process with this process's torch thread count, so the
    two peaks cannot mask each other.
    ``logprobs_agree``: both variants' sums of answer log-probs match (rel. 1e-4 fp32, 1e-2 bf16).
    """
    check_device(device)
    args = dataclasses.asdict(shape)
    probes = {}
    for variant in ("chunked", "naive"):
        if torch.device(device).type == "cuda":
            probes[variant] = _memory_probe(variant, args, device)
            gc.collect()
            torch.cuda.empty_cache()
        else:
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                probes[variant] = pool.submit(_memory_probe, variant, args, device, torch.get_num_threads()).result()
    chunked, naive = probes["chunked"], probes["naive"]
    tolerance = 1e-2 if torch.device(device).type == "cuda" else 1e-4
    return {
        "logprob_memory_ratio": chunked["peak_bytes"] / naive["peak_bytes"],
        "chunked_peak_mb": chunked["peak_bytes"] / 2**20,
        "naive_peak_mb": naive["peak_bytes"] / 2**20,
        "chunked_s": chunked["seconds"],
        "naive_s": naive["seconds"],
        "peaks_valid": chunked["peak_valid"] and naive["peak_valid"],
        "logprobs_agree": math.isclose(chunked["logprob_sum"], naive["logprob_sum"], rel_tol=tolerance),
        "method": ("torch.cuda.max_memory_allocated above memory_allocated" if torch.device(device).type == "cuda"
                   else "fresh process per variant: ru_maxrss above the resident set size before the call"),
        "shape": {"batch": shape.batch, "answer_tokens": shape.answer_tokens,
                  "context_tokens": shape.context_tokens, "vocab": shape.vocab_size,
                  "chunk_size": shape.chunk_size, "hidden_size": HIDDEN_SIZE},
    }
