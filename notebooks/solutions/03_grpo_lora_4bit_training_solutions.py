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
# The answer key of `notebooks/03_grpo_lora_4bit_training.ipynb`, for teachers. It trains its own runs (in
# `RUNS_DIR`, cached like the notebook's): short ones, smaller than the notebook's, for exercises 1, 3, 4 and 5,
# which run in a few minutes on 2 CPU cores; two runs with the notebook's switch preset for exercise 2 (about 12
# minutes on 2 cores the first time, cached after); exercise 6 reads the grid's results. Small runs are noisy: the
# answers below are about how to read the numbers, and every claim is printed by the cell above it.

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
SWEEP_ALPHAS = (0.1, 0.3)     # exercise 2: SA-GRPO at these weights of SAR, with the notebook's switch preset
SWEEP_STEPS = 120             # the preset: 120 steps of 16 questions, 6 answers each (11,520 rollouts per run)
SWEEP_QUESTIONS = 16
SWEEP_LEARNING_RATE = 0.001   # the preset's rate: the lr-1e-3 grid's (the grid's own 2e-4 switches no seed in this budget)
SWEEP_EVAL_SIZE = 200         # held-out problems evaluated every 10 steps (the grid's)
BUDGET_JSON = "../../docs/grid_budget_19200.json"   # six seeds at alpha 0.2 with the same settings, and GRPO's
COMPARE_JSON = "../../figures/grpo_vs_sar.json"     # the grid (exercise 6)
RUNS_DIR = "../../runs/solutions"

# %%
import dataclasses
import json
import math
import shutil
from pathlib import Path

from sar_lib import grpo, runs
from sar_lib.lab import analysis, compare, grid, seed_outcomes, training_plots
from sar_lib.lab.demo import format_table
from sar_lib.grpo_config import GRPOConfig
from sar_lib.models import get_profile

profile = get_profile(PROFILE)
shared = dict(model=MODEL, profile=PROFILE, steps=STEPS, questions_per_step=QUESTIONS_PER_STEP,
              eval_sets={grid.IN_DOMAIN: EVAL_SIZE}, eval_samples=0,
              max_new_tokens=MAX_NEW_TOKENS or profile.max_new_tokens,
              max_prompt_tokens=MAX_PROMPT_TOKENS or profile.max_prompt_tokens)


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
base_config = seed_runs[0].config   # exercises 4 and 5 train with its settings
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
# A few steps move no answer's style at any α (the greedy answers stay verbose), so the sweep uses the notebook's
# switch preset: `SWEEP_STEPS` steps of `SWEEP_QUESTIONS` questions at lr `SWEEP_LEARNING_RATE`, seed `SEED`, at each
# α of `SWEEP_ALPHAS`, built
# as `sar compare` builds SA-GRPO (`compare.default_grid`) with the α and a folder of its own. The α = 0.2 point
# is the doubled-budget run of `BUDGET_JSON`: the same settings, six seeds (its seed `SEED` is the run this sweep
# would train at α = 0.2). Every run evaluates the held-out problems greedily every 10 steps and measures p_stop
# there (`eval/p_stop`).

# %%
sweep_dir = Path(RUNS_DIR) / "alpha"
specs, sweep_sets = compare.default_grid(sweep_dir, model=MODEL, profile=PROFILE, methods=("sa-grpo",), seeds=(SEED,),
                                         steps=SWEEP_STEPS, questions_per_step=SWEEP_QUESTIONS,
                                         learning_rate=SWEEP_LEARNING_RATE,
                                         eval_sets={grid.IN_DOMAIN: SWEEP_EVAL_SIZE}, eval_samples=0,
                                         max_new_tokens=shared["max_new_tokens"],
                                         max_prompt_tokens=shared["max_prompt_tokens"])
sweep = [dataclasses.replace(specs[0], config=dataclasses.replace(specs[0].config, alpha=a,
                                                                    out=str(sweep_dir / f"alpha-{a:g}")))
         for a in SWEEP_ALPHAS]
sweep_results, _ = grid.run_grid(sweep, sweep_sets, workers=WORKERS, progress=False)
budget = json.loads(Path(BUDGET_JSON).read_text())
per_step = SWEEP_QUESTIONS * profile.group_size
curves = {f"α = {a:g}, seed {SEED}": analysis.budget_curve([r["run_dir"]], per_step, budget["base"][grid.IN_DOMAIN])
          for a, r in zip(SWEEP_ALPHAS, sweep_results)}
curves[f"α = 0.2, {len(budget['methods']['sa-grpo']['seeds'])} seeds"] = budget["budget_curve"]["sa-grpo"]
seeds = {label: [SEED] for label in curves} | {list(curves)[-1]: budget["methods"]["sa-grpo"]["seeds"]}
guide = ("80% of GRPO's mean length (doubled-budget run)", seed_outcomes.switched_seeds(budget)["guide"])
fig = training_plots.seed_curves(curves, (training_plots.SEED_PANELS[0], ("p_stop", "p_stop (where measured)", 1.0)), seeds=seeds,
                                 guides={"mean_length": guide}, title="SA-GRPO at three weights of SAR, the switch preset")
