"""sar_lib.grpo_config: visible defaults, a profile's values applied by ``GRPOConfig.for_profile``, the
fields derived by ``resolved``, and the saved form a run folder keeps."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sar_lib.grpo_config import PROFILE_FIELDS, GRPOConfig
from sar_lib.models import PROFILES, Profile
from sar_lib.runs import read_config, write_config


def test_the_defaults_are_the_tiny_cpu_profiles():
    assert set(PROFILE_FIELDS) == {f.name for f in dataclasses.fields(Profile)} & {
        f.name for f in dataclasses.fields(GRPOConfig)}
    assert GRPOConfig() == GRPOConfig.for_profile("tiny-cpu")
    assert GRPOConfig.profile == "tiny-cpu" and GRPOConfig.group_size == 6 and GRPOConfig.max_new_tokens == 192


@pytest.mark.parametrize("profile", list(PROFILES))
def test_for_profile_takes_the_profiles_values_and_explicit_ones_win(profile):
    config = GRPOConfig.for_profile(profile, learning_rate=3e-3)
    assert {name: getattr(config, name) for name in PROFILE_FIELDS if name != "learning_rate"} == \
        {name: getattr(PROFILES[profile], name) for name in PROFILE_FIELDS if name != "learning_rate"}
    assert config.profile == profile and config.learning_rate == 3e-3


def test_for_profile_gives_ppo_one_answer_per_question_and_grpos_answers_per_step():
    laptop = PROFILES["laptop-8gb"]
    ppo = GRPOConfig.for_profile("laptop-8gb", algo="ppo")
    assert (ppo.group_size, ppo.questions_per_step) == (1, laptop.questions_per_step * laptop.group_size)
    assert GRPOConfig.for_profile(algo="ppo", group_size=4, questions_per_step=2).group_size == 4
    with pytest.raises(ValueError, match="needs group_size >= 2"):
        GRPOConfig.for_profile(algo="ppo", reward="o1").resolved()


def test_resolved_fills_the_derived_fields_only():
    config = GRPOConfig(reward="o1", max_new_tokens=64, questions_per_step=4, seed=2).resolved()
    assert (config.alpha, config.loss_constant, config.generation_batch_size, config.out) == \
        (0.05, 64, 4, "runs/o1-a0.05-s2")
    assert GRPOConfig.for_profile(algo="ppo", reward="none").resolved().out == "runs/ppo-none-a0-s0"
    assert config.resolved() == config


def test_a_profile_field_set_to_none_is_refused():
    with pytest.raises(ValueError, match=r"\['micro_batch_size'\] are None.*for_profile\('gpu-12gb'\)"):
        GRPOConfig.for_profile("gpu-12gb", micro_batch_size=None).resolved()
    with pytest.raises(ValueError, match="unknown profile 'laptop-2gb'"):
        GRPOConfig.for_profile("laptop-2gb")


def test_a_saved_config_keeps_its_flat_schema_and_loads_back(tmp_path):
    config = GRPOConfig.for_profile("laptop-8gb", algo="ppo", critic_lr_ratio=3.0, out=str(tmp_path)).resolved()
    write_config(tmp_path, config)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert list(saved) == [f.name for f in dataclasses.fields(GRPOConfig)]   # flat, PPO fields among the rest
    assert saved["critic_lr_ratio"] == 3.0 and saved["group_size"] == 1
    assert read_config(tmp_path) == config
    # a config saved before a field existed loads with that field's default
    del saved["adam_epsilon"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert read_config(tmp_path).resolved() == config
