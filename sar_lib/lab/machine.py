"""The machine a measurement ran on: what it is, which device it used, and the memory a process took.

Every measured number in this repository (benchmarks, the GPU check, the comparison grid, the tiny
model's card) is stored with :func:`machine_info`, because times and memory mean little without it.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

VERSIONED_PACKAGES = ("torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine_info(device: str = "cpu", command: str | None = None) -> dict:
    """Where and when a measurement ran: UTC date, command, device, CPU and the cores this process
    may use, torch threads, load average, Python, OS, library versions; the GPU on CUDA."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else " ".join(sys.argv),
        "device": device,
        "cpu": _cpu_name(),
        "cpu_cores": cores,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "system": f"{platform.system()} {platform.release()}",
        "versions": {p: _version(p) for p in VERSIONED_PACKAGES},
    }
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 1e9, 1), cuda=torch.version.cuda)
    return info


def machine_summary(info: dict | None = None) -> str:
    """:func:`machine_info` (of this machine when None) in one line, for a model card."""
    m = info or machine_info()
    return (f"{m['cpu']}, {m['torch_threads']} torch threads, {m['system']}, "
            f"Python {m['python']}, torch {m['versions']['torch']}")


def synchronize(device: str) -> None:
    """Wait for the device's queued work, so that a timer read next includes it (CUDA runs asynchronously)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb() -> dict[str, float]:
    """This process's peak memory so far, in MiB: ``peak_rss_mb`` (resident set size, ``ru_maxrss``;
    not on Windows) and ``cuda_peak_mb`` (``torch.cuda.max_memory_allocated``; with a GPU only)."""
    peak = {}
    try:
        import resource   # Unix only
    except ImportError:
        pass
    else:
        unit = 1 if sys.platform == "darwin" else 1024   # ru_maxrss: bytes on macOS, KiB on Linux
        peak["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20
    if torch.cuda.is_available():
        peak["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak
