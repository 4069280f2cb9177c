"""sar_lib.lab.compare: the `sar compare` command end to end on the random test model (the grid, its cache
and the results JSON and figures), and its command line."""

import hashlib
import json
import os

import pytest
import torch
from conftest import SMALL_GRID

from sar_lib import models
from sar_lib.lab import analysis, compare, grid, shipped
from sar_lib.lab.cli import main
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
        # SAR's switch along training (sar_lib.switch), from the base model's on
        assert all(0 <= e["p_stop"]["mean"] <= 1 for e in curve)
        assert curve[0]["p_stop"]["mean"] == on_disk["base"]["arith-test"]["p_stop"]
    claims = {c["id"]: c for c in on_disk["claims"]}
    assert list(claims) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"]
    assert claims["C8"]["numbers"]["base"][1] == on_disk["base"]["arith-test"]["accuracy"]
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
def test_the_default_grid_trains_every_run_on_9600_rollouts_and_evaluates_every_1920(tmp_path):
    runs, _ = compare.default_grid(tmp_path)
    for spec in runs:
        config = spec.config.resolved()
        assert config.steps * config.questions_per_step * config.group_size == 9600
        assert config.eval_every * config.questions_per_step * config.group_size == 1920
        assert config.learning_rate == 2e-4 and config.questions_per_step == 32   # docs/regime.md's choice
    assert sorted({spec.seed for spec in runs if spec.method == "sa-grpo"}) == [0, 1, 2, 3, 4]
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


def test_regimes_figure_draws_each_grid_in_a_darker_shade_of_its_methods_colours():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex, to_rgb

    fig = compare.regimes_figure({"lr 0.0002": fake_summary(), "lr 0.001": fake_summary()})
    colors = [to_hex(line.get_color()) for line in fig.axes[0].lines]
    first, later = colors[:2], colors[2:]
    assert first == [to_hex(grid.METHODS[m].color) for m in ("grpo", "sa-grpo")]
    assert later == [to_hex(tuple(0.6 * c for c in to_rgb(color))) for color in first]
    assert [t.get_text() for t in fig.legends[0].get_texts()][2] == "GRPO, lr 0.001"
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


# ---------------------------------------------------------------- the shipped adapters (sar_lib.lab.shipped)
@pytest.fixture(scope="module")
def finished_grid(tiny_dir, tmp_path_factory):
    """A miniature grid of GRPO and SA-GRPO, seeds 0 and 1, trained once for the shipping tests: its results JSON."""
    out = tmp_path_factory.mktemp("shipped") / "grid"
    return small_compare(tiny_dir, out, methods=("grpo", "sa-grpo"))


@pytest.fixture(scope="module")
def shipment(finished_grid, tmp_path_factory):
    """The adapters of ``finished_grid`` shipped into a folder of their own: ``(folder, manifest)``."""
    folder = tmp_path_factory.mktemp("assets") / "grid"
    return folder, shipped.ship_adapters(finished_grid["json"], folder)


def test_shipping_writes_fp16_adapters_and_a_manifest_that_match_the_grid(finished_grid, shipment, tiny_dir):
    from safetensors.torch import load_file

    folder, manifest = shipment
    # every seed of the multi-seed methods: the first under the method's name, the others as <method>-s<seed>
    assert sorted(p.name for p in folder.iterdir()) == ["grpo", "grpo-s1", "grpo_vs_sar.json", "manifest.json",
                                                        "sa-grpo", "sa-grpo-s1"]
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert (folder / "grpo_vs_sar.json").read_text() == open(finished_grid["json"]).read()
    assert shipped.shipped_methods(folder) == ["grpo", "grpo-s1", "sa-grpo", "sa-grpo-s1"]
    assert shipped.shipped_seeds("sa-grpo", folder) == {0: "sa-grpo", 1: "sa-grpo-s1"}
    rollouts = compare.QUICK_SETTINGS["questions_per_step"] * compare.QUICK_SETTINGS["group_size"]
    for name, entry in manifest.items():
        method = finished_grid["methods"][entry["method"]]
        index = method["seeds"].index(entry["seed"])
        assert entry["run_dir"] == method["run_dirs"][index]
        assert entry["run_dir"].endswith(f"{entry['method']}-s{entry['seed']}")
        assert name == entry["method"] if index == 0 else name == f"{entry['method']}-s{entry['seed']}"
        assert entry["steps"] == compare.QUICK_STEPS and entry["rollouts"] == compare.QUICK_STEPS * rollouts
        assert entry["greedy"] == {d: {k: e[k]["per_seed"][index] for k in ("accuracy", "mean_length")}
                                   for d, e in method["eval"].items()}
        assert set(entry["greedy"]) == set(EVAL_SETS) and entry["model"] == tiny_dir
        assert sorted(p.name for p in (folder / name).iterdir()) == ["adapter_config.json",
                                                                    "adapter_model.safetensors", "config.json"]
        source = os.path.join(entry["run_dir"], "checkpoint", "adapter", "adapter_model.safetensors")
        weights, original = load_file(folder / name / "adapter_model.safetensors"), load_file(source)
        assert set(weights) == set(original) and {w.dtype for w in weights.values()} == {torch.float16}
        assert all(torch.equal(weights[k], original[k].half()) for k in weights)
        assert (folder / name / "adapter_model.safetensors").stat().st_size < 0.6 * os.path.getsize(source)
        assert entry["sha256"] == hashlib.sha256((folder / name / "adapter_model.safetensors").read_bytes()).hexdigest()
        assert json.loads((folder / name / "adapter_config.json").read_text())["base_model_name_or_path"] == tiny_dir
        assert read_config(folder / name) == read_config(entry["run_dir"])


