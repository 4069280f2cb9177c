"""The ``sar`` command line: one sub-command per job, each a thin wrapper over ``sar_lib``.

Errors a user can fix (bad input, bad config) are raised as ``ValueError`` / ``FileNotFoundError``
by the library and printed here as one line, with exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path


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


def _add_score(sub: argparse._SubParsersAction) -> None:
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


# ---------------------------------------------------------------- eval
def _cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from sar_lib.data import load_problems
    from sar_lib.evaluate import eval_settings, evaluate, format_evaluation
    from sar_lib.models import load_model, resolve_model
    from sar_lib.runs import write_report

    # input checks first: sizes, unknown dataset names and missing files, then the model dir (no weights read)
    max_new_tokens, batch_size = eval_settings(args.model, max_new_tokens=args.max_new_tokens,
                                               batch_size=args.batch_size)
    problems = load_problems(args.dataset, limit=args.limit, seed=args.seed)
    resolve_model(args.model)

    torch.manual_seed(args.seed)  # greedy decoding is deterministic; this pins anything else
    model, tokenizer = load_model(args.model, device=args.device)
    report = evaluate(model, tokenizer, problems, max_new_tokens=max_new_tokens, batch_size=batch_size,
                      progress=True)
    print(format_evaluation(report, title=f"{args.model} on {args.dataset} (greedy, <= {max_new_tokens} new tokens)"),
          flush=True)
    if args.json:
        write_report(report, args.json, model=args.model, dataset=args.dataset, limit=args.limit, seed=args.seed,
                     max_new_tokens=max_new_tokens, batch_size=batch_size)
        print(f"wrote {args.json}", flush=True)
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from sar_lib.evaluate import DEFAULT_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS

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
                        f"{DEFAULT_MAX_NEW_TOKENS} otherwise)")
    p.add_argument("--batch-size", type=int,
                   help=f"prompts per generation batch (default: the tiny-cpu profile's for tiny, "
                        f"{DEFAULT_BATCH_SIZE} otherwise)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu")
    p.set_defaults(func=_cmd_eval)


# ---------------------------------------------------------------- pretrain-tiny
def _cmd_pretrain_tiny(args: argparse.Namespace) -> int:
    from sar_lib.data import HELD_OUT_SETS
    from sar_lib.evaluate import format_evaluation
    from sar_lib.lab.pretrain import PretrainConfig, pretrain_tiny

    overrides = {k: v for k, v in (("seed", args.seed), ("steps", args.steps), ("max_minutes", args.max_minutes))
                 if v is not None}
    config = PretrainConfig(**overrides)
    command = " ".join(["sar pretrain-tiny", "--out", args.out] +
                       [f"--{k.replace('_', '-')} {v}" for k, v in overrides.items()])
    card = pretrain_tiny(config, args.out, progress=True, command=command)
    for name in HELD_OUT_SETS:
        print(format_evaluation(card["eval"][name], title=name), flush=True)
    print(f"wrote {args.out} ({card['n_parameters'] / 1e6:.2f}M parameters, {card['steps_done']} steps, "
          f"{card['total_seconds'] / 60:.1f} min); model card: {args.out}/MODEL_CARD.md", flush=True)
    return 0


def _add_pretrain_tiny(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain-tiny", help="train the embedded tiny reasoner from scratch",
                       description="Trains the tokenizer and the tiny Qwen2 model on the synthetic corpus "
                                   "(sar_lib.lab.pretrain.PretrainConfig), saves them into --out, measures greedy "
                                   "accuracy / length on held-out arithmetic and the OOD sets, and writes "
                                   "MODEL_CARD.md and card.json there. About 25 minutes on one CPU core "
                                   "(the model card states the time).")
    p.add_argument("--out", default="tiny-reasoner",
                   help="output directory (default ./tiny-reasoner; the shipped model in sar_lib/assets/tiny "
                        "is replaced only when --out names it)")
    p.add_argument("--seed", type=int, help="seed of the corpus, the initialisation and the data order (default 0)")
    p.add_argument("--steps", type=int, help="optimiser steps (default: PretrainConfig.steps)")
    p.add_argument("--max-minutes", type=float,
                   help="stop the training loop after this many minutes even if steps remain "
                        "(default: PretrainConfig.max_minutes)")
    p.set_defaults(func=_cmd_pretrain_tiny)


# ---------------------------------------------------------------- premises
def _cmd_premises(args: argparse.Namespace) -> int:
    import torch

    from sar_lib.data import SYNTHETIC_SETS
    from sar_lib.lab.model_card import premises_table
    from sar_lib.models import load_model, resolve_model
    from sar_lib.lab.premises import measure_premises

    if args.limit < 2 or args.samples < 1:
        raise ValueError(f"need --limit >= 2 and --samples >= 1, got {args.limit} and {args.samples}")
    resolve_model(args.model)
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    result = measure_premises(model, tokenizer, SYNTHETIC_SETS["arith-test"](args.limit, args.seed),
                              samples_per_item=args.samples, seed=args.seed)
    result.update(model=args.model, command=_command_line("premises", args))
    print(premises_table(result), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}", flush=True)
    return 0


def _add_premises(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("premises", help="measure SAR's premises P1-P5 on a model (sar_lib.lab.premises)",
                       description="On held-out synthetic arithmetic: is ctx(0) an answer marginal (P1), is verbosity "
                                   "harmless (P2), is there length to cut (P3), do too-short answers exist (P4), is "
                                   "there room for RL (P5)? Prints the table of the model card, writes --json.")
    p.add_argument("--model", default="tiny", help='"tiny" (default) or a model dir trained on the synthetic tasks')
    p.add_argument("--limit", type=int, default=200, help="questions (default 200)")
    p.add_argument("--samples", type=int, default=8, help="answers sampled per question at temperature 1 (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the questions and the sampling (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--json", help="write every figure to this JSON file")
    p.set_defaults(func=_cmd_premises)


# ---------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    from sar_lib import runs
    from sar_lib.grpo import train
    from sar_lib.grpo_config import GRPOConfig

    # flags left out are absent from args (argparse.SUPPRESS): the config's or the saved run's value holds
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in fields}
    if args.resume:
        if "out" not in overrides:
            raise ValueError("--resume needs --out DIR, the run folder to continue")
        config = dataclasses.replace(runs.read_config(overrides["out"]), **overrides)
    else:
        config = GRPOConfig.for_profile(**overrides)
    run_dir = train(config, resume=args.resume)
    final, _ = runs.read_eval(run_dir, runs.read_config(run_dir).eval_dataset)
    _print_json({"run_dir": str(run_dir), **final})
    return 0


def _flag_type(annotation) -> tuple[type, bool]:
    """``(type, optional)`` of a field annotation such as ``int``, ``float | None``, ``bool``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return (args[0] if args else annotation), type(None) in typing.get_args(annotation)


