"""The regime study's pilots (docs/regime.md): GRPO and SA-GRPO under candidate training settings,
every run the grid's (``compare.default_grid``) but for one pilot's overrides, and the pilot table.

    python scripts/regime_pilots.py run rank-2 one-update --methods grpo --seeds 1 --steps 30
    python scripts/regime_pilots.py table        # docs/regime_pilots.json and docs/regime.md's table

Runs go to ``runs/regime/<pilot>/<method>-s<seed>`` (cached, resumable, continued to more steps as
``sar compare``'s are), two at a time with one torch thread each; the base model is evaluated once in
``runs/regime/base``. Only the in-domain set is evaluated (greedy every 10 steps, 4 samples per
problem at the last step): the study's criteria read it alone.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from sar_lib import runs as run_files
from sar_lib.lab.analysis import budget_curve, shortening_onsets
from sar_lib.lab.claims import C1_MIN_LENGTH_REDUCTION
from sar_lib.lab.compare import default_grid
from sar_lib.lab.grid import IN_DOMAIN, run_grid

ROOT = Path("runs/regime")
TABLE_JSON = Path("docs/regime_pilots.json")
DOC = Path("docs/regime.md")
EVAL_SETS = {IN_DOMAIN: 200}
# Each pilot: GRPOConfig fields over the grid's settings (docs/regime.md says why each is tried).
PILOTS: dict[str, dict] = {
    "grid": {},
    "rank-2": {"lora_r": 2},
    "adam-eps-1e-5": {"adam_epsilon": 1e-5},
    "one-update": {"updates_per_step": 1},
    "paper-kl-fresh": {"kl_coef": 0.001, "train_size": 5000},
    "kl-0.1-fresh": {"kl_coef": 0.1, "train_size": 5000},
    "lr-2e-4-q32": {"learning_rate": 2e-4, "questions_per_step": 32},
    "wd-5": {"weight_decay": 5.0},
}


def run(pilots: list[str], methods: list[str], seeds: list[int], steps: int) -> None:
    """Train (or continue) every pilot's runs, two at a time, and the base model's evaluation."""
    unknown = [p for p in pilots if p not in PILOTS]
    if unknown:
        raise SystemExit(f"unknown pilots {unknown}; choose among {', '.join(PILOTS)} (or add one to PILOTS)")
    specs = []
    for name in pilots:
        grid, _ = default_grid(ROOT / name, methods=methods, seeds=seeds, steps=steps, eval_sets=EVAL_SETS,
                               multi_seed=methods, **PILOTS[name])
        specs += grid
    run_grid(specs, EVAL_SETS, workers=2, base_model="tiny", base_dir=ROOT)


def _window_means(values: list[float], windows: int = 5) -> list[float]:
    size = max(1, len(values) // windows)
    return [round(statistics.fmean(values[k:k + size]), 3) for k in range(0, len(values), size)][:windows]


def run_row(run_dir: Path) -> dict:
    """One run's line of the table: greedy accuracy and length at every evaluation, the training batch's
    accuracy in five windows, the final sampled accuracy and length, SAR's switch (``eval/p_stop``,
    ``sar_lib.switch``) at every evaluation where it was measured, and seconds per step."""
    metrics = run_files.read_metrics(run_dir)
    config = run_files.read_config(run_dir)
    evals = [m for m in metrics if m.get("eval/accuracy") is not None]
    last = evals[-1] if evals else {}
    return {
        "steps": len(metrics), "rollouts_per_step": config.questions_per_step * config.group_size,
        "eval_steps": [m["step"] for m in evals],
        "greedy_accuracy": [m["eval/accuracy"] for m in evals],
        "greedy_length": [round(m["eval/mean_length"], 1) for m in evals],
        "p_stop": [round(m["eval/p_stop"], 3) for m in evals if "eval/p_stop" in m],
        "train_accuracy": _window_means([m["rewards/correctness/mean"] for m in metrics]),
        "sampled_accuracy": last.get("eval/sampled_accuracy"),
        "sampled_length": last.get("eval/sampled_mean_length"),
        "seconds_per_step": round(statistics.fmean(m["time/step"] for m in metrics), 2) if metrics else None,
    }


def pilot_summary(pilot_dir: Path, base: dict) -> dict:
    """Every run of one pilot (:func:`run_row`), and each SA-GRPO seed's switch onset: the first budget
    from which its greedy answers stay at least C1's margin shorter than GRPO's mean over the pilot's
    seeds (``analysis.shortening_onsets``), at the budgets both reached."""
    rows = {d.name: run_row(d) for d in sorted(pilot_dir.iterdir()) if run_files.has_config(d)}
    summary = {"settings": PILOTS.get(pilot_dir.name, {}), "runs": rows}
    by_method = {m: sorted(d for d in pilot_dir.iterdir() if d.name.startswith(m + "-s")) for m in ("grpo", "sa-grpo")}
    if by_method["grpo"] and by_method["sa-grpo"]:
        per_step = rows[by_method["grpo"][0].name]["rollouts_per_step"]
        curves = {m: budget_curve(dirs, per_step, base) for m, dirs in by_method.items()}
        onsets = shortening_onsets(curves["sa-grpo"], curves["grpo"], 1 - C1_MIN_LENGTH_REDUCTION)
        summary["switch_onsets"] = {d.name: onset for d, onset in zip(by_method["sa-grpo"], onsets)}
    return summary


def _cells(values: list, fmt: str) -> str:
    return " ".join(format(v, fmt) for v in values) if values else "—"


def table_markdown(table: dict) -> str:
    """The pilot table: one line per run."""
    lines = [f"Base model: {100 * table['base']['accuracy']:.1f}% greedy, {table['base']['mean_length']:.1f} tokens "
             f"(200 arith-test problems).", "",
             "| pilot | run | rollouts | held-out greedy accuracy (%) at each evaluation | final greedy length | "
             "final sampled accuracy / length | training batch accuracy (5 windows) | switch onset (rollouts) | "
             "final p_stop | s/step |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, pilot in table["pilots"].items():
        for run_name, row in pilot["runs"].items():
            onset = pilot.get("switch_onsets", {}).get(run_name, "—") if run_name.startswith("sa-grpo") else "—"
            sampled = ("—" if row["sampled_accuracy"] is None
                       else f"{100 * row['sampled_accuracy']:.1f}% / {row['sampled_length']:.1f}")
            lines.append(f"| {name} | {run_name} | {row['steps'] * row['rollouts_per_step']:,} | "
                         f"{_cells([100 * a for a in row['greedy_accuracy']], '.1f')} | "
                         f"{row['greedy_length'][-1] if row['greedy_length'] else '—'} | {sampled} | "
                         f"{_cells(row['train_accuracy'], '.2f')} | {'none' if onset is None else onset} | "
                         f"{row['p_stop'][-1] if row['p_stop'] else '—'} | {row['seconds_per_step']} |")
    return "\n".join(lines)


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the lines between ``<!-- begin:name -->`` and ``<!-- end:name -->`` set to ``body``."""
    pattern = re.compile(rf"(<!-- begin:{name} -->\n).*?(<!-- end:{name} -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no block {name!r} (<!-- begin:{name} --> ... <!-- end:{name} -->)")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def table() -> dict:
    """Read every pilot's runs; write docs/regime_pilots.json and the table into docs/regime.md."""
    base_report, _ = run_files.read_eval(ROOT / "base", IN_DOMAIN)
    base = {"accuracy": base_report["accuracy"], "mean_length": base_report["mean_length"]}
    pilots = {name: pilot_summary(ROOT / name, base) for name in PILOTS if (ROOT / name).is_dir()}
    result = {"base": base, "pilots": pilots}
    TABLE_JSON.write_text(json.dumps(result, indent=1) + "\n")
    DOC.write_text(replace_block(DOC.read_text(), "pilot-table", table_markdown(result)))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="train pilots' runs")
    p.add_argument("pilots", nargs="+", help=f"among {', '.join(PILOTS)}")
    p.add_argument("--methods", nargs="+", default=["grpo", "sa-grpo"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--steps", type=int, default=100)
    sub.add_parser("table", help="write docs/regime_pilots.json and docs/regime.md's pilot table")
    args = parser.parse_args()
    if args.command == "run":
        run(args.pilots, args.methods, args.seeds, args.steps)
    else:
        print(table_markdown(table()))


if __name__ == "__main__":
    main()
