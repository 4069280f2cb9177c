# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-papermill,-execution
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -papermill
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Out of domain: accuracy, length and reasoning behaviours
#
# The paper's Pareto claim and its last two qualitative claims (`docs/paper.md` §5): at every amount of length
# reduction SA-GRPO keeps accuracy where the length penalties O1-pruner and ER lose it; SA-GRPO **keeps "advanced
# reasoning behaviours"** (verification, backtracking, enumeration) that those penalties suppress; and it
# **generalises out of domain** (trained on math, evaluated on logic). The two penalties, each trained as
# `R_VR + α·r` with `L` an answer's length in tokens (`docs/paper.md` §2): **O1-pruner** gives every answer
# `r = clip((L̄ − L) / L, −1, 1)`, `L̄` the mean length of its group (the answers to the same question); **ER**
# (efficient reasoner) gives a correct answer `r = −(2·sigmoid((L − μ_c) / σ_c) − 1)`, `μ_c` and `σ_c` the mean and
# standard deviation of the lengths of the group's correct answers, and a wrong one 0. This notebook evaluates, live, the models the
# grid of `sar compare` trained for 100 steps on arithmetic only (their LoRA adapters ship with the package,
# `sar_lib.lab.shipped`; notebook 03 shows their training) and the base model, on:
#
# | set | what it is | domain |
# |---|---|---|
# | `arith-test` | held-out synthetic arithmetic word problems, like the training set | in-domain |
# | `claim-test` | True/False claims about held-out word problems ("Tom has more than 10 apples."), a family of the pretraining corpus that RL never trains on | OOD (task format) |
# | `symbolic-test` | the same problems with other names and numbers and an irrelevant sentence (GSM-Symbolic-style) | near OOD |
# | `logic-test` | True/False questions over chains of rules (ProntoQA-style) with made-up concept names that pretraining never used | OOD |
# | GSM8K, GSM-Symbolic P2, ProntoQA | the real benchmarks, a few problems each, when the project's data folder is present | real |
#
# **What you'll learn**
#
# 1. how to evaluate trained adapters on several sets with a cached runner (`shipped.evaluate_shipped`);
# 2. which OOD sets can show anything on this model: accuracy against chance, and the floor rule;
# 3. accuracy-vs-length Pareto plots: the shipped models, and the grid with error bars over seeds;
# 4. counting reasoning behaviours in answers (`analysis.count_behaviours`) and what such counts can and cannot show;
# 5. the verdict: the Pareto, collapse and out-of-domain claims (C2, C3, C6) on the testbed.
#
# Nothing trains here (the last cell prints this run's time); the evaluations are cached in `RUNS_DIR`.

# %% tags=["parameters"]
PROFILE = "tiny-cpu"          # sar_lib.models.PROFILES: tiny-cpu | laptop-8gb | gpu-12gb
MODEL = "tiny"                # the base model the shipped adapters were trained on ("tiny": the embedded one)
METHODS = ("grpo", "sa-grpo", "shuffled-sar", "o1-0.1", "er-0.1")   # shipped adapters evaluated here
EVAL_SIZE = 100               # problems per synthetic set (arith-test, claim-test, symbolic-test, logic-test)
WORKERS = 2                   # models evaluated at the same time (processes)
BENCHMARK_LIMIT = 30          # problems per real benchmark file; 0 skips them
DATA_DIR = None               # folder of gsm8k_test.jsonl, ...; None: the project's shared/data next to the repo
COMPARE_JSON = "../figures/grpo_vs_sar.json"  # results of `sar compare`: the grid's Pareto plot and claims
SHIPPED_DIR = None            # the grid's adapters (`sar compare --ship-adapters DIR`); None: those in the package
RUNS_DIR = "../runs/notebooks/ood"  # the cached evaluations
FIGURES_DIR = "../figures"    # figures and 04_summary.json go here

# %%
import json
import time
from pathlib import Path

from IPython.display import Markdown, display

