"""The 16-bit generation copy (sar_lib.fast_generation): on CPU in fp32 it must compute what the
LoRA policy computes, sample the same answers, follow the adapters after an update, and leave a
training run unchanged."""

import dataclasses

import pytest
import torch

from sar_lib.fast_generation import GenerationCopy, generation_copy
from sar_lib.generation import generate
from sar_lib.grpo import train
from sar_lib.models import bnb_4bit_problem, get_profile, load_model, load_policy
from sar_lib.runs import read_completions, read_metrics
from test_grpo import TIME, small

PROMPTS = ["<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n",
           "<|im_start|>user\nTom has 5 apples.<|im_end|>\n<|im_start|>assistant\n"]


def _trained_lora(policy, seed: int = 0) -> None:
    """Give every LoRA B a random value, as training would (it starts at zero: a no-op adapter)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=generator))


def _logits(model, tokenizer) -> torch.Tensor:
    ids = tokenizer(PROMPTS[0], return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_the_copy_computes_the_policys_logits_and_greedy_answers(tiny_dir):
    policy, tokenizer = load_policy(tiny_dir, "tiny-cpu")
    _trained_lora(policy)
    fast = GenerationCopy(policy)
    assert not any(p.requires_grad for p in fast.model.parameters())
    assert not any("lora" in name for name, _ in fast.model.named_parameters())
    torch.testing.assert_close(_logits(fast.model, tokenizer), _logits(policy, tokenizer), atol=1e-5, rtol=1e-5)
    base = load_model(tiny_dir, device="cpu")[0]
    assert (_logits(base, tokenizer) - _logits(policy, tokenizer)).abs().max() > 1e-3   # the adapters matter
    plain = generate(policy, tokenizer, PROMPTS, max_new_tokens=12, do_sample=False)
    copied = generate(fast.model, tokenizer, PROMPTS, max_new_tokens=12, do_sample=False)
    assert copied.answer_ids == plain.answer_ids


def test_sync_follows_the_adapters_after_an_update(tiny_dir):
    policy, tokenizer = load_policy(tiny_dir, "tiny-cpu")
    fast = GenerationCopy(policy)
    before = _logits(fast.model, tokenizer)
    _trained_lora(policy, seed=1)   # an "update" of the LoRA weights
    assert torch.equal(_logits(fast.model, tokenizer), before)   # the copy is a snapshot until synced
    fast.sync()
    torch.testing.assert_close(_logits(fast.model, tokenizer), _logits(policy, tokenizer), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(bnb_4bit_problem("cpu") is not None, reason=f"4-bit on this CPU: {bnb_4bit_problem('cpu')}")
def test_the_copy_of_a_4bit_policy_holds_its_dequantised_weights(tiny_dir):
    profile = dataclasses.replace(get_profile("tiny-cpu"), load_in_4bit=True)
    policy, tokenizer = load_policy(tiny_dir, profile, device="cpu")
    _trained_lora(policy)
    fast = GenerationCopy(policy)
    torch.testing.assert_close(_logits(fast.model, tokenizer), _logits(policy, tokenizer), atol=1e-4, rtol=1e-4)


def test_no_copy_when_disabled_or_without_lora(tiny_dir, capsys):
    policy, _ = load_policy(tiny_dir, "tiny-cpu")
    assert generation_copy(policy, False) is None
    assert generation_copy(load_model(tiny_dir, device="cpu")[0], True) is None
    assert "no LoRA adapters" in capsys.readouterr().out
    assert get_profile("laptop-8gb").fast_generation and not get_profile("gpu-12gb").fast_generation


def test_a_run_that_samples_from_the_copy_is_the_plain_run(tiny_dir, tmp_path):
    plain = train(small(tiny_dir, tmp_path / "plain", steps=3, log_completions=True, fast_generation=False))
    fast = train(small(tiny_dir, tmp_path / "fast", steps=3, log_completions=True, fast_generation=True))
    for a, b in zip(read_completions(plain), read_completions(fast), strict=True):
        assert {k: a[k] for k in ("step", "id", "completion", "length", "correct")} == \
            {k: b[k] for k in ("step", "id", "completion", "length", "correct")}
        for key in ("shaping", "sar", "reward", "advantage"):
            assert b[key] == pytest.approx(a[key], abs=1e-5), key
    for a, b in zip(read_metrics(plain), read_metrics(fast)):
        for key in a:
            if not key.startswith(TIME):
                assert b[key] == pytest.approx(a[key], abs=1e-5), key