def _parse_value(kind: type, optional: bool):
    def parse(text: str):
        return None if optional and text.lower() == "none" else kind(text)
    parse.__name__ = kind.__name__   # argparse names the type in its "invalid value" message
    return parse


def _default_text(f: dataclasses.Field, config_class: type) -> str:
    """`` (default: ...)`` for the help of ``f``: the profile's for a field a profile sets
    (``metadata["profile"]``), with its value on the default profile; nothing for a ``None`` default."""
    if f.default in (None, dataclasses.MISSING):
        return ""
    if f.metadata.get("profile"):
        return f" (default: the --profile's; {f.default} on {config_class.profile})"
    return f" (default: {f.default})"


def _add_config_flags(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One flag per field of the dataclass ``config_class``, as TRL's HfArgumentParser makes them:
    ``--field-name`` (and ``metadata["aliases"]``), typed by the annotation, with the help of
    ``metadata["help"]`` and the field's default; a bool gets ``--x`` / ``--no-x``; an optional
    field also takes ``none``. Defaults are not set on the parser: a flag left out keeps the config's."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        kind, optional = _flag_type(hints[f.name])
        names = [f"--{f.name.replace('_', '-')}", *f.metadata.get("aliases", ())]
        text = f.metadata["help"] + _default_text(f, config_class)
        if kind is bool:
            parser.add_argument(*names, dest=f.name, action=argparse.BooleanOptionalAction, help=text)
        else:
            parser.add_argument(*names, dest=f.name, type=_parse_value(kind, optional), help=text)


def _add_train(sub: argparse._SubParsersAction) -> None:
    from sar_lib.grpo_config import GRPOConfig

    p = sub.add_parser("train", help="GRPO / SA-GRPO training", argument_default=argparse.SUPPRESS,
                       description="GRPO with reward R = R_VR + alpha * r (r: SAR or a baseline), LoRA on the "
                                   "profile's model. Writes DIR/config.json, metrics.jsonl (one line per step), "
                                   "checkpoint/ and eval_<eval-dataset>.json (the final greedy evaluation; its "
                                   "answers in eval_<eval-dataset>_records.jsonl; see sar_lib.runs) and prints it. "
                                   "One flag per field of sar_lib.grpo_config.GRPOConfig: unset options take the "
                                   "profile's value (sar_lib.models.PROFILES), then the field's default; with "
                                   "--resume, the saved run's value.")
    _add_config_flags(p, GRPOConfig)
    p.add_argument("--resume", action="store_true", default=False,
                   help="continue the run in --out from its checkpoint (training settings must match)")
    p.set_defaults(func=_cmd_train)


# ---------------------------------------------------------------- bench, gpu-check
def _command_line(name: str, args: argparse.Namespace) -> str:
    """The command as typed, rebuilt from ``args`` (recorded in the result files)."""
    return f"sar {name}" + "".join(
        f" --{key.replace('_', '-')}" + ("" if value is True else f" {value}")
        for key, value in vars(args).items() if key not in ("func", "command") and value not in (None, False))


def _cmd_bench(args: argparse.Namespace) -> int:
    from sar_lib.lab import bench

    result = bench.run_bench(device=args.device, sizes=bench.QUICK if args.quick else bench.FULL,
                             threads=args.threads or None, with_trl=not args.no_trl,
                             command=_command_line("bench", args))
    print(bench.format_bench(result), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}", flush=True)
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks: the rollout engine's speedup, SAR's cost per GRPO step, vs TRL, "
                                     "log-prob memory",
                       description="Times the rollout engine against the reference path (SA-GRPO steps at the grid's "
                                   "shape, natural lengths, with its exactness checks), SA-GRPO against plain GRPO "
                                   "steps and against TRL's GRPOTrainer at forced answer lengths, measures the peak memory of the chunked answer log-probs against "
                                   "a naive full-vocabulary log-softmax, prints a table and writes --json "
                                   "(see docs/benchmarks.md).")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default cpu)")
    p.add_argument("--json", help="write every figure, the machine and the command to this JSON file")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test in a few minutes, not figures")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads on CPU (default 1: stable timings on a shared machine; 0: torch's "
                        "default)")
    p.add_argument("--no-trl", action="store_true", help="skip the TRL comparison")
    p.set_defaults(func=_cmd_bench)


