"""The README's and docs pages' measured prose and tables, built from the result files' JSON (one builder per
block that ``scripts/sync_readme.py`` writes between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->``).

Every function takes parsed JSON (a ``sar compare`` summary, a ``sar bench`` result, a model card) or the
package's docstrings and returns Markdown; reading the files and rewriting the pages is the script's job.
The blocks that the notebooks show too are built where the notebooks build them (``verdicts.grid_summary``,
``model_card.premises_table``).

The README's first screen: :func:`headline`, the one sentence on the paper's main claim C1 at the grid's
budget and at the extended one, and :func:`results_markdown`, every claim's verdict at both budgets, both
read from the claims rows of the grids' JSON, so the headline and the claims table cannot disagree.
The layout: :func:`layout_list` and :func:`module_table`, from the package's own docstrings, and the
hardware profiles (:func:`profiles_table`).

The budget curve (``analysis.budget_curve``: greedy in-domain accuracy and length every
``eval_every`` steps) in words: after how many rollouts per run SA-GRPO's greedy answers separate
from GRPO's and from the shuffled-SAR control's beyond the seed noise (:func:`budget_markdown`), and
when each seed's answers got shorter, where the mean over seeds hides it (:func:`shortening_onsets`).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Mapping, Sequence

from sar_lib.lab.analysis import shortening_onsets
from sar_lib.lab.claims import (C1_MIN_LENGTH_REDUCTION, STATUS_VERBS, VERDICT_WORDS, claims_markdown, compare_seeds,
                                claim_row, current_claims, measured, test_text)
from sar_lib.lab.seed_outcomes import (accuracy_along_training, along_training_sentence, percent_shorter, rollouts_per_run,
                               shorter_text, switched_seeds)

_C1_PERCENT = f"{100 * C1_MIN_LENGTH_REDUCTION:.0f}%"   # C1's margin, as the sentences state it
_WIDTH = 110   # prose blocks are wrapped to this width (Markdown joins the lines)
# a claim's status as the verb of the headline's sentence ("C1 ... holds at ...")


def _wrap(text: str, indent: str = "") -> str:
    """``text`` as lines of at most :data:`_WIDTH` characters, never broken inside a word."""
    return textwrap.fill(text, _WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)


def _lr(grid: Mapping) -> str:
    """'lr 0.0002': the learning rate of ``grid``'s runs."""
    return f"lr {grid['settings']['learning_rate']:g}"


# ---------------------------------------------------------------- the first screen: headline and claims
def _switched_seeds(grid: Mapping, shaped: str = "sa-grpo", reference: str = "grpo") -> str:
    """'k of the n SA-GRPO seeds 20% shorter than GRPO's mean': the seeds that stay C1's margin shorter from
    some budget of the grid's curve on, to its end (``analysis.shortening_onsets``); '' without a curve."""
    curves = grid.get("budget_curve") or {}
    if shaped not in curves or reference not in curves:
        return ""
    onsets = shortening_onsets(curves[shaped], curves[reference], 1 - C1_MIN_LENGTH_REDUCTION)
    switched = sum(onset is not None for onset in onsets)
    return f"{switched} of the {len(onsets)} SA-GRPO seeds {_C1_PERCENT} shorter than GRPO's mean"


def _c1_at_budget(grid: Mapping) -> str:
    """C1's verdict at ``grid``'s budget, with the figures it rests on: 'holds at 19,200 rollouts per run
    over 6 seeds (59.5% shorter at +0.3 points of accuracy; 6 of the 6 SA-GRPO seeds ...)'."""
    c1 = claim_row(grid, "C1")
    numbers = c1.get("numbers") or {}
    figures = [f"{shorter_text(100 * numbers['length_reduction'])} at {-numbers['accuracy_drop_points']:+.1f} points "
               "of accuracy"] if "length_reduction" in numbers else []
    figures += [text for text in [_switched_seeds(grid)] if text]
    return (f"{STATUS_VERBS[c1['status']]} at {rollouts_per_run(grid):,} rollouts per run over "
            f"{len(grid['methods']['sa-grpo']['seeds'])} seeds" + (f" ({'; '.join(figures)})" if figures else ""))


def _against_base(grid: Mapping) -> str:
    """'SA-GRPO 55.7% against the base model's 58.5%' (C8's figures; '' when C8 was not run)."""
    numbers = claim_row(grid, "C8").get("numbers") or {}
    if not numbers.get("sa_grpo") or not numbers.get("base"):
        return ""
    return f"SA-GRPO {100 * numbers['sa_grpo'][1]:.1f}% against the base model's {100 * numbers['base'][1]:.1f}%"


