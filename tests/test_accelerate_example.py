"""examples/trl_sar_accelerate.py for real: two processes (accelerate launch, gloo on the CPU) against one.

Both runs decode greedily (``--greedy``), so they sample the same answers to the same prompts; the
two-process run must log the same rewards per step, each process must have scored its own half of
the batch with its own replica of the policy, and the replicas must stay equal to the one-process
policy (DDP averages the gradients of the two halves).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "trl_sar_accelerate.py"
STEPS, QUESTIONS, G = 3, 4, 3
ARGS = ["--greedy", "--steps", str(STEPS), "--questions", str(QUESTIONS), "--num-generations", str(G),
        "--max-completion-length", "32"]
LOGGED = ("reward", "rewards/correctness/mean", "rewards/sar/mean", "sar/ppl_qa", "sar/ppl_a",
          "completions/mean_length")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_example(out: Path, processes: int) -> tuple[list[dict], dict[int, list[dict]]]:
    """Run the example with ``processes`` processes; (TRL's per-step logs, {process: its SAR records})."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    script = [str(EXAMPLE), "--out", str(out), *ARGS]
    if processes == 1:
        command = [sys.executable, *script]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                   str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(free_port()), *script]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    logs = [log for log in json.loads((out / "log_history.json").read_text()) if "reward" in log]
    records = {int(path.stem.rsplit("_", 1)[1]): [json.loads(line) for line in path.read_text().splitlines()]
               for path in out.glob("sar_scored_by_process_*.jsonl")}
    return logs, records


def test_two_processes_log_the_rewards_of_one_and_score_sar_on_their_own_replicas(tmp_path):
    one_logs, one_records = run_example(tmp_path / "one", 1)
    two_logs, two_records = run_example(tmp_path / "two", 2)

    # TRL's logged rewards, step by step
    assert [log["step"] for log in one_logs] == [log["step"] for log in two_logs] == list(range(1, STEPS + 1))
    for one, two in zip(one_logs, two_logs):
        for key in LOGGED:
            assert two[key] == pytest.approx(one[key], abs=1e-5), (one["step"], key)

    # each process scored its own half of every step's answers ...
    assert sorted(two_records) == [0, 1] and sorted(one_records) == [0]
    batch = QUESTIONS * G
    for process, records in two_records.items():
        assert [r["step"] for r in records] == list(range(STEPS))
        assert all(len(r["completion_ids"]) == len(r["sar"]) == batch // 2 for r in records)
        assert all(r["process"] == process for r in records)
    # ... with its own replica of the policy, equal on both processes and to the one-process policy
    for step in range(STEPS):
        mine, theirs, single = two_records[0][step], two_records[1][step], one_records[0][step]
        assert mine["replica"] == pytest.approx(theirs["replica"], rel=1e-12)
        assert mine["replica"] == pytest.approx(single["replica"], rel=1e-7)
        # the two halves, in process order, are the one-process batch: the same answers, the same SAR
        assert mine["completion_ids"] + theirs["completion_ids"] == single["completion_ids"]
        assert mine["sar"] + theirs["sar"] == pytest.approx(single["sar"], abs=1e-5)
    assert len({round(s, 4) for s in one_records[0][0]["sar"]}) > 1, "SAR should differ between questions"
