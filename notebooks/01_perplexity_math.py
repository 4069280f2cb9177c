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
# # 01 · Perplexity math: from logits to the Self-Aligned Reward
#
# The Self-Aligned Reward (SAR, [Han et al. 2025](https://arxiv.org/abs/2509.05489); the formula and its settings
# in `docs/paper.md` §1) scores an answer `a` to a question `q` by how much **reading the question** makes the
# answer more likely:
#
# $$R_{SA} = \max\Big(\frac{\mathrm{ppl}(a) - \mathrm{ppl}(a\mid q)}{\mathrm{ppl}(a)},\,-1\Big)$$
#
# **What you'll learn**
#
# 1. how a language model's logits become token log-probabilities, a mean NLL and a perplexity (a worked example you can check by hand);
# 2. conditional vs standalone perplexity, `ppl(a|q)` vs `ppl(a)`, on real arithmetic problems;
# 3. the SAR algebra and its per-token form `1 - exp(-mean_t v_t)`, checked numerically;
# 4. where the reward comes from, token by token (a heat map of `v_t`);
# 5. that `sar_lib` computes exactly what a naive token-by-token loop computes;
# 6. what the choice of context (system prompt, empty user turn, "no context") does to the numbers;
# 7. what SAR does **not** measure: whether the answer is right.
#
# Everything runs on the embedded tiny reasoner (CPU, offline) in well under a minute (the last cell prints this
# run's time). To use a real model, set `MODEL` in the next cell (e.g. `"Qwen/Qwen2.5-0.5B-Instruct"`, or a local
# folder).

# %% tags=["parameters"]
PROFILE = "tiny-cpu"        # sar_lib.models.PROFILES: tiny-cpu | laptop-8gb | gpu-12gb
MODEL = "tiny"              # "tiny" (embedded), a local model dir, or a hub name such as get_profile(PROFILE).model
N_EXAMPLES = 24             # problems for the averaged comparisons (sections 3, 7 and 8)
SEED = 0
FIGURES_DIR = "../figures"  # figures and 01_summary.json go here

# %%
import math
import random
import re
import time

import torch
from IPython.display import Markdown, display

from sar_lib import perplexity, rewards, sar, synthetic
from sar_lib.lab import plots, ranking, verdicts
from sar_lib.lab.demo import write_summary
from sar_lib.models import default_device, get_profile, load_model

started = time.perf_counter()
profile = get_profile(PROFILE)
if profile.threads and default_device() == "cpu":
    torch.set_num_threads(profile.threads)   # the profile's choice: a tiny model runs faster on one thread
torch.manual_seed(SEED)
model, tokenizer = load_model(MODEL)
pad_id = tokenizer.pad_token_id
print(f"model {MODEL!r}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
      f"vocabulary {len(tokenizer)}, profile {profile.name}")

# %% [markdown]
# ## 1. From logits to perplexity, by hand
#
# A causal language model reads a prefix and outputs one **logit** per vocabulary entry for the next token.
# The softmax turns logits `z` into probabilities; in log space
#
# $$\log \pi(v) = z_v - \log \sum_{v'} e^{z_{v'}} \qquad(\text{log-softmax})$$
#
# For an answer `a = (a_1 … a_T)` we keep, at each position `t`, the log-probability of the token that actually
# comes next, `log π(a_t | ctx, a_<t)`. The **mean negative log-likelihood** and the **perplexity** are
#
# $$\mathrm{NLL} = -\frac1T\sum_t \log\pi(a_t\mid \mathrm{ctx}, a_{<t}),\qquad \mathrm{ppl} = e^{\mathrm{NLL}} .$$
#
# The logarithms are natural ones, so these quantities are measured in **nats** (the unit of information of base
# `e`; one nat is `1 / ln 2` bits): a token of probability `p` costs `−log p` nats, 0 when `p = 1`.
#
# Perplexity is "the number of equally likely tokens the model was choosing between, on average": 1 means
# certain, `V` (the vocabulary size) means uniform guessing. A toy vocabulary of four tokens, an answer of
# three tokens (`7`, `8`, end-of-turn):

# %%
vocab = ["7", "8", "9", "<eos>"]
logits = torch.tensor([[2.0, 0.5, -1.0, 0.0],    # position 1: the model expects "7"
                       [0.1, 3.0, 0.2, -0.5],    # position 2: "8"
                       [-1.0, -1.0, 0.0, 2.5]])  # position 3: end of turn
answer = torch.tensor([0, 1, 3])                  # the answer that was written: "7", "8", "<eos>"

log_probs = torch.log_softmax(logits, dim=-1)
token_logp = log_probs.gather(-1, answer[:, None]).squeeze(-1)
for t, (tok, lp) in enumerate(zip(answer.tolist(), token_logp.tolist()), start=1):
    print(f"t={t}  token {vocab[tok]!r:8}  p = {math.exp(lp):.4f}  log p = {lp:.4f}")
toy_nll = -token_logp.mean()
print(f"mean NLL = {toy_nll:.4f} nats,  perplexity = exp(NLL) = {toy_nll.exp():.4f}  (uniform guessing: {len(vocab)})")

# %% [markdown]
# `sar_lib.perplexity` does the same on batches: `mean_nll(logprobs, mask)` and `perplexity(logprobs, mask)` take
# `[B, T]` log-probabilities and a mask of real (non-padding) tokens.

# %%
mask = torch.ones(1, 3, dtype=torch.bool)
print("library mean NLL:", perplexity.mean_nll(token_logp[None], mask).item())
print("library perplexity:", perplexity.perplexity(token_logp[None], mask).item())
assert torch.allclose(perplexity.perplexity(token_logp[None], mask), toy_nll.exp())

# %% [markdown]
# ## 2. The same numbers from a real model: one answer, two contexts
#
# SAR compares two contexts for the **same** answer tokens (`docs/paper.md` §1):
#
# * `ctx(q)`: the chat prompt with the system prompt `S` and the user turn `question + " " + instruction`;
# * `ctx(0)`: the *same* template and system prompt with an **empty user turn** (read "the context with no
#   question"; `ppl(a)`, the answer's perplexity without the question, is measured under it).
#
# The answer is tokenised once, with the end-of-turn token appended (as a finished generation ends). The problems
# have two or three steps, so that a "partially correct" answer can get its first steps right before it slips.

# %%
problems = synthetic.arithmetic_problems(N_EXAMPLES, SEED, split="test", min_steps=2)
problem = problems[0]
answers = synthetic.answer_types(problem, problems[1], random.Random(SEED))
print("question:", problem.question, "| gold:", problem.gold)
for name, text in answers.items():
    print(f"  {name:18} {text}")

ctx_q_text = sar.prompt_text(tokenizer, problem.question)
ctx_0_text = sar.empty_prompt_text(tokenizer)
print("\nctx(q) =", repr(ctx_q_text))
print("ctx(0) =", repr(ctx_0_text))

# %%
concise = answers["concise_correct"]
ctx_q = sar.encode_text(tokenizer, ctx_q_text)
ctx_0 = sar.encode_text(tokenizer, ctx_0_text)
a_ids = sar.answer_ids(tokenizer, concise)
res = sar.sar_from_token_ids(model, ctx_0, [a_ids], pad_token_id=pad_id, ctx_q=[ctx_q])
logp_q, logp_0 = res["logprobs_q"][0], res["logprobs_a"][0]
tokens = [tokenizer.decode([t]) for t in a_ids]
print(f"{len(ctx_q)} context tokens with the question, {len(ctx_0)} without; answer: {len(a_ids)} tokens (eos included)")
print(f"{'token':>10} {'log p(a_t|q)':>13} {'log p(a_t|0)':>13}")
for tok, lq, l0 in zip(tokens, logp_q.tolist(), logp_0.tolist()):
    print(f"{tok!r:>10} {lq:13.3f} {l0:13.3f}")

# %%
fig = plots.token_logprobs(tokens, {"log π(a_t | ctx(q), a_<t)": logp_q.tolist(),
                                    "log π(a_t | ctx(0), a_<t)": logp_0.tolist()},
                           title="The concise answer, token by token, with and without the question")
plots.save_figure(fig, "01_token_logprobs", FIGURES_DIR)