def _cmd_gpu_check(args: argparse.Namespace) -> int:
    import torch

    from sar_lib.lab.gpu_check import format_gpu_check, gpu_check

    if args.dry_run and args.threads:
        torch.set_num_threads(args.threads)
    report = gpu_check(args.json, dry_run=args.dry_run, command=_command_line("gpu-check", args),
                       **({} if args.time_budget is None else {"time_budget_s": args.time_budget}))
    print(format_gpu_check(report), flush=True)
    print(f"wrote {args.json}", flush=True)
    return 0 if report["ok"] else 1


def _add_gpu_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gpu-check", help="the prepared GPU check: 4-bit + LoRA SA-GRPO steps, Qwen2.5 shapes",
                       description="4-bit + LoRA SA-GRPO steps on random Qwen2.5-0.5B/1.5B-shaped models and the "
                                   "log-prob memory probe on a CUDA GPU (scripts/gpu_check.sh runs it); writes --json "
                                   "after every stage. Exit code 1 when a model failed or missed its memory target "
                                   "(see docs/benchmarks.md).")
    p.add_argument("--json", default="gpu_check.json", help="the report (default gpu_check.json)")
    p.add_argument("--dry-run", action="store_true", help="the same code on CPU, models shrunk")
    p.add_argument("--time-budget", type=float, help="seconds for the whole check (default 420)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads of a --dry-run (default 1)")
    p.set_defaults(func=_cmd_gpu_check)


