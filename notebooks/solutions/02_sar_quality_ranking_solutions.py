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
# # 02 · Does SAR rank answers by quality? Worked answers to the exercises
#
# The answer key of `notebooks/02_sar_quality_ranking.ipynb`, for teachers. It rebuilds the notebook's answer sets
# and scores on its own (fewer problems by default, so it runs in well under a minute on a CPU). Every claim below is
# printed by the cell above it.

# %% tags=["parameters"]
PROFILE = "tiny-cpu"        # sar_lib.models.PROFILES
MODEL = "tiny"              # "tiny" (embedded), a local model dir, or a hub name
N_PROBLEMS = 100            # arithmetic problems (the notebook: 200)
N_LOGIC = 60                # logic problems of exercise 4
SEED = 0

# %%

import torch

from sar_lib import rewards, sar, synthetic
from sar_lib.lab import plots, ranking
from sar_lib.grading import is_correct
from sar_lib.models import default_device, get_profile, load_model

profile = get_profile(PROFILE)
if profile.threads and default_device() == "cpu":
    torch.set_num_threads(profile.threads)
torch.manual_seed(SEED)
model, tokenizer = load_model(MODEL)
problems = synthetic.arithmetic_problems(N_PROBLEMS, SEED, split="test", min_steps=2)
sets = ranking.answer_sets(problems, SEED)
scores = ranking.score_answer_sets(model, tokenizer, problems, sets, batch_size=profile.eval_batch_size)
table = ranking.ranking_table(scores)
pairs = [ranking.pair_label(p) for p in ranking.PAIRS]
print(f"{'criterion':16}" + "".join(f"{p:>24}" for p in pairs))
for criterion, row in table.items():
    print(f"{criterion:16}" + "".join(f"{row[p]:24.3f}" for p in pairs))

# %% [markdown]
# ## 1. Where SAR sees the slip
#
# The partial and the incorrect answer of one problem, token by token. Both copy the question's numbers, and that is
# where most of the gain is. The results they compute are predicted by their own equations (with or without the
# question), so a wrong result costs little `v_t`: the question does not tell the model which result is right, only
# which numbers to use. The differences sit on the tokens where the two answers diverge.

# %%
i = 0
pair = [sets[i]["partially_correct"], sets[i]["incorrect"]]
rows = sar.score_answers(model, tokenizer, [problems[i].question] * 2, pair, per_token=True)
print("question:", problems[i].question, "| gold:", problems[i].gold)
for name, text, row in zip(("partial", "incorrect"), pair, rows):
    print(f"{name:9} SAR {row['sar']:.3f}  mean v_t {sum(row['information_gain']) / row['n_tokens']:+.3f}  {text}")
    plots.token_heatmap(row["tokens"], row["information_gain"], title=f"v_t over the {name} answer (SAR = {row['sar']:.3f})")

# %% [markdown]
# ## 2. Length as a reward
#
# `-length` is right on every problem exactly where the better answer is shorter by construction: concise against
# redundant (the redundant answer is the concise one plus sentences). It is wrong wherever the better answer is the
# longer one: reasoning against the bare answer-only answer. Partial against incorrect, and concise against
# incorrect, have equations of the same shape, so their lengths are often equal: those ties count one half each,
# which is what keeps a score that cannot tell two answers apart at 0.5 instead of rewarding or punishing it. The
# share of tied lengths per pair:

# %%
for first, second in ranking.PAIRS:
    ties = float((scores[first]["n_tokens"] == scores[second]["n_tokens"]).float().mean())
    print(f"{ranking.pair_label((first, second)):26} -length accuracy {table['-length'][ranking.pair_label((first, second))]:.3f}, "
          f"equal lengths on {ties:.0%} of the problems")

