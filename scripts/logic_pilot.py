"""Logic pilot for issue 14 (docs/logic_attempts.md): train the tiny model's shape on logic items
alone, then measure where its proofs fail.

    python scripts/logic_pilot.py NAME '{"proof": "onekey", "fresh_names": 1}'   # JSON overrides of PILOT

It writes runs/logic_pilot/NAME.json (config, greedy accuracy per hop at each evaluation, the loss
curve, teacher-forced slot accuracy) and NAME.log. One torch thread: two pilots side by side on two
cores. What it measures, on 100 held-out items built from training words ("words") and 100 built
from the "-pus" names of logic-test ("pus"), 1-4 hops:
  - greedy accuracy (``evaluate``), per hop, and the share of answers equal to the gold proof;
  - teacher-forced slot accuracy: the gold proof is fed and each slot counts as right when every
    one of its tokens is the argmax. Slots: person_concept ("Max is a X." after a rule), isa_target
    (the Y of "Every X is a Y."), property ("[not] P" of "Every X is [not] P."), is_a_or_prop (the
    token after "Every X is": go on along the chain or state the property), conclusion, restated
    (the statement copied, with ``restate``) and final (True/False given a correct proof).
Items follow sar_lib.synthetic.logic (same chain, distractor and hop structure) with three options:
canonical phrasing, a "onekey" proof (each concept's property fact before its rule, so every step
is a lookup by the concept alone) and fresh random names per item.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

import torch

from sar_lib import synthetic
from sar_lib.evaluate import evaluate
from sar_lib.models import build_tiny_model
from sar_lib.pretrain import (PretrainConfig, _answer_loss, _batch_order, _collate, _common_prefix, _tokenizer_texts,
                              lr_factor)
from sar_lib.problem import Problem
from sar_lib.sar import answer_ids, encode_text, prompt_text
from sar_lib.synthetic.logic import _ADJECTIVES, _EVAL_CONCEPTS, _LOGIC_NAMES, _article, _has, _isa, train_concepts
from sar_lib.synthetic.styles import _final
from sar_lib.tokenizer import train_tokenizer

PILOT = dict(
    steps=900, batch=32, lr=3e-3,                          # schedule as pretrain-tiny (warmup 40, cosine to 5%)
    hidden=192, layers=4, heads=6, kv=2, inter=512,         # the shipped shape
    n_train=16000, min_hops=1, max_hops=3, max_after=2,     # logic items only; test items have 1-4 hops
    phrasing="canonical",   # "canonical": "Every X is (a Y|[not] P)."; "varied": sar_lib's three phrasings
    proof="onekey",         # "onekey": property fact, then rule, per concept; "chain": sar_lib's proof order
    words=2000,             # training words used (with fresh_names 0)
    fresh_names=0,          # 1: every training item draws new random names (3-8 letters, no "pus")
    restate=0,              # 1: the proof ends by copying the statement, so True/False compares adjacent text
    fact_loss=0,            # 1: the question's facts are predicted too (more copy signal per item)
    task="proof",           # "drill": the rule lookup alone (facts, then "Every X is a Y." queries), slots only
    eval_every=300, n_eval=100, seed=0)


class FreshNames:
    """A name source whose every draw is new random lowercase strings (3-8 letters, never "pus")."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def sample(self, k: int) -> list[str]:
        out: set[str] = set()
        while len(out) < k:
            word = "".join(self.rng.choice("abcdefghijklmnoprstuvwyz") for _ in range(self.rng.randint(3, 8)))
            if "pus" not in word:
                out.add(word)
        return list(out)


def draw_names(concepts, rng: random.Random, k: int) -> list[str]:
    """k distinct names: fresh ones from a FreshNames source, else a sample of the word list."""
    return concepts.sample(k) if isinstance(concepts, FreshNames) else rng.sample(list(concepts), k)


def canonical_isa(x: str, y: str, rng: random.Random) -> str:
    return f"Every {x} is {_article(y)}."


