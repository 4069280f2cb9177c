"""The prose of notebooks 01 and 02 agrees with their committed outputs (issue 29, a learner's corrections).

Read from the committed notebooks, no model run: terms are explained where they first appear, the
sentences that state a model's number are rendered from the outputs (so they match the tables printed
next to them), and the corrected claims stay corrected. After a retrained model, `sar demo --only 01 02`
rewrites outputs and rendered text together, and these tests keep holding.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from sar_lib import demo, ranking

NOTEBOOKS = demo.NOTEBOOKS_DIR
PERPLEXITY = NOTEBOOKS / "01_perplexity_math.ipynb"
RANKING = NOTEBOOKS / "02_sar_quality_ranking.ipynb"

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