from sar_lib import data, models
from sar_lib.lab import analysis, claims, compare, grid, plots, shipped, verdicts
from sar_lib.lab.demo import format_table, write_summary

started = time.perf_counter()
benchmarks, missing = data.available_benchmarks(DATA_DIR) if BENCHMARK_LIMIT else ({}, [])
for path in missing:
    print(f"note: {path} is absent; that benchmark is skipped (the project's data folder is not part of a clone)")
synthetic_sets = dict.fromkeys(data.HELD_OUT_SETS, EVAL_SIZE)
wanted = {**synthetic_sets, **dict.fromkeys(benchmarks.values(), BENCHMARK_LIMIT)}
names = {**{s: s for s in synthetic_sets}, **{path: name for name, path in benchmarks.items()}}
print("evaluation sets:", ", ".join(f"{names[s]} ({n})" for s, n in wanted.items()))

# %% [markdown]
# ## 1. The models
#
# `shipped.read_manifest` says which run each adapter comes from (method, seed, steps, the answers it trained on).
# `shipped.evaluate_shipped` loads each adapter on the base model and answers every set greedily, `WORKERS` models
# at a time; `grid.ensure_base` does the same for the untrained base model. Each evaluation is cached in its
# model's folder (`eval_<set>.json`, the answers in `eval_<set>_records.jsonl`), keyed by the adapter's checksum:
# running the cell again returns at once.

# %%
adapters = SHIPPED_DIR or shipped.SHIPPED_DIR
manifest = shipped.read_manifest(adapters)
if any(manifest[m]["model"] != MODEL for m in METHODS):
    raise ValueError(f"the shipped adapters in {adapters} were trained on {manifest[METHODS[0]]['model']!r}, not "
                     f"MODEL = {MODEL!r}: train and ship adapters for it with `sar compare --model {MODEL} "
                     "--ship-adapters DIR`, then set SHIPPED_DIR = DIR")
grid_results, grid_note = verdicts.read_grid(COMPARE_JSON)
start = time.perf_counter()
evals = shipped.evaluate_shipped(METHODS, wanted, RUNS_DIR, directory=adapters, workers=WORKERS)
evals["base"] = grid.ensure_base(MODEL, RUNS_DIR, wanted, profile=PROFILE)
wall = time.perf_counter() - start
print(f"{wall:.0f} s to evaluate {len(evals)} models on {len(wanted)} sets (cached evaluations return at once)")
labels = {m: grid.METHODS[m].label for m in METHODS} | {"base": "base model"}
colors = {grid.METHODS[m].label: grid.METHODS[m].color for m in METHODS} | {"base model": plots.BASE_COLOR}
folders = {m: str(Path(RUNS_DIR) / m) for m in METHODS} | {"base": str(Path(RUNS_DIR) / "base")}
print(format_table(["method", "reward", "alpha", "seed", "steps", "sampled answers trained on"],
                   [[labels[m], grid.METHODS[m].reward, grid.METHODS[m].alpha, manifest[m]["seed"],
                     manifest[m]["steps"], manifest[m]["rollouts"]] for m in METHODS]))

# %% [markdown]
# ## 2. Accuracy and length on every set
#
# Every model is one trained run (the grid's first seed): a difference of a few points on `EVAL_SIZE` problems can
# be noise; section 3 shows the seed spread the grid measured. Greedy accuracy and mean answer length of each model
# on each set; the full per-set tables (the length of the correct answers, the share of answers cut at the token
# limit, "% shorter than GRPO") go to `04_summary.json`.