def headline(grid: Mapping, extended: Mapping | None = None) -> str:
    """The README's headline: one sentence with the verdicts of the paper's main claim, C1, and of C8 (RL improves
    on the base) on ``grid`` (``sar compare``'s JSON), and, when given, of C1 on ``extended`` (the same comparison
    at another learning rate and budget), each from the grid's own claims rows, so the sentence says what the
    claims table says."""
    c1, c8 = claim_row(grid, "C1"), claim_row(grid, "C8")
    base = _against_base(grid)
    text = (f"**On the embedded {grid['model']} model at the grid's {_lr(grid)}, the paper's main claim, C1 "
            f"({c1['statement']}), {_c1_at_budget(grid)}, and C8 ({c8['statement'].split(':')[0]}) "
            f"{STATUS_VERBS[c8['status']]}"
            + (f" ({base})" if base else ""))
    if extended is not None:
        text += f"; at {_lr(extended)}, C1 {_c1_at_budget(extended)}"
        points = (claim_row(extended, "C8").get("numbers") or {}).get("points_above_base")
        if points is not None:
            text += (f", with SA-GRPO {abs(points):.1f} points {'below' if points < 0 else 'above'} the base model's "
                     "greedy accuracy")
    return _wrap(text + ".**")


def results_markdown(grid: Mapping, *others: Mapping) -> str:
    """Markdown: one row per claim with its verdict on ``grid`` and on each of ``others`` (the same claims at other
    settings), each column named by its learning rate, budget and seeds; then how the grid's greedy accuracy moved
    along training against the base model's (``verdicts.accuracy_along_training``) and the accuracy at the last
    column's budget."""
    grids = [grid, *others]
    heads = [f"{_lr(g)}, {rollouts_per_run(g):,} rollouts per run, {len(g['methods']['sa-grpo']['seeds'])} seeds"
             for g in grids]
    heads[0] += " (the grid)"
    rows = ["| claim | " + " | ".join(heads) + " |", "|---|" + "---|" * len(grids)]
    for row in current_claims(grid):
        verdicts = [VERDICT_WORDS[claim_row(g, row["id"])["status"]] for g in grids]
        rows.append(f"| {row['id']} {row['statement']} | " + " | ".join(f"**{v}**" for v in verdicts) + " |")
    sentences = []
    if grid.get("budget_curve") and "grpo" in grid["budget_curve"] and "sa-grpo" in grid["budget_curve"]:
        labels = {name: m["label"] for name, m in grid["methods"].items()}
        along = along_training_sentence(accuracy_along_training(grid), labels)
        sentences.append(f"Along the grid's training ({_lr(grid)}), {along[0].lower()}{along[1:]}")
    if others:
        sentences.append(_accuracy_sentence(grids[-1]))
    return "\n".join(rows) + "".join(f"\n\n{_wrap(s)}" for s in sentences if s)


def grid_settings(grid: Mapping) -> str:
    """The settings every run of ``grid`` shared and what the grid cost, from its JSON: the LoRA rank, G, the
    batch, the budget, the learning rate, the answer budget, the seeds, the evaluation, and the wall time on
    its machine (with how many runs were reused from an earlier call, which the time leaves out)."""
    s, machine = grid["settings"], grid.get("machine", {})
    multi = [m for m in grid["methods"] if m in s.get("multi_seed_methods", [])]
    names = " and ".join(grid["methods"][m]["label"] for m in multi) or "every method"
    cached = grid.get("runs_cached", 0)
    runs = grid.get("runs_trained", 0) + cached
    cost = (f"This grid took {grid['wall_seconds'] / 60:.1f} min on {machine.get('cpu_cores', '?')} "
            f"{machine.get('cpu', 'CPU')} cores ({runs} runs, {s.get('workers', 1)} at a time"
            + (f"; {cached} of them reused from an earlier call, so the time leaves them out" if cached else "")
            + ")." if "wall_seconds" in grid else "")
    every = s["eval_every"] * s["questions_per_step"] * s["group_size"]
    return _wrap(f"LoRA r = {s['lora_r']}, G = {s['group_size']} answers per question, {s['questions_per_step']} "
                 f"questions per step, {s['steps']} steps ({rollouts_per_run(grid):,} rollouts per run), learning "
                 f"rate {s['learning_rate']:g}, answers up to {s['max_new_tokens']} tokens. {names} run with seeds "
                 f"{', '.join(map(str, s['seeds']))}, every other method with seed {s['seeds'][0]}. A greedy "
                 f"evaluation of the in-domain set every {s['eval_every']} steps ({every:,} rollouts) draws the budget "
                 f"curve. {cost}")


