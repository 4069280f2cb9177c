"""sar_lib.integrations.trl: SAR and the baselines as TRL GRPOTrainer reward functions (CPU, tiny model)."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
from conftest import sharpen

pytest.importorskip("trl")
from datasets import Dataset  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from sar_lib import rewards, sar  # noqa: E402
from sar_lib.integrations import trl as sar_trl  # noqa: E402
from sar_lib.perplexity import answer_logprobs, pack_sequences  # noqa: E402

QA = [
    ("Tom has 3 apples and buys 5 more. How many apples does Tom have now?", "8"),
    ("Mia reads 12 pages a day for 4 days. How many pages?", "48"),
    ("Every wumpus is a yumpus. Max is a wumpus. Is Max a yumpus?", "True"),
    ("Tom has 3 apples and eats 1. How many apples does Tom have now?", "2"),
]
ANSWERS = ["Tom has 3 + 5 = 8 apples. The answer is 8.", "12 * 4 = 48 pages. The answer is 48.",
           "The answer is 7.", "", "3 + 5 = 8. 3 + 5 = 8. 3 + 5 = 8.", "True."]


@pytest.fixture()
def model(tiny_model):
    return sharpen(copy.deepcopy(tiny_model))


def make_trainer(model, tokenizer, reward_funcs, tmp_path, *, conversational=True, peft_config=None, **config):
    rows = [{"prompt": sar_trl.paper_messages(q) if conversational else sar.prompt_text(tokenizer, q),
             "question": q, "answer": a} for q, a in QA]
    args = dict(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=6, num_generations=3,
                max_completion_length=12, bf16=False, gradient_checkpointing=False, use_cpu=True, report_to="none",
                logging_steps=1, save_strategy="no", seed=0, learning_rate=1e-3)
    args.update(config)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=GRPOConfig(**args),
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=peft_config)
    return sar_trl.attach(trainer)


def call(reward, tokenizer, questions, answers, *, conversational=True, **columns):
    """Call a reward the way GRPOTrainer._calculate_rewards does, on (question, answer text) pairs."""
    prompts = [sar_trl.paper_messages(q) if conversational else sar.prompt_text(tokenizer, q) for q in questions]
    completions = [[{"role": "assistant", "content": a}] if conversational else a for a in answers]
    ids = [sar.answer_ids(tokenizer, a) for a in answers]
    logged = {}
    out = reward(prompts=prompts, completions=completions, completion_ids=ids, trainer_state=None,
                 log_extra=lambda *a: None, log_metric=logged.__setitem__, **columns)
    return out, logged


# ---------------------------------------------------------------- a real GRPO run
def test_grpo_trainer_two_steps_with_correctness_and_sar(model, tiny_tokenizer, tmp_path):
    sar_reward = sar_trl.SARReward(batch_size=4)
    trainer = make_trainer(model, tiny_tokenizer, [sar_trl.correctness_reward(), sar_reward], tmp_path,
                           reward_weights=[1.0, 0.2])
    assert sar_reward.trainer is trainer
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    steps = [log for log in trainer.state.log_history if "rewards/sar/mean" in log]
    assert [log["step"] for log in steps] == [1, 2]
    for log in steps:
        assert math.isfinite(log["rewards/sar/mean"]) and -1.0 <= log["rewards/sar/mean"] < 1.0
        assert 0.0 <= log["rewards/correctness/mean"] <= 1.0
        assert math.isfinite(log["sar/ppl_qa"]) and log["sar/ppl_qa"] >= 1.0
        assert math.isfinite(log["sar/ppl_a"]) and log["sar/ppl_a"] >= 1.0
        # TRL sums the weighted rewards: reward = 1.0 * correctness + 0.2 * sar (on average too).
        assert log["reward"] == pytest.approx(log["rewards/correctness/mean"] + 0.2 * log["rewards/sar/mean"],
                                              abs=1e-5)
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.model.parameters())), "no update happened"


# ---------------------------------------------------------------- SAR == sar.score_answers
@pytest.mark.parametrize("conversational", [True, False])
@pytest.mark.parametrize("variant", ["ppl", "log"])
def test_sar_reward_equals_score_answers(model, tiny_tokenizer, tmp_path, conversational, variant):
    reward = sar_trl.SARReward(variant=variant, batch_size=3)
    trainer = make_trainer(model, tiny_tokenizer, [reward], tmp_path, conversational=conversational)
    questions = [QA[i % len(QA)][0] for i in range(len(ANSWERS))]
    trainer.model.train()
    got, logged = call(reward, tiny_tokenizer, questions, ANSWERS, conversational=conversational)
    assert trainer.model.training, "the trainer's train/eval mode must be restored"
    want = sar.score_answers(trainer.model, tiny_tokenizer, questions, ANSWERS, variant=variant)
    assert got == pytest.approx([w["sar"] for w in want], abs=1e-5)
    assert len(set(round(g, 4) for g in got)) > 3, "SAR should differ between answers"
    assert logged["sar/ppl_qa"] == pytest.approx(sum(w["ppl_qa"] for w in want) / len(want), rel=1e-5)
    assert logged["sar/ppl_a"] == pytest.approx(sum(w["ppl_a"] for w in want) / len(want), rel=1e-5)


def test_contexts_are_the_generation_prompt_and_the_empty_turn(model, tiny_tokenizer, tmp_path):
    reward = sar_trl.SARReward()
    make_trainer(model, tiny_tokenizer, [reward], tmp_path)
    q = QA[0][0]
    other_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q}]
    ctx_q, ctx_0 = reward.contexts([sar_trl.paper_messages(q), other_system])
    assert ctx_q[0] == sar.encode_text(tiny_tokenizer, sar.prompt_text(tiny_tokenizer, q))
    assert ctx_0[0] == sar.encode_text(tiny_tokenizer, sar.empty_prompt_text(tiny_tokenizer))
    # ctx(0) keeps each prompt's own system message.
    assert ctx_0[1] == sar.encode_text(tiny_tokenizer, sar.empty_prompt_text(tiny_tokenizer, system_prompt="Be brief."))


def test_sar_reward_follows_the_current_weights(model, tiny_tokenizer, tmp_path):
    reward = sar_trl.SARReward()
    trainer = make_trainer(model, tiny_tokenizer, [reward], tmp_path)
    questions = [QA[0][0]] * 3
    before, _ = call(reward, tiny_tokenizer, questions, ANSWERS[:3])
    sharpen(trainer.model, seed=1)
    after, _ = call(reward, tiny_tokenizer, questions, ANSWERS[:3])
    assert after != pytest.approx(before, abs=1e-4)
    want = sar.score_answers(trainer.model, tiny_tokenizer, questions, ANSWERS[:3])
    assert after == pytest.approx([w["sar"] for w in want], abs=1e-5)


# ---------------------------------------------------------------- R_EM and self-certainty
def test_em_and_self_certainty_rewards(model, tiny_tokenizer, tmp_path):
    em, certainty = sar_trl.EntropyMinimisationReward(batch_size=2), sar_trl.SelfCertaintyReward(batch_size=4)
    trainer = make_trainer(model, tiny_tokenizer, [em, certainty], tmp_path)
    questions = [QA[i % len(QA)][0] for i in range(len(ANSWERS))]
    got_em, _ = call(em, tiny_tokenizer, questions, ANSWERS)
    want = sar.score_answers(trainer.model, tiny_tokenizer, questions, ANSWERS)
    assert got_em == pytest.approx([-w["nll_qa"] for w in want], abs=1e-5)

    got_c, _ = call(certainty, tiny_tokenizer, questions, ANSWERS)
    contexts = [sar.encode_text(tiny_tokenizer, sar.prompt_text(tiny_tokenizer, q)) for q in questions]
    batch = pack_sequences(contexts, [sar.answer_ids(tiny_tokenizer, a) for a in ANSWERS], tiny_tokenizer.pad_token_id)
    with torch.no_grad():
        scores = answer_logprobs(trainer.model, batch, with_certainty=True)
    want_c = (scores.certainty * batch.answer_mask).sum(-1) / batch.answer_mask.sum(-1)
    assert got_c == pytest.approx(want_c.tolist(), abs=1e-5)
    assert all(c > 0 for c in got_c)  # KL(U || pi) > 0 for a non-uniform pi


# ---------------------------------------------------------------- group rewards
def test_group_rewards_group_consecutive_num_generations(model, tiny_tokenizer, tmp_path):
    o1 = sar_trl.O1PrunerReward()
    er = sar_trl.EfficientReasonerReward(gold_key="answer")
    trainer = make_trainer(model, tiny_tokenizer, [o1, er], tmp_path, num_generations=3, num_generations_eval=2)
    questions = [QA[0][0]] * 3 + [QA[1][0]] * 3
    answers = ["The answer is 8.", "3 + 5 = 8 so the answer is 8.", "It is 9.",
               "48.", "12 * 4 = 48. The answer is 48.", "12 * 4 = 48 pages, so 48 pages."]
    golds = ["8"] * 3 + ["48"] * 3
    lengths = torch.tensor([len(sar.answer_ids(tiny_tokenizer, a)) for a in answers], dtype=torch.float32)
    correct = torch.tensor([True, True, False, True, True, True])

    trainer.model.train()  # training: groups of num_generations = 3
    got, _ = call(o1, tiny_tokenizer, questions, answers)
    assert got == pytest.approx(torch.cat([rewards.o1_pruner(lengths[:3]), rewards.o1_pruner(lengths[3:])]).tolist())
    assert got != pytest.approx(rewards.o1_pruner(lengths).tolist())  # not one group over the whole batch
    got, _ = call(er, tiny_tokenizer, questions, answers, answer=golds)
    want = torch.cat([rewards.efficient_reasoner(lengths[:3], correct[:3]),
                      rewards.efficient_reasoner(lengths[3:], correct[3:])])
    assert got == pytest.approx(want.tolist())
    assert got[2] == 0.0 and any(g != 0.0 for g in got)

    trainer.model.eval()  # evaluation: groups of num_generations_eval = 2
    q4, a4 = [QA[0][0]] * 2 + [QA[1][0]] * 2, answers[:2] + answers[3:5]
    got, _ = call(o1, tiny_tokenizer, q4, a4)
    l4 = torch.cat([lengths[:2], lengths[3:5]])
    assert got == pytest.approx(torch.cat([rewards.o1_pruner(l4[:2]), rewards.o1_pruner(l4[2:])]).tolist())

    trainer.model.train()
    with pytest.raises(ValueError, match="not a multiple of num_generations=3"):
        call(o1, tiny_tokenizer, questions[:4], answers[:4])
    with pytest.raises(ValueError, match="do not share one prompt"):
        call(o1, tiny_tokenizer, [QA[0][0]] * 2 + [QA[1][0]] * 4, answers)


def test_correctness_reward(tiny_tokenizer):
    reward = sar_trl.correctness_reward(gold_key="gold")
    assert reward.__name__ == "correctness"
    got, _ = call(reward, tiny_tokenizer, [QA[0][0]] * 3, ["The answer is 8.", "It is 9.", ""], gold=["8", "8", 8])
    assert got == [1.0, 0.0, 0.0]
    got, _ = call(reward, tiny_tokenizer, [QA[0][0]], ["so \\boxed{8}"], conversational=False, gold=[8])
    assert got == [1.0]
    with pytest.raises(ValueError, match="column 'gold'"):
        call(reward, tiny_tokenizer, [QA[0][0]], ["8"], answer=["8"])


# ---------------------------------------------------------------- errors
def test_clear_errors(tiny_tokenizer):
    with pytest.raises(ValueError, match="unknown SAR variant"):
        sar_trl.SARReward(variant="nope")
    with pytest.raises(ValueError, match="batch_size"):
        sar_trl.SARReward(batch_size=0)
    with pytest.raises(ValueError, match="kind"):
        sar_trl.correctness_reward(kind="essay")
    reward = sar_trl.SARReward()
    assert reward.__name__ == "sar"
    with pytest.raises(ValueError, match="not attached"):
        call(reward, tiny_tokenizer, [QA[0][0]], ["8"])
    # Set-ups whose prompts or model the policy rewards cannot reproduce fail at attach time.
    with pytest.raises(ValueError, match="text-only"):
        reward.attach(SimpleNamespace(processing_class=object()))
    with pytest.raises(ValueError, match="tool calling"):
        reward.attach(SimpleNamespace(processing_class=tiny_tokenizer, tools=[len]))
    with pytest.raises(ValueError, match="FSDP"):
        reward.attach(SimpleNamespace(processing_class=tiny_tokenizer, is_fsdp_enabled=True))
    assert sar_trl.O1PrunerReward().attach(SimpleNamespace(tools=[len])) is not None  # needs no policy


# ---------------------------------------------------------------- LoRA policy
def test_lora_policy_scores_with_adapters_enabled(model, tiny_tokenizer, tmp_path):
    peft = pytest.importorskip("peft")
    reward = sar_trl.SARReward()
    trainer = make_trainer(model, tiny_tokenizer, [sar_trl.correctness_reward(), reward], tmp_path,
                           reward_weights=[1.0, 0.2], max_steps=1,
                           peft_config=peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    assert isinstance(trainer.model, peft.PeftModel)
    trainer.train()
    assert [log["step"] for log in trainer.state.log_history if "rewards/sar/mean" in log] == [1]
    # Make the adapters matter, then check the reward is the adapted policy's SAR.
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    questions = [QA[i % len(QA)][0] for i in range(len(ANSWERS))]
    got, _ = call(reward, tiny_tokenizer, questions, ANSWERS)
    with_adapters = [w["sar"] for w in sar.score_answers(trainer.model, tiny_tokenizer, questions, ANSWERS)]
    with trainer.model.disable_adapter():
        without = [w["sar"] for w in sar.score_answers(trainer.model, tiny_tokenizer, questions, ANSWERS)]
    assert got == pytest.approx(with_adapters, abs=1e-5)
    assert got != pytest.approx(without, abs=1e-3)