# %%
columns = ["model"] + [f"{names[s]} ({evals['base'][s]['n']})" for s in wanted]
print("greedy accuracy (%), number of problems in brackets")
print(format_table(columns, [[labels[m]] + [f"{100 * e[s]['accuracy']:.1f}" for s in wanted] for m, e in evals.items()]))
print("\nmean answer length (tokens)")
print(format_table(columns, [[labels[m]] + [f"{e[s]['mean_length']:.1f}" for s in wanted] for m, e in evals.items()]))
grid_base = (grid_results or {}).get("base", {}).get(grid.IN_DOMAIN)
here = evals["base"][grid.IN_DOMAIN]
if grid_base and grid_base["n"] > here["n"]:
    rest = (grid_base["accuracy"] * grid_base["n"] - here["accuracy"] * here["n"]) / (grid_base["n"] - here["n"])
    display(Markdown(
        f"The base model answers {100 * here['accuracy']:.1f}% of the {here['n']} {grid.IN_DOMAIN} problems here, "
        f"and {100 * grid_base['accuracy']:.1f}% in `sar compare`'s grid (`COMPARE_JSON`), the figure notebook 03 and "
        f"the README quote: the grid evaluates {grid_base['n']} problems, this notebook the first `EVAL_SIZE` = "
        f"{here['n']} of the same set. The numbers differ because they count different problems: on problems "
        f"{here['n'] + 1}-{grid_base['n']} the base model answers {100 * rest:.1f}%."))

# %% [markdown]
# ### Which sets can show anything: the floor
#
# A claim about keeping accuracy needs a model that has accuracy to keep. `claims.floor_check` puts a set **at its
# floor** for a model when, for True/False (or A-D) answers, the 95% interval of its accuracy (Wilson) reaches down
# to chance (50%, or 25%) or lies below it, and for numeric answers when it is below 10%. A model below chance is
# not guessing: it answers worse than a coin, systematically (on logic-test the base model tends to answer with the
# concept its proof wrongly copied). Either way a comparison of methods there measures a few items, and a claim
# judged there is **untestable here**. In the figure below, a set where no model is above its floor is marked **at
# floor**: its bars are grey and hatched, and the tallest of them is no result (a few items above chance on a
# True/False set is luck).

# %%
card = models.resolve_model(MODEL) / "card.json"
card_config = json.loads(card.read_text())["config"] if card.is_file() else {}
print("share of claims in the base model's pretraining corpus (model card):",
      "unknown (no card.json)" if not card_config else f"{card_config.get('claim_share', 0.0):.0%}")
floor_sets = []   # the sets where no model is above its floor
for s in wanted:
    floors = {m: claims.floor_check(e[s]["accuracy"], e[s]["n"], claims.answer_kind(names[s])) for m, e in evals.items()}
    above = [labels[m] for m, f in floors.items() if not f["at_floor"]]
    floor_sets += [] if above else [s]
    chance = "no chance level" if floors["base"]["chance"] is None else f"chance {100 * floors['base']['chance']:.0f}%"
    low, high = floors["base"]["interval"]
    print(f"{names[s]:16} base model {100 * evals['base'][s]['accuracy']:5.1f}% of {evals['base'][s]['n']} (95% "
          f"interval {100 * low:.1f}-{100 * high:.1f}%; {chance}): "
          + ("at its floor for every model" if not above else
             "above its floor for every model" if len(above) == len(evals) else f"above its floor for {', '.join(above)}"))
fig = plots.grouped_bars([names[s] for s in wanted],
                         {labels[m]: [100 * e[s]["accuracy"] for s in wanted] for m, e in evals.items()},
                         ylabel="greedy accuracy (%)", value_labels=True, fmt="{:.0f}", colors=colors,
                         marked=[names[s] for s in floor_sets], marked_label="at floor",
                         title=f"Accuracy in and out of domain ({MODEL}; adapters trained on arithmetic only)")
plots.save_figure(fig, "04_accuracy_by_set", FIGURES_DIR)

# %% [markdown]
# `claim-test` is the OOD family this testbed was built to have: its True/False statements need the arithmetic the
# model learnt and one comparison, and no lookup of one fact among several by name, the skill logic-test needs and a
# model of this size does not learn on a CPU budget (`docs/logic_attempts.md`). Its pretraining answers come in the
# arithmetic styles (verbose with the question-free re-check, concise, answer-only), so a shorter answer there can
# come from SAR's push carried over from arithmetic. A model pretrained without claims (the share printed above)
# answers them with a number, and the set is then at its floor. On the real benchmarks the tiny model is expected
# to be at its floor: it has never seen their vocabulary or their length; they are here so that the same cells work
# for a real model.
#
# What the answers look like on two OOD sets (questions where the models' answers differ come first):

