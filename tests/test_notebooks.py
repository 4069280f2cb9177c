"""The numbered notebooks and their answer keys run headless through `sar demo`'s code path, each
notebook agrees with its paired script, and failures are reported.

The notebooks run with the FAST parameters into tmp_path (never into the repo's figures/), on the
embedded tiny model; while it is not shipped yet, on a random tiny model saved to tmp_path (the
notebooks only need *a* model to run end to end).
"""

from __future__ import annotations

import io
import json
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from sar_lib.lab import demo
from sar_lib.lab.cli import main
from sar_lib.models import TINY_DIR, build_tiny_model

NOTEBOOKS, _ = demo.find_notebooks()
SOLUTIONS, _ = demo.find_notebooks(demo.NOTEBOOKS_DIR / demo.SOLUTIONS)
ALL = NOTEBOOKS + SOLUTIONS
PAPER = demo.REPO_DIR / "docs" / "paper.md"


def _write_notebook(path, *sources: str) -> None:
    """A notebook of code cells (the first tagged `parameters`) after one markdown cell."""
    cells = [new_markdown_cell("# test notebook")]
    cells.append(new_code_cell(sources[0], metadata={"tags": ["parameters"]}))
    cells += [new_code_cell(source) for source in sources[1:]]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def model_for_notebooks(tmp_path_factory, tiny_tokenizer):
    """None (the notebooks' own default, the embedded model) when shipped, else a saved random model."""
    if (TINY_DIR / "model.safetensors").is_file():
        return None
    model = build_tiny_model(len(tiny_tokenizer), max_positions=2048, pad_token_id=tiny_tokenizer.pad_token_id,
                             eos_token_id=tiny_tokenizer.eos_token_id)
    path = tmp_path_factory.mktemp("random_tiny")
    model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def fast_demo(tmp_path_factory, model_for_notebooks):
    """One `run_demo(fast=True)` over the repository's notebooks into a tmp folder."""
    out = tmp_path_factory.mktemp("demo")
    repo_figures = demo.REPO_DIR / "figures"
    before = {p.name: p.stat().st_mtime_ns for p in repo_figures.glob("*")} if repo_figures.is_dir() else {}
    stream = io.StringIO()
    runs = demo.run_demo(out=out, fast=True, model=model_for_notebooks, solutions=True, progress=False, stream=stream)
    after = {p.name: p.stat().st_mtime_ns for p in repo_figures.glob("*")} if repo_figures.is_dir() else {}
    return out, runs, stream.getvalue(), before == after


def test_fast_parameters_exist_for_every_notebook_and_answer_key():
    names = [p.stem for p in NOTEBOOKS]
    assert "01_perplexity_math" in names and "02_sar_quality_ranking" in names
    for name in [p.stem for p in ALL]:
        assert name in demo.FAST, f"add a FAST parameter set for {name} to sar_lib/lab/demo.py"


def test_every_numbered_notebook_has_its_answer_key():
    assert [p.name.replace("_solutions", "") for p in SOLUTIONS] == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        exercises = nbformat.read(path, as_version=4).cells[-1].source
        assert f"notebooks/solutions/{path.stem}_solutions.ipynb" in exercises, f"{path.name}: link the answer key"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_and_its_script_agree(path):
    problem = demo.pair_problem(path)
    assert problem is None, problem


def test_pair_problem_names_the_fix(tmp_path):
    notebook = tmp_path / "01_x.ipynb"
    _write_notebook(notebook, "X = 1")
    assert "jupytext --set-formats ipynb,py:percent" in demo.pair_problem(notebook)
    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nbformat.write(nb, notebook)
    assert "is missing" in demo.pair_problem(notebook)
    demo.write_script(notebook)
    assert demo.pair_problem(notebook) is None and not demo.sync_pair(notebook)
    script = demo.paired_script(notebook)
    script.write_text(script.read_text().replace("X = 1", "X = 2"))
    assert "hold different cells" in demo.pair_problem(notebook)
    assert demo.sync_pair(notebook), "the newer script's cells must win"
    assert demo.pair_problem(notebook) is None and "X = 2" in nbformat.read(notebook, as_version=4).cells[1].source


