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
# # 03 · GRPO vs SA-GRPO: worked answers to the exercises
#
# The answer key of `notebooks/03_grpo_lora_4bit_training.ipynb`, for teachers. It trains its own short runs (in
# `RUNS_DIR`, cached like the notebook's), smaller than the notebook's by default so that all five answers run in a
# few minutes on 2 CPU cores. Small runs are noisy: the answers below are about how to read the numbers, and every
# claim is printed by the cell above it.

# %% tags=["parameters"]
PROFILE = "tiny-cpu"          # sar_lib.models.PROFILES
MODEL = "tiny"                # "tiny" (embedded), a local model dir, or a hub name
STEPS = 4                     # steps per run (the notebook: 10)
SEED = 0
QUESTIONS_PER_STEP = 4        # the notebook: 8
EVAL_SIZE = 50                # greedy evaluation problems (the notebook: 100)
MAX_NEW_TOKENS = None         # None: the profile's
MAX_PROMPT_TOKENS = None
WORKERS = 2
RUNS_DIR = "../../runs/solutions"

# %%
import dataclasses
import math
import shutil
from pathlib import Path

from sar_lib import analysis, compare, grid, grpo, plots, runs
from sar_lib.demo import format_table
from sar_lib.grpo_config import GRPOConfig
from sar_lib.models import get_profile

profile = get_profile(PROFILE)
shared = dict(model=MODEL, profile=PROFILE, steps=STEPS, questions_per_step=QUESTIONS_PER_STEP,
              eval_sets={grid.IN_DOMAIN: EVAL_SIZE}, eval_samples=0, max_new_tokens=MAX_NEW_TOKENS,
              max_prompt_tokens=MAX_PROMPT_TOKENS)


def train_grid(out_dir, methods, **overrides):
    """Runs built as `sar compare` builds them (compare.default_grid), trained and evaluated (cached)."""
    specs, eval_sets = compare.default_grid(out_dir, methods=methods, **{**shared, **overrides})
    results, base = grid.run_grid(specs, eval_sets, workers=WORKERS, base_model=MODEL, base_dir=out_dir,
                                  progress=False)
    return specs, results, analysis.summarise(specs, results, base)


# %% [markdown]
# ## 1. Seeds
#
# Three seeds of each method, then the mean curves over seeds (band: ± one standard deviation).

# %%
seeds = (SEED, SEED + 1, SEED + 2)
seed_runs, seed_results, seed_summary = train_grid(RUNS_DIR, ("grpo", "sa-grpo"), seeds=seeds)
fig = compare.training_curves_figure(seed_summary, title=f"{len(seeds)} seeds, {STEPS} steps: mean ± std")
rows = []
for method in seed_summary["methods"].values():
    e = method["eval"][grid.IN_DOMAIN]
    rows.append([method["label"], e["accuracy"]["mean"], e["accuracy"]["std"], e["mean_length"]["mean"],
                 e["mean_length"]["std"], " ".join(f"{a:.2f}" for a in e["accuracy"]["per_seed"])])
print(format_table(["method", "accuracy", "std over seeds", "mean length", "std over seeds", "accuracy per seed"], rows))

# %% [markdown]
# A difference between the methods survives only if it is larger than the spread between seeds of the same method
# (the per-seed values above). The evaluation adds its own noise: an accuracy `p` measured on `n` problems has a
# standard error `sqrt(p(1-p)/n)`, a difference of two such accuracies `sqrt(2p(1-p)/n)`. To call a 2-point
# difference at two standard errors:

# %%
p = seed_summary["methods"]["grpo"]["eval"][grid.IN_DOMAIN]["accuracy"]["mean"]
for n in (EVAL_SIZE, 100, 200, 1000):
    print(f"n = {n:5d}: standard error of a difference {100 * math.sqrt(2 * p * (1 - p) / n):.1f} points")
needed = math.ceil(2 * p * (1 - p) / (0.02 / 2) ** 2)
print(f"a 2-point difference is two standard errors from 0 with n >= {needed} problems (p = {p:.2f}), before any "
      "seed-to-seed spread")

# %% [markdown]
# ## 2. The weight of SAR
#
# `grpo.train` with the settings of the seed-`SEED` runs above (all fields but the reward, α, seed and folder), at
# α = 0.1 and 0.3; the α = 0.2 point is the SA-GRPO run of exercise 1.

# %%
base_config = seed_runs[0].config
settings = {f.name: getattr(base_config, f.name) for f in dataclasses.fields(GRPOConfig)
            if f.name not in ("reward", "alpha", "correctness_weight", "seed", "out")}
points = {}
for alpha in (0.1, 0.3):
    out = Path(RUNS_DIR) / f"alpha-{alpha:g}"
    shutil.rmtree(out, ignore_errors=True)   # a fresh run each time: grpo.train refuses to overwrite a run
    grpo.train(GRPOConfig(reward="sar", alpha=alpha, seed=SEED, out=str(out), **settings))
    points[alpha] = runs.read_eval(out, grid.IN_DOMAIN)[0]
