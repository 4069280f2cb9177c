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
# # 02 · Does SAR rank answers by quality?
#
# The paper's first qualitative claim (`docs/paper.md` §5): *SAR scores concise correct answers above redundant
# correct ones, and partially correct answers above entirely wrong ones*, comparing six types of answers to the
# same question. This notebook tests that claim on many synthetic arithmetic problems, and compares SAR with three
# other cheap scores a reward designer might reach for.
#
# **What you'll learn**
#
# 1. the six answer types and how they differ (concise, redundant, answer-only, partially correct, incorrect, irrelevant);
# 2. mean SAR per type, with 95% intervals over problems;
# 3. **pairwise ranking accuracy**: on what share of problems does the better answer score higher?
# 4. how SAR compares with `-ppl(a|q)` (confidence), `-length` and self-certainty on the same pairs;
# 5. the fair comparison the paper makes: the training rewards `R_VR + α·R_SA` and `R_VR + α·R_EM`;
# 6. a probe of a known worry: does restating the question inflate SAR?
#
# Runs in about a minute on the embedded tiny model (CPU; the last cell prints this run's time). Change `MODEL` to
# repeat it with a real model.

# %% tags=["parameters"]
PROFILE = "tiny-cpu"        # sar_lib.models.PROFILES: tiny-cpu | laptop-8gb | gpu-12gb
MODEL = "tiny"              # "tiny" (embedded), a local model dir, or a hub name such as get_profile(PROFILE).model
N_PROBLEMS = 200            # problems; each gets 6 answer types + 2 probe variants
SPLIT = "test"              # "test": problems held out from the tiny model's pretraining
N_TOKEN_PROBE = 50          # problems for the token-level look at the restatement probe
SEED = 0
FIGURES_DIR = "../figures"  # figures and 02_summary.json go here
COMPARE_JSON = "../figures/grpo_vs_sar.json"  # results of `sar compare`: claim C3 (R_SA alone), section 4

# %%
import time

import torch
from IPython.display import Markdown, display

from sar_lib import rewards, sar, synthetic
from sar_lib.lab import claims, plots, ranking, verdicts
from sar_lib.lab.demo import write_summary
from sar_lib.grading import is_correct
from sar_lib.models import default_device, get_profile, load_model, resolve_model

started = time.perf_counter()
profile = get_profile(PROFILE)
if profile.threads and default_device() == "cpu":
    torch.set_num_threads(profile.threads)   # the profile's choice: a tiny model runs faster on one thread
torch.manual_seed(SEED)
model, tokenizer = load_model(MODEL)
print(f"model {MODEL!r}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, profile {profile.name}")

# %% [markdown]
# ## 1. Six answer types per problem
#
# `synthetic.answer_types` writes, for each problem, one answer of each type (all end with `The answer is N.`).
# The problems have two or three steps, so that a partially correct answer has correct first steps to show:
#
# | type | what it is |
# |---|---|
# | `concise_correct` | the opener, the equations of the solution, then the answer |
# | `redundant_correct` | the concise answer, then `Let me double-check.` and re-check sentences that say nothing new |
# | `answer_only` | only `The answer is N.` (correct) |
# | `partially_correct` | the right first steps, then one slip in the last step (so a wrong final answer) |
# | `incorrect` | wrong at every step |
# | `irrelevant` | a correct concise solution of a **different** problem |
#
# `ranking.answer_sets` adds two probe variants of the concise answer (section 6): `concise_restated` and
# `concise_filler`. Here is one problem's set:

# %%
problems = synthetic.arithmetic_problems(N_PROBLEMS, SEED, split=SPLIT, min_steps=2)
sets = ranking.answer_sets(problems, SEED)
print("question:", problems[0].question, "| gold:", problems[0].gold, "\n")
for name, text in sets[0].items():
    print(f"{name:18} {text}\n")

