"""The tiny-reasoner pretraining (a few-step run on tiny dims) and the shipped checkpoint."""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import asdict

import pytest
import torch

from sar_lib import synthetic
from sar_lib.lab.cli import main
from sar_lib.data import SYNTHETIC_SETS
from sar_lib.evaluate import evaluate
from sar_lib.models import TINY_DIR, load_model
from sar_lib.lab.pretrain import PretrainConfig, lr_factor, pretrain_tiny, train_tiny
from sar_lib.sar import prompt_text
from sar_lib.tokenizer import IM_END, IM_START

# a few seconds: 6 steps of a ~40k-parameter model, 4 items per eval set
QUICK = dict(vocab_size=300, hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64,
             corpus_size=48, steps=6, batch_size=8, warmup_steps=2, eval_items=4, eval_max_new_tokens=8,
             samples_per_item=2, drill_batch_size=4, drill_problems=40, threads=1)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "ckpt"
    card = pretrain_tiny(PretrainConfig(**QUICK), out, progress=False)
    return out, card


def test_empty_question_rows_teach_answers_under_ctx0():
    from sar_lib.lab.pretrain import _encode_pairs
    from sar_lib.sar import empty_prompt_text, encode_text
    from sar_lib.tokenizer import train_tokenizer

    pairs = synthetic.training_corpus(400, 0, logic_share=0.0)
    tokenizer = train_tokenizer([p.question + " " + t for p, t in pairs], vocab_size=300)
    config = PretrainConfig(empty_question_share=0.25, max_length=10_000)
    encoded = _encode_pairs(tokenizer, pairs, config)
    empty = encode_text(tokenizer, empty_prompt_text(tokenizer))
    share = sum(prompt == empty for prompt, _ in encoded) / len(encoded)
    assert 0.18 < share < 0.32                                      # about the asked share, seeded
    assert encoded == _encode_pairs(tokenizer, pairs, config)
    assert not any(prompt == empty for prompt, _ in _encode_pairs(tokenizer, pairs, PretrainConfig(
        empty_question_share=0.0, max_length=10_000)))


def test_drill_comparisons_ask_about_a_result_and_score_the_decision_only():
    from sar_lib.lab.pretrain import _drill_rows
    from sar_lib.tokenizer import train_tokenizer

    pairs = synthetic.training_corpus(300, 0, logic_share=0.0, claim_share=0.3)
    tokenizer = train_tokenizer([p.question + " " + t for p, t in pairs], vocab_size=300)
    plain = _drill_rows(tokenizer, PretrainConfig(drill_problems=60, drill_comparison_share=0.0))
    assert all("more than" not in tokenizer.decode(ids) for ids, _ in plain)
    mixed = _drill_rows(tokenizer, PretrainConfig(drill_problems=60, drill_comparison_share=0.5))
    assert len(mixed) == len(plain)
    texts = [tokenizer.decode(ids) for ids, _ in mixed]
    scored = [tokenizer.decode([t for t, keep in zip(ids, mask) if keep]) for ids, mask in mixed]
    comparisons = [c for text in texts for c in re.findall(r"Is (\d+) more than (\d+)\? (Yes|No)\.", text)]
    assert 0.3 < len(comparisons) / (8 * len(mixed)) < 0.7
    assert all((d == "Yes") == (int(v) > int(k)) and int(k) >= 2 for v, k, d in comparisons)
    assert {"Yes", "No"} == {d for _, _, d in comparisons}
    assert all("more than" not in s and "Is" not in s for s in scored)   # the question is context, not target
    assert sum(s.count("Yes") + s.count("No") for s in scored) == len(comparisons)


