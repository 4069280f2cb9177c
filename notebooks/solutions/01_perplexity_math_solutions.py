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
# # 01 · Perplexity math: worked answers to the exercises
#
# The answer key of `notebooks/01_perplexity_math.ipynb`, for teachers. It runs on its own (it rebuilds what it
# needs from the notebook) on the embedded tiny model, in well under a minute on a CPU. Every claim below is
# printed by the cell above it; rerun with another `MODEL` and reread.

# %% tags=["parameters"]
PROFILE = "tiny-cpu"        # sar_lib.models.PROFILES
MODEL = "tiny"              # "tiny" (embedded), a local model dir, or a hub name
N_EXAMPLES = 24             # problems for exercise 4
SEED = 0

# %%
import random

import torch

from sar_lib import sar, synthetic
from sar_lib.lab import plots, ranking
from sar_lib.models import default_device, get_profile, load_model

profile = get_profile(PROFILE)
if profile.threads and default_device() == "cpu":
    torch.set_num_threads(profile.threads)
torch.manual_seed(SEED)
model, tokenizer = load_model(MODEL)
problems = synthetic.arithmetic_problems(N_EXAMPLES, SEED, split="test", min_steps=2)
problem = problems[0]
answers = synthetic.answer_types(problem, problems[1], random.Random(SEED))
concise = answers["concise_correct"]
print("question:", problem.question)
print("concise answer:", concise)

# %% [markdown]
# ## 1. Temperature
#
# Dividing the logits by `τ` before the softmax sharpens the distribution for `τ < 1` and flattens it for `τ > 1`.
# Where the written token is the model's favourite (all three positions of the toy example), sharpening raises its
# probability and lowers the perplexity; flattening does the opposite, towards the uniform `V = 4`.

# %%
logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 3.0, 0.2, -0.5], [-1.0, -1.0, 0.0, 2.5]])
answer = torch.tensor([0, 1, 3])
for tau in (0.5, 1.0, 2.0):
    token_logp = torch.log_softmax(logits / tau, dim=-1).gather(-1, answer[:, None]).squeeze(-1)
    print(f"tau = {tau:3.1f}: perplexity {float((-token_logp.mean()).exp()):.4f}")

# %% [markdown]
# SAR scores answers with the policy's own distribution, `τ = 1` (`docs/paper.md` §1), whatever temperature sampled
# them. The reward asks how likely the *policy* finds the answer with and without the question; the sampling
# temperature is a choice of how to explore, and a different `τ` would score a distribution the policy does not
# have. The PPO ratio `π_new / π_old` of the update uses the same raw log-probabilities, so SAR's `ppl(a|q)` comes
# for free from them.
#
# ## 2. Repetition
#
# Prediction: a repeated sentence is predictable from the answer itself, with or without the question, so `v_t`
# should be near zero on its tokens, and every repetition should lower the mean gain, hence SAR. The output says
# more than that: the first repetition has clearly negative `v_t` (with the question in view the model expects the
# answer to end after `The answer is N.`, so a second final sentence is *less* likely than without it), and SAR
# drops; the later repetitions gain less and less negatively, until the model, caught in the loop, predicts them
# about equally with and without the question, and SAR stops falling. SAR penalises the tokens that break what
# the question leads one to expect, not length itself.

# %%
last = concise.split(". ")[-1]
repeated = [concise + (" " + last) * k for k in range(6)]
rows = sar.score_answers(model, tokenizer, [problem.question] * len(repeated), repeated, per_token=True)
base_tokens = rows[0]["n_tokens"]
for k, row in enumerate(rows):
    extra = row["information_gain"][base_tokens - 1:-1]   # the repeated tokens (the final eos left out)
    mean_extra = sum(extra) / len(extra) if extra else float("nan")
    print(f"{k} repetitions: {row['n_tokens']:3d} tokens, SAR {row['sar']:.3f}, mean v_t on the repeated tokens "
          f"{mean_extra:+.3f}")
fig = plots.token_heatmap(rows[1]["tokens"], rows[1]["information_gain"],
                          title=f"v_t with the last sentence repeated once (SAR = {rows[1]['sar']:.3f})")

# %% [markdown]
# ## 3. A wrong question
#
# The concise answer of `problems[0]` under the question of `problems[1]`: its numbers are not that question's, so
# the question makes them *less* likely than no question at all, `v_t < 0` on the numbers, and SAR is negative.
# This is the `irrelevant` answer type of section 3, seen from the other side.

# %%
right, wrong = sar.score_answers(model, tokenizer, [problem.question, problems[1].question], [concise, concise],
                                 per_token=True)
