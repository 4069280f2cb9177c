#!/usr/bin/env bash
# The prepared GPU check of issue 6, for one short call on a CUDA machine without network.
#
#   bash scripts/gpu_check.sh            (from anywhere; extra arguments go to `sar gpu-check`,
#                                         e.g. --dry-run to try the same code on a CPU)
#
# 1. Installs the wheels of scripts/gpu_check_wheels.txt from .whl/ (made here by
#    scripts/prepare_gpu_wheels.sh; the device call must carry .whl), each only where the machine
#    lacks that package or has another version, into /tmp/sar-site, first on PYTHONPATH.
#    Nothing is downloaded.
# 2. Prints the GPU and the versions in use.
# 3. Runs `sar gpu-check` (sar_lib from this checkout): random models with the exact shapes
#    of Qwen2.5-0.5B- and 1.5B-Instruct (sar_lib/configs), loaded 4-bit NF4 + LoRA r=16 by
#    models.load_policy, 2 SA-GRPO steps each at G=6 with 512 answer tokens (eos suppressed),
#    sampling from the 4-bit policy and then from its 16-bit generation copy (sar_lib.fast_generation).
#
# Writes $OUT/gpu_check.json (every figure, rewritten after each stage, so a cut-off run still
# leaves its results) and $OUT/gpu_check.log; without $OUT, runs/gpu_check/. Exit code: that of
# `sar gpu-check` (0: both models ran 4-bit and met their peak-memory targets).
# Time: about a minute of setup, the check itself bounded by GPU_CHECK_BUDGET_S (default 400 s).
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
    "$PYTHON" -m sar_lib.cli gpu-check --json "$OUT_DIR/gpu_check.json" \
        --time-budget "${GPU_CHECK_BUDGET_S:-400}" "$@"
    local rc=$?
    echo "gpu check: exit code $rc, $(( $(date +%s) - start )) s in all"
    return $rc
}

main "$@" 2>&1 | tee "$OUT_DIR/gpu_check.log"
exit "${PIPESTATUS[0]}"