def test_a_shipped_adapter_gives_the_logits_of_its_run(shipment):
    from sar_lib.grpo import load_run

    folder, manifest = shipment
    model, tokenizer = shipped.load_shipped("sa-grpo", directory=folder)
    run_model, _ = load_run(manifest["sa-grpo"]["run_dir"])
    assert not model.training
    batch = tokenizer(["Tom has 3 apples and buys 5 more.", "Every wumpus is a yumpus."], return_tensors="pt",
                      padding=True)
    with torch.no_grad():
        logits, expected = model(**batch).logits, run_model(**batch).logits
        with model.disable_adapter():
            base = model(**batch).logits
    trained = (expected - base).abs().max().item()
    assert trained > 0   # SA-GRPO moved the policy: the comparison below can fail
    assert torch.allclose(logits, expected, atol=1e-2) and (logits - expected).abs().max().item() < trained / 10


def test_unfinished_or_changed_runs_refuse_to_ship_and_leave_the_folder_as_it_was(finished_grid, shipment, tmp_path):
    folder, _ = shipment
    before = mtimes(folder)
    summary = json.loads(open(finished_grid["json"]).read())
    unfinished = tmp_path / "unfinished.json"
    more_steps = {**summary["settings"], "steps": compare.QUICK_STEPS + 1}
    unfinished.write_text(json.dumps({**summary, "settings": more_steps}))
    with pytest.raises(ValueError, match=f"grpo-s0 \\(grpo\\) has a checkpoint at step {compare.QUICK_STEPS}, "
                                         f"not the grid's {compare.QUICK_STEPS + 1}"):
        shipped.ship_adapters(unfinished, folder)
    summary["methods"]["sa-grpo"]["eval"]["logic-test"]["accuracy"]["per_seed"][0] += 0.5
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="sa-grpo-s0 holds no evaluation of logic-test at step 2 matching"):
        shipped.ship_adapters(changed, folder)
    assert mtimes(folder) == before
    with pytest.raises(FileNotFoundError, match="run `sar compare` first"):
        shipped.ship_adapters(tmp_path / "missing.json", tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_load_shipped_names_what_is_shipped_and_how_to_ship(shipment, tmp_path, no_weight_loading):
    folder, _ = shipment
    with pytest.raises(ValueError, match="no adapter of 'o1-0.1' is shipped in .*; shipped: grpo, grpo-s1, sa-grpo"):
        shipped.load_shipped("o1-0.1", directory=folder)
    assert shipped.shipped_methods(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="`sar compare --ship-adapters` trains the grid and ships them"):
        shipped.load_shipped("grpo", directory=tmp_path)


def test_cli_ships_the_adapters_only_with_the_flag(finished_grid, monkeypatch, tmp_path, capsys):
    from sar_lib.lab.cli import build_parser

    assert build_parser().parse_args(["compare", "--ship-adapters"]).ship_adapters == str(shipped.SHIPPED_DIR)
    monkeypatch.setattr(compare, "compare", lambda *args, **kwargs: finished_grid)   # the grid is trained already
    shipped_into = []
    real = shipped.ship_adapters
    monkeypatch.setattr(shipped, "ship_adapters", lambda *args: shipped_into.append(args[1]) or real(*args))
    assert main(["compare", "--quick", "--no-progress"]) == 0 and shipped_into == []
    assert main(["compare", "--quick", "--no-progress", "--ship-adapters", str(tmp_path / "assets")]) == 0
    assert shipped_into == [str(tmp_path / "assets")]
    assert shipped.shipped_methods(tmp_path / "assets") == ["grpo", "grpo-s1", "sa-grpo", "sa-grpo-s1"]
    out = capsys.readouterr().out
    assert f"shipped 4 adapters (grpo, grpo-s1, sa-grpo, sa-grpo-s1) into {tmp_path / 'assets'}" in out


def test_a_quick_grid_never_replaces_the_shipped_adapters(capsys):
    from sar_lib.lab.shipped import SHIPPED_DIR

    assert main(["compare", "--quick", "--ship-adapters"]) == 2
    assert "--quick" in capsys.readouterr().err
    assert main(["compare", "--quick", "--ship-adapters", str(SHIPPED_DIR)]) == 2


def test_default_grid_leaves_a_none_setting_to_the_profile(tmp_path):
    plain, _ = compare.default_grid(tmp_path, quick=True)
    nones, _ = compare.default_grid(tmp_path, quick=True, max_new_tokens=None, max_prompt_tokens=None)
    assert [s.config for s in nones] == [s.config for s in plain]
    assert {s.config.resolved().max_new_tokens for s in nones} == {models.get_profile("tiny-cpu").max_new_tokens}
