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
# # 04 · Out of domain: worked answers to the exercises
#
# The answer key of `notebooks/04_ood_evaluation.ipynb`, for teachers. It trains its own short runs of GRPO,
# SA-GRPO and O1-pruner at two weights (in `RUNS_DIR`, cached), smaller than the notebook's by default, so that it
# runs in a few minutes on 2 CPU cores. Small runs are noisy: the answers are about how to read the numbers, and
# every claim is printed by the cell above it.

# %% tags=["parameters"]
PROFILE = "tiny-cpu"          # sar_lib.models.PROFILES
MODEL = "tiny"                # "tiny" (embedded), a local model dir, or a hub name
STEPS = 4                     # steps per run (the notebook: 10)
SEED = 0
QUESTIONS_PER_STEP = 4        # the notebook: 8
EVAL_SIZE = 50                # greedy evaluation problems per set (the notebook: 100)
N_LOGIC = 60                  # logic problems per chain length in exercise 2
MAX_NEW_TOKENS = None         # None: the profile's
MAX_PROMPT_TOKENS = None
WORKERS = 2
RUNS_DIR = "../../runs/solutions-ood"

# %%
import re
import statistics

import matplotlib.pyplot as plt
import torch

from sar_lib import evaluate, runs, synthetic
from sar_lib.lab import analysis, claims, compare, grid, plots, verdicts
from sar_lib.lab.demo import format_table
from sar_lib.models import get_profile, load_model

profile = get_profile(PROFILE)
if profile.threads:
    torch.set_num_threads(profile.threads)
methods = ("grpo", "sa-grpo", "o1-0.03", "o1-0.1")
specs, eval_sets = compare.default_grid(RUNS_DIR, model=MODEL, profile=PROFILE, methods=methods, seeds=(SEED,),
                                        steps=STEPS, eval_sets={grid.IN_DOMAIN: EVAL_SIZE},
                                        questions_per_step=QUESTIONS_PER_STEP, eval_samples=0,
                                        max_new_tokens=MAX_NEW_TOKENS, max_prompt_tokens=MAX_PROMPT_TOKENS)
results, base = grid.run_grid(specs, eval_sets, workers=WORKERS, base_model=MODEL, base_dir=RUNS_DIR, progress=False)
summary = analysis.summarise(specs, results, base)
folders = {r["method"]: r["run_dir"] for r in results}
labels = {name: m["label"] for name, m in summary["methods"].items()}
answers = {m: [r["response"] for r in runs.read_eval(folders[m], grid.IN_DOMAIN)[1]] for m in methods}
print(format_table(["method", "accuracy", "mean length"],
                   [[labels[m], results[k]["evals"][grid.IN_DOMAIN]["accuracy"],
                     results[k]["evals"][grid.IN_DOMAIN]["mean_length"]] for k, m in enumerate(methods)]))

# %% [markdown]
# ## 1. Your own behaviour
#
# Two new behaviours next to the library's: a sub-goal ("we need to", "so now") and the testbed's own re-check
# ("double-check"). Their shares per method, then the answers where the patterns count something they should not
# (or miss something):

# %%
patterns = {**analysis.BEHAVIOUR_PATTERNS, "sub-goal": (r"\bwe need to\b", r"\bso now\b"),
            "re-check": (r"\bdouble-check\b",)}
shares = {m: analysis.count_behaviours(answers[m], patterns) for m in methods}
print(format_table(["method"] + list(patterns), [[labels[m]] + [shares[m][b]["share"] for b in patterns]
                                                  for m in methods]))
verification = [re.compile(p, re.IGNORECASE) for p in analysis.BEHAVIOUR_PATTERNS["verification"]]
both = [t for m in methods for t in answers[m] if "double-check" in t.lower()]
print(f"\n'verification' fires on every answer with 'Let me double-check.' ({len(both)} answers): the pattern "
      "'\\bcheck' matches inside 'double-check', so verification and re-check count the same sentence:")
print(" ", both[0] if both else "(no such answer here)")
enumeration = [t for m in methods for t in answers[m] if re.search(r"\bthen\b", t, re.IGNORECASE)]
print(f"\n'enumeration' fires on {len(enumeration)} answers through 'Then', which only chains equations:")
print(" ", enumeration[0] if enumeration else "(no such answer here)")

# %% [markdown]
# A refinement: count "double-check" as re-check only, and let verification need a verb of checking that is not
# part of it (`(?<!double-)\bcheck`). The sub-goal patterns find nothing in this testbed's styles: the corpus never
# states sub-goals, so no policy trained from it can show the behaviour, whatever its reward.
#
# ## 2. Harder (and easier) OOD
#
# The base model on one-hop and on three- to four-hop chains, against chance:

