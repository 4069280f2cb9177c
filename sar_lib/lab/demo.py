"""``sar demo``: run the numbered notebooks headless (papermill), in order, and print their results.

Each notebook ``notebooks/0N_*.ipynb`` has one cell tagged ``parameters``; the demo runs it as it
is (the full parameter set) or, with ``fast``, with :data:`FAST` overrides (what CI runs). Executed
copies replace the repo's notebooks (default: the committed notebooks show the latest demo run) or go
to ``OUT/notebooks/`` with the figures in ``OUT/figures/`` (the notebooks run in their own folder
and write figures to ``FIGURES_DIR = "../figures"``, so both layouts work unchanged). With
``solutions``, the answer keys ``notebooks/solutions/0N_*_solutions.ipynb`` run after them, in
their own folder too (``OUT/notebooks/solutions/``); they write no figures and no summary.

Every notebook is paired with a ``py:percent`` script of the same name (jupytext), the file a
teacher edits and diffs (``docs/notebooks.md``). Before a notebook runs, a pair that disagrees is
synchronised (:func:`sync_pair`: the newer file's cells win, as ``jupytext --sync``); after an
in-place run the script is rewritten from the executed notebook, so the two never drift apart.

Every numbered notebook writes ``<FIGURES_DIR>/<NN>_summary.json`` with :func:`write_summary`; the
demo prints those at the end. A failing notebook stops the demo: its executed copy is kept, and the
failing cell (index, first line) and the error are reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence, TextIO

from sar_lib.data import REPO_DIR

NOTEBOOKS_DIR = REPO_DIR / "notebooks"
NUMBERS = ("01", "02", "03", "04")
# Small parameter sets: each notebook in well under a minute on 2 CPU cores (CI, tests).
FAST: dict[str, dict] = {
    "01_perplexity_math": {"N_EXAMPLES": 8},
    "02_sar_quality_ranking": {"N_PROBLEMS": 24, "N_TOKEN_PROBE": 8},
    # short answers and long prompts allowed, so that a random test model runs too; their own folders keep the
    # full demo's runs intact
    "03_grpo_lora_4bit_training": {"STEPS": 2, "QUESTIONS_PER_STEP": 2, "EVAL_SIZE": 8, "MAX_NEW_TOKENS": 24,
                                   "MAX_PROMPT_TOKENS": 512, "EXTRA_STEPS": 1, "N_EXAMPLES": 2,
                                   "FOUR_BIT_NEW_TOKENS": 16, "SHIPPED_METHODS": ["grpo", "sa-grpo"],
                                   "SHIPPED_EVAL_SIZE": 8, "RUNS_DIR": "../runs/notebooks-fast"},
    "04_ood_evaluation": {"EVAL_SIZE": 8, "BENCHMARK_LIMIT": 3, "METHODS": ["grpo", "sa-grpo"],
                          "RUNS_DIR": "../runs/notebooks-fast/ood"},
    # the answer keys (notebooks/solutions), their runs in folders of their own
    "01_perplexity_math_solutions": {"N_EXAMPLES": 4},
    "02_sar_quality_ranking_solutions": {"N_PROBLEMS": 12, "N_LOGIC": 6},
    "03_grpo_lora_4bit_training_solutions": {"STEPS": 2, "QUESTIONS_PER_STEP": 2, "EVAL_SIZE": 4,
                                             "MAX_NEW_TOKENS": 24, "MAX_PROMPT_TOKENS": 512, "SWEEP_STEPS": 2,
                                             "SWEEP_QUESTIONS": 2, "SWEEP_EVAL_SIZE": 4,
                                             "RUNS_DIR": "../../runs/solutions-fast",
                                             # a fast run executes in another folder: the committed files by path
                                             "BUDGET_JSON": str(REPO_DIR / "docs" / "grid_budget_19200.json"),
                                             "COMPARE_JSON": str(REPO_DIR / "figures" / "grpo_vs_sar.json")},
    "04_ood_evaluation_solutions": {"STEPS": 2, "QUESTIONS_PER_STEP": 2, "EVAL_SIZE": 4, "N_LOGIC": 4,
                                    "MAX_NEW_TOKENS": 24, "MAX_PROMPT_TOKENS": 512,
                                    "RUNS_DIR": "../../runs/solutions-ood-fast"},
}
KERNEL_NAME = "python3"
TIMES_FILE = "demo_times.json"   # in the figures folder: each notebook's seconds in its last default run
SOLUTIONS = "solutions"        # the answer keys' folder, inside the notebooks folder
PAIRED_FORMAT = "py:percent"   # the script each notebook is paired with (jupytext)
# Headless kernels run quiet: progress bars, and two third-party notices that say nothing about the run,
# would be saved into the committed outputs as stderr lines (transformers' weight-loading bars; tqdm's
# "IProgress not found" where ipywidgets is not installed; a transformers deprecation that peft triggers).
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}
# The kernel draws with matplotlib's inline backend whatever the caller's MPLBACKEND says (CI exports Agg
# for its own plots), so that every executed notebook holds its figures as image outputs.
PLOT_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}
QUIET_WARNINGS = ("ignore:IProgress not found", "ignore:`is_gradient_checkpointing` is deprecated")


@dataclass
class NotebookRun:
    """The outcome of one notebook: where its executed copy is, how long it took, what failed."""

    name: str                 # file stem, e.g. "02_sar_quality_ranking"
    output: Path              # the executed copy (the failed copy when ok is False)
    seconds: float
    ok: bool
    failed_cell: int | None = None   # index in the source notebook (0-based, markdown cells counted)
    failed_source: str = ""          # first line of the failing cell
    error: str = ""                  # "ExceptionName: message"
    summary: dict = field(default_factory=dict)


def find_notebooks(directory: str | Path = NOTEBOOKS_DIR) -> tuple[list[Path], list[str]]:
    """The numbered notebooks ``0[1-4]_*.ipynb`` of ``directory`` in order, and the missing numbers."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"notebook folder {directory} does not exist; run `sar demo` from a clone of the "
                                "repository (the notebooks are not part of the installed package)")
    found, missing = [], []
    for number in NUMBERS:
        matches = sorted(p for p in directory.glob(f"{number}_*.ipynb") if not p.name.endswith(".failed.ipynb"))
        if len(matches) > 1:
            raise ValueError(f"more than one notebook numbered {number} in {directory}: "
                             f"{', '.join(p.name for p in matches)}; keep one")
        (found.extend(matches) if matches else missing.append(number))
    return found, missing


