"""Regenerate the README's measured tables from the files the runs wrote, so text and runs cannot drift.

Each block sits between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->`` in README.md. This script
reads the result files and rewrites the blocks; their text is built in ``sar_lib.readme_text``,
except what the notebooks and ``sar compare`` show too (``model_card.premises_table``,
``verdicts.grid_summary``, the Markdown file ``sar compare`` writes):

* ``premises-v2``: the shipped model's premises P1-P5 (``sar_lib/assets/tiny/card.json``, written by
  ``sar pretrain-tiny``);
* ``tiny-model``: the shipped model's making and its out-of-domain accuracy (the same card);
* ``premises-v1``: the first testbed's premises (``docs/premises_testbed_v1.json``, written by
  ``sar premises --model <first testbed's model> --json docs/premises_testbed_v1.json``);
* ``grpo-vs-sar``: the claims and results tables of ``sar compare`` (``figures/grpo_vs_sar.md``);
* ``grid-verdict``: what SAR did on the testbed and why, in the words of notebook 03's verdict
  (``sar_lib.verdicts.grid_summary``, from the grid's JSON and the card);
* ``budget-curve``: the budget curve of ``sar compare`` and when SA-GRPO separates from GRPO and the
  shuffled-SAR control (``readme_text.budget_markdown``, from the grid's JSON);
* ``bench-cpu``: the CPU cost table of ``sar bench --json docs/bench_cpu.json``;
* ``model-change``: what the new embedded model moved on C1-C7: each claim's verdict and the greedy
  figures of the grid on the previous model (``docs/grid_model_v2.json``, its ``sar compare`` JSON)
  and on the shipped one (``figures/grpo_vs_sar.json``);
* ``replicate``: GRPO and SA-GRPO rerun with seeds we did not choose for the grid
  (``docs/grid_replicate_seeds_345.json``, written by the README's replicate command): C1 on those
  seeds, when each seed shortened, and C1's length test over the grid's and the replicate's seeds pooled;
* ``budget-extension``: GRPO and SA-GRPO with six seeds at twice the grid's budget
  (``docs/grid_budget_19200.json``), answering the questions fixed before that run in
  ``docs/budget_extension.md``.

    python scripts/sync_readme.py           # rewrite the blocks
    python scripts/sync_readme.py --check   # exit 1 if a block is stale (the tests run this)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from sar_lib import readme_text, verdicts
from sar_lib.grid import METHODS
from sar_lib.model_card import premises_table
from sar_lib.models import TINY_DIR

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def _json(path: str) -> dict:
    """A committed result file, by its path in the repository."""
    return json.loads((REPO / path).read_text())


def blocks() -> dict[str, str]:
    """{block name: its Markdown}, from the committed result files."""
    card = json.loads((TINY_DIR / "card.json").read_text())
    first = _json("docs/premises_testbed_v1.json")
    grid = _json("figures/grpo_vs_sar.json")
    grid_rollouts = grid["settings"]["steps"] * grid["settings"]["questions_per_step"] * grid["settings"]["group_size"]
    regime = verdicts.verbosity_regime(card["premises"], METHODS["sa-grpo"].alpha)
    return {"premises-v2": premises_table(card["premises"]),
            "tiny-model": readme_text.tiny_model_text(card),
            "premises-v1": premises_table(first),
            "grpo-vs-sar": (REPO / "figures" / "grpo_vs_sar.md").read_text().strip(),
            "grid-verdict": verdicts.grid_summary(grid, regime),
            "budget-curve": readme_text.budget_markdown(grid),
            "bench-cpu": readme_text.bench_table(_json("docs/bench_cpu.json")),
            "model-change": readme_text.model_change_table(_json("docs/grid_model_v2.json"), grid),
            "replicate": readme_text.replicate_text(grid, _json("docs/grid_replicate_seeds_345.json")),
            "budget-extension": readme_text.extension_text(_json("docs/grid_budget_19200.json"), grid_rollouts)}


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
