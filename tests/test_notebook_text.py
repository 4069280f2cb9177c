"""The prose of notebooks 01-04 agrees with their committed outputs.

Read from the committed notebooks, no model run: terms are explained where they first appear, the
sentences that state a model's number are rendered from the outputs (so they match the tables printed
next to them), the corrected claims stay corrected, the verdicts are short (a table and a few
sentences) and no cell prints a wall. After a retrained model, `sar demo` rewrites outputs and
rendered text together, and these tests keep holding.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from papermill.translators import PythonTranslator

from sar_lib import rewards
from sar_lib.lab import demo, grid, ranking, seed_outcomes, shipped, training_plots

NOTEBOOKS = demo.NOTEBOOKS_DIR
PERPLEXITY = NOTEBOOKS / "01_perplexity_math.ipynb"
RANKING = NOTEBOOKS / "02_sar_quality_ranking.ipynb"
TRAINING = NOTEBOOKS / "03_grpo_lora_4bit_training.ipynb"
OOD = NOTEBOOKS / "04_ood_evaluation.ipynb"
OURS = [PERPLEXITY, RANKING, TRAINING, OOD]
ANSWER_KEYS = [demo.NOTEBOOKS_DIR / demo.SOLUTIONS / f"{p.stem}_solutions.ipynb" for p in OURS]
GRID_JSON = demo.REPO_DIR / "figures" / "grpo_vs_sar.json"
BUDGET_JSON = demo.REPO_DIR / "docs" / "grid_budget_19200.json"
FIGURES = demo.REPO_DIR / "figures"
MAX_PRINTED_LINES = 40   # what one cell may print (streams and rendered Markdown)
MAX_VERDICT_SENTENCES = 5

# term -> words the cell that first mentions it must hold (its one-sentence explanation)
TERMS = {"nats": "unit of information", "ctx(0)": "empty user turn", "P1-P5": "premises",
         "model card": "MODEL_CARD.md"}


def _cells(path):
    return nbformat.read(path, as_version=4).cells


def _outputs(cell) -> str:
    """What a cell printed or rendered: streams, then Markdown (or plain text) of its displays."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output:
            data = output["data"]
            parts.append(data.get("text/markdown", data.get("text/plain", "")))
    return "\n".join(parts)


def _code_cell(cells, needle: str):
    """The first code cell whose source holds ``needle``."""
    found = [c for c in cells if c.cell_type == "code" and needle in c.source]
    assert found, f"no code cell holds {needle!r}"
    return found[0]


@pytest.mark.parametrize("path", [PERPLEXITY, RANKING], ids=lambda p: p.stem)
def test_terms_are_explained_in_markdown_where_they_first_appear(path):
    cells = _cells(path)
    for term, gloss in TERMS.items():
        first = next((c for c in cells if term in c.source or term in _outputs(c)), None)
        if first is None:
            continue
        assert first.cell_type == "markdown" and gloss in first.source, \
            f"{path.name}: {term!r} first appears in a {first.cell_type} cell without its explanation ({gloss!r})"


@pytest.mark.parametrize("path", [PERPLEXITY, RANKING], ids=lambda p: p.stem)
def test_markdown_states_no_number_from_the_model(path):
    """A model's figures print with two or three decimals; a Markdown cell must not hard-code one."""
    for index, cell in enumerate(_cells(path)):
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"\(https?://[^)]*\)", "", cell.source)   # arXiv ids in links are no measurements
        numbers = re.findall(r"(?<![\w.])\d+\.\d{2,}", text)
        assert not numbers, f"{path.name} cell {index} states {numbers}: render it from the outputs"


def test_corrected_claims_of_01_stay_corrected():
    text = "\n".join(c.source for c in _cells(PERPLEXITY) if c.cell_type == "markdown")
    assert "Notebook 03 trains both" not in text
    assert "`sar-only`" in text and "SA-GRPO" in text, "say where SAR alone is trained: sar compare's sar-only"
    assert "SAR falls" not in text and "SAR rises for every answer" not in text, "those are rendered from the table"