# %% [markdown]
# Where the two lines separate, the question carried the information. Look there for the numbers copied from the
# question (the question in view makes them easy to write, without it they are a guess), the operators (the
# question's words say whether to add or subtract) and the words that decide how many steps there are (`Then` or
# `The answer is`). The formatting (`=`, `.`) and the result of each step (the answer's own arithmetic predicts it
# once its operands are written) have little to take from the question.
#
# The opening sentence is a case of its own. Every arithmetic answer of the training corpus that shows its steps
# opens with it, so once its first word is written the rest follows with or without the question. The first word is a choice, though: the
# corpus also has answers that open otherwise (a bare `The answer is N.`, the logic problems' chains of facts), and
# the question tells at least whether a word problem's answer or a logic chain comes next. The gap between the two
# lines, token by token, is `v_t` in nats (section 4 names it):

# %%
gap = (logp_q - logp_0).tolist()
n_opener = len(sar.answer_ids(tokenizer, synthetic.REASONING_OPENER)) - 1   # its tokens, without the eos
print(f"first token of the opening sentence, {tokens[0]!r}: log p {float(logp_q[0]):.3f} with the question, "
      f"{float(logp_0[0]):.3f} without: v_t = {gap[0]:+.2f}")
print(f"its other {n_opener - 1} tokens: mean v_t = {sum(gap[1:n_opener]) / (n_opener - 1):+.3f}")
largest = sorted(zip(gap, range(len(gap))), reverse=True)[:6]
print("largest v_t:", ", ".join(f"{tokens[k]!r} (token {k + 1}) {g:+.2f}" for g, k in largest))

# %% [markdown]
# ## 3. Conditional vs standalone perplexity
#
# `ppl(a|q)` asks "how natural is this answer **to this question**?", `ppl(a)` asks "how natural is this text
# on its own?". First the six answer types of the problem above, then medians over `N_EXAMPLES` problems.

# %%
rows = dict(zip(answers, sar.score_answers(model, tokenizer, [problem.question] * len(answers), list(answers.values()))))
print(f"{'answer type':18} {'tokens':>6} {'ppl(a|q)':>9} {'ppl(a)':>9} {'SAR':>7}")
for name, row in rows.items():
    print(f"{name:18} {row['n_tokens']:6d} {row['ppl_qa']:9.2f} {row['ppl_a']:9.2f} {row['sar']:7.3f}")
bare, worked = rows["answer_only"], rows["concise_correct"]
display(Markdown(
    f"Note the bare answer: `{answers['answer_only']}` ({bare['n_tokens']} tokens) scores SAR {bare['sar']:.3f}, "
    + (f"**above** the concise answer's {worked['sar']:.3f}, which shows its working. SAR averages over the answer's "
       "tokens and never asks for the steps, so a short answer whose few tokens the question predicts well can "
       "outscore a worked one. That pull is why SAR is never trained on alone: claim C3 of `sar compare`'s grid "
       "(R_SA alone collapses to very short answers, notebook 04) checks it."
       if bare["sar"] > worked["sar"] else
       f"below the concise answer's {worked['sar']:.3f}: on this problem SAR prefers the answer that shows its "
       "working. Section 7 compares the two over many problems; claim C3 of `sar compare`'s grid (R_SA alone "
       "collapses to very short answers, notebook 04) is what happens when SAR alone is trained on.")))

# %%
sets = ranking.answer_sets(problems, SEED, probe=False)
scores = ranking.score_answer_sets(model, tokenizer, problems, sets, batch_size=profile.eval_batch_size)
types = list(synthetic.ANSWER_TYPES)
median = lambda x: float(x.median())
ppl_q_med = [median(scores[t]["ppl_qa"]) for t in types]
ppl_0_med = [median(scores[t]["ppl_a"]) for t in types]
share_lower = {t: float((scores[t]["ppl_qa"] < scores[t]["ppl_a"]).float().mean()) for t in types}
for t, q, z in zip(types, ppl_q_med, ppl_0_med):
    print(f"{t:18} median ppl(a|q) = {q:8.2f}   median ppl(a) = {z:8.2f}   "
          f"ppl(a|q) < ppl(a) in {share_lower[t]:.0%} of {len(problems)} problems")

# %%
fig = plots.grouped_bars([ranking.SHORT_NAMES[t] for t in types],
                         {"ppl(a|q): with the question": ppl_q_med, "ppl(a): without it": ppl_0_med},
                         ylabel="median perplexity (log scale)", log=True,
                         title=f"Conditional vs standalone perplexity, {len(problems)} problems")