@contextlib.contextmanager
def _this_python_kernel():
    """Make kernel "python3" this interpreter, whatever kernel specs the user has installed.

    A user-level ``python3`` spec (e.g. ~/.local/share/jupyter/kernels) would otherwise win over
    the virtual environment's and run the notebooks in a Python without ``sar_lib``. JUPYTER_PATH
    comes first in Jupyter's search path, so a spec written there for ``sys.executable`` is used.
    Its environment (:data:`QUIET_ENV`, :data:`PLOT_ENV`, :data:`QUIET_WARNINGS`) reaches the worker processes that a
    notebook starts too. Yields the temporary folder (it also holds the kernel's sockets, see
    :func:`_kernel_config`).
    """
    with tempfile.TemporaryDirectory(prefix="sar-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        from ipykernel.kernelspec import get_kernel_dict   # argv[0] = sys.executable

        warnings = ",".join(filter(None, (os.environ.get("PYTHONWARNINGS"), *QUIET_WARNINGS)))
        spec = {**get_kernel_dict(), "env": {**QUIET_ENV, **PLOT_ENV, "PYTHONWARNINGS": warnings}}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp] + ([old] if old else []))
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def paired_script(notebook: str | Path) -> Path:
    """The ``py:percent`` script paired with ``notebook`` (same folder and name, ``.py``)."""
    return Path(notebook).with_suffix(".py")


def is_paired(notebook: str | Path) -> bool:
    """Whether ``notebook``'s metadata pairs it with a :data:`PAIRED_FORMAT` script (jupytext ``formats``)."""
    metadata = json.loads(Path(notebook).read_text(encoding="utf-8")).get("metadata", {})
    return PAIRED_FORMAT in metadata.get("jupytext", {}).get("formats", "").split(",")