def test_01_first_token_gain_matches_the_token_table():
    cells = _cells(PERPLEXITY)
    table = _outputs(_code_cell(cells, "log p(a_t|q)"))
    first = re.search(r"^\s*'(\S+)'\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)$", table.split("\n")[2])
    token, with_q, without_q = first.group(1), float(first.group(2)), float(first.group(3))
    printed = _outputs(_code_cell(cells, "first token of the opening sentence"))
    gain = float(re.search(rf"{re.escape(repr(token))}: .* v_t = ([+-]\d+\.\d+)", printed).group(1))
    assert gain == pytest.approx(with_q - without_q, abs=0.011)


def test_01_context_sentences_match_the_printed_means():
    cells = _cells(PERPLEXITY)
    table = _outputs(_code_cell(cells, 'print(f"mean SAR over {len(problems)} problems")'))
    header, *rows = [line for line in table.split("\n\n")[0].splitlines()[1:] if line.strip()]
    columns = header.split()[1:]
    means = {}
    for row in rows:   # "ctx(0) = generation prompt only   0.579 ...": a name of several words, then the values
        words = row.split()
        means[" ".join(words[:-len(columns)])] = [float(v) for v in words[-len(columns):]]
    assert "paper" in means and len(means) == 5
    rendered = _outputs(_code_cell(cells, "display(Markdown(\"\\n\".join(lines)))"))
    for name, values in means.items():
        if name == "paper":
            continue
        change = [v - p for v, p in zip(values, means["paper"])]
        line = next(line for line in rendered.splitlines() if line.startswith(f"* **{name}**"))
        rises = [c for c, d in zip(columns, change) if d > 0.0005]
        falls = [c for c, d in zip(columns, change) if d < -0.0005]
        for type_name in rises:
            assert re.search(rf"rises for [^;]*({re.escape(type_name)}|every type)", line), (line, type_name)
        for type_name in falls:
            assert re.search(rf"falls for [^;]*({re.escape(type_name)}|every type)", line), (line, type_name)


def test_02_card_comparison_prints_this_notebooks_means():
    cells = _cells(RANKING)
    means = dict(re.findall(r"^(\w+)\s+mean SAR =\s+(-?\d+\.\d+)", _outputs(_code_cell(cells, "type_summary(scores")),
                            re.MULTILINE))
    printed = _outputs(_code_cell(cells, "read_premises"))
    if "nothing to compare" in printed:
        pytest.skip("the committed run had no model card")
    for here, value in re.findall(r"^(\w+)\s+(-?\d+\.\d+)\s+-?\d+\.\d+\s+\(card", printed, re.MULTILINE):
        assert value == means[here]
    assert "different samples" in printed and ("one step" in printed or "one-step" in printed)


def test_02_restatement_medians_in_the_text_match_the_scores_table():
    cells = _cells(RANKING)
    table = _outputs(_code_cell(cells, "score_answer_sets("))
    medians = {row.split()[0]: float(row.split()[2]) for row in table.splitlines() if row.split()[:1]
               and row.split()[0] in ranking.SHORT_NAMES}
    rendered = _outputs(_code_cell(cells, "probe_view ="))
    restated, filler = re.search(r"median `ppl\(a\|q\)` of (\d+), the filler ones (\d+)", rendered).groups()
    assert int(restated) == round(medians["concise_restated"]) and int(filler) == round(medians["concise_filler"])
    assert "never saw" in rendered or "about as natural" in rendered


def test_02_restatement_fate_is_rendered_from_the_gain_split():
    cells = _cells(RANKING)
    printed = _outputs(_code_cell(cells, "ranking.gain_split("))
    suffix = float(re.search(r"after the restatement:\s+(-?\d+\.\d+)", printed).group(1))
    rendered = _outputs(_code_cell(cells, "fate ="))
    assert "lose most of their" not in rendered
    assert ("turns negative" in rendered) == (suffix < 0), rendered
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "near 0.5" not in text and "lose most of their" not in text


# ---------------------------------------------------------------- verdicts, walls, work items
def _verdict(path) -> str:
    cells = _cells(path)
    return _outputs(cells[-2])   # the cell before the exercises