plots.save_figure(fig, "01_ppl_conditional_vs_standalone", FIGURES_DIR)

# %% [markdown]
# Read the bars in pairs. A gap (`ppl(a|q)` below `ppl(a)`) means the answer *uses* the question. The
# `irrelevant` answer, a correct solution of a **different** problem, is the control: its numbers are not this
# question's, so seeing this question makes it *less* likely, not more. The tiny model was trained with some
# answers under `ctx(0)`, so `ppl(a)` is a real "any question" likelihood: without a question, an answer to some
# question is plausible; with the wrong question in view, numbers that are not in it are not. `answer-only`
# (a bare `The answer is N.`) gets what it gains from its single informative token, the number.
#
# ## 4. The SAR algebra
#
# Write `v_t = log π(a_t | ctx(q), a_<t) − log π(a_t | ctx(0), a_<t)`, the information the question adds to token
# `t`. Since `log ppl = NLL = −mean_t log π`:
#
# $$\frac{\mathrm{ppl}(a\mid q)}{\mathrm{ppl}(a)} = e^{\mathrm{NLL}(a\mid q) - \mathrm{NLL}(a)} = e^{-\frac1T\sum_t v_t}
# \quad\Rightarrow\quad R_{SA} = \max\big(1 - e^{-\bar v},\,-1\big),\ \ \bar v = \tfrac1T\textstyle\sum_t v_t .$$
#
# So SAR is a squashed **mean information gain per token**: positive when the question makes the answer more
# likely on average, below 1 always, clipped at −1 (when the question makes the answer twice as perplexing or
# worse). Four ways to compute it for the concise answer:

# %%
ppl_qa, ppl_a = float(res["ppl_qa"][0]), float(res["ppl_a"][0])
v = sar.information_gain(logp_q, logp_0, torch.ones(len(a_ids)))
forms = {
    "(ppl(a) - ppl(a|q)) / ppl(a)": (ppl_a - ppl_qa) / ppl_a,
    "1 - exp(-mean_t v_t)": 1 - math.exp(-float(v.mean())),
    "sar.sar_from_nll(nll_qa, nll_a)": float(sar.sar_from_nll(res["nll_qa"], res["nll_a"])[0]),
    "sar.score_answers(...)['sar']": rows["concise_correct"]["sar"],
}
for name, value in forms.items():
    print(f"{name:34} {value:.6f}")
print(f"\nmean_t v_t = {float(v.mean()):.6f}  =  NLL(a) - NLL(a|q) = {float(res['nll_a'][0] - res['nll_qa'][0]):.6f}")
values = list(forms.values())
assert max(values) - min(values) < 1e-5, values

# %% [markdown]
# The map from mean information gain to reward is monotone, so **SAR orders answers exactly as `mean_t v_t`
# does**; the squashing only bounds the reward (a GRPO advantage stays on the same scale as the 0/1
# correctness reward).

# %%
for vbar in (-2.0, -0.69, -0.1, 0.0, 0.1, 0.5, 1.0, 2.0, 5.0):
    reward = float(sar.sar_from_nll(torch.tensor([1.0]), torch.tensor([1.0 + vbar]))[0])
    print(f"mean v_t = {vbar:5.2f}  ->  SAR = {reward:7.4f}")

# %% [markdown]
# ## 5. Where the reward comes from: a heat map of `v_t`
#
# `sar.score_answers(..., per_token=True)` also returns each token and its `v_t`. Red tokens became more likely
# because of the question, blue ones less likely. The redundant answer below is the concise solution followed by
# `Let me double-check.` and re-check sentences that hold nothing of this problem (the verbose style of the tiny
# model's training corpus); the concise answer is the opener, the equations and the final answer.

# %%
per_token = sar.score_answers(model, tokenizer, [problem.question] * 2,
                              [answers["redundant_correct"], answers["concise_correct"]], per_token=True)
for name, row in zip(("redundant", "concise"), per_token):
    print(f"{name:9}: {row['n_tokens']} tokens, mean v_t = {sum(row['information_gain']) / row['n_tokens']:.3f}, "
          f"SAR = {row['sar']:.3f}")
redundant_row, concise_row = per_token
fig = plots.token_heatmap(redundant_row["tokens"], redundant_row["information_gain"],
                          title=f"v_t over the redundant answer (SAR = {redundant_row['sar']:.3f})")
