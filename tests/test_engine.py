"""The rollout engine (sar_lib.engine) and the shared-prompt passes (sar_lib.perplexity): they must sample
pi exactly and compute today's numbers. Checked on the shipped tiny model, on a random Qwen2 model and on
a random Qwen3 model with the real Qwen3 tokenizer: greedy answers identical to transformers' generate,
sampled log-probs equal to the scorer's, the same seed giving the same rollouts, eos suppression,
nucleus sampling, shared-prompt scores equal to full sequences, and a GRPO update whose loss and
gradients equal the full-sequence update's."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sar_lib import engine
from sar_lib.generation import generate
from sar_lib.grpo import group_advantages, setup_training
from sar_lib.grpo_config import GRPOConfig
from sar_lib.models import load_model
from sar_lib.perplexity import score_answer_ids, score_answers_after_prompts
from sar_lib.policy_gradient import sample_and_score, sampled_scores, update_policy
from sar_lib.problem import Problem
from sar_lib.sar import prompt_text
from test_qwen3_tokenizer import QUESTIONS, qwen3, qwen3_dir  # noqa: F401  (fixtures)

ARITHMETIC = ["Tom has 3 apples and buys 5 more. How many apples does Tom have now?",
              "Mia reads 12 pages a day for 4 days. How many pages does she read?",
              "A box holds 7 pens. How many pens are in 6 boxes?",
              "Sam had 20 stickers and gave away 9. How many are left?"]


@pytest.fixture(scope="module")
def shipped():
    return load_model("tiny", device="cpu")


def _prompts(tokenizer, questions=ARITHMETIC) -> list[str]:
    return [prompt_text(tokenizer, q) for q in questions]


def _max_logprob_gap(model, tokenizer, rollouts) -> float:
    scores = score_answer_ids(model, rollouts.prompt_ids, rollouts.answer_ids, pad_token_id=tokenizer.pad_token_id)
    return max(float((scores.logprobs[k, :len(a)] - torch.tensor(rollouts.logprobs[k])).abs().max())
               for k, a in enumerate(rollouts.answer_ids))


@pytest.mark.parametrize("batch_size", [1, 3])
def test_greedy_answers_are_generates_on_the_shipped_model(shipped, batch_size):
    model, tokenizer = shipped
    prompts = _prompts(tokenizer)
    reference = generate(model, tokenizer, prompts, max_new_tokens=96, do_sample=False, batch_size=batch_size)
    got = engine.sample(model, tokenizer, prompts, max_new_tokens=96, do_sample=False, batch_size=batch_size)
    assert got.answer_ids == reference.answer_ids
    assert got.truncated == reference.truncated
    assert got.prompt_ids == reference.prompt_ids
    assert len(set(map(len, got.answer_ids))) > 1    # the answers end at different tokens: compaction ran


def test_greedy_answers_are_generates_with_the_real_qwen3_tokenizer(qwen3):  # noqa: F811
    model, tokenizer = qwen3
    prompts = _prompts(tokenizer, QUESTIONS)
    reference = generate(model, tokenizer, prompts, max_new_tokens=24, do_sample=False)
    got = engine.sample(model, tokenizer, prompts, max_new_tokens=24, do_sample=False)
    assert got.answer_ids == reference.answer_ids and got.truncated == reference.truncated


def test_sampled_logprobs_are_the_scorers_and_a_seed_fixes_the_rollouts(shipped):
    model, tokenizer = shipped
    prompts = _prompts(tokenizer)
    draws = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        draws.append(engine.sample(model, tokenizer, prompts, max_new_tokens=160, do_sample=True,
                                   num_return_sequences=6, batch_size=4))
    first, again, other = draws
    assert first.answer_ids == again.answer_ids and first.logprobs == again.logprobs
    assert first.answer_ids != other.answer_ids
    assert [len(lp) for lp in first.logprobs] == first.lengths
    assert first.prompt_ids[::6] == reference_prompt_ids(tokenizer, prompts)
    assert _max_logprob_gap(model, tokenizer, first) < 1e-4
    # the sampled answers of one prompt differ: they were drawn, not copied
    assert len({tuple(a) for a in first.answer_ids[:6]}) > 1


def reference_prompt_ids(tokenizer, prompts: list[str]) -> list[list[int]]:
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


def test_sampled_logprobs_are_the_scorers_with_the_real_qwen3_tokenizer(qwen3):  # noqa: F811
    model, tokenizer = qwen3
    torch.manual_seed(0)
    rollouts = engine.sample(model, tokenizer, _prompts(tokenizer, QUESTIONS), max_new_tokens=24, do_sample=True,
                             num_return_sequences=4)
    assert _max_logprob_gap(model, tokenizer, rollouts) < 1e-4
    ends = {tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id}
    assert all(a[-1] in ends for a, cut in zip(rollouts.answer_ids, rollouts.truncated) if not cut)


def test_eos_suppression_forces_every_answer_to_the_budget(shipped):
    model, tokenizer = shipped
    torch.manual_seed(0)
    rollouts = engine.sample(model, tokenizer, _prompts(tokenizer)[:2], max_new_tokens=12, do_sample=True,
                             num_return_sequences=3, suppress_eos=True)
    assert rollouts.lengths == [12] * 6 and all(rollouts.truncated)
    assert tokenizer.eos_token_id not in {t for a in rollouts.answer_ids for t in a}


def test_nucleus_sampling_keeps_to_the_smallest_set_reaching_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(20_000, 1)
    torch.manual_seed(0)
    full = engine.next_tokens(logits, do_sample=True)
    counts = torch.bincount(full, minlength=4).float() / len(full)
    torch.testing.assert_close(counts, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.015, rtol=0)
    nucleus = engine.next_tokens(logits, do_sample=True, top_p=0.7)   # {0.5, 0.3} reaches 0.7
    assert set(nucleus.tolist()) == {0, 1}
    assert float((nucleus == 0).float().mean()) == pytest.approx(0.5 / 0.8, abs=0.015)
    assert engine.next_tokens(logits[:2], do_sample=False).tolist() == [0, 0]


def test_bad_settings_fail_before_any_work(shipped):
    model, tokenizer = shipped
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.sample(model, tokenizer, ["x"], max_new_tokens=0, do_sample=False)
    with pytest.raises(ValueError, match="temperature"):
        engine.sample(model, tokenizer, ["x"], max_new_tokens=4, do_sample=True, temperature=0)
    with pytest.raises(ValueError, match="context"):
        engine.sample(model, tokenizer, ["x"], max_new_tokens=model.config.max_position_embeddings, do_sample=False)


@pytest.mark.parametrize("with_extras", [False, True])
def test_answers_after_shared_prompts_score_as_full_sequences(shipped, with_extras):
    model, tokenizer = shipped
    torch.manual_seed(0)
    rollouts = engine.sample(model, tokenizer, _prompts(tokenizer), max_new_tokens=80, do_sample=True,
                             num_return_sequences=3)
    extras = dict(with_certainty=with_extras, with_hidden=with_extras)
    full = score_answer_ids(model, rollouts.prompt_ids, rollouts.answer_ids, pad_token_id=0, batch_size=5, **extras)
    shared = score_answers_after_prompts(model, rollouts.prompt_ids[::3], [k // 3 for k in range(12)],
                                         rollouts.answer_ids, pad_token_id=0, batch_size=5, **extras)
    assert torch.equal(shared.mask, full.mask)
    torch.testing.assert_close(shared.logprobs, full.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(shared.nll, full.nll, atol=1e-5, rtol=0)
    if with_extras:
        torch.testing.assert_close(shared.certainty, full.certainty, atol=1e-5, rtol=0)
        torch.testing.assert_close(shared.hidden, full.hidden, atol=1e-4, rtol=0)
    old = sampled_scores(rollouts)
    assert torch.equal(old.mask, full.mask)
    torch.testing.assert_close(old.logprobs, full.logprobs, atol=1e-4, rtol=0)


def _update(config: GRPOConfig, scored, *, engine_on: bool):
    """One update of a fresh policy (same seed, same LoRA init) on ``scored``: its stats and gradients."""
    config = dataclasses.replace(config, engine=engine_on, updates_per_step=1)
    setup = setup_training(config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():   # a trained adapter (B != 0), so that every LoRA weight gets a gradient
        for name, p in setup.model.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=generator))
    grads = {}

    def keep(module, *_):  # the gradients before the optimizer step changes the weights
        for name, p in setup.model.named_parameters():
            if p.grad is not None:
                grads[name] = p.grad.clone()

    setup.optimizer.register_step_pre_hook(keep)
    advantages = group_advantages(scored.total.view(-1, config.group_size)).flatten()
    stats = update_policy(setup.model, setup.tokenizer, setup.optimizer, scored, config, advantages)
    return stats, grads


def test_the_update_with_shared_prompts_has_todays_loss_and_gradients():
    config = GRPOConfig(questions_per_step=4, group_size=4, micro_batch_size=5, max_new_tokens=48, learning_rate=1e-3,
                        out="unused").resolved()
    setup = setup_training(config)
    problems = [Problem(f"q{k}", q, "8", "math", "test") for k, q in enumerate(ARITHMETIC)]
    scored = sample_and_score(setup.model, setup.tokenizer, problems, config, step=1, ctx0_ids=setup.ctx0_ids,
                              sampler=setup.sampler)
    scored.total = torch.randn(len(scored.total), generator=torch.Generator().manual_seed(0))  # every group moves
    shared_stats, shared_grads = _update(config, scored, engine_on=True)
    full_stats, full_grads = _update(config, scored, engine_on=False)
    assert shared_stats["loss"] == pytest.approx(full_stats["loss"], abs=1e-5)
    assert shared_stats["grad_norm"] == pytest.approx(full_stats["grad_norm"], rel=1e-4)
    assert shared_grads.keys() == full_grads.keys() and len(full_grads) > 0
    for name, grad in full_grads.items():
        torch.testing.assert_close(shared_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    assert any(float(g.abs().max()) > 1e-4 for g in full_grads.values())   # the gradients are not all ~0
