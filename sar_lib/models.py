"""Models: the embedded tiny reasoner, real hub models, and the hardware profiles.

(The profiles and ``load_policy`` are filled in by the embedded-default work.)
"""

from __future__ import annotations

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def build_tiny_model(vocab_size: int, *, hidden_size: int = 64, num_layers: int = 2,
                     num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 128,
                     max_positions: int = 512, seed: int = 0, pad_token_id: int | None = None,
                     eos_token_id: int | None = None) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2-architecture causal LM (fp32), deterministic by ``seed``."""
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.eval()
    return model
