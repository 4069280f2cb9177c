"""The embedded model's card: ``card.json`` (every measured figure) and ``MODEL_CARD.md`` (the same,
for a reader), written by ``sar pretrain-tiny`` next to the weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from sar_lib.data import HELD_OUT_SETS


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _mark(holds: bool) -> str:
    return "**met**" if holds else "**not met**"


def _gap_text(gap: Mapping) -> str:
    """P2's verbose-minus-concise accuracy gap (``premises.style_gap``) as "+1.2 ± 2.7 points" ("—" if undefined)."""
    return "—" if gap["difference"] is None else f"{100 * gap['difference']:+.1f} ± {100 * gap['stderr']:.1f} points"


def premises_table(premises: Mapping) -> str:
    """P1-P5 (``premises.measure_premises``) as a Markdown table: premise, measured, target, met."""
    t = premises["targets"]
    p1, p2, p3, p4, p5 = (premises[k] for k in ("P1_marginal", "P2_harmless_verbosity", "P3_room_to_cut",
                                                 "P4_too_short_exists", "P5_room_for_rl"))
    spread = p2["long_minus_short_accuracy"]
    by_style = premises["sampled_accuracy_by_style"]
    gap_text = _gap_text(p2["verbose_minus_concise"])
    long_short = "—" if spread is None else \
        f"{100 * spread['mean']:+.1f} ± {100 * spread['stderr']:.1f} points (longer minus shorter half)"
    ratio = "—" if p2["correct_length_ratio"] is None else f"{p2['correct_length_ratio']:.2f}"
    room = "—" if p3["ratio"] is None else f"{p3['ratio']:.2f}x ({p3['greedy_mean']:.1f} vs {p3['shortest_correct_mean']:.1f} tokens)"
    low, high = t["greedy_accuracy_range"]
    rows = [
        ("P1 ctx(0) is an answer marginal",
         f"first 3 tokens: mean abs v_t {p1['first_token_gain']:.2f} nats; SAR of another question's answer "
         f"{p1['other_mean']:+.2f} (own {p1['own_mean']:+.2f}), own higher for {_pct(p1['own_beats_other'])}",
         f"<= {t['first_token_gain_max']:g} nat; <= {t['other_answer_sar_max']:g}; >= {_pct(t['own_beats_other_min'])}",
         p1["holds"]),
        ("P2 verbosity is harmless",
         f"T = 1: {long_short}; verbose {_pct(by_style.get('verbose'))} vs concise {_pct(by_style.get('concise'))} "
         f"correct ({gap_text}); greedy correct / all length {ratio}",
         f">= 0; >= -2 standard errors; >= {t['correct_length_ratio_min']:g}", p2["holds"]),
        ("P3 room to cut", f"greedy / shortest correct of {premises['samples_per_item']} samples: {room}",
         f">= {t['room_to_cut_min']:g}x", p3["holds"]),
        ("P4 too-short answers exist",
         f"answer-only {_pct(p4['answer_only_sample_share'])} of samples; forced answer-only on 2-3 step problems "
         f"{_pct(p4['answer_only_multi_step'])} vs greedy {_pct(p4['greedy_multi_step'])}",
         "in the mix, less accurate", p4["holds"]),
        ("P5 room for RL", f"greedy {_pct(p5['greedy_accuracy'])}, sampled {_pct(p5['sampled_accuracy'])}",
         f"greedy {100 * low:.0f}-{100 * high:.0f}%, sampled below", p5["holds"]),
    ]
    lines = ["| premise | measured | target | |", "|---|---|---|---|"]
    lines += [f"| {name} | {measured} | {target} | {_mark(holds)} |" for name, measured, target, holds in rows]
    return "\n".join(lines)


