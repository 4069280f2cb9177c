"""sar_lib.lab.grid: the methods' configs, grid validation, and runs in worker processes."""

import pytest
from conftest import SMALL_GRID

from sar_lib.lab import grid
from sar_lib import rewards as R
from sar_lib.lab.grid import grid_runs, run_grid
from sar_lib.grpo_config import GRPOConfig
from sar_lib.runs import read_metrics


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=("grpo", "a2c")), "unknown method 'a2c'"),
    (dict(seeds=(0, 0)), "seeds must be distinct"),
    (dict(seeds=()), "at least one seed"),
    (dict(alpha=0.3), "set per run by the method"),
    (dict(group_size=1), "group_size must be >= 2"),
    (dict(device="gpu"), "device must be 'cpu' or 'cuda'"),
])
def test_bad_grids_fail_before_training(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        grid_runs(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_grid_gives_each_method_its_reward_and_the_claim_methods_every_seed(tmp_path):
    runs = grid_runs(tmp_path, seeds=(3, 4, 5), steps=7)
    assert [(r.method, r.seed) for r in runs] == [("grpo", 3), ("grpo", 4), ("grpo", 5), ("sa-grpo", 3),
                                                  ("sa-grpo", 4), ("sa-grpo", 5), ("sar-only", 3), ("em", 3),
                                                  ("o1-0.03", 3), ("o1-0.1", 3), ("er-0.03", 3), ("er-0.1", 3),
                                                  ("shuffled-sar", 3)]
    configs = {r.method: r.config.resolved() for r in runs}
    assert (configs["grpo"].reward, configs["grpo"].alpha) == ("none", 0.0)
    assert (configs["sa-grpo"].reward, configs["sa-grpo"].alpha) == ("sar", 0.2)
    assert (configs["sar-only"].correctness_weight, configs["sar-only"].alpha) == (0.0, 1.0)
    assert (configs["em"].reward, configs["em"].alpha) == ("em", 0.2)
    assert [configs[m].alpha for m in ("o1-0.03", "o1-0.1", "er-0.03", "er-0.1")] == [0.03, 0.1, 0.03, 0.1]
    assert configs["er-0.1"].reward == "er" and configs["shuffled-sar"].reward == "shuffled_sar"
    assert len({m.color for m in grid.METHODS.values()}) == len(grid.METHODS)   # one colour per method
    assert all(c.steps == 7 for c in configs.values()) and runs[0].run_dir == tmp_path / "grpo-s3"


def test_ppo_methods_are_opt_in_and_take_grpos_answers_per_step(tmp_path):
    assert "ppo" not in grid.DEFAULT_METHODS and {"ppo", "sa-ppo"} <= set(grid.METHODS)
    runs = grid_runs(tmp_path, methods=("grpo", "ppo", "sa-ppo"), seeds=(0, 1), questions_per_step=4)
    assert [(r.method, r.seed) for r in runs] == [(m, s) for m in ("grpo", "ppo", "sa-ppo") for s in (0, 1)]
    by_method = {r.method: r.config.resolved() for r in runs}
    assert by_method["ppo"].algo == "ppo" and by_method["ppo"].reward == "none"
    assert by_method["sa-ppo"].reward == "sar" and by_method["sa-ppo"].alpha == R.DEFAULT_ALPHAS["sar"]
    for name in ("ppo", "sa-ppo"):
        assert by_method[name].group_size == 1
        assert by_method[name].questions_per_step == by_method["grpo"].questions_per_step * by_method["grpo"].group_size


def test_method_config_fills_the_reward_fields(tmp_path):
    config = grid.method_config("sar-only", 5, tmp_path / "x", steps=3)
    assert isinstance(config, GRPOConfig) and config.reward == "sar" and config.correctness_weight == 0.0
    assert config.seed == 5 and config.out == str(tmp_path / "x") and config.steps == 3


@pytest.mark.slow
def test_two_worker_processes_give_the_same_runs_as_one(tiny_dir, tmp_path):
    settings = dict(model=tiny_dir, steps=1, questions_per_step=2, group_size=3, threads=1, progress=False,
                    eval_dataset="arith-test", eval_size=4, **SMALL_GRID)
    runs = grid_runs(tmp_path / "two", methods=("grpo", "sa-grpo"), seeds=(0,), **settings)
    results, base = run_grid(runs, {"arith-test": 4}, workers=2, base_model=tiny_dir, base_dir=tmp_path / "two",
                             progress=False)
    alone, _ = run_grid(grid_runs(tmp_path / "one", methods=("sa-grpo",), seeds=(0,), **settings),
                        {"arith-test": 4}, workers=1, progress=False)
    assert [r["method"] for r in results] == ["grpo", "sa-grpo"] and all(r["trained"] for r in results)
    assert base["arith-test"]["step"] == 0 and base["arith-test"]["n"] == 4
    assert read_metrics(tmp_path / "two" / "sa-grpo-s0")[0]["reward"] == \
        read_metrics(tmp_path / "one" / "sa-grpo-s0")[0]["reward"]


def test_a_run_may_continue_on_another_device(tmp_path):
    import dataclasses
    import json

    from sar_lib.runs import write_config

    # a run that trained on a GPU, seen from a machine that may have none: not stale, nothing to resolve there
    here = grid.method_config("grpo", 0, tmp_path / "run", steps=3, device="cpu").resolved()
    (tmp_path / "run").mkdir()
    write_config(tmp_path / "run", dataclasses.replace(here, device="cuda"))
    (tmp_path / "run" / grid.MARKER).write_text(json.dumps({"model_fingerprint": "f"}))
    assert grid.stale_reason(tmp_path / "run", here, "f") is None
    assert grid.stale_reason(tmp_path / "run", dataclasses.replace(here, seed=1), "f").startswith("other training")