def _accuracy_sentence(grid: Mapping) -> str:
    """GRPO's and SA-GRPO's greedy accuracy on C1's set at ``grid``'s budget, against the base model's."""
    numbers = claim_row(grid, "C1").get("numbers") or {}
    if "grpo" not in numbers:
        return ""
    base = grid["base"][numbers["dataset"]]["accuracy"]
    grpo, shaped = numbers["grpo"][1], numbers["sa_grpo"][1]
    where = "both below" if max(grpo, shaped) < base else "against"
    return (f"Greedy accuracy on {numbers['dataset']} at {_lr(grid)} and {rollouts_per_run(grid):,} rollouts per run: "
            f"GRPO {100 * grpo:.1f}%, SA-GRPO {100 * shaped:.1f}%, {where} the base model's {100 * base:.1f}%.")


# ---------------------------------------------------------------- the layout: docstrings and profiles
def first_sentence(docstring: str | None) -> str:
    """A module's docstring cut to its first sentence, in Markdown (reST roles and double backticks
    become plain code spans); '' for no docstring."""
    paragraph = " ".join((docstring or "").split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.?!])\s", paragraph)[0]
    return re.sub(r":\w+:`", "`", sentence).replace("``", "`").rstrip(":. ")


def layout_list(tree: Mapping[str, Mapping]) -> str:
    """Markdown: one list item per package of ``tree`` ({folder: {"doc": first sentence, "modules":
    {name: first sentence}}}) with its one-sentence description and its modules' names."""
    items = []
    for folder, package in tree.items():
        doc = package["doc"].removeprefix(folder.strip("/").replace("/", ".") + ": ")
        names = ", ".join(f"`{name}`" for name in package["modules"])
        items.append(_wrap(f"- `{folder}`" + (f" ({doc})" if doc else "") + f": {names}", indent="  "))
    return "\n".join(items)


def module_table(tree: Mapping[str, Mapping]) -> str:
    """Markdown: one row per module of ``tree`` (see :func:`layout_list`) with its docstring's first sentence."""
    rows = ["| module | what it holds |", "|---|---|"]
    for folder, package in tree.items():
        rows += [f"| `{folder}{name}.py` | {doc} |" for name, doc in package["modules"].items()]
    return "\n".join(rows)


def profiles_table(profiles: Sequence) -> str:
    """Markdown: one row per hardware profile (``models.PROFILES``' values): model, weights, LoRA rank and
    the GRPO sizes of a step."""
    rows = ["| profile | model | weights | LoRA | G | max answer tokens | questions / step |", "|---" * 7 + "|"]
    rows += [f"| `{p.name}` | {'embedded tiny reasoner' if p.model == 'tiny' else p.model} | "
             f"{'4-bit NF4' if p.load_in_4bit else 'fp32'} | r = {p.lora_r} | {p.group_size} | {p.max_new_tokens} | "
             f"{p.questions_per_step} |" for p in profiles]
    return "\n".join(rows)


# ---------------------------------------------------------------- the budget curve
@dataclass(frozen=True)
class _Curves:
    """A grid's budget curves by method and budget (``by_budget[name][rollouts]``: one curve entry), the
    methods' labels, and the three compared: ``shaped`` against ``reference`` and the ``control``."""

    by_budget: dict[str, dict[int, Mapping]]
    labels: dict[str, str]
    shaped: str
    reference: str
    control: str

    @property
    def budgets(self) -> list[int]:
        """The budgets past 0 at which both ``shaped`` and ``reference`` evaluated."""
        return [r for r in sorted(self.by_budget[self.shaped]) if r > 0 and r in self.by_budget[self.reference]]

    def test(self, name: str, budget: int) -> dict | None:
        """``claims.compare_seeds`` of ``shaped``'s lengths against ``name``'s at ``budget`` (None if absent)."""
        if budget not in self.by_budget.get(name, {}):
            return None
        return compare_seeds(self.by_budget[self.shaped][budget]["mean_length"]["per_seed"],
                             self.by_budget[name][budget]["mean_length"]["per_seed"])

    def cell(self, name: str, budget: int, key: str, scale: float = 1.0) -> str:
        """'mean (seed, seed, ...)' of ``key`` for ``name`` at ``budget``, '—' where it did not evaluate."""
        entry = self.by_budget.get(name, {}).get(budget)
        if entry is None:
            return "—"
        values = ", ".join(f"{scale * v:.1f}" for v in entry[key]["per_seed"])
        return f"{scale * entry[key]['mean']:.1f}" + (f" ({values})" if len(entry[key]["per_seed"]) > 1 else "")

    def separates_from(self, name: str) -> int | None:
        """The first budget from which ``shaped`` is shorter than ``name`` beyond the noise, at every later one too."""
        first = None
        for budget in self.budgets:
            result = self.test(name, budget)
            ok = result is not None and result["separable"] and result["difference"] < 0
            first = (first or budget) if ok else None
        return first


