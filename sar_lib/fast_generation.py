"""A 16-bit generation copy of a LoRA policy, kept in sync with its adapters: faster rollouts.

Sampling is most of a GRPO step on a GPU (the GPU check: 32 of 38 s on the 0.5B shape), and from a
4-bit policy every token pays for bitsandbytes' dequantisation in each of its ~170 linear layers
and for peft's extra LoRA matmuls. The copy is a plain model of the same architecture whose weights
are the policy's effective ones, every LoRA layer merged:

    W_copy = dequant(W_base) + (alpha / r) * B A        (peft's ``get_delta_weight``)

in bf16 on CUDA (fp32 on CPU, and for a policy whose weights are all fp32).
:meth:`GenerationCopy.sync` rewrites them from the policy before a step samples, so the copy samples from the policy that the step then scores and updates: the same
distribution up to the copy's rounding (on CPU in fp32: the same greedy answers, tested). It costs
the model's size again in memory (0.5B: +1 GB; 1.5B: +3 GB), which is why of the GPU profiles only
laptop-8gb turns it on (``GRPOConfig.fast_generation``); tiny-cpu does too (7 MB, and 1.2x faster).
"""

from __future__ import annotations

import copy

import torch


def _dense(param) -> torch.Tensor:
    """A weight as a plain tensor: bitsandbytes' 4-bit weights dequantised."""
    if type(param).__name__ == "Params4bit":
        import bitsandbytes as bnb

        return bnb.functional.dequantize_4bit(param.data, param.quant_state)
    return param.data


def _effective(module, attr: str) -> torch.Tensor:
    """``module.<attr>`` as the policy computes with it: a LoRA layer's weight is its base weight plus
    the delta of every active adapter."""
    if hasattr(module, "base_layer") and hasattr(module, "lora_A"):
        value = _dense(getattr(module.base_layer, attr))
        if attr == "weight":
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    value = value + module.get_delta_weight(adapter).to(value.dtype)
        return value
    return _dense(getattr(module, attr))


def fp32_weights(model) -> bool:
    """Whether every weight of ``model`` is fp32 (no 4-bit, bf16 or fp16 ones): then its numbers are the
    policy's to float rounding, whichever copy computes them."""
    return all(p.dtype == torch.float32 for p in model.parameters())


class GenerationCopy:
    """The policy's effective weights in a plain model (``.model``) that samples in its place."""

    def __init__(self, policy, *, dtype: torch.dtype | None = None):
        from transformers import AutoModelForCausalLM

        self.policy = policy
        base = policy.get_base_model()
        device = policy.get_input_embeddings().weight.device
        # an fp32 policy (the tiny model) keeps fp32: its copy then gives the policy's own log-probs
        dtype = dtype or (torch.bfloat16 if device.type == "cuda" and not fp32_weights(policy) else torch.float32)
        config = copy.deepcopy(base.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        with torch.device(device):
            self.model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        self.model.generation_config = copy.deepcopy(base.generation_config)
        self.model.requires_grad_(False)
        self.model.eval()
        self.sync()

    @torch.no_grad()
    def sync(self) -> None:
        """Copy the policy's effective weights (LoRA merged) into the copy."""
        sources = dict(self.policy.get_base_model().named_modules())
        for name, param in self.model.named_parameters():
            path, _, attr = name.rpartition(".")
            param.copy_(_effective(sources[path], attr))


def generation_copy(policy, enabled: bool) -> GenerationCopy | None:
    """A :class:`GenerationCopy` of ``policy`` when ``enabled`` and possible; otherwise None, after
    one line saying why the policy samples itself (a policy without LoRA adapters has nothing to merge)."""
    if not enabled:
        return None
    if not hasattr(policy, "get_base_model"):
        print("fast_generation: the policy has no LoRA adapters; it samples its answers itself", flush=True)
        return None
    return GenerationCopy(policy)
