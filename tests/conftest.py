"""Shared fixtures: tiny tokenizers and randomly initialised tiny models, built offline in seconds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sar_lib import models
from sar_lib.data import benchmark_data_dir
from sar_lib.models import build_tiny_model
from sar_lib.tokenizer import train_tokenizer

# The test models have at most a few million parameters: one thread beats two (no sync cost).
torch.set_num_threads(1)

# What the random test model needs on top of a miniature grid (`sar compare --quick`): short answers,
# long prompts allowed (its byte-level tokenizer spends many tokens on them).
SMALL_GRID = dict(max_new_tokens=8, max_prompt_tokens=400, micro_batch_size=6, eval_batch_size=4, train_size=20)

CORPUS = [
    "Tom has 3 apples and buys 5 more. How many apples does Tom have now?",
    "Tom has 3 + 5 = 8 apples. The answer is 8.",
    "Mia reads 12 pages a day for 4 days. 12 * 4 = 48 pages. The answer is \\boxed{48}.",
    "Every wumpus is a yumpus. Max is a wumpus. Is the following statement true or false? True.",
    "You are a reasoning expert assistant. Please explain your reasoning process before providing an answer.",
] * 4


def positive(x) -> bool:
    """A measured time or ratio: a finite float above 0."""
    return isinstance(x, float) and math.isfinite(x) and x > 0


def needs_shared_data(name: str) -> Path:
    """Path of a benchmark file in ``data.benchmark_data_dir()``, or skip the test (a user's clone has no
    shared/ folder)."""
    path = benchmark_data_dir() / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the benchmark files live in the project's shared/data folder; "
                    "set SAR_DATA_DIR to a folder holding them (docs/install.md)")
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """Byte-level BPE with ChatML template; pad id != eos id."""
    return train_tokenizer(CORPUS, vocab_size=320)


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    """A random fp32 Qwen2 model (~60k parameters) matching ``tiny_tokenizer``."""
    return build_tiny_model(len(tiny_tokenizer), pad_token_id=tiny_tokenizer.pad_token_id,
                            eos_token_id=tiny_tokenizer.eos_token_id)


def sharpen(model, seed: int = 0, std: float = 0.15):
    """Re-draw the weights larger than HF's init, so log-probs and SAR differ clearly across tokens and answers."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tiny_model, tiny_tokenizer):
    """The random tiny model and tokenizer saved as a model dir that load_model / load_policy read."""
    path = tmp_path_factory.mktemp("tiny-random")
    tiny_model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def model_dir(tmp_path, tiny_model, tiny_tokenizer):
    """A fresh copy of ``tiny_dir`` for one test (it may change the files): weights, config, the project's tokenizer."""
    path = tmp_path / "model"
    tiny_model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def sharp_model(tiny_tokenizer):
    """The tiny architecture with :func:`sharpen`-ed weights (log-probs that differ across tokens); do not modify it."""
    return sharpen(build_tiny_model(len(tiny_tokenizer), pad_token_id=tiny_tokenizer.pad_token_id,
                                    eos_token_id=tiny_tokenizer.eos_token_id))


@pytest.fixture
def no_weight_loading(monkeypatch):
    """Make any weight loading fail loudly: input errors must be reported before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded before the input was validated")
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", refuse)