def budget_markdown(grid: Mapping | None, shaped: str = "sa-grpo", reference: str = "grpo",
                    control: str = "shuffled-sar") -> str:
    """Markdown: the budget curve of ``grid`` (``budget_curve``: greedy in-domain length and accuracy along
    the runs) as one row per budget, then the sentence that says after how many rollouts ``shaped``'s
    answers separate from ``reference``'s and from ``control``'s, by ``claims.compare_seeds`` (Welch's
    test at 5% over seeds; every seed beyond the other side's one seed): the first budget from which
    they are shorter and separable at that budget and every later one."""
    curves = (grid or {}).get("budget_curve") or {}
    if shaped not in curves or reference not in curves:
        return f"_No budget curve of {reference} and {shaped} in this grid (run `sar compare`)._"
    by_budget = {name: {e["rollouts"]: e for e in curves[name]} for name in (shaped, reference, control)
                 if name in curves}
    c = _Curves(by_budget, {name: grid["methods"][name]["label"] for name in by_budget}, shaped, reference, control)
    return _budget_table(c) + "\n\n" + " ".join([*_separation_sentences(c), onsets_text(grid, shaped, reference)])


def _budget_table(c: _Curves) -> str:
    """One row per budget: each method's length, ``shaped`` against ``reference``'s test, their accuracies."""
    labels, reference, shaped = c.labels, c.reference, c.shaped
    with_control = c.control in labels
    head = (f"| rollouts per run | {labels[reference]} length | {labels[shaped]} length | "
            + (f"{labels[c.control]} length | " if with_control else "")
            + f"{labels[shaped]} vs {labels[reference]} | {labels[reference]} accuracy % | {labels[shaped]} accuracy % |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for budget in c.budgets:
        lines.append(f"| {budget:,} | {c.cell(reference, budget, 'mean_length')} | {c.cell(shaped, budget, 'mean_length')} | "
                     + (f"{c.cell(c.control, budget, 'mean_length')} | " if with_control else "")
                     + f"{test_text(c.test(reference, budget), 'tok')} | {c.cell(reference, budget, 'accuracy', 100)} | "
                     f"{c.cell(shaped, budget, 'accuracy', 100)} |")
    return "\n".join(lines)


def _separation_sentences(c: _Curves) -> list[str]:
    """``shaped`` against ``reference`` at the last budget, then from which budget it separates from each."""
    last = c.budgets[-1]
    shaped, reference = c.by_budget[c.shaped][last], c.by_budget[c.reference][last]
    change = percent_shorter(reference["mean_length"]["mean"], shaped["mean_length"]["mean"])
    points = 100 * (shaped["accuracy"]["mean"] - reference["accuracy"]["mean"])
    sentences = [f"At {last:,} rollouts per run {c.labels[c.shaped]}'s greedy answers are {shorter_text(change)} than "
                 f"{c.labels[c.reference]}'s at {points:+.1f} points of accuracy (mean of the seeds)."]
    for name in (c.reference, c.control):
        if name not in c.by_budget:
            continue
        what = c.labels[name] if name == c.reference else f"the {c.labels[name]} control"
        first = c.separates_from(name)
        sentences.append(f"They separate from {what}'s beyond the seed noise from {first:,} rollouts on."
                         if first is not None else
                         f"They do not separate from {what}'s beyond the seed noise at every budget up to {last:,}.")
    return sentences


def onsets_text(grid: Mapping, shaped: str = "sa-grpo", reference: str = "grpo") -> str:
    """The sentence that names, seed by seed, the budget from which ``shaped``'s greedy answers stay at
    least C1's 20% shorter than ``reference``'s mean (:func:`shortening_onsets` on the grid's
    ``budget_curve``)."""
    curves = grid["budget_curve"]
    onsets = shortening_onsets(curves[shaped], curves[reference], 1 - C1_MIN_LENGTH_REDUCTION)
    last = max(e["rollouts"] for e in curves[shaped])
    seeds = grid["methods"][shaped].get("seeds", range(len(onsets)))
    labels = {name: grid["methods"][name]["label"] for name in (shaped, reference)}
    return (f"Seed by seed, the budget from which {labels[shaped]}'s answers stay {_C1_PERCENT} "
            f"shorter than {labels[reference]}'s mean: " + ", ".join(
                f"seed {s} " + (f"{b:,}" if b else f"none up to {last:,}") for s, b in zip(seeds, onsets)) + ".")


# ---------------------------------------------------------------- the cost table and the shipped model
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
            f"{100 * logic['accuracy']:.1f}% of {logic['n']}: chance is 50%, so the grid's logic-test rows "
            "(`docs/grid.md`) say nothing about logic (the lookup by name that logic needs is not learnt at this "
            "scale, `docs/logic_attempts.md`).")


# ---------------------------------------------------------------- the grid on the previous model
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