# %% [markdown]
# ## 2. Scoring every answer
#
# SAR compares two contexts for the same answer tokens (notebook 01, section 2): `ctx(q)`, the chat prompt with
# the question, and `ctx(0)`, the same prompt with an empty user turn (the context with no question; `ppl(a)` is
# measured under it). `ranking.score_answer_sets` scores each answer once under `ctx(q)` (log-probs and per-token
# certainty) and once under `ctx(0)`, and returns, per answer type, `[N]` tensors of SAR, `ppl(a|q)`, `ppl(a)`, length (tokens,
# eos included) and self-certainty.

# %%
start = time.perf_counter()
scores = ranking.score_answer_sets(model, tokenizer, problems, sets, batch_size=profile.eval_batch_size)
n_answers = len(problems) * len(sets[0])
print(f"scored {n_answers} answers (2 forward passes each) in {time.perf_counter() - start:.1f} s")
print(f"\n{'answer type':20} {'SAR':>7} {'ppl(a|q)':>9} {'ppl(a)':>9} {'tokens':>7} {'certainty':>9}   (medians)")
for t, m in scores.items():
    print(f"{t:20} {float(m['sar'].median()):7.3f} {float(m['ppl_qa'].median()):9.2f} "
          f"{float(m['ppl_a'].median()):9.2f} {float(m['n_tokens'].float().median()):7.0f} "
          f"{float(m['self_certainty'].median()):9.3f}")

# %% [markdown]
# ## 3. Mean SAR per answer type

# %%
by_type = ranking.type_summary(scores, "sar")
for t, (mean, half) in by_type.items():
    print(f"{t:18} mean SAR = {mean:6.3f} ± {half:.3f}")
fig = plots.means_with_errors(list(by_type), [m for m, _ in by_type.values()], [h for _, h in by_type.values()],
                              ylabel="mean SAR (95% interval)",
                              title=f"SAR by answer type, {len(problems)} problems ({MODEL})")
plots.save_figure(fig, "02_sar_by_answer_type", FIGURES_DIR)

# %% [markdown]
# A bar far longer than the others (its mean plus error bar more than `plots.CLIP_RATIO` times the median bar's)
# would squash them into a few pixels, so `plots.means_with_errors` cuts the axis: such a bar is hatched, runs to
# the edge of the figure and has its value written on it.
#
# The embedded model comes with a **model card** (`sar_lib/assets/tiny/MODEL_CARD.md`, every number also in
# `card.json`, both written by `sar pretrain-tiny`): how the model was trained and what was measured on it. Among
# those measurements are SAR's five premises **P1-P5** (`sar_lib/lab/premises.py`), the conditions under which SAR can
# shorten answers at all: P1, `ctx(0)` gives a real "no question" likelihood; P2, verbosity does not cost
# correctness; P3, the model's answers are longer than they need to be; P4, too-short answers exist and are less
# accurate; P5, the model is right on some questions and wrong on others, so RL has room. The card also reports
# the mean SAR of each problem's correct solution written in three styles of the training corpus, the bars above
# for three of the types, and notebooks 03 and 04 read those figures for their verdicts. Side by side:

# %%
premises = verdicts.read_premises(resolve_model(MODEL) / "card.json")
styles = premises.get("sar_by_style") if premises else None
if styles is None:
    print(f"no model card with SAR by style for {MODEL!r}: nothing to compare")
