"""report_to: TensorBoard event files that hold exactly metrics.jsonl's scalars and the config (offline),
resume continuing the same log dir, and clear errors for a tool whose library is missing."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from test_grpo import small

from sar_lib import runs, tracking
from sar_lib.lab import compare
from sar_lib.lab.cli import main
from sar_lib.grpo import train
from sar_lib.grpo_config import GRPOConfig
from sar_lib.runs import read_metrics

pytest.importorskip("tensorboard", reason="tensorboard is a dev dependency: pip install -r requirements.txt")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402


def read_events(run_dir) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / tracking.TENSORBOARD_DIR), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def assert_scalars_equal_metrics(run_dir) -> None:
    """Every number of metrics.jsonl is one TensorBoard scalar event at its step (float32, as TensorBoard stores it)."""
    events = read_events(run_dir)
    metrics = read_metrics(run_dir)
    want: dict[str, list[tuple[int, float]]] = {}
    for row in metrics:
        for key, value in row.items():
            if key != "step" and value is not None:
                want.setdefault(key, []).append((row["step"], float(np.float32(value))))
    assert sorted(events.Tags()["scalars"]) == sorted(want)
    for key, points in want.items():
        assert [(e.step, e.value) for e in events.Scalars(key)] == points, key


def test_sar_train_report_to_tensorboard_writes_the_metrics_and_the_config(tiny_dir, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--model", tiny_dir, "--group-size", "2", "--questions-per-step", "2", "--max-new-tokens", "8",
            "--max-prompt-tokens", "400", "--micro-batch-size", "4", "--eval-size", "2", "--train-size", "10",
            "--steps", "2", "--no-progress", "--report-to", "tensorboard", "--out", str(out)]
    assert main(args) == 0
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [1, 2]
    assert_scalars_equal_metrics(out)
    for key in ("reward", "rewards/correctness/mean", "sar/mean", "completions/mean_length", "loss", "eval/accuracy"):
        assert key in read_events(out).Tags()["scalars"]
    # the run's config, as a text summary that TensorBoard's text tab renders (a JSON code block)
    (config_event,) = read_events(out).Tensors("config/text_summary")
    text = tensor_util.make_ndarray(config_event.tensor_proto).item().decode()
    logged = json.loads(text.removeprefix("```json\n").removesuffix("\n```"))
    assert logged == json.loads((out / "config.json").read_text())
    assert runs.read_config(out).report_to == "tensorboard"


def test_resume_continues_the_log_dir_and_hides_the_steps_after_the_checkpoint(tiny_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = small(tiny_dir, out, steps=2, save_every=1, report_to="tensorboard")
    save = runs.save_checkpoint

    def crash_at_step_2(*args, step, **kwargs):
        if step == 2:
            raise RuntimeError("stopped after logging step 2, before its checkpoint")
        save(*args, step=step, **kwargs)

    monkeypatch.setattr(runs, "save_checkpoint", crash_at_step_2)
    with pytest.raises(RuntimeError, match="before its checkpoint"):
        train(config)
    assert [e.step for e in read_events(out).Scalars("reward")] == [1, 2]   # step 2 logged, not checkpointed
    first_step_2 = read_events(out).Scalars("reward")[1].value
    monkeypatch.setattr(runs, "save_checkpoint", save)

    train(config, resume=True)
    assert len(list((out / tracking.TENSORBOARD_DIR).glob("events.out.tfevents.*"))) == 2   # same folder, 2 sessions
    assert [e.step for e in read_events(out).Scalars("reward")] == [1, 2]   # the old step 2 is purged, not doubled
    assert_scalars_equal_metrics(out)
    # exact resume: the step 2 that replaced the purged one is the same step
    assert read_events(out).Scalars("reward")[1].value == first_step_2


@pytest.mark.parametrize("tool", ["trackio", "wandb"])
def test_a_tool_whose_library_is_missing_is_refused_with_the_pip_command(tool, tmp_path, monkeypatch, capsys,
                                                                         no_weight_loading):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == tool else find_spec(name, *a))
    message = f"the library is not installed: pip install {tool}"
    with pytest.raises(ValueError, match=message):
        GRPOConfig(report_to=tool).resolved()
    with pytest.raises(ValueError, match=message):
        tracking.open_tracker(tool, tmp_path, {})
    assert main(["train", "--report-to", tool, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()   # refused before the run folder was made
    assert main(["compare", "--quick", "--report-to", tool, "--out", str(tmp_path / "grid")]) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_tool_is_refused():
    with pytest.raises(ValueError, match="unknown report_to 'mlflow'; choose one of none, tensorboard, trackio, wandb"):
        GRPOConfig(report_to="mlflow").resolved()


def test_compare_hands_report_to_to_every_run_of_the_grid(tmp_path):
    grid, _ = compare.default_grid(tmp_path, quick=True, report_to="tensorboard")
    assert grid and {spec.config.report_to for spec in grid} == {"tensorboard"}
    grid, _ = compare.default_grid(tmp_path, quick=True)
    assert {spec.config.report_to for spec in grid} == {"none"}


def test_scalars_drop_the_step_and_null_values():
    row = {"step": 3, "reward": 0.5, "completions/mean_length_correct": None, "completions/clipped_ratio": 0}
    assert tracking.scalars(row) == {"reward": 0.5, "completions/clipped_ratio": 0.0}