print(f"SAR under its own question {right['sar']:+.3f}, under problems[1]'s question {wrong['sar']:+.3f}")
fig = plots.token_heatmap(wrong["tokens"], wrong["information_gain"],
                          title=f"v_t of problems[0]'s concise answer under problems[1]'s question (SAR = {wrong['sar']:.3f})")

# %% [markdown]
# ## 4. The `log` variant
#
# Both variants are functions of `Δ = NLL(a) − NLL(a|q)`: `ppl` gives `1 − e^{−Δ}` (clipped at −1), `log` gives
# `Δ / NLL(a)`. Since `NLL(a) > 0`, both have the sign of `Δ`: they always agree in sign. They can order two answers
# differently because `log` divides by each answer's own `NLL(a)`: an answer with a small gain but a small `NLL(a)`
# can beat one with a larger gain. Counting such pairs among the six answers of each problem:

# %%
sets = ranking.answer_sets(problems, SEED, probe=False)
types = list(synthetic.ANSWER_TYPES)
questions = [p.question for p in problems for _ in types]
texts = [s[t] for s in sets for t in types]
ppl_rows = sar.score_answers(model, tokenizer, questions, texts, batch_size=profile.eval_batch_size)
log_rows = sar.score_answers(model, tokenizer, questions, texts, batch_size=profile.eval_batch_size, variant="log")
same_sign = all((a["sar"] > 0) == (b["sar"] > 0) for a, b in zip(ppl_rows, log_rows))
print("the two variants agree in sign on every answer:", same_sign)
discordant, example = 0, None
for i in range(len(problems)):
    block = range(i * len(types), (i + 1) * len(types))
    for x in block:
        for y in block:
            if x < y and (ppl_rows[x]["sar"] - ppl_rows[y]["sar"]) * (log_rows[x]["sar"] - log_rows[y]["sar"]) < 0:
                discordant += 1
                example = example or (i, types[x % len(types)], types[y % len(types)], x, y)
print(f"pairs of answers to the same question ordered differently: {discordant} of "
      f"{len(problems) * len(types) * (len(types) - 1) // 2}")
if example:
    i, tx, ty, x, y = example
    print(f"e.g. problem {i}: {tx} vs {ty}: ppl variant {ppl_rows[x]['sar']:.3f} vs {ppl_rows[y]['sar']:.3f}, "
          f"log variant {log_rows[x]['sar']:.3f} vs {log_rows[y]['sar']:.3f}")

# %% [markdown]
# ## 5. Your own context: `ctx(0)` holds the instruction
#
# The user turn of `ctx(0)` keeps the instruction and drops only the question. Both contexts then share everything
# but the question, which is what the paper's empty user turn aims at; but the tiny model was trained with the
# empty user turn, not this one, so its `ppl(a)` under the new context is not a "no question" likelihood it learned.

# %%
instruction_only = sar.prompt_text(tokenizer, sar.INSTRUCTION, add_instruction=False)
paper = sar.empty_prompt_text(tokenizer)
flat = [sar.answer_ids(tokenizer, t) for t in texts]
ctx_q = {p.question: sar.encode_text(tokenizer, sar.prompt_text(tokenizer, p.question)) for p in problems}
by_context = {}
for name, text_0 in (("paper: empty user turn", paper), ("user turn = the instruction", instruction_only)):
    out = sar.sar_from_token_ids(model, sar.encode_text(tokenizer, text_0), flat, pad_token_id=tokenizer.pad_token_id,
                                 ctx_q=[ctx_q[q] for q in questions], batch_size=profile.eval_batch_size)
    by_context[name] = out["sar"].reshape(len(problems), len(types)).mean(0)
print(f"{'ctx(0)':30}" + "".join(f"{ranking.SHORT_NAMES[t]:>12}" for t in types))
for name, values in by_context.items():
    print(f"{name:30}" + "".join(f"{v:12.3f}" for v in values.tolist()))
change = by_context["user turn = the instruction"] - by_context["paper: empty user turn"]
print(f"{'change':30}" + "".join(f"{v:+12.3f}" for v in change.tolist()))

# %% [markdown]
# Read the change row: the types whose SAR moves most are the ones whose `ppl(a)` the unfamiliar context changes
# most. Whether this context is "closer to the paper's intent" is a modelling choice: it removes exactly the
# question, but it asks the model for a likelihood under a prompt it never saw without a question, and SAR is only
# meaningful where `ppl(a)` is a likelihood the model actually has: premise P1 of the **model card**, the record
# of how the embedded model was trained and what was measured on it (`sar_lib/assets/tiny/MODEL_CARD.md`), which
# checks SAR's five premises P1-P5 (`sar_lib/lab/premises.py`; notebook 02, section 3, lists them).