def pair_problem(notebook: str | Path) -> str | None:
    """Why ``notebook`` and its paired script disagree, or None when the script holds exactly the
    notebook's cells (what jupytext writes for it; outputs are not part of a script)."""
    import jupytext

    notebook = Path(notebook)
    script = paired_script(notebook)
    if not is_paired(notebook):
        return (f"{notebook} is not paired with a script; pair it with "
                f"`jupytext --set-formats ipynb,{PAIRED_FORMAT} {notebook}`")
    if not script.is_file():
        return f"{script} is missing; write it with `jupytext --sync {notebook}`"
    if script.read_text(encoding="utf-8") != jupytext.writes(jupytext.read(notebook), fmt=PAIRED_FORMAT):
        return (f"{script} and {notebook.name} hold different cells; run `jupytext --sync {notebook}` "
                "(the newer file's cells win) and commit both")
    return None


def write_script(notebook: str | Path) -> Path:
    """Write the paired script of ``notebook`` from its cells (what :func:`pair_problem` compares with)."""
    import jupytext

    script = paired_script(notebook)
    script.write_text(jupytext.writes(jupytext.read(notebook), fmt=PAIRED_FORMAT), encoding="utf-8")
    return script


def sync_pair(notebook: str | Path) -> bool:
    """``jupytext --sync`` of a paired notebook whose script disagrees with it (:func:`pair_problem`):
    the cells of the newer of the two files win, and the notebook keeps the outputs of the cells
    that did not change. Returns whether it wrote anything (an unpaired notebook, or a pair that
    agrees, is left alone)."""
    from jupytext.cli import jupytext as jupytext_cli

    if not is_paired(notebook) or pair_problem(notebook) is None:
        return False
    jupytext_cli(["--sync", "--quiet", str(notebook)])
    return True


def _failed_cell_index(source_notebook: Path, failing_source: str) -> int | None:
    """Index of the failing cell in the source notebook (papermill's index counts the injected
    parameters cell, so the cell is found by its source)."""
    cells = json.loads(source_notebook.read_text(encoding="utf-8"))["cells"]
    for index, cell in enumerate(cells):
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if text == failing_source:
            return index
    return None


def _kernel_config(directory: Path):
    """The kernel manager's settings: local (ipc) sockets in ``directory`` where the OS has them. Over
    TCP without encryption, ipykernel warns on every start that the traffic could be read; the kernel
    runs on this machine, so local sockets are the right transport. The socket path is absolute
    because the kernel runs in the notebook's folder and the client in the caller's."""
    from traitlets.config import Config

    if os.name != "posix":
        return Config()
    return Config({"KernelManager": {"transport": "ipc", "ip": str(directory / "kernel")}})