# ---------------------------------------------------------------- more seeds, a longer budget
def replicate_text(grid: dict, replicate: dict, dataset: str = "arith-test") -> str:
    """Markdown: C1 on the replicate's seeds (its claims row), its per-seed greedy lengths and shortening
    onsets, and C1's length test over the seeds of ``grid`` and ``replicate`` pooled (Welch's test, as
    ``claims.compare_seeds``): more seeds, the same criterion's test, reported beside the fixed verdicts."""
    c1 = claim_row(replicate, "C1")
    evals = {name: [g["methods"][name]["eval"][dataset] for g in (grid, replicate)] for name in ("grpo", "sa-grpo")}
    labels = {name: replicate["methods"][name]["label"] for name in evals}

    def per_seed(name: str, key: str, scale: float = 1.0) -> str:
        return ", ".join(f"{scale * v:.1f}" for v in evals[name][1][key]["per_seed"])

    pooled = {name: {key: [v for e in evals[name] for v in e[key]["per_seed"]] for key in ("mean_length", "accuracy")}
              for name in evals}
    length = compare_seeds(pooled["sa-grpo"]["mean_length"], pooled["grpo"]["mean_length"])
    accuracy = compare_seeds(pooled["sa-grpo"]["accuracy"], pooled["grpo"]["accuracy"])
    mean = {name: sum(pooled[name]["mean_length"]) / len(pooled[name]["mean_length"]) for name in pooled}
    seeds = {name: [s for g in (grid, replicate) for s in g["methods"][name]["seeds"]] for name in evals}
    last = max(e["rollouts"] for e in replicate["budget_curve"]["sa-grpo"])
    return (f"Seeds {', '.join(map(str, replicate['methods']['sa-grpo']['seeds']))}, {last:,} rollouts per run "
            f"({replicate['wall_seconds'] / 60:.1f} min on 2 cores, `docs/grid_replicate_seeds_345.json`): "
            f"C1 **{VERDICT_WORDS[c1['status']]}** ({measured(c1)}). Greedy {dataset} lengths per seed: "
            f"{labels['sa-grpo']} {per_seed('sa-grpo', 'mean_length')} tok, {labels['grpo']} "
            f"{per_seed('grpo', 'mean_length')} tok; accuracy {per_seed('sa-grpo', 'accuracy', 100)} against "
            f"{per_seed('grpo', 'accuracy', 100)}%. {onsets_text(replicate)}\n\n"
            f"Pooled with the grid's seeds ({len(seeds['sa-grpo'])} seeds per method: {', '.join(map(str, seeds['sa-grpo']))}), "
            f"an analysis beside the fixed three-seed criterion, not in place of it: {labels['sa-grpo']} "
            f"{mean['sa-grpo']:.1f} tok against {labels['grpo']} {mean['grpo']:.1f} tok "
            f"({shorter_text(percent_shorter(mean['grpo'], mean['sa-grpo']))}; {test_text(length, 'tok')}); "
            f"accuracy {test_text(accuracy, 'points', 100)}. Over both grids {_switched_text(grid, replicate, last)}.")


def rerun_text(first: Mapping, second: Mapping, methods: Sequence[str] = ("grpo", "sa-grpo"),
               dataset: str = "arith-test") -> str:
    """Whether two ``sar compare`` JSONs that trained the same runs (same settings, the seeds they share) agree
    run by run: the largest difference in greedy accuracy and mean length on ``dataset`` over every
    evaluation of the budget curve, the final one included, and the machines they ran on."""
    worst = {"accuracy": 0.0, "mean_length": 0.0}
    runs = 0
    for method in methods:
        a, b = ({e["rollouts"]: e for e in g["budget_curve"][method]} for g in (first, second))
        seeds_a, seeds_b = first["methods"][method]["seeds"], second["methods"][method]["seeds"]
        shared = [seed for seed in seeds_a if seed in seeds_b]
        runs += len(shared)
        for rollouts in set(a) & set(b):
            for key in worst:
                values_a, values_b = a[rollouts][key]["per_seed"], b[rollouts][key]["per_seed"]
                if len(values_a) != len(seeds_a) or len(values_b) != len(seeds_b):
                    continue   # the base model's single entry at 0 rollouts
                for seed in shared:
                    worst[key] = max(worst[key], abs(values_a[seeds_a.index(seed)] - values_b[seeds_b.index(seed)]))
    machines = " and ".join(dict.fromkeys(f"{g['machine'].get('cpu_cores', '?')} {g['machine'].get('cpu', 'CPU')} cores"
                                          for g in (first, second)))
    same = worst["accuracy"] == 0 and worst["mean_length"] == 0
    return _wrap(f"{runs} runs in both ({', '.join(methods)}; {machines}): the largest difference between the two "
                 f"trainings of a run, over every greedy evaluation along training, is {100 * worst['accuracy']:.1f} "
                 f"points of accuracy and {worst['mean_length']:.1f} tokens of mean length"
                 + (": each run came out the same, a function of its seed and settings on this machine." if same
                    else "."))