def test_every_cited_section_of_the_paper_page_exists():
    sections = set(re.findall(r"^## (§\d+)", PAPER.read_text(encoding="utf-8"), re.MULTILINE))
    for path in ALL:
        text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        for cited in re.findall(r"docs/paper\.md`? (§\d+(?:, §\d+)*)", text):
            for section in cited.split(", "):
                assert section in sections, f"{path.name} cites docs/paper.md {section}, which does not exist"


def _figure_cells_without_image(nb) -> list[int]:
    """Indices of the code cells that save a figure (``plots.save_figure``) but show no image."""
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and "save_figure(" in cell.source
            and not any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))]


def test_committed_notebooks_show_their_figures_inline():
    for path in ALL:
        missing = _figure_cells_without_image(nbformat.read(path, as_version=4))
        assert not missing, f"{path.name}: cells {missing} save a figure but hold no image (rerun `sar demo`)"


def test_demo_kernel_draws_inline_whatever_the_callers_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    source = tmp_path / "nb" / "01_figure.ipynb"
    _write_notebook(source, "FIGURES_DIR = 'figures'",
                    "import matplotlib.pyplot as plt\nfrom sar_lib.lab import plots\nfig, ax = plt.subplots()\n"
                    "ax.plot([1, 2])\nplots.save_figure(fig, 'x', FIGURES_DIR);")
    run = demo.run_notebook(source, tmp_path / "out" / source.name, cwd=tmp_path, progress=False)
    assert run.ok, run.error
    assert _figure_cells_without_image(nbformat.read(tmp_path / "out" / source.name, as_version=4)) == []


def test_every_notebook_ends_with_a_rendered_verdict():
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        verdict = cells[-2]
        assert verdict.cell_type == "code" and "verdicts." in verdict.source and "Markdown(" in verdict.source, \
            f"{path.name}: the cell before the exercises must render its verdict (sar_lib.lab.verdicts)"


def test_committed_outputs_hold_no_warnings_or_stale_runs():
    noise = re.compile(r"Warning|WARNING|Failed to load|training it again|Traceback|kernel died", re.IGNORECASE)
    for path in ALL:
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for output in cell.get("outputs", []):
                text = output.get("text", "") if output.get("output_type") == "stream" else ""
                assert not noise.search(text), f"{path.name} cell {index} prints: {text[:300]}"


def test_every_notebook_has_one_parameters_cell_with_the_shared_names():
    for path in ALL:
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
        shared = ("PROFILE", "MODEL") + (("FIGURES_DIR",) if path in NOTEBOOKS else ())   # 04 trains nothing: no SEED
        for name in shared:
            assert f"{name} = " in tagged[0].source, f"{path.name}: parameter {name} missing"
        assert 'MODEL = "tiny"' in tagged[0].source, f"{path.name}: the default model must be the embedded one"
        for key in demo.FAST.get(path.stem, {}):
            assert f"{key} = " in tagged[0].source, f"{path.name}: FAST sets {key}, which is not a parameter"
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        if path in NOTEBOOKS:
            assert "Exercises" in nb.cells[-1].source, f"{path.name}: the last cell should hold the exercises"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_fast_and_writes_figures_and_summary(fast_demo, path):
    out, runs, log, repo_figures_untouched = fast_demo
    by_name = {run.name: run for run in runs}
    assert path.stem in by_name, f"{path.name} did not run; demo log:\n{log}"
    run = by_name[path.stem]
    assert run.ok, f"{path.name} failed in cell {run.failed_cell} ({run.failed_source}): {run.error}"
    executed = nbformat.read(out / "notebooks" / path.name, as_version=4)
    code_cells = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells), "every code cell must have run"
    number = path.stem[:2]
    figures = sorted(p.name for p in (out / "figures").glob(f"{number}_*.png"))
    assert len(figures) >= 2, f"{path.name} saved {figures}; at least two figures expected"
    assert all((out / "figures" / f).stat().st_size > 1000 for f in figures)
    summary = json.loads((out / "figures" / f"{number}_summary.json").read_text())
    assert summary["notebook"] == path.stem and (summary["numbers"] or summary["tables"])
    assert run.summary == summary
    assert repo_figures_untouched, "a test run must not write into the repository's figures/"
    assert path.name in log and "ok in" in log


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_answer_key_runs_fast_in_its_own_folder(fast_demo, path):
    out, runs, log, _ = fast_demo
    run = {r.name: r for r in runs}.get(path.stem)
    assert run is not None, f"{path.name} did not run; demo log:\n{log}"
    assert run.ok, f"{path.name} failed in cell {run.failed_cell} ({run.failed_source}): {run.error}"
    executed = nbformat.read(out / "notebooks" / demo.SOLUTIONS / path.name, as_version=4)
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code")
    assert run.summary == {}, "an answer key writes no summary of its own"


