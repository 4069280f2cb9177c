"""Regenerate the README's measured tables from the files the runs wrote, so text and runs cannot drift.

Each block sits between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->`` in README.md:

* ``premises-v2``: the shipped model's premises P1-P5 (``sar_lib/assets/tiny/card.json``, written by
  ``sar pretrain-tiny``);
* ``tiny-model``: the shipped model's making and its out-of-domain accuracy (the same card);
* ``premises-v1``: the first testbed's premises (``docs/premises_testbed_v1.json``, written by
  ``sar premises --model <first testbed's model> --json docs/premises_testbed_v1.json``);
* ``grpo-vs-sar``: the claims and results tables of ``sar compare`` (``figures/grpo_vs_sar.md``);
* ``grid-verdict``: what SAR did on the testbed and why, in the words of notebook 03's verdict
  (``sar_lib.verdicts.grid_summary``, from the grid's JSON and the card);
* ``budget-curve``: the budget curve of ``sar compare`` and when SA-GRPO separates from GRPO and the
  shuffled-SAR control (``sar_lib.budget.budget_markdown``, from the grid's JSON);
* ``bench-cpu``: the CPU cost table of ``sar bench --json docs/bench_cpu.json``;
* ``model-change``: what the new embedded model moved on C1-C7: each claim's verdict and the greedy
  figures of the grid on the previous model (``docs/grid_model_v2.json``, its ``sar compare`` JSON)
  and on the shipped one (``figures/grpo_vs_sar.json``);
* ``replicate``: GRPO and SA-GRPO rerun with seeds we did not choose for the grid
  (``docs/grid_replicate_seeds_345.json``, written by the README's replicate command): C1 on those
  seeds, when each seed shortened, and C1's length test over the grid's and the replicate's seeds pooled;
* ``budget-extension``: GRPO and SA-GRPO with six seeds at twice the grid's budget
  (``docs/grid_budget_19200.json``), answering the questions fixed before that run in
  ``docs/budget_extension.md``.

    python scripts/sync_readme.py           # rewrite the blocks
    python scripts/sync_readme.py --check   # exit 1 if a block is stale (the tests run this)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from sar_lib import budget, verdicts
from sar_lib.claims import C1_MIN_LENGTH_REDUCTION, VERDICT_WORDS, compare_seeds, measured, test_text
from sar_lib.grid import METHODS
from sar_lib.model_card import premises_table
from sar_lib.models import TINY_DIR

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def blocks() -> dict[str, str]:
    """{block name: its Markdown}, from the committed result files."""
    card = json.loads((TINY_DIR / "card.json").read_text())
    first = json.loads((REPO / "docs" / "premises_testbed_v1.json").read_text())
    grid = json.loads((REPO / "figures" / "grpo_vs_sar.json").read_text())
    regime = verdicts.verbosity_regime(card["premises"], METHODS["sa-grpo"].alpha)
    return {"premises-v2": premises_table(card["premises"]),
            "tiny-model": tiny_model_text(card),
            "premises-v1": premises_table(first),
            "grpo-vs-sar": (REPO / "figures" / "grpo_vs_sar.md").read_text().strip(),
            "grid-verdict": verdicts.grid_summary(grid, regime),
            "budget-curve": budget.budget_markdown(grid),
            "bench-cpu": bench_table(json.loads((REPO / "docs" / "bench_cpu.json").read_text())),
            "model-change": model_change_table(json.loads((REPO / "docs" / "grid_model_v2.json").read_text()), grid),
            "replicate": replicate_text(grid, json.loads((REPO / "docs" / "grid_replicate_seeds_345.json").read_text())),
            "budget-extension": extension_text(json.loads((REPO / "docs" / "grid_budget_19200.json").read_text()),
                                               grid["settings"]["steps"] * grid["settings"]["questions_per_step"]
                                               * grid["settings"]["group_size"])}


def bench_table(result: dict) -> str:
    """The CPU rows of the README's cost table from a ``sar bench`` result."""
    engine = result["details"]["engine"]
    checks = engine["engine_checks"]
    when = f"{result['machine']['cpu_cores']} CPU cores, {result['machine']['date'][:10]}"
    rows = [
        ("a whole SA-GRPO step, rollout engine / reference path (`engine_step_speedup`)",
         f"{result['engine_step_speedup']:.2f}x ({engine['engine_rollouts_per_s']:.1f} against "
         f"{engine['reference_rollouts_per_s']:.1f} rollouts/s)", "≥ 2 (aim 3)"),
        ("sampling alone, rollout engine / `generate` (`engine_generate_speedup`)",
         f"{result['engine_generate_speedup']:.2f}x", ""),
        ("the engine's exactness: greedy answers, log-probs, seed",
         f"greedy identical to `generate`: {'yes' if checks['greedy_identical'] else 'NO'}; largest log-prob gap "
         f"{checks['max_logprob_gap']:.1e}; same seed, same rollouts: {'yes' if checks['same_seed_same_rollouts'] else 'NO'}",
         "identical; < 1e-4"),
        ("SAR's extra pass per step at forced lengths (`sar_overhead_ratio`)",
         f"{result['sar_overhead_ratio']:.2f} (the step's own timer: "
         f"{result['details']['overhead']['sar_overhead_ratio_from_step_timer']:.2f})", "≤ 1.05"),
        ("our GRPO step / TRL `GRPOTrainer` step (`trl_step_ratio`)", f"{result['trl_step_ratio']:.2f}", "≤ 1.0"),
        ("chunked / naive log-prob memory, vocab 151,936, 6 × 512 tokens", f"{result['logprob_memory_ratio']:.3f}",
         "≤ 0.3"),
    ]
    return "\n".join(["| figure | value | target | machine, date |", "|---|---|---|---|",
                      *(f"| {figure} | {value} | {target} | {when} |" for figure, value, target in rows)])