else:
    same_style = {"concise_correct": "concise", "redundant_correct": "verbose", "answer_only": "answer_only"}
    print(f"{'mean SAR':18} {'this notebook':>14} {'model card':>11}")
    for here, there in same_style.items():
        print(f"{here:18} {by_type[here][0]:14.3f} {styles[there]:11.3f}   (card: {there})")
    order_here = sorted(same_style, key=lambda t: -by_type[t][0])
    order_card = sorted(same_style, key=lambda t: -styles[same_style[t]])
    card_steps = premises.get("P4_too_short_exists", {}).get("by_steps", {})
    steps_here = sorted({len(p.meta["steps"]) for p in problems})
    display(Markdown(
        f"The two {'rank the three styles in the same order' if order_here == order_card else 'rank the three styles differently'}"
        f"; their values can differ because they score different samples. This notebook: {len(problems)} held-out "
        f"problems of {steps_here[0]}-{steps_here[-1]} steps (`min_steps=2`, since a partially correct answer needs a "
        f"right first step), each redundant answer carrying the verbose style's longest re-check. The card: its own "
        f"{premises['n_problems']} held-out problems (`sar premises`' `arith-test` set, "
        + (f"{card_steps['1']['n']} of them of one step" if "1" in card_steps else "one-step problems included")
        + "), each verbose solution with a random number of re-check sentences, as in the training corpus. Quote the "
        "card's figure for the model, this notebook's for the answer types built here."))

# %% [markdown]
# ## 4. Pairwise ranking accuracy: SAR and three other scores
#
# Means hide which answer wins **on the same problem**, and that is what GRPO uses: its advantage is a reward
# minus the mean reward of the answers to the same question. For a pair of types (X, Y) and a score f:
#
# $$\text{accuracy}(X > Y) = \frac1N\sum_i \Big([f(X_i) > f(Y_i)] + \tfrac12[f(X_i) = f(Y_i)]\Big)$$
#
# 0.5 is chance (or a score that cannot tell the two apart). The pairs are `ranking.PAIRS`: the paper's two
# (concise > redundant, partial > incorrect), concise > incorrect, reasoning > answer-only and on-topic >
# irrelevant. The four scores ("higher is better" for each):
#
# * **SAR**;
# * **−ppl(a|q)**: the model's confidence in the answer given the question (the entropy-minimisation family, R_EM);
# * **−length**: shorter is better (what the paper's length penalties O1-pruner and ER push towards);
# * **self-certainty**: mean KL(Uniform ‖ π) over the answer tokens (the "Intuitor" reward, `docs/paper.md` §2).
#
# The two length penalties, each trained as `R_VR + α·r` (`docs/paper.md` §2), with `L` an answer's length in tokens:
# **O1-pruner** gives every answer `r = clip((L̄ − L) / L, −1, 1)`, `L̄` the mean length of its group (the answers to
# the same question); **ER** (efficient reasoner) gives a correct answer `r = −(2·sigmoid((L − μ_c) / σ_c) − 1)`,
# `μ_c` and `σ_c` the mean and standard deviation of the lengths of the group's correct answers, and a wrong one 0.

# %%
table = ranking.ranking_table(scores)
pairs = [ranking.pair_label(p) for p in ranking.PAIRS]
print(f"{'criterion':16}" + "".join(f"{p:>24}" for p in pairs))
for criterion, row in table.items():
    print(f"{criterion:16}" + "".join(f"{row[p]:24.3f}" for p in pairs))
bare_pair = ranking.pair_label(("concise_correct", "answer_only"))
worked_wins = table["SAR"][bare_pair]
grid_results, grid_note = verdicts.read_grid(COMPARE_JSON)
c3 = next((r for r in claims.current_claims(grid_results) if r["id"] == "C3"), None) if grid_results else None
if c3 is not None and "sar_only" in c3["numbers"]:
    length, accuracy = c3["numbers"]["sar_only"]
    collapse = (f"in `sar compare`'s grid R_SA alone ends at {length:.1f} tokens and {100 * accuracy:.1f}% accuracy: "
                f"claim C3, \"R_SA alone collapses\", {claims.verdict_word(c3)} (notebook 04 draws it)")
else:
    collapse = "claim C3 of `sar compare`'s grid, \"R_SA alone collapses\", checks it (notebook 04 draws it)"
