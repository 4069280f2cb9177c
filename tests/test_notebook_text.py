"""The prose of notebooks 01, 02 and 04 agrees with their committed outputs.

Read from the committed notebooks, no model run: terms are explained where they first appear, the
sentences that state a model's number are rendered from the outputs (so they match the tables printed
next to them), the corrected claims stay corrected, the verdicts are short (a table and a few
sentences) and no cell prints a wall. After a retrained model, `sar demo --only 01 02 04` rewrites
outputs and rendered text together, and these tests keep holding.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from sar_lib import demo, ranking

NOTEBOOKS = demo.NOTEBOOKS_DIR
PERPLEXITY = NOTEBOOKS / "01_perplexity_math.ipynb"
RANKING = NOTEBOOKS / "02_sar_quality_ranking.ipynb"
OOD = NOTEBOOKS / "04_ood_evaluation.ipynb"
OURS = [PERPLEXITY, RANKING, OOD]
ANSWER_KEYS = [demo.NOTEBOOKS_DIR / demo.SOLUTIONS / f"{p.stem}_solutions.ipynb" for p in OURS]
GRID_JSON = demo.REPO_DIR / "figures" / "grpo_vs_sar.json"
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
        if len(cells) > 1 and cells[0] != first_column:
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
