import json
import os

import pytest

from sar_lib import compare
from sar_lib.cli import main
from sar_lib.compare import (GRPOConfig, count_behaviours, grid_runs, mean_curves, paper_claim, read_eval,
                             run_grid, stats)


# What the random conftest model needs on top of the --quick grid: short answers, long prompts allowed.
SMALL = dict(max_new_tokens=8, max_prompt_tokens=400, micro_batch_size=6, eval_batch_size=4, train_size=20)
EVAL_SETS = {"arith-test": 4, "logic-test": 3}


def small_compare(tiny_dir, out, **kwargs):
    values = dict(model=tiny_dir, quick=True, workers=1, eval_sets=EVAL_SETS, progress=False, **SMALL)
    values.update(kwargs)
    return compare.compare(out, **values)


def mtimes(directory):
    return {str(p): p.stat().st_mtime_ns for p in sorted(directory.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- the grid end to end
@pytest.mark.slow   # ~15 s on an idle 2-core machine, 30 s on a busy one
def test_quick_grid_writes_the_schema_then_reuses_and_resumes(tiny_dir, tmp_path):
    out = tmp_path / "grid"
    summary = small_compare(tiny_dir, out, command="sar compare --quick")
    assert summary["runs_trained"] == 7 and summary["runs_cached"] == 0     # 2 + 2 seeds, 3 single-seed methods
    on_disk = json.loads((out / "grpo_vs_sar.json").read_text())
    assert on_disk["figures"] == summary["figures"] and all(os.path.isfile(p) for p in summary["figures"])
    assert {os.path.basename(p) for p in summary["figures"]} == {"grpo_vs_sar.png", "grpo_vs_sar_curves.png"}
    assert on_disk["command"] == "sar compare --quick" and on_disk["settings"]["steps"] == compare.QUICK_STEPS
    assert on_disk["settings"]["seeds"] == [0, 1] and on_disk["settings"]["eval_sets"] == EVAL_SETS
    assert on_disk["machine"]["cpu_count"] >= 1 and on_disk["wall_seconds"] > 0
    assert list(on_disk["methods"]) == ["grpo", "sa-grpo", "sar-only", "o1", "er"]
    for name, method in on_disk["methods"].items():
        n_seeds = 2 if name in compare.MULTI_SEED_METHODS else 1
        assert len(method["seeds"]) == n_seeds and set(method["eval"]) == set(EVAL_SETS)
        for dataset, metrics in method["eval"].items():
            acc = metrics["accuracy"]
            assert len(acc["per_seed"]) == n_seeds and 0 <= acc["mean"] <= 1
            assert acc["mean"] == pytest.approx(sum(acc["per_seed"]) / n_seeds)
            assert metrics["mean_length"]["mean"] >= 0 and metrics["n"] == EVAL_SETS[dataset]
            assert set(method["behaviours"][dataset]) == set(compare.BEHAVIOUR_PATTERNS)
        assert method["train_seconds"]["mean"] > 0
    assert on_disk["methods"]["sar-only"]["correctness_weight"] == 0.0
    assert set(on_disk["base"]) == set(EVAL_SETS)
    claim = on_disk["claim"]["per_set"]["arith-test"]
    grpo, sa = on_disk["methods"]["grpo"]["eval"]["arith-test"], on_disk["methods"]["sa-grpo"]["eval"]["arith-test"]
    assert claim["grpo"]["mean_length"] == grpo["mean_length"]["mean"]
    assert claim["accuracy_drop_points"] == pytest.approx(100 * (grpo["accuracy"]["mean"] - sa["accuracy"]["mean"]))
    assert on_disk["claim"]["holds_in_domain"] == claim["holds"]
    # the answers are cached next to each run, one record per problem
    summary_file, records = read_eval(out / "sa-grpo-s1", "logic-test")
    assert summary_file["step"] == compare.QUICK_STEPS and len(records) == 3

    # a second call trains and evaluates nothing: every file of the runs stays untouched
    before = mtimes(out / "grpo-s0") | mtimes(out / "base")
    again = small_compare(tiny_dir, out)
    assert again["runs_trained"] == 0 and again["runs_cached"] == 7
    assert mtimes(out / "grpo-s0") | mtimes(out / "base") == before
    assert again["methods"]["grpo"]["eval"] == on_disk["methods"]["grpo"]["eval"]

    # more steps: the runs continue from their checkpoints (steps 1-2 unchanged), then are evaluated again
    first = compare.read_metrics(out / "er-s0")
    more = small_compare(tiny_dir, out, steps=compare.QUICK_STEPS + 1, methods=("er",))
    assert more["runs_trained"] == 1
    metrics = compare.read_metrics(out / "er-s0")
    assert [m["step"] for m in metrics] == [1, 2, 3] and metrics[:2] == first
    assert read_eval(out / "er-s0", "arith-test")[0]["step"] == 3


def test_stale_runs_are_retrained_and_foreign_runs_refused(tiny_dir, tmp_path):
    out = tmp_path / "grid"
    small_compare(tiny_dir, out, methods=("grpo",), seeds=(0,))
    changed = small_compare(tiny_dir, out, methods=("grpo",), seeds=(0,), learning_rate=3e-4)
    assert changed["runs_trained"] == 1
    assert compare.load_config(out / "grpo-s0").learning_rate == 3e-4
    (out / "grpo-s0" / compare.MARKER).unlink()   # now it looks like a run of `sar train`
    with pytest.raises(ValueError, match="did not start"):
        small_compare(tiny_dir, out, methods=("grpo",), seeds=(0,))
    assert (out / "grpo-s0" / "config.json").is_file()   # never removed


@pytest.mark.slow
def test_two_worker_processes_give_the_same_runs_as_one(tiny_dir, tmp_path):
    settings = dict(model=tiny_dir, steps=1, questions_per_step=2, group_size=3, threads=1, progress=False,
                    eval_dataset="arith-test", eval_size=4, **SMALL)
    runs = grid_runs(tmp_path / "two", methods=("grpo", "sa-grpo"), seeds=(0,), **settings)
    results, base = run_grid(runs, {"arith-test": 4}, workers=2, base_model=tiny_dir, base_dir=tmp_path / "two",
                             progress=False)
    alone, _ = run_grid(grid_runs(tmp_path / "one", methods=("sa-grpo",), seeds=(0,), **settings),
                        {"arith-test": 4}, workers=1, progress=False)
    assert [r["method"] for r in results] == ["grpo", "sa-grpo"] and all(r["trained"] for r in results)
    assert base["arith-test"]["step"] == 0 and base["arith-test"]["n"] == 4
    assert compare.read_metrics(tmp_path / "two" / "sa-grpo-s0")[0]["reward/total"] == \
        compare.read_metrics(tmp_path / "one" / "sa-grpo-s0")[0]["reward/total"]


# ---------------------------------------------------------------- configuration errors
@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=("grpo", "ppo")), "unknown method 'ppo'"),
    (dict(seeds=(0, 0)), "seeds must be distinct"),
    (dict(seeds=()), "at least one seed"),
    (dict(alpha=0.3), "set per run by the method"),
    (dict(group_size=1), "group_size must be >= 2"),
])
def test_bad_grids_fail_before_training(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        grid_runs(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_grid_gives_each_method_its_reward_and_the_claim_methods_every_seed(tmp_path):
    runs = grid_runs(tmp_path, seeds=(3, 4, 5), steps=7)
    assert [(r.method, r.seed) for r in runs] == [("grpo", 3), ("grpo", 4), ("grpo", 5), ("sa-grpo", 3),
                                                  ("sa-grpo", 4), ("sa-grpo", 5), ("sar-only", 3), ("o1", 3),
                                                  ("er", 3)]
    configs = {r.method: r.config.resolved() for r in runs}
    assert (configs["grpo"].reward, configs["grpo"].alpha) == ("none", 0.0)
    assert (configs["sa-grpo"].reward, configs["sa-grpo"].alpha) == ("sar", 0.2)
    assert (configs["sar-only"].correctness_weight, configs["sar-only"].alpha) == (0.0, 1.0)
    assert configs["o1"].alpha == compare.R.DEFAULT_ALPHAS["o1"] and configs["er"].reward == "er"
    assert all(c.steps == 7 for c in configs.values()) and runs[0].run_dir == tmp_path / "grpo-s3"


def test_cli_refuses_bad_options(capsys):
    assert main(["compare", "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert main(["compare", "--methods", "grpo", "dpo"]) == 2
    assert "unknown method 'dpo'" in capsys.readouterr().err
    assert main(["compare", "--steps", "0"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err


# ---------------------------------------------------------------- the numbers
def test_paper_claim_arithmetic():
    grpo = {"accuracy": 0.50, "mean_length": 100.0}
    ok = paper_claim(grpo, {"accuracy": 0.495, "mean_length": 79.0})
    assert ok["length_reduction"] == pytest.approx(0.21) and ok["accuracy_drop_points"] == pytest.approx(0.5)
    assert ok["holds"] and ok["shorter_enough"] and ok["accurate_enough"]
    assert paper_claim(grpo, {"accuracy": 0.49, "mean_length": 80.0})["holds"]       # both limits exactly met
    too_long = paper_claim(grpo, {"accuracy": 0.60, "mean_length": 81.0})
    assert not too_long["holds"] and not too_long["shorter_enough"] and too_long["accuracy_drop_points"] < 0
    too_wrong = paper_claim(grpo, {"accuracy": 0.485, "mean_length": 50.0})
    assert not too_wrong["holds"] and too_wrong["accuracy_drop_points"] == pytest.approx(1.5)
    assert paper_claim({"accuracy": 0.1, "mean_length": 0.0}, {"accuracy": 0.1, "mean_length": 5.0})["holds"] is None


def test_stats_mean_and_sample_std():
    s = stats([0.1, 0.2, 0.3])
    assert s["per_seed"] == [0.1, 0.2, 0.3] and s["mean"] == pytest.approx(0.2) and s["std"] == pytest.approx(0.1)
    assert stats([0.4])["std"] == 0.0 and stats([None, 2.0])["mean"] == 2.0 and stats([None])["mean"] is None


def test_behaviour_counts_on_hand_made_answers():
    texts = [
        "First, 3 + 4 = 7. Then 7 * 2 = 14. Let me double-check: 14 / 2 = 7. Correct. The answer is 14.",
        "Wait, let me recompute 9 - 2. It is 7. The answer is 7.",
        "The answer is 5.",
        "We are told: Tom has 3 apples. Next, 3 + 1 = 4. Finally the answer is 4. Checking again: yes.",
    ]
    counts = count_behaviours(texts)
    # verification: "check" (double-check) + "Correct." in 1; "Checking" in 4 -> 3 matches, 2 answers
    assert counts["verification"] == {"per_answer": 3 / 4, "share": 2 / 4}
    # backtracking: "Wait" + "let me recompute" in 2
    assert counts["backtracking"] == {"per_answer": 2 / 4, "share": 1 / 4}
    # enumeration: First, Then in 1; Next, Finally in 4
    assert counts["enumeration"] == {"per_answer": 4 / 4, "share": 2 / 4}
    assert counts["restatement"] == {"per_answer": 1 / 4, "share": 1 / 4}
    assert count_behaviours([])["verification"] == {"per_answer": 0.0, "share": 0.0}
    # whole words only: "thence" is not "then", "firstly" is not "first"
    assert count_behaviours(["thence firstly"])["enumeration"]["per_answer"] == 0


def test_mean_curves_average_runs_step_by_step(tmp_path):
    for name, rows in {"a": [(1, 1.0, 10.0), (2, 3.0, None)], "b": [(1, 3.0, 20.0), (2, 5.0, 40.0)]}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text("".join(
            json.dumps({"step": s, "reward/total": r, "length/correct_mean": c}) + "\n" for s, r, c in rows))
    curves = mean_curves([tmp_path / "a", tmp_path / "b"], ["reward/total", "length/correct_mean"])
    assert curves["reward/total"] == {"step": [1, 2], "mean": [2.0, 4.0], "std": [pytest.approx(2 ** 0.5)] * 2}
    assert curves["length/correct_mean"] == {"step": [1, 2], "mean": [15.0, 40.0],
                                             "std": [pytest.approx(50 ** 0.5), 0.0]}


def test_method_config_fills_the_reward_fields(tmp_path):
    config = compare.method_config("sar-only", 5, tmp_path / "x", steps=3)
    assert isinstance(config, GRPOConfig) and config.reward == "sar" and config.correctness_weight == 0.0
    assert config.seed == 5 and config.out == str(tmp_path / "x") and config.steps == 3


def test_a_model_folder_and_its_copy_are_the_same_model(tiny_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy-of-the-model"
    shutil.copytree(tiny_dir, copy)
    out = tmp_path / "grid"
    small_compare(tiny_dir, out, methods=("o1",))
    assert compare.model_fingerprint(str(copy)) == compare.model_fingerprint(tiny_dir)
    assert small_compare(str(copy), out, methods=("o1",))["runs_cached"] == 1      # same weights: reused
    more = small_compare(str(copy), out, methods=("o1",), steps=compare.QUICK_STEPS + 1)
    assert more["runs_trained"] == 1 and len(compare.read_metrics(out / "o1-s0")) == compare.QUICK_STEPS + 1
