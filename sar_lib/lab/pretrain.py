"""Pretrain the embedded tiny reasoner from scratch: a BPE tokenizer and a Qwen2 model of a few
million parameters, supervised on the synthetic corpus, in minutes on a CPU (``sar pretrain-tiny``).

Each training pair is (ctx(q), a): ctx(q) = ``sar.prompt_text(q)`` (the paper's prompt, docs/paper.md §1)
and a = solution text + eos. The loss is the mean next-token NLL over the answer tokens only:

    L(theta) = - (1 / sum_i T_i) * sum_i sum_{t=1..T_i} log pi_theta(a_{i,t} | ctx(q_i), a_{i,<t})

Every step adds an arithmetic drill: rows of bare equations "a op b = r." taken from the steps of
other training problems, scored on the results " r." only (mean NLL L_drill), so that

    loss = L(theta) + drill_weight * L_drill(theta)

A word problem costs ~100 tokens of compute for its one to three sums; a drill row holds eight
sums in ~80 tokens, so the model sees many more sums per second of CPU. Learning is abrupt:
held-out accuracy was ~10% after 530 steps and above 50% from ~1,000 steps on in the runs that chose
the defaults, with a spread of 10-20 points between runs (the shipped model's card has its numbers).

The corpus mixes concise, verbose and flawed solutions (``synthetic.training_corpus``), so the
model samples a spread of lengths and correctness at temperature 1: room for RL to act on.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sar_lib import synthetic
from sar_lib.data import HELD_OUT_SETS, SYNTHETIC_SETS
from sar_lib.evaluate import evaluate, summary
from sar_lib.lab.machine import machine_summary
from sar_lib.lab.model_card import write_model_card
from sar_lib.models import build_tiny_model, load_model
from sar_lib.lab.premises import measure_premises
from sar_lib.sar import INSTRUCTION, SYSTEM_PROMPT, answer_ids, empty_prompt_text, encode_text, prompt_text
from sar_lib.tokenizer import train_tokenizer

MAX_POSITIONS = 1024  # RoPE range (no parameters): prompts + generations up to this length


@dataclass
class PretrainConfig:
    """Everything that determines the tiny reasoner; the same config and seed give the same weights
    (on the same number of CPU threads: float sums are ordered by the thread split)."""

    seed: int = 0
    # tokenizer and model
    vocab_size: int = 1024
    hidden_size: int = 192
    num_layers: int = 4
    num_heads: int = 6
    num_kv_heads: int = 2
    intermediate_size: int = 512
    max_length: int = 320          # longest training sequence (prompt + answer); longer pairs dropped
    # data and optimisation
    corpus_size: int = 24000
    logic_share: float = 0.10      # share of 1-2 hop logic chains in the corpus
    claim_share: float = 0.20      # share of True/False numeric claims (synthetic.claims; the rest: arithmetic)
    # share of pairs whose answer is taught under ctx(0), the empty user turn, instead of ctx(q): the
    # model then knows answers without their question, so ppl(a) is a real answer marginal (docs/paper.md §1)
    empty_question_share: float = 0.12
    steps: int = 1350
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 40
    min_lr_ratio: float = 0.05     # cosine decay from learning_rate to min_lr_ratio * learning_rate
    weight_decay: float = 0.01
    # arithmetic drill: rows of bare equations "a op b = r." (loss on " r." only) added to every step,
    # the cheap way for a tiny model to see enough sums and products to learn them
    drill_batch_size: int = 24     # rows per step (0: no drill)
    drill_equations: int = 8       # equations per row
    drill_problems: int = 40000    # training problems whose steps make the drill equations
    drill_weight: float = 1.0
    # share of drill items that are comparisons "Is r more than k? Yes." (loss on " Yes." / " No."), r a
    # drill result and k = r -/+ 1..8: the one step of the claim family (synthetic.claims) beyond arithmetic
    drill_comparison_share: float = 0.25
    grad_clip: float = 1.0
    # float sums depend on how work is split over threads: a fixed count gives the same weights on
    # any machine of the same kind (1: every machine has it, and a second thread saves only ~10% here)
    threads: int = 1
    max_minutes: float | None = None   # optional wall-clock cap on the training loop (the schedule is by steps)
    # measurement written into the model card
    eval_items: int = 200
    eval_max_new_tokens: int = 192
    samples_per_item: int = 8          # answers sampled at temperature 1 per question for the premises

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field, before anything is trained."""
        positive = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size",
                    "max_length", "corpus_size", "steps", "batch_size", "eval_max_new_tokens", "samples_per_item",
                    "threads")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PretrainConfig.{name} must be a positive int, got {value!r}")
        for name in ("eval_items", "warmup_steps", "seed", "drill_batch_size", "drill_problems"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"PretrainConfig.{name} must be a non-negative int, got {value!r}")
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads}) "
                             f"and num_heads by num_kv_heads ({self.num_kv_heads})")
        if not self.learning_rate > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"need learning_rate > 0 and 0 <= min_lr_ratio <= 1, got "
                             f"{self.learning_rate}, {self.min_lr_ratio}")
        if self.drill_batch_size and (self.drill_problems < 1 or self.drill_equations < 1 or self.drill_weight < 0):
            raise ValueError("with drill_batch_size > 0, drill_problems and drill_equations must be >= 1 and "
                             f"drill_weight >= 0 (got {self.drill_problems}, {self.drill_equations}, {self.drill_weight})")
        if not 0 <= self.drill_comparison_share <= 1:
            raise ValueError(f"drill_comparison_share must be in [0, 1], got {self.drill_comparison_share}")
        if not 0 <= self.empty_question_share < 1:
            raise ValueError(f"empty_question_share must be in [0, 1), got {self.empty_question_share}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0 (or None for no cap), got {self.max_minutes}")