display(Markdown(
    f"**Flag: SAR ranks the concise answer above the bare answer (answer-only) on {worked_wins:.0%} of the "
    f"{len(problems)} problems** (ties count one half)"
    + (f", {'below' if worked_wins < 0.45 else 'about at'} chance: SAR does not prefer an answer that shows its "
       "working. It averages over the answer's tokens and never asks for the steps, so a bare `The answer is N.` "
       "whose few tokens the question predicts well scores as high as a worked answer, or higher. Trained on SAR "
       f"alone, without the correctness reward, a policy follows that pull to very short answers: {collapse}."
       if worked_wins <= 0.55 else
       f": here SAR prefers the worked answer; without the correctness reward it still rewards short answers "
       f"({collapse}).")))

# %%
fig = plots.grouped_bars(pairs, {c: [table[c][p] for p in pairs] for c in ranking.CRITERIA},
                         ylabel="pairwise ranking accuracy", reference=0.5, reference_label="chance",
                         ylim=(0, 1.08), value_labels=True,
                         title=f"Share of {len(problems)} problems where the first type scores higher")
plots.save_figure(fig, "02_pairwise_ranking", FIGURES_DIR)

# %% [markdown]
# Partially correct against incorrect: both answers copy the question's numbers; the partial one gets its first
# steps right (the operations the question asks for) and slips only in the last one. A few of them, with their SAR:

# %%
for i in range(3):
    print(f"partial   SAR {float(scores['partially_correct']['sar'][i]):.3f}  {sets[i]['partially_correct']}")
    print(f"incorrect SAR {float(scores['incorrect']['sar'][i]):.3f}  {sets[i]['incorrect']}\n")

# %% [markdown]
# ### By number of steps
#
# A share over all problems mixes problems of different lengths, and can hide effects that pull in opposite
# directions. On a two-step problem the partial answer has one right step before its slip, on a three-step problem
# two. `ranking.select` keeps a subset of problems; the SAR table again, by the number of steps:

# %%
steps = torch.tensor([len(p.meta["steps"]) for p in problems])
all_pairs = list(ranking.PAIRS) + list(ranking.PROBE_PAIRS)
by_steps = {}
for k in sorted(set(steps.tolist())):
    subset = ranking.select(scores, steps == k)
    by_steps[f"{k} steps ({int((steps == k).sum())})"] = ranking.ranking_table(subset, all_pairs, names=["SAR"])["SAR"]
labels = [ranking.pair_label(p) for p in all_pairs]
print(f"{'problems':16}" + "".join(f"{p:>31}" for p in labels))
for group, row in by_steps.items():
    print(f"{group:16}" + "".join(f"{row[p]:31.3f}" for p in labels))
fig = plots.grouped_bars(labels, {g: [row[p] for p in labels] for g, row in by_steps.items()},
                         ylabel="SAR pairwise ranking accuracy", reference=0.5, reference_label="chance",
                         ylim=(0, 1.08), title="SAR's pairwise accuracy by the number of steps of the problem")
plots.save_figure(fig, "02_ranking_by_steps", FIGURES_DIR)

# %% [markdown]
# ## 5. The fair comparison: the rewards GRPO actually trains on
#
# A ranking of SAR alone against `-ppl(a|q)` alone is not what the paper compares. In training both are added to
# the correctness reward: SA-GRPO uses `R = R_VR + α·R_SA`, its closest ablation `R = R_VR + α·R_EM` with
# `R_EM = −log ppl(a|q)` (`docs/paper.md` §2). With `R_VR` in the reward a correct answer beats a wrong one under
# either, so the two differ only on pairs of equal correctness. `R_VR` here is the grader's verdict on each answer
# (`grading.is_correct`, as in training).

# %%
alpha = rewards.DEFAULT_ALPHAS["sar"]
types = list(synthetic.ANSWER_TYPES)
r_vr = {t: torch.tensor([float(is_correct(s[t], p.gold, p.kind)) for s, p in zip(sets, problems)]) for t in types}
for t in types:
    print(f"{t:18} R_VR = 1 on {float(r_vr[t].mean()):.0%} of the problems")
