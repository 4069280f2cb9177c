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
# **generalises out of domain** (trained on math, evaluated on logic). This notebook evaluates the base model and
# the policies trained in notebook 03 (GRPO, SA-GRPO), plus short O1-pruner and ER runs, on:
#
# | set | what it is | domain |
# |---|---|---|
# | `arith-test` | held-out synthetic arithmetic word problems, like the training set | in-domain |
# | `symbolic-test` | the same problems with other names and numbers and an irrelevant sentence (GSM-Symbolic-style) | near OOD |
# | `logic-test` | True/False questions over chains of rules (ProntoQA-style) with made-up concept names that pretraining never used | OOD |
# | GSM8K, GSM-Symbolic P2, ProntoQA | the real benchmarks, a few problems each, when the project's data folder is present | real |
#
# **What you'll learn**
#
# 1. how to evaluate checkpoints on several sets with one cached runner (`grid.run_grid`);
# 2. what logic-test can and cannot show on this model (its accuracy against chance);
# 3. accuracy-vs-length Pareto plots: this notebook's runs, and `sar compare`'s grid with error bars over seeds;
# 4. counting reasoning behaviours in answers (`analysis.count_behaviours`) and what such counts can and cannot show;
# 5. the verdict: the Pareto and out-of-domain claims on the testbed, and the regime that decides them.
#
# Notebook 03's runs are reused when it ran before with the same parameters; the two baseline runs train here (the
# last cell prints this run's time).

# %% tags=["parameters"]
PROFILE = "tiny-cpu"          # sar_lib.models.PROFILES: tiny-cpu | laptop-8gb | gpu-12gb
MODEL = "tiny"                # "tiny" (embedded), a local model dir, or a hub name such as get_profile(PROFILE).model
STEPS = 10                    # as notebook 03: its GRPO / SA-GRPO runs are reused when these settings match
SEED = 0
QUESTIONS_PER_STEP = 8
EVAL_SIZE = 100               # problems per synthetic set (arith-test, symbolic-test, logic-test)
EVAL_SAMPLES = 0              # as notebook 03
MAX_NEW_TOKENS = None         # answer budget; None: the profile's
MAX_PROMPT_TOKENS = None      # None: the profile's
WORKERS = 2                   # runs / evaluations at the same time (processes)
BASELINES = ("o1-0.1", "er-0.1")   # grid.METHODS trained here with the same settings; () to skip
BENCHMARK_LIMIT = 30          # problems per real benchmark file; 0 skips them
DATA_DIR = None               # folder of gsm8k_test.jsonl, ...; None: the project's shared/data next to the repo
COMPARE_JSON = "../figures/grpo_vs_sar.json"  # results of `sar compare`: the grid's Pareto plot and claims
RUNS_DIR = "../runs/notebooks"  # shared with notebook 03
FIGURES_DIR = "../figures"    # figures and 04_summary.json go here

# %%
import json
import time
from pathlib import Path

from IPython.display import Markdown, display

from sar_lib import analysis, compare, data, grid, models, plots, verdicts
from sar_lib.demo import format_table, write_summary

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
# `compare.default_grid` builds the runs as `sar compare` does (and as notebook 03 did); `grid.run_grid` trains
# what is missing and evaluates every model on every set, caching each evaluation in the run's folder
# (`eval_<set>.json` and the answers in `eval_<set>_records.jsonl`). The GRPO and SA-GRPO runs of notebook 03 are
# reused when `STEPS`, `SEED`, `QUESTIONS_PER_STEP` and the model match; otherwise they are trained here.
# O1-pruner and ER (`R = R_VR + α · r`, α from the paper's sweep, `docs/paper.md` §2) train with the same settings.

# %%
runs, eval_sets = compare.default_grid(RUNS_DIR, model=MODEL, profile=PROFILE, methods=("grpo", "sa-grpo", *BASELINES),
                                       seeds=(SEED,), steps=STEPS, eval_sets=wanted,
                                       questions_per_step=QUESTIONS_PER_STEP, eval_samples=EVAL_SAMPLES,
                                       max_new_tokens=MAX_NEW_TOKENS, max_prompt_tokens=MAX_PROMPT_TOKENS)
start = time.perf_counter()
results, base = grid.run_grid(runs, eval_sets, workers=WORKERS, base_model=MODEL, base_dir=RUNS_DIR, progress=False)
wall = time.perf_counter() - start
print(f"{wall:.0f} s; {sum(r['trained'] for r in results)} run(s) trained now, the others were cached")
summary = analysis.summarise(runs, results, base)   # what `sar compare` reports, for these runs
labels = {**{name: m["label"] for name, m in summary["methods"].items()}, "base": "base model"}
colors = {**compare.label_colors(summary["methods"]), "base model": plots.BASE_COLOR}
evals = {**{r["method"]: r["evals"] for r in results}, "base": base}
folders = {**{r["method"]: r["run_dir"] for r in results}, "base": str(Path(RUNS_DIR) / "base")}
for method in summary["methods"].values():
    print(f"{method['label']:22} reward {method['reward']}, alpha {method['alpha']:g}")