plots.save_figure(fig, "01_vt_heatmap", FIGURES_DIR)

# %%
fig = plots.token_heatmap(concise_row["tokens"], concise_row["information_gain"],
                          title=f"v_t over the concise answer (SAR = {concise_row['sar']:.3f})")
plots.save_figure(fig, "01_vt_heatmap_concise", FIGURES_DIR)


# %% [markdown]
# The heat maps are easier to read with the tokens grouped. Each token of the redundant answer belongs to one of:
# a number that appears in the question, a number the answer computed, the re-check sentences after
# `Let me double-check.`, the end-of-turn token, an operator, or the other words (the opener, `Then`,
# `The answer is`). The mean `v_t` of each group, and the tokens that stand out most:

# %%
def token_groups(row, question):
    """{group: (mean v_t, tokens)} over one scored answer (sar.score_answers(..., per_token=True) row)."""
    text = "".join(row["tokens"])
    check = text.find(synthetic.CHECK_OPENER)
    given = set(re.findall(r"\d+", question))
    numbers = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\d+", text)]
    groups, position = {}, 0
    for token, gain in zip(row["tokens"], row["information_gain"]):
        start, position = position, position + len(token)
        number = next((n for n in numbers if n[0] <= start < n[1]), None)
        if token == tokenizer.eos_token:
            group = "end of turn"
        elif 0 <= check <= start:
            group = "re-check sentences"
        elif number is not None:
            group = "the question's numbers" if number[2] in given else "computed numbers"
        elif token.strip() in ("+", "-", "*"):
            group = "operators"
        else:
            group = "other words"
        groups.setdefault(group, []).append(gain)
    return {group: (sum(gains) / len(gains), len(gains)) for group, gains in groups.items()}


groups = token_groups(redundant_row, problem.question)
for group, (gain, count) in sorted(groups.items(), key=lambda item: -item[1][0]):
    print(f"{group:24} mean v_t {gain:+.3f} over {count} tokens")
ranked = sorted(zip(redundant_row["information_gain"], redundant_row["tokens"]), reverse=True)
print("largest v_t: ", ", ".join(f"{tok!r} {gain:+.2f}" for gain, tok in ranked[:6]))
print("smallest v_t:", ", ".join(f"{tok!r} {gain:+.2f}" for gain, tok in ranked[-4:]))

# %% [markdown]
# The question's numbers and the operators carry the gain: they are easy to write with the question in view and a
# guess without it. The re-check sentences sit near zero: the model writes them after any question. So do the
# computed numbers, which the answer's own equations predict, and the end of turn. The other words gain a little,
# most of it on the words that decide the number of steps (`Then` against `The answer is`). SAR averages
# over **all** tokens, so every near-zero token dilutes the mean: that is the pressure SAR puts on redundant
# answers, without ever counting tokens.
#
# ## 6. Checking the library against a by-hand loop
#
# `sar_lib` packs many answers into one left-padded batch, derives position ids from the attention mask and
# computes the log-softmax in fp32 chunks (`docs/paper.md` §1, §6): many places to get an off-by-one wrong. Here
# is the definition written naively: one forward pass per answer token, on the growing prefix `ctx + a_<t`, no
# padding, no batching. It is slow (T forward passes) and obviously right.

# %%
@torch.no_grad()
def logprobs_by_hand(context_ids, answer_ids):
    # log pi(a_t | ctx, a_<t) for t = 1..T, one forward pass per token
    out = []
    for t in range(len(answer_ids)):
        prefix = torch.tensor([list(context_ids) + list(answer_ids[:t])], device=model.device)
        next_logits = model(input_ids=prefix).logits[0, -1].float()
        out.append(torch.log_softmax(next_logits, dim=-1)[answer_ids[t]].item())
    return torch.tensor(out)


# %%
check = ["concise_correct", "partially_correct", "answer_only"]   # short ones: the loop costs T forward passes
library = sar.score_answers(model, tokenizer, [problem.question] * len(check), [answers[t] for t in check],
                            per_token=True, batch_size=len(check))   # one padded batch of unequal lengths