# %%
for s in ("claim-test", "logic-test"):
    example = analysis.example_answers({labels[m]: folders[m] for m in ("base", "grpo", "sa-grpo")}, s, 1)[0]
    print(f"{s}: {example['question']}\n   gold: {example['gold']}")
    for name, answer in example["answers"].items():
        print(f"  [{name}] ({answer['length']} tokens, {'correct' if answer['correct'] else 'wrong'}) "
              f"{answer['response']}")
    print()
styles = {labels[m]: analysis.answer_styles([folders[m]], "logic-test")["greedy"] for m in evals}
print("logic-test: share of the greedy answers written in an arithmetic style (an equation in a logic proof):")
print(format_table(["model", "verbose", "concise", "answer only", "other"],
                   [[name, *shares.values()] for name, shares in styles.items()]))

# %% [markdown]
# The grader reads only the final "True" or "False". An answer that writes an equation into a logic proof and ends
# with the right word counts as correct: on a True/False set at chance level about half of all answers are right
# by luck, which is one more reason to read an accuracy there against its interval, never alone.
#
# ## 3. The Pareto view: accuracy against length
#
# Each method is a point per evaluation set: up is more accurate, left is shorter. The paper's picture (its
# "performance gain vs length reduction" figure): SA-GRPO moves left without moving down, O1-pruner and ER move left
# and down. The star is the base model before training. First the shipped models, one run each, evaluated above:

# %%
points = {s: {labels[m]: [(evals[m][s]["mean_length"], evals[m][s]["accuracy"])] for m in METHODS}
          for s in synthetic_sets}
fig = plots.accuracy_vs_length(points, colors=colors, title="Shipped models (one run each), greedy, "
                                                            f"{EVAL_SIZE} problems per set",
                               reference={s: (evals["base"][s]["mean_length"], evals["base"][s]["accuracy"])
                                          for s in synthetic_sets})
plots.save_figure(fig, "04_pareto", FIGURES_DIR)

# %% [markdown]
# The grid's points (`COMPARE_JSON`): every seed a small dot, the mean of a method's seeds an open ring with error
# bars of ± one standard deviation over the seeds ("—" in the table for a method trained with one seed: no spread
# was measured). Where a method's seeds split, its ring sits between them, on no seed: read the dots. The accuracy
# axis never spans less than `plots.accuracy_vs_length`'s `min_accuracy_span`, so that a difference of a point or two
# does not look like a gap; a method far off the others (R_SA alone, whose answers collapse) would squash them, so
# it is drawn as a triangle at the axis' edge, at its true length, with its accuracy written beside it.

# %%
if grid_results is None:
    print(grid_note)
else:
    print(f"from {COMPARE_JSON}: {grid_results['command']!r}, model {grid_results['model']}, "
          f"{grid_results['settings']['steps']} steps, seeds {grid_results['settings']['seeds']}")
    print(compare.format_comparison(grid_results))
    fig = compare.accuracy_length_figure(grid_results, title=f"`sar compare` grid ({Path(COMPARE_JSON).name}), "
                                                             "mean ± std over seeds")
    plots.save_figure(fig, "04_pareto_grid", FIGURES_DIR)

# %% [markdown]
# ## 4. Reasoning behaviours
#
# Claim 3 of the paper is about *how* the answers reason. `analysis.count_behaviours` counts phrases of four
# behaviours in the greedy answers (case-insensitive, whole words; the patterns are `analysis.BEHAVIOUR_PATTERNS`):
#
# * **verification**: "check", "verify", "that is right", "correct.";
# * **backtracking**: "wait", "let me recompute / redo / reconsider ...", "actually";
# * **enumeration**: "first", "second", "then", "next", "finally", "step N";
# * **restatement**: "the problem says", "we are told", "the question asks", ...: copying the question, which a
#   reward for "information from the question" could in principle encourage (notebook 02 probes this).
#
# For each model: the share of its in-domain answers with at least one phrase of the behaviour. The tiny model learned these
# phrases from its pretraining corpus (its concise and verbose styles), so a change after GRPO is a change in which
# learned style the policy prefers. The chart shows the behaviours that some answer used; the others are named
# below it.