def _switched_text(grid: dict, replicate: dict, last: int) -> str:
    """How many SA-GRPO seeds of both grids stay C1's margin shorter than GRPO from some budget on."""
    onsets = [b for g in (grid, replicate) for b in shortening_onsets(
        g["budget_curve"]["sa-grpo"], g["budget_curve"]["grpo"], 1 - C1_MIN_LENGTH_REDUCTION)]
    switched = sorted(b for b in onsets if b is not None)
    if not switched:
        return f"none of the {len(onsets)} SA-GRPO seeds stays {_C1_PERCENT} shorter than GRPO"
    return (f"{len(switched)} of the {len(onsets)} SA-GRPO seeds stay {_C1_PERCENT} shorter than GRPO from some "
            f"budget on ({switched[0]:,}-{switched[-1]:,} rollouts), the other {len(onsets) - len(switched)} not up "
            f"to {last:,}")


def extension_text(extended: dict, before: int, dataset: str = "arith-test") -> str:
    """Markdown: the answers to ``docs/budget_extension.md``'s questions from a grid trained past
    ``before`` rollouts per run: which SA-GRPO seeds that had not shortened by ``before`` did later (Q1),
    C1 at the end over every seed (Q2), the accuracy at ``before`` and at the end (Q3), and whether a
    GRPO seed shortened by C1's margin from its own length at ``before`` (Q4)."""
    at = {name: {e["rollouts"]: e for e in curve} for name, curve in extended["budget_curve"].items()}
    last = max(at["sa-grpo"])
    labels = {name: extended["methods"][name]["label"] for name in ("grpo", "sa-grpo")}
    c1, c6 = claim_row(extended, "C1"), claim_row(extended, "C6")
    accuracy = {(name, b): f"{100 * at[name][b]['accuracy']['mean']:.1f}%" for name in labels for b in (before, last)}
    q3 = (f"Greedy accuracy from {before:,} to {last:,} rollouts: {labels['grpo']} {accuracy['grpo', before]} → "
          f"{accuracy['grpo', last]}, {labels['sa-grpo']} {accuracy['sa-grpo', before]} → {accuracy['sa-grpo', last]} "
          f"(base model {100 * extended['base'][dataset]['accuracy']:.1f}%).")
    return "\n".join([
        f"- **Q1, the lagging seeds.** {_lagging_seeds_text(extended, before, last)}",
        f"- **Q2, C1 at {last:,} over {len(extended['methods']['sa-grpo']['seeds'])} seeds: "
        f"{VERDICT_WORDS[c1['status']]}** ({measured(c1)}). {_last_lengths_text(at, labels, last)}",
        f"- **Q3, accuracy.** {q3}",
        f"- **Q4, GRPO.** {_grpo_shortening_text(extended, at, labels, before, last, dataset)}",
        f"- **Beside the questions, C6 at {last:,}: {VERDICT_WORDS[c6['status']]}** ({measured(c6)}).",
        f"\n{extended['wall_seconds'] / 60:.1f} min on {extended['machine']['cpu_cores']} cores "
        f"({extended['machine']['cpu']}) for the {extended['runs_trained']} runs "
        f"({extended['settings']['steps']} steps each) and every evaluation (`docs/grid_budget_19200.json`)."])


def _lagging_seeds_text(extended: dict, before: int, last: int) -> str:
    """Q1: the SA-GRPO seeds not C1's margin shorter by ``before`` and from which budget each later was."""
    curves, margin = extended["budget_curve"], 1 - C1_MIN_LENGTH_REDUCTION
    early = shortening_onsets([e for e in curves["sa-grpo"] if e["rollouts"] <= before],
                              [e for e in curves["grpo"] if e["rollouts"] <= before], margin)
    late = shortening_onsets(curves["sa-grpo"], curves["grpo"], margin)
    lagging = [(s, b) for s, a, b in zip(extended["methods"]["sa-grpo"]["seeds"], early, late) if a is None]
    switched = [f"seed {s} from {b:,}" for s, b in lagging if b is not None]
    return (f"Of the {len(lagging)} SA-GRPO seeds that had not shortened by {before:,} rollouts "
            f"({', '.join(str(s) for s, _ in lagging)}), {len(switched)} did by {last:,}"
            + (f" ({'; '.join(switched)})" if switched else "") + ". " + onsets_text(extended))