# ---------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from sar_lib.lab import demo
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


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the numbered notebooks headless and print their results",
                       description="Executes notebooks/01..04 in order with papermill (the ones that exist), on the "
                                   "embedded tiny model unless --model, writes the executed notebooks (in place, or "
                                   "into --out DIR/notebooks) and their figures (figures/, or DIR/figures), then "
                                   "prints a summary table. Exit code 1 when a notebook fails; the failing cell and "
                                   "the error are printed.")
    p.add_argument("--out", help="write the executed notebooks and figures under this folder instead of in place")
    p.add_argument("--fast", action="store_true",
                   help="small parameter sets (sar_lib.lab.demo.FAST): a smoke run in a few minutes, as CI runs it")
    p.add_argument("--model", help='the MODEL parameter of every notebook (default: their own, "tiny")')
    p.add_argument("--notebooks",
                   help="folder of numbered notebooks 0[1-4]_*.ipynb to run (default: the repository's notebooks/)")
    p.add_argument("--only", nargs="+", metavar="NN",
                   help="run only these notebooks, by number (e.g. --only 01 02); default: all")
    p.add_argument("--no-progress", action="store_true", help="no per-cell progress bars")
    p.set_defaults(func=_cmd_demo)


# ---------------------------------------------------------------- compare
def _cmd_compare(args: argparse.Namespace) -> int:
    import shlex

    from sar_lib.lab import compare, shipped
    from sar_lib.lab.grid import DEFAULT_METHODS

    if args.quick and args.ship_adapters is not None and Path(args.ship_adapters).resolve() == shipped.SHIPPED_DIR.resolve():
        raise ValueError("--quick trains smoke-test runs: they must not replace the package's shipped adapters; "
                         "drop --ship-adapters or give it another folder")
    # every value is checked where it is used: GRPOConfig.validate, grid.grid_runs, grid.run_grid
    settings = {k: v for k, v in (("questions_per_step", args.questions_per_step), ("eval_size", args.eval_size),
                                  ("eval_every", args.eval_every), ("learning_rate", args.learning_rate),
                                  ("report_to", args.report_to))
                if v is not None}
    summary = compare.compare(args.out, model=args.model, profile=args.profile, steps=args.steps, seeds=args.seeds,
                              workers=args.workers, device=args.device, quick=args.quick,
                              methods=args.methods or DEFAULT_METHODS,
                              json_path=args.json, figures_dir=args.figures,
                              command=shlex.join(["sar", *sys.argv[1:]]) if sys.argv[1:2] == ["compare"] else "",
                              progress=not args.no_progress, **settings)
    print(compare.format_comparison(summary), flush=True)
    print(f"wrote {summary['json']}, {', '.join(summary['figures'])}", flush=True)
    if args.ship_adapters is not None:
        manifest = shipped.ship_adapters(summary["json"], args.ship_adapters)
        print(f"shipped {len(manifest)} adapters ({', '.join(manifest)}) into {args.ship_adapters}", flush=True)
    return 0