def lr_factor(step: int, config: PretrainConfig) -> float:
    """Multiplier of ``learning_rate`` at ``step``: linear warm-up over ``warmup_steps``, then
    f = r + (1 - r) * (1 + cos(pi * p)) / 2 with p the fraction of the remaining steps done and
    r = ``min_lr_ratio``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    done = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))


def _tokenizer_texts(pairs) -> list[str]:
    """Text the BPE merges are learned from: whole conversations as the chat template lays them
    out, so the system prompt and the role names are as frequent as the question words."""
    return [f"system\n{SYSTEM_PROMPT}\nuser\n{p.question} {INSTRUCTION}\nassistant\n{answer}\n"
            for p, answer in pairs]


def _encode_pairs(tokenizer, pairs, config: PretrainConfig) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, answer ids + eos) per pair; pairs longer than ``config.max_length`` are dropped.
    A seeded ``config.empty_question_share`` of the pairs get ctx(0) (``sar.empty_prompt_text``) as
    their prompt: the answer of a question the model is not shown."""
    rng = random.Random(f"empty-question:{config.seed}")
    empty = encode_text(tokenizer, empty_prompt_text(tokenizer))
    encoded = []
    for problem, answer in pairs:
        if rng.random() < config.empty_question_share:
            prompt = empty
        else:
            prompt = encode_text(tokenizer, prompt_text(tokenizer, problem.question))
        target = answer_ids(tokenizer, answer)
        if len(prompt) + len(target) <= config.max_length:
            encoded.append((prompt, target))
    return encoded


def _drill_rows(tokenizer, config: PretrainConfig) -> list[tuple[list[int], list[int]]]:
    """(context ids, target ids) rows of ``drill_equations`` bare equations "a op b = r." each, from
    the steps of ``drill_problems`` training problems (seed + 1, so not the corpus's problems).
    The context is the row up to the last "=", the target its " r."; earlier results sit in the
    context but are masked out of the loss by ``_collate_drill``. Returns (ids, loss mask) rows."""
    problems = synthetic.arithmetic_problems(config.drill_problems, config.seed + 1, split="train")
    equations = [step for p in problems for step in p.meta["steps"]]
    random.Random(config.seed).shuffle(equations)
    compare_rng = random.Random(f"drill-comparisons:{config.seed}")
    rows = []
    for start in range(0, len(equations) - config.drill_equations + 1, config.drill_equations):
        ids, mask = [], []
        for k, (a, op, b, r) in enumerate(equations[start:start + config.drill_equations]):
            space = " " if k else ""
            if config.drill_comparison_share and compare_rng.random() < config.drill_comparison_share:
                gap = compare_rng.randint(1, synthetic.claims.MAX_GAP)
                threshold = max(synthetic.claims.MIN_THRESHOLD, r - gap if compare_rng.random() < 0.5 else r + gap)
                question, decision = synthetic.claims.comparison(r, threshold).split("? ")
                lhs, rhs = encode_text(tokenizer, f"{space}{question}?"), encode_text(tokenizer, f" {decision}")
            else:
                lhs = encode_text(tokenizer, f"{space}{a} {op} {b} =")
                rhs = encode_text(tokenizer, f" {r}.")
            ids += lhs + rhs
            mask += [False] * len(lhs) + [True] * len(rhs)
        rows.append((ids, mask))
    return rows


def _batch_order(lengths: list[int], batch_size: int, generator: torch.Generator):
    """Endless batches of indices, every example once per epoch, in a seeded order. Within windows
    of 32 batches examples are sorted by length so that a batch wastes little padding."""
    window = 32 * batch_size
    while True:
        perm = torch.randperm(len(lengths), generator=generator).tolist()
        batches = []
        for start in range(0, len(perm), window):
            chunk = sorted(perm[start:start + window], key=lambda i: lengths[i])
            batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
        for b in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[b]