def canonical_has(x: str, adj: str, negated: bool, rng: random.Random) -> str:
    return f"Every {x} is {'not ' if negated else ''}{adj}."


def pilot_item(hops: int, truth: bool, concepts, rng: random.Random, pid: str, cfg: dict) -> tuple[Problem, str]:
    """(problem, gold answer): the structure of sar_lib.synthetic.logic._logic_item, options of ``cfg``."""
    isa, has = (canonical_isa, canonical_has) if cfg["phrasing"] == "canonical" else (_isa, _has)
    n_before, n_after = rng.randint(0, 1), rng.randint(0, cfg["max_after"])
    names = draw_names(concepts, rng, n_before + hops + n_after + 1)
    chain, distractor = names[:-1], names[-1]
    adjectives = rng.sample(_ADJECTIVES, len(chain) + 1)
    target, others = adjectives[0], adjectives[1:]
    start, end = n_before, n_before + hops - 1
    chain_negated = rng.random() < 0.5
    facts, isa_fact, has_fact, prop = [], {}, {}, {}
    for i, concept in enumerate(chain):
        adj, negated = (target, chain_negated) if i == end else (others[i], rng.random() < 0.4)
        prop[i] = (adj, negated)
        has_fact[i] = has(concept, adj, negated, rng)
        facts.append(has_fact[i])
        if i + 1 < len(chain):
            isa_fact[i] = isa(concept, chain[i + 1], rng)
            facts.append(isa_fact[i])
    facts.append(has(distractor, target, not chain_negated, rng))
    rng.shuffle(facts)
    person = rng.choice(_LOGIC_NAMES)
    facts.append(f"{person} is {_article(chain[start])}.")
    statement = f"{person} is {'not ' if (chain_negated if truth else not chain_negated) else ''}{target}."
    conclusion = f"{person} is {'not ' if chain_negated else ''}{target}."
    proof = [facts[-1]]
    if cfg["proof"] == "onekey":
        for i in range(start, end + 1):
            proof.append(has_fact[i])
            proof += [conclusion] if i == end else [isa_fact[i], f"{person} is {_article(chain[i + 1])}."]
    else:
        for i in range(start, end):
            proof += [isa_fact[i], f"{person} is {_article(chain[i + 1])}."]
        proof += [has_fact[end], conclusion]
    if cfg["restate"]:
        proof.append(f"The statement says {statement}")
    gold = "True" if truth else "False"
    question = " ".join(facts) + f" Is the following statement true or false? {statement}"
    problem = Problem(id=pid, question=question, gold=gold, kind="bool", source="logic-pilot", meta={"hops": hops})
    return problem, " ".join(proof + [_final(gold)])


def drill_item(concepts, rng: random.Random, pid: str) -> tuple[Problem, str]:
    """Six concepts, each with a rule to another name and a property; the answer restates three
    of the rules ("Every X is a Y."), so its Y slots measure the lookup by concept alone."""
    names = draw_names(concepts, rng, 12)
    subjects, targets = names[:6], names[6:]
    facts = [canonical_isa(x, y, rng) for x, y in zip(subjects, targets)]
    facts += [canonical_has(x, adj, rng.random() < 0.5, rng) for x, adj in zip(subjects, rng.sample(_ADJECTIVES, 6))]
    rng.shuffle(facts)
    asked = rng.sample(range(6), 3)
    answer = " ".join(canonical_isa(subjects[i], targets[i], rng) for i in asked)
    return Problem(id=pid, question=" ".join(facts), gold="", kind="bool", source="logic-pilot",
                   meta={"hops": 1}), answer


def pilot_items(n: int, seed: str, concepts, lo: int, hi: int, cfg: dict) -> list[tuple[Problem, str]]:
    rng = random.Random(seed)
    if cfg["task"] == "drill":
        return [drill_item(concepts, rng, f"{seed}-{i}") for i in range(n)]
    return [pilot_item(rng.randint(lo, hi), i % 2 == 0, concepts, rng, f"{seed}-{i}", cfg) for i in range(n)]


