"""The README's and docs pages' prose (sar_lib.lab.readme_text): the headline and the claims table, which must
agree; the layout from the package's docstrings; the budget curve in words (when SA-GRPO separates, each
seed's onset), the replicate's pooled seeds and the budget extension's answers."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from sar_lib.lab import claims
from sar_lib.lab.analysis import shortening_onsets
from sar_lib.models import PROFILES
from sar_lib.lab.readme_text import (budget_markdown, extension_text, first_sentence, grid_settings, headline, layout_list,
                                     module_table, profiles_table, replicate_text, rerun_text, results_markdown,
                                     rollouts_per_run)

REPO = Path(__file__).resolve().parent.parent


def _committed(path: str) -> dict:
    return json.loads((REPO / path).read_text())


def _flat(text: str) -> str:
    """``text`` with its line breaks as spaces: a wrapped Markdown paragraph as one line."""
    return " ".join(text.split())


def _c1_row(results: str) -> list[str]:
    """The verdict cells of C1's row of :func:`results_markdown`."""
    row = next(line for line in results.splitlines() if line.startswith("| C1 "))
    return [cell.strip().strip("*") for cell in row.strip("|").split("|")[1:]]


GRIDS = ("figures/grpo_vs_sar.json", "docs/grid_lr1e-3_9600.json", "docs/grid_budget_19200.json")


def _row(results: str, claim_id: str) -> list[str]:
    """The verdict cells of claim ``claim_id``'s row of :func:`results_markdown`."""
    row = next(line for line in results.splitlines() if line.startswith(f"| {claim_id} "))
    return [cell.strip().strip("*") for cell in row.strip("|").split("|")[1:]]


def _status(grid: dict, claim_id: str) -> str:
    return next(c for c in claims.current_claims(grid) if c["id"] == claim_id)["status"]


def test_the_headline_states_c1_and_c8_as_the_claims_table_does():
    grid, earlier, extended = map(_committed, GRIDS)
    text = _flat(headline(grid, extended))
    assert text.startswith("**") and text.endswith(".**") and text.count(". ") == 0   # one sentence
    for g in (grid, extended):
        seeds = len(g["methods"]["sa-grpo"]["seeds"])
        assert f"{claims.STATUS_VERBS[_status(g, 'C1')]} at {rollouts_per_run(g):,} rollouts per run over {seeds} seeds" \
            in text
        assert f"lr {g['settings']['learning_rate']:g}" in text
    assert f"C8 (RL improves on the base) {claims.STATUS_VERBS[_status(grid, 'C8')]}" in text
    results = results_markdown(grid, earlier, extended)
    for claim_id in ("C1", "C8"):
        assert _row(results, claim_id) == [claims.VERDICT_WORDS[_status(g, claim_id)] for g in (grid, earlier, extended)]


@pytest.mark.parametrize("status, words", [("holds", "holds"), ("does_not_hold", "does not hold"),
                                           ("untestable", "is untestable here")])
def test_the_headline_follows_c1s_status(status, words):
    grid, earlier, extended = map(_committed, GRIDS)
    changed = copy.deepcopy(grid)
    next(c for c in changed["claims"] if c["id"] == "C1")["status"] = status
    text = _flat(headline(changed, extended))
    assert f"), {words} at 9,600 rollouts per run" in text and "not separable" not in text
    assert _c1_row(results_markdown(changed, earlier, extended))[0] == claims.VERDICT_WORDS[status]


def test_the_headline_and_the_table_without_an_extension_and_without_c1s_figures():
    grid = copy.deepcopy(_committed(GRIDS[0]))
    c1 = next(c for c in grid["claims"] if c["id"] == "C1")
    c1.update(status="not_run", numbers={})
    del grid["budget_curve"]
    seeds = len(grid["methods"]["sa-grpo"]["seeds"])
    text = _flat(headline(grid))
    assert f"), was not run at 9,600 rollouts per run over {seeds} seeds, and C8" in text and "; at lr" not in text
    results = results_markdown(grid)
    assert results.splitlines()[0] == (f"| claim | lr {grid['settings']['learning_rate']:g}, 9,600 rollouts per run, "
                                       f"{seeds} seeds (the grid) |")
    assert _c1_row(results) == ["not run"] and "Greedy accuracy" not in results and "Along" not in results