def _sentences(markdown: str) -> list[str]:
    """The sentences of ``markdown`` outside its tables and headings (code spans count as one word)."""
    prose = "\n".join(line for line in markdown.splitlines()
                      if line.strip() and not line.lstrip().startswith(("|", "#")) and not line.endswith(".json")
                      and "this notebook ran in" not in line)
    prose = re.sub(r"`[^`]*`", "x", prose)
    return [s for s in re.split(r"(?<=[.!?])\s+", prose.strip()) if s]


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.stem)
def test_verdict_is_a_claim_table_and_at_most_five_sentences(path):
    verdict = _verdict(path)
    lines = verdict.splitlines()
    assert "| claim | criterion | verdict |" in lines, f"{path.name}: the verdict needs its (claim, criterion, verdict) table"
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert rows and all(line.count(" | ") == 2 for line in rows), rows   # three cells a row: no stray "|"
    sentences = _sentences(verdict)
    assert 0 < len(sentences) <= MAX_VERDICT_SENTENCES, (path.name, len(sentences), sentences)


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.stem)
def test_no_cell_prints_a_wall(path):
    for index, cell in enumerate(_cells(path)):
        printed = len(_outputs(cell).splitlines())
        assert printed <= MAX_PRINTED_LINES, f"{path.name} cell {index} prints {printed} lines"


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.stem)
def test_every_figure_cell_shows_its_figure(path):
    for index, cell in enumerate(_cells(path)):
        if cell.cell_type == "code" and "save_figure(" in cell.source:
            images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            assert images, f"{path.name} cell {index} saves a figure but shows none"


WORK_ITEMS = re.compile(r"\b(issue|ticket|task|work item|helper)\s*#?\s*\d+|\bhelper [A-Z]\b", re.IGNORECASE)


@pytest.mark.parametrize("path", OURS + ANSWER_KEYS, ids=lambda p: p.stem)
def test_the_text_speaks_of_the_project_and_not_of_our_work_items(path):
    for index, cell in enumerate(_cells(path)):
        found = WORK_ITEMS.search(cell.source + "\n" + _outputs(cell))
        assert not found, f"{path.name} cell {index} refers to a work item: {found.group(0)!r}"


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.stem)
def test_o1_pruner_and_er_are_defined_where_first_used(path):
    cells = _cells(path)
    for term, pattern, gloss in (("O1-pruner", r"O1-pruner", "clip((L̄ − L) / L, −1, 1)"),
                                 ("ER", r"\bER\b", "sigmoid((L − μ_c) / σ_c)")):
        first = next((c for c in cells if re.search(pattern, c.source) or re.search(pattern, _outputs(c))), None)
        if first is None:
            continue
        assert first.cell_type == "markdown" and gloss in first.source, \
            f"{path.name}: {term} first appears without its definition ({gloss!r})"


def _table_rows(text: str, first_column: str) -> dict[str, list[str]]:
    """Rows of a printed table whose columns are separated by two or more spaces, by their first cell."""
    rows = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) > 1 and cells[0] != first_column and set(cells[0]) != {"-"}:
            rows[cells[0]] = cells[1:]
    return rows


def test_01_says_that_the_bare_answer_outscores_the_concise_one_and_links_c3():
    cells = _cells(PERPLEXITY)
    cell = _code_cell(cells, "bare, worked = ")
    table = {row.split()[0]: row.split() for row in _outputs(cell).splitlines()[1:] if row.split()[:1]
             and row.split()[0] in ("answer_only", "concise_correct")}
    bare, worked = float(table["answer_only"][-1]), float(table["concise_correct"][-1])
    rendered = _outputs(cell)
    assert f"SAR {bare:.3f}" in rendered and f"{worked:.3f}" in rendered and "C3" in rendered
    assert ("**above**" in rendered) == (bare > worked), rendered
    contexts = _outputs(_code_cell(cells, 'print(f"mean SAR over {len(problems)} problems")'))
    paper = next(line for line in contexts.splitlines() if line.startswith("paper "))
    concise_mean, bare_mean = paper.split()[1], paper.split()[3]   # columns: concise, redundant, answer-only, ...
    moved = _outputs(_code_cell(cells, "bare_first = "))
    assert f"{bare_mean} against {concise_mean}" in moved and "C3" in moved


