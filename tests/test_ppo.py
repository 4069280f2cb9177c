"""SA-PPO (sar_lib.ppo): GAE, the value loss and the critic's statistics on hand-computed tensors,
the PPO config, and short runs of the random tiny model (metrics, checkpoint, exact resume, CLI)."""

import math

import pytest
import torch

from sar_lib import ppo
from sar_lib.lab.cli import main
from sar_lib.grpo import load_run, train
from sar_lib.grpo_config import GRPOConfig
from sar_lib.policy_gradient import ppo_clip_loss
from sar_lib.runs import checkpoint_state, read_completions, read_metrics
from test_grpo import TIME, small

MASK = torch.tensor([[True, True, True], [True, True, False]])


def small_ppo(tiny_dir, out, **overrides) -> GRPOConfig:
    """test_grpo's small config as PPO: one answer to each of 6 questions per step."""
    return small(tiny_dir, out, **{"algo": "ppo", "group_size": 1, "questions_per_step": 6, **overrides})


# ---------------------------------------------------------------- the maths
def test_token_rewards_put_the_reward_on_the_last_answer_token():
    out = ppo.token_rewards(torch.tensor([1.5, -0.5]), MASK)
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 1.5], [0.0, -0.5, 0.0]]))
    with pytest.raises(ValueError, match="at least one token"):
        ppo.token_rewards(torch.tensor([1.0]), torch.zeros(1, 3, dtype=torch.bool))


def test_gae_with_gamma_lambda_one_is_reward_minus_value():
    values = torch.tensor([[0.2, 0.5, 0.9], [0.1, -0.3, 7.0]])    # 7.0 is past the second answer: ignored
    rewards = ppo.token_rewards(torch.tensor([1.0, 0.4]), MASK)
    advantages, returns = ppo.gae(rewards, values, MASK, gamma=1.0, lam=1.0)
    assert torch.allclose(advantages, torch.tensor([[0.8, 0.5, 0.1], [0.3, 0.7, 0.0]]))
    assert torch.allclose(returns, torch.tensor([[1.0, 1.0, 1.0], [0.4, 0.4, 0.0]]))


def test_gae_by_hand_with_discount_and_lambda():
    # one answer of three tokens, reward 1 on the last: gamma 0.9, lambda 0.5
    values, rewards = torch.tensor([[0.5, 0.2, 0.4]]), torch.tensor([[0.0, 0.0, 1.0]])
    d2 = 1.0 - 0.4                      # delta_2 = r_2 + 0.9 * 0 - V_2
    d1 = 0.0 + 0.9 * 0.4 - 0.2          # delta_1 = r_1 + 0.9 * V_2 - V_1
    d0 = 0.0 + 0.9 * 0.2 - 0.5
    a2 = d2
    a1 = d1 + 0.45 * a2
    a0 = d0 + 0.45 * a1
    advantages, returns = ppo.gae(rewards, values, torch.ones(1, 3, dtype=torch.bool), gamma=0.9, lam=0.5)
    assert torch.allclose(advantages, torch.tensor([[a0, a1, a2]]))
    assert torch.allclose(returns, torch.tensor([[a0 + 0.5, a1 + 0.2, a2 + 0.4]]))