worst = 0.0
for name, row in zip(check, library):
    ids = sar.answer_ids(tokenizer, answers[name])
    hand_q, hand_0 = logprobs_by_hand(ctx_q, ids), logprobs_by_hand(ctx_0, ids)
    hand_v = hand_q - hand_0
    hand_sar = 1 - math.exp(float(hand_0.mean() - hand_q.mean()))
    gap_v = float((hand_v - torch.tensor(row["information_gain"])).abs().max())
    worst = max(worst, gap_v, abs(hand_sar - row["sar"]))
    print(f"{name:18} T={len(ids):3d}  ppl(a|q) {math.exp(-hand_q.mean()):8.4f} vs {row['ppl_qa']:8.4f}   "
          f"SAR {hand_sar:.6f} vs {row['sar']:.6f}   max |v_t diff| = {gap_v:.2e}")
assert worst < 1e-4, f"library and by-hand loop disagree by {worst}"
print(f"\nlibrary == by-hand loop (largest difference {worst:.1e})")


# %% [markdown]
# ## 7. What the context choice changes
#
# The paper's `ctx(0)` keeps everything but the question: same template, same system prompt, an empty user
# turn. Other choices look just as reasonable and give different rewards. We score the six answer types of
# `N_EXAMPLES` problems under five context pairs. The contexts are plain prompt texts; the scoring is the
# library's `sar.sar_from_token_ids`.
#
# * **paper**: `S` + user turn vs `S` + empty user turn;
# * **no instruction**: the user turn holds the bare question (`add_instruction=False`), `ctx(0)` as in the paper;
# * **no system prompt**: neither context has a system turn;
# * **ctx(0) = generation prompt only**: `ctx(0)` drops the system and user turns and keeps only the assistant header;
# * **ctx(0) ≈ empty string**: a context must hold at least one token (something has to predict `a_1`), so the
#   closest thing to "no context" is a single document-boundary token (here the pad token `<|endoftext|>`; models
#   with a BOS token use that).

# %%
def chat(messages):
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

def user_turn(question):
    return f"{question} {sar.INSTRUCTION}"

# the assistant header alone: what add_generation_prompt appends to a conversation
empty_turn = [{"role": "user", "content": ""}]
generation_prompt = chat(empty_turn)[len(tokenizer.apply_chat_template(empty_turn, tokenize=False)):]

def paper_ctx_q(question):
    return sar.prompt_text(tokenizer, question)

contexts = {  # name -> (ctx(q) text of a question, ctx(0) text)
    "paper": (paper_ctx_q, sar.empty_prompt_text(tokenizer)),
    "no instruction": (lambda q: sar.prompt_text(tokenizer, q, add_instruction=False), sar.empty_prompt_text(tokenizer)),
    "no system prompt": (lambda q: chat([{"role": "user", "content": user_turn(q)}]), chat(empty_turn)),
    "ctx(0) = generation prompt only": (paper_ctx_q, generation_prompt),
    "ctx(0) ≈ empty string": (paper_ctx_q, tokenizer.pad_token),
}
for name, (make_q, text_0) in contexts.items():
    print(f"{name:32} ctx(0) = {text_0!r}")

# %%
flat_questions = [p.question for p in problems for _ in types]     # problem-major, as in section 3
flat_answers = [sar.answer_ids(tokenizer, s[t]) for s in sets for t in types]
paper_nll_qa = torch.stack([scores[t]["nll_qa"] for t in types], dim=1).reshape(-1)
context_sar = {"paper": torch.stack([scores[t]["sar"] for t in types], dim=1)}   # scored in section 3
for name, (make_q, text_0) in list(contexts.items())[1:]:
    if make_q is paper_ctx_q:   # same ctx(q) as the paper: reuse its ppl(a|q), score only ctx(0)
        given = {"nll_qa": paper_nll_qa}
    else:
        ctx_q_ids = {p.question: sar.encode_text(tokenizer, make_q(p.question)) for p in problems}
        given = {"ctx_q": [ctx_q_ids[q] for q in flat_questions]}
    out = sar.sar_from_token_ids(model, sar.encode_text(tokenizer, text_0), flat_answers, pad_token_id=pad_id,
                                 batch_size=profile.eval_batch_size, **given)
    context_sar[name] = out["sar"].reshape(len(problems), len(types))
means = {name: values.mean(0) for name, values in context_sar.items()}
print(f"mean SAR over {len(problems)} problems")
print(f"{'context':32}" + "".join(f"{ranking.SHORT_NAMES[t]:>12}" for t in types))
for name, values in means.items():
    print(f"{name:32}" + "".join(f"{m:12.3f}" for m in values.tolist()))