# %%
model, tokenizer = load_model(MODEL)
for low, high in ((1, 1), (3, 4)):
    problems = synthetic.logic_problems(N_LOGIC, SEED, min_hops=low, max_hops=high)
    report = evaluate.evaluate(model, tokenizer, problems, max_new_tokens=profile.max_new_tokens,
                               batch_size=profile.eval_batch_size, progress=False)
    a, b = verdicts.accuracy_interval(report["accuracy"], report["n"])
    print(f"{low}-{high} hops: {100 * report['accuracy']:.1f}% of {report['n']} correct, 95% interval "
          f"{100 * a:.1f}-{100 * b:.1f}% (chance 50%)")

# %% [markdown]
# Where both intervals hold 50%, the model guesses whatever the chain length: it has not learned to look the next
# rule up in the question (`docs/logic_attempts.md` tells how it was tried). A model that could would do best on
# one hop and fall towards chance as the chains get longer.
#
# ## 3. A baseline's curve
#
# Claim C2's curve for O1-pruner: piecewise linear through GRPO (α = 0) and the O1-pruner runs, flat beyond its
# ends (`claims.curve_accuracy`). Where does SA-GRPO sit against it?

# %%
point = {m: (summary["methods"][m]["eval"][grid.IN_DOMAIN]["mean_length"]["mean"],
             summary["methods"][m]["eval"][grid.IN_DOMAIN]["accuracy"]["mean"]) for m in methods}
curve = [point["grpo"], point["o1-0.03"], point["o1-0.1"]]
expected = claims.curve_accuracy(curve, point["sa-grpo"][0])
print(f"SA-GRPO: {100 * point['sa-grpo'][1]:.1f}% at {point['sa-grpo'][0]:.1f} tokens; the O1-pruner curve gives "
      f"{100 * expected:.1f}% at that length: SA-GRPO {100 * (point['sa-grpo'][1] - expected):+.1f} points")
fig = compare.accuracy_length_figure(summary, title="GRPO, SA-GRPO and O1-pruner at two α")
lengths = [x for x, _ in sorted(curve)]
curve_line = fig.axes[0].plot(lengths, [100 * claims.curve_accuracy(curve, x) for x in lengths], color="#31a354",
                              ls="--", lw=1)

# %% [markdown]
# With one seed of a few steps each point moves by a few points between runs, so the margin is only a reading
# exercise here; the grid's C2 row (notebook 04's verdict) is the test, on three seeds and more steps.
#
# ## 4. Which answers got shorter?
#
# SA-GRPO's length against GRPO's on the same problems, coloured by GRPO's answer style:

# %%
records = {m: runs.read_eval(folders[m], grid.IN_DOMAIN)[1] for m in ("grpo", "sa-grpo")}
pairs = [(g["length"], s["length"], synthetic.answer_style(g["response"])) for g, s in zip(*records.values())]
by_style = {}
for g, s, style in pairs:
    by_style.setdefault(style, []).append(g - s)
for style, saved in sorted(by_style.items()):
    print(f"GRPO answer {style:11}: {len(saved):3d} problems, SA-GRPO shorter by {statistics.fmean(saved):+.1f} tokens "
          f"on average, changed on {sum(x != 0 for x in saved)}")
fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
for k, style in enumerate(sorted(by_style)):
    ax.scatter([g for g, _, t in pairs if t == style], [s for _, s, t in pairs if t == style], s=14, alpha=0.6,
               color=plots.SERIES_COLORS[k], label=f"GRPO answer {style}")
top = max(max(g, s) for g, s, _ in pairs) * 1.05
ax.plot([0, top], [0, top], color="black", lw=0.8)   # on the diagonal: the same length
ax.set(xlabel="GRPO's answer length (tokens)", ylabel="SA-GRPO's answer length (tokens)", xlim=(0, top), ylim=(0, top))
legend = fig.legend(loc="outside lower center", ncols=2, fontsize=9)

# %% [markdown]
# Read the counts: after a handful of steps few greedy answers changed, and those by a few tokens. A greedy answer
# changes as a whole when its most likely continuation flips (another re-check sentence, or none), so greedy
# length moves in steps while the sampled length of the training curves moves smoothly; the grid's longer runs
# (notebook 04) are where SA-GRPO's greedy answers get shorter.
#
# ## 5. How many items does logic need?
#
# The smallest `n` at which a model at 55% has a 95% interval that excludes chance:

# %%
n = 10
while verdicts.accuracy_interval(0.55, n)[0] <= 0.5:
    n += 10
print(f"55% accuracy excludes chance from n = {n} items (this notebook's EVAL_SIZE: {EVAL_SIZE})")
for size in (100, 200):
    a, b = verdicts.accuracy_interval(0.55, size)
    print(f"n = {size}: a model at 55% has the interval {100 * a:.1f}-{100 * b:.1f}%")
