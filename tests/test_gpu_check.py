"""sar_lib.lab.gpu_check: its dry run on CPU (the same code as on a GPU, models shrunk), failures recorded, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import positive

from sar_lib.lab import gpu_check
from sar_lib.lab.cli import main
from sar_lib.models import get_profile


@pytest.mark.slow  # 25-40 s: two shrunk models, 4-bit, and the memory probe's two fresh processes
def test_gpu_check_dry_run_writes_every_key(tmp_path):
    path = tmp_path / "out" / "gpu_check.json"
    report = gpu_check.gpu_check(path, dry_run=True, steps=2, answer_tokens=4, progress=False, command="test")
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    names = {name if path == "plain" else f"{name} {path}" for name in gpu_check.GPU_CHECK_MODELS
             for path in gpu_check.PATHS}
    assert report["ok"] and report["dry_run"] and set(report["models"]) == names
    assert report["logprob_memory"]["logprob_memory_ratio"] > 0
    for name, r in report["models"].items():
        assert r["status"] == "ok", (name, r.get("error"))
        model = name.split()[0]
        assert r["target_peak_gb"] == gpu_check.GPU_CHECK_MODELS[model][1]
        assert r["path"] == (name.split()[1] if " " in name else "plain")
        assert r["engine"] == (r["path"] == "engine")
        assert r["fast_generation"] == {"plain": False, "copy": True,
                                        "engine": get_profile(gpu_check.GPU_CHECK_MODELS[model][0]).fast_generation}[r["path"]]
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
    assert set(report["paths_vs_plain"]) == names - set(gpu_check.GPU_CHECK_MODELS)
    for ratios in report["paths_vs_plain"].values():
        assert positive(ratios["step_ratio"]) and positive(ratios["generate_ratio"])
        assert ratios["meets_target"] == (ratios["step_ratio"] <= gpu_check.STEP_RATIO_TARGET)
    text = gpu_check.format_gpu_check(report)
    assert "qwen2.5-1.5b-instruct engine" in text and "x the plain step time" in text


def test_gpu_check_records_a_failing_model_and_goes_on(tmp_path, monkeypatch):
    def broken(name, *args, **kwargs):
        if name == "qwen2.5-0.5b-instruct":
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(name, *args, **kwargs)

    real = gpu_check.random_model_dir
    monkeypatch.setattr(gpu_check, "random_model_dir", broken)
    monkeypatch.setattr(gpu_check, "measure_logprob_memory", lambda *a, **k: {"logprob_memory_ratio": 0.1})
    report = gpu_check.gpu_check(tmp_path / "g.json", dry_run=True, steps=1, answer_tokens=2, progress=False)
    failed, passed = report["models"]["qwen2.5-0.5b-instruct"], report["models"]["qwen2.5-1.5b-instruct"]
    assert failed["status"] == "error" and "simulated" in failed["error"] and "Traceback" in failed["traceback"]
    assert passed["status"] == "ok" and not report["ok"]


def test_random_model_dir_names_the_shipped_configs(tmp_path, tiny_tokenizer):
    with pytest.raises(FileNotFoundError, match="qwen2.5-0.5b-instruct"):
        gpu_check.random_model_dir("qwen9-7b", tiny_tokenizer, tmp_path, "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is present")
def test_cli_explains_a_missing_gpu(tmp_path, capsys):
    assert main(["gpu-check", "--json", str(tmp_path / "g.json")]) == 2
    assert "CUDA" in capsys.readouterr().err and not (tmp_path / "g.json").exists()