training_rewards = {f"R_VR + {alpha:g}·SAR": {t: r_vr[t] + alpha * scores[t]["sar"] for t in types},
                    f"R_VR + {alpha:g}·R_EM": {t: r_vr[t] - alpha * scores[t]["nll_qa"] for t in types}}
combined = {name: {ranking.pair_label(p): ranking.pairwise_accuracy(values[p[0]], values[p[1]]) for p in ranking.PAIRS}
            for name, values in training_rewards.items()}
print(f"\n{'training reward':18}" + "".join(f"{p:>24}" for p in pairs))
for name, row in combined.items():
    print(f"{name:18}" + "".join(f"{row[p]:24.3f}" for p in pairs))
display(Markdown(verdicts.paper_ablation_markdown()))

# %% [markdown]
# On fixed answers the two training rewards agree wherever correctness decides, and differ where it ties: concise
# against redundant and against answer-only (all right), partial against incorrect (both wrong). The paper's
# training numbers above add
# what a ranking of fixed answers cannot show: a policy trained on its own confidence (`R_EM`) can raise it with
# generic, predictable text, while SAR's denominator `ppl(a)` cancels whatever is predictable without the
# question, and SA-GRPO ends shorter and more accurate than `R_VR + α·R_EM`. Whether that holds on this testbed is
# claim C4 of `sar compare`'s grid (notebook 03's verdict).
#
# ## 6. Does restating the question inflate SAR?
#
# A worry about any "information from the question" reward: copying the question into the answer is the cheapest
# way to make the answer depend on the question. `v_t` is large on copied tokens (notebook 01). Two probe
# variants of the concise answer isolate the effect, with the solution itself unchanged:
#
# * `concise_restated` = `"We are told: <the problem statement>"` + the concise answer;
# * `concise_filler` = generic sentences of about the same number of words (`"Let me think about this."`, ...) + the concise answer.
#
# If restating inflated SAR, `concise_restated` would beat `concise` on most problems. The filler variant
# separates "longer" from "longer with question words".

# %%
probe = ranking.ranking_table(scores, ranking.PROBE_PAIRS)
probe_pairs = [ranking.pair_label(p) for p in ranking.PROBE_PAIRS]
print(f"{'criterion':16}" + "".join(f"{p:>30}" for p in probe_pairs))
for criterion, row in probe.items():
    print(f"{criterion:16}" + "".join(f"{row[p]:30.3f}" for p in probe_pairs))
base = scores["concise_correct"]["sar"]
differences = {ranking.SHORT_NAMES[t] + " − concise": (scores[t]["sar"] - base).tolist() for t in ranking.PROBE_TYPES}
for name, diff in differences.items():
    mean, half = ranking.mean_and_interval(diff)
    print(f"SAR({name}) = {mean:+.3f} ± {half:.3f} on average")
fig = plots.difference_histograms(differences, xlabel="SAR difference on the same problem",
                                  title="Restatement and filler in front of the concise answer")
plots.save_figure(fig, "02_restatement_probe", FIGURES_DIR)

# %% [markdown]
# Before reading the probe as an answer to the worry, look at how the model sees the padded answers at all. The
# median perplexities of the probe's answers, next to the plain concise and redundant ones:

# %%
probe_view = ("concise_correct", "redundant_correct", *ranking.PROBE_TYPES)
median_ppl = {t: (float(scores[t]["ppl_qa"].median()), float(scores[t]["ppl_a"].median())) for t in probe_view}
for t, (with_q, without_q) in median_ppl.items():
    print(f"{ranking.SHORT_NAMES[t]:20} median ppl(a|q) {with_q:8.2f}   median ppl(a) {without_q:8.2f}")