@pytest.mark.slow
def test_demo_report_lists_each_notebook_and_its_tables(fast_demo):
    _, runs, _, _ = fast_demo
    text = demo.report(runs)
    for run in runs:
        assert run.name in text
    if any(run.name == "02_sar_quality_ranking" for run in runs):
        assert "pairwise ranking accuracy" in text and "concise > redundant" in text


def test_failing_notebook_reports_cell_and_stops_the_demo(tmp_path):
    notebooks = tmp_path / "notebooks"
    _write_notebook(notebooks / "01_fails.ipynb", "X = 1", "y = X + 1",
                    "raise RuntimeError(f'boom {y}')\nprint('never')")
    _write_notebook(notebooks / "02_after.ipynb", "X = 1", "print(X)")
    stream = io.StringIO()
    runs = demo.run_demo(out=tmp_path / "out", notebooks_dir=notebooks, progress=False, stream=stream)
    log = stream.getvalue()
    assert [r.name for r in runs] == ["01_fails"], "the demo must stop at the first failing notebook"
    failed = runs[0]
    assert not failed.ok
    assert failed.failed_cell == 3        # markdown, parameters, y = ..., raise: index in the source notebook
    assert failed.failed_source == "raise RuntimeError(f'boom {y}')"
    assert failed.error == "RuntimeError: boom 2"
    assert failed.output.is_file() and failed.output.name == "01_fails.failed.ipynb"
    assert "failed in cell 3" in log and "RuntimeError: boom 2" in log
    assert "not run: 02_after.ipynb" in log and "03, 04 not found" in log


def test_cli_demo_exits_non_zero_and_names_the_cell(tmp_path, capsys, model_for_notebooks):
    notebooks = tmp_path / "notebooks"
    _write_notebook(notebooks / "01_fails.ipynb", "MODEL = 'tiny'", "assert MODEL == 'something else', 'wrong model'")
    argv = ["demo", "--notebooks", str(notebooks), "--out", str(tmp_path / "out"), "--no-progress"]
    if model_for_notebooks is not None:
        argv += ["--model", model_for_notebooks]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 1
    assert "01_fails.ipynb failed in cell 2" in out and "AssertionError: wrong model" in out
    assert "FAILED" in out


def test_in_place_run_replaces_only_notebooks_that_ran(tmp_path):
    notebooks = tmp_path / "notebooks"
    _write_notebook(notebooks / "01_ok.ipynb", "FIGURES_DIR = '../figures'",
                    "from pathlib import Path\nPath(FIGURES_DIR).mkdir(exist_ok=True)\n"
                    "from sar_lib.lab.demo import write_summary\n"
                    "write_summary(FIGURES_DIR, '01_ok', title='t', numbers={'answer': 42})\nprint('ran')")
    _write_notebook(notebooks / "02_fails.ipynb", "X = 1", "1 / 0")
    failing_before = (notebooks / "02_fails.ipynb").read_text()
    runs = demo.run_demo(notebooks_dir=notebooks, progress=False, stream=io.StringIO())
    assert [r.ok for r in runs] == [True, False]
    executed = nbformat.read(notebooks / "01_ok.ipynb", as_version=4)
    assert any(o.get("text") == "ran\n" for o in executed.cells[-1].outputs), "01 must hold its outputs"
    assert runs[0].summary["numbers"] == {"answer": 42}
    assert (tmp_path / "figures" / "01_summary.json").is_file(), "figures go next to the notebooks folder"
    assert (notebooks / "02_fails.ipynb").read_text() == failing_before, "a failed run must not replace its source"
    assert runs[1].error.startswith("ZeroDivisionError")
    assert sorted(p.name for p in notebooks.iterdir()) == ["01_ok.ipynb", "02_fails.ipynb"], "no scratch files left"