context_shift = {}
print("\nlargest change of a type's mean SAR against the paper's contexts:")
for name, values in list(means.items())[1:]:
    change = values - means["paper"]
    k = int(change.abs().argmax())
    context_shift[name] = float(change.abs().max())
    print(f"  {name:32} {context_shift[name]:.3f} (on {ranking.SHORT_NAMES[types[k]]}, {float(change[k]):+.3f})")
order = {name: [ranking.SHORT_NAMES[types[k]] for k in values.argsort(descending=True).tolist()]
         for name, values in means.items()}
for name, ranked_types in order.items():
    print(f"  order under {name:32} {' > '.join(ranked_types)}")

# %%
fig = plots.grouped_bars([ranking.SHORT_NAMES[t] for t in types], {name: values.tolist() for name, values in means.items()},
                         ylabel="mean SAR", title="SAR of each answer type under five context choices")
plots.save_figure(fig, "01_context_choice", FIGURES_DIR)

# %% [markdown]
# The tiny model saw only the paper's two contexts in training, so any other context is a prompt it never saw, and
# it moves `ppl(a|q)`, `ppl(a)` or both. **no instruction** changes `ctx(q)` alone: SAR rises for an answer whose
# `ppl(a|q)` the bare question lowers and falls for one whose `ppl(a|q)` it raises. The other three strip the
# contexts down: **no system prompt** drops the system turn from both, the last two keep the paper's `ctx(q)` and
# change `ctx(0)` alone, so for them SAR rises for an answer exactly when the stripped `ctx(0)` predicts it worse
# than the paper's does (`ppl(a)` rises). Where that happens, the reward measures "unlikely without the usual
# prompt" rather than "uses this question". Which way each type's mean SAR moved here:

# %%
def listed(names):
    return "every type" if len(names) == len(types) else ", ".join(names)

lines = []
for name, values in list(means.items())[1:]:
    change = (values - means["paper"]).tolist()
    rises = [ranking.SHORT_NAMES[t] for t, c in zip(types, change) if c > 0]
    falls = [ranking.SHORT_NAMES[t] for t, c in zip(types, change) if c < 0]
    moves = [f"rises for {listed(rises)}"] * bool(rises) + [f"falls for {listed(falls)}"] * bool(falls)
    k = max(range(len(types)), key=lambda j: abs(change[j]))
    same_order = "the paper's order" if order[name] == order["paper"] else "another order than the paper's"
    lines.append(f"* **{name}**: SAR {' and '.join(moves) or 'does not move'}; the largest change is on "
                 f"{ranking.SHORT_NAMES[types[k]]} ({change[k]:+.3f}); {same_order}.")
bare_first = [name for name, values in means.items()
              if values[types.index("answer_only")] > values[types.index("concise_correct")]]
paper_bare, paper_worked = (float(means["paper"][types.index(t)]) for t in ("answer_only", "concise_correct"))
where = ("every one of the" if len(bare_first) == len(means) else
         f"{len(bare_first)} of the" if bare_first else "none of the")
lines.append(f"\nThe bare answer (answer-only) has a higher mean SAR than the concise one under {where} "
             f"{len(means)} context pairs (the paper's pair: {paper_bare:.3f} against {paper_worked:.3f})"
             + (": SAR alone does not prefer an answer that shows its working, the pull that makes R_SA alone "
                "collapse to very short answers (claim C3, notebook 04)." if bare_first else "."))
display(Markdown("\n".join(lines)))

# %% [markdown]
# What to notice:
#
# * SAR is a property of the answer **and of the pair of contexts**. Keeping everything but the question identical
#   cancels what the two contexts share; that is why the paper keeps the template and system prompt in `ctx(0)` and
#   only empties the user turn, and why this model was trained with some answers under exactly that `ctx(0)`.
# * What matters for GRPO is the *order of answers to the same question* (advantages are differences within a
#   group): compare the orders of the types, not only the levels.
#
# ## 8. What SAR does not measure: correctness
#
# SAR asks whether the answer uses the question; it never checks the final number. A wrong answer that uses the
# question's numbers gains from the question as a right one does. Over the `N_EXAMPLES` problems of section 3:

