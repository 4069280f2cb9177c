import dataclasses
import json
import time
from pathlib import Path

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

import sar_lib.models as models
from sar_lib.generation import generate
from sar_lib.models import PROFILES, bnb_4bit_problem, get_profile, load_model, load_policy, parameter_counts

CONFIGS = Path(models.__file__).parent / "configs"


# ---------------------------------------------------------------- profiles
def test_profiles_exist_with_the_promised_models():
    assert set(PROFILES) == {"tiny-cpu", "laptop-8gb", "gpu-12gb"}
    tiny, laptop, gpu = (get_profile(n) for n in ("tiny-cpu", "laptop-8gb", "gpu-12gb"))
    assert (tiny.model, tiny.load_in_4bit) == ("tiny", False)
    assert (laptop.model, laptop.load_in_4bit, laptop.lora_r) == ("Qwen/Qwen2.5-0.5B-Instruct", True, 16)
    assert (gpu.model, gpu.load_in_4bit, gpu.lora_r) == ("Qwen/Qwen2.5-1.5B-Instruct", True, 16)
    for name, profile in PROFILES.items():
        assert profile.name == name and profile.description
        assert profile.group_size == 6 and profile.lora_dropout == 0.0
        assert 512 <= profile.max_new_tokens <= 1024 or name == "tiny-cpu"
        assert profile.questions_per_step * profile.group_size >= profile.micro_batch_size


@pytest.mark.parametrize("field, value", [("group_size", 1), ("lora_r", 0), ("lora_dropout", 1.0),
                                          ("learning_rate", 0.0), ("target_modules", ()),
                                          ("micro_batch_size", 0)])
def test_profile_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(get_profile("tiny-cpu"), **{field: value})


def test_profiles_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_profile("tiny-cpu").group_size = 8


def test_unknown_profile_lists_valid_names(model_dir, no_weight_loading):
    with pytest.raises(ValueError, match="tiny-cpu, laptop-8gb, gpu-12gb"):
        get_profile("laptop-4gb")
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        load_policy(str(model_dir), "nope")


# ---------------------------------------------------------------- shipped Qwen2.5 shapes
@pytest.mark.parametrize("name, hidden, layers, heads, params", [
    ("qwen2.5-0.5b-instruct", 896, 24, 14, 494_032_768),
    ("qwen2.5-1.5b-instruct", 1536, 28, 12, 1_543_714_304),
])
def test_qwen_configs_give_the_hub_models_shapes(name, hidden, layers, heads, params):
    raw = json.loads((CONFIGS / f"{name}.json").read_text())
    assert raw["vocab_size"] == 151936 and raw["tie_word_embeddings"] is True
    assert raw["eos_token_id"] == 151645 and raw["num_key_value_heads"] == 2
    config = Qwen2Config.from_json_file(str(CONFIGS / f"{name}.json"))
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (hidden, layers, heads)
    with torch.device("meta"):  # shapes only, no memory
        model = Qwen2ForCausalLM(config)
    # the parameter counts the Qwen2.5 model cards state (0.49B / 1.54B, embeddings tied)
    assert sum(p.numel() for p in model.parameters()) == params


# ---------------------------------------------------------------- loading
def test_load_model_from_a_local_dir(model_dir, tiny_model, tiny_tokenizer):
    model, tok = load_model(str(model_dir), device="cpu")
    assert type(tok) is type(tiny_tokenizer)  # not rebuilt as Qwen2Tokenizer
    assert tok.padding_side == "left" and tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id
    text = "Tom has 1234 apples."
    assert tok(text)["input_ids"] == tiny_tokenizer(text)["input_ids"]
    assert tok.chat_template == tiny_tokenizer.chat_template
    assert not model.training and next(model.parameters()).dtype == torch.float32
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, tiny_model(ids).logits)


def test_load_model_uses_autotokenizer_for_other_tokenizers(tmp_path, model_dir):
    from transformers import AutoTokenizer
    qwen_style = AutoTokenizer.from_pretrained(str(model_dir))  # what a hub Qwen dir holds
    assert type(qwen_style).__name__ == "Qwen2Tokenizer"
    qwen_style.pad_token = None
    qwen_style.padding_side = "right"
    qwen_style.save_pretrained(model_dir)
    _, tok = load_model(str(model_dir), device="cpu")
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert tok.padding_side == "left" and tok.pad_token == tok.eos_token  # pad falls back to eos


def test_model_dir_without_tokenizer_fails_before_loading(tmp_path, tiny_model, no_weight_loading):
    tiny_model.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"has no tokenizer .*tokenizer.save_pretrained"):
        load_model(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="has no tokenizer"):
        load_policy(str(tmp_path), "tiny-cpu")