def render(card: Mapping) -> str:
    """MODEL_CARD.md of a card (``pretrain.pretrain_tiny``'s)."""
    c, p = card["config"], card["premises"]
    rows = "\n".join(
        f"| {name} | {card['eval'][name]['n']} | {100 * card['eval'][name]['accuracy']:.1f} | "
        f"{card['eval'][name]['mean_length']:.1f} | {card['eval'][name]['median_length']:.0f} | "
        f"{100 * card['eval'][name]['truncation_rate']:.1f} |" for name in HELD_OUT_SETS)
    shares = ", ".join(f"{style} {_pct(share)}" for style, share in p["style_shares"].items())
    greedy_shares = ", ".join(f"{style} {_pct(share)}" for style, share in p["greedy_style_shares"].items())
    sar = p["sar_by_style"]
    examples = "\n".join(f"- Q: {e['question']} (gold {e['gold']})\n  - greedy: {e['greedy']}\n"
                         + "\n".join(f"  - sampled: {a}" for a in e["sampled"][:4]) for e in p["examples"])
    return f"""# tiny-reasoner: the embedded model of sar_lib

A {card['n_parameters'] / 1e6:.2f}M-parameter Qwen2-architecture causal LM with a {card['vocab_size']}-token
byte-level BPE tokenizer (digits split, ChatML chat template with a system role), trained from scratch
on the synthetic corpus of `sar_lib.synthetic`: arithmetic word problems answered in four styles
(answer-only, concise, verbose, flawed), True/False claims about such problems in the same styles
({100 * c.get('claim_share', 0):.0f}%) and 1-2 hop logic chains ({100 * c['logic_share']:.0f}%), prompted exactly like
the paper (`sar_lib.sar.prompt_text`: system prompt + question + instruction). {100 * c['empty_question_share']:.0f}% of the answers
are taught under ctx(0), the same prompt with an empty user turn, so that ppl(a) is a real "no
question" likelihood. The loss covers the answer tokens (and the eos) only, plus an arithmetic drill
({c['drill_batch_size']} rows of {c['drill_equations']} bare equations "a op b = r." per step, loss on the results; see `sar_lib/lab/pretrain.py`).
It exists so that notebooks, the demo and the tests run offline on a CPU; it is not a general model.

## How it was made

- command: `{card['command']}`
- seed: {c['seed']}; steps: {card['steps_done']} of {c['steps']} (batch {c['batch_size']}, {card['n_examples']} training pairs, peak lr {c['learning_rate']}, cosine), torch threads: {c['threads']}
- wall time: {card['train_seconds'] / 60:.1f} min training, {card['total_seconds'] / 60:.1f} min in all (measurement included);
  CPU time of the training loop {card['train_cpu_seconds'] / 60:.1f} min summed over threads
- machine: {card['machine']}
- final training loss (mean of the last 20 steps): {card['final_loss']:.3f}
- checkpoint: {card['checkpoint_bytes'] / 1e6:.1f} MB (fp32 safetensors)

The full configuration is in `card.json` (`config`), every figure below in `card.json` too.

## Measured (greedy, up to {c['eval_max_new_tokens']} new tokens, seed {c['seed']} items)

| set | n | accuracy % | mean length (tokens) | median length | truncated % |
|---|---|---|---|---|---|
{rows}

arith-test is held-out in-domain (question texts never in training); claim-test (True/False claims
about held-out word problems, "Tom has more than 10 apples."; chance = 50%), symbolic-test (renamed
entities, changed numbers, one irrelevant clause) and logic-test (ProntoQA-style True/False, made-up
concept names not in training; chance = 50%) are out of domain: RL trains on arithmetic only. Reproduce with
`sar eval --model tiny --dataset arith-test --limit {c['eval_items']} --seed {c['seed']}`.

## SAR's premises (held-out arithmetic, {p['n_problems']} questions, {p['samples_per_item']} samples each at temperature 1)

{premises_table(p)}

Styles of the sampled answers: {shares}; of the greedy answers: {greedy_shares}.
SAR of each problem's correct solution written in each style: concise {sar['concise']:.3f}, verbose
{sar['verbose']:.3f}, answer-only {sar['answer_only']:.3f} (concise above verbose on {_pct(sar['concise_beats_verbose'])} of the problems).
Reproduce with `sar premises --model tiny --limit {p['n_problems']}` (`sar_lib.lab.premises`).

{examples}
{_claim_section(card)}"""


def _claim_section(card: Mapping) -> str:
    """P2/P3 on claim-test: whether the OOD family has verbosity that SAR could cut there too."""
    claims = card.get("claim_premises")
    if claims is None:
        return ""
    p2, p3 = claims["P2_harmless_verbosity"], claims["P3_room_to_cut"]
    room = "—" if p3["ratio"] is None else f"{p3['ratio']:.2f}x"
    shares = ", ".join(f"{style} {_pct(share)}" for style, share in claims["greedy_style_shares"].items())
    return f"""
## The OOD family claim-test: verbosity to cut there too

On {claims['n_problems']} claim-test questions ({claims['samples_per_item']} samples each): greedy accuracy
{_pct(claims['greedy']['accuracy'])}, greedy answers {shares}. P2: verbose samples minus concise ones
{_gap_text(p2['verbose_minus_concise'])} correct ({_mark(p2['holds'])}); P3: greedy length / shortest correct sample {room}
({_mark(p3['holds'])}). SAR of the correct solution: concise {claims['sar_by_style']['concise']:.3f}, verbose
{claims['sar_by_style']['verbose']:.3f}. The answers are True or False, so an answer-only guess is right half the time:
the shortest correct sample is often a guess, and P3 reads higher here than the room there is to cut.
"""


def write_model_card(card: Mapping, out_dir: str | Path) -> None:
    """``card.json`` and ``MODEL_CARD.md`` in ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    (out_dir / "MODEL_CARD.md").write_text(render(card))