def encode(tokenizer, pairs, cfg: dict) -> list[tuple[list[int], list[int]]]:
    """(context ids, target ids); with ``fact_loss`` the target starts after the question's first token."""
    out = []
    for problem, answer in pairs:
        prompt = encode_text(tokenizer, prompt_text(tokenizer, problem.question))
        target = answer_ids(tokenizer, answer)
        if cfg["fact_loss"]:
            facts = encode_text(tokenizer, problem.question.split(" Is the following")[0])
            cut = next(i for i in range(len(prompt)) if prompt[i:i + 8] == facts[:8])
            out.append((prompt[:cut + 1], prompt[cut + 1:] + target))
        else:
            out.append((prompt, target))
    return out


def slots(answer: str) -> list[tuple[int, int, str]]:
    """(start char, end char, slot name) of each looked-up part of a gold proof (see the docstring)."""
    out = []
    for match in re.finditer(r"[^.]+\.", answer):
        text = match.group(0).strip()
        off = match.start() + match.group(0).index(text)
        first = text.split()[0]
        if text.startswith("The statement says"):
            out.append((off + 19, off + len(text), "restated"))
        elif text.startswith("The answer"):
            out.append((off + 14, off + len(text), "final"))
        elif first not in ("Every", "Each") and (m := re.match(r"(\w+) is an? (\w+)\.", text)):
            out.append((off + m.start(2), off + m.end(2), "person_concept"))
        elif first not in ("Every", "Each") and (m := re.match(r"(\w+) is (not )?(\w+)\.", text)):
            out.append((off + (m.start(2) if m.group(2) else m.start(3)), off + m.end(3), "conclusion"))
        elif m := re.match(r"(Every|Each) (\w+) is (an? )?(not )?(\w+)\.", text):
            out.append((off + m.end(2) + 4, off + m.end(2) + 5, "is_a_or_prop"))
            if m.group(3):
                out.append((off + m.start(5), off + m.end(5), "isa_target"))
            else:
                out.append((off + (m.start(4) if m.group(4) else m.start(5)), off + m.end(5), "property"))
    return out