def tiny_model_text(card: dict) -> str:
    """The shipped model's pretraining time, size and out-of-domain accuracy, from its card."""
    evals, config = card["eval"], card["config"]
    claim, logic = evals["claim-test"], evals["logic-test"]
    return (f"The pretraining took {card['total_seconds'] / 60:.1f} min in all ({card['train_seconds'] / 60:.1f} "
            f"min of training, {config['threads']} torch thread; the card's figures, {card['machine'].split(',')[0]}), "
            f"within the 45-minute budget; the checkpoint is {card['checkpoint_bytes'] / 1e6:.1f} MB. Out of domain it "
            f"answers claim-test (True/False claims about held-out word problems, {100 * config['claim_share']:.0f}% "
            f"of its corpus) at {100 * claim['accuracy']:.1f}% of {claim['n']} items, and logic-test at "
            f"{100 * logic['accuracy']:.1f}% of {logic['n']}: chance is 50%, so the logic rows below say nothing about "
            "logic (the lookup by name that logic needs is not learnt at this scale, `docs/logic_attempts.md`).")


def _greedy(grid: dict, method: str, dataset: str) -> str:
    """'accuracy % / length tok' of ``method``'s greedy answers on ``dataset`` (mean over seeds)."""
    if method == "base":
        point = grid["base"].get(dataset)
        accuracy, length = (point["accuracy"], point["mean_length"]) if point else (None, None)
    else:
        point = grid["methods"].get(method, {}).get("eval", {}).get(dataset)
        accuracy, length = (point["accuracy"]["mean"], point["mean_length"]["mean"]) if point else (None, None)
    return "—" if point is None else f"{100 * accuracy:.1f}% / {length:.1f} tok"