def test_the_claims_table_ends_with_the_accuracy_along_training_and_at_the_last_budget():
    grid, earlier, extended = map(_committed, GRIDS)
    results = results_markdown(grid, earlier, extended)
    assert sum(line.startswith("| C") for line in results.splitlines()) == len(claims.CLAIM_IDS)
    assert "Along the grid's training (lr " in _flat(results)
    assert _flat(results).endswith("at lr 0.001 and 19,200 rollouts per run: GRPO 45.3%, SA-GRPO 45.6%, both below "
                                   "the base model's 58.5%.")


def test_grid_settings_state_the_batch_the_rate_the_seeds_and_the_time():
    grid = _committed(GRIDS[0])
    s = grid["settings"]
    text = _flat(grid_settings(grid))
    assert f"{s['questions_per_step']} questions per step, {s['steps']} steps" in text
    assert f"learning rate {s['learning_rate']:g}" in text and ", ".join(map(str, s["seeds"])) in text
    assert f"took {grid['wall_seconds'] / 60:.1f} min" in text
    reused = dict(grid, runs_cached=3)
    assert "3 of them reused from an earlier call" in _flat(grid_settings(reused))


def test_rerun_text_finds_a_changed_run():
    grid = _committed("docs/grid_regime_q32_5seeds.json")
    assert "each run came out the same" in _flat(rerun_text(grid, grid))
    changed = copy.deepcopy(grid)
    changed["budget_curve"]["sa-grpo"][-1]["accuracy"]["per_seed"][2] += 0.015
    text = _flat(rerun_text(grid, changed))
    assert "is 1.5 points of accuracy and 0.0 tokens" in text and "came out the same" not in text


def test_the_layout_comes_from_the_docstrings():
    assert first_sentence('sar: the ``x`` of :func:`f`. More.\n\nRest') == "sar: the `x` of `f`"
    assert first_sentence("A run folder: every file it leaves::\n\n  x") == "A run folder: every file it leaves"
    assert first_sentence(None) == ""
    tree = {"pkg/": {"doc": "pkg: the library", "modules": {"a": "A thing", "b": ""}},
            "pkg/lab/": {"doc": "", "modules": {"c": "The harness"}}}
    assert layout_list(tree) == "- `pkg/` (the library): `a`, `b`\n- `pkg/lab/`: `c`"
    assert module_table(tree).splitlines()[2:] == ["| `pkg/a.py` | A thing |", "| `pkg/b.py` |  |",
                                                   "| `pkg/lab/c.py` | The harness |"]
    long = layout_list({"pkg/": {"doc": "", "modules": {f"module_{i}": "" for i in range(40)}}})
    assert max(map(len, long.splitlines())) <= 110 and all(line.startswith("  `") for line in long.splitlines()[1:])


def test_the_profiles_table_has_a_row_per_profile():
    rows = profiles_table(list(PROFILES.values())).splitlines()
    assert len(rows) == 2 + len(PROFILES)
    assert rows[2].startswith("| `tiny-cpu` | embedded tiny reasoner | fp32 | r = 16 | 6 | 192 |")


def _budget_grid(sa_lengths: dict[int, list[float]], control: dict[int, float] | None = None) -> dict:
    """A grid holding only a budget curve: GRPO at 80 tokens (seeds 79, 80, 81), SA-GRPO as given."""
    def entry(budget, lengths, accuracy=0.5):
        return {"step": budget // 96, "rollouts": budget,
                "mean_length": {"mean": sum(lengths) / len(lengths), "std": 0.0, "per_seed": lengths},
                "accuracy": {"mean": accuracy, "std": 0.0, "per_seed": [accuracy] * len(lengths)}}

    curve = {"grpo": [entry(b, [79.0, 80.0, 81.0]) for b in sa_lengths],
             "sa-grpo": [entry(b, v, 0.49) for b, v in sa_lengths.items()]}
    methods = {"grpo": {"label": "GRPO"}, "sa-grpo": {"label": "SA-GRPO"}}
    if control:
        curve["shuffled-sar"] = [entry(b, [v]) for b, v in control.items()]
        methods["shuffled-sar"] = {"label": "shuffled SAR"}
    return {"budget_curve": curve, "methods": methods}