def test_only_runs_the_named_notebooks(tmp_path):
    notebooks = tmp_path / "notebooks"
    _write_notebook(notebooks / "01_a.ipynb", "X = 1", "raise RuntimeError('01 must not run')")
    _write_notebook(notebooks / "02_b.ipynb", "X = 1", "print(X)")
    stream = io.StringIO()
    runs = demo.run_demo(out=tmp_path / "out", only=["02"], notebooks_dir=notebooks, progress=False, stream=stream)
    assert [(r.name, r.ok) for r in runs] == [("02_b", True)]
    assert "not found" not in stream.getvalue()
    with pytest.raises(ValueError, match="no notebook numbered 03"):
        demo.run_demo(out=tmp_path / "out", only=["03"], notebooks_dir=notebooks, progress=False, stream=stream)


def test_find_notebooks_reports_missing_numbers_and_rejects_duplicates(tmp_path):
    _write_notebook(tmp_path / "02_b.ipynb", "X = 1")
    _write_notebook(tmp_path / "04_d.ipynb", "X = 1")
    (tmp_path / "05_extra.ipynb").write_text("{}")
    found, missing = demo.find_notebooks(tmp_path)
    assert [p.name for p in found] == ["02_b.ipynb", "04_d.ipynb"] and missing == ["01", "03"]
    _write_notebook(tmp_path / "02_c.ipynb", "X = 1")
    with pytest.raises(ValueError, match="more than one notebook numbered 02"):
        demo.find_notebooks(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        demo.find_notebooks(tmp_path / "nope")


def test_write_summary_validates_and_round_trips(tmp_path):
    table = {"title": "T", "columns": ["criterion", "a > b"], "rows": [["SAR", 0.75], ["-length", 0.5]]}
    path = demo.write_summary(tmp_path, "02_x", title="two", numbers={"n": 3, "tiny": 2e-6}, tables=[table])
    assert path == tmp_path / "02_summary.json"
    summary = json.loads(path.read_text())
    text = demo.format_notebook_summary(summary)
    assert "n: 3" in text and "tiny: 2.0e-06" in text and "0.750" in text and "a > b" in text
    with pytest.raises(ValueError, match="does not have 2 entries"):
        demo.write_summary(tmp_path, "02_x", title="t", tables=[{**table, "rows": [["SAR"]]}])
    with pytest.raises(ValueError, match="must start with its number"):
        demo.write_summary(tmp_path, "notebook", title="t")


def test_cli_demo_rejects_a_file_as_out_dir(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["demo", "--out", str(target)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_format_table_aligns_columns():
    text = demo.format_table(["name", "value"], [["a", 1.0], ["longer", 0.25]])
    lines = text.splitlines()
    assert lines[0].startswith("name") and set(lines[1]) <= {"-", " "}
    assert len({len(line) for line in lines}) == 1 and lines[3].endswith("0.250")


def test_this_python_kernel_points_at_this_interpreter():
    import os
    import sys

    from jupyter_client.kernelspec import KernelSpecManager

    old = os.environ.get("JUPYTER_PATH")
    with demo._this_python_kernel():
        spec = KernelSpecManager().get_kernel_spec(demo.KERNEL_NAME)
        assert spec.argv[0] == sys.executable
    assert os.environ.get("JUPYTER_PATH") == old


def test_record_time_keeps_each_notebooks_last_seconds(tmp_path):
    first = demo.NotebookRun(name="01_a", output=tmp_path / "a.ipynb", seconds=12.34, ok=True)
    second = demo.NotebookRun(name="02_b", output=tmp_path / "b.ipynb", seconds=5.0, ok=True)
    demo.record_time(tmp_path, first)
    path = demo.record_time(tmp_path, second)
    demo.record_time(tmp_path, demo.NotebookRun(name="01_a", output=tmp_path / "a.ipynb", seconds=20.0, ok=True))
    times = json.loads(path.read_text())
    assert {k: v["seconds"] for k, v in times.items()} == {"01_a": 20.0, "02_b": 5.0}
    assert times["01_a"]["machine"]["command"] == "sar demo" and times["01_a"]["machine"]["cpu_cores"] >= 1
