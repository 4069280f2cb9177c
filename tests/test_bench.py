"""sar_lib.bench: the benchmark measurements in tiny sizes, and the GPU check's dry run on CPU."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sar_lib import bench
from sar_lib.cli import main
from sar_lib.perplexity import answer_logprobs, pack_sequences

# Steps of the conftest random model (60k parameters): a fraction of a second each on 2 cores. The
# memory probe is large enough (chunk ~65 MB, naive ~400 MB) to rise above the process's earlier peak.
TINY = bench.BenchSizes(questions_per_step=2, group_size=2, answer_tokens=8, warmup_steps=1, steps=2, trl_cycles=1,
                        vocab_size=32000, memory_batch=2, memory_answer_tokens=512, memory_context_tokens=8)


def positive(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


# ---------------------------------------------------------------- log-prob memory
def test_naive_baseline_computes_the_same_logprobs_as_answer_logprobs(tiny_model):
    g = torch.Generator().manual_seed(0)
    vocab = tiny_model.config.vocab_size
    contexts = [torch.randint(vocab, (n,), generator=g).tolist() for n in (5, 9, 3)]
    answers = [torch.randint(vocab, (n,), generator=g).tolist() for n in (7, 2, 11)]
    batch = pack_sequences(contexts, answers, pad_token_id=0)
    with torch.no_grad():
        naive = bench.naive_answer_logprobs(tiny_model, batch)
        chunked = answer_logprobs(tiny_model, batch, chunk_size=4).logprobs
    torch.testing.assert_close(naive, chunked, atol=1e-5, rtol=1e-5)
    assert bool((naive[~batch.answer_mask] == 0).all()) and bool((naive[batch.answer_mask] < 0).all())


def test_logprob_memory_ratio_is_well_formed_and_chunking_saves_memory():
    result = bench.measure_logprob_memory(TINY)
    # naive: [2, 512, 32000] fp32 logits, a contiguous copy and the log-probs (~390 MB); chunked: 256 rows
    # of logits and log-probs at a time (~65 MB)
    assert positive(result["chunked_peak_mb"]) and positive(result["naive_peak_mb"])
    # When the chunked call stays below the process's earlier peak (model building), ru_maxrss does not
    # move and its peak is over-estimated (peaks_valid False): the ratio is then an upper bound, and
    # chunking must still win. ~0.17 when both peaks are valid.
    assert 0 < result["logprob_memory_ratio"] < 1
    assert result["logprobs_agree"]
    assert result["shape"]["vocab"] == 32000 and result["shape"]["answer_tokens"] == 512


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


def test_step_config_forces_lengths_and_splits_the_step_in_two_updates(tiny_dir):
    config = bench.step_config(tiny_dir, TINY, reward="none")
    assert config.suppress_eos and config.reward == "none" and not config.log_sar and config.alpha == 0
    assert config.micro_batch_size * config.updates_per_step == TINY.questions_per_step * TINY.group_size
    with pytest.raises(ValueError, match="even number"):
        bench.BenchSizes(questions_per_step=3)


def test_run_bench_reports_every_figure(tiny_dir, monkeypatch):
    pytest.importorskip("trl")
    monkeypatch.setattr(bench, "bench_model", lambda workdir: (tiny_dir, "the conftest random tiny model"))
    # measured above, in processes of its own
    monkeypatch.setattr(bench, "measure_logprob_memory", lambda sizes, device: {"logprob_memory_ratio": 0.1})
    torch.set_num_threads(2)
    result = bench.run_bench(sizes=TINY, progress=False, command="test")
    assert torch.get_num_threads() == 2  # run_bench restores the thread count it changed
    for key in ("sar_overhead_ratio", "trl_step_ratio", "logprob_memory_ratio", "generation_tokens_per_s",
                "time_generate", "time_score", "time_update", "time_sar"):
        assert positive(result[key]), (key, result[key])
    assert set(result["meets_targets"]) == set(bench.TARGETS)
    trl = result["details"]["trl"]
    assert trl["trl_completion_length_mean"] == TINY.answer_tokens  # TRL's answers are forced to full length too
    assert len(trl["trl_cycle_s"]) == len(trl["ours_step_s"]) == TINY.trl_cycles
    assert all(positive(t) for t in trl["trl_cycle_s"] + trl["ours_step_s"])
    machine = result["machine"]
    assert machine["command"] == "test" and machine["device"] == "cpu" and machine["torch_threads"] == 1
    assert machine["versions"]["torch"] and machine["date"]
    json.dumps(result)  # JSON-ready
    table = bench.format_table(result)
    assert "sar_overhead_ratio" in table and "trl_step_ratio" in table


# ---------------------------------------------------------------- the GPU check's dry run
@pytest.mark.slow  # 25-40 s: two shrunk models, 4-bit, and the memory probe's two fresh processes
def test_gpu_check_dry_run_writes_every_key(tmp_path):
    path = tmp_path / "out" / "gpu_check.json"
    report = bench.gpu_check(path, dry_run=True, steps=2, answer_tokens=4, progress=False, command="test")
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    assert report["ok"] and report["dry_run"] and set(report["models"]) == set(bench.GPU_CHECK_MODELS)
    assert report["logprob_memory"]["logprob_memory_ratio"] > 0
    for name, r in report["models"].items():
        assert r["status"] == "ok", (name, r.get("error"))
        assert r["target_peak_gb"] == bench.GPU_CHECK_MODELS[name][1]
        assert r["config"]["group_size"] == 6 and r["config"]["max_new_tokens"] == 4 and r["config"]["lora_r"] == 16
        assert len(r["per_step"]) == 2 and r["steps_timed"] == 1
        assert r["answer_length_mean"] == 4 and r["truncation_rate"] == 1.0
        for key in ("build_s", "load_s", "time_step", "time_generate", "time_score", "time_sar", "time_update",
                    "generation_tokens_per_s"):
            assert positive(r[key]), (name, key, r[key])
        assert r["parameters"]["trainable"] > 0
        if report["settings"]["load_in_4bit"]:
            assert r["linear4bit_layers"] == 2 * 7  # shrunk to 2 layers; every linear of a block in NF4
        assert r["peak_allocated_gb"] is None and r["meets_target"] is None  # not measured on CPU
    assert "qwen2.5-1.5b-instruct" in bench.format_gpu_table(report)


def test_gpu_check_records_a_failing_model_and_goes_on(tmp_path, monkeypatch):
    def broken(name, *args, **kwargs):
        if name == "qwen2.5-0.5b-instruct":
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(name, *args, **kwargs)

    real = bench.random_model_dir
    monkeypatch.setattr(bench, "random_model_dir", broken)
    monkeypatch.setattr(bench, "measure_logprob_memory", lambda *a, **k: {"logprob_memory_ratio": 0.1})
    report = bench.gpu_check(tmp_path / "g.json", dry_run=True, steps=1, answer_tokens=2, progress=False)
    failed, passed = report["models"]["qwen2.5-0.5b-instruct"], report["models"]["qwen2.5-1.5b-instruct"]
    assert failed["status"] == "error" and "simulated" in failed["error"] and "Traceback" in failed["traceback"]
    assert passed["status"] == "ok" and not report["ok"]


def test_random_model_dir_names_the_shipped_configs(tmp_path, tiny_tokenizer):
    with pytest.raises(FileNotFoundError, match="qwen2.5-0.5b-instruct"):
        bench.random_model_dir("qwen9-7b", tiny_tokenizer, tmp_path, "cpu")


# ---------------------------------------------------------------- CLI
@pytest.mark.parametrize("argv, message", [
    (["bench", "--dry-run"], "--dry-run belongs to --gpu-check"),
    (["bench", "--gpu-check", "--quick"], "--gpu-check takes no"),
    (["bench", "--time-budget", "10"], "--time-budget belongs to --gpu-check"),
])
def test_bench_cli_rejects_bad_flag_combinations(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is present")
@pytest.mark.parametrize("argv", [["bench", "--gpu-check"], ["bench", "--device", "cuda"]])
def test_bench_cli_explains_a_missing_gpu(argv, capsys):
    assert main(argv) == 2
    assert "CUDA" in capsys.readouterr().err
