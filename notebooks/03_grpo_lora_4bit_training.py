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
# `docs/paper.md` §1, §3). This notebook trains both, side by side, with the same questions, the same seed and the
# same sampling noise, and looks at what changes: one group's rewards and advantages, the training curves, the
# greedy answers before and after, and what a step costs. It ends with what the paper's claims did on this
# testbed, and why.
#
# **What you'll learn**
#
# 1. how the policy is set up: LoRA adapters, on 4-bit NF4 weights (run here on the CPU, and measured on GPUs);
# 2. how `sar compare`'s grid trains and caches runs (`compare.default_grid`, shared with notebook 04);
# 3. one GRPO group laid out: its answers, R_VR, α·SAR, the reward R and the advantage, under both rewards;
# 4. reading GRPO training curves: reward, SAR, accuracy and length of the sampled answers;
# 5. before/after answers to the same questions, from the base model and the two trained policies;
# 6. where the time of a step goes (sampling, scoring, update) and the memory it takes;
# 7. how to stop and **resume** a run exactly;
# 8. what a laptop-GPU run costs and how to launch it;
# 9. the paper's other algorithm, PPO with a critic, with and without SAR (from the grid);
# 10. the verdict: which of the paper's claims held on the testbed, and the regime that decides it.
#
# On the embedded tiny model (CPU) the default parameters train two short runs in parallel, one per CPU core (the
# last cell prints this run's time). Everything is cached in `RUNS_DIR`: running the notebook again reuses the runs.

# %% tags=["parameters"]
PROFILE = "tiny-cpu"          # sar_lib.models.PROFILES: tiny-cpu | laptop-8gb | gpu-12gb
MODEL = "tiny"                # "tiny" (embedded), a local model dir, or a hub name such as get_profile(PROFILE).model
STEPS = 10                    # GRPO steps per run (the paper: 500; `sar compare`: compare.DEFAULT_STEPS)
SEED = 0                      # seeds the LoRA init, the question order and the sampling of both runs
QUESTIONS_PER_STEP = 8        # x the profile's group size (6) = answers sampled per step
EVAL_SIZE = 100               # held-out arith-test problems for the greedy evaluations
EVAL_SAMPLES = 0              # answers sampled per problem at the final evaluation (`sar compare`: 4); 0: greedy only
MAX_NEW_TOKENS = None         # answer budget in tokens; None: the profile's
MAX_PROMPT_TOKENS = None      # longest prompt allowed; None: the profile's
WORKERS = 2                   # runs trained at the same time (processes, one torch thread each on CPU)
FOUR_BIT_QUESTIONS = 2        # questions of the one 4-bit training step (section 1)
FOUR_BIT_NEW_TOKENS = 64      # its answer budget
EXTRA_STEPS = 2               # steps added in the resume demonstration (section 7)
N_EXAMPLES = 3                # questions shown before/after
GPU_STEPS = 20                # steps of the laptop-GPU run whose cost section 8 estimates
GPU_CHECKS = ("../docs/gpu_check_h100.json", "../docs/gpu_check_h200.json")   # `sar gpu-check` results
COMPARE_JSON = "../figures/grpo_vs_sar.json"   # `sar compare`'s results: the claims of the verdict
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

from sar_lib import analysis, compare, data, grid, grpo, models, plots, verdicts
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
four_bit = GRPOConfig(profile=PROFILE, model=MODEL, load_in_4bit=True, steps=1, questions_per_step=FOUR_BIT_QUESTIONS,
                      max_new_tokens=FOUR_BIT_NEW_TOKENS, max_prompt_tokens=MAX_PROMPT_TOKENS, progress=False,
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
# ## 2. Two runs: GRPO and SA-GRPO
#
# Both runs use `sar_lib.grpo.train` with the same settings; only the reward differs:
#
# | run | reward per sampled answer |
# |---|---|
# | GRPO | `R = R_VR` |
# | SA-GRPO | `R = R_VR + α · R_SA`, with `R_SA = max(1 - ppl(a|q) / ppl(a), -1)` under the current policy |
#
# Each step samples `G` answers to each of `QUESTIONS_PER_STEP` questions at temperature 1, scores them, and takes
# two AdamW steps on the PPO-clip loss with the Dr. GRPO advantage `A = R - mean of the group` (`docs/paper.md` §3).
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
                                       max_new_tokens=MAX_NEW_TOKENS, max_prompt_tokens=MAX_PROMPT_TOKENS)
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
# With one seed and a few steps, step-to-step noise is large. `sar compare` averages three seeds over more steps.