def test_the_budget_curve_names_the_first_budget_from_which_sar_separates():
    grid = _budget_grid({960: [78.0, 80.0, 82.0], 4800: [60.0, 61.0, 62.0], 9600: [40.0, 41.0, 42.0]},
                        control={960: 80.0, 4800: 79.0, 9600: 78.0})
    text = budget_markdown(grid)
    assert sum(line.startswith("|") for line in text.splitlines()) == 2 + 3   # header, rule, one row per budget
    assert "from 4,800 rollouts on" in text     # vs GRPO: inside the noise at 960, beyond from 4,800
    assert "shuffled SAR control's beyond the seed noise from 4,800" in text
    assert "At 9,600 rollouts per run SA-GRPO's greedy answers are 48.8% shorter" in text
    assert "-1.0 points" in text
    assert "stay 20% shorter than GRPO's mean: seed 0 4,800, seed 1 4,800, seed 2 4,800." in text


def test_the_budget_curve_names_each_seeds_onset_and_a_seed_that_lagged():
    # seed 0 never gets 20% below GRPO's 80 tokens; seed 1 does from 4,800; seed 2 dips at 960 and comes back
    text = budget_markdown(_budget_grid({960: [78.0, 80.0, 50.0], 4800: [79.0, 60.0, 70.0], 9600: [70.0, 40.0, 41.0]}))
    assert "seed 0 none up to 9,600, seed 1 4,800, seed 2 9,600." in text


def test_a_separation_that_does_not_last_is_not_reported():
    text = budget_markdown(_budget_grid({960: [60.0, 61.0, 62.0], 9600: [78.0, 80.0, 82.0]}))
    assert "do not separate from GRPO's beyond the seed noise at every budget up to 9,600" in text
    assert "No budget curve" in budget_markdown({"budget_curve": {}, "methods": {}})


def test_a_seeds_onset_is_the_first_budget_from_which_it_stays_below_the_fraction():
    def entry(budget, lengths):
        return {"rollouts": budget, "mean_length": {"mean": sum(lengths) / len(lengths), "per_seed": lengths}}

    reference = [entry(0, [100.0]), entry(10, [100.0, 100.0]), entry(20, [90.0, 110.0]), entry(30, [100.0, 100.0])]
    curve = [entry(0, [100.0]), entry(10, [79.0, 81.0]), entry(20, [81.0, 79.0]), entry(30, [80.0, 70.0])]
    assert shortening_onsets(curve, reference, 0.8) == [30, 20]   # seed 0 dips at 10, is back above at 20
    assert shortening_onsets(curve, reference, 0.5) == [None, None]
    assert shortening_onsets([], reference, 0.8) == []


def test_replicate_text_pools_the_seeds_of_both_grids():
    grid = json.loads((REPO / "docs" / "grid_lr1e-3_9600.json").read_text())   # the grid the replicate repeats
    replicate = copy.deepcopy(grid)
    for name in ("grpo", "sa-grpo"):
        replicate["methods"][name]["seeds"] = [3, 4, 5]
    lengths = replicate["methods"]["sa-grpo"]["eval"]["arith-test"]["mean_length"]
    lengths["per_seed"] = [v - 10.0 for v in lengths["per_seed"]]
    text = replicate_text(grid, replicate)
    assert "Seeds 3, 4, 5," in text and "6 seeds per method: 0, 1, 2, 3, 4, 5" in text
    pooled = claims.compare_seeds(grid["methods"]["sa-grpo"]["eval"]["arith-test"]["mean_length"]["per_seed"] + lengths["per_seed"],
                           2 * grid["methods"]["grpo"]["eval"]["arith-test"]["mean_length"]["per_seed"])
    assert claims.test_text(pooled, "tok") in text


def test_extension_text_names_the_lagging_seeds_that_switched_later():
    grid = json.loads((REPO / "docs" / "grid_replicate_seeds_345.json").read_text())
    for entry in grid["budget_curve"]["sa-grpo"]:
        if entry["rollouts"] > 7000:  # seed 4 turns concise after 7,000 rollouts
            entry["mean_length"]["per_seed"][1] = 30.0
    text = extension_text(grid, before=4800)
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