def _last_lengths_text(at: Mapping, labels: Mapping, last: int) -> str:
    """Q2: SA-GRPO's length per seed at the end, and whether its longest is shorter than GRPO's shortest."""
    shaped = at["sa-grpo"][last]["mean_length"]["per_seed"]
    reference = at["grpo"][last]["mean_length"]["per_seed"]
    return (f"{labels['sa-grpo']}'s lengths per seed at {last:,}: " + ", ".join(f"{v:.1f}" for v in shaped) + " tok"
            + (f": its longest seed is shorter than {labels['grpo']}'s shortest ({min(reference):.1f} tok)."
               if max(shaped) < min(reference) else "."))


def _grpo_shortening_text(extended: dict, at: Mapping, labels: Mapping, before: int, last: int, dataset: str) -> str:
    """Q4: GRPO's length per seed at ``before`` and at the end, which seeds shortened by C1's margin, and
    each method's share of greedy answers cut at the token limit at the end."""
    grpo_before = at["grpo"][before]["mean_length"]["per_seed"]
    grpo_last = at["grpo"][last]["mean_length"]["per_seed"]
    shortened = [s for s, a, b in zip(extended["methods"]["grpo"]["seeds"], grpo_before, grpo_last)
                 if b <= (1 - C1_MIN_LENGTH_REDUCTION) * a]
    cut = "; ".join(f"{labels[name]} " + ", ".join(
        f"{100 * t:.0f}%" for t in extended["methods"][name]["eval"][dataset]["truncation_rate"]["per_seed"])
        for name in ("grpo", "sa-grpo"))
    return (f"{labels['grpo']}'s lengths per seed at {before:,} and {last:,}: "
            + ", ".join(f"{a:.1f} → {b:.1f}" for a, b in zip(grpo_before, grpo_last)) + " tok; "
            + (f"seeds {', '.join(map(str, shortened))}" if shortened else "no seed")
            + f" shortened by {_C1_PERCENT} or more."
            + f" Share of greedy answers cut at the {extended['settings']['max_new_tokens']}-token limit at {last:,}, "
            f"per seed: {cut}.")


def regime_text(study: Mapping, grid: Mapping) -> str:
    """Why RL lowers greedy accuracy on this testbed, from the regime study (``docs/regime_pilots.json``,
    written by ``scripts/regime_pilots.py table``): how many of its runs end below the base model's held-out
    greedy accuracy and above its sampled accuracy (the grid's base model), where the choosing rule's regime
    ends; then what the whole grid, trained at the grid's settings, cost (``grid``: ``sar compare``'s JSON)."""
    base = study["base"]["accuracy"]
    base_sampled = grid["base"]["arith-test"]["sampled_accuracy"]
    runs = [run for pilot in study["pilots"].values() for run in pilot["runs"].values()]
    below = sum(run["greedy_accuracy"][-1] < base for run in runs)
    sampled_up = sum(run["sampled_accuracy"] > base_sampled for run in runs)
    name = study["ranking"][0]
    chosen = study["stage_c"][name]
    s, machine = grid["settings"], grid.get("machine", {})
    cost = (f" The whole grid ({grid['runs_trained'] + grid['runs_cached']} runs) took {grid['wall_seconds'] / 60:.1f} "
            f"min on {machine.get('cpu_cores', '?')} {machine.get('cpu', 'CPU')} cores"
            + (f", {grid['runs_cached']} of its runs reused" if grid["runs_cached"] else "") + "."
            if "wall_seconds" in grid else "")
    return _wrap(f"Why RL lowers greedy accuracy here: in a study of eight training regimes ([docs/regime.md]"
                 f"(docs/regime.md)), {below} of its {len(runs)} runs end below the base's {100 * base:.1f}% "
                 f"greedy accuracy, while {sampled_up} end above its {100 * base_sampled:.1f}% sampled "
                 f"accuracy. Its rule chose {name}, the grid's setting (lr {s['learning_rate']:g}, "
                 f"{s['questions_per_step']} questions per step): it ended {100 * chosen['r1_shortfall']:.1f} points "
                 f"below the base, and {chosen['switched']} of its {chosen['seeds']} SA-GRPO seeds switched to "
                 f"concise answers: the fall comes with how far the weights move, and so does SAR's switch.{cost}")


R1_MAX_POINTS_BELOW = 3.0   # docs/regime.md's R1: at no evaluation more than 3 points below the base model
R2_MIN_SEEDS = 4            # R2: at least 4 of 5 SA-GRPO seeds 20% shorter than GRPO's mean
R3_MAX_MINUTES = 100.0      # R3: the whole default grid within 100 minutes on 2 cores


