#!/usr/bin/env bash
# Fetch the wheels of scripts/gpu_check_wheels.txt into .whl/ (git-ignored locally) for a GPU
# machine that has no network: Python 3.12, manylinux x86_64, no dependencies (the list names
# each one). Run once, here, where PyPI is reachable; the device call then carries .whl:
#   bash scripts/prepare_gpu_wheels.sh
# The bitsandbytes wheel (43 MB) holds a native library for every CUDA/ROCm/XPU version; only
# the CPU and CUDA 12.6-13.2 ones are kept (the image's torch is built for CUDA 13.0), which keeps
# what the call carries near 20 MB (the device tool carries at most 64 MiB with the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
DEST=.whl
mkdir -p "$DEST"
if [ -d .git ] && ! grep -qx '/.whl/' .git/info/exclude 2>/dev/null; then
    echo '/.whl/' >> .git/info/exclude
fi
specs=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/gpu_check_wheels.txt | awk '{print $1}')
for spec in $specs; do
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d "$DEST" "$spec"
done
"$PYTHON" - "$DEST" <<'PY'
"""Drop the native libraries of unused accelerators from the bitsandbytes wheel (RECORD updated)."""
import re, sys, zipfile
from pathlib import Path

KEEP = re.compile(r"libbitsandbytes_(cpu|cuda12[68]|cuda13\d)\.so$")
for wheel in Path(sys.argv[1]).glob("bitsandbytes-*.whl"):
    with zipfile.ZipFile(wheel) as src:
        drop = {n for n in src.namelist() if n.endswith(".so") and not KEEP.search(n)}
        if not drop:
            continue
        tmp = wheel.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                if info.filename in drop:
                    continue
                data = src.read(info)
                if info.filename.endswith(".dist-info/RECORD"):
                    lines = data.decode().splitlines(keepends=True)
                    data = "".join(l for l in lines if l.split(",", 1)[0] not in drop).encode()
                dst.writestr(info, data)
    tmp.replace(wheel)
    print(f"{wheel.name}: dropped {len(drop)} unused native libraries")
PY
ls -l "$DEST"
du -sh "$DEST"