def model_change_table(before: dict, after: dict) -> str:
    """Markdown: each claim's verdict on the grid of the previous model (``before``) and of the shipped
    one (``after``), then the greedy accuracy / length of the base model, GRPO and SA-GRPO on every set
    either grid evaluated."""
    status = {name: {c["id"]: c for c in grid["claims"]} for name, grid in (("before", before), ("after", after))}
    rows = ["| claim | previous model | this model |", "|---|---|---|"]
    for claim_id, claim in status["after"].items():
        old = status["before"].get(claim_id)
        rows.append(f"| {claim_id} {claim['statement']} | {VERDICT_WORDS[old['status']] if old else '—'} "
                    f"| **{VERDICT_WORDS[claim['status']]}** |")
    sets = list(dict.fromkeys([*before["settings"]["eval_sets"], *after["settings"]["eval_sets"]]))
    rows += ["", "greedy accuracy / mean length, previous model → this model (mean over seeds):", "",
             "| set | base model | GRPO | SA-GRPO (α=0.2) |", "|---|---|---|---|"]
    for dataset in sets:
        cells = [f"{_greedy(before, m, dataset)} → {_greedy(after, m, dataset)}" for m in ("base", "grpo", "sa-grpo")]
        rows.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def replicate_text(grid: dict, replicate: dict, dataset: str = "arith-test") -> str:
    """Markdown: C1 on the replicate's seeds (its claims row), its per-seed greedy lengths and shortening
    onsets, and C1's length test over the seeds of ``grid`` and ``replicate`` pooled (Welch's test, as
    ``claims.compare_seeds``): more seeds, the same criterion's test, reported beside the fixed verdicts."""
    c1 = next(c for c in replicate["claims"] if c["id"] == "C1")
    evals = {name: [g["methods"][name]["eval"][dataset] for g in (grid, replicate)] for name in ("grpo", "sa-grpo")}
    labels = {name: replicate["methods"][name]["label"] for name in evals}

    def per_seed(name: str, key: str, which: int, scale: float = 1.0) -> str:
        return ", ".join(f"{scale * v:.1f}" for v in evals[name][which][key]["per_seed"])

    pooled = {name: {key: [v for e in evals[name] for v in e[key]["per_seed"]] for key in ("mean_length", "accuracy")}
              for name in evals}
    length = compare_seeds(pooled["sa-grpo"]["mean_length"], pooled["grpo"]["mean_length"])
    accuracy = compare_seeds(pooled["sa-grpo"]["accuracy"], pooled["grpo"]["accuracy"])
    mean = {name: sum(pooled[name]["mean_length"]) / len(pooled[name]["mean_length"]) for name in pooled}
    seeds = {name: [s for g in (grid, replicate) for s in g["methods"][name]["seeds"]] for name in evals}
    last = max(e["rollouts"] for e in replicate["budget_curve"]["sa-grpo"])
    onsets = [b for g in (grid, replicate) for b in budget.shortening_onsets(
        g["budget_curve"]["sa-grpo"], g["budget_curve"]["grpo"], 1 - C1_MIN_LENGTH_REDUCTION)]
    switched = sorted(b for b in onsets if b is not None)
    switch_text = (f"{len(switched)} of the {len(onsets)} SA-GRPO seeds stay {100 * C1_MIN_LENGTH_REDUCTION:.0f}% shorter than GRPO from some budget "
                   f"on ({switched[0]:,}-{switched[-1]:,} rollouts), the other {len(onsets) - len(switched)} not up to "
                   f"{last:,}" if switched else f"none of the {len(onsets)} SA-GRPO seeds stays {100 * C1_MIN_LENGTH_REDUCTION:.0f}% shorter than GRPO")
    return (f"Seeds {', '.join(map(str, replicate['methods']['sa-grpo']['seeds']))}, {last:,} rollouts per run "
            f"({replicate['wall_seconds'] / 60:.1f} min on 2 cores, `docs/grid_replicate_seeds_345.json`): "
            f"C1 **{VERDICT_WORDS[c1['status']]}** ({measured(c1)}). Greedy {dataset} lengths per seed: "
            f"{labels['sa-grpo']} {per_seed('sa-grpo', 'mean_length', 1)} tok, {labels['grpo']} "
            f"{per_seed('grpo', 'mean_length', 1)} tok; accuracy {per_seed('sa-grpo', 'accuracy', 1, 100)} against "
            f"{per_seed('grpo', 'accuracy', 1, 100)}%. {budget.onsets_text(replicate)}\n\n"
            f"Pooled with the grid's seeds ({len(seeds['sa-grpo'])} seeds per method: {', '.join(map(str, seeds['sa-grpo']))}), "
            f"an analysis beside the fixed three-seed criterion, not in place of it: {labels['sa-grpo']} "
            f"{mean['sa-grpo']:.1f} tok against {labels['grpo']} {mean['grpo']:.1f} tok "
            f"({verdicts.shorter_text(verdicts.percent_shorter(mean['grpo'], mean['sa-grpo']))}; {test_text(length, 'tok')}); "
            f"accuracy {test_text(accuracy, 'points', 100)}. Over both grids {switch_text}.")


