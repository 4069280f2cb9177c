"""sar_lib.compare: the `sar compare` command end to end on the random test model (the grid, its cache
and the results JSON and figures), and its command line."""

import json
import os

import pytest
from conftest import SMALL_GRID

from sar_lib import analysis, compare, grid
from sar_lib.cli import main
from sar_lib.runs import read_config, read_eval, read_metrics

EVAL_SETS = {"arith-test": 4, "logic-test": 3}


def small_compare(tiny_dir, out, **kwargs):
    values = dict(model=tiny_dir, quick=True, workers=1, eval_sets=EVAL_SETS, progress=False, **SMALL_GRID)
    values.update(kwargs)
    return compare.compare(out, **values)


def mtimes(directory):
    return {str(p): p.stat().st_mtime_ns for p in sorted(directory.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- the grid end to end
@pytest.mark.slow   # ~15 s on an idle 2-core machine, 30 s on a busy one
def test_quick_grid_writes_the_schema_then_reuses_and_resumes(tiny_dir, tmp_path):
    out = tmp_path / "grid"
    summary = small_compare(tiny_dir, out, command="sar compare --quick")
    multi = [m for m in grid.DEFAULT_METHODS if m in grid.MULTI_SEED_METHODS]
    n_runs = 2 * len(multi) + len(grid.DEFAULT_METHODS) - len(multi)
    assert summary["runs_trained"] == n_runs == 11 and summary["runs_cached"] == 0   # 2 + 2 seeds, 7 single-seed
    on_disk = json.loads((out / "grpo_vs_sar.json").read_text())
    assert on_disk["figures"] == summary["figures"] and all(os.path.isfile(p) for p in summary["figures"])
    assert {os.path.basename(p) for p in summary["figures"]} == {"grpo_vs_sar.png", "grpo_vs_sar_curves.png",
                                                                 "budget_curve.png"}
    assert on_disk["command"] == "sar compare --quick" and on_disk["settings"]["steps"] == compare.QUICK_STEPS
    assert on_disk["settings"]["device"] == on_disk["machine"]["device"] == "cpu"
    assert on_disk["settings"]["workers"] == 1
    assert on_disk["settings"]["seeds"] == [0, 1] and on_disk["settings"]["eval_sets"] == EVAL_SETS
    assert on_disk["machine"]["cpu_cores"] >= 1 and on_disk["wall_seconds"] > 0
    assert list(on_disk["methods"]) == list(grid.DEFAULT_METHODS)
    for name, method in on_disk["methods"].items():
        n_seeds = 2 if name in grid.MULTI_SEED_METHODS else 1
        assert len(method["seeds"]) == n_seeds and set(method["eval"]) == set(EVAL_SETS)
        for dataset, metrics in method["eval"].items():
            acc = metrics["accuracy"]
            assert len(acc["per_seed"]) == n_seeds and 0 <= acc["mean"] <= 1
            assert acc["mean"] == pytest.approx(sum(acc["per_seed"]) / n_seeds)
            assert metrics["mean_length"]["mean"] >= 0 and metrics["n"] == EVAL_SETS[dataset]
            assert set(method["behaviours"][dataset]) == set(analysis.BEHAVIOUR_PATTERNS)
            assert sum(method["styles"][dataset]["greedy"].values()) == pytest.approx(1.0)
        assert set(method["curves"]) >= set(analysis.CURVE_KEYS)
        assert method["train_seconds"]["mean"] > 0
    assert on_disk["methods"]["sar-only"]["correctness_weight"] == 0.0
    assert set(on_disk["base"]) == set(EVAL_SETS)
    # the budget curve: the base model, then the greedy evaluation at every step (eval_every 1)
    rollouts = compare.QUICK_SETTINGS["questions_per_step"] * compare.QUICK_SETTINGS["group_size"]
    assert list(on_disk["budget_curve"]) == list(grid.DEFAULT_METHODS)
    for name, curve in on_disk["budget_curve"].items():
        assert [(e["step"], e["rollouts"]) for e in curve] == [(k, k * rollouts) for k in range(compare.QUICK_STEPS + 1)]
        assert curve[0]["accuracy"]["mean"] == on_disk["base"]["arith-test"]["accuracy"]
        final = on_disk["methods"][name]["eval"]["arith-test"]   # the last step's evaluation is the final one
        assert curve[-1]["accuracy"]["per_seed"] == final["accuracy"]["per_seed"]
        assert curve[-1]["mean_length"]["mean"] == pytest.approx(final["mean_length"]["mean"])
    claims = {c["id"]: c for c in on_disk["claims"]}
    assert list(claims) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    grpo, sa = on_disk["methods"]["grpo"]["eval"]["arith-test"], on_disk["methods"]["sa-grpo"]["eval"]["arith-test"]
    assert claims["C1"]["numbers"]["grpo"] == [grpo["mean_length"]["mean"], grpo["accuracy"]["mean"]]
    assert claims["C1"]["numbers"]["accuracy_drop_points"] == pytest.approx(
        100 * (grpo["accuracy"]["mean"] - sa["accuracy"]["mean"]))
    assert set(claims["C6"]["numbers"]) == {"logic-test"}
    assert all(c["holds"] in (True, False, None) for c in claims.values())
    # the answers are cached next to each run, one record per problem
    summary_file, records = read_eval(out / "sa-grpo-s1", "logic-test")
    assert summary_file["step"] == compare.QUICK_STEPS and len(records) == 3

    # a second call trains and evaluates nothing: every file of the runs stays untouched
    before = mtimes(out / "grpo-s0") | mtimes(out / "base")
    again = small_compare(tiny_dir, out)
    assert again["runs_trained"] == 0 and again["runs_cached"] == n_runs
    assert mtimes(out / "grpo-s0") | mtimes(out / "base") == before
    assert again["methods"]["grpo"]["eval"] == on_disk["methods"]["grpo"]["eval"]

    # more steps: the runs continue from their checkpoints (steps 1-2 unchanged), then are evaluated again
    first = read_metrics(out / "er-0.1-s0")
    more = small_compare(tiny_dir, out, steps=compare.QUICK_STEPS + 1, methods=("er-0.1",))
    assert more["runs_trained"] == 1
    metrics = read_metrics(out / "er-0.1-s0")
    assert [m["step"] for m in metrics] == [1, 2, 3] and metrics[:2] == first
    assert read_eval(out / "er-0.1-s0", "arith-test")[0]["step"] == 3


def test_stale_runs_are_retrained_and_foreign_runs_refused(tiny_dir, tmp_path):
    out = tmp_path / "grid"
    small_compare(tiny_dir, out, methods=("grpo",), seeds=(0,))
    changed = small_compare(tiny_dir, out, methods=("grpo",), seeds=(0,), learning_rate=3e-4)
    assert changed["runs_trained"] == 1
    assert read_config(out / "grpo-s0").learning_rate == 3e-4
    (out / "grpo-s0" / grid.MARKER).unlink()   # now it looks like a run of `sar train`
    with pytest.raises(ValueError, match="did not start"):
        small_compare(tiny_dir, out, methods=("grpo",), seeds=(0,))
    assert (out / "grpo-s0" / "config.json").is_file()   # never removed


def test_a_model_folder_and_its_copy_are_the_same_model(tiny_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy-of-the-model"
    shutil.copytree(tiny_dir, copy)
    out = tmp_path / "grid"
    small_compare(tiny_dir, out, methods=("o1-0.03",))
    assert grid.model_fingerprint(str(copy)) == grid.model_fingerprint(tiny_dir)
    assert small_compare(str(copy), out, methods=("o1-0.03",))["runs_cached"] == 1      # same weights: reused
    more = small_compare(str(copy), out, methods=("o1-0.03",), steps=compare.QUICK_STEPS + 1)
    assert more["runs_trained"] == 1 and len(read_metrics(out / "o1-0.03-s0")) == compare.QUICK_STEPS + 1


def test_cli_refuses_bad_options(capsys):
    assert main(["compare", "--workers", "0"]) == 2
    assert "workers must be >= 1" in capsys.readouterr().err
    assert main(["compare", "--methods", "grpo", "dpo"]) == 2
    assert "unknown method 'dpo'" in capsys.readouterr().err
    assert main(["compare", "--steps", "0"]) == 2
    assert "steps must be >= 1" in capsys.readouterr().err
    assert main(["compare", "--eval-size", "0"]) == 2
    assert "evaluation sizes must be >= 1" in capsys.readouterr().err
    assert main(["compare", "--learning-rate", "0"]) == 2
    assert "learning_rate must be > 0" in capsys.readouterr().err


# ---------------------------------------------------------------- defaults, figures and the device, without training
def test_the_default_grid_trains_every_run_on_9600_rollouts_and_evaluates_every_960(tmp_path):
    runs, _ = compare.default_grid(tmp_path)
    for spec in runs:
        config = spec.config.resolved()
        assert config.steps * config.questions_per_step * config.group_size == 9600
        assert config.eval_every * config.questions_per_step * config.group_size == 960
    quick, _ = compare.default_grid(tmp_path, quick=True)
    assert all(spec.config.resolved().eval_every == 1 for spec in quick)   # a budget curve of two points


def fake_summary():
    def seeds(values):
        return {"per_seed": values, "mean": sum(values) / len(values), "std": 0.0}

    curve = {"step": [1, 2], "mean": [0.1, 0.2], "std": [0.0, 0.0]}
    methods = {name: {"label": grid.METHODS[name].label,
                      "eval": {"arith-test": {"accuracy": seeds([0.5, 0.6]), "mean_length": seeds([30.0, 20.0])}},
                      "curves": {k: curve for k in analysis.CURVE_KEYS}} for name in ("grpo", "sa-grpo")}
    budget = [{"step": s, "rollouts": 96 * s, "accuracy": seeds([0.5, 0.6]), "mean_length": seeds([30.0, 20.0])}
              for s in (0, 10)]
    return {"methods": methods, "base": {"arith-test": {"accuracy": 0.4, "mean_length": 35.0}},
            "budget_curve": {"grpo": budget, "sa-grpo": budget[:1]}}


def test_plot_summary_writes_the_budget_curve_beside_the_other_figures(tmp_path):
    import matplotlib.pyplot as plt

    open_before = len(plt.get_fignums())
    paths = compare.plot_summary(fake_summary(), tmp_path, prefix="results")
    assert len(plt.get_fignums()) == open_before   # written and closed
    assert [p.name for p in paths] == ["results.png", "results_curves.png", "budget_curve.png"]
    assert all(p.parent == tmp_path and p.stat().st_size > 0 for p in paths)
    fig = compare.budget_curve_figure(fake_summary())
    assert [line.get_color() for line in fig.axes[1].lines] == [grid.METHODS["grpo"].color,
                                                               grid.METHODS["sa-grpo"].color]
    plt.close("all")


def test_default_workers_share_one_gpu_up_to_a_cap():
    assert compare.default_workers("cpu", 13) == compare.DEFAULT_CPU_WORKERS == 2
    assert compare.default_workers("cuda", 6) == 6 and compare.default_workers("cuda:0", 4) == 4
    assert compare.default_workers("cuda", 13) == compare.DEFAULT_GPU_WORKERS < 13


class Stop(Exception):
    """Raised by the stand-in for run_grid: what compare asked of it is all a test needs."""


def grid_requests(monkeypatch, tmp_path, *flags):
    """The runs and the keyword arguments that `sar compare --quick FLAGS` hands to run_grid (nothing trains)."""
    asked = {}

    def stand_in(runs, eval_sets, **kwargs):
        asked.update(runs=runs, **kwargs)
        raise Stop

    monkeypatch.setattr(compare, "run_grid", stand_in)
    with pytest.raises(Stop):
        main(["compare", "--quick", "--out", str(tmp_path / "grid"), "--no-progress", *flags])
    return asked


def test_device_cpu_gives_the_runs_of_no_flag_on_a_machine_without_gpu(monkeypatch, tmp_path):
    monkeypatch.setattr(compare, "default_device", lambda: "cpu")
    plain, cpu = grid_requests(monkeypatch, tmp_path), grid_requests(monkeypatch, tmp_path, "--device", "cpu")
    assert [s.config for s in plain["runs"]] == [s.config for s in cpu["runs"]]
    assert {s.config.device for s in cpu["runs"]} == {"cpu"}
    assert plain["workers"] == cpu["workers"] == compare.DEFAULT_CPU_WORKERS
    assert grid_requests(monkeypatch, tmp_path, "--device", "cpu", "--workers", "3")["workers"] == 3


def test_device_cuda_without_a_gpu_fails_before_anything_trains(monkeypatch, tmp_path, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(compare, "run_grid", lambda *a, **k: pytest.fail("the grid started"))
    assert main(["compare", "--quick", "--device", "cuda", "--out", str(tmp_path / "grid")]) == 2
    err = capsys.readouterr().err
    assert "sees no CUDA GPU" in err and "--device cpu" in err
    assert main(["compare", "--quick", "--device", "gpu", "--out", str(tmp_path / "grid")]) == 2
    assert "device must be 'cpu' or 'cuda'" in capsys.readouterr().err
    assert not (tmp_path / "grid").exists()