# %% [markdown]
# A reward that is right on concise vs redundant *because* it counts tokens would also push towards the answer-only
# style, which is wrong more often on multi-step problems: that is the over-shoot length penalties risk.
#
# ## 3. Correctness first
#
# Below the clip, `−1 ≤ SAR < 1`, so two answers' SARs differ by less than 2 and their `α·SAR` by less than `2α`. A
# correct answer has `R_VR = 1`, a wrong one `R_VR = 0`: the correct one wins whenever `1 > 2α`, i.e. `α < 0.5`,
# whatever the SARs. On these answers SAR alone could overturn correctness only where the wrong answer's SAR exceeds
# the correct one's by more than `1/α`; the smallest such `α` is one over the largest such excess:

# %%
alpha = rewards.DEFAULT_ALPHAS["sar"]
types = list(synthetic.ANSWER_TYPES)
r_vr = {t: torch.tensor([float(is_correct(s[t], p.gold, p.kind)) for s, p in zip(sets, problems)]) for t in types}
combined = {t: r_vr[t] + alpha * scores[t]["sar"] for t in types}
print(f"R_VR + {alpha:g}·SAR, concise > incorrect on "
      f"{ranking.pairwise_accuracy(combined['concise_correct'], combined['incorrect']):.3f} of the problems")
excess = max(float((scores[w]["sar"] - scores[c]["sar"]).max())
             for c in ("concise_correct", "redundant_correct", "answer_only") for w in ("partially_correct", "incorrect"))
print(f"largest SAR excess of a wrong answer over a correct one of the same problem: {excess:+.3f}")
print("smallest alpha at which it would flip the order:",
      f"{1 / excess:.2f}" if excess > 0 else "none (no wrong answer ever has the higher SAR)")

# %% [markdown]
# ## 4. Out of distribution: logic proofs
#
# The same answer types for ProntoQA-style problems: the concise proof, the proof with re-checks (redundant), the
# flipped last step (partial), a wrong chain (incorrect). The model is at chance on the logic task itself (notebook
# 04), but SAR only asks whether the answer uses the question's facts, which a copied proof does.

# %%
logic = synthetic.logic_problems(N_LOGIC, SEED)
logic_sets = ranking.answer_sets(logic, SEED, probe=False)
logic_scores = ranking.score_answer_sets(model, tokenizer, logic, logic_sets, batch_size=profile.eval_batch_size)
logic_table = ranking.ranking_table(logic_scores)
print(f"{'criterion':16}" + "".join(f"{p:>24}" for p in pairs))
for criterion, row in logic_table.items():
    print(f"{criterion:16}" + "".join(f"{row[p]:24.3f}" for p in pairs))
print("\nan example concise proof:", logic_sets[0]["concise_correct"])

# %% [markdown]
# Read the SAR row against the arithmetic one at the top. The question here is a long list of facts, and a proof
# that copies them gains from the question whether or not its conclusion is right. The redundant proof restates the
# statement it has to decide and draws extra "So ..." conclusions from the question's facts: those tokens gain from
# the question as much as the proof itself, so SAR's preference for the concise proof is much weaker here than on
# arithmetic, where the redundant answer's extra sentences are question-free filler.
#
# ## 5. Filler after the answer
#
# The same generic sentences, before the solution (`concise_filler`) and after `The answer is N.`:

# %%
after = []
for s in sets:
    filler = s["concise_filler"][: -len(s["concise_correct"])].strip()
    after.append(f"{s['concise_correct']} {filler}")
questions = [p.question for p in problems]
after_rows = sar.score_answers(model, tokenizer, questions, after, batch_size=profile.eval_batch_size)
after_sar = torch.tensor([r["sar"] for r in after_rows])
for name, values in (("concise", scores["concise_correct"]["sar"]), ("filler before", scores["concise_filler"]["sar"]),
                     ("filler after", after_sar)):
    print(f"{name:14} mean SAR {float(values.mean()):.3f}")
print(f"filler after beats filler before on {ranking.pairwise_accuracy(after_sar, scores['concise_filler']['sar']):.0%} "
      "of the problems")

# %% [markdown]
# Both positions add tokens with `v_t ≈ 0` and dilute the mean, so both lose against the plain concise answer. The
# position matters through the solution's own tokens: filler in front changes the context the equations are read in
# (with and without the question alike), filler behind leaves them untouched. The verbose style of the tiny model's
# corpus puts its re-check sentences behind the answer.
