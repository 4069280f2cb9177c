"""sar_lib.lab.machine: what a measurement records about the machine and the memory a process took."""

from __future__ import annotations

import json

import torch

from sar_lib.lab import machine


def test_machine_info_is_json_and_names_the_machine():
    info = machine.machine_info("cpu", command="sar test")
    assert json.loads(json.dumps(info)) == info
    assert info["command"] == "sar test" and info["device"] == "cpu" and info["cpu_cores"] >= 1
    assert info["versions"]["torch"] and info["date"] and "gpu" not in info
    line = machine.machine_summary(info)
    assert info["cpu"] in line and f"{info['torch_threads']} torch threads" in line and "Python" in line


def test_peak_memory_is_reported_in_mib():
    peaks = machine.peak_memory_mb()
    assert peaks["peak_rss_mb"] > 10   # a process with torch loaded holds well over 10 MiB
    assert ("cuda_peak_mb" in peaks) == torch.cuda.is_available()