# %% [markdown]
# ## 2. Accuracy and length on every set
#
# "% shorter" is against GRPO (positive: shorter than GRPO's answers).

# %%
for s in eval_sets:
    print(f"\n{names[s]} (n = {evals['base'][s]['n']}, greedy, <= {evals['base'][s]['max_new_tokens']} new tokens)")
    print(format_table(["model", "accuracy", "mean length", "% shorter than GRPO", "mean length (correct)", "truncated"],
                       [[labels[m], e[s]["accuracy"], e[s]["mean_length"],
                         verdicts.percent_shorter(evals["grpo"][s]["mean_length"], e[s]["mean_length"]),
                         e[s]["mean_length_correct"] if e[s]["mean_length_correct"] is not None else float("nan"),
                         e[s]["truncation_rate"]] for m, e in evals.items()]))
fig = plots.grouped_bars([names[s] for s in eval_sets],
                         {labels[m]: [100 * e[s]["accuracy"] for s in eval_sets] for m, e in evals.items()},
                         ylabel="greedy accuracy (%)", value_labels=True, fmt="{:.0f}", colors=colors,
                         title=f"Accuracy in and out of domain ({MODEL}, {STEPS} training steps)")
plots.save_figure(fig, "04_accuracy_by_set", FIGURES_DIR)

# %% [markdown]
# ### What logic-test can show on this model
#
# `logic-test` answers are True/False and the set is balanced, so 50% is chance: a model that always says "True"
# scores about 50%. The embedded model did see logic in pretraining (short chains over made-up words of its own
# training vocabulary; the share is printed below), but logic-test uses other made-up concept names, and the
# model has to look the next rule up in the question. Whether it can, the base model's accuracy and its interval
# say:

# %%
card = models.resolve_model(MODEL) / "card.json"
card_config = json.loads(card.read_text())["config"] if card.is_file() else {}
logic_share = card_config.get("logic_share")
base_logic = evals["base"]["logic-test"]
low, high = verdicts.accuracy_interval(base_logic["accuracy"], base_logic["n"])
print(f"base model on logic-test: {100 * base_logic['accuracy']:.1f}% of {base_logic['n']} items correct, "
      f"95% interval {100 * low:.1f}-{100 * high:.1f}% (chance: 50%)")
print("share of logic chains in the pretraining corpus:",
      "unknown (no card.json)" if logic_share is None else f"{logic_share:.0%}")

# %% [markdown]
# When the interval holds 50%, the model is guessing on logic, and no change of a few points after training says
# anything about out-of-domain generalisation (a model that can do this task is issue 14 of the project). On the
# real benchmarks the tiny model is expected to score near zero: it has never seen their vocabulary or their
# length; they are here so that the same cell works unchanged for a real model (`MODEL =
# "Qwen/Qwen2.5-0.5B-Instruct"` with `PROFILE = "laptop-8gb"`).
#
# ## 3. The Pareto view: accuracy against length
#
# Each method is a point per evaluation set: up is more accurate, left is shorter. The paper's picture (its
# "performance gain vs length reduction" figure): SA-GRPO moves left without moving down, O1-pruner and ER move left
# and down. The star is the base model before training. First this notebook's runs, one seed each:

# %%
fig = compare.accuracy_length_figure(summary, datasets=list(synthetic_sets),
                                     title=f"Accuracy vs length after {STEPS} steps, seed {SEED} (one run per method)")
plots.save_figure(fig, "04_pareto", FIGURES_DIR)

# %% [markdown]
# One run per method and a few steps give one noisy point each. `sar compare` runs GRPO and SA-GRPO with three seeds
# (and each baseline at two α with one seed) for longer; when its results file is present, here are its points:
# each seed small, the mean large with error bars of ± one standard deviation over the seeds. The accuracy axis
# never spans less than `plots.accuracy_vs_length`'s `min_accuracy_span`, so that a difference of a point or two
# does not look like a gap.

# %%
grid_results, grid_note = verdicts.read_grid(COMPARE_JSON)
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
# For each method: the share of answers with at least one phrase of the behaviour. The tiny model learned these
# phrases from its pretraining corpus (its concise and verbose styles), so a change after GRPO is a change in which
# learned style the policy prefers. The chart shows the behaviours that some answer used; the others are named
# below it.

