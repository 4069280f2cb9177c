import dataclasses
import json
import math
import os

import pytest
import torch

from sar_lib import grpo
from sar_lib import rewards as R
from sar_lib.lab.cli import main
from sar_lib.lab.cli import build_parser
from sar_lib.grpo import group_advantages, load_run, step_questions, train
from sar_lib.grpo_config import GRPOConfig
from sar_lib.policy_gradient import answer_losses, k3_kl, ppo_clip_loss, shaping_reward, update_plan
from sar_lib.models import bnb_4bit_problem
from sar_lib.runs import checkpoint_state, read_completions, read_config, read_eval, read_metrics

TIME = "time/"


def small(tiny_dir, out, **overrides) -> GRPOConfig:
    """A config that trains the random tiny model in about a second per step on 2 cores."""
    values = dict(model=tiny_dir, group_size=3, questions_per_step=2, max_new_tokens=16, max_prompt_tokens=400,
                  micro_batch_size=4, eval_size=4, eval_batch_size=4, train_size=20, out=str(out),
                  progress=False)
    values.update(overrides)
    return GRPOConfig(**values)


# ---------------------------------------------------------------- advantages
def test_dr_grpo_advantage_subtracts_the_group_mean_only():
    rewards = torch.tensor([[1.0, 0.2, 0.0], [0.5, 0.5, 0.5]])
    expected = torch.tensor([[0.6, -0.2, -0.4], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(group_advantages(rewards, "dr_grpo"), expected)


def test_std_advantage_divides_by_the_unbiased_group_std():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    # mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 1/sqrt(3): A = +-0.5 * sqrt(3); a flat group gives 0, not NaN
    a = 0.5 * math.sqrt(3)
    expected = torch.tensor([[a, -a, -a, a], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(group_advantages(rewards, "std"), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown advantage"):
        group_advantages(rewards, "gae")


# ---------------------------------------------------------------- PPO-clip loss and KL
def _ratios_case():
    # row 0: A = +1, ratios 1.5, 0.5, 1.0;  row 1: A = -1, ratios 0.5, 5.0, 1.5
    old = torch.log(torch.tensor([[0.2, 0.4, 0.3], [0.4, 0.1, 0.2]]))
    new = old + torch.log(torch.tensor([[1.5, 0.5, 1.0], [0.5, 5.0, 1.5]]))
    return new.requires_grad_(), old, torch.tensor([1.0, -1.0])


def test_ppo_clip_loss_on_hand_computed_tokens():
    new, old, adv = _ratios_case()
    loss, clipped = ppo_clip_loss(new, old, adv, eps_low=0.2, eps_high=0.2, dual_clip=3.0)
    # A>0: max(-1.5, -1.2) = -1.2 (clipped); max(-0.5, -0.8) = -0.5; -1.0
    # A<0: max(0.5, 0.8) = 0.8 (clipped); max(5.0, 1.2) = 5.0 -> dual clip min(5.0, 3.0) = 3.0; max(1.5, 1.2) = 1.5
    torch.testing.assert_close(loss, torch.tensor([[-1.2, -0.5, -1.0], [0.8, 3.0, 1.5]]))
    assert clipped.tolist() == [[True, False, False], [True, True, False]]
    loss.sum().backward()
    # clipped tokens pass no gradient; elsewhere d(-A * r)/d logp = -A * r
    torch.testing.assert_close(new.grad, torch.tensor([[0.0, -0.5, -1.0], [0.0, 0.0, 1.5]]))


def test_without_dual_clip_a_negative_advantage_loss_is_unbounded():
    new, old, adv = _ratios_case()
    loss, clipped = ppo_clip_loss(new.detach(), old, adv, dual_clip=None)
    torch.testing.assert_close(loss[1], torch.tensor([0.8, 5.0, 1.5]))
    assert clipped[1].tolist() == [True, False, False]


def test_asymmetric_clip_range():
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[1.3, 0.7]]))
    loss, clipped = ppo_clip_loss(new, old, torch.tensor([1.0]), eps_low=0.1, eps_high=0.28, dual_clip=None)
    torch.testing.assert_close(loss, torch.tensor([[-1.28, -0.7]]))
    assert clipped.tolist() == [[True, False]]


def test_token_losses_are_summed_and_divided_by_a_constant_not_the_answer_length():
    token_loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    torch.testing.assert_close(answer_losses(token_loss, mask, 4), torch.tensor([0.75, 1.0]))


def test_k3_kl_hand_values_and_unbiasedness():
    logp = torch.log(torch.tensor([[0.5, 0.5, 0.25]]))
    ref = torch.log(torch.tensor([[0.25, 0.5, 0.5]]))
    # d = log ref - log pi: exp(d) - d - 1
    expected = torch.tensor([[0.5 + math.log(2) - 1, 0.0, 2 - math.log(2) - 1]])
    torch.testing.assert_close(k3_kl(logp, ref), expected)
    # E_{a~pi} k3 = KL(pi || ref): pi = (0.5, 0.5), ref = (0.25, 0.75)
    pi, rho = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    estimate = (pi * k3_kl(pi.log(), rho.log())).sum()
    torch.testing.assert_close(estimate, (pi * (pi / rho).log()).sum())


# ---------------------------------------------------------------- rewards: R = R_VR + alpha * r
def _reward_case(name):
    """(inputs, group size, hand-computed shaping term r) for each reward."""
    lengths = torch.tensor([10.0, 20.0, 30.0, 7.0, 8.0, 9.0])
    correct = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    nll_qa = torch.log(torch.tensor([2.0, 4.0, 8.0, 1.0, 2.0, 3.0]))
    nll_a = torch.log(torch.tensor([4.0, 2.0, 2.0, 1.0, 4.0, 3.0]))
    certainty = torch.tensor([[1.0, 3.0, 99.0]] * 3 + [[2.0, 2.0, 2.0]] * 3)
    mask = torch.tensor([[True, True, False]] * 3 + [[True, True, True]] * 3)
    er = 2 * torch.sigmoid(torch.tensor(5 / (5 + 1e-5))).item() - 1  # mu 15, population sigma 5
    expected = {
        # max(1 - ppl(a|q) / ppl(a), -1) per answer
        "sar": [0.5, -1.0, -1.0, 0.0, 0.5, 0.0],
        # group means 20 and 8: clip((Lbar - L) / L, -1, 1)
        "o1": [1.0, 0.0, -1 / 3, 1 / 7, 0.0, -1 / 9],
        # second group has one correct answer: all zeros
        "er": [er, -er, 0.0, 0.0, 0.0, 0.0],
        "em": [-math.log(v) for v in (2.0, 4.0, 8.0, 1.0, 2.0, 3.0)],
        "certainty": [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
        "length": [-10 / 32, -20 / 32, -30 / 32, -7 / 32, -8 / 32, -9 / 32],
        "none": [0.0] * 6,
    }[name]
    inputs = dict(lengths=lengths, correct=correct, nll_qa=nll_qa, nll_a=nll_a, certainty=certainty, mask=mask,
                  max_new_tokens=32)
    return inputs, torch.tensor(expected)


@pytest.mark.parametrize("name", [n for n in R.REWARD_NAMES if n != "shuffled_sar"])
def test_shaping_reward_and_combination(name):
    inputs, expected = _reward_case(name)
    r = shaping_reward(name, group_size=3, **inputs)
    torch.testing.assert_close(r, expected, atol=1e-5, rtol=1e-5)
    alpha = R.DEFAULT_ALPHAS[name]
    torch.testing.assert_close(R.combine(inputs["correct"], r, alpha), inputs["correct"] + alpha * expected,
                               atol=1e-5, rtol=1e-5)


def test_shuffled_sar_deals_each_group_its_own_sar_values_in_a_random_order():
    inputs, sar = _reward_case("sar")
    torch.manual_seed(0)
    draws = [shaping_reward("shuffled_sar", group_size=3, **inputs) for _ in range(20)]
    for r in draws:
        for g in range(2):
            assert sorted(r[3 * g:3 * g + 3].tolist()) == sorted(sar[3 * g:3 * g + 3].tolist())
    assert any(not torch.equal(r, sar) for r in draws)          # the order does change
    # each answer receives every value of its group: the term says nothing about the answer itself
    assert {round(float(r[0]), 4) for r in draws} == {0.5, -1.0}


def test_sar_variant_reaches_the_reward():
    inputs, _ = _reward_case("sar")
    r = shaping_reward("sar", group_size=3, sar_variant="no_denominator", **inputs)
    torch.testing.assert_close(r[:3], torch.tensor([2.0, -2.0, -6.0]))  # ppl(a) - ppl(a|q), unclipped


# ---------------------------------------------------------------- config
@pytest.mark.parametrize("overrides, message", [
    (dict(group_size=1), "group_size must be >= 2"),
    (dict(alpha=-0.1), "alpha must be >= 0"),
    (dict(reward="ppo"), "unknown reward 'ppo'"),
    (dict(reward="none", alpha=0.2), "alpha must be 0"),
    (dict(sar_variant="exp"), "unknown sar_variant"),
    (dict(advantage="gae"), "unknown advantage"),
    (dict(questions_per_step=3, updates_per_step=2), "multiple of updates_per_step"),
    (dict(steps=0), "steps must be >= 1"),
    (dict(max_new_tokens=0), "max_new_tokens must be >= 1"),
    (dict(clip_eps_low=1.0), "clip_eps_low"),
    (dict(dual_clip=1.0), "dual_clip must be > 1"),
    (dict(top_p=0.0), "top_p"),
    (dict(temperature=0.0), "temperature"),
    (dict(kl_coef=-1.0), "kl_coef"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(threads=0), "threads must be >= 1"),
    (dict(device="gpu"), "device must be 'cpu' or 'cuda'"),
    (dict(profile="laptop-2gb"), "unknown profile"),
])
def test_bad_config_fails_before_anything_loads(monkeypatch, tmp_path, overrides, message):
    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before the config was checked")

    monkeypatch.setattr(grpo, "load_policy", no_loading)
    with pytest.raises(ValueError, match=message):
        train(GRPOConfig(out=str(tmp_path / "run"), **overrides))
    assert not (tmp_path / "run").exists()


def test_a_run_saved_on_a_gpu_resumes_on_the_device_asked_for(monkeypatch, tmp_path):
    from sar_lib.runs import write_config

    monkeypatch.setattr(grpo, "load_policy", lambda *a, **k: pytest.fail("loaded before the checks"))
    run = tmp_path / "run"
    config = GRPOConfig(out=str(run), steps=3, device="cpu")
    (run / "checkpoint").mkdir(parents=True)
    write_config(run, dataclasses.replace(config.resolved(), device="cuda"))   # need not exist here
    torch.save({"step": 5}, run / "checkpoint" / "state.pt")
    with pytest.raises(ValueError, match="already trained for 5 steps"):   # past the saved config's checks
        train(config, resume=True)


def test_profile_fills_defaults_and_explicit_values_win():
    cfg = GRPOConfig.for_profile("laptop-8gb", group_size=4).resolved()
    assert cfg.group_size == 4 and cfg.model == "Qwen/Qwen2.5-0.5B-Instruct" and cfg.questions_per_step == 8
    assert cfg.loss_constant == cfg.max_new_tokens == 512 and cfg.alpha == R.DEFAULT_ALPHAS["sar"] == 0.2
    assert GRPOConfig(reward="o1").resolved().alpha == R.DEFAULT_ALPHAS["o1"]
    assert GRPOConfig(reward="none").resolved().alpha == 0.0


def test_prompts_longer_than_max_prompt_tokens_are_refused(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="longer than max_prompt_tokens=10"):
        train(small(tiny_dir, tmp_path / "run", max_prompt_tokens=10))


def test_data_order_is_a_pure_function_of_seed_and_step():
    first_epoch = [i for step in range(1, 6) for i in step_questions(10, 2, seed=3, step=step)]
    assert sorted(first_epoch) == list(range(10))  # every problem once per epoch
    assert step_questions(10, 2, seed=3, step=4) == step_questions(10, 2, seed=3, step=4)
    assert [step_questions(10, 2, 4, s) for s in range(1, 6)] != [step_questions(10, 2, 3, s) for s in range(1, 6)]


def test_update_plan_splits_whole_groups_then_micro_batches():
    assert update_plan(4, 3, 2, 4) == [[[0, 1, 2, 3], [4, 5]], [[6, 7, 8, 9], [10, 11]]]
    assert update_plan(2, 3, 1, 16) == [[[0, 1, 2, 3, 4, 5]]]


# ---------------------------------------------------------------- training runs
def test_three_step_lora_run_writes_metrics_eval_and_checkpoint(tiny_dir, tmp_path):
    run = train(small(tiny_dir, tmp_path / "run", steps=3, kl_coef=0.001))
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for m in metrics:
        for key in ("reward", "rewards/correctness/mean", "rewards/sar/mean", "sar/mean", "rewards/correctness/mean", "completions/mean_length",
                    "completions/median_length", "completions/clipped_ratio", "kl", "clip_ratio/region_mean", "loss", "grad_norm", "learning_rate",
                    "time/generate", "time/score", "time/sar", "time/update", "time/step"):
            assert key in m and m[key] is not None and math.isfinite(m[key]), key
        assert 1 <= m["completions/mean_length"] <= 16 and 0 <= m["completions/clipped_ratio"] <= 1
        # alpha 0.2: R = R_VR + 0.2 * SAR, averaged over the batch
        assert m["reward"] == pytest.approx(m["rewards/correctness/mean"] + 0.2 * m["rewards/sar/mean"], abs=1e-6)
    assert "eval/accuracy" in metrics[-1] and "eval/accuracy" not in metrics[0]
    # SAR's switch, measured at every evaluation (sar_lib.switch)
    assert 0 < metrics[-1]["eval/p_stop"] + metrics[-1]["eval/p_check"] <= 1
    assert 0 <= metrics[-1]["eval/greedy_stop_share"] <= 1 and "eval/p_stop" not in metrics[0]
    evaluation, records = read_eval(run, "arith-test")
    assert evaluation["n"] == 4 and evaluation["step"] == 3 and 0 <= evaluation["accuracy"] <= 1
    assert evaluation["size"] == 4 and evaluation["max_new_tokens"] == 16 and len(records) == 4
    assert read_config(run) == small(tiny_dir, run, steps=3, kl_coef=0.001).resolved()
    assert (run / "config.yaml").exists()
    state = checkpoint_state(run)
    assert state["step"] == 3 and set(state["rng"]) >= {"python", "numpy", "torch"}
    trained = torch.load(run / "checkpoint" / "trainable.pt")
    assert trained and all("lora_" in name for name in trained)
    # LoRA B starts at zero: after three steps of gradients it is not
    assert any(float(v.abs().sum()) > 0 for name, v in trained.items() if "lora_B" in name)
    assert (run / "checkpoint" / "adapter" / "adapter_config.json").exists()
    reloaded = dict(load_run(run)[0].named_parameters())
    assert all(torch.equal(reloaded[name].detach().cpu(), value) for name, value in trained.items())


def test_single_update_steps_have_ratio_one_and_certainty_reward(tiny_dir, tmp_path):
    # one update per step: the policy that is updated is exactly the one that sampled and scored the
    # answers (dropout 0), so ratios differ from 1 by float rounding only and nothing is clipped
    run = train(small(tiny_dir, tmp_path / "run", steps=2, updates_per_step=1, reward="certainty",
                      kl_coef=0.0, log_sar=False))
    metrics = read_metrics(run)
    assert [m["clip_ratio/region_mean"] for m in metrics] == [0.0, 0.0]
    assert all("rewards/certainty/mean" in m and m["rewards/certainty/mean"] > 0 for m in metrics)
    assert not any(k in m for m in metrics for k in ("sar/mean", "kl", "time/sar"))


def test_resume_repeats_the_uninterrupted_run_exactly(tiny_dir, tmp_path):
    logged = dict(log_completions=True, eval_samples=2)
    straight = train(small(tiny_dir, tmp_path / "straight", steps=4, **logged))
    stopped = train(small(tiny_dir, tmp_path / "stopped", steps=2, **logged))
    for name in ("metrics.jsonl", "completions.jsonl"):   # a step logged after the last checkpoint, then a crash
        with (stopped / name).open("a") as f:
            f.write(json.dumps({"step": 3, "loss": 123.0}) + "\n")
    resumed = train(small(tiny_dir, tmp_path / "stopped", steps=4, **logged), resume=True)
    completions = read_completions(straight)
    assert [c["step"] for c in completions] == [k for k in (1, 2, 3, 4) for _ in range(6)]
    assert set(completions[0]) == {"step", "id", "completion", "length", "correct", "shaping", "sar", "reward",
                                   "advantage"}
    assert read_completions(resumed) == completions
    summary, records = read_eval(straight, "arith-test")
    assert summary["samples"] == 2 and summary["sampled_mean_length"] > 0
    assert all(len(r["sampled_lengths"]) == len(r["sampled_responses"]) == 2 for r in records)
    a, b = read_metrics(straight), read_metrics(resumed)
    assert [m["step"] for m in b] == [1, 2, 3, 4]
    for x, y in zip(a[2:], b[2:]):
        assert set(x) == set(y)
        for key in x:
            if not key.startswith(TIME):
                assert y[key] == pytest.approx(x[key], abs=1e-6), (x["step"], key)
    assert read_eval(straight, "arith-test") == read_eval(resumed, "arith-test")

    with pytest.raises(ValueError, match="reward: 'sar' -> 'o1'"):
        train(small(tiny_dir, tmp_path / "stopped", steps=5, reward="o1", alpha=0.2), resume=True)
    with pytest.raises(ValueError, match="already trained for 4 steps"):
        train(small(tiny_dir, tmp_path / "stopped", steps=3), resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        train(small(tiny_dir, tmp_path / "stopped", steps=4))
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        train(small(tiny_dir, tmp_path / "nothing-here"), resume=True)


def test_a_folder_being_trained_is_refused_and_a_dead_lock_taken_over(tiny_dir, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "locked"
    out.mkdir()
    (out / "train.lock").write_text(str(os.getpid()))   # a live process "trains" it
    with pytest.raises(ValueError, match="being trained by another process"):
        train(small(tiny_dir, out, steps=1))
    assert not (out / "config.json").exists()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / "train.lock").write_text(finished.stdout.strip())   # that process is gone
    assert len(read_metrics(train(small(tiny_dir, out, steps=1)))) == 1
    assert not (out / "train.lock").exists()
    with pytest.raises(FileNotFoundError):
        train(small(tiny_dir, tmp_path / "never-made", steps=1), resume=True)
    assert not (tmp_path / "never-made").exists()   # a failed start leaves no empty folder


def test_sar_train_has_a_flag_for_every_config_field(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(GRPOConfig):
        assert f"--{field.name.replace('_', '-')} " in help_text, field.name
        assert " ".join(field.metadata["help"].split()) in help_text, field.name
    assert f"GRPO steps (default: {GRPOConfig.steps})" in help_text   # defaults come from the dataclass
    args = build_parser().parse_args(["train", "--steps", "3", "--lr", "1e-3", "--no-log-sar", "--dual-clip", "none",
                                      "--load-in-4bit", "--profile", "gpu-12gb"])
    assert (args.steps, args.learning_rate, args.log_sar, args.dual_clip, args.load_in_4bit, args.profile) == \
        (3, 1e-3, False, None, True, "gpu-12gb")
    assert not hasattr(args, "seed")   # a flag left out keeps the config's (or the saved run's) value


def test_cli_train_then_resume_for_more_steps(tiny_dir, tmp_path, capsys):
    out = tmp_path / "cli-run"
    common = ["--model", tiny_dir, "--group-size", "2", "--questions-per-step", "2", "--max-new-tokens", "8",
              "--max-prompt-tokens", "400", "--micro-batch-size", "4", "--eval-size", "2", "--train-size", "10",
              "--no-progress", "--no-log-sar"]
    assert main(["train", *common, "--reward", "o1", "--steps", "1", "--seed", "3", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["run_dir"] == str(out) and "accuracy" in printed and "mean_length" in printed
    # resume with only --out and the new step count: every other setting comes from the saved run
    assert main(["train", "--resume", "--out", str(out), "--steps", "2", "--no-progress"]) == 0
    assert [m["step"] for m in read_metrics(out)] == [1, 2]
    assert read_config(out).reward == "o1" and read_config(out).seed == 3 and read_config(out).alpha == 0.05
    assert main(["train", "--resume", "--out", str(out), "--seed", "4"]) == 2
    assert "seed: 3 -> 4" in capsys.readouterr().err
    assert main(["train", "--group-size", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "group_size must be >= 2" in capsys.readouterr().err
    assert main(["train", "--correctness-weight", "-1", "--out", str(tmp_path / "bad")]) == 2
    assert "correctness_weight must be >= 0" in capsys.readouterr().err


@pytest.mark.skipif(bnb_4bit_problem("cpu") is not None,
                    reason=f"bitsandbytes cannot run 4-bit layers on this CPU: {bnb_4bit_problem('cpu')}")
def test_4bit_lora_smoke(tiny_dir, tmp_path):
    run = train(small(tiny_dir, tmp_path / "run", steps=2, load_in_4bit=True))
    metrics = read_metrics(run)
    assert len(metrics) == 2 and all(math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"]) for m in metrics)
    assert read_config(run).load_in_4bit is True
    trained = torch.load(run / "checkpoint" / "trainable.pt")
    assert any(float(v.abs().sum()) > 0 for name, v in trained.items() if "lora_B" in name)


# ---------------------------------------------------------------- correctness_weight (helper I, for `sar compare`)
def test_correctness_weight_zero_trains_on_the_shaping_term_alone(tiny_dir, tmp_path):
    # R = w * R_VR + alpha * r: with w = 0 and alpha = 1 the total reward is R_SA itself, whatever R_VR is
    alone = read_metrics(train(small(tiny_dir, tmp_path / "alone", steps=1, reward="sar", alpha=1.0,
                                     correctness_weight=0.0)))[0]
    assert alone["reward"] == pytest.approx(alone["rewards/sar/mean"], abs=1e-6)
    both = read_metrics(train(small(tiny_dir, tmp_path / "both", steps=1, reward="sar", alpha=1.0)))[0]
    assert both["reward"] == pytest.approx(both["rewards/correctness/mean"] + both["rewards/sar/mean"], abs=1e-6)
    assert read_config(tmp_path / "alone").correctness_weight == 0.0


@pytest.mark.parametrize("overrides, message", [
    (dict(correctness_weight=-1.0), "correctness_weight must be >= 0"),
    (dict(correctness_weight=0.0, reward="none", alpha=0.0), "leaves no reward at all"),
    (dict(correctness_weight=0.0, reward="sar", alpha=0.0), "leaves no reward at all"),
])
def test_bad_correctness_weight_is_refused(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        GRPOConfig(out=str(tmp_path / "run"), **overrides).resolved()