restated, filler = median_ppl["concise_restated"][0], median_ppl["concise_filler"][0]
concise_ppl, redundant_ppl = median_ppl["concise_correct"][0], median_ppl["redundant_correct"][0]
probe_unnatural = min(restated, filler) > 2 * max(concise_ppl, redundant_ppl)   # text unlike the training data
display(Markdown(
    f"The restated answers have a median `ppl(a|q)` of {restated:.0f}, the filler ones {filler:.0f}, against "
    f"{concise_ppl:.2f} for the concise answer and {redundant_ppl:.2f} for the redundant one: "
    + ("both padded variants are text the model never saw in training, so the probe measures how SAR treats such "
       "text as well as what copying the question does."
       if probe_unnatural else
       "the padded variants are about as natural to the model as its own styles, so the probe measures what copying "
       "the question does.")))

# %% [markdown]
# What the model was trained on explains both these perplexities and the redundant answer's SAR. The pretraining corpus
# (`sar_lib/synthetic/styles.py`) writes its verbose answers as the concise solution followed by `Let me
# double-check.` and re-check sentences (`Everything adds up.`, `All the numbers fit together.`, ...) that never
# depend on the question, and it never writes anything before the opening sentence. The question gives the model
# nothing to predict those re-check sentences with, so their `v_t` sits near zero (notebook 01, section 5 measures
# it) and they only dilute the mean: that is why SAR ranks concise above redundant on this testbed (section 4). The
# probe's filler is made of sentences of the same kind (some of those re-check sentences, and openers the corpus
# does not use), but in front of the solution, where the corpus never puts anything, and no arithmetic answer of
# the corpus restates its problem.
#
# Where do the restated tokens land? The heat map of `v_t` over one `concise_restated` answer, then, over the
# first `N_TOKEN_PROBE` problems, where the information gain sits (`ranking.gain_split`): on the restatement, on
# the concise answer that follows it, and on the same concise answer without the restatement. Gains are in nats,
# the natural-log unit of information (notebook 01, section 1).

# %%
n = min(N_TOKEN_PROBE, len(problems))
questions = [p.question for p in problems[:n]]
alone = sar.score_answers(model, tokenizer, questions, [s["concise_correct"] for s in sets[:n]], per_token=True,
                          batch_size=profile.eval_batch_size)
padded = sar.score_answers(model, tokenizer, questions, [s["concise_restated"] for s in sets[:n]], per_token=True,
                           batch_size=profile.eval_batch_size)
fig = plots.token_heatmap(padded[0]["tokens"], padded[0]["information_gain"],
                          title=f"v_t over a restated concise answer (SAR = {padded[0]['sar']:.3f}; "
                                f"concise alone: {alone[0]['sar']:.3f})")
plots.save_figure(fig, "02_vt_restated", FIGURES_DIR)

# %%
splits = [ranking.gain_split(p, a) for p, a in zip(padded, alone)]
average = {key: sum(s[key] for s in splits) / n for key in splits[0]}
print(f"averages over {n} problems (v_t summed over tokens, in nats):")
print(f"  restatement:                        {average['prefix']:6.1f} over {average['prefix_tokens']:.0f} tokens")
print(f"  concise part after the restatement: {average['suffix']:6.1f} over {average['answer_tokens']:.0f} tokens")
print(f"  the same tokens without it:         {average['alone']:6.1f}")
print(f"  mean_t v_t: {average['mean_alone']:.3f} alone -> {average['mean_padded']:.3f} restated")

# %% [markdown]
# SAR sees only the mean over all tokens, so a restatement pays only if its words gain more per token than the
# answer already did. Once the restatement has written the question's numbers into the answer, the equations after
# it can copy them from the answer itself, with or without the question in the prompt, so the question has little
# left to add to them; whatever else moves is the model reading a text unlike its training data. On this model:

# %%
per_token_restated = average["prefix"] / average["prefix_tokens"]
if average["alone"] <= 0:
    fate = "the answer alone had no gain to lose"
elif average["suffix"] < 0:
    fate = f"their gain turns negative: they lose all of it and {-average['suffix']:.1f} nats more"
elif average["suffix"] < average["alone"]:
    fate = f"they keep {average['suffix'] / average['alone']:.0%} of their gain"
else:
    fate = "they gain at least as much as without it"