# %%
behaviours = {m: {s: analysis.behaviour_counts([folders[m]], s) for s in synthetic_sets} for m in evals}
kinds = list(analysis.BEHAVIOUR_PATTERNS)
print(f"{grid.IN_DOMAIN}: share of answers with the behaviour (phrases per answer); the other sets: 04_summary.json")
print(format_table(["model"] + kinds,
                   [[labels[m]] + [f"{b[grid.IN_DOMAIN][k]['share']:.2f} ({b[grid.IN_DOMAIN][k]['per_answer']:.2f})"
                                   for k in kinds] for m, b in behaviours.items()]))
seen = [k for k in kinds if any(b[grid.IN_DOMAIN][k]["share"] > 0 for b in behaviours.values())]
absent = [k for k in kinds if k not in seen]
if seen:
    fig = plots.grouped_bars(seen, {labels[m]: [b[grid.IN_DOMAIN][k]["share"] for k in seen]
                                    for m, b in behaviours.items()},
                             ylabel="share of answers", ylim=(0, 1.1), value_labels=True, fmt="{:.2f}", colors=colors,
                             title=f"Reasoning behaviours in greedy answers ({grid.IN_DOMAIN})")
    plots.save_figure(fig, "04_reasoning_behaviours", FIGURES_DIR)
print(f"\nno {grid.IN_DOMAIN} answer of any model shows: {', '.join(absent) or '(every behaviour was seen)'}")

# %% [markdown]
# Phrase counts are a crude proxy: "then" counts as enumeration in "then 9 - 2 = 7", and a model can say "let me
# check" without checking. The paper counted behaviours with an LLM judge over long chains of thought; on a tiny
# model with short answers, the counts mainly tell which of its pretraining styles a policy drifts towards: the
# verbose style is the one with "Let me double-check.". Read them next to the lengths: fewer phrases with shorter
# answers is what any length pressure produces; the paper's claim is that SAR shortens answers *without* removing
# these phrases.
#
# ## 5. Verdict
#
# The shipped models are one seed each; the claims are judged on `sar compare`'s grid (`COMPARE_JSON`, several seeds
# for GRPO and SA-GRPO), with the rules of `sar_lib.lab.claims`: a difference is an effect only beyond the seed noise
# (a two-sided Welch test at 5% over the seeds), and a claim measured on a set at its floor is untestable here. The
# table gives each claim's criterion in short (in full, with the measured numbers: `sar_lib/lab/claims.py` and the
# grid's JSON); the shipped models' differences from GRPO, per set, go to `04_summary.json`.

# %%
versus_grpo = verdicts.versus_grpo_rows(evals, labels, METHODS, synthetic_sets)
verdict = verdicts.ood_verdict(grid=grid_results, grid_note=grid_note, grid_path=COMPARE_JSON, set_names=names,
                               floor_sets=floor_sets, versus_grpo=versus_grpo, shipped=manifest["sa-grpo"],
                               behaviours=behaviours, labels=labels, seen=seen, absent=absent)
