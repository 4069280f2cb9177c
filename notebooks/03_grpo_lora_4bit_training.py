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
# # 03 · GRPO vs SA-GRPO with LoRA, and the 4-bit path
#
# The paper trains reasoning models with GRPO and adds one term to the reward: **SA-GRPO** uses
# `R = R_VR + α·R_SA` (α = 0.2) where plain **GRPO** uses `R = R_VR` (R_VR = 1 for a correct final answer, else 0;
# `docs/paper.md` §1, §3). The notebook has two halves:
#
# * **the mechanics, live**: it trains both for a few steps, side by side, with the same questions, the same seed
#   and the same sampling noise, to show how a step works: one group's rewards and advantages, the training
#   curves, what a step costs, how a run resumes. A few steps are far too few to change what a model answers, so
#   this half shows no result;
# * **the result, from the grid**: `sar compare` trained every method for 100 steps (GRPO and SA-GRPO with three
#   seeds; 9,600
#   sampled answers per run), and the package ships the final LoRA adapter of each method's first seed
#   (`sar_lib.shipped`). The notebook loads them and shows what training did: the curves with their seed spread,
#   the answers of the base model, GRPO and SA-GRPO to the same questions, and the accuracy/length table with the
#   tests that decide whether a difference is more than noise.
#
# **What you'll learn**
#
# 1. how the policy is set up: LoRA adapters, on 4-bit NF4 weights (run here on the CPU, and measured on GPUs);
# 2. how `sar compare`'s grid trains and caches runs (`compare.default_grid`);
# 3. one GRPO group laid out: its answers, R_VR, α·SAR, the reward R and the advantage, under both rewards;
# 4. reading GRPO training curves: reward, SAR, accuracy and length of the sampled answers;
# 5. where the time of a step goes (sampling, scoring, update) and the memory it takes;
# 6. how to stop and **resume** a run exactly;
# 7. **the result**: the grid's curves with seed spread, the shipped models' answers before and after, and the
#    accuracy/length table with its noise tests;
# 8. what a laptop-GPU run costs and how to launch it;
# 9. the paper's other algorithm, PPO with a critic, with and without SAR (from the grid);
# 10. the verdict: which of the paper's claims held on the testbed, and the regime that decides it.
#
# On the embedded tiny model (CPU) the default parameters train two short runs in parallel, one per CPU core, and
# evaluate the shipped adapters (the last cell prints this run's time). Everything is cached in `RUNS_DIR`:
# running the notebook again reuses the runs and the evaluations.

# %% tags=["parameters"]
PROFILE = "tiny-cpu"          # sar_lib.models.PROFILES: tiny-cpu | laptop-8gb | gpu-12gb
MODEL = "tiny"                # "tiny" (embedded), a local model dir, or a hub name such as get_profile(PROFILE).model
STEPS = 10                    # steps of the live runs, the mechanics (the paper: 500; `sar compare`: compare.DEFAULT_STEPS)
SEED = 0                      # seeds the LoRA init, the question order and the sampling of both runs
QUESTIONS_PER_STEP = 8        # x the profile's group size (6) = answers sampled per step
EVAL_SIZE = 100               # held-out arith-test problems for the live runs' greedy evaluations
EVAL_SAMPLES = 0              # answers sampled per problem at the final evaluation (`sar compare`: 4); 0: greedy only
MAX_NEW_TOKENS = None         # answer budget in tokens; None: the profile's
MAX_PROMPT_TOKENS = None      # longest prompt allowed; None: the profile's
WORKERS = 2                   # runs trained at the same time (processes, one torch thread each on CPU)
FOUR_BIT_QUESTIONS = 2        # questions of the one 4-bit training step (section 1)
FOUR_BIT_NEW_TOKENS = 64      # its answer budget
EXTRA_STEPS = 2               # steps added in the resume demonstration (section 7)
N_EXAMPLES = 3                # questions answered by the base model and the shipped GRPO / SA-GRPO (section 7)
SHIPPED_METHODS = ("grpo", "sa-grpo", "shuffled-sar")   # shipped adapters evaluated live in section 7
SHIPPED_EVAL_SIZE = None      # arith-test problems for them; None: the grid's own size (its numbers come back)
GPU_STEPS = 20                # steps of the laptop-GPU run whose cost section 8 estimates
GPU_CHECKS = ("../docs/gpu_check_h100.json", "../docs/gpu_check_h200.json")   # `sar gpu-check` results
COMPARE_JSON = "../figures/grpo_vs_sar.json"   # `sar compare`'s results: the result and the claims of the verdict
SHIPPED_DIR = None            # the grid's adapters (`sar compare --ship-adapters DIR`); None: those in the package
RUNS_DIR = "../runs/notebooks"  # the runs (shared with notebook 04)
FIGURES_DIR = "../figures"    # figures and 03_summary.json go here

# %%
import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch
from IPython.display import Markdown, display

from sar_lib import analysis, claims, compare, data, grid, grpo, models, plots, shipped, verdicts
from sar_lib.demo import format_table, write_summary
from sar_lib.grpo_config import GRPOConfig
from sar_lib.runs import read_config, read_metrics
from sar_lib.synthetic import answer_style