def _add_compare(sub: argparse._SubParsersAction) -> None:
    from sar_lib.lab.shipped import SHIPPED_DIR
    from sar_lib.tracking import REPORT_TO

    p = sub.add_parser("compare", help="the small-scale reproduction: GRPO vs SA-GRPO, the ablations and baselines",
                       description="Trains GRPO and SA-GRPO (alpha 0.2) with every seed, and R_SA alone, R_VR + 0.2 R_EM, "
                                   "O1-pruner and ER at alphas 0.03 and 0.1, and a shuffled-SAR control (first seed), all "
                                   "with the same settings; evaluates every run and the base model greedily and with 4 "
                                   "samples per problem on arith-test (in-domain), claim-test, symbolic-test and "
                                   "logic-test (OOD); "
                                   "checks the paper's claims C1-C8 (sar_lib.lab.claims) and writes the numbers to --json, "
                                   "a Markdown table beside it and three figures. Runs in worker processes; finished runs "
                                   "and evaluations are reused, stopped runs resume. See the README for its time.")
    p.add_argument("--out", help="folder of the runs (default runs/compare; runs/compare-quick with --quick)")
    p.add_argument("--steps", type=int, help="GRPO steps per run (default: compare.DEFAULT_STEPS; 2 with --quick)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds of GRPO and SA-GRPO (default 0 1 2 3 4; 0 1 with --quick)")
    p.add_argument("--workers", type=int, help="runs in parallel, one torch thread each (default: 2 on cpu; "
                                               "on cuda every run at once, at most 6)")
    p.add_argument("--device", help="where every run trains and is evaluated: cpu | cuda | cuda:N "
                                    "(default: cuda when available, else cpu)")
    p.add_argument("--quick", action="store_true",
                   help="a miniature grid (2 steps, 2 questions x 3 answers, 8 evaluation problems): a smoke test; "
                        "its JSON and figures go into the --out folder, never over figures/")
    p.add_argument("--model", default="tiny", help='"tiny" (default), a local model dir or a hub name')
    p.add_argument("--profile", default="tiny-cpu", help="tiny-cpu (default) | laptop-8gb | gpu-12gb")
    p.add_argument("--methods", nargs="+", help="the methods (sar_lib.lab.grid.METHODS: grpo sa-grpo sar-only em o1-0.03 "
                                                "o1-0.1 er-0.03 er-0.1 shuffled-sar, and the opt-in ppo sa-ppo; "
                                                "default: all but ppo sa-ppo)")
    p.add_argument("--questions-per-step", type=int, help="questions per GRPO step (default 32; 2 with --quick)")
    p.add_argument("--learning-rate", "--lr", type=float,
                   help="AdamW learning rate (default: grid.SHORT_RUN_LEARNING_RATES on tiny-cpu, else the profile's)")
    p.add_argument("--eval-size", type=int,
                   help="problems per evaluation set (default 200; the OOD sets at most 100; 8 with --quick)")
    p.add_argument("--eval-every", type=int,
                   help="a greedy in-domain evaluation every N steps, the points of the budget curve (default 10; "
                        "1 with --quick)")
    p.add_argument("--report-to", choices=REPORT_TO,
                   help="also log every run's metrics to this tool (as sar train --report-to; default none)")
    p.add_argument("--json", help="results file (default figures/grpo_vs_sar.json; OUT/grpo_vs_sar.json with --quick)")
    p.add_argument("--figures", help="folder of the three figures (default figures/; OUT with --quick)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--ship-adapters", nargs="?", const=str(SHIPPED_DIR), metavar="DIR",
                   help="then copy the final LoRA adapter (fp16) of every seed of GRPO and SA-GRPO and of every "
                        "other method's first seed, the results JSON and a manifest into DIR, for notebooks "
                        "(sar_lib.lab.shipped; default DIR: the package's sar_lib/assets/grid)")
    p.set_defaults(func=_cmd_compare)


def build_parser() -> argparse.ArgumentParser:
    """The ``sar`` parser: one sub-parser per command, each built beside the command it runs."""
    parser = argparse.ArgumentParser(prog="sar", description="Self-Aligned Reward: score, train, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_score, _add_eval, _add_pretrain_tiny, _add_premises, _add_train, _add_bench, _add_gpu_check,
                _add_demo, _add_compare):
        add(sub)
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