sa_seed = next(r for r in seed_results if r["method"] == "sa-grpo" and r["seed"] == SEED)
points[grid.METHODS["sa-grpo"].alpha] = sa_seed["evals"][grid.IN_DOMAIN]
print(format_table(["alpha", "greedy accuracy", "mean length"],
                   [[a, points[a]["accuracy"], points[a]["mean_length"]] for a in sorted(points)]))
fig = plots.accuracy_vs_length({grid.IN_DOMAIN: {f"α = {a:g}": [(points[a]["mean_length"], points[a]["accuracy"])]
                                                 for a in sorted(points)}},
                               title="SA-GRPO at three weights of SAR (one seed each)")

# %% [markdown]
# Whether the length falls monotonically with α is read off the table; with one seed and a few steps the order can
# come out either way, because the greedy length changes only when a whole answer switches style. The paper's sweep
# (0.1, 0.2, 0.3) is over 500 steps of real models (`docs/paper.md` §1).
#
# ## 3. R_SA alone
#
# The `sar-only` method drops R_VR: `R = R_SA`. Twice the steps, and its sampled accuracy and length per step:

# %%
alone_runs, alone_results, alone_summary = train_grid(RUNS_DIR, ("sar-only",), steps=2 * STEPS)
curves = analysis.method_curves(alone_summary, ("rewards/correctness/mean", "completions/mean_length", "sar/mean"))
for label, c in curves.items():
    print(format_table(["step", "sampled accuracy", "sampled length", "SAR"],
                       [[s, a, n, r] for s, a, n, r in zip(c["rewards/correctness/mean"]["step"],
                                                             c["rewards/correctness/mean"]["mean"],
                                                             c["completions/mean_length"]["mean"],
                                                             c["sar/mean"]["mean"])]))
print("greedy accuracy after training:", alone_results[0]["evals"][grid.IN_DOMAIN]["accuracy"])

# %% [markdown]
# The group-mean baseline only centres the rewards within a group: it decides which answers of a group are pushed
# up, not whether the answer pushed up is right. Without R_VR that order is SAR's alone, and SAR does not know
# correctness (notebook 01, section 8); worse, the policy computes SAR itself, so the update can raise its own
# reward by changing what it finds likely. Compare the greedy accuracy after these few steps with the GRPO runs of
# exercise 1; in longer runs the accuracy collapses (the paper's ablation, `docs/paper.md` §5, and claim C3 of the
# grid in notebook 03's verdict).
#
# ## 4. Exact resume
#
# One run straight to `STEPS`, one stopped after half the steps and resumed:

# %%
config = dataclasses.replace(base_config, out=str(Path(RUNS_DIR) / "straight"), progress=False)
for folder in ("straight", "stopped"):
    shutil.rmtree(Path(RUNS_DIR) / folder, ignore_errors=True)
grpo.train(config)
stopped = dataclasses.replace(config, out=str(Path(RUNS_DIR) / "stopped"), steps=max(1, STEPS // 2))
grpo.train(stopped)
grpo.train(dataclasses.replace(stopped, steps=STEPS), resume=True)
straight, resumed = runs.read_metrics(config.out), runs.read_metrics(stopped.out)
differing = sorted({k for a, b in zip(straight, resumed) for k in set(a) | set(b) if a.get(k) != b.get(k)})
print(f"{len(straight)} and {len(resumed)} steps; columns that differ: {differing}")

# %% [markdown]
# Every column computed from the model, the data and the random numbers must be equal: step `k` is seeded from
# `(seed, k)` and the checkpoint holds the LoRA weights, the optimizer state and the RNG states. The `time/*`
# columns measure wall time, which no seed fixes. Any other column in the list above comes from the evaluation the
# stopped run made when it stopped (a run evaluates at its last step), which the straight run did not make.
#
# ## 5. Where the time goes
#
# GRPO with half the answer budget, against exercise 1's GRPO run of the same seed:

# %%
budget = base_config.resolved().max_new_tokens
short_runs, short_results, short_summary = train_grid(str(Path(RUNS_DIR) / "half-budget"), ("grpo",),
                                                      max_new_tokens=budget // 2)
full = analysis.step_times(next(r for r in seed_results if r["method"] == "grpo" and r["seed"] == SEED)["run_dir"])
half = analysis.step_times(short_results[0]["run_dir"])
print(format_table(["answer budget", "generate s", "score s", "update s", "step s"],
                   [[budget, full["generate"], full["score"], full["update"], full["step"]],
                    [budget // 2, half["generate"], half["score"], half["update"], half["step"]]]))

# %% [markdown]
# The budget matters only for the answers that reach it: generation runs until the longest answer of the batch
# stops, one forward pass per new token, so the longest sampled answer sets its time; scoring and the update are a
# few batched forward (and backward) passes over all tokens at once, whose cost grows with the total number of tokens
# but not with a token-by-token loop. A budget below the length of the verbose answers also truncates them, which
# shortens answers by cutting, not by reward.