started = time.perf_counter()
profile = models.get_profile(PROFILE)
device = models.default_device()
if profile.threads and device == "cpu":
    torch.set_num_threads(profile.threads)   # the profile's choice: a tiny model runs faster on one thread
print(f"profile {profile.name}: {profile.description}")
print(f"device: {device}; model: {MODEL}")

# %% [markdown]
# ## 1. The policy: LoRA adapters, on 4-bit weights where the profile says so
#
# GRPO updates only **LoRA adapters**: every linear layer `W` of the attention and MLP blocks becomes
#
# $$h = W x + \frac{\alpha}{r} B A x,\qquad A \in \mathbb{R}^{r\times d_{in}},\; B \in \mathbb{R}^{d_{out}\times r},\; B_0 = 0,$$
#
# so the policy starts as the base model, and only `A`, `B` (and their AdamW moments) need gradients and memory.
# On a GPU profile (`laptop-8gb`, `gpu-12gb`) the frozen `W` is stored in **4-bit NF4** (QLoRA). The `tiny-cpu`
# profile keeps it in fp32: the embedded model is a few MB, and fp32 is the fast path on a CPU. The policy the
# runs below train:

# %%
policy, tokenizer = models.load_policy(MODEL, profile)
counts = models.parameter_counts(policy)
print(f"4-bit NF4 weights: {profile.load_in_4bit}; LoRA r = {profile.lora_r}, alpha = {profile.lora_alpha} "
      f"on {', '.join(profile.target_modules)}")
print(f"trainable (LoRA) parameters: {counts['trainable']:,} of {counts['total']:,} "
      f"({100 * counts['trainable'] / counts['total']:.1f}%)")
del policy

# %% [markdown]
# ### The 4-bit path, run here
#
# The same code loads the weights in NF4 when the profile asks (`dataclasses.replace(profile, load_in_4bit=True)`,
# or `GRPOConfig(load_in_4bit=True)`), through bitsandbytes, whose CPU backend runs NF4 layers too. Below, the
# tiny model is loaded that way and takes **one full GRPO step** (sampling, SAR's extra pass, two AdamW updates of
# the LoRA weights) on `FOUR_BIT_QUESTIONS` questions. On a CPU this shows that the path works, not that it is
# fast: bitsandbytes dequantises every weight at every forward pass. (`models.load_policy` also works around a
# bitsandbytes CPU trap: see `_disable_cpu_bf16_repacking`.)

# %%
problem_4bit = models.bnb_4bit_problem(device)
four_bit = GRPOConfig.for_profile(PROFILE, model=MODEL, load_in_4bit=True, steps=1,
                                  questions_per_step=FOUR_BIT_QUESTIONS, max_new_tokens=FOUR_BIT_NEW_TOKENS,
                                  max_prompt_tokens=MAX_PROMPT_TOKENS or profile.max_prompt_tokens, progress=False,
                                  **grid.short_run_learning_rate(PROFILE)).resolved()   # one step, no run folder
if problem_4bit is not None:
    four_bit_result = None
    print(f"bitsandbytes cannot run NF4 layers on {device} here: {problem_4bit}")