# %%
fig = compare.training_curves_figure(summary, title=f"GRPO vs SA-GRPO, seed {SEED}, {STEPS} steps ({MODEL})")
plots.save_figure(fig, "03_training_curves", FIGURES_DIR)
curves = analysis.method_curves(summary, analysis.CURVE_KEYS)
window = max(1, STEPS // 3)
rows = []
for label, c in curves.items():
    for key in analysis.CURVE_KEYS:
        values = c[key]["mean"]
        rows.append([label, key, sum(values[:window]) / window, sum(values[-window:]) / window])
print(format_table(["run", "metric", f"mean of first {window} steps", f"mean of last {window} steps"], rows))

# %% [markdown]
# ## 5. Before and after: greedy answers to held-out questions
#
# Training is judged the way the paper evaluates (`docs/paper.md` §4): greedy decoding on held-out problems
# (`arith-test`, never seen in training), scoring correctness only. The length is the number of answer tokens
# without the final eos; "% shorter" is against the base model (positive: shorter).

# %%
evals = {**{labels[r["method"]]: r["evals"][grid.IN_DOMAIN] for r in results}, "base model": base[grid.IN_DOMAIN]}
print(format_table(["model", "accuracy", "mean length", "% shorter than base", "mean length (correct)", "truncated"],
                   [[name, e["accuracy"], e["mean_length"],
                     verdicts.percent_shorter(evals["base model"]["mean_length"], e["mean_length"]),
                     e["mean_length_correct"] or float("nan"), e["truncation_rate"]] for name, e in evals.items()]))
fig = compare.accuracy_length_figure(summary, names={grid.IN_DOMAIN: f"{grid.IN_DOMAIN} (greedy, n = {EVAL_SIZE})"},
                                     title="Before (star) and after training")
plots.save_figure(fig, "03_accuracy_vs_length", FIGURES_DIR)

# %% [markdown]
# The same questions answered by the three models (problems where the answers differ come first):

# %%
sources = {**run_dirs, "base model": Path(RUNS_DIR) / "base"}
for example in analysis.example_answers(sources, grid.IN_DOMAIN, N_EXAMPLES):
    print(f"Q: {example['question']}\n   gold: {example['gold']}")
    for name, answer in example["answers"].items():
        mark = "correct" if answer["correct"] else "wrong"
        print(f"  [{name}] ({answer['length']} tokens, {mark}) {answer['response']}")
    print()

# %% [markdown]
# ## 6. Time and memory per step
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
# On the tiny model, sampling is the largest part: answers are generated one token at a time, all sequences of a
# step together, and each token costs a full (small) forward pass. SAR's extra pass is a single batched forward over
# the answers, a small share of the step. Shorter answers make the next steps' sampling cheaper, which is how the
# paper reports SA-GRPO costing *less* GPU time than GRPO overall (`docs/paper.md` §5; claim C5 of the verdict).
#
# ## 7. Stopping and resuming a run
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
# predicts it at every token, `V_t`; GAE with γ = λ = 1 gives every token the advantage `A_t = R − V_t`
# (whitened over the step), and the actor takes the same PPO-clip update as GRPO with these per-token advantages.
# The critic learns at twice the actor's learning rate from the clipped value loss. GRPO needs no critic because
# its G answers to one question are their own baseline; PPO spends the same rollouts on G times as many questions.
#
# `sar compare --methods ... ppo sa-ppo` trains PPO and SA-PPO with the seeds of GRPO and SA-GRPO, the same steps,
# learning rate and answers per step (an opt-in pair of the grid). The cell reads the committed grid: greedy
# accuracy and length of the four methods, claim C7 (SA-PPO against PPO, C1's criterion), and the training
# curves, the critic's explained variance among them (1: it predicts the reward exactly; 0: no better than a
# constant).

# %%
grid_results, grid_note = verdicts.read_grid(COMPARE_JSON)
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
# The paper's claims are about long training of real models. This notebook's two runs are one seed and a few steps;
# the test of the claims is `sar compare` (several seeds, more steps, the baselines, out-of-domain sets), whose
# committed results (`COMPARE_JSON`) the verdict reads, with the model card's premises that decide the regime.

# %%
premises = verdicts.read_premises(models.resolve_model(MODEL) / "card.json")
regime = verdicts.verbosity_regime(premises, alpha)
drift = {labels[m]: (d["first_5_steps"], d["last_5_steps"]) for m, d in
         ((m, summary["methods"][m]["training_drift"]["completions/mean_length"]) for m in ("grpo", "sa-grpo"))}
grpo_eval, sa_eval = evals[labels["grpo"]], evals[labels["sa-grpo"]]
display(Markdown(verdicts.training_verdict(grid=grid_results, grid_note=grid_note, grid_path=COMPARE_JSON,
                                           regime=regime, evals={"GRPO": grpo_eval, "SA-GRPO": sa_eval}, drift=drift,
                                           dataset=grid.IN_DOMAIN, steps=STEPS)))
shorter = verdicts.percent_shorter(grpo_eval["mean_length"], sa_eval["mean_length"])
summary_path = write_summary(
    FIGURES_DIR, "03_grpo_lora_4bit_training", title=f"GRPO vs SA-GRPO, {STEPS} steps, seed {SEED} ({MODEL})",
    numbers={"wall seconds of the grid cell (this run)": round(wall, 1),
             "SA-GRPO % shorter than GRPO (greedy)": round(shorter or 0.0, 1),
             "SA-GRPO accuracy minus GRPO (points)": round(100 * (sa_eval["accuracy"] - grpo_eval["accuracy"]), 1),
             **({"4-bit step on this device, seconds": round(four_bit_result["step_seconds"], 1)}
                if four_bit_result else {})},
    tables=[{"title": f"greedy evaluation on {grid.IN_DOMAIN} (n = {EVAL_SIZE})",
             "columns": ["model", "accuracy", "mean length"],
             "rows": [[name, round(e["accuracy"], 3), round(e["mean_length"], 1)] for name, e in evals.items()]},
            {"title": "seconds per step (mean)", "columns": ["run", "generate", "score", "update", "step"],
             "rows": [[label] + [round(t[p], 2) for p in parts + ["step"]] for label, t in times.items()]}]
    + ([{"title": f"claims of {COMPARE_JSON}", "columns": ["claim", "verdict"],
         "rows": [[r["id"], str(r["holds"])] for r in grid_results["claims"]]}] if grid_results else []))
print(f"{summary_path}; this notebook ran in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Exercises
#
# Worked answers: `notebooks/solutions/03_grpo_lora_4bit_training_solutions.ipynb`. Every exercise needs the
# imports `from sar_lib import analysis, compare, grid, grpo, runs` and
# `from sar_lib.grpo_config import GRPOConfig`.
#
# 1. **Seeds.** Build the runs with `seeds=(SEED, SEED + 1, SEED + 2)` (pass them to `compare.default_grid`) and plot
#    `analysis.mean_curves` over the three runs of each method. Which differences of section 5 survive the
#    averaging? How many evaluation problems would you need to tell a 2-point accuracy difference from noise?
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
