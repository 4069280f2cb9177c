"""SA-GRPO with TRL's ``GRPOTrainer`` under accelerate: the plug-in of docs/trl.md as a script.

    accelerate launch --multi_gpu --num_processes 2 examples/trl_sar_accelerate.py --out runs/trl-2
    python examples/trl_sar_accelerate.py --out runs/trl-1                   # the same run, one process

On a machine without CUDA the two processes run on the CPU and talk over gloo. ``--multi_gpu`` is
accelerate's multi-process launcher (torchrun); its ``--cpu --num_processes 2`` starts a single
process unless MPI is installed (accelerate 1.15's CPU launcher runs several processes only through
``mpirun``), so it is not used here.

The reward is the paper's ``R = R_VR + 0.2 * R_SA`` (docs/paper.md §1) with its GRPO settings
(§3: G answers per question at temperature 1, Dr. GRPO advantages and loss, PPO clip 0.2 with dual
clip 3, k3 KL 0.001, constant learning rate), on the embedded tiny model by default. The global
batch (``--questions`` x ``--num-generations`` answers per step) does not depend on the number of
processes: each process samples and scores its share, TRL gathers the rewards before it groups
them. SAR is scored by each process's own replica of the policy (``trainer.model``): no weights or
log-probabilities travel between processes for it.

What the run leaves in ``--out``: ``log_history.json`` (TRL's logged metrics per step:
``reward``, ``rewards/correctness/mean``, ``rewards/sar/mean``, ``sar/ppl_qa``, ...) and, per process
k, ``sar_scored_by_process_k.jsonl``: one line per reward call with the completions that process
scored, their SAR and a fingerprint of the replica that scored them. ``--greedy`` decodes greedily,
so that runs with different numbers of processes sample the same answers and can be compared
(tests/test_accelerate_example.py); leave it off to train (sampled answers, as the paper).

On GPUs the same script runs with ``accelerate launch --num_processes N`` and ``--model`` a local
dir or hub name; docs/trl.md gives the multi-GPU command with vLLM and the paper's full settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from accelerate import PartialState
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from sar_lib.data import load_problems
from sar_lib.integrations import trl as sar_trl
from sar_lib.models import load_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (TRL's output_dir and the logs above)")
    parser.add_argument("--model", default="tiny", help='"tiny" (default), a local model dir or a hub name')
    parser.add_argument("--dataset", default="arith-train",
                        help="training problems (a sar_lib.data name; default arith-train)")
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps (default 3)")
    parser.add_argument("--questions", type=int, default=4, help="questions per step, over all processes (default 4)")
    parser.add_argument("--num-generations", type=int, default=3, help="answers per question G (default 3; paper 6)")
    parser.add_argument("--max-completion-length", type=int, default=48, help="answer budget in tokens (default 48)")
    parser.add_argument("--learning-rate", type=float, default=1e-5,
                        help="constant AdamW learning rate (default 1e-5; paper 1e-6 for full fine-tuning)")
    parser.add_argument("--alpha", type=float, default=0.2, help="weight of R_SA next to R_VR (default 0.2)")
    parser.add_argument("--greedy", action="store_true",
                        help="greedy decoding: the same answers whatever the number of processes (for comparisons)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data order and sampling (default 0)")
    return parser.parse_args(argv)


def replica_fingerprint(model) -> float:
    """Sum of the policy's parameters: equal on every process while the replicas are in sync."""
    with torch.no_grad():
        return float(sum(p.double().sum() for p in model.parameters()))


class RecordedSARReward(sar_trl.SARReward):
    """:class:`sar_lib.integrations.trl.SARReward` that also writes what this process scored, and with which replica."""

    def __init__(self, path: Path, process_index: int, **kwargs):
        super().__init__(**kwargs)
        self.path, self.process_index = path, process_index

    def __call__(self, prompts, completions, completion_ids, **kwargs):
        sar = super().__call__(prompts, completions, completion_ids, **kwargs)
        record = {"step": kwargs["trainer_state"].global_step, "process": self.process_index,
                  "replica": replica_fingerprint(self.trainer.model),
                  "completion_ids": [list(ids) for ids in completion_ids], "sar": sar}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        return sar


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # the process group accelerate launch set up (gloo on CPUs), or a single process
    state = PartialState(cpu=not torch.cuda.is_available())
    batch = args.questions * args.num_generations
    if batch % state.num_processes:
        raise SystemExit(f"--questions x --num-generations = {batch} answers per step cannot be split evenly over "
                         f"{state.num_processes} processes; change --questions")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = out / f"sar_scored_by_process_{state.process_index}.jsonl"
    record.unlink(missing_ok=True)

    model, tokenizer = load_model(args.model, device=str(state.device))
    problems = load_problems(args.dataset, limit=args.questions * args.steps, seed=0)
    dataset = Dataset.from_list([{"prompt": sar_trl.paper_messages(p.question), "answer": p.gold} for p in problems])
    on_gpu = state.device.type == "cuda"
    config = GRPOConfig(
        output_dir=str(out), max_steps=args.steps, logging_steps=1, report_to="none", save_strategy="no",
        seed=args.seed, num_generations=args.num_generations, per_device_train_batch_size=batch // state.num_processes,
        max_completion_length=args.max_completion_length,
        reward_weights=[1.0, args.alpha],                               # R = R_VR + alpha * R_SA
        # the paper's GRPO (docs/paper.md §3): Dr. GRPO, PPO clip 0.2 with dual clip 3 (TRL's delta), k3 KL 0.001
        loss_type="dr_grpo", scale_rewards="none", epsilon=0.2, delta=3.0, beta=0.001,
        temperature=1.0, top_p=1.0, learning_rate=args.learning_rate, lr_scheduler_type="constant",
        weight_decay=0.01, max_grad_norm=1.0,
        generation_kwargs={"do_sample": False} if args.greedy else None,
        use_cpu=not on_gpu, bf16=on_gpu and torch.cuda.is_bf16_supported(), gradient_checkpointing=False,
    )
    sar_reward = RecordedSARReward(record, state.process_index, batch_size=8)
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, args=config, train_dataset=dataset,
                          reward_funcs=[sar_trl.correctness_reward(gold_key="answer"), sar_reward])
    sar_trl.attach(trainer)   # SAR is scored by trainer.model: this process's replica of the policy
    trainer.train()
    if state.is_main_process:
        (out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1) + "\n")
    # leave the process group before the interpreter exits: a gloo group torn down at exit can abort
    # ("terminate called without an active exception") after training has finished
    state.wait_for_everyone()
    state.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