def test_02_flags_the_bare_answer_pair_from_the_table_and_links_c3():
    cells = _cells(RANKING)
    cell = _code_cell(cells, "worked_wins = ")
    printed = _outputs(cell)
    header = re.split(r"\s{2,}", printed.splitlines()[0].strip())
    sar_row = re.split(r"\s{2,}", next(line for line in printed.splitlines() if line.startswith("SAR ")).strip())
    share = float(sar_row[header.index("concise > answer-only")])
    assert f"on {share:.0%} of the" in printed and "C3" in printed and "R_SA alone" in printed
    if share < 0.45:
        assert "below chance" in printed
    if GRID_JSON.is_file():
        c3 = next(r for r in json.loads(GRID_JSON.read_text())["claims"] if r["id"] == "C3")
        length = c3["numbers"]["sar_only"][0]
        assert f"{length:.1f} tokens" in printed, "the collapse is read from the grid"


def test_02_verdict_keeps_the_probe_caveat():
    cells = _cells(RANKING)
    probe = _outputs(_code_cell(cells, "probe_view ="))
    verdict = _verdict(RANKING)
    assert "Restating the question does not buy SAR**" not in verdict
    row = next(line for line in verdict.splitlines() if line.startswith("| restating the question"))
    if "never saw" in probe:
        restated = re.search(r"median `ppl\(a\|q\)` of (\d+)", probe).group(1)
        assert "inconclusive" in row and "never saw" in row and restated in row, row


def test_04_floor_sets_are_marked_and_not_compared():
    cells = _cells(OOD)
    floor_cell = _code_cell(cells, "floor_sets = []")
    assert "marked=" in floor_cell.source and "04_accuracy_by_set" in floor_cell.source
    at_floor = [line.split()[0] for line in _outputs(floor_cell).splitlines() if "at its floor for every model" in line]
    assert at_floor, "the committed run has sets at their floor"
    verdict = _verdict(OOD)
    own = re.search(r"above their floor: ([^.]*(?:\.\d[^.]*)*)", verdict.split("The shipped SA-GRPO adapter")[1]).group(1)
    for name in at_floor:
        assert name not in own, f"{name} is at its floor: its differences are untestable, not a result ({own})"
    listed = re.search(r"at their floor, where a comparison of methods is untestable: ([^.]*)\.", verdict).group(1)
    assert set(at_floor) == {s.strip() for s in listed.split(",")}


def test_04_says_why_its_base_accuracy_differs_from_the_grid():
    if not GRID_JSON.is_file():
        pytest.skip("no grid JSON")
    base = json.loads(GRID_JSON.read_text())["base"]["arith-test"]
    cell = _code_cell(_cells(OOD), "grid_base = ")
    printed = _outputs(cell)
    rows = _table_rows(printed.split("mean answer length")[0], "model")
    here = float(rows["base model"][0])   # the first column: arith-test
    n_here = int(re.search(r"arith-test \((\d+)\)", printed).group(1))
    if base["n"] == n_here:
        return
    assert f"{here:.1f}% of the {n_here} arith-test problems" in printed
    assert f"{100 * base['accuracy']:.1f}%" in printed and f"evaluates {base['n']} problems" in printed
    assert "count different problems" in printed


# ---------------------------------------------------------------- 03
TRAINING_KEY = ANSWER_KEYS[OURS.index(TRAINING)]


def _parameters(path) -> dict[str, str]:
    """The parameters cell as papermill reads it: {name: default as written}; every line must parse."""
    cell = next(c for c in _cells(path) if "parameters" in c.metadata.get("tags", []))
    found = {p.name: p.default for p in PythonTranslator.inspect(cell)}
    assignments = [line for line in cell.source.splitlines() if re.match(r"[A-Z_]+ = ", line)]
    assert len(found) == len(assignments), f"{path.name}: papermill cannot read every parameter line"
    return found


@pytest.mark.parametrize("path", [TRAINING, TRAINING_KEY], ids=lambda p: p.stem)
def test_03_parameters_parse(path):
    _parameters(path)


