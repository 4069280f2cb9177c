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
    assert {os.path.basename(p) for p in summary["figures"]} == {"grpo_vs_sar.png", "grpo_vs_sar_curves.png"}
    assert on_disk["command"] == "sar compare --quick" and on_disk["settings"]["steps"] == compare.QUICK_STEPS
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