def extension_text(extended: dict, before: int, dataset: str = "arith-test") -> str:
    """Markdown: the answers to ``docs/budget_extension.md``'s questions from a grid trained past
    ``before`` rollouts per run: which SA-GRPO seeds that had not shortened by ``before`` did later (Q1),
    C1 at the end over every seed (Q2), the accuracy at ``before`` and at the end (Q3), and whether a
    GRPO seed shortened by C1's margin from its own length at ``before`` (Q4)."""
    curves = extended["budget_curve"]
    last = max(e["rollouts"] for e in curves["sa-grpo"])
    labels = {name: extended["methods"][name]["label"] for name in ("grpo", "sa-grpo")}
    seeds = extended["methods"]["sa-grpo"]["seeds"]
    margin = 1 - C1_MIN_LENGTH_REDUCTION
    percent = f"{100 * C1_MIN_LENGTH_REDUCTION:.0f}%"
    early = budget.shortening_onsets([e for e in curves["sa-grpo"] if e["rollouts"] <= before],
                                     [e for e in curves["grpo"] if e["rollouts"] <= before], margin)
    late = budget.shortening_onsets(curves["sa-grpo"], curves["grpo"], margin)
    lagging = [(s, b) for s, a, b in zip(seeds, early, late) if a is None]
    switched = [f"seed {s} from {b:,}" for s, b in lagging if b is not None]
    q1 = (f"Of the {len(lagging)} SA-GRPO seeds that had not shortened by {before:,} rollouts "
          f"({', '.join(str(s) for s, _ in lagging)}), {len(switched)} did by {last:,}"
          + (f" ({'; '.join(switched)})" if switched else "") + ". " + budget.onsets_text(extended))
    c1, c6 = (next(c for c in extended["claims"] if c["id"] == name) for name in ("C1", "C6"))
    at = {name: {e["rollouts"]: e for e in curves[name]} for name in curves}

    def accuracy(name: str, rollouts: int) -> str:
        return f"{100 * at[name][rollouts]['accuracy']['mean']:.1f}%"

    base = extended["base"][dataset]["accuracy"]
    shaped_last = at["sa-grpo"][last]["mean_length"]["per_seed"]
    reference_last = at["grpo"][last]["mean_length"]["per_seed"]
    q2 = (f"{labels['sa-grpo']}'s lengths per seed at {last:,}: " + ", ".join(f"{v:.1f}" for v in shaped_last) + " tok"
          + (f": its longest seed is shorter than {labels['grpo']}'s shortest ({min(reference_last):.1f} tok)."
             if max(shaped_last) < min(reference_last) else "."))
    q3 = (f"Greedy accuracy from {before:,} to {last:,} rollouts: {labels['grpo']} {accuracy('grpo', before)} → "
          f"{accuracy('grpo', last)}, {labels['sa-grpo']} {accuracy('sa-grpo', before)} → {accuracy('sa-grpo', last)} "
          f"(base model {100 * base:.1f}%).")
    grpo_before = at["grpo"][before]["mean_length"]["per_seed"]
    grpo_last = at["grpo"][last]["mean_length"]["per_seed"]
    shortened = [s for s, a, b in zip(extended["methods"]["grpo"]["seeds"], grpo_before, grpo_last) if b <= margin * a]
    q4 = (f"{labels['grpo']}'s lengths per seed at {before:,} and {last:,}: "
          + ", ".join(f"{a:.1f} → {b:.1f}" for a, b in zip(grpo_before, grpo_last)) + " tok; "
          + (f"seeds {', '.join(map(str, shortened))}" if shortened else "no seed") + f" shortened by {percent} or more."
          + f" Share of greedy answers cut at the {extended['settings']['max_new_tokens']}-token limit at {last:,}, per seed: "
          + "; ".join(f"{labels[name]} " + ", ".join(
              f"{100 * t:.0f}%" for t in extended["methods"][name]["eval"][dataset]["truncation_rate"]["per_seed"])
              for name in ("grpo", "sa-grpo")) + ".")
    return "\n".join([
        f"- **Q1, the lagging seeds.** {q1}",
        f"- **Q2, C1 at {last:,} over {len(seeds)} seeds: {VERDICT_WORDS[c1['status']]}** ({measured(c1)}). {q2}",
        f"- **Q3, accuracy.** {q3}",
        f"- **Q4, GRPO.** {q4}",
        f"- **Beside the questions, C6 at {last:,}: {VERDICT_WORDS[c6['status']]}** ({measured(c6)}).",
        f"\n{extended['wall_seconds'] / 60:.1f} min on {extended['machine']['cpu_cores']} cores "
        f"({extended['machine']['cpu']}) for the {extended['runs_trained']} runs "
        f"({extended['settings']['steps']} steps each) and every evaluation (`docs/grid_budget_19200.json`)."])


def synced(text: str, new_blocks: dict[str, str]) -> str:
    """``text`` with every named block's body replaced; a block missing from ``text`` is an error."""
    for name, body in new_blocks.items():
        pattern = re.compile(rf"(<!-- begin:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- end:{re.escape(name)} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md has no block {name!r}: add <!-- begin:{name} --> and <!-- end:{name} --> lines")
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether README.md is up to date")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = synced(text, blocks())
    if args.check:
        if new != text:
            print("README.md's measured tables are stale: run `python scripts/sync_readme.py`", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
