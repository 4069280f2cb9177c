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
from sar_lib.lab.stats import compare_seeds
from sar_lib.lab.compare import default_grid
from sar_lib.lab.grid import IN_DOMAIN, run_grid

ROOT = Path("runs/regime")
TABLE_JSON = Path("docs/regime_pilots.json")
DOC = Path("docs/regime.md")
EVAL_SETS = {IN_DOMAIN: 200}
R1_DIP = 0.03     # R1: at no evaluation more than 3 points below the base
R1_TIE = 0.01     # shortfalls within 1 point count as equal
R2_SEEDS = {5: 4, 3: 2}   # R2: SA-GRPO seeds that must have switched, by the number of seeds
GRID_JSON = Path("figures/grpo_vs_sar.json")   # the grid's regime (lr 1e-3), the control of stage C
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
        summary["budget_curve"] = curves
    return summary


# ---------------------------------------------------------------- the rule that chooses (docs/regime.md)
def candidate_scores(curves: dict, base_accuracy: float) -> dict:
    """R1 and R2 of docs/regime.md on one candidate's budget curves ({"grpo", "sa-grpo"}: each an
    ``analysis.budget_curve`` over its seeds, base first): the final and lowest mean accuracy per method,
    the R1 shortfall ``max over methods of max(base - final, base - 3 points - lowest, 0)``, the SA-GRPO
    seeds at least C1's margin shorter than GRPO's mean at the end, C1's length test over seeds, and
    SA-GRPO's final accuracy."""
    scores = {}
    for method, curve in curves.items():
        trained = [e["accuracy"]["mean"] for e in curve if e["rollouts"] > 0]
        scores[method] = {"final": trained[-1], "lowest": min(trained)}
    shortfall = max(max(base_accuracy - s["final"], base_accuracy - R1_DIP - s["lowest"], 0.0) for s in scores.values())
    grpo_end, sa_end = curves["grpo"][-1]["mean_length"], curves["sa-grpo"][-1]["mean_length"]
    switched = sum(v <= (1 - C1_MIN_LENGTH_REDUCTION) * grpo_end["mean"] for v in sa_end["per_seed"])
    length_test = compare_seeds(sa_end["per_seed"], grpo_end["per_seed"])
    return {"methods": scores, "r1_shortfall": shortfall, "meets_r1": shortfall == 0.0,
            "switched": switched, "seeds": len(sa_end["per_seed"]),
            "c1_length_beyond_noise": bool(length_test["separable"] and length_test["difference"] < 0),
            "sa_grpo_final_accuracy": scores["sa-grpo"]["final"]}


def choose(scores: dict) -> list[str]:
    """The candidates ranked by the rule of docs/regime.md: those meeting R1 first (then R2, then SA-GRPO's
    accuracy); otherwise by the R1 shortfall, shortfalls within 1 point of the smallest counting as equal,
    ties broken by the SA-GRPO seeds switched, then SA-GRPO's accuracy."""
    def r2(s: dict) -> bool:
        return s["switched"] >= R2_SEEDS.get(s["seeds"], s["seeds"]) and s["c1_length_beyond_noise"]

    smallest = min(s["r1_shortfall"] for s in scores.values())
    def key(name: str) -> tuple:
        s = scores[name]
        tier = 0 if s["meets_r1"] else 1 if s["r1_shortfall"] <= smallest + R1_TIE else 2
        return (tier, -r2(s), -s["switched"], -s["sa_grpo_final_accuracy"], s["r1_shortfall"])
    return sorted(scores, key=key)


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


def stage_c_scores(pilots: dict, base_accuracy: float) -> dict:
    """:func:`candidate_scores` of every pilot with 3 or more seeds of GRPO and SA-GRPO (stage C), and of
    the grid's regime from its committed results (:data:`GRID_JSON`, its budget curve)."""
    scores = {}
    for name, pilot in pilots.items():
        curves = pilot.get("budget_curve")
        if curves and min(len(c[-1]["accuracy"]["per_seed"]) for c in curves.values()) >= 3:
            scores[name] = candidate_scores(curves, base_accuracy)
    grid = json.loads(GRID_JSON.read_text())["budget_curve"]
    scores["grid (committed)"] = candidate_scores({m: grid[m] for m in ("grpo", "sa-grpo")}, base_accuracy)
    return scores


def choice_markdown(scores: dict, ranking: list[str], base_accuracy: float) -> str:
    """The stage-C candidates as a table, in the rule's order, and the one it chooses."""
    lines = ["| rank | candidate | GRPO final / lowest | SA-GRPO final / lowest | R1 shortfall (points) | "
             "SA-GRPO seeds switched | C1's length difference beyond noise |", "|---|---|---|---|---|---|---|"]
    for rank, name in enumerate(ranking, 1):
        s = scores[name]
        cells = [f"{100 * s['methods'][m]['final']:.1f} / {100 * s['methods'][m]['lowest']:.1f}%" for m in ("grpo", "sa-grpo")]
        lines.append(f"| {rank} | {name} | {cells[0]} | {cells[1]} | {100 * s['r1_shortfall']:.1f} | "
                     f"{s['switched']} of {s['seeds']} | {'yes' if s['c1_length_beyond_noise'] else 'no'} |")
    chosen = scores[ranking[0]]
    lines += ["", f"The rule chooses **{ranking[0]}** (base {100 * base_accuracy:.1f}%): it "
              + ("meets R1" if chosen["meets_r1"] else f"misses R1 by {100 * chosen['r1_shortfall']:.1f} points")
              + f", and {chosen['switched']} of its {chosen['seeds']} SA-GRPO seeds switched by the end of the budget."]
    return "\n".join(lines)


def table() -> dict:
    """Read every pilot's runs; write docs/regime_pilots.json and the pilot table and the rule's choice
    into docs/regime.md."""
    base_report, _ = run_files.read_eval(ROOT / "base", IN_DOMAIN)
    base = {"accuracy": base_report["accuracy"], "mean_length": base_report["mean_length"]}
    pilots = {name: pilot_summary(ROOT / name, base) for name in PILOTS if (ROOT / name).is_dir()}
    scores = stage_c_scores(pilots, base["accuracy"])
    ranking = choose(scores)
    result = {"base": base, "pilots": pilots, "stage_c": scores, "ranking": ranking}
    TABLE_JSON.write_text(json.dumps(result, indent=1) + "\n")
    text = replace_block(DOC.read_text(), "pilot-table", table_markdown(result))
    DOC.write_text(replace_block(text, "regime-choice", choice_markdown(scores, ranking, base["accuracy"])))
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