def test_03_has_the_reward_parameters_and_the_switch_preset():
    found = _parameters(TRAINING)
    assert found["REWARD"] == '"sar"' and found["REWARD"].strip('"') in rewards.REWARD_NAMES
    assert float(found["ALPHA"]) == grid.METHODS["sa-grpo"].alpha and found["LEARNING_RATE"] == "None"
    runs = _code_cell(_cells(TRAINING), "compare.default_grid(RUNS_DIR")
    assert "reward=REWARD, alpha=ALPHA" in runs.source and "LEARNING_RATE" in runs.source
    preset = seed_outcomes.SWITCH_PRESET
    cell = next(c for c in _cells(TRAINING) if c.cell_type == "markdown" and "### A preset" in c.source)
    rollouts = preset["steps"] * preset["questions_per_step"] * 6
    assert f"STEPS = {preset['steps']} " in cell.source and f"QUESTIONS_PER_STEP = {preset['questions_per_step']} " \
        in cell.source and f"{rollouts:,} sampled answers" in cell.source
    assert f"LEARNING_RATE = {preset['learning_rate']:g}" in cell.source
    earlier = json.loads((shipped.LR_1E3_DIR / shipped.GRID_JSON).read_text())["settings"]   # the preset's grid
    assert (earlier["learning_rate"], earlier["questions_per_step"]) == (preset["learning_rate"],
                                                                         preset["questions_per_step"])
    comments = next(c for c in _cells(TRAINING) if "parameters" in c.metadata.get("tags", [])).source
    assert f"switch preset: {preset['steps']}" in comments
    assert f"switch preset: {preset['questions_per_step']}" in comments


def test_03_preset_share_is_computed_from_the_doubled_budget():
    if not BUDGET_JSON.is_file():
        pytest.skip("no doubled-budget JSON")
    printed = _outputs(_code_cell(_cells(TRAINING), "seed_outcomes.preset_markdown("))
    assert printed.strip() == seed_outcomes.preset_markdown(json.loads(BUDGET_JSON.read_text()),
                                                       "../docs/grid_budget_19200.json").strip()


def test_03_slips_stay_fixed():
    cells = _cells(TRAINING)
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert not re.search(r"right panel[^.]*greedy length|greedy length[^.]*right panel", prose)
    assert "greedy length in the left panel" in prose and training_plots.SEED_PANELS[0][0] == "mean_length"
    assert "greedy accuracy of section 5" not in prose and "or nearly" not in prose
    live = _outputs(_code_cell(cells, "verdicts.live_runs_sentence("))
    table = _table_rows(live.split("After ")[0], "model")
    base = table["base model"]
    assert f"the base model's {100 * float(base[0]):.1f}% on the same" in live
    for name, row in table.items():
        if name != "base model":
            assert f"{name} {100 * float(row[0]):.1f}%" in live
    # the PPO curves are drawn only from a grid with PPO runs, and not kept as a file that could go stale
    has_ppo = GRID_JSON.is_file() and {"ppo", "sa-ppo"} <= set(json.loads(GRID_JSON.read_text())["methods"])
    assert not (FIGURES / "03_grpo_vs_ppo_curves.png").is_file()
    assert "PPO is opt-in" in _outputs(_code_cell(cells, "verdicts.algorithms_markdown(")) or has_ppo
    # every figure file of notebook 03 is written, and shown, by a cell
    written = {m for c in cells if c.cell_type == "code" for m in re.findall(r'save_figure\(fig, "(03_\w+)"', c.source)}
    assert {p.stem for p in FIGURES.glob("03_*.png")} <= written and "03_accuracy_vs_length" in written


def _switch_table_matches(cells, call: str, grid_json: dict) -> dict:
    """The seed table printed by the cell holding ``call`` against the rule applied to ``grid_json``."""
    switches = seed_outcomes.switched_seeds(grid_json)
    table = _table_rows(_outputs(_code_cell(cells, call)), "SA-GRPO seed")
    for seed, x in switches["seeds"].items():
        assert table[f"s{seed}"][2] == ("yes" if x["switched"] else "no (lagged)")
    return switches