def run_notebook(source: Path, output: Path, *, parameters: Mapping | None = None, cwd: Path | None = None,
                 progress: bool = True) -> NotebookRun:
    """Execute ``source`` into ``output`` with papermill, in folder ``cwd`` (default: ``output``'s);
    never raises for an error inside the notebook (it is reported in the returned :class:`NotebookRun`)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    run = NotebookRun(name=source.stem, output=output, seconds=0.0, ok=True)
    with _this_python_kernel() as kernel_dir:
        try:
            papermill.execute_notebook(str(source), str(output), parameters=dict(parameters or {}),
                                       kernel_name=KERNEL_NAME, cwd=str(cwd or output.parent), progress_bar=progress,
                                       log_output=False, config=_kernel_config(kernel_dir))
        except PapermillExecutionError as err:
            run.ok = False
            run.failed_cell = _failed_cell_index(source, err.source)
            run.failed_source = next((line for line in err.source.splitlines() if line.strip()), "")
            run.error = f"{err.ename}: {err.evalue}"
    run.seconds = time.perf_counter() - start
    return run


def write_summary(figures_dir: str | Path, notebook: str, *, title: str, numbers: Mapping | None = None,
                  tables: Sequence[Mapping] = ()) -> Path:
    """Write ``<figures_dir>/<NN>_summary.json`` (NN = the notebook's number) for the demo's table.

    ``numbers``: {label: value} of single results. ``tables``: dicts with ``title``, ``columns``
    (header strings) and ``rows`` (lists, first entry the row label). Values must be JSON-able.
    """
    number = notebook[:2]
    if number not in NUMBERS:
        raise ValueError(f"notebook name {notebook!r} must start with its number 01-04")
    for table in tables:
        if set(table) != {"title", "columns", "rows"}:
            raise ValueError(f"a summary table needs exactly the keys title, columns, rows; got {sorted(table)}")
        bad = [row for row in table["rows"] if len(row) != len(table["columns"])]
        if bad:
            raise ValueError(f"table {table['title']!r}: row {bad[0]!r} does not have {len(table['columns'])} entries")
    path = Path(figures_dir) / f"{number}_summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {"notebook": notebook, "title": title, "numbers": dict(numbers or {}), "tables": list(tables)}
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return path


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.1e}" if value != 0 and abs(value) < 1e-3 else f"{value:.3f}"
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A plain-text table: header, rule, one line per row; floats with 3 decimals (tiny ones in e-notation)."""
    cells = [list(map(str, columns))] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_notebook_summary(summary: Mapping) -> str:
    """A notebook's summary (see :func:`write_summary`) as text."""
    parts = [f"== {summary['notebook']}: {summary['title']}"]
    parts += [f"  {label}: {_cell(value)}" for label, value in summary.get("numbers", {}).items()]
    for table in summary.get("tables", []):
        parts.append(f"\n{table['title']}\n{format_table(table['columns'], table['rows'])}")
    return "\n".join(parts)


def run_demo(*, out: str | Path | None = None, fast: bool = False, model: str | None = None,
             only: Sequence[str] | None = None, notebooks_dir: str | Path = NOTEBOOKS_DIR, solutions: bool = False,
             progress: bool = True, stream: TextIO | None = None) -> list[NotebookRun]:
    """Run the numbered notebooks of ``notebooks_dir`` in order; stop at the first failure.

    ``out`` None: each executed notebook replaces its source (only once it ran without error), the
    figures land in ``<notebooks_dir>/../figures``. ``out`` DIR: copies in ``DIR/notebooks``,
    figures in ``DIR/figures``. ``fast``: :data:`FAST` parameters. ``model``: the ``MODEL``
    parameter of every notebook (default: each notebook's own, the embedded ``"tiny"``). ``only``:
    the numbers of the notebooks to run (e.g. ``["01", "02"]``; default all). ``solutions``: also
    run the answer keys of ``<notebooks_dir>/solutions`` (the same numbers), after the notebooks.
    Paired scripts are synchronised first and rewritten after an in-place run (module docstring).
    Prints one line per notebook (and the missing numbers) to ``stream`` (default stdout); returns
    one :class:`NotebookRun` per notebook run.
    """
    stream = sys.stdout if stream is None else stream
    notebooks_dir = Path(notebooks_dir)
    found, missing = _chosen_notebooks(notebooks_dir, only, solutions)
    if out is not None and Path(out).resolve() == notebooks_dir.resolve().parent:
        out = None   # --out is the repository itself: that is the in-place run
    if missing:
        print(f"sar demo: notebooks {', '.join(missing)} not found in {notebooks_dir}; running the others", file=stream)
    runs = []
    for k, source in enumerate(found, start=1):
        print(f"[{k}/{len(found)}] {source.relative_to(notebooks_dir)} ...", file=stream, flush=True)
        parameters = dict(FAST.get(source.stem, {})) if fast else {}
        if model is not None:
            parameters["MODEL"] = model
        run = _demo_notebook(source, notebooks_dir, parameters, out=out, progress=progress, stream=stream)
        print(f"[{k}/{len(found)}] {source.name}: {'ok' if run.ok else 'FAILED'} in {run.seconds:.1f} s "
              f"-> {run.output}", file=stream, flush=True)
        runs.append(run)
        if not run.ok:
            _report_failure(run, source, found[k:], stream)
            break
    return runs


def _chosen_notebooks(notebooks_dir: Path, only: Sequence[str] | None, solutions: bool) -> tuple[list[Path], list[str]]:
    """The notebooks :func:`run_demo` runs, in order (then the answer keys with ``solutions``), and the
    missing numbers it reports (none when ``only`` names the notebooks)."""
    found, missing = find_notebooks(notebooks_dir)
    if not found:
        raise FileNotFoundError(f"no numbered notebooks (0[1-4]_*.ipynb) in {notebooks_dir}")
    if only is not None:
        unknown = sorted(set(only) - {p.name[:2] for p in found})
        if unknown:
            raise ValueError(f"no notebook numbered {', '.join(unknown)} in {notebooks_dir}; "
                             f"there are {', '.join(p.name[:2] for p in found)}")
        found, missing = [p for p in found if p.name[:2] in only], []
    if solutions:
        keys, _ = find_notebooks(notebooks_dir / SOLUTIONS)
        found += [p for p in keys if only is None or p.name[:2] in only]
    return found, missing


def _demo_notebook(source: Path, notebooks_dir: Path, parameters: dict, *, out: str | Path | None, progress: bool,
                   stream: TextIO) -> NotebookRun:
    """One notebook of the demo: its pair synchronised, run in place (``out`` None) or into ``out``, and
    the summary it wrote read back (a numbered notebook's, not an answer key's)."""
    if sync_pair(source):
        print(f"sar demo: synchronised {source.name} with {paired_script(source).name} (the newer file's "
              "cells)", file=stream, flush=True)
    answer_key = source.parent != notebooks_dir
    figures_dir = notebooks_dir.parent / "figures" if out is None else Path(out) / "figures"
    summary_file = figures_dir / f"{source.stem[:2]}_summary.json"
    if not answer_key:
        summary_file.unlink(missing_ok=True)   # a summary left by an earlier run must not pass for this one's
    if out is None:
        run = _run_in_place(source, parameters, progress)
    else:
        run = _run_into(source, Path(out) / "notebooks" / source.relative_to(notebooks_dir), parameters, progress)
    if run.ok and not answer_key and summary_file.is_file():
        run.summary = json.loads(summary_file.read_text(encoding="utf-8"))
    if run.ok and not answer_key and not parameters:
        record_time(figures_dir, run)
    return run


def record_time(figures_dir: Path, run: NotebookRun) -> Path:
    """Add ``run``'s seconds to ``<figures_dir>/`` :data:`TIMES_FILE` ({notebook: {"seconds", "machine"}}):
    the times the README's notebook table states, from the last default-parameter run of each notebook."""
    from sar_lib.lab.machine import machine_info

    path = figures_dir / TIMES_FILE
    times = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    times[run.name] = {"seconds": round(run.seconds, 1), "machine": machine_info("cpu", "sar demo")}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n", encoding="utf-8")
    return path


def _run_in_place(source: Path, parameters: dict, progress: bool) -> NotebookRun:
    """Run ``source`` in its own folder, so that "../figures" is the repository's figures folder, but
    written outside the repository: the source is replaced only by a copy that ran to the end (its
    paired script rewritten from it); a failed copy goes to the temporary folder."""
    with tempfile.TemporaryDirectory(prefix="sar-demo-") as tmp:
        scratch = Path(tmp) / source.name
        run = run_notebook(source, scratch, parameters=parameters, cwd=source.parent, progress=progress)
        run.output = source if run.ok else Path(tempfile.gettempdir()) / f"{source.stem}.failed.ipynb"
        shutil.move(scratch, run.output)
    if run.ok and is_paired(source):
        write_script(source)
    return run


def _run_into(source: Path, target: Path, parameters: dict, progress: bool) -> NotebookRun:
    """Run ``source`` into ``target``, in ``target``'s folder; a failed copy is renamed ``*.failed.ipynb``."""
    run = run_notebook(source, target, parameters=parameters, progress=progress)
    if not run.ok:
        run.output = target.with_name(f"{source.stem}.failed.ipynb")
        shutil.move(target, run.output)
    return run


def _report_failure(run: NotebookRun, source: Path, not_run: Sequence[Path], stream: TextIO) -> None:
    """Name the failing cell of ``source``, the error, the executed copy and the notebooks left unrun."""
    cell = "?" if run.failed_cell is None else run.failed_cell
    print(f"sar demo: {source.name} failed in cell {cell} ({run.failed_source!r}): {run.error}\n"
          f"sar demo: the executed copy with the traceback: {run.output}", file=stream, flush=True)
    if not_run:
        print(f"sar demo: not run: {', '.join(p.name for p in not_run)}", file=stream, flush=True)


def report(runs: Sequence[NotebookRun]) -> str:
    """The end-of-demo text: time per notebook, then every notebook's summary."""
    rows = [[r.name, "ok" if r.ok else "FAILED", f"{r.seconds:.1f}"] for r in runs]
    rows.append(["total", "", f"{sum(r.seconds for r in runs):.1f}"])
    parts = [format_table(["notebook", "status", "seconds"], rows)]
    parts += [format_notebook_summary(r.summary) for r in runs if r.summary]
    return "\n\n".join(parts)


def check_out_dir(out: str | Path | None) -> None:
    """ValueError when ``out`` exists and is not a directory."""
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise ValueError(f"--out {out} exists and is not a directory; pass a folder (it is created if missing)")