@torch.no_grad()
def slot_accuracy(model, tokenizer, pairs) -> dict[str, list]:
    """Teacher-forced: per slot, (% of slots whose every token is the argmax, number of slots)."""
    hits: dict[str, list[bool]] = {}
    for problem, answer in pairs:
        prompt = encode_text(tokenizer, prompt_text(tokenizer, problem.question))
        enc = tokenizer(answer, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        pred = model(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1:-1].argmax(-1).tolist()
        for a, b, name in slots(answer):
            ok = [pred[k] == ids[k] for k, (s, e) in enumerate(enc["offset_mapping"]) if a <= s < b or s < a < e]
            if ok:
                hits.setdefault(name, []).append(all(ok))
    return {name: [round(100 * statistics.fmean(v), 1), len(v)] for name, v in hits.items()}


def evaluation(model, tokenizer, sets: dict, step: int) -> dict:
    model.eval()
    out: dict = {"step": step}
    for name, pairs in sets.items():
        report = evaluate(model, tokenizer, [p for p, _ in pairs], max_new_tokens=200, batch_size=25, progress=False)
        by_hops: dict[int, list[bool]] = {}
        for (problem, _), record in zip(pairs, report["records"]):
            by_hops.setdefault(problem.meta["hops"], []).append(record["correct"])
        out[name] = round(100 * report["accuracy"], 1)
        out[name + "_hops"] = {h: round(100 * statistics.fmean(v), 1) for h, v in sorted(by_hops.items())}
        out[name + "_proof_exact"] = round(100 * statistics.fmean(
            r["response"].strip() == a.strip() for (_, a), r in zip(pairs, report["records"])), 1)
        out[name + "_examples"] = [r["response"] for r in report["records"][:3]]
    model.train()
    return out


def main(name: str, overrides: dict) -> None:
    unknown = set(overrides) - set(PILOT)
    if unknown:
        raise SystemExit(f"unknown pilot options {sorted(unknown)}; choose from {sorted(PILOT)}")
    cfg = {**PILOT, **overrides}
    if cfg["task"] not in ("proof", "drill"):
        raise SystemExit(f'task must be "proof" or "drill", got {cfg["task"]!r}')
    if cfg["task"] == "drill" and cfg["fact_loss"]:
        raise SystemExit("fact_loss applies to the proof task only: drop it or use task \"proof\"")
    out_dir = Path("runs/logic_pilot")
    out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / f"{name}.log", "w")

    def say(text: str) -> None:
        print(text, flush=True)
        log.write(text + "\n")
        log.flush()

    torch.set_num_threads(1)
    words = list(train_concepts())[:cfg["words"]]
    source = FreshNames(random.Random(1)) if cfg["fresh_names"] else words
    train = pilot_items(cfg["n_train"], "train", source, cfg["min_hops"], cfg["max_hops"], cfg)
    arithmetic = synthetic.training_corpus(4000, 0, logic_share=0.0)   # so the vocabulary resembles the shipped one
    tokenizer = train_tokenizer(_tokenizer_texts(arithmetic + train[:8000]), vocab_size=1024)
    say(f"example: {train[0][0].question} || {train[0][1]}")
    examples = encode(tokenizer, train, cfg)
    hops = [p.meta["hops"] for p, _ in train]
    prefix = _common_prefix([p for p, _ in examples])
    examples = [(p[len(prefix):], a) for p, a in examples]
    prefix = torch.tensor(prefix)
    model = build_tiny_model(len(tokenizer), hidden_size=cfg["hidden"], num_layers=cfg["layers"], num_heads=cfg["heads"],
                             num_kv_heads=cfg["kv"], intermediate_size=cfg["inter"], max_positions=1024,
                             seed=cfg["seed"], pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    schedule = PretrainConfig(steps=cfg["steps"], learning_rate=cfg["lr"])
    optimizer = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.01},
                                   {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=cfg["lr"], betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, schedule))
    order = _batch_order([len(p) + len(a) for p, a in examples], cfg["batch"], torch.Generator().manual_seed(0))
    sets = {"words": pilot_items(cfg["n_eval"], "evalw", words, 1, 4, cfg),
            "pus": pilot_items(cfg["n_eval"], "evalp", _EVAL_CONCEPTS, 1, 4, cfg)}
    start, losses, evals = time.time(), [], []
    model.train()
    for step in range(cfg["steps"]):
        loss = _answer_loss(model, _collate([examples[i] for i in next(order)], tokenizer.pad_token_id), prefix)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if step % 50 == 0:
            say(f"step {step} loss {statistics.fmean(losses[-50:]):.3f} t {time.time() - start:.0f}s")
        if (step + 1) % cfg["eval_every"] == 0 or step + 1 == cfg["steps"]:
            if cfg["task"] == "drill":
                model.eval()
                evals.append({"step": step + 1, **{n: slot_accuracy(model, tokenizer, pairs) for n, pairs in sets.items()}})
                model.train()
            else:
                evals.append(evaluation(model, tokenizer, sets, step + 1))
            say("EVAL " + json.dumps(evals[-1]))
    model.eval()
    result = {"config": cfg, "evals": evals, "train_seconds": round(time.time() - start),
              "n_train_pairs": len(train), "hops_in_training": dict(sorted(
                  {h: hops.count(h) for h in set(hops)}.items())), "loss_every_10": losses[::10],
              "slot_accuracy": ({n: evals[-1][n] for n in sets} if cfg["task"] == "drill" else   # just measured
                                {n: slot_accuracy(model, tokenizer, pairs) for n, pairs in sets.items()})}
    say("SLOTS " + json.dumps(result["slot_accuracy"]))
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) == 3 else {})