display(Markdown(
    f"The restatement's {average['prefix_tokens']:.0f} tokens gain {average['prefix']:+.1f} nats in all "
    f"({per_token_restated:+.3f} a token, against {average['mean_alone']:+.3f} for the concise answer alone). The "
    f"concise answer's tokens after it gain {average['suffix']:+.1f} nats against {average['alone']:+.1f} without "
    f"the restatement: {fate}. On average the mean `v_t`, the quantity SAR is monotone in, goes from "
    f"{average['mean_alone']:.3f} to {average['mean_padded']:.3f}: restating "
    f"{'lowers' if average['mean_padded'] < average['mean_alone'] else 'does not lower'} it here."))

# %% [markdown]
# ## 7. Verdict
#
# Our answers are written by templates, while the paper's are sampled from the policy; a template "incorrect"
# answer is still fluent and uses the question's numbers. With that in mind, the claim on this model:

# %%
verdict = verdicts.ranking_verdict(table=table, combined=combined, probe=probe, median_ppl=median_ppl,
                                   probe_unnatural=probe_unnatural, n_problems=len(problems), alpha=alpha)
display(Markdown(verdict.markdown))
summary_path = write_summary(
    FIGURES_DIR, "02_sar_quality_ranking", title=f"answer-type ranking over {len(problems)} problems",
    numbers={f"mean SAR, {t}": round(m, 3) for t, (m, _) in by_type.items()},
    tables=[verdict.summary_table,
            {"title": "pairwise ranking accuracy (share of problems where the first type scores higher)",
             "columns": ["criterion"] + pairs,
             "rows": [[c] + [round(table[c][p], 3) for p in pairs] for c in ranking.CRITERIA]},
            {"title": f"training rewards (alpha = {alpha:g}): pairwise ranking accuracy",
             "columns": ["reward"] + pairs, "rows": [[name] + [round(row[p], 3) for p in pairs]
                                                      for name, row in combined.items()]},
            {"title": "SAR pairwise ranking accuracy by number of steps",
             "columns": ["problems"] + labels[:2] + labels[-2:-1],
             "rows": [[g] + [round(row[p], 3) for p in labels[:2] + labels[-2:-1]] for g, row in by_steps.items()]},
            {"title": "restatement probe (share of problems where the padded answer scores higher)",
             "columns": ["criterion"] + probe_pairs,
             "rows": [[c] + [round(probe[c][p], 3) for p in probe_pairs] for c in ranking.CRITERIA]}])
print(f"{summary_path}; this notebook ran in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Exercises
#
# Worked answers: `notebooks/solutions/02_sar_quality_ranking_solutions.ipynb`.
#
# 1. **Where SAR sees the slip.** Plot the `v_t` heat maps (`plots.token_heatmap`) of the partially correct and the
#    incorrect answer of one problem. On which tokens do they differ, and why do the wrong results of the incorrect
#    answer not cost it much `v_t`?
# 2. **Length as a reward.** Read the `-length` row of the table in section 4. On which pairs is it right on every
#    problem, on which at or below chance, and why? Why does `pairwise_accuracy` count ties as one half, and for
#    which pair do ties happen here?
# 3. **Correctness first.** Show that with `α < 0.5` the reward `R_VR + α·SAR` always ranks a correct answer above
#    a wrong one of the same question, whatever the two SARs are. Check it on the table of section 5, then find
#    the smallest `α` at which SAR alone could overturn correctness on these answers.
# 4. **Out of distribution.** Repeat sections 2-4 with `synthetic.logic_problems(N_PROBLEMS, SEED)` instead of the
#    arithmetic problems (`answer_types` supports them). Does SAR still put the concise proof above the redundant one?
# 5. **Filler after the answer.** `concise_filler` puts generic sentences *before* the solution. Put the same
#    sentences *after* `The answer is N.` instead, score both, and compare their SAR with the concise answer's.
#    Does the position of the filler matter, and why?
