#!/usr/bin/env bash
# The prepared GPU check, for one short call on a CUDA machine without network.
#
#   bash scripts/gpu_check.sh            (from anywhere; extra arguments go to `sar gpu-check`;
#                                         --dry-run tries the same code on a CPU, in miniature)
#
# 1. Installs the wheels of scripts/gpu_check_wheels.txt from .whl/ (made here by
#    scripts/prepare_gpu_wheels.sh; the device call must carry .whl), each only where the machine
#    lacks that package or has another version, into /tmp/sar-site, first on PYTHONPATH.
#    Nothing is downloaded.
# 2. Prints the GPU and the versions in use.
# 3. Starts the GPU budget curve in the background: `sar compare --methods grpo sa-grpo --device cuda`
#    on the tiny model, 3 seeds, GPU_CURVE_STEPS (400) steps of 16 questions x 6 answers = 38,400
#    rollouts per run (4x the CPU grid's), the grid's settings otherwise, a greedy in-domain
#    evaluation every 40 steps; the six runs side by side on the GPU, cut at GPU_CURVE_BUDGET_S
#    (480 s). Its run folders (metrics, evaluations, LoRA adapters, figures/; no completions, optimizer
#    states or per-answer records: the device returns files of at most 16 MiB) are packed into
#    gpu_curve_runs.tar.gz, so a cut run's curve can still be read from its metrics.jsonl.
# 4. Meanwhile runs `sar gpu-check` (sar_lib from this checkout): random models with the exact shapes
#    of Qwen2.5-0.5B- and 1.5B-Instruct (sar_lib/configs), loaded 4-bit NF4 + LoRA r=16 by
#    models.load_policy, 2 SA-GRPO steps each at G=6 with 512 answer tokens (eos suppressed), on
#    each sampling path (plain 4-bit generate, the 16-bit copy, the rollout engine), bounded by
#    GPU_CHECK_BUDGET_S (200 s: the 0.5B shape; the 1.5B one when time is left). Both share the GPU,
#    so the check's absolute times are upper bounds; its paths ran under the same load.
#
# Writes into $OUT (without $OUT, runs/gpu_check/): gpu_check.json (every figure, rewritten after
# each stage, so a cut-off run still leaves its results), gpu_check.log, budget_curve_gpu.json, .md
# and .log, and gpu_curve_runs.tar.gz (six files: the device returns at most eight). Exit code: that of `sar gpu-check`.
# Time: about half a minute of setup, then the longer of the two budgets.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-runs/gpu_check}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT_DIR"

main() {
    local start wheels=() spec name want have wheel
    start=$(date +%s)
    while read -r spec; do
        name=${spec%%==*}
        want=${spec##*==}
        have=$("$PYTHON" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$name" 2>/dev/null)
        [ "$have" = "$want" ] && continue
        wheel=$(ls .whl/"${name//-/_}"-"$want"-*.whl 2>/dev/null | head -n 1)
        if [ -n "$wheel" ]; then
            echo "installing $spec (found: ${have:-none})"
            wheels+=("$wheel")
        else
            echo "WARNING: need $spec (found: ${have:-none}) but .whl/ has no wheel for it (scripts/prepare_gpu_wheels.sh)"
        fi
    done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/gpu_check_wheels.txt | awk '{print $1}')
    if [ ${#wheels[@]} -gt 0 ]; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/sar-site "${wheels[@]}" || echo "WARNING: installing the wheels failed"
        export PYTHONPATH="/tmp/sar-site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
    "$PYTHON" - <<'PY'
import sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for name in ("transformers", "peft", "bitsandbytes", "accelerate", "tokenizers", "math_verify"):
    try:
        module = __import__(name)
        print(f"  {name} {getattr(module, '__version__', '?')} ({module.__file__})")
    except Exception as err:  # report and go on: the check records what fails
        print(f"  {name}: cannot import ({type(err).__name__}: {err})")
PY
    echo "setup: $(( $(date +%s) - start )) s"
    budget_curve "$@" &
    local curve=$!
    "$PYTHON" -m sar_lib.lab.cli gpu-check --json "$OUT_DIR/gpu_check.json" \
        --time-budget "${GPU_CHECK_BUDGET_S:-200}" "$@"
    local rc=$?
    echo "gpu check: exit code $rc, $(( $(date +%s) - start )) s"
    wait "$curve"
    echo "all done: $(( $(date +%s) - start )) s"
    return $rc
}

budget_curve() {
    local args=(--methods grpo sa-grpo --device cuda --steps "${GPU_CURVE_STEPS:-400}" --eval-every 40
                --out runs/gpu_curve)
    if [[ " $* " == *" --dry-run "* ]]; then  # the same command on CPU, in miniature
        args=(--methods grpo sa-grpo --device cpu --quick --out runs/gpu_curve)
    fi
    timeout "${GPU_CURVE_BUDGET_S:-480}" "$PYTHON" -m sar_lib.lab.cli compare "${args[@]}" --no-progress \
        --json "$OUT_DIR/budget_curve_gpu.json" --figures runs/gpu_curve/figures > "$OUT_DIR/budget_curve_gpu.log" 2>&1
    echo "budget curve: exit code $? (124: cut at GPU_CURVE_BUDGET_S), $(tail -n 1 "$OUT_DIR/budget_curve_gpu.log")"
    tar czf "$OUT_DIR/gpu_curve_runs.tar.gz" --exclude=completions.jsonl --exclude=optimizer.pt \
        --exclude='*_records.jsonl' runs/gpu_curve
}

main "$@" 2>&1 | tee "$OUT_DIR/gpu_check.log"
exit "${PIPESTATUS[0]}"