def test_whiten_has_mean_zero_and_std_one_on_the_mask():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]])
    white = ppo.whiten(x, MASK)
    values = white[MASK]
    assert float(values.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(values.std()) == pytest.approx(1.0, abs=1e-5)
    assert float(white[1, 2]) == 0.0
    assert torch.allclose(values, (x[MASK] - 3.0) / x[MASK].std())


def test_clipped_value_loss_by_hand():
    old = torch.tensor([[0.0, 0.0]])
    new = torch.tensor([[1.0, 0.1]])
    returns = torch.tensor([[2.0, 0.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss, clip_frac = ppo.clipped_value_loss(new, old, returns, mask, clip=0.5)
    # token 0: plain (1-2)^2 = 1, clipped V = 0.5, (0.5-2)^2 = 2.25 -> 2.25; token 1: both 0.01
    assert float(loss) == pytest.approx(0.5 * (2.25 + 0.01) / 2)
    assert float(clip_frac) == pytest.approx(0.5)


def test_explained_variance_of_a_perfect_and_of_a_constant_critic():
    returns = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 9.0]])
    assert ppo.explained_variance(returns, returns, MASK) == pytest.approx(1.0)
    assert ppo.explained_variance(torch.full_like(returns, 0.3), returns, MASK) == pytest.approx(0.0, abs=1e-6)


def test_ppo_clip_loss_takes_one_advantage_per_token():
    logp = torch.log(torch.tensor([[0.5, 0.5]]))
    old = torch.log(torch.tensor([[0.25, 0.5]]))            # ratios 2 and 1
    loss, clipped = ppo_clip_loss(logp, old, torch.tensor([[1.0, -1.0]]))
    assert torch.allclose(loss, torch.tensor([[-1.2, 1.0]]))  # A > 0 clipped at 1.2; A < 0 ratio 1
    assert clipped.tolist() == [[True, False]]


def test_value_head_starts_at_zero_and_is_a_trainable_submodule(tiny_dir):
    from sar_lib.models import load_policy

    model, _ = load_policy(tiny_dir, "tiny-cpu")
    head = ppo.attach_value_head(model)
    assert model.value_head is head
    assert float(head(torch.randn(2, 3, model.config.hidden_size)).detach().abs().max()) == 0.0
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    assert any(name.startswith("value_head.") for name in names) and any("lora_" in name for name in names)
    groups = ppo.parameter_groups(model, GRPOConfig.for_profile(algo="ppo", learning_rate=1e-3).resolved())
    assert [g["lr"] for g in groups] == [1e-3, 2e-3]
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(names)


# ---------------------------------------------------------------- config
def test_ppo_defaults_to_one_answer_per_question_and_grpos_answers_per_step():
    grpo_cfg, ppo_cfg = GRPOConfig.for_profile().resolved(), GRPOConfig.for_profile(algo="ppo").resolved()
    assert ppo_cfg.group_size == 1
    assert ppo_cfg.questions_per_step == grpo_cfg.questions_per_step * grpo_cfg.group_size
    assert ppo_cfg.out == "runs/ppo-sar-a0.2-s0" and ppo_cfg.critic_lr_ratio == 2.0
    assert ppo_cfg.gae_gamma == ppo_cfg.gae_lambda == 1.0
    assert GRPOConfig.for_profile(algo="ppo", group_size=4, questions_per_step=2).resolved().group_size == 4


@pytest.mark.parametrize("overrides, message", [
    (dict(algo="a2c"), "unknown algo 'a2c'"),
    (dict(algo="ppo", reward="o1"), "needs group_size >= 2"),
    (dict(algo="ppo", group_size=0), "PPO .* needs 1 or more"),
    (dict(algo="ppo", critic_lr_ratio=0.0), "critic_lr_ratio must be > 0"),
    (dict(algo="ppo", value_clip=0.0), "value_clip must be > 0"),
    (dict(algo="ppo", gae_lambda=1.5), "gae_gamma and gae_lambda"),
])
def test_bad_ppo_config_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        GRPOConfig.for_profile(**overrides).resolved()


# ---------------------------------------------------------------- runs
def test_three_step_ppo_run_trains_the_critic_and_logs_its_metrics(tiny_dir, tmp_path):
    run = train(small_ppo(tiny_dir, tmp_path / "run", steps=3))
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for m in metrics:
        for key in ("reward", "reward_std", "rewards/sar/mean", "sar/mean", "loss", "grad_norm", "critic/vf_loss",
                    "critic/vf_clipfrac", "critic/values_mean", "time/step"):
            assert key in m and math.isfinite(m[key]), key
        assert "frac_reward_zero_std" not in m
        assert m["reward"] == pytest.approx(m["rewards/correctness/mean"] + 0.2 * m["rewards/sar/mean"], abs=1e-6)
    assert metrics[0]["critic/values_mean"] == 0.0        # the critic's last layer starts at zero
    assert metrics[-1]["critic/values_mean"] != 0.0       # and has learnt something by step 3
    trained = torch.load(run / "checkpoint" / "trainable.pt")
    assert {"value_head.net.0.weight", "value_head.net.2.weight"} <= set(trained)
    assert float(trained["value_head.net.2.weight"].abs().sum()) > 0
    model, _ = load_run(run)
    assert torch.equal(model.value_head.net[2].weight.detach(), trained["value_head.net.2.weight"])


def test_ppo_resume_repeats_the_uninterrupted_run_exactly(tiny_dir, tmp_path):
    straight = train(small_ppo(tiny_dir, tmp_path / "straight", steps=4, log_completions=True))
    train(small_ppo(tiny_dir, tmp_path / "stopped", steps=2, log_completions=True))
    resumed = train(small_ppo(tiny_dir, tmp_path / "stopped", steps=4, log_completions=True), resume=True)
    assert checkpoint_state(resumed)["step"] == 4
    assert read_completions(resumed) == read_completions(straight)
    a, b = read_metrics(straight), read_metrics(resumed)
    assert [m["step"] for m in b] == [1, 2, 3, 4]
    for x, y in zip(a[2:], b[2:]):   # the stopped run evaluated at its step 2, the straight one did not
        assert set(x) == set(y)
        for key in x:
            if not key.startswith(TIME):
                assert y[key] == pytest.approx(x[key], abs=1e-6, nan_ok=True), (x["step"], key)
    with pytest.raises(ValueError, match="algo: 'ppo' -> 'grpo'"):
        train(small(tiny_dir, tmp_path / "stopped", steps=5, questions_per_step=6), resume=True)


def test_cli_trains_ppo(tiny_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["train", "--algo", "ppo", "--model", tiny_dir, "--reward", "sar", "--steps", "2", "--out", str(out),
            "--questions-per-step", "4", "--max-new-tokens", "12", "--max-prompt-tokens", "400", "--train-size", "20",
            "--eval-size", "4", "--no-progress"]
    assert main(args) == 0
    assert [m["step"] for m in read_metrics(out)] == [1, 2]
    assert read_metrics(out)[0]["critic/vf_loss"] >= 0