def test_regime_text_counts_the_study_runs_against_the_base():
    from sar_lib.lab.readme_text import regime_text

    study = json.loads((Path(__file__).resolve().parents[1] / "docs" / "regime_pilots.json").read_text())
    runs = [run for pilot in study["pilots"].values() for run in pilot["runs"].values()]
    grid = copy.deepcopy(json.loads((Path(__file__).resolve().parents[1] / "figures" / "grpo_vs_sar.json").read_text()))
    grid["base"]["arith-test"]["sampled_accuracy"] = 0.31
    text = " ".join(regime_text(study, grid).split())
    below = sum(run["greedy_accuracy"][-1] < study["base"]["accuracy"] for run in runs)
    assert f"{below} of its {len(runs)} runs end below the base's" in text
    assert f"Its rule chose {study['ranking'][0]}, the grid's setting (lr {grid['settings']['learning_rate']:g}" in text
    assert f"took {grid['wall_seconds'] / 60:.1f} min" in text
    # one run above the base and one sampled below it: the counts follow
    changed = copy.deepcopy(study)
    first = next(iter(next(iter(changed["pilots"].values()))["runs"].values()))
    first["greedy_accuracy"][-1], first["sampled_accuracy"] = 0.99, 0.10
    text = " ".join(regime_text(changed, grid).split())
    assert f"{below - 1} of its {len(runs)} runs end below" in text and f"while {len(runs) - 1} end above" in text


def test_notebooks_table_reads_the_demo_times():
    from sar_lib.lab.readme_text import NOTEBOOK_TOPICS, notebooks_table

    times = {name: {"seconds": 30.0 * (k + 1)} for k, name in enumerate(NOTEBOOK_TOPICS)}
    table = notebooks_table(times).splitlines()
    assert len(table) == 2 + len(NOTEBOOK_TOPICS) + 1
    assert table[2].endswith("| 30 s |") and table[-1].endswith("| 5.0 min |")   # 30 + 60 + 90 + 120 s
    assert all(len(re.split(r"(?<!\\)\|", row)) == 5 for row in table)   # three cells: "|a|b|c|" splits in five
    assert "| — |" in notebooks_table({})   # a notebook the demo has not run yet


def test_chosen_regime_claims_show_the_five_seed_grid():
    from sar_lib.lab.readme_text import chosen_regime_claims

    grid = json.loads((Path(__file__).resolve().parents[1] / "docs" / "grid_regime_q32_5seeds.json").read_text())
    text = chosen_regime_claims(grid)
    assert f"{grid['settings']['questions_per_step']} questions x 6 answers" in text
    rows = [line for line in text.splitlines() if line.startswith("| C")]
    assert [row.split()[1] for row in rows] == ["C1", "C8"]
    c8 = next(c for c in grid["claims"] if c["id"] == "C8")
    assert rows[1].endswith(f"**{claims.VERDICT_WORDS[c8['status']]}** |")


def test_regime_criteria_judge_r1_r2_r3_on_the_grid():
    from sar_lib.lab.readme_text import regime_criteria

    grid = _committed("docs/grid_regime_q32_5seeds.json")
    verdicts = [line.rsplit("|", 2)[1].strip().strip("*") for line in regime_criteria(grid).splitlines()[2:]]
    assert verdicts == ["not met", "not met", "not measured"]   # six of its runs were reused: no whole-grid time
    better = copy.deepcopy(grid)
    better.update(runs_cached=0, wall_seconds=90 * 60.0)
    for name in ("grpo", "sa-grpo"):
        for entry in better["budget_curve"][name]:
            entry["accuracy"]["mean"] = max(entry["accuracy"]["mean"], better["base"]["arith-test"]["accuracy"])
    rows = regime_criteria(better).splitlines()[2:]
    assert rows[0].endswith("| **met** |") and rows[2].endswith("| **met** |") and "90.0 min on 2 cores" in rows[2]
    better["wall_seconds"] = 101 * 60.0
    assert regime_criteria(better).splitlines()[-1].endswith("| **not met** |")