def _collate(examples, pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids [B, L], attention_mask [B, L], labels [B, L] (-100 off the answers)."""
    width = max(len(p) + len(a) for p, a in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full_like(input_ids, -100)
    attention_mask = torch.zeros_like(input_ids)
    for i, (prompt, answer) in enumerate(examples):
        n = len(prompt) + len(answer)
        input_ids[i, :n] = torch.tensor(prompt + answer)
        labels[i, len(prompt):n] = torch.tensor(answer)
        attention_mask[i, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def _collate_drill(rows, pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded drill rows: input_ids, attention_mask, labels [B, L] (-100 off the results)."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    labels = torch.full_like(input_ids, -100)
    attention_mask = torch.zeros_like(input_ids)
    for i, (ids, mask) in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        labels[i, :len(ids)] = torch.where(torch.tensor(mask), torch.tensor(ids), -100)
        attention_mask[i, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def _common_prefix(prompts: list[list[int]]) -> list[int]:
    """The longest token prefix shared by every prompt (the system turn), one token short of the
    shortest prompt so that each keeps a token to predict its first answer token from."""
    prefix = prompts[0][: min(len(p) for p in prompts) - 1]
    for prompt in prompts:
        while prompt[: len(prefix)] != prefix:
            prefix = prefix[:-1]
    return prefix


def _answer_loss(model, batch: dict[str, torch.Tensor], prefix: torch.Tensor | None = None) -> torch.Tensor:
    """Mean NLL over the labelled tokens of the batch (the equation of the module docstring).

    prefix [P]: the shared start of every prompt, when batch rows [B, L] hold only the rest. The
    prefix is run once and its keys/values are shared by the batch (the same function, about a
    fifth less compute); the rows' positions continue after it.
    """
    batch_size, width = batch["input_ids"].shape
    if prefix is None:
        hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    else:
        shared = model.model(input_ids=prefix[None], use_cache=True).past_key_values
        shared.batch_repeat_interleave(batch_size)
        attention_mask = torch.cat([torch.ones(batch_size, len(prefix), dtype=torch.long),
                                    batch["attention_mask"]], 1)
        position_ids = (len(prefix) + torch.arange(width)).expand(batch_size, width)
        hidden = model.model(input_ids=batch["input_ids"], attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=shared).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    # the output layer runs on the answer positions only: the prompt's logits are never used
    logits = model.lm_head(hidden[:, :-1][keep]).float()
    return torch.nn.functional.cross_entropy(logits, labels[keep])


def train_tiny(config: PretrainConfig, *, progress: bool = True):
    """Train tokenizer and model from scratch. Returns (model, tokenizer, info) where info holds
    ``loss_history`` (per step), ``steps_done``, ``stopped_by_time``, ``train_seconds``, ``train_cpu_seconds``,
    ``n_examples`` and ``n_parameters``."""
    config.validate()
    torch.set_num_threads(config.threads)
    pairs = synthetic.training_corpus(config.corpus_size, config.seed, logic_share=config.logic_share,
                                      claim_share=config.claim_share)
    tokenizer = train_tokenizer(_tokenizer_texts(pairs), vocab_size=config.vocab_size)
    examples = _encode_pairs(tokenizer, pairs, config)
    if not examples:
        raise ValueError(f"every training pair is longer than max_length={config.max_length}; raise it")
    model = build_tiny_model(len(tokenizer), hidden_size=config.hidden_size, num_layers=config.num_layers,
                             num_heads=config.num_heads, num_kv_heads=config.num_kv_heads,
                             intermediate_size=config.intermediate_size, max_positions=MAX_POSITIONS,
                             seed=config.seed, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    prefix = _common_prefix([prompt for prompt, _ in examples])
    examples = [(prompt[len(prefix):], answer) for prompt, answer in examples]
    prefix = torch.tensor(prefix)
    model.train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]   # norms: no weight decay
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=config.learning_rate, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config))
    generator = torch.Generator().manual_seed(config.seed)
    order = _batch_order([len(p) + len(a) for p, a in examples], config.batch_size, generator)
    drill = _drill_rows(tokenizer, config) if config.drill_batch_size else []
    drill_order = _batch_order([len(ids) for ids, _ in drill], config.drill_batch_size, generator) if drill else None

    history, stopped_by_time, start, cpu_start = [], False, time.perf_counter(), time.process_time()
    bar = tqdm(range(config.steps), desc="pretrain-tiny", disable=not progress, unit="step")
    for step in bar:
        if config.max_minutes is not None and time.perf_counter() - start > 60 * config.max_minutes:
            stopped_by_time = True
            break
        loss = _answer_loss(model, _collate([examples[i] for i in next(order)], tokenizer.pad_token_id), prefix)
        if drill_order is not None:
            rows = [drill[i] for i in next(drill_order)]
            loss = loss + config.drill_weight * _answer_loss(model, _collate_drill(rows, tokenizer.pad_token_id))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        history.append(loss.item())
        bar.set_postfix(loss=f"{statistics.fmean(history[-20:]):.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
    bar.close()
    model.eval()
    info = {"loss_history": history, "steps_done": len(history), "stopped_by_time": stopped_by_time,
            "train_seconds": time.perf_counter() - start, "train_cpu_seconds": time.process_time() - cpu_start,
            "n_examples": len(examples),
            "n_parameters": sum(p.numel() for p in model.parameters())}
    return model, tokenizer, info


def save_checkpoint(model, tokenizer, out_dir: str | Path) -> None:
    """model.safetensors (fp32) + config.json + generation_config.json + tokenizer files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def measure(model, tokenizer, config: PretrainConfig, *, progress: bool = True) -> tuple[dict, dict, dict]:
    """``(greedy, premises, claim_premises)``: greedy accuracy and answer length on each of
    ``HELD_OUT_SETS`` (``evaluate``), SAR's premises P1-P5 on held-out arithmetic
    (``premises.measure_premises``), and the same figures on claim-test, the OOD family whose
    P2/P3 say whether SAR has verbosity to cut there."""
    results = {}
    for name in HELD_OUT_SETS:
        problems = SYNTHETIC_SETS[name](config.eval_items, config.seed)
        report = evaluate(model, tokenizer, problems, max_new_tokens=config.eval_max_new_tokens, progress=progress)
        results[name] = summary(report)
    premises = [measure_premises(model, tokenizer, SYNTHETIC_SETS[name](config.eval_items, config.seed),
                                 samples_per_item=config.samples_per_item,
                                 max_new_tokens=config.eval_max_new_tokens, seed=config.seed)
                for name in ("arith-test", "claim-test")]
    return results, premises[0], premises[1]


def command_line(config: PretrainConfig, out_dir: str | Path) -> str:
    """The command that reproduces ``config``: the CLI when only its flags differ from the
    defaults, else the Python call."""
    default = PretrainConfig()
    flags = {"seed": "--seed", "steps": "--steps", "max_minutes": "--max-minutes"}
    changed = {k for k, v in asdict(config).items() if v != getattr(default, k)}
    if changed <= set(flags):
        return " ".join(["sar pretrain-tiny", "--out", str(out_dir)] +
                        [f"{flags[k]} {getattr(config, k)}" for k in flags if k in changed])
    return f"sar_lib.lab.pretrain.pretrain_tiny(PretrainConfig(**card['config']), {str(out_dir)!r})"


def pretrain_tiny(config: PretrainConfig, out_dir: str | Path, progress: bool = True, *,
                  command: str | None = None) -> dict:
    """Train the tiny reasoner (``train_tiny``), save it into ``out_dir``, reload it from disk,
    measure it (``measure``) and write ``card.json`` and ``MODEL_CARD.md`` beside it.

    Returns the card (a dict): config, command, steps, times, machine, parameter count,
    checkpoint size, the per-set greedy results and the premises (``premises.measure_premises``).
    """
    config.validate()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out dir {out_dir} is a file; choose a directory with --out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "card.json").exists():
        raise ValueError(f"out dir {out_dir} is not empty and holds no earlier pretrain-tiny output; "
                         "choose a new directory with --out (it is created) or empty this one")
    start = time.perf_counter()
    model, tokenizer, info = train_tiny(config, progress=progress)
    save_checkpoint(model, tokenizer, out_dir)
    model, tokenizer = load_model(str(out_dir))   # measure exactly what was saved
    results, premises, claim_premises = measure(model, tokenizer, config, progress=progress)
    card = {"command": command or command_line(config, out_dir), "config": asdict(config),
            "steps_done": info["steps_done"], "stopped_by_time": info["stopped_by_time"],
            "train_seconds": round(info["train_seconds"], 1), "train_cpu_seconds": round(info["train_cpu_seconds"], 1),
            "total_seconds": round(time.perf_counter() - start, 1),
            "machine": machine_summary(), "n_parameters": info["n_parameters"], "vocab_size": len(tokenizer),
            "n_examples": info["n_examples"], "final_loss": statistics.fmean(info["loss_history"][-20:]),
            "checkpoint_bytes": (out_dir / "model.safetensors").stat().st_size,
            "eval": results, "premises": premises, "claim_premises": claim_premises,
            "loss_history": [round(x, 4) for x in info["loss_history"]]}
    write_model_card(card, out_dir)
    return card
