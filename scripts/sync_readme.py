"""Regenerate the measured blocks of README.md and docs/*.md from the files the runs wrote, so text and runs cannot drift.

Each block sits between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->`` in README.md or in one of the
pages ``docs/*.md``; a page holds any of the blocks below, and each block must be on some page. This
script reads the result files and rewrites the blocks; their text is built in ``sar_lib.lab.readme_text``,
except what the notebooks and ``sar compare`` show too (``model_card.premises_table``,
``verdicts.grid_summary``, the Markdown file ``sar compare`` writes). Blocks of other names (written by
other scripts) are left alone.

README.md:

* ``headline``: the one sentence on the paper's main claim C1 and on C8 (RL improves on the base) in the grid,
  and on C1 at lr 1e-3 and twice the budget (``readme_text.headline``, from the claims rows of
  ``figures/grpo_vs_sar.json`` and ``docs/grid_budget_19200.json``);
* ``results``: every claim's verdict in the grid, in the earlier grid at lr 1e-3 (``docs/grid_lr1e-3_9600.json``)
  and at twice its budget (``readme_text.results_markdown``, the same rows);
* ``layout``: the package's folders and modules, from their docstrings (``readme_text.layout_list``).

docs/:

* ``premises-v2`` (testbed.md): the shipped model's premises P1-P5 (``sar_lib/assets/tiny/card.json``,
  written by ``sar pretrain-tiny``);
* ``tiny-model`` (testbed.md): the shipped model's making and its out-of-domain accuracy (the same card);
* ``premises-v1`` (testbed.md): the first testbed's premises (``docs/premises_testbed_v1.json``, written by
  ``sar premises --model <first testbed's model> --json docs/premises_testbed_v1.json``);
* ``grid-settings`` (grid.md): the grid's settings and its wall time (``readme_text.grid_settings``);
* ``grid-lr1e-3`` (grid.md): the earlier grid's settings and its claims table under today's rules;
* ``grpo-vs-sar`` (grid.md): the claims and results tables of ``sar compare`` (``figures/grpo_vs_sar.md``);
* ``grid-verdict`` (grid.md): what SAR did on the testbed and why, in the words of notebook 03's verdict
  (``sar_lib.lab.verdicts.grid_summary``, from the grid's JSON and the card);
* ``budget-curve`` (grid.md): the budget curve of ``sar compare`` and when SA-GRPO separates from GRPO
  and the shuffled-SAR control (``readme_text.budget_markdown``, from the grid's JSON);
* ``model-change`` (model_change.md): what the new embedded model moved on C1-C7: each claim's verdict and
  the greedy figures of the grid on the previous model (``docs/grid_model_v2.json``, its ``sar compare``
  JSON) and on the shipped one (``figures/grpo_vs_sar.json``);
* ``regime-along`` (regime.md): the grid's greedy accuracy along training against the base model's
  (``seed_outcomes.along_training_markdown``);
* ``regime-criteria`` (regime.md): the criteria R1-R3 judged on the grid (``readme_text.regime_criteria``);
* ``lr1e-3-rerun`` (grid.md): the earlier grid's GRPO and SA-GRPO runs against the ones retrained to ship every
  seed (``sar_lib/assets/grid_lr1e-3/grpo_vs_sar.json``);
* ``regime-rerun`` (robustness.md): the grid's GRPO and SA-GRPO runs as the regime study trained them
  (``docs/grid_regime_q32_5seeds.json``) against the grid's, run by run (``readme_text.rerun_text``);
* ``replicate`` (robustness.md): GRPO and SA-GRPO rerun with seeds we did not choose for the grid
  (``docs/grid_replicate_seeds_345.json``): C1 on those seeds, when each seed shortened, and C1's length
  test over the grid's and the replicate's seeds pooled;
* ``budget-extension`` (robustness.md): GRPO and SA-GRPO with six seeds at twice the grid's budget
  (``docs/grid_budget_19200.json``), answering the questions fixed before that run in
  ``docs/budget_extension.md``;
* ``bench-cpu`` (benchmarks.md): the CPU cost table of ``sar bench --json docs/bench_cpu.json``;
* ``modules`` (layout.md): one row per module of ``sar_lib``, from its docstring;
* ``profiles`` (commands.md): the hardware profiles (``sar_lib.models.PROFILES``).

    python scripts/sync_readme.py           # rewrite the blocks
    python scripts/sync_readme.py --check   # exit 1 if a block is stale (the tests run this)
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

from sar_lib.lab import readme_text, seed_outcomes, verdicts
from sar_lib.lab.claims import claims_markdown, current_claims
from sar_lib.lab.grid import METHODS
from sar_lib.lab.model_card import premises_table
from sar_lib.models import PROFILES, TINY_DIR

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "sar_lib"


def pages(root: Path = REPO) -> list[Path]:
    """The pages whose blocks the script writes: README.md and every ``docs/*.md``."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def package_tree(package: Path = PACKAGE) -> dict[str, dict]:
    """{folder of each (sub)package, as 'sar_lib/synthetic/': {"doc": its docstring's first sentence,
    "modules": {module name: its docstring's first sentence}}}, folders in path order."""
    def doc(path: Path) -> str:
        return readme_text.first_sentence(ast.get_docstring(ast.parse(path.read_text())))

    tree = {}
    for init in sorted(package.rglob("__init__.py"), key=lambda p: p.parent.parts):
        folder = init.parent
        tree[folder.relative_to(package.parent).as_posix() + "/"] = {
            "doc": doc(init), "modules": {p.stem: doc(p) for p in sorted(folder.glob("*.py")) if p != init}}
    return tree


def _json(path: str) -> dict:
    """A committed result file, by its path in the repository."""
    return json.loads((REPO / path).read_text())


def blocks() -> dict[str, str]:
    """{block name: its Markdown}, from the committed result files."""
    card = json.loads((TINY_DIR / "card.json").read_text())
    first = _json("docs/premises_testbed_v1.json")
    grid = _json("figures/grpo_vs_sar.json")
    earlier = _json("docs/grid_lr1e-3_9600.json")   # the grid at lr 1e-3, before the regime study
    extended = _json("docs/grid_budget_19200.json")
    regime = verdicts.verbosity_regime(card["premises"], METHODS["sa-grpo"].alpha)
    tree = package_tree()
    return {"headline": readme_text.headline(grid, extended),
            "results": readme_text.results_markdown(grid, earlier, extended),
            "grid-settings": readme_text.grid_settings(grid),
            "grid-lr1e-3": readme_text.grid_settings(earlier) + "\n\n" + claims_markdown(current_claims(earlier)),
            "regime-along": seed_outcomes.along_training_markdown(seed_outcomes.accuracy_along_training(grid),
                                                             {name: m["label"] for name, m in grid["methods"].items()}),
            "regime-criteria": readme_text.regime_criteria(grid),
            "regime-five-seeds": readme_text.chosen_regime_claims(_json("docs/grid_regime_q32_5seeds.json")),
            "regime": readme_text.regime_text(_json("docs/regime_pilots.json"), grid),
            "layout": readme_text.layout_list(tree),
            "notebooks": readme_text.notebooks_table(_json("figures/demo_times.json")
                                                     if (REPO / "figures" / "demo_times.json").is_file() else {}),
            "modules": readme_text.module_table(tree),
            "profiles": readme_text.profiles_table(list(PROFILES.values())),
            "premises-v2": premises_table(card["premises"]),
            "tiny-model": readme_text.tiny_model_text(card),
            "premises-v1": premises_table(first),
            "grpo-vs-sar": (REPO / "figures" / "grpo_vs_sar.md").read_text().strip(),
            "grid-verdict": verdicts.grid_summary(grid, regime),
            "budget-curve": readme_text.budget_markdown(grid),
            "bench-cpu": readme_text.bench_table(_json("docs/bench_cpu.json")),
            "model-change": readme_text.model_change_table(_json("docs/grid_model_v2.json"), earlier),
            "lr1e-3-rerun": readme_text.rerun_text(earlier, _json("sar_lib/assets/grid_lr1e-3/grpo_vs_sar.json"))
            + "\n\n" + seed_outcomes.robustness_markdown(
                {"earlier grid": ("docs/grid_lr1e-3_9600.json", earlier),
                 "again, every seed shipped": ("sar_lib/assets/grid_lr1e-3/grpo_vs_sar.json",
                                               _json("sar_lib/assets/grid_lr1e-3/grpo_vs_sar.json"))}),
            "regime-rerun": readme_text.rerun_text(_json("docs/grid_regime_q32_5seeds.json"), grid),
            "replicate": readme_text.replicate_text(earlier, _json("docs/grid_replicate_seeds_345.json")),
            "budget-extension": readme_text.extension_text(extended, readme_text.rollouts_per_run(earlier))}


def synced(text: str, new_blocks: dict[str, str]) -> str:
    """``text`` with every named block's body replaced; a block missing from ``text`` is an error."""
    for name, body in new_blocks.items():
        pattern = re.compile(rf"(<!-- begin:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- end:{re.escape(name)} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"the page has no block {name!r}: add <!-- begin:{name} --> and <!-- end:{name} --> lines")
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def synced_pages(texts: dict[Path, str], new_blocks: dict[str, str]) -> dict[Path, str]:
    """Every page's text with the blocks it holds replaced; a block that no page holds is an error."""
    homes = {name: [page for page, text in texts.items() if f"<!-- begin:{name} -->" in text] for name in new_blocks}
    missing = [name for name, found in homes.items() if not found]
    if missing:
        raise ValueError(f"no page has the blocks {missing}: add <!-- begin:NAME --> and <!-- end:NAME --> lines")
    return {page: synced(text, {name: body for name, body in new_blocks.items() if page in homes[name]})
            for page, text in texts.items()}


def sync(root: Path, new_blocks: dict[str, str], check: bool = False) -> list[Path]:
    """The pages under ``root`` whose blocks differ from ``new_blocks``; rewritten unless ``check``."""
    texts = {page: page.read_text() for page in pages(root)}
    new = synced_pages(texts, new_blocks)
    stale = [page for page in texts if new[page] != texts[page]]
    if not check:
        for page in stale:
            page.write_text(new[page])
    return stale


def main(argv: list[str] | None = None) -> int:
    """Rewrite the stale blocks of README.md and docs/*.md, or with ``--check`` name them and return 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only report whether README.md and docs/*.md are up to date")
    args = parser.parse_args(argv)
    stale = sync(REPO, blocks(), check=args.check)
    if args.check and stale:
        names = ", ".join(page.relative_to(REPO).as_posix() for page in stale)
        print(f"stale measured blocks in {names}: run `python scripts/sync_readme.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
