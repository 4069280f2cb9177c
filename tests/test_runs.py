"""sar_lib.runs: a run folder's files written and read back (config, metrics, evaluations, checkpoint state)."""

from __future__ import annotations

import json

import pytest

from sar_lib import runs
from sar_lib.grpo_config import GRPOConfig

REPORT = {"n": 2, "accuracy": 0.5, "mean_length": 3.0, "median_length": 3.0, "mean_length_correct": 2.0,
          "truncation_rate": 0.0,
          "records": [{"id": "a", "response": "The answer is 1.", "correct": True, "length": 2},
                      {"id": "b", "response": "The answer is ünïcode.", "correct": False, "length": 4}]}


def test_config_round_trip_ignores_fields_a_newer_config_lacks(tmp_path):
    config = GRPOConfig(steps=3, out=str(tmp_path)).resolved()
    runs.write_config(tmp_path, config)
    assert runs.has_config(tmp_path) and runs.read_config(tmp_path) == config
    saved = (tmp_path / "config.json").read_text()
    (tmp_path / "config.json").write_text(saved.replace('"steps"', '"old": 1, "steps"'))
    assert runs.read_config(tmp_path) == config
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        runs.read_config(tmp_path / "nothing")


def test_metrics_are_appended_and_cut_back_to_a_checkpoint(tmp_path):
    assert runs.steps_logged(tmp_path) == 0
    for step in (1, 2, 3):
        runs.append_metrics(tmp_path, {"step": step, "loss": float(step)})
    assert runs.steps_logged(tmp_path) == 3 and [m["loss"] for m in runs.read_metrics(tmp_path)] == [1.0, 2.0, 3.0]
    runs.keep_metrics_until(tmp_path, 2)
    assert [m["step"] for m in runs.read_metrics(tmp_path)] == [1, 2]
    runs.remove_metrics(tmp_path)
    with pytest.raises(FileNotFoundError, match="has not trained yet"):
        runs.read_metrics(tmp_path)


def test_an_evaluation_is_stored_with_its_key_and_reused_only_when_the_key_matches(tmp_path):
    written = runs.write_eval(tmp_path, REPORT, dataset="data/my set.jsonl", size=2, max_new_tokens=8, step=5)
    assert written["dataset"] == "data/my set.jsonl" and "records" not in written and written["accuracy"] == 0.5
    assert [p.name for p in runs.eval_paths(tmp_path, "data/my set.jsonl")] == ["eval_my_set.jsonl.json",
                                                                               "eval_my_set.jsonl_records.jsonl"]
    summary, records = runs.read_eval(tmp_path, "data/my set.jsonl")
    assert summary == written and records == REPORT["records"]
    assert runs.matching_eval(tmp_path, dataset="data/my set.jsonl", size=2, step=5) == written
    assert runs.matching_eval(tmp_path, dataset="data/my set.jsonl", size=2, step=6) is None
    assert runs.matching_eval(tmp_path, dataset="arith-test", size=2) is None
    with pytest.raises(FileNotFoundError, match="was not evaluated"):
        runs.read_eval(tmp_path, "arith-test")


def test_no_checkpoint_means_step_zero(tmp_path):
    assert runs.checkpoint_step(tmp_path) == 0 and not runs.has_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        runs.checkpoint_state(tmp_path)
