"""Regenerate the README's measured tables from the files the runs wrote, so text and runs cannot drift.

Each block sits between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->`` in README.md:

* ``premises-v2``: the shipped model's premises P1-P5 (``sar_lib/assets/tiny/card.json``, written by
  ``sar pretrain-tiny``);
* ``premises-v1``: the first testbed's premises (``docs/premises_testbed_v1.json``, written by
  ``sar premises --model <first testbed's model> --json docs/premises_testbed_v1.json``);
* ``grpo-vs-sar``: the claims and results tables of ``sar compare`` (``figures/grpo_vs_sar.md``);
* ``grid-verdict``: what SAR did on the testbed and why, in the words of notebook 03's verdict
  (``sar_lib.verdicts.grid_summary``, from the grid's JSON and the card).

    python scripts/sync_readme.py           # rewrite the blocks
    python scripts/sync_readme.py --check   # exit 1 if a block is stale (the tests run this)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from sar_lib import verdicts
from sar_lib.grid import METHODS
from sar_lib.model_card import premises_table
from sar_lib.models import TINY_DIR

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def blocks() -> dict[str, str]:
    """{block name: its Markdown}, from the committed result files."""
    card = json.loads((TINY_DIR / "card.json").read_text())
    first = json.loads((REPO / "docs" / "premises_testbed_v1.json").read_text())
    grid = json.loads((REPO / "figures" / "grpo_vs_sar.json").read_text())
    regime = verdicts.verbosity_regime(card["premises"], METHODS["sa-grpo"].alpha)
    return {"premises-v2": premises_table(card["premises"]),
            "premises-v1": premises_table(first),
            "grpo-vs-sar": (REPO / "figures" / "grpo_vs_sar.md").read_text().strip(),
            "grid-verdict": verdicts.grid_summary(grid, regime)}


def synced(text: str, new_blocks: dict[str, str]) -> str:
    """``text`` with every named block's body replaced; a block missing from ``text`` is an error."""
    for name, body in new_blocks.items():
        pattern = re.compile(rf"(<!-- begin:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- end:{re.escape(name)} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md has no block {name!r}: add <!-- begin:{name} --> and <!-- end:{name} --> lines")
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether README.md is up to date")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = synced(text, blocks())
    if args.check:
        if new != text:
            print("README.md's measured tables are stale: run `python scripts/sync_readme.py`", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