display(Markdown(verdict.markdown))
summary_path = write_summary(
    FIGURES_DIR, "04_ood_evaluation", title=f"in-domain and OOD evaluation of the shipped models ({MODEL})",
    numbers={"wall seconds of the evaluation cell (this run)": round(wall, 1),
             "base model on logic-test (accuracy)": round(evals["base"]["logic-test"]["accuracy"], 3),
             "base model on claim-test (accuracy)": round(evals["base"]["claim-test"]["accuracy"], 3),
             f"base model on {grid.IN_DOMAIN} (accuracy, {here['n']} problems)": round(here["accuracy"], 3),
             "sets at their floor for every model": ", ".join(names[s] for s in floor_sets)},
    tables=[verdict.summary_table,
            {"title": "greedy accuracy per set", "columns": ["model"] + [names[s] for s in wanted],
             "rows": [[labels[m]] + [round(e[s]["accuracy"], 3) for s in wanted] for m, e in evals.items()]},
            {"title": "mean answer length per set (tokens)", "columns": ["model"] + [names[s] for s in wanted],
             "rows": [[labels[m]] + [round(e[s]["mean_length"], 1) for s in wanted] for m, e in evals.items()]},
            {"title": "mean length of the correct answers per set (tokens)",
             "columns": ["model"] + [names[s] for s in wanted],
             "rows": [[labels[m]] + [None if e[s]["mean_length_correct"] is None else round(e[s]["mean_length_correct"], 1)
                                     for s in wanted] for m, e in evals.items()]},
            {"title": "share of answers cut at the token limit, per set", "columns": ["model"] + [names[s] for s in wanted],
             "rows": [[labels[m]] + [round(e[s]["truncation_rate"], 3) for s in wanted] for m, e in evals.items()]},
            {"title": "against GRPO (shipped adapters; synthetic sets)",
             "columns": ["method", "set", "accuracy vs GRPO (points)", "% shorter than GRPO"],
             "rows": [[r["method"], r["set"], round(r["accuracy_points"], 1),
                       None if r["percent_shorter"] is None else round(r["percent_shorter"], 1)] for r in versus_grpo]},
            {"title": "share of answers with each behaviour, per synthetic set", "columns": ["model", "set"] + kinds,
             "rows": [[labels[m], s] + [round(b[s][k]["share"], 3) for k in kinds]
                      for m, b in behaviours.items() for s in synthetic_sets]}])
print(f"{summary_path}; this notebook ran in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Exercises
#
# Worked answers: `notebooks/solutions/04_ood_evaluation_solutions.ipynb`.
#
# 1. **Your own behaviour.** Add a "sub-goal" behaviour (e.g. `r"\bwe need to\b"`, `r"\bso now\b"`) and a
#    "re-check" behaviour (`r"\bdouble-check\b"`) to a copy of `analysis.BEHAVIOUR_PATTERNS` and pass it to
#    `analysis.count_behaviours(texts, patterns)`. Which method uses each most? Find two answers where your patterns
#    miscount and refine them.
# 2. **Harder OOD.** `synthetic.logic_problems(n, 0, min_hops=1, max_hops=1)` and `(..., min_hops=3, max_hops=4)`
#    build short and long rule chains. Evaluate the base model on both (`evaluate.evaluate`) and compare its accuracy
#    with chance using `claims.accuracy_interval`. Does it do better on one-hop chains?
# 3. **A baseline's curve.** Claim C2 compares SA-GRPO with each baseline's accuracy-vs-length curve through GRPO and
#    the baseline's runs at several α. Take O1-pruner at its other α (`"o1-0.03"`): evaluate its shipped adapter as
#    in section 1, or train it yourself (`compare.default_grid(..., methods=("grpo", "sa-grpo", "o1-0.03", "o1-0.1"))`,
#    as the answer key does), and draw the curve `claims.curve_accuracy` gives through GRPO and the two O1-pruner
#    points. Where does SA-GRPO sit against it?
# 4. **Which answers got shorter?** For SA-GRPO and GRPO, pair the answers to the same `arith-test` problems
#    (`runs.read_eval`) and plot SA-GRPO's length against GRPO's. Are the changes spread evenly, or concentrated on
#    the answers that were long (verbose style) before?
# 5. **How many items does an OOD set need?** With `claims.accuracy_interval`, find how many True/False items a model
#    slightly above chance (say 55% accuracy) needs before its 95% interval excludes 50%. Compare with `EVAL_SIZE`.