else:
    import bitsandbytes as bnb   # importable: bnb_4bit_problem found no problem

    setup = grpo.setup_training(four_bit)
    layers = [m for m in setup.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    counts_4bit = models.parameter_counts(setup.model)
    quantised = [p for p in setup.model.parameters() if getattr(p, "quant_state", None) is not None]
    stored_mb = sum(p.numel() * p.element_size() for p in quantised) / 2**20
    fp32_mb = sum(p.quant_state.shape.numel() * 4 for p in quantised) / 2**20
    before = {n: p.detach().clone() for n, p in setup.model.named_parameters() if p.requires_grad}
    pool = data.load_problems(four_bit.train_dataset, limit=four_bit.train_size, seed=0)
    step = grpo.grpo_step(setup.model, setup.tokenizer, setup.optimizer, grpo.questions_of_step(pool, four_bit, 1),
                          four_bit, step=1, ctx0_ids=setup.ctx0_ids)
    moved = sum(not torch.equal(before[n], p) for n, p in setup.model.named_parameters() if p.requires_grad)
    four_bit_result = {"layers": len(layers), "trainable_share": counts_4bit["trainable"] / counts_4bit["total"],
                       "step_seconds": step["time/step"], "moved": moved, "lora_tensors": len(before)}
    print(f"{len(layers)} Linear4bit layers (NF4, double quantisation, compute in "
          f"{layers[0].compute_dtype}); their weights take {stored_mb:.2f} MB instead of {fp32_mb:.2f} MB in fp32")
    print(f"trainable (LoRA) parameters: {counts_4bit['trainable']:,} of {counts_4bit['total']:,} "
          f"({100 * four_bit_result['trainable_share']:.1f}%)")
    print(f"one GRPO step on {FOUR_BIT_QUESTIONS} x {four_bit.group_size} answers of <= {FOUR_BIT_NEW_TOKENS} tokens: "
          f"{step['time/step']:.1f} s (generate {step['time/generate']:.1f}, score {step['time/score']:.1f}, "
          f"update {step['time/update']:.1f}); loss {step['loss']:+.4f}, grad norm {step['grad_norm']:.4f}")
    print(f"LoRA tensors changed by the step: {moved} of {len(before)}")
    del setup

# %% [markdown]
# On a GPU the same path runs on the real models. The project's GPU check (`sar gpu-check`, results in `docs/`)
# trains the exact Qwen2.5-0.5B and -1.5B shapes in 4-bit NF4 with LoRA, **measured on random weights** (no
# download is possible there: the figures are memory and time, not learning), with every answer forced to the
# full answer budget:

# %%
checks = [json.loads(Path(path).read_text()) for path in GPU_CHECKS if Path(path).is_file()]
gpu_rows = []
for check in checks:
    for name, r in check["models"].items():
        if r.get("status") != "ok":
            continue
        share = r["parameters"]["trainable"] / r["parameters"]["total"]
        gpu_rows.append([f"{name} (random weights)", r["profile"], check["machine"]["gpu"],
                         f"{r['parameters']['total'] / 1e6:.0f}M", r["config"]["lora_r"], f"{100 * share:.2f}%",
                         r["config"]["max_new_tokens"], r["load_peak_gb"], r["peak_allocated_gb"], r["time_step"],
                         r["generation_tokens_per_s"]])
if gpu_rows:
    print(format_table(["model shape", "profile", "GPU", "parameters", "LoRA r", "trainable", "answer tokens",
                        "GB after load", "peak GB in a step", "s / step", "generated tokens/s"], gpu_rows))
else:
    print(f"none of {GPU_CHECKS} is here: run `bash scripts/gpu_check.sh` on a CUDA machine to measure them")

# %% [markdown]
# ## 2. Two live runs: GRPO and SA-GRPO, the mechanics
#
# These runs show how training works, not what it achieves: `STEPS` steps are a few hundred sampled answers, tens
# of times fewer than a grid run (the next cell prints both). Section 7 shows what the grid's runs learnt.
#
# Both runs use `sar_lib.grpo.train` with the same settings; only the reward differs:
#
# | run | reward per sampled answer |
# |---|---|
# | GRPO | `R = R_VR` |
# | SA-GRPO | `R = R_VR + α · R_SA`, with `R_SA = max(1 - ppl(a|q) / ppl(a), -1)` under the current policy |
#
# Each step samples `G` answers to each of `QUESTIONS_PER_STEP` questions at temperature 1, scores them, and takes
# two AdamW steps on the **PPO-clip loss**, `-min(ρ A, clip(ρ, 1 - ε, 1 + ε) A)` per token with
# `ρ = π(token) / π_old(token)` the probability ratio to the policy that sampled it (the clip keeps one update from
# moving the policy far), and the **Dr. GRPO advantage** `A = R - mean of the group`: GRPO's advantage without its
# division by the group's standard deviation, a correction by Liu et al. that the paper uses (`docs/paper.md` §3).
# With the same seed both runs see the same questions in the same order and draw the same random numbers, so at
# step 1 they sample **identical** answers; they drift apart only as their weights do.
#
# `compare.default_grid` builds the runs exactly as `sar compare` builds its grid (its settings, its learning rate
# for short runs, every sampled answer logged), with this notebook's step count and evaluation size;
# `grid.run_grid` trains them (`WORKERS` at a time), evaluates the final policies greedily, and the untrained base
# model too. Finished runs are reused: run this cell again and it returns at once; a run stopped half-way resumes
# from its last checkpoint.

# %%
runs, eval_sets = compare.default_grid(RUNS_DIR, model=MODEL, profile=PROFILE, methods=("grpo", "sa-grpo"),
                                       seeds=(SEED,), steps=STEPS, eval_sets={grid.IN_DOMAIN: EVAL_SIZE},
                                       questions_per_step=QUESTIONS_PER_STEP, eval_samples=EVAL_SAMPLES,
                                       max_new_tokens=MAX_NEW_TOKENS or profile.max_new_tokens,
                                       max_prompt_tokens=MAX_PROMPT_TOKENS or profile.max_prompt_tokens)
start = time.perf_counter()
results, base = grid.run_grid(runs, eval_sets, workers=WORKERS, base_model=MODEL, base_dir=RUNS_DIR, progress=False)
wall = time.perf_counter() - start
print(f"{wall:.0f} s; {sum(r['trained'] for r in results)} run(s) trained now, the others were cached")
summary = analysis.summarise(runs, results, base)   # what `sar compare` reports, for these runs
labels = {name: m["label"] for name, m in summary["methods"].items()}
run_dirs = {m["label"]: m["run_dirs"][0] for m in summary["methods"].values()}
colors = compare.label_colors(summary["methods"])
config = runs[0].config.resolved()
alpha = grid.METHODS["sa-grpo"].alpha
print(f"{config.steps} steps x {config.questions_per_step} questions x {config.group_size} answers, "
      f"<= {config.max_new_tokens} new tokens, lr {config.learning_rate:g}, {config.updates_per_step} updates per "
      f"step; SA-GRPO's alpha = {alpha:g}")
grid_results, grid_note = verdicts.read_grid(COMPARE_JSON)
live_rollouts = config.steps * config.questions_per_step * config.group_size
if grid_results is not None:
    s = grid_results["settings"]
    grid_rollouts = s["steps"] * s["questions_per_step"] * s["group_size"]
    print(f"sampled answers per run: {live_rollouts:,} here, {grid_rollouts:,} in the grid of {COMPARE_JSON} "
          f"({grid_rollouts / live_rollouts:.0f}x more)")

# %% [markdown]
# ## 3. One GRPO group, as the trainer scored it
#
# Every sampled answer is logged with its rewards (`completions.jsonl`; `analysis.one_group` reads one group).
# Below: the first group of step 1 that mixes right and wrong answers and more than one style, the same six answers
# in both runs (same seed, same weights at step 1). For each answer: R_VR, its SAR, `α·SAR`, SA-GRPO's reward
# `R = R_VR + α·SAR` and advantage `A = R − mean R`, and GRPO's advantage `R_VR − mean R_VR`.

# %%
n_groups = config.questions_per_step
chosen = 0
for g in range(n_groups):
    rows = analysis.one_group(run_dirs[labels["sa-grpo"]], step=1, group=g)
    if len({r["correct"] for r in rows}) > 1 and len({answer_style(r["completion"]) for r in rows}) > 1:
        chosen = g
        break
sa_group = analysis.one_group(run_dirs[labels["sa-grpo"]], step=1, group=chosen)
grpo_group = analysis.one_group(run_dirs[labels["grpo"]], step=1, group=chosen)
print("the two runs sampled the same answers:", [r["completion"] for r in sa_group] == [r["completion"] for r in grpo_group])
print(f"step 1, group {chosen} (question {sa_group[0]['id']}):\n")
print(format_table(["answer", "style", "tokens", "R_VR", "SAR", "α·SAR", "R (SA-GRPO)", "A (SA-GRPO)", "A (GRPO)"],
                   [[f"#{k + 1}", answer_style(s["completion"]), s["length"], int(s["correct"]), s["sar"],
                     alpha * s["shaping"], s["reward"], s["advantage"], g["advantage"]]
                    for k, (s, g) in enumerate(zip(sa_group, grpo_group))]))
for k, s in enumerate(sa_group):
    print(f"\n#{k + 1} {s['completion']}")

# %% [markdown]
# Read the advantages. In GRPO, all correct answers of the group get the same positive advantage and all wrong
# ones the same negative one: the update cannot prefer one correct answer over another. SA-GRPO's `α·SAR` splits
# the ties: among answers of equal correctness, the one with more information gain per token (usually the shorter
# one, without the re-check sentences) gets the larger advantage. Because `α·SAR` varies by much less than `R_VR`'s
# step of 1, it never lets a wrong answer overtake a right one (notebook 01, section 8).
#
# ## 4. Training curves
#
# Every step appends one line to the run's `metrics.jsonl`, with TRL's names where TRL logs the same quantity
# (`docs/metrics.md`). Four of its columns:
#
# * **reward** `reward`: the mean training reward of the sampled answers (SA-GRPO's includes `α·R_SA`, so its curve
#   sits higher by construction: compare shapes, not levels);
# * **accuracy** `rewards/correctness/mean`: the share of sampled answers that are correct (temperature 1, so below
#   the greedy accuracy of section 5);
# * **length** `completions/mean_length`: answer tokens (eos included);
# * **SAR** `sar/mean`: the mean `R_SA` of the sampled answers. GRPO runs log it too (one extra forward pass, not
#   used in their reward), so you can see whether SAR rises only when it is rewarded.
#
# With one seed and a few steps, step-to-step noise is large and nothing has had time to change: read these as the
# mechanics. Section 7 shows the grid's curves, three seeds over 100 steps.

# %%
fig = compare.training_curves_figure(summary, title=f"Live runs: GRPO vs SA-GRPO, seed {SEED}, {STEPS} steps ({MODEL})")
plots.save_figure(fig, "03_training_curves", FIGURES_DIR)
curves = analysis.method_curves(summary, analysis.CURVE_KEYS)
window = min(analysis.DRIFT_WINDOW, STEPS)   # the window the verdict's drift uses too
rows = []
for label, c in curves.items():
    for key in analysis.CURVE_KEYS:
        values = c[key]["mean"]
        rows.append([label, key, sum(values[:window]) / window, sum(values[-window:]) / window])
print(format_table(["run", "metric", f"mean of first {window} steps", f"mean of last {window} steps"], rows))

# %% [markdown]
# The live runs' greedy answers to held-out problems after `STEPS` steps (`arith-test`, never seen in training;
# "% shorter" against the base model). Expect them to be the base model's answers, or nearly: that is what a few
# steps do.

# %%
evals = {**{labels[r["method"]]: r["evals"][grid.IN_DOMAIN] for r in results}, "base model": base[grid.IN_DOMAIN]}
print(format_table(["model", "accuracy", "mean length", "% shorter than base", "truncated"],
                   [[name, e["accuracy"], e["mean_length"],
                     verdicts.percent_shorter(evals["base model"]["mean_length"], e["mean_length"]),
                     e["truncation_rate"]] for name, e in evals.items()]))

# %% [markdown]
# ## 5. Time and memory per step
#
# `metrics.jsonl` splits every step into **generate** (sampling the answers), **score** (the no-grad pass for the
# old log-probs, the rewards, and for SA-GRPO the one extra pass over `ctx(0) + a` that gives `ppl(a)`) and
# **update** (forward and backward passes of the two PPO updates). `time/sar` is that extra pass alone; a GRPO run
# logs it too but does not count it in its step. Memory is the peak resident memory of the process that trained the
# run (on a GPU also `torch.cuda.max_memory_allocated`); with several runs per worker process it is an upper bound.

# %%
times = {label: analysis.step_times(d) for label, d in run_dirs.items()}
parts = ["generate", "score", "update"]
fig = plots.grouped_bars(parts + ["step"], {label: [t[p] for p in parts + ["step"]] for label, t in times.items()},
                         ylabel="seconds per step (mean over steps)", value_labels=True, fmt="{:.1f}", colors=colors,
                         title=f"Where a step's time goes ({device}, {profile.name})")
plots.save_figure(fig, "03_time_per_step", FIGURES_DIR)
memory = {labels[r["method"]]: r.get("cuda_peak_mb") or r.get("peak_rss_mb") or float("nan") for r in results}
print(format_table(["run", "generate s", "score s", "update s", "step s", "SAR pass s", "peak memory MB"],
                   [[label, t["generate"], t["score"], t["update"], t["step"], t.get("sar", float("nan")), memory[label]]
                    for label, t in times.items()]))

# %% [markdown]
# What SAR costs per step, from the table above:

# %%
sa_times, grpo_times = times[labels["sa-grpo"]], times[labels["grpo"]]
print(f"SAR's extra pass takes {sa_times['sar']:.2f} s of SA-GRPO's {sa_times['step']:.2f} s step "
      f"({100 * sa_times['sar'] / sa_times['step']:.0f}%); SA-GRPO's step is "
      f"{100 * (sa_times['step'] / grpo_times['step'] - 1):+.0f}% against GRPO's ({grpo_times['step']:.2f} s), "
      f"which also differs by what the two runs sampled (generate: {sa_times['generate']:.2f} vs "
      f"{grpo_times['generate']:.2f} s)")

# %% [markdown]
# Answers are generated one token at a time, all sequences of a step together, and each token costs a full (small)
# forward pass; SAR's extra pass is one batched forward over `ctx(0) + a` for all answers, so its cost is about one
# scoring pass. Shorter answers make the next steps' sampling cheaper, which is how the paper reports SA-GRPO
# costing *less* GPU time than GRPO overall (`docs/paper.md` §5). The project tests the paper's claims as seven
# numbered statements, **C1-C7** (`sar_lib/claims.py`; the verdict of section 10 lists them with their criteria):
# C5 is this one, weighed on the grid.
#
# ## 6. Stopping and resuming a run
#
# A run saves a checkpoint (LoRA weights, optimizer state, RNG states, step) every `save_every` steps and at the
# end. `train(config, resume=True)` continues from it, and because everything random in step `k` is seeded from
# `(seed, k)`, the resumed steps are exactly those an uninterrupted run would take. The same from a shell:
# `sar train --resume --out DIR --steps N`.
#
# Here a copy of the SA-GRPO run continues for `EXTRA_STEPS` more steps (the copy keeps notebook 04's runs as
# they are):

# %%
source = Path(run_dirs[labels["sa-grpo"]])
copy = Path(RUNS_DIR) / "resume-demo"
shutil.rmtree(copy, ignore_errors=True)
shutil.copytree(source, copy)
more = dataclasses.replace(read_config(copy), out=str(copy), steps=STEPS + EXTRA_STEPS, progress=False)
grpo.train(more, resume=True)
resumed = read_metrics(copy)
original = read_metrics(source)
print("steps in the copy now:", [m["step"] for m in resumed])
print("its first", STEPS, "steps are the original run's:", resumed[:STEPS] == original)
for m in resumed[STEPS:]:
    print(f"step {m['step']}: reward {m['reward']:.3f}, accuracy {m['rewards/correctness/mean']:.3f}, "
          f"length {m['completions/mean_length']:.1f}, SAR {m['sar/mean']:.3f}")

# %% [markdown]
# ## 7. The result: what the grid's 100-step runs learnt
#
# `sar compare` trained every method with the same settings (`COMPARE_JSON` holds them), three seeds for GRPO and
# SA-GRPO, and evaluated each final policy greedily. Its training curves, mean over seeds with a band of ± one
# standard deviation, are the seed spread any difference has to beat. **Shuffled SAR** is the control: SA-GRPO's
# reward with each step's SAR values dealt out at random among the answers, so it has SAR's scale but not its
# information; an effect of SAR must beat it too.

# %%
if grid_results is None:
    print(grid_note)
else:
    shown = [m for m in ("grpo", "sa-grpo", "shuffled-sar") if m in grid_results["methods"]]
    trio = compare.select_methods(grid_results, shown)
    fig = compare.training_curves_figure(trio, title=f"The grid: {grid_results['settings']['steps']} steps, "
                                                      "mean over seeds, band ± 1 std")
    plots.save_figure(fig, "03_grid_curves", FIGURES_DIR)
    fig = compare.budget_curve_figure(trio)
    plots.save_figure(fig, "03_grid_budget_curve", FIGURES_DIR)

# %% [markdown]
# The right panel of the second figure is the greedy length along training (every `eval_every` steps): the two
# methods start from the same base model, and the curve shows the budget at which their lengths separate.
#
# The accuracy/length table of the final policies, per seed, and the tests that decide C1, the paper's main claim
# (`sar_lib.claims`: a length difference counts as an effect when a two-sided Welch test over the seeds rejects "no
# difference" at 5%, and SA-GRPO must also be shorter than the shuffled-SAR control by the same test):

# %%
if grid_results is not None:
    table = []
    for name in shown:
        e = grid_results["methods"][name]["eval"][grid.IN_DOMAIN]
        table.append([grid_results["methods"][name]["label"], len(e["accuracy"]["per_seed"]),
                      " / ".join(f"{100 * a:.1f}" for a in e["accuracy"]["per_seed"]),
                      " / ".join(f"{n:.1f}" for n in e["mean_length"]["per_seed"])])
    base_grid = grid_results["base"][grid.IN_DOMAIN]
    table.append(["base model", "—", f"{100 * base_grid['accuracy']:.1f}", f"{base_grid['mean_length']:.1f}"])
    print(format_table(["method", "seeds", "accuracy % per seed", "mean length per seed"], table))
    c1 = next(row for row in claims.current_claims(grid_results) if row["id"] == "C1")
    print(f"\nC1 {claims.verdict_word(c1)}: {claims.measured(c1)}")

# %% [markdown]
# Now the models themselves. `shipped.evaluate_shipped` loads each method's shipped adapter on the base model and
# answers the grid's held-out problems greedily (cached in `RUNS_DIR`); the base model answers the same problems.
# With the grid's own problem count, the accuracy and length printed here are the grid's first-seed numbers,
# computed again from the weights:

# %%
manifest = shipped.read_manifest(SHIPPED_DIR or shipped.SHIPPED_DIR) if grid_results is not None else {}
if manifest and next(iter(manifest.values()))["model"] == MODEL:
    size = SHIPPED_EVAL_SIZE or grid_results["settings"]["eval_sets"][grid.IN_DOMAIN]
    shipped_dir = Path(RUNS_DIR) / "shipped"
    shipped_evals = shipped.evaluate_shipped(SHIPPED_METHODS, {grid.IN_DOMAIN: size}, shipped_dir,
                                             directory=SHIPPED_DIR or shipped.SHIPPED_DIR, workers=WORKERS)
    shipped_base = grid.ensure_base(MODEL, shipped_dir, {grid.IN_DOMAIN: size}, profile=PROFILE)   # the grid's budget
    shipped_rows = [["base model", shipped_base[grid.IN_DOMAIN]["accuracy"],
                     shipped_base[grid.IN_DOMAIN]["mean_length"], "—", "—"]]
    for m, e in shipped_evals.items():
        grid_numbers = manifest[m]["greedy"][grid.IN_DOMAIN]
        shipped_rows.append([grid_results["methods"][m]["label"], e[grid.IN_DOMAIN]["accuracy"],
                     e[grid.IN_DOMAIN]["mean_length"], grid_numbers["accuracy"], grid_numbers["mean_length"]])
    print(format_table(["model (seed 0)", "accuracy", "mean length", "grid's accuracy", "grid's mean length"],
                       shipped_rows))
else:
    shipped_evals = None
    print(f"no adapters shipped for MODEL = {MODEL!r}: `sar compare --model {MODEL} --ship-adapters DIR` trains and "
          "ships them; set SHIPPED_DIR = DIR")

# %% [markdown]
# The same questions answered by the three models (questions where the answers differ come first). Read the length
# and the last sentences: the verbose style ends with a re-check ("Let me double-check. ...") that carries nothing
# from the question.

# %%
if shipped_evals is not None:
    sources = {"base model": shipped_dir / "base",
               **{grid_results["methods"][m]["label"]: shipped_dir / m for m in SHIPPED_METHODS}}
    for example in analysis.example_answers(sources, grid.IN_DOMAIN, N_EXAMPLES):
        print(f"Q: {example['question']}\n   gold: {example['gold']}")
        for name, answer in example["answers"].items():
            mark = "correct" if answer["correct"] else "wrong"
            print(f"  [{name}] ({answer['length']} tokens, {mark}) {answer['response']}")
        print()
    styles = {name: analysis.answer_styles([folder], grid.IN_DOMAIN)["greedy"] for name, folder in sources.items()}
    print("share of the greedy answers in each style (synthetic.answer_style):")
    print(format_table(["model", *analysis.STYLES], [[name, *shares.values()] for name, shares in styles.items()]))

# %% [markdown]
# ## 8. On a laptop GPU
#
# Switching is one parameter: set `PROFILE = "laptop-8gb"` and `MODEL = get_profile(PROFILE).model` (or a local
# folder holding that model) in the parameters cell, set `WORKERS = 1` (one run at a time on one GPU), and run all
# cells. The profile loads Qwen2.5-0.5B-Instruct in 4-bit NF4 with LoRA, and back-propagates a few sequences at a
# time with gradient checkpointing. From a shell, the same runs are:
#
# ```bash
# sar train --profile laptop-8gb --reward none --steps 20 --out runs/qwen05-grpo     # GRPO
# sar train --profile laptop-8gb --reward sar --steps 20 --out runs/qwen05-sa        # SA-GRPO
# sar eval --model runs/qwen05-sa --dataset gsm8k --limit 200
# ```
#
# The profiles, and what a run of `GPU_STEPS` steps costs by the GPU check's measured step times (random weights,
# every answer forced to the full budget: a real model that stops early is faster; a laptop GPU is slower than
# these data-centre GPUs, and has not been measured):

# %%
fields = ["model", "load_in_4bit", "lora_r", "group_size", "questions_per_step", "max_new_tokens",
          "micro_batch_size", "learning_rate", "gradient_checkpointing"]
print(format_table(["profile"] + fields, [[p.name] + [str(getattr(p, f)) for f in fields]
                                          for p in models.PROFILES.values()]))
short_lr = grid.short_run_learning_rate(PROFILE).get("learning_rate")
if short_lr is not None:
    print(f"\nthe runs of this notebook and of `sar compare` on {PROFILE} train at lr {short_lr:g}, not the profile's "
          f"{profile.learning_rate:g} (grid.SHORT_RUN_LEARNING_RATES: at the profile's rate a run of tens of steps "
          "leaves the greedy answers unchanged)")
print()
for check in checks:
    for name, r in check["models"].items():
        if r.get("status") == "ok":
            print(f"{r['profile']:11} ({name}) on an {check['machine']['gpu']}: {r['time_step']:.0f} s a step, "
                  f"{GPU_STEPS} steps ≈ {GPU_STEPS * r['time_step'] / 60:.0f} min, peak {r['peak_allocated_gb']:.2f} GB "
                  f"(the check's target for this profile: {r['target_peak_gb']:g} GB)")

# %% [markdown]
# A few steps change little on a real model: the paper trains far longer, on many more questions per step, with a
# full fine-tune (`docs/paper.md` §3). Compare the trends of the curves rather than single numbers, and for larger runs use the
# TRL plug-in with vLLM rollouts (`docs/trl.md`).
#
# ## 9. The paper's other algorithm: PPO with a critic
#
# The paper adds SAR to PPO as well: `R = R_VR + α · R_SA` again, but the baseline that turns a reward into an
# advantage is a learnt **critic** instead of the group's mean (`sar_lib.ppo`, `sar train --algo ppo`). One answer
# per question; the reward sits on the answer's last token; a small value head on the policy's hidden states
# predicts it at every token, `V_t`. **GAE** (generalised advantage estimation) turns rewards and values into
# advantages, `A_t = Σ_l (γλ)^l δ_{t+l}` with `δ_t = r_t + γ V_{t+1} − V_t`; with γ = λ = 1 and the only reward at
# the end this is `A_t = R − V_t` for every token (whitened over the step), and the actor takes the same PPO-clip
# update as GRPO with these per-token advantages.
# The critic learns at twice the actor's learning rate from the clipped value loss. GRPO needs no critic because
# its G answers to one question are their own baseline; PPO spends the same rollouts on G times as many questions.
#
# `sar compare --methods ... ppo sa-ppo` trains PPO and SA-PPO with the seeds of GRPO and SA-GRPO, the same steps,
# learning rate and answers per step (an opt-in pair of the grid). The cell reads the committed grid: greedy
# accuracy and length of the four methods, claim C7 (SA-PPO against PPO, C1's criterion), and the training
# curves, the critic's **explained variance** among them, `1 − Var(R − V) / Var(R)` over the step's tokens (1: it
# predicts the reward exactly; 0: no better than a constant).

# %%
display(Markdown(verdicts.algorithms_markdown(grid_results, COMPARE_JSON, grid.IN_DOMAIN)))
if grid_results and {"ppo", "sa-ppo"} <= set(grid_results["methods"]):
    four = compare.select_methods(grid_results, [name for pair in verdicts.ALGORITHM_PAIRS for name in pair[:2]])
    fig = compare.training_curves_figure(four, ("rewards/correctness/mean", "completions/mean_length", "sar/mean",
                                                "critic/vf_explained_var"),
                                         title="GRPO and PPO, with and without SAR (grid: mean over seeds)")
    plots.save_figure(fig, "03_grpo_vs_ppo_curves", FIGURES_DIR)

# %% [markdown]
# ## 10. Verdict: what SAR did on this testbed, and why
#
# The paper's claims are about long training of real models. This notebook's live runs are one seed and a few steps;
# the test of the claims is `sar compare` (several seeds, 100 steps, the baselines, out-of-domain sets), whose
# committed results (`COMPARE_JSON`) the verdict reads, with the premises P1-P5 of the **model card** (the file
# `sar pretrain-tiny` writes next to the embedded model's weights, `sar_lib/assets/tiny/MODEL_CARD.md`, with every
# figure measured on it) that decide the regime. A difference is an effect only beyond the seed noise and the
# shuffled-SAR control; a set where the models are at chance is untestable.

# %%
premises = verdicts.read_premises(models.resolve_model(MODEL) / "card.json")
regime = verdicts.verbosity_regime(premises, alpha)
drift = {labels[m]: tuple(d.values()) for m, d in    # first and last analysis.DRIFT_WINDOW steps
         ((m, summary["methods"][m]["training_drift"]["completions/mean_length"]) for m in ("grpo", "sa-grpo"))}
grpo_eval, sa_eval = evals[labels["grpo"]], evals[labels["sa-grpo"]]
display(Markdown(verdicts.training_verdict(grid=grid_results, grid_note=grid_note, grid_path=COMPARE_JSON,
                                           regime=regime, evals={"GRPO": grpo_eval, "SA-GRPO": sa_eval}, drift=drift,
                                           dataset=grid.IN_DOMAIN, steps=STEPS)))
shorter = verdicts.percent_shorter(grpo_eval["mean_length"], sa_eval["mean_length"])
summary_path = write_summary(
    FIGURES_DIR, "03_grpo_lora_4bit_training", title=f"GRPO vs SA-GRPO: live runs of {STEPS} steps, seed {SEED}, "
                                                     f"and the grid's shipped models ({MODEL})",
    numbers={"wall seconds of the grid cell (this run)": round(wall, 1),
             "SA-GRPO % shorter than GRPO (greedy)": round(shorter or 0.0, 1),
             "SA-GRPO accuracy minus GRPO (points)": round(100 * (sa_eval["accuracy"] - grpo_eval["accuracy"]), 1),
             **({"4-bit step on this device, seconds": round(four_bit_result["step_seconds"], 1)}
                if four_bit_result else {})},
    tables=[{"title": f"live runs: greedy evaluation on {grid.IN_DOMAIN} (n = {EVAL_SIZE})",
             "columns": ["model", "accuracy", "mean length"],
             "rows": [[name, round(e["accuracy"], 3), round(e["mean_length"], 1)] for name, e in evals.items()]},
            {"title": "seconds per step (mean)", "columns": ["run", "generate", "score", "update", "step"],
             "rows": [[label] + [round(t[p], 2) for p in parts + ["step"]] for label, t in times.items()]}]
    + ([{"title": f"shipped models (seed 0 of the grid): greedy evaluation on {grid.IN_DOMAIN}",
         "columns": ["model", "accuracy", "mean length"],
         "rows": [[row[0], round(row[1], 3), round(row[2], 1)] for row in shipped_rows]}]
       if shipped_evals is not None else [])
    + ([{"title": f"claims of {COMPARE_JSON}", "columns": ["claim", "verdict"],
         "rows": [[r["id"], claims.verdict_word(r)] for r in claims.current_claims(grid_results)]}]
       if grid_results else []))
print(f"{summary_path}; this notebook ran in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Exercises
#
# Worked answers: `notebooks/solutions/03_grpo_lora_4bit_training_solutions.ipynb`. Every exercise needs the
# imports `from sar_lib import analysis, compare, grid, grpo, runs` and
# `from sar_lib.grpo_config import GRPOConfig`.
#
# 1. **Seeds.** Build the runs with `seeds=(SEED, SEED + 1, SEED + 2)` (pass them to `compare.default_grid`) and plot
#    `analysis.mean_curves` over the three runs of each method. Which differences of the live runs (section 4)
#    survive the averaging? How many evaluation problems would you need to tell a 2-point accuracy difference from noise?
# 2. **The weight of SAR.** Train SA-GRPO with α = 0.1 and 0.3: `grpo.train(GRPOConfig(reward="sar", alpha=0.1,
#    seed=SEED, out=..., **settings))` with `settings` taken from `runs[0].config` (everything but the reward, alpha,
#    seed and out), then read each run's final evaluation (`runs.read_eval(run_dir, "arith-test")`). Plot the final
#    greedy accuracy and length against α. Does the length fall monotonically?
# 3. **R_SA alone.** The paper warns never to train on SAR alone (it collapses to short, shallow answers). Run the
#    `"sar-only"` method (`methods=("sar-only",)`) for twice `STEPS` steps and watch `rewards/correctness/mean` and
#    `completions/mean_length`. Why does the group-mean baseline not protect against this?
# 4. **Exact resume.** Stop a run after a few steps, resume it to `STEPS` and compare its `metrics.jsonl` line by line
#    with an uninterrupted run's. Which columns must be equal, and why do the `time/*` columns differ?
# 5. **Where the time goes.** Halve `MAX_NEW_TOKENS` and train fresh runs (another `RUNS_DIR`). Which part of the step
#    shrinks, and why does the answers' length matter more for `generate` than for `update`?