def test_quick_run_writes_a_loadable_checkpoint_and_card(quick_run):
    out, card = quick_run
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
                 "tokenizer_config.json", "card.json", "MODEL_CARD.md"):
        assert (out / name).is_file(), name
    assert json.loads((out / "card.json").read_text()) == json.loads(json.dumps(card))
    assert card["steps_done"] == QUICK["steps"] and len(card["loss_history"]) == QUICK["steps"]
    assert card["config"]["seed"] == 0 and card["n_parameters"] > 0
    for name in ("arith-test", "symbolic-test", "logic-test"):
        assert card["eval"][name]["n"] == QUICK["eval_items"]
        assert 0.0 <= card["eval"][name]["accuracy"] <= 1.0
    premises = card["premises"]
    assert premises["n_problems"] == QUICK["eval_items"] and premises["samples_per_item"] == QUICK["samples_per_item"]
    for key in ("P1_marginal", "P2_harmless_verbosity", "P3_room_to_cut", "P4_too_short_exists", "P5_room_for_rl"):
        assert isinstance(premises[key]["holds"], bool), key
    text = (out / "MODEL_CARD.md").read_text()
    assert card["command"] in text and "logic-test" in text and "P3 room to cut" in text
    model, tokenizer = load_model(str(out))
    assert model.config.eos_token_id == tokenizer.eos_token_id != tokenizer.pad_token_id
    report = evaluate(model, tokenizer, SYNTHETIC_SETS["arith-test"](4, 0), max_new_tokens=8,
                      progress=False)
    assert report["accuracy"] == card["eval"]["arith-test"]["accuracy"]   # greedy on the reloaded weights


def test_loss_goes_down_and_training_is_deterministic():
    config = PretrainConfig(**QUICK)
    model_a, _, info_a = train_tiny(config, progress=False)
    model_b, _, info_b = train_tiny(config, progress=False)
    assert info_a["loss_history"] == info_b["loss_history"]
    assert all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()))
    assert info_a["loss_history"][-1] < info_a["loss_history"][0]
    _, _, info_c = train_tiny(PretrainConfig(**{**QUICK, "seed": 1}), progress=False)
    assert info_c["loss_history"] != info_a["loss_history"]


def test_time_cap_stops_early():
    _, _, info = train_tiny(PretrainConfig(**{**QUICK, "max_minutes": 1e-9}), progress=False)
    assert info["stopped_by_time"] and info["steps_done"] == 0


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    config = PretrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, config) == pytest.approx(0.1)
    assert lr_factor(9, config) == pytest.approx(1.0)
    assert lr_factor(10, config) == pytest.approx(1.0)
    assert lr_factor(100, config) == pytest.approx(0.1)
    assert lr_factor(55, config) == pytest.approx(0.55)


@pytest.mark.parametrize("field, value", [("steps", 0), ("hidden_size", 31), ("learning_rate", 0.0),
                                          ("max_minutes", -1.0), ("batch_size", 2.5), ("min_lr_ratio", 2.0)])