# %%
mean_sar = {t: float(scores[t]["sar"].mean()) for t in types}
for t in ("concise_correct", "partially_correct", "incorrect", "irrelevant"):
    print(f"{t:18} mean SAR {mean_sar[t]:+.3f}")
at_least_concise = {t: float((scores[t]["sar"] >= scores["concise_correct"]["sar"]).float().mean())
                    for t in ("partially_correct", "incorrect")}
for t, share in at_least_concise.items():
    print(f"the {t} answer scores at least the concise correct one's SAR on {share:.0%} of {len(problems)} problems")
alpha = rewards.DEFAULT_ALPHAS["sar"]
print(f"SA-GRPO's reward: R = R_VR + {alpha:g} * SAR; two answers' {alpha:g} * SAR differ by less than {2 * alpha:g}")

# %% [markdown]
# That is why the paper never trains on SAR alone: SA-GRPO keeps the correctness reward `R_VR` and adds SAR to it
# with a small weight, so that a correct answer always out-scores a wrong one in its group, and SAR only orders
# answers of equal correctness (concise above redundant). `docs/paper.md` §5 reports what happens with SAR alone:
# the answers collapse. Notebook 03 trains GRPO (`R_VR` alone) and SA-GRPO (`R_VR + α·SAR`); SAR alone is the
# method `sar-only` of `sar compare`'s grid, and one of notebook 03's exercises.
#
# ## 9. Verdict and summary for `sar demo`

# %%
verdict = verdicts.perplexity_verdict(scores=scores, library_gap=worst, alpha=alpha, concise_sar=concise_row["sar"],
                                      redundant_sar=redundant_row["sar"], token_groups=groups,
                                      context_shift=context_shift)
display(Markdown(verdict.markdown))
summary_path = write_summary(
    FIGURES_DIR, "01_perplexity_math", title="perplexity math on one problem and its answers",
    numbers={"toy example perplexity": round(float(toy_nll.exp()), 4),
             "concise answer ppl(a|q)": round(ppl_qa, 3), "concise answer ppl(a)": round(ppl_a, 3),
             "concise answer SAR": round(float(res["sar"][0]), 4),
             "library vs by-hand loop, max difference": float(f"{worst:.2e}"),
             f"concise: ppl(a|q) < ppl(a) (share of {len(problems)} problems)": round(share_lower["concise_correct"], 3),
             f"irrelevant: ppl(a|q) < ppl(a) (share of {len(problems)} problems)": round(share_lower["irrelevant"], 3)},
    tables=[verdict.summary_table,
            {"title": "mean SAR by context choice (rows) and answer type (columns)",
             "columns": ["context"] + [ranking.SHORT_NAMES[t] for t in types],
             "rows": [[name] + [round(m, 3) for m in values.tolist()] for name, values in means.items()]}])
print(f"{summary_path}; this notebook ran in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Exercises
#
# Worked answers: `notebooks/solutions/01_perplexity_math_solutions.ipynb`.
#
# 1. **Temperature.** In section 1, divide the toy logits by a temperature `τ = 2` and by `τ = 0.5` before the
#    log-softmax. How does the perplexity change, and why does SAR use raw logits (`τ = 1`, `docs/paper.md` §1) even
#    though the answers may have been sampled at another temperature?
# 2. **Repetition.** Append the final sentence of the concise answer a second time (`concise + " " + concise.split(". ")[-1]`)
#    and plot its `v_t` heat map. Predict the sign of `v_t` on the repeated tokens before you run it. What happens to
#    SAR if you repeat it five times?
# 3. **A wrong question.** Score the concise answer of `problems[0]` under the question of `problems[1]` with
#    `sar.score_answers`. Explain the sign of the SAR you get from the heat map. Which answer type of section 3 does
#    this correspond to?
# 4. **The `log` variant.** `sar.score_answers(..., variant="log")` uses `(NLL(a) − NLL(a|q)) / NLL(a)` instead of the
#    perplexity ratio. Show on the six answer types that the two variants always agree in sign. Can they order two
#    answers differently? Construct (or find) an example.
# 5. **Your own context.** Add a sixth entry to `contexts` in section 7 where `ctx(0)` keeps the user turn but holds
#    only the instruction (no question). Which answer types gain or lose SAR, and is that choice closer to the paper's
#    intent than the empty user turn?