def regime_criteria(grid: Mapping, dataset: str = "arith-test") -> str:
    """Markdown: docs/regime.md's criteria R1-R3 judged on the default grid (``sar compare``'s JSON), one row each:
    R1 from the budget curve's means against the base model, R2 from the SA-GRPO seeds that switched and C1's
    verdict, R3 from the grid's wall time (measured only when no run was reused)."""
    base = grid["base"][dataset]["accuracy"]
    r1, r1_ok = [], True
    for name in ("grpo", "sa-grpo"):
        means = [e["accuracy"]["mean"] for e in grid["budget_curve"][name] if e["rollouts"] > 0]
        final, lowest = means[-1], min(means)
        r1_ok &= final >= base and 100 * (base - lowest) <= R1_MAX_POINTS_BELOW
        r1.append(f"{grid['methods'][name]['label']} final {100 * final:.1f}%, lowest {100 * lowest:.1f}%")
    seeds = switched_seeds(grid, dataset=dataset)["seeds"].values()
    shorter = sum(x["switched"] for x in seeds)
    c1 = claim_row(grid, "C1")
    needed = min(R2_MIN_SEEDS, len(seeds))
    minutes = grid["wall_seconds"] / 60
    whole = grid.get("runs_cached", 0) == 0
    rows = [("R1: final greedy accuracy at least the base model's, never more than 3 points below it",
             f"base {100 * base:.1f}%; " + "; ".join(r1), _holds_word(r1_ok)),
            ("R2: SA-GRPO 20% shorter than GRPO's mean on 4 of 5 seeds, and C1 holds",
             f"{shorter} of {len(seeds)} seeds ({sum(x['onset'] is not None for x in seeds)} stayed below the line "
             f"to the end); C1 {VERDICT_WORDS[c1['status']]}", _holds_word(shorter >= needed and c1["status"] == "holds")),
            (f"R3: the whole grid within {R3_MAX_MINUTES:.0f} minutes on 2 cores",
             f"{minutes:.1f} min on {grid['machine'].get('cpu_cores', '?')} cores"
             + ("" if whole else f" ({grid['runs_cached']} runs reused: not the whole grid's time)"),
             _holds_word(minutes <= R3_MAX_MINUTES) if whole else "not measured")]
    return "\n".join(["| criterion | measured | verdict |", "|---|---|---|"]
                     + [f"| {a} | {b} | **{c}** |" for a, b, c in rows])


def _holds_word(ok: bool) -> str:
    return "met" if ok else "not met"


# what each notebook teaches, for the README's notebook table
NOTEBOOK_TOPICS = {
    "01_perplexity_math": "logits → token log-probs → perplexity; ppl(a\\|q) vs ppl(a); SAR's algebra; the per-token "
                          "information gain v_t; what the context choice changes",
    "02_sar_quality_ranking": "six answer types over 200 problems; SAR per type; how often SAR ranks the better answer "
                              "first, against −ppl(a\\|q), −length and self-certainty",
    "03_grpo_lora_4bit_training": "GRPO vs SA-GRPO live for a few steps (rewards, advantages, curves, resuming); then "
                                  "the grid's result from its shipped per-seed adapters, and SAR's switch",
    "04_ood_evaluation": "the shipped adapters and the base model on in-domain and out-of-domain sets; which sets are "
                         "above their floor; accuracy-vs-length plots",
}


def notebooks_table(times: Mapping[str, Mapping]) -> str:
    """The README's notebook table: each notebook, what it teaches (:data:`NOTEBOOK_TOPICS`) and the
    seconds of its last ``sar demo`` run (``figures/demo_times.json``, ``demo.record_time``), with the total."""
    lines = ["| notebook | what it teaches | CPU time (tiny model, 2 cores) |", "|---|---|---|"]
    for name, topic in NOTEBOOK_TOPICS.items():
        seconds = times.get(name, {}).get("seconds")
        lines.append(f"| `{name}` | {topic} | {'—' if seconds is None else f'{seconds:.0f} s'} |")
    total = sum(times[name]["seconds"] for name in NOTEBOOK_TOPICS if name in times)
    lines.append(f"| all four (`sar demo`) | | {total / 60:.1f} min |")
    return "\n".join(lines)


def chosen_regime_claims(grid: Mapping, claim_ids: Sequence[str] = ("C1", "C8")) -> str:
    """The claims ``claim_ids`` of a grid of GRPO and SA-GRPO alone (``docs/grid_regime_q32_5seeds.json``:
    the regime study's choice with five seeds) as the claims table, with its settings in one line."""
    s = grid["settings"]
    head = (f"GRPO and SA-GRPO, seeds {', '.join(map(str, s['seeds']))}: {s['steps']} steps of "
            f"{s['questions_per_step']} questions x {s['group_size']} answers ({rollouts_per_run(grid):,} rollouts "
            f"per run), lr {s['learning_rate']:g}; {grid['wall_seconds'] / 60:.1f} min with "
            f"{grid['runs_cached']} of its runs reused from the study.")
    rows = [row for row in grid["claims"] if row["id"] in claim_ids]
    return head + "\n\n" + claims_markdown(rows)