def test_bad_config_raises(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        PretrainConfig(**{field: value}).validate()


def test_refuses_a_foreign_non_empty_out_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        pretrain_tiny(PretrainConfig(**QUICK), tmp_path, progress=False)


@pytest.mark.parametrize("argv, message", [(["--steps", "0"], "steps"), (["--max-minutes", "-2"], "max_minutes"),
                                           (["--seed", "-1"], "seed")])
def test_cli_bad_args_exit_2(argv, message, tmp_path, capsys):
    assert main(["pretrain-tiny", "--out", str(tmp_path / "x"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sar pretrain-tiny: error:") and message in err
    assert not (tmp_path / "x").exists()


def test_cli_refuses_an_out_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("")
    assert main(["pretrain-tiny", "--out", str(target), "--steps", "1"]) == 2
    assert "is a file" in capsys.readouterr().err


# ---------------------------------------------------------------- the shipped checkpoint
@pytest.fixture(scope="module")
def shipped():
    model, tokenizer = load_model("tiny", device="cpu")
    card = json.loads((TINY_DIR / "card.json").read_text())
    return model, tokenizer, card


def test_shipped_checkpoint_is_small_and_documented(shipped):
    _, _, card = shipped
    assert (TINY_DIR / "model.safetensors").stat().st_size <= 20 * 1024 * 1024
    assert (TINY_DIR / "MODEL_CARD.md").is_file()
    assert card["command"] and 1e6 <= card["n_parameters"] <= 10e6
    assert set(card["eval"]) >= {"arith-test", "symbolic-test", "logic-test"}


def test_shipped_checkpoint_was_made_by_the_command_within_its_budget(shipped):
    _, _, card = shipped
    # the defaults are the shipped model's, so the plain command rebuilds it
    assert card["config"] == asdict(PretrainConfig())
    assert card["command"] == "sar pretrain-tiny --out sar_lib/assets/tiny" and card["total_seconds"] <= 45 * 60
    assert card["steps_done"] == card["config"]["steps"] and not card["stopped_by_time"]
    assert card["eval"]["symbolic-test"]["accuracy"] > 0.0


@pytest.mark.parametrize("premise", ["P1_marginal", "P2_harmless_verbosity", "P3_room_to_cut", "P4_too_short_exists",
                                     "P5_room_for_rl"])
def test_shipped_checkpoint_meets_sars_premises_as_its_card_says(shipped, premise):
    _, _, card = shipped
    assert card["premises"][premise]["holds"], card["premises"][premise]


@pytest.mark.xfail(strict=True, reason="the shipped model answers logic-test at chance (its figure: eval in "
                   "sar_lib/assets/tiny/card.json): the lookup by name it needs is not learnable in a 45-minute CPU "
                   "pretraining (docs/logic_attempts.md). A model that learns it (e.g. pretrained on a GPU) makes "
                   "this XPASS, and fail: then make it a plain test")
def test_shipped_checkpoint_reaches_the_logic_target(shipped):
    _, _, card = shipped
    assert card["eval"]["logic-test"]["n"] >= 200 and card["eval"]["logic-test"]["accuracy"] >= 0.60


def test_shipped_checkpoint_answers_the_claim_family(shipped):
    _, _, card = shipped
    claim = card["eval"]["claim-test"]
    assert claim["n"] >= 200 and claim["accuracy"] >= 0.65
    # one-sided binomial test against chance (True/False: 1/2), the p < 0.01
    correct = round(claim["accuracy"] * claim["n"])
    p_value = sum(math.comb(claim["n"], k) for k in range(correct, claim["n"] + 1)) / 2 ** claim["n"]
    assert p_value < 0.01


def test_shipped_tokenizer_round_trips_and_has_the_chat_template(shipped):
    _, tokenizer, _ = shipped
    rng = random.Random(0)
    texts = [p.question for p in synthetic.arithmetic_problems(5, 3, split="test")] + [
        synthetic.solution(p, "verbose", rng) for p in synthetic.arithmetic_problems(5, 4)] + [
        "Zyx qüé 12345 + 678 = 13023!\n\tOK", ""]
    for text in texts:
        assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    assert tokenizer.eos_token == IM_END and tokenizer.pad_token_id != tokenizer.eos_token_id
    prompt = prompt_text(tokenizer, "What is 2 + 3?")
    assert prompt.startswith(f"{IM_START}system\n") and prompt.endswith(f"{IM_START}assistant\n")
    assert "What is 2 + 3? Please explain your reasoning process" in prompt
    digits = tokenizer.convert_ids_to_tokens(tokenizer("12345", add_special_tokens=False)["input_ids"])
    assert digits == list("12345")


@pytest.mark.slow
def test_shipped_model_scores_held_out_items_as_its_card_says(shipped):
    model, tokenizer, card = shipped
    problems = SYNTHETIC_SETS["arith-test"](40, card["config"]["seed"])
    report = evaluate(model, tokenizer, problems, max_new_tokens=card["config"]["eval_max_new_tokens"],
                      batch_size=20, progress=False)
    assert abs(report["accuracy"] - card["eval"]["arith-test"]["accuracy"]) <= 0.2
    assert report["truncation_rate"] <= 0.1