# %%
behaviours = {m: {s: analysis.behaviour_counts([folders[m]], s) for s in synthetic_sets} for m in evals}
kinds = list(analysis.BEHAVIOUR_PATTERNS)
for s in synthetic_sets:
    print(f"\n{s}: share of answers with the behaviour (phrases per answer)")
    print(format_table(["model"] + kinds,
                       [[labels[m]] + [f"{b[s][k]['share']:.2f} ({b[s][k]['per_answer']:.2f})" for k in kinds]
                        for m, b in behaviours.items()]))
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
# One answer per method to the same OOD question:

# %%
example = analysis.example_answers({labels[m]: folders[m] for m in evals}, "logic-test", 1)[0]
print(f"Q: {example['question']}\n   gold: {example['gold']}")
for name, answer in example["answers"].items():
    print(f"  [{name}] ({answer['length']} tokens, {'correct' if answer['correct'] else 'wrong'}) {answer['response']}")

# %% [markdown]
# ## 5. Verdict
#
# This notebook's runs are one seed and `STEPS` steps of a tiny model: differences of a few points on `EVAL_SIZE`
# problems are within the noise. The claims are tested on `sar compare`'s grid (`COMPARE_JSON`); the model card's
# premises say which regime the testbed is in.

# %%
versus_grpo = []
for m in [m for m in summary["methods"] if m != "grpo"]:
    for s in synthetic_sets:
        versus_grpo.append({"method": labels[m], "set": s,
                            "accuracy_points": 100 * (evals[m][s]["accuracy"] - evals["grpo"][s]["accuracy"]),
                            "percent_shorter": verdicts.percent_shorter(evals["grpo"][s]["mean_length"],
                                                                        evals[m][s]["mean_length"])})
print(format_table(["method", "set", "accuracy vs GRPO (points)", "% shorter than GRPO"],
                   [[r["method"], r["set"], r["accuracy_points"], r["percent_shorter"]] for r in versus_grpo]))
premises = verdicts.read_premises(card)
regime = verdicts.verbosity_regime(premises, grid.METHODS["sa-grpo"].alpha)
display(Markdown(verdicts.ood_verdict(grid=grid_results, grid_note=grid_note, grid_path=COMPARE_JSON, regime=regime,
                                      versus_grpo=[r for r in versus_grpo if r["method"] == labels["sa-grpo"]],
                                      logic={"accuracy": base_logic["accuracy"], "n": base_logic["n"],
                                             "logic_share": logic_share},
                                      ood_base={s: evals["base"][s] for s in synthetic_sets
                                                if s not in (grid.IN_DOMAIN, "logic-test")},
                                      behaviours_absent=absent, steps=STEPS)))
summary_path = write_summary(
    FIGURES_DIR, "04_ood_evaluation", title=f"in-domain and OOD evaluation after {STEPS} steps ({MODEL})",
    numbers={"wall seconds of the grid cell (this run)": round(wall, 1),
             "base model on logic-test (accuracy)": round(base_logic["accuracy"], 3)},
    tables=[{"title": "greedy accuracy per set", "columns": ["model"] + [names[s] for s in eval_sets],
             "rows": [[labels[m]] + [round(e[s]["accuracy"], 3) for s in eval_sets] for m, e in evals.items()]},
            {"title": "mean answer length per set (tokens)", "columns": ["model"] + [names[s] for s in eval_sets],
             "rows": [[labels[m]] + [round(e[s]["mean_length"], 1) for s in eval_sets] for m, e in evals.items()]},
            {"title": f"share of answers with each behaviour ({grid.IN_DOMAIN})", "columns": ["model"] + kinds,
             "rows": [[labels[m]] + [round(b[grid.IN_DOMAIN][k]["share"], 3) for k in kinds]
                      for m, b in behaviours.items()]}])
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
# 2. **Harder OOD.** `synthetic.logic_problems(n, SEED, min_hops=1, max_hops=1)` and `(..., min_hops=3, max_hops=4)`
#    build short and long rule chains. Evaluate the base model on both (`evaluate.evaluate`) and compare its accuracy
#    with chance using `verdicts.accuracy_interval`. Does it do better on one-hop chains?
# 3. **A baseline's curve.** Claim C2 compares SA-GRPO with each baseline's accuracy-vs-length curve through GRPO and
#    the baseline's runs at several α. Train O1-pruner at its other α (`"o1-0.03"`) as in section 1, and draw the
#    curve `claims.curve_accuracy` gives through GRPO and the two O1-pruner runs. Where does SA-GRPO sit against it?
# 4. **Which answers got shorter?** For SA-GRPO and GRPO, pair the answers to the same `arith-test` problems
#    (`runs.read_eval`) and plot SA-GRPO's length against GRPO's. Are the changes spread evenly, or concentrated on
#    the answers that were long (verbose style) before?
# 5. **How many items does logic need?** With `verdicts.accuracy_interval`, find how many True/False items a model
#    slightly above chance (say 55% accuracy) needs before its 95% interval excludes 50%. Compare with `EVAL_SIZE`.
