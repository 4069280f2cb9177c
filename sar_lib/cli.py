"""The ``sar`` command line: one sub-command per job, each a thin wrapper over ``sar_lib``.

Errors a user can fix (bad input, bad config) are raised as ``ValueError`` / ``FileNotFoundError``
by the library and printed here as one line, with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


# ---------------------------------------------------------------- score
def _cmd_score(args: argparse.Namespace) -> int:
    from sar_lib import sar
    from sar_lib.models import load_model

    # every input check runs before the model is loaded (load_model checks the model dir first too)
    if args.jsonl is not None:
        if args.question is not None or args.answer is not None:
            raise ValueError("give either --jsonl FILE or --question and --answer, not both")
        questions, answers = sar.read_pairs(args.jsonl)
    elif args.question is None or args.answer is None:
        raise ValueError("give --question and --answer (both), or --jsonl FILE")
    else:
        questions, answers = [args.question], [args.answer]
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    sar.check_variant(args.variant)
    model, tokenizer = load_model(args.model, device=args.device)
    rows = sar.score_answers(model, tokenizer, questions, answers, batch_size=args.batch_size,
                             variant=args.variant, add_instruction=not args.no_instruction,
                             progress=len(questions) > args.batch_size and sys.stderr.isatty())
    for row in rows:
        _print_json(row)
    return 0


# ---------------------------------------------------------------- eval
EVAL_MAX_NEW_TOKENS = 1024  # default answer budget for real models (the paper evaluates with 4096)


def _cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from sar_lib.data import load_problems
    from sar_lib.evaluate import evaluate, format_summary, write_report
    from sar_lib.models import get_profile, load_model, resolve_model

    for flag, value in (("--limit", args.limit), ("--batch-size", args.batch_size),
                        ("--max-new-tokens", args.max_new_tokens)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    # input checks first: unknown dataset names and missing files, then the model dir (no weights read)
    problems = load_problems(args.dataset, limit=args.limit, seed=args.seed)
    resolve_model(args.model)
    tiny = get_profile("tiny-cpu")
    max_new_tokens = args.max_new_tokens or (tiny.max_new_tokens if args.model == "tiny" else EVAL_MAX_NEW_TOKENS)
    batch_size = args.batch_size or (tiny.eval_batch_size if args.model == "tiny" else 16)

    torch.manual_seed(args.seed)  # greedy decoding is deterministic; this pins anything else
    model, tokenizer = load_model(args.model, device=args.device)
    report = evaluate(model, tokenizer, problems, max_new_tokens=max_new_tokens, batch_size=batch_size,
                      progress=True)
    print(format_summary(report, title=f"{args.model} on {args.dataset} (greedy, <= {max_new_tokens} new tokens)"),
          flush=True)
    if args.json:
        write_report(report, args.json, model=args.model, dataset=args.dataset, limit=args.limit, seed=args.seed,
                     max_new_tokens=max_new_tokens, batch_size=batch_size)
        print(f"wrote {args.json}", flush=True)
    return 0


# ---------------------------------------------------------------- pretrain-tiny
def _cmd_pretrain_tiny(args: argparse.Namespace) -> int:
    from sar_lib.evaluate import format_summary
    from sar_lib.pretrain import EVAL_SETS, PretrainConfig, pretrain_tiny

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise ValueError(f"--max-minutes must be > 0, got {args.max_minutes}")
    overrides = {k: v for k, v in (("seed", args.seed), ("steps", args.steps), ("max_minutes", args.max_minutes))
                 if v is not None}
    config = PretrainConfig(**overrides)
    command = " ".join(["sar pretrain-tiny", "--out", args.out] +
                       [f"--{k.replace('_', '-')} {v}" for k, v in overrides.items()])
    card = pretrain_tiny(config, args.out, progress=True, command=command)
    for name in EVAL_SETS:
        print(format_summary(card["eval"][name], title=name), flush=True)
    print(f"wrote {args.out} ({card['n_parameters'] / 1e6:.2f}M parameters, {card['steps_done']} steps, "
          f"{card['total_seconds'] / 60:.1f} min); model card: {args.out}/MODEL_CARD.md", flush=True)
    return 0


# ---------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from sar_lib.grpo import GRPOConfig, load_config, train

    # flags left out are absent from args (argparse.SUPPRESS): the config's or the saved run's value holds
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in fields}
    if args.resume:
        if "out" not in overrides:
            raise ValueError("--resume needs --out DIR, the run folder to continue")
        config = dataclasses.replace(load_config(overrides["out"]), **overrides)
    else:
        config = GRPOConfig(**overrides)
    run_dir = train(config, resume=args.resume)
    _print_json({"run_dir": str(run_dir), **json.loads((run_dir / "eval.json").read_text())})
    return 0


# ---------------------------------------------------------------- bench
def _cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sar_lib import bench

    if args.dry_run and not args.gpu_check:
        raise ValueError("--dry-run belongs to --gpu-check (it runs the GPU check's code on CPU)")
    if args.gpu_check and (args.device or args.quick or args.no_trl):
        raise ValueError("--gpu-check takes no --device/--quick/--no-trl: it runs on CUDA (CPU with --dry-run) "
                         "with its own sizes")
    if not args.gpu_check and args.time_budget is not None:
        raise ValueError("--time-budget belongs to --gpu-check")
    command = "sar bench" + "".join(
        f" --{key.replace('_', '-')}" + ("" if value is True else f" {value}")
        for key, value in vars(args).items() if key not in ("func", "command") and value not in (None, False))
    if args.gpu_check:
        if args.dry_run and args.threads:
            import torch

            torch.set_num_threads(args.threads)
        report = bench.gpu_check(args.json or "gpu_check.json", dry_run=args.dry_run, command=command,
                                 **({} if args.time_budget is None else {"time_budget_s": args.time_budget}))
        print(bench.format_gpu_table(report), flush=True)
        print(f"wrote {args.json or 'gpu_check.json'}", flush=True)
        return 0 if report["ok"] else 1
    result = bench.run_bench(device=args.device or "cpu", sizes=bench.QUICK if args.quick else bench.FULL,
                             threads=args.threads or None, with_trl=not args.no_trl, command=command)
    print(bench.format_table(result), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}", flush=True)
    return 0


# ---------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from sar_lib import demo
    from sar_lib.models import resolve_model

    # checks before any kernel starts: the output folder, the notebooks, the model files
    notebooks = args.notebooks or demo.NOTEBOOKS_DIR
    demo.check_out_dir(args.out)
    demo.find_notebooks(notebooks)
    resolve_model(args.model or "tiny")   # run_demo checks --only before it starts a kernel
    runs = demo.run_demo(out=args.out, fast=args.fast, model=args.model, only=args.only, notebooks_dir=notebooks,
                         progress=not args.no_progress)
    print("\n" + demo.report(runs), flush=True)
    return 0 if all(run.ok for run in runs) else 1


# ---------------------------------------------------------------- compare
def _cmd_compare(args: argparse.Namespace) -> int:
    import shlex

    from sar_lib import compare

    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    for flag, value in (("--steps", args.steps), ("--eval-size", args.eval_size),
                        ("--questions-per-step", args.questions_per_step)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    for name in args.methods or ():
        compare.get_method(name)
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be > 0, got {args.learning_rate}")
    settings = {k: v for k, v in (("questions_per_step", args.questions_per_step),
                                  ("learning_rate", args.learning_rate)) if v is not None}
    eval_sets = None if args.eval_size is None else dict.fromkeys(compare.EVAL_SETS, args.eval_size)
    summary = compare.compare(args.out, model=args.model, profile=args.profile, steps=args.steps, seeds=args.seeds,
                              workers=args.workers, quick=args.quick, methods=args.methods or tuple(compare.METHODS),
                              eval_sets=eval_sets, json_path=args.json, figures_dir=args.figures,
                              command=shlex.join(["sar", *sys.argv[1:]]) if sys.argv[1:2] == ["compare"] else "",
                              progress=not args.no_progress, **settings)
    print(compare.format_summary(summary), flush=True)
    print(f"wrote {summary['json']}, {', '.join(summary['figures'])}", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sar", description="Self-Aligned Reward: score, train, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    # -- score
    p = sub.add_parser("score", help="SAR of (question, answer) pairs under a model",
                       description="Print one JSON object per (question, answer) pair, in input order, with "
                                   "ppl_qa, ppl_a, nll_qa, nll_a, sar and n_tokens (answer tokens incl. eos).")
    p.add_argument("--model", required=True, help='"tiny", a local model dir, or a cached hub name')
    p.add_argument("--question", help="the question (with --answer)")
    p.add_argument("--answer", help="the answer text to score (with --question)")
    p.add_argument("--jsonl", help="a JSONL file, one object per line with 'question' and 'answer'")
    p.add_argument("--batch-size", type=int, default=8, help="pairs per forward pass (default 8)")
    p.add_argument("--variant", default="ppl",
                   help="ppl (official, default) | log | no_denominator | em; see sar_lib.sar.sar_from_nll")
    p.add_argument("--no-instruction", action="store_true",
                   help="do not append the paper's instruction to the question")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available, else cpu)")
    p.set_defaults(func=_cmd_score)

    # -- eval
    p = sub.add_parser("eval", help="greedy evaluation: accuracy and answer length",
                       description="Greedy answers with the paper's prompt; prints accuracy, mean / median "
                                   "answer length in tokens (eos excluded), mean length of correct answers and "
                                   "truncation rate, and writes them with the per-item records to --json.")
    p.add_argument("--model", required=True, help='"tiny" (embedded), a local model dir, or a hub name')
    p.add_argument("--dataset", required=True,
                   help="a synthetic set (arith-test, logic-test, ...), a benchmark (gsm8k, math500, ...) "
                        "or a .json/.jsonl file")
    p.add_argument("--limit", type=int, help="evaluate this many items (a seeded subset; default: all, "
                                             "200 for synthetic sets)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic set / the subset (default 0)")
    p.add_argument("--json", help="write the summary and the per-item records to this JSON file")
    p.add_argument("--max-new-tokens", type=int,
                   help=f"answer budget in tokens (default: the tiny-cpu profile's for tiny, "
                        f"{EVAL_MAX_NEW_TOKENS} otherwise)")
    p.add_argument("--batch-size", type=int,
                   help="prompts per generation batch (default: the tiny-cpu profile's for tiny, 16 otherwise)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu")
    p.set_defaults(func=_cmd_eval)

    # -- pretrain-tiny
    p = sub.add_parser("pretrain-tiny", help="train the embedded tiny reasoner from scratch",
                       description="Trains the tokenizer and the tiny Qwen2 model on the synthetic corpus "
                                   "(sar_lib.pretrain.PretrainConfig), saves them into --out, measures greedy "
                                   "accuracy / length on held-out arithmetic and the OOD sets, and writes "
                                   "MODEL_CARD.md and card.json there. About 10-15 minutes on 2 CPU cores.")
    p.add_argument("--out", default="tiny-reasoner",
                   help="output directory (default ./tiny-reasoner; the shipped model in sar_lib/assets/tiny "
                        "is replaced only when --out names it)")
    p.add_argument("--seed", type=int, help="seed of the corpus, the initialisation and the data order (default 0)")
    p.add_argument("--steps", type=int, help="optimiser steps (default: PretrainConfig.steps)")
    p.add_argument("--max-minutes", type=float,
                   help="stop the training loop after this many minutes even if steps remain "
                        "(default: PretrainConfig.max_minutes)")
    p.set_defaults(func=_cmd_pretrain_tiny)

    # -- train
    p = sub.add_parser("train", help="GRPO / SA-GRPO training", argument_default=argparse.SUPPRESS,
                       description="GRPO with reward R = R_VR + alpha * r (r: SAR or a baseline), LoRA on the "
                                   "profile's model. Writes DIR/config.json, metrics.jsonl (one line per step), "
                                   "checkpoint/ and eval.json (final greedy evaluation); prints eval.json. "
                                   "Unset options take the profile's value (sar_lib.models.PROFILES), then "
                                   "sar_lib.grpo.GRPOConfig's default; with --resume, the saved run's value.")
    p.add_argument("--profile", help="tiny-cpu (default) | laptop-8gb | gpu-12gb")
    p.add_argument("--model", help='"tiny", a local model dir or a hub name (default: the profile\'s)')
    p.add_argument("--reward", help="sar (default) | o1 | er | em | certainty | length | none (plain GRPO)")
    p.add_argument("--alpha", type=float, help="weight of the shaping reward (default: per reward, sar 0.2)")
    p.add_argument("--sar-variant", help="ppl (official, default) | log | no_denominator | em")
    p.add_argument("--correctness-weight", type=float,
                   help="weight w of the 0/1 correctness reward in R = w * R_VR + alpha * r (default 1; "
                        "0 trains on the shaping reward alone, the paper's 'SAR only' ablation)")
    p.add_argument("--steps", type=int, help="GRPO steps (default 20)")
    p.add_argument("--seed", type=int, help="seed of sampling, data order and LoRA init (default 0)")
    p.add_argument("--out", help="run folder (default runs/<reward>-a<alpha>-s<seed>)")
    p.add_argument("--resume", action="store_true", default=False,
                   help="continue the run in --out from its checkpoint (training settings must match)")
    p.add_argument("--group-size", type=int, help="answers per question G (profile)")
    p.add_argument("--questions-per-step", type=int, help="questions per step Q (profile)")
    p.add_argument("--updates-per-step", type=int, help="optimiser updates per step (default 2)")
    p.add_argument("--max-new-tokens", type=int, help="answer budget in tokens (profile)")
    p.add_argument("--max-prompt-tokens", type=int, help="longest prompt allowed (profile)")
    p.add_argument("--learning-rate", "--lr", type=float, help="AdamW learning rate (profile)")
    p.add_argument("--kl-coef", type=float,
                   help="k3 KL to the LoRA-disabled model (default 0: no reference pass; the paper: 0.001)")
    p.add_argument("--advantage", help="dr_grpo (R - group mean, default) | std (also / group std)")
    p.add_argument("--micro-batch-size", type=int, help="answers per forward/backward (profile)")
    p.add_argument("--load-in-4bit", action=argparse.BooleanOptionalAction, help="4-bit NF4 base weights (profile)")
    p.add_argument("--lora-r", type=int, help="LoRA rank (profile)")
    p.add_argument("--train-dataset", help="synthetic set, benchmark or .jsonl file (default arith-train)")
    p.add_argument("--train-size", type=int, help="training problems to load (default: the loader's)")
    p.add_argument("--eval-dataset", help="held-out set for greedy evaluation (default arith-test)")
    p.add_argument("--eval-size", type=int, help="evaluation problems (default 100)")
    p.add_argument("--eval-every", type=int, help="also evaluate every N steps (default 0: only at the end)")
    p.add_argument("--save-every", type=int, help="checkpoint every N steps (default 0: only at the end)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: the profile's, else torch's)")
    p.add_argument("--no-log-sar", dest="log_sar", action="store_false",
                   help="do not compute SAR for logging when the reward does not need it (saves a forward pass)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    # -- bench
    p = sub.add_parser("bench", help="benchmarks: SAR's cost per GRPO step, vs TRL, log-prob memory; GPU check",
                       description="Times SA-GRPO against plain GRPO steps and against TRL's GRPOTrainer at forced "
                                   "answer lengths, measures the peak memory of the chunked answer log-probs against "
                                   "a naive full-vocabulary log-softmax, prints a table and writes --json. "
                                   "--gpu-check: 4-bit + LoRA SA-GRPO steps on random Qwen2.5-0.5B/1.5B-shaped "
                                   "models (see docs/benchmarks.md).")
    p.add_argument("--device", choices=("cpu", "cuda"), help="where to run (default cpu)")
    p.add_argument("--json", help="write every figure, the machine and the command to this JSON file")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test in a few minutes, not figures")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads on CPU (default 1: stable timings on a shared machine; 0: torch's "
                        "default)")
    p.add_argument("--no-trl", action="store_true", help="skip the TRL comparison")
    p.add_argument("--gpu-check", action="store_true",
                   help="the prepared GPU check (scripts/gpu_check.sh): writes --json (default gpu_check.json); "
                        "exit code 1 when a model failed or missed its memory target")
    p.add_argument("--dry-run", action="store_true", help="with --gpu-check: the same code on CPU, models shrunk")
    p.add_argument("--time-budget", type=float, help="with --gpu-check: seconds for the whole check (default 420)")
    p.set_defaults(func=_cmd_bench)

    # -- demo
    p = sub.add_parser("demo", help="run the numbered notebooks headless and print their results",
                       description="Executes notebooks/01..04 in order with papermill (the ones that exist), on the "
                                   "embedded tiny model unless --model, writes the executed notebooks (in place, or "
                                   "into --out DIR/notebooks) and their figures (figures/, or DIR/figures), then "
                                   "prints a summary table. Exit code 1 when a notebook fails; the failing cell and "
                                   "the error are printed.")
    p.add_argument("--out", help="write the executed notebooks and figures under this folder instead of in place")
    p.add_argument("--fast", action="store_true",
                   help="small parameter sets (sar_lib.demo.FAST): a smoke run in a few minutes, as CI runs it")
    p.add_argument("--model", help='the MODEL parameter of every notebook (default: their own, "tiny")')
    p.add_argument("--notebooks",
                   help="folder of numbered notebooks 0[1-4]_*.ipynb to run (default: the repository's notebooks/)")
    p.add_argument("--only", nargs="+", metavar="NN",
                   help="run only these notebooks, by number (e.g. --only 01 02); default: all")
    p.add_argument("--no-progress", action="store_true", help="no per-cell progress bars")
    p.set_defaults(func=_cmd_demo)

    # -- compare
    p = sub.add_parser("compare", help="the small-scale reproduction: GRPO vs SA-GRPO (+ R_SA alone, O1, ER)",
                       description="Trains GRPO and SA-GRPO (alpha 0.2) with every seed, and R_SA alone, O1-pruner and "
                                   "ER (one alpha each, first seed), all with the same settings; evaluates every run "
                                   "and the base model greedily on arith-test (in-domain), symbolic-test and "
                                   "logic-test (OOD); writes the numbers and the test of the paper's claim (SA-GRPO "
                                   ">= 20%% shorter at <= 1 point lower accuracy) to --json, and two figures. Runs in "
                                   "worker processes; finished runs and evaluations are reused, stopped runs resume. "
                                   "About 12 minutes on 2 idle CPU cores, 30 or more on a busy machine (see sar_lib.compare).")
    p.add_argument("--out", help="folder of the runs (default runs/compare; runs/compare-quick with --quick)")
    p.add_argument("--steps", type=int, help="GRPO steps per run (default 25; 2 with --quick)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds of GRPO and SA-GRPO (default 0 1 2; 0 1 with --quick)")
    p.add_argument("--workers", type=int, default=2, help="runs in parallel, one torch thread each (default 2)")
    p.add_argument("--quick", action="store_true",
                   help="a miniature grid (2 steps, 2 questions x 3 answers, 8 evaluation problems): a smoke test; "
                        "its JSON and figures go into the --out folder, never over figures/")
    p.add_argument("--model", default="tiny", help='"tiny" (default), a local model dir or a hub name')
    p.add_argument("--profile", default="tiny-cpu", help="tiny-cpu (default) | laptop-8gb | gpu-12gb")
    p.add_argument("--methods", nargs="+", help="a subset of grpo sa-grpo sar-only o1 er (default: all)")
    p.add_argument("--questions-per-step", type=int, help="questions per GRPO step (default 8; 2 with --quick)")
    p.add_argument("--learning-rate", "--lr", type=float,
                   help="AdamW learning rate (default: 1e-3 on tiny-cpu, see sar_lib.compare; else the profile's)")
    p.add_argument("--eval-size", type=int, help="problems per evaluation set (default 200; 8 with --quick)")
    p.add_argument("--json", help="results file (default figures/grpo_vs_sar.json; OUT/grpo_vs_sar.json with --quick)")
    p.add_argument("--figures", help="folder of the two figures (default figures/; OUT with --quick)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_compare)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"sar {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
