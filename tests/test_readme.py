"""The README's measured tables are the ones the runs wrote (scripts/sync_readme.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("sync_readme", REPO / "scripts" / "sync_readme.py")
sync_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_readme)


def test_readme_tables_match_the_committed_results():
    text = sync_readme.README.read_text()
    assert sync_readme.synced(text, sync_readme.blocks()) == text, \
        "README.md's measured tables are stale: run `python scripts/sync_readme.py`"


def test_sync_replaces_only_the_named_block():
    text = "intro\n<!-- begin:a -->\nold\n<!-- end:a -->\n<!-- begin:b -->\nkeep\n<!-- end:b -->\n"
    out = sync_readme.synced(text, {"a": "| new |"})
    assert out == "intro\n<!-- begin:a -->\n| new |\n<!-- end:a -->\n<!-- begin:b -->\nkeep\n<!-- end:b -->\n"


def test_sync_fills_an_empty_block_and_is_idempotent():
    once = sync_readme.synced("<!-- begin:a -->\n<!-- end:a -->\n", {"a": "x\ny"})
    assert once == "<!-- begin:a -->\nx\ny\n<!-- end:a -->\n"
    assert sync_readme.synced(once, {"a": "x\ny"}) == once


def test_sync_refuses_a_readme_without_the_block():
    with pytest.raises(ValueError, match="no block 'c'"):
        sync_readme.synced("no blocks here", {"c": "x"})


def test_replicate_text_pools_the_seeds_of_both_grids():
    import copy
    import json

    from sar_lib.claims import compare_seeds, test_text

    grid = json.loads((REPO / "figures" / "grpo_vs_sar.json").read_text())
    replicate = copy.deepcopy(grid)
    for name in ("grpo", "sa-grpo"):
        replicate["methods"][name]["seeds"] = [3, 4, 5]
    lengths = replicate["methods"]["sa-grpo"]["eval"]["arith-test"]["mean_length"]
    lengths["per_seed"] = [v - 10.0 for v in lengths["per_seed"]]
    text = sync_readme.replicate_text(grid, replicate)
    assert "Seeds 3, 4, 5," in text and "6 seeds per method: 0, 1, 2, 3, 4, 5" in text
    pooled = compare_seeds(grid["methods"]["sa-grpo"]["eval"]["arith-test"]["mean_length"]["per_seed"] + lengths["per_seed"],
                           2 * grid["methods"]["grpo"]["eval"]["arith-test"]["mean_length"]["per_seed"])
    assert test_text(pooled, "tok") in text


def test_extension_text_names_the_lagging_seeds_that_switched_later():
    import json

    grid = json.loads((REPO / "docs" / "grid_replicate_seeds_345.json").read_text())
    for entry in grid["budget_curve"]["sa-grpo"]:
        if entry["rollouts"] > 7000:  # seed 4 turns concise after 7,000 rollouts
            entry["mean_length"]["per_seed"][1] = 30.0
    text = sync_readme.extension_text(grid, before=4800)
    assert "Of the 2 SA-GRPO seeds that had not shortened by 4,800 rollouts (4, 5), 1 did by 9,600 (seed 4 from 7,680)." in text
    grpo = {e["rollouts"]: e["mean_length"]["per_seed"] for e in grid["budget_curve"]["grpo"]}
    assert f"{grpo[4800][0]:.1f} → {grpo[9600][0]:.1f}" in text
    assert "no seed shortened by 20% or more" in text
    shaped = {e["rollouts"]: e["mean_length"]["per_seed"] for e in grid["budget_curve"]["sa-grpo"]}[9600]
    assert max(shaped) < min(grpo[9600])
    assert ("lengths per seed at 9,600: " + ", ".join(f"{v:.1f}" for v in shaped)
            + f" tok: its longest seed is shorter than GRPO's shortest ({min(grpo[9600]):.1f} tok).") in text
    assert "C6 at 9,600: " in text
    assert "cut at the 192-token limit at 9,600, per seed: GRPO 0%, 0%, 0%; SA-GRPO (α=0.2) 0%, 0%, 0%." in text
    assert f"{grid['runs_trained']} runs ({grid['settings']['steps']} steps each)" in text