def test_03_shows_switched_and_lagged_seeds_by_the_rule():
    cells = _cells(TRAINING)
    if GRID_JSON.is_file():
        _switch_table_matches(cells, "seed_outcomes.switched_seeds(grid_results)", json.loads(GRID_JSON.read_text()))
    # the answers come from the lr-1e-3 grid's adapters, where seeds switched
    earlier = json.loads((shipped.LR_1E3_DIR / shipped.GRID_JSON).read_text())
    switches = _switch_table_matches(cells, "seed_outcomes.switched_seeds(fast_grid)", earlier)
    picked = seed_outcomes.example_seeds(switches, shipped.shipped_seeds("sa-grpo", shipped.LR_1E3_DIR))
    assert picked["switched"] is not None, "the package must ship an SA-GRPO seed that switched"
    examples = _outputs(_code_cell(cells, "seed_outcomes.example_seeds("))
    for kind, chosen in picked.items():
        if chosen is not None:
            assert f"[SA-GRPO s{chosen[0]} ({kind})]" in examples, f"a {kind} seed is shipped: show its answers"
        else:
            assert f"no SA-GRPO seed that {kind} is shipped here" in examples
    assert "[base model]" in examples and "[GRPO s" in examples


def test_03_accuracy_along_training_is_read_from_the_grid():
    if not GRID_JSON.is_file():
        pytest.skip("no grid JSON")
    grid_results = json.loads(GRID_JSON.read_text())
    printed = _outputs(_code_cell(_cells(TRAINING), "seed_outcomes.along_training_markdown("))
    labels = {name: m["label"] for name, m in grid_results["methods"].items()}
    expected = seed_outcomes.along_training_markdown(seed_outcomes.accuracy_along_training(grid_results), labels)
    assert printed.strip() == expected.strip()


def test_03_switch_figure_is_drawn_from_the_measured_points():
    cells = _cells(TRAINING)
    cell = _code_cell(cells, "training_plots.switch_figure(")
    printed = _outputs(cell)
    rows = _table_rows(printed, "model")
    assert "base" in rows and any(name.startswith("sa-grpo s") for name in rows)
    for row in rows.values():
        p_stop, p_check = float(row[1]), float(row[2])
        assert 0 <= p_stop + p_check <= 1.0005
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "p_stop = p_check" in prose and "Why greedy length flips" in prose and "Why sampled length drifts" in prose


def test_03_robustness_and_accuracy_are_read_from_the_files():
    cells = _cells(TRAINING)
    robustness = _outputs(_code_cell(cells, "seed_outcomes.robustness_markdown("))
    for path in ("grid_replicate_seeds_345.json", "grid_budget_19200.json"):
        if (demo.REPO_DIR / "docs" / path).is_file():
            assert path in robustness
    accuracy = _outputs(_code_cell(cells, "seed_outcomes.accuracy_markdown("))
    regime = demo.REPO_DIR / "docs" / "regime_pilots.json"
    grid_results = json.loads(GRID_JSON.read_text()) if GRID_JSON.is_file() else None
    expected = seed_outcomes.accuracy_summary(grid_results, json.loads(regime.read_text()) if regime.is_file() else None)
    assert accuracy.strip() == seed_outcomes.accuracy_markdown(expected).strip()
    exercises = cells[-1].source
    assert "Greedy against sampled accuracy" in exercises and "sampled_accuracy" in exercises


def test_03_alpha_exercise_uses_runs_that_differ():
    exercises = _cells(TRAINING)[-1].source
    weight = exercises.split("**The weight of SAR.**")[1].split("\n3. ")[0]
    assert "switch preset" in weight and "BUDGET_JSON" in weight
    cell = _code_cell(_cells(TRAINING_KEY), "sweep_results, _ = grid.run_grid(")
    rows = _table_rows(_outputs(cell), "run")
    alphas = {name: row for name, row in rows.items() if name.startswith("α = ")}
    assert len(alphas) == 3
    assert len({(row[1], row[3]) for row in alphas.values()}) > 1, "the sweep's runs must show a difference"
    key = _cells(TRAINING_KEY)
    assert "Greedy against sampled accuracy" in "\n".join(c.source for c in key if c.cell_type == "markdown")
