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
    raise NotImplementedError("sar score")


# ---------------------------------------------------------------- eval
def _cmd_eval(args: argparse.Namespace) -> int:
    raise NotImplementedError("sar eval")


# ---------------------------------------------------------------- pretrain-tiny
def _cmd_pretrain_tiny(args: argparse.Namespace) -> int:
    raise NotImplementedError("sar pretrain-tiny")


# ---------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    raise NotImplementedError("sar train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sar", description="Self-Aligned Reward: score, train, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    # -- score
    p = sub.add_parser("score", help="SAR of (question, answer) pairs under a model")
    p.set_defaults(func=_cmd_score)

    # -- eval
    p = sub.add_parser("eval", help="greedy evaluation: accuracy and answer length")
    p.set_defaults(func=_cmd_eval)

    # -- pretrain-tiny
    p = sub.add_parser("pretrain-tiny", help="train the embedded tiny reasoner from scratch")
    p.set_defaults(func=_cmd_pretrain_tiny)

    # -- train
    p = sub.add_parser("train", help="GRPO / SA-GRPO training")
    p.set_defaults(func=_cmd_train)

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