rows = []
for label, curve in curves.items():
    onsets = analysis.shortening_onsets(curve, budget["budget_curve"]["grpo"], seed_outcomes.SWITCHED_FRACTION)
    last = [e for e in curve if e["rollouts"] <= SWEEP_STEPS * per_step][-1]
    rows.append([label, last["rollouts"], " ".join(f"{v:.1f}" for v in last["mean_length"]["per_seed"]),
                 " ".join("none" if o is None or o > last["rollouts"] else f"{o:,}" for o in onsets) or "—",
                 " ".join(f"{v:.3f}" for v in last.get("p_stop", {}).get("per_seed", [])) or "—"])
print(format_table(["run", "rollouts", "greedy length per seed", "switched by (rollouts)", "p_stop"], rows))

# %% [markdown]
# How to read it. α scales SAR's push towards the concise answer (`α·ΔSAR` per answer, notebook 02), so a larger α
# should raise p_stop faster and switch sooner, and a smaller one later. But the budget at which one seed switches
# varies a lot between seeds at the same α: the α = 0.2 seeds above did not switch at the same budget (their
# onsets in the table). One seed per α can therefore order the weights only where the difference is larger than
# that spread; p_stop, measured every 10 steps, shows the push before the greedy answers flip, so compare the
# p_stop lines too, not only the switch. The rule's line is 80% of GRPO's mean length at each budget, so a run can
# count as switched while its greedy answers are only partly concise (a length between the concise and the verbose
# one, p_stop still near p_check): read the length and p_stop beside the onset. A fair sweep takes several seeds
# per α (`sar compare` with a method per α).
# The paper's sweep (0.1, 0.2, 0.3) is over 500 steps of real models (`docs/paper.md` §1).
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

# %% [markdown]
# ## 6. Greedy against sampled accuracy
#
# The grid's held-out accuracy of every seed, greedy and sampled (4 answers per problem at temperature 1), beside
# the base model's:

# %%
compared = json.loads(Path(COMPARE_JSON).read_text())
base_eval = compared["base"][grid.IN_DOMAIN]
rows = [["base model", base_eval["accuracy"], base_eval["sampled_accuracy"],
         100 * (base_eval["accuracy"] - base_eval["sampled_accuracy"])]]
for name in ("grpo", "sa-grpo"):
    method = compared["methods"][name]
    e = method["eval"][grid.IN_DOMAIN]
    rows += [[f"{method['label']} s{seed}", greedy, sampled, 100 * (greedy - sampled)] for seed, greedy, sampled
             in zip(method["seeds"], e["accuracy"]["per_seed"], e["sampled_accuracy"]["per_seed"])]
print(format_table(["model", "greedy accuracy", "sampled accuracy", "gap (points)"], rows))
gaps = [row[3] for row in rows[1:]]
print(f"gap: {rows[0][3]:.1f} points for the base model, {min(gaps):.1f} to {max(gaps):.1f} after RL")

# %% [markdown]
# GRPO raises the expected reward of **sampled** answers to the **training** questions: each update makes the
# answers that were sampled and right more likely and the wrong ones less likely. That sharpens the sampling
# distribution towards the model's best answer, and the sharpening carries over to new questions: the sampled
# accuracy rises and the gap between greedy and sampled accuracy closes (the table's last line). The greedy answer
# is already the model's likeliest, so sharpening cannot improve it: on a held-out question it can only stay or
# move, and the updates that fit the training problems move the adapters in ways that break some of the base
# model's right answers (on this testbed mostly copies of a number from the question: `docs/regime.md`). So greedy
# accuracy falls while sampled accuracy rises, for GRPO and SA-GRPO alike. To keep the greedy accuracy, train
# more slowly (a lower learning rate, bigger batches) or pull the policy towards the base model (a KL penalty):
# the regime study tries these, and finds that they delay the fall, and SAR's switch with it, more than they stop it.
#
# Where to stop: the grid's greedy evaluations along training, mean over seeds, with the seeds above the base model:

# %%
along = seed_outcomes.accuracy_along_training(compared)
print(seed_outcomes.along_training_markdown(along, {name: m["label"] for name, m in compared["methods"].items()}))

# %% [markdown]
# Stopping while the means are above the base keeps the greedy accuracy RL added. But at the grid's learning rate
# no SA-GRPO seed has switched by then, and at lr 1e-3, where seeds switch, greedy accuracy is below the base
# long before the switch (notebook 03, sections 7 and 10): on this testbed no run of ours was both above the base
# model and concise. The paper's two halves, effective and efficient, did not meet in one regime here.