def test_model_dir_errors(tmp_path, no_weight_loading):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_model(str(tmp_path / "missing"))


def test_hub_name_fails_fast_offline(monkeypatch, tmp_path, no_weight_loading):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)  # no local dir of that name
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match=r"not in the local Hugging Face cache.*--model DIR"):
        load_model("sar-tests/no-such-model")
    assert time.monotonic() - start < 10


def test_tiny_without_checkpoint_says_how_to_make_one(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "TINY_DIR", tmp_path / "tiny")
    with pytest.raises(FileNotFoundError, match="sar pretrain-tiny"):
        load_model("tiny")


def test_load_model_loads_the_shipped_tiny_checkpoint():
    model, tok = load_model("tiny", device="cpu")
    assert type(tok).__name__ != "Qwen2Tokenizer" and tok.padding_side == "left"
    assert model.config.vocab_size >= len(tok) and not model.training
    counts = parameter_counts(model)
    assert counts["trainable"] == counts["total"] and 1e6 < counts["total"] < 5e6 * 4  # "a few million"


# ---------------------------------------------------------------- policies
def _lm_step(model, ids, optimizer):
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def test_load_policy_lora_fp32_on_cpu(model_dir, tiny_model, tiny_tokenizer):
    model, tok = load_policy(str(model_dir), "tiny-cpu", device="cpu")
    counts = parameter_counts(model)
    base = parameter_counts(tiny_model)["total"]
    assert counts["total"] == base + counts["trainable"] and 0 < counts["trainable"] < base
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert any("down_proj" in n for n in trainable) and any("q_proj" in n for n in trainable)
    ids = torch.tensor([tok("Tom has 3 apples.")["input_ids"]])
    with torch.no_grad():  # B = 0 at init: the policy starts as the base model
        torch.testing.assert_close(model(ids).logits, tiny_model(ids).logits)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = [_lm_step(model, ids, optimizer) for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(losses)))


def test_4bit_without_usable_bitsandbytes_fails_early(monkeypatch, model_dir, no_weight_loading):
    monkeypatch.setattr(models, "bnb_4bit_problem", lambda device: "no kernel for this device")
    with pytest.raises(ValueError, match=r"asks for 4-bit weights.*no kernel for this device.*load_in_4bit=False"):
        load_policy(str(model_dir), "laptop-8gb", device="cpu")


def test_qlora_on_cpu_trains_after_an_eval_forward(model_dir, tiny_tokenizer):
    """The bitsandbytes workaround: generation (eval mode, no grad) must not break the next update."""
    import bitsandbytes as bnb
    problem = bnb_4bit_problem("cpu")
    if problem is not None:
        pytest.skip(f"bitsandbytes 4-bit unusable on this CPU: {problem}")
    profile = get_profile("laptop-8gb")  # 4-bit NF4 + LoRA r=16 + gradient checkpointing
    model, tok = load_policy(str(model_dir), profile, device="cpu")
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 7 * 2 and not any(m.support_avx512bf16_for_cpu for m in layers)
    counts = parameter_counts(model)
    assert counts["total"] > counts["trainable"] > 0

    prompt = tok.apply_chat_template([{"role": "user", "content": "Tom has 3 apples."}], tokenize=False,
                                     add_generation_prompt=True)
    generate(model, tok, [prompt], max_new_tokens=4, do_sample=False)  # eval-mode forwards
    model.train()
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.tensor([tok("Tom has 3 apples. 3 + 5 = 8.")["input_ids"]])
    losses = [_lm_step(model, ids, optimizer) for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(losses)))
    changed = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(lora[n], p)]
    assert len(changed) == len(lora)


def test_check_device_accepts_cpu_and_the_visible_gpus_only():
    models.check_device("cpu")
    for bad in ("mps", "gpu", "cuda0"):
        with pytest.raises(ValueError, match="'cpu' or 'cuda'"):
            models.check_device(bad)
    if torch.cuda.is_available():
        models.check_device("cuda:0")
        with pytest.raises(ValueError, match="CUDA GPU\\(s\\); pass --device cuda"):
            models.check_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            models.check_device("cuda:0")


def test_cuda_requested_without_a_gpu_fails_early(model_dir, no_weight_loading):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible")
    with pytest.raises(ValueError, match="no CUDA GPU.*--device cpu"):
        load_model(str(model_dir), device="cuda")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        load_policy(str(model_dir), "tiny-cpu", device="cuda")
