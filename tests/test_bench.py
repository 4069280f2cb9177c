"""sar_lib.lab.bench: the step-timing benchmarks (SAR's overhead, our step vs TRL's) in tiny sizes."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import positive

from sar_lib.lab import bench
from sar_lib.lab.cli import main
from sar_lib.lab.memory_probe import ProbeShape

# Steps of the conftest random model (60k parameters): a fraction of a second each on 2 cores.
TINY = bench.BenchSizes(questions_per_step=2, group_size=2, answer_tokens=8, warmup_steps=1, steps=2, trl_cycles=1,
                        engine_questions=2, engine_steps=2)


# ---------------------------------------------------------------- GRPO steps
def test_sar_overhead_steps_are_timed_at_forced_lengths(tiny_dir):
    result = bench.measure_sar_overhead(tiny_dir, TINY)
    assert positive(result["sar_overhead_ratio"]) and positive(result["sar_overhead_ratio_from_step_timer"])
    assert result["sar_overhead_ratio_from_step_timer"] > 1.0  # SAR's pass is part of the SA-GRPO step
    assert len(result["step_s_sar"]) == len(result["step_s_grpo"]) == TINY.steps
    for name in ("sar_steps", "grpo_steps"):
        summary = result[name]
        assert summary["answer_length_mean"] == TINY.answer_tokens  # eos suppressed: every answer full length
        assert summary["truncation_rate"] == 1.0
        for key in ("time_step", "time_generate", "time_score", "time_update", "generation_tokens_per_s"):
            assert positive(summary[key]), (name, key, summary[key])
    assert positive(result["sar_steps"]["time_sar"]) and result["grpo_steps"]["time_sar"] is None


def test_the_engine_is_timed_against_the_reference_path_and_checked_exact(tiny_dir):
    result = bench.measure_engine_speedup(tiny_dir, TINY)
    for key in ("engine_step_speedup", "engine_generate_speedup", "engine_rollouts_per_s", "reference_rollouts_per_s"):
        assert positive(result[key]), (key, result[key])
    checks = result["engine_checks"]
    assert checks["greedy_identical"] and checks["same_seed_same_rollouts"] and checks["max_logprob_gap"] < 1e-4
    assert checks["passed"]
    for name in ("engine_steps", "reference_steps"):   # natural lengths: answers stop by themselves
        assert result[name]["steps_timed"] == TINY.engine_steps
        assert 0 < result[name]["answer_length_mean"] <= TINY.answer_tokens


def test_step_config_forces_lengths_and_splits_the_step_in_two_updates(tiny_dir):
    config = bench.step_config(tiny_dir, TINY, reward="none")
    assert config.suppress_eos and config.reward == "none" and not config.log_sar and config.alpha == 0
    assert config.micro_batch_size * config.updates_per_step == TINY.questions_per_step * TINY.group_size
    with pytest.raises(ValueError, match="even number"):
        bench.BenchSizes(questions_per_step=3)
    assert bench.FULL.probe_shape() == ProbeShape()   # the memory probe's sizes have one default
    assert bench.QUICK.probe_shape().answer_tokens == bench.QUICK.memory_answer_tokens


def test_run_bench_reports_every_figure(tiny_dir, monkeypatch):
    pytest.importorskip("trl")
    monkeypatch.setattr(bench, "bench_model", lambda workdir: (tiny_dir, "the conftest random tiny model"))
    # measured above, in processes of its own
    monkeypatch.setattr(bench, "measure_logprob_memory", lambda shape, device: {"logprob_memory_ratio": 0.1})
    torch.set_num_threads(2)
    result = bench.run_bench(sizes=TINY, progress=False, command="test")
    assert torch.get_num_threads() == 2  # run_bench restores the thread count it changed
    for key in ("sar_overhead_ratio", "trl_step_ratio", "logprob_memory_ratio", "generation_tokens_per_s",
                "time_generate", "time_score", "time_update", "time_sar"):
        assert positive(result[key]), (key, result[key])
    assert set(result["meets_targets"]) == set(bench.TARGETS) | set(bench.LOWER_TARGETS)
    assert positive(result["engine_step_speedup"]) and positive(result["engine_generate_speedup"])
    trl = result["details"]["trl"]
    assert trl["trl_completion_length_mean"] == TINY.answer_tokens  # TRL's answers are forced to full length too
    assert len(trl["trl_cycle_s"]) == len(trl["ours_step_s"]) == TINY.trl_cycles
    assert all(positive(t) for t in trl["trl_cycle_s"] + trl["ours_step_s"])
    machine = result["machine"]
    assert machine["command"] == "test" and machine["device"] == "cpu" and machine["torch_threads"] == 1
    assert machine["versions"]["torch"] and machine["date"]
    json.dumps(result)  # JSON-ready
    table = bench.format_bench(result)
    assert "sar_overhead_ratio" in table and "trl_step_ratio" in table


# ---------------------------------------------------------------- CLI
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is present")
def test_bench_cli_explains_a_missing_gpu(capsys):
    assert main(["bench", "--device", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err
